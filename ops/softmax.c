/* softmax and log_softmax along the last axis, for each row x:
 *   softmax:      y = e^(x−m) / Σ e^(x−m), m = max x    dx = y ⊙ (dy − ⟨dy, y⟩)
 *   log_softmax:  y = x − m − log Σ e^(x−m)            dx = dy − softmax(x) · Σ dy
 * Subtracting the max keeps every exponent ≤ 0, so any finite x is safe.
 *
 * Causal (attr causal, tg_softmax_causal / tg_log_softmax_causal): x is
 * [..., Tq, Tk] with Tq ≤ Tk, and row q (along axis −2) sees only its first
 * L = q + 1 + Tk − Tq columns (bottom-right aligned).  The formulas above
 * run over those L columns; the other columns of y are 0 (softmax) or −∞
 * (log_softmax), never computed, and get a zero gradient.  L ≥ 1, so a row
 * never is empty.  Rows are independent: large inputs split over the pool
 * by rows, which never changes a result. */
#include "op.h"

#include "vmath.h"

#include <math.h>
#include <tgmath.h>

typedef struct softmax_attr {
    bool causal; /* mask the columns j > q + Tk − Tq of row q */
} softmax_attr;
TG_ATTR_FITS(softmax_attr);
#define CAUSAL(n) (ATTR(n, softmax_attr)->causal)

static void attr_str(const tg_node *n, char *buf, size_t len)
{
    snprintf(buf, len, "%s", CAUSAL(n) ? "causal" : "");
}

static int setup(tg_node *n)
{
    if (tg_need_float(n, 0))
        return TG_ERR;
    tg_tensor *x = IN(n, 0);
    if (!CAUSAL(n) && x->rank < 1)
        return tg_fail(n, "input must have rank >= 1, got a scalar");
    if (CAUSAL(n) && x->rank < 2)
        return tg_fail(n, "causal: input must have rank >= 2 [..., Tq, Tk], got %s",
                       x->rank ? tg_shp_of(x).s : "a scalar");
    if (CAUSAL(n) && x->shape[x->rank - 2] > x->shape[x->rank - 1])
        return tg_fail(n, "causal: input %s has Tq = %zu > Tk = %zu", tg_shp_of(x).s,
                       x->shape[x->rank - 2], x->shape[x->rank - 1]);
    tg_out_like(n, 0);
    return TG_OK;
}

/* The visible columns of row r (global index): all d, or causally
 * (r mod tq) + 1 + d − tq; tq = 0 means not causal. */
static inline size_t visible(size_t r, size_t d, size_t tq)
{
    return tq ? r % tq + 1 + (d - tq) : d;
}

/* Sums over a row in 8 lanes (then a fixed tree): vectorisable, and the
 * order depends only on the row length. */
#define LANES 8
#define LANE_SUM(a) ((((a)[0] + (a)[1]) + ((a)[2] + (a)[3])) + (((a)[4] + (a)[5]) + ((a)[6] + (a)[7])))

#define KERNELS(T, S, EXP)                                                     \
    /* y[j] = e^(x[j] − m) for j < len; returns their sum */                  \
    static inline T sumexp_##S(const T *x, T m, T *y, size_t len)              \
    {                                                                          \
        T a[LANES] = {0};                                                      \
        size_t j = 0;                                                          \
        for (; j + LANES <= len; j += LANES)                                   \
            for (int k = 0; k < LANES; k++)                                    \
                a[k] += (y[j + k] = EXP(x[j + k] - m));                        \
        for (; j < len; j++)                                                   \
            a[0] += (y[j] = EXP(x[j] - m));                                    \
        return LANE_SUM(a);                                                    \
    }                                                                          \
    /* Σ_{j<len} u[j]·v[j], or Σ u[j] when v is NULL */                      \
    static inline T dot_##S(const T *u, const T *v, size_t len)                \
    {                                                                          \
        T a[LANES] = {0};                                                      \
        size_t j = 0;                                                          \
        if (v) {                                                               \
            for (; j + LANES <= len; j += LANES)                               \
                for (int k = 0; k < LANES; k++)                                \
                    a[k] += u[j + k] * v[j + k];                               \
            for (; j < len; j++)                                               \
                a[0] += u[j] * v[j];                                           \
        } else {                                                               \
            for (; j + LANES <= len; j += LANES)                               \
                for (int k = 0; k < LANES; k++)                                \
                    a[k] += u[j + k];                                          \
            for (; j < len; j++)                                               \
                a[0] += u[j];                                                  \
        }                                                                      \
        return LANE_SUM(a);                                                    \
    }                                                                          \
    static void fwd_##S(size_t r0, size_t rows, size_t d, size_t tq,           \
                        const T *x, T *y, bool logsm)                          \
    {                                                                          \
        x += r0 * d;                                                           \
        y += r0 * d;                                                           \
        for (size_t r = 0; r < rows; r++, x += d, y += d) {                    \
            size_t len = visible(r0 + r, d, tq);                               \
            T m = x[0];                                                        \
            for (size_t j = 1; j < len; j++)                                   \
                m = x[j] > m ? x[j] : m;                                       \
            T s = sumexp_##S(x, m, y, len);                                    \
            if (logsm) {                                                       \
                T ls = log(s); /* (x − m) − ls: exact for x near m */        \
                for (size_t j = 0; j < len; j++)                               \
                    y[j] = x[j] - m - ls;                                      \
            } else {                                                           \
                T inv = 1 / s;                                                 \
                for (size_t j = 0; j < len; j++)                               \
                    y[j] *= inv;                                               \
            }                                                                  \
            T fill = logsm ? -(T)INFINITY : 0;                                 \
            for (size_t j = len; j < d; j++)                                   \
                y[j] = fill;                                                   \
        }                                                                      \
    }                                                                          \
    static void bwd_##S(size_t r0, size_t rows, size_t d, size_t tq,           \
                        const T *y, const T *g, T *dx, int acc, bool logsm)    \
    {                                                                          \
        y += r0 * d;                                                           \
        g += r0 * d;                                                           \
        dx += r0 * d;                                                          \
        for (size_t r = 0; r < rows; r++, y += d, g += d, dx += d) {           \
            size_t len = visible(r0 + r, d, tq);                               \
            T dot = dot_##S(g, logsm ? NULL : y, len);                         \
            if (logsm) {                                                       \
                if (acc)                                                       \
                    for (size_t j = 0; j < len; j++)                           \
                        dx[j] += g[j] - EXP(y[j]) * dot;                       \
                else                                                           \
                    for (size_t j = 0; j < len; j++)                           \
                        dx[j] = g[j] - EXP(y[j]) * dot;                        \
            } else {                                                           \
                if (acc)                                                       \
                    for (size_t j = 0; j < len; j++)                           \
                        dx[j] += y[j] * (g[j] - dot);                          \
                else                                                           \
                    for (size_t j = 0; j < len; j++)                           \
                        dx[j] = y[j] * (g[j] - dot);                           \
            }                                                                  \
            for (size_t j = len; !acc && j < d; j++)                           \
                dx[j] = 0;                                                     \
        }                                                                      \
    }
