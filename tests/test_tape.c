/* The tape's machinery: accumulation, fan-out, seeds, zero_grad, skipping,
 * no-grad, replay, clear, scopes, and a 1,000,000-op chain. */
#include "tap.h"
#include "tapegrad.h"

#include <stdlib.h>


static tg_tensor *param_vals(tg_tape *t, const char *name, int rank, const size_t *shape,
                             const double *v)
{
    return tg_leaf_from(t, TG_PARAM, name, TG_F64, rank, shape, v);
}

/* loss = Σ (x·w)² for x [2,2] input, w [2,2] param: dW = 2·xᵀ(x·w) */
static void test_accumulate_and_zero_grad(void)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *x = tg_leaf_from(t, TG_INPUT, "x", TG_F64, 2, SHAPE(2, 2),
                                (double[]){1, 2, 3, 4});
    tg_tensor *w = param_vals(t, "w", 2, SHAPE(2, 2), (double[]){1, 0, -1, 2});
    tg_tensor *y = tg_matmul(x, w); /* [[-1,4],[-1,8]] */
    tg_tensor *loss = tg_sum(tg_mul(y, y));
    near(tg_item(loss), 1 + 16 + 1 + 64, 1e-15, "loss value");
    /* dW = 2 xᵀ y = 2 [[1,3],[2,4]]·[[-1,4],[-1,8]] = 2 [[-4,28],[-6,40]] */
    const double want[4] = {-8, 56, -12, 80};
    tg_backward(loss);
    double g[4];
    tg_grad_out(w, g, TG_F64, 4);
    bool same = true;
    for (int i = 0; i < 4; i++)
        same &= g[i] == want[i];
    ok(same, "dW = 2xᵀ(xw) exactly");
    tg_backward(loss);
    tg_grad_out(w, g, TG_F64, 4);
    same = true;
    for (int i = 0; i < 4; i++)
        same &= g[i] == 2 * want[i];
    ok(same, "a second backward adds: dW doubles");
    tg_zero_grad(t);
    near(tg_grad_get(w, 1), 0, 0, "zero_grad: gradient reads as 0");
    tg_backward(loss);
    near(tg_grad_get(w, 3), want[3], 0, "after zero_grad one backward gives dW again");
    ok(tg_grad_get(x, 0) == 0, "an input (no requires_grad) gets no gradient");
    /* intermediate gradient kept: dL/dy = 2y */
    near(tg_grad_get(y, 3), 16, 0, "intermediate gradient dL/dy = 2y is kept");
    tg_tape_free(t);
}

/* fan-out: y = w², loss = Σ y + Σ y·w  ->  d/dw = 2w + 3w² */
static void test_fan_out(void)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *w = param_vals(t, "w", 1, SHAPE(3), (double[]){1, -2, 0.5});
    tg_tensor *y = tg_mul(w, w);
    tg_tensor *loss = tg_add(tg_sum(y), tg_sum(tg_mul(y, w)));
    tg_backward(loss);
    bool good = true;
    for (int i = 0; i < 3; i++) {
        double v = tg_get(w, (size_t)i);
        good &= fabs(tg_grad_get(w, (size_t)i) - (2 * v + 3 * v * v)) < 1e-15;
    }
    ok(good, "a tensor used several times receives the sum of its gradients");
    tg_tape_free(t);
}

/* y = W·x (non-scalar root) with grad_output v: dW = v xᵀ, dx = Wᵀ v */
static void test_grad_output(void)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *W = param_vals(t, "W", 2, SHAPE(2, 3), (double[]){1, 2, 3, 4, 5, 6});
    tg_tensor *x = param_vals(t, "x", 2, SHAPE(3, 1), (double[]){1, -1, 2});
    tg_tensor *y = tg_matmul(W, x);
    const double grad_output[2] = {10, -1};
    ok(tg_backward_vjp(y, grad_output) == 0, "backward with a grad_output on a 2x1 root");
    /* dW = v xᵀ = [[10,-10,20],[-1,1,-2]]; dx = Wᵀ v = [6, 15, 24] */
    const double dW[6] = {10, -10, 20, -1, 1, -2}, dx[3] = {6, 15, 24};
    bool good = true;
    for (int i = 0; i < 6; i++)
        good &= tg_grad_get(W, (size_t)i) == dW[i];
    for (int i = 0; i < 3; i++)
        good &= tg_grad_get(x, (size_t)i) == dx[i];
    ok(good, "vector-Jacobian product: dW = v xᵀ, dx = Wᵀ v");
    ok(tg_backward(y) != 0, "backward without a grad_output refuses a non-scalar root");
    has_str(tg_tape_error(t), "needs its grad_output", "and says a grad_output is needed");
    tg_tape_free(t);
}

