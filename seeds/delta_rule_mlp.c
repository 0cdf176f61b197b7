/* Seed 001: MLP 与反向传播公式期末复习讲义 (final-review lecture notes: MLP
 * and backpropagation, 2-layer and L-layer, δ notation).
 *
 * The document's network (§1.3, §3.2.1), samples as COLUMN vectors, no biases:
 *   a⁽¹⁾ = X,   a⁽ˡ⁾ = W⁽ˡ⁻¹⁾ z⁽ˡ⁻¹⁾   (l = 2..L)
 *   z⁽ˡ⁾ = h⁽ˡ⁻¹⁾(a⁽ˡ⁾)   (l = 1..L−1),   h⁽⁰⁾ = I,   y = a⁽ᴸ⁾ (no output activation)
 * with W⁽ˡ⁾ of size I_{l+1} × I_l.  The "two-layer network" of §3.1 is the case
 * L = 3: y = W⁽²⁾ h(W⁽¹⁾ X).  A batch of N samples is the matrix X [I₁ × N]
 * and every a⁽ˡ⁾, z⁽ˡ⁾ is [I_l × N] (tg_matmul(W, Z) is W·Z).
 *
 * Two losses appear: (44) E = Σₙ Σᵢ (yₙᵢ − Tₙᵢ)² (batch, no ½), and for one
 * sample §3, §3.1 and (47) E = ½ Σᵢ (yᵢ − tᵢ)².  The gradients of §3 are
 * derived for the second; they are tested against both:
 *   - per sample with ½Σ (rows without a "(44)" tag),
 *   - over a batch with (44) (rows tagged "(44)"): there a factor 2 and a sum
 *     over n appear, and the literal formulas are reported as MISMATCH.
 *
 * Local derivatives (∂y/∂z = W, ∂z/∂a = h'(a), ...) are Jacobians; each is
 * compared as one vector-Jacobian product vᵀJ: the tape is seeded at the
 * output with a random v (tg_backward_vjp), and the document's Jacobian,
 * contracted with the same v in plain C, must equal the tape's gradient of
 * the input.  A wrong Jacobian gives a different vᵀJ for almost every v.
 *
 * Softmax (listed in §3.2.1 among the activations h) is checked as one hidden
 * layer: the δ recursion treats h' element-wise, which softmax is not.
 *
 * A row about "layer l" of §3.2 (where "∀l", and the (44) and Softmax rows
 * on δ⁽ˡ⁾ and W⁽ˡ⁻¹⁾) is compared at every layer it applies to: δ⁽ˡ⁻¹⁾ for
 * l = L..2 (down to δ⁽¹⁾ = ∂E/∂X), W⁽ˡ⁻¹⁾ and ∂a⁽ˡ⁾/∂z⁽ˡ⁻¹⁾ for l = 2..L,
 * ∂z⁽ˡ⁾/∂a⁽ˡ⁾ for the hidden layers.  Each layer adds one comparison per
 * draw, so the count in the TAP output is comparisons, not draws. */
#include "derivation.h"
#include "nets.h"

#include <math.h>
#include <stdbool.h>
#include <stddef.h>

enum { MAXL = SEED001_MAXL, MAXW = 7, MAXN = 5, MAXE = MAXW * MAXW };

typedef seed001_act act;

/* The network on a tape (seeds/nets.c).  Indices follow the document:
 * a[l] = a⁽ˡ⁾, z[l] = z⁽ˡ⁾, W[l] = W⁽ˡ⁾, h[l] = the activation of layer l,
 * i.e. h⁽ˡ⁻¹⁾. */
typedef seed001_net net;

/* ---- formula labels (the document's notation) ------------------------- */

/* Rows that are checked once with sigmoid and once with ReLU hidden layers. */
#define PER_H(s) {s "  [σ]", s "  [ReLU]"}

/* §3.1, two-layer network, one sample, E = ½Σ(y − t)² */
static const char *const F_DY[2] = PER_H("∂E/∂y_{i₃} = y_{i₃} − t_{i₃}");
static const char *const F_DW2[2] = PER_H("∂E/∂W⁽²⁾_{i₃i₂} = (y_{i₃} − t_{i₃}) z⁽²⁾_{i₂}");
static const char *const F_DYDZ[2] = PER_H("∂y_{i₃}/∂z⁽²⁾_{i₂} = W⁽²⁾_{i₃i₂}");
static const char *const F_TYPO[2] =
    PER_H("∂z⁽²⁾_{i₂}/∂z⁽²⁾_{i₂} − h'(a⁽²⁾)  (garbled line, − read as =)");
