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

/* tg_set_keep_grads(tape, false): the gradient buffers of the live op
 * outputs, shared.  Output k's buffer holds a value from the backward of its
 * last consumer (the walk's first write into it; k itself when it has none,
 * as a root) down to k's own backward (the last read), so outputs whose
 * spans do not overlap can take turns with one buffer.  Greedy, in the
 * walk's order over the whole tape (any root then walks a part of the plan):
 * at node i the outputs whose span starts there take a free buffer of their
 * byte size or a new one, then i's own output gives its buffer back.
 * Outputs in checkpoint pools keep their pool buffers. */
static int plan_shared(tg_tape *tape)
{
    size_t n = tape->n_nodes;
    size_t *until = tg_malloc(n * sizeof *until);
    void **free_buf = tg_malloc(n * sizeof *free_buf);
    size_t *free_bytes = tg_malloc(n * sizeof *free_bytes), n_free = 0;
    int rc = TG_OK;
    if (!until || !free_buf || !free_bytes) {
        rc = tg_error(tape, "backward: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        until[i] = i;
        tg_tensor *y = &tape->nodes[i]->out;
        if (!y->pooled)
            y->grad = NULL;
        for (int j = 0; j < tape->nodes[i]->n_in; j++)
            if (tape->nodes[i]->in[j]->node)
                until[tape->nodes[i]->in[j]->node->index] = i;
    }
    for (size_t i = n; i-- > 0 && rc == TG_OK;) {
        tg_node *nd = tape->nodes[i];
        for (int j = -1; j < nd->n_in; j++) {
            tg_tensor *x = j < 0 ? &nd->out : nd->in[j];
            if (!x->node || !x->live || x->grad || until[x->node->index] != i)
                continue;
            size_t bytes = x->size * tg_dtype_size((tg_dtype)x->dtype), k = 0;
            while (k < n_free && free_bytes[k] != bytes)
                k++;
            if (k < n_free) {
                x->grad = free_buf[k];
                free_buf[k] = free_buf[--n_free];
                free_bytes[k] = free_bytes[n_free];
            } else if (!(x->grad = tg_arena_alloc(&tape->graph_arena, bytes))) {
                rc = tg_error(tape, "backward: out of memory");
                break;
            }
            x->grad_gen = 0; /* holds nothing yet */
        }
        if (nd->out.grad && !nd->out.pooled) {
            free_buf[n_free] = nd->out.grad;
            free_bytes[n_free++] = nd->out.size * tg_dtype_size((tg_dtype)nd->out.dtype);
        }
    }
    tape->shared_for = rc == TG_OK ? n : 0;
done:
    tg_free(until);
    tg_free(free_buf);
    tg_free(free_bytes);
    return rc;
}

/* Before a backward pass over nodes [0, last]: recompute which tensors a
 * gradient can flow into if requires_grad changed since recording, and make
 * sure every live tensor has a gradient buffer (op outputs: shared ones,
 * planned once for the tape, with tg_set_keep_grads(false)).  Only the nodes
 * not yet prepared are visited, so a replayed training step does no work
 * here. */
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
        tape->shared_for = 0;
    }
    bool share = tape->share_grads;
    if (share && tape->shared_for != tape->n_nodes && plan_shared(tape))
        return TG_ERR;
    for (size_t i = tape->grads_ready; i <= last; i++) {
        tg_node *n = tape->nodes[i];
        if (!n->out.live)
            continue;
        if (!share && tg_grad_alloc(&n->out))
            return TG_ERR;
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j]->live && !(share && n->in[j]->node) && tg_grad_alloc(n->in[j]))
                return TG_ERR;
    }
    if (last + 1 > tape->grads_ready)
        tape->grads_ready = last + 1;
    return TG_OK;
}