/* backward from an intermediate root ignores what comes after it, and
 * branches that cannot reach a parameter are skipped */
static void test_partial_and_skip(void)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *w = param_vals(t, "w", 1, SHAPE(2), (double[]){2, 3});
    tg_tensor *in = tg_leaf_from(t, TG_INPUT, "in", TG_F64, 1, SHAPE(2), (double[]){1, 1});
    tg_tensor *e = tg_exp(in);            /* reaches no parameter */
    tg_tensor *h = tg_mul(w, e);          /* root of the first pass */
    tg_tensor *later = tg_sum(tg_mul(h, h));
    (void)later;
    ok(tg_backward_vjp(h, (double[]){1, 1}) == 0, "backward from an intermediate root");
    near(tg_grad_get(w, 0), exp(1.0), 1e-15, "dh/dw = e^in");
    ok(tg_grad_get(later, 0) == 0, "a node after the root gets no gradient");
    ok(tg_grad_get(e, 0) == 0 && tg_grad_get(in, 0) == 0,
       "a branch that cannot reach a parameter is skipped (no gradient)");
    /* making the input require a gradient after recording is honoured */
    tg_set_requires_grad(in, true);
    tg_zero_grad(t);
    tg_backward(later); /* d/din Σ (w e^in)² = 2 w² e^{2in} */
    near(tg_grad_get(in, 1), 2 * 9 * exp(2.0), 1e-13, "set_requires_grad after recording");
    tg_tape_free(t);
}

static void test_no_grad(void)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *w = param_vals(t, "w", 1, SHAPE(2), (double[]){2, 3});
    size_t before = tg_tape_nodes(t);
    bool was = tg_set_grad_enabled(t, false);
    tg_tensor *y = tg_scale(w, 2);
    tg_set_grad_enabled(t, was);
    ok(was && tg_tape_nodes(t) == before, "no-grad mode records nothing");
    near(tg_get(y, 1), 6, 0, "but computes the value");
    tg_tensor *loss = tg_sum(tg_mul(y, w)); /* y is a constant here */
    tg_backward(loss);
    near(tg_grad_get(w, 0), 4, 0, "gradient does not flow through a no-grad result");
    is_str(tg_op_name(y), "const", "a no-grad result is a constant");
    tg_set_grad_enabled(t, false);
    tg_tensor *ys = tg_sum(y);
    tg_set_grad_enabled(t, was);
    ok(tg_backward(ys) != 0, "backward from a (scalar) no-grad result is refused");
    has_str(tg_tape_error(t), "backward: root 'const' is a constant (computed with recording off",
            "... saying why");
    tg_tape_free(t);
}

/* a 2-layer MLP used for replay/clear tests */
typedef struct net {
    tg_tape *t;
    tg_tensor *x, *lab, *W1, *b1, *W2, *b2, *loss;
} net;

static void net_params(net *n, uint64_t seed)
{
    tg_rng r;
    tg_rng_seed(&r, seed);
    n->x = tg_input(n->t, "x", TG_F32, 2, SHAPE(8, 5));
    n->lab = tg_input(n->t, "labels", TG_I32, 1, SHAPE(8));
    n->W1 = tg_param(n->t, "W1", TG_F32, 2, SHAPE(5, 6));
    n->b1 = tg_param(n->t, "b1", TG_F32, 1, SHAPE(6));
    n->W2 = tg_param(n->t, "W2", TG_F32, 2, SHAPE(6, 3));
    n->b2 = tg_param(n->t, "b2", TG_F32, 1, SHAPE(3));
    tg_init_xavier(n->W1, &r);
    tg_init_xavier(n->W2, &r);
    tg_init_normal(n->x, &r, 0, 1);
    for (size_t i = 0; i < 8; i++)
        tg_set(n->lab, i, (double)(i % 3));
}

static tg_tensor *net_graph(net *n)
{
    tg_tensor *h = tg_relu(tg_add_bias(tg_matmul(n->x, n->W1), n->b1));
    return n->loss = tg_softmax_ce(tg_add_bias(tg_matmul(h, n->W2), n->b2), n->lab, TG_MEAN);
}

