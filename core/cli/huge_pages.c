/* huge_pages.c: transparent huge pages for the heap. A run allocates its buffers (models,
 * optimizer state, activations, messages) once and touches every page of them; with 4 KiB
 * pages that is one page fault per 4 KiB. Where the kernel gives huge pages only to memory
 * that asks for them (/sys/kernel/mm/transparent_hugepage/enabled is "madvise", Debian's
 * default), glibc's malloc asks for them when its tunable glibc.malloc.hugetlb=1 is set
 * (glibc 2.35 and later). Tunables are read when a process starts, so the command sets it
 * and executes itself again, once, before doing anything else. Measured on a 2-vCPU VM
 * (docs/benchmarks.md, "Many clients"): FedAvg with 1000 clients went from 943k page faults
 * to 19k, and its epoch from 19.6 s to 11.8 s.
 *
 * MPSL_HUGEPAGES=0 turns this off; a GLIBC_TUNABLES that already names the tunable is
 * respected as it is. Nothing changes where the kernel's setting is "always" or "never". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util/util.h"

#define TUNABLE "glibc.malloc.hugetlb"

static int thp_is_madvise(void)
{
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    char line[128] = "";
    if (f) {
        if (!fgets(line, sizeof line, f)) {
            line[0] = '\0';
        }
        fclose(f);
    }
    return strstr(line, "[madvise]") != NULL;
}

void cli_heap_huge_pages(char **argv)
{
    const char *off = getenv("MPSL_HUGEPAGES");
    const char *tunables = getenv("GLIBC_TUNABLES");
    if (off && strcmp(off, "0") == 0) {
        return;
    }
    if (tunables && strstr(tunables, TUNABLE)) {
        mpsl_log(MPSL_LOG_DEBUG, "heap: GLIBC_TUNABLES=%s", tunables);
        return;
    }
    if (!thp_is_madvise()) {
        return;
    }
    char *value = tunables && *tunables ? mpsl_strfmt("%s:" TUNABLE "=1", tunables)
                                        : mpsl_strdup(TUNABLE "=1");
    if (!value || setenv("GLIBC_TUNABLES", value, 1) != 0) {
        free(value);
        return;
    }
    free(value);
    execv("/proc/self/exe", argv);
    /* not executed again (no /proc?): go on with ordinary pages, and take the tunable away
     * so that children do not differ from this process */
    if (tunables) {
        setenv("GLIBC_TUNABLES", tunables, 1);
    } else {
        unsetenv("GLIBC_TUNABLES");
    }
}
