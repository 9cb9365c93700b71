/* clip_bpe.c: CLIP's byte-level BPE (see clip_bpe.h), implemented from the description of
 * OpenAI CLIP's SimpleTokenizer: read the gzip merges file with zlib, build the vocabulary
 * and a hash of merge pairs by rank, then clean -> pre-tokenize -> bytes to symbols -> merge.
 *
 * WHAT MATCHES CLIP AND WHAT IS APPROXIMATED
 * - Exact: the vocabulary order and ids (later duplicates of a string win, as in Python's
 *   dict), merge ranks, the merge loop (lowest-ranked adjacent pair first, every occurrence
 *   merged left to right, "</w>" on a word's last symbol), the special-token pieces
 *   "<|startoftext|>"/"<|endoftext|>" in the text, whitespace collapsing (Python's \s set),
 *   ASCII lowercasing, and the pre-tokenizer on ASCII text.
 * - Cleaning: CLIP runs ftfy.fix_text, html.unescape twice, then collapses whitespace and
 *   lowercases. Of ftfy only uncurl_quotes is reproduced (U+02BC, U+2018-U+201B -> ',
 *   U+201C-U+201F -> "); no mojibake repair, NFC normalisation, ligature or width fixes, so
 *   inputs should be clean UTF-8. html.unescape is reproduced for numeric references
 *   (&#N; &#xH;, ';' optional, with Python's replacements for 0, surrogates, out-of-range and
 *   the Windows-1252 range 0x80-0x9F, and its removal of invalid code points) and for the
 *   names amp, lt, gt, quot, nbsp (also without ';' and in capitals for the first four) and
 *   apos; other named entities stay as they are. Lowercasing covers ASCII, Latin-1, Latin
 *   Extended-A and Additional, Greek, Cyrillic, Armenian and fullwidth Latin (Python's
 *   str.lower covers all of Unicode).
 * - Pre-tokenizer: CLIP's regex
 *       <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 *   is scanned by hand with the same leftmost-alternative semantics. Exact for ASCII. For
 *   other code points \p{N} and "neither letter nor number" (punctuation, symbols, marks,
 *   controls) come from a table of ranges (Latin-1, combining marks, general punctuation,
 *   currency, letterlike, arrows/math/box/shapes/dingbats, CJK and fullwidth punctuation,
 *   emoji, private use, some Arabic, Devanagari and Thai marks); every other code point counts
 *   as a letter. Bytes that are not valid UTF-8 count as letters and pass through unchanged
 *   (CLIP's Python input is already a str and cannot hold them).
 * - A merges file shorter than 48894 merges that ends with a newline gives CLIP's Python an
 *   extra empty merge (an unused vocabulary entry before the special tokens); that quirk is
 *   not reproduced: such a file gives V = 512 + merges + 2 here. CLIP's own file has 262144
 *   merges and is unaffected. */
#include "clip_bpe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <mpsl/plugin.h>

#define GZ_MAX_IN (64u << 20)    // refuse compressed files above 64 MiB (CLIP's: 1.3 MB)
#define GZ_MAX_OUT (256u << 20)  // and anything that inflates above 256 MiB
#define RAW_BYTE 0x110000u       // code points >= this are invalid UTF-8 bytes (+ byte)

static const char k_start[] = "<|startoftext|>";
static const char k_end[] = "<|endoftext|>";

typedef struct {
    uint32_t off, len;           // a vocabulary string inside the arena
} vstr;

typedef struct {
    uint64_t key;                // (left id << 32) | right id; 0 with rank -1 = empty slot
    int32_t rank;                // -1: empty
    int32_t merged;              // id of the joined symbol
} pair_slot;

struct clip_bpe {
    int64_t n_merges;
    int32_t V;
    char *arena;                 // every vocabulary string, concatenated
    vstr *vocab;                 // (V)
    int32_t *str_hash;           // string -> id, open addressing, -1 empty
    uint64_t str_mask;
    pair_slot *pairs;            // merge pair -> rank, merged id
    uint64_t pair_mask;
    int32_t sym[256];            // id of each byte's symbol
    int32_t sym_end[256];        // id of each byte's symbol + "</w>"
    int32_t start_id, end_id;
    // scratch, grown on demand
    uint32_t *cp_a, *cp_b;       // code points
    int64_t cap_cp;
    uint8_t *piece;              // one pre-tokenized piece as UTF-8 bytes
    int32_t *word;               // its symbols during merging
    int64_t cap_piece;
};

/* ------------------------------------------------------------------ hashing */

static uint64_t fnv1a(const void *p, size_t n)
{
    const uint8_t *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ s[i]) * 1099511628211ull;
    }
    return h;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static uint64_t pow2_at_least(uint64_t n)
{
    uint64_t c = 16;
    while (c < n) {
        c <<= 1;
    }
    return c;
}

