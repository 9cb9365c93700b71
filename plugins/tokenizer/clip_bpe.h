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
 * until none applies, emit the ids. What is approximated is said in clip_bpe.c's header. */
#ifndef MPSL_CLIP_BPE_H
#define MPSL_CLIP_BPE_H

#include <stddef.h>
#include <stdint.h>

/* CLIP reads merges[1 : 49152 - 256 - 2 + 1] of the file: at most this many merges. */
#define CLIP_BPE_MAX_MERGES 48894

typedef struct clip_bpe clip_bpe;

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

/* Token ids of text[0..n) (stopping early at a NUL byte), WITHOUT the start and end tokens,
 * at most max_ids of them written to ids (the rest of the text is not tokenized). Returns
 * the number written, or -1 when out of memory. Keeps scratch buffers in b: one call at a
 * time per clip_bpe. */
int64_t clip_bpe_encode(clip_bpe *b, const uint8_t *text, int64_t n, int32_t *ids,
                        int64_t max_ids);

#endif
