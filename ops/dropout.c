/* dropout(x, p), inverted: in training mode with p > 0
 *   y = x · m,   dx = dy · m,   m_i = 1/(1−p) if element i is kept, else 0,
 * element i kept iff u_i >= p with u_i = (tg_rng_hash(key, i) >> 11)·2^-53,
 * i.e. iff (hash >> 11) >= ⌈p·2^53⌉ (exact integers).  The key is a fresh
 * draw of the tape's generator on every forward (tg_random_key: kept on
 * tg_check_fd's copy), and stays in scratch with the mode forward ran in,
 * so backward rebuilds the mask forward used.  In evaluation mode or with
 * p = 0: y = x, dx = dy (a copy, not a view: the mode can change between
 * replays).  Element i's mask depends on (key, i) only, so splitting over
 * the pool changes nothing. */
#include "op.h"

#include <math.h>

typedef struct dropout_attr {
    double p;        /* the probability of dropping an element            */
    double scale;    /* setup: 1/(1−p)                                    */
    uint64_t thresh; /* setup: ⌈p·2^53⌉, kept iff (hash >> 11) >= thresh  */
} dropout_attr;
TG_ATTR_FITS(dropout_attr);
#define DA(n) ATTR(n, dropout_attr)

/* What forward leaves for backward. */
typedef struct dropout_scratch {
    uint64_t key; /* tg_random_key of the last forward                   */
    bool masked;  /* it ran in training mode with p > 0                  */
} dropout_scratch;
#define DS(n) ((dropout_scratch *)(n)->scratch)

static void attr_str(const tg_node *n, char *buf, size_t len)
{
    snprintf(buf, len, "p=%g", DA(n)->p);
}

static int setup(tg_node *n)
{
    if (tg_need_float(n, 0))
        return TG_ERR;
    double p = DA(n)->p;
    if (!(p >= 0 && p < 1))
        return tg_fail(n, "p %g is outside [0, 1) (input %s)", p, tg_shp_of(IN(n, 0)).s);
    DA(n)->scale = 1 / (1 - p);
    DA(n)->thresh = (uint64_t)ceil(p * 0x1p53); /* exact: a power-of-2 scaling */
    tg_out_like(n, 0);
    n->scratch_bytes = sizeof(dropout_scratch);
    return TG_OK;
}

/* out (+)= g·m over [b, e): g = x, out = y in forward; g = dy, out = dx in
 * backward.  The hash is most of the work: compiled again for AVX2 and
 * AVX-512 (64-bit multiplies in vectors; integer work and one IEEE product
 * per element, so every path gives the same bits) and picked after the
 * kernel path (tg_cpu_isa). */
#define MASK_KERNEL(ATTR_, T, NAME)                                            \
    ATTR_ static void NAME(size_t b, size_t e, uint64_t key, uint64_t th, T s, \
                           const T *restrict g, T *restrict out, int acc)      \
    {                                                                          \
        if (acc) {                                                             \
            for (size_t i = b; i < e; i++) {                                   \
                T v = g[i] * ((tg_rng_hash(key, i) >> 11) >= th ? s : (T)0);   \
                out[i] += v; /* two statements: never contracted to an FMA */  \
            }                                                                  \
        } else {                                                               \
            for (size_t i = b; i < e; i++)                                     \
                out[i] = g[i] * ((tg_rng_hash(key, i) >> 11) >= th ? s : (T)0); \
        }                                                                      \
    }
#define KERNELS(T, S)                                                          \
    MASK_KERNEL(, T, mask_##S)                                                 \
    static void pass_##S(size_t b, size_t e, const T *g, T *out, int acc)      \
    {                                                                          \
        for (size_t i = b; i < e; i++)                                         \
            out[i] = acc ? out[i] + g[i] : g[i];                               \
    }
KERNELS(float, f32)
KERNELS(double, f64)

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define HAVE_X86_CLONES 1
MASK_KERNEL(__attribute__((target("avx2"))), float, mask_avx2_f32)
MASK_KERNEL(__attribute__((target("avx2"))), double, mask_avx2_f64)
MASK_KERNEL(__attribute__((target("avx512f,avx512dq,avx512vl"))), float, mask_avx512_f32)
MASK_KERNEL(__attribute__((target("avx512f,avx512dq,avx512vl"))), double, mask_avx512_f64)
#endif

typedef void mask_f32_fn(size_t, size_t, uint64_t, uint64_t, float, const float *, float *, int);
typedef void mask_f64_fn(size_t, size_t, uint64_t, uint64_t, double, const double *, double *,
                         int);

static mask_f32_fn *pick_f32(void)
{
#ifdef HAVE_X86_CLONES
    int isa = tg_cpu_isa();
    if (isa == TG_ISA_AVX512)
        return mask_avx512_f32;
    if (isa == TG_ISA_AVX2)
        return mask_avx2_f32;
#endif
    return mask_f32;
}

static mask_f64_fn *pick_f64(void)
{
#ifdef HAVE_X86_CLONES
    int isa = tg_cpu_isa();
    if (isa == TG_ISA_AVX512)
        return mask_avx512_f64;
    if (isa == TG_ISA_AVX2)
        return mask_avx2_f64;
#endif
    return mask_f64;
}

/* A range of y = x·m (forward) or dx (+)= dy·m (backward), with the mask
 * of m (key, mode) and a's threshold and scale. */
typedef struct dropout_ctx {
    dropout_scratch m;
    dropout_attr a;
    bool f32;
    const void *src; /* x, or dy */
    void *dst;       /* y, or dx */
    int acc;         /* add to dst (backward, dx already holds a share) */
} dropout_ctx;

static void range(void *ctx, size_t b, size_t e)
{
    dropout_ctx *c = ctx;
    uint64_t key = c->m.key, th = c->a.thresh;
    if (c->f32) {
        if (c->m.masked)
            pick_f32()(b, e, key, th, (float)c->a.scale, c->src, c->dst, c->acc);
        else
            pass_f32(b, e, c->src, c->dst, c->acc);
    } else {
        if (c->m.masked)
            pick_f64()(b, e, key, th, c->a.scale, c->src, c->dst, c->acc);
        else
            pass_f64(b, e, c->src, c->dst, c->acc);
    }
}

/* dst (+)= src·m over the output's elements, m from node d (a dropout) */
static void run(tg_node *n, const tg_node *d, const void *src, void *dst, int acc)
{
    dropout_ctx c = {*DS(d), *DA((tg_node *)d), OUT(n)->dtype == TG_F32, src, dst, acc};
    tg_parallel_for(OUT(n)->size, TG_ELEM_GRAIN, range, &c);
}

static int forward(tg_node *n)
{
    /* a key on every forward, also unused ones: on check_fd's copy the key
     * of record time is kept, whatever the mode was then */
    tg_random_key(n, &DS(n)->key);
    if (!tg_recomputing(n)) /* a checkpoint's rerun keeps the first run's mode */
        DS(n)->masked = n->out.tape->training && DA(n)->p > 0;
    run(n, n, IN(n, 0)->data, OUT(n)->data, 0);
    return TG_OK;
}

static void backward(tg_node *n)
{
    if (!tg_wants_grad(IN(n, 0)))
        return;
    int acc;
    void *dx = tg_grad_acc(IN(n, 0), &acc);
    run(n, n, OUT(n)->grad, dx, acc);
}

/* Recorded: dx = dropout_apply(dy, y), the mask of this node's forward,
 * read again at each replay (so it follows the replayed forward's draw). */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    gx[0] = tg_dropout_apply(gy, OUT(n));
    return gx[0] ? TG_OK : TG_ERR;
}

