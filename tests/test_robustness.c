/* The robustness table: every public function, each kind of bad input it
 * can receive, and what it answers.  Each row below is run and asserted (the
 * call must fail the stated way, and the message must contain the expected
 * text), and the same rows, with the messages actually produced, are the
 * table of docs/robustness.md:
 *
 *   test_robustness                 run the rows (TAP)
 *   test_robustness --markdown      print the table for docs/robustness.md
 *   test_robustness DOC.md          also check that DOC.md holds this table
 *
 * Everything runs under ASan/UBSan in CI, so "no crash, no out-of-bounds
 * access" is checked for every row as well. */
#define _POSIX_C_SOURCE 200809L
#include "oplist.h"
#include "tapegrad.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>


static tg_tape *T;  /* the tape most rows use */
static tg_err E;    /* for functions without a tape */

/* ---- recording rows ------------------------------------------------------ */

typedef struct row {
    const char *fn, *input, *ret;
    char *msg; /* the message produced, or NULL */
} row;

static row rows[512];
static int n_rows;

static void record(const char *fn, const char *input, const char *ret, bool held,
                   const char *want, const char *msg)
{
    bool good = held && (!want || (msg && strstr(msg, want)));
    if (!ok(good, "%s: %s -> %s", fn, input, ret)) {
        diag("condition %s; message: %s", held ? "held" : "did not hold", msg ? msg : "(none)");
        if (want)
            diag("wanted a message containing: %s", want);
    }
    if (n_rows < (int)(sizeof rows / sizeof rows[0])) {
        rows[n_rows] = (row){fn, input, ret, msg && want ? strdup(msg) : NULL};
        n_rows++;
    }
}

/* a tape function: `expr` is true when the call failed as it should */
#define TROW(fn, input, ret, want, expr)                                       \
    do {                                                                       \
        tg_tape_clear_error(T);                                                \
        bool h_ = (expr);                                                      \
        record(fn, input, ret, h_, want, tg_tape_error(T));                    \
    } while (0)
/* a query: answers the caller (NULL, NaN) and leaves its message in
 * tg_query_error, never in the tape's error */
#define QROW(fn, input, ret, want, expr)                                       \
    do {                                                                       \
        tg_tape_clear_error(T);                                                \
        bool h_ = (expr) && !tg_tape_error(T);                                 \
        record(fn, input, ret, h_, want, tg_query_error(T));                   \
    } while (0)
/* a function reporting through tg_err E */
#define EROW(fn, input, ret, want, expr)                                       \
    do {                                                                       \
        memset(&E, 0, sizeof E);                                               \
        bool h_ = (expr);                                                      \
        record(fn, input, ret, h_, want, E.msg[0] ? E.msg : NULL);             \
    } while (0)
/* a function that answers by its value only */
#define VROW(fn, input, ret, expr) record(fn, input, ret, (expr), NULL, NULL)

/* ---- helpers ------------------------------------------------------------- */

static tg_tensor *f32(const char *name, int rank, const size_t *shape)
{
    return tg_param(T, name, TG_F32, rank, shape);
}

static tg_tensor *i32(const char *name, size_t n, const int32_t *v)
{
    return tg_leaf_from(T, TG_INPUT, name, TG_I32, 1, SHAPE(n), v);
}

/* an IDX file: header (type, dims) then `data_len` bytes of payload */
static bool write_idx(const char *path, int type, int rank, const uint32_t *dims,
                      size_t data_len)
{
    unsigned char buf[256] = {0, 0, (unsigned char)type, (unsigned char)rank};
    size_t at = 4;
    for (int i = 0; i < rank && at + 4 <= sizeof buf; i++, at += 4) {
        buf[at] = (unsigned char)(dims[i] >> 24), buf[at + 1] = (unsigned char)(dims[i] >> 16);
        buf[at + 2] = (unsigned char)(dims[i] >> 8), buf[at + 3] = (unsigned char)dims[i];
    }
    for (size_t i = 0; i < data_len && at < sizeof buf; i++)
        buf[at++] = (unsigned char)(i % 10);
    return tap_write_file(path, buf, at);
}

/* ---- the rows ------------------------------------------------------------ */

static void tapes(void)
{
    tg_tape_free(NULL);
    VROW("tg_tape_free", "NULL", "nothing (no-op)", true);
    tg_tape_clear(NULL);
    VROW("tg_tape_clear", "NULL", "nothing (no-op)", true);
    VROW("tg_tape_error", "NULL tape", "\"tape is NULL\"", !strcmp(tg_tape_error(NULL), "tape is NULL"));
    tg_tape_clear_error(NULL);
    VROW("tg_tape_clear_error", "NULL", "nothing (no-op)", true);
    VROW("tg_tape_nodes / tg_tape_leaves", "NULL", "0", !tg_tape_nodes(NULL) && !tg_tape_leaves(NULL));
    VROW("tg_tape_leaf", "index past the last leaf, or NULL tape", "NULL",
         !tg_tape_leaf(T, 100000) && !tg_tape_leaf(NULL, 0));
    VROW("tg_tape_find", "NULL name, unknown name, NULL tape", "NULL",
         !tg_tape_find(T, NULL) && !tg_tape_find(T, "no such") && !tg_tape_find(NULL, "x"));
    VROW("tg_tape_node_output", "index past the last node", "NULL", !tg_tape_node_output(T, 100000));
    tg_tape_stats st = {1, 1, 1, 1, 1, 1, 1};
    tg_tape_get_stats(NULL, &st);
    tg_tape_get_stats(T, NULL);
    VROW("tg_tape_get_stats", "NULL tape (NULL out: ignored)", "all zero", st.nodes == 0 && st.leaves == 0);
    VROW("tg_set_grad_enabled", "NULL tape", "false", !tg_set_grad_enabled(NULL, true));
    VROW("tg_set_keep_grads", "NULL tape", "false", !tg_set_keep_grads(NULL, true));
    VROW("tg_scope_push", "NULL tape", "-1", tg_scope_push(NULL, "a") == -1);
    TROW("tg_scope_push", "NULL or empty name", "-1", "scope_push: scope name is NULL or empty",
         tg_scope_push(T, NULL) == -1 && tg_scope_push(T, "") == -1);
    for (int i = 0; i < 8; i++)
        tg_scope_push(T, "s");
    TROW("tg_scope_push", "a 9th nested scope", "-1", "scope_push: scopes nest deeper than 8",
         tg_scope_push(T, "deep") == -1);
    for (int i = 0; i < 8; i++)
        tg_scope_pop(T);
    char longname[600];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    TROW("tg_scope_push", "a name of 599 bytes", "-1", "scope_push: scope name too long",
         tg_scope_push(T, longname) == -1);
    {
        tg_tensor *cw = f32("ckpt_w", 1, (size_t[]){3});
        VROW("tg_checkpoint_begin / tg_checkpoint_end", "NULL tape", "-1",
             tg_checkpoint_begin(NULL) == -1 && tg_checkpoint_end(NULL, 0, NULL) == -1);
        TROW("tg_checkpoint_end", "no segment open", "-1", "checkpoint_end: no segment is open",
             tg_checkpoint_end(T, 0, NULL) == -1);
        tg_checkpoint_begin(T);
        TROW("tg_checkpoint_begin", "a segment already open (nesting)", "-1",
             "is still open (segments do not nest", tg_checkpoint_begin(T) == -1);
        tg_tensor *mid = tg_tanh(cw), *cout = tg_exp(mid);
        TROW("tg_checkpoint_end", "an output not computed inside the segment", "-1",
             "was not computed inside segment", tg_checkpoint_end(T, 1, &cw) == -1);
        TROW("tg_checkpoint_end", "NULL output, or n > 0 with outs NULL", "-1",
             "output 0 is NULL",
             tg_checkpoint_end(T, 1, (tg_tensor *[]){NULL}) == -1 &&
                 tg_checkpoint_end(T, 1, NULL) == -1);
        TROW("tg_backward", "a checkpoint segment still open", "-1",
             "backward: checkpoint segment", tg_backward(tg_sum(cout)) == -1);
        tg_checkpoint_end(T, 1, &cout);
        TROW("any op, tg_item, tg_grad", "an intermediate dropped by a checkpoint segment",
             "NULL / NaN", "whose values are dropped after its forward",
             !tg_neg(mid) && isnan(tg_item(tg_sum(mid))));
    }
    tg_scope_pop(T);
    tg_scope_pop(NULL);
    VROW("tg_scope_pop", "no scope open, or NULL tape", "nothing (no-op)", true);
}

static void leaves(void)
{
    VROW("tg_leaf (and tg_param, tg_input, tg_const)", "NULL tape", "NULL",
         !tg_param(NULL, "w", TG_F32, 1, SHAPE(2)));
    TROW("tg_leaf", "kind not TG_PARAM/TG_INPUT/TG_CONST", "NULL",
         "leaf: kind 9 is not TG_PARAM, TG_INPUT or TG_CONST",
         !tg_leaf(T, (tg_kind)9, "w", TG_F32, 1, SHAPE(2)));
    TROW("tg_leaf", "dtype not TG_F32/TG_F64/TG_I32", "NULL", "leaf: dtype 7 is not TG_F32, TG_F64 or TG_I32",
         !tg_param(T, "w", (tg_dtype)7, 1, SHAPE(2)));
    TROW("tg_param", "dtype i32", "NULL", "leaf: a parameter must be f32 or f64, not i32",
         !tg_param(T, "w", TG_I32, 1, SHAPE(2)));
    TROW("tg_leaf", "rank below 0 or above 4", "NULL", "leaf: rank 5 is outside 0..4",
         !tg_param(T, "w", TG_F32, 5, SHAPE(1, 1, 1, 1, 1)) && !tg_param(NULL, "w", TG_F32, -1, NULL));
    TROW("tg_leaf", "shape NULL with rank > 0", "NULL", "leaf: shape is NULL for rank 2",
         !tg_param(T, "w", TG_F32, 2, NULL));
    TROW("tg_leaf", "a size of 0", "NULL", "leaf: size of axis 1 is 0", !tg_param(T, "w", TG_F32, 2, SHAPE(3, 0)));
    TROW("tg_leaf", "element count overflows size_t", "NULL", "leaf: element count overflows",
         !tg_param(T, "w", TG_F64, 2, SHAPE((size_t)1 << 40, (size_t)1 << 30)));
    TROW("tg_leaf", "more memory than the machine has (2^40 floats)", "NULL", "leaf: out of memory",
         !tg_param(T, "w", TG_F32, 2, SHAPE((size_t)1 << 20, (size_t)1 << 20)));
    TROW("tg_leaf_from", "data NULL", "NULL", "leaf_from: data is NULL",
         !tg_leaf_from(T, TG_INPUT, "x", TG_F32, 1, SHAPE(2), NULL));
    VROW("tg_scalar", "NULL tape", "NULL", !tg_scalar(NULL, TG_F32, 1));
    TROW("tg_scalar", "dtype i32", "NULL", "scalar: dtype must be f32 or f64", !tg_scalar(T, TG_I32, 1));
}

