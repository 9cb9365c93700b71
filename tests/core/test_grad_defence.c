/* test_grad_defence.c: the gradient defences of the mpsl plugin (plugins/aggregation/
 * grad_defence.h) against what their definitions give by hand: none and a zero knob leave the
 * gradient untouched; max_norm leaves the largest row alone and raises every other row's mean
 * squared norm to the target; gaussian adds noise of the stated spread. The role's random
 * stream is a fake session API's, seeded here. */
#include <stdlib.h>

#include "../../plugins/aggregation/grad_defence.h"
#include "check.h"
#include "util/rng.h"

static mpsl_rng stream;
static double fake_random(mpsl_role *r)
{
    (void)r;
    return mpsl_rng_uniform(&stream);
}

int main(void)
{
    mpsl_session_api api = {.size = sizeof api, .random = fake_random};
    mpsl_rng_seed(&stream, 7);
    float g[4] = {3, 4, 0, 0};
    grad_defence off = {DEFENCE_NONE, 1.0}, zero = {DEFENCE_GAUSSIAN, 0.0};
    grad_defence_apply(&api, NULL, &off, g, 2, 2);
    grad_defence_apply(&api, NULL, &zero, g, 2, 2);
    CHECK(g[0] == 3 && g[1] == 4 && g[2] == 0 && g[3] == 0);

    /* max_norm, knob 1: row 0 (norm 5) is the batch's largest: untouched; row 1 (norm 0)
     * gets N(0, 25/2) per entry, so its mean squared norm over many draws is 25. With knob 2
     * row 0 too is raised to 100. */
    grad_defence mn = {DEFENCE_MAX_NORM, 1.0}, mn2 = {DEFENCE_MAX_NORM, 2.0};
    double sq1 = 0.0, sq0 = 0.0;
    int trials = 20000, untouched = 1;
    for (int t = 0; t < trials; t++) {
        float h[4] = {3, 4, 0, 0};
        grad_defence_apply(&api, NULL, &mn, h, 2, 2);
        untouched &= h[0] == 3 && h[1] == 4;
        sq1 += (double)h[2] * h[2] + (double)h[3] * h[3];
        float k[4] = {3, 4, 0, 0};
        grad_defence_apply(&api, NULL, &mn2, k, 2, 2);
        sq0 += (double)k[0] * k[0] + (double)k[1] * k[1];
    }
    CHECK(untouched);
    CHECK_CLOSE(sq1 / trials, 25.0, 0.03);   /* 2 % of 25 is about 4 standard errors */
    CHECK_CLOSE(sq0 / trials, 100.0, 0.03);

    /* gaussian, knob 2: the RMS entry of {3,4,0,0} is 2.5, so sigma = 5 per entry */
    grad_defence ga = {DEFENCE_GAUSSIAN, 2.0};
    double var = 0.0;
    for (int t = 0; t < trials; t++) {
        float h[4] = {3, 4, 0, 0};
        grad_defence_apply(&api, NULL, &ga, h, 2, 2);
        var += ((double)h[2] * h[2] + (double)h[3] * h[3]) / 2.0;
    }
    CHECK_CLOSE(var / trials, 25.0, 0.03);
    return check_exit();
}
