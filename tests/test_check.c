/* The gradient-checking API: finite differences (also on f32 graphs, which
 * are promoted to f64) and the comparison of hand-derived gradients. */
#define _POSIX_C_SOURCE 200809L
#include "tap.h"
#include "tapegrad.h"

#include <stdlib.h>


/* y = sigmoid(x·W), E = ½ Σ (y − t)²  (x [4,3], W [3,2]) */
typedef struct setup {
    tg_tape *t;
    tg_tensor *x, *W, *tgt, *y, *E;
} setup;

static setup make(tg_dtype dt, uint64_t seed)
{
    setup s = {.t = tg_tape_new()};
    tg_rng r;
    tg_rng_seed(&r, seed);
    s.x = tg_input(s.t, "x", dt, 2, SHAPE(4, 3));
    s.W = tg_param(s.t, "W", dt, 2, SHAPE(3, 2));
    s.tgt = tg_input(s.t, "t", dt, 2, SHAPE(4, 2));
    tg_init_normal(s.x, &r, 0, 1);
    tg_init_normal(s.W, &r, 0, 1);
    tg_init_uniform(s.tgt, &r, 0, 1);
    s.y = tg_sigmoid(tg_matmul(s.x, s.W));
    s.E = tg_mse(s.y, s.tgt, TG_SUM | TG_HALF);
    return s;
}

/* dW = xᵀ [(y − t) ⊙ y ⊙ (1 − y)], or without the sigmoid's derivative */
static void hand_dW(setup *s, bool with_sigmoid, double *dW)
{
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) {
            double acc = 0;
            for (int n = 0; n < 4; n++) {
                double y = tg_get(s->y, (size_t)(n * 2 + j));
                double d = y - tg_get(s->tgt, (size_t)(n * 2 + j));
                acc += tg_get(s->x, (size_t)(n * 3 + i)) * (with_sigmoid ? d * y * (1 - y) : d);
            }
            dW[i * 2 + j] = acc;
        }
}

/* The network of issue 12: X [32,20] → relu(X·W1 + b1) [32,64] → ·W2 + b2
 * [32,10] → mean softmax cross-entropy; He-initialised, f64 (or a smooth
 * one with tanh in place of relu). */
typedef struct net {
    tg_tape *t;
    tg_tensor *W1, *b1, *W2, *b2, *loss;
} net;

static net make_net(uint64_t seed, bool smooth)
{
    net n = {.t = tg_tape_new()};
    tg_rng r;
    tg_rng_seed(&r, seed);
    tg_tensor *X = tg_input(n.t, "X", TG_F64, 2, SHAPE(32, 20));
    tg_tensor *y = tg_input(n.t, "y", TG_I32, 1, SHAPE(32));
    n.W1 = tg_param(n.t, "W1", TG_F64, 2, SHAPE(20, 64));
    n.b1 = tg_param(n.t, "b1", TG_F64, 1, SHAPE(64));
    n.W2 = tg_param(n.t, "W2", TG_F64, 2, SHAPE(64, 10));
    n.b2 = tg_param(n.t, "b2", TG_F64, 1, SHAPE(10));
    tg_init_normal(X, &r, 0, 1);
    tg_init_he(n.W1, &r);
    tg_init_normal(n.b1, &r, 0, 0.1);
    tg_init_he(n.W2, &r);
    tg_init_normal(n.b2, &r, 0, 0.1);
    for (size_t i = 0; i < 32; i++)
        tg_set(y, i, (double)tg_rng_below(&r, 10));
    tg_tensor *z = tg_add_bias(tg_matmul(X, n.W1), n.b1);
    tg_tensor *h = smooth ? tg_tanh(z) : tg_relu(z);
    n.loss = tg_softmax_ce(tg_add_bias(tg_matmul(h, n.W2), n.b2), y, TG_MEAN);
    return n;
}

