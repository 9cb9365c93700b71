/* test_clip_bpe_cache.c: the process-wide BPE table cache (plugins/tokenizer/clip_bpe_cache.c,
 * compiled in). Acquisitions of one file share one table pointer and encode exactly as a
 * private load does; releases in either order free once, at the last; another path to the
 * same file shares, a copy or a rewritten file does not; errors read as a private load's and
 * leave nothing behind; threads acquiring, encoding and releasing at once agree. Memory: 100
 * holders of a CLIP-sized table (48894 merges) add far less than 10 tables' worth of resident
 * memory, while 10 private loads add at least 5 (so the measurement can see tables).
 *
 * Usage: test_clip_bpe_cache fixtures/bpe_tiny.txt */
#include <pthread.h>
#include <stdint.h>

#include "check.h"
#include "clip_bpe_cache.h"
#include "mpsl/plugin.h"
#include "tok_files.h"

static const char *const k_texts[] = {
    "the cat", "The  CAT!", "a cat's then hen", "onion 2024 ...!?", "caf\xc3\xa9 &amp; sing",
    "don't we're they've", "<|endoftext|>", "", "hello, world... ok?!", "\xff x2y",
    "abcab cabca bcabc zyxzy qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
    "the quick brown fox jumps over the lazy dog",
};

/* ids of every k_texts entry, concatenated with each count first; returns the length. */
static int64_t encode_all(const clip_bpe *b, clip_bpe_scratch *s, int32_t *out, int64_t cap)
{
    int64_t n = 0;
    for (size_t k = 0; k < MPSL_COUNT(k_texts); k++) {
        int64_t m = clip_bpe_encode(b, s, (const uint8_t *)k_texts[k],
                                    (int64_t)strlen(k_texts[k]), out + n + 1, cap - n - 1);
        if (m < 0) {
            return -1;
        }
        out[n] = (int32_t)m;
        n += 1 + m;
    }
    return n;
}

/* b encodes every k_texts entry exactly as want does (a private load of the same file). */
static int same_ids(const clip_bpe *b, const clip_bpe *want)
{
    int32_t got[4096], ref[4096];   // not static: threads call this at once
    clip_bpe_scratch s = {0}, t = {0};
    int64_t n = encode_all(b, &s, got, 4096), m = encode_all(want, &t, ref, 4096);
    clip_bpe_scratch_free(&s);
    clip_bpe_scratch_free(&t);
    return n > 0 && n == m && memcmp(got, ref, (size_t)n * sizeof(int32_t)) == 0;
}

static const clip_bpe *acquire_ok(const char *path)
{
    const clip_bpe *b = NULL;
    char msg[512] = "";
    int rc = clip_bpe_acquire(path, &b, msg, sizeof msg);
    CHECK(rc == MPSL_OK && b);
    if (rc != MPSL_OK) {
        fprintf(stderr, "%s\n", msg);
    }
    return b;
}

static clip_bpe *load_ok(const char *path)
{
    clip_bpe *b = NULL;
    char msg[512] = "";
    CHECK(clip_bpe_load(path, &b, msg, sizeof msg) == MPSL_OK && b);
    return b;
}

static void test_sharing(const char *tiny)
{
    clip_bpe *priv = load_ok(tiny);
    const clip_bpe *a = acquire_ok(tiny), *b = acquire_ok(tiny);
    CHECK(a && a == b);                      // one copy for both
    CHECK(a != priv);                        // and not the private one
    CHECK(clip_bpe_cache_tables() == 1 && clip_bpe_cache_refs() == 2);
    if (a && priv) {
        CHECK(clip_bpe_vocab_size(a) == 534);
        CHECK(same_ids(a, priv));
        CHECK(same_ids(b, priv));
        CHECK(clip_bpe_table_bytes(a) == clip_bpe_table_bytes(priv));
    }
    // release in acquisition order: the tables outlive the first release
    clip_bpe_release(a);
    CHECK(clip_bpe_cache_tables() == 1 && clip_bpe_cache_refs() == 1);
    if (b && priv) {
        CHECK(same_ids(b, priv));
    }
    clip_bpe_release(b);
    CHECK(clip_bpe_cache_tables() == 0 && clip_bpe_cache_refs() == 0);

    // ... and in the reverse order; a fresh acquisition after the last release loads again
    a = acquire_ok(tiny);
    b = acquire_ok(tiny);
    CHECK(a && a == b && clip_bpe_cache_refs() == 2);
    clip_bpe_release(b);
    CHECK(clip_bpe_cache_tables() == 1 && clip_bpe_cache_refs() == 1);
    if (a && priv) {
        CHECK(same_ids(a, priv));
    }
    clip_bpe_release(a);
    CHECK(clip_bpe_cache_tables() == 0);
    clip_bpe_release(NULL);                  // nothing to give back
    CHECK(clip_bpe_cache_tables() == 0);
    clip_bpe_free(priv);
}

