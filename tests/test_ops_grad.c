/* Every op's backward against fourth-order central finite differences in
 * f64 (relative error <= 1e-7), on several random shapes and draws,
 * including broadcasts with size-1 and rank-0 operands.  Then the f32
 * kernels against the f64 ones on the same values. */
#include "oplist.h"
#include "tapegrad.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAXW 4

typedef struct build_ctx {
    tg_tape *tape;
    tg_dtype dt;
    tg_rng *rng;
    tg_tensor *wrt[MAXW];
    int n_wrt;
} build_ctx;

/* random int in [lo, hi] */
static size_t rnd(build_ctx *c, size_t lo, size_t hi)
{
    return lo + (size_t)tg_rng_below(c->rng, hi - lo + 1);
}

/* a parameter (differentiated) filled uniformly from [lo, hi) */
static tg_tensor *P(build_ctx *c, const char *name, int rank, const size_t *shape, double lo,
                    double hi)
{
    tg_tensor *t = tg_param(c->tape, name, c->dt, rank, shape);
    tg_init_uniform(t, c->rng, lo, hi);
    if (c->n_wrt < MAXW)
        c->wrt[c->n_wrt++] = t;
    return t;
}

/* values in ±[lo, hi): away from 0 by lo (for div, relu's kink) */
static tg_tensor *P_away(build_ctx *c, const char *name, int rank, const size_t *shape,
                         double lo, double hi)
{
    tg_tensor *t = P(c, name, rank, shape, lo, hi);
    for (size_t i = 0; i < tg_size(t); i++)
        if (tg_rng_below(c->rng, 2))
            tg_set(t, i, -tg_get(t, i));
    return t;
}

static tg_tensor *labels(build_ctx *c, size_t n, size_t classes)
{
    tg_tensor *l = tg_input(c->tape, "labels", TG_I32, 1, (size_t[]){n});
    for (size_t i = 0; i < n; i++)
        tg_set(l, i, (double)tg_rng_below(c->rng, classes));
    return l;
}

typedef tg_tensor *(*build_fn)(build_ctx *c, int variant);

/* ---- the cases: each returns an op output; variant picks shapes/options -- */

static tg_tensor *b_matmul(build_ctx *c, int v)
{
    size_t m = rnd(c, 1, 6), k = rnd(c, 1, 6), n = rnd(c, 1, 6);
    bool ta = v & 1, tb = v & 2;
    tg_tensor *a = P(c, "A", 2, ta ? (size_t[]){k, m} : (size_t[]){m, k}, -1, 1);
    tg_tensor *b = P(c, "B", 2, tb ? (size_t[]){n, k} : (size_t[]){k, n}, -1, 1);
    return tg_matmul_t(a, b, ta, tb);
}

static tg_tensor *b_add_bias(build_ctx *c, int v)
{
    size_t n = rnd(c, 1, 6), d = rnd(c, 1, 6);
    tg_tensor *x = P(c, "X", 2, (size_t[]){n, d}, -1, 1);
    tg_tensor *b = v & 1 ? P(c, "b", 2, (size_t[]){1, d}, -1, 1) : P(c, "b", 1, (size_t[]){d}, -1, 1);
    return tg_add_bias(x, b);
}

/* broadcast pairs: (rank a, shape a, rank b, shape b) */
static const struct { int ra; size_t sa[4]; int rb; size_t sb[4]; } pairs[] = {
    {2, {3, 4}, 2, {3, 4}},       {2, {3, 4}, 1, {4}},          {2, {3, 1}, 2, {1, 4}},
    {3, {2, 3, 4}, 2, {3, 1}},    {2, {3, 4}, 0, {0}},          {0, {0}, 2, {2, 3}},
    {1, {1}, 2, {2, 3}},          {4, {2, 1, 4, 1}, 3, {3, 1, 5}}, {1, {5}, 1, {5}},
    {0, {0}, 0, {0}},
};
#define NPAIRS ((int)(sizeof pairs / sizeof pairs[0]))

static tg_tensor *binary(build_ctx *c, int v, tg_tensor *(*op)(tg_tensor *, tg_tensor *),
                         bool divide)
{
    int p = v % NPAIRS;
    tg_tensor *a = P(c, "a", pairs[p].ra, pairs[p].sa, -2, 2);
    tg_tensor *b = divide ? P_away(c, "b", pairs[p].rb, pairs[p].sb, 0.5, 2)
                          : P(c, "b", pairs[p].rb, pairs[p].sb, -2, 2);
    return op(a, b);
}

static tg_tensor *b_add(build_ctx *c, int v) { return binary(c, v, tg_add, false); }
static tg_tensor *b_sub(build_ctx *c, int v) { return binary(c, v, tg_sub, false); }
static tg_tensor *b_mul(build_ctx *c, int v) { return binary(c, v, tg_mul, false); }
static tg_tensor *b_div(build_ctx *c, int v) { return binary(c, v, tg_div, true); }

/* maximum / minimum on the broadcast pairs, with no ties (finite
 * differences are undefined there; ties are tested exactly in test_seq):
 * a on the grid 0.4·k, b on 0.4·k + 0.2, each ±0.05, so |a − b| >= 0.1.
 * The last variant is maximum(x, x): a tie everywhere, dy/2 + dy/2 = dy. */
static tg_tensor *minmax(build_ctx *c, int v, tg_tensor *(*op)(tg_tensor *, tg_tensor *))
{
    if (v == 2 * NPAIRS) {
        tg_tensor *x = P(c, "x", 2, (size_t[]){3, 4}, -2, 2);
        return op(x, x);
    }
    int p = v % NPAIRS;
    tg_tensor *a = P(c, "a", pairs[p].ra, pairs[p].sa, -0.05, 0.05);
    tg_tensor *b = P(c, "b", pairs[p].rb, pairs[p].sb, -0.05, 0.05);
    for (size_t i = 0; i < tg_size(a); i++)
        tg_set(a, i, tg_get(a, i) + 0.4 * ((double)tg_rng_below(c->rng, 11) - 5));
    for (size_t i = 0; i < tg_size(b); i++)
        tg_set(b, i, tg_get(b, i) + 0.4 * ((double)tg_rng_below(c->rng, 11) - 5) + 0.2);
    return v >= NPAIRS ? op(b, a) : op(a, b);
}
static tg_tensor *b_maximum(build_ctx *c, int v) { return minmax(c, v, tg_maximum); }
static tg_tensor *b_minimum(build_ctx *c, int v) { return minmax(c, v, tg_minimum); }

/* max_axis on rank 1..4 (sizes 1..4, so size-1 axes and slices of one),
 * every axis, negative for v & 1, keepdim for v & 2; the values are a
 * permutation of a grid 0.3·k ± 0.05: no ties (the gradient is not
 * differentiable there; ties are tested exactly in test_seq). */