static const char *const F_DZDA[2] = PER_H("∂z⁽²⁾_{i₂}/∂a⁽²⁾_{i₂} = h'(a⁽²⁾_{i₂})");
static const char *const F_DADW1[2] = PER_H("∂a⁽²⁾_{i₂}/∂W⁽¹⁾_{i₂i₁} = X_{i₁}");
static const char *const F_DW1[2] =
    PER_H("∂E/∂W⁽¹⁾_{i₂i₁} = Σ_{i₃}(y−t)_{i₃} W⁽²⁾_{i₃i₂} h'(a⁽²⁾_{i₂}) X_{i₁}");

/* §3.1 against (44) over a batch */
static const char *const F_B_DY = "∂E/∂y_{i₃} = y_{i₃} − t_{i₃}  [(44), each sample n]";
static const char *const F_B_DY_FIX = "∂E/∂y_{n,i₃} = 2(y_{n,i₃} − T_{n,i₃})  [(44)]";
static const char *const F_B_DW2 = "∂E/∂W⁽²⁾_{i₃i₂} = Σₙ (y_{n,i₃} − T_{n,i₃}) z⁽²⁾_{n,i₂}  [(44)]";
static const char *const F_B_DW2_FIX =
    "∂E/∂W⁽²⁾_{i₃i₂} = 2 Σₙ (y_{n,i₃} − T_{n,i₃}) z⁽²⁾_{n,i₂}  [(44)]";
static const char *const F_B_DW1 = "∂E/∂W⁽¹⁾_{i₂i₁} = Σₙ Σ_{i₃}(y−T) W⁽²⁾_{i₃i₂} h'(a⁽²⁾) X_{n,i₁}  [(44)]";
static const char *const F_B_DW1_FIX =
    "∂E/∂W⁽¹⁾_{i₂i₁} = 2 Σₙ Σ_{i₃}(y−T) W⁽²⁾_{i₃i₂} h'(a⁽²⁾) X_{n,i₁}  [(44)]";

/* §3.2, L-layer network, one sample, E of (47) */
static const char *const F_DL[2] = PER_H("δ⁽ᴸ⁾_{i_L} = ∂E/∂y_{i_L}·∂y_{i_L}/∂a⁽ᴸ⁾_{i_L} = (y−t)_{i_L}");
static const char *const F_REC[2] =
    PER_H("δ⁽ˡ⁻¹⁾_{iₗ₋₁} = Σ_{iₗ}δ⁽ˡ⁾_{iₗ}W⁽ˡ⁻¹⁾_{iₗiₗ₋₁}h'⁽ˡ⁻²⁾(a⁽ˡ⁻¹⁾_{iₗ₋₁})");
static const char *const F_DADZ[2] = PER_H("∂a⁽ˡ⁾_{iₗ}/∂z⁽ˡ⁻¹⁾_{iₗ₋₁} = W⁽ˡ⁻¹⁾_{iₗiₗ₋₁}");
static const char *const F_DZDA_L[2] =
    PER_H("∂z⁽ˡ⁻¹⁾_{iₗ₋₁}/∂a⁽ˡ⁻¹⁾_{iₗ₋₁} = h'⁽ˡ⁻²⁾(a⁽ˡ⁻¹⁾_{iₗ₋₁})");
static const char *const F_DWL[2] = PER_H("∂E/∂W⁽ˡ⁻¹⁾_{iₗiₗ₋₁} = δ⁽ˡ⁾_{iₗ} z⁽ˡ⁻¹⁾_{iₗ₋₁}");

/* §3.2 against (44) over a batch, and against Σₙ(47) = ½·(44) */
static const char *const F_CB_DL = "δ⁽ᴸ⁾ = y − t  [(44), each column n]";
static const char *const F_CB_DL_FIX = "δ⁽ᴸ⁾ₙ = 2(yₙ − Tₙ)  [(44)]";
static const char *const F_CB_REC = "δ⁽ˡ⁻¹⁾ recursion per column n, from δ⁽ᴸ⁾ₙ = 2(yₙ − Tₙ)  [(44)]";
static const char *const F_CB_DW = "∂E/∂W⁽ˡ⁻¹⁾ = Σₙ δ⁽ˡ⁾ₙ z⁽ˡ⁻¹⁾ₙᵀ, δ⁽ᴸ⁾ = y − t  [(44)]";
static const char *const F_CB_DW_FIX = "∂E/∂W⁽ˡ⁻¹⁾ = Σₙ δ⁽ˡ⁾ₙ z⁽ˡ⁻¹⁾ₙᵀ, δ⁽ᴸ⁾ = 2(y − T)  [(44)]";
static const char *const F_CB_DW_HALF =
    "∂E/∂W⁽ˡ⁻¹⁾ = Σₙ δ⁽ˡ⁾ₙ z⁽ˡ⁻¹⁾ₙᵀ, δ⁽ᴸ⁾ = y − t  [E = Σₙ(47) = ½·(44)]";

