/* Seed 000 (Nankai University lab report, "三层 MLP 反向传播"): backpropagation
 * by hand through a three-layer sigmoid MLP whose loss adds a Fisher
 * discriminant term on the output, checked formula by formula against the
 * tape.
 *
 * The network, as the document defines it (§2, §3, §5), one sample a column:
 *   x^Q → y₁ = W₁x + b₁, z₁^P = sigmoid(y₁)        ("input layer",  W₁ P×Q)
 *       → y₂ = W₂z₁ + b₂, z₂^N = sigmoid(y₂)       ("hidden layer", W₂ N×P)
 *       → y^M = W₃z₂ + b₃                          ("output layer", W₃ M×N)
 * A batch is the matrix of those columns, X [Q×n], so y = Wx + b becomes
 * Y = W·X + b·1ᵀ (b a column [rows×1], broadcast over the samples).
 *
 * The document never writes E down.  (1) together with §1's trace
 * derivatives implies (see the errata, docs/errata.md, seed 000)
 *   E = ½ Σ_i ‖y_i − d_i‖² + γ/2 (tr S_w − tr S_b),
 *   S_w = Σ_c Σ_{i∈c} (y_i − m_c)(y_i − m_c)ᵀ,  S_b = Σ_c n_c (m_c − m)(m_c − m)ᵀ,
 * on the output y^M.  The batch matters: m_c and m couple the samples.
 *
 * Every gradient below is computed in plain loops from the forward values
 * (read from the tape) and compared with the tape's gradient by dv_check,
 * which calls tg_check_grad.  Formulas are first taken literally; where the
 * document is wrong or ambiguous each reading is its own row. */
#include "derivation.h"
#include "nets.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAXE SEED000_MAXE /* elements of the largest matrix: dims <= 8, n <= 16 */

/* Layer sizes of one draw (unequal widths), classes and samples.  P = N in
 * configurations 0 and 2: the §5 W₁/b₁ formulas as written contain
 * "(1 − z₁^N)", an N-vector built from the P-vector z₁, which only has a
 * value when P = N.  `single`: class 0 has exactly one sample. */
typedef seed000_cfg cfg;

static const cfg CFGS[] = {
    {5, 4, 4, 3, 3, 9, false},
    {5, 4, 6, 3, 3, 10, true},
    {3, 6, 6, 2, 2, 7, false},
    {4, 6, 3, 4, 4, 11, true},
    {2, 3, 5, 5, 3, 8, false},
};
#define NCFG ((int)(sizeof CFGS / sizeof CFGS[0]))

/* The network on the tape (seeds/nets.c).  With input_layer false the
 * document's last remark applies: x itself is the input layer (no W₁, b₁)
 * and z₁ := x. */
typedef seed000_net net;

/* Forward values as the hand formulas see them: matrices with one sample a
 * column, element (j, i) at [j·n + i]; weights row-major as on the tape. */
typedef struct fwd {
    int Q, P, N, M, C, n;
    double gamma;
    const double *x, *z1, *z2, *y, *d, *W2, *W3;
    const int32_t *lab;
    int nc[MAXE];    /* n_c                                    */
    double mc[MAXE]; /* m_c^M, class c at [c·M + j]             */
    double m[MAXE];  /* m^M, the mean of all outputs            */
} fwd;

/* ------------------------------------------------------------------------ */
/* Building the network                                                     */
/* ------------------------------------------------------------------------ */

static int build(net *nt, const cfg *s, bool input_layer, uint64_t seed)
{
    tg_rng r;
    tg_rng_seed(&r, seed);
    return seed000_build(tg_tape_new(), s, input_layer, &r, nt);
}

/* The reading of E with γ instead of γ/2: ½Σ‖y − d‖² + γ(tr S_w − tr S_b). */
static tg_tensor *gamma_not_half(const net *nt)
{
    return tg_add(nt->sq, tg_scale(nt->fisher, nt->gamma));
}

