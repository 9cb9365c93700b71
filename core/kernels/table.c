/* table.c: the kernel table plugins call through mpsl_host.kernels. */
#include "../util/profile.h"
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
    .layernorm_forward = kern_layernorm_forward,
    .layernorm_backward = kern_layernorm_backward,
    .gelu_forward = kern_gelu_forward,
    .gelu_backward = kern_gelu_backward,
    .attention_forward = kern_attention_forward,
    .attention_backward = kern_attention_backward,
    .add = kern_add,
    .bias_add_forward = kern_bias_add_forward,
    .bias_add_backward = kern_bias_add_backward,
    .patch_gather_strided = kern_patch_gather_strided,
    .embedding_forward = kern_embedding_forward,
    .embedding_backward = kern_embedding_backward,
    .token_select_forward = kern_token_select_forward,
    .token_select_backward = kern_token_select_backward,
    .contrastive_loss = kern_contrastive_loss,
    .l2norm_forward = kern_l2norm_forward,
    .l2norm_backward = kern_l2norm_backward,
};

/* With MPSL_PROFILE=1 (profile_configure ran first) the same kernels, each call timed. */
const mpsl_kernels *kernels_table(void)
{
    return profile_on ? kernels_table_profiled() : &table;
}
