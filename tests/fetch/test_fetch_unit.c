/* test_fetch_unit.c: the rules of mpsl fetch checked directly, table-driven: which archive
 * paths and symlink targets are safe, how --mirror maps URLs, that every shipped manifest in
 * datasets/ loads, and that broken manifests are refused with file:line:column. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fetch/fetch.h"
#include "fetch/fetch_internal.h"

static void test_paths(void)
{
    static const struct {
        const char *path;
        int safe;
    } cases[] = {
        {"a.txt", 1}, {"dir/sub/b.txt", 1}, {"dir/", 1}, {"./a", 1}, {"a//b", 1},
        {"..a/b", 1}, {"a/..b", 1}, {"a...", 1},
        {"", 0}, {"/etc/passwd", 0}, {"/", 0}, {"..", 0}, {"../a", 0}, {"a/../b", 0},
        {"a/..", 0}, {"a/../../b", 0}, {"./../a", 0},
    };
    for (size_t i = 0; i < MPSL_COUNT(cases); i++) {
        char why[128];
        int safe = fetch_entry_path_safe(cases[i].path, why, sizeof why);
        if (safe != cases[i].safe) {
            fprintf(stderr, "path '%s': expected %s\n", cases[i].path,
                    cases[i].safe ? "safe" : "refused");
        }
        CHECK(safe == cases[i].safe);
    }
}

static void test_symlinks(void)
{
    static const struct {
        const char *path, *target;
        int safe;
    } cases[] = {
        {"link", "file", 1},
        {"a/link", "../file", 1},          /* up to the root, not beyond */
        {"a/b/link", "../../file", 1},
        {"a/b/link", "../c/d", 1},
        {"a/link", "./x", 1},
        {"link", ".", 1},
        {"link", "../file", 0},            /* beyond the root */
        {"a/link", "../../file", 0},
        {"a/b/link", "../../../etc", 0},
        {"link", "/etc/passwd", 0},        /* absolute */
        {"link", "", 0},
        {"link", "sub/../..", 0},          /* '..' after a name: could climb a symlink */
        {"a/link", "b/../file", 0},
        {"../link", "file", 0},            /* the link's own path is checked too */
    };
    for (size_t i = 0; i < MPSL_COUNT(cases); i++) {
        char why[256];
        int safe = fetch_symlink_safe(cases[i].path, cases[i].target, why, sizeof why);
        if (safe != cases[i].safe) {
            fprintf(stderr, "symlink '%s' -> '%s': expected %s (%s)\n", cases[i].path,
                    cases[i].target, cases[i].safe ? "safe" : "refused", safe ? "" : why);
        }
        CHECK(safe == cases[i].safe);
    }
}

static void test_mirror(void)
{
    static const struct {
        const char *mirror, *url, *want;
    } cases[] = {
        {"http://127.0.0.1:8000/fm", "https://raw.githubusercontent.com/z/f/master/data/x.gz",
         "http://127.0.0.1:8000/fm/x.gz"},
        {"http://m/", "http://h/a/b.zip", "http://m/b.zip"},
        {"http://m///", "http://h/b.zip", "http://m/b.zip"},
        {"https://m/data", "https://h/resolve/main/M.tar.gz?download=true", "https://m/data/M.tar.gz"},
        {"https://m/data", "https://h/f.zip#frag", "https://m/data/f.zip"},
        {"http://m", "http://h/", NULL},    /* no file name */
        {"http://m", "http://h", NULL},
    };
    for (size_t i = 0; i < MPSL_COUNT(cases); i++) {
        char *got = fetch_mirror_url(cases[i].mirror, cases[i].url);
        int same = got && cases[i].want ? strcmp(got, cases[i].want) == 0 : got == cases[i].want;
        if (!same) {
            fprintf(stderr, "mirror %s + %s: got %s, expected %s\n", cases[i].mirror,
                    cases[i].url, got ? got : "NULL", cases[i].want ? cases[i].want : "NULL");
        }
        CHECK(same);
        free(got);
    }
}

/* Every manifest shipped in datasets/ loads, and says what the docs promise. */
static void test_shipped(const char *source)
{
    static const char *const names[] = {"fashion_mnist", "flickr30k", "mscoco", "coco_qa",
                                        "meld", "ucf101", "kinetics_sounds", "b_t4sa"};
    for (size_t i = 0; i < MPSL_COUNT(names); i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/datasets/%s.yaml", source, names[i]);
        fetch_manifest m;
        mpsl_error err = {{0}};
        int rc = fetch_manifest_load(path, &m, &err);
        if (rc != MPSL_OK) {
            fprintf(stderr, "%s\n", err.msg);
        }
        CHECK(rc == MPSL_OK);
        if (rc != MPSL_OK) {
            continue;
        }
        CHECK(strcmp(m.name, names[i]) == 0);
        CHECK(m.n_files > 0 && m.n_modalities > 0 && m.used_by && m.license && m.homepage);
        for (size_t k = 0; k < m.n_files; k++) {
            const fetch_file *f = &m.files[k];
            CHECK(f->n_urls > 0 || m.login_required);
            for (size_t u = 0; u < f->n_urls; u++) {
                char *mapped = fetch_mirror_url("http://127.0.0.1:1/m", f->urls[u]);
                CHECK(mapped != NULL); /* every URL works with --mirror */
                free(mapped);
            }
        }
        if (strcmp(names[i], "b_t4sa") == 0) {
            CHECK(m.login_required && m.manual_instructions);
        }
        if (strcmp(names[i], "kinetics_sounds") == 0) {
            CHECK(m.n_classes >= 30);
        }
        if (strcmp(names[i], "fashion_mnist") == 0) {
            CHECK(m.n_files == 4 && m.files[0].size == 26421880 && m.files[0].md5);
        }
        fetch_manifest_free(&m);
    }
}

