/* test_clip_bpe.c: CLIP's BPE (plugins/tokenizer/clip_bpe.c, compiled in) on a 20-merge
 * fixture in CLIP's file format. The ids were worked out by hand (the non-ASCII ones from the
 * byte table) and agree with a Python implementation of CLIP's SimpleTokenizer. Covered:
 * vocabulary order, merge ranks, "</w>", the pre-tokenizer's pieces (contractions, letters,
 * single digits, punctuation runs, special tokens), cleaning (case, whitespace, HTML
 * references, curly quotes, final sigma), non-ASCII and invalid UTF-8, truncation; and the
 * file checks: missing, not gzip, corrupt, truncated, bad header, bad merge lines, shadowed
 * strings, the 48894-merge cap.
 *
 * Usage: test_clip_bpe fixtures/bpe_tiny.txt */
#include <stdint.h>

#include "check.h"
#include "clip_bpe.h"
#include "mpsl/plugin.h"
#include "tok_files.h"

/* Byte symbol ids: printable ASCII b -> b - 33, "</w>" variants + 256.
 * Fixture merges -> ids: th 512, the</w> 513, ca 514, cat</w> 515, on 516, 's</w> 517,
 * ll 518, lll</w> 519, en</w> 520, then</w> 521, he 522, 20 523, .. 524, é</w> 525,
 * on</w> 526, an 527, and</w> 528, in 529, ing</w> 530, si 531; start 532, end 533. */
typedef struct {
    const char *text;
    int n;
    int32_t ids[32];
} bpe_case;

static const bpe_case k_cases[] = {
    {"the cat", 2, {513, 515}},
    {"The  CAT!", 3, {513, 515, 256}},                  // lowercase, whitespace, "!</w>"
    {"a cat's", 3, {320, 515, 517}},                    // "'s" contraction piece
    {"lll", 1, {519}},                                  // l l -> ll, then ll l</w>
    {"llll", 3, {518, 75, 331}},                        // merges left to right, no overlap
    {"then", 1, {521}},                                 // t h (0), e n</w> (8), th en</w> (9)
    {"hen", 2, {71, 520}},                              // rank 8 beats h e (10)
    {"he", 2, {71, 324}},                               // h e does not match h e</w>
    {"on", 1, {526}},
    {"onion", 3, {516, 72, 526}},
    {"2024", 4, {273, 271, 273, 275}},                  // one digit per piece: "2 0" never applies
    {"...!?", 4, {524, 13, 0, 286}},                    // one punctuation run
    {"caf\xc3\xa9", 3, {514, 69, 525}},                 // é = bytes C3 A9 = symbols 127, 102
    {"CAF\xc3\x89", 3, {514, 69, 525}},                 // É lowercases to é
    {"cat &amp; the", 3, {515, 261, 513}},              // html.unescape
    {"&amp;amp;", 1, {261}},                            // ... applied twice
    {"&#39;s", 1, {517}},
    {"cat\xe2\x80\x99s", 2, {515, 517}},                // ftfy's uncurl_quotes: ’ -> '
    {"", 0, {0}},
    {"   \t\n ", 0, {0}},
    {"!!", 2, {0, 256}},
    {"  the\t\ncat  ", 2, {513, 515}},
    {"<|endoftext|>", 1, {533}},
    {"the<|startoftext|>", 2, {513, 532}},
    {"and sing", 3, {528, 82, 530}},                    // i n (17) before s i (19)
    {"it's", 3, {72, 339, 517}},
    {"'sun", 3, {517, 84, 333}},                        // 's matches before letters
    {"''s", 3, {6, 262, 338}},                          // punctuation run "''", then "s"
    {"x2y", 3, {343, 273, 344}},
    {"cat\xe2\x80\x94the", 5, {515, 158, 222, 498, 513}},  // em dash: its own piece, 3 bytes
    {"the&nbsp;cat", 2, {513, 515}},                    // nbsp is whitespace
    {"the\xc2\xa0" "cat", 2, {513, 515}},
    {"x&#x41;y &#150; &#0; &lt;&gt", 11,
     {87, 64, 344, 158, 222, 497, 171, 123, 377, 27, 285}},   // hex ref, cp1252, U+FFFD
    {"\xc2\xbd\xc2\xb2", 4, {126, 377, 126, 366}},      // ½ ²: numbers, one per piece
    {"\xc4\xb0", 3, {328, 136, 485}},                   // İ -> i + combining dot (a mark)
    {"hello, world... ok?!", 15,
     {522, 518, 334, 267, 86, 78, 81, 75, 323, 524, 269, 78, 330, 30, 256}},
    {"don't we're they've i'm we'll he'd", 27,
     {67, 526, 6, 339, 86, 324, 6, 81, 324, 512, 68, 344, 6, 85, 324, 328, 6, 332, 86, 324, 6,
      75, 331, 71, 324, 6, 323}},
    {"\xff", 1, {443}},                                 // invalid UTF-8: the byte's symbol
    // str.lower()'s final sigma: "ΟΔΟΣ" ends in ς (CF 82), "ΣΑ" starts with σ (CF 83)
    {"\xce\x9f\xce\x94\xce\x9f\xce\xa3", 8, {138, 123, 138, 112, 138, 123, 139, 480}},
    {"\xce\x9f\xce\x94\xce\x9f\xce\xa3 \xce\xa3\xce\x91", 12,
     {138, 123, 138, 112, 138, 123, 139, 480, 139, 225, 138, 365}},
    {"a\xcd\x85" "b", 2, {320, 321}},                  // U+0345: no alternative matches it
    {"a\x1c" "b", 3, {320, 472, 321}},                 // U+001C: not regex's \s, punctuation
    {"\x1c a \x1c", 1, {320}},                         // ... but str.strip() removes it
    {"x'\xc5\xbfy", 5, {343, 6, 129, 379, 344}},        // 'ſ matches 's under IGNORECASE
    {"a\xcc\x81", 3, {320, 136, 479}},                 // a + combining acute: a mark piece
};