/* §3.2 with one Softmax hidden layer (the other hidden layers σ) */
static const char *const F_S_DZDA = "∂z⁽ˡ⁾ᵢ/∂a⁽ˡ⁾ᵢ = h'(a⁽ˡ⁾ᵢ) = sᵢ(1 − sᵢ)  [h = Softmax, element-wise]";
static const char *const F_S_DZDA_FIX = "∂z⁽ˡ⁾ᵢ/∂a⁽ˡ⁾ⱼ = sᵢ(δᵢⱼ − sⱼ), J = diag(s) − s sᵀ  [h = Softmax]";
static const char *const F_S_REC = "δ⁽ˡ⁻¹⁾ = Σ_{iₗ} δ⁽ˡ⁾ W⁽ˡ⁻¹⁾ h'⁽ˡ⁻²⁾(a⁽ˡ⁻¹⁾), h'=s(1−s) [Softmax layer]";
static const char *const F_S_REC_FIX = "δ⁽ˡ⁻¹⁾ = Jᵀ Σ_{iₗ} δ⁽ˡ⁾ W⁽ˡ⁻¹⁾, J = diag(s) − s sᵀ  [Softmax layer]";
static const char *const F_S_DW = "∂E/∂W⁽ˡ⁻¹⁾ = δ⁽ˡ⁾ z⁽ˡ⁻¹⁾ on the element-wise δ  [Softmax layer]";
static const char *const F_S_DW_FIX = "∂E/∂W⁽ˡ⁻¹⁾ = δ⁽ˡ⁾ z⁽ˡ⁻¹⁾ on the Jacobian δ  [Softmax layer]";

/* ---- building the network --------------------------------------------- */

static double *val(tg_tensor *x) { return tg_data_f64(x); }

/* A width in 2..MAXW different from `other`, so neighbouring layers differ. */
static size_t draw_width(tg_rng *rng, size_t other)
{
    size_t w;
    do
        w = 2 + (size_t)tg_rng_below(rng, MAXW - 1);
    while (w == other);
    return w;
}

static void draw_widths(net *n, tg_rng *rng)
{
    n->I[0] = 0;
    for (int l = 1; l <= n->L; l++)
        n->I[l] = draw_width(rng, n->I[l - 1]);
}

/* The forward pass redone in plain C from the leaves, E included: the tape
 * must hold exactly the document's network, not a look-alike.  half: ½Σ. */
static bool forward_matches(net *n, bool half)
{
    double z[MAXE], a[MAXE], e = 0, worst = 0;
    size_t N = n->N;
    const double *X = val(n->X);
    for (size_t k = 0; k < n->I[1] * N; k++)
        z[k] = X[k]; /* z⁽¹⁾ = h⁽⁰⁾(a⁽¹⁾) = X */
    for (int l = 2; l <= n->L; l++) {
        const double *W = val(n->W[l - 1]), *tape_a = val(n->a[l]);
        size_t in = n->I[l - 1];
        for (size_t i = 0; i < n->I[l]; i++)
            for (size_t k = 0; k < N; k++) {
                double s = 0; /* a⁽ˡ⁾_{iₗ} = Σ W⁽ˡ⁻¹⁾_{iₗiₗ₋₁} z⁽ˡ⁻¹⁾_{iₗ₋₁} */
                for (size_t j = 0; j < in; j++)
                    s += W[i * in + j] * z[j * N + k];
                a[i * N + k] = s;
                worst = fmax(worst, fabs(s - tape_a[i * N + k]) / fmax(1, fabs(s)));
            }
        for (size_t k = 0; k < N && l < n->L; k++) {
            double m = 0; /* z⁽ˡ⁾ = h⁽ˡ⁻¹⁾(a⁽ˡ⁾) */
            for (size_t i = 0; i < n->I[l]; i++)
                m += exp(a[i * N + k]);
            for (size_t i = 0; i < n->I[l]; i++) {
                double v = a[i * N + k];
                z[i * N + k] = n->h[l] == SEED001_SIGMOID ? 1 / (1 + exp(-v))
                               : n->h[l] == SEED001_RELU  ? fmax(v, 0)
                                                          : exp(v) / m;
            }
        }
    }
    const double *T = val(n->T);
    for (size_t k = 0; k < n->I[n->L] * N; k++)
        e += (a[k] - T[k]) * (a[k] - T[k]); /* Σₙ Σᵢ (yₙᵢ − Tₙᵢ)² */
    e *= half ? 0.5 : 1;
    double tape_e = tg_item(n->E);
    return worst < 1e-12 && fabs(e - tape_e) <= 1e-12 * fabs(e);
}

/* Build §1.3's network on a fresh tape (seeds/nets.c), X, T and every W⁽ˡ⁾
 * drawn from rng, and run backward from E.  half: E = ½ΣΣ(y − T)² (§3,
 * (47)), else (44).  X requires a gradient so that δ⁽¹⁾ = ∂E/∂a⁽¹⁾ = ∂E/∂X
 * can be read. */
