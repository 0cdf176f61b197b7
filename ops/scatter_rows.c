/* scatter_rows: the adjoint of a row gather (gather_rows, embedding), and
 * their recorded backward.  idx i32 of rank 0..3, src [idx.shape..., R...]
 * (the index axes, then the row's axes), Y [rows, R...]:
 *   Y = 0,  Y[idx[p]] += src[p]   for every position p of idx, in order
 *   dsrc[p] = dY[idx[p]]          (a gather; recorded as tg_embedding, whose
 *                                  recorded backward is this op again, so
 *                                  the pair is differentiable to any order)
 * Forward checks the indices (each in [0, rows)) and keeps a copy of them in
 * scratch; backward gathers with that copy and never reads idx.  Forward
 * splits the columns of a row over the pool and adds the rows in index
 * order for each column: the same sums as gather_rows' and embedding's
 * backward, whatever the thread count. */
#include "op.h"

typedef struct scatter_attr {
    size_t rows; /* Y's first axis, >= 1 */
} scatter_attr;
TG_ATTR_FITS(scatter_attr);
#define ROWS(n) (ATTR(n, scatter_attr)->rows)

static void attr_str(const tg_node *n, char *buf, size_t len)
{
    snprintf(buf, len, "rows=%zu", ROWS(n));
}

static int setup(tg_node *n)
{
    if (tg_need_float(n, 0) || tg_need_i32(n, 1))
        return TG_ERR;
    tg_tensor *src = IN(n, 0), *idx = IN(n, 1), *y = OUT(n);
    if (idx->rank > 3)
        return tg_fail(n, "indices must have rank <= 3, got %s", tg_shp_of(idx).s);
    bool lead = src->rank >= idx->rank;
    for (int i = 0; lead && i < idx->rank; i++)
        lead = src->shape[i] == idx->shape[i];
    if (!lead)
        return tg_fail(n, "src %s must start with the indices' shape %s", tg_shp_of(src).s,
                       tg_shp_of(idx).s);
    if (1 + src->rank - idx->rank > TG_MAX_RANK)
        return tg_fail(n, "src %s with indices %s gives rank %d (above %d)", tg_shp_of(src).s,
                       tg_shp_of(idx).s, 1 + src->rank - idx->rank, TG_MAX_RANK);
    if (ROWS(n) < 1)
        return tg_fail(n, "rows 0 must be >= 1 (src %s)", tg_shp_of(src).s);
    y->dtype = src->dtype;
    y->rank = (uint8_t)(1 + src->rank - idx->rank);
    y->shape[0] = ROWS(n);
    for (int i = idx->rank; i < src->rank; i++)
        y->shape[1 + i - idx->rank] = src->shape[i];
    n->scratch_bytes = idx->size * sizeof(int32_t);
    return TG_OK;
}

typedef struct sc_ctx {
    tg_node *n;
    size_t k, w; /* indices, elements per row */
    void *dsrc;
    int acc;
} sc_ctx;

#define KERNELS(T, S)                                                          \
    /* columns [j0, j1) of every row of Y */                                   \
    static void fwd_##S(const sc_ctx *c, size_t j0, size_t j1)                 \
    {                                                                          \
        const int32_t *idx = c->n->scratch;                                    \
        const T *src = IN(c->n, 0)->data;                                      \
        T *y = OUT(c->n)->data;                                                \
        for (size_t r = 0; r < ROWS(c->n); r++)                                \
            for (size_t j = j0; j < j1; j++)                                   \
                y[r * c->w + j] = 0;                                           \
        for (size_t i = 0; i < c->k; i++)                                      \
            for (size_t j = j0; j < j1; j++)                                   \
                y[(size_t)idx[i] * c->w + j] += src[i * c->w + j];             \
    }                                                                          \
    /* positions [p0, p1) of src */                                            \
    static void bwd_##S(const sc_ctx *c, size_t p0, size_t p1)                 \
    {                                                                          \
        const int32_t *idx = c->n->scratch;                                    \
        const T *g = OUT(c->n)->grad;                                          \
        T *d = c->dsrc;                                                        \
        for (size_t p = p0; p < p1; p++)                                       \
            for (size_t j = 0; j < c->w; j++) {                                \
                T v = g[(size_t)idx[p] * c->w + j];                            \
                d[p * c->w + j] = c->acc ? d[p * c->w + j] + v : v;            \
            }                                                                  \
    }
KERNELS(float, f32)
KERNELS(double, f64)

static void fwd_range(void *ctx, size_t b, size_t e)
{
    const sc_ctx *c = ctx;
    TG_DISPATCH(OUT(c->n), fwd, c, b, e);
}

static void bwd_range(void *ctx, size_t b, size_t e)
{
    const sc_ctx *c = ctx;
    TG_DISPATCH(OUT(c->n), bwd, c, b, e);
}

static int forward(tg_node *n)
{
    const int32_t *idx = IN(n, 1)->data;
    sc_ctx c = {n, IN(n, 1)->size, OUT(n)->size / ROWS(n), NULL, 0};
    for (size_t i = 0; i < c.k; i++)
        if (idx[i] < 0 || (size_t)idx[i] >= ROWS(n))
            return tg_fail(n, "index %d at position %zu is outside [0, %zu)", (int)idx[i], i,
                           ROWS(n));
    memcpy(n->scratch, idx, c.k * sizeof(int32_t));
    size_t per_col = ROWS(n) + c.k;
    tg_parallel_for(c.w, per_col >= TG_ELEM_GRAIN ? 1 : TG_ELEM_GRAIN / per_col, fwd_range, &c);
    return TG_OK;
}

static void backward(tg_node *n)
{
    sc_ctx c = {n, IN(n, 1)->size, OUT(n)->size / ROWS(n), NULL, 0};
    c.dsrc = tg_grad_acc(IN(n, 0), &c.acc);
    tg_parallel_for(c.k, c.w >= TG_ELEM_GRAIN ? 1 : TG_ELEM_GRAIN / c.w, bwd_range, &c);
}

/* Recorded: dsrc = the gather of dY's rows, tg_embedding of dY seen as
 * [rows, R] (reshaped to src's shape when R is not one axis). */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    tg_tensor *src = IN(n, 0), *y = OUT(n);
    if (y->rank == 2) {
        gx[0] = tg_embedding(gy, IN(n, 1));
    } else {
        size_t s[2] = {y->shape[0], y->size / y->shape[0]};
        gx[0] = tg_reshape(tg_embedding(tg_reshape(gy, 2, s), IN(n, 1)), src->rank, src->shape);
    }
    return gx[0] ? TG_OK : TG_ERR;
}

const tg_op tg_op_scatter_rows = {.name = "scatter_rows", .attr_size = sizeof(scatter_attr),
                                  .setup = setup, .forward = forward, .backward = backward,
                                  .attr_str = attr_str, .vjp = vjp};

tg_tensor *tg_scatter_rows(tg_tensor *src, tg_tensor *idx, size_t rows)
{
    scatter_attr at = {rows};
    return tg_record(&tg_op_scatter_rows, 2, (tg_tensor *[]){src, idx}, &at);
}