static void test_replay(void)
{
    net a = {.t = tg_tape_new()};
    net_params(&a, 7);
    net_graph(&a);
    tg_backward(a.loss);
    /* new data: replay must give what a freshly built graph gives */
    tg_rng r;
    tg_rng_seed(&r, 99);
    tg_init_normal(a.x, &r, 0, 1);
    tg_set(a.lab, 0, 2);
    int64_t allocs = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
    tg_zero_grad(a.t);
    ok(tg_replay(a.t) == 0 && tg_backward(a.loss) == 0, "replay and backward succeed");
    allocs = tg_test_control(TG_TEST_ALLOC_COUNT, 0) - allocs;
    ok(allocs == 0, "replay + backward allocate nothing (%lld allocations)", (long long)allocs);
    net b = {.t = tg_tape_new()};
    net_params(&b, 7);
    tg_copy_in(b.x, tg_data(a.x), TG_F32, 40);
    tg_copy_in(b.lab, tg_data(a.lab), TG_I32, 8);
    net_graph(&b);
    tg_backward(b.loss);
    ok(tg_item(a.loss) == tg_item(b.loss), "replayed loss = rebuilt loss (%.9g)", tg_item(a.loss));
    bool same = true;
    for (size_t i = 0; i < 30; i++)
        same &= tg_grad_get(a.W1, i) == tg_grad_get(b.W1, i);
    ok(same, "replayed gradients = rebuilt gradients, bit for bit");
    /* tg_forward replays up to a root only */
    tg_set(a.lab, 1, 7); /* out of range: the loss node will fail */
    ok(tg_replay(a.t) != 0, "replay with a label out of range fails");
    has_str(tg_tape_error(a.t), "softmax_ce (node 5): label 7 at row 1 is outside [0, 3)",
            "with the op, its position and the label");
    tg_tape_free(a.t);
    tg_tape_free(b.t);
}

/* tg_set_keep_grads(false): the same leaf gradients, bit for bit, with the
 * op outputs' gradient buffers shared (a fan-out in the middle, a second
 * root recorded after a backward, a root in the middle), in fewer bytes */
static void test_shared_grads(void)
{
    net a = {.t = tg_tape_new()}, b = {.t = tg_tape_new()};
    net *nets[2] = {&a, &b};
    tg_tensor *mid[2], *extra[2];
    ok(tg_set_keep_grads(b.t, false) && !tg_set_keep_grads(b.t, false) &&
           !tg_set_keep_grads(NULL, true),
       "keep_grads: true on a new tape, false once set, false for NULL");
    for (int k = 0; k < 2; k++) {
        net *n = nets[k];
        net_params(n, 5);
        tg_tensor *h = tg_relu(tg_add_bias(tg_matmul(n->x, n->W1), n->b1));
        mid[k] = tg_add(h, tg_mul(h, h)); /* h is read by two nodes */
        n->loss = tg_softmax_ce(tg_add_bias(tg_matmul(mid[k], n->W2), n->b2), n->lab, TG_MEAN);
        for (int s = 0; s < 2; s++) {
            tg_zero_grad(n->t);
            tg_init_normal(n->x, &(tg_rng){{(uint64_t)s + 1, 2, 3, 4}}, 0, 1);
            tg_replay(n->t);
            tg_backward(n->loss);
        }
    }
    tg_tape_stats sa, sb;
    tg_tape_get_stats(a.t, &sa);
    tg_tape_get_stats(b.t, &sb);
    bool same = true;
    for (size_t i = 0; i < 30; i++)
        same &= tg_grad_get(a.W1, i) == tg_grad_get(b.W1, i);
    for (size_t i = 0; i < 18; i++)
        same &= tg_grad_get(a.W2, i) == tg_grad_get(b.W2, i);
    ok(same, "shared gradient buffers: the same leaf gradients, bit for bit");
    ok(sb.graph_bytes < sa.graph_bytes, "... in fewer graph bytes (%zu < %zu)", sb.graph_bytes,
       sa.graph_bytes);
    ok(tg_grad(mid[1]) == NULL && tg_grad(mid[0]) != NULL, "tg_grad of an op output: refused");
    has_str(tg_query_error(b.t), "keeps only the leaves' gradients", "... saying why");
    int64_t allocs = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
    tg_zero_grad(b.t);
    ok(tg_replay(b.t) == 0 && tg_backward(b.loss) == 0 &&
           tg_test_control(TG_TEST_ALLOC_COUNT, 0) == allocs,
       "once planned, replay + backward allocate nothing");
    for (int k = 0; k < 2; k++) { /* a root recorded after the plan, then one in the middle */
        extra[k] = tg_add(nets[k]->loss, tg_sum(tg_mul(mid[k], mid[k])));
        tg_zero_grad(nets[k]->t);
        tg_backward(extra[k]);
    }
    same = true;
    for (size_t i = 0; i < 30; i++)
        same &= tg_grad_get(a.W1, i) == tg_grad_get(b.W1, i);
    ok(same, "a node recorded after a backward: planned again, the same gradients");
    float onesf[48]; /* mid is [8,6] */
    for (int i = 0; i < 48; i++)
        onesf[i] = 1;
    for (int k = 0; k < 2; k++) {
        tg_zero_grad(nets[k]->t);
        tg_backward_vjp(mid[k], onesf);
    }
    same = tg_grad_get(a.W1, 0) != 0;
    for (size_t i = 0; i < 30; i++)
        same &= tg_grad_get(a.W1, i) == tg_grad_get(b.W1, i);
    ok(same, "a root in the middle of the tape: the same gradients");
    ok(tg_set_keep_grads(b.t, true) == false && tg_backward(b.loss) == 0 && tg_grad(mid[1]),
       "keep_grads back on: op outputs' gradients kept again");
    tg_tape_free(a.t);
    tg_tape_free(b.t);
}

