/*
 * What every file in ops/ includes: the core and kernel layers, the op list,
 * and the contract an op keeps.  Not installed.
 *
 * The contract of an op (const tg_op tg_op_<name> = {...}; see core.h)
 * ---------------------------------------------------------------------
 * An op is named once, in ops/ops.def, and defined in one file of ops/ with
 * its public function (tg_<name>), which calls tg_record(&tg_op_<name>,
 * n_in, inputs, &attr).  tg_record copies the attribute struct into the
 * node, calls setup, allocates the output (and scratch), calls forward, and
 * appends the node to the tape.
 *
 * Attributes.  An op with attributes declares its own struct
 * (`typedef struct reduce_attr { int axis; bool keepdim; ... } reduce_attr;`),
 * sets .attr_size = sizeof(struct), reads it with ATTR(n, reduce_attr), and
 * prints it for DOT with .attr_str ("axis=1 keepdim=1").  The struct is a
 * plain value (no pointers into memory that can go away): a node can be
 * re-recorded from (op, inputs, attributes) alone (src/core/check.c).
 *
 * setup(n)    Reads the inputs' dtype, rank and shape (never their values)
 *             and the attributes.  Writes the output's dtype, rank and shape,
 *             n->scratch_bytes and n->view (the output shares input 0's
 *             data), and may normalise attributes (a negative axis made
 *             positive, a derived constant such as 1/len).  It is idempotent:
 *             setup on the attributes it left gives the same result, since
 *             re-recording copies them.  On a bad input it returns
 *             tg_fail(n, ...) naming the shapes, dtypes or attribute values
 *             (tg_fail prefixes the op's name).  It allocates nothing.
 * forward(n)  Reads the inputs' data, the attributes and its scratch; writes
 *             the output's data and scratch.  It runs at record time and on
 *             every replay (tg_replay, tg_forward), so it never allocates and
 *             gives the same result for the same input values.  It may fail
 *             only on input values (a label out of range), with tg_fail.
 * backward(n) Reads the output's gradient (OUT(n)->grad), the inputs' and the
 *             output's data, the attributes and the scratch that forward
 *             wrote; adds the gradient through the op into each input x with
 *             tg_wants_grad(x), never into the others.  It gets x's buffer
 *             from tg_grad_acc(x, &acc), and then must overwrite it when acc
 *             is 0 and add to it when acc is 1 (another node, or another
 *             input slot of this node, already contributed); or from
 *             tg_grad_sum(x), which is zeroed first, when it scatters
 *             (broadcast sums, gather).  The same tensor may sit in two input
 *             slots (mul(x, x)): both contributions must land.  Backward
 *             cannot fail and never allocates.  The inputs whose values it
 *             reads are declared in .grad_reads (bit i: input i): backward
 *             refuses, before any node runs, when such an input is a leaf
 *             written since this node's forward.  An op whose gradient must
 *             work whatever happens to an input (indices, labels) copies
 *             what it needs into scratch during forward and leaves the bit
 *             clear (gather_rows, class_means, softmax_ce).  Op outputs are
 *             never written (tg_set refuses them), and a failed replay makes
 *             backward refuse, so outputs read here are those of forward.
 *
 * vjp(n, gy, need, gx)
 *             The backward again, recorded: tg_ ops computing the gradient
 *             of each input i with bit i set in `need` from gy, a tensor of
 *             the output's shape (tg_grad_graph calls it; src/core/
 *             grad_graph.c).  It sets gx[i] to a tensor of input i's shape
 *             and dtype, or leaves it NULL when that gradient is zero (a
 *             label input, a constant's derivative).  It may read the
 *             node's inputs and output as tensors (never their values or
 *             scratch: the recorded ops read them when they run), and
 *             returns TG_OK, or TG_ERR when recording failed (the tape's
 *             error is set).  Its result must be linear in gy: Jacobian-
 *             vector products differentiate it with respect to gy.  The ops
 *             it uses decide how often the op can be differentiated: an op
 *             without a vjp (NULL) refuses tg_grad_graph by name.
 *             tg_sum_to, tg_expand_to and tg_const_like (core.h) help.
 *
 * Every op also has, enforced by the suite (docs/architecture.md): an f64
 * finite-difference gradient case, a forward case with independently worked
 * values, an error case, a row in docs/robustness.md and a fuzzer entry.
 */
#ifndef TG_OP_H
#define TG_OP_H

#include "core.h"
#include "kernels.h"
#include "ops.h"

/* Input i and the output of node n. */
#define IN(n, i) ((n)->in[(i)])
#define OUT(n) (&(n)->out)

/* The attribute struct of node n, of type T (the op's own). */
#define ATTR(n, T) ((T *)(void *)(n)->attr.bytes)
/* In the op's file, after its attribute struct: it fits in the node. */
#define TG_ATTR_FITS(T) _Static_assert(sizeof(T) <= TG_ATTR_BYTES, #T " is too large")

/* Call fn_f32 or fn_f64 after the dtype of tensor t. */
#define TG_DISPATCH(t, fn, ...)                                               \
    do {                                                                      \
        if ((t)->dtype == TG_F32)                                             \
            fn##_f32(__VA_ARGS__);                                            \
        else                                                                  \
            fn##_f64(__VA_ARGS__);                                            \
    } while (0)

/* What an op's element-range callback needs: the node and, in backward, the
 * input gradient it writes and whether it adds to it (acc) or overwrites. */
typedef struct tg_elem_ctx {
    tg_node *n;
    void *dx;
    int acc;
} tg_elem_ctx;

#endif
