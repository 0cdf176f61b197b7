/* Seed 004: homework, backprop by hand for a 256-input network with one
 * ReLU hidden layer, a softmax output over K = 10 classes, cross-entropy
 * and an L2 penalty.
 *
 * The document's network, samples as COLUMNS (n = 256 features, K = 10):
 *   X⁽⁰⁾ [n×m]                 the m input samples x⁽ⁱ⁾ side by side
 *   h    = W₁ᵀX⁽⁰⁾ + b₁        W₁ "n×n" (so n hidden units), b₁ n×1
 *   X⁽¹⁾ = ReLU(h)             Xⱼ⁽¹⁾ = max(0, hⱼ)
 *   z    = W₂ᵀX⁽¹⁾ + b₂        W₂ n×K, b₂ K×1
 *   ŷ    = softmax(z)          per sample (per column)
 *   Loss = −Σⱼ yⱼ log ŷⱼ = −log ŷₜ        (one sample, t its class)
 *   L    = (1/m) Σ Loss + λ/2m Σᵢ WᵢᵀWᵢ   (m samples with L2)
 * The penalty "λ/2m (Σ_{i=1}^k WᵢᵀWᵢ)" is read as λ/2m (tr W₁ᵀW₁ + tr W₂ᵀW₂):
 * the weight matrices of both layers (the document adds (λ/m)W₁ to ∂L/∂W₁),
 * biases not penalised.  It is built literally as traces of WᵀW.
 *
 * Part ① derives ∂L/∂ŷ, ∂ŷ/∂z, ∂L/∂z and ∂L/∂W₂ for one sample (no L2),
 * then ∂L/∂W₂ and ∂L/∂b₂ for m samples with L2; part ② derives the chain
 * to ∂L/∂W₁ and ∂L/∂b₁.  Every formula is computed below in plain loops,
 * literally as written, and compared with the tape.  Where the shapes do
 * not say which product is meant, each reasonable reading is its own row;
 * a row that needs a reading or a correction says so in its label
 * ("[read …]", "[corrected: …]"), and the text as written has its own row.
 * Entry (j, i) of a formula is compared with entry (j, i) of the gradient
 * (the same indices): where the text lacks a ᵀ (∂L/∂W₂ = (ŷ − y)x⁽ⁱ⁾ is K×n,
 * W₂ is n×K) or a batch sum (∂L/∂b₂ = (Ŷ − Y)/m is K×m, b₂ is K×1), the row
 * as written fails and the corrected one holds.
 *
 * Slips that change a final gradient (see docs/errata.md, seed 004):
 *  - ∂L/∂W₁ masks input feature i by hidden unit i (X⁽¹⁾*ⱼ,ᵢ keeps
 *    X⁽⁰⁾ⱼ,ᵢ when hᵢ > 0): it only type-checks because W₁ is n×n;
 *  - ∂L/∂b₁ divides by n (the feature count) instead of m (the batch);
 *  - ∂L/∂W₂ = (ŷ − y)x⁽ⁱ⁾ and the batch line lack a ᵀ (K×n for the n×K W₂);
 *  - ∂L/∂b₂ = (Ŷ − Y)/m lacks the sum over the batch.
 * corrected_grads() (seed004_net.c) is the corrected derivation as a
 * reusable function (plain C, its own forward pass), also used to train the
 * network for real in train_seed004.c.
 */
#include "derivation.h"
#include "nets.h"
#include "seed004_net.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N_IN = SEED004_IN, N_CLS = SEED004_K };

/* Batch sizes per draw (cycled), all different from n = 256: the document's
 * ∂L/∂b₁ divides by n, which would pass unnoticed with m = n. */
static const int batch_sizes[] = {8, 17, 32, 5, 50};

/* ======================================================================== */
/* One draw: random inputs, labels and parameters; the network on a tape   */
/* ======================================================================== */

/* The draw's values and the tape network: seeds/nets.c; the network in
 * plain C and the corrected gradients: seeds/seed004_net.c. */
typedef seed004_values draw_values;
typedef seed004_net net;

static int draw(draw_values *v, int d)
{
    tg_rng rng;
    tg_rng_seed(&rng, 0x004000u + (uint64_t)d);
    return seed004_draw(v, &rng, batch_sizes[d % (int)(sizeof batch_sizes / sizeof *batch_sizes)]);
}

#define SHAPE(r, c) 2, (size_t[]){(size_t)(r), (size_t)(c)}

/* Build the network for X [n×m] (columns: samples) and run backward from L.
 * lambda = 0 leaves the penalty out; index_form: h = W₁X⁽⁰⁾ + b₁. */
static int build(net *nt, const draw_values *v, const double *X, const double *Y, int m,
                 double lambda, bool index_form)
{
    if (seed004_build(tg_tape_new(), &v->p, X, Y, m, lambda, index_form, nt))
        return -1;
    return tg_backward(nt->L);
}

/* The tape's L must be the document's L, computed in plain C. */
static bool same_loss(const net *nt, const mlp *p, const double *X, const int *labels,
                      double lambda)
{
    size_t hm = (size_t)N_IN * (size_t)nt->m;
    double *h = malloc(hm * sizeof *h), *X1 = malloc(hm * sizeof *X1);
    double *Yh = malloc((size_t)N_CLS * (size_t)nt->m * sizeof *Yh);
    bool ok = false;
    if (h && X1 && Yh) {
        forward_plain(p, X, nt->m, h, X1, Yh);
        double want = loss_plain(p, Yh, labels, nt->m, lambda);
        ok = fabs(tg_item(nt->L) - want) <= 1e-12 * fabs(want);
    }
    free(h);
    free(X1);
    free(Yh);
    return ok;
}

/* ======================================================================== */
/* Formula labels, in the document's notation                               */
/* ======================================================================== */

/* ① one sample, no regularisation */
static const char *F_DLDYHAT = "∂L/∂ŷₜ = −1/ŷₜ  (∂L/∂ŷⱼ = 0, j ≠ t)";
static const char *F_SOFTMAX_2 = "∂ŷₜ/∂zⱼ = −ŷₜŷⱼ at j = t  [2° as labelled: ∂ŷₜ/∂zₜ = −ŷₜ²]";
static const char *F_SOFTMAX_J =
    "∂ŷₜ/∂zₜ = ŷₜ(1 − ŷₜ), ∂ŷₜ/∂zⱼ = −ŷₜŷⱼ (j ≠ t)  [corrected: 2° is j ≠ t]";
