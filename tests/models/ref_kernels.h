/* ref_kernels.h: plain-loop reference versions of the transformer kernels the model plugins
 * call (plugin.h's contracts, sums in double), written independently of core/kernels. The
 * model tests recompute forwards with them to compare with what the plugins compute on the
 * host's own kernels; they never stand in for a kernel the host lacks. */
#ifndef MPSL_TEST_REF_KERNELS_H
#define MPSL_TEST_REF_KERNELS_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* out (N,C) = (inp - mean) * rstd * w + b over the last dimension (biased variance). */
static inline void ref_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                                         const float *w, const float *b, int64_t N, int64_t C,
                                         float eps)
{
    for (int64_t n = 0; n < N; n++) {
        const float *x = inp + n * C;
        double m = 0, v = 0;
        for (int64_t c = 0; c < C; c++) {
            m += x[c];
        }
        m /= (double)C;
        for (int64_t c = 0; c < C; c++) {
            v += ((double)x[c] - m) * ((double)x[c] - m);
        }
        v /= (double)C;
        double r = 1.0 / sqrt(v + (double)eps);
        for (int64_t c = 0; c < C; c++) {
            out[n * C + c] = (float)(((double)x[c] - m) * r * w[c] + b[c]);
        }
        if (mean) {
            mean[n] = (float)m;
        }
        if (rstd) {
            rstd[n] = (float)r;
        }
    }
}

static inline void ref_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                                          const float *inp, const float *w, const float *mean,
                                          const float *rstd, int64_t N, int64_t C)
{
    for (int64_t n = 0; n < N; n++) {
        const float *x = inp + n * C, *dy = dout + n * C;
        double m = mean[n], r = rstd[n], s1 = 0, s2 = 0;
        for (int64_t c = 0; c < C; c++) {
            double xh = ((double)x[c] - m) * r, dn = (double)dy[c] * w[c];
            s1 += dn;
            s2 += dn * xh;
            if (dw) {
                dw[c] += (float)(dy[c] * xh);
            }
            if (db) {
                db[c] += dy[c];
            }
        }
        s1 /= (double)C, s2 /= (double)C;
        for (int64_t c = 0; c < C && dinp; c++) {
            double xh = ((double)x[c] - m) * r, dn = (double)dy[c] * w[c];
            dinp[n * C + c] = (float)(r * (dn - s1 - xh * s2));
        }
    }
}

static inline void ref_gelu_forward(float *out, const float *inp, int64_t N)
{
    for (int64_t i = 0; i < N; i++) {
        double x = inp[i];
        out[i] = (float)(0.5 * x * (1.0 + erf(x / sqrt(2.0))));
    }
}

static inline void ref_gelu_backward(float *dinp, const float *dout, const float *inp, int64_t N)
{
    for (int64_t i = 0; i < N; i++) {
        double x = inp[i];
        double d = 0.5 * (1.0 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) / sqrt(2 * M_PI);
        dinp[i] = (float)(dout[i] * d);
    }
}

/* timm's Attention between qkv and proj: q, k, v = qkv.reshape(B,T,3,H,D/H). */
static inline void ref_attention_forward(float *out, float *att, const float *qkv, int64_t B,
                                         int64_t T, int64_t D, int64_t H)
{
    int64_t hd = D / H;
    double scale = 1.0 / sqrt((double)hd);
    double *row = malloc((size_t)T * sizeof(double));
    for (int64_t b = 0; b < B; b++) {
        for (int64_t h = 0; h < H; h++) {
            for (int64_t i = 0; i < T; i++) {
                const float *q = qkv + (b * T + i) * 3 * D + h * hd;
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j < T; j++) {
                    const float *kk = qkv + (b * T + j) * 3 * D + D + h * hd;
                    double s = 0;
                    for (int64_t d = 0; d < hd; d++) {
                        s += (double)q[d] * kk[d];
                    }
                    row[j] = s * scale;
                    mx = row[j] > mx ? row[j] : mx;
                }
                for (int64_t j = 0; j < T; j++) {
                    row[j] = exp(row[j] - mx);
                    sum += row[j];
                }
                float *p = att + ((b * H + h) * T + i) * T;
                for (int64_t j = 0; j < T; j++) {
                    p[j] = (float)(row[j] / sum);
                }
                for (int64_t d = 0; d < hd; d++) {
                    double o = 0;
                    for (int64_t j = 0; j < T; j++) {
                        o += (double)p[j] * qkv[(b * T + j) * 3 * D + 2 * D + h * hd + d];
                    }
                    out[(b * T + i) * D + h * hd + d] = (float)o;
                }
            }
        }
    }
    free(row);
}