/* The id of string s[0..n), or -1. */
static int32_t vocab_find(const clip_bpe *b, const char *s, size_t n)
{
    for (uint64_t i = fnv1a(s, n) & b->str_mask;; i = (i + 1) & b->str_mask) {
        int32_t id = b->str_hash[i];
        if (id < 0) {
            return -1;
        }
        const vstr *v = &b->vocab[id];
        if (v->len == n && memcmp(b->arena + v->off, s, n) == 0) {
            return id;
        }
    }
}

/* Map the string of id to id; an equal earlier string is shadowed (Python dict semantics). */
static void vocab_index(clip_bpe *b, int32_t id)
{
    const vstr *v = &b->vocab[id];
    const char *s = b->arena + v->off;
    for (uint64_t i = fnv1a(s, v->len) & b->str_mask;; i = (i + 1) & b->str_mask) {
        int32_t old = b->str_hash[i];
        if (old < 0 || (b->vocab[old].len == v->len &&
                        memcmp(b->arena + b->vocab[old].off, s, v->len) == 0)) {
            b->str_hash[i] = id;
            return;
        }
    }
}

static const pair_slot *pair_find(const clip_bpe *b, int32_t l, int32_t r)
{
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    for (uint64_t i = mix64(key) & b->pair_mask;; i = (i + 1) & b->pair_mask) {
        const pair_slot *p = &b->pairs[i];
        if (p->rank < 0) {
            return NULL;
        }
        if (p->key == key) {
            return p;
        }
    }
}

/* A later rank of the same pair replaces the earlier one, as dict(zip(merges, ranks)) does. */
static void pair_insert(clip_bpe *b, int32_t l, int32_t r, int32_t rank, int32_t merged)
{
    uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
    for (uint64_t i = mix64(key) & b->pair_mask;; i = (i + 1) & b->pair_mask) {
        pair_slot *p = &b->pairs[i];
        if (p->rank < 0 || p->key == key) {
            p->key = key;
            p->rank = rank;
            p->merged = merged;
            return;
        }
    }
}

/* ------------------------------------------------------------------ reading the file */

static int read_gzip(const char *path, char **text, size_t *len, char *msg, size_t msg_len)
{
    *text = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(msg, msg_len, "cannot open bpe_path '%s': %s; expected CLIP's merges file "
                 "bpe_simple_vocab_16e6.txt.gz (in the clip/ folder of OpenAI's CLIP "
                 "repository)", path, strerror(errno));
        return MPSL_ERR_IO;
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *in = malloc(cap);
    int rc = MPSL_OK;
    while (in) {
        if (n == cap) {
            if (cap >= GZ_MAX_IN) {
                snprintf(msg, msg_len, "bpe_path '%s' is larger than %u MiB; expected CLIP's "
                         "bpe_simple_vocab_16e6.txt.gz (1.3 MB)", path, GZ_MAX_IN >> 20);
                rc = MPSL_ERR_INVALID;
                break;
            }
            unsigned char *grown = realloc(in, cap * 2);
            if (!grown) {
                break;
            }
            in = grown;
            cap *= 2;
        }
        size_t got = fread(in + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            break;
        }
    }
    if (!in) {
        fclose(f);
        snprintf(msg, msg_len, "out of memory reading bpe_path '%s'", path);
        return MPSL_ERR_NOMEM;
    }
    if (rc == MPSL_OK && ferror(f)) {
        snprintf(msg, msg_len, "cannot read bpe_path '%s': %s", path, strerror(errno));
        rc = MPSL_ERR_IO;
    }
    fclose(f);
    if (rc != MPSL_OK) {
        free(in);
        return rc;
    }
    if (n < 2 || in[0] != 0x1f || in[1] != 0x8b) {
        free(in);
        snprintf(msg, msg_len, "bpe_path '%s' is not a gzip file (no gzip magic bytes 1f 8b "
                 "at its start); expected CLIP's bpe_simple_vocab_16e6.txt.gz (a plain merges "
                 "file must be compressed with gzip first)", path);
        return MPSL_ERR_INVALID;
    }

    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 15 + 16) != Z_OK) {   // 16: expect a gzip wrapper
        free(in);
        snprintf(msg, msg_len, "out of memory inflating bpe_path '%s'", path);
        return MPSL_ERR_NOMEM;
    }
    zs.next_in = in;
    zs.avail_in = (uInt)n;
    size_t ocap = 4 * n + 4096, olen = 0;
    char *out = malloc(ocap + 1);
    while (out) {
        if (olen == ocap) {
            char *grown = ocap >= GZ_MAX_OUT ? NULL : realloc(out, 2 * ocap + 1);
            if (!grown) {
                snprintf(msg, msg_len, ocap >= GZ_MAX_OUT ? "bpe_path '%s' inflates to more "
                         "than 256 MiB; expected CLIP's merges file (1.6 MB of text)"
                         : "out of memory inflating bpe_path '%s'", path);
                rc = ocap >= GZ_MAX_OUT ? MPSL_ERR_INVALID : MPSL_ERR_NOMEM;
                break;
            }
            out = grown;
            ocap *= 2;
        }
        zs.next_out = (Bytef *)out + olen;
        zs.avail_out = (uInt)(ocap - olen);
        int zr = inflate(&zs, Z_NO_FLUSH);
        olen = ocap - zs.avail_out;
        if (zr == Z_STREAM_END) {
            break;
        }
        if (zr == Z_OK || (zr == Z_BUF_ERROR && zs.avail_out == 0)) {
            continue;
        }
        if (zr == Z_BUF_ERROR) {
            snprintf(msg, msg_len, "bpe_path '%s' is a truncated gzip file (the compressed "
                     "stream ends early); download bpe_simple_vocab_16e6.txt.gz again", path);
        } else {
            snprintf(msg, msg_len, "bpe_path '%s' is a corrupt gzip file (%s); download "
                     "bpe_simple_vocab_16e6.txt.gz again", path, zs.msg ? zs.msg : "zlib error");
        }
        rc = zr == Z_MEM_ERROR ? MPSL_ERR_NOMEM : MPSL_ERR_INVALID;
        break;
    }
    inflateEnd(&zs);
    free(in);
    if (!out) {
        snprintf(msg, msg_len, "out of memory inflating bpe_path '%s'", path);
        return MPSL_ERR_NOMEM;
    }
    if (rc != MPSL_OK) {
        free(out);
        return rc;
    }
    out[olen] = '\0';
    *text = out;
    *len = olen;
    return MPSL_OK;
}

