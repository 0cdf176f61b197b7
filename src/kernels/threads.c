/*
 * The thread pool behind tg_parallel_for (GEMM, large elementwise ops).
 *
 * One job at a time: a caller that finds the pool busy (another user
 * thread's tape is using it), or that is itself a pool worker, runs its work
 * inline.  Workers are created on first use, up to threads − 1 (the caller
 * is the other one), and joined at exit.
 *
 * A job is [0, n) cut into `chunks` contiguous ranges.  Range i is meant for
 * participant i (the caller is 0, worker w is w + 1), so that a thread works
 * on the same part of the data in consecutive jobs and finds it in its own
 * cache; a participant that is done takes the ranges nobody has claimed yet
 * (a worker still asleep does not hold the job up).  Which thread runs a
 * range never changes what the range computes.
 *
 * Hand-off without locks on the fast path: the caller writes the job, then
 * publishes `ticket` = generation << 32 | helper slots.  A worker joins by
 * taking a slot with a compare-and-swap on the ticket, so it can only join
 * the job it saw; the caller closes the job by swapping the slots to 0 and
 * then waits for exactly the workers that joined.  Idle workers spin for a
 * short while (jobs tend to come in bursts: the GEMMs of one training step),
 * then sleep on a condition variable.
 */
#include "kernels.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__) && defined(__GNUC__)
#define CPU_RELAX() __asm__ volatile("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

#define MAX_THREADS 256
#define SPIN_NS 100000 /* how long an idle worker spins before sleeping */

/* ---- thread count ------------------------------------------------------- */

static _Atomic int n_threads; /* 0: not read from the environment yet */

static int default_threads(void)
{
    const char *env = getenv("TAPEGRAD_THREADS");
    if (env && *env) {
        char *end;
        errno = 0;
        long v = strtol(env, &end, 10);
        if (!errno && !*end && v >= 1)
            return v > MAX_THREADS ? MAX_THREADS : (int)v;
    }
    long cpus = -1;
#ifdef _SC_NPROCESSORS_ONLN
    cpus = sysconf(_SC_NPROCESSORS_ONLN);
#endif
    return cpus < 1 ? 1 : cpus > MAX_THREADS ? MAX_THREADS : (int)cpus;
}

int tg_get_threads(void)
{
    int n = atomic_load_explicit(&n_threads, memory_order_relaxed);
    if (n)
        return n;
    int expected = 0;
    n = default_threads();
    if (!atomic_compare_exchange_strong(&n_threads, &expected, n))
        n = expected; /* tg_set_threads won the race */
    return n;
}

int tg_set_threads(int n)
{
    if (n < 1)
        return TG_ERR;
    atomic_store(&n_threads, n > MAX_THREADS ? MAX_THREADS : n);
    return TG_OK;
}

/* ---- the pool ----------------------------------------------------------- */

static struct {
    atomic_flag busy;          /* held by the caller running a job            */
    pthread_mutex_t mtx;       /* guards sleeping (wake, done) and shutdown   */
    pthread_cond_t wake;       /* workers wait here for a new generation      */
    pthread_cond_t done;       /* the caller waits here for its helpers       */
    _Atomic int sleepers;      /* workers waiting on `wake`                   */
    _Atomic int caller_waits;  /* the caller waits on `done`                  */
    _Atomic uint64_t ticket;   /* generation << 32 | helper slots left        */
    _Atomic int finished;      /* helpers that joined and are done            */
    _Atomic bool claimed[MAX_THREADS]; /* chunk taken (by its owner or not)  */
    _Atomic bool shutdown;
    /* the job, written by the caller before it publishes the ticket */
    tg_range_fn fn;
    void *ctx;
    size_t n, chunks;
    /* workers, changed only by the holder of `busy` */
    int n_workers;
    bool atexit_set;
    pthread_t tid[MAX_THREADS];
} pool = {
    .busy = ATOMIC_FLAG_INIT,
    .mtx = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .done = PTHREAD_COND_INITIALIZER,
};

static _Thread_local bool in_worker;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void run_chunk(size_t c)
{
    pool.fn(pool.ctx, c * pool.n / pool.chunks, (c + 1) * pool.n / pool.chunks);
}

/* Participant `me`: its own chunk first, then any chunk left unclaimed. */
static void run_chunks(size_t me)
{
    if (me < pool.chunks && !atomic_exchange(&pool.claimed[me], true))
        run_chunk(me);
    for (size_t c = 0; c < pool.chunks; c++)
        if (!atomic_load_explicit(&pool.claimed[c], memory_order_relaxed) &&
            !atomic_exchange(&pool.claimed[c], true))
            run_chunk(c);
}

/* Wait until the ticket's generation differs from gen (or shutdown). */
static uint64_t wait_for_job(uint32_t gen)
{
    uint64_t t0 = 0;
    for (unsigned spin = 0;; spin++) {
        uint64_t t = atomic_load_explicit(&pool.ticket, memory_order_acquire);
        if ((uint32_t)(t >> 32) != gen || atomic_load(&pool.shutdown))
            return t;
        CPU_RELAX();
        if (spin % 256 == 0) {
            uint64_t now = now_ns();
            if (!t0)
                t0 = now;
            else if (now - t0 > SPIN_NS)
                break;
        }
    }
    pthread_mutex_lock(&pool.mtx);
    atomic_fetch_add(&pool.sleepers, 1);
    uint64_t t;
    while ((uint32_t)((t = atomic_load(&pool.ticket)) >> 32) == gen &&
           !atomic_load(&pool.shutdown))
        pthread_cond_wait(&pool.wake, &pool.mtx);
    atomic_fetch_sub(&pool.sleepers, 1);
    pthread_mutex_unlock(&pool.mtx);
    return t;
}

