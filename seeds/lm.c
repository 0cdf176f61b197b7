/* The two language models of seeds/lm.h as one: building by name, the
 * training recipe's defaults, saved models (parameters + "lm.config" +
 * "lm.vocab"), evaluation over the validation windows, and sampling words. */
#include "lm.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int fail(tg_err *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int lm_build(lm_model *m, const lm_config *cfg, tg_err *err)
{
    if (!m)
        return fail(err, "lm: no model to build into");
    memset(m, 0, sizeof *m);
    if (!cfg)
        return fail(err, "lm: no configuration");
    switch (cfg->model) {
    case LM_GPT:
        return gpt_build(m, cfg, err);
    case LM_GRU:
        return gru_lm_build(m, cfg, err);
    }
    return fail(err, "lm: model %d is not built in (1 gpt, 2 gru)", cfg->model);
}

void lm_free(lm_model *m)
{
    if (!m)
        return;
    tg_tape_free(m->tape);
    memset(m, 0, sizeof *m);
}

/* ---- the recipe --------------------------------------------------------- */

int lm_recipe_default(int model, lm_recipe *r)
{
    if (!r)
        return -1;
    memset(r, 0, sizeof *r);
    lm_config *c = &r->cfg;
    c->model = model;
    c->ctx = 32;
    c->batch = 32;
    c->seed = 1;
    c->dtype = TG_F32;
    if (model == LM_GPT) {
        c->layers = 4;
        c->heads = 4;
        c->width = 128;
        r->steps = 2000;
        r->warmup = 100;
        r->lr = 3e-3;
    } else if (model == LM_GRU) {
        c->layers = 1;
        c->heads = 1;
        c->width = 256;
        r->steps = 2000;
        r->warmup = 100;
        r->lr = 3e-3;
    } else {
        return -1;
    }
    return 0;
}

double lm_lr(double lr, int warmup, int steps, int s)
{
    if (s < warmup)
        return lr * (double)(s + 1) / (double)warmup;
    double min = lr * LM_MIN_LR_RATIO;
    int span = steps - warmup;
    if (span <= 0)
        return lr;
    double t = (double)(s - warmup) / (double)span;
    if (t > 1)
        t = 1;
    return min + (lr - min) * (1 + cos(3.14159265358979323846 * t)) / 2;
}

/* ---- the configuration tensor ------------------------------------------- */

/* Parameters and activation elements, roughly (an upper bound for both
 * models): to refuse a damaged file's absurd sizes before building. */
static int sizes_ok(const lm_config *c, tg_err *err)
{
    double V = c->vocab, T = c->ctx, B = c->batch, D = c->width, L = c->layers,
           H = c->heads;
    double params = 12 * D * D * L + 13 * D * L + 2 * V * D + T * D + 2 * D;
    double acts = B * T * (24 * D + 4 * H * T) * L + 4 * B * T * (V + D);
    if (params > (double)(1 << 28))
        return fail(err, "lm.config: %.0f parameters (width %d, layers %d) is more than this "
                         "program allows (2^28)", params, c->width, c->layers);
    if (acts > (double)(1u << 30))
        return fail(err, "lm.config: about %.0f activation values (batch %d, ctx %d, width %d, "
                         "layers %d) is more than this program allows (2^30)", acts, c->batch,
                    c->ctx, c->width, c->layers);
    return 0;
}

