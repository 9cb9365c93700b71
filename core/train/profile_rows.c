/* profile_rows.c: what MPSL_PROFILE=1 records and prints (util/profile.h has the counters).
 * Each epoch the server stores its process's seconds per phase and per kernel kind since the
 * previous epoch as epoch_metrics rows profile_<phase>_seconds, profile_kernel_<kind>_seconds,
 * profile_other_seconds (what no phase covers) and profile_wall_seconds; at the end of a run
 * the whole run's table is printed to stderr. */
#include "profile_rows.h"

#include <stdio.h>

#include "results/store.h"

int profile_store_epoch(store *db, int64_t run_id, int64_t epoch, profile_counts *total,
                        mpsl_error *err)
{
    profile_counts c;
    profile_take(&c, total);
    double covered = 0;
    char name[64];
    int rc = MPSL_OK;
    for (int i = 0; i < PROF_PHASES && rc == MPSL_OK; i++) {
        covered += c.phase[i];
        if (c.phase_calls[i] > 0) {
            snprintf(name, sizeof name, "profile_%s_seconds", profile_phase_name(i));
            rc = store_metric(db, run_id, epoch, name, c.phase[i], err);
        }
    }
    for (int i = 0; i < PK_KINDS && rc == MPSL_OK; i++) {
        if (c.kernel_calls[i] > 0) {
            snprintf(name, sizeof name, "profile_kernel_%s_seconds", profile_kernel_name(i));
            rc = store_metric(db, run_id, epoch, name, c.kernel[i], err);
        }
    }
    if (rc == MPSL_OK) {
        rc = store_metric(db, run_id, epoch, "profile_other_seconds",
                          c.wall > covered ? c.wall - covered : 0.0, err);
    }
    if (rc == MPSL_OK) {
        rc = store_metric(db, run_id, epoch, "profile_wall_seconds", c.wall, err);
    }
    return rc;
}

void profile_print(FILE *f, const char *title, const profile_counts *t)
{
    double covered = 0, kernels = 0;
    for (int i = 0; i < PROF_PHASES; i++) {
        covered += t->phase[i];
    }
    for (int i = 0; i < PK_KINDS; i++) {
        kernels += t->kernel[i];
    }
    double wall = t->wall > 0 ? t->wall : 1e-12;
    fprintf(f, "%s: %.3f s\n", title, t->wall);
    fprintf(f, "  %-22s %10s %7s %10s\n", "phase", "seconds", "share", "calls");
    for (int i = 0; i < PROF_PHASES; i++) {
        if (t->phase_calls[i] > 0) {
            fprintf(f, "  %-22s %10.3f %6.1f%% %10lld\n", profile_phase_name(i), t->phase[i],
                    100 * t->phase[i] / wall, (long long)t->phase_calls[i]);
        }
    }
    double other = t->wall > covered ? t->wall - covered : 0.0;
    fprintf(f, "  %-22s %10.3f %6.1f%%\n", "other", other, 100 * other / wall);
    fprintf(f, "  %-22s %10s %7s %10s   (inside the phases above)\n", "kernel", "seconds",
            "share", "calls");
    for (int i = 0; i < PK_KINDS; i++) {
        if (t->kernel_calls[i] > 0) {
            fprintf(f, "  %-22s %10.3f %6.1f%% %10lld\n", profile_kernel_name(i), t->kernel[i],
                    100 * t->kernel[i] / wall, (long long)t->kernel_calls[i]);
        }
    }
    fprintf(f, "  %-22s %10.3f %6.1f%%\n", "all kernels", kernels, 100 * kernels / wall);
}
