/* clip_bpe.h: CLIP's byte-level BPE text tokenizer (OpenAI CLIP's SimpleTokenizer), written
 * from its description for the text tokenizer plugin; compiled into that plugin only.
 *
 * Vocabulary, exactly as CLIP builds it from the merges file: the 256 byte symbols (bytes
 * mapped to printable code points, printable Latin-1 bytes first), the same 256 with "</w>"
 * appended (a symbol that ends a word), one entry per merge (the two parts joined), then
 * <|startoftext|> and <|endoftext|>. With CLIP's bpe_simple_vocab_16e6.txt.gz (whose first
 * 48894 merges are read) that is 49408 ids, the rows of CLIP's token_embedding.
 *
 * Encoding: clean the text, split it into words, numbers and punctuation runs, map each
 * piece's UTF-8 bytes to byte symbols ("</w>" on the last), apply merges lowest rank first
 * until none applies, emit the ids. What is approximated is said in clip_bpe.c's header.
 *
 * Memory: the tables (clip_bpe: vocabulary strings, string hash, merge-pair hash; 3.3 MB
 * with CLIP's file) are only read once loaded, so any number of callers may share one copy
 * (clip_bpe_cache.h does, per process); each caller keeps its own clip_bpe_scratch, the few
 * KB of working memory that encoding writes. */
#ifndef MPSL_CLIP_BPE_H
#define MPSL_CLIP_BPE_H

#include <stddef.h>
#include <stdint.h>

/* CLIP reads merges[1 : 49152 - 256 - 2 + 1] of the file: at most this many merges. */
#define CLIP_BPE_MAX_MERGES 48894

/* The tables built from a merges file; never written after clip_bpe_load returns. */
typedef struct clip_bpe clip_bpe;

/* One caller's working memory for clip_bpe_encode, grown on demand: zero it before the first
 * use (= {0}) and free it with clip_bpe_scratch_free. One encode at a time per scratch. */
typedef struct {
    uint32_t *cp_a, *cp_b;       // the text as code points while it is cleaned (cap_cp each)
    int64_t cap_cp;
    uint8_t *piece;              // one pre-tokenized piece as UTF-8 bytes (cap_piece)
    int32_t *word;               // its symbols while merging (cap_piece)
    int64_t cap_piece;
} clip_bpe_scratch;

/* Read a merges file in CLIP's format: gzip-compressed UTF-8 text, a "#version" header line,
 * then one merge "a b" per line (lines after the first CLIP_BPE_MAX_MERGES are not read).
 * Returns MPSL_OK with *out set, or with msg (msg_len bytes) filled:
 *   MPSL_ERR_IO       the file cannot be opened or read;
 *   MPSL_ERR_INVALID  not gzip, a corrupt or truncated gzip stream, a missing header, a
 *                     merge line that is not two symbols (the message gives the line);
 *   MPSL_ERR_NOMEM    out of memory. */
int clip_bpe_load(const char *path, clip_bpe **out, char *msg, size_t msg_len);
void clip_bpe_free(clip_bpe *b);

/* Vocabulary size V (ids are in [0, V)), the special ids (V-2 and V-1) and the merge count. */
int32_t clip_bpe_vocab_size(const clip_bpe *b);
int32_t clip_bpe_start_id(const clip_bpe *b);
int32_t clip_bpe_end_id(const clip_bpe *b);
int64_t clip_bpe_n_merges(const clip_bpe *b);

/* Bytes the tables hold (heap blocks of b, the struct included): what one more private load
 * costs, and what sharing saves per extra user. */
size_t clip_bpe_table_bytes(const clip_bpe *b);

/* Token ids of text[0..n) (stopping early at a NUL byte), WITHOUT the start and end tokens,
 * at most max_ids of them written to ids (the rest of the text is not tokenized). Returns
 * the number written, or -1 when out of memory. Reads b only and writes only s and ids, so
 * callers with their own scratch may encode with the same tables at the same time. */
int64_t clip_bpe_encode(const clip_bpe *b, clip_bpe_scratch *s, const uint8_t *text, int64_t n,
                        int32_t *ids, int64_t max_ids);

/* Frees the scratch buffers and zeroes s (ready for reuse); s may be NULL. */
void clip_bpe_scratch_free(clip_bpe_scratch *s);

#endif
