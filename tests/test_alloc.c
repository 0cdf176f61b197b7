/* Allocation failure: the k-th heap allocation of the library fails, for
 * every k, during a whole cycle — build a network, run a training step,
 * save the model, load it into a second network.  Every failure must come
 * back as an error (no crash: this runs under ASan/UBSan), leak nothing
 * (LeakSanitizer checks at exit) and leave the model file saved before
 * byte-identical. */
#define _POSIX_C_SOURCE 200809L
#include "tap.h"
#include "tapegrad.h"

#include <stdlib.h>
#include <unistd.h>

typedef struct net {
    tg_tape *t;
    tg_tensor *x, *y, *loss;
} net;

/* A 2-layer MLP on tape n->t; 0, or -1 when anything failed (n->t may be
 * NULL or hold an error). */
static int build(net *n, uint64_t seed)
{
    n->t = tg_tape_new();
    tg_tape *t = n->t;
    tg_rng r;
    tg_rng_seed(&r, seed);
    n->x = tg_input(t, "x", TG_F32, 2, (size_t[]){8, 12});
    n->y = tg_input(t, "y", TG_I32, 1, (size_t[]){8});
    tg_tensor *W1 = tg_param(t, "W1", TG_F32, 2, (size_t[]){12, 16});
    tg_tensor *b1 = tg_param(t, "b1", TG_F32, 1, (size_t[]){16});
    tg_tensor *W2 = tg_param(t, "W2", TG_F32, 2, (size_t[]){16, 3});
    tg_tensor *b2 = tg_param(t, "b2", TG_F32, 1, (size_t[]){3});
    if (tg_init_he(W1, &r) || tg_init_he(W2, &r))
        return -1;
    tg_scope_push(t, "layer1");
    tg_tensor *h = tg_relu(tg_add_bias(tg_matmul(n->x, W1), b1));
    tg_scope_pop(t);
    n->loss = tg_softmax_ce(tg_add_bias(tg_matmul(h, W2), b2), n->y, TG_MEAN);
    return n->loss ? 0 : -1;
}

/* The whole cycle; returns 0 when every call succeeded. */
static int cycle(const char *path, tg_dataset *d)
{
    net a = {0}, b = {0};
    tg_optim *opt = NULL;
    tg_batcher bt;
    bool have_batcher = false;
    int rc = -1;
    if (build(&a, 1))
        goto out;
    opt = tg_adam_new(a.t, 0, NULL, &(tg_adam_opts){.lr = 0.01});
    if (!opt || tg_batcher_init(&bt, d, 8, true, true, 5, NULL))
        goto out;
    have_batcher = true;
    for (int step = 0; step < 2; step++) {
        if (tg_batcher_next(&bt, a.x, a.y) <= 0)
            goto out;
        tg_zero_grad(a.t);
        if (tg_replay(a.t) || tg_backward(a.loss) || tg_optim_step(opt))
            goto out;
    }
    if (tg_save(a.t, path, 0, NULL))
        goto out;
    if (build(&b, 2) || tg_load(b.t, path, 0, NULL))
        goto out;
    rc = 0;
out:
    if (have_batcher)
        tg_batcher_free(&bt);
    tg_optim_free(opt);
    tg_tape_free(a.t);
    tg_tape_free(b.t);
    return rc;
}

/* ---- sweeps of single operations --------------------------------------- */

typedef int (*op_fn)(void *ctx); /* 0 on success */

/* Run op with the k-th allocation failing, for every k it reaches: each run
 * must succeed or fail cleanly (no crash, no leak: ASan/LSan watch), and a
 * run that failed must have been one where the failure happened. */
static void sweep(const char *name, op_fn op, void *ctx)
{
    int failed = 0, recovered = 0, wrong = 0;
    long k;
    for (k = 0; k < 100000; k++) {
        tg_test_control(TG_TEST_FAIL_ALLOC, k);
        int rc = op(ctx);
        bool fired = tg_test_control(TG_TEST_FAIL_ALLOC, -1) < 0;
        if (!fired) {
            wrong += rc != 0; /* no injected failure: it must have worked */
            break;
        }
        rc ? failed++ : recovered++;
    }
    ok(k < 100000 && wrong == 0 && failed + recovered == k,
       "%s: %ld allocation points, %d fail cleanly, %d recover", name, k, failed, recovered);
}

/* finite differences and hand-gradient comparison on a small graph */
static int op_check(void *ctx)
{
    (void)ctx;
    tg_tape *t = tg_tape_new();
    tg_tensor *w = tg_leaf_from(t, TG_PARAM, "w", TG_F32, 2, (size_t[]){3, 2},
                                (float[]){1, -2, 3, 0.5f, -1, 2});
    tg_tensor *x = tg_leaf_from(t, TG_INPUT, "x", TG_F32, 2, (size_t[]){2, 3},
                                (float[]){1, 2, 3, 4, 5, 6});
    tg_tensor *loss = tg_sum(tg_sigmoid(tg_matmul(x, w)));
    tg_check c;
    int rc = !loss || tg_check_fd(loss, 1, &w, 0, &c) || tg_backward(loss) ||
             tg_check_grad(w, (double[6]){0}, TG_F64, &c);
    tg_tape_free(t);
    return rc;
}

static int op_dot(void *ctx)
{
    (void)ctx;
    tg_tape *t = tg_tape_new();
    tg_tensor *w = tg_param(t, "w", TG_F32, 1, (size_t[]){3});
    tg_scope_push(t, "layer");
    tg_tensor *loss = tg_sum(tg_relu(w));
    tg_scope_pop(t);
    FILE *f = fopen("/dev/null", "w");
    tg_dot_opts o = {.values = true, .grads = true, .backward = true, .clusters = true};
    int rc = !loss || !f || tg_backward(loss) || tg_dot_write(f, t, loss, &o);
    if (f)
        fclose(f);
    tg_tape_free(t);
    return rc;
}

