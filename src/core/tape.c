/* The tape: creation, errors, scopes, and recording of op nodes. */
#include "core.h"

#include <stdio.h>

tg_tape *tg_tape_new(void)
{
    tg_tape *t = tg_malloc(sizeof *t);
    if (!t)
        return NULL;
    memset(t, 0, sizeof *t);
    t->grad_enabled = true;
    t->gen = 1;
    t->leaf_gen = 1;
    t->pass_gen = 1; /* grad_gen 0 ("holds nothing") never matches */
    t->stale_at = SIZE_MAX;
    t->training = true;
    tg_rng_seed(&t->rng, 0);
    return t;
}

bool tg_set_training(tg_tape *tape, bool training)
{
    if (!tape)
        return false;
    bool old = tape->training;
    tape->training = training;
    return old;
}

bool tg_training(const tg_tape *tape) { return tape && tape->training; }

void tg_tape_seed(tg_tape *tape, uint64_t seed)
{
    if (tape)
        tg_rng_seed(&tape->rng, seed);
}

void tg_random_key(tg_node *n, uint64_t *key)
{
    tg_tape *tape = n->out.tape;
    if (!tape->random_frozen || n->fwd_gen == 0)
        *key = tg_rng_next(&tape->rng);
}

void tg_tape_free(tg_tape *tape)
{
    if (!tape)
        return;
    tg_arena_free(&tape->graph_arena);
    tg_arena_free(&tape->graph_spare);
    tg_arena_free(&tape->leaf_arena);
    tg_arena_free(&tape->seg_data);
    tg_arena_free(&tape->seg_grad);
    tg_free(tape->segs);
    tg_free(tape->leaves);
    tg_free(tape->nodes);
    tg_free(tape->scopes);
    tg_free(tape);
}

void tg_tape_clear(tg_tape *tape)
{
    if (!tape)
        return;
    tape->n_nodes = 0;
    tape->grads_ready = 0;
    tape->shared_for = 0;
    tape->epoch++;
#ifndef NDEBUG
    /* Debug builds: keep the graph just dropped intact until the next clear,
     * building on the one before it, so that a tensor kept from it is caught
     * by tg_check_alive rather than aliasing a new tensor at its address. */
    tg_arena dropped = tape->graph_arena;
    tape->graph_arena = tape->graph_spare;
    tape->graph_spare = dropped;
#endif
    tg_arena_reset(&tape->graph_arena);
    tg_arena_reset(&tape->seg_data);
    tg_arena_reset(&tape->seg_grad);
    tape->n_segs = 0;
    tape->seg_open = false;
    tape->pool_holds = 0;
    tape->live_dirty = false;
    tape->stale_at = SIZE_MAX; /* the nodes a replay failed on are gone */
}

/* ---- simple queries ------------------------------------------------------ */

size_t tg_tape_nodes(const tg_tape *tape) { return tape ? tape->n_nodes : 0; }
size_t tg_tape_leaves(const tg_tape *tape) { return tape ? tape->n_leaves : 0; }

tg_tensor *tg_tape_leaf(const tg_tape *tape, size_t i)
{
    return tape && i < tape->n_leaves ? tape->leaves[i] : NULL;
}

tg_tensor *tg_tape_node_output(const tg_tape *tape, size_t i)
{
    return tape && i < tape->n_nodes ? &tape->nodes[i]->out : NULL;
}

tg_tensor *tg_tape_find(const tg_tape *tape, const char *name)
{
    if (!tape || !name)
        return NULL;
    for (size_t i = 0; i < tape->n_leaves; i++)
        if (tape->leaves[i]->name && !strcmp(tape->leaves[i]->name, name))
            return tape->leaves[i];
    return NULL;
}

void tg_tape_get_stats(const tg_tape *tape, tg_tape_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!tape)
        return;
    out->nodes = tape->n_nodes;
    out->leaves = tape->n_leaves;
    out->graph_bytes = tape->graph_arena.in_use;
    out->graph_chunks = tape->graph_arena.chunks;
    out->leaf_bytes = tape->leaf_arena.in_use;
    out->checkpoint_bytes = tape->pool_peak + tape->pool_grad_peak;
    out->segments = tape->n_segs;
}

bool tg_set_grad_enabled(tg_tape *tape, bool enabled)
{
    if (!tape)
        return false;
    bool old = tape->grad_enabled;
    tape->grad_enabled = enabled;
    return old;
}

bool tg_set_keep_grads(tg_tape *tape, bool keep)
{
    if (!tape)
        return false;
    bool old = !tape->share_grads;
    if (old != keep) { /* op outputs get their buffers again, planned or their own */
        for (size_t i = 0; i < tape->n_nodes; i++)
            if (!tape->nodes[i]->out.pooled)
                tape->nodes[i]->out.grad = NULL;
        tape->grads_ready = 0;
        tape->shared_for = 0;
    }
    tape->share_grads = !keep;
    return old;
}