const tg_op tg_op_dropout = {.name = "dropout", .attr_size = sizeof(dropout_attr),
                             .setup = setup, .forward = forward, .backward = backward,
                             .attr_str = attr_str, .vjp = vjp};

tg_tensor *tg_dropout(tg_tensor *x, double p)
{
    dropout_attr at = {p, 0, 0};
    return tg_record(&tg_op_dropout, 1, &x, &at);
}

/* dropout_apply(t, y): t·m with m the mask (and scale) the dropout node
 * that made y used in its last forward: dropout's gradient, as an op.
 * Forward copies that node's key, mode and attributes into its own scratch
 * (the dropout node runs first in every replay), so backward, dt (+)= dout·m
 * (dropout_apply again), uses the mask forward did.  y's values are never
 * read; its gradient is zero. */
typedef struct apply_scratch {
    dropout_scratch m;
    dropout_attr a;
} apply_scratch;
#define AS(n) ((apply_scratch *)(n)->scratch)

static int apply_setup(tg_node *n)
{
    if (tg_need_float(n, 0) || tg_need_float(n, 1) || tg_need_same_dtype(n, 0, 1))
        return TG_ERR;
    tg_tensor *t = IN(n, 0), *y = IN(n, 1);
    if (!y->node || y->node->op != &tg_op_dropout)
        return tg_fail(n, "y ('%s', %s) must be the output of tg_dropout, not of %s", tg_label(y),
                       tg_shp_of(y).s, y->node ? y->node->op->name : "a leaf");
    if (t->rank != y->rank || memcmp(t->shape, y->shape, (size_t)t->rank * sizeof(size_t)))
        return tg_fail(n, "t %s must have the shape of y %s", tg_shp_of(t).s, tg_shp_of(y).s);
    tg_out_like(n, 0);
    n->scratch_bytes = sizeof(apply_scratch);
    return TG_OK;
}

static int apply_forward(tg_node *n)
{
    const tg_node *d = IN(n, 1)->node;
    AS(n)->m = *DS(d);
    AS(n)->a = *DA((tg_node *)d);
    dropout_ctx c = {AS(n)->m, AS(n)->a, OUT(n)->dtype == TG_F32, IN(n, 0)->data,
                     OUT(n)->data, 0};
    tg_parallel_for(OUT(n)->size, TG_ELEM_GRAIN, range, &c);
    return TG_OK;
}

static void apply_backward(tg_node *n)
{
    if (!tg_wants_grad(IN(n, 0)))
        return;
    dropout_ctx c = {AS(n)->m, AS(n)->a, OUT(n)->dtype == TG_F32, OUT(n)->grad, NULL, 0};
    c.dst = tg_grad_acc(IN(n, 0), &c.acc);
    tg_parallel_for(OUT(n)->size, TG_ELEM_GRAIN, range, &c);
}

/* Recorded: dt = dropout_apply(dy, y) (the mask is diagonal); y: zero. */
static int apply_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    if (need & 1)
        gx[0] = tg_dropout_apply(gy, IN(n, 1));
    return (need & 1) && !gx[0] ? TG_ERR : TG_OK;
}

const tg_op tg_op_dropout_apply = {.name = "dropout_apply", .setup = apply_setup,
                                   .forward = apply_forward, .backward = apply_backward,
                                   .vjp = apply_vjp};

tg_tensor *tg_dropout_apply(tg_tensor *t, tg_tensor *y)
{
    return tg_record(&tg_op_dropout_apply, 2, (tg_tensor *[]){t, y}, NULL);
}
