/* Seed 002: 批处理反向传播推导 (batched backpropagation, 乔志健, 2019).
 *
 * The document's network, samples as ROWS (n samples, sizes 4-5-3 fixed):
 *   z0 [n×4]                      the input
 *   h0 = sigmod(z0)               the input itself goes through a sigmoid
 *   z1 = h0 × w1 [4×5] + b1       b1 is written n×5 with identical rows
 *   h1 = sigmod(z1)
 *   z2 = h1 × w2 [5×3] + b2       b2 is written n×3 with identical rows
 *   h2 = sigmoid(z2)
 *   L  = 0.5 × Σᵢ Σⱼ (tᵢⱼ − h2ᵢⱼ)²  (½, no 1/n)
 *
 * It derives ∂L/∂h⁽²⁾, ∂L/∂z⁽²⁾, ∂L/∂w⁽²⁾ (element and matrix form),
 * ∂L/∂b⁽²⁾ and ∂L/∂h⁽¹⁾, and stops there (nothing for w⁽¹⁾, b⁽¹⁾).
 * Each formula is computed below in plain loops, literally as written, and
 * compared with the tape's gradient.  The document writes the sigmoid's
 * derivative as z⁽²⁾(1 − z⁽²⁾); it is h⁽²⁾(1 − h⁽²⁾), so every formula
 * built on its ∂L/∂z⁽²⁾ is tested twice: as written (the error propagates)
 * and on the corrected ∂L/∂z⁽²⁾ (the structure is right).
 *
 * The bias "n×3 matrix with b₁ᵢ = bₙᵢ" is read two ways:
 *   A: one bias vector shared by every row (tg_add_bias): ∂L/∂b sums rows;
 *   B: an n×3 matrix of independent entries (tg_add): ∂L/∂bᵢⱼ = ∂L/∂zᵢⱼ.
 */
#include "derivation.h"
#include "nets.h"

#include <math.h>
#include <stdio.h>

enum { N_IN = SEED002_IN, N_HID = SEED002_HID, N_OUT = SEED002_OUT, MAX_N = SEED002_MAX_N };

/* Batch sizes per draw (cycled): n = 1 is included, but not first, so that
 * even `--draws 1` has n > 1 and the two bias readings differ. */
static const int batch_sizes[] = {4, 1, 7, 2, 3, 10, 5, 16};

/* One draw's values, and the network on a tape (seeds/nets.c). */
typedef seed002_values draw_values;
typedef seed002_net net;

/* ---- formula labels (the document's notation) ------------------------- */

static const char *F_DLDH2 = "∂L/∂h⁽²⁾ = h⁽²⁾ − t";
static const char *F_DHDZ = "∂h⁽²⁾/∂z⁽²⁾ = z⁽²⁾(1 − z⁽²⁾)";
static const char *F_DHDZ_FIX = "∂h⁽²⁾/∂z⁽²⁾ = h⁽²⁾(1 − h⁽²⁾)";
static const char *F_DLDZ2 = "∂L/∂z⁽²⁾ = (h⁽²⁾ − t) · [z⁽²⁾(1 − z⁽²⁾)]  (· elementwise)";
static const char *F_DLDZ2_FIX = "∂L/∂z⁽²⁾ = (h⁽²⁾ − t) ⊙ h⁽²⁾(1 − h⁽²⁾)";
static const char *F_DW_ELEM =
    "∂L/∂w₁₁⁽²⁾ = Σᵢ ∂L/∂zᵢ₁⁽²⁾hᵢ₁⁽¹⁾ etc.: ∂L/∂wⱼₖ = Σᵢ ∂L/∂zᵢₖhᵢⱼ [doc's ∂L/∂z]";
static const char *F_DW_ELEM_FIX =
    "∂L/∂wⱼₖ⁽²⁾ = Σᵢ ∂L/∂zᵢₖ⁽²⁾ hᵢⱼ⁽¹⁾  [on corrected ∂L/∂z⁽²⁾]";
static const char *F_DW = "∂L/∂w⁽²⁾ = (h⁽¹⁾)ᵀ × ∂L/∂z⁽²⁾  [on doc's ∂L/∂z⁽²⁾]";
static const char *F_DW_FIX = "∂L/∂w⁽²⁾ = (h⁽¹⁾)ᵀ × ∂L/∂z⁽²⁾  [on corrected ∂L/∂z⁽²⁾]";
static const char *F_DB_A = "∂L/∂bⱼ⁽²⁾ = Σᵢ ∂L/∂zᵢⱼ⁽²⁾ (3×1)  [A: shared b⁽²⁾; on doc's ∂L/∂z⁽²⁾]";
static const char *F_DB_A_FIX =
    "∂L/∂bⱼ⁽²⁾ = Σᵢ ∂L/∂zᵢⱼ⁽²⁾ (3×1)  [A: shared b⁽²⁾; on corrected ∂L/∂z⁽²⁾]";
