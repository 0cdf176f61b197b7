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

int main(void)
{
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
    ok(tg_get(s.W, 2) == w0 && tg_grad_get(s.W, 2) == g0 && tg_item(s.E) == e0,
       "values, gradients and the loss are untouched");
    ok(tg_grad_get(s.x, 0) == 0 && !tg_requires_grad(s.x), "x still requires no gradient");

    /* an f32 graph is checked on an f64 copy */
    setup f = make(TG_F32, 3);
    tg_tensor *fw[1] = {f.W};
    ok(tg_check_fd(f.E, 1, fw, 0, &c) == 0 && c.max_rel < 1e-8,
       "f32 graph promoted to f64: max rel %.2g", c.max_rel);
    ok(tg_tape_nodes(f.t) == 3, "the caller's tape is unchanged (3 nodes)");

    /* FD disagrees with the tape at a kink: relu at exactly 0 */
    tg_tape *t = tg_tape_new();
    tg_tensor *z = tg_leaf_from(t, TG_PARAM, "z", TG_F64, 1, SHAPE(3), (double[]){-1, 0, 2});
    tg_tensor *loss = tg_sum(tg_relu(z));
    tg_check_fd(loss, 1, &z, 0, &c);
    ok(c.rel_i == 1 && fabs(c.rel_ref - 0.5) < 1e-12 && c.rel_tape == 0,
       "at the kink FD gives 0.5, the tape 0: reported at z[1]");
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
