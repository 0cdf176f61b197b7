/* The convolutional network (seeds/cnn.h): each block in its own scope, so
 * `tapegrad dot cnn` draws one cluster per block. */
#include "cnn.h"

#include <stdio.h>
#include <string.h>

static tg_tensor *named(tg_tensor *t, const char *name)
{
    tg_set_name(t, name);
    return t;
}

/* A parameter (differentiated, given to the optimizer) or a buffer. */
static tg_tensor *param(cnn_model *m, const char *name, tg_dtype dt, int rank,
                        const size_t *shape)
{
    tg_tensor *t = tg_param(m->tape, name, dt, rank, shape);
    if (t && m->n_params < CNN_MAX_PARAMS)
        m->params[m->n_params++] = t;
    return t;
}

static tg_tensor *buffer(cnn_model *m, const char *name, tg_dtype dt, size_t c, double v)
{
    tg_tensor *t = tg_input(m->tape, name, dt, 1, (size_t[]){c});
    if (t && m->n_buffers < CNN_MAX_BUFFERS)
        m->buffers[m->n_buffers++] = t;
    tg_fill(t, v);
    return t;
}

/* conv 3×3 pad 1 (no bias) → batch norm → ReLU → max-pool 2, in scope "blockK". */
static tg_tensor *block(cnn_model *m, tg_rng *r, int k, tg_tensor *h, size_t cin, size_t cout)
{
    char name[32];
    tg_dtype dt = tg_dtype_of(h);
    snprintf(name, sizeof name, "conv%d.w", k);
    tg_tensor *w = param(m, name, dt, 4, (size_t[]){cout, cin, 3, 3});
    tg_init_he(w, r);
    snprintf(name, sizeof name, "bn%d.gamma", k);
    tg_tensor *gamma = param(m, name, dt, 1, (size_t[]){cout});
    tg_fill(gamma, 1);
    snprintf(name, sizeof name, "bn%d.beta", k);
    tg_tensor *beta = param(m, name, dt, 1, (size_t[]){cout});
    snprintf(name, sizeof name, "bn%d.running_mean", k);
    tg_tensor *rm = buffer(m, name, dt, cout, 0);
    snprintf(name, sizeof name, "bn%d.running_var", k);
    tg_tensor *rv = buffer(m, name, dt, cout, 1);

    snprintf(name, sizeof name, "block%d", k);
    tg_scope_push(m->tape, name);
    snprintf(name, sizeof name, "c%d", k);
    h = named(tg_conv2d(h, w, NULL, &(tg_conv2d_opts){.padding = {1, 1}}), name);
    snprintf(name, sizeof name, "n%d", k);
    h = named(tg_batch_norm(h, gamma, beta, rm, rv, 0.1, 1e-5), name);
    snprintf(name, sizeof name, "r%d", k);
    h = named(tg_relu(h), name);
    snprintf(name, sizeof name, "p%d", k);
    h = named(tg_max_pool2d(h, &(tg_pool2d_opts){.kernel = {2, 2}}), name);
    tg_scope_pop(m->tape);
    return h;
}

/* fc in→out (+ ReLU when relu), in scope `scope`. */
static tg_tensor *fc(cnn_model *m, tg_rng *r, const char *scope, tg_tensor *h, size_t in,
                     size_t out, bool relu)
{
    char name[32];
    tg_dtype dt = tg_dtype_of(h);
    snprintf(name, sizeof name, "%s.W", scope);
    tg_tensor *w = param(m, name, dt, 2, (size_t[]){in, out});
    tg_init_he(w, r);
    snprintf(name, sizeof name, "%s.b", scope);
    tg_tensor *b = param(m, name, dt, 1, (size_t[]){out});
    tg_scope_push(m->tape, scope);
    h = tg_add_bias(tg_matmul(h, w), b);
    if (relu)
        h = named(tg_relu(h), "h");
    tg_scope_pop(m->tape);
    return h;
}

int cnn_build(cnn_model *m, size_t batch, size_t side, size_t classes, tg_dtype dt,
              uint64_t seed, double dropout, tg_err *err)
{
    memset(m, 0, sizeof *m);
    if (side < 4 || side % 4 || batch < 1 || classes < 2) {
        if (err)
            snprintf(err->msg, sizeof err->msg, "cnn: images of %zux%zu pixels (a multiple of "
                     "4 is needed), batch %zu, %zu classes", side, side, batch, classes);
        return -1;
    }
    if (!(m->tape = tg_tape_new())) {
        if (err)
            snprintf(err->msg, sizeof err->msg, "cnn: out of memory");
        return -1;
    }
    tg_tape *t = m->tape;
    tg_rng r;
    tg_rng_seed(&r, seed);
    tg_tape_seed(t, seed ^ 0xd709u); /* the dropout masks */
    m->x = tg_input(t, "x", dt, 4, (size_t[]){batch, 1, side, side});
    m->labels = tg_input(t, "labels", TG_I32, 1, (size_t[]){batch});
    tg_tensor *h = block(m, &r, 1, m->x, 1, 32);
    h = block(m, &r, 2, h, 32, 64);
    size_t flat = 64 * (side / 4) * (side / 4);
    tg_scope_push(t, "head");
    h = named(tg_dropout(h, dropout), "drop");
    h = named(tg_reshape(h, 2, (size_t[]){batch, flat}), "flat");
    tg_scope_pop(t);
    h = fc(m, &r, "fc1", h, flat, 128, true);
    m->logits = named(fc(m, &r, "fc2", h, 128, classes, false), "logits");
    tg_scope_push(t, "loss");
    m->loss = named(tg_softmax_ce(m->logits, m->labels, TG_MEAN), "loss");
    tg_scope_pop(t);
    if (!m->loss) {
        if (err)
            snprintf(err->msg, sizeof err->msg, "cnn: %s", tg_tape_error(t));
        cnn_free(m);
        return -1;
    }
    return 0;
}

void cnn_free(cnn_model *m)
{
    tg_tape_free(m->tape);
    memset(m, 0, sizeof *m);
}
