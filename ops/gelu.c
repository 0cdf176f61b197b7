/* gelu, the exact (erf) form, PyTorch's default nn.GELU():
 *   y = x·Φ(x) = ½·x·(1 + erf(x/√2)),   computed as x·½·erfc(−x/√2)
 *       (no cancellation of 1 + erf for x ≪ 0);
 *   dx = dy·(Φ(x) + x·φ(x)),  φ(x) = e^(−x²/2)/√(2π).
 * Where Φ(x) underflows to 0 (x ≪ 0, −∞ included) y is 0, and x·φ(x) is 0
 * where φ underflows (|x| large, ±∞ included), so neither makes a NaN;
 * NaN stays NaN.
 *
 * f64 calls libm's erfc and exp.  f32 uses no libm call, so that its loops
 * vectorise (libm's erfcf is a scalar call, and it was a third of a GPT
 * training step): with z = x/√2, Φ(−|x|) = ½·erfc(|z|) by the Chebyshev
 * fit of Numerical Recipes (erfcc: erfc(|z|) = t·e^(P(t) − z²) with
 * t = 1/(1 + |z|/2), relative error below 1.2e-7 for every z) and
 * Φ(|x|) = 1 − Φ(−|x|); e^ by tg_expf (vmath.h), an exponent below −87
 * (|x| > 13) taken as underflow to 0.  Forward needs one e^, backward two
 * (e^(−z²) is also φ's).  z² = x²/2 has one rounding, so at x = −10
 * (y ≈ −7.6e−23) y and dx stay within a few 1e-6 relative; the absolute
 * error of Φ is below 1e-7. */
#include "unary.h"

#define GELU_FNS(T, S)                                                         \
    static inline T gelu_cdf_##S(T x) { return (T)0.5 * erfc(-x * (T)0.70710678118654752440); } \
    static inline T gelu_y_##S(T x)                                            \
    {                                                                          \
        T p = gelu_cdf_##S(x);                                                 \
        return p == 0 ? 0 : x * p;                                             \
    }                                                                          \
    static inline T gelu_d_##S(T x)                                            \
    {                                                                          \
        T e = exp((T)-0.5 * x * x);                                            \
        return gelu_cdf_##S(x) + (e == 0 ? 0 : x * e * (T)0.39894228040143267794); \
    }
GELU_FNS(double, f64)

/* ½·erfc(|z|) = Φ(−|x|) for f32 (z = x/√2): t·e^(P(t) − z²)/2, with
 * t = 1/(1 + |z|/2) in *tp and P(t) in *pp; branch-free. */
static inline float gelu_poly_f32(float x, float *tp)
{
    float t = 1.0f / (1.0f + 0.5f * fabsf(x * 0.70710678118654752440f));
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f; /* P(1) is exactly 0 in f32: Φ(0) = ½ */
    *tp = t;
    return p;
}

static inline float gelu_y_f32(float x)
{
    float t, arg = gelu_poly_f32(x, &t) - 0.5f * x * x;
    float ex = tg_expf(arg); /* computed before the select: the loop stays branch-free */
    float tail = arg < -87.0f ? 0.0f : 0.5f * t * ex;
    float p = x < 0 ? tail : 1.0f - tail;
    return p == 0 ? 0 : x * p;
}

static inline float gelu_d_f32(float x)
{
    float zz = 0.5f * x * x, t, q = gelu_poly_f32(x, &t);
    float e = tg_expf(-zz);
    e = zz > 87.0f ? 0.0f : e; /* e^(−z²), 0 below FLT_MIN */
    float tail = 0.5f * t * e * tg_expf(q);
    float p = x < 0 ? tail : 1.0f - tail;
    return p + (e == 0 ? 0 : x * e * 0.39894228040143267794f);
}

/* The f32 loops: compiled for the baseline and again for AVX2 and AVX-512
 * (wider vectors and blends for the selects: about 2 and 4 times faster),
 * picked after the kernel path (tg_cpu_isa).  The same IEEE operations in
 * the same order on every path, so every path gives the same bits as long
 * as the compiler fuses no a·b + c into an FMA (GCC does not in ISO C mode,
 * -std=c11; checked on the three paths). */
