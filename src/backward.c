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
#include "internal.h"

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
                        fn, root->name ? root->name : tg_op_name(root));
    if (root->temp && !root->node) /* a no-grad result, or a tg_scalar */
        return tg_error(root->tape, "%s: root '%s' is a constant (computed with recording "
                                    "off, or made by tg_scalar): nothing to differentiate",
                        fn, root->name ? root->name : tg_op_name(root));
    return TG_OK;
}

int tg_backward_seed(tg_tensor *root, const void *seed)
{
    if (check_root(root, "backward"))
        return TG_ERR;
    tg_tape *tape = root->tape;
    if (!seed)
        return tg_error(tape, "backward: seed is NULL");
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
        const float *s = seed;
        float *d = g;
        for (size_t i = 0; i < n; i++)
            d[i] = acc ? d[i] + s[i] : s[i];
    } else {
        const double *s = seed;
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
                        "root needs a seed (tg_backward_seed)",
                        root->name ? root->name : tg_op_name(root), root->size,
                        tg_shp_of(root).s);
    const float one_f = 1;
    const double one_d = 1;
    return tg_backward_seed(root, root->dtype == TG_F32 ? (const void *)&one_f
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

/* ---- anomaly mode -------------------------------------------------------- */

bool tg_set_anomaly(tg_tape *tape, bool on)
{
    if (!tape)
        return false;
    bool old = tape->anomaly;
    tape->anomaly = on;
    return old;
}

/* Index of the first NaN/Inf among n values of dtype, or SIZE_MAX. */
static size_t first_nonfinite(const void *p, int dtype, size_t n)
{
    if (dtype == TG_F32) {
        const float *f = p;
        for (size_t i = 0; i < n; i++)
            if (f[i] - f[i] != 0) /* NaN or ±Inf; avoids isfinite's libm call */
                return i;
    } else if (dtype == TG_F64) {
        const double *d = p;
        for (size_t i = 0; i < n; i++)
            if (d[i] - d[i] != 0)
                return i;
    }
    return SIZE_MAX;
}

static const char *label(const tg_tensor *t)
{
    return t->name ? t->name : tg_op_name(t);
}

/* "x = 'W1' (param 3x4), 'h' (relu 8x4)": the node's inputs, for messages */
static void describe_inputs(const tg_node *n, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; i < n->n_in && at < len; i++) {
        int w = snprintf(buf + at, len - at, "%s'%s' (%s %s)", i ? ", " : "", label(n->in[i]),
                         tg_op_name(n->in[i]), tg_shp_of(n->in[i]).s);
        if (w < 0)
            break;
        at += (size_t)w;
    }
}

/* "NaN", "+Inf" or "-Inf" (printf's spelling of NaN varies with its sign) */
static const char *what(const void *p, int dtype, size_t i)
{
    double v = dtype == TG_F32 ? ((const float *)p)[i] : ((const double *)p)[i];
    return v != v ? "NaN" : v > 0 ? "+Inf" : "-Inf";
}

/* the name of a node's output: its name, else the op's name */
static const char *out_label(const tg_node *n)
{
    return n->out.name ? n->out.name : n->op->name;
}

int tg_anomaly_forward(tg_node *n)
{
    size_t i = first_nonfinite(n->out.data, n->out.dtype, n->out.size);
    if (i == SIZE_MAX)
        return TG_OK;
    char in[256];
    describe_inputs(n, in, sizeof in);
    return tg_fail(n, "anomaly: forward produced %s in output '%s' (%s) at element %zu; "
                      "inputs %s", what(n->out.data, n->out.dtype, i), out_label(n),
                   tg_shp_of(&n->out).s, i, in);
}

int tg_anomaly_backward(tg_node *n)
{
    for (int j = 0; j < n->n_in; j++) {
        tg_tensor *x = n->in[j];
        if (!x->live)
            continue;
        size_t i = first_nonfinite(x->grad, x->dtype, x->size);
        if (i == SIZE_MAX)
            continue;
        char in[256];
        describe_inputs(n, in, sizeof in);
        return tg_fail(n, "anomaly: backward produced %s in the gradient of input %d '%s' "
                          "(%s) at element %zu; output '%s'; inputs %s",
                       what(x->grad, x->dtype, i), j, label(x), tg_shp_of(x).s, i,
                       out_label(n), in);
    }
    return TG_OK;
}
