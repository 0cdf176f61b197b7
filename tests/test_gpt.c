/* The character-level GPT of seeds/gpt.c (gpt_build): its gradient against
 * finite differences on a tiny f64 model, its loss against PyTorch with the
 * same weights, causality, the parameter lists, checkpointing (bit-identical
 * gradients), a replayed training step that allocates nothing, and 1 vs 2
 * threads bit for bit. */
#define _GNU_SOURCE
#include "tap.h"
#include "lm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define GPT_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define GPT_SANITIZED 1
#endif

/* Every malloc/calloc/realloc of the process, counted (glibc, no sanitizer:
 * glibc's allocator is reached under its other name). */
#if defined(__GLIBC__) && !defined(GPT_SANITIZED)
#define COUNT_MALLOC 1
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
static volatile unsigned long n_mallocs;
void *malloc(size_t n)
{
    n_mallocs++;
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t s)
{
    n_mallocs++;
    return __libc_calloc(n, s);
}
void *realloc(void *p, size_t n)
{
    n_mallocs++;
    return __libc_realloc(p, n);
}
#endif

static lm_config tiny(int layers)
{
    return (lm_config){.model = LM_GPT, .vocab = 7, .ctx = 4, .batch = 2, .layers = layers,
                       .heads = 2, .width = 8, .seed = 5, .dtype = TG_F64};
}

/* Tokens x[b,t] = (3b + 5t + 1) mod V, y[b,t] = (2b + 3t + 4) mod V. */
static void pattern_tokens(lm_model *m)
{
    int V = m->cfg.vocab, T = m->cfg.ctx;
    int32_t *x = tg_data_i32(m->x), *y = tg_data_i32(m->y);
    for (int b = 0; b < m->cfg.batch; b++)
        for (int t = 0; t < T; t++) {
            x[b * T + t] = (3 * b + 5 * t + 1) % V;
            y[b * T + t] = (2 * b + 3 * t + 4) % V;
        }
}

/* Parameter p element i = amp·sin(0.37·i + 1.1·p + 0.3); amp 0.3 is the
 * pattern of torch_gpt.py's `pattern` mode. */
static void pattern_params(lm_model *m, double amp)
{
    for (int p = 0; p < m->n_params; p++)
        for (size_t i = 0; i < tg_size(m->params[p]); i++)
            tg_set(m->params[p], i, amp * sin(0.37 * (double)i + 1.1 * p + 0.3));
}

static void builds_and_lists(void)
{
    lm_config c = tiny(2);
    lm_model m;
    tg_err err;
    int rc = gpt_build(&m, &c, &err);
    ok(rc == 0, "a 2-layer GPT builds (%s)", rc ? err.msg : "ok");
    if (rc)
        return;
    ok(m.n_params == 12 * 2 + 5, "29 parameters: embeddings, 12 per block, ln_f, head (%d)",
       m.n_params);
    bool decay_ok = m.n_decay == 4 * 2 + 1;
    for (int i = 0; i < m.n_decay; i++)
        decay_ok &= tg_rank(m.decay[i]) == 2 && strcmp(tg_name(m.decay[i]), "wte") &&
                    strcmp(tg_name(m.decay[i]), "wpe");
    ok(decay_ok, "decay: the 9 matmul weights (qkv, proj, fc1, fc2 per block, head), no "
                 "embedding, bias or norm (%d)", m.n_decay);
    size_t V = 7, T = 4, D = 8;
    ok(tg_rank(m.logits) == 3 && tg_dim(m.logits, 0) == 2 && tg_dim(m.logits, 1) == T &&
           tg_dim(m.logits, 2) == V && tg_size(m.loss) == 1,
       "logits [2,4,7], a scalar loss");
    /* nanoGPT's initialisation: N(0, 0.02), residual projections 0.02/√(2L) */
    tg_tensor *proj = tg_tape_find(m.tape, "block1.attn.proj.W");
    tg_tensor *fc1 = tg_tape_find(m.tape, "block0.mlp.fc1.W");
    tg_tensor *g = tg_tape_find(m.tape, "block0.ln1.gamma");
    tg_tensor *bq = tg_tape_find(m.tape, "block0.attn.qkv.b");
    double s2 = 0, f2 = 0, gs = 0, bs = 0;
    for (size_t i = 0; proj && i < D * D; i++)
        s2 += tg_get(proj, i) * tg_get(proj, i);
    for (size_t i = 0; fc1 && i < D * 4 * D; i++)
        f2 += tg_get(fc1, i) * tg_get(fc1, i);
    for (size_t i = 0; g && bq && i < D; i++)
        gs += fabs(tg_get(g, i) - 1), bs += fabs(tg_get(bq, i));
    double sd_p = sqrt(s2 / (double)(D * D)), sd_f = sqrt(f2 / (double)(D * 4 * D));
    ok(proj && fc1 && g && bq && sd_p > 0.005 && sd_p < 0.015 && sd_f > 0.015 && sd_f < 0.025 &&
           gs == 0 && bs == 0,
       "init: fc1 sd %.4f (0.02), proj sd %.4f (0.01), LN gamma 1, biases 0", sd_f, sd_p);
    tg_tape_free(m.tape);

    c.width = 9; /* not a multiple of 2 heads */
    ok(gpt_build(&m, &c, &err) == -1 && strstr(err.msg, "gpt: bad configuration") &&
           strstr(err.msg, "width 9") && !m.tape,
       "width 9 with 2 heads is refused: %s", err.msg);
    c = tiny(2);
    c.dropout = 1;
    ok(gpt_build(&m, &c, &err) == -1 && strstr(err.msg, "dropout 1"), "dropout 1 is refused");
    ok(gpt_build(&m, NULL, &err) == -1, "no configuration is refused");
}

