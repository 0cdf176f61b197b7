/* Higher-order derivatives (tg_grad_graph, tg_hvp, tg_jvp, tg_hessian,
 * tg_jacobian and their checks): derivatives of a cubic worked by hand to
 * the third; a gradient penalty trained through against finite
 * differences; Hessians of an MLP loss against differences of gradients and
 * symmetric; HVP, JVP and Jacobian against each other and against backward;
 * replay allocates nothing; what the dense helpers record is removed; f32
 * against f64; DOT shows the recorded gradients as their own cluster. */
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static tg_tensor *vec(tg_tape *t, const char *name, tg_dtype dt, size_t n, const double *v)
{
    tg_tensor *x = tg_param(t, name, dt, 1, (size_t[]){n});
    for (size_t i = 0; i < n; i++)
        tg_set(x, i, v[i]);
    return x;
}

static double max_rel(const double *a, const double *b, size_t n)
{
    double big = 0, e = 0;
    for (size_t i = 0; i < n; i++)
        big = fmax(big, fmax(fabs(a[i]), fabs(b[i])));
    for (size_t i = 0; i < n; i++)
        e = fmax(e, fabs(a[i] - b[i]) / (big > 0 ? big : 1));
    return e;
}

/* y = Σ x³: g = 3x², then 6x, then 6, each recorded from the last; a replay
 * with new x updates all three. */
static void cubic(void)
{
    tg_tape *t = tg_tape_new();
    const double x0[3] = {0.5, -1.25, 2};
    tg_tensor *x = vec(t, "x", TG_F64, 3, x0);
    tg_tensor *y = tg_sum(tg_mul(tg_mul(x, x), x)), *g1, *g2, *g3;
    ok(!tg_grad_graph(y, NULL, 1, &x, &g1), "grad_graph of sum(x^3)");
    ok(!tg_grad_graph(tg_sum(g1), NULL, 1, &x, &g2), "... of the sum of that");
    ok(!tg_grad_graph(tg_sum(g2), NULL, 1, &x, &g3), "... and once more (third derivative)");
    bool exact = true;
    for (int i = 0; i < 3; i++)
        exact &= tg_get(g1, (size_t)i) == 3 * x0[i] * x0[i] && tg_get(g2, (size_t)i) == 6 * x0[i] &&
                 tg_get(g3, (size_t)i) == 6;
    ok(exact, "3x^2, 6x and 6 exactly (x = 0.5, -1.25, 2)");
    tg_set(x, 1, 3);
    tg_forward(g3);
    ok(tg_get(g1, 1) == 27 && tg_get(g2, 1) == 18 && tg_get(g3, 1) == 6,
       "replayed with x[1] = 3: 27, 18, 6");
    /* gradient with respect to an intermediate and to an unrelated leaf */
    tg_tensor *u = vec(t, "unused", TG_F64, 2, (double[]){1, 2});
    tg_tensor *sq = tg_mul(x, x), *z = tg_sum(tg_exp(sq)), *gs[3];
    ok(!tg_grad_graph(z, NULL, 3, (tg_tensor *[]){sq, x, u}, gs),
       "wrt an intermediate, a leaf and an unrelated leaf at once");
    tg_forward(gs[1]);
    double xv = tg_get(x, 0);
    ok(fabs(tg_get(gs[0], 0) - exp(xv * xv)) < 1e-15 * exp(xv * xv) &&
           fabs(tg_get(gs[1], 0) - 2 * xv * exp(xv * xv)) < 1e-15 * exp(xv * xv) &&
           tg_get(gs[2], 0) == 0 && tg_get(gs[2], 1) == 0,
       "d/d(x^2) = e^(x^2), d/dx = 2x e^(x^2), unrelated: zeros");
    tg_tape_free(t);
}

/* A small MLP: X [6,4] → tanh(X W1 + b1) [6,5] → W2, b2 → softmax_ce. */
typedef struct mlp {
    tg_tape *t;
    tg_tensor *x, *lab, *w1, *b1, *w2, *b2, *logits, *loss;
} mlp;

