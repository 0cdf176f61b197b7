/* The core layer (src/core/): tensors, nodes, the tape, errors, recording,
 * the backward walk, broadcasting.  It uses libc only; every other layer
 * (kernels, ops, io, train) may use it.  Not installed.  The layers are in
 * docs/architecture.md. */
#ifndef TG_CORE_H
#define TG_CORE_H

#include "tapegrad.h"

#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#define TG_MAX_IN 5    /* inputs of one op (batch_norm has five)         */
#define TG_ALIGN 64    /* alignment of every data buffer (one cache line) */
#define TG_MAX_SCOPE 8 /* nesting depth of tg_scope_push                 */

/* ---- allocation (src/core/alloc.c): every heap allocation goes through here --- */
void *tg_malloc(size_t bytes);
void *tg_realloc(void *p, size_t bytes);
void tg_free(void *p);
void *tg_aligned_alloc(size_t bytes); /* TG_ALIGN-aligned, free with tg_free_aligned */
void tg_free_aligned(void *p);

/* ---- arena (src/core/arena.c): bump allocation in chunks kept across resets ---- */
typedef struct tg_chunk tg_chunk;
typedef struct tg_arena {
    tg_chunk *first, *cur;
    size_t in_use;        /* bytes handed out since the last reset      */
    size_t chunks;        /* number of chunks owned                     */
    size_t last_cap;      /* capacity of the newest chunk (for growth)  */
} tg_arena;
typedef struct tg_arena_mark {
    tg_chunk *cur;
    size_t used, in_use;
} tg_arena_mark;

void *tg_arena_alloc(tg_arena *a, size_t bytes); /* 64-aligned if >= 64 B, else 16; NULL if OOM */
char *tg_arena_strdup(tg_arena *a, const char *s);
void tg_arena_reset(tg_arena *a);                /* keep the chunks             */
void tg_arena_free(tg_arena *a);
tg_arena_mark tg_arena_get_mark(const tg_arena *a);
void tg_arena_rewind(tg_arena *a, tg_arena_mark m);
/* AddressSanitizer builds: whether blocks are poisoned at all; mark all of
 * an arena's chunks unaddressable, or one block addressable again (the
 * checkpoint pools, which segments share, use these: no-ops otherwise). */
bool tg_arena_poisons(void);
void tg_arena_poison_all(tg_arena *a);
void tg_arena_unpoison(void *p, size_t bytes);

/* ---- tensors, nodes, ops ---------------------------------------------- */
typedef struct tg_node tg_node;

struct tg_tensor {
    tg_tape *tape;
    tg_node *node;      /* producer; NULL for a leaf or a no-grad output */
    void *data;
    void *grad;         /* NULL until first needed                       */
    const char *name;
    size_t size;        /* element count                                 */
    size_t shape[TG_MAX_RANK];
    uint64_t grad_gen;  /* grad holds a value iff == tg_cur_gen(t)       */
    uint64_t version;   /* tape->gen at the last write through the API   */
    uint32_t epoch;     /* temp tensors: tape->epoch when made           */
    tg_tensor *aux;     /* scratch link for whole-graph algorithms       */
    uint8_t dtype, rank, kind;
    uint8_t requires_grad; /* leaves: take part in backward               */
    uint8_t live;          /* a gradient can flow into it (see tape.c)    */
    uint8_t temp;          /* lives in the graph arena (dropped by clear) */
    uint8_t pooled;        /* an intermediate of a checkpoint segment: data
                              (and grad) in the segment pools, valid only
                              while its segment runs (src/core/checkpoint.c) */
};

/* Bytes an op's attribute struct may take in the node (see ops/op.h). */
#define TG_ATTR_BYTES 64

/*
 * An op (one per entry of ops/ops.def; the contract of these functions is
 * written down in ops/op.h):
 *   setup      checks inputs and attributes; sets the output's dtype, rank
 *              and shape (and scratch_bytes, view).  Runs once, at record.
 *   forward    computes the output from the inputs; also on every replay,
 *              so it never allocates.
 *   backward   adds the output's gradient, through the op, into the
 *              gradients of the inputs that are live.
 *   grad_reads the inputs whose values backward reads (bit i: input i);
 *              backward refuses when one of them was written after the
 *              node's forward (a gradient from a mix of two states).
 *   attr_size  bytes of the op's attribute struct (0: none).
 *   attr_str   writes the attributes as "name=value ..." (for DOT labels);
 *              NULL when attr_size is 0.
 *   vjp        the backward written with tg_ ops, recorded on the tape
 *              (tg_grad_graph): see ops/op.h.  NULL: the op's gradient can
 *              be computed (backward) but not recorded.
 */
