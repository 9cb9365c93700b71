/* test_text.c: the text tokenizer, loaded as the host loads it. Token ids exact for the bytes
 * vocabulary and for CLIP's BPE on the fixture merges file (read back through a table whose
 * row v is (v, 1), so pads show as (0, 0)); forward against the embedding written out here,
 * with and without CLS, positions, pool_to_one and several sequences per sample; gradients
 * of the table (repeated ids accumulate, pads send none), CLS and positions by central finite
 * differences; refusals (no or bad bpe_path, corrupt gzip, max_tokens < 2, wrong inputs);
 * 50 instances on one CLIP-sized merges file give the same ids and share its tables (resident
 * memory grows by their parameters and far less than one table each).
 *
 * Usage: test_text text.so fixtures/bpe_tiny.txt */
#include "tok_files.h"
#include "tok_harness.h"

static const char *g_plugin;
static char g_bpe[128];      // the fixture, gzipped
static char g_yaml_bpe[256]; // "vocab: clip_bpe\nbpe_path: ...\n"

typedef struct {
    int n;                   // real tokens (start and end included)
    int32_t ids[16];
} seq_ids;

/* The bytes vocabulary, written out: start, byte + 3 ..., end, cut to Q keeping the end. */
static seq_ids bytes_ids(const char *text, int64_t L, int64_t Q)
{
    seq_ids s = {0, {0}};
    s.ids[s.n++] = 1;
    for (int64_t i = 0; i < L && text[i] && s.n < Q - 1; i++) {
        s.ids[s.n++] = (unsigned char)text[i] + 3;
    }
    s.ids[s.n++] = 2;
    return s;
}

/* Input (nseq, L) int32 from nseq strings, zero-padded (no terminator when a string fills L). */
static int32_t *make_input(const char *const *texts, int64_t nseq, int64_t L)
{
    int32_t *x = calloc((size_t)(nseq * L), sizeof(int32_t));
    for (int64_t q = 0; q < nseq; q++) {
        for (int64_t i = 0; i < L && texts[q][i]; i++) {
            x[q * L + i] = (unsigned char)texts[q][i];
        }
    }
    return x;
}

/* The expected output (B,T,D) from token ids per sequence and the module's parameters. */
static void text_expected(float *want, const module *m, const seq_ids *seqs, int64_t B,
                          int64_t S, int64_t Q, int64_t D, int cls, int pos, int pool)
{
    int64_t Tq = pool ? 1 : Q, T = cls + S * Tq;
    const float *tab = m->param + off_of(m, "token_embedding.weight");
    memset(want, 0, (size_t)(B * T * D) * sizeof(float));
    for (int64_t b = 0; b < B; b++) {
        float *ob = want + b * T * D;
        if (cls) {
            memcpy(ob, m->param + off_of(m, "cls_token"), (size_t)D * sizeof(float));
        }
        for (int64_t q = 0; q < S; q++) {
            const seq_ids *s = &seqs[b * S + q];
            for (int t = 0; t < s->n; t++) {
                for (int64_t d = 0; d < D; d++) {
                    float v = tab[s->ids[t] * D + d];
                    if (pool) {
                        ob[(cls + q) * D + d] += v / (float)s->n;
                    } else {
                        ob[(cls + q * Q + t) * D + d] = v;
                    }
                }
            }
        }
        if (pos) {
            for (int64_t i = 0; i < T * D; i++) {
                ob[i] += m->param[off_of(m, "pos_embed") + i];
            }
        }
    }
}