static int build(net *n, tg_rng *rng, bool half, dv_table *t)
{
    if (seed001_build(tg_tape_new(), n, rng, half, true) || tg_backward(n->E))
        return dv_fail(t, n->tape, "network forward/backward");
    if (!forward_matches(n, half))
        return dv_fail(t, n->tape, "the tape's forward values differ from the document's network");
    return 0;
}

/* Seed a backward pass at `root` with a random v [tg_size(root)]: afterwards
 * the tape's gradient of each tensor x below root is vᵀ·∂root/∂x. */
static int vjp(tg_tensor *root, tg_rng *rng, double *v)
{
    for (size_t i = 0; i < tg_size(root); i++)
        v[i] = tg_rng_normal(rng);
    tg_zero_grad(tg_tape_of(root)); /* leaves accumulate: start from 0 */
    return tg_backward_vjp(root, v);
}

/* ---- the document's formulas, in plain loops -------------------------- */

/* h'⁽ˡ⁻¹⁾(a⁽ˡ⁾) at flat index e of layer l, read element-wise as the index
 * formulas of §3.1/§3.2.2 do: σ' = σ(1 − σ), ReLU' = [a > 0], h⁽⁰⁾ = I gives 1,
 * and for Softmax the only element-wise reading, ∂zᵢ/∂aᵢ = sᵢ(1 − sᵢ). */
static double hprime(const net *n, int l, size_t e)
{
    if (l == 1)
        return 1;
    double a = val(n->a[l])[e], z = val(n->z[l])[e];
    return n->h[l] == SEED001_RELU ? (a > 0) : z * (1 - z);
}

/* §3.1: ∂E/∂y_{i₃} = c·(y_{i₃} − t_{i₃}), c = 1 as written (½Σ), c = 2 for (44). */
static void dE_dy(const net *n, double c, double *g)
{
    const double *y = val(n->a[n->L]), *T = val(n->T);
    for (size_t k = 0; k < n->I[n->L] * n->N; k++)
        g[k] = c * (y[k] - T[k]);
}

/* §3.1: ∂E/∂W⁽²⁾_{i₃i₂} = (y_{i₃} − t_{i₃}) z⁽²⁾_{i₂}, times c, summed over
 * the samples n of a batch (one term for one sample). */
static void sec31_dW2(const net *n, double c, double *g)
{
    const double *y = val(n->a[3]), *T = val(n->T), *z = val(n->z[2]);
    size_t N = n->N, I2 = n->I[2];
    for (size_t i3 = 0; i3 < n->I[3]; i3++)
        for (size_t i2 = 0; i2 < I2; i2++) {
            double s = 0;
            for (size_t k = 0; k < N; k++)
                s += (y[i3 * N + k] - T[i3 * N + k]) * z[i2 * N + k];
            g[i3 * I2 + i2] = c * s;
        }
}

/* §3.1: ∂E/∂W⁽¹⁾_{i₂i₁} = Σ_{i₃} (y_{i₃} − t_{i₃}) W⁽²⁾_{i₃i₂} h'(a⁽²⁾_{i₂}) X_{i₁},
 * times c, summed over the samples n of a batch. */
static void sec31_dW1(const net *n, double c, double *g)
{
    const double *y = val(n->a[3]), *T = val(n->T), *W2 = val(n->W[2]), *X = val(n->X);
    size_t N = n->N, I1 = n->I[1], I2 = n->I[2];
    for (size_t i2 = 0; i2 < I2; i2++)
        for (size_t i1 = 0; i1 < I1; i1++) {
            double s = 0;
            for (size_t k = 0; k < N; k++)
                for (size_t i3 = 0; i3 < n->I[3]; i3++)
                    s += (y[i3 * N + k] - T[i3 * N + k]) * W2[i3 * I2 + i2] *
                         hprime(n, 2, i2 * N + k) * X[i1 * N + k];
            g[i2 * I1 + i1] = c * s;
        }
}

/* §3.2.2: δ⁽ˡ⁻¹⁾_{iₗ₋₁} = Σ_{iₗ} δ⁽ˡ⁾_{iₗ} W⁽ˡ⁻¹⁾_{iₗiₗ₋₁} h'⁽ˡ⁻²⁾(a⁽ˡ⁻¹⁾_{iₗ₋₁}),
 * column by column.  jacobian: at a Softmax layer use the full Jacobian
 * J = diag(s) − s sᵀ instead of h' (the correction): with g = W⁽ˡ⁻¹⁾ᵀ δ⁽ˡ⁾,
 * δᵢ = Σₖ gₖ sₖ(δₖᵢ − sᵢ) = sᵢ(gᵢ − gᵀs). */