/* A broken manifest: its text, and what the refusal must say. */
static void test_refusals(void)
{
    static const char head[] = "description: d\nlicense: l\nhomepage: h\nmodalities: [image]\n"
                               "task: t\nused_by: u\n";
    static const struct {
        const char *body, *needle;
    } cases[] = {
        {"files:\n  - {name: a, urls: [http://h/a], size: 1, sha256: null}\n",
         "add a checksum_note"},
        {"checksum_note: c\nfiles:\n  - {name: a, urls: [http://h/a], size: 1, sha256: null}\n",
         NULL},
        {"descripton: x\nfiles: []\n", "unknown key 'descripton'"},
        {"files: []\n", "'files' must be a non-empty list"},
        {"files:\n  - {name: a, urls: [http://h/a], size: 1, sha256: abc}\n",
         "must be 64 hex digits"},
        {"files:\n  - {name: a, urls: [http://h/a], size: 1}\n", "has no 'sha256' key"},
        {"files:\n  - {name: a, urls: [ftp://h/a], size: 1, sha256: ~}\n",
         "only http:// and https:// URLs"},
        {"files:\n  - {name: a/b, urls: [http://h/a], size: 1, sha256: ~}\n",
         "must be a plain file name"},
        {"files:\n  - {name: .hidden, urls: [http://h/a], size: 1, sha256: ~}\n",
         "must not start with '.'"},
        {"files:\n  - {name: a.part, urls: [http://h/a], size: 1, sha256: ~}\n",
         "must not end in '.part'"},
        {"files:\n  - {name: a, urls: [http://h/a], size: -5, sha256: ~}\n",
         "expected a whole number of bytes"},
        {"files:\n  - {name: a, urls: [http://h/a], size: 1.5, sha256: ~}\n",
         "expected a whole number of bytes"},
        {"files:\n  - {name: a, urls: [http://h/a], sze: 1, sha256: ~}\n",
         "did you mean 'size'"},
        {"checksum_note: c\nfiles:\n  - {name: a, urls: [], size: 1, sha256: ~}\n",
         "add manual_instructions"},
        {"checksum_note: c\nfiles:\n  - {name: a.zip, urls: [http://h/a], size: 1, sha256: ~, "
         "extract: true}\n", "need both max_extracted_bytes and max_entries"},
        {"checksum_note: c\nmax_extracted_bytes: 10\nmax_entries: 1\nfiles:\n  - {name: a.zip, "
         "urls: [http://h/a], size: 1, sha256: ~, extract: true, format: cpio}\n",
         "expected one of auto, tar"},
        {"checksum_note: c\nfiles:\n  - {name: a, urls: [http://h/a], size: 1, sha256: ~}\n"
         "  - {name: a, urls: [http://h/b], size: 1, sha256: ~}\n", "clashes with file 'a'"},
        {"login_required: yes\nfiles: []\n", "YAML 1.2 booleans"},
    };
    char dir[] = "/tmp/mpsl-fetch-unit.XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    for (size_t i = 0; i < MPSL_COUNT(cases); i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/t%zu.yaml", dir, i);
        FILE *f = fopen(path, "w");
        fprintf(f, "name: t%zu\n%s%s", i, head, cases[i].body);
        fclose(f);
        fetch_manifest m;
        mpsl_error err = {{0}};
        int rc = fetch_manifest_load(path, &m, &err);
        if (!cases[i].needle) {
            if (rc != MPSL_OK) {
                fprintf(stderr, "case %zu: %s\n", i, err.msg);
            }
            CHECK(rc == MPSL_OK);
            fetch_manifest_free(&m);
        } else {
            CHECK(rc != MPSL_OK);
            CHECK_CONTAINS(err.msg, cases[i].needle);
            CHECK_CONTAINS(err.msg, path); /* file:line:column */
        }
        unlink(path);
    }
    /* The name must match the file name. */
    char path[256];
    snprintf(path, sizeof path, "%s/other.yaml", dir);
    fetch_manifest m;
    mpsl_error err = {{0}};
    FILE *f = fopen(path, "w");
    fprintf(f, "name: t0\n%sfiles:\n  - {name: a, urls: [http://h/a], size: 1, sha256: "
               "0000000000000000000000000000000000000000000000000000000000000000}\n", head);
    fclose(f);
    CHECK(fetch_manifest_load(path, &m, &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "must match the file name ('other.yaml')");
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const char *source = getenv("MPSL_SOURCE");
    test_paths();
    test_symlinks();
    test_mirror();
    if (source) {
        test_shipped(source);
    }
    test_refusals();
    return check_exit();
}
