/* bmm, layer_norm, embedding beyond the per-op suites: forward and
 * gradients bit for bit the same with 1 and 2 threads (sizes large enough
 * that the batches, rows and column blocks are split over the pool), f32 and
 * f64; embedding's backward uses the indices of its last forward; the DOT
 * attributes; the recorded gradients (tg_grad_graph) of gather_rows,
 * embedding and class_means read the indices at replay, max_axis's takes
 * ties as backward, and gelu's derivatives to the third order. */
#include "tap.h"
#include "tapegrad.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NP 7

/* Build the graph, run backward, and copy the outputs and the gradients of
 * the parameters into out (doubles); returns the count, 0 on failure. */
static size_t run(int threads, tg_dtype dt, double *out)
{
    tg_set_threads(threads);
    tg_tape *T = tg_tape_new();
    tg_rng rng;
    tg_rng_seed(&rng, 7);
    tg_tensor *a = tg_param(T, "a", dt, 4, SHAPE(2, 4, 48, 40));
    tg_tensor *b = tg_param(T, "b", dt, 3, SHAPE(4, 48, 40));
    tg_tensor *w = tg_param(T, "w", dt, 2, SHAPE(40, 40));
    tg_tensor *x = tg_param(T, "x", dt, 3, SHAPE(4, 300, 200));
    tg_tensor *g = tg_param(T, "g", dt, 1, SHAPE(200));
    tg_tensor *be = tg_param(T, "be", dt, 1, SHAPE(200));
    tg_tensor *E = tg_param(T, "E", dt, 2, SHAPE(50, 64));
    tg_tensor *idx = tg_input(T, "i", TG_I32, 2, SHAPE(30, 40));
    tg_tensor *ps[NP] = {a, b, w, x, g, be, E};
    for (int i = 0; i < NP; i++)
        tg_init_uniform(ps[i], &rng, -1, 1);
    for (size_t i = 0; i < 1200; i++)
        tg_set(idx, i, (double)((i * 7919) % 50));
    tg_tensor *c = tg_bmm(a, b, false, true);  /* [2,4,48,48], b broadcast over axis 0 */
    tg_tensor *c3 = tg_bmm(a, w, false, true); /* [2,4,48,40], w over every batch */
    tg_tensor *y = tg_layer_norm(x, g, be, 1e-5);
    tg_tensor *e = tg_embedding(E, idx);
    tg_tensor *loss = tg_add(tg_add(tg_sum(tg_mul(c, c)), tg_sum(tg_mul(c3, c3))),
                             tg_add(tg_sum(tg_mul(y, tg_sigmoid(x))), tg_sum(tg_mul(e, e))));
    size_t k = 0;
    if (loss && tg_backward(loss) == 0) {
        tg_tensor *outs[4] = {c, c3, y, e};
        for (int i = 0; i < 4; i++)
            for (size_t j = 0; j < tg_size(outs[i]); j++)
                out[k++] = tg_get(outs[i], j);
        for (int i = 0; i < NP; i++) {
            const void *gr = tg_grad(ps[i]);
            for (size_t j = 0; gr && j < tg_size(ps[i]); j++)
                out[k++] = dt == TG_F32 ? ((const float *)gr)[j] : ((const double *)gr)[j];
        }
    } else {
        diag("%s", tg_tape_error(T));
    }
    tg_tape_free(T);
    return k;
}

static void threads(void)
{
    const size_t cap = 1 << 20;
    double *o1 = malloc(cap * sizeof *o1), *o2 = malloc(cap * sizeof *o2);
    for (int d = 0; d < 2 && o1 && o2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        size_t n1 = run(1, dt, o1), n2 = run(2, dt, o2);
        ok(n1 > 600000 && n1 == n2 && !memcmp(o1, o2, n1 * sizeof *o1),
           "%s: bmm, layer_norm, embedding and their gradients (%zu values) are the same with 1 "
           "and 2 threads", tg_dtype_name(dt), n1);
    }
    tg_set_threads(1);
    free(o1);
    free(o2);
}

/* Backward after the indices changed: the rows of the last forward get it. */
static void embedding_indices(void)
{
    tg_tape *T = tg_tape_new();
    tg_tensor *E = tg_param(T, "E", TG_F64, 2, SHAPE(3, 2));
    tg_tensor *idx = tg_leaf_from(T, TG_INPUT, "i", TG_I32, 1, SHAPE(3), (int32_t[]){2, 2, 0});
    tg_tensor *loss = tg_sum(tg_embedding(E, idx));
    tg_set(idx, 0, 1), tg_set(idx, 1, 1);
    ok(loss && tg_backward(loss) == 0, "embedding: backward after its indices changed");
    const double *g = tg_grad(E);
    ok(g && g[0] == 1 && g[1] == 1 && g[2] == 0 && g[3] == 0 && g[4] == 2 && g[5] == 2,
       "embedding: the gradient follows the indices of the last forward (row 2 twice)");
    tg_tape_free(T);
}

static void attributes(void)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *x = tg_param(t, "x", TG_F32, 3, SHAPE(2, 3, 4));
    tg_tensor *y = tg_layer_norm(x, NULL, tg_param(t, "b", TG_F32, 1, SHAPE(4)), 1e-5);
    tg_tensor *loss = tg_sum(tg_bmm(y, x, false, true));
    char buf[8192];
    tap_dot_text(t, loss, buf, sizeof buf);
    ok(strstr(buf, "layer_norm(eps=1e-05 no_gamma)") != NULL, "DOT: layer_norm's eps and no γ");
    ok(strstr(buf, "bmm(trans_b)") != NULL, "DOT: bmm's transpose");
    tg_tape_free(t);
}

