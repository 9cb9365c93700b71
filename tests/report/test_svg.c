/* test_svg.c: the report module's building blocks without a database: human units, XML
 * escaping of hostile text (markup, quotes, control characters, invalid UTF-8), the five-
 * number summary, each chart kind's output (data marks present, NaN handled, "no data"
 * frames, standalone header), logarithmic axes and their ticks, bands, lines that hide each
 * other, repeats merged into mean and band, and the option parsers. Well-formedness of whole
 * files is checked by the e2e tests with an XML parser. */
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
        {.name = "#1 <fedavg> & \"co\"", .color = 0, .x = x, .y = y1, .n = 4},
        {.name = "#2 nothing", .color = 1, .x = x, .y = y2, .n = 4},
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

static void test_log_ticks(void)
{
    double t[40], lo, hi;
    /* Whole decades when values span many. */
    int n = svg_log_ticks(3e3, 7e8, t, 40, &lo, &hi);
    CHECK(n == 7);
    CHECK_CLOSE(lo, 1e3, 1e-12);
    CHECK_CLOSE(hi, 1e9, 1e-12);
    for (int i = 0; i < n; i++) {
        CHECK_CLOSE(t[i], pow(10, 3 + i), 1e-9);
    }
    /* Many decades: every k-th labelled, at most 9 labels. */
    n = svg_log_ticks(1e-6, 1e12, t, 40, &lo, &hi);
    CHECK(n == 7 && fabs(t[1] / t[0] - 1000) < 1e-6);
    /* Within two decades: the 1-2-5 sequence, bounds hugging the values. */
    n = svg_log_ticks(53e3, 160e3, t, 40, &lo, &hi);
    CHECK(n == 3);
    CHECK_CLOSE(lo, 50e3, 1e-12);
    CHECK_CLOSE(hi, 200e3, 1e-12);
    CHECK_CLOSE(t[1], 100e3, 1e-12);
    n = svg_log_ticks(0.012, 0.9, t, 40, &lo, &hi);
    CHECK(n == 7 && fabs(lo - 0.01) < 1e-12 && fabs(hi - 1) < 1e-12);
    CHECK_CLOSE(t[1], 0.02, 1e-9);
    CHECK_CLOSE(t[2], 0.05, 1e-9);
    /* An exact decade does not open the next; one value gets a step either side. */
    n = svg_log_ticks(1000, 1000, t, 40, &lo, &hi);
    CHECK(lo < 1000 && hi > 1000 && n >= 3);
    CHECK(svg_log_wanted(1, 101));
    CHECK(!svg_log_wanted(1, 100));
    CHECK(!svg_log_wanted(0, 1e6));
    CHECK(!svg_log_wanted(NAN, 1e6));
}

