/* The networks of the five seed documents, each built on a tape by ONE
 * function (seeds/nets.c): the derivation checks (seeds/fisher_mlp.c ...)
 * build it at the sizes and values of every draw, `tapegrad dot seedNNN`
 * draws it at one small size (seedNNN_network).
 *
 * A builder records on the tape it is given (NULL: returns -1), names every
 * tensor as the document does and records each layer in its own scope (the
 * DOT clusters).  It returns 0, or -1 when the tape reported an error
 * (tg_tape_error says which) or was NULL.  No builder runs backward. */
#ifndef SEEDS_NETS_H
#define SEEDS_NETS_H

#include "seed004_net.h"

#include "tapegrad.h"

#include <stdbool.h>
#include <stdint.h>

/* ---- seed 000: three-layer sigmoid MLP + Fisher term, samples as columns -- */

enum { SEED000_MAXE = 256 }; /* elements of the largest matrix: dims <= 8, n <= 16 */

/* Layer sizes (x^Q, z₁^P, z₂^N, y^M), classes C and samples n.  `single`:
 * class 0 has exactly one sample. */
typedef struct seed000_cfg {
    int Q, P, N, M, C, n;
    bool single;
} seed000_cfg;

typedef struct seed000_net {
    tg_tape *tape;
    seed000_cfg s;
    double gamma;
    tg_tensor *x, *d, *lab, *W1, *b1, *W2, *b2, *W3, *b3;
    tg_tensor *y1, *z1, *y2, *z2, *y;
    tg_tensor *sq;     /* ½ Σ_i ‖y_i − d_i‖²       */
    tg_tensor *trSw, *trSb;
    tg_tensor *fisher; /* tr S_w − tr S_b          */
    tg_tensor *E;      /* sq + γ/2 · fisher         */
} seed000_net;

/*
 * y₁ = W₁x + b₁, z₁ = σ(y₁), y₂ = W₂z₁ + b₂, z₂ = σ(y₂), y = W₃z₂ + b₃ (b a
 * column broadcast over the samples) and E = ½Σ‖yᵢ − dᵢ‖² + γ/2 (tr S_w −
 * tr S_b).  Drawn from r: γ in [0.2, 1.5), labels (every class occurs,
 * shuffled), x ~ N(0, 1), d, W ~ U(−1, 1), b ~ U(−0.5, 0.5).  With
 * input_layer false x itself is the input layer (x [P×n], no W₁, b₁, z₁ = x).
 */
int seed000_build(tg_tape *tp, const seed000_cfg *s, bool input_layer, tg_rng *r,
                  seed000_net *nt);

/* ---- seed 001: L-layer MLP without biases, δ notation, samples as columns - */

enum { SEED001_MAXL = 5 };

typedef enum seed001_act { SEED001_SIGMOID, SEED001_RELU, SEED001_SOFTMAX } seed001_act;

/* Indices follow the document: a[l] = a⁽ˡ⁾, z[l] = z⁽ˡ⁾, W[l] = W⁽ˡ⁾,
 * h[l] = the activation of layer l, i.e. h⁽ˡ⁻¹⁾. */
typedef struct seed001_net {
    tg_tape *tape;
    int L;                          /* depth: layer 1 = input, L = output   */
    size_t I[SEED001_MAXL + 1];     /* I[l] = I_l, the width of layer l     */
    size_t N;                       /* samples = columns of X               */
    seed001_act h[SEED001_MAXL + 1]; /* h[l] = h⁽ˡ⁻¹⁾ for l = 2..L−1         */
    tg_tensor *X, *T;               /* X = a⁽¹⁾ = z⁽¹⁾ [I₁×N], T [I_L×N]     */
    tg_tensor *W[SEED001_MAXL];     /* W[l] = W⁽ˡ⁾ [I_{l+1}×I_l], l = 1..L−1 */
    tg_tensor *a[SEED001_MAXL + 1]; /* a[l] = a⁽ˡ⁾, l = 1..L; a[L] = y       */
    tg_tensor *z[SEED001_MAXL];     /* z[l] = z⁽ˡ⁾, l = 1..L−1               */
    tg_tensor *E;
} seed001_net;

