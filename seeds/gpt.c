/* The character-level GPT of seeds/lm.h (nanoGPT's architecture): each block
 * in its own scope ("block0" ...), so `tapegrad dot gpt` draws one cluster
 * per block.
 *
 *   x [B,T] i32 → tok = wte[x] [B,T,D] (tg_embedding) + wpe [T,D]
 *   residual stream h [B·T, D]; per block l = 0 .. L−1:
 *     a   = ln1(h)                                   layer norm, eps 1e-5
 *     qkv = a·W_qkv + b_qkv  [B·T, 3D] → [B,T,3H,D/H] → permute → [B,3H,T,D/H]
 *     q, k, v = the slices [B,H,T,D/H] at heads 0, H, 2H of axis 1
 *     att = softmax_causal(q·kᵀ · 1/√(D/H))          [B,H,T,T]
 *     y   = att·v → permute → [B,T,H,D/H] → [B·T, D]
 *     h   = h + dropout(y·W_o + b_o)
 *     h   = h + dropout(gelu(ln2(h)·W_1 + b_1)·W_2 + b_2)   D → 4D → D
 *   ln_f(h) · W_head [D,V] (no bias, untied, as nanoGPT's lm_head has no bias)
 *   logits [B,T,V]; loss = mean softmax cross-entropy over the B·T positions.
 *
 * GELU is the exact erf form (tg_gelu, PyTorch's nn.GELU()).  Dropout (p =
 * cfg->dropout) after the attention projection and after the MLP; with p = 0
 * no dropout node is recorded.
 *
 * Initialisation as nanoGPT: every matrix and both embeddings from N(0, 0.02),
 * the residual projections (W_o, W_2) from N(0, 0.02/√(2L)), biases 0, layer
 * norm γ = 1, β = 0; drawn from one tg_rng seeded with cfg->seed, in the
 * order the parameters are created (wte, wpe, then per block W_qkv, W_o, W_1,
 * W_2, then W_head).  m->decay (what AdamW decays) holds the 2-D matmul
 * weights W_qkv, W_o, W_1, W_2 of every block and W_head: not the
 * embeddings, biases or layer-norm parameters.
 *
 * With cfg->checkpoint each block is one activation-checkpoint segment
 * (tg_checkpoint_begin/end): its intermediates are recomputed in backward. */
#include "lm.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static tg_tensor *named(tg_tensor *t, const char *name)
{
    tg_set_name(t, name);
    return t;
}

/* A parameter: listed in m->params (and in m->decay when decay). */
static tg_tensor *param(lm_model *m, const char *name, tg_dtype dt, int rank,
                        const size_t *shape, bool decay)
{
    tg_tensor *t = tg_param(m->tape, name, dt, rank, shape);
    if (t && m->n_params < LM_MAX_PARAMS)
        m->params[m->n_params++] = t;
    if (t && decay && m->n_decay < LM_MAX_PARAMS)
        m->decay[m->n_decay++] = t;
    return t;
}

/* A [in, out] matrix from N(0, sd) and, when bias, a zero [out] bias. */
static tg_tensor *linear(lm_model *m, tg_rng *r, const char *pre, const char *what, size_t in,
                         size_t out, double sd, tg_tensor **bias)
{
    char name[64];
    tg_dtype dt = m->cfg.dtype;
    snprintf(name, sizeof name, "%s.%s.W", pre, what);
    tg_tensor *w = param(m, name, dt, 2, (size_t[]){in, out}, true);
    tg_init_normal(w, r, 0, sd);
    if (bias) {
        snprintf(name, sizeof name, "%s.%s.b", pre, what);
        *bias = param(m, name, dt, 1, (size_t[]){out}, false);
    }
    return w;
}

