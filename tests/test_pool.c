/* max_pool2d, avg_pool2d and leaky_relu: forward and gradient against a
 * naive reference written here (f64, windows walked over the padded input)
 * on many shapes and options, ties and NaN in max pooling, f32 vs f64,
 * finite differences, 1 vs 2 threads bit for bit, gradients that add to
 * another contribution, a replay that allocates nothing, global average
 * pooling as a mean, the DOT attributes and every error. */
#include "tap.h"
#include "tapegrad.h"

#include <stdint.h>

static tg_rng R;

/* ---- the reference ------------------------------------------------------- */

typedef struct shape4 {
    size_t n, c, h, w;
} shape4;

static size_t out_len(size_t len, int k, int s, int p)
{
    return (len + 2 * (size_t)p - (size_t)k) / (size_t)(s ? s : k) + 1;
}

/* y = pool(x) and dx = (d y / d x)ᵀ dy, accumulated into dx (zero it first).
 * Max: padding never wins; the first maximum in row-major order of the
 * window wins, a NaN beats any number (the first NaN). */
static void ref_pool(bool avg, shape4 s, const tg_pool2d_opts *o, const double *x,
                     const double *dy, double *y, double *dx)
{
    int kh = o->kernel[0], kw = o->kernel[1], ph = o->padding[0], pw = o->padding[1];
    int sh = o->stride[0] ? o->stride[0] : kh, sw = o->stride[1] ? o->stride[1] : kw;
    size_t Ho = out_len(s.h, kh, o->stride[0], ph), Wo = out_len(s.w, kw, o->stride[1], pw);
    for (size_t p = 0; p < s.n * s.c; p++) {
        const double *xp = x + p * s.h * s.w;
        double *dxp = dx + p * s.h * s.w;
        for (size_t oh = 0; oh < Ho; oh++)
            for (size_t ow = 0; ow < Wo; ow++) {
                size_t at = p * Ho * Wo + oh * Wo + ow;
                double sum = 0, best = 0;
                long arg = -1, cnt = 0;
                for (int i = 0; i < kh; i++)
                    for (int j = 0; j < kw; j++) {
                        long r = (long)oh * sh - ph + i, q = (long)ow * sw - pw + j;
                        if (r < 0 || q < 0 || r >= (long)s.h || q >= (long)s.w)
                            continue;
                        double v = xp[r * (long)s.w + q];
                        sum += v;
                        cnt++;
                        bool take = arg < 0 || (!isnan(best) && (isnan(v) || v > best));
                        if (take)
                            best = v, arg = r * (long)s.w + q;
                    }
                if (avg) {
                    double d = o->count_include_pad ? (double)kh * kw : (double)cnt;
                    y[at] = sum / d;
                    for (int i = 0; i < kh; i++)
                        for (int j = 0; j < kw; j++) {
                            long r = (long)oh * sh - ph + i, q = (long)ow * sw - pw + j;
                            if (r >= 0 && q >= 0 && r < (long)s.h && q < (long)s.w)
                                dxp[r * (long)s.w + q] += dy[at] / d;
                        }
                } else {
                    y[at] = best;
                    dxp[arg] += dy[at];
                }
            }
    }
}

/* ---- helpers ---------------------------------------------------------------- */

static tg_tensor *pool(bool avg, tg_tensor *x, const tg_pool2d_opts *o)
{
    return avg ? tg_avg_pool2d(x, o) : tg_max_pool2d(x, o);
}

/* distinct values (a shuffled ramp, 0.1 apart, centred on 0) */
static void fill_distinct(double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        v[i] = ((double)i - (double)n / 2) * 0.1;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)tg_rng_below(&R, i);
        double t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

static double max_rel_diff(const double *a, const double *b, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i])) {
            if (isnan(a[i]) != isnan(b[i]))
                return INFINITY;
            continue;
        }
        worst = fmax(worst, fabs(a[i] - b[i]) / fmax(1.0, fabs(b[i])));
    }
    return worst;
}