/* ------------------------------------------------------------------------ */
/* Forward values and class statistics (§1), by hand                        */
/* ------------------------------------------------------------------------ */

/* m_c^M = Σ_{y_k∈c} y_k / n_c,  m^M = Σ_c Σ_{y_k∈c} y_k / Σ_c n_c  (§1). */
static void class_stats(fwd *f)
{
    memset(f->nc, 0, sizeof f->nc);
    memset(f->mc, 0, sizeof f->mc);
    memset(f->m, 0, sizeof f->m);
    for (int i = 0; i < f->n; i++) {
        f->nc[f->lab[i]]++;
        for (int j = 0; j < f->M; j++) {
            f->mc[f->lab[i] * f->M + j] += f->y[j * f->n + i];
            f->m[j] += f->y[j * f->n + i];
        }
    }
    for (int c = 0; c < f->C; c++)
        for (int j = 0; j < f->M; j++)
            f->mc[c * f->M + j] /= f->nc[c];
    for (int j = 0; j < f->M; j++)
        f->m[j] /= f->n;
}

static void read_fwd(net *nt, fwd *f)
{
    const cfg *s = &nt->s;
    f->Q = s->Q, f->P = s->P, f->N = s->N, f->M = s->M, f->C = s->C, f->n = s->n;
    f->gamma = nt->gamma;
    f->x = tg_data_f64(nt->x);
    f->z1 = tg_data_f64(nt->z1);
    f->z2 = tg_data_f64(nt->z2);
    f->y = tg_data_f64(nt->y);
    f->d = tg_data_f64(nt->d);
    f->W2 = tg_data_f64(nt->W2);
    f->W3 = tg_data_f64(nt->W3);
    f->lab = tg_data_i32(nt->lab);
    class_stats(f);
}

/* y_{i,j}, m_{c,j} and m_j for sample i, component j (c = class of i). */
static double Y(const fwd *f, int j, int i) { return f->y[j * f->n + i]; }
static double MC(const fwd *f, int j, int i) { return f->mc[f->lab[i] * f->M + j]; }

/* ------------------------------------------------------------------------ */
/* §1: derivatives of the trace terms and (1)                               */
/* ------------------------------------------------------------------------ */

/* ∂tr(S_w)/∂y_{i,j} first line:
 *   2(y_{i,j} − m_{c,j}) + 2 Σ_{y_i∈c} (y_{i,j} − m_{c,j}) · (−1/n_c).
 * The sum reuses i.  fixed_i = false: it runs over the members k of class c
 * (the second term is the path through m_c); fixed_i = true: the summand
 * keeps the sample i, so the sum is n_c equal terms. */
static void dtrsw_line1(const fwd *f, bool fixed_i, double *out)
{
    for (int j = 0; j < f->M; j++)
        for (int i = 0; i < f->n; i++) {
            int c = f->lab[i];
            double sum = 0;
            for (int k = 0; k < f->n; k++)
                if (f->lab[k] == c)
                    sum += fixed_i ? Y(f, j, i) - MC(f, j, i) : Y(f, j, k) - MC(f, j, i);
            out[j * f->n + i] = 2 * (Y(f, j, i) - MC(f, j, i)) + 2 * sum * (-1.0 / f->nc[c]);
        }
}

/* ∂tr(S_w)/∂y_{i,j} = 2(y_{i,j} − m_{c,j}). */
static void dtrsw(const fwd *f, double *out)
{
    for (int j = 0; j < f->M; j++)
        for (int i = 0; i < f->n; i++)
            out[j * f->n + i] = 2 * (Y(f, j, i) - MC(f, j, i));
}

/* ∂tr(S_b)/∂y_{i,j} first line:
 *   2n_c(m_{c,j} − m_j)·(1/n_c) + Σ_{c=1}^C n_c(m_{c,j} − m_j)(−1/Σ_c n_c),
 * the second term (the path through m) with factor `k2`: 1 as written, 2 as
 * the chain rule on a square gives. */
