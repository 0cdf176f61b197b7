/* The character-level language models of `tapegrad train --model gpt|gru`,
 * `tapegrad generate`, `tapegrad dot gpt|gru` and tests/bench/bench_gpt.c:
 * one builder per model, so all of them run the same network.
 *
 * Both models read x [B,T] i32 token ids and predict the next token at every
 * position: logits [B,T,V], loss = mean softmax cross-entropy over the B·T
 * positions against y [B,T] i32 (x shifted by one).
 *
 *   gpt  token embedding [V,D] + position embedding [T,D] → L pre-LayerNorm
 *        blocks (x + attn(ln1(x)), then x + mlp(ln2(x)); attention: H heads of
 *        D/H, causal; mlp: D → 4D → GELU → D) → final layer norm → linear
 *        D → V (gpt.c)
 *   gru  token embedding [V,D] → L GRU layers of width D unrolled over T steps
 *        → linear D → V (gru_lm.c)
 *
 * A saved model (tg_save) holds the parameters plus two i32 tensors:
 * "lm.config" [LM_CONFIG_LEN] (lm_config_pack) and "lm.vocab" [256] (the
 * byte of each token id, -1 past the vocabulary), so that `tapegrad
 * generate` rebuilds the network before loading it. */
#ifndef TAPEGRAD_LM_H
#define TAPEGRAD_LM_H

#include "tapegrad.h"

enum { LM_GPT = 1, LM_GRU = 2 };
enum { LM_CONFIG_LEN = 16, LM_MAX_PARAMS = 256 };

typedef struct lm_config {
    int model;       /* LM_GPT or LM_GRU                                  */
    int vocab;       /* V: token ids 0 .. V-1                             */
    int ctx;         /* T: positions per sequence                         */
    int batch;       /* B                                                 */
    int layers;      /* L                                                 */
    int heads;       /* H (gpt; D % H == 0)                               */
    int width;       /* D                                                 */
    double dropout;  /* gpt: dropout probability after attention and mlp  */
    int checkpoint;  /* 1: each block / each group of steps is an
                        activation-checkpoint segment (tg_checkpoint_*)    */
    uint64_t seed;   /* initialisation                                    */
    tg_dtype dtype;  /* TG_F32 for training, TG_F64 for gradient checks    */
} lm_config;

typedef struct lm_model {
    lm_config cfg;
    tg_tape *tape;
    tg_tensor *x;      /* i32 [B,T] input ids                              */
    tg_tensor *y;      /* i32 [B,T] target ids                             */
    tg_tensor *logits; /* [B,T,V]                                          */
    tg_tensor *loss;   /* scalar mean cross-entropy                        */
    tg_tensor *params[LM_MAX_PARAMS];
    int n_params;
    tg_tensor *decay[LM_MAX_PARAMS]; /* the parameters AdamW decays (the
                                        matrices; not biases, norms, embeddings) */
    int n_decay;
    tg_tensor *config_t, *vocab_t; /* "lm.config", "lm.vocab": made by lm_save
                                      (NULL until then; builders leave them NULL) */
} lm_model;

/* Build model cfg->model on a new tape (scopes name each block, for
 * `tapegrad dot`).  0, or -1 with the message in err (NULL allowed); on
 * failure nothing is left to free. */
int lm_build(lm_model *m, const lm_config *cfg, tg_err *err);
int gpt_build(lm_model *m, const lm_config *cfg, tg_err *err);
int gru_lm_build(lm_model *m, const lm_config *cfg, tg_err *err);
void lm_free(lm_model *m);

/* ---- seeds/lm.c: saved models, evaluation, generation -------------------- */

/* The data and training recipe of `tapegrad train --model gpt|gru`
 * (tools/train_lm.c), which the PyTorch scripts replicate: the word list is
 * split with tg_text_load(path, LM_VAL_FRACTION, LM_SPLIT_SEED); step s
 * (0-based) trains on tg_text_batch(text, 0, seed, s) (seed: --seed, also
 * the initialisation's); AdamW (decoupled) with betas LM_BETA1/LM_BETA2,
 * eps LM_EPS, weight decay LM_WEIGHT_DECAY on m->decay only (0 on the other
 * parameters); gradients clipped to a global norm of LM_CLIP
 * (tg_clip_grad_norm over all parameters) before each step; learning rate
 * lm_lr(s): linear warmup then cosine down to lr·LM_MIN_LR_RATIO. */
#define LM_VAL_FRACTION 0.1
#define LM_SPLIT_SEED 1234u
#define LM_BETA1 0.9
#define LM_BETA2 0.95
#define LM_EPS 1e-8
#define LM_WEIGHT_DECAY 0.1
#define LM_CLIP 1.0
#define LM_MIN_LR_RATIO 0.1
#define LM_DEFAULT_TEXT "/usr/share/dict/american-english"

