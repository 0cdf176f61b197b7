/* Shared by the loss ops: the reduction factor s of the flags. */
#ifndef TG_LOSS_H
#define TG_LOSS_H
#include "internal.h"

/* Check `flags` (reduction | allowed extra bits) and return in *s the factor
 * the sum of `terms` terms is multiplied by; `batch` is the dim-0 size. */
static inline int tg_loss_scale(tg_node *n, int flags, int allowed_extra,
                                size_t terms, size_t batch, double *s)
{
    int red = flags & 3;
    if (red == 3 || (flags & ~(3 | allowed_extra)))
        return tg_fail(n, "invalid flags 0x%x (TG_SUM, TG_MEAN or TG_BATCH_MEAN%s)",
                       (unsigned)flags, allowed_extra & TG_HALF ? ", | TG_HALF" : "");
    *s = red == TG_MEAN ? 1.0 / (double)terms
       : red == TG_BATCH_MEAN ? 1.0 / (double)batch : 1.0;
    if (flags & TG_HALF)
        *s *= 0.5;
    return TG_OK;
}

static inline size_t tg_batch_of(const tg_tensor *t) { return t->rank ? t->shape[0] : 1; }
#endif