static const char *opts_str(const tg_pool2d_opts *o, char *buf, size_t len)
{
    snprintf(buf, len, "k%dx%d s%dx%d p%dx%d%s", o->kernel[0], o->kernel[1], o->stride[0],
             o->stride[1], o->padding[0], o->padding[1], o->count_include_pad ? " cip" : "");
    return buf;
}

/* The op on x (values v) in dtype dt, forward and backward_vjp with dy,
 * against the reference; tol relative.  Returns the worst difference. */
static double against_ref(bool avg, tg_dtype dt, shape4 s, const tg_pool2d_opts *o,
                          const double *v, const double *dy, double *worst_dx)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *x = tg_param(t, "x", dt, 4, SHAPE(s.n, s.c, s.h, s.w));
    size_t nx = s.n * s.c * s.h * s.w;
    tg_copy_in(x, v, TG_F64, nx);
    tg_tensor *y = pool(avg, x, o);
    *worst_dx = INFINITY;
    if (!y) {
        diag("error: %s", tg_tape_error(t));
        tg_tape_free(t);
        return INFINITY;
    }
    size_t ny = tg_size(y);
    /* the reference on the values the tape holds (f32: rounded) */
    double *xv = malloc(nx * sizeof *xv), *yr = malloc(ny * sizeof *yr);
    double *dxr = calloc(nx, sizeof *dxr), *got = malloc((nx > ny ? nx : ny) * sizeof *got);
    double *dyv = malloc(ny * sizeof *dyv);
    tg_copy_out(x, xv, TG_F64, nx);
    tg_tensor *g = tg_const(t, "dy", dt, 4, SHAPE(tg_dim(y, 0), tg_dim(y, 1), tg_dim(y, 2), tg_dim(y, 3)));
    tg_copy_in(g, dy, TG_F64, ny);
    tg_copy_out(g, dyv, TG_F64, ny);
    ref_pool(avg, s, o, xv, dyv, yr, dxr);
    tg_copy_out(y, got, TG_F64, ny);
    double wy = max_rel_diff(got, yr, ny);
    if (dt == TG_F32) {
        float *gf = malloc(ny * sizeof *gf);
        tg_copy_out(g, gf, TG_F32, ny);
        tg_backward_vjp(y, gf);
        free(gf);
    } else {
        tg_backward_vjp(y, dyv);
    }
    tg_grad_out(x, got, TG_F64, nx);
    *worst_dx = max_rel_diff(got, dxr, nx);
    free(xv), free(yr), free(dxr), free(got), free(dyv);
    tg_tape_free(t);
    return wy;
}

/* ---- the cases ---------------------------------------------------------------- */

static const struct {
    shape4 s;
    tg_pool2d_opts o;
    const char *what;
} shapes[] = {
    {{2, 3, 8, 8}, {{2, 2}, {2, 2}, {0, 0}, false}, "k2 s2 (the CNN case)"},
    {{2, 3, 7, 9}, {{2, 2}, {0, 0}, {0, 0}, false}, "k2 s2 odd sizes (a row and column left)"},
    {{1, 1, 5, 5}, {{3, 3}, {1, 1}, {1, 1}, false}, "stride 1 overlapping, padding 1"},
    {{1, 1, 5, 5}, {{3, 3}, {1, 1}, {1, 1}, true}, "stride 1 overlapping, padding 1, cip"},
    {{2, 2, 9, 7}, {{2, 2}, {3, 3}, {0, 0}, false}, "stride > kernel"},
    {{1, 2, 6, 5}, {{3, 2}, {2, 1}, {1, 1}, false}, "non-square kernel and stride"},
    {{1, 2, 6, 5}, {{3, 2}, {2, 1}, {1, 1}, true}, "non-square, cip"},
    {{1, 1, 3, 8}, {{1, 3}, {1, 2}, {0, 1}, false}, "kernel 1x3, padding on one axis"},
    {{2, 3, 4, 6}, {{4, 6}, {0, 0}, {0, 0}, false}, "kernel = whole input (global)"},
    {{3, 1, 5, 5}, {{3, 3}, {2, 2}, {1, 1}, true}, "batch 3, one channel, k3 s2 p1 cip"},
    {{1, 4, 1, 1}, {{1, 1}, {0, 0}, {0, 0}, false}, "1x1 planes, kernel 1"},
    {{2, 1, 6, 6}, {{4, 4}, {2, 2}, {2, 2}, false}, "padding = half the kernel"},
    {{2, 1, 6, 6}, {{4, 4}, {2, 2}, {2, 2}, true}, "padding = half the kernel, cip"},
    {{1, 1, 2, 2}, {{2, 2}, {1, 1}, {1, 1}, false}, "every window partly padding"},
    {{4, 3, 11, 13}, {{3, 3}, {3, 3}, {1, 1}, false}, "k3 s3 p1"},
    {{1, 1, 1, 7}, {{1, 2}, {1, 1}, {0, 1}, false}, "a single row"},
    {{2, 2, 5, 4}, {{2, 3}, {1, 3}, {1, 1}, false}, "stride = kernel on one axis only"},
};
#define NSHAPES ((int)(sizeof shapes / sizeof shapes[0]))

