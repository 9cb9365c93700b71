/* format.c: the prepared file. Little-endian throughout.
 *
 *   offset size  field
 *   0      8     magic "MPSLAVF1"
 *   8      4     format version (1)
 *   12     4     CRC32 (zlib) of every byte from offset 16 to the end of the file
 *   16     4     header bytes (256)
 *   20     4     classes (10)
 *   24     8     n_train           32  8  n_test
 *   40     4     image side (28)   44  4  mel_bins   48  4  frames   52  4  text_len (0: none)
 *   56     8     payload bytes (file size - 256)
 *   64     4x6   front end: sample rate, n_fft, win, hop, rates, pitches
 *   88     8     seed              96  8  train_limit   104  8  test_limit (as requested)
 *   112    4x5   voices, mel_bins, frames, text, text_len (generation parameters)
 *   136    8     audio_noise (f64) 144  8  text_noise (f64)
 *   152    8     spectrogram mean  160  8  std (f64: the normalisation applied)
 *   168    32    espeak-ng version (NUL-padded text); the rest of the 256 bytes is zero
 *
 * Payload, for the train split then the test split (N samples, M mel bins, F frames, L text):
 *   labels int32 (N) | images uint8 (N,28,28) | quantisation float32 (N,2) = offset, step |
 *   spectrograms uint8 (N,M,F) | texts int32 (N,L) when L > 0
 * The CRC is zlib's CRC-32, computed with the host's h->files->crc32. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "avf.h"

#define AVF_PER_SAMPLE(M, F, L) (4u + AVF_PIXELS + 8u + (uint64_t)(M) * (F) + 4u * (uint64_t)(L))

uint64_t avf_payload_bytes(const avf_header *hdr)
{
    return ((uint64_t)hdr->n[0] + (uint64_t)hdr->n[1]) *
           AVF_PER_SAMPLE(hdr->mel_bins, hdr->frames, hdr->text_len);
}

/* ------------------------------------------------------------------ little-endian fields */

static void avf_put32(unsigned char *b, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        b[i] = (unsigned char)(v >> (8 * i));
    }
}

static void avf_put64(unsigned char *b, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        b[i] = (unsigned char)(v >> (8 * i));
    }
}

static uint32_t avf_get32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t avf_get64(const unsigned char *b)
{
    return (uint64_t)avf_get32(b) | (uint64_t)avf_get32(b + 4) << 32;
}

