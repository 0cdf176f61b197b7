#include "unary.h"

int tg_setup_unary(tg_node *n)
{
    if (tg_need_float(n, 0))
        return TG_ERR;
    tg_out_like(n, 0);
    return TG_OK;
}