static void test_clear(void)
{
    net a = {.t = tg_tape_new()};
    net_params(&a, 3);
    net_graph(&a);
    tg_backward(a.loss);
    double g0 = tg_grad_get(a.W2, 4), w0 = tg_get(a.W2, 4);
    tg_tape_stats s1, s2;
    tg_tape_get_stats(a.t, &s1);
    tg_tape_clear(a.t);
    ok(tg_tape_nodes(a.t) == 0 && tg_tape_leaves(a.t) == 6, "clear drops nodes, keeps leaves");
    ok(tg_get(a.W2, 4) == w0 && tg_grad_get(a.W2, 4) == g0,
       "leaves keep their values and gradients");
    /* rebuilding the same graph after a clear allocates nothing */
    net_graph(&a);
    tg_backward(a.loss);
    tg_tape_clear(a.t);
    int64_t allocs = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
    for (int step = 0; step < 5; step++) {
        tg_zero_grad(a.t);
        net_graph(&a);
        tg_backward(a.loss);
        tg_tape_clear(a.t);
    }
    tg_tape_get_stats(a.t, &s2);
    ok(tg_test_control(TG_TEST_ALLOC_COUNT, 0) == allocs,
       "5 rebuild/backward/clear steps allocate nothing");
    ok(s1.graph_chunks == s2.graph_chunks, "graph arena keeps its %zu chunk(s)", s2.graph_chunks);
    tg_tape_free(a.t);
}

static void test_scopes(void)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *x = param_vals(t, "x", 1, SHAPE(2), (double[]){1, 2});
    ok(tg_scope_push(t, "layer1") == 0 && tg_scope_push(t, "act") == 0, "push two scopes");
    tg_tensor *y = tg_relu(x);
    tg_scope_pop(t);
    tg_scope_pop(t);
    tg_scope_pop(t); /* one too many: harmless */
    tg_tensor *z = tg_neg(y);
    ok(y && z, "ops record inside and outside scopes");
    ok(tg_scope_push(t, "") != 0, "an empty scope name is refused");
    tg_tape_free(t);
}

/* x → (−x) → (1.0000001·x) → ... 1,000,000 ops: backward must not recurse */
static void test_long_chain(void)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *x = param_vals(t, "x", 0, NULL, (double[]){1.5});
    tg_tensor *y = x;
    const int N = 1000000;
    for (int i = 0; i < N && y; i++)
        y = (i & 1) ? tg_scale(y, 1.0000001) : tg_neg(y);
    ok(y && tg_tape_nodes(t) == (size_t)N, "recorded a chain of %d ops", N);
    ok(tg_backward(y) == 0, "backward through the chain");
    double want = pow(1.0000001, N / 2); /* N/2 negations: even, sign + */
    near(tg_grad_get(x, 0), want, 1e-9, "d chain / dx = 1.0000001^%d", N / 2);
    near(tg_item(y), 1.5 * want, 1e-9, "chain value");
    ok(tg_replay(t) == 0, "replay of the chain");
    tg_tape_free(t);
}

