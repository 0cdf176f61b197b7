/* `tapegrad train` under mpirun: see dist.h, and tools/train.c for the
 * steps (each rank trains on its share of every global batch, the gradients
 * are averaged with tg_mpi_allreduce_grads, only rank 0 prints and writes). */
#include "dist.h"

#include "tapegrad.h"

#include <stdio.h>
#include <stdlib.h>

/* The number of ranks a launcher announced in the environment, else 0. */
static int launched_size(const char **var)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE",
                                       "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 0) {
            *var = vars[i];
            return atoi(v);
        }
    }
    return 0;
}

int dist_launched(void)
{
    const char *var;
    return launched_size(&var);
}

int dist_start(int *rank, int *size)
{
    *rank = 0, *size = 1;
    const char *var = NULL;
    int n = launched_size(&var);
    if (n <= 1)
        return -1;
    tg_err err;
    if (tg_mpi_init(&err)) {
        fprintf(stderr, "tapegrad train: started by an MPI launcher (%s=%d) but %s\n", var, n,
                err.msg);
        return 1;
    }
    *rank = tg_mpi_rank();
    *size = tg_mpi_size();
    if (*rank != 0 && !freopen("/dev/null", "w", stdout))
        fclose(stdout);
    return -1;
}

void dist_end(int status, int size)
{
    if (size <= 1)
        return;
    fflush(NULL);
    if (status != 0)
        tg_mpi_abort(status);
    tg_mpi_finalize();
}
