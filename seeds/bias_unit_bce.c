/* Seed 003: 反向传播 BACKPROPAGATION 详细推导教程 (Dezeming Family, 2021),
 * backpropagation in Andrew Ng's notation.
 *
 * The document's network, samples as COLUMNS x⁽ᵇ⁾ (b = 1..m), L = 4 layers:
 *   a⁽¹⁾ = x                         3 features                       (1.1.1)
 *   z⁽ˡ⁺¹⁾ = Θ⁽ˡ⁾ a⁽ˡ⁾                a⁽ˡ⁾ with the bias unit a₀⁽ˡ⁾ = 1 on top,
 *                                    Θ⁽ˡ⁾ is S_{l+1} × (S_l + 1), column 0
 *                                    multiplies a₀ (2.2.3)     (1.1.2)-(1.1.6)
 *   a⁽ˡ⁺¹⁾ = g(z⁽ˡ⁺¹⁾)                g = sigmoid everywhere, also on the output
 *   h_Θ(x) = a⁽⁴⁾                    K = 3 classes, y⁽ᵇ⁾ one-hot        (1.1.7)
 *   J(Θ) = −(1/m) Σ_b Σ_k [y log h + (1 − y) log(1 − h)]                (1.2.5)
 *          + λ/(2m) Σ_l Σ_{i≥1} Σ_j (Θ⁽ˡ⁾_ji)²   (bias column not penalised) (1.2.6)
 * The hidden widths S₂, S₃ are not given: several (unequal) ones per draw.
 *
 * §2 drops the sample index and writes J(Θ) for the cost of ONE sample,
 * J⁽ᵇ⁾ (2.2.2)/(2.4.1); §3 averages: D = (1/m) Σ_b Δ(x⁽ᵇ⁾) (3.1.2).  Both
 * costs are on the tape: `sum_jb` = Σ_b J⁽ᵇ⁾ (its gradient with respect to
 * column b of any z⁽ˡ⁾ or a⁽ˡ⁾ is exactly ∂J⁽ᵇ⁾/∂z⁽ˡ⁾ of that sample: the
 * other samples do not depend on it), and `data` = (1/m) Σ_b J⁽ᵇ⁾.  The
 * per-sample gradient of a weight, Δ(x⁽ᵇ⁾), needs a tape with one sample.
 *
 * Every formula of §2-§3 is computed below in plain loops from the forward
 * values on the tape, literally as written, and compared with the tape.
 * Local derivatives (g′, ∂z/∂Θ, ∂z⁽ˡ⁺¹⁾/∂z⁽ˡ⁾, ∂z⁽ˡ⁺¹⁾/∂a⁽ˡ⁾) are compared
 * through backward passes seeded on the op output (vector-Jacobian products).
 *
 * Index convention (the document's (1.2.3)/(1.3.2) Θ_ji, (2.2.3), (2.5.5),
 * (3.1.3)): Θ⁽ˡ⁾₍j,i₎ is row j (unit j of layer l+1), column i (unit i of
 * layer l, i = 0 the bias unit).  In C, unit j ≥ 1 is row j − 1 of z, a, δ;
 * column i of Θ is i (the bias column is 0, so no shift there).  The text
 * copy garbles the Θ subscripts of (2.2.7)/(2.2.8) to "Θᵢᵢ"; they are read
 * as (1.3.2)'s Θⱼᵢ with this meaning, in every row.  §2.2 then pairs the
 * indices the other way round (z unit i, a unit j), and (2.2.5) is the same
 * slip on one element: the rows as written fail, the corrected ones hold.
 */
#include "derivation.h"
#include "nets.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum {
    L = SEED003_L,
    N_IN = SEED003_IN,
    K = SEED003_K,
    MAX_S = SEED003_MAX_S,
    MAX_M = SEED003_MAX_M,
    MAX_AUG = SEED003_MAX_AUG,
};

/* Hidden widths (S₂, S₃) and batch size m per draw, cycled.  Draw 0 has
 * S₃ = 3 (the picture behind (2.3.3)) and S₃ < S₂ (where (2.5.3)'s range
 * matters), so even `--draws 1` exercises every row; draw 1 has S₃ > K. */
static const struct {
    int s2, s3, m;
} shapes[] = {{5, 3, 4}, {2, 4, 3}, {4, 3, 2}, {3, 5, 5}, {6, 3, 3}, {4, 2, 4}};

/* One draw: sizes, λ, inputs, one-hot targets and parameters; the network
 * on a tape and the op outputs whose gradients we read (seeds/nets.c). */
typedef seed003_values draw_values;
typedef seed003_net net;

/* The hand-derived δ⁽ˡ⁾ = ∂J⁽ᵇ⁾/∂z⁽ˡ⁾ (the document writes ∂J(Θ)/∂z⁽ˡ⁾),
 * l = 2..L, S_l × m with column b = sample b. */
typedef struct hand {
    double delta[L + 1][MAX_S * MAX_M];
} hand;

/* ---- formula labels (the document's notation) ------------------------- */

static const char *F_G_EXP = "g′(x) = e⁻ˣ/(1 + e⁻ˣ)²  [on z⁽²⁾, z⁽³⁾, z⁽⁴⁾]";
static const char *F_G = "g′(x) = g(x)(1 − g(x))  [on z⁽²⁾, z⁽³⁾, z⁽⁴⁾]";
static const char *F_CHAIN =
    "∂z/∂xⱼ = Σᵢ ∂g/∂yᵢ·∂yᵢ/∂xⱼ [corrected: LHS xᵢ→xⱼ; z=J, yᵢ=zᵢ⁽ˡ⁺¹⁾, xⱼ=aⱼ⁽ˡ⁾]";