/* Token ids through the module: D = 2, no CLS, no positions, table row v = (v, 1). */
static void check_module_ids(const char *yaml, int64_t L, const char *const *texts,
                             int64_t B, const seq_ids *want, int64_t Q)
{
    mpsl_error err = {{0}};
    module m;
    int64_t in[1] = {L};
    CHECK(module_open(&m, g_plugin, yaml, MPSL_I32, 1, in, &err) == MPSL_OK);
    if (!m.state) {
        fprintf(stderr, "%s\n", err.msg);
        module_close(&m);
        return;
    }
    int64_t T = 0, D = 0;
    out_td(&m, &T, &D, NULL);
    CHECK(T == Q && D == 2);
    const decl *tab = find_decl(&m, "token_embedding.weight");
    for (int64_t v = 0; tab && v < tab->shape[0]; v++) {
        m.param[tab->off + 2 * v] = (float)v;
        m.param[tab->off + 2 * v + 1] = 1.0f;
    }
    int32_t *x = make_input(texts, B, L);
    float *o = fnew(B * Q * 2);
    mpsl_tensor inp = {.data = x, .dtype = MPSL_I32, .ndim = 2, .shape = {B, L}};
    mpsl_tensor out = {.data = o, .dtype = MPSL_F32, .ndim = 3, .shape = {B, Q, 2}};
    CHECK(m.api->forward(m.state, &m.w, &inp, &out, &err) == MPSL_OK);
    for (int64_t b = 0; b < B; b++) {
        int same = 1;
        for (int64_t t = 0; t < Q; t++) {
            const float *tok = o + (b * Q + t) * 2;
            if (t < want[b].n) {
                same &= tok[1] == 1.0f && tok[0] == (float)want[b].ids[t];
            } else {
                same &= tok[0] == 0.0f && tok[1] == 0.0f;   // a masked pad
            }
        }
        CHECK(same);
        if (!same) {
            fprintf(stderr, "  sample %lld \"%s\": got", (long long)b, texts[b]);
            for (int64_t t = 0; t < Q; t++) {
                const float *tok = o + (b * Q + t) * 2;
                fprintf(stderr, tok[1] == 1.0f ? " %g" : " pad", (double)tok[0]);
            }
            fprintf(stderr, "; expected");
            for (int t = 0; t < want[b].n; t++) {
                fprintf(stderr, " %d", want[b].ids[t]);
            }
            fprintf(stderr, "\n");
        }
    }
    free(x), free(o);
    module_close(&m);
}

static void test_defaults(void)
{
    mpsl_error err = {{0}};
    module m;
    int64_t in[1] = {32};
    CHECK(module_open(&m, g_plugin, "", MPSL_I32, 1, in, &err) == MPSL_OK);
    if (m.state) {
        int64_t T = 0, D = 0;
        int cls = -1;
        out_td(&m, &T, &D, &cls);
        CHECK(T == 78 && D == 768 && cls == 1);
        CHECK(m.n_decl == 3);
        const decl *t = find_decl(&m, "token_embedding.weight");
        const decl *c = find_decl(&m, "cls_token");
        const decl *p = find_decl(&m, "pos_embed");
        CHECK(t && t->ndim == 2 && t->shape[0] == 259 && t->shape[1] == 768 && t->trainable);
        CHECK(c && c->ndim == 3 && c->shape[0] == 1 && c->shape[1] == 1 && c->shape[2] == 768);
        CHECK(p && p->ndim == 3 && p->shape[0] == 1 && p->shape[1] == 78 && p->shape[2] == 768);
        CHECK(m.n == 259 * 768 + 768 + 78 * 768);
    } else {
        fprintf(stderr, "%s\n", err.msg);
    }
    module_close(&m);

    // CLIP's vocabulary size comes from the merges file; pool_to_one gives one token
    char yaml[512];
    snprintf(yaml, sizeof yaml, "%spool_to_one: true\ncls: false\ndim: 4\n", g_yaml_bpe);
    int64_t five[2] = {5, 40};   // 5 captions of 40 bytes per sample
    CHECK(module_open(&m, g_plugin, yaml, MPSL_I32, 2, five, &err) == MPSL_OK);
    if (m.state) {
        int64_t T = 0, D = 0;
        int cls = -1;
        out_td(&m, &T, &D, &cls);
        CHECK(T == 5 && D == 4 && cls == 0);
        const decl *t = find_decl(&m, "token_embedding.weight");
        CHECK(t && t->shape[0] == 534 && t->shape[1] == 4);
        const decl *p = find_decl(&m, "pos_embed");
        CHECK(p && p->shape[1] == 5);
        CHECK(find_decl(&m, "cls_token") == NULL);
    } else {
        fprintf(stderr, "%s\n", err.msg);
    }
    module_close(&m);
}

