/* profile.c: the counters behind MPSL_PROFILE (profile.h). */
#include "profile.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

int profile_on;

static profile_counts counts;
static double interval_started;

static const char *const phase_names[PROF_PHASES] = {
    "data",     "tokenize",    "encode",      "loss",     "optimizer",  "messages",
    "network_wait", "evaluation", "diagnostics", "database", "checkpoint",
};
static const char *const kernel_names[PK_KINDS] = {
    "linear_forward", "linear_backward", "attention_forward", "attention_backward",
    "layernorm",      "activation",      "elementwise",       "loss",
    "layout",         "l2norm",
};

void profile_configure(void)
{
    const char *v = getenv("MPSL_PROFILE");
    profile_on = v && strcmp(v, "1") == 0;
    memset(&counts, 0, sizeof counts);
    interval_started = mpsl_now();
}

void profile_phase_add(prof_phase p, double seconds)
{
    counts.phase[p] += seconds;
    counts.phase_calls[p]++;
}

void profile_kernel_add(prof_kernel k, double seconds)
{
    counts.kernel[k] += seconds;
    counts.kernel_calls[k]++;
}

void profile_take(profile_counts *out, profile_counts *total)
{
    double now = mpsl_now();
    counts.wall = now - interval_started;
    interval_started = now;
    *out = counts;
    if (total) {
        total->wall += counts.wall;
        for (int i = 0; i < PROF_PHASES; i++) {
            total->phase[i] += counts.phase[i];
            total->phase_calls[i] += counts.phase_calls[i];
        }
        for (int i = 0; i < PK_KINDS; i++) {
            total->kernel[i] += counts.kernel[i];
            total->kernel_calls[i] += counts.kernel_calls[i];
        }
    }
    memset(&counts, 0, sizeof counts);
}

const char *profile_phase_name(int p)
{
    return p >= 0 && p < PROF_PHASES ? phase_names[p] : "?";
}

const char *profile_kernel_name(int k)
{
    return k >= 0 && k < PK_KINDS ? kernel_names[k] : "?";
}
