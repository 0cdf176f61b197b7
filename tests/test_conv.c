/* conv2d: forward and all three gradients against a naive reference written
 * here (f64, seven loops over the definition) on many shapes and options
 * (strides 1..3, padding 0..2, dilation 1..2, groups 1, 2 and depthwise, a
 * kernel as large as the padded input, 1×1, batch 1, one channel,
 * non-square everything, with and without bias, images large enough to be
 * cut into several column blocks, batches spread over several lanes); f32
 * against f64; finite differences on the edge configurations; 1 vs 2
 * threads bit for bit; gradients that add to another contribution (x used
 * twice, x as its own kernel); a replay that allocates nothing; the DOT
 * attributes. */
#include "tap.h"
#include "tapegrad.h"

#include <stdint.h>

static tg_rng R;

typedef struct cfg {
    size_t n, c, h, w, o, kh, kw;
    tg_conv2d_opts opt;
    bool bias;
} cfg;

static size_t out_len(size_t len, size_t k, int s, int p, int d)
{
    size_t st = s ? (size_t)s : 1, di = d ? (size_t)d : 1;
    return (len + 2 * (size_t)p - di * (k - 1) - 1) / st + 1;
}

static size_t HO(const cfg *k) { return out_len(k->h, k->kh, k->opt.stride[0], k->opt.padding[0], k->opt.dilation[0]); }
static size_t WO(const cfg *k) { return out_len(k->w, k->kw, k->opt.stride[1], k->opt.padding[1], k->opt.dilation[1]); }

/* The definition, seven loops: y = x ⋆ w + b, and for a seed dy the
 * gradients dx, dw, db (accumulated: zero them first). */
static void ref_conv(const cfg *k, const double *x, const double *w, const double *b,
                     const double *dy, double *y, double *dx, double *dw, double *db)
{
    long sh = k->opt.stride[0] ? k->opt.stride[0] : 1, sw = k->opt.stride[1] ? k->opt.stride[1] : 1;
    long dh = k->opt.dilation[0] ? k->opt.dilation[0] : 1, dwl = k->opt.dilation[1] ? k->opt.dilation[1] : 1;
    long ph = k->opt.padding[0], pw = k->opt.padding[1];
    size_t G = k->opt.groups ? (size_t)k->opt.groups : 1, cg = k->c / G, og = k->o / G;
    size_t ho = HO(k), wo = WO(k);
    for (size_t n = 0; n < k->n; n++)
        for (size_t o = 0; o < k->o; o++)
            for (size_t i = 0; i < ho; i++)
                for (size_t j = 0; j < wo; j++) {
                    size_t at = ((n * k->o + o) * ho + i) * wo + j;
                    double s = b ? b[o] : 0, g = dy ? dy[at] : 0;
                    for (size_t c = 0; c < cg; c++)
                        for (size_t p = 0; p < k->kh; p++)
                            for (size_t q = 0; q < k->kw; q++) {
                                long r = (long)i * sh + (long)p * dh - ph;
                                long t = (long)j * sw + (long)q * dwl - pw;
                                if (r < 0 || t < 0 || r >= (long)k->h || t >= (long)k->w)
                                    continue;
                                size_t xi = ((n * k->c + (o / og) * cg + c) * k->h + (size_t)r) * k->w + (size_t)t;
                                size_t wi = ((o * cg + c) * k->kh + p) * k->kw + q;
                                s += w[wi] * x[xi];
                                if (dy) {
                                    dx[xi] += w[wi] * g;
                                    dw[wi] += x[xi] * g;
                                }
                            }
                    y[at] = s;
                    if (dy && db)
                        db[o] += g;
                }
}

static double *randv(size_t n)
{
    double *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = 2 * tg_rng_uniform(&R) - 1;
    return v;
}

/* max |a − b| / max(1, max |b|) */
static double normwise(const double *a, const double *b, size_t n)
{
    double e = 0, m = 1;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs(a[i] - b[i]));
        m = fmax(m, fabs(b[i]));
    }
    return e / m;
}

typedef struct built {
    tg_tape *t;
    tg_tensor *x, *w, *b, *y, *r, *loss;
} built;

