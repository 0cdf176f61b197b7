/* layer_norm(x, γ, β): per row of the last axis (D values), with the biased
 * variance,
 *   μ = Σx/D,  σ = √(Σ(x−μ)²/D + ε),  x̂ = (x−μ)/σ,  y = γ⊙x̂ + β
 * γ and β are [D] and optional (NULL: no scale, γ = 1; no shift, β = 0).
 * Backward, with g = γ⊙dy and means over the row:
 *   dx = (g − mean(g) − x̂·mean(g⊙x̂)) / σ
 *   dγ = Σ_rows dy⊙x̂,   dβ = Σ_rows dy
 * The inputs are x, then γ if given, then β if given (the attributes say
 * which).  Forward keeps per row μ and 1/σ, and the γ it used, in scratch, so
 * backward reads x (grad_reads) but neither γ nor β.  Rows are split over the
 * pool for y and dx (a row's sums in one thread, in a fixed order: 8 partial
 * sums, element j in sum j mod 8, added pairwise at the end); dγ and dβ
 * are split by blocks of columns, each summing over the rows in order, so
 * results do not depend on the thread count. */
#include "op.h"

#include <math.h>

typedef struct ln_attr {
    double eps;
    bool has_gamma, has_beta;
} ln_attr;
TG_ATTR_FITS(ln_attr);
#define LA(n) ATTR(n, ln_attr)

static void attr_str(const tg_node *n, char *buf, size_t len)
{
    snprintf(buf, len, "eps=%g%s%s", LA(n)->eps, LA(n)->has_gamma ? "" : " no_gamma",
             LA(n)->has_beta ? "" : " no_beta");
}

/* Input slots of γ and β (-1: not given). */
static int gamma_slot(const tg_node *n) { return LA(n)->has_gamma ? 1 : -1; }
static int beta_slot(const tg_node *n)
{
    return LA(n)->has_beta ? 1 + LA(n)->has_gamma : -1;
}

static int setup(tg_node *n)
{
    tg_tensor *x = IN(n, 0);
    if (tg_need_float(n, 0))
        return TG_ERR;
    if (n->n_in != 1 + LA(n)->has_gamma + LA(n)->has_beta)
        return tg_fail(n, "expected %d inputs, got %d", 1 + LA(n)->has_gamma + LA(n)->has_beta,
                       (int)n->n_in);
    if (x->rank < 1)
        return tg_fail(n, "input must have rank >= 1, got a scalar");
    size_t D = x->shape[x->rank - 1];
    static const char *const name[] = {"", "gamma", "beta"};
    for (int i = 1; i < n->n_in; i++) {
        tg_tensor *t = IN(n, i);
        const char *nm = name[i == beta_slot(n) ? 2 : 1];
        if (tg_need_float(n, i) || tg_need_same_dtype(n, 0, i))
            return TG_ERR;
        if (t->rank != 1 || t->shape[0] != D)
            return tg_fail(n, "%s must be [%zu] (the last axis of input %s), got %s", nm, D,
                           tg_shp_of(x).s, tg_shp_of(t).s);
    }
    double eps = LA(n)->eps;
    if (!(eps > 0 && isfinite(eps)))
        return tg_fail(n, "eps %g must be > 0 and finite", eps);
    tg_out_like(n, 0);
    /* per row μ and 1/σ, then the γ forward used (D values) */
    size_t rows = x->size / D;
    n->scratch_bytes = (2 * rows + D) * sizeof(double);
    return TG_OK;
}

typedef struct ln_ctx {
    tg_node *n;
    size_t R, D;
    void *dx, *dg, *db; /* backward: the gradients wanted (NULL: not) */
    int acc_x, acc_g, acc_b;
} ln_ctx;

/* Scratch: mean[R], istd[R], gam[D] */
#define SCR(n) ((double *)(n)->scratch)
#define CB 64 /* columns per block for dγ, dβ */

/* A row's sums are kept in NL partial sums (element j goes to lane j mod NL)
 * added up in a fixed order at the end: NL independent chains that the
 * compiler turns into vector adds, where one running sum would wait for
 * each add in turn.  The order depends on D only (never on threads). */
