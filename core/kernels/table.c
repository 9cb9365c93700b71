/* table.c: the kernel table plugins call through mpsl_host.kernels. */
#include "kernels.h"

static const mpsl_kernels table = {
    .size = sizeof(mpsl_kernels),
    .linear_forward = kern_linear_forward,
    .linear_backward = kern_linear_backward,
    .relu_forward = kern_relu_forward,
    .relu_backward = kern_relu_backward,
    .meanpool_forward = kern_meanpool_forward,
    .meanpool_backward = kern_meanpool_backward,
    .cross_entropy = kern_cross_entropy,
    .patch_gather = kern_patch_gather,
};

const mpsl_kernels *kernels_table(void) { return &table; }