static const char *F_SOFTMAX_Q = "(exp(zₜ)Σexp(z_q) − exp(zₜ)²)/(Σexp(z_q))², "
                                 "exp(zₜ)∂(1/Σexp(z_q))/∂zⱼ (j ≠ t)  [corrected: 2° is j ≠ t]";
static const char *F_CASES = "∂L/∂zⱼ = ŷⱼ − 1 (1° j ≠ t), ŷⱼ (2° j = t)  [labels as written]";
static const char *F_CASES_FIX = "∂L/∂zₜ = ŷₜ − 1 (j = t), ∂L/∂zⱼ = ŷⱼ (j ≠ t)";
static const char *F_BRACKET = "∂L/∂z = [ŷ₁, ŷ₂, …, ŷ_{t−1}, …, ŷ_K]  [read literally]";
static const char *F_BRACKET_FIX = "∂L/∂z = ŷ − y  (entry t is ŷₜ − 1)";
static const char *F_DW2 =
    "∂L/∂W₂ = (ŷ − y)x⁽ⁱ⁾ as written, no ᵀ: (∂L/∂W₂)ⱼ,ᵢ = (ŷⱼ − yⱼ)xᵢ  [W₂ n×K; j > K: 0]";
static const char *F_DW2_NK = "∂L/∂W₂ = x⁽ⁱ⁾(ŷ − y)ᵀ  [corrected: ᵀ, n×K]";
static const char *F_DW2_KN =
    "∂L/∂W₂ᵀ = (ŷ − y)x⁽ⁱ⁾ᵀ  [read as the K×n W of zⱼ = Σᵢ Wⱼ,ᵢxᵢ, i.e. W₂ᵀ]";

/* ① m samples with L2 */
static const char *F_PEN =
    "∂(λ/2m ΣᵢWᵢᵀWᵢ)/∂Wᵢ = (λ/m)Wᵢ  (i = 1, 2)  [read: WᵢᵀWᵢ as its trace; '∂L/∂L₂' as ∂L₂/∂Wᵢ]";
static const char *F_DW2_MID =
    "∂L/∂W₂ = (Ŷ − Y)X⁽¹⁾ + (λ/m)W₂  [middle expression, no /m; ᵀ corrected: X⁽¹⁾(Ŷ−Y)ᵀ]";
static const char *F_DW2_L = "∂L/∂W₂ = (Ŷ − Y)X⁽¹⁾/m + (λ/m)W₂ as written, no ᵀ: entry (j,i) = "
                             "((Ŷ−Y)X⁽¹⁾)ⱼ,ᵢ/m + (λ/m)(W₂)ⱼ,ᵢ  [X⁽¹⁾ m×n as in ②; j > K: 0]";
static const char *F_DW2_B = "∂L/∂W₂ = X⁽¹⁾(Ŷ − Y)ᵀ/m + (λ/m)W₂  [last line, corrected: ᵀ, n×K]";
static const char *F_DW2_BT =
    "∂L/∂W₂ᵀ = (Ŷ − Y)X⁽¹⁾ᵀ/m + (λ/m)W₂ᵀ  [last line read as the gradient of W₂ᵀ, K×n]";
static const char *F_DLDZ_B2 = "∂L/∂z = (Ŷ − Y)/m  (b₂ line)";
static const char *F_DB2_L = "∂L/∂b₂ = (Ŷ − Y)/m as written, no batch sum  [K×m: each sample's "
                             "column vs ∂L/∂b₂]";
static const char *F_DB2 = "∂L/∂b₂ = Σ_samples (Ŷ − Y)/m  [corrected: summed over the batch]";

/* ② */
static const char *F_DLDZ_2 = "∂L/∂z = Ŷ − Y  [② with L the batch loss]";
static const char *F_DLDZ_2_FIX = "∂L/∂z = (Ŷ − Y)/m  [② with the batch's 1/m]";
static const char *F_DZDX1 = "∂z/∂X⁽¹⁾ = W₂ᵀ  [row k: ∂zₖ/∂X⁽¹⁾]";
static const char *F_DX1DH = "∂X⁽¹⁾/∂hⱼ = 0 (0 ≥ hⱼ), 1 (0 < hⱼ)";
static const char *F_DHDW1 = "∂h/∂W₁ = X⁽⁰⁾  [read: ∂h_b/∂(W₁)_{a,b} = X_a⁽⁰⁾]";
static const char *F_DLDX1 = "∂L/∂z·∂z/∂X⁽¹⁾ = (Ŷ − Y)ᵀW₂ᵀ/m  [corrected ∂L/∂z = (Ŷ − Y)/m; "
                             "read (Ŷ − Y)ᵀ, m×n, compared ᵀ]";
static const char *F_DLDH = "∂L/∂h = ((Ŷ − Y)ᵀW₂ᵀ ⊙ 1*)/m  [corrected ∂L/∂z = (Ŷ − Y)/m; "
                            "read (Ŷ − Y)ᵀ, m×n, compared ᵀ]";
static const char *F_DW1_0 = "∂L/∂W₁ = ((Ŷ − Y)W₂ᵀX⁽¹⁾*)/m  [λ = 0; as X⁽¹⁾*ᵀ((Ŷ−Y)ᵀW₂ᵀ)]";
static const char *F_DW1_0_FIX = "∂L/∂W₁ = X⁽⁰⁾[(W₂(Ŷ − Y)) ⊙ 1(h > 0)]ᵀ/m  [λ = 0]";
static const char *F_DW1_HI =
    "∂L/∂W₁,ᵢ = ((Ŷ−Y)W₂ᵀX⁽¹⁾*)/m + (λ/m)W₁  [as ((Ŷ−Y)ᵀW₂ᵀ)ᵀX⁽¹⁾*]";
