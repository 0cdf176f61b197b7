/*
 * GEMM, CPU dispatch and thread pool.
 *
 * Every kernel path the CPU supports is compared with a naive f64 reference
 * on many shapes (tiny, odd, primes, around the micro-tile and block sizes),
 * all four transpose combinations, f32 and f64, alpha != 1, beta 0 (C full
 * of NaN, which must not leak), 1 and other, padded leading dimensions, and
 * k = 0.  Operands are allocated to their exact extent, so that a sanitizer
 * catches any read past them, and the padding of C between rows must come
 * back untouched.  Then: bit-identical results for 1, 2, 3 and 7 threads,
 * concurrent callers, no allocation after warm-up, the fallback when the
 * workspace cannot be allocated, tg_parallel_for, and the public settings.
 * No timing here (see tests/bench/bench_gemm.c).
 */
#include "kernels.h"
#include "tap.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

static tg_rng rng;

/* ---- one checked GEMM ---------------------------------------------------- */

typedef struct shape {
    bool ta, tb;
    size_t m, n, k;
    double alpha, beta;
    size_t pad; /* added to every leading dimension */
} shape;

/* Buffers of one problem: values are multiples of 1/8 in [-1, 1] (so f32
 * holds them exactly and the reference sees the same operands). */
typedef struct problem {
    shape s;
    size_t lda, ldb, ldc, a_len, b_len, c_len;
    double *a, *b, *c0; /* f64 copies */
} problem;

static double draw(void) { return (double)((int)tg_rng_below(&rng, 17) - 8) / 8; }

static size_t extent(size_t rows, size_t cols, size_t ld)
{
    return rows ? (rows - 1) * ld + cols : 0;
}

static void problem_make(problem *p, const shape *s)
{
    p->s = *s;
    size_t ar = s->ta ? s->k : s->m, ac = s->ta ? s->m : s->k;
    size_t br = s->tb ? s->n : s->k, bc = s->tb ? s->k : s->n;
    p->lda = ac + s->pad;
    p->ldb = bc + s->pad;
    p->ldc = s->n + s->pad;
    p->a_len = extent(ar, ac, p->lda);
    p->b_len = extent(br, bc, p->ldb);
    p->c_len = extent(s->m, s->n, p->ldc);
    p->a = malloc((p->a_len + 1) * sizeof(double));
    p->b = malloc((p->b_len + 1) * sizeof(double));
    p->c0 = malloc((p->c_len + 1) * sizeof(double));
    for (size_t i = 0; i < p->a_len; i++)
        p->a[i] = draw();
    for (size_t i = 0; i < p->b_len; i++)
        p->b[i] = draw();
    for (size_t i = 0; i < p->c_len; i++)
        p->c0[i] = draw();
}

static void problem_free(problem *p)
{
    free(p->a);
    free(p->b);
    free(p->c0);
}

/* Run the library's GEMM in dtype f64 or f32 on exactly-sized copies;
 * out receives C (c_len values) as doubles. */
static void run(const problem *p, bool f64, double *out)
{
    const shape *s = &p->s;
    size_t es = f64 ? sizeof(double) : sizeof(float);
    /* +1: malloc(0) may return NULL; the extra element is never touched */
    void *a = malloc((p->a_len + 1) * es), *b = malloc((p->b_len + 1) * es);
    void *c = malloc((p->c_len + 1) * es);
    for (size_t i = 0; i < p->a_len; i++)
        f64 ? (void)(((double *)a)[i] = p->a[i]) : (void)(((float *)a)[i] = (float)p->a[i]);
    for (size_t i = 0; i < p->b_len; i++)
        f64 ? (void)(((double *)b)[i] = p->b[i]) : (void)(((float *)b)[i] = (float)p->b[i]);
    /* C: the padding between rows holds a sentinel; with beta == 0 the
     * matrix itself holds NaN, which must never be read. */
    for (size_t i = 0; i < p->c_len; i++) {
        bool in = i % p->ldc < s->n;
        double v = !in ? 12345.0 : s->beta == 0 ? NAN : p->c0[i];
        f64 ? (void)(((double *)c)[i] = v) : (void)(((float *)c)[i] = (float)v);
    }
    if (f64)
        tg_gemm_f64(s->ta, s->tb, s->m, s->n, s->k, s->alpha, a, p->lda, b, p->ldb,
                    s->beta, c, p->ldc);
    else
        tg_gemm_f32(s->ta, s->tb, s->m, s->n, s->k, (float)s->alpha, a, p->lda, b,
                    p->ldb, (float)s->beta, c, p->ldc);
    for (size_t i = 0; i < p->c_len; i++)
        out[i] = f64 ? ((double *)c)[i] : ((float *)c)[i];
    free(a);
    free(b);
    free(c);
}

