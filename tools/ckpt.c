/* Checkpoints of `tapegrad train`: see ckpt.h and docs/format.md
 * ("Checkpoints").  A checkpoint is an ordinary tg_save file holding the
 * model's tensors under their usual names, the optimizer's state
 * (tg_optim_state, "optim.*") and the trainer's own tensors "train.*". */
#include "ckpt.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CKPT_VERSION 1
/* train.meta: the version, the options (cfg), the length of train.curves */
enum { META_VERSION, META_CFG, META_CURVES = META_CFG + CKPT_N_CFG, META_N };
/* train.position: epoch, batch, loss sum, step, the batcher's position */
enum { POS_EPOCH, POS_BATCH, POS_LOSS, POS_STEP, POS_BPOS, POS_N };

static const char *const CFG_NAME[CKPT_N_CFG] = {
    "--model (0 mlp, 1 cnn)", "--opt (0 sgd, 1 adam)", "--batch",
    "training samples (the data and --limit)", "--seed", "--seed"};

static volatile sig_atomic_t stop_sig;

static void on_signal(int sig) { stop_sig = sig; }

void ckpt_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void ckpt_default_signals(void)
{
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
}

int ckpt_stop_signal(void) { return stop_sig; }

void ckpt_test_kill(const train_ckpt *c, long long step, int rank)
{
    if (!c->kill_at || step != c->kill_at)
        return;
    const char *r = getenv("TAPEGRAD_TEST_KILL_RANK");
    if (r && atoi(r) != rank)
        return;
    fflush(NULL);
    raise(SIGKILL);
}

/* u64 as two i32 (low half first), bit for bit */
static void put_u64(int32_t *d, uint64_t v)
{
    uint32_t lo = (uint32_t)v, hi = (uint32_t)(v >> 32);
    memcpy(d, &lo, 4);
    memcpy(d + 1, &hi, 4);
}

static uint64_t get_u64(const int32_t *d)
{
    uint32_t lo, hi;
    memcpy(&lo, d, 4);
    memcpy(&hi, d + 1, 4);
    return (uint64_t)hi << 32 | lo;
}

static tg_tensor *leaf(train_ckpt *c, const char *name, tg_dtype dt, size_t n)
{
    tg_tensor *t = tg_input(c->tape, name, dt, 1, (size_t[]){n});
    if (t)
        c->list[c->n_list++] = t;
    return t;
}

int ckpt_init(train_ckpt *c, const char *path, long long every, tg_tape *tape, tg_optim *opt,
              tg_batcher *tb, int n_model, tg_tensor *const *model, const int32_t *cfg,
              int epochs, char *why, size_t len)
{
    memset(c, 0, sizeof *c);
    c->path = path, c->every = every, c->tape = tape, c->opt = opt, c->tb = tb;
    c->epochs = epochs;
    memcpy(c->cfg, cfg, sizeof c->cfg);
    const char *k = getenv("TAPEGRAD_TEST_KILL_AT_STEP");
    c->kill_at = k ? atoll(k) : 0;
    if (tb->data->n > INT32_MAX) {
        snprintf(why, len, "checkpoints hold at most %d training samples", INT32_MAX);
        return -1;
    }
    int n_opt = tg_optim_state(opt, "optim", 0, NULL);
    if (n_opt < 0)
        goto tape_err;
    c->list = malloc(((size_t)n_model + (size_t)n_opt + 5) * sizeof *c->list);
    if (!c->list) {
        snprintf(why, len, "out of memory");
        return -1;
    }
    memcpy(c->list, model, (size_t)n_model * sizeof *model);
    c->n_list = c->n_model = n_model;
    tg_optim_state(opt, "optim", n_opt, c->list + c->n_list);
    c->n_list += n_opt;
    if (!(c->meta = leaf(c, "train.meta", TG_I32, META_N)) ||
        !(c->pos = leaf(c, "train.position", TG_F64, POS_N)) ||
        !(c->rngs = leaf(c, "train.rng", TG_I32, 16)) ||
        !(c->order = leaf(c, "train.order", TG_I32, tb->data->n)) ||
        !(c->curves = leaf(c, "train.curves", TG_F64, 2 * (size_t)epochs)))
        goto tape_err;
    return 0;
tape_err:
    snprintf(why, len, "%s", tg_tape_error(tape));
    return -1;
}

int ckpt_write(train_ckpt *c, const train_pos *p, const double *losses, const double *accs,
               char *why, size_t len)
{
    int32_t *meta = tg_data_i32(c->meta), *rngs = tg_data_i32(c->rngs);
    int32_t *order = tg_data_i32(c->order);
    double *pos = tg_data_f64(c->pos), *curves = tg_data_f64(c->curves);
    meta[META_VERSION] = CKPT_VERSION;
    memcpy(meta + META_CFG, c->cfg, sizeof c->cfg);
    meta[META_CURVES] = 2 * c->epochs;
    pos[POS_EPOCH] = p->epoch;
    pos[POS_BATCH] = (double)p->batch;
    pos[POS_LOSS] = p->loss_sum;
    pos[POS_STEP] = (double)p->step;
    pos[POS_BPOS] = (double)c->tb->pos;
    tg_rng r;
    tg_tape_rng_get(c->tape, &r);
    for (int i = 0; i < 4; i++) {
        put_u64(rngs + 2 * i, r.s[i]);
        put_u64(rngs + 8 + 2 * i, c->tb->rng.s[i]);
    }
    for (size_t i = 0; i < c->tb->data->n; i++)
        order[i] = (int32_t)c->tb->order[i];
    for (int e = 0; e < c->epochs; e++) {
        curves[2 * e] = e < p->epoch ? losses[e] : 0;
        curves[2 * e + 1] = e < p->epoch ? accs[e] : 0;
    }
    if (tg_save(c->tape, c->path, c->n_list, c->list)) {
        snprintf(why, len, "%s", tg_tape_error(c->tape));
        return -1;
    }
    return 0;
}

