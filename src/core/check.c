/* Gradient checks: finite differences on an f64 copy of the graph, and the
 * comparison of any gradient buffer (a hand derivation) with the tape's. */
#include "core.h"

#include <float.h>
#include <math.h>

/* ---- copying a graph to a new f64 tape ----------------------------------- */

/* Tensors without a node (leaves, constants) met while copying: their
 * copies are linked through `aux`, and the links are removed afterwards. */
typedef struct clone_ctx {
    tg_tape *dst;
    tg_tensor **touched;
    size_t n_touched, cap_touched;
    tg_tensor **node_copy; /* copy of the output of node i */
} clone_ctx;

static tg_tensor *copy_leaf(clone_ctx *cx, tg_tensor *t)
{
    if (t->aux)
        return t->aux;
    if (cx->n_touched == cx->cap_touched) {
        size_t cap = cx->cap_touched ? 2 * cx->cap_touched : 16;
        tg_tensor **p = tg_realloc(cx->touched, cap * sizeof *p);
        if (!p)
            return NULL;
        cx->touched = p;
        cx->cap_touched = cap;
    }
    tg_dtype d = t->dtype == TG_I32 ? TG_I32 : TG_F64;
    tg_kind kind = t->kind == TG_OP ? TG_CONST : (tg_kind)t->kind;
    tg_tensor *c = tg_leaf(cx->dst, kind, t->name, d, t->rank, t->shape);
    if (!c || tg_copy_in(c, t->data, (tg_dtype)t->dtype, t->size))
        return NULL;
    c->requires_grad = c->live = 0; /* the caller decides what to differentiate */
    t->aux = c;
    cx->touched[cx->n_touched++] = t;
    return c;
}

static tg_tensor *map_input(clone_ctx *cx, tg_tensor *t)
{
    return t->node ? cx->node_copy[t->node->index] : copy_leaf(cx, t);
}

/* Copy nodes [0, last] of src (and the leaves they use) onto cx->dst. */
static int copy_graph(clone_ctx *cx, tg_tape *src, size_t last)
{
    for (size_t i = 0; i <= last; i++) {
        tg_node *n = src->nodes[i];
        tg_tensor *in[TG_MAX_IN];
        for (int j = 0; j < n->n_in; j++)
            if (!(in[j] = map_input(cx, n->in[j])))
                return TG_ERR;
        cx->dst->scope = n->scope ? tg_intern_scope(cx->dst, n->scope) : NULL;
        tg_tensor *out = tg_record(n->op, n->n_in, in, n->attr.bytes);
        if (!out)
            return TG_ERR;
        if (n->out.name && tg_set_name(out, n->out.name))
            return TG_ERR;
        cx->node_copy[i] = out;
    }
    return TG_OK;
}

/* ---- comparing ----------------------------------------------------------- */

static void check_init(tg_check *c)
{
    memset(c, 0, sizeof *c);
}

/* Fold the comparison of tape[i] and ref[i] (n values) for tensor t into c,
 * leaving out (and counting) those marked in skip (NULL: none). */
static void compare(tg_check *c, const tg_tensor *t, const double *tape,
                    const double *ref, const bool *skip, size_t n)
{
    double scale = 0;
    for (size_t i = 0; i < n; i++)
        if (!skip || !skip[i])
            scale = fmax(scale, fabs(ref[i]));
    c->max_ref = fmax(c->max_ref, scale);
    double floor = 1e-3 * scale;
    for (size_t i = 0; i < n; i++) {
        if (skip && skip[i]) {
            c->skipped++;
            continue;
        }
        double a = tape[i], b = ref[i], err = fabs(a - b);
        double den = fmax(fmax(fabs(a), fabs(b)), floor);
        double rel = err == 0 ? 0 : den > 0 ? err / den : INFINITY;
        if (isnan(err))
            err = rel = INFINITY; /* a NaN on either side is the worst error */
        if (c->count == 0 || err > c->max_abs) {
            c->max_abs = err;
            c->abs_t = t, c->abs_i = i, c->abs_tape = a, c->abs_ref = b;
        }
        if (c->count == 0 || rel > c->max_rel) {
            c->max_rel = rel;
            c->rel_t = t, c->rel_i = i, c->rel_tape = a, c->rel_ref = b;
        }
        c->count++;
    }
}