static void mlp_build(mlp *m, tg_dtype dt, uint64_t seed, bool sigmoid)
{
    tg_rng r;
    tg_rng_seed(&r, seed);
    m->t = tg_tape_new();
    m->x = tg_input(m->t, "X", dt, 2, (size_t[]){6, 4});
    m->lab = tg_input(m->t, "labels", TG_I32, 1, (size_t[]){6});
    m->w1 = tg_param(m->t, "W1", dt, 2, (size_t[]){4, 5});
    m->b1 = tg_param(m->t, "b1", dt, 1, (size_t[]){5});
    m->w2 = tg_param(m->t, "W2", dt, 2, (size_t[]){5, 3});
    m->b2 = tg_param(m->t, "b2", dt, 1, (size_t[]){3});
    tg_tensor *ps[] = {m->x, m->w1, m->b1, m->w2, m->b2};
    for (int i = 0; i < 5; i++)
        tg_init_uniform(ps[i], &r, -1, 1);
    for (size_t i = 0; i < 6; i++)
        tg_set(m->lab, i, (double)(i % 3));
    tg_tensor *h = tg_add_bias(tg_matmul(m->x, m->w1), m->b1);
    h = sigmoid ? tg_sigmoid(h) : tg_tanh(h);
    m->logits = tg_add_bias(tg_matmul(h, m->w2), m->b2);
    m->loss = tg_softmax_ce(m->logits, m->lab, TG_MEAN);
}

/* loss + λ ‖∂loss/∂X‖²: its parameter gradients need the second derivatives
 * of every op on the path. */
static void penalty(void)
{
    mlp m;
    mlp_build(&m, TG_F64, 7, false);
    tg_tensor *gx;
    ok(!tg_grad_graph(m.loss, NULL, 1, &m.x, &gx), "input gradient recorded");
    tg_tensor *pen = tg_add(m.loss, tg_scale(tg_sum(tg_mul(gx, gx)), 0.1));
    tg_check c;
    tg_tensor *ps[] = {m.w1, m.b1, m.w2, m.b2};
    int rc = pen ? tg_check_fd(pen, 4, ps, 0, &c) : -1;
    ok(!rc && c.max_rel < 1e-7,
       "loss + 0.1 |dL/dX|^2: gradient vs finite differences %.2g (<= 1e-7)", c.max_rel);
    /* training on it replays and allocates nothing */
    tg_optim *o = tg_adam_new(m.t, 4, ps, NULL);
    double first = 0, last = 0;
    int64_t a0 = 0;
    for (int step = 0; step < 30; step++) {
        if (step == 1)
            a0 = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
        tg_replay(m.t);
        tg_zero_grad(m.t);
        tg_backward(pen);
        tg_optim_step(o);
        if (step == 0)
            first = tg_item(pen);
        last = tg_item(pen);
    }
    int64_t a1 = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
    ok(a1 == a0, "29 steps through the double backward: %lld allocations", (long long)(a1 - a0));
    ok(last < 0.95 * first, "the penalised loss falls: %.4f -> %.4f (30 Adam steps)", first, last);
    tg_optim_free(o);
    tg_tape_free(m.t);
}

/* The Hessian of the loss in (W2, b2) and in (W1, b1): tape vs differences
 * of the gradient, symmetric; HVP, the backward-based HVP, JVP, Jacobian. */