/* n = 0 means every parameter; a check of nothing is an error */
static void check_what(void)
{
    setup s = make(TG_F64, 3);
    tg_check c, all;
    int rc;
    tg_tensor *wrt[1] = {s.W};
    rc = tg_check_fd(s.E, 1, wrt, 0, &c);
    ok(rc == 0, "check_fd on W");
    rc = tg_check_fd(s.E, 0, NULL, 0, &all);
    ok(rc == 0 && all.count == 6 && all.max_rel == c.max_rel,
       "n = 0 checks every parameter: W's 6 values (%zu, max rel %.2g)", all.count, all.max_rel);
    net n = make_net(5, true);
    rc = tg_check_fd(n.loss, 0, NULL, 0, &all);
    ok(rc == 0 && all.count == 20 * 64 + 64 + 64 * 10 + 10,
       "n = 0 on a network: W1, b1, W2, b2 (%zu values)", all.count);
    tg_set_requires_grad(n.W1, false);
    rc = tg_check_fd(n.loss, 0, NULL, 0, &all);
    ok(rc == 0 && all.count == 64 + 64 * 10 + 10,
       "n = 0 skips a leaf that requires no gradient (%zu values)", all.count);

    /* a parameter the loss does not use, or a loss that uses none */
    tg_tensor *V = tg_param(s.t, "V", TG_F64, 1, SHAPE(2));
    TAPE_FAILS(s.t, tg_check_fd(s.E, 1, &V, 0, &c) != 0,
               "check_fd: wrt[0] ('V') does not reach the loss");
    tg_tensor *two[2] = {s.W, V};
    TAPE_FAILS(s.t, tg_check_fd(s.E, 2, two, 0, &c) != 0,
               "check_fd: wrt[1] ('V') does not reach the loss");
    tg_tensor *xs = tg_sum(tg_mul(s.x, s.x));
    TAPE_FAILS(s.t, tg_check_fd(xs, 0, NULL, 0, &c) != 0,
               "check_fd: no parameters: the loss depends on no leaf that requires a gradient");
    rc = tg_check_fd(xs, 1, &s.x, 0, &c);
    ok(rc == 0 && c.count == 12 && c.max_rel < 1e-8,
       "an input named in wrt is still checked (%zu values)", c.count);
    tg_tape_free(s.t);
    tg_tape_free(n.t);
}

/* Kinks made of relu: |x| = relu(x) + relu(−x), max(a, b) = b + relu(a − b),
 * clamp(x, 0, 1) = relu(x) − relu(x − 1), leaky relu = relu(x) − 0.1 relu(−x) */
static tg_tensor *k_abs(tg_tensor *x) { return tg_add(tg_relu(x), tg_relu(tg_neg(x))); }
static tg_tensor *k_max(tg_tensor *a, tg_tensor *b) { return tg_add(b, tg_relu(tg_sub(a, b))); }
static tg_tensor *k_leaky(tg_tensor *x) { return tg_sub(tg_relu(x), tg_scale(tg_relu(tg_neg(x)), 0.1)); }
static tg_tensor *k_clamp01(tg_tensor *x)
{
    return tg_sub(tg_relu(x), tg_relu(tg_sub(x, tg_scalar(tg_tape_of(x), TG_F64, 1))));
}

static char *report(const char *label, const tg_check *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    tg_check_print(mem, label, c);
    fclose(mem);
    if (len && text[len - 1] == '\n')
        text[len - 1] = 0; /* for diag */
    return text;
}

/* Kinks: an element whose difference stencil crosses one is skipped and
 * counted, so the default step never fails a correct network; a smooth one
 * has nothing skipped */