/* ---- scopes: interned strings in the leaf arena, so they survive clears
 * and a loop that pushes the same scope every step allocates nothing. --- */

const char *tg_intern_scope(tg_tape *tape, const char *s)
{
    for (size_t i = 0; i < tape->n_scopes; i++)
        if (!strcmp(tape->scopes[i], s))
            return tape->scopes[i];
    if (tape->n_scopes == tape->cap_scopes) {
        size_t cap = tape->cap_scopes ? tape->cap_scopes * 2 : 8;
        const char **p = tg_realloc(tape->scopes, cap * sizeof *p);
        if (!p)
            return NULL;
        tape->scopes = p;
        tape->cap_scopes = cap;
    }
    char *d = tg_arena_strdup(&tape->leaf_arena, s);
    if (d)
        tape->scopes[tape->n_scopes++] = d;
    return d;
}

int tg_scope_push(tg_tape *tape, const char *name)
{
    if (!tape)
        return TG_ERR;
    if (!name || !*name)
        return tg_error(tape, "scope_push: scope name is NULL or empty");
    if (tape->scope_depth >= TG_MAX_SCOPE)
        return tg_error(tape, "scope_push: scopes nest deeper than %d",
                        TG_MAX_SCOPE);
    char full[512];
    int w = tape->scope ? snprintf(full, sizeof full, "%s/%s", tape->scope, name)
                        : snprintf(full, sizeof full, "%s", name);
    if (w < 0 || (size_t)w >= sizeof full)
        return tg_error(tape, "scope_push: scope name too long");
    const char *s = tg_intern_scope(tape, full);
    if (!s)
        return tg_error(tape, "scope_push: out of memory");
    tape->scope_stack[tape->scope_depth++] = tape->scope;
    tape->scope = s;
    return TG_OK;
}

void tg_scope_pop(tg_tape *tape)
{
    if (tape && tape->scope_depth > 0)
        tape->scope = tape->scope_stack[--tape->scope_depth];
}

/* ---- shapes -------------------------------------------------------------- */

int tg_shape_size(int rank, const size_t *shape, size_t *size)
{
    size_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] == 0 || n > SIZE_MAX / shape[i])
            return TG_ERR;
        n *= shape[i];
    }
    *size = n;
    return TG_OK;
}

/* Bytes of `size` elements of dtype, failing when above what can be indexed
 * safely (PTRDIFF_MAX). */
static int data_bytes(size_t size, tg_dtype dtype, size_t *bytes)
{
    size_t es = tg_dtype_size(dtype);
    if (!es || size > (size_t)PTRDIFF_MAX / es)
        return TG_ERR;
    *bytes = size * es;
    return TG_OK;
}

/* ---- leaves -------------------------------------------------------------- */

tg_tensor *tg_leaf_new(tg_tape *tape, tg_kind kind, const char *name,
                       tg_dtype dtype, int rank, const size_t *shape,
                       tg_arena *arena)
{
    size_t size, bytes;
    tg_tensor *t = tg_arena_alloc(arena, sizeof *t);
    if (!t)
        return NULL;
    memset(t, 0, sizeof *t);
    t->tape = tape;
    t->dtype = (uint8_t)dtype;
    t->rank = (uint8_t)rank;
    t->kind = (uint8_t)kind;
    t->requires_grad = kind == TG_PARAM;
    t->live = t->requires_grad;
    t->temp = arena == &tape->graph_arena;
    t->epoch = tape->epoch;
    for (int i = 0; i < rank; i++)
        t->shape[i] = shape[i];
    if (tg_shape_size(rank, shape, &size) || data_bytes(size, dtype, &bytes))
        return NULL;
    t->size = size;
    t->data = tg_arena_alloc(arena, bytes);
    if (!t->data)
        return NULL;
    memset(t->data, 0, bytes);
    if (name && !(t->name = tg_arena_strdup(arena, name)))
        return NULL;
    return t;
}

static int check_leaf_args(tg_tape *tape, tg_kind kind, tg_dtype dtype,
                           int rank, const size_t *shape)
{
    if (kind != TG_PARAM && kind != TG_INPUT && kind != TG_CONST)
        return tg_error(tape, "leaf: kind %d is not TG_PARAM, TG_INPUT or TG_CONST", (int)kind);
    if (!tg_dtype_size(dtype))
        return tg_error(tape, "leaf: dtype %d is not TG_F32, TG_F64 or TG_I32", (int)dtype);
    if (kind == TG_PARAM && dtype == TG_I32)
        return tg_error(tape, "leaf: a parameter must be f32 or f64, not i32");
    if (rank < 0 || rank > TG_MAX_RANK)
        return tg_error(tape, "leaf: rank %d is outside 0..%d", rank, TG_MAX_RANK);
    if (rank > 0 && !shape)
        return tg_error(tape, "leaf: shape is NULL for rank %d", rank);
    size_t size, bytes;
    for (int i = 0; i < rank; i++)
        if (shape[i] == 0)
            return tg_error(tape, "leaf: size of axis %d is 0", i);
    if (tg_shape_size(rank, shape, &size) || data_bytes(size, dtype, &bytes))
        return tg_error(tape, "leaf: element count overflows");
    return TG_OK;
}

