/* Second order and forward mode, all built on tg_grad_graph:
 *   HVP       H·v = ∂/∂x ⟨∂L/∂x, v⟩: the recorded gradient dotted with v and
 *             differentiated again (reverse over reverse).
 *   JVP       J·u = ∂/∂w ⟨Jᵀ·w, u⟩: the recorded VJP is linear in its seed
 *             w, so its gradient with respect to w is J·u (the double-VJP
 *             construction: no tangent rule per op, every op with a vjp
 *             rule has a JVP, and its value does not depend on w).
 *   dense     Hessians and Jacobians column by column (row by row) from
 *             one recorded HVP (VJP) whose vector is a constant set to e_j,
 *             replayed per column; what they record is removed afterwards.
 *   checks    a hand-derived Hessian or HVP against the tape; the tape's
 *             Hessian against Richardson-extrapolated central differences
 *             of the gradient on an f64 copy, and its symmetry. */
#include "core.h"

#include <math.h>

/* What the dense helpers record is removed again: nodes and graph memory
 * from the mark on (nothing older points into it: no backward runs). */
typedef struct mark {
    size_t nodes;
    tg_arena_mark arena;
} mark;

static mark get_mark(tg_tape *t) { return (mark){t->n_nodes, tg_arena_get_mark(&t->graph_arena)}; }

static void rewind_to(tg_tape *t, mark m)
{
    t->n_nodes = m.nodes;
    if (t->grads_ready > m.nodes)
        t->grads_ready = m.nodes;
    if (t->stale_at != SIZE_MAX && t->stale_at >= m.nodes)
        t->stale_at = SIZE_MAX;
    tg_arena_rewind(&t->graph_arena, m.arena);
}

/* A tensor that only names where a check found its worst element: "H" of
 * shape N×N (or "Hv" of N) for tg_check_print; no data, never recorded,
 * dropped with the graph. */
static const tg_tensor *label_tensor(tg_tape *tape, const char *name, int rank, size_t N)
{
    tg_tensor *t = tg_arena_alloc(&tape->graph_arena, sizeof *t);
    if (!t)
        return NULL;
    memset(t, 0, sizeof *t);
    t->tape = tape;
    t->name = name;
    t->rank = (uint8_t)rank;
    t->shape[0] = t->shape[1] = N;
    t->size = rank == 2 ? N * N : N;
    t->kind = TG_CONST;
    t->temp = 1;
    t->epoch = tape->epoch;
    return t;
}

/* Fold tape vs ref (count values) into a fresh *out, the worst elements
 * named by the label tensor. */
static void fold(tg_tape *tape, tg_check *out, const char *name, int rank, size_t N,
                 const double *tape_v, const double *ref)
{
    tg_check_begin(out);
    tg_check_fold(out, label_tensor(tape, name, rank, N), tape_v, ref, rank == 2 ? N * N : N);
}

/* Check x[0..n) (and vectors like them, when given) for fn; *total: their
 * element count. */
static int check_vars(tg_tensor *y, int n, tg_tensor *const *x, tg_tensor *const *u,
                      const char *fn, size_t *total)
{
    if (!y || tg_check_alive(y, fn))
        return TG_ERR;
    tg_tape *tape = y->tape;
    if (n < 1 || !x)
        return tg_error(tape, "%s: needs n >= 1 tensors (n = %d, x %s)", fn, n,
                        x ? "given" : "NULL");
    size_t sum = 0;
    for (int k = 0; k < n; k++) {
        if (!x[k])
            return tg_error(tape, "%s: x[%d] is NULL", fn, k);
        if (x[k]->tape != tape)
            return tg_error(tape, "%s: x[%d] ('%s') belongs to another tape", fn, k,
                            tg_label(x[k]));
        if (tg_check_alive(x[k], fn))
            return TG_ERR;
        if (u) {
            if (!u[k])
                return tg_error(tape, "%s: vector %d is NULL", fn, k);
            if (u[k]->tape != tape || u[k]->dtype != x[k]->dtype || u[k]->rank != x[k]->rank ||
                memcmp(u[k]->shape, x[k]->shape, x[k]->rank * sizeof(size_t)))
                return tg_error(tape, "%s: vector %d ('%s', %s %s) must match x[%d] ('%s', "
                                      "%s %s) on the same tape", fn, k, tg_label(u[k]),
                                tg_dtype_name((tg_dtype)u[k]->dtype), tg_shp_of(u[k]).s, k,
                                tg_label(x[k]), tg_dtype_name((tg_dtype)x[k]->dtype),
                                tg_shp_of(x[k]).s);
        }
        sum += x[k]->size;
    }
    *total = sum;
    return TG_OK;
}

