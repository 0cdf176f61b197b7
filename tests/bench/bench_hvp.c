/* bench_hvp: the cost of a Hessian-vector product against one gradient, on
 * an MLP with softmax cross-entropy (median microseconds over S replays).
 *
 *   bench_hvp [--layers 784,512,512,10] [--batch 128] [--act relu|tanh]
 *             [--dtype f32|f64] [--threads T] [--steps S]
 *
 *   grad       replay + backward: ∂L/∂θ for every parameter
 *   hvp_bwd    g = tg_grad_graph(L, θ) recorded once, s = Σ⟨g, v⟩; each
 *              step replay + backward(s): θ's gradients are H·v
 *   hvp_rec    tg_hvp recorded once (reverse over reverse, both passes as
 *              ops); each step a replay
 *   jvp        tg_jvp of the logits in θ along v (double VJP); a replay
 *
 * Last line: hvp layers=.. batch=.. act=.. dtype=.. threads=.. grad_us=..
 * hvp_bwd_us=.. hvp_rec_us=.. jvp_us=.. (tests/bench/torch_hvp.py times the
 * same HVP with torch.autograd.grad(create_graph=True); compare_hvp.sh runs
 * both alternately). */
#define _POSIX_C_SOURCE 200809L
#include <tapegrad.h>
#include "bench.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LAYERS 8

typedef struct net {
    tg_tape *t;
    tg_tensor *params[2 * MAX_LAYERS], *v[2 * MAX_LAYERS], *logits, *loss;
    int np;
} net;

static void build(net *m, const size_t *sizes, int n, size_t B, bool relu, tg_dtype dt)
{
    tg_rng r;
    tg_rng_seed(&r, 1);
    m->t = tg_tape_new();
    tg_tensor *x = tg_input(m->t, "x", dt, 2, (size_t[]){B, sizes[0]});
    tg_init_normal(x, &r, 0, 1);
    tg_tensor *h = x;
    m->np = 0;
    for (int l = 0; l + 1 < n; l++) {
        tg_tensor *w = tg_param(m->t, "W", dt, 2, (size_t[]){sizes[l], sizes[l + 1]});
        tg_tensor *b = tg_param(m->t, "b", dt, 1, (size_t[]){sizes[l + 1]});
        tg_init_xavier(w, &r);
        tg_init_uniform(b, &r, -0.1, 0.1);
        m->params[m->np++] = w;
        m->params[m->np++] = b;
        h = tg_add_bias(tg_matmul(h, w), b);
        if (l + 2 < n)
            h = relu ? tg_relu(h) : tg_tanh(h);
    }
    m->logits = h;
    tg_tensor *y = tg_input(m->t, "y", TG_I32, 1, (size_t[]){B});
    for (size_t i = 0; i < B; i++)
        tg_set(y, i, (double)tg_rng_below(&r, sizes[n - 1]));
    m->loss = tg_softmax_ce(h, y, TG_MEAN);
    for (int k = 0; k < m->np; k++) {
        tg_tensor *p = m->params[k];
        size_t s[2] = {tg_dim(p, 0), tg_dim(p, 1)};
        m->v[k] = tg_input(m->t, "v", dt, tg_rank(p), s);
        tg_init_normal(m->v[k], &r, 0, 1);
    }
}

/* Median microseconds of `steps` runs of: replay, and backward from root
 * when given. */
static double timed(net *m, tg_tensor *root, long steps)
{
    double *us = malloc((size_t)steps * sizeof *us);
    long warm = steps / 10 > 10 ? steps / 10 : 10;
    for (long s = -warm; s < steps; s++) {
        double t0 = 1e6 * bench_now_s();
        if (tg_replay(m->t) || (root && (tg_zero_grad(m->t), tg_backward(root)))) {
            fprintf(stderr, "bench_hvp: %s\n", tg_tape_error(m->t));
            exit(1);
        }
        if (s >= 0)
            us[s] = 1e6 * bench_now_s() - t0;
    }
    double med = bench_median(us, (size_t)steps);
    free(us);
    return med;
}

