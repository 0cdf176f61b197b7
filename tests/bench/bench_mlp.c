/* bench_mlp: microseconds per replayed MLP training step (forward, backward,
 * SGD update), the median over S steps after a warm-up.
 *
 *   bench_mlp --layers 784,512,512,10 --batch 128 [--act relu|sigmoid]
 *             [--loss ce|mse] [--dtype f32|f64] [--threads T] [--steps S]
 *
 * Last line: mlp layers=.. batch=.. act=.. loss=.. dtype=.. threads=..
 * us_per_step=X.  tests/bench/torch_mlp.py times the same step in PyTorch
 * (Linear layers with biases, the activation between them and, for
 * sigmoid + mse, on the output too; SGD lr 0.01; mean reductions). */
#define _POSIX_C_SOURCE 200809L
#include <tapegrad.h>
#include "bench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_LAYERS 16


static int usage(void)
{
    fprintf(stderr, "usage: bench_mlp --layers 784,512,512,10 --batch 128 [--act relu|sigmoid] "
                    "[--loss ce|mse] [--dtype f32|f64] [--threads T] [--steps S]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *layers_s = "784,512,512,10", *act = "relu", *lossname = "ce", *dts = "f32";
    long batch = 128, threads = 1, steps = 200;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage();
        if (!strcmp(argv[i], "--layers"))
            layers_s = v;
        else if (!strcmp(argv[i], "--batch"))
            batch = strtol(v, NULL, 10);
        else if (!strcmp(argv[i], "--act"))
            act = v;
        else if (!strcmp(argv[i], "--loss"))
            lossname = v;
        else if (!strcmp(argv[i], "--dtype"))
            dts = v;
        else if (!strcmp(argv[i], "--threads"))
            threads = strtol(v, NULL, 10);
        else if (!strcmp(argv[i], "--steps"))
            steps = strtol(v, NULL, 10);
        else
            return usage();
        i++;
    }
    bool relu = !strcmp(act, "relu"), ce = !strcmp(lossname, "ce");
    tg_dtype dt = !strcmp(dts, "f64") ? TG_F64 : TG_F32;
    if ((!relu && strcmp(act, "sigmoid")) || (!ce && strcmp(lossname, "mse")) ||
        (dt == TG_F32 && strcmp(dts, "f32")) || batch < 1 || threads < 1 || steps < 1)
        return usage();
    size_t sizes[MAX_LAYERS + 1];
    int n = 0;
    for (const char *s = layers_s; *s && n <= MAX_LAYERS;) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || errno)
            return usage();
        sizes[n++] = (size_t)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return usage();
    }
    if (n < 2)
        return usage();
    tg_set_threads((int)threads);

    tg_tape *t = tg_tape_new();
    tg_rng r;
    tg_rng_seed(&r, 1);
    size_t B = (size_t)batch, out = sizes[n - 1];
    tg_tensor *x = tg_input(t, "x", dt, 2, (size_t[]){B, sizes[0]});
    tg_init_normal(x, &r, 0, 1);
    tg_tensor *h = x;
    for (int l = 0; l + 1 < n; l++) {
        tg_tensor *w = tg_param(t, "W", dt, 2, (size_t[]){sizes[l], sizes[l + 1]});
        tg_tensor *b = tg_param(t, "b", dt, 1, (size_t[]){sizes[l + 1]});
        tg_init_xavier(w, &r);
        h = tg_add_bias(tg_matmul(h, w), b);
        if (l + 2 < n || (!relu && !ce))
            h = relu ? tg_relu(h) : tg_sigmoid(h);
    }
    tg_tensor *loss;
    if (ce) {
        tg_tensor *y = tg_input(t, "y", TG_I32, 1, (size_t[]){B});
        for (size_t i = 0; i < B; i++)
            tg_set(y, i, (double)tg_rng_below(&r, out));
        loss = tg_softmax_ce(h, y, TG_MEAN);
    } else {
        tg_tensor *y = tg_input(t, "y", dt, 2, (size_t[]){B, out});
        tg_init_uniform(y, &r, 0, 1);
        loss = tg_mse(h, y, TG_MEAN);
    }
    tg_optim *sgd = tg_sgd_new(t, 0, NULL, &(tg_sgd_opts){.lr = 0.01});
    if (!loss || !sgd) {
        fprintf(stderr, "bench_mlp: %s\n", tg_tape_error(t));
        return 1;
    }
    double *us = malloc((size_t)steps * sizeof *us);
    long warm = steps / 10 > 20 ? steps / 10 : 20;
    for (long s = -warm; s < steps; s++) {
        double t0 = 1e6 * bench_now_s();
        tg_zero_grad(t);
        if (tg_replay(t) || tg_backward(loss) || tg_optim_step(sgd)) {
            fprintf(stderr, "bench_mlp: %s\n", tg_tape_error(t));
            return 1;
        }
        if (s >= 0)
            us[s] = 1e6 * bench_now_s() - t0;
    }
    double med = bench_median(us, (size_t)steps);
    printf("loss %.4f, fastest step %.2f us, slowest %.2f us\n", tg_item(loss), us[0],
           us[steps - 1]);
    printf("mlp layers=%s batch=%ld act=%s loss=%s dtype=%s threads=%ld us_per_step=%.2f\n",
           layers_s, batch, act, lossname, dts, threads, med);
    free(us);
    tg_optim_free(sgd);
    tg_tape_free(t);
    return 0;
}
