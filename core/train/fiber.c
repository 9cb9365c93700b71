/* fiber.c: coroutines with getcontext/makecontext/swapcontext. Stacks are anonymous mappings
 * with a PROT_NONE guard page at the low end, so an overflow faults instead of corrupting a
 * neighbour; untouched pages cost no memory, which keeps a thousand client roles cheap. */
#include "fiber.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

struct fiber {
    ucontext_t ctx;
    ucontext_t caller;          /* where fiber_yield and the end of fn return to */
    void (*fn)(void *);
    void *arg;
    void *map;                  /* guard page + stack */
    size_t map_bytes;
    int finished;
};

/* The fiber running now (NULL on the scheduler's own stack). One thread runs fibers. */
static fiber *running;

static void trampoline(void)
{
    fiber *volatile f = running; /* volatile: this frame is left and re-entered by swapcontext */
    f->fn(f->arg);
    f->finished = 1;
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
    makecontext(&f->ctx, trampoline, 0);
    return f;
}

int fiber_resume(fiber *f)
{
    fiber *outer = running;
    running = f;
    swapcontext(&f->caller, &f->ctx);
    running = outer;
    return f->finished;
}

void fiber_yield(void)
{
    fiber *f = running;
    if (f) {
        swapcontext(&f->ctx, &f->caller);
    }
}

void fiber_destroy(fiber *f)
{
    if (f) {
        munmap(f->map, f->map_bytes);
        free(f);
    }
}