/* Finite differences on every parameter of a tiny f64 model, 1 and 2
 * layers.  The weights are patterned with amplitudes 1.2 and 1.6: at
 * nanoGPT's initialisation (and at amplitude 0.3) the attention's and the
 * first MLP's gradients are a few 1e-6 of the loss, where the rounding
 * noise of the difference quotients (about 1e-12 absolute) is more than
 * 1e-7 of them; larger weights make every tensor's gradient large enough to
 * compare at 1e-7.  The loss is smooth (no kink), so nothing may be
 * skipped. */
static void finite_differences(void)
{
    const double amp[2] = {1.2, 1.6};
    for (int layers = 1; layers <= 2; layers++) {
        lm_config c = tiny(layers);
        lm_model m;
        tg_err err;
        if (gpt_build(&m, &c, &err)) {
            ok(0, "build: %s", err.msg);
            continue;
        }
        pattern_tokens(&m);
        pattern_params(&m, amp[layers - 1]);
        tg_check ck;
        bool good = tg_replay(m.tape) == 0 && tg_check_fd(m.loss, 0, NULL, 0, &ck) == 0;
        ok(good && ck.max_rel <= 1e-7 && ck.skipped == 0 && ck.count == (layers == 1 ? 1032 : 1904),
           "%d layer(s): finite differences on all %zu parameter values, max rel err %.2g "
           "(<= 1e-7), %zu skipped", layers, good ? ck.count : 0, good ? ck.max_rel : -1.0,
           good ? ck.skipped : 0);
        if (!good)
            diag("%s", tg_tape_error(m.tape) ? tg_tape_error(m.tape) : "");
        else if (ck.max_rel > 1e-7)
            tg_check_print(stdout, "# worst", &ck);
        tg_tape_free(m.tape);
    }
}

/* The loss with patterned weights against PyTorch (float64): printed by
 *   /usr/bin/python3 tests/bench/torch_gpt.py pattern --batch 2 --ctx 4 \
 *       --layers L --heads 2 --width 8 --vocab 7 --dtype f64
 * (torch 1.13: nn.LayerNorm, nn.GELU(), masked_fill + softmax attention,
 * F.cross_entropy), pasted here. */
static void against_pytorch(void)
{
    const double want[2] = {1.9408501982503319, 1.9435041163291338};
    for (int layers = 1; layers <= 2; layers++) {
        lm_config c = tiny(layers);
        lm_model m;
        tg_err err;
        if (gpt_build(&m, &c, &err)) {
            ok(0, "build: %s", err.msg);
            continue;
        }
        pattern_tokens(&m);
        pattern_params(&m, 0.3);
        double got = tg_replay(m.tape) == 0 ? tg_item(m.loss) : NAN;
        ok(fabs(got - want[layers - 1]) <= 1e-13 * want[layers - 1],
           "%d layer(s): loss %.17g, PyTorch float64 %.17g", layers, got, want[layers - 1]);
        tg_tape_free(m.tape);
    }
}

/* Changing the token at position t leaves the logits at positions < t (of
 * that row, and every other row) bit-identical, and changes position t. */