/* Whether order holds every index 0..n-1 once. */
static bool permutation(const int32_t *order, size_t n)
{
    unsigned char *seen = calloc(n, 1);
    bool ok = seen != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        ok = order[i] >= 0 && (size_t)order[i] < n && !seen[order[i]];
        if (ok)
            seen[order[i]] = 1;
    }
    free(seen);
    return ok;
}

int ckpt_resume(train_ckpt *c, const char *file, train_pos *p, double *losses, double *accs,
                char *why, size_t len)
{
    /* first what the run was: its options and position */
    if (tg_load(c->tape, file, 2, (tg_tensor *[]){c->meta, c->pos})) {
        snprintf(why, len, "--resume: %s (is it a checkpoint of tapegrad train?)",
                 tg_tape_error(c->tape));
        return -1;
    }
    const int32_t *meta = tg_data_i32(c->meta);
    const double *pos = tg_data_f64(c->pos);
    if (meta[META_VERSION] != CKPT_VERSION) {
        snprintf(why, len, "--resume %s: checkpoint version %d, this tapegrad reads %d", file,
                 (int)meta[META_VERSION], CKPT_VERSION);
        return -1;
    }
    for (int i = 0; i < CKPT_N_CFG; i++)
        if (meta[META_CFG + i] != c->cfg[i]) {
            snprintf(why, len, "--resume %s: the checkpoint was made with another %s (%ld, "
                     "this run: %ld); resume with the options of the run that wrote it",
                     file, CFG_NAME[i], (long)meta[META_CFG + i], (long)c->cfg[i]);
            return -2;
        }
    double e = pos[POS_EPOCH], b = pos[POS_BATCH], st = pos[POS_STEP], bp = pos[POS_BPOS];
    size_t n = c->tb->data->n;
    if (!(e >= 0 && e < 1e6 && e == (int)e) || !(b >= 0 && b <= (double)n && b == (size_t)b) ||
        !(st >= 0 && st < 9e15 && st == (long long)st) ||
        !(bp >= 0 && bp <= (double)n && bp == (size_t)bp) || meta[META_CURVES] < 2 ||
        meta[META_CURVES] % 2 || meta[META_CURVES] / 2 < e) {
        snprintf(why, len, "--resume %s: the position in the checkpoint is damaged", file);
        return -1;
    }
    if ((int)e >= c->epochs) {
        snprintf(why, len, "--resume %s: the checkpoint is at epoch %d and --epochs is %d: "
                 "nothing left to train (give a larger --epochs)", file, (int)e + 1, c->epochs);
        return -2;
    }
    /* then everything else; the curves with the length they were saved with */
    tg_tensor *curves = c->curves;
    if (meta[META_CURVES] != 2 * c->epochs &&
        !(curves = tg_input(c->tape, "train.curves", TG_F64, 1,
                            (size_t[]){(size_t)meta[META_CURVES]}))) {
        snprintf(why, len, "%s", tg_tape_error(c->tape));
        return -1;
    }
    tg_tensor *keep = c->list[c->n_list - 1];
    c->list[c->n_list - 1] = curves;
    int rc = tg_load(c->tape, file, c->n_list, c->list);
    c->list[c->n_list - 1] = keep;
    if (rc) {
        snprintf(why, len, "--resume: %s", tg_tape_error(c->tape));
        return -1;
    }
    const int32_t *rngs = tg_data_i32(c->rngs), *order = tg_data_i32(c->order);
    tg_rng tr, br;
    for (int i = 0; i < 4; i++) {
        tr.s[i] = get_u64(rngs + 2 * i);
        br.s[i] = get_u64(rngs + 8 + 2 * i);
    }
    if (!permutation(order, n) || !(br.s[0] | br.s[1] | br.s[2] | br.s[3]) ||
        tg_tape_rng_set(c->tape, &tr)) {
        snprintf(why, len, "--resume %s: the batcher's or the generator's state in the "
                 "checkpoint is damaged", file);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        c->tb->order[i] = (size_t)order[i];
    c->tb->rng = br;
    c->tb->pos = (size_t)bp;
    const double *cv = tg_data_f64(curves);
    *p = (train_pos){.epoch = (int)e, .batch = (size_t)b, .loss_sum = pos[POS_LOSS],
                     .step = (long long)st};
    for (int k = 0; k < p->epoch; k++)
        losses[k] = cv[2 * k], accs[k] = cv[2 * k + 1];
    return 0;
}

void ckpt_free(train_ckpt *c)
{
    free(c->list);
    c->list = NULL;
}