/* x, w, b as parameters holding the given values, y = conv, loss = Σ y ⊙ r */
static built build(const cfg *k, tg_dtype dt, const double *x, const double *w,
                   const double *b, const double *r)
{
    built B = {tg_tape_new(), NULL, NULL, NULL, NULL, NULL, NULL};
    size_t G = k->opt.groups ? (size_t)k->opt.groups : 1;
    B.x = tg_param(B.t, "x", dt, 4, SHAPE(k->n, k->c, k->h, k->w));
    B.w = tg_param(B.t, "w", dt, 4, SHAPE(k->o, k->c / G, k->kh, k->kw));
    tg_copy_in(B.x, x, TG_F64, tg_size(B.x));
    tg_copy_in(B.w, w, TG_F64, tg_size(B.w));
    if (k->bias) {
        B.b = tg_param(B.t, "b", dt, 1, SHAPE(k->o));
        tg_copy_in(B.b, b, TG_F64, k->o);
    }
    B.y = tg_conv2d(B.x, B.w, B.b, &k->opt);
    if (B.y) {
        B.r = tg_const(B.t, "r", dt, 4, SHAPE(k->n, k->o, HO(k), WO(k)));
        tg_copy_in(B.r, r, TG_F64, tg_size(B.y));
        B.loss = tg_sum(tg_mul(B.y, B.r));
    }
    return B;
}

static double *out64(tg_tensor *t, bool grad)
{
    double *v = malloc(tg_size(t) * sizeof *v);
    if (grad)
        tg_grad_out(t, v, TG_F64, tg_size(t));
    else
        tg_copy_out(t, v, TG_F64, tg_size(t));
    return v;
}

#define O(sh, sw, ph, pw, dh, dw, g) {{sh, sw}, {ph, pw}, {dh, dw}, g}
static const cfg cfgs[] = {
    /* n  c   h   w   o  kh kw  stride pad dil groups          bias */
    {2, 3, 5, 5, 4, 3, 3, O(1, 1, 1, 1, 1, 1, 1), true},
    {2, 3, 5, 5, 4, 3, 3, O(0, 0, 0, 0, 0, 0, 0), false},     /* all defaults (0) */
    {1, 1, 7, 6, 1, 3, 2, O(2, 3, 0, 1, 1, 1, 1), true},      /* one channel, batch 1 */
    {3, 2, 9, 8, 3, 3, 3, O(3, 2, 2, 1, 1, 1, 1), false},
    {2, 4, 8, 7, 6, 3, 2, O(1, 2, 2, 2, 2, 2, 2), true},      /* dilation, groups 2 */
    {2, 4, 6, 6, 4, 3, 3, O(1, 1, 1, 1, 1, 1, 4), true},      /* depthwise */
    {2, 3, 6, 5, 6, 2, 3, O(2, 1, 1, 0, 1, 2, 3), false},     /* depthwise ×2 */
    {2, 2, 4, 3, 3, 4, 3, O(1, 1, 0, 0, 1, 1, 1), true},      /* kernel = input */
    {2, 2, 3, 2, 3, 5, 6, O(1, 1, 1, 2, 1, 1, 1), false},     /* kernel = padded input */
    {1, 2, 3, 3, 2, 3, 3, O(3, 3, 2, 2, 2, 2, 1), true},      /* dilated = padded input */
    {2, 6, 5, 7, 4, 1, 1, O(1, 1, 0, 0, 1, 1, 1), true},      /* 1×1: no im2col */
    {2, 6, 5, 7, 4, 1, 1, O(1, 1, 0, 0, 1, 1, 2), false},     /* 1×1 grouped */
    {2, 6, 5, 7, 4, 1, 1, O(2, 1, 1, 0, 1, 1, 1), true},      /* 1×1 strided, padded */
    {1, 1, 1, 1, 1, 1, 1, O(0, 0, 0, 0, 0, 0, 0), true},      /* everything 1 */
    {1, 1, 1, 9, 2, 1, 4, O(1, 2, 0, 1, 1, 2, 1), true},      /* a single row */
    {3, 2, 9, 1, 2, 3, 1, O(2, 1, 1, 0, 1, 1, 1), false},     /* a single column */
    {20, 3, 6, 5, 2, 3, 3, O(1, 1, 1, 1, 1, 1, 1), true},     /* more samples than lanes */
    {2, 16, 40, 40, 4, 3, 3, O(1, 1, 1, 1, 1, 1, 1), true},   /* several column blocks */
    {2, 8, 33, 70, 4, 5, 3, O(2, 1, 2, 1, 1, 2, 2), false},   /* blocks, strided, grouped */
    {3, 1, 28, 28, 8, 3, 3, O(1, 1, 1, 1, 1, 1, 1), true},    /* the first conv of a CNN */
    {4, 8, 14, 14, 16, 3, 3, O(1, 1, 1, 1, 1, 1, 1), true},   /* the second, smaller */
};
#define NCFG (sizeof cfgs / sizeof cfgs[0])