static inline void ref_attention_backward(float *dqkv, const float *dout, const float *qkv,
                                          const float *att, int64_t B, int64_t T, int64_t D,
                                          int64_t H)
{
    int64_t hd = D / H;
    double scale = 1.0 / sqrt((double)hd);
    double *dp = malloc((size_t)T * sizeof(double));
    memset(dqkv, 0, (size_t)(B * T * 3 * D) * sizeof(float));
    for (int64_t b = 0; b < B; b++) {
        for (int64_t h = 0; h < H; h++) {
            for (int64_t i = 0; i < T; i++) {
                const float *p = att + ((b * H + h) * T + i) * T;
                const float *dy = dout + (b * T + i) * D + h * hd;
                double dot = 0;
                for (int64_t j = 0; j < T; j++) {
                    const float *v = qkv + (b * T + j) * 3 * D + 2 * D + h * hd;
                    float *dv = dqkv + (b * T + j) * 3 * D + 2 * D + h * hd;
                    double s = 0;
                    for (int64_t d = 0; d < hd; d++) {
                        s += (double)dy[d] * v[d];
                        dv[d] += (float)(p[j] * dy[d]);
                    }
                    dp[j] = s;
                    dot += p[j] * s;
                }
                const float *q = qkv + (b * T + i) * 3 * D + h * hd;
                float *dq = dqkv + (b * T + i) * 3 * D + h * hd;
                for (int64_t j = 0; j < T; j++) {
                    double ds = p[j] * (dp[j] - dot) * scale;
                    const float *kk = qkv + (b * T + j) * 3 * D + D + h * hd;
                    float *dk = dqkv + (b * T + j) * 3 * D + D + h * hd;
                    for (int64_t d = 0; d < hd; d++) {
                        dq[d] += (float)(ds * kk[d]);
                        dk[d] += (float)(ds * q[d]);
                    }
                }
            }
        }
    }
    free(dp);
}

static inline void ref_add(float *out, const float *a, const float *b, int64_t N)
{
    for (int64_t i = 0; i < N; i++) {
        out[i] = a[i] + b[i];
    }
}

static inline void ref_token_select_forward(float *out, const float *inp, int64_t B, int64_t T,
                                            int64_t D, int64_t t)
{
    for (int64_t b = 0; b < B; b++) {
        memcpy(out + b * D, inp + (b * T + t) * D, (size_t)D * sizeof(float));
    }
}

static inline void ref_token_select_backward(float *dinp, const float *dout, int64_t B, int64_t T,
                                             int64_t D, int64_t t)
{
    for (int64_t b = 0; b < B; b++) {
        for (int64_t d = 0; d < D; d++) {
            dinp[(b * T + t) * D + d] += dout[b * D + d];
        }
    }
}

/* (CE(S, diag) + CE(S^T, diag)) / 2 with S = img @ txt^T; gradients scaled by `scale`. */
static inline double ref_contrastive_loss(float *dimg, float *dtxt, const float *img,
                                          const float *txt, int64_t B, int64_t E, float scale)
{
    double *S = malloc((size_t)(B * B) * sizeof(double));
    double *dS = calloc((size_t)(B * B), sizeof(double));
    for (int64_t i = 0; i < B; i++) {
        for (int64_t j = 0; j < B; j++) {
            double s = 0;
            for (int64_t e = 0; e < E; e++) {
                s += (double)img[i * E + e] * txt[j * E + e];
            }
            S[i * B + j] = s;
        }
    }
    double loss = 0;
    for (int dir = 0; dir < 2; dir++) {   // 0: rows of S (image to text), 1: rows of S^T
        for (int64_t i = 0; i < B; i++) {
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < B; j++) {
                double s = dir ? S[j * B + i] : S[i * B + j];
                mx = s > mx ? s : mx;
            }
            for (int64_t j = 0; j < B; j++) {
                sum += exp((dir ? S[j * B + i] : S[i * B + j]) - mx);
            }
            double lse = mx + log(sum);
            loss += (lse - S[i * B + i]) / (2.0 * (double)B);
            for (int64_t j = 0; j < B; j++) {
                double p = exp((dir ? S[j * B + i] : S[i * B + j]) - lse);
                double g = (p - (i == j)) / (2.0 * (double)B);
                dS[dir ? j * B + i : i * B + j] += g;
            }
        }
    }
    for (int64_t i = 0; i < B; i++) {
        for (int64_t e = 0; e < E; e++) {
            double gi = 0, gt = 0;
            for (int64_t j = 0; j < B; j++) {
                gi += dS[i * B + j] * txt[j * E + e];
                gt += dS[j * B + i] * img[j * E + e];
            }
            if (dimg) {
                dimg[i * E + e] = (float)(scale * gi);
            }
            if (dtxt) {
                dtxt[i * E + e] = (float)(scale * gt);
            }
        }
    }
    free(S), free(dS);
    return loss;
}

#endif