static void dtrsb_line1(const fwd *f, double k2, double *out)
{
    int ntot = 0;
    for (int c = 0; c < f->C; c++)
        ntot += f->nc[c];
    for (int j = 0; j < f->M; j++) {
        double sum = 0;
        for (int c = 0; c < f->C; c++)
            sum += f->nc[c] * (f->mc[c * f->M + j] - f->m[j]) * (-1.0 / ntot);
        for (int i = 0; i < f->n; i++) {
            int nc = f->nc[f->lab[i]];
            out[j * f->n + i] = 2.0 * nc * (MC(f, j, i) - f->m[j]) * (1.0 / nc) + k2 * sum;
        }
    }
}

/* ∂tr(S_b)/∂y_{i,j} = 2(m_{c,j} − m_j). */
static void dtrsb(const fwd *f, double *out)
{
    for (int j = 0; j < f->M; j++)
        for (int i = 0; i < f->n; i++)
            out[j * f->n + i] = 2 * (MC(f, j, i) - f->m[j]);
}

/* (1): ∂E/∂y^M = (y^M − d) + γ(y^M + m^M − 2m_c^M), one column per sample;
 * also the bracket [...] of every §5 formula. */
static void dE_dy(const fwd *f, double *out)
{
    for (int j = 0; j < f->M; j++)
        for (int i = 0; i < f->n; i++) {
            int k = j * f->n + i;
            out[k] = (f->y[k] - f->d[k]) + f->gamma * (f->y[k] + f->m[j] - 2 * MC(f, j, i));
        }
}

/* ------------------------------------------------------------------------ */
/* Matrix helpers for (2)–(8): samples as columns                           */
/* ------------------------------------------------------------------------ */

/* Σ_i a_i b_iᵀ over the batch, i.e. A·Bᵀ: A [r×n], B [c×n], out [r×c]. */
static void sum_outer(const double *a, int r, const double *b, int c, int n, double *out)
{
    for (int p = 0; p < r; p++)
        for (int q = 0; q < c; q++) {
            double s = 0;
            for (int i = 0; i < n; i++)
                s += a[p * n + i] * b[q * n + i];
            out[p * c + q] = s;
        }
}

/* Σ_i a_i over the batch: A [r×n], out [r]. */
static void sum_cols(const double *a, int r, int n, double *out)
{
    for (int p = 0; p < r; p++) {
        out[p] = 0;
        for (int i = 0; i < n; i++)
            out[p] += a[p * n + i];
    }
}

/* Wᵀ·A for every sample: W [r×c] row-major, A [r×n], out [c×n]. */
static void tmatmul(const double *w, int r, int c, const double *a, int n, double *out)
{
    for (int q = 0; q < c; q++)
        for (int i = 0; i < n; i++) {
            double s = 0;
            for (int p = 0; p < r; p++)
                s += w[p * c + q] * a[p * n + i];
            out[q * n + i] = s;
        }
}

/* (5): ∂z/∂y = z ⊙ (1 − z). */
static void sig_local(const double *z, int len, double *out)
{
    for (int k = 0; k < len; k++)
        out[k] = z[k] * (1 - z[k]);
}

static void hadamard(const double *a, const double *b, int len, double *out)
{
    for (int k = 0; k < len; k++)
        out[k] = a[k] * b[k];
}

/* ------------------------------------------------------------------------ */
/* The checks                                                               */
/* ------------------------------------------------------------------------ */

/* §1: the trace derivatives, each against a backward pass from the trace
 * alone, and (1) against the assumed E (and the reading with γ, not γ/2). */
