/* Derivation files (tg_deriv_*): verdicts on a correct and a wrong formula,
 * the worst element, gradients of intermediates in formulas, every error
 * message a person must be able to act on (syntax with a caret, unknown
 * names with a suggestion, shapes naming the sub-expression, a check of the
 * wrong shape), bad arguments, and the DOT of a file's graph. */
#include "tap.h"

static const char SEED002[] =
    "# seed 002: 4-5-3 sigmoid MLP, samples as rows\n"
    "input  X[4,4]   T[4,3] in [0,1]\n"
    "param  W1[4,5]  b1[5]  W2[5,3]  b2[3]\n"
    "H1 = sigmoid(X W1 + b1)\n"
    "H2 = sigmoid(H1 W2 + b2)\n"
    "L  = 1/2 sum((T - H2)^2)\n"
    "delta2 := (H2 - T) * H2 * (1 - H2)        # my definitions\n"
    "check dL/dW2 = H1ᵀ delta2\n"
    "check dL/db2 = sum_rows(delta2)\n"
    "check dL/dH1 = delta2 W2ᵀ\n"
    "check dL/dW1 = Xᵀ ((delta2 W2ᵀ) * H1 * (1 - H1))\n"
    "check dL/dW1 = Xᵀ ((delta2 W2ᵀ) * H1)   expect mismatch\n"
    "check ∂L/∂b1 = sum_rows(dL/dH1 ⊙ H1 ⊙ (1 - H1))\n"
    "check dL/dX = (delta2 W2^T * H1 * (1 - H1)) @ W1'\n";

static tg_deriv *parse(const char *text, tg_err *err)
{
    memset(err, 0, sizeof *err);
    return tg_deriv_parse(text, strlen(text), "t.deriv", err);
}

static void test_seed002(void)
{
    tg_err err;
    tg_deriv *d = parse(SEED002, &err);
    if (!ok(d != NULL, "seed 002 parses: %s", d ? "" : err.msg))
        return;
    ok(tg_deriv_checks(d) == 7, "7 check lines (%d)", tg_deriv_checks(d));
    tg_deriv_opts o = {.draws = 3, .seed = 42};
    ok(!tg_deriv_run(d, &o, &err), "runs 3 draws: %s", err.msg);
    int agree = 0;
    for (int i = 0; i < 7; i++)
        agree += tg_deriv_result(d, i)->agrees;
    const tg_deriv_check *bad = tg_deriv_result(d, 4);
    ok(agree == 6 && !bad->agrees && bad->expect_mismatch && bad->line == 12,
       "6 agree; line 12 (without σ'(·)'s 1 - H1) mismatches as marked: max rel %.3g",
       bad->worst.max_rel);
    ok(!strcmp(bad->wrt, "W1") && bad->rank == 2 && bad->shape[0] == 4 && bad->shape[1] == 5 &&
           bad->worst.abs_t == NULL,
       "its gradient is W1's, 4x5; the tensor pointers are cleared");
    const double *tape, *ref;
    size_t n;
    ok(!tg_deriv_worst(d, 4, &tape, &ref, &n) && n == 20 &&
           tape[bad->worst.rel_i] == bad->worst.rel_tape &&
           ref[bad->worst.rel_i] == bad->worst.rel_ref,
       "the worst draw's elements are kept: element %zu, tape %.6g vs formula %.6g",
       bad->worst.rel_i, bad->worst.rel_tape, bad->worst.rel_ref);
    const tg_deriv_check *g = tg_deriv_result(d, 5);
    ok(g->agrees && !strcmp(g->text, "∂L/∂b1 = sum_rows(dL/dH1 ⊙ H1 ⊙ (1 - H1))"),
       "a formula built on the tape's dL/dH1, in Unicode notation, agrees (max rel %.2g)",
       g->worst.max_rel);
    ok(tg_deriv_result(d, 6)->agrees, "dL/dX with ^T, @ and ' agrees (input gradient)");
    ok(!tg_deriv_result(d, 7) && !tg_deriv_result(d, -1), "results past the end are NULL");
    /* the same draws, the same numbers */
    double first = bad->worst.max_rel;
    tg_deriv_run(d, &o, &err);
    ok(bad->worst.max_rel == first, "a rerun with the same seed gives the same figures");
    char path[] = "/tmp/tg_deriv_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    ok(!tg_deriv_dot(d, path, &o, &err), "DOT of the forward graph: %s", err.msg);
    static char dot[1 << 16];
    size_t got = tap_slurp(path, dot, sizeof dot - 1);
    dot[got < sizeof dot ? got : 0] = 0;
    ok(strstr(dot, "H1") && strstr(dot, "W2") && strstr(dot, "digraph"),
       "the DOT names the file's tensors");
    unlink(path);
    tg_deriv_free(d);
}