static const char *F_225 = "∂J/∂Θ¹₍₁,₂₎ = ∂J/∂z₂²·∂z₂²/∂Θ¹₍₁,₂₎ = ∂J/∂z₂⁽²⁾·a₁⁽¹⁾ [by (2.2.8)]";
static const char *F_225_ZERO =
    "∂J/∂Θ¹₍₁,₂₎ = ∂J/∂z₂²·∂z₂²/∂Θ¹₍₁,₂₎ = ∂J/∂z₂⁽²⁾·0 [by (2.2.3)]";
static const char *F_225_FIX = "∂J/∂Θ¹₍₁,₂₎ = ∂J/∂z₁⁽²⁾·∂z₁⁽²⁾/∂Θ¹₍₁,₂₎ = ∂J/∂z₁⁽²⁾·a₂⁽¹⁾";
static const char *F_227 =
    "∂J/∂Θ⁽ˡ⁾ⱼᵢ = ∂J/∂zᵢ⁽ˡ⁺¹⁾·∂zᵢ⁽ˡ⁺¹⁾/∂Θ⁽ˡ⁾ⱼᵢ = ∂J/∂zᵢ⁽ˡ⁺¹⁾·aⱼ⁽ˡ⁾ [Θᵢᵢ as (1.2.3)'s Θⱼᵢ; "
    "J = J⁽ᵇ⁾; no such unit: 0]";
static const char *F_227_FIX =
    "Δ⁽ˡ⁾₍ⱼ,ᵢ₎(x⁽ᵇ⁾) = ∂J/∂Θ⁽ˡ⁾ⱼᵢ = ∂J/∂zⱼ⁽ˡ⁺¹⁾·aᵢ⁽ˡ⁾ [corrected: z unit j, a unit i; J = J⁽ᵇ⁾]";
static const char *F_ACC = "∂J/∂Θ⁽ˡ⁾ = Σ_b Δ⁽ˡ⁾(x⁽ᵇ⁾) [J of (2.2.1); '多个样本…累加']";
static const char *F_ACC_FIX = "∂J/∂Θ⁽ˡ⁾ = D⁽ˡ⁾ = (1/m) Σ_b Δ⁽ˡ⁾(x⁽ᵇ⁾) [J of (2.2.1)]";
static const char *F_228 =
    "∂zᵢ⁽ˡ⁺¹⁾/∂Θ⁽ˡ⁾ⱼᵢ = aⱼ⁽ˡ⁾ [Θᵢᵢ as (1.2.3)'s Θⱼᵢ; 0 off column i; no such unit: 0]";
static const char *F_228_FIX =
    "∂zⱼ⁽ˡ⁺¹⁾/∂Θ⁽ˡ⁾ⱼᵢ = aᵢ⁽ˡ⁾, 0 for the other rows of Θ⁽ˡ⁾ [corrected: z unit j, a unit i]";
static const char *F_231 = "∂J/∂zᵢ⁽ˡ⁺¹⁾ = ∂J/∂aᵢ⁽ˡ⁺¹⁾ · ∂aᵢ⁽ˡ⁺¹⁾/∂zᵢ⁽ˡ⁺¹⁾  [l+1 = 2..4]";
static const char *F_233 =
    "∂J/∂a₁⁽²⁾ = …+ ∂J/∂z₂⁽³⁾·∂z₃⁽³⁾/∂a₁⁽²⁾ (3rd term as written; each aᵢ⁽²⁾, S₃=3)";
static const char *F_233_FIX = "∂J/∂a₁⁽²⁾ = …+ ∂J/∂z₃⁽³⁾·∂z₃⁽³⁾/∂a₁⁽²⁾ (each aᵢ⁽²⁾, S₃=3)";
static const char *F_243 = "∂J/∂aᵢ⁽ᴸ⁾ = −yᵢ/aᵢ⁽ᴸ⁾ − (−(1−yᵢ))/(1 − aᵢ⁽ᴸ⁾)  [J = J⁽ᵇ⁾]";
static const char *F_245 = "∂aᵢ⁽ᴸ⁾/∂zᵢ⁽ᴸ⁾ = aᵢ⁽ᴸ⁾·(1 − aᵢ⁽ᴸ⁾)";
static const char *F_246_PROD = "∂J/∂zᵢ⁽ᴸ⁾ = (2.4.3)·(2.4.5)  [J = J⁽ᵇ⁾, product form]";
static const char *F_246 = "∂J/∂zᵢ⁽ᴸ⁾ = aᵢ⁽ᴸ⁾ − yᵢ  [J = J⁽ᵇ⁾ of (2.4.1), per sample]";
static const char *F_246_TOT =
    "∂J/∂zᵢ⁽ᴸ⁾ = aᵢ⁽ᴸ⁾ − yᵢ  [read with J = J(Θ) of (1.2.5), m samples; not (2.4.1)'s J]";
static const char *F_246_FIX = "∂J/∂zᵢ⁽ᴸ⁾ = (aᵢ⁽ᴸ⁾ − yᵢ)/m  [for J = J(Θ) of (1.2.5)]";
static const char *F_253 =
    "∂z_d⁽ˡ⁺¹⁾/∂zᵢ⁽ˡ⁾ = Σ_{c=1..S_{l+1}} ∂z_d⁽ˡ⁺¹⁾/∂a_c⁽ˡ⁾·∂a_c⁽ˡ⁾/∂zᵢ⁽ˡ⁾";
static const char *F_253_FIX =
    "∂z_d⁽ˡ⁺¹⁾/∂zᵢ⁽ˡ⁾ = Σ_{c=1..S_l} ∂z_d⁽ˡ⁺¹⁾/∂a_c⁽ˡ⁾·∂a_c⁽ˡ⁾/∂zᵢ⁽ˡ⁾";
