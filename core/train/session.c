/* session.c: the data side of a run (dataset, partition, client batches), evaluation, and the
 * end-of-epoch bookkeeping that turns counters into rows of the results store. */
#include "session.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train/audit.h"
#include "train/init_cache.h"
#include "kernels/flops.h"
#include "kernels/gemm.h"
#include "mpsl_build_config.h"
#include "train/checkpoint.h"
#include "train/model.h"
#include "train/profile_rows.h"
#include "train/session_api.h"
#include "train/sim_time.h"
#include "weights/model_weights.h"

volatile sig_atomic_t session_stop_requested;

/* ---------------------------------------------------------------- data */

static int match_modalities(mpsl_session *s, mpsl_error *err)
{
    const experiment *ex = s->ex;
    for (int i = 0; i < ex->n_tokenizers; i++) {
        int found = -1;
        for (int j = 0; j < s->info.n_modalities; j++) {
            if (strcmp(s->info.modality[j].name, ex->modality[i]) == 0) {
                found = j;
            }
        }
        if (found < 0) {
            char names[160] = "";
            for (int j = 0; j < s->info.n_modalities; j++) {
                size_t used = strlen(names);
                snprintf(names + used, sizeof names - used, "%s'%s'", j ? ", " : "",
                         s->info.modality[j].name);
            }
            return mpsl_err(err, "%s: model.tokenizers.%s: dataset '%s' has no modality '%s' "
                            "(it provides %s)", ex->tokenizer[i].where, ex->modality[i],
                            ex->dataset.plugin.desc->name, ex->modality[i], names);
        }
        s->modality_of_tokenizer[i] = found;
    }
    return MPSL_OK;
}

/* The longest class name accepted, in bytes (without the terminator). */
#define SESSION_CLASS_NAME_MAX 64

/* info->class_names (ABI 2.1) is NULL or n_classes names. They go into the results database,
 * reports and terminals, so each must be a short printable string: refused here, once, with
 * the class's index, rather than surfacing later as a crash or garbled output. */
static int check_class_names(const char *plugin, const mpsl_dataset_info *info,
                             mpsl_error *err)
{
    if (!info->class_names) {
        return MPSL_OK;
    }
    if (info->task == MPSL_TASK_RETRIEVAL) {
        return mpsl_errs(err, MPSL_ERR_PLUGIN, "dataset plugin '%s' is a retrieval dataset but "
                         "reports class_names; expected NULL (retrieval items are not classes)",
                         plugin);
    }
    for (int64_t c = 0; c < info->n_classes; c++) {
        const char *name = info->class_names[c];
        const char *what = NULL;
        char why[96];
        /* Never read past the limit: an unterminated name must not run on through memory. */
        size_t len = name ? strnlen(name, SESSION_CLASS_NAME_MAX + 1) : 0;
        if (!name) {
            what = "is NULL";
        } else if (len == 0) {
            what = "is empty";
        }
        for (size_t i = 0; !what && i < len; i++) {
            unsigned char ch = (unsigned char)name[i];
            if (ch < 0x20 || ch == 0x7f) {
                snprintf(why, sizeof why, "holds control character 0x%02x at byte %zu", ch, i);
                what = why;
            }
        }
        if (!what && len > SESSION_CLASS_NAME_MAX) {
            snprintf(why, sizeof why, "is longer than %d bytes ('%.24s...')",
                     SESSION_CLASS_NAME_MAX, name);
            what = why;
        }
        if (what) {
            return mpsl_errs(err, MPSL_ERR_PLUGIN, "dataset plugin '%s': class_names[%lld] %s; "
                             "expected %lld names (one per class), each a non-empty string of "
                             "at most %d bytes without control characters, or class_names "
                             "NULL", plugin, (long long)c, what, (long long)info->n_classes,
                             SESSION_CLASS_NAME_MAX);
        }
    }
    return MPSL_OK;
}