/* text must fail to parse (or, run = true, to run) with a message holding
 * every string of want[] */
static void fails(const char *what, const char *text, bool run, const char *const *want)
{
    tg_err err;
    tg_deriv *d = parse(text, &err);
    int rc = d ? tg_deriv_run(d, NULL, &err) : -1;
    bool good = rc == -1 && (run ? d != NULL : d == NULL);
    for (char *p = err.msg; *p; p++) /* one TAP line; the want strings use | too */
        if (*p == '\n')
            *p = '|';
    for (int i = 0; want[i]; i++)
        if (!strstr(err.msg, want[i])) {
            good = false;
            diag("missing \"%s\"", want[i]);
        }
    ok(good, "%s -> %s", what, err.msg);
    tg_deriv_free(d);
}

#define FAILS(what, text, run, ...) fails(what, text, run, (const char *const[]){__VA_ARGS__, NULL})

static void test_errors(void)
{
    const char *head = "input X[4,4]\nparam W[4,3]\n";
    char buf[512];
#define WITH(body) (snprintf(buf, sizeof buf, "%s%s", head, body), buf)
    FAILS("syntax: file:line:col, the line and a caret",
          WITH("H = sigmoid(X W +)\nL = sum(H)\ncheck dL/dW = X\n"), false,
          "t.deriv:3:18: expected a value", "|  H = sigmoid(X W +)|                   ^");
    FAILS("a stray character", WITH("H = X W $ 2\n"), false, "t.deriv:3:9:", "'$'");
    FAILS("unknown name: the nearest suggested", WITH("H = sigmoid(X W1)\n"), false,
          "unknown name 'W1'; did you mean 'W'?", "t.deriv:3:15");
    FAILS("unknown function: the nearest suggested", WITH("H = sigmod(X W)\n"), false,
          "unknown function 'sigmod'; did you mean 'sigmoid'?");
    FAILS("a misspelt keyword", "inptu X[4,4]\n", false, "did you mean 'input'?");
    FAILS("matrix product: the sub-expression and both shapes",
          "input X[4,4]\nparam W[3,3]\nH = sigmoid(X W)\nL = sum(H)\ncheck dL/dW = W\n", true,
          "'X W': 4x4 · 3x3: the inner sizes 4 and 3 differ", "t.deriv:3:13");
    FAILS("a product inside a longer formula names the part that fails",
          WITH("H = sigmoid(X W)\nL = sum(H)\ncheck dL/dW = Xᵀ (H * (1 - H)) W\n"), true,
          "'Xᵀ (H * (1 - H)) W': 4x3 · 4x3", "'Xᵀ (H * (1 - H))' is 4x3, 'W' is 4x3");
    FAILS("broadcasting: both shapes",
          WITH("param b[4]\nH = X W + b\nL = sum(H)\ncheck dL/dW = W\n"), true,
          "'X W + b': 4x3 and [4] do not broadcast");
    FAILS("a check of the wrong shape says the gradient's shape",
          WITH("H = sigmoid(X W)\nL = sum(H)\ncheck dL/dW = X\n"), true,
          "the right side is 4x4 but dL/dW has the shape of W, 4x3", "t.deriv:5:15");
    FAILS("a loss that is not a scalar",
          WITH("H = sigmoid(X W)\ncheck dH/dW = W\n"), true, "H must be a scalar", "4x3");
    FAILS("a gradient in a forward definition",
          WITH("H = X W\nL = sum(H)\nG = dL/dH\n"), false,
          "gradients can be used in := definitions and check lines");
    FAILS("a := definition in a forward one",
          WITH("H = X W\nL = sum(H)\nD := dL/dH\nK = D + H\n"), false,
          "'D' is a := definition (computed after the gradients)");
    FAILS("a name defined twice", WITH("H = X W\nH = X\n"), false,
          "'H' is already defined on line 3");
    FAILS("a keyword as a name", WITH("in = X\n"), false, "'in' is a keyword");
    FAILS("a function as a name", "input sum[2]\n", false, "'sum' is a function");
    FAILS("a function without arguments", WITH("H = sum + X\n"), false,
          "'sum' is a function: sum(X)");
    FAILS("the wrong number of arguments", WITH("H = trace(X, W)\n"), false,
          "trace takes 1 argument, got 2");
    FAILS("an exponent that is not a number", WITH("H = X ^ W\n"), false,
          "the exponent after '^' must be a number");
    FAILS("labels where values are needed",
          "input y[4] labels 3\nparam W[4,3]\nH = y * 2\nL = sum(W)\ncheck dL/dW = W\n", true,
          "holds labels (i32)");
    FAILS("a dimension of 0", "input X[0,3]\n", false, "a dimension must be a whole number");
    FAILS("an empty range", "input X[2] in [1, 1]\n", false, "the range [1, 1] is empty");
    FAILS("onehot on a vector", "input X[3] onehot\n", false, "onehot needs a matrix");
    FAILS("no check line", WITH("H = X W\n"), false, "no check line");
    FAILS("unbalanced parenthesis", WITH("H = sigmoid((X W)\nL = sum(H)\n"), false,
          "t.deriv:3:18: expected ',' or ')', found the end of the line");
    FAILS("the gradient of a := definition",
          WITH("H = X W\nL = sum(H)\nD := 2 H\ncheck dL/dD = H\n"), false,
          "D is a := definition, which is not on the tape");
    char deep[600];
    size_t k = (size_t)snprintf(deep, sizeof deep, "%s", head);
    k += (size_t)snprintf(deep + k, sizeof deep - k, "H = ");
    for (int i = 0; i < 100; i++)
        deep[k++] = '(';
    snprintf(deep + k, sizeof deep - k, "X\n");
    FAILS("nesting deeper than 64", deep, false, "nested more than 64 deep");
    /* a long line: the window around the column, with "..." */
    FAILS("a long line is shown around the column",
          WITH("H = X W + X W + X W + X W + X W + X W + X W + X W + X W + X W + X W + zz\n"),
          false, "unknown name 'zz'", "...", "^");
#undef WITH
}