/* Σ_k sum(a_k ⊙ b_k) */
static tg_tensor *dot_all(int n, tg_tensor *const *a, tg_tensor *const *b)
{
    tg_tensor *s = NULL;
    for (int k = 0; k < n; k++) {
        tg_tensor *d = tg_sum(tg_mul(a[k], b[k]));
        s = s ? tg_add(s, d) : d;
        if (!s)
            return NULL;
    }
    return s;
}

int tg_hvp(tg_tensor *loss, int n, tg_tensor *const *x, tg_tensor *const *v, tg_tensor **hv)
{
    size_t total;
    if (check_vars(loss, n, x, v, "hvp", &total))
        return TG_ERR;
    if (!hv)
        return tg_error(loss->tape, "hvp: hv is NULL");
    tg_tensor **g = tg_malloc((size_t)n * sizeof *g);
    int rc = !g ? tg_error(loss->tape, "hvp: out of memory")
                : tg_grad_graph(loss, NULL, n, x, g);
    tg_tensor *s = rc ? NULL : dot_all(n, g, v);
    if (!rc)
        rc = s ? tg_grad_graph(s, NULL, n, x, hv) : TG_ERR;
    tg_free(g);
    return rc;
}

tg_tensor *tg_jvp(tg_tensor *y, int n, tg_tensor *const *x, tg_tensor *const *u)
{
    size_t total;
    if (check_vars(y, n, x, u, "jvp", &total))
        return NULL;
    tg_tensor *w = tg_const_like(y, 0), *out = NULL;
    tg_tensor **g = tg_malloc((size_t)n * sizeof *g);
    if (!g) {
        tg_error(y->tape, "jvp: out of memory");
    } else if (w && !tg_grad_graph(y, w, n, x, g)) {
        tg_tensor *s = dot_all(n, g, u);
        if (s && tg_grad_graph(s, NULL, 1, &w, &out))
            out = NULL;
    }
    tg_free(g);
    return out;
}

/* The node whose forward computes all of outs (the latest), or NULL when
 * none is an op output. */
static tg_tensor *latest(int n, tg_tensor *const *outs)
{
    tg_tensor *t = NULL;
    for (int k = 0; k < n; k++)
        if (outs[k]->node && (!t || outs[k]->node->index > t->node->index))
            t = outs[k];
    return t;
}

/* vec (total values) into the constants c[0..n), or out of outs into vec */
static void scatter(int n, tg_tensor *const *c, const double *vec)
{
    for (int k = 0; k < n; vec += c[k]->size, k++)
        tg_copy_in(c[k], vec, TG_F64, c[k]->size);
}

static void gather(int n, tg_tensor *const *outs, double *vec)
{
    for (int k = 0; k < n; vec += outs[k]->size, k++)
        tg_copy_out(outs[k], vec, TG_F64, outs[k]->size);
}

/* M[r·cols + j] for j = 0..cols: outs (rows values) after the constants c
 * (cols values) were set to e_j and the tape replayed; the graph leading
 * from c to outs was recorded by the caller. */
static int columns(tg_tape *tape, int nc, tg_tensor *const *c, size_t cols, int no,
                   tg_tensor *const *outs, size_t rows, double *M)
{
    double *e = tg_malloc(cols * sizeof *e), *col = tg_malloc(rows * sizeof *col);
    tg_tensor *last = latest(no, outs);
    int rc = e && col ? TG_OK : tg_error(tape, "out of memory");
    if (e)
        memset(e, 0, cols * sizeof *e);
    for (size_t j = 0; !rc && j < cols; j++) {
        e[j] = 1;
        scatter(nc, c, e);
        e[j] = 0;
        if (last && tg_forward(last)) {
            rc = TG_ERR;
            break;
        }
        gather(no, outs, col);
        for (size_t r = 0; r < rows; r++)
            M[r * cols + j] = col[r];
    }
    tg_free(e);
    tg_free(col);
    return rc;
}

/* Constants like x[0..n) in a new array (graph memory), or NULL. */
static tg_tensor **consts_like(int n, tg_tensor *const *x)
{
    tg_tensor **c = tg_malloc((size_t)n * sizeof *c);
    for (int k = 0; c && k < n; k++)
        if (!(c[k] = tg_const_like(x[k], 0))) {
            tg_free(c);
            return NULL;
        }
    return c;
}