static void test_ids(void)
{
    // bytes: start 1, byte + 3, end 2, pads masked; truncation keeps the end token
    const char *texts[] = {"hi", "", "hello world!", "abcdef", "\xc3\xa9!", "ab\0cd",
                           "ABCDEFGHIJKL"};
    int64_t B = MPSL_COUNT(texts), L = 12, Q = 8;
    seq_ids want[MPSL_COUNT(texts)];
    for (int64_t b = 0; b < B; b++) {
        want[b] = bytes_ids(texts[b], L, Q);
    }
    CHECK(want[0].n == 4 && want[0].ids[1] == 'h' + 3 && want[0].ids[3] == 2);
    CHECK(want[2].n == 8 && want[2].ids[6] == ' ' + 3 && want[2].ids[7] == 2);
    CHECK(want[4].ids[1] == 0xc3 + 3 && want[4].ids[2] == 0xa9 + 3);
    check_module_ids("max_tokens: 8\ndim: 2\ncls: false\npos_embed: false\n", L, texts, B, want,
                     Q);
    // the smallest max_tokens: start and end only
    seq_ids two[2] = {{2, {1, 2}}, {2, {1, 2}}};
    const char *two_texts[] = {"abc", ""};
    check_module_ids("max_tokens: 2\ndim: 2\ncls: false\npos_embed: false\n", 4, two_texts, 2,
                     two, 2);

    // CLIP's BPE on the fixture (ids worked out in test_clip_bpe.c): start 532, end 533
    const char *clip_texts[] = {"The cat's", "", "the cat the cat the", "CAF\xc3\x89 2024!!"};
    const seq_ids clip_want[] = {
        {5, {532, 513, 515, 517, 533}},
        {2, {532, 533}},
        {6, {532, 513, 515, 513, 515, 533}},   // 4 of 5 pieces fit
        {6, {532, 514, 69, 525, 273, 533}},
    };
    char yaml[512];
    snprintf(yaml, sizeof yaml, "%smax_tokens: 6\ndim: 2\ncls: false\npos_embed: false\n",
             g_yaml_bpe);
    check_module_ids(yaml, 24, clip_texts, 4, clip_want, 6);
}

