/* bench_mlp: microseconds per replayed MLP training step (forward, backward,
 * SGD update), the median over S steps after a warm-up.
 *
 *   bench_mlp --layers 784,512,512,10 --batch 128 [--act relu|sigmoid]
 *             [--loss ce|mse] [--dtype f32|f64] [--threads T] [--steps S] [--busy]
 *             [--optim sgd|adam]
 *
 * Last line: mlp layers=.. batch=.. act=.. loss=.. dtype=.. threads=..
 * us_per_step=X.  tests/bench/torch_mlp.py times the same step in PyTorch
 * (Linear layers with biases, the activation between them and, for
 * sigmoid + mse, on the output too; SGD lr 0.01; mean reductions).
 *
 * --busy starts a competing busy loop (a child process at the same
 * priority, pinned to the last CPU where the system allows) and times 1
 * thread and T threads alternately, 7 rounds each; the last line then gives
 * both medians and their ratio.  TAPEGRAD_PROFILE=1 prints the thread-pool
 * profile of the timed steps (tg_thread_stats).
 *
 * --optim adam steps with Adam (default settings) instead of SGD.  After the
 * timing, the bytes the tape and the optimizer hold per step, broken down,
 * against the least such a step needs (memory_report, at the end). */
#define _GNU_SOURCE /* sched_setaffinity for --busy */
#define BENCH_BUSY
#include <tapegrad.h>
#include "bench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_LAYERS 16


static void memory_report(tg_tape *t, const tg_optim *o, int copies, const tg_tape_stats *before,
                          const size_t *sizes, int n, size_t batch, bool ce);

