/* The character-level GRU language model of seeds/lm.h.
 *
 *   x [B,T] i32 → e = emb[x] [B,T,D] (tg_embedding)
 *   L GRU layers of width D (tg_gru_cell, torch.nn.GRUCell's equations),
 *   unrolled over the T steps from h = 0: at step t layer 0 reads
 *   e[:,t,:] (a slice, reshaped to [B,D]) and layer l > 0 reads layer l−1's
 *   new state; the weights of a layer are shared by its T steps
 *   top layer's states stacked → [B,T,D] → [B·T,D] · W_head [D,V] + b_head
 *   logits [B,T,V]; loss = mean softmax cross-entropy over the B·T positions.
 *
 * This is torch.nn.GRU(D, D, num_layers=L, batch_first=True) with an
 * nn.Embedding(V, D) before it and an nn.Linear(D, V) after it
 * (tests/bench/torch_gru.py), without dropout (cfg->dropout and cfg->heads
 * are not used).
 *
 * Initialisation as PyTorch's defaults: emb from N(0, 1) (nn.Embedding);
 * every GRU weight and bias from U(−1/√D, 1/√D) (tg_gru_new); W_head and
 * b_head from U(−1/√D, 1/√D) (nn.Linear: kaiming_uniform with a = √5 gives
 * that bound).  One tg_rng seeded with cfg->seed draws emb, then a seed for
 * each layer's tg_gru_new, then W_head, b_head.  m->params: emb, then
 * gru<l>.w_ih, .w_hh, .b_ih, .b_hh per layer, head.W, head.b; m->decay (what
 * AdamW decays): the GRU matrices w_ih, w_hh and head.W (not the embedding,
 * not the biases).
 *
 * The steps are recorded time-major (step t of every layer, then step t+1)
 * in groups of 8 steps, each group in its own scope ("steps0-7", ...) so
 * that `tapegrad dot gru` draws T/8 clusters.  With cfg->checkpoint each
 * group is one activation-checkpoint segment (tg_checkpoint_begin/end): only
 * the states that later groups and the head read are kept (every layer's
 * last state, and the top layer's state at each step of the group); the
 * gates are recomputed in backward. */
#include "lm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { GROUP = 8 };                  /* steps per scope / checkpoint segment */
enum { MAX_LAYERS = (LM_MAX_PARAMS - 3) / 4 };

static tg_tensor *named(tg_tensor *t, const char *name)
{
    tg_set_name(t, name);
    return t;
}

static void add_param(lm_model *m, tg_tensor *t, bool decay)
{
    if (t && m->n_params < LM_MAX_PARAMS)
        m->params[m->n_params++] = t;
    if (t && decay && m->n_decay < LM_MAX_PARAMS)
        m->decay[m->n_decay++] = t;
}

static int fail(lm_model *m, tg_err *err, const char *msg)
{
    if (err)
        snprintf(err->msg, sizeof err->msg, "gru: %s", msg);
    if (m->tape)
        tg_tape_free(m->tape);
    memset(m, 0, sizeof *m);
    return -1;
}

