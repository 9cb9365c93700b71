/* bad_plugins.c: one source, many broken plugins, each chosen by a -D flag, so the loader's
 * every refusal can be tested on a real shared object. */
#include <mpsl/plugin.h>

__attribute__((unused)) static int noop_run(void *state, mpsl_session *s, mpsl_error *err)
{
    (void)state;
    (void)s;
    (void)err;
    return MPSL_OK;
}
static int noop_create(const mpsl_host *h, mpsl_session *s, const void *params,
                       const char *where, void **state, mpsl_error *err)
{
    (void)h;
    (void)s;
    (void)params;
    (void)where;
    (void)err;
    *state = 0;
    return MPSL_OK;
}
static void noop_destroy(void *state) { (void)state; }

static const mpsl_aggregation_api api = {
    sizeof(mpsl_aggregation_api), noop_create, noop_destroy,
#ifdef BAD_NULL_FUNCTION
    0,
#else
    noop_run,
#endif
};

#ifndef ABI_MAJOR
#define ABI_MAJOR MPSL_ABI_MAJOR
#endif
#ifndef ABI_MINOR
#define ABI_MINOR MPSL_ABI_MINOR
#endif

__attribute__((unused)) static const mpsl_plugin_desc desc = {
    ABI_MAJOR, ABI_MINOR, "broken", "0.0.1", MPSL_KIND_AGGREGATION, "a plugin for loader tests",
    0, 0, 0, &api,
};

#ifdef BAD_UNRESOLVED
/* Never defined anywhere: RTLD_NOW must refuse the library. */
extern int mpsl_symbol_that_does_not_exist(void);
int (*volatile keep_reference)(void) = mpsl_symbol_that_does_not_exist;
#endif

#ifdef BAD_NO_ENTRY
MPSL_PLUGIN_EXPORT int not_the_entry_point(void);
MPSL_PLUGIN_EXPORT int not_the_entry_point(void) { return desc.kind; }
#else
MPSL_PLUGIN_EXPORT int mpsl_plugin_entry(const mpsl_host *h, const mpsl_plugin_desc **out,
                                         mpsl_error *err)
{
#ifdef BAD_ENTRY_FAILS
    h->error_set(err, "this plugin refuses to start: its licence file is missing");
    (void)out;
    return MPSL_ERR_PLUGIN;
#else
    (void)h;
    (void)err;
    *out = &desc;
    return MPSL_OK;
#endif
}
#endif