/* Compare out with the f64 reference.  The bound on an element is the
 * rounding of a k-term dot product, (k + 4)·eps·(|alpha|·Σ|a||b| + |beta·c|):
 * loose for correct code, far below the size of a single wrong term. */
static bool verify(const problem *p, bool f64, const double *out, char *why, size_t len)
{
    const shape *s = &p->s;
    double eps = f64 ? DBL_EPSILON : FLT_EPSILON;
    for (size_t i = 0; i < s->m; i++) {
        for (size_t j = 0; j < s->n; j++) {
            double sum = 0, mag = 0;
            for (size_t q = 0; q < s->k; q++) {
                double x = s->ta ? p->a[q * p->lda + i] : p->a[i * p->lda + q];
                double y = s->tb ? p->b[j * p->ldb + q] : p->b[q * p->ldb + j];
                sum += x * y;
                mag += fabs(x * y);
            }
            double c0 = s->beta == 0 ? 0 : p->c0[i * p->ldc + j];
            double want = s->alpha * sum + s->beta * c0;
            double tol = (double)(s->k + 4) * eps *
                             (fabs(s->alpha) * mag + fabs(s->beta * c0)) +
                         1e-300;
            double got = out[i * p->ldc + j];
            if (!(fabs(got - want) <= tol)) {
                snprintf(why, len, "C[%zu,%zu] = %.9g, want %.9g", i, j, got, want);
                return false;
            }
        }
        for (size_t j = s->n; j < p->ldc && i + 1 < s->m; j++)
            if (out[i * p->ldc + j] != 12345.0) {
                snprintf(why, len, "padding C[%zu,%zu] overwritten", i, j);
                return false;
            }
    }
    return true;
}

static bool check(const shape *s, bool f64, char *why, size_t len)
{
    problem p;
    problem_make(&p, s);
    double *out = malloc((p.c_len + 1) * sizeof *out);
    run(&p, f64, out);
    bool good = verify(&p, f64, out, why, len);
    free(out);
    problem_free(&p);
    return good;
}

static const char *shape_str(const shape *s, bool f64)
{
    static char buf[160];
    snprintf(buf, sizeof buf, "%s m=%zu n=%zu k=%zu ta=%d tb=%d alpha=%g beta=%g pad=%zu",
             f64 ? "f64" : "f32", s->m, s->n, s->k, s->ta, s->tb, s->alpha, s->beta,
             s->pad);
    return buf;
}

/* Check a list of shapes; one TAP line for all, the first failure shown. */
static void check_all(const char *what, const shape *list, size_t count, bool f64)
{
    char why[200] = "";
    size_t bad = 0;
    for (size_t i = 0; i < count; i++) {
        if (!check(&list[i], f64, why, sizeof why)) {
            if (!bad++)
                diag("%s: %s", shape_str(&list[i], f64), why);
        }
    }
    ok(bad == 0, "%s %s %s: %zu shapes, %zu wrong", tg_isa(), f64 ? "f64" : "f32", what,
       count, bad);
}

/* ---- shape lists ---------------------------------------------------------- */

#define MAX_SHAPES 4096
static shape list[MAX_SHAPES];

static const double alphas[] = {1, -0.75, 2.5};
static const double betas[] = {0, 1, 0.5};

