/* The five seed documents' networks (see nets.h): one builder per seed,
 * used by its derivation check and by `tapegrad dot`. */
#include "nets.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tg_tensor *named(tg_tensor *t, const char *name)
{
    tg_set_name(t, name);
    return t;
}

/* An empty leaf [r×c]. */
static tg_tensor *leaf2(tg_tape *tp, tg_kind kind, const char *name, int r, int c)
{
    return tg_leaf(tp, kind, name, TG_F64, 2, (size_t[]){(size_t)r, (size_t)c});
}

/* A leaf [r×c] holding data (row-major). */
static tg_tensor *leaf2_from(tg_tape *tp, tg_kind kind, const char *name, int r, int c,
                             const double *data)
{
    return tg_leaf_from(tp, kind, name, TG_F64, 2, (size_t[]){(size_t)r, (size_t)c}, data);
}

static void fill_normal(double *x, int count, tg_rng *rng, double sd)
{
    for (int i = 0; i < count; i++)
        x[i] = sd * tg_rng_normal(rng);
}

/* ======================================================================== */
/* Seed 000                                                                 */
/* ======================================================================== */

/* Y = W·X + b for every sample column: b [rows×1] broadcasts over the batch. */
static tg_tensor *affine(tg_tensor *W, tg_tensor *X, tg_tensor *b)
{
    return tg_add(tg_matmul(W, X), b);
}

/* Labels: every class occurs; with `single` class 0 has exactly one sample. */
static void draw_labels(tg_rng *r, const seed000_cfg *s, int32_t *lab)
{
    for (int i = 0; i < s->n; i++) {
        if (i < s->C)
            lab[i] = i;
        else if (s->single)
            lab[i] = 1 + (int32_t)tg_rng_below(r, (uint64_t)s->C - 1);
        else
            lab[i] = (int32_t)tg_rng_below(r, (uint64_t)s->C);
    }
    for (int i = s->n - 1; i > 0; i--) { /* shuffle: classes interleaved */
        int k = (int)tg_rng_below(r, (uint64_t)i + 1);
        int32_t tmp = lab[i];
        lab[i] = lab[k];
        lab[k] = tmp;
    }
}

/* E = ½ Σ_i ‖y_i − d_i‖² + γ/2 (tr S_w − tr S_b).  The class statistics work
 * on rows, so they use yᵀ [n×M]:  Σ_i ‖y_i − m_{c_i}‖² = tr S_w  and
 * Σ_i ‖m_{c_i} − m‖² = Σ_c n_c ‖m_c − m‖² = tr S_b. */
static void fisher_loss(seed000_net *nt)
{
    tg_tape *tp = nt->tape;
    tg_scope_push(tp, "loss");
    nt->sq = named(tg_mse(nt->y, nt->d, TG_SUM | TG_HALF), "½Σ‖y − d‖²");
    tg_scope_push(tp, "fisher");
    tg_tensor *yt = tg_transpose(nt->y);
    tg_tensor *mci =
        named(tg_gather_rows(tg_class_means(yt, nt->lab, nt->s.C), nt->lab), "m_c(i)");
    tg_tensor *dw = tg_sub(yt, mci);
    tg_tensor *db = tg_sub(mci, named(tg_mean_axis(yt, 0, true), "m"));
    nt->trSw = named(tg_trace(tg_matmul_t(dw, dw, true, false)), "tr S_w");
    nt->trSb = named(tg_trace(tg_matmul_t(db, db, true, false)), "tr S_b");
    nt->fisher = tg_sub(nt->trSw, nt->trSb);
    tg_tensor *half = tg_scale(nt->fisher, nt->gamma / 2);
    tg_scope_pop(tp);
    nt->E = named(tg_add(nt->sq, half), "E");
    tg_scope_pop(tp);
}