static const char *F_DW1_IH =
    "∂L/∂W₁,ᵢ = ((Ŷ−Y)W₂ᵀX⁽¹⁾*)/m + (λ/m)W₁  [as X⁽¹⁾*ᵀ((Ŷ−Y)ᵀW₂ᵀ)]";
static const char *F_DW1_FIX = "∂L/∂W₁ = X⁽⁰⁾[(W₂(Ŷ − Y)) ⊙ 1(h > 0)]ᵀ/m + (λ/m)W₁";
static const char *F_DW1_IDX =
    "∂L/∂W₁,ᵢ = ((Ŷ−Y)W₂ᵀX⁽¹⁾*)/m + (λ/m)W₁  [net h = W₁X⁽⁰⁾ + b₁]";
static const char *F_DW1_IDX_FIX =
    "∂L/∂W₁ = [(W₂(Ŷ − Y)) ⊙ 1(h > 0)]X⁽⁰⁾ᵀ/m + (λ/m)W₁  [net h = W₁X⁽⁰⁾ + b₁]";
static const char *F_DB1 = "∂L/∂b₁ = ((Ŷ − Y)·W₂ᵀ·1*)/n  [⊙ 1*, summed over the batch]";
static const char *F_DB1_FIX = "∂L/∂b₁ = Σ_samples ((Ŷ − Y)ᵀW₂ᵀ ⊙ 1*)/m";

/* ======================================================================== */
/* Small helpers                                                            */
/* ======================================================================== */

static double *scratch(size_t count) { return calloc(count, sizeof(double)); }

/* Ŷ − Y [K×m] read from the tape's forward values. */
static void yhat_minus_y(const net *nt, double *D)
{
    const double *yh = tg_data_f64(nt->yhat), *y = tg_data_f64(nt->Y);
    for (int i = 0; i < N_CLS * nt->m; i++)
        D[i] = yh[i] - y[i];
}

/* The document's "(Ŷ − Y)W₂ᵀ" for samples as columns: (Ŷ − Y)ᵀW₂ᵀ [m×n],
 * row j = sample j's (ŷ − y)ᵀW₂ᵀ, i.e. G[j,b] = Σₖ (Ŷ−Y)ₖ,ⱼ (W₂)_b,ₖ. */
static void doc_G(const net *nt, const double *D, double *G)
{
    const double *W2 = tg_data_f64(nt->W2);
    int m = nt->m;
    for (int j = 0; j < m; j++)
        for (int b = 0; b < N_IN; b++) {
            double s = 0;
            for (int k = 0; k < N_CLS; k++)
                s += D[k * m + j] * W2[b * N_CLS + k];
            G[j * N_IN + b] = s;
        }
}

/* The document's X⁽¹⁾* [m×n]: X⁽¹⁾*ⱼ,ᵢ = X⁽⁰⁾ⱼ,ᵢ when hᵢ > 0 (hᵢ of sample j),
 * else 0.  Note the one index i: input feature i, masked by hidden unit i. */
static void doc_X1star(const net *nt, double *Xs)
{
    const double *X0 = tg_data_f64(nt->X0), *h = tg_data_f64(nt->h);
    int m = nt->m;
    for (int j = 0; j < m; j++)
        for (int i = 0; i < N_IN; i++)
            Xs[j * N_IN + i] = h[i * m + j] > 0 ? X0[i * m + j] : 0;
}

/* ======================================================================== */
/* ① one sample                                                             */
/* ======================================================================== */

/* ∂L/∂ŷₜ = −1/ŷₜ; Loss = −Σ yⱼ log ŷⱼ has no other ŷⱼ in it. */
static void check_dl_dyhat(dv_table *t, const net *nt, int label)
{
    const double *yh = tg_data_f64(nt->yhat);
    double hand[N_CLS];
    for (int j = 0; j < N_CLS; j++)
        hand[j] = j == label ? -1.0 / yh[j] : 0;
    dv_check(t, "① ∂L/∂ŷₜ", F_DLDYHAT, nt->yhat, hand, true);
}

/* "2° j = t: ∂ŷₜ/∂zⱼ = −ŷₜŷⱼ" taken at its label, j = t: the one entry
 * ∂ŷₜ/∂zₜ, read through a scalar probe s = 0 added to zₜ alone (ŷ =
 * softmax(z + s·eₜ), backward seeded with eₜ: ∂ŷₜ/∂s = ∂ŷₜ/∂zₜ). */
static int check_softmax_case2(dv_table *t, const double *zv, int k)
{
    double e[N_CLS] = {0}, seed[N_CLS] = {0};
    e[k] = seed[k] = 1;
    tg_tape *tape = tg_tape_new();
    tg_tensor *z = tg_leaf_from(tape, TG_CONST, "z", TG_F64, 1, (size_t[]){N_CLS}, zv);
    tg_tensor *E = tg_leaf_from(tape, TG_CONST, "e_t", TG_F64, 1, (size_t[]){N_CLS}, e);
    tg_tensor *s = tg_param(tape, "s", TG_F64, 0, NULL);
    tg_tensor *yh = tg_softmax(tg_add(z, tg_mul(E, s)));
    int rc = 0;
    if (!yh || tg_backward_vjp(yh, seed)) {
        rc = dv_fail(t, tape, "softmax probe tape");
    } else {
        double y = tg_data_f64(yh)[k], hand = -y * y; /* −ŷₜŷⱼ with j = t */
        dv_check(t, "① ∂ŷₜ/∂zⱼ", F_SOFTMAX_2, s, &hand, false);
    }
    tg_tape_free(tape);
    return rc;
}

/* The softmax Jacobian on a small tape: backward of ŷ = softmax(z) seeded
 * with eₜ gives row t, ∂ŷₜ/∂zⱼ for every j, in z's gradient.  Compared with
 * the final forms and with the quotient-rule expressions before them, with
 * 2° read as j ≠ t; 2° at its label j = t first (check_softmax_case2). */
