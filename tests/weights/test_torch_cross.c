/* test_torch_cross.c: files PyTorch made, read by the C reader, and a file the C writer made,
 * read back by PyTorch (both through torch_fixture.py, which writes the format directly).
 * Also checks that timm's (D, C, P, P) patch kernel, loaded into a declared (D, C*P*P)
 * matrix, gives timm's PatchEmbed tokens on mpsl's patch layout.
 * Usage: test_torch_cross PYTHON3 torch_fixture.py   (exit 77, skipped, without torch) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kernels/kernels.h"
#include "weights/model_weights.h"
#include "weights/safetensors.h"
#include "weights_test.h"

static const char *python, *script;

static int run(const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' '%s' %s", python, script, args);
    return system(cmd);
}

static void test_torch_files(void)
{
    mpsl_error err = {{0}};
    st_file *f = NULL, *want = NULL;
    CHECK(st_read(wt_path("torch.safetensors"), &f, &err) == MPSL_OK);
    if (!f) {
        fprintf(stderr, "%s\n", err.msg);
        return;
    }
    CHECK(st_read(wt_path("torch_expected.safetensors"), &want, &err) == MPSL_OK);
    if (!want) {
        fprintf(stderr, "%s\n", err.msg);
        st_close(f);
        return;
    }
    CHECK(st_metadata_get(f, "source") &&
          strcmp(st_metadata_get(f, "source"), "torch_fixture.py") == 0);
    CHECK(st_count(f) == 8 && st_count(want) == 8);
    CHECK(st_find(f, "f16.special")->dtype == ST_F16);
    CHECK(st_find(f, "bf16.special")->dtype == ST_BF16);
    CHECK(st_find(f, "f64.random")->dtype == ST_F64);
    CHECK(st_find(f, "scalar")->ndim == 0);
    CHECK(st_find(f, "f16.random")->ndim == 3 && st_find(f, "f16.random")->shape[2] == 5);
    int compared = 0;
    for (int i = 0; i < st_count(want); i++) {
        const st_tensor_info *w = st_tensor_at(want, i), *g = st_find(f, w->name);
        CHECK(g != NULL);
        if (!g) {
            continue;
        }
        CHECK(g->ndim == w->ndim && memcmp(g->shape, w->shape, (size_t)g->ndim * 8) == 0);
        float *a = malloc((size_t)(w->numel + 1) * sizeof *a);
        float *b = malloc((size_t)(w->numel + 1) * sizeof *b);
        CHECK(st_tensor_to_f32(f, w->name, a, w->numel, &err) == MPSL_OK);
        CHECK(st_tensor_to_f32(want, w->name, b, w->numel, &err) == MPSL_OK);
        int bad = 0;
        for (int64_t j = 0; j < w->numel; j++) {
            /* bit-exact, except that NaN payloads may differ */
            if (!(isnan(a[j]) && isnan(b[j])) && memcmp(&a[j], &b[j], 4) != 0) {
                if (bad++ < 3) {
                    fprintf(stderr, "%s[%lld]: C %.9g, torch %.9g\n", w->name, (long long)j,
                            a[j], b[j]);
                }
            }
        }
        CHECK(bad == 0);
        compared += (int)w->numel;
        free(a);
        free(b);
    }
    CHECK(compared > 200);
    st_close(f);
    st_close(want);
}

static const struct {
    const char *name;
    int ndim;
    int64_t shape[3];
} vit[] = {
    {"patch_embed.proj.weight", 2, {8, 49}}, {"patch_embed.proj.bias", 1, {8}},
    {"cls_token", 3, {1, 1, 8}},             {"pos_embed", 3, {1, 17, 8}},
    {"blocks.0.mlp.fc1.weight", 2, {16, 8}}, {"blocks.0.mlp.fc1.bias", 1, {16}},
    {"head.weight", 2, {10, 8}},             {"head.bias", 1, {10}},
};

