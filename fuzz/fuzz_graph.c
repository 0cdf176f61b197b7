/* libFuzzer target: the whole graph API driven by the input as a program.
 *
 * The input is read as a stream of instructions (fz_in: past its end every
 * byte is 0).  A pool of up to 64 tensor slots holds what the program made:
 * leaves with random (also wrong, zero, huge and overflowing) shapes, dtypes
 * (f32, f64, i32 and invalid values) and kinds, on one of two tapes, and
 * the outputs of every op of ops/ops.def applied to random earlier slots
 * (NULL and wrong dtypes included).  Between ops the program sets values
 * (labels out of range too), replays, runs backward from scalar and seeded
 * non-scalar roots, zeroes gradients, clears a tape, turns recording and
 * anomaly mode on and off, checks gradients, writes DOT to /dev/null, runs
 * the optimizers and gradient clipping, and queries everything.
 *
 * Input: byte 0 picks the ISA (byte % 5: best, generic, avx2, avx512, an
 * unknown name) and bit 3 the threads (1 or 2); then each step is an opcode
 * byte (byte % 16, see LLVMFuzzerTestOneInput) followed by its arguments.
 * Opcodes 3..8 apply an op: the next byte % TG_OP_COUNT is its id in
 * ops/ops.def, and the op's builder (fz_<name>, in a table generated from
 * the list, so every op of the list has one) reads its inputs (one byte
 * per slot) and attributes; fuzz/corpus.c writes programs in this encoding.
 *
 * Checked on every step (a failure aborts, so libFuzzer keeps the input):
 *  - an op that returns NULL for non-NULL inputs leaves an error on the tape
 *    (a silent NULL is a bug); an int function that fails does too;
 *  - an op that succeeds returns a consistent tensor (rank, size = product
 *    of the shape, recorded as that op at the end of the tape unless
 *    recording is off);
 *  - a leaf with valid arguments is created;
 *  - replaying twice, with 1 and then 2 threads, gives the same values;
 *  - backward twice (zero_grad between) gives the same gradients;
 *  - tg_check_grad of a tensor's own gradient finds no difference.
 * Sizes are capped so that one input runs in milliseconds: a leaf above
 * LEAF_CAP elements is refused here before it is created, unless its shape
 * overflows (then the library must refuse it without allocating); ops of
 * two inputs whose work bound passes PAIR_CAP are skipped; a tape whose
 * recorded work passes WORK_CAP takes no more ops until it is cleared. */
#include "fuzz_common.h"
#include "ops.h" /* the op list: enum tg_op_id, tg_ops[] */
#include "tapegrad.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>

#define MAX_SLOTS 64
#define LEAF_CAP 4096
#define PAIR_CAP ((double)(1 << 18))
#define WORK_CAP ((double)(1 << 20))
#define MAX_STEPS 1024
#define MAX_HEAVY 24 /* replays, backwards, checks, DOT writes per input */

typedef struct slot {
    tg_tensor *t; /* may be NULL: ops must take NULL inputs */
    int tape;     /* which tape (0, 1) */
    bool temp;    /* an op output or tg_scalar: gone after tg_tape_clear */
} slot;

typedef struct state {
    fz_in in;
    tg_tape *tape[2];
    slot s[MAX_SLOTS];
    int n, next; /* slots used; where the next one goes once full */
    double work[2];
    int heavy;
    bool grad_on[2];
} state;

static FILE *devnull;
static bool trace; /* FUZZ_GRAPH_TRACE=1: print every step to stderr */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    devnull = fopen("/dev/null", "w");
    FZ_CHECK(devnull, "cannot open /dev/null");
    const char *t = getenv("FUZZ_GRAPH_TRACE");
    trace = t && *t && *t != '0';
    return 0;
}

/* ---- choices ------------------------------------------------------------- */

static uint8_t u8(state *st) { return fz_u8(&st->in); }

/* A float value: mostly small, sometimes extreme or not finite. */
static double value(state *st)
{
    static const double table[] = {0,     1,      -1,       0.5,     -0.5,    2,     -2,
                                   1e-3,  10,     -100,     1e4,     -1e4,    1e30,  -1e30,
                                   1e300, -1e300, NAN,      INFINITY, -INFINITY, 4.9e-324,
                                   -0.0,  1e-7,   FLT_MAX,  88.7,    -88.7,   709.8, -745.2,
                                   1e-45, 0.9999999, 1.0000001, 3e38, 1e-300};
    uint8_t b = u8(st);
    if (b < 192)
        return ((double)b - 96) / 16;
    return table[(b - 192) % (sizeof table / sizeof table[0])];
}

/* An i32 value: mostly a small label/index, sometimes out of any range. */
static double ivalue(state *st)
{
    static const double table[] = {-1, -2, 8, 9, 16, 100, 1000, 65536, 2147483647.0,
                                   -2147483648.0, 1 << 20, -100};
    uint8_t b = u8(st);
    if (b < 224)
        return b % 8;
    return table[(b - 224) % (sizeof table / sizeof table[0])];
}

/* A dimension: mostly 1..8, sometimes 0, large, or large enough that the
 * product of a shape overflows. */
static size_t dim(state *st)
{
    static const size_t table[] = {0,
                                   16,
                                   33,
                                   64,
                                   100,
                                   1000,
                                   4096,
                                   65536,
                                   (size_t)1 << 31,
                                   (size_t)1 << 32,
                                   (size_t)1 << 40,
                                   (size_t)1 << 62,
                                   SIZE_MAX / 2 + 1,
                                   SIZE_MAX,
                                   SIZE_MAX / 4 + 1,
                                   ((size_t)1 << 61) + 1,
                                   PTRDIFF_MAX / 4,
                                   PTRDIFF_MAX / 4 + 1,
                                   (size_t)INT64_MAX + 1,
                                   3037000500u}; /* its square overflows 63 bits */
    uint8_t b = u8(st);
    if (b < 200)
        return 1 + b % 8;
    return table[(b - 200) % (sizeof table / sizeof table[0])];
}

/* Names: none, plain, and hostile to DOT, UTF-8 checks and printf. */
static const char *name(state *st)
{
    static const char *const table[] = {
        NULL, "w", "x", "labels", "W1", "b", "loss", "\xcf\x80", "a\"b", "a\\b\\",
        "line\nbreak", "<html>&amp;", "{rec|ord}", "%s%n%x", "\xff\xfe bad utf8",
        "\xe2\x80\xae rtl", "tab\there", "", "layer1/act",
        "a very long name that goes on and on and on and on and on and on and on and "
        "on and on and on and on and on and on and on and on and on and on and on and end"};
    uint8_t b = u8(st);
    return table[b % (sizeof table / sizeof table[0])];
}

/* A tensor of the pool (NULL sometimes, and when the pool is empty). */
static slot pick_slot(state *st)
{
    uint8_t b = u8(st);
    slot none = {NULL, 0, false};
    if (b == 255 || st->n == 0)
        return none;
    return st->s[b % st->n];
}

static tg_tensor *pick(state *st) { return pick_slot(st).t; }

static int tape_of_slot(state *st, tg_tensor *t)
{
    return t && tg_tape_of(t) == st->tape[1] ? 1 : 0;
}

static void add(state *st, tg_tensor *t, int tape, bool temp)
{
    slot s = {t, tape, temp};
    if (trace) {
        char shp[64];
        fprintf(stderr, "  -> slot %d: %s %s %s on tape %d\n",
                st->n < MAX_SLOTS ? st->n : st->next, tg_op_name(t),
                tg_dtype_name(tg_dtype_of(t)), tg_shape_str(t, shp, sizeof shp), tape);
    }
    if (st->n < MAX_SLOTS) {
        st->s[st->n++] = s;
    } else {
        st->s[st->next] = s;
        st->next = (st->next + 1) % MAX_SLOTS;
    }
}

/* Drop the op outputs and scalars of tape k (tg_tape_clear invalidates them). */
static void drop_temps(state *st, int k)
{
    int j = 0;
    for (int i = 0; i < st->n; i++)
        if (!(st->s[i].t && st->s[i].temp && st->s[i].tape == k))
            st->s[j++] = st->s[i];
    st->n = j;
    st->next = 0;
}

static size_t size_of(const tg_tensor *t) { return t ? tg_size(t) : 0; }

/* ---- oracles -------------------------------------------------------------- */

/* Two values are the same: equal bits, or both NaN (the payload of a NaN may
 * depend on the order of the operands of a vectorised loop). */
static bool same_value(const tg_tensor *t, const void *a, const void *b, size_t i)
{
    if (tg_dtype_of(t) == TG_F32) {
        float x = ((const float *)a)[i], y = ((const float *)b)[i];
        return !memcmp(&x, &y, sizeof x) || (x != x && y != y);
    }
    if (tg_dtype_of(t) == TG_F64) {
        double x = ((const double *)a)[i], y = ((const double *)b)[i];
        return !memcmp(&x, &y, sizeof x) || (x != x && y != y);
    }
    return ((const int32_t *)a)[i] == ((const int32_t *)b)[i];
}

/* An op's result: NULL only with an error on the tape of its first non-NULL
 * input; otherwise a well-formed tensor on that tape. */
