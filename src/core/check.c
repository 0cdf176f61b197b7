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

/* Fold the comparison of tape[i] and ref[i] (n values) for tensor t into c. */
static void compare(tg_check *c, const tg_tensor *t, const double *tape,
                    const double *ref, size_t n)
{
    double scale = 0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(ref[i]));
    c->max_ref = fmax(c->max_ref, scale);
    double floor = 1e-3 * scale;
    for (size_t i = 0; i < n; i++) {
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
        return tg_error(t->tape, "%s: '%s' is i32 and has no gradient", fn,
                        t->name ? t->name : tg_op_name(t));
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
        compare(out, t, a, b, t->size);
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

/* D(h) = (8(f(x+h) − f(x−h)) − (f(x+2h) − f(x−2h))) / 12h, the fourth-order
 * central difference of loss in element i of w. */
static int central(tg_tensor *loss, double *x, size_t i, double h, double *d)
{
    double x0 = x[i], f[4];
    const double off[4] = {h, -h, 2 * h, -2 * h};
    for (int k = 0; k < 4; k++) {
        x[i] = x0 + off[k];
        int rc = loss_at(loss, &f[k]);
        x[i] = x0;
        if (rc)
            return TG_ERR;
    }
    *d = (8 * (f[0] - f[1]) - (f[2] - f[3])) / (12 * h);
    return TG_OK;
}

/* Richardson extrapolation of D(h) and D(h/2): the h⁴ error terms cancel,
 * (16 D(h/2) − D(h)) / 15 = f'(x) + O(h⁶). */
static int fd_tensor(tg_tensor *loss, tg_tensor *w, double step, double *fd)
{
    double *x = w->data;
    for (size_t i = 0; i < w->size; i++) {
        /* a power of two, so x ± h, x ± 2h are (nearly always) exact */
        double h = exp2(round(log2(step * fmax(1.0, fabs(x[i]))))), d1, d2;
        if (central(loss, x, i, h, &d1) || central(loss, x, i, h / 2, &d2))
            return TG_ERR;
        fd[i] = (16 * d2 - d1) / 15;
    }
    double f0;
    return loss_at(loss, &f0); /* leave every node at the unperturbed values */
}

int tg_check_fd(tg_tensor *loss, int n_wrt, tg_tensor *const *wrt, double step,
                tg_check *out)
{
    if (!loss)
        return TG_ERR;
    tg_tape *tape = loss->tape;
    if (!out || (n_wrt > 0 && !wrt) || n_wrt < 0)
        return tg_error(tape, "check_fd: out or wrt is NULL, or n_wrt < 0");
    if (loss->size != 1 || loss->dtype == TG_I32)
        return tg_error(tape, "check_fd: loss must be a float scalar, got %s %s",
                        tg_dtype_name((tg_dtype)loss->dtype), tg_shp_of(loss).s);
    if (!loss->node)
        return tg_error(tape, "check_fd: loss must be the output of a recorded op");
    if (!(step >= 0) || !isfinite(step))
        return tg_error(tape, "check_fd: step %g is not valid", step);
    if (step == 0)
        step = 1e-3;
    for (int i = 0; i < n_wrt; i++) {
        if (!wrt[i] || wrt[i]->tape != tape)
            return tg_error(tape, "check_fd: wrt[%d] is NULL or on another tape", i);
        if (wrt[i]->node || wrt[i]->kind == TG_OP)
            return tg_error(tape, "check_fd: wrt[%d] ('%s') is not a leaf", i,
                            wrt[i]->name ? wrt[i]->name : tg_op_name(wrt[i]));
        if (need_grad_tensor(wrt[i], "check_fd"))
            return TG_ERR;
    }

    size_t last = loss->node->index;
    clone_ctx cx = {0};
    cx.dst = tg_tape_new();
    cx.node_copy = tg_malloc((last + 1) * sizeof *cx.node_copy);
    double *tape_g = NULL, *fd = NULL;
    int rc = TG_ERR;
    if (!cx.dst || !cx.node_copy) {
        tg_error(tape, "check_fd: out of memory");
        goto done;
    }
    if (copy_graph(&cx, tape, last)) {
        tg_error(tape, "check_fd: copying the graph to f64 failed: %s",
                 tg_tape_error(cx.dst) ? tg_tape_error(cx.dst) : "out of memory");
        goto done;
    }
    for (int i = 0; i < n_wrt; i++)
        if (!copy_leaf(&cx, wrt[i]) || tg_set_requires_grad(wrt[i]->aux, true)) {
            tg_error(tape, "check_fd: out of memory");
            goto done;
        }
    tg_tensor *closs = cx.node_copy[last];
    if (tg_backward(closs)) {
        tg_error(tape, "check_fd: %s", tg_tape_error(cx.dst));
        goto done;
    }
    check_init(out);
    for (int i = 0; i < n_wrt; i++) {
        tg_tensor *w = wrt[i]->aux;
        tape_g = tg_malloc(w->size * sizeof *tape_g);
        fd = tg_malloc(w->size * sizeof *fd);
        if (!tape_g || !fd) {
            tg_error(tape, "check_fd: out of memory");
            goto done;
        }
        if (tg_grad_out(w, tape_g, TG_F64, w->size) || fd_tensor(closs, w, step, fd)) {
            tg_error(tape, "check_fd: %s", tg_tape_error(cx.dst));
            goto done;
        }
        compare(out, wrt[i], tape_g, fd, w->size);
        tg_free(tape_g);
        tg_free(fd);
        tape_g = fd = NULL;
    }
    rc = TG_OK;
done:
    for (size_t i = 0; i < cx.n_touched; i++)
        cx.touched[i]->aux = NULL;
    for (int i = 0; i < n_wrt; i++)
        if (wrt[i])
            wrt[i]->aux = NULL;
    tg_free(cx.touched);
    tg_free(cx.node_copy);
    tg_free(tape_g);
    tg_free(fd);
    tg_tape_free(cx.dst);
    return rc;
}

/* ---- printing ------------------------------------------------------------ */

static void print_where(FILE *f, const tg_tensor *t, size_t i)
{
    fprintf(f, "%s[", t && t->name ? t->name : tg_op_name(t));
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
    fprintf(f, "%s: %zu values, max abs err %.3g at ", label ? label : "check", c->count,
            c->max_abs);
    print_where(f, c->abs_t, c->abs_i);
    fprintf(f, " (tape %.10g, ref %.10g), max rel err %.3g at ", c->abs_tape, c->abs_ref,
            c->max_rel);
    print_where(f, c->rel_t, c->rel_i);
    fprintf(f, " (tape %.10g, ref %.10g)\n", c->rel_tape, c->rel_ref);
}