static void test_identity(const char *tiny)
{
    char link_path[128], copy[128];
    tmp_path(link_path, sizeof link_path, "link.txt.gz");
    tmp_path(copy, sizeof copy, "copy.txt.gz");
    unlink(link_path);
    CHECK(symlink(tiny, link_path) == 0);
    size_t gn = 0;
    char *gz = read_all(tiny, &gn);
    write_plain(copy, gz, gn);
    free(gz);

    const clip_bpe *a = acquire_ok(tiny), *l = acquire_ok(link_path), *c = acquire_ok(copy);
    CHECK(a && a == l);                      // another path to the same file shares
    CHECK(c && c != a);                      // equal bytes in another file do not
    CHECK(clip_bpe_cache_tables() == 2 && clip_bpe_cache_refs() == 3);

    // rewriting the copy (new size and time): a new acquisition reads the new merges, the
    // earlier holder keeps its tables
    const char *one = "#version: 0.2\nt h\n";
    write_gz(copy, one, strlen(one));
    const clip_bpe *c2 = acquire_ok(copy);
    CHECK(c2 && c2 != c && clip_bpe_cache_tables() == 3);
    if (c && c2) {
        CHECK(clip_bpe_vocab_size(c2) == 515 && clip_bpe_vocab_size(c) == 534);
        clip_bpe *priv = load_ok(tiny);
        CHECK(priv && same_ids(c, priv));
        clip_bpe_free(priv);
    }
    clip_bpe_release(c);
    clip_bpe_release(l);
    clip_bpe_release(c2);
    clip_bpe_release(a);
    CHECK(clip_bpe_cache_tables() == 0 && clip_bpe_cache_refs() == 0);
    unlink(link_path);
}

/* An acquisition that fails gives the status and words of clip_bpe_load and holds nothing. */
static void fails_as_load(const char *path, int rc_want)
{
    clip_bpe *p = NULL;
    const clip_bpe *c = NULL;
    char want[512] = "", got[512] = "";
    CHECK(clip_bpe_load(path, &p, want, sizeof want) == rc_want && !p);
    CHECK(clip_bpe_acquire(path, &c, got, sizeof got) == rc_want && !c);
    CHECK(strcmp(got, want) == 0);
    CHECK_CONTAINS(got, path);
    CHECK(clip_bpe_cache_tables() == 0 && clip_bpe_cache_refs() == 0);
}

static void test_errors(const char *fixture)
{
    char path[128];
    tmp_path(path, sizeof path, "missing.txt.gz");
    fails_as_load(path, MPSL_ERR_IO);
    fails_as_load(fixture, MPSL_ERR_INVALID);          // not gzip
    tmp_path(path, sizeof path, "bad.txt.gz");
    const char *bad = "#version: 0.2\nt h e\n";
    write_gz(path, bad, strlen(bad));
    fails_as_load(path, MPSL_ERR_INVALID);             // a bad merge line
    // a file that failed once and is then fixed loads
    write_gz(path, "#version: 0.2\nt h\n", 18);
    const clip_bpe *b = acquire_ok(path);
    CHECK(b && clip_bpe_vocab_size(b) == 515);
    clip_bpe_release(b);
    CHECK(clip_bpe_cache_tables() == 0);
}

/* Threads that acquire, encode and release the same file at once. */
typedef struct {
    const char *path;
    const clip_bpe *want;        // a private load to compare with
    const clip_bpe *got;         // what this thread acquired
    int ok;
} thread_arg;

static void *thread_main(void *p)
{
    thread_arg *t = p;
    char msg[512];
    t->ok = 1;
    for (int round = 0; round < 20 && t->ok; round++) {
        const clip_bpe *b = NULL;
        t->ok = clip_bpe_acquire(t->path, &b, msg, sizeof msg) == MPSL_OK &&
                same_ids(b, t->want);
        if (round == 0) {
            t->got = b;
        }
        if (round < 19) {
            clip_bpe_release(b);
        }
    }
    return NULL;
}