typedef struct worker_arg {
    uint32_t gen; /* generation when created */
    size_t id;    /* 1, 2, ...: its chunk   */
} worker_arg;
static worker_arg worker_args[MAX_THREADS];

static void *worker(void *arg)
{
    const worker_arg *wa = arg;
    uint32_t gen = wa->gen;
    in_worker = true;
    for (;;) {
        uint64_t t = wait_for_job(gen);
        if (atomic_load(&pool.shutdown))
            break;
        gen = (uint32_t)(t >> 32);
        /* Take a helper slot of this generation, if one is left. */
        bool joined = false;
        while ((uint32_t)t && (uint32_t)(t >> 32) == gen)
            if (atomic_compare_exchange_weak(&pool.ticket, &t, t - 1)) {
                joined = true;
                break;
            }
        if (!joined)
            continue;
        run_chunks(wa->id);
        atomic_fetch_add(&pool.finished, 1);
        if (atomic_load(&pool.caller_waits)) {
            pthread_mutex_lock(&pool.mtx);
            pthread_cond_signal(&pool.done);
            pthread_mutex_unlock(&pool.mtx);
        }
    }
    return NULL;
}

static void shutdown_pool(void)
{
    /* Wait for a job in flight, then stop and join the workers. */
    while (atomic_flag_test_and_set(&pool.busy))
        sched_yield();
    pthread_mutex_lock(&pool.mtx);
    atomic_store(&pool.shutdown, true);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.mtx);
    for (int i = 0; i < pool.n_workers; i++)
        pthread_join(pool.tid[i], NULL);
    pool.n_workers = 0;
    /* busy stays set: after exit has begun, everything runs inline. */
}

/* Create workers until there are `want` (called with `busy` held). */
static void grow(int want)
{
    if (!pool.atexit_set) {
        if (atexit(shutdown_pool))
            return;
        pool.atexit_set = true;
    }
    uint32_t gen = (uint32_t)(atomic_load(&pool.ticket) >> 32);
    while (pool.n_workers < want) {
        worker_arg *wa = &worker_args[pool.n_workers];
        wa->gen = gen;
        wa->id = (size_t)pool.n_workers + 1;
        if (pthread_create(&pool.tid[pool.n_workers], NULL, worker, wa))
            break; /* run with the workers we have */
        pool.n_workers++;
    }
}

void tg_parallel_for(size_t n, size_t grain, tg_range_fn fn, void *ctx)
{
    if (!grain)
        grain = 1;
    size_t threads = (size_t)tg_get_threads();
    if (threads <= 1 || n / 2 < grain || in_worker ||
        atomic_flag_test_and_set(&pool.busy)) {
        if (n)
            fn(ctx, 0, n);
        return;
    }
    size_t chunks = n / grain < threads ? n / grain : threads;
    if (pool.n_workers < (int)chunks - 1)
        grow((int)chunks - 1);
    int helpers = pool.n_workers < (int)chunks - 1 ? pool.n_workers : (int)chunks - 1;
    if (helpers == 0) {
        atomic_flag_clear(&pool.busy);
        fn(ctx, 0, n);
        return;
    }

    /* Write the job, then publish it with a new generation. */
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    pool.chunks = chunks;
    for (size_t c = 0; c < chunks; c++)
        atomic_store_explicit(&pool.claimed[c], false, memory_order_relaxed);
    atomic_store(&pool.finished, 0);
    uint32_t gen = (uint32_t)(atomic_load(&pool.ticket) >> 32) + 1;
    atomic_store(&pool.ticket, (uint64_t)gen << 32 | (uint32_t)helpers);
    if (atomic_load(&pool.sleepers)) {
        pthread_mutex_lock(&pool.mtx);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.mtx);
    }

    run_chunks(0);

    /* Close the job: no more joins.  Then wait for those who joined (they
     * are running chunks already taken, so the wait is short). */
    uint64_t t = atomic_exchange(&pool.ticket, (uint64_t)gen << 32);
    int joined = helpers - (int)(uint32_t)t;
    uint64_t t0 = 0;
    for (unsigned spin = 0; atomic_load(&pool.finished) < joined; spin++) {
        CPU_RELAX();
        if (spin % 256)
            continue;
        uint64_t now = now_ns();
        if (!t0)
            t0 = now;
        if (now - t0 < SPIN_NS)
            continue;
        pthread_mutex_lock(&pool.mtx);
        atomic_store(&pool.caller_waits, 1);
        while (atomic_load(&pool.finished) < joined)
            pthread_cond_wait(&pool.done, &pool.mtx);
        atomic_store(&pool.caller_waits, 0);
        pthread_mutex_unlock(&pool.mtx);
    }
    atomic_flag_clear(&pool.busy);
}
