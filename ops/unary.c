#include "unary.h"

int tg_setup_unary(tg_node *n)
{
    if (tg_need_float(n, 0))
        return TG_ERR;
    tg_out_like(n, 0);
    return TG_OK;
}

void tg_unary_attr_str(const tg_node *n, char *buf, size_t len)
{
    snprintf(buf, len, "c=%g", ATTR(n, unary_attr)->c);
}