static int check_section1(dv_table *t, net *nt, const fwd *f)
{
    double h[MAXE];
    const char *fixed = "∂tr(S_w)/∂yᵢⱼ = … + 2Σ_{yᵢ∈c}(yᵢⱼ − m_cⱼ)(−1/n_c) [i fixed in Σ]";
    const char *alt = "(1) [if E = ½Σ‖y − d‖² + γ(tr S_w − tr S_b), no ½ on γ]";
    tg_tensor *E_alt = gamma_not_half(nt);
    if (!E_alt)
        return dv_fail(t, nt->tape, "E with γ");
    if (tg_backward(nt->trSw))
        return dv_fail(t, nt->tape, "backward tr S_w");
    dtrsw_line1(f, false, h);
    dv_check(t, "§1 line 1",
             "∂tr(S_w)/∂yᵢⱼ = 2(yᵢⱼ − m_cⱼ) + 2Σ_{yᵢ∈c}(yᵢⱼ − m_cⱼ)(−1/n_c) [Σ's i read as k ∈ c]",
             nt->y, h, true);
    dtrsw_line1(f, true, h);
    dv_check(t, "§1 line 1", fixed, nt->y, h, false);
    dv_explain(t, fixed, "with i fixed the sum is n_c equal terms, −2(yᵢ − m_c), cancelling the "
                         "first: the summed index must be a fresh k ∈ c");
    dtrsw(f, h);
    dv_check(t, "§1 line 2", "∂tr(S_w)/∂yᵢⱼ = 2(yᵢⱼ − m_cⱼ)", nt->y, h, true);

    if (tg_backward(nt->trSb))
        return dv_fail(t, nt->tape, "backward tr S_b");
    dtrsb_line1(f, 1, h);
    dv_check(t, "§1 line 3", "∂tr(S_b)/∂yᵢⱼ = 2n_c(m_cⱼ − mⱼ)/n_c + Σ_c n_c(m_cⱼ − mⱼ)(−1/Σn_c)",
             nt->y, h, true);
    dtrsb_line1(f, 2, h);
    dv_check(t, "§1 line 3", "same, 2nd term with the chain-rule factor 2: 2Σ_c n_c(m_cⱼ − mⱼ)(…)",
             nt->y, h, true);
    dtrsb(f, h);
    dv_check(t, "§1 line 4", "∂tr(S_b)/∂yᵢⱼ = 2(m_cⱼ − mⱼ)", nt->y, h, true);

    dE_dy(f, h);
    if (tg_backward(nt->E))
        return dv_fail(t, nt->tape, "backward E");
    dv_check(t, "§1 (1)", "∂E/∂yᴹ = (yᴹ − d) + γ(yᴹ + mᴹ − 2m_cᴹ) [E = ½Σ‖y−d‖² + γ/2 tr(S_w−S_b)]",
             nt->y, h, true);
    if (tg_backward(E_alt))
        return dv_fail(t, nt->tape, "backward E_alt");
    dv_check(t, "§1 (1)", alt, nt->y, h, false);
    dv_explain(t, alt, "with γ(tr S_w − tr S_b) the Fisher part of ∂E/∂y is 2γ(y + m − 2m_c): "
                       "(1) pins E to γ/2");
    return 0;
}

/* (5), on a small extra tape: the sigmoid alone, y → z, backward with a
 * seed of ones gives diag(∂z/∂y); the hand side is z ⊙ (1 − z) with z the
 * main tape's forward values. */
static int check_local(dv_table *t, const char *where, const char *formula, tg_tensor *pre,
                       tg_tensor *z)
{
    double h[MAXE], ones[MAXE];
    size_t shape[2] = {tg_dim(pre, 0), tg_dim(pre, 1)};
    int len = (int)tg_size(pre);
    tg_tape *tp = tg_tape_new();
    tg_tensor *y = tg_leaf_from(tp, TG_PARAM, "y", TG_F64, 2, shape, tg_data_f64(pre));
    tg_tensor *s = tg_sigmoid(y);
    for (int k = 0; k < len; k++)
        ones[k] = 1;
    if (!s || tg_backward_vjp(s, ones)) {
        dv_fail(t, tp, "sigmoid tape");
        tg_tape_free(tp);
        return -1;
    }
    sig_local(tg_data_f64(z), len, h);
    dv_check(t, where, formula, y, h, true);
    tg_tape_free(tp);
    return 0;
}