static void test_log_charts(void)
{
    /* Bytes growing over four decades go logarithmic by themselves; the axis says so. */
    double x[] = {1, 2, 3, 4}, big[] = {1e3, 1e4, 1e5, 1e7}, small[] = {2e3, 3e3, 0, 5e3};
    svg_series s[] = {
        {.name = "mpsl", .color = 0, .x = x, .y = big, .n = 4},
        {.name = "fedavg", .color = 1, .x = x, .y = small, .n = 4, .style = 1},
    };
    svg_chart c = {.title = "bytes", .y_label = "bytes", .y_unit = REPORT_BYTES, .x_integer = 1,
                   .width = 600, .height = 320, .y_scale = SVG_AUTO};
    report_buf b = {0};
    svg_line_chart(&b, &c, s, 2);
    CHECK_CONTAINS(b.p, "class=\"axis log\"");
    CHECK_CONTAINS(b.p, "bytes (log scale)");
    CHECK_CONTAINS(b.p, ">1 kB<");
    CHECK_CONTAINS(b.p, ">10 MB<");
    CHECK_CONTAINS(b.p, "stroke-dasharray=\"7 4\""); /* style 1: dashed */
    CHECK_CONTAINS(b.p, "<rect x=");                  /* style 1's square markers */
    CHECK(!strstr(b.p, "nan") && !strstr(b.p, "inf"));
    /* The zero cannot be drawn on a log axis: the line breaks there. */
    CHECK(count(b.p, "<path class=\"series\"") == 2);
    report_buf_free(&b);

    /* The same values within two decades stay linear; forced log goes log. */
    c.y_scale = SVG_AUTO;
    svg_line_chart(&b, &c, s + 1, 1);
    CHECK(!strstr(b.p, "axis log"));
    report_buf_free(&b);
    c.y_scale = SVG_LOG;
    svg_line_chart(&b, &c, s + 1, 1);
    CHECK_CONTAINS(b.p, "axis log");
    report_buf_free(&b);
    c.y_scale = SVG_LINEAR;
    c.x_scale = SVG_LOG; /* x as well */
    c.x_unit = REPORT_BYTES;
    s[0].x = big;
    svg_line_chart(&b, &c, s, 1);
    CHECK(count(b.p, "class=\"axis log\"") == 1);
    CHECK_CONTAINS(b.p, ">100 kB<");
    report_buf_free(&b);
    c.x_scale = SVG_LINEAR;

    /* FLOPs bars from 1 MFLOP to 1 GFLOP with a zero: a log axis, no bar for the zero but
     * its number, every bar's label at its own height. */
    const char *cats[] = {"fedavg", "mpsl"};
    const char *groups[] = {"client", "server"};
    int colors[] = {0, 1};
    double v[] = {9.5e8, 0, 1.2e6, 1.3e8};
    svg_chart cf = {.title = "FLOPs", .y_unit = REPORT_FLOPS, .y_zero = 1, .width = 600,
                    .height = 320, .y_scale = SVG_AUTO};
    svg_bar_chart(&b, &cf, cats, 2, groups, colors, 2, v);
    CHECK_CONTAINS(b.p, "axis log");
    CHECK(count(b.p, "<rect class=\"series\"") == 3);
    CHECK_CONTAINS(b.p, "<text class=\"series\"");
    CHECK_CONTAINS(b.p, ">0</text>");
    CHECK_CONTAINS(b.p, "MFLOP<");
    report_buf_free(&b);
    /* Within two decades the bars stay on a linear axis from zero. */
    double w[] = {1e8, 2e8, 3e8, 4e8};
    svg_bar_chart(&b, &cf, cats, 2, groups, colors, 2, w);
    CHECK(!strstr(b.p, "axis log"));
    CHECK(count(b.p, "<rect class=\"series\"") == 4);
    report_buf_free(&b);
}

static void test_bands_and_overlap(void)
{
    double x[] = {1, 2, 3}, y[] = {0.5, 0.6, 0.7}, lo[] = {0.4, NAN, 0.6}, hi[] = {0.6, NAN, 0.8};
    double same[] = {0.5, 0.6, 0.7}, near[] = {0.5, 0.6, 0.7001};
    svg_series s[] = {
        {.name = "fedavg (n=3)", .color = 0, .x = x, .y = y, .n = 3, .lo = lo, .hi = hi},
        {.name = "fedprox (n=3)", .color = 1, .x = x, .y = same, .n = 3, .style = 1},
        {.name = "other", .color = 2, .x = x, .y = near, .n = 3, .style = 2},
    };
    svg_chart c = {.title = "acc", .x_integer = 1, .width = 600, .height = 320};
    report_buf b = {0};
    svg_line_chart(&b, &c, s, 3);
    /* The NaN in the middle splits the band: two lone points, each a bar. */
    CHECK(count(b.p, "<path class=\"band\"") == 2);
    CHECK_CONTAINS(b.p, "stroke-opacity=\"0.45\"");
    CHECK_CONTAINS(b.p, "fill-opacity=\"0.2\""); /* the legend's band swatch */
    /* Lines on top of each other are named. */
    CHECK_CONTAINS(b.p, "fedprox (n=3) (same as fedavg (n=3))");
    CHECK_CONTAINS(b.p, "other (overlaps fedavg (n=3))");
    /* Bands come before every line, so no band covers a line. */
    CHECK(strstr(b.p, "class=\"band\"") < strstr(b.p, "<g class=\"series\">"));
    report_buf_free(&b);

    /* A band over consecutive points is one closed path; it widens the y axis. */
    double lo2[] = {0.1, 0.2, 0.3}, hi2[] = {0.9, 1.0, 1.1};
    s[0].lo = lo2;
    s[0].hi = hi2;
    svg_line_chart(&b, &c, s, 1);
    CHECK(count(b.p, "<path class=\"band\"") == 1);
    CHECK_CONTAINS(b.p, " Z\" fill=\"#4e79a7\" fill-opacity=\"0.18\"");
    CHECK_CONTAINS(b.p, ">1.2<");
    report_buf_free(&b);
}

