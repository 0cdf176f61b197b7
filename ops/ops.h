/* The op list (ops/ops.def) as an enum and a table.  Not installed. */
#ifndef TG_OPS_H
#define TG_OPS_H

#include "core.h"

/* TG_OP_matmul, TG_OP_add_bias, ... in the order of ops/ops.def. */
typedef enum tg_op_id {
#define OP(name) TG_OP_##name,
#include "ops.def"
#undef OP
    TG_OP_COUNT
} tg_op_id;

#define OP(name) extern const tg_op tg_op_##name;
#include "ops.def"
#undef OP

/* Every op, indexed by tg_op_id (ops/registry.c). */
extern const tg_op *const tg_ops[TG_OP_COUNT];

/* The id of an op (TG_OP_COUNT when op is not in the list). */
tg_op_id tg_op_id_of(const tg_op *op);
/* The id of the op named `name` (TG_OP_COUNT when there is none). */
tg_op_id tg_op_find(const char *name);

#endif
