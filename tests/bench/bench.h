/* What the benchmark programs share: a monotonic clock and the median. */
#ifndef TG_BENCH_H
#define TG_BENCH_H

#include <tapegrad.h>

#ifdef BENCH_BUSY /* the busy-loop helpers need POSIX (and GNU for affinity) */
#include <sched.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#endif

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Seconds on the monotonic clock. */
static inline double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int bench_cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* The median of v[0, n); sorts v (v[0] is then the fastest, v[n-1] the slowest). */
static inline double bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#ifdef BENCH_BUSY
/* Start a competing busy loop: a child process at the same priority,
 * pinned to the last online CPU where the system allows (*cpu = that CPU,
 * else -1).  Returns its pid, or -1. */
static inline long bench_busy_start(int *cpu)
{
    *cpu = -1;
    pid_t pid = fork();
    if (pid == 0) {
        volatile unsigned long x = 0;
        for (;;)
            x++;
    }
    if (pid < 0)
        return -1;
#if defined(__linux__) && defined(_GNU_SOURCE)
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)(n - 1), &set);
    if (n > 1 && !sched_setaffinity(pid, sizeof set, &set))
        *cpu = (int)(n - 1);
#endif
    return (long)pid;
}

static inline void bench_busy_stop(long pid)
{
    kill((pid_t)pid, SIGKILL);
    waitpid((pid_t)pid, NULL, 0);
}
#endif

/* With TAPEGRAD_PROFILE=1 in the environment: start the thread-pool
 * profile (call after the warm-up). */
static inline void bench_profile_start(void)
{
    const char *e = getenv("TAPEGRAD_PROFILE");
    if (e && *e == '1')
        tg_thread_profile(true);
}

/* Print the profile started by bench_profile_start, over `wall_s` seconds
 * of the measured loop: per thread the share of the time in pieces, the
 * pieces (of others' runs), mean wake-up delay; then the pool's jobs. */
static inline void bench_profile_print(double wall_s)
{
    if (!tg_thread_profile(false))
        return;
    tg_thread_stat st[256];
    tg_pool_stat ps;
    int n = tg_thread_stats(st, 256, &ps);
    printf("profile over %.3f s: %llu parallel jobs %.1f%% of the time (caller waiting %.1f%%), "
           "%llu inline %.1f%%, rest %.1f%%\n",
           wall_s, (unsigned long long)ps.jobs, 100 * ps.job_s / wall_s, 100 * ps.wait_s / wall_s,
           (unsigned long long)ps.inline_jobs, 100 * ps.inline_s / wall_s,
           100 * (wall_s - ps.job_s - ps.inline_s) / wall_s);
    for (int i = 0; i < n && i < 256; i++)
        printf("  thread %d: in pieces %.1f%% of the time, %.1f%% of the parallel jobs' time; "
               "%llu pieces (%llu stolen) in %llu jobs; wake-up %.1f us per job\n",
               i, 100 * st[i].work_s / wall_s, ps.job_s > 0 ? 100 * st[i].work_s / ps.job_s : 0,
               (unsigned long long)st[i].pieces, (unsigned long long)st[i].stolen,
               (unsigned long long)st[i].jobs,
               st[i].jobs ? 1e6 * st[i].wake_s / (double)st[i].jobs : 0);
}

#endif
