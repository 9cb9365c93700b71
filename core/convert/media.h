/* media.h: what the audio/video converters (meld.c, ucf101.c, kinetics_sounds.c) share:
 *
 *   - decoding with FFmpeg (libavformat/libavcodec/libswresample/libswscale): the audio track
 *     as mono 16 kHz float, video frames at chosen times as square RGB (CHW u8);
 *   - a small RFC 4180 CSV reader (quoted fields with commas, "" and newlines; CRLF or LF);
 *   - the conversion pipeline: a list of clips per split -> decoded in parallel into
 *     unlinked spool files beside the output -> the prepared file through prep_writer, with
 *     per-clip failures counted and named, the no-audio policy and --limit applied.
 *
 * Errors name the file: "PATH: no audio stream", "PATH: cannot open (No such file...)". */
#ifndef MPSL_CONVERT_MEDIA_H
#define MPSL_CONVERT_MEDIA_H

#include <stddef.h>
#include <stdint.h>

#include "convert/convert.h"
#include "mpsl/plugin.h"

/* ---------------------------------------------------------------- decoding */

typedef struct av_media av_media;

/* Open a media file (container probed from its contents). Refuses a missing or unreadable
 * file and one FFmpeg cannot parse, naming it. */
int av_media_open(const char *path, av_media **out, mpsl_error *err);
void av_media_close(av_media *m);

int av_media_has_audio(const av_media *m);
int av_media_has_video(const av_media *m);
/* Duration in seconds (container, else the longest stream), 0 when unknown. */
double av_media_duration(const av_media *m);

/* The audio track resampled to mono 16 kHz float32: the samples from start seconds (counted
 * from the first decoded sample) for at most dur seconds (dur <= 0: to the end; never more
 * than max_seconds = 3600 s). *wave is malloc'd (the caller frees it), *n its length.
 * Refuses a file without an audio stream, an undecodable stream and a track that decodes
 * to no samples at all. */
int av_media_audio(av_media *m, double start, double dur, float **wave, int64_t *n,
                   mpsl_error *err);

/* Video frames at the given times (seconds from the stream's start; clamped to the clip:
 * past the end gives the last frame), each centre-cropped to a square and resized to
 * size x size, RGB planar: out holds n_times * 3 * size * size bytes (CHW per frame).
 * Refuses a file without a video stream or with no decodable frame. */
int av_media_frames(av_media *m, const double *times, int n_times, int size, uint8_t *out,
                    mpsl_error *err);

/* ---------------------------------------------------------------- CSV (RFC 4180) */

typedef struct av_csv av_csv;

/* Read a whole CSV file (a UTF-8 BOM is skipped). */
int av_csv_open(const char *path, av_csv **out, mpsl_error *err);
void av_csv_close(av_csv *c);
/* The next record: 1 with *fields (n of them, valid until the next call), 0 at the end,
 * negative on a malformed record (unterminated quote, text after a closing quote), with a
 * message naming the file and the line where the record starts. *line: that line. Empty
 * lines are skipped. */
int av_csv_next(av_csv *c, char ***fields, int *n, int64_t *line, mpsl_error *err);

/* Column index of name among the header's fields (exact match after trimming blanks), or -1. */
int av_csv_column(char **header, int n, const char *name);

/* ---------------------------------------------------------------- small helpers */

/* Make s valid UTF-8 in place-or-copy: returns malloc'd UTF-8 text. Valid UTF-8 is kept (and
 * "mojibake" -- UTF-8 read as Windows-1252 and written again as UTF-8, e.g. "â€™" for "'"
 * -- is repaired when fix_mojibake); invalid input is read as Windows-1252. *changed is set
 * to 1 when the text was altered. */
char *av_text_clean(const char *s, int fix_mojibake, int *changed);

/* ---------------------------------------------------------------- the pipeline */

typedef struct av_item {
    char *path;         /* the clip (malloc'd) */
    char *name;         /* short name for messages, e.g. "train/dia0_utt0.mp4" (malloc'd) */
    int32_t label;      /* class index in [0, n_classes) */
    char *text;         /* UTF-8 text when the job has a text modality (malloc'd), else NULL */
} av_item;

typedef struct av_list {
    av_item *items;
    int64_t n, cap;
} av_list;

int av_list_add(av_list *l, const char *path, const char *name, int32_t label,
                const char *text);
void av_list_free(av_list *l);

/* What to extract, and the policies. Fill with av_job_init (defaults) and av_job_options
 * (the --set keys below), then the classes and the lists; av_convert does the rest. */
typedef struct av_job {
    const char *dataset;            /* "meld": messages and the header's source */
    const convert_options *o;
    uint32_t n_classes;
    const char *const *class_names; /* n_classes names */
    av_list split[2];               /* MPSL_SPLIT_TRAIN, MPSL_SPLIT_TEST */
    int image;                      /* 1: modality "image" (3, S, S) u8: the middle frame */
    int audio;                      /* 1: modality "audio" (1, mel_bins, frames) */
    int text_len;                   /* > 0: modality "text" (text_len) i32 UTF-8 bytes */
    int image_size;                 /* S (o->image_size) */
    int mel_bins, frames;           /* --set mel_bins=128, frames=... */
    int audio_f16;                  /* --set audio_storage=u8|f16 */
    int audio_norm;                 /* --set audio_norm=train|none */
    int require_audio;              /* --set require_audio=1: clips without audio left out */
    int skip_broken;                /* --set on_error=skip|stop */
    int drop_empty_classes;         /* --set drop_empty_classes=1: classes with no sample go */
} av_job;

void av_job_init(av_job *j, const char *dataset, const convert_options *o);
/* Read the --set keys: mel_bins, frames, audio_storage, audio_norm, require_audio, on_error,
 * drop_empty_classes; refuses bad values naming the key. Keys it does not know are
 * left to the converter. */
int av_job_options(av_job *j, mpsl_error *err);
void av_job_free(av_job *j);

/* Decode every clip, then write o->out_path. */
int av_convert(av_job *j, mpsl_error *err);

/* u8 storage of log-mel values: value = u8 * AV_MEL_STEP + AV_MEL_LO, clamped: 0 is exact
 * silence (log 1e-6), 255 is log-mel 12.0 (louder than a full-scale sine). */
#define AV_MEL_LO (-13.815510558f) /* logf(1e-6f) */
#define AV_MEL_HI 12.0f
#define AV_MEL_STEP ((AV_MEL_HI - AV_MEL_LO) / 255.0f)

#endif
