/* fiber.h: coroutines on one thread (ucontext), so that each role of a strategy can be a plain
 * sequential function that waits for messages, while one process runs many roles. A fiber runs
 * until it yields or returns; only the scheduler resumes fibers, fibers never resume each
 * other. */
#ifndef MPSL_FIBER_H
#define MPSL_FIBER_H

#include <stddef.h>

typedef struct fiber fiber;

/* A fiber that will run fn(arg) on its own stack (stack_bytes, with a guard page below it;
 * pages are committed only when touched). NULL when memory runs out. */
fiber *fiber_create(void (*fn)(void *), void *arg, size_t stack_bytes);
/* Run f until it yields or returns. Returns 1 if f has returned (it must not be resumed
 * again), 0 if it yielded. */
int fiber_resume(fiber *f);
/* From inside a fiber: back to the scheduler that resumed it. */
void fiber_yield(void);
/* Free a fiber, finished or not (an unfinished one is simply never resumed again: whatever
 * its function holds must be owned elsewhere, as role resources are). */
void fiber_destroy(fiber *f);

#endif