/* One scratch for every case and every table loaded here: scratch belongs to the caller, not
 * to the tables, and keeps what it grew from one call (and one table) to the next. */
static clip_bpe_scratch g_scratch;

static void check_ids(const clip_bpe *b, const char *text, int64_t len, int64_t max_ids,
                      const int32_t *want, int n_want)
{
    int32_t got[128];
    int64_t n = clip_bpe_encode(b, &g_scratch, (const uint8_t *)text, len, got, max_ids);
    int same = n == n_want;
    for (int i = 0; same && i < n_want; i++) {
        same = got[i] == want[i];
    }
    CHECK(same);
    if (!same) {
        fprintf(stderr, "  \"%s\": got %lld ids:", text, (long long)n);
        for (int64_t i = 0; i < n && i < 128; i++) {
            fprintf(stderr, " %d", got[i]);
        }
        fprintf(stderr, "; expected %d:", n_want);
        for (int i = 0; i < n_want; i++) {
            fprintf(stderr, " %d", want[i]);
        }
        fprintf(stderr, "\n");
    }
}

static clip_bpe *load_ok(const char *path)
{
    clip_bpe *b = NULL;
    char msg[512] = "";
    int rc = clip_bpe_load(path, &b, msg, sizeof msg);
    CHECK(rc == MPSL_OK && b);
    if (rc != MPSL_OK) {
        fprintf(stderr, "%s\n", msg);
    }
    return b;
}

/* Load must fail with rc and a message containing want (and the path). */
static void load_fails(const char *path, int rc_want, const char *want)
{
    clip_bpe *b = NULL;
    char msg[512] = "";
    CHECK(clip_bpe_load(path, &b, msg, sizeof msg) == rc_want);
    CHECK(b == NULL);
    CHECK_CONTAINS(msg, want);
    CHECK_CONTAINS(msg, path);
    clip_bpe_free(b);
}

