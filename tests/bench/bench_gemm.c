/*
 * GEMM throughput: tapegrad's tg_gemm_f32/f64 on one shape, and OpenBLAS on
 * the same operands in the same run when it was found at build time.
 *
 *   bench_gemm --m M --n N --k K [--ta] [--tb] [--dtype f32|f64]
 *              [--threads T] [--reps R] [--no-openblas]
 *
 * C[m×n] = op(A)·op(B) with row-major operands (A stored k×m with --ta, B
 * stored n×k with --tb), alpha = 1, beta = 0.  The figure is 2·m·n·k / the
 * median time of R calls (clock_gettime(CLOCK_MONOTONIC) around each).
 * With one thread each repetition times one call of each library back to
 * back, so that both see the same machine state.  With more, all of
 * tapegrad's calls come first, then OpenBLAS's: OpenBLAS's idle threads
 * keep spinning for a long while after each call and would take a core
 * from the next call of the other library.  The last line is
 *   gemm m=.. n=.. k=.. ta=.. tb=.. dtype=.. threads=.. gflops=X
 *        [openblas_gflops=Y ratio_vs_openblas=R]
 * (--no-openblas: tapegrad only, as tests/bench/scaling.sh runs it). */
#include "kernels.h"
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef TG_HAVE_OPENBLAS
/* Declared here rather than through cblas.h, whose location differs between
 * distributions; the values are the CBLAS standard's. */
enum { CBLAS_ROW_MAJOR = 101, CBLAS_NO_TRANS = 111, CBLAS_TRANS = 112 };
void cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb, float beta,
                 float *c, int ldc);
void cblas_dgemm(int order, int ta, int tb, int m, int n, int k, double alpha,
                 const double *a, int lda, const double *b, int ldb,
                 double beta, double *c, int ldc);
void openblas_set_num_threads(int n);
#endif


static void usage(void)
{
    fprintf(stderr, "usage: bench_gemm --m M --n N --k K [--ta] [--tb] "
                    "[--dtype f32|f64] [--threads T] [--reps R] [--no-openblas]\n");
    exit(2);
}

static long parse_pos(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 1)
        usage();
    return v;
}

typedef struct bench {
    size_t m, n, k;
    bool ta, tb, f64;
    void *a, *b, *c, *c_ref;
} bench;

static void run_tg(const bench *x)
{
    size_t lda = x->ta ? x->m : x->k, ldb = x->tb ? x->k : x->n;
    if (x->f64)
        tg_gemm_f64(x->ta, x->tb, x->m, x->n, x->k, 1, x->a, lda, x->b, ldb,
                    0, x->c, x->n);
    else
        tg_gemm_f32(x->ta, x->tb, x->m, x->n, x->k, 1, x->a, lda, x->b, ldb,
                    0, x->c, x->n);
}

#ifdef TG_HAVE_OPENBLAS
static void run_openblas(const bench *x)
{
    int m = (int)x->m, n = (int)x->n, k = (int)x->k;
    int lda = x->ta ? m : k, ldb = x->tb ? k : n;
    int ta = x->ta ? CBLAS_TRANS : CBLAS_NO_TRANS;
    int tb = x->tb ? CBLAS_TRANS : CBLAS_NO_TRANS;
    if (x->f64)
        cblas_dgemm(CBLAS_ROW_MAJOR, ta, tb, m, n, k, 1, x->a, lda, x->b, ldb,
                    0, x->c_ref, n);
    else
        cblas_sgemm(CBLAS_ROW_MAJOR, ta, tb, m, n, k, 1, x->a, lda, x->b, ldb,
                    0, x->c_ref, n);
}
#endif

static void fill(void *p, size_t count, bool f64, uint64_t seed)
{
    tg_rng rng;
    tg_rng_seed(&rng, seed);
    for (size_t i = 0; i < count; i++) {
        double v = 2 * tg_rng_uniform(&rng) - 1;
        if (f64)
            ((double *)p)[i] = v;
        else
            ((float *)p)[i] = (float)v;
    }
}

int main(int argc, char **argv)
{
    bench x = {0};
    long threads = 1, reps = 0;
    bool ob = true; /* compare with OpenBLAS (when built with it) */
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--no-openblas"))
            ob = false;
        else if (!strcmp(o, "--ta"))
            x.ta = true;
        else if (!strcmp(o, "--tb"))
            x.tb = true;
        else if (i + 1 >= argc)
            usage();
        else if (!strcmp(o, "--m"))
            x.m = (size_t)parse_pos(argv[++i]);
        else if (!strcmp(o, "--n"))
            x.n = (size_t)parse_pos(argv[++i]);
        else if (!strcmp(o, "--k"))
            x.k = (size_t)parse_pos(argv[++i]);
        else if (!strcmp(o, "--threads"))
            threads = parse_pos(argv[++i]);
        else if (!strcmp(o, "--reps"))
            reps = parse_pos(argv[++i]);
        else if (!strcmp(o, "--dtype")) {
            const char *d = argv[++i];
            if (!strcmp(d, "f64"))
                x.f64 = true;
            else if (strcmp(d, "f32"))
                usage();
        } else
            usage();
    }
    if (!x.m || !x.n || !x.k)
        usage();
    if (tg_set_threads((int)threads)) {
        fprintf(stderr, "bench_gemm: bad thread count\n");
        return 2;
    }
