/* Gradients recorded as ops (tg_grad_graph): the reverse walk of backward.c,
 * but each node's backward is its op's vjp rule, which records tg_ ops
 * computing the input gradients from the output gradient.  The gradients
 * are then tensors of the tape like any other: used in further ops,
 * replayed, and differentiated again (grad of grad, Hessian-vector
 * products, and by differentiating a VJP with respect to its linear seed,
 * Jacobian-vector products: src/core/higher.c).
 *
 * Which nodes the walk visits: those between a tensor of `wrt` and y
 * (dep[i]: node i's output depends on some wrt), from y's node down.  The
 * gradient reaching a node's output is accumulated in acc[node index]
 * (tg_add of the contributions, in the order the walk meets them). */
#include "core.h"

tg_tensor *tg_const_like(const tg_tensor *like, double v)
{
    if (!like)
        return NULL;
    tg_tape *tape = like->tape;
    tg_tensor *t = tg_leaf_new(tape, TG_CONST, NULL, (tg_dtype)like->dtype, like->rank,
                               like->shape, &tape->graph_arena);
    if (!t) {
        tg_error(tape, "grad_graph: out of memory");
        return NULL;
    }
    if (v != 0)
        tg_fill(t, v);
    return t;
}

/* Right-aligned axis j of t (numpy broadcasting): 1 where t has no such axis. */
static size_t dim_r(const tg_tensor *t, int rank, int j)
{
    int k = j - (rank - t->rank);
    return k < 0 ? 1 : t->shape[k];
}

tg_tensor *tg_sum_to(tg_tensor *g, const tg_tensor *like)
{
    if (!g || !like)
        return NULL;
    bool same = g->rank == like->rank;
    for (int i = 0; same && i < g->rank; i++)
        same = g->shape[i] == like->shape[i];
    if (same)
        return g;
    /* leading axes like lacks, then the axes where like has 1 */
    while (g && g->rank > like->rank)
        g = tg_sum_axis(g, 0, false);
    for (int i = 0; g && i < like->rank; i++)
        if (like->shape[i] == 1 && g->shape[i] != 1)
            g = tg_sum_axis(g, i, true);
    return g;
}

tg_tensor *tg_expand_to(tg_tensor *g, const tg_tensor *like)
{
    if (!g || !like)
        return NULL;
    bool same = g->size == like->size;
    for (int j = 0; same && j < like->rank; j++)
        same = dim_r(g, like->rank, j) == like->shape[j];
    if (same && g->rank == like->rank)
        return g;
    if (same) /* only size-1 axes differ */
        return tg_reshape(g, like->rank, like->shape);
    return tg_add(g, tg_const_like(like, 0));
}

static bool same_shape(const tg_tensor *a, const tg_tensor *b)
{
    if (a->rank != b->rank || a->dtype != b->dtype)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}

typedef struct walk {
    tg_tape *tape;
    int n;
    tg_tensor *const *wrt;
    uint8_t *dep;     /* per node index: its output depends on a wrt */
    tg_tensor **acc;  /* per node index: the gradient reaching its output */
    tg_tensor **accw; /* per wrt leaf: the gradient reaching it            */
} walk;

/* The index of t in wrt (its first occurrence), or -1. */
static int wrt_index(const walk *w, const tg_tensor *t)
{
    for (int k = 0; k < w->n; k++)
        if (w->wrt[k] == t)
            return k;
    return -1;
}

static bool depends(const walk *w, const tg_tensor *t)
{
    return (t->node && t->node->index != SIZE_MAX && w->dep[t->node->index]) ||
           wrt_index(w, t) >= 0;
}

/* acc += g for the tensor t (a node output or a wrt leaf). */
static int add_into(walk *w, tg_tensor *t, tg_tensor *g)
{
    tg_tensor **slot = t->node ? &w->acc[t->node->index] : &w->accw[wrt_index(w, t)];
    *slot = *slot ? tg_add(*slot, g) : g;
    return *slot ? TG_OK : TG_ERR;
}

static int check_args(tg_tensor *y, tg_tensor *gy, int n, tg_tensor *const *wrt,
                      tg_tensor **grads)
{
    if (!y || tg_check_alive(y, "grad_graph"))
        return TG_ERR;
    tg_tape *tape = y->tape;
    if (y->dtype == TG_I32)
        return tg_error(tape, "grad_graph: y '%s' is i32 and cannot be differentiated",
                        tg_label(y));
    if (!tape->grad_enabled)
        return tg_error(tape, "grad_graph: recording is off (tg_set_grad_enabled): the "
                              "gradients could not be recorded");
    if (tape->seg_open)
        return tg_error(tape, "grad_graph: checkpoint segment %zu is still open "
                              "(tg_checkpoint_end first)", tape->n_segs + 1);
    if (n < 1 || !wrt || !grads)
        return tg_error(tape, "grad_graph: needs n >= 1 tensors in wrt and room for n "
                              "gradients (n = %d, wrt %s, grads %s)", n,
                        wrt ? "given" : "NULL", grads ? "given" : "NULL");
    for (int k = 0; k < n; k++) {
        if (!wrt[k])
            return tg_error(tape, "grad_graph: wrt[%d] is NULL", k);
        if (wrt[k]->tape != tape)
            return tg_error(tape, "grad_graph: wrt[%d] ('%s') belongs to another tape", k,
                            tg_label(wrt[k]));
        if (tg_check_alive(wrt[k], "grad_graph"))
            return TG_ERR;
        if (wrt[k]->dtype != y->dtype)
            return tg_error(tape, "grad_graph: wrt[%d] ('%s') is %s but y '%s' is %s", k,
                            tg_label(wrt[k]), tg_dtype_name((tg_dtype)wrt[k]->dtype),
                            tg_label(y), tg_dtype_name((tg_dtype)y->dtype));
    }
    if (!gy) {
        if (y->size != 1)
            return tg_error(tape, "grad_graph: y '%s' has %zu elements (%s); a non-scalar "
                                  "y needs its grad_output", tg_label(y), y->size,
                            tg_shp_of(y).s);
        return TG_OK;
    }
    if (gy->tape != tape)
        return tg_error(tape, "grad_graph: grad_output '%s' belongs to another tape",
                        tg_label(gy));
    if (tg_check_alive(gy, "grad_graph"))
        return TG_ERR;
    if (!same_shape(gy, y))
        return tg_error(tape, "grad_graph: grad_output '%s' is %s %s but y '%s' is %s %s",
                        tg_label(gy), tg_dtype_name((tg_dtype)gy->dtype), tg_shp_of(gy).s,
                        tg_label(y), tg_dtype_name((tg_dtype)y->dtype), tg_shp_of(y).s);
    return TG_OK;
}