static int check_config(const lm_config *c, tg_err *err)
{
    if (c->model != LM_GPT && c->model != LM_GRU)
        return fail(err, "lm.config: model %d is neither 1 (gpt) nor 2 (gru)", c->model);
    if (c->vocab < 2 || c->vocab > 256)
        return fail(err, "lm.config: vocab %d is outside 2..256", c->vocab);
    if (c->ctx < 1 || c->ctx > 4096)
        return fail(err, "lm.config: ctx %d is outside 1..4096", c->ctx);
    if (c->batch < 1 || c->batch > 4096)
        return fail(err, "lm.config: batch %d is outside 1..4096", c->batch);
    if (c->layers < 1 || c->layers > 64)
        return fail(err, "lm.config: layers %d is outside 1..64", c->layers);
    if (c->width < 1 || c->width > 4096)
        return fail(err, "lm.config: width %d is outside 1..4096", c->width);
    if (c->heads < 1 || c->heads > c->width || (c->model == LM_GPT && c->width % c->heads))
        return fail(err, "lm.config: heads %d must be in 1..width %d%s", c->heads, c->width,
                    c->model == LM_GPT ? " and divide it" : "");
    if (!(c->dropout >= 0 && c->dropout < 1))
        return fail(err, "lm.config: dropout %g is outside [0, 1)", c->dropout);
    if (c->checkpoint != 0 && c->checkpoint != 1)
        return fail(err, "lm.config: checkpoint %d is neither 0 nor 1", c->checkpoint);
    if (c->dtype != TG_F32 && c->dtype != TG_F64)
        return fail(err, "lm.config: dtype %d is neither f32 nor f64", (int)c->dtype);
    return sizes_ok(c, err);
}

int lm_config_pack(const lm_config *cfg, int32_t out[LM_CONFIG_LEN], tg_err *err)
{
    if (!cfg || !out)
        return fail(err, "lm.config: NULL argument");
    if (check_config(cfg, err))
        return -1;
    memset(out, 0, LM_CONFIG_LEN * sizeof *out);
    out[0] = LM_CONFIG_VERSION;
    out[1] = cfg->model;
    out[2] = cfg->vocab;
    out[3] = cfg->ctx;
    out[4] = cfg->batch;
    out[5] = cfg->layers;
    out[6] = cfg->heads;
    out[7] = cfg->width;
    out[8] = (int32_t)lround(cfg->dropout * 1e6);
    out[9] = cfg->checkpoint;
    out[10] = (int32_t)cfg->dtype;
    out[11] = (int32_t)(cfg->seed & 0x7fffffff);
    return 0;
}

int lm_config_unpack(const int32_t in[LM_CONFIG_LEN], lm_config *cfg, tg_err *err)
{
    if (!cfg || !in)
        return fail(err, "lm.config: NULL argument");
    memset(cfg, 0, sizeof *cfg);
    if (in[0] != LM_CONFIG_VERSION)
        return fail(err, "lm.config: version %d, this program reads version %d", (int)in[0],
                    LM_CONFIG_VERSION);
    for (int i = 12; i < LM_CONFIG_LEN; i++)
        if (in[i] != 0)
            return fail(err, "lm.config: reserved field %d is %d, not 0", i, (int)in[i]);
    if (in[8] < 0 || in[8] >= 1000000)
        return fail(err, "lm.config: dropout %d millionths is outside [0, 1000000)", (int)in[8]);
    if (in[11] < 0)
        return fail(err, "lm.config: seed field %d is negative", (int)in[11]);
    *cfg = (lm_config){.model = in[1], .vocab = in[2], .ctx = in[3], .batch = in[4],
                       .layers = in[5], .heads = in[6], .width = in[7],
                       .dropout = in[8] / 1e6, .checkpoint = in[9],
                       .seed = (uint64_t)in[11], .dtype = (tg_dtype)in[10]};
    if (check_config(cfg, err)) {
        memset(cfg, 0, sizeof *cfg);
        return -1;
    }
    return 0;
}

/* ---- saving and loading -------------------------------------------------- */

/* byte_of: vocab distinct bytes in increasing order, then -1. */
static int check_vocab(const int byte_of[256], int vocab, tg_err *err)
{
    for (int i = 0; i < 256; i++) {
        int b = byte_of[i];
        if (i < vocab ? b < 0 || b > 255 || (i && b <= byte_of[i - 1]) : b != -1)
            return fail(err, "lm.vocab: entry %d is %d: expected %s", i, b,
                        i < vocab ? "increasing bytes (0..255)" : "-1 past the vocabulary");
    }
    for (int i = 0; i < vocab; i++)
        if (byte_of[i] == '\n')
            return 0;
    return fail(err, "lm.vocab: no '\\n' (it ends every word)");
}