static uint64_t avf_f64_bits(double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static double avf_bits_f64(uint64_t u)
{
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static void avf_header_pack(const avf_header *hd, unsigned char *b)
{
    memset(b, 0, AVF_HEADER_BYTES);
    memcpy(b, AVF_MAGIC, 8);
    avf_put32(b + 8, hd->version);
    avf_put32(b + 12, hd->crc);
    avf_put32(b + 16, AVF_HEADER_BYTES);
    avf_put32(b + 20, hd->n_classes);
    avf_put64(b + 24, (uint64_t)hd->n[0]);
    avf_put64(b + 32, (uint64_t)hd->n[1]);
    avf_put32(b + 40, hd->image_side);
    avf_put32(b + 44, hd->mel_bins);
    avf_put32(b + 48, hd->frames);
    avf_put32(b + 52, hd->text_len);
    avf_put64(b + 56, hd->payload_bytes);
    const uint32_t fe[6] = {hd->sample_rate, hd->n_fft, hd->win, hd->hop, hd->n_rates,
                            hd->n_pitches};
    for (int i = 0; i < 6; i++) {
        avf_put32(b + 64 + 4 * i, fe[i]);
    }
    avf_put64(b + 88, hd->gen.seed);
    avf_put64(b + 96, (uint64_t)hd->gen.train_limit);
    avf_put64(b + 104, (uint64_t)hd->gen.test_limit);
    const uint32_t g[5] = {hd->gen.voices, hd->gen.mel_bins, hd->gen.frames, hd->gen.text,
                           hd->gen.text_len};
    for (int i = 0; i < 5; i++) {
        avf_put32(b + 112 + 4 * i, g[i]);
    }
    avf_put64(b + 136, avf_f64_bits(hd->gen.audio_noise));
    avf_put64(b + 144, avf_f64_bits(hd->gen.text_noise));
    avf_put64(b + 152, avf_f64_bits(hd->spec_mean));
    avf_put64(b + 160, avf_f64_bits(hd->spec_std));
    memcpy(b + 168, hd->espeak_version, 31);
}

static void avf_header_unpack(const unsigned char *b, avf_header *hd)
{
    memset(hd, 0, sizeof *hd);
    hd->version = avf_get32(b + 8);
    hd->crc = avf_get32(b + 12);
    hd->n_classes = avf_get32(b + 20);
    hd->n[0] = (int64_t)avf_get64(b + 24);
    hd->n[1] = (int64_t)avf_get64(b + 32);
    hd->image_side = avf_get32(b + 40);
    hd->mel_bins = avf_get32(b + 44);
    hd->frames = avf_get32(b + 48);
    hd->text_len = avf_get32(b + 52);
    hd->payload_bytes = avf_get64(b + 56);
    hd->sample_rate = avf_get32(b + 64);
    hd->n_fft = avf_get32(b + 68);
    hd->win = avf_get32(b + 72);
    hd->hop = avf_get32(b + 76);
    hd->n_rates = avf_get32(b + 80);
    hd->n_pitches = avf_get32(b + 84);
    hd->gen.seed = avf_get64(b + 88);
    hd->gen.train_limit = (int64_t)avf_get64(b + 96);
    hd->gen.test_limit = (int64_t)avf_get64(b + 104);
    hd->gen.voices = avf_get32(b + 112);
    hd->gen.mel_bins = avf_get32(b + 116);
    hd->gen.frames = avf_get32(b + 120);
    hd->gen.text = avf_get32(b + 124);
    hd->gen.text_len = avf_get32(b + 128);
    hd->gen.audio_noise = avf_bits_f64(avf_get64(b + 136));
    hd->gen.text_noise = avf_bits_f64(avf_get64(b + 144));
    hd->spec_mean = avf_bits_f64(avf_get64(b + 152));
    hd->spec_std = avf_bits_f64(avf_get64(b + 160));
    memcpy(hd->espeak_version, b + 168, 31);
}

/* ------------------------------------------------------------------ writing */

typedef struct avf_writer {
    const mpsl_host *h;
    int fd;
    uint32_t crc;
    int failed; /* errno of the first failed write, 0 when fine */
} avf_writer;

static void avf_write_bytes(avf_writer *w, const void *data, size_t n)
{
    const unsigned char *p = data;
    w->crc = w->h->files->crc32(w->crc, p, n);
    while (n > 0 && !w->failed) {
        ssize_t r = write(w->fd, p, n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            w->failed = r < 0 ? errno : EIO;
            return;
        }
        p += r;
        n -= (size_t)r;
    }
}

/* 32-bit values (int32 or float32) as little-endian, through a small buffer. */
static void avf_write_u32s(avf_writer *w, const void *data, size_t n)
{
    unsigned char buf[4096];
    const unsigned char *src = data;
    while (n > 0) {
        size_t k = n < sizeof buf / 4 ? n : sizeof buf / 4;
        for (size_t i = 0; i < k; i++) {
            uint32_t v;
            memcpy(&v, src + 4 * i, 4);
            avf_put32(buf + 4 * i, v);
        }
        avf_write_bytes(w, buf, 4 * k);
        src += 4 * k;
        n -= k;
    }
}

int avf_file_write(const mpsl_host *h, const char *path, const avf_data *d, mpsl_error *err)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    avf_writer w = {h, open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), 0, 0};
    if (w.fd < 0) {
        h->error_set(err, "av_fashion_mnist: cannot create %s: %s", tmp, strerror(errno));
        return MPSL_ERR_IO;
    }
    avf_header hd = d->hdr;
    hd.payload_bytes = avf_payload_bytes(&hd);
    unsigned char b[AVF_HEADER_BYTES];
    avf_header_pack(&hd, b);
    if (write(w.fd, b, 16) != 16) {
        w.failed = errno ? errno : EIO;
    }
    w.crc = 0; /* CRC-32 starts from 0 */
    avf_write_bytes(&w, b + 16, AVF_HEADER_BYTES - 16);
    const uint64_t MF = (uint64_t)hd.mel_bins * hd.frames;
    for (int sp = 0; sp < 2; sp++) {
        const avf_split_data *s = &d->split[sp];
        size_t n = (size_t)s->n;
        avf_write_u32s(&w, s->labels, n);
        avf_write_bytes(&w, s->images, n * AVF_PIXELS);
        avf_write_u32s(&w, s->spec_q, 2 * n);
        avf_write_bytes(&w, s->spec, n * MF);
        if (hd.text_len) {
            avf_write_u32s(&w, s->text, n * hd.text_len);
        }
    }
    /* The CRC covers bytes 16.. only, so it can be written last, in place. */
    unsigned char c[4];
    avf_put32(c, w.crc);
    if (!w.failed && pwrite(w.fd, c, 4, 12) != 4) {
        w.failed = errno ? errno : EIO;
    }
    if (!w.failed && fsync(w.fd) != 0) {
        w.failed = errno;
    }
    if (close(w.fd) != 0 && !w.failed) {
        w.failed = errno;
    }
    if (!w.failed && rename(tmp, path) != 0) {
        w.failed = errno;
    }
    if (w.failed) {
        h->error_set(err, "av_fashion_mnist: cannot write %s: %s", path, strerror(w.failed));
        unlink(tmp);
        return MPSL_ERR_IO;
    }
    return MPSL_OK;
}