/* ------------------------------------------------------------------ building the vocabulary */

/* CLIP's bytes_to_unicode: printable Latin-1 bytes map to themselves and come first in the
 * vocabulary; the other 68 bytes map to 256, 257, ... in byte order. */
static void byte_symbols(uint32_t cp_of_byte[256], uint8_t byte_at[256])
{
    int k = 0, extra = 0;
    for (int b = 0; b < 256; b++) {
        if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) {
            byte_at[k++] = (uint8_t)b;
            cp_of_byte[b] = (uint32_t)b;
        }
    }
    for (int b = 0; b < 256; b++) {
        if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) {
            byte_at[k++] = (uint8_t)b;
            cp_of_byte[b] = 256u + (uint32_t)extra++;
        }
    }
}

static int utf8_put(uint32_t c, uint8_t *o)
{
    if (c >= RAW_BYTE) {
        o[0] = (uint8_t)(c - RAW_BYTE);
        return 1;
    }
    if (c < 0x80) {
        o[0] = (uint8_t)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (uint8_t)(0xC0 | (c >> 6));
        o[1] = (uint8_t)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (uint8_t)(0xE0 | (c >> 12));
        o[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (uint8_t)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | (c >> 18));
    o[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
    o[3] = (uint8_t)(0x80 | (c & 0x3F));
    return 4;
}

typedef struct {
    uint32_t a_off, a_len, b_off, b_len;   // the two parts, inside the inflated text
} merge_line;

static int is_field_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Split the inflated text into merges (up to CLIP_BPE_MAX_MERGES). */
static int parse_merges(const char *path, const char *text, size_t len, merge_line **out,
                        int64_t *n_out, char *msg, size_t msg_len)
{
    *out = NULL;
    *n_out = 0;
    const char *nl = memchr(text, '\n', len);
    size_t hdr_len = nl ? (size_t)(nl - text) : len;
    if (hdr_len < 8 || memcmp(text, "#version", 8) != 0) {
        snprintf(msg, msg_len, "bpe_path '%s' line 1: expected the header '#version: 0.2' of "
                 "CLIP's merges file, got '%.40s'", path, hdr_len ? text : "");
        return MPSL_ERR_INVALID;
    }
    merge_line *m = malloc(sizeof(*m) * 1024);
    int64_t cap = 1024, n = 0;
    size_t pos = nl ? hdr_len + 1 : len;
    int64_t line = 1;
    while (m && pos < len && n < CLIP_BPE_MAX_MERGES) {
        line++;
        const char *s = text + pos;
        const char *e = memchr(s, '\n', len - pos);
        size_t l = e ? (size_t)(e - s) : len - pos;
        pos += l + 1;
        // fields separated by whitespace, as Python's str.split() does
        uint32_t f_off[3] = {0}, f_len[3] = {0};
        int nf = 0;
        for (size_t i = 0; i < l;) {
            while (i < l && is_field_space(s[i])) {
                i++;
            }
            if (i == l) {
                break;
            }
            size_t j = i;
            while (j < l && !is_field_space(s[j])) {
                j++;
            }
            if (nf < 3) {
                f_off[nf] = (uint32_t)(s - text + (ptrdiff_t)i);
                f_len[nf] = (uint32_t)(j - i);
            }
            nf++;
            i = j;
        }
        if (nf != 2) {
            snprintf(msg, msg_len, "bpe_path '%s' line %lld: expected a merge of two symbols "
                     "separated by a space ('a b'), got %d field%s: '%.*s'; is it CLIP's "
                     "bpe_simple_vocab_16e6.txt.gz?", path, (long long)line, nf,
                     nf == 1 ? "" : "s", (int)(l > 40 ? 40 : l), s);
            free(m);
            return MPSL_ERR_INVALID;
        }
        if (n == cap) {
            merge_line *grown = realloc(m, sizeof(*m) * (size_t)cap * 2);
            if (!grown) {
                free(m);
                m = NULL;
                break;
            }
            m = grown;
            cap *= 2;
        }
        m[n++] = (merge_line){f_off[0], f_len[0], f_off[1], f_len[1]};
    }
    if (!m) {
        snprintf(msg, msg_len, "out of memory reading bpe_path '%s'", path);
        return MPSL_ERR_NOMEM;
    }
    *out = m;
    *n_out = n;
    return MPSL_OK;
}

int clip_bpe_load(const char *path, clip_bpe **out, char *msg, size_t msg_len)
{
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = read_gzip(path, &text, &len, msg, msg_len);
    if (rc != MPSL_OK) {
        return rc;
    }
    merge_line *m = NULL;
    int64_t nm = 0;
    rc = parse_merges(path, text, len, &m, &nm, msg, msg_len);
    if (rc != MPSL_OK) {
        free(text);
        return rc;
    }

    clip_bpe *b = calloc(1, sizeof(*b));
    int64_t V = 512 + nm + 2;
    size_t arena_len = 512 * 2 + 256 * 4 + sizeof k_start + sizeof k_end;
    for (int64_t r = 0; r < nm; r++) {
        arena_len += m[r].a_len + m[r].b_len;
    }
    if (b) {
        b->n_merges = nm;
        b->V = (int32_t)V;
        b->arena = malloc(arena_len);
        b->vocab = malloc(sizeof(*b->vocab) * (size_t)V);
        b->str_mask = pow2_at_least(2 * (uint64_t)V) - 1;
        b->str_hash = malloc(sizeof(*b->str_hash) * (b->str_mask + 1));
        b->pair_mask = pow2_at_least(2 * (uint64_t)nm) - 1;
        b->pairs = malloc(sizeof(*b->pairs) * (b->pair_mask + 1));
    }
    if (!b || !b->arena || !b->vocab || !b->str_hash || !b->pairs) {
        clip_bpe_free(b);
        free(text);
        free(m);
        snprintf(msg, msg_len, "out of memory building the vocabulary of bpe_path '%s'", path);
        return MPSL_ERR_NOMEM;
    }
    memset(b->str_hash, 0xff, sizeof(*b->str_hash) * (b->str_mask + 1));
    for (uint64_t i = 0; i <= b->pair_mask; i++) {
        b->pairs[i].rank = -1;
    }

    // the vocabulary list in CLIP's order
    uint32_t cp_of_byte[256];
    uint8_t byte_at[256];
    byte_symbols(cp_of_byte, byte_at);
    uint32_t at = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < 256; i++) {
            int32_t id = pass * 256 + i;
            b->vocab[id].off = at;
            at += (uint32_t)utf8_put(cp_of_byte[byte_at[i]], (uint8_t *)b->arena + at);
            if (pass) {
                memcpy(b->arena + at, "</w>", 4);
                at += 4;
            }
            b->vocab[id].len = at - b->vocab[id].off;
        }
    }
    for (int64_t r = 0; r < nm; r++) {
        vstr *v = &b->vocab[512 + r];
        v->off = at;
        memcpy(b->arena + at, text + m[r].a_off, m[r].a_len);
        memcpy(b->arena + at + m[r].a_len, text + m[r].b_off, m[r].b_len);
        at += m[r].a_len + m[r].b_len;
        v->len = at - v->off;
    }
    const char *special[2] = {k_start, k_end};
    for (int i = 0; i < 2; i++) {
        vstr *v = &b->vocab[512 + nm + i];
        v->off = at;
        v->len = (uint32_t)strlen(special[i]);
        memcpy(b->arena + at, special[i], v->len);
        at += v->len;
    }
    for (int32_t id = 0; id < b->V; id++) {
        vocab_index(b, id);
    }

    // symbols by byte, as their (possibly shadowed) strings resolve
    for (int i = 0; i < 256; i++) {
        const vstr *v = &b->vocab[i], *ve = &b->vocab[256 + i];
        b->sym[byte_at[i]] = vocab_find(b, b->arena + v->off, v->len);
        b->sym_end[byte_at[i]] = vocab_find(b, b->arena + ve->off, ve->len);
    }
    b->start_id = vocab_find(b, k_start, strlen(k_start));
    b->end_id = vocab_find(b, k_end, strlen(k_end));

    // merge pairs by rank; a pair whose parts are not symbols can never apply
    for (int64_t r = 0; r < nm; r++) {
        int32_t l = vocab_find(b, text + m[r].a_off, m[r].a_len);
        int32_t rr = vocab_find(b, text + m[r].b_off, m[r].b_len);
        const vstr *v = &b->vocab[512 + r];
        int32_t merged = vocab_find(b, b->arena + v->off, v->len);
        if (l >= 0 && rr >= 0) {
            pair_insert(b, l, rr, (int32_t)r, merged);
        }
    }
    free(text);
    free(m);
    *out = b;
    return MPSL_OK;
}

