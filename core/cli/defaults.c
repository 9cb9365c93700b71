/* defaults.c: defaults shared by several verbs, so that one environment variable means the
 * same thing to all of them. */
#include <stdlib.h>

#include "cli.h"

const char *cli_default_db(void)
{
    /* An empty MPSL_DB is treated as unset: `MPSL_DB= mpsl runs` should not try to open a
     * database with an empty name. */
    const char *env = getenv("MPSL_DB");
    return env && *env ? env : "results.db";
}