/* anomaly mode names the op, its position and the tensors */
static void test_anomaly(void)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *x = param_vals(t, "x", 1, SHAPE(3), (double[]){1, -2, 3});
    ok(!tg_set_anomaly(t, true), "anomaly mode starts off");
    tg_tensor *e = tg_exp(x);
    tg_tensor *bad = tg_log(tg_neg(x)); /* log of -1: NaN */
    ok(e && !bad, "a forward that makes NaN fails in anomaly mode");
    has_str(tg_tape_error(t), "log: anomaly: forward produced NaN in output 'log' (3) at element 0",
            "the message names the op, the output and the element");
    has_str(tg_tape_error(t), "inputs 'neg' (neg 3)", "and the inputs");
    tg_tape_clear_error(t);
    /* a forward that is finite but a backward that overflows: a = 1e300,
     * b = 1e-5 give y = 1e305 and da = 1e5, but db = −y/b = −Inf */
    tg_tensor *a = param_vals(t, "a", 0, NULL, (double[]){1e300});
    tg_tensor *b = param_vals(t, "b", 0, NULL, (double[]){1e-5});
    tg_tensor *q = tg_div(a, b);
    ok(q && tg_item(q) == 1e305, "a/b = 1e305 forward");
    ok(tg_backward(q) != 0, "backward stops at the infinite gradient");
    has_str(tg_tape_error(t), "div (node 2): anomaly: backward produced -Inf in the gradient "
                              "of input 1 'b' (scalar) at element 0",
            "naming the op, its position, the input and the element");
    tg_tape_clear_error(t);
    tg_set(x, 0, -1); /* exp stays finite; nothing else reads x on the tape */
    ok(tg_replay(t) == 0, "replay with finite values passes the checks");
    tg_set_anomaly(t, false);
    ok(tg_backward(q) == 0, "with anomaly mode off the same backward runs");
    tg_tape_free(t);
}

/* A 10,000,000-node chain x → −x → c·x → ... goes backward without
 * recursion (the default 8 MiB stack would not hold 10 million frames) and
 * in bounded memory: backward only adds one gradient buffer per node, a
 * double rounded up to the arena's 16-byte granule, plus at most 16 bytes of
 * alignment (or the redzone an ASan build puts after each block).  Recording
 * takes about 3 GB.  TAPEGRAD_CHAIN_NODES=N runs N nodes instead (for slow
 * builds, e.g. under sanitizers); the default is the full 10 million. */
static void test_ten_million_nodes(void)
{
    size_t N = 10000000;
    const char *env = getenv("TAPEGRAD_CHAIN_NODES");
    if (env && *env && strtoul(env, NULL, 10) >= 2)
        N = strtoul(env, NULL, 10) & ~(size_t)1; /* even: the signs cancel */
    const double c = 1.00000001;
    tg_tape *t = tg_tape_new();
    tg_tensor *x = param_vals(t, "x", 0, NULL, (double[]){0.75});
    tg_tensor *y = x;
    for (size_t i = 0; i < N && y; i++)
        y = (i & 1) ? tg_scale(y, c) : tg_neg(y);
    ok(y && tg_tape_nodes(t) == N, "recorded a chain of %zu nodes", N);
    tg_tape_stats before, after;
    tg_tape_get_stats(t, &before);
    ok(tg_backward(y) == 0, "backward through %zu nodes", N);
    tg_tape_get_stats(t, &after);
    double want = pow(c, (double)(N / 2));
    near(tg_grad_get(x, 0), want, 1e-8, "d chain / dx = %.9g^%zu", c, N / 2);
    near(tg_item(y), 0.75 * want, 1e-8, "chain value");
    size_t per_node = 16 + 16; /* the buffer (8 bytes → 16) + alignment/redzone */
    size_t grown = after.graph_bytes - before.graph_bytes;
    ok(after.graph_bytes >= before.graph_bytes && grown <= N * per_node,
       "backward added %zu bytes to the graph arena for %zu nodes (%.1f per node, bound %zu)",
       grown, N, (double)grown / (double)N, per_node);
    ok(after.leaf_bytes - before.leaf_bytes <= per_node,
       "and %zu bytes to the leaf arena (x's gradient)", after.leaf_bytes - before.leaf_bytes);
    diag("graph arena: %zu bytes in %zu chunks before backward, %zu in %zu after",
         before.graph_bytes, before.graph_chunks, after.graph_bytes, after.graph_chunks);
    /* a second pass reuses the buffers: no growth at all */
    tg_zero_grad(t);
    ok(tg_backward(y) == 0, "a second backward");
    tg_tape_stats again;
    tg_tape_get_stats(t, &again);
    ok(again.graph_bytes == after.graph_bytes && again.leaf_bytes == after.leaf_bytes,
       "allocates nothing more");
    near(tg_grad_get(x, 0), want, 1e-8, "and gives the same gradient");
    tg_tape_free(t);
}

int main(void)
{
    test_accumulate_and_zero_grad();
    test_fan_out();
    test_grad_output();
    test_partial_and_skip();
    test_no_grad();
    test_replay();
    test_shared_grads();
    test_clear();
    test_scopes();
    test_long_chain();
    test_anomaly();
    test_ten_million_nodes();
    return tap_done();
}
