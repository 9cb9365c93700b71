/* profile_rows.h: MPSL_PROFILE's epoch rows and end-of-run table (profile_rows.c). */
#ifndef MPSL_PROFILE_ROWS_H
#define MPSL_PROFILE_ROWS_H

#include <stdint.h>
#include <stdio.h>

#include "mpsl/plugin.h"
#include "util/profile.h"

struct store;

/* Take the counts since the previous take (adding them to *total) and store them as the
 * epoch's profile_* rows. Inside the caller's transaction. */
int profile_store_epoch(struct store *db, int64_t run_id, int64_t epoch, profile_counts *total,
                        mpsl_error *err);
/* The run's table: phases with their share of the wall time, "other", and kernels by kind. */
void profile_print(FILE *f, const char *title, const profile_counts *t);

#endif