int gru_lm_build(lm_model *m, const lm_config *cfg, tg_err *err)
{
    if (!m) {
        if (err)
            snprintf(err->msg, sizeof err->msg, "gru: no model to build into");
        return -1;
    }
    memset(m, 0, sizeof *m);
    if (!cfg)
        return fail(m, err, "no configuration");
    char msg[240];
    snprintf(msg, sizeof msg,
             "bad configuration: vocab %d (2..256), ctx %d (1..%d), batch %d (1..%d), "
             "layers %d (1..%d), width %d (1..%d), dtype %d (f32 or f64)",
             cfg->vocab, cfg->ctx, 1 << 16, cfg->batch, 1 << 20, cfg->layers, MAX_LAYERS,
             cfg->width, 1 << 16, (int)cfg->dtype);
    if (cfg->vocab < 2 || cfg->vocab > 256 || cfg->ctx < 1 || cfg->ctx > (1 << 16) ||
        cfg->batch < 1 || cfg->batch > (1 << 20) || cfg->layers < 1 ||
        cfg->layers > MAX_LAYERS || cfg->width < 1 || cfg->width > (1 << 16) ||
        (cfg->dtype != TG_F32 && cfg->dtype != TG_F64))
        return fail(m, err, msg);
    m->cfg = *cfg;
    m->cfg.model = LM_GRU;
    if (!(m->tape = tg_tape_new()))
        return fail(m, err, "out of memory");
    tg_tape *t = m->tape;
    const size_t B = (size_t)cfg->batch, T = (size_t)cfg->ctx, D = (size_t)cfg->width,
                 V = (size_t)cfg->vocab;
    const int L = cfg->layers;
    const tg_dtype dt = cfg->dtype;
    tg_rng r;
    tg_rng_seed(&r, cfg->seed);

    m->x = tg_input(t, "x", TG_I32, 2, (size_t[]){B, T});
    m->y = tg_input(t, "y", TG_I32, 2, (size_t[]){B, T});
    tg_tensor *emb = tg_param(t, "emb", dt, 2, (size_t[]){V, D});
    add_param(m, emb, false);
    tg_init_normal(emb, &r, 0, 1);
    tg_gru cells[MAX_LAYERS];
    for (int l = 0; l < L; l++) {
        char name[32];
        snprintf(name, sizeof name, "gru%d", l);
        if (tg_gru_new(t, &cells[l], (int)D, (int)D, dt, name, tg_rng_next(&r)))
            break;
        add_param(m, cells[l].w_ih, true);
        add_param(m, cells[l].w_hh, true);
        add_param(m, cells[l].b_ih, false);
        add_param(m, cells[l].b_hh, false);
    }
    tg_tensor *wh = tg_param(t, "head.W", dt, 2, (size_t[]){D, V});
    tg_tensor *bh = tg_param(t, "head.b", dt, 1, (size_t[]){V});
    add_param(m, wh, true);
    add_param(m, bh, false);
    double a = 1 / sqrt((double)D);
    tg_init_uniform(wh, &r, -a, a);
    tg_init_uniform(bh, &r, -a, a);
    if (m->n_params != 4 * L + 3) {
        snprintf(msg, sizeof msg, "%s", tg_tape_error(t) ? tg_tape_error(t) : "out of memory");
        return fail(m, err, msg);
    }

    tg_scope_push(t, "embed");
    tg_tensor *e = named(tg_embedding(emb, m->x), "e");
    tg_scope_pop(t);
    tg_tensor *h0 = tg_const(t, "h0", dt, 2, (size_t[]){B, D});
    tg_tensor *h[MAX_LAYERS];
    for (int l = 0; l < L; l++)
        h[l] = h0;
    tg_tensor **top = calloc(T, sizeof *top); /* the top layer's states */
    if (!top)
        return fail(m, err, "out of memory");
    for (size_t g0 = 0; g0 < T; g0 += GROUP) {
        size_t g1 = g0 + GROUP < T ? g0 + GROUP : T;
        char name[48];
        snprintf(name, sizeof name, "steps%zu-%zu", g0, g1 - 1);
        tg_scope_push(t, name);
        if (cfg->checkpoint)
            tg_checkpoint_begin(t);
        for (size_t s = g0; s < g1; s++) {
            snprintf(name, sizeof name, "x%zu", s);
            tg_tensor *in = named(tg_reshape(tg_slice(e, 1, s, 1), 2, (size_t[]){B, D}), name);
            for (int l = 0; l < L; l++) {
                snprintf(name, sizeof name, "h%d_%zu", l, s);
                in = h[l] = named(tg_gru_cell(&cells[l], in, h[l]), name);
            }
            top[s] = in;
        }
        if (cfg->checkpoint) {
            /* kept: the top layer's states of the group and the last state
             * of every lower layer (the top one's is top[g1-1]) */
            tg_tensor *outs[GROUP + MAX_LAYERS];
            int n = 0;
            for (size_t s = g0; s < g1; s++)
                outs[n++] = top[s];
            for (int l = 0; l + 1 < L; l++)
                outs[n++] = h[l];
            tg_checkpoint_end(t, n, outs);
        }
        tg_scope_pop(t);
    }
    tg_scope_push(t, "head");
    tg_tensor *hs = named(tg_stack((int)T, top, 1), "hs"); /* [B,T,D] */
    free(top);
    hs = tg_reshape(hs, 2, (size_t[]){B * T, D});
    tg_tensor *z = tg_add_bias(tg_matmul(hs, wh), bh);
    m->logits = named(tg_reshape(z, 3, (size_t[]){B, T, V}), "logits");
    tg_scope_pop(t);
    tg_scope_push(t, "loss");
    m->loss = named(tg_softmax_ce(m->logits, m->y, TG_MEAN), "loss");
    tg_scope_pop(t);
    if (!m->loss) {
        snprintf(msg, sizeof msg, "%s", tg_tape_error(t) ? tg_tape_error(t) : "out of memory");
        return fail(m, err, msg);
    }
    return 0;
}