/* ---- causal softmax / log_softmax ---------------------------------------- */

/* Reference in long double: row r of x [rows, d] with tq (0: not causal). */
static void causal_ref(const double *x, size_t rows, size_t d, size_t tq, bool logsm, double *y)
{
    for (size_t r = 0; r < rows; r++) {
        size_t len = tq ? r % tq + 1 + d - tq : d;
        const double *xr = x + r * d;
        long double m = xr[0], s = 0;
        for (size_t j = 1; j < len; j++)
            m = xr[j] > m ? xr[j] : m;
        for (size_t j = 0; j < len; j++)
            s += expl(xr[j] - m);
        for (size_t j = 0; j < d; j++)
            y[r * d + j] = j >= len ? (logsm ? -INFINITY : 0)
                         : logsm ? (double)(xr[j] - m - logl(s)) : (double)(expl(xr[j] - m) / s);
    }
}

/* Values (masked ones exactly 0 / -inf) against the reference, gradients:
 * with dy = R, dx of the visible columns against the formulas, exactly 0 on
 * the masked ones; and added onto a gradient another node wrote (masked
 * places keep that node's value). */
static void causal_values(void)
{
    static const size_t shp[][4] = {{1, 1}, {3, 3}, {2, 3, 7}, {2, 2, 5, 5}, {1, 1, 9}};
    static const int rk[] = {2, 2, 3, 4, 3};
    for (int dt = 0; dt < 2; dt++)
        for (int k = 0; k < 5; k++)
            for (int lg = 0; lg < 2; lg++) {
                tg_dtype D = dt ? TG_F64 : TG_F32;
                tg_tape *T = tg_tape_new();
                tg_rng rng;
                tg_rng_seed(&rng, 40 + (uint64_t)k);
                tg_tensor *x = tg_param(T, "x", D, rk[k], shp[k]);
                tg_tensor *r = tg_const(T, "R", D, rk[k], shp[k]);
                tg_init_uniform(x, &rng, -4, 4);
                tg_init_uniform(r, &rng, -1, 1);
                tg_tensor *y = lg ? tg_log_softmax_causal(x) : tg_softmax_causal(x);
                /* dy = R on the visible part; the masked part of y (-inf) is
                 * cut out by where() below: a second use of x adds 7·x' */
                size_t n = tg_size(x), d = shp[k][rk[k] - 1], tq = shp[k][rk[k] - 2];
                double *xv = malloc(n * sizeof *xv), *ref = malloc(n * sizeof *ref);
                for (size_t i = 0; i < n; i++)
                    xv[i] = tg_get(x, i);
                causal_ref(xv, n / d, d, tq, lg, ref);
                double tol = dt ? 1e-14 : 2e-6, worst = 0;
                bool exact = y != NULL;
                for (size_t i = 0; y && i < n; i++) {
                    double v = tg_get(y, i);
                    if (isinf(ref[i]) || ref[i] == 0)
                        exact = exact && (isinf(ref[i]) ? v == -INFINITY : v == 0);
                    else
                        worst = fmax(worst, fabs(v - ref[i]) / fmax(1, fabs(ref[i])));
                }
                ok(exact && worst <= tol,
                   "%s %s causal %zu..x%zu: masked exactly %s, visible within %.0e of long "
                   "double (%.2g)", tg_dtype_name(D), lg ? "log_softmax" : "softmax", tq, d,
                   lg ? "-inf" : "0", tol, worst);
                /* backward: seed dy = R by hand (tg_backward_from would need a loss) */
                tg_tensor *loss = tg_sum(tg_mul(lg ? tg_exp(y) : y, r));
                tg_tensor *both = tg_add(loss, tg_sum(tg_scale(x, 7)));
                bool gok = both && tg_backward(both) == 0;
                double gw = 0;
                for (size_t row = 0; gok && row < n / d; row++) {
                    size_t len = row % tq + 1 + d - tq;
                    /* softmax: dx = y(R − ⟨R,y⟩); log_softmax through exp:
                     * dy = R·p, dx = dy − p·Σdy */
                    long double dot = 0;
                    for (size_t j = 0; j < len; j++) {
                        long double p = lg ? expl(ref[row * d + j]) : ref[row * d + j];
                        dot += tg_get(r, row * d + j) * p;
                    }
                    for (size_t j = 0; j < d; j++) {
                        size_t i = row * d + j;
                        double g = dt ? ((const double *)tg_grad(x))[i]
                                      : ((const float *)tg_grad(x))[i];
                        if (j >= len) {
                            gok = gok && g == 7;
                            continue;
                        }
                        long double p = lg ? expl(ref[i]) : ref[i];
                        long double w = p * (tg_get(r, i) - dot) + 7;
                        gw = fmax(gw, fabs(g - (double)w) / fmax(1, fabs((double)w)));
                    }
                }
                ok(gok && gw <= (dt ? 1e-13 : 1e-5),
                   "%s %s causal %zu..x%zu: gradient of the visible columns (%.2g), masked ones "
                   "get nothing", tg_dtype_name(D), lg ? "log_softmax" : "softmax", tq, d, gw);
                free(xv);
                free(ref);
                tg_tape_free(T);
            }
}

/* log_softmax causal against torch 1.13 float64,
 * log_softmax(x.masked_fill(k > q + Tk - Tq, -inf), -1), on
 * x[i] = ((7i mod 11) - 5)/2 of [2,3,4]: masked entries exactly -inf. */