static tg_tensor *b_max_axis(build_ctx *c, int v)
{
    int rank = (v / 4) % 4 + 1;
    size_t s[4];
    for (int i = 0; i < rank; i++)
        s[i] = rnd(c, 1, 4);
    tg_tensor *x = P(c, "x", rank, s, -0.05, 0.05);
    size_t n = tg_size(x);
    for (size_t i = 0; i < n; i++) { /* i -> 0.3·perm(i), perm a random rotation and step */
        size_t k = (i * 7 + (size_t)v) % n;
        tg_set(x, i, tg_get(x, i) + 0.3 * (double)k - 0.15 * (double)n);
    }
    int axis = (int)tg_rng_below(c->rng, (uint64_t)rank);
    return tg_max_axis(x, v & 1 ? axis - rank : axis, v & 2);
}

/* max_mask on max_axis's values (no ties; max_axis's own node is left
 * unused), along axis v mod rank, negative for odd v: its derivative is 0 */
static tg_tensor *b_max_mask(build_ctx *c, int v)
{
    b_max_axis(c, 4 * v);
    tg_tensor *x = c->wrt[c->n_wrt - 1];
    int r = tg_rank(x), axis = v % r;
    return tg_max_mask(x, v & 1 ? axis - r : axis);
}

static tg_tensor *b_mul_self(build_ctx *c, int v)
{
    (void)v;
    tg_tensor *a = P(c, "a", 2, (size_t[]){3, 4}, -2, 2);
    return tg_mul(a, a); /* the same tensor in both slots */
}

/* x of a random shape of rank (v % 4) + 1 */
static tg_tensor *x_any(build_ctx *c, int v, double lo, double hi, bool away)
{
    int rank = v % 4 + 1;
    size_t s[4];
    for (int i = 0; i < rank; i++)
        s[i] = rnd(c, 1, 4);
    return away ? P_away(c, "x", rank, s, lo, hi) : P(c, "x", rank, s, lo, hi);
}

static tg_tensor *b_scale(build_ctx *c, int v) { return tg_scale(x_any(c, v, -2, 2, false), -1.75); }
static tg_tensor *b_neg(build_ctx *c, int v) { return tg_neg(x_any(c, v, -2, 2, false)); }
static tg_tensor *b_sigmoid(build_ctx *c, int v) { return tg_sigmoid(x_any(c, v, -4, 4, false)); }
static tg_tensor *b_relu(build_ctx *c, int v) { return tg_relu(x_any(c, v, 0.1, 2, true)); }
static tg_tensor *b_tanh(build_ctx *c, int v) { return tg_tanh(x_any(c, v, -2, 2, false)); }
static tg_tensor *b_exp(build_ctx *c, int v) { return tg_exp(x_any(c, v, -2, 2, false)); }
static tg_tensor *b_log(build_ctx *c, int v) { return tg_log(x_any(c, v, 0.5, 3, false)); }
static tg_tensor *b_softmax(build_ctx *c, int v) { return tg_softmax(x_any(c, v, -3, 3, false)); }
/* causal: [1,1], [3,3], [2,3,4] (Tq < Tk), [2,2,4,4]; log_softmax (v >= 4)
 * through exp, since its masked outputs are -inf (the visible ones and their
 * gradient are still log_softmax's) */
static tg_tensor *b_softmax_causal(build_ctx *c, int v)
{
    static const size_t s[4][4] = {{1, 1}, {3, 3}, {2, 3, 4}, {2, 2, 4, 4}};
    static const int r[4] = {2, 2, 3, 4};
    tg_tensor *x = P(c, "x", r[v % 4], s[v % 4], -3, 3);
    return v >= 4 ? tg_exp(tg_log_softmax_causal(x)) : tg_softmax_causal(x);
}
static tg_tensor *b_log_softmax(build_ctx *c, int v)
{
    return tg_log_softmax(x_any(c, v, -3, 3, false));
}
static tg_tensor *b_sum(build_ctx *c, int v) { return tg_sum(x_any(c, v, -2, 2, false)); }
static tg_tensor *b_mean(build_ctx *c, int v) { return tg_mean(x_any(c, v, -2, 2, false)); }

static tg_tensor *b_sum_axis(build_ctx *c, int v)
{
    tg_tensor *x = x_any(c, v, -2, 2, false);
    int axis = (int)tg_rng_below(c->rng, (uint64_t)tg_rank(x));
    if (v & 4)
        axis -= tg_rank(x); /* negative axes count from the end */
    return (v & 8) ? tg_mean_axis(x, axis, v & 16) : tg_sum_axis(x, axis, v & 16);
}

static tg_tensor *b_transpose(build_ctx *c, int v)
{
    int rank = 2 + v % 3;
    size_t s[4];
    for (int i = 0; i < rank; i++)
        s[i] = rnd(c, 1, 4);
    return tg_transpose(P(c, "x", rank, s, -2, 2));
}

static tg_tensor *b_reshape(build_ctx *c, int v)
{
    (void)v;
    tg_tensor *x = P(c, "x", 2, (size_t[]){6, 4}, -2, 2);
    return tg_reshape(x, 3, (size_t[]){2, 3, 4});
}

static tg_tensor *b_class_means(build_ctx *c, int v)
{
    size_t n = rnd(c, 1, 9), d = rnd(c, 1, 4);
    int classes = (int)rnd(c, 1, 4) + (v & 1); /* sometimes a class is empty */
    tg_tensor *x = P(c, "X", 2, (size_t[]){n, d}, -2, 2);
    return tg_class_means(x, labels(c, n, (size_t)classes - (v & 1)), classes);
}

static tg_tensor *b_gather_rows(build_ctx *c, int v)
{
    size_t r = rnd(c, 1, 5), k = rnd(c, 1, 8), w = rnd(c, 1, 3);
    tg_tensor *x = v & 1 ? P(c, "X", 3, (size_t[]){r, w, 2}, -2, 2) : P(c, "X", 2, (size_t[]){r, w}, -2, 2);
    return tg_gather_rows(x, labels(c, k, r)); /* repeats are likely */
}

/* scatter_rows: indices of rank 0..3 (v % 4) into 1..4 rows (repeats
 * likely), rows of rank 0..1 (v / 4; rank 1 of size 1..3) */
static tg_tensor *b_scatter_rows(build_ctx *c, int v)
{
    static const struct { int r; size_t s[3]; } sh[4] = {{0, {0}}, {1, {5}}, {2, {2, 3}}, {3, {2, 1, 2}}};
    int ri = sh[v % 4].r;
    size_t rows = rnd(c, 1, 4), s[4];
    for (int i = 0; i < ri; i++)
        s[i] = sh[v % 4].s[i];
    if (v / 4)
        s[ri++] = rnd(c, 1, 3);
    tg_tensor *idx = tg_input(c->tape, "idx", TG_I32, sh[v % 4].r, sh[v % 4].s);
    for (size_t i = 0; i < tg_size(idx); i++)
        tg_set(idx, i, (double)tg_rng_below(c->rng, rows));
    return tg_scatter_rows(P(c, "src", ri, s, -2, 2), idx, rows);
}

static tg_tensor *b_trace(build_ctx *c, int v)
{
    (void)v;
    size_t d = rnd(c, 1, 6);
    return tg_trace(P(c, "X", 2, (size_t[]){d, d}, -2, 2));
}

