/* test_svg.c: the report module's building blocks without a database: human units, XML
 * escaping of hostile text (markup, quotes, control characters, invalid UTF-8), the five-
 * number summary, and each chart kind's output (data marks present, NaN handled, "no data"
 * frames, standalone header). Well-formedness of whole files is checked by the e2e test
 * with an XML parser. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "report/report.h"

static const char *fmt(double v, report_unit u)
{
    static char buf[64];
    return report_fmt(v, u, 3, buf, sizeof buf);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; p && (p = strstr(p, needle)); p += strlen(needle)) {
        n++;
    }
    return n;
}

static void test_units(void)
{
    CHECK(!strcmp(fmt(259200, REPORT_BYTES), "259 kB"));
    CHECK(!strcmp(fmt(4325760, REPORT_BYTES), "4.33 MB"));
    CHECK(!strcmp(fmt(999960, REPORT_BYTES), "1 MB")); /* rounds up into the next unit */
    CHECK(!strcmp(fmt(0, REPORT_BYTES), "0 B"));
    CHECK(!strcmp(fmt(17e9, REPORT_FLOPS), "17 GFLOP"));
    CHECK(!strcmp(fmt(1.99e9, REPORT_FLOPS), "1.99 GFLOP"));
    CHECK(!strcmp(fmt(1.74, REPORT_SECONDS), "1.74 s"));
    CHECK(!strcmp(fmt(125, REPORT_SECONDS), "2m 05s"));
    CHECK(!strcmp(fmt(3720, REPORT_SECONDS), "1h 02m"));
    CHECK(!strcmp(fmt(0.337, REPORT_PLAIN), "0.337"));
    CHECK(!strcmp(fmt(1500, REPORT_PLAIN), "1.5k"));
    CHECK(!strcmp(fmt(2.5e6, REPORT_PLAIN), "2.5M"));
    CHECK(!strcmp(fmt(NAN, REPORT_BYTES), "-"));
    CHECK(!strcmp(fmt(1e-17, REPORT_PLAIN), "0"));
    CHECK(report_metric_unit("bytes") == REPORT_BYTES);
    CHECK(report_metric_unit("peak_rss_bytes") == REPORT_BYTES);
    CHECK(report_metric_unit("epoch_seconds") == REPORT_SECONDS);
    CHECK(report_metric_unit("server_flops") == REPORT_FLOPS);
    CHECK(report_metric_unit("test_acc") == REPORT_PLAIN);
}

static void test_escape(void)
{
    report_buf b = {0};
    report_buf_escape(&b, "<b>\"A&B\"</b> 'q'", 0);
    CHECK(!strcmp(b.p, "&lt;b&gt;&quot;A&amp;B&quot;&lt;/b&gt; &#39;q&#39;"));
    report_buf_free(&b);

    /* Control characters dropped, CR to a space, invalid UTF-8 to U+FFFD, valid kept. */
    report_buf_escape(&b, "a\x01" "b\rc\xff" "d\xc3\xa9" "e\xed\xa0\x80", 0);
    CHECK(!strcmp(b.p, "ab c\xEF\xBF\xBD" "d\xc3\xa9" "e\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"));
    report_buf_free(&b);

    /* Truncation counts characters, not bytes, and ends with an ellipsis. */
    report_buf_escape(&b, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 3);
    CHECK(!strcmp(b.p, "\xc3\xa9\xc3\xa9\xE2\x80\xA6"));
    CHECK(report_text_chars("\xc3\xa9x") == 2);
    report_buf_free(&b);
    report_buf_escape(&b, NULL, 0);
    CHECK(b.len == 0);
    report_buf_printf(&b, "%s-%d", "long enough to pass the small buffer of printf: "
                      "0123456789012345678901234567890123456789012345678901234567890123456789"
                      "0123456789012345678901234567890123456789012345678901234567890123456789"
                      "0123456789012345678901234567890123456789012345678901234567890123456789",
                      42);
    CHECK(b.len > 256 && !strcmp(b.p + b.len - 3, "-42"));
    report_buf_free(&b);
}

static void test_box(void)
{
    double v[] = {5, NAN, 1, 4, 2, 3};
    svg_box box = svg_box_of(v, 6);
    CHECK(box.n == 5);
    CHECK_CLOSE(box.min, 1, 0);
    CHECK_CLOSE(box.q1, 2, 0);
    CHECK_CLOSE(box.median, 3, 0);
    CHECK_CLOSE(box.q3, 4, 0);
    CHECK_CLOSE(box.max, 5, 0);
    double none[] = {NAN};
    CHECK(svg_box_of(none, 1).n == 0);
}

