/* embedding: Y[p] = W[idx[p]]   (W [V,D], idx i32 of any shape [...] with
 * rank <= 3, Y [..., D]: a row of W for every index);
 *   dW[idx[p]] += dY[p]   (a scatter-add: a row picked twice gets both)
 * Forward checks the indices (each in [0, V)) and keeps a copy of them in
 * scratch; backward scatters with that copy, in index order on one thread
 * (so repeated rows sum in a fixed order), and never reads idx itself. */
#include "op.h"

static int setup(tg_node *n)
{
    if (tg_need_float(n, 0) || tg_need_i32(n, 1))
        return TG_ERR;
    tg_tensor *w = IN(n, 0), *idx = IN(n, 1), *y = OUT(n);
    if (w->rank != 2)
        return tg_fail(n, "weight must be 2-D [V,D], got %s", tg_shp_of(w).s);
    if (idx->rank > 3)
        return tg_fail(n, "indices must have rank <= 3, got %s", tg_shp_of(idx).s);
    y->dtype = w->dtype;
    y->rank = (uint8_t)(idx->rank + 1);
    for (int i = 0; i < idx->rank; i++)
        y->shape[i] = idx->shape[i];
    y->shape[idx->rank] = w->shape[1];
    n->scratch_bytes = idx->size * sizeof(int32_t);
    return TG_OK;
}

typedef struct emb_ctx {
    tg_node *n;
    size_t D, es;
} emb_ctx;

static void fwd_range(void *ctx, size_t p0, size_t p1)
{
    const emb_ctx *k = ctx;
    const int32_t *idx = k->n->scratch;
    const char *w = IN(k->n, 0)->data;
    char *y = OUT(k->n)->data;
    size_t row = k->D * k->es;
    for (size_t p = p0; p < p1; p++)
        memcpy(y + p * row, w + (size_t)idx[p] * row, row);
}

#define KERNELS(T, S)                                                          \
    static void bwd_##S(size_t k, size_t w, const T *dy, const int32_t *idx,   \
                        T *dw)                                                 \
    {                                                                          \
        for (size_t i = 0; i < k; i++)                                         \
            for (size_t j = 0; j < w; j++)                                     \
                dw[(size_t)idx[i] * w + j] += dy[i * w + j];                   \
    }
KERNELS(float, f32)
KERNELS(double, f64)

static int forward(tg_node *n)
{
    tg_tensor *w = IN(n, 0), *y = OUT(n);
    const int32_t *idx = IN(n, 1)->data;
    size_t k = IN(n, 1)->size, V = w->shape[0];
    for (size_t i = 0; i < k; i++)
        if (idx[i] < 0 || (size_t)idx[i] >= V)
            return tg_fail(n, "index %d at position %zu is outside [0, %zu) (weight %s)",
                           (int)idx[i], i, V, tg_shp_of(w).s);
    memcpy(n->scratch, idx, k * sizeof(int32_t));
    emb_ctx c = {n, w->shape[1], y->dtype == TG_F32 ? sizeof(float) : sizeof(double)};
    tg_parallel_for(k, c.D >= TG_ELEM_GRAIN ? 1 : TG_ELEM_GRAIN / c.D, fwd_range, &c);
    return TG_OK;
}

static void backward(tg_node *n)
{
    tg_tensor *w = IN(n, 0), *y = OUT(n);
    void *dw = tg_grad_sum(w);
    TG_DISPATCH(y, bwd, IN(n, 1)->size, w->shape[1], y->grad, n->scratch, dw);
}

/* Recorded: dW = tg_scatter_rows(dY, idx, V), which reads idx when it runs
 * (indices may change between replays); idx gets no gradient.  Its own
 * recorded backward is this op again: differentiable to any order. */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    gx[0] = tg_scatter_rows(gy, IN(n, 1), IN(n, 0)->shape[0]);
    return gx[0] ? TG_OK : TG_ERR;
}

const tg_op tg_op_embedding = {.name = "embedding", .setup = setup, .forward = forward,
                               .backward = backward, .vjp = vjp};

tg_tensor *tg_embedding(tg_tensor *weight, tg_tensor *idx)
{
    return tg_record(&tg_op_embedding, 2, (tg_tensor *[]){weight, idx}, NULL);
}