static const char *F_DB_B =
    "∂L/∂bᵢⱼ⁽²⁾ = Σₖ ∂L/∂zₖⱼ⁽²⁾ (same every row)  [B: n×3 free b⁽²⁾; corr. ∂L/∂z]";
static const char *F_DB_B_FIX = "∂L/∂bᵢⱼ⁽²⁾ = ∂L/∂zᵢⱼ⁽²⁾  [B: n×3 free b⁽²⁾; on corrected ∂L/∂z⁽²⁾]";
static const char *F_DH1 = "∂L/∂h⁽¹⁾ = ∂L/∂z⁽²⁾ × (w⁽²⁾)ᵀ  [on doc's ∂L/∂z⁽²⁾]";
static const char *F_DH1_FIX = "∂L/∂h⁽¹⁾ = ∂L/∂z⁽²⁾ × (w⁽²⁾)ᵀ  [on corrected ∂L/∂z⁽²⁾]";

/* ---- plain matrix helpers (row-major) --------------------------------- */

/* C [m×p] = A [m×k] × B [k×p] */
static void mat_mul(const double *a, const double *b, double *c, int m, int k, int p)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < p; j++) {
            double s = 0;
            for (int l = 0; l < k; l++)
                s += a[i * k + l] * b[l * p + j];
            c[i * p + j] = s;
        }
}

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* ---- the draw's random values ------------------------------------------ */

static void draw(draw_values *v, int d)
{
    tg_rng rng;
    tg_rng_seed(&rng, 0x002000u + (uint64_t)d);
    seed002_draw(v, &rng, batch_sizes[d % (int)(sizeof batch_sizes / sizeof *batch_sizes)]);
}

/* ---- the network on a tape --------------------------------------------- */

/* Build the document's forward pass (seeds/nets.c) and run backward from L.
 * full_bias: reading B, the biases n×d matrices of free entries. */
static int build(net *m, const draw_values *v, bool full_bias)
{
    if (seed002_build(tg_tape_new(), v, full_bias, m))
        return -1;
    return tg_backward(m->loss);
}

/* The same forward pass in plain loops: L, to confirm that the tape holds
 * the document's network (input sigmoid, ½, no 1/n) and not a look-alike. */
static double loss_by_hand(const draw_values *v)
{
    double l = 0;
    for (int i = 0; i < v->n; i++) {
        double h0[N_IN], h1[N_HID];
        for (int k = 0; k < N_IN; k++)
            h0[k] = sigmoid(v->z0[i * N_IN + k]);
        for (int j = 0; j < N_HID; j++) {
            double z = v->b1[j];
            for (int k = 0; k < N_IN; k++)
                z += h0[k] * v->w1[k * N_HID + j];
            h1[j] = sigmoid(z);
        }
        for (int j = 0; j < N_OUT; j++) {
            double z = v->b2[j];
            for (int k = 0; k < N_HID; k++)
                z += h1[k] * v->w2[k * N_OUT + j];
            double e = v->t[i * N_OUT + j] - sigmoid(z);
            l += 0.5 * e * e;
        }
    }
    return l;
}

/* ---- the document's formulas ------------------------------------------- */

/* ∂L/∂h⁽²⁾ = [h⁽²⁾ᵢⱼ − tᵢⱼ]ₙₓ₃ */
static void dl_dh2(const net *m, int n, double *g)
{
    const double *h = tg_data_f64(m->h2), *t = tg_data_f64(m->t);
    for (int i = 0; i < n * N_OUT; i++)
        g[i] = h[i] - t[i];
}

/* ∂L/∂z⁽²⁾ = ∂L/∂h⁽²⁾ · ∂h⁽²⁾/∂z⁽²⁾, "·" elementwise.  As written the
 * second factor is [z⁽²⁾ᵢⱼ(1 − z⁽²⁾ᵢⱼ)]; corrected it is h⁽²⁾ᵢⱼ(1 − h⁽²⁾ᵢⱼ). */
static void dl_dz2(const net *m, int n, bool as_written, double *g)
{
    const double *z = tg_data_f64(m->z2), *h = tg_data_f64(m->h2);
    dl_dh2(m, n, g);
    for (int i = 0; i < n * N_OUT; i++)
        g[i] *= as_written ? z[i] * (1 - z[i]) : h[i] * (1 - h[i]);
}

