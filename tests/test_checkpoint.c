/* Activation checkpointing (tg_checkpoint_begin / tg_checkpoint_end):
 * gradients, parameters after training steps, running statistics and the
 * random masks are bit-identical to the same network without it; the
 * checkpointed tape holds less; replay allocates nothing; misuse is refused
 * with a message; finite differences agree through recomputed segments. */
#include "tap.h"

#include <stdint.h>

enum { MAXB = 64 };

/* A chain of residual blocks, like a transformer's MLP half:
 *   y = y + W2ᵀ·gelu(W1·layer_norm(y))  (as row vectors: y + gelu(ln(y) W1) W2)
 * with dropout after W2 and, optionally, a batch norm inside each block. */
typedef struct chain {
    tg_tape *tape;
    tg_tensor *x, *loss;
    tg_tensor *w1[MAXB], *w2[MAXB], *g[MAXB], *b[MAXB], *bng[MAXB], *bnb[MAXB];
    tg_tensor *rm[MAXB], *rv[MAXB];
    tg_tensor *params[6 * MAXB];
    int np, blocks;
} chain;

typedef struct chain_opts {
    int blocks;
    size_t rows, width, hidden;
    tg_dtype dt;
    bool ckpt, dropout, bn;
    int per_segment; /* blocks per checkpoint segment */
} chain_opts;

static void fill(tg_tensor *t, uint64_t seed, double scale)
{
    tg_rng r;
    tg_rng_seed(&r, seed);
    tg_init_normal(t, &r, 0, scale);
}

static tg_tensor *block(chain *c, const chain_opts *o, int i, tg_tensor *y)
{
    tg_tensor *h = tg_layer_norm(y, c->g[i], c->b[i], 1e-5);
    h = tg_gelu(tg_matmul(h, c->w1[i]));
    if (o->bn)
        h = tg_batch_norm(h, c->bng[i], c->bnb[i], c->rm[i], c->rv[i], 0.1, 1e-5);
    h = tg_matmul(h, c->w2[i]);
    if (o->dropout)
        h = tg_dropout(h, 0.2);
    return tg_add(y, h);
}

static int build(chain *c, const chain_opts *o)
{
    memset(c, 0, sizeof *c);
    tg_tape *T = c->tape = tg_tape_new();
    tg_tape_seed(T, 7);
    c->blocks = o->blocks;
    c->x = tg_input(T, "x", o->dt, 2, SHAPE(o->rows, o->width));
    fill(c->x, 1, 1);
    for (int i = 0; i < o->blocks; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "w1_%d", i);
        c->w1[i] = tg_param(T, nm, o->dt, 2, SHAPE(o->width, o->hidden));
        snprintf(nm, sizeof nm, "w2_%d", i);
        c->w2[i] = tg_param(T, nm, o->dt, 2, SHAPE(o->hidden, o->width));
        snprintf(nm, sizeof nm, "g_%d", i);
        c->g[i] = tg_param(T, nm, o->dt, 1, SHAPE(o->width));
        snprintf(nm, sizeof nm, "b_%d", i);
        c->b[i] = tg_param(T, nm, o->dt, 1, SHAPE(o->width));
        fill(c->w1[i], 100 + (uint64_t)i, 0.3);
        fill(c->w2[i], 200 + (uint64_t)i, 0.3);
        fill(c->g[i], 300 + (uint64_t)i, 0.1);
        tg_add_scalar(c->g[i], 0); /* (no-op op: exercises a node outside segments) */
        fill(c->b[i], 400 + (uint64_t)i, 0.1);
        c->params[c->np++] = c->w1[i], c->params[c->np++] = c->w2[i];
        c->params[c->np++] = c->g[i], c->params[c->np++] = c->b[i];
        if (o->bn) {
            snprintf(nm, sizeof nm, "bng_%d", i);
            c->bng[i] = tg_param(T, nm, o->dt, 1, SHAPE(o->hidden));
            snprintf(nm, sizeof nm, "bnb_%d", i);
            c->bnb[i] = tg_param(T, nm, o->dt, 1, SHAPE(o->hidden));
            tg_fill(c->bng[i], 1);
            snprintf(nm, sizeof nm, "rm_%d", i);
            c->rm[i] = tg_const(T, nm, o->dt, 1, SHAPE(o->hidden));
            snprintf(nm, sizeof nm, "rv_%d", i);
            c->rv[i] = tg_const(T, nm, o->dt, 1, SHAPE(o->hidden));
            tg_fill(c->rv[i], 1);
            c->params[c->np++] = c->bng[i], c->params[c->np++] = c->bnb[i];
        }
    }
    tg_tensor *y = c->x;
    for (int i = 0; i < o->blocks; i++) {
        bool first = i % o->per_segment == 0;
        bool last = (i + 1) % o->per_segment == 0 || i + 1 == o->blocks;
        if (o->ckpt && first && tg_checkpoint_begin(T))
            return -1;
        y = block(c, o, i, y);
        if (o->ckpt && last && tg_checkpoint_end(T, 1, &y))
            return -1;
    }
    c->loss = tg_mean(tg_mul(y, y));
    return c->loss ? 0 : -1;
}