static void test_threads(const char *tiny)
{
    enum { N = 8 };
    clip_bpe *priv = load_ok(tiny);
    const clip_bpe *held = acquire_ok(tiny);   // keeps one copy alive throughout
    pthread_t th[N];
    thread_arg arg[N];
    for (int i = 0; i < N; i++) {
        arg[i] = (thread_arg){tiny, priv, NULL, 0};
        CHECK(pthread_create(&th[i], NULL, thread_main, &arg[i]) == 0);
    }
    int all_ok = 1, all_same = 1;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        all_ok &= arg[i].ok;
        all_same &= arg[i].got == held;
    }
    CHECK(all_ok);
    CHECK(all_same);
    CHECK(clip_bpe_cache_tables() == 1 && clip_bpe_cache_refs() == 1 + N);
    for (int i = 0; i < N; i++) {
        clip_bpe_release(held);                // each thread's last acquisition
    }
    clip_bpe_release(held);
    CHECK(clip_bpe_cache_tables() == 0);
    clip_bpe_free(priv);
}

/* Resident memory of this process in bytes (/proc/self/statm's second field). */
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

static void test_memory(const char *big)
{
    enum { HOLDERS = 100, PRIVATE = 10 };
    static const clip_bpe *held[HOLDERS];
    static clip_bpe_scratch scratch[HOLDERS];
    static clip_bpe *priv[PRIVATE];
    int32_t ids[256];
    const char *text = "abcab cabca bcabc the quick brown fox jumps over the lazy dog";

    // the first holder pays for the tables; the 99 others should add only their scratch
    held[0] = acquire_ok(big);
    if (!held[0]) {
        return;
    }
    double table = (double)clip_bpe_table_bytes(held[0]);
    CHECK(clip_bpe_n_merges(held[0]) == CLIP_BPE_MAX_MERGES);
    CHECK(table > 3e6);                      // CLIP-sized: 3.3 MB in CLIP's own file
    clip_bpe_encode(held[0], &scratch[0], (const uint8_t *)text, (int64_t)strlen(text), ids,
                    256);
    int64_t r0 = rss_bytes();
    int encoded = 1;
    for (int i = 1; i < HOLDERS; i++) {
        held[i] = acquire_ok(big);
        encoded &= clip_bpe_encode(held[i], &scratch[i], (const uint8_t *)text,
                                   (int64_t)strlen(text), ids, 256) > 0;
    }
    int64_t r1 = rss_bytes();
    CHECK(encoded);
    CHECK(r0 > 0 && r1 > 0);
    CHECK(clip_bpe_cache_tables() == 1 && clip_bpe_cache_refs() == HOLDERS);
    double shared_growth = (double)(r1 - r0);
    CHECK(shared_growth < 10 * table);

    // the same measurement sees private copies: 10 loads add at least 5 tables' worth
    for (int i = 0; i < PRIVATE; i++) {
        priv[i] = load_ok(big);
    }
    int64_t r2 = rss_bytes();
    double private_growth = (double)(r2 - r1);
    CHECK(private_growth > 5 * table);
    fprintf(stderr, "tables %.2f MB; 99 more shared holders added %.2f MB resident (limit "
            "%.1f MB); 10 private loads added %.2f MB (%.2f MB each)\n", table / 1e6,
            shared_growth / 1e6, 10 * table / 1e6, private_growth / 1e6,
            private_growth / 1e6 / PRIVATE);
    for (int i = 0; i < PRIVATE; i++) {
        clip_bpe_free(priv[i]);
    }
    for (int i = HOLDERS - 1; i >= 0; i--) {
        clip_bpe_scratch_free(&scratch[i]);
        clip_bpe_release(held[i]);
    }
    CHECK(clip_bpe_cache_tables() == 0 && clip_bpe_cache_refs() == 0);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_clip_bpe_cache fixtures/bpe_tiny.txt\n");
        return 2;
    }
    tmp_init();
    size_t n = 0;
    char *text = read_all(argv[1], &n);
    char tiny[128], big[128];
    tmp_path(tiny, sizeof tiny, "tiny.txt.gz");
    write_gz(tiny, text, n);
    free(text);
    tmp_path(big, sizeof big, "clip_sized.txt.gz");
    write_clip_sized(big);

    test_sharing(tiny);
    test_identity(tiny);
    test_errors(argv[1]);
    test_threads(tiny);
    test_memory(big);

    const char *made[] = {"tiny.txt.gz", "clip_sized.txt.gz", "copy.txt.gz", "bad.txt.gz"};
    tmp_cleanup(made, MPSL_COUNT(made));
    return check_exit();
}
