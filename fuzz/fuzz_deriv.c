/* libFuzzer target: derivation files (src/deriv): the parser on any text,
 * then, for files that parse and whose tensors are small (every dimension
 * at most 16, so one run stays fast), the evaluator with one draw and the
 * result accessors.  A failure must leave a message; nothing may crash. */
#include "deriv.h"
#include "tapegrad.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tg_err err = {{0}};
    tg_deriv *d = tg_deriv_parse((const char *)data, size, "fuzz.deriv", &err);
    if (!d) {
        if (!err.msg[0])
            __builtin_trap(); /* a parse failure without a message */
        return 0;
    }
    for (int i = 0; i < d->n_syms; i++)
        for (int a = 0; a < d->syms[i].rank; a++)
            if (d->syms[i].shape[a] > 16 || d->syms[i].classes > 64) {
                tg_deriv_free(d);
                return 0;
            }
    tg_deriv_opts o = {.draws = 1, .seed = size};
    err.msg[0] = 0;
    if (tg_deriv_run(d, &o, &err)) {
        if (!err.msg[0])
            __builtin_trap();
    } else {
        for (int i = 0; i < tg_deriv_checks(d); i++) {
            const tg_deriv_check *r = tg_deriv_result(d, i);
            const double *t, *f;
            size_t n;
            if (!r || r->line < 1 || (tg_deriv_worst(d, i, &t, &f, &n) == 0 && !n))
                __builtin_trap();
        }
    }
    tg_deriv_free(d);
    return 0;
}