int seed000_build(tg_tape *tp, const seed000_cfg *s, bool input_layer, tg_rng *r,
                  seed000_net *nt)
{
    memset(nt, 0, sizeof *nt);
    nt->tape = tp;
    nt->s = *s;
    nt->gamma = 0.2 + 1.3 * tg_rng_uniform(r);
    if (!tp)
        return -1;
    int32_t lab[SEED000_MAXE];
    draw_labels(r, s, lab);
    size_t n = (size_t)s->n;
    nt->x = leaf2(tp, TG_INPUT, "x", input_layer ? s->Q : s->P, s->n);
    nt->d = leaf2(tp, TG_INPUT, "d", s->M, s->n);
    nt->lab = tg_leaf_from(tp, TG_INPUT, "labels", TG_I32, 1, &n, lab);
    tg_init_normal(nt->x, r, 0, 1);
    tg_init_uniform(nt->d, r, -1, 1);
    nt->z1 = nt->x;
    if (input_layer) {
        nt->W1 = leaf2(tp, TG_PARAM, "W1", s->P, s->Q);
        nt->b1 = leaf2(tp, TG_PARAM, "b1", s->P, 1);
        tg_init_uniform(nt->W1, r, -1, 1);
        tg_init_uniform(nt->b1, r, -0.5, 0.5);
        tg_scope_push(tp, "input layer");
        nt->y1 = named(affine(nt->W1, nt->x, nt->b1), "y1");
        nt->z1 = named(tg_sigmoid(nt->y1), "z1");
        tg_scope_pop(tp);
    }
    nt->W2 = leaf2(tp, TG_PARAM, "W2", s->N, s->P);
    nt->b2 = leaf2(tp, TG_PARAM, "b2", s->N, 1);
    nt->W3 = leaf2(tp, TG_PARAM, "W3", s->M, s->N);
    nt->b3 = leaf2(tp, TG_PARAM, "b3", s->M, 1);
    tg_init_uniform(nt->W2, r, -1, 1);
    tg_init_uniform(nt->b2, r, -0.5, 0.5);
    tg_init_uniform(nt->W3, r, -1, 1);
    tg_init_uniform(nt->b3, r, -0.5, 0.5);
    tg_scope_push(tp, "hidden layer");
    nt->y2 = named(affine(nt->W2, nt->z1, nt->b2), "y2");
    nt->z2 = named(tg_sigmoid(nt->y2), "z2");
    tg_scope_pop(tp);
    tg_scope_push(tp, "output layer");
    nt->y = named(affine(nt->W3, nt->z2, nt->b3), "y");
    tg_scope_pop(tp);
    fisher_loss(nt);
    return nt->E && !tg_tape_error(tp) ? 0 : -1;
}

tg_tensor *seed000_network(tg_tape *tp, tg_rng *r)
{
    static const seed000_cfg s = {.Q = 4, .P = 5, .N = 4, .M = 3, .C = 3, .n = 6};
    seed000_net nt;
    return seed000_build(tp, &s, true, r, &nt) ? NULL : nt.E;
}

/* ======================================================================== */
/* Seed 001                                                                 */
/* ======================================================================== */

/* h applied to a⁽ˡ⁾ [I_l × N]; softmax normalises the features of each
 * sample, i.e. down each column (the library's softmax runs along rows). */
static tg_tensor *activate(seed001_act h, tg_tensor *a)
{
    switch (h) {
    case SEED001_SIGMOID:
        return tg_sigmoid(a);
    case SEED001_RELU:
        return tg_relu(a);
    case SEED001_SOFTMAX:
        return tg_transpose(tg_softmax(tg_transpose(a)));
    }
    return NULL;
}

int seed001_build(tg_tape *tp, seed001_net *n, tg_rng *rng, bool half, bool x_grad)
{
    n->tape = tp;
    if (!tp)
        return -1;
    size_t sx[2] = {n->I[1], n->N}, st[2] = {n->I[n->L], n->N};
    n->X = tg_input(tp, "X = a(1)", TG_F64, 2, sx);
    n->T = tg_input(tp, "T", TG_F64, 2, st);
    if (x_grad)
        tg_set_requires_grad(n->X, true);
    tg_init_normal(n->X, rng, 0, 1);
    tg_init_normal(n->T, rng, 0, 1);
    n->a[1] = n->z[1] = n->X;
    for (int l = 2; l <= n->L; l++) {
        char wn[32], an[32], zn[32], scope[32];
        snprintf(wn, sizeof wn, "W(%d)", l - 1);
        snprintf(an, sizeof an, l == n->L ? "y = a(%d)" : "a(%d)", l);
        snprintf(zn, sizeof zn, "z(%d)", l);
        snprintf(scope, sizeof scope, "layer %d→%d", l - 1, l);
        size_t sw[2] = {n->I[l], n->I[l - 1]};
        n->W[l - 1] = tg_param(tp, wn, TG_F64, 2, sw);
        tg_init_normal(n->W[l - 1], rng, 0, 1.5 / sqrt((double)n->I[l - 1]));
        tg_scope_push(tp, scope);
        n->a[l] = named(tg_matmul(n->W[l - 1], n->z[l - 1]), an);
        if (l < n->L)
            n->z[l] = named(activate(n->h[l], n->a[l]), zn);
        tg_scope_pop(tp);
    }
    tg_scope_push(tp, "loss");
    n->E = named(tg_mse(n->a[n->L], n->T, half ? TG_SUM | TG_HALF : TG_SUM), "E");
    tg_scope_pop(tp);
    return n->E && !tg_tape_error(tp) ? 0 : -1;
}

