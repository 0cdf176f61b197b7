/* The elementwise ops of the sequence models (gelu, silu, softplus, sqrt,
 * abs, pow, clamp, add_scalar) at their edges, in f32 and f64: large |x|
 * (values and gradients against 40-digit references computed with Python's
 * mpmath, relative error), ±∞ and NaN, the gradients at the kinks and
 * bounds, pow's special exponents, a large tensor split over the threads
 * against a direct loop, and the DOT attributes. */
#include "tap.h"
#include "tapegrad.h"

#include <stdlib.h>
#include <string.h>

enum { GELU, SILU, SOFTPLUS, SQRT, ABS, POW, CLAMP, ADDS };

static tg_tensor *apply(int op, tg_tensor *x, double a, double b)
{
    switch (op) {
    case GELU: return tg_gelu(x);
    case SILU: return tg_silu(x);
    case SOFTPLUS: return tg_softplus(x);
    case SQRT: return tg_sqrt(x);
    case ABS: return tg_abs(x);
    case POW: return tg_pow(x, a);
    case CLAMP: return tg_clamp(x, a, b);
    default: return tg_add_scalar(x, a);
    }
}

/* y = op(x) and dx = d Σy / dx for the n values v, in dtype d */
static bool run(int op, double a, double b, tg_dtype d, const double *v, size_t n, double *y,
                double *dx)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *x = tg_param(t, "x", d, 1, SHAPE(n));
    bool good = x && tg_copy_in(x, v, TG_F64, n) == 0;
    tg_tensor *out = good ? apply(op, x, a, b) : NULL;
    good = out && tg_backward(tg_sum(out)) == 0;
    for (size_t i = 0; good && i < n; i++)
        y[i] = tg_get(out, i), dx[i] = tg_grad_get(x, i);
    if (!good)
        diag("error: %s", tg_tape_error(t) ? tg_tape_error(t) : "none");
    tg_tape_free(t);
    return good;
}

/* got == want exactly (NaN == NaN, signed zeros alike), or within a
 * relative tol */
static bool same(double got, double want, double tol)
{
    if (isnan(want))
        return isnan(got);
    if (got == want)
        return true;
    return isfinite(want) && fabs(got - want) <= tol * fabs(want);
}

static void check(const char *what, int op, double a, double b, const double *v, size_t n,
                  const double *wy, const double *wd, double tol32, double tol64)
{
    for (int dt = 0; dt < 2; dt++) {
        tg_dtype d = dt ? TG_F32 : TG_F64;
        double tol = dt ? tol32 : tol64, y[16], dx[16];
        bool good = run(op, a, b, d, v, n, y, dx);
        for (size_t i = 0; good && i < n; i++)
            good = same(y[i], wy[i], tol) && same(dx[i], wd[i], tol);
        if (!ok(good, "%s %s", tg_dtype_name(d), what))
            for (size_t i = 0; i < n; i++)
                diag("  x %g: y %.17g want %.17g, dx %.17g want %.17g", v[i], y[i], wy[i], dx[i],
                     wd[i]);
    }
}

/* CHECK(what, op, a, b, L(x...), L(y...), L(dx...), tol f32, tol f64) */
#define L(...) (__VA_ARGS__)
#define ARR(...) (double[]){__VA_ARGS__}
#define N(...) (sizeof(ARR(__VA_ARGS__)) / sizeof(double))
#define CHECK(what, op, a, b, xs, ys, ds, t32, t64)                            \
    check(what, op, a, b, ARR xs, N xs, ARR ys, ARR ds, t32, t64)

