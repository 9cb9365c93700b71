/* checkpoint.c: see checkpoint.h. */
#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "train/model.h"
#include "train/session.h"
#include "train/session_api.h"
#include "train/sim_time.h"

#define CKPT_MAGIC "MPSLCKPT"
#define CKPT_VERSION 2 /* 2: two more message kinds in the counters */
#define ROLE_MAGIC 0x454c4f52u /* "ROLE" */

/* ---------------------------------------------------------------- writing bytes */

void ckpt_buf_free(ckpt_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static void put(ckpt_buf *b, const void *data, size_t n)
{
    if (b->oom) {
        return;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) {
            cap *= 2;
        }
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) {
        memcpy(b->p + b->len, data, n);
    }
    b->len += n;
}

static void put_i64(ckpt_buf *b, int64_t v) { put(b, &v, sizeof v); }

void checkpoint_pad4(ckpt_buf *b)
{
    static const unsigned char zeros[3] = {0};
    put(b, zeros, (4 - b->len % 4) % 4);
}
static void put_i32(ckpt_buf *b, int32_t v) { put(b, &v, sizeof v); }

/* Models and optimizers in creation order (the role's resource list is unordered). */
static int by_seq(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int checkpoint_role_save(mpsl_role *r, ckpt_buf *b, mpsl_error *err)
{
    mpsl_session *s = r->s;
    put_i32(b, (int32_t)ROLE_MAGIC);
    put_i32(b, r->id);
    put(b, &r->rng, sizeof r->rng);
    put(b, &r->shared, sizeof r->shared);
    const client_cursor *c = &s->cursor[r->id == MPSL_SERVER ? s->ex->n_clients : r->id];
    put_i64(b, c->n);
    put_i64(b, c->next);
    put(b, &c->rng, sizeof c->rng);
    put(b, c->order, (size_t)c->n * sizeof *c->order);
    /* the epoch's counters so far (zero at an epoch's end) */
    put(b, r->flops, sizeof r->flops);
    put(b, &r->compute_s, sizeof r->compute_s);
    put(b, &r->wait_s, sizeof r->wait_s);
    put(b, r->sent_bytes, sizeof r->sent_bytes);
    put(b, r->sent_messages, sizeof r->sent_messages);
    put_i32(b, r->n_metrics);
    put(b, r->metrics, (size_t)r->n_metrics * sizeof *r->metrics);
    uint64_t lb = r->id == MPSL_SERVER ? (uint64_t)s->ex->n_clients * sizeof *s->links : 0;
    put(b, &lb, sizeof lb);
    put(b, s->links, (size_t)lb);
    /* sequence numbers of the live models and optimizers, sorted */
    int nm = 0, no = 0;
    int *seq_m = calloc((size_t)r->n_res + 1, 2 * sizeof(int));
    int *seq_o = calloc((size_t)r->n_res + 1, 2 * sizeof(int));
    if (!seq_m || !seq_o) {
        free(seq_m);
        free(seq_o);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory for a checkpoint");
    }
    for (int i = 0; i < r->n_res; i++) {
        if (r->res[i].kind == RES_MODEL) {
            seq_m[2 * nm] = ((mpsl_model *)r->res[i].p)->seq;
            seq_m[2 * nm++ + 1] = i;
        } else if (r->res[i].kind == RES_OPTIM) {
            seq_o[2 * no] = ((mpsl_optim *)r->res[i].p)->seq;
            seq_o[2 * no++ + 1] = i;
        }
    }
    qsort(seq_m, (size_t)nm, 2 * sizeof(int), by_seq);
    qsort(seq_o, (size_t)no, 2 * sizeof(int), by_seq);
    put_i32(b, nm);
    for (int i = 0; i < nm; i++) {
        const mpsl_model *m = r->res[seq_m[2 * i + 1]].p;
        put_i32(b, m->parts);
        put_i64(b, m->n);
        put(b, m->param, (size_t)m->n * sizeof(float));
    }
    put_i32(b, no);
    for (int i = 0; i < no; i++) {
        const mpsl_optim *o = r->res[seq_o[2 * i + 1]].p;
        put_i64(b, o->state.n);
        put_i64(b, o->state.t);
        put_i32(b, o->state.v != NULL);
        put(b, o->state.m, (size_t)o->state.n * sizeof(float));
        if (o->state.v) {
            put(b, o->state.v, (size_t)o->state.n * sizeof(float));
        }
    }
    free(seq_m);
    free(seq_o);
    put_i32(b, r->n_kept);
    for (int i = 0; i < r->n_kept; i++) {
        put(b, r->kept[i].name, sizeof r->kept[i].name);
        put_i64(b, (int64_t)r->kept[i].bytes);
        put(b, r->kept[i].data, r->kept[i].bytes);
    }
    return b->oom ? mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory for a checkpoint") : MPSL_OK;
}

/* ---------------------------------------------------------------- reading bytes */

typedef struct reader {
    const unsigned char *p;
    size_t len, at;
    int bad;
} reader;

static const void *take(reader *rd, size_t n)
{
    if (rd->bad || n > rd->len - rd->at) {
        rd->bad = 1;
        return NULL;
    }
    const void *p = rd->p + rd->at;
    rd->at += n;
    return p;
}

/* Copy the next n bytes into dst (which keeps its value when the blob is too short). */
static void take_into(reader *rd, void *dst, size_t n)
{
    const void *p = take(rd, n);
    if (p) {
        memcpy(dst, p, n);
    }
}

static int64_t take_i64(reader *rd)
{
    int64_t v = 0;
    take_into(rd, &v, sizeof v);
    return v;
}

static int32_t take_i32(reader *rd)
{
    int32_t v = 0;
    take_into(rd, &v, sizeof v);
    return v;
}

void checkpoint_role_free(ckpt_role *r)
{
    free(r->models);
    free(r->optims);
    free(r->kept);
    memset(r, 0, sizeof *r);
}

/* Floats may sit at any byte offset in the file: tensors are copied out with memcpy by the
 * restore, so unaligned pointers are only ever passed to memcpy. */
int checkpoint_role_parse(const unsigned char *p, size_t len, ckpt_role *out, mpsl_error *err)
{
    memset(out, 0, sizeof *out);
    reader rd = {p, len, 0, 0};
    if ((uint32_t)take_i32(&rd) != ROLE_MAGIC) {
        return mpsl_err(err, "a role's state does not start as one");
    }
    out->id = take_i32(&rd);
    take_into(&rd, &out->rng, sizeof out->rng);
    take_into(&rd, &out->shared, sizeof out->shared);
    out->cursor_n = take_i64(&rd);
    out->cursor_next = take_i64(&rd);
    take_into(&rd, &out->cursor_rng, sizeof out->cursor_rng);
    if (out->cursor_n < 0 || out->cursor_n > (int64_t)(len / sizeof(int64_t))) {
        return mpsl_err(err, "a role's data cursor is malformed");
    }
    out->cursor_order = take(&rd, (size_t)out->cursor_n * sizeof(int64_t));
    take_into(&rd, out->flops, sizeof out->flops);
    take_into(&rd, &out->compute_s, sizeof out->compute_s);
    take_into(&rd, &out->wait_s, sizeof out->wait_s);
    take_into(&rd, out->sent_bytes, sizeof out->sent_bytes);
    take_into(&rd, out->sent_messages, sizeof out->sent_messages);
    out->n_metrics = take_i32(&rd);
    if (out->n_metrics < 0 || out->n_metrics > 4096) {
        return mpsl_err(err, "a role's recorded figures are malformed");
    }
    out->metrics = take(&rd, (size_t)out->n_metrics * sizeof(role_metric));
    out->links_bytes = (uint64_t)take_i64(&rd);
    out->links = out->links_bytes <= len ? take(&rd, (size_t)out->links_bytes) : NULL;
    if (rd.bad || !out->links) {
        return mpsl_err(err, "a role's counters are truncated");
    }
    out->n_models = take_i32(&rd);
    if (out->n_models < 0 || out->n_models > 4096) {
        return mpsl_err(err, "a role's model count is malformed");
    }
    out->models = calloc((size_t)out->n_models + 1, sizeof *out->models);
    for (int i = 0; out->models && i < out->n_models && !rd.bad; i++) {
        out->models[i].parts = take_i32(&rd);
        out->models[i].n = take_i64(&rd);
        if (out->models[i].n < 0 || (uint64_t)out->models[i].n > len / sizeof(float)) {
            rd.bad = 1;
            break;
        }
        out->models[i].a = take(&rd, (size_t)out->models[i].n * sizeof(float));
    }
    out->n_optims = take_i32(&rd);
    if (!out->models || out->n_optims < 0 || out->n_optims > 4096) {
        checkpoint_role_free(out);
        return mpsl_err(err, "a role's optimizer count is malformed");
    }
    out->optims = calloc((size_t)out->n_optims + 1, sizeof *out->optims);
    for (int i = 0; out->optims && i < out->n_optims && !rd.bad; i++) {
        ckpt_tensor *o = &out->optims[i];
        o->n = take_i64(&rd);
        o->t = take_i64(&rd);
        int has_v = take_i32(&rd);
        if (o->n < 0 || (uint64_t)o->n > len / sizeof(float)) {
            rd.bad = 1;
            break;
        }
        o->a = take(&rd, (size_t)o->n * sizeof(float));
        o->b = has_v ? take(&rd, (size_t)o->n * sizeof(float)) : NULL;
    }
    out->n_kept = take_i32(&rd);
    if (!out->optims || out->n_kept < 0 || out->n_kept > 4096) {
        checkpoint_role_free(out);
        return mpsl_err(err, "a role's kept state is malformed");
    }
    out->kept = calloc((size_t)out->n_kept + 1, sizeof *out->kept);
    for (int i = 0; out->kept && i < out->n_kept && !rd.bad; i++) {
        const char *name = take(&rd, 48);
        out->kept[i].name = name && memchr(name, '\0', 48) ? name : NULL;
        out->kept[i].bytes = (uint64_t)take_i64(&rd);
        if (!out->kept[i].name || out->kept[i].bytes > len) {
            rd.bad = 1;
            break;
        }
        out->kept[i].data = take(&rd, (size_t)out->kept[i].bytes);
    }
    if (!out->kept || rd.bad || len - rd.at >= 4) { /* at most the padding is left */
        checkpoint_role_free(out);
        return mpsl_err(err, "a role's state is truncated or malformed");
    }
    return MPSL_OK;
}

int checkpoint_role_restore(mpsl_role *r, ckpt_role *state, mpsl_error *err)
{
    mpsl_session *s = r->s;
    if (state->id != r->id) {
        return mpsl_err(err, "the state of role %d is stored where role %d's belongs",
                        state->id, r->id);
    }
    client_cursor *c = &s->cursor[r->id == MPSL_SERVER ? s->ex->n_clients : r->id];
    if (state->cursor_n != c->n || state->cursor_next < 0 || state->cursor_next > c->n) {
        return mpsl_err(err, "the saved data cursor of %s covers %lld samples, its partition "
                        "now has %lld (was the dataset or its partition changed?)",
                        r->id == MPSL_SERVER ? "the server" : "a client",
                        (long long)state->cursor_n, (long long)c->n);
    }
    if (state->links_bytes &&
        state->links_bytes != (uint64_t)s->ex->n_clients * sizeof *s->links) {
        return mpsl_err(err, "the saved link counters are for another number of clients");
    }
    r->rng = state->rng;
    r->shared = state->shared;
    memcpy(r->flops, state->flops, sizeof r->flops);
    r->compute_s = state->compute_s;
    r->wait_s = state->wait_s;
    memcpy(r->sent_bytes, state->sent_bytes, sizeof r->sent_bytes);
    memcpy(r->sent_messages, state->sent_messages, sizeof r->sent_messages);
    sim_time_mark(r); /* network: the work before the checkpoint is in no simulated interval */
    if (state->n_metrics > 0) {
        role_metric *m = realloc(r->metrics, (size_t)state->n_metrics * sizeof *m);
        if (!m) {
            return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        }
        memcpy(m, state->metrics, (size_t)state->n_metrics * sizeof *m);
        r->metrics = m;
        r->n_metrics = r->cap_metrics = state->n_metrics;
    }
    if (state->links_bytes) {
        memcpy(s->links, state->links, (size_t)state->links_bytes);
    }
    memcpy(c->order, state->cursor_order, (size_t)c->n * sizeof *c->order);
    c->next = state->cursor_next;
    c->rng = state->cursor_rng;
    r->restore = state;
    return MPSL_OK;
}

/* ---------------------------------------------------------------- the file */

/* Header: magic[8], u32 version, u32 n_roles, i64 run_id, i64 epoch, i64 step, u64 config bytes
 * (with its NUL), then the config, then per role u64 bytes + blob; last a u32 CRC32 of
 * everything before it. */
int checkpoint_write(const char *path, int64_t run_id, int64_t epoch, int64_t step,
                     const char *config, const ckpt_buf *roles, int n_roles, mpsl_error *err)
{
    ckpt_buf b = {0};
    put(&b, CKPT_MAGIC, 8);
    uint32_t version = CKPT_VERSION, n = (uint32_t)n_roles;
    put(&b, &version, 4);
    put(&b, &n, 4);
    put_i64(&b, run_id);
    put_i64(&b, epoch);
    put_i64(&b, step);
    uint64_t cl = strlen(config) + 1;
    put(&b, &cl, 8);
    put(&b, config, cl);
    for (int i = 0; i < n_roles; i++) {
        uint64_t l = roles[i].len;
        put(&b, &l, 8);
        put(&b, roles[i].p, roles[i].len);
    }
    uint32_t crc = (uint32_t)crc32(0L, b.p, (uInt)0);
    for (size_t at = 0; at < b.len;) { /* crc32 takes at most 4 GiB at a time */
        size_t chunk = b.len - at < (1u << 30) ? b.len - at : (1u << 30);
        crc = (uint32_t)crc32(crc, b.p + at, (uInt)chunk);
        at += chunk;
    }
    put(&b, &crc, 4);
    if (b.oom) {
        ckpt_buf_free(&b);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory writing checkpoint %s", path);
    }
    char *tmp = mpsl_strfmt("%s.tmp.%ld", path, (long)getpid());
    int fd = tmp ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;
    int rc = MPSL_OK;
    if (fd < 0) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "cannot write checkpoint %s: %s", tmp ? tmp : path,
                       strerror(errno));
    }
    for (size_t at = 0; rc == MPSL_OK && at < b.len;) {
        ssize_t w = write(fd, b.p + at, b.len - at);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            rc = mpsl_errs(err, MPSL_ERR_IO, "cannot write checkpoint %s: %s", tmp,
                           w < 0 ? strerror(errno) : "no space written");
            break;
        }
        at += (size_t)w;
    }
    if (rc == MPSL_OK && fsync(fd) != 0) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "cannot sync checkpoint %s: %s", tmp, strerror(errno));
    }
    if (fd >= 0 && close(fd) != 0 && rc == MPSL_OK) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "cannot write checkpoint %s: %s", tmp, strerror(errno));
    }
    if (rc == MPSL_OK && rename(tmp, path) != 0) {
        rc = mpsl_errs(err, MPSL_ERR_IO, "cannot rename %s to %s: %s", tmp, path,
                       strerror(errno));
    }
    if (rc == MPSL_OK) { /* the rename itself must reach the disk */
        char *dir = mpsl_strdup(path);
        int dfd = dir ? open(dirname(dir), O_RDONLY | O_DIRECTORY) : -1;
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dir);
    } else if (tmp) {
        unlink(tmp);
    }
    free(tmp);
    ckpt_buf_free(&b);
    return rc;
}

