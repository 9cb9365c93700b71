/* grad_defence.h: what a client may do to the gradients it sends the server, against label
 * leakage (docs/privacy.md): nothing; Gaussian noise; or Li et al.'s max-norm heuristic
 * ("Label Leakage and Protection in Two-party Split Learning", ICLR 2022). Applied per sample
 * to the (n, per) gradient rows a client returns: d(logits) when the server holds the head,
 * d(features) when the client does. Noise comes from the client's own random stream
 * (api->random), drawn only when a defence is on, so a run without one is unchanged.
 * Header-only: the mpsl plugin stays one .so. */
#ifndef MPSL_GRAD_DEFENCE_H
#define MPSL_GRAD_DEFENCE_H

#include <math.h>
#include <mpsl/plugin.h>

enum { DEFENCE_NONE = 0, DEFENCE_GAUSSIAN = 1, DEFENCE_MAX_NORM = 2 };

typedef struct grad_defence {
    int kind;       /* DEFENCE_* */
    double noise;   /* the privacy knob: gaussian: noise std as a multiple of the batch's
                       root-mean-square gradient entry; max_norm: the target norm as a multiple
                       of the batch's largest row norm (1: Li et al.'s) */
} grad_defence;

/* One N(0, 1) draw from the role's stream (Box-Muller; both uniforms from api->random). */
static inline double defence_normal(const mpsl_session_api *api, mpsl_role *r)
{
    double u1 = api->random(r), u2 = api->random(r);
    if (u1 < 1e-300) {
        u1 = 1e-300;
    }
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* g (n, per) in place. gaussian: g += N(0, s^2) with s = noise * sqrt(mean of g^2). max_norm:
 * row i gets N(0, s_i^2) with s_i^2 = ((noise * max_j |g_j|)^2 - |g_i|^2) / per, so every row's
 * expected squared norm is the same and a row's norm no longer tells its class apart. */
static inline void grad_defence_apply(const mpsl_session_api *api, mpsl_role *r,
                                      const grad_defence *d, float *g, int64_t n, int64_t per)
{
    if (d->kind == DEFENCE_NONE || n <= 0 || per <= 0 || d->noise <= 0.0) {
        return;
    }
    if (d->kind == DEFENCE_GAUSSIAN) {
        double ss = 0.0;
        for (int64_t i = 0; i < n * per; i++) {
            ss += (double)g[i] * (double)g[i];
        }
        double s = d->noise * sqrt(ss / (double)(n * per));
        for (int64_t i = 0; i < n * per; i++) {
            g[i] += (float)(s * defence_normal(api, r));
        }
        return;
    }
    double max2 = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double q = 0.0;
        for (int64_t j = 0; j < per; j++) {
            q += (double)g[i * per + j] * (double)g[i * per + j];
        }
        max2 = q > max2 ? q : max2;
    }
    double target2 = d->noise * d->noise * max2;
    for (int64_t i = 0; i < n; i++) {
        double q = 0.0;
        for (int64_t j = 0; j < per; j++) {
            q += (double)g[i * per + j] * (double)g[i * per + j];
        }
        double s = target2 > q ? sqrt((target2 - q) / (double)per) : 0.0;
        for (int64_t j = 0; j < per && s > 0.0; j++) {
            g[i * per + j] += (float)(s * defence_normal(api, r));
        }
    }
}

#endif
