/* table.c: columns and rows of strings rendered as an aligned text table, CSV or JSON, with
 * human units in the text form only. Shared by the results verbs (runs, show, compare). */
#include "table.h"

#include <math.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct table {
    table_column *cols;
    int ncols;
    char **cells; /* rows * ncols, row-major */
    int rows, cap;
    const char **null_text; /* per column, NULL until table_set_null_text */
};

table *table_create(const table_column *cols, int ncols)
{
    table *t = calloc(1, sizeof *t);
    if (!t) {
        return NULL;
    }
    t->cols = malloc(sizeof *t->cols * (size_t)(ncols > 0 ? ncols : 1));
    if (!t->cols) {
        free(t);
        return NULL;
    }
    memcpy(t->cols, cols, sizeof *t->cols * (size_t)ncols);
    t->ncols = ncols;
    return t;
}

void table_destroy(table *t)
{
    if (!t) {
        return;
    }
    for (int i = 0; i < t->rows * t->ncols; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    free(t->cols);
    free(t->null_text);
    free(t);
}

int table_set_null_text(table *t, int col, const char *text)
{
    if (!t->null_text && !(t->null_text = calloc((size_t)t->ncols, sizeof *t->null_text))) {
        return -1;
    }
    t->null_text[col] = text;
    return 0;
}

/* The text rendering of a cell: human units, or the column's text for NULL. */
static const char *cell_text(const table *t, int row, int col, char *buf, size_t n)
{
    const char *v = table_get(t, row, col);
    if (!v && t->null_text && t->null_text[col]) {
        return t->null_text[col];
    }
    return table_human(t->cols[col].kind, v, buf, n);
}

int table_add_row(table *t)
{
    if (t->rows == t->cap) {
        int cap = t->cap ? t->cap * 2 : 16;
        char **cells = realloc(t->cells, sizeof *cells * (size_t)cap * (size_t)t->ncols);
        if (!cells) {
            return -1;
        }
        t->cells = cells;
        t->cap = cap;
    }
    memset(t->cells + (size_t)t->rows * (size_t)t->ncols, 0, sizeof *t->cells * (size_t)t->ncols);
    return t->rows++;
}

int table_set(table *t, int row, int col, const char *value)
{
    char **cell = &t->cells[(size_t)row * (size_t)t->ncols + (size_t)col];
    free(*cell);
    *cell = NULL;
    if (value && !(*cell = strdup(value))) {
        return -1;
    }
    return 0;
}

int table_setf(table *t, int row, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return -1;
    }
    char **cell = &t->cells[(size_t)row * (size_t)t->ncols + (size_t)col];
    free(*cell);
    *cell = s;
    return 0;
}

const char *table_get(const table *t, int row, int col)
{
    return t->cells[(size_t)row * (size_t)t->ncols + (size_t)col];
}

int table_rows(const table *t) { return t->rows; }
int table_cols(const table *t) { return t->ncols; }

void table_real_exact(double d, char *buf, size_t n)
{
    for (int p = 15; p <= 17; p++) {
        snprintf(buf, n, "%.*g", p, d);
        if (strtod(buf, NULL) == d) {
            return;
        }
    }
}

/* A stored real as a cell: table_real_exact, infinities as "Inf" and "-Inf". */
static void format_double(double d, char *buf, size_t n)
{
    if (isinf(d)) {
        snprintf(buf, n, d > 0 ? "Inf" : "-Inf");
        return;
    }
    table_real_exact(d, buf, n);
}

int table_add_stmt_rows(table *t, sqlite3_stmt *st)
{
    int rc;
    int n = sqlite3_column_count(st);
    if (n > t->ncols) {
        n = t->ncols;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int row = table_add_row(t);
        if (row < 0) {
            return SQLITE_NOMEM;
        }
        for (int c = 0; c < n; c++) {
            char num[40];
            const char *v = NULL;
            switch (sqlite3_column_type(st, c)) {
            case SQLITE_NULL:
                break;
            case SQLITE_INTEGER:
                snprintf(num, sizeof num, "%lld", (long long)sqlite3_column_int64(st, c));
                v = num;
                break;
            case SQLITE_FLOAT:
                format_double(sqlite3_column_double(st, c), num, sizeof num);
                v = num;
                break;
            default:
                v = (const char *)sqlite3_column_text(st, c);
                break;
            }
            if (table_set(t, row, c, v) != 0) {
                return SQLITE_NOMEM;
            }
        }
    }
    return rc == SQLITE_DONE ? 0 : rc;
}