static int need_grad_tensor(tg_tensor *t, const char *fn)
{
    if (t->dtype == TG_I32)
        return tg_error(t->tape, "%s: '%s' is i32 and has no gradient", fn, tg_label(t));
    return TG_OK;
}

int tg_check_grad(tg_tensor *t, const void *ref, tg_dtype ref_dtype, tg_check *out)
{
    if (!t)
        return TG_ERR;
    if (!ref || !out)
        return tg_error(t->tape, "check_grad: %s is NULL", ref ? "out" : "ref");
    if (ref_dtype != TG_F32 && ref_dtype != TG_F64)
        return tg_error(t->tape, "check_grad: ref dtype must be f32 or f64");
    if (need_grad_tensor(t, "check_grad"))
        return TG_ERR;
    double *a = tg_malloc(t->size * sizeof *a), *b = tg_malloc(t->size * sizeof *b);
    int rc = TG_OK;
    if (!a || !b) {
        rc = tg_error(t->tape, "check_grad: out of memory");
    } else if (tg_grad_out(t, a, TG_F64, t->size)) {
        rc = TG_ERR;
    } else {
        for (size_t i = 0; i < t->size; i++)
            b[i] = ref_dtype == TG_F32 ? ((const float *)ref)[i] : ((const double *)ref)[i];
        check_init(out);
        compare(out, t, a, b, NULL, t->size);
    }
    tg_free(a);
    tg_free(b);
    return rc;
}

/* ---- finite differences -------------------------------------------------- */

static int loss_at(tg_tensor *loss, double *f)
{
    if (tg_forward(loss))
        return TG_ERR;
    *f = *(double *)loss->data;
    return TG_OK;
}

/* The loss is sampled at x + u·h for these u (h is a power of two, so every
 * point is exact).  The estimate uses ±½, ±1, ±2; 0 and ±¼ serve only the
 * kink test. */
enum { NS = 9, DEG = 4 };
static const double fd_u[NS] = {-2, -1, -0.5, -0.25, 0, 0.25, 0.5, 1, 2};

/* Kink test: the stencil of an element crosses a kink when the least-squares
 * fit of a quartic through its 9 samples leaves a residual (max |r| / h, in
 * units of the gradient) above KINK_REL × the element's estimate (at least
 * 1e-3 × the tensor's largest) plus the loss's rounding noise (NOISE_ULPS
 * units in the last place of the largest |f|, over h).  A smooth loss
 * leaves about 0.008·h⁴·|f⁽⁵⁾| (a quartic is fitted exactly); a change of
 * slope J at x + c leaves at least 0.005·J for |c| <= h, and less towards
 * the ends of the stencil, but over every c in (−2h, 2h) the estimate's
 * error is at most 8 × the residual: a kink that passes the test costs at
 * most 8·KINK_REL relative error (or a few times the rounding noise that
 * every estimate has).  A smooth element flagged for its high derivatives
 * passes at h/4 (the residual falls 256-fold). */
#define KINK_REL 1e-8
#define NOISE_ULPS 64

/* q: an orthonormal basis (Gram-Schmidt, twice) of the polynomials of
 * degree <= DEG sampled at fd_u. */
typedef struct fit_basis {
    double q[DEG + 1][NS];
} fit_basis;