static void large(void)
{
    /* references: mpmath, 40 digits (x·erfc(−x/√2)/2, x/(1 + e^−x),
     * log1p(e^x) and their derivatives) */
    CHECK("gelu at -10, -5, ±40, ±1000, ±inf: no cancellation, no NaN", GELU, 0, 0,
          L(-10, -5, -40, 40, -1000, 1000, -INFINITY, INFINITY),
          L(-7.6198530241605261e-23, -1.4332578593959696e-6, 0, 40, 0, 1000, 0, INFINITY),
          L(-7.6184000964648141e-22, -7.1469460017922946e-6, 0, 1, 0, 1, 0, 1), 2e-5, 1e-13);
    CHECK("silu at -10, -40, 40, ±1000, ±inf", SILU, 0, 0,
          L(-10, -40, 40, -1000, 1000, -INFINITY, INFINITY),
          L(-0.00045397868702434395, -1.6993417021166356e-16, 40, 0, 1000, 0, INFINITY),
          L(-0.00040856020865708232, -1.6568581595637197e-16, 1, 0, 1, 0, 1), 1e-5, 1e-13);
    CHECK("softplus at -10, -40, 40, ±1000, ±inf", SOFTPLUS, 0, 0,
          L(-10, -40, 40, -1000, 1000, -INFINITY, INFINITY),
          L(4.5398899216864647e-5, 4.248354255291589e-18, 40, 0, 1000, 0, INFINITY),
          L(4.5397868702434395e-5, 4.248354255291589e-18, 1, 0, 1, 0, 1), 1e-5, 1e-13);
    /* f64 only: underflow regions of f32 */
    double y[2], dx[2];
    bool good = run(SILU, 0, 0, TG_F64, (double[]){-100, -700}, 2, y, dx) &&
                same(y[0], -3.720075976020836e-42, 1e-12) && y[1] < 0 && y[1] > -1e-300 &&
                same(dx[0], -3.682875216260627e-42, 1e-12);
    ok(good, "f64 silu at -100, -700: tiny, not 0 or NaN (PyTorch's values)");
    good = run(SOFTPLUS, 0, 0, TG_F64, (double[]){-100, -700}, 2, y, dx) &&
           same(y[0], 3.720075976020836e-44, 1e-12) && y[1] > 0 && y[1] < 1e-300 &&
           same(dx[0], 3.720075976020836e-44, 1e-12);
    ok(good, "f64 softplus at -100, -700: tiny, not 0 or NaN (PyTorch's values)");
}

static void kinks(void)
{
    CHECK("abs: gradient sign(x), 0 at ±0, NaN stays NaN", ABS, 0, 0, L(-2, -0.0, 0, 3, NAN),
          L(2, 0, 0, 3, NAN), L(-1, 0, 0, 1, NAN), 0, 0);
    CHECK("clamp(-1, 0.5): the bounds pass the gradient, outside 0, NaN stays NaN with 0",
          CLAMP, -1, 0.5, L(-3, -1, 0, 0.5, 2, NAN, -INFINITY),
          L(-1, -1, 0, 0.5, 0.5, NAN, -1), L(0, 1, 1, 1, 0, 0, 0), 0, 0);
    CHECK("clamp(0, inf): one-sided", CLAMP, 0, INFINITY, L(-2, 0, 1e30, INFINITY),
          L(0, 0, 1e30, INFINITY), L(0, 1, 1, 1), 1e-7, 0);
    CHECK("clamp(2, 2): lo = hi", CLAMP, 2, 2, L(1, 2, 3), L(2, 2, 2), L(0, 1, 0), 0, 0);
    CHECK("sqrt: 0 gives gradient +inf, x < 0 NaN", SQRT, 0, 0, L(0, 4, -1, INFINITY),
          L(0, 2, NAN, INFINITY), L(INFINITY, 0.25, NAN, 0), 0, 0);
    CHECK("pow p=0: 1 everywhere (NaN, 0, inf too), gradient 0", POW, 0, 0,
          L(-2, 0, NAN, INFINITY), L(1, 1, 1, 1), L(0, 0, 0, 0), 0, 0);
    CHECK("pow p=2 at 0 and -3", POW, 2, 0, L(0, -3), L(0, 9), L(0, -6), 0, 0);
    CHECK("pow p=0.5: gradient +inf at 0, NaN for x < 0", POW, 0.5, 0, L(0, -1, 4),
          L(0, NAN, 2), L(INFINITY, NAN, 0.25), 0, 0);
    CHECK("pow p=-1: 1/0 = inf, gradient -inf", POW, -1, 0, L(0, -2), L(INFINITY, -0.5),
          L(-INFINITY, -0.25), 0, 0);
    CHECK("pow p=3 for x < 0 (an integer exponent)", POW, 3, 0, L(-2), L(-8), L(12), 0, 0);
    CHECK("pow p=1: the identity, gradient 1 (0 and NaN too)", POW, 1, 0, L(0, -2, NAN),
          L(0, -2, NAN), L(1, 1, 1), 0, 0);
    CHECK("gelu at 0: gradient 1/2", GELU, 0, 0, L(0), L(0), L(0.5), 0, 0);
    CHECK("silu at 0", SILU, 0, 0, L(0, NAN), L(0, NAN), L(0.5, NAN), 0, 0);
    CHECK("softplus at 0: ln 2, gradient 1/2; NaN", SOFTPLUS, 0, 0, L(0, NAN),
          L(0.69314718055994531, NAN), L(0.5, NAN), 1e-7, 1e-16);
    CHECK("add_scalar(inf)", ADDS, INFINITY, 0, L(1, -INFINITY), L(INFINITY, NAN), L(1, 1), 0, 0);
}