static int check_softmax_local(dv_table *t, const net *nt)
{
    const double *zv = tg_data_f64(nt->z);
    double S = 0, e[N_CLS], seed[N_CLS] = {0}, hand[N_CLS];
    for (int j = 0; j < N_CLS; j++)
        S += e[j] = exp(zv[j]);
    tg_tape *tape = tg_tape_new();
    tg_tensor *z = tg_leaf_from(tape, TG_PARAM, "z", TG_F64, 1, (size_t[]){N_CLS}, zv);
    tg_tensor *yh = tg_softmax(z);
    const double *y = yh ? tg_data_f64(yh) : NULL;
    int rc = 0;
    for (int k = 0; y && k < N_CLS; k++) { /* k plays the document's t */
        if ((rc = check_softmax_case2(t, zv, k)))
            break;
        seed[k] = 1;
        tg_zero_grad(tape);
        if (tg_backward_vjp(yh, seed))
            break;
        seed[k] = 0;
        for (int j = 0; j < N_CLS; j++) /* ŷₜ(1 − ŷₜ) on the diagonal, −ŷₜŷⱼ off it */
            hand[j] = j == k ? y[k] * (1 - y[k]) : -y[k] * y[j];
        dv_check_fix(t, "① ∂ŷₜ/∂zⱼ", F_SOFTMAX_J, F_SOFTMAX_2, z, hand);
        for (int j = 0; j < N_CLS; j++) /* the quotient-rule forms, from exp(z) */
            hand[j] = j == k ? (e[k] * S - e[k] * e[k]) / (S * S) : e[k] * (-e[j] / (S * S));
        dv_check_fix(t, "① ∂ŷₜ/∂zⱼ", F_SOFTMAX_Q, F_SOFTMAX_2, z, hand);
    }
    if (!rc && (!y || tg_tape_error(tape)))
        rc = dv_fail(t, tape, "softmax tape");
    tg_tape_free(tape);
    return rc;
}

/* The two cases 1°/2° and the bracket [ŷ₁, …, ŷ_{t−1}, …, ŷ_K], literally
 * and as meant, against the gradient of the z node. */
static void check_dl_dz_single(dv_table *t, const net *nt, int label)
{
    const double *yh = tg_data_f64(nt->yhat);
    double hand[N_CLS];
    /* labels as written: "1° j ≠ t" gives ŷ − 1, "2° j = t" gives ŷⱼ */
    for (int j = 0; j < N_CLS; j++)
        hand[j] = j != label ? yh[j] - 1 : yh[j];
    dv_check(t, "① 1°/2°", F_CASES, nt->z, hand, false);
    for (int j = 0; j < N_CLS; j++)
        hand[j] = j == label ? yh[j] - 1 : yh[j];
    dv_check_fix(t, "① 1°/2°", F_CASES_FIX, F_CASES, nt->z, hand);
    /* the bracket read literally: every entry is some ŷ, nothing subtracted */
    for (int j = 0; j < N_CLS; j++)
        hand[j] = yh[j];
    dv_check(t, "① ∂L/∂z", F_BRACKET, nt->z, hand, false);
    for (int j = 0; j < N_CLS; j++)
        hand[j] = yh[j] - (j == label);
    dv_check_fix(t, "① ∂L/∂z", F_BRACKET_FIX, F_BRACKET, nt->z, hand);
}

/* ∂L/∂W₂ = (ŷ − y)x⁽ⁱ⁾, x⁽ⁱ⁾ = X⁽¹⁾ the hidden layer's output, from
 * ∂L/∂Wᵢ = (ŷ − y)xᵢ: entry (j, i) is (ŷⱼ − yⱼ)xᵢ, the (ŷ − y)x⁽ⁱ⁾ᵀ of a K×n
 * matrix (the document's zⱼ = Σᵢ Wⱼ,ᵢxᵢ).  W₂ is n×K: as written, entry
 * (j, i) of ∂L/∂W₂ (no ŷⱼ for j ≥ K: 0); corrected, x⁽ⁱ⁾(ŷ − y)ᵀ (n×K); and
 * read as the gradient of the K×n matrix W₂ᵀ, (ŷ − y)x⁽ⁱ⁾ᵀ. */
static void check_dw2_single(dv_table *t, const net *nt)
{
    const double *x = tg_data_f64(nt->X1);
    double d[N_CLS], *hand = scratch((size_t)N_IN * N_CLS);
    if (!hand) {
        dv_fail(t, NULL, "out of memory");
        return;
    }
    yhat_minus_y(nt, d);
    for (int j = 0; j < N_IN; j++)
        for (int i = 0; i < N_CLS; i++)
            hand[j * N_CLS + i] = j < N_CLS ? d[j] * x[i] : 0;
    dv_check(t, "① ∂L/∂W₂", F_DW2, nt->W2, hand, false);
    for (int a = 0; a < N_IN; a++)
        for (int k = 0; k < N_CLS; k++)
            hand[a * N_CLS + k] = x[a] * d[k];
    dv_check_fix(t, "① ∂L/∂W₂", F_DW2_NK, F_DW2, nt->W2, hand);
    for (int k = 0; k < N_CLS; k++)
        for (int a = 0; a < N_IN; a++)
            hand[k * N_IN + a] = d[k] * x[a];
    dv_check(t, "① ∂L/∂W₂", F_DW2_KN, nt->W2t, hand, true);
    free(hand);
}

/* Part ① on a one-sample tape (sample 0 of the draw, no L2). */
static int part1_single(dv_table *t, const draw_values *v)
{
    double x[N_IN], y[N_CLS];
    for (int a = 0; a < N_IN; a++)
        x[a] = v->X[a * v->m];
    for (int k = 0; k < N_CLS; k++)
        y[k] = v->Y[k * v->m];
    net nt = {0};
    int rc = 0;
    if (build(&nt, v, x, y, 1, 0, false))
        rc = dv_fail(t, nt.tape, "one-sample network");
    else if (!same_loss(&nt, &v->p, x, v->labels, 0))
        rc = dv_fail(t, NULL, "one-sample tape's L differs from the document's Loss");
    else {
        check_dl_dyhat(t, &nt, v->labels[0]);
        rc = check_softmax_local(t, &nt);
        check_dl_dz_single(t, &nt, v->labels[0]);
        check_dw2_single(t, &nt);
    }
    tg_tape_free(nt.tape);
    return rc;
}

/* ======================================================================== */
/* ① m samples with L2                                                      */
/* ======================================================================== */