int session_open_data(mpsl_session *s, mpsl_error *err)
{
    const experiment *ex = s->ex;
    s->dataset_api = ex->dataset.plugin.desc->api;
    /* A plugin built against an older minor ABI writes only the fields it knows: the rest
     * must read as "not given" (task 0 = classification, class_names NULL). */
    memset(&s->info, 0, sizeof s->info);
    int rc = s->dataset_api->open(s->host, ex->dataset.params, ex->dataset.where, &s->info,
                                  &s->dataset, err);
    if (rc != MPSL_OK) {
        s->dataset = NULL;
        if (!err->msg[0]) {
            mpsl_errs(err, rc, "open() failed with status %d without a message", rc);
        }
        mpsl_err_prefix(err, "data.dataset (plugin '%s')", ex->dataset.plugin.desc->name);
        return rc ? rc : MPSL_ERR_PLUGIN;
    }
    if (s->info.n_modalities < 1 || s->info.n_modalities > MPSL_MAX_MODALITIES ||
        s->info.n_classes < 1 || s->info.n_train < 1 || s->info.n_test < 1) {
        return mpsl_errs(err, MPSL_ERR_PLUGIN, "dataset plugin '%s' reported an empty or "
                         "malformed dataset (%d modalities, %lld classes, %lld/%lld samples)",
                         ex->dataset.plugin.desc->name, s->info.n_modalities,
                         (long long)s->info.n_classes, (long long)s->info.n_train,
                         (long long)s->info.n_test);
    }
    /* Batches hold 4-byte elements: float64 exists for messages only. */
    for (int j = 0; j < s->info.n_modalities; j++) {
        mpsl_dtype dt = s->info.modality[j].dtype;
        if (dt != MPSL_F32 && dt != MPSL_I32) {
            return mpsl_errs(err, MPSL_ERR_PLUGIN, "dataset plugin '%s': modality '%.32s' has "
                             "element type %d; expected MPSL_F32 or MPSL_I32",
                             ex->dataset.plugin.desc->name, s->info.modality[j].name, (int)dt);
        }
    }
    rc = match_modalities(s, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    if (s->info.task < 0 || s->info.task >= MPSL_TASK_COUNT) {
        return mpsl_errs(err, MPSL_ERR_PLUGIN, "dataset plugin '%s' reported unknown task %d",
                         ex->dataset.plugin.desc->name, (int)s->info.task);
    }
    rc = check_class_names(ex->dataset.plugin.desc->name, &s->info, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    if (s->info.task == MPSL_TASK_RETRIEVAL && ex->partition.scheme != PARTITION_IID) {
        /* Per-class schemes need classes; retrieval items are all distinct (MPSL.md:
         * "Retrieval datasets are split uniformly at random"). */
        const cfg_node *part = cfg_path(ex->root, "data.partition");
        char w[256];
        const char *where = part && cfg_get(part, "scheme")
                                ? cfg_where_key(part, "scheme", w, sizeof w)
                                : ex->path;
        return mpsl_err(err, "%s: data.partition.scheme '%s' splits by class, but dataset '%s' "
                        "is a retrieval dataset (no classes: each image-caption item is its "
                        "own); retrieval data is split uniformly at random: use scheme: iid",
                        where, ex->partition.scheme == PARTITION_DIRICHLET ? "dirichlet"
                                                                            : "shards",
                        ex->dataset.plugin.desc->name);
    }
    if (s->info.task == MPSL_TASK_RETRIEVAL && ex->fusion == FUSION_EARLY) {
        /* One joint sequence would let the image's embedding see its own captions (and the
         * captions the image): matching pairs would be told apart by leaked content. */
        const cfg_node *model = cfg_path(ex->root, "model");
        char w[256];
        const char *where = model && cfg_get(model, "fusion")
                                ? cfg_where_key(model, "fusion", w, sizeof w)
                                : ex->path;
        return mpsl_err(err, "%s: model.fusion is early, but dataset '%s' is a retrieval "
                        "dataset: the image and its captions must be encoded apart (the K "
                        "captions together as one K-token sequence), or each embedding would "
                        "see its pair; use model.fusion: late", where,
                        ex->dataset.plugin.desc->name);
    }
    /* The test labels are read as indices by the evaluation: checked here, as the partition
     * checks the training labels (retrieval labels are item indices, not classes). */
    const int32_t *test_labels = s->dataset_api->labels(s->dataset, MPSL_SPLIT_TEST);
    for (int64_t i = 0; s->info.task != MPSL_TASK_RETRIEVAL && i < s->info.n_test; i++) {
        if (!test_labels || test_labels[i] < 0 || test_labels[i] >= s->info.n_classes) {
            return mpsl_errs(err, MPSL_ERR_PLUGIN, "dataset plugin '%s': test sample %lld has "
                             "label %d outside 0..%lld", ex->dataset.plugin.desc->name,
                             (long long)i, test_labels ? (int)test_labels[i] : -1,
                             (long long)s->info.n_classes - 1);
        }
    }
    const int32_t *labels = s->dataset_api->labels(s->dataset, MPSL_SPLIT_TRAIN);
    rc = partition_create(&ex->partition, labels, s->info.n_train, s->info.n_classes, &s->part,
                          err);
    if (rc != MPSL_OK) {
        return rc;
    }
    int n = ex->n_clients;
    s->cursor = calloc((size_t)n + 1, sizeof *s->cursor);
    s->links = calloc((size_t)n, sizeof *s->links);
    s->client_flops = calloc((size_t)n * 2, sizeof *s->client_flops);
    s->client_time = calloc((size_t)n * 2, sizeof *s->client_time);
    if (!s->cursor || !s->links || !s->client_flops || !s->client_time) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory for %d clients", n);
    }
    int64_t total = 0;
    for (int k = 0; k < n; k++) {
        total += s->part.count[k];
    }
    s->all_train = malloc((size_t)total * sizeof *s->all_train);
    if (!s->all_train) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    for (int k = 0; k <= n; k++) {
        int64_t count = k < n ? s->part.count[k] : total;
        const int64_t *src = k < n ? s->part.index[k] : NULL;
        client_cursor *c = &s->cursor[k];
        c->order = malloc((size_t)(count ? count : 1) * sizeof *c->order);
        if (!c->order) {
            return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        }
        if (src) {
            memcpy(c->order, src, (size_t)count * sizeof *src);
            memcpy(s->all_train + s->n_all_train, src, (size_t)count * sizeof *src);
            s->n_all_train += count;
        } else {
            memcpy(c->order, s->all_train, (size_t)count * sizeof *c->order);
        }
        c->n = count;
        /* A cursor's batch order is seeded by the run seed and the clients it draws from:
         * the union of one client's data shuffles exactly like that client, so one-client
         * runs of different strategies see the same batches. */
        uint64_t h = ex->train.seed ^ 0xba7c4e5ull;
        for (int c0 = k < n ? k : 0; c0 <= (k < n ? k : n - 1); c0++) {
            h = (h ^ (uint64_t)(c0 + 1)) * 0x9E3779B97F4A7C15ull;
        }
        mpsl_rng_seed(&c->rng, h);
        mpsl_rng_shuffle(&c->rng, c->order, c->n);
    }
    return MPSL_OK;
}

mpsl_batch *session_batch_create(mpsl_session *s, int64_t max_n, mpsl_error *err)
{
    mpsl_batch *b = calloc(1, sizeof *b);
    if (!b) {
        mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        return NULL;
    }
    int ok = 1;
    for (int i = 0; i < s->info.n_modalities; i++) {
        const mpsl_modality_info *mi = &s->info.modality[i];
        mpsl_tensor *t = &b->modality[i];
        int64_t per = 1;
        for (int d = 0; d < mi->ndim; d++) {
            per *= mi->shape[d];
            t->shape[d + 1] = mi->shape[d];
        }
        t->dtype = mi->dtype;
        t->ndim = mi->ndim + 1;
        t->shape[0] = max_n;
        t->data = mpsl_alloc((size_t)(max_n * per) * 4);
        ok = ok && t->data;
    }
    b->labels = mpsl_alloc((size_t)max_n * sizeof *b->labels);
    if (!ok || !b->labels) {
        session_batch_destroy(s, b);
        mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory for a batch of %lld", (long long)max_n);
        return NULL;
    }
    return b;
}

void session_batch_destroy(mpsl_session *s, mpsl_batch *b)
{
    (void)s;
    if (!b) {
        return;
    }
    for (int i = 0; i < MPSL_MAX_MODALITIES; i++) {
        mpsl_free(b->modality[i].data);
    }
    mpsl_free(b->labels);
    free(b);
}

static int fill_batch(mpsl_session *s, mpsl_split split, const int64_t *idx, int64_t n,
                      mpsl_batch *b, mpsl_error *err)
{
    int rc = s->dataset_api->fill(s->dataset, split, idx, n, b, err);
    if (rc != MPSL_OK) {
        if (!err->msg[0]) {
            mpsl_errs(err, rc, "fill() failed with status %d without a message", rc);
        }
        mpsl_err_prefix(err, "dataset plugin '%s'", s->ex->dataset.plugin.desc->name);
        return rc ? rc : MPSL_ERR_PLUGIN;
    }
    b->n = n;
    for (int i = 0; i < s->info.n_modalities; i++) {
        b->modality[i].shape[0] = n;
    }
    return MPSL_OK;
}

int session_fill_train(mpsl_session *s, const int64_t *ids, int64_t n, mpsl_batch *b,
                       mpsl_error *err)
{
    return fill_batch(s, MPSL_SPLIT_TRAIN, ids, n, b, err);
}

int64_t session_client_next(mpsl_session *s, int client, mpsl_batch *b, int64_t n,
                            mpsl_error *err)
{
    if (client < -1 || client >= s->ex->n_clients || n < 1) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "client_next: client %d of %d, n %lld", client,
                         s->ex->n_clients, (long long)n);
    }
    client_cursor *c = &s->cursor[client < 0 ? s->ex->n_clients : client];
    if (c->next >= c->n) {
        c->next = 0;
        mpsl_rng_shuffle(&c->rng, c->order, c->n);
        return 0;
    }
    int64_t take = c->n - c->next < n ? c->n - c->next : n;
    int rc = fill_batch(s, MPSL_SPLIT_TRAIN, c->order + c->next, take, b, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    c->next += take;
    return take;
}