static void tensor_access(void)
{
    tg_tensor *w = f32("w", 2, SHAPE(2, 3));
    tg_tensor *lab = i32("lab", 3, (int32_t[]){0, 1, 2});
    tg_tensor *op = tg_relu(w);
    float buf[6] = {0};
    char sbuf[32];
    VROW("tg_set_requires_grad", "NULL", "-1", tg_set_requires_grad(NULL, true) == -1);
    TROW("tg_set_requires_grad", "an op's output", "-1", "set_requires_grad: 'relu' is not a leaf",
         tg_set_requires_grad(op, true) == -1);
    TROW("tg_set_requires_grad", "an i32 leaf", "-1", "set_requires_grad: an i32 tensor has no gradient",
         tg_set_requires_grad(lab, true) == -1);
    VROW("tg_tape_of / tg_dtype_of / tg_kind_of / tg_rank / tg_size / tg_name", "NULL",
         "NULL / 0 / 0 / -1 / 0 / NULL",
         !tg_tape_of(NULL) && !tg_dtype_of(NULL) && !tg_kind_of(NULL) && tg_rank(NULL) == -1 &&
             !tg_size(NULL) && !tg_name(NULL) && !tg_requires_grad(NULL));
    VROW("tg_dim", "axis out of range (also negative), or NULL", "0",
         !tg_dim(w, 2) && !tg_dim(w, -3) && !tg_dim(NULL, 0));
    VROW("tg_set_name", "NULL tensor", "-1", tg_set_name(NULL, "x") == -1);
    VROW("tg_op_name", "NULL", "\"(null)\"", !strcmp(tg_op_name(NULL), "(null)"));
    VROW("tg_node_index", "a leaf, or NULL", "-1", tg_node_index(w) == -1 && tg_node_index(NULL) == -1);
    VROW("tg_shape_str", "NULL tensor; NULL or empty buffer", "\"(null)\"; the buffer pointer",
         !strcmp(tg_shape_str(NULL, sbuf, sizeof sbuf), "(null)") && !tg_shape_str(w, NULL, 0) &&
             tg_shape_str(w, sbuf, 0) == sbuf);
    VROW("tg_data", "NULL", "NULL", !tg_data(NULL));
    QROW("tg_data_f32 / tg_data_f64 / tg_data_i32", "another dtype (a query: tg_query_error)", "NULL",
         "data_f64: tensor 'w' is f32", !tg_data_i32(w) && !tg_data_f32(lab) && !tg_data_f64(w));
    VROW("tg_copy_in / tg_copy_out", "NULL tensor", "-1", tg_copy_in(NULL, buf, TG_F32, 6) == -1);
    TROW("tg_copy_in / tg_copy_out", "NULL buffer", "-1", "copy_in: buffer is NULL",
         tg_copy_in(w, NULL, TG_F32, 6) == -1 && tg_copy_out(w, NULL, TG_F32, 6) == -1);
    TROW("tg_copy_in / tg_copy_out", "count not the tensor's size", "-1",
         "copy_in: count 5 differs from the size 6 of 'w' (2x3)", tg_copy_in(w, buf, TG_F32, 5) == -1);
    TROW("tg_copy_in / tg_copy_out", "buffer dtype not f32/f64/i32", "-1", "copy_out: dtype 0 is not",
         tg_copy_out(w, buf, (tg_dtype)0, 6) == -1);
    TROW("tg_copy_in", "i32 tensor, values not integers or beyond int32", "-1",
         "copy_in: element 2 (3e+10) is not an int32 value",
         tg_copy_in(lab, (double[]){1, 2, 3e10}, TG_F64, 3) == -1);
    tg_fill(w, 0.5);
    TROW("tg_copy_out", "to i32 from values that are not integers", "-1",
         "copy_out: element 0 is not an int32 value", tg_copy_out(w, (int32_t[6]){0}, TG_I32, 6) == -1);
    VROW("tg_fill", "NULL", "-1", tg_fill(NULL, 1) == -1);
    TROW("tg_fill", "i32 tensor, value not an integer", "-1", "fill: 0.5 is not an int32 value",
         tg_fill(lab, 0.5) == -1);
    VROW("tg_get", "index out of range, or NULL", "NaN", isnan(tg_get(w, 6)) && isnan(tg_get(NULL, 0)));
    TROW("tg_set", "index out of range", "-1", "set: index 6 out of range for 2x3", tg_set(w, 6, 1) == -1);
    TROW("tg_set", "i32 tensor, value not an integer", "-1", "set: 1.5 is not an int32 value",
         tg_set(lab, 0, 1.5) == -1);
    QROW("tg_item", "more than one element (a query: tg_query_error)", "NaN",
         "item: tensor 'w' has 6 elements (2x3), not 1", isnan(tg_item(w)));
    VROW("tg_item", "NULL", "NaN", isnan(tg_item(NULL)));
    VROW("tg_grad", "NULL", "NULL", !tg_grad(NULL));
    QROW("tg_grad", "an i32 tensor (a query: tg_query_error)", "NULL",
         "grad: 'lab' is i32 and has no gradient", !tg_grad(lab));
    TROW("tg_grad_out", "count not the tensor's size", "-1", "grad_out: count 2 differs from the size 6",
         tg_grad_out(w, buf, TG_F32, 2) == -1);
    VROW("tg_grad_get", "index out of range, or NULL", "NaN", isnan(tg_grad_get(w, 6)) && isnan(tg_grad_get(NULL, 0)));
}

static void random_init(void)
{
    tg_tensor *w = f32("w", 1, SHAPE(4));
    tg_tensor *lab = i32("lab", 2, (int32_t[]){0, 1});
    tg_rng r;
    tg_rng_seed(&r, 1);
    tg_rng_seed(NULL, 1);
    VROW("tg_rng_seed / tg_rng_next / tg_rng_uniform / tg_rng_normal / tg_rng_below", "NULL rng",
         "ignored / 0", !tg_rng_next(NULL) && tg_rng_uniform(NULL) == 0 && tg_rng_normal(NULL) == 0 &&
                            !tg_rng_below(NULL, 5));
    VROW("tg_rng_below", "n = 0", "0", tg_rng_below(&r, 0) == 0);
    VROW("tg_init_uniform / normal / xavier / he", "NULL tensor", "-1", tg_init_he(NULL, &r) == -1);
    TROW("tg_init_uniform / normal / xavier / he", "NULL rng", "-1", "init_uniform: rng is NULL",
         tg_init_uniform(w, NULL, 0, 1) == -1);
    TROW("tg_init_uniform / normal / xavier / he", "an i32 tensor", "-1", "init_xavier: 'lab' must be f32 or f64, not i32",
         tg_init_xavier(lab, &r) == -1);
    TROW("tg_init_uniform", "lo > hi, or not finite", "-1", "init_uniform: bad range [1, 0)",
         tg_init_uniform(w, &r, 1, 0) == -1 && tg_init_uniform(w, &r, 0, INFINITY) == -1);
    TROW("tg_init_normal", "stddev < 0, or not finite", "-1", "init_normal: bad mean 0 or stddev -1",
         tg_init_normal(w, &r, 0, -1) == -1 && tg_init_normal(w, &r, NAN, 1) == -1);
}

