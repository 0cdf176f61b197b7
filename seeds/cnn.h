/* The convolutional network of `tapegrad train --model cnn`, examples/
 * train_cnn.c, `tapegrad dot cnn` and tests/bench/bench_cnn.c: one builder,
 * so the four run the same network.
 *
 *   x [B,1,28,28]
 *   block1: conv 3×3, 1→32, pad 1 → batch norm → ReLU → max-pool 2   [B,32,14,14]
 *   block2: conv 3×3, 32→64, pad 1 → batch norm → ReLU → max-pool 2  [B,64,7,7]
 *   head:   dropout p → reshape [B,3136] → fc 3136→128 → ReLU → fc 128→10
 *   loss:   softmax cross-entropy (mean over the batch)
 *
 * The convolutions have no bias (the batch norm's β is one); the weights
 * are He-initialised, biases zero, γ = 1, β = 0, running statistics 0 and 1
 * (PyTorch's starting values).  tests/bench/torch_cnn.py is the same
 * network in PyTorch. */
#ifndef TAPEGRAD_CNN_H
#define TAPEGRAD_CNN_H

#include "tapegrad.h"

enum { CNN_MAX_PARAMS = 16, CNN_MAX_BUFFERS = 8 };

typedef struct cnn_model {
    tg_tape *tape;
    tg_tensor *x;      /* input images [B,1,H,W]                          */
    tg_tensor *labels; /* i32 [B]                                         */
    tg_tensor *logits; /* [B,classes]                                     */
    tg_tensor *loss;
    tg_tensor *params[CNN_MAX_PARAMS];   /* what the optimizer updates    */
    int n_params;
    tg_tensor *buffers[CNN_MAX_BUFFERS]; /* batch norm running statistics */
    int n_buffers;
} cnn_model;

/* Build the network on a new tape for batches of `batch` images of
 * side × side pixels (28 for Fashion-MNIST; a multiple of 4), `classes`
 * outputs, dtype dt, weights drawn from seed, dropout probability p.
 * 0, or -1 with the message in err (NULL allowed); on failure nothing is
 * left to free. */
int cnn_build(cnn_model *m, size_t batch, size_t side, size_t classes, tg_dtype dt,
              uint64_t seed, double dropout, tg_err *err);
/* Free the tape (and everything on it). */
void cnn_free(cnn_model *m);

#endif