/* The penalty alone on a small tape: ∂/∂Wᵢ of λ/2m tr(WᵢᵀWᵢ) = (λ/m)Wᵢ. */
static int check_penalty(dv_table *t, const draw_values *v)
{
    tg_tape *tape = tg_tape_new();
    tg_tensor *W1 = tg_leaf_from(tape, TG_PARAM, "W1", TG_F64, SHAPE(N_IN, N_IN), v->p.W1);
    tg_tensor *W2 = tg_leaf_from(tape, TG_PARAM, "W2", TG_F64, SHAPE(N_IN, N_CLS), v->p.W2);
    tg_tensor *pen = seed004_penalty(W1, W2, v->lambda, v->m);
    double *hand = scratch((size_t)N_IN * N_IN);
    int rc = 0;
    if (!pen || !hand || tg_backward(pen)) {
        rc = dv_fail(t, tape, "penalty tape");
    } else {
        for (int i = 0; i < N_IN * N_IN; i++)
            hand[i] = v->lambda / v->m * v->p.W1[i];
        dv_check(t, "① L₂ term", F_PEN, W1, hand, true);
        for (int i = 0; i < N_IN * N_CLS; i++)
            hand[i] = v->lambda / v->m * v->p.W2[i];
        dv_check(t, "① L₂ term", F_PEN, W2, hand, true);
    }
    free(hand);
    tg_tape_free(tape);
    return rc;
}

/* out [n×K] = X⁽¹⁾(Ŷ − Y)ᵀ·s + (λ/m)W₂: the W₂ line, s = 1/m or 1. */
static void dw2_batch(const net *nt, const double *D, double s, double lambda, double *out)
{
    const double *X1 = tg_data_f64(nt->X1), *W2 = tg_data_f64(nt->W2);
    int m = nt->m;
    for (int a = 0; a < N_IN; a++)
        for (int k = 0; k < N_CLS; k++) {
            double acc = 0;
            for (int j = 0; j < m; j++)
                acc += X1[a * m + j] * D[k * m + j];
            out[a * N_CLS + k] = acc * s + lambda / m * W2[a * N_CLS + k];
        }
}

/* The W₂ line as written, entry (j, i) of the n×K ∂L/∂W₂:
 * ((Ŷ − Y)X⁽¹⁾)ⱼ,ᵢ/m + (λ/m)(W₂)ⱼ,ᵢ, with X⁽¹⁾ m×n (samples as rows, as
 * the document's X⁽¹⁾*ⱼ,ᵢ of ②, so that (Ŷ − Y)X⁽¹⁾ [K×m · m×n] exists).
 * Its entry (j, i) needs j < K; rows j ≥ K get the penalty term only. */
static void dw2_batch_as_written(const net *nt, const double *D, double lambda, double *out)
{
    const double *X1 = tg_data_f64(nt->X1), *W2 = tg_data_f64(nt->W2);
    int m = nt->m;
    for (int j = 0; j < N_IN; j++)
        for (int i = 0; i < N_CLS; i++) {
            double acc = 0; /* X⁽¹⁾ as m×n: entry (s, i) is the tape's X1[i·m + s] */
            if (j < N_CLS)
                for (int s = 0; s < m; s++)
                    acc += D[j * m + s] * X1[i * m + s];
            out[j * N_CLS + i] = acc / m + lambda / m * W2[j * N_CLS + i];
        }
}

/* (Ŷ − Y)X⁽¹⁾ᵀ/m + (λ/m)W₂ᵀ [K×n], the other orientation. */
static void dw2_batch_kn(const net *nt, const double *D, double lambda, double *out)
{
    const double *X1 = tg_data_f64(nt->X1), *W2 = tg_data_f64(nt->W2);
    int m = nt->m;
    for (int k = 0; k < N_CLS; k++)
        for (int a = 0; a < N_IN; a++) {
            double acc = 0;
            for (int j = 0; j < m; j++)
                acc += D[k * m + j] * X1[a * m + j];
            out[k * N_IN + a] = acc / m + lambda / m * W2[a * N_CLS + k];
        }
}

static void check_w2_b2_batch(dv_table *t, const net *nt, const double *D, double lambda)
{
    int m = nt->m;
    double *g = scratch((size_t)N_IN * N_CLS), *gt = scratch((size_t)N_IN * N_CLS);
    double db2[N_CLS];
    if (!g || !gt) {
        dv_fail(t, NULL, "out of memory");
        goto out;
    }
    dw2_batch(nt, D, 1.0, lambda, g); /* the middle expression: no 1/m */
    dv_check(t, "① W₂ (m, L₂)", F_DW2_MID, nt->W2, g, false);
    dw2_batch_as_written(nt, D, lambda, g); /* the last line, no ᵀ */
    dv_check(t, "① W₂ (m, L₂)", F_DW2_L, nt->W2, g, false);
    dw2_batch(nt, D, 1.0 / m, lambda, g);
    dv_check_fix(t, "① W₂ (m, L₂)", F_DW2_B, F_DW2_L, nt->W2, g);
    dw2_batch_kn(nt, D, lambda, g);
    dv_transpose(g, gt, N_CLS, N_IN); /* K×n → n×K to compare with W₂ */
    dv_check(t, "① W₂ (m, L₂)", F_DW2_BT, nt->W2, gt, true);
    for (int i = 0; i < N_CLS * m; i++) /* ∂L/∂z = (Ŷ − Y)/m, per sample */
        g[i] = D[i] / m;
    dv_check(t, "① b₂", F_DLDZ_B2, nt->z, g, true);
    for (int j = 0; j < m; j++) { /* as written: column j of (Ŷ − Y)/m, each j */
        for (int k = 0; k < N_CLS; k++)
            db2[k] = D[k * m + j] / m;
        dv_check(t, "① b₂", F_DB2_L, nt->b2, db2, false);
    }
    for (int k = 0; k < N_CLS; k++) { /* ∂L/∂b₂ = Σⱼ (Ŷ − Y)₍:,ⱼ₎/m */
        db2[k] = 0;
        for (int j = 0; j < m; j++)
            db2[k] += D[k * m + j] / m;
    }
    dv_check_fix(t, "① b₂", F_DB2, F_DB2_L, nt->b2, db2);
out:
    free(g);
    free(gt);
}