static void check_result(state *st, const char *op, tg_tensor *r, tg_tensor *a, tg_tensor *b)
{
    tg_tensor *first = a ? a : b;
    if (!first) {
        FZ_CHECK(!r, "%s: a result from NULL inputs", op);
        return;
    }
    tg_tape *tape = tg_tape_of(first);
    int k = tape_of_slot(st, first);
    if (!r) { /* the error is on the tape of the input that was refused (the
               * gradient ops take their first input from another slot) */
        FZ_CHECK(tg_tape_error(tape) || tg_tape_error(st->tape[0]) || tg_tape_error(st->tape[1]),
                 "%s returned NULL without an error", op);
        if (trace)
            fprintf(stderr, "  %s: %s\n", op, tg_tape_error(tape));
        return;
    }
    FZ_CHECK(!tg_tape_error(tape), "%s succeeded but left an error: %s", op, tg_tape_error(tape));
    FZ_CHECK(tg_tape_of(r) == tape, "%s: result on another tape", op);
    int rank = tg_rank(r);
    FZ_CHECK(rank >= 0 && rank <= TG_MAX_RANK, "%s: rank %d", op, rank);
    size_t n = 1;
    for (int i = 0; i < rank; i++) {
        FZ_CHECK(tg_dim(r, i) >= 1, "%s: axis %d of size 0", op, i);
        n *= tg_dim(r, i);
    }
    FZ_CHECK(n == tg_size(r), "%s: size %zu, shape product %zu", op, tg_size(r), n);
    FZ_CHECK(tg_dtype_of(r) == TG_F32 || tg_dtype_of(r) == TG_F64, "%s: dtype %d", op,
             (int)tg_dtype_of(r));
    if (st->grad_on[k]) {
        FZ_CHECK(tg_kind_of(r) == TG_OP, "%s: kind %d while recording", op, (int)tg_kind_of(r));
        FZ_CHECK(!strcmp(tg_op_name(r), op), "%s recorded as %s", op, tg_op_name(r));
        FZ_CHECK(tg_node_index(r) == (long)tg_tape_nodes(tape) - 1, "%s: node %ld of %zu", op,
                 tg_node_index(r), tg_tape_nodes(tape));
    } else {
        FZ_CHECK(tg_kind_of(r) == TG_CONST && tg_node_index(r) == -1,
                 "%s: recorded while recording is off", op);
    }
    (void)st;
}

/* An int call on tape `tape` that failed must have left an error. */
#define FAILS_WITH_MSG(tape, rc, what)                                         \
    FZ_CHECK((rc) == 0 || tg_tape_error(tape) != NULL, "%s failed without an error", what)

/* ---- leaves --------------------------------------------------------------- */

static void op_leaf(state *st)
{
    uint8_t b = u8(st);
    int k = (b & 7) == 7 ? 1 : 0;
    tg_tape *tape = st->tape[k];
    static const int kinds[16] = {TG_PARAM, TG_PARAM, TG_PARAM, TG_PARAM, TG_PARAM, TG_PARAM,
                                  TG_INPUT, TG_INPUT, TG_INPUT, TG_INPUT, TG_INPUT, TG_CONST,
                                  TG_CONST, TG_CONST, 0,        9};
    static const int dtypes[16] = {TG_F32, TG_F32, TG_F32, TG_F32, TG_F32, TG_F32, TG_F32,
                                   TG_F64, TG_F64, TG_F64, TG_F64, TG_F64, TG_I32, TG_I32,
                                   0,      77};
    tg_kind kind = (tg_kind)kinds[(b >> 3) & 15];
    uint8_t c = u8(st);
    tg_dtype dtype = (tg_dtype)dtypes[c & 15];
    /* i32 inputs are common (labels) */
    if (kind == TG_PARAM && dtype == TG_I32 && (c & 0x80))
        kind = TG_INPUT;
    int rank = (c >> 4) & 7;
    bool null_shape = false;
    if (rank == 5)
        rank = 5;
    else if (rank == 6)
        rank = -1;
    else if (rank == 7)
        rank = 2, null_shape = true;
    size_t shape[5];
    for (int i = 0; i < 5; i++)
        shape[i] = i < rank ? dim(st) : 1;
    const char *nm = name(st);

    /* Would the library allocate?  Then cap the size here. */
    bool valid = (kind == TG_PARAM || kind == TG_INPUT || kind == TG_CONST) &&
                 tg_dtype_size(dtype) && !(kind == TG_PARAM && dtype == TG_I32) && rank >= 0 &&
                 rank <= TG_MAX_RANK && !null_shape;
    size_t count = 1;
    bool overflow = false;
    for (int i = 0; valid && i < rank; i++) {
        if (shape[i] == 0)
            valid = false;
        else if (count > SIZE_MAX / shape[i])
            overflow = true;
        else
            count *= shape[i];
    }
    if (valid && !overflow && count > (size_t)PTRDIFF_MAX / tg_dtype_size(dtype))
        overflow = true; /* refused before allocating, too */
    if (valid && !overflow && count > LEAF_CAP)
        return;

    /* the values: zeros, from the input, or tg_leaf_from with them */
    uint8_t how = u8(st);
    double *vals = NULL;
    if (valid && !overflow && (how & 3)) {
        vals = malloc(count * sizeof *vals);
        FZ_CHECK(vals, "out of memory");
        uint64_t seed = fz_u32(&st->in);
        tg_rng rng;
        tg_rng_seed(&rng, seed);
        for (size_t i = 0; i < count; i++) {
            if (dtype == TG_I32)
                vals[i] = i < 16 ? ivalue(st) : (double)tg_rng_below(&rng, 4);
            else
                vals[i] = i < 16 ? value(st) : tg_rng_normal(&rng);
        }
    }
    tg_tape_clear_error(tape);
    tg_tensor *t;
    if ((how & 3) == 3 && vals && dtype != TG_I32) {
        /* from a buffer of the leaf's dtype */
        void *buf = malloc(count * tg_dtype_size(dtype));
        FZ_CHECK(buf, "out of memory");
        for (size_t i = 0; i < count; i++) {
            if (dtype == TG_F32)
                ((float *)buf)[i] = (float)vals[i];
            else
                ((double *)buf)[i] = vals[i];
        }
        t = tg_leaf_from(tape, kind, nm, dtype, rank, null_shape ? NULL : shape, buf);
        free(buf);
    } else if ((how & 3) == 2 && !valid) {
        t = tg_leaf_from(tape, kind, nm, dtype, rank, null_shape ? NULL : shape,
                         (how & 4) ? NULL : (const void *)&how);
    } else if ((how & 0x30) == 0x10) { /* the shorthands */
        const size_t *sh = null_shape ? NULL : shape;
        t = kind == TG_PARAM   ? tg_param(tape, nm, dtype, rank, sh)
          : kind == TG_INPUT   ? tg_input(tape, nm, dtype, rank, sh)
          : kind == TG_CONST   ? tg_const(tape, nm, dtype, rank, sh)
                               : tg_leaf(tape, kind, nm, dtype, rank, sh);
    } else {
        t = tg_leaf(tape, kind, nm, dtype, rank, null_shape ? NULL : shape);
    }
    if (valid && !overflow)
        FZ_CHECK(t, "a valid leaf was refused: %s", tg_tape_error(tape));
    else
        FZ_CHECK(!t && tg_tape_error(tape), "an invalid leaf: %s", t ? "accepted" : "no error");
    if (t && vals) {
        tg_tape_clear_error(tape);
        int rc = tg_copy_in(t, vals, TG_F64, count);
        FZ_CHECK(rc == 0, "copy_in of valid values: %s", tg_tape_error(tape));
    }
    free(vals);
    if (t)
        add(st, t, k, false);
}

static void op_scalar(state *st)
{
    int k = u8(st) & 1;
    uint8_t d = u8(st);
    tg_dtype dtype = (tg_dtype)(d % 4); /* 0 and i32 are refused */
    double v = value(st);
    tg_tape_clear_error(st->tape[k]);
    tg_tensor *t = tg_scalar(st->tape[k], dtype, v);
    if (dtype == TG_F32 || dtype == TG_F64)
        FZ_CHECK(t && tg_rank(t) == 0 && tg_size(t) == 1, "scalar refused: %s",
                 tg_tape_error(st->tape[k]));
    else
        FZ_CHECK(!t && tg_tape_error(st->tape[k]), "scalar of dtype %d", (int)dtype);
    if (t)
        add(st, t, k, true);
}

/* ---- ops ------------------------------------------------------------------ */

static bool budget(state *st, tg_tensor *a, double cost)
{
    int k = tape_of_slot(st, a);
    return st->work[k] + cost <= WORK_CAP;
}

static void charge(state *st, tg_tensor *r, double cost)
{
    if (r)
        st->work[tape_of_slot(st, r)] += cost;
}

static void clear_errors(state *st)
{
    tg_tape_clear_error(st->tape[0]);
    tg_tape_clear_error(st->tape[1]);
}

static const int flag_table[] = {TG_SUM, TG_MEAN, TG_BATCH_MEAN, TG_HALF, TG_MEAN | TG_HALF,
                                 TG_BATCH_MEAN | TG_HALF, 3, 8, -1, INT_MIN, 0x100, 7};
#define N_FLAGS (int)(sizeof flag_table / sizeof flag_table[0])

/* One application of an op: what its builder read and what it costs. */
typedef struct call {
    tg_tensor *a, *b; /* the inputs (b NULL for an op of one input) */
    uint8_t arg;      /* the attribute byte of an op of two inputs */
    double cost;      /* an upper bound of the work and the output size */
    bool skipped;     /* over a cap: the op was not called */
} call;

/* One input; cost 4·|x| + 1 within the tape's budget, else skipped.  The
 * attributes are read after this (only when the op is called). */
static bool one(state *st, call *c)
{
    c->a = pick(st);
    c->cost = 4.0 * (double)size_of(c->a) + 1;
    if (c->a && !budget(st, c->a, c->cost)) {
        c->skipped = true;
        return false;
    }
    clear_errors(st);
    return true;
}

/* Two inputs and the attribute byte (flags, transposes, classes). */
static void two(state *st, call *c)
{
    c->a = pick(st);
    c->b = pick(st);
    c->arg = u8(st);
}

/* The cost of an op of two inputs: within PAIR_CAP and the budget of the
 * tape of its first input, else skipped. */
static bool two_fit(state *st, call *c, double cost)
{
    c->cost = cost;
    if (cost > PAIR_CAP || ((c->a || c->b) && !budget(st, c->a ? c->a : c->b, cost))) {
        c->skipped = true;
        return false;
    }
    clear_errors(st);
    return true;
}