static void test_gradients(void)
{
    const char *bytes3[] = {"aaa", "hello world", ""};
    const char *bytes_caps[] = {"a dog", "dogs", "", "a cat sat", "aa", "x", "yy", "", "zzz",
                                "the end"};
    const char *clip2[] = {"the cat the cat", "a cat's!!"};
    const char *clip_caps[] = {"the cat", "onion", "", "llll and"};
    const char *bytes_pool[] = {"abc", "abcdef"};
    const seq_ids clip2_ids[] = {{6, {532, 513, 515, 513, 515, 533}},
                                 {7, {532, 320, 515, 517, 0, 256, 533}}};
    const seq_ids clip_caps_ids[] = {{4, {532, 513, 515, 533}}, {5, {532, 516, 72, 526, 533}},
                                     {2, {532, 533}}, {5, {532, 518, 75, 331, 533}}};
    const struct {
        const char *yaml;
        int clip;
        int64_t S, L, B, Q, D;     // S = 0: per-sample input (L), else (S, L)
        int cls, pos, pool;
        const char *const *texts;
        const seq_ids *ids;        // clip: the expected ids; bytes: computed here
    } cases[] = {
        {"max_tokens: 7\ndim: 3\n", 0, 0, 10, 3, 7, 3, 1, 1, 0, bytes3, NULL},
        {"max_tokens: 6\ndim: 3\ncls: false\npool_to_one: true\n", 0, 5, 8, 2, 6, 3, 0, 1, 1,
         bytes_caps, NULL},
        {"max_tokens: 8\ndim: 2\npos_embed: false\n", 1, 0, 24, 2, 8, 2, 1, 0, 0, clip2,
         clip2_ids},
        {"max_tokens: 5\ndim: 3\npool_to_one: true\n", 1, 2, 16, 2, 5, 3, 1, 1, 1, clip_caps,
         clip_caps_ids},
        {"max_tokens: 4\ndim: 2\ncls: false\npos_embed: false\npool_to_one: true\n", 0, 0, 6, 2,
         4, 2, 0, 0, 1, bytes_pool, NULL},
    };
    for (size_t k = 0; k < MPSL_COUNT(cases); k++) {
        mpsl_error err = {{0}};
        module m;
        char yaml[512];
        snprintf(yaml, sizeof yaml, "%s%s", cases[k].clip ? g_yaml_bpe : "", cases[k].yaml);
        int64_t S = cases[k].S ? cases[k].S : 1, L = cases[k].L, B = cases[k].B;
        int64_t Q = cases[k].Q, D = cases[k].D;
        int64_t in[2] = {S, L};
        int in_ndim = cases[k].S ? 2 : 1;
        CHECK(module_open(&m, g_plugin, yaml, MPSL_I32, in_ndim, cases[k].S ? in : in + 1,
                          &err) == MPSL_OK);
        if (!m.state) {
            fprintf(stderr, "case %zu: %s\n", k, err.msg);
            module_close(&m);
            continue;
        }
        int64_t T = 0, Dm = 0;
        int cls = -1;
        out_td(&m, &T, &Dm, &cls);
        int64_t Tq = cases[k].pool ? 1 : Q;
        CHECK(T == cases[k].cls + S * Tq && Dm == D && cls == cases[k].cls);
        CHECK(m.n_decl == 1 + cases[k].cls + cases[k].pos);

        seq_ids seqs[16];
        for (int64_t q = 0; q < B * S; q++) {
            seqs[q] = cases[k].clip ? cases[k].ids[q] : bytes_ids(cases[k].texts[q], L, Q);
        }
        int32_t *x = make_input(cases[k].texts, B * S, L);
        mpsl_tensor inp = {.data = x, .dtype = MPSL_I32, .ndim = in_ndim + 1,
                           .shape = {B, cases[k].S ? S : L, L}};
        // a batch of one first: the buffers must grow for the next one
        mpsl_tensor one = inp;
        one.shape[0] = 1;
        fd_ctx c1;
        CHECK(fd_setup(&c1, &m, &one) == MPSL_OK);
        fd_free(&c1);

        fd_ctx fc;
        CHECK(fd_setup(&fc, &m, &inp) == MPSL_OK);
        float *want = fnew(B * T * D);
        text_expected(want, &m, seqs, B, S, Q, D, cases[k].cls, cases[k].pos, cases[k].pool);
        module_loss(&fc);
        CHECK_ARRAYS("text forward", fc.out, want, B * T * D, 1e-5, 1e-5);
        check_param_grads(&fc, 1e-2f, 100000);

        // rows of ids that never occur (the bytes pad row 0 included) get no gradient
        const decl *tab = find_decl(&m, "token_embedding.weight");
        int64_t V = tab->shape[0];
        char *used = calloc((size_t)V, 1);
        for (int64_t q = 0; q < B * S; q++) {
            for (int t = 0; t < seqs[q].n; t++) {
                used[seqs[q].ids[t]] = 1;
            }
        }
        int unused_zero = 1;
        for (int64_t v = 0; v < V; v++) {
            for (int64_t d = 0; d < D && !used[v]; d++) {
                unused_zero &= m.grad[tab->off + v * D + d] == 0.0f;
            }
        }
        CHECK(unused_zero);
        if (!cases[k].clip) {
            CHECK(!used[0]);
        }
        free(used);

        // ids need no gradient: a din is refused
        int32_t *din = calloc((size_t)(B * S * L), sizeof(int32_t));
        check_din_refused(&fc, din, "text cannot produce input gradients");
        free(din);

        // a frozen table (host's mask) gets no gradient; CLS and positions still do
        uint8_t *mask = malloc((size_t)m.n);
        memset(mask, 1, (size_t)m.n);
        memset(mask + tab->off, 0, (size_t)tab->count);
        m.w.trainable = mask;
        float *keep = fnew(m.n);
        memcpy(keep, m.grad, (size_t)m.n * sizeof(float));
        memset(m.grad, 0, (size_t)m.n * sizeof(float));
        mpsl_tensor dout = fc.out_t;
        dout.data = fc.G;
        module_loss(&fc);
        CHECK(m.api->backward(m.state, &m.w, &dout, NULL, &err) == MPSL_OK);
        int frozen_zero = 1;
        for (int64_t i = 0; i < tab->count; i++) {
            frozen_zero &= m.grad[tab->off + i] == 0.0f;
        }
        CHECK(frozen_zero);
        CHECK_ARRAYS("CLS and positions beside a frozen table", m.grad + tab->count,
                     keep + tab->count, m.n - tab->count, 1e-6, 1e-6);
        m.w.trainable = NULL;
        free(mask), free(keep);

        free(x), free(want);
        fd_free(&fc);
        module_close(&m);
    }
}

/* Resident memory of this process in bytes (/proc/self/statm's second field), or -1. */
static int64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long long size = 0, resident = -1;
    if (f) {
        if (fscanf(f, "%lld %lld", &size, &resident) != 2) {
            resident = -1;
        }
        fclose(f);
    }
    return resident < 0 ? -1 : resident * (int64_t)sysconf(_SC_PAGESIZE);
}

/* Every client of a run has its own text tokenizer: 50 of them on one CLIP-sized merges file
 * must tokenize alike and hold its 3.3 MB of tables once. Each instance's table row v is
 * (float)v (dim 1, no CLS, no positions), so its output is its token ids. */
