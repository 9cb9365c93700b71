/* download.c: one URL into a .part file with libcurl. Resumes from the bytes already there
 * (HTTP Range), starts over when the server ignores the range or answers for the wrong one,
 * retries transient failures (5xx, 408, 429, resets, timeouts, stalls) with exponential
 * backoff and jitter, refuses anything but http/https (redirects included), never writes an
 * HTTP error body, and stops receiving beyond the expected size or the global cap. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "fetch_internal.h"
#include "mpsl_build_config.h"
#include "util/util.h"

/* Why the write or header callback stopped a transfer. */
typedef enum dl_abort {
    ABORT_NONE = 0,
    ABORT_TOO_BIG,        /* beyond the expected size or the cap */
    ABORT_SIZE_MISMATCH,  /* the server announces a size other than the manifest's */
    ABORT_BAD_RANGE,      /* 200 or a 206 for another range: start over */
    ABORT_WRITE,          /* the disk refused (ENOSPC...) */
    ABORT_HTTP            /* an error status slipped past FAILONERROR */
} dl_abort;

typedef struct dl_state {
    int fd;
    const char *label;
    const fetch_options *o;
    int64_t offset;       /* bytes in the file when this transfer started (after any restart) */
    int64_t written;      /* bytes written by this transfer */
    int64_t expected;     /* manifest size or -1 */
    int64_t cap;          /* refuse to hold more than this many bytes */
    /* The response being received (reset at every status line: redirects, 100 Continue). */
    long status;
    int64_t content_length, cr_start, cr_end, cr_total;
    int have_cr;
    double retry_after;
    int validated;        /* the final response's headers have been checked */
    dl_abort abort;
    int write_errno;
    char abort_msg[512];
    int resumed;          /* bytes in the file came from more than one transfer */
    /* progress */
    double t_start, t_last_draw;
    int drew_bar;
} dl_state;

const char *dl_fmt_bytes(double b, char *buf, size_t size)
{
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
    int u = 0;
    while (b >= 1000.0 && u < 4) {
        b /= 1000.0;
        u++;
    }
    snprintf(buf, size, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
    return buf;
}

static void fmt_eta(double s, char *buf, size_t size)
{
    if (!(s >= 0) || s > 360000) {
        snprintf(buf, size, "--:--");
    } else if (s >= 3600) {
        snprintf(buf, size, "%d:%02d:%02d", (int)s / 3600, ((int)s / 60) % 60, (int)s % 60);
    } else {
        snprintf(buf, size, "%d:%02d", (int)s / 60, (int)s % 60);
    }
}

/* ---------------------------------------------------------------- progress */

static void draw_progress(dl_state *s, int final)
{
    const fetch_options *o = s->o;
    if (o->progress == FETCH_PROGRESS_NONE) {
        return;
    }
    double now = mpsl_now();
    double min_gap = o->progress == FETCH_PROGRESS_BAR ? 0.2 : o->progress_interval;
    if (!final && now - s->t_last_draw < min_gap) {
        return;
    }
    if (final && o->progress == FETCH_PROGRESS_LINES) {
        return; /* the caller prints the outcome */
    }
    s->t_last_draw = now;
    double have = (double)(s->offset + s->written);
    double total = s->expected >= 0 ? (double)s->expected
                   : s->status == 206 && s->cr_total >= 0 ? (double)s->cr_total
                   : s->content_length >= 0 ? (double)(s->offset + s->content_length)
                                            : -1;
    double elapsed = now - s->t_start;
    double rate = elapsed > 0 ? (double)s->written / elapsed : 0;
    char hb[32], tb[32], rb[32], eta[32];
    dl_fmt_bytes(have, hb, sizeof hb);
    dl_fmt_bytes(rate, rb, sizeof rb);
    fmt_eta(total > 0 && rate > 0 ? (total - have) / rate : -1, eta, sizeof eta);
    if (o->progress == FETCH_PROGRESS_BAR) {
        char bar[32];
        int width = 24;
        if (total > 0) {
            int fill = (int)(width * (have / total));
            fill = fill > width ? width : fill;
            memset(bar, '#', (size_t)fill);
            memset(bar + fill, '.', (size_t)(width - fill));
            bar[width] = '\0';
            fprintf(stderr, "\r  %-28.28s %3d%% [%s] %s / %s  %s/s  ETA %s   ", s->label,
                    (int)(100 * have / total), bar, hb, dl_fmt_bytes(total, tb, sizeof tb), rb,
                    eta);
        } else {
            fprintf(stderr, "\r  %-28.28s %s  %s/s   ", s->label, hb, rb);
        }
        s->drew_bar = 1;
        if (final) {
            fputc('\n', stderr);
            s->drew_bar = 0;
        }
    } else if (total > 0) {
        fprintf(stderr, "  %s: %s of %s (%d%%), %s/s, ETA %s\n", s->label, hb,
                dl_fmt_bytes(total, tb, sizeof tb), (int)(100 * have / total), rb, eta);
    } else {
        fprintf(stderr, "  %s: %s, %s/s\n", s->label, hb, rb);
    }
    fflush(stderr);
}

static int on_progress(void *p, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    dl_state *s = p;
    if (s->validated) {
        draw_progress(s, 0);
    }
    return 0;
}

/* ---------------------------------------------------------------- headers */

static int64_t parse_i64(const char *p, const char **end)
{
    errno = 0;
    char *e;
    long long v = strtoll(p, &e, 10);
    if (e == p || errno || v < 0) {
        *end = p;
        return -1;
    }
    *end = e;
    return v;
}

/* Header value of a "Name: value" line when name matches, else NULL. */
static const char *header_value(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':') {
        return NULL;
    }
    const char *v = line + n + 1;
    while (*v == ' ' || *v == '\t') {
        v++;
    }
    return v;
}