/* A warm-up, then `steps` timed steps into us[] (microseconds). */
static int run_steps(tg_tape *t, tg_tensor *loss, tg_optim *opt, long steps, double *us)
{
    long warm = steps / 10 > 20 ? steps / 10 : 20;
    for (long s = -warm; s < steps; s++) {
        if (s == 0)
            bench_profile_start();
        double t0 = 1e6 * bench_now_s();
        tg_zero_grad(t);
        if (tg_replay(t) || tg_backward(loss) || tg_optim_step(opt))
            return 1;
        if (s >= 0)
            us[s] = 1e6 * bench_now_s() - t0;
    }
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_mlp --layers 784,512,512,10 --batch 128 [--act relu|sigmoid] "
                    "[--loss ce|mse] [--dtype f32|f64] [--threads T] [--steps S] [--busy] "
                    "[--optim sgd|adam]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *layers_s = "784,512,512,10", *act = "relu", *lossname = "ce", *dts = "f32";
    const char *optim = "sgd";
    long batch = 128, threads = 1, steps = 200;
    bool busy = false;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v && strcmp(argv[i], "--busy"))
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
        else if (!strcmp(argv[i], "--busy")) {
            busy = true;
            continue;
        } else if (!strcmp(argv[i], "--threads"))
            threads = strtol(v, NULL, 10);
        else if (!strcmp(argv[i], "--steps"))
            steps = strtol(v, NULL, 10);
        else if (!strcmp(argv[i], "--optim"))
            optim = v;
        else
            return usage();
        i++;
    }
    bool relu = !strcmp(act, "relu"), ce = !strcmp(lossname, "ce");
    tg_dtype dt = !strcmp(dts, "f64") ? TG_F64 : TG_F32;
    if ((!relu && strcmp(act, "sigmoid")) || (!ce && strcmp(lossname, "mse")) ||
        (dt == TG_F32 && strcmp(dts, "f32")) || batch < 1 || threads < 1 || steps < 1)
        return usage();
    bool adam = !strcmp(optim, "adam");
    if (!adam && strcmp(optim, "sgd"))
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
    tg_optim *sgd = adam ? tg_adam_new(t, 0, NULL, NULL)
                         : tg_sgd_new(t, 0, NULL, &(tg_sgd_opts){.lr = 0.01});
    tg_set_keep_grads(t, false); /* a step reads only the leaves' gradients */
    tg_tape_stats before; /* the tape before the first backward: no gradients yet */
    tg_tape_get_stats(t, &before);
    if (!loss || !sgd) {
        fprintf(stderr, "bench_mlp: %s\n", tg_tape_error(t));
        return 1;
    }
    double *us = malloc((size_t)steps * sizeof *us);
    if (!us)
        return 1;
    if (busy) {
        /* Alternate 1 thread and T threads, ROUNDS times each, with a
         * competing busy process; the medians of the rounds' medians. */
        enum { ROUNDS = 7 };
        double m1[ROUNDS], mt[ROUNDS];
        int cpu = -1;
        long pid = bench_busy_start(&cpu);
        if (pid < 0) {
            fprintf(stderr, "bench_mlp: cannot start the competing process\n");
            return 1;
        }
        int failed = 0;
        for (int k = 0; k < ROUNDS && !failed; k++) {
            tg_set_threads(1);
            failed = run_steps(t, loss, sgd, steps, us);
            m1[k] = bench_median(us, (size_t)steps);
            tg_set_threads((int)threads);
            failed = failed || run_steps(t, loss, sgd, steps, us);
            mt[k] = bench_median(us, (size_t)steps);
        }
        bench_busy_stop(pid);
        if (failed) {
            fprintf(stderr, "bench_mlp: %s\n", tg_tape_error(t));
            return 1;
        }
        double a = bench_median(m1, ROUNDS), b = bench_median(mt, ROUNDS);
        printf("busy: a competing busy loop %s; %d rounds of %ld steps, alternating\n",
               cpu >= 0 ? "pinned to the last CPU" : "(not pinned)", ROUNDS, steps);
        printf("mlp layers=%s batch=%ld busy=1 threads=1 us_per_step=%.2f threads=%ld "
               "us_per_step=%.2f ratio=%.3f\n",
               layers_s, batch, a, threads, b, b / a);
    } else {
        double t_start = bench_now_s();
        bench_profile_start();
        if (run_steps(t, loss, sgd, steps, us)) {
            fprintf(stderr, "bench_mlp: %s\n", tg_tape_error(t));
            return 1;
        }
        double wall = bench_now_s() - t_start;
        double med = bench_median(us, (size_t)steps);
        printf("loss %.4f, fastest step %.2f us, slowest %.2f us\n", tg_item(loss), us[0],
               us[steps - 1]);
        printf("mlp layers=%s batch=%ld act=%s loss=%s dtype=%s threads=%ld us_per_step=%.2f\n",
               layers_s, batch, act, lossname, dts, threads, med);
        bench_profile_print(wall);
    }
    memory_report(t, sgd, adam ? 2 : 0, &before, sizes, n, B, ce);
    free(us);
    tg_optim_free(sgd);
    tg_tape_free(t);
    return 0;
}

/* ---- memory ------------------------------------------------------------- */

static size_t bytes_of(const tg_tensor *x) { return tg_size(x) * tg_dtype_size(tg_dtype_of(x)); }

static void mem_line(const char *what, size_t bytes)
{
    printf("  %-46s %10zu B %8.2f MiB\n", what, bytes, (double)bytes / (1 << 20));
}