/* ---------------------------------------------------------------- evaluation */

#define EVAL_BATCH 256

static const int recall_at[3] = {1, 5, 10};

/* Recall@{1,5,10} from the test split's embeddings, ranking raw dot products as the loss
 * does. img (N,E); txt (N*K,E), caption k of item i at row i*K+k. A query's rank is the
 * number of wrong candidates scoring at least as high as its best right one (ties count
 * against it); a hit at r when rank < r.
 *   image->text: an image against all N*K captions; right = its own K captions.
 *   text->image: each of the N*K captions against all N images; right = its image.
 * Scores are computed in row blocks of at most ~16M floats. */
static int retrieval_recall(const mpsl_session *s, const float *img, const float *txt,
                            int64_t N, int64_t K, int64_t E, double recall[2][3],
                            mpsl_error *err)
{
    int64_t NK = N * K, budget = (int64_t)1 << 24;
    int64_t rows = budget / NK > 1 ? budget / NK : 1;     /* images per i2t block */
    int64_t trows = budget / N > 1 ? budget / N : 1;      /* captions per t2i block */
    rows = rows < N ? rows : N;
    trows = trows < NK ? trows : NK;
    int64_t cap = rows * NK > trows * N ? rows * NK : trows * N;
    float *S = mpsl_alloc((size_t)cap * sizeof(float));
    if (!S) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory for retrieval scores");
    }
    int64_t hits[2][3] = {{0}};
    /* image -> text */
    for (int64_t i0 = 0; i0 < N; i0 += rows) {
        int64_t nb = N - i0 < rows ? N - i0 : rows;
        s->host->kernels->linear_forward(S, img + i0 * E, txt, NULL, nb, E, NK);
        for (int64_t q = 0; q < nb; q++) {
            const float *row = S + q * NK;
            int64_t own = (i0 + q) * K;
            float best = row[own];
            for (int64_t k = 1; k < K; k++) {
                best = row[own + k] > best ? row[own + k] : best;
            }
            int64_t rank = 0;
            for (int64_t j = 0; j < NK; j++) {
                rank += (j < own || j >= own + K) && row[j] >= best;
            }
            for (int r = 0; r < 3; r++) {
                hits[0][r] += rank < recall_at[r];
            }
        }
    }
    /* text -> image */
    for (int64_t j0 = 0; j0 < NK; j0 += trows) {
        int64_t nb = NK - j0 < trows ? NK - j0 : trows;
        s->host->kernels->linear_forward(S, txt + j0 * E, img, NULL, nb, E, N);
        for (int64_t q = 0; q < nb; q++) {
            const float *row = S + q * N;
            int64_t own = (j0 + q) / K;
            int64_t rank = 0;
            for (int64_t i = 0; i < N; i++) {
                rank += i != own && row[i] >= row[own];
            }
            for (int r = 0; r < 3; r++) {
                hits[1][r] += rank < recall_at[r];
            }
        }
    }
    mpsl_free(S);
    for (int r = 0; r < 3; r++) {
        recall[0][r] = (double)hits[0][r] / (double)N;
        recall[1][r] = (double)hits[1][r] / (double)NK;
    }
    return MPSL_OK;
}

void eval_result_free(eval_result *res)
{
    free(res->class_n);
    free(res->class_hits);
    free(res->class_loss);
    res->class_n = res->class_hits = NULL;
    res->class_loss = NULL;
}

/* Each test sample's loss and hit, by its class: what per-client test figures are made of
 * (session_epoch_end). The batch's own loss above stays as it was computed. */
static void per_class(mpsl_session *s, eval_result *res, const float *out, const int32_t *labels,
                      int64_t n, int64_t C)
{
    if (!res->class_n) {
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t hit = 0;
        int32_t c = labels[i];
        double l = s->host->kernels->cross_entropy(NULL, out + i * C, labels + i, 1, C, 1.0f,
                                                  &hit);
        if (c >= 0 && c < s->info.n_classes) {
            res->class_n[c]++;
            res->class_hits[c] += hit;
            res->class_loss[c] += l;
        }
    }
}

int session_evaluate(mpsl_session *s, mpsl_model *m, eval_result *res, mpsl_error *err)
{
    return session_evaluate_on(s, m, MPSL_SPLIT_TEST, NULL, s->info.n_test,
                               s->ex->metrics_per_client_test, res, err);
}

