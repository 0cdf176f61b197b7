/* Checkpoints of `tapegrad train` (tools/ckpt.c): the model, the optimizer's
 * state, the generators, the batcher and the position in one tg_save file
 * (docs/format.md, "Checkpoints"), so that a resumed run ends bit-identical
 * to one that was never stopped; and the signals that stop a run cleanly. */
#ifndef TAPEGRAD_CKPT_H
#define TAPEGRAD_CKPT_H

#include "tapegrad.h"

#include <stdbool.h>
#include <stddef.h>

/* What the run's options must match to resume (i32 values). */
enum { CKPT_MODEL, CKPT_OPT, CKPT_BATCH, CKPT_SAMPLES, CKPT_SEED_LO, CKPT_SEED_HI, CKPT_N_CFG };

/* Where a run is: epoch `epoch` (0-based) is in progress with `batch` steps
 * of it done (their losses summing to loss_sum); `step` steps in all. */
typedef struct train_pos {
    int epoch;
    size_t batch;
    double loss_sum;
    long long step;
} train_pos;

typedef struct train_ckpt {
    const char *path; /* where checkpoints go                        */
    long long every;  /* --checkpoint-every (0: only on a signal)     */
    tg_tape *tape;
    tg_optim *opt;
    tg_batcher *tb;
    int epochs;
    int32_t cfg[CKPT_N_CFG];
    tg_tensor *meta, *pos, *rngs, *order, *curves;
    tg_tensor **list; /* everything saved: model, optimizer state, the above */
    int n_list, n_model;
    long long kill_at; /* TAPEGRAD_TEST_KILL_AT_STEP (0: none)         */
} train_ckpt;

/* The leaves of a checkpoint on the model's tape.  0, or -1 with why. */
int ckpt_init(train_ckpt *c, const char *path, long long every, tg_tape *tape, tg_optim *opt,
              tg_batcher *tb, int n_model, tg_tensor *const *model, const int32_t *cfg,
              int epochs, char *why, size_t len);
/* Write a checkpoint at p (with the curves of the epochs before p->epoch)
 * atomically to c->path.  0, or -1 with why. */
int ckpt_write(train_ckpt *c, const train_pos *p, const double *losses, const double *accs,
               char *why, size_t len);
/* Restore everything from file: the model, the optimizer, the generators,
 * the batcher, *p and the curves of the epochs done.  0, -1 with why (the
 * file cannot be used: 1), or -2 with why (it does not match the options: 2). */
int ckpt_resume(train_ckpt *c, const char *file, train_pos *p, double *losses, double *accs,
                char *why, size_t len);
void ckpt_free(train_ckpt *c);

/* SIGINT and SIGTERM set a flag instead of killing the process (from
 * ckpt_catch_signals on); ckpt_stop_signal() is that signal, or 0. */
void ckpt_catch_signals(void);
void ckpt_default_signals(void); /* back to the default actions */
int ckpt_stop_signal(void);
/* The test hook: TAPEGRAD_TEST_KILL_AT_STEP=N makes the process SIGKILL
 * itself after its N-th step (TAPEGRAD_TEST_KILL_RANK=r: only rank r). */
void ckpt_test_kill(const train_ckpt *c, long long step, int rank);

#endif