static void fail_with(dl_state *s, dl_abort why, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_with(dl_state *s, dl_abort why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->abort_msg, sizeof s->abort_msg, fmt, ap);
    va_end(ap);
    s->abort = why;
}

/* All headers of the final response are in: decide whether its body may be written. Returns
 * 0 to go on, 1 to abort. */
static int validate_response(dl_state *s)
{
    char a[32], b[32];
    if (s->status >= 400) {
        fail_with(s, ABORT_HTTP, "HTTP %ld", s->status);
        return 1;
    }
    if (s->status == 206) {
        if (!s->have_cr || s->cr_start != s->offset ||
            (s->expected >= 0 && s->cr_total >= 0 && s->cr_total != s->expected)) {
            fail_with(s, ABORT_BAD_RANGE,
                      "the server answered the range request from byte %" PRId64
                      " with %s%" PRId64 "-%" PRId64 "/%" PRId64,
                      s->offset, s->have_cr ? "Content-Range bytes " : "no Content-Range, ",
                      s->cr_start, s->cr_end, s->cr_total);
            return 1;
        }
        s->resumed |= s->offset > 0;
    } else if (s->offset > 0) {
        /* 200 to a range request: the body would be the whole file. */
        fail_with(s, ABORT_BAD_RANGE, "the server ignored the range request (HTTP %ld)",
                  s->status);
        return 1;
    }
    int64_t total = s->status == 206 ? s->cr_total
                    : s->content_length >= 0 ? s->content_length : -1;
    if (total >= 0 && s->expected >= 0 && total != s->expected) {
        fail_with(s, ABORT_SIZE_MISMATCH, "the server announces %s (%" PRId64
                  " bytes), the manifest says %" PRId64 " bytes",
                  dl_fmt_bytes((double)total, a, sizeof a), total, s->expected);
        return 1;
    }
    if (total > s->cap) {
        fail_with(s, ABORT_TOO_BIG, "the server announces %s, more than the cap of %s",
                  dl_fmt_bytes((double)total, a, sizeof a),
                  dl_fmt_bytes((double)s->cap, b, sizeof b));
        return 1;
    }
    s->validated = 1;
    return 0;
}

static size_t on_header(char *line, size_t size, size_t nitems, void *p)
{
    dl_state *s = p;
    size_t len = size * nitems;
    const char *v;
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        const char *sp = memchr(line, ' ', len);
        s->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        s->content_length = -1;
        s->have_cr = 0;
        s->cr_start = s->cr_end = s->cr_total = -1;
        s->retry_after = -1;
        s->validated = 0;
    } else if ((v = header_value(line, len, "Content-Length"))) {
        const char *e;
        s->content_length = parse_i64(v, &e);
    } else if ((v = header_value(line, len, "Content-Range"))) {
        /* "bytes START-END/TOTAL" (TOTAL may be '*') */
        const char *e = v;
        if (strncasecmp(v, "bytes ", 6) == 0) {
            s->cr_start = parse_i64(v + 6, &e);
            if (*e == '-') {
                s->cr_end = parse_i64(e + 1, &e);
            }
            if (*e == '/') {
                s->cr_total = e[1] == '*' ? -1 : parse_i64(e + 1, &e);
            }
            s->have_cr = s->cr_start >= 0 && s->cr_end >= s->cr_start;
        }
    } else if ((v = header_value(line, len, "Retry-After"))) {
        const char *e;
        int64_t secs = parse_i64(v, &e);
        s->retry_after = secs >= 0 ? (double)secs : -1;
    } else if ((len == 2 && line[0] == '\r') || (len == 1 && line[0] == '\n')) {
        /* End of one response's headers; redirects and 1xx are followed by curl. */
        if (s->status >= 200 && s->status < 300 && validate_response(s)) {
            return 0; /* abort: CURLE_WRITE_ERROR */
        }
    }
    return len;
}