/* Every m, n, k in 1..max with all transposes; alpha/beta/pad rotate. */
static size_t tiny_shapes(size_t max)
{
    size_t c = 0;
    for (size_t m = 1; m <= max; m++)
        for (size_t n = 1; n <= max; n++)
            for (size_t k = 1; k <= max; k++) {
                size_t r = m * 31 + n * 7 + k;
                list[c++] = (shape){r & 1, r >> 1 & 1, m, n, k, alphas[r % 3],
                                    betas[r / 3 % 3], r % 5 == 0 ? 3 : 0};
            }
    return c;
}

/* Random triples from sizes around the tile and block edges. */
static size_t odd_shapes(size_t count)
{
    static const size_t sizes[] = {1,  2,  3,  5,  7,   8,   9,   13,  15,  16,  17,
                                   23, 24, 25, 31, 32,  33,  47,  48,  49,  63,  64,
                                   65, 95, 96, 97, 127, 128, 129, 191, 257, 300};
    size_t ns = sizeof sizes / sizeof *sizes, c = 0;
    while (c < count) {
        shape s;
        s.m = sizes[tg_rng_below(&rng, ns)];
        s.n = sizes[tg_rng_below(&rng, ns)];
        s.k = sizes[tg_rng_below(&rng, ns)];
        if (s.m * s.n * s.k > 3000000)
            continue;
        s.ta = tg_rng_below(&rng, 2);
        s.tb = tg_rng_below(&rng, 2);
        s.alpha = alphas[tg_rng_below(&rng, 3)];
        s.beta = betas[tg_rng_below(&rng, 3)];
        s.pad = tg_rng_below(&rng, 3) == 0 ? 1 + tg_rng_below(&rng, 17) : 0;
        list[c++] = s;
    }
    return c;
}

/* Shapes that cross K, N and M block boundaries (several K blocks, B in
 * several blocks, A packed or not), the MLP shapes and k = 0. */
static size_t block_shapes(void)
{
    static const size_t mnk[][3] = {
        {32, 5, 4},    {32, 3, 5},    {4, 5, 32},    {5, 3, 32},   {32, 4, 5},
        {128, 512, 79}, {128, 10, 512}, {77, 10, 128}, {128, 60, 10}, {37, 1000, 41},
        {20, 33, 1000}, {61, 127, 800}, {1601, 97, 20}, {200, 200, 0}, {7, 9, 0},
    };
    size_t c = 0;
    for (size_t i = 0; i < sizeof mnk / sizeof *mnk; i++)
        for (int t = 0; t < 4; t++)
            list[c++] = (shape){t & 1, t >> 1, mnk[i][0], mnk[i][1], mnk[i][2],
                                alphas[(i + (size_t)t) % 3], betas[(i + (size_t)t) % 3],
                                (i + (size_t)t) % 2 ? 5 : 0};
    return c;
}

static void test_isa(const char *isa)
{
    if (tg_set_isa(isa)) {
        ok(!tg_isa_supported(isa), "%s: set fails only when unsupported", isa);
        return;
    }
    is_str(tg_isa(), isa, "tg_set_isa(\"%s\")", isa);
    tg_set_threads(1);
    for (int f64 = 0; f64 < 2; f64++) {
        size_t c = tiny_shapes(16);
        check_all("m,n,k in 1..16", list, c, f64);
        c = odd_shapes(300);
        check_all("odd shapes up to 300", list, c, f64);
        c = block_shapes();
        check_all("block edges, MLP shapes, k=0", list, c, f64);
    }
    tg_set_threads(3);
    size_t c = odd_shapes(40);
    check_all("odd shapes, 3 threads", list, c, false);
    tg_set_threads(1);
}

/* ---- m or n == 0, alpha == 0 ----------------------------------------------- */