static void causal_log_torch(void)
{
    static const double want[24] = {
        -3.5297504182726205, -0.029750418272620652, -INFINITY, -INFINITY,
        -1.7258020492315993, -3.7258020492315995, -0.22580204923159933, -INFINITY,
        -3.668770407939234, -0.16877040793923376, -2.168770407939234, -4.168770407939234,
        -0.1269280110429726, -2.1269280110429727, -INFINITY, -INFINITY,
        -3.6531782071222882, -0.15317820712228827, -2.1531782071222882, -INFINITY,
        -0.5654169752270999, -2.5654169752271, -4.5654169752271, -1.0654169752270999};
    for (int dt = 0; dt < 2; dt++) {
        tg_dtype D = dt ? TG_F64 : TG_F32;
        tg_tape *T = tg_tape_new();
        tg_tensor *x = tg_param(T, "x", D, 3, SHAPE(2, 3, 4));
        for (size_t i = 0; i < 24; i++)
            tg_set(x, i, (double)((int)((7 * i) % 11) - 5) / 2);
        tg_tensor *y = tg_log_softmax_causal(x);
        double worst = 0;
        bool masked = y != NULL;
        for (size_t i = 0; y && i < 24; i++) {
            double v = tg_get(y, i);
            if (isinf(want[i]))
                masked = masked && v == -INFINITY;
            else
                worst = fmax(worst, fabs(v - want[i]));
        }
        ok(masked && worst <= (dt ? 1e-15 : 1e-6),
           "%s log_softmax causal [2,3,4] = torch's (masked -inf; %.2g)", tg_dtype_name(D), worst);
        tg_tape_free(T);
    }
}

/* The masked dx is written (0) when the op's gradient is the first to land:
 * h's gradient buffer holds 5s from the backward of another loss first. */
static void causal_overwrite(void)
{
    tg_tape *T = tg_tape_new();
    tg_tensor *x = tg_param(T, "x", TG_F64, 2, SHAPE(2, 3));
    for (size_t i = 0; i < 6; i++)
        tg_set(x, i, (double)i);
    tg_tensor *h = tg_scale(x, 1);
    tg_tensor *l1 = tg_sum(tg_scale(h, 5));
    ok(l1 && tg_backward(l1) == 0 && ((const double *)tg_grad(h))[5] == 5, "a first backward");
    tg_tensor *loss = tg_sum(tg_softmax_causal(h));
    tg_zero_grad(T);
    ok(loss && tg_backward(loss) == 0, "backward through softmax_causal");
    const double *g = tg_grad(x);
    /* rows of a softmax sum to 1: dx = 0 everywhere, the masked ones written */
    bool zero = g != NULL;
    for (int i = 0; zero && i < 6; i++)
        zero = fabs(g[i]) < 1e-15;
    for (int i = 0; !zero && g && i < 6; i++)
        diag("dx[%d] = %g", i, g[i]);
    ok(zero, "softmax_causal: d(Σ y)/dx = 0, masked entries written as 0");
    tg_tape_free(T);
}

/* Extreme and -inf inputs: no NaN, and the visible columns behave as plain
 * softmax on them; NaN and +inf in masked places do not matter. */
static void causal_extremes(void)
{
    for (int dt = 0; dt < 2; dt++) {
        tg_dtype D = dt ? TG_F64 : TG_F32;
        tg_tape *T = tg_tape_new();
        double big = dt ? 1e300 : 1e38;
        double v[9] = {-big, NAN, INFINITY, big, -big, NAN, -INFINITY, 5, -INFINITY};
        tg_tensor *x = tg_param(T, "x", D, 2, SHAPE(3, 3));
        for (int i = 0; i < 9; i++)
            tg_set(x, i, v[i]);
        tg_tensor *p = tg_softmax_causal(x), *l = tg_log_softmax_causal(x);
        double wp[9] = {1, 0, 0, 1, 0, 0, 0, 1, 0};
        /* −big − big: −2e300 in f64, −2e38 (finite) in f32 */
        double wl[9] = {0, -INFINITY, -INFINITY, 0, dt ? -2 * big : -2.0 * (double)(float)big, -INFINITY,
                        -INFINITY, 0, -INFINITY};
        bool good = p && l;
        for (int i = 0; good && i < 9; i++) {
            double a = tg_get(p, i), b = tg_get(l, i);
            /* f32's exp flushes at e^−87.3 ≈ 1.2e-38, as plain softmax */
            good = fabs(a - wp[i]) <= (dt ? 0 : 2e-38) && b == wl[i];
            if (!good)
                diag("[%d] softmax %g (want %g), log_softmax %g (want %g)", i, a, wp[i], b, wl[i]);
        }
        ok(good, "%s causal softmax/log_softmax of ±huge, -inf, with NaN/+inf in masked places",
           tg_dtype_name(D));
        tg_rng rng;
        tg_rng_seed(&rng, 3);
        tg_tensor *w = tg_const(T, "w", D, 2, SHAPE(3, 3));
        tg_init_uniform(w, &rng, -1, 1);
        tg_tensor *loss = tg_sum(tg_mul(p, w));
        ok(loss && tg_backward(loss) == 0, "%s backward", tg_dtype_name(D));
        bool fin = loss != NULL;
        for (int i = 0; fin && i < 9; i++) {
            double g = D == TG_F64 ? ((const double *)tg_grad(x))[i]
                                   : ((const float *)tg_grad(x))[i];
            fin = fabs(g) <= 1e-37;
        }
        ok(fin, "%s causal softmax gradient: 0 everywhere (one-hot rows, masked NaN ignored)",
           tg_dtype_name(D));
        tg_tape_free(T);
    }
}