static void ops(void)
{
    tg_tensor *a = f32("a", 2, SHAPE(128, 784)), *b = f32("b", 2, SHAPE(512, 10));
    tg_tensor *v = f32("v", 1, SHAPE(4)), *sq = f32("sq", 2, SHAPE(4, 4));
    tg_tensor *d = tg_param(T, "d", TG_F64, 2, SHAPE(4, 4));
    tg_tensor *lab = i32("lab", 4, (int32_t[]){0, 1, 2, 1});
    tg_tensor *bad = i32("bad", 4, (int32_t[]){0, 1, 9, 1});
    tg_tape *other = tg_tape_new();
    tg_tensor *o = tg_param(other, "o", TG_F32, 2, SHAPE(4, 4));
    VROW("every op", "an input NULL, all inputs NULL", "NULL (the first error stays on the tape)",
         !tg_relu(NULL) && !tg_matmul(NULL, NULL));
    TROW("every op", "one input NULL, another not", "NULL", "add: input 1 is NULL", !tg_add(sq, NULL));
    TROW("every op", "inputs from two tapes", "NULL", "add: inputs belong to different tapes", !tg_add(sq, o));
    TROW("every op", "an i32 tensor where a float one is needed", "NULL",
         "sigmoid: input 0 must be f32 or f64, not i32", !tg_sigmoid(lab));
    TROW("every op with several float inputs", "f32 mixed with f64", "NULL", "mul: dtypes differ (f32, f64)",
         !tg_mul(sq, d));
    /* each elementwise op names itself (a row each, so that each op of
     * ops/ops.def has its row: tests/oplist.h) */
    TROW("tg_relu", "an i32 input", "NULL", "relu: input 0 must be f32 or f64, not i32", !tg_relu(lab));
    TROW("tg_tanh", "an i32 input", "NULL", "tanh: input 0 must be f32 or f64, not i32", !tg_tanh(lab));
    TROW("tg_exp", "an i32 input", "NULL", "exp: input 0 must be f32 or f64, not i32", !tg_exp(lab));
    TROW("tg_log", "an i32 input", "NULL", "log: input 0 must be f32 or f64, not i32", !tg_log(lab));
    TROW("tg_neg", "an i32 input", "NULL", "neg: input 0 must be f32 or f64, not i32", !tg_neg(lab));
    TROW("tg_scale", "an i32 input", "NULL", "scale: input 0 must be f32 or f64, not i32",
         !tg_scale(lab, 2));
    TROW("tg_div", "f32 divided by f64", "NULL", "div: dtypes differ (f32, f64)", !tg_div(sq, d));
    TROW("tg_matmul / tg_matmul_t", "inner dimensions differ", "NULL",
         "matmul: inner dimensions differ (128x784 · 512x10)", !tg_matmul(a, b));
    TROW("tg_matmul_t", "inner dimensions differ after transposing", "NULL",
         "matmul: inner dimensions differ (128x784ᵀ · 512x10ᵀ)", !tg_matmul_t(a, b, true, true));
    TROW("tg_matmul", "an operand not 2-D", "NULL", "matmul: operands must be 2-D (4 · 512x10)",
         !tg_matmul(v, b));
    TROW("tg_add_bias", "bias not [d] or [1,d]", "NULL",
         "add_bias: bias must be [4] or [1,4] for input 4x4, got 3", !tg_add_bias(sq, f32("c", 1, SHAPE(3))));
    TROW("tg_add_bias", "input not 2-D", "NULL", "add_bias: input 0 must have rank 2, got 4", !tg_add_bias(v, v));
    TROW("tg_add / tg_sub / tg_mul / tg_div", "shapes that do not broadcast", "NULL",
         "sub: shapes cannot be broadcast (4x4, 3x4)", !tg_sub(sq, f32("e", 2, SHAPE(3, 4))));
    TROW("tg_softmax", "a rank-0 input", "NULL", "softmax: input must have rank >= 1",
         !tg_softmax(tg_scalar(T, TG_F32, 1)));
    TROW("tg_log_softmax", "a rank-0 input", "NULL", "log_softmax: input must have rank >= 1",
         !tg_log_softmax(tg_scalar(T, TG_F32, 1)));
    TROW("tg_maximum", "shapes that do not broadcast", "NULL",
         "maximum: shapes cannot be broadcast (4x4, 3)", !tg_maximum(sq, f32("v3m", 1, SHAPE(3))));
    TROW("tg_minimum", "f32 mixed with f64", "NULL", "minimum: dtypes differ (f32, f64)",
         !tg_minimum(sq, d));
    TROW("tg_max_axis", "axis out of range (INT_MIN too)", "NULL", "max_axis: axis 2 out of range for 4x4",
         !tg_max_axis(sq, 2, false) && !tg_max_axis(sq, INT_MIN, false));
    TROW("tg_max_mask", "axis out of range (INT_MIN too)", "NULL", "max_mask: axis 2 out of range for 4x4",
         !tg_max_mask(sq, 2) && !tg_max_mask(sq, INT_MIN));
    TROW("tg_softmax_causal", "a rank-1 input", "NULL",
         "softmax: causal: input must have rank >= 2 [..., Tq, Tk], got 4",
         !tg_softmax_causal(f32("v4", 1, SHAPE(4))));
    TROW("tg_log_softmax_causal", "Tq > Tk", "NULL", "log_softmax: causal: input 5x4 has Tq = 5 > Tk = 4",
         !tg_log_softmax_causal(f32("q54", 2, SHAPE(5, 4))));
    TROW("tg_sum_axis", "axis out of range", "NULL", "sum: axis 2 out of range for 4x4",
         !tg_sum_axis(sq, 2, false));
    TROW("tg_mean_axis", "axis out of range (negative)", "NULL", "mean: axis -3 out of range for 4x4",
         !tg_mean_axis(sq, -3, true));
    TROW("tg_transpose", "rank below 2", "NULL", "transpose: input must have rank >= 2, got 4", !tg_transpose(v));
    TROW("tg_reshape", "another element count", "NULL",
         "reshape: cannot reshape 4x4 (16 elements) to 15 elements", !tg_reshape(sq, 2, SHAPE(3, 5)));
    TROW("tg_reshape", "rank outside 0..4 or shape NULL", "NULL", "reshape: rank 5 outside 0..4, or shape NULL",
         !tg_reshape(sq, 5, SHAPE(1, 1, 1, 1, 16)) && !tg_reshape(sq, 2, NULL));
    TROW("tg_reshape", "a size of 0", "NULL", "reshape: size 0 of axis 0 is not valid", !tg_reshape(sq, 2, SHAPE(0, 16)));
    TROW("tg_class_means", "labels not [n]", "NULL", "class_means: labels must be [4] for input 4x4, got 2",
         !tg_class_means(sq, i32("l2", 2, (int32_t[]){0, 1}), 2));
    TROW("tg_class_means", "classes < 1", "NULL", "class_means: number of classes 0 must be >= 1",
         !tg_class_means(sq, lab, 0));
    TROW("tg_class_means", "a label outside [0, classes)", "NULL",
         "class_means: label 9 at row 2 is outside [0, 3)", !tg_class_means(sq, bad, 3));
    TROW("tg_gather_rows", "indices not 1-D", "NULL", "gather_rows: indices must be 1-D, got 2x2",
         !tg_gather_rows(sq, tg_input(T, "i2", TG_I32, 2, SHAPE(2, 2))));
    TROW("tg_gather_rows", "an index outside [0, rows)", "NULL",
         "gather_rows: index 9 at position 2 is outside [0, 4)", !tg_gather_rows(sq, bad));
    TROW("tg_scatter_rows", "src not [indices' shape, ...]; indices of rank > 3", "NULL",
         "scatter_rows: src 4x4 must start with the indices' shape 2",
         !tg_scatter_rows(sq, i32("l2s", 2, (int32_t[]){0, 1}), 3) &&
             !tg_scatter_rows(f32("s14", 4, SHAPE(1, 1, 1, 4)),
                              tg_input(T, "i4", TG_I32, 4, SHAPE(1, 1, 1, 4)), 2));
    TROW("tg_scatter_rows", "rows 0", "NULL", "scatter_rows: rows 0 must be >= 1 (src 4x4)",
         !tg_scatter_rows(sq, lab, 0));
    TROW("tg_scatter_rows", "rows so large the result overflows (SIZE_MAX)", "NULL",
         "scatter_rows: output shape overflows", !tg_scatter_rows(sq, lab, SIZE_MAX));
    TROW("tg_scatter_rows", "an index outside [0, rows) (also at replay)", "NULL",
         "scatter_rows: index 9 at position 2 is outside [0, 4)", !tg_scatter_rows(sq, bad, 4));
    TROW("tg_trace", "not a square matrix", "NULL", "trace: input must be a square matrix, got 2x3",
         !tg_trace(f32("r", 2, SHAPE(2, 3))));
    tg_tensor *cx = f32("cx", 4, SHAPE(2, 4, 5, 6)), *cw = f32("cw", 4, SHAPE(6, 2, 3, 3));
    tg_conv2d_opts g2 = {{1, 1}, {0, 0}, {1, 1}, 2};
    TROW("tg_conv2d", "x or w not 4-D; w not [O, C/groups, kH, kW]; bias not [O]", "NULL",
         "conv2d: weight 6x2x3x3 must have 4 input channels (C/groups) for input 2x4x5x6 and groups 1",
         !tg_conv2d(cx, cw, NULL, NULL) && !tg_conv2d(sq, cw, NULL, &g2) &&
             !tg_conv2d(cx, sq, NULL, &g2) && !tg_conv2d(cx, cw, v, &g2));
    TROW("tg_conv2d", "C or O not divisible by groups", "NULL",
         "conv2d: input 2x4x5x6 has 4 channels, not divisible by groups 3",
         !tg_conv2d(cx, cw, NULL, &(tg_conv2d_opts){.groups = 3}) &&
             !tg_conv2d(cx, f32("cw5", 4, SHAPE(5, 2, 3, 3)), NULL, &g2));
    TROW("tg_conv2d", "negative stride, padding, dilation or groups", "NULL",
         "conv2d: stride -1x1 is negative (0 means 1)",
         !tg_conv2d(cx, cw, NULL, &(tg_conv2d_opts){{-1, 1}, {0, 0}, {1, 1}, 2}) &&
             !tg_conv2d(cx, cw, NULL, &(tg_conv2d_opts){{1, 1}, {-1, 0}, {1, 1}, 2}) &&
             !tg_conv2d(cx, cw, NULL, &(tg_conv2d_opts){{1, 1}, {0, 0}, {1, -1}, 2}) &&
             !tg_conv2d(cx, cw, NULL, &(tg_conv2d_opts){.groups = -1}));
    TROW("tg_conv2d", "dilated kernel larger than the padded input", "NULL",
         "conv2d: kernel 3x3 with dilation 3x1 is larger than the padded input (2x4x5x6 padded by 0x0)",
         !tg_conv2d(cx, cw, NULL, &(tg_conv2d_opts){{1, 1}, {0, 0}, {3, 1}, 2}));
    TROW("tg_conv2d", "padding so large that the sizes overflow", "NULL",
         "conv2d: sizes overflow: output 4294967297x4294967298 per channel",
         !tg_conv2d(cx, cw, NULL, &(tg_conv2d_opts){{1, 1}, {2147483647, 2147483647}, {1, 1}, 2}));
    TROW("tg_conv2d_input_grad", "g not conv2d's output shape; x or w as for tg_conv2d", "NULL",
         "conv2d_input_grad: gradient 4x4 must be the output shape [2,6,3,4] of input 2x4x5x6 and weight 6x2x3x3",
         !tg_conv2d_input_grad(sq, cw, cx, &g2) && !tg_conv2d_input_grad(sq, cw, sq, &g2));
    TROW("tg_conv2d_weight_grad", "g not conv2d's output shape; x or w as for tg_conv2d", "NULL",
         "conv2d_weight_grad: gradient 4x4 must be the output shape [2,6,3,4] of input 2x4x5x6 and weight 6x2x3x3",
         !tg_conv2d_weight_grad(cx, sq, cw, &g2) && !tg_conv2d_weight_grad(cx, sq, cw, NULL));
    TROW("tg_mse", "prediction and target shapes differ", "NULL",
         "mse: prediction 4x4 and target 4 differ in shape", !tg_mse(sq, v, TG_SUM));
    TROW("tg_bce / tg_bce_logits", "input and target shapes differ", "NULL",
         "bce_logits: input 4x4 and target 4 differ in shape", !tg_bce_logits(sq, v, TG_MEAN));
    tg_tensor *prob = tg_leaf_from(T, TG_PARAM, "prob", TG_F32, 1, SHAPE(2), (float[]){0.5f, 2});
    TROW("tg_bce", "a probability outside [0, 1] or NaN (also at replay)", "NULL",
         "bce: probability 2 at element 1 of 2 is outside [0, 1]", !tg_bce(prob, prob, TG_MEAN));
    TROW("every loss", "flags not one reduction (| TG_HALF for mse)", "NULL",
         "bce: invalid flags 0x4 (TG_SUM, TG_MEAN or TG_BATCH_MEAN)",
         !tg_bce(sq, sq, TG_HALF) && !tg_mse(sq, sq, 3) && !tg_softmax_ce(sq, lab, 0x40));
    TROW("tg_softmax_ce", "labels not [n]", "NULL", "softmax_ce: labels must be [4] for logits 4x4, got 2",
         !tg_softmax_ce(sq, i32("l3", 2, (int32_t[]){0, 1}), TG_MEAN));
    TROW("tg_softmax_ce", "a label outside [0, classes)", "NULL",
         "softmax_ce: label 9 at row 2 is outside [0, 4)", !tg_softmax_ce(sq, bad, TG_MEAN));
    TROW("tg_softmax_ce", "labels not the logits' leading shape", "NULL",
         "softmax_ce: labels must be [2x3] for logits 2x3x4, got 3x2",
         !tg_softmax_ce(f32("z234", 3, SHAPE(2, 3, 4)),
                        tg_leaf_from(T, TG_INPUT, "l32", TG_I32, 2, SHAPE(3, 2),
                                     (int32_t[]){0, 0, 0, 0, 0, 0}),
                        TG_MEAN));
    TROW("tg_softmax_ce_ignore", "a label outside [0, classes), not the ignore index", "NULL",
         "softmax_ce: label 9 at row 2 is outside [0, 4)", !tg_softmax_ce_ignore(sq, bad, -100, TG_MEAN));
    TROW("tg_softmax_ce_onehot", "targets not the logits' shape", "NULL",
         "softmax_ce_onehot: targets must be 4x4 like the logits, got 4x3",
         !tg_softmax_ce_onehot(sq, f32("t", 2, SHAPE(4, 3)), TG_SUM));
    TROW("tg_l2", "lambda not finite", "NULL", "l2: lambda inf is not finite", !tg_l2(sq, INFINITY));
    tg_tensor *px = f32("px", 4, SHAPE(2, 3, 5, 4));
    tg_pool2d_opts pk2 = {{2, 2}, {0, 0}, {0, 0}, false};
    TROW("tg_max_pool2d / tg_avg_pool2d", "input not 4-D", "NULL",
         "max_pool2d: input must be 4-D [N,C,H,W], got 4x4", !tg_max_pool2d(sq, &pk2));
    TROW("tg_max_pool2d / tg_avg_pool2d", "opts NULL", "NULL", "avg_pool2d: opts is NULL",
         !tg_avg_pool2d(px, NULL) && !tg_max_pool2d(px, NULL));
    TROW("tg_max_pool2d / tg_avg_pool2d", "kernel < 1, stride < 0", "NULL",
         "max_pool2d: stride -1x0 must be >= 0 (0: the kernel size)",
         !tg_max_pool2d(px, &(tg_pool2d_opts){{2, 2}, {-1, 0}, {0, 0}, false}) &&
             !tg_avg_pool2d(px, &(tg_pool2d_opts){{0, 2}, {0, 0}, {0, 0}, false}));
    TROW("tg_max_pool2d / tg_avg_pool2d", "padding < 0 or above half the kernel", "NULL",
         "max_pool2d: padding 2x0 must be between 0 and half the kernel 3x3",
         !tg_max_pool2d(px, &(tg_pool2d_opts){{3, 3}, {1, 1}, {2, 0}, false}));
    TROW("tg_max_pool2d / tg_avg_pool2d", "kernel larger than the padded input (also INT_MAX)",
         "NULL", "avg_pool2d: kernel 2147483647x2 is larger than the input 2x3x5x4 padded by 0x0",
         !tg_avg_pool2d(px, &(tg_pool2d_opts){{INT32_MAX, 2}, {0, 0}, {0, 0}, false}));
    TROW("tg_max_pool2d_scatter", "g not x pooled; x and opts as for tg_max_pool2d", "NULL",
         "max_pool2d_scatter: g must be x pooled [2,3,2,2] for input 2x3x5x4, got 4x4",
         !tg_max_pool2d_scatter(sq, px, &pk2) && !tg_max_pool2d_scatter(px, sq, &pk2));
    TROW("tg_max_pool2d_gather", "t not x's shape; x and opts as for tg_max_pool2d", "NULL",
         "max_pool2d_gather: t must be shaped as x [2,3,5,4] for input 2x3x5x4, got 4x4",
         !tg_max_pool2d_gather(sq, px, &pk2) && !tg_max_pool2d_gather(px, px, NULL));
    TROW("tg_avg_pool2d_scatter", "g not x pooled; x and opts as for tg_avg_pool2d", "NULL",
         "avg_pool2d_scatter: g must be x pooled [2,3,2,2] for input 2x3x5x4, got 4x4",
         !tg_avg_pool2d_scatter(sq, px, &pk2) && !tg_avg_pool2d_scatter(px, px, NULL));
    TROW("tg_leaky_relu", "an i32 input", "NULL", "leaky_relu: input 0 must be f32 or f64, not i32",
         !tg_leaky_relu(lab, 0.01));
    TROW("tg_gelu", "an i32 input", "NULL", "gelu: input 0 must be f32 or f64, not i32",
         !tg_gelu(lab));
    TROW("tg_gelu_grad", "an i32 input", "NULL", "gelu_grad: input 0 must be f32 or f64, not i32",
         !tg_gelu_grad(lab));
    TROW("tg_silu", "an i32 input", "NULL", "silu: input 0 must be f32 or f64, not i32",
         !tg_silu(lab));
    TROW("tg_softplus", "an i32 input", "NULL", "softplus: input 0 must be f32 or f64, not i32",
         !tg_softplus(lab));
    TROW("tg_sqrt", "an i32 input", "NULL", "sqrt: input 0 must be f32 or f64, not i32",
         !tg_sqrt(lab));
    TROW("tg_abs", "an i32 input", "NULL", "abs: input 0 must be f32 or f64, not i32",
         !tg_abs(lab));
    TROW("tg_pow", "p NaN or ±inf; an i32 input", "NULL",
         "pow: exponent p nan is not finite (input 4x4)",
         !tg_pow(sq, NAN) && !tg_pow(sq, INFINITY) && !tg_pow(lab, 2));
    TROW("tg_clamp", "lo > hi, lo or hi NaN; an i32 input", "NULL",
         "clamp: bounds lo 1, hi -1 are not lo <= hi (input 4x4)",
         !tg_clamp(sq, 1, -1) && !tg_clamp(sq, NAN, 1) && !tg_clamp(sq, 0, NAN) &&
             !tg_clamp(lab, 0, 1));
    TROW("tg_add_scalar", "c NaN; an i32 input", "NULL", "add_scalar: c is NaN (input 4x4)",
         !tg_add_scalar(sq, NAN) && !tg_add_scalar(lab, 1));
    TROW("tg_step", "the value at 0 NaN or ±inf; an i32 input", "NULL",
         "step: the value at 0, nan, is not finite (input 4x4)",
         !tg_step(sq, NAN) && !tg_step(sq, INFINITY) && !tg_step(lab, 0));
    TROW("tg_one_hot / tg_one_hot_ignore", "a float input; classes < 1; dtype not float", "NULL",
         "one_hot: classes must be >= 1, got 0 (labels 4)",
         !tg_one_hot(lab, 0, TG_F64) && !tg_one_hot(sq, 3, TG_F64) &&
             !tg_one_hot_ignore(lab, 3, -1, TG_I32));
    tg_set(lab, 2, 7);
    TROW("tg_one_hot / tg_one_hot_ignore", "a label outside [0, classes) (not the ignored one)",
         "NULL", "one_hot: label 7 at position 2 is outside [0, 3)",
         !tg_one_hot(lab, 3, TG_F32) && !tg_one_hot_ignore(lab, 3, 1, TG_F32));
    tg_set(lab, 2, 2);
    tg_tensor *rm = tg_input(T, "rm", TG_F32, 1, SHAPE(4)), *rv = tg_input(T, "rv", TG_F32, 1, SHAPE(4));
    TROW("tg_batch_norm", "input not [N,C] or [N,C,H,W]; gamma, beta or a running statistic not [C]",
         "NULL", "batch_norm: gamma must be [4] (the channels of input 4x4), got 3",
         !tg_batch_norm(sq, f32("g3", 1, SHAPE(3)), v, rm, rv, 0.1, 1e-5) &&
             !tg_batch_norm(v, v, v, rm, rv, 0.1, 1e-5));
    TROW("tg_batch_norm", "momentum outside [0, 1] or NaN; eps <= 0 or not finite", "NULL",
         "batch_norm: momentum 1.5 is outside [0, 1]",
         !tg_batch_norm(sq, v, v, rm, rv, 1.5, 1e-5) && !tg_batch_norm(sq, v, v, rm, rv, 0.1, 0) &&
             !tg_batch_norm(sq, v, v, rm, rv, 0.1, INFINITY));
    TROW("tg_batch_norm", "a running statistic that requires a gradient, is an op's output, or is "
         "used twice", "NULL", "batch_norm: running_mean ('v') requires a gradient",
         !tg_batch_norm(sq, v, v, v, rv, 0.1, 1e-5) && !tg_batch_norm(sq, v, v, rm, rm, 0.1, 1e-5) &&
             !tg_batch_norm(sq, v, v, rm, tg_relu(rv), 0.1, 1e-5));
    TROW("tg_batch_norm", "one value per channel (N·H·W = 1) in training mode (also at replay)",
         "NULL", "batch_norm: expected more than 1 value per channel in training mode, got input 1x4",
         !tg_batch_norm(f32("one", 2, SHAPE(1, 4)), v, v, rm, rv, 0.1, 1e-5));
    TROW("tg_dropout", "p outside [0, 1) or NaN", "NULL", "dropout: p 1 is outside [0, 1) (input 4x4)",
         !tg_dropout(sq, 1) && !tg_dropout(sq, -0.5) && !tg_dropout(sq, NAN));
    TROW("tg_dropout_apply", "y not a dropout's output; t not y's shape", "NULL",
         "dropout_apply: y ('sq', 4x4) must be the output of tg_dropout, not of a leaf",
         !tg_dropout_apply(sq, sq) && !tg_dropout_apply(v, tg_dropout(sq, 0.5)));
    TROW("tg_bmm", "a rank outside 2..4; inner dimensions differ; batch axes that do not broadcast",
         "NULL", "bmm: batch axes do not broadcast (2x4x4 · 3x4x4)",
         !tg_bmm(f32("b2", 3, SHAPE(2, 4, 4)), f32("b3", 3, SHAPE(3, 4, 4)), false, false) &&
             !tg_bmm(sq, v, false, false) && !tg_bmm(sq, f32("b53", 2, SHAPE(5, 3)), false, false));
    TROW("tg_layer_norm", "a scalar input; gamma or beta not [D]; eps <= 0 or not finite", "NULL",
         "layer_norm: gamma must be [4] (the last axis of input 4x4), got 4x4",
         !tg_layer_norm(sq, sq, NULL, 1e-5) && !tg_layer_norm(f32("s0", 0, NULL), NULL, NULL, 1e-5) &&
             !tg_layer_norm(sq, v, v, 0) && !tg_layer_norm(sq, NULL, NULL, INFINITY));
    TROW("tg_embedding", "weight not 2-D; indices not i32 or of rank > 3", "NULL",
         "embedding: weight must be 2-D [V,D], got 4", !tg_embedding(v, lab) && !tg_embedding(sq, sq));
    TROW("tg_embedding", "an index outside [0, V) (also at replay)", "NULL",
         "embedding: index 9 at position 2 is outside [0, 4) (weight 4x4)", !tg_embedding(sq, bad));
    TROW("tg_permute", "perm NULL, an entry out of range or repeated; a scalar input", "NULL",
         "permute: perm[1] = 1 is not a permutation of 0..1 (input 4x4)",
         !tg_permute(sq, (int[]){1, 1}) && !tg_permute(sq, (int[]){0, -1}) &&
             !tg_permute(sq, (int[]){0, INT_MAX}) && !tg_permute(sq, NULL) &&
             !tg_permute(f32("s0", 0, NULL), (int[]){0}));
    TROW("tg_slice", "axis out of range; length 0; start + length beyond the axis (also SIZE_MAX)",
         "NULL", "slice: window start 3 length 2 is beyond axis 1 of 4x4 (size 4)",
         !tg_slice(sq, 1, 3, 2) && !tg_slice(sq, 2, 0, 1) && !tg_slice(sq, INT_MIN, 0, 1) &&
             !tg_slice(sq, 0, 0, 0) && !tg_slice(sq, 0, SIZE_MAX, 2) && !tg_slice(sq, 0, 2, SIZE_MAX));
    TROW("tg_concat", "shapes that differ off the axis, dtypes that differ; axis out of range", "NULL",
         "concat: input 1 (f32 4) does not match input 0 (f32 4x4) off axis 0",
         !tg_concat(2, (tg_tensor *[]){sq, v}, 0) && !tg_concat(2, (tg_tensor *[]){sq, d}, 0) &&
             !tg_concat(2, (tg_tensor *[]){sq, sq}, 2) &&
             !tg_concat(7, (tg_tensor *[]){sq, sq, sq, sq, sq, sq, v}, 1));
    TROW("tg_concat", "an input NULL or of another tape", "NULL", "concat: input 1 is NULL",
         !tg_concat(2, (tg_tensor *[]){sq, NULL}, 0) && !tg_concat(2, (tg_tensor *[]){sq, o}, 0));
    VROW("tg_concat, tg_stack", "n < 1, xs NULL (no tape to tell)", "NULL",
         !tg_concat(0, (tg_tensor *[]){sq}, 0) && !tg_concat(-1, (tg_tensor *[]){sq}, 0) &&
             !tg_concat(2, NULL, 0) && !tg_stack(0, (tg_tensor *[]){sq}, 0) && !tg_stack(1, NULL, 0));
    TROW("tg_stack", "inputs of different shapes; a result of rank > 4; axis out of range", "NULL",
         "stack: input 1 (f32 4) differs from input 0 (f32 4x4)",
         !tg_stack(2, (tg_tensor *[]){sq, v}, 0) &&
             !tg_stack(2, (tg_tensor *[]){f32("r4", 4, SHAPE(1, 1, 2, 2)), f32("r4b", 4, SHAPE(1, 1, 2, 2))}, 0) &&
             !tg_stack(2, (tg_tensor *[]){sq, sq}, 3) && !tg_stack(2, (tg_tensor *[]){sq, sq}, -4));
    /* the recurrent cells (src/train/rnn.c) check their contract first */
    tg_gru rg;
    tg_lstm rl;
    TROW("tg_gru_new, tg_lstm_new", "input or hidden < 1; dtype i32; the struct NULL", "-1",
         "gru_new: input = 0 and hidden = 4 must both be >= 1",
         tg_gru_new(T, &rg, 0, 4, TG_F32, "rg", 1) == -1 &&
             tg_lstm_new(T, &rl, 4, 4, TG_I32, "rl", 1) == -1 &&
             tg_gru_new(T, NULL, 4, 4, TG_F32, "rg", 1) == -1);
    tg_gru_new(T, &rg, 4, 4, TG_F32, "rg", 1);
    tg_lstm_new(T, &rl, 4, 4, TG_F32, "rl", 1);
    tg_tensor *rh = tg_input(T, "rh", TG_F32, 2, SHAPE(4, 4));
    TROW("tg_gru_cell", "x not [B,input]; h not [B,H]; x f64 for f32 weights; weights that do not "
         "fit input/hidden", "NULL", "gru_cell: x is 4 but the cell takes x [B,4] (w_ih 4x12)",
         !tg_gru_cell(&rg, v, rh) && !tg_gru_cell(&rg, rh, a) && !tg_gru_cell(&rg, d, rh) &&
             !tg_gru_cell(&(tg_gru){rg.w_ih, rg.w_hh, rg.b_ih, rg.b_hh, 4, 5}, rh, rh));
    TROW("tg_lstm_cell", "c not [B,H]; h_out or c_out NULL; the cell NULL", "-1",
         "lstm_cell: c is 4 but x 4x4 and hidden = 4 need c [4,4] (w_hh 4x16)",
         tg_lstm_cell(&rl, rh, rh, v, &(tg_tensor *){NULL}, &(tg_tensor *){NULL}) == -1 &&
             tg_lstm_cell(&rl, rh, rh, rh, NULL, NULL) == -1 &&
             tg_lstm_cell(NULL, rh, rh, rh, &(tg_tensor *){NULL}, &(tg_tensor *){NULL}) == -1);
    VROW("tg_gru_cell, tg_lstm_cell", "x, h or c NULL (no error, as an op)", "NULL, -1",
         !tg_gru_cell(&rg, NULL, rh) && !tg_gru_cell(&rg, rh, NULL) &&
             tg_lstm_cell(&rl, rh, rh, NULL, &(tg_tensor *){NULL}, &(tg_tensor *){NULL}) == -1);
    tg_tape_free(other);
}