/* Defaults of one model (`tapegrad train --model gpt|gru` without options). */
typedef struct lm_recipe {
    lm_config cfg; /* sizes (vocab is set from the text), seed, dtype f32   */
    int steps;     /* optimizer steps                                      */
    int warmup;    /* warmup steps                                         */
    double lr;     /* peak learning rate                                   */
} lm_recipe;
/* The defaults of model LM_GPT or LM_GRU (0, or -1 for another value). */
int lm_recipe_default(int model, lm_recipe *r);
/* The learning rate of step s (0-based) of `steps`, as the recipe says:
 * lr·(s+1)/warmup for s < warmup, then
 * min + (lr − min)·(1 + cos(π·(s − warmup)/(steps − warmup)))/2 with
 * min = lr·LM_MIN_LR_RATIO (lr at s = warmup, min at the last step's end). */
double lm_lr(double lr, int warmup, int steps, int s);

/* cfg as the "lm.config" i32 tensor: [0] LM_CONFIG_VERSION, [1] model,
 * [2] vocab, [3] ctx, [4] batch, [5] layers, [6] heads, [7] width,
 * [8] dropout in millionths, [9] checkpoint, [10] dtype, [11] seed's low
 * 31 bits, [12..15] 0.  The seed is not needed to load (the parameters
 * are in the file) and is kept only as a record.  0, or -1 (a field out of
 * range, message in err). */
enum { LM_CONFIG_VERSION = 1 };
int lm_config_pack(const lm_config *cfg, int32_t out[LM_CONFIG_LEN], tg_err *err);
/* The reverse, with every field's range checked (a damaged file gives a
 * message, never a huge or invalid network): model LM_GPT/LM_GRU, vocab
 * 2..256, ctx 1..4096, batch 1..4096, layers 1..64, heads 1..width with
 * width % heads == 0 (gpt), width 1..4096, dropout [0, 1), checkpoint 0/1,
 * dtype f32/f64, reserved fields 0, and at most 2^28 parameters. */
int lm_config_unpack(const int32_t in[LM_CONFIG_LEN], lm_config *cfg, tg_err *err);

/* Save m's parameters, "lm.config" and "lm.vocab" (byte_of: the token id
 * -> byte table of tg_text, -1 past the vocabulary) with tg_save (atomic).
 * 0, or -1 with the message in err. */
int lm_save(lm_model *m, const int byte_of[256], const char *path, tg_err *err);
/* Read a saved model's configuration and vocabulary (byte_of may be NULL)
 * without building it.  0, or -1 (message in err). */
int lm_read_config(const char *path, lm_config *cfg, int byte_of[256], tg_err *err);
/* Load a saved model: its configuration and vocabulary, then build it
 * (with batch `batch` when > 0, e.g. 1 to generate; else the saved batch)
 * and load its parameters.  0, or -1 with the message in err (nothing to
 * free then). */
int lm_load(lm_model *m, const char *path, int batch, int byte_of[256], tg_err *err);

/* Mean cross-entropy (natural log) of m over the validation windows of
 * split `split` of t (tg_text_window_batch order), computed in f64 from the
 * logits in evaluation mode (tg_set_training false, restored after): all
 * windows, or the first max_rows when max_rows > 0.  The windows have
 * m's ctx; batches of m's batch.  0 with *loss set, or -1 (err). */
int lm_eval(lm_model *m, const tg_text *t, int split, size_t max_rows, double *loss,
            tg_err *err);

/* Sampling one word from a model built with batch 1 (lm_load(..., 1, ...)). */
typedef struct lm_sample_opts {
    double temperature; /* > 0; 0 means greedy (the most likely byte)    */
    int top_k;          /* sample among the k most likely; 0: all        */
    int max_len;        /* bytes at most, prefix included; 0 means 64    */
} lm_sample_opts;
/* Generate one word after the optional prefix: the context starts with
 * '\n' (a word's start) then the prefix's bytes; each step fills x[0, 0..k-1]
 * with the last k <= T context tokens (the rest of the row with '\n';
 * causal models do not read positions after k-1), replays the tape in
 * evaluation mode, reads the logits at position k-1 and samples the next
 * byte with rng; a sampled '\n' ends the word.  The word (prefix included,
 * no '\n') goes to out (NUL-terminated, cap bytes at most).  Returns its
 * length, or -1 (message in err: a prefix byte outside the vocabulary, a
 * model not of batch 1, a tape error). */
int lm_generate(lm_model *m, const int byte_of[256], const char *prefix,
                const lm_sample_opts *o, tg_rng *rng, char *out, size_t cap, tg_err *err);

#endif