static void test_api(void)
{
    tg_err err;
    ok(!tg_deriv_parse(NULL, 0, "x", &err) && strstr(err.msg, "NULL text"), "NULL text");
    ok(!tg_deriv_parse("a\0b", 3, "x", &err) && strstr(err.msg, "NUL byte"), "a NUL byte");
    ok(!tg_deriv_load("/nonexistent/f.deriv", &err) && strstr(err.msg, "cannot open"),
       "a missing file: %s", err.msg);
    ok(!tg_deriv_load("/tmp", &err) && strstr(err.msg, "/tmp"), "a directory: %s", err.msg);
    ok(tg_deriv_run(NULL, NULL, &err) == -1 && tg_deriv_checks(NULL) == 0 &&
           !tg_deriv_result(NULL, 0),
       "NULL derivation");
    tg_deriv *d = parse(SEED002, &err);
    const double *t, *r;
    size_t n;
    ok(tg_deriv_worst(d, 0, &t, &r, &n) == -1, "no worst elements before a run");
    ok(tg_deriv_run(d, &(tg_deriv_opts){.draws = 1001}, &err) == -1 &&
           strstr(err.msg, "draws must be 1..1000"),
       "1001 draws refused: %s", err.msg);
    ok(tg_deriv_dot(d, NULL, NULL, &err) == -1, "DOT to a NULL path refused");
    ok(tg_deriv_dot(d, "/nonexistent/dir/g.dot", NULL, &err) == -1 && err.msg[0],
       "DOT into a missing directory: %s", err.msg);
    tg_deriv_free(d);
    tg_deriv_free(NULL);
    /* every function of the language, in one file that holds */
    static const char ALL[] =
        "input X[3,4] in [-2, 2]  T[3,2] onehot  y[3] labels 2  Q[3,2] in [0.1, 0.9]\n"
        "param W[4,2] b[2] s\n"
        "Z = X W + b\n"
        "P = softmax(Z)\n"
        "R = relu(Z) + gelu(Z) + silu(Z) + softplus(Z) + abs(Z) + sqrt(exp(Z))\n"
        "S = log(P) - log_softmax(Z) + mean(Z) + sum(Z, 0) / 2\n"
        "M = sum(class_means(X, y, 2) W) + gather(Z, y) + one_hot(y, 2)\n"
        "L = softmax_ce(Z, y) + mse(P, T) + l2(W, 0.1) + bce(Q, T) + bce_logits(Z, T)"
        " + softmax_ce_onehot(Z, T) + sum(R) + sum(S) + sum(M) + s * trace(Zᵀ Z) + mean(Z, 0) @ sum_rows(Z)\n"
        "check dL/ds = trace(Zᵀ Z)\n"
        "check dL/ds = 2 trace(transpose(Z) Z) expect mismatch\n";
    d = parse(ALL, &err);
    ok(d && !tg_deriv_run(d, NULL, &err), "every function of the language evaluates: %s",
       err.msg);
    ok(d && tg_deriv_result(d, 0)->agrees && !tg_deriv_result(d, 1)->agrees,
       "and the scalar's gradient is checked (agree %.2g, mismatch %.2g)",
       d ? tg_deriv_result(d, 0)->worst.max_rel : 0, d ? tg_deriv_result(d, 1)->worst.max_rel : 0);
    tg_deriv_free(d);
}