static bool same_bits(tg_tensor *a, tg_tensor *b, bool grads)
{
    size_t bytes = tg_size(a) * (tg_dtype_of(a) == TG_F32 ? 4 : 8);
    const void *pa = grads ? tg_grad(a) : tg_data(a), *pb = grads ? tg_grad(b) : tg_data(b);
    return pa && pb && !memcmp(pa, pb, bytes);
}

static int differing(chain *a, chain *b, bool grads)
{
    int bad = 0;
    for (int i = 0; i < a->np; i++)
        bad += !same_bits(a->params[i], b->params[i], grads);
    for (int i = 0; i < a->blocks; i++)
        if (a->rm[i])
            bad += !same_bits(a->rm[i], b->rm[i], false) + !same_bits(a->rv[i], b->rv[i], false);
    return bad;
}

/* Train both for `steps` AdamW steps (forward by replay), comparing after each. */
static void train_same(const chain_opts *o, int steps, const char *what)
{
    chain a, b;
    chain_opts oa = *o, ob = *o;
    oa.ckpt = false, ob.ckpt = true;
    if (!ok(!build(&a, &oa) && !build(&b, &ob), "%s: both chains built", what))
        return;
    tg_adam_opts ao = {.lr = 1e-2, .weight_decay = 0.1, .decoupled = true};
    tg_optim *pa = tg_adam_new(a.tape, a.np, a.params, &ao);
    tg_optim *pb = tg_adam_new(b.tape, b.np, b.params, &ao);
    int bad_loss = 0, bad_grad = 0, bad_param = 0;
    for (int s = 0; s < steps; s++) {
        if (s > 0) {
            tg_replay(a.tape);
            tg_replay(b.tape);
        }
        bad_loss += tg_item(a.loss) != tg_item(b.loss);
        tg_zero_grad(a.tape), tg_zero_grad(b.tape);
        if (tg_backward(a.loss) || tg_backward(b.loss)) {
            ok(0, "%s: backward: %s / %s", what, tg_tape_error(a.tape), tg_tape_error(b.tape));
            goto out;
        }
        bad_grad += differing(&a, &b, true);
        tg_optim_step(pa), tg_optim_step(pb);
        bad_param += differing(&a, &b, false);
    }
    ok(!bad_loss && !bad_grad && !bad_param,
       "%s: %d steps, losses, every gradient, parameter%s bit-identical with and without "
       "checkpointing (differences: %d %d %d)",
       what, steps, o->bn ? " and running statistic" : "", bad_loss, bad_grad, bad_param);
    tg_tape_stats sa, sb;
    tg_tape_get_stats(a.tape, &sa);
    tg_tape_get_stats(b.tape, &sb);
    ok(sb.segments == (size_t)((o->blocks + o->per_segment - 1) / o->per_segment) &&
           sb.graph_bytes + sb.checkpoint_bytes < sa.graph_bytes,
       "%s: the checkpointed tape holds %zu + %zu bytes (graph + pools) against %zu, "
       "%zu segments", what, sb.graph_bytes, sb.checkpoint_bytes, sa.graph_bytes, sb.segments);
out:
    tg_optim_free(pa), tg_optim_free(pb);
    tg_tape_free(a.tape), tg_tape_free(b.tape);
}