static void fit_init(fit_basis *b)
{
    double (*q)[NS] = b->q;
    for (int j = 0; j <= DEG; j++) {
        for (int k = 0; k < NS; k++)
            q[j][k] = pow(fd_u[k], j);
        for (int pass = 0; pass < 2; pass++)
            for (int m = 0; m < j; m++) {
                double dot = 0;
                for (int k = 0; k < NS; k++)
                    dot += q[m][k] * q[j][k];
                for (int k = 0; k < NS; k++)
                    q[j][k] -= dot * q[m][k];
            }
        double norm = 0;
        for (int k = 0; k < NS; k++)
            norm += q[j][k] * q[j][k];
        for (int k = 0; k < NS; k++)
            q[j][k] /= sqrt(norm);
    }
}

/* h = step·max(1, |x|) rounded to a power of two, so that x + u·h is
 * (nearly always) exact */
static double fd_step(double step, double x)
{
    return exp2(round(log2(step * fmax(1.0, fabs(x)))));
}

/* One element's estimate d and its kink measure (the fit's residual less
 * the rounding noise, in units of the gradient; see KINK_REL). */
typedef struct fd_point {
    double d, kink;
} fd_point;

/* Sample the loss along element i of x (f0: the loss at x) and estimate:
 * D(h) = (8(f(x+h) − f(x−h)) − (f(x+2h) − f(x−2h))) / 12h, the fourth-order
 * central difference, and by Richardson extrapolation of D(h) and D(h/2)
 * the h⁴ error terms cancel: (16 D(h/2) − D(h)) / 15 = f'(x) + O(h⁶). */
static int fd_element(tg_tensor *loss, double *x, size_t i, double h, double f0,
                      const fit_basis *b, fd_point *p)
{
    const double (*q)[NS] = b->q;
    double x0 = x[i], f[NS];
    for (int k = 0; k < NS; k++) {
        if (fd_u[k] == 0) {
            f[k] = f0;
            continue;
        }
        x[i] = x0 + fd_u[k] * h;
        int rc = loss_at(loss, &f[k]);
        x[i] = x0;
        if (rc)
            return TG_ERR;
    }
    double d1 = (8 * (f[7] - f[1]) - (f[8] - f[0])) / (12 * h);
    double d2 = (8 * (f[6] - f[2]) - (f[7] - f[1])) / (12 * (h / 2));
    p->d = (16 * d2 - d1) / 15;
    /* r = f − f0 less its projection on the quartics */
    double r[NS], big = 0, res = 0;
    for (int k = 0; k < NS; k++)
        r[k] = f[k] - f0, big = fmax(big, fabs(f[k]));
    for (int j = 0; j <= DEG; j++) {
        double dot = 0;
        for (int k = 0; k < NS; k++)
            dot += q[j][k] * r[k];
        for (int k = 0; k < NS; k++)
            r[k] -= dot * q[j][k];
    }
    for (int k = 0; k < NS; k++)
        res = fmax(res, fabs(r[k]));
    p->kink = (res - NOISE_ULPS * DBL_EPSILON * big) / h;
    if (!isfinite(p->d))
        p->kink = 0; /* never skipped: a NaN or Inf is reported */
    return TG_OK;
}

/* Whether the stencil of p crosses a kink (scale: the tensor's largest
 * |estimate|). */
static bool crosses_kink(const fd_point *p, double scale)
{
    return p->kink > KINK_REL * fmax(fabs(p->d), 1e-3 * scale);
}

/* Finite differences of loss for every element of w into fd.  An element
 * whose stencil crosses a kink is estimated again with h/4 (a kink farther
 * than h/2 from x is then outside it); skip[i] marks one whose stencil
 * still crosses one. */
static int fd_tensor(tg_tensor *loss, tg_tensor *w, double step, double f0,
                     const fit_basis *b, double *fd, bool *skip)
{
    double *x = w->data, scale = 0;
    fd_point *p = tg_malloc(w->size * sizeof *p);
    if (!p)
        return tg_error(loss->tape, "out of memory");
    int rc = TG_OK;
    for (size_t i = 0; i < w->size && !rc; i++) {
        rc = fd_element(loss, x, i, fd_step(step, x[i]), f0, b, &p[i]);
        scale = fmax(scale, fabs(p[i].d));
    }
    for (size_t i = 0; i < w->size && !rc; i++) {
        if (crosses_kink(&p[i], scale))
            rc = fd_element(loss, x, i, fd_step(step, x[i]) / 4, f0, b, &p[i]);
        fd[i] = p[i].d;
        skip[i] = crosses_kink(&p[i], scale);
    }
    tg_free(p);
    return rc;
}

