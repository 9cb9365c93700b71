/* idx.h: reading IDX files of unsigned bytes (MNIST, Fashion-MNIST and their kin), gzip-
 * compressed or plain; the host's h->idx (see mpsl_idx_api in mpsl/plugin.h). */
#ifndef MPSL_UTIL_IDX_H
#define MPSL_UTIL_IDX_H

#include <stdint.h>

#include "mpsl/plugin.h"

int mpsl_idx_open(const char *path, int ndim, int64_t *dims, mpsl_idx_file **f,
                  mpsl_error *err);
int mpsl_idx_read(mpsl_idx_file *f, int64_t n, uint8_t *dst, mpsl_error *err);
void mpsl_idx_close(mpsl_idx_file *f);

#endif