/* ------------------------------------------------------------------ reading */

typedef struct avf_reader {
    int fd;
    uint32_t crc;
    const char *path;
} avf_reader;

/* Read n bytes into dst (or only checksum them when dst is NULL). */
static int avf_read_bytes(const mpsl_host *h, avf_reader *r, void *dst, uint64_t n,
                          mpsl_error *err)
{
    unsigned char scratch[1 << 16];
    unsigned char *p = dst;
    while (n > 0) {
        size_t want = dst ? (n > (1u << 30) ? (1u << 30) : (size_t)n)
                          : (n > sizeof scratch ? sizeof scratch : (size_t)n);
        unsigned char *into = dst ? p : scratch;
        ssize_t got = read(r->fd, into, want);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            h->error_set(err, "av_fashion_mnist: cannot read %s: %s", r->path,
                         got < 0 ? strerror(errno) : "unexpected end of file");
            return MPSL_ERR_IO;
        }
        r->crc = h->files->crc32(r->crc, into, (size_t)got);
        if (dst) {
            p += got;
        }
        n -= (uint64_t)got;
    }
    return MPSL_OK;
}

/* n 32-bit little-endian values into dst (host order), or only checksummed. */
static int avf_read_u32s(const mpsl_host *h, avf_reader *r, void *dst, uint64_t n,
                         mpsl_error *err)
{
    int rc = avf_read_bytes(h, r, dst, 4 * n, err);
    if (rc == MPSL_OK && dst) {
        unsigned char *b = dst;
        for (uint64_t i = 0; i < n; i++) {
            uint32_t v = avf_get32(b + 4 * i);
            memcpy(b + 4 * i, &v, 4);
        }
    }
    return rc;
}