static int flags_of(const call *c) { return flag_table[c->arg % N_FLAGS]; }

/* Elements of the broadcast of a with b (sa + sb when they do not broadcast). */
static double bcast_size(const tg_tensor *a, const tg_tensor *b)
{
    int ra = tg_rank(a), rb = tg_rank(b), r = ra > rb ? ra : rb;
    double n = 1;
    for (int i = 1; i <= r; i++) {
        double x = i <= ra ? (double)tg_dim(a, -i) : 1, y = i <= rb ? (double)tg_dim(b, -i) : 1;
        if (x != y && x != 1 && y != 1)
            return (double)size_of(a) + (double)size_of(b);
        n *= x > y ? x : y;
    }
    return n;
}

/* Upper bounds of the work (and output size) of the ops of two inputs: the
 * inputs, plus what the op adds when both are there. */
static double base_cost(const call *c)
{
    return (double)size_of(c->a) + (double)size_of(c->b) + 1;
}

/* elementwise with broadcasting, and the losses */
static double bcast_cost(const call *c)
{
    return base_cost(c) + (c->a && c->b ? 2 * bcast_size(c->a, c->b) : 0);
}

/* a row per row of a (add_bias, softmax_ce) */
static double rows_cost(const call *c)
{
    return base_cost(c) + (c->a && c->b ? (double)size_of(c->a) : 0);
}

/* ---- the builders, one per op of ops/ops.def ---- */

#define UNARY(name, call_expr)                                                 \
    static tg_tensor *fz_##name(state *st, call *c)                            \
    {                                                                          \
        if (!one(st, c))                                                       \
            return NULL;                                                       \
        tg_tensor *x = c->a;                                                   \
        return call_expr;                                                      \
    }
UNARY(sigmoid, tg_sigmoid(x))
UNARY(relu, tg_relu(x))
UNARY(tanh, tg_tanh(x))
UNARY(exp, tg_exp(x))
UNARY(log, tg_log(x))
UNARY(neg, tg_neg(x))
UNARY(scale, tg_scale(x, value(st)))
UNARY(transpose, tg_transpose(x))
UNARY(trace, tg_trace(x))
UNARY(l2, tg_l2(x, value(st)))
UNARY(leaky_relu, tg_leaky_relu(x, value(st)))
UNARY(gelu, tg_gelu(x))
UNARY(silu, tg_silu(x))
UNARY(softplus, tg_softplus(x))
UNARY(sqrt, tg_sqrt(x))
UNARY(abs, tg_abs(x))
UNARY(pow, tg_pow(x, value(st)))
UNARY(add_scalar, tg_add_scalar(x, value(st)))
UNARY(step, tg_step(x, value(st)))
UNARY(gelu_grad, tg_gelu_grad(x))
#undef UNARY

/* softmax, log_softmax: bit 0 of a byte picks the causal mask (rank < 2
 * and Tq > Tk: the errors) */
static tg_tensor *fz_softmax(state *st, call *c)
{
    if (!one(st, c))
        return NULL;
    return u8(st) & 1 ? tg_softmax_causal(c->a) : tg_softmax(c->a);
}

static tg_tensor *fz_log_softmax(state *st, call *c)
{
    if (!one(st, c))
        return NULL;
    return u8(st) & 1 ? tg_log_softmax_causal(c->a) : tg_log_softmax(c->a);
}

/* one_hot: a slot (labels), a classes byte (from a table with bad values)
 * and a flags byte: bit 0 an ignore index (byte 3: the index − 2), bit 1 f32 */
static tg_tensor *fz_one_hot(state *st, call *c)
{
    static const int ctab[] = {1, 2, 3, 4, 10, 0, -1, INT_MIN, INT_MAX, 1000};
    if (!one(st, c))
        return NULL;
    int classes = ctab[u8(st) % (sizeof ctab / sizeof ctab[0])];
    uint8_t f = u8(st);
    int ign = (int)u8(st) - 2;
    tg_dtype d = f & 2 ? TG_F32 : TG_F64;
    if (c->a && classes > 0 &&
        !budget(st, c->a, (double)size_of(c->a) * (double)classes + 1)) {
        c->skipped = true;
        return NULL;
    }
    return f & 1 ? tg_one_hot_ignore(c->a, classes, ign, d) : tg_one_hot(c->a, classes, d);
}

/* clamp: two values, lo then hi (lo > hi or NaN: the error) */
static tg_tensor *fz_clamp(state *st, call *c)
{
    if (!one(st, c))
        return NULL;
    double lo = value(st), hi = value(st);
    return tg_clamp(c->a, lo, hi);
}

/* Elementwise and losses: the cost of the broadcast. */
#define BINARY(name, call_expr)                                                \
    static tg_tensor *fz_##name(state *st, call *c)                            \
    {                                                                          \
        two(st, c);                                                            \
        if (!two_fit(st, c, bcast_cost(c)))                                    \
            return NULL;                                                       \
        tg_tensor *a = c->a, *b = c->b;                                        \
        return call_expr;                                                      \
    }
BINARY(add, tg_add(a, b))
BINARY(sub, tg_sub(a, b))
BINARY(mul, tg_mul(a, b))
BINARY(div, tg_div(a, b))
BINARY(mse, tg_mse(a, b, flags_of(c)))
BINARY(softmax_ce_onehot, tg_softmax_ce_onehot(a, b, flags_of(c)))
BINARY(bce, tg_bce(a, b, flags_of(c)))
BINARY(bce_logits, tg_bce_logits(a, b, flags_of(c)))
BINARY(maximum, tg_maximum(a, b))
BINARY(minimum, tg_minimum(a, b))
#undef BINARY

/* An axis byte of sum, mean, max_axis, max_mask: -6..6, or from 250 an
 * extreme (INT_MIN, INT_MAX, 1000, -1000); bit 4 is free for keepdim. */
static int axis_of(uint8_t a)
{
    if (a >= 250)
        return a == 250 ? INT_MIN : a == 251 ? INT_MAX : a == 252 ? 1000 : -1000;
    return (int)(a % 13) - 6;
}

/* sum and mean: byte & 1 chooses all elements or one axis; the axis byte
 * gives -6..6 (some out of range) or an extreme, and keepdim. */
static tg_tensor *reduce_op(state *st, call *c, bool mean)
{
    if (!one(st, c))
        return NULL;
    if (!(u8(st) & 1))
        return mean ? tg_mean(c->a) : tg_sum(c->a);
    uint8_t a = u8(st);
    int axis = axis_of(a);
    bool keep = (a >> 4) & 1;
    return mean ? tg_mean_axis(c->a, axis, keep) : tg_sum_axis(c->a, axis, keep);
}

/* max_axis: the axis byte as sum's (-6..6 or an extreme, bit 4 keepdim) */
static tg_tensor *fz_max_axis(state *st, call *c)
{
    if (!one(st, c))
        return NULL;
    uint8_t a = u8(st);
    int axis = axis_of(a);
    return tg_max_axis(c->a, axis, (a >> 4) & 1);
}

/* max_mask: the axis byte as max_axis's (bit 4 unused) */
static tg_tensor *fz_max_mask(state *st, call *c)
{
    if (!one(st, c))
        return NULL;
    uint8_t a = u8(st);
    int axis = axis_of(a);
    return tg_max_mask(c->a, axis);
}

static tg_tensor *fz_sum(state *st, call *c) { return reduce_op(st, c, false); }
static tg_tensor *fz_mean(state *st, call *c) { return reduce_op(st, c, true); }

/* A rank of -1..5; with bit 3 of the byte a factorisation of the size
 * (valid), otherwise any dims; bit 7 passes a NULL shape. */
static tg_tensor *fz_reshape(state *st, call *c)
{
    if (!one(st, c))
        return NULL;
    uint8_t m = u8(st);
    int rank = m % 7 - 1;
    size_t shape[5] = {1, 1, 1, 1, 1};
    size_t n = size_of(c->a);
    if ((m >> 3) & 1) {
        for (int i = 0; i < rank && i < 5; i++) {
            size_t f = 1 + u8(st) % 4;
            if (i == rank - 1 || n % f) {
                shape[i] = i == rank - 1 ? (n ? n : 1) : 1;
            } else {
                shape[i] = f;
                n /= f;
            }
        }
    } else {
        for (int i = 0; i < 5; i++)
            shape[i] = dim(st);
    }
    return tg_reshape(c->a, rank, (m & 0x80) ? NULL : shape);
}

/* arg bits 0 and 1 transpose a and b; the cost is that of the product. */
static tg_tensor *fz_matmul(state *st, call *c)
{
    two(st, c);
    bool ta = c->arg & 1, tb = c->arg & 2;
    double cost = base_cost(c);
    if (c->a && c->b && tg_rank(c->a) == 2 && tg_rank(c->b) == 2) {
        double m = (double)tg_dim(c->a, ta ? 1 : 0), k = (double)tg_dim(c->a, ta ? 0 : 1);
        double kb = (double)tg_dim(c->b, tb ? 1 : 0), n = (double)tg_dim(c->b, tb ? 0 : 1);
        cost += m * n * (k > kb ? k : kb) + m * n;
    }
    return two_fit(st, c, cost) ? tg_matmul_t(c->a, c->b, ta, tb) : NULL;
}

static tg_tensor *fz_add_bias(state *st, call *c)
{
    two(st, c);
    return two_fit(st, c, rows_cost(c)) ? tg_add_bias(c->a, c->b) : NULL;
}

/* arg bit 7: tg_softmax_ce_ignore, the index from bits 4..6 (valid
 * classes, -100, extremes) */
static tg_tensor *fz_softmax_ce(state *st, call *c)
{
    static const int itab[] = {-100, 0, 1, -1, 2, INT_MIN, INT_MAX, 3};
    two(st, c);
    if (!two_fit(st, c, rows_cost(c)))
        return NULL;
    if (c->arg & 0x80)
        return tg_softmax_ce_ignore(c->a, c->b, itab[(c->arg >> 4) & 7], flags_of(c));
    return tg_softmax_ce(c->a, c->b, flags_of(c));
}

