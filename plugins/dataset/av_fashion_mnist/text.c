/* text.c: the optional text modality. A short description built from one of six templates that
 * say nothing about the class (no "a"/"an" that would give the first letter away), with the
 * class name, which with probability `noise` is replaced by the neutral word "item". */
#include <stdio.h>

#include "avf.h"

const char *const avf_written[AVF_CLASSES] = {
    "t-shirt", "trousers", "pullover", "dress", "coat",
    "sandal",  "shirt",    "sneaker",  "bag",   "ankle boot",
};

static const char *const avf_templates[] = {
    "a photo of the %s", "this %s is on sale", "catalogue entry: %s",
    "look at this %s",   "here is one %s",     "the %s, photographed",
};
#define AVF_N_TEMPLATES ((int)(sizeof avf_templates / sizeof avf_templates[0]))

void avf_text_make(const mpsl_host *h, uint64_t seed, int split, int64_t index, int cls,
                   double noise, int len, int32_t *out)
{
    mpsl_rng r;
    h->rng->seed_sample(&r, seed, split, index, AVF_STREAM_TEXT);
    int t = (int)h->rng->below(&r, AVF_N_TEMPLATES);
    const char *name = h->rng->uniform(&r) < noise ? "item" : avf_written[cls];
    char buf[128];
    snprintf(buf, sizeof buf, avf_templates[t], name);
    int i = 0;
    for (; i < len && buf[i]; i++) {
        out[i] = (unsigned char)buf[i];
    }
    for (; i < len; i++) {
        out[i] = 0;
    }
}
