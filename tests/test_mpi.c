/* Data parallelism over MPI (src/dist/mpi.c), run by tools/meson.build as
 * `mpirun --oversubscribe -np 2 test_mpi` (tests/mpi_cli.sh):
 *  - rank and size, tg_mpi_broadcast from rank 0;
 *  - tg_batcher_next_shard: the ranks' shares make up the global batch;
 *  - tg_mpi_allreduce_grads: 2 ranks with batch B/2 give the gradients of
 *    one process with batch B to 1e-6 relative in f32 (1e-12 in f64), and
 *    so the parameters after SGD steps; the ranks' parameters stay
 *    bit-identical; a tensor larger than a 4 MiB bucket averages right;
 *  - errors (bad lists) are refused with a message.
 * Built without MPI: the calls fail with "built without MPI" (tested), and
 * tg_mpi_rank/size answer 0 and 1.
 * `test_mpi compare A B`: whether two model files of the 784-32-10 MLP
 * agree to 1e-6 relative (exit 0) for tests/mpi_cli.sh. */
#include "tap.h"
#include "tapegrad.h"

#include <math.h>
#include <stdlib.h>

static int rank, size;

/* TAP from rank 0 only; a failure on another rank is counted there. */
static void check(bool cond, const char *what)
{
    double bad = cond ? 0 : 1;
    if (size > 1)
        tg_mpi_sum(&bad, 1, NULL);
    if (rank == 0)
        ok(bad == 0, "%s", what);
    else
        tap_count++, tap_failed += bad != 0;
}

/* FNV-1a of the bytes, reduced to 26 bits (so that h² is exact). */
static double hash(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211u;
    return (double)(h >> 38);
}

/* Whether every rank holds these bytes: Σh = size·h and Σh² = size·h². */
static bool same_everywhere(const void *p, size_t n)
{
    double h = hash(p, n), v[2] = {h, h * h};
    tg_mpi_sum(v, 2, NULL);
    return v[0] == size * h && v[1] == size * h * h;
}

typedef struct net {
    tg_tape *t;
    tg_tensor *x, *y, *p[4], *loss;
} net;

/* in 20, hidden 16, 5 classes, batch rows, seeded weights */
static void mlp(net *n, size_t rows, tg_dtype dt)
{
    n->t = tg_tape_new();
    n->x = tg_input(n->t, "x", dt, 2, SHAPE(rows, 20));
    n->y = tg_input(n->t, "y", TG_I32, 1, SHAPE(rows));
    n->p[0] = tg_param(n->t, "W1", dt, 2, SHAPE(20, 16));
    n->p[1] = tg_param(n->t, "b1", dt, 1, SHAPE(16));
    n->p[2] = tg_param(n->t, "W2", dt, 2, SHAPE(16, 5));
    n->p[3] = tg_param(n->t, "b2", dt, 1, SHAPE(5));
    tg_rng r;
    tg_rng_seed(&r, 42);
    tg_init_he(n->p[0], &r);
    tg_init_he(n->p[2], &r);
    tg_init_uniform(n->p[1], &r, -0.1, 0.1);
    tg_init_uniform(n->p[3], &r, -0.1, 0.1);
    tg_tensor *h = tg_relu(tg_add_bias(tg_matmul(n->x, n->p[0]), n->p[1]));
    n->loss = tg_softmax_ce(tg_add_bias(tg_matmul(h, n->p[2]), n->p[3]), n->y, TG_MEAN);
}

/* ||a − b|| / ||b|| over the gradients (grad = true) or values of p[0..3] */
static double rel_diff(net *a, net *b, bool grad)
{
    double d = 0, s = 0;
    for (int k = 0; k < 4; k++)
        for (size_t i = 0; i < tg_size(a->p[k]); i++) {
            double u = grad ? tg_grad_get(a->p[k], i) : tg_get(a->p[k], i);
            double v = grad ? tg_grad_get(b->p[k], i) : tg_get(b->p[k], i);
            d += (u - v) * (u - v), s += v * v;
        }
    return sqrt(d / s);
}

