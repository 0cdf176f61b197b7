/* Shared shape of the elementwise ops in ops/: one input, output of the same
 * shape.  UNARY_OP(NAME, FX, GX) defines tg_op_NAME with
 *   forward   y = FX          (in terms of x, and c = the unary_attr constant)
 *   backward  dx = GX         (in terms of x, y, g = dy, and c)
 * READS_X: 1 when GX reads x (then x written after forward makes backward
 * refuse), 0 when it needs only y, g and c.
 * The op's file defines the recorded backward (ops/op.h, vjp)
 *   static int NAME_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx)
 * which sets gx[0], the gradient GX written with tg_ ops.
 * for f32 and f64 (<tgmath.h> picks expf or exp after the type). */
#ifndef TG_UNARY_H
#define TG_UNARY_H
#include "op.h"

#include "vmath.h"

#include <tgmath.h>

int tg_setup_unary(tg_node *n);

/* The attribute of a unary op that has one (scale's c); 0 in the others. */
typedef struct unary_attr {
    double c;
} unary_attr;
TG_ATTR_FITS(unary_attr);
/* "c=..." for DOT */
void tg_unary_attr_str(const tg_node *n, char *buf, size_t len);

#define UNARY_KERNELS(NAME, T, S, FX, GX)                                      \
    static void NAME##_fwd_##S(size_t len, const T *xs, T *ys, T c)            \
    {                                                                          \
        (void)c;                                                               \
        for (size_t i = 0; i < len; i++) {                                     \
            T x = xs[i];                                                       \
            ys[i] = FX;                                                        \
        }                                                                      \
    }                                                                          \
    static void NAME##_bwd_##S(size_t len, const T *xs, const T *ys,           \
                               const T *gs, T *dx, int acc, T c)               \
    {                                                                          \
        (void)c;                                                               \
        for (size_t i = 0; i < len; i++) {                                     \
            T x = xs[i], y = ys[i], g = gs[i];                                 \
            (void)x, (void)y;                                                  \
            T d = GX;                                                          \
            dx[i] = acc ? dx[i] + d : d;                                       \
        }                                                                      \
    }

#define UNARY_OP(NAME, FX, GX, READS_X) UNARY_OP_T(NAME, FX, FX, GX, READS_X, 0, NULL)
/* A unary op whose FX and GX use the constant c (tg_record with a unary_attr). */
#define UNARY_OP_C(NAME, FX, GX, READS_X)                                      \
    UNARY_OP_T(NAME, FX, FX, GX, READS_X, sizeof(unary_attr), tg_unary_attr_str)

/* Like UNARY_OP with a separate f32 forward (e.g. a vectorisable exp).
 * Large tensors are split into element ranges over the thread pool. */
#define UNARY_OP_T(NAME, FX32, FX64, GX, READS_X, ASIZE, ASTR)                 \
    UNARY_OP_S(NAME, FX32, FX64, GX, READS_X, ASIZE, ASTR, tg_setup_unary)
/* UNARY_OP_T with the op's own setup (one that also checks the constant c). */
#define UNARY_OP_S(NAME, FX32, FX64, GX, READS_X, ASIZE, ASTR, SETUP)          \
    static int NAME##_vjp(tg_node *n, tg_tensor *gy, unsigned need, tg_tensor **gx); \
    UNARY_KERNELS(NAME, float, f32, FX32, GX)                                  \
    UNARY_KERNELS(NAME, double, f64, FX64, GX)                                 \
    static void NAME##_fwd_range(void *ctx, size_t b, size_t e)                \
    {                                                                          \
        tg_node *n = ((tg_elem_ctx *)ctx)->n;                                 \
        tg_tensor *x = IN(n, 0), *y = OUT(n);                                  \
        if (y->dtype == TG_F32)                                                \
            NAME##_fwd_f32(e - b, (const float *)x->data + b,                  \
                           (float *)y->data + b, (float)ATTR(n, unary_attr)->c);         \
        else                                                                   \
            NAME##_fwd_f64(e - b, (const double *)x->data + b,                 \
                           (double *)y->data + b, ATTR(n, unary_attr)->c);     \
    }                                                                          \
    static int NAME##_forward(tg_node *n)                                      \
    {                                                                          \
        tg_elem_ctx c = {n, NULL, 0};                                         \
        tg_parallel_for(OUT(n)->size, TG_ELEM_GRAIN, NAME##_fwd_range, &c);    \
        return TG_OK;                                                          \
    }                                                                          \
    static void NAME##_bwd_range(void *ctx, size_t b, size_t e)                \
    {                                                                          \
        tg_elem_ctx *c = ctx;                                                 \
        tg_tensor *x = IN(c->n, 0), *y = OUT(c->n);                            \
        if (y->dtype == TG_F32)                                                \
            NAME##_bwd_f32(e - b, (const float *)x->data + b,                  \
                           (const float *)y->data + b,                         \
                           (const float *)y->grad + b, (float *)c->dx + b,     \
                           c->acc, (float)ATTR(c->n, unary_attr)->c);       \
        else                                                                   \
            NAME##_bwd_f64(e - b, (const double *)x->data + b,                 \
                           (const double *)y->data + b,                        \
                           (const double *)y->grad + b, (double *)c->dx + b,   \
                           c->acc, ATTR(c->n, unary_attr)->c);       \
    }                                                                          \
    static void NAME##_backward(tg_node *n)                                    \
    {                                                                          \
        if (!tg_wants_grad(IN(n, 0)))                                          \
            return;                                                            \
        tg_elem_ctx c = {n, NULL, 0};                                         \
        c.dx = tg_grad_acc(IN(n, 0), &c.acc);                                  \
        tg_parallel_for(OUT(n)->size, TG_ELEM_GRAIN, NAME##_bwd_range, &c);    \
    }                                                                          \
    const tg_op tg_op_##NAME = {.name = #NAME, .grad_reads = READS_X,          \
                                .attr_size = ASIZE,                            \
                                .setup = SETUP,                                \
                                .forward = NAME##_forward,                     \
                                .backward = NAME##_backward, .attr_str = ASTR, \
                                .vjp = NAME##_vjp};

#endif
