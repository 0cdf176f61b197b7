/* Second-order derivatives, three ways (the README's "Second order"):
 *
 *  1. Newton's method for L2-regularised logistic regression.  The Hessian
 *     derived by hand, H = Xᵀ diag(p(1−p)) X / N + λI, is checked against the
 *     tape's (tg_check_hessian), then Newton steps w ← w − H⁻¹∇L show the
 *     gradient norm falling quadratically.
 *  2. Seed 002's network (sigmoid layers, L = ½ Σ (t − h₂)²): the Hessian of
 *     L with respect to the output weights W₂, derived by hand,
 *       ∂²L/∂W₂[j,k]∂W₂[j',k'] = [k = k'] Σₙ h₁[n,j] h₁[n,j'] (s'² + (h₂ − t) s'(1 − 2h₂))
 *     with s' = h₂(1 − h₂) at [n,k], and its Gauss-Newton part (the s'² term)
 *     against JᵀJ from the tape's Jacobian of h₂ (tg_jacobian).
 *  3. A gradient penalty (double backpropagation): the two spirals of the
 *     README's first example trained on L + λ‖∂L/∂x‖², whose gradient needs
 *     the second derivatives of every op; the input gradients shrink.
 *
 * Exit status 0 when every check holds (the test suite runs it). */
#include <tapegrad.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846

static int failures;

static void check(bool cond, const char *what)
{
    printf("  %s %s\n", cond ? "ok:  " : "FAIL:", what);
    failures += !cond;
}

static double sigmoid(double z) { return 1 / (1 + exp(-z)); }

/* Solve A x = b for a symmetric positive definite A (n×n, overwritten by its
 * Cholesky factor); b becomes x. */
