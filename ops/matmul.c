/* matmul: C = op(A)·op(B), op = identity or transpose (trans_a, trans_b).
 *   d op(A) = dC · op(B)ᵀ        d op(B) = op(A)ᵀ · dC
 * A transposed operand gets the transpose of that, which is again one GEMM
 * with the flags swapped, so no transposed copy is ever made. */
#include "op.h"

typedef struct matmul_attr {
    bool trans_a, trans_b; /* op(A) = Aᵀ, op(B) = Bᵀ */
} matmul_attr;
TG_ATTR_FITS(matmul_attr);
#define TA(n) (ATTR(n, matmul_attr)->trans_a)
#define TB(n) (ATTR(n, matmul_attr)->trans_b)

static void attr_str(const tg_node *n, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s%s", TA(n) ? "trans_a" : "", TA(n) && TB(n) ? " " : "",
             TB(n) ? "trans_b" : "");
}

static int setup(tg_node *n)
{
    if (tg_need_float(n, 0) || tg_need_float(n, 1) || tg_need_same_dtype(n, 0, 1))
        return TG_ERR;
    tg_tensor *a = IN(n, 0), *b = IN(n, 1);
    if (a->rank != 2 || b->rank != 2)
        return tg_fail(n, "operands must be 2-D (%s · %s)", tg_shp_of(a).s, tg_shp_of(b).s);
    size_t ka = TA(n) ? a->shape[0] : a->shape[1];
    size_t kb = TB(n) ? b->shape[1] : b->shape[0];
    if (ka != kb)
        return tg_fail(n, "inner dimensions differ (%s%s · %s%s)", tg_shp_of(a).s,
                       TA(n) ? "ᵀ" : "", tg_shp_of(b).s, TB(n) ? "ᵀ" : "");
    OUT(n)->dtype = a->dtype;
    OUT(n)->rank = 2;
    OUT(n)->shape[0] = TA(n) ? a->shape[1] : a->shape[0];
    OUT(n)->shape[1] = TB(n) ? b->shape[0] : b->shape[1];
    return TG_OK;
}

/* One GEMM call for either dtype: C = op(X)·op(Y) (+ C when acc). */
static void gemm(const tg_tensor *t, bool tx, bool ty, size_t m, size_t nn, size_t k,
                 const void *x, size_t ldx, const void *y, size_t ldy, int acc,
                 void *c, size_t ldc)
{
    if (t->dtype == TG_F32)
        tg_gemm_f32(tx, ty, m, nn, k, 1, x, ldx, y, ldy, (float)acc, c, ldc);
    else
        tg_gemm_f64(tx, ty, m, nn, k, 1, x, ldx, y, ldy, acc, c, ldc);
}

static int forward(tg_node *n)
{
    tg_tensor *a = IN(n, 0), *b = IN(n, 1), *c = OUT(n);
    size_t k = TA(n) ? a->shape[0] : a->shape[1];
    gemm(c, TA(n), TB(n), c->shape[0], c->shape[1], k, a->data, a->shape[1],
         b->data, b->shape[1], 0, c->data, c->shape[1]);
    return TG_OK;
}

static void backward(tg_node *n)
{
    tg_tensor *a = IN(n, 0), *b = IN(n, 1), *c = OUT(n);
    size_t m = c->shape[0], nn = c->shape[1], k = TA(n) ? a->shape[0] : a->shape[1];
    size_t lda = a->shape[1], ldb = b->shape[1];
    int acc;
    if (tg_wants_grad(a)) {
        void *da = tg_grad_acc(a, &acc);
        if (!TA(n)) /* dA = dC · op(B)ᵀ */
            gemm(c, false, !TB(n), m, k, nn, c->grad, nn, b->data, ldb, acc, da, lda);
        else        /* dA = op(B) · dCᵀ */
            gemm(c, TB(n), true, k, m, nn, b->data, ldb, c->grad, nn, acc, da, lda);
    }
    if (tg_wants_grad(b)) {
        void *db = tg_grad_acc(b, &acc);
        if (!TB(n)) /* dB = op(A)ᵀ · dC */
            gemm(c, !TA(n), false, k, nn, m, a->data, lda, c->grad, nn, acc, db, ldb);
        else        /* dB = dCᵀ · op(A) */
            gemm(c, true, TA(n), nn, k, m, c->grad, nn, a->data, lda, acc, db, ldb);
    }
}

/* Recorded: the same products with tg_matmul_t. */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    tg_tensor *a = IN(n, 0), *b = IN(n, 1);
    if (need & 1)
        gx[0] = !TA(n) ? tg_matmul_t(gy, b, false, !TB(n)) : tg_matmul_t(b, gy, TB(n), true);
    if (need & 2)
        gx[1] = !TB(n) ? tg_matmul_t(a, gy, !TA(n), false) : tg_matmul_t(gy, a, true, TA(n));
    return ((need & 1) && !gx[0]) || ((need & 2) && !gx[1]) ? TG_ERR : TG_OK;
}

const tg_op tg_op_matmul = {.name = "matmul", .grad_reads = 0x3, .attr_size = sizeof(matmul_attr),
                            .setup = setup, .forward = forward, .backward = backward,
                            .attr_str = attr_str, .vjp = vjp};

tg_tensor *tg_matmul_t(tg_tensor *a, tg_tensor *b, bool trans_a, bool trans_b)
{
    matmul_attr at = {trans_a, trans_b};
    return tg_record(&tg_op_matmul, 2, (tg_tensor *[]){a, b}, &at);
}

tg_tensor *tg_matmul(tg_tensor *a, tg_tensor *b) { return tg_matmul_t(a, b, false, false); }
