/* Separate tapes used from several threads at once are safe: each of
 * NETS threads builds its own network, trains it (mini-batches, replay,
 * backward, Adam steps; the GEMMs are large enough to use the shared thread
 * pool, tg_set_threads(2)), writes its DOT, makes a mistake, saves the model
 * and loads it into a second network, all at the same time as the others.
 * Every result must be bit-identical to the same work done by one thread
 * alone.  The CI also runs this test under ThreadSanitizer. */
#include "tap.h"
#include "tapegrad.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define NETS 4
#define STEPS 20
#define BATCH 64
#define IN 128
#define HID 96
#define OUT 10
#define SAMPLES 256

static char dir[64];

/* What one network's work produced, compared bit for bit. */
typedef struct result {
    double loss[STEPS];
    double reloaded_loss;   /* the loss of the reloaded network on the last batch */
    unsigned char *params;  /* the trained parameters' bytes, in order */
    size_t params_bytes;
    uint64_t dot_hash;      /* FNV-1a of its DOT text */
    char error[160];        /* the message of its deliberate mistake */
    int failed;             /* a step that should have worked did not */
} result;

typedef struct net {
    tg_tape *t;
    tg_tensor *x, *y, *W1, *b1, *W2, *b2, *loss;
} net;

static void net_build(net *n, tg_dtype dt, int id)
{
    char name[32];
    n->t = tg_tape_new();
    n->x = tg_input(n->t, "x", dt, 2, (size_t[]){BATCH, IN});
    n->y = tg_input(n->t, "y", TG_I32, 1, (size_t[]){BATCH});
    snprintf(name, sizeof name, "W1_net%d", id);
    n->W1 = tg_param(n->t, name, dt, 2, (size_t[]){IN, HID});
    n->b1 = tg_param(n->t, "b1", dt, 1, (size_t[]){HID});
    n->W2 = tg_param(n->t, "W2", dt, 2, (size_t[]){HID, OUT});
    n->b2 = tg_param(n->t, "b2", dt, 1, (size_t[]){OUT});
    tg_tensor *h = tg_tanh(tg_add_bias(tg_matmul(n->x, n->W1), n->b1));
    n->loss = tg_softmax_ce(tg_add_bias(tg_matmul(h, n->W2), n->b2), n->y, TG_MEAN);
}

static uint64_t fnv(const void *p, size_t n, uint64_t h)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211u;
    return h;
}

/* The whole life of network `id`; f64 for odd ids. */
static void work(int id, result *r)
{
    memset(r, 0, sizeof *r);
    tg_dtype dt = id & 1 ? TG_F64 : TG_F32;
    net n;
    net_build(&n, dt, id);
    if (!n.loss) {
        r->failed = 1;
        return;
    }
    tg_rng rng;
    tg_rng_seed(&rng, 1000 + (uint64_t)id);
    tg_init_xavier(n.W1, &rng);
    tg_init_xavier(n.W2, &rng);

    /* a data set of its own, with a seeded batcher */
    tg_dataset d;
    tg_batcher b;
    tg_err err;
    if (tg_dataset_new(&d, SAMPLES, IN, OUT, &err)) {
        r->failed = 1;
        return;
    }
    for (size_t i = 0; i < d.n * d.dim; i++)
        d.x[i] = (float)tg_rng_normal(&rng);
    for (size_t i = 0; i < d.n; i++)
        d.y[i] = (int32_t)tg_rng_below(&rng, OUT);
    tg_batcher_init(&b, &d, BATCH, true, true, 77 + (uint64_t)id, &err);

    tg_adam_opts ao = {.lr = 0.01};
    tg_optim *opt = tg_adam_new(n.t, 0, NULL, &ao);
    for (int s = 0; s < STEPS && opt; s++) {
        if (tg_batcher_next(&b, n.x, n.y) <= 0) /* 4 batches an epoch */
            tg_batcher_next(&b, n.x, n.y);
        tg_zero_grad(n.t);
        if (tg_replay(n.t) || tg_backward(n.loss) || tg_optim_step(opt))
            r->failed = 1;
        r->loss[s] = tg_item(n.loss);
    }
    tg_optim_free(opt);
    if (!opt)
        r->failed = 1;

    /* its graph as DOT, in memory */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    tg_dot_opts o = {.values = true, .grads = true, .backward = true};
    if (!f || tg_dot_write(f, n.t, n.loss, &o))
        r->failed = 1;
    if (f)
        fclose(f);
    r->dot_hash = fnv(text, len, 1469598103934665603u);
    free(text);

    /* a mistake: the message is its own */
    if (tg_matmul(n.W1, n.W1) || !tg_tape_error(n.t))
        r->failed = 1;
    else
        snprintf(r->error, sizeof r->error, "%s", tg_tape_error(n.t));
    tg_tape_clear_error(n.t);

    /* save, load into a second network, compare */
    tg_tensor *params[4] = {n.W1, n.b1, n.W2, n.b2};
    for (int i = 0; i < 4; i++)
        r->params_bytes += tg_size(params[i]) * tg_dtype_size(dt);
    r->params = malloc(r->params_bytes);
    size_t at = 0;
    for (int i = 0; i < 4 && r->params; i++) {
        size_t bytes = tg_size(params[i]) * tg_dtype_size(dt);
        memcpy(r->params + at, tg_data(params[i]), bytes);
        at += bytes;
    }
    char path[128];
    snprintf(path, sizeof path, "%s/net%d.tgm", dir, id);
    net m;
    net_build(&m, dt, id);
    if (tg_save(n.t, path, 0, NULL) || tg_load(m.t, path, 0, NULL))
        r->failed = 1;
    for (int i = 0; i < 4; i++) {
        tg_tensor *q[4] = {m.W1, m.b1, m.W2, m.b2};
        size_t bytes = tg_size(params[i]) * tg_dtype_size(dt);
        if (memcmp(tg_data(q[i]), tg_data(params[i]), bytes))
            r->failed = 1;
    }
    tg_copy_in(m.x, tg_data(n.x), dt, BATCH * IN);
    tg_copy_in(m.y, tg_data(n.y), TG_I32, BATCH);
    if (tg_replay(m.t) || tg_replay(n.t))
        r->failed = 1;
    r->reloaded_loss = tg_item(m.loss);
    if (r->reloaded_loss != tg_item(n.loss))
        r->failed = 1;
    unlink(path);

    tg_batcher_free(&b);
    tg_dataset_free(&d);
    tg_tape_free(m.t);
    tg_tape_free(n.t);
}