static const int reductions[] = {TG_SUM, TG_MEAN, TG_BATCH_MEAN};

static tg_tensor *b_mse(build_ctx *c, int v)
{
    size_t n = rnd(c, 1, 5), d = rnd(c, 1, 5);
    tg_tensor *p = P(c, "p", 2, (size_t[]){n, d}, -2, 2);
    tg_tensor *t = P(c, "t", 2, (size_t[]){n, d}, -2, 2);
    return tg_mse(p, t, reductions[v % 3] | (v & 4 ? TG_HALF : 0));
}

static tg_tensor *b_softmax_ce(build_ctx *c, int v)
{
    size_t n = rnd(c, 1, 6), k = rnd(c, 1, 6);
    tg_tensor *z = P(c, "Z", 2, (size_t[]){n, k}, -3, 3);
    return tg_softmax_ce(z, labels(c, n, k), reductions[v % 3]);
}

/* Logits [B,T,V] or [n,V] with labels [B,T] / [n]; v % 5: 0 rank 2 with
 * some rows ignored (-100), 1 rank 3 with some ignored, 2 rank 3 with all
 * but one row ignored, 3 rank 2 ignoring a class (1), 4 rank 3 without
 * ignore_index; v / 5 the reduction. */
static tg_tensor *b_softmax_ce_ignore(build_ctx *c, int v)
{
    int kind = v % 5, rank = kind == 0 || kind == 3 ? 2 : 3;
    size_t s[3] = {rnd(c, 1, 4), rnd(c, 2, 4), rnd(c, 2, 5)};
    if (rank == 2)
        s[1] = s[2];
    tg_tensor *z = P(c, "Z", rank, s, -3, 3);
    tg_tensor *l = tg_input(c->tape, "labels", TG_I32, rank - 1, s);
    size_t rows = tg_size(l), keep = (size_t)tg_rng_below(c->rng, rows);
    int ign = kind == 3 ? 1 : -100;
    for (size_t i = 0; i < rows; i++) {
        bool drop = kind == 2 ? i != keep : kind == 4 ? false : tg_rng_below(c->rng, 3) == 0;
        tg_set(l, i, drop ? ign : (double)tg_rng_below(c->rng, s[rank - 1]));
    }
    if (kind != 2 && kind != 4)
        tg_set(l, keep, 0); /* at least one row kept */
    int red = reductions[(v / 5) % 3];
    return kind == 4 ? tg_softmax_ce(z, l, red) : tg_softmax_ce_ignore(z, l, ign, red);
}

static tg_tensor *b_softmax_ce_onehot(build_ctx *c, int v)
{
    size_t n = rnd(c, 1, 6), k = rnd(c, 1, 6);
    tg_tensor *z = P(c, "Z", 2, (size_t[]){n, k}, -3, 3);
    tg_tensor *t = P(c, "T", 2, (size_t[]){n, k}, 0, 1); /* need not sum to 1 */
    return tg_softmax_ce_onehot(z, t, reductions[v % 3]);
}

static tg_tensor *b_bce(build_ctx *c, int v)
{
    size_t n = rnd(c, 1, 5), d = rnd(c, 1, 4);
    tg_tensor *p = P(c, "p", 2, (size_t[]){n, d}, 0.1, 0.9);
    tg_tensor *t = P(c, "t", 2, (size_t[]){n, d}, 0, 1);
    return tg_bce(p, t, reductions[v % 3]);
}

static tg_tensor *b_bce_logits(build_ctx *c, int v)
{
    size_t n = rnd(c, 1, 5), d = rnd(c, 1, 4);
    tg_tensor *z = P(c, "z", 2, (size_t[]){n, d}, -4, 4);
    tg_tensor *t = P(c, "t", 2, (size_t[]){n, d}, 0, 1);
    return tg_bce_logits(z, t, reductions[v % 3]);
}

static tg_tensor *b_l2(build_ctx *c, int v) { return tg_l2(x_any(c, v, -2, 2, false), 0.37); }

/* max_pool2d, avg_pool2d: per variant a kernel, stride, padding (overlapping,
 * stride > kernel, padding = half the kernel, non-square, k2 s2) on a random
 * input at least the kernel; variants 6.. have kernel = the whole input
 * (global pooling) when the padding allows.  x holds a shuffled ramp 0.05
 * apart: no ties, so the maximum is differentiable. */
enum { K_MAX, K_AVG, K_MAX_SCATTER, K_MAX_GATHER, K_AVG_SCATTER };
static tg_tensor *pool_case(build_ctx *c, int v, int kind)
{
    bool avg = kind == K_AVG || kind == K_AVG_SCATTER;
    static const tg_pool2d_opts os[6] = {
        {{2, 2}, {2, 2}, {0, 0}, false}, {{3, 3}, {1, 1}, {1, 1}, false},
        {{3, 2}, {2, 1}, {1, 1}, true},  {{2, 2}, {3, 3}, {0, 0}, false},
        {{1, 3}, {1, 2}, {0, 1}, true},  {{4, 4}, {2, 2}, {2, 2}, false}};
    tg_pool2d_opts o = os[v % 6];
    size_t h = rnd(c, (size_t)o.kernel[0], 6), w = rnd(c, (size_t)o.kernel[1], 6);
    if (v >= 6 && o.padding[0] == 0 && o.padding[1] == 0)
        o.kernel[0] = (int)h, o.kernel[1] = (int)w, o.stride[0] = o.stride[1] = 0;
    size_t xs[4] = {rnd(c, 1, 2), rnd(c, 1, 3), h, w}, ps[4] = {xs[0], xs[1], 0, 0};
    /* the adjoints: x a constant (read for its maxima or shape), the
     * differentiated input random */
    tg_tensor *x = kind < K_MAX_SCATTER ? P(c, "x", 4, xs, -1, 1)
                                        : tg_input(c->tape, "x", c->dt, 4, xs);
    size_t n = tg_size(x);
    for (size_t i = 0; i < n; i++)
        tg_set(x, i, ((double)i - (double)n / 2) * 0.05);
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)tg_rng_below(c->rng, i);
        double t = tg_get(x, i - 1);
        tg_set(x, i - 1, tg_get(x, j));
        tg_set(x, j, t);
    }
    for (int i = 0; i < 2; i++) {
        int k = o.kernel[i], st = o.stride[i] ? o.stride[i] : k;
        ps[2 + i] = (xs[2 + i] + 2 * (size_t)o.padding[i] - (size_t)k) / (size_t)st + 1;
    }
    switch (kind) {
    case K_MAX_SCATTER:
        return tg_max_pool2d_scatter(P(c, "g", 4, ps, -1, 1), x, &o);
    case K_MAX_GATHER:
        return tg_max_pool2d_gather(P(c, "t", 4, xs, -1, 1), x, &o);
    case K_AVG_SCATTER:
        return tg_avg_pool2d_scatter(P(c, "g", 4, ps, -1, 1), x, &o);
    }
    return avg ? tg_avg_pool2d(x, &o) : tg_max_pool2d(x, &o);
}
static tg_tensor *b_max_pool2d(build_ctx *c, int v) { return pool_case(c, v, K_MAX); }
static tg_tensor *b_avg_pool2d(build_ctx *c, int v) { return pool_case(c, v, K_AVG); }
static tg_tensor *b_max_pool2d_scatter(build_ctx *c, int v) { return pool_case(c, v, K_MAX_SCATTER); }
static tg_tensor *b_max_pool2d_gather(build_ctx *c, int v) { return pool_case(c, v, K_MAX_GATHER); }
static tg_tensor *b_avg_pool2d_scatter(build_ctx *c, int v) { return pool_case(c, v, K_AVG_SCATTER); }