static void delta_down(const net *n, int l, const double *dl, double *dm, bool jacobian)
{
    const double *W = val(n->W[l - 1]);
    size_t N = n->N, Il = n->I[l], Im = n->I[l - 1];
    bool jac = jacobian && l - 1 > 1 && n->h[l - 1] == SEED001_SOFTMAX;
    for (size_t k = 0; k < N; k++) {
        double g[MAXW], gs = 0;
        for (size_t i = 0; i < Im; i++) {
            g[i] = 0;
            for (size_t j = 0; j < Il; j++)
                g[i] += dl[j * N + k] * W[j * Im + i];
        }
        const double *s = jac ? val(n->z[l - 1]) : NULL;
        for (size_t i = 0; jac && i < Im; i++)
            gs += g[i] * s[i * N + k];
        for (size_t i = 0; i < Im; i++)
            dm[i * N + k] = jac ? s[i * N + k] * (g[i] - gs) : g[i] * hprime(n, l - 1, i * N + k);
    }
}

/* δ⁽ᴸ⁾ = c·(y − t) (§3.2.2 with ∂y/∂a⁽ᴸ⁾ = 1 since y = a⁽ᴸ⁾), then the
 * recursion down to δ⁽¹⁾ = ∂E/∂X (h⁽⁰⁾ = I). */
static void all_deltas(const net *n, double c, bool jacobian, double d[][MAXE])
{
    dE_dy(n, c, d[n->L]);
    for (int l = n->L; l >= 2; l--)
        delta_down(n, l, d[l], d[l - 1], jacobian);
}

/* §3.2.3: ∂E/∂W⁽ˡ⁻¹⁾_{iₗiₗ₋₁} = δ⁽ˡ⁾_{iₗ} z⁽ˡ⁻¹⁾_{iₗ₋₁} (summed over the
 * samples n of a batch). */
static void weight_grad(const net *n, int l, const double *dl, double *g)
{
    const double *z = val(n->z[l - 1]);
    size_t N = n->N, Im = n->I[l - 1];
    for (size_t j = 0; j < n->I[l]; j++)
        for (size_t i = 0; i < Im; i++) {
            double s = 0;
            for (size_t k = 0; k < N; k++)
                s += dl[j * N + k] * z[i * N + k];
            g[j * Im + i] = s;
        }
}

/* Compare every ∂E/∂W⁽ˡ⁻¹⁾ (l = 2..L) built on the deltas d with the tape. */
static void check_weights(dv_table *t, const net *n, const char *where, const char *f,
                          const char *fixes, double d[][MAXE], bool right)
{
    double g[MAXE];
    for (int l = 2; l <= n->L; l++) {
        weight_grad(n, l, d[l], g);
        if (fixes)
            dv_check_fix(t, where, f, fixes, n->W[l - 1], g);
        else
            dv_check(t, where, f, n->W[l - 1], g, right);
    }
}

/* ---- §3.1: the two-layer network, one sample -------------------------- */

/* The local derivatives of §3.1, each as vᵀJ on the network's own tape. */
static int two_layer_locals(dv_table *t, net *n, tg_rng *rng, int hi)
{
    double v[MAXE], g[MAXE];
    const double *W2 = val(n->W[2]), *X = val(n->X);
    size_t I1 = n->I[1], I2 = n->I[2];
    /* ∂y_{i₃}/∂z⁽²⁾_{i₂} = W⁽²⁾_{i₃i₂}: (vᵀJ)_{i₂} = Σ_{i₃} v_{i₃} W⁽²⁾_{i₃i₂} */
    if (vjp(n->a[3], rng, v))
        return dv_fail(t, n->tape, "vjp y");
    for (size_t i2 = 0; i2 < I2; i2++) {
        g[i2] = 0;
        for (size_t i3 = 0; i3 < n->I[3]; i3++)
            g[i2] += v[i3] * W2[i3 * I2 + i2];
    }
    dv_check(t, "§3.1", F_DYDZ[hi], n->z[2], g, true);
    /* The garbled line "∂z/∂z − h'(a)" read as ∂z_{i₂}/∂z_{i₂} = h'(a_{i₂}):
     * the tape's ∂z/∂z is the identity, so vᵀJ = v; as written v ⊙ h'(a). */
    if (vjp(n->z[2], rng, v))
        return dv_fail(t, n->tape, "vjp z");
    for (size_t i2 = 0; i2 < I2; i2++)
        g[i2] = v[i2] * hprime(n, 2, i2);
    dv_check(t, "§3.1", F_TYPO[hi], n->z[2], g, false);
    dv_explain(t, F_TYPO[hi], "∂z/∂z is 1, not h'(a): a typo; the next line ∂z/∂a = h'(a) is meant");
    /* ∂z⁽²⁾_{i₂}/∂a⁽²⁾_{i₂} = h'(a⁽²⁾_{i₂}) (diagonal J): (vᵀJ)_{i₂} = v_{i₂} h'(a_{i₂}) */
    dv_check_fix(t, "§3.1", F_DZDA[hi], F_TYPO[hi], n->a[2], g);
    /* ∂a⁽²⁾_{i₂}/∂W⁽¹⁾_{i₂i₁} = X_{i₁} (0 for another row i₂' ≠ i₂):
     * (vᵀJ)_{i₂i₁} = v_{i₂} X_{i₁} */
    if (vjp(n->a[2], rng, v))
        return dv_fail(t, n->tape, "vjp a");
    for (size_t i2 = 0; i2 < I2; i2++)
        for (size_t i1 = 0; i1 < I1; i1++)
            g[i2 * I1 + i1] = v[i2] * X[i1];
    dv_check(t, "§3.1", F_DADW1[hi], n->W[1], g, true);
    return 0;
}

