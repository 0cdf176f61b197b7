/* What max_pool2d and avg_pool2d share: the attribute struct (from the
 * public tg_pool2d_opts), its DOT string, the setup (checks and output
 * shape) and the geometry of one window.  x is [N,C,H,W]; each of the N·C
 * planes is pooled on its own, so work is split over planes.
 *   Ho = ⌊(H + 2·ph − kh) / sh⌋ + 1   (no ceil mode; Wo likewise)
 * Window (oh, ow) covers rows oh·sh − ph … oh·sh − ph + kh − 1 of the padded
 * input, clipped to [0, H) (columns likewise).  Since ph <= kh/2 (PyTorch's
 * rule), every window holds at least one element of the input. */
#ifndef TG_POOL_H
#define TG_POOL_H
#include "op.h"

typedef struct pool_attr {
    int kernel[2];  /* kh, kw                                   */
    int stride[2];  /* sh, sw; setup makes 0 the kernel size     */
    int padding[2]; /* ph, pw                                   */
    bool count_include_pad; /* avg_pool2d: divide by kh·kw always */
    bool no_opts;   /* the caller passed opts = NULL (setup fails) */
} pool_attr;
TG_ATTR_FITS(pool_attr);
#define PA(n) ATTR(n, pool_attr)

/* The attributes of the public opts (NULL: no_opts, refused by setup). */
static inline pool_attr tg_pool_attr_of(const tg_pool2d_opts *o)
{
    pool_attr at = {{0, 0}, {0, 0}, {0, 0}, false, o == NULL};
    if (o) {
        for (int i = 0; i < 2; i++) {
            at.kernel[i] = o->kernel[i];
            at.stride[i] = o->stride[i];
            at.padding[i] = o->padding[i];
        }
        at.count_include_pad = o->count_include_pad;
    }
    return at;
}

/* Checks x and the attributes, sets y [N,C,Ho,Wo] and normalises the
 * stride; scratch_bytes is left to the op. */
int tg_pool_setup(tg_node *n);
/* The same checks on x = input xi, the pooled size into ho_wo[2]. */
int tg_pool_check(tg_node *n, int xi, size_t *ho_wo);
/* Setup of the adjoint ops (t, x, opts), x read for its shape (and, for
 * max pooling, its maxima): a scatter (t pooled-shaped → output x-shaped)
 * or a gather (t x-shaped → output pooled-shaped).  Refuses t of another
 * dtype or shape, naming both. */
int tg_pool_adj_setup(tg_node *n, bool gather);
/* "kernel=2x2 stride=2x2 pad=0x0" (+ " count_include_pad" when show_cip
 * and the flag is set: avg_pool2d) */
void tg_pool_attr_str(const tg_node *n, char *buf, size_t len, bool show_cip);

/* The sizes an op's kernels need, read from the node after setup. */
typedef struct pool_geom {
    size_t planes, H, W, Ho, Wo;
    ptrdiff_t kh, kw, sh, sw, ph, pw;
} pool_geom;

/* The geometry of pooling x into y (y: a tensor of the pooled shape). */
static inline pool_geom tg_pool_geom(const tg_node *n, const tg_tensor *x, const tg_tensor *y)
{
    const pool_attr *a = (const pool_attr *)(const void *)n->attr.bytes;
    pool_geom g = {x->shape[0] * x->shape[1], x->shape[2], x->shape[3], y->shape[2],
                   y->shape[3], a->kernel[0], a->kernel[1], a->stride[0], a->stride[1],
                   a->padding[0], a->padding[1]};
    return g;
}

/* ... of the pooling op itself (x input 0, y its output), and of the
 * adjoint ops: x is input 1, the pooled-shaped tensor is input 0 (a
 * scatter) or the output (a gather). */
static inline pool_geom tg_pool_geom_of(const tg_node *n) { return tg_pool_geom(n, n->in[0], &n->out); }
static inline pool_geom tg_pool_adj_geom(const tg_node *n, bool gather)
{
    return tg_pool_geom(n, n->in[1], gather ? &n->out : n->in[0]);
}

/* Rows [*lo, *hi) of the input under output row o (and columns likewise). */
static inline void tg_pool_span(size_t o, ptrdiff_t s, ptrdiff_t p, ptrdiff_t k, size_t len,
                                size_t *lo, size_t *hi)
{
    ptrdiff_t a = (ptrdiff_t)o * s - p, b = a + k;
    *lo = a < 0 ? 0 : (size_t)a;
    *hi = b > (ptrdiff_t)len ? len : (size_t)b;
}

/* The planes one piece of tg_parallel_for takes: about TG_ELEM_GRAIN
 * elements of input. */
static inline size_t tg_pool_grain(const pool_geom *g)
{
    size_t per = g->H * g->W;
    return per >= TG_ELEM_GRAIN ? 1 : TG_ELEM_GRAIN / per;
}

#endif
