/* Tensor queries, element access, copies and gradient access. */
#include "core.h"

#include <math.h>
#include <stdio.h>

const char *tg_dtype_name(tg_dtype dtype)
{
    switch (dtype) {
    case TG_F32: return "f32";
    case TG_F64: return "f64";
    case TG_I32: return "i32";
    }
    return "?";
}

size_t tg_dtype_size(tg_dtype dtype)
{
    switch (dtype) {
    case TG_F32: return sizeof(float);
    case TG_F64: return sizeof(double);
    case TG_I32: return sizeof(int32_t);
    }
    return 0;
}

tg_tape *tg_tape_of(const tg_tensor *t) { return t ? t->tape : NULL; }
tg_dtype tg_dtype_of(const tg_tensor *t) { return t ? (tg_dtype)t->dtype : (tg_dtype)0; }
tg_kind tg_kind_of(const tg_tensor *t) { return t ? (tg_kind)t->kind : (tg_kind)0; }
int tg_rank(const tg_tensor *t) { return t ? t->rank : -1; }
size_t tg_size(const tg_tensor *t) { return t ? t->size : 0; }
const char *tg_name(const tg_tensor *t) { return t ? t->name : NULL; }
long tg_node_index(const tg_tensor *t) { return t && t->node ? (long)t->node->index : -1; }
bool tg_requires_grad(const tg_tensor *t) { return t && t->requires_grad; }

size_t tg_dim(const tg_tensor *t, int axis)
{
    if (!t)
        return 0;
    if (axis < 0)
        axis += t->rank;
    return axis >= 0 && axis < t->rank ? t->shape[axis] : 0;
}

int tg_set_name(tg_tensor *t, const char *name)
{
    if (!t)
        return TG_ERR;
    if (!name) {
        t->name = NULL;
        return TG_OK;
    }
    tg_arena *a = t->temp ? &t->tape->graph_arena : &t->tape->leaf_arena;
    const char *copy = tg_arena_strdup(a, name);
    if (!copy)
        return tg_error(t->tape, "set_name: out of memory");
    t->name = copy;
    return TG_OK;
}

int tg_set_requires_grad(tg_tensor *t, bool requires_grad)
{
    if (!t)
        return TG_ERR;
    if (t->node || t->temp)
        return tg_error(t->tape, "set_requires_grad: '%s' is not a leaf", tg_label(t));
    if (requires_grad && t->dtype == TG_I32)
        return tg_error(t->tape, "set_requires_grad: an i32 tensor has no gradient");
    if (t->requires_grad != requires_grad) {
        t->requires_grad = requires_grad;
        t->live = requires_grad;
        t->tape->live_dirty = true;
    }
    return TG_OK;
}

/* ---- element access ------------------------------------------------------ */

int tg_check_alive(const tg_tensor *t, const char *fn)
{
    if (t->pooled && tg_dropped(t))
        return tg_error(t->tape, "%s: '%s' (%s, node %zu) is an intermediate of checkpoint "
                                 "segment %u, whose values are dropped after its forward; only "
                                 "the tensors passed to tg_checkpoint_end are kept",
                        fn, tg_label(t), tg_shp_of(t).s, t->node->index, t->node->seg);
#ifdef NDEBUG
    (void)fn;
    return TG_OK;
#else
    if (!t->temp || t->epoch == t->tape->epoch)
        return TG_OK;
    return tg_error(t->tape, "%s: '%s' (%s) was made before the last tg_tape_clear, which "
                             "dropped it: an op's output is valid only until the clear",
                    fn, tg_label(t), tg_shp_of(t).s);
#endif
}

int tg_write_leaf(tg_tensor *t, const char *fn)
{
    if (tg_check_alive(t, fn))
        return TG_ERR;
    if (t->node)
        return tg_error(t->tape, "%s: '%s' is the output of %s (node %zu): only leaves "
                                 "(tg_input, tg_param, tg_const) can be written; an op's "
                                 "output is what its forward computed",
                        fn, tg_label(t), t->node->op->name, t->node->index);
    t->version = ++t->tape->gen;
    return TG_OK;
}