void clip_bpe_free(clip_bpe *b)
{
    if (!b) {
        return;
    }
    free(b->arena);
    free(b->vocab);
    free(b->str_hash);
    free(b->pairs);
    free(b->cp_a);
    free(b->cp_b);
    free(b->piece);
    free(b->word);
    free(b);
}

int32_t clip_bpe_vocab_size(const clip_bpe *b) { return b->V; }
int32_t clip_bpe_start_id(const clip_bpe *b) { return b->start_id; }
int32_t clip_bpe_end_id(const clip_bpe *b) { return b->end_id; }
int64_t clip_bpe_n_merges(const clip_bpe *b) { return b->n_merges; }

/* ------------------------------------------------------------------ character classes */

typedef struct {
    uint32_t lo, hi;
} cp_range;

static int in_ranges(const cp_range *r, size_t n, uint32_t c)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < r[mid].lo) {
            hi = mid;
        } else if (c > r[mid].hi) {
            lo = mid + 1;
        } else {
            return 1;
        }
    }
    return 0;
}

/* Python's str.isspace(), i.e. what \s matches in a str pattern. */
static int is_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* \p{N} (Nd, Nl, No): ASCII digits and common non-ASCII numbers. Sorted. */
static const cp_range k_number[] = {
    {0x30, 0x39},       {0xB2, 0xB3},       {0xB9, 0xB9},       {0xBC, 0xBE},
    {0x660, 0x669},     {0x6F0, 0x6F9},     {0x966, 0x96F},     {0x9E6, 0x9EF},
    {0xE50, 0xE59},     {0x2070, 0x2070},   {0x2074, 0x2079},   {0x2080, 0x2089},
    {0x2150, 0x2182},   {0x2185, 0x2189},   {0x2460, 0x249B},   {0x24EA, 0x24FF},
    {0x2776, 0x2793},   {0x3007, 0x3007},   {0x3021, 0x3029},   {0x3038, 0x303A},
    {0xFF10, 0xFF19},
};