static void reference_cases(void)
{
    for (int k = 0; k < NSHAPES; k++) {
        shape4 s = shapes[k].s;
        size_t nx = s.n * s.c * s.h * s.w;
        size_t ny = s.n * s.c * out_len(s.h, shapes[k].o.kernel[0], shapes[k].o.stride[0],
                                        shapes[k].o.padding[0]) *
                    out_len(s.w, shapes[k].o.kernel[1], shapes[k].o.stride[1], shapes[k].o.padding[1]);
        double *v = malloc(nx * sizeof *v), *dy = malloc(ny * sizeof *dy);
        for (size_t i = 0; i < nx; i++)
            v[i] = tg_rng_uniform(&R) * 4 - 2;
        for (size_t i = 0; i < ny; i++)
            dy[i] = tg_rng_uniform(&R) * 2 - 1;
        char os[64];
        opts_str(&shapes[k].o, os, sizeof os);
        for (int avg = 0; avg < 2; avg++) {
            if (!avg && shapes[k].o.count_include_pad)
                continue; /* the flag does nothing to max */
            const char *op = avg ? "avg_pool2d" : "max_pool2d";
            double wdx, wy = against_ref(avg, TG_F64, s, &shapes[k].o, v, dy, &wdx);
            ok(wy <= 1e-15 && wdx <= 1e-15, "%s f64 %zux%zux%zux%zu %s (%s): y, dx = reference "
               "(%.2g, %.2g)", op, s.n, s.c, s.h, s.w, os, shapes[k].what, wy, wdx);
            wy = against_ref(avg, TG_F32, s, &shapes[k].o, v, dy, &wdx);
            ok(wy <= 1e-6 && wdx <= 1e-6, "%s f32 %s (%s): y, dx = reference on the rounded "
               "values (%.2g, %.2g)", op, os, shapes[k].what, wy, wdx);
        }
        free(v), free(dy);
    }
}

/* A constant input: every window ties; each gradient goes to the first
 * element of the window inside the input (top-left unless padded). */
