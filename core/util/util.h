/* util.h: small helpers every core file uses: error messages, aligned allocation, strings,
 * time and memory readings, and (through util/rng.h) the run's seeded random generator. */
#ifndef MPSL_UTIL_H
#define MPSL_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "mpsl/plugin.h"

/* printf into err->msg (truncating safely). Returns MPSL_ERR_INVALID for convenience. */
int mpsl_err(mpsl_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, with an explicit status to return. */
int mpsl_errs(mpsl_error *err, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prepend "prefix: " to an existing message (for adding context on the way up). */
void mpsl_err_prefix(mpsl_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void mpsl_log(mpsl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Messages below this level are not printed (default INFO; MPSL_LOG=debug lowers it). */
void mpsl_log_set_level(mpsl_log_level level);

/* 64-byte aligned, zeroed allocation; NULL on failure (or bytes == 0 gives a valid pointer). */
void *mpsl_alloc(size_t bytes);
void mpsl_free(void *p);

char *mpsl_strdup(const char *s);                       /* NULL on failure */
/* asprintf that returns NULL on failure. */
char *mpsl_strfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* mkdir -p: create path and its missing parents (mode 0755); refuses with a message naming
 * the folder, or when path exists but is not a directory. */
int mpsl_mkdir_p(const char *path, mpsl_error *err);

double mpsl_now(void);             /* monotonic seconds */
int64_t mpsl_peak_rss_bytes(void); /* peak resident set size of this process, or -1 */

#include "util/rng.h" /* the seeded generator, here for the files that use both */

#endif