int session_evaluate_on(mpsl_session *s, mpsl_model *m, mpsl_split split, const int64_t *ids,
                        int64_t N, int by_class, eval_result *res, mpsl_error *err)
{
    memset(res, 0, sizeof *res);
    if (N < 1) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "evaluation of no samples");
    }
    if (m->parts != MPSL_PART_ALL) { /* checked before anything is allocated */
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "evaluation needs a model with all parts");
    }
    if (s->info.task != MPSL_TASK_RETRIEVAL && by_class) {
        size_t C = (size_t)s->info.n_classes;
        res->class_n = calloc(C, sizeof *res->class_n);
        res->class_hits = calloc(C, sizeof *res->class_hits);
        res->class_loss = calloc(C, sizeof *res->class_loss);
        if (!res->class_n || !res->class_hits || !res->class_loss) {
            eval_result_free(res);
            return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory for per-class test figures");
        }
    }
    int64_t K, E;
    session_retrieval_shape(s, &K, &E);
    double *saved_target = flops_get_target();
    flops_set_target(NULL); /* evaluation is not part of the training cost */
    mpsl_batch *b = session_batch_create(s, EVAL_BATCH, err);
    int64_t *idx = malloc(EVAL_BATCH * sizeof *idx);
    /* retrieval: every test item's image (N,E) and captions (N*K,E) */
    float *img = K ? mpsl_alloc((size_t)(N * E) * sizeof(float)) : NULL;
    float *txt = K ? mpsl_alloc((size_t)(N * K * E) * sizeof(float)) : NULL;
    int rc = b && idx && (!K || (img && txt)) ? MPSL_OK : MPSL_ERR_NOMEM;
    double loss_sum = 0.0;
    int64_t correct = 0, seen = 0, batches = 0;
    const int32_t *all_labels = s->dataset_api->labels(s->dataset, split);
    int32_t *picked = ids ? malloc(EVAL_BATCH * sizeof *picked) : NULL;
    if (ids && !picked) {
        rc = MPSL_ERR_NOMEM;
    }
    for (int64_t start = 0; rc == MPSL_OK && start < N; start += EVAL_BATCH) {
        int64_t n = N - start < EVAL_BATCH ? N - start : EVAL_BATCH;
        for (int64_t i = 0; i < n; i++) {
            idx[i] = ids ? ids[start + i] : start + i;
        }
        /* the batch's labels, in the split's order when ids is NULL (no copy) */
        const int32_t *labels = all_labels + start;
        for (int64_t i = 0; picked && i < n; i++) {
            picked[i] = all_labels[idx[i]];
        }
        if (picked) {
            labels = picked;
        }
        mpsl_tensor tokens, logits;
        rc = fill_batch(s, split, idx, n, b, err);
        if (rc == MPSL_OK) {
            rc = model_tokenize(m, b, &tokens, err);
        }
        if (rc == MPSL_OK) {
            rc = model_encode(m, &tokens, &logits, err);
        }
        if (rc != MPSL_OK) {
            break;
        }
        const float *out = logits.data;
        if (K) {
            /* the summed contrastive loss of this batch, averaged over batches */
            loss_sum += session_loss(s, NULL, out, NULL, n, NULL);
            batches++;
            for (int64_t i = 0; i < n; i++) {
                const float *o = out + i * (1 + K) * E;
                memcpy(img + (start + i) * E, o, (size_t)E * sizeof(float));
                memcpy(txt + (start + i) * K * E, o + E, (size_t)(K * E) * sizeof(float));
            }
        } else {
            int64_t hits = 0;
            loss_sum += (double)n * s->host->kernels->cross_entropy(NULL, out, labels, n, m->C,
                                                                   1.0f, &hits);
            correct += hits;
            per_class(s, res, out, labels, n, m->C);
        }
        seen += n;
    }
    if (rc == MPSL_OK && K) {
        rc = retrieval_recall(s, img, txt, N, K, E, res->recall, err);
    }
    mpsl_free(img);
    mpsl_free(txt);
    free(idx);
    free(picked);
    session_batch_destroy(s, b);
    flops_set_target(saved_target);
    if (rc != MPSL_OK) {
        eval_result_free(res);
        if (rc == MPSL_ERR_NOMEM && !err->msg[0]) {
            mpsl_errs(err, rc, "out of memory for evaluation");
        }
        return rc;
    }
    if (K) {
        res->has_recall = 1;
        res->acc = 0.5 * (res->recall[0][0] + res->recall[1][0]);
        res->loss = loss_sum / (double)batches;
    } else {
        res->acc = (double)correct / (double)seen;
        res->loss = loss_sum / (double)seen;
    }
    return MPSL_OK;
}

/* ---------------------------------------------------------------- epoch bookkeeping */

static int store_counters(mpsl_session *s, int64_t epoch, mpsl_error *err)
{
    int rc = MPSL_OK;
    static const char *const dir_name[2] = {"up", "down"};
    static const char *const pass_name[2] = {"forward", "backward"};
    double client_total[2] = {0, 0};
    for (int k = 0; k < s->ex->n_clients && rc == MPSL_OK; k++) {
        for (int d = 0; d < 2 && rc == MPSL_OK; d++) {
            for (int kind = 0; kind < MPSL_MSG_KIND_COUNT && rc == MPSL_OK; kind++) {
                if (s->links[k].messages[d][kind]) {
                    rc = store_comm(s->db, s->run_id, epoch, k, dir_name[d],
                                    message_kind_name((mpsl_msg_kind)kind),
                                    s->links[k].bytes[d][kind], s->links[k].messages[d][kind],
                                    err);
                }
            }
        }
        for (int p = 0; p < 2 && rc == MPSL_OK; p++) {
            double f = s->client_flops[2 * k + p];
            client_total[p] += f;
            if (f > 0) {
                rc = store_compute(s->db, s->run_id, epoch, "client", k, pass_name[p], f, err);
            }
        }
        /* measured time of the clients that ran a role */
        if (rc == MPSL_OK && s->drv.api && s->drv.api->client) {
            rc = store_client_metric(s->db, s->run_id, epoch, k, "compute_seconds",
                                     s->client_time[2 * k], err);
            if (rc == MPSL_OK) {
                rc = store_client_metric(s->db, s->run_id, epoch, k, "wait_seconds",
                                         s->client_time[2 * k + 1], err);
            }
        }
    }
    for (int p = 0; p < 2 && rc == MPSL_OK; p++) {
        rc = store_compute(s->db, s->run_id, epoch, "server", -1, pass_name[p],
                           s->server_flops[p], err);
    }
    return rc;
}

static void reset_counters(mpsl_session *s)
{
    memset(s->links, 0, (size_t)s->ex->n_clients * sizeof *s->links);
    memset(s->client_flops, 0, (size_t)s->ex->n_clients * 2 * sizeof *s->client_flops);
    memset(s->client_time, 0, (size_t)s->ex->n_clients * 2 * sizeof *s->client_time);
    s->server_flops[0] = s->server_flops[1] = 0;
}

static void format_seconds(char *buf, size_t size, double sec)
{
    if (sec < 120) {
        snprintf(buf, size, "%.1fs", sec);
    } else if (sec < 7200) {
        snprintf(buf, size, "%dm%02ds", (int)(sec / 60), (int)sec % 60);
    } else {
        snprintf(buf, size, "%dh%02dm", (int)(sec / 3600), (int)(sec / 60) % 60);
    }
}