/* Check tg_check_fd's arguments; a step of 0 becomes the default. */
static int check_fd_args(tg_tensor *loss, int n_wrt, tg_tensor *const *wrt, double *step,
                         const tg_check *out)
{
    tg_tape *tape = loss->tape;
    if (!out || (n_wrt > 0 && !wrt) || n_wrt < 0)
        return tg_error(tape, "check_fd: out or wrt is NULL, or n_wrt < 0");
    if (loss->size != 1 || loss->dtype == TG_I32)
        return tg_error(tape, "check_fd: loss must be a float scalar, got %s %s",
                        tg_dtype_name((tg_dtype)loss->dtype), tg_shp_of(loss).s);
    if (!loss->node)
        return tg_error(tape, "check_fd: loss must be the output of a recorded op");
    if (!(*step >= 0) || !isfinite(*step))
        return tg_error(tape, "check_fd: step %g is not valid", *step);
    if (*step == 0)
        *step = 1e-3;
    for (int i = 0; i < n_wrt; i++) {
        if (!wrt[i] || wrt[i]->tape != tape)
            return tg_error(tape, "check_fd: wrt[%d] is NULL or on another tape", i);
        if (wrt[i]->node || wrt[i]->kind == TG_OP)
            return tg_error(tape, "check_fd: wrt[%d] ('%s') is not a leaf", i, tg_label(wrt[i]));
        if (need_grad_tensor(wrt[i], "check_fd"))
            return TG_ERR;
    }
    return TG_OK;
}

/* Link (mark) or unlink each leaf read by a node marked in used (the nodes
 * that the loss depends on) to itself through aux. */
static void mark_reached(tg_tape *tape, const bool *used, size_t last, bool mark)
{
    for (size_t i = 0; i <= last; i++)
        for (int j = 0; used[i] && j < tape->nodes[i]->n_in; j++) {
            tg_tensor *t = tape->nodes[i]->in[j];
            if (!t->node)
                t->aux = mark ? t : NULL;
        }
}

/* The tensors to check, in a new array *list of *count: wrt, each of which
 * must reach the loss (node last), or (n_wrt = 0) every leaf of the tape
 * that requires a gradient and reaches it; a check of nothing is an error. */
static int fd_targets(tg_tape *tape, size_t last, int n_wrt, tg_tensor *const *wrt,
                      tg_tensor ***list, int *count)
{
    bool *used = tg_malloc((last + 1) * sizeof *used);
    size_t cap = n_wrt ? (size_t)n_wrt : tape->n_leaves;
    tg_tensor **l = tg_malloc((cap ? cap : 1) * sizeof *l);
    int n = 0, rc = TG_OK;
    *list = NULL;
    *count = 0;
    if (!used || !l) {
        tg_free(used);
        tg_free(l);
        return tg_error(tape, "check_fd: out of memory");
    }
    /* inputs are recorded before the nodes that read them: one sweep down */
    memset(used, 0, (last + 1) * sizeof *used);
    used[last] = true;
    for (size_t i = last + 1; i-- > 0;)
        for (int j = 0; used[i] && j < tape->nodes[i]->n_in; j++)
            if (tape->nodes[i]->in[j]->node)
                used[tape->nodes[i]->in[j]->node->index] = true;
    mark_reached(tape, used, last, true);
    for (int i = 0; i < n_wrt && !rc; i++) {
        if (wrt[i]->aux != wrt[i])
            rc = tg_error(tape, "check_fd: wrt[%d] ('%s') does not reach the loss: its "
                                "gradient is 0 and there is nothing to check",
                          i, tg_label(wrt[i]));
        l[n++] = wrt[i];
    }
    for (size_t i = 0; n_wrt == 0 && i < tape->n_leaves; i++) {
        tg_tensor *t = tape->leaves[i];
        if (t->aux == t && t->requires_grad && t->dtype != TG_I32 && t->size)
            l[n++] = t;
    }
    mark_reached(tape, used, last, false);
    tg_free(used);
    if (!rc && n == 0)
        rc = tg_error(tape, "check_fd: no parameters: the loss depends on no leaf that "
                            "requires a gradient");
    if (rc) {
        tg_free(l);
        return rc;
    }
    *list = l;
    *count = n;
    return TG_OK;
}