static void cholesky_solve(int n, double *A, double *b)
{
    for (int j = 0; j < n; j++) {
        for (int k = 0; k < j; k++)
            A[j * n + j] -= A[j * n + k] * A[j * n + k];
        A[j * n + j] = sqrt(A[j * n + j]);
        for (int i = j + 1; i < n; i++) {
            for (int k = 0; k < j; k++)
                A[i * n + j] -= A[i * n + k] * A[j * n + k];
            A[i * n + j] /= A[j * n + j];
        }
    }
    for (int i = 0; i < n; i++) { /* L y = b */
        for (int k = 0; k < i; k++)
            b[i] -= A[i * n + k] * b[k];
        b[i] /= A[i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) { /* Lᵀ x = y */
        for (int k = i + 1; k < n; k++)
            b[i] -= A[k * n + i] * b[k];
        b[i] /= A[i * n + i];
    }
}

/* ---- 1. Newton for logistic regression ---------------------------------- */

static void newton(void)
{
    enum { N = 400, D = 6 };
    const double lambda = 1e-2;
    printf("1. Newton's method, L2-regularised logistic regression (N = %d, d = %d, lambda = %g)\n",
           N, D, lambda);
    tg_tape *t = tg_tape_new();
    tg_tensor *X = tg_input(t, "X", TG_F64, 2, (size_t[]){N, D});
    tg_tensor *y = tg_input(t, "y", TG_F64, 2, (size_t[]){N, 1});
    tg_tensor *w = tg_param(t, "w", TG_F64, 2, (size_t[]){D, 1});
    tg_rng r;
    tg_rng_seed(&r, 2026);
    double *x = tg_data_f64(X), *yy = tg_data_f64(y);
    for (int n = 0; n < N; n++) {
        double z = 0.5;
        for (int j = 0; j < D; j++) {
            x[n * D + j] = j == 0 ? 1 : tg_rng_normal(&r);
            z += x[n * D + j] * (j % 2 ? 1.5 : -0.75);
        }
        yy[n] = tg_rng_uniform(&r) < sigmoid(z) ? 1 : 0;
    }
    tg_tensor *loss = tg_add(tg_bce_logits(tg_matmul(X, w), y, TG_MEAN), tg_l2(w, lambda));

    /* the hand-derived Hessian at w = 0.1·(1, 2, ...) */
    double *wv = tg_data_f64(w), H[D * D];
    for (int j = 0; j < D; j++)
        wv[j] = 0.1 * (j + 1);
    tg_forward(loss);
    for (int a = 0; a < D; a++)
        for (int b = 0; b < D; b++) {
            double s = 0;
            for (int n = 0; n < N; n++) {
                double z = 0;
                for (int j = 0; j < D; j++)
                    z += x[n * D + j] * wv[j];
                double p = sigmoid(z);
                s += x[n * D + a] * p * (1 - p) * x[n * D + b];
            }
            H[a * D + b] = s / N + (a == b ? lambda : 0);
        }
    tg_check c;
    int rc = tg_check_hessian(loss, 1, &w, H, &c);
    tg_check_print(stdout, "  hand Hessian vs tape", &c);
    check(!rc && c.max_rel < 1e-10, "X^T diag(p(1-p)) X / N + lambda I is the tape's Hessian (<= 1e-10)");

    /* Newton from w = 0 */
    memset(wv, 0, D * sizeof *wv);
    double prev = INFINITY, gn = 0;
    bool quadratic = true;
    for (int it = 0; it < 8; it++) {
        tg_forward(loss);
        tg_zero_grad(t);
        tg_backward(loss);
        double g[D];
        gn = 0;
        for (int j = 0; j < D; j++) {
            g[j] = tg_grad_get(w, (size_t)j);
            gn += g[j] * g[j];
        }
        gn = sqrt(gn);
        printf("  iteration %d: loss %.15f  |grad| %.3e", it, tg_item(loss), gn);
        if (isfinite(prev) && prev < 0.05 && gn > 0)
            printf("  |grad| / |previous|^2 = %.2f", gn / (prev * prev));
        printf("\n");
        /* quadratic once close: |g_k+1| <= C |g_k|^2 (C = 10 is generous) */
        if (isfinite(prev) && prev < 0.05 && gn > 1e-15 && gn > 10 * prev * prev)
            quadratic = false;
        if (gn < 1e-15)
            break;
        prev = gn;
        double Ht[D * D];
        tg_hessian(loss, 1, &w, Ht);
        cholesky_solve(D, Ht, g);
        for (int j = 0; j < D; j++)
            wv[j] -= g[j];
    }
    check(gn < 1e-12 && quadratic, "Newton converges quadratically to |grad| < 1e-12");
    tg_tape_free(t);
}

/* ---- 2. seed 002: the Hessian in W2 and its Gauss-Newton part ------------ */

static void seed002(void)
{
    enum { N = 7, I = 4, HID = 5, O = 3 };
    printf("2. Seed 002 (4-5-3 sigmoid network, L = 1/2 sum (t - h2)^2, n = %d): Hessian in W2\n", N);
    tg_tape *t = tg_tape_new();
    tg_tensor *z0 = tg_input(t, "z0", TG_F64, 2, (size_t[]){N, I});
    tg_tensor *tt = tg_input(t, "t", TG_F64, 2, (size_t[]){N, O});
    tg_tensor *w1 = tg_param(t, "w1", TG_F64, 2, (size_t[]){I, HID});
    tg_tensor *b1 = tg_param(t, "b1", TG_F64, 1, (size_t[]){HID});
    tg_tensor *w2 = tg_param(t, "w2", TG_F64, 2, (size_t[]){HID, O});
    tg_tensor *b2 = tg_param(t, "b2", TG_F64, 1, (size_t[]){O});
    tg_rng r;
    tg_rng_seed(&r, 2);
    tg_tensor *all[] = {z0, tt, w1, b1, w2, b2};
    for (int i = 0; i < 6; i++)
        tg_init_uniform(all[i], &r, i == 1 ? 0 : -1, 1);
    tg_tensor *h1 = tg_sigmoid(tg_add_bias(tg_matmul(tg_sigmoid(z0), w1), b1));
    tg_tensor *h2 = tg_sigmoid(tg_add_bias(tg_matmul(h1, w2), b2));
    tg_tensor *loss = tg_scale(tg_sum(tg_mul(tg_sub(tt, h2), tg_sub(tt, h2))), 0.5);
    tg_forward(loss);

    enum { P = HID * O };
    double H[P * P], GN[P * P];
    for (int j = 0; j < HID; j++)
        for (int k = 0; k < O; k++)
            for (int jj = 0; jj < HID; jj++)
                for (int kk = 0; kk < O; kk++) {
                    double full = 0, gn = 0;
                    for (int n = 0; k == kk && n < N; n++) {
                        double h = tg_get(h2, (size_t)(n * O + k)), s = h * (1 - h);
                        double a = tg_get(h1, (size_t)(n * HID + j)) * tg_get(h1, (size_t)(n * HID + jj));
                        gn += a * s * s;
                        full += a * (s * s + (h - tg_get(tt, (size_t)(n * O + k))) * s * (1 - 2 * h));
                    }
                    H[(j * O + k) * P + jj * O + kk] = full;
                    GN[(j * O + k) * P + jj * O + kk] = gn;
                }
    tg_check c;
    int rc = tg_check_hessian(loss, 1, &w2, H, &c);
    tg_check_print(stdout, "  hand Hessian vs tape", &c);
    check(!rc && c.max_rel < 1e-10, "the hand-derived Hessian in W2 (15x15) is the tape's (<= 1e-10)");
    double asym = 1;
    rc = tg_check_hessian_fd(loss, 1, &w2, 0, &c, &asym);
    tg_check_print(stdout, "  tape Hessian vs differences of its gradient", &c);
    check(!rc && c.max_rel < 1e-7 && asym < 1e-12,
          "the tape's Hessian agrees with differences of the gradient and is symmetric");
    /* Gauss-Newton: JᵀJ with J = ∂h2/∂W2 (21 x 15), from the tape */
    double J[N * O * P], JtJ[P * P];
    rc = tg_jacobian(h2, 1, &w2, J);
    for (int a = 0; a < P; a++)
        for (int b = 0; b < P; b++) {
            double s = 0;
            for (int i = 0; i < N * O; i++)
                s += J[i * P + a] * J[i * P + b];
            JtJ[a * P + b] = s;
        }
    double e = 0, big = 0, resid = 0;
    for (int i = 0; i < P * P; i++) {
        e = fmax(e, fabs(JtJ[i] - GN[i]));
        big = fmax(big, fabs(GN[i]));
        resid = fmax(resid, fabs(H[i] - GN[i]));
    }
    printf("  Gauss-Newton part: max |J^T J - hand| = %.2e (scale %.2e); residual term up to %.2e\n",
           e, big, resid);
    check(!rc && e <= 1e-10 * big, "the s'^2 term is J^T J of the tape's Jacobian (<= 1e-10)");
    tg_tape_free(t);
}

/* ---- 3. gradient penalty on the two spirals ------------------------------ */

typedef struct spiral_run {
    double acc, grad_norm, loss;
} spiral_run;

static spiral_run spirals(double lambda, bool verify)
{
    enum { N = 512, H = 32, STEPS = 1500 };
    tg_tape *t = tg_tape_new();
    tg_tensor *x = tg_input(t, "x", TG_F64, 2, (size_t[]){N, 2});
    tg_tensor *y = tg_input(t, "y", TG_I32, 1, (size_t[]){N});
    tg_tensor *W1 = tg_param(t, "W1", TG_F64, 2, (size_t[]){2, H});
    tg_tensor *b1 = tg_param(t, "b1", TG_F64, 1, (size_t[]){H});
    tg_tensor *W2 = tg_param(t, "W2", TG_F64, 2, (size_t[]){H, H});
    tg_tensor *b2 = tg_param(t, "b2", TG_F64, 1, (size_t[]){H});
    tg_tensor *W3 = tg_param(t, "W3", TG_F64, 2, (size_t[]){H, 2});
    tg_tensor *b3 = tg_param(t, "b3", TG_F64, 1, (size_t[]){2});
    tg_rng r;
    tg_rng_seed(&r, 42);
    for (int i = 0; i < N; i++) {
        double rr = tg_rng_uniform(&r), th = 3 * PI * rr + PI * (i % 2);
        tg_set(x, (size_t)(2 * i), rr * cos(th) + 0.02 * tg_rng_normal(&r));
        tg_set(x, (size_t)(2 * i + 1), rr * sin(th) + 0.02 * tg_rng_normal(&r));
        tg_set(y, (size_t)i, i % 2);
    }
    tg_init_he(W1, &r);
    tg_init_xavier(W2, &r);
    tg_init_xavier(W3, &r);
    tg_tensor *h = tg_tanh(tg_add_bias(tg_matmul(x, W1), b1));
    h = tg_tanh(tg_add_bias(tg_matmul(h, W2), b2));
    tg_tensor *logits = tg_add_bias(tg_matmul(h, W3), b3);
    /* per-sample losses summed, so ∂L/∂x row n is sample n's input gradient */
    tg_tensor *ce = tg_softmax_ce(logits, y, TG_SUM), *gx;
    tg_grad_graph(ce, NULL, 1, &x, &gx);
    tg_tensor *gnorm = tg_scale(tg_sum(tg_mul(gx, gx)), 1.0 / N);
    tg_tensor *loss = tg_add(tg_scale(ce, 1.0 / N), tg_scale(gnorm, lambda));
    tg_tensor *ps[] = {W1, b1, W2, b2, W3, b3};
    if (verify) {
        tg_check c;
        int rc = tg_check_fd(loss, 6, ps, 0, &c);
        tg_check_print(stdout, "  penalised loss: tape vs finite differences", &c);
        check(!rc && c.max_rel < 1e-7, "the gradient of L + lambda |dL/dx|^2 (second derivatives "
                                       "of tanh, matmul, softmax_ce ...) agrees with differences");
    }
    tg_optim *o = tg_adam_new(t, 6, ps, &(tg_adam_opts){.lr = 0.01});
    int64_t a0 = 0;
    for (int s = 0; s < STEPS; s++) {
        if (s == 1)
            a0 = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
        tg_replay(t);
        tg_zero_grad(t);
        tg_backward(loss);
        tg_optim_step(o);
    }
    int64_t a1 = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
    tg_replay(t);
    spiral_run res = {0, sqrt(tg_item(gnorm)), tg_item(tg_scale(ce, 1.0 / N))};
    int right = 0;
    for (int i = 0; i < N; i++)
        right += (tg_get(logits, (size_t)(2 * i + 1)) > tg_get(logits, (size_t)(2 * i))) == (i % 2);
    res.acc = (double)right / N;
    if (verify)
        check(a1 == a0, "training through the double backward allocates nothing per step");
    tg_optim_free(o);
    tg_tape_free(t);
    return res;
}

int main(void)
{
    newton();
    seed002();
    printf("3. Gradient penalty on the two spirals (3 layers of tanh, width 32, 1500 Adam steps)\n");
    spiral_run plain = spirals(0, false), pen = spirals(0.01, true);
    printf("  lambda = 0:    accuracy %.1f%%, cross-entropy %.4f, rms |dL_n/dx_n| %.3f\n",
           100 * plain.acc, plain.loss, plain.grad_norm);
    printf("  lambda = 0.01: accuracy %.1f%%, cross-entropy %.4f, rms |dL_n/dx_n| %.3f\n",
           100 * pen.acc, pen.loss, pen.grad_norm);
    check(pen.grad_norm < 0.5 * plain.grad_norm && pen.acc > 0.9,
          "the penalty halves the input gradients and the spirals are still learnt (> 90%)");
    printf("%s\n", failures ? "SOME CHECKS FAILED" : "all checks passed");
    return failures != 0;
}
