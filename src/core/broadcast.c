/* NumPy broadcasting of two tensors (shapes aligned from the right). */
#include "core.h"

int tg_bcast_shape(const tg_tensor *a, const tg_tensor *b, int *rank,
                   size_t *shape)
{
    int r = a->rank > b->rank ? a->rank : b->rank;
    for (int i = 0; i < r; i++) {
        int ia = a->rank - r + i, ib = b->rank - r + i;
        size_t da = ia >= 0 ? a->shape[ia] : 1;
        size_t db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return TG_ERR;
        shape[i] = da == 1 ? db : da;
    }
    *rank = r;
    return TG_OK;
}

/* Strides of t seen through the 4-axis output shape: 0 on a broadcast axis. */
static void strides(const tg_tensor *t, const size_t *dim, size_t *st)
{
    size_t s = 1;
    for (int i = TG_MAX_RANK - 1; i >= 0; i--) {
        int it = t->rank - TG_MAX_RANK + i;
        size_t d = it >= 0 ? t->shape[it] : 1;
        st[i] = (d == 1 && dim[i] != 1) ? 0 : s;
        s *= d;
    }
}

void tg_bcast_plan(const tg_tensor *a, const tg_tensor *b, tg_bcast *p)
{
    int r = 0; /* the op's setup checked the shapes: this call succeeds */
    size_t shape[TG_MAX_RANK];
    tg_bcast_shape(a, b, &r, shape);
    for (int i = 0; i < TG_MAX_RANK; i++) {
        int is = r - TG_MAX_RANK + i;
        p->dim[i] = is >= 0 ? shape[is] : 1;
    }
    strides(a, p->dim, p->sa);
    strides(b, p->dim, p->sb);
    size_t n = p->dim[0] * p->dim[1] * p->dim[2] * p->dim[3];
    p->same = a->size == n && b->size == n;
}
