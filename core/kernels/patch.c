/* patch.c: cutting images into non-overlapping P x P patches (the input of a ViT's patch
 * embedding, equivalent to a stride-P convolution followed by a linear layer). */
#include <assert.h>
#include <string.h>

#include "kernels.h"

void kern_patch_gather(float *out, const float *img, int64_t B, int64_t Cin, int64_t H,
                       int64_t W, int64_t P)
{
    // out (B, nP, Cin*P*P), img (B,Cin,H,W)
    assert(B >= 0 && Cin > 0 && P > 0 && H % P == 0 && W % P == 0);
    int64_t GH = H / P, GW = W / P, K = Cin * P * P;
    for (int64_t b = 0; b < B; b++) {
        for (int64_t gy = 0; gy < GH; gy++) {
            for (int64_t gx = 0; gx < GW; gx++) {
                float *o = out + ((b * GH + gy) * GW + gx) * K;
                for (int64_t c = 0; c < Cin; c++) {
                    const float *src = img + ((b * Cin + c) * H + gy * P) * W + gx * P;
                    for (int64_t py = 0; py < P; py++) {
                        // one patch row is P contiguous pixels
                        memcpy(o, src + py * W, (size_t)P * sizeof(float));
                        o += P;
                    }
                }
            }
        }
    }
}

void kern_patch_gather_ref(float *out, const float *img, int64_t B, int64_t Cin, int64_t H,
                           int64_t W, int64_t P)
{
    // out (B, nP, Cin*P*P), img (B,Cin,H,W)
    assert(B >= 0 && Cin > 0 && P > 0 && H % P == 0 && W % P == 0);
    int64_t GW = W / P, nP = (H / P) * GW, K = Cin * P * P;
    for (int64_t b = 0; b < B; b++) {
        for (int64_t p = 0; p < nP; p++) {
            for (int64_t k = 0; k < K; k++) {
                int64_t c = k / (P * P), py = (k / P) % P, px = k % P;
                int64_t y = (p / GW) * P + py, x = (p % GW) * P + px;
                out[(b * nP + p) * K + k] = img[((b * Cin + c) * H + y) * W + x];
            }
        }
    }
}

void kern_patch_gather_strided(float *out, const float *img, int64_t B, int64_t Cin,
                               int64_t H, int64_t W, int64_t Ph, int64_t Pw, int64_t Sh,
                               int64_t Sw)
{
    // out (B, nH*nW, Cin*Ph*Pw), img (B,Cin,H,W)
    assert(B >= 0 && Cin > 0 && Ph > 0 && Pw > 0 && Sh > 0 && Sw > 0 && Ph <= H && Pw <= W);
    int64_t nH = (H - Ph) / Sh + 1, nW = (W - Pw) / Sw + 1, K = Cin * Ph * Pw;
    for (int64_t b = 0; b < B; b++) {
        for (int64_t gy = 0; gy < nH; gy++) {
            for (int64_t gx = 0; gx < nW; gx++) {
                float *o = out + ((b * nH + gy) * nW + gx) * K;
                for (int64_t c = 0; c < Cin; c++) {
                    const float *src = img + ((b * Cin + c) * H + gy * Sh) * W + gx * Sw;
                    for (int64_t py = 0; py < Ph; py++) {
                        memcpy(o, src + py * W, (size_t)Pw * sizeof(float));
                        o += Pw;
                    }
                }
            }
        }
    }
}

void kern_patch_gather_strided_ref(float *out, const float *img, int64_t B, int64_t Cin,
                                   int64_t H, int64_t W, int64_t Ph, int64_t Pw, int64_t Sh,
                                   int64_t Sw)
{
    // out (B, nH*nW, Cin*Ph*Pw), img (B,Cin,H,W)
    assert(B >= 0 && Cin > 0 && Ph > 0 && Pw > 0 && Sh > 0 && Sw > 0 && Ph <= H && Pw <= W);
    int64_t nH = (H - Ph) / Sh + 1, nW = (W - Pw) / Sw + 1, nP = nH * nW, K = Cin * Ph * Pw;
    for (int64_t b = 0; b < B; b++) {
        for (int64_t p = 0; p < nP; p++) {
            for (int64_t k = 0; k < K; k++) {
                int64_t c = k / (Ph * Pw), py = (k / Pw) % Ph, px = k % Pw;
                int64_t y = (p / nW) * Sh + py, x = (p % nW) * Sw + px;
                out[(b * nP + p) * K + k] = img[((b * Cin + c) * H + y) * W + x];
            }
        }
    }
}