void *tg_data(tg_tensor *t) { return t ? t->data : NULL; }

static void *typed(tg_tensor *t, tg_dtype want, const char *fn)
{
    if (!t || tg_check_alive(t, fn))
        return NULL;
    if (t->dtype != want) {
        tg_query_fail(t->tape, "%s: tensor '%s' is %s", fn, tg_label(t),
                      tg_dtype_name((tg_dtype)t->dtype));
        return NULL;
    }
    return t->data;
}

float *tg_data_f32(tg_tensor *t) { return typed(t, TG_F32, "data_f32"); }
double *tg_data_f64(tg_tensor *t) { return typed(t, TG_F64, "data_f64"); }
int32_t *tg_data_i32(tg_tensor *t) { return typed(t, TG_I32, "data_i32"); }

static double load(const void *p, tg_dtype d, size_t i)
{
    switch (d) {
    case TG_F32: return ((const float *)p)[i];
    case TG_F64: return ((const double *)p)[i];
    default: return ((const int32_t *)p)[i];
    }
}

static void store(void *p, tg_dtype d, size_t i, double v)
{
    switch (d) {
    case TG_F32: ((float *)p)[i] = (float)v; break;
    case TG_F64: ((double *)p)[i] = v; break;
    default: ((int32_t *)p)[i] = (int32_t)v; break;
    }
}

static bool fits_i32(double v)
{
    return v >= -2147483648.0 && v <= 2147483647.0 && v == floor(v);
}

/* Copy n elements between typed buffers; -1 if a value cannot go into i32. */
static int convert(void *dst, tg_dtype dd, const void *src, tg_dtype sd,
                   size_t n, size_t *bad)
{
    if (dd == sd) {
        memcpy(dst, src, n * tg_dtype_size(dd));
        return TG_OK;
    }
    for (size_t i = 0; i < n; i++) {
        double v = load(src, sd, i);
        if (dd == TG_I32 && !fits_i32(v)) {
            *bad = i;
            return TG_ERR;
        }
        store(dst, dd, i, v);
    }
    return TG_OK;
}

static int check_copy(const tg_tensor *t, const void *buf, tg_dtype d,
                      size_t count, const char *fn)
{
    if (!t)
        return TG_ERR;
    if (!buf)
        return tg_error(t->tape, "%s: buffer is NULL", fn);
    if (!tg_dtype_size(d))
        return tg_error(t->tape, "%s: dtype %d is not TG_F32, TG_F64 or TG_I32", fn, (int)d);
    if (count != t->size)
        return tg_error(t->tape, "%s: count %zu differs from the size %zu of '%s' (%s)",
                        fn, count, t->size, tg_label(t),
                        tg_shp_of(t).s);
    return TG_OK;
}

int tg_copy_in(tg_tensor *t, const void *src, tg_dtype src_dtype, size_t count)
{
    if (check_copy(t, src, src_dtype, count, "copy_in") || tg_write_leaf(t, "copy_in"))
        return TG_ERR;
    size_t bad = 0;
    if (convert(t->data, (tg_dtype)t->dtype, src, src_dtype, count, &bad))
        return tg_error(t->tape, "copy_in: element %zu (%g) is not an int32 value",
                        bad, load(src, src_dtype, bad));
    return TG_OK;
}

int tg_copy_out(const tg_tensor *t, void *dst, tg_dtype dst_dtype, size_t count)
{
    if (check_copy(t, dst, dst_dtype, count, "copy_out") || tg_check_alive(t, "copy_out"))
        return TG_ERR;
    size_t bad = 0;
    if (convert(dst, dst_dtype, t->data, (tg_dtype)t->dtype, count, &bad))
        return tg_error(t->tape, "copy_out: element %zu is not an int32 value", bad);
    return TG_OK;
}

