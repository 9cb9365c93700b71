/* host_helpers.h: the shared helper tables of mpsl_host (since ABI 2.0), which host.c puts in
 * the table every plugin receives. Each is a static const table of functions from core/util. */
#ifndef MPSL_HOST_HELPERS_H
#define MPSL_HOST_HELPERS_H

#include "mpsl/plugin.h"

extern const mpsl_rng_api host_rng_api;
extern const mpsl_half_api host_half_api;
extern const mpsl_mel_api host_mel_api;
extern const mpsl_idx_api host_idx_api;
extern const mpsl_prepared_api host_prepared_api;
extern const mpsl_files_api host_files_api;

#endif