static const char *F_254 = "∂z_d⁽ˡ⁺¹⁾/∂zᵢ⁽ˡ⁾ = ∂z_d⁽ˡ⁺¹⁾/∂aᵢ⁽ˡ⁾ · ∂aᵢ⁽ˡ⁾/∂zᵢ⁽ˡ⁾";
static const char *F_255 = "∂z_d⁽ˡ⁺¹⁾/∂aᵢ⁽ˡ⁾ = Θ⁽ˡ⁾₍d,i₎  (i = 0..S_l, bias unit included)";
static const char *F_256 = "∂aᵢ⁽ˡ⁾/∂zᵢ⁽ˡ⁾ = aᵢ⁽ˡ⁾·(1 − aᵢ⁽ˡ⁾)  [hidden l = 2, 3]";
static const char *F_257 = "∂J/∂zᵢ⁽ˡ⁾ = Σ_{d=1..S_{l+1}} (∂J/∂z_d⁽ˡ⁺¹⁾·Θ⁽ˡ⁾₍d,i₎·aᵢ⁽ˡ⁾·(1 − aᵢ⁽ˡ⁾))";
static const char *F_258 = "∂J/∂zᵢ⁽ˡ⁾ = (aᵢ⁽ˡ⁾·(1 − aᵢ⁽ˡ⁾)) Σ_d (∂J/∂z_d⁽ˡ⁺¹⁾·Θ⁽ˡ⁾₍d,i₎)";
static const char *F_259 =
    "[Θ⁽ˡ⁾₍₁,ᵢ₎ … Θ⁽ˡ⁾₍S_{l+1},i₎]·[∂J/∂z_d⁽ˡ⁺¹⁾]_d = ∂J/∂aᵢ⁽ˡ⁾  (i = 0..S_l)";
static const char *F_261 = "∂(λ/2m ΣΣΣ Θ²)/∂Θ⁽ˡ⁾₍j,i₎ = (λ/m)Θ⁽ˡ⁾₍j,i₎ for every i [both 'i ≠ 0']";
static const char *F_261_FIX = "∂(λ/2m ΣΣΣ Θ²)/∂Θ⁽ˡ⁾₍j,i₎ = (λ/m)Θ⁽ˡ⁾₍j,i₎ (i ≠ 0), 0 (i = 0)";
static const char *F_313 = "∂J/∂Θ⁽ˡ⁾₍j,i₎ = D⁽ˡ⁾₍j,i₎ + (λ/m)Θ⁽ˡ⁾₍j,i₎ (i ≠ 0), D⁽ˡ⁾₍j,i₎ (i = 0)";

/* ---- the draw's random values ------------------------------------------ */

static void draw(draw_values *v, int d)
{
    tg_rng rng;
    tg_rng_seed(&rng, 0x003000u + (uint64_t)d);
    int k = d % (int)(sizeof shapes / sizeof *shapes);
    seed003_draw(v, &rng, shapes[k].s2, shapes[k].s3, shapes[k].m);
}

/* The same draw restricted to sample b (m = 1): for Δ(x⁽ᵇ⁾) of (3.1.1). */
static void one_sample(const draw_values *v, int b, draw_values *o)
{
    *o = *v;
    o->m = 1;
    for (int k = 0; k < N_IN; k++)
        o->x[k] = v->x[k * v->m + b];
    for (int k = 0; k < K; k++)
        o->y[k] = v->y[k * v->m + b];
}

/* ---- the network on a tape --------------------------------------------- */

/* The document's forward pass and cost (1.1.1)-(1.2.6), seeds/nets.c. */
static int build(net *n, const draw_values *v, bool probe)
{
    return seed003_build(tg_tape_new(), v, probe, n);
}

/* J(Θ) of (1.2.5)+(1.2.6) in plain loops, to confirm that the tape holds the
 * document's cost (1/m, λ/2m, bias column unpenalised) and not a look-alike. */
static double cost_by_hand(const draw_values *v)
{
    double j = 0, reg = 0;
    for (int b = 0; b < v->m; b++) {
        double a[MAX_AUG] = {1}, z[MAX_S];
        for (int k = 0; k < N_IN; k++)
            a[k + 1] = v->x[k * v->m + b];
        for (int l = 1; l < L; l++) {
            for (int r = 0; r < v->S[l + 1]; r++) {
                z[r] = 0;
                for (int i = 0; i <= v->S[l]; i++)
                    z[r] += v->theta[l][r * (v->S[l] + 1) + i] * a[i];
            }
            for (int r = 0; r < v->S[l + 1]; r++)
                a[r + 1] = 1 / (1 + exp(-z[r]));
        }
        for (int k = 0; k < K; k++) {
            double y = v->y[k * v->m + b], h = a[k + 1];
            j -= y * log(h) + (1 - y) * log(1 - h);
        }
    }
    for (int l = 1; l < L; l++)
        for (int r = 0; r < v->S[l + 1]; r++)
            for (int i = 1; i <= v->S[l]; i++)
                reg += v->theta[l][r * (v->S[l] + 1) + i] * v->theta[l][r * (v->S[l] + 1) + i];
    return j / v->m + v->lambda / (2.0 * v->m) * reg;
}

/* ---- reading the forward values ---------------------------------------- */

/* Flat index of unit i (1-based, as in the document) of sample b in S × m. */
static int ix(const net *n, int i, int b) { return (i - 1) * n->m + b; }

/* aᵢ⁽ˡ⁾ of sample b, i = 0..S_l: a₀ = 1 is the bias unit (1.1.3). */
static double act(const net *n, int l, int i, int b)
{
    return i == 0 ? 1.0 : tg_get(n->a[l], (size_t)ix(n, i, b));
}

/* Θ⁽ˡ⁾₍d,i₎: row d = 1..S_{l+1}, column i = 0..S_l. */
static double th(const net *n, int l, int d, int i)
{
    return tg_get(n->theta[l], (size_t)((d - 1) * (n->S[l] + 1) + i));
}

