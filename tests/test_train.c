/* A training loop built once and replayed: after the first step a step
 * (next batch, replay, zero_grad, backward, optimizer step) records nothing
 * and allocates nothing.  Proven three ways: the tape's node count and
 * arena statistics, the library's allocation counter, and (in builds
 * without sanitizers, on glibc) a count of every malloc in the process. */
#define _GNU_SOURCE
#include "tap.h"
#include "tapegrad.h"

#include <stdlib.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#endif

/* Count every malloc/calloc/realloc of the process by interposing glibc's
 * entry points (the allocator itself is glibc's, called by its other name). */
#if defined(__GLIBC__) && !defined(SANITIZED)
#define COUNT_MALLOC 1
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
static volatile unsigned long mallocs;
void *malloc(size_t n)
{
    mallocs++;
    return __libc_malloc(n);
}
void *calloc(size_t n, size_t s)
{
    mallocs++;
    return __libc_calloc(n, s);
}
void *realloc(void *p, size_t n)
{
    mallocs++;
    return __libc_realloc(p, n);
}
#endif

static void run(tg_dtype dt, bool adam, int threads)
{
    tg_set_threads(threads);
    tg_err err;
    tg_dataset d;
    ok(tg_dataset_new(&d, 200, 30, 4, &err) == 0, "a data set of 200 samples");
    tg_rng r;
    tg_rng_seed(&r, 3);
    for (size_t i = 0; i < 200; i++) {
        d.y[i] = (int32_t)(i % 4);
        for (size_t j = 0; j < 30; j++)
            d.x[i * 30 + j] = (float)(tg_rng_normal(&r) + (j % 4 == i % 4));
    }
    tg_tape *t = tg_tape_new();
    tg_tensor *x = tg_input(t, "x", dt, 2, (size_t[]){16, 30});
    tg_tensor *y = tg_input(t, "y", TG_I32, 1, (size_t[]){16});
    tg_tensor *W1 = tg_param(t, "W1", dt, 2, (size_t[]){30, 64});
    tg_tensor *b1 = tg_param(t, "b1", dt, 1, (size_t[]){64});
    tg_tensor *W2 = tg_param(t, "W2", dt, 2, (size_t[]){64, 4});
    tg_tensor *b2 = tg_param(t, "b2", dt, 1, (size_t[]){4});
    tg_init_he(W1, &r);
    tg_init_he(W2, &r);
    tg_tensor *h = tg_relu(tg_add_bias(tg_matmul(x, W1), b1));
    tg_tensor *loss = tg_softmax_ce(tg_add_bias(tg_matmul(h, W2), b2), y, TG_MEAN);
    tg_optim *opt = adam ? tg_adam_new(t, 0, NULL, &(tg_adam_opts){.lr = 1e-2})
                         : tg_sgd_new(t, 0, NULL, &(tg_sgd_opts){.lr = 0.1, .momentum = 0.9});
    tg_batcher b;
    tg_batcher_init(&b, &d, 16, true, true, 1, &err);
    const char *what = adam ? "Adam" : "SGD+momentum";
    ok(loss && opt, "%s %s, %d thread(s): graph and optimizer built", tg_dtype_name(dt), what,
       threads);

    /* one step: the only one allowed to allocate (gradient buffers) */
    tg_batcher_next(&b, x, y);
    tg_zero_grad(t);
    tg_replay(t);
    tg_backward(loss);
    tg_optim_step(opt);
    double first = tg_item(loss);

    tg_tape_stats s0, s1;
    tg_tape_get_stats(t, &s0);
    int64_t lib0 = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
#ifdef COUNT_MALLOC
    unsigned long m0 = mallocs;
#endif
    double last = 0;
    bool fine = true;
    for (int step = 0; step < 300; step++) { /* crosses several epochs */
        if (tg_batcher_next(&b, x, y) <= 0)
            continue; /* end of an epoch: the next call reshuffles */
        tg_zero_grad(t);
        fine &= tg_replay(t) == 0 && tg_backward(loss) == 0 && tg_optim_step(opt) == 0;
        last = tg_item(loss);
    }
    tg_tape_get_stats(t, &s1);
    ok(fine, "300 steps succeed (%s)", tg_tape_error(t) ? tg_tape_error(t) : "no error");
    ok(s1.nodes == s0.nodes && s1.graph_bytes == s0.graph_bytes &&
           s1.graph_chunks == s0.graph_chunks && s1.leaf_bytes == s0.leaf_bytes,
       "the steps record nothing: %zu nodes, %zu graph bytes, %zu leaf bytes", s1.nodes,
       s1.graph_bytes, s1.leaf_bytes);
    lib0 = tg_test_control(TG_TEST_ALLOC_COUNT, 0) - lib0;
    ok(lib0 == 0, "the library allocates nothing (%lld allocations)", (long long)lib0);
#ifdef COUNT_MALLOC
    ok(mallocs == m0, "no malloc/calloc/realloc anywhere in the process (%lu)", mallocs - m0);
#else
    printf("ok %d - # SKIP process-wide malloc count (sanitizer build or not glibc)\n",
           ++tap_count);
#endif
    ok(last < first, "and it learns: loss %.4f -> %.4f", first, last);
    tg_batcher_free(&b);
    tg_optim_free(opt);
    tg_tape_free(t);
    tg_dataset_free(&d);
}