/* Layer norm parameters γ = 1, β = 0 of width d. */
static void norm_params(lm_model *m, const char *pre, const char *what, size_t d,
                        tg_tensor **g, tg_tensor **b)
{
    char name[64];
    snprintf(name, sizeof name, "%s.%s.gamma", pre, what);
    *g = param(m, name, m->cfg.dtype, 1, (size_t[]){d}, false);
    tg_fill(*g, 1);
    snprintf(name, sizeof name, "%s.%s.beta", pre, what);
    *b = param(m, name, m->cfg.dtype, 1, (size_t[]){d}, false);
}

/* x @ w + b on the rows of x (2-D) */
static tg_tensor *affine(tg_tensor *x, tg_tensor *w, tg_tensor *b)
{
    tg_tensor *y = tg_matmul(x, w);
    return b ? tg_add_bias(y, b) : y;
}

/* One pre-LayerNorm block on the residual stream h [B·T, D] (NULL, with
 * *bad set, when checkpointing refused). */
static tg_tensor *block(lm_model *m, tg_rng *r, int l, tg_tensor *h, bool *bad)
{
    const lm_config *c = &m->cfg;
    size_t B = (size_t)c->batch, T = (size_t)c->ctx, D = (size_t)c->width,
           H = (size_t)c->heads, hd = D / H;
    double sd = 0.02, sd_res = 0.02 / sqrt(2.0 * c->layers);
    char pre[32];
    snprintf(pre, sizeof pre, "block%d", l);
    tg_tensor *g1, *b1, *g2, *b2, *bqkv, *bo, *bf1, *bf2;
    norm_params(m, pre, "ln1", D, &g1, &b1);
    tg_tensor *wqkv = linear(m, r, pre, "attn.qkv", D, 3 * D, sd, &bqkv);
    tg_tensor *wo = linear(m, r, pre, "attn.proj", D, D, sd_res, &bo);
    norm_params(m, pre, "ln2", D, &g2, &b2);
    tg_tensor *wf1 = linear(m, r, pre, "mlp.fc1", D, 4 * D, sd, &bf1);
    tg_tensor *wf2 = linear(m, r, pre, "mlp.fc2", 4 * D, D, sd_res, &bf2);

    tg_scope_push(m->tape, pre);
    if (c->checkpoint && tg_checkpoint_begin(m->tape))
        *bad = true;
    tg_tensor *a = named(tg_layer_norm(h, g1, b1, 1e-5), "ln1");
    tg_tensor *qkv = named(affine(a, wqkv, bqkv), "qkv");
    qkv = tg_reshape(qkv, 4, (size_t[]){B, T, 3 * H, hd});
    qkv = named(tg_permute(qkv, (const int[]){0, 2, 1, 3}), "qkv_heads");
    tg_tensor *q = named(tg_slice(qkv, 1, 0, H), "q");
    tg_tensor *k = named(tg_slice(qkv, 1, H, H), "k");
    tg_tensor *v = named(tg_slice(qkv, 1, 2 * H, H), "v");
    tg_tensor *att = tg_scale(tg_bmm(q, k, false, true), 1 / sqrt((double)hd));
    att = named(tg_softmax_causal(att), "att");
    tg_tensor *y = named(tg_bmm(att, v, false, false), "y_heads");
    y = tg_permute(y, (const int[]){0, 2, 1, 3});
    y = tg_reshape(y, 2, (size_t[]){B * T, D});
    y = named(affine(y, wo, bo), "attn_out");
    if (c->dropout > 0)
        y = tg_dropout(y, c->dropout);
    h = named(tg_add(h, y), "res1");

    a = named(tg_layer_norm(h, g2, b2, 1e-5), "ln2");
    tg_tensor *f = named(tg_gelu(affine(a, wf1, bf1)), "gelu");
    f = named(affine(f, wf2, bf2), "mlp_out");
    if (c->dropout > 0)
        f = tg_dropout(f, c->dropout);
    h = named(tg_add(h, f), "res2");
    if (c->checkpoint && (!h || tg_checkpoint_end(m->tape, 1, &h)))
        *bad = true;
    tg_scope_pop(m->tape);
    return h;
}