static double yv(const net *n, int k, int b) { return tg_get(n->y, (size_t)ix(n, k, b)); }

/* ---- backward passes ----------------------------------------------------- */

static int backward_from(net *n, tg_tensor *root)
{
    tg_zero_grad(n->tape);
    return tg_backward(root);
}

static int backward_vjp(net *n, tg_tensor *root, const double *seed)
{
    tg_zero_grad(n->tape);
    return tg_backward_vjp(root, seed);
}

/* Seed of ones on a⁽ˡ⁾ = g(z⁽ˡ⁾): z⁽ˡ⁾'s gradient is then g′(z⁽ˡ⁾) elementwise. */
static int local_backward(net *n, int l)
{
    double ones[MAX_S * MAX_M];
    for (int k = 0; k < n->S[l] * n->m; k++)
        ones[k] = 1;
    return backward_vjp(n, n->a[l], ones);
}

/* ---- the document's backpropagation, by hand ------------------------------ */

/* δ⁽ᴸ⁾ by (2.4.6), then δ⁽ˡ⁾ for l = L−1..2 by (2.5.8); J = J⁽ᵇ⁾ per sample. */
static void backprop_by_hand(const net *n, hand *h)
{
    for (int i = 1; i <= K; i++) /* (2.4.6) ∂J/∂zᵢ⁽ᴸ⁾ = aᵢ⁽ᴸ⁾ − yᵢ */
        for (int b = 0; b < n->m; b++)
            h->delta[L][ix(n, i, b)] = act(n, L, i, b) - yv(n, i, b);
    for (int l = L - 1; l >= 2; l--)
        for (int i = 1; i <= n->S[l]; i++)
            for (int b = 0; b < n->m; b++) {
                double s = 0, a = act(n, l, i, b); /* (2.5.8) */
                for (int d = 1; d <= n->S[l + 1]; d++)
                    s += h->delta[l + 1][ix(n, d, b)] * th(n, l, d, i);
                h->delta[l][ix(n, i, b)] = a * (1 - a) * s;
            }
}

/* Σ_{d=1}^{S_{l+1}} ∂J/∂z_d⁽ˡ⁺¹⁾ Θ⁽ˡ⁾₍d,i₎ for i = 0..S_l: the sum of (2.5.8),
 * written as a matrix product in (2.5.9).  Output (S_l + 1) × m. */
static void theta_t_delta(const net *n, const hand *h, int l, double *g)
{
    for (int i = 0; i <= n->S[l]; i++)
        for (int b = 0; b < n->m; b++) {
            double s = 0;
            for (int d = 1; d <= n->S[l + 1]; d++)
                s += th(n, l, d, i) * h->delta[l + 1][ix(n, d, b)];
            g[i * n->m + b] = s;
        }
}

/* Σ_b Δ⁽ˡ⁾₍ⱼ,ᵢ₎(x⁽ᵇ⁾) with Δ⁽ˡ⁾₍ⱼ,ᵢ₎ = ∂J⁽ᵇ⁾/∂zⱼ⁽ˡ⁺¹⁾ · aᵢ⁽ˡ⁾ ((2.2.7)+(2.2.8)
 * corrected, (3.1.1)): S_{l+1} × (S_l + 1), row j = unit j of layer l+1. */
static void sum_of_Delta(const net *n, const hand *h, int l, double *g)
{
    int cols = n->S[l] + 1;
    for (int j = 1; j <= n->S[l + 1]; j++)
        for (int i = 0; i < cols; i++) {
            double s = 0;
            for (int b = 0; b < n->m; b++)
                s += h->delta[l + 1][ix(n, j, b)] * act(n, l, i, b);
            g[(j - 1) * cols + i] = s;
        }
}

/* (2.2.7)+(2.2.8) as written, Θᵢᵢ read as (1.2.3)'s Θⱼᵢ (row j, column i):
 * entry (j, i) of ∂J/∂Θ⁽ˡ⁾ is Σ_b ∂J⁽ᵇ⁾/∂zᵢ⁽ˡ⁺¹⁾ · aⱼ⁽ˡ⁾, the z unit taken
 * from the column index and the a unit from the row index.  zᵢ⁽ˡ⁺¹⁾ exists
 * for i = 1..S_{l+1} and aⱼ⁽ˡ⁾ for j ≤ S_l; where either is missing the
 * entry is 0. */
static void sum_of_Delta_as_written(const net *n, const hand *h, int l, double *g)
{
    int cols = n->S[l] + 1;
    for (int j = 1; j <= n->S[l + 1]; j++)
        for (int i = 0; i < cols; i++) {
            double s = 0;
            if (i >= 1 && i <= n->S[l + 1] && j <= n->S[l])
                for (int b = 0; b < n->m; b++)
                    s += h->delta[l + 1][ix(n, i, b)] * act(n, l, j, b);
            g[(j - 1) * cols + i] = s;
        }
}

/* ---- §2.1 ---------------------------------------------------------------- */

/* (2.1.2) g′(x) = e⁻ˣ/(1 + e⁻ˣ)² = g(x)(1 − g(x)), on every z⁽ˡ⁾. */
static int check_212(dv_table *t, net *n)
{
    double g_exp[MAX_S * MAX_M], g_g[MAX_S * MAX_M];
    for (int l = 2; l <= L; l++) {
        if (local_backward(n, l))
            return dv_fail(t, n->tape, "(2.1.2) backward");
        const double *z = tg_data_f64(n->z[l]), *a = tg_data_f64(n->a[l]);
        for (int k = 0; k < n->S[l] * n->m; k++) {
            double e = exp(-z[k]);
            g_exp[k] = e / ((1 + e) * (1 + e));
            g_g[k] = a[k] * (1 - a[k]);
        }
        dv_check(t, "(2.1.2)", F_G_EXP, n->z[l], g_exp, true);
        dv_check(t, "(2.1.2)", F_G, n->z[l], g_g, true);
    }
    return 0;
}

