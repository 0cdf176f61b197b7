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
        tg_set(t, i, v ? v[i] : (double)i + 1);
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

/* permute (heads), slice and concat on tensors large enough to be split over
 * the pool: every element, of the outputs and of the gradients, is where the
 * index arithmetic below puts it, with 1 and with 4 threads. */
static void shape_ops_big(void)
{
    enum { B = 4, S = 64, H = 16, E = 32 };
    int threads = tg_get_threads();
    for (int th = 1; th <= 4; th += 3) {
        tg_set_threads(th);
        tg_tensor *x = tg_param(T, "big", D, 4, SHAPE(B, S, H, E));
        for (size_t i = 0; i < tg_size(x); i++)
            tg_set(x, i, (double)i);
        tg_tensor *p = tg_permute(x, (int[]){0, 2, 1, 3});
        tg_tensor *s = tg_slice(x, 1, 5, 50);
        tg_tensor *c = tg_concat(2, (tg_tensor *[]){s, x}, 1);
        bool good = p && s && c;
        for (size_t b = 0; good && b < B; b++)
            for (size_t t = 0; t < S; t++)
                for (size_t h = 0; h < H; h++)
                    for (size_t e = 0; e < E; e++) {
                        double v = (double)(((b * S + t) * H + h) * E + e);
                        good &= tg_get(p, ((b * H + h) * S + t) * E + e) == v;
                        if (t >= 5 && t < 55)
                            good &= tg_get(s, ((b * 50 + t - 5) * H + h) * E + e) == v &&
                                    tg_get(c, ((b * 114 + t - 5) * H + h) * E + e) == v;
                        good &= tg_get(c, ((b * 114 + 50 + t) * H + h) * E + e) == v;
                    }
        ok(good, "%s %d thread(s): permute heads, slice, concat of %zu elements", tg_dtype_name(D),
           th, tg_size(x));
        /* loss = Σ permute(x)·permute(w) + Σ concat(slice(x), x) with w[i] = i
         * a constant: dx[i] = i + 1, plus 1 inside the window */
        tg_tensor *w = tg_const(T, "w", D, 4, SHAPE(B, S, H, E));
        for (size_t i = 0; i < tg_size(w); i++)
            tg_set(w, i, (double)i);
        tg_tensor *loss = tg_add(tg_sum(tg_mul(p, tg_permute(w, (int[]){0, 2, 1, 3}))), tg_sum(c));
        good = loss && tg_backward(loss) == 0;
        for (size_t i = 0; good && i < tg_size(x); i++) {
            size_t t = i / (H * E) % S;
            good = tg_grad_get(x, i) == (double)i + 1 + (t >= 5 && t < 55);
        }
        ok(good, "%s %d thread(s): their gradients, element by element", tg_dtype_name(D), th);
    }
    tg_set_threads(threads);
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
    /* causal softmax: torch 1.13 float64, softmax(x.masked_fill(k > q + Tk - Tq, -inf), -1)
     * on x[i] = ((7i mod 11) - 5)/2, [2,3,4] (Tq < Tk), and a 3x3 */
    tg_tensor *xc = leaf(3, SHAPE(2, 3, 4), VALS(-2.5, 1.0, -1.0, 2.5, 0.5, -1.5, 2.0, 0.0, -2.0,
                                                 1.5, -0.5, -2.5, 1.0, -1.0, 2.5, 0.5, -1.5, 2.0,
                                                 0.0, -2.0, 1.5, -0.5, -2.5, 1.0));
    expect("softmax causal Tq < Tk", tg_softmax_causal(xc), 3, SHAPE(2, 3, 4),
           VALS(0.02931223075135632, 0.9706877692486436, 0, 0, 0.17803020550615906,
                0.0240937682868484, 0.7978760262069926, 0, 0.025507814878654365,
                0.8447028181852956, 0.11431809514987194, 0.015471271786177956,
                0.8807970779778823, 0.11920292202211755, 0, 0, 0.025908654717401523,
                0.8579768106084571, 0.11611453467414115, 0, 0.5681232040593225,
                0.07688711473466033, 0.01040553944986119, 0.3445841417561559), 24);
    tg_tensor *x33 = leaf(2, SHAPE(3, 3), VALS(0.5, -1.0, 2.0, 3.0, 0.25, -0.75, -2.0, 1.5, 1.0));
    expect("softmax causal 3x3", tg_softmax_causal(x33), 2, SHAPE(3, 3),
           VALS(1, 0, 0, 0.9399133498259924, 0.06008665017400762, 0, 0.018449847883390033,
                0.6109750512275837, 0.37057510088902634), 9);

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
    /* scatter_rows by hand: rows 0 and 2 of X into row 1, row 1 into row 0,
     * row 2 left 0; then indices [[0,2],[2,2]] of rank 2 into 3 rows of one */
    expect("scatter_rows", tg_scatter_rows(X, lab, 3), 2, SHAPE(3, 2), VALS(3, 4, 6, 10, 0, 0), 6);
    tg_tensor *idx22 = tg_leaf_from(T, TG_INPUT, "idx", TG_I32, 2, SHAPE(2, 2),
                                    (int32_t[]){0, 2, 2, 2});
    expect("scatter_rows rank-2 indices", tg_scatter_rows(leaf(2, SHAPE(2, 2), VALS(1, 2, 3, 4)),
                                                          idx22, 3),
           1, SHAPE(3), VALS(1, 0, 9), 3);
    /* permute, slice, concat, stack: values from numpy 1.x in float64
     * (np.transpose, x[:, 1:3, :], np.concatenate, np.stack on arange(1, 25)
     * and the literals below), pasted */
    tg_tensor *x24 = leaf(3, SHAPE(2, 3, 4), VALS(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
                                                  15, 16, 17, 18, 19, 20, 21, 22, 23, 24));
    expect("permute 2,0,1", tg_permute(x24, (int[]){2, 0, 1}), 3, SHAPE(4, 2, 3),
           VALS(1, 5, 9, 13, 17, 21, 2, 6, 10, 14, 18, 22, 3, 7, 11, 15, 19, 23, 4, 8, 12, 16,
                20, 24), 24);
    expect("permute heads 0,2,1,3", tg_permute(tg_reshape(x24, 4, SHAPE(2, 2, 3, 2)),
                                                (int[]){0, 2, 1, 3}),
           4, SHAPE(2, 3, 2, 2),
           VALS(1, 2, 7, 8, 3, 4, 9, 10, 5, 6, 11, 12, 13, 14, 19, 20, 15, 16, 21, 22, 17, 18,
                23, 24), 24);
    expect("slice axis 1 [1, 3)", tg_slice(x24, 1, 1, 2), 3, SHAPE(2, 2, 4),
           VALS(5, 6, 7, 8, 9, 10, 11, 12, 17, 18, 19, 20, 21, 22, 23, 24), 16);
    expect("slice axis -1 [3, 4)", tg_slice(x24, -1, 3, 1), 3, SHAPE(2, 3, 1),
           VALS(4, 8, 12, 16, 20, 24), 6);
    expect("concat [2,1], [2,2] axis 1",
           tg_concat(2, (tg_tensor *[]){leaf(2, SHAPE(2, 1), VALS(1, 2)),
                                        leaf(2, SHAPE(2, 2), VALS(3, 4, 5, 6))}, 1),
           2, SHAPE(2, 3), VALS(1, 3, 4, 2, 5, 6), 6);
    tg_tensor *c7[7];
    for (int i = 0; i < 7; i++) /* i, then i + 0.5 for odd i */
        c7[i] = i % 2 ? leaf(1, SHAPE(2), VALS(i, i + 0.5)) : leaf(1, SHAPE(1), VALS(i));
    expect("concat of 7 (a tree)", tg_concat(7, c7, 0), 1, SHAPE(10),
           VALS(0, 1, 1.5, 2, 3, 3.5, 4, 5, 5.5, 6), 10);
    tg_tensor *uw[2] = {leaf(1, SHAPE(3), VALS(1, 2, 3)), leaf(1, SHAPE(3), VALS(-1, -2, -3))};
    expect("stack axis 0", tg_stack(2, uw, 0), 2, SHAPE(2, 3), VALS(1, 2, 3, -1, -2, -3), 6);
    expect("stack axis -1", tg_stack(2, uw, -1), 2, SHAPE(3, 2), VALS(1, -1, 2, -2, 3, -3), 6);
    shape_ops_big();
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
    /* maximum/minimum with broadcasting and ties: torch 1.13 float64
     * torch.maximum / torch.minimum */
    tg_tensor *m31 = leaf(2, SHAPE(3, 1), VALS(0.5, -1.0, 2.0));
    tg_tensor *m14 = leaf(2, SHAPE(1, 4), VALS(1.0, -1.0, 0.5, 3.0));
    expect("maximum [3,1] vs [1,4]", tg_maximum(m31, m14), 2, SHAPE(3, 4),
           VALS(1.0, 0.5, 0.5, 3.0, 1.0, -1.0, 0.5, 3.0, 2.0, 2.0, 2.0, 3.0), 12);
    expect("minimum [3,1] vs [1,4]", tg_minimum(m31, m14), 2, SHAPE(3, 4),
           VALS(0.5, -1.0, 0.5, 0.5, -1.0, -1.0, -1.0, -1.0, 1.0, -1.0, 0.5, 2.0), 12);
    tg_tensor *s0 = leaf(0, NULL, VALS(0.25));
    tg_tensor *m23 = leaf(2, SHAPE(2, 3), VALS(0.25, -2.0, 1.5, 0.0, 0.25, 7.0));
    expect("maximum scalar vs [2,3]", tg_maximum(s0, m23), 2, SHAPE(2, 3),
           VALS(0.25, 0.25, 1.5, 0.25, 0.25, 7.0), 6);
    expect("minimum [2,3] vs scalar", tg_minimum(m23, s0), 2, SHAPE(2, 3),
           VALS(0.25, -2.0, 0.25, 0.0, 0.25, 0.25), 6);
    /* max_axis, with ties (the first maximum is the one): torch 1.13 float64
     * torch.max(x, dim, keepdim).values */
    tg_tensor *mx = leaf(3, SHAPE(2, 3, 4), VALS(3.0, 1.0, 3.0, -2.0, 0.5, 0.5, -1.0, 2.0, 4.0,
                                                 -3.0, 4.0, 1.5, -0.5, -0.5, -0.5, -0.5, 2.5, 1.0,
                                                 0.0, 2.5, -1.5, 3.5, 3.5, 0.0));
    expect("max_axis 1", tg_max_axis(mx, 1, false), 2, SHAPE(2, 4),
           VALS(4.0, 1.0, 4.0, 2.0, 2.5, 3.5, 3.5, 2.5), 8);
    expect("max_axis -1 keepdim", tg_max_axis(mx, -1, true), 3, SHAPE(2, 3, 1),
           VALS(3.0, 2.0, 4.0, -0.5, 2.5, 3.5), 6);
    expect("max_axis 0", tg_max_axis(mx, 0, false), 2, SHAPE(3, 4),
           VALS(3.0, 1.0, 3.0, -0.5, 2.5, 1.0, 0.0, 2.5, 4.0, 3.5, 4.0, 1.5), 12);
    /* max_mask: 1 at the index torch.max(x, dim).indices gives (by hand from
     * the values above; along -1 the ties pick the first) */
    expect("max_mask 1", tg_max_mask(mx, 1), 3, SHAPE(2, 3, 4),
           VALS(0, 1, 0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 1, 0), 24);
    expect("max_mask -1 (ties)", tg_max_mask(mx, -1), 3, SHAPE(2, 3, 4),
           VALS(1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0), 24);
    /* B×T×V = [2,3,4] logits z[i] = ((5i mod 13) − 6)/4, labels [2,3]; torch 1.13
     * float64 F.cross_entropy(z.reshape(-1,4), y.reshape(-1), ignore_index=...,
     * reduction=...); batch mean = the sum / B */
    tg_tensor *zs = leaf(3, SHAPE(2, 3, 4), VALS(-1.5, -0.25, 1.0, -1.0, 0.25, 1.5, -0.5, 0.75,
                                                 -1.25, 0.0, 1.25, -0.75, 0.5, -1.5, -0.25, 1.0,
                                                 -1.0, 0.25, 1.5, -0.5, 0.75, -1.25, 0.0, 1.25));
    tg_tensor *ys = tg_leaf_from(T, TG_INPUT, "y", TG_I32, 2, SHAPE(2, 3),
                                 (int32_t[]){1, -100, 3, 0, 2, -100});
    tg_tensor *ys2 = tg_leaf_from(T, TG_INPUT, "y2", TG_I32, 2, SHAPE(2, 3),
                                  (int32_t[]){1, 0, 3, 0, 2, 1});
    expect("softmax_ce BxTxV ignore -100 mean", tg_softmax_ce_ignore(zs, ys, -100, TG_MEAN), 0,
           NULL, VALS(1.4137161538214276), 1);
    expect("softmax_ce BxTxV ignore -100 sum", tg_softmax_ce_ignore(zs, ys, -100, TG_SUM), 0,
           NULL, VALS(5.65486461528571), 1);
    expect("softmax_ce BxTxV ignore -100 batch mean",
           tg_softmax_ce_ignore(zs, ys, -100, TG_BATCH_MEAN), 0, NULL, VALS(2.827432307642855), 1);
    expect("softmax_ce BxTxV mean", tg_softmax_ce(zs, ys2, TG_MEAN), 0, NULL,
           VALS(1.7873823482020468), 1);
    expect("softmax_ce BxTxV batch mean (sum / B)", tg_softmax_ce(zs, ys2, TG_BATCH_MEAN), 0, NULL,
           VALS(10.72429408921228 / 2), 1);
    expect("softmax_ce BxTxV ignore class 0 mean", tg_softmax_ce_ignore(zs, ys2, 0, TG_MEAN), 0,
           NULL, VALS(1.9137161538214276), 1);
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
    /* the adjoints, by hand: max_pool2d_scatter sends g = 1..12 to the maxima
     * of the 1x3 windows above (columns 1,1,1,2 / 0,2,3,3 / 0,2,2,2 of each
     * row); max_pool2d_gather reads t = 1..12 there; avg_pool2d_scatter of
     * k3 s2 p1 spreads g = 4, 6, 8, 12 over windows of 4, 6, 4, 6 elements
     * (1 each from the first row of windows, 2 from the second) */
    double p12[12];
    for (int i = 0; i < 12; i++)
        p12[i] = i + 1;
    expect("max_pool2d_scatter k1x3 p0x1", tg_max_pool2d_scatter(leaf(4, SHAPE(1, 1, 3, 4), p12),
           px, &k13), 4, SHAPE(1, 1, 3, 4), VALS(0, 6, 4, 0, 5, 0, 6, 15, 9, 0, 33, 0), 12);
    expect("max_pool2d_scatter k2 s2", tg_max_pool2d_scatter(leaf(4, SHAPE(1, 1, 1, 2),
           VALS(10, 20)), px, &k2), 4, SHAPE(1, 1, 3, 4), VALS(0, 10, 0, 0, 0, 0, 0, 20, 0, 0, 0, 0), 12);
    expect("max_pool2d_gather k1x3 p0x1", tg_max_pool2d_gather(leaf(4, SHAPE(1, 1, 3, 4), p12),
           px, &k13), 4, SHAPE(1, 1, 3, 4), VALS(2, 2, 2, 3, 5, 7, 8, 8, 9, 11, 11, 11), 12);
    expect("avg_pool2d_scatter k3 s2 p1", tg_avg_pool2d_scatter(leaf(4, SHAPE(1, 1, 2, 2),
           VALS(4, 6, 8, 12)), px, &k3), 4, SHAPE(1, 1, 3, 4), VALS(1, 2, 1, 1, 3, 6, 3, 3, 2, 4, 2, 2), 12);
    /* count_include_pad: divisor 9, g = 9, 18, 27, 36 gives 1, 2, 3, 4 each */
    expect("avg_pool2d_scatter k3 s2 p1 count_include_pad", tg_avg_pool2d_scatter(leaf(4,
           SHAPE(1, 1, 2, 2), VALS(9, 18, 27, 36)), px, &k3c), 4, SHAPE(1, 1, 3, 4),
           VALS(1, 3, 2, 2, 4, 10, 6, 6, 3, 7, 4, 4), 12);
    expect("leaky_relu slope 0.25", tg_leaky_relu(leaf(1, SHAPE(4), VALS(-2, 0, 0.5, -0.125)), 0.25),
           1, SHAPE(4), VALS(-0.5, 0, 0.5, -0.03125), 4);

    /* gelu, silu, softplus at x below: PyTorch 2 in float64 (F.gelu, F.silu,
     * F.softplus with threshold 1e9: no linear cut), printed to 17 digits */
    tg_tensor *sx = leaf(1, SHAPE(8), VALS(-3, -1, -0.5, 0, 0.5, 1, 2, 30));
    expect("gelu (erf form)", tg_gelu(sx), 1, SHAPE(8),
           VALS(-0.00404969409489031, -0.15865525393145702, -0.15426876936299344, 0,
                0.34573123063700656, 0.841344746068543, 1.9544997361036416, 30), 8);
    /* gelu' = Φ(x) + x·φ(x): Python 3's math in float64,
     * 0.5·erfc(−x/√2) + x·exp(−x²/2)/√(2π), printed with repr */
    expect("gelu_grad", tg_gelu_grad(sx), 1, SHAPE(8),
           VALS(-0.011945647204183927, -0.08331547058768629, 0.13250487534383712, 0.5,
                0.8674951246561629, 1.0833154705876864, 1.085231801078197, 1.0), 8);
    expect("silu", tg_silu(sx), 1, SHAPE(8),
           VALS(-0.14227761953270035, -0.2689414213699951, -0.1887703343990727, 0,
                0.3112296656009273, 0.7310585786300049, 1.7615941559557646, 29.999999999997197), 8);
    expect("softplus", tg_softplus(sx), 1, SHAPE(8),
           VALS(0.04858735157374206, 0.31326168751822286, 0.4740769841801067, 0.6931471805599453,
                0.9740769841801067, 1.3132616875182228, 2.1269280110429727, 30.000000000000092), 8);
    /* by hand */
    expect("sqrt(0, 1/4, 4, 2)", tg_sqrt(leaf(1, SHAPE(4), VALS(0, 0.25, 4, 2))), 1, SHAPE(4),
           VALS(0, 0.5, 2, 1.4142135623730951), 4);
    expect("abs", tg_abs(leaf(2, SHAPE(2, 2), VALS(-2, 0, 0.5, -0.125))), 2, SHAPE(2, 2),
           VALS(2, 0, 0.5, 0.125), 4);
    tg_tensor *px4 = leaf(1, SHAPE(4), VALS(0.25, 1, 2, 9));
    expect("pow p=2", tg_pow(px4, 2), 1, SHAPE(4), VALS(0.0625, 1, 4, 81), 4);
    expect("pow p=0.5", tg_pow(px4, 0.5), 1, SHAPE(4), VALS(0.5, 1, 1.4142135623730951, 3), 4);
    expect("pow p=-1", tg_pow(px4, -1), 1, SHAPE(4), VALS(4, 1, 0.5, 1.0 / 9), 4);
    expect("pow p=1.5", tg_pow(px4, 1.5), 1, SHAPE(4), VALS(0.125, 1, 2.8284271247461903, 27), 4);
    expect("pow p=0", tg_pow(leaf(1, SHAPE(3), VALS(-2, 0, 3)), 0), 1, SHAPE(3), VALS(1, 1, 1), 3);
    expect("pow p=3 of negatives", tg_pow(leaf(1, SHAPE(2), VALS(-2, -0.5)), 3), 1, SHAPE(2),
           VALS(-8, -0.125), 2);
    expect("clamp(-1, 0.5)", tg_clamp(leaf(1, SHAPE(5), VALS(-3, -1, 0, 0.5, 2)), -1, 0.5), 1,
           SHAPE(5), VALS(-1, -1, 0, 0.5, 0.5), 5);
    expect("add_scalar 0.5", tg_add_scalar(leaf(2, SHAPE(1, 3), VALS(1, -2, 0.25)), 0.5), 2,
           SHAPE(1, 3), VALS(1.5, -1.5, 0.75), 3);
    /* step and one_hot: by their definitions (1 above 0, the value given at 0) */
    expect("step at0 = 0.5", tg_step(leaf(1, SHAPE(5), VALS(-2, -1e-30, 0, 1e-30, 3)), 0.5), 1,
           SHAPE(5), VALS(0, 0, 0.5, 1, 1), 5);
    expect("step at0 = 0", tg_step(leaf(2, SHAPE(2, 1), VALS(0, -0.0)), 0), 2, SHAPE(2, 1),
           VALS(0, 0), 2);
    tg_tensor *oh_l = tg_leaf_from(T, TG_INPUT, "l", TG_I32, 2, SHAPE(2, 2), (int32_t[]){2, 0, -1, 1});
    expect("one_hot_ignore(-1), [2,2] labels", tg_one_hot_ignore(oh_l, 3, -1, D), 3,
           SHAPE(2, 2, 3), VALS(0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0), 12);
    expect("one_hot of one label, 1 class", tg_one_hot(labels(1, (int32_t[]){0}), 1, D), 2,
           SHAPE(1, 1), VALS(1), 1);

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
    expect("dropout_apply in evaluation mode (no mask)",
           tg_dropout_apply(leaf(1, SHAPE(3), VALS(3, -1, 0.5)), tg_dropout(row, 0.5)), 1, SHAPE(3),
           VALS(3, -1, 0.5), 3);
    tg_set_training(T, true);
    expect("dropout p = 0", tg_dropout(R, 0), 2, SHAPE(2, 3), VALS(1, 0, 2, -1, 3, 1), 6);
    {   /* dropout_apply(x, dropout(x)) is dropout(x) itself: the same mask */
        tg_tensor *dx = leaf(1, SHAPE(64), NULL), *dy = tg_dropout(dx, 0.5);
        tg_tensor *da = tg_dropout_apply(dx, dy);
        int same = 0, zero = 0;
        for (size_t i = 0; da && i < 64; i++)
            same += tg_get(da, i) == tg_get(dy, i), zero += tg_get(dy, i) == 0;
        ok(same == 64 && zero > 0 && zero < 64, "dropout_apply(x, dropout(x)) = dropout(x) "
           "(%d of 64 equal, %d dropped)", same, zero);
    }
    /* bmm, by hand: A3 [2,2,3] = 1..12 times W [3,2] (rank 2: every batch),
     * and A3·A3ᵀ per batch (the row dot products) */
    tg_tensor *A3 = leaf(3, SHAPE(2, 2, 3), VALS(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12));
    tg_tensor *W32 = leaf(2, SHAPE(3, 2), VALS(1, 0, 0, 1, 1, -1));
    expect("bmm [2,2,3]·[3,2]", tg_bmm(A3, W32, false, false), 3, SHAPE(2, 2, 2),
           VALS(4, -1, 10, -1, 16, -1, 22, -1), 8);
    expect("bmm A·Aᵀ", tg_bmm(A3, A3, false, true), 3, SHAPE(2, 2, 2),
           VALS(14, 32, 32, 77, 194, 266, 266, 365), 8);
    /* P [2,1,2,2]ᵀ · Q [3,2,2] → [2,3,2,2]: numpy 1.26 float64,
     * np.matmul(np.swapaxes(P, -1, -2), Q) (first block checked by hand) */
    tg_tensor *P4 = leaf(4, SHAPE(2, 1, 2, 2), VALS(1, -2, 0.5, 3, 2, 1, -1, 0.25));
    tg_tensor *Q3 = leaf(3, SHAPE(3, 2, 2), VALS(1, 2, 3, 4, 0, -1, 1, 0.5, -2, 1, 0.5, 1));
    expect("bmm broadcast batches, trans_a", tg_bmm(P4, Q3, true, false), 4, SHAPE(2, 3, 2, 2),
           VALS(2.5, 4.0, 7.0, 8.0, 0.5, -0.75, 3.0, 3.5, -1.75, 1.5, 5.5, 1.0, -1.0, 0.0, 1.75,
                3.0, -1.0, -2.5, 0.25, -0.875, -4.5, 1.0, -1.875, 1.25),
           24);
    /* layer_norm: torch 2 float64, F.layer_norm(x, (3,), γ, β, eps=0.25) (the
     * middle of row 0 is β = 1 exactly: x̂ = 0), and for γ, β absent
     * F.layer_norm(x1, (4,), eps=1e-5) (numpy agrees) */
    tg_tensor *lx = leaf(2, SHAPE(2, 3), VALS(1, 2, 3, -1, 0, 4));
    expect("layer_norm", tg_layer_norm(lx, leaf(1, SHAPE(3), VALS(1, 2, 0.5)),
                                       leaf(1, SHAPE(3), VALS(0, 1, -1)), 0.25),
           2, SHAPE(2, 3),
           VALS(-1.044465935734187, 1.0, -0.4777670321329065, -0.9019752336033946,
                0.0980247663966054, -0.32351857479745405),
           6);
    expect("layer_norm without γ, β", tg_layer_norm(leaf(1, SHAPE(4), VALS(2, -1, 0.5, 4.5)),
                                                     NULL, NULL, 1e-5),
           1, SHAPE(4),
           VALS(0.24618268355559353, -1.2309134177779677, -0.49236536711118706,
                1.477096101333561),
           4);
    expect("layer_norm D = 1 (y = β)", tg_layer_norm(leaf(2, SHAPE(3, 1), VALS(5, -2, 7)),
                                                      leaf(1, SHAPE(1), VALS(3)),
                                                      leaf(1, SHAPE(1), VALS(0.5)), 1e-5),
           2, SHAPE(3, 1), VALS(0.5, 0.5, 0.5), 3);
    /* embedding, by hand: rows of W [3,2] = 1..6 */
    tg_tensor *EW = leaf(2, SHAPE(3, 2), VALS(1, 2, 3, 4, 5, 6));
    expect("embedding [2,2] indices",
           tg_embedding(EW, tg_leaf_from(T, TG_INPUT, "idx", TG_I32, 2, SHAPE(2, 2),
                                         (int32_t[]){2, 0, 0, 1})),
           3, SHAPE(2, 2, 2), VALS(5, 6, 1, 2, 1, 2, 3, 4), 8);
    expect("embedding scalar index",
           tg_embedding(EW, tg_leaf_from(T, TG_INPUT, "i0", TG_I32, 0, NULL, (int32_t[]){1})),
           1, SHAPE(2), VALS(3, 4), 2);

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
    /* its gradient ops, by hand on the first case with g = 1, 2, 3, 4:
     * dx[i][j] += g[i][j], dx[i+1][j+1] −= g[i][j]; dw[p][q] = Σ g·x shifted
     * = 37 + 10·(3p + q) */
    tg_tensor *cg = leaf(4, SHAPE(1, 1, 2, 2), VALS(1, 2, 3, 4));
    expect("conv2d_input_grad", tg_conv2d_input_grad(cg, cw, cx, NULL), 4, SHAPE(1, 1, 3, 3),
           VALS(1, 2, 0, 3, 3, -2, 0, -3, -4), 9);
    expect("conv2d_weight_grad", tg_conv2d_weight_grad(cx, cg, cw, NULL), 4, SHAPE(1, 1, 2, 2),
           VALS(37, 47, 67, 77), 4);
    /* and on the second with g[i] = ((3i) mod 7 − 3)/2: direct loops over
     * the definition in Python (float64, exact multiples of 1/8) */
    double cgv[16];
    for (int i = 0; i < 16; i++)
        cgv[i] = (double)((i * 3) % 7 - 3) / 2;
    tg_conv2d_opts cso = {{2, 1}, {1, 0}, {1, 2}, 2};
    expect("conv2d_input_grad stride, padding, dilation, groups",
           tg_conv2d_input_grad(leaf(4, SHAPE(1, 4, 2, 2), cgv), leaf(4, SHAPE(4, 1, 2, 2), cwv),
                                leaf(4, SHAPE(1, 2, 3, 4), cxv), &cso),
           4, SHAPE(1, 2, 3, 4),
           VALS(1.75, 0.5, 0.5, -2.0, -3.5, 2.5, 1.5, -2.5, -2.5, 1.5, 2.5, -3.5, -1.5, 1.5, 0.5,
                -2.5, -1.5, 0.0, 2.5, -2.0, -2.5, 0.5, 1.5, -1.5), 24);
    expect("conv2d_weight_grad stride, padding, dilation, groups",
           tg_conv2d_weight_grad(leaf(4, SHAPE(1, 2, 3, 4), cxv), leaf(4, SHAPE(1, 4, 2, 2), cgv),
                                 leaf(4, SHAPE(4, 1, 2, 2), cwv), &cso),
           4, SHAPE(4, 1, 2, 2),
           VALS(0.75, 1.5, 0.0, 1.0, 1.25, 0.5, -3.375, 0.0, 1.375, -1.0, -1.375, 1.5, 1.125, 0.0,
                -1.875, 0.75), 16);

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
