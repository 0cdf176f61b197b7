/* Activation checkpointing: a segment of the tape whose intermediate values
 * are dropped after forward and recomputed by backward.
 *
 * Between tg_checkpoint_begin and tg_checkpoint_end, tg_record allocates
 * each output's values in the segment pool (tape->seg_data) rather than in
 * the graph arena, and marks the node with the segment's number.  Every
 * segment reuses the pool from its start, so the pool is as large as the
 * largest segment, not the sum of all.  tg_checkpoint_end copies the
 * segment's outputs (the only tensors that may be used after it) to the
 * graph arena and gives the intermediates that need a gradient their
 * gradient buffers in a second pool (tape->seg_grad), reused the same way.
 *
 * Backward walks the tape from the root down; on reaching the first node of
 * segment s that has a gradient to pass, it runs the forward of s's nodes
 * again (tg_checkpoint_recompute), which refills the pool with exactly the
 * values of the first run, then continues.  A segment's intermediates are
 * used only inside it, so the walk finishes with s (all its gradients
 * flow into its inputs, outside the pool) before it reaches another
 * segment: one pool of values and one of gradients serve all segments.
 *
 * Recomputation reproduces the first run bit for bit: the ops are
 * deterministic for any thread count, random ops keep the key of their
 * forward (random_frozen), ops with side effects skip them and keep the
 * mode they ran in (tg_recomputing), and backward refuses (as for grad_reads)
 * when a leaf that a segment's forward reads was written after it ran. */
#include "core.h"

int tg_checkpoint_begin(tg_tape *tape)
{
    if (!tape)
        return TG_ERR;
    if (tape->seg_open)
        return tg_error(tape, "checkpoint_begin: segment %zu is still open (segments do not "
                              "nest; call tg_checkpoint_end first)", tape->n_segs + 1);
    if (tape->n_segs >= UINT32_MAX - 1)
        return tg_error(tape, "checkpoint_begin: too many segments");
    tg_arena_reset(&tape->seg_data); /* every segment reuses the pool */
    tape->seg_open = true;
    tape->pool_holds = (uint32_t)(tape->n_segs + 1);
    return TG_OK;
}

/* Make out (an output of the open segment) a kept tensor: its values move
 * from the pool to the graph arena; views of it inside the segment follow. */
static int keep(tg_tape *tape, tg_tensor *out, size_t begin)
{
    size_t bytes = out->size * tg_dtype_size((tg_dtype)out->dtype);
    void *old = out->data, *d = tg_arena_alloc(&tape->graph_arena, bytes);
    if (!d)
        return tg_error(tape, "checkpoint_end: out of memory");
    memcpy(d, old, bytes);
    out->data = d;
    out->pooled = 0;
    for (size_t i = begin; i < tape->n_nodes; i++) {
        tg_node *n = tape->nodes[i];
        if (n->view && n->out.data == old && n->in[0]->data == d) {
            n->out.data = d;
            n->out.pooled = 0;
        }
    }
    return TG_OK;
}

static int check_out(tg_tape *tape, tg_tensor *t, int i, size_t begin)
{
    uint32_t seg = (uint32_t)(tape->n_segs + 1);
    if (!t)
        return tg_error(tape, "checkpoint_end: output %d is NULL", i);
    if (t->tape != tape)
        return tg_error(tape, "checkpoint_end: output %d ('%s') belongs to another tape", i,
                        tg_label(t));
    if (tg_check_alive(t, "checkpoint_end"))
        return TG_ERR;
    if (!t->node || t->node->seg != seg)
        return tg_error(tape, "checkpoint_end: output %d ('%s', %s) was not computed inside "
                              "segment %u (nodes %zu and up); it is kept anyway, do not list it",
                        i, tg_label(t), tg_shp_of(t).s, seg, begin);
    if (t->node->view)
        return tg_error(tape, "checkpoint_end: output %d ('%s', %s) is a view (%s) of another "
                              "tensor; end the segment with the tensor it views, and take "
                              "the view after tg_checkpoint_end",
                        i, tg_label(t), tg_shp_of(t).s, t->node->op->name);
    return TG_OK;
}