static void cfg_str(const cfg *k, char *s, size_t len)
{
    snprintf(s, len, "x %zux%zux%zux%zu w %zux%zux%zu s%dx%d p%dx%d d%dx%d g%d%s", k->n, k->c,
             k->h, k->w, k->o, k->kh, k->kw, k->opt.stride[0], k->opt.stride[1],
             k->opt.padding[0], k->opt.padding[1], k->opt.dilation[0], k->opt.dilation[1],
             k->opt.groups, k->bias ? " bias" : "");
}

/* forward and gradients vs the reference, in f64 (1e-12) and f32 (1e-5) */
static void against_reference(const cfg *k)
{
    char s[160];
    cfg_str(k, s, sizeof s);
    size_t G = k->opt.groups ? (size_t)k->opt.groups : 1;
    size_t nx = k->n * k->c * k->h * k->w, nw = k->o * (k->c / G) * k->kh * k->kw;
    size_t ny = k->n * k->o * HO(k) * WO(k);
    double *x = randv(nx), *w = randv(nw), *b = randv(k->o), *r = randv(ny);
    double *y = calloc(ny, sizeof *y), *dx = calloc(nx, sizeof *dx);
    double *dw = calloc(nw, sizeof *dw), *db = calloc(k->o, sizeof *db);
    ref_conv(k, x, w, k->bias ? b : NULL, r, y, dx, dw, db);
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F32 : TG_F64;
        double tol = d ? 1e-5 : 1e-12;
        built B = build(k, dt, x, w, b, r);
        if (!ok(B.loss && tg_backward(B.loss) == 0, "%s %s builds: %s", tg_dtype_name(dt), s,
                tg_tape_error(B.t) ? tg_tape_error(B.t) : "")) {
            tg_tape_free(B.t);
            continue;
        }
        double *gy = out64(B.y, false), *gx = out64(B.x, true), *gw = out64(B.w, true);
        double ey = normwise(gy, y, ny), ex = normwise(gx, dx, nx), ew = normwise(gw, dw, nw);
        double eb = 0;
        if (k->bias) {
            double *gb = out64(B.b, true);
            eb = normwise(gb, db, k->o);
            free(gb);
        }
        bool shape = tg_dim(B.y, 0) == k->n && tg_dim(B.y, 1) == k->o &&
                     tg_dim(B.y, 2) == HO(k) && tg_dim(B.y, 3) == WO(k);
        ok(shape && ey <= tol && ex <= tol && ew <= tol && eb <= tol,
           "%s %s: y %.1e dx %.1e dw %.1e db %.1e (<= %g)", tg_dtype_name(dt), s, ey, ex, ew, eb,
           tol);
        free(gy), free(gx), free(gw);
        tg_tape_free(B.t);
    }
    free(x), free(w), free(b), free(r), free(y), free(dx), free(dw), free(db);
}

/* finite differences on the tape's own f64 graph (x, w and b) */
static void finite_differences(const cfg *k)
{
    char s[160];
    cfg_str(k, s, sizeof s);
    size_t G = k->opt.groups ? (size_t)k->opt.groups : 1;
    size_t nx = k->n * k->c * k->h * k->w, nw = k->o * (k->c / G) * k->kh * k->kw;
    size_t ny = k->n * k->o * HO(k) * WO(k);
    double *x = randv(nx), *w = randv(nw), *b = randv(k->o), *r = randv(ny);
    built B = build(k, TG_F64, x, w, b, r);
    tg_tensor *wrt[3] = {B.x, B.w, B.b};
    tg_check c;
    int rc = B.loss ? tg_check_fd(B.loss, k->bias ? 3 : 2, wrt, 0, &c) : -1;
    ok(rc == 0 && c.max_rel <= 1e-7 && c.skipped == 0, "finite differences %s: rel %.2g",
       s, rc ? 1.0 : c.max_rel);
    tg_tape_free(B.t);
    free(x), free(w), free(b), free(r);
}