/* Everything about the header that can be checked without the payload. */
static int avf_check_header(const mpsl_host *h, const char *path, const unsigned char *b,
                            uint64_t file_size, avf_header *hd, mpsl_error *err)
{
    if (memcmp(b, AVF_MAGIC, 8) != 0) {
        char shown[9];
        for (int i = 0; i < 8; i++) {
            shown[i] = b[i] >= 32 && b[i] < 127 ? (char)b[i] : '?';
        }
        shown[8] = '\0';
        h->error_set(err, "av_fashion_mnist: %s is not a prepared av_fashion_mnist file (magic "
                          "\"%s\", expected \"%s\")",
                     path, shown, AVF_MAGIC);
        return MPSL_ERR_INVALID;
    }
    avf_header_unpack(b, hd);
    if (hd->version > AVF_VERSION) {
        h->error_set(err, "av_fashion_mnist: %s has format version %u, newer than this plugin "
                          "reads (%u): update mpsl, or delete the file to prepare it again",
                     path, hd->version, AVF_VERSION);
        return MPSL_ERR_INVALID;
    }
    if (hd->version == 0) {
        h->error_set(err, "av_fashion_mnist: %s has format version 0, which never existed",
                     path);
        return MPSL_ERR_INVALID;
    }
    uint32_t hb = avf_get32(b + 16);
    if (hb != AVF_HEADER_BYTES || hd->n_classes != AVF_CLASSES ||
        hd->image_side != AVF_SIDE || hd->n[0] < 1 || hd->n[0] > AVF_TRAIN_MAX ||
        hd->n[1] < 1 || hd->n[1] > AVF_TEST_MAX || hd->mel_bins < 1 || hd->mel_bins > 4096 ||
        hd->frames < 1 || hd->frames > 65536 || hd->text_len > 65536) {
        h->error_set(err, "av_fashion_mnist: %s has impossible sizes in its header (header "
                          "bytes %u, classes %u, image side %u, n_train %lld, n_test %lld, "
                          "mel_bins %u, frames %u, text_len %u)",
                     path, hb, hd->n_classes, hd->image_side, (long long)hd->n[0],
                     (long long)hd->n[1], hd->mel_bins, hd->frames, hd->text_len);
        return MPSL_ERR_INVALID;
    }
    uint64_t need = avf_payload_bytes(hd);
    if (hd->payload_bytes != need) {
        h->error_set(err, "av_fashion_mnist: %s does not match its own header: its sizes "
                          "(n_train %lld, n_test %lld, mel_bins %u, frames %u, text_len %u) "
                          "need %llu payload bytes, its payload size field says %llu",
                     path, (long long)hd->n[0], (long long)hd->n[1], hd->mel_bins,
                     hd->frames, hd->text_len, (unsigned long long)need,
                     (unsigned long long)hd->payload_bytes);
        return MPSL_ERR_INVALID;
    }
    uint64_t want = AVF_HEADER_BYTES + need;
    if (file_size != want) {
        h->error_set(err, "av_fashion_mnist: %s %s: its header's sizes (n_train %lld, n_test "
                          "%lld, mel_bins %u, frames %u, text_len %u) make %llu bytes, the "
                          "file has %llu",
                     path, file_size < want ? "is truncated" : "is longer than its header says",
                     (long long)hd->n[0], (long long)hd->n[1], hd->mel_bins, hd->frames,
                     hd->text_len, (unsigned long long)want, (unsigned long long)file_size);
        return MPSL_ERR_INVALID;
    }
    return MPSL_OK;
}

/* Open path, read and check its header; fd stays open on success. */
static int avf_open_checked(const mpsl_host *h, const char *path, int *fd,
                            unsigned char *b, avf_header *hd, mpsl_error *err)
{
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) {
        h->error_set(err, "av_fashion_mnist: cannot open %s: %s", path, strerror(errno));
        return MPSL_ERR_IO;
    }
    struct stat st;
    int rc = MPSL_ERR_IO;
    if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        h->error_set(err, "av_fashion_mnist: %s is not a regular file", path);
    } else if ((uint64_t)st.st_size < AVF_HEADER_BYTES) {
        h->error_set(err, "av_fashion_mnist: %s is truncated: %lld bytes, shorter than its "
                          "%u-byte header",
                     path, (long long)st.st_size, AVF_HEADER_BYTES);
        rc = MPSL_ERR_INVALID;
    } else if (pread(*fd, b, AVF_HEADER_BYTES, 0) != AVF_HEADER_BYTES) {
        h->error_set(err, "av_fashion_mnist: cannot read the header of %s", path);
    } else {
        rc = avf_check_header(h, path, b, (uint64_t)st.st_size, hd, err);
    }
    if (rc != MPSL_OK) {
        close(*fd);
        *fd = -1;
    }
    return rc;
}

