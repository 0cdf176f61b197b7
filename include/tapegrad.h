/*
 * tapegrad — graph-based reverse-mode automatic differentiation in C.
 *
 * Every op appends one node to a tape (define-by-run) and computes its
 * output at once.  One reverse walk over the tape gives every gradient; the
 * same tape can be replayed on new leaf values without allocating.
 *
 * Conventions used throughout this header
 *  - Tensors are contiguous, row-major, rank 0..4, dtype f32, f64 or i32.
 *  - A function that returns a pointer returns NULL on failure; one that
 *    returns int returns 0 (TG_OK) on success and -1 on failure.  The reason
 *    is kept on the tape: tg_tape_error() gives the first error message.
 *  - Every op accepts NULL inputs and then returns NULL, so a chain of calls
 *    can be checked once at the end.
 *  - Ops never abort, crash or read out of bounds on a user mistake.
 */
#ifndef TAPEGRAD_H
#define TAPEGRAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "tapegrad_version.h" /* TG_VERSION_MAJOR, _MINOR, _PATCH, _STRING */

/*
 * TG_API marks the functions the library exports.  The library is compiled
 * with TG_BUILDING_LIB and hidden visibility by default (meson.build), so
 * libtapegrad.so exports these functions and nothing else (tests/exports.sh
 * checks it).  For a program that includes this header, linked with the
 * static or the shared library, TG_API is empty.  A build that needs another
 * marker (e.g. __declspec(dllexport) for a Windows DLL) defines TG_API itself.
 */
#ifndef TG_API
#if defined(TG_BUILDING_LIB) && defined(__GNUC__)
#define TG_API __attribute__((visibility("default")))
#else
#define TG_API
#endif
#endif

/** The library's version as "MAJOR.MINOR.PATCH" (TG_VERSION_STRING of the
 *  library that was built, which may differ from the header's). */
TG_API const char *tg_version(void);

#define TG_OK 0
#define TG_ERR (-1)
#define TG_MAX_RANK 4

/* ======================================================================== */
/* Types                                                                    */
/* ======================================================================== */

/** Element type of a tensor, chosen at run time. */
typedef enum tg_dtype {
    TG_F32 = 1, /* float  */
    TG_F64 = 2, /* double */
    TG_I32 = 3  /* int32_t: class labels and indices (never differentiated) */
} tg_dtype;

/** What a tensor is on the tape. */
typedef enum tg_kind {
    TG_PARAM = 1, /* leaf that requires a gradient (weights, biases)          */
    TG_INPUT = 2, /* leaf without gradient whose values change (data, labels) */
    TG_CONST = 3, /* leaf without gradient whose values are fixed             */
    TG_OP = 4     /* output of a recorded op                                  */
} tg_kind;

typedef struct tg_tape tg_tape;     /* a tape: leaves + recorded nodes */
typedef struct tg_tensor tg_tensor; /* a leaf or an op's output        */

/** Name of a dtype: "f32", "f64", "i32" (or "?" for an invalid value). */
TG_API const char *tg_dtype_name(tg_dtype dtype);
/** Size in bytes of one element of dtype (0 for an invalid value). */
TG_API size_t tg_dtype_size(tg_dtype dtype);

/* ======================================================================== */
/* Tapes                                                                    */
/* ======================================================================== */

/** A new empty tape, or NULL when out of memory. */
TG_API tg_tape *tg_tape_new(void);

/** Free the tape and everything on it (leaves included).  NULL is a no-op. */
TG_API void tg_tape_free(tg_tape *tape);

/**
 * Drop every recorded node, every op output and every intermediate gradient
 * at once, keeping the leaves (and their gradients).  The memory is kept for
 * reuse, so a program that rebuilds its graph every step stops allocating
 * after the first one.  Tensors returned by ops are invalid afterwards.
 */
TG_API void tg_tape_clear(tg_tape *tape);

/** The first error recorded on the tape, or NULL when there is none. */
TG_API const char *tg_tape_error(const tg_tape *tape);

/** Forget the recorded error (and the last query error) so that the next
 *  one is kept. */
TG_API void tg_tape_clear_error(tg_tape *tape);

/**
 * The message of the last query on this tape that failed, or NULL.  Queries
 * (tg_item, tg_data_f32 / _f64 / _i32, tg_grad) answer a failure with NULL
 * or NaN to their caller and leave the message here, never in
 * tg_tape_error: a harmless query on the wrong tensor must not hide the
 * first error of an op.  Each failing query overwrites it.
 */
TG_API const char *tg_query_error(const tg_tape *tape);

/** Number of op nodes currently recorded on the tape. */
TG_API size_t tg_tape_nodes(const tg_tape *tape);

/** Number of leaves (params, inputs, constants) on the tape. */
TG_API size_t tg_tape_leaves(const tg_tape *tape);

/** The i-th leaf in creation order (NULL when out of range). */
TG_API tg_tensor *tg_tape_leaf(const tg_tape *tape, size_t i);

/** The leaf whose name is `name` (the first one created), or NULL. */
TG_API tg_tensor *tg_tape_find(const tg_tape *tape, const char *name);

/** The output of the i-th recorded node (NULL when out of range). */
TG_API tg_tensor *tg_tape_node_output(const tg_tape *tape, size_t i);

/** Memory statistics of a tape, see tg_tape_stats(). */
typedef struct tg_tape_stats {
    size_t nodes;        /* recorded nodes                                  */
    size_t leaves;       /* leaves                                          */
    size_t graph_bytes;  /* bytes in use in the node arena                  */
    size_t graph_chunks; /* chunks the node arena holds (kept across clear) */
    size_t leaf_bytes;   /* bytes in use in the leaf arena                  */
    size_t checkpoint_bytes; /* the checkpoint pools: the largest segment's
                                dropped values plus their gradients        */
    size_t segments;     /* checkpoint segments ended                       */
} tg_tape_stats;

/** Fill *out with the tape's memory statistics. */
TG_API void tg_tape_get_stats(const tg_tape *tape, tg_tape_stats *out);

/**
 * Turn gradient recording off (enabled = false) or back on.  While it is off
 * ops compute their outputs at once but record no node: the outputs are
 * constants that replay does not recompute and backward does not cross.
 * Returns the previous setting.
 */
TG_API bool tg_set_grad_enabled(tg_tape *tape, bool enabled);

/**
 * Whether backward keeps the gradient of every op output it reaches (keep =
 * true, a new tape's setting) or only those of the leaves (false, as
 * PyTorch without retain_grad): then op outputs whose gradients are never
 * needed at the same time in the reverse walk share one buffer, planned
 * over the whole tape at the next backward, so an MLP's backward holds about
 * two layers' worth of activation gradients instead of one per node.  With
 * false, tg_grad (and tg_grad_out, tg_grad_get) of an op output fails (a
 * query error) and leaves' gradients are unchanged; recording nodes after a
 * backward makes the next one plan (and allocate in the graph arena) again.
 * Returns the previous setting (false for NULL).
 */
TG_API bool tg_set_keep_grads(tg_tape *tape, bool keep);

/**
 * Training or evaluation mode (PyTorch's train()/eval()), tape-wide; a new
 * tape trains.  dropout and batch_norm read it every time they run, so it
 * can change between replays without recording again: in evaluation mode
 * dropout is the identity and batch_norm normalises with its running
 * statistics (and leaves them unchanged).  Returns the previous setting
 * (false for NULL).
 */
TG_API bool tg_set_training(tg_tape *tape, bool training);
/** Whether the tape is in training mode (false for NULL). */
TG_API bool tg_training(const tg_tape *tape);
/**
 * Seed the tape's generator, from which the random ops (dropout) draw a
 * fresh mask on every forward and replay: the same seed, the same masks,
 * whatever the thread count.  A new tape is seeded with 0.  NULL: no-op.
 */
TG_API void tg_tape_seed(tg_tape *tape, uint64_t seed);

/**
 * Scopes group nodes (for the DOT view, e.g. "layer1").  Nodes recorded
 * between push and pop carry the scope name; scopes nest as "a/b".
 * Returns 0, or -1 when the name is NULL/empty or scopes nest deeper than 8.
 */
TG_API int tg_scope_push(tg_tape *tape, const char *name);
/** Leave the innermost scope (no-op when none is open). */
TG_API void tg_scope_pop(tg_tape *tape);

/**
 * Activation checkpointing: trade compute for memory.  Everything recorded
 * between tg_checkpoint_begin and tg_checkpoint_end is a segment (one
 * transformer block, K recurrent steps ...).  Its intermediate values are
 * dropped after its forward — all segments share one pool the size of the
 * largest — and backward runs the segment's forward again just before it
 * needs them.  Only the n tensors passed to tg_checkpoint_end (outs, made
 * inside the segment) are kept and may be used later; the segment's inputs
 * are whatever it used from before (kept as usual).
 *
 * Gradients are bit-identical to the same tape without checkpointing: the
 * recomputation repeats the first forward exactly (ops are deterministic for
 * any thread count; dropout reuses its mask's key; batch_norm keeps the
 * mode it ran in and updates its running statistics once).  Replay works as
 * usual and allocates nothing, recomputation included.  The cost: each
 * segment's forward runs twice per training step (the last segment's
 * values are still in the pool when backward starts, so it runs once).
 *
 * Errors (tape error, -1): begin while a segment is open (no nesting); end
 * with none open, an out that is NULL, not computed inside the segment, or a
 * view (reshape) of another tensor (keep the viewed tensor, take the view
 * after end).  Using a dropped intermediate after end — as an op input,
 * tg_item, tg_data_*, tg_grad, a backward root — is an error naming it.
 * backward while a segment is open is refused.  A leaf that the segment
 * reads and that was written after its forward makes backward refuse (its
 * recomputation would see the new value): replay first.  Values in DOT
 * dumps (--values) of dropped intermediates are those of the last segment
 * run.  tg_tape_clear ends an open segment.
 */
TG_API int tg_checkpoint_begin(tg_tape *tape);
TG_API int tg_checkpoint_end(tg_tape *tape, int n, tg_tensor *const *outs);

/* ======================================================================== */
/* Leaves and tensor access                                                 */
/* ======================================================================== */

/**
 * A new leaf of the given kind (TG_PARAM, TG_INPUT or TG_CONST), filled with
 * zeros.  `shape` holds `rank` sizes (it may be NULL when rank is 0); every
 * size must be >= 1.  `name` may be NULL; it is copied.  Leaves live until
 * tg_tape_free.  A TG_PARAM leaf must be f32 or f64.
 */
TG_API tg_tensor *tg_leaf(tg_tape *tape, tg_kind kind, const char *name,
                          tg_dtype dtype, int rank, const size_t *shape);
/** tg_leaf(tape, TG_PARAM, ...): a leaf that requires a gradient. */
TG_API tg_tensor *tg_param(tg_tape *tape, const char *name, tg_dtype dtype,
                           int rank, const size_t *shape);
/** tg_leaf(tape, TG_INPUT, ...): a leaf for data that changes per step. */
TG_API tg_tensor *tg_input(tg_tape *tape, const char *name, tg_dtype dtype,
                           int rank, const size_t *shape);
/** tg_leaf(tape, TG_CONST, ...): a leaf for fixed values. */
TG_API tg_tensor *tg_const(tg_tape *tape, const char *name, tg_dtype dtype,
                           int rank, const size_t *shape);

/**
 * A leaf created from a caller's buffer: like tg_leaf, then the values are
 * copied from `data`, which holds tg_size() elements of `dtype`.
 */
TG_API tg_tensor *tg_leaf_from(tg_tape *tape, tg_kind kind, const char *name,
                               tg_dtype dtype, int rank, const size_t *shape,
                               const void *data);

/**
 * A rank-0 constant holding `value`, belonging to the current graph: unlike
 * leaves it is dropped by tg_tape_clear.  Handy for broadcasting ops.
 */
TG_API tg_tensor *tg_scalar(tg_tape *tape, tg_dtype dtype, double value);

/** Whether a leaf takes part in backward.  Params start true, others false.
 *  Only leaves may change it (f32/f64 only).  Returns 0 or -1. */
TG_API int tg_set_requires_grad(tg_tensor *t, bool requires_grad);
/** Whether t is a leaf that requires a gradient. */
TG_API bool tg_requires_grad(const tg_tensor *t);

