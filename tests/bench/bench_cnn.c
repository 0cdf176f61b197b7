/* bench_cnn: microseconds per replayed training step (forward, backward,
 * SGD lr 0.01) of the convolutional network of `tapegrad train --model cnn`
 * (seeds/cnn.h), the median over S steps after a warm-up.
 *
 *   bench_cnn [--batch 128] [--threads T] [--steps S] [--dtype f32|f64]
 *
 * Last line: cnn batch=.. dtype=.. threads=.. us_per_step=X.
 * tests/bench/torch_cnn.py step times the same step in PyTorch. */
#define _POSIX_C_SOURCE 200809L
#include "cnn.h"
#include "bench.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>


static int usage(void)
{
    fprintf(stderr, "usage: bench_cnn [--batch B] [--threads T] [--steps S] [--dtype f32|f64]\n");
    return 2;
}

int main(int argc, char **argv)
{
    long batch = 128, threads = 1, steps = 30;
    const char *dts = "f32";
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage();
        if (!strcmp(argv[i], "--batch"))
            batch = strtol(v, NULL, 10);
        else if (!strcmp(argv[i], "--threads"))
            threads = strtol(v, NULL, 10);
        else if (!strcmp(argv[i], "--steps"))
            steps = strtol(v, NULL, 10);
        else if (!strcmp(argv[i], "--dtype"))
            dts = v;
        else
            return usage();
    }
    tg_dtype dt = !strcmp(dts, "f64") ? TG_F64 : TG_F32;
    if (batch < 1 || threads < 1 || steps < 1 || (dt == TG_F32 && strcmp(dts, "f32")))
        return usage();
    tg_set_threads((int)threads);
    cnn_model m;
    tg_err err;
    if (cnn_build(&m, (size_t)batch, 28, 10, dt, 1, 0.25, &err)) {
        fprintf(stderr, "bench_cnn: %s\n", err.msg);
        return 1;
    }
    tg_rng r;
    tg_rng_seed(&r, 2);
    tg_init_normal(m.x, &r, 0, 1);
    for (long i = 0; i < batch; i++)
        tg_set(m.labels, (size_t)i, (double)tg_rng_below(&r, 10));
    tg_optim *sgd = tg_sgd_new(m.tape, m.n_params, m.params, &(tg_sgd_opts){.lr = 0.01});
    double *us = malloc((size_t)steps * sizeof *us);
    if (!sgd || !us) {
        fprintf(stderr, "bench_cnn: %s\n", sgd ? "out of memory" : tg_tape_error(m.tape));
        return 1;
    }
    long warm = steps / 10 > 3 ? steps / 10 : 3;
    for (long s = -warm; s < steps; s++) {
        double t0 = 1e6 * bench_now_s();
        tg_zero_grad(m.tape);
        if (tg_replay(m.tape) || tg_backward(m.loss) || tg_optim_step(sgd)) {
            fprintf(stderr, "bench_cnn: %s\n", tg_tape_error(m.tape));
            return 1;
        }
        if (s >= 0)
            us[s] = 1e6 * bench_now_s() - t0;
    }
    double med = bench_median(us, (size_t)steps);
    printf("loss %.4f, fastest step %.0f us, slowest %.0f us\n", tg_item(m.loss), us[0],
           us[steps - 1]);
    printf("cnn batch=%ld dtype=%s threads=%ld us_per_step=%.1f\n", batch, dts, threads, med);
    free(us);
    tg_optim_free(sgd);
    cnn_free(&m);
    return 0;
}
