/* Softmax cross-entropy on logits Z [..., c] (rank >= 2), fused and stable:
 * the rows are the prod(leading) vectors z_i of length c.  Per row i, with
 * P = softmax(Z) and lse_i = log Σ_j e^{z_ij} (max-subtracted):
 *   labels (i32 [...]): L = s Σ_i (lse_i − z_{i,t_i})
 *                       dZ = s (P − onehot(t)) · dL
 *   targets T [..., c]: L = s Σ_ij t_ij (lse_i − z_ij)
 *                       dZ = s (P ⊙ Σ_j t_ij − T) · dL,   dT = s (lse − Z) · dL
 * s = 1 (TG_SUM), 1/rows (TG_MEAN) or 1/dim0 (TG_BATCH_MEAN).  With an ignore
 * index (tg_softmax_ce_ignore), the rows whose label is that index are left
 * out of the sum and get dZ = 0, and TG_MEAN divides by the rows left,
 * counted in every forward (0 rows: 0/0 = NaN, as PyTorch).  Scratch keeps
 * the s of the last forward, P, lse and, with labels, a copy of the labels
 * forward checked: backward uses those, never labels changed since (out of
 * range until a replay refuses them), as gather_rows and class_means do. */
#include "loss.h"

#include "vmath.h"

#include <tgmath.h>

/* loss_attr first (LOSS(n), tg_loss_scale read it), then the ignore index */
typedef struct ce_attr {
    loss_attr loss;
    int ignore;      /* the label of the rows left out, when has_ignore */
    bool has_ignore;
} ce_attr;
TG_ATTR_FITS(ce_attr);
#define CE(n) ATTR(n, ce_attr)

extern const tg_op tg_op_softmax_ce;
#define LABELS(n) ((n)->op == &tg_op_softmax_ce)

static void attr_str(const tg_node *n, char *buf, size_t len)
{
    char red[32];
    tg_loss_attr_str(n, red, sizeof red);
    if (CE(n)->has_ignore)
        snprintf(buf, len, "%s ignore=%d", red, CE(n)->ignore);
    else
        snprintf(buf, len, "%s", red);
}

/* rows (the product of the leading dims) and c of the logits; every
 * dim is >= 1 */
static void rows_c(const tg_node *n, size_t *rows, size_t *c)
{
    const tg_tensor *z = IN(n, 0);
    *c = z->shape[z->rank - 1];
    *rows = z->size / *c;
}

/* "4" or "2x3": the leading dims of the logits, the labels' shape */
static void leading_str(const tg_tensor *z, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; i < z->rank - 1 && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, i ? "x%zu" : "%zu", z->shape[i]);
}

static int setup(tg_node *n)
{
    if (tg_need_float(n, 0))
        return TG_ERR;
    tg_tensor *z = IN(n, 0), *t = IN(n, 1);
    if (z->rank < 2)
        return tg_fail(n, "logits must have rank >= 2 [..., classes], got %s",
                       z->rank ? tg_shp_of(z).s : "a scalar");
    size_t rows, c;
    rows_c(n, &rows, &c);
    if (LABELS(n)) {
        if (tg_need_i32(n, 1))
            return TG_ERR;
        bool same = t->rank == z->rank - 1;
        for (int i = 0; same && i < t->rank; i++)
            same = t->shape[i] == z->shape[i];
        if (!same) {
            char lead[64];
            leading_str(z, lead, sizeof lead);
            return tg_fail(n, "labels must be [%s] for logits %s, got %s", lead, tg_shp_of(z).s,
                           t->rank ? tg_shp_of(t).s : "a scalar");
        }
    } else {
        if (tg_need_float(n, 1) || tg_need_same_dtype(n, 0, 1))
            return TG_ERR;
        if (t->rank != z->rank || memcmp(t->shape, z->shape, z->rank * sizeof(size_t)))
            return tg_fail(n, "targets must be %s like the logits, got %s", tg_shp_of(z).s,
                           tg_shp_of(t).s);
    }
    tg_out_scalar(n, z->dtype);
    /* s of the last forward, P [rows, c], lse [rows], then its labels */
    n->scratch_bytes = sizeof(double) + (rows * c + rows) * tg_dtype_size((tg_dtype)z->dtype) +
                       (LABELS(n) ? rows * sizeof(int32_t) : 0);
    return tg_loss_scale(n, 0, rows, z->shape[0]);
}

/* The scratch: s of the last forward, P (lse after it), the labels. */
static double *saved_scale(const tg_node *n) { return n->scratch; }
static void *probs(const tg_node *n) { return (char *)n->scratch + sizeof(double); }
static int32_t *saved_labels(const tg_node *n)
{
    size_t rows, c;
    rows_c(n, &rows, &c);
    return (int32_t *)(void *)((char *)probs(n) +
                               (rows * c + rows) * tg_dtype_size((tg_dtype)IN(n, 0)->dtype));
}

