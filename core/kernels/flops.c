/* flops.c: the current FLOP counter target (single-threaded orchestration sets it). */
#include "flops.h"

static double *target;

void flops_set_target(double *counters) { target = counters; }

void flops_add(mpsl_pass pass, double n)
{
    if (target) {
        target[pass] += n;
    }
}

double *flops_get_target(void) { return target; }