/* leaky_relu with slopes 0.01, 0.2, -0.5, 1.5 (x away from the kink) */
static tg_tensor *b_leaky_relu(build_ctx *c, int v)
{
    static const double slope[4] = {0.01, 0.2, -0.5, 1.5};
    return tg_leaky_relu(x_any(c, v, 0.1, 2, true), slope[v / 2 % 4]);
}

/* the elementwise ops of the sequence models; x away from the kinks (abs at
 * 0, clamp's bounds), positive where the op needs it (sqrt, pow with a
 * non-integer exponent) */
static tg_tensor *b_gelu(build_ctx *c, int v) { return tg_gelu(x_any(c, v, -3, 3, false)); }
static tg_tensor *b_gelu_grad(build_ctx *c, int v)
{
    return tg_gelu_grad(x_any(c, v, -3, 3, false));
}
static tg_tensor *b_silu(build_ctx *c, int v) { return tg_silu(x_any(c, v, -4, 4, false)); }
static tg_tensor *b_softplus(build_ctx *c, int v) { return tg_softplus(x_any(c, v, -4, 4, false)); }
static tg_tensor *b_sqrt(build_ctx *c, int v) { return tg_sqrt(x_any(c, v, 0.2, 3, false)); }
static tg_tensor *b_abs(build_ctx *c, int v) { return tg_abs(x_any(c, v, 0.1, 2, true)); }
/* p = 2, 3, -1 on both signs; 0.5, 1.5, 0 on x > 0 */
static tg_tensor *b_pow(build_ctx *c, int v)
{
    static const double p[6] = {2, 3, -1, 0.5, 1.5, 0};
    int i = v / 2 % 6;
    return tg_pow(x_any(c, v, i < 3 ? 0.3 : 0.2, 2, i < 3), p[i]);
}
/* bounds (-1, 1), (-0.5, 1.5), (-inf, 0.5), (0.3, inf); x moved 0.1 off a bound */
static tg_tensor *b_clamp(build_ctx *c, int v)
{
    static const double b[4][2] = {{-1, 1}, {-0.5, 1.5}, {-INFINITY, 0.5}, {0.3, INFINITY}};
    const double *lh = b[v / 2 % 4];
    tg_tensor *x = x_any(c, v, 0.05, 2, true);
    for (size_t i = 0; i < tg_size(x); i++)
        if (fabs(tg_get(x, i) - lh[0]) < 0.05 || fabs(tg_get(x, i) - lh[1]) < 0.05)
            tg_set(x, i, tg_get(x, i) + 0.1);
    return tg_clamp(x, lh[0], lh[1]);
}
/* step: x away from 0 (the derivative is 0 there; FD agrees) */
static tg_tensor *b_step(build_ctx *c, int v)
{
    return tg_step(x_any(c, v, 0.1, 2, true), v & 1 ? 0.5 : 0);
}
/* one_hot: no float input, so nothing to differentiate; main checks that
 * its backward runs and gives no gradient (ignore index for odd v) */
static tg_tensor *b_one_hot(build_ctx *c, int v)
{
    tg_tensor *l = labels(c, 1 + v, 3);
    if (v & 1)
        tg_set(l, 0, -1);
    return v & 1 ? tg_one_hot_ignore(l, 3, -1, c->dt) : tg_one_hot(l, 3, c->dt);
}
static tg_tensor *b_add_scalar(build_ctx *c, int v)
{
    return tg_add_scalar(x_any(c, v, -2, 2, false), v & 1 ? -3 : 0.5);
}

/* batch_norm: rank 4 (also N = 1, C = 1, H = W = 1, a tail after runs of
 * 8) and rank 2; variants 7.. in evaluation mode (the running statistics) */
static tg_tensor *b_batch_norm(build_ctx *c, int v)
{
    static const size_t shapes[7][4] = {{3, 2, 2, 3}, {1, 3, 2, 2}, {4, 1, 3, 1}, {5, 2, 1, 1},
                                        {2, 2, 1, 9}, {4, 3, 0, 0}, {3, 1, 0, 0}};
    const size_t *s = shapes[v % 7];
    size_t C = s[1];
    if (v >= 7)
        tg_set_training(c->tape, false);
    tg_tensor *x = P(c, "x", s[2] ? 4 : 2, s, -2, 2);
    tg_tensor *g = P(c, "gamma", 1, &C, 0.5, 2);
    tg_tensor *b = P(c, "beta", 1, &C, -1, 1);
    tg_tensor *rm = tg_input(c->tape, "running_mean", c->dt, 1, &C);
    tg_tensor *rv = tg_input(c->tape, "running_var", c->dt, 1, &C);
    tg_init_uniform(rm, c->rng, -0.5, 0.5);
    tg_init_uniform(rv, c->rng, 0.5, 2);
    return tg_batch_norm(x, g, b, rm, rv, 0.1, 1e-5);
}

/* dropout in training mode (the f64 copy of tg_check_fd keeps its mask) with
 * p = 0.5, 0.2, 0.9; variants 12.. in evaluation mode (the identity) */
static tg_tensor *b_dropout(build_ctx *c, int v)
{
    static const double ps[4] = {0.5, 0.2, 0.9, 0.5};
    if (v >= 12)
        tg_set_training(c->tape, false);
    return tg_dropout(x_any(c, v, -2, 2, false), ps[(v / 4) % 4]);
}
/* dropout_apply(t, dropout(t)): the mask of the dropout node; p as dropout,
 * variants 6.. in evaluation mode */
static tg_tensor *b_dropout_apply(build_ctx *c, int v)
{
    static const double ps[3] = {0.5, 0.2, 0.9};
    if (v >= 6)
        tg_set_training(c->tape, false);
    tg_tensor *t = x_any(c, v, -2, 2, false);
    return tg_dropout_apply(t, tg_dropout(t, ps[(v / 2) % 3]));
}

/* conv2d: per variant a kernel, stride, padding, dilation and groups
 * (0 means 1) and whether there is a bias; channels are multiples of the
 * groups, the input a random size at least the dilated kernel (minus the
 * padding), so the padding and stride edges vary too.  Variant 4 is
 * depthwise, 5 a 1×1 kernel, 6 a kernel as large as the padded input. */
