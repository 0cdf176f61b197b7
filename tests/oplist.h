/* The rule that every op in ops/ops.def comes with its cases, checked by the
 * test programs that hold them: each program marks an op as covered when one
 * of its cases passed on that op, and ends with one line per op of the list.
 * An op added to ops.def without its case then fails the suite by name:
 *
 *   test_ops_grad      an f64 finite-difference gradient case
 *   test_ops_forward   a forward case with independently worked values
 *   test_errors        an error case whose message names the op
 *   test_robustness    a row of docs/robustness.md whose message names it
 *   fuzz_replay        a fuzzer entry that the corpus reaches
 */
#ifndef TG_OPLIST_H
#define TG_OPLIST_H

#include "ops.h"
#include "tap.h"

static bool op_covered[TG_OP_COUNT];

/* Mark the op named `name` (an unknown name is ignored: not an op). */
static inline void op_cover_name(const char *name)
{
    tg_op_id id = tg_op_find(name);
    if (id < TG_OP_COUNT)
        op_covered[id] = true;
}

/* Mark the op that produced y (nothing for a leaf or NULL). */
static inline void op_cover(const tg_tensor *y)
{
    if (y && tg_kind_of(y) == TG_OP)
        op_cover_name(tg_op_name(y));
}

/* Mark the op an error message names: "opname: ..." or "opname (node N): ...". */
static inline void op_cover_error(const char *msg)
{
    char name[64];
    size_t n = msg ? strcspn(msg, ": (") : 0;
    if (n == 0 || n >= sizeof name || (msg[n] != ':' && msg[n] != ' '))
        return;
    memcpy(name, msg, n);
    name[n] = 0;
    op_cover_name(name);
}

/* One TAP line per op of ops/ops.def: it has `what` (a case of this
 * program).  Returns the number of ops without one. */
static inline int ops_all_covered(const char *what)
{
    int missing = 0;
    for (int i = 0; i < TG_OP_COUNT; i++) {
        if (!ok(op_covered[i], "op %s has %s", tg_ops[i]->name, what)) {
            diag("ops/ops.def lists %s but no case here covers it: add %s (docs/architecture.md, "
                 "Adding an op)", tg_ops[i]->name, what);
            missing++;
        }
    }
    return missing;
}

#endif