static int check_root(const tg_tensor *root, const char *fn)
{
    if (!root || tg_check_alive(root, fn))
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

/* Before any gradient is written: refuse a backward whose values would mix
 * two states of the tape.  That is (1) a replay failed at or before the
 * root's node, so nodes from there on hold values of two forwards, or (2) a
 * node the walk reaches reads, in its backward, a leaf written through the
 * API after that node's forward.  (Op outputs cannot be written.)  The
 * reach is marked from the root down, as the walk will go. */
static int check_consistent(tg_tape *tape, size_t last)
{
    if (tape->stale_at <= last)
        return tg_error(tape, "backward: the last replay failed at node %zu (%s), so the "
                              "values from there on mix two forwards; replay successfully "
                              "first", tape->stale_at, tape->nodes[tape->stale_at]->op->name);
    tape->nodes[last]->reached = 1;
    int rc = TG_OK;
    for (size_t i = last + 1; i-- > 0;) {
        tg_node *n = tape->nodes[i];
        if (!n->reached)
            continue;
        n->reached = 0;
        if (!n->out.live) /* its backward will not run */
            continue;
        for (int j = 0; j < n->n_in; j++) {
            tg_tensor *x = n->in[j];
            if (x->node) {
                x->node->reached |= x->live;
            } else if (rc == TG_OK && ((n->op->grad_reads >> j & 1) || n->seg) &&
                       x->version > n->fwd_gen)
                rc = tg_error(tape, "backward: '%s' (%s) was written after the forward of "
                                    "%s (node %zu), whose gradient reads it%s; replay "
                                    "(tg_replay, tg_forward) before backward",
                              tg_label(x), tg_shp_of(x).s, n->op->name, n->index,
                              n->seg ? " (its checkpoint segment runs it again)" : "");
        }
    }
    return rc;
}

/* Leaves whose gradient buffer still holds a value from before the last
 * tg_zero_grad (no backward reached them since) read as zero from now on,
 * so that a pointer kept from tg_grad shows the right value too. */
static void settle_leaf_grads(tg_tape *tape)
{
    for (size_t i = 0; i < tape->n_leaves; i++) {
        tg_tensor *t = tape->leaves[i];
        if (t->grad && t->grad_gen != tape->leaf_gen) {
            memset(t->grad, 0, t->size * tg_dtype_size((tg_dtype)t->dtype));
            t->grad_gen = tape->leaf_gen;
        }
    }
}

int tg_backward_vjp(tg_tensor *root, const void *grad_output)
{
    if (check_root(root, "backward"))
        return TG_ERR;
    tg_tape *tape = root->tape;
    if (!grad_output)
        return tg_error(tape, "backward: grad_output is NULL");
    if (tape->seg_open)
        return tg_error(tape, "backward: checkpoint segment %zu is still open "
                              "(tg_checkpoint_end first)", tape->n_segs + 1);
    /* prepare first: it brings the live flags up to date, which the check
     * follows (it allocates buffers, writes no gradient) */
    if (root->node && (prepare(tape, root->node->index) ||
                       check_consistent(tape, root->node->index)))
        return TG_ERR;
    if (!root->live) { /* no parameter can be reached: nothing to do */
        settle_leaf_grads(tape);
        return TG_OK;
    }
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
    for (size_t i = root->node ? root->node->index + 1 : 0; i-- > 0;) {
        tg_node *nd = tape->nodes[i];
        if (nd->out.grad_gen != tape->pass_gen)
            continue;
        if (nd->seg && tg_checkpoint_recompute(tape, nd->seg))
            return TG_ERR;
        nd->op->backward(nd);
        if (tape->anomaly && tg_anomaly_backward(nd))
            return TG_ERR;
    }
    settle_leaf_grads(tape);
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

/* Forward nodes [0, end) again.  A failure marks the tape stale from that
 * node (backward refuses until a replay gets past it); success up to end
 * clears a mark below end. */
static int replay_upto(tg_tape *tape, size_t end)
{
    for (size_t i = 0; i < end; i++) {
        tg_node *n = tape->nodes[i];
        if (n->seg) {
            tape->pool_holds = 0;
            if (n->seg <= tape->n_segs && i == tape->segs[n->seg - 1].begin)
                tg_checkpoint_enter(tape, n->seg);
        }
        if (n->op->forward(n) || (tape->anomaly && tg_anomaly_forward(n))) {
            if (tape->stale_at > i)
                tape->stale_at = i;
            return TG_ERR;
        }
        n->fwd_gen = tape->gen;
        if (n->seg) /* the pool holds segment n->seg once its last node ran */
            tape->pool_holds = n->seg <= tape->n_segs && i + 1 == tape->segs[n->seg - 1].end
                                   ? n->seg : 0;
    }
    if (tape->stale_at < end)
        tape->stale_at = SIZE_MAX;
    return TG_OK;
}

int tg_replay(tg_tape *tape)
{
    return tape ? replay_upto(tape, tape->n_nodes) : TG_ERR;
}

int tg_forward(tg_tensor *root)
{
    if (!root || tg_check_alive(root, "forward"))
        return TG_ERR;
    if (!root->node)
        return TG_OK; /* a leaf or constant: nothing to compute */
    return replay_upto(root->tape, root->node->index + 1);
}
