/* Derivation files: evaluation.  For each random draw, on a fresh f64 tape:
 *   1. the declared leaves get random values (their ranges and constraints);
 *   2. the forward definitions (=) are recorded;
 *   3. for each loss that a gradient or check refers to, one backward; the
 *      gradients the file uses are copied to constants;
 *   4. with recording off, the := definitions and every check's right side
 *      are computed;
 *   5. for each check, backward from its loss again and tg_check_grad
 *      against the right side; the worst draw is kept.
 * Shapes are checked before each product and sum so that a mismatch names
 * the sub-expression as written, with both shapes. */
#include "deriv.h"

#include "core.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct val {
    tg_tensor *t; /* NULL: a plain number */
    double num;
} val;

typedef struct snap {
    int loss, wrt;
    tg_tensor *g;
} snap;

typedef struct ectx {
    tg_deriv *d;
    tg_tape *tape;
    tg_err *err;
    val v[DV_MAX_SYMS];
    snap *snaps;
    int n_snaps;
} ectx;

static const char *shp(const tg_tensor *t, char *b, size_t n)
{
    if (!t || tg_rank(t) == 0) {
        snprintf(b, n, "a scalar");
        return b;
    }
    if (tg_rank(t) == 1) {
        snprintf(b, n, "[%zu]", tg_dim(t, 0));
        return b;
    }
    size_t k = 0;
    for (int i = 0; i < tg_rank(t) && k < n; i++)
        k += (size_t)snprintf(b + k, n - k, i ? "x%zu" : "%zu", tg_dim(t, i));
    return b;
}

#define SRC(e) (int)((e)->len < 48 ? (e)->len : 48), (e)->src, (e)->len < 48 ? "" : "..."