/* Node nd's vjp rule, its gradients added to its inputs' accumulators. */
static int visit(walk *w, tg_node *nd)
{
    tg_tape *tape = w->tape;
    if (nd->seg)
        return tg_error(tape, "grad_graph: %s (node %zu) is in checkpoint segment %u, whose "
                              "values are not kept; record gradients without checkpointing",
                        nd->op->name, nd->index, (unsigned)nd->seg);
    if (!nd->op->vjp)
        return tg_error(tape, "grad_graph: %s (node %zu) has no recorded backward: its "
                              "gradient can be computed (tg_backward) but not recorded, so "
                              "it cannot be differentiated again", nd->op->name, nd->index);
    unsigned need = 0;
    for (int j = 0; j < nd->n_in; j++)
        if (nd->in[j]->dtype != TG_I32 && depends(w, nd->in[j]))
            need |= 1u << j;
    if (!need)
        return TG_OK;
    tg_tensor *gx[TG_MAX_IN] = {0};
    if (nd->op->vjp(nd, w->acc[nd->index], need, gx))
        return tape->has_err ? TG_ERR
                             : tg_error(tape, "grad_graph: %s (node %zu): recording its "
                                              "backward failed", nd->op->name, nd->index);
    for (int j = 0; j < nd->n_in; j++) {
        if (!(need >> j & 1) || !gx[j])
            continue;
        if (!same_shape(gx[j], nd->in[j]))
            return tg_error(tape, "grad_graph: %s (node %zu): its recorded gradient for input "
                                  "%d is %s, not %s (a bug in the op's vjp rule)",
                            nd->op->name, nd->index, j, tg_shp_of(gx[j]).s,
                            tg_shp_of(nd->in[j]).s);
        if (add_into(w, nd->in[j], gx[j]))
            return TG_ERR;
    }
    return TG_OK;
}

static int run(walk *w, tg_tensor *y, tg_tensor *gy, tg_tensor **grads)
{
    tg_tape *tape = w->tape;
    int n = w->n;
    if (!gy && !(gy = tg_const_like(y, 1)))
        return TG_ERR;
    size_t last = y->node ? y->node->index : 0;
    if (y->node) {
        for (size_t i = 0; i <= last; i++) {
            tg_node *nd = tape->nodes[i];
            w->dep[i] = wrt_index(w, &nd->out) >= 0;
            for (int j = 0; j < nd->n_in && !w->dep[i]; j++)
                w->dep[i] = depends(w, nd->in[j]);
        }
        w->acc[last] = gy;
        for (size_t i = last + 1; i-- > 0;) {
            tg_node *nd = tape->nodes[i];
            if (!w->acc[i])
                continue;
            int k = wrt_index(w, &nd->out);
            if (k >= 0)
                w->accw[k] = w->acc[i];
            if (w->dep[i] && visit(w, nd))
                return TG_ERR;
        }
    } else {
        int k = wrt_index(w, y);
        if (k >= 0)
            w->accw[k] = gy;
    }
    for (int k = 0; k < n; k++) {
        int first = wrt_index(w, w->wrt[k]);
        grads[k] = w->accw[first] ? w->accw[first] : tg_const_like(w->wrt[k], 0);
        if (!grads[k])
            return TG_ERR;
    }
    return TG_OK;
}

int tg_grad_graph(tg_tensor *y, tg_tensor *grad_output, int n, tg_tensor *const *wrt,
                  tg_tensor **grads)
{
    if (check_args(y, grad_output, n, wrt, grads))
        return TG_ERR;
    tg_tape *tape = y->tape;
    size_t nodes = y->node ? y->node->index + 1 : 1;
    walk w = {tape, n, wrt, tg_malloc(nodes), tg_malloc(nodes * sizeof(tg_tensor *)),
              tg_malloc((size_t)n * sizeof(tg_tensor *))};
    int rc;
    if (!w.dep || !w.acc || !w.accw) {
        rc = tg_error(tape, "grad_graph: out of memory");
    } else {
        memset(w.dep, 0, nodes);
        memset(w.acc, 0, nodes * sizeof(tg_tensor *));
        memset(w.accw, 0, (size_t)n * sizeof(tg_tensor *));
        bool scoped = tg_scope_push(tape, "grad") == TG_OK;
        size_t first = tape->n_nodes;
        rc = run(&w, y, grad_output, grads);
        for (size_t i = first; i < tape->n_nodes; i++)
            tape->nodes[i]->recorded_grad = 1;
        if (scoped)
            tg_scope_pop(tape);
    }
    tg_free(w.dep);
    tg_free(w.acc);
    tg_free(w.accw);
    if (rc)
        for (int k = 0; k < n; k++)
            grads[k] = NULL;
    return rc;
}
