/* launch.c: whether an MPI launcher started this process, from the environment it sets.
 * Built with or without MPI, so that an mpsl without MPI that mpirun starts says so instead
 * of running as many independent runs as there are ranks. */
#include <stdlib.h>

#include "transport.h"

int transport_mpi_launched(void)
{
    /* Open MPI's mpirun, PMIx launchers and Slurm's srun (with --mpi=pmi2/pmix) set these. */
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK",
                                       "PMI_SIZE", NULL};
    for (int i = 0; vars[i]; i++) {
        if (getenv(vars[i])) {
            return 1;
        }
    }
    return 0;
}

int transport_launched_rank(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", NULL};
    for (int i = 0; vars[i]; i++) {
        const char *v = getenv(vars[i]);
        if (v) {
            return atoi(v);
        }
    }
    return 0;
}