int lm_save(lm_model *m, const int byte_of[256], const char *path, tg_err *err)
{
    if (!m || !m->tape || !byte_of || !path)
        return fail(err, "lm_save: NULL argument");
    int32_t cfg[LM_CONFIG_LEN], voc[256];
    if (lm_config_pack(&m->cfg, cfg, err) || check_vocab(byte_of, m->cfg.vocab, err))
        return -1;
    for (int i = 0; i < 256; i++)
        voc[i] = byte_of[i];
    if (!m->config_t)
        m->config_t = tg_const(m->tape, "lm.config", TG_I32, 1, (size_t[]){LM_CONFIG_LEN});
    if (!m->vocab_t)
        m->vocab_t = tg_const(m->tape, "lm.vocab", TG_I32, 1, (size_t[]){256});
    if (!m->config_t || !m->vocab_t || m->n_params > LM_MAX_PARAMS ||
        tg_copy_in(m->config_t, cfg, TG_I32, LM_CONFIG_LEN) ||
        tg_copy_in(m->vocab_t, voc, TG_I32, 256))
        return fail(err, "lm_save: %s",
                    tg_tape_error(m->tape) ? tg_tape_error(m->tape) : "out of memory");
    tg_tensor *all[LM_MAX_PARAMS + 2];
    memcpy(all, m->params, (size_t)m->n_params * sizeof *all);
    all[m->n_params] = m->config_t;
    all[m->n_params + 1] = m->vocab_t;
    if (tg_save(m->tape, path, m->n_params + 2, all))
        return fail(err, "%s", tg_tape_error(m->tape));
    return 0;
}

int lm_read_config(const char *path, lm_config *cfg, int byte_of[256], tg_err *err)
{
    if (!path || !cfg)
        return fail(err, "lm: NULL argument");
    tg_tape *t = tg_tape_new();
    tg_tensor *c = t ? tg_const(t, "lm.config", TG_I32, 1, (size_t[]){LM_CONFIG_LEN}) : NULL;
    tg_tensor *v = t ? tg_const(t, "lm.vocab", TG_I32, 1, (size_t[]){256}) : NULL;
    if (!c || !v) {
        tg_tape_free(t);
        return fail(err, "out of memory");
    }
    int rc = -1;
    int32_t ci[LM_CONFIG_LEN], vi[256];
    if (tg_load(t, path, 2, (tg_tensor *[]){c, v})) {
        const char *te = tg_tape_error(t);
        fail(err, "%s%s", te, strstr(te, "cannot open") ? ""
                              : " (not a model saved by tapegrad train --model gpt|gru?)");
    } else if (tg_copy_out(c, ci, TG_I32, LM_CONFIG_LEN) || tg_copy_out(v, vi, TG_I32, 256)) {
        fail(err, "%s", tg_tape_error(t));
    } else if (!lm_config_unpack(ci, cfg, err)) {
        int bo[256];
        for (int i = 0; i < 256; i++)
            bo[i] = vi[i];
        if (!check_vocab(bo, cfg->vocab, err)) {
            if (byte_of)
                memcpy(byte_of, bo, sizeof bo);
            rc = 0;
        }
    }
    if (rc && err) { /* name the file */
        char m[sizeof err->msg];
        snprintf(m, sizeof m, "%s", err->msg);
        if (!strstr(m, path))
            snprintf(err->msg, sizeof err->msg, "%.100s: %.150s", path, m);
    }
    tg_tape_free(t);
    return rc;
}

int lm_load(lm_model *m, const char *path, int batch, int byte_of[256], tg_err *err)
{
    if (!m)
        return fail(err, "lm: no model to load into");
    memset(m, 0, sizeof *m);
    lm_config cfg;
    int bo[256];
    if (lm_read_config(path, &cfg, bo, err))
        return -1;
    if (batch > 0)
        cfg.batch = batch;
    if (sizes_ok(&cfg, err) || lm_build(m, &cfg, err))
        return -1;
    if (tg_load(m->tape, path, m->n_params, m->params)) {
        fail(err, "%s", tg_tape_error(m->tape));
        lm_free(m);
        return -1;
    }
    if (byte_of)
        memcpy(byte_of, bo, sizeof bo);
    return 0;
}