tg_tensor *seed001_network(tg_tape *tp, tg_rng *r)
{
    seed001_net n = {.L = 4, .I = {0, 3, 4, 4, 2}, .N = 4};
    for (int l = 2; l < n.L; l++)
        n.h[l] = SEED001_SIGMOID;
    return seed001_build(tp, &n, r, true, false) ? NULL : n.E;
}

/* ======================================================================== */
/* Seed 002                                                                 */
/* ======================================================================== */

void seed002_draw(seed002_values *v, tg_rng *rng, int n)
{
    v->n = n;
    fill_normal(v->z0, n * SEED002_IN, rng, 1.5);
    for (int i = 0; i < n * SEED002_OUT; i++) /* targets in [0,1): sigmoid outputs */
        v->t[i] = tg_rng_uniform(rng);
    fill_normal(v->w1, SEED002_IN * SEED002_HID, rng, 1.0);
    fill_normal(v->b1, SEED002_HID, rng, 0.5);
    fill_normal(v->w2, SEED002_HID * SEED002_OUT, rng, 1.0);
    fill_normal(v->b2, SEED002_OUT, rng, 0.5);
}

/* A bias leaf: the vector b [d], or with `full` the n×d matrix with every
 * row equal to b (the document's picture, b₁ᵢ = bₙᵢ at the start). */
static tg_tensor *bias_leaf(tg_tape *tape, const char *name, const double *b, int d, int n,
                            bool full)
{
    if (!full)
        return tg_leaf_from(tape, TG_PARAM, name, TG_F64, 1, (size_t[]){(size_t)d}, b);
    double m[SEED002_MAX_N * SEED002_HID];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < d; j++)
            m[i * d + j] = b[j];
    return leaf2_from(tape, TG_PARAM, name, n, d, m);
}

static tg_tensor *plus_bias(tg_tensor *x, tg_tensor *b, bool full)
{
    return full ? tg_add(x, b) : tg_add_bias(x, b);
}

int seed002_build(tg_tape *tp, const seed002_values *v, bool full_bias, seed002_net *m)
{
    int n = v->n;
    m->tape = tp;
    if (!tp)
        return -1;
    m->z0 = leaf2_from(tp, TG_INPUT, "z0", n, SEED002_IN, v->z0);
    m->t = leaf2_from(tp, TG_INPUT, "t", n, SEED002_OUT, v->t);
    m->w1 = leaf2_from(tp, TG_PARAM, "w1", SEED002_IN, SEED002_HID, v->w1);
    m->b1 = bias_leaf(tp, "b1", v->b1, SEED002_HID, n, full_bias);
    m->w2 = leaf2_from(tp, TG_PARAM, "w2", SEED002_HID, SEED002_OUT, v->w2);
    m->b2 = bias_leaf(tp, "b2", v->b2, SEED002_OUT, n, full_bias);
    tg_scope_push(tp, "input");
    m->h0 = named(tg_sigmoid(m->z0), "h0"); /* h0 = sigmod(z0) */
    tg_scope_pop(tp);
    tg_scope_push(tp, "layer1");
    m->z1 = named(plus_bias(tg_matmul(m->h0, m->w1), m->b1, full_bias), "z1");
    m->h1 = named(tg_sigmoid(m->z1), "h1");
    tg_scope_pop(tp);
    tg_scope_push(tp, "layer2");
    m->z2 = named(plus_bias(tg_matmul(m->h1, m->w2), m->b2, full_bias), "z2");
    m->h2 = named(tg_sigmoid(m->z2), "h2");
    tg_scope_pop(tp);
    tg_scope_push(tp, "loss");
    m->loss = named(tg_mse(m->h2, m->t, TG_SUM | TG_HALF), "L"); /* 0.5 ΣᵢΣⱼ (t − h)² */
    tg_scope_pop(tp);
    return m->loss && !tg_tape_error(tp) ? 0 : -1;
}