/*
 * a⁽ˡ⁾ = W⁽ˡ⁻¹⁾z⁽ˡ⁻¹⁾, z⁽ˡ⁾ = h(a⁽ˡ⁾), y = a⁽ᴸ⁾ (no output activation) and
 * E = ΣΣ(y − T)² (44), or ½ΣΣ(y − T)² (47) with half, for the L, I, N and h
 * set in n.  Drawn from rng: X, T ~ N(0, 1), W⁽ˡ⁾ ~ N(0, (1.5/√I_l)²).
 * x_grad: X requires a gradient (δ⁽¹⁾ = ∂E/∂X can then be read).
 */
int seed001_build(tg_tape *tp, seed001_net *n, tg_rng *rng, bool half, bool x_grad);

/* ---- seed 002: batched 4-5-3 sigmoid MLP, samples as rows ----------------- */

enum { SEED002_IN = 4, SEED002_HID = 5, SEED002_OUT = 3, SEED002_MAX_N = 16 };

/* One draw's values: inputs, targets and parameters, row-major. */
typedef struct seed002_values {
    int n;
    double z0[SEED002_MAX_N * SEED002_IN], t[SEED002_MAX_N * SEED002_OUT];
    double w1[SEED002_IN * SEED002_HID], b1[SEED002_HID];
    double w2[SEED002_HID * SEED002_OUT], b2[SEED002_OUT];
} seed002_values;

typedef struct seed002_net {
    tg_tape *tape;
    tg_tensor *z0, *t, *w1, *b1, *w2, *b2;
    tg_tensor *h0, *z1, *h1, *z2, *h2, *loss;
} seed002_net;

/* n (1..SEED002_MAX_N) samples: z0 ~ N(0, 1.5²), t ~ U(0, 1), w ~ N(0, 1),
 * b ~ N(0, 0.5²). */
void seed002_draw(seed002_values *v, tg_rng *rng, int n);
/*
 * h0 = σ(z0), z1 = h0·w1 + b1, h1 = σ(z1), z2 = h1·w2 + b2, h2 = σ(z2),
 * L = ½ΣΣ(t − h2)².  The biases are vectors added to every row, or with
 * full_bias n×d matrices of free entries, every row equal to b at the start.
 */
int seed002_build(tg_tape *tp, const seed002_values *v, bool full_bias, seed002_net *m);

/* ---- seed 003: bias unit in Θ, cross-entropy + λ/2m L2, samples as columns */

enum {
    SEED003_L = 4,     /* layers                                         */
    SEED003_IN = 3,    /* features                                       */
    SEED003_K = 3,     /* classes                                        */
    SEED003_MAX_S = 6, /* units of a hidden layer, bias unit not counted */
    SEED003_MAX_M = 5, /* samples                                        */
    SEED003_MAX_AUG = SEED003_MAX_S + 1,
};

/* One draw: sizes, λ, inputs, one-hot targets and parameters. */
typedef struct seed003_values {
    int S[SEED003_L + 1]; /* S[1..4]: units per layer, bias unit not counted */
    int m;
    double lambda;
    double theta[SEED003_L][SEED003_MAX_S * SEED003_MAX_AUG]; /* Θ⁽ˡ⁾, l = 1..3, row-major */
    double x[SEED003_IN * SEED003_MAX_M];                     /* x⁽ᵇ⁾ as columns: IN × m */
    double y[SEED003_K * SEED003_MAX_M];                      /* y⁽ᵇ⁾ as columns: K × m  */
} seed003_values;

typedef struct seed003_net {
    tg_tape *tape;
    int S[SEED003_L + 1], m;
    double lambda;
    tg_tensor *theta[SEED003_L]; /* Θ⁽ˡ⁾ (params), l = 1..3                       */
    tg_tensor *probe;            /* with probe: t added to Θ⁽¹⁾₍₁,₂₎, t = 0       */
    tg_tensor *aug[SEED003_L];   /* [a₀ = 1; a⁽ˡ⁾]: (S_l + 1) × m, l = 1..3         */
    tg_tensor *z[SEED003_L + 1]; /* z⁽ˡ⁾, l = 2..4: S_l × m                         */
    tg_tensor *a[SEED003_L + 1]; /* a⁽ˡ⁾ = g(z⁽ˡ⁾), l = 2..4; a[1] = x             */
    tg_tensor *y;
    tg_tensor *sum_jb;           /* Σ_b J⁽ᵇ⁾, J⁽ᵇ⁾ of (1.2.1)/(2.4.1)              */
    tg_tensor *data;             /* (1.2.5) = (2.2.1) = (1/m) Σ_b J⁽ᵇ⁾             */
    tg_tensor *pen;              /* (1.2.6) = λ/(2m) Σ_l Σ_{i≥1} Σ_j Θ⁽ˡ⁾_ji²     */
    tg_tensor *cost;             /* J(Θ) = (1.2.5) + (1.2.6)                        */
} seed003_net;