static void running(void)
{
    tg_tensor *w = f32("w", 1, SHAPE(3));
    tg_tensor *lab = i32("labels", 3, (int32_t[]){0, 1, 2});
    tg_tensor *z = f32("z", 2, SHAPE(3, 3));
    tg_tensor *y = tg_relu(w);
    tg_tensor *ce = tg_softmax_ce(z, lab, TG_MEAN);
    VROW("tg_replay / tg_forward / tg_backward", "NULL", "-1",
         tg_replay(NULL) == -1 && tg_forward(NULL) == -1 && tg_backward(NULL) == -1);
    tg_set(lab, 1, 5);
    TROW("tg_replay / tg_forward", "a label changed to a value out of range", "-1",
         "label 5 at row 1 is outside [0, 3)", tg_forward(ce) == -1);
    tg_set(lab, 1, 1);
    TROW("tg_backward / tg_backward_vjp", "after a replay that failed (until one succeeds)", "-1",
         "backward: the last replay failed at node", tg_backward(ce) == -1);
    tg_forward(ce);
    TROW("tg_backward / tg_backward_vjp", "a leaf that a gradient reads, written since the forward",
         "-1", "backward: 'w' (3) was written after the forward of relu",
         tg_set(w, 0, 1) == 0 && tg_backward_vjp(y, (float[]){1, 1, 1}) == -1);
    tg_forward(y);
    TROW("tg_set / tg_fill / tg_copy_in / tg_init_*", "an op's output", "-1",
         "set: 'relu' is the output of relu", tg_set(y, 0, 1) == -1);
    TROW("tg_backward", "a root with more than one element", "-1",
         "backward: root 'relu' has 3 elements (3); a non-scalar root needs its grad_output", tg_backward(y) == -1);
    TROW("tg_backward / tg_backward_vjp", "an i32 root", "-1",
         "backward: root 'labels' is i32 and cannot be differentiated", tg_backward(lab) == -1);
    bool was = tg_set_grad_enabled(T, false);
    tg_tensor *c = tg_sum(w);
    tg_set_grad_enabled(T, was);
    TROW("tg_backward", "a result computed with recording off", "-1",
         "backward: root 'const' is a constant (computed with recording off, or made by tg_scalar)", tg_backward(c) == -1);
    TROW("tg_backward_vjp", "grad_output NULL", "-1", "backward: grad_output is NULL", tg_backward_vjp(y, NULL) == -1);
    tg_zero_grad(NULL);
    VROW("tg_zero_grad", "NULL", "nothing (no-op)", true);
    VROW("tg_set_anomaly", "NULL", "false", !tg_set_anomaly(NULL, true));
    tg_set_anomaly(T, true);
    TROW("any op, in anomaly mode", "a result that is NaN or Inf", "NULL",
         "log: anomaly: forward produced NaN in output 'log' (3) at element 0",
         !tg_log(tg_neg(tg_add(w, tg_scalar(T, TG_F32, 1)))));
    tg_set_anomaly(T, false);
}