static void ties(void)
{
    for (int dt = 0; dt < 2; dt++) {
        tg_dtype d = dt ? TG_F32 : TG_F64;
        /* 4x4, k2 s2: the gradient lands on (0,0), (0,2), (2,0), (2,2) */
        tg_tape *t = tg_tape_new();
        tg_tensor *x = tg_param(t, "x", d, 4, SHAPE(1, 1, 4, 4));
        tg_fill(x, 3);
        tg_tensor *y = tg_max_pool2d(x, &(tg_pool2d_opts){{2, 2}, {2, 2}, {0, 0}, false});
        tg_backward(tg_sum(y));
        static const double want[16] = {1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0};
        bool good = y != NULL;
        for (int i = 0; good && i < 16; i++)
            good = tg_grad_get(x, (size_t)i) == want[i];
        ok(good, "%s constant 4x4, k2 s2: each window's gradient on its top-left element",
           tg_dtype_name(d));
        /* 3x3, k2 s1 p1 (windows overlap and hang over the edge): window
         * (i,j) starts at (i-1, j-1) clipped, so element (r,c) gets one per
         * window whose first inside element it is */
        tg_tensor *x2 = tg_param(t, "x2", d, 4, SHAPE(1, 1, 3, 3));
        tg_fill(x2, -1);
        tg_tensor *y2 = tg_max_pool2d(x2, &(tg_pool2d_opts){{2, 2}, {1, 1}, {1, 1}, false});
        tg_backward(tg_sum(y2));
        /* 4x4 windows; first inside element of window (i,j) = (max(i-1,0), max(j-1,0)):
         * rows i=0,1 -> 0, i=2 -> 1, i=3 -> 2 (same for columns): rows 0, 1, 2
         * are first in 2, 1, 1 windows, element (r,c) in their product */
        static const double want2[9] = {4, 2, 2, 2, 1, 1, 2, 1, 1};
        good = y2 && tg_size(y2) == 16;
        for (int i = 0; good && i < 9; i++)
            good = tg_grad_get(x2, (size_t)i) == want2[i];
        ok(good, "%s constant 3x3, k2 s1 p1: the first inside element of each window takes it",
           tg_dtype_name(d));
        /* -inf everywhere: padding does not win over -inf */
        tg_fill(x2, -INFINITY);
        tg_replay(t);
        tg_zero_grad(t);
        good = tg_get(y2, 0) == -INFINITY && tg_backward(tg_sum(y2)) == 0;
        for (int i = 0; good && i < 9; i++)
            good = tg_grad_get(x2, (size_t)i) == want2[i];
        ok(good, "%s all -inf: y = -inf, the gradient still goes to inside elements",
           tg_dtype_name(d));
        tg_tape_free(t);
    }
}

/* NaN in a window: the output is NaN and the gradient goes to the first NaN. */
static void nan_windows(void)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *x = tg_leaf_from(t, TG_PARAM, "x", TG_F64, 4, SHAPE(1, 1, 2, 4),
                                (double[]){1, 9, 5, NAN, NAN, 2, NAN, 7});
    tg_tensor *y = tg_max_pool2d(x, &(tg_pool2d_opts){{2, 2}, {0, 0}, {0, 0}, false});
    ok(y && isnan(tg_get(y, 0)) && isnan(tg_get(y, 1)), "max_pool2d: a NaN in a window gives NaN");
    tg_backward_vjp(y, (double[]){10, 20});
    static const double want[8] = {0, 0, 0, 20, 10, 0, 0, 0};
    bool good = true;
    for (int i = 0; i < 8; i++)
        good = good && tg_grad_get(x, (size_t)i) == want[i];
    ok(good, "max_pool2d: the gradient goes to the first NaN of each window (row-major)");
    /* the generic path agrees (kernel 2, stride 1 over the same values) */
    tg_tensor *y1 = tg_max_pool2d(x, &(tg_pool2d_opts){{2, 2}, {1, 1}, {0, 0}, false});
    ok(y1 && tg_size(y1) == 3 && isnan(tg_get(y1, 0)) && isnan(tg_get(y1, 1)) &&
           isnan(tg_get(y1, 2)),
       "max_pool2d stride 1: NaN in every window");
    tg_tensor *a = tg_avg_pool2d(x, &(tg_pool2d_opts){{1, 2}, {0, 0}, {0, 0}, false});
    ok(a && tg_get(a, 0) == 5 && isnan(tg_get(a, 1)) && isnan(tg_get(a, 2)),
       "avg_pool2d: NaN propagates to its windows only");
    tg_tape_free(t);
}