/* Neither \p{L} nor \p{N} (punctuation, symbols, marks, controls, format, private use) above
 * ASCII; numbers and spaces are tested first, so ranges may contain them. Sorted. */
static const cp_range k_other[] = {
    {0x80, 0xA9},       {0xAB, 0xB4},       {0xB6, 0xB9},       {0xBB, 0xBF},
    {0xD7, 0xD7},       {0xF7, 0xF7},       {0x2C2, 0x2C5},     {0x2D2, 0x2DF},
    {0x2E5, 0x2EB},     {0x2ED, 0x2ED},     {0x2EF, 0x36F},     {0x37E, 0x37E},
    {0x384, 0x385},     {0x387, 0x387},     {0x482, 0x489},     {0x55A, 0x55F},
    {0x589, 0x58A},     {0x591, 0x5C7},     {0x5F3, 0x5F4},     {0x600, 0x61F},
    {0x64B, 0x65F},     {0x66A, 0x66D},     {0x670, 0x670},     {0x6D4, 0x6D4},
    {0x6D6, 0x6ED},     {0x900, 0x903},     {0x93A, 0x93C},     {0x93E, 0x94F},
    {0x951, 0x957},     {0x962, 0x965},     {0x970, 0x970},     {0xE31, 0xE31},
    {0xE34, 0xE3A},     {0xE3F, 0xE3F},     {0xE47, 0xE4F},     {0xE5A, 0xE5B},
    {0x2000, 0x206F},   {0x207A, 0x207E},   {0x208A, 0x208E},   {0x20A0, 0x20FF},
    {0x2100, 0x2101},   {0x2103, 0x2106},   {0x2108, 0x2109},   {0x2114, 0x2114},
    {0x2116, 0x2118},   {0x211E, 0x2123},   {0x2125, 0x2125},   {0x2127, 0x2127},
    {0x2129, 0x2129},   {0x212E, 0x212E},   {0x213A, 0x213B},   {0x2140, 0x2144},
    {0x214A, 0x214D},   {0x214F, 0x214F},   {0x2190, 0x245F},   {0x249C, 0x24E9},
    {0x2500, 0x2775},   {0x2794, 0x2BFF},   {0x2E00, 0x2E7F},   {0x3001, 0x3004},
    {0x3008, 0x3020},   {0x302A, 0x3030},   {0x3036, 0x3037},   {0x303D, 0x303F},
    {0x3099, 0x309C},   {0x30A0, 0x30A0},   {0x30FB, 0x30FB},   {0xE000, 0xF8FF},
    {0xFE00, 0xFE6F},   {0xFEFF, 0xFEFF},   {0xFF01, 0xFF0F},   {0xFF1A, 0xFF20},
    {0xFF3B, 0xFF40},   {0xFF5B, 0xFF65},   {0xFFE0, 0xFFFF},   {0x1F000, 0x1FAFF},
    {0xE0000, 0xE01EF}, {0xF0000, 0x10FFFF},
};