int tg_hessian(tg_tensor *loss, int n, tg_tensor *const *x, double *H)
{
    size_t N;
    if (check_vars(loss, n, x, NULL, "hessian", &N))
        return TG_ERR;
    tg_tape *tape = loss->tape;
    if (!H)
        return tg_error(tape, "hessian: H is NULL");
    mark m = get_mark(tape);
    tg_tensor **v = consts_like(n, x), **hv = tg_malloc((size_t)n * sizeof *hv);
    int rc = !v || !hv ? tg_error(tape, "hessian: out of memory") : tg_hvp(loss, n, x, v, hv);
    if (!rc)
        rc = columns(tape, n, v, N, n, hv, N, H);
    tg_free(v);
    tg_free(hv);
    rewind_to(tape, m);
    return rc;
}

int tg_jacobian(tg_tensor *y, int n, tg_tensor *const *x, double *J)
{
    size_t N;
    if (check_vars(y, n, x, NULL, "jacobian", &N))
        return TG_ERR;
    tg_tape *tape = y->tape;
    if (!J)
        return tg_error(tape, "jacobian: J is NULL");
    if (y->dtype == TG_I32)
        return tg_error(tape, "jacobian: y '%s' is i32", tg_label(y));
    mark m = get_mark(tape);
    tg_tensor *w = tg_const_like(y, 0);
    tg_tensor **g = tg_malloc((size_t)n * sizeof *g);
    double *Jt = tg_malloc(N * y->size * sizeof *Jt);
    int rc = !w || !g || !Jt ? tg_error(tape, "jacobian: out of memory")
                             : tg_grad_graph(y, w, n, x, g);
    /* row i of J is the VJP with e_i: columns() gives Jᵀ (N × m) */
    if (!rc)
        rc = columns(tape, 1, &w, y->size, n, g, N, Jt);
    for (size_t r = 0; !rc && r < N; r++)
        for (size_t i = 0; i < y->size; i++)
            J[i * N + r] = Jt[r * y->size + i];
    tg_free(g);
    tg_free(Jt);
    rewind_to(tape, m);
    return rc;
}

int tg_check_hessian(tg_tensor *loss, int n, tg_tensor *const *x, const double *H_ref,
                     tg_check *out)
{
    size_t N;
    if (check_vars(loss, n, x, NULL, "check_hessian", &N))
        return TG_ERR;
    if (!H_ref || !out)
        return tg_error(loss->tape, "check_hessian: H_ref or out is NULL");
    double *H = tg_malloc(N * N * sizeof *H);
    if (!H)
        return tg_error(loss->tape, "check_hessian: out of memory");
    int rc = tg_hessian(loss, n, x, H);
    if (!rc)
        fold(loss->tape, out, "H", 2, N, H, H_ref);
    tg_free(H);
    return rc;
}

int tg_check_hvp(tg_tensor *loss, int n, tg_tensor *const *x, const double *v,
                 const double *hv_ref, tg_check *out)
{
    size_t N;
    if (check_vars(loss, n, x, NULL, "check_hvp", &N))
        return TG_ERR;
    tg_tape *tape = loss->tape;
    if (!v || !hv_ref || !out)
        return tg_error(tape, "check_hvp: v, hv_ref or out is NULL");
    mark m = get_mark(tape);
    tg_tensor **vc = consts_like(n, x), **hv = tg_malloc((size_t)n * sizeof *hv);
    double *got = tg_malloc(N * sizeof *got);
    int rc = !vc || !hv || !got ? tg_error(tape, "check_hvp: out of memory")
                                : tg_hvp(loss, n, x, vc, hv);
    if (!rc) {
        scatter(n, vc, v);
        tg_tensor *last = latest(n, hv);
        rc = last ? tg_forward(last) : TG_OK;
    }
    if (!rc)
        gather(n, hv, got);
    rewind_to(tape, m);
    if (!rc)
        fold(tape, out, "Hv", 1, N, got, hv_ref);
    tg_free(vc);
    tg_free(hv);
    tg_free(got);
    return rc;
}

/* ---- the tape's Hessian against finite differences of its gradient ------ */

/* The gradient g (N values) with x's element (k, e) at x0 + u·h. */
static int grad_at(tg_tensor *xk, size_t e, double x0, double u, double h, int n,
                   tg_tensor *const *g, tg_tensor *last, double *out)
{
    tg_set(xk, e, x0 + u * h);
    if (last && tg_forward(last))
        return TG_ERR;
    gather(n, g, out);
    return TG_OK;
}

/* Column j (element e of xk) of the Hessian by Richardson-extrapolated
 * fourth-order central differences of the gradient:
 *   D(h) = (8(g(x+h) − g(x−h)) − (g(x+2h) − g(x−2h))) / 12h
 *   R    = (16 D(h/2) − D(h)) / 15 */