/* ---- evaluation ----------------------------------------------------------- */

/* Σ over the first rows rows of m's logits [B,T,V] of −log softmax(l)[y]. */
static double ce_rows(lm_model *m, int rows)
{
    size_t T = (size_t)m->cfg.ctx, V = (size_t)m->cfg.vocab;
    const int32_t *y = tg_data_i32(m->y);
    const float *lf = tg_dtype_of(m->logits) == TG_F32 ? tg_data_f32(m->logits) : NULL;
    const double *ld = lf ? NULL : tg_data_f64(m->logits);
    double sum = 0;
    for (size_t p = 0; p < (size_t)rows * T; p++) {
        double mx = -INFINITY, z = 0;
        for (size_t j = 0; j < V; j++) {
            double l = lf ? lf[p * V + j] : ld[p * V + j];
            mx = l > mx ? l : mx;
        }
        for (size_t j = 0; j < V; j++)
            z += exp((lf ? lf[p * V + j] : ld[p * V + j]) - mx);
        double ly = lf ? lf[p * V + (size_t)y[p]] : ld[p * V + (size_t)y[p]];
        sum += mx + log(z) - ly;
    }
    return sum;
}

int lm_eval(lm_model *m, const tg_text *t, int split, size_t max_rows, double *loss,
            tg_err *err)
{
    if (!m || !m->tape || !t || !loss)
        return fail(err, "lm_eval: NULL argument");
    if (t->vocab > m->cfg.vocab)
        return fail(err, "lm_eval: the text has %d tokens, the model %d", t->vocab, m->cfg.vocab);
    bool was = tg_set_training(m->tape, false);
    double sum = 0;
    size_t rows_done = 0;
    int rc = 0;
    for (size_t k = 0;; k++) {
        int r = tg_text_window_batch(t, split, k, m->x, m->y, err);
        if (r < 0) {
            rc = -1;
            break;
        }
        if (r == 0)
            break;
        if (max_rows && rows_done + (size_t)r > max_rows)
            r = (int)(max_rows - rows_done);
        if (tg_forward(m->logits)) {
            rc = fail(err, "lm_eval: %s", tg_tape_error(m->tape));
            break;
        }
        sum += ce_rows(m, r);
        rows_done += (size_t)r;
        if (max_rows && rows_done >= max_rows)
            break;
    }
    tg_set_training(m->tape, was);
    if (rc)
        return -1;
    if (rows_done == 0)
        return fail(err, "lm_eval: the %s stream (%zu tokens) has no window of %d tokens",
                    split ? "val" : "train", split ? t->n_val : t->n_train, m->cfg.ctx);
    *loss = sum / ((double)rows_done * m->cfg.ctx);
    return 0;
}

/* ---- generation ------------------------------------------------------------ */

/* The next token from the logits l[0..V) (f64): greedy when temperature is
 * 0, else sampled from softmax(l / temperature) restricted to the top_k. */
static int sample(const double *l, int V, const lm_sample_opts *o, tg_rng *rng, double *p)
{
    int best = 0;
    for (int j = 1; j < V; j++)
        if (l[j] > l[best])
            best = j;
    if (o->temperature <= 0)
        return best;
    double cut = -INFINITY;
    if (o->top_k > 0 && o->top_k < V) { /* the k-th largest logit */
        for (int j = 0; j < V; j++)
            p[j] = l[j];
        for (int i = 0; i < o->top_k; i++) { /* partial selection: V <= 256 */
            int mi = i;
            for (int j = i + 1; j < V; j++)
                if (p[j] > p[mi])
                    mi = j;
            double tmp = p[i];
            p[i] = p[mi];
            p[mi] = tmp;
        }
        cut = p[o->top_k - 1];
    }
    double z = 0;
    for (int j = 0; j < V; j++) {
        p[j] = l[j] >= cut ? exp((l[j] - l[best]) / o->temperature) : 0;
        z += p[j];
    }
    double u = tg_rng_uniform(rng) * z;
    for (int j = 0; j < V; j++) {
        if (u < p[j])
            return j;
        u -= p[j];
    }
    return best; /* rounding: u landed past the last */
}