/* The chain of §2–§4 for a batch: the per-sample formulas (2)–(8) applied
 * column by column, the weight and bias ones summed over the samples. */
typedef struct chain {
    double d3[MAXE];  /* ∂E/∂y^M, (1)                        [M×n] */
    double gz2[MAXE]; /* ∂E/∂z₂ = W₃ᵀ ∂E/∂y^M, (3)           [N×n] */
    double s2[MAXE];  /* ∂z₂/∂y₂ = z₂ ⊙ (1 − z₂), (5)         [N×n] */
    double d2[MAXE];  /* ∂E/∂z₂ ⊙ ∂z₂/∂y₂                    [N×n] */
    double gz1[MAXE]; /* ∂E/∂z₁ = W₂ᵀ(∂E/∂z₂ ⊙ ∂z₂/∂y₂), (7) [P×n] */
    double s1[MAXE];  /* ∂z₁/∂y₁ = z₁ ⊙ (1 − z₁), (5)         [P×n] */
    double d1[MAXE];  /* ∂E/∂z₁ ⊙ ∂z₁/∂y₁                    [P×n] */
} chain;

static void run_chain(const fwd *f, chain *ch)
{
    int n = f->n;
    dE_dy(f, ch->d3);
    tmatmul(f->W3, f->M, f->N, ch->d3, n, ch->gz2);
    sig_local(f->z2, f->N * n, ch->s2);
    hadamard(ch->gz2, ch->s2, f->N * n, ch->d2);
    tmatmul(f->W2, f->N, f->P, ch->d2, n, ch->gz1);
    sig_local(f->z1, f->P * n, ch->s1);
    hadamard(ch->gz1, ch->s1, f->P * n, ch->d1);
}

/* (6) with ⊙ applied after the product, sample by sample:
 * Σ_i ∂E/∂z_i ⊙ (∂z_i/∂y_i x_iᵀ), the vector ⊙ matrix scaling row p by g_p. */
static void w_hadamard_last(const double *g, const double *s, int r, const double *x, int c,
                            int n, double *out)
{
    memset(out, 0, sizeof(double) * (size_t)(r * c));
    for (int i = 0; i < n; i++)
        for (int p = 0; p < r; p++)
            for (int q = 0; q < c; q++)
                out[p * c + q] += g[p * n + i] * (s[p * n + i] * x[q * n + i]);
}