TG_API tg_tape *tg_tape_of(const tg_tensor *t); /* the tape t belongs to       */
TG_API tg_dtype tg_dtype_of(const tg_tensor *t);/* its dtype (0 for NULL)       */
TG_API tg_kind tg_kind_of(const tg_tensor *t);  /* its kind (0 for NULL)        */
TG_API int tg_rank(const tg_tensor *t);         /* its rank (-1 for NULL)       */
/** Size of axis `axis` (negative counts from the end); 0 when out of range. */
TG_API size_t tg_dim(const tg_tensor *t, int axis);
/** Number of elements (1 for rank 0; 0 for NULL). */
TG_API size_t tg_size(const tg_tensor *t);
/** The tensor's name, or NULL when it has none. */
TG_API const char *tg_name(const tg_tensor *t);
/** Name a tensor (copied; NULL removes the name).  Returns 0 or -1. */
TG_API int tg_set_name(tg_tensor *t, const char *name);
/** The name of the op that produced t ("matmul", ...) or its kind for a
 *  leaf ("param", "input", "const"). */
TG_API const char *tg_op_name(const tg_tensor *t);
/** Position of t's node on the tape, or -1 for a leaf/constant. */
TG_API long tg_node_index(const tg_tensor *t);
/** Write "128x784" (or "scalar") into buf; returns buf. */
TG_API char *tg_shape_str(const tg_tensor *t, char *buf, size_t len);

/**
 * Writing values.  Only leaves hold values of their own: tg_copy_in,
 * tg_fill, tg_set and the initialisers refuse an op's output (its values are
 * what its forward computed).  A write through these calls (or an optimizer
 * step, tg_load) after a forward makes a later backward that reads the
 * leaf refuse until a replay (tg_replay, tg_forward): a gradient would mix
 * the values of two states.  Writes through a tg_data pointer are not seen:
 * make them before replaying.
 */

/** Pointer to the tensor's elements (row-major, tg_size() of them). */
TG_API void *tg_data(tg_tensor *t);
/** Typed access: NULL when the dtype differs (a query: the message is in
 *  tg_query_error). */
TG_API float *tg_data_f32(tg_tensor *t);
TG_API double *tg_data_f64(tg_tensor *t);
TG_API int32_t *tg_data_i32(tg_tensor *t);

/**
 * Copy `count` elements of `src_dtype` into t, converting to t's dtype.
 * count must equal tg_size(t).  Values copied into an i32 tensor must be
 * integers representable as int32.  Returns 0 or -1.
 */
TG_API int tg_copy_in(tg_tensor *t, const void *src, tg_dtype src_dtype,
                      size_t count);
/** Copy t's elements out to dst as `dst_dtype` (count = tg_size(t)). */
TG_API int tg_copy_out(const tg_tensor *t, void *dst, tg_dtype dst_dtype,
                       size_t count);
/** Set every element to value.  Returns 0 or -1. */
TG_API int tg_fill(tg_tensor *t, double value);
/** Element i (flat row-major index) as a double; NaN when out of range. */
TG_API double tg_get(const tg_tensor *t, size_t i);
/** Set element i (flat index).  Returns 0 or -1. */
TG_API int tg_set(tg_tensor *t, size_t i, double value);
/** The value of a one-element tensor; NaN otherwise (a query: the message
 *  is in tg_query_error). */
TG_API double tg_item(const tg_tensor *t);

/**
 * The gradient of the last backward with respect to t, as a buffer of t's
 * dtype and size: for a leaf, the sum since the last tg_zero_grad; for an op
 * output, from the last backward pass (zeros if that pass did not reach t).
 * NULL for i32 tensors (a query: tg_query_error) or when out of memory.
 * The pointer stays valid while t lives (a leaf: until tg_tape_free; an op
 * output: until tg_tape_clear) and shows t's gradient after every backward
 * (a leaf that a backward did not reach shows zeros once it has been zeroed
 * by tg_zero_grad).  Between tg_zero_grad and the next backward it still
 * shows the old values: call tg_grad again (O(1)) or tg_grad_get to read
 * zeros there.
 */
TG_API void *tg_grad(tg_tensor *t);
/** Copy the gradient out as `dst_dtype` (count = tg_size(t)). */
TG_API int tg_grad_out(tg_tensor *t, void *dst, tg_dtype dst_dtype, size_t count);
/** Element i of the gradient as a double (NaN when out of range). */
TG_API double tg_grad_get(tg_tensor *t, size_t i);

/* ======================================================================== */
/* Random initialisation                                                    */
/* ======================================================================== */

/**
 * A seeded pseudo-random generator (xoshiro256** seeded by splitmix64).
 * It only uses integer arithmetic and correctly rounded IEEE operations, so
 * every machine produces the same numbers for the same seed.
 */
typedef struct tg_rng {
    uint64_t s[4];
} tg_rng;

/* A NULL rng is ignored by tg_rng_seed and makes the others return 0. */
TG_API void tg_rng_seed(tg_rng *rng, uint64_t seed);
TG_API uint64_t tg_rng_next(tg_rng *rng);      /* 64 random bits                */
TG_API double tg_rng_uniform(tg_rng *rng);     /* uniform in [0, 1), 53 bits    */
TG_API double tg_rng_normal(tg_rng *rng);      /* standard normal (polar method) */
/** Uniform integer in [0, n) without modulo bias (0 when n == 0). */
TG_API uint64_t tg_rng_below(tg_rng *rng, uint64_t n);

/** Fill t (f32/f64) uniformly from [lo, hi).  Returns 0 or -1. */
TG_API int tg_init_uniform(tg_tensor *t, tg_rng *rng, double lo, double hi);
/** Fill t (f32/f64) from a normal distribution.  Returns 0 or -1. */
TG_API int tg_init_normal(tg_tensor *t, tg_rng *rng, double mean, double stddev);
/**
 * Xavier/Glorot uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)).
 * Fans: a rank-2 tensor [rows, cols] is used as X·W, so fan_in = rows and
 * fan_out = cols; rank 1: both = size; rank 3/4 is a convolution's weight
 * [out, in, k...] (tg_conv2d): fan_in = dim1 * receptive field, fan_out =
 * dim0 * receptive field (receptive = product of the rest), as PyTorch.
 */
TG_API int tg_init_xavier(tg_tensor *t, tg_rng *rng);
/** He/Kaiming normal: N(0, 2 / fan_in), fans as for tg_init_xavier. */
TG_API int tg_init_he(tg_tensor *t, tg_rng *rng);

/* ======================================================================== */
/* Ops                                                                      */
/* ======================================================================== */
/*
 * Every op takes its inputs from one tape, records a node on it (unless
 * recording is off), computes the output and returns it.  Float inputs of one
 * op must share a dtype.  On a bad input the op returns NULL and the tape
 * keeps the message, e.g. "matmul: inner dimensions differ (128x784 · 512x10)".
 */

/** C = A·B for 2-D A [m,k], B [k,n]. */
TG_API tg_tensor *tg_matmul(tg_tensor *a, tg_tensor *b);
/** C = op(A)·op(B) where op transposes when the flag is set:
 *  tg_matmul_t(a, b, true, false) is Aᵀ·B. */
TG_API tg_tensor *tg_matmul_t(tg_tensor *a, tg_tensor *b, bool trans_a,
                              bool trans_b);
/** Y = X + 1·bᵀ: X [n,d] plus the row vector b ([d] or [1,d]) on every row. */
TG_API tg_tensor *tg_add_bias(tg_tensor *x, tg_tensor *b);

/** Elementwise with NumPy broadcasting (shapes aligned from the right;
 *  sizes must match or be 1).  Backward sums over the broadcast axes. */
