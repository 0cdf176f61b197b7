/* batch_norm(x, γ, β, running_mean, running_var): per channel c, over the
 * M = N·H·W values x[n,c,·] of x [N,C,H,W] (M = N for x [N,C]):
 *   training  μ = Σx/M,  σ² = Σ(x−μ)²/M (biased),  x̂ = (x−μ)/√(σ²+ε),
 *             y = γ·x̂ + β,  and (PyTorch) the running statistics move:
 *             running_mean ← (1−m)·running_mean + m·μ
 *             running_var  ← (1−m)·running_var  + m·σ²·M/(M−1)  (unbiased)
 *   eval      μ, σ² = running_mean, running_var (left unchanged); y as above
 * Backward, with g = dy and sums over the channel's M values:
 *   training  dx = γ/σ·(g − Σg/M − x̂·Σ(g·x̂)/M)   (through μ and σ²)
 *   eval      dx = γ/σ·g
 *   both      dγ = Σ g·x̂,  dβ = Σ g
 * Forward keeps, per channel, the μ, 1/σ and γ it used and the mode it ran
 * in (scratch), so backward follows that forward whatever the mode is now
 * and whatever happened to γ; it reads x (grad_reads) and neither γ nor the
 * running statistics.  The running statistics are leaves the op writes
 * directly (no version bump: they are state, not an input of a gradient);
 * they can be neither op outputs nor tensors that require a gradient.
 * Channels are split over the pool; each channel's sums run in one fixed
 * order (8 interleaved double accumulators, then a fixed tree), so results
 * do not depend on the thread count. */
#include "op.h"

#include <math.h>

typedef struct bn_attr {
    double momentum; /* weight of the batch statistic in the running update */
    double eps;      /* added to the variance                               */
} bn_attr;
TG_ATTR_FITS(bn_attr);
#define BA(n) ATTR(n, bn_attr)

enum { X, GAMMA, BETA, RMEAN, RVAR };
static const char *const in_name[] = {"input", "gamma", "beta", "running_mean", "running_var"};

static void attr_str(const tg_node *n, char *buf, size_t len)
{
    snprintf(buf, len, "momentum=%g eps=%g", BA(n)->momentum, BA(n)->eps);
}

/* Channel count C, values per channel M, run length HW (H·W, or 1). */
static void dims(const tg_node *n, size_t *N, size_t *C, size_t *HW)
{
    const tg_tensor *x = IN(n, X);
    *N = x->shape[0];
    *C = x->shape[1];
    *HW = x->rank == 4 ? x->shape[2] * x->shape[3] : 1;
}

/* The running statistics stay leaves the op may write: not an op's output,
 * no gradient (checked at record time and again on every forward, since
 * tg_set_requires_grad can come later). */
static int check_running(tg_node *n)
{
    for (int i = RMEAN; i <= RVAR; i++) {
        const tg_tensor *t = IN(n, i);
        if (t->node)
            return tg_fail(n, "%s ('%s') is the output of %s (node %zu): it must be a leaf "
                              "(tg_input or tg_const) that batch_norm updates",
                           in_name[i], tg_label(t), t->node->op->name, t->node->index);
        if (t->requires_grad)
            return tg_fail(n, "%s ('%s') requires a gradient: the running statistics are "
                              "state batch_norm writes (tg_input or tg_const), not parameters",
                           in_name[i], tg_label(t));
    }
    return TG_OK;
}

/* Training needs two values per channel at least (PyTorch's rule). */
static int check_batch(tg_node *n)
{
    size_t N, C, HW;
    dims(n, &N, &C, &HW);
    if (n->out.tape->training && N * HW < 2)
        return tg_fail(n, "expected more than 1 value per channel in training mode, got input "
                          "%s (N·H·W = 1); use evaluation mode (tg_set_training) for a single "
                          "value",
                       tg_shp_of(IN(n, X)).s);
    return TG_OK;
}

