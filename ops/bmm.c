/* bmm: batched matmul, C[t] = op(A[t])·op(B[t]) for every batch index t.
 * A [..., m, k] ([..., k, m] with trans_a), B [..., k, n] ([..., n, k] with
 * trans_b), rank 2..4 each.  The batch axes (all but the last two) broadcast
 * NumPy-style: aligned from the right, sizes equal or 1, a missing axis is 1
 * (so a rank-2 operand is the same matrix for every batch).  C is
 * [batch..., m, n] with the broadcast batch axes.
 *   d op(A[t]) = dC[t] · op(B[t])ᵀ       d op(B[t]) = op(A[t])ᵀ · dC[t]
 * as in matmul, one GEMM per batch on strided pointers (no copies).  An
 * operand broadcast over a batch axis gets the sum of the contributions of
 * every output batch it took part in; each of its matrices is owned by one
 * piece of the pool and sums them in increasing output-batch order, so the
 * result does not depend on the thread count. */
#include "op.h"

typedef struct bmm_attr {
    bool trans_a, trans_b; /* op(A) = Aᵀ, op(B) = Bᵀ */
} bmm_attr;
TG_ATTR_FITS(bmm_attr);
#define TA(n) (ATTR(n, bmm_attr)->trans_a)
#define TB(n) (ATTR(n, bmm_attr)->trans_b)

static void attr_str(const tg_node *n, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s", TA(n) ? "trans_a" : "", TA(n) && TB(n) ? " " : "",
             TB(n) ? "trans_b" : "");
}

/* The batch layout: two batch axes (left-padded with 1), for the output (od)
 * and each operand (ad, bd), the operands' matrix sizes, and the GEMM sizes. */
typedef struct plan {
    size_t od[2], ad[2], bd[2];
    size_t ma, mb, mc;          /* elements of one matrix of A, B, C */
    size_t m, n, k, lda, ldb;
} plan;

static void batch_dims(const tg_tensor *t, size_t d[2])
{
    d[0] = d[1] = 1;
    for (int i = 0; i < t->rank - 2; i++)
        d[2 - (t->rank - 2) + i] = t->shape[i];
}

static void make_plan(const tg_node *n, plan *p)
{
    const tg_tensor *a = IN(n, 0), *b = IN(n, 1);
    batch_dims(a, p->ad);
    batch_dims(b, p->bd);
    for (int i = 0; i < 2; i++)
        p->od[i] = p->ad[i] > p->bd[i] ? p->ad[i] : p->bd[i];
    size_t a0 = a->shape[a->rank - 2], a1 = a->shape[a->rank - 1];
    size_t b0 = b->shape[b->rank - 2], b1 = b->shape[b->rank - 1];
    p->m = TA(n) ? a1 : a0;
    p->k = TA(n) ? a0 : a1;
    p->n = TB(n) ? b0 : b1;
    p->lda = a1, p->ldb = b1;
    p->ma = a0 * a1, p->mb = b0 * b1, p->mc = p->m * p->n;
}

static int setup(tg_node *n)
{
    if (tg_need_float(n, 0) || tg_need_float(n, 1) || tg_need_same_dtype(n, 0, 1))
        return TG_ERR;
    tg_tensor *a = IN(n, 0), *b = IN(n, 1), *c = OUT(n);
    if (a->rank < 2 || a->rank > 4 || b->rank < 2 || b->rank > 4)
        return tg_fail(n, "operands must have rank 2 to 4 (%s · %s)", tg_shp_of(a).s,
                       tg_shp_of(b).s);
    plan p;
    make_plan(n, &p);
    size_t kb = TB(n) ? b->shape[b->rank - 1] : b->shape[b->rank - 2];
    if (p.k != kb)
        return tg_fail(n, "inner dimensions differ (%s%s · %s%s)", tg_shp_of(a).s,
                       TA(n) ? "ᵀ" : "", tg_shp_of(b).s, TB(n) ? "ᵀ" : "");
    for (int i = 0; i < 2; i++)
        if (p.ad[i] != p.bd[i] && p.ad[i] != 1 && p.bd[i] != 1)
            return tg_fail(n, "batch axes do not broadcast (%s · %s)", tg_shp_of(a).s,
                           tg_shp_of(b).s);
    c->dtype = a->dtype;
    c->rank = a->rank > b->rank ? a->rank : b->rank;
    for (int i = 0; i < c->rank - 2; i++)
        c->shape[i] = p.od[2 - (c->rank - 2) + i];
    c->shape[c->rank - 2] = p.m;
    c->shape[c->rank - 1] = p.n;
    return TG_OK;
}

