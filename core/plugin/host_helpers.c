/* host_helpers.c: the shared helper tables of mpsl_host (see "shared helpers" in
 * mpsl/plugin.h). The implementations live in core/util, where the core's own code (the
 * converters, safetensors, partitions) calls them directly: one implementation for both. */
#include "plugin/host_helpers.h"

#include "util/half.h"
#include "util/hash.h"
#include "util/idx.h"
#include "util/melspec.h"
#include "util/prepared_read.h"
#include "util/rng.h"
#include "util/util.h"

const mpsl_rng_api host_rng_api = {
    .size = sizeof(mpsl_rng_api),
    .seed = mpsl_rng_seed,
    .seed_sample = mpsl_rng_seed_sample,
    .next = mpsl_rng_u64,
    .uniform = mpsl_rng_uniform,
    .below = mpsl_rng_below,
    .normal = mpsl_rng_normal,
    .normal_f32 = mpsl_rng_normal_f32,
    .shuffle = mpsl_rng_shuffle,
    .mix64 = mpsl_mix64,
};

const mpsl_half_api host_half_api = {
    .size = sizeof(mpsl_half_api),
    .f16_to_f32 = mpsl_f16_to_f32,
    .f32_to_f16 = mpsl_f32_to_f16,
    .bf16_to_f32 = mpsl_bf16_to_f32,
    .f32_to_bf16 = mpsl_f32_to_bf16,
    .f16_to_f32_n = mpsl_f16_to_f32_n,
    .bf16_to_f32_n = mpsl_bf16_to_f32_n,
};

const mpsl_mel_api host_mel_api = {
    .size = sizeof(mpsl_mel_api),
    .create = mpsl_mel_create,
    .destroy = mpsl_mel_destroy,
    .bins = mpsl_mel_bins,
    .window = mpsl_mel_window,
    .compute = mpsl_mel_compute,
    .compute_fixed = mpsl_mel_compute_fixed,
    .filters = mpsl_mel_filters,
    .center_hz = mpsl_mel_center_hz,
    .hz_to_mel = mpsl_mel_hz_to_mel,
};

const mpsl_idx_api host_idx_api = {
    .size = sizeof(mpsl_idx_api),
    .open = mpsl_idx_open,
    .read = mpsl_idx_read,
    .close = mpsl_idx_close,
};

const mpsl_prepared_api host_prepared_api = {
    .size = sizeof(mpsl_prepared_api),
    .open = mpsl_prepared_open,
    .close = mpsl_prepared_close,
    .labels = mpsl_prepared_labels,
    .read = mpsl_prepared_read,
};

const mpsl_files_api host_files_api = {
    .size = sizeof(mpsl_files_api),
    .mkdir_p = mpsl_mkdir_p,
    .crc32 = mpsl_crc32,
    .fnv1a64 = mpsl_fnv1a64,
};