/* (2.1.7), its left-hand index corrected to xⱼ, applied to the network:
 * ∂J/∂aⱼ⁽ˡ⁾ = Σᵢ ∂J/∂zᵢ⁽ˡ⁺¹⁾ ∂zᵢ⁽ˡ⁺¹⁾/∂aⱼ⁽ˡ⁾ with ∂zᵢ⁽ˡ⁺¹⁾/∂aⱼ⁽ˡ⁾ = Θ⁽ˡ⁾₍i,j₎,
 * j = 1..S_l (the units a⁽ˡ⁾ = g(z⁽ˡ⁾), not the constant a₀). */
static int check_217(dv_table *t, net *n, const hand *h)
{
    double g[MAX_S * MAX_M];
    if (backward_from(n, n->sum_jb))
        return dv_fail(t, n->tape, "(2.1.7) backward");
    for (int l = 2; l < L; l++) {
        for (int j = 1; j <= n->S[l]; j++)
            for (int b = 0; b < n->m; b++) {
                double s = 0;
                for (int i = 1; i <= n->S[l + 1]; i++)
                    s += h->delta[l + 1][ix(n, i, b)] * th(n, l, i, j);
                g[ix(n, j, b)] = s;
            }
        dv_check(t, "(2.1.7)", F_CHAIN, n->a[l], g, true);
    }
    return 0;
}

/* ---- §2.2: one sample at a time -------------------------------------------- */

/* (2.2.5) on the probe t = Θ⁽¹⁾₍₁,₂₎ and (2.2.7)/(3.1.1) on every Θ⁽ˡ⁾, on a
 * tape holding sample b alone, so that J = J⁽ᵇ⁾ (2.2.2). */
static int check_one_sample(dv_table *t, const draw_values *v, int b)
{
    draw_values o;
    net n = {0};
    hand h;
    double g[MAX_S * MAX_AUG];
    one_sample(v, b, &o);
    if (build(&n, &o, true) || backward_from(&n, n.sum_jb)) {
        int rc = dv_fail(t, n.tape, "one-sample tape");
        tg_tape_free(n.tape);
        return rc;
    }
    backprop_by_hand(&n, &h);
    /* (2.2.5) as written: ∂J/∂z₂⁽²⁾ times ∂z₂⁽²⁾/∂Θ⁽¹⁾₍₁,₂₎, the latter read
     * by (2.2.8) as a₁⁽¹⁾ = x₁, or by (2.2.3) as 0 (Θ₍₁,₂₎ only feeds z₁). */
    g[0] = h.delta[2][ix(&n, 2, 0)] * act(&n, 1, 1, 0);
    dv_check(t, "(2.2.5)", F_225, n.probe, g, false);
    g[0] = h.delta[2][ix(&n, 2, 0)] * 0.0;
    dv_check(t, "(2.2.5)", F_225_ZERO, n.probe, g, false);
    g[0] = h.delta[2][ix(&n, 1, 0)] * act(&n, 1, 2, 0);
    dv_check_fix(t, "(2.2.5)", F_225_FIX, F_225, n.probe, g);
    for (int l = 1; l < L; l++) { /* m = 1: the sum over b is Δ(x⁽ᵇ⁾) itself */
        sum_of_Delta_as_written(&n, &h, l, g);
        dv_check(t, "(2.2.7)+(2.2.8)", F_227, n.theta[l], g, false);
        sum_of_Delta(&n, &h, l, g);
        dv_check_fix(t, "(2.2.7),(3.1.1)", F_227_FIX, F_227, n.theta[l], g);
    }
    tg_tape_free(n.tape);
    return 0;
}

/* "利用多个样本只需要多次计算累加就好了" (§2.2, after (2.2.1)): read as a
 * plain sum of the per-sample gradients, then as (3.1.2)'s average, both
 * against ∂/∂Θ of (2.2.1) = (1.2.5) (the data term, no regulariser). */
static int check_accumulate(dv_table *t, net *n, const hand *h)
{
    double g[MAX_S * MAX_AUG];
    if (backward_from(n, n->data))
        return dv_fail(t, n->tape, "(2.2.1) backward");
    for (int l = 1; l < L; l++) {
        int count = n->S[l + 1] * (n->S[l] + 1);
        sum_of_Delta(n, h, l, g);
        dv_check(t, "§2.2", F_ACC, n->theta[l], g, false);
        for (int k = 0; k < count; k++) /* (3.1.2) D = (1/m) Σ_b Δ */
            g[k] /= n->m;
        dv_check_fix(t, "§2.2,(3.1.2)", F_ACC_FIX, F_ACC, n->theta[l], g);
    }
    return 0;
}

/* (2.2.8): the seed picks one unit u of z⁽ˡ⁺¹⁾ of sample b, so Θ⁽ˡ⁾'s
 * gradient is that unit's row of the Jacobian ∂z_u⁽ˡ⁺¹⁾/∂Θ⁽ˡ⁾.
 *   as written, u = i: ∂zᵢ/∂Θⱼᵢ = aⱼ, i.e. aⱼ⁽ˡ⁾ down column i (rows j), 0
 *     elsewhere (column i exists for i ≤ S_l, aⱼ⁽ˡ⁾ for j ≤ S_l, else 0);
 *   corrected, u = j: ∂zⱼ/∂Θⱼᵢ = aᵢ, i.e. aᵢ⁽ˡ⁾ along row j, 0 elsewhere. */
