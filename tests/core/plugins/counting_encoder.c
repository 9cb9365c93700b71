/* counting_encoder.c: an identity encoder that appends one line per call ("<instance> forward
 * <rows>" / "... backward <rows>") to the file named by its `log` parameter, so tests can
 * count how often and on how many rows the server really runs.
 *
 * Faults for the distributed tests, in the process whose MPI rank (OMPI_COMM_WORLD_RANK) is
 * $MPSL_TEST_FAULT_RANK: $MPSL_TEST_KILL_AT=N kills the process (SIGKILL) on its N-th
 * forward call; $MPSL_TEST_HANG_AT=N makes that call sleep for an hour.
 * In any process, $MPSL_TEST_CRASH=segv|abort|exit0|kill with $MPSL_TEST_CRASH_AT=N makes the
 * N-th forward call crash with SIGSEGV, call abort(), call exit(0) or be killed (SIGKILL): a
 * plugin that ends the process under the run (the supervision and resume tests).
 * $MPSL_TEST_CRASH=kernel makes that call hand a kernel an input out of range (an embedding
 * id past its table), which the kernel refuses and the host must turn into a failed call.
 * $MPSL_TEST_SLEEP_MS=N makes every forward call take N ms longer (a slow party). */
#include <mpsl/plugin.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The fault asked of this process's n-th forward call, if any. */
static void maybe_crash(const mpsl_host *h)
{
    static long calls;
    const char *how = getenv("MPSL_TEST_CRASH"), *at = getenv("MPSL_TEST_CRASH_AT");
    if (!how || !at || ++calls != atol(at)) {
        return;
    }
    if (strcmp(how, "segv") == 0) {
        raise(SIGSEGV);
    } else if (strcmp(how, "abort") == 0) {
        abort();
    } else if (strcmp(how, "exit0") == 0) {
        exit(0);
    } else if (strcmp(how, "kill") == 0) {
        raise(SIGKILL);
    } else if (strcmp(how, "kernel") == 0) {
        float table[2] = {1, 2}, row[1];
        int32_t id = 3;
        h->kernels->embedding_forward(row, &id, table, 1, 2, 1);
    }
}

static void maybe_fault(const mpsl_host *h)
{
    maybe_crash(h);
    const char *sleep_ms = getenv("MPSL_TEST_SLEEP_MS");
    if (sleep_ms) {
        usleep((useconds_t)(1000 * atol(sleep_ms)));
    }
    static long calls;
    const char *rank = getenv("OMPI_COMM_WORLD_RANK"), *want = getenv("MPSL_TEST_FAULT_RANK");
    if (!rank || !want || strcmp(rank, want) != 0) {
        return;
    }
    calls++;
    const char *kill_at = getenv("MPSL_TEST_KILL_AT"), *hang_at = getenv("MPSL_TEST_HANG_AT");
    if (kill_at && calls == atol(kill_at)) {
        raise(SIGKILL);
    }
    if (hang_at && calls == atol(hang_at)) {
        sleep(3600);
    }
}

typedef struct ce_params {
    const char *log;
} ce_params;

static const mpsl_param_spec ce_spec[] = {
    MPSL_PARAM_STRING(ce_params, log, "log", 1, NULL, "file the calls are appended to"),
};

typedef struct ce_state {
    const mpsl_host *h;
    char log[512];
    int64_t T, D;
    int64_t scale_offset;
} ce_state;

static int ce_create(const mpsl_host *h, const mpsl_module_init *init, void **state,
                     mpsl_error *err)
{
    ce_state *s = h->alloc(sizeof *s);
    if (!s) {
        h->error_set(err, "out of memory");
        return MPSL_ERR_NOMEM;
    }
    s->h = h;
    snprintf(s->log, sizeof s->log, "%s", ((const ce_params *)init->params)->log);
    s->T = init->in_shape[0];
    s->D = init->in_shape[1];
    *state = s;
    return MPSL_OK;
}

static void ce_destroy(void *state)
{
    ce_state *s = state;
    s->h->free(s);
}

static int ce_output_shape(void *state, int *ndim, int64_t *shape, int *cls)
{
    ce_state *s = state;
    *ndim = 2;
    shape[0] = s->T;
    shape[1] = s->D;
    if (cls) {
        *cls = 0;
    }
    return MPSL_OK;
}

static void note(ce_state *s, const char *what, int64_t rows)
{
    FILE *f = fopen(s->log, "a");
    if (f) {
        fprintf(f, "%p %s %lld\n", (void *)s, what, (long long)rows);
        fclose(f);
    }
}

static int ce_forward(void *state, const mpsl_weights *w, const mpsl_tensor *inp,
                      mpsl_tensor *out, mpsl_error *err)
{
    (void)w;
    (void)err;
    ce_state *s = state;
    memcpy(out->data, inp->data, (size_t)(inp->shape[0] * s->T * s->D) * sizeof(float));
    note(s, "forward", inp->shape[0]);
    maybe_fault(s->h);
    return MPSL_OK;
}

static int ce_backward(void *state, const mpsl_weights *w, const mpsl_tensor *dout,
                       mpsl_tensor *din, mpsl_error *err)
{
    (void)w;
    (void)err;
    ce_state *s = state;
    if (din) {
        memcpy(din->data, dout->data, (size_t)(dout->shape[0] * s->T * s->D) * sizeof(float));
    }
    note(s, "backward", dout->shape[0]);
    return MPSL_OK;
}

static const mpsl_module_api ce_api = {sizeof(mpsl_module_api), ce_create, ce_destroy,
                                       ce_output_shape, ce_forward, ce_backward};

MPSL_PLUGIN(MPSL_KIND_ENCODER, "counting_encoder", "1.0.0",
            "identity encoder that logs every call (for tests)", &ce_api, ce_params, ce_spec);