static int err_at(ectx *c, const dv_expr *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int err_at(ectx *c, const dv_expr *e, const char *fmt, ...)
{
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dv_error_at(c->d, c->err, e->line, e->col, "%s", msg);
    return -1;
}

/* A tape error met while computing e (a shape this file does not check
 * itself, a bad label ...): reported at e. */
static int op_failed(ectx *c, const dv_expr *e)
{
    const char *m = tg_tape_error(c->tape);
    int rc = err_at(c, e, "'%.*s%s': %s", SRC(e), m ? m : "failed");
    tg_tape_clear_error(c->tape);
    return rc;
}

static int need_tensor(ectx *c, const dv_expr *e, const val *v, const char *what)
{
    if (!v->t)
        return err_at(c, e, "'%.*s%s' is a number; %s needs a tensor", SRC(e), what);
    if (tg_dtype_of(v->t) == TG_I32)
        return err_at(c, e, "'%.*s%s' holds labels (i32); %s needs real values (labels go into "
                      "softmax_ce, class_means, gather, one_hot)", SRC(e), what);
    return 0;
}

static int need_labels(ectx *c, const dv_expr *e, const val *v, const char *fn)
{
    if (!v->t || tg_dtype_of(v->t) != TG_I32)
        return err_at(c, e, "%s: '%.*s%s' must be labels (declared with `labels N`)", fn,
                      SRC(e));
    return 0;
}

static int need_int(ectx *c, const dv_expr *e, const val *v, const char *fn, double lo,
                    double hi, int *out)
{
    if (v->t || v->num != floor(v->num) || v->num < lo || v->num > hi)
        return err_at(c, e, "%s: '%.*s%s' must be a whole number from %g to %g", fn, SRC(e), lo,
                      hi);
    *out = (int)v->num;
    return 0;
}

static bool bcast_ok(const tg_tensor *a, const tg_tensor *b)
{
    int ra = tg_rank(a), rb = tg_rank(b);
    for (int i = 1; i <= ra && i <= rb; i++) {
        size_t x = tg_dim(a, ra - i), y = tg_dim(b, rb - i);
        if (x != y && x != 1 && y != 1)
            return false;
    }
    return true;
}

static int ev(ectx *c, const dv_expr *e, val *out);

static double num_fn(int fn, double x)
{
    const char *n = dv_funcs[fn].name;
    if (!strcmp(n, "sigmoid")) return 1 / (1 + exp(-x));
    if (!strcmp(n, "relu")) return x > 0 ? x : 0;
    if (!strcmp(n, "tanh")) return tanh(x);
    if (!strcmp(n, "exp")) return exp(x);
    if (!strcmp(n, "log")) return log(x);
    if (!strcmp(n, "sqrt")) return sqrt(x);
    if (!strcmp(n, "abs")) return fabs(x);
    return NAN;
}

static int call(ectx *c, const dv_expr *e, val *out)
{
    val a[DV_MAX_ARGS] = {{0}};
    for (int i = 0; i < e->nargs; i++)
        if (ev(c, e->a[i], &a[i]))
            return -1;
    const char *n = dv_funcs[e->fn].name;
    tg_tensor *x = a[0].t, *r = NULL;
    int k = 0;
    *out = (val){0};
    if (!x && e->nargs == 1 && !isnan(num_fn(e->fn, 0.5))) {
        out->num = num_fn(e->fn, a[0].num);
        return 0;
    }
    if (!strcmp(n, "gather")) {
        if (need_tensor(c, e->a[0], &a[0], n) || need_labels(c, e->a[1], &a[1], n))
            return -1;
        r = tg_gather_rows(x, a[1].t);
    } else if (!strcmp(n, "one_hot")) {
        if (need_labels(c, e->a[0], &a[0], n) ||
            need_int(c, e->a[1], &a[1], n, 1, 1e6, &k))
            return -1;
        size_t rows = tg_size(x);
        if (rows * (size_t)k > DV_MAX_ELEMS)
            return err_at(c, e, "one_hot: %zu x %d is too large", rows, k);
        tg_tensor *o = tg_const(c->tape, NULL, TG_F64, 2, (size_t[]){rows, (size_t)k});
        if (!o)
            return op_failed(c, e);
        const int32_t *y = tg_data_i32(x);
        double *p = tg_data_f64(o);
        for (size_t i = 0; i < rows; i++) {
            if (y[i] < 0 || y[i] >= k)
                return err_at(c, e, "one_hot: label %d (element %zu) is not in [0, %d)", y[i],
                              i, k);
            p[i * (size_t)k + (size_t)y[i]] = 1;
        }
        r = o;
    } else if (!strcmp(n, "eye")) {
        int r2 = 0, off = 0;
        if (need_int(c, e->a[0], &a[0], n, 1, 1e6, &k) ||
            need_int(c, e->a[1], &a[1], n, 1, 1e6, &r2) ||
            (e->nargs == 3 && need_int(c, e->a[2], &a[2], n, -1e6, 1e6, &off)))
            return -1;
        if ((size_t)k * (size_t)r2 > DV_MAX_ELEMS)
            return err_at(c, e, "eye: %d x %d is too large", k, r2);
        tg_tensor *o = tg_const(c->tape, NULL, TG_F64, 2, (size_t[]){(size_t)k, (size_t)r2});
        if (!o)
            return op_failed(c, e);
        double *p = tg_data_f64(o);
        for (long i = 0; i < k; i++)
            if (i + off >= 0 && i + off < r2)
                p[(size_t)i * (size_t)r2 + (size_t)(i + off)] = 1;
        r = o;
    } else if (!strcmp(n, "bias_unit")) {
        if (need_tensor(c, e->a[0], &a[0], n))
            return -1;
        if (tg_rank(x) != 2) {
            char s1[48];
            return err_at(c, e, "bias_unit: '%.*s%s' must be a matrix [n,m], not %s",
                          SRC(e->a[0]), shp(x, s1, sizeof s1));
        }
        size_t rows = tg_dim(x, 0), cols = tg_dim(x, 1);
        if ((rows + 1) * (cols > rows ? cols : rows) > DV_MAX_ELEMS)
            return err_at(c, e, "bias_unit: %zu x %zu is too large", rows, cols);
        /* [1; A] = E0 + P A: E0 ones in row 0, P = [0; I] shifts A down a row */
        tg_tensor *e0 = tg_const(c->tape, NULL, TG_F64, 2, (size_t[]){rows + 1, cols});
        tg_tensor *pm = tg_const(c->tape, NULL, TG_F64, 2, (size_t[]){rows + 1, rows});
        if (!e0 || !pm)
            return op_failed(c, e);
        double *p = tg_data_f64(e0), *q = tg_data_f64(pm);
        for (size_t j = 0; j < cols; j++)
            p[j] = 1;
        for (size_t i = 0; i < rows; i++)
            q[(i + 1) * rows + i] = 1;
        r = tg_add(e0, tg_matmul(pm, x));
    } else if (need_tensor(c, e->a[0], &a[0], n)) {
        return -1;
    } else if (!strcmp(n, "sigmoid")) r = tg_sigmoid(x);
    else if (!strcmp(n, "relu")) r = tg_relu(x);
    else if (!strcmp(n, "tanh")) r = tg_tanh(x);
    else if (!strcmp(n, "exp")) r = tg_exp(x);
    else if (!strcmp(n, "log")) r = tg_log(x);
    else if (!strcmp(n, "sqrt")) r = tg_sqrt(x);
    else if (!strcmp(n, "abs")) r = tg_abs(x);
    else if (!strcmp(n, "gelu")) r = tg_gelu(x);
    else if (!strcmp(n, "silu")) r = tg_silu(x);
    else if (!strcmp(n, "softplus")) r = tg_softplus(x);
    else if (!strcmp(n, "softmax")) r = tg_softmax(x);
    else if (!strcmp(n, "log_softmax")) r = tg_log_softmax(x);
    else if (!strcmp(n, "trace")) r = tg_trace(x);
    else if (!strcmp(n, "transpose")) r = tg_transpose(x);
    else if (!strcmp(n, "sum_rows")) r = tg_sum_axis(x, 0, false);
    else if (!strcmp(n, "sum_cols")) r = tg_sum_axis(x, 1, false);
    else if (!strcmp(n, "sum") || !strcmp(n, "mean")) {
        bool sum = n[0] == 's';
        if (e->nargs == 1) {
            r = sum ? tg_sum(x) : tg_mean(x);
        } else {
            int rank = tg_rank(x);
            if (need_int(c, e->a[1], &a[1], n, -rank, rank - 1, &k))
                return -1;
            r = sum ? tg_sum_axis(x, k, false) : tg_mean_axis(x, k, false);
        }
    } else if (!strcmp(n, "sum_keep")) {
        int rank = tg_rank(x);
        if (need_int(c, e->a[1], &a[1], n, -rank, rank - 1, &k))
            return -1;
        r = tg_sum_axis(x, k, true);
    } else if (!strcmp(n, "ones_like") || !strcmp(n, "step")) {
        size_t sh[4];
        for (int i = 0; i < tg_rank(x); i++)
            sh[i] = tg_dim(x, i);
        if ((r = tg_const(c->tape, NULL, TG_F64, tg_rank(x), sh)) != NULL) {
            double *p = tg_data_f64(r);
            const double *xv = tg_data_f64(x);
            for (size_t i = 0; i < tg_size(r); i++)
                p[i] = n[0] == 'o' || xv[i] > 0 ? 1 : 0;
        }
    } else if (!strcmp(n, "class_means")) {
        if (need_labels(c, e->a[1], &a[1], n) || need_int(c, e->a[2], &a[2], n, 1, 1e6, &k))
            return -1;
        r = tg_class_means(x, a[1].t, k);
    } else if (!strcmp(n, "softmax_ce")) {
        if (need_labels(c, e->a[1], &a[1], n))
            return -1;
        r = tg_softmax_ce(x, a[1].t, TG_MEAN);
    } else if (!strcmp(n, "maximum") || !strcmp(n, "minimum")) {
        if (!a[1].t && !(a[1].t = tg_scalar(c->tape, TG_F64, a[1].num))) /* a number: a scalar */
            return op_failed(c, e);
        if (need_tensor(c, e->a[1], &a[1], n))
            return -1;
        char s1[48], s2[48];
        if (!bcast_ok(x, a[1].t))
            return err_at(c, e, "%s: %s and %s do not broadcast", n, shp(x, s1, sizeof s1),
                          shp(a[1].t, s2, sizeof s2));
        r = n[1] == 'a' ? tg_maximum(x, a[1].t) : tg_minimum(x, a[1].t);
    } else if (!strcmp(n, "max")) {
        int rank = tg_rank(x);
        if (need_int(c, e->a[1], &a[1], n, -rank, rank - 1, &k))
            return -1;
        r = tg_max_axis(x, k, false);
    } else if (!strcmp(n, "clamp") || !strcmp(n, "leaky_relu")) {
        for (int i = 1; i < e->nargs; i++)
            if (a[i].t)
                return err_at(c, e->a[i], "%s: '%.*s%s' must be a number", n, SRC(e->a[i]));
        r = n[0] == 'c' ? tg_clamp(x, a[1].num, a[2].num) : tg_leaky_relu(x, a[1].num);
    } else if (!strcmp(n, "layer_norm")) {
        if (e->nargs == 2)
            return err_at(c, e, "layer_norm takes X alone or X, gamma and beta");
        if (e->nargs == 3 && (need_tensor(c, e->a[1], &a[1], n) || need_tensor(c, e->a[2], &a[2], n)))
            return -1;
        r = tg_layer_norm(x, e->nargs == 3 ? a[1].t : NULL, e->nargs == 3 ? a[2].t : NULL, 1e-5);
    } else if (!strcmp(n, "softmax_causal")) {
        r = tg_softmax_causal(x);
    } else if (!strcmp(n, "l2")) {
        if (a[1].t)
            return err_at(c, e->a[1], "l2: the factor must be a number");
        r = tg_l2(x, a[1].num);
    } else { /* the two-tensor losses */
        if (need_tensor(c, e->a[1], &a[1], n))
            return -1;
        tg_tensor *y = a[1].t;
        if (!strcmp(n, "mse")) r = tg_mse(x, y, TG_MEAN);
        else if (!strcmp(n, "softmax_ce_onehot")) r = tg_softmax_ce_onehot(x, y, TG_MEAN);
        else if (!strcmp(n, "bce")) r = tg_bce(x, y, TG_MEAN);
        else r = tg_bce_logits(x, y, TG_MEAN);
    }
    if (!r)
        return op_failed(c, e);
    out->t = r;
    return 0;
}

/* a op b where at least one side is a tensor */
static int arith(ectx *c, const dv_expr *e, ekind k, val a, val b, val *out)
{
    tg_tensor *r;
    if (!a.t && !b.t) {
        out->t = NULL;
        out->num = k == E_ADD ? a.num + b.num : k == E_SUB ? a.num - b.num
                 : k == E_DIV ? a.num / b.num : a.num * b.num;
        return 0;
    }
    if ((a.t && need_tensor(c, e->a[0], &a, "arithmetic")) ||
        (b.t && need_tensor(c, e->a[1], &b, "arithmetic")))
        return -1;
    if (!b.t) { /* tensor op number */
        r = k == E_ADD ? tg_add_scalar(a.t, b.num) : k == E_SUB ? tg_add_scalar(a.t, -b.num)
          : k == E_DIV ? tg_scale(a.t, 1 / b.num) : tg_scale(a.t, b.num);
    } else if (!a.t) { /* number op tensor */
        r = k == E_ADD ? tg_add_scalar(b.t, a.num) : k == E_SUB ? tg_add_scalar(tg_neg(b.t), a.num)
          : k == E_DIV ? tg_scale(tg_pow(b.t, -1), a.num) : tg_scale(b.t, a.num);
    } else {
        char s1[48], s2[48];
        if (!bcast_ok(a.t, b.t))
            return err_at(c, e, "'%.*s%s': %s and %s do not broadcast ('%.*s%s' is %s, '%.*s%s' "
                          "is %s)", SRC(e), shp(a.t, s1, sizeof s1), shp(b.t, s2, sizeof s2),
                          SRC(e->a[0]), s1, SRC(e->a[1]), s2);
        r = k == E_ADD ? tg_add(a.t, b.t) : k == E_SUB ? tg_sub(a.t, b.t)
          : k == E_DIV ? tg_div(a.t, b.t) : tg_mul(a.t, b.t);
    }
    if (!r)
        return op_failed(c, e);
    out->t = r;
    return 0;
}

static int matmul(ectx *c, const dv_expr *e, val a, val b, val *out)
{
    if (!a.t || !b.t || tg_rank(a.t) == 0 || tg_rank(b.t) == 0)
        return arith(c, e, E_MUL, a, b, out); /* a scalar factor */
    if (need_tensor(c, e->a[0], &a, "a matrix product") ||
        need_tensor(c, e->a[1], &b, "a matrix product"))
        return -1;
    char s1[48], s2[48];
    shp(a.t, s1, sizeof s1), shp(b.t, s2, sizeof s2);
    int ra = tg_rank(a.t), rb = tg_rank(b.t);
    if (ra > 2 || rb > 2)
        return err_at(c, e, "'%.*s%s': a matrix product needs matrices or vectors; '%.*s%s' is "
                      "%s and '%.*s%s' is %s (for elementwise products write *)", SRC(e),
                      SRC(e->a[0]), s1, SRC(e->a[1]), s2);
    /* vectors as NumPy's matmul takes them: a row on the left, a column on
     * the right, that axis dropped from the result (u·v is the dot product) */
    size_t inner_a = tg_dim(a.t, ra - 1), inner_b = tg_dim(b.t, 0);
    if (inner_a != inner_b)
        return err_at(c, e, "'%.*s%s': %s · %s: the inner sizes %zu and %zu differ ('%.*s%s' is "
                      "%s, '%.*s%s' is %s)", SRC(e), s1, s2, inner_a, inner_b,
                      SRC(e->a[0]), s1, SRC(e->a[1]), s2);
    tg_tensor *x = ra == 1 ? tg_reshape(a.t, 2, (size_t[]){1, inner_a}) : a.t;
    tg_tensor *y = rb == 1 ? tg_reshape(b.t, 2, (size_t[]){inner_b, 1}) : b.t;
    tg_tensor *r = tg_matmul(x, y);
    if (r && (ra == 1 || rb == 1)) {
        size_t sh[1] = {ra == 1 ? tg_dim(r, 1) : tg_dim(r, 0)};
        r = ra == 1 && rb == 1 ? tg_reshape(r, 0, NULL) : tg_reshape(r, 1, sh);
    }
    if (!(out->t = r))
        return op_failed(c, e);
    return 0;
}

static int ev(ectx *c, const dv_expr *e, val *out)
{
    val a = {0}, b = {0};
    *out = (val){0};
    switch (e->k) {
    case E_NUM:
        out->num = e->num;
        return 0;
    case E_NAME:
        *out = c->v[e->sym];
        return 0;
    case E_GRAD:
        for (int i = 0; i < c->n_snaps; i++)
            if (c->snaps[i].loss == e->sym && c->snaps[i].wrt == e->sym2) {
                out->t = c->snaps[i].g;
                return 0;
            }
        return err_at(c, e, "internal: gradient not prepared");
    case E_CALL:
        return call(c, e, out);
    case E_NEG:
        if (ev(c, e->a[0], &a))
            return -1;
        if (!a.t) {
            out->num = -a.num;
            return 0;
        }
        if (need_tensor(c, e->a[0], &a, "'-'"))
            return -1;
        return (out->t = tg_neg(a.t)) ? 0 : op_failed(c, e);
    case E_T:
        if (ev(c, e->a[0], &a))
            return -1;
        if (!a.t || tg_rank(a.t) == 0) {
            *out = a;
            return 0;
        }
        if (need_tensor(c, e->a[0], &a, "a transpose"))
            return -1;
        if (tg_rank(a.t) != 2) {
            char s[48];
            return err_at(c, e, "'%.*s%s': only a matrix can be transposed; '%.*s%s' is %s",
                          SRC(e), SRC(e->a[0]), shp(a.t, s, sizeof s));
        }
        return (out->t = tg_transpose(a.t)) ? 0 : op_failed(c, e);
    case E_POW:
        if (ev(c, e->a[0], &a))
            return -1;
        if (!a.t) {
            out->num = pow(a.num, e->num);
            return 0;
        }
        if (need_tensor(c, e->a[0], &a, "a power"))
            return -1;
        return (out->t = e->num == 1 ? a.t : tg_pow(a.t, e->num)) ? 0 : op_failed(c, e);
    default:
        if (ev(c, e->a[0], &a) || ev(c, e->a[1], &b))
            return -1;
        return e->k == E_MATMUL ? matmul(c, e, a, b, out) : arith(c, e, e->k, a, b, out);
    }
}

/* ---- one draw ------------------------------------------------------------ */

static int fill_leaf(ectx *c, int si, tg_rng *rng, tg_tensor **out)
{
    dv_sym *s = &c->d->syms[si];
    bool labels = s->cons == C_LABELS;
    /* inputs are differentiated too (dL/dX may be checked) but drawn as inputs */
    tg_tensor *t = tg_leaf(c->tape, labels ? TG_CONST : s->param ? TG_PARAM : TG_INPUT, s->name,
                           labels ? TG_I32 : TG_F64, s->rank, s->shape);
    if (!t || (!labels && !s->param && tg_set_requires_grad(t, true)))
        return -1;
    size_t n = tg_size(t);
    if (labels) {
        int32_t *y = tg_data_i32(t);
        for (size_t i = 0; i < n; i++)
            y[i] = (int32_t)(tg_rng_next(rng) % (uint64_t)s->classes);
    } else if (s->cons == C_ONEHOT) {
        double *p = tg_data_f64(t);
        size_t cols = s->shape[1];
        for (size_t i = 0; i < n / cols; i++)
            p[i * cols + tg_rng_next(rng) % cols] = 1;
    } else {
        double *p = tg_data_f64(t);
        for (size_t i = 0; i < n; i++)
            p[i] = s->lo + (s->hi - s->lo) * tg_rng_uniform(rng);
    }
    *out = t;
    return 0;
}

static void collect_grads(const dv_expr *e, snap *s, int *n, int cap)
{
    if (!e)
        return;
    if (e->k == E_GRAD) {
        for (int i = 0; i < *n; i++)
            if (s[i].loss == e->sym && s[i].wrt == e->sym2)
                return;
        if (*n < cap)
            s[(*n)++] = (snap){e->sym, e->sym2, NULL};
    }
    for (int i = 0; i < DV_MAX_ARGS; i++)
        collect_grads(e->a[i], s, n, cap);
}

static int backward_from(ectx *c, int loss, const dv_stmt *st)
{
    tg_tensor *L = c->v[loss].t;
    dv_sym *s = &c->d->syms[loss];
    if (!L || tg_size(L) != 1) {
        char b[48];
        return err_at(c, st ? st->e : s->e, "d%s/d...: %s must be a scalar (one value), but it "
                      "is %s", s->name, s->name, L ? shp(L, b, sizeof b) : "a plain number");
    }
    tg_zero_grad(c->tape);
    if (tg_backward(L))
        return op_failed(c, s->e);
    return 0;
}

static void fold_result(dv_result *r, const tg_check *ck, int draw, const double *tape,
                        const double *ref, size_t n)
{
    if (draw == 0 || ck->max_rel > r->pub.worst.max_rel || isnan(ck->max_rel)) {
        if (!(draw > 0 && isnan(r->pub.worst.max_rel))) {
            r->pub.worst = *ck;
            r->pub.worst.abs_t = r->pub.worst.rel_t = NULL;
            r->pub.worst_draw = draw;
            if (r->n == n) {
                memcpy(r->worst_tape, tape, n * sizeof *tape);
                memcpy(r->worst_ref, ref, n * sizeof *ref);
            }
        }
    }
}

/* Run draw `draw`; the checks' results fold into d->res.  keep: leave the
 * tape in *tape_out (for DOT) instead of freeing it. */
static int run_draw(tg_deriv *d, uint64_t seed, int draw, double tol, tg_err *err,
                    tg_tape **tape_out)
{
    ectx c = {.d = d, .err = err};
    snap snaps[256];
    c.snaps = snaps;
    if (!(c.tape = tg_tape_new())) {
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return -1;
    }
    tg_rng rng;
    tg_rng_seed(&rng, seed * 1000 + (uint64_t)draw);
    int rc = -1;
    /* 1-2: leaves and the forward */
    for (int i = 0; i < d->n_stmts; i++) {
        const dv_stmt *st = &d->stmts[i];
        if (st->k == ST_DECL) {
            for (int s = st->sym; s < st->sym + st->count; s++)
                if (fill_leaf(&c, s, &rng, &c.v[s].t))
                    goto tape_err;
        } else if (st->k == ST_DEF) {
            if (ev(&c, d->syms[st->sym].e, &c.v[st->sym]))
                goto out;
            if (c.v[st->sym].t && tg_name(c.v[st->sym].t) == NULL)
                tg_set_name(c.v[st->sym].t, d->syms[st->sym].name);
        }
    }
    /* 3: the gradients the formulas use */
    for (int i = 0; i < d->n_stmts; i++) {
        collect_grads(d->stmts[i].e, snaps, &c.n_snaps, 256);
        if (d->stmts[i].k == ST_MYDEF)
            collect_grads(d->syms[d->stmts[i].sym].e, snaps, &c.n_snaps, 256);
    }
    for (int i = 0; i < c.n_snaps; i++) {
        if (backward_from(&c, snaps[i].loss, NULL))
            goto out;
        for (int j = i; j < c.n_snaps; j++) {
            if (snaps[j].loss != snaps[i].loss || snaps[j].g)
                continue;
            tg_tensor *w = c.v[snaps[j].wrt].t;
            if (!w || tg_dtype_of(w) != TG_F64) {
                dv_sym *ws = &d->syms[snaps[j].wrt];
                snprintf(err->msg, sizeof err->msg, "%s:%d: d%s/d%s: %s has no gradient (%s)",
                         d->file, ws->line, d->syms[snaps[j].loss].name, ws->name, ws->name,
                         w ? "labels" : "a plain number");
                goto out;
            }
            size_t sh[4];
            for (int a = 0; a < tg_rank(w); a++)
                sh[a] = tg_dim(w, a);
            if (!(snaps[j].g = tg_leaf_from(c.tape, TG_CONST, NULL, TG_F64, tg_rank(w), sh,
                                            tg_grad(w))))
                goto tape_err;
        }
    }
    /* 4: the user's definitions and the right sides, not recorded */
    tg_set_grad_enabled(c.tape, false);
    val rhs[256];
    int nc = 0;
    for (int i = 0; i < d->n_stmts; i++) {
        const dv_stmt *st = &d->stmts[i];
        if (st->k == ST_MYDEF && ev(&c, d->syms[st->sym].e, &c.v[st->sym]))
            goto out;
        if (st->k == ST_CHECK && (nc >= 256 || ev(&c, st->e, &rhs[nc++])))
            goto out;
    }
    tg_set_grad_enabled(c.tape, true);
    /* 5: compare */
    nc = 0;
    for (int i = 0; i < d->n_stmts; i++) {
        const dv_stmt *st = &d->stmts[i];
        if (st->k != ST_CHECK)
            continue;
        dv_result *r = &d->res[nc];
        val v = rhs[nc++];
        tg_tensor *w = c.v[st->wrt].t;
        dv_sym *ws = &d->syms[st->wrt];
        char s1[48], s2[48];
        if (!w || tg_dtype_of(w) != TG_F64) {
            err_at(&c, st->e, "d%s/d%s: %s has no gradient (%s)", d->syms[st->loss].name,
                   ws->name, ws->name, w ? "labels" : "a plain number");
            goto out;
        }
        if (backward_from(&c, st->loss, st))
            goto out;
        size_t n = tg_size(w);
        bool same = v.t ? tg_rank(v.t) == tg_rank(w) : n == 1;
        for (int a = 0; same && v.t && a < tg_rank(w); a++)
            same = tg_dim(v.t, a) == tg_dim(w, a);
        if (!same) {
            err_at(&c, st->e, "the right side is %s but d%s/d%s has the shape of %s, %s",
                   v.t ? shp(v.t, s1, sizeof s1) : "a number", d->syms[st->loss].name,
                   ws->name, ws->name, shp(w, s2, sizeof s2));
            goto out;
        }
        if (v.t && tg_dtype_of(v.t) != TG_F64) {
            err_at(&c, st->e, "the right side holds labels (i32), not a gradient");
            goto out;
        }
        const double *ref = v.t ? tg_data_f64(v.t) : &v.num;
        tg_check ck;
        if (tg_check_grad(w, ref, TG_F64, &ck))
            goto tape_err;
        if (draw == 0) {
            r->pub.rank = tg_rank(w);
            for (int a = 0; a < tg_rank(w); a++)
                r->pub.shape[a] = tg_dim(w, a);
            if (!r->worst_tape || r->n != n) {
                tg_free(r->worst_tape), tg_free(r->worst_ref);
                r->worst_tape = tg_malloc(n * sizeof(double));
                r->worst_ref = tg_malloc(n * sizeof(double));
                r->n = r->worst_tape && r->worst_ref ? n : 0;
            }
        }
        fold_result(r, &ck, draw, tg_grad(w), ref, n);
        r->pub.agrees = r->pub.worst.max_rel <= tol;
    }
    rc = 0;
    goto out;
tape_err:
    snprintf(err->msg, sizeof err->msg, "%s: %s", d->file, tg_tape_error(c.tape));
out:
    if (tape_out && rc == 0)
        *tape_out = c.tape;
    else
        tg_tape_free(c.tape);
    return rc;
}

/* ---- the public face ----------------------------------------------------- */

static int resolve(const tg_deriv_opts *opts, tg_deriv_opts *o, tg_err *err)
{
    *o = opts ? *opts : (tg_deriv_opts){0};
    if (o->draws == 0)
        o->draws = 5;
    if (o->tol == 0)
        o->tol = 1e-8;
    if (o->draws < 1 || o->draws > 1000 || !(o->tol > 0) || !isfinite(o->tol)) {
        snprintf(err->msg, sizeof err->msg, "deriv_run: draws must be 1..1000 and tol > 0 "
                 "(got %d, %g)", o->draws, o->tol);
        return -1;
    }
    return 0;
}

int tg_deriv_run(tg_deriv *d, const tg_deriv_opts *opts, tg_err *err)
{
    tg_err dummy;
    if (!err)
        err = &dummy;
    if (!d) {
        snprintf(err->msg, sizeof err->msg, "deriv_run: NULL derivation");
        return -1;
    }
    tg_deriv_opts o;
    if (resolve(opts, &o, err))
        return -1;
    for (int i = 0; i < d->n_checks; i++)
        d->res[i].pub.agrees = false;
    for (int k = 0; k < o.draws; k++)
        if (run_draw(d, o.seed, k, o.tol, err, NULL))
            return -1;
    return 0;
}

int tg_deriv_dot(const tg_deriv *d, const char *path, const tg_deriv_opts *opts, tg_err *err)
{
    tg_err dummy;
    if (!err)
        err = &dummy;
    if (!d || !path) {
        snprintf(err->msg, sizeof err->msg, "deriv_dot: NULL %s", d ? "path" : "derivation");
        return -1;
    }
    tg_deriv_opts o;
    tg_tape *tape = NULL;
    if (resolve(opts, &o, err) || run_draw((tg_deriv *)d, o.seed, 0, o.tol, err, &tape))
        return -1;
    const dv_stmt *first = NULL;
    for (int i = 0; i < d->n_stmts && !first; i++)
        if (d->stmts[i].k == ST_CHECK)
            first = &d->stmts[i];
    tg_tensor *root = tg_tape_find(tape, d->syms[first->loss].name);
    for (size_t i = 0; !root && i < tg_tape_nodes(tape); i++) {
        tg_tensor *t = tg_tape_node_output(tape, i);
        if (tg_name(t) && !strcmp(tg_name(t), d->syms[first->loss].name))
            root = t;
    }
    tg_dot_opts dopts = {.backward = true, .clusters = true, .title = d->file};
    int rc = tg_dot_save(path, tape, root, &dopts);
    if (rc)
        snprintf(err->msg, sizeof err->msg, "%s", tg_tape_error(tape));
    tg_tape_free(tape);
    return rc;
}

int tg_deriv_checks(const tg_deriv *d) { return d ? d->n_checks : 0; }

const tg_deriv_check *tg_deriv_result(const tg_deriv *d, int i)
{
    return d && i >= 0 && i < d->n_checks ? &d->res[i].pub : NULL;
}

int tg_deriv_worst(const tg_deriv *d, int i, const double **tape, const double **ref, size_t *n)
{
    if (!d || i < 0 || i >= d->n_checks || !d->res[i].n || !tape || !ref || !n)
        return -1;
    *tape = d->res[i].worst_tape, *ref = d->res[i].worst_ref, *n = d->res[i].n;
    return 0;
}
