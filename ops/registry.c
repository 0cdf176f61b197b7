/* The table of ops, generated from ops/ops.def. */
#include "ops.h"

#include <string.h>

const tg_op *const tg_ops[TG_OP_COUNT] = {
#define OP(name) [TG_OP_##name] = &tg_op_##name,
#include "ops.def"
#undef OP
};

tg_op_id tg_op_id_of(const tg_op *op)
{
    for (int i = 0; i < TG_OP_COUNT; i++)
        if (tg_ops[i] == op)
            return (tg_op_id)i;
    return TG_OP_COUNT;
}

tg_op_id tg_op_find(const char *name)
{
    for (int i = 0; name && i < TG_OP_COUNT; i++)
        if (!strcmp(tg_ops[i]->name, name))
            return (tg_op_id)i;
    return TG_OP_COUNT;
}
