/* tapegrad eval and tapegrad info (tools/eval.c), and the architecture
 * record that `tapegrad train --model mlp|cnn` saves with a model so that
 * eval can rebuild the network.
 *
 * The record is two extra tensors in the model file (format version 1
 * unchanged: tg_load with an explicit list ignores tensors it was not
 * asked for, so files with them load as before):
 *   "train.arch"  i32 [ARCH_LEN]: ARCH_VERSION, kind (ARCH_MLP, ARCH_CNN),
 *                 classes, image rows, cols, data (0 Fashion-MNIST or other
 *                 IDX files, 1 the built-in synthetic set), the low and
 *                 high 32 bits of --seed (the synthetic set's seed), the
 *                 number of MLP layer sizes, then the sizes (0 after them);
 *   "train.norm"  f64 [2]: the mean and deviation the inputs were
 *                 standardised with, x' = (x - mean) / deviation.
 * Files saved before the record existed have neither: eval then infers the
 * network from the tensors' names and shapes (W1, b1, ... for the MLP;
 * conv1.w, ... for the CNN) and recomputes the standardisation from the
 * training split, saying so. */
#ifndef TAPEGRAD_EVAL_H
#define TAPEGRAD_EVAL_H

#include "cli.h"

enum { ARCH_VERSION = 1, ARCH_MLP = 1, ARCH_CNN = 2, ARCH_MAX_SIZES = 17, ARCH_LEN = 9 + 17 };

typedef struct cli_arch {
    int kind;                      /* ARCH_MLP or ARCH_CNN                      */
    int classes;                   /* outputs                                   */
    size_t rows, cols;             /* image geometry (0 when not images)        */
    bool synthetic;                /* trained on the built-in synthetic set     */
    uint64_t seed;                 /* --seed (the synthetic set's)              */
    int n_sizes;                   /* mlp: layer sizes, input first             */
    size_t sizes[ARCH_MAX_SIZES];
    bool have_norm, recorded;      /* norm known; read from train.arch          */
    double mean, sd;               /* standardisation                           */
} cli_arch;

/* Make the two constants "train.arch" and "train.norm" on tape t holding
 * *a, into meta[0], meta[1].  0, or -1 with the message in err. */
int cli_arch_attach(tg_tape *t, const cli_arch *a, tg_tensor *meta[2], tg_err *err);

/* For eval (tools/train.c, the data rules of `tapegrad train`): the test
 * split, and the training split when train is not NULL, of the IDX files in
 * dir, or of the built-in synthetic set of this seed when dir is NULL.
 * Unnormalised.  0, or -1 with the message in err. */
int cli_load_split(const char *dir, uint64_t seed, tg_dataset *train, tg_dataset *test,
                   tg_err *err);

int cli_eval(int argc, char **argv);
int cli_info(int argc, char **argv);

#endif
