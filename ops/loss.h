/* Shared by the loss ops (mse, bce, bce_logits, softmax_ce,
 * softmax_ce_onehot): their attributes and the reduction factor s. */
#ifndef TG_LOSS_H
#define TG_LOSS_H
#include "op.h"

#include <stdio.h>

typedef struct loss_attr {
    int flags;    /* TG_SUM, TG_MEAN or TG_BATCH_MEAN (| TG_HALF for mse) */
    double scale; /* setup: what the sum of the terms is multiplied by    */
} loss_attr;
TG_ATTR_FITS(loss_attr);
#define LOSS(n) ATTR(n, loss_attr)

/* "mean", "sum half", ...: the flags for DOT labels */
static inline void tg_loss_attr_str(const tg_node *n, char *buf, size_t len)
{
    int f = LOSS(n)->flags, red = f & 3;
    snprintf(buf, len, "%s%s", red == TG_SUM ? "sum" : red == TG_MEAN ? "mean" : "batch_mean",
             f & TG_HALF ? " half" : "");
}

/* Check the node's flags (reduction | allowed extra bits) and set its scale,
 * the factor the sum of `terms` terms is multiplied by; `batch` is the dim-0
 * size. */
static inline int tg_loss_scale(tg_node *n, int allowed_extra, size_t terms, size_t batch)
{
    int flags = LOSS(n)->flags, red = flags & 3;
    double *s = &LOSS(n)->scale;
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

/* setup of a loss over two float tensors of one shape (mse, bce): checks,
 * a scalar output, the scale.  `first` names input 0 in the message. */
static inline int tg_setup_pair_loss(tg_node *n, const char *first, int allowed_extra)
{
    if (tg_need_float(n, 0) || tg_need_float(n, 1) || tg_need_same_dtype(n, 0, 1))
        return TG_ERR;
    tg_tensor *p = IN(n, 0), *t = IN(n, 1);
    if (p->rank != t->rank || memcmp(p->shape, t->shape, p->rank * sizeof(size_t)))
        return tg_fail(n, "%s %s and target %s differ in shape", first, tg_shp_of(p).s,
                       tg_shp_of(t).s);
    tg_out_scalar(n, p->dtype);
    return tg_loss_scale(n, allowed_extra, p->size, tg_batch_of(p));
}
#endif
