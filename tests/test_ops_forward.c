/* Every op's forward on small cases whose values were worked out by hand
 * (chosen so the answers are exact or simple closed forms), in f64 and f32,
 * plus the extreme inputs that must stay finite. */
#include "oplist.h"
#include "tapegrad.h"
#include "vmath.h"

#define VALS(...) (double[]){__VA_ARGS__}

static tg_tape *T;
static tg_dtype D;

/* a parameter of the current dtype holding the values v */
static tg_tensor *leaf(int rank, const size_t *shape, const double *v)
{
    tg_tensor *t = tg_param(T, NULL, D, rank, shape);
    for (size_t i = 0; t && i < tg_size(t); i++)
        tg_set(t, i, v[i]);
    return t;
}

static tg_tensor *labels(size_t n, const int32_t *v)
{
    return tg_leaf_from(T, TG_INPUT, "labels", TG_I32, 1, SHAPE(n), v);
}

/* compare y with want (n values) and its shape with (rank, shape) */
static void expect(const char *what, tg_tensor *y, int rank, const size_t *shape,
                   const double *want, size_t n)
{
    double tol = D == TG_F32 ? 1e-6 : 1e-15; /* f32: inputs like ln 5 are rounded too */
    bool good = y && tg_rank(y) == rank && tg_size(y) == n && tg_dtype_of(y) == D;
    for (int i = 0; good && i < rank; i++)
        good = tg_dim(y, i) == shape[i];
    double worst = 0;
    for (size_t i = 0; good && i < n; i++) {
        double e = fabs(tg_get(y, i) - want[i]) / fmax(1.0, fabs(want[i]));
        worst = fmax(worst, e);
        good = e <= tol;
    }
    if (good)
        op_cover(y);
    if (!ok(good, "%s %s", tg_dtype_name(D), what)) {
        char s[64];
        diag("shape %s, error %s, worst rel diff %g", tg_shape_str(y, s, sizeof s),
             tg_tape_error(T) ? tg_tape_error(T) : "none", worst);
        for (size_t i = 0; y && i < n && i < tg_size(y); i++)
            diag("  [%zu] got %.10g want %.10g", i, tg_get(y, i), want[i]);
    }
}

