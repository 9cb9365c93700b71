/* cmd_convert.c: `mpsl convert NAME --in RAW_DIR --out FILE [options]` converts a dataset's
 * raw layout (as `mpsl fetch NAME` leaves it) into one prepared file for the `prepared`
 * dataset plugin; `mpsl convert --list` names the converters. See docs/convert.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "convert/convert.h"
#include "util/util.h"

static const char usage_text[] =
    "usage: mpsl convert NAME --in RAW_DIR --out FILE [--image-size N] "
    "[--max-caption-bytes N]\n"
    "                    [--limit N] [--threads N] [--set KEY=VALUE]... [--quiet]\n"
    "       mpsl convert --list\n";

static void help(void)
{
    printf("%s\n"
           "Converts dataset NAME from its raw layout in RAW_DIR (the directory `mpsl fetch\n"
           "NAME` fills) into one prepared file FILE, read by the `prepared` dataset plugin.\n\n"
           "  --in DIR                the raw dataset directory\n"
           "  --out FILE              the prepared file (written to FILE.tmp.PID, then renamed)\n"
           "  --image-size N          square image side in pixels (default 224)\n"
           "  --max-caption-bytes N   UTF-8 bytes kept per caption/question/tweet (default:\n"
           "                          the dataset's, see docs/convert.md)\n"
           "  --limit N               at most N samples per split (for trials)\n"
           "  --threads N             image decoding threads (default: CPUs, at most 8)\n"
           "  --set KEY=VALUE         a dataset-specific option (e.g. val=train, coco_dir=DIR)\n"
           "  --quiet                 no progress lines\n"
           "  --list                  the converters\n",
           usage_text);
}

static int parse_int(const char *flag, const char *v, long long lo, long long hi,
                     long long *out)
{
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "mpsl convert: %s %s: expected an integer in %lld..%lld\n", flag, v,
                lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

int cmd_convert(int argc, char **argv)
{
    convert_options o;
    convert_options_init(&o);
    int list = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long long v;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help();
            return 0;
        } else if (strcmp(a, "--list") == 0) {
            list = 1;
        } else if (strcmp(a, "--quiet") == 0) {
            o.quiet = 1;
        } else if (strcmp(a, "--in") == 0 && i + 1 < argc) {
            o.in_dir = argv[++i];
        } else if (strcmp(a, "--out") == 0 && i + 1 < argc) {
            o.out_path = argv[++i];
        } else if (strcmp(a, "--image-size") == 0 && i + 1 < argc) {
            if (parse_int(a, argv[++i], 1, 4096, &v) != 0) {
                return 2;
            }
            o.image_size = (int)v;
        } else if (strcmp(a, "--max-caption-bytes") == 0 && i + 1 < argc) {
            if (parse_int(a, argv[++i], 1, 65536, &v) != 0) {
                return 2;
            }
            o.max_caption_bytes = (int)v;
        } else if (strcmp(a, "--limit") == 0 && i + 1 < argc) {
            if (parse_int(a, argv[++i], 1, 1LL << 40, &v) != 0) {
                return 2;
            }
            o.limit = v;
        } else if (strcmp(a, "--threads") == 0 && i + 1 < argc) {
            if (parse_int(a, argv[++i], 1, 64, &v) != 0) {
                return 2;
            }
            o.threads = (int)v;
        } else if (strcmp(a, "--set") == 0 && i + 1 < argc) {
            char *kv = argv[++i];
            char *eq = strchr(kv, '=');
            if (!eq || eq == kv) {
                fprintf(stderr, "mpsl convert: --set %s: expected KEY=VALUE\n", kv);
                return 2;
            }
            if (o.n_set == CONVERT_MAX_SET) {
                fprintf(stderr, "mpsl convert: more than %d --set options\n", CONVERT_MAX_SET);
                return 2;
            }
            *eq = '\0';
            o.set_key[o.n_set] = kv;
            o.set_val[o.n_set++] = eq + 1;
        } else if (a[0] == '-') {
            fprintf(stderr, "mpsl convert: unknown option or missing value: %s\n%s", a,
                    usage_text);
            return 2;
        } else if (!o.name) {
            o.name = a;
        } else {
            fprintf(stderr, "mpsl convert: unexpected argument %s\n%s", a, usage_text);
            return 2;
        }
    }
    if (list) {
        size_t n;
        const convert_entry *all = convert_all(&n);
        for (size_t i = 0; i < n; i++) {
            printf("%-16s %s\n", all[i].name, all[i].summary);
        }
        return 0;
    }
    if (!o.name || !o.in_dir || !o.out_path) {
        fprintf(stderr, "%s", usage_text);
        return 2;
    }
    mpsl_error err = {{0}};
    if (convert_run(&o, &err) != MPSL_OK) {
        fprintf(stderr, "mpsl convert: %s\n", err.msg);
        return 1;
    }
    return 0;
}
