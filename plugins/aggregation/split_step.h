/* split_step.h: what both MPSL layouts do alike each step (mpsl.c, the head on the server;
 * mpsl_ushaped.c, the head on the clients): tensors over their flat buffers, the step's
 * tokens gathered by the server from the clients taking part into one batch, and a client's
 * mini-batch drawn. Header-only so the
 * plugin stays one .so. */
#ifndef MPSL_SPLIT_STEP_H
#define MPSL_SPLIT_STEP_H

#include <mpsl/plugin.h>

/* A float32 tensor over data: (a), (a,b) or (a,b,c), the trailing zero sizes dropped. */
static inline mpsl_tensor f32(float *data, int64_t a, int64_t b, int64_t c)
{
    mpsl_tensor t = {.data = data, .dtype = MPSL_F32, .ndim = c ? 3 : (b ? 2 : 1)};
    t.shape[0] = a;
    t.shape[1] = b;
    t.shape[2] = c;
    return t;
}

/* Receive the tokens (at most b samples of T x D floats) of each client k whose status[k] is
 * MPSL_SLOT_TAKES_PART, in client order, stacked into rows of `tokens`: offset[k] is client
 * k's first row, offset[K] the batch's rows. A client not taking part has an empty slice. */
static inline int gather_client_tokens(const mpsl_session_api *api, mpsl_role *r, int K,
                                       const uint8_t *status, float *tokens, int64_t b,
                                       int64_t T, int64_t D, int64_t *offset, mpsl_error *err)
{
    int64_t row = 0;
    for (int k = 0; k < K; k++) {
        offset[k] = row;
        if (status[k] != MPSL_SLOT_TAKES_PART) {
            continue;
        }
        mpsl_tensor slot = f32(tokens + row * T * D, b, T, D);
        int rc = api->recv(r, k, MPSL_MSG_ACTIVATIONS, &slot, err);
        if (rc != MPSL_OK) {
            return rc;
        }
        row += slot.shape[0];
    }
    offset[K] = row;
    return MPSL_OK;
}

/* A client's mini-batch of at most b: the next of its pass, or the first of a new pass when
 * its previous one is over. Returns the samples drawn, or a negative status. */
static inline int64_t draw_client_batch(const mpsl_session_api *api, mpsl_role *r,
                                        mpsl_batch *batch, int64_t b, mpsl_error *err)
{
    int64_t got = api->next_batch(r, batch, b, err);
    return got == 0 ? api->next_batch(r, batch, b, err) : got;
}

#endif