/* What the tape and the optimizer hold for a training step (measured after
 * the steps, with the public API), against the least any implementation of
 * the same step must hold.
 *
 * Measured: parameter values: the leaves that require a gradient; inputs:
 * the other leaves (x and the labels or targets); leaf gradients: what the
 * leaf arena grew by from before the first backward (which allocates them)
 * to now; optimizer state: tg_optim_bytes; activations: the values of the
 * recorded nodes (each buffer once, so a view is not counted twice); their
 * gradients: what the graph arena grew by over the same time (backward
 * allocates nothing else there); other: the rest of both arenas (tensor and
 * node structs, names, op scratch such as softmax_ce's probabilities,
 * alignment) and the checkpoint pools.  Not seen: the free tails of the
 * arenas' chunks (allocated, untouched) and the tape's pointer arrays.
 *
 * Minimum, with `copies` optimizer buffers per parameter (0 plain SGD, 1
 * momentum, 2 Adam's m and v):
 *   parameters × (value + gradient + copies): the state a step updates;
 *   x, the input of the first matmul: dW1 = xᵀ·dZ1 reads it;
 *   per hidden layer its activation's output h, batch × width: h is the
 *     input of the next matmul (dW = hᵀ·dZ reads it) and the one tensor the
 *     activation's backward needs (ReLU' = [h > 0] and sigmoid' = h(1 − h)
 *     read the output), so one tensor serves both;
 *   the loss: cross-entropy keeps the probabilities P (batch × classes) and
 *     the labels, dZ = (P − onehot)/batch; MSE keeps the prediction (the
 *     output of the last sigmoid or add_bias: one tensor for both) and the
 *     targets.
 * Not counted: the matmul and add_bias outputs (neither op's backward reads
 * its output; tapegrad's ReLU reads its input, the add_bias output, where
 * its output would do), and the gradients of activations, which backward
 * needs only transiently (two layers' worth at a time). */
static void memory_report(tg_tape *t, const tg_optim *o, int copies, const tg_tape_stats *before,
                          const size_t *sizes, int n, size_t batch, bool ce)
{
    tg_tape_stats now;
    tg_tape_get_stats(t, &now);
    size_t params = 0, inputs = 0, acts = 0, es = 0;
    for (size_t i = 0; i < tg_tape_leaves(t); i++) {
        tg_tensor *x = tg_tape_leaf(t, i);
        if (tg_requires_grad(x))
            params += bytes_of(x), es = tg_dtype_size(tg_dtype_of(x));
        else
            inputs += bytes_of(x);
    }
    for (size_t i = 0; i < tg_tape_nodes(t); i++) {
        tg_tensor *y = tg_tape_node_output(t, i);
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = tg_data(tg_tape_node_output(t, j)) == tg_data(y);
        acts += seen ? 0 : bytes_of(y);
    }
    size_t leaf_grads = now.leaf_bytes - before->leaf_bytes;
    size_t act_grads = now.graph_bytes - before->graph_bytes;
    size_t state = tg_optim_bytes(o);
    size_t other = (before->leaf_bytes - params - inputs) + (before->graph_bytes - acts) +
                   now.checkpoint_bytes;
    size_t total = now.leaf_bytes + now.graph_bytes + now.checkpoint_bytes + state;

    size_t np = 0, out = sizes[n - 1], kept = batch * sizes[0] * es;
    for (int l = 0; l + 1 < n; l++)
        np += sizes[l] * sizes[l + 1] + sizes[l + 1];
    for (int l = 1; l + 1 < n; l++)
        kept += batch * sizes[l] * es;
    kept += batch * out * es + batch * (ce ? sizeof(int32_t) : out * es);
    size_t pmin = np * es * (size_t)(2 + copies), min = pmin + kept;

    printf("memory held per step by the tape and the optimizer:\n");
    mem_line("parameter values", params);
    mem_line("parameter gradients", leaf_grads);
    mem_line("optimizer state", state);
    mem_line("inputs (x, labels or targets)", inputs);
    mem_line("activations (values of recorded nodes)", acts);
    mem_line("activation gradients", act_grads);
    mem_line("other (structs, op scratch, alignment)", other);
    mem_line("total", total);
    mem_line("minimum: parameters x (2 + optimizer copies)", pmin);
    mem_line("minimum: kept for backward", kept);
    mem_line("minimum", min);
    printf("mlp memory_total=%zu memory_minimum=%zu ratio=%.3f\n", total, min,
           (double)total / (double)min);
}
