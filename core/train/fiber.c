/* fiber.c: coroutines with getcontext/makecontext/swapcontext. Stacks are anonymous mappings
 * with a PROT_NONE guard page at the low end, so an overflow faults instead of corrupting a
 * neighbour; untouched pages cost no memory, which keeps a thousand client roles cheap.
 *
 * Under AddressSanitizer (scripts/test.sh --sanitize) every switch is announced with
 * __sanitizer_start_switch_fiber / __sanitizer_finish_switch_fiber, so ASan knows which stack
 * runs and reports no false stack overflows across fibers. */
#include "fiber.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define FIBER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FIBER_ASAN 1
#endif
#endif

#ifdef FIBER_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

struct fiber {
    ucontext_t ctx;
    ucontext_t caller;          /* where fiber_yield and the end of fn return to */
    void (*fn)(void *);
    void *arg;
    void *map;                  /* guard page + stack */
    size_t map_bytes;
    int finished;
#ifdef FIBER_ASAN
    void *stack;                /* the usable stack, above the guard page */
    size_t stack_bytes;
    const void *caller_stack;   /* the stack that resumed it last (the scheduler's) */
    size_t caller_bytes;
    void *fake_stack;           /* ASan's fake stack of the fiber while it is switched out */
#endif
};

/* The fiber running now (NULL on the scheduler's own stack). One thread runs fibers. */
static fiber *running;

/* ASan's view of the switches (nothing without ASan). Entering f: from the scheduler, which
 * starts the switch to f's stack, to f, which finishes it and learns the scheduler's stack.
 * Leaving f: the reverse; a finished fiber passes no fake stack, so ASan frees it. */
static void enter_start(fiber *f, void **save)
{
#ifdef FIBER_ASAN
    __sanitizer_start_switch_fiber(save, f->stack, f->stack_bytes);
#else
    (void)f, (void)save;
#endif
}

static void enter_finish(fiber *f)
{
#ifdef FIBER_ASAN
    __sanitizer_finish_switch_fiber(f->fake_stack, &f->caller_stack, &f->caller_bytes);
#else
    (void)f;
#endif
}

static void leave_start(fiber *f, int finished)
{
#ifdef FIBER_ASAN
    __sanitizer_start_switch_fiber(finished ? NULL : &f->fake_stack, f->caller_stack,
                                   f->caller_bytes);
#else
    (void)f, (void)finished;
#endif
}

static void leave_finish(void *save)
{
#ifdef FIBER_ASAN
    __sanitizer_finish_switch_fiber(save, NULL, NULL);
#else
    (void)save;
#endif
}

static void trampoline(void)
{
    fiber *volatile f = running; /* volatile: this frame is left and re-entered by swapcontext */
    enter_finish(f);
    f->fn(f->arg);
    f->finished = 1;
    leave_start(f, 1);
    /* returning continues at uc_link, f->caller: the fiber_resume that ran it last */
}

fiber *fiber_create(void (*fn)(void *), void *arg, size_t stack_bytes)
{
    /* volatile: getcontext may in principle return twice (it never does here) */
    fiber *volatile f = calloc(1, sizeof *f);
    if (!f) {
        return NULL;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    stack_bytes = (stack_bytes + page - 1) / page * page;
    f->map_bytes = stack_bytes + page;
    f->map = mmap(NULL, f->map_bytes, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (f->map == MAP_FAILED) {
        free(f);
        return NULL;
    }
    mprotect(f->map, page, PROT_NONE); /* the guard: stacks grow down towards it */
    if (getcontext(&f->ctx) != 0) {
        munmap(f->map, f->map_bytes);
        free(f);
        return NULL;
    }
    f->fn = fn;
    f->arg = arg;
    f->ctx.uc_stack.ss_sp = (char *)f->map + page;
    f->ctx.uc_stack.ss_size = stack_bytes;
    f->ctx.uc_link = &f->caller;
#ifdef FIBER_ASAN
    f->stack = (char *)f->map + page;
    f->stack_bytes = stack_bytes;
#endif
    makecontext(&f->ctx, trampoline, 0);
    return f;
}

int fiber_resume(fiber *f)
{
    fiber *outer = running;
    void *save = NULL;
    running = f;
    enter_start(f, &save);
    swapcontext(&f->caller, &f->ctx);
    leave_finish(save);
    running = outer;
    return f->finished;
}

void fiber_yield(void)
{
    fiber *f = running;
    if (f) {
        leave_start(f, 0);
        swapcontext(&f->ctx, &f->caller);
        enter_finish(f);
    }
}

void fiber_destroy(fiber *f)
{
    if (f) {
#ifdef FIBER_ASAN
        /* an unfinished fiber's frames leave their redzones poisoned: clear them, or the
         * next mapping at this address would inherit them */
        ASAN_UNPOISON_MEMORY_REGION(f->stack, f->stack_bytes);
#endif
        munmap(f->map, f->map_bytes);
        free(f);
    }
}