static void test_timm_checkpoint(void)
{
    const int n = (int)MPSL_COUNT(vit);
    mpsl_model m = {0};
    param_decl decls[MPSL_COUNT(vit)];
    memset(decls, 0, sizeof decls);
    m.decls = decls;
    m.n_decls = n;
    m.n_tok = 1;
    for (int i = 0; i < n; i++) {
        snprintf(decls[i].name, sizeof decls[i].name, "%s", vit[i].name);
        decls[i].ndim = vit[i].ndim;
        decls[i].count = 1;
        for (int j = 0; j < vit[i].ndim; j++) {
            decls[i].shape[j] = vit[i].shape[j];
            decls[i].count *= vit[i].shape[j];
        }
        decls[i].offset = m.n;
        m.n += decls[i].count;
    }
    m.tok[0].count = decls[4].offset;
    float *param = calloc((size_t)m.n, sizeof *param);
    m.param = param;

    const char *path = wt_path("timm.safetensors");
    mpsl_error err = {{0}};
    weights_report rep;
    int rc = weights_load_into_model(&m, path, "module.=", 1, &rep, &err);
    CHECK(rc == MPSL_OK);
    if (rc != MPSL_OK) {
        fprintf(stderr, "%s\n", err.msg);
        free(param);
        return;
    }
    CHECK(rep.n_loaded == n && rep.n_reshaped == 1 && rep.n_unused == 2);
    CHECK_CONTAINS(rep.unused, "'input.x'");

    st_file *f = NULL;
    CHECK(st_read(path, &f, &err) == MPSL_OK);
    if (!f) {
        free(param);
        return;
    }
    for (int i = 0; i < n; i++) {
        char name[128];
        snprintf(name, sizeof name, "module.%s", vit[i].name);
        float *v = malloc((size_t)decls[i].count * sizeof *v);
        CHECK(st_tensor_to_f32(f, name, v, decls[i].count, &err) == MPSL_OK);
        CHECK(memcmp(v, param + decls[i].offset, (size_t)decls[i].count * sizeof *v) == 0);
        free(v);
    }
    /* timm's PatchEmbed (conv, flatten, transpose) == mpsl's patch gather + linear */
    float x[28 * 28], y[16 * 8], patches[16 * 49];
    CHECK(st_tensor_to_f32(f, "input.x", x, 28 * 28, &err) == MPSL_OK);
    CHECK(st_tensor_to_f32(f, "input.y", y, 16 * 8, &err) == MPSL_OK);
    kern_patch_gather_ref(patches, x, 1, 1, 28, 28, 7);
    const float *w = param + decls[0].offset, *b = param + decls[1].offset;
    double worst = 0;
    for (int p = 0; p < 16; p++) {
        for (int d = 0; d < 8; d++) {
            double s = b[d];
            for (int k = 0; k < 49; k++) {
                s += (double)patches[p * 49 + k] * w[d * 49 + k];
            }
            double e = fabs(s - y[p * 8 + d]);
            worst = e > worst ? e : worst;
        }
    }
    CHECK(worst < 1e-5);
    if (worst >= 1e-5) {
        fprintf(stderr, "patch embedding differs from timm's by %g\n", worst);
    }
    st_close(f);
    free(param);
}

static void test_c_to_torch(void)
{
    float a[24], scalar = 1.5f;
    for (int i = 0; i < 24; i++) {
        a[i] = (float)i * 0.5f - 3.0f;
    }
    int64_t sa[3] = {2, 3, 4}, se[2] = {0, 4};
    st_write_tensor t[] = {
        {"a.weight", 3, sa, a},
        {"b.scalar", 0, NULL, &scalar},
        {"c.empty", 2, se, NULL},
    };
    const char *meta[] = {"writer", "mpsl", "note", "cross-check", NULL};
    const char *path = wt_path("from_c.safetensors");
    mpsl_error err = {{0}};
    CHECK(st_write(path, t, 3, meta, &err) == MPSL_OK);
    char args[512];
    snprintf(args, sizeof args, "check '%s'", path);
    CHECK(run(args) == 0);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s PYTHON3 torch_fixture.py\n", argv[0]);
        return 2;
    }
    python = argv[1];
    script = argv[2];
    char cmd[512];
    snprintf(cmd, sizeof cmd, "'%s' -c 'import torch' 2>/dev/null", python);
    if (system(cmd) != 0) {
        fprintf(stderr, "skipped: %s cannot import torch (install python3-torch)\n", python);
        return 77;
    }
    wt_setup();
    char args[512];
    snprintf(args, sizeof args, "write '%s'", wt_dir);
    int rc = run(args);
    CHECK(rc == 0);
    if (rc != 0) {
        return check_exit();
    }
    test_torch_files();
    test_timm_checkpoint();
    test_c_to_torch();
    return check_exit();
}