static void checking(void)
{
    tg_tensor *w = f32("w", 1, SHAPE(3));
    tg_tensor *lab = i32("labels", 3, (int32_t[]){0, 1, 2});
    tg_tensor *y = tg_relu(w), *loss = tg_sum(y);
    tg_tape *other = tg_tape_new();
    tg_tensor *o = tg_param(other, "o", TG_F32, 1, SHAPE(3));
    tg_check c;
    VROW("tg_check_fd / tg_check_grad", "NULL loss / NULL tensor", "-1",
         tg_check_fd(NULL, 1, &w, 0, &c) == -1 && tg_check_grad(NULL, &c, TG_F64, &c) == -1);
    TROW("tg_check_fd", "out or wrt NULL, or n_wrt < 0", "-1", "check_fd: out or wrt is NULL, or n_wrt < 0",
         tg_check_fd(loss, 1, NULL, 0, &c) == -1 && tg_check_fd(loss, -1, &w, 0, &c) == -1 &&
             tg_check_fd(loss, 1, &w, 0, NULL) == -1);
    TROW("tg_check_fd", "a loss with more than one element, or i32", "-1",
         "check_fd: loss must be a float scalar, got f32 3", tg_check_fd(y, 1, &w, 0, &c) == -1);
    TROW("tg_check_fd", "a loss that is a leaf", "-1", "check_fd: loss must be the output of a recorded op",
         tg_check_fd(tg_scalar(T, TG_F32, 1), 1, &w, 0, &c) == -1);
    TROW("tg_check_fd", "step < 0 or not finite", "-1", "check_fd: step -1 is not valid",
         tg_check_fd(loss, 1, &w, -1, &c) == -1 && tg_check_fd(loss, 1, &w, NAN, &c) == -1);
    TROW("tg_check_fd", "wrt[i] NULL or from another tape", "-1", "check_fd: wrt[0] is NULL or on another tape",
         tg_check_fd(loss, 1, &o, 0, &c) == -1);
    TROW("tg_check_fd", "wrt[i] an op's output", "-1", "check_fd: wrt[0] ('relu') is not a leaf",
         tg_check_fd(loss, 1, &y, 0, &c) == -1);
    TROW("tg_check_fd / tg_check_grad", "an i32 tensor", "-1", "check_fd: 'labels' is i32 and has no gradient",
         tg_check_fd(loss, 1, &lab, 0, &c) == -1);
    tg_tensor *unused = f32("unused", 1, SHAPE(2));
    TROW("tg_check_fd", "wrt[i] that the loss does not depend on", "-1",
         "check_fd: wrt[0] ('unused') does not reach the loss", tg_check_fd(loss, 1, &unused, 0, &c) == -1);
    tg_tensor *in = tg_input(T, "in", TG_F32, 1, SHAPE(2));
    TROW("tg_check_fd", "n_wrt = 0 (every parameter) and the loss depends on none", "-1",
         "check_fd: no parameters: the loss depends on no leaf that requires a gradient",
         tg_check_fd(tg_sum(in), 0, NULL, 0, &c) == -1);
    tg_tensor *at0 = f32("at0", 1, SHAPE(2));
    tg_set(at0, 0, 0);
    tg_set(at0, 1, 0);
    TROW("tg_check_fd", "every element at a kink (relu at 0): nothing to compare", "-1",
         "check_fd: nothing compared: the stencil of each of the 2 values crosses a kink",
         tg_check_fd(tg_sum(tg_relu(at0)), 1, &at0, 0, &c) == -1);
    TROW("tg_check_grad", "ref or out NULL", "-1", "check_grad: ref is NULL",
         tg_check_grad(w, NULL, TG_F64, &c) == -1 && tg_check_grad(w, (double[3]){0}, TG_F64, NULL) == -1);
    TROW("tg_check_grad", "ref dtype not f32/f64", "-1", "check_grad: ref dtype must be f32 or f64",
         tg_check_grad(w, (int32_t[3]){0}, TG_I32, &c) == -1);
    /* second order */
    tg_tensor *gs[2];
    double H[9];
    TROW("tg_grad_graph", "y NULL-free but wrt NULL, n < 1, grads NULL", "-1",
         "grad_graph: needs n >= 1 tensors in wrt and room for n gradients (n = 0, wrt given, "
         "grads given)",
         tg_grad_graph(loss, NULL, 0, &w, gs) == -1 && tg_grad_graph(loss, NULL, 1, NULL, gs) == -1 &&
             tg_grad_graph(loss, NULL, 1, &w, NULL) == -1);
    TROW("tg_grad_graph", "a non-scalar y without grad_output", "-1",
         "grad_graph: y 'relu' has 3 elements (3); a non-scalar y needs its grad_output",
         tg_grad_graph(y, NULL, 1, &w, gs) == -1);
    TROW("tg_grad_graph", "grad_output of another shape or dtype", "-1",
         "grad_graph: grad_output 'unused' is f32 2 but y 'relu' is f32 3",
         tg_grad_graph(y, unused, 1, &w, gs) == -1);
    TROW("tg_grad_graph", "wrt[i] NULL, from another tape, i32 or of another dtype", "-1",
         "grad_graph: wrt[0] ('o') belongs to another tape",
         tg_grad_graph(loss, NULL, 1, &o, gs) == -1 && tg_grad_graph(loss, NULL, 1, &lab, gs) == -1 &&
             tg_grad_graph(loss, NULL, 1, (tg_tensor *[]){NULL}, gs) == -1);
    TROW("tg_grad_graph", "y i32", "-1", "grad_graph: y 'labels' is i32",
         tg_grad_graph(lab, NULL, 1, &w, gs) == -1);
    bool was = tg_set_grad_enabled(T, false);
    TROW("tg_grad_graph", "recording off (tg_set_grad_enabled)", "-1",
         "grad_graph: recording is off", tg_grad_graph(loss, NULL, 1, &w, gs) == -1);
    tg_set_grad_enabled(T, was);
    TROW("tg_jvp / tg_hvp", "vectors NULL or not shaped like x", "NULL / -1",
         "jvp: vector 0 ('unused', f32 2) must match x[0] ('w', f32 3) on the same tape",
         !tg_jvp(y, 1, &w, &unused) && !tg_jvp(y, 1, &w, (tg_tensor *[]){NULL}) &&
             tg_hvp(loss, 1, &w, &unused, gs) == -1 && tg_hvp(loss, 1, &w, &w, NULL) == -1);
    TROW("tg_hessian / tg_jacobian", "n < 1, x NULL, the result buffer NULL", "-1",
         "hessian: needs n >= 1 tensors (n = 0, x given)",
         tg_hessian(loss, 0, &w, H) == -1 && tg_hessian(loss, 1, NULL, H) == -1 &&
             tg_hessian(loss, 1, &w, NULL) == -1 && tg_jacobian(y, 1, &w, NULL) == -1 &&
             tg_jacobian(y, 1, (tg_tensor *[]){NULL}, H) == -1);
    TROW("tg_check_hessian / tg_check_hvp", "the reference, v or out NULL", "-1",
         "check_hessian: H_ref or out is NULL",
         tg_check_hessian(loss, 1, &w, NULL, &c) == -1 && tg_check_hessian(loss, 1, &w, H, NULL) == -1 &&
             tg_check_hvp(loss, 1, &w, NULL, H, &c) == -1);
    TROW("tg_check_hessian_fd", "x an op output or i32; step < 0 or NaN; out NULL", "-1",
         "check_hessian_fd: x[0] ('relu') is not a float leaf",
         tg_check_hessian_fd(loss, 1, &y, 0, &c, NULL) == -1 &&
             tg_check_hessian_fd(loss, 1, &w, -1, &c, NULL) == -1 &&
             tg_check_hessian_fd(loss, 1, &w, NAN, &c, NULL) == -1 &&
             tg_check_hessian_fd(loss, 1, &w, 0, NULL, NULL) == -1);
    tg_check_print(NULL, "x", &c);
    tg_check_print(stdout, "x", NULL);
    VROW("tg_check_print", "NULL file or report", "nothing (no-op)", true);
    tg_tape_free(other);
}

