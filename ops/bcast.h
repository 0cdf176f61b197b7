/* Shared by the elementwise ops of two inputs with NumPy broadcasting
 * (ops/arith.c: add, sub, mul, div; ops/maximum.c: maximum, minimum): the
 * setup and the walk over the output with the matching elements of a and b.
 * The plan itself is the core's (tg_bcast_plan, src/core/broadcast.c). */
#ifndef TG_OPS_BCAST_H
#define TG_OPS_BCAST_H
#include "op.h"

/* Inputs of one float dtype whose shapes broadcast; the output has the
 * broadcast shape. */
static inline int tg_bcast_setup(tg_node *n)
{
    if (tg_need_float(n, 0) || tg_need_float(n, 1) || tg_need_same_dtype(n, 0, 1))
        return TG_ERR;
    int rank;
    if (tg_bcast_shape(IN(n, 0), IN(n, 1), &rank, OUT(n)->shape))
        return tg_fail(n, "shapes cannot be broadcast (%s, %s)", tg_shp_of(IN(n, 0)).s,
                       tg_shp_of(IN(n, 1)).s);
    OUT(n)->dtype = IN(n, 0)->dtype;
    OUT(n)->rank = (uint8_t)rank;
    return TG_OK;
}

/* Visit every output element: o its flat index, ia/ib the elements of a, b. */
#define EACH(p, ...)                                                          \
    for (size_t i0 = 0, o = 0; i0 < (p)->dim[0]; i0++)                         \
        for (size_t i1 = 0; i1 < (p)->dim[1]; i1++)                            \
            for (size_t i2 = 0; i2 < (p)->dim[2]; i2++)                        \
                for (size_t i3 = 0; i3 < (p)->dim[3]; i3++, o++) {             \
                    size_t ia = i0 * (p)->sa[0] + i1 * (p)->sa[1] +            \
                                i2 * (p)->sa[2] + i3 * (p)->sa[3];             \
                    size_t ib = i0 * (p)->sb[0] + i1 * (p)->sb[1] +            \
                                i2 * (p)->sb[2] + i3 * (p)->sb[3];             \
                    (void)ia, (void)ib;                                        \
                    __VA_ARGS__;                                               \
                }
#endif
