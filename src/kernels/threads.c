/*
 * The thread pool behind tg_parallel_for (GEMM, elementwise ops, reductions
 * along axes that are not summed, optimizer updates).
 *
 * One job at a time: a caller that finds the pool busy (another user
 * thread's tape is using it), or that is itself a pool worker, runs its work
 * inline.  Workers are created on first use, up to threads − 1 (the caller
 * is the other one), and joined at exit.
 *
 * A job is [0, n) cut into `pieces` contiguous ranges, SPLIT per
 * participant (fewer when n / grain is smaller).  Participant i (the caller
 * is 0, worker w is w) owns a contiguous run of pieces and takes them in
 * order, so that it works on the same part of the data in consecutive jobs
 * and finds it in its own cache; when its run is empty it takes pieces from
 * the others' runs.  Pieces are handed out one at a time, so a thread that
 * the system deschedules (another process wants its core) or that wakes
 * late holds the job up by at most the piece it is running, and a caller
 * whose workers never come does the whole job itself.  Which thread runs a
 * piece, and where pieces are cut, never changes what is computed (callers
 * split only work whose result does not depend on the split).
 *
 * Hand-off: the caller writes the job, resets each owner's claim word
 * (next piece << 32 | end of run) and publishes the job by bumping `gen`.
 * Claims are compare-and-swaps on the claim words; a worker reads the job
 * only after a claim succeeded, and a job is over only when every piece is
 * done, so a late worker that finds all runs empty leaves without touching
 * anything else: the caller never waits for a worker that holds no piece.
 *
 * Waiting: idle workers spin for SPIN_NS (the ops of one training step come
 * in quick succession), then sleep, each on its own condition variable, so
 * that a job wakes just the workers that own its runs; the caller, once
 * no piece is left to take, spins for the same bound for the pieces still
 * running, then sleeps.  Sleeping frees the core, so the kernel can move a
 * descheduled worker there.
 *
 * With profiling on (tg_thread_profile), each participant adds up the time
 * it spends in pieces, the pieces it ran and took from others, and for the
 * workers the time from a job's publication to their first piece.
 */
#define _GNU_SOURCE /* sched_getcpu, sched_setaffinity */
#include "kernels.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
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
#define SPLIT 4        /* pieces per participant                           */
#define SPIN_NS 50000  /* how long a waiting thread spins before sleeping  */
#define LINE 64        /* cache line: claim words and figures get their own */

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

/* ---- profile figures ----------------------------------------------------- */

typedef struct figures {
    _Alignas(LINE) _Atomic uint64_t work_ns, pieces, stolen, jobs, wake_ns;
} figures;

static _Atomic bool profiling;
static figures fig[MAX_THREADS];
static _Atomic uint64_t par_jobs, par_ns, inline_jobs, inline_ns, wait_ns;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void add(_Atomic uint64_t *x, uint64_t v)
{
    atomic_fetch_add_explicit(x, v, memory_order_relaxed);
}

/* ---- the pool ----------------------------------------------------------- */

typedef struct claim {
    _Alignas(LINE) _Atomic uint64_t word; /* next piece << 32 | end of run */
} claim;

static struct {
    atomic_flag busy;          /* held by the caller running a job            */
    pthread_mutex_t mtx;       /* guards sleeping (wake, done) and shutdown   */
    pthread_cond_t done_cv;    /* the caller waits here for the last pieces   */
    _Atomic int caller_waits;  /* the caller waits on `done_cv`               */
    _Atomic uint64_t gen;      /* job number << 16 | owners of the job        */
    _Atomic bool shutdown;
    _Atomic int caller_cpu;    /* the CPU the caller published the job from   */
    _Alignas(LINE) _Atomic size_t done; /* pieces of the job finished          */
    claim claims[MAX_THREADS];
    /* the job, written by the caller before it resets the claim words; read
     * by a worker only after one of its claims succeeded */
    tg_range_fn fn;
    void *ctx;
    size_t n, pieces;
    uint64_t t_publish;        /* when the job was published (profiling)      */
    /* workers, changed only by the holder of `busy` */
    int n_workers;
    bool atexit_set;
    pthread_t tid[MAX_THREADS];
} pool = {
    .busy = ATOMIC_FLAG_INIT,
    .mtx = PTHREAD_MUTEX_INITIALIZER,
    .done_cv = PTHREAD_COND_INITIALIZER,
};

static _Thread_local bool in_worker;

/* Where worker w sleeps (w >= 1; its condition variable is made by grow). */
static struct {
    _Alignas(LINE) _Atomic bool asleep;
    pthread_cond_t wake;
} slot[MAX_THREADS];

/* Take the next piece of owner o's run; SIZE_MAX when the run is empty. */
static size_t take(size_t o)
{
    uint64_t w = atomic_load_explicit(&pool.claims[o].word, memory_order_relaxed);
    while ((w >> 32) < (uint32_t)w)
        if (atomic_compare_exchange_weak_explicit(&pool.claims[o].word, &w, w + ((uint64_t)1 << 32),
                                                  memory_order_acquire, memory_order_relaxed))
            return (size_t)(w >> 32);
    return SIZE_MAX;
}

