/* `tapegrad train` under mpirun (tools/dist.c): data parallelism over MPI. */
#ifndef TAPEGRAD_DIST_H
#define TAPEGRAD_DIST_H

/* When mpirun (or another MPI launcher) started this process with more
 * than one rank: initialise MPI, set *rank and *size, and silence stdout on
 * every rank but 0; else *rank = 0, *size = 1.  Returns -1 to go on, else
 * the exit status (its message printed): a tapegrad built without MPI
 * started by mpirun, or MPI failing. */
int dist_start(int *rank, int *size);
/* The number of ranks an MPI launcher announced (0: not under one). */
int dist_launched(void);
/* At the end of a run with size ranks: status 0 finalizes MPI; any other
 * status ends the whole job with it (MPI_Abort), so that no rank is left
 * waiting for one that stopped. */
void dist_end(int status, int size);

#endif