/* One role's metrics.every_steps row: its mean loss and accuracy over the interval. */
static int store_step_row(mpsl_session *s, int64_t epoch, int client, const role_step_row *row,
                          mpsl_error *err)
{
    if (row->samples <= 0) {
        return MPSL_OK;
    }
    double n = (double)row->samples;
    int rc = store_step_metric(s->db, s->run_id, epoch, row->step, client, "train_loss",
                               row->loss_sum / n, err);
    if (rc == MPSL_OK) {
        rc = store_step_metric(s->db, s->run_id, epoch, row->step, client, "train_acc",
                               (double)row->hits / n, err);
    }
    if (rc == MPSL_OK) { /* the interval's weight, for means over clients or runs */
        rc = store_step_metric(s->db, s->run_id, epoch, row->step, client, "samples", n, err);
    }
    return rc;
}

/* The clients' rows of one step summed (samples, loss, hits), for the run's row: clients of
 * one step differ in batch size, so the run's loss is their sample-weighted mean. */
static int step_sum_add(mpsl_session *s, const role_step_row *row, mpsl_error *err)
{
    for (int i = 0; i < s->n_step_sums; i++) {
        role_step_row *sum = &s->step_sums[i];
        if (sum->step == row->step) {
            sum->samples += row->samples;
            sum->loss_sum += row->loss_sum;
            sum->hits += row->hits;
            return MPSL_OK;
        }
    }
    if (role_step_rows_append(&s->step_sums, &s->n_step_sums, &s->cap_step_sums, row) !=
        MPSL_OK) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    return MPSL_OK;
}

/* The run's step rows (client -1): the server's own where it computes the loss (centralized),
 * otherwise the clients' rows summed step by step. */
static int store_run_step_rows(mpsl_role *server, int64_t epoch, mpsl_error *err)
{
    mpsl_session *s = server->s;
    int rc = role_close_interval(server) == MPSL_OK
                 ? MPSL_OK
                 : mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    int own = server->n_step_rows > 0;
    const role_step_row *rows = own ? server->step_rows : s->step_sums;
    int n = own ? server->n_step_rows : s->n_step_sums;
    for (int i = 0; i < n && rc == MPSL_OK; i++) {
        rc = store_step_row(s, epoch, -1, &rows[i], err);
    }
    s->n_step_sums = 0;
    return rc;
}

/* Each client's test accuracy and loss (metrics.per_client_test): the evaluated model's
 * per-class figures weighted by the client's training class mix, i.e. what it would score on
 * a test set drawn with the client's label distribution. Classes absent from the test split
 * carry no weight (the rest are renormalised). */
static int store_client_test(mpsl_session *s, int64_t epoch, const eval_result *ev,
                             mpsl_error *err)
{
    int64_t C = s->info.n_classes;
    int64_t *hist = calloc((size_t)C, sizeof *hist);
    if (!hist) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    const int32_t *labels = s->dataset_api->labels(s->dataset, MPSL_SPLIT_TRAIN);
    int rc = MPSL_OK;
    for (int k = 0; k < s->ex->n_clients && rc == MPSL_OK; k++) {
        partition_histogram(&s->part, k, labels, C, hist);
        double w_sum = 0, acc = 0, loss = 0;
        for (int64_t c = 0; c < C; c++) {
            if (ev->class_n[c] > 0 && hist[c] > 0) {
                double w = (double)hist[c];
                w_sum += w;
                acc += w * (double)ev->class_hits[c] / (double)ev->class_n[c];
                loss += w * ev->class_loss[c] / (double)ev->class_n[c];
            }
        }
        if (w_sum > 0) {
            rc = store_client_metric(s->db, s->run_id, epoch, k, "test_acc", acc / w_sum, err);
            if (rc == MPSL_OK) {
                rc = store_client_metric(s->db, s->run_id, epoch, k, "test_loss", loss / w_sum,
                                         err);
            }
        }
    }
    free(hist);
    return rc;
}

/* Take client k's end-of-epoch report into the epoch's counters and rows, and its train_loss,
 * train_acc and samples into fig[0..2] (samples 0 when it recorded not all three). */
static int take_report(mpsl_session *s, int k, const int32_t *buf, int64_t words, int64_t epoch,
                       double fig[3], mpsl_error *err)
{
    role_report rep;
    if ((size_t)words * 4 < sizeof rep) {
        return mpsl_errs(err, MPSL_ERR_INTERNAL, "client %d sent a truncated report", k);
    }
    memcpy(&rep, buf, sizeof rep);
    if (rep.epoch != epoch || rep.n_metrics < 0 || rep.n_steps < 0 || rep.n_sim < 0 ||
        sizeof rep + (size_t)rep.n_metrics * sizeof(role_metric) +
                (size_t)rep.n_steps * sizeof(role_step_row) +
                (size_t)rep.n_sim * sizeof(sim_row) > (size_t)words * 4) {
        return mpsl_errs(err, MPSL_ERR_PLUGIN, "client %d ended epoch %lld while the server "
                         "ended epoch %lld: every role ends every epoch, in order", k,
                         (long long)rep.epoch + 1, (long long)epoch + 1);
    }
    for (int kind = 0; kind < MPSL_MSG_KIND_COUNT; kind++) {
        s->links[k].bytes[0][kind] += rep.sent_bytes[kind];
        s->links[k].messages[0][kind] += rep.sent_messages[kind];
    }
    s->client_flops[2 * k] += rep.flops[0];
    s->client_flops[2 * k + 1] += rep.flops[1];
    s->client_time[2 * k] += rep.compute_s;
    s->client_time[2 * k + 1] += rep.wait_s;
    const role_metric *m = (const role_metric *)((const char *)buf + sizeof rep);
    double loss = 0, acc = 0, samples = 0;
    int has_loss = 0, has_acc = 0, has_samples = 0;
    int rc = MPSL_OK;
    for (int i = 0; i < rep.n_metrics && rc == MPSL_OK; i++) {
        char name[sizeof m[i].name + 1];
        memcpy(name, m[i].name, sizeof m[i].name);
        name[sizeof m[i].name] = '\0';
        rc = store_client_metric(s->db, s->run_id, epoch, k, name, m[i].value, err);
        if (strcmp(name, "train_loss") == 0) {
            loss = m[i].value, has_loss = 1;
        } else if (strcmp(name, "train_acc") == 0) {
            acc = m[i].value, has_acc = 1;
        } else if (strcmp(name, "samples") == 0) {
            samples = m[i].value, has_samples = 1;
        }
    }
    /* A NaN a client recorded (train.on_nonfinite: warn) makes the aggregate NaN: the truth. */
    if (has_samples && samples > 0 && has_loss && has_acc) {
        fig[0] = loss;
        fig[1] = acc;
        fig[2] = samples;
    }
    const char *rows = (const char *)buf + sizeof rep + (size_t)rep.n_metrics * sizeof *m;
    for (int i = 0; i < rep.n_steps && rc == MPSL_OK; i++) {
        role_step_row row;
        memcpy(&row, rows + (size_t)i * sizeof row, sizeof row);
        rc = store_step_row(s, epoch, k, &row, err);
        if (rc == MPSL_OK) {
            rc = step_sum_add(s, &row, err);
        }
    }
    const char *sims = rows + (size_t)rep.n_steps * sizeof(role_step_row);
    for (int i = 0; i < rep.n_sim && rc == MPSL_OK; i++) {
        sim_row row;
        memcpy(&row, sims + (size_t)i * sizeof row, sizeof row);
        if (sim_time_collect(s, k, &row, 1) != MPSL_OK) {
            rc = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        }
    }
    return rc;
}