static int check_228(dv_table *t, net *n)
{
    double seed[MAX_S * MAX_M], lit[MAX_S * MAX_AUG], fix[MAX_S * MAX_AUG];
    for (int l = 1; l < L; l++) {
        int cols = n->S[l] + 1, rows = n->S[l + 1];
        for (int u = 1; u <= rows; u++)
            for (int b = 0; b < n->m; b++) {
                memset(seed, 0, sizeof seed);
                seed[ix(n, u, b)] = 1;
                if (backward_vjp(n, n->z[l + 1], seed))
                    return dv_fail(t, n->tape, "(2.2.8) backward");
                memset(lit, 0, sizeof lit);
                memset(fix, 0, sizeof fix);
                for (int j = 1; j <= rows && u <= n->S[l]; j++)
                    lit[(j - 1) * cols + u] = j <= n->S[l] ? act(n, l, j, b) : 0;
                for (int i = 0; i < cols; i++)
                    fix[(u - 1) * cols + i] = act(n, l, i, b);
                dv_check(t, "(2.2.8)", F_228, n->theta[l], lit, false);
                dv_check_fix(t, "(2.2.8)", F_228_FIX, F_228, n->theta[l], fix);
            }
    }
    return 0;
}

/* ---- §2.3 ---------------------------------------------------------------- */

/* (2.3.1) ∂J/∂z = ∂J/∂a · ∂a/∂z, with ∂J/∂a⁽ᴸ⁾ from (2.4.3) and, for the
 * hidden layers, from the chain rule (2.1.7); ∂a/∂z = a(1 − a) (2.1.2). */
static int check_231(dv_table *t, net *n, const hand *h)
{
    double dja[MAX_AUG * MAX_M], g[MAX_S * MAX_M];
    if (backward_from(n, n->sum_jb))
        return dv_fail(t, n->tape, "(2.3.1) backward");
    for (int l = 2; l <= L; l++) {
        if (l < L)
            theta_t_delta(n, h, l, dja); /* row i = ∂J/∂aᵢ⁽ˡ⁾, row 0 unused */
        for (int i = 1; i <= n->S[l]; i++)
            for (int b = 0; b < n->m; b++) {
                double a = act(n, l, i, b), y = l == L ? yv(n, i, b) : 0;
                double dj = l == L ? -y / a - (-(1 - y)) / (1 - a) : dja[i * n->m + b];
                g[ix(n, i, b)] = dj * (a * (1 - a));
            }
        dv_check(t, "(2.3.1)", F_231, n->z[l], g, true);
    }
    return 0;
}

/* (2.3.3) for a network with S₃ = 3 (the picture): ∂J/∂a₁⁽²⁾ as three terms
 * ∂J/∂z_d⁽³⁾ · ∂z_d⁽³⁾/∂a₁⁽²⁾, ∂z_d⁽³⁾/∂a₁⁽²⁾ = Θ⁽²⁾₍d,1₎ (2.5.5).  Written,
 * the third term pairs ∂J/∂z₂⁽³⁾ with ∂z₃⁽³⁾/∂a₁⁽²⁾.  Applied to every aᵢ⁽²⁾. */
static int check_233(dv_table *t, net *n, const hand *h)
{
    double lit[MAX_S * MAX_M], fix[MAX_S * MAX_M];
    if (n->S[3] != 3)
        return 0;
    if (backward_from(n, n->sum_jb))
        return dv_fail(t, n->tape, "(2.3.3) backward");
    const double *d3 = h->delta[3];
    for (int i = 1; i <= n->S[2]; i++)
        for (int b = 0; b < n->m; b++) {
            double t1 = d3[ix(n, 1, b)] * th(n, 2, 1, i);
            double t2 = d3[ix(n, 2, b)] * th(n, 2, 2, i);
            lit[ix(n, i, b)] = t1 + t2 + d3[ix(n, 2, b)] * th(n, 2, 3, i);
            fix[ix(n, i, b)] = t1 + t2 + d3[ix(n, 3, b)] * th(n, 2, 3, i);
        }
    dv_check(t, "(2.3.3)", F_233, n->a[2], lit, false);
    dv_check_fix(t, "(2.3.3)", F_233_FIX, F_233, n->a[2], fix);
    return 0;
}

/* ---- §2.4: the last layer ------------------------------------------------- */

/* (2.4.3)-(2.4.6) for J = J⁽ᵇ⁾ of (2.4.1) (column b of Σ_b J⁽ᵇ⁾). */
static int check_24(dv_table *t, net *n, const hand *h)
{
    double dja[K * MAX_M], dadz[K * MAX_M], g[K * MAX_M];
    for (int i = 1; i <= K; i++)
        for (int b = 0; b < n->m; b++) {
            double a = act(n, L, i, b), y = yv(n, i, b);
            dja[ix(n, i, b)] = -y / a - (-(1 - y)) / (1 - a); /* (2.4.3) */
            dadz[ix(n, i, b)] = a * (1 - a);                   /* (2.4.5) */
            g[ix(n, i, b)] = dja[ix(n, i, b)] * dadz[ix(n, i, b)];
        }
    if (backward_from(n, n->sum_jb))
        return dv_fail(t, n->tape, "(2.4.3) backward");
    dv_check(t, "(2.4.3)", F_243, n->a[L], dja, true);
    if (local_backward(n, L))
        return dv_fail(t, n->tape, "(2.4.5) backward");
    dv_check(t, "(2.4.5)", F_245, n->z[L], dadz, true);
    if (backward_from(n, n->sum_jb))
        return dv_fail(t, n->tape, "(2.4.6) backward");
    dv_check(t, "(2.4.6)", F_246_PROD, n->z[L], g, true);
    dv_check(t, "(2.4.6)", F_246, n->z[L], h->delta[L], true);
    return 0;
}