int main(int argc, char **argv)
{
    const char *layers_s = "784,512,512,10", *act = "relu", *dts = "f32";
    long batch = 128, threads = 1, steps = 50;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--layers"))
            layers_s = v;
        else if (!strcmp(k, "--batch"))
            batch = strtol(v, NULL, 10);
        else if (!strcmp(k, "--act"))
            act = v;
        else if (!strcmp(k, "--dtype"))
            dts = v;
        else if (!strcmp(k, "--threads"))
            threads = strtol(v, NULL, 10);
        else if (!strcmp(k, "--steps"))
            steps = strtol(v, NULL, 10);
        else
            argc = -1;
    }
    bool relu = !strcmp(act, "relu");
    tg_dtype dt = !strcmp(dts, "f64") ? TG_F64 : TG_F32;
    size_t sizes[MAX_LAYERS + 1];
    int n = 0;
    for (char *s = (char *)layers_s, *end; *s && n <= MAX_LAYERS; s = *end ? end + 1 : end) {
        long v = strtol(s, &end, 10);
        if (end == s || v < 1)
            argc = -1;
        if (end == s)
            break;
        sizes[n++] = (size_t)v;
    }
    if (argc < 0 || (!relu && strcmp(act, "tanh")) || n < 2 || n > MAX_LAYERS || batch < 1 ||
        threads < 1 || steps < 1) {
        fprintf(stderr, "usage: bench_hvp [--layers 784,512,512,10] [--batch 128] "
                        "[--act relu|tanh] [--dtype f32|f64] [--threads T] [--steps S]\n");
        return 2;
    }
    tg_set_threads((int)threads);
    size_t B = (size_t)batch;

    net a, b, c, d;
    build(&a, sizes, n, B, relu, dt);
    double grad_us = timed(&a, a.loss, steps);

    build(&b, sizes, n, B, relu, dt);
    tg_tensor *g[2 * MAX_LAYERS], *s = NULL;
    if (tg_grad_graph(b.loss, NULL, b.np, b.params, g)) {
        fprintf(stderr, "bench_hvp: %s\n", tg_tape_error(b.t));
        return 1;
    }
    for (int k = 0; k < b.np; k++) {
        tg_tensor *dk = tg_sum(tg_mul(g[k], b.v[k]));
        s = s ? tg_add(s, dk) : dk;
    }
    double hvp_bwd_us = timed(&b, s, steps);

    build(&c, sizes, n, B, relu, dt);
    tg_tensor *hv[2 * MAX_LAYERS];
    if (tg_hvp(c.loss, c.np, c.params, c.v, hv)) {
        fprintf(stderr, "bench_hvp: %s\n", tg_tape_error(c.t));
        return 1;
    }
    double hvp_rec_us = timed(&c, NULL, steps);

    build(&d, sizes, n, B, relu, dt);
    if (!tg_jvp(d.logits, d.np, d.params, d.v)) {
        fprintf(stderr, "bench_hvp: %s\n", tg_tape_error(d.t));
        return 1;
    }
    double jvp_us = timed(&d, NULL, steps);

    /* the two HVPs agree (same values, two evaluation orders) */
    double diff = 0, big = 0;
    for (int k = 0; k < b.np; k++)
        for (size_t i = 0; i < tg_size(hv[k]); i++) {
            double x = tg_grad_get(b.params[k], i), y = tg_get(hv[k], i);
            diff = diff > fabs(x - y) ? diff : fabs(x - y);
            big = big > fabs(x) ? big : fabs(x);
        }
    printf("nodes: gradient tape %zu, HVP tapes %zu (backward) and %zu (recorded), JVP %zu\n",
           tg_tape_nodes(a.t), tg_tape_nodes(b.t), tg_tape_nodes(c.t), tg_tape_nodes(d.t));
    printf("HVP by backward vs recorded: max |diff| %.3g (scale %.3g)\n", diff, big);
    printf("HVP / gradient: %.2f (backward), %.2f (recorded); JVP / gradient %.2f\n",
           hvp_bwd_us / grad_us, hvp_rec_us / grad_us, jvp_us / grad_us);
    printf("hvp layers=%s batch=%ld act=%s dtype=%s threads=%ld grad_us=%.1f hvp_bwd_us=%.1f "
           "hvp_rec_us=%.1f jvp_us=%.1f\n",
           layers_s, batch, act, dts, threads, grad_us, hvp_bwd_us, hvp_rec_us, jvp_us);
    tg_tape_free(a.t);
    tg_tape_free(b.t);
    tg_tape_free(c.t);
    tg_tape_free(d.t);
    return 0;
}