/* Backward from E again, after vjp() reused the tape's gradients. */
static int rerun(dv_table *t, net *n)
{
    tg_zero_grad(n->tape);
    return tg_backward(n->E) ? dv_fail(t, n->tape, "backward from E") : 0;
}

static int two_layer(dv_table *t, int draw, act h)
{
    tg_rng rng;
    tg_rng_seed(&rng, 1000u * (unsigned)draw + 100u + (unsigned)h);
    net n = {.L = 3, .N = 1};
    n.h[2] = h;
    draw_widths(&n, &rng);
    int hi = h == SEED001_RELU, rc = build(&n, &rng, true, t);
    double g[MAXE];
    if (!rc) { /* in the document's order: ∂E/∂W⁽²⁾, the pieces, ∂E/∂W⁽¹⁾ */
        dE_dy(&n, 1, g); /* ∂E/∂y_{i₃} = y_{i₃} − t_{i₃} */
        dv_check(t, "§3.1", F_DY[hi], n.a[3], g, true);
        sec31_dW2(&n, 1, g);
        dv_check(t, "§3.1", F_DW2[hi], n.W[2], g, true);
        rc = two_layer_locals(t, &n, &rng, hi);
    }
    if (!rc && !(rc = rerun(t, &n))) {
        sec31_dW1(&n, 1, g);
        dv_check(t, "§3.1", F_DW1[hi], n.W[1], g, true);
    }
    tg_tape_free(n.tape);
    return rc;
}

/* ---- §3.1 against (44): a batch, no ½ --------------------------------- */

static int two_layer_batch(dv_table *t, int draw)
{
    tg_rng rng;
    tg_rng_seed(&rng, 1000u * (unsigned)draw + 200u);
    net n = {.L = 3, .N = 2 + (size_t)(draw % (MAXN - 1))};
    n.h[2] = draw % 2 ? SEED001_RELU : SEED001_SIGMOID;
    draw_widths(&n, &rng);
    int rc = build(&n, &rng, false, t);
    if (!rc) {
        double g[MAXE];
        dE_dy(&n, 1, g);
        dv_check(t, "(44)+§3.1", F_B_DY, n.a[3], g, false);
        dv_explain(t, F_B_DY, "(44) has no ½: ∂(y−T)²/∂y = 2(y−T); §3.1 differentiates ½Σ(y−t)²");
        dE_dy(&n, 2, g);
        dv_check_fix(t, "(44)+§3.1", F_B_DY_FIX, F_B_DY, n.a[3], g);
        sec31_dW2(&n, 1, g);
        dv_check(t, "(44)+§3.1", F_B_DW2, n.W[2], g, false);
        dv_explain(t, F_B_DW2, "the gradient of (44) is 2Σₙ of §3.1's per-sample ½Σ formula");
        sec31_dW2(&n, 2, g);
        dv_check_fix(t, "(44)+§3.1", F_B_DW2_FIX, F_B_DW2, n.W[2], g);
        sec31_dW1(&n, 1, g);
        dv_check(t, "(44)+§3.1", F_B_DW1, n.W[1], g, false);
        dv_explain(t, F_B_DW1, "the gradient of (44) is 2Σₙ of §3.1's per-sample ½Σ formula");
        sec31_dW1(&n, 2, g);
        dv_check_fix(t, "(44)+§3.1", F_B_DW1_FIX, F_B_DW1, n.W[1], g);
    }
    tg_tape_free(n.tape);
    return rc;
}

/* ---- §3.2: the L-layer network, one sample ---------------------------- */

