/* Seed 004's network in plain C and the corrected gradients (see
 * seed004_net.h and docs/errata.md, seed 004). */
#include "seed004_net.h"

#include <math.h>
#include <stdlib.h>

void mlp_free(mlp *p)
{
    free(p->W1);
    free(p->b1);
    free(p->W2);
    free(p->b2);
    p->W1 = p->b1 = p->W2 = p->b2 = NULL;
}

int mlp_alloc(mlp *p, int n, int hid, int k)
{
    p->n = n, p->hid = hid, p->k = k;
    p->W1 = calloc((size_t)n * (size_t)hid, sizeof(double));
    p->b1 = calloc((size_t)hid, sizeof(double));
    p->W2 = calloc((size_t)hid * (size_t)k, sizeof(double));
    p->b2 = calloc((size_t)k, sizeof(double));
    if (p->W1 && p->b1 && p->W2 && p->b2)
        return 0;
    mlp_free(p);
    return -1;
}

/* Forward pass, samples as columns of X [n×m]: h, X1 [hid×m], Yhat [K×m]. */
void forward_plain(const mlp *p, const double *X, int m, double *h, double *X1, double *Yhat)
{
    for (int b = 0; b < p->hid; b++) /* h = W₁ᵀX⁽⁰⁾ + b₁, X⁽¹⁾ = max(0, h) */
        for (int j = 0; j < m; j++) {
            double s = p->b1[b];
            for (int a = 0; a < p->n; a++)
                s += p->W1[a * p->hid + b] * X[a * m + j];
            h[b * m + j] = s;
            X1[b * m + j] = s > 0 ? s : 0;
        }
    for (int j = 0; j < m; j++) { /* z = W₂ᵀX⁽¹⁾ + b₂, ŷ = softmax(z) per column */
        double zmax = -INFINITY, sum = 0;
        for (int c = 0; c < p->k; c++) {
            double s = p->b2[c];
            for (int b = 0; b < p->hid; b++)
                s += p->W2[b * p->k + c] * X1[b * m + j];
            Yhat[c * m + j] = s;
            zmax = fmax(zmax, s);
        }
        for (int c = 0; c < p->k; c++)
            sum += Yhat[c * m + j] = exp(Yhat[c * m + j] - zmax);
        for (int c = 0; c < p->k; c++)
            Yhat[c * m + j] /= sum;
    }
}

/* L = (1/m) Σⱼ −log ŷ_{tⱼ} + λ/2m (‖W₁‖² + ‖W₂‖²) from the forward's Ŷ. */
double loss_plain(const mlp *p, const double *Yhat, const int *labels, int m, double lambda)
{
    double ce = 0, sq = 0;
    for (int j = 0; j < m; j++)
        ce -= log(Yhat[labels[j] * m + j]);
    for (int i = 0; i < p->n * p->hid; i++)
        sq += p->W1[i] * p->W1[i];
    for (int i = 0; i < p->hid * p->k; i++)
        sq += p->W2[i] * p->W2[i];
    return ce / m + lambda / (2.0 * m) * sq;
}

/*
 * The corrected derivation for a batch X [n×m] (samples as columns) with
 * class labels: fills g (allocated like p) with
 *   ∂L/∂z  = (Ŷ − Y)/m                             [K×m]
 *   ∂L/∂W₂ = X⁽¹⁾ (∂L/∂z)ᵀ + (λ/m) W₂               [hid×K]
 *   ∂L/∂b₂ = Σⱼ (∂L/∂z)₍:,ⱼ₎                        [K]
 *   ∂L/∂h  = (W₂ ∂L/∂z) ⊙ 1(h > 0)                 [hid×m]
 *   ∂L/∂W₁ = X⁽⁰⁾ (∂L/∂h)ᵀ + (λ/m) W₁              [n×hid]
 *   ∂L/∂b₁ = Σⱼ (∂L/∂h)₍:,ⱼ₎                        [hid]
 * and returns L (NAN when out of memory).
 */
double corrected_grads(const mlp *p, const double *X, const int *labels, int m, double lambda,
                       mlp *g)
{
    size_t hm = (size_t)p->hid * (size_t)m, km = (size_t)p->k * (size_t)m;
    double *h = malloc(hm * sizeof *h), *X1 = malloc(hm * sizeof *X1);
    double *dh = malloc(hm * sizeof *dh), *dz = malloc(km * sizeof *dz);
    double loss = NAN;
    if (!h || !X1 || !dh || !dz)
        goto out;
    forward_plain(p, X, m, h, X1, dz); /* dz holds Ŷ for now */
    loss = loss_plain(p, dz, labels, m, lambda);
    for (int j = 0; j < m; j++) /* ∂L/∂z = (Ŷ − Y)/m */
        for (int c = 0; c < p->k; c++)
            dz[c * m + j] = (dz[c * m + j] - (labels[j] == c)) / m;
    for (int b = 0; b < p->hid; b++)
        for (int c = 0; c < p->k; c++) { /* ∂L/∂W₂ = X⁽¹⁾(∂L/∂z)ᵀ + (λ/m)W₂ */
            double s = 0;
            for (int j = 0; j < m; j++)
                s += X1[b * m + j] * dz[c * m + j];
            g->W2[b * p->k + c] = s + lambda / m * p->W2[b * p->k + c];
        }
    for (int c = 0; c < p->k; c++) { /* ∂L/∂b₂ = Σⱼ ∂L/∂z₍:,ⱼ₎ */
        g->b2[c] = 0;
        for (int j = 0; j < m; j++)
            g->b2[c] += dz[c * m + j];
    }
    for (int b = 0; b < p->hid; b++) /* ∂L/∂h = (W₂ ∂L/∂z) ⊙ 1(h > 0) */
        for (int j = 0; j < m; j++) {
            double s = 0;
            for (int c = 0; c < p->k; c++)
                s += p->W2[b * p->k + c] * dz[c * m + j];
            dh[b * m + j] = h[b * m + j] > 0 ? s : 0;
        }
    for (int a = 0; a < p->n; a++)
        for (int b = 0; b < p->hid; b++) { /* ∂L/∂W₁ = X⁽⁰⁾(∂L/∂h)ᵀ + (λ/m)W₁ */
            double s = 0;
            for (int j = 0; j < m; j++)
                s += X[a * m + j] * dh[b * m + j];
            g->W1[a * p->hid + b] = s + lambda / m * p->W1[a * p->hid + b];
        }
    for (int b = 0; b < p->hid; b++) { /* ∂L/∂b₁ = Σⱼ ∂L/∂h₍:,ⱼ₎ */
        g->b1[b] = 0;
        for (int j = 0; j < m; j++)
            g->b1[b] += dh[b * m + j];
    }
out:
    free(h);
    free(X1);
    free(dh);
    free(dz);
    return loss;
}

