/* convert.h: `mpsl convert NAME --in RAW_DIR --out FILE`: converters from each dataset's raw
 * layout (as `mpsl fetch NAME` leaves it) into one prepared file (mpsl/prepared_format.h),
 * written with writer.h.
 *
 * Adding a converter: write `int convert_NAME(const convert_options *o, mpsl_error *err)` in
 * core/convert/NAME.c, declare it below, add it to the table in convert.c and the file to
 * core/convert/meson.build. A converter reads o->in_dir, writes o->out_path (atomically, via
 * prep_writer) and prints progress unless o->quiet. Options it does not use are ignored;
 * dataset-specific settings come as --set KEY=VALUE (convert_opt_int/convert_opt_str). */
#ifndef MPSL_CONVERT_H
#define MPSL_CONVERT_H

#include <stddef.h>
#include <stdint.h>

#include "mpsl/plugin.h"

#define CONVERT_VERSION "1.0"
#define CONVERT_MAX_SET 16

typedef struct convert_options {
    const char *name;           /* dataset name, as in datasets/NAME.yaml */
    const char *in_dir;         /* the raw layout (the `mpsl fetch` directory) */
    const char *out_path;       /* the prepared file to write */
    int image_size;             /* square image side S (default 224) */
    int max_caption_bytes;      /* L: UTF-8 bytes kept per caption / question (default 64) */
    int64_t limit;              /* > 0: at most this many samples per split (0 = all) */
    int threads;                /* worker threads for decoding (default: online CPUs, <= 8) */
    int quiet;                  /* 1: no progress lines */
    const char *set_key[CONVERT_MAX_SET]; /* --set KEY=VALUE pairs */
    const char *set_val[CONVERT_MAX_SET];
    int n_set;
} convert_options;

void convert_options_init(convert_options *o);

/* The value of --set KEY=..., or def when absent. convert_opt_int refuses (MPSL_ERR_INVALID,
 * naming the key) a value that is not an integer in [lo, hi]. */
const char *convert_opt_str(const convert_options *o, const char *key, const char *def);
int convert_opt_int(const convert_options *o, const char *key, int64_t def, int64_t lo,
                    int64_t hi, int64_t *out, mpsl_error *err);

typedef int (*convert_fn)(const convert_options *o, mpsl_error *err);

typedef struct convert_entry {
    const char *name;           /* dataset name */
    const char *summary;        /* one line for `mpsl convert --list` */
    convert_fn run;
} convert_entry;

/* The converter for NAME, or NULL. */
const convert_entry *convert_find(const char *name);
/* All converters, *n of them. */
const convert_entry *convert_all(size_t *n);

/* Run the converter named o->name (refusing an unknown name, listing the known ones, and a
 * missing input directory). Prints a summary line (samples, bytes, seconds) unless quiet. */
int convert_run(const convert_options *o, mpsl_error *err);

/* ---------------------------------------------------------------- converters */

int convert_flickr30k(const convert_options *o, mpsl_error *err);
int convert_mscoco(const convert_options *o, mpsl_error *err);
int convert_coco_qa(const convert_options *o, mpsl_error *err);
int convert_b_t4sa(const convert_options *o, mpsl_error *err);
int convert_meld(const convert_options *o, mpsl_error *err);            /* media.h */
int convert_ucf101(const convert_options *o, mpsl_error *err);
int convert_kinetics_sounds(const convert_options *o, mpsl_error *err);

#endif
