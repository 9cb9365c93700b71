/* series.h: a run's figure against one of the x axes a paper plots it on (epoch, training
 * step, bytes sent, wall time, estimated communication time), and the repeats of one
 * configuration (a group of runs that differ only by seed) merged into a mean line with a
 * band. */
#ifndef MPSL_REPORT_SERIES_H
#define MPSL_REPORT_SERIES_H

#include <stdint.h>

#include "mpsl/plugin.h"

struct sqlite3;

/* What a series' x is. Every axis but STEP has one point per epoch that recorded the figure:
 *   EPOCH    the epoch (round), counted from 1 as `mpsl run` prints it
 *   STEP     the global training step of step_metrics: a step of epoch e comes after the last
 *            recorded step of every earlier epoch (x = those steps + the step in epoch e)
 *   BYTES    payload bytes per client up to the end of the epoch, up + down (the mean over
 *            clients: the run's comm bytes / n_clients)
 *   SECONDS  wall time up to the end of the epoch: the sum of epoch_seconds
 *   COMM     estimated communication time up to the end of the epoch under a link model:
 *            a client's bytes up / up rate + bytes down / down rate (report_link)
 *   SIM      simulated wall time up to the end of the epoch: the sum of sim_epoch_seconds,
 *            which runs with a network model record (docs/config.md, network) */
typedef enum report_xaxis {
    REPORT_X_EPOCH = 0,
    REPORT_X_STEP,
    REPORT_X_BYTES,
    REPORT_X_SECONDS,
    REPORT_X_COMM,
    REPORT_X_SIM,
} report_xaxis;

/* A client's link: up and down rates in Mbit/s (10^6 bits per second). */
typedef struct report_link {
    double up_mbps, down_mbps;
} report_link;

/* The default link model: 10 Mbit/s up, 50 Mbit/s down (a typical home or mobile uplink is
 * the narrow side). */
#define REPORT_LINK_UP_MBPS 10.0
#define REPORT_LINK_DOWN_MBPS 50.0

/* "UP" or "UP,DOWN" (Mbit/s, positive finite numbers; one number: both ways) -> *link;
 * -1 when it is not that. */
int report_link_parse(const char *text, report_link *link);
/* Seconds a client needs to send bytes_up and receive bytes_down over the link: the one link
 * model of `mpsl compare`, `mpsl report` and `mpsl plot` (a rate <= 0 leaves its direction
 * out). */
double report_link_seconds(const report_link *link, double bytes_up, double bytes_down);

/* "epoch", "step", "bytes", "seconds", "comm", "sim" -> *x; -1 for another word. */
int report_xaxis_parse(const char *word, report_xaxis *x);
/* The axis' label ("bytes per client, up + down"). */
const char *report_xaxis_label(report_xaxis x);

/* 0 for an epoch_metrics name; 1, 2, 3 for the byte figures bytes, bytes_up, bytes_down
 * (cumulative bytes per client up + down, up, down). */
int report_bytes_figure(const char *metric);

/* One run's points: key aligns the points of repeats (the epoch for per-epoch axes, the
 * global step for STEP); x and y are what is drawn. */
typedef struct report_points {
    double *key, *x, *y;
    int n;
} report_points;

void report_points_free(report_points *p);

/* Run run_id's figure `metric` against axis x: metric is an epoch_metrics name (a
 * step_metrics name for STEP), or bytes, bytes_up, bytes_down (cumulative per client, per
 * epoch axes only). Epochs that did not record the figure give no point; BYTES and COMM give
 * none for a run that recorded no communication. link is used for COMM only. */
int report_load_points(struct sqlite3 *db, int64_t run_id, const char *metric, report_xaxis x,
                       const report_link *link, report_points *out, mpsl_error *err);

/* 1 when the run has figure `metric` on axis x (STEP: in step_metrics; else in epoch_metrics,
 * or comm rows for the byte figures). */
int report_has_points(struct sqlite3 *db, int64_t run_id, const char *metric, report_xaxis x);

/* What the band around a group's mean shows. */
typedef enum report_band {
    REPORT_BAND_SD = 0, /* mean ± the sample standard deviation over the group's runs */
    REPORT_BAND_CI95,   /* mean ± the half-width of the 95% interval of the mean (Student t) */
    REPORT_BAND_NONE,
} report_band;

/* "sd", "ci95", "none" -> *band; -1 for another word. */
int report_band_parse(const char *word, report_band *band);
/* "mean ± sd", "mean ± 95% CI" (for captions). */
const char *report_band_label(report_band band);

/* A group's line: at each key that any member has, y is the mean of the members' y there and
 * x the mean of their x; lo and hi the band (NaN where fewer than two members have the key,
 * and everywhere for REPORT_BAND_NONE). Arrays are malloc'd, *n may be 0. */
typedef struct report_merged {
    double *x, *y, *lo, *hi;
    int n;
    int members; /* runs with at least one point */
} report_merged;

int report_merge_points(const report_points *runs, int nruns, report_band band,
                        report_merged *out);
void report_merged_free(report_merged *m);

#endif