/* The number of classes from arg: valid ones, 0, negative and extreme. */
static tg_tensor *fz_class_means(state *st, call *c)
{
    static const int ctab[] = {1, 2, 3, 4, 5, 8, 10, 0, -1, -5, INT_MIN, INT_MAX, 100, 1000};
    two(st, c);
    int classes = ctab[c->arg % (sizeof ctab / sizeof ctab[0])];
    double cost = base_cost(c);
    if (c->a && c->b && classes > 0 && tg_rank(c->a) == 2)
        cost += (double)classes * (double)tg_dim(c->a, 1);
    return two_fit(st, c, cost) ? tg_class_means(c->a, c->b, classes) : NULL;
}

/* a row of a per index */
static tg_tensor *fz_gather_rows(state *st, call *c)
{
    two(st, c);
    double cost = base_cost(c);
    if (c->a && c->b && tg_rank(c->a) >= 1)
        cost += (double)size_of(c->b) * ((double)size_of(c->a) / (double)tg_dim(c->a, 0));
    return two_fit(st, c, cost) ? tg_gather_rows(c->a, c->b) : NULL;
}

/* max_pool2d, avg_pool2d: a slot, then 4 bytes.  Flags: bit 0
 * count_include_pad, bit 1 an input of rank 1..3 viewed as [1,1,d0,rest]
 * first (a reshape node: most leaves are not 4-D), 0xFF opts NULL.  Below
 * 0xF0 the kernel byte gives kh, kw in 1..4 (bits 0-1, 2-3), the stride
 * byte sh, sw in 0..3 (0: the kernel), the padding byte ph, pw in 0..1;
 * from 0xF0 a pair from a table of invalid and extreme values.  Cost: the
 * windows' work when the attributes are valid. */
static const int pool_ext[8][2] = {{0, 1},       {-1, 2},       {INT_MAX, 1}, {1, INT_MIN},
                                   {1000, 1000}, {2, INT_MAX}, {-5, -5},     {3, 0}};
enum { P_MAX, P_AVG, P_MAX_SCATTER, P_MAX_GATHER, P_AVG_SCATTER };
static tg_tensor *pool_op(state *st, call *c, int kind)
{
    bool avg = kind == P_AVG || kind == P_AVG_SCATTER;
    if (!one(st, c))
        return NULL;
    uint8_t f = u8(st), bk = u8(st), bs = u8(st), bp = u8(st);
    tg_pool2d_opts o;
    const int *ek = pool_ext[bk & 7], *es = pool_ext[bs & 7], *ep = pool_ext[bp & 7];
    o.kernel[0] = bk < 0xF0 ? 1 + (bk & 3) : ek[0];
    o.kernel[1] = bk < 0xF0 ? 1 + ((bk >> 2) & 3) : ek[1];
    o.stride[0] = bs < 0xF0 ? bs & 3 : es[0];
    o.stride[1] = bs < 0xF0 ? (bs >> 2) & 3 : es[1];
    o.padding[0] = bp < 0xF0 ? bp & 1 : ep[0];
    o.padding[1] = bp < 0xF0 ? (bp >> 1) & 1 : ep[1];
    o.count_include_pad = f & 1;
    tg_tensor *x = c->a;
    int r = x ? tg_rank(x) : 0;
    if ((f & 2) && r >= 1 && r <= 3)
        x = tg_reshape(x, 4, (size_t[]){1, 1, tg_dim(x, 0), size_of(x) / tg_dim(x, 0)});
    if (x && tg_rank(x) == 4 && o.kernel[0] > 0 && o.kernel[1] > 0 && o.stride[0] >= 0 &&
        o.stride[1] >= 0 && o.padding[0] >= 0 && o.padding[1] >= 0) {
        double work = (double)tg_dim(x, 0) * (double)tg_dim(x, 1) * o.kernel[0] * o.kernel[1];
        for (int i = 0; i < 2; i++) {
            double k = o.kernel[i], s = o.stride[i] ? o.stride[i] : k;
            work *= fmax(1, ((double)tg_dim(x, 2 + i) + 2.0 * o.padding[i] - k) / s + 1);
        }
        c->cost += work;
        if (work > PAIR_CAP || !budget(st, c->a, c->cost)) {
            c->skipped = true;
            return NULL;
        }
    }
    const tg_pool2d_opts *op = f == 0xFF ? NULL : &o;
    /* the adjoints: the pooled tensor from the pooling, x's shape from x
     * (bit 2 swaps them: a shape error, unless they agree) */
    tg_tensor *pooled = kind < P_MAX_SCATTER ? NULL
                        : avg                  ? tg_avg_pool2d(x, op)
                                               : tg_max_pool2d(x, op);
    switch (kind) {
    case P_MAX_SCATTER:
        return tg_max_pool2d_scatter(f & 4 ? x : pooled, x, op);
    case P_MAX_GATHER:
        return tg_max_pool2d_gather(f & 4 ? pooled : x, x, op);
    case P_AVG_SCATTER:
        return tg_avg_pool2d_scatter(f & 4 ? x : pooled, x, op);
    }
    return avg ? tg_avg_pool2d(x, op) : tg_max_pool2d(x, op);
}

static tg_tensor *fz_max_pool2d(state *st, call *c) { return pool_op(st, c, P_MAX); }
static tg_tensor *fz_avg_pool2d(state *st, call *c) { return pool_op(st, c, P_AVG); }
/* the adjoints: as their pooling, flags bit 2 swaps the shapes */
static tg_tensor *fz_max_pool2d_scatter(state *st, call *c) { return pool_op(st, c, P_MAX_SCATTER); }
static tg_tensor *fz_max_pool2d_gather(state *st, call *c) { return pool_op(st, c, P_MAX_GATHER); }
static tg_tensor *fz_avg_pool2d_scatter(state *st, call *c) { return pool_op(st, c, P_AVG_SCATTER); }

/* batch_norm: a slot x, a flags byte, momentum and eps bytes (tables of
 * valid, invalid and extreme values), then the four other inputs: with bit
 * 0 of the flags made here for x's channels on x's tape (gamma 1, beta 0.5
 * parameters; running statistics 0 and 1, inputs; not in the pool, whose
 * slot numbers the corpus counts), else 4 more slots.  Bit 3 views x of
 * rank 1 or 3 as [d,1] or [a,b,c,1] first (a reshape node); bit 1 sets the
 * tape's training mode to bit 2 (later replays run in it too). */
static tg_tensor *fz_batch_norm(state *st, call *c)
{
    static const double moms[] = {0.1, 0.5, 0, 1, -0.1, 1.5, NAN, INFINITY};
    static const double epss[] = {1e-5, 1e-3, 0.5, 0, -1e-5, NAN, INFINITY, 1e-300};
    if (!one(st, c))
        return NULL;
    c->cost *= 2; /* several passes */
    uint8_t f = u8(st);
    double mom = moms[u8(st) % 8], eps = epss[u8(st) % 8];
    tg_tensor *x = c->a, *in[4] = {NULL, NULL, NULL, NULL};
    int r = x ? tg_rank(x) : 0;
    if ((f & 8) && (r == 1 || r == 3))
        x = r == 1 ? tg_reshape(x, 2, (size_t[]){tg_dim(x, 0), 1})
                   : tg_reshape(x, 4, (size_t[]){tg_dim(x, 0), tg_dim(x, 1), tg_dim(x, 2), 1});
    tg_dtype dt = x ? tg_dtype_of(x) : TG_I32;
    if ((f & 1) && x && tg_rank(x) >= 2 && dt != TG_I32) {
        tg_tape *tape = tg_tape_of(x);
        size_t ch[1] = {tg_dim(x, 1)};
        in[0] = tg_param(tape, "gamma", dt, 1, ch);
        in[1] = tg_param(tape, "beta", dt, 1, ch);
        in[2] = tg_input(tape, "running_mean", dt, 1, ch);
        in[3] = tg_input(tape, "running_var", dt, 1, ch);
        FZ_CHECK(in[0] && in[1] && in[2] && in[3], "batch_norm's leaves: %s",
                 tg_tape_error(tape));
        tg_fill(in[0], 1), tg_fill(in[1], 0.5), tg_fill(in[3], 1);
    } else {
        for (int i = 0; i < 4; i++)
            in[i] = pick(st);
    }
    for (int i = 0; i < 4 && !c->a; i++)
        c->a = in[i]; /* the tape an error goes to */
    if ((f & 2) && c->a)
        tg_set_training(tg_tape_of(c->a), f & 4);
    return tg_batch_norm(x, in[0], in[1], in[2], in[3], mom, eps);
}

/* dropout: a slot and a byte: p from a table (bits 0-3), bit 4 sets the
 * tape's training mode to bit 5 first. */
static tg_tensor *fz_dropout(state *st, call *c)
{
    static const double ps[16] = {0.5, 0.25, 0,   0.9,      0.999, 1e-300, -0.5, 1,
                                  NAN, INFINITY, -0.0, 0.75, 0.1, 0.5,    0.5, 0.99};
    if (!one(st, c))
        return NULL;
    uint8_t f = u8(st);
    if ((f & 0x10) && c->a)
        tg_set_training(tg_tape_of(c->a), f & 0x20);
    return tg_dropout(c->a, ps[f & 15]);
}

/* dropout_apply: as dropout, then a byte: its mask applied to the slot
 * (bit 6: the slot's own mask, refused unless the slot is a dropout's) */
static tg_tensor *fz_dropout_apply(state *st, call *c)
{
    tg_tensor *y = fz_dropout(st, c);
    if (c->skipped)
        return NULL;
    clear_errors(st); /* a failed dropout's message is not this call's */
    return tg_dropout_apply(c->a, u8(st) & 0x40 ? c->a : y);
}