static void test_degenerate(void)
{
    float a[4] = {NAN, NAN, NAN, NAN}, b[4] = {NAN, NAN, NAN, NAN};
    float c[4] = {7, 7, 7, 7};
    tg_gemm_f32(false, false, 0, 2, 2, 1, a, 2, b, 2, 0, c, 2);
    tg_gemm_f32(false, false, 2, 0, 2, 1, a, 2, b, 2, 0, c, 2);
    ok(c[0] == 7 && c[3] == 7, "m = 0 or n = 0: C untouched");
    tg_gemm_f32(false, false, 2, 2, 2, 0, a, 2, b, 2, 1, c, 2);
    ok(c[0] == 7 && c[3] == 7, "alpha = 0, beta = 1: A and B not read, C kept");
    tg_gemm_f32(true, true, 2, 2, 2, 0, a, 2, b, 2, 0.5f, c, 2);
    ok(c[0] == 3.5f && c[3] == 3.5f, "alpha = 0, beta = 0.5: C = beta·C");
    double cd[4] = {NAN, NAN, NAN, NAN};
    tg_gemm_f64(false, true, 2, 2, 0, 1, NULL, 1, NULL, 1, 0, cd, 2);
    ok(cd[0] == 0 && cd[3] == 0, "k = 0, beta = 0 over NaN: C = 0");
}

/* ---- threads: identical bits, concurrency, no allocation -------------------- */

static bool bits_equal(const double *x, const double *y, size_t n)
{
    return !memcmp(x, y, n * sizeof *x);
}

static void test_thread_identity(void)
{
    static const shape big[] = {
        {false, false, 300, 500, 400, 1, 0, 0},  {true, false, 257, 301, 129, -0.75, 1, 3},
        {false, true, 128, 1000, 785, 1, 1, 0}, {true, true, 999, 64, 300, 2.5, 0, 1},
        {false, false, 1601, 200, 50, 1, 0.5, 0}, {false, true, 64, 777, 200, 1, 0, 0},
        {true, false, 784, 512, 128, 1, 0, 0},   {false, false, 256, 10, 1024, 1, 1, 0},
        {true, false, 999, 10, 300, -0.75, 1, 2}, {false, true, 300, 7, 500, 2.5, 0, 0},
        /* split over k: few tiles, long k (16 slices of more than 4096) */
        {false, false, 8, 10, 9000, 1, 0, 0},   {true, true, 5, 3, 70001, -0.75, 1, 2},
        {true, false, 16, 40, 5000, 1, 0.5, 1}, {false, true, 9, 50, 4096, 2.5, 0, 0},
    };
    for (int f64 = 0; f64 < 2; f64++) {
        size_t bad = 0, wrong = 0;
        for (size_t i = 0; i < sizeof big / sizeof *big; i++) {
            problem p;
            problem_make(&p, &big[i]);
            double *out[4];
            static const int counts[4] = {1, 2, 3, 7};
            for (int t = 0; t < 4; t++) {
                tg_set_threads(counts[t]);
                out[t] = malloc((p.c_len + 1) * sizeof(double));
                run(&p, f64, out[t]);
            }
            char why[200];
            if (!verify(&p, f64, out[0], why, sizeof why) && !wrong++)
                diag("%s: %s", shape_str(&big[i], f64), why);
            if (!bits_equal(out[0], out[1], p.c_len) || !bits_equal(out[0], out[2], p.c_len) ||
                !bits_equal(out[0], out[3], p.c_len))
                if (!bad++)
                    diag("%s: threads change the result", shape_str(&big[i], f64));
            for (int t = 0; t < 4; t++)
                free(out[t]);
            problem_free(&p);
        }
        ok(wrong == 0, "%s large shapes correct", f64 ? "f64" : "f32");
        ok(bad == 0, "%s large shapes (k split included): 1, 2, 3 and 7 threads give identical bits",
           f64 ? "f64" : "f32");
    }
    tg_set_threads(1);
}

/* Several user threads, each with its own problem, all calling GEMM at once
 * (the pool serves one; the others run inline): same bits as alone. */
typedef struct conc {
    problem p;
    double *want, *got;
    bool f64;
} conc;

static void *conc_main(void *arg)
{
    conc *x = arg;
    for (int r = 0; r < 3; r++)
        run(&x->p, x->f64, x->got);
    return NULL;
}