/* (2.4.6) read on the cost of all m samples, J(Θ) of (1.2.5)/(2.2.1). */
static int check_246_total(dv_table *t, net *n, const hand *h)
{
    double g[K * MAX_M];
    if (backward_from(n, n->data))
        return dv_fail(t, n->tape, "(1.2.5) backward");
    dv_check(t, "(2.4.6)", F_246_TOT, n->z[L], h->delta[L], false);
    for (int k = 0; k < K * n->m; k++)
        g[k] = h->delta[L][k] / n->m;
    dv_check_fix(t, "(2.4.6)", F_246_FIX, F_246_TOT, n->z[L], g);
    return 0;
}

/* ---- §2.5: the other layers ----------------------------------------------- */

/* One row d of the Jacobians ∂z_d⁽ˡ⁺¹⁾/∂z⁽ˡ⁾ (2.5.3)/(2.5.4) and
 * ∂z_d⁽ˡ⁺¹⁾/∂a⁽ˡ⁾ (2.5.5), per sample: seed ones on row d of z⁽ˡ⁺¹⁾. */
static int check_jacobian_row(dv_table *t, net *n, int l, int d)
{
    double seed[MAX_S * MAX_M] = {0}, lit[MAX_S * MAX_M], fix[MAX_S * MAX_M],
           prod[MAX_S * MAX_M], da[MAX_AUG * MAX_M];
    for (int b = 0; b < n->m; b++)
        seed[ix(n, d, b)] = 1;
    if (backward_vjp(n, n->z[l + 1], seed))
        return dv_fail(t, n->tape, "(2.5.3) backward");
    for (int i = 1; i <= n->S[l]; i++)
        for (int b = 0; b < n->m; b++) {
            double a = act(n, l, i, b), s_lit = 0, s_fix = 0;
            /* ∂a_c⁽ˡ⁾/∂zᵢ⁽ˡ⁾ = [c = i] aᵢ(1 − aᵢ); a_c⁽ˡ⁾ exists for c ≤ S_l only,
             * so the written range 1..S_{l+1} has no term c > S_l either. */
            for (int c = 1; c <= n->S[l + 1] && c <= n->S[l]; c++)
                s_lit += th(n, l, d, c) * (c == i ? a * (1 - a) : 0);
            for (int c = 1; c <= n->S[l]; c++)
                s_fix += th(n, l, d, c) * (c == i ? a * (1 - a) : 0);
            lit[ix(n, i, b)] = s_lit;
            fix[ix(n, i, b)] = s_fix;
            prod[ix(n, i, b)] = th(n, l, d, i) * (a * (1 - a)); /* (2.5.4) */
        }
    for (int i = 0; i <= n->S[l]; i++) /* (2.5.5), i = 0: the bias unit */
        for (int b = 0; b < n->m; b++)
            da[i * n->m + b] = th(n, l, d, i);
    dv_check(t, "(2.5.3)", F_253, n->z[l], lit, false);
    dv_check_fix(t, "(2.5.3)", F_253_FIX, F_253, n->z[l], fix);
    dv_check(t, "(2.5.4)", F_254, n->z[l], prod, true);
    dv_check(t, "(2.5.5)", F_255, n->aug[l], da, true);
    return 0;
}

/* (2.5.6) ∂aᵢ⁽ˡ⁾/∂zᵢ⁽ˡ⁾ = aᵢ⁽ˡ⁾(1 − aᵢ⁽ˡ⁾) for the hidden layers. */
static int check_256(dv_table *t, net *n, int l)
{
    double g[MAX_S * MAX_M];
    if (local_backward(n, l))
        return dv_fail(t, n->tape, "(2.5.6) backward");
    for (int i = 1; i <= n->S[l]; i++)
        for (int b = 0; b < n->m; b++)
            g[ix(n, i, b)] = act(n, l, i, b) * (1 - act(n, l, i, b));
    dv_check(t, "(2.5.6)", F_256, n->z[l], g, true);
    return 0;
}

/* (2.5.7) (sum of products), (2.5.8) (factored) and (2.5.9) (the sum as
 * [Θ₍₁,ᵢ₎ … Θ₍S_{l+1},i₎]·[∂J/∂z⁽ˡ⁺¹⁾], which is ∂J/∂aᵢ⁽ˡ⁾), J = J⁽ᵇ⁾. */
static int check_257(dv_table *t, net *n, const hand *h, int l)
{
    double sum[MAX_S * MAX_M], fac[MAX_S * MAX_M], mat[MAX_AUG * MAX_M];
    if (backward_from(n, n->sum_jb))
        return dv_fail(t, n->tape, "(2.5.7) backward");
    theta_t_delta(n, h, l, mat);
    for (int i = 1; i <= n->S[l]; i++)
        for (int b = 0; b < n->m; b++) {
            double a = act(n, l, i, b), s = 0;
            for (int d = 1; d <= n->S[l + 1]; d++)
                s += h->delta[l + 1][ix(n, d, b)] * th(n, l, d, i) * a * (1 - a);
            sum[ix(n, i, b)] = s;
            fac[ix(n, i, b)] = (a * (1 - a)) * mat[i * n->m + b];
        }
    dv_check(t, "(2.5.7)", F_257, n->z[l], sum, true);
    dv_check(t, "(2.5.8)", F_258, n->z[l], fac, true);
    dv_check(t, "(2.5.9)", F_259, n->aug[l], mat, true);
    return 0;
}

static int check_25(dv_table *t, net *n, const hand *h)
{
    for (int l = 2; l < L; l++)
        for (int d = 1; d <= n->S[l + 1]; d++)
            if (check_jacobian_row(t, n, l, d))
                return -1;
    for (int l = 2; l < L; l++)
        if (check_256(t, n, l) || check_257(t, n, h, l))
            return -1;
    return 0;
}

/* ---- §2.6 and §3.1 -------------------------------------------------------- */