tg_tensor *tg_leaf(tg_tape *tape, tg_kind kind, const char *name,
                   tg_dtype dtype, int rank, const size_t *shape)
{
    if (!tape || check_leaf_args(tape, kind, dtype, rank, shape))
        return NULL;
    if (tape->n_leaves == tape->cap_leaves) {
        size_t cap = tape->cap_leaves ? tape->cap_leaves * 2 : 16;
        tg_tensor **p = tg_realloc(tape->leaves, cap * sizeof *p);
        if (!p) {
            tg_error(tape, "leaf: out of memory");
            return NULL;
        }
        tape->leaves = p;
        tape->cap_leaves = cap;
    }
    tg_arena_mark m = tg_arena_get_mark(&tape->leaf_arena);
    tg_tensor *t = tg_leaf_new(tape, kind, name, dtype, rank, shape,
                               &tape->leaf_arena);
    if (!t) {
        tg_arena_rewind(&tape->leaf_arena, m);
        tg_error(tape, "leaf: out of memory");
        return NULL;
    }
    tape->leaves[tape->n_leaves++] = t;
    return t;
}

tg_tensor *tg_param(tg_tape *tape, const char *name, tg_dtype dtype,
                    int rank, const size_t *shape)
{
    return tg_leaf(tape, TG_PARAM, name, dtype, rank, shape);
}

tg_tensor *tg_input(tg_tape *tape, const char *name, tg_dtype dtype,
                    int rank, const size_t *shape)
{
    return tg_leaf(tape, TG_INPUT, name, dtype, rank, shape);
}

tg_tensor *tg_const(tg_tape *tape, const char *name, tg_dtype dtype,
                    int rank, const size_t *shape)
{
    return tg_leaf(tape, TG_CONST, name, dtype, rank, shape);
}

tg_tensor *tg_leaf_from(tg_tape *tape, tg_kind kind, const char *name,
                        tg_dtype dtype, int rank, const size_t *shape,
                        const void *data)
{
    if (tape && !data) {
        tg_error(tape, "leaf_from: data is NULL");
        return NULL;
    }
    tg_tensor *t = tg_leaf(tape, kind, name, dtype, rank, shape);
    if (t && tg_copy_in(t, data, dtype, t->size))
        return NULL;
    return t;
}

tg_tensor *tg_scalar(tg_tape *tape, tg_dtype dtype, double value)
{
    if (!tape)
        return NULL;
    if (dtype != TG_F32 && dtype != TG_F64) {
        tg_error(tape, "scalar: dtype must be f32 or f64");
        return NULL;
    }
    tg_tensor *t = tg_leaf_new(tape, TG_CONST, NULL, dtype, 0, NULL,
                               &tape->graph_arena);
    if (!t) {
        tg_error(tape, "scalar: out of memory");
        return NULL;
    }
    tg_set(t, 0, value);
    return t;
}

/* ---- setup helpers ------------------------------------------------------- */

int tg_need_float(tg_node *n, int i)
{
    int d = n->in[i]->dtype;
    if (d == TG_F32 || d == TG_F64)
        return TG_OK;
    return tg_fail(n, "input %d must be f32 or f64, not %s", i,
                   tg_dtype_name((tg_dtype)d));
}

int tg_need_i32(tg_node *n, int i)
{
    if (n->in[i]->dtype == TG_I32)
        return TG_OK;
    return tg_fail(n, "input %d must be i32 (labels/indices), not %s", i,
                   tg_dtype_name((tg_dtype)n->in[i]->dtype));
}

int tg_need_same_dtype(tg_node *n, int i, int j)
{
    if (n->in[i]->dtype == n->in[j]->dtype)
        return TG_OK;
    return tg_fail(n, "dtypes differ (%s, %s)",
                   tg_dtype_name((tg_dtype)n->in[i]->dtype),
                   tg_dtype_name((tg_dtype)n->in[j]->dtype));
}

int tg_need_rank(tg_node *n, int i, int rank)
{
    if (n->in[i]->rank == rank)
        return TG_OK;
    return tg_fail(n, "input %d must have rank %d, got %s", i, rank,
                   tg_shp_of(n->in[i]).s);
}