/* The same training, run with 1 and with 2 threads, must end bit-identical:
 * the sizes are large enough that GEMM, the elementwise ops and the
 * optimizer all split their work over the pool. */
static void same_for_any_thread_count(void)
{
    float *result[2] = {NULL, NULL};
    size_t n_w = 128 * 512;
    for (int th = 1; th <= 2; th++) {
        tg_set_threads(th);
        tg_tape *t = tg_tape_new();
        tg_rng r;
        tg_rng_seed(&r, 9);
        tg_tensor *x = tg_input(t, "x", TG_F32, 2, (size_t[]){256, 128});
        tg_tensor *y = tg_input(t, "y", TG_I32, 1, (size_t[]){256});
        tg_tensor *W1 = tg_param(t, "W1", TG_F32, 2, (size_t[]){128, 512});
        tg_tensor *b1 = tg_param(t, "b1", TG_F32, 1, (size_t[]){512});
        tg_tensor *W2 = tg_param(t, "W2", TG_F32, 2, (size_t[]){512, 10});
        tg_init_he(W1, &r);
        tg_init_he(W2, &r);
        tg_init_normal(x, &r, 0, 1);
        for (size_t i = 0; i < 256; i++)
            tg_set(y, i, (double)(i % 10));
        tg_tensor *loss =
            tg_softmax_ce(tg_matmul(tg_relu(tg_add_bias(tg_matmul(x, W1), b1)), W2), y, TG_MEAN);
        tg_optim *opt = tg_adam_new(t, 0, NULL, &(tg_adam_opts){.lr = 1e-3});
        for (int s = 0; s < 5; s++) {
            tg_zero_grad(t);
            tg_replay(t);
            tg_backward(loss);
            tg_optim_step(opt);
        }
        result[th - 1] = malloc(n_w * sizeof(float));
        tg_copy_out(W1, result[th - 1], TG_F32, n_w);
        tg_optim_free(opt);
        tg_tape_free(t);
    }
    ok(result[0] && result[1] && !memcmp(result[0], result[1], n_w * sizeof(float)),
       "5 training steps with 1 and with 2 threads give bit-identical weights");
    free(result[0]);
    free(result[1]);
}

/* A small convolutional network using every op of a CNN (conv2d with and
 * without bias, grouped, batch_norm, leaky_relu, max and average pooling,
 * dropout, reshape to rows): a replayed step (forward, backward, Adam)
 * records and allocates nothing, it learns, and 1 and 2 threads give
 * bit-identical weights (the dropout masks do not depend on threads). */
static tg_tensor *cnn_step_net(tg_tape *t, tg_tensor **x, tg_tensor **y, tg_tensor **w_out)
{
    tg_rng r;
    tg_rng_seed(&r, 4);
    tg_tape_seed(t, 11);
    *x = tg_input(t, "x", TG_F32, 4, (size_t[]){16, 1, 8, 8});
    *y = tg_input(t, "y", TG_I32, 1, (size_t[]){16});
    tg_tensor *w1 = tg_param(t, "w1", TG_F32, 4, (size_t[]){8, 1, 3, 3});
    tg_tensor *b1 = tg_param(t, "b1", TG_F32, 1, (size_t[]){8});
    tg_tensor *w2 = tg_param(t, "w2", TG_F32, 4, (size_t[]){8, 4, 3, 3});
    tg_tensor *g = tg_param(t, "gamma", TG_F32, 1, (size_t[]){8});
    tg_tensor *be = tg_param(t, "beta", TG_F32, 1, (size_t[]){8});
    tg_tensor *rm = tg_input(t, "rmean", TG_F32, 1, (size_t[]){8});
    tg_tensor *rv = tg_input(t, "rvar", TG_F32, 1, (size_t[]){8});
    tg_tensor *W = tg_param(t, "W", TG_F32, 2, (size_t[]){8 * 2 * 2, 4});
    tg_init_he(w1, &r);
    tg_init_he(w2, &r);
    tg_init_he(W, &r);
    tg_fill(g, 1);
    tg_fill(rv, 1);
    tg_tensor *h = tg_leaky_relu(tg_conv2d(*x, w1, b1, &(tg_conv2d_opts){.padding = {1, 1}}), 0.1);
    h = tg_max_pool2d(h, &(tg_pool2d_opts){.kernel = {2, 2}});                /* 4x4 */
    h = tg_conv2d(h, w2, NULL, &(tg_conv2d_opts){.padding = {1, 1}, .groups = 2});
    h = tg_relu(tg_batch_norm(h, g, be, rm, rv, 0.1, 1e-5));
    h = tg_avg_pool2d(h, &(tg_pool2d_opts){.kernel = {2, 2}});                /* 2x2 */
    h = tg_reshape(tg_dropout(h, 0.2), 2, (size_t[]){16, 8 * 2 * 2});
    *w_out = w2;
    return tg_softmax_ce(tg_matmul(h, W), *y, TG_MEAN);
}

