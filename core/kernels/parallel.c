/* parallel.c: the kernels' own thread pool. Workers persist, spin briefly after each job (the
 * next kernel usually follows within microseconds) and then sleep on a condition variable, so
 * an idle pool costs nothing. OpenBLAS is kept at one thread: every parallel GEMM is split by
 * the pool, so the two thread pools never compete for the same cores (see kernels.h). */
#include <cblas.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "kernels.h"

#define KERN_MAX_THREADS 256
/* Busy-wait iterations before a worker goes to sleep (about 100-200 microseconds). */
#define KERN_SPIN 20000

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() ((void)0)
#endif

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t tid[KERN_MAX_THREADS];
    uint_fast64_t born[KERN_MAX_THREADS]; /* gen when each worker was created */
    int started;                 /* workers running (thread ids 1..started) */
    int threads;                 /* threads a parallel region uses, caller included */
    atomic_uint_fast64_t gen;    /* bumped once per job */
    atomic_int sleepers;         /* workers blocked in cond_wait */
    atomic_int pending;          /* workers that have not finished the current job */
    atomic_int busy;             /* a parallel region is in flight */
    /* the current job */
    kern_range_fn fn;
    void *ctx;
    int64_t n;
    int parts;
} kern_pool;

static kern_pool pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static _Thread_local int in_worker;

static void run_part(int part)
{
    int64_t n = pool.n, p = pool.parts;
    int64_t begin = n * part / p, end = n * (part + 1) / p;
    if (begin < end) {
        pool.fn(pool.ctx, begin, end, part);
    }
}

static void *worker_main(void *arg)
{
    int id = (int)(intptr_t)arg;
    in_worker = 1;
    uint_fast64_t seen = pool.born[id];
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&pool.gen, memory_order_acquire) == seen &&
               spins < KERN_SPIN) {
            cpu_relax();
            spins++;
        }
        if (atomic_load(&pool.gen) == seen) {
            pthread_mutex_lock(&pool.mu);
            atomic_fetch_add(&pool.sleepers, 1);
            while (atomic_load(&pool.gen) == seen) {
                pthread_cond_wait(&pool.cv, &pool.mu);
            }
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.mu);
        }
        seen = atomic_load(&pool.gen);
        // every worker acknowledges every job, so the job's fields stay unchanged until all
        // workers are done reading them
        if (id < pool.parts) {
            run_part(id);
        }
        atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_release);
    }
    return NULL;
}

static int default_threads(void)
{
    const char *env = getenv("MPSL_THREADS");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end == '\0' && v >= 1) {
            return v > KERN_MAX_THREADS ? KERN_MAX_THREADS : (int)v;
        }
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) >= 1 &&
        CPU_COUNT(&set) < n) {
        n = CPU_COUNT(&set);
    }
    if (n < 1) {
        n = 1;
    }
    return n > KERN_MAX_THREADS ? KERN_MAX_THREADS : (int)n;
}

static void pool_init(void)
{
    pool.threads = default_threads();
    // all BLAS parallelism comes from splitting GEMMs over the pool (kernels.h)
    openblas_set_num_threads(1);
}

int kern_threads(void)
{
    pthread_once(&pool_once, pool_init);
    return pool.threads;
}

void kern_set_threads(int n)
{
    pthread_once(&pool_once, pool_init);
    pool.threads = n >= 1 ? (n > KERN_MAX_THREADS ? KERN_MAX_THREADS : n) : default_threads();
    openblas_set_num_threads(1);
}

/* Starts workers 1..want-1 that are not running yet; returns how many threads can run. */
static int ensure_workers(int want)
{
    while (pool.started < want - 1) {
        int id = pool.started + 1;
        pool.born[id] = atomic_load(&pool.gen);
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&pool.tid[id], &attr, worker_main, (void *)(intptr_t)id);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            break;
        }
        pool.started = id;
    }
    return pool.started + 1 < want ? pool.started + 1 : want;
}

void kern_parallel_for(int64_t n, int64_t grain, kern_range_fn fn, void *ctx)
{
    if (n <= 0) {
        return;
    }
    int threads = kern_threads();
    if (grain < 1) {
        grain = 1;
    }
    int64_t parts = n / grain;   // every part gets at least `grain` items
    if (parts > threads) {
        parts = threads;
    }
    int expected = 0;
    // serial: one part, called from a worker (nested) or while another region runs
    if (parts <= 1 || in_worker || !atomic_compare_exchange_strong(&pool.busy, &expected, 1)) {
        fn(ctx, 0, n, 0);
        return;
    }
    parts = ensure_workers((int)parts);
    if (parts <= 1) {
        atomic_store(&pool.busy, 0);
        fn(ctx, 0, n, 0);
        return;
    }
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    pool.parts = (int)parts;
    atomic_store(&pool.pending, pool.started);
    // workers with id >= parts wake up, see they have no part and go back to waiting
    atomic_fetch_add(&pool.gen, 1);
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.mu);
        pthread_cond_broadcast(&pool.cv);
        pthread_mutex_unlock(&pool.mu);
    }
    in_worker = 1;   // nested regions inside the caller's part run serially too
    run_part(0);
    in_worker = 0;
    int spins = 0;
    while (atomic_load_explicit(&pool.pending, memory_order_acquire) > 0) {
        if (++spins < KERN_SPIN) {
            cpu_relax();
        } else {
            sched_yield();
        }
    }
    atomic_store(&pool.busy, 0);
}