/* ---------------------------------------------------------------- body */

static size_t on_body(char *data, size_t size, size_t nmemb, void *p)
{
    dl_state *s = p;
    size_t len = size * nmemb;
    if (!s->validated) {
        /* Headers were never checked (should not happen): refuse rather than guess. */
        if (s->status >= 300 || s->status < 200 || validate_response(s)) {
            if (s->abort == ABORT_NONE) {
                fail_with(s, ABORT_HTTP, "HTTP %ld", s->status);
            }
            return 0;
        }
    }
    if ((int64_t)len > s->cap - (s->offset + s->written)) {
        char a[32];
        fail_with(s, ABORT_TOO_BIG, "the server sent more than %s (%s)",
                  dl_fmt_bytes((double)s->cap, a, sizeof a),
                  s->expected >= 0 ? "the manifest's size" : "the cap for files of unknown size");
        return 0;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(s->fd, data + done, len - done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            s->write_errno = w < 0 ? errno : EIO;
            fail_with(s, ABORT_WRITE, "%s", strerror(s->write_errno));
            return 0;
        }
        done += (size_t)w;
        s->written += w;
    }
    return len;
}

/* ---------------------------------------------------------------- one transfer */

typedef enum attempt_kind {
    ATTEMPT_OK = 0,
    ATTEMPT_TRANSIENT, /* retry after a backoff */
    ATTEMPT_RESTART,   /* truncate the file and retry at once */
    ATTEMPT_PERMANENT, /* give this URL up */
    ATTEMPT_FATAL      /* give everything up */
} attempt_kind;

static void set_protocols(CURL *c)
{
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85: the string forms; the bitmasks are deprecated */
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
}

static attempt_kind classify_http(long code)
{
    if (code == 408 || code == 429 || code >= 500) {
        return ATTEMPT_TRANSIENT;
    }
    return ATTEMPT_PERMANENT;
}

static attempt_kind classify_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
        return ATTEMPT_TRANSIENT;
    default:
        return ATTEMPT_PERMANENT;
    }
}