static void dot(void)
{
    tg_tensor *w = f32("w", 1, SHAPE(3)), *y = tg_sum(w);
    tg_tape *other = tg_tape_new();
    tg_tensor *o = tg_sum(tg_param(other, "o", TG_F32, 1, SHAPE(3)));
    (void)y;
    VROW("tg_dot_write / tg_dot_save", "NULL tape and root", "-1", tg_dot_write(stdout, NULL, NULL, NULL) == -1);
    TROW("tg_dot_write", "file NULL", "-1", "dot_write: file is NULL", tg_dot_write(NULL, T, NULL, NULL) == -1);
    TROW("tg_dot_write / tg_dot_save", "root from another tape", "-1",
         "dot_write: root 'sum' belongs to another tape", tg_dot_write(stdout, T, o, NULL) == -1);
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        TROW("tg_dot_write", "a write that fails (disk full)", "-1", "dot_write: write failed: No space left on device",
             tg_dot_write(full, T, NULL, NULL) == -1);
        fclose(full);
    }
    TROW("tg_dot_save", "path NULL or empty", "-1", "dot_save: path is NULL or empty",
         tg_dot_save(NULL, T, NULL, NULL) == -1 && tg_dot_save("", T, NULL, NULL) == -1);
    TROW("tg_dot_save", "a directory that does not exist", "-1",
         "dot_save: no/such/dir/g.dot: cannot create a temporary file in its directory: No such file or directory",
         tg_dot_save("no/such/dir/g.dot", T, NULL, NULL) == -1);
    mkfifo("g.fifo", 0600);
    TROW("tg_dot_save", "a path that is (or links to) a directory, FIFO, device or socket", "-1",
         "dot_save: g.fifo: is a FIFO, not a regular file; refusing to replace it",
         tg_dot_save("g.fifo", T, NULL, NULL) == -1 && tg_dot_save(".", T, NULL, NULL) == -1);
    struct stat st;
    tap_write_file("g_real.dot", "old", 3);
    symlink("g_real.dot", "g_link.dot");
    VROW("tg_dot_save", "a symbolic link", "0: the file it leads to is replaced, the link stays a link",
         tg_dot_save("g_link.dot", T, NULL, NULL) == 0 && lstat("g_link.dot", &st) == 0 && S_ISLNK(st.st_mode) &&
         stat("g_real.dot", &st) == 0 && st.st_size > 3);
    unlink("g.fifo");
    unlink("g_link.dot");
    unlink("g_real.dot");
    EROW("tg_dot_render", "a path NULL or empty", "-1", "dot_render: the DOT file's path is NULL or empty",
         tg_dot_render(NULL, "svg", "g.svg", &E) == -1);
    EROW("tg_dot_render", "format not svg or png", "-1", "dot_render: format must be",
         tg_dot_render("g.dot", "pdf", "g.pdf", &E) == -1);
    EROW("tg_dot_render", "the DOT file does not exist", "-1", "dot_render: cannot read 'missing.dot': No such file",
         tg_dot_render("missing.dot", "svg", "g.svg", &E) == -1);
    EROW("tg_deriv_parse", "NULL text", "NULL", "deriv_parse: NULL text",
         !tg_deriv_parse(NULL, 0, "f", &E));
    EROW("tg_deriv_parse", "text with a NUL byte", "NULL", "f: holds a NUL byte",
         !tg_deriv_parse("a\0b", 3, "f", &E));
    EROW("tg_deriv_parse", "a syntax error", "NULL", "f:1:8: expected a value",
         !tg_deriv_parse("A = 2 +", 7, "f", &E));
    EROW("tg_deriv_load", "a missing file", "NULL", "no/such.deriv: cannot open",
         !tg_deriv_load("no/such.deriv", &E));
    EROW("tg_deriv_load", "a directory", "NULL", ".: read error (a directory?)",
         !tg_deriv_load(".", &E));
    EROW("tg_deriv_run", "NULL derivation", "-1", "deriv_run: NULL derivation",
         tg_deriv_run(NULL, NULL, &E) == -1);
    {
        const char *txt = "param W[2]\nL = sum(W)\ncheck dL/dW = W\n";
        tg_deriv *dv = tg_deriv_parse(txt, strlen(txt), "f", NULL);
        EROW("tg_deriv_run", "draws outside 1..1000, tol <= 0", "-1", "deriv_run: draws must be 1..1000",
             tg_deriv_run(dv, &(tg_deriv_opts){.draws = -1}, &E) == -1 &&
                 tg_deriv_run(dv, &(tg_deriv_opts){.tol = -1}, NULL) == -1);
        VROW("tg_deriv_result / tg_deriv_checks / tg_deriv_worst", "index out of range, NULL", "NULL / 0 / -1",
             !tg_deriv_result(dv, 1) && !tg_deriv_result(NULL, 0) && tg_deriv_checks(NULL) == 0 &&
                 tg_deriv_worst(dv, 0, NULL, NULL, NULL) == -1);
        EROW("tg_deriv_dot", "NULL path", "-1", "deriv_dot: NULL path", tg_deriv_dot(dv, NULL, NULL, &E) == -1);
        tg_deriv_free(dv);
        VROW("tg_deriv_free", "NULL", "nothing (no-op)", (tg_deriv_free(NULL), true));
    }
    tap_write_file("bad.dot", "digraph { a -> }", 16);
    if (tg_dot_available()) {
        EROW("tg_dot_render", "a DOT file Graphviz rejects", "-1", "dot_render: dot failed on 'bad.dot' (exit 1)",
             tg_dot_render("bad.dot", "svg", "bad.svg", &E) == -1);
        char *path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
        setenv("PATH", "/nonexistent", 1);
        EROW("tg_dot_render", "Graphviz not installed", "-1",
             "dot_render: Graphviz's dot was not found on PATH; install Graphviz to render graphs (Debian/Ubuntu: sudo apt-get install graphviz",
             tg_dot_render("bad.dot", "svg", "bad.svg", &E) == -1 && !tg_dot_available());
        if (path)
            setenv("PATH", path, 1);
        free(path);
    } else {
        EROW("tg_dot_render", "Graphviz not installed", "-1",
             "dot_render: Graphviz's dot was not found on PATH; install Graphviz to render graphs (Debian/Ubuntu: sudo apt-get install graphviz",
             tg_dot_render("bad.dot", "svg", "bad.svg", &E) == -1);
    }
    tg_tape_free(other);
}

static void optimizers(void)
{
    tg_tape *t2 = tg_tape_new();
    tg_tensor *p = tg_param(t2, "p", TG_F32, 1, SHAPE(2));
    tg_tensor *x = tg_input(t2, "x", TG_F32, 1, SHAPE(2));
    tg_tensor *op = tg_relu(p);
    tg_tape *other = tg_tape_new();
    tg_tensor *o = tg_param(other, "o", TG_F32, 1, SHAPE(2));
    tg_sgd_opts sgd = {.lr = 0.1};
    tg_tape *keep = T;
    T = t2;
    VROW("tg_sgd_new / tg_adam_new", "NULL tape", "NULL", !tg_sgd_new(NULL, 0, NULL, &sgd));
    TROW("tg_sgd_new", "opts NULL", "NULL", "sgd: opts is NULL", !tg_sgd_new(T, 0, NULL, NULL));
    TROW("tg_sgd_new", "lr, momentum or weight decay < 0 or not finite", "NULL",
         "sgd: learning rate -1 is not a finite number >= 0",
         !tg_sgd_new(T, 0, NULL, &(tg_sgd_opts){.lr = -1}) &&
             !tg_sgd_new(T, 0, NULL, &(tg_sgd_opts){.lr = 1, .momentum = NAN}));
    TROW("tg_sgd_new", "Nesterov without momentum", "NULL", "sgd: Nesterov momentum needs a momentum > 0",
         !tg_sgd_new(T, 0, NULL, &(tg_sgd_opts){.lr = 1, .nesterov = true}));
    TROW("tg_adam_new", "betas outside (0, 1), eps <= 0", "NULL", "adam: betas (1.5, 0.999) must both be in (0, 1)",
         !tg_adam_new(T, 0, NULL, &(tg_adam_opts){.beta1 = 1.5}) &&
             !tg_adam_new(T, 0, NULL, &(tg_adam_opts){.eps = -1}));
    TROW("tg_sgd_new / tg_adam_new", "n < 0, or params NULL with n > 0", "NULL", "sgd: n = -1 is negative",
         !tg_sgd_new(T, -1, &p, &sgd) && !tg_sgd_new(T, 1, NULL, &sgd));
    TROW("tg_sgd_new / tg_adam_new", "a parameter NULL or from another tape", "NULL",
         "sgd: params[0] ('o') belongs to another tape", !tg_sgd_new(T, 1, &o, &sgd));
    TROW("tg_sgd_new / tg_adam_new", "an op's output or an input leaf", "NULL",
         "sgd: params[0] ('relu') is not a parameter", !tg_sgd_new(T, 1, &op, &sgd) && !tg_sgd_new(T, 1, &x, &sgd));
    TROW("tg_sgd_new / tg_adam_new", "a parameter listed twice", "NULL", "sgd: params[0] and params[1] are the same",
         !tg_sgd_new(T, 2, (tg_tensor *[]){p, p}, &sgd));
    tg_tape *noparams = tg_tape_new();
    tg_input(noparams, "only", TG_F32, 1, SHAPE(2));
    T = noparams;
    TROW("tg_sgd_new / tg_adam_new", "n = 0 and no leaf requires a gradient", "NULL",
         "adam: no parameters: no leaf of the tape requires a gradient", !tg_adam_new(T, 0, NULL, NULL));
    tg_tape_free(noparams);
    T = t2;
    tg_optim *opt = tg_sgd_new(T, 0, NULL, &sgd);
    VROW("tg_optim_step / tg_optim_free", "NULL", "-1 / no-op", tg_optim_step(NULL) == -1 && (tg_optim_free(NULL), true));
    TROW("tg_optim_set_lr", "lr < 0 or not finite", "the old lr is kept",
         "optim_set_lr: learning rate -1 is not a finite number >= 0",
         (tg_optim_set_lr(opt, -1), tg_optim_get_lr(opt) == 0.1));
    VROW("tg_optim_get_lr", "NULL", "NaN", isnan(tg_optim_get_lr(NULL)));
    VROW("tg_optim_bytes", "NULL", "0", tg_optim_bytes(NULL) == 0);
    VROW("tg_lr_step", "epoch < 0 or step_size < 1", "NaN", isnan(tg_lr_step(1, -1, 1, 0.1)) && isnan(tg_lr_step(1, 1, 0, 0.1)));
    VROW("tg_lr_cosine", "t < 0 or total < 1", "NaN", isnan(tg_lr_cosine(1, 0, -1, 10)) && isnan(tg_lr_cosine(1, 0, 1, 0)));
    TROW("tg_clip_grad_norm", "max_norm < 0 or NaN", "a negative value", "clip_grad_norm: max_norm -1 is not a number >= 0",
         tg_clip_grad_norm(T, 0, NULL, -1) < 0 && tg_clip_grad_norm(T, 0, NULL, NAN) < 0);
    VROW("tg_clip_grad_norm", "NULL tape", "a negative value", tg_clip_grad_norm(NULL, 0, NULL, 1) < 0);
    TROW("tg_optim_state", "max < 0, or max > 0 with out NULL", "-1",
         "optim_state: max = 2 with out NULL", tg_optim_state(opt, NULL, 2, NULL) == -1);
    VROW("tg_optim_state / tg_optim_steps / tg_optim_set_steps", "NULL", "-1",
         tg_optim_state(NULL, NULL, 0, NULL) == -1 && tg_optim_steps(NULL) == -1 &&
             tg_optim_set_steps(NULL, 1) == -1);
    TROW("tg_optim_set_steps", "steps < 0 or > 2^53", "-1", "optim_set_steps: -1 is outside 0..2^53",
         tg_optim_set_steps(opt, -1) == -1);
    tg_rng zero_rng = {{0, 0, 0, 0}};
    TROW("tg_tape_rng_set", "an all-zero state (never a saved one), NULL rng", "-1",
         "tape_rng_set: the state is all zero", tg_tape_rng_set(T, &zero_rng) == -1 &&
             tg_tape_rng_set(T, NULL) == -1);
    VROW("tg_tape_rng_get / tg_tape_rng_set", "NULL tape", "-1",
         tg_tape_rng_get(NULL, &zero_rng) == -1 && tg_tape_rng_set(NULL, &zero_rng) == -1);
    tg_optim_free(opt);
    T = keep;
    tg_tape_free(t2);
    tg_tape_free(other);
}

static void idx_files(void)
{
    tg_idx idx;
    uint32_t d3[3] = {2, 2, 2};
    EROW("tg_idx_read", "path NULL, or out NULL", "-1", "idx: (null): path is NULL",
         tg_idx_read(NULL, &idx, &E) == -1);
    EROW("tg_idx_read", "a file that does not exist", "-1", "idx: missing.idx: cannot open: No such file or directory",
         tg_idx_read("missing.idx", &idx, &E) == -1);
    EROW("tg_idx_read", "a directory", "-1", "idx: .: not a regular file", tg_idx_read(".", &idx, &E) == -1);
    tap_write_file("empty.idx", "", 0);
    EROW("tg_idx_read", "an empty file", "-1", "idx: empty.idx: truncated header: the file has 0 bytes, an IDX header needs at least 4",
         tg_idx_read("empty.idx", &idx, &E) == -1);
    tap_write_file("magic.idx", "\x01\x00\x08\x01\x00\x00\x00\x01\x00", 9);
    EROW("tg_idx_read", "wrong magic (first two bytes not 0)", "-1", "idx: magic.idx: not an IDX file: wrong magic 01 00 08 01",
         tg_idx_read("magic.idx", &idx, &E) == -1);
    write_idx("type.idx", 0x0A, 3, d3, 8);
    EROW("tg_idx_read", "unknown element type", "-1", "idx: type.idx: unknown IDX element type 0x0a",
         tg_idx_read("type.idx", &idx, &E) == -1);
    write_idx("rank.idx", 0x08, 0, NULL, 0);
    EROW("tg_idx_read", "rank 0", "-1", "idx: rank.idx: rank 0 is outside 1..8",
         tg_idx_read("rank.idx", &idx, &E) == -1);
    write_idx("zero.idx", 0x08, 3, (uint32_t[]){2, 0, 2}, 0);
    EROW("tg_idx_read", "a dimension of 0", "-1", "idx: zero.idx: dimension 1 is 0",
         tg_idx_read("zero.idx", &idx, &E) == -1);
    write_idx("overflow.idx", 0x0E, 4, (uint32_t[]){1u << 31, 1u << 31, 1u << 31, 1u << 31}, 0);
    EROW("tg_idx_read", "dimensions whose product overflows", "-1", "idx: overflow.idx: dimensions 2147483648x2147483648x2147483648x2147483648 overflow",
         tg_idx_read("overflow.idx", &idx, &E) == -1);
    write_idx("big.idx", 0x08, 3, (uint32_t[]){60000, 28, 28}, 10);
    EROW("tg_idx_read", "dimensions larger than the file", "-1", "big.idx: truncated",
         tg_idx_read("big.idx", &idx, &E) == -1);
    write_idx("short.idx", 0x08, 3, d3, 5);
    EROW("tg_idx_read", "truncated data", "-1", "idx: short.idx: truncated: expected 8 bytes of data (2x2x2), found 5",
         tg_idx_read("short.idx", &idx, &E) == -1);
    write_idx("long.idx", 0x08, 3, d3, 11);
    EROW("tg_idx_read", "bytes after the data", "-1", "idx: long.idx: trailing garbage: 3 bytes after the 8 bytes of data",
         tg_idx_read("long.idx", &idx, &E) == -1);
    tap_write_file("bad.gz", "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage", 18);
    EROW("tg_idx_read", "a corrupt or truncated gzip file", "-1", "idx: bad.gz: corrupt gzip stream",
         tg_idx_read("bad.gz", &idx, &E) == -1);
    tg_idx_free(NULL);
    VROW("tg_idx_free", "NULL", "nothing (no-op)", true);
}

