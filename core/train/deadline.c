/* deadline.c: the simulated time of work a client has not done yet, for strategy.deadline
 * (the session API's work_seconds and participants()). Every role must reach the same
 * verdict before the work is done, so the time is predicted, not measured: the FLOPs of a
 * step of n samples are a + b n for each piece of a step (the kernels count work per
 * sample, plus a constant for per-batch work), measured once in each process by running
 * steps of 1 and 2 samples on models of its own with the FLOP counter on (training samples
 * 0 and 1 of the union of the clients' data; shapes alone decide the counts, so every rank
 * measures the same); the bytes go over the client's link as sim_time.c charges them. */
#include "deadline.h"

#include <math.h>
#include <string.h>

#include "kernels/flops.h"
#include "train/model.h"
#include "train/session.h"
#include "util/util.h"

enum { PIECE_LOCAL = 0, PIECE_TOKENIZE = 1, PIECE_TOKENIZE_BACKWARD = 2, PIECE_LOSS = 3 };

/* The FLOPs of each piece for a step of n samples, into f[piece]. */
static int measure_step(mpsl_session *s, mpsl_model *all, mpsl_model *tok, mpsl_batch *b,
                        float *zeros, float *dout, int64_t n, double f[4], mpsl_error *err)
{
    int64_t ids[2] = {s->all_train[0], s->all_train[s->n_all_train > 1 ? 1 : 0]};
    int rc = session_fill_train(s, ids, n, b, err);
    double pass[2];
    mpsl_tensor tokens, logits, dtokens;
    int64_t hits;
    double chance_sum = s->chance_sum, chance_n = s->chance_n; /* not a training call */
    /* the whole model: local_step.h */
    pass[0] = pass[1] = 0;
    flops_set_target(pass);
    if (rc == MPSL_OK) {
        rc = model_tokenize(all, b, &tokens, err);
    }
    if (rc == MPSL_OK) {
        rc = model_encode(all, &tokens, &logits, err);
    }
    if (rc == MPSL_OK) {
        session_loss(s, dout, logits.data, b->labels, n, &hits);
        mpsl_tensor dl = {.data = dout, .dtype = MPSL_F32, .ndim = 2, .shape = {n, all->C}};
        rc = model_encode_backward(all, &dl, &dtokens, err);
    }
    if (rc == MPSL_OK) {
        rc = model_tokenize_backward(all, &dtokens, err);
    }
    f[PIECE_LOCAL] = pass[0] + pass[1];
    /* an MPSL client's pieces: mpsl.c client_step */
    pass[0] = pass[1] = 0;
    if (rc == MPSL_OK) {
        rc = model_tokenize(tok, b, &tokens, err);
    }
    f[PIECE_TOKENIZE] = pass[0] + pass[1];
    pass[0] = pass[1] = 0;
    if (rc == MPSL_OK) {
        session_loss(s, dout, zeros, b->labels, n, &hits);
    }
    f[PIECE_LOSS] = pass[0] + pass[1];
    pass[0] = pass[1] = 0;
    if (rc == MPSL_OK) {
        mpsl_tensor g = {.data = zeros, .dtype = MPSL_F32, .ndim = 3, .shape = {n, tok->T, tok->D}};
        rc = model_tokenize_backward(tok, &g, err);
    }
    f[PIECE_TOKENIZE_BACKWARD] = pass[0] + pass[1];
    flops_set_target(NULL);
    s->chance_sum = chance_sum;
    s->chance_n = chance_n;
    return rc;
}

static int measure(mpsl_session *s, mpsl_error *err)
{
    double *saved = flops_get_target();
    mpsl_model *all = NULL, *tok = NULL;
    mpsl_batch *b = session_batch_create(s, 2, err);
    int rc = b ? model_create(s, MPSL_PART_ALL, &all, err) : MPSL_ERR_NOMEM;
    if (rc == MPSL_OK) {
        rc = model_create(s, MPSL_PART_TOKENIZERS, &tok, err);
    }
    size_t floats = rc == MPSL_OK ? (size_t)(2 * (tok->T * tok->D + s->out_size)) : 1;
    float *zeros = mpsl_alloc(floats * sizeof(float)), *dout = mpsl_alloc(floats * sizeof(float));
    if (rc == MPSL_OK && (!zeros || !dout)) {
        rc = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    double f1[4], f2[4];
    if (rc == MPSL_OK) {
        rc = measure_step(s, all, tok, b, zeros, dout, 1, f1, err);
    }
    int two = s->n_all_train > 1;
    if (rc == MPSL_OK && two) {
        rc = measure_step(s, all, tok, b, zeros, dout, 2, f2, err);
    }
    for (int i = 0; i < 4 && rc == MPSL_OK; i++) {
        double per = two ? f2[i] - f1[i] : f1[i]; /* b: per sample; a: per step */
        s->work_flops[i][0] = f1[i] - per;
        s->work_flops[i][1] = per;
    }
    s->work_measured = rc == MPSL_OK;
    mpsl_free(zeros);
    mpsl_free(dout);
    model_destroy(tok);
    model_destroy(all);
    session_batch_destroy(s, b);
    flops_set_target(saved);
    if (rc != MPSL_OK) {
        mpsl_err_prefix(err, "strategy.deadline: measuring a step's FLOPs");
    }
    return rc;
}

static double piece(const mpsl_session *s, int i, const mpsl_slot_work *w)
{
    return (double)w->steps * s->work_flops[i][0] + (double)w->samples * s->work_flops[i][1];
}

double deadline_work_seconds(mpsl_session *s, int client, const mpsl_slot_work *w,
                             mpsl_error *err)
{
    const netmodel *nm = &s->ex->network;
    if (!nm->on) {
        mpsl_errs(err, MPSL_ERR_INVALID, "strategy.deadline needs a network model (a "
                  "network: section) to say how long a client's work takes");
        return -1.0;
    }
    if (client < 0 || client >= s->ex->n_clients || !w || w->steps < 0 || w->samples < 0 ||
        (w->kind != MPSL_WORK_LOCAL && w->kind != MPSL_WORK_SPLIT_CLIENT)) {
        mpsl_errs(err, MPSL_ERR_INTERNAL, "work_seconds: a client 0..%d and a work of a "
                  "known kind with steps and samples >= 0 are needed", s->ex->n_clients - 1);
        return -1.0;
    }
    if (!s->work_measured && measure(s, err) != MPSL_OK) {
        return -1.0;
    }
    double flops = w->kind == MPSL_WORK_LOCAL
                       ? piece(s, PIECE_LOCAL, w)
                       : piece(s, PIECE_TOKENIZE, w) +
                             (w->loss ? piece(s, PIECE_LOSS, w) : 0.0) +
                             (w->backward ? piece(s, PIECE_TOKENIZE_BACKWARD, w) : 0.0);
    sim_row row = netmodel_client_row(nm, client, 0, flops, w->up_bytes, w->down_bytes,
                                      w->messages);
    return row.compute_s + row.transfer_s;
}