/* §2 (2)–(4), §3 (5)–(8), §4: against one backward pass from E. */
static int check_sections2to4(dv_table *t, net *nt, const fwd *f, const chain *ch)
{
    double h[MAXE];
    int n = f->n;
    tg_zero_grad(nt->tape);
    if (tg_backward(nt->E))
        return dv_fail(t, nt->tape, "backward E");
    sum_outer(ch->d3, f->M, f->z2, f->N, n, h);
    dv_check(t, "§2 (2)", "∂E/∂W = ∂E/∂yᴹ (xᴺ)ᵀ → W₃, xᴺ = z₂ [Σ over batch: ∂E/∂Y·Xᵀ]", nt->W3, h,
             true);
    dv_check(t, "§2 (3)", "∂E/∂X = Wᵀ ∂E/∂yᴹ → ∂E/∂z₂ = W₃ᵀ ∂E/∂yᴹ [per sample]", nt->z2,
             ch->gz2, true);
    sum_cols(ch->d3, f->M, n, h);
    dv_check(t, "§2 (4)", "∂E/∂bᴹ = ∂E/∂yᴹ → b₃ [Σ over batch]", nt->b3, h, true);
    if (check_local(t, "§3 (5)", "∂zᴹ/∂yᴹ = zᴹ ⊙ (1 − zᴹ) → z₂ (sigmoid alone, grad_output 1)", nt->y2,
                    nt->z2) ||
        check_local(t, "§3 (5), §4", "∂zᴹ/∂yᴹ = zᴹ ⊙ (1 − zᴹ) → z₁ (sigmoid alone, grad_output 1)",
                    nt->y1, nt->z1))
        return -1;
    sum_outer(ch->d2, f->N, f->z1, f->P, n, h);
    dv_check(t, "§3 (6)", "∂E/∂W = ∂E/∂zᴹ ⊙ ∂zᴹ/∂yᴹ (xᴺ)ᵀ → W₂, xᴺ = z₁ [Σ over batch]", nt->W2, h,
             true);
    w_hadamard_last(ch->gz2, ch->s2, f->N, f->z1, f->P, n, h);
    dv_check(t, "§3 (6)", "same read ∂E/∂z ⊙ (∂z/∂y (xᴺ)ᵀ) [⊙ last, per sample, Σ]", nt->W2, h,
             true);
    dv_check(t, "§3 (7)", "∂E/∂X = Wᵀ(∂E/∂zᴹ ⊙ ∂zᴹ/∂yᴹ) → ∂E/∂z₁ [per sample]", nt->z1, ch->gz1,
             true);
    sum_cols(ch->d2, f->N, n, h);
    dv_check(t, "§3 (8)", "∂E/∂bᴹ = ∂E/∂zᴹ ⊙ ∂zᴹ/∂yᴹ → b₂ [Σ over batch]", nt->b2, h, true);
    sum_outer(ch->d1, f->P, f->x, f->Q, n, h);
    dv_check(t, "§4 (6)", "(6) for the input layer → W₁, xᴺ = x [Σ over batch]", nt->W1, h, true);
    sum_cols(ch->d1, f->P, n, h);
    dv_check(t, "§4 (8)", "(8) for the input layer → b₁ [Σ over batch]", nt->b1, h, true);
    return 0;
}

/* §5, hidden layer:  W₃ᵀ[(y − d) + γ(y + m − 2m_c)] ⊙ z₂ ⊙ (1 − u),
 * u = z₂ as the chain rule needs, or z₁ as the W₁/b₁ lines write
 * "(1 − z₁ᴺ)" (only when P = N). */
static void s5_delta2(const fwd *f, const double *u, double *out)
{
    double br[MAXE], g[MAXE];
    dE_dy(f, br);
    tmatmul(f->W3, f->M, f->N, br, f->n, g);
    for (int k = 0; k < f->N * f->n; k++)
        out[k] = g[k] * f->z2[k] * (1 - u[k]);
}

/* §5, input layer:  W₂ᵀ{δ₂} ⊙ z₁ ⊙ (1 − z₁). */
static void s5_delta1(const fwd *f, const double *delta2, double *out)
{
    double g[MAXE];
    tmatmul(f->W2, f->N, f->P, delta2, f->n, g);
    for (int k = 0; k < f->P * f->n; k++)
        out[k] = g[k] * f->z1[k] * (1 - f->z1[k]);
}

/* §5's definition "A ⊙ B = tr(ABᵀ)" applied to W₃ᵀ[…] ⊙ z₂ ⊙ (1 − z₂):
 * per sample g ⊙ z₂ = tr(g z₂ᵀ) = gᵀz₂ is a number α; the next ⊙ has a
 * 1×1 and an N-vector, where tr(ABᵀ) is undefined (1×N), so the most
 * favourable reading, scaling, gives α(1 − z₂), then times z₁ᵀ, Σ. */
static void s5_trace_reading(const fwd *f, double *out)
{
    double br[MAXE], g[MAXE], beta[MAXE];
    int n = f->n;
    dE_dy(f, br);
    tmatmul(f->W3, f->M, f->N, br, n, g);
    for (int i = 0; i < n; i++) {
        double alpha = 0;
        for (int k = 0; k < f->N; k++)
            alpha += g[k * n + i] * f->z2[k * n + i];
        for (int k = 0; k < f->N; k++)
            beta[k * n + i] = alpha * (1 - f->z2[k * n + i]);
    }
    sum_outer(beta, f->N, f->z1, f->P, n, out);
}