/* Forward and backward on [2,4,96,128] (rows split over the pool): the
 * same bits with 1 and 2 threads, f32 and f64. */
static size_t causal_run(int threads, tg_dtype dt, bool lg, double *out)
{
    tg_set_threads(threads);
    tg_tape *T = tg_tape_new();
    tg_rng rng;
    tg_rng_seed(&rng, 9);
    tg_tensor *x = tg_param(T, "x", dt, 4, SHAPE(2, 4, 96, 128));
    tg_tensor *r = tg_const(T, "r", dt, 4, SHAPE(2, 4, 96, 128));
    tg_init_uniform(x, &rng, -3, 3);
    tg_init_uniform(r, &rng, -1, 1);
    tg_tensor *y = lg ? tg_log_softmax_causal(x) : tg_softmax_causal(x);
    tg_tensor *loss = tg_sum(tg_mul(lg ? tg_exp(y) : y, r));
    size_t k = 0;
    if (loss && tg_backward(loss) == 0) {
        for (size_t j = 0; j < tg_size(x); j++)
            out[k++] = tg_get(y, j);
        for (size_t j = 0; j < tg_size(x); j++)
            out[k++] = dt == TG_F32 ? ((const float *)tg_grad(x))[j]
                                    : ((const double *)tg_grad(x))[j];
    }
    tg_tape_free(T);
    return k;
}

static void causal_threads(void)
{
    size_t cap = 2 * 2 * 4 * 96 * 128;
    double *o1 = malloc(cap * sizeof *o1), *o2 = malloc(cap * sizeof *o2);
    for (int d = 0; d < 4 && o1 && o2; d++) {
        tg_dtype dt = d & 1 ? TG_F64 : TG_F32;
        size_t n1 = causal_run(1, dt, d & 2, o1), n2 = causal_run(2, dt, d & 2, o2);
        ok(n1 == cap && n1 == n2 && !memcmp(o1, o2, n1 * sizeof *o1),
           "%s %s causal: values and gradients the same with 1 and 2 threads",
           tg_dtype_name(dt), d & 2 ? "log_softmax" : "softmax");
    }
    tg_set_threads(1);
    free(o1);
    free(o2);
}

static void causal_dot(void)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *x = tg_param(t, "x", TG_F32, 2, SHAPE(3, 3));
    tg_tensor *loss =
        tg_sum(tg_add(tg_add(tg_softmax_causal(x), tg_softmax(x)), tg_log_softmax(x)));
    char buf[8192];
    tap_dot_text(t, loss, buf, sizeof buf);
    ok(strstr(buf, "softmax(causal)") != NULL, "DOT: softmax(causal)");
    ok(strstr(buf, "softmax(") == strstr(buf, "softmax(causal)") &&
           !strstr(strstr(buf, "softmax(causal)") + 1, "softmax("),
       "DOT: plain softmax and log_softmax show no attributes");
    tg_tape_free(t);
}

/* ---- softmax_ce on [B,T,V], ignore_index ---------------------------------- */

/* [B,T,V] gives the loss and gradient of the same rows as [B·T,V], bit for
 * bit (TG_MEAN; TG_BATCH_MEAN divides by B instead of B·T). */
static void ce_rank3(void)
{
    for (int dt = 0; dt < 2; dt++) {
        tg_dtype D = dt ? TG_F64 : TG_F32;
        tg_tape *T = tg_tape_new();
        tg_rng rng;
        tg_rng_seed(&rng, 11);
        tg_tensor *z3 = tg_param(T, "z3", D, 3, SHAPE(3, 5, 7));
        tg_tensor *z2 = tg_param(T, "z2", D, 2, SHAPE(15, 7));
        tg_init_uniform(z3, &rng, -3, 3);
        int32_t lab[15];
        for (int i = 0; i < 15; i++)
            lab[i] = (int32_t)((i * 5) % 7);
        for (size_t i = 0; i < 105; i++)
            tg_set(z2, i, tg_get(z3, i));
        tg_tensor *l3 = tg_leaf_from(T, TG_INPUT, "l3", TG_I32, 2, SHAPE(3, 5), lab);
        tg_tensor *l2 = tg_leaf_from(T, TG_INPUT, "l2", TG_I32, 1, SHAPE(15), lab);
        tg_tensor *a = tg_softmax_ce(z3, l3, TG_MEAN), *b = tg_softmax_ce(z2, l2, TG_MEAN);
        tg_tensor *bm = tg_softmax_ce(z3, l3, TG_BATCH_MEAN), *sm = tg_softmax_ce(z2, l2, TG_SUM);
        bool same = a && b && tg_item(a) == tg_item(b) && tg_backward(a) == 0 && tg_backward(b) == 0;
        size_t es = dt ? 8 : 4;
        same = same && !memcmp(tg_grad(z3), tg_grad(z2), 105 * es);
        ok(same, "%s softmax_ce [3,5,7] = [15,7]: loss and gradient bit for bit", tg_dtype_name(D));
        near(tg_item(bm), tg_item(sm) / 3, dt ? 1e-15 : 1e-6,
             "%s softmax_ce [B,T,V] TG_BATCH_MEAN = the sum / B", tg_dtype_name(D));
        tg_tape_free(T);
    }
}

/* TG_MEAN counts the kept rows in every forward: replays after the labels
 * change; all ignored gives NaN and a zero gradient; backward after a label
 * was changed without a replay uses the labels and count of the forward. */
