/* model_weights.h: a model's parameters to and from safetensors files, by name, so that timm
 * checkpoints load into the plugins that declare timm names and fine-tuned models leave the
 * run in a format PyTorch reads.
 *
 * NAMES
 * A parameter's file name is the name its plugin declared (timm's: patch_embed.proj.weight,
 * cls_token, pos_embed, blocks.0.attn.qkv.weight, norm.weight, fc_norm.weight, head.weight).
 * Tokenizer, encoder and head names do not clash. Several tokenizers would (two
 * patch_embed.proj.weight), so when the experiment has two or more tokenizers, each
 * tokenizer's names get its modality key (the key under model.tokenizers) as a prefix:
 * image.patch_embed.proj.weight, audio.cls_token. weights_param_name() gives that name.
 *
 * SHAPES
 * Files hold timm's shapes (weights_file_shape). They are the declared shapes except for
 * image_patch's and audio_patch's patch_embed.proj.weight: declared as a (D, C*P*P) matrix,
 * it is saved as timm's convolution kernel (D, C, P, P), which is the same bytes (mpsl's patch
 * features are ordered channel, row, column, as the kernel is). Loading accepts either: the
 * declared matrix (files mpsl saved before it wrote kernels) or the kernel, which must be
 * square and, when the model has a session, have the modality's channel count C. A 2-D
 * declaration does not say Ph and Pw, so a tokenizer with non-square patches must declare
 * the 4-D (D, C, Ph, Pw) shape itself (same bytes, matched exactly). pos_embed with another
 * token count (a checkpoint made at another resolution or patch size) is refused: no
 * interpolation yet.
 *
 * EXAMPLE (what the run does for model.weights and output.save_weights)
 *     weights_report rep;
 *     rc = weights_load_into_model(m, "vit.safetensors", "module.=", 1, &rep, err);
 *     ...
 *     const char *meta[] = {"mpsl_run", "12", NULL};
 *     rc = weights_save_model(m, "final.safetensors", meta, err);
 */
#ifndef MPSL_MODEL_WEIGHTS_H
#define MPSL_MODEL_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#include "train/model.h"

/* Large enough for any decl name (95) with a modality prefix (31) and the dot. */
#define WEIGHTS_NAME_MAX 160

typedef struct weights_report {
    int n_params;           /* declared parameter tensors */
    int n_loaded;           /* of them, taken from the file */
    int n_missing;          /* of them, not in the file (they keep their initial values) */
    int n_reshaped;         /* of the loaded, taken through the conv-kernel exception */
    int n_file;             /* tensors in the file */
    int n_unused;           /* of them, taken by no parameter */
    int64_t floats_loaded;
    char missing[512];      /* the first missing names, "'a', 'b'" ("" when none) */
    char unused[512];       /* the first unused file names */
} weights_report;

/* Write decl decl_index's file name into buf (see NAMES). Returns 0, or -1 when it does not
 * fit in size bytes (buf then holds a truncated, NUL-terminated name). */
int weights_param_name(const mpsl_model *m, int decl_index, char *buf, size_t size);

/* The shape decl decl_index has in files, written into shape (MPSL_MAX_DIMS entries); returns
 * its dimension count. The declared shape, except a tokenizer's 2-D patch_embed.proj.weight
 * (D, C*P*P) whose modality has C channels: timm's kernel (D, C, P, P). Without a session (C
 * unknown) or for non-square patches, the declared shape. */
int weights_file_shape(const mpsl_model *m, int decl_index, int64_t shape[MPSL_MAX_DIMS]);

/* Load path into m->param. For each declared parameter, the file tensor whose name, after
 * prefix_map, equals weights_param_name(); it must have the declared shape or the file shape
 * (see SHAPES) and a float dtype (F32, F16, BF16, F64: converted to float32).
 *
 * prefix_map: NULL or "" for none, else comma-separated "from=to" rules applied to the file's
 * names, the first rule whose `from` begins the name wins: "module.=" strips DataParallel's
 * prefix, "visual.=,text.=txt." strips one and renames another. Two file tensors that map to
 * the same name are refused.
 *
 * strict: every declared parameter must be in the file, else the error lists the first
 * missing ones and how many. Not strict: missing ones keep their values. Either way, file
 * tensors that no parameter takes are only counted (rep->n_unused).
 *
 * Everything is checked before anything is copied: on failure m->param is unchanged.
 * rep may be NULL. Returns MPSL_OK, MPSL_ERR_INVALID, MPSL_ERR_IO or MPSL_ERR_NOMEM; every
 * message names the file. */
int weights_load_into_model(mpsl_model *m, const char *path, const char *prefix_map,
                            int strict, weights_report *rep, mpsl_error *err);

/* Save every declared parameter of m as F32 under its weights_param_name() with its
 * weights_file_shape(), in declaration order, atomically (see st_write): the inverse of
 * weights_load_into_model without prefix_map. A single-modality ViT (image_patch + vit +
 * classifier) saved this way loads into timm's VisionTransformer with strict=True.
 * metadata_kv: NULL or "key", "value", ..., NULL; a "format": "pt" entry is added unless the
 * list has "format" (Hugging Face loaders look for it). Returns MPSL_OK, MPSL_ERR_INVALID, MPSL_ERR_IO or MPSL_ERR_NOMEM. */
int weights_save_model(const mpsl_model *m, const char *path, const char *const *metadata_kv,
                       mpsl_error *err);

/* Log one line summarising rep (info level), e.g. after a non-strict load. */
void weights_report_log(const weights_report *rep, const char *path);

#endif