/* ∂a⁽ˡ⁾/∂z⁽ˡ⁻¹⁾ = W⁽ˡ⁻¹⁾ and ∂z⁽ˡ⁻¹⁾/∂a⁽ˡ⁻¹⁾ = h'⁽ˡ⁻²⁾(a⁽ˡ⁻¹⁾), as vᵀJ per layer. */
static int deep_locals(dv_table *t, net *n, tg_rng *rng, int hi)
{
    double v[MAXE], g[MAXE];
    for (int l = 2; l <= n->L; l++) {
        const double *W = val(n->W[l - 1]);
        size_t Im = n->I[l - 1];
        if (vjp(n->a[l], rng, v)) /* (vᵀJ)_{iₗ₋₁} = Σ_{iₗ} v_{iₗ} W⁽ˡ⁻¹⁾_{iₗiₗ₋₁} */
            return dv_fail(t, n->tape, "vjp a");
        for (size_t i = 0; i < Im; i++) {
            g[i] = 0;
            for (size_t j = 0; j < n->I[l]; j++)
                g[i] += v[j] * W[j * Im + i];
        }
        dv_check(t, "§3.2.2 ∀l", F_DADZ[hi], n->z[l - 1], g, true);
        if (l - 1 < 2)
            continue; /* z⁽¹⁾ = h⁽⁰⁾(a⁽¹⁾) = X: the identity, no op on the tape */
        if (vjp(n->z[l - 1], rng, v)) /* (vᵀJ)_{iₗ₋₁} = v_{iₗ₋₁} h'(a_{iₗ₋₁}) */
            return dv_fail(t, n->tape, "vjp z");
        for (size_t i = 0; i < Im; i++)
            g[i] = v[i] * hprime(n, l - 1, i);
        dv_check(t, "§3.2.2 ∀l", F_DZDA_L[hi], n->a[l - 1], g, true);
    }
    return 0;
}

static int deep(dv_table *t, int draw, act h)
{
    tg_rng rng;
    tg_rng_seed(&rng, 1000u * (unsigned)draw + 300u + (unsigned)h);
    net n = {.L = 4 + draw % 2, .N = 1};
    for (int l = 2; l < n.L; l++)
        n.h[l] = h;
    draw_widths(&n, &rng);
    int hi = h == SEED001_RELU, rc = build(&n, &rng, true, t);
    double d[MAXL + 1][MAXE];
    if (!rc) { /* in the document's order: δ⁽ᴸ⁾, the recursion, its pieces, ∂E/∂W */
        all_deltas(&n, 1, false, d);
        dv_check(t, "§3.2.2", F_DL[hi], n.a[n.L], d[n.L], true);
        for (int l = n.L; l >= 2; l--) /* δ⁽ˡ⁻¹⁾ for l − 1 = L−1 .. 1 */
            dv_check(t, "§3.2.2 ∀l", F_REC[hi], n.a[l - 1], d[l - 1], true);
        rc = deep_locals(t, &n, &rng, hi);
    }
    if (!rc && !(rc = rerun(t, &n)))
        check_weights(t, &n, "§3.2.3 ∀l", F_DWL[hi], NULL, d, true);
    tg_tape_free(n.tape);
    return rc;
}

/* ---- §3.2 against (44) and against Σₙ(47) over a batch ---------------- */

static int deep_batch(dv_table *t, int draw)
{
    tg_rng rng;
    net n = {.L = 5 - draw % 2, .N = 2 + (size_t)((draw + 1) % (MAXN - 1))};
    for (int l = 2; l < n.L; l++)
        n.h[l] = draw % 2 ? SEED001_SIGMOID : SEED001_RELU;
    tg_rng_seed(&rng, 1000u * (unsigned)draw + 400u);
    draw_widths(&n, &rng);
    net half = n; /* the same network and values, loss ½·(44) */
    int rc = build(&n, &rng, false, t);
    tg_rng_seed(&rng, 1000u * (unsigned)draw + 400u);
    draw_widths(&half, &rng);
    rc = rc ? rc : build(&half, &rng, true, t);
    if (!rc) {
        double d[MAXL + 1][MAXE], d2[MAXL + 1][MAXE];
        all_deltas(&n, 1, false, d);  /* as written, δ⁽ᴸ⁾ = y − t       */
        all_deltas(&n, 2, false, d2); /* for (44),   δ⁽ᴸ⁾ = 2(y − T)    */
        dv_check(t, "(44)+§3.2.2", F_CB_DL, n.a[n.L], d[n.L], false);
        dv_explain(t, F_CB_DL, "(44) has no ½: δ⁽ᴸ⁾ = ∂E/∂y = 2(y − T)");
        dv_check_fix(t, "(44)+§3.2.2", F_CB_DL_FIX, F_CB_DL, n.a[n.L], d2[n.L]);
        for (int l = n.L; l >= 2; l--)
            dv_check(t, "(44)+§3.2.2", F_CB_REC, n.a[l - 1], d2[l - 1], true);
        check_weights(t, &n, "(44)+§3.2.3", F_CB_DW, NULL, d, false);
        dv_explain(t, F_CB_DW, "δ⁽ᴸ⁾ lacks (44)'s factor 2, and every δ⁽ˡ⁾ and ∂E/∂W inherit it");
        check_weights(t, &n, "(44)+§3.2.3", F_CB_DW_FIX, F_CB_DW, d2, true);
        all_deltas(&half, 1, false, d);
        check_weights(t, &half, "Σₙ(47)+§3.2.3", F_CB_DW_HALF, NULL, d, true);
    }
    tg_tape_free(n.tape);
    tg_tape_free(half.tape);
    return rc;
}