static int setup(tg_node *n)
{
    tg_tensor *x = IN(n, X);
    if (tg_need_float(n, X))
        return TG_ERR;
    if (x->rank != 2 && x->rank != 4)
        return tg_fail(n, "input must be [N,C] or [N,C,H,W], got %s", tg_shp_of(x).s);
    size_t C = x->shape[1];
    for (int i = GAMMA; i <= RVAR; i++) {
        tg_tensor *t = IN(n, i);
        if (tg_need_float(n, i) || tg_need_same_dtype(n, X, i))
            return TG_ERR;
        if (t->rank != 1 || t->shape[0] != C)
            return tg_fail(n, "%s must be [%zu] (the channels of input %s), got %s", in_name[i],
                           C, tg_shp_of(x).s, tg_shp_of(t).s);
    }
    if (check_running(n))
        return TG_ERR;
    for (int i = RMEAN; i <= RVAR; i++)
        for (int j = GAMMA; j < i; j++)
            if (IN(n, i) == IN(n, j))
                return tg_fail(n, "%s and %s are the same tensor ('%s'): the running "
                                  "statistics need tensors of their own",
                               in_name[j], in_name[i], tg_label(IN(n, i)));
    double m = BA(n)->momentum, eps = BA(n)->eps;
    if (!(m >= 0 && m <= 1))
        return tg_fail(n, "momentum %g is outside [0, 1]", m);
    if (!(eps > 0 && isfinite(eps)))
        return tg_fail(n, "eps %g must be > 0 and finite", eps);
    if (check_batch(n))
        return TG_ERR;
    tg_out_like(n, X);
    /* per channel μ, 1/σ, γ as used by forward, then the mode it ran in */
    n->scratch_bytes = (3 * C + 1) * sizeof(double);
    return TG_OK;
}

/* What a channel range needs (forward and backward). */
typedef struct bn_ctx {
    tg_node *n;
    size_t N, C, HW;
    bool training;
    bool rerun;         /* a checkpoint recomputation: running stats kept */
    void *dx, *dg, *db; /* backward: the gradients wanted (NULL: not) */
    int acc_x, acc_g, acc_b;
} bn_ctx;

/* Scratch: mean[C], istd[C], gam[C], mode */
#define SCR(n) ((double *)(n)->scratch)