typedef struct job {
    int id;
    result r;
} job;

static void *run(void *arg)
{
    job *j = arg;
    work(j->id, &j->r);
    return NULL;
}

static int same(const result *a, const result *b)
{
    return !memcmp(a->loss, b->loss, sizeof a->loss) &&
           !memcmp(&a->reloaded_loss, &b->reloaded_loss, sizeof a->reloaded_loss) &&
           a->params_bytes == b->params_bytes && a->params && b->params &&
           !memcmp(a->params, b->params, a->params_bytes) && a->dot_hash == b->dot_hash &&
           !strcmp(a->error, b->error);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/tg-threads-XXXXXX");
    if (!mkdtemp(dir)) {
        printf("Bail out! cannot create a temporary directory\n");
        return 1;
    }
    ok(tg_set_threads(2) == 0, "GEMM and elementwise ops may use 2 threads");

    /* the reference: each network's work alone, one after the other */
    result ref[NETS];
    for (int i = 0; i < NETS; i++) {
        work(i, &ref[i]);
        ok(!ref[i].failed, "network %d (%s) alone: trained, saved, reloaded", i,
           i & 1 ? "f64" : "f32");
    }
    ok(ref[0].loss[STEPS - 1] < ref[0].loss[0], "network 0 learns (loss %.4f -> %.4f)",
       ref[0].loss[0], ref[0].loss[STEPS - 1]);
    has_str(ref[1].error, "matmul: inner dimensions differ (128x96 · 128x96)",
            "its mistake has its own message");

    /* the same work, all networks at once; twice */
    for (int round = 0; round < 2; round++) {
        job jobs[NETS];
        pthread_t tid[NETS];
        int started = 0;
        for (int i = 0; i < NETS; i++) {
            jobs[i].id = i;
            if (pthread_create(&tid[i], NULL, run, &jobs[i]) == 0)
                started++;
            else
                jobs[i].id = -1;
        }
        ok(started == NETS, "round %d: %d threads started", round + 1, started);
        for (int i = 0; i < NETS; i++)
            if (jobs[i].id >= 0)
                pthread_join(tid[i], NULL);
        for (int i = 0; i < NETS; i++) {
            if (jobs[i].id < 0)
                continue;
            ok(!jobs[i].r.failed && same(&jobs[i].r, &ref[i]),
               "round %d, network %d: losses, parameters, reload, DOT and message identical "
               "to the single-threaded run", round + 1, i);
            free(jobs[i].r.params);
        }
    }
    for (int i = 0; i < NETS; i++)
        free(ref[i].params);
    rmdir(dir);
    return tap_done();
}