static void check_s5_trace(dv_table *t, net *nt, const fwd *f, const double *h_right)
{
    double h[MAXE];
    const char *tr = "∂E/∂W₂ reading ⊙ as §5 defines it: A ⊙ B = tr(ABᵀ) [then α ⊙ v := αv]";
    s5_trace_reading(f, h);
    dv_check(t, "§5 ⊙ def.", tr, nt->W2, h, false);
    dv_explain(t, tr, "tr(ABᵀ) is a scalar (Frobenius product), not the element-wise product of "
                      "(5); W₃ᵀ[…] ⊙ z₂ collapses to a number");
    dv_check_fix(t, "§5 ⊙ def.", "∂E/∂W₂ with ⊙ element-wise, (A ⊙ B)ᵢ = AᵢBᵢ as in (5)", tr,
                 nt->W2, h_right);
}

/* §5 W₁ and b₁: the literal "(1 − z₁ᴺ)" where P = N, then the correction. */
static void check_s5_input(dv_table *t, net *nt, const fwd *f)
{
    double d2[MAXE], d1[MAXE], h[MAXE];
    const char *w1 = "∂E/∂W₁ = W₂ᵀ{W₃ᵀ[…] ⊙ z₂ ⊙ (1 − z₁ᴺ)} ⊙ z₁ ⊙ (1 − z₁)xᵀ [literal; P=N]";
    const char *b1 = "∂E/∂b₁ = W₂ᵀ{W₃ᵀ[…] ⊙ z₂ ⊙ (1 − z₁ᴺ)} ⊙ z₁ ⊙ (1 − z₁) [literal; P=N]";
    const char *why = "inside {} the sigmoid of layer 2 needs z₂ ⊙ (1 − z₂); z₁ᴺ is a typo "
                      "(and is not even an N-vector unless P = N)";
    if (f->P == f->N) {
        s5_delta2(f, f->z1, d2);
        s5_delta1(f, d2, d1);
        sum_outer(d1, f->P, f->x, f->Q, f->n, h);
        dv_check(t, "§5 W₁", w1, nt->W1, h, false);
        dv_explain(t, w1, why);
    }
    s5_delta2(f, f->z2, d2);
    s5_delta1(f, d2, d1);
    sum_outer(d1, f->P, f->x, f->Q, f->n, h);
    dv_check_fix(t, "§5 W₁", "∂E/∂W₁ = W₂ᵀ{W₃ᵀ[…] ⊙ z₂ ⊙ (1 − z₂ᴺ)} ⊙ z₁ ⊙ (1 − z₁)xᵀ", w1,
                 nt->W1, h);
    if (f->P == f->N) {
        s5_delta2(f, f->z1, d2);
        s5_delta1(f, d2, d1);
        sum_cols(d1, f->P, f->n, h);
        dv_check(t, "§5 b₁", b1, nt->b1, h, false);
        dv_explain(t, b1, why);
    }
    s5_delta2(f, f->z2, d2);
    s5_delta1(f, d2, d1);
    sum_cols(d1, f->P, f->n, h);
    dv_check_fix(t, "§5 b₁", "∂E/∂b₁ = W₂ᵀ{W₃ᵀ[…] ⊙ z₂ ⊙ (1 − z₂ᴺ)} ⊙ z₁ ⊙ (1 − z₁)", b1, nt->b1,
                 h);
}

/* §5: the summary formulas, [...] = (y − d) + γ(y + m − 2m_c) from (1),
 * batch sums as in §2–§4.  Same backward pass as check_sections2to4. */