/* f64 finite differences (relative error <= 1e-7) on inputs without ties. */
static void finite_differences(void)
{
    for (int k = 0; k < NSHAPES; k++) {
        shape4 s = shapes[k].s;
        size_t nx = s.n * s.c * s.h * s.w;
        if (nx > 400) /* the k2 s2 path's shapes are in */
            continue;
        for (int avg = 0; avg < 2; avg++) {
            tg_tape *t = tg_tape_new();
            tg_tensor *x = tg_param(t, "x", TG_F64, 4, SHAPE(s.n, s.c, s.h, s.w));
            double *v = malloc(nx * sizeof *v);
            fill_distinct(v, nx);
            tg_copy_in(x, v, TG_F64, nx);
            free(v);
            tg_tensor *y = pool(avg, x, &shapes[k].o);
            tg_tensor *r = y ? tg_const(t, "r", TG_F64, 4,
                                        SHAPE(tg_dim(y, 0), tg_dim(y, 1), tg_dim(y, 2), tg_dim(y, 3)))
                             : NULL;
            if (r)
                tg_init_uniform(r, &R, -1, 1);
            tg_tensor *loss = tg_sum(tg_mul(y, r));
            tg_check c;
            char os[64];
            bool good = loss && tg_check_fd(loss, 1, &x, 0, &c) == 0 && c.max_rel <= 1e-7 &&
                        c.skipped == 0;
            ok(good, "%s %s (%s): finite differences, max rel err %.2g",
               avg ? "avg_pool2d" : "max_pool2d", opts_str(&shapes[k].o, os, sizeof os),
               shapes[k].what, loss ? c.max_rel : -1.0);
            tg_tape_free(t);
        }
    }
}

/* 1 and 2 threads: the same bits, forward and backward, both paths. */
static void threads(void)
{
    static const tg_pool2d_opts os[] = {{{2, 2}, {2, 2}, {0, 0}, false},
                                        {{3, 3}, {1, 1}, {1, 1}, true},
                                        {{3, 2}, {2, 2}, {1, 0}, false}};
    int saved = tg_get_threads();
    for (int avg = 0; avg < 2; avg++)
        for (int k = 0; k < 3; k++)
            for (int dt = 0; dt < 2; dt++) {
                tg_dtype d = dt ? TG_F32 : TG_F64;
                size_t es = dt ? 4 : 8;
                tg_tape *t = tg_tape_new();
                tg_tensor *x = tg_param(t, "x", d, 4, SHAPE(8, 16, 28, 28));
                tg_init_uniform(x, &R, -1, 1);
                tg_set_threads(1);
                tg_tensor *y = pool(avg, x, &os[k]);
                tg_tensor *r = tg_const(t, "r", d, 4, SHAPE(tg_dim(y, 0), tg_dim(y, 1), tg_dim(y, 2), tg_dim(y, 3)));
                tg_init_uniform(r, &R, -1, 1);
                tg_tensor *loss = tg_sum(tg_mul(y, r));
                tg_backward(loss);
                size_t ny = tg_size(y), nx = tg_size(x);
                void *y1 = malloc(ny * es), *g1 = malloc(nx * es);
                memcpy(y1, dt ? (void *)tg_data_f32(y) : (void *)tg_data_f64(y), ny * es);
                memcpy(g1, tg_grad(x), nx * es);
                tg_set_threads(2);
                tg_replay(t);
                tg_zero_grad(t);
                tg_backward(loss);
                bool same = !memcmp(y1, dt ? (void *)tg_data_f32(y) : (void *)tg_data_f64(y),
                                    ny * es) &&
                            !memcmp(g1, tg_grad(x), nx * es);
                char s[64];
                ok(same, "%s %s %s 8x16x28x28: 1 and 2 threads give the same bits",
                   avg ? "avg_pool2d" : "max_pool2d", tg_dtype_name(d), opts_str(&os[k], s, sizeof s));
                free(y1), free(g1);
                tg_tape_free(t);
            }
    tg_set_threads(saved);
}

/* x feeds the pooling and another op: both gradients land (acc = 1 in the
 * pooling's backward), also twice through two poolings of x. */