static void test_identical(void)
{
    chain_opts o = {.blocks = 6, .rows = 5, .width = 8, .hidden = 12, .dt = TG_F64,
                    .per_segment = 1};
    train_same(&o, 3, "f64, 6 blocks, one segment each");
    o.dt = TG_F32, o.dropout = true, o.per_segment = 2, o.rows = 64, o.width = 48,
    o.hidden = 96;
    train_same(&o, 3, "f32 + dropout, 2 blocks per segment");
    o.bn = true, o.per_segment = 4, o.blocks = 7;
    train_same(&o, 3, "f32 + dropout + batch norm, 4 blocks per segment (last one 3)");
    tg_set_threads(2);
    o.bn = false, o.dropout = true, o.per_segment = 1, o.blocks = 4, o.rows = 256;
    train_same(&o, 2, "2 threads, f32 + dropout, 256 rows");
    tg_set_threads(1);
}

/* The memory saved: a 32-block chain, both tapes measured. */
static void test_memory(void)
{
    chain_opts o = {.blocks = 32, .rows = 64, .width = 64, .hidden = 256, .dt = TG_F32,
                    .per_segment = 1};
    chain a, b;
    o.ckpt = false;
    build(&a, &o);
    o.ckpt = true;
    build(&b, &o);
    tg_backward(a.loss);
    tg_backward(b.loss);
    tg_tape_stats sa, sb;
    tg_tape_get_stats(a.tape, &sa);
    tg_tape_get_stats(b.tape, &sb);
    /* per block: 6 intermediates of 64×256 or 64×64 f32 plus gradients;
     * only the block output (64×64) and its gradient stay */
    size_t plain = sa.graph_bytes, ck = sb.graph_bytes + sb.checkpoint_bytes;
    ok(ck * 4 < plain, "32 blocks: %zu bytes with checkpointing, %zu without (%.1fx less)", ck,
       plain, (double)plain / (double)ck);
    tg_tape_free(a.tape), tg_tape_free(b.tape);
}

static void test_no_alloc(void)
{
    chain_opts o = {.blocks = 5, .rows = 16, .width = 16, .hidden = 32, .dt = TG_F32,
                    .ckpt = true, .dropout = true, .bn = true, .per_segment = 2};
    chain c;
    build(&c, &o);
    tg_backward(c.loss);
    int64_t n0 = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
    for (int s = 0; s < 3; s++) {
        tg_replay(c.tape);
        tg_zero_grad(c.tape);
        tg_backward(c.loss);
    }
    int64_t n = tg_test_control(TG_TEST_ALLOC_COUNT, 0) - n0;
    ok(n == 0, "3 replayed steps with recomputed segments allocate nothing (%lld)", (long long)n);
    tg_tape_free(c.tape);
}

static void test_fd(void)
{
    chain_opts o = {.blocks = 3, .rows = 3, .width = 4, .hidden = 5, .dt = TG_F64,
                    .ckpt = true, .per_segment = 1};
    chain c;
    build(&c, &o);
    tg_check r;
    int rc = tg_check_fd(c.loss, 0, NULL, 0, &r);
    ok(rc == 0 && r.max_rel <= 1e-7, "finite differences through 3 checkpointed blocks: max rel "
                                     "%.2e over %zu elements", r.max_rel, r.count);
    /* and the checkpointed tape's own gradient equals the check's copy's */
    tg_backward(c.loss);
    ok(tg_grad(c.w1[0]) != NULL, "gradient of the first block's weight readable");
    tg_tape_free(c.tape);
}