/* Participant `me` of a job with `owners` runs: its own run first (a worker
 * whose id is past the runs starts at run me % owners), then the others',
 * until every piece is taken.  Returns whether it ran any piece. */
static bool run_pieces(size_t me, size_t owners)
{
    bool prof = atomic_load_explicit(&profiling, memory_order_relaxed), any = false;
    for (size_t k = 0; k < owners; k++) {
        size_t o = (me + k) % owners, p;
        while ((p = take(o)) != SIZE_MAX) {
            uint64_t t0 = prof ? now_ns() : 0;
            if (prof && !any && me)
                add(&fig[me].wake_ns, t0 - pool.t_publish);
            any = true;
            pool.fn(pool.ctx, p * pool.n / pool.pieces, (p + 1) * pool.n / pool.pieces);
            if (prof) {
                add(&fig[me].work_ns, now_ns() - t0);
                add(&fig[me].pieces, 1);
                add(&fig[me].stolen, o != me);
            }
            /* After this the job may end and the next one overwrite it. */
            size_t total = pool.pieces;
            if (atomic_fetch_add(&pool.done, 1) + 1 == total && atomic_load(&pool.caller_waits)) {
                pthread_mutex_lock(&pool.mtx);
                pthread_cond_signal(&pool.done_cv);
                pthread_mutex_unlock(&pool.mtx);
            }
        }
    }
    if (prof && any)
        add(&fig[me].jobs, 1);
    return any;
}

/* Spin up to SPIN_NS until ready(arg); whether it got ready. */
static bool spin_until(bool (*ready)(uint64_t), uint64_t arg)
{
    uint64_t t0 = 0;
    for (unsigned spin = 0;; spin++) {
        if (ready(arg))
            return true;
        CPU_RELAX();
        if (spin % 256 == 0) {
            uint64_t now = now_ns();
            if (!t0)
                t0 = now;
            else if (now - t0 > SPIN_NS)
                return false;
        }
    }
}

/* A job other than g was published, or the pool shuts down. */
static bool new_job(uint64_t g)
{
    return atomic_load_explicit(&pool.gen, memory_order_acquire) != g || atomic_load(&pool.shutdown);
}

/* All n pieces of the job are done. */
static bool pieces_done(uint64_t n) { return atomic_load(&pool.done) >= n; }

/* A worker woken on the caller's CPU moves to another one it may use.
 * Some kernels place a woken thread on the CPU of the thread that woke it
 * (when they see no cache shared with its previous CPU, as on some VMs), and
 * the two would then take turns on one CPU while another is idle.  The
 * worker's CPU set is narrowed for a moment, then restored: nothing is
 * pinned, the scheduler may move it again. */
static void move_off_caller(void)
{
#if defined(__linux__) && defined(CPU_SET)
    int cpu = atomic_load_explicit(&pool.caller_cpu, memory_order_relaxed);
    cpu_set_t all, other;
    if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getcpu() != cpu ||
        sched_getaffinity(0, sizeof all, &all))
        return;
    other = all;
    CPU_CLR(cpu, &other);
    if (CPU_COUNT(&other) && !sched_setaffinity(0, sizeof other, &other))
        sched_setaffinity(0, sizeof all, &all);
#endif
}

/* Worker id waits until `gen` differs from g (or shutdown); returns the new
 * value.  `asleep` is set before gen is read again, and the caller reads it
 * after publishing gen, so one of them sees the other. */
static uint64_t wait_for_job(size_t id, uint64_t g)
{
    if (!spin_until(new_job, g)) {
        pthread_mutex_lock(&pool.mtx);
        atomic_store(&slot[id].asleep, true);
        while (atomic_load(&pool.gen) == g && !atomic_load(&pool.shutdown))
            pthread_cond_wait(&slot[id].wake, &pool.mtx);
        atomic_store(&slot[id].asleep, false);
        pthread_mutex_unlock(&pool.mtx);
        move_off_caller();
    }
    return atomic_load_explicit(&pool.gen, memory_order_acquire);
}