KERNELS(float, f32, tg_expf) /* vectorisable */
KERNELS(double, f64, exp)

#define LOGSM(n) ((n)->op == &tg_op_log_softmax)

/* d (the row length), tq (the causal Tq, 0 when not causal), rows */
static void dims(const tg_node *n, size_t *d, size_t *tq, size_t *rows)
{
    const tg_tensor *x = IN(n, 0);
    *d = x->shape[x->rank - 1];
    *tq = CAUSAL(n) ? x->shape[x->rank - 2] : 0;
    *rows = *d ? x->size / *d : 0;
}

static void fwd_range(void *cv, size_t b, size_t e)
{
    tg_elem_ctx *c = cv;
    tg_node *n = c->n;
    size_t d, tq, rows;
    dims(n, &d, &tq, &rows);
    TG_DISPATCH(OUT(n), fwd, b, e - b, d, tq, IN(n, 0)->data, OUT(n)->data, LOGSM(n));
}

static void bwd_range(void *cv, size_t b, size_t e)
{
    tg_elem_ctx *c = cv;
    tg_node *n = c->n;
    size_t d, tq, rows;
    dims(n, &d, &tq, &rows);
    TG_DISPATCH(OUT(n), bwd, b, e - b, d, tq, OUT(n)->data, OUT(n)->grad, c->dx, c->acc,
                LOGSM(n));
}

static int forward(tg_node *n)
{
    size_t d, tq, rows;
    dims(n, &d, &tq, &rows);
    tg_elem_ctx c = {n, NULL, 0};
    if (rows)
        tg_parallel_for(rows, TG_ELEM_GRAIN / (4 * d) + 1, fwd_range, &c);
    return TG_OK;
}

static void backward(tg_node *n)
{
    size_t d, tq, rows;
    dims(n, &d, &tq, &rows);
    tg_elem_ctx c = {n, NULL, 0};
    c.dx = tg_grad_acc(IN(n, 0), &c.acc);
    if (rows)
        tg_parallel_for(rows, TG_ELEM_GRAIN / (4 * d) + 1, bwd_range, &c);
}

extern const tg_op tg_op_softmax;

/* Recorded:
 *   softmax:      dx = y ⊙ (dy − Σ_row dy ⊙ y)   (masked columns: y = 0, so 0)
 *   log_softmax:  dx = dy' − e^y ⊙ Σ_row dy'
 * with dy' = dy, or for a causal log_softmax dy ⊙ M, M = step(softmax_causal
 * (0), 0) the mask of the columns a row sees (so masked columns get 0). */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    (void)need;
    tg_tensor *y = OUT(n);
    if (n->op == &tg_op_softmax) {
        gx[0] = tg_mul(y, tg_sub(gy, tg_sum_axis(tg_mul(gy, y), -1, true)));
    } else {
        tg_tensor *g = gy;
        if (CAUSAL(n))
            g = tg_mul(gy, tg_step(tg_softmax_causal(tg_const_like(y, 0)), 0));
        gx[0] = tg_sub(g, tg_mul(tg_exp(y), tg_sum_axis(g, -1, true)));
    }
    return gx[0] ? TG_OK : TG_ERR;
}

const tg_op tg_op_softmax = {.name = "softmax", .attr_size = sizeof(softmax_attr),
                             .setup = setup, .forward = forward, .backward = backward,
                             .attr_str = attr_str, .vjp = vjp};
const tg_op tg_op_log_softmax = {.name = "log_softmax", .attr_size = sizeof(softmax_attr),
                                 .setup = setup, .forward = forward, .backward = backward,
                                 .attr_str = attr_str, .vjp = vjp};

static tg_tensor *record(const tg_op *op, tg_tensor *x, bool causal)
{
    softmax_attr at = {causal};
    return tg_record(op, 1, &x, &at);
}

tg_tensor *tg_softmax(tg_tensor *x) { return record(&tg_op_softmax, x, false); }
tg_tensor *tg_log_softmax(tg_tensor *x) { return record(&tg_op_log_softmax, x, false); }
tg_tensor *tg_softmax_causal(tg_tensor *x) { return record(&tg_op_softmax, x, true); }
tg_tensor *tg_log_softmax_causal(tg_tensor *x) { return record(&tg_op_log_softmax, x, true); }