int table_format_parse(const char *s, table_format *format)
{
    static const char *const names[] = {"table", "csv", "json"};
    for (int i = 0; i < 3; i++) {
        if (s && !strcmp(s, names[i])) {
            *format = (table_format)i;
            return 0;
        }
    }
    return -1;
}

static int kind_is_numeric(table_kind k)
{
    return k == TABLE_INT || k == TABLE_REAL || k == TABLE_BYTES || k == TABLE_FLOPS ||
           k == TABLE_SECONDS;
}

/* A value in human units: "1.23 MB" from 1234567 with base 1000. */
static void scaled(double v, const char *const *units, int nunits, const char *unit0,
                   char *buf, size_t n)
{
    double a = fabs(v);
    if (a < 1000) {
        snprintf(buf, n, "%.4g %s", v, unit0);
        return;
    }
    int u = -1;
    while (a >= 1000 && u + 1 < nunits) {
        a /= 1000;
        v /= 1000;
        u++;
    }
    snprintf(buf, n, "%.3g %s", v, units[u]);
}

const char *table_human(table_kind kind, const char *value, char *buf, size_t n)
{
    if (!value) {
        return "-";
    }
    char *end = NULL;
    double v = strtod(value, &end);
    int numeric = *value && end && *end == '\0' && isfinite(v);
    static const char *const bytes[] = {"kB", "MB", "GB", "TB", "PB", "EB"};
    static const char *const flops[] = {"kFLOP", "MFLOP", "GFLOP", "TFLOP", "PFLOP", "EFLOP"};
    switch (kind) {
    case TABLE_REAL:
        if (numeric) {
            snprintf(buf, n, "%.4g", v);
            return buf;
        }
        break;
    case TABLE_BYTES:
        if (numeric) {
            scaled(v, bytes, 6, "B", buf, n);
            return buf;
        }
        break;
    case TABLE_FLOPS:
        if (numeric) {
            scaled(v, flops, 6, "FLOP", buf, n);
            return buf;
        }
        break;
    case TABLE_SECONDS:
        if (numeric) {
            if (fabs(v) < 60) {
                snprintf(buf, n, "%.3g s", v);
            } else if (v < 3600) {
                long s = lround(v);
                snprintf(buf, n, "%ldm %02lds", s / 60, s % 60);
            } else {
                long m = lround(v / 60);
                snprintf(buf, n, "%ldh %02ldm", m / 60, m % 60);
            }
            return buf;
        }
        break;
    case TABLE_TIME: {
        /* 2024-05-01T12:34:56.789Z -> 2024-05-01 12:34:56 */
        snprintf(buf, n, "%s", value);
        char *tee = strchr(buf, 'T');
        if (tee) {
            *tee = ' ';
        }
        char *dot = strchr(buf, '.');
        if (dot) {
            *dot = '\0';
        }
        size_t len = strlen(buf);
        if (len && buf[len - 1] == 'Z') {
            buf[len - 1] = '\0';
        }
        return buf;
    }
    default:
        break;
    }
    return value;
}

/* Display width of UTF-8 text: code points, not bytes. */
static int text_width(const char *s)
{
    int w = 0;
    for (; *s; s++) {
        w += ((unsigned char)*s & 0xC0) != 0x80;
    }
    return w;
}

/* Text cells are one line: control characters (newline, tab) print as spaces. */
static void put_text(const char *s, FILE *out)
{
    for (; *s; s++) {
        fputc((unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s, out);
    }
}

static void put_padded(const char *s, int width, int right, FILE *out)
{
    int pad = width - text_width(s);
    if (right) {
        for (int i = 0; i < pad; i++) {
            fputc(' ', out);
        }
    }
    put_text(s, out);
    if (!right) {
        for (int i = 0; i < pad; i++) {
            fputc(' ', out);
        }
    }
}

static void print_text(const table *t, FILE *out)
{
    int *width = calloc((size_t)t->ncols, sizeof *width);
    char buf[128];
    if (!width) {
        return;
    }
    for (int c = 0; c < t->ncols; c++) {
        width[c] = text_width(t->cols[c].name);
        for (int r = 0; r < t->rows; r++) {
            int w = text_width(cell_text(t, r, c, buf, sizeof buf));
            if (w > width[c]) {
                width[c] = w;
            }
        }
    }
    for (int c = 0; c < t->ncols; c++) {
        if (c) {
            fputs("  ", out);
        }
        put_padded(t->cols[c].name, c + 1 < t->ncols || kind_is_numeric(t->cols[c].kind) ? width[c] : 0,
                   kind_is_numeric(t->cols[c].kind), out);
    }
    fputc('\n', out);
    for (int r = 0; r < t->rows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            if (c) {
                fputs("  ", out);
            }
            int numeric = kind_is_numeric(t->cols[c].kind);
            put_padded(cell_text(t, r, c, buf, sizeof buf),
                       c + 1 < t->ncols || numeric ? width[c] : 0, numeric, out);
        }
        fputc('\n', out);
    }
    free(width);
}