static void test_shared_instances(void)
{
    enum { N = 50 };
    const double k_table = 3.0e6;   // at least what CLIP-sized tables hold (test_clip_bpe_cache)
    char big[128], yaml[512];
    tmp_path(big, sizeof big, "clip_sized.txt.gz");
    write_clip_sized(big);
    snprintf(yaml, sizeof yaml, "vocab: clip_bpe\nbpe_path: %s\nmax_tokens: 12\ndim: 1\n"
             "cls: false\npos_embed: false\n", big);
    const char *texts[] = {"abcab cabca", "", "the lazy dog!", "zzzzzzzz"};
    int64_t B = MPSL_COUNT(texts), L = 24, Q = 12;
    int32_t *x = make_input(texts, B, L);
    static module m[N];
    float out[N][4 * 12];
    mpsl_error err = {{0}};
    int64_t in[1] = {L};
    int opened = 1, same = 1;
    double param_bytes = 0;         // what the instances' own parameters and gradients take
    int64_t r0 = -1;
    for (int i = 0; i < N && opened; i++) {
        opened = module_open(&m[i], g_plugin, yaml, MPSL_I32, 1, in, &err) == MPSL_OK;
        if (!opened) {
            fprintf(stderr, "%s\n", err.msg);
            break;
        }
        int64_t V = find_decl(&m[i], "token_embedding.weight")->shape[0];
        for (int64_t v = 0; v < V; v++) {
            m[i].param[off_of(&m[i], "token_embedding.weight") + v] = (float)v;
        }
        mpsl_tensor inp = {.data = x, .dtype = MPSL_I32, .ndim = 2, .shape = {B, L}};
        mpsl_tensor o = {.data = out[i], .dtype = MPSL_F32, .ndim = 3, .shape = {B, Q, 1}};
        opened = m[i].api->forward(m[i].state, &m[i].w, &inp, &o, &err) == MPSL_OK;
        same &= memcmp(out[i], out[0], sizeof out[0]) == 0;
        if (i == 0) {
            r0 = rss_bytes();       // the tables are loaded now
            CHECK(V == 49408);      // CLIP's vocabulary size
        } else {
            param_bytes += 2.0 * (double)m[i].n * sizeof(float);
        }
    }
    int64_t r1 = rss_bytes();
    CHECK(opened);
    CHECK(same);
    // start, merged ids (above the 512 byte symbols), end, pads
    CHECK(out[0][0] == 49406.0f && out[0][1] >= 512.0f && out[0][Q] == 49406.0f &&
          out[0][Q + 1] == 49407.0f && out[0][Q + 2] == 0.0f);
    CHECK(r0 > 0 && r1 > 0);
    double growth = (double)(r1 - r0), limit = param_bytes + 10 * k_table;
    CHECK(growth < limit);          // private tables would add (N - 1) x 3.3 MB = 162 MB
    fprintf(stderr, "%d text instances on one CLIP-sized merges file: the last %d added "
            "%.1f MB resident (their parameters and gradients %.1f MB, limit %.1f MB)\n", N,
            N - 1, growth / 1e6, param_bytes / 1e6, limit / 1e6);
    for (int i = 0; i < N; i++) {
        module_close(&m[i]);
    }
    free(x);
}