/* ======================================================================== */
/* ② the chain to W₁ and b₁                                                 */
/* ======================================================================== */

/* ∂z/∂X⁽¹⁾ = W₂ᵀ on a small tape z = W₂ᵀx + b₂ (x = sample 0's X⁽¹⁾):
 * backward seeded with eₖ gives ∂zₖ/∂x = row k of W₂ᵀ. */
static int check_dz_dx1(dv_table *t, const net *nt)
{
    const double *X1 = tg_data_f64(nt->X1), *W2v = tg_data_f64(nt->W2);
    double x[N_IN], hand[N_IN], seed[N_CLS] = {0};
    for (int a = 0; a < N_IN; a++)
        x[a] = X1[a * nt->m];
    tg_tape *tape = tg_tape_new();
    tg_tensor *xl = tg_leaf_from(tape, TG_PARAM, "x", TG_F64, SHAPE(N_IN, 1), x);
    tg_tensor *W2 = tg_leaf_from(tape, TG_CONST, "W2", TG_F64, SHAPE(N_IN, N_CLS), W2v);
    tg_tensor *b2 = tg_leaf_from(tape, TG_CONST, "b2", TG_F64, SHAPE(N_CLS, 1),
                                 tg_data_f64(nt->b2));
    tg_tensor *z = tg_add(tg_matmul_t(W2, xl, true, false), b2);
    for (int k = 0; z && k < N_CLS; k++) {
        seed[k] = 1;
        tg_zero_grad(tape);
        if (tg_backward_vjp(z, seed))
            break;
        seed[k] = 0;
        for (int a = 0; a < N_IN; a++)
            hand[a] = W2v[a * N_CLS + k]; /* (W₂ᵀ)ₖ,ₐ */
        dv_check(t, "② W₁ chain", F_DZDX1, xl, hand, true);
    }
    int rc = tg_tape_error(tape) ? dv_fail(t, tape, "∂z/∂X⁽¹⁾ tape") : 0;
    tg_tape_free(tape);
    return rc;
}

/* ∂X⁽¹⁾/∂h on a small tape X⁽¹⁾ = ReLU(h), h = the batch's h with every
 * 7th entry set to exactly 0 (the document's "0 ≥ hⱼ" gives 0 there). */
static int check_dx1_dh(dv_table *t, const net *nt)
{
    size_t count = tg_size(nt->h);
    double *hv = scratch(count), *ones = scratch(count), *hand = scratch(count);
    tg_tape *tape = tg_tape_new();
    int rc = 0;
    if (!hv || !ones || !hand || !tape) {
        rc = dv_fail(t, tape, "∂X⁽¹⁾/∂h tape");
        goto out;
    }
    memcpy(hv, tg_data_f64(nt->h), count * sizeof *hv);
    for (size_t i = 0; i < count; i++) {
        hv[i] = i % 7 == 3 ? 0 : hv[i];
        ones[i] = 1;
        hand[i] = 0 >= hv[i] ? 0 : 1;
    }
    tg_tensor *h = tg_leaf_from(tape, TG_PARAM, "h", TG_F64, SHAPE(N_IN, nt->m), hv);
    tg_tensor *x1 = tg_relu(h);
    if (!x1 || tg_backward_vjp(x1, ones))
        rc = dv_fail(t, tape, "∂X⁽¹⁾/∂h tape");
    else
        dv_check(t, "② W₁ chain", F_DX1DH, h, hand, true);
out:
    free(hv);
    free(ones);
    free(hand);
    tg_tape_free(tape);
    return rc;
}

/* ∂h/∂W₁ = X⁽⁰⁾ on a small tape h = W₁ᵀx + b₁ (x = sample 0): backward
 * seeded with e_b gives ∂h_b/∂W₁, which is x in column b and 0 elsewhere. */
static int check_dh_dw1(dv_table *t, const draw_values *v, int d)
{
    double x[N_IN], seed[N_IN] = {0};
    double *hand = scratch((size_t)N_IN * N_IN);
    for (int a = 0; a < N_IN; a++)
        x[a] = v->X[a * v->m];
    tg_tape *tape = tg_tape_new();
    tg_tensor *W1 = tg_leaf_from(tape, TG_PARAM, "W1", TG_F64, SHAPE(N_IN, N_IN), v->p.W1);
    tg_tensor *xl = tg_leaf_from(tape, TG_CONST, "x", TG_F64, SHAPE(N_IN, 1), x);
    tg_tensor *b1 = tg_leaf_from(tape, TG_CONST, "b1", TG_F64, SHAPE(N_IN, 1), v->p.b1);
    tg_tensor *h = tg_add(tg_matmul_t(W1, xl, true, false), b1);
    for (int r = 0; h && hand && r < 3; r++) {
        int b = (37 * d + 101 * r) % N_IN; /* three hidden units per draw */
        seed[b] = 1;
        tg_zero_grad(tape);
        if (tg_backward_vjp(h, seed))
            break;
        seed[b] = 0;
        for (int a = 0; a < N_IN; a++)
            for (int c = 0; c < N_IN; c++)
                hand[a * N_IN + c] = c == b ? x[a] : 0;
        dv_check(t, "② W₁ chain", F_DHDW1, W1, hand, true);
    }
    int rc = !hand || tg_tape_error(tape) ? dv_fail(t, tape, "∂h/∂W₁ tape") : 0;
    free(hand);
    tg_tape_free(tape);
    return rc;
}

/* ∂L/∂X⁽¹⁾ and ∂L/∂h from the chain ∂L/∂z·∂z/∂X⁽¹⁾·∂X⁽¹⁾/∂h, with the
 * batch's 1/m: per sample (rows) G/m and (G ⊙ 1*)/m, compared transposed
 * with the tape's n×m X⁽¹⁾ and h. */