int lm_generate(lm_model *m, const int byte_of[256], const char *prefix,
                const lm_sample_opts *o, tg_rng *rng, char *out, size_t cap, tg_err *err)
{
    if (!m || !m->tape || !byte_of || !o || !rng || !out || cap == 0)
        return fail(err, "lm_generate: NULL argument");
    out[0] = 0;
    if (m->cfg.batch != 1)
        return fail(err, "lm_generate: the model has batch %d; build it with batch 1",
                    m->cfg.batch);
    if (!(o->temperature >= 0) || !isfinite(o->temperature) || o->top_k < 0 || o->max_len < 0)
        return fail(err, "lm_generate: temperature %g must be finite and >= 0, top_k %d and "
                         "max_len %d >= 0", o->temperature, o->top_k, o->max_len);
    int V = m->cfg.vocab, T = m->cfg.ctx, id_of[256];
    for (int i = 0; i < 256; i++)
        id_of[i] = -1;
    for (int i = 0; i < V; i++)
        if (byte_of[i] >= 0 && byte_of[i] < 256)
            id_of[byte_of[i]] = i;
    int nl = id_of['\n'];
    if (nl < 0)
        return fail(err, "lm_generate: the vocabulary has no '\\n'");
    size_t max_len = o->max_len ? (size_t)o->max_len : 64;
    if (max_len > cap - 1)
        max_len = cap - 1;
    size_t plen = prefix ? strlen(prefix) : 0;
    if (plen > max_len)
        return fail(err, "lm_generate: the prefix has %zu bytes, more than %zu", plen, max_len);
    /* ctx: '\n', the prefix, then what is sampled */
    int *ctx = malloc((max_len + 2) * sizeof *ctx);
    double *l = malloc(2 * (size_t)V * sizeof *l);
    if (!ctx || !l) {
        free(ctx);
        free(l);
        return fail(err, "lm_generate: out of memory");
    }
    size_t n = 0;
    ctx[n++] = nl;
    int rc = 0;
    for (size_t i = 0; i < plen; i++) {
        unsigned char b = (unsigned char)prefix[i];
        if (id_of[b] < 0) {
            rc = fail(err, "lm_generate: the prefix's byte %zu (0x%02x '%c') is not in the "
                           "model's vocabulary", i, b, b >= 32 && b < 127 ? b : '?');
            break;
        }
        ctx[n++] = id_of[b];
        out[i] = (char)b;
    }
    size_t len = plen;
    out[len] = 0;
    bool was = tg_set_training(m->tape, false);
    int32_t *x = tg_data_i32(m->x);
    while (rc == 0 && len < max_len) {
        size_t k = n < (size_t)T ? n : (size_t)T;
        for (size_t t = 0; t < (size_t)T; t++)
            x[t] = t < k ? ctx[n - k + t] : nl;
        if (tg_forward(m->logits)) {
            rc = fail(err, "lm_generate: %s", tg_tape_error(m->tape));
            break;
        }
        const float *lf = tg_dtype_of(m->logits) == TG_F32 ? tg_data_f32(m->logits) : NULL;
        const double *ld = lf ? NULL : tg_data_f64(m->logits);
        for (int j = 0; j < V; j++)
            l[j] = lf ? lf[(k - 1) * (size_t)V + (size_t)j] : ld[(k - 1) * (size_t)V + (size_t)j];
        int next = sample(l, V, o, rng, l + V);
        if (next == nl)
            break;
        ctx[n++] = next;
        out[len++] = (char)byte_of[next];
        out[len] = 0;
    }
    tg_set_training(m->tape, was);
    free(ctx);
    free(l);
    return rc ? -1 : (int)len;
}
