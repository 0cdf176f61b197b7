/* The networks `tapegrad dot` draws: each seed document's network, built by
 * the same function as its derivation check builds it (seeds/nets.c), and a
 * plain MLP of given sizes.  Every layer records in its own scope, so the
 * DOT clusters show layers.  Batches are small (4 to 6 samples) so the value
 * and gradient summaries stay readable; the values are seeded, so every run
 * draws the same graph. */
#include "cli.h"

#include "cnn.h"        /* the convolutional network of train --model cnn */
#include "derivation.h" /* the seed_example: title and network */
#include "lm.h"         /* the language models of train --model gpt|gru */

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define SHAPE2(r, c) 2, (size_t[]){(size_t)(r), (size_t)(c)}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int fail(tg_err *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static tg_tensor *named(tg_tensor *t, const char *name)
{
    tg_set_name(t, name);
    return t;
}

/* ---- mlp:N0,N1,...,Nk -------------------------------------------------------- */

enum { MLP_MAX_LAYERS = 16, MLP_MAX_WIDTH = 65536, MLP_BATCH = 4 };
#define MLP_MAX_PARAMS 50000000.0

/* Parse "784,512,10" into sizes; the count, or -1 with a message. */
static int parse_sizes(const char *s, size_t *sizes, tg_err *err)
{
    int k = 0;
    double params = 0;
    const char *p = s;
    for (;;) {
        if (k == MLP_MAX_LAYERS)
            return fail(err, "mlp: at most %d layer sizes", MLP_MAX_LAYERS);
        if (*p < '0' || *p > '9')
            return fail(err, "mlp: expected a layer size at \"%s\" (e.g. mlp:784,512,10)", p);
        char *end;
        errno = 0;
        unsigned long v = strtoul(p, &end, 10);
        if (errno || v < 1 || v > MLP_MAX_WIDTH)
            return fail(err, "mlp: layer size %.*s is not in 1..%d", (int)(end - p), p,
                        MLP_MAX_WIDTH);
        sizes[k] = v;
        if (k)
            params += (double)sizes[k - 1] * (double)v + (double)v;
        k++;
        p = end;
        if (!*p)
            break;
        if (*p != ',')
            return fail(err, "mlp: unexpected \"%s\" (sizes are separated by commas)", p);
        p++;
    }
    if (k < 2)
        return fail(err, "mlp: give at least an input and an output size (e.g. mlp:784,10)");
    if (params > MLP_MAX_PARAMS)
        return fail(err, "mlp: %.0f parameters is more than this demo allows (%.0f)", params,
                    MLP_MAX_PARAMS);
    return k;
}

/* ReLU hidden layers, softmax cross-entropy on the last, samples as rows
 * (f32, He init, batch of 4 with labels 0, 1, 2, ...). */
static tg_tensor *mlp(tg_tape *tp, tg_rng *r, const size_t *sz, int k)
{
    tg_tensor *h = tg_input(tp, "x", TG_F32, SHAPE2(MLP_BATCH, sz[0]));
    tg_init_uniform(h, r, 0, 1);
    tg_tensor *lab = tg_input(tp, "labels", TG_I32, 1, (size_t[]){MLP_BATCH});
    for (size_t b = 0; b < MLP_BATCH; b++)
        tg_set(lab, b, (double)(b % sz[k - 1]));
    for (int l = 1; l < k; l++) {
        char wn[16], bn[16], zn[16], hn[16], sc[16];
        snprintf(wn, sizeof wn, "W%d", l);
        snprintf(bn, sizeof bn, "b%d", l);
        snprintf(zn, sizeof zn, l + 1 < k ? "z%d" : "logits", l);
        snprintf(hn, sizeof hn, "h%d", l);
        snprintf(sc, sizeof sc, "layer%d", l);
        tg_tensor *W = tg_param(tp, wn, TG_F32, SHAPE2(sz[l - 1], sz[l]));
        tg_tensor *b = tg_param(tp, bn, TG_F32, 1, &sz[l]);
        tg_init_he(W, r);
        tg_scope_push(tp, sc);
        h = named(tg_add_bias(tg_matmul(h, W), b), zn);
        if (l + 1 < k)
            h = named(tg_relu(h), hn);
        tg_scope_pop(tp);
    }
    tg_scope_push(tp, "loss");
    tg_tensor *loss = named(tg_softmax_ce(h, lab, TG_MEAN), "loss");
    tg_scope_pop(tp);
    return loss;
}

/* ---- cnn --------------------------------------------------------------------- */

/* The network of `tapegrad train --model cnn` (seeds/cnn.h) on a batch of
 * MLP_BATCH seeded 28×28 images, one DOT cluster per block. */
static int build_cnn(cli_net *net, tg_err *err)
{
    cnn_model c;
    if (cnn_build(&c, MLP_BATCH, 28, 10, TG_F32, 0x7a9e0ccu, 0.25, err))
        return -1;
    tg_rng rng;
    tg_rng_seed(&rng, 0x7a9e0cdu);
    tg_init_uniform(c.x, &rng, 0, 1);
    for (size_t b = 0; b < MLP_BATCH; b++)
        tg_set(c.labels, b, (double)b);
    if (tg_replay(c.tape)) {
        fail(err, "building cnn failed: %s", tg_tape_error(c.tape));
        cnn_free(&c);
        return -1;
    }
    net->tape = c.tape;
    net->loss = c.loss;
    snprintf(net->name, sizeof net->name, "cnn");
    snprintf(net->title, sizeof net->title, "cnn: conv-bn-ReLU-pool x2, dropout, fc 128, fc 10 "
             "(tapegrad train --model cnn), batch of %d", MLP_BATCH);
    return 0;
}

/* ---- gpt, gru ---------------------------------------------------------------- */

/* A tiny instance of a language model of `tapegrad train --model gpt|gru`
 * (seeds/lm.h): 2 layers, width 8 (2 heads), ctx 4, a vocabulary of 6, a
 * batch of 2 seeded sequences; one DOT cluster per block (gpt) or group of
 * steps (gru). */
static int build_lm(cli_net *net, int model, tg_err *err)
{
    lm_config c = {.model = model, .vocab = 6, .ctx = 4, .batch = 2, .layers = 2,
                   .heads = 2, .width = 8, .seed = 0x7a9e0e0u, .dtype = TG_F32};
    lm_model m;
    if (lm_build(&m, &c, err))
        return -1;
    tg_rng rng;
    tg_rng_seed(&rng, 0x7a9e0e1u);
    int32_t *x = tg_data_i32(m.x), *y = tg_data_i32(m.y);
    for (int i = 0; i < c.batch * c.ctx; i++)
        x[i] = (int32_t)tg_rng_below(&rng, (uint64_t)c.vocab);
    for (int i = 0; i < c.batch * c.ctx; i++) /* the next token, then a new draw */
        y[i] = (i + 1) % c.ctx ? x[i + 1] : (int32_t)tg_rng_below(&rng, (uint64_t)c.vocab);
    const char *name = model == LM_GPT ? "gpt" : "gru";
    if (tg_replay(m.tape)) {
        fail(err, "building %s failed: %s", name, tg_tape_error(m.tape));
        lm_free(&m);
        return -1;
    }
    net->tape = m.tape;
    net->loss = m.loss;
    snprintf(net->name, sizeof net->name, "%s", name);
    if (model == LM_GPT)
        snprintf(net->title, sizeof net->title, "gpt (tapegrad train --model gpt), tiny: %d "
                 "blocks, width %d, %d heads, ctx %d, vocabulary %d, batch of %d", c.layers,
                 c.width, c.heads, c.ctx, c.vocab, c.batch);
    else
        snprintf(net->title, sizeof net->title, "gru (tapegrad train --model gru), tiny: %d "
                 "layers, width %d, ctx %d, vocabulary %d, batch of %d", c.layers, c.width,
                 c.ctx, c.vocab, c.batch);
    return 0;
}

/* ---- the table --------------------------------------------------------------- */

typedef struct net_entry {
    const char *name, *alias;
    const seed_example *seed;
} net_entry;

static const net_entry NETS[] = {
    {"seed000", "fisher", &seed_fisher_mlp},
    {"seed001", "delta", &seed_delta_rule_mlp},
    {"seed002", "batch", &seed_batch_sigmoid_mlp},
    {"seed003", "biasunit", &seed_bias_unit_bce},
    {"seed004", "relusoftmax", &seed_relu_softmax_l2},
};
#define N_NETS (sizeof NETS / sizeof NETS[0])

void cli_net_list(FILE *f)
{
    for (size_t i = 0; i < N_NETS; i++)
        fprintf(f, "  %s, %-12s %s\n", NETS[i].name, NETS[i].alias, NETS[i].seed->title);
    fprintf(f, "  cnn                   the convolutional network of `tapegrad train --model "
               "cnn` (batch of %d)\n", MLP_BATCH);
    fprintf(f, "  gpt                   the transformer of `tapegrad train --model gpt`, tiny "
               "(2 blocks, width 8, ctx 4)\n");
    fprintf(f, "  gru                   the GRU language model of `tapegrad train --model gru`, "
               "tiny (2 layers, width 8, ctx 4)\n");
    fprintf(f, "  mlp:N0,N1,...,Nk      MLP of these layer sizes (ReLU hidden, softmax "
               "cross-entropy), e.g. mlp:784,512,10\n");
}

int cli_net_build(const char *name, cli_net *net, tg_err *err)
{
    memset(net, 0, sizeof *net);
    if (!name)
        return fail(err, "no network given"), -2;
    tg_rng rng;
    const net_entry *e = NULL;
    for (size_t i = 0; i < N_NETS; i++)
        if (!strcmp(name, NETS[i].name) || !strcmp(name, NETS[i].alias))
            e = &NETS[i];
    size_t sizes[MLP_MAX_LAYERS];
    int k = 0;
    if (!e && !strcmp(name, "cnn"))
        return build_cnn(net, err);
    if (!e && (!strcmp(name, "gpt") || !strcmp(name, "gru")))
        return build_lm(net, !strcmp(name, "gpt") ? LM_GPT : LM_GRU, err);
    if (!e) {
        if (strncmp(name, "mlp:", 4))
            return fail(err, "unknown network '%s'", name), -2;
        if ((k = parse_sizes(name + 4, sizes, err)) < 0)
            return -2;
    }
    net->tape = tg_tape_new();
    if (!net->tape)
        return fail(err, "out of memory");
    if (e) {
        tg_rng_seed(&rng, 0x7a9e000u + (uint64_t)(e - NETS));
        net->loss = e->seed->network(net->tape, &rng);
        snprintf(net->name, sizeof net->name, "%s", e->name);
        snprintf(net->title, sizeof net->title, "seed %s: %s", e->seed->id, e->seed->title);
    } else {
        tg_rng_seed(&rng, 0x7a9e0ffu);
        net->loss = mlp(net->tape, &rng, sizes, k);
        snprintf(net->name, sizeof net->name, "%.63s", name);
        snprintf(net->title, sizeof net->title, "%s: MLP, ReLU hidden layers, softmax "
                 "cross-entropy, batch of %d", name, MLP_BATCH);
    }
    const char *te = tg_tape_error(net->tape);
    if (!net->loss || te) {
        fail(err, "building %s failed: %s", name, te ? te : "out of memory");
        tg_tape_free(net->tape);
        net->tape = NULL;
        return -1;
    }
    return 0;
}
