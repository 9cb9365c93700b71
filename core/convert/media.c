/* media.c: FFmpeg decoding, a CSV reader and the conversion pipeline of the audio/video
 * converters (see media.h). */
#include "convert/media.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

#include "convert/writer.h"
#include "util/half.h"
#include "util/melspec.h"
#include "util/util.h"

#define AV_MAX_SECONDS 3600.0

/* ================================================================ decoding */

struct av_media {
    char *path;
    AVFormatContext *fmt;
    int audio_idx, video_idx;
};

static const char *av_errstr(int code, char *buf, size_t len)
{
    if (av_strerror(code, buf, len) < 0) {
        snprintf(buf, len, "FFmpeg error %d", code);
    }
    return buf;
}

int av_media_open(const char *path, av_media **out, mpsl_error *err)
{
    *out = NULL;
    char eb[128];
    struct stat st;
    if (stat(path, &st) != 0) {
        return mpsl_errs(err, MPSL_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        return mpsl_errs(err, MPSL_ERR_IO, "%s: not a regular file", path);
    }
    av_media *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", path);
    }
    int rc = avformat_open_input(&m->fmt, path, NULL, NULL);
    if (rc < 0) {
        av_media_close(m);
        return mpsl_errs(err, MPSL_ERR_INVALID, "%s: not a media file FFmpeg can read (%s)",
                         path, av_errstr(rc, eb, sizeof eb));
    }
    rc = avformat_find_stream_info(m->fmt, NULL);
    if (rc < 0) {
        av_media_close(m);
        return mpsl_errs(err, MPSL_ERR_INVALID, "%s: cannot read the streams (%s)", path,
                         av_errstr(rc, eb, sizeof eb));
    }
    m->audio_idx = av_find_best_stream(m->fmt, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    m->video_idx = av_find_best_stream(m->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    /* A cover picture is not a video track. */
    if (m->video_idx >= 0 &&
        (m->fmt->streams[m->video_idx]->disposition & AV_DISPOSITION_ATTACHED_PIC)) {
        m->video_idx = -1;
    }
    *out = m;
    return MPSL_OK;
}

void av_media_close(av_media *m)
{
    if (!m) {
        return;
    }
    avformat_close_input(&m->fmt);
    free(m->path);
    free(m);
}

int av_media_has_audio(const av_media *m) { return m->audio_idx >= 0; }
int av_media_has_video(const av_media *m) { return m->video_idx >= 0; }

double av_media_duration(const av_media *m)
{
    if (m->fmt->duration > 0 && m->fmt->duration != AV_NOPTS_VALUE) {
        return (double)m->fmt->duration / AV_TIME_BASE;
    }
    double best = 0.0;
    for (unsigned i = 0; i < m->fmt->nb_streams; i++) {
        const AVStream *s = m->fmt->streams[i];
        if (s->duration > 0 && s->duration != AV_NOPTS_VALUE) {
            double d = (double)s->duration * av_q2d(s->time_base);
            best = d > best ? d : best;
        }
    }
    return best;
}

/* A decoder for stream idx, opened single-threaded (the converters decode clips in parallel). */
static int open_decoder(av_media *m, int idx, AVCodecContext **out, mpsl_error *err)
{
    char eb[128];
    *out = NULL;
    const AVStream *st = m->fmt->streams[idx];
    const AVCodec *codec = avcodec_find_decoder(st->codecpar->codec_id);
    if (!codec) {
        return mpsl_err(err, "%s: no decoder for the %s codec '%s'", m->path,
                        av_get_media_type_string(st->codecpar->codec_type),
                        avcodec_get_name(st->codecpar->codec_id));
    }
    AVCodecContext *c = avcodec_alloc_context3(codec);
    if (!c) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", m->path);
    }
    int rc = avcodec_parameters_to_context(c, st->codecpar);
    if (rc >= 0) {
        c->thread_count = 1;
        c->pkt_timebase = st->time_base;
        rc = avcodec_open2(c, codec, NULL);
    }
    if (rc < 0) {
        avcodec_free_context(&c);
        return mpsl_err(err, "%s: cannot open the %s decoder (%s)", m->path, codec->name,
                        av_errstr(rc, eb, sizeof eb));
    }
    *out = c;
    return MPSL_OK;
}

/* Growing float buffer for decoded audio. */
typedef struct fbuf {
    float *p;
    int64_t n, cap;
} fbuf;

static int fbuf_reserve(fbuf *b, int64_t more)
{
    if (b->n + more <= b->cap) {
        return 0;
    }
    int64_t cap = b->cap ? b->cap : 16000;
    while (cap < b->n + more) {
        cap *= 2;
    }
    float *p = realloc(b->p, (size_t)cap * sizeof *p);
    if (!p) {
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

/* Resample one decoded frame (or flush with fr == NULL) into b. */
static int resample_into(SwrContext *swr, const AVFrame *fr, fbuf *b)
{
    int in_n = fr ? fr->nb_samples : 0;
    int out_max = swr_get_out_samples(swr, in_n);
    if (out_max < 0) {
        return out_max;
    }
    if (fbuf_reserve(b, out_max + 32) != 0) {
        return AVERROR(ENOMEM);
    }
    uint8_t *outp = (uint8_t *)(b->p + b->n);
    int got = swr_convert(swr, &outp, out_max + 32, fr ? (const uint8_t **)fr->extended_data : NULL,
                          in_n);
    if (got < 0) {
        return got;
    }
    b->n += got;
    return 0;
}

int av_media_audio(av_media *m, double start, double dur, float **wave, int64_t *n,
                   mpsl_error *err)
{
    *wave = NULL;
    *n = 0;
    char eb[128];
    if (m->audio_idx < 0) {
        return mpsl_err(err, "%s: no audio stream", m->path);
    }
    AVCodecContext *dec = NULL;
    int rc = open_decoder(m, m->audio_idx, &dec, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    AVPacket *pkt = av_packet_alloc();
    AVFrame *fr = av_frame_alloc();
    SwrContext *swr = NULL;
    fbuf b = {0};
    int status = MPSL_OK;
    if (!pkt || !fr) {
        status = mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", m->path);
        goto done;
    }
    /* From the start: a seek would need every demuxer's cooperation for little gain. */
    av_seek_frame(m->fmt, -1, INT64_MIN, AVSEEK_FLAG_BACKWARD);
    for (unsigned i = 0; i < m->fmt->nb_streams; i++) {
        m->fmt->streams[i]->discard = (int)i == m->audio_idx ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
    }
    int64_t cap = (int64_t)((start + (dur > 0 ? dur : AV_MAX_SECONDS)) * MPSL_MEL_RATE) + 1;
    if (cap > (int64_t)(AV_MAX_SECONDS * MPSL_MEL_RATE)) {
        cap = (int64_t)(AV_MAX_SECONDS * MPSL_MEL_RATE);
    }
    int decode_errors = 0, eof = 0;
    while (!eof && b.n < cap) {
        rc = av_read_frame(m->fmt, pkt);
        if (rc == AVERROR_EOF) {
            eof = 1;
            rc = avcodec_send_packet(dec, NULL);
        } else if (rc < 0) {
            status = mpsl_err(err, "%s: read error (%s)", m->path, av_errstr(rc, eb, sizeof eb));
            goto done;
        } else if (pkt->stream_index != m->audio_idx) {
            av_packet_unref(pkt);
            continue;
        } else {
            rc = avcodec_send_packet(dec, pkt);
            av_packet_unref(pkt);
            if (rc < 0 && rc != AVERROR(EAGAIN)) {
                decode_errors++;   /* a damaged packet: FFmpeg conceals; count it */
                continue;
            }
        }
        while ((rc = avcodec_receive_frame(dec, fr)) >= 0) {
            if (!swr) {
                AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
                AVChannelLayout in_layout = {0};
                if (fr->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC ||
                    av_channel_layout_check(&fr->ch_layout) == 0) {
                    av_channel_layout_default(&in_layout,
                                              fr->ch_layout.nb_channels > 0 ? fr->ch_layout.nb_channels
                                                                            : 1);
                } else {
                    av_channel_layout_copy(&in_layout, &fr->ch_layout);
                }
                rc = swr_alloc_set_opts2(&swr, &mono, AV_SAMPLE_FMT_FLT, MPSL_MEL_RATE,
                                         &in_layout,
                                         (enum AVSampleFormat)fr->format, fr->sample_rate, 0,
                                         NULL);
                av_channel_layout_uninit(&in_layout);
                if (rc < 0 || (rc = swr_init(swr)) < 0) {
                    status = mpsl_err(err, "%s: cannot resample the audio (%d Hz, %d channels) "
                                           "to 16 kHz mono (%s)", m->path, fr->sample_rate,
                                      fr->ch_layout.nb_channels, av_errstr(rc, eb, sizeof eb));
                    goto done;
                }
            }
            rc = resample_into(swr, fr, &b);
            av_frame_unref(fr);
            if (rc < 0) {
                status = mpsl_err(err, "%s: audio resampling failed (%s)", m->path,
                                  av_errstr(rc, eb, sizeof eb));
                goto done;
            }
        }
        if (rc != AVERROR(EAGAIN) && rc != AVERROR_EOF) {
            decode_errors++;
        }
    }
    if (swr && (rc = resample_into(swr, NULL, &b)) < 0) {
        status = mpsl_err(err, "%s: audio resampling failed (%s)", m->path,
                          av_errstr(rc, eb, sizeof eb));
        goto done;
    }
    if (b.n == 0) {
        status = mpsl_err(err, "%s: the audio stream decodes to no samples%s", m->path,
                          decode_errors ? " (decoding errors: the file is damaged)" : "");
        goto done;
    }
    /* Cut [start, start + dur). */
    int64_t s0 = (int64_t)llround(start * MPSL_MEL_RATE);
    s0 = s0 < 0 ? 0 : s0 > b.n ? b.n : s0;
    int64_t len = b.n - s0;
    if (dur > 0 && len > (int64_t)llround(dur * MPSL_MEL_RATE)) {
        len = (int64_t)llround(dur * MPSL_MEL_RATE);
    }
    if (len > cap) {
        len = cap;
    }
    if (s0 > 0) {
        memmove(b.p, b.p + s0, (size_t)len * sizeof *b.p);
    }
    *wave = b.p;
    *n = len;
    b.p = NULL;
done:
    for (unsigned i = 0; i < m->fmt->nb_streams; i++) {
        m->fmt->streams[i]->discard = AVDISCARD_DEFAULT;
    }
    free(b.p);
    swr_free(&swr);
    av_frame_free(&fr);
    av_packet_free(&pkt);
    avcodec_free_context(&dec);
    return status;
}

/* A decoded frame to RGB24 at its own size, then crop + resize through the writer's helper. */
static int frame_to_square(const av_media *m, const AVFrame *fr, int size, uint8_t *out,
                           mpsl_error *err)
{
    int w = fr->width, h = fr->height;
    if (w <= 0 || h <= 0) {
        return mpsl_err(err, "%s: a video frame of size %dx%d", m->path, w, h);
    }
    struct SwsContext *sws = sws_getContext(w, h, (enum AVPixelFormat)fr->format, w, h,
                                            AV_PIX_FMT_RGB24, SWS_POINT, NULL, NULL, NULL);
    uint8_t *rgb = malloc((size_t)w * h * 3);
    if (!sws || !rgb) {
        sws_freeContext(sws);
        free(rgb);
        return mpsl_err(err, "%s: cannot convert %s frames to RGB", m->path,
                        av_get_pix_fmt_name((enum AVPixelFormat)fr->format)
                            ? av_get_pix_fmt_name((enum AVPixelFormat)fr->format) : "?");
    }
    uint8_t *dst[4] = {rgb, NULL, NULL, NULL};
    int dst_stride[4] = {3 * w, 0, 0, 0};
    sws_scale(sws, (const uint8_t *const *)fr->data, fr->linesize, 0, h, dst, dst_stride);
    sws_freeContext(sws);
    int rc = prep_image_resize(rgb, w, h, size, out, err);
    free(rgb);
    if (rc != MPSL_OK) {
        mpsl_err_prefix(err, "%s", m->path);
    }
    return rc;
}

/* Decode the frame shown at ts (stream time base): seek back to a key frame before it, then
 * decode until a frame's timestamp reaches ts; the last frame when the clip ends first.
 * from_start: decode from the beginning without seeking (the fallback). best receives a
 * reference; returns 1 when a frame was found, 0 when none, < 0 on a hard error. */
static int decode_at(av_media *m, AVCodecContext *dec, int64_t ts, int from_start,
                     AVFrame *best)
{
    const int vi = m->video_idx;
    if (from_start) {
        if (av_seek_frame(m->fmt, -1, INT64_MIN, AVSEEK_FLAG_BACKWARD) < 0) {
            avformat_seek_file(m->fmt, -1, INT64_MIN, 0, 0, 0);
        }
    } else if (av_seek_frame(m->fmt, vi, ts, AVSEEK_FLAG_BACKWARD) < 0) {
        return 0;
    }
    avcodec_flush_buffers(dec);
    AVPacket *pkt = av_packet_alloc();
    AVFrame *fr = av_frame_alloc();
    if (!pkt || !fr) {
        av_packet_free(&pkt);
        av_frame_free(&fr);
        return AVERROR(ENOMEM);
    }
    int found = 0, done = 0, eof = 0, rc;
    av_frame_unref(best);
    while (!done) {
        if (!eof) {
            rc = av_read_frame(m->fmt, pkt);
            if (rc < 0) {
                eof = 1;
                avcodec_send_packet(dec, NULL);
            } else if (pkt->stream_index != vi) {
                av_packet_unref(pkt);
                continue;
            } else {
                avcodec_send_packet(dec, pkt);  /* a damaged packet: try the next */
                av_packet_unref(pkt);
            }
        }
        while ((rc = avcodec_receive_frame(dec, fr)) >= 0) {
            int64_t pts = fr->best_effort_timestamp;
            av_frame_unref(best);
            av_frame_move_ref(best, fr);
            found = 1;
            if (pts != AV_NOPTS_VALUE && pts >= ts) {
                done = 1;
                break;
            }
        }
        if (eof && rc != AVERROR(EAGAIN) && !done) {
            done = 1;   /* AVERROR_EOF (flushed) or a decoder error at the end */
        }
    }
    av_packet_free(&pkt);
    av_frame_free(&fr);
    return found;
}

int av_media_frames(av_media *m, const double *times, int n_times, int size, uint8_t *out,
                    mpsl_error *err)
{
    if (m->video_idx < 0) {
        return mpsl_err(err, "%s: no video stream", m->path);
    }
    AVCodecContext *dec = NULL;
    int rc = open_decoder(m, m->video_idx, &dec, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    for (unsigned i = 0; i < m->fmt->nb_streams; i++) {
        m->fmt->streams[i]->discard = (int)i == m->video_idx ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
    }
    const AVStream *st = m->fmt->streams[m->video_idx];
    int64_t t0 = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
    AVFrame *best = av_frame_alloc();
    int status = best ? MPSL_OK : mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", m->path);
    for (int i = 0; status == MPSL_OK && i < n_times; i++) {
        double t = times[i] > 0 ? times[i] : 0;
        int64_t ts = t0 + (int64_t)llround(t / av_q2d(st->time_base));
        int found = decode_at(m, dec, ts, 0, best);
        if (found <= 0) {
            found = decode_at(m, dec, ts, 1, best);   /* no index or a bad seek: from 0 */
        }
        if (found < 0) {
            status = mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", m->path);
        } else if (found == 0) {
            status = mpsl_err(err, "%s: no video frame could be decoded (damaged file?)",
                              m->path);
        } else {
            status = frame_to_square(m, best, size, out + (size_t)i * 3 * size * size, err);
        }
    }
    for (unsigned i = 0; i < m->fmt->nb_streams; i++) {
        m->fmt->streams[i]->discard = AVDISCARD_DEFAULT;
    }
    av_frame_free(&best);
    avcodec_free_context(&dec);
    return status;
}

/* ================================================================ CSV */

struct av_csv {
    char *path;
    char *data;
    size_t len, pos;
    int64_t line;            /* line number at pos (1-based) */
    char *field;             /* the current record's text, NUL-separated */
    size_t field_cap;
    char **fields;
    int n_fields, fields_cap;
};

int av_csv_open(const char *path, av_csv **out, mpsl_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        return mpsl_errs(err, MPSL_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
    }
    av_csv *c = calloc(1, sizeof *c);
    size_t cap = 1 << 16;
    if (c) {
        c->data = malloc(cap);
        c->path = strdup(path);
    }
    if (!c || !c->data || !c->path) {
        fclose(f);
        av_csv_close(c);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t got;
    while ((got = fread(c->data + c->len, 1, cap - c->len, f)) > 0) {
        c->len += got;
        if (c->len == cap) {
            char *p = realloc(c->data, cap * 2);
            if (!p) {
                fclose(f);
                av_csv_close(c);
                return mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", path);
            }
            c->data = p;
            cap *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        av_csv_close(c);
        return mpsl_errs(err, MPSL_ERR_IO, "%s: read error", path);
    }
    if (c->len >= 3 && memcmp(c->data, "\xEF\xBB\xBF", 3) == 0) {
        c->pos = 3;
    }
    c->line = 1;
    *out = c;
    return MPSL_OK;
}

void av_csv_close(av_csv *c)
{
    if (!c) {
        return;
    }
    free(c->path);
    free(c->data);
    free(c->field);
    free(c->fields);
    free(c);
}

static int csv_put(av_csv *c, size_t *used, char ch)
{
    if (*used + 1 >= c->field_cap) {
        size_t cap = c->field_cap ? c->field_cap * 2 : 256;
        char *p = realloc(c->field, cap);
        if (!p) {
            return -1;
        }
        c->field = p;
        c->field_cap = cap;
    }
    c->field[(*used)++] = ch;
    return 0;
}

int av_csv_next(av_csv *c, char ***fields, int *n, int64_t *line, mpsl_error *err)
{
    /* skip empty lines */
    while (c->pos < c->len && (c->data[c->pos] == '\n' || c->data[c->pos] == '\r')) {
        if (c->data[c->pos] == '\n') {
            c->line++;
        }
        c->pos++;
    }
    *line = c->line;
    if (c->pos >= c->len) {
        return 0;
    }
    size_t used = 0;
    int nf = 0;
    size_t starts[1024];
    int record_done = 0;
    while (!record_done) {
        if (nf == (int)(sizeof starts / sizeof starts[0])) {
            return mpsl_err(err, "%s:%lld: more than %d fields in a record", c->path,
                            (long long)*line, nf);
        }
        starts[nf++] = used;
        if (c->pos < c->len && c->data[c->pos] == '"') {
            c->pos++;
            for (;;) {
                if (c->pos >= c->len) {
                    return mpsl_err(err, "%s:%lld: unterminated quoted field (a \" that is "
                                         "never closed)", c->path, (long long)*line);
                }
                char ch = c->data[c->pos++];
                if (ch == '"') {
                    if (c->pos < c->len && c->data[c->pos] == '"') {
                        c->pos++;
                    } else {
                        break;
                    }
                } else if (ch == '\n') {
                    c->line++;
                }
                if (csv_put(c, &used, ch) != 0) {
                    return mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", c->path);
                }
            }
            /* after the closing quote: a separator, the end of the record or of the file */
            if (c->pos < c->len && c->data[c->pos] == '\r' && c->pos + 1 < c->len &&
                c->data[c->pos + 1] == '\n') {
                c->pos++;
            }
            if (c->pos < c->len && c->data[c->pos] != ',' && c->data[c->pos] != '\n') {
                return mpsl_err(err, "%s:%lld: unexpected text after a closing quote (quotes "
                                     "inside a field must be doubled)", c->path,
                                (long long)c->line);
            }
        } else {
            while (c->pos < c->len && c->data[c->pos] != ',' && c->data[c->pos] != '\n') {
                char ch = c->data[c->pos];
                if (ch == '\r' && (c->pos + 1 >= c->len || c->data[c->pos + 1] == '\n')) {
                    c->pos++;
                    continue;
                }
                if (csv_put(c, &used, ch) != 0) {
                    return mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", c->path);
                }
                c->pos++;
            }
        }
        if (csv_put(c, &used, '\0') != 0) {
            return mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", c->path);
        }
        if (c->pos >= c->len) {
            record_done = 1;
        } else if (c->data[c->pos] == '\n') {
            c->pos++;
            c->line++;
            record_done = 1;
        } else {
            c->pos++;   /* ',' */
        }
    }
    if (nf > c->fields_cap) {
        char **p = realloc(c->fields, (size_t)nf * sizeof *p);
        if (!p) {
            return mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", c->path);
        }
        c->fields = p;
        c->fields_cap = nf;
    }
    for (int i = 0; i < nf; i++) {
        c->fields[i] = c->field + starts[i];
    }
    *fields = c->fields;
    *n = nf;
    return 1;
}

int av_csv_column(char **header, int n, const char *name)
{
    size_t len = strlen(name);
    for (int i = 0; i < n; i++) {
        const char *h = header[i];
        while (*h == ' ' || *h == '\t') {
            h++;
        }
        size_t hl = strlen(h);
        while (hl > 0 && (h[hl - 1] == ' ' || h[hl - 1] == '\t')) {
            hl--;
        }
        if (hl == len && memcmp(h, name, len) == 0) {
            return i;
        }
    }
    return -1;
}

/* ================================================================ small helpers */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static int utf8_seq(const unsigned char *s)
{
    if (s[0] < 0x80) {
        return 1;
    }
    int len = s[0] >= 0xF0 && s[0] <= 0xF4 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 && s[0] < 0xE0 ? 2 : 0;
    if (len == 0 || (len == 3 && s[0] >= 0xF0)) {
        return 0;
    }
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
    }
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0) ||
        (s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90)) {
        return 0;   /* overlong, surrogate, beyond U+10FFFF */
    }
    return len;
}

static int utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int l = utf8_seq(p);
        if (!l) {
            return 0;
        }
        p += l;
    }
    return 1;
}

/* Windows-1252 bytes 0x80..0x9F as code points (0: undefined). */
static const uint16_t cp1252_hi[32] = {
    0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039,
    0x0152, 0, 0x017D, 0, 0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178};

static int put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    o[0] = (char)(0xE0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

/* The Windows-1252 byte of a code point, or -1. */
static int cp1252_byte(uint32_t cp)
{
    if (cp < 0x80 || (cp >= 0xA0 && cp <= 0xFF)) {
        return (int)cp;
    }
    for (int i = 0; i < 32; i++) {
        if (cp1252_hi[i] && cp1252_hi[i] == cp) {
            return 0x80 + i;
        }
    }
    return -1;
}

char *av_text_clean(const char *s, int fix_mojibake, int *changed)
{
    *changed = 0;
    size_t n = strlen(s);
    if (!utf8_valid(s)) {
        /* Windows-1252 to UTF-8: at most 3 bytes per byte */
        char *o = malloc(3 * n + 1), *q = o;
        if (!o) {
            return NULL;
        }
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
            uint32_t cp = *p < 0x80 ? *p : *p < 0xA0 ? cp1252_hi[*p - 0x80] : *p;
            q += put_utf8(q, cp ? cp : 0xFFFD);
        }
        *q = '\0';
        *changed = 1;
        return o;
    }
    if (fix_mojibake) {
        /* Map every code point back to its Windows-1252 byte; if all map, some are >= 0x80
         * and the bytes are valid UTF-8, the text was mojibake: the bytes are the original. */
        char *o = malloc(n + 1), *q = o;
        if (!o) {
            return NULL;
        }
        int ok = 1, high = 0;
        const unsigned char *p = (const unsigned char *)s;
        while (*p && ok) {
            int l = utf8_seq(p);
            uint32_t cp = l == 1 ? p[0] : l == 2 ? (uint32_t)(p[0] & 0x1F) << 6 | (p[1] & 0x3F)
                          : l == 3 ? (uint32_t)(p[0] & 0x0F) << 12 | (uint32_t)(p[1] & 0x3F) << 6 |
                                         (p[2] & 0x3F)
                                   : 0x110000;
            int byte = cp1252_byte(cp);
            if (byte < 0) {
                ok = 0;
            } else {
                high |= byte >= 0x80;
                *q++ = (char)byte;
            }
            p += l;
        }
        *q = '\0';
        if (ok && high && utf8_valid(o) && strcmp(o, s) != 0) {
            *changed = 1;
            return o;
        }
        free(o);
    }
    return strdup(s);
}

/* ================================================================ the pipeline */

int av_list_add(av_list *l, const char *path, const char *name, int32_t label,
                const char *text)
{
    if (l->n == l->cap) {
        int64_t cap = l->cap ? l->cap * 2 : 256;
        av_item *p = realloc(l->items, (size_t)cap * sizeof *p);
        if (!p) {
            return MPSL_ERR_NOMEM;
        }
        l->items = p;
        l->cap = cap;
    }
    av_item *it = &l->items[l->n];
    it->path = strdup(path);
    it->name = strdup(name);
    it->text = text ? strdup(text) : NULL;
    it->label = label;
    if (!it->path || !it->name || (text && !it->text)) {
        free(it->path);
        free(it->name);
        free(it->text);
        return MPSL_ERR_NOMEM;
    }
    l->n++;
    return MPSL_OK;
}

void av_list_free(av_list *l)
{
    for (int64_t i = 0; i < l->n; i++) {
        free(l->items[i].path);
        free(l->items[i].name);
        free(l->items[i].text);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

void av_job_init(av_job *j, const char *dataset, const convert_options *o)
{
    memset(j, 0, sizeof *j);
    j->dataset = dataset;
    j->o = o;
    j->image_size = o->image_size > 0 ? o->image_size : 224;
    j->mel_bins = 128;
    j->frames = 1024;
    j->audio_norm = 1;
}

static int opt_bool(const av_job *j, const char *key, int *v, mpsl_error *err)
{
    int64_t x;
    int rc = convert_opt_int(j->o, key, *v, 0, 1, &x, err);
    if (rc == MPSL_OK) {
        *v = (int)x;
    }
    return rc;
}

static int opt_choice(const av_job *j, const char *key, const char *a, const char *b, int *v,
                      mpsl_error *err)
{
    const char *s = convert_opt_str(j->o, key, NULL);
    if (!s) {
        return MPSL_OK;
    }
    if (strcmp(s, a) == 0) {
        *v = 0;
    } else if (strcmp(s, b) == 0) {
        *v = 1;
    } else {
        return mpsl_err(err, "convert %s: --set %s=%s: expected %s or %s", j->dataset, key, s,
                        a, b);
    }
    return MPSL_OK;
}

int av_job_options(av_job *j, mpsl_error *err)
{
    int64_t x;
    int rc;
    if ((rc = convert_opt_int(j->o, "mel_bins", j->mel_bins, 1, 256, &x, err)) != MPSL_OK) {
        return rc;
    }
    j->mel_bins = (int)x;
    if ((rc = convert_opt_int(j->o, "frames", j->frames, 1, 100000, &x, err)) != MPSL_OK) {
        return rc;
    }
    j->frames = (int)x;
    int on_error_skip = j->skip_broken;
    int norm_none = !j->audio_norm;
    if ((rc = opt_choice(j, "audio_storage", "u8", "f16", &j->audio_f16, err)) != MPSL_OK ||
        (rc = opt_choice(j, "audio_norm", "train", "none", &norm_none, err)) != MPSL_OK ||
        (rc = opt_choice(j, "on_error", "stop", "skip", &on_error_skip, err)) != MPSL_OK ||
        (rc = opt_bool(j, "require_audio", &j->require_audio, err)) != MPSL_OK ||
        (rc = opt_bool(j, "drop_empty_classes", &j->drop_empty_classes, err)) != MPSL_OK) {
        return rc;
    }
    j->audio_norm = !norm_none;
    j->skip_broken = on_error_skip;
    return MPSL_OK;
}

void av_job_free(av_job *j)
{
    av_list_free(&j->split[0]);
    av_list_free(&j->split[1]);
}

/* Outcome of one clip. */
enum { AV_PENDING = 0, AV_OK = 1, AV_NO_AUDIO = 2, AV_FAILED = 3 };

#define AV_MAX_REPORTED 5

typedef struct av_run {
    av_job *j;
    const mpsl_mel *mel;
    int split;
    av_list *list;
    int fd;                         /* spool file of this split */
    size_t img_bytes, aud_bytes, slot;
    uint8_t *status;                /* per item */
    atomic_llong next, done;
    atomic_int stop;
    pthread_mutex_t lock;
    int64_t n_failed, n_no_audio;
    char *failures[AV_MAX_REPORTED];
    int fatal_rc;                   /* out of memory, spool write error */
    mpsl_error fatal;
    /* statistics of the stored audio values (train): u8 histogram or sums */
    int64_t hist[256];
    double sum, sumsq;
    int64_t count;
} av_run;

static void run_fatal(av_run *r, int rc, const mpsl_error *e)
{
    pthread_mutex_lock(&r->lock);
    if (!r->fatal_rc) {
        r->fatal_rc = rc;
        r->fatal = *e;
    }
    pthread_mutex_unlock(&r->lock);
    atomic_store(&r->stop, 1);
}

/* Decode item i into slot (image bytes, then audio bytes). Returns the outcome. */
static int process_item(av_run *r, int64_t i, uint8_t *slot, float *mel_out, int64_t *hist,
                        double *sum, double *sumsq, mpsl_error *e)
{
    const av_job *j = r->j;
    const av_item *it = &r->list->items[i];
    av_media *m = NULL;
    int rc = av_media_open(it->path, &m, e);
    if (rc != MPSL_OK) {
        return AV_FAILED;
    }
    if (j->audio && j->require_audio && !av_media_has_audio(m)) {
        av_media_close(m);
        return AV_NO_AUDIO;
    }
    if (j->image) {
        double t = av_media_duration(m) / 2.0;
        if (av_media_frames(m, &t, 1, j->image_size, slot, e) != MPSL_OK) {
            av_media_close(m);
            return AV_FAILED;
        }
    }
    if (j->audio) {
        float *wave = NULL;
        int64_t n = 0;
        if (av_media_has_audio(m) && av_media_audio(m, 0.0, 0.0, &wave, &n, e) != MPSL_OK) {
            av_media_close(m);
            return AV_FAILED;
        }
        /* no audio track (require_audio=0): silence, every value log(1e-6) */
        rc = mpsl_mel_compute_fixed(r->mel, wave, n, j->frames, mel_out);
        free(wave);
        if (rc != MPSL_OK) {
            av_media_close(m);
            mpsl_errs(e, MPSL_ERR_NOMEM, "%s: out of memory", it->path);
            return AV_FAILED;
        }
        size_t cnt = (size_t)j->mel_bins * j->frames;
        uint8_t *dst = slot + r->img_bytes;
        if (j->audio_f16) {
            for (size_t k = 0; k < cnt; k++) {
                uint16_t h = mpsl_f32_to_f16(mel_out[k]);
                memcpy(dst + 2 * k, &h, 2);
                double v = mpsl_f16_to_f32(h);
                *sum += v;
                *sumsq += v * v;
            }
        } else {
            for (size_t k = 0; k < cnt; k++) {
                float q = roundf((mel_out[k] - AV_MEL_LO) / AV_MEL_STEP);
                uint8_t b = q <= 0.0f ? 0 : q >= 255.0f ? 255 : (uint8_t)q;
                dst[k] = b;
                hist[b]++;
            }
        }
    }
    av_media_close(m);
    return AV_OK;
}

static void *worker(void *arg)
{
    av_run *r = arg;
    const av_job *j = r->j;
    uint8_t *slot = malloc(r->slot ? r->slot : 1);
    float *mel_out = j->audio ? malloc((size_t)j->mel_bins * j->frames * sizeof *mel_out) : NULL;
    int64_t hist[256] = {0};
    double sum = 0, sumsq = 0;
    mpsl_error e;
    if (!slot || (j->audio && !mel_out)) {
        mpsl_errs(&e, MPSL_ERR_NOMEM, "convert %s: out of memory", j->dataset);
        run_fatal(r, MPSL_ERR_NOMEM, &e);
    }
    while (!atomic_load(&r->stop)) {
        int64_t i = atomic_fetch_add(&r->next, 1);
        if (i >= r->list->n) {
            break;
        }
        e.msg[0] = '\0';
        memset(slot, 0, r->slot);
        int outcome = process_item(r, i, slot, mel_out, hist, &sum, &sumsq, &e);
        if (outcome == AV_OK) {
            off_t off = (off_t)i * (off_t)r->slot;
            size_t put = 0;
            while (put < r->slot) {
                ssize_t w = pwrite(r->fd, slot + put, r->slot - put, off + (off_t)put);
                if (w <= 0) {
                    mpsl_error fe;
                    mpsl_errs(&fe, MPSL_ERR_IO, "convert %s: cannot write the spool file beside "
                                                "%s (%s)", j->dataset, j->o->out_path,
                              strerror(w < 0 ? errno : ENOSPC));
                    run_fatal(r, MPSL_ERR_IO, &fe);
                    break;
                }
                put += (size_t)w;
            }
        } else if (outcome == AV_FAILED) {
            pthread_mutex_lock(&r->lock);
            if (r->n_failed < AV_MAX_REPORTED) {
                r->failures[r->n_failed] = mpsl_strfmt("%s: %s", r->list->items[i].name, e.msg);
            }
            r->n_failed++;
            pthread_mutex_unlock(&r->lock);
            if (!j->skip_broken) {
                atomic_store(&r->stop, 1);
            }
        }
        r->status[i] = (uint8_t)outcome;
        atomic_fetch_add(&r->done, 1);
    }
    pthread_mutex_lock(&r->lock);
    for (int k = 0; k < 256; k++) {
        r->hist[k] += hist[k];
    }
    r->sum += sum;
    r->sumsq += sumsq;
    pthread_mutex_unlock(&r->lock);
    free(slot);
    free(mel_out);
    return NULL;
}

/* An unlinked temporary file beside the output (same file system, cleaned up on any exit). */
static int spool_open(const av_job *j, mpsl_error *err)
{
    char *tmpl = mpsl_strfmt("%s.spool.XXXXXX", j->o->out_path);
    if (!tmpl) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "convert %s: out of memory", j->dataset);
    }
    int fd = mkstemp(tmpl);
    if (fd < 0) {
        mpsl_errs(err, MPSL_ERR_IO, "convert %s: cannot create a spool file %s (%s)",
                  j->dataset, tmpl, strerror(errno));
        free(tmpl);
        return -1;
    }
    unlink(tmpl);
    free(tmpl);
    return fd;
}

static int threads_for(const av_job *j)
{
    int t = j->o->threads;
    if (t <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        t = c > 0 ? (int)c : 1;
        t = t > 8 ? 8 : t;
    }
    return t > 64 ? 64 : t;
}

static const char *split_name(int s) { return s == MPSL_SPLIT_TRAIN ? "train" : "test"; }

/* Decode one split into r (already set up with the list and spool). */
static int decode_split(av_run *r, mpsl_error *err)
{
    const av_job *j = r->j;
    int nt = threads_for(j);
    if (nt > r->list->n) {
        nt = r->list->n > 0 ? (int)r->list->n : 1;
    }
    pthread_t tid[64];
    int started = 0;
    prep_progress p;
    char what[64];
    snprintf(what, sizeof what, "%s clips", split_name(r->split));
    prep_progress_start(&p, j->dataset, what, r->list->n, j->o->quiet);
    for (int t = 0; t < nt; t++) {
        if (pthread_create(&tid[t], NULL, worker, r) != 0) {
            break;
        }
        started++;
    }
    if (started == 0) {
        worker(r);
    }
    for (;;) {
        int64_t d = atomic_load(&r->done);
        if (d >= r->list->n || atomic_load(&r->stop)) {
            break;
        }
        prep_progress_step(&p, d);
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (int t = 0; t < started; t++) {
        pthread_join(tid[t], NULL);
    }
    if (!atomic_load(&r->stop) || r->list->n == 0) {
        prep_progress_step(&p, r->list->n);
    }
    if (r->fatal_rc) {
        *err = r->fatal;
        return r->fatal_rc;
    }
    if (r->n_failed > 0 && !j->skip_broken) {
        return mpsl_err(err, "convert %s: %s; stopped at the first broken clip (--set "
                             "on_error=skip leaves broken clips out and reports them)",
                        j->dataset, r->failures[0] ? r->failures[0] : "a clip failed");
    }
    return MPSL_OK;
}

/* Evenly spaced subset of at most limit items (all when limit <= 0). */
static void apply_limit(av_list *l, int64_t limit)
{
    if (limit <= 0 || l->n <= limit) {
        return;
    }
    int64_t n = l->n;
    for (int64_t k = 0; k < limit; k++) {
        int64_t src = k * n / limit;
        if (src != k) {
            av_item tmp = l->items[k];
            l->items[k] = l->items[src];
            l->items[src] = tmp;
        }
    }
    for (int64_t k = limit; k < n; k++) {
        free(l->items[k].path);
        free(l->items[k].name);
        free(l->items[k].text);
    }
    l->n = limit;
}

static int copy_section(av_run *r, prep_writer *w, int mod, size_t off, size_t bytes,
                        mpsl_error *err)
{
    const int64_t chunk = 64;
    uint8_t *buf = malloc((size_t)chunk * bytes);
    if (!buf) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "convert %s: out of memory", r->j->dataset);
    }
    int64_t k = 0;
    int rc = MPSL_OK;
    for (int64_t i = 0; i < r->list->n && rc == MPSL_OK; i++) {
        if (r->status[i] != AV_OK) {
            continue;
        }
        off_t pos = (off_t)i * (off_t)r->slot + (off_t)off;
        size_t got = 0;
        while (got < bytes) {
            ssize_t g = pread(r->fd, buf + (size_t)k * bytes + got, bytes - got, pos + (off_t)got);
            if (g <= 0) {
                rc = mpsl_errs(err, MPSL_ERR_IO, "convert %s: cannot read the spool file (%s)",
                               r->j->dataset, g < 0 ? strerror(errno) : "short read");
                break;
            }
            got += (size_t)g;
        }
        if (rc == MPSL_OK && ++k == chunk) {
            rc = prep_writer_samples(w, (mpsl_split)r->split, mod, buf, k, err);
            k = 0;
        }
    }
    if (rc == MPSL_OK && k > 0) {
        rc = prep_writer_samples(w, (mpsl_split)r->split, mod, buf, k, err);
    }
    free(buf);
    return rc;
}

static int write_split(av_run *r, prep_writer *w, const int32_t *remap, int64_t n_ok,
                       mpsl_error *err)
{
    const av_job *j = r->j;
    int32_t *labels = malloc((size_t)(n_ok ? n_ok : 1) * sizeof *labels);
    if (!labels) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "convert %s: out of memory", j->dataset);
    }
    int64_t k = 0;
    for (int64_t i = 0; i < r->list->n; i++) {
        if (r->status[i] == AV_OK) {
            labels[k++] = remap[r->list->items[i].label];
        }
    }
    int rc = prep_writer_labels(w, (mpsl_split)r->split, labels, n_ok, err);
    free(labels);
    int mod = 0;
    if (rc == MPSL_OK && j->image) {
        rc = copy_section(r, w, mod++, 0, r->img_bytes, err);
    }
    if (rc == MPSL_OK && j->audio) {
        rc = copy_section(r, w, mod++, r->img_bytes, r->aud_bytes, err);
    }
    if (rc == MPSL_OK && j->text_len > 0) {
        const int64_t chunk = 256;
        int32_t *buf = malloc((size_t)chunk * j->text_len * sizeof *buf);
        if (!buf) {
            return mpsl_errs(err, MPSL_ERR_NOMEM, "convert %s: out of memory", j->dataset);
        }
        int64_t c = 0;
        for (int64_t i = 0; i < r->list->n && rc == MPSL_OK; i++) {
            if (r->status[i] != AV_OK) {
                continue;
            }
            const char *t = r->list->items[i].text ? r->list->items[i].text : "";
            prep_text_bytes(t, buf + (size_t)c * j->text_len, j->text_len);
            if (++c == chunk) {
                rc = prep_writer_samples(w, (mpsl_split)r->split, mod, buf, c, err);
                c = 0;
            }
        }
        if (rc == MPSL_OK && c > 0) {
            rc = prep_writer_samples(w, (mpsl_split)r->split, mod, buf, c, err);
        }
        free(buf);
    }
    return rc;
}