static void *worker(void *arg)
{
    size_t id = (size_t)(uintptr_t)arg;
    uint64_t g = atomic_load(&pool.gen);
    in_worker = true;
    for (;;) {
        g = wait_for_job(id, g);
        if (atomic_load(&pool.shutdown))
            break;
        size_t owners = (size_t)(g & 0xffff);
        if (id < owners) /* the job's thread count is the caller's setting */
            run_pieces(id, owners);
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
    for (int i = 1; i <= pool.n_workers; i++)
        pthread_cond_signal(&slot[i].wake);
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
    while (pool.n_workers < want) {
        uintptr_t id = (uintptr_t)pool.n_workers + 1;
        if (pthread_cond_init(&slot[id].wake, NULL))
            break; /* run with the workers we have */
        if (pthread_create(&pool.tid[pool.n_workers], NULL, worker, (void *)id)) {
            pthread_cond_destroy(&slot[id].wake);
            break;
        }
        pool.n_workers++;
    }
}

/* The caller's wait for pieces that others are still running. */
static void wait_done(size_t pieces)
{
    if (spin_until(pieces_done, pieces))
        return;
    pthread_mutex_lock(&pool.mtx);
    atomic_store(&pool.caller_waits, 1);
    while (atomic_load(&pool.done) < pieces)
        pthread_cond_wait(&pool.done_cv, &pool.mtx);
    atomic_store(&pool.caller_waits, 0);
    pthread_mutex_unlock(&pool.mtx);
}

static void run_inline(size_t n, tg_range_fn fn, void *ctx)
{
    if (!n)
        return;
    if (!atomic_load_explicit(&profiling, memory_order_relaxed) || in_worker) {
        fn(ctx, 0, n);
        return;
    }
    uint64_t t0 = now_ns();
    fn(ctx, 0, n);
    add(&inline_ns, now_ns() - t0);
    add(&inline_jobs, 1);
}

void tg_parallel_for(size_t n, size_t grain, tg_range_fn fn, void *ctx)
{
    if (!grain)
        grain = 1;
    size_t threads = (size_t)tg_get_threads();
    if (threads <= 1 || n / 2 < grain || in_worker || atomic_flag_test_and_set(&pool.busy)) {
        run_inline(n, fn, ctx);
        return;
    }
    size_t most = n / grain, owners = threads < most ? threads : most;
    if (pool.n_workers < (int)owners - 1)
        grow((int)owners - 1);
    if ((size_t)pool.n_workers < owners - 1)
        owners = (size_t)pool.n_workers + 1;
    if (owners < 2) {
        atomic_flag_clear(&pool.busy);
        run_inline(n, fn, ctx);
        return;
    }
    size_t pieces = owners * SPLIT < most ? owners * SPLIT : most;
    bool prof = atomic_load_explicit(&profiling, memory_order_relaxed);

    /* Write the job, open the runs, then publish it. */
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    pool.pieces = pieces;
    pool.t_publish = prof ? now_ns() : 0;
    atomic_store_explicit(&pool.done, 0, memory_order_relaxed);
    for (size_t o = 0; o < owners; o++)
        atomic_store_explicit(&pool.claims[o].word,
                              (uint64_t)(o * pieces / owners) << 32 | (o + 1) * pieces / owners,
                              memory_order_release);
#if defined(__linux__) && defined(CPU_SET)
    atomic_store_explicit(&pool.caller_cpu, sched_getcpu(), memory_order_relaxed);
#endif
    uint64_t g = ((atomic_load(&pool.gen) >> 16) + 1) << 16 | owners;
    atomic_store(&pool.gen, g);
    bool asleep = false; /* wake the owners of the runs that sleep */
    for (size_t w = 1; w < owners; w++)
        asleep = asleep || atomic_load(&slot[w].asleep);
    if (asleep) {
        pthread_mutex_lock(&pool.mtx);
        for (size_t w = 1; w < owners; w++)
            if (atomic_load(&slot[w].asleep))
                pthread_cond_signal(&slot[w].wake);
        pthread_mutex_unlock(&pool.mtx);
    }

    run_pieces(0, owners);
    uint64_t t_wait = prof ? now_ns() : 0;
    wait_done(pieces);
    if (prof) {
        uint64_t t1 = now_ns();
        add(&wait_ns, t1 - t_wait);
        add(&par_ns, t1 - pool.t_publish);
        add(&par_jobs, 1);
    }
    atomic_flag_clear(&pool.busy);
}

/* ---- the public profile calls -------------------------------------------- */

bool tg_thread_profile(bool on)
{
    bool was = atomic_exchange(&profiling, on);
    if (on && !was) {
        for (size_t i = 0; i < MAX_THREADS; i++) {
            atomic_store(&fig[i].work_ns, 0);
            atomic_store(&fig[i].pieces, 0);
            atomic_store(&fig[i].stolen, 0);
            atomic_store(&fig[i].jobs, 0);
            atomic_store(&fig[i].wake_ns, 0);
        }
        atomic_store(&par_jobs, 0);
        atomic_store(&par_ns, 0);
        atomic_store(&inline_jobs, 0);
        atomic_store(&inline_ns, 0);
        atomic_store(&wait_ns, 0);
    }
    return was;
}

int tg_thread_stats(tg_thread_stat *out, int max, tg_pool_stat *pool_out)
{
    int n = tg_get_threads();
    if (pool_out) {
        pool_out->jobs = atomic_load(&par_jobs);
        pool_out->job_s = 1e-9 * (double)atomic_load(&par_ns);
        pool_out->wait_s = 1e-9 * (double)atomic_load(&wait_ns);
        pool_out->inline_jobs = atomic_load(&inline_jobs);
        pool_out->inline_s = 1e-9 * (double)atomic_load(&inline_ns);
    }
    for (int i = 0; out && i < n && i < max; i++) {
        out[i].work_s = 1e-9 * (double)atomic_load(&fig[i].work_ns);
        out[i].wake_s = 1e-9 * (double)atomic_load(&fig[i].wake_ns);
        out[i].pieces = atomic_load(&fig[i].pieces);
        out[i].stolen = atomic_load(&fig[i].stolen);
        out[i].jobs = atomic_load(&fig[i].jobs);
    }
    return n;
}