static void accumulate(void)
{
    shape4 s = {2, 2, 5, 6};
    size_t nx = 120;
    static const tg_pool2d_opts os[] = {{{2, 2}, {2, 2}, {0, 0}, false},
                                        {{3, 3}, {1, 2}, {1, 1}, false}};
    for (int avg = 0; avg < 2; avg++)
        for (int k = 0; k < 2; k++) {
            tg_tape *t = tg_tape_new();
            tg_tensor *x = tg_param(t, "x", TG_F64, 4, SHAPE(2, 2, 5, 6));
            double v[120], dx[120] = {0}, yr[120], dy[120];
            for (size_t i = 0; i < nx; i++)
                v[i] = tg_rng_uniform(&R) * 4 - 2;
            tg_copy_in(x, v, TG_F64, nx);
            /* recorded first, so its backward runs after the others' */
            tg_tensor *y = pool(avg, x, &os[k]);
            tg_tensor *y2 = pool(avg, x, &os[k]);
            tg_tensor *loss = tg_add(tg_add(tg_sum(y), tg_sum(tg_scale(y2, 2))),
                                     tg_sum(tg_scale(x, 0.5)));
            tg_backward(loss);
            for (size_t i = 0; i < tg_size(y); i++)
                dy[i] = 3; /* 1 from y, 2 from y2 */
            ref_pool(avg, s, &os[k], v, dy, yr, dx);
            double worst = 0;
            for (size_t i = 0; i < nx; i++)
                worst = fmax(worst, fabs(tg_grad_get(x, i) - (dx[i] + 0.5)));
            char str[64];
            ok(worst <= 1e-14, "%s %s: two poolings and a scale of x add up (err %.2g)",
               avg ? "avg_pool2d" : "max_pool2d", opts_str(&os[k], str, sizeof str), worst);
            tg_tape_free(t);
        }
}

/* A training-like step replayed allocates nothing. */
static void replay_allocates_nothing(void)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *x = tg_input(t, "x", TG_F32, 4, SHAPE(4, 3, 12, 12));
    tg_tensor *w = tg_param(t, "w", TG_F32, 4, SHAPE(4, 3, 12, 12));
    tg_init_uniform(x, &R, -1, 1);
    tg_init_uniform(w, &R, -1, 1);
    tg_tensor *h = tg_leaky_relu(tg_mul(x, w), 0.01);
    tg_tensor *a = tg_max_pool2d(h, &(tg_pool2d_opts){{2, 2}, {2, 2}, {0, 0}, false});
    tg_tensor *b = tg_avg_pool2d(h, &(tg_pool2d_opts){{3, 3}, {1, 1}, {1, 1}, true});
    tg_tensor *c = tg_max_pool2d(a, &(tg_pool2d_opts){{3, 3}, {2, 2}, {1, 1}, false});
    tg_tensor *loss = tg_add(tg_add(tg_sum(a), tg_mean(b)), tg_sum(c));
    ok(loss && tg_backward(loss) == 0, "a graph with the three ops runs backward");
    int64_t before = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
    bool good = true;
    for (int i = 0; i < 3; i++) {
        tg_init_uniform(x, &R, -1, 1);
        tg_zero_grad(t);
        good = good && tg_replay(t) == 0 && tg_backward(loss) == 0;
    }
    int64_t after = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
    ok(good && after == before, "3 replays and backwards allocate nothing (%lld allocations)",
       (long long)(after - before));
    tg_tape_free(t);
}

/* Global average pooling two ways: avg_pool2d with the whole input as its
 * kernel, and tg_mean_axis of the [N, C, H·W] view. */
static void global_average(void)
{
    for (int dt = 0; dt < 2; dt++) {
        tg_dtype d = dt ? TG_F32 : TG_F64;
        tg_tape *t = tg_tape_new();
        tg_tensor *x = tg_param(t, "x", d, 4, SHAPE(3, 5, 7, 6));
        tg_init_uniform(x, &R, -3, 3);
        tg_tensor *a = tg_avg_pool2d(x, &(tg_pool2d_opts){{7, 6}, {0, 0}, {0, 0}, false});
        tg_tensor *m = tg_mean_axis(tg_reshape(x, 3, SHAPE(3, 5, 42)), 2, false);
        bool good = a && m && tg_rank(a) == 4 && tg_dim(a, 2) == 1 && tg_dim(a, 3) == 1 &&
                    tg_size(a) == tg_size(m);
        double worst = 0;
        for (size_t i = 0; good && i < tg_size(m); i++)
            worst = fmax(worst, fabs(tg_get(a, i) - tg_get(m, i)));
        double tol = dt ? 1e-6 : 1e-14;
        ok(good && worst <= tol, "%s global average pooling: avg_pool2d (kernel 7x6) = "
           "mean_axis of the 3x5x42 view (diff %.2g)", tg_dtype_name(d), worst);
        /* and their gradients: 1/42 everywhere */
        tg_backward(tg_sum(a));
        double gw = 0;
        for (size_t i = 0; i < tg_size(x); i++)
            gw = fmax(gw, fabs(tg_grad_get(x, i) - 1.0 / 42));
        ok(gw <= tol, "%s its gradient is 1/42 everywhere (diff %.2g)", tg_dtype_name(d), gw);
        tg_tape_free(t);
    }
}

