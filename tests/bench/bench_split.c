/* bench_split: where splitting work over threads starts to pay.  For
 * elementwise work (a ReLU forward and backward, replayed) on n elements
 * and for square-ish GEMMs of m·n·k multiply-adds, the time on 1 thread and
 * on T threads, alternately, the median of 7 rounds each; the ratio below 1
 * means T threads are faster.  The library splits elementwise work from
 * 2·8192 elements and gives a GEMM thread at least 524 288 multiply-adds
 * (src/kernels/kernels.h, gemm.c); this shows what that costs or gains
 * around those sizes on this machine, with the data where an MLP step has
 * it: written by the other thread the op before.
 *
 *   bench_split [--threads T]        (default 2)
 *
 * Lines: split kind=elem|gemm size=N threads=T us_1=X us_T=Y ratio=Y/X */
#include <tapegrad.h>
#include "bench.h"

#include <stdio.h>
#include <string.h>

enum { ROUNDS = 7 };

/* Median microseconds per replay + backward of the tape over `reps` runs. */
static double time_steps(tg_tape *t, tg_tensor *loss, int reps)
{
    double us[64];
    reps = reps > 64 ? 64 : reps;
    for (int w = 0; w < 3; w++)
        if (tg_replay(t) || tg_backward(loss))
            return -1;
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now_s();
        for (int i = 0; i < 20; i++)
            if (tg_replay(t) || tg_backward(loss))
                return -1;
        us[r] = (bench_now_s() - t0) * 1e6 / 20;
    }
    return bench_median(us, (size_t)reps);
}

static int measure(const char *kind, size_t size, tg_tape *t, tg_tensor *loss, int threads)
{
    double a[ROUNDS], b[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        tg_set_threads(1);
        a[r] = time_steps(t, loss, 15);
        tg_set_threads(threads);
        b[r] = time_steps(t, loss, 15);
        if (a[r] < 0 || b[r] < 0) {
            fprintf(stderr, "bench_split: %s\n", tg_tape_error(t));
            return 1;
        }
    }
    double x = bench_median(a, ROUNDS), y = bench_median(b, ROUNDS);
    printf("split kind=%s size=%zu threads=%d us_1=%.2f us_T=%.2f ratio=%.3f\n", kind, size,
           threads, x, y, y / x);
    return 0;
}

int main(int argc, char **argv)
{
    int threads = 2;
    if (argc == 3 && !strcmp(argv[1], "--threads"))
        threads = atoi(argv[2]);
    if (threads < 2 || (argc != 1 && argc != 3)) {
        fprintf(stderr, "usage: bench_split [--threads T>=2]\n");
        return 2;
    }
    tg_rng r;
    tg_rng_seed(&r, 1);
    /* elementwise: loss = sum(relu(relu(x))): two ReLUs, each reading what
     * the other wrote */
    static const size_t elems[] = {4096, 8192, 16384, 32768, 65536, 131072, 262144};
    for (size_t i = 0; i < sizeof elems / sizeof *elems; i++) {
        tg_tape *t = tg_tape_new();
        tg_tensor *x = tg_param(t, "x", TG_F32, 1, (size_t[]){elems[i]});
        tg_init_normal(x, &r, 0, 1);
        tg_tensor *loss = tg_sum(tg_relu(tg_relu(x)));
        int bad = !loss || measure("elem", elems[i], t, loss, threads);
        tg_tape_free(t);
        if (bad)
            return 1;
    }
    /* GEMM: loss = sum(A·B) with A m×k, B k×n, m = n = k = s */
    static const size_t sides[] = {48, 64, 80, 96, 128, 160};
    for (size_t i = 0; i < sizeof sides / sizeof *sides; i++) {
        size_t s = sides[i];
        tg_tape *t = tg_tape_new();
        tg_tensor *a = tg_param(t, "a", TG_F32, 2, (size_t[]){s, s});
        tg_tensor *b = tg_param(t, "b", TG_F32, 2, (size_t[]){s, s});
        tg_init_normal(a, &r, 0, 1);
        tg_init_normal(b, &r, 0, 1);
        tg_tensor *loss = tg_sum(tg_matmul(a, b));
        int bad = !loss || measure("gemm", s * s * s, t, loss, threads);
        tg_tape_free(t);
        if (bad)
            return 1;
    }
    return 0;
}