static void check_section5(dv_table *t, net *nt, const fwd *f)
{
    double br[MAXE], d2[MAXE], h[MAXE], w2[MAXE];
    dE_dy(f, br);
    sum_outer(br, f->M, f->z2, f->N, f->n, h);
    dv_check(t, "§5 W₃", "∂E/∂W₃ = [(yᴹ − d) + γ(yᴹ + mᴹ − 2m_cᴹ)](z₂ᴺ)ᵀ [Σ over batch]", nt->W3,
             h, true);
    sum_cols(br, f->M, f->n, h);
    dv_check(t, "§5 b₃", "∂E/∂b₃ = [(yᴹ − d) + γ(yᴹ + mᴹ − 2m_cᴹ)] [Σ over batch]", nt->b3, h, true);
    s5_delta2(f, f->z2, d2);
    sum_outer(d2, f->N, f->z1, f->P, f->n, w2);
    dv_check(t, "§5 W₂", "∂E/∂W₂ = W₃ᵀ[…] ⊙ z₂ ⊙ (1 − z₂)(z₁ᴾ)ᵀ [⊙ element-wise; Σ over batch]",
             nt->W2, w2, true);
    sum_cols(d2, f->N, f->n, h);
    dv_check(t, "§5 b₂", "∂E/∂b₂ = W₃ᵀ[…] ⊙ z₂ ⊙ (1 − z₂) [⊙ element-wise; Σ over batch]", nt->b2,
             h, true);
    check_s5_trace(t, nt, f, w2);
    check_s5_input(t, nt, f);
}

/* §5's last remark: with x itself as the input layer (no W₁, b₁), replace
 * z₁ by x in the W₂ and b₂ formulas.  A second network x^P → z₂ → y. */
static int check_no_input_layer(dv_table *t, const cfg *s, uint64_t seed)
{
    net nt;
    fwd f;
    double d2[MAXE], h[MAXE];
    int rc = build(&nt, s, false, seed);
    if (rc || tg_backward(nt.E)) {
        dv_fail(t, nt.tape, "network without input layer");
        tg_tape_free(nt.tape);
        return -1;
    }
    read_fwd(&nt, &f);
    s5_delta2(&f, f.z2, d2);
    sum_outer(d2, f.N, f.x, f.P, f.n, h);
    dv_check(t, "§5 last line", "x as input layer: ∂E/∂W₂ = W₃ᵀ[…] ⊙ z₂ ⊙ (1 − z₂)xᵀ [z₁ → x]",
             nt.W2, h, true);
    sum_cols(d2, f.N, f.n, h);
    dv_check(t, "§5 last line", "x as input layer: ∂E/∂b₂ = W₃ᵀ[…] ⊙ z₂ ⊙ (1 − z₂)", nt.b2, h,
             true);
    tg_tape_free(nt.tape);
    return 0;
}

static int run_draw(dv_table *t, int draw)
{
    const cfg *s = &CFGS[draw % NCFG];
    uint64_t seed = 0x000F15E7ULL + 1000003ULL * (uint64_t)draw;
    net nt;
    fwd f;
    chain ch;
    if (build(&nt, s, true, seed)) {
        dv_fail(t, nt.tape, "building the network");
        tg_tape_free(nt.tape);
        return -1;
    }
    read_fwd(&nt, &f);
    run_chain(&f, &ch);
    int rc = check_section1(t, &nt, &f);
    if (!rc)
        rc = check_sections2to4(t, &nt, &f, &ch);
    if (!rc)
        check_section5(t, &nt, &f);
    tg_tape_free(nt.tape);
    if (!rc)
        rc = check_no_input_layer(t, s, seed ^ 0x5EEDULL);
    return rc;
}

static int run(dv_table *t, int draws) { return dv_draws(t, draws, run_draw); }

const seed_example seed_fisher_mlp = {
    "000", "fisher_mlp",
    "three-layer sigmoid MLP + Fisher term γ/2(tr S_w − tr S_b), backprop by hand", run,
    seed000_network};
