/* test_optim.c: optimizer steps, schedules, clipping and parameter-group spans against values
 * worked out by hand from PyTorch's definitions (the PyTorch fixture tests check trajectories),
 * and the cosine schedule against PyTorch's per-epoch rates (argv[1]: the fixture that
 * tests/core/make_cosine_fixture.py writes). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "train/optim.h"

/* Every line "E W base min_lr epoch lr" of the fixture: optim_lr within 1e-12 relative (the
 * fixture's values are PyTorch's, in float64; its recursive cosine may differ from the closed
 * form in the last bits). Returns the number of lines checked. */
static int check_cosine_fixture(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open the cosine fixture %s\n", path);
        CHECK(f != NULL);
        return 0;
    }
    char line[256];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        long long E, W, e;
        double base, min_lr, want;
        if (line[0] == '#' || line[0] == '\n') {
            continue;
        }
        if (sscanf(line, "%lld %lld %lf %lf %lld %lf", &E, &W, &base, &min_lr, &e, &want) != 6) {
            fprintf(stderr, "%s: a malformed line: %s", path, line);
            CHECK(0);
            continue;
        }
        optim_settings s = {.kind = OPTIM_SGD, .lr = base, .schedule = SCHEDULE_COSINE,
                            .warmup_epochs = W, .min_lr = min_lr, .total_epochs = E};
        double got = optim_lr(&s, base, e);
        if (fabs(got - want) > 1e-12 * fabs(want)) {
            fprintf(stderr, "cosine E=%lld W=%lld base=%g min_lr=%g epoch %lld: %.17g, PyTorch "
                    "%.17g\n", E, W, base, min_lr, e, got, want);
        }
        CHECK(fabs(got - want) <= 1e-12 * fabs(want));
        CHECK(got > min_lr); /* no epoch of the run is at min_lr */
        n++;
    }
    fclose(f);
    return n;
}

static optim_settings base(optim_kind kind)
{
    return (optim_settings){.kind = kind, .lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8,
                            .schedule = SCHEDULE_CONSTANT, .step_epochs = 2, .gamma = 0.5,
                            .total_epochs = 10};
}

/* Adam and AdamW over every length 1..70 (the 16- and 8-lane loops and the scalar tail) and
 * one past a thread slice, three steps: bit for bit the scalar definition written out here
 * in the same order of operations (optim.c: the vector loops must give the same bits). */
static void check_adam_bits(int kind)
{
    mpsl_error err;
    for (int64_t n = 1; n <= 140001; n = n < 70 ? n + 1 : 140001) {
        float *p = malloc((size_t)n * sizeof *p), *g = malloc((size_t)n * sizeof *g);
        float *q = malloc((size_t)n * sizeof *q), *m = calloc((size_t)n, sizeof *m);
        float *v = calloc((size_t)n, sizeof *v);
        if (!p || !g || !q || !m || !v) {
            abort();
        }
        for (int64_t i = 0; i < n; i++) {
            p[i] = q[i] = (float)sin((double)i * 0.7) * 2.0f;
        }
        optim_settings s = base(kind);
        optim_span all = {0, n, 0.01, 0.1};
        optim_state o;
        CHECK(optim_state_init(&o, &s, n, &err) == MPSL_OK);
        int same = 1;
        for (int t = 1; t <= 3; t++) {
            for (int64_t i = 0; i < n; i++) {
                g[i] = (float)cos((double)(i * t) * 0.3) * (i % 5 == 0 ? 1e-4f : 1.0f);
            }
            optim_state_step(&o, p, g, &all, 1, 0);
            float b1 = (float)s.beta1, b2 = (float)s.beta2, eps = (float)s.eps, wd = 0.1f;
            float step = (float)(0.01 / (1.0 - pow(s.beta1, t)));
            float bc2_sqrt = (float)sqrt(1.0 - pow(s.beta2, t)), decay = 1.0f - 0.01f * wd;
            for (int64_t i = 0; i < n; i++) {
                float gi = kind == OPTIM_ADAMW ? g[i] : g[i] + wd * q[i];
                float pi = kind == OPTIM_ADAMW ? q[i] * decay : q[i];
                float mi = b1 * m[i] + (1.0f - b1) * gi;
                float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
                m[i] = mi;
                v[i] = vi;
                q[i] = pi - step * mi / (sqrtf(vi) / bc2_sqrt + eps);
            }
            same &= memcmp(p, q, (size_t)n * sizeof *p) == 0;
        }
        CHECK(same);
        optim_state_free(&o);
        free(p), free(g), free(q), free(m), free(v);
        if (n == 140001) {
            break;
        }
    }
}