typedef struct tg_op {
    const char *name;
    uint8_t grad_reads;
    size_t attr_size;
    int (*setup)(tg_node *n);
    int (*forward)(tg_node *n);
    void (*backward)(tg_node *n);
    void (*attr_str)(const tg_node *n, char *buf, size_t len);
    int (*vjp)(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx);
} tg_op;

struct tg_node {
    const tg_op *op;
    tg_tensor *in[TG_MAX_IN];
    tg_tensor out;
    union {                 /* the op's attribute struct (ATTR in op.h) */
        unsigned char bytes[TG_ATTR_BYTES];
        max_align_t align;
    } attr;
    void *scratch;        /* op-owned memory sized by setup               */
    size_t scratch_bytes;
    const char *scope;    /* interned scope string or NULL                */
    size_t index;         /* position on the tape (SIZE_MAX: not recorded) */
    uint64_t fwd_gen;     /* tape->gen when forward last ran               */
    uint8_t n_in;
    uint8_t view;         /* setup: output shares input 0's data           */
    uint8_t reached;      /* scratch of backward's check pass              */
    uint8_t recorded_grad; /* recorded by tg_grad_graph (DOT styles it)    */
    uint32_t seg;         /* checkpoint segment (1-based), 0: none          */
};

/* A checkpoint segment: nodes [begin, end) of the tape. */
typedef struct tg_segment {
    size_t begin, end;
} tg_segment;

struct tg_tape {
    tg_arena leaf_arena;  /* leaves, their data and grads, interned scopes */
    tg_arena graph_arena; /* nodes, outputs, scratch, intermediate grads   */
    tg_arena graph_spare; /* debug builds: the graph before the last clear */
    uint32_t epoch;       /* tg_tape_clear calls so far                    */
    tg_tensor **leaves;
    size_t n_leaves, cap_leaves;
    tg_node **nodes;
    size_t n_nodes, cap_nodes;
    uint64_t gen;         /* monotonic counter for the two below           */
    uint64_t leaf_gen;    /* bumped by tg_zero_grad                        */
    uint64_t pass_gen;    /* bumped by each backward pass                  */
    bool grad_enabled;
    bool live_dirty;      /* requires_grad changed after recording         */
    size_t grads_ready;   /* nodes [0, grads_ready) have gradient buffers  */
    bool share_grads;     /* tg_set_keep_grads(false): op outputs share
                             gradient buffers (backward.c, plan_shared)    */
    size_t shared_for;    /* the node count the sharing was planned for, 0:
                             not planned                                   */
    bool anomaly;         /* check every produced value for NaN/Inf        */
    bool training;        /* tg_set_training: dropout, batch_norm obey it  */
    bool random_frozen;   /* check_fd's copy: random ops keep their draws  */
    tg_rng rng;           /* tg_tape_seed: the random ops' generator       */
    bool has_err;
    int scope_depth;
    const char *scope;    /* current interned scope string or NULL         */
    const char *scope_stack[TG_MAX_SCOPE];
    const char **scopes;  /* interned scope strings                        */
    size_t n_scopes, cap_scopes;
    char err[512];
    size_t stale_at;      /* the node a replay failed at, SIZE_MAX if none */
    /* activation checkpointing (src/core/checkpoint.c) */
    tg_arena seg_data;    /* the open/running segment's intermediate values */
    tg_arena seg_grad;    /* their gradients                               */
    tg_segment *segs;     /* ended segments, in tape order                 */
    size_t n_segs, cap_segs;
    bool seg_open;        /* between tg_checkpoint_begin and _end: segment
                             n_segs + 1 is being recorded                  */
    bool recomputing;     /* backward is running a segment's forward again */
    uint32_t pool_holds;  /* the segment whose values the pool holds, 0: none */
    size_t pool_peak, pool_grad_peak; /* bytes, the largest segment so far */
    char query_err[256];  /* the last failed query (tg_query_error)        */
};

