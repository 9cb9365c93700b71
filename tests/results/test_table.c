/* test_table.c: the CLI's table formatter: human units in text, RFC 4180 quoting in CSV,
 * escaping and numbers-as-numbers in JSON. */
#include "../../core/cli/table.h"
#include "results_test.h"

/* Render into a string through a memory stream. */
static char *render(const table *t, int how)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (how < 0) {
        table_print_transposed(t, f);
    } else {
        table_print(t, (table_format)how, f);
    }
    fclose(f);
    return buf;
}

int main(void)
{
    char buf[64];
    CHECK(!strcmp(table_human(TABLE_BYTES, "1234567", buf, sizeof buf), "1.23 MB"));
    CHECK(!strcmp(table_human(TABLE_BYTES, "512", buf, sizeof buf), "512 B"));
    CHECK(!strcmp(table_human(TABLE_FLOPS, "4500000000", buf, sizeof buf), "4.5 GFLOP"));
    CHECK(!strcmp(table_human(TABLE_SECONDS, "12.34", buf, sizeof buf), "12.3 s"));
    CHECK(!strcmp(table_human(TABLE_SECONDS, "125", buf, sizeof buf), "2m 05s"));
    CHECK(!strcmp(table_human(TABLE_SECONDS, "7320", buf, sizeof buf), "2h 02m"));
    CHECK(!strcmp(table_human(TABLE_REAL, "0.912345", buf, sizeof buf), "0.9123"));
    CHECK(!strcmp(table_human(TABLE_TIME, "2024-05-01T12:34:56.789Z", buf, sizeof buf),
                  "2024-05-01 12:34:56"));
    CHECK(!strcmp(table_human(TABLE_INT, NULL, buf, sizeof buf), "-"));

    table_format f;
    CHECK(table_format_parse("csv", &f) == 0 && f == TABLE_FORMAT_CSV);
    CHECK(table_format_parse("xml", &f) != 0);

    const table_column cols[] = {{"name", TABLE_TEXT}, {"bytes", TABLE_BYTES},
                                 {"acc", TABLE_REAL}, {"hist", TABLE_JSON_RAW}};
    table *t = table_create(cols, 4);
    int r = table_add_row(t);
    table_set(t, r, 0, "a, \"quoted\"\nname");
    table_set(t, r, 1, "1234567");
    table_set(t, r, 2, "0.5");
    table_set(t, r, 3, "[1,2]");
    r = table_add_row(t);
    table_set(t, r, 0, "plain");
    table_setf(t, r, 1, "%d", 12);
    table_set(t, r, 2, "Inf");
    CHECK(table_rows(t) == 2 && table_cols(t) == 4);

    char *csv = render(t, TABLE_FORMAT_CSV);
    CHECK(csv && !strcmp(csv, "name,bytes,acc,hist\n"
                              "\"a, \"\"quoted\"\"\nname\",1234567,0.5,\"[1,2]\"\n"
                              "plain,12,Inf,\n"));
    char *json = render(t, TABLE_FORMAT_JSON);
    CHECK(rt_json_valid(json));
    CHECK_CONTAINS(json, "\"name\": \"a, \\\"quoted\\\"\\nname\"");
    CHECK_CONTAINS(json, "\"bytes\": 1234567,");
    CHECK_CONTAINS(json, "\"acc\": \"Inf\""); /* not a JSON number: kept as a string */
    CHECK_CONTAINS(json, "\"hist\": [1,2]");
    CHECK_CONTAINS(json, "\"hist\": null");
    char *text = render(t, TABLE_FORMAT_TABLE);
    CHECK_CONTAINS(text, "1.23 MB");
    CHECK_CONTAINS(text, "a, \"quoted\" name"); /* one line per row */
    CHECK_CONTAINS(text, "12 B");
    char *tr = render(t, -1);
    CHECK_CONTAINS(tr, "1.23 MB   12 B");
    CHECK(!strncmp(tr, "name   a, \"quoted\" name  plain\n", 31));
    free(csv);
    free(json);
    free(text);
    free(tr);
    table_destroy(t);

    /* Rows straight from SQL: exact reals that read back the same. */
    sqlite3 *db = NULL;
    sqlite3_open(":memory:", &db);
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, "SELECT 'x', ?1 + ?2, NULL, '[]' UNION ALL SELECT 'y', ?3, 3, '[]'",
                       -1, &st, NULL);
    sqlite3_bind_double(st, 1, 0.1);
    sqlite3_bind_double(st, 2, 0.2);
    sqlite3_bind_double(st, 3, 1e300);
    t = table_create(cols, 4);
    CHECK(table_add_stmt_rows(t, st) == 0);
    CHECK(table_rows(t) == 2);
    CHECK(!strcmp(table_get(t, 0, 1), "0.30000000000000004"));
    CHECK(strtod(table_get(t, 1, 1), NULL) == 1e300);
    CHECK(table_get(t, 0, 2) == NULL);
    json = render(t, TABLE_FORMAT_JSON);
    CHECK(rt_json_valid(json));
    free(json);
    table_destroy(t);
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* An empty table is still valid output. */
    t = table_create(cols, 4);
    json = render(t, TABLE_FORMAT_JSON);
    CHECK(json && !strcmp(json, "[]\n"));
    free(json);
    table_destroy(t);
    return check_exit();
}
