/* stub.c: the transport of an mpsl built without MPI: runs stay in one process, and asking
 * for MPI says how to get it. */
#include <stdlib.h>

#include "transport.h"

static int no_mpi(mpsl_error *err)
{
    return mpsl_errs(err, MPSL_ERR_INVALID, "this mpsl was built without MPI%s: install Open MPI "
                     "(Debian: libopenmpi-dev openmpi-bin) and rebuild, or set transport: local "
                     "(each rank then runs on its own)",
                     transport_mpi_launched() ? ", but an MPI launcher started it" : "");
}

int transport_mpi_built(void) { return 0; }
int transport_mpi_start(int *rank, int *size, mpsl_error *err)
{
    *rank = 0;
    *size = 1;
    return no_mpi(err);
}
void transport_mpi_stop(void) {}
void transport_mpi_abort(int status) { exit(status); }
int transport_rank_of_client(int k, int K, int size)
{
    (void)k;
    (void)K;
    (void)size;
    return 0;
}
int transport_agree(int rc, mpsl_error *err)
{
    (void)err;
    return rc;
}
void transport_bcast_i64(int64_t *v) { (void)v; }
int transport_attach(driver *d, char *hosts, size_t hosts_size, mpsl_error *err)
{
    (void)d;
    (void)hosts;
    (void)hosts_size;
    return no_mpi(err);
}
void transport_detach(driver *d) { (void)d; }
int transport_client_ranks_on_this_host(const driver *d)
{
    (void)d;
    return 1;
}
void transport_client_rank_linger_and_abort(double seconds, int status)
{
    (void)seconds;
    exit(status);
}
void transport_client_rank_done(driver *d, int rc, const mpsl_error *err)
{
    (void)d;
    (void)rc;
    (void)err;
}
int transport_wait_clients(driver *d, mpsl_error *err)
{
    (void)d;
    return no_mpi(err);
}
int transport_dead_peer(driver *d, char *what, size_t size)
{
    (void)d;
    (void)what;
    (void)size;
    return 0;
}