/* One GEMM call for either dtype: C = op(X)·op(Y) (+ C when acc). */
static void gemm(int dtype, bool tx, bool ty, size_t m, size_t nn, size_t k, const void *x,
                 size_t ldx, const void *y, size_t ldy, int acc, void *c, size_t ldc)
{
    if (dtype == TG_F32)
        tg_gemm_f32(tx, ty, m, nn, k, 1, x, ldx, y, ldy, (float)acc, c, ldc);
    else
        tg_gemm_f64(tx, ty, m, nn, k, 1, x, ldx, y, ldy, acc, c, ldc);
}

/* Byte offset of matrix (i0, i1) of an operand with batch sizes d (a size-1
 * axis is broadcast: index 0), matrices of mat elements of `es` bytes. */
static size_t off(const size_t d[2], size_t i0, size_t i1, size_t mat, size_t es)
{
    size_t j0 = d[0] == 1 ? 0 : i0, j1 = d[1] == 1 ? 0 : i1;
    return (j0 * d[1] + j1) * mat * es;
}

typedef struct bmm_ctx {
    tg_node *n;
    plan p;
    size_t es;
    char *dx; /* backward: the gradient being written (dA or dB) */
    int acc;
} bmm_ctx;

static void fwd_range(void *ctx, size_t t0, size_t t1)
{
    const bmm_ctx *k = ctx;
    const plan *p = &k->p;
    tg_node *n = k->n;
    const char *a = IN(n, 0)->data, *b = IN(n, 1)->data;
    char *c = OUT(n)->data;
    for (size_t t = t0; t < t1; t++) {
        size_t i0 = t / p->od[1], i1 = t % p->od[1];
        gemm(OUT(n)->dtype, TA(n), TB(n), p->m, p->n, p->k, a + off(p->ad, i0, i1, p->ma, k->es),
             p->lda, b + off(p->bd, i0, i1, p->mb, k->es), p->ldb, 0, c + t * p->mc * k->es,
             p->n);
    }
}

/* The output batches (i0, i1) that matrix s of an operand with batch sizes d
 * took part in: s's own index on an axis, every index where d is 1. */
#define FOR_USERS(p, d, s, i0, i1)                                             \
    for (size_t i0 = (d)[0] == 1 ? 0 : (s) / (d)[1];                            \
         i0 < ((d)[0] == 1 ? (p)->od[0] : (s) / (d)[1] + 1); i0++)              \
        for (size_t i1 = (d)[1] == 1 ? 0 : (s) % (d)[1];                        \
             i1 < ((d)[1] == 1 ? (p)->od[1] : (s) % (d)[1] + 1); i1++)

static void bwd_a_range(void *ctx, size_t s0, size_t s1)
{
    const bmm_ctx *k = ctx;
    const plan *p = &k->p;
    tg_node *n = k->n;
    int dt = OUT(n)->dtype;
    const char *b = IN(n, 1)->data, *g = OUT(n)->grad;
    for (size_t s = s0; s < s1; s++) {
        char *da = k->dx + s * p->ma * k->es;
        int acc = k->acc;
        FOR_USERS(p, p->ad, s, i0, i1) {
            const char *bt = b + off(p->bd, i0, i1, p->mb, k->es);
            const char *gt = g + (i0 * p->od[1] + i1) * p->mc * k->es;
            if (!TA(n)) /* dA = dC · op(B)ᵀ */
                gemm(dt, false, !TB(n), p->m, p->k, p->n, gt, p->n, bt, p->ldb, acc, da, p->lda);
            else        /* dA = op(B) · dCᵀ */
                gemm(dt, TB(n), true, p->k, p->m, p->n, bt, p->ldb, gt, p->n, acc, da, p->lda);
            acc = 1;
        }
    }
}