static void hessians(void)
{
    for (int act = 0; act < 2; act++) {
        mlp m;
        mlp_build(&m, TG_F64, 11 + (uint64_t)act, act == 1);
        tg_tensor *out2[] = {m.w2, m.b2}, *in1[] = {m.w1, m.b1};
        tg_check c;
        double asym = 1;
        size_t before = tg_tape_nodes(m.t);
        int rc = tg_check_hessian_fd(m.loss, 2, out2, 0, &c, &asym);
        ok(!rc && c.max_rel < 1e-7 && asym < 1e-12,
           "%s MLP: Hessian in (W2, b2) (18x18) vs differences %.2g (<= 1e-7), asymmetry %.2g",
           act ? "sigmoid" : "tanh", c.max_rel, asym);
        rc = tg_check_hessian_fd(m.loss, 2, in1, 0, &c, &asym);
        ok(!rc && c.max_rel < 1e-7 && asym < 1e-12,
           "... in (W1, b1) (25x25) vs differences %.2g, asymmetry %.2g", c.max_rel, asym);
        ok(tg_tape_nodes(m.t) == before, "the checks leave the tape as it was (%zu nodes)", before);

        /* dense Hessian in all four, then HVPs against it */
        tg_tensor *all[] = {m.w1, m.b1, m.w2, m.b2};
        enum { N = 20 + 5 + 15 + 3 };
        double *H = malloc(N * N * sizeof *H), v[N], hv_ref[N], got[N];
        ok(!tg_hessian(m.loss, 4, all, H) && tg_tape_nodes(m.t) == before,
           "tg_hessian (43x43) records nothing that stays");
        tg_rng r;
        tg_rng_seed(&r, 5);
        for (int i = 0; i < N; i++)
            v[i] = tg_rng_uniform(&r) * 2 - 1;
        for (int i = 0; i < N; i++) {
            hv_ref[i] = 0;
            for (int j = 0; j < N; j++)
                hv_ref[i] += H[i * N + j] * v[j];
        }
        rc = tg_check_hvp(m.loss, 4, all, v, hv_ref, &c);
        ok(!rc && c.max_rel < 1e-12,
           "tg_check_hvp: H v against H from tg_hessian times v: %.2g", c.max_rel);
        rc = tg_check_hessian(m.loss, 4, all, H, &c);
        ok(!rc && c.max_rel == 0,
           "tg_check_hessian of the tape's own Hessian: exact");
        /* a wrong hand Hessian is caught, at the right place */
        H[3 * N + 7] += 1e-3;
        rc = tg_check_hessian(m.loss, 4, all, H, &c);
        ok(!rc && c.abs_i == 3 * N + 7 && c.max_abs > 9e-4,
           "a Hessian off by 1e-3 at (3, 7) is reported there (index %zu)", c.abs_i);
        H[3 * N + 7] -= 1e-3;

        /* HVP recorded, and by backward through ⟨g, v⟩ */
        tg_tensor *vt[4], *hv[4], *g[4];
        size_t at = 0;
        for (int k = 0; k < 4; k++) {
            size_t s[2] = {tg_dim(all[k], 0), tg_dim(all[k], 1)};
            vt[k] = tg_input(m.t, "v", TG_F64, tg_rank(all[k]), s);
            tg_copy_in(vt[k], v + at, TG_F64, tg_size(all[k]));
            at += tg_size(all[k]);
        }
        ok(!tg_hvp(m.loss, 4, all, vt, hv), "tg_hvp records");
        ok(!tg_grad_graph(m.loss, NULL, 4, all, g), "gradient recorded");
        tg_tensor *s = NULL;
        for (int k = 0; k < 4; k++) {
            tg_tensor *d = tg_sum(tg_mul(g[k], vt[k]));
            s = s ? tg_add(s, d) : d;
        }
        tg_replay(m.t);
        tg_zero_grad(m.t);
        tg_backward(s);
        double e1 = 0, e2 = 0;
        at = 0;
        for (int k = 0; k < 4; k++) {
            tg_copy_out(hv[k], got + at, TG_F64, tg_size(all[k]));
            for (size_t i = 0; i < tg_size(all[k]); i++)
                e2 = fmax(e2, fabs(tg_grad_get(all[k], i) - hv_ref[at + i]));
            at += tg_size(all[k]);
        }
        e1 = max_rel(got, hv_ref, N);
        ok(e1 < 1e-13 && e2 < 1e-13, "recorded HVP %.2g and backward of <g, v> %.2g agree with H v",
           e1, e2);

        /* Jacobian of the logits in W2 (18 x 15) against backward rows, and
         * JVP against J u */
        double J[18 * 15], u[15], ju_ref[18];
        rc = tg_jacobian(m.logits, 1, &m.w2, J);
        ok(!rc, "tg_jacobian (18x15)");
        double rowerr = 0;
        for (int i = 0; i < 18; i++) {
            double e[18] = {0};
            e[i] = 1;
            tg_zero_grad(m.t);
            tg_backward_vjp(m.logits, e);
            for (int j = 0; j < 15; j++)
                rowerr = fmax(rowerr, fabs(J[i * 15 + j] - tg_grad_get(m.w2, (size_t)j)));
        }
        ok(rowerr < 1e-15, "each row = backward with e_i: %.2g", rowerr);
        tg_tensor *ut = tg_input(m.t, "u", TG_F64, 2, (size_t[]){5, 3});
        for (int j = 0; j < 15; j++)
            tg_set(ut, (size_t)j, u[j] = cos(j));
        for (int i = 0; i < 18; i++) {
            ju_ref[i] = 0;
            for (int j = 0; j < 15; j++)
                ju_ref[i] += J[i * 15 + j] * u[j];
        }
        tg_tensor *ju = tg_jvp(m.logits, 1, &m.w2, &ut);
        double jv[18] = {0};
        rc = !ju || tg_forward(ju) || tg_copy_out(ju, jv, TG_F64, 18);
        double je = max_rel(jv, ju_ref, 18);
        ok(!rc && je < 1e-14, "tg_jvp = J u: %.2g", je);
        free(H);
        tg_tape_free(m.t);
    }
}

