/* parallel.c: the kernels' own thread pool. Workers persist, spin briefly after each job (the
 * next kernel usually follows within microseconds) and then sleep on a condition variable, so
 * an idle pool costs nothing. Threads claim slices of a job dynamically. OpenBLAS is kept at one thread: every parallel GEMM is split by
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
/* Slices per thread: a few, so that a thread the OS holds back (another process on the core)
 * delays a region by one slice, not by its whole share. */
#define KERN_SLICES_PER_THREAD 4
/* Busy-wait iterations before a worker goes to sleep (about 100-200 microseconds). */
#define KERN_SPIN 20000

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* One job at a time. `ticket` packs the job number (high 32 bits) and the next unclaimed
 * slice (low 32 bits); a thread claims a slice with a compare-and-swap on it, so a worker that
 * wakes late can only claim slices of the job that is current, whose fields stay unchanged
 * until all its slices are done. The caller claims slices too, so a region never waits for a
 * worker that has not started. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started;                  /* workers running, ids 1..started */
    atomic_int threads;           /* threads a parallel region uses, caller included */
    atomic_uint_fast64_t ticket;
    atomic_int sleepers;          /* workers blocked in cond_wait */
    atomic_int done;              /* slices of the current job finished */
    atomic_int busy;              /* a parallel region is in flight */
    /* the current job */
    _Atomic(kern_range_fn) fn;
    _Atomic(void *) ctx;
    atomic_int_fast64_t n;
    atomic_int slices;
} kern_pool;

static kern_pool pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static _Thread_local int in_worker;

/* Claims and runs slices of the current job until none is left; *job receives its number. */
static void help(uint32_t *job)
{
    for (;;) {
        uint_fast64_t t = atomic_load_explicit(&pool.ticket, memory_order_acquire);
        *job = (uint32_t)(t >> 32);
        int64_t slice = (int64_t)(t & 0xffffffffu);
        // read before claiming; only used when the claim succeeds, which proves they belong
        // to job t (a newer job cannot start before this one's slices are all done)
        kern_range_fn fn = atomic_load_explicit(&pool.fn, memory_order_relaxed);
        void *ctx = atomic_load_explicit(&pool.ctx, memory_order_relaxed);
        int64_t n = atomic_load_explicit(&pool.n, memory_order_relaxed);
        int64_t slices = atomic_load_explicit(&pool.slices, memory_order_relaxed);
        if (slice >= slices) {
            return;
        }
        if (!atomic_compare_exchange_weak_explicit(&pool.ticket, &t, t + 1,
                                                   memory_order_acq_rel,
                                                   memory_order_relaxed)) {
            continue;
        }
        fn(ctx, n * slice / slices, n * (slice + 1) / slices, (int)slice);
        atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
    }
}

static uint32_t current_job(void) { return (uint32_t)(atomic_load(&pool.ticket) >> 32); }

static void *worker_main(void *arg)
{
    int id = (int)(intptr_t)arg;
    in_worker = 1;
    uint32_t seen = current_job();
    for (;;) {
        // workers beyond the current thread count sit the job out
        if (id < atomic_load(&pool.threads)) {
            help(&seen);
        } else {
            seen = current_job();
        }
        int spins = 0;
        while (current_job() == seen && spins < KERN_SPIN) {
            cpu_relax();
            spins++;
        }
        if (current_job() == seen) {
            pthread_mutex_lock(&pool.mu);
            atomic_fetch_add(&pool.sleepers, 1);
            while (current_job() == seen) {
                pthread_cond_wait(&pool.cv, &pool.mu);
            }
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.mu);
        }
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

/* Starts workers until want - 1 run (or creating one fails). */
static void ensure_workers(int want)
{
    while (pool.started < want - 1) {
        pthread_t tid;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&tid, &attr, worker_main, (void *)(intptr_t)(pool.started + 1));
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            break;
        }
        pool.started++;
    }
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
    int64_t slices = n / grain;   // every slice gets at least `grain` items
    if (slices > (int64_t)threads * KERN_SLICES_PER_THREAD) {
        slices = (int64_t)threads * KERN_SLICES_PER_THREAD;
    }
    int expected = 0;
    // serial: one slice, one thread, called from a worker (nested) or while another thread's
    // region runs
    if (slices <= 1 || threads <= 1 || in_worker ||
        !atomic_compare_exchange_strong(&pool.busy, &expected, 1)) {
        fn(ctx, 0, n, 0);
        return;
    }
    ensure_workers(threads);
    atomic_store_explicit(&pool.fn, fn, memory_order_relaxed);
    atomic_store_explicit(&pool.ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&pool.n, n, memory_order_relaxed);
    atomic_store_explicit(&pool.slices, (int)slices, memory_order_relaxed);
    atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
    uint_fast64_t job = (uint_fast64_t)(current_job() + 1u);
    atomic_store(&pool.ticket, (job & 0xffffffffu) << 32);   // publishes the fields above
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.mu);
        pthread_cond_broadcast(&pool.cv);
        pthread_mutex_unlock(&pool.mu);
    }
    uint32_t unused;
    in_worker = 1;   // nested regions inside the caller's slices run serially too
    help(&unused);
    in_worker = 0;
    int spins = 0;
    while (atomic_load_explicit(&pool.done, memory_order_acquire) < slices) {
        if (++spins < KERN_SPIN) {
            cpu_relax();
        } else {
            sched_yield();
        }
    }
    atomic_store(&pool.busy, 0);
}