/* 1 and 2 threads: the same bits, forward and backward (f32 and f64) */
static void threads_identical(tg_dtype dt)
{
    cfg k = {16, 8, 14, 14, 16, 3, 3, O(1, 1, 1, 1, 1, 1, 1), true};
    size_t nx = k.n * k.c * k.h * k.w, nw = k.o * k.c * 9, ny = k.n * k.o * 196;
    double *x = randv(nx), *w = randv(nw), *b = randv(k.o), *r = randv(ny);
    tg_set_threads(1);
    built B = build(&k, dt, x, w, b, r);
    tg_backward(B.loss);
    size_t es = dt == TG_F32 ? 4 : 8;
    tg_tensor *ts[4] = {B.y, B.x, B.w, B.b};
    void *one[4];
    for (int i = 0; i < 4; i++) {
        one[i] = malloc(tg_size(ts[i]) * es);
        memcpy(one[i], i ? tg_grad(ts[i]) : (dt == TG_F32 ? (void *)tg_data_f32(ts[i])
                                                          : (void *)tg_data_f64(ts[i])),
               tg_size(ts[i]) * es);
    }
    tg_set_threads(2);
    tg_zero_grad(B.t);
    bool same = tg_replay(B.t) == 0 && tg_backward(B.loss) == 0;
    for (int i = 0; same && i < 4; i++)
        same = !memcmp(one[i], i ? tg_grad(ts[i]) : (dt == TG_F32 ? (void *)tg_data_f32(ts[i])
                                                                   : (void *)tg_data_f64(ts[i])),
                       tg_size(ts[i]) * es);
    /* a tape recorded with 2 threads too */
    built C = build(&k, dt, x, w, b, r);
    same = same && tg_backward(C.loss) == 0 &&
           !memcmp(one[2], tg_grad(C.w), tg_size(C.w) * es) &&
           !memcmp(one[1], tg_grad(C.x), tg_size(C.x) * es);
    ok(same, "%s: y, dx, dw, db identical with 1 and 2 threads", tg_dtype_name(dt));
    for (int i = 0; i < 4; i++)
        free(one[i]);
    tg_tape_free(B.t);
    tg_tape_free(C.t);
    free(x), free(w), free(b), free(r);
}

/* x used by two convolutions (dx adds), and x as its own kernel (dx and dw
 * are one buffer) */
static void accumulation(void)
{
    cfg k = {3, 2, 5, 4, 3, 3, 2, O(1, 2, 1, 1, 1, 1, 1), false};
    size_t nx = 3 * 2 * 5 * 4, nw = 3 * 2 * 3 * 2, ny = 3 * 3 * HO(&k) * WO(&k);
    double *x = randv(nx), *w = randv(nw), *w2 = randv(nw), *r = randv(ny), *r2 = randv(ny);
    double *y = calloc(ny, 8), *dx = calloc(nx, 8), *dw = calloc(nw, 8), *dw2 = calloc(nw, 8);
    ref_conv(&k, x, w, NULL, r, y, dx, dw, NULL);
    ref_conv(&k, x, w2, NULL, r2, y, dx, dw2, NULL);
    built B = build(&k, TG_F64, x, w, NULL, r);
    tg_tensor *W2 = tg_param(B.t, "w2", TG_F64, 4, SHAPE(3, 2, 3, 2));
    tg_copy_in(W2, w2, TG_F64, nw);
    tg_tensor *R2 = tg_const(B.t, "r2", TG_F64, 4, SHAPE(3, 3, HO(&k), WO(&k)));
    tg_copy_in(R2, r2, TG_F64, ny);
    tg_tensor *loss = tg_add(B.loss, tg_sum(tg_mul(tg_conv2d(B.x, W2, NULL, &k.opt), R2)));
    bool good = loss && tg_backward(loss) == 0;
    double *gx = good ? out64(B.x, true) : NULL;
    ok(good && normwise(gx, dx, nx) <= 1e-12, "x in two convolutions: both gradients land");
    free(gx);
    /* twice more: leaves accumulate across passes */
    good = good && tg_backward(loss) == 0;
    gx = good ? out64(B.x, true) : NULL;
    for (size_t i = 0; gx && i < nx; i++)
        dx[i] *= 2;
    ok(good && normwise(gx, dx, nx) <= 1e-12, "a second backward adds to the leaves' gradients");
    free(gx);
    tg_tape_free(B.t);

    /* conv(x, x): x [2,2,3,3] is its own kernel [O=2, C=2, 3, 3] */
    cfg s = {2, 2, 3, 3, 2, 3, 3, O(1, 1, 1, 1, 1, 1, 1), false};
    size_t n = 36, ns = 2 * 2 * 3 * 3;
    double *xs = randv(n), *rs = randv(ns), *ys = calloc(ns, 8);
    double *gxs = calloc(n, 8), *gws = calloc(n, 8);
    ref_conv(&s, xs, xs, NULL, rs, ys, gxs, gws, NULL);
    tg_tape *t = tg_tape_new();
    tg_tensor *X = tg_param(t, "x", TG_F64, 4, SHAPE(2, 2, 3, 3));
    tg_copy_in(X, xs, TG_F64, n);
    tg_tensor *RS = tg_const(t, "r", TG_F64, 4, SHAPE(2, 2, 3, 3));
    tg_copy_in(RS, rs, TG_F64, ns);
    tg_tensor *l = tg_sum(tg_mul(tg_conv2d(X, X, NULL, &s.opt), RS));
    good = l && tg_backward(l) == 0;
    for (size_t i = 0; i < n; i++)
        gxs[i] += gws[i];
    gx = good ? out64(X, true) : NULL;
    ok(good && normwise(gx, gxs, n) <= 1e-12, "conv2d(x, x): dx and dw both land in x's gradient");
    free(gx);
    tg_tape_free(t);
    free(x), free(w), free(w2), free(r), free(r2), free(y), free(dx), free(dw), free(dw2);
    free(xs), free(rs), free(ys), free(gxs), free(gws);
}

