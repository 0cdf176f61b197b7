/* Seed 004's network in plain C (no tape) and its corrected hand-derived
 * gradients: shared by the derivation check (seeds/relu_softmax_l2.c) and
 * the training example (examples/train_seed004.c). */
#ifndef SEED004_NET_H
#define SEED004_NET_H

/* Parameters (or their gradients) of the network, row-major:
 *   W1 [n×hid] (h = W₁ᵀx + b₁), b1 [hid], W2 [hid×K] (z = W₂ᵀX⁽¹⁾ + b₂), b2 [K]. */
typedef struct mlp {
    int n, hid, k;
    double *W1, *b1, *W2, *b2;
} mlp;

/* Allocate zeroed parameters for n inputs, hid hidden units, k classes;
 * 0 or -1 (out of memory, nothing left allocated). */
int mlp_alloc(mlp *p, int n, int hid, int k);
void mlp_free(mlp *p);
/* Forward pass, samples as columns of X [n×m]: h, X1 [hid×m], Yhat [K×m]. */
void forward_plain(const mlp *p, const double *X, int m, double *h, double *X1, double *Yhat);
/* L = (1/m) Σⱼ −log ŷ_{tⱼ} + λ/2m (‖W₁‖² + ‖W₂‖²) from the forward's Ŷ. */
double loss_plain(const mlp *p, const double *Yhat, const int *labels, int m, double lambda);
/* The corrected derivation for a batch X [n×m]: fills g (allocated like p)
 * with every parameter's gradient and returns L (NAN when out of memory). */
double corrected_grads(const mlp *p, const double *X, const int *labels, int m, double lambda,
                       mlp *g);

#endif