static void datasets(void)
{
    tg_dataset d, e, img;
    tg_dataset_new(&d, 10, 4, 3, NULL);
    uint32_t d3[3] = {2, 2, 2}, d1[1] = {3};
    write_idx("img.idx", 0x08, 3, d3, 8);
    write_idx("lab.idx", 0x08, 1, d1, 3);
    write_idx("lab16.idx", 0x0B, 1, (uint32_t[]){2}, 4);
    EROW("tg_dataset_new", "n, dim or classes < 1", "-1", "dataset_new: 0 samples, 4 features, 3 classes: each must be >= 1",
         tg_dataset_new(&e, 0, 4, 3, &E) == -1);
    EROW("tg_dataset_new", "n × dim overflows", "-1", "features overflow", tg_dataset_new(&e, SIZE_MAX / 2, 4, 3, &E) == -1);
    EROW("tg_dataset_new / tg_dataset_head / tg_batcher_init", "NULL data set or out", "-1", "dataset_new: data set is NULL",
         tg_dataset_new(NULL, 1, 1, 1, &E) == -1);
    EROW("tg_dataset_load_idx", "a path NULL", "-1", "dataset: the images path is NULL",
         tg_dataset_load_idx(NULL, "lab.idx", &e, &E) == -1);
    EROW("tg_dataset_load_idx", "labels not u8 of rank 1", "-1", "dataset: lab16.idx: labels must be u8 (type 0x08) of rank 1",
         tg_dataset_load_idx("img.idx", "lab16.idx", &e, &E) == -1);
    EROW("tg_dataset_load_idx", "images not u8 of rank 3", "-1", "dataset: lab.idx: images must be u8 (type 0x08) of rank 3",
         tg_dataset_load_idx("lab.idx", "lab.idx", &e, &E) == -1);
    EROW("tg_dataset_load_idx", "image and label counts differ", "-1", "dataset: 2 images (img.idx) but 3 labels (lab.idx)",
         tg_dataset_load_idx("img.idx", "lab.idx", &e, &E) == -1);
    EROW("tg_dataset_normalize", "std <= 0, or mean/std not finite", "-1",
         "dataset_normalize: mean 0 must be finite and std 0 finite and > 0",
         tg_dataset_normalize(&d, 0, 0, &E) == -1);
    EROW("tg_dataset_normalize / resize", "NULL or empty data set", "-1", "dataset_normalize: data set is NULL",
         tg_dataset_normalize(NULL, 0, 1, &E) == -1);
    EROW("tg_dataset_resize", "samples that are not images", "-1", "dataset_resize: the samples are not images",
         tg_dataset_resize(&d, 2, 2, &E) == -1);
    tg_dataset_new(&img, 2, 16, 2, NULL);
    img.rows = img.cols = 4;
    EROW("tg_dataset_resize", "a new size of 0 (or above 32768)", "-1",
         "dataset_resize: new size 0x2 must be between 1x1 and 32768x32768", tg_dataset_resize(&img, 0, 2, &E) == -1);
    EROW("tg_dataset_head", "n = 0 or above the size", "-1", "dataset_head: n = 11 is outside 1..10",
         tg_dataset_head(&d, 0, &e, &E) == -1 && tg_dataset_head(&d, 11, &e, &E) == -1);
    EROW("tg_dataset_head", "out the same as the source", "-1", "dataset_head: out must differ from the source data set",
         tg_dataset_head(&d, 2, &d, &E) == -1);
    tg_dataset_free(NULL);
    VROW("tg_dataset_free / tg_batcher_free", "NULL", "nothing (no-op)", (tg_batcher_free(NULL), true));

    tg_batcher b;
    EROW("tg_batcher_init", "batch size 0", "-1", "batcher_init: batch size is 0",
         tg_batcher_init(&b, &d, 0, true, true, 1, &E) == -1);
    EROW("tg_batcher_init", "batch larger than the data set, with drop_last", "-1",
         "batcher_init: batch 11 is larger than the data set (10 samples)",
         tg_batcher_init(&b, &d, 11, true, true, 1, &E) == -1);
    EROW("tg_batcher_init", "a batcher NULL", "-1", "batcher_init: batcher is NULL",
         tg_batcher_init(NULL, &d, 2, true, true, 1, &E) == -1);
    tg_batcher_init(&b, &d, 2, true, true, 1, NULL);
    tg_tensor *x = tg_input(T, "x", TG_F32, 2, SHAPE(2, 4)), *y = tg_input(T, "y", TG_I32, 1, SHAPE(2));
    TROW("tg_batcher_next", "x not [batch, features]", "-1", "batcher_next: x 'xb' is 3x4, expected 2x4 (batch x features) or 2x... with 4 elements a sample",
         tg_batcher_next(&b, tg_input(T, "xb", TG_F32, 2, SHAPE(3, 4)), y) == -1);
    TROW("tg_batcher_next", "x not f32/f64, labels not i32 [batch]", "-1", "batcher_next: labels 'yb' must be i32, not f32",
         tg_batcher_next(&b, x, tg_input(T, "yb", TG_F32, 1, SHAPE(2))) == -1);
    VROW("tg_batcher_next", "NULL batcher or tensors", "-1", tg_batcher_next(NULL, x, y) == -1 && tg_batcher_next(&b, NULL, y) == -1);
    TROW("tg_batcher_next_shard", "rank outside [0, size) or size < 1", "-1",
         "batcher_next_shard: rank 2 of 2: need size >= 1 and 0 <= rank < size",
         tg_batcher_next_shard(&b, x, y, 2, 2) == -1 && tg_batcher_next_shard(&b, x, y, 0, 0) == -1);
    TROW("tg_batcher_next_shard", "a batch that is not a multiple of size", "-1",
         "batcher_next_shard: the global batch 2 is not a multiple of 3 ranks",
         tg_batcher_next_shard(&b, x, y, 0, 3) == -1);
    TROW("tg_batcher_next_shard", "x not [batch / size, features]", "-1",
         "batcher_next_shard: x 'x' is 2x4, expected 1x4 (batch 2 / 2 ranks x features)",
         tg_batcher_next_shard(&b, x, y, 0, 2) == -1);
    tg_tensor *tt = tg_input(T, "t", TG_F32, 2, SHAPE(2, 3));
    TROW("tg_batcher_next_targets", "targets not f32/f64 [batch, at least classes]", "-1",
         "batcher_next_targets: targets 'tb' is 2x2, expected 2 x at least 3 (batch x classes)",
         tg_batcher_next_targets(&b, x, tg_input(T, "tb", TG_F32, 2, SHAPE(2, 2))) == -1);
    for (size_t i = 0; i < d.n; i++)
        d.y[i] = 7;
    TROW("tg_batcher_next_targets", "a label outside the targets' columns", "-1",
         "batcher_next_targets: label 7 of sample", tg_batcher_next_targets(&b, x, tt) == -1);
    VROW("tg_batcher_next_targets", "NULL batcher or tensors", "-1",
         tg_batcher_next_targets(NULL, x, tt) == -1 && tg_batcher_next_targets(&b, x, NULL) == -1);
    tg_batcher_free(&b);
    tg_dataset_free(&d);
    tg_dataset_free(&img);

    tg_text tx;
    tap_write_file("words.txt", "ab\ncd\nef\n", 9);
    EROW("tg_text_load", "path or text NULL", "-1", "text_load: the path is NULL",
         tg_text_load(NULL, 0.1, 1, &tx, &E) == -1 && tg_text_load("words.txt", 0.1, 1, NULL, NULL) == -1);
    EROW("tg_text_load", "a file that does not exist (wamerican not installed)", "-1",
         "text_load: missing.txt: cannot open: No such file or directory",
         tg_text_load("missing.txt", 0.1, 1, &tx, &E) == -1);
    EROW("tg_text_load", "an empty file (or only empty lines)", "-1", "text_load: empty.idx: the file is empty",
         tg_text_load("empty.idx", 0.1, 1, &tx, &E) == -1);
    EROW("tg_text_load", "a NUL byte (a binary file)", "-1", "text_load: img.idx: a NUL byte at offset 0: not a text file",
         tg_text_load("img.idx", 0.1, 1, &tx, &E) == -1);
    EROW("tg_text_load", "val_fraction outside (0, 1), or NaN", "-1",
         "text_load: words.txt: val_fraction 1 must be inside (0, 1)", tg_text_load("words.txt", 1, 1, &tx, &E) == -1);
    EROW("tg_text_load", "a split shorter than 2 tokens", "-1",
         "text_load: words.txt: 3 words with val_fraction 0.1 give 3 train and 0 val words",
         tg_text_load("words.txt", 0.1, 1, &tx, &E) == -1);
    tg_text_free(NULL);
    VROW("tg_text_free", "NULL", "nothing (no-op)", true);
    tg_text_load("words.txt", 0.4, 1, &tx, NULL);
    tg_tensor *tx_x = tg_input(T, "tx", TG_I32, 2, SHAPE(1, 2)), *tx_y = tg_input(T, "ty", TG_I32, 2, SHAPE(1, 2));
    EROW("tg_text_batch / tg_text_window_batch", "x or y NULL, not i32, not a leaf, or not the same [B,T]", "-1",
         "text_batch: x 'xb' must be i32, not f32",
         tg_text_batch(&tx, 0, 1, 0, tg_input(T, "xb", TG_F32, 2, SHAPE(1, 2)), tx_y, &E) == -1 &&
         tg_text_window_batch(&tx, 0, 0, tx_x, NULL, NULL) == -1);
    EROW("tg_text_batch", "a context T not below the split's token count", "-1",
         "text_batch: the val stream has 3 tokens, not more than the context 3",
         tg_text_batch(&tx, 1, 1, 0, tg_input(T, "x3", TG_I32, 2, SHAPE(1, 3)),
                       tg_input(T, "y3", TG_I32, 2, SHAPE(1, 3)), &E) == -1);
    EROW("tg_text_batch / tg_text_window_batch", "text NULL or not loaded, split not 0 or 1", "-1",
         "text_batch: split 2 must be 0 (train) or 1 (val)",
         tg_text_batch(&tx, 2, 1, 0, tx_x, tx_y, &E) == -1 && tg_text_batch(NULL, 0, 1, 0, tx_x, tx_y, NULL) == -1);
    tg_text_free(&tx);
}