/* One HTTP transfer appending to fd. msg receives the reason of a failure. */
static attempt_kind attempt(CURL *c, const char *url, dl_state *s, char *msg, size_t msg_size,
                            double *retry_after)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct stat st;
    if (fstat(s->fd, &st) != 0) {
        snprintf(msg, msg_size, "cannot stat the partial file: %s", strerror(errno));
        return ATTEMPT_FATAL;
    }
    s->offset = st.st_size;
    s->written = 0;
    if (s->expected >= 0 && s->offset > s->expected) {
        /* More than the whole file: not a prefix of it. */
        if (ftruncate(s->fd, 0) != 0) {
            snprintf(msg, msg_size, "cannot truncate the partial file: %s", strerror(errno));
            return ATTEMPT_FATAL;
        }
        s->offset = 0;
    }
    if (lseek(s->fd, s->offset, SEEK_SET) < 0) {
        snprintf(msg, msg_size, "cannot seek in the partial file: %s", strerror(errno));
        return ATTEMPT_FATAL;
    }
    if (s->expected >= 0 && s->offset == s->expected) {
        /* Complete from an earlier run: verification decides, and a mismatch is retried
         * once from scratch like any file assembled from several transfers. */
        s->resumed |= s->offset > 0;
        return ATTEMPT_OK;
    }
    s->status = 0;
    s->validated = 0;
    s->abort = ABORT_NONE;
    s->abort_msg[0] = '\0';
    s->retry_after = -1;
    s->t_start = s->t_last_draw = mpsl_now();
    const fetch_options *o = s->o;

    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    set_protocols(c);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, o->max_redirects);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, o->connect_timeout);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, o->low_speed_limit);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, o->low_speed_time);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "mpsl-fetch/" MPSL_VERSION);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, s);
    if (s->offset > 0) {
        curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)s->offset);
    }
    /* No CURLOPT_MAXFILESIZE: validate_response() refuses an oversized Content-Length with a
     * better message, and on_body() enforces the cap on what actually arrives. */

    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK && s->validated && o->progress == FETCH_PROGRESS_BAR) {
        draw_progress(s, 1);
    } else if (s->drew_bar) {
        fputc('\n', stderr);
        s->drew_bar = 0;
    }
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    *retry_after = s->retry_after;
    char a[32];
    if (rc == CURLE_OK) {
        if (code < 200 || code >= 300 || code == 204) {
            snprintf(msg, msg_size, "HTTP %ld: no file in the response", code);
            return ATTEMPT_PERMANENT;
        }
        if (s->expected >= 0 && s->offset + s->written < s->expected) {
            /* A close-delimited body that ended early: resume it. */
            snprintf(msg, msg_size, "the transfer ended after %" PRId64 " of %" PRId64 " bytes",
                     s->offset + s->written, s->expected);
            return ATTEMPT_TRANSIENT;
        }
        return ATTEMPT_OK;
    }
    if (s->abort != ABORT_NONE) {
        switch (s->abort) {
        case ABORT_WRITE:
            snprintf(msg, msg_size, "cannot write the partial file: %s%s", s->abort_msg,
                     s->write_errno == ENOSPC || s->write_errno == EDQUOT
                         ? " (disk full: free some space and run the same command again to "
                           "resume)"
                         : "");
            return ATTEMPT_FATAL;
        case ABORT_BAD_RANGE:
            snprintf(msg, msg_size, "%s; starting over", s->abort_msg);
            return ATTEMPT_RESTART;
        case ABORT_HTTP:
            snprintf(msg, msg_size, "%s", s->abort_msg);
            return classify_http(s->status);
        default:
            snprintf(msg, msg_size, "%s", s->abort_msg);
            return ATTEMPT_PERMANENT;
        }
    }
    if (rc == CURLE_HTTP_RETURNED_ERROR) {
        if (code == 416 && s->offset > 0) {
            snprintf(msg, msg_size, "HTTP 416: the server cannot resume from byte %" PRId64
                     "; starting over", s->offset);
            return ATTEMPT_RESTART;
        }
        snprintf(msg, msg_size, "HTTP %ld", code);
        return classify_http(code);
    }
    if (rc == CURLE_RANGE_ERROR) {
        snprintf(msg, msg_size, "the server ignored the range request; starting over");
        return ATTEMPT_RESTART;
    }
    if (rc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(msg, msg_size, "the server announces more than %s",
                 dl_fmt_bytes((double)s->cap, a, sizeof a));
        return ATTEMPT_PERMANENT;
    }
    if (rc == CURLE_UNSUPPORTED_PROTOCOL) {
        snprintf(msg, msg_size, "refused: %s (only http and https are allowed, on redirects "
                 "too)", errbuf[0] ? errbuf : curl_easy_strerror(rc));
        return ATTEMPT_PERMANENT;
    }
    if (rc == CURLE_OPERATION_TIMEDOUT && s->validated) {
        snprintf(msg, msg_size, "stalled: less than %ld bytes/s for %ld s (%s)",
                 o->low_speed_limit, o->low_speed_time, errbuf[0] ? errbuf : "timeout");
        return ATTEMPT_TRANSIENT;
    }
    if (rc == CURLE_PEER_FAILED_VERIFICATION) {
        snprintf(msg, msg_size, "TLS certificate verification failed: %s (mpsl never turns "
                 "verification off; use a trusted mirror with --mirror)", errbuf);
        return ATTEMPT_PERMANENT;
    }
    snprintf(msg, msg_size, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    return classify_curl(rc);
}

/* ---------------------------------------------------------------- retries */