enum { CC_SPACE, CC_LETTER, CC_NUMBER, CC_OTHER };

static int char_class(uint32_t c)
{
    if (c >= RAW_BYTE) {
        return CC_LETTER;
    }
    if (c < 0x80) {
        if (is_space(c)) {
            return CC_SPACE;
        }
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            return CC_LETTER;
        }
        return c >= '0' && c <= '9' ? CC_NUMBER : CC_OTHER;
    }
    if (is_space(c)) {
        return CC_SPACE;
    }
    if (in_ranges(k_number, sizeof k_number / sizeof k_number[0], c)) {
        return CC_NUMBER;
    }
    if (in_ranges(k_other, sizeof k_other / sizeof k_other[0], c)) {
        return CC_OTHER;
    }
    return CC_LETTER;
}

/* Python's str.lower() for the scripts listed in the file header; returns 1 or 2 points. */
static int lower_cp(uint32_t c, uint32_t o[2])
{
    o[0] = c;
    if (c < 0x80) {
        o[0] = c >= 'A' && c <= 'Z' ? c + 32 : c;
    } else if (c >= 0xC0 && c <= 0xDE && c != 0xD7) {
        o[0] = c + 32;
    } else if (c == 0x130) {         // capital I with dot: "i" + combining dot above
        o[0] = 'i';
        o[1] = 0x307;
        return 2;
    } else if (c == 0x178) {
        o[0] = 0xFF;
    } else if (((c >= 0x100 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) && c % 2 == 0) {
        o[0] = c + 1;
    } else if (((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) && c % 2 == 1) {
        o[0] = c + 1;
    } else if (c == 0x386) {
        o[0] = 0x3AC;
    } else if (c >= 0x388 && c <= 0x38A) {
        o[0] = c + 37;
    } else if (c == 0x38C) {
        o[0] = 0x3CC;
    } else if (c == 0x38E || c == 0x38F) {
        o[0] = c + 63;
    } else if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) {
        o[0] = c + 32;
    } else if (c >= 0x400 && c <= 0x40F) {
        o[0] = c + 80;
    } else if (c >= 0x410 && c <= 0x42F) {
        o[0] = c + 32;
    } else if (((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF)) && c % 2 == 0) {
        o[0] = c + 1;
    } else if (c >= 0x531 && c <= 0x556) {
        o[0] = c + 48;
    } else if (((c >= 0x1E00 && c <= 0x1E95) || (c >= 0x1EA0 && c <= 0x1EFF)) && c % 2 == 0) {
        o[0] = c + 1;
    } else if (c >= 0xFF21 && c <= 0xFF3A) {
        o[0] = c + 32;
    }
    return 1;
}

/* ------------------------------------------------------------------ cleaning */

static int grow_cp(clip_bpe *b, int64_t n)
{
    if (n <= b->cap_cp) {
        return 0;
    }
    int64_t cap = b->cap_cp ? b->cap_cp : 256;
    while (cap < n) {
        cap *= 2;
    }
    uint32_t *a = realloc(b->cp_a, sizeof(uint32_t) * (size_t)cap);
    if (a) {
        b->cp_a = a;
    }
    uint32_t *c = realloc(b->cp_b, sizeof(uint32_t) * (size_t)cap);
    if (c) {
        b->cp_b = c;
    }
    if (!a || !c) {
        return -1;
    }
    b->cap_cp = cap;
    return 0;
}

/* Strict UTF-8 decoding; a byte that does not start a valid sequence becomes RAW_BYTE + it. */
static int64_t utf8_decode(const uint8_t *s, int64_t n, uint32_t *out)
{
    int64_t m = 0;
    for (int64_t i = 0; i < n;) {
        uint8_t c = s[i];
        int len = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
                : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1Fu : len == 3 ? c & 0x0Fu : c & 0x07u;
        int ok = len > 0 && i + len <= n;
        for (int k = 1; ok && k < len; k++) {
            ok = (s[i + k] & 0xC0) == 0x80;
            cp = cp << 6 | (s[i + k] & 0x3Fu);
        }
        // overlong, surrogate and out-of-range forms are invalid too
        if (ok && ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
                   (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))) {
            ok = 0;
        }
        if (ok) {
            out[m++] = cp;
            i += len;
        } else {
            out[m++] = RAW_BYTE + c;
            i++;
        }
    }
    return m;
}