/* ---- §3.2.1: a Softmax hidden layer ----------------------------------- */

/* ∂z⁽ᵖ⁾/∂a⁽ᵖ⁾ of the Softmax layer p alone, as vᵀJ: element-wise as written,
 * (vᵀJ)ᵢ = vᵢ sᵢ(1 − sᵢ); with the Jacobian, Σₖ vₖ sₖ(δₖᵢ − sᵢ) = sᵢ(vᵢ − vᵀs). */
static int softmax_local(dv_table *t, net *n, int p, tg_rng *rng)
{
    double v[MAXE], g[MAXE], vs = 0;
    if (vjp(n->z[p], rng, v))
        return dv_fail(t, n->tape, "vjp softmax");
    const double *s = val(n->z[p]);
    for (size_t i = 0; i < n->I[p]; i++) {
        g[i] = v[i] * hprime(n, p, i);
        vs += v[i] * s[i];
    }
    dv_check(t, "§3.2.1", F_S_DZDA, n->a[p], g, false);
    dv_explain(t, F_S_DZDA, "softmax is not element-wise: ∂zᵢ/∂aⱼ = −sᵢsⱼ ≠ 0 for i ≠ j");
    for (size_t i = 0; i < n->I[p]; i++)
        g[i] = s[i] * (v[i] - vs);
    dv_check_fix(t, "§3.2.1", F_S_DZDA_FIX, F_S_DZDA, n->a[p], g);
    return 0;
}

static int deep_softmax(dv_table *t, int draw)
{
    tg_rng rng;
    tg_rng_seed(&rng, 1000u * (unsigned)draw + 500u);
    net n = {.L = 5, .N = 1};
    int p = 2 + draw % 3; /* the Softmax layer: z⁽ᵖ⁾ = softmax(a⁽ᵖ⁾) */
    for (int l = 2; l < n.L; l++)
        n.h[l] = l == p ? SEED001_SOFTMAX : SEED001_SIGMOID;
    draw_widths(&n, &rng);
    int rc = build(&n, &rng, true, t);
    if (!rc)
        rc = softmax_local(t, &n, p, &rng);
    if (!rc && !(rc = rerun(t, &n))) {
        double d[MAXL + 1][MAXE], dj[MAXL + 1][MAXE];
        all_deltas(&n, 1, false, d); /* as written: h' element-wise        */
        all_deltas(&n, 1, true, dj); /* corrected: the Jacobian at layer p */
        for (int l = n.L; l >= 2; l--)
            dv_check(t, "§3.2.1+§3.2.2", F_S_REC, n.a[l - 1], d[l - 1], false);
        dv_explain(t, F_S_REC, "softmax's zᵢ depends on every aⱼ: the chain rule needs Σⱼ over J, "
                               "not one diagonal h'");
        for (int l = n.L; l >= 2; l--)
            dv_check_fix(t, "§3.2.1+§3.2.2", F_S_REC_FIX, F_S_REC, n.a[l - 1], dj[l - 1]);
        check_weights(t, &n, "§3.2.1+§3.2.3", F_S_DW, NULL, d, false);
        dv_explain(t, F_S_DW, "∂E/∂W = δz is right, but δ at and below the Softmax layer is wrong");
        check_weights(t, &n, "§3.2.1+§3.2.3", F_S_DW_FIX, F_S_DW, dj, true);
    }
    tg_tape_free(n.tape);
    return rc;
}

/* ---- the table -------------------------------------------------------- */

static int run(dv_table *t, int draws)
{
    int rc = 0;
    for (int d = 0; d < draws && !rc; d++)
        rc = two_layer(t, d, SEED001_SIGMOID) || two_layer(t, d, SEED001_RELU) ||
             two_layer_batch(t, d);
    for (int d = 0; d < draws && !rc; d++)
        rc = deep(t, d, SEED001_SIGMOID) || deep(t, d, SEED001_RELU) || deep_batch(t, d) ||
             deep_softmax(t, d);
    return rc ? -1 : 0;
}

const seed_example seed_delta_rule_mlp = {
    "001", "delta_rule_mlp",
    "MLP backprop in δ notation: 2-layer (§3.1) and L-layer (§3.2), samples as columns, no biases",
    run, seed001_network};