/* ---- errors and messages (src/core/msg.c: the lowest layer) ------------ */
/* Keep the first error on the tape; always returns TG_ERR. */
int tg_error(tg_tape *tape, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* tg_error prefixed with "opname: " (and the node position when recorded). */
int tg_fail(tg_node *n, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* A shape as text by value: usable twice in one printf (C11 6.2.4p8). */
typedef struct tg_shp { char s[64]; } tg_shp;
tg_shp tg_shp_of(const tg_tensor *t);
/* How messages name a tensor: its name, else its op's name (tg_op_name). */
const char *tg_label(const tg_tensor *t);

/* ---- anomaly mode (src/core/anomaly.c) ------------------------------------ */
/* With tape->anomaly on: fail (tape error naming the op, its position and
 * the tensors) if node n's output (forward) or the gradient it sent into
 * its live inputs (backward) holds a NaN or Inf. */
int tg_anomaly_forward(tg_node *n);
int tg_anomaly_backward(tg_node *n);

/* A write into t's values through the API (tg_set, tg_copy_in, an init, an
 * optimizer step, tg_load): refused for an op's output (only leaves hold
 * values of their own), else t's version moves past every forward so far.
 * fn names the caller in the message. */
int tg_write_leaf(tg_tensor *t, const char *fn);

/* Debug builds (NDEBUG not defined): TG_ERR, with the tape's error naming
 * fn, when t is an op's output (or a tg_scalar) from before the last
 * tg_tape_clear.  tg_tape_clear keeps the graph it drops intact until the
 * next clear there, so such a tensor is recognised instead of aliasing a new
 * one (two clears back its memory is reused: not caught).  Release builds:
 * always TG_OK, at no cost. */
int tg_check_alive(const tg_tensor *t, const char *fn);

/* A query (tg_item, tg_data_f32 ...) that failed: the message goes to
 * tg_query_error, never to the tape's first error. */
void tg_query_fail(tg_tape *tape, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- recording (src/core/tape.c) ------------------------------------------- */
/* Record node op(in[0..n_in)) with a copy of op->attr_size bytes of attr
 * (NULL when the op has none): setup, allocate, forward.  Returns the output,
 * or NULL with the tape's error set (an input NULL: NULL, error unchanged). */
tg_tensor *tg_record(const tg_op *op, int n_in, tg_tensor *const *in, const void *attr);

/* ---- second order (src/core/check.c, for src/core/higher.c) ------------ */
/* A new f64 tape holding a copy of y's graph (nodes up to y's; y must be an
 * op output), *yc the copy of y and xc[k] those of the leaves x[k]; random
 * ops keep their draws.  NULL with the error on y's tape. */
tg_tape *tg_clone_f64(tg_tensor *y, int n, tg_tensor *const *x, tg_tensor **yc,
                      tg_tensor **xc);
/* tg_check's comparison: start, and fold n values of tensor t in. */
void tg_check_begin(tg_check *c);
void tg_check_fold(tg_check *c, const tg_tensor *t, const double *tape, const double *ref,
                   size_t n);

/* ---- for the ops' vjp rules (src/core/grad_graph.c) -------------------- */
/* g (broadcast from like's shape) summed back to like's shape; g itself when
 * the shapes are equal.  NULL propagates. */
tg_tensor *tg_sum_to(tg_tensor *g, const tg_tensor *like);
/* g broadcast to like's shape (g's shape must broadcast to it). */
tg_tensor *tg_expand_to(tg_tensor *g, const tg_tensor *like);
/* A constant of like's shape and dtype, every element v, dropped with the
 * graph (tg_tape_clear) like tg_scalar. */
tg_tensor *tg_const_like(const tg_tensor *like, double v);
/* Element count of a shape into *size: TG_OK, or TG_ERR (and no write) if it
 * overflows or a size is 0. */
int tg_shape_size(int rank, const size_t *shape, size_t *size);
tg_tensor *tg_leaf_new(tg_tape *tape, tg_kind kind, const char *name,
                       tg_dtype dtype, int rank, const size_t *shape,
                       tg_arena *arena);

/* The tape's copy of scope string s (kept for the tape's lifetime). */
const char *tg_intern_scope(tg_tape *tape, const char *s);

/* A random op's key for this forward of node n, stored in *key: a fresh
 * 64-bit draw from the tape's generator (tg_tape_seed), except on a tape
 * whose draws are frozen (tg_check_fd's f64 copy), where *key keeps the
 * value drawn at record time so that every evaluation sees the same mask.
 * Element i's random bits are then tg_rng_hash(key, i): independent of
 * the thread count and of the order elements are visited in. */
void tg_random_key(tg_node *n, uint64_t *key);
static inline uint64_t tg_rng_hash(uint64_t key, uint64_t i)
{
    uint64_t z = key + (i + 1) * 0x9e3779b97f4a7c15u; /* splitmix64 of key + i */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* ---- activation checkpointing (src/core/checkpoint.c) --------------------- */
/* Forward segment seg's nodes again (those whose values were dropped),
 * before backward enters the segment, unless the pool holds them already
 * (tape->pool_holds): random ops keep their keys
 * and ops with side effects (batch_norm's running statistics) skip them
 * (tg_recomputing).  Allocates nothing. */
int tg_checkpoint_recompute(tg_tape *tape, uint32_t seg);
/* Segment seg is about to run (a replay reaches its first node, or a
 * recomputation): under AddressSanitizer the pools become unaddressable
 * except for seg's own values and gradients, so a stray access to another
 * segment's dropped tensor is reported.  No-op in other builds. */
void tg_checkpoint_enter(tg_tape *tape, uint32_t seg);
/* Whether n's forward is a checkpoint recomputation: it must reproduce the
 * values of its first run (same mode, same random key, no side effects). */
static inline bool tg_recomputing(const tg_node *n) { return n->out.tape->recomputing; }
/* Whether t's value was dropped by an ended checkpoint segment. */
static inline bool tg_dropped(const tg_tensor *t)
{
    return t->pooled && !(t->tape->seg_open && t->node &&
                          t->node->seg == t->tape->n_segs + 1);
}

/* ---- setup helpers (src/core/tape.c) --------------------------------------- */
int tg_need_float(tg_node *n, int i);       /* input i is f32/f64          */
int tg_need_i32(tg_node *n, int i);         /* input i is i32              */
int tg_need_same_dtype(tg_node *n, int i, int j);
int tg_need_rank(tg_node *n, int i, int rank);
void tg_out_like(tg_node *n, int i);        /* output: dtype/shape of input i */
void tg_out_scalar(tg_node *n, int dtype);

/* ---- gradients (src/core/backward.c) --------------------------------------- */
static inline uint64_t tg_cur_gen(const tg_tensor *t)
{
    return t->node ? t->tape->pass_gen : t->tape->leaf_gen;
}
/* Whether backward should send a gradient into t. */
static inline bool tg_wants_grad(const tg_tensor *t) { return t->live; }
/* The gradient buffer of t for this pass.  *acc = 1: it already holds
 * contributions, add to it; *acc = 0: first contribution, overwrite it. */
void *tg_grad_acc(tg_tensor *t, int *acc);
/* The gradient buffer of t, zeroed first if it held nothing yet. */
void *tg_grad_sum(tg_tensor *t);
/* Ensure t->grad exists (allocated in the arena that owns t). */
int tg_grad_alloc(tg_tensor *t);

/* ---- broadcasting (src/core/broadcast.c) ------------------------------ */
typedef struct tg_bcast {
    size_t dim[TG_MAX_RANK];     /* output sizes, left-padded to 4 axes   */
    size_t sa[TG_MAX_RANK];      /* element strides of a (0: broadcast)   */
    size_t sb[TG_MAX_RANK];      /* element strides of b                  */
    bool same;                   /* a, b and the output have one shape    */
} tg_bcast;
/* Output rank/shape of broadcasting a with b; -1 if incompatible. */
int tg_bcast_shape(const tg_tensor *a, const tg_tensor *b, int *rank,
                   size_t *shape);
void tg_bcast_plan(const tg_tensor *a, const tg_tensor *b, tg_bcast *p);

#endif