static void bwd_b_range(void *ctx, size_t s0, size_t s1)
{
    const bmm_ctx *k = ctx;
    const plan *p = &k->p;
    tg_node *n = k->n;
    int dt = OUT(n)->dtype;
    const char *a = IN(n, 0)->data, *g = OUT(n)->grad;
    for (size_t s = s0; s < s1; s++) {
        char *db = k->dx + s * p->mb * k->es;
        int acc = k->acc;
        FOR_USERS(p, p->bd, s, i0, i1) {
            const char *at = a + off(p->ad, i0, i1, p->ma, k->es);
            const char *gt = g + (i0 * p->od[1] + i1) * p->mc * k->es;
            if (!TB(n)) /* dB = op(A)ᵀ · dC */
                gemm(dt, !TA(n), false, p->k, p->n, p->m, at, p->lda, gt, p->n, acc, db, p->ldb);
            else        /* dB = dCᵀ · op(A) */
                gemm(dt, true, TA(n), p->n, p->k, p->m, gt, p->n, at, p->lda, acc, db, p->ldb);
            acc = 1;
        }
    }
}

/* Matrices per piece of the pool: about 2^16 multiply-adds, so that small
 * batches run inline (and the GEMM may then use the pool itself). */
static size_t grain(const plan *p, size_t users)
{
    size_t work = p->m * p->n * p->k * users;
    return work >= ((size_t)1 << 16) ? 1 : ((size_t)1 << 16) / (work ? work : 1);
}

static int forward(tg_node *n)
{
    bmm_ctx k = {.n = n, .es = OUT(n)->dtype == TG_F32 ? sizeof(float) : sizeof(double)};
    make_plan(n, &k.p);
    tg_parallel_for(k.p.od[0] * k.p.od[1], grain(&k.p, 1), fwd_range, &k);
    return TG_OK;
}

static void backward(tg_node *n)
{
    bmm_ctx k = {.n = n, .es = OUT(n)->dtype == TG_F32 ? sizeof(float) : sizeof(double)};
    make_plan(n, &k.p);
    size_t nb = k.p.od[0] * k.p.od[1];
    if (tg_wants_grad(IN(n, 0))) {
        k.dx = tg_grad_acc(IN(n, 0), &k.acc);
        size_t na = k.p.ad[0] * k.p.ad[1];
        tg_parallel_for(na, grain(&k.p, nb / na), bwd_a_range, &k);
    }
    if (tg_wants_grad(IN(n, 1))) {
        k.dx = tg_grad_acc(IN(n, 1), &k.acc);
        size_t nbb = k.p.bd[0] * k.p.bd[1];
        tg_parallel_for(nbb, grain(&k.p, nb / nbb), bwd_b_range, &k);
    }
}

/* Recorded: the products of backward with tg_bmm, summed over the batch
 * axes along which an operand was broadcast. */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    tg_tensor *a = IN(n, 0), *b = IN(n, 1);
    if (need & 1)
        gx[0] = tg_sum_to(!TA(n) ? tg_bmm(gy, b, false, !TB(n)) : tg_bmm(b, gy, TB(n), true), a);
    if (need & 2)
        gx[1] = tg_sum_to(!TB(n) ? tg_bmm(a, gy, !TA(n), false) : tg_bmm(gy, a, true, TA(n)), b);
    return ((need & 1) && !gx[0]) || ((need & 2) && !gx[1]) ? TG_ERR : TG_OK;
}

const tg_op tg_op_bmm = {.name = "bmm", .vjp = vjp, .grad_reads = 0x3, .attr_size = sizeof(bmm_attr),
                         .setup = setup, .forward = forward, .backward = backward,
                         .attr_str = attr_str};

tg_tensor *tg_bmm(tg_tensor *a, tg_tensor *b, bool trans_a, bool trans_b)
{
    bmm_attr at = {trans_a, trans_b};
    return tg_record(&tg_op_bmm, 2, (tg_tensor *[]){a, b}, &at);
}