tg_tensor *seed002_network(tg_tape *tp, tg_rng *r)
{
    seed002_values v;
    seed002_net m;
    seed002_draw(&v, r, 4);
    return seed002_build(tp, &v, false, &m) ? NULL : m.loss;
}

/* ======================================================================== */
/* Seed 003                                                                 */
/* ======================================================================== */

void seed003_draw(seed003_values *v, tg_rng *rng, int s2, int s3, int m)
{
    v->S[0] = 0;
    v->S[1] = SEED003_IN;
    v->S[2] = s2;
    v->S[3] = s3;
    v->S[4] = SEED003_K;
    v->m = m;
    v->lambda = 0.3 + 1.2 * tg_rng_uniform(rng);
    for (int l = 1; l < SEED003_L; l++)
        fill_normal(v->theta[l], v->S[l + 1] * (v->S[l] + 1), rng, 0.8);
    fill_normal(v->x, SEED003_IN * m, rng, 1.0);
    memset(v->y, 0, sizeof v->y);
    for (int b = 0; b < m; b++) /* one-hot: class k has y_k⁽ᵇ⁾ = 1 */
        v->y[(int)tg_rng_below(rng, SEED003_K) * m + b] = 1;
}

/* "a⁽ˡ⁾ add bias a₀⁽ˡ⁾ = 1" (1.1.3): the library has no concat, so
 * [1; a] = E0 + P·a with E0 [(S+1)×m] ones in row 0 and zeros elsewhere,
 * and P [(S+1)×S] = [0; I] shifting a down by one row (exact: P holds 0/1). */
static tg_tensor *with_bias_unit(tg_tape *tape, tg_tensor *a, int s, int m, int l)
{
    double e0[SEED003_MAX_AUG * SEED003_MAX_M] = {0}, p[SEED003_MAX_AUG * SEED003_MAX_S] = {0};
    char en[32], pn[32];
    snprintf(en, sizeof en, "E0(%d)", l);
    snprintf(pn, sizeof pn, "P(%d)", l);
    for (int b = 0; b < m; b++)
        e0[b] = 1;
    for (int i = 0; i < s; i++)
        p[(i + 1) * s + i] = 1;
    tg_tensor *E0 = leaf2_from(tape, TG_CONST, en, s + 1, m, e0);
    tg_tensor *P = leaf2_from(tape, TG_CONST, pn, s + 1, s, p);
    return tg_add(E0, tg_matmul(P, a));
}

/* pen + λ/(2m) Σ_{i≥1} Σ_j (Θ_ji)² of layer l (1.2.4) (pen NULL: 0):
 * tg_l2(Θ ⊙ M, λ/m) with a constant mask M that is 0 in the bias column
 * i = 0 ("通常情况下我们并不惩罚 bias 项") and 1 elsewhere. */
static tg_tensor *add_penalty(tg_tape *tape, tg_tensor *pen, tg_tensor *theta, int rows,
                              int cols, double lm, int l)
{
    double mask[SEED003_MAX_S * SEED003_MAX_AUG];
    char mn[32];
    snprintf(mn, sizeof mn, "M(%d)", l);
    for (int j = 0; j < rows; j++)
        for (int i = 0; i < cols; i++)
            mask[j * cols + i] = i == 0 ? 0 : 1;
    tg_scope_push(tape, "loss");
    tg_scope_push(tape, "L2 without bias column");
    tg_tensor *M = leaf2_from(tape, TG_CONST, mn, rows, cols, mask);
    tg_tensor *p = tg_l2(tg_mul(theta, M), lm);
    pen = pen ? tg_add(pen, p) : p;
    tg_scope_pop(tape);
    tg_scope_pop(tape);
    return pen;
}

/* Θ⁽¹⁾ + t·E with E one-hot at Θ⁽¹⁾₍₁,₂₎ (row 0, column 2 in C) and the
 * scalar param t = 0: ∂J/∂t is then exactly the one element ∂J/∂Θ⁽¹⁾₍₁,₂₎
 * of (2.2.5), and the forward values do not change. */
static tg_tensor *with_probe(seed003_net *n, tg_tensor *theta1)
{
    double e[SEED003_MAX_S * SEED003_MAX_AUG] = {0};
    e[0 * (SEED003_IN + 1) + 2] = 1;
    n->probe = tg_param(n->tape, "t", TG_F64, 0, NULL);
    tg_tensor *E = leaf2_from(n->tape, TG_CONST, "E12", n->S[2], SEED003_IN + 1, e);
    return tg_add(theta1, tg_mul(E, n->probe));
}