#define GELU_KERNELS(ATTR_, S)                                                 \
    ATTR_ static void fwd32_##S(size_t len, const float *restrict x, float *restrict y) \
    {                                                                          \
        for (size_t i = 0; i < len; i++)                                       \
            y[i] = gelu_y_f32(x[i]);                                           \
    }                                                                          \
    ATTR_ static void bwd32_##S(size_t len, const float *restrict x,           \
                                const float *restrict g, float *restrict dx, int acc) \
    {                                                                          \
        if (acc)                                                               \
            for (size_t i = 0; i < len; i++)                                   \
                dx[i] += g[i] * gelu_d_f32(x[i]);                              \
        else                                                                   \
            for (size_t i = 0; i < len; i++)                                   \
                dx[i] = g[i] * gelu_d_f32(x[i]);                               \
    }                                                                          \
    ATTR_ static void d32_##S(size_t len, const float *restrict x, float *restrict y) \
    {                                                                          \
        for (size_t i = 0; i < len; i++)                                       \
            y[i] = gelu_d_f32(x[i]);                                           \
    }
GELU_KERNELS(, base)
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define HAVE_X86_CLONES 1
GELU_KERNELS(__attribute__((target("avx2"))), avx2)
GELU_KERNELS(__attribute__((target("avx512f,avx512dq,avx512vl"))), avx512)
#endif

/* y = f(x) elementwise over [b, e) of node n: f64 through f64, f32 through
 * the kernel of the CPU's ISA (k32[0] base, [1] AVX2, [2] AVX-512).  gelu's
 * forward and gelu_grad's forward are this with their own functions. */
typedef void kern32(size_t len, const float *restrict x, float *restrict y);
typedef struct map_fns {
    double (*f64)(double);
    kern32 *k32[3];
} map_fns;

static void map_range(const tg_node *n, size_t b, size_t e, const map_fns *m)
{
    const tg_tensor *x = IN(n, 0);
    const tg_tensor *y = OUT(n);
    if (y->dtype == TG_F64) {
        const double *xs = x->data;
        double *ys = y->data;
        for (size_t i = b; i < e; i++)
            ys[i] = m->f64(xs[i]);
        return;
    }
    const float *xs = (const float *)x->data + b;
    float *ys = (float *)y->data + b;
    int k = 0;
#ifdef HAVE_X86_CLONES
    int isa = tg_cpu_isa();
    k = isa == TG_ISA_AVX512 ? 2 : isa == TG_ISA_AVX2 ? 1 : 0;
#endif
    m->k32[k](e - b, xs, ys);
}

#ifdef HAVE_X86_CLONES
#define KERNS(NAME) {NAME##_base, NAME##_avx2, NAME##_avx512}
#else
#define KERNS(NAME) {NAME##_base, NAME##_base, NAME##_base}
#endif

static void fwd_range(void *ctx, size_t b, size_t e)
{
    static const map_fns fns = {gelu_y_f64, KERNS(fwd32)};
    map_range(((tg_elem_ctx *)ctx)->n, b, e, &fns);
}

static void bwd_range(void *ctx, size_t b, size_t e)
{
    tg_elem_ctx *c = ctx;
    tg_node *n = c->n;
    const tg_tensor *x = IN(n, 0), *y = OUT(n);
    if (y->dtype == TG_F64) {
        const double *xs = x->data, *g = y->grad;
        double *dx = c->dx;
        for (size_t i = b; i < e; i++) {
            double d = g[i] * gelu_d_f64(xs[i]);
            dx[i] = c->acc ? dx[i] + d : d;
        }
        return;
    }
    const float *xs = (const float *)x->data + b, *g = (const float *)y->grad + b;
    float *dx = (float *)c->dx + b;
#ifdef HAVE_X86_CLONES
    int isa = tg_cpu_isa();
    if (isa == TG_ISA_AVX512)
        bwd32_avx512(e - b, xs, g, dx, c->acc);
    else if (isa == TG_ISA_AVX2)
        bwd32_avx2(e - b, xs, g, dx, c->acc);
    else
#endif
        bwd32_base(e - b, xs, g, dx, c->acc);
}

static int forward(tg_node *n)
{
    tg_elem_ctx c = {n, NULL, 0};
    tg_parallel_for(OUT(n)->size, TG_ELEM_GRAIN, fwd_range, &c);
    return TG_OK;
}

