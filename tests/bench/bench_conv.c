/*
 * conv2d throughput on the two convolutions of the Fashion-MNIST CNN
 * (batch 128, f32): 3×3 1→32 pad 1 on 28×28 and 3×3 32→64 pad 1 on 14×14,
 * beside tg_gemm_f32 on a 512³ product ("peak": what the same GEMM does on
 * a shape it likes).
 *
 *   bench_conv [--reps R] [--batch N] [--threads T]
 *
 * For 1 thread and for T (default tg_get_threads()), each layer prints the
 * median of R runs of: forward (a replay of the one node), dW (backward
 * from the output with x a constant: dW and db), and dX + dW (x a
 * parameter), as milliseconds and GFLOP/s counting 2·N·O·Ho·Wo·(C/g)·kH·kW
 * per product; dX alone is the difference of the two.  The last line of
 * each is "conv layer=.. threads=.. fwd_gflops=.. dx_gflops=.. dw_gflops=..
 * peak_gflops=..".
 */
#include "kernels.h"
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


static long parse_pos(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 1) {
        fprintf(stderr, "usage: bench_conv [--reps R] [--batch N] [--threads T]\n");
        exit(2);
    }
    return v;
}

/* tg_gemm_f32 on m = n = k = 512, GFLOP/s (median) */
static double peak(int reps)
{
    size_t s = 512;
    float *a = malloc(s * s * sizeof *a), *b = malloc(s * s * sizeof *b), *c = malloc(s * s * sizeof *c);
    for (size_t i = 0; i < s * s; i++)
        a[i] = (float)(i % 7) - 3, b[i] = (float)(i % 5) - 2;
    double *t = malloc((size_t)reps * sizeof *t);
    tg_gemm_f32(false, false, s, s, s, 1, a, s, b, s, 0, c, s); /* warm up */
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now_s();
        tg_gemm_f32(false, false, s, s, s, 1, a, s, b, s, 0, c, s);
        t[r] = bench_now_s() - t0;
    }
    double g = 2.0 * (double)(s * s * s) / bench_median(t, reps) / 1e9;
    free(a), free(b), free(c), free(t);
    return g;
}

typedef struct layer {
    const char *name;
    size_t c, h, o, k;
    int pad;
} layer;

/* median seconds of reps calls of one of: forward (what 0), backward (1) */
static double time_it(tg_tape *t, tg_tensor *y, const float *seed, int what, int reps)
{
    double *v = malloc((size_t)reps * sizeof *v);
    for (int r = -1; r < reps; r++) { /* one warm-up */
        double t0 = bench_now_s();
        if (what == 0)
            tg_replay(t);
        else
            tg_backward_vjp(y, seed);
        if (r >= 0)
            v[r] = bench_now_s() - t0;
    }
    double m = bench_median(v, reps);
    free(v);
    return m;
}

static void run(const layer *L, size_t batch, int threads, int reps, double pk)
{
    tg_set_threads(threads);
    tg_tape *t = tg_tape_new();
    tg_rng rng;
    tg_rng_seed(&rng, 1);
    tg_tensor *x = tg_param(t, "x", TG_F32, 4, (size_t[]){batch, L->c, L->h, L->h});
    tg_tensor *w = tg_param(t, "w", TG_F32, 4, (size_t[]){L->o, L->c, L->k, L->k});
    tg_tensor *b = tg_param(t, "b", TG_F32, 1, (size_t[]){L->o});
    tg_init_normal(x, &rng, 0, 1);
    tg_init_he(w, &rng);
    tg_conv2d_opts o = {{1, 1}, {L->pad, L->pad}, {1, 1}, 1};
    tg_tensor *y = tg_conv2d(x, w, b, &o);
    if (!y) {
        fprintf(stderr, "%s\n", tg_tape_error(t));
        exit(1);
    }
    float *seed = malloc(tg_size(y) * sizeof *seed);
    for (size_t i = 0; i < tg_size(y); i++)
        seed[i] = (float)tg_rng_uniform(&rng) - 0.5f;
    double flop = 2.0 * (double)tg_size(y) * (double)(L->c * L->k * L->k);
    double tf = time_it(t, y, seed, 0, reps);
    double tboth = time_it(t, y, seed, 1, reps);
    tg_set_requires_grad(x, false);
    double tw = time_it(t, y, seed, 1, reps);
    double tx = tboth - tw;
    printf("%-6s threads=%d  forward %7.2f ms %6.1f GFLOP/s | dW+db %7.2f ms %6.1f GFLOP/s | "
           "dX %7.2f ms %6.1f GFLOP/s | dX+dW %7.2f ms | peak GEMM %6.1f GFLOP/s\n",
           L->name, threads, tf * 1e3, flop / tf / 1e9, tw * 1e3, flop / tw / 1e9, tx * 1e3,
           flop / tx / 1e9, tboth * 1e3, pk);
    printf("conv layer=%s threads=%d fwd_gflops=%.1f dx_gflops=%.1f dw_gflops=%.1f "
           "peak_gflops=%.1f\n", L->name, threads, flop / tf / 1e9, flop / tx / 1e9,
           flop / tw / 1e9, pk);
    free(seed);
    tg_tape_free(t);
}

int main(int argc, char **argv)
{
    int reps = 15, threads = tg_get_threads();
    size_t batch = 128;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = (int)parse_pos(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = (size_t)parse_pos(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = (int)parse_pos(argv[++i]);
        else
            parse_pos("usage");
    }
    static const layer layers[] = {{"conv1", 1, 28, 32, 3, 1}, {"conv2", 32, 14, 64, 3, 1}};
    printf("bench_conv: batch %zu, f32, %s kernels, median of %d runs\n", batch, tg_isa(), reps);
    int counts[2] = {1, threads};
    for (int k = 0; k < (threads > 1 ? 2 : 1); k++) {
        tg_set_threads(counts[k]);
        double pk = peak(reps);
        for (int l = 0; l < 2; l++)
            run(&layers[l], batch, counts[k], reps, pk);
    }
    return 0;
}