#define KERNELS(T, S, EXP)                                                     \
    /* P and lse of every row; returns Σ_i loss_i over the rows not ignored    \
     * (lab[i] != ign; ign is outside [0, c) when nothing is ignored) */      \
    static double fwd_##S(size_t rows, size_t c, const T *z, const int32_t *lab, \
                          int32_t ign, const T *tgt, T *p, T *lse)             \
    {                                                                          \
        double total = 0;                                                      \
        for (size_t i = 0; i < rows; i++, z += c, p += c) {                    \
            T m = z[0], s = 0;                                                 \
            for (size_t j = 1; j < c; j++)                                     \
                m = z[j] > m ? z[j] : m;                                       \
            for (size_t j = 0; j < c; j++)                                     \
                s += (p[j] = EXP(z[j] - m));                                   \
            T inv = 1 / s;                                                     \
            for (size_t j = 0; j < c; j++)                                     \
                p[j] *= inv;                                                   \
            lse[i] = m + log(s);                                               \
            if (lab) {                                                         \
                if (lab[i] != ign)                                             \
                    total += (double)(lse[i] - z[lab[i]]);                     \
            } else {                                                           \
                for (size_t j = 0; j < c; j++)                                 \
                    total += (double)tgt[i * c + j] * (double)(lse[i] - z[j]); \
            }                                                                  \
        }                                                                      \
        return total;                                                          \
    }                                                                          \
    static void dz_##S(size_t rows, size_t c, const T *p, const int32_t *lab,  \
                       int32_t ign, const T *tgt, T k, T *dz, int acc)         \
    {                                                                          \
        for (size_t i = 0; i < rows; i++, p += c, dz += c) {                   \
            if (lab && lab[i] == ign) { /* ignored: no gradient */             \
                for (size_t j = 0; !acc && j < c; j++)                         \
                    dz[j] = 0;                                                 \
                continue;                                                      \
            }                                                                  \
            T tsum = 1;                                                        \
            if (!lab) {                                                        \
                tsum = 0;                                                      \
                for (size_t j = 0; j < c; j++)                                 \
                    tsum += tgt[i * c + j];                                    \
            }                                                                  \
            for (size_t j = 0; j < c; j++) {                                   \
                T t = lab ? (T)((size_t)lab[i] == j) : tgt[i * c + j];         \
                T v = k * (p[j] * tsum - t);                                   \
                dz[j] = acc ? dz[j] + v : v;                                   \
            }                                                                  \
        }                                                                      \
    }                                                                          \
    static void dt_##S(size_t rows, size_t c, const T *z, const T *lse, T k,   \
                       T *dt, int acc)                                         \
    {                                                                          \
        for (size_t i = 0; i < rows; i++)                                      \
            for (size_t j = 0; j < c; j++) {                                   \
                T v = k * (lse[i] - z[i * c + j]);                             \
                dt[i * c + j] = acc ? dt[i * c + j] + v : v;                   \
            }                                                                  \
    }
KERNELS(float, f32, tg_expf) /* vectorisable */
KERNELS(double, f64, exp)

/* the label of ignored rows, or -1 (never a valid label) when none */
static int32_t ignored(const tg_node *n) { return CE(n)->has_ignore ? CE(n)->ignore : -1; }

/* "label 9 at row 2 is outside [0, 4)"; for labels of rank >= 2 the row
 * is also named as an index of the labels: "row 5 (labels[1,2])" */
static int bad_label(tg_node *n, size_t i, int32_t v, size_t c)
{
    const tg_tensor *t = IN(n, 1);
    if (t->rank <= 1)
        return tg_fail(n, "label %d at row %zu is outside [0, %zu)", (int)v, i, c);
    size_t idx[TG_MAX_RANK], k = i, len = 0;
    for (int a = t->rank - 1; a >= 0; a--) {
        idx[a] = k % t->shape[a];
        k /= t->shape[a];
    }
    char at[96];
    for (int a = 0; a < t->rank && len < sizeof at; a++)
        len += (size_t)snprintf(at + len, sizeof at - len, a ? ",%zu" : "%zu", idx[a]);
    return tg_fail(n, "label %d at row %zu (labels[%s]) is outside [0, %zu)", (int)v, i, at, c);
}

static int forward(tg_node *n)
{
    tg_tensor *z = IN(n, 0), *t = IN(n, 1), *y = OUT(n);
    size_t rows, c;
    rows_c(n, &rows, &c);
    const int32_t *lab = LABELS(n) ? t->data : NULL;
    bool has_ign = CE(n)->has_ignore;
    int32_t ign = ignored(n);
    size_t kept = rows;
    for (size_t i = 0; lab && i < rows; i++) {
        if (has_ign && lab[i] == ign)
            kept--;
        else if (lab[i] < 0 || (size_t)lab[i] >= c)
            return bad_label(n, i, lab[i], c);
    }
    if (lab)
        memcpy(saved_labels(n), lab, rows * sizeof(int32_t));
    double s = LOSS(n)->scale;
    if (has_ign && (LOSS(n)->flags & 3) == TG_MEAN) /* the rows of this forward */
        s = kept ? 1.0 / (double)kept : NAN;          /* none: NaN, as PyTorch */
    *saved_scale(n) = s;
    if (y->dtype == TG_F32) {
        float *p = probs(n);
        *(float *)y->data = (float)(s * fwd_f32(rows, c, z->data, lab, ign, t->data, p, p + rows * c));
    } else {
        double *p = probs(n);
        *(double *)y->data = s * fwd_f64(rows, c, z->data, lab, ign, t->data, p, p + rows * c);
    }
    return TG_OK;
}