#ifdef TG_HAVE_OPENBLAS
    openblas_set_num_threads((int)threads);
#endif

    size_t es = x.f64 ? sizeof(double) : sizeof(float);
    x.a = tg_aligned_alloc(x.m * x.k * es);
    x.b = tg_aligned_alloc(x.k * x.n * es);
    x.c = tg_aligned_alloc(x.m * x.n * es);
    x.c_ref = tg_aligned_alloc(x.m * x.n * es);
    if (!x.a || !x.b || !x.c || !x.c_ref) {
        fprintf(stderr, "bench_gemm: out of memory\n");
        return 1;
    }
    fill(x.a, x.m * x.k, x.f64, 1);
    fill(x.b, x.k * x.n, x.f64, 2);
    double flops = 2.0 * (double)x.m * (double)x.n * (double)x.k;

    /* Warm-up (thread pool, workspaces, caches), and a repetition count
     * that makes the run last about a second per library. */
    double t0 = bench_now_s();
    run_tg(&x);
    run_tg(&x);
    double one = (bench_now_s() - t0) / 2;
#ifdef TG_HAVE_OPENBLAS
    if (ob && threads == 1) { /* otherwise: right before its own block below */
        run_openblas(&x);
        run_openblas(&x);
    }
#endif
    if (!reps) {
        reps = (long)(1.0 / fmax(one, 1e-7));
        reps = reps < 5 ? 5 : reps > 20001 ? 20001 : reps;
    }

    double *t_tg = malloc((size_t)reps * sizeof *t_tg);
    double *t_ob = malloc((size_t)reps * sizeof *t_ob);
    if (!t_tg || !t_ob)
        return 1;
    bool interleave = ob && threads == 1;
    (void)interleave; /* read only with OpenBLAS */
    bench_profile_start();
    double t_start = bench_now_s();
    for (long r = 0; r < reps; r++) {
        t0 = bench_now_s();
        run_tg(&x);
        t_tg[r] = bench_now_s() - t0;
#ifdef TG_HAVE_OPENBLAS
        if (interleave) {
            t0 = bench_now_s();
            run_openblas(&x);
            t_ob[r] = bench_now_s() - t0;
        }
#endif
    }
    if (!interleave)
        bench_profile_print(bench_now_s() - t_start);
#ifdef TG_HAVE_OPENBLAS
    if (ob && !interleave) {
        run_openblas(&x);
        run_openblas(&x);
    }
    for (long r = 0; r < reps && ob && !interleave; r++) {
        t0 = bench_now_s();
        run_openblas(&x);
        t_ob[r] = bench_now_s() - t0;
    }
#endif
    double gflops = flops / bench_median(t_tg, (size_t)reps) * 1e-9;

    char line[512];
    int len = snprintf(line, sizeof line,
                       "gemm m=%zu n=%zu k=%zu ta=%d tb=%d dtype=%s "
                       "threads=%ld gflops=%.1f",
                       x.m, x.n, x.k, x.ta, x.tb, x.f64 ? "f64" : "f32",
                       threads, gflops);
#ifdef TG_HAVE_OPENBLAS
    /* Both results should agree to rounding: report the largest difference
     * relative to the largest |C| (a comment line, not the result). */
    double dmax = 0, cmax = 0;
    for (size_t i = 0; i < x.m * x.n && ob; i++) {
        double u = x.f64 ? ((double *)x.c)[i] : ((float *)x.c)[i];
        double v = x.f64 ? ((double *)x.c_ref)[i] : ((float *)x.c_ref)[i];
        dmax = fmax(dmax, fabs(u - v));
        cmax = fmax(cmax, fabs(v));
    }
    if (ob) {
        printf("# reps=%ld max|C - C_openblas| / max|C| = %.2e\n", reps,
               dmax / fmax(cmax, 1e-300));
        double obg = flops / bench_median(t_ob, (size_t)reps) * 1e-9;
        snprintf(line + len, sizeof line - (size_t)len,
                 " openblas_gflops=%.1f ratio_vs_openblas=%.3f", obg, gflops / obg);
    } else {
        printf("# reps=%ld (OpenBLAS not run)\n", reps);
    }
#else
    (void)ob;
    (void)len;
    printf("# reps=%ld (OpenBLAS not found at build time)\n", reps);
#endif
    printf("%s\n", line);
    free(t_tg);
    free(t_ob);
    tg_free_aligned(x.a);
    tg_free_aligned(x.b);
    tg_free_aligned(x.c);
    tg_free_aligned(x.c_ref);
    return 0;
}
