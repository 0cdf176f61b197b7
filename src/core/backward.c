/* Running the tape: replay (forward again) and the reverse walk (backward).
 *
 * The tape is a Wengert list in creation order, which is a topological
 * order, so backward is one loop from the root's node down to node 0.
 *
 * Gradient buffers are never zeroed in bulk.  Each tensor remembers the
 * generation in which its gradient last received a value (grad_gen): for op
 * outputs the current backward pass, for leaves the period since the last
 * tg_zero_grad.  The first contribution in a generation overwrites the
 * buffer, the following ones add to it (tg_grad_acc). */
#include "core.h"

void *tg_grad_acc(tg_tensor *t, int *acc)
{
    uint64_t g = tg_cur_gen(t);
    *acc = t->grad_gen == g;
    t->grad_gen = g;
    return t->grad;
}

void *tg_grad_sum(tg_tensor *t)
{
    int acc;
    void *g = tg_grad_acc(t, &acc);
    if (!acc)
        memset(g, 0, t->size * tg_dtype_size((tg_dtype)t->dtype));
    return g;
}

void tg_zero_grad(tg_tape *tape)
{
    if (tape)
        tape->leaf_gen = ++tape->gen;
}

/* Before a backward pass over nodes [0, last]: recompute which tensors a
 * gradient can flow into if requires_grad changed since recording, and make
 * sure every live tensor has a gradient buffer.  Only the nodes not yet
 * prepared are visited, so a replayed training step does no work here. */
static int prepare(tg_tape *tape, size_t last)
{
    if (tape->live_dirty) {
        for (size_t i = 0; i < tape->n_nodes; i++) {
            tg_node *n = tape->nodes[i];
            n->out.live = 0;
            for (int j = 0; j < n->n_in; j++)
                n->out.live |= n->in[j]->live;
        }
        tape->live_dirty = false;
        tape->grads_ready = 0;
    }
    for (size_t i = tape->grads_ready; i <= last; i++) {
        tg_node *n = tape->nodes[i];
        if (!n->out.live)
            continue;
        if (tg_grad_alloc(&n->out))
            return TG_ERR;
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j]->live && tg_grad_alloc(n->in[j]))
                return TG_ERR;
    }
    if (last + 1 > tape->grads_ready)
        tape->grads_ready = last + 1;
    return TG_OK;
}

static int check_root(const tg_tensor *root, const char *fn)
{
    if (!root)
        return TG_ERR;
    if (root->dtype == TG_I32)
        return tg_error(root->tape, "%s: root '%s' is i32 and cannot be differentiated",
                        fn, tg_label(root));
    if (root->temp && !root->node) /* a no-grad result, or a tg_scalar */
        return tg_error(root->tape, "%s: root '%s' is a constant (computed with recording "
                                    "off, or made by tg_scalar): nothing to differentiate",
                        fn, tg_label(root));
    return TG_OK;
}

int tg_backward_vjp(tg_tensor *root, const void *grad_output)
{
    if (check_root(root, "backward"))
        return TG_ERR;
    tg_tape *tape = root->tape;
    if (!grad_output)
        return tg_error(tape, "backward: grad_output is NULL");
    if (root->node && prepare(tape, root->node->index))
        return TG_ERR;
    if (!root->live)
        return TG_OK; /* no parameter can be reached: nothing to do */
    if (!root->node && tg_grad_alloc(root))
        return TG_ERR;

    tape->pass_gen = ++tape->gen;
    int acc;
    void *g = tg_grad_acc(root, &acc);
    size_t n = root->size;
    if (root->dtype == TG_F32) {
        const float *s = grad_output;
        float *d = g;
        for (size_t i = 0; i < n; i++)
            d[i] = acc ? d[i] + s[i] : s[i];
    } else {
        const double *s = grad_output;
        double *d = g;
        for (size_t i = 0; i < n; i++)
            d[i] = acc ? d[i] + s[i] : s[i];
    }
    if (!root->node)
        return TG_OK;
    for (size_t i = root->node->index + 1; i-- > 0;) {
        tg_node *nd = tape->nodes[i];
        if (nd->out.grad_gen != tape->pass_gen)
            continue;
        nd->op->backward(nd);
        if (tape->anomaly && tg_anomaly_backward(nd))
            return TG_ERR;
    }
    return TG_OK;
}

int tg_backward(tg_tensor *root)
{
    if (check_root(root, "backward"))
        return TG_ERR;
    if (root->size != 1)
        return tg_error(root->tape,
                        "backward: root '%s' has %zu elements (%s); a non-scalar "
                        "root needs its grad_output (tg_backward_vjp)",
                        tg_label(root), root->size,
                        tg_shp_of(root).s);
    const float one_f = 1;
    const double one_d = 1;
    return tg_backward_vjp(root, root->dtype == TG_F32 ? (const void *)&one_f
                                                        : (const void *)&one_d);
}

static int replay_upto(tg_tape *tape, size_t end)
{
    for (size_t i = 0; i < end; i++) {
        tg_node *n = tape->nodes[i];
        if (n->op->forward(n) || (tape->anomaly && tg_anomaly_forward(n)))
            return TG_ERR;
    }
    return TG_OK;
}

int tg_replay(tg_tape *tape)
{
    return tape ? replay_upto(tape, tape->n_nodes) : TG_ERR;
}

int tg_forward(tg_tensor *root)
{
    if (!root)
        return TG_ERR;
    if (!root->node)
        return TG_OK; /* a leaf or constant: nothing to compute */
    return replay_upto(root->tape, root->node->index + 1);
}