static void model_files(void)
{
    tg_tape *t2 = tg_tape_new();
    tg_tensor *W = tg_param(t2, "W", TG_F32, 2, SHAPE(3, 4)), *b = tg_param(t2, "b", TG_F32, 1, SHAPE(4));
    tg_tape *keep = T;
    T = t2;
    tg_save(T, "model.tgm", 0, NULL);
    VROW("tg_save / tg_load", "NULL tape", "-1", tg_save(NULL, "m.tgm", 0, NULL) == -1 && tg_load(NULL, "model.tgm", 0, NULL) == -1);
    TROW("tg_save / tg_load", "path NULL or empty", "-1", "save: path is NULL or empty",
         tg_save(T, NULL, 0, NULL) == -1 && tg_save(T, "", 0, NULL) == -1 && tg_load(T, "", 0, NULL) == -1);
    TROW("tg_save", "a tensor without a name", "-1", "has no name",
         tg_save(T, "m2.tgm", 1, (tg_tensor *[]){tg_param(T, NULL, TG_F32, 1, SHAPE(2))}) == -1);
    TROW("tg_save", "two tensors with one name", "-1", "two tensors are named 'W'",
         tg_save(T, "m2.tgm", 2, (tg_tensor *[]){W, tg_param(T, "W", TG_F32, 1, SHAPE(2))}) == -1);
    TROW("tg_save / tg_load", "a tensor NULL or from another tape", "-1", "tensors[0] is NULL",
         tg_save(T, "m2.tgm", 1, (tg_tensor *[]){NULL}) == -1);
    TROW("tg_save", "a directory that does not exist or cannot be written", "-1",
         "save: no/such/dir/m.tgm: cannot create a temporary file in its directory: No such file or directory",
         tg_save(T, "no/such/dir/m.tgm", 1, &W) == -1);
    mkfifo("m.fifo", 0600);
    TROW("tg_save", "a path that is (or links to) a directory, FIFO, device or socket", "-1",
         "save: m.fifo: is a FIFO, not a regular file; refusing to replace it",
         tg_save(T, "m.fifo", 1, &W) == -1 && tg_save(T, ".", 1, &W) == -1);
    symlink("m_new.tgm", "m_link.tgm");
    struct stat st;
    VROW("tg_save", "a symbolic link (dangling or not)", "0: the file it leads to is replaced or created, the link stays a link",
         tg_save(T, "m_link.tgm", 1, &W) == 0 && lstat("m_link.tgm", &st) == 0 && S_ISLNK(st.st_mode) &&
         tg_load(T, "m_new.tgm", 1, &W) == 0);
    unlink("m.fifo");
    unlink("m_link.tgm");
    unlink("m_new.tgm");
    TROW("tg_load", "a file that does not exist", "-1", "load: missing.tgm: cannot open: No such file or directory",
         tg_load(T, "missing.tgm", 1, &W) == -1);
    TROW("tg_load", "a directory", "-1", "load: .: not a regular file", tg_load(T, ".", 1, &W) == -1);
    tap_write_file("notmodel.tgm", "this is not a model file at all, just text", 42);
    TROW("tg_load", "not a tapegrad file", "-1", "load: notmodel.tgm: not a tapegrad file (wrong magic",
         tg_load(T, "notmodel.tgm", 1, &W) == -1);
    FILE *f = fopen("model.tgm", "rb");
    unsigned char buf[512];
    size_t len = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f)
        fclose(f);
    tap_write_file("trunc.tgm", buf, len - 7);
    TROW("tg_load", "a truncated file", "-1", "load: trunc.tgm: truncated", tg_load(T, "trunc.tgm", 1, &W) == -1);
    buf[40] ^= 1;
    tap_write_file("flip.tgm", buf, len);
    buf[40] ^= 1;
    TROW("tg_load", "a flipped bit (checksum)", "-1", "load: flip.tgm: checksum mismatch",
         tg_load(T, "flip.tgm", 1, &W) == -1);
    buf[8] = 9; /* version 9 */
    tap_write_file("version.tgm", buf, len);
    buf[8] = 1;
    TROW("tg_load", "a newer format version", "-1", "load: version.tgm: format version 9 is",
         tg_load(T, "version.tgm", 1, &W) == -1);
    tg_tape *t3 = tg_tape_new();
    tg_tensor *W2 = tg_param(t3, "W", TG_F32, 2, SHAPE(3, 5));
    tg_tensor *Wd = tg_param(t3, "b", TG_F64, 1, SHAPE(4));
    tg_tensor *Wn = tg_param(t3, "V", TG_F32, 2, SHAPE(3, 4));
    T = t3;
    TROW("tg_load", "a tensor of another shape", "-1", "load: model.tgm: tensor 'W': file has shape 3x4, network has 3x5",
         tg_load(T, "model.tgm", 1, &W2) == -1);
    TROW("tg_load", "a tensor of another dtype", "-1", "load: model.tgm: tensor 'b': file has dtype f32, network has f64",
         tg_load(T, "model.tgm", 1, &Wd) == -1);
    TROW("tg_load", "a tensor the file does not have", "-1", "load: model.tgm: tensor 'V' is not in the file",
         tg_load(T, "model.tgm", 1, &Wn) == -1);
    VROW("tg_load", "any of the above", "the tensors are unchanged", tg_get(W2, 0) == 0 && tg_get(Wd, 0) == 0);
    tg_file_info fi;
    EROW("tg_file_read", "path NULL or empty, info NULL", "-1", "file_read: path is NULL or empty",
         tg_file_read(NULL, false, &fi, &E) == -1 && tg_file_read("model.tgm", false, NULL, NULL) == -1);
    EROW("tg_file_read", "a missing file", "-1", "file_read: missing.tgm: cannot open: No such file or directory",
         tg_file_read("missing.tgm", false, &fi, &E) == -1);
    EROW("tg_file_read", "not a tapegrad file", "-1", "file_read: notmodel.tgm: not a tapegrad file (wrong magic",
         tg_file_read("notmodel.tgm", true, &fi, &E) == -1);
    EROW("tg_file_read", "a truncated file", "-1", "file_read: trunc.tgm: truncated",
         tg_file_read("trunc.tgm", true, &fi, &E) == -1);
    EROW("tg_file_read", "a flipped bit, any_checksum false", "-1", "file_read: flip.tgm: checksum mismatch",
         tg_file_read("flip.tgm", false, &fi, &E) == -1);
    buf[len - 6] ^= 1; /* in the last tensor's data */
    tap_write_file("flipd.tgm", buf, len);
    buf[len - 6] ^= 1;
    VROW("tg_file_read", "a flipped bit in a value, any_checksum true", "0, checksum_ok false (the records listed)",
         tg_file_read("flipd.tgm", true, &fi, NULL) == 0 && !fi.checksum_ok && fi.n > 0);
    tg_file_free(&fi);
    (void)b;
    T = keep;
    tg_tape_free(t2);
    tg_tape_free(t3);
}

static void performance(void)
{
    int th = tg_get_threads();
    VROW("tg_set_threads", "n < 1", "-1 (the count is kept)", tg_set_threads(0) == -1 && tg_get_threads() == th);
    tg_thread_stat ts = {.pieces = 7};
    VROW("tg_thread_stats", "NULL out and pool, or max <= 0", "the thread count; nothing written",
         tg_thread_stats(NULL, 5, NULL) == th && tg_thread_stats(&ts, 0, NULL) == th &&
             tg_thread_stats(&ts, -3, NULL) == th && ts.pieces == 7);
    const char *isa = tg_isa();
    VROW("tg_set_isa", "an unknown name", "-1 (the path is kept)", tg_set_isa("sse9") == -1 && !strcmp(tg_isa(), isa));
    VROW("tg_isa_supported", "NULL or an unknown name", "false", !tg_isa_supported(NULL) && !tg_isa_supported("sse9"));
    VROW("tg_dtype_name / tg_dtype_size", "an invalid dtype", "\"?\" / 0",
         !strcmp(tg_dtype_name((tg_dtype)99), "?") && tg_dtype_size((tg_dtype)99) == 0);
    /* MPI is never initialised here: the same answers with and without it */
    tg_tape_clear_error(T);
    tg_tensor *w = tg_param(T, "mpi_w", TG_F32, 1, SHAPE(2));
    /* (VROW: the message depends on the build, the table must not) */
    const char *why = tg_have_mpi() ? "call tg_mpi_init first" : "built without MPI";
    VROW("tg_mpi_allreduce_grads / tg_mpi_broadcast", "before tg_mpi_init, or built without MPI",
         "-1 (tape error: \"call tg_mpi_init first\" or \"...built without MPI...\")",
         tg_mpi_broadcast(T, 1, &w) == -1 && strstr(tg_tape_error(T), why) &&
             (tg_tape_clear_error(T), tg_mpi_allreduce_grads(T, 1, &w) == -1) &&
             strstr(tg_tape_error(T), why));
    tg_tape_clear_error(T);
    double v = 1;
    VROW("tg_mpi_sum / tg_mpi_init", "before tg_mpi_init, or built without MPI (tg_mpi_init)",
         "-1 (err: as above)", tg_mpi_sum(&v, 1, &E) == -1 && strstr(E.msg, why) &&
             (tg_have_mpi() || (tg_mpi_init(&E) == -1 && strstr(E.msg, why))));
    VROW("tg_mpi_rank / tg_mpi_size", "before tg_mpi_init", "0 / 1", tg_mpi_rank() == 0 && tg_mpi_size() == 1);
    VROW("tg_mpi_abort / tg_mpi_finalize", "before tg_mpi_init", "nothing (no-op)",
         (tg_mpi_abort(1), tg_mpi_finalize(), true));
}

/* ---- output -------------------------------------------------------------- */

static void md_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", f);
        else if (*s == '\n')
            fputs(" ", f);
        else
            fputc(*s, f);
    }
}

static void markdown(FILE *f)
{
    fprintf(f, "| Function | Bad input | Answer | Message |\n|---|---|---|---|\n");
    for (int i = 0; i < n_rows; i++) {
        fprintf(f, "| `%s` | ", rows[i].fn);
        md_escaped(f, rows[i].input);
        fprintf(f, " | ");
        md_escaped(f, rows[i].ret);
        fprintf(f, " | ");
        if (rows[i].msg) {
            fputs("`", f);
            md_escaped(f, rows[i].msg);
            fputs("`", f);
        }
        fprintf(f, " |\n");
    }
}

/* Whether the file holds the table exactly. */
static bool doc_has_table(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    static char doc[1 << 20];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    fclose(f);
    doc[n] = 0;
    char *table = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&table, &len);
    markdown(m);
    fclose(m);
    bool found = strstr(doc, table) != NULL;
    free(table);
    return found;
}

int main(int argc, char **argv)
{
    bool md = argc > 1 && !strcmp(argv[1], "--markdown");
    char start[4096];
    if (!getcwd(start, sizeof start))
        return 1;
    const char *doc = !md && argc > 1 ? argv[1] : NULL;
    char dir[] = "/tmp/tg_robust_XXXXXX";
    if (!mkdtemp(dir) || chdir(dir)) {
        printf("Bail out! temporary directory\n");
        return 1;
    }
    int out_fd = dup(1);
    if (md) /* the rows' TAP lines are not wanted then */
        if (out_fd < 0 || !freopen("/dev/null", "w", stdout))
            return 1;
    T = tg_tape_new();
    tapes();
    leaves();
    tensor_access();
    random_init();
    ops();
    running();
    checking();
    dot();
    optimizers();
    idx_files();
    datasets();
    model_files();
    performance();
    tg_tape_free(T);
    const char *files[] = {"bad.dot", "empty.idx", "magic.idx", "type.idx", "rank.idx", "zero.idx",
                           "overflow.idx", "big.idx", "short.idx", "long.idx", "bad.gz", "img.idx",
                           "lab.idx", "lab16.idx", "model.tgm", "notmodel.tgm", "trunc.tgm",
                           "flip.tgm", "version.tgm", "words.txt"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        unlink(files[i]);
    if (chdir(start) == 0)
        rmdir(dir);
    if (md) {
        FILE *out = fdopen(out_fd, "w");
        markdown(out ? out : stderr);
        if (out)
            fclose(out);
        return 0;
    }
    close(out_fd);
    if (doc)
        ok(doc_has_table(doc), "%s holds this table (regenerate it with test_robustness --markdown)",
           doc);
    for (int i = 0; i < n_rows; i++) /* the op each row's message names */
        op_cover_error(rows[i].msg);
    ops_all_covered("a row in docs/robustness.md whose message names it");
    printf("# %d rows\n", n_rows);
    for (int i = 0; i < n_rows; i++)
        free(rows[i].msg);
    return tap_done();
}