static void leaky(void)
{
    for (int dt = 0; dt < 2; dt++) {
        tg_dtype d = dt ? TG_F32 : TG_F64;
        tg_tape *t = tg_tape_new();
        tg_tensor *x = tg_param(t, "x", d, 1, SHAPE(6));
        static const double v[6] = {-2, -0.5, 0, 0.25, 3, -0.0};
        tg_copy_in(x, v, TG_F64, 6);
        tg_tensor *y = tg_leaky_relu(x, 0.125);
        tg_backward_vjp(y, dt ? (void *)(float[]){1, 2, 4, 8, 16, 32} : (void *)(double[]){1, 2, 4, 8, 16, 32});
        static const double wy[6] = {-0.25, -0.0625, 0, 0.25, 3, 0};
        static const double wg[6] = {0.125, 0.25, 0.5, 8, 16, 4}; /* at 0: the slope side */
        bool good = y != NULL;
        for (int i = 0; good && i < 6; i++)
            good = tg_get(y, (size_t)i) == wy[i] && tg_grad_get(x, (size_t)i) == wg[i];
        ok(good, "%s leaky_relu(slope 1/8): values, and the slope's gradient at x = 0",
           tg_dtype_name(d));
        tg_tensor *z = tg_leaky_relu(x, -1); /* |x| */
        tg_tensor *n = tg_leaky_relu(tg_leaf_from(t, TG_INPUT, "n", d, 1, SHAPE(1),
                                                  dt ? (void *)(float[]){NAN} : (void *)(double[]){NAN}),
                                     0.01);
        ok(z && tg_get(z, 0) == 2 && tg_get(z, 4) == 3 && n && isnan(tg_get(n, 0)),
           "%s leaky_relu: slope -1 gives |x|, NaN stays NaN", tg_dtype_name(d));
        tg_tape_free(t);
    }
}

/* The DOT labels carry the attributes. */
static void attributes(void)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *x = tg_param(t, "x", TG_F32, 4, SHAPE(1, 2, 6, 6));
    tg_tensor *a = tg_max_pool2d(x, &(tg_pool2d_opts){{2, 2}, {0, 0}, {0, 0}, true});
    tg_tensor *b = tg_avg_pool2d(x, &(tg_pool2d_opts){{3, 2}, {1, 2}, {1, 0}, true});
    tg_tensor *c = tg_avg_pool2d(x, &(tg_pool2d_opts){{2, 2}, {2, 2}, {0, 0}, false});
    tg_tensor *loss = tg_add(tg_add(tg_sum(a), tg_sum(b)), tg_sum(c));
    char buf[8192];
    tap_dot_text(t, loss, buf, sizeof buf);
    has_str(buf, "max_pool2d(kernel=2x2 stride=2x2 pad=0x0)", "max_pool2d: stride 0 shown as the kernel; no count_include_pad");
    has_str(buf, "avg_pool2d(kernel=3x2 stride=1x2 pad=1x0 count_include_pad)", "avg_pool2d with count_include_pad");
    has_str(buf, "avg_pool2d(kernel=2x2 stride=2x2 pad=0x0)", "avg_pool2d without");
    tg_tape_free(t);
}

#define FAILS(call, msg) TAPE_FAILS(T, call, msg)