/* Layer l: z⁽ˡ⁺¹⁾ = Θ⁽ˡ⁾[1; a⁽ˡ⁾], a⁽ˡ⁺¹⁾ = g(z⁽ˡ⁺¹⁾), in scope "layerl". */
static void layer(seed003_net *n, const seed003_values *v, int l, bool probe)
{
    tg_tape *tp = n->tape;
    char th[32], zn[32], an[32], scope[32];
    snprintf(th, sizeof th, "Θ(%d)", l);
    snprintf(zn, sizeof zn, "z(%d)", l + 1);
    snprintf(an, sizeof an, l + 1 == SEED003_L ? "h = a(%d)" : "a(%d)", l + 1);
    snprintf(scope, sizeof scope, "layer%d", l);
    n->theta[l] = leaf2_from(tp, TG_PARAM, th, v->S[l + 1], v->S[l] + 1, v->theta[l]);
    tg_scope_push(tp, scope);
    tg_tensor *theta = probe && l == 1 ? with_probe(n, n->theta[l]) : n->theta[l];
    tg_scope_push(tp, "bias unit");
    n->aug[l] = with_bias_unit(tp, n->a[l], v->S[l], v->m, l);
    tg_scope_pop(tp);
    n->z[l + 1] = named(tg_matmul(theta, n->aug[l]), zn); /* z⁽ˡ⁺¹⁾ = Θ⁽ˡ⁾a⁽ˡ⁾   */
    n->a[l + 1] = named(tg_sigmoid(n->z[l + 1]), an);     /* a⁽ˡ⁺¹⁾ = g(z⁽ˡ⁺¹⁾) */
    tg_scope_pop(tp);
}

int seed003_build(tg_tape *tp, const seed003_values *v, bool probe, seed003_net *n)
{
    int m = v->m;
    memset(n, 0, sizeof *n);
    n->tape = tp;
    n->m = m;
    n->lambda = v->lambda;
    memcpy(n->S, v->S, sizeof n->S);
    if (!tp)
        return -1;
    n->a[1] = leaf2_from(tp, TG_INPUT, "x = a(1)", SEED003_IN, m, v->x); /* (1.1.1) */
    n->y = leaf2_from(tp, TG_INPUT, "y", SEED003_K, m, v->y);
    tg_tensor *pen = NULL;
    for (int l = 1; l < SEED003_L; l++) {
        layer(n, v, l, probe);
        pen = add_penalty(tp, pen, n->theta[l], v->S[l + 1], v->S[l] + 1, v->lambda / m, l);
    }
    tg_scope_push(tp, "loss");
    n->sum_jb = tg_bce(n->a[SEED003_L], n->y, TG_SUM);             /* Σ_b J⁽ᵇ⁾ (1.2.1) */
    n->data = named(tg_scale(n->sum_jb, 1.0 / m), "(1/m)ΣJ(b)");   /* (1.2.2/5)       */
    n->pen = named(pen, "λ/2m ΣΘ²");                               /* (1.2.6)         */
    n->cost = named(tg_add(n->data, n->pen), "J");
    tg_scope_pop(tp);
    return n->cost && !tg_tape_error(tp) ? 0 : -1;
}

tg_tensor *seed003_network(tg_tape *tp, tg_rng *r)
{
    seed003_values v;
    seed003_net n;
    seed003_draw(&v, r, 4, 4, 4);
    return seed003_build(tp, &v, false, &n) ? NULL : n.cost;
}

/* ======================================================================== */
/* Seed 004                                                                 */
/* ======================================================================== */

void seed004_values_free(seed004_values *v)
{
    free(v->X);
    free(v->Y);
    free(v->labels);
    mlp_free(&v->p);
    v->X = v->Y = NULL;
    v->labels = NULL;
}