static void data_parallel(tg_dtype dt, double tol)
{
    const size_t B = 32;
    tg_dataset d;
    tg_err err;
    tg_dataset_new(&d, 256, 20, 5, &err);
    tg_rng r;
    tg_rng_seed(&r, 7);
    for (size_t i = 0; i < d.n; i++) {
        d.y[i] = (int32_t)tg_rng_below(&r, 5);
        for (size_t j = 0; j < 20; j++)
            d.x[i * 20 + j] = (float)(tg_rng_normal(&r) + (j % 5 == (size_t)d.y[i]));
    }
    net one, part; /* one process with batch B; this rank with B/size */
    mlp(&one, B, dt);
    mlp(&part, B / (size_t)size, dt);
    tg_batcher b1, b2;
    tg_batcher_init(&b1, &d, B, true, true, 3, &err);
    tg_batcher_init(&b2, &d, B, true, true, 3, &err);
    tg_optim *o1 = tg_sgd_new(one.t, 4, one.p, &(tg_sgd_opts){.lr = 0.1, .momentum = 0.9});
    tg_optim *o2 = tg_sgd_new(part.t, 4, part.p, &(tg_sgd_opts){.lr = 0.1, .momentum = 0.9});
    bool shares = true, steps_ok = true;
    double worst = 0;
    for (int step = 0; step < 20; step++) {
        long k1 = tg_batcher_next(&b1, one.x, one.y);
        long k2 = tg_batcher_next_shard(&b2, part.x, part.y, rank, size);
        if (k1 == 0 && k2 == 0) { /* the end of an epoch (8 steps): both reshuffle */
            k1 = tg_batcher_next(&b1, one.x, one.y);
            k2 = tg_batcher_next_shard(&b2, part.x, part.y, rank, size);
        }
        if (k1 <= 0 || k2 != (long)B / size) {
            steps_ok = false;
            break;
        }
        /* this rank's rows are rows [rank·B/size, ...) of the global batch */
        for (size_t i = 0; i < B / (size_t)size; i++)
            shares &= tg_data_i32(part.y)[i] == tg_data_i32(one.y)[(size_t)rank * B / size + i];
        tg_zero_grad(one.t);
        tg_zero_grad(part.t);
        steps_ok &= !tg_replay(one.t) && !tg_backward(one.loss) && !tg_replay(part.t) &&
                    !tg_backward(part.loss) && !tg_mpi_allreduce_grads(part.t, 4, part.p);
        worst = fmax(worst, rel_diff(&part, &one, true));
        steps_ok &= !tg_optim_step(o1) && !tg_optim_step(o2);
    }
    char what[160];
    snprintf(what, sizeof what, "%s: 20 steps (2.5 epochs) of %d ranks x batch %zu ran", tg_dtype_name(dt),
             size, B / (size_t)size);
    check(steps_ok, what);
    snprintf(what, sizeof what, "%s: each rank's share is its slice of the global batch",
             tg_dtype_name(dt));
    check(shares, what);
    snprintf(what, sizeof what, "%s: averaged gradients = batch-%zu gradients to %g relative "
             "(worst %.2g)", tg_dtype_name(dt), B, tol, worst);
    check(worst <= tol, what);
    double pd = rel_diff(&part, &one, false);
    snprintf(what, sizeof what, "%s: parameters after 20 SGD steps agree to %g (%.2g)",
             tg_dtype_name(dt), tol, pd);
    check(pd <= tol, what);
    bool same = true;
    for (int k = 0; k < 4; k++)
        same &= same_everywhere(tg_data(part.p[k]),
                                tg_size(part.p[k]) * tg_dtype_size(tg_dtype_of(part.p[k])));
    snprintf(what, sizeof what, "%s: the ranks' parameters are bit-identical",
             tg_dtype_name(dt));
    check(same, what);
    tg_optim_free(o1);
    tg_optim_free(o2);
    tg_batcher_free(&b1);
    tg_batcher_free(&b2);
    tg_tape_free(one.t);
    tg_tape_free(part.t);
    tg_dataset_free(&d);
}

/* Tensors of 1.5 M and 3 elements around 4 MiB buckets: loss = Σ w·c with c
 * = rank + 1 + (i mod 3), so the mean gradient is (size+1)/2 + (i mod 3);
 * an f64 parameter u gets such a gradient by hand. */
static void buckets(void)
{
    tg_tape *t = tg_tape_new();
    size_t n = 1500000;
    tg_tensor *w = tg_param(t, "w", TG_F32, 1, SHAPE(n));
    tg_tensor *v = tg_param(t, "v", TG_F32, 1, SHAPE(3));
    tg_tensor *u = tg_param(t, "u", TG_F64, 1, SHAPE(5));
    tg_tensor *c = tg_input(t, "c", TG_F32, 1, SHAPE(n));
    tg_tensor *cv = tg_input(t, "cv", TG_F32, 1, SHAPE(3));
    float *cd = tg_data_f32(c);
    for (size_t i = 0; i < n; i++)
        cd[i] = (float)(rank + 1 + (int)(i % 3));
    for (size_t i = 0; i < 3; i++)
        tg_data_f32(cv)[i] = (float)(rank + 1 + (int)(i % 3));
    tg_tensor *loss = tg_add(tg_sum(tg_mul(w, c)), tg_sum(tg_mul(v, cv)));
    bool ran = loss && !tg_backward(loss);
    double *gu = tg_grad(u); /* not reached by the loss: its gradient set by hand */
    for (size_t i = 0; ran && gu && i < 5; i++)
        gu[i] = rank + 1 + (int)(i % 3);
    ran = ran && gu && !tg_mpi_allreduce_grads(t, 0, NULL);
    check(ran, "allreduce of every parameter (n = 0): f32 across buckets, and f64");
    bool right = ran;
    double mean = (size + 1) / 2.0;
    for (size_t i = 0; right && i < n; i++)
        right = ((float *)tg_grad(w))[i] == (float)(mean + (double)(i % 3));
    for (size_t i = 0; right && i < 3; i++)
        right = ((float *)tg_grad(v))[i] == (float)(mean + (double)(i % 3));
    for (size_t i = 0; right && i < 5; i++)
        right = ((double *)tg_grad(u))[i] == mean + (double)(i % 3);
    check(right, "every element is the mean over the ranks");
    tg_tape_free(t);
}