/* Give the segment's intermediates that receive a gradient their buffers
 * in the gradient pool (kept outputs get theirs in the graph arena, as
 * every tensor outside a segment does, when backward first needs them). */
static int pool_grads(tg_tape *tape, size_t begin)
{
    tg_arena_reset(&tape->seg_grad);
    for (size_t i = begin; i < tape->n_nodes; i++) {
        tg_tensor *t = &tape->nodes[i]->out;
        if (!t->pooled || !t->live || t->grad)
            continue;
        t->grad = tg_arena_alloc(&tape->seg_grad, t->size * tg_dtype_size((tg_dtype)t->dtype));
        if (!t->grad)
            return tg_error(tape, "checkpoint_end: out of memory");
        t->grad_gen = 0;
    }
    return TG_OK;
}

int tg_checkpoint_end(tg_tape *tape, int n, tg_tensor *const *outs)
{
    if (!tape)
        return TG_ERR;
    if (!tape->seg_open)
        return tg_error(tape, "checkpoint_end: no segment is open (tg_checkpoint_begin)");
    size_t begin = tape->n_nodes;
    while (begin > 0 && tape->nodes[begin - 1]->seg == tape->n_segs + 1)
        begin--;
    if (n < 0 || (n > 0 && !outs))
        return tg_error(tape, "checkpoint_end: %d outputs%s", n, n < 0 ? "" : " but outs is NULL");
    for (int i = 0; i < n; i++)
        if (check_out(tape, outs[i], i, begin))
            return TG_ERR;
    if (tape->n_segs == tape->cap_segs) {
        size_t cap = tape->cap_segs ? 2 * tape->cap_segs : 16;
        tg_segment *p = tg_realloc(tape->segs, cap * sizeof *p);
        if (!p)
            return tg_error(tape, "checkpoint_end: out of memory");
        tape->segs = p;
        tape->cap_segs = cap;
    }
    for (int i = 0; i < n; i++)
        if (outs[i]->pooled && keep(tape, outs[i], begin))
            return TG_ERR;
    if (pool_grads(tape, begin))
        return TG_ERR;
    if (tape->seg_data.in_use > tape->pool_peak)
        tape->pool_peak = tape->seg_data.in_use;
    if (tape->seg_grad.in_use > tape->pool_grad_peak)
        tape->pool_grad_peak = tape->seg_grad.in_use;
    tape->segs[tape->n_segs++] = (tg_segment){begin, tape->n_nodes};
    tape->seg_open = false;
    return TG_OK;
}

void tg_checkpoint_enter(tg_tape *tape, uint32_t seg)
{
    if (!tg_arena_poisons() || seg == 0 || seg > tape->n_segs)
        return;
    const tg_segment *s = &tape->segs[seg - 1];
    tg_arena_poison_all(&tape->seg_data);
    tg_arena_poison_all(&tape->seg_grad);
    for (size_t i = s->begin; i < s->end; i++) {
        tg_tensor *t = &tape->nodes[i]->out;
        size_t bytes = t->size * tg_dtype_size((tg_dtype)t->dtype);
        if (t->pooled) {
            tg_arena_unpoison(t->data, bytes);
            if (t->grad)
                tg_arena_unpoison(t->grad, bytes);
        }
    }
}

int tg_checkpoint_recompute(tg_tape *tape, uint32_t seg)
{
    if (tape->pool_holds == seg)
        return TG_OK;
    tg_checkpoint_enter(tape, seg);
    const tg_segment *s = &tape->segs[seg - 1];
    bool frozen = tape->random_frozen;
    tape->recomputing = true;
    tape->random_frozen = true;
    int rc = TG_OK;
    for (size_t i = s->begin; i < s->end; i++) {
        tg_node *n = tape->nodes[i];
        if (!n->out.pooled) /* a kept output: its values are still there */
            continue;
        if (n->op->forward(n) || (tape->anomaly && tg_anomaly_forward(n))) {
            rc = TG_ERR;
            break;
        }
    }
    tape->recomputing = false;
    tape->random_frozen = frozen;
    tape->pool_holds = rc ? 0 : seg;
    return rc;
}