/* (2.6.1) the regulariser's derivative, on the penalty (1.2.6) alone. */
static int check_261(dv_table *t, net *n)
{
    double lit[MAX_S * MAX_AUG], fix[MAX_S * MAX_AUG];
    if (backward_from(n, n->pen))
        return dv_fail(t, n->tape, "(2.6.1) backward");
    for (int l = 1; l < L; l++) {
        int cols = n->S[l] + 1;
        for (int j = 1; j <= n->S[l + 1]; j++)
            for (int i = 0; i < cols; i++) {
                double r = n->lambda / n->m * th(n, l, j, i);
                lit[(j - 1) * cols + i] = r;
                fix[(j - 1) * cols + i] = i != 0 ? r : 0;
            }
        dv_check(t, "(2.6.1)", F_261, n->theta[l], lit, false);
        dv_check_fix(t, "(2.6.1)", F_261_FIX, F_261, n->theta[l], fix);
    }
    return 0;
}

/* (3.1.3) the full gradient of J(Θ) = (1.2.5) + (1.2.6), D from (3.1.2). */
static int check_313(dv_table *t, net *n, const hand *h)
{
    double g[MAX_S * MAX_AUG];
    if (backward_from(n, n->cost))
        return dv_fail(t, n->tape, "(3.1.3) backward");
    for (int l = 1; l < L; l++) {
        int cols = n->S[l] + 1;
        sum_of_Delta(n, h, l, g);
        for (int j = 1; j <= n->S[l + 1]; j++)
            for (int i = 0; i < cols; i++) {
                double *e = &g[(j - 1) * cols + i];
                *e /= n->m; /* D⁽ˡ⁾₍j,i₎ (3.1.2) */
                if (i != 0)
                    *e += n->lambda / n->m * th(n, l, j, i);
            }
        dv_check(t, "(3.1.3)", F_313, n->theta[l], g, true);
    }
    return 0;
}

/* ---- one draw ------------------------------------------------------------ */

static int check_cost(dv_table *t, const net *n, const draw_values *v)
{
    double want = cost_by_hand(v), got = tg_item(n->cost);
    if (fabs(got - want) <= 1e-12 * fabs(want))
        return 0;
    fprintf(stderr, "seed 003: the tape's J(Θ) %.17g differs from (1.2.5)+(1.2.6) %.17g\n", got,
            want);
    t->errors++;
    return -1;
}

/* Every check, in the document's order (the table lists rows in the order
 * they are first met). */
static int run_checks(dv_table *t, net *n, const draw_values *v)
{
    hand h;
    backprop_by_hand(n, &h);
    if (check_212(t, n) || check_217(t, n, &h))
        return -1;
    for (int b = 0; b < v->m; b++)
        if (check_one_sample(t, v, b))
            return -1;
    if (check_accumulate(t, n, &h) || check_228(t, n) || check_231(t, n, &h) ||
        check_233(t, n, &h) || check_24(t, n, &h) || check_246_total(t, n, &h) ||
        check_25(t, n, &h) || check_261(t, n) || check_313(t, n, &h))
        return -1;
    return 0;
}

static int run_draw(dv_table *t, int d)
{
    draw_values v;
    net n = {0};
    int rc;
    draw(&v, d);
    if (build(&n, &v, false))
        rc = dv_fail(t, n.tape, "network");
    else
        rc = check_cost(t, &n, &v) ? -1 : run_checks(t, &n, &v);
    tg_tape_free(n.tape);
    return rc;
}

static void explain(dv_table *t)
{
    dv_explain(t, F_225,
               "Θ¹₍₁,₂₎ multiplies x₂ into z₁⁽²⁾ (2.2.3): the z unit is the row index 1, "
               "the a unit the column 2; swapped here");
    dv_explain(t, F_225_ZERO,
               "Θ¹₍₁,₂₎ does not feed z₂⁽²⁾, so the written chain is 0: it must go through z₁⁽²⁾");
    dv_explain(t, F_227,
               "Θⱼᵢ joins aᵢ⁽ˡ⁾ to zⱼ⁽ˡ⁺¹⁾ ((1.2.3), (2.2.3)): the z unit is j, the a unit i; "
               "(2.2.7)/(2.2.8) swap them (transposed pairing)");
    dv_explain(t, F_228,
               "Θⱼᵢ feeds zⱼ⁽ˡ⁺¹⁾, not zᵢ⁽ˡ⁺¹⁾: ∂zᵢ/∂Θⱼᵢ is 0 for j ≠ i; ∂zⱼ/∂Θⱼᵢ = aᵢ");
    dv_explain(t, F_ACC,
               "(2.2.1) carries 1/m: per-sample gradients are averaged, not summed (off by m)");
    dv_explain(t, F_233,
               "3rd term must be ∂J/∂z₃⁽³⁾ (paired with ∂z₃⁽³⁾/∂a₁⁽²⁾): unit 2 counted twice, 3 lost");
    dv_explain(t, F_246_TOT,
               "a reading, not the text: (2.4.1) defines J for one sample, where a − y holds; "
               "J(Θ) = (1/m)Σ_b J⁽ᵇ⁾ gives (a − y)/m");
    dv_explain(t, F_253,
               "c runs over the units of layer l: up to S_l; with S_{l+1} < S_l the c = i term "
               "of units i > S_{l+1} is missing");
    dv_explain(t, F_261,
               "the bias column i = 0 is not penalised ((1.2.4) sums i ≥ 1): 0 there; the "
               "second case must read i = 0");
}

static int run(dv_table *t, int draws)
{
    if (dv_draws(t, draws, run_draw))
        return -1;
    explain(t);
    return 0;
}

const seed_example seed_bias_unit_bce = {
    "003", "bias_unit_bce",
    "Backprop in Ng's notation: sigmoid MLP, bias unit a₀ = 1 in Θ, cross-entropy + λ/2m L2",
    run, seed003_network};