/* 300,000 elements: split over the pool; every element as a plain loop */
static void big(void)
{
    size_t n = 300000;
    double *v = malloc(n * sizeof *v);
    bool good = v != NULL;
    int threads = tg_get_threads();
    tg_set_threads(4); /* split whatever the machine */
    for (size_t i = 0; good && i < n; i++)
        v[i] = ((double)(i % 1001) - 500) / 100;
    for (int op = GELU; good && op <= ADDS; op++) {
        tg_tape *t = tg_tape_new();
        tg_tensor *x = tg_param(t, "x", TG_F64, 1, SHAPE(n));
        tg_copy_in(x, v, TG_F64, n);
        tg_tensor *out = apply(op, x, op == POW ? 2 : op == CLAMP ? -1 : 0.5, 1.5);
        good = out && tg_backward(tg_sum(out)) == 0;
        for (size_t i = 0; good && i < n; i++) {
            double xi = v[i], wy, wg;
            switch (op) {
            case SQRT: wy = sqrt(xi), wg = 0.5 / sqrt(xi); break;
            case ABS: wy = fabs(xi), wg = xi > 0 ? 1 : xi < 0 ? -1 : 0; break;
            case POW: wy = xi * xi, wg = 2 * xi; break;
            case CLAMP: wy = fmin(fmax(xi, -1), 1.5), wg = xi >= -1 && xi <= 1.5; break;
            case ADDS: wy = xi + 0.5, wg = 1; break;
            default: /* gelu, silu, softplus: element 0's value for the same x */
                wy = tg_get(out, i % 1001), wg = tg_grad_get(x, i % 1001);
            }
            double gy = tg_get(out, i), gg = tg_grad_get(x, i);
            good = same(gy, wy, 1e-15) && same(gg, wg, 1e-15);
            if (!good)
                diag("op %d element %zu: x %g y %g want %g, dx %g want %g", op, i, xi, gy, wy, gg, wg);
        }
        tg_tape_free(t);
    }
    tg_set_threads(threads);
    ok(good, "300,000 elements over 4 threads: each element as alone");
    free(v);
}

static void attributes(void)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *x = tg_param(t, "x", TG_F32, 1, SHAPE(3));
    tg_tensor *loss = tg_sum(tg_add_scalar(tg_clamp(tg_pow(x, 2), -1, 1), 0.5));
    char buf[8192];
    tap_dot_text(t, loss, buf, sizeof buf);
    has_str(buf, "pow(p=2)", "DOT: pow's exponent");
    has_str(buf, "clamp(lo=-1 hi=1)", "DOT: clamp's bounds");
    has_str(buf, "add_scalar(c=0.5)", "DOT: add_scalar's constant");
    tg_tape_free(t);
}

int main(void)
{
    large();
    kinks();
    big();
    attributes();
    return tap_done();
}