static void sleep_seconds(double s)
{
    if (!(s > 0)) {
        return;
    }
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Backoff before retry number `retry` (0-based): retry_delay * 2^retry, capped, times a
 * jitter in [0.5, 1]; at least the server's Retry-After (itself capped). */
static double backoff(const fetch_options *o, int retry, double retry_after, mpsl_rng *rng)
{
    double d = o->retry_delay * pow(2.0, retry);
    d = d > o->retry_max_delay ? o->retry_max_delay : d;
    d *= 0.5 + 0.5 * mpsl_rng_uniform(rng);
    if (retry_after > d) {
        d = retry_after > o->retry_max_delay ? o->retry_max_delay : retry_after;
    }
    return d;
}

/* Enough free space for what is left to receive? Checked once, when the size is known. */
static int check_space(int fd, int64_t need, mpsl_error *err)
{
    struct statvfs vfs;
    if (need <= 0 || fstatvfs(fd, &vfs) != 0) {
        return MPSL_OK;
    }
    double avail = (double)vfs.f_bavail * (double)vfs.f_frsize;
    if (avail < (double)need) {
        char a[32], b[32];
        return mpsl_errs(err, MPSL_ERR_IO, "not enough disk space: %s still to download, "
                         "%s free in the dataset directory", dl_fmt_bytes((double)need, a, sizeof a),
                         dl_fmt_bytes(avail, b, sizeof b));
    }
    return MPSL_OK;
}

dl_outcome dl_fetch(const char *url, const char *part_path, const char *label,
                    int64_t expected_size, const fetch_options *o, dl_result *res,
                    mpsl_error *err)
{
    memset(res, 0, sizeof *res);
    int fd = open(part_path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        mpsl_errs(err, MPSL_ERR_IO, "cannot open %s: %s", part_path, strerror(errno));
        return DL_FATAL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        mpsl_errs(err, MPSL_ERR_IO, "%s is not a regular file", part_path);
        return DL_FATAL;
    }
    if (expected_size >= 0 && st.st_size <= expected_size &&
        check_space(fd, expected_size - st.st_size, err) != MPSL_OK) {
        close(fd);
        return DL_FATAL;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        close(fd);
        mpsl_errs(err, MPSL_ERR_NOMEM, "cannot create a libcurl handle");
        return DL_FATAL;
    }
    dl_state s;
    memset(&s, 0, sizeof s);
    s.fd = fd;
    s.label = label;
    s.o = o;
    s.expected = expected_size;
    s.cap = expected_size >= 0 && expected_size < o->max_bytes ? expected_size : o->max_bytes;
    mpsl_rng rng;
    mpsl_rng_seed(&rng, (uint64_t)getpid() ^ (uint64_t)(mpsl_now() * 1e6));

    double t0 = mpsl_now();
    int failures = 0, restarts = 0;
    dl_outcome out = DL_FAILED;
    char msg[768] = "";
    /* A retry that made progress does not count against the retries (a flaky link on a
     * 13 GB archive should still finish); the total is bounded all the same. */
    for (int total_attempts = 0; total_attempts < 1000; total_attempts++) {
        double retry_after = -1;
        attempt_kind k = attempt(c, url, &s, msg, sizeof msg, &retry_after);
        res->bytes_received += s.written;
        if (k == ATTEMPT_OK) {
            out = DL_OK;
            break;
        }
        if (k == ATTEMPT_FATAL) {
            mpsl_errs(err, MPSL_ERR_IO, "%s", msg);
            out = DL_FATAL;
            break;
        }
        if (k == ATTEMPT_PERMANENT) {
            mpsl_errs(err, MPSL_ERR_IO, "%s from %s", msg, url);
            break;
        }
        if (k == ATTEMPT_RESTART) {
            s.resumed = 0;
            if (ftruncate(fd, 0) != 0) {
                mpsl_errs(err, MPSL_ERR_IO, "cannot truncate %s: %s", part_path, strerror(errno));
                out = DL_FATAL;
                break;
            }
            if (++restarts > 2) {
                mpsl_errs(err, MPSL_ERR_IO, "%s from %s (again)", msg, url);
                break;
            }
            mpsl_log(MPSL_LOG_INFO, "  %s: %s", label, msg);
            continue;
        }
        /* transient */
        if (s.written >= 65536) {
            failures = 0;
        }
        if (failures >= o->retries) {
            mpsl_errs(err, MPSL_ERR_IO, "%s from %s (gave up after %d retr%s)", msg, url,
                      o->retries, o->retries == 1 ? "y" : "ies");
            break;
        }
        double d = backoff(o, failures, retry_after, &rng);
        mpsl_log(MPSL_LOG_INFO, "  %s: %s; retry %d/%d in %.2f s", label, msg, failures + 1,
                 o->retries, d);
        failures++;
        sleep_seconds(d);
    }
    if (fstat(fd, &st) == 0) {
        res->final_size = st.st_size;
    }
    res->resumed = s.resumed;
    res->seconds = mpsl_now() - t0;
    curl_easy_cleanup(c);
    if (close(fd) != 0 && out == DL_OK) {
        mpsl_errs(err, MPSL_ERR_IO, "cannot close %s: %s", part_path, strerror(errno));
        out = DL_FATAL;
    }
    return out;
}