static void backward(tg_node *n)
{
    tg_tensor *z = IN(n, 0), *t = IN(n, 1), *y = OUT(n);
    size_t rows, c;
    rows_c(n, &rows, &c);
    const int32_t *lab = LABELS(n) ? saved_labels(n) : NULL;
    int32_t ign = ignored(n);
    bool f32 = y->dtype == TG_F32;
    double k = *saved_scale(n) * (f32 ? *(float *)y->grad : *(double *)y->grad);
    int acc;
    if (tg_wants_grad(z)) {
        void *dz = tg_grad_acc(z, &acc);
        if (f32)
            dz_f32(rows, c, probs(n), lab, ign, t->data, (float)k, dz, acc);
        else
            dz_f64(rows, c, probs(n), lab, ign, t->data, k, dz, acc);
    }
    if (!lab && tg_wants_grad(t)) {
        void *dt = tg_grad_acc(t, &acc);
        if (f32)
            dt_f32(rows, c, z->data, (float *)probs(n) + rows * c, (float)k, dt, acc);
        else
            dt_f64(rows, c, z->data, (double *)probs(n) + rows * c, k, dt, acc);
    }
}

/* Recorded, with P = softmax(Z) and dL = gy:
 *   labels:   Y = one_hot(labels) (0 rows where ignored), m = Σ_j Y (1 for a
 *             row kept, 0 ignored): dZ = s (P ⊙ m − Y) dL, s a constant, or
 *             for TG_MEAN with an ignore index 1 / Σ m (recounted per replay)
 *   targets:  dZ = s (P ⊙ Σ_j T − T) dL,  dT = −s log_softmax(Z) dL */
static int vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
{
    tg_tensor *z = IN(n, 0), *t = IN(n, 1), *p = tg_softmax(z);
    double s = LOSS(n)->scale;
    if (LABELS(n)) {
        int c = (int)z->shape[z->rank - 1];
        tg_tensor *y = CE(n)->has_ignore
                           ? tg_one_hot_ignore(t, c, CE(n)->ignore, (tg_dtype)z->dtype)
                           : tg_one_hot(t, c, (tg_dtype)z->dtype);
        tg_tensor *g = gy;
        if (CE(n)->has_ignore) {
            tg_tensor *m = tg_sum_axis(y, -1, true);
            p = tg_mul(p, m);
            if ((LOSS(n)->flags & 3) == TG_MEAN)
                g = tg_div(gy, tg_sum(m)), s = 1;
        }
        gx[0] = tg_mul(tg_scale(tg_sub(p, y), s), g);
        return gx[0] ? TG_OK : TG_ERR;
    }
    if (need & 1)
        gx[0] = tg_mul(tg_scale(tg_sub(tg_mul(p, tg_sum_axis(t, -1, true)), t), s), gy);
    if (need & 2)
        gx[1] = tg_mul(tg_scale(tg_log_softmax(z), -s), gy);
    return ((need & 1) && !gx[0]) || ((need & 2) && !gx[1]) ? TG_ERR : TG_OK;
}

const tg_op tg_op_softmax_ce = {.name = "softmax_ce", .attr_size = sizeof(ce_attr),
                                .setup = setup, .forward = forward, .backward = backward,
                                .attr_str = attr_str, .vjp = vjp};
const tg_op tg_op_softmax_ce_onehot = {.name = "softmax_ce_onehot", .grad_reads = 0x3,
                                       .attr_size = sizeof(ce_attr), .setup = setup,
                                       .forward = forward, .backward = backward,
                                       .attr_str = attr_str, .vjp = vjp};

tg_tensor *tg_softmax_ce(tg_tensor *logits, tg_tensor *labels, int flags)
{
    ce_attr at = {{flags, 0}, 0, false};
    return tg_record(&tg_op_softmax_ce, 2, (tg_tensor *[]){logits, labels}, &at);
}

tg_tensor *tg_softmax_ce_ignore(tg_tensor *logits, tg_tensor *labels, int ignore_index, int flags)
{
    ce_attr at = {{flags, 0}, ignore_index, true};
    return tg_record(&tg_op_softmax_ce, 2, (tg_tensor *[]){logits, labels}, &at);
}

tg_tensor *tg_softmax_ce_onehot(tg_tensor *logits, tg_tensor *targets, int flags)
{
    ce_attr at = {{flags, 0}, 0, false};
    return tg_record(&tg_op_softmax_ce_onehot, 2, (tg_tensor *[]){logits, targets}, &at);
}