#define NL 8
static inline double lanes_total(const double *a)
{
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}
/* a[lane] += EXPR (in terms of the element index j) for j in [0, D) */
#define LANE_SUM(a, D, j, EXPR)                                                \
    do {                                                                       \
        size_t j0_ = 0;                                                        \
        for (; j0_ + NL <= (D); j0_ += NL)                                     \
            for (size_t l_ = 0; l_ < NL; l_++) {                               \
                size_t j = j0_ + l_;                                           \
                a[l_] += (EXPR);                                               \
            }                                                                  \
        for (size_t l_ = 0; j0_ + l_ < (D); l_++) {                            \
            size_t j = j0_ + l_;                                               \
            a[l_] += (EXPR);                                                   \
        }                                                                      \
    } while (0)

/* The kernels, compiled for the baseline and again for AVX2 and AVX-512
 * (ATTR_) and picked after the kernel path (tg_cpu_isa): the same IEEE
 * operations in the same order on every path, so every path gives the same
 * bits as long as the compiler fuses no a·b + c into an FMA (GCC does not in
 * ISO C mode, -std=c11; checked on the three paths). */
#define KERNELS(ATTR_, T, S)                                                   \
    ATTR_ static void fwd_##S(const ln_ctx *k, size_t r0, size_t r1)           \
    {                                                                          \
        tg_node *n = k->n;                                                     \
        const T *x = IN(n, 0)->data;                                           \
        const T *beta = LA(n)->has_beta ? IN(n, beta_slot(n))->data : NULL;    \
        T *y = OUT(n)->data;                                                   \
        double *mean = SCR(n), *istd = mean + k->R;                            \
        const double *gam = istd + k->R;                                       \
        size_t D = k->D;                                                       \
        for (size_t r = r0; r < r1; r++) {                                     \
            const T *xr = x + r * D;                                           \
            T *yr = y + r * D;                                                 \
            double s[NL] = {0}, v[NL] = {0};                                   \
            LANE_SUM(s, D, j, (double)xr[j]);                                  \
            double mu = lanes_total(s) / (double)D;                            \
            LANE_SUM(v, D, j, ((double)xr[j] - mu) * ((double)xr[j] - mu));    \
            double is = 1 / sqrt(lanes_total(v) / (double)D + LA(n)->eps);     \
            mean[r] = mu, istd[r] = is;                                        \
            if (beta)                                                          \
                for (size_t j = 0; j < D; j++)                                 \
                    yr[j] = (T)(((double)xr[j] - mu) * is * gam[j] + (double)beta[j]); \
            else                                                               \
                for (size_t j = 0; j < D; j++)                                 \
                    yr[j] = (T)(((double)xr[j] - mu) * is * gam[j]);           \
        }                                                                      \
    }                                                                          \
    ATTR_ static void bwd_x_##S(const ln_ctx *k, size_t r0, size_t r1)         \
    {                                                                          \
        tg_node *n = k->n;                                                     \
        const T *x = IN(n, 0)->data, *g = OUT(n)->grad;                        \
        T *dx = k->dx;                                                         \
        const double *mean = SCR(n), *istd = mean + k->R, *gam = istd + k->R;  \
        size_t D = k->D;                                                       \
        for (size_t r = r0; r < r1; r++) {                                     \
            const T *xr = x + r * D, *gr = g + r * D;                          \
            T *dr = dx + r * D;                                                \
            double mu = mean[r], is = istd[r], a[NL] = {0}, b[NL] = {0};       \
            LANE_SUM(a, D, j, gam[j] * (double)gr[j]);                         \
            LANE_SUM(b, D, j, gam[j] * (double)gr[j] * (((double)xr[j] - mu) * is)); \
            double sg = lanes_total(a) / (double)D, sgx = lanes_total(b) / (double)D; \
            if (k->acc_x)                                                      \
                for (size_t j = 0; j < D; j++) {                               \
                    double xh = ((double)xr[j] - mu) * is;                     \
                    dr[j] += (T)((gam[j] * (double)gr[j] - sg - xh * sgx) * is); \
                }                                                              \
            else                                                               \
                for (size_t j = 0; j < D; j++) {                               \
                    double xh = ((double)xr[j] - mu) * is;                     \
                    dr[j] = (T)((gam[j] * (double)gr[j] - sg - xh * sgx) * is); \
                }                                                              \
        }                                                                      \
    }                                                                          \
    ATTR_ static void bwd_gb_##S(const ln_ctx *k, size_t b0, size_t b1)        \
    {                                                                          \
        tg_node *n = k->n;                                                     \
        const T *x = IN(n, 0)->data, *g = OUT(n)->grad;                        \
        T *dg = k->dg, *db = k->db;                                            \
        const double *mean = SCR(n), *istd = mean + k->R;                      \
        for (size_t b = b0; b < b1; b++) {                                     \
            size_t j0 = b * CB, j1 = j0 + CB < k->D ? j0 + CB : k->D;          \
            double sg[CB] = {0}, sgx[CB] = {0};                                \
            for (size_t r = 0; r < k->R; r++) {                                \
                const T *xr = x + r * k->D, *gr = g + r * k->D;                \
                double mu = mean[r], is = istd[r];                             \
                for (size_t j = j0; j < j1; j++) {                             \
                    sg[j - j0] += (double)gr[j];                               \
                    sgx[j - j0] += (double)gr[j] * (((double)xr[j] - mu) * is); \
                }                                                              \
            }                                                                  \
            /* γ and β may be one tensor: β's share lands after γ's */        \
            if (dg)                                                            \
                for (size_t j = j0; j < j1; j++)                               \
                    dg[j] = k->acc_g ? dg[j] + (T)sgx[j - j0] : (T)sgx[j - j0]; \
            if (db)                                                            \
                for (size_t j = j0; j < j1; j++)                               \
                    db[j] = k->acc_b ? db[j] + (T)sg[j - j0] : (T)sg[j - j0];  \
        }                                                                      \
    }