static void test_fixture(const char *fixture)
{
    size_t n = 0;
    char *text = read_all(fixture, &n);
    char gz[128];
    tmp_path(gz, sizeof gz, "tiny.txt.gz");
    write_gz(gz, text, n);
    clip_bpe *b = load_ok(gz);
    if (b) {
        CHECK(clip_bpe_n_merges(b) == 20);
        CHECK(clip_bpe_vocab_size(b) == 534);
        CHECK(clip_bpe_start_id(b) == 532 && clip_bpe_end_id(b) == 533);
        for (size_t k = 0; k < MPSL_COUNT(k_cases); k++) {
            check_ids(b, k_cases[k].text, (int64_t)strlen(k_cases[k].text), 128,
                      k_cases[k].ids, k_cases[k].n);
        }
        // truncation: only max_ids ids, the rest of the text is dropped
        const int32_t two_cats[4] = {513, 515, 513, 515};
        check_ids(b, "the cat the cat", 15, 3, two_cats, 3);
        check_ids(b, "the cat the cat", 15, 0, two_cats, 0);
        const int32_t llll[3] = {518, 75, 331};
        check_ids(b, "llll", 4, 2, llll, 2);      // a word cut inside its symbols
        // a NUL ends the text; n bounds it otherwise
        check_ids(b, "the\0cat", 7, 8, two_cats, 1);
        check_ids(b, "the cat", 3, 8, two_cats, 1);
        // scratch buffers grow: a long word without merges is one id per byte
        char longw[301];
        int32_t want[300];
        memset(longw, 'q', 300);
        longw[300] = '\0';
        for (int i = 0; i < 300; i++) {
            want[i] = i < 299 ? 80 : 336;   // q = 113 - 33, q</w> + 256
        }
        int32_t got[300];
        CHECK(clip_bpe_encode(b, &g_scratch, (const uint8_t *)longw, 300, got, 300) == 300);
        CHECK(memcmp(got, want, sizeof want) == 0);
        clip_bpe_free(b);
    }

    // CRLF line endings and a missing final newline read the same merges
    size_t m = 0;
    char *crlf = malloc(2 * n + 1);
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\n' && i + 1 < n) {
            crlf[m++] = '\r';
        }
        if (text[i] != '\n' || i + 1 < n) {
            crlf[m++] = text[i];
        }
    }
    tmp_path(gz, sizeof gz, "crlf.txt.gz");
    write_gz(gz, crlf, m);
    b = load_ok(gz);
    if (b) {
        CHECK(clip_bpe_vocab_size(b) == 534);
        for (size_t k = 0; k < MPSL_COUNT(k_cases); k++) {
            check_ids(b, k_cases[k].text, (int64_t)strlen(k_cases[k].text), 128,
                      k_cases[k].ids, k_cases[k].n);
        }
        clip_bpe_free(b);
    }
    free(crlf);
    free(text);
}

static void test_vocab_rules(void)
{
    char gz[128];
    // a repeated merge: its later rank and later (shadowing) string id win, as in Python's
    // dicts; a merge whose part is no symbol ("</w>") never applies but its joined string
    // "x</w>" shadows the byte symbol's end variant
    const char *shadow = "#version: 0.2\na b\na b\nx </w>\n";
    tmp_path(gz, sizeof gz, "shadow.txt.gz");
    write_gz(gz, shadow, strlen(shadow));
    clip_bpe *b = load_ok(gz);
    if (b) {
        CHECK(clip_bpe_vocab_size(b) == 517);
        const int32_t ab[2] = {64, 321}, abc[2] = {513, 322}, x[1] = {514}, xx[2] = {87, 514};
        check_ids(b, "ab", 2, 8, ab, 2);
        check_ids(b, "abc", 3, 8, abc, 2);
        check_ids(b, "x", 1, 8, x, 1);
        check_ids(b, "xx", 2, 8, xx, 2);
        clip_bpe_free(b);
    }
    // header only: no merges, V = 514, every piece is byte symbols
    const char *none = "#version: 0.2\n";
    tmp_path(gz, sizeof gz, "none.txt.gz");
    write_gz(gz, none, strlen(none));
    b = load_ok(gz);
    if (b) {
        CHECK(clip_bpe_vocab_size(b) == 514 && clip_bpe_start_id(b) == 512);
        const int32_t the[3] = {83, 71, 324};
        check_ids(b, "the", 3, 8, the, 3);
        clip_bpe_free(b);
    }
    // CLIP reads 48894 merges: later lines are not read (not even checked)
    size_t cap = 48900 * 4 + 64, len = 0;
    char *big = malloc(cap);
    len += (size_t)snprintf(big, cap, "#version: 0.2\n");
    for (int i = 0; i < CLIP_BPE_MAX_MERGES; i++) {
        memcpy(big + len, "a b\n", 4);
        len += 4;
    }
    len += (size_t)snprintf(big + len, cap - len, "not a merge line\n");
    tmp_path(gz, sizeof gz, "big.txt.gz");
    write_gz(gz, big, len);
    b = load_ok(gz);
    if (b) {
        CHECK(clip_bpe_n_merges(b) == CLIP_BPE_MAX_MERGES);
        CHECK(clip_bpe_vocab_size(b) == 49408);   // CLIP's vocabulary size
        CHECK(clip_bpe_end_id(b) == 49407);
        const int32_t ab[1] = {512 + CLIP_BPE_MAX_MERGES - 1};   // the last "ab" wins
        const int32_t abb[2] = {ab[0], 321};
        check_ids(b, "abb", 3, 8, abb, 2);
        clip_bpe_free(b);
    }
    free(big);
}