static void ce_ignore_replay(void)
{
    tg_tape *T = tg_tape_new();
    tg_tensor *z = tg_param(T, "z", TG_F64, 3, SHAPE(2, 2, 3));
    for (size_t i = 0; i < 12; i++)
        tg_set(z, i, (double)((i * 7) % 5) - 2);
    tg_tensor *l = tg_leaf_from(T, TG_INPUT, "l", TG_I32, 2, SHAPE(2, 2),
                                (int32_t[]){0, 1, 2, 0});
    tg_tensor *sum = tg_softmax_ce_ignore(z, l, -1, TG_SUM);
    tg_tensor *loss = tg_softmax_ce_ignore(z, l, -1, TG_MEAN);
    ok(sum && loss, "softmax_ce_ignore recorded");
    if (!sum || !loss) {
        tg_tape_free(T);
        return;
    }
    near(tg_item(loss), tg_item(sum) / 4, 1e-15, "no row ignored: mean = sum / 4");
    /* per-row losses, from the sum with one row kept at a time */
    double row[4];
    for (int k = 0; k < 4; k++) {
        int32_t v[4] = {-1, -1, -1, -1}, all[4] = {0, 1, 2, 0};
        v[k] = all[k];
        for (int i = 0; i < 4; i++)
            tg_set(l, (size_t)i, v[i]);
        ok(tg_replay(T) == 0, "replay with only row %d kept", k);
        row[k] = tg_item(sum);
        near(tg_item(loss), row[k], 1e-15, "one row kept: mean = that row's loss");
    }
    int32_t v[4] = {0, -1, 2, -1};
    for (int i = 0; i < 4; i++)
        tg_set(l, (size_t)i, v[i]);
    ok(tg_replay(T) == 0, "replay with rows 1 and 3 ignored");
    near(tg_item(loss), (row[0] + row[2]) / 2, 1e-15, "mean over the 2 rows kept");
    ok(tg_backward(loss) == 0, "backward");
    const double *g = tg_grad(z);
    bool zero = true, some = false;
    for (int j = 0; j < 3; j++) {
        zero = zero && g[3 + j] == 0 && g[9 + j] == 0;
        some = some || g[j] != 0;
    }
    ok(zero && some, "the ignored rows get a zero gradient, the others not");
    /* the scale of that forward (1/2) stays until the next replay */
    double g0 = g[0];
    tg_set(l, 1, 1); /* a row kept again, not replayed */
    tg_zero_grad(T);
    ok(tg_backward(loss) == 0 && ((const double *)tg_grad(z))[0] == g0 &&
           ((const double *)tg_grad(z))[3] == 0,
       "backward after the labels changed: the labels and count of the last forward");
    for (int i = 0; i < 4; i++)
        tg_set(l, (size_t)i, -1);
    ok(tg_replay(T) == 0 && isnan(tg_item(loss)) && tg_item(sum) == 0,
       "every row ignored: mean NaN (as PyTorch), sum 0");
    tg_zero_grad(T);
    ok(tg_backward(loss) == 0, "backward from the NaN loss");
    zero = true;
    for (int i = 0; i < 12; i++)
        zero = zero && ((const double *)tg_grad(z))[i] == 0;
    ok(zero, "every row ignored: the gradient is 0 (as PyTorch), not NaN");
    char buf[8192];
    tap_dot_text(T, loss, buf, sizeof buf);
    ok(strstr(buf, "softmax_ce(mean ignore=-1)") != NULL, "DOT: softmax_ce(mean ignore=-1)");
    tg_tape_free(T);
}

/* ---- maximum / minimum: ties and NaN, exactly ------------------------------ */

/* Gradients with dy = 1 against torch 1.13 (torch.maximum / torch.minimum,
 * float64, y.sum().backward()): ties split 0.5/0.5, NaN
 * sends dy to both inputs; the broadcast axes summed. */
static bool grads_are(tg_tensor *t, const double *want)
{
    bool same = tg_grad(t) != NULL;
    for (size_t i = 0; same && i < tg_size(t); i++) {
        double g = tg_dtype_of(t) == TG_F64 ? ((const double *)tg_grad(t))[i]
                                             : ((const float *)tg_grad(t))[i];
        same = g == want[i];
        if (!same)
            diag("grad[%zu] = %g, want %g", i, g, want[i]);
    }
    return same;
}