void tg_out_like(tg_node *n, int i)
{
    n->out.dtype = n->in[i]->dtype;
    n->out.rank = n->in[i]->rank;
    memcpy(n->out.shape, n->in[i]->shape, sizeof n->out.shape);
}

void tg_out_scalar(tg_node *n, int dtype)
{
    n->out.dtype = (uint8_t)dtype;
    n->out.rank = 0;
}

/* ---- recording ----------------------------------------------------------- */

static int push_node(tg_tape *tape, tg_node *n)
{
    if (tape->n_nodes == tape->cap_nodes) {
        size_t cap = tape->cap_nodes ? tape->cap_nodes * 2 : 64;
        tg_node **p = tg_realloc(tape->nodes, cap * sizeof *p);
        if (!p)
            return TG_ERR;
        tape->nodes = p;
        tape->cap_nodes = cap;
    }
    tape->nodes[tape->n_nodes++] = n;
    return TG_OK;
}

tg_tensor *tg_record(const tg_op *op, int n_in, tg_tensor *const *in, const void *attr)
{
    tg_tape *tape = NULL;
    int missing = -1;
    for (int i = 0; i < n_in; i++) {
        if (!in[i])
            missing = missing < 0 ? i : missing;
        else if (!tape)
            tape = in[i]->tape;
    }
    if (!tape)
        return NULL; /* every input NULL: the error is already known */
    if (missing >= 0) {
        tg_error(tape, "%s: input %d is NULL", op->name, missing);
        return NULL;
    }
    for (int i = 0; i < n_in; i++) {
        if (in[i]->tape != tape) {
            tg_error(tape, "%s: inputs belong to different tapes", op->name);
            return NULL;
        }
        if (tg_check_alive(in[i], op->name))
            return NULL;
    }

    /* inside a checkpoint segment the output's values go to the segment
     * pool, which every segment reuses (src/core/checkpoint.c) */
    bool pooled = tape->seg_open && tape->grad_enabled;
    tg_arena *data_arena = pooled ? &tape->seg_data : &tape->graph_arena;
    tg_arena_mark mark = tg_arena_get_mark(&tape->graph_arena);
    tg_arena_mark data_mark = tg_arena_get_mark(data_arena);
    tg_node *n = tg_arena_alloc(&tape->graph_arena, sizeof *n);
    if (!n) {
        tg_error(tape, "%s: out of memory", op->name);
        return NULL;
    }
    memset(n, 0, sizeof *n);
    n->op = op;
    n->n_in = (uint8_t)n_in;
    n->index = SIZE_MAX;
    for (int i = 0; i < n_in; i++)
        n->in[i] = in[i];
    if (attr && op->attr_size) /* op->attr_size <= TG_ATTR_BYTES: TG_ATTR_FITS */
        memcpy(n->attr.bytes, attr, op->attr_size);
    n->out.tape = tape;
    n->out.kind = tape->grad_enabled ? TG_OP : TG_CONST;
    n->out.temp = 1;
    n->out.epoch = tape->epoch;
    if (op->setup(n))
        goto fail;

    size_t size, bytes;
    if (tg_shape_size(n->out.rank, n->out.shape, &size) ||
        data_bytes(size, (tg_dtype)n->out.dtype, &bytes)) {
        tg_fail(n, "output shape overflows");
        goto fail;
    }
    n->out.size = size;
    if (n->view) {
        n->out.data = n->in[0]->data;
        n->out.pooled = n->in[0]->pooled;
    } else if (!(n->out.data = tg_arena_alloc(data_arena, bytes))) {
        tg_fail(n, "out of memory");
        goto fail;
    }
    if (n->scratch_bytes &&
        !(n->scratch = tg_arena_alloc(&tape->graph_arena, n->scratch_bytes))) {
        tg_fail(n, "out of memory");
        goto fail;
    }
    n->scope = tape->scope;
    if (op->forward(n) || (tape->anomaly && tg_anomaly_forward(n)))
        goto fail;
    n->fwd_gen = tape->gen; /* writes from now on have a later version */
    if (tape->grad_enabled) {
        n->index = tape->n_nodes;
        if (push_node(tape, n)) {
            n->index = SIZE_MAX;
            tg_fail(n, "out of memory");
            goto fail;
        }
        n->out.node = n;
        if (pooled) {
            n->seg = (uint32_t)(tape->n_segs + 1);
            n->out.pooled |= !n->view;
        }
        for (int i = 0; i < n_in; i++)
            n->out.live |= in[i]->live;
    }
    return &n->out;
fail:
    tg_arena_rewind(&tape->graph_arena, mark);
    if (pooled)
        tg_arena_rewind(data_arena, data_mark);
    return NULL;
}