static void test_charts(void)
{
    double x[] = {1, 2, 3, 4}, y1[] = {0.2, 0.3, NAN, 0.5}, y2[] = {NAN, NAN, NAN, NAN};
    svg_series s[] = {
        {"#1 <fedavg> & \"co\"", 0, x, y1, 4},
        {"#2 nothing", 1, x, y2, 4},
    };
    svg_chart c = {.title = "acc <per> epoch", .x_label = "epoch", .y_label = "accuracy",
                   .x_integer = 1, .width = 600, .height = 320};
    report_buf b = {0};
    svg_line_chart(&b, &c, s, 2);
    CHECK(!b.oom);
    CHECK(!strncmp(b.p, "<svg ", 5));
    CHECK(!strstr(b.p, "xmlns")); /* inline in HTML: no namespace, no URL */
    CHECK(count(b.p, "<svg") == 1 && count(b.p, "</svg>") == 1);
    CHECK_CONTAINS(b.p, "<path class=\"series\"");
    CHECK_CONTAINS(b.p, " M"); /* the NaN broke the line into two pieces */
    CHECK_CONTAINS(b.p, "#1 &lt;fedavg&gt; &amp; &quot;co&quot;");
    CHECK_CONTAINS(b.p, "#2 nothing (no data)");
    CHECK_CONTAINS(b.p, "acc &lt;per&gt; epoch");
    CHECK(!strstr(b.p, "<fedavg>"));
    report_buf_free(&b);

    c.standalone = 1;
    svg_line_chart(&b, &c, s + 1, 1); /* only a series with no points */
    CHECK(!strncmp(b.p, "<?xml", 5));
    CHECK_CONTAINS(b.p, "xmlns=\"http://www.w3.org/2000/svg\"");
    CHECK_CONTAINS(b.p, "class=\"no-data\"");
    report_buf_free(&b);
    c.standalone = 0;

    const char *cats[] = {"#1 fedavg", "#2 centralized"};
    const char *groups[] = {"client", "server"};
    int colors[] = {0, 1};
    double v[] = {1.7e9, 0, NAN, 1.7e10};
    c.y_unit = REPORT_FLOPS;
    svg_bar_chart(&b, &c, cats, 2, groups, colors, 2, v);
    CHECK(count(b.p, "<rect class=\"series\"") == 3);
    CHECK_CONTAINS(b.p, ">n/a<");
    CHECK_CONTAINS(b.p, "GFLOP");
    report_buf_free(&b);

    /* 100 clients x 10 classes: labels thinned, every bar drawn. */
    enum { NC = 100, NK = 10 };
    double *h = calloc(NC * NK, sizeof *h);
    const char *ccats[NC], *stacks[NK];
    char names[NC][8], snames[NK][12];
    for (int i = 0; i < NC; i++) {
        snprintf(names[i], sizeof names[i], "%d", i);
        ccats[i] = names[i];
        for (int k = 0; k < NK; k++) {
            h[i * NK + k] = (i + k) % 7;
        }
    }
    for (int k = 0; k < NK; k++) {
        snprintf(snames[k], sizeof snames[k], "class %d", k);
        stacks[k] = snames[k];
    }
    c.y_unit = REPORT_PLAIN;
    c.width = 1200;
    svg_stacked_bars(&b, &c, ccats, NC, stacks, NK, h);
    CHECK(count(b.p, "<g class=\"series\">") == NC);
    CHECK(b.len < 200000); /* a 100-client chart stays small */
    CHECK_CONTAINS(b.p, "class 9");
    report_buf_free(&b);
    free(h);

    double vals[] = {0.3, 0.5, 0.4};
    svg_box boxes[2] = {svg_box_of(vals, 3), {NAN, NAN, NAN, NAN, NAN, NULL, 0}};
    svg_box_plot(&b, &c, cats, colors, 2, boxes);
    CHECK_CONTAINS(b.p, "n=3");
    CHECK_CONTAINS(b.p, ">no data<");
    CHECK_CONTAINS(b.p, "<path class=\"series\"");
    report_buf_free(&b);

    svg_no_data(&b, &c, "a <reason>");
    CHECK_CONTAINS(b.p, "no data: a &lt;reason&gt;");
    report_buf_free(&b);
}

static void test_write(void)
{
    report_buf b = {0};
    report_buf_puts(&b, "<svg/>");
    mpsl_error err = {{0}};
    CHECK(report_buf_write(&b, "/nonexistent-dir/x.svg", &err) == MPSL_ERR_IO);
    CHECK_CONTAINS(err.msg, "/nonexistent-dir/x.svg");
    b.oom = 1;
    CHECK(report_buf_write(&b, "/tmp/never-written.svg", &err) == MPSL_ERR_NOMEM);
    report_buf_free(&b);
}

int main(void)
{
    test_units();
    test_escape();
    test_box();
    test_charts();
    test_write();
    return check_exit();
}