static void minmax_exact(void)
{
    static const struct {
        const char *what;
        int ra, rb;
        size_t sa[2], sb[2];
        double a[6], b[6], ymax[12], damax[6], dbmax[6], ymin[12], damin[6], dbmin[6];
    } cs[] = {
        {"[3,1] vs [1,4]", 2, 2, {3, 1}, {1, 4},
         {0.5, -1.0, 2.0}, {1.0, -1.0, 0.5, 3.0},
         {1.0, 0.5, 0.5, 3.0, 1.0, -1.0, 0.5, 3.0, 2.0, 2.0, 2.0, 3.0}, {1.5, 0.5, 3.0},
         {2.0, 0.5, 1.5, 3.0},
         {0.5, -1.0, 0.5, 0.5, -1.0, -1.0, -1.0, -1.0, 1.0, -1.0, 0.5, 2.0}, {2.5, 3.5, 1.0},
         {1.0, 2.5, 1.5, 0.0}},
        {"scalar vs [2,3]", 0, 2, {0}, {2, 3},
         {0.25}, {0.25, -2.0, 1.5, 0.0, 0.25, 7.0},
         {0.25, 0.25, 1.5, 0.25, 0.25, 7.0}, {3.0}, {0.5, 0.0, 1.0, 0.0, 0.5, 1.0},
         {0.25, -2.0, 0.25, 0.0, 0.25, 0.25}, {3.0}, {0.5, 1.0, 0.0, 1.0, 0.5, 0.0}},
        {"NaN", 1, 1, {3}, {3},
         {NAN, 1.0, 2.0}, {3.0, NAN, 2.0},
         {NAN, NAN, 2.0}, {1.0, 1.0, 0.5}, {1.0, 1.0, 0.5},
         {NAN, NAN, 2.0}, {1.0, 1.0, 0.5}, {1.0, 1.0, 0.5}},
    };
    for (int dt = 0; dt < 2; dt++)
        for (int k = 0; k < 3; k++)
            for (int mx = 0; mx < 2; mx++) {
                tg_dtype D = dt ? TG_F64 : TG_F32;
                tg_tape *T = tg_tape_new();
                tg_tensor *a = tg_param(T, "a", D, cs[k].ra, cs[k].sa);
                tg_tensor *b = tg_param(T, "b", D, cs[k].rb, cs[k].sb);
                for (size_t i = 0; i < tg_size(a); i++)
                    tg_set(a, i, cs[k].a[i]);
                for (size_t i = 0; i < tg_size(b); i++)
                    tg_set(b, i, cs[k].b[i]);
                tg_tensor *y = mx ? tg_maximum(a, b) : tg_minimum(a, b);
                const double *wy = mx ? cs[k].ymax : cs[k].ymin;
                bool vals = y != NULL;
                for (size_t i = 0; vals && i < tg_size(y); i++)
                    vals = isnan(wy[i]) ? isnan(tg_get(y, i)) : tg_get(y, i) == wy[i];
                tg_tensor *loss = tg_sum(y);
                bool back = loss && tg_backward(loss) == 0;
                ok(vals && back && grads_are(a, mx ? cs[k].damax : cs[k].damin) &&
                       grads_are(b, mx ? cs[k].dbmax : cs[k].dbmin),
                   "%s %s %s: values and gradients as torch 1.13 (ties 0.5 each)",
                   tg_dtype_name(D), mx ? "maximum" : "minimum", cs[k].what);
                tg_tape_free(T);
            }
    /* maximum(x, x): a tie everywhere, both halves land: dx = dy */
    tg_tape *T = tg_tape_new();
    tg_tensor *x = tg_param(T, "x", TG_F64, 1, SHAPE(3));
    tg_tensor *w = tg_leaf_from(T, TG_CONST, "w", TG_F64, 1, SHAPE(3), (double[]){1, 2, 3});
    tg_tensor *loss = tg_sum(tg_mul(tg_minimum(x, x), w));
    ok(loss && tg_backward(loss) == 0 && grads_are(x, (double[]){1, 2, 3}),
       "minimum(x, x): dx = dy (two halves in one buffer)");
    tg_tape_free(T);
}

/* ---- max_axis: ties, NaN, the index of each forward ------------------------ */

static void max_axis_exact(void)
{
    /* torch 1.13 float64, torch.max(x, dim, keepdim) then values.sum().backward()
     *: the gradient goes to the first maximum */
    static const double xv[24] = {3.0, 1.0, 3.0, -2.0, 0.5, 0.5, -1.0, 2.0, 4.0, -3.0, 4.0, 1.5,
                                  -0.5, -0.5, -0.5, -0.5, 2.5, 1.0, 0.0, 2.5, -1.5, 3.5, 3.5, 0.0};
    static const struct {
        int axis;
        bool keep;
        double g[24];
    } cs[] = {
        {1, false, {0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 1, 0}},
        {-1, true, {1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0}},
        {0, false, {1, 1, 1, 0, 0, 0, 0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 0, 1, 0, 0}},
    };
    for (int dt = 0; dt < 2; dt++)
        for (int k = 0; k < 3; k++) {
            tg_dtype D = dt ? TG_F64 : TG_F32;
            tg_tape *T = tg_tape_new();
            tg_tensor *x = tg_param(T, "x", D, 3, SHAPE(2, 3, 4));
            for (size_t i = 0; i < 24; i++)
                tg_set(x, i, xv[i]);
            tg_tensor *loss = tg_sum(tg_max_axis(x, cs[k].axis, cs[k].keep));
            ok(loss && tg_backward(loss) == 0 && grads_are(x, cs[k].g),
               "%s max_axis(%d%s): gradient to the first maximum, as torch 1.13",
               tg_dtype_name(D), cs[k].axis, cs[k].keep ? ", keepdim" : "");
            tg_tape_free(T);
        }
    /* NaN: the first NaN is the max and takes the gradient (torch: [nan, nan],
     * indices [1, 3]) */
    tg_tape *T = tg_tape_new();
    tg_tensor *x = tg_leaf_from(T, TG_PARAM, "x", TG_F64, 2, SHAPE(2, 4),
                                (double[]){1, NAN, 5, NAN, 2, 2, 1, NAN});
    tg_tensor *m = tg_max_axis(x, 1, false);
    tg_tensor *loss = tg_sum(m);
    ok(m && isnan(tg_get(m, 0)) && isnan(tg_get(m, 1)) && tg_backward(loss) == 0 &&
           grads_are(x, (double[]){0, 1, 0, 0, 0, 0, 0, 1}),
       "max_axis with NaN: NaN, the gradient to the first NaN");
    tg_tape_free(T);
    /* the index is found again by every forward: a replay after the values
     * changed moves the gradient */
    T = tg_tape_new();
    x = tg_leaf_from(T, TG_PARAM, "x", TG_F64, 2, SHAPE(2, 3), (double[]){1, 3, 2, 0, -1, -2});
    m = tg_max_axis(x, -1, false);
    loss = tg_sum(tg_mul(m, tg_leaf_from(T, TG_CONST, "w", TG_F64, 1, SHAPE(2), (double[]){2, 5})));
    ok(loss && tg_backward(loss) == 0 && grads_are(x, (double[]){0, 2, 0, 5, 0, 0}),
       "max_axis: gradient at the argmax (1, 0)");
    tg_set(x, 2, 7);
    tg_set(x, 4, 4);
    tg_zero_grad(T);
    ok(tg_replay(T) == 0 && tg_get(m, 0) == 7 && tg_get(m, 1) == 4 && tg_backward(loss) == 0 &&
           grads_are(x, (double[]){0, 0, 2, 0, 5, 0}),
       "max_axis after a replay: the new argmax (2, 1) gets the gradient");
    char buf[8192];
    tap_dot_text(T, loss, buf, sizeof buf);
    ok(strstr(buf, "max_axis(axis=1)") != NULL, "DOT: max_axis(axis=1), the axis made positive");
    tg_tape_free(T);
}

