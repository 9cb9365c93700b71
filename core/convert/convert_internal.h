/* convert_internal.h: pieces shared by the converters (convert.c, karpathy.c). */
#ifndef MPSL_CONVERT_INTERNAL_H
#define MPSL_CONVERT_INTERNAL_H

#include <stdint.h>

#include "convert/convert.h"
#include "convert/writer.h"

/* malloc'd "a/b" (b alone when it is absolute or a is empty). NULL on failure. */
char *convert_join(const char *a, const char *b);
int convert_is_file(const char *path);
int convert_is_dir(const char *path);

/* The first of in_dir/candidates[i] (n of them) that is a regular file (dirs = 0) or a
 * directory (dirs = 1), malloc'd; else NULL with err naming what is missing and every place
 * looked at, plus a hint to run `mpsl fetch NAME`. */
char *convert_locate(const convert_options *o, const char *base, const char *const *candidates,
                   int n, int dirs, const char *what, mpsl_error *err);

/* The text length L: --max-caption-bytes when given, else def. */
int convert_text_len(const convert_options *o, int def);

/* "drop", "train" or "test": where a validation split goes (--set val=...). 0 drop, 1 train,
 * 2 test; < 0 with err set on another value. */
int convert_val_policy(const convert_options *o, mpsl_error *err);

/* Decode, center-crop and resize n images (paths[i]) to S x S and write them as modality
 * `modality` of split: chunks decoded by o->threads threads, written in order. A failing
 * image stops it with the image's path in the message. */
int convert_write_images(prep_writer *w, mpsl_split split, int modality,
                         char *const *paths, int64_t n, const convert_options *o,
                         const char *what, mpsl_error *err);

/* Text: n samples of S sequences each, text(ctx, i, s) giving sequence s of sample i;
 * written as int32 bytes (n, S, L) in chunks. *truncated counts sequences cut at L. */
typedef const char *(*convert_text_fn)(void *ctx, int64_t i, int s);
int convert_write_text(prep_writer *w, mpsl_split split, int modality, int64_t n, int S, int L,
                       convert_text_fn text, void *ctx, int64_t *truncated, mpsl_error *err);

/* Labels 0..n-1 (retrieval). */
int convert_write_index_labels(prep_writer *w, mpsl_split split, int64_t n, mpsl_error *err);

/* Read a whole text file (malloc'd, NUL-terminated; *len its length). */
int convert_read_file(const char *path, char **data, size_t *len, mpsl_error *err);

/* Split text into lines in place (\n or \r\n; the last line may lack \n): malloc'd array of
 * *n pointers into data. */
int convert_lines(char *data, char ***lines, int64_t *n, const char *path, mpsl_error *err);

/* Shared by flickr30k and mscoco: Karpathy's caption JSON to a retrieval file. */
typedef struct karpathy_spec {
    const char *dataset;          /* "flickr30k" */
    const char *json_name;        /* "dataset_flickr30k.json" */
    /* image directories tried (relative to in_dir) for an entry with this filepath ("" when
     * the JSON has none); %s is replaced by the filepath. */
    const char *const *image_dirs;
    int n_image_dirs;
    int default_text_len;
} karpathy_spec;
int convert_karpathy(const convert_options *o, const karpathy_spec *k, mpsl_error *err);

#endif
