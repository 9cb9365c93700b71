/* loader.c: dlopen()ing plugins and checking what they hand back before anything uses it.
 * Every refusal names the file and the reason, and closes the library again. */
#include "loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/util.h"

static const char *const kind_names[] = {"dataset", "tokenizer", "encoder", "head",
                                         "aggregation"};
_Static_assert(MPSL_COUNT(kind_names) == MPSL_KIND_COUNT, "a plugin kind has no name");

const char *plugin_kind_name(mpsl_plugin_kind kind)
{
    if ((int)kind < 0 || kind >= MPSL_KIND_COUNT) {
        return "unknown";
    }
    return kind_names[kind];
}

int plugin_kind_from_name(const char *name, mpsl_plugin_kind *kind)
{
    for (int i = 0; i < MPSL_KIND_COUNT; i++) {
        if (strcmp(name, kind_names[i]) == 0) {
            *kind = (mpsl_plugin_kind)i;
            return MPSL_OK;
        }
    }
    return MPSL_ERR_INVALID;
}

/* The smallest table each kind must provide: everything up to its last required function. */
static size_t min_table_size(mpsl_plugin_kind kind)
{
    switch (kind) {
    case MPSL_KIND_DATASET:
        return offsetof(mpsl_dataset_api, fill) + sizeof(void *);
    case MPSL_KIND_TOKENIZER:
    case MPSL_KIND_ENCODER:
    case MPSL_KIND_HEAD:
        return offsetof(mpsl_module_api, backward) + sizeof(void *);
    case MPSL_KIND_AGGREGATION:
        return offsetof(mpsl_strategy_api, client) + sizeof(void *);
    default:
        return 0;
    }
}

/* Each table starts with uint32_t size followed by function pointers that must all be set. */
static int check_table(const char *path, const mpsl_plugin_desc *d, mpsl_error *err)
{
    if (!d->api) {
        return mpsl_errs(err, MPSL_ERR_PLUGIN, "plugin %s (%s): descriptor has no function table",
                         path, d->name);
    }
    uint32_t size = *(const uint32_t *)d->api;
    size_t need = min_table_size(d->kind);
    if (size < need) {
        return mpsl_errs(err, MPSL_ERR_PLUGIN,
                         "plugin %s (%s): %s table is %u bytes, at least %zu expected "
                         "(was it built against an older plugin.h?)",
                         path, d->name, plugin_kind_name(d->kind), size, need);
    }
    if (d->kind == MPSL_KIND_AGGREGATION) {
        /* Roles: check and client are optional, server is required; the session API the
         * strategy was built against must not be newer than this host's. */
        const mpsl_strategy_api *st = d->api;
        if (!st->server) {
            return mpsl_errs(err, MPSL_ERR_PLUGIN, "plugin %s (%s): strategy has no server role",
                             path, d->name);
        }
        if (st->session_version < 1 || st->session_version > MPSL_SESSION_API_VERSION) {
            return mpsl_errs(err, MPSL_ERR_PLUGIN,
                             "plugin %s (%s) was built for session API %u, this mpsl has %d "
                             "(rebuild the strategy against this mpsl)",
                             path, d->name, st->session_version, MPSL_SESSION_API_VERSION);
        }
        return MPSL_OK;
    }
    /* All function pointers up to `need` are required. */
    const char *base = (const char *)d->api;
    size_t first_fn = sizeof(void *); /* the uint32_t size is padded to pointer alignment */
    for (size_t off = first_fn; off < need; off += sizeof(void *)) {
        void *fn;
        memcpy(&fn, base + off, sizeof fn);
        if (!fn) {
            return mpsl_errs(err, MPSL_ERR_PLUGIN,
                             "plugin %s (%s): function %zu of its %s table is NULL", path,
                             d->name, off / sizeof(void *), plugin_kind_name(d->kind));
        }
    }
    return MPSL_OK;
}

static int check_params(const char *path, const mpsl_plugin_desc *d, mpsl_error *err)
{
    if (d->n_params > 0 && !d->params) {
        return mpsl_errs(err, MPSL_ERR_PLUGIN, "plugin %s (%s): n_params is %zu but params is NULL",
                         path, d->name, d->n_params);
    }
    for (size_t i = 0; i < d->n_params; i++) {
        const mpsl_param_spec *p = &d->params[i];
        size_t width = p->type == MPSL_PARAM_T_INT      ? sizeof(int64_t)
                       : p->type == MPSL_PARAM_T_FLOAT  ? sizeof(double)
                       : p->type == MPSL_PARAM_T_STRING ? sizeof(const char *)
                                                        : sizeof(int);
        if (!p->key || (int)p->type < 0 || p->type >= MPSL_PARAM_T_COUNT ||
            p->offset + width > d->params_size ||
            (p->type == MPSL_PARAM_T_ENUM && !p->choices)) {
            return mpsl_errs(err, MPSL_ERR_PLUGIN,
                             "plugin %s (%s): parameter %zu ('%s') is malformed (type, "
                             "offset beyond params_size %zu, or ENUM without choices)",
                             path, d->name, i, p->key ? p->key : "?", d->params_size);
        }
    }
    return MPSL_OK;
}