static void run_report(const av_run *r)
{
    const av_job *j = r->j;
    if (r->n_no_audio > 0) {
        fprintf(stderr, "convert %s: %s: %lld clip%s without an audio track left out "
                        "(require_audio=1)\n", j->dataset, split_name(r->split),
                (long long)r->n_no_audio, r->n_no_audio == 1 ? "" : "s");
    }
    if (r->n_failed > 0 && j->skip_broken) {
        fprintf(stderr, "convert %s: %s: %lld broken clip%s left out (on_error=skip)%s\n",
                j->dataset, split_name(r->split), (long long)r->n_failed,
                r->n_failed == 1 ? "" : "s", r->n_failed > 0 ? ", the first:" : "");
        for (int k = 0; k < AV_MAX_REPORTED && k < r->n_failed; k++) {
            fprintf(stderr, "    %s\n", r->failures[k] ? r->failures[k] : "(out of memory)");
        }
    }
}

int av_convert(av_job *j, mpsl_error *err)
{
    const convert_options *o = j->o;
    if (!getenv("MPSL_LOG") || strcmp(getenv("MPSL_LOG"), "debug") != 0) {
        av_log_set_level(AV_LOG_QUIET);   /* our messages name the file and the problem */
    }
    for (int s = 0; s < 2; s++) {
        apply_limit(&j->split[s], o->limit);
    }
    if (j->split[MPSL_SPLIT_TRAIN].n == 0) {
        return mpsl_err(err, "convert %s: no training clips listed under %s", j->dataset,
                        o->in_dir);
    }
    mpsl_mel *mel = NULL;
    int rc = MPSL_OK;
    if (j->audio && (rc = mpsl_mel_create(j->mel_bins, &mel, err)) != MPSL_OK) {
        mpsl_err_prefix(err, "convert %s", j->dataset);
        return rc;
    }
    av_run runs[2];
    memset(runs, 0, sizeof runs);
    size_t img_bytes = j->image ? (size_t)3 * j->image_size * j->image_size : 0;
    size_t aud_bytes = j->audio ? (size_t)j->mel_bins * j->frames * (j->audio_f16 ? 2 : 1) : 0;
    double t0 = mpsl_now();
    for (int s = 0; s < 2; s++) {
        av_run *r = &runs[s];
        r->j = j;
        r->mel = mel;
        r->split = s;
        r->list = &j->split[s];
        r->img_bytes = img_bytes;
        r->aud_bytes = aud_bytes;
        r->slot = img_bytes + aud_bytes;
        r->fd = -1;
        pthread_mutex_init(&r->lock, NULL);
    }
    for (int s = 0; s < 2 && rc == MPSL_OK; s++) {
        av_run *r = &runs[s];
        r->status = calloc((size_t)(r->list->n ? r->list->n : 1), 1);
        if (!r->status) {
            rc = mpsl_errs(err, MPSL_ERR_NOMEM, "convert %s: out of memory", j->dataset);
            break;
        }
        if (r->slot > 0 && (r->fd = spool_open(j, err)) < 0) {
            rc = MPSL_ERR_IO;
            break;
        }
        rc = decode_split(r, err);
        for (int64_t i = 0; i < r->list->n; i++) {
            r->n_no_audio += r->status[i] == AV_NO_AUDIO;
        }
    }
    /* Classes: drop those without any sample when asked. */
    int32_t *remap = calloc(j->n_classes ? j->n_classes : 1, sizeof *remap);
    const char **names = calloc(j->n_classes ? j->n_classes : 1, sizeof *names);
    int64_t n_ok[2] = {0, 0};
    uint32_t n_kept = 0;
    if (rc == MPSL_OK && (!remap || !names)) {
        rc = mpsl_errs(err, MPSL_ERR_NOMEM, "convert %s: out of memory", j->dataset);
    }
    if (rc == MPSL_OK) {
        int64_t *per_class = calloc(j->n_classes, sizeof *per_class);
        if (!per_class) {
            rc = mpsl_errs(err, MPSL_ERR_NOMEM, "convert %s: out of memory", j->dataset);
        }
        for (int s = 0; s < 2 && per_class; s++) {
            for (int64_t i = 0; i < runs[s].list->n; i++) {
                if (runs[s].status[i] == AV_OK) {
                    per_class[runs[s].list->items[i].label]++;
                    n_ok[s]++;
                }
            }
        }
        for (uint32_t c = 0; per_class && c < j->n_classes; c++) {
            if (j->drop_empty_classes && per_class[c] == 0) {
                remap[c] = -1;
                continue;
            }
            remap[c] = (int32_t)n_kept;
            names[n_kept++] = j->class_names[c];
        }
        if (per_class && j->drop_empty_classes && n_kept < j->n_classes && !o->quiet) {
            fprintf(stderr, "convert %s: %u of %u classes have no clip and are left out "
                            "(drop_empty_classes=1); labels are renumbered in class order\n",
                    j->dataset, j->n_classes - n_kept, j->n_classes);
        }
        free(per_class);
    }
    for (int s = 0; s < 2; s++) {
        run_report(&runs[s]);
    }
    if (rc == MPSL_OK && n_ok[MPSL_SPLIT_TRAIN] == 0) {
        rc = mpsl_err(err, "convert %s: no training clip could be used (%lld listed, %lld "
                           "without audio, %lld broken)", j->dataset,
                      (long long)runs[0].list->n, (long long)runs[0].n_no_audio,
                      (long long)runs[0].n_failed);
    }
    if (rc == MPSL_OK && n_kept == 0) {
        rc = mpsl_err(err, "convert %s: no class has a clip", j->dataset);
    }
    double t_decode = mpsl_now() - t0;
    prep_writer *w = NULL;
    if (rc == MPSL_OK) {
        prep_modality_spec mods[3];
        int nm = 0;
        if (j->image) {
            mods[nm++] = (prep_modality_spec){"image", MPSL_PREP_U8, 3,
                                              {3, j->image_size, j->image_size}, 1.0f / 255.0f,
                                              0.0f};
        }
        if (j->audio) {
            /* The stored values' train mean/std, folded into scale/offset when asked. */
            double mean = 0.0, sd = 1.0;
            const av_run *r = &runs[MPSL_SPLIT_TRAIN];
            if (j->audio_f16) {
                int64_t cnt = n_ok[0] * (int64_t)j->mel_bins * j->frames;
                mean = r->sum / (double)cnt;
                sd = sqrt(fmax(r->sumsq / (double)cnt - mean * mean, 0.0));
            } else {
                double s1 = 0, s2 = 0, cnt = 0;
                for (int b = 0; b < 256; b++) {
                    double v = AV_MEL_LO + b * (double)AV_MEL_STEP;
                    s1 += (double)r->hist[b] * v;
                    s2 += (double)r->hist[b] * v * v;
                    cnt += (double)r->hist[b];
                }
                mean = s1 / cnt;
                sd = sqrt(fmax(s2 / cnt - mean * mean, 0.0));
            }
            if (!(sd > 1e-6)) {
                sd = 1.0;
            }
            float base_scale = j->audio_f16 ? 1.0f : AV_MEL_STEP;
            float base_off = j->audio_f16 ? 0.0f : AV_MEL_LO;
            float scale = base_scale, offset = base_off;
            if (j->audio_norm) {
                scale = (float)(base_scale / sd);
                offset = (float)((base_off - mean) / sd);
            }
            if (!o->quiet) {
                fprintf(stderr, "convert %s: log-mel over the train clips: mean %.3f, std %.3f%s\n",
                        j->dataset, mean, sd,
                        j->audio_norm ? " (folded into the audio scale/offset: the plugin hands "
                                        "out normalised values)" : "");
            }
            mods[nm++] = (prep_modality_spec){"audio", j->audio_f16 ? MPSL_PREP_F16 : MPSL_PREP_U8,
                                              3, {1, j->mel_bins, j->frames}, scale, offset};
        }
        if (j->text_len > 0) {
            mods[nm++] = (prep_modality_spec){"text", MPSL_PREP_I32, 1, {j->text_len, 0, 0},
                                              1.0f, 0.0f};
        }
        char source[128];
        snprintf(source, sizeof source, "%s (convert %s)", j->dataset, CONVERT_VERSION);
        rc = prep_writer_open(o->out_path, MPSL_PREP_CLASSIFICATION, n_kept, names, mods, nm,
                              n_ok[0], n_ok[1], source, &w, err);
    }
    for (int s = 0; s < 2 && rc == MPSL_OK; s++) {
        rc = write_split(&runs[s], w, remap, n_ok[s], err);
    }
    if (w) {
        if (rc == MPSL_OK) {
            rc = prep_writer_close(w, err);
        } else {
            prep_writer_abort(w);
        }
    }
    if (rc == MPSL_OK && !o->quiet) {
        fprintf(stderr, "convert %s: %lld train + %lld test clips, %u classes; decoding %.1f s "
                        "(%.1f clips/s)\n", j->dataset, (long long)n_ok[0], (long long)n_ok[1],
                n_kept, t_decode,
                (double)(runs[0].list->n + runs[1].list->n) / (t_decode > 0 ? t_decode : 1));
    }
    for (int s = 0; s < 2; s++) {
        if (runs[s].fd >= 0) {
            close(runs[s].fd);
        }
        free(runs[s].status);
        for (int k = 0; k < AV_MAX_REPORTED; k++) {
            free(runs[s].failures[k]);
        }
        pthread_mutex_destroy(&runs[s].lock);
    }
    free(remap);
    free(names);
    mpsl_mel_destroy(mel);
    return rc;
}