/* Copy nodes [0, last] of tape to f64 on cx->dst, make the copies of wrt
 * require a gradient and run backward from the copy of node last. */
static int copy_and_backward(clone_ctx *cx, tg_tape *tape, size_t last, int n_wrt,
                             tg_tensor *const *wrt)
{
    if (copy_graph(cx, tape, last))
        return tg_error(tape, "check_fd: copying the graph to f64 failed: %s",
                        tg_tape_error(cx->dst) ? tg_tape_error(cx->dst) : "out of memory");
    for (int i = 0; i < n_wrt; i++)
        if (!copy_leaf(cx, wrt[i]) || tg_set_requires_grad(wrt[i]->aux, true))
            return tg_error(tape, "check_fd: out of memory");
    if (tg_backward(cx->node_copy[last]))
        return tg_error(tape, "check_fd: %s", tg_tape_error(cx->dst));
    return TG_OK;
}

/* Compare the gradient of closs (on the copy) with respect to each wrt[i]'s
 * copy (wrt[i]->aux) with finite differences, folded into out. */
static int compare_fd(tg_tape *tape, tg_tensor *closs, int n_wrt, tg_tensor *const *wrt,
                      double step, tg_check *out)
{
    fit_basis b;
    double f0;
    fit_init(&b);
    check_init(out);
    if (loss_at(closs, &f0))
        return tg_error(tape, "check_fd: %s", tg_tape_error(closs->tape));
    for (int i = 0; i < n_wrt; i++) {
        tg_tensor *w = wrt[i]->aux;
        double *tape_g = tg_malloc(w->size * sizeof *tape_g);
        double *fd = tg_malloc(w->size * sizeof *fd);
        bool *skip = tg_malloc(w->size * sizeof *skip);
        int rc = TG_OK;
        if (!tape_g || !fd || !skip)
            rc = tg_error(tape, "check_fd: out of memory");
        else if (tg_grad_out(w, tape_g, TG_F64, w->size) ||
                 fd_tensor(closs, w, step, f0, &b, fd, skip))
            rc = tg_error(tape, "check_fd: %s", tg_tape_error(closs->tape));
        else
            compare(out, wrt[i], tape_g, fd, skip, w->size);
        tg_free(tape_g);
        tg_free(fd);
        tg_free(skip);
        if (rc)
            return TG_ERR;
    }
    if (out->count == 0 && out->skipped)
        return tg_error(tape, "check_fd: nothing compared: the stencil of each of the %zu "
                              "values crosses a kink", out->skipped);
    if (out->count == 0)
        return tg_error(tape, "check_fd: nothing compared: the tensors have no elements");
    return TG_OK;
}