static void test_concurrent_callers(void)
{
    enum { N = 4 };
    conc x[N];
    pthread_t tid[N];
    tg_set_threads(2);
    for (int i = 0; i < N; i++) {
        shape s = {i & 1, i >> 1 & 1, 150 + 10 * (size_t)i, 200, 170, 1, 0, 0};
        problem_make(&x[i].p, &s);
        x[i].f64 = i & 1;
        x[i].want = malloc((x[i].p.c_len + 1) * sizeof(double));
        x[i].got = malloc((x[i].p.c_len + 1) * sizeof(double));
        run(&x[i].p, x[i].f64, x[i].want);
    }
    for (int i = 0; i < N; i++)
        pthread_create(&tid[i], NULL, conc_main, &x[i]);
    size_t bad = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(tid[i], NULL);
        bad += !bits_equal(x[i].want, x[i].got, x[i].p.c_len);
        free(x[i].want);
        free(x[i].got);
        problem_free(&x[i].p);
    }
    ok(bad == 0, "%d user threads calling GEMM at once: same bits as alone", N);
    tg_set_threads(1);
}

/* After a warm-up, GEMM allocates nothing (one and two threads). */
static void test_no_alloc(void)
{
    size_t m = 200, n = 300, k = 250;
    float *a = calloc(m * k, sizeof *a), *b = calloc(k * n, sizeof *b);
    float *c = calloc(m * n, sizeof *c);
    for (int t = 1; t <= 2; t++) {
        tg_set_threads(t);
        for (int r = 0; r < 50; r++) /* every pool thread gets to run a part */
            for (int tr = 0; tr < 4; tr++)
                tg_gemm_f32(tr & 1, tr >> 1, m, n, k, 1, a, tr & 1 ? m : k, b,
                            tr >> 1 ? k : n, 0, c, n);
        int64_t before = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
        for (int r = 0; r < 20; r++)
            for (int tr = 0; tr < 4; tr++)
                tg_gemm_f32(tr & 1, tr >> 1, m, n, k, 1, a, tr & 1 ? m : k, b,
                            tr >> 1 ? k : n, 1, c, n);
        ok(tg_test_control(TG_TEST_ALLOC_COUNT, 0) == before,
           "%d thread(s): no allocation after warm-up", t);
    }
    tg_set_threads(1);
    free(a);
    free(b);
    free(c);
}

/* A thread whose workspace cannot be allocated still gets right results. */
static void *fail_main(void *arg)
{
    bool *good = arg;
    char why[200];
    tg_test_control(TG_TEST_FAIL_ALLOC, 0);
    shape s1 = {false, true, 130, 200, 500, 1, 0, 0};
    *good = check(&s1, false, why, sizeof why);
    tg_test_control(TG_TEST_FAIL_ALLOC, 0);
    shape s2 = {true, false, 70, 150, 90, -0.75, 1, 2};
    *good = *good && check(&s2, true, why, sizeof why);
    tg_test_control(TG_TEST_FAIL_ALLOC, 0);
    shape s3 = {false, false, 130, 9, 300, 1, 0.5, 0}; /* dot products: Bᵀ */
    *good = *good && check(&s3, false, why, sizeof why);
    tg_test_control(TG_TEST_FAIL_ALLOC, -1);
    if (!*good)
        diag("%s", why);
    return NULL;
}

static void test_alloc_failure(void)
{
    tg_set_threads(1);
    bool good = false;
    pthread_t tid;
    pthread_create(&tid, NULL, fail_main, &good); /* fresh thread: no workspace */
    pthread_join(tid, NULL);
    ok(good, "workspace allocation fails: right result without it");
}

/* ---- tg_parallel_for -------------------------------------------------------- */

typedef struct pf {
    _Atomic int *hits;
    size_t n, grain;
    _Atomic int bad_chunk;
} pf;