static void check_kinks(void)
{
    tg_check c;
    int rc;
    net n = make_net(12, false);
    tg_tensor *params[4] = {n.W1, n.b1, n.W2, n.b2};
    rc = tg_check_fd(n.loss, 4, params, 0, &c);
    ok(rc == 0, "check_fd on the 20-64-10 relu network");
    char *text = report("relu net", &c);
    diag("%s", text);
    ok(c.max_rel < 1e-7, "a correct relu network passes with the default step (max rel %.2g)",
       c.max_rel);
    ok(c.skipped > 0 && c.skipped < 40 && c.count + c.skipped == 1994,
       "%zu of its 1994 values skipped at kinks", c.skipped);
    has_str(text, " skipped at kinks", "the printed report counts them");
    free(text);
    tg_tensor *top[2] = {n.W2, n.b2};
    rc = tg_check_fd(n.loss, 2, top, 0, &c);
    ok(rc == 0 && c.skipped == 0 && c.count == 650,
       "the loss has no kink along W2, b2: none of their 650 values skipped (%zu)", c.skipped);
    tg_tape_free(n.t);

    net sm = make_net(12, true);
    rc = tg_check_fd(sm.loss, 0, NULL, 0, &c);
    ok(rc == 0 && c.max_rel < 1e-7 && c.skipped == 0,
       "the tanh network: max rel %.2g, %zu skipped", c.max_rel, c.skipped);
    text = report("tanh net", &c);
    ok(!strstr(text, "skipped"), "a report with nothing skipped says nothing of kinks");
    free(text);
    tg_tape_free(sm.t);

    /* test_ops_grad's relu case: values at least 0.1 from the kink */
    tg_tape *t = tg_tape_new();
    tg_rng r;
    tg_rng_seed(&r, 7);
    tg_tensor *x = tg_param(t, "x", TG_F64, 2, SHAPE(6, 5)), *R = tg_const(t, "R", TG_F64, 2, SHAPE(6, 5));
    tg_init_uniform(x, &r, 0.1, 2);
    tg_init_uniform(R, &r, -1, 1);
    for (size_t i = 0; i < 30; i++)
        if (tg_rng_below(&r, 2))
            tg_set(x, i, -tg_get(x, i));
    rc = tg_check_fd(tg_sum(tg_mul(tg_relu(x), R)), 1, &x, 0, &c);
    ok(rc == 0 && c.skipped == 0 &&
           c.count == 30 && c.max_rel < 1e-9,
       "relu away from 0: all 30 values compared (max rel %.2g)", c.max_rel);

    /* |z| at 0, 1e-4 (inside the stencil even at h/4), 6e-4 (only at h) */
    tg_tensor *z = tg_leaf_from(t, TG_PARAM, "z", TG_F64, 1, SHAPE(5), (double[]){-1, 0, 1e-4, 6e-4, 2});
    rc = tg_check_fd(tg_sum(k_abs(z)), 1, &z, 0, &c);
    ok(rc == 0 && c.count == 3 && c.skipped == 2 &&
           c.max_rel < 1e-10,
       "|z|: z[1] = 0 and z[2] = 1e-4 skipped, 6e-4 checked with a smaller step (%zu skipped)",
       c.skipped);

    /* max(a, b) with ties (as in max-pooling): both sides of a tie skipped */
    tg_tensor *A = tg_param(t, "A", TG_F64, 2, SHAPE(4, 5)), *B = tg_param(t, "B", TG_F64, 2, SHAPE(4, 5));
    tg_tensor *S = tg_const(t, "S", TG_F64, 2, SHAPE(4, 5));
    tg_init_normal(A, &r, 0, 1);
    tg_init_normal(B, &r, 0, 1);
    tg_init_uniform(S, &r, -1, 1);
    for (size_t i = 0; i < 20; i += 4)
        tg_set(B, i, tg_get(A, i));
    tg_tensor *ab[2] = {A, B};
    rc = tg_check_fd(tg_sum(tg_mul(k_max(A, B), S)), 2, ab, 0, &c);
    ok(rc == 0 && c.skipped == 10 &&
           c.count == 30 && c.max_rel < 1e-9,
       "max(A, B) with 5 ties: 10 values skipped, 30 agree (max rel %.2g)", c.max_rel);

    /* every value at a kink: nothing compared is an error */
    tg_tensor *k0 = tg_leaf_from(t, TG_PARAM, "k0", TG_F64, 1, SHAPE(2), (double[]){0, 0});
    TAPE_FAILS(t, tg_check_fd(tg_sum(tg_relu(k0)), 1, &k0, 0, &c) != 0,
               "check_fd: nothing compared: the stencil of each of the 2 values crosses a kink");
    tg_tape_free(t);

    /* leaky relu, clamp, max and an L1 loss in one network */
    t = tg_tape_new();
    tg_tensor *X = tg_input(t, "X", TG_F64, 2, SHAPE(64, 8)), *T = tg_input(t, "T", TG_F64, 2, SHAPE(64, 8));
    tg_tensor *W1 = tg_param(t, "W1", TG_F64, 2, SHAPE(8, 32)), *W2 = tg_param(t, "W2", TG_F64, 2, SHAPE(32, 8));
    tg_init_normal(X, &r, 0, 1);
    tg_init_normal(T, &r, 0, 1);
    tg_init_he(W1, &r);
    tg_init_he(W2, &r);
    tg_tensor *z1 = tg_matmul(X, W1);
    tg_tensor *o = tg_matmul(k_max(k_leaky(z1), k_clamp01(z1)), W2);
    tg_tensor *l1 = tg_mean(k_abs(tg_sub(o, T)));
    tg_tensor *w12[2] = {W1, W2};
    rc = tg_check_fd(l1, 2, w12, 0, &c);
    ok(rc == 0 && c.max_rel < 1e-7 && c.skipped > 0,
       "leaky relu, clamp, max, L1 loss: max rel %.2g, %zu skipped", c.max_rel, c.skipped);
    text = report("kinks net", &c);
    diag("%s", text);
    free(text);
    tg_tape_free(t);
}