static void causality(void)
{
    lm_config c = tiny(2);
    c.ctx = 6;
    lm_model m;
    tg_err err;
    if (gpt_build(&m, &c, &err)) {
        ok(0, "build: %s", err.msg);
        return;
    }
    pattern_tokens(&m);
    size_t V = 7, T = 6, n = tg_size(m.logits);
    double *before = malloc(n * sizeof *before), *after = malloc(n * sizeof *after);
    tg_replay(m.tape);
    tg_copy_out(m.logits, before, TG_F64, n);
    bool good = true, changed = true;
    for (size_t t = 0; t < T; t++) {
        int32_t *x = tg_data_i32(m.x);
        int32_t old = x[T + t]; /* row 1 */
        tg_set(m.x, T + t, (double)((old + 3) % 7));
        good &= tg_replay(m.tape) == 0;
        tg_copy_out(m.logits, after, TG_F64, n);
        /* row 0 untouched; row 1 before t untouched */
        good &= !memcmp(before, after, (T + t) * V * sizeof(double));
        bool diff = false;
        for (size_t j = 0; j < V; j++)
            diff |= before[(T + t) * V + j] != after[(T + t) * V + j];
        changed &= diff;
        tg_set(m.x, T + t, (double)old);
    }
    ok(good, "a token changed at position t: logits before t (and of the other row) "
             "bit-identical");
    ok(changed, "and the logits at position t change");
    free(before);
    free(after);
    tg_tape_free(m.tape);
}

/* One training step as tapegrad train runs it. */
static bool train_step(lm_model *m, tg_optim *o1, tg_optim *o2)
{
    tg_zero_grad(m->tape);
    return tg_replay(m->tape) == 0 && tg_backward(m->loss) == 0 &&
           tg_clip_grad_norm(m->tape, m->n_params, m->params, 1.0) >= 0 &&
           tg_optim_step(o1) == 0 && tg_optim_step(o2) == 0;
}

/* AdamW on m->decay (weight decay 0.1) and on the rest (none). */
static void optimizers(lm_model *m, tg_optim **o1, tg_optim **o2)
{
    tg_tensor *rest[LM_MAX_PARAMS];
    int n = 0;
    for (int i = 0; i < m->n_params; i++) {
        bool d = false;
        for (int j = 0; j < m->n_decay; j++)
            d |= m->params[i] == m->decay[j];
        if (!d)
            rest[n++] = m->params[i];
    }
    tg_adam_opts o = {.lr = 3e-3, .beta1 = 0.9, .beta2 = 0.95, .weight_decay = 0.1,
                      .decoupled = true};
    *o1 = tg_adam_new(m->tape, m->n_decay, m->decay, &o);
    o.weight_decay = 0;
    *o2 = tg_adam_new(m->tape, n, rest, &o);
}

/* Random tokens for a model's x and y, step s. */
static void random_tokens(lm_model *m, uint64_t s)
{
    tg_rng r;
    tg_rng_seed(&r, 100 + s);
    size_t n = tg_size(m->x);
    for (size_t i = 0; i < n; i++) {
        tg_set(m->x, i, (double)tg_rng_below(&r, (uint64_t)m->cfg.vocab));
        tg_set(m->y, i, (double)tg_rng_below(&r, (uint64_t)m->cfg.vocab));
    }
}

static void no_allocation(bool ckpt)
{
    lm_config c = {.model = LM_GPT, .vocab = 11, .ctx = 8, .batch = 4, .layers = 2, .heads = 2,
                   .width = 16, .dropout = 0.1, .checkpoint = ckpt, .seed = 3, .dtype = TG_F32};
    lm_model m;
    tg_err err;
    if (gpt_build(&m, &c, &err)) {
        ok(0, "build: %s", err.msg);
        return;
    }
    tg_optim *o1, *o2;
    optimizers(&m, &o1, &o2);
    random_tokens(&m, 0);
    bool good = o1 && o2 && train_step(&m, o1, o2); /* the first may allocate (gradients) */
    double first = tg_item(m.loss);
    tg_tape_stats s0, s1;
    tg_tape_get_stats(m.tape, &s0);
    int64_t lib0 = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
#ifdef COUNT_MALLOC
    unsigned long p0 = n_mallocs;
#endif
    double last = 0;
    for (int s = 0; good && s < 30; s++) {
        if (s % 10 == 9)
            random_tokens(&m, 1); /* a new batch now and then (written in place) */
        good &= train_step(&m, o1, o2);
        last = tg_item(m.loss);
    }
    int64_t lib = tg_test_control(TG_TEST_ALLOC_COUNT, 0) - lib0;
    tg_tape_get_stats(m.tape, &s1);
    ok(good, "%s30 replayed training steps (forward, backward, clip, AdamW) succeed (%s)",
       ckpt ? "checkpointed: " : "", tg_tape_error(m.tape) ? tg_tape_error(m.tape) : "no error");
    ok(s1.nodes == s0.nodes && s1.graph_bytes == s0.graph_bytes,
       "%sthey record nothing (%zu nodes)", ckpt ? "checkpointed: " : "", s1.nodes);
    ok(lib == 0, "%sthe library allocates nothing in them (%lld)", ckpt ? "checkpointed: " : "",
       (long long)lib);
#ifdef COUNT_MALLOC
    ok(n_mallocs == p0, "%sno malloc anywhere in the process (%lu)", ckpt ? "checkpointed: " : "",
       n_mallocs - p0);
#else
    printf("ok %d - # SKIP process-wide malloc count (sanitizer build or not glibc)\n",
           ++tap_count);
#endif
    ok(good && last < first, "%sit learns the batch: loss %.4f -> %.4f", ckpt ? "checkpointed: " : "",
       first, last);
    tg_optim_free(o1);
    tg_optim_free(o2);
    tg_tape_free(m.tape);
}