enum { K_CONV, K_INPUT_GRAD, K_WEIGHT_GRAD };
static tg_tensor *conv_case(build_ctx *c, int v, int kind)
{
    static const struct { size_t kh, kw; tg_conv2d_opts o; bool bias; } k[8] = {
        {3, 3, {{1, 1}, {0, 0}, {1, 1}, 1}, true},  {3, 2, {{2, 1}, {1, 0}, {0, 0}, 0}, false},
        {2, 2, {{1, 1}, {2, 1}, {2, 1}, 1}, true},  {3, 3, {{1, 2}, {1, 1}, {1, 1}, 2}, true},
        {3, 3, {{2, 2}, {1, 1}, {1, 1}, -1}, true}, {1, 1, {{1, 1}, {0, 0}, {1, 1}, 1}, false},
        {4, 3, {{1, 1}, {1, 0}, {1, 1}, 1}, true},  {2, 3, {{3, 2}, {2, 2}, {2, 2}, 1}, false},
    };
    int i = v % 8;
    tg_conv2d_opts o = k[i].o;
    size_t g = o.groups > 0 ? (size_t)o.groups : 1, C = rnd(c, 1, 2) * g, O = rnd(c, 1, 2) * g;
    if (o.groups < 0) /* depthwise */
        g = C = rnd(c, 1, 3), O = C, o.groups = (int)C;
    size_t sz[2];
    for (int a = 0; a < 2; a++) {
        size_t kk = a ? k[i].kw : k[i].kh, d = o.dilation[a] ? (size_t)o.dilation[a] : 1;
        size_t ext = d * (kk - 1) + 1, pad = 2 * (size_t)o.padding[a];
        size_t least = ext > pad ? ext - pad : 1;
        sz[a] = i == 6 ? least : least + rnd(c, 0, 3);
    }
    size_t xs[4] = {rnd(c, 1, 2), C, sz[0], sz[1]}, ws[4] = {O, C / g, k[i].kh, k[i].kw};
    if (kind != K_CONV) { /* the gradient ops: g random of the output's shape */
        size_t ys[4] = {xs[0], O, 0, 0};
        for (int a = 0; a < 2; a++) {
            size_t d = o.dilation[a] ? (size_t)o.dilation[a] : 1;
            size_t st = o.stride[a] ? (size_t)o.stride[a] : 1;
            ys[2 + a] = (xs[2 + a] + 2 * (size_t)o.padding[a] - d * (ws[2 + a] - 1) - 1) / st + 1;
        }
        tg_tensor *gy = P(c, "g", 4, ys, -1, 1);
        if (kind == K_INPUT_GRAD) /* x: its shape only */
            return tg_conv2d_input_grad(gy, P(c, "w", 4, ws, -1, 1),
                                        tg_input(c->tape, "x", c->dt, 4, xs), &o);
        return tg_conv2d_weight_grad(P(c, "x", 4, xs, -1, 1), gy,
                                     tg_input(c->tape, "w", c->dt, 4, ws), &o);
    }
    tg_tensor *x = P(c, "x", 4, xs, -1, 1);
    tg_tensor *w = P(c, "w", 4, ws, -1, 1);
    tg_tensor *b = k[i].bias ? P(c, "b", 1, &O, -1, 1) : NULL;
    return tg_conv2d(x, w, b, &o);
}
static tg_tensor *b_conv2d(build_ctx *c, int v) { return conv_case(c, v, K_CONV); }
static tg_tensor *b_conv2d_input_grad(build_ctx *c, int v) { return conv_case(c, v, K_INPUT_GRAD); }
static tg_tensor *b_conv2d_weight_grad(build_ctx *c, int v) { return conv_case(c, v, K_WEIGHT_GRAD); }

/* bmm: batch layouts (batch axes of a, of b; 0 ends the list) with random
 * m, k, n in 1..4; variant % 4 picks the transposes.  Rank 3 and 4, size-1
 * axes broadcast against larger ones, a rank-2 operand, and (layout 7) the
 * same tensor in both slots: a·aᵀ or aᵀ·a. */
static tg_tensor *b_bmm(build_ctx *c, int v)
{
    static const size_t lay[8][2][3] = {
        {{2, 0}, {2, 0}},       {{3, 0}, {0}},       {{0}, {2, 0}},    {{2, 1, 0}, {1, 3, 0}},
        {{1, 0}, {2, 3, 0}},    {{2, 3, 0}, {3, 0}}, {{1, 0}, {1, 0}}, {{2, 0}, {0}},
    };
    const size_t(*l)[3] = lay[v / 4 % 8];
    bool ta = v & 1, tb = v & 2;
    size_t m = rnd(c, 1, 4), k = rnd(c, 1, 4), n = rnd(c, 1, 4), sa[4], sb[4];
    int ra = 0, rb = 0;
    for (; l[0][ra]; ra++)
        sa[ra] = l[0][ra];
    for (; l[1][rb]; rb++)
        sb[rb] = l[1][rb];
    sa[ra] = ta ? k : m, sa[ra + 1] = ta ? m : k;
    sb[rb] = tb ? n : k, sb[rb + 1] = tb ? k : n;
    tg_tensor *a = P(c, "A", ra + 2, sa, -1, 1);
    if (v / 4 % 8 == 7)
        return tg_bmm(a, a, ta, !ta);
    return tg_bmm(a, P(c, "B", rb + 2, sb, -1, 1), ta, tb);
}

/* layer_norm: variant % 4 with γ and β, γ only, β only, neither; variant / 4
 * the shape: rank 1, 2, 3, D = 1 (x̂ = 0), D = 70 (two column blocks of dγ);
 * variant 20: γ and β one tensor */
static tg_tensor *b_layer_norm(build_ctx *c, int v)
{
    static const struct { int r; size_t s[3]; } sh[5] = {
        {1, {5}}, {2, {3, 4}}, {3, {2, 3, 4}}, {2, {3, 1}}, {2, {2, 70}},
    };
    int i = v / 4 % 5;
    if (v == 20) {
        tg_tensor *x = P(c, "x", 2, (size_t[]){3, 4}, -2, 2);
        tg_tensor *gb = P(c, "gb", 1, (size_t[]){4}, 0.5, 2);
        return tg_layer_norm(x, gb, gb, 1e-5);
    }
    size_t D = sh[i].s[sh[i].r - 1];
    tg_tensor *x = P(c, "x", sh[i].r, sh[i].s, -2, 2);
    tg_tensor *g = v % 4 < 2 ? P(c, "gamma", 1, &D, 0.5, 2) : NULL;
    tg_tensor *b = v % 4 == 0 || v % 4 == 2 ? P(c, "beta", 1, &D, -1, 1) : NULL;
    return tg_layer_norm(x, g, b, 1e-5);
}

/* embedding: indices of rank 0..3 (variant % 4) into V <= 4 rows, so
 * repeated rows are likely; D 1..3 */