/* a replayed training-like step (replay + backward) allocates nothing */
static void no_allocation(void)
{
    cfg k = {32, 8, 14, 14, 16, 3, 3, O(1, 1, 1, 1, 1, 1, 1), true};
    size_t nx = k.n * k.c * k.h * k.w, nw = k.o * k.c * 9, ny = k.n * k.o * 196;
    double *x = randv(nx), *w = randv(nw), *b = randv(k.o), *r = randv(ny);
    tg_set_threads(2);
    built B = build(&k, TG_F32, x, w, b, r);
    for (int i = 0; i < 3; i++) /* warm up the GEMM workspaces of every thread */
        tg_replay(B.t), tg_backward(B.loss);
    int64_t a0 = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
    bool fine = true;
    for (int i = 0; i < 5; i++)
        fine &= tg_replay(B.t) == 0 && tg_backward(B.loss) == 0;
    int64_t a = tg_test_control(TG_TEST_ALLOC_COUNT, 0) - a0;
    ok(fine && a == 0, "5 replays and backwards allocate nothing (%lld allocations)", (long long)a);
    tg_tape_free(B.t);
    free(x), free(w), free(b), free(r);
}

static void dot_attrs(void)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *x = tg_param(t, "x", TG_F32, 4, SHAPE(1, 4, 6, 6));
    tg_tensor *w = tg_param(t, "w", TG_F32, 4, SHAPE(8, 2, 3, 1));
    tg_conv2d_opts o = {{2, 0}, {1, 0}, {0, 2}, 2};
    tg_tensor *y = tg_conv2d(x, w, NULL, &o);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tg_dot_write(f, t, y, NULL);
    fclose(f);
    has_str(buf, "k=3x1 stride=2x1 pad=1x0 dil=1x2 groups=2", "DOT shows conv2d's attributes");
    free(buf);
    ok(y && tg_dim(y, 2) == 3 && tg_dim(y, 3) == 6, "output [1,8,3,6]");
    tg_tape_free(t);
}

int main(void)
{
    tg_rng_seed(&R, 13);
    for (size_t i = 0; i < NCFG; i++)
        against_reference(&cfgs[i]);
    tg_set_threads(2);
    for (size_t i = 0; i < NCFG; i++)
        if (i == 0 || i == 2 || i == 4 || i == 5 || i == 6 || i == 8 || i == 9 || i == 12 ||
            i == 13 || i == 14)
            finite_differences(&cfgs[i]);
    tg_set_threads(1);
    threads_identical(TG_F32);
    threads_identical(TG_F64);
    accumulation();
    no_allocation();
    dot_attrs();
    return tap_done();
}