static void test_refusals(const char *fixture)
{
    mpsl_error err = {{0}};
    module m;
    int64_t in[1] = {16};
    char yaml[512], path[128];

    // clip_bpe without bpe_path
    CHECK(module_open(&m, g_plugin, "vocab: clip_bpe\n", MPSL_I32, 1, in, &err) ==
          MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "test.yaml:3:5");
    CHECK_CONTAINS(err.msg, "bpe_path");
    CHECK_CONTAINS(err.msg, "bpe_simple_vocab_16e6.txt.gz");
    module_close(&m);
    // a missing file: the path and a hint
    tmp_path(path, sizeof path, "nowhere.txt.gz");
    snprintf(yaml, sizeof yaml, "vocab: clip_bpe\nbpe_path: %s\n", path);
    CHECK(module_open(&m, g_plugin, yaml, MPSL_I32, 1, in, &err) == MPSL_ERR_IO);
    CHECK_CONTAINS(err.msg, "test.yaml:3:5");
    CHECK_CONTAINS(err.msg, path);
    CHECK_CONTAINS(err.msg, "bpe_simple_vocab_16e6.txt.gz");
    module_close(&m);
    // the uncompressed fixture, and a corrupt gzip
    snprintf(yaml, sizeof yaml, "vocab: clip_bpe\nbpe_path: %s\n", fixture);
    CHECK(module_open(&m, g_plugin, yaml, MPSL_I32, 1, in, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "not a gzip file");
    module_close(&m);
    size_t gn = 0;
    char *gz = read_all(g_bpe, &gn);
    gz[gn - 5] ^= 0x33;   // the stored length
    tmp_path(path, sizeof path, "corrupt.txt.gz");
    write_plain(path, gz, gn);
    free(gz);
    snprintf(yaml, sizeof yaml, "vocab: clip_bpe\nbpe_path: %s\n", path);
    CHECK(module_open(&m, g_plugin, yaml, MPSL_I32, 1, in, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "corrupt gzip file");
    CHECK_CONTAINS(err.msg, path);
    module_close(&m);
    // max_tokens < 2 leaves no room for start and end: the parameter table refuses it
    CHECK(module_open(&m, g_plugin, "max_tokens: 1\n", MPSL_I32, 1, in, &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "max_tokens");
    module_close(&m);
    CHECK(module_open(&m, g_plugin, "vocab: words\n", MPSL_I32, 1, in, &err) != MPSL_OK);
    module_close(&m);
    // inputs: float, three dimensions, empty
    CHECK(module_open(&m, g_plugin, "", MPSL_F32, 1, in, &err) == MPSL_ERR_INVALID);
    CHECK_CONTAINS(err.msg, "test.yaml:3:5");
    CHECK_CONTAINS(err.msg, "int32");
    module_close(&m);
    int64_t three[3] = {2, 3, 4};
    CHECK(module_open(&m, g_plugin, "", MPSL_I32, 3, three, &err) == MPSL_ERR_INVALID);
    module_close(&m);
    int64_t zero[1] = {0};
    CHECK(module_open(&m, g_plugin, "", MPSL_I32, 1, zero, &err) == MPSL_ERR_INVALID);
    module_close(&m);

    // forward: a value that is no byte, and an input of another shape than create() was given
    CHECK(module_open(&m, g_plugin, "dim: 2\nmax_tokens: 4\n", MPSL_I32, 1, in, &err) ==
          MPSL_OK);
    if (m.state) {
        int32_t x[2 * 16] = {'a', 'b', 300};
        float o[2 * 5 * 2];
        mpsl_tensor inp = {.data = x, .dtype = MPSL_I32, .ndim = 2, .shape = {2, 16}};
        mpsl_tensor out = {.data = o, .dtype = MPSL_F32, .ndim = 3, .shape = {2, 5, 2}};
        CHECK(m.api->forward(m.state, &m.w, &inp, &out, &err) == MPSL_ERR_INVALID);
        CHECK_CONTAINS(err.msg, "byte 2 is 300");
        x[2] = -1;
        CHECK(m.api->forward(m.state, &m.w, &inp, &out, &err) == MPSL_ERR_INVALID);
        x[2] = 'c';
        CHECK(m.api->forward(m.state, &m.w, &inp, &out, &err) == MPSL_OK);
        inp.shape[1] = 15;
        CHECK(m.api->forward(m.state, &m.w, &inp, &out, &err) == MPSL_ERR_INVALID);
        CHECK_CONTAINS(err.msg, "(B,16)");
        inp.shape[1] = 16;
        inp.dtype = MPSL_F32;
        CHECK(m.api->forward(m.state, &m.w, &inp, &out, &err) == MPSL_ERR_INVALID);
        // backward after a failed forward still matches the last good one (B = 2)
        mpsl_tensor dout = out;
        dout.shape[0] = 3;
        CHECK(m.api->backward(m.state, &m.w, &dout, NULL, &err) == MPSL_ERR_INVALID);
        CHECK_CONTAINS(err.msg, "expected (2,5,2)");
    }
    module_close(&m);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: test_text text.so fixtures/bpe_tiny.txt\n");
        return 2;
    }
    g_plugin = argv[1];
    mpsl_rng_seed(&rng, 11);
    tmp_init();
    size_t n = 0;
    char *merges = read_all(argv[2], &n);
    tmp_path(g_bpe, sizeof g_bpe, "tiny.txt.gz");
    write_gz(g_bpe, merges, n);
    free(merges);
    snprintf(g_yaml_bpe, sizeof g_yaml_bpe, "vocab: clip_bpe\nbpe_path: %s\n", g_bpe);

    test_defaults();
    test_ids();
    test_gradients();
    test_refusals(argv[2]);
    test_shared_instances();

    const char *made[] = {"tiny.txt.gz", "corrupt.txt.gz", "clip_sized.txt.gz"};
    tmp_cleanup(made, MPSL_COUNT(made));
    return check_exit();
}
