/* host.c: the table of services every plugin receives from mpsl_plugin_entry() on: errors,
 * logging, memory, kernels and the shared helpers. Strategies get the session API besides
 * (train/session_api.c), with each role. */
#include <stdarg.h>
#include <stdio.h>

#include "host_helpers.h"
#include "kernels/kernels.h"
#include "loader.h"
#include "util/util.h"

static void host_error_set(mpsl_error *err, const char *fmt, ...)
{
    if (!err) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

static void host_log(mpsl_log_level level, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    mpsl_log(level, "%s", buf);
}

const mpsl_host *host_services(void)
{
    static mpsl_host table;
    if (table.size == 0) {
        table = (mpsl_host){
            .size = sizeof(mpsl_host),
            .abi_major = MPSL_ABI_MAJOR,
            .abi_minor = MPSL_ABI_MINOR,
            .error_set = host_error_set,
            .log = host_log,
            .alloc = mpsl_alloc,
            .free = mpsl_free,
            .kernels = kernels_table(),
            .rng = &host_rng_api,
            .half = &host_half_api,
            .mel = &host_mel_api,
            .idx = &host_idx_api,
            .prepared = &host_prepared_api,
            .files = &host_files_api,
        };
    }
    return &table;
}