int main(int argc, char **argv)
{
    mpsl_error err;
    /* Schedules. */
    optim_settings s = base(OPTIM_SGD);
    s.schedule = SCHEDULE_STEP;
    CHECK_CLOSE(optim_lr(&s, 0.1, 0), 0.1, 1e-12);
    CHECK_CLOSE(optim_lr(&s, 0.1, 1), 0.1, 1e-12);
    CHECK_CLOSE(optim_lr(&s, 0.1, 2), 0.05, 1e-12);
    CHECK_CLOSE(optim_lr(&s, 0.1, 5), 0.025, 1e-12);
    s.schedule = SCHEDULE_COSINE;
    s.warmup_epochs = 2;
    s.min_lr = 0.0;
    CHECK_CLOSE(optim_lr(&s, 0.1, 0), 0.05, 1e-12);     /* warmup 1/2 */
    CHECK_CLOSE(optim_lr(&s, 0.1, 2), 0.1, 1e-12);      /* cosine start */
    /* the last epoch runs at the curve's value at its start, (8 - 1) / 8 of the way */
    CHECK_CLOSE(optim_lr(&s, 0.1, 9), 0.05 * (1 + cos(M_PI * 7.0 / 8.0)), 1e-12);
    CHECK(optim_lr(&s, 0.1, 9) > 0.003);                 /* not 0: the last epoch trains */
    if (argc > 1) {
        CHECK(check_cosine_fixture(argv[1]) >= 50);
    } else {
        fprintf(stderr, "usage: test_optim COSINE_FIXTURE\n");
        CHECK(argc > 1);
    }

    /* SGD with momentum and weight decay over two spans with different rates, one frozen
     * float in between. */
    float p[3] = {1.0f, 5.0f, 2.0f}, g[3] = {0.5f, 9.0f, -1.0f};
    optim_span spans[2] = {{0, 1, 0.1, 0.0}, {2, 1, 0.2, 0.5}};
    s = base(OPTIM_SGD);
    s.momentum = 0.9;
    optim_state o;
    CHECK(optim_state_init(&o, &s, 3, &err) == MPSL_OK);
    optim_state_step(&o, p, g, spans, 2, 0);
    CHECK_CLOSE(p[0], 1.0 - 0.1 * 0.5, 1e-6);
    CHECK_CLOSE(p[1], 5.0, 0);                          /* frozen: untouched */
    CHECK_CLOSE(p[2], 2.0 - 0.2 * (-1.0 + 0.5 * 2.0), 1e-6);
    optim_state_step(&o, p, g, spans, 2, 0);            /* buf = 0.9 * 0.5 + 0.5 */
    CHECK_CLOSE(p[0], 0.95 - 0.1 * 0.95, 1e-6);
    optim_state_free(&o);

    /* Adam's first step moves each weight by lr * sign(g) (bias-corrected m/sqrt(v)). */
    float pa[2] = {1.0f, -1.0f}, ga[2] = {0.3f, -2.0f};
    optim_span all = {0, 2, 0.1, 0.0};
    s = base(OPTIM_ADAM);
    CHECK(optim_state_init(&o, &s, 2, &err) == MPSL_OK);
    optim_state_step(&o, pa, ga, &all, 1, 0);
    CHECK_CLOSE(pa[0], 0.9, 1e-5);
    CHECK_CLOSE(pa[1], -0.9, 1e-5);
    optim_state_free(&o);

    /* AdamW decays the weight by lr * wd before the Adam update; Adam adds wd * p to g. */
    float pw[1] = {2.0f}, gw[1] = {1.0f};
    optim_span one = {0, 1, 0.1, 0.5};
    s = base(OPTIM_ADAMW);
    CHECK(optim_state_init(&o, &s, 1, &err) == MPSL_OK);
    optim_state_step(&o, pw, gw, &one, 1, 0);
    CHECK_CLOSE(pw[0], 2.0 * (1 - 0.1 * 0.5) - 0.1, 1e-5);
    optim_state_free(&o);
    check_adam_bits(OPTIM_ADAM);
    check_adam_bits(OPTIM_ADAMW);

    /* Clipping scales all spans together to the max norm (3-4-5 triangle). */
    float pc[2] = {0.0f, 0.0f}, gc[2] = {3.0f, 4.0f};
    optim_span c1 = {0, 1, 1.0, 0.0}, c2 = {1, 1, 1.0, 0.0};
    optim_span cs[2] = {c1, c2};
    s = base(OPTIM_SGD);
    s.clip_norm = 1.0;
    CHECK(optim_state_init(&o, &s, 2, &err) == MPSL_OK);
    optim_state_step(&o, pc, gc, cs, 2, 0);
    CHECK_CLOSE(pc[0], -0.6, 1e-5);
    CHECK_CLOSE(pc[1], -0.8, 1e-5);
    optim_state_free(&o);
    return check_exit();
}