int tg_fill(tg_tensor *t, double value)
{
    if (!t)
        return TG_ERR;
    if (t->dtype == TG_I32 && !fits_i32(value))
        return tg_error(t->tape, "fill: %g is not an int32 value", value);
    if (tg_write_leaf(t, "fill"))
        return TG_ERR;
    for (size_t i = 0; i < t->size; i++)
        store(t->data, (tg_dtype)t->dtype, i, value);
    return TG_OK;
}

double tg_get(const tg_tensor *t, size_t i)
{
    if (!t || i >= t->size)
        return NAN;
    return load(t->data, (tg_dtype)t->dtype, i);
}

int tg_set(tg_tensor *t, size_t i, double value)
{
    if (!t)
        return TG_ERR;
    if (i >= t->size)
        return tg_error(t->tape, "set: index %zu out of range for %s", i,
                        tg_shp_of(t).s);
    if (t->dtype == TG_I32 && !fits_i32(value))
        return tg_error(t->tape, "set: %g is not an int32 value", value);
    if (tg_write_leaf(t, "set"))
        return TG_ERR;
    store(t->data, (tg_dtype)t->dtype, i, value);
    return TG_OK;
}

double tg_item(const tg_tensor *t)
{
    if (!t || tg_check_alive(t, "item"))
        return NAN;
    if (t->size != 1) {
        tg_query_fail(t->tape, "item: tensor '%s' has %zu elements (%s), not 1", tg_label(t),
                      t->size, tg_shp_of(t).s);
        return NAN;
    }
    return load(t->data, (tg_dtype)t->dtype, 0);
}

/* ---- gradients ----------------------------------------------------------- */

int tg_grad_alloc(tg_tensor *t)
{
    if (t->grad)
        return TG_OK;
    tg_arena *a = t->temp ? &t->tape->graph_arena : &t->tape->leaf_arena;
    t->grad = tg_arena_alloc(a, t->size * tg_dtype_size((tg_dtype)t->dtype));
    if (!t->grad)
        return tg_error(t->tape, "backward: out of memory");
    t->grad_gen = 0; /* holds nothing yet */
    return TG_OK;
}

void *tg_grad(tg_tensor *t)
{
    if (!t || tg_check_alive(t, "grad"))
        return NULL;
    if (t->dtype == TG_I32) {
        tg_query_fail(t->tape, "grad: '%s' is i32 and has no gradient", tg_label(t));
        return NULL;
    }
    if (t->node && t->tape->share_grads) {
        tg_query_fail(t->tape, "grad: '%s' is an op output and this tape keeps only the "
                               "leaves' gradients (tg_set_keep_grads)", tg_label(t));
        return NULL;
    }
    if (tg_grad_alloc(t))
        return NULL;
    if (t->grad_gen != tg_cur_gen(t)) {
        memset(t->grad, 0, t->size * tg_dtype_size((tg_dtype)t->dtype));
        t->grad_gen = tg_cur_gen(t);
    }
    return t->grad;
}

int tg_grad_out(tg_tensor *t, void *dst, tg_dtype dst_dtype, size_t count)
{
    if (check_copy(t, dst, dst_dtype, count, "grad_out"))
        return TG_ERR;
    if (t->dtype == TG_I32)
        return tg_error(t->tape, "grad_out: '%s' is i32 and has no gradient", tg_label(t));
    const void *g = tg_grad(t);
    if (!g)
        return TG_ERR;
    size_t bad = 0;
    if (convert(dst, dst_dtype, g, (tg_dtype)t->dtype, count, &bad))
        return tg_error(t->tape, "grad_out: element %zu is not an int32 value", bad);
    return TG_OK;
}

double tg_grad_get(tg_tensor *t, size_t i)
{
    if (!t || i >= t->size)
        return NAN;
    const void *g = tg_grad(t);
    return g ? load(g, (tg_dtype)t->dtype, i) : NAN;
}