int avf_file_read_header(const mpsl_host *h, const char *path, avf_header *hdr, mpsl_error *err)
{
    unsigned char b[AVF_HEADER_BYTES];
    int fd;
    int rc = avf_open_checked(h, path, &fd, b, hdr, err);
    if (rc == MPSL_OK) {
        close(fd);
    }
    return rc;
}

int avf_file_read(const mpsl_host *h, const char *path, avf_data *d, int header_only,
                  mpsl_error *err)
{
    memset(d, 0, sizeof *d);
    unsigned char b[AVF_HEADER_BYTES];
    avf_reader r = {-1, 0, path};
    int rc = avf_open_checked(h, path, &r.fd, b, &d->hdr, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    const avf_header *hd = &d->hdr;
    r.crc = h->files->crc32(0, b + 16, AVF_HEADER_BYTES - 16);
    if (lseek(r.fd, AVF_HEADER_BYTES, SEEK_SET) < 0) {
        h->error_set(err, "av_fashion_mnist: cannot seek in %s: %s", path, strerror(errno));
        rc = MPSL_ERR_IO;
        goto done;
    }
    const uint64_t MF = (uint64_t)hd->mel_bins * hd->frames, L = hd->text_len;
    for (int sp = 0; sp < 2; sp++) {
        avf_split_data *s = &d->split[sp];
        uint64_t n = (uint64_t)hd->n[sp];
        if (!header_only) {
            s->n = (int64_t)n;
            s->labels = h->alloc(n * sizeof *s->labels);
            s->images = h->alloc(n * AVF_PIXELS);
            s->spec_q = h->alloc(n * 2 * sizeof *s->spec_q);
            s->spec = h->alloc(n * MF);
            s->text = L ? h->alloc(n * L * sizeof *s->text) : NULL;
            if (!s->labels || !s->images || !s->spec_q || !s->spec || (L && !s->text)) {
                h->error_set(err, "av_fashion_mnist: out of memory loading %s", path);
                rc = MPSL_ERR_NOMEM;
                goto done;
            }
        }
        if ((rc = avf_read_u32s(h, &r, s->labels, n, err)) != MPSL_OK ||
            (rc = avf_read_bytes(h, &r, s->images, n * AVF_PIXELS, err)) != MPSL_OK ||
            (rc = avf_read_u32s(h, &r, s->spec_q, 2 * n, err)) != MPSL_OK ||
            (rc = avf_read_bytes(h, &r, s->spec, n * MF, err)) != MPSL_OK ||
            (L && (rc = avf_read_u32s(h, &r, s->text, n * L, err)) != MPSL_OK)) {
            goto done;
        }
    }
    if (r.crc != hd->crc) {
        h->error_set(err, "av_fashion_mnist: %s is corrupt: CRC32 %08x of its contents, the "
                          "header says %08x (delete it, or run `mpsl prepare`, to generate it "
                          "again)",
                     path, (unsigned)r.crc, hd->crc);
        rc = MPSL_ERR_INVALID;
        goto done;
    }
    for (int sp = 0; sp < 2 && !header_only; sp++) {
        for (int64_t i = 0; i < d->split[sp].n; i++) {
            int32_t y = d->split[sp].labels[i];
            if (y < 0 || y >= AVF_CLASSES) {
                h->error_set(err, "av_fashion_mnist: %s: label %d of %s sample %lld is outside "
                                  "0..%d",
                             path, y, sp ? "test" : "train", (long long)i, AVF_CLASSES - 1);
                rc = MPSL_ERR_INVALID;
                goto done;
            }
        }
    }
done:
    close(r.fd);
    if (rc != MPSL_OK) {
        avf_data_free(h, d);
    }
    return rc;
}

void avf_data_free(const mpsl_host *h, avf_data *d)
{
    for (int sp = 0; sp < 2; sp++) {
        avf_split_data *s = &d->split[sp];
        h->free(s->labels);
        h->free(s->images);
        h->free(s->spec_q);
        h->free(s->spec);
        h->free(s->text);
        memset(s, 0, sizeof *s);
    }
}

int avf_gen_compare(const avf_header *hd, const avf_gen *want, char *what, size_t size)
{
    const avf_gen *g = &hd->gen;
#define AVF_DIFF(cond, ...)                       \
    do {                                          \
        if (cond) {                               \
            snprintf(what, size, __VA_ARGS__);    \
            return 1;                             \
        }                                         \
    } while (0)
    AVF_DIFF(hd->sample_rate != AVF_RATE || hd->n_fft != AVF_NFFT || hd->win != AVF_WIN ||
                 hd->hop != AVF_HOP || hd->n_rates != AVF_N_RATES ||
                 hd->n_pitches != AVF_N_PITCHES,
             "the audio front end differs (file: %u Hz, n_fft %u, win %u, hop %u, %u rates, %u "
             "pitches; this plugin: %d Hz, n_fft %d, win %d, hop %d, %d rates, %d pitches)",
             hd->sample_rate, hd->n_fft, hd->win, hd->hop, hd->n_rates, hd->n_pitches, AVF_RATE,
             AVF_NFFT, AVF_WIN, AVF_HOP, AVF_N_RATES, AVF_N_PITCHES);
    AVF_DIFF(g->seed != want->seed, "seed = %llu in the file, %llu requested",
             (unsigned long long)g->seed, (unsigned long long)want->seed);
    AVF_DIFF(g->train_limit != want->train_limit, "train_limit = %lld in the file, %lld requested",
             (long long)g->train_limit, (long long)want->train_limit);
    AVF_DIFF(g->test_limit != want->test_limit, "test_limit = %lld in the file, %lld requested",
             (long long)g->test_limit, (long long)want->test_limit);
    AVF_DIFF(g->voices != want->voices, "voices = %u in the file, %u requested", g->voices,
             want->voices);
    AVF_DIFF(g->mel_bins != want->mel_bins || hd->mel_bins != want->mel_bins,
             "mel_bins = %u in the file, %u requested", hd->mel_bins, want->mel_bins);
    AVF_DIFF(g->frames != want->frames || hd->frames != want->frames,
             "frames = %u in the file, %u requested", hd->frames, want->frames);
    AVF_DIFF(g->audio_noise != want->audio_noise, "audio_noise = %g in the file, %g requested",
             g->audio_noise, want->audio_noise);
    AVF_DIFF(g->text != want->text, "text = %s in the file, %s requested",
             g->text ? "true" : "false", want->text ? "true" : "false");
    AVF_DIFF(g->text_len != want->text_len || hd->text_len != want->text_len,
             "text_len = %u in the file, %u requested", hd->text_len, want->text_len);
    AVF_DIFF(g->text_noise != want->text_noise, "text_noise = %g in the file, %g requested",
             g->text_noise, want->text_noise);
    AVF_DIFF((want->train_limit && hd->n[0] != want->train_limit) ||
                 (want->test_limit && hd->n[1] != want->test_limit),
             "the file holds %lld train and %lld test samples, train_limit %lld and test_limit "
             "%lld requested",
             (long long)hd->n[0], (long long)hd->n[1], (long long)want->train_limit,
             (long long)want->test_limit);
#undef AVF_DIFF
    return 0;
}