static void run_all(void)
{
    const double L2 = log(2.0), L3 = log(3.0), L5 = log(5.0);
    tg_tensor *A = leaf(2, SHAPE(2, 2), VALS(1, 2, 3, 4));
    tg_tensor *B = leaf(2, SHAPE(2, 2), VALS(5, 6, 7, 8));
    expect("matmul A·B", tg_matmul(A, B), 2, SHAPE(2, 2), VALS(19, 22, 43, 50), 4);
    expect("matmul Aᵀ·B", tg_matmul_t(A, B, true, false), 2, SHAPE(2, 2), VALS(26, 30, 38, 44), 4);
    expect("matmul A·Bᵀ", tg_matmul_t(A, B, false, true), 2, SHAPE(2, 2), VALS(17, 23, 39, 53), 4);
    expect("matmul Aᵀ·Bᵀ", tg_matmul_t(A, B, true, true), 2, SHAPE(2, 2), VALS(23, 31, 34, 46), 4);
    tg_tensor *R = leaf(2, SHAPE(2, 3), VALS(1, 0, 2, -1, 3, 1));
    tg_tensor *C = leaf(2, SHAPE(3, 1), VALS(3, 2, 1));
    expect("matmul 2x3·3x1", tg_matmul(R, C), 2, SHAPE(2, 1), VALS(5, 4), 2);

    tg_tensor *bias = leaf(1, SHAPE(3), VALS(10, 20, 30));
    expect("add_bias", tg_add_bias(R, bias), 2, SHAPE(2, 3), VALS(11, 20, 32, 9, 23, 31), 6);
    tg_tensor *bias2 = leaf(2, SHAPE(1, 3), VALS(1, 1, 1));
    expect("add_bias [1,d]", tg_add_bias(R, bias2), 2, SHAPE(2, 3), VALS(2, 1, 3, 0, 4, 2), 6);

    tg_tensor *row = leaf(1, SHAPE(3), VALS(1, 2, 4));
    tg_tensor *col = leaf(2, SHAPE(2, 1), VALS(10, 20));
    tg_tensor *s = leaf(0, NULL, VALS(2));
    expect("add [2,3]+[3]", tg_add(R, row), 2, SHAPE(2, 3), VALS(2, 2, 6, 0, 5, 5), 6);
    expect("add [2,1]+[3] -> [2,3]", tg_add(col, row), 2, SHAPE(2, 3),
           VALS(11, 12, 14, 21, 22, 24), 6);
    expect("sub [3]-[2,1]", tg_sub(row, col), 2, SHAPE(2, 3),
           VALS(-9, -8, -6, -19, -18, -16), 6);
    expect("mul by rank-0", tg_mul(R, s), 2, SHAPE(2, 3), VALS(2, 0, 4, -2, 6, 2), 6);
    expect("div rank-0 / [3]", tg_div(s, row), 1, SHAPE(3), VALS(2, 1, 0.5), 3);
    expect("div [2,3]/[2,1]", tg_div(R, col), 2, SHAPE(2, 3),
           VALS(0.1, 0, 0.2, -0.05, 0.15, 0.05), 6);
    tg_tensor *a4 = leaf(4, SHAPE(2, 1, 2, 1), VALS(1, 2, 3, 4));
    tg_tensor *b3 = leaf(3, SHAPE(3, 1, 2), VALS(0, 10, 20, 30, 40, 50));
    /* out[i,j,k,l] = a[i,0,k,0] + b[j,0,l] -> shape [2,3,2,2] */
    double want4[24];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 2; k++)
                for (int l = 0; l < 2; l++)
                    want4[((i * 3 + j) * 2 + k) * 2 + l] = (1 + 2 * i + k) + 10 * (2 * j + l);
    expect("add rank-4 with rank-3 broadcast", tg_add(a4, b3), 4, SHAPE(2, 3, 2, 2), want4, 24);

    expect("scale", tg_scale(row, -0.5), 1, SHAPE(3), VALS(-0.5, -1, -2), 3);
    expect("neg", tg_neg(row), 1, SHAPE(3), VALS(-1, -2, -4), 3);
    tg_tensor *v = leaf(1, SHAPE(4), VALS(0, L3, -L3, 2));
    expect("sigmoid(0, ln3, -ln3, 2)", tg_sigmoid(v), 1, SHAPE(4),
           VALS(0.5, 0.75, 0.25, 1 / (1 + exp(-2.0))), 4);
    expect("relu", tg_relu(leaf(1, SHAPE(4), VALS(-1, 0, 0.5, 3))), 1, SHAPE(4),
           VALS(0, 0, 0.5, 3), 4);
    expect("tanh(ln2, -ln2, 0)", tg_tanh(leaf(1, SHAPE(3), VALS(L2, -L2, 0))), 1, SHAPE(3),
           VALS(0.6, -0.6, 0), 3);
    expect("exp(ln3, 0, -ln2)", tg_exp(leaf(1, SHAPE(3), VALS(L3, 0, -L2))), 1, SHAPE(3),
           VALS(3, 1, 0.5), 3);
    expect("log(1, 4, 0.5)", tg_log(leaf(1, SHAPE(3), VALS(1, 4, 0.5))), 1, SHAPE(3),
           VALS(0, 2 * L2, -L2), 3);

    /* softmax(0, ln2, ln5) = (1, 2, 5)/8 */
    tg_tensor *z = leaf(2, SHAPE(2, 3), VALS(0, L2, L5, 7, 7, 7));
    expect("softmax rows", tg_softmax(z), 2, SHAPE(2, 3),
           VALS(0.125, 0.25, 0.625, 1. / 3, 1. / 3, 1. / 3), 6);
    expect("log_softmax rows", tg_log_softmax(z), 2, SHAPE(2, 3),
           VALS(-3 * L2, -2 * L2, L5 - 3 * L2, -L3, -L3, -L3), 6);

    tg_tensor *m = leaf(3, SHAPE(2, 2, 3), VALS(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12));
    expect("sum", tg_sum(m), 0, NULL, VALS(78), 1);
    expect("mean", tg_mean(m), 0, NULL, VALS(6.5), 1);
    expect("sum axis 0", tg_sum_axis(m, 0, false), 2, SHAPE(2, 3), VALS(8, 10, 12, 14, 16, 18), 6);
    expect("sum axis 1 keepdim", tg_sum_axis(m, 1, true), 3, SHAPE(2, 1, 3),
           VALS(5, 7, 9, 17, 19, 21), 6);
    expect("mean axis -1", tg_mean_axis(m, -1, false), 2, SHAPE(2, 2), VALS(2, 5, 8, 11), 4);
    expect("transpose", tg_transpose(R), 2, SHAPE(3, 2), VALS(1, -1, 0, 3, 2, 1), 6);
    expect("transpose rank 3", tg_transpose(m), 3, SHAPE(2, 3, 2),
           VALS(1, 4, 2, 5, 3, 6, 7, 10, 8, 11, 9, 12), 12);
    expect("reshape", tg_reshape(m, 2, SHAPE(3, 4)), 2, SHAPE(3, 4),
           VALS(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), 12);

    /* rows 0 and 2 are class 1, row 1 class 0, class 2 is empty */
    tg_tensor *X = leaf(2, SHAPE(3, 2), VALS(1, 2, 3, 4, 5, 8));
    tg_tensor *lab = labels(3, (int32_t[]){1, 0, 1});
    expect("class_means", tg_class_means(X, lab, 3), 2, SHAPE(3, 2), VALS(3, 4, 3, 5, 0, 0), 6);
    tg_tensor *idx = labels(4, (int32_t[]){2, 0, 2, 1});
    expect("gather_rows", tg_gather_rows(X, idx), 2, SHAPE(4, 2), VALS(5, 8, 1, 2, 5, 8, 3, 4), 8);
    expect("trace", tg_trace(leaf(2, SHAPE(3, 3), VALS(1, 9, 9, 9, 2, 9, 9, 9, 3))), 0, NULL,
           VALS(6), 1);

    /* losses; p - t = (1, -2, 0, 3): Σ² = 14 */
    tg_tensor *p = leaf(2, SHAPE(2, 2), VALS(1, 0, 2, 3));
    tg_tensor *t = leaf(2, SHAPE(2, 2), VALS(0, 2, 2, 0));
    expect("mse sum", tg_mse(p, t, TG_SUM), 0, NULL, VALS(14), 1);
    expect("mse half sum", tg_mse(p, t, TG_SUM | TG_HALF), 0, NULL, VALS(7), 1);
    expect("mse mean", tg_mse(p, t, TG_MEAN), 0, NULL, VALS(3.5), 1);
    expect("mse batch mean half", tg_mse(p, t, TG_BATCH_MEAN | TG_HALF), 0, NULL, VALS(3.5), 1);
    /* row 0: softmax (1,2,5)/8, label 2 -> −ln(5/8); row 1: uniform -> ln 3 */
    tg_tensor *cls = labels(2, (int32_t[]){2, 0});
    expect("softmax_ce sum", tg_softmax_ce(z, cls, TG_SUM), 0, NULL, VALS(3 * L2 - L5 + L3), 1);
    expect("softmax_ce mean", tg_softmax_ce(z, cls, TG_MEAN), 0, NULL,
           VALS((3 * L2 - L5 + L3) / 2), 1);
    tg_tensor *oh = leaf(2, SHAPE(2, 3), VALS(0, 0, 1, 1, 0, 0));
    expect("softmax_ce_onehot = labels", tg_softmax_ce_onehot(z, oh, TG_SUM), 0, NULL,
           VALS(3 * L2 - L5 + L3), 1);
    tg_tensor *soft = leaf(2, SHAPE(2, 3), VALS(0.5, 0.5, 0, 0, 0, 0));
    expect("softmax_ce soft targets", tg_softmax_ce_onehot(z, soft, TG_SUM), 0, NULL,
           VALS(0.5 * 3 * L2 + 0.5 * 2 * L2), 1);
    tg_tensor *pr = leaf(1, SHAPE(3), VALS(0.25, 0.5, 0.75));
    tg_tensor *tt = leaf(1, SHAPE(3), VALS(1, 0, 0.5));
    /* −ln .25 + −ln .5 + −(.5 ln .75 + .5 ln .25) */
    expect("bce", tg_bce(pr, tt, TG_SUM), 0, NULL,
           VALS(2 * L2 + L2 - 0.5 * (log(0.75) + log(0.25))), 1);
    tg_tensor *zl = leaf(1, SHAPE(3), VALS(0, L3, -L3));
    /* bce_logits(z, t) = bce(sigmoid z, t): sigmoid = (.5, .75, .25) */
    expect("bce_logits", tg_bce_logits(zl, tt, TG_MEAN), 0, NULL,
           VALS((L2 - log(0.25) - 0.5 * (log(0.25) + log(0.75))) / 3), 1);
    expect("l2", tg_l2(row, 0.5), 0, NULL, VALS(0.25 * 21), 1);

    /* pooling, by hand, of x [1,1,3,4] =  1  5  2  0
     *                                      3 -1  4  6
     *                                      7  2  8 -3
     * kernel 2 stride 2: one row of windows {1,5,3,-1}, {2,0,4,6} (row 2 left
     * out).  Kernel 3 stride 2 padding 1: windows over rows {0,1}, {1,2} and
     * columns {0,1}, {1,2,3}: sums 8, 16, 11, 16 of 4, 6, 4, 6 elements. */
    tg_tensor *px = leaf(4, SHAPE(1, 1, 3, 4), VALS(1, 5, 2, 0, 3, -1, 4, 6, 7, 2, 8, -3));
    tg_pool2d_opts k2 = {{2, 2}, {0, 0}, {0, 0}, false};
    tg_pool2d_opts k3 = {{3, 3}, {2, 2}, {1, 1}, false};
    tg_pool2d_opts k3c = {{3, 3}, {2, 2}, {1, 1}, true};
    tg_pool2d_opts k13 = {{1, 3}, {1, 1}, {0, 1}, false};
    expect("max_pool2d k2 s2", tg_max_pool2d(px, &k2), 4, SHAPE(1, 1, 1, 2), VALS(5, 6), 2);
    expect("max_pool2d k3 s2 p1", tg_max_pool2d(px, &k3), 4, SHAPE(1, 1, 2, 2), VALS(5, 6, 7, 8), 4);
    /* rows of 1x3 windows, padding 1 on columns: max of (·,1,5), (1,5,2), (5,2,0), (2,0,·) ... */
    expect("max_pool2d k1x3 p0x1", tg_max_pool2d(px, &k13), 4, SHAPE(1, 1, 3, 4),
           VALS(5, 5, 5, 2, 3, 4, 6, 6, 7, 8, 8, 8), 12);
    expect("avg_pool2d k2 s2", tg_avg_pool2d(px, &k2), 4, SHAPE(1, 1, 1, 2), VALS(2, 3), 2);
    expect("avg_pool2d k3 s2 p1", tg_avg_pool2d(px, &k3), 4, SHAPE(1, 1, 2, 2),
           VALS(2, 16.0 / 6, 2.75, 16.0 / 6), 4);
    expect("avg_pool2d k3 s2 p1 count_include_pad", tg_avg_pool2d(px, &k3c), 4, SHAPE(1, 1, 2, 2),
           VALS(8.0 / 9, 16.0 / 9, 11.0 / 9, 16.0 / 9), 4);
    expect("leaky_relu slope 0.25", tg_leaky_relu(leaf(1, SHAPE(4), VALS(-2, 0, 0.5, -0.125)), 0.25),
           1, SHAPE(4), VALS(-0.5, 0, 0.5, -0.03125), 4);

    /* batch_norm, training, x [2,2]: channel 0 {-0.5, 0.5}, channel 1 {3, 4};
     * mean (0, 3.5), biased variance 1/4, + eps 3/4 = 1: x̂ = (-1/2, 1/2) in
     * both; γ = (2, -1), β = (1, 1/2) -> y = [[0, 1], [2, 0]].  Running
     * statistics, momentum 1/2: mean (0, 1.75), variance 1/2·1 + 1/2·1/2
     * (unbiased: 1/4·2/1) = 0.75 */
    tg_tensor *bx = leaf(2, SHAPE(2, 2), VALS(-0.5, 3, 0.5, 4));
    tg_tensor *bg = leaf(1, SHAPE(2), VALS(2, -1)), *bb = leaf(1, SHAPE(2), VALS(1, 0.5));
    tg_tensor *rm = tg_input(T, "rm", D, 1, SHAPE(2)), *rv = tg_input(T, "rv", D, 1, SHAPE(2));
    tg_fill(rv, 1);
    expect("batch_norm training", tg_batch_norm(bx, bg, bb, rm, rv, 0.5, 0.75), 2, SHAPE(2, 2),
           VALS(0, 1, 2, 0), 4);
    expect("batch_norm running mean", rm, 1, SHAPE(2), VALS(0, 1.75), 2);
    expect("batch_norm running variance (unbiased)", rv, 1, SHAPE(2), VALS(0.75, 0.75), 2);
    /* evaluation, x [1,2,1,2]: running mean (1, -1), variance (3.75, 0.75)
     * + eps 1/4 -> σ = (2, 1); γ = (2, 3), β = (0, 1): channel 0 (x - 1)·1,
     * channel 1 (x + 1)·3 + 1 */
    tg_tensor *ex = leaf(4, SHAPE(1, 2, 1, 2), VALS(1, 5, -1, 0));
    tg_tensor *eg = leaf(1, SHAPE(2), VALS(2, 3)), *eb = leaf(1, SHAPE(2), VALS(0, 1));
    tg_tensor *erm = tg_input(T, "erm", D, 1, SHAPE(2)), *erv = tg_input(T, "erv", D, 1, SHAPE(2));
    tg_set(erm, 0, 1), tg_set(erm, 1, -1), tg_set(erv, 0, 3.75), tg_set(erv, 1, 0.75);
    tg_set_training(T, false);
    expect("batch_norm evaluation", tg_batch_norm(ex, eg, eb, erm, erv, 0.1, 0.25), 4,
           SHAPE(1, 2, 1, 2), VALS(0, 4, 1, 4), 4);
    expect("batch_norm evaluation leaves the running mean", erm, 1, SHAPE(2), VALS(1, -1), 2);
    /* dropout: the identity in evaluation mode, and with p = 0 */
    expect("dropout in evaluation mode", tg_dropout(row, 0.5), 1, SHAPE(3), VALS(1, 2, 4), 3);
    tg_set_training(T, true);
    expect("dropout p = 0", tg_dropout(R, 0), 2, SHAPE(2, 3), VALS(1, 0, 2, -1, 3, 1), 6);

    /* conv2d: x = 1..9 [1,1,3,3], w = [[1,0],[0,-1]]: every output is
     * x[i][j] − x[i+1][j+1] = −4; with padding 1 and bias 0.5 the corners
     * see one tap (values worked by hand, and the whole list checked with
     * torch.nn.functional.conv2d in float64). */
    tg_tensor *cx = leaf(4, SHAPE(1, 1, 3, 3), VALS(1, 2, 3, 4, 5, 6, 7, 8, 9));
    tg_tensor *cw = leaf(4, SHAPE(1, 1, 2, 2), VALS(1, 0, 0, -1));
    expect("conv2d", tg_conv2d(cx, cw, NULL, NULL), 4, SHAPE(1, 1, 2, 2), VALS(-4, -4, -4, -4), 4);
    expect("conv2d padding 1, bias", tg_conv2d(cx, cw, leaf(1, SHAPE(1), VALS(0.5)),
           &(tg_conv2d_opts){{0, 0}, {1, 1}, {0, 0}, 0}), 4, SHAPE(1, 1, 4, 4),
           VALS(-0.5, -1.5, -2.5, 0.5, -3.5, -3.5, -3.5, 3.5, -6.5, -3.5, -3.5, 6.5, 0.5, 7.5,
                8.5, 9.5), 16);
    /* x[i] = ((7i) mod 11 − 5)/4 [1,2,3,4], w[i] = ((5i) mod 9 − 4)/2
     * [4,1,2,2], bias (1,−1,0.5,2), stride 2x1, padding 1x0, dilation
     * 1x2, groups 2: the values are torch.nn.functional.conv2d's in
     * float64 (exact: multiples of 1/8). */
    double cxv[24], cwv[16];
    for (int i = 0; i < 24; i++)
        cxv[i] = (double)((i * 7) % 11 - 5) / 4;
    for (int i = 0; i < 16; i++)
        cwv[i] = (double)((i * 5) % 9 - 4) / 2;
    expect("conv2d stride, padding, dilation, groups, bias",
           tg_conv2d(leaf(4, SHAPE(1, 2, 3, 4), cxv), leaf(4, SHAPE(4, 1, 2, 2), cwv),
                     leaf(1, SHAPE(4), VALS(1, -1, 0.5, 2)),
                     &(tg_conv2d_opts){{2, 1}, {1, 0}, {1, 2}, 2}),
           4, SHAPE(1, 4, 2, 2),
           VALS(2.375, 1.5, 2.25, 0.125, -1.375, 1.25, 0.25, -3.125, -1.125, -0.125, 2.75,
                1.625, 2.125, 1.125, 3.0, 3.375), 16);

    /* extreme inputs stay finite */
    tg_tensor *big = leaf(2, SHAPE(2, 2), VALS(1e4, -1e4, -1e4, -1e4));
    expect("softmax of ±1e4", tg_softmax(big), 2, SHAPE(2, 2), VALS(1, 0, 0.5, 0.5), 4);
    expect("log_softmax of ±1e4", tg_log_softmax(big), 2, SHAPE(2, 2), VALS(0, -2e4, -L2, -L2), 4);
    expect("softmax_ce of ±1e4", tg_softmax_ce(big, labels(2, (int32_t[]){1, 0}), TG_SUM), 0, NULL,
           VALS(2e4 + L2), 1);
    tg_tensor *p01 = leaf(1, SHAPE(4), VALS(0, 1, 0, 1));
    tg_tensor *t01 = leaf(1, SHAPE(4), VALS(0, 1, 1, 0));
    expect("bce at p = 0 and 1 (logs clamped at -100)", tg_bce(p01, t01, TG_SUM), 0, NULL,
           VALS(200), 1);
    tg_tensor *zbig = leaf(1, SHAPE(3), VALS(1e4, -1e4, 1e4));
    tg_tensor *tb = leaf(1, SHAPE(3), VALS(1, 0, 0));
    expect("bce_logits of ±1e4", tg_bce_logits(zbig, tb, TG_SUM), 0, NULL, VALS(1e4), 1);
}

