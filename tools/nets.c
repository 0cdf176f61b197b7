/* The networks `tapegrad dot` draws: each seed document's network, built as
 * the seed examples in examples/ build it, and a plain MLP of given sizes.
 * Every layer records in its own scope, so the DOT clusters show layers.
 * Batches are small (4 to 6 samples) so the value and gradient summaries
 * stay readable; the values are seeded, so every run draws the same graph. */
#include "cli.h"

#include "derivation.h" /* the seed_example titles */

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define SHAPE2(r, c) 2, (size_t[]){(size_t)(r), (size_t)(c)}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int fail(tg_err *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* A leaf [r×c] filled from N(0, sd²) (sd = 0: zeros). */
static tg_tensor *mat(tg_tape *tp, tg_kind kind, const char *name, size_t r, size_t c,
                      tg_rng *rng, double sd)
{
    tg_tensor *t = tg_leaf(tp, kind, name, TG_F64, SHAPE2(r, c));
    if (t && sd > 0)
        tg_init_normal(t, rng, 0, sd);
    return t;
}

/* One-hot targets [k×m] (samples as columns): sample b is class b mod k. */
static tg_tensor *onehot_cols(tg_tape *tp, const char *name, size_t k, size_t m)
{
    tg_tensor *t = tg_input(tp, name, TG_F64, SHAPE2(k, m));
    for (size_t b = 0; b < m; b++)
        tg_set(t, (b % k) * m + b, 1);
    return t;
}

/* ---- seed 000: three-layer sigmoid MLP + Fisher term -------------------- */

/* Y = W·X + b, b a column broadcast over the samples (columns) */
static tg_tensor *affine_cols(tg_tensor *W, tg_tensor *X, tg_tensor *b)
{
    return tg_add(tg_matmul(W, X), b);
}

static tg_tensor *named(tg_tensor *t, const char *name)
{
    tg_set_name(t, name);
    return t;
}

/* E = ½Σ‖yᵢ − dᵢ‖² + γ/2 (tr S_w − tr S_b) on y = W₃σ(W₂σ(W₁x + b₁) + b₂) + b₃,
 * one sample a column (Q=4, P=5, N=4, M=3; C=3 classes, n=6 samples). */
static tg_tensor *seed000(tg_tape *tp, tg_rng *r)
{
    enum { Q = 4, P = 5, N = 4, M = 3, C = 3, n = 6 };
    const double gamma = 0.5;
    tg_tensor *x = mat(tp, TG_INPUT, "x", Q, n, r, 1);
    tg_tensor *d = mat(tp, TG_INPUT, "d", M, n, r, 1);
    tg_tensor *lab = tg_input(tp, "labels", TG_I32, 1, (size_t[]){n});
    for (int i = 0; i < n; i++)
        tg_set(lab, (size_t)i, i % C);
    tg_tensor *W1 = mat(tp, TG_PARAM, "W1", P, Q, r, 0.5), *b1 = mat(tp, TG_PARAM, "b1", P, 1, r, 0.2);
    tg_tensor *W2 = mat(tp, TG_PARAM, "W2", N, P, r, 0.5), *b2 = mat(tp, TG_PARAM, "b2", N, 1, r, 0.2);
    tg_tensor *W3 = mat(tp, TG_PARAM, "W3", M, N, r, 0.5), *b3 = mat(tp, TG_PARAM, "b3", M, 1, r, 0.2);

    tg_scope_push(tp, "input layer");
    tg_tensor *z1 = named(tg_sigmoid(named(affine_cols(W1, x, b1), "y1")), "z1");
    tg_scope_pop(tp);
    tg_scope_push(tp, "hidden layer");
    tg_tensor *z2 = named(tg_sigmoid(named(affine_cols(W2, z1, b2), "y2")), "z2");
    tg_scope_pop(tp);
    tg_scope_push(tp, "output layer");
    tg_tensor *y = named(affine_cols(W3, z2, b3), "y");
    tg_scope_pop(tp);

    tg_scope_push(tp, "loss");
    tg_tensor *sq = named(tg_mse(y, d, TG_SUM | TG_HALF), "½Σ‖y − d‖²");
    tg_scope_push(tp, "fisher");
    tg_tensor *yt = tg_transpose(y); /* samples as rows for class_means */
    tg_tensor *mci = named(tg_gather_rows(tg_class_means(yt, lab, C), lab), "m_c(i)");
    tg_tensor *dw = tg_sub(yt, mci);
    tg_tensor *db = tg_sub(mci, named(tg_mean_axis(yt, 0, true), "m"));
    tg_tensor *trSw = named(tg_trace(tg_matmul_t(dw, dw, true, false)), "tr S_w");
    tg_tensor *trSb = named(tg_trace(tg_matmul_t(db, db, true, false)), "tr S_b");
    tg_tensor *fisher = tg_scale(tg_sub(trSw, trSb), gamma / 2);
    tg_scope_pop(tp);
    tg_tensor *E = named(tg_add(sq, fisher), "E");
    tg_scope_pop(tp);
    return E;
}

/* ---- seed 001: L-layer MLP without biases, δ notation ------------------- */

/* a⁽ˡ⁾ = W⁽ˡ⁻¹⁾z⁽ˡ⁻¹⁾, z⁽ˡ⁾ = sigmoid(a⁽ˡ⁾), y = a⁽ᴸ⁾ (no output activation),
 * E = ½ΣΣ(y − t)²; L = 4 layers of widths 3-4-4-2, N = 4 samples as columns. */
static tg_tensor *seed001(tg_tape *tp, tg_rng *r)
{
    enum { L = 4, N = 4 };
    static const size_t I[L] = {3, 4, 4, 2};
    static const char *wname[] = {"W(1)", "W(2)", "W(3)"};
    static const char *aname[] = {"a(2)", "a(3)", "y = a(4)"};
    static const char *zname[] = {"z(2)", "z(3)"};
    static const char *scope[] = {"layer 1→2", "layer 2→3", "layer 3→4"};
    tg_tensor *z = mat(tp, TG_INPUT, "X = a(1)", I[0], N, r, 1);
    tg_tensor *T = mat(tp, TG_INPUT, "T", I[L - 1], N, r, 1);
    tg_tensor *W[L - 1];
    for (int l = 0; l < L - 1; l++)
        W[l] = mat(tp, TG_PARAM, wname[l], I[l + 1], I[l], r, 1.5 / sqrt((double)I[l]));
    for (int l = 0; l < L - 1; l++) {
        tg_scope_push(tp, scope[l]);
        tg_tensor *a = named(tg_matmul(W[l], z), aname[l]);
        z = l < L - 2 ? named(tg_sigmoid(a), zname[l]) : a;
        tg_scope_pop(tp);
    }
    tg_scope_push(tp, "loss");
    tg_tensor *E = named(tg_mse(z, T, TG_SUM | TG_HALF), "E");
    tg_scope_pop(tp);
    return E;
}

/* ---- seed 002: batched 4-5-3 sigmoid MLP, samples as rows ------------------ */

/* h0 = sigmoid(z0); z1 = h0·w1 + b1, h1 = sigmoid(z1); z2 = h1·w2 + b2,
 * h2 = sigmoid(z2); L = ½ΣΣ(t − h2)²; n = 4 samples as rows. */
static tg_tensor *seed002(tg_tape *tp, tg_rng *r)
{
    enum { n = 4 };
    tg_tensor *z0 = mat(tp, TG_INPUT, "z0", n, 4, r, 1.5);
    tg_tensor *t = tg_input(tp, "t", TG_F64, SHAPE2(n, 3));
    tg_init_uniform(t, r, 0, 1);
    tg_tensor *w1 = mat(tp, TG_PARAM, "w1", 4, 5, r, 1);
    tg_tensor *b1 = tg_param(tp, "b1", TG_F64, 1, (size_t[]){5});
    tg_init_normal(b1, r, 0, 0.5);
    tg_tensor *w2 = mat(tp, TG_PARAM, "w2", 5, 3, r, 1);
    tg_tensor *b2 = tg_param(tp, "b2", TG_F64, 1, (size_t[]){3});
    tg_init_normal(b2, r, 0, 0.5);

    tg_scope_push(tp, "input");
    tg_tensor *h0 = named(tg_sigmoid(z0), "h0");
    tg_scope_pop(tp);
    tg_scope_push(tp, "layer1");
    tg_tensor *h1 = named(tg_sigmoid(named(tg_add_bias(tg_matmul(h0, w1), b1), "z1")), "h1");
    tg_scope_pop(tp);
    tg_scope_push(tp, "layer2");
    tg_tensor *h2 = named(tg_sigmoid(named(tg_add_bias(tg_matmul(h1, w2), b2), "z2")), "h2");
    tg_scope_pop(tp);
    tg_scope_push(tp, "loss");
    tg_tensor *L = named(tg_mse(h2, t, TG_SUM | TG_HALF), "L");
    tg_scope_pop(tp);
    return L;
}

/* ---- seed 003: bias unit in Θ, cross-entropy + λ/2m L2 ------------------- */

/* [1; a]: the library has no concat, so E0 + P·a with E0 [(S+1)×m] ones in
 * row 0 and P [(S+1)×S] = [0; I] (as examples/bias_unit_bce.c). */
static tg_tensor *with_bias_unit(tg_tape *tp, tg_tensor *a, size_t s, size_t m, int l)
{
    char n1[16], n2[16];
    snprintf(n1, sizeof n1, "E0(%d)", l);
    snprintf(n2, sizeof n2, "P(%d)", l);
    tg_tensor *E0 = tg_const(tp, n1, TG_F64, SHAPE2(s + 1, m));
    tg_tensor *P = tg_const(tp, n2, TG_F64, SHAPE2(s + 1, s));
    for (size_t b = 0; b < m; b++)
        tg_set(E0, b, 1);
    for (size_t i = 0; i < s; i++)
        tg_set(P, (i + 1) * s + i, 1);
    return tg_add(E0, tg_matmul(P, a));
}

/* z⁽ˡ⁺¹⁾ = Θ⁽ˡ⁾[1; a⁽ˡ⁾], a⁽ˡ⁺¹⁾ = sigmoid(z⁽ˡ⁺¹⁾), widths 3-4-4-3, m = 4
 * samples as columns; J = (1/m)Σ BCE(a⁽⁴⁾, y) + λ/2m Σ Θ² without the bias
 * column (Θ ⊙ M, M zero in column 0). */
static tg_tensor *seed003(tg_tape *tp, tg_rng *r)
{
    enum { L = 4, m = 4 };
    static const size_t S[L + 1] = {0, 3, 4, 4, 3};
    static const char *scope[] = {"", "layer1", "layer2", "layer3"};
    const double lambda = 0.1;
    tg_tensor *a = tg_input(tp, "x = a(1)", TG_F64, SHAPE2(S[1], m));
    tg_init_uniform(a, r, -1, 1);
    tg_tensor *y = onehot_cols(tp, "y", S[L], m);
    tg_tensor *pen = NULL;
    for (int l = 1; l < L; l++) {
        char th[16], zn[16], an[16], mn[16];
        snprintf(th, sizeof th, "Θ(%d)", l);
        snprintf(zn, sizeof zn, "z(%d)", l + 1);
        snprintf(an, sizeof an, l + 1 == L ? "h = a(%d)" : "a(%d)", l + 1);
        snprintf(mn, sizeof mn, "M(%d)", l);
        size_t rows = S[l + 1], cols = S[l] + 1;
        tg_tensor *theta = mat(tp, TG_PARAM, th, rows, cols, r, 0.8);
        tg_scope_push(tp, scope[l]);
        tg_scope_push(tp, "bias unit");
        tg_tensor *aug = with_bias_unit(tp, a, S[l], m, l);
        tg_scope_pop(tp);
        a = named(tg_sigmoid(named(tg_matmul(theta, aug), zn)), an);
        tg_scope_pop(tp);
        tg_scope_push(tp, "loss");
        tg_scope_push(tp, "L2 without bias column");
        tg_tensor *M = tg_const(tp, mn, TG_F64, SHAPE2(rows, cols));
        for (size_t j = 0; j < rows; j++)
            for (size_t i = 1; i < cols; i++)
                tg_set(M, j * cols + i, 1);
        tg_tensor *p = tg_l2(tg_mul(theta, M), lambda / m);
        pen = pen ? tg_add(pen, p) : p;
        tg_scope_pop(tp);
        tg_scope_pop(tp);
    }
    tg_scope_push(tp, "loss");
    tg_tensor *data = named(tg_scale(tg_bce(a, y, TG_SUM), 1.0 / m), "(1/m)ΣJ(b)");
    tg_tensor *J = named(tg_add(data, named(pen, "λ/2m ΣΘ²")), "J");
    tg_scope_pop(tp);
    return J;
}

/* ---- seed 004: 256-256-10 ReLU/softmax, cross-entropy + L2 ---------------- */

/* h = W₁ᵀX⁽⁰⁾ + b₁, X⁽¹⁾ = ReLU(h), z = W₂ᵀX⁽¹⁾ + b₂, ŷ = softmax per column,
 * L = −(1/m)ΣY⊙log ŷ + λ/2m (tr W₁ᵀW₁ + tr W₂ᵀW₂); m = 4 samples as columns
 * (as examples/relu_softmax_l2.c). */
static tg_tensor *seed004(tg_tape *tp, tg_rng *r)
{
    enum { n = 256, K = 10, m = 4 };
    const double lambda = 0.01;
    tg_tensor *X0 = tg_input(tp, "X(0)", TG_F64, SHAPE2(n, m));
    tg_init_uniform(X0, r, 0, 1);
    tg_tensor *Y = onehot_cols(tp, "Y", K, m);
    tg_tensor *W1 = mat(tp, TG_PARAM, "W1", n, n, r, sqrt(2.0 / n));
    tg_tensor *b1 = mat(tp, TG_PARAM, "b1", n, 1, r, 0);
    tg_tensor *W2 = mat(tp, TG_PARAM, "W2", n, K, r, sqrt(1.0 / n));
    tg_tensor *b2 = mat(tp, TG_PARAM, "b2", K, 1, r, 0);

    tg_scope_push(tp, "hidden (ReLU)");
    tg_tensor *h = named(tg_add(tg_matmul_t(W1, X0, true, false), b1), "h");
    tg_tensor *X1 = named(tg_relu(h), "X(1)");
    tg_scope_pop(tp);
    tg_scope_push(tp, "output (softmax)");
    tg_tensor *z = named(tg_add(tg_matmul(named(tg_transpose(W2), "W2ᵀ"), X1), b2), "z");
    tg_tensor *yhat = named(tg_transpose(tg_softmax(tg_transpose(z))), "ŷ");
    tg_scope_pop(tp);
    tg_scope_push(tp, "loss");
    tg_tensor *ce = named(tg_scale(tg_sum(tg_mul(Y, tg_log(yhat))), -1.0 / m), "CE");
    tg_scope_push(tp, "L2");
    tg_tensor *t1 = tg_trace(tg_matmul_t(W1, W1, true, false));
    tg_tensor *t2 = tg_trace(tg_matmul_t(W2, W2, true, false));
    tg_tensor *pen = named(tg_scale(tg_add(t1, t2), lambda / (2.0 * m)), "λ/2m Σ‖W‖²");
    tg_scope_pop(tp);
    tg_tensor *L = named(tg_add(ce, pen), "L");
    tg_scope_pop(tp);
    return L;
}

/* ---- mlp:N0,N1,...,Nk -------------------------------------------------------- */

enum { MLP_MAX_LAYERS = 16, MLP_MAX_WIDTH = 65536, MLP_BATCH = 4 };
#define MLP_MAX_PARAMS 50000000.0

/* Parse "784,512,10" into sizes; the count, or -1 with a message. */
static int parse_sizes(const char *s, size_t *sizes, tg_err *err)
{
    int k = 0;
    double params = 0;
    const char *p = s;
    for (;;) {
        if (k == MLP_MAX_LAYERS)
            return fail(err, "mlp: at most %d layer sizes", MLP_MAX_LAYERS);
        if (*p < '0' || *p > '9')
            return fail(err, "mlp: expected a layer size at \"%s\" (e.g. mlp:784,512,10)", p);
        char *end;
        errno = 0;
        unsigned long v = strtoul(p, &end, 10);
        if (errno || v < 1 || v > MLP_MAX_WIDTH)
            return fail(err, "mlp: layer size %.*s is not in 1..%d", (int)(end - p), p,
                        MLP_MAX_WIDTH);
        sizes[k] = v;
        if (k)
            params += (double)sizes[k - 1] * (double)v + (double)v;
        k++;
        p = end;
        if (!*p)
            break;
        if (*p != ',')
            return fail(err, "mlp: unexpected \"%s\" (sizes are separated by commas)", p);
        p++;
    }
    if (k < 2)
        return fail(err, "mlp: give at least an input and an output size (e.g. mlp:784,10)");
    if (params > MLP_MAX_PARAMS)
        return fail(err, "mlp: %.0f parameters is more than this demo allows (%.0f)", params,
                    MLP_MAX_PARAMS);
    return k;
}

/* ReLU hidden layers, softmax cross-entropy on the last, samples as rows
 * (f32, He init, batch of 4 with labels 0, 1, 2, ...). */
static tg_tensor *mlp(tg_tape *tp, tg_rng *r, const size_t *sz, int k)
{
    tg_tensor *h = tg_input(tp, "x", TG_F32, SHAPE2(MLP_BATCH, sz[0]));
    tg_init_uniform(h, r, 0, 1);
    tg_tensor *lab = tg_input(tp, "labels", TG_I32, 1, (size_t[]){MLP_BATCH});
    for (size_t b = 0; b < MLP_BATCH; b++)
        tg_set(lab, b, (double)(b % sz[k - 1]));
    for (int l = 1; l < k; l++) {
        char wn[16], bn[16], zn[16], hn[16], sc[16];
        snprintf(wn, sizeof wn, "W%d", l);
        snprintf(bn, sizeof bn, "b%d", l);
        snprintf(zn, sizeof zn, l + 1 < k ? "z%d" : "logits", l);
        snprintf(hn, sizeof hn, "h%d", l);
        snprintf(sc, sizeof sc, "layer%d", l);
        tg_tensor *W = tg_param(tp, wn, TG_F32, SHAPE2(sz[l - 1], sz[l]));
        tg_tensor *b = tg_param(tp, bn, TG_F32, 1, &sz[l]);
        tg_init_he(W, r);
        tg_scope_push(tp, sc);
        h = named(tg_add_bias(tg_matmul(h, W), b), zn);
        if (l + 1 < k)
            h = named(tg_relu(h), hn);
        tg_scope_pop(tp);
    }
    tg_scope_push(tp, "loss");
    tg_tensor *loss = named(tg_softmax_ce(h, lab, TG_MEAN), "loss");
    tg_scope_pop(tp);
    return loss;
}

/* ---- the table --------------------------------------------------------------- */

typedef struct net_entry {
    const char *name, *alias;
    const seed_example *seed;
    tg_tensor *(*build)(tg_tape *, tg_rng *);
} net_entry;

static const net_entry NETS[] = {
    {"seed000", "fisher", &seed_fisher_mlp, seed000},
    {"seed001", "delta", &seed_delta_rule_mlp, seed001},
    {"seed002", "batch", &seed_batch_sigmoid_mlp, seed002},
    {"seed003", "biasunit", &seed_bias_unit_bce, seed003},
    {"seed004", "relusoftmax", &seed_relu_softmax_l2, seed004},
};
#define N_NETS (sizeof NETS / sizeof NETS[0])

void cli_net_list(FILE *f)
{
    for (size_t i = 0; i < N_NETS; i++)
        fprintf(f, "  %s, %-12s %s\n", NETS[i].name, NETS[i].alias, NETS[i].seed->title);
    fprintf(f, "  mlp:N0,N1,...,Nk      MLP of these layer sizes (ReLU hidden, softmax "
               "cross-entropy), e.g. mlp:784,512,10\n");
}

int cli_net_build(const char *name, cli_net *net, tg_err *err)
{
    memset(net, 0, sizeof *net);
    if (!name)
        return fail(err, "no network given"), -2;
    tg_rng rng;
    const net_entry *e = NULL;
    for (size_t i = 0; i < N_NETS; i++)
        if (!strcmp(name, NETS[i].name) || !strcmp(name, NETS[i].alias))
            e = &NETS[i];
    size_t sizes[MLP_MAX_LAYERS];
    int k = 0;
    if (!e) {
        if (strncmp(name, "mlp:", 4))
            return fail(err, "unknown network '%s'", name), -2;
        if ((k = parse_sizes(name + 4, sizes, err)) < 0)
            return -2;
    }
    net->tape = tg_tape_new();
    if (!net->tape)
        return fail(err, "out of memory");
    if (e) {
        tg_rng_seed(&rng, 0x7a9e000u + (uint64_t)(e - NETS));
        net->loss = e->build(net->tape, &rng);
        snprintf(net->name, sizeof net->name, "%s", e->name);
        snprintf(net->title, sizeof net->title, "seed %s: %s", e->seed->id, e->seed->title);
    } else {
        tg_rng_seed(&rng, 0x7a9e0ffu);
        net->loss = mlp(net->tape, &rng, sizes, k);
        snprintf(net->name, sizeof net->name, "%.63s", name);
        snprintf(net->title, sizeof net->title, "%s: MLP, ReLU hidden layers, softmax "
                 "cross-entropy, batch of %d", name, MLP_BATCH);
    }
    const char *te = tg_tape_error(net->tape);
    if (!net->loss || te) {
        fail(err, "building %s failed: %s", name, te ? te : "out of memory");
        tg_tape_free(net->tape);
        net->tape = NULL;
        return -1;
    }
    return 0;
}