/* f32 against f64 on the same values; threads give the same bits. */
static void precision_threads(void)
{
    mlp a, b;
    mlp_build(&a, TG_F64, 3, false);
    mlp_build(&b, TG_F32, 3, false);
    for (size_t i = 0; i < tg_tape_leaves(a.t); i++) {
        tg_tensor *la = tg_tape_leaf(a.t, i), *lb = tg_tape_leaf(b.t, i);
        double *tmp = malloc(tg_size(la) * sizeof *tmp);
        tg_copy_out(la, tmp, TG_F64, tg_size(la));
        tg_copy_in(lb, tmp, TG_F64, tg_size(lb));
        free(tmp);
    }
    tg_tensor *pa[] = {a.w1, a.w2}, *pb[] = {b.w1, b.w2};
    double Ha[35 * 35], Hb[35 * 35];
    ok(!tg_hessian(a.loss, 2, pa, Ha) && !tg_hessian(b.loss, 2, pb, Hb),
       "Hessians in f64 and f32");
    double big = 0, e = 0;
    for (int i = 0; i < 35 * 35; i++) {
        big = fmax(big, fabs(Ha[i]));
        e = fmax(e, fabs(Ha[i] - Hb[i]));
    }
    ok(e < 1e-5 * big, "f32 Hessian within %.2g of f64's (scale %.2g)", e, big);
    int old = tg_get_threads();
    double H2[35 * 35];
    tg_set_threads(2);
    int rc = tg_hessian(a.loss, 2, pa, H2);
    tg_set_threads(1);
    double H1[35 * 35];
    rc |= tg_hessian(a.loss, 2, pa, H1);
    tg_set_threads(old);
    ok(!rc && !memcmp(H1, H2, sizeof H1), "the Hessian is bit-identical with 1 and 2 threads");
    tg_tape_free(a.t);
    tg_tape_free(b.t);
}

/* DOT: the recorded gradient's nodes sit in a dashed "grad" cluster. */
static void dot(void)
{
    mlp m;
    mlp_build(&m, TG_F64, 1, false);
    tg_tensor *g;
    tg_grad_graph(m.loss, NULL, 1, &m.w2, &g);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tg_dot_opts o = {0};
    o.clusters = true;
    int rc = tg_dot_write(f, m.t, tg_sum(tg_mul(g, g)), &o);
    fclose(f);
    ok(!rc && buf && strstr(buf, "label=\"grad\"") && strstr(buf, "rounded,filled,dashed") &&
           strstr(buf, "#fcc2d7"),
       "DOT of a double backward: a dashed 'grad' cluster, gradient nodes in pink");
    free(buf);
    tg_tape_free(m.t);
}

static void errors(void)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *x = vec(t, "x", TG_F64, 2, (double[]){1, 2}), *g;
    tg_checkpoint_begin(t);
    tg_tensor *h = tg_tanh(tg_mul(x, x));
    tg_checkpoint_end(t, 1, &h);
    tg_tensor *y = tg_sum(h);
    int rc = tg_grad_graph(y, NULL, 1, &x, &g);
    const char *msg = tg_tape_error(t);
    ok(rc == -1 && msg && strstr(msg, "is in checkpoint segment 1, whose values are not kept"),
       "a checkpointed segment is refused: %s", msg ? msg : "(no message)");
    tg_tape_free(t);
}

int main(void)
{
    cubic();
    penalty();
    hessians();
    precision_threads();
    dot();
    errors();
    return tap_done();
}