/* ∂L/∂w₁₁⁽²⁾ = Σᵢ ∂L/∂zᵢ₁⁽²⁾ hᵢ₁⁽¹⁾ and "以此类推" (and so on): the only
 * generalisation that fits the shapes, ∂L/∂wⱼₖ = Σᵢ ∂L/∂zᵢₖ hᵢⱼ. */
static void dl_dw2_elem(const net *m, int n, const double *dz, double *g)
{
    const double *h1 = tg_data_f64(m->h1);
    for (int j = 0; j < N_HID; j++)
        for (int k = 0; k < N_OUT; k++) {
            double s = 0;
            for (int i = 0; i < n; i++)
                s += dz[i * N_OUT + k] * h1[i * N_HID + j];
            g[j * N_OUT + k] = s;
        }
}

/* ∂L/∂w⁽²⁾ = (h⁽¹⁾)ᵀ [5×n] × ∂L/∂z⁽²⁾ [n×3] */
static void dl_dw2_matrix(const net *m, int n, const double *dz, double *g)
{
    double h1t[N_HID * MAX_N];
    dv_transpose(tg_data_f64(m->h1), h1t, n, N_HID);
    mat_mul(h1t, dz, g, N_HID, n, N_OUT);
}

/* ∂L/∂b⁽²⁾ = [Σᵢ ∂L/∂zᵢⱼ⁽²⁾]ⱼ, a 3×1 column of column sums. */
static void dl_db2(int n, const double *dz, double *g)
{
    for (int j = 0; j < N_OUT; j++) {
        g[j] = 0;
        for (int i = 0; i < n; i++)
            g[j] += dz[i * N_OUT + j];
    }
}

/* ∂L/∂h⁽¹⁾ = ∂L/∂z⁽²⁾ [n×3] × (w⁽²⁾)ᵀ [3×5] */
static void dl_dh1(const net *m, int n, const double *dz, double *g)
{
    double w2t[N_OUT * N_HID];
    dv_transpose(tg_data_f64(m->w2), w2t, N_HID, N_OUT);
    mat_mul(dz, w2t, g, n, N_OUT, N_HID);
}

/* ---- the checks -------------------------------------------------------- */

/* ∂h⁽²⁾/∂z⁽²⁾ (the elementwise local derivative): a small tape h = σ(z) on
 * the draw's z⁽²⁾, backward with a grad_output of ones gives σ'(z) in z's grad. */
static int check_local_derivative(dv_table *t, const net *m, int n)
{
    const double *z2 = tg_data_f64(m->z2), *h2 = tg_data_f64(m->h2);
    double ones[MAX_N * N_OUT], hand[MAX_N * N_OUT];
    tg_tape *tape = tg_tape_new();
    tg_tensor *z = tg_leaf_from(tape, TG_PARAM, "z2", TG_F64, 2, (size_t[]){(size_t)n, N_OUT},
                                z2);
    tg_tensor *h = tg_sigmoid(z);
    for (int i = 0; i < n * N_OUT; i++)
        ones[i] = 1;
    if (!h || tg_backward_vjp(h, ones)) {
        int rc = dv_fail(t, tape, "local derivative tape");
        tg_tape_free(tape);
        return rc;
    }
    for (int i = 0; i < n * N_OUT; i++)
        hand[i] = z2[i] * (1 - z2[i]);
    dv_check(t, "eq. ∂L/∂z⁽²⁾", F_DHDZ, z, hand, false);
    for (int i = 0; i < n * N_OUT; i++)
        hand[i] = h2[i] * (1 - h2[i]);
    dv_check_fix(t, "eq. ∂L/∂z⁽²⁾", F_DHDZ_FIX, F_DHDZ, z, hand);
    tg_tape_free(tape);
    return 0;
}