static void pf_fn(void *ctx, size_t begin, size_t end)
{
    pf *x = ctx;
    /* a chunk is never empty, and shorter than grain only when it is all */
    if (end <= begin || (end - begin < x->grain && !(begin == 0 && end == x->n)))
        atomic_store(&x->bad_chunk, 1);
    for (size_t i = begin; i < end; i++)
        atomic_fetch_add(&x->hits[i], 1);
}

static bool pf_run(size_t n, size_t grain)
{
    pf x = {calloc(n + 1, sizeof(_Atomic int)), n, grain, 0};
    tg_parallel_for(n, grain, pf_fn, &x);
    bool good = !atomic_load(&x.bad_chunk);
    for (size_t i = 0; i < n; i++)
        good = good && atomic_load(&x.hits[i]) == 1;
    free((void *)x.hits);
    return good;
}

static void pf_nested(void *ctx, size_t begin, size_t end)
{
    (void)begin;
    (void)end;
    if (!pf_run(1000, 10))
        atomic_store((_Atomic int *)ctx, 1);
}

static void test_parallel_for(void)
{
    size_t bad = 0;
    for (int t = 1; t <= 4; t++) {
        tg_set_threads(t);
        static const size_t ns[] = {0, 1, 2, 3, 7, 100, 1001, 65536};
        static const size_t grains[] = {0, 1, 3, 64, 1000};
        for (size_t i = 0; i < sizeof ns / sizeof *ns; i++)
            for (size_t g = 0; g < sizeof grains / sizeof *grains; g++)
                bad += !pf_run(ns[i], grains[g]);
    }
    ok(bad == 0, "tg_parallel_for covers [0, n) once, chunks >= grain");
    tg_set_threads(2);
    _Atomic int nested_bad = 0;
    tg_parallel_for(8, 1, pf_nested, (void *)&nested_bad);
    ok(!atomic_load(&nested_bad), "tg_parallel_for inside tg_parallel_for runs inline");
    tg_set_threads(1);
}

/* ---- dynamic hand-out and the profile ------------------------------------------ */

static pthread_t main_thread;

typedef struct stall {
    _Atomic int stalled;      /* a worker's piece has begun to stall */
    _Atomic int caller_done;  /* pieces the caller has finished      */
} stall;

/* The first piece a worker runs stalls, as when the system takes its core
 * away: until the caller has run 7 pieces (at most 5 s), then 30 ms more;
 * the caller's first piece waits (at most 5 s) until the stall has begun.
 * So the outcome does not depend on how the threads are scheduled. */