/* Widths 3-s2-s3-3 (s2, s3 <= SEED003_MAX_S), m <= SEED003_MAX_M samples:
 * λ ~ U(0.3, 1.5), Θ ~ N(0, 0.8²), x ~ N(0, 1), y one-hot of a random class. */
void seed003_draw(seed003_values *v, tg_rng *rng, int s2, int s3, int m);
/*
 * z⁽ˡ⁺¹⁾ = Θ⁽ˡ⁾[1; a⁽ˡ⁾], a⁽ˡ⁺¹⁾ = σ(z⁽ˡ⁺¹⁾), h = a⁽⁴⁾, J(Θ) = (1/m)Σ_b BCE(h, y)
 * + λ/2m Σ Θ² without the bias column.  probe: Θ⁽¹⁾ + t·E, E one-hot at
 * Θ⁽¹⁾₍₁,₂₎ and the scalar param t = 0, so that ∂J/∂t = ∂J/∂Θ⁽¹⁾₍₁,₂₎.
 */
int seed003_build(tg_tape *tp, const seed003_values *v, bool probe, seed003_net *n);

/* ---- seed 004: 256-256-10 ReLU/softmax, CE + L2, samples as columns ------- */

enum { SEED004_IN = 256, SEED004_K = 10 };

/* One draw: inputs, labels and parameters (in plain C, seed004_net.h). */
typedef struct seed004_values {
    int m;
    double lambda;
    double *X, *Y; /* X⁽⁰⁾ [n×m], one-hot Y [K×m] */
    int *labels;   /* t for each sample           */
    mlp p;
} seed004_values;

typedef struct seed004_net {
    tg_tape *tape;
    int m;
    tg_tensor *X0, *Y, *W1, *b1, *W2, *b2;
    tg_tensor *h, *X1, *W2t, *z, *yhat, *L;
} seed004_net;

/* m samples: λ ~ U(0.1, 2.1), X ~ N(0, 1), random labels, W₁ ~ N(0, 1/n),
 * W₂ ~ N(0, 4/n), b ~ N(0, 0.5²) (h and z of order 1: about half the
 * ReLUs active, no softmax output underflows).  0, or -1 out of memory;
 * free with seed004_values_free either way. */
int seed004_draw(seed004_values *v, tg_rng *rng, int m);
void seed004_values_free(seed004_values *v);
/*
 * h = W₁ᵀX⁽⁰⁾ + b₁, X⁽¹⁾ = ReLU(h), z = W₂ᵀX⁽¹⁾ + b₂, ŷ = softmax per column,
 * L = −(1/m)ΣY⊙log ŷ + λ/2m (tr W₁ᵀW₁ + tr W₂ᵀW₂) for X [n×m] and Y [K×m];
 * λ = 0 leaves the penalty out.  index_form builds h = W₁X⁽⁰⁾ + b₁ (the
 * document's hⱼ = Σᵢ Wⱼ,ᵢXᵢ⁽⁰⁾ + bⱼ) instead.
 */
int seed004_build(tg_tape *tp, const mlp *p, const double *X, const double *Y, int m,
                  double lambda, bool index_form, seed004_net *nt);
/* The penalty λ/2m Σᵢ WᵢᵀWᵢ, each WᵢᵀWᵢ taken as its trace (the squared norm). */
tg_tensor *seed004_penalty(tg_tensor *W1, tg_tensor *W2, double lambda, int m);

/* ---- each network at one small size, for `tapegrad dot` ------------------- */

/* The network of seed NNN with 4 to 6 samples (so value and gradient
 * summaries stay readable), values drawn from r; returns its loss, or NULL
 * (the tape's error says why).  Seed 000: Q,P,N,M = 4,5,4,3, C = 3, n = 6;
 * 001: widths 3-4-4-2, σ, ½ΣΣ, N = 4; 002: n = 4; 003: widths 3-4-4-3,
 * m = 4; 004: m = 4. */
tg_tensor *seed000_network(tg_tape *tp, tg_rng *r);
tg_tensor *seed001_network(tg_tape *tp, tg_rng *r);
tg_tensor *seed002_network(tg_tape *tp, tg_rng *r);
tg_tensor *seed003_network(tg_tape *tp, tg_rng *r);
tg_tensor *seed004_network(tg_tape *tp, tg_rng *r);

#endif