TG_API tg_tensor *tg_add(tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_sub(tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_mul(tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_div(tg_tensor *a, tg_tensor *b);

TG_API tg_tensor *tg_scale(tg_tensor *x, double c); /* c·x */
TG_API tg_tensor *tg_neg(tg_tensor *x);             /* −x  */

TG_API tg_tensor *tg_sigmoid(tg_tensor *x); /* 1 / (1 + e^−x)      */
TG_API tg_tensor *tg_relu(tg_tensor *x);    /* max(x, 0); 0 slope at 0 */
TG_API tg_tensor *tg_tanh(tg_tensor *x);
TG_API tg_tensor *tg_exp(tg_tensor *x);
TG_API tg_tensor *tg_log(tg_tensor *x);     /* natural log         */

/** Softmax along the last axis (max-subtracted: finite for any finite x). */
TG_API tg_tensor *tg_softmax(tg_tensor *x);
/** log(softmax(x)) along the last axis, computed as x − logsumexp(x). */
TG_API tg_tensor *tg_log_softmax(tg_tensor *x);

/** Sum / mean of all elements (a rank-0 result). */
TG_API tg_tensor *tg_sum(tg_tensor *x);
TG_API tg_tensor *tg_mean(tg_tensor *x);
/** Sum / mean along one axis (negative counts from the end).  With keepdim
 *  the axis stays with size 1, otherwise it is removed. */
TG_API tg_tensor *tg_sum_axis(tg_tensor *x, int axis, bool keepdim);
TG_API tg_tensor *tg_mean_axis(tg_tensor *x, int axis, bool keepdim);

/** Swap the last two axes (rank >= 2). */
TG_API tg_tensor *tg_transpose(tg_tensor *x);
/** Same elements, new shape (same element count). */
TG_API tg_tensor *tg_reshape(tg_tensor *x, int rank, const size_t *shape);

/**
 * Per-class means: X [n,d], labels i32 [n] with values in [0, classes);
 * returns M [classes,d] with M[c] = mean of the rows of class c (a row of
 * zeros for a class without samples).
 */
TG_API tg_tensor *tg_class_means(tg_tensor *x, tg_tensor *labels, int classes);
/** Rows of X [r,...] picked by i32 indices [k]: Y[i] = X[idx[i]];
 *  the result has shape [k,...].  Backward scatter-adds. */
TG_API tg_tensor *tg_gather_rows(tg_tensor *x, tg_tensor *idx);
/**
 * Scatter-add of rows, the adjoint of tg_gather_rows and tg_embedding (their
 * recorded gradients): idx i32 of rank 0..3, src of shape idx.shape + R (R:
 * the row's axes); Y [rows, R...] is zero but Y[idx[p]] += src[p] for every
 * position p of idx (a row picked twice gets both, added in index order).
 * Gradient: dsrc[p] = dY[idx[p]] (a gather); idx gets none.  Errors: src
 * not f32/f64, idx not i32 or of rank > 3, src's shape not starting with
 * idx's, a result of rank > 4, rows 0, a result too large; at forward
 * (record and replay) an index outside [0, rows), named with its position.
 */
TG_API tg_tensor *tg_scatter_rows(tg_tensor *src, tg_tensor *idx, size_t rows);
/** Trace of a square matrix (a rank-0 result). */
TG_API tg_tensor *tg_trace(tg_tensor *x);

/* ---- Convolutional networks (tensors N×C×H×W, row-major) --------------- */

/**
 * Options of tg_conv2d; a zero-filled struct (or NULL) is PyTorch's default:
 * stride 1, no padding, dilation 1, one group.  Index 0 is the height axis,
 * 1 the width axis.
 */
typedef struct tg_conv2d_opts {
    int stride[2];   /* step between output positions; 0 means 1            */
    int padding[2];  /* zeros added on both sides of each axis              */
    int dilation[2]; /* spacing between kernel taps; 0 means 1              */
    int groups;      /* C and O split into groups (C = groups: depthwise); 0 means 1 */
} tg_conv2d_opts;
/**
 * 2-D convolution (cross-correlation, as PyTorch's Conv2d): x [N,C,H,W],
 * w [O,C/groups,kH,kW], optional bias [O] (NULL: none) →
 * y [N,O,Ho,Wo] with Ho = ⌊(H + 2·pad − dil·(kH − 1) − 1) / stride⌋ + 1
 * (Wo likewise).  Gradients for x, w and bias.
 */
TG_API tg_tensor *tg_conv2d(tg_tensor *x, tg_tensor *w, tg_tensor *bias,
                            const tg_conv2d_opts *opts);
/**
 * conv2d's gradient for its input, as an op (the transposed convolution):
 * for g [N,O,Ho,Wo] of tg_conv2d(x, w, ..., opts)'s output shape,
 * dx [N,C,H,W] (x's shape and dtype) with ⟨h, dx⟩ = ⟨conv2d(h, w), g⟩ for
 * every h (no bias).  x gives the shape only (its values are never read:
 * with a stride the shape is not g's alone).  Differentiable: its gradients
 * are tg_conv2d (for g) and tg_conv2d_weight_grad (for w); none for x.
 * Refused as tg_conv2d, and g of another shape or dtype.
 */
TG_API tg_tensor *tg_conv2d_input_grad(tg_tensor *g, tg_tensor *w, tg_tensor *x,
                                       const tg_conv2d_opts *opts);
/**
 * conv2d's gradient for its weight, as an op: dw [O,C/groups,kH,kW] (w's
 * shape and dtype, w read for its shape only) = Σ over N and the output
 * positions of g ⊗ x's taps, with ⟨k, dw⟩ = ⟨conv2d(x, k), g⟩ for every k.
 * Differentiable: its gradients are tg_conv2d_input_grad (for x) and
 * tg_conv2d (for g); none for w.  Refused as tg_conv2d_input_grad.
 */
TG_API tg_tensor *tg_conv2d_weight_grad(tg_tensor *x, tg_tensor *g, tg_tensor *w,
                                        const tg_conv2d_opts *opts);

/** Options of the 2-D poolings; NULL is not accepted (the kernel has no default). */
typedef struct tg_pool2d_opts {
    int kernel[2];  /* window height, width (>= 1)                           */
    int stride[2];  /* 0 means the kernel size (PyTorch's default)           */
    int padding[2]; /* at most half the kernel on each side                  */
    bool count_include_pad; /* avg_pool2d: padded zeros count in the divisor */
} tg_pool2d_opts;
/**
 * Max pooling of x [N,C,H,W] over windows → [N,C,Ho,Wo], Ho as tg_conv2d
 * with dilation 1.  Padding is −∞ (never the maximum).  The gradient goes
 * to the maximum of each window; on a tie, to the first maximum in
 * row-major order within the window.  A NaN in a window is its maximum (as
 * PyTorch): the output is NaN and the gradient goes to the window's first
 * NaN.  The maxima's positions are kept at forward, so backward does not
 * read x.  Refused: x not 4-D or not float, opts NULL, a kernel < 1, a
 * stride < 0, a padding < 0 or above half the kernel, a kernel larger than
 * the padded input.
 */
TG_API tg_tensor *tg_max_pool2d(tg_tensor *x, const tg_pool2d_opts *opts);
/**
 * Average pooling of x [N,C,H,W] → [N,C,Ho,Wo].  The divisor is the number
 * of window positions inside the input, or the whole kernel area when
 * count_include_pad is set (PyTorch's default is true; a zero-filled opts
 * has it false).  Global average pooling is tg_mean_axis of
 * tg_reshape(x, 3, {N, C, H·W}) along axis 2 (or this with the kernel
 * {H, W}).  Refused as tg_max_pool2d.
 */
TG_API tg_tensor *tg_avg_pool2d(tg_tensor *x, const tg_pool2d_opts *opts);
/**
 * max_pool2d's gradient, as an op: g [N,C,Ho,Wo] (the pooled shape of x)
 * sent to the maximum of each window of x, added where windows overlap →
 * [N,C,H,W] (x's shape); the maxima are found in x at each run with
 * tg_max_pool2d's rule (ties, NaN).  Its gradient for g is
 * tg_max_pool2d_gather, for x zero (so max_pool2d is twice differentiable,
 * its second derivative zero).  Refused as tg_max_pool2d, and g of another
 * shape or dtype.
 */
TG_API tg_tensor *tg_max_pool2d_scatter(tg_tensor *g, tg_tensor *x,
                                        const tg_pool2d_opts *opts);
/**
 * t [N,C,H,W] (x's shape) read at the maximum of each window of x →
 * [N,C,Ho,Wo]: max_pool2d's directional derivative (JVP) in direction t,
 * the adjoint of tg_max_pool2d_scatter (its gradient for t; for x zero).
 * Refused as tg_max_pool2d_scatter, t of x's shape.
 */
TG_API tg_tensor *tg_max_pool2d_gather(tg_tensor *t, tg_tensor *x,
                                       const tg_pool2d_opts *opts);
/**
 * avg_pool2d's gradient, as an op (its adjoint): g [N,C,Ho,Wo] (the pooled
 * shape of x) spread over the windows, dx[i] = Σ_{windows o ∋ i} g[o]/d(o),
 * → x's shape (x read for its shape only).  Its gradient for g is
 * tg_avg_pool2d; none for x.  Refused as tg_max_pool2d_scatter.
 */
TG_API tg_tensor *tg_avg_pool2d_scatter(tg_tensor *g, tg_tensor *x,
                                        const tg_pool2d_opts *opts);

/**
 * Batch normalisation, per channel: over N,H,W for x [N,C,H,W] and over N
 * for x [N,C].  gamma, beta, running_mean, running_var are [C].
 * Training mode (tg_set_training): y = γ·(x − μ_B)/√(σ²_B + ε) + β with the
 * batch mean and biased variance, and each forward updates
 * running ← (1 − momentum)·running + momentum·batch statistic (the
 * variance's unbiased form, as PyTorch); backward goes through μ_B and σ²_B.
 * Evaluation mode: μ and σ² are the running statistics, left unchanged.
 * running_mean and running_var are leaves the op writes (tg_input or
 * tg_const, f32/f64 like x; PyTorch starts them at 0 and 1); save them with
 * the parameters.  Errors: running statistics that are op outputs, require
 * a gradient or are another input too; momentum outside [0, 1]; eps <= 0; in
 * training mode, one value per channel (N·H·W = 1), at record time or at a
 * replay after switching to training.  Backward follows the mode its
 * forward ran in; the gradient tg_grad_graph records is that of the tape's
 * mode when it is recorded (training: through the batch statistics,
 * differentiable again; evaluation: the running ones, constants).
 */
TG_API tg_tensor *tg_batch_norm(tg_tensor *x, tg_tensor *gamma, tg_tensor *beta,
                                tg_tensor *running_mean, tg_tensor *running_var,
                                double momentum, double eps);
/**
 * Dropout: in training mode each element is zeroed with probability p and
 * the others scaled by 1/(1 − p) (inverted dropout), with a fresh mask on
 * every forward and replay drawn from the tape's generator (tg_tape_seed);
 * the identity in evaluation mode.  0 <= p < 1.  Element i is kept when
 * u_i >= p, u_i uniform in [0, 1) from the forward's key and i alone: the
 * masks do not depend on the thread count.  Backward uses the mask of the
 * last forward; tg_check_fd's copy keeps one mask for all its evaluations.
 */
TG_API tg_tensor *tg_dropout(tg_tensor *x, double p);
/**
 * dropout's gradient, as an op: t ⊙ m, m the mask (0 or 1/(1 − p); all
 * ones when it ran in evaluation mode or with p = 0) that the tg_dropout
 * node whose output is y drew in its last forward, read again at every
 * replay (the dropout node runs first).  y's values are never read and
 * its gradient is zero; t's is dropout_apply again.  Refused: y not the
 * output of tg_dropout, t of another shape or dtype than y.
 */
TG_API tg_tensor *tg_dropout_apply(tg_tensor *t, tg_tensor *y);
/** max(x, 0) + slope·min(x, 0); slope 0.01 is PyTorch's default (any value
 *  is accepted).  The gradient at x = 0 is slope (PyTorch's x > 0 ? 1 : slope). */
TG_API tg_tensor *tg_leaky_relu(tg_tensor *x, double slope);

/* ---- Sequence models (attention, normalisation, embeddings) ------------ */
/**
 * Batched matrix product: C[t] = op(A[t])·op(B[t]) for every batch index t,
 * op = identity or transpose (trans_a, trans_b).  a is [..., m, k] ([..., k, m]
 * with trans_a), b is [..., k, n] ([..., n, k] with trans_b), rank 2 to 4
 * each; the batch axes (all but the last two) broadcast NumPy-style (aligned
 * from the right, sizes equal or 1; a rank-2 operand is the same matrix for
 * every batch).  C is [batch..., m, n].  Q·Kᵀ is tg_bmm(q, k, false, true),
 * with no transposed copy.  Gradients: per batch as tg_matmul_t, summed over
 * the batches an operand was broadcast across (in a fixed order: identical
 * for any thread count).  Errors: a dtype that is not f32/f64 or differs,
 * a rank outside 2..4, inner dimensions that differ, batch axes that do not
 * broadcast.
 */
TG_API tg_tensor *tg_bmm(tg_tensor *a, tg_tensor *b, bool trans_a, bool trans_b);
/**
 * Layer normalisation over the last axis (size D) of x (any rank >= 1):
 * per row μ = mean(x), σ = √(mean((x − μ)²) + eps) (biased variance),
 * x̂ = (x − μ)/σ, y = γ⊙x̂ + β, as PyTorch's LayerNorm(D).  gamma and beta
 * are [D] with x's dtype, and each is optional: NULL means no scale (γ = 1)
 * or no shift (β = 0).  Gradients: dx = (g − mean(g) − x̂·mean(g⊙x̂))/σ with
 * g = γ⊙dy; dγ = Σ dy⊙x̂ and dβ = Σ dy over all rows.  D = 1 gives x̂ = 0
 * (y = β, dx = 0).  Errors: x a scalar or not f32/f64; gamma or beta not [D]
 * or of another dtype; eps <= 0 or not finite.  PyTorch's eps is 1e-5.
 */
TG_API tg_tensor *tg_layer_norm(tg_tensor *x, tg_tensor *gamma, tg_tensor *beta, double eps);
/**
 * Embedding lookup: y[p, :] = weight[idx[p], :] for weight [V, D] (f32/f64)
 * and idx an i32 tensor of any shape [...] of rank 0 to 3; y is [..., D].
 * The gradient scatter-adds into weight (an index repeated gets every
 * contribution, summed in index order).  Errors: weight not 2-D, idx not i32
 * or of rank > 3; at forward (record or replay), an index outside [0, V),
 * named with its position.  Backward uses the indices of the last forward.
 */
TG_API tg_tensor *tg_embedding(tg_tensor *weight, tg_tensor *idx);
/**
 * Axes reordered: y.shape[i] = x.shape[perm[i]] and y[j_0,…,j_{r−1}] = x[i]
 * with i_{perm[k]} = j_k (NumPy's transpose(x, perm), PyTorch's permute).
 * perm holds rank(x) entries, a permutation of 0..rank(x)−1 (negative axes
 * are not accepted); x has rank 1..4.  The heads case [B,T,H,D] ↔ [B,H,T,D]
 * is perm {0,2,1,3}.  Gradient: dx = permute(dy, perm⁻¹).  Errors: x not
 * f32/f64 or a scalar, perm NULL, an entry out of range or repeated.
 */
TG_API tg_tensor *tg_permute(tg_tensor *x, const int *perm);
/**
 * The window [start, start+length) of one axis (negative axis counts from
 * the end): y has x's shape with that axis of size length (a copy, not a
 * view).  Gradient: dy into the window of dx, zero elsewhere.  Errors: x not
 * f32/f64 or a scalar, axis out of range, length 0, start + length beyond
 * the axis.
 */
TG_API tg_tensor *tg_slice(tg_tensor *x, int axis, size_t start, size_t length);
/**
 * xs[0..n) joined along axis (negative counts from the end): every input
 * has the same dtype (f32/f64), rank and sizes except along axis, where y
 * has the sum of theirs.  n = 1 gives a copy.  A node takes at most 5
 * inputs: for n > 5 the result is a tree of concat nodes (parts of 5^k
 * inputs joined the same way, then joined; the same values and
 * gradients).  Gradient: each input gets its block of dy (the same tensor
 * in two places gets both).  Errors: xs NULL or n < 1 (NULL, no error can
 * be set without a tape), an input NULL, of another tape, dtype, rank or
 * size off the axis, axis out of range.
 */
TG_API tg_tensor *tg_concat(int n, tg_tensor *const *xs, int axis);
/**
 * xs[0..n) of one shape [s...] stacked along a new axis (0..rank, negative
 * counts from the end of the result): y[..., i, ...] = xs[i], the result
 * has rank rank(x)+1 (at most 4).  Recorded as a reshape per input (a size-1
 * axis inserted) and tg_concat along it; n = 1 is that reshape alone.
 * Errors: as tg_concat, inputs of different shapes, a result of rank > 4,
 * axis out of range.
 */
TG_API tg_tensor *tg_stack(int n, tg_tensor *const *xs, int axis);
/**
 * Causal (masked) softmax / log_softmax along the last axis, for attention
 * scores x [..., Tq, Tk] (rank >= 2, Tq <= Tk, f32/f64): row q (along axis
 * −2) sees only the columns j <= q + (Tk − Tq), bottom-right aligned (Tq = Tk
 * is the usual lower triangle; Tq < Tk is the last Tq queries over Tk keys),
 * as PyTorch's softmax(x.masked_fill(mask, −inf)).  On the visible columns
 * the values and gradients are those of tg_softmax / tg_log_softmax on them
 * alone; the masked outputs are exactly 0 (softmax) or −∞ (log_softmax) and
 * get a zero gradient.  Every row sees at least one column, so no NaN for
 * finite x; −∞ inputs in visible places act as in tg_softmax.  DOT shows
 * `softmax(causal)`.  Errors: x not f32/f64, rank < 2, Tq > Tk.
 */
TG_API tg_tensor *tg_softmax_causal(tg_tensor *x);
TG_API tg_tensor *tg_log_softmax_causal(tg_tensor *x);

/* Elementwise: y has x's shape and dtype (f32/f64); NaN in x stays NaN in y
 * (except pow with p = 0, 1 everywhere as C's pow). */
/** GELU, exact erf form (PyTorch's nn.GELU()): y = ½·x·(1 + erf(x/√2)) =
 *  x·Φ(x), computed without cancellation for x ≪ 0 (y(−∞) = 0);
 *  dx = dy·(Φ(x) + x·φ(x)), φ the standard normal density.  f64 uses
 *  libm's erfc; f32 a rational fit of erfc (relative error < 1.2e-7, so
 *  that the loop vectorises): y within 8e-6 relative of the f64 value. */
TG_API tg_tensor *tg_gelu(tg_tensor *x);
/** GELU's derivative, gelu'(x) = Φ(x) + x·φ(x) (the same kernels as
 *  tg_gelu's gradient; tg_gelu's recorded gradient is dy·gelu_grad(x));
 *  dx = dy·gelu''(x) = dy·φ(x)·(2 − x²), 0 where φ(x) underflows (±∞
 *  included).  Its own recorded gradient is made of tg_ ops, so tg_gelu is
 *  differentiable (tg_grad_graph) to any order. */
TG_API tg_tensor *tg_gelu_grad(tg_tensor *x);
/** SiLU (swish): y = x·σ(x); dx = dy·σ(x)·(1 + x·(1 − σ(x))).  Stable for
 *  any |x| (y(−∞) = 0, y(+∞) = +∞, no NaN from ±∞). */
TG_API tg_tensor *tg_silu(tg_tensor *x);
/** y = log(1 + eˣ), computed as max(x, 0) + log1p(e^(−|x|)) (no threshold);
 *  dx = dy·σ(x). */
TG_API tg_tensor *tg_softplus(tg_tensor *x);
/** y = √x; dx = dy/(2y): +∞ at x = 0 (as PyTorch), NaN for x < 0. */
TG_API tg_tensor *tg_sqrt(tg_tensor *x);
/** y = |x|; dx = dy·sign(x), 0 at x = 0 (as PyTorch). */
TG_API tg_tensor *tg_abs(tg_tensor *x);
/** y = x^p for a constant finite exponent p (C's pow; f32 rounds p to
 *  float); dx = dy·p·x^(p−1).  p = 0: y = 1 and dx = 0 everywhere.  x < 0
 *  with a non-integer p gives NaN; x = 0 with p < 1 an infinite gradient
 *  (p = −1: y = +∞).  Errors: x not f32/f64, p NaN or ±∞. */
TG_API tg_tensor *tg_pow(tg_tensor *x, double p);
/** y = min(max(x, lo), hi); dx = dy where lo <= x <= hi (the bounds
 *  included, as PyTorch), 0 elsewhere and where x is NaN.  Either bound may
 *  be infinite (one-sided clamp).  Errors: x not f32/f64, lo or hi NaN,
 *  lo > hi. */
TG_API tg_tensor *tg_clamp(tg_tensor *x, double lo, double hi);
/** y = x + c for a plain number c (±∞ accepted; NaN is an error); dx = dy.
 *  Multiplying by a number is tg_scale. */
TG_API tg_tensor *tg_add_scalar(tg_tensor *x, double c);
/** Heaviside step: y = 1 where x > 0, 0 where x < 0, at0 where x = 0, NaN
 *  where x is NaN; dx = 0 (zero wherever the derivative exists).  The
 *  masks of recorded gradients (tg_grad_graph: relu, abs, clamp, maximum
 *  ...) are made of it.  Errors: x not f32/f64, at0 not finite. */
TG_API tg_tensor *tg_step(tg_tensor *x, double at0);
/** One-hot rows: y[..., j] = 1 where labels[...] = j, else 0; labels i32 of
 *  any shape (rank <= 3), y of shape labels.shape + [classes] in dtype (f32
 *  or f64).  No gradient flows to the labels.  Errors: labels not i32,
 *  classes < 1, dtype not float; at forward (record and replay) a label
 *  outside [0, classes), named with its position. */
TG_API tg_tensor *tg_one_hot(tg_tensor *labels, int classes, tg_dtype dtype);
/** tg_one_hot where rows labelled ignore_index are all zero (that label
 *  may lie outside [0, classes), as PyTorch's ignore_index). */
TG_API tg_tensor *tg_one_hot_ignore(tg_tensor *labels, int classes, int ignore_index,
                                    tg_dtype dtype);
/**
 * Elementwise maximum / minimum of a and b with NumPy broadcasting (as
 * tg_add; same float dtype).  Gradient: dy to the larger (maximum) or
 * smaller (minimum) input, 0 to the other; at a tie (a = b) dy/2 to each, as
 * torch.maximum / torch.minimum (checked against torch 1.13); summed over
 * broadcast axes.  NaN in either input gives NaN, and there both inputs
 * get dy (torch 1.13's rule: the weights are !(a < b) and !(a > b)).
 * Errors: dtypes not f32/f64 or different, shapes that do not broadcast.
 */
TG_API tg_tensor *tg_maximum(tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_minimum(tg_tensor *a, tg_tensor *b);
/**
 * The maximum of x (f32/f64, rank >= 1) along one axis (negative counts from
 * the end); keepdim keeps the axis with size 1, otherwise it is removed.
 * Gradient: all of dy to the FIRST maximal element of each slice (the index
 * torch.max(x, dim) returns), 0 to the others, ties included.  A slice
 * holding NaN has the max NaN, its first NaN taking the gradient (as torch).
 * The index is found again in every forward; backward reads only it.
 * Errors: x not f32/f64, axis out of range (the axis and shape named).
 */
TG_API tg_tensor *tg_max_axis(tg_tensor *x, int axis, bool keepdim);
/**
 * The mask of tg_max_axis's choice: y of x's shape and dtype, 1 at the FIRST
 * maximal element of each slice along axis (its first NaN where the slice
 * holds one), 0 elsewhere; dx = 0 (piecewise constant).  tg_max_axis's
 * recorded gradient is dy ⊙ max_mask(x).  Errors: as tg_max_axis.
 */
TG_API tg_tensor *tg_max_mask(tg_tensor *x, int axis);

/* ---- Recurrent cells (GRU, LSTM) ----------------------------------------- */
/*
 * One step of a GRU or an LSTM, as torch.nn.GRUCell and torch.nn.LSTMCell
 * compute it.  These are helpers, not ops: a step records ordinary nodes
 * (matmul, add_bias, add, slice, sigmoid, tanh, mul, sub), so it inherits
 * their gradients, replay, checks and thread behaviour, and a user gets a
 * tested cell with PyTorch's equations instead of wiring a dozen ops.  An
 * unrolled network passes the same struct at every step: the weights are
 * shared across steps and their gradients sum over the steps.
 *
 * Weights are stored for x·W, transposed with respect to PyTorch: w_ih is
 * [input, kH] and w_hh is [H, kH] (PyTorch's weight_ih is [kH, input]: copy
 * weight_ih.T), with b_ih and b_hh [kH]; the kH columns are the gate blocks
 * of H each, in PyTorch's order (k = 3 for the GRU: r, z, n; k = 4 for the
 * LSTM: i, f, g, o).  The gate matrices are fused: one matmul per input per
 * step, then slices.
 */
typedef struct tg_gru {
    tg_tensor *w_ih, *w_hh, *b_ih, *b_hh; /* [in,3H], [H,3H], [3H], [3H] */
    int input, hidden;
} tg_gru;
typedef struct tg_lstm {
    tg_tensor *w_ih, *w_hh, *b_ih, *b_hh; /* [in,4H], [H,4H], [4H], [4H] */
    int input, hidden;
} tg_lstm;
/**
 * Create a cell's parameters as leaves of `tape` named "<name>.w_ih",
 * "<name>.w_hh", "<name>.b_ih", "<name>.b_hh" (name NULL or "": "gru" /
 * "lstm"), dtype f32 or f64, initialised as PyTorch does: every entry
 * U(−1/√H, 1/√H), drawn from tg_rng seeded with `seed`, in the order w_ih,
 * w_hh, b_ih, b_hh (the same seed gives the same weights; the numbers are
 * not PyTorch's).  *g is zeroed first and filled on success.  Returns 0, or
 * -1 with a tape error (tape NULL: -1 only): g NULL, input or hidden < 1,
 * a dtype other than f32/f64, a name over 294 bytes, out of memory (the
 * leaves made before that stay on the tape, unused).
 */
TG_API int tg_gru_new(tg_tape *tape, tg_gru *g, int input, int hidden, tg_dtype dt,
                      const char *name, uint64_t seed);
TG_API int tg_lstm_new(tg_tape *tape, tg_lstm *l, int input, int hidden, tg_dtype dt,
                       const char *name, uint64_t seed);
/**
 * One GRU step: x [B,input], h [B,H] → h' [B,H], with
 *   r = σ(x·W_ir + b_ir + h·W_hr + b_hr)
 *   z = σ(x·W_iz + b_iz + h·W_hz + b_hz)
 *   n = tanh(x·W_in + b_in + r⊙(h·W_hn + b_hn))
 *   h' = (1 − z)⊙n + z⊙h
 * (W_ir = w_ih's columns [0,H), W_iz [H,2H), W_in [2H,3H); likewise w_hh and
 * the biases).  Gradients flow to the four weights, x and h.  Returns NULL
 * when g, x or h is NULL (and then sets no error unless there is a tape to
 * name the NULL cell on) or on an error naming "gru_cell" and the shapes:
 * weights that do not fit g->input/g->hidden, x not [B,input], h not [B,H],
 * a dtype or tape that differs from the weights'.
 */
TG_API tg_tensor *tg_gru_cell(const tg_gru *g, tg_tensor *x, tg_tensor *h);
/**
 * One LSTM step: x [B,input], h and c [B,H] → *h_out, *c_out [B,H], with
 *   i = σ(·_i), f = σ(·_f), g = tanh(·_g), o = σ(·_o),
 *   ·_k = x·W_ik + b_ik + h·W_hk + b_hk  (gate blocks in order i, f, g, o)
 *   c' = f⊙c + i⊙g,   h' = o⊙tanh(c').
 * Returns 0, or -1 with *h_out = *c_out = NULL (where not NULL): an input
 * NULL (no error set, as an op), h_out or c_out NULL, or the errors of
 * tg_gru_cell named "lstm_cell" (c is checked as h).
 */
TG_API int tg_lstm_cell(const tg_lstm *l, tg_tensor *x, tg_tensor *h, tg_tensor *c,
                        tg_tensor **h_out, tg_tensor **c_out);

/* Losses.  `flags` combines one reduction with options:                  */
#define TG_SUM 0x0        /* sum over all terms                             */
#define TG_MEAN 0x1       /* divided by the number of terms                 */
#define TG_BATCH_MEAN 0x2 /* divided by the batch size (dim 0)              */
#define TG_HALF 0x4       /* mse only: an extra factor ½ (the ½Σ convention)*/

/** Mean squared error: s·Σ(pred − target)², s from flags. */
TG_API tg_tensor *tg_mse(tg_tensor *pred, tg_tensor *target, int flags);
/**
 * Softmax cross-entropy on logits [..., c] (rank >= 2; [n,c] or, for a
 * sequence model, [B,T,V]) with i32 labels of exactly the leading shape
 * [...] ([n] or [B,T]), fused and stable: Σ over the rows (the prod(leading)
 * vectors of c logits) of lse(z) − z[label].  TG_MEAN divides by the number
 * of rows (n; B·T), TG_BATCH_MEAN by dim 0 (n; B for [B,T,V]: the per-
 * sequence sum, averaged over the batch).  Gradient: s·(softmax(z) −
 * onehot(label)) per row.  Errors: logits not f32/f64 or of rank < 2, labels
 * not i32 or not of the leading shape (both shapes named); at forward
 * (record or replay), a label outside [0, c), named with its row (and, for
 * labels of rank >= 2, its index).  Backward uses the labels of the last
 * forward.
 */
TG_API tg_tensor *tg_softmax_ce(tg_tensor *logits, tg_tensor *labels, int flags);
/**
 * tg_softmax_ce where the rows whose label == ignore_index (any int, e.g.
 * −100 as PyTorch, or a class such as a padding token) contribute 0 to the
 * loss and get a zero gradient; other labels outside [0, c) are errors as in
 * tg_softmax_ce.  TG_MEAN divides by the number of rows NOT ignored,
 * counted again in every forward (PyTorch's cross_entropy(reduction='mean',
 * ignore_index=...)); when every row is ignored the loss is NaN (0/0, as
 * PyTorch) and the gradient 0.  TG_SUM sums the rows kept; TG_BATCH_MEAN
 * divides that sum by dim 0 whatever is ignored.  DOT shows
 * `softmax_ce(mean ignore=-100)`.
 */
TG_API tg_tensor *tg_softmax_ce_ignore(tg_tensor *logits, tg_tensor *labels, int ignore_index,
                                       int flags);
/** Softmax cross-entropy with target distributions of the logits' shape
 *  [..., c] (e.g. one-hot; rank >= 2, rows as tg_softmax_ce):
 *  −Σ t·log softmax(z); also differentiable in the targets. */
TG_API tg_tensor *tg_softmax_ce_onehot(tg_tensor *logits, tg_tensor *targets,
                                       int flags);
/** Binary cross-entropy on probabilities p in [0,1]:
 *  −Σ t·log p + (1−t)·log(1−p), each log clamped at −100 (as PyTorch). */
TG_API tg_tensor *tg_bce(tg_tensor *prob, tg_tensor *target, int flags);
/** Binary cross-entropy on logits z (stable for any z):
 *  Σ max(z,0) − z·t + log(1 + e^−|z|). */
TG_API tg_tensor *tg_bce_logits(tg_tensor *logits, tg_tensor *target, int flags);
/** L2 penalty λ/2·Σw². */
TG_API tg_tensor *tg_l2(tg_tensor *w, double lambda);

/* ======================================================================== */
/* Running the tape                                                         */
/* ======================================================================== */

/**
 * Re-run the forward of every recorded node, in order, on the current leaf
 * values.  Allocates nothing.  Fails (with the op and its position in the
 * message) when e.g. a label went out of range; the tape is then stale from
 * that node on, and a backward through it refuses until a replay succeeds.
 */
TG_API int tg_replay(tg_tape *tape);
/** Replay only the nodes up to and including the one producing root. */
TG_API int tg_forward(tg_tensor *root);

/**
 * Reverse-mode differentiation from a scalar (one-element) root, starting
 * from the gradient 1.  Gradients are added into the leaves that require them (see
 * tg_zero_grad) and kept for every op output reached (tg_grad).  Nodes that
 * cannot reach such a leaf are skipped.  The walk is iterative.  It refuses,
 * before writing any gradient, when the values on the tape mix two states:
 * after a replay that failed at or before the root's node, or when a leaf
 * that a reached node's gradient reads was written after that node's forward.
 */
TG_API int tg_backward(tg_tensor *root);
/** Backward from any root given the gradient of its output: `grad_output`
 *  holds tg_size(root) elements of root's dtype, v, and every leaf receives
 *  the vector-Jacobian product vᵀ·∂root/∂leaf (PyTorch's grad_outputs).
 *  tg_backward(root) is tg_backward_vjp with v = 1. */
TG_API int tg_backward_vjp(tg_tensor *root, const void *grad_output);
/** Set the gradients of all leaves to zero (O(1): done lazily). */
TG_API void tg_zero_grad(tg_tape *tape);

/**
 * Anomaly mode: while on, every forward (when recording and on replay) and
 * every step of backward checks the values it produced; the first NaN or Inf
 * stops the op, replay or backward with an error naming the op, its position
 * on the tape, the element and the tensors' names.  It costs one pass over
 * every value produced.  Returns the previous setting.
 */
TG_API bool tg_set_anomaly(tg_tape *tape, bool on);

/* ======================================================================== */
/* Checking gradients                                                       */
/* ======================================================================== */

/**
 * A comparison of gradients: "tape" is the tape's gradient, "ref" the other
 * side (finite differences or a hand-derived formula).  The relative error
 * of an element is |tape − ref| / max(|tape|, |ref|, floor) where floor is
 * 1e-3 × the largest |ref| of that tensor: elements much smaller than the
 * tensor's largest are judged against that scale, not against themselves
 * (rounding and finite-difference noise are absolute, so a gradient that
 * should be 0 would otherwise show an arbitrary relative error).  An error
 * in such an element still shows: 1e-6 instead of 2e-6 next to a 1 gives a
 * relative error of 1e-3.  A NaN on either side counts as infinite.
 */
typedef struct tg_check {
    size_t count;              /* elements compared                         */
    size_t skipped;            /* tg_check_fd: elements left out at a kink  */
    double max_abs;            /* max |tape − ref|                          */
    const tg_tensor *abs_t;    /* where it occurs: tensor,                  */
    size_t abs_i;              /*   flat index,                             */
    double abs_tape, abs_ref;  /*   and both values                         */
    double max_rel;            /* max relative error (definition above)     */
    const tg_tensor *rel_t;
    size_t rel_i;
    double rel_tape, rel_ref;
    double max_ref;            /* largest |ref| seen (scale of the gradient) */
} tg_check;

/**
 * Finite-difference check of d loss / d wrt[i] for a scalar loss.  The graph
 * leading to `loss` is copied to a private f64 tape (an f32 graph is
 * promoted), so the caller's values and gradients are untouched.  On that
 * copy the tape's gradient comes from tg_backward and the reference, per
 * element x, from the fourth-order central difference
 *   D(h) = (8(f(x+h) − f(x−h)) − (f(x+2h) − f(x−2h))) / 12h
 * Richardson-extrapolated, (16 D(h/2) − D(h)) / 15 (error O(h⁶)), with each
 * f by replay and h = step·max(1, |x|) rounded to a power of two (step 0
 * means 1e-3).
 *
 * Kinks (relu, and max, abs, clamp made of it): where f has a corner within
 * x ± 2h, the difference quotient is no derivative (relu at 0 gives 0.5).
 * f is also sampled at x and x ± h/4, and a quartic fitted to the 9 samples:
 * a smooth f fits to O(h⁵), a corner leaves a residual of the order of its
 * change of slope.  When that residual exceeds 1e-8 of the element's
 * gradient (at least 1e-3 of the tensor's largest) plus the rounding noise,
 * the element is estimated again with h/4; if that stencil still crosses a
 * kink (one within about h/2 of x), the element is left out of the
 * comparison and counted in out->skipped.  A kink that passes the test
 * costs at most 8e-8 relative error (or a few times the rounding noise
 * every estimate has), so the default step does not fail a correct network
 * with relu.  A smooth loss has nothing skipped unless h⁴·|f⁽⁵⁾| exceeds
 * about 3e-4 of the gradient.
 *
 * wrt[i] must be leaves (params, or inputs/constants: they are differentiated
 * on the copy) that the loss depends on.  n_wrt = 0 (wrt is not read) means
 * every leaf of the tape that requires a gradient and that the loss depends
 * on.  A check of nothing is an error: a wrt[i] that does not reach the
 * loss, n_wrt = 0 with no such leaf, or every element skipped.  Returns 0
 * and fills *out, or -1 with a tape error.
 */
TG_API int tg_check_fd(tg_tensor *loss, int n_wrt, tg_tensor *const *wrt,
                       double step, tg_check *out);

/**
 * Compare a gradient computed elsewhere (e.g. a formula derived by hand) in
 * `ref` — tg_size(t) elements of ref_dtype, same layout as t — with the
 * tape's gradient tg_grad(t) from the last backward.  Returns 0 and fills
 * *out, or -1 with a tape error.
 */
TG_API int tg_check_grad(tg_tensor *t, const void *ref, tg_dtype ref_dtype,
                         tg_check *out);

/** Print one line: label, count (and the count skipped at kinks, when
 *  any), max abs/rel error and where they occur. */
TG_API void tg_check_print(FILE *f, const char *label, const tg_check *c);

/* ======================================================================== */
/* Higher-order derivatives and forward mode                                */
/* ======================================================================== */

/**
 * Gradients recorded on the tape (PyTorch's create_graph): grads[k] =
 * ∂⟨y, grad_output⟩/∂wrt[k], as new op outputs computed from the tape's
 * tensors, so they are replayed with the tape, used in further ops and
 * differentiated again (tg_backward on a loss made of them, or tg_grad_graph
 * once more: grad of grad, gradient penalties, third derivatives by
 * repetition).  grad_output: a tensor of y's shape and dtype (it may itself
 * be differentiated), or NULL for a scalar y (1).  wrt[k]: any float tensors
 * of the tape (leaves or op outputs, requires_grad or not); a wrt[k] that y
 * does not depend on gets a zero constant.  Each op's backward is recorded by
 * its vjp rule (ops/op.h) in the scope "grad" (a cluster of its own in DOT).
 * Every op of ops/ops.def has one whose ops have one in turn, so gradients
 * can be recorded to any order (an op without one would be refused by name).
 * Recording allocates; replaying the tape afterwards does not.  Errors: NULL
 * or dead tensors, another tape, dtypes differing from y's, a non-scalar y
 * without grad_output, recording off, checkpoint segments on the tape.
 * Returns 0, or -1 with grads[] set to NULL.
 */
TG_API int tg_grad_graph(tg_tensor *y, tg_tensor *grad_output, int n, tg_tensor *const *wrt,
                         tg_tensor **grads);

/**
 * Jacobian-vector product, recorded: returns J·u = Σ_k (∂y/∂x[k])·u[k], a
 * tensor of y's shape (forward mode).  u[k] has x[k]'s shape and dtype.
 * Built as the gradient of ⟨Jᵀw, u⟩ with respect to the seed w of a recorded
 * VJP (the "double VJP": no tangent rule per op; the recorded VJP is linear
 * in w, so the result does not depend on w's value).  Costs about three
 * gradients' worth of ops per replay.  NULL with a tape error (as
 * tg_grad_graph, or u not matching x).
 */
TG_API tg_tensor *tg_jvp(tg_tensor *y, int n, tg_tensor *const *x, tg_tensor *const *u);

/**
 * Hessian-vector product, recorded (reverse over reverse): hv[k] =
 * ∂/∂x[k] ⟨∂loss/∂x, v⟩ = (H·v)[k] for a scalar loss, v[k] shaped as x[k]
 * (typically inputs the caller fills before each replay).  Alternatively
 * record g = tg_grad_graph(loss), s = Σ⟨g, v⟩ and call tg_backward(s): the
 * parameters' gradients are then H·v (the benchmark compares both).
 * Returns 0, or -1 with a tape error.
 */
TG_API int tg_hvp(tg_tensor *loss, int n, tg_tensor *const *x, tg_tensor *const *v,
                  tg_tensor **hv);

/**
 * Dense Hessian of a scalar loss with respect to x[0..n): H is N×N row-major
 * (f64), N = Σ tg_size(x[k]), the variables in order (x[0] flat, then x[1]
 * ...).  One recorded HVP, replayed N times with v = e_j (the whole tape up
 * to it each time: meant for up to a few thousand variables); what it records
 * is removed afterwards, so the tape is as before (values of nodes replayed
 * are those of the current leaves).  Returns 0, or -1 with a tape error.
 */
TG_API int tg_hessian(tg_tensor *loss, int n, tg_tensor *const *x, double *H);

/**
 * Dense Jacobian of y (m = tg_size(y) values) with respect to x[0..n): J is
 * m×N row-major (f64), N as tg_hessian; row i is the recorded VJP with seed
 * e_i, replayed m times.  Records nothing that stays.  0 or -1.
 */
TG_API int tg_jacobian(tg_tensor *y, int n, tg_tensor *const *x, double *J);

/**
 * Compare a Hessian derived elsewhere (by hand), H_ref (N×N row-major f64,
 * ordered as tg_hessian), with the tape's: *out as tg_check_grad fills it,
 * the worst elements at a tensor named "H" of shape N×N (abs_i, rel_i: the
 * flat index r·N + c; tg_check_print shows H[r,c]).  0 or -1.
 */
TG_API int tg_check_hessian(tg_tensor *loss, int n, tg_tensor *const *x, const double *H_ref,
                            tg_check *out);

/**
 * Compare a Hessian-vector product derived elsewhere, hv_ref (N values),
 * with the tape's H·v for v (N values, ordered as tg_hessian); the worst
 * elements at a tensor named "Hv" of shape N.  0 or -1.
 */
TG_API int tg_check_hvp(tg_tensor *loss, int n, tg_tensor *const *x, const double *v,
                        const double *hv_ref, tg_check *out);

/**
 * The tape's Hessian against finite differences of its gradient, on an f64
 * copy of the graph (the caller's tape is untouched): column j is the
 * fourth-order central difference of the recorded gradient along variable j,
 * Richardson-extrapolated as tg_check_fd does (h = step·max(1, |x_j|) as a
 * power of two; step 0 means 1e-3).  *out compares the tape's Hessian (tape)
 * with the differences (ref); *asym (may be NULL) receives max|H − Hᵀ| /
 * max|H| of the tape's Hessian.  x[k] must be float leaves; losses with kinks
 * within the stencil are not detected (unlike tg_check_fd).  0 or -1.
 */
TG_API int tg_check_hessian_fd(tg_tensor *loss, int n, tg_tensor *const *x, double step,
                               tg_check *out, double *asym);

/* ======================================================================== */
/* Errors of functions that have no tape                                    */
/* ======================================================================== */

/** Filled with a message by the functions below that take a tg_err *
 *  (which may be NULL when the caller does not want the message). */
typedef struct tg_err {
    char msg[512];
} tg_err;

/* ======================================================================== */
/* Graph inspection: Graphviz DOT                                           */
/* ======================================================================== */

/** What tg_dot_write draws; zero-initialise for the plain forward graph. */
typedef struct tg_dot_opts {
    bool values;       /* value summaries: min/mean/max, or every value of a
                          tensor with at most max_values elements          */
    bool grads;        /* gradient summaries (after a backward)            */
    bool backward;     /* the gradient flow: one dashed edge per gradient
                          contribution, in its own colour                  */
    bool clusters;     /* group nodes by scope (tg_scope_push) as clusters */
    int max_values;    /* 0 means 6                                        */
    const char *title; /* graph label, or NULL                             */
} tg_dot_opts;

/**
 * Write the graph that leads to `root` (or, when root is NULL, the whole
 * `tape`) as a DOT digraph.  The output is deterministic: node ids come from
 * tape positions, never from pointers; every label is escaped.  Leaves and
 * ops are drawn with different shapes; parameters, inputs, constants and the
 * root (the loss) in different colours; an op node shows the op, output
 * shape, dtype and the tensor's name; edges into an op with several inputs
 * are labelled with the input slot.  Returns 0 or -1 (tape error).
 */
TG_API int tg_dot_write(FILE *f, tg_tape *tape, tg_tensor *root, const tg_dot_opts *opts);
/** tg_dot_write to a file, written atomically as tg_save writes (temporary
 *  file, fsync, rename, fsync of the directory), following a symbolic link
 *  and refusing a directory, FIFO or device as tg_save does.  Returns 0 or
 *  -1 (tape error). */
TG_API int tg_dot_save(const char *path, tg_tape *tape, tg_tensor *root, const tg_dot_opts *opts);
/** Whether Graphviz's `dot` program can be run. */
TG_API bool tg_dot_available(void);
/**
 * Render a DOT file with Graphviz's dot: format is "svg" or "png".  Fails
 * with a message saying how to install Graphviz when dot is missing, or with
 * dot's own complaint.  out_path is written as tg_dot_save writes (atomically,
 * following a symbolic link, refusing a directory, FIFO or device).
 * Returns 0 or -1.
 */
TG_API int tg_dot_render(const char *dot_path, const char *format, const char *out_path,
                         tg_err *err);

/* ======================================================================== */
/* Derivation files: checking hand-derived gradients without writing C     */
/* ======================================================================== */

/*
 * A derivation file (extension .deriv; the language is in
 * docs/derivations.md) declares a network's inputs and parameters with their
 * shapes, defines the forward computation in matrix notation, and states
 * hand-derived gradients as `check dL/dW = formula` lines:
 *
 *     input  X[4,4]  T[4,3] in [0,1]
 *     param  W1[4,5] b1[5] W2[5,3] b2[3]
 *     H1 = sigmoid(X W1 + b1)
 *     H2 = sigmoid(H1 W2 + b2)
 *     L  = 1/2 sum((T - H2)^2)
 *     delta2 := (H2 - T) * H2 * (1 - H2)
 *     check dL/dW2 = H1ᵀ delta2
 *
 * tg_deriv_run evaluates the file on several seeded random draws in f64:
 * the forward definitions are recorded on a tape, backward gives every
 * gradient, the `:=` definitions and the checks' right sides are computed
 * from the forward values and the tape's gradients (dL/dH1 may appear in a
 * formula), and each check is compared with the tape's gradient as
 * tg_check_grad compares (the worst draw is kept).  `tapegrad check FILE`
 * is the command-line face.
 */
typedef struct tg_deriv tg_deriv;

/** Options of tg_deriv_run; zero fields take the defaults. */
typedef struct tg_deriv_opts {
    int draws;     /* random draws, 1..1000 (0: 5)                          */
    uint64_t seed; /* draw d uses seed·1000 + d                              */
    double tol;    /* a check agrees when its max relative error <= tol
                      over every draw (0: 1e-8, as the seed programs)       */
} tg_deriv_opts;

/** The result of one check line. */
typedef struct tg_deriv_check {
    int line;             /* its line in the file                          */
    const char *text;     /* the line as written, e.g. "dL/dW2 = H1ᵀ delta2" */
    const char *wrt;      /* the tensor differentiated, e.g. "W2"          */
    bool expect_mismatch; /* the line ends with `expect mismatch`: a formula
                             known to be wrong (the verdict should be
                             MISMATCH)                                     */
    bool agrees;          /* max_rel <= tol on every draw                  */
    tg_check worst;       /* the worst draw's comparison (its tensor
                             pointers are NULL: the draw's tape is gone)  */
    int worst_draw;
    int rank;             /* the gradient's shape                          */
    size_t shape[4];
} tg_deriv_check;

/**
 * Parse a derivation from text (len bytes, NUL bytes refused) or from a
 * file; `name` names it in messages.  Syntax errors, unknown names (with the
 * nearest known one suggested), misplaced gradients and bad declarations are
 * reported in err as "name:line:col: message", then the line and a caret
 * under the column.  NULL on error.
 */
TG_API tg_deriv *tg_deriv_parse(const char *text, size_t len, const char *name, tg_err *err);
TG_API tg_deriv *tg_deriv_load(const char *path, tg_err *err);
/**
 * Evaluate every draw and fill the results (tg_deriv_result).  A shape
 * mismatch names the line, the sub-expression and both shapes; a check
 * whose right side has the wrong shape says the gradient's shape.  Returns
 * 0 (whatever the verdicts), or -1 with the message in err.
 */
TG_API int tg_deriv_run(tg_deriv *d, const tg_deriv_opts *opts, tg_err *err);
/** Number of check lines; the i-th one's result (NULL when out of range). */
TG_API int tg_deriv_checks(const tg_deriv *d);
TG_API const tg_deriv_check *tg_deriv_result(const tg_deriv *d, int i);
/** The worst draw's tape and formula gradients of check i (n elements,
 *  row-major), for showing each element; 0, or -1 when not run. */
TG_API int tg_deriv_worst(const tg_deriv *d, int i, const double **tape, const double **ref,
                          size_t *n);
/** Write the forward graph of draw 0 as DOT (nodes named as in the file)
 *  to path, atomically as tg_dot_save.  0 or -1 (message in err). */
TG_API int tg_deriv_dot(const tg_deriv *d, const char *path, const tg_deriv_opts *opts,
                        tg_err *err);
TG_API void tg_deriv_free(tg_deriv *d);

/* ======================================================================== */
/* Training: optimizers, schedules, clipping                                */
/* ======================================================================== */

typedef struct tg_optim tg_optim;

/*
 * The optimizers, schedules and clipping follow PyTorch exactly (the tests
 * compare with numbers produced by torch 1.13).  Below g is a parameter's
 * gradient (zero when it received none since tg_zero_grad, as after
 * PyTorch's zero_grad(set_to_none=False)), w its value, t the step count
 * starting at 1.  All arithmetic is done in the parameter's dtype; the
 * state has the parameter's dtype and shape.
 */

/**
 * SGD as torch.optim.SGD (dampening 0):
 *   d = g + wd·w
 *   momentum μ > 0:  v = μ·v + d  (v starts at 0, so the first v is d: the
 *                    buffer starts as the first gradient)
 *                    d = v, or with Nesterov d = d + μ·v
 *   w = w − lr·d
 * lr, μ and wd must be finite and >= 0; Nesterov needs μ > 0.
 */
typedef struct tg_sgd_opts {
    double lr;
    double momentum;     /* μ, 0 for plain SGD              */
    double weight_decay; /* wd: L2 added to the gradient    */
    bool nesterov;
} tg_sgd_opts;

/**
 * Adam (Kingma & Ba) with bias correction, as torch.optim.Adam:
 *   g = g + wd·w                      (Adam only)
 *   w = w·(1 − lr·wd)                 (AdamW only: decoupled decay, as
 *                                      torch.optim.AdamW)
 *   m = m + (1 − β1)·(g − m)          (= β1·m + (1 − β1)·g)
 *   v = β2·v + (1 − β2)·g²
 *   w = w − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
 * Zero fields take the defaults; betas must lie in (0, 1), eps > 0,
 * lr and weight_decay finite and >= 0.  tg_adam_new accepts opts = NULL
 * for all defaults.
 */
typedef struct tg_adam_opts {
    double lr;           /* 0 means 1e-3  */
    double beta1, beta2; /* 0 means 0.9, 0.999 */
    double eps;          /* 0 means 1e-8  */
    double weight_decay;
    bool decoupled;      /* AdamW */
} tg_adam_opts;

/**
 * An optimizer over `n` parameters (n = 0 and params = NULL: every leaf of
 * the tape that requires a gradient, now).  Each must be an f32/f64 leaf of
 * `tape` that requires a gradient, listed once.  The state (momentum,
 * moments) is allocated here, so tg_optim_step allocates nothing.  NULL on
 * error (the message is on the tape).
 */
TG_API tg_optim *tg_sgd_new(tg_tape *tape, int n, tg_tensor *const *params, const tg_sgd_opts *opts);
TG_API tg_optim *tg_adam_new(tg_tape *tape, int n, tg_tensor *const *params, const tg_adam_opts *opts);
/** One update of every parameter from its gradient (a parameter without a
 *  gradient since tg_zero_grad counts as zero: momentum, moments and weight
 *  decay still act).  Allocates nothing.  Returns 0 or -1. */
TG_API int tg_optim_step(tg_optim *o);
/** Change the learning rate (e.g. from a schedule).  A negative or
 *  non-finite lr is refused with a tape error and the old one kept. */
TG_API void tg_optim_set_lr(tg_optim *o, double lr);
/** The current learning rate (NaN for NULL). */
TG_API double tg_optim_get_lr(const tg_optim *o);
TG_API void tg_optim_free(tg_optim *o);

/**
 * The optimizer's state as tensors, to save it with tg_save next to the
 * parameters and restore it with tg_load, so that training resumes exactly
 * where it stopped (bit for bit).  The first call moves the state into new
 * TG_INPUT leaves of the optimizer's tape (they need no gradient and are not
 * TG_PARAM, so tg_save/tg_load with n = 0 leave them out): from then on the
 * leaves ARE the state, tg_optim_step updates them in place and a tg_load
 * into them restores it.  Per parameter, in the optimizer's order: SGD with
 * momentum "<prefix>.<name>.momentum"; Adam/AdamW "<prefix>.<name>.adam_m"
 * then "<prefix>.<name>.adam_v" (same dtype and shape as the parameter; an
 * unnamed parameter k is called p<k>); then, last, "<prefix>.steps", f64
 * [1], the steps taken (Adam's t).  prefix NULL or "" means "optim" (at most
 * 64 bytes; later calls return the same tensors and ignore it).  Up to max
 * tensors are stored in out; returns how many there are (max = 0, out =
 * NULL counts them), or -1 on error (tape error).  The learning rate and
 * the other hyper-parameters are not state: set them as when the optimizer
 * was made (and tg_optim_set_lr for a schedule).
 */
TG_API int tg_optim_state(tg_optim *o, const char *prefix, int max, tg_tensor **out);
/** The steps taken so far (Adam's bias-correction t; counted for SGD too),
 *  -1 for NULL. */
TG_API long long tg_optim_steps(const tg_optim *o);
/** Bytes of the optimizer's state: per parameter, of its dtype and size, one
 *  buffer for SGD with momentum (none without), two for Adam/AdamW (m, v);
 *  the same before and after tg_optim_state moved it into leaves of the
 *  tape (tg_tape_get_stats then counts it in leaf_bytes as well).  0 for
 *  NULL. */
TG_API size_t tg_optim_bytes(const tg_optim *o);
/** Set the step counter (0..2^53), e.g. when the moments were restored by
 *  other means.  Returns 0 or -1 (tape error). */
TG_API int tg_optim_set_steps(tg_optim *o, long long steps);
/** Copy the state of the tape's generator (tg_tape_seed; what dropout draws
 *  from) into *rng.  Returns 0, or -1 when tape or rng is NULL. */
TG_API int tg_tape_rng_get(const tg_tape *tape, tg_rng *rng);
/** Restore a state read by tg_tape_rng_get: the random ops then draw what
 *  they would have drawn after it.  An all-zero state is refused (xoshiro
 *  never reaches it).  Returns 0 or -1 (tape error). */
TG_API int tg_tape_rng_set(tg_tape *tape, const tg_rng *rng);

/** Step schedule as StepLR: base · gamma^⌊epoch / step_size⌋
 *  (NaN when epoch < 0 or step_size < 1). */
TG_API double tg_lr_step(double base, long epoch, long step_size, double gamma);
/** Cosine schedule as CosineAnnealingLR (T_max = total) from base (t = 0)
 *  to min_lr (t = total): min_lr + (base − min_lr)·(1 + cos(π·t/total))/2;
 *  t > total gives min_lr; NaN when t < 0 or total < 1. */
TG_API double tg_lr_cosine(double base, double min_lr, long t, long total);

/**
 * Scale the gradients of the n parameters (n = 0: every leaf requiring a
 * gradient) so that their global L2 norm is at most max_norm, as
 * torch.nn.utils.clip_grad_norm_: norm = √(Σ g²) over all of them (summed in
 * f64), and when c = max_norm / (norm + 1e-6) is below 1 (norm > max_norm,
 * up to the 1e-6) every gradient is multiplied by c.  Returns the norm before
 * clipping; when it is NaN or Inf it is returned and nothing is scaled.
 * Returns a negative value on error (max_norm < 0 or NaN, a bad parameter).
 */
TG_API double tg_clip_grad_norm(tg_tape *tape, int n, tg_tensor *const *params, double max_norm);

/* ======================================================================== */
/* Data: IDX files (MNIST format), data sets, mini-batches                  */
/* ======================================================================== */

/** An IDX file in memory (http://yann.lecun.com/exdb/mnist/ format). */
typedef struct tg_idx {
    int type;          /* 0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64 */
    int rank;          /* number of dimensions, 1..8 */
    size_t dims[8];
    size_t count;      /* product of dims */
    void *data;        /* count elements in host byte order */
} tg_idx;

/**
 * Read an IDX file, raw or gzip-compressed (recognised by its content, not
 * its name; .gz needs zlib at build time, see tg_have_zlib).  Fails cleanly
 * on a wrong magic, an unknown type, dimensions whose product overflows or
 * exceeds the file, and a truncated file.  Returns 0 or -1.
 */
TG_API int tg_idx_read(const char *path, tg_idx *out, tg_err *err);
TG_API void tg_idx_free(tg_idx *idx);
/** Whether this build reads .gz files (zlib was found at build time). */
TG_API bool tg_have_zlib(void);

/** A labelled data set: n samples of dim features (f32, row-major).  The
 *  buffers belong to the library: tg_dataset_free releases them.  The
 *  functions below fill err (may be NULL) and return 0 or -1. */
typedef struct tg_dataset {
    size_t n, dim;
    size_t rows, cols; /* image geometry when the samples are images, else 0 */
    float *x;          /* n × dim */
    int32_t *y;        /* n labels in [0, classes) */
    int classes;
} tg_dataset;

/** A zero-filled data set of n samples with dim features and labels in
 *  [0, classes), for data made by the program (fill d->x and d->y). */
TG_API int tg_dataset_new(tg_dataset *d, size_t n, size_t dim, int classes, tg_err *err);
/** Images (u8 IDX, rank 3) scaled to [0, 1] (v / 255) and their labels
 *  (u8 IDX, rank 1): the counts must match; classes = largest label + 1. */
TG_API int tg_dataset_load_idx(const char *images, const char *labels, tg_dataset *out, tg_err *err);
/** x = (x − mean) / std for every feature. */
TG_API int tg_dataset_normalize(tg_dataset *d, double mean, double std, tg_err *err);
/** Resample images to new_rows × new_cols by area averaging (each output
 *  pixel is the mean of the input area it covers, each input pixel weighted
 *  by its exact overlap: 28×28 → 16×16 averages 1.75×1.75 areas, a ratio of
 *  2 gives the plain 2×2 means). */
TG_API int tg_dataset_resize(tg_dataset *d, size_t new_rows, size_t new_cols, tg_err *err);
/** The first n samples (1 <= n <= d->n) as a new data set (a copy; the
 *  geometry and the class count are kept). */
TG_API int tg_dataset_head(const tg_dataset *d, size_t n, tg_dataset *out, tg_err *err);
TG_API void tg_dataset_free(tg_dataset *d);

/** Mini-batches in a shuffled order, reshuffled (seeded) every epoch. */
typedef struct tg_batcher {
    const tg_dataset *data;
    size_t batch, pos;
    size_t *order;
    tg_rng rng;
    bool shuffle, drop_last;
} tg_batcher;

/**
 * Batches of `batch` samples of d (which must outlive the batcher).  With
 * shuffle the order is a Fisher–Yates shuffle drawn from tg_rng seeded with
 * `seed`, redrawn at every epoch: the same seed gives the same epochs.
 * A tape's shapes are fixed, so every batch has `batch` rows; when batch
 * does not divide d->n, an epoch ends with a partial batch of k < batch
 * samples.  drop_last skips it (the usual choice when training with i32
 * labels; shuffled epochs each leave out other samples).  Without drop_last
 * it is padded, and the padding never counts as samples: tg_batcher_next
 * labels it -1, which the ops taking labels refuse, and
 * tg_batcher_next_targets gives it zero targets, so that the loss and its
 * gradient are those of the k real rows.  Returns 0 or -1 (err).
 */
TG_API int tg_batcher_init(tg_batcher *b, const tg_dataset *d, size_t batch, bool shuffle,
                           bool drop_last, uint64_t seed, tg_err *err);
/**
 * Copy the next batch into x ([batch, dim], or any [batch, ...] whose
 * sample has dim elements such as [batch, 1, rows, cols] for a
 * convolutional network; f32 or f64) and labels ([batch], i32).  Returns the number of samples copied, k, or 0 at the end of the
 * epoch (x and labels untouched; the next call starts a new, reshuffled
 * epoch), or -1 on error (wrong shapes or dtypes: the message is on the
 * tensors' tape).  k < batch only for a last partial batch: its rows k..
 * are zero with label -1, so that a loss over them fails ("label -1 at row
 * k is outside [0, c)") instead of training them as class 0; code that
 * evaluates reads the first k rows, and training uses drop_last or
 * tg_batcher_next_targets.
 */
TG_API long tg_batcher_next(tg_batcher *b, tg_tensor *x, tg_tensor *labels);
/**
 * tg_batcher_next with targets [batch, c] (f32 or f64, c >= d->classes) in
 * place of labels: each of the k real rows has 1/k at its sample's class and
 * 0 elsewhere, and the padding rows of a partial batch are all 0.  So
 * tg_softmax_ce_onehot(logits, targets, TG_SUM) is the mean loss of the k
 * real rows whatever k (TG_MEAN would divide by batch once more), its
 * gradient is theirs, and a padding row's gradient is exactly 0: a tape of
 * fixed shape trains on every sample of every epoch.  Returns k, 0 at the
 * end of the epoch, or -1 as tg_batcher_next does, also for a sample whose
 * label is outside [0, c) (nothing is written then).
 */
TG_API long tg_batcher_next_targets(tg_batcher *b, tg_tensor *x, tg_tensor *targets);
TG_API void tg_batcher_free(tg_batcher *b);
/**
 * Data-parallel training: rank `rank`'s share of each global batch.  The
 * batcher is made with the global batch B (tg_batcher_init, drop_last
 * true, the same seed on every rank, so every rank walks the same order);
 * x is [B/size, ...] and labels [B/size] i32, and rank r gets rows
 * [r·B/size, (r+1)·B/size) of the global batch that tg_batcher_next would
 * give.  So size ranks with B/size rows each see exactly the samples of one
 * process with batch B.  Returns B/size, 0 at the end of the epoch (then
 * reshuffled as tg_batcher_next does), or -1: size < 1, rank outside
 * [0, size), B not a multiple of size, a batcher without drop_last, wrong
 * shapes or dtypes (the message is on the tensors' tape).  With size 1 it
 * is tg_batcher_next.
 */
TG_API long tg_batcher_next_shard(tg_batcher *b, tg_tensor *x, tg_tensor *labels, int rank,
                                  int size);

/* ---- Text for the character-level language models ----------------------- */

/** A word list as two token streams (train and validation): each byte of
 *  the file is a token, numbered in byte order.  tg_text_free releases it. */
typedef struct tg_text {
    int vocab;          /* distinct bytes of the words, '\n' included; ids 0..vocab-1 in byte order */
    int byte_of[256];   /* token id -> byte (-1 past vocab) */
    int id_of[256];     /* byte -> token id (-1: not in the file) */
    int32_t *train, *val;  /* token-id streams */
    size_t n_train, n_val;
    size_t words_train, words_val;
} tg_text;

/**
 * Load a word list (one word per line, e.g. /usr/share/dict/american-english
 * from Debian's wamerican) as the token streams of a character-level model:
 *
 *  1. words = the lines (split at '\n'), a trailing '\r' removed, empty
 *     lines dropped, in file order w[0..n-1];
 *  2. shuffled with splitmix64: state = seed; for i = n-1 down to 1:
 *     state += 0x9e3779b97f4a7c15, z = mix(state), j = z mod (i+1),
 *     swap w[i], w[j]; where mix(z) = (z ^= z >> 30, z *= 0xbf58476d1ce4e5b9,
 *     z ^= z >> 27, z *= 0x94d049bb133111eb, z ^ z >> 31), all mod 2^64;
 *  3. the last round(val_fraction · n) words (rounded half up) go to val,
 *     the others to train; each split is the concatenation of its words,
 *     each followed by '\n', as token ids.
 *
 * vocab counts the bytes the words use plus '\n'.  tests/bench/lm_data.py
 * does the same in Python.  Errors (-1, message in err, *t left empty):
 * path or t NULL, a missing, unreadable, empty or non-regular file, a NUL
 * byte (a binary file), val_fraction outside (0, 1), a split shorter than
 * 2 tokens.  *t is overwritten, not freed: tg_text_free a loaded text
 * before loading another into it.
 */
TG_API int tg_text_load(const char *path, double val_fraction, uint64_t seed, tg_text *t, tg_err *err);
/** Release the streams; t becomes empty (NULL is a no-op). */
TG_API void tg_text_free(tg_text *t);
/**
 * Fill x and y (i32 [B,T], distinct tensors) with B random windows of split
 * 0 (train) or 1 (val) of n tokens: row b starts at
 * s = mix(seed + (i + 1) · 0x9e3779b97f4a7c15) mod (n − T) with
 * i = index · B + b (mix as in tg_text_load, all mod 2^64), and
 * x[b,t] = stream[s+t], y[b,t] = stream[s+t+1].  The same (seed, index)
 * always gives the same batch.  Returns 0, or -1 with a message in err
 * (NULL or unloaded text, split not 0/1, x or y NULL, not i32, not rank 2,
 * shapes that differ, n <= T); nothing is written then.
 */
TG_API int tg_text_batch(const tg_text *t, int split, uint64_t seed, uint64_t index,
                         tg_tensor *x, tg_tensor *y, tg_err *err);
/**
 * Validation windows, in order and non-overlapping: row b of batch k is the
 * window w = k·B + b starting at w·T (x[b,t] = stream[w·T+t], y[b,t] =
 * stream[w·T+t+1]) when it is full (w·T + T < n).  Returns the number of
 * full rows filled (they come first; 0 once the stream is exhausted); the
 * other rows are set to token 0 and must not be counted: evaluating all the
 * windows means reading the first rows of each batch k = 0, 1, ... until 0
 * is returned.  -1 on the errors of tg_text_batch (but n <= T just gives 0).
 */
TG_API int tg_text_window_batch(const tg_text *t, int split, size_t k, tg_tensor *x, tg_tensor *y,
                                tg_err *err);

/* ======================================================================== */
/* Distributed training: data parallelism over MPI                          */
/* ======================================================================== */

/*
 * Data parallelism as PyTorch DDP or Horovod do it: every rank (process)
 * holds the whole model, trains on its share of each global batch
 * (tg_batcher_next_shard) and averages the gradients with the others after
 * backward (tg_mpi_allreduce_grads), so all ranks take the same step.  Run
 * the program under mpirun (`mpirun -np 4 prog`).  A loop:
 *
 *   tg_mpi_init(&err);  r = tg_mpi_rank();  n = tg_mpi_size();
 *   build the model with batch B/n;  tg_mpi_broadcast(tape, np, params);
 *   while ((k = tg_batcher_next_shard(&b, x, y, r, n)) > 0) {
 *       tg_zero_grad(tape); tg_replay(tape); tg_backward(loss);
 *       tg_mpi_allreduce_grads(tape, np, params); tg_optim_step(opt);
 *   }
 *   tg_mpi_finalize();
 *
 * The result matches one process with batch B to rounding: the mean of the
 * ranks' mean losses is the mean over B, but the per-rank sums are added in
 * another order than one GEMM over B rows adds them, so f32 gradients agree
 * to about 1e-7 relative (tests/test_mpi.c checks 1e-6), not bit for bit.
 * The ranks stay bit-identical among themselves.  The library must be built
 * with MPI (meson option mpi, on by default when an MPI is found;
 * tg_have_mpi); without it tg_mpi_init, tg_mpi_broadcast,
 * tg_mpi_allreduce_grads and tg_mpi_sum fail with a message that says
 * "built without MPI", while tg_mpi_rank and tg_mpi_size answer 0 and 1.
 * Only the thread that called tg_mpi_init may call these.
 */

/** Whether the library was built with MPI. */
TG_API bool tg_have_mpi(void);
/** Initialise MPI (MPI_Init_thread, FUNNELED; nothing when this program
 *  already did) and make MPI errors return instead of aborting.  Returns 0,
 *  or -1 with the message in err (built without MPI, MPI failed). */
TG_API int tg_mpi_init(tg_err *err);
/** This process's rank, 0..size-1 (0 before tg_mpi_init and without MPI). */
TG_API int tg_mpi_rank(void);
/** The number of ranks (1 before tg_mpi_init and without MPI). */
TG_API int tg_mpi_size(void);
/**
 * Copy the n tensors (n = 0: every leaf of the tape that requires a
 * gradient, in tape order) from rank 0 to every rank, e.g. the parameters
 * at the start so that all ranks start alike.  Every rank must call it with
 * the same list (f32/f64 leaves of the same shapes).  Returns 0 or -1 (tape
 * error: not initialised, built without MPI, a bad list, MPI failed).
 */
TG_API int tg_mpi_broadcast(tg_tape *tape, int n, tg_tensor *const *tensors);
/**
 * Replace the gradient of each of the n parameters (n = 0: every leaf that
 * requires a gradient) by its mean over the ranks: packed (f32 and f64
 * apart, in list order) into buckets of up to 4 MiB, each summed with
 * MPI_Iallreduce as soon as it is full while the next is packed, then
 * scaled by 1/size.  A parameter without a gradient since tg_zero_grad
 * counts as zeros.  Call it after tg_backward and before tg_optim_step, on
 * every rank with the same list.  Allocates two 4 MiB buffers on the first
 * call (freed by tg_mpi_finalize), nothing after.  Returns 0 or -1 (tape
 * error, as tg_mpi_broadcast).
 */
TG_API int tg_mpi_allreduce_grads(tg_tape *tape, int n, tg_tensor *const *params);
/** Sum n doubles over the ranks, in place (e.g. the losses to report).
 *  Returns 0 or -1 (err). */
TG_API int tg_mpi_sum(double *values, int n, tg_err *err);
/** End every rank of the job at once with this status (MPI_Abort): what a
 *  rank that fails must do, since the others would wait for it.  No-op
 *  when MPI is not initialised. */
TG_API void tg_mpi_abort(int status);
/** Free the buffers and finalize MPI (when initialised; no-op otherwise). */
TG_API void tg_mpi_finalize(void);

/* ======================================================================== */
/* Saving and loading parameters                                            */
/* ======================================================================== */

/**
 * Save n named tensors (n = 0: every TG_PARAM leaf of the tape) to `path`
 * in the versioned binary format of docs/format.md.  The file is written to
 * a temporary file in the same directory (mkstemp), fsync'ed and renamed
 * over `path`, and the directory is fsync'ed, so a crash never leaves a
 * half-written file and never loses the old one; on failure the temporary
 * file is removed and the old file is untouched.  A replaced file keeps its
 * permission bits, a new one gets 0666 minus the umask (0644 where the umask
 * cannot be read).  A symbolic link is followed (models/latest.tgm ->
 * v3.tgm replaces v3.tgm, in v3.tgm's directory, and latest.tgm stays a
 * link; a dangling link's file is created).  A path that is, or links to,
 * anything but a regular file (a directory, FIFO, device such as /dev/null,
 * socket) is refused before anything is written: "save: /dev/null: is a
 * character device, not a regular file; refusing to replace it".  Every
 * tensor needs a unique name (valid UTF-8, at most 4096 bytes).  Returns 0
 * or -1 (tape error).
 */
TG_API int tg_save(tg_tape *tape, const char *path, int n, tg_tensor *const *tensors);
/**
 * Load tensors saved by tg_save into the n named tensors (n = 0: every
 * TG_PARAM leaf) matched by name.  Everything is verified first (magic,
 * version, size, checksum, every record, then for each tensor: found once
 * by name, same dtype, same shape); on any problem nothing is changed and a
 * message names it, e.g. "tensor 'W2': file has shape 512x10, network has
 * 512x12".  With n = 0 the file must hold exactly the tape's parameters (a
 * tensor in the file that the tape lacks is an error: a different network);
 * with an explicit list, other tensors in the file are ignored, so part of
 * a model can be loaded.  Returns 0 or -1 (tape error).
 */
TG_API int tg_load(tg_tape *tape, const char *path, int n, tg_tensor *const *tensors);

/** One tensor record of a saved file, as tg_file_read lists it. */
typedef struct tg_file_tensor {
    const char *name;          /* NUL-terminated UTF-8                     */
    tg_dtype dtype;
    int rank;                  /* 0 (a scalar) .. TG_MAX_RANK              */
    size_t shape[TG_MAX_RANK]; /* the first rank entries                   */
    size_t size;               /* elements (1 for a scalar)                */
    const void *data;          /* size values of dtype, in host byte order */
} tg_file_tensor;

/** A saved file's header and records, read without a tape. */
typedef struct tg_file_info {
    unsigned version;          /* format version                           */
    uint64_t size;             /* bytes, checksum included                 */
    uint32_t checksum_stored;  /* the CRC-32C at the end of the file       */
    uint32_t checksum_computed;/* the CRC-32C of the bytes before it       */
    bool checksum_ok;          /* the two agree                            */
    size_t n;                  /* records                                  */
    tg_file_tensor *tensors;   /* n records in file order                  */
    void *mem_;                /* private: released by tg_file_free        */
} tg_file_info;

/**
 * List the tensors of a file written by tg_save (docs/format.md) without a
 * tape: the header, the checksum and every record are checked as tg_load
 * checks them, and the names, shapes and values (decoded to host order) are
 * put in *info, which tg_file_free releases.  With any_checksum false a
 * checksum mismatch is an error, as in tg_load; with any_checksum true the
 * records of a file whose checksum does not match are still listed (every
 * bound is still checked) and info->checksum_ok says false, so a tool can
 * show what a damaged file holds.  Returns 0, or -1 with the reason in err
 * (which may be NULL) and *info empty: path NULL or empty, info NULL, the
 * file missing or not a regular file, wrong magic, a newer or invalid
 * version, truncated, trailing data, checksum mismatch (any_checksum
 * false), a corrupt record, out of memory; e.g. "file_read: m.tgm:
 * truncated: the header says 512 bytes but the file has 300".
 */
TG_API int tg_file_read(const char *path, bool any_checksum, tg_file_info *info, tg_err *err);
/** Release what tg_file_read put in *info and empty it (NULL is allowed). */
TG_API void tg_file_free(tg_file_info *info);

/* ======================================================================== */
/* Performance: threads and CPU-specific kernels                            */
/* ======================================================================== */

/**
 * Number of threads GEMM and large elementwise ops may use (>= 1).  The
 * default is the environment variable TAPEGRAD_THREADS when set, else the
 * number of online CPUs.  Results are bit-identical for every count (work is
 * split so that no reduction changes order).  Returns 0, or -1 when n < 1.
 */
TG_API int tg_set_threads(int n);
/** The current thread count. */
TG_API int tg_get_threads(void);

/**
 * Thread-pool profile: where a parallel program spends its time, per
 * thread.  tg_thread_profile(true) zeroes the figures and starts adding them
 * up (two clock reads per piece of work); false stops.  Returns the previous
 * setting.  The figures are for the whole process.
 */
TG_API bool tg_thread_profile(bool on);

/** One thread's figures; index 0 is the calling thread, i >= 1 worker i. */
typedef struct tg_thread_stat {
    double work_s;   /* seconds spent running pieces of parallel jobs        */
    double wake_s;   /* workers: seconds from a job's start to their first
                        piece, summed over the jobs they took part in       */
    uint64_t pieces; /* pieces run                                          */
    uint64_t stolen; /* of these, pieces of another thread's run            */
    uint64_t jobs;   /* parallel jobs it ran at least one piece of          */
} tg_thread_stat;

/** The pool's figures. */
typedef struct tg_pool_stat {
    uint64_t jobs;        /* jobs split over the pool                       */
    double job_s;         /* seconds from their start to their end (caller) */
    double wait_s;        /* of which the caller waited for the last pieces */
    uint64_t inline_jobs; /* tg_parallel_for calls run by the caller alone
                             (too small, one thread, pool busy)             */
    double inline_s;      /* seconds they took                              */
} tg_pool_stat;

/**
 * Copy the figures of up to max threads into out[] and the pool's into
 * *pool (either may be NULL).  Returns the thread count (tg_get_threads()).
 * Time a program spends outside both job kinds runs on one thread.
 */
TG_API int tg_thread_stats(tg_thread_stat *out, int max, tg_pool_stat *pool);

/**
 * Kernel paths, picked at run time for the CPU: "avx512", "avx2" (AVX2+FMA)
 * and "generic" (portable C, any machine).  The default is the best one the
 * CPU supports, or the environment variable TAPEGRAD_ISA when set.
 * tg_set_isa(NULL) restores the best.  Returns 0, or -1 when the name is
 * unknown or the CPU cannot run it.  A TAPEGRAD_ISA that names no path, or
 * one this CPU cannot run, is ignored and the best path is used; the library
 * prints nothing (tg_isa() names the path in use; the tapegrad command warns).
 */
TG_API int tg_set_isa(const char *name);
/** The active kernel path's name. */
TG_API const char *tg_isa(void);
/** Whether this CPU can run the kernel path `name`. */
TG_API bool tg_isa_supported(const char *name);

/* ======================================================================== */
/* Diagnostics and test control                                             */
/* ======================================================================== */

/** What tg_test_control does; see there. */
typedef enum tg_test_ctl {
    TG_TEST_ALLOC_COUNT = 1, /* count the heap allocations made so far */
    TG_TEST_FAIL_ALLOC = 2   /* make a coming heap allocation fail     */
} tg_test_ctl;

/**
 * The one entry point for tests of the library, and for programs that want
 * to prove that a loop allocates nothing (TG_TEST_ALLOC_COUNT before and
 * after it).  Every heap allocation of the library goes through one place,
 * which this observes and controls for the whole process (all threads):
 *  - TG_TEST_ALLOC_COUNT: returns the number of successful heap allocations
 *    the library has made in this process; arg is ignored.
 *  - TG_TEST_FAIL_ALLOC: make the arg-th heap allocation from now on fail
 *    (arg = 0: the next one), once; arg < 0 switches this off.  Returns the
 *    previous setting: -1 when it was off or its failure has happened, else
 *    the number of allocations that were still to go before it.
 * Any other `what` changes nothing and returns INT64_MIN.
 */
TG_API int64_t tg_test_control(tg_test_ctl what, int64_t arg);

#ifdef __cplusplus
}
#endif
#endif /* TAPEGRAD_H */
