/* bmm, layer_norm, embedding beyond the per-op suites: forward and
 * gradients bit for bit the same with 1 and 2 threads (sizes large enough
 * that the batches, rows and column blocks are split over the pool), f32 and
 * f64; embedding's backward uses the indices of its last forward; the DOT
 * attributes. */
#include "tap.h"
#include "tapegrad.h"

#include <stdlib.h>
#include <string.h>

#define NP 7

/* Build the graph, run backward, and copy the outputs and the gradients of
 * the parameters into out (doubles); returns the count, 0 on failure. */
static size_t run(int threads, tg_dtype dt, double *out)
{
    tg_set_threads(threads);
    tg_tape *T = tg_tape_new();
    tg_rng rng;
    tg_rng_seed(&rng, 7);
    tg_tensor *a = tg_param(T, "a", dt, 4, SHAPE(2, 4, 48, 40));
    tg_tensor *b = tg_param(T, "b", dt, 3, SHAPE(4, 48, 40));
    tg_tensor *w = tg_param(T, "w", dt, 2, SHAPE(40, 40));
    tg_tensor *x = tg_param(T, "x", dt, 3, SHAPE(4, 300, 200));
    tg_tensor *g = tg_param(T, "g", dt, 1, SHAPE(200));
    tg_tensor *be = tg_param(T, "be", dt, 1, SHAPE(200));
    tg_tensor *E = tg_param(T, "E", dt, 2, SHAPE(50, 64));
    tg_tensor *idx = tg_input(T, "i", TG_I32, 2, SHAPE(30, 40));
    tg_tensor *ps[NP] = {a, b, w, x, g, be, E};
    for (int i = 0; i < NP; i++)
        tg_init_uniform(ps[i], &rng, -1, 1);
    for (size_t i = 0; i < 1200; i++)
        tg_set(idx, i, (double)((i * 7919) % 50));
    tg_tensor *c = tg_bmm(a, b, false, true);  /* [2,4,48,48], b broadcast over axis 0 */
    tg_tensor *c3 = tg_bmm(a, w, false, true); /* [2,4,48,40], w over every batch */
    tg_tensor *y = tg_layer_norm(x, g, be, 1e-5);
    tg_tensor *e = tg_embedding(E, idx);
    tg_tensor *loss = tg_add(tg_add(tg_sum(tg_mul(c, c)), tg_sum(tg_mul(c3, c3))),
                             tg_add(tg_sum(tg_mul(y, tg_sigmoid(x))), tg_sum(tg_mul(e, e))));
    size_t k = 0;
    if (loss && tg_backward(loss) == 0) {
        tg_tensor *outs[4] = {c, c3, y, e};
        for (int i = 0; i < 4; i++)
            for (size_t j = 0; j < tg_size(outs[i]); j++)
                out[k++] = tg_get(outs[i], j);
        for (int i = 0; i < NP; i++) {
            const void *gr = tg_grad(ps[i]);
            for (size_t j = 0; gr && j < tg_size(ps[i]); j++)
                out[k++] = dt == TG_F32 ? ((const float *)gr)[j] : ((const double *)gr)[j];
        }
    } else {
        diag("%s", tg_tape_error(T));
    }
    tg_tape_free(T);
    return k;
}

static void threads(void)
{
    const size_t cap = 1 << 20;
    double *o1 = malloc(cap * sizeof *o1), *o2 = malloc(cap * sizeof *o2);
    for (int d = 0; d < 2 && o1 && o2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        size_t n1 = run(1, dt, o1), n2 = run(2, dt, o2);
        ok(n1 > 600000 && n1 == n2 && !memcmp(o1, o2, n1 * sizeof *o1),
           "%s: bmm, layer_norm, embedding and their gradients (%zu values) are the same with 1 "
           "and 2 threads", tg_dtype_name(dt), n1);
    }
    tg_set_threads(1);
    free(o1);
    free(o2);
}

/* Backward after the indices changed: the rows of the last forward get it. */
static void embedding_indices(void)
{
    tg_tape *T = tg_tape_new();
    tg_tensor *E = tg_param(T, "E", TG_F64, 2, SHAPE(3, 2));
    tg_tensor *idx = tg_leaf_from(T, TG_INPUT, "i", TG_I32, 1, SHAPE(3), (int32_t[]){2, 2, 0});
    tg_tensor *loss = tg_sum(tg_embedding(E, idx));
    tg_set(idx, 0, 1), tg_set(idx, 1, 1);
    ok(loss && tg_backward(loss) == 0, "embedding: backward after its indices changed");
    const double *g = tg_grad(E);
    ok(g && g[0] == 1 && g[1] == 1 && g[2] == 0 && g[3] == 0 && g[4] == 2 && g[5] == 2,
       "embedding: the gradient follows the indices of the last forward (row 2 twice)");
    tg_tape_free(T);
}

static void attributes(void)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *x = tg_param(t, "x", TG_F32, 3, SHAPE(2, 3, 4));
    tg_tensor *y = tg_layer_norm(x, NULL, tg_param(t, "b", TG_F32, 1, SHAPE(4)), 1e-5);
    tg_tensor *loss = tg_sum(tg_bmm(y, x, false, true));
    char buf[8192];
    tap_dot_text(t, loss, buf, sizeof buf);
    ok(strstr(buf, "layer_norm(eps=1e-05 no_gamma)") != NULL, "DOT: layer_norm's eps and no γ");
    ok(strstr(buf, "bmm(trans_b)") != NULL, "DOT: bmm's transpose");
    tg_tape_free(t);
}

int main(void)
{
    threads();
    embedding_indices();
    attributes();
    return tap_done();
}