/* ftfy's uncurl_quotes, in place. */
static void uncurl_quotes(uint32_t *c, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (c[i] == 0x2BC || (c[i] >= 0x2018 && c[i] <= 0x201B)) {
            c[i] = '\'';
        } else if (c[i] >= 0x201C && c[i] <= 0x201F) {
            c[i] = '"';
        }
    }
}

/* Windows-1252 for html.unescape's numeric references 0x80..0x9F (Python's table). */
static const uint16_t k_cp1252[32] = {
    0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D,   0x017D, 0x8F,
    0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178,
};

static int match_name(const uint32_t *c, int64_t n, const char *name)
{
    int64_t k = 0;
    for (; name[k]; k++) {
        if (k >= n || c[k] != (uint32_t)(unsigned char)name[k]) {
            return 0;
        }
    }
    return (int)k;
}

/* One pass of html.unescape (see the file header for its extent): in -> out, returns the
 * length of out (never longer than in). */
static int64_t html_unescape(const uint32_t *in, int64_t n, uint32_t *out)
{
    static const struct {
        const char *name;
        uint32_t cp;
        int legacy;   // accepted without ';' (html5's legacy names)
    } named[] = {
        {"amp", '&', 1}, {"lt", '<', 1},  {"gt", '>', 1},  {"quot", '"', 1},
        {"AMP", '&', 1}, {"LT", '<', 1},  {"GT", '>', 1},  {"QUOT", '"', 1},
        {"nbsp", 0xA0, 1}, {"apos", '\'', 0},
    };
    int64_t m = 0;
    for (int64_t i = 0; i < n;) {
        if (in[i] != '&' || i + 1 >= n) {
            out[m++] = in[i++];
            continue;
        }
        const uint32_t *s = in + i + 1;
        int64_t left = n - i - 1;
        if (s[0] == '#') {
            int hex = left > 1 && (s[1] == 'x' || s[1] == 'X');
            int64_t j = 1 + hex, digits = 0;
            uint64_t v = 0;
            for (; j < left; j++, digits++) {
                uint32_t d = s[j];
                int dv = d >= '0' && d <= '9' ? (int)(d - '0')
                       : hex && d >= 'a' && d <= 'f' ? (int)(d - 'a' + 10)
                       : hex && d >= 'A' && d <= 'F' ? (int)(d - 'A' + 10) : -1;
                if (dv < 0) {
                    break;
                }
                if (v <= 0x10FFFFu) {   // saturate: anything larger is out of range anyway
                    v = v * (hex ? 16u : 10u) + (uint64_t)dv;
                }
            }
            if (digits == 0) {
                out[m++] = in[i++];
                continue;
            }
            if (j < left && s[j] == ';') {
                j++;
            }
            i += 1 + j;
            if (v >= 0x80 && v <= 0x9F) {
                out[m++] = k_cp1252[v - 0x80];
            } else if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
                out[m++] = 0xFFFD;
            } else if (v == 0x0D) {
                out[m++] = '\r';
            } else if ((v >= 0x1 && v <= 0x8) || v == 0xB || (v >= 0xE && v <= 0x1F) ||
                       v == 0x7F || (v >= 0xFDD0 && v <= 0xFDEF) || (v & 0xFFFE) == 0xFFFE) {
                // Python drops invalid code points
            } else {
                out[m++] = (uint32_t)v;
            }
            continue;
        }
        int done = 0;
        for (size_t k = 0; k < sizeof named / sizeof named[0] && !done; k++) {
            int len = match_name(s, left, named[k].name);
            if (!len) {
                continue;
            }
            if (len < left && s[len] == ';') {
                out[m++] = named[k].cp;
                i += 1 + len + 1;
                done = 1;
            } else if (named[k].legacy) {
                out[m++] = named[k].cp;
                i += 1 + len;
                done = 1;
            }
        }
        if (!done) {
            out[m++] = in[i++];
        }
    }
    return m;
}

/* CLIP's cleaning on code points: ftfy's quotes, html.unescape twice, whitespace collapsed
 * to single spaces and stripped, lowercase. Returns the cleaned text in b->cp_a. */
