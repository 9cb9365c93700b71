/* session_api_profiled.c: the session API with the calls that do a run's work timed into
 * their phases (util/profile.h), which session_api() hands out when MPSL_PROFILE=1. Every
 * wrapper calls the plain entry: behaviour and results are unchanged. recv and step_end may
 * suspend the calling role while other roles run (in one process) or while the process waits
 * for another rank (MPI, timed as network_wait by the driver); only the role's own running
 * time inside them counts as messages or checkpoint time. */
#include "session_api.h"

#include "train/session.h"
#include "util/profile.h"

static const mpsl_session_api *plain;


static int64_t p_next_batch(mpsl_role *r, mpsl_batch *b, int64_t n, mpsl_error *err)
{
    double t0 = mpsl_now();
    int64_t got = plain->next_batch(r, b, n, err);
    profile_phase_add(PROF_DATA, mpsl_now() - t0);
    return got;
}

#define TIMED_MODEL_CALL(phase, call)                                                          \
    do {                                                                                       \
        double t0_ = mpsl_now();                                                               \
        int rc_ = (call);                                                                      \
        profile_phase_add(phase, mpsl_now() - t0_);                                            \
        return rc_;                                                                            \
    } while (0)

static int p_model_tokenize(mpsl_model *m, const mpsl_batch *b, mpsl_tensor *tokens,
                            mpsl_error *err)
{
    TIMED_MODEL_CALL(PROF_TOKENIZE, plain->model_tokenize(m, b, tokens, err));
}
static int p_model_tokenize_backward(mpsl_model *m, const mpsl_tensor *dtokens, mpsl_error *err)
{
    TIMED_MODEL_CALL(PROF_TOKENIZE, plain->model_tokenize_backward(m, dtokens, err));
}
static int p_model_encode(mpsl_model *m, const mpsl_tensor *tokens, mpsl_tensor *logits,
                          mpsl_error *err)
{
    TIMED_MODEL_CALL(PROF_ENCODE, plain->model_encode(m, tokens, logits, err));
}
static int p_model_encode_backward(mpsl_model *m, const mpsl_tensor *dlogits,
                                   mpsl_tensor *dtokens, mpsl_error *err)
{
    TIMED_MODEL_CALL(PROF_ENCODE, plain->model_encode_backward(m, dlogits, dtokens, err));
}
static int p_model_features(mpsl_model *m, const mpsl_tensor *tokens, mpsl_tensor *features,
                            mpsl_error *err)
{
    TIMED_MODEL_CALL(PROF_ENCODE, plain->model_features(m, tokens, features, err));
}
static int p_model_features_backward(mpsl_model *m, const mpsl_tensor *dfeatures,
                                     mpsl_tensor *dtokens, mpsl_error *err)
{
    TIMED_MODEL_CALL(PROF_ENCODE, plain->model_features_backward(m, dfeatures, dtokens, err));
}
static int p_model_head(mpsl_model *m, const mpsl_tensor *features, mpsl_tensor *outputs,
                        mpsl_error *err)
{
    TIMED_MODEL_CALL(PROF_ENCODE, plain->model_head(m, features, outputs, err));
}
static int p_model_head_backward(mpsl_model *m, const mpsl_tensor *doutputs,
                                 mpsl_tensor *dfeatures, mpsl_error *err)
{
    TIMED_MODEL_CALL(PROF_ENCODE, plain->model_head_backward(m, doutputs, dfeatures, err));
}
static int p_optim_step(mpsl_optim *o, int64_t epoch, mpsl_error *err)
{
    TIMED_MODEL_CALL(PROF_OPTIMIZER, plain->optim_step(o, epoch, err));
}
static int p_loss(mpsl_role *r, const float *out, const int32_t *labels, int64_t n, float *dout,
                  double *loss, int64_t *correct, mpsl_error *err)
{
    TIMED_MODEL_CALL(PROF_LOSS, plain->loss(r, out, labels, n, dout, loss, correct, err));
}
static int p_send(mpsl_role *r, int to, mpsl_msg_kind kind, const mpsl_tensor *t,
                  mpsl_error *err)
{
    TIMED_MODEL_CALL(PROF_MESSAGES, plain->send(r, to, kind, t, err));
}
static int p_recv(mpsl_role *r, int from, mpsl_msg_kind kind, mpsl_tensor *t, mpsl_error *err)
{
    double ran0 = role_running_seconds(r);
    int rc = plain->recv(r, from, kind, t, err);
    profile_phase_add(PROF_MESSAGES, role_running_seconds(r) - ran0);
    return rc;
}
static int p_step_end(mpsl_role *r, int64_t epoch, int64_t step, mpsl_error *err)
{
    int64_t every = r->s->ex->checkpoint_every_steps;
    if (every <= 0 || step % every != 0) { /* no checkpoint: nothing worth timing */
        return plain->step_end(r, epoch, step, err);
    }
    double ran0 = role_running_seconds(r);
    int rc = plain->step_end(r, epoch, step, err);
    profile_phase_add(PROF_CHECKPOINT, role_running_seconds(r) - ran0);
    return rc;
}
static int p_evaluate(mpsl_role *r, mpsl_model *m, int client, int64_t limit, double *acc,
                      double *loss, mpsl_error *err)
{
    TIMED_MODEL_CALL(PROF_DIAGNOSTICS, plain->evaluate(r, m, client, limit, acc, loss, err));
}

const mpsl_session_api *session_api_profiled(const mpsl_session_api *base)
{
    static mpsl_session_api api;
    if (!plain) {
        plain = base;
        api = *base;
        api.next_batch = p_next_batch;
        api.model_tokenize = p_model_tokenize;
        api.model_tokenize_backward = p_model_tokenize_backward;
        api.model_encode = p_model_encode;
        api.model_encode_backward = p_model_encode_backward;
        api.model_features = p_model_features;
        api.model_features_backward = p_model_features_backward;
        api.model_head = p_model_head;
        api.model_head_backward = p_model_head_backward;
        api.optim_step = p_optim_step;
        api.loss = p_loss;
        api.send = p_send;
        api.recv = p_recv;
        api.step_end = p_step_end;
        api.evaluate = p_evaluate;
    }
    return &api;
}
