/* bad_plugins.c: one source, many broken plugins, each chosen by a -D flag, so the loader's
 * every refusal can be tested on a real shared object. */
#include <mpsl/plugin.h>

__attribute__((unused)) static int noop_role(const mpsl_host *h, const mpsl_session_api *api,
                                              mpsl_role *r, const void *params,
                                              mpsl_error *err)
{
    (void)h;
    (void)api;
    (void)r;
    (void)params;
    (void)err;
    return MPSL_OK;
}

static const mpsl_strategy_api api = {
    sizeof(mpsl_strategy_api), MPSL_SESSION_API_VERSION, 0,
#ifdef BAD_NULL_FUNCTION
    0,
#else
    noop_role,
#endif
    0,
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
