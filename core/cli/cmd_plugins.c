/* cmd_plugins.c: `mpsl plugins [--params | --names] [--kind KIND] [DIR...]`: every plugin found
 * on the search path with name, kind, version, ABI and path; --params adds each one's keys,
 * --names prints only the names (for scripts and shell completion). Files that fail to load
 * are reported with the loader's reason. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "plugin/loader.h"
#include "util/util.h"

static const char *const type_names[] = {"int", "float", "bool", "string", "enum"};
_Static_assert(MPSL_COUNT(type_names) == MPSL_PARAM_T_COUNT, "a parameter type has no name");

static void print_params(const mpsl_plugin_desc *d)
{
    for (size_t i = 0; i < d->n_params; i++) {
        const mpsl_param_spec *p = &d->params[i];
        char range[96] = "";
        if (p->type == MPSL_PARAM_T_INT) {
            snprintf(range, sizeof range, " in [%lld, %lld]", (long long)p->min, (long long)p->max);
        } else if (p->type == MPSL_PARAM_T_FLOAT) {
            snprintf(range, sizeof range, " in [%g, %g]", p->min, p->max);
        } else if (p->type == MPSL_PARAM_T_ENUM) {
            snprintf(range, sizeof range, " one of %s", p->choices);
        }
        printf("      %-16s %s%s, %s%s%s  %s\n", p->key, type_names[p->type], range,
               p->required ? "required" : "default ", p->required ? "" : (p->def ? p->def : "none"),
               "", p->help ? p->help : "");
    }
}

typedef struct listing {
    int want_kind;     /* a mpsl_plugin_kind, or -1 for all */
    int show_params;   /* --params */
    int names_only;    /* --names */
    int found;         /* plugins listed so far */
    char **seen;       /* --names: names printed, so each is printed once */
    size_t n_seen;
} listing;

/* --names: the first plugin of a name on the path is the one a run would load, so a later
 * one of the same name is not a choice of its own. */
static int already_seen(listing *ls, const char *name)
{
    for (size_t i = 0; i < ls->n_seen; i++) {
        if (strcmp(ls->seen[i], name) == 0) {
            return 1;
        }
    }
    char **grown = realloc(ls->seen, (ls->n_seen + 1) * sizeof *grown);
    char *copy = grown ? mpsl_strdup(name) : NULL;
    if (grown) {
        ls->seen = grown;
    }
    if (copy) {
        ls->seen[ls->n_seen++] = copy;
    }
    return 0;
}

/* Try every .so in dir; returns the number of failures. */
static int scan_dir(const char *dir, listing *ls)
{
    DIR *d = opendir(dir);
    if (!d) {
        return 0;
    }
    int failures = 0;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len > 3 && strcmp(e->d_name + len - 3, ".so") == 0) {
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                char **grown = realloc(names, cap * sizeof *names);
                if (!grown) {
                    break;
                }
                names = grown;
            }
            names[n++] = mpsl_strfmt("%s/%s", dir, e->d_name);
        }
    }
    closedir(d);
    /* Sorted, so the listing is stable. */
    for (size_t i = 1; i < n; i++) {
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    }
    for (size_t i = 0; i < n; i++) {
        loaded_plugin lp;
        mpsl_error err = {{0}};
        if (!names[i]) {
            continue;
        }
        if (plugin_load(names[i], PLUGIN_ANY_KIND, &lp, &err) != MPSL_OK) {
            fprintf(stderr, "mpsl plugins: %s\n", err.msg);
            failures++;
        } else {
            const mpsl_plugin_desc *p = lp.desc;
            if (ls->want_kind >= 0 && (int)p->kind != ls->want_kind) {
                /* another kind: not listed */
            } else if (ls->names_only) {
                if (!already_seen(ls, p->name)) {
                    printf("%s\n", p->name);
                }
                ls->found++;
            } else {
                printf("%-16s %-12s %-8s %u.%-4u %s\n", p->name, plugin_kind_name(p->kind),
                       p->version, p->abi_major, p->abi_minor, lp.path);
                if (ls->show_params) {
                    if (p->summary) {
                        printf("      %s\n", p->summary);
                    }
                    print_params(p);
                }
                ls->found++;
            }
            plugin_unload(&lp);
        }
        free(names[i]);
    }
    free(names);
    return failures;
}

int cmd_plugins(int argc, char **argv)
{
    listing ls = {.want_kind = -1};
    char **extra = calloc((size_t)argc + 1, sizeof *extra);
    int n_extra = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--params") == 0) {
            ls.show_params = 1;
        } else if (strcmp(argv[i], "--names") == 0) {
            ls.names_only = 1;
        } else if (strcmp(argv[i], "--kind") == 0 && i + 1 < argc) {
            mpsl_plugin_kind k;
            if (plugin_kind_from_name(argv[++i], &k) != MPSL_OK) {
                fprintf(stderr, "mpsl plugins: unknown kind '%s' (dataset, tokenizer, encoder, "
                        "head, aggregation)\n", argv[i]);
                free(extra);
                return 2;
            }
            ls.want_kind = (int)k;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: mpsl plugins [--params | --names] [--kind KIND] [DIR...]\n"
                   "Lists plugins in DIRs, else on the search path ($MPSL_PLUGIN_PATH, the build\n"
                   "tree when run from it, the installed plugin directory). --params adds each\n"
                   "plugin's keys; --names prints only the names, one a line, each once.\n");
            free(extra);
            return 0;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "mpsl plugins: unknown option %s\n", argv[i]);
            free(extra);
            return 2;
        } else {
            extra[n_extra++] = argv[i];
        }
    }
    if (ls.show_params && ls.names_only) {
        fprintf(stderr, "mpsl plugins: --params and --names do not go together (one of them)\n");
        free(extra);
        return 2;
    }
    char **dirs = n_extra ? NULL : plugin_search_path(NULL);
    char **list = n_extra ? extra : dirs;
    if (!ls.names_only) {
        printf("%-16s %-12s %-8s %-6s %s\n", "NAME", "KIND", "VERSION", "ABI", "PATH");
    }
    int failures = 0;
    for (char **d = list; d && *d; d++) {
        failures += scan_dir(*d, &ls);
        for (int k = 0; k < MPSL_KIND_COUNT; k++) {
            char *sub = mpsl_strfmt("%s/%s", *d, plugin_kind_name((mpsl_plugin_kind)k));
            if (sub) {
                failures += scan_dir(sub, &ls);
            }
            free(sub);
        }
    }
    /* With --names an empty list is an answer in itself (a script reads no lines). */
    if (!ls.found && !ls.names_only) {
        fprintf(stderr, "mpsl plugins: no plugins found\n");
    }
    for (size_t i = 0; i < ls.n_seen; i++) {
        free(ls.seen[i]);
    }
    free(ls.seen);
    plugin_path_free(dirs);
    free(extra);
    return failures ? 1 : 0;
}
