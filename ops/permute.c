/* permute: reorder the axes, y.shape[i] = x.shape[perm[i]] and
 *   Y[j_0, ..., j_{r-1}] = X[i] with i[perm[k]] = j_k;
 *   dX = permute(dY, perm⁻¹)  (every element of dX is written once).
 * Both directions walk Y in order with X's strides taken in perm's order,
 * padded to 4 axes in front with size-1 axes: when the last axis stays last
 * (the heads case B×T×H×D ↔ B×H×T×D) the inner loop is a block copy.  Rows
 * of Y (all axes but the last) are split over the pool; each element is
 * written by one thread, so the result does not depend on the split. */
#include "op.h"

#include <stdio.h>

typedef struct permute_attr {
    int rank;              /* rank of x (copied by tg_permute) */
    int perm[TG_MAX_RANK]; /* a permutation of 0..rank−1       */
} permute_attr;
TG_ATTR_FITS(permute_attr);
#define PA(n) ATTR(n, permute_attr)

static void attr_str(const tg_node *n, char *buf, size_t len)
{
    const permute_attr *a = PA(n);
    size_t at = (size_t)snprintf(buf, len, "perm=");
    for (int i = 0; i < a->rank && at < len; i++) {
        int w = snprintf(buf + at, len - at, i ? ",%d" : "%d", a->perm[i]);
        if (w < 0)
            break;
        at += (size_t)w;
    }
}

static int setup(tg_node *n)
{
    if (tg_need_float(n, 0))
        return TG_ERR;
    tg_tensor *x = IN(n, 0), *y = OUT(n);
    const permute_attr *a = PA(n);
    if (x->rank < 1)
        return tg_fail(n, "input must have rank >= 1, got a scalar");
    if (a->rank != x->rank)
        return tg_fail(n, "perm has %d axes, input %s has %d", a->rank, tg_shp_of(x).s,
                       (int)x->rank);
    bool seen[TG_MAX_RANK] = {false};
    for (int i = 0; i < a->rank; i++) {
        int p = a->perm[i];
        if (p < 0 || p >= a->rank || seen[p])
            return tg_fail(n, "perm[%d] = %d is not a permutation of 0..%d (input %s)", i, p,
                           a->rank - 1, tg_shp_of(x).s);
        seen[p] = true;
    }
    tg_out_like(n, 0);
    for (int i = 0; i < a->rank; i++)
        y->shape[i] = x->shape[a->perm[i]];
    return TG_OK;
}

/* The walk over Y: sizes d[4] of Y and strides s[4] in X, padded in front. */
typedef struct walk {
    size_t d[4], s[4];
    const void *src;
    void *dst;
    bool to_x; /* backward: dst is dX (indexed by s), src dY (in order) */
    int acc;
} walk;

static void plan(const tg_node *n, walk *w)
{
    const tg_tensor *x = IN(n, 0);
    const permute_attr *a = PA(n);
    size_t xs[TG_MAX_RANK], st = 1;
    for (int i = x->rank - 1; i >= 0; i--) {
        xs[i] = st;
        st *= x->shape[i];
    }
    int pad = 4 - x->rank;
    for (int i = 0; i < 4; i++) {
        w->d[i] = i < pad ? 1 : x->shape[a->perm[i - pad]];
        w->s[i] = i < pad ? 0 : xs[a->perm[i - pad]];
    }
}

#define KERNELS(T, S)                                                          \
    static void rows_##S(void *ctx, size_t begin, size_t end)                  \
    {                                                                          \
        const walk *w = ctx;                                                   \
        size_t d3 = w->d[3], s3 = w->s[3];                                     \
        for (size_t r = begin; r < end; r++) {                                 \
            size_t i2 = r % w->d[2], i1 = r / w->d[2] % w->d[1];               \
            size_t i0 = r / w->d[2] / w->d[1];                                 \
            size_t xo = i0 * w->s[0] + i1 * w->s[1] + i2 * w->s[2];            \
            if (!w->to_x) {                                                    \
                const T *x = (const T *)w->src + xo;                           \
                T *y = (T *)w->dst + r * d3;                                   \
                if (s3 == 1)                                                   \
                    memcpy(y, x, d3 * sizeof(T));                              \
                else                                                           \
                    for (size_t j = 0; j < d3; j++)                            \
                        y[j] = x[j * s3];                                      \
            } else {                                                           \
                const T *g = (const T *)w->src + r * d3;                       \
                T *dx = (T *)w->dst + xo;                                      \
                if (!w->acc && s3 == 1)                                        \
                    memcpy(dx, g, d3 * sizeof(T));                             \
                else if (!w->acc)                                              \
                    for (size_t j = 0; j < d3; j++)                            \
                        dx[j * s3] = g[j];                                     \
                else                                                           \
                    for (size_t j = 0; j < d3; j++)                            \
                        dx[j * s3] += g[j];                                    \
            }                                                                  \
        }                                                                      \
    }
KERNELS(float, f32)
KERNELS(double, f64)

static void run(walk *w, const tg_tensor *y)
{
    size_t rows = w->d[0] * w->d[1] * w->d[2];
    size_t grain = TG_ELEM_GRAIN / w->d[3] + 1;
    tg_parallel_for(rows, grain, y->dtype == TG_F32 ? rows_f32 : rows_f64, w);
}

static int forward(tg_node *n)
{
    walk w;
    plan(n, &w);
    w.src = IN(n, 0)->data;
    w.dst = OUT(n)->data;
    w.to_x = false;
    w.acc = 0;
    run(&w, OUT(n));
    return TG_OK;
}

static void backward(tg_node *n)
{
    walk w;
    plan(n, &w);
    w.src = OUT(n)->grad;
    w.dst = tg_grad_acc(IN(n, 0), &w.acc);
    w.to_x = true;
    run(&w, OUT(n));
}

/* Recorded: dX = permute(dY, perm⁻¹). */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    int inv[TG_MAX_RANK];
    for (int i = 0; i < PA(n)->rank; i++)
        inv[PA(n)->perm[i]] = i;
    gx[0] = tg_permute(gy, inv);
    return gx[0] ? TG_OK : TG_ERR;
}

const tg_op tg_op_permute = {.name = "permute", .vjp = vjp, .attr_size = sizeof(permute_attr),
                             .setup = setup, .forward = forward, .backward = backward,
                             .attr_str = attr_str};

tg_tensor *tg_permute(tg_tensor *x, const int *perm)
{
    if (x && !perm) {
        tg_error(x->tape, "permute: perm is NULL (input %s)", tg_shp_of(x).s);
        return NULL;
    }
    permute_attr at = {0, {0}};
    if (x) {
        at.rank = x->rank <= TG_MAX_RANK ? x->rank : 0;
        for (int i = 0; i < at.rank; i++)
            at.perm[i] = perm[i];
    }
    return tg_record(&tg_op_permute, 1, &x, &at);
}
