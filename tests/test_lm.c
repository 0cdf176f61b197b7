/* seeds/lm.c: lm_build's dispatch, the "lm.config" tensor (every field's
 * range on unpack), saved models read back, lm_eval against the model's own
 * loss, generation (greedy, prefix, causal context), the learning-rate
 * schedule. */
#define _POSIX_C_SOURCE 200809L
#include "tap.h"
#include "lm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64];

static void config(void)
{
    lm_config c = {.model = LM_GPT, .vocab = 30, .ctx = 8, .batch = 3, .layers = 2, .heads = 2,
                   .width = 16, .dropout = 0.125, .checkpoint = 1, .seed = 0x123456789u,
                   .dtype = TG_F64};
    int32_t p[LM_CONFIG_LEN];
    lm_config u;
    tg_err e = {0};
    ok(lm_config_pack(&c, p, &e) == 0 && lm_config_unpack(p, &u, &e) == 0,
       "pack / unpack %s", e.msg);
    ok(u.model == c.model && u.vocab == c.vocab && u.ctx == c.ctx && u.batch == c.batch &&
           u.layers == c.layers && u.heads == c.heads && u.width == c.width &&
           u.dropout == c.dropout && u.checkpoint == 1 && u.dtype == TG_F64 &&
           u.seed == (c.seed & 0x7fffffff),
       "every field comes back (the seed's low 31 bits)");
    struct {
        int field;
        int32_t value;
        const char *want;
    } bad[] = {
        {0, 2, "lm.config: version 2, this program reads version 1"},
        {1, 3, "lm.config: model 3 is neither 1 (gpt) nor 2 (gru)"},
        {2, 1, "lm.config: vocab 1 is outside 2..256"},
        {2, 257, "vocab 257 is outside"},
        {3, 0, "lm.config: ctx 0 is outside 1..4096"},
        {3, INT32_MIN, "ctx -2147483648 is outside"},
        {4, 5000, "lm.config: batch 5000 is outside 1..4096"},
        {5, 0, "lm.config: layers 0 is outside 1..64"},
        {6, 3, "lm.config: heads 3 must be in 1..width 16 and divide it"},
        {6, 0, "heads 0 must be"},
        {7, -1, "lm.config: width -1 is outside 1..4096"},
        {8, 1000000, "lm.config: dropout 1000000 millionths is outside [0, 1000000)"},
        {8, -1, "dropout -1 millionths"},
        {9, 2, "lm.config: checkpoint 2 is neither 0 nor 1"},
        {10, 7, "lm.config: dtype 7 is neither f32 nor f64"},
        {11, -5, "lm.config: seed field -5 is negative"},
        {12, 1, "lm.config: reserved field 12 is 1, not 0"},
        {15, -1, "reserved field 15 is -1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int32_t q[LM_CONFIG_LEN];
        memcpy(q, p, sizeof q);
        q[bad[i].field] = bad[i].value;
        memset(&e, 0, sizeof e);
        int rc = lm_config_unpack(q, &u, &e);
        ok(rc == -1 && strstr(e.msg, bad[i].want) && u.model == 0,
           "unpack refuses field %d = %d: %s (got: %s)", bad[i].field, (int)bad[i].value,
           bad[i].want, e.msg);
    }
    int32_t q[LM_CONFIG_LEN];
    memcpy(q, p, sizeof q);
    q[7] = 4096, q[5] = 64, q[6] = 1; /* width 4096, 64 layers: 1.3e10 parameters */
    ok(lm_config_unpack(q, &u, &e) == -1 && strstr(e.msg, "parameters"),
       "a valid-looking but huge network is refused: %s", e.msg);
    memcpy(q, p, sizeof q);
    q[3] = 4096, q[4] = 4096; /* 16M positions */
    ok(lm_config_unpack(q, &u, &e) == -1 && strstr(e.msg, "activation values"),
       "huge activations are refused: %s", e.msg);
    c.model = 9;
    ok(lm_config_pack(&c, p, &e) == -1 && strstr(e.msg, "model 9"), "pack checks too: %s", e.msg);
    lm_model m;
    ok(lm_build(&m, &c, &e) == -1 && strstr(e.msg, "model 9 is not built in") && !m.tape,
       "lm_build: an unknown model: %s", e.msg);
    ok(lm_build(&m, NULL, &e) == -1 && lm_build(NULL, &c, &e) == -1, "lm_build: NULL refused");
    lm_free(NULL);
}

static void schedule(void)
{
    ok(lm_lr(1, 10, 110, 0) == 0.1 && lm_lr(1, 10, 110, 9) == 1, "warmup: lr (s+1)/warmup");
    ok(lm_lr(1, 10, 110, 10) == 1, "the peak right after the warmup");
    near(lm_lr(1, 10, 110, 60), 0.55, 1e-15, "halfway through the cosine: (lr + lr/10)/2");
    near(lm_lr(1, 10, 110, 110), 0.1, 1e-15, "lr/10 at the end");
    ok(lm_lr(2, 0, 10, 0) == 2, "no warmup: the peak at step 0");
    lm_recipe r;
    ok(lm_recipe_default(LM_GPT, &r) == 0 && r.cfg.layers == 4 && r.cfg.heads == 4 &&
           r.cfg.width == 128 && r.cfg.ctx == 32 && r.cfg.batch == 32,
       "gpt defaults: 4 layers, 4 heads, width 128, ctx 32, batch 32");
    ok(lm_recipe_default(LM_GRU, &r) == 0 && r.cfg.ctx == 32 && r.cfg.batch == 32,
       "gru defaults: ctx 32, batch 32");
    ok(lm_recipe_default(0, &r) == -1, "no defaults for model 0");
}

/* The models on a small text: eval, save / load, generation. */
static void models(void)
{
    char path[128], model[128], bad[128];
    snprintf(path, sizeof path, "%s/w.txt", dir);
    snprintf(model, sizeof model, "%s/m.tgm", dir);
    snprintf(bad, sizeof bad, "%s/bad.tgm", dir);
    static const char W[] = "cab\nbad\nace\ndace\nbead\nfade\ncafe\nbed\nfed\nadd\nebb\ndeed\n"
                            "face\nbeef\ndab\nfab\ncede\naced\n";
    tap_write_file(path, W, sizeof W - 1);
    tg_text t;
    tg_err e = {0};
    if (!ok(tg_text_load(path, 0.3, 3, &t, &e) == 0, "text %s", e.msg))
        return;
    static const int kinds[] = {LM_GPT, LM_GRU};
    for (int i = 0; i < 2; i++) {
        const char *name = kinds[i] == LM_GPT ? "gpt" : "gru";
        lm_config c = {.model = kinds[i], .vocab = t.vocab, .ctx = 4, .batch = 2, .layers = 2,
                       .heads = 2, .width = 8, .seed = 11, .dtype = TG_F64};
        lm_model m;
        if (!ok(lm_build(&m, &c, &e) == 0, "%s builds %s", name, e.msg))
            continue;
        ok(m.cfg.model == kinds[i] && m.n_params > 0 && m.n_decay > 0 && m.logits && m.loss,
           "%s: lm_build dispatches to its builder", name);
        /* lm_eval over one full batch == the model's own mean loss on it */
        double want = 0, got = -1;
        tg_text_window_batch(&t, 1, 0, m.x, m.y, NULL);
        ok(tg_replay(m.tape) == 0, "%s replays", name);
        want = tg_item(m.loss);
        ok(lm_eval(&m, &t, 1, 2, &got, &e) == 0, "%s: lm_eval %s", name, e.msg);
        near(got, want, 1e-12, "%s: lm_eval over the first 2 windows = the model's loss", name);
        size_t windows = (t.n_val - 1) / 4;
        ok(lm_eval(&m, &t, 1, 0, &got, &e) == 0, "%s: lm_eval over all %zu windows", name,
           windows);
        ok(tg_training(m.tape), "%s: training mode restored after lm_eval", name);
        ok(lm_eval(&m, &t, 2, 0, &got, &e) == -1 && strstr(e.msg, "split 2"),
           "%s: lm_eval passes errors on: %s", name, e.msg);

        /* save, read back */
        ok(lm_save(&m, t.byte_of, model, &e) == 0, "%s: lm_save %s", name, e.msg);
        ok(lm_save(&m, t.byte_of, model, &e) == 0, "%s: saved twice (the config leaves reused)",
           name);
        lm_config rc;
        int bo[256];
        ok(lm_read_config(model, &rc, bo, &e) == 0 && rc.model == kinds[i] && rc.width == 8 &&
               rc.vocab == t.vocab && !memcmp(bo, t.byte_of, sizeof bo),
           "%s: lm_read_config gives the configuration and the vocabulary", name);
        lm_model g;
        /* the same parameters with batch 1: every window alone */
        ok(lm_load(&g, model, 1, bo, &e) == 0, "%s: lm_load with batch 1 %s", name, e.msg);
        double sum = 0;
        size_t seen = 0;
        for (size_t k = 0; tg_text_window_batch(&t, 1, k, g.x, g.y, NULL) == 1; k++, seen++) {
            tg_replay(g.tape);
            sum += tg_item(g.loss);
        }
        ok(seen == windows && windows % 2 == 1, "%s: %zu windows, an odd count", name, seen);
        near(got, sum / (double)windows, 1e-12, "%s: lm_eval with batch 2 = the mean of the "
             "windows' losses (the last batch's missing row not counted)", name);
        lm_free(&g);
        ok(lm_load(&g, model, 0, bo, &e) == 0, "%s: lm_load %s", name, e.msg);
        tg_text_window_batch(&t, 1, 0, m.x, m.y, NULL);
        tg_text_window_batch(&t, 1, 0, g.x, g.y, NULL);
        tg_replay(m.tape);
        tg_replay(g.tape);
        ok(g.cfg.batch == 2 && tg_item(g.loss) == tg_item(m.loss),
           "%s: the loaded model computes the same loss", name);
        lm_free(&g);

        /* generation: batch 1 */
        ok(lm_load(&g, model, 1, bo, &e) == 0 && g.cfg.batch == 1, "%s: loaded with batch 1",
           name);
        tg_rng rng;
        tg_rng_seed(&rng, 1);
        char w1[64], w2[64];
        lm_sample_opts greedy = {.temperature = 0, .max_len = 20};
        int n1 = lm_generate(&g, bo, "ab", &greedy, &rng, w1, sizeof w1, &e);
        ok(n1 >= 2 && !strncmp(w1, "ab", 2) && (int)strlen(w1) == n1 && !strchr(w1, '\n'),
           "%s: a greedy word after the prefix 'ab': '%s' %s", name, w1, e.msg);
        /* greedy by hand: the argmax at the last context position */
        int32_t *x = tg_data_i32(g.x);
        int ctx[64] = {t.id_of['\n'], t.id_of['a'], t.id_of['b']}, k = 3;
        char w[64] = "ab";
        size_t len = 2;
        while (len < 20) {
            int use = k < 4 ? k : 4;
            for (int p = 0; p < 4; p++)
                x[p] = p < use ? ctx[k - use + p] : t.id_of['\n'];
            tg_forward(g.logits);
            const double *l = tg_data_f64(g.logits) + (size_t)(use - 1) * (size_t)t.vocab;
            int best = 0;
            for (int j = 1; j < t.vocab; j++)
                best = l[j] > l[best] ? j : best;
            if (best == t.id_of['\n'])
                break;
            ctx[k++] = best;
            w[len++] = (char)t.byte_of[best];
            w[len] = 0;
        }
        ok(!strcmp(w, w1), "%s: = the argmax of the logits at the context's last position, "
           "the window sliding past ctx ('%s')", name, w);
        /* causal: the filler after the context changes nothing */
        for (int p = 0; p < 4; p++)
            x[p] = p < 2 ? ctx[p] : t.id_of['\n'];
        tg_forward(g.logits);
        double l1[64], l2[64];
        memcpy(l1, tg_data_f64(g.logits) + t.vocab, (size_t)t.vocab * sizeof(double));
        x[2] = x[3] = t.id_of['f'];
        tg_forward(g.logits);
        memcpy(l2, tg_data_f64(g.logits) + t.vocab, (size_t)t.vocab * sizeof(double));
        ok(!memcmp(l1, l2, (size_t)t.vocab * sizeof(double)),
           "%s: causal: position 1's logits do not read positions 2, 3", name);
        lm_sample_opts s = {.temperature = 1, .top_k = 2, .max_len = 30};
        tg_rng_seed(&rng, 9);
        n1 = lm_generate(&g, bo, NULL, &s, &rng, w1, sizeof w1, &e);
        tg_rng_seed(&rng, 9);
        int n2 = lm_generate(&g, bo, NULL, &s, &rng, w2, sizeof w2, &e);
        ok(n1 >= 0 && n1 == n2 && !strcmp(w1, w2), "%s: sampling is seeded ('%s')", name, w1);
        bool in_vocab = true;
        for (int j = 0; j < n1; j++)
            in_vocab &= t.id_of[(unsigned char)w1[j]] >= 0;
        ok(in_vocab && n1 <= 30, "%s: sampled bytes are in the vocabulary, at most max_len",
           name);
        ok(lm_generate(&g, bo, "az", &s, &rng, w1, sizeof w1, &e) == -1 &&
               strstr(e.msg, "byte 1 (0x7a 'z') is not in the model's vocabulary"),
           "%s: a prefix byte outside the vocabulary: %s", name, e.msg);
        ok(lm_generate(&m, bo, NULL, &s, &rng, w1, sizeof w1, &e) == -1 &&
               strstr(e.msg, "batch 2; build it with batch 1"),
           "%s: generation needs batch 1: %s", name, e.msg);
        s.temperature = NAN;
        ok(lm_generate(&g, bo, NULL, &s, &rng, w1, sizeof w1, &e) == -1 &&
               strstr(e.msg, "temperature nan"), "%s: a NaN temperature: %s", name, e.msg);
        lm_free(&g);
        lm_free(&m);
    }
    /* damaged files */
    size_t n;
    char *b = tap_read_file(model, &n);
    if (b && n > 64) {
        b[n - 20] ^= 1;
        tap_write_file(bad, b, n);
        lm_model g;
        ok(lm_load(&g, bad, 1, NULL, &e) == -1 && !g.tape && strstr(e.msg, "bad.tgm"),
           "a flipped bit: lm_load fails naming the file: %s", e.msg);
        tap_write_file(bad, b, n / 2);
        ok(lm_load(&g, bad, 1, NULL, &e) == -1 && !g.tape, "a truncated file: %s", e.msg);
    }
    free(b);
    lm_model g;
    ok(lm_load(&g, path, 1, NULL, &e) == -1 && strstr(e.msg, "not a model saved by tapegrad"),
       "a text file: %s", e.msg);
    unlink(bad);
    unlink(model);
    unlink(path);
    tg_text_free(&t);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/tg_lm_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    config();
    schedule();
    models();
    ok(rmdir(dir) == 0, "the temporary directory is left empty and removed");
    return tap_done();
}