static void errors(void)
{
    tg_tape *T = tg_tape_new();
    tg_tensor *x = tg_param(T, "x", TG_F32, 4, SHAPE(2, 3, 5, 4));
    tg_tensor *m = tg_param(T, "m", TG_F32, 2, SHAPE(5, 4));
    tg_tensor *lab = tg_input(T, "lab", TG_I32, 4, SHAPE(1, 1, 2, 2));
    for (int avg = 0; avg < 2; avg++) {
        const char *op = avg ? "avg_pool2d" : "max_pool2d";
        char want[160];
#define POOL_FAILS(xx, ...)                                                    \
    do {                                                                       \
        tg_pool2d_opts o_ = __VA_ARGS__;                                       \
        FAILS(!pool(avg, xx, &o_), want);                                      \
    } while (0)
        snprintf(want, sizeof want, "%s: input must be 4-D [N,C,H,W], got 5x4", op);
        POOL_FAILS(m, {{2, 2}, {0, 0}, {0, 0}, false});
        snprintf(want, sizeof want, "%s: input 0 must be f32 or f64, not i32", op);
        POOL_FAILS(lab, {{2, 2}, {0, 0}, {0, 0}, false});
        snprintf(want, sizeof want, "%s: kernel 0x2 must be >= 1", op);
        POOL_FAILS(x, {{0, 2}, {0, 0}, {0, 0}, false});
        snprintf(want, sizeof want, "%s: kernel 2x-3 must be >= 1", op);
        POOL_FAILS(x, {{2, -3}, {0, 0}, {0, 0}, false});
        snprintf(want, sizeof want, "%s: stride -1x1 must be >= 0", op);
        POOL_FAILS(x, {{2, 2}, {-1, 1}, {0, 0}, false});
        snprintf(want, sizeof want, "%s: padding 2x0 must be between 0 and half the kernel 3x3", op);
        POOL_FAILS(x, {{3, 3}, {1, 1}, {2, 0}, false});
        snprintf(want, sizeof want, "%s: padding 0x-1 must be between 0 and half the kernel 3x3", op);
        POOL_FAILS(x, {{3, 3}, {1, 1}, {0, -1}, false});
        snprintf(want, sizeof want, "%s: kernel 6x2 is larger than the input 2x3x5x4 padded by 0x0", op);
        POOL_FAILS(x, {{6, 2}, {0, 0}, {0, 0}, false});
        snprintf(want, sizeof want, "%s: kernel 2x7 is larger than the input 2x3x5x4 padded by 1x1", op);
        POOL_FAILS(x, {{2, 7}, {0, 0}, {1, 1}, false});
        snprintf(want, sizeof want, "%s: kernel %dx1 is larger", op, INT32_MAX);
        POOL_FAILS(x, {{INT32_MAX, 1}, {INT32_MAX, 1}, {0, 0}, false});
        snprintf(want, sizeof want, "%s: padding %dx0 must be between", op, INT32_MAX / 2 + 1);
        POOL_FAILS(x, {{INT32_MAX, 1}, {0, 0}, {INT32_MAX / 2 + 1, 0}, false});
        snprintf(want, sizeof want, "%s: opts is NULL", op);
        FAILS(!pool(avg, x, NULL), want);
        ok(!pool(avg, NULL, NULL) && !tg_tape_error(T), "%s(NULL, ...) is NULL, no new error", op);
        /* the extremes that are valid */
        tg_tensor *y = pool(avg, x, &(tg_pool2d_opts){{5, 4}, {INT32_MAX, INT32_MAX}, {2, 2}, false});
        ok(y && tg_dim(y, 2) == 1 && tg_dim(y, 3) == 1, "%s: a huge stride gives one window", op);
#undef POOL_FAILS
    }
    tg_tensor *d = tg_param(T, "d", TG_F64, 4, SHAPE(1, 1, 3, 3));
    FAILS(!tg_leaky_relu(lab, 0.1), "leaky_relu: input 0 must be f32 or f64, not i32");
    ok(tg_leaky_relu(d, INFINITY) != NULL, "leaky_relu accepts any slope (as PyTorch)");
    tg_tape_free(T);
}

int main(void)
{
    tg_rng_seed(&R, 13);
    reference_cases();
    ties();
    nan_windows();
    finite_differences();
    threads();
    accumulate();
    replay_allocates_nothing();
    global_average();
    leaky();
    attributes();
    errors();
    return tap_done();
}