void table_print_transposed(const table *t, FILE *out)
{
    int name_w = 0;
    char buf[128];
    for (int c = 0; c < t->ncols; c++) {
        int w = text_width(t->cols[c].name);
        name_w = w > name_w ? w : name_w;
    }
    int *width = calloc((size_t)(t->rows ? t->rows : 1), sizeof *width);
    if (!width) {
        return;
    }
    for (int r = 0; r < t->rows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            int w = text_width(cell_text(t, r, c, buf, sizeof buf));
            width[r] = w > width[r] ? w : width[r];
        }
    }
    for (int c = 0; c < t->ncols; c++) {
        put_padded(t->cols[c].name, name_w, 0, out);
        for (int r = 0; r < t->rows; r++) {
            fputs("  ", out);
            int numeric = kind_is_numeric(t->cols[c].kind);
            int right = numeric && t->rows > 1; /* one value: a plain key/value list */
            put_padded(cell_text(t, r, c, buf, sizeof buf),
                       r + 1 < t->rows || right ? width[r] : 0, right, out);
        }
        fputc('\n', out);
    }
    free(width);
}

static void csv_field(const char *s, FILE *out)
{
    if (!s) {
        return;
    }
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"') {
            fputc('"', out);
        }
        fputc(*s, out);
    }
    fputc('"', out);
}

static void print_csv(const table *t, FILE *out)
{
    for (int c = 0; c < t->ncols; c++) {
        if (c) {
            fputc(',', out);
        }
        csv_field(t->cols[c].name, out);
    }
    fputc('\n', out);
    for (int r = 0; r < t->rows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            if (c) {
                fputc(',', out);
            }
            csv_field(table_get(t, r, c), out);
        }
        fputc('\n', out);
    }
}

void table_print_json_string(const char *s, FILE *out)
{
    if (!s) {
        fputs("null", out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        switch (ch) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (ch < 0x20 || ch == 0x7f) {
                fprintf(out, "\\u%04x", ch);
            } else {
                fputc(ch, out);
            }
        }
    }
    fputc('"', out);
}

/* Whether s is a number by JSON's grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int json_number(const char *s)
{
    if (*s == '-') {
        s++;
    }
    if (*s == '0') {
        s++;
    } else if (*s >= '1' && *s <= '9') {
        while (*s >= '0' && *s <= '9') {
            s++;
        }
    } else {
        return 0;
    }
    if (*s == '.') {
        s++;
        if (!(*s >= '0' && *s <= '9')) {
            return 0;
        }
        while (*s >= '0' && *s <= '9') {
            s++;
        }
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-') {
            s++;
        }
        if (!(*s >= '0' && *s <= '9')) {
            return 0;
        }
        while (*s >= '0' && *s <= '9') {
            s++;
        }
    }
    return *s == '\0';
}

static void json_value(table_kind kind, const char *v, FILE *out)
{
    if (v && kind_is_numeric(kind) && json_number(v)) {
        fputs(v, out);
    } else if (v && kind == TABLE_JSON_RAW && (v[0] == '[' || v[0] == '{')) {
        fputs(v, out);
    } else {
        table_print_json_string(v, out);
    }
}

void table_print_json_object(const table *t, int row, FILE *out)
{
    fputc('{', out);
    for (int c = 0; c < t->ncols; c++) {
        if (c) {
            fputs(", ", out);
        }
        table_print_json_string(t->cols[c].name, out);
        fputs(": ", out);
        json_value(t->cols[c].kind, table_get(t, row, c), out);
    }
    fputc('}', out);
}

void table_print_json_array(const table *t, FILE *out)
{
    fputc('[', out);
    for (int r = 0; r < t->rows; r++) {
        fputs(r ? ",\n " : "\n ", out);
        table_print_json_object(t, r, out);
    }
    fputs(t->rows ? "\n]" : "]", out);
}

void table_print(const table *t, table_format format, FILE *out)
{
    switch (format) {
    case TABLE_FORMAT_CSV:
        print_csv(t, out);
        break;
    case TABLE_FORMAT_JSON:
        table_print_json_array(t, out);
        fputc('\n', out);
        break;
    default:
        print_text(t, out);
        break;
    }
}
