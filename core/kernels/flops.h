/* flops.h: where kernels add the floating-point operations they executed. The session points
 * the counter at the party (and client) currently computing; kernels only call flops_add. */
#ifndef MPSL_FLOPS_H
#define MPSL_FLOPS_H

#include "mpsl/plugin.h"

/* counters[MPSL_PASS_FORWARD], counters[MPSL_PASS_BACKWARD]; NULL stops counting. */
void flops_set_target(double *counters);
void flops_add(mpsl_pass pass, double n);
/* The current target (to restore it after a pause such as evaluation). */
double *flops_get_target(void);

#endif