static void backward(tg_node *n)
{
    if (!tg_wants_grad(IN(n, 0)))
        return;
    tg_elem_ctx c = {n, NULL, 0};
    c.dx = tg_grad_acc(IN(n, 0), &c.acc);
    tg_parallel_for(OUT(n)->size, TG_ELEM_GRAIN, bwd_range, &c);
}

/* Recorded: dx = dy ⊙ gelu_grad(x). */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    gx[0] = tg_mul(gy, tg_gelu_grad(IN(n, 0)));
    return gx[0] ? TG_OK : TG_ERR;
}

const tg_op tg_op_gelu = {.name = "gelu", .grad_reads = 1, .setup = tg_setup_unary,
                          .forward = forward, .backward = backward, .vjp = vjp};

tg_tensor *tg_gelu(tg_tensor *x) { return tg_record(&tg_op_gelu, 1, &x, NULL); }

/* gelu_grad: y = gelu'(x) = Φ(x) + x·φ(x), with the kernels of gelu's
 * backward (so dy·gelu_grad(x) is backward's gradient, in f32 too);
 *   dx = dy·gelu''(x) = dy·φ(x)·(2 − x²), in double for either dtype, 0
 *   where φ underflows (±∞ included; NaN stays NaN). */
static double gelu_dd(double x)
{
    double e = exp(-0.5 * x * x);
    return e == 0 ? 0 : e * (2 - x * x) * 0.39894228040143267794;
}

static void d_range(void *ctx, size_t b, size_t e)
{
    static const map_fns fns = {gelu_d_f64, KERNS(d32)};
    map_range(((tg_elem_ctx *)ctx)->n, b, e, &fns);
}

static void dd_range(void *ctx, size_t b, size_t e)
{
    tg_elem_ctx *c = ctx;
    const tg_tensor *x = IN(c->n, 0), *y = OUT(c->n);
    for (size_t i = b; i < e; i++) {
        if (y->dtype == TG_F64) {
            double d = ((const double *)y->grad)[i] * gelu_dd(((const double *)x->data)[i]);
            double *dx = c->dx;
            dx[i] = c->acc ? dx[i] + d : d;
        } else {
            float d = (float)((double)((const float *)y->grad)[i] *
                              gelu_dd((double)((const float *)x->data)[i]));
            float *dx = c->dx;
            dx[i] = c->acc ? dx[i] + d : d;
        }
    }
}

static int grad_forward(tg_node *n)
{
    tg_elem_ctx c = {n, NULL, 0};
    tg_parallel_for(OUT(n)->size, TG_ELEM_GRAIN, d_range, &c);
    return TG_OK;
}

static void grad_backward(tg_node *n)
{
    if (!tg_wants_grad(IN(n, 0)))
        return;
    tg_elem_ctx c = {n, NULL, 0};
    c.dx = tg_grad_acc(IN(n, 0), &c.acc);
    tg_parallel_for(OUT(n)->size, TG_ELEM_GRAIN, dd_range, &c);
}

/* Recorded: dx = dy ⊙ e^(−x²/2) ⊙ (x² − 2)·(−1/√(2π)) with x clamped to
 * [−40, 40] first (φ is already 0 there, and ±∞ then gives 0, not ∞·0):
 * tg_ ops with recorded gradients, so gelu is differentiable to any order. */
static int grad_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    tg_tensor *xc = tg_clamp(IN(n, 0), -40, 40);
    tg_tensor *x2 = tg_mul(xc, xc);
    tg_tensor *d = tg_mul(tg_exp(tg_scale(x2, -0.5)),
                          tg_scale(tg_add_scalar(x2, -2), -0.39894228040143267794));
    gx[0] = tg_mul(gy, d);
    return gx[0] ? TG_OK : TG_ERR;
}

const tg_op tg_op_gelu_grad = {.name = "gelu_grad", .grad_reads = 1, .setup = tg_setup_unary,
                               .forward = grad_forward, .backward = grad_backward,
                               .vjp = grad_vjp};

tg_tensor *tg_gelu_grad(tg_tensor *x) { return tg_record(&tg_op_gelu_grad, 1, &x, NULL); }
