/* cmd_new_plugin.c: `mpsl new-plugin KIND NAME`: start a plugin from the template of its
 * kind (plugins/templates/template_KIND.c, installed under share/mpsl/templates): the name
 * and the symbol prefix substituted, the "how to copy" notes replaced by the build line.
 * Nothing here knows the ABI: the scaffold is the template, so it is written for whatever the
 * templates are (ABI 2.0: the descriptor is the MPSL_PLUGIN line at the end, which carries
 * the name that is substituted). A new kind needs only its template and a line in kinds[]. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "mpsl_build_config.h"
#include "util/util.h"

static const char new_plugin_usage[] =
    "usage: mpsl new-plugin KIND NAME [--dir DIR] [--force]\n"
    "Write DIR/NAME.c (default DIR: .), a complete plugin of KIND (dataset, tokenizer,\n"
    "encoder, head or aggregation) copied from its template with the name substituted, and\n"
    "print the command that builds it out of tree. NAME: a-z, 0-9 and '_', starting with a\n"
    "letter. Templates are looked up in $MPSL_TEMPLATE_PATH, beside the installed mpsl\n"
    "(../share/mpsl/templates), in the installed data folder and in the source tree.\n"
    "--force overwrites an existing file.\n";

/* Each template's symbol prefix, as written in plugins/templates/. */
static const struct {
    const char *kind, *prefix;
} kinds[] = {
    {"dataset", "td_"}, {"tokenizer", "tt_"}, {"encoder", "te_"}, {"head", "th_"},
    {"aggregation", "ta_"},
};

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The template file for a kind (malloc'd), or NULL; *searched lists where it looked. */
static char *find_template(const char *kind, char *searched, size_t n)
{
    char *dirs[16];
    int nd = 0;
    const char *env = getenv("MPSL_TEMPLATE_PATH");
    char *envcopy = env && *env ? mpsl_strdup(env) : NULL;
    for (char *save = NULL, *d = envcopy ? strtok_r(envcopy, ":", &save) : NULL; d && nd < 8;
         d = strtok_r(NULL, ":", &save)) {
        dirs[nd++] = mpsl_strdup(d);
    }
    free(envcopy);
    /* Beside this executable: <prefix>/bin/mpsl -> <prefix>/share/mpsl/templates, which also
     * finds a staged install (meson install --destdir). */
    char exe[4096];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    int in_build_tree = 0;
    if (len > 0) {
        exe[len] = '\0';
        in_build_tree = strncmp(exe, MPSL_BUILD_ROOT "/", strlen(MPSL_BUILD_ROOT) + 1) == 0;
        char *dir = cli_dir_of(exe);
        if (dir && !in_build_tree) {
            dirs[nd++] = mpsl_strfmt("%s/../share/mpsl/templates", dir);
        }
        free(dir);
    }
    /* A build-tree mpsl prefers its own sources; an installed one its installed copies. */
    if (in_build_tree) {
        dirs[nd++] = mpsl_strdup(MPSL_SOURCE_ROOT "/plugins/templates");
    }
    dirs[nd++] = mpsl_strdup(MPSL_CONFIGS_INSTALL_DIR "/../templates");
    if (!in_build_tree) {
        dirs[nd++] = mpsl_strdup(MPSL_SOURCE_ROOT "/plugins/templates");
    }
    char *found = NULL;
    size_t used = 0;
    searched[0] = '\0';
    for (int i = 0; i < nd; i++) {
        if (!dirs[i]) {
            continue;
        }
        char *path = mpsl_strfmt("%s/template_%s.c", dirs[i], kind);
        if (!found && path && is_file(path)) {
            found = path;
            path = NULL;
        }
        if (used < n) {
            used += (size_t)snprintf(searched + used, n - used, "%s%s", used ? ", " : "",
                                     dirs[i]);
        }
        free(path);
        free(dirs[i]);
    }
    return found;
}

static char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (len + 1 == cap) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    int failed = ferror(f);
    fclose(f);
    if (!buf || failed) {
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    *size = len;
    return buf;
}

static int ident_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Append n bytes to a growing string. */
static int append(char **out, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (*len + n + 1 > c) {
            c *= 2;
        }
        char *p = realloc(*out, c);
        if (!p) {
            return -1;
        }
        *out = p;
        *cap = c;
    }
    memcpy(*out + *len, s, n);
    *len += n;
    (*out)[*len] = '\0';
    return 0;
}

/* The template with "template_KIND" -> NAME, the prefix PFX_ (at a word start) -> NAME_, and
 * the comment block from "HOW TO MAKE" to the next blank comment line replaced by `intro`. */