static void test_merge(void)
{
    /* Three seeds: two cover epochs 1-3, one stopped after epoch 2. */
    double k3[] = {1, 2, 3}, k2[] = {1, 2};
    double ya[] = {0.1, 0.2, 0.3}, yb[] = {0.3, 0.4, 0.5}, yc[] = {0.2, 0.3};
    double xa[] = {10, 20, 30}, xb[] = {20, 40, 60}, xc[] = {30, 60};
    report_points p[] = {{k3, xa, ya, 3}, {k3, xb, yb, 3}, {k2, xc, yc, 2}};
    report_merged m;
    CHECK(report_merge_points(p, 3, REPORT_BAND_SD, &m) == MPSL_OK);
    CHECK(m.n == 3 && m.members == 3);
    CHECK_CLOSE(m.y[0], 0.2, 1e-12);
    CHECK_CLOSE(m.x[0], 20, 1e-12);            /* x: the mean of the runs' x */
    CHECK_CLOSE(m.hi[0] - m.y[0], 0.1, 1e-12); /* sd of 0.1, 0.3, 0.2 */
    CHECK_CLOSE(m.y[2], 0.4, 1e-12);           /* two runs at epoch 3 */
    CHECK_CLOSE(m.hi[2] - m.y[2], sqrt(0.02), 1e-12);
    report_merged_free(&m);
    /* The 95% interval of the mean: t(0.975, 2) * sd / sqrt(3). */
    CHECK(report_merge_points(p, 3, REPORT_BAND_CI95, &m) == MPSL_OK);
    CHECK_CLOSE(m.hi[0] - m.y[0], 4.302653 * 0.1 / sqrt(3), 1e-4);
    report_merged_free(&m);
    /* One run: its own line, no band. */
    CHECK(report_merge_points(p, 1, REPORT_BAND_SD, &m) == MPSL_OK);
    CHECK(m.n == 3 && isnan(m.lo[1]) && isnan(m.hi[1]));
    CHECK_CLOSE(m.y[1], 0.2, 1e-12);
    report_merged_free(&m);
    /* Step keys that differ between runs: the union, in order. */
    double ka[] = {2, 4}, kb[] = {3, 4}, y1[] = {1, 2}, y2[] = {3, 4};
    report_points q[] = {{ka, ka, y1, 2}, {kb, kb, y2, 2}};
    CHECK(report_merge_points(q, 2, REPORT_BAND_SD, &m) == MPSL_OK);
    CHECK(m.n == 3);
    CHECK_CLOSE(m.x[0], 2, 0);
    CHECK_CLOSE(m.x[1], 3, 0);
    CHECK_CLOSE(m.y[2], 3, 1e-12);
    report_merged_free(&m);
    report_points none[] = {{NULL, NULL, NULL, 0}};
    CHECK(report_merge_points(none, 1, REPORT_BAND_SD, &m) == MPSL_OK && m.n == 0);
    report_merged_free(&m);
}

static void test_parsers(void)
{
    report_link l = {0};
    CHECK(report_link_parse("10,50", &l) == 0 && l.up_mbps == 10 && l.down_mbps == 50);
    CHECK(report_link_parse("100", &l) == 0 && l.up_mbps == 100 && l.down_mbps == 100);
    CHECK(report_link_parse("0.5,2.5", &l) == 0 && l.up_mbps == 0.5);
    CHECK(report_link_parse("0,50", &l) != 0);
    CHECK(report_link_parse("10,", &l) != 0);
    CHECK(report_link_parse("ten", &l) != 0);
    CHECK(report_link_parse("10,50,3", &l) != 0);
    CHECK(report_link_parse("inf", &l) != 0);
    report_xaxis x;
    CHECK(report_xaxis_parse("bytes", &x) == 0 && x == REPORT_X_BYTES);
    CHECK(report_xaxis_parse("step", &x) == 0 && x == REPORT_X_STEP);
    CHECK(report_xaxis_parse("time", &x) != 0);
    report_band band;
    CHECK(report_band_parse("ci95", &band) == 0 && band == REPORT_BAND_CI95);
    CHECK(report_band_parse("se", &band) != 0);
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
    test_log_ticks();
    test_log_charts();
    test_bands_and_overlap();
    test_merge();
    test_parsers();
    test_write();
    return check_exit();
}