void checkpoint_free(ckpt_file *f)
{
    free(f->data);
    free(f->role);
    free(f->role_len);
    memset(f, 0, sizeof *f);
}

int checkpoint_read(const char *path, ckpt_file *f, mpsl_error *err)
{
    memset(f, 0, sizeof *f);
    FILE *in = fopen(path, "rb");
    if (!in) {
        return mpsl_errs(err, MPSL_ERR_IO, "cannot open checkpoint %s: %s", path,
                         strerror(errno));
    }
    struct stat st;
    if (fstat(fileno(in), &st) != 0 || st.st_size < 52) {
        fclose(in);
        return mpsl_errs(err, MPSL_ERR_INVALID, "checkpoint %s is truncated (%lld bytes)", path,
                         (long long)st.st_size);
    }
    f->len = (size_t)st.st_size;
    f->data = malloc(f->len);
    size_t got = f->data ? fread(f->data, 1, f->len, in) : 0;
    fclose(in);
    if (got != f->len) {
        checkpoint_free(f);
        return mpsl_errs(err, MPSL_ERR_IO, "cannot read checkpoint %s", path);
    }
    if (memcmp(f->data, CKPT_MAGIC, 8) != 0) {
        checkpoint_free(f);
        return mpsl_err(err, "%s is not an mpsl checkpoint", path);
    }
    uint32_t crc_file, crc = (uint32_t)crc32(0L, NULL, 0);
    memcpy(&crc_file, f->data + f->len - 4, 4);
    for (size_t at = 0; at < f->len - 4;) {
        size_t chunk = f->len - 4 - at < (1u << 30) ? f->len - 4 - at : (1u << 30);
        crc = (uint32_t)crc32(crc, f->data + at, (uInt)chunk);
        at += chunk;
    }
    if (crc != crc_file) {
        checkpoint_free(f);
        return mpsl_err(err, "checkpoint %s is corrupt or truncated (its CRC32 does not match)",
                        path);
    }
    reader rd = {f->data, f->len - 4, 8, 0};
    uint32_t version = (uint32_t)take_i32(&rd);
    uint32_t n = (uint32_t)take_i32(&rd);
    f->run_id = take_i64(&rd);
    f->epoch = take_i64(&rd);
    f->step = take_i64(&rd);
    uint64_t cl = (uint64_t)take_i64(&rd);
    f->config = cl <= f->len ? take(&rd, (size_t)cl) : NULL;
    if (version != CKPT_VERSION || n < 1 || n > 1000001 || !f->config || f->step < 0 ||
        f->config[cl - 1] != '\0') {
        checkpoint_free(f);
        return mpsl_err(err, "checkpoint %s has an unknown version (%u) or a malformed header",
                        path, version);
    }
    f->n_roles = (int)n;
    f->role = calloc(n, sizeof *f->role);
    f->role_len = calloc(n, sizeof *f->role_len);
    for (uint32_t i = 0; f->role && f->role_len && i < n && !rd.bad; i++) {
        uint64_t l = (uint64_t)take_i64(&rd);
        f->role_len[i] = (size_t)l;
        f->role[i] = l <= f->len ? take(&rd, (size_t)l) : NULL;
        rd.bad |= !f->role[i];
    }
    if (!f->role || !f->role_len || rd.bad || rd.at != rd.len) {
        checkpoint_free(f);
        return mpsl_err(err, "checkpoint %s is malformed", path);
    }
    return MPSL_OK;
}
