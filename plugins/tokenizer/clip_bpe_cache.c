/* clip_bpe_cache.c: the process-wide, reference-counted list of loaded BPE tables (see
 * clip_bpe_cache.h). A short list searched linearly: a run names one merges file, rarely
 * more. */
#include "clip_bpe_cache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mpsl/plugin.h>

/* What identifies a file's contents without reading it. */
typedef struct {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} file_id;

typedef struct bpe_entry {
    struct bpe_entry *next;
    file_id id;
    int keyed;                   // 0: the file changed while it was read; never matched again
    int64_t refs;
    clip_bpe *tables;
} bpe_entry;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static bpe_entry *g_entries;     // under g_lock

static int file_id_of(const char *path, file_id *id)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        return -1;
    }
    memset(id, 0, sizeof(*id));
    id->dev = st.st_dev;
    id->ino = st.st_ino;
    id->size = st.st_size;
    id->mtime = st.st_mtim;
    return 0;
}

static int same_file(const file_id *a, const file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
           a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

int clip_bpe_acquire(const char *path, const clip_bpe **out, char *msg, size_t msg_len)
{
    *out = NULL;
    pthread_mutex_lock(&g_lock);
    file_id before;
    int known = file_id_of(path, &before) == 0;
    for (bpe_entry *e = g_entries; known && e; e = e->next) {
        if (e->keyed && same_file(&e->id, &before)) {
            e->refs++;
            *out = e->tables;
            pthread_mutex_unlock(&g_lock);
            return MPSL_OK;
        }
    }
    // not held yet, or stat() failed: a load either succeeds or words the error as always
    bpe_entry *e = calloc(1, sizeof(*e));
    if (!e) {
        pthread_mutex_unlock(&g_lock);
        snprintf(msg, msg_len, "out of memory reading bpe_path '%s'", path);
        return MPSL_ERR_NOMEM;
    }
    int rc = clip_bpe_load(path, &e->tables, msg, msg_len);
    if (rc != MPSL_OK) {
        free(e);
        pthread_mutex_unlock(&g_lock);
        return rc;
    }
    // key it only when the file is the same before and after reading: a file replaced
    // mid-read must not be matched by its new identity with the old contents
    file_id after;
    e->keyed = known && file_id_of(path, &after) == 0 && same_file(&before, &after);
    e->id = before;
    e->refs = 1;
    e->next = g_entries;
    g_entries = e;
    *out = e->tables;
    pthread_mutex_unlock(&g_lock);
    return MPSL_OK;
}

void clip_bpe_release(const clip_bpe *b)
{
    if (!b) {
        return;
    }
    pthread_mutex_lock(&g_lock);
    for (bpe_entry **p = &g_entries; *p; p = &(*p)->next) {
        bpe_entry *e = *p;
        if (e->tables != b) {
            continue;
        }
        if (--e->refs == 0) {
            *p = e->next;
            clip_bpe_free(e->tables);
            free(e);
        }
        break;
    }
    // a pointer that was never acquired is a caller's bug; ignoring it beats freeing it
    pthread_mutex_unlock(&g_lock);
}

int64_t clip_bpe_cache_tables(void)
{
    pthread_mutex_lock(&g_lock);
    int64_t n = 0;
    for (const bpe_entry *e = g_entries; e; e = e->next) {
        n++;
    }
    pthread_mutex_unlock(&g_lock);
    return n;
}

int64_t clip_bpe_cache_refs(void)
{
    pthread_mutex_lock(&g_lock);
    int64_t n = 0;
    for (const bpe_entry *e = g_entries; e; e = e->next) {
        n += e->refs;
    }
    pthread_mutex_unlock(&g_lock);
    return n;
}