static int fd_column(tg_tensor *xk, size_t e, double step, int n, tg_tensor *const *g,
                     tg_tensor *last, size_t N, double *col, double *buf)
{
    double x0 = tg_get(xk, e);
    double h = exp2(round(log2(step * fmax(1, fabs(x0)))));
    static const double u[6] = {-2, -1, -0.5, 0.5, 1, 2};
    double *gs[6];
    for (int i = 0; i < 6; i++) {
        gs[i] = buf + (size_t)i * N;
        if (grad_at(xk, e, x0, u[i], h, n, g, last, gs[i]))
            return TG_ERR;
    }
    tg_set(xk, e, x0);
    for (size_t r = 0; r < N; r++) {
        double d1 = (8 * (gs[4][r] - gs[1][r]) - (gs[5][r] - gs[0][r])) / (12 * h);
        double dh = (8 * (gs[3][r] - gs[2][r]) - (gs[4][r] - gs[1][r])) / (6 * h);
        col[r] = (16 * dh - d1) / 15;
    }
    return TG_OK;
}

static int hessian_fd_copy(tg_tape *c, tg_tensor *yc, int n, tg_tensor *const *xc, size_t N,
                           double step, double *H, double *F)
{
    if (tg_hessian(yc, n, xc, H))
        return TG_ERR;
    tg_tensor **g = tg_malloc((size_t)n * sizeof *g);
    double *col = tg_malloc(N * sizeof *col), *buf = tg_malloc(6 * N * sizeof *buf);
    int rc = !g || !col || !buf ? tg_error(c, "out of memory")
                                : tg_grad_graph(yc, NULL, n, xc, g);
    tg_tensor *last = rc ? NULL : latest(n, g);
    size_t j = 0;
    for (int k = 0; !rc && k < n; k++)
        for (size_t e = 0; !rc && e < xc[k]->size; e++, j++) {
            rc = fd_column(xc[k], e, step, n, g, last, N, col, buf);
            for (size_t r = 0; !rc && r < N; r++)
                F[r * N + j] = col[r];
        }
    tg_free(g);
    tg_free(col);
    tg_free(buf);
    return rc;
}

int tg_check_hessian_fd(tg_tensor *loss, int n, tg_tensor *const *x, double step,
                        tg_check *out, double *asym)
{
    size_t N;
    if (check_vars(loss, n, x, NULL, "check_hessian_fd", &N))
        return TG_ERR;
    tg_tape *tape = loss->tape;
    if (!out)
        return tg_error(tape, "check_hessian_fd: out is NULL");
    if (!loss->node || loss->size != 1)
        return tg_error(tape, "check_hessian_fd: loss '%s' must be a scalar op output, "
                              "not %s", tg_label(loss), loss->node ? tg_shp_of(loss).s
                                                                  : "a leaf");
    if (!(step >= 0) || !isfinite(step))
        return tg_error(tape, "check_hessian_fd: step %g is not valid", step);
    for (int k = 0; k < n; k++)
        if (x[k]->node || x[k]->dtype == TG_I32)
            return tg_error(tape, "check_hessian_fd: x[%d] ('%s') is not a float leaf", k,
                            tg_label(x[k]));
    tg_tensor *yc, **xc = tg_malloc((size_t)n * sizeof *xc);
    double *H = tg_malloc(N * N * sizeof *H), *F = tg_malloc(N * N * sizeof *F);
    tg_tape *c = xc && H && F ? tg_clone_f64(loss, n, x, &yc, xc) : NULL;
    int rc = TG_ERR;
    if (!xc || !H || !F)
        tg_error(tape, "check_hessian_fd: out of memory");
    else if (c && hessian_fd_copy(c, yc, n, xc, N, step == 0 ? 1e-3 : step, H, F))
        tg_error(tape, "check_hessian_fd: %s", tg_tape_error(c));
    else if (c)
        rc = TG_OK;
    if (!rc) {
        fold(tape, out, "H", 2, N, H, F);
        double big = 0, diff = 0;
        for (size_t i = 0; i < N * N; i++)
            big = fmax(big, fabs(H[i]));
        for (size_t r = 0; r < N; r++)
            for (size_t j = 0; j < r; j++)
                diff = fmax(diff, fabs(H[r * N + j] - H[j * N + r]));
        if (asym)
            *asym = big > 0 ? diff / big : diff;
    }
    tg_tape_free(c);
    tg_free(xc);
    tg_free(H);
    tg_free(F);
    return rc;
}