KERNELS(, float, f32)
KERNELS(, double, f64)
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define HAVE_X86_CLONES 1
#define AVX2_ __attribute__((target("avx2")))
#define AVX512_ __attribute__((target("avx512f,avx512dq,avx512vl")))
KERNELS(AVX2_, float, f32_avx2)
KERNELS(AVX2_, double, f64_avx2)
KERNELS(AVX512_, float, f32_avx512)
KERNELS(AVX512_, double, f64_avx512)
#endif

/* Run kernel fn for the output's dtype on the kernel path (tg_cpu_isa). */
#ifdef HAVE_X86_CLONES
#define RUN(fn, k, a, b)                                                       \
    do {                                                                       \
        int isa_ = tg_cpu_isa();                                               \
        bool f_ = OUT((k)->n)->dtype == TG_F32;                                \
        if (isa_ == TG_ISA_AVX512)                                             \
            f_ ? fn##_f32_avx512(k, a, b) : fn##_f64_avx512(k, a, b);          \
        else if (isa_ == TG_ISA_AVX2)                                          \
            f_ ? fn##_f32_avx2(k, a, b) : fn##_f64_avx2(k, a, b);              \
        else                                                                   \
            f_ ? fn##_f32(k, a, b) : fn##_f64(k, a, b);                        \
    } while (0)
#else
#define RUN(fn, k, a, b) TG_DISPATCH(OUT((k)->n), fn, k, a, b)
#endif

static void fwd_range(void *ctx, size_t r0, size_t r1)
{
    RUN(fwd, (const ln_ctx *)ctx, r0, r1);
}

static void bwd_x_range(void *ctx, size_t r0, size_t r1)
{
    RUN(bwd_x, (const ln_ctx *)ctx, r0, r1);
}

static void bwd_gb_range(void *ctx, size_t b0, size_t b1)
{
    RUN(bwd_gb, (const ln_ctx *)ctx, b0, b1);
}

static size_t grain(size_t per_item)
{
    return per_item >= TG_ELEM_GRAIN ? 1 : TG_ELEM_GRAIN / per_item;
}

static void dims(const tg_node *n, ln_ctx *k)
{
    const tg_tensor *x = IN(n, 0);
    k->D = x->shape[x->rank - 1];
    k->R = x->size / k->D;
}