static int64_t clean_text(clip_bpe *b, const uint8_t *text, int64_t n)
{
    if (grow_cp(b, 2 * n + 2) != 0) {
        return -1;
    }
    int64_t m = utf8_decode(text, n, b->cp_a);
    uncurl_quotes(b->cp_a, m);
    m = html_unescape(b->cp_a, m, b->cp_b);
    m = html_unescape(b->cp_b, m, b->cp_a);
    int64_t k = 0;
    int pending_space = 0;
    for (int64_t i = 0; i < m; i++) {
        if (is_space(b->cp_a[i])) {
            pending_space = k > 0;
            continue;
        }
        if (pending_space) {
            b->cp_b[k++] = ' ';
            pending_space = 0;
        }
        b->cp_b[k++] = b->cp_a[i];
    }
    int64_t out = 0;
    for (int64_t i = 0; i < k; i++) {
        uint32_t lo[2];
        int nl = lower_cp(b->cp_b[i], lo);
        b->cp_a[out++] = lo[0];
        if (nl == 2) {
            b->cp_a[out++] = lo[1];
        }
    }
    return out;
}

/* ------------------------------------------------------------------ BPE */

static int grow_piece(clip_bpe *b, int64_t n)
{
    if (n <= b->cap_piece) {
        return 0;
    }
    int64_t cap = b->cap_piece ? b->cap_piece : 256;
    while (cap < n) {
        cap *= 2;
    }
    uint8_t *p = realloc(b->piece, (size_t)cap);
    if (p) {
        b->piece = p;
    }
    int32_t *w = realloc(b->word, sizeof(int32_t) * (size_t)cap);
    if (w) {
        b->word = w;
    }
    if (!p || !w) {
        return -1;
    }
    b->cap_piece = cap;
    return 0;
}

/* BPE of one piece's bytes b->piece[0..nb) (nb >= 1) into b->word; returns its length. */
static int64_t bpe_word(clip_bpe *b, int64_t nb)
{
    int32_t *w = b->word;
    for (int64_t i = 0; i < nb; i++) {
        w[i] = i + 1 < nb ? b->sym[b->piece[i]] : b->sym_end[b->piece[i]];
    }
    int64_t n = nb;
    while (n > 1) {
        const pair_slot *best = NULL;
        int32_t left = 0, right = 0;
        for (int64_t i = 0; i + 1 < n; i++) {
            const pair_slot *p = pair_find(b, w[i], w[i + 1]);
            if (p && (!best || p->rank < best->rank)) {
                best = p;
                left = w[i];
                right = w[i + 1];
            }
        }
        if (!best) {
            break;
        }
        int64_t j = 0;
        for (int64_t i = 0; i < n;) {
            if (i + 1 < n && w[i] == left && w[i + 1] == right) {
                w[j++] = best->merged;
                i += 2;
            } else {
                w[j++] = w[i++];
            }
        }
        n = j;
    }
    return n;
}

static int starts_with(const uint32_t *c, int64_t n, const char *s)
{
    return match_name(c, n, s) == (int)strlen(s);
}

int64_t clip_bpe_encode(clip_bpe *b, const uint8_t *text, int64_t n, int32_t *ids,
                        int64_t max_ids)
{
    const uint8_t *nul = memchr(text, 0, (size_t)n);
    if (nul) {
        n = nul - text;
    }
    int64_t m = clean_text(b, text, n);
    if (m < 0) {
        return -1;
    }
    const uint32_t *c = b->cp_a;
    int64_t count = 0;
    for (int64_t i = 0; i < m && count < max_ids;) {
        // one match of CLIP's pre-tokenizer regex starting at i, alternatives in its order
        int64_t j = i;
        if (starts_with(c + i, m - i, k_start)) {
            ids[count++] = b->start_id;
            i += (int64_t)strlen(k_start);
            continue;
        }
        if (starts_with(c + i, m - i, k_end)) {
            ids[count++] = b->end_id;
            i += (int64_t)strlen(k_end);
            continue;
        }
        int cls = char_class(c[i]);
        if (c[i] == '\'' && i + 1 < m &&
            (c[i + 1] == 's' || c[i + 1] == 't' || c[i + 1] == 'm' || c[i + 1] == 'd')) {
            j = i + 2;
        } else if (c[i] == '\'' && i + 2 < m &&
                   ((c[i + 1] == 'r' && c[i + 2] == 'e') || (c[i + 1] == 'v' && c[i + 2] == 'e') ||
                    (c[i + 1] == 'l' && c[i + 2] == 'l'))) {
            j = i + 3;
        } else if (cls == CC_LETTER) {
            while (j < m && char_class(c[j]) == CC_LETTER) {
                j++;
            }
        } else if (cls == CC_NUMBER) {
            j = i + 1;
        } else if (cls == CC_OTHER) {
            while (j < m && char_class(c[j]) == CC_OTHER) {
                j++;
            }
        } else {
            i++;   // a space between pieces
            continue;
        }
        if (grow_piece(b, 4 * (j - i)) != 0) {
            return -1;
        }
        int64_t nb = 0;
        for (int64_t k = i; k < j; k++) {
            nb += utf8_put(c[k], b->piece + nb);
        }
        int64_t nw = bpe_word(b, nb);
        for (int64_t k = 0; k < nw && count < max_ids; k++) {
            ids[count++] = b->word[k];
        }
        i = j;
    }
    return count;
}
