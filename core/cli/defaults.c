/* defaults.c: defaults and argument forms shared by several verbs, so that one environment
 * variable or one run id means the same thing to all of them. */
#include <stdlib.h>

#include "cli.h"

const char *cli_default_db(void)
{
    /* An empty MPSL_DB is treated as unset: `MPSL_DB= mpsl runs` should not try to open a
     * database with an empty name. */
    const char *env = getenv("MPSL_DB");
    return env && *env ? env : "results.db";
}

int cli_parse_run_id(const char *s, long long *id)
{
    char *end = NULL;
    *id = strtoll(s, &end, 10);
    return *s && !*end && *id > 0 ? 0 : -1;
}
