/* Shared shape of the elementwise ops in ops/: one input, output of the same
 * shape.  UNARY_OP(NAME, FX, GX) defines tg_NAME with
 *   forward   y = FX          (in terms of x, and c = attr f[0])
 *   backward  dx = GX         (in terms of x, y, g = dy, and c)
 * for f32 and f64 (<tgmath.h> picks expf or exp after the type). */
#ifndef TG_UNARY_H
#define TG_UNARY_H
#include "internal.h"

#include "vmath.h"

#include <tgmath.h>

int tg_setup_unary(tg_node *n);

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

#define UNARY_OP(NAME, FX, GX) UNARY_OP_T(NAME, FX, FX, GX)

/* Like UNARY_OP with a separate f32 forward (e.g. a vectorisable exp). */
#define UNARY_OP_T(NAME, FX32, FX64, GX)                                       \
    UNARY_KERNELS(NAME, float, f32, FX32, GX)                                  \
    UNARY_KERNELS(NAME, double, f64, FX64, GX)                                 \
    static int NAME##_forward(tg_node *n)                                      \
    {                                                                          \
        tg_tensor *x = IN(n, 0), *y = OUT(n);                                  \
        if (y->dtype == TG_F32)                                                \
            NAME##_fwd_f32(y->size, x->data, y->data, (float)n->attr.f[0]);    \
        else                                                                   \
            NAME##_fwd_f64(y->size, x->data, y->data, n->attr.f[0]);           \
        return TG_OK;                                                          \
    }                                                                          \
    static void NAME##_backward(tg_node *n)                                    \
    {                                                                          \
        tg_tensor *x = IN(n, 0), *y = OUT(n);                                  \
        int acc;                                                               \
        if (!tg_wants_grad(x))                                                 \
            return;                                                            \
        void *dx = tg_grad_acc(x, &acc);                                       \
        if (y->dtype == TG_F32)                                                \
            NAME##_bwd_f32(y->size, x->data, y->data, y->grad, dx, acc,        \
                           (float)n->attr.f[0]);                               \
        else                                                                   \
            NAME##_bwd_f64(y->size, x->data, y->data, y->grad, dx, acc,        \
                           n->attr.f[0]);                                      \
    }                                                                          \
    const tg_op tg_op_##NAME = {#NAME, tg_setup_unary, NAME##_forward,         \
                                NAME##_backward};

#endif