static void cnn_steps(void)
{
    tg_err err;
    tg_dataset d;
    tg_dataset_new(&d, 160, 64, 4, &err);
    d.rows = d.cols = 8;
    tg_rng r;
    tg_rng_seed(&r, 5);
    for (size_t i = 0; i < 160; i++) { /* class c: a bright quadrant c */
        d.y[i] = (int32_t)(i % 4);
        for (size_t j = 0; j < 64; j++) {
            size_t q = (j / 8 >= 4) * 2 + (j % 8 >= 4);
            d.x[i * 64 + j] = (float)(tg_rng_normal(&r) * 0.5 + (q == i % 4));
        }
    }
    float *w_after[2] = {NULL, NULL};
    for (int th = 1; th <= 2; th++) {
        tg_set_threads(th);
        tg_tape *t = tg_tape_new();
        tg_tensor *x, *y, *w2;
        tg_tensor *loss = cnn_step_net(t, &x, &y, &w2);
        tg_optim *opt = tg_adam_new(t, 0, NULL, &(tg_adam_opts){.lr = 1e-2});
        tg_batcher b;
        tg_batcher_init(&b, &d, 16, true, true, 1, &err);
        ok(loss && opt, "cnn, %d thread(s): built (%s)", th,
           tg_tape_error(t) ? tg_tape_error(t) : "no error");
        if (!loss || !opt)
            return;
        tg_batcher_next(&b, x, y);
        tg_zero_grad(t);
        tg_replay(t);
        tg_backward(loss);
        tg_optim_step(opt);
        double first = tg_item(loss), sum = 0;
        tg_tape_stats s0, s1;
        tg_tape_get_stats(t, &s0);
        int64_t lib0 = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
#ifdef COUNT_MALLOC
        unsigned long m0 = mallocs;
#endif
        bool fine = true;
        int n = 0;
        for (int step = 0; step < 100; step++) {
            if (tg_batcher_next(&b, x, y) <= 0)
                continue;
            tg_zero_grad(t);
            fine &= tg_replay(t) == 0 && tg_backward(loss) == 0 && tg_optim_step(opt) == 0;
            if (step >= 80)
                sum += tg_item(loss), n++;
        }
        tg_tape_get_stats(t, &s1);
        lib0 = tg_test_control(TG_TEST_ALLOC_COUNT, 0) - lib0;
        ok(fine && s1.nodes == s0.nodes && s1.graph_bytes == s0.graph_bytes,
           "cnn, %d thread(s): 100 replayed steps record nothing", th);
        ok(lib0 == 0, "cnn, %d thread(s): the library allocates nothing (%lld)", th,
           (long long)lib0);
#ifdef COUNT_MALLOC
        ok(mallocs == m0, "cnn, %d thread(s): no malloc anywhere in the process (%lu)", th,
           mallocs - m0);
#endif
        ok(n > 0 && sum / n < 0.5 * first, "cnn, %d thread(s): it learns: loss %.4f -> %.4f", th,
           first, n ? sum / n : 0.0);
        w_after[th - 1] = malloc(8 * 4 * 9 * sizeof(float));
        tg_copy_out(w2, w_after[th - 1], TG_F32, 8 * 4 * 9);
        tg_batcher_free(&b);
        tg_optim_free(opt);
        tg_tape_free(t);
    }
    ok(w_after[0] && w_after[1] && !memcmp(w_after[0], w_after[1], 8 * 4 * 9 * sizeof(float)),
       "cnn: 1 and 2 threads give bit-identical weights after 100 steps");
    free(w_after[0]);
    free(w_after[1]);
    tg_set_threads(1);
    tg_dataset_free(&d);
}

int main(void)
{
    same_for_any_thread_count();
#ifdef COUNT_MALLOC
    unsigned long before = mallocs;
    void *volatile p = malloc(32); /* volatile: the call must happen */
    free(p);
    tg_tape *t = tg_tape_new();
    tg_tape_free(t);
    ok(mallocs == before + 2, "the process-wide malloc counter counts (%lu)", mallocs - before);
#endif
    run(TG_F32, true, 1);
    run(TG_F32, false, 2);
    run(TG_F64, true, 2);
    cnn_steps();
    return tap_done();
}