static void refusals(void)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *w = tg_param(t, "w", TG_F32, 1, SHAPE(4));
    tg_tensor *lab = tg_input(t, "lab", TG_I32, 1, SHAPE(4));
    tg_tensor *x = tg_input(t, "x", TG_F32, 1, SHAPE(4));
    check(tg_mpi_allreduce_grads(t, 1, NULL) < 0 &&
              strstr(tg_tape_error(t), "mpi_allreduce_grads"),
          "allreduce_grads of a NULL list: refused, named");
    tg_tape_clear_error(t);
    check(tg_mpi_allreduce_grads(t, 1, &lab) < 0 && strstr(tg_tape_error(t), "i32"),
          "allreduce_grads of an i32 tensor: refused");
    tg_tape_clear_error(t);
    check(tg_mpi_allreduce_grads(t, 1, &x) < 0 &&
              strstr(tg_tape_error(t), "requires no gradient"),
          "allreduce_grads of an input: refused");
    tg_tape_clear_error(t);
    check(tg_mpi_broadcast(t, 1, &lab) < 0, "broadcast of an i32 tensor: refused");
    tg_tape_clear_error(t);
    /* broadcast: rank 0's values everywhere */
    tg_fill(w, rank + 1);
    check(!tg_mpi_broadcast(t, 1, &w) && tg_get(w, 3) == 1, "broadcast gives rank 0's values");
    tg_tape_free(t);
}

static int compare(const char *a, const char *b)
{
    tg_tape *t[2];
    tg_tensor *p[2][4];
    const char *name[4] = {"W1", "b1", "W2", "b2"};
    size_t shape[4][2] = {{784, 32}, {32, 0}, {32, 10}, {10, 0}};
    for (int f = 0; f < 2; f++) {
        t[f] = tg_tape_new();
        for (int k = 0; k < 4; k++)
            p[f][k] = tg_param(t[f], name[k], TG_F32, shape[k][1] ? 2 : 1, shape[k]);
        if (tg_load(t[f], f ? b : a, 4, p[f])) {
            printf("%s\n", tg_tape_error(t[f]));
            for (int k = 0; k <= f; k++)
                tg_tape_free(t[k]);
            return 2;
        }
    }
    double d = 0, s = 0;
    bool same = true;
    for (int k = 0; k < 4; k++)
        for (size_t i = 0; i < tg_size(p[0][k]); i++) {
            double u = tg_get(p[0][k], i), v = tg_get(p[1][k], i);
            d += (u - v) * (u - v), s += v * v;
            same &= u == v;
        }
    printf("relative difference %.3g%s\n", sqrt(d / s), same ? " (bit-identical)" : "");
    tg_tape_free(t[0]);
    tg_tape_free(t[1]);
    return sqrt(d / s) <= 1e-6 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 4 && !strcmp(argv[1], "compare"))
        return compare(argv[2], argv[3]);
    tg_err err;
    if (!tg_have_mpi()) {
        ok(tg_mpi_init(&err) < 0 && strstr(err.msg, "built without MPI"),
           "without MPI: tg_mpi_init says \"built without MPI\"");
        ok(tg_mpi_rank() == 0 && tg_mpi_size() == 1, "rank 0 of 1");
        tg_tape *t = tg_tape_new();
        tg_tensor *w = tg_param(t, "w", TG_F32, 1, SHAPE(4));
        ok(tg_mpi_allreduce_grads(t, 1, &w) < 0 && strstr(tg_tape_error(t), "without MPI"),
           "allreduce_grads: \"built without MPI\"");
        tg_tape_clear_error(t);
        ok(tg_mpi_broadcast(t, 1, &w) < 0 && strstr(tg_tape_error(t), "without MPI"),
           "broadcast: \"built without MPI\"");
        double v = 1;
        ok(tg_mpi_sum(&v, 1, &err) < 0 && strstr(err.msg, "without MPI"), "sum: likewise");
        tg_tape_free(t);
        return tap_done();
    }
    if (tg_mpi_init(&err)) {
        printf("Bail out! %s\n", err.msg);
        return 1;
    }
    rank = tg_mpi_rank();
    size = tg_mpi_size();
    tg_set_threads(1);
    check(size >= 1 && rank >= 0 && rank < size, "rank and size");
    if (rank == 0 && size < 2)
        printf("# run under mpirun -np 2 to test more than one rank\n");
    refusals();
    data_parallel(TG_F32, 1e-6);
    data_parallel(TG_F64, 1e-12);
    buckets();
    int st = rank == 0 ? tap_done() : tap_failed != 0;
    tg_mpi_finalize();
    return st;
}