/* Every client's report for this epoch, in client order: reports[k] (words[k] int32 words),
 * or NULL when clients run no role. Received before the database transaction begins, so the
 * database is never held while the server waits. */
static int gather_reports(mpsl_role *server, int32_t **reports, int64_t *words, mpsl_error *err)
{
    mpsl_session *s = server->s;
    int rc = MPSL_OK;
    for (int k = 0; k < s->ex->n_clients && rc == MPSL_OK; k++) {
        void *data = NULL;
        size_t bytes = 0;
        rc = messages_recv_alloc(server, k, MSG_REPORT, &data, &bytes, err);
        reports[k] = data;
        words[k] = (int64_t)(bytes / 4);
    }
    return rc;
}

static void free_reports(int32_t **reports, int n)
{
    for (int k = 0; reports && k < n; k++) {
        free(reports[k]);
    }
    free(reports);
}

int session_checkpoint_due(const mpsl_session *s, int64_t epoch)
{
    int64_t every = s->ex->checkpoint_every;
    return every > 0 && (epoch + 1) % every == 0 && epoch + 1 < s->ex->train.epochs;
}

/* Every role's state (the clients' arrive as messages) in one file, recorded with the run;
 * then all but the newest train.checkpoint.keep are deleted. */
int session_write_checkpoint(mpsl_role *server, int64_t done, int64_t step, mpsl_error *err)
{
    mpsl_session *s = server->s;
    int K = s->ex->n_clients, clients = s->drv.api->client != NULL;
    ckpt_buf *blobs = calloc((size_t)K + 1, sizeof *blobs);
    char *dir = NULL, *path = NULL, *config = cfg_to_yaml(s->ex->root);
    int rc = blobs && config ? MPSL_OK : mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    if (rc == MPSL_OK) {
        rc = checkpoint_role_save(server, &blobs[0], err);
        checkpoint_pad4(&blobs[0]);
    }
    for (int k = 0; k < K && rc == MPSL_OK; k++) {
        if (clients) {
            void *p;
            size_t n;
            rc = messages_recv_alloc(server, k, MSG_CHECKPOINT, &p, &n, err);
            blobs[k + 1] = (ckpt_buf){p, n, n, 0};
        } else { /* clients without a role: their data cursors are all there is */
            mpsl_role *c = driver_role(&s->drv, k);
            rc = checkpoint_role_save(c, &blobs[k + 1], err);
            checkpoint_pad4(&blobs[k + 1]);
        }
    }
    if (rc == MPSL_OK) {
        /* absolute, so that `mpsl resume` finds it from any working directory */
        char cwd[4096];
        const char *base = s->ex->checkpoint_dir, *db = store_path(s->db);
        const char *rel = base ? base : db;
        const char *here = rel[0] == '/' ? "" : getcwd(cwd, sizeof cwd) ? cwd : ".";
        dir = base ? mpsl_strfmt("%s%s%s/run-%lld", here, *here ? "/" : "", base,
                                 (long long)s->run_id)
                   : mpsl_strfmt("%s%s%s.checkpoints/run-%lld", here, *here ? "/" : "", db,
                                 (long long)s->run_id);
        path = !dir ? NULL
               : step ? mpsl_strfmt("%s/epoch-%lld-step-%lld.ckpt", dir, (long long)done,
                                    (long long)step)
                      : mpsl_strfmt("%s/epoch-%lld.ckpt", dir, (long long)done);
        rc = path ? mpsl_mkdir_p(dir, err) : mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    if (rc == MPSL_OK) {
        rc = checkpoint_write(path, s->run_id, done, step, config, blobs, K + 1, err);
    }
    int64_t bytes = 0;
    for (int k = 0; blobs && k <= K; k++) {
        bytes += (int64_t)blobs[k].len;
        ckpt_buf_free(&blobs[k]);
    }
    char **old = NULL;
    int n_old = 0;
    if (rc == MPSL_OK) {
        rc = store_checkpoint_add(s->db, s->run_id, done, step, path, bytes, err);
    }
    if (rc == MPSL_OK) {
        rc = store_checkpoint_prune(s->db, s->run_id, s->ex->checkpoint_keep, &old, &n_old, err);
    }
    for (int i = 0; i < n_old; i++) {
        if (unlink(old[i]) != 0 && errno != ENOENT) {
            mpsl_log(MPSL_LOG_WARN, "could not delete the old checkpoint %s: %s", old[i],
                     strerror(errno));
        }
        free(old[i]);
    }
    free(old);
    free(blobs);
    free(config);
    free(dir);
    free(path);
    if (rc != MPSL_OK) {
        mpsl_err_prefix(err, "train.checkpoint");
    }
    return rc;
}

/* A training loss this close to its chance value (relative), this many epochs in a row, is
 * a run that is not learning (docs/results-schema.md, loss_at_chance). */
#define CHANCE_TOLERANCE 0.01
#define CHANCE_EPOCHS 3

/* The epoch's training loss of a model whose scores carry no information (all equal):
 * ln(classes) for classification; for retrieval K ln(n) per loss call of n pairs (K caption
 * losses summed), averaged with n as weight as train_loss averages the calls. The calls are
 * those this process saw (session_loss); a rank that saw none (its clients run elsewhere)
 * takes n = train.batch_size. 0: no chance value. */
static double chance_loss(const mpsl_session *s)
{
    int64_t K, E;
    session_retrieval_shape(s, &K, &E);
    if (!K) {
        return s->info.n_classes > 1 ? log((double)s->info.n_classes) : 0.0;
    }
    if (s->chance_n > 0) {
        return s->chance_sum / s->chance_n;
    }
    return (double)K * log((double)s->ex->train.batch_size);
}

/* Counts the epochs in a row whose train_loss sat at its chance value; from the
 * CHANCE_EPOCHS-th on the epoch is flagged (returns 1), and the first flagged one says so
 * on stderr, with what to try. */
static int loss_at_chance(mpsl_session *s, int64_t epoch, double train_loss)
{
    double chance = chance_loss(s);
    s->chance_sum = s->chance_n = 0;
    int near = train_loss >= 0 && chance > 0 &&
               fabs(train_loss - chance) <= CHANCE_TOLERANCE * chance;
    s->chance_streak = near ? s->chance_streak + 1 : 0;
    if (s->chance_streak == CHANCE_EPOCHS) {
        int retrieval = s->info.task == MPSL_TASK_RETRIEVAL;
        mpsl_log(MPSL_LOG_WARN, "[%s] train_loss has stayed within %.0f%% of its chance value "
                 "%.4f (%s) in epochs %lld-%lld (now %.4f): the model is not learning; try a "
                 "lower learning rate%s (these epochs record loss_at_chance = 1)", s->ex->name,
                 100.0 * CHANCE_TOLERANCE, chance,
                 retrieval ? "K captions x ln(batch)" : "ln(classes)",
                 (long long)(epoch + 2 - CHANCE_EPOCHS), (long long)epoch + 1, train_loss,
                 retrieval ? ", or the retrieval head's similarity: cosine" : "");
    }
    return s->chance_streak >= CHANCE_EPOCHS;
}

int session_epoch_end(mpsl_role *server, int64_t epoch, mpsl_model *eval_model,
                      double train_loss, double train_acc, mpsl_error *err)
{
    mpsl_session *s = server->s;
    const mpsl_train_settings *t = &s->ex->train;
    double now = mpsl_now();
    server->compute_s += now - server->resumed_at;
    server->resumed_at = now;
    int K = s->ex->n_clients, clients_report = s->drv.api && s->drv.api->client;
    int32_t **reports = clients_report ? calloc((size_t)K, sizeof *reports) : NULL;
    int64_t *words = clients_report ? calloc((size_t)K, sizeof *words) : NULL;
    int rc = clients_report && (!reports || !words)
                 ? mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory")
                 : MPSL_OK;
    if (rc == MPSL_OK && clients_report) {
        rc = gather_reports(server, reports, words, err);
    }
    /* The epoch's training time ends here; evaluation is timed on its own. */
    double train_seconds = mpsl_now() - s->epoch_started;
    double acc = -1, loss = -1, eval_seconds = 0;
    eval_result ev = {0};
    int evaluate = eval_model && ((epoch + 1) % t->eval_every == 0 || epoch == t->epochs - 1);
    if (rc == MPSL_OK && evaluate) {
        double t0 = mpsl_now();
        rc = session_evaluate(s, eval_model, &ev, err);
        acc = ev.acc;
        loss = ev.loss;
        eval_seconds = mpsl_now() - t0;
        if (profile_on) {
            profile_phase_add(PROF_EVALUATION, eval_seconds);
        }
    }
    /* each client's train_loss, train_acc and samples (0: not recorded) */
    double *fig = clients_report ? calloc((size_t)K * 3, sizeof *fig) : NULL;
    if (rc == MPSL_OK && clients_report && !fig) {
        rc = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    double db_started = mpsl_now();
    if (rc == MPSL_OK) {
        rc = store_begin(s->db, err);
    }
    for (int k = 0; k < K && clients_report && rc == MPSL_OK; k++) {
        rc = take_report(s, k, reports[k], words[k], epoch, fig + 3 * k, err);
    }
    free_reports(reports, K);
    free(words);
    /* The clients' figures averaged with their samples as weights, as sum_k (n_k / N) x_k
     * rather than sum_k n_k x_k / N: with one client the weight is exactly 1, so the run's
     * figure is that client's own, bit for bit (as centralized training computes it). */
    double N = 0, mean_loss = 0, mean_acc = 0;
    for (int k = 0; fig && k < K; k++) {
        N += fig[3 * k + 2];
    }
    for (int k = 0; fig && N > 0 && k < K; k++) {
        double w = fig[3 * k + 2] / N; /* 0 for a client that recorded nothing */
        mean_loss += w * fig[3 * k];
        mean_acc += w * fig[3 * k + 1];
    }
    free(fig);
    if (train_loss < 0 && N > 0) {
        train_loss = mean_loss;
    }
    if (train_acc < 0 && N > 0) {
        train_acc = mean_acc;
    }
    int at_chance = loss_at_chance(s, epoch, train_loss);
    if (rc == MPSL_OK && s->ex->metrics_every_steps > 0) {
        rc = store_run_step_rows(server, epoch, err);
    }
    if (rc == MPSL_OK && ev.class_n) {
        rc = store_client_test(s, epoch, &ev, err);
    }
    eval_result_free(&ev);
    if (rc != MPSL_OK) {
        store_rollback(s->db);
        return rc;
    }
    if (rc == MPSL_OK) { /* before the server's counters are reset: its last interval */
        rc = sim_time_store(server, epoch, err);
    }
    if (rc != MPSL_OK) {
        store_rollback(s->db);
        return rc;
    }
    s->server_flops[0] = server->flops[0];
    s->server_flops[1] = server->flops[1];
    double server_compute = server->compute_s, server_wait = server->wait_s;
    role_reset_counters(server);
    server->resumed_at = mpsl_now(); /* storing and evaluating are not the role's compute */
    int recall = evaluate && ev.has_recall;
    struct {
        const char *name;
        double value;
        int present;
    } rows[] = {
        {"train_loss", train_loss, train_loss >= 0},
        {"train_acc", train_acc, train_acc >= 0},
        {"test_acc", acc, evaluate},
        {"test_loss", loss, evaluate},
        {"epoch_seconds", train_seconds, 1},
        {"eval_seconds", eval_seconds, evaluate},
        {"diagnostics_seconds", s->diag_seconds, s->diag_seconds > 0},
        {"peak_rss_bytes", (double)mpsl_peak_rss_bytes(), 1},
        /* measured time of the server's role: computing, and waiting for messages */
        {"server_compute_seconds", server_compute, 1},
        {"server_wait_seconds", server_wait, 1},
        /* retrieval: test_acc above is the mean of the two Recall@1 */
        {"recall_i2t_1", ev.recall[0][0], recall},
        {"recall_i2t_5", ev.recall[0][1], recall},
        {"recall_i2t_10", ev.recall[0][2], recall},
        {"recall_t2i_1", ev.recall[1][0], recall},
        {"recall_t2i_5", ev.recall[1][1], recall},
        {"recall_t2i_10", ev.recall[1][2], recall},
        /* train_loss at its chance value CHANCE_EPOCHS epochs in a row (only when so) */
        {"loss_at_chance", 1.0, at_chance},
        /* train.precision: bf16, when this process's GEMMs ran in bf16 */
        {"precision_bf16", 1.0, kern_precision_bf16()},
    };
    for (size_t i = 0; i < MPSL_COUNT(rows) && rc == MPSL_OK; i++) {
        if (rows[i].present) {
            rc = store_metric(s->db, s->run_id, epoch, rows[i].name, rows[i].value, err);
        }
    }
    if (rc == MPSL_OK) {
        rc = store_counters(s, epoch, err);
    }
    if (rc == MPSL_OK) {
        rc = audit_store_epoch(s, epoch, err);
    }
    if (rc == MPSL_OK && profile_on) { /* the commit's time counts in the next epoch */
        profile_phase_add(PROF_DATABASE, mpsl_now() - db_started);
        rc = profile_store_epoch(s->db, s->run_id, epoch, &s->profile_total, err);
    }
    double commit_started = mpsl_now();
    if (rc == MPSL_OK) {
        rc = store_commit(s->db, err);
    } else {
        store_rollback(s->db);
    }
    if (profile_on) {
        profile_phase_add(PROF_DATABASE, mpsl_now() - commit_started);
    }
    if (rc != MPSL_OK) {
        return rc;
    }
    reset_counters(s);
    s->diag_seconds = 0;
    server->epochs_ended = epoch + 1;
    s->epochs_done = epoch + 1;
    if (s->progress) {
        s->progress->epoch = s->epochs_done;
        s->progress->step = 0;
    }
    if (session_checkpoint_due(s, epoch)) {
        double ran0 = role_running_seconds(server);
        rc = session_write_checkpoint(server, epoch + 1, 0, err);
        if (profile_on) {
            profile_phase_add(PROF_CHECKPOINT, role_running_seconds(server) - ran0);
        }
        if (rc != MPSL_OK) {
            return rc;
        }
    }
    if (epoch == t->epochs - 1 && eval_model && s->ex->save_weights) {
        char run[24], ep[24];
        snprintf(run, sizeof run, "%lld", (long long)s->run_id);
        snprintf(ep, sizeof ep, "%lld", (long long)s->epochs_done);
        const char *meta[] = {"mpsl_version", MPSL_VERSION, "mpsl_run", run, "experiment",
                              s->ex->name, "epochs", ep, NULL};
        if (getenv("MPSL_TEST_SIGINT_AT_SAVE")) { /* tests: a Ctrl-C while the weights save */
            raise(SIGINT);
        }
        rc = weights_save_model(eval_model, s->ex->save_weights, meta, err);
        if (rc != MPSL_OK) {
            mpsl_err_prefix(err, "output.save_weights");
            return rc;
        }
    }
    double elapsed = mpsl_now() - s->started;
    char el[32], eta[32];
    format_seconds(el, sizeof el, elapsed);
    format_seconds(eta, sizeof eta, elapsed / (double)s->epochs_done *
                                        (double)(t->epochs - s->epochs_done));
    char test[160] = "";
    if (recall) {
        snprintf(test, sizeof test, "  test R@1/5/10 i2t %.3f/%.3f/%.3f t2i %.3f/%.3f/%.3f  "
                 "test_loss %.4f", ev.recall[0][0], ev.recall[0][1], ev.recall[0][2],
                 ev.recall[1][0], ev.recall[1][1], ev.recall[1][2], loss);
    } else if (evaluate) {
        snprintf(test, sizeof test, "  test_acc %.4f  test_loss %.4f", acc, loss);
    }
    if (s->progress_shown) { /* end the \r progress line */
        fputc('\n', stderr);
        s->progress_shown = 0;
    }
    if (!s->quiet) {
        fprintf(stderr, "[%s] epoch %lld/%lld  train_loss %.4f  train_acc %.4f%s  (%s elapsed, "
                "ETA %s)\n", s->ex->name, (long long)epoch + 1, (long long)t->epochs, train_loss,
                train_acc, test, el, eta);
    }
    s->epoch_started = mpsl_now();
    return MPSL_OK;
}

/* ---------------------------------------------------------------- teardown */

void session_close(mpsl_session *s)
{
    audit_close(s);
    driver_free(&s->drv);
    messages_forget_broadcast(s);
    for (int i = 0; s->resume_roles && i <= s->ex->n_clients; i++) {
        checkpoint_role_free(&s->resume_roles[i]);
    }
    free(s->resume_roles);
    s->resume_roles = NULL;
    if (s->resume_file) {
        checkpoint_free(s->resume_file);
        free(s->resume_file);
        s->resume_file = NULL;
    }
    flops_set_target(NULL);
    init_cache_free(s->init_cache);
    s->init_cache = NULL;
    if (s->cursor) {
        for (int k = 0; k <= s->ex->n_clients; k++) {
            free(s->cursor[k].order);
        }
    }
    free(s->cursor);
    free(s->links);
    free(s->client_flops);
    free(s->client_time);
    s->client_time = NULL;
    free(s->step_sums);
    s->step_sums = NULL;
    free(s->sim_rows);
    free(s->sim_client);
    s->sim_rows = NULL;
    s->sim_client = NULL;
    s->n_sim = s->cap_sim = s->cap_sim_client = 0;
    s->n_step_sums = s->cap_step_sums = 0;
    mpsl_free(s->loss_scratch);
    s->loss_scratch = NULL;
    s->loss_cap = 0;
    free(s->all_train);
    s->cursor = NULL;
    s->links = NULL;
    s->client_flops = NULL;
    s->all_train = NULL;
    if (s->part.count) {
        partition_destroy(&s->part);
    }
    if (s->dataset) {
        s->dataset_api->close(s->dataset);
        s->dataset = NULL;
    }
}