static char *scaffold(const char *src, const char *kind, const char *prefix, const char *name,
                      const char *intro)
{
    char tname[64];
    snprintf(tname, sizeof tname, "template_%s", kind);
    size_t tlen = strlen(tname), plen = strlen(prefix), len = 0, cap = 0;
    char *out = NULL;
    const char *how = strstr(src, " * HOW TO MAKE");
    /* The first line says the file is "a complete KIND plugin to copy when writing your own". */
    static const char copy_note[] = " to copy when writing your own.";
    static const char own_note[] = ", started from mpsl's template.";
    const char *first_nl = strchr(src, '\n');
    const char *how_end = how ? strstr(how, "\n *\n") : NULL;
    int ok = 1;
    for (const char *p = src; *p && ok;) {
        if (!strncmp(p, copy_note, sizeof copy_note - 1) && first_nl && p < first_nl) {
            ok = append(&out, &len, &cap, own_note, sizeof own_note - 1) == 0;
            p += sizeof copy_note - 1;
        } else if (p == how && how_end) {
            ok = append(&out, &len, &cap, intro, strlen(intro)) == 0;
            p = how_end + 1; /* keep the blank comment line */
        } else if (!strncmp(p, tname, tlen)) {
            ok = append(&out, &len, &cap, name, strlen(name)) == 0;
            p += tlen;
        } else if (!strncmp(p, prefix, plen) && (p == src || !ident_char(p[-1]))) {
            ok = append(&out, &len, &cap, name, strlen(name)) == 0 &&
                 append(&out, &len, &cap, "_", 1) == 0;
            p += plen;
        } else {
            ok = append(&out, &len, &cap, p, 1) == 0;
            p++;
        }
    }
    if (!ok) {
        free(out);
        return NULL;
    }
    return out;
}

int cmd_new_plugin(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = ".";
    int force = 0;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'f': force = 1; break;
        case 'h': fputs(new_plugin_usage, stdout); return 0;
        case ':':
            fprintf(stderr, "mpsl new-plugin: option '%s' needs a value\n%s", argv[optind - 1],
                    new_plugin_usage);
            return 2;
        default:
            fprintf(stderr, "mpsl new-plugin: unknown option '%s'\n%s", argv[optind - 1],
                    new_plugin_usage);
            return 2;
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr, "mpsl new-plugin: want KIND and NAME\n%s", new_plugin_usage);
        return 2;
    }
    const char *kind = argv[optind], *name = argv[optind + 1];
    const char *prefix = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (!strcmp(kind, kinds[i].kind)) {
            prefix = kinds[i].prefix;
        }
    }
    if (!prefix) {
        fprintf(stderr, "mpsl new-plugin: unknown kind '%s' (dataset, tokenizer, encoder, head "
                        "or aggregation)\n", kind);
        return 2;
    }
    size_t nlen = strlen(name);
    if (nlen == 0 || nlen > 48 || !(name[0] >= 'a' && name[0] <= 'z') ||
        strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != nlen) {
        fprintf(stderr, "mpsl new-plugin: name '%s' must start with a-z and use only a-z, 0-9 "
                        "and '_' (at most 48 characters): it is the file name, the C prefix and "
                        "what experiments write in `plugin:`\n", name);
        return 2;
    }
    char searched[2048];
    char *tpl = find_template(kind, searched, sizeof searched);
    if (!tpl) {
        fprintf(stderr, "mpsl new-plugin: no template_%s.c found (searched %s; set "
                        "MPSL_TEMPLATE_PATH to a folder holding the templates)\n", kind, searched);
        return 1;
    }
    size_t size = 0;
    char *src = read_file(tpl, &size);
    if (!src) {
        fprintf(stderr, "mpsl new-plugin: cannot read %s: %s\n", tpl, strerror(errno));
        free(tpl);
        return 1;
    }
    char *build = mpsl_strfmt("cc -std=c11 -Wall -Wextra -O2 -shared -fPIC "
                              "$(pkg-config --cflags mpsl-plugin) %s.c -o %s.so -lm", name, name);
    char *intro = mpsl_strfmt(
        " * Made by `mpsl new-plugin %s %s` from template_%s.c. Build it out of tree with\n"
        " *     %s\n"
        " * and put %s.so next to your experiment file (or on MPSL_PLUGIN_PATH); experiments\n"
        " * name it `plugin: %s`. `mpsl plugins --params` lists it with its keys.\n",
        kind, name, kind, build ? build : "", name, name);
    char *text = intro ? scaffold(src, kind, prefix, name, intro) : NULL;
    char *path = mpsl_strfmt("%s/%s.c", dir, name);
    int status = 0;
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) { /* one level, like the scaffold itself */
        fprintf(stderr, "mpsl new-plugin: cannot create folder %s: %s\n", dir, strerror(errno));
        status = 1;
    } else if (!text || !path || !build) {
        fputs("mpsl new-plugin: out of memory\n", stderr);
        status = 1;
    } else if (!force && access(path, F_OK) == 0) {
        fprintf(stderr, "mpsl new-plugin: %s exists; not overwriting it (--force does)\n", path);
        status = 1;
    } else {
        FILE *f = fopen(path, "wb");
        size_t tl = strlen(text);
        if (!f || fwrite(text, 1, tl, f) != tl || fclose(f) != 0) {
            fprintf(stderr, "mpsl new-plugin: cannot write %s: %s\n", path, strerror(errno));
            status = 1;
        } else {
            printf("wrote %s (a %s plugin from %s)\nbuild it%s%s with:\n  %s\n", path, kind,
                   tpl, strcmp(dir, ".") ? " in " : "", strcmp(dir, ".") ? dir : "", build);
        }
    }
    free(text);
    free(intro);
    free(build);
    free(path);
    free(src);
    free(tpl);
    return status;
}