/* Reading A (shared bias vectors): every formula, as written and corrected. */
static void check_reading_a(dv_table *t, const net *m, int n)
{
    double dz_doc[MAX_N * N_OUT], dz[MAX_N * N_OUT], g[MAX_N * N_HID];
    dl_dh2(m, n, g);
    dv_check(t, "eq. ∂L/∂h⁽²⁾", F_DLDH2, m->h2, g, true);
    dl_dz2(m, n, true, dz_doc);
    dv_check(t, "eq. ∂L/∂z⁽²⁾", F_DLDZ2, m->z2, dz_doc, false);
    dl_dz2(m, n, false, dz);
    dv_check_fix(t, "eq. ∂L/∂z⁽²⁾", F_DLDZ2_FIX, F_DLDZ2, m->z2, dz);

    dl_dw2_elem(m, n, dz_doc, g);
    dv_check(t, "eq. ∂L/∂w₁₁⁽²⁾", F_DW_ELEM, m->w2, g, false);
    dl_dw2_elem(m, n, dz, g);
    dv_check_fix(t, "eq. ∂L/∂w₁₁⁽²⁾", F_DW_ELEM_FIX, F_DW_ELEM, m->w2, g);
    dl_dw2_matrix(m, n, dz_doc, g);
    dv_check(t, "eq. ∂L/∂w⁽²⁾", F_DW, m->w2, g, false);
    dl_dw2_matrix(m, n, dz, g);
    dv_check_fix(t, "eq. ∂L/∂w⁽²⁾", F_DW_FIX, F_DW, m->w2, g);

    dl_db2(n, dz_doc, g);
    dv_check(t, "eq. ∂L/∂b⁽²⁾", F_DB_A, m->b2, g, false);
    dl_db2(n, dz, g);
    dv_check_fix(t, "eq. ∂L/∂b⁽²⁾", F_DB_A_FIX, F_DB_A, m->b2, g);

    dl_dh1(m, n, dz_doc, g);
    dv_check(t, "eq. ∂L/∂h⁽¹⁾", F_DH1, m->h1, g, false);
    dl_dh1(m, n, dz, g);
    dv_check_fix(t, "eq. ∂L/∂h⁽¹⁾", F_DH1_FIX, F_DH1, m->h1, g);
}

/* Reading B (b⁽²⁾ an n×3 matrix of free entries): the document's column
 * sums, put in every row of the n×3 gradient, against the per-entry one.
 * Both use the corrected ∂L/∂z⁽²⁾ so that only the bias reading differs. */
static void check_reading_b(dv_table *t, const net *m, int n)
{
    double dz[MAX_N * N_OUT], col[N_OUT], g[MAX_N * N_OUT];
    dl_dz2(m, n, false, dz);
    dl_db2(n, dz, col);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < N_OUT; j++)
            g[i * N_OUT + j] = col[j];
    dv_check(t, "eq. ∂L/∂b⁽²⁾", F_DB_B, m->b2, g, false);
    dv_check_fix(t, "eq. ∂L/∂b⁽²⁾", F_DB_B_FIX, F_DB_B, m->b2, dz);
}

static int run_draw(dv_table *t, int d)
{
    draw_values v;
    net a = {0}, b = {0};
    int rc = 0;
    draw(&v, d);
    if (build(&a, &v, false))
        rc = dv_fail(t, a.tape, "network, reading A");
    else if (build(&b, &v, true))
        rc = dv_fail(t, b.tape, "network, reading B");
    else if (fabs(tg_item(a.loss) - loss_by_hand(&v)) > 1e-12 * fabs(loss_by_hand(&v)) ||
             fabs(tg_item(b.loss) - tg_item(a.loss)) > 1e-12 * fabs(tg_item(a.loss))) {
        fprintf(stderr, "seed 002: the tape's L differs from the document's L\n");
        rc = -1;
        t->errors++;
    } else {
        rc = check_local_derivative(t, &a, v.n); /* first: the table reads in order */
        check_reading_a(t, &a, v.n);
        check_reading_b(t, &b, v.n);
    }
    tg_tape_free(a.tape);
    tg_tape_free(b.tape);
    return rc;
}

static void explain(dv_table *t)
{
    dv_explain(t, F_DHDZ,
               "σ'(z) = σ(z)(1 − σ(z)) = h⁽²⁾(1 − h⁽²⁾): the output h, not the input z");
    dv_explain(t, F_DLDZ2, "uses z⁽²⁾(1 − z⁽²⁾) for ∂h⁽²⁾/∂z⁽²⁾; it is h⁽²⁾(1 − h⁽²⁾)");
    const char *inherits = "right structure, but built on the wrong ∂L/∂z⁽²⁾ (z(1−z) for h(1−h))";
    dv_explain(t, F_DW_ELEM, inherits);
    dv_explain(t, F_DW, inherits);
    dv_explain(t, F_DB_A, inherits);
    dv_explain(t, F_DH1, inherits);
    dv_explain(t, F_DB_B,
               "reading B does not hold: free entries bᵢⱼ get ∂L/∂zᵢⱼ, no sum over the batch");
}

static int run(dv_table *t, int draws)
{
    if (dv_draws(t, draws, run_draw))
        return -1;
    explain(t);
    return 0;
}

const seed_example seed_batch_sigmoid_mlp = {
    "002", "batch_sigmoid_mlp",
    "Batched backprop, 4-5-3 sigmoid MLP, samples as rows, L = ½ΣΣ(t − h)²", run,
    seed002_network};