int main(void)
{
    check_what();
    check_kinks();
    setup s = make(TG_F64, 3);
    tg_backward(s.E);
    double dW[6];
    tg_check c;
    hand_dW(&s, true, dW);
    ok(tg_check_grad(s.W, dW, TG_F64, &c) == 0, "check_grad runs");
    ok(c.count == 6 && c.max_rel < 1e-14, "right formula agrees (max rel %.2g)", c.max_rel);
    hand_dW(&s, false, dW);
    tg_check_grad(s.W, dW, TG_F64, &c);
    ok(c.max_rel > 0.5, "formula without σ' is caught (max rel %.2g)", c.max_rel);
    ok(c.abs_t == s.W && c.rel_t == s.W, "the report names the tensor");

    /* one planted error at element [2,1] */
    hand_dW(&s, true, dW);
    dW[5] += 0.125;
    tg_check_grad(s.W, dW, TG_F64, &c);
    ok(c.abs_i == 5 && fabs(c.max_abs - 0.125) < 1e-12, "planted error found at W[2,1] (abs %.3g)",
       c.max_abs);
    near(c.abs_ref - c.abs_tape, 0.125, 1e-12, "report holds both values");
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    tg_check_print(mem, "dE/dW", &c);
    fclose(mem);
    has_str(text, "dE/dW: 6 values, max abs err 0.125 at W[2,1]", "printed report names W[2,1]");
    free(text);
    float dW32[6];
    hand_dW(&s, true, dW);
    for (int i = 0; i < 6; i++)
        dW32[i] = (float)dW[i];
    tg_check_grad(s.W, dW32, TG_F32, &c);
    ok(c.max_rel < 1e-6, "an f32 reference buffer is accepted (max rel %.2g)", c.max_rel);

    /* finite differences leave the caller's values and gradients alone */
    double w0 = tg_get(s.W, 2), g0 = tg_grad_get(s.W, 2), e0 = tg_item(s.E);
    tg_tensor *wrt[2] = {s.W, s.x};
    ok(tg_check_fd(s.E, 2, wrt, 0, &c) == 0, "check_fd on W and the input x");
    ok(c.count == 18 && c.max_rel < 1e-8, "tape agrees with FD (max rel %.2g)", c.max_rel);
    ok(c.skipped == 0, "a smooth loss has no element skipped");
    ok(tg_get(s.W, 2) == w0 && tg_grad_get(s.W, 2) == g0 && tg_item(s.E) == e0,
       "values, gradients and the loss are untouched");
    ok(tg_grad_get(s.x, 0) == 0 && !tg_requires_grad(s.x), "x still requires no gradient");

    /* an f32 graph is checked on an f64 copy */
    setup f = make(TG_F32, 3);
    tg_tensor *fw[1] = {f.W};
    ok(tg_check_fd(f.E, 1, fw, 0, &c) == 0 && c.max_rel < 1e-8,
       "f32 graph promoted to f64: max rel %.2g", c.max_rel);
    ok(tg_tape_nodes(f.t) == 3, "the caller's tape is unchanged (3 nodes)");

    /* at a kink the difference quotient (0.5 for relu at 0) is no
     * derivative: the element is skipped, not reported */
    tg_tape *t = tg_tape_new();
    tg_tensor *z = tg_leaf_from(t, TG_PARAM, "z", TG_F64, 1, SHAPE(3), (double[]){-1, 0, 2});
    tg_tensor *loss = tg_sum(tg_relu(z));
    ok(tg_check_fd(loss, 1, &z, 0, &c) == 0 && c.count == 2 && c.skipped == 1 && c.max_rel == 0,
       "relu at exactly 0: z[1] skipped, z[0] and z[2] agree");
    /* the relative error of an element that should be 0 uses the scale */
    double ref[3] = {0, 1e-20, 1};
    tg_backward(loss);
    tg_check_grad(z, ref, TG_F64, &c);
    ok(c.max_rel < 1e-16, "1e-20 vs 0 next to a gradient of 1 is no error (rel %.2g)", c.max_rel);
    double nan_ref[3] = {0, 0, NAN};
    tg_check_grad(z, nan_ref, TG_F64, &c);
    ok(isinf(c.max_rel) && c.rel_i == 2, "a NaN is the worst error");
    tg_tape_free(t);
    tg_tape_free(s.t);
    tg_tape_free(f.t);
    return tap_done();
}