static int check_descriptor(const char *path, const mpsl_plugin_desc *d,
                            mpsl_plugin_kind expected, mpsl_error *err)
{
    if (d->abi_major != MPSL_ABI_MAJOR) {
        return mpsl_errs(err, MPSL_ERR_PLUGIN,
                         "plugin %s was built for ABI %u.%u, this mpsl is %d.%d (major "
                         "versions differ: rebuild the plugin against mpsl/plugin.h of ABI "
                         "%d.x; docs/plugins.md says what changed)",
                         path, d->abi_major, d->abi_minor, MPSL_ABI_MAJOR, MPSL_ABI_MINOR,
                         MPSL_ABI_MAJOR);
    }
    if (d->abi_minor > MPSL_ABI_MINOR) {
        return mpsl_errs(err, MPSL_ERR_PLUGIN,
                         "plugin %s was built for ABI %u.%u, this mpsl is %d.%d (the plugin "
                         "needs a newer mpsl)",
                         path, d->abi_major, d->abi_minor, MPSL_ABI_MAJOR, MPSL_ABI_MINOR);
    }
    if (!d->name || !d->name[0] || !d->version) {
        return mpsl_errs(err, MPSL_ERR_PLUGIN, "plugin %s: descriptor lacks a name or version",
                         path);
    }
    if (strspn(d->name, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(d->name)) {
        return mpsl_errs(err, MPSL_ERR_PLUGIN,
                         "plugin %s: name '%s' may only use a-z, 0-9 and '_'", path, d->name);
    }
    if ((int)d->kind < 0 || d->kind >= MPSL_KIND_COUNT) {
        return mpsl_errs(err, MPSL_ERR_PLUGIN, "plugin %s (%s): unknown kind %d", path, d->name,
                         (int)d->kind);
    }
    if (expected != PLUGIN_ANY_KIND && d->kind != expected) {
        return mpsl_errs(err, MPSL_ERR_PLUGIN,
                         "plugin %s (%s) is of kind '%s', but this slot needs kind '%s'", path,
                         d->name, plugin_kind_name(d->kind), plugin_kind_name(expected));
    }
    int rc = check_table(path, d, err);
    if (rc == MPSL_OK) {
        rc = check_params(path, d, err);
    }
    return rc;
}

int plugin_load(const char *path, mpsl_plugin_kind expected_kind, loaded_plugin *out,
                mpsl_error *err)
{
    memset(out, 0, sizeof *out);
    struct stat st;
    if (stat(path, &st) != 0) {
        return mpsl_errs(err, MPSL_ERR_PLUGIN, "cannot open plugin %s: %s", path, strerror(errno));
    }
    dlerror();
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        /* dlerror() names unresolved symbols and bad ELF files itself. */
        return mpsl_errs(err, MPSL_ERR_PLUGIN, "cannot load plugin %s: %s", path, dlerror());
    }
    mpsl_plugin_entry_fn entry;
    void *sym = dlsym(handle, MPSL_ENTRY_SYMBOL);
    memcpy(&entry, &sym, sizeof entry); /* object to function pointer, as POSIX allows */
    if (!sym) {
        dlclose(handle);
        return mpsl_errs(err, MPSL_ERR_PLUGIN,
                         "no entry point in plugin %s: it must export '%s' (declare it with "
                         "MPSL_PLUGIN_EXPORT)",
                         path, MPSL_ENTRY_SYMBOL);
    }
    const mpsl_plugin_desc *desc = NULL;
    mpsl_error perr = {{0}};
    int rc = entry(host_services(), &desc, &perr);
    if (rc != MPSL_OK || !desc) {
        dlclose(handle);
        return mpsl_errs(err, MPSL_ERR_PLUGIN, "plugin %s failed to start: %s", path,
                         perr.msg[0] ? perr.msg : "its entry point returned no descriptor");
    }
    rc = check_descriptor(path, desc, expected_kind, err);
    if (rc != MPSL_OK) {
        dlclose(handle);
        return rc;
    }
    out->handle = handle;
    out->desc = desc;
    out->path = realpath(path, NULL); /* absolute: runs record where the code came from */
    if (!out->path) {
        dlclose(handle);
        memset(out, 0, sizeof *out);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory loading %s", path);
    }
    return MPSL_OK;
}

void plugin_unload(loaded_plugin *p)
{
    if (p->handle) {
        dlclose(p->handle);
    }
    free(p->path);
    memset(p, 0, sizeof *p);
}