static void stall_fn(void *ctx, size_t begin, size_t end)
{
    (void)begin;
    (void)end;
    stall *x = ctx;
    if (!pthread_equal(pthread_self(), main_thread)) {
        if (atomic_exchange(&x->stalled, 1))
            return;
        for (int i = 0; i < 5000 && atomic_load(&x->caller_done) < 7; i++)
            nanosleep(&(struct timespec){0, 1000000}, NULL);
        nanosleep(&(struct timespec){0, 30000000}, NULL);
        return;
    }
    for (int i = 0; i < 5000 && !atomic_load(&x->stalled); i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    atomic_fetch_add(&x->caller_done, 1);
}

static void test_dynamic(void)
{
    main_thread = pthread_self();
    tg_set_threads(2);
    pf_run(1000, 1); /* the worker exists and has run once */
    tg_thread_profile(true);
    stall x = {0, 0};
    tg_parallel_for(1000, 1, stall_fn, &x);
    tg_thread_stat st[2];
    tg_pool_stat ps;
    int n = tg_thread_stats(st, 2, &ps);
    bool one_stall = atomic_load(&x.stalled) == 1;
    ok(n == 2 && ps.jobs == 1 && st[0].pieces + st[1].pieces == 8 && st[0].jobs == 1,
       "a job of 2 threads is cut into 8 pieces (pieces %llu + %llu, jobs %llu)",
       (unsigned long long)st[0].pieces, (unsigned long long)st[1].pieces,
       (unsigned long long)ps.jobs);
    ok(one_stall && st[0].pieces == 7 && st[0].stolen == 3 && st[1].pieces == 1,
       "a stalled worker holds up only its piece: the caller ran the other 7, 3 of them "
       "from the worker's run (caller %llu, stolen %llu)",
       (unsigned long long)st[0].pieces, (unsigned long long)st[0].stolen);
    ok(ps.job_s >= 0.03 && ps.wait_s >= 0.025 && st[1].work_s >= 0.03,
       "the profile shows the stall: job %.3f s, caller waiting %.3f s, worker in pieces %.3f s",
       ps.job_s, ps.wait_s, st[1].work_s);
    pf small = {calloc(11, sizeof(_Atomic int)), 10, 10, 0};
    tg_parallel_for(10, 10, pf_fn, &small);
    free((void *)small.hits);
    tg_thread_stats(NULL, 0, &ps);
    ok(ps.inline_jobs == 1 && ps.jobs == 1, "a job under two grains runs inline and is counted");
    /* A C of one tile with a long k is split over k: the pool gets a job. */
    problem p;
    problem_make(&p, &(shape){false, false, 8, 10, 9000, 1, 0, 0});
    double *out = malloc((p.c_len + 1) * sizeof(double));
    uint64_t jobs = ps.jobs;
    run(&p, false, out);
    tg_thread_stats(NULL, 0, &ps);
    ok(ps.jobs > jobs, "8 x 10 x 9000 is split over k and shared (%llu pool jobs)",
       (unsigned long long)(ps.jobs - jobs));
    free(out);
    problem_free(&p);
    ok(tg_thread_profile(false) && !tg_thread_profile(false), "tg_thread_profile returns the setting");
    tg_set_threads(1);
}

/* ---- settings ----------------------------------------------------------------- */

static void test_settings(int env_threads, const char *env_isa, const char *best)
{
    ok(env_threads == 3, "TAPEGRAD_THREADS=3 sets the default (got %d)", env_threads);
    is_str(env_isa, best, "TAPEGRAD_ISA=bogus falls back to the best path");
    ok(tg_set_threads(0) == -1 && tg_set_threads(-2) == -1, "tg_set_threads(< 1) fails");
    ok(tg_set_threads(2) == 0 && tg_get_threads() == 2, "tg_set_threads(2)");
    ok(tg_set_isa("bogus") == -1 && !tg_isa_supported("bogus") && !tg_isa_supported(NULL),
       "unknown path rejected");
    ok(tg_isa_supported("generic"), "generic is always supported");
    ok(tg_set_isa("generic") == 0, "tg_set_isa(\"generic\")");
    ok(tg_set_isa(NULL) == 0, "tg_set_isa(NULL)");
    is_str(tg_isa(), best, "tg_set_isa(NULL) restores the best path");
#if !defined(__x86_64__) && !defined(__i386__)
    ok(!tg_isa_supported("avx2") && !tg_isa_supported("avx512"), "no x86 paths here");
#endif
}

int main(void)
{
    /* Before any other call: the defaults come from the environment. */
    setenv("TAPEGRAD_THREADS", "3", 1);
    setenv("TAPEGRAD_ISA", "bogus", 1);
    int env_threads = tg_get_threads();
    char env_isa[16];
    snprintf(env_isa, sizeof env_isa, "%s", tg_isa());
    const char *best = tg_isa_supported("avx512") ? "avx512"
                       : tg_isa_supported("avx2") ? "avx2"
                                                   : "generic";
    test_settings(env_threads, env_isa, best);

    tg_rng_seed(&rng, 6);
    static const char *const isas[] = {"generic", "avx2", "avx512"};
    for (int i = 0; i < 3; i++) {
        if (!tg_isa_supported(isas[i])) {
            diag("%s not supported on this CPU: skipped", isas[i]);
            continue;
        }
        test_isa(isas[i]);
    }
    tg_set_isa(NULL);
    test_degenerate();
    test_thread_identity();
    test_concurrent_callers();
    test_no_alloc();
    test_alloc_failure();
    test_parallel_for();
    test_dynamic();
    return tap_done();
}