int tg_check_fd(tg_tensor *loss, int n_wrt, tg_tensor *const *wrt, double step,
                tg_check *out)
{
    if (!loss)
        return TG_ERR;
    if (check_fd_args(loss, n_wrt, wrt, &step, out))
        return TG_ERR;
    tg_tape *tape = loss->tape;
    size_t last = loss->node->index;
    tg_tensor **list;
    int n;
    if (fd_targets(tape, last, n_wrt, wrt, &list, &n))
        return TG_ERR;
    clone_ctx cx = {0};
    cx.dst = tg_tape_new();
    cx.node_copy = tg_malloc((last + 1) * sizeof *cx.node_copy);
    int rc = TG_ERR;
    if (cx.dst) { /* the copy runs in the same mode; random ops keep one draw */
        cx.dst->training = tape->training;
        cx.dst->random_frozen = true;
    }
    if (!cx.dst || !cx.node_copy)
        tg_error(tape, "check_fd: out of memory");
    else if (!copy_and_backward(&cx, tape, last, n, list) &&
             !compare_fd(tape, cx.node_copy[last], n, list, step, out))
        rc = TG_OK;
    /* leave no link behind */
    for (size_t i = 0; i < cx.n_touched; i++)
        cx.touched[i]->aux = NULL;
    for (int i = 0; i < n; i++)
        list[i]->aux = NULL;
    tg_free(list);
    tg_free(cx.touched);
    tg_free(cx.node_copy);
    tg_tape_free(cx.dst);
    return rc;
}

/* ---- for the second-order checks (src/core/higher.c) ------------------- */

void tg_check_begin(tg_check *c) { check_init(c); }

void tg_check_fold(tg_check *c, const tg_tensor *t, const double *tape, const double *ref,
                   size_t n)
{
    compare(c, t, tape, ref, NULL, n);
}

tg_tape *tg_clone_f64(tg_tensor *y, int n, tg_tensor *const *x, tg_tensor **yc,
                      tg_tensor **xc)
{
    tg_tape *tape = y->tape;
    size_t last = y->node->index;
    clone_ctx cx = {0};
    cx.dst = tg_tape_new();
    cx.node_copy = tg_malloc((last + 1) * sizeof *cx.node_copy);
    bool fine = cx.dst && cx.node_copy;
    if (fine) {
        cx.dst->training = tape->training;
        cx.dst->random_frozen = true;
        fine = !copy_graph(&cx, tape, last);
        if (!fine)
            tg_error(tape, "copying the graph to f64 failed: %s",
                     tg_tape_error(cx.dst) ? tg_tape_error(cx.dst) : "out of memory");
    } else {
        tg_error(tape, "out of memory");
    }
    for (int k = 0; fine && k < n; k++)
        fine = (xc[k] = copy_leaf(&cx, x[k])) != NULL;
    if (fine)
        *yc = cx.node_copy[last];
    for (size_t i = 0; i < cx.n_touched; i++)
        cx.touched[i]->aux = NULL;
    tg_free(cx.touched);
    tg_free(cx.node_copy);
    if (!fine) {
        tg_tape_free(cx.dst);
        return NULL;
    }
    return cx.dst;
}

/* ---- printing ------------------------------------------------------------ */

static void print_where(FILE *f, const tg_tensor *t, size_t i)
{
    fprintf(f, "%s[", tg_label(t));
    size_t stride = t ? t->size : 1;
    for (int a = 0; t && a < t->rank; a++) {
        stride /= t->shape[a];
        fprintf(f, a ? ",%zu" : "%zu", i / stride);
        i %= stride;
    }
    fputc(']', f);
}

void tg_check_print(FILE *f, const char *label, const tg_check *c)
{
    if (!f || !c)
        return;
    fprintf(f, "%s: %zu values", label ? label : "check", c->count);
    if (c->skipped)
        fprintf(f, " (%zu more skipped at kinks)", c->skipped);
    fprintf(f, ", max abs err %.3g at ", c->max_abs);
    print_where(f, c->abs_t, c->abs_i);
    fprintf(f, " (tape %.10g, ref %.10g), max rel err %.3g at ", c->abs_tape, c->abs_ref,
            c->max_rel);
    print_where(f, c->rel_t, c->rel_i);
    fprintf(f, " (tape %.10g, ref %.10g)\n", c->rel_tape, c->rel_ref);
}