static int forward(tg_node *n)
{
    ln_ctx k = {.n = n};
    dims(n, &k);
    double *gam = SCR(n) + 2 * k.R;
    const tg_tensor *g = LA(n)->has_gamma ? IN(n, gamma_slot(n)) : NULL;
    for (size_t j = 0; j < k.D; j++)
        gam[j] = !g ? 1.0
                 : g->dtype == TG_F32 ? (double)((const float *)g->data)[j]
                                      : ((const double *)g->data)[j];
    tg_parallel_for(k.R, grain(k.D), fwd_range, &k);
    return TG_OK;
}

static void backward(tg_node *n)
{
    ln_ctx k = {.n = n};
    dims(n, &k);
    /* in slot order: x's share first, then γ's, then β's */
    if (tg_wants_grad(IN(n, 0)))
        k.dx = tg_grad_acc(IN(n, 0), &k.acc_x);
    if (LA(n)->has_gamma && tg_wants_grad(IN(n, gamma_slot(n))))
        k.dg = tg_grad_acc(IN(n, gamma_slot(n)), &k.acc_g);
    if (LA(n)->has_beta && tg_wants_grad(IN(n, beta_slot(n))))
        k.db = tg_grad_acc(IN(n, beta_slot(n)), &k.acc_b);
    if (k.dx)
        tg_parallel_for(k.R, grain(k.D), bwd_x_range, &k);
    if (k.dg || k.db) {
        size_t blocks = (k.D + CB - 1) / CB;
        tg_parallel_for(blocks, grain(k.R * CB), bwd_gb_range, &k);
    }
}

/* Recorded, with the forward's statistics recomputed by tg_ ops (means over
 * the last axis, kept as size 1), so the rule is differentiable again to any
 * order:  μ = mean(x), x_c = x − μ, σ = √(mean(x_c²) + ε), x̂ = x_c/σ,
 *   g = γ⊙dy,  dx = (g − mean(g) − x̂·mean(g⊙x̂)) / σ
 *   dγ = Σ_rows dy⊙x̂,  dβ = Σ_rows dy   (tg_sum_to γ's / β's shape) */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    tg_tensor *x = IN(n, 0), *sigma = NULL, *xh = NULL;
    int gs = gamma_slot(n), bs = beta_slot(n);
    bool want_x = need & 1, want_g = gs >= 0 && (need >> gs & 1);
    if (want_x || want_g) {
        tg_tensor *xc = tg_sub(x, tg_mean_axis(x, -1, true));
        sigma = tg_sqrt(tg_add_scalar(tg_mean_axis(tg_mul(xc, xc), -1, true), LA(n)->eps));
        if (!(xh = tg_div(xc, sigma)))
            return TG_ERR;
    }
    if (want_x) {
        /* g its own node even without γ (a view of dy): the terms of dx that
         * cancel (g and −mean(g), exactly at D = 1) then meet in g's
         * gradient, before β's share joins them in dy's */
        tg_tensor *g = gs >= 0 ? tg_mul(gy, IN(n, gs)) : tg_reshape(gy, gy->rank, gy->shape);
        tg_tensor *t = tg_sub(g, tg_mean_axis(g, -1, true));
        t = tg_sub(t, tg_mul(xh, tg_mean_axis(tg_mul(g, xh), -1, true)));
        if (!(gx[0] = tg_div(t, sigma)))
            return TG_ERR;
    }
    if (want_g && !(gx[gs] = tg_sum_to(tg_mul(gy, xh), IN(n, gs))))
        return TG_ERR;
    if (bs >= 0 && (need >> bs & 1) && !(gx[bs] = tg_sum_to(gy, IN(n, bs))))
        return TG_ERR;
    return TG_OK;
}

const tg_op tg_op_layer_norm = {.name = "layer_norm", .grad_reads = 0x1,
                                .attr_size = sizeof(ln_attr), .setup = setup,
                                .forward = forward, .backward = backward,
                                .attr_str = attr_str, .vjp = vjp};

tg_tensor *tg_layer_norm(tg_tensor *x, tg_tensor *gamma, tg_tensor *beta, double eps)
{
    ln_attr at = {eps, gamma != NULL, beta != NULL};
    tg_tensor *in[3] = {x};
    int k = 1;
    if (gamma)
        in[k++] = gamma;
    if (beta)
        in[k++] = beta;
    return tg_record(&tg_op_layer_norm, k, in, &at);
}