/* conv2d: slots x and w, a flags byte (bit 0: a bias, the next slot; bit 1:
 * x and w of rank 1..3 viewed as [1,1,d0,rest] first, reshape nodes; 0xFF:
 * opts NULL), then stride, padding, dilation and groups bytes.  Below 0xF0
 * they give per axis stride 0..3, padding 0..2, dilation 0..2 (bits 0-1,
 * 2-3; 0 means 1 for stride and dilation) and groups 0..3; from 0xF0 an
 * invalid or extreme pair (pool_ext).  Cost: the products' work when the
 * shapes and attributes are valid. */
enum { C_CONV, C_INPUT_GRAD, C_WEIGHT_GRAD };
static tg_tensor *conv_op(state *st, call *c, int kind)
{
    two(st, c);
    tg_tensor *bias = (c->arg & 1) && c->arg != 0xFF ? pick(st) : NULL;
    uint8_t bs = u8(st), bp = u8(st), bd = u8(st), bg = u8(st);
    const int *es = pool_ext[bs & 7], *ep = pool_ext[bp & 7], *ed = pool_ext[bd & 7];
    tg_conv2d_opts o;
    o.stride[0] = bs < 0xF0 ? bs & 3 : es[0];
    o.stride[1] = bs < 0xF0 ? (bs >> 2) & 3 : es[1];
    o.padding[0] = bp < 0xF0 ? (bp & 3) % 3 : ep[0];
    o.padding[1] = bp < 0xF0 ? ((bp >> 2) & 3) % 3 : ep[1];
    o.dilation[0] = bd < 0xF0 ? (bd & 3) % 3 : ed[0];
    o.dilation[1] = bd < 0xF0 ? ((bd >> 2) & 3) % 3 : ed[1];
    o.groups = bg < 0xF0 ? bg & 3 : pool_ext[bg & 7][0];
    /* x and w as 4-D (xs, ws), viewed when asked */
    tg_tensor *x = c->a, *w = c->b;
    bool view_x = (c->arg & 2) && x && tg_rank(x) >= 1 && tg_rank(x) <= 3;
    bool view_w = (c->arg & 2) && w && tg_rank(w) >= 1 && tg_rank(w) <= 3;
    size_t xs[4] = {1, 1, 1, 1}, ws[4] = {1, 1, 1, 1};
    if (view_x)
        xs[2] = tg_dim(x, 0), xs[3] = size_of(x) / xs[2];
    if (view_w)
        ws[2] = tg_dim(w, 0), ws[3] = size_of(w) / ws[2];
    for (int i = 0; i < 4; i++) {
        xs[i] = x && tg_rank(x) == 4 ? tg_dim(x, i) : xs[i];
        ws[i] = w && tg_rank(w) == 4 ? tg_dim(w, i) : ws[i];
    }
    bool valid = o.groups >= 0 && (view_x || (x && tg_rank(x) == 4)) &&
                 (view_w || (w && tg_rank(w) == 4));
    for (int i = 0; i < 2; i++)
        valid &= o.stride[i] >= 0 && o.padding[i] >= 0 && o.dilation[i] >= 0;
    double cost = base_cost(c) + (double)size_of(bias);
    if (valid) {
        /* per output element: (C/groups)·kH·kW multiply-adds, three times */
        double work = (double)xs[0] * (double)ws[0] * (double)ws[1] * (double)ws[2] *
                      (double)ws[3] * 3;
        for (int i = 0; i < 2; i++) {
            double s = o.stride[i] ? o.stride[i] : 1, d = o.dilation[i] ? o.dilation[i] : 1;
            double ext = d * ((double)ws[2 + i] - 1) + 1;
            work *= fmax(1, ((double)xs[2 + i] + 2.0 * o.padding[i] - ext) / s + 1);
        }
        cost += work;
    }
    if (!two_fit(st, c, cost))
        return NULL;
    if (view_x)
        x = tg_reshape(x, 4, xs);
    if (view_w)
        w = tg_reshape(w, 4, ws);
    const tg_conv2d_opts *op = c->arg == 0xFF ? NULL : &o;
    if (kind == C_CONV)
        return tg_conv2d(x, w, bias, op);
    /* the gradient ops on conv2d's output (bit 2: the bias slot instead,
     * a shape error unless it fits) */
    tg_tensor *g = (c->arg & 4) && bias ? bias : tg_conv2d(x, w, NULL, op);
    return kind == C_INPUT_GRAD ? tg_conv2d_input_grad(g, w, x, op)
                                : tg_conv2d_weight_grad(x, g, w, op);
}

static tg_tensor *fz_conv2d(state *st, call *c) { return conv_op(st, c, C_CONV); }
/* conv2d's gradient ops: as conv2d, on its output */
static tg_tensor *fz_conv2d_input_grad(state *st, call *c) { return conv_op(st, c, C_INPUT_GRAD); }
static tg_tensor *fz_conv2d_weight_grad(state *st, call *c) { return conv_op(st, c, C_WEIGHT_GRAD); }

/* bmm: arg bits 0 and 1 transpose a and b; the cost is that of the
 * products over the broadcast batches when the ranks are valid. */
static tg_tensor *fz_bmm(state *st, call *c)
{
    two(st, c);
    bool ta = c->arg & 1, tb = c->arg & 2;
    double cost = base_cost(c);
    int ra = c->a ? tg_rank(c->a) : 0, rb = c->b ? tg_rank(c->b) : 0;
    if (ra >= 2 && ra <= 4 && rb >= 2 && rb <= 4) {
        double m = (double)tg_dim(c->a, ta ? -1 : -2), k = (double)tg_dim(c->a, ta ? -2 : -1);
        double kb = (double)tg_dim(c->b, tb ? -1 : -2), n = (double)tg_dim(c->b, tb ? -2 : -1);
        double batches = 1;
        for (int i = 3; i <= 4; i++) {
            double x = i <= ra ? (double)tg_dim(c->a, -i) : 1;
            double y = i <= rb ? (double)tg_dim(c->b, -i) : 1;
            batches *= x > y ? x : y;
        }
        cost += batches * (m * n * (k > kb ? k : kb) + m * n);
    }
    return two_fit(st, c, cost) ? tg_bmm(c->a, c->b, ta, tb) : NULL;
}

/* layer_norm: a slot x, a flags byte and an eps byte (a table of valid,
 * invalid and extreme values).  Flags bit 0: gamma, bit 1: beta, made here
 * as [D] parameters on x's tape (not in the pool); else, with bit 2, gamma
 * and beta from 2 more slots (NULL or not); else none. */
static tg_tensor *fz_layer_norm(state *st, call *c)
{
    static const double epss[] = {1e-5, 1e-3, 0.5, 0, -1e-5, NAN, INFINITY, 1e-300};
    if (!one(st, c))
        return NULL;
    c->cost *= 2; /* several passes */
    uint8_t f = u8(st);
    double eps = epss[u8(st) % 8];
    tg_tensor *x = c->a, *g = NULL, *b = NULL;
    tg_dtype dt = x ? tg_dtype_of(x) : TG_I32;
    if ((f & 3) && x && tg_rank(x) >= 1 && dt != TG_I32) {
        tg_tape *tape = tg_tape_of(x);
        size_t d[1] = {tg_dim(x, -1)};
        if (f & 1) {
            g = tg_param(tape, "gamma", dt, 1, d);
            FZ_CHECK(g, "layer_norm's gamma: %s", tg_tape_error(tape));
            tg_fill(g, 1.5);
        }
        if (f & 2) {
            b = tg_param(tape, "beta", dt, 1, d);
            FZ_CHECK(b, "layer_norm's beta: %s", tg_tape_error(tape));
            tg_fill(b, -0.5);
        }
    } else if (f & 4) {
        g = pick(st);
        b = pick(st);
    }
    if (!c->a)
        c->a = g ? g : b; /* the tape an error goes to */
    return tg_layer_norm(x, g, b, eps);
}

/* scatter_rows: a (src) added into rows of a zero result at b's indices;
 * rows from arg: valid ones, 0, and sizes whose result overflows */
static tg_tensor *fz_scatter_rows(state *st, call *c)
{
    static const size_t rtab[] = {1, 2, 3, 4, 8, 0, (size_t)1 << 62, SIZE_MAX};
    two(st, c);
    size_t rows = rtab[c->arg % (sizeof rtab / sizeof rtab[0])];
    double cost = base_cost(c);
    if (c->a && c->b && rows <= 8) /* the others fail (0, overflow) allocating nothing */
        cost += (double)rows * (double)size_of(c->a);
    return two_fit(st, c, cost) ? tg_scatter_rows(c->a, c->b, rows) : NULL;
}

/* embedding: a row of a per index */
static tg_tensor *fz_embedding(state *st, call *c)
{
    two(st, c);
    double cost = base_cost(c);
    if (c->a && c->b && tg_rank(c->a) == 2)
        cost += (double)size_of(c->b) * (double)tg_dim(c->a, 1);
    return two_fit(st, c, cost) ? tg_embedding(c->a, c->b) : NULL;
}

/* permute: a flags byte (0xFF: perm NULL; bit 6: one entry made invalid,
 * out of range or repeated) and a byte giving the permutation of the
 * input's rank (its Lehmer code). */