static tg_tensor *b_embedding(build_ctx *c, int v)
{
    static const struct { int r; size_t s[3]; } sh[4] = {{0, {0}}, {1, {6}}, {2, {2, 3}}, {3, {2, 2, 2}}};
    size_t V = rnd(c, 1, 4), D = rnd(c, 1, 3);
    tg_tensor *w = P(c, "W", 2, (size_t[]){V, D}, -2, 2);
    tg_tensor *idx = tg_input(c->tape, "idx", TG_I32, sh[v % 4].r, sh[v % 4].s);
    for (size_t i = 0; i < tg_size(idx); i++)
        tg_set(idx, i, (double)tg_rng_below(c->rng, V));
    return tg_embedding(w, idx);
}

/* random sizes 1..hi for rank axes */
static void dims(build_ctx *c, int rank, size_t *s, size_t hi)
{
    for (int i = 0; i < rank; i++)
        s[i] = rnd(c, 1, hi);
}

/* permute: variants 0-5 every permutation of rank 3, 6-7 the heads case
 * [B,T,H,D] -> [B,H,T,D], 8 a rank-4 permutation moving the last axis,
 * 9 rank 1, 10 rank 2; 11 the input also behind another permute (its
 * gradient then accumulates: acc = 1). */
static tg_tensor *b_permute(build_ctx *c, int v)
{
    static const int p3[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    size_t s[4];
    if (v < 6 || v == 11) {
        dims(c, 3, s, 4);
        if (v == 11)
            s[1] = s[2] = s[0];
        tg_tensor *x = P(c, "x", 3, s, -2, 2);
        if (v == 11)
            x = tg_add(x, tg_permute(x, (int[]){2, 0, 1}));
        return tg_permute(x, p3[v % 6]);
    }
    if (v < 9) {
        dims(c, 4, s, 3);
        return tg_permute(P(c, "x", 4, s, -2, 2), v == 8 ? (int[]){3, 1, 0, 2} : (int[]){0, 2, 1, 3});
    }
    int rank = v == 9 ? 1 : 2;
    dims(c, rank, s, 5);
    return tg_permute(P(c, "x", rank, s, -2, 2), v == 9 ? (int[]){0} : (int[]){1, 0});
}

/* slice: rank 1..4, the window at the start (v % 3 == 0), at the end (1)
 * or anywhere (2), negative axes for v & 4; 12-13 two windows of x added
 * before the sliced result (x's gradient accumulates, zeros outside). */
static tg_tensor *b_slice(build_ctx *c, int v)
{
    int rank = v % 4 + 1;
    size_t s[4];
    dims(c, rank, s, 4);
    int axis = (int)tg_rng_below(c->rng, (uint64_t)rank);
    size_t d = s[axis] = rnd(c, 1, 5), len = rnd(c, 1, d);
    size_t start = v % 3 == 0 ? 0 : v % 3 == 1 ? d - len : rnd(c, 0, d - len);
    tg_tensor *x = P(c, "x", rank, s, -2, 2);
    if (v >= 12) {
        size_t other = rnd(c, 0, d - len);
        x = tg_add(tg_slice(x, axis, start, len), tg_slice(x, axis, other, len));
        start = 0;
    }
    return tg_slice(x, (v & 4) ? axis - rank : axis, start, len);
}

/* concat of n = 1..7 inputs (above 5: a tree of nodes), rank 1..4, sizes
 * 1..3 off the axis and along it; inputs 4.. repeat inputs 0.. (the same
 * tensor in two slots, and only four are differentiated); a negative axis
 * for odd v. */
static tg_tensor *b_concat(build_ctx *c, int v)
{
    int n = 1 + v % 7, rank = 1 + (v / 3) % 4;
    size_t s[4];
    dims(c, rank, s, 3);
    int axis = (int)tg_rng_below(c->rng, (uint64_t)rank);
    tg_tensor *xs[7];
    for (int i = 0; i < n; i++) {
        s[axis] = rnd(c, 1, 3);
        xs[i] = i < 4 ? P(c, "x", rank, s, -2, 2) : xs[i - 4];
    }
    return tg_concat(n, xs, (v & 1) ? axis - rank : axis);
}

/* stack of n = 2..7 inputs of one shape of rank 0..3, at every new axis
 * (negative for v & 1); inputs 4.. repeat inputs 0.. */
static tg_tensor *b_stack(build_ctx *c, int v)
{
    int n = 2 + v % 6, rank = v % 4;
    size_t s[4];
    dims(c, rank, s, 3);
    int axis = (int)tg_rng_below(c->rng, (uint64_t)rank + 1);
    tg_tensor *xs[7];
    for (int i = 0; i < n; i++)
        xs[i] = i < 4 ? P(c, "x", rank, s, -2, 2) : xs[i - 4];
    return tg_stack(n, xs, (v & 1) ? axis - rank - 1 : axis);
}

static const struct {
    const char *name;
    build_fn fn;
    int variants;
} cases[] = {
    {"matmul", b_matmul, 12},        {"add_bias", b_add_bias, 6},
    {"add", b_add, 2 * NPAIRS},      {"sub", b_sub, NPAIRS},
    {"mul", b_mul, 2 * NPAIRS},      {"div", b_div, 2 * NPAIRS},
    {"mul(x,x)", b_mul_self, 2},     {"scale", b_scale, 4},
    {"maximum", b_maximum, 2 * NPAIRS + 1}, {"minimum", b_minimum, 2 * NPAIRS + 1},
    {"max_axis", b_max_axis, 16},
    {"neg", b_neg, 4},               {"sigmoid", b_sigmoid, 8},
    {"relu", b_relu, 8},             {"tanh", b_tanh, 8},
    {"exp", b_exp, 8},               {"log", b_log, 8},
    {"softmax", b_softmax, 8},       {"log_softmax", b_log_softmax, 8},
    {"softmax/log_softmax causal", b_softmax_causal, 8},
    {"sum", b_sum, 4},               {"mean", b_mean, 4},
    {"sum/mean_axis", b_sum_axis, 32}, {"transpose", b_transpose, 6},
    {"reshape", b_reshape, 2},       {"class_means", b_class_means, 8},
    {"gather_rows", b_gather_rows, 6}, {"trace", b_trace, 4},
    {"scatter_rows", b_scatter_rows, 8}, {"max_mask", b_max_mask, 8},
    {"gelu_grad", b_gelu_grad, 4},
    {"mse", b_mse, 12},              {"softmax_ce", b_softmax_ce, 9},
    {"softmax_ce_onehot", b_softmax_ce_onehot, 9}, {"bce", b_bce, 6},
    {"softmax_ce rank 3 / ignore_index", b_softmax_ce_ignore, 15},
    {"bce_logits", b_bce_logits, 6}, {"l2", b_l2, 4},
    {"max_pool2d", b_max_pool2d, 12}, {"avg_pool2d", b_avg_pool2d, 12},
    {"max_pool2d_scatter", b_max_pool2d_scatter, 12},
    {"max_pool2d_gather", b_max_pool2d_gather, 12},
    {"avg_pool2d_scatter", b_avg_pool2d_scatter, 12},
    {"leaky_relu", b_leaky_relu, 8},
    {"conv2d", b_conv2d, 16},
    {"conv2d_input_grad", b_conv2d_input_grad, 16},
    {"conv2d_weight_grad", b_conv2d_weight_grad, 16},
    {"batch_norm", b_batch_norm, 14}, {"dropout", b_dropout, 16},
    {"dropout_apply", b_dropout_apply, 8},
    {"gelu", b_gelu, 4},             {"silu", b_silu, 4},
    {"softplus", b_softplus, 4},     {"sqrt", b_sqrt, 4},
    {"abs", b_abs, 4},               {"pow", b_pow, 12},
    {"clamp", b_clamp, 8},           {"add_scalar", b_add_scalar, 4},
    {"step", b_step, 8},             {"one_hot", b_one_hot, 4},
    {"bmm", b_bmm, 32},              {"layer_norm", b_layer_norm, 21},
    {"embedding", b_embedding, 8},
    {"permute", b_permute, 12},      {"slice", b_slice, 14},
    {"concat", b_concat, 14},        {"stack (reshape + concat)", b_stack, 8},
};

/* ---- second order: the recorded backward (vjp rules) ------------------- */

static bool dot_covered[TG_OP_COUNT], hvp_covered[TG_OP_COUNT];
/* per op: a case whose recorded backward could not be differentiated again
 * (the op or a helper op it records has no vjp), or whose H·v is zero */
static bool first_order[TG_OP_COUNT], zero_hvp[TG_OP_COUNT];
static tg_op_id so_op; /* the op of the case second_order is checking */

static tg_tensor *random_like(build_ctx *c, tg_tensor *t, const char *name)
{
    size_t s[4];
    for (int i = 0; i < tg_rank(t); i++)
        s[i] = tg_dim(t, i);
    tg_tensor *r = tg_const(c->tape, name, TG_F64, tg_rank(t), s);
    tg_init_uniform(r, c->rng, -1, 1);
    return r;
}

static double dot(tg_tensor *a, tg_tensor *b, bool grad_of_b)
{
    double d = 0;
    for (size_t i = 0; i < tg_size(a); i++)
        d += tg_get(a, i) * (grad_of_b ? tg_grad_get(b, i) : tg_get(b, i));
    return d;
}

/* On the f64 case (out, its loss, c->wrt): (1) the dot-product test
 * ⟨J·u, w⟩ = ⟨u, Jᵀ·w⟩, J·u from the recorded VJP differentiated again
 * (tg_jvp), Jᵀ·w from the op's own backward; (2) the recorded gradient of
 * the loss equals backward's; (3) where the recorded gradient can be
 * differentiated again, ⟨∂loss/∂x, v⟩'s gradient (H·v) against finite
 * differences.  *why: what failed.  Returns the worst figures. */
static bool second_order(build_ctx *c, tg_tensor *out, tg_tensor *loss, double *dot_rel,
                         double *grad_rel, double *hvp_rel, bool *hvp_done, char *why, size_t len)
{
    tg_tensor *u[MAXW], *g[MAXW];
    int n = c->n_wrt;
    for (int k = 0; k < n; k++)
        u[k] = random_like(c, c->wrt[k], "u");
    tg_tensor *w = random_like(c, out, "w");
    tg_tensor *ju = tg_jvp(out, n, c->wrt, u);
    if (!ju) {
        snprintf(why, len, "jvp: %s", tg_tape_error(c->tape));
        return false;
    }
    tg_zero_grad(c->tape);
    if (tg_forward(ju) || tg_backward_vjp(out, tg_data(w))) {
        snprintf(why, len, "replay/backward: %s", tg_tape_error(c->tape));
        return false;
    }
    double lhs = dot(ju, w, false), rhs = 0, scale = 0;
    for (int k = 0; k < n; k++) {
        rhs += dot(u[k], c->wrt[k], true);
        for (size_t i = 0; i < tg_size(u[k]); i++)
            scale += fabs(tg_get(u[k], i) * tg_grad_get(c->wrt[k], i));
    }
    *dot_rel = fabs(lhs - rhs) / fmax(scale, 1e-300);
    if (*dot_rel > 1e-13) {
        snprintf(why, len, "<Ju,w> = %.17g but <u,J^T w> = %.17g (rel %.2g)", lhs, rhs, *dot_rel);
        return false;
    }
    /* (2) recorded gradient of the loss = backward's */
    if (tg_grad_graph(loss, NULL, n, c->wrt, g)) {
        snprintf(why, len, "grad_graph: %s", tg_tape_error(c->tape));
        return false;
    }
    tg_tensor *last = NULL;
    for (int k = 0; k < n; k++)
        if (tg_node_index(g[k]) > tg_node_index(last))
            last = g[k];
    tg_zero_grad(c->tape);
    if ((last && tg_forward(last)) || tg_backward(loss)) {
        snprintf(why, len, "replay: %s", tg_tape_error(c->tape));
        return false;
    }
    *grad_rel = 0;
    for (int k = 0; k < n; k++)
        for (size_t i = 0; i < tg_size(g[k]); i++) {
            double a = tg_get(g[k], i), b = tg_grad_get(c->wrt[k], i);
            *grad_rel = fmax(*grad_rel, fabs(a - b) / fmax(fmax(fabs(a), fabs(b)), 1e-3));
        }
    if (*grad_rel > 1e-12) {
        snprintf(why, len, "recorded gradient differs from backward's (rel %.2g)", *grad_rel);
        return false;
    }
    /* (3) H·v by finite differences of ⟨gradient, v⟩ */
    tg_tensor *s = NULL;
    for (int k = 0; k < n; k++) {
        tg_tensor *d = tg_sum(tg_mul(g[k], random_like(c, c->wrt[k], "v")));
        s = s ? tg_add(s, d) : d;
    }
    tg_tensor *probe[MAXW];
    *hvp_done = false;
    if (tg_grad_graph(s, NULL, n, c->wrt, probe)) { /* not twice differentiable: said by name */
        bool named = strstr(tg_tape_error(c->tape), "has no recorded backward") != NULL;
        if (named && so_op < TG_OP_COUNT)
            first_order[so_op] = true;
        return named || (snprintf(why, len, "second grad_graph: %s", tg_tape_error(c->tape)), false);
    }
    /* each input on its own: H·v may not depend on some (a bias) */
    *hvp_rel = 0;
    for (int k = 0; k < n; k++) {
        tg_check chk;
        if (tg_check_fd(s, 1, &c->wrt[k], 0, &chk)) {
            if (strstr(tg_tape_error(c->tape), "does not reach"))
                continue; /* ⟨∇L, v⟩ does not depend on this input */
            snprintf(why, len, "check_fd(H v): %s", tg_tape_error(c->tape));
            return false;
        }
        *hvp_rel = fmax(*hvp_rel, chk.max_rel);
        *hvp_done = true;
    }
    if (!*hvp_done && so_op < TG_OP_COUNT)
        zero_hvp[so_op] = true;
    if (*hvp_rel > 1e-6) {
        snprintf(why, len, "H v vs finite differences: rel %.2g", *hvp_rel);
        return false;
    }
    return true;
}

/* loss = Σ out ⊙ R with a random R, so every output element gets its own
 * seed gradient (a plain sum would hide errors that cancel). */
static tg_tensor *weighted(build_ctx *c, tg_tensor *out)
{
    if (!out)
        return NULL;
    size_t s[4];
    for (int i = 0; i < tg_rank(out); i++)
        s[i] = tg_dim(out, i);
    tg_tensor *r = tg_const(c->tape, "R", c->dt, tg_rank(out), s);
    tg_init_uniform(r, c->rng, -1, 1);
    return tg_sum(tg_mul(out, r));
}

static int so_nofirst[64];

int main(void)
{
    const char *want = getenv("TAPEGRAD_ISA");
    if (want && tg_isa_supported(want))
        is_str(tg_isa(), want, "TAPEGRAD_ISA=%s selects that kernel path", want);
    else
        diag("kernel path: %s", tg_isa());
    int ncases = (int)(sizeof cases / sizeof cases[0]);
    for (int k = 0; k < ncases; k++) {
        double worst_fd = 0, worst_f32 = 0, worst_dot = 0, worst_gg = 0, worst_hvp = 0;
        bool fine = true, so_fine = true;
        for (int v = 0; v < cases[k].variants; v++) {
            uint64_t seed = 1000u * (uint64_t)k + (uint64_t)v;
            /* f64: tape vs finite differences */
            tg_rng rng;
            tg_rng_seed(&rng, seed);
            build_ctx c64 = {tg_tape_new(), TG_F64, &rng, {0}, 0};
            tg_tensor *out = cases[k].fn(&c64, v);
            tg_tensor *loss = weighted(&c64, out);
            tg_check chk;
            if (loss && c64.n_wrt == 0) { /* no float input (one_hot): no gradient */
                tg_tensor *gg;
                bool none = !tg_backward(loss) && !tg_grad_graph(loss, NULL, 1, &out, &gg);
                if (none) {
                    op_cover(out);
                    tg_op_id id = tg_op_find(tg_op_name(out));
                    if (id < TG_OP_COUNT)
                        dot_covered[id] = true; /* nothing to transpose */
                } else {
                    diag("%s variant %d: %s", cases[k].name, v, tg_tape_error(c64.tape));
                    fine = false;
                }
                tg_tape_free(c64.tape);
                continue;
            }
            if (!loss || tg_check_fd(loss, c64.n_wrt, c64.wrt, 0, &chk)) {
                ok(0, "%s variant %d builds and checks: %s", cases[k].name, v,
                   tg_tape_error(c64.tape));
                fine = false;
                tg_tape_free(c64.tape);
                continue;
            }
            if (chk.max_rel > 1e-7) {
                tg_check_print(stdout, cases[k].name, &chk);
                fine = false;
            } else {
                op_cover(out); /* the op this case checked, by finite differences in f64 */
            }
            worst_fd = fmax(worst_fd, chk.max_rel);
            {
                double dr = 0, gr = 0, hr = 0;
                bool hd = false;
                char why[600] = "";
                so_op = tg_op_find(tg_op_name(out));
                bool good = second_order(&c64, out, loss, &dr, &gr, &hr, &hd, why, sizeof why);
                tg_zero_grad(c64.tape); /* the f32 comparison below starts from none */
                if (!good) {
                    if (!strstr(why, "has no recorded backward") || so_nofirst[k]++ == 0)
                        diag("%s variant %d: %s", cases[k].name, v, why);
                    so_fine = false;
                } else {
                    tg_op_id id = tg_op_find(tg_op_name(out));
                    if (id < TG_OP_COUNT) {
                        dot_covered[id] = true;
                        hvp_covered[id] |= hd;
                    }
                }
                worst_dot = fmax(worst_dot, dr);
                worst_gg = fmax(worst_gg, gr);
                worst_hvp = fmax(worst_hvp, hr);
            }

            /* f32: the same graph on the same (rounded) values vs f64 */
            tg_rng_seed(&rng, seed);
            build_ctx c32 = {tg_tape_new(), TG_F32, &rng, {0}, 0};
            tg_tensor *loss32 = weighted(&c32, cases[k].fn(&c32, v));
            for (size_t i = 0; i < tg_tape_leaves(c32.tape); i++) {
                tg_tensor *l32 = tg_tape_leaf(c32.tape, i), *l64 = tg_tape_leaf(c64.tape, i);
                double *tmp = malloc(tg_size(l32) * sizeof *tmp);
                tg_copy_out(l32, tmp, TG_F64, tg_size(l32));
                tg_copy_in(l64, tmp, TG_F64, tg_size(l64));
                free(tmp);
            }
            /* replayed on the copied values, both with one seed: random ops
             * (dropout) draw the same mask on both tapes */
            tg_tape_seed(c64.tape, seed);
            tg_tape_seed(c32.tape, seed);
            tg_forward(loss);
            tg_forward(loss32);
            tg_backward(loss);
            tg_backward(loss32);
            for (int w = 0; w < c32.n_wrt; w++) {
                double *g64 = malloc(tg_size(c64.wrt[w]) * sizeof *g64);
                tg_grad_out(c64.wrt[w], g64, TG_F64, tg_size(c64.wrt[w]));
                tg_check_grad(c32.wrt[w], g64, TG_F64, &chk);
                /* normwise: error relative to the gradient's scale */
                double e = chk.max_abs / fmax(1.0, chk.max_ref);
                if (e > 2e-5) {
                    tg_check_print(stdout, "f32 vs f64", &chk);
                    fine = false;
                }
                worst_f32 = fmax(worst_f32, e);
                free(g64);
            }
            near(tg_item(loss32), tg_item(loss), 1e-5, "%s variant %d: f32 loss = f64 loss",
                 cases[k].name, v);
            tg_tape_free(c32.tape);
            tg_tape_free(c64.tape);
        }
        ok(fine, "%s backward: %d draws, max rel err vs FD %.2g (<= 1e-7), f32 vs f64 %.2g",
           cases[k].name, cases[k].variants, worst_fd, worst_f32);
        ok(so_fine, "%s recorded backward: <Ju,w> = <u,J^T w> to %.2g (<= 1e-13), recorded = "
           "backward's gradient to %.2g, H v vs FD %.2g (<= 1e-6)", cases[k].name, worst_dot,
           worst_gg, worst_hvp);
    }
    ops_all_covered("an f64 finite-difference gradient case");
    memcpy(op_covered, dot_covered, sizeof op_covered);
    ops_all_covered("a dot-product test <J u, w> = <u, J^T w> (JVP of its recorded backward "
                    "against its backward)");
    /* what the differences could not check: said, not failed */
    for (int i = 0; i < TG_OP_COUNT; i++)
        if (dot_covered[i] && !hvp_covered[i])
            diag("%s: H v not compared with differences: %s", tg_ops[i]->name,
                 first_order[i] ? "its recorded backward is first order (a helper op without "
                                  "a vjp rule)"
                 : zero_hvp[i] ? "zero in every case (linear in its differentiated inputs)"
                               : "no case reached it");
    return tap_done();
}