static void test_bad_files(const char *fixture)
{
    char path[128];
    tmp_path(path, sizeof path, "missing.txt.gz");
    load_fails(path, MPSL_ERR_IO, "bpe_simple_vocab_16e6.txt.gz");
    load_fails(path, MPSL_ERR_IO, "No such file");

    // the plain text file itself is not gzip
    load_fails(fixture, MPSL_ERR_INVALID, "not a gzip file");
    tmp_path(path, sizeof path, "empty.gz");
    write_plain(path, "", 0);
    load_fails(path, MPSL_ERR_INVALID, "not a gzip file");

    size_t n = 0;
    char *text = read_all(fixture, &n);
    char good[128];
    tmp_path(good, sizeof good, "good.txt.gz");
    write_gz(good, text, n);
    size_t gn = 0;
    char *gzb = read_all(good, &gn);
    CHECK(gn > 30);

    // a damaged CRC: zlib's "incorrect data check"
    char *bad = malloc(gn);
    memcpy(bad, gzb, gn);
    bad[gn - 8] ^= 0x5a;
    tmp_path(path, sizeof path, "crc.txt.gz");
    write_plain(path, bad, gn);
    load_fails(path, MPSL_ERR_INVALID, "corrupt gzip file");
    // damaged compressed data (invalid block type bits in the first deflate byte)
    memcpy(bad, gzb, gn);
    bad[10] = (char)0xff;
    tmp_path(path, sizeof path, "data.txt.gz");
    write_plain(path, bad, gn);
    load_fails(path, MPSL_ERR_INVALID, "corrupt gzip file");
    // cut short
    tmp_path(path, sizeof path, "cut.txt.gz");
    write_plain(path, gzb, gn / 2);
    load_fails(path, MPSL_ERR_INVALID, "truncated");
    free(bad);
    free(gzb);
    free(text);

    // well-formed gzip, wrong contents
    const struct {
        const char *name, *content, *want;
    } wrong[] = {
        {"nohdr.txt.gz", "t h\nth e</w>\n", "line 1: expected the header '#version"},
        {"emptytext.txt.gz", "", "line 1"},
        {"one.txt.gz", "#version: 0.2\nt h\nabc\n", "line 3: expected a merge of two symbols"},
        {"three.txt.gz", "#version: 0.2\nt h e\n", "got 3 fields"},
        {"blank.txt.gz", "#version: 0.2\nt h\n\nc a\n", "line 3"},
        {"json.txt.gz", "{\"!\": 0, \"a\": 1}\n", "#version"},
    };
    for (size_t k = 0; k < MPSL_COUNT(wrong); k++) {
        tmp_path(path, sizeof path, wrong[k].name);
        write_gz(path, wrong[k].content, strlen(wrong[k].content));
        load_fails(path, MPSL_ERR_INVALID, wrong[k].want);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_clip_bpe fixtures/bpe_tiny.txt\n");
        return 2;
    }
    tmp_init();
    test_fixture(argv[1]);
    test_vocab_rules();
    test_bad_files(argv[1]);
    const char *made[] = {"tiny.txt.gz", "crlf.txt.gz", "shadow.txt.gz", "none.txt.gz",
                          "big.txt.gz", "empty.gz", "good.txt.gz", "crc.txt.gz",
                          "data.txt.gz", "cut.txt.gz", "nohdr.txt.gz", "emptytext.txt.gz",
                          "one.txt.gz", "three.txt.gz", "blank.txt.gz", "json.txt.gz"};
    tmp_cleanup(made, MPSL_COUNT(made));
    clip_bpe_scratch_free(&g_scratch);
    CHECK(g_scratch.cp_a == NULL && g_scratch.cap_cp == 0 && g_scratch.cap_piece == 0);
    clip_bpe_scratch_free(NULL);
    return check_exit();
}