static tg_tensor *fz_permute(state *st, call *c)
{
    static const int bad[4] = {-1, 4, INT_MIN, INT_MAX};
    if (!one(st, c))
        return NULL;
    uint8_t f = u8(st), code = u8(st);
    int r = c->a ? tg_rank(c->a) : 0, perm[4] = {0, 1, 2, 3};
    for (int i = 0; i < r - 1; i++) { /* a permutation of 0..r-1 from code */
        int j = i + (int)(code % (unsigned)(r - i));
        code = (uint8_t)(code / (unsigned)(r - i));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    if ((f & 0x40) && r >= 1)
        perm[f % (unsigned)r] = (f & 0x20) && r >= 2 ? perm[(f + 1) % (unsigned)r] : bad[f & 3];
    return tg_permute(c->a, f == 0xFF ? NULL : perm);
}

/* slice: an axis byte (-6..6 or an extreme), start and length bytes (small,
 * beyond the axis or extreme). */
static tg_tensor *fz_slice(state *st, call *c)
{
    static const size_t ext[4] = {0, SIZE_MAX, SIZE_MAX / 2 + 1, 1000};
    if (!one(st, c))
        return NULL;
    uint8_t ba = u8(st), bs = u8(st), bl = u8(st);
    int axis = ba < 0xF0 ? (int)(ba % 13) - 6 : (ba & 1) ? INT_MIN : INT_MAX;
    size_t start = bs < 0xF0 ? bs % 5 : ext[bs & 3];
    size_t len = bl < 0xF0 ? bl % 5 : ext[bl & 3];
    return tg_slice(c->a, axis, start, len);
}

/* concat: a slot a and a mode byte: 1..8 inputs (above 5 a tree); bits 3-4:
 * 0 inputs from the pool (often incompatible), 1 windows of a along one
 * axis (slice nodes), 2 a repeated, 3 tg_stack of a with pool slots of its
 * shape (or others); an axis byte -5..5.  Cost: 4·Σ|x_i| + 1. */
static tg_tensor *fz_concat(state *st, call *c)
{
    tg_tensor *xs[8];
    c->a = pick(st);
    uint8_t m = u8(st), ba = u8(st);
    int n = 1 + m % 8, mode = (m >> 3) & 3, axis = (int)(ba % 11) - 5;
    int r = c->a ? tg_rank(c->a) : 0;
    if (mode == 3 && n == 1)
        n = 2; /* tg_stack of one is a reshape node */
    xs[0] = c->a;
    for (int i = 1; i < n; i++) {
        if (mode == 1 && c->a && r >= 1) {
            xs[i] = c->a; /* a bound of the window's size; sliced below */
            axis = (int)(ba % (unsigned)r);
        } else if (mode == 2 || (mode == 3 && (m & 0x80))) {
            xs[i] = c->a;
        } else {
            xs[i] = pick(st);
        }
    }
    c->b = n > 1 ? xs[1] : NULL;
    c->cost = 1;
    for (int i = 0; i < n; i++)
        c->cost += 4.0 * (double)size_of(xs[i]);
    tg_tensor *first = NULL;
    for (int i = 0; i < n && !first; i++)
        first = xs[i];
    if (c->cost > PAIR_CAP || (first && !budget(st, first, c->cost))) {
        c->skipped = true;
        return NULL;
    }
    for (int i = 1; i < n && mode == 1 && c->a && r >= 1; i++) {
        size_t d = tg_dim(c->a, axis), start = u8(st) % d, len = 1 + u8(st) % (d - start);
        xs[i] = tg_slice(c->a, axis, start, len);
    }
    c->b = n > 1 ? xs[1] : NULL;
    clear_errors(st);
    return mode == 3 ? tg_stack(n, xs, axis) : tg_concat(n, xs, axis);
}

/* The builders by op id, generated from the list: an op of ops/ops.def
 * without its fz_<name> above does not compile. */
typedef tg_tensor *fz_builder(state *st, call *c);
static fz_builder *const fz_build[TG_OP_COUNT] = {
#define OP(name) [TG_OP_##name] = fz_##name,
#include "ops.def"
#undef OP
};

/* Non-NULL results per op id (fz_graph_reached: the replay test's check
 * that the corpus reaches every op). */
static size_t reached[TG_OP_COUNT];

size_t fz_graph_reached(int id) { return id >= 0 && id < TG_OP_COUNT ? reached[id] : 0; }

/* Apply the op `byte % TG_OP_COUNT` of the list to slots of the pool. */
static void op_apply(state *st)
{
    int id = u8(st) % TG_OP_COUNT;
    const char *nm = tg_ops[id]->name;
    call c = {NULL, NULL, 0, 0, false};
    tg_tensor *r = fz_build[id](st, &c);
    if (trace)
        fprintf(stderr, "  op %s%s\n", nm, c.skipped ? ": skipped (over a cap)" : "");
    if (c.skipped)
        return;
    check_result(st, nm, r, c.a, c.b);
    charge(st, r, c.cost);
    if (r) {
        reached[id]++;
        add(st, r, tape_of_slot(st, r), true);
    }
}

/* ---- values ---------------------------------------------------------------- */

static void op_set(state *st)
{
    slot s = pick_slot(st);
    tg_tensor *t = s.t;
    uint8_t m = u8(st);
    if (!t) {
        FZ_CHECK(tg_set(NULL, 0, 0) == -1 && tg_fill(NULL, 0) == -1, "NULL tensor accepted");
        return;
    }
    tg_tape *tape = tg_tape_of(t);
    bool i32 = tg_dtype_of(t) == TG_I32;
    size_t n = tg_size(t);
    tg_tape_clear_error(tape);
    int rc = 0;
    const char *what = "set";
    switch (m % 6) {
    case 0: /* a few elements: labels in and out of range */
    case 1: {
        int count = 1 + (m >> 3) % 4;
        for (int i = 0; i < count && rc == 0; i++) {
            uint8_t ib = u8(st);
            size_t idx = ib == 255 ? n : ib == 254 ? SIZE_MAX : ib % (n ? n : 1);
            double v = i32 ? ((m & 0x80) ? value(st) : ivalue(st)) : value(st);
            rc = tg_set(t, idx, v);
        }
        break;
    }
    case 2:
        what = "fill";
        rc = tg_fill(t, i32 ? ivalue(st) : value(st));
        break;
    case 3: { /* copy_in from a buffer of some dtype, maybe of the wrong count */
        what = "copy_in";
        static const int dts[] = {TG_F32, TG_F64, TG_I32, 0, 5};
        tg_dtype d = (tg_dtype)dts[(m >> 3) % 5];
        size_t count = (m & 0x80) ? n + 1 : n;
        size_t es = tg_dtype_size(d) ? tg_dtype_size(d) : 8;
        void *buf = calloc(count + 1, es);
        FZ_CHECK(buf, "out of memory");
        for (size_t i = 0; i < count && i < 8; i++) {
            double v = i32 ? ivalue(st) : value(st);
            if (d == TG_F32)
                ((float *)buf)[i] = (float)v;
            else if (d == TG_F64)
                ((double *)buf)[i] = v;
            else if (d == TG_I32)
                ((int32_t *)buf)[i] = (int32_t)(fabs(v) < 2e9 ? v : 0);
        }
        rc = tg_copy_in(t, (m & 0x40) ? NULL : buf, d, count);
        free(buf);
        break;
    }
    case 4: { /* copy_out and typed access */
        what = "copy_out";
        static const int dts[] = {TG_F32, TG_F64, TG_I32, 0};
        tg_dtype d = (tg_dtype)dts[(m >> 3) % 4];
        void *buf = calloc(n + 1, 8);
        FZ_CHECK(buf, "out of memory");
        rc = tg_copy_out(t, buf, d, (m & 0x80) ? n + 1 : n);
        free(buf);
        if (rc == 0) {
            tg_tape_clear_error(tape);
            void *p = (m & 0x20) ? (void *)tg_data_f32(t) : (m & 0x40) ? (void *)tg_data_f64(t)
                                                                       : (void *)tg_data_i32(t);
            /* a query: its message goes to tg_query_error, never the tape's
             * error (a tensor dropped by a clear is the tape's error) */
            FZ_CHECK(p || tg_query_error(tape) || tg_tape_error(tape),
                     "typed access failed without an error");
            FZ_CHECK(p || !tg_query_error(tape) || !tg_tape_error(tape),
                     "a failed query set the tape's error: %s", tg_tape_error(tape));
        }
        break;
    }
    case 5: { /* random initialisation */
        what = "init";
        tg_rng rng;
        tg_rng_seed(&rng, m);
        switch ((m >> 3) % 4) {
        case 0:
        case 1: {
            double p1 = value(st), p2 = value(st); /* in this order */
            rc = (m >> 3) % 4 ? tg_init_normal(t, &rng, p1, p2) : tg_init_uniform(t, &rng, p1, p2);
            break;
        }
        case 2: rc = tg_init_xavier(t, &rng); break;
        case 3: rc = tg_init_he(t, (m & 0x80) ? NULL : &rng); break;
        }
        break;
    }
    }
    FAILS_WITH_MSG(tape, rc, what);
}

static void op_requires_grad(state *st)
{
    tg_tensor *t = pick(st);
    bool on = u8(st) & 1;
    if (!t)
        return;
    tg_tape_clear_error(tg_tape_of(t));
    int rc = tg_set_requires_grad(t, on);
    FAILS_WITH_MSG(tg_tape_of(t), rc, "set_requires_grad");
    if (rc == 0)
        FZ_CHECK(tg_requires_grad(t) == on, "requires_grad did not change");
}

/* ---- running the tape ------------------------------------------------------- */

/* A copy of the values (or gradients) of every slot of tape k. */
typedef struct snapshot {
    void *p[MAX_SLOTS];
} snapshot;

static void snap_take(state *st, int k, snapshot *s, bool grads)
{
    for (int i = 0; i < st->n; i++) {
        tg_tensor *t = st->s[i].t;
        s->p[i] = NULL;
        if (!t || st->s[i].tape != k || (grads && tg_dtype_of(t) == TG_I32))
            continue;
        size_t bytes = tg_size(t) * tg_dtype_size(tg_dtype_of(t));
        const void *src = grads ? tg_grad(t) : tg_data(t);
        if (!src)
            continue;
        s->p[i] = malloc(bytes ? bytes : 1);
        FZ_CHECK(s->p[i], "out of memory");
        memcpy(s->p[i], src, bytes);
    }
}

static void snap_compare_free(state *st, snapshot *a, snapshot *b, bool grads, const char *what)
{
    for (int i = 0; i < st->n; i++) {
        tg_tensor *t = st->s[i].t;
        if (a->p[i] && b->p[i])
            for (size_t j = 0; j < tg_size(t); j++)
                FZ_CHECK(same_value(t, a->p[i], b->p[i], j), "%s: %s of '%s' (%s) differs at %zu",
                         what, grads ? "gradient" : "value", tg_name(t) ? tg_name(t) : "",
                         tg_op_name(t), j);
        free(a->p[i]);
        free(b->p[i]);
    }
}

static bool heavy(state *st)
{
    return st->heavy++ < MAX_HEAVY;
}

/* The values of every leaf of a tape (also those no slot holds now). */
typedef struct leaf_values {
    size_t n;
    void **p;
} leaf_values;

static void leaves_save(tg_tape *tape, leaf_values *v)
{
    v->n = tg_tape_leaves(tape);
    v->p = calloc(v->n ? v->n : 1, sizeof *v->p);
    FZ_CHECK(v->p, "out of memory");
    for (size_t i = 0; i < v->n; i++) {
        tg_tensor *t = tg_tape_leaf(tape, i);
        size_t bytes = tg_size(t) * tg_dtype_size(tg_dtype_of(t));
        v->p[i] = malloc(bytes ? bytes : 1);
        FZ_CHECK(v->p[i], "out of memory");
        memcpy(v->p[i], tg_data(t), bytes);
    }
}

static void leaves_restore(tg_tape *tape, const leaf_values *v)
{
    for (size_t i = 0; i < v->n; i++) {
        tg_tensor *t = tg_tape_leaf(tape, i);
        memcpy(tg_data(t), v->p[i], tg_size(t) * tg_dtype_size(tg_dtype_of(t)));
    }
}

static void leaves_free(leaf_values *v)
{
    for (size_t i = 0; i < v->n; i++)
        free(v->p[i]);
    free(v->p);
}

static void op_replay(state *st)
{
    uint8_t m = u8(st);
    int k = m & 1;
    tg_tape *tape = st->tape[k];
    if (!heavy(st))
        return;
    tg_tape_clear_error(tape);
    if ((m >> 1) % 3 == 0) {
        /* replay with 1 thread, then with 2: the same values, from the same
         * leaves (batch_norm's forward writes its running statistics) and
         * the same seed (dropout draws a mask per forward) */
        int threads = tg_get_threads();
        tg_set_threads(1);
        leaf_values saved;
        leaves_save(tape, &saved);
        tg_tape_seed(tape, m);
        int rc = tg_replay(tape);
        FAILS_WITH_MSG(tape, rc, "replay");
        if (rc == 0 && heavy(st)) {
            snapshot a, b;
            snap_take(st, k, &a, false);
            tg_set_threads(2);
            leaves_restore(tape, &saved);
            tg_tape_seed(tape, m);
            rc = tg_replay(tape);
            FZ_CHECK(rc == 0, "a replay that passed failed the second time: %s",
                     tg_tape_error(tape));
            snap_take(st, k, &b, false);
            snap_compare_free(st, &a, &b, false, "replay with 1 and 2 threads");
        }
        leaves_free(&saved);
        tg_set_threads(threads);
    } else if ((m >> 1) % 3 == 1) {
        int rc = tg_replay(tape);
        FAILS_WITH_MSG(tape, rc, "replay");
    } else {
        tg_tensor *root = pick(st);
        int rc = tg_forward(root);
        FZ_CHECK(rc == 0 || !root || tg_tape_error(tg_tape_of(root)), "forward failed silently");
    }
}

static void op_backward(state *st)
{
    uint8_t m = u8(st);
    tg_tensor *root = pick(st);
    if (!heavy(st))
        return;
    if (!root) {
        FZ_CHECK(tg_backward(NULL) == -1, "backward(NULL)");
        return;
    }
    tg_tape *tape = tg_tape_of(root);
    int k = tape_of_slot(st, root);
    size_t n = tg_size(root), es = tg_dtype_size(tg_dtype_of(root));
    void *seed = NULL;
    if (m & 1) { /* a seed of the root's dtype (or garbage for i32) */
        seed = malloc(n * (es ? es : 1) + 8);
        FZ_CHECK(seed, "out of memory");
        for (size_t i = 0; i < n; i++) {
            double v = i < 8 ? value(st) : 1;
            if (tg_dtype_of(root) == TG_F32)
                ((float *)seed)[i] = (float)v;
            else if (tg_dtype_of(root) == TG_F64)
                ((double *)seed)[i] = v;
        }
    }
    bool twice = (m & 6) == 6;
    if (twice)
        tg_zero_grad(tape);
    tg_tape_clear_error(tape);
    int rc = (m & 1) ? tg_backward_vjp(root, (m & 8) ? NULL : seed) : tg_backward(root);
    FAILS_WITH_MSG(tape, rc, "backward");
    if (trace)
        fprintf(stderr, "  backward from %s: %s\n", tg_op_name(root),
                rc ? tg_tape_error(tape) : "done");
    if (rc == 0 && twice && heavy(st)) {
        /* again from zero: the same gradients */
        snapshot a, b;
        snap_take(st, k, &a, true);
        tg_zero_grad(tape);
        rc = (m & 1) ? tg_backward_vjp(root, seed) : tg_backward(root);
        FZ_CHECK(rc == 0, "a backward that passed failed the second time: %s",
                 tg_tape_error(tape));
        snap_take(st, k, &b, true);
        snap_compare_free(st, &a, &b, true, "backward twice");
    }
    free(seed);
}

static void op_grad_check(state *st)
{
    uint8_t m = u8(st);
    tg_tensor *t = pick(st);
    if (!t || !heavy(st))
        return;
    tg_tape *tape = tg_tape_of(t);
    tg_tape_clear_error(tape);
    if (m & 1) {
        /* tg_check_grad against the tensor's own gradient: no difference */
        size_t n = tg_size(t);
        double *ref = malloc((n ? n : 1) * sizeof *ref);
        FZ_CHECK(ref, "out of memory");
        int rc = tg_grad_out(t, ref, TG_F64, n);
        FAILS_WITH_MSG(tape, rc, "grad_out");
        if (rc == 0) {
            tg_check c;
            static const int dts[] = {TG_F64, TG_F64, TG_F32, 0};
            tg_dtype d = (tg_dtype)dts[(m >> 1) % 4];
            if (d == TG_F32)
                for (size_t i = 0; i < n; i++)
                    ((float *)ref)[i] = (float)ref[i];
            rc = tg_check_grad(t, (m & 0x80) ? NULL : ref, d, (m & 0x40) ? NULL : &c);
            FAILS_WITH_MSG(tape, rc, "check_grad");
            if (rc == 0 && d == TG_F64) {
                bool finite = true;
                for (size_t i = 0; i < n; i++)
                    finite &= isfinite(ref[i]) != 0;
                FZ_CHECK(c.count == n, "check_grad compared %zu of %zu", c.count, n);
                FZ_CHECK(!finite || c.max_abs == 0, "check_grad of its own gradient: %g",
                         c.max_abs);
                tg_check_print(devnull, (m & 0x20) ? NULL : "self", &c);
            }
        }
        free(ref);
        return;
    }
    /* finite differences, on small graphs only */
    tg_tensor *wrt[3];
    int n_wrt = (m >> 1) % 4;
    size_t elems = 0;
    for (int i = 0; i < n_wrt; i++) {
        wrt[i] = pick(st);
        elems += size_of(wrt[i]);
    }
    int k = tape_of_slot(st, t);
    if (elems > 8 || st->work[k] > 16384 || tg_tape_nodes(tape) > 64)
        return;
    tg_check c;
    static const double steps[] = {0, 1e-3, 1e-6, -1, NAN, INFINITY};
    int rc = tg_check_fd(t, n_wrt, (m & 0x80) && n_wrt ? NULL : wrt, steps[(m >> 3) % 6],
                         (m & 0x40) ? NULL : &c);
    FAILS_WITH_MSG(tape, rc, "check_fd");
}

/* Gradients recorded as ops (tg_grad_graph, or a JVP / HVP built on it): a
 * root and 1..3 tensors from the pool (any: leaves, op outputs, i32, other
 * tapes, NULL), a grad_output from the pool or none; on small graphs only
 * (the recorded backward adds a few nodes per node).  The results join the
 * pool, so later ops, replays and backward passes run through them. */
static void op_grad_graph(state *st)
{
    uint8_t m = u8(st);
    tg_tensor *y = pick(st), *wrt[3], *out[3] = {NULL, NULL, NULL};
    int n = 1 + (m & 3) % 3;
    for (int i = 0; i < n; i++)
        wrt[i] = pick(st);
    tg_tensor *gy = (m & 4) ? pick(st) : NULL;
    if (!y || !heavy(st))
        return;
    tg_tape *tape = tg_tape_of(y);
    int k = tape_of_slot(st, y);
    if (st->work[k] > 16384 || tg_tape_nodes(tape) > 64)
        return;
    tg_tape_clear_error(tape);
    int rc;
    const char *what = "grad_graph";
    switch ((m >> 3) % 3) {
    case 0:
        rc = tg_grad_graph(y, gy, n, (m & 0x80) ? NULL : wrt, out);
        break;
    case 1:
        what = "jvp";
        out[0] = tg_jvp(y, n, wrt, (m & 0x80) ? wrt : (tg_tensor *[]){gy, gy, gy});
        rc = out[0] ? 0 : -1;
        break;
    default:
        what = "hvp";
        rc = tg_hvp(y, n, wrt, (m & 0x80) ? wrt : (tg_tensor *[]){gy, gy, gy}, out);
        break;
    }
    FAILS_WITH_MSG(tape, rc, what);
    if (trace)
        fprintf(stderr, "  %s of %s: %s\n", what, tg_op_name(y), rc ? tg_tape_error(tape) : "done");
    for (int i = 0; rc == 0 && i < 3; i++)
        if (out[i]) {
            charge(st, out[i], 16.0 * (double)size_of(out[i]) + 1);
            add(st, out[i], k, true);
        }
}

static void op_dot(state *st)
{
    uint8_t m = u8(st);
    int k = m & 1;
    tg_tensor *root = (m & 2) ? pick(st) : NULL;
    if (!heavy(st))
        return;
    tg_dot_opts o;
    memset(&o, 0, sizeof o);
    uint8_t f = u8(st);
    o.values = f & 1;
    o.grads = f & 2;
    o.backward = f & 4;
    o.clusters = f & 8;
    o.max_values = (f >> 4) - 2; /* -2..13 */
    o.title = name(st);
    tg_tape *tape = (m & 4) ? NULL : st->tape[k];
    tg_tape *err_tape = tape ? tape : root ? tg_tape_of(root) : NULL;
    if (err_tape)
        tg_tape_clear_error(err_tape);
    int rc = tg_dot_write((m & 8) ? NULL : devnull, tape, root, (m & 16) ? NULL : &o);
    if (err_tape)
        FAILS_WITH_MSG(err_tape, rc, "dot_write");
    else
        FZ_CHECK(rc == -1, "dot_write without a tape or root");
}

/* ---- optimizers and clipping ------------------------------------------------ */

static void op_optim(state *st)
{
    uint8_t m = u8(st);
    int k = m & 1;
    tg_tape *tape = st->tape[k];
    tg_tensor *params[4];
    int n = (m >> 1) % 5;
    for (int i = 0; i < n; i++)
        params[i] = pick(st);
    if (!heavy(st))
        return;
    tg_tape_clear_error(tape);
    if ((m >> 4) % 3 == 2) {
        double norm = tg_clip_grad_norm(tape, n, (m & 0x80) && n ? NULL : params, value(st));
        FZ_CHECK(!(norm < 0) || tg_tape_error(tape), "clip_grad_norm failed without an error");
        return;
    }
    /* (the order of initialisers is unspecified: read the bytes one by one) */
    double v[5];
    for (int i = 0; i < 5; i++)
        v[i] = value(st);
    bool flag = u8(st) & 1;
    tg_optim *o;
    if ((m >> 4) % 3 == 0) {
        tg_sgd_opts so = {v[0], v[1], v[2], flag};
        o = tg_sgd_new(tape, n, params, (m & 0x80) ? NULL : &so);
    } else {
        tg_adam_opts ao = {v[0], v[1], v[2], v[3], v[4], flag};
        o = tg_adam_new(tape, n, params, (m & 0x80) ? NULL : &ao);
    }
    FZ_CHECK(o || tg_tape_error(tape), "optimizer refused without an error");
    if (!o)
        return;
    int steps = 1 + u8(st) % 3;
    for (int i = 0; i < steps; i++) {
        int rc = tg_optim_step(o);
        FAILS_WITH_MSG(tape, rc, "optim_step");
        tg_optim_set_lr(o, value(st));
        (void)tg_optim_get_lr(o);
    }
    tg_optim_free(o);
    /* the schedules: pure functions, any arguments */
    long e = (int8_t)u8(st), k2 = (int8_t)u8(st);
    double base = value(st), other = value(st);
    (void)tg_lr_step(base, e, k2, other);
    (void)tg_lr_cosine(base, other, e, k2);
}

/* ---- queries ------------------------------------------------------------------- */

static void op_query(state *st)
{
    uint8_t m = u8(st);
    tg_tensor *t = pick(st);
    tg_tape *tape = st->tape[m & 1];
    char buf[24];
    size_t len = u8(st) % sizeof buf;
    tg_shape_str(t, (m & 2) ? NULL : buf, len);
    (void)tg_rank(t), (void)tg_size(t), (void)tg_name(t), (void)tg_op_name(t);
    (void)tg_dim(t, (int)(u8(st) % 11) - 5);
    (void)tg_node_index(t), (void)tg_kind_of(t), (void)tg_dtype_of(t), (void)tg_requires_grad(t);
    (void)tg_get(t, u8(st));
    (void)tg_grad_get(t, u8(st));
    if (t) {
        tg_tape *tt = tg_tape_of(t);
        tg_tape_clear_error(tt);
        double v = tg_item(t);
        FZ_CHECK(tg_size(t) == 1 || (isnan(v) && (tg_query_error(tt) || tg_tape_error(tt))),
                 "item of %zu elements", tg_size(t));
        if (m & 4) {
            tg_tape_clear_error(tt);
            int rc = tg_set_name(t, name(st));
            FAILS_WITH_MSG(tt, rc, "set_name");
        }
    }
    (void)tg_version(), (void)tg_isa(), (void)tg_isa_supported((m & 8) ? NULL : "avx2");
    (void)tg_dtype_name((tg_dtype)u8(st)), (void)tg_dtype_size((tg_dtype)u8(st));
    (void)tg_tape_node_output(tape, u8(st));
    (void)tg_tape_leaf(tape, u8(st));
    (void)tg_tape_find(tape, name(st));
    tg_tape_stats s;
    tg_tape_get_stats(tape, &s);
    FZ_CHECK(s.nodes == tg_tape_nodes(tape) && s.leaves == tg_tape_leaves(tape), "stats");
    for (size_t i = 0; i < s.nodes; i++)
        FZ_CHECK(tg_node_index(tg_tape_node_output(tape, i)) == (long)i, "node %zu index", i);
}

static void op_scope(state *st)
{
    uint8_t m = u8(st);
    tg_tape *tape = st->tape[m & 1];
    if (m & 2) {
        tg_scope_pop(tape);
        return;
    }
    tg_tape_clear_error(tape);
    const char *nm = name(st);
    char longname[700];
    if (m & 4) { /* too long once nested */
        memset(longname, 'a', sizeof longname - 1);
        longname[sizeof longname - 1] = 0;
        nm = longname;
    }
    int rc = tg_scope_push(tape, nm);
    FAILS_WITH_MSG(tape, rc, "scope_push");
}

static void op_modes(state *st)
{
    uint8_t m = u8(st);
    int k = m & 1;
    tg_tape *tape = st->tape[k];
    switch ((m >> 1) % 4) {
    case 0:
        st->grad_on[k] = (m >> 3) & 1;
        tg_set_grad_enabled(tape, st->grad_on[k]);
        break;
    case 1:
        tg_set_anomaly(tape, (m >> 3) & 1);
        break;
    case 2:
        tg_zero_grad(tape);
        break;
    case 3:
        tg_tape_clear(tape);
        drop_temps(st, k);
        st->work[k] = 0;
        FZ_CHECK(tg_tape_nodes(tape) == 0, "clear left nodes");
        break;
    }
}

/* ---- the program ------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    state st;
    memset(&st, 0, sizeof st);
    st.in.p = data;
    st.in.n = size;
    uint8_t head = u8(&st);
    static const char *const isas[] = {NULL, "generic", "avx2", "avx512", "sse9"};
    int isa_rc = tg_set_isa(isas[head % 5]);
    FZ_CHECK(isa_rc == 0 || head % 5 == 4 || !tg_isa_supported(isas[head % 5]), "set_isa");
    tg_set_threads((head >> 3) & 1 ? 2 : 1);
    st.tape[0] = tg_tape_new();
    st.tape[1] = tg_tape_new();
    FZ_CHECK(st.tape[0] && st.tape[1], "out of memory");
    st.grad_on[0] = st.grad_on[1] = true;

    for (int step = 0; step < MAX_STEPS && fz_more(&st.in); step++) {
        uint8_t op = u8(&st);
        if (trace)
            fprintf(stderr, "step %d: opcode %u (%u) at byte %zu\n", step, op % 16, op,
                    st.in.at - 1);
        switch (op % 16) {
        case 0:
        case 1: op_leaf(&st); break;
        case 2: op_scalar(&st); break;
        case 3:
        case 4:
        case 5:
        case 6:
        case 7:
        case 8: op_apply(&st); break;
        case 9: op_set(&st); break;
        case 10: op_replay(&st); break;
        case 11: op_backward(&st); break;
        case 12:
            if (op & 0x10)
                op_grad_graph(&st);
            else
                op_grad_check(&st);
            break;
        case 13:
            if (op & 0x10)
                op_dot(&st);
            else
                op_optim(&st);
            break;
        case 14:
            if (op & 0x10)
                op_query(&st);
            else
                op_requires_grad(&st);
            break;
        case 15:
            if (op & 0x10)
                op_scope(&st);
            else
                op_modes(&st);
            break;
        }
    }

    /* Every program ends the same way: replay tape 0, backward from its
     * last node (seeded when it is not a scalar), DOT of it all. */
    tg_tape *t0 = st.tape[0];
    size_t nodes = tg_tape_nodes(t0);
    tg_tape_clear_error(t0);
    if (nodes && st.work[0] <= WORK_CAP) {
        int rc = tg_replay(t0);
        FAILS_WITH_MSG(t0, rc, "final replay");
        tg_tensor *root = tg_tape_node_output(t0, nodes - 1);
        size_t n = tg_size(root);
        double *seed = malloc((n ? n : 1) * sizeof *seed);
        FZ_CHECK(seed, "out of memory");
        for (size_t i = 0; i < n; i++)
            seed[i] = 1;
        if (tg_dtype_of(root) == TG_F32)
            for (size_t i = 0; i < n; i++)
                ((float *)seed)[i] = 1;
        tg_tape_clear_error(t0);
        rc = tg_backward_vjp(root, seed);
        FAILS_WITH_MSG(t0, rc, "final backward");
        free(seed);
        tg_dot_opts o = {true, true, true, true, 0, "final"};
        tg_tape_clear_error(t0);
        rc = tg_dot_write(devnull, t0, NULL, &o);
        FAILS_WITH_MSG(t0, rc, "final dot_write");
    }
    tg_tape_free(st.tape[0]);
    tg_tape_free(st.tape[1]);
    tg_set_threads(1);
    tg_set_isa(NULL);
    return 0;
}
