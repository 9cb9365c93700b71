/* table.h: the one formatter behind `mpsl runs`, `show` and `compare`. A table is named
 * columns, each with a kind, and rows of strings (NULL = no value). Cells hold exact values;
 * the text rendering turns numbers into human units (1.23 MB, 4.5 GFLOP, 2m 05s) while CSV
 * (RFC 4180) and JSON keep them exact, and JSON writes numeric columns as numbers. */
#ifndef MPSL_CLI_TABLE_H
#define MPSL_CLI_TABLE_H

#include <stdio.h>

typedef enum table_format { TABLE_FORMAT_TABLE = 0, TABLE_FORMAT_CSV, TABLE_FORMAT_JSON } table_format;

typedef enum table_kind {
    TABLE_TEXT = 0, /* left-aligned string */
    TABLE_INT,      /* integer */
    TABLE_REAL,     /* real number, 4 significant digits in text */
    TABLE_BYTES,    /* bytes: 1.23 MB (decimal units) in text */
    TABLE_FLOPS,    /* floating-point operations: 4.5 GFLOP in text */
    TABLE_SECONDS,  /* durations: 12.3 s, 4m 05s, 1h 02m in text */
    TABLE_TIME,     /* ISO-8601 UTC timestamp: "2024-05-01 12:34:56" in text */
    TABLE_JSON_RAW  /* text that is already JSON (an array): embedded as is in JSON */
} table_kind;

typedef struct table_column {
    const char *name; /* header and JSON key */
    table_kind kind;
} table_column;

typedef struct table table;

/* The column array is copied. NULL on allocation failure. */
table *table_create(const table_column *cols, int ncols);
void table_destroy(table *t);

/* Text only: what a NULL cell of column col reads as ("-" unless set; e.g. "not reached").
 * CSV leaves it empty and JSON writes null whatever this says. The text is not copied. 0 on
 * success, -1 out of memory. */
int table_set_null_text(table *t, int col, const char *text);

/* Append an empty row (all cells NULL); returns its index, or -1 when out of memory. */
int table_add_row(table *t);
/* Set a cell (the string is copied; NULL = no value). 0 on success, -1 out of memory. */
int table_set(table *t, int row, int col, const char *value);
int table_setf(table *t, int row, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
const char *table_get(const table *t, int row, int col);
int table_rows(const table *t);
int table_cols(const table *t);

/* Append every row a prepared statement returns; its columns map to the table's in order.
 * Reals are written with the fewest digits that read back to the same double. Returns 0, or
 * the failing SQLite result code. */
struct sqlite3_stmt;
int table_add_stmt_rows(table *t, struct sqlite3_stmt *st);

/* The shortest %g text (15 to 17 significant digits) that reads back as the same double, in
 * buf: how cells keep reals exact. Infinities and NaN as %g writes them. */
void table_real_exact(double d, char *buf, size_t n);

/* Render: aligned columns with a header, CSV with a header line, or a JSON array of objects. */
void table_print(const table *t, table_format format, FILE *out);
/* Text only: one line per column ("name  value value ..."), one value column per row: a
 * run's summary, or runs side by side. */
void table_print_transposed(const table *t, FILE *out);
/* JSON: every row, as an array of objects (no newline after it). */
void table_print_json_array(const table *t, FILE *out);
/* JSON: one row as an object. */
void table_print_json_object(const table *t, int row, FILE *out);
/* JSON: a string with its quotes and escapes ("null" for NULL). */
void table_print_json_string(const char *s, FILE *out);

/* Parse "table", "csv" or "json". 0 on success, -1 when unknown. */
int table_format_parse(const char *s, table_format *format);

/* The text rendering of one value of a kind, in buf. */
const char *table_human(table_kind kind, const char *value, char *buf, size_t n);

#endif