static void check_chain(dv_table *t, const net *nt, const double *G)
{
    int m = nt->m;
    const double *h = tg_data_f64(nt->h);
    double *g = scratch((size_t)N_IN * (size_t)m);
    if (!g) {
        dv_fail(t, NULL, "out of memory");
        return;
    }
    for (int b = 0; b < N_IN; b++)
        for (int j = 0; j < m; j++)
            g[b * m + j] = G[j * N_IN + b] / m;
    dv_check(t, "② W₁ chain", F_DLDX1, nt->X1, g, true);
    for (int b = 0; b < N_IN; b++)
        for (int j = 0; j < m; j++)
            g[b * m + j] = h[b * m + j] > 0 ? G[j * N_IN + b] / m : 0;
    dv_check(t, "② W₁ chain", F_DLDH, nt->h, g, true);
    free(g);
}

/* The document's ∂L/∂W₁ = ((Ŷ − Y)W₂ᵀX⁽¹⁾*)/m + (λ/m)W₁ with G = (Ŷ−Y)ᵀW₂ᵀ
 * [m×n] and X⁽¹⁾* [m×n]; the product needs one transpose:
 *   hidden_by_input: out[b,i] = Σⱼ G[j,b] X*[j,i]/m + (λ/m)W₁[b,i]  (GᵀX*)
 *   otherwise:       out[i,b] = Σⱼ X*[j,i] G[j,b]/m + (λ/m)W₁[i,b]  (X*ᵀG)
 * Both are n×n only because the hidden layer has n units. */
static void doc_dw1(const net *nt, const double *G, const double *Xs, double lambda,
                    bool hidden_by_input, double *out)
{
    const double *W1 = tg_data_f64(nt->W1);
    int m = nt->m;
    for (int r = 0; r < N_IN; r++)
        for (int c = 0; c < N_IN; c++) {
            int b = hidden_by_input ? r : c, i = hidden_by_input ? c : r;
            double s = 0;
            for (int j = 0; j < m; j++)
                s += G[j * N_IN + b] * Xs[j * N_IN + i];
            out[r * N_IN + c] = s / m + lambda / m * W1[r * N_IN + c];
        }
}

/* The document's ∂L/∂b₁ = ((Ŷ − Y)·W₂ᵀ·1*)/n: G ⊙ 1*, summed over the
 * batch (the only way to get an n-vector), divided by `div`. */
static void doc_db1(const net *nt, const double *G, double div, double *out)
{
    const double *h = tg_data_f64(nt->h);
    int m = nt->m;
    for (int b = 0; b < N_IN; b++) {
        out[b] = 0;
        for (int j = 0; j < m; j++)
            out[b] += h[b * m + j] > 0 ? G[j * N_IN + b] : 0;
        out[b] /= div;
    }
}

/* The corrected gradients for the tape's network: corrected_grads() on the
 * draw (index_form: h = W₁X⁽⁰⁾ + b₁ is the same network with W₁ᵀ in place
 * of W₁, so ∂L/∂W₁ comes out transposed). */
static int corrected_for(const draw_values *v, double lambda, bool index_form, mlp *g)
{
    mlp p = v->p;
    double *w1t = NULL;
    if (mlp_alloc(g, N_IN, N_IN, N_CLS))
        return -1;
    if (index_form) {
        if (!(w1t = scratch((size_t)N_IN * N_IN)))
            return -1;
        dv_transpose(v->p.W1, w1t, N_IN, N_IN);
        p.W1 = w1t;
    }
    double L = corrected_grads(&p, v->X, v->labels, v->m, lambda, g);
    if (index_form) {
        dv_transpose(g->W1, w1t, N_IN, N_IN);
        memcpy(g->W1, w1t, (size_t)N_IN * N_IN * sizeof *w1t);
    }
    free(w1t);
    return isnan(L) ? -1 : 0;
}

/* Rows for ∂L/∂W₁ (and ∂L/∂b₁ when `with_b1`) on one batch tape. */
static int check_w1(dv_table *t, const draw_values *v, const net *nt, double lambda,
                    bool index_form, bool with_b1)
{
    size_t mn = (size_t)nt->m * N_IN;
    double *D = scratch((size_t)N_CLS * (size_t)nt->m), *G = scratch(mn), *Xs = scratch(mn);
    double *g = scratch((size_t)N_IN * N_IN), b1[N_IN];
    mlp fix = {0};
    int rc = 0;
    if (!D || !G || !Xs || !g || corrected_for(v, lambda, index_form, &fix)) {
        rc = dv_fail(t, NULL, "out of memory");
        goto out;
    }
    yhat_minus_y(nt, D);
    doc_G(nt, D, G);
    doc_X1star(nt, Xs);
    if (index_form) {
        doc_dw1(nt, G, Xs, lambda, true, g);
        dv_check(t, "② W₁ (+λ)", F_DW1_IDX, nt->W1, g, false);
        dv_check_fix(t, "② W₁ (+λ)", F_DW1_IDX_FIX, F_DW1_IDX, nt->W1, fix.W1);
    } else if (lambda == 0) {
        doc_dw1(nt, G, Xs, 0, false, g);
        dv_check(t, "② W₁", F_DW1_0, nt->W1, g, false);
        dv_check_fix(t, "② W₁", F_DW1_0_FIX, F_DW1_0, nt->W1, fix.W1);
    } else {
        check_chain(t, nt, G);
        doc_dw1(nt, G, Xs, lambda, true, g);
        dv_check(t, "② W₁ (+λ)", F_DW1_HI, nt->W1, g, false);
        doc_dw1(nt, G, Xs, lambda, false, g);
        dv_check(t, "② W₁ (+λ)", F_DW1_IH, nt->W1, g, false);
        dv_check_fix(t, "② W₁ (+λ)", F_DW1_FIX, F_DW1_IH, nt->W1, fix.W1);
    }
    if (with_b1) {
        doc_db1(nt, G, N_IN, b1);
        dv_check(t, "② b₁", F_DB1, nt->b1, b1, false);
        dv_check_fix(t, "② b₁", F_DB1_FIX, F_DB1, nt->b1, fix.b1);
    }
out:
    mlp_free(&fix);
    free(D);
    free(G);
    free(Xs);
    free(g);
    return rc;
}

