/* cmd_plugins.c: `mpsl plugins [--params] [--kind KIND] [DIR...]`: every plugin found on the
 * search path with name, kind, version, ABI and path; --params adds each one's keys. Files
 * that fail to load are reported with the loader's reason. */
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

/* Try every .so in dir; returns the number of failures. */
static int scan_dir(const char *dir, int want_kind, int show_params, int *found)
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
            if (want_kind < 0 || (int)p->kind == want_kind) {
                printf("%-16s %-12s %-8s %u.%-4u %s\n", p->name, plugin_kind_name(p->kind),
                       p->version, p->abi_major, p->abi_minor, lp.path);
                if (show_params) {
                    if (p->summary) {
                        printf("      %s\n", p->summary);
                    }
                    print_params(p);
                }
                (*found)++;
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
    int show_params = 0, want_kind = -1;
    char **extra = calloc((size_t)argc + 1, sizeof *extra);
    int n_extra = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--params") == 0) {
            show_params = 1;
        } else if (strcmp(argv[i], "--kind") == 0 && i + 1 < argc) {
            mpsl_plugin_kind k;
            if (plugin_kind_from_name(argv[++i], &k) != MPSL_OK) {
                fprintf(stderr, "mpsl plugins: unknown kind '%s' (dataset, tokenizer, encoder, "
                        "head, aggregation)\n", argv[i]);
                free(extra);
                return 2;
            }
            want_kind = (int)k;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: mpsl plugins [--params] [--kind KIND] [DIR...]\n"
                   "Lists plugins in DIRs, else on the search path ($MPSL_PLUGIN_PATH, the build\n"
                   "tree when run from it, the installed plugin directory).\n");
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
    char **dirs = n_extra ? NULL : plugin_search_path(NULL);
    char **list = n_extra ? extra : dirs;
    printf("%-16s %-12s %-8s %-6s %s\n", "NAME", "KIND", "VERSION", "ABI", "PATH");
    int failures = 0, found = 0;
    for (char **d = list; d && *d; d++) {
        failures += scan_dir(*d, want_kind, show_params, &found);
        for (int k = 0; k < MPSL_KIND_COUNT; k++) {
            char *sub = mpsl_strfmt("%s/%s", *d, plugin_kind_name((mpsl_plugin_kind)k));
            if (sub) {
                failures += scan_dir(sub, want_kind, show_params, &found);
            }
            free(sub);
        }
    }
    if (!found) {
        fprintf(stderr, "mpsl plugins: no plugins found\n");
    }
    plugin_path_free(dirs);
    free(extra);
    return failures ? 1 : 0;
}
