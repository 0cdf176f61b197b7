/* bench_pingpong: how long two CPUs take to pass a cache line back and
 * forth (two threads pinned to CPUs A and B flip one atomic flag), the
 * median of 7 runs of 100 000 round trips.  Thread scaling of a program
 * whose threads share data (as the pool's do, between ops) depends on it as
 * much as on the cores' throughput: on a VM it changes with where the host
 * places the vCPUs.  tests/bench/scaling.sh prints it beside the table.
 *
 *   bench_pingpong [A B]      (default 0 1)
 *
 * Last line: pingpong cpus=A,B round_trip_ns=X  (Linux only: it pins). */
#define _GNU_SOURCE
#include "bench.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#define TRIPS 100000

static _Atomic int flag;

#ifdef __linux__
static int pin(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    return pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

static void *echo(void *arg)
{
    (void)pin(*(int *)arg); /* unpinned, it still answers */
    for (int i = 0; i < TRIPS; i++) {
        while (atomic_load_explicit(&flag, memory_order_acquire) != 1)
            ;
        atomic_store_explicit(&flag, 0, memory_order_release);
    }
    return NULL;
}
#endif

int main(int argc, char **argv)
{
    int a = argc > 2 ? atoi(argv[1]) : 0, b = argc > 2 ? atoi(argv[2]) : 1;
#ifdef __linux__
    double ns[7];
    for (int r = 0; r < 7; r++) {
        pthread_t t;
        if (pin(a) || pthread_create(&t, NULL, echo, &b)) {
            fprintf(stderr, "bench_pingpong: cannot run on CPUs %d and %d\n", a, b);
            return 1;
        }
        double t0 = bench_now_s();
        for (int i = 0; i < TRIPS; i++) {
            atomic_store_explicit(&flag, 1, memory_order_release);
            while (atomic_load_explicit(&flag, memory_order_acquire) != 0)
                ;
        }
        ns[r] = (bench_now_s() - t0) * 1e9 / TRIPS;
        pthread_join(t, NULL);
    }
    printf("pingpong cpus=%d,%d round_trip_ns=%.0f\n", a, b, bench_median(ns, 7));
    return 0;
#else
    (void)a;
    (void)b;
    printf("pingpong: needs Linux (thread affinity)\n");
    return 0;
#endif
}