typedef struct files {
    const char *images, *labels, *model;
} files;

static int op_dataset(void *ctx)
{
    files *fl = ctx;
    tg_dataset d, h;
    int rc = tg_dataset_load_idx(fl->images, fl->labels, &d, NULL);
    if (rc)
        return rc;
    rc = tg_dataset_resize(&d, 3, 3, NULL) || tg_dataset_normalize(&d, 0.5, 2, NULL) ||
         tg_dataset_head(&d, 2, &h, NULL);
    if (!rc)
        tg_dataset_free(&h);
    tg_dataset_free(&d);
    return rc;
}

static int op_load(void *ctx)
{
    files *fl = ctx;
    net n = {0};
    int rc = build(&n, 3) || tg_load(n.t, fl->model, 0, NULL);
    tg_tape_free(n.t);
    return rc;
}

/* tg_test_control itself: the count, the setting it returns, a bad request. */
static void control(void)
{
    int64_t n0 = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
    tg_tape *t = tg_tape_new();
    int64_t n1 = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
    ok(t && n1 > n0, "TG_TEST_ALLOC_COUNT counts tg_tape_new's allocations (%lld)",
       (long long)(n1 - n0));
    ok(tg_test_control(TG_TEST_FAIL_ALLOC, 5) == -1, "TG_TEST_FAIL_ALLOC returns -1 when off");
    ok(tg_test_control(TG_TEST_FAIL_ALLOC, 0) == 5, "... and the previous setting when on");
    tg_tape *u = tg_tape_new();
    ok(!u && tg_test_control(TG_TEST_ALLOC_COUNT, 0) == n1,
       "arg 0: the next allocation fails (and is not counted)");
    ok(tg_test_control(TG_TEST_FAIL_ALLOC, -1) == -1, "... once: -1 after its failure");
    u = tg_tape_new();
    ok(u != NULL, "... and allocations work again");
    tg_test_control(TG_TEST_FAIL_ALLOC, 7);
    ok(tg_test_control((tg_test_ctl)99, 3) == INT64_MIN &&
           tg_test_control(TG_TEST_FAIL_ALLOC, -1) == 7,
       "an unknown request returns INT64_MIN and changes nothing");
    tg_tape_free(u);
    tg_tape_free(t);
}

int main(void)
{
    control();
    char dir[] = "/tmp/tg_alloc_XXXXXX", path[64];
    if (!mkdtemp(dir)) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    snprintf(path, sizeof path, "%s/model.tgm", dir);
    tg_dataset d;
    tg_dataset_new(&d, 40, 12, 3, NULL);
    for (size_t i = 0; i < 40 * 12; i++)
        d.x[i] = (float)((i * 37 % 11) - 5) / 5;
    for (size_t i = 0; i < 40; i++)
        d.y[i] = (int32_t)(i % 3);

    ok(cycle(path, &d) == 0, "the cycle works without failures");
    size_t len0 = 0, len = 0;
    char *before = tap_read_file(path, &len0);
    ok(before && len0 > 0, "a model file was saved (%zu bytes)", len0);

    /* move the failure point along until it is never reached */
    int failures = 0, recovered = 0, changed = 0;
    long k;
    for (k = 0; k < 100000; k++) {
        tg_test_control(TG_TEST_FAIL_ALLOC, k);
        int rc = cycle(path, &d);
        bool fired = tg_test_control(TG_TEST_FAIL_ALLOC, -1) < 0;
        if (!fired)
            break; /* the cycle makes fewer than k+1 allocations: all were tried */
        char *now = tap_read_file(path, &len);
        if (rc == 0) { /* a path with a fallback (e.g. GEMM without workspace) */
            recovered++;
            free(before);
            before = now, len0 = len; /* the new model is the one to keep */
            continue;
        }
        failures++;
        if (!now || len != len0 || memcmp(now, before, len))
            changed++;
        free(now);
    }
    ok(k < 100000 && failures + recovered == k,
       "all %ld allocation points tried: %d failed cleanly, %d recovered", k, failures,
       recovered);
    ok(failures > 20, "the cycle has many failure points (%d)", failures);
    ok(changed == 0, "the model saved before is byte-identical after every failed cycle (%d)",
       changed);
    char *after = tap_read_file(path, &len);
    ok(after && len == len0, "the last (successful) cycle saved a complete model again");
    free(after);
    free(before);
    tg_dataset_free(&d);

    /* single operations */
    sweep("tg_check_fd + tg_check_grad", op_check, NULL);
    sweep("tg_dot_write with values, grads, backward flow, clusters", op_dot, NULL);
    char img[64], lab[64];
    snprintf(img, sizeof img, "%s/img.idx", dir);
    snprintf(lab, sizeof lab, "%s/lab.idx", dir);
    unsigned char ib[16 + 2 * 6 * 6] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 6, 0, 0, 0, 6};
    for (size_t i = 16; i < sizeof ib; i++)
        ib[i] = (unsigned char)(i * 7);
    unsigned char lb[8 + 2] = {0, 0, 8, 1, 0, 0, 0, 2, 1, 0};
    tap_write_file(img, ib, sizeof ib);
    tap_write_file(lab, lb, sizeof lb);
    files fl = {img, lab, path};
    sweep("tg_dataset_load_idx + resize + normalize + head", op_dataset, &fl);
    sweep("tg_load into a new network", op_load, &fl);
    unlink(img);
    unlink(lab);
    unlink(path);
    rmdir(dir);
    return tap_done();
}