/* tg_expf, the vectorisable exp of the f32 kernels, against libm in f64:
 * within 2 ulp wherever the result is a normal float, NaN kept, clamped
 * outside.  ulp measured at the true value. */
static void fast_exp(void)
{
    double worst = 0, at = 0;
    for (int i = 0; i <= 2000000; i++) {
        float x = (float)(-87.3 + (88.0 + 87.3) * i / 2000000.0);
        double want = exp((double)x);
        int e;
        frexp(want, &e);
        double ulp = ldexp(1.0, e - 24);
        double err = fabs((double)tg_expf(x) - want) / ulp;
        if (err > worst)
            worst = err, at = x;
    }
    ok(worst <= 1, "tg_expf within 1 ulp on [-87.3, 88] (worst %.2f ulp at %g)", worst, at);
    ok(isnan(tg_expf(NAN)) && isnan(tg_sigmoidf(NAN)), "tg_expf and tg_sigmoidf keep NaN");
    ok(tg_expf(1000) == tg_expf(88) && isfinite(tg_expf(INFINITY)),
       "tg_expf saturates at e^88 above (%g)", (double)tg_expf(INFINITY));
    ok(tg_expf(-INFINITY) == tg_expf(-87.3f) && tg_expf(-1000) > 0, "and at e^-87.3 below");
    ok(tg_sigmoidf(-200) >= 0 && tg_sigmoidf(-200) < 1e-37 && tg_sigmoidf(200) == 1,
       "tg_sigmoidf saturates to 0 and 1");
}

int main(void)
{
    fast_exp();
    tg_dtype dts[2] = {TG_F64, TG_F32};
    for (int i = 0; i < 2; i++) {
        D = dts[i];
        T = tg_tape_new();
        run_all();
        ok(tg_tape_error(T) == NULL, "%s: no error recorded (%s)", tg_dtype_name(D),
           tg_tape_error(T) ? tg_tape_error(T) : "none");
        tg_tape_free(T);
    }
    ops_all_covered("a forward case with independently worked values");
    return tap_done();
}