/* the functions of the ops that came with the sequence models */
static void test_new_ops(void)
{
    static const char F[] =
        "input X[3,4]  S[4,4]\n"
        "param g[4] b[4]\n"
        "L1 = sum(clamp(X, -0.5, 0.5))\n"
        "L2 = sum(leaky_relu(X, 0.1))\n"
        "L3 = sum(maximum(X, -X)) + sum(minimum(X, 2))\n"
        "L4 = sum(max(X, 1)) + sum(layer_norm(X, g, b)) + sum(softmax_causal(S) * S)"
        " + sum(layer_norm(X) * X)\n"
        "check dL1/dX = step(0.5 - abs(X))\n"
        "check dL2/dX = 0.1 + 0.9 step(X)\n"
        "check dL3/dX = step(X) - step(-X) + 1\n"
        "check dL4/db = 3 ones_like(b)\n"
        "check dL3/dX = step(X) - step(-X)   expect mismatch\n";
    tg_err err;
    tg_deriv *d = parse(F, &err);
    int agree = 0;
    if (d && !tg_deriv_run(d, NULL, &err))
        for (int i = 0; i < 5; i++)
            agree += tg_deriv_result(d, i)->agrees;
    ok(d && agree == 4 && !tg_deriv_result(d, 4)->agrees,
       "clamp, leaky_relu, maximum/minimum (a number broadcast), max, layer_norm, "
       "softmax_causal: 4 formulas agree, the wrong one mismatches: %s", d ? err.msg : "");
    tg_deriv_free(d);
}

int main(void)
{
    test_seed002();
    test_errors();
    test_api();
    test_new_ops();
    return tap_done();
}
