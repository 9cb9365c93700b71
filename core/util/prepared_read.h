/* prepared_read.h: reading prepared dataset files (mpsl/prepared_format.h, written by
 * `mpsl convert`), validated on open; the host's h->prepared (mpsl_prepared_api in
 * mpsl/plugin.h) and the `prepared` dataset plugin's reader. */
#ifndef MPSL_UTIL_PREPARED_READ_H
#define MPSL_UTIL_PREPARED_READ_H

#include <stdint.h>

#include "mpsl/plugin.h"

int mpsl_prepared_open(const char *path, int verify, mpsl_prepared **f, mpsl_prepared_info *info,
                       mpsl_error *err);
void mpsl_prepared_close(mpsl_prepared *f);
const int32_t *mpsl_prepared_labels(const mpsl_prepared *f, mpsl_split split);
int mpsl_prepared_read(const mpsl_prepared *f, mpsl_split split, int m, const int64_t *idx,
                       int64_t n, void *dst, mpsl_error *err);

#endif
