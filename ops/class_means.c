/* class_means: M[c] = (1/n_c) Σ_{i: label_i = c} X[i]   (X [n,d], M [C,d]);
 * a class without samples gets a row of zeros.
 *   dX[i] = dM[label_i] / n_{label_i}
 * The counts are taken at every forward (labels may change between replays)
 * and kept in scratch as 1/n_c for backward, followed by a copy of the
 * labels: backward uses the labels of the last forward that passed, never
 * ones changed since (which may be out of range until a replay refuses them). */
#include "op.h"

typedef struct class_means_attr {
    int64_t classes; /* C, checked in setup: 1..INT32_MAX */
} class_means_attr;
TG_ATTR_FITS(class_means_attr);
#define CLASSES(n) ((size_t)ATTR(n, class_means_attr)->classes)

static void attr_str(const tg_node *n, char *buf, size_t len)
{
    snprintf(buf, len, "classes=%zu", CLASSES(n));
}

static int setup(tg_node *n)
{
    if (tg_need_float(n, 0) || tg_need_i32(n, 1) || tg_need_rank(n, 0, 2))
        return TG_ERR;
    tg_tensor *x = IN(n, 0), *lab = IN(n, 1);
    if (lab->rank != 1 || lab->shape[0] != x->shape[0])
        return tg_fail(n, "labels must be [%zu] for input %s, got %s", x->shape[0],
                       tg_shp_of(x).s, tg_shp_of(lab).s);
    int64_t classes = ATTR(n, class_means_attr)->classes;
    if (classes < 1 || classes > INT32_MAX)
        return tg_fail(n, "number of classes %lld must be >= 1", (long long)classes);
    OUT(n)->dtype = x->dtype;
    OUT(n)->rank = 2;
    OUT(n)->shape[0] = CLASSES(n);
    OUT(n)->shape[1] = x->shape[1];
    n->scratch_bytes = CLASSES(n) * sizeof(double) + x->shape[0] * sizeof(int32_t);
    return TG_OK;
}

#define KERNELS(T, S)                                                          \
    static void fwd_##S(size_t rows, size_t d, size_t classes, const T *x,     \
                        const int32_t *lab, const double *inv, T *m)           \
    {                                                                          \
        for (size_t i = 0; i < classes * d; i++)                               \
            m[i] = 0;                                                          \
        for (size_t i = 0; i < rows; i++)                                      \
            for (size_t j = 0; j < d; j++)                                     \
                m[(size_t)lab[i] * d + j] += x[i * d + j];                     \
        for (size_t c = 0; c < classes; c++)                                   \
            for (size_t j = 0; j < d; j++)                                     \
                m[c * d + j] = (T)(m[c * d + j] * inv[c]);                     \
    }                                                                          \
    static void bwd_##S(size_t rows, size_t d, const T *dm,                    \
                        const int32_t *lab, const double *inv, T *dx, int acc) \
    {                                                                          \
        for (size_t i = 0; i < rows; i++) {                                    \
            const T *g = dm + (size_t)lab[i] * d;                              \
            T s = (T)inv[lab[i]];                                              \
            for (size_t j = 0; j < d; j++)                                     \
                dx[i * d + j] = acc ? dx[i * d + j] + g[j] * s : g[j] * s;     \
        }                                                                      \
    }
KERNELS(float, f32)
KERNELS(double, f64)

static int forward(tg_node *n)
{
    tg_tensor *x = IN(n, 0), *m = OUT(n);
    const int32_t *lab = IN(n, 1)->data;
    double *inv = n->scratch;
    size_t rows = x->shape[0], classes = CLASSES(n);
    for (size_t i = 0; i < rows; i++) /* first: a failure leaves scratch as it was */
        if (lab[i] < 0 || (size_t)lab[i] >= classes)
            return tg_fail(n, "label %d at row %zu is outside [0, %zu)", (int)lab[i], i,
                           classes);
    memcpy(inv + classes, lab, rows * sizeof(int32_t));
    for (size_t c = 0; c < classes; c++)
        inv[c] = 0;
    for (size_t i = 0; i < rows; i++)
        inv[lab[i]] += 1;
    for (size_t c = 0; c < classes; c++)
        inv[c] = inv[c] > 0 ? 1 / inv[c] : 0;
    TG_DISPATCH(m, fwd, rows, x->shape[1], classes, x->data, lab, inv, m->data);
    return TG_OK;
}

static void backward(tg_node *n)
{
    tg_tensor *x = IN(n, 0), *m = OUT(n);
    int acc;
    void *dx = tg_grad_acc(x, &acc);
    const double *inv = n->scratch;
    TG_DISPATCH(m, bwd, x->shape[0], x->shape[1], m->grad,
                (const int32_t *)(inv + CLASSES(n)), inv, dx, acc);
}

/* Recorded, reading the labels when it runs (they may change between
 * replays; they get no gradient):
 *   N = scatter_rows(1 [n,d], labels, C)   (N[c] = n_c in every column)
 *   dX = gather_rows(dM, labels) / gather_rows(N, labels)
 * Only classes that have samples are gathered, so no division by 0; the
 * ops have recorded gradients: differentiable to any order. */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    tg_tensor *x = IN(n, 0), *lab = IN(n, 1);
    tg_tensor *count = tg_scatter_rows(tg_const_like(x, 1), lab, CLASSES(n));
    gx[0] = tg_div(tg_gather_rows(gy, lab), tg_gather_rows(count, lab));
    return gx[0] ? TG_OK : TG_ERR;
}

const tg_op tg_op_class_means = {.name = "class_means", .attr_size = sizeof(class_means_attr),
                                 .setup = setup, .forward = forward, .backward = backward,
                                 .attr_str = attr_str, .vjp = vjp};

tg_tensor *tg_class_means(tg_tensor *x, tg_tensor *labels, int classes)
{
    class_means_attr at = {classes};
    return tg_record(&tg_op_class_means, 2, (tg_tensor *[]){x, labels}, &at);
}