/* The 8 partial sums of a channel, in one fixed order. */
static double fold8(const double *a)
{
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* Loop over the M values of channel c: runs of HW values at (n·C + c)·HW.
 * BODY(index, j) runs with the run's offset in o, index within the run, and
 * j in 0..7 the accumulator: by position in blocks of 8, the tail from 0
 * (an order fixed by the shape alone). */
#define FOR_CHANNEL(k, c, o, i, BODY)                                          \
    for (size_t n_ = 0; n_ < (k)->N; n_++) {                                   \
        size_t o = (n_ * (k)->C + (c)) * (k)->HW, i = 0;                       \
        for (; i + 8 <= (k)->HW; i += 8)                                       \
            for (int j_ = 0; j_ < 8; j_++) {                                   \
                size_t ii_ = i + (size_t)j_;                                   \
                int acc_ = j_;                                                 \
                BODY(ii_, acc_)                                                \
            }                                                                  \
        for (int j_ = 0; i < (k)->HW; i++, j_++) {                             \
            size_t ii_ = i;                                                    \
            int acc_ = j_;                                                     \
            BODY(ii_, acc_)                                                    \
        }                                                                      \
    }

#define KERNELS(T, S)                                                          \
    static void fwd_##S(const bn_ctx *k, size_t c0, size_t c1)                 \
    {                                                                          \
        tg_node *n = k->n;                                                     \
        const T *x = IN(n, X)->data, *gamma = IN(n, GAMMA)->data;              \
        const T *beta = IN(n, BETA)->data;                                     \
        T *rm = IN(n, RMEAN)->data, *rv = IN(n, RVAR)->data, *y = OUT(n)->data; \
        double *mean = SCR(n), *istd = mean + k->C, *gam = istd + k->C;        \
        double M = (double)(k->N * k->HW), mom = BA(n)->momentum;              \
        for (size_t c = c0; c < c1; c++) {                                     \
            double mu, is;                                                     \
            if (k->training) {                                                 \
                double a[8] = {0}, v[8] = {0};                                 \
                FOR_CHANNEL(k, c, o, i, SUM_X)                                 \
                mu = fold8(a) / M;                                             \
                FOR_CHANNEL(k, c, o, i, SUM_D2)                                \
                double var = fold8(v) / M;                                     \
                is = 1 / sqrt(var + BA(n)->eps);                               \
                if (!k->rerun) {                                               \
                    rm[c] = (T)((1 - mom) * (double)rm[c] + mom * mu);         \
                    rv[c] = (T)((1 - mom) * (double)rv[c] + mom * var * M / (M - 1)); \
                }                                                              \
            } else {                                                           \
                mu = (double)rm[c];                                            \
                is = 1 / sqrt((double)rv[c] + BA(n)->eps);                     \
            }                                                                  \
            mean[c] = mu, istd[c] = is, gam[c] = (double)gamma[c];             \
            const T m_t = (T)mu, a_t = (T)(gam[c] * is), b_t = beta[c];        \
            for (size_t n_ = 0; n_ < k->N; n_++) {                             \
                size_t o = (n_ * k->C + c) * k->HW;                            \
                for (size_t i = 0; i < k->HW; i++)                             \
                    y[o + i] = (x[o + i] - m_t) * a_t + b_t;                   \
            }                                                                  \
        }                                                                      \
    }                                                                          \
    static void bwd_##S(const bn_ctx *k, size_t c0, size_t c1)                 \
    {                                                                          \
        tg_node *n = k->n;                                                     \
        const T *x = IN(n, X)->data, *g = OUT(n)->grad;                        \
        T *dx = k->dx, *dg = k->dg, *db = k->db;                               \
        const double *mean = SCR(n), *istd = mean + k->C, *gam = istd + k->C;  \
        double M = (double)(k->N * k->HW);                                     \
        for (size_t c = c0; c < c1; c++) {                                     \
            double mu = mean[c], is = istd[c], sg = 0, sgx = 0;                \
            if (dg || db || (dx && k->training)) {                             \
                double a[8] = {0}, v[8] = {0};                                 \
                FOR_CHANNEL(k, c, o, i, SUM_G)                                 \
                sg = fold8(a), sgx = fold8(v) * is; /* Σg, Σg·x̂ */            \
            }                                                                  \
            if (dg)                                                            \
                dg[c] = k->acc_g ? dg[c] + (T)sgx : (T)sgx;                    \
            if (db)                                                            \
                db[c] = k->acc_b ? db[c] + (T)sg : (T)sg;                      \
            if (!dx)                                                           \
                continue;                                                      \
            /* dx = A·g + B·(x − μ) + D */                                     \
            double kk = gam[c] * is;                                           \
            T A = (T)kk, B = 0, D = 0, m_t = (T)mu;                            \
            if (k->training)                                                   \
                B = (T)(-kk * is * sgx / M), D = (T)(-kk * sg / M);            \
            for (size_t n_ = 0; n_ < k->N; n_++) {                             \
                size_t o = (n_ * k->C + c) * k->HW;                            \
                for (size_t i = 0; i < k->HW; i++) {                           \
                    T v = A * g[o + i] + B * (x[o + i] - m_t) + D;             \
                    dx[o + i] = k->acc_x ? dx[o + i] + v : v;                  \
                }                                                              \
            }                                                                  \
        }                                                                      \
    }

/* the loop bodies of FOR_CHANNEL: a (and v) are the accumulators */
#define SUM_X(ii, j) a[j] += (double)x[o + (ii)];
#define SUM_D2(ii, j)                                                          \
    {                                                                          \
        double d_ = (double)x[o + (ii)] - mu;                                  \
        v[j] += d_ * d_;                                                       \
    }
#define SUM_G(ii, j)                                                           \
    {                                                                          \
        double g_ = (double)g[o + (ii)];                                       \
        a[j] += g_;                                                            \
        v[j] += g_ * ((double)x[o + (ii)] - mu);                               \
    }

KERNELS(float, f32)
KERNELS(double, f64)

static void fwd_range(void *ctx, size_t c0, size_t c1)
{
    const bn_ctx *k = ctx;
    TG_DISPATCH(OUT(k->n), fwd, k, c0, c1);
}

static void bwd_range(void *ctx, size_t c0, size_t c1)
{
    const bn_ctx *k = ctx;
    TG_DISPATCH(OUT(k->n), bwd, k, c0, c1);
}

/* Channels per piece of the pool: about TG_ELEM_GRAIN values. */
static size_t grain(const bn_ctx *k)
{
    size_t m = k->N * k->HW;
    return m >= TG_ELEM_GRAIN ? 1 : TG_ELEM_GRAIN / m;
}

static int forward(tg_node *n)
{
    if (check_running(n) || check_batch(n))
        return TG_ERR;
    bn_ctx k = {.n = n, .training = n->out.tape->training};
    dims(n, &k.N, &k.C, &k.HW);
    if (tg_recomputing(n)) /* a checkpoint's rerun: the first run's mode, */
        k.training = SCR(n)[3 * k.C] != 0, k.rerun = true; /* stats updated once */
    SCR(n)[3 * k.C] = k.training;
    tg_parallel_for(k.C, grain(&k), fwd_range, &k);
    return TG_OK;
}

static void backward(tg_node *n)
{
    bn_ctx k = {.n = n};
    dims(n, &k.N, &k.C, &k.HW);
    k.training = SCR(n)[3 * k.C] != 0;
    /* γ and β may be one tensor: β's share is added after γ's (acc_b) */
    if (tg_wants_grad(IN(n, X)))
        k.dx = tg_grad_acc(IN(n, X), &k.acc_x);
    if (tg_wants_grad(IN(n, GAMMA)))
        k.dg = tg_grad_acc(IN(n, GAMMA), &k.acc_g);
    if (tg_wants_grad(IN(n, BETA)))
        k.db = tg_grad_acc(IN(n, BETA), &k.acc_b);
    if (k.dx || k.dg || k.db)
        tg_parallel_for(k.C, grain(&k), bwd_range, &k);
}

/* Σ over the N and H·W axes of t [N,C,HW] → [1,C,1] */
static tg_tensor *per_channel(tg_tensor *t)
{
    return tg_sum_axis(tg_sum_axis(t, 2, true), 0, true);
}

/* Recorded, on the view [N,C,HW] of x and g = dy, the formulas of backward
 * with μ, σ² recomputed by ops (training: of the batch, so the rule goes
 * through them and is differentiable again; evaluation: the running
 * statistics, constants), in the mode of the tape when it is recorded:
 *   x̂ = (x − μ)/√(σ² + ε),  dγ = Σ g·x̂,  dβ = Σ g,
 *   dx = γ/√(σ² + ε) · (g − Σg/M − x̂·Σ(g·x̂)/M)   (training)
 *   dx = γ/√(σ² + ε) · g                         (evaluation) */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    size_t N, C, HW;
    dims(n, &N, &C, &HW);
    bool training = n->out.tape->training, want_x = need & (1u << X);
    bool use_xh = (need & (1u << GAMMA)) || (want_x && training); /* Σ g·x̂ */
    bool use_sg = (need & (1u << BETA)) || (want_x && training);   /* Σ g   */
    double M = (double)(N * HW);
    size_t v3[3] = {N, C, HW}, c3[3] = {1, C, 1};
    tg_tensor *x = tg_reshape(IN(n, X), 3, v3), *g = tg_reshape(gy, 3, v3);
    tg_tensor *is = NULL, *xh = NULL, *sg = use_sg ? per_channel(g) : NULL, *sgx = NULL;
    if (want_x || use_xh) {
        tg_tensor *mu, *var;
        if (training) {
            mu = tg_scale(per_channel(x), 1 / M);
            tg_tensor *d = tg_sub(x, mu);
            var = tg_scale(per_channel(tg_mul(d, d)), 1 / M);
        } else {
            mu = tg_reshape(IN(n, RMEAN), 3, c3);
            var = tg_reshape(IN(n, RVAR), 3, c3);
        }
        is = tg_pow(tg_add_scalar(var, BA(n)->eps), -0.5);
        if (use_xh) {
            xh = tg_mul(tg_sub(x, mu), is);
            sgx = per_channel(tg_mul(g, xh));
        }
    }
    if (want_x) {
        tg_tensor *k = tg_mul(tg_reshape(IN(n, GAMMA), 3, c3), is), *inner = g;
        if (training)
            inner = tg_sub(tg_sub(g, tg_scale(sg, 1 / M)), tg_mul(xh, tg_scale(sgx, 1 / M)));
        gx[X] = tg_reshape(tg_mul(k, inner), IN(n, X)->rank, IN(n, X)->shape);
        if (!gx[X])
            return TG_ERR;
    }
    if ((need & (1u << GAMMA)) && !(gx[GAMMA] = tg_reshape(sgx, 1, &C)))
        return TG_ERR;
    if ((need & (1u << BETA)) && !(gx[BETA] = tg_reshape(sg, 1, &C)))
        return TG_ERR;
    return TG_OK;
}

const tg_op tg_op_batch_norm = {.name = "batch_norm", .grad_reads = 1u << X,
                                .attr_size = sizeof(bn_attr), .setup = setup,
                                .forward = forward, .backward = backward,
                                .attr_str = attr_str, .vjp = vjp};

tg_tensor *tg_batch_norm(tg_tensor *x, tg_tensor *gamma, tg_tensor *beta,
                         tg_tensor *running_mean, tg_tensor *running_var, double momentum,
                         double eps)
{
    bn_attr at = {momentum, eps};
    return tg_record(&tg_op_batch_norm, 5,
                     (tg_tensor *[]){x, gamma, beta, running_mean, running_var}, &at);
}