/* ---- recorded gradients (tg_grad_graph) of the indexing ops ---------------- */

/* Each recorded gradient equals backward's (rel <= tol) after a replay. */
static bool recorded_is_backward(tg_tape *T, tg_tensor *loss, tg_tensor *x, tg_tensor *g,
                                 double tol)
{
    tg_zero_grad(T);
    if (tg_replay(T) || tg_backward(loss))
        return false;
    bool same = true;
    for (size_t i = 0; same && i < tg_size(x); i++) {
        double a = tg_get(g, i), b = tg_grad_get(x, i);
        same = fabs(a - b) <= tol * fmax(fabs(a), fabs(b));
        if (!same)
            diag("[%zu] recorded %.17g, backward %.17g", i, a, b);
    }
    return same;
}

/* The recorded gradients of gather_rows, embedding and class_means read the
 * indices when they run: indices set after recording move them, as they move
 * backward's.  max_axis's goes to the first maximum (ties) as backward's. */
static void recorded_indices(void)
{
    tg_tape *T = tg_tape_new();
    tg_tensor *x = tg_leaf_from(T, TG_PARAM, "x", TG_F64, 2, SHAPE(4, 2),
                                (double[]){1, -2, 0.5, 3, -1, 2, 4, -0.25});
    tg_tensor *w = tg_leaf_from(T, TG_CONST, "w", TG_F64, 2, SHAPE(5, 2),
                                (double[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
    tg_tensor *idx = tg_leaf_from(T, TG_INPUT, "idx", TG_I32, 1, SHAPE(5),
                                  (int32_t[]){0, 2, 2, 1, 0});
    tg_tensor *lab = tg_leaf_from(T, TG_INPUT, "lab", TG_I32, 1, SHAPE(4), (int32_t[]){0, 2, 2, 1});
    tg_tensor *e2 = tg_leaf_from(T, TG_INPUT, "e2", TG_I32, 2, SHAPE(5, 1),
                                 (int32_t[]){3, 3, 0, 1, 3});
    tg_tensor *cw = tg_reshape(w, 2, SHAPE(5, 2));
    tg_tensor *parts[3] = {tg_mul(tg_gather_rows(x, idx), w),
                           tg_mul(tg_reshape(tg_embedding(x, e2), 2, SHAPE(5, 2)), cw),
                           tg_mul(tg_gather_rows(tg_class_means(x, lab, 4), idx), cw)};
    tg_tensor *y = tg_concat(3, parts, 0);
    tg_tensor *loss = tg_sum(tg_mul(y, y)), *g;
    bool rec = loss && tg_grad_graph(loss, NULL, 1, &x, &g) == 0;
    ok(rec && recorded_is_backward(T, loss, x, g, 1e-15),
       "gather_rows, embedding, class_means: recorded gradient = backward's");
    int32_t i2[5] = {3, 3, 1, 0, 1}, l2[4] = {1, 1, 3, 3}, e[5] = {2, 0, 0, 0, 1};
    tg_copy_in(idx, i2, TG_I32, 5);
    tg_copy_in(lab, l2, TG_I32, 4);
    tg_copy_in(e2, e, TG_I32, 5);
    ok(rec && recorded_is_backward(T, loss, x, g, 1e-15),
       "... after new indices and labels, the replayed recorded gradient = backward's");
    tg_tape_free(T);

    /* max_axis with ties, both dtypes: the same gradient, bit for bit */
    static const double xv[12] = {3, 1, 3, -2, 0.5, 0.5, 0.5, 2, 4, 4, -3, 4};
    for (int dt = 0; dt < 2; dt++) {
        tg_dtype D = dt ? TG_F64 : TG_F32;
        T = tg_tape_new();
        tg_tensor *m = tg_param(T, "m", D, 2, SHAPE(3, 4));
        for (size_t i = 0; i < 12; i++)
            tg_set(m, i, xv[i]);
        tg_tensor *r = tg_leaf_from(T, TG_CONST, "r", TG_F64, 1, SHAPE(3), (double[]){1, -2, 3});
        if (D == TG_F32)
            r = tg_leaf_from(T, TG_CONST, "r", TG_F32, 1, SHAPE(3), (float[]){1, -2, 3});
        loss = tg_sum(tg_mul(tg_max_axis(m, 1, false), r));
        rec = loss && tg_grad_graph(loss, NULL, 1, &m, &g) == 0;
        bool same = rec && recorded_is_backward(T, loss, m, g, 0);
        for (size_t i = 0; same && i < 12; i++) /* rows: ties at 0 and 2, 4.. */
            same = tg_get(g, i) == (double[]){1, 0, 0, 0, 0, 0, 0, -2, 3, 0, 0, 0}[i];
        ok(same, "%s max_axis with ties: recorded gradient at the first maximum, = backward's",
           tg_dtype_name(D));
        tg_tape_free(T);
    }
}

/* The recorded gradients (scatter_rows for embedding, layer_norm's rule) and
 * a Hessian-vector product through them, large enough to be split over the
 * pool: the same bits with 1 and 2 threads. */
static size_t recorded_run(int threads, tg_dtype dt, double *out)
{
    tg_set_threads(threads);
    tg_tape *T = tg_tape_new();
    tg_rng rng;
    tg_rng_seed(&rng, 11);
    tg_tensor *E = tg_param(T, "E", dt, 2, SHAPE(50, 640));
    tg_tensor *x = tg_param(T, "x", dt, 2, SHAPE(300, 200));
    tg_tensor *idx = tg_input(T, "i", TG_I32, 2, SHAPE(30, 40));
    tg_init_uniform(E, &rng, -1, 1);
    tg_init_uniform(x, &rng, -1, 1);
    for (size_t i = 0; i < 1200; i++)
        tg_set(idx, i, (double)((i * 7919) % 50));
    tg_tensor *e = tg_embedding(E, idx), *y = tg_layer_norm(x, NULL, NULL, 1e-5);
    tg_tensor *loss = tg_add(tg_sum(tg_mul(tg_mul(e, e), e)), tg_sum(tg_mul(y, tg_sigmoid(x))));
    tg_tensor *wrt[2] = {E, x}, *g[2], *v[2], *hv[2];
    for (int k = 0; k < 2; k++) {
        v[k] = tg_const(T, "v", dt, 2, (size_t[]){tg_dim(wrt[k], 0), tg_dim(wrt[k], 1)});
        tg_init_uniform(v[k], &rng, -1, 1);
    }
    size_t n = 0;
    if (loss && tg_grad_graph(loss, NULL, 2, wrt, g) == 0 && tg_hvp(loss, 2, wrt, v, hv) == 0 &&
        tg_replay(T) == 0) {
        tg_tensor *outs[4] = {g[0], g[1], hv[0], hv[1]};
        for (int k = 0; k < 4; k++)
            for (size_t j = 0; j < tg_size(outs[k]); j++)
                out[n++] = tg_get(outs[k], j);
    } else {
        diag("%s", tg_tape_error(T));
    }
    tg_tape_free(T);
    return n;
}

static void recorded_threads(void)
{
    const size_t cap = 1 << 18;
    double *o1 = malloc(cap * sizeof *o1), *o2 = malloc(cap * sizeof *o2);
    for (int d = 0; d < 2 && o1 && o2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        size_t n1 = recorded_run(1, dt, o1), n2 = recorded_run(2, dt, o2);
        ok(n1 == 2 * (50 * 640 + 300 * 200) && n1 == n2 && !memcmp(o1, o2, n1 * sizeof *o1),
           "%s: recorded gradients and H v through embedding and layer_norm (%zu values) the "
           "same with 1 and 2 threads", tg_dtype_name(dt), n1);
    }
    tg_set_threads(1);
    free(o1);
    free(o2);
}

/* gelu differentiated three times (tg_grad_graph on its own gradient):
 * gelu' = Φ + xφ, gelu'' = φ·(2 − x²), gelu''' = φ·(x³ − 4x); 0 at ±∞. */
static void gelu_orders(void)
{
    static const double xs[] = {-3, -1, -0.5, 0, 0.5, 1.25, 2, INFINITY, -INFINITY};
    int nx = (int)(sizeof xs / sizeof xs[0]);
    tg_tape *T = tg_tape_new();
    tg_tensor *x = tg_leaf_from(T, TG_PARAM, "x", TG_F64, 1, SHAPE((size_t)nx), xs);
    tg_tensor *d[4] = {tg_gelu(x)};
    for (int k = 1; k < 4; k++)
        if (!d[k - 1] || tg_grad_graph(tg_sum(d[k - 1]), NULL, 1, &x, &d[k]))
            d[k] = NULL;
    bool good = d[3] && tg_forward(d[3]) == 0;
    double worst = 0;
    for (int i = 0; good && i < nx; i++) {
        double v = xs[i], phi = isinf(v) ? 0 : exp(-0.5 * v * v) * 0.39894228040143267794;
        double want[3] = {isinf(v) ? (v > 0) : 0.5 * erfc(-v / sqrt(2)) + v * phi,
                          isinf(v) ? 0 : phi * (2 - v * v),
                          isinf(v) ? 0 : phi * (v * v * v - 4 * v)};
        for (int k = 0; k < 3; k++) {
            double got = tg_get(d[k + 1], (size_t)i);
            worst = fmax(worst, fabs(got - want[k]) / fmax(fabs(want[k]), 1e-300));
            good = good && fabs(got - want[k]) <= 1e-14 * fmax(1, fabs(want[k])) &&
                   !(isinf(v) && got != want[k]);
        }
    }
    ok(good, "gelu's first, second and third recorded derivatives as closed forms (worst rel "
             "%.2g), 0 at ±inf", worst);
    tg_tape_free(T);
}

int main(void)
{
    threads();
    causal_values();
    causal_log_torch();
    causal_overwrite();
    causal_extremes();
    causal_threads();
    causal_dot();
    ce_rank3();
    ce_ignore_replay();
    minmax_exact();
    max_axis_exact();
    embedding_indices();
    attributes();
    recorded_indices();
    gelu_orders();
    recorded_threads();
    return tap_done();
}