/* Checkpointing each block changes no bit of the loss or of any gradient. */
static void checkpoint_same(void)
{
    lm_model m[2];
    tg_err err;
    bool good = true;
    for (int k = 0; k < 2; k++) {
        lm_config c = {.model = LM_GPT, .vocab = 13, .ctx = 8, .batch = 3, .layers = 3,
                       .heads = 4, .width = 16, .dropout = 0.2, .checkpoint = k, .seed = 9,
                       .dtype = TG_F32};
        if (gpt_build(&m[k], &c, &err)) {
            ok(0, "build: %s", err.msg);
            if (k)
                tg_tape_free(m[0].tape);
            return;
        }
        random_tokens(&m[k], 4);
        good &= tg_replay(m[k].tape) == 0 && tg_backward(m[k].loss) == 0;
    }
    bool same = good && tg_item(m[0].loss) == tg_item(m[1].loss);
    for (int i = 0; same && i < m[0].n_params; i++)
        same = !memcmp(tg_grad(m[0].params[i]), tg_grad(m[1].params[i]),
                       tg_size(m[0].params[i]) * sizeof(float));
    ok(same, "checkpointed blocks (dropout 0.2): loss and every gradient bit-identical (%s)",
       good ? "ran" : tg_tape_error(m[1].tape));
    tg_tape_free(m[0].tape);
    tg_tape_free(m[1].tape);
}

/* Three training steps on 1 and on 2 threads give bit-identical losses and
 * weights (sizes at which GEMM, bmm, the elementwise ops and layer norm
 * split their work over the pool). */
static void threads_same(void)
{
    double loss[2][3];
    float *w[2] = {NULL, NULL};
    size_t nw = 0;
    for (int th = 1; th <= 2; th++) {
        tg_set_threads(th);
        lm_config c = {.model = LM_GPT, .vocab = 30, .ctx = 32, .batch = 16, .layers = 2,
                       .heads = 4, .width = 64, .dropout = 0.1, .seed = 7, .dtype = TG_F32};
        lm_model m;
        tg_err err;
        if (gpt_build(&m, &c, &err)) {
            ok(0, "build: %s", err.msg);
            return;
        }
        tg_optim *o1, *o2;
        optimizers(&m, &o1, &o2);
        bool good = o1 && o2;
        for (int s = 0; good && s < 3; s++) {
            random_tokens(&m, (uint64_t)s);
            good &= train_step(&m, o1, o2);
            loss[th - 1][s] = tg_item(m.loss);
        }
        tg_tensor *fc1 = tg_tape_find(m.tape, "block1.mlp.fc1.W");
        nw = tg_size(fc1);
        w[th - 1] = malloc(nw * sizeof(float));
        good &= fc1 && w[th - 1] && tg_copy_out(fc1, w[th - 1], TG_F32, nw) == 0;
        ok(good, "%d thread(s): 3 training steps", th);
        tg_optim_free(o1);
        tg_optim_free(o2);
        tg_tape_free(m.tape);
    }
    ok(!memcmp(loss[0], loss[1], sizeof loss[0]),
       "1 and 2 threads: bit-identical losses after each of 3 steps (%.9g %.9g %.9g)",
       loss[0][0], loss[0][1], loss[0][2]);
    ok(w[0] && w[1] && !memcmp(w[0], w[1], nw * sizeof(float)),
       "1 and 2 threads: bit-identical weights after 3 steps");
    free(w[0]);
    free(w[1]);
    tg_set_threads(1);
}

int main(void)
{
    builds_and_lists();
    finite_differences();
    against_pytorch();
    causality();
    no_allocation(false);
    no_allocation(true);
    checkpoint_same();
    threads_same();
    return tap_done();
}