static void test_shapes(void)
{
    tg_tape *T = tg_tape_new();
    tg_tensor *w = tg_param(T, "w", TG_F64, 2, SHAPE(2, 3));
    fill(w, 5, 1);
    /* two outputs, a view of an output used inside, a view taken after */
    tg_checkpoint_begin(T);
    tg_tensor *a = tg_tanh(w), *b = tg_exp(a), *c = tg_sigmoid(w);
    tg_tensor *bv = tg_reshape(b, 1, SHAPE(6));
    tg_tensor *d = tg_mul(c, tg_reshape(tg_sum(bv), 0, NULL));
    int rc = tg_checkpoint_end(T, 2, (tg_tensor *[]){b, d});
    tg_tensor *loss = tg_add(tg_sum(tg_reshape(b, 1, SHAPE(6))), tg_sum(tg_mul(d, d)));
    ok(rc == 0 && loss && !tg_backward(loss), "two outputs, views inside and after: %s",
       tg_tape_error(T) ? tg_tape_error(T) : "ok");
    /* reference without checkpointing */
    tg_tape *R = tg_tape_new();
    tg_tensor *w2 = tg_param(R, "w", TG_F64, 2, SHAPE(2, 3));
    fill(w2, 5, 1);
    tg_tensor *a2 = tg_tanh(w2), *b2 = tg_exp(a2), *c2 = tg_sigmoid(w2);
    tg_tensor *d2 = tg_mul(c2, tg_reshape(tg_sum(tg_reshape(b2, 1, SHAPE(6))), 0, NULL));
    tg_tensor *l2 = tg_add(tg_sum(tg_reshape(b2, 1, SHAPE(6))), tg_sum(tg_mul(d2, d2)));
    tg_backward(l2);
    ok(tg_item(loss) == tg_item(l2) && !memcmp(tg_grad(w), tg_grad(w2), 6 * sizeof(double)),
       "two-output segment: loss and gradient bit-identical to the plain tape");
    (void)a, (void)c;
    tg_tape_free(R);

    TAPE_FAILS(T, !tg_exp(a), "is an intermediate of checkpoint segment 1");
    TAPE_FAILS(T, isnan(tg_item(tg_sum(c))) , "whose values are dropped");
    TAPE_FAILS(T, !tg_grad(a), "is an intermediate of checkpoint segment 1");
    TAPE_FAILS(T, tg_backward(a) == -1, "is an intermediate of checkpoint segment 1");
    tg_checkpoint_begin(T);
    tg_tensor *e = tg_neg(w);
    tg_tensor *ev = tg_reshape(e, 1, SHAPE(6));
    TAPE_FAILS(T, tg_checkpoint_end(T, 1, &ev) == -1, "is a view (reshape) of another tensor");
    TAPE_FAILS(T, tg_checkpoint_end(T, 1, &w) == -1, "was not computed inside segment 2");
    ok(!tg_checkpoint_end(T, 1, &e), "end with the viewed tensor instead");
    /* a parameter written after the forward: its segment's rerun would see it */
    tg_tensor *l3 = tg_sum(e);
    tg_set(w, 0, 0.5);
    TAPE_FAILS(T, tg_backward(l3) == -1, "its checkpoint segment runs it again");
    tg_replay(T);
    ok(!tg_backward(l3), "after a replay backward runs");
    tg_tape_clear(T);
    ok(!tg_checkpoint_begin(T) && !tg_checkpoint_end(T, 0, NULL),
       "an empty segment after tg_tape_clear");
    tg_tape_free(T);
}

int main(void)
{
    test_identical();
    test_memory();
    test_no_alloc();
    test_fd();
    test_shapes();
    return tap_done();
}