int seed004_draw(seed004_values *v, tg_rng *rng, int m)
{
    enum { n = SEED004_IN, K = SEED004_K };
    memset(v, 0, sizeof *v);
    v->m = m;
    v->lambda = 0.1 + 2.0 * tg_rng_uniform(rng);
    v->X = malloc((size_t)n * (size_t)m * sizeof *v->X);
    v->Y = calloc((size_t)K * (size_t)m, sizeof *v->Y);
    v->labels = malloc((size_t)m * sizeof *v->labels);
    if (!v->X || !v->Y || !v->labels || mlp_alloc(&v->p, n, n, K))
        return -1;
    fill_normal(v->X, n * m, rng, 1.0);
    for (int j = 0; j < m; j++) {
        v->labels[j] = (int)tg_rng_below(rng, K);
        v->Y[v->labels[j] * m + j] = 1;
    }
    fill_normal(v->p.W1, n * n, rng, 1.0 / sqrt(n));
    fill_normal(v->p.b1, n, rng, 0.5);
    fill_normal(v->p.W2, n * K, rng, 2.0 / sqrt(n));
    fill_normal(v->p.b2, K, rng, 0.5);
    return 0;
}

tg_tensor *seed004_penalty(tg_tensor *W1, tg_tensor *W2, double lambda, int m)
{
    tg_tensor *t1 = tg_trace(tg_matmul_t(W1, W1, true, false));
    tg_tensor *t2 = tg_trace(tg_matmul_t(W2, W2, true, false));
    return named(tg_scale(tg_add(t1, t2), lambda / (2.0 * m)), "λ/2m Σ‖W‖²");
}

/* L = −(1/m) Σ Y ⊙ log Ŷ (the document's Loss averaged over the batch) plus
 * the penalty when λ ≠ 0. */
static void seed004_loss(seed004_net *nt, double lambda)
{
    tg_tape *tp = nt->tape;
    tg_scope_push(tp, "loss");
    nt->L = named(tg_scale(tg_sum(tg_mul(nt->Y, tg_log(nt->yhat))), -1.0 / nt->m), "CE");
    if (lambda != 0) {
        tg_scope_push(tp, "L2");
        tg_tensor *pen = seed004_penalty(nt->W1, nt->W2, lambda, nt->m);
        tg_scope_pop(tp);
        nt->L = named(tg_add(nt->L, pen), "L");
    }
    tg_scope_pop(tp);
}

int seed004_build(tg_tape *tp, const mlp *p, const double *X, const double *Y, int m,
                  double lambda, bool index_form, seed004_net *nt)
{
    enum { n = SEED004_IN, K = SEED004_K };
    memset(nt, 0, sizeof *nt);
    nt->tape = tp;
    nt->m = m;
    if (!tp)
        return -1;
    nt->X0 = leaf2_from(tp, TG_INPUT, "X(0)", n, m, X);
    nt->Y = leaf2_from(tp, TG_INPUT, "Y", K, m, Y);
    nt->W1 = leaf2_from(tp, TG_PARAM, "W1", n, n, p->W1);
    nt->b1 = leaf2_from(tp, TG_PARAM, "b1", n, 1, p->b1);
    nt->W2 = leaf2_from(tp, TG_PARAM, "W2", n, K, p->W2);
    nt->b2 = leaf2_from(tp, TG_PARAM, "b2", K, 1, p->b2);
    tg_scope_push(tp, "hidden (ReLU)");
    tg_tensor *lin = tg_matmul_t(nt->W1, nt->X0, !index_form, false);
    nt->h = named(tg_add(lin, nt->b1), "h"); /* h = W₁ᵀX⁽⁰⁾ + b₁ (b₁ on every column) */
    nt->X1 = named(tg_relu(nt->h), "X(1)");  /* X⁽¹⁾ = max(0, h)                     */
    tg_scope_pop(tp);
    tg_scope_push(tp, "output (softmax)");
    nt->W2t = named(tg_transpose(nt->W2), "W2ᵀ"); /* W₂ᵀ as its own node: K×n */
    nt->z = named(tg_add(tg_matmul(nt->W2t, nt->X1), nt->b2), "z");
    /* softmax works along the last axis: transpose so that it runs down
     * each column (sample), and back, so Ŷ is K×m like the document's. */
    nt->yhat = named(tg_transpose(tg_softmax(tg_transpose(nt->z))), "ŷ");
    tg_scope_pop(tp);
    seed004_loss(nt, lambda);
    return nt->L && !tg_tape_error(tp) ? 0 : -1;
}

tg_tensor *seed004_network(tg_tape *tp, tg_rng *r)
{
    seed004_values v;
    seed004_net nt;
    int rc = seed004_draw(&v, r, 4) ||
             seed004_build(tp, &v.p, v.X, v.Y, v.m, v.lambda, false, &nt);
    seed004_values_free(&v);
    return rc ? NULL : nt.L;
}
