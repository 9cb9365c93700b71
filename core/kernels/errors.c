/* errors.c: how a kernel that cannot do its work says so (kernels.h, KERNEL ERRORS), and the
 * scratch allocations kernels make, with a switch for the tests to make them fail. */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

/* The first error since the last kern_error_take. Kernels run on the pool's threads, so one
 * error per process, under a lock (errors are rare; the fast path never takes it). */
static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static int err_status;
static char err_msg[256];

void kern_error(int status, const char *fmt, ...)
{
    pthread_mutex_lock(&err_lock);
    if (err_status == 0) {
        err_status = status ? status : MPSL_ERR_INTERNAL;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err_msg, sizeof err_msg, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&err_lock);
}

int kern_error_take(char *msg, size_t size)
{
    pthread_mutex_lock(&err_lock);
    int status = err_status;
    if (msg && size) {
        snprintf(msg, size, "%s", status ? err_msg : "");
    }
    err_status = 0;
    err_msg[0] = '\0';
    pthread_mutex_unlock(&err_lock);
    return status;
}

static atomic_int fail_allocs;
static atomic_long alloc_failures;

void *kern_alloc(size_t bytes)
{
    if (atomic_load_explicit(&fail_allocs, memory_order_relaxed)) {
        atomic_fetch_add(&alloc_failures, 1);
        return NULL;
    }
    size_t rounded = (bytes + 63) & ~(size_t)63;
    void *p = rounded >= bytes ? aligned_alloc(64, rounded ? rounded : 64) : NULL;
    if (!p) {
        atomic_fetch_add(&alloc_failures, 1);
    }
    return p;
}

void kern_test_fail_alloc(int on)
{
    atomic_store(&fail_allocs, on != 0);
}

long kern_alloc_failures(void)
{
    return atomic_load(&alloc_failures);
}