static int fail(lm_model *m, tg_err *err, const char *msg)
{
    if (err)
        snprintf(err->msg, sizeof err->msg, "gpt: %s", msg);
    if (m->tape)
        tg_tape_free(m->tape);
    memset(m, 0, sizeof *m);
    return -1;
}

int gpt_build(lm_model *m, const lm_config *cfg, tg_err *err)
{
    memset(m, 0, sizeof *m);
    if (!cfg)
        return fail(m, err, "no configuration");
    char msg[200];
    snprintf(msg, sizeof msg,
             "bad configuration: vocab %d (2..256), ctx %d, batch %d, layers %d (1..%d), "
             "heads %d, width %d (a multiple of heads), dropout %g ([0, 1)), dtype %d",
             cfg->vocab, cfg->ctx, cfg->batch, cfg->layers, (LM_MAX_PARAMS - 5) / 12,
             cfg->heads, cfg->width, cfg->dropout, (int)cfg->dtype);
    if (cfg->vocab < 2 || cfg->vocab > 256 || cfg->ctx < 1 || cfg->batch < 1 ||
        cfg->layers < 1 || cfg->layers > (LM_MAX_PARAMS - 5) / 12 || cfg->heads < 1 ||
        cfg->width < 1 || cfg->width % cfg->heads || !(cfg->dropout >= 0 && cfg->dropout < 1) ||
        (cfg->dtype != TG_F32 && cfg->dtype != TG_F64) || cfg->ctx > (1 << 20) ||
        cfg->batch > (1 << 20) || cfg->width > (1 << 16))
        return fail(m, err, msg);
    m->cfg = *cfg;
    m->cfg.model = LM_GPT;
    if (!(m->tape = tg_tape_new()))
        return fail(m, err, "out of memory");
    tg_tape *t = m->tape;
    tg_rng r;
    tg_rng_seed(&r, cfg->seed);
    tg_tape_seed(t, cfg->seed ^ 0xd709u); /* the dropout masks */
    size_t B = (size_t)cfg->batch, T = (size_t)cfg->ctx, D = (size_t)cfg->width,
           V = (size_t)cfg->vocab;
    tg_dtype dt = cfg->dtype;

    m->x = tg_input(t, "x", TG_I32, 2, (size_t[]){B, T});
    m->y = tg_input(t, "y", TG_I32, 2, (size_t[]){B, T});
    tg_tensor *wte = param(m, "wte", dt, 2, (size_t[]){V, D}, false);
    tg_tensor *wpe = param(m, "wpe", dt, 2, (size_t[]){T, D}, false);
    tg_init_normal(wte, &r, 0, 0.02);
    tg_init_normal(wpe, &r, 0, 0.02);
    tg_scope_push(t, "embed");
    tg_tensor *h = named(tg_add(tg_embedding(wte, m->x), wpe), "h0");
    h = tg_reshape(h, 2, (size_t[]){B * T, D});
    tg_scope_pop(t);
    bool bad = false;
    for (int l = 0; l < cfg->layers; l++)
        h = block(m, &r, l, h, &bad);
    tg_tensor *gf, *bf;
    norm_params(m, "head", "ln_f", D, &gf, &bf);
    tg_tensor *wh = linear(m, &r, "head", "lm", D, V, 0.02, NULL);
    tg_scope_push(t, "head");
    h = named(tg_layer_norm(h, gf, bf, 1e-5), "ln_f");
    m->logits = named(tg_reshape(tg_matmul(h, wh), 3, (size_t[]){B, T, V}), "logits");
    tg_scope_pop(t);
    tg_scope_push(t, "loss");
    m->loss = named(tg_softmax_ce(m->logits, m->y, TG_MEAN), "loss");
    tg_scope_pop(t);
    if (bad || !m->loss || m->n_params != 12 * cfg->layers + 5) {
        snprintf(msg, sizeof msg, "%s", tg_tape_error(t) ? tg_tape_error(t) : "out of memory");
        return fail(m, err, msg);
    }
    return 0;
}