/* Build a batch tape and confirm that its L is the document's L. */
static int open_batch(dv_table *t, net *nt, const draw_values *v, double lambda,
                      bool index_form)
{
    mlp p = v->p;
    double *w1t = scratch((size_t)N_IN * N_IN);
    int rc = 0;
    if (!w1t || build(nt, v, v->X, v->Y, v->m, lambda, index_form)) {
        rc = dv_fail(t, nt->tape, "batch network");
    } else {
        if (index_form) { /* the same network as W₁ᵀ in the matrix form */
            dv_transpose(v->p.W1, w1t, N_IN, N_IN);
            p.W1 = w1t;
        }
        if (!same_loss(nt, &p, v->X, v->labels, lambda))
            rc = dv_fail(t, NULL, "batch tape's L differs from the document's L");
    }
    free(w1t);
    return rc;
}

/* ① with m samples and L2 (W₂, b₂), then ②'s ∂L/∂z = Ŷ − Y. */
static int check_batch_output(dv_table *t, const net *nt, double lambda)
{
    size_t count = tg_size(nt->z);
    double *D = scratch(count), *g = scratch(count);
    if (!D || !g) {
        free(D);
        free(g);
        return dv_fail(t, NULL, "out of memory");
    }
    yhat_minus_y(nt, D);
    check_w2_b2_batch(t, nt, D, lambda);
    dv_check(t, "② W₁ chain", F_DLDZ_2, nt->z, D, false); /* ② writes Ŷ − Y */
    for (size_t i = 0; i < count; i++)
        g[i] = D[i] / nt->m;
    dv_check_fix(t, "② W₁ chain", F_DLDZ_2_FIX, F_DLDZ_2, nt->z, g);
    free(D);
    free(g);
    return 0;
}

/* The draw's rows in the document's order: ① one sample; ① m samples with
 * L2; ②'s chain; ② ∂L/∂W₁ without, then with the L2 term, and ∂L/∂b₁; last
 * ∂L/∂W₁ on the index-form network h = W₁X⁽⁰⁾ + b₁. */
static int run_draw(dv_table *t, int d)
{
    draw_values v;
    net main = {0}, plain = {0}, index = {0};
    int rc = draw(&v, d) ? dv_fail(t, NULL, "out of memory") : 0;
    rc = rc ? rc : part1_single(t, &v);
    rc = rc ? rc : check_penalty(t, &v);
    rc = rc ? rc : open_batch(t, &main, &v, v.lambda, false);
    rc = rc ? rc : check_batch_output(t, &main, v.lambda);
    rc = rc ? rc : check_dz_dx1(t, &main);
    rc = rc ? rc : check_dx1_dh(t, &main);
    rc = rc ? rc : check_dh_dw1(t, &v, d);
    rc = rc ? rc : open_batch(t, &plain, &v, 0, false); /* before "加上正则项" */
    rc = rc ? rc : check_w1(t, &v, &plain, 0, false, false);
    rc = rc ? rc : check_w1(t, &v, &main, v.lambda, false, true);
    rc = rc ? rc : open_batch(t, &index, &v, v.lambda, true);
    rc = rc ? rc : check_w1(t, &v, &index, v.lambda, true, false);
    tg_tape_free(main.tape);
    tg_tape_free(plain.tape);
    tg_tape_free(index.tape);
    seed004_values_free(&v);
    return rc;
}

static void explain(dv_table *t)
{
    dv_explain(t, F_SOFTMAX_2, "labels swapped: at j = t the line before the cases gives "
                               "ŷₜ(1 − ŷₜ); −ŷₜŷⱼ is the entry for j ≠ t");
    const char *w2t = "(ŷ − y)x⁽ⁱ⁾ᵀ is K×n, the layout of W₂ᵀ (zⱼ = Σᵢ Wⱼ,ᵢxᵢ); W₂ is n×K: "
                      "the text lacks a ᵀ";
    dv_explain(t, F_DW2, w2t);
    dv_explain(t, F_DW2_L, "(Ŷ − Y)X⁽¹⁾ is K×n, the layout of W₂ᵀ, and the (λ/m)W₂ added to it "
                           "is n×K: the text lacks a ᵀ");
    dv_explain(t, F_DB2_L, "(Ŷ − Y)/m is K×m, ∂L/∂z per sample; b₂ is shared by the m samples, "
                           "so ∂L/∂b₂ sums the columns");
    dv_explain(t, F_CASES, "labels swapped: the case giving ŷₜ(1 − ŷₜ), ŷₜ − 1 is j = t; "
                           "−ŷₜŷⱼ, ŷⱼ is j ≠ t");
    dv_explain(t, F_BRACKET, "typo: entry t is ŷₜ − 1, not ŷ_{t−1}; read literally the "
                             "vector is just ŷ");
    dv_explain(t, F_DW2_MID, "drops the 1/m of the mean loss on the data term (the last "
                             "line has it)");
    dv_explain(t, F_DLDZ_2, "for L = (1/m)ΣLoss + L₂ it is (Ŷ − Y)/m; the document applies "
                            "the 1/m at the end");
    const char *mask = "masks input feature i by hidden unit i's hᵢ > 0; the mask belongs "
                       "to the hidden index (n×n hides it)";
    dv_explain(t, F_DW1_0, mask);
    dv_explain(t, F_DW1_IH, mask);
    dv_explain(t, F_DW1_IDX, mask);
    dv_explain(t, F_DW1_HI, "hidden×input is W₁ᵀ's layout (h = W₁ᵀX⁽⁰⁾): taken as W₁ it swaps "
                            "X⁽⁰⁾ and (Ŷ−Y)ᵀW₂ᵀ; as W₁ᵀ, as below");
    dv_explain(t, F_DB1, "divides by n = 256 (features) instead of the batch size m of "
                         "L = (1/m)ΣLoss");
}

static int run(dv_table *t, int draws)
{
    if (dv_draws(t, draws, run_draw))
        return -1;
    explain(t);
    return 0;
}

const seed_example seed_relu_softmax_l2 = {
    "004", "relu_softmax_l2",
    "256-256-10 ReLU/softmax MLP, samples as columns, L = (1/m)ΣCE + λ/2m Σ‖Wᵢ‖²", run,
    seed004_network};
