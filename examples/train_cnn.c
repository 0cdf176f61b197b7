/* A convolutional network on Fashion-MNIST (the README's "Convolutional
 * networks"): the network of seeds/cnn.h (conv-bn-ReLU-pool ×2, dropout,
 * fc 128, fc 10) trained with Adam on a cosine schedule, evaluated in
 * evaluation mode after every epoch, saved with its batch-norm statistics,
 * and loaded again into a fresh network that must give the same test
 * accuracy.
 *
 *   train_cnn [--data DIR | --builtin] [--epochs N] [--limit N] [--out FILE]
 *             [--load FILE] [--tap]
 *
 * --load starts from a saved model (one of `tapegrad train --model cnn`'s
 * files); with --epochs 0 it only evaluates it.
 * DIR holds {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] (default
 * /usr/share/datasets/fashion-mnist).  Without it, or with --builtin (the
 * test suite), a small built-in set of 28×28 images of 10 classes (a bar at
 * a class-dependent angle, shifted, in noise) stands in.  --tap prints the
 * checks as TAP. */
#include "cnn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool tap;
static int checks, failed;

static void check(bool ok, const char *what)
{
    ++checks;
    failed += !ok;
    if (tap)
        printf("%sok %d - %s\n", ok ? "" : "not ", checks, what);
    else if (!ok)
        fprintf(stderr, "train_cnn: FAILED: %s\n", what);
}

/* n images of class c = a bright bar through the centre at angle 18°·c,
 * shifted and noisy (no network gets them all). */
static int builtin(size_t n, uint64_t seed, tg_dataset *d)
{
    if (tg_dataset_new(d, n, 784, 10, NULL))
        return -1;
    d->rows = d->cols = 28;
    tg_rng r;
    tg_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        int c = (int)tg_rng_below(&r, 10);
        double th = 3.14159265358979 * c / 10, dx = tg_rng_uniform(&r) * 6 - 3,
               dy = tg_rng_uniform(&r) * 6 - 3;
        d->y[i] = c;
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++) {
                double u = x - 13.5 - dx, v = y - 13.5 - dy;
                double dist = fabs(-sin(th) * u + cos(th) * v);
                double p = (dist < 1.5 ? 1.0 : 0.0) + 0.35 * tg_rng_normal(&r);
                d->x[i * 784 + (size_t)(y * 28 + x)] = (float)p;
            }
    }
    return 0;
}

static int load(const char *dir, const char *stem, tg_dataset *d, tg_err *err)
{
    char img[4096], lab[4096];
    for (int gz = 0; gz < 2; gz++) {
        snprintf(img, sizeof img, "%s/%s-images-idx3-ubyte%s", dir, stem, gz ? ".gz" : "");
        snprintf(lab, sizeof lab, "%s/%s-labels-idx1-ubyte%s", dir, stem, gz ? ".gz" : "");
        if (access(img, F_OK) == 0)
            break;
    }
    return tg_dataset_load_idx(img, lab, d, err);
}

/* Test accuracy in evaluation mode (dropout off, batch norm on its running
 * statistics), replaying up to the logits only. */
static double accuracy(cnn_model *m, const tg_dataset *test)
{
    tg_batcher b;
    tg_err err;
    if (tg_batcher_init(&b, test, tg_dim(m->x, 0), false, false, 0, &err))
        return -1;
    bool was = tg_set_training(m->tape, false);
    size_t right = 0, seen = 0;
    long k;
    while ((k = tg_batcher_next(&b, m->x, m->labels)) > 0 && tg_forward(m->logits) == 0) {
        const float *z = tg_data_f32(m->logits);
        for (long i = 0; i < k; i++) {
            int best = 0;
            for (int c = 1; c < 10; c++)
                best = z[i * 10 + c] > z[i * 10 + best] ? c : best;
            right += best == tg_data_i32(m->labels)[i];
        }
        seen += (size_t)k;
    }
    tg_set_training(m->tape, was);
    tg_batcher_free(&b);
    return k < 0 ? -1 : (double)right / (double)seen;
}

int main(int argc, char **argv)
{
    const char *dir = "/usr/share/datasets/fashion-mnist", *out = "train_cnn.tgm", *from = NULL;
    int epochs = 10;
    size_t limit = 0;
    bool have_dir = false, use_builtin = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tap"))
            tap = true;
        else if (!strcmp(argv[i], "--builtin"))
            use_builtin = true;
        else if (i + 1 < argc && !strcmp(argv[i], "--data"))
            dir = argv[++i], have_dir = true;
        else if (i + 1 < argc && !strcmp(argv[i], "--epochs"))
            epochs = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--limit"))
            limit = (size_t)atol(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--out"))
            out = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--load"))
            from = argv[++i];
        else {
            fprintf(stderr, "usage: train_cnn [--data DIR | --builtin] [--epochs N] "
                            "[--limit N] [--out FILE] [--load FILE] [--tap]\n");
            return 2;
        }
    }
    tg_dataset train = {0}, test = {0}, all = {0};
    tg_err err;
    use_builtin = use_builtin || (!have_dir && access(dir, F_OK) != 0);
    if (!use_builtin) {
        if (load(dir, "train", &all, &err) || load(dir, "t10k", &test, &err)) {
            fprintf(stderr, "train_cnn: %s\n", err.msg);
            return 1;
        }
    } else if (builtin(2048, 1, &all) || builtin(512, 2, &test)) {
        return 1;
    }
    if (limit && limit < all.n ? tg_dataset_head(&all, limit, &train, &err)
                               : (train = all, all = (tg_dataset){0}, 0))
        return 1;
    /* standardise with the training set's mean and deviation */
    double s = 0, s2 = 0, cnt = (double)train.n * (double)train.dim;
    for (size_t i = 0; i < train.n * train.dim; i++)
        s += train.x[i], s2 += (double)train.x[i] * train.x[i];
    double mean = s / cnt, sd = sqrt(s2 / cnt - mean * mean);
    tg_dataset_normalize(&train, mean, sd, &err);
    tg_dataset_normalize(&test, mean, sd, &err);
    if (tap)
        printf("# %zu training, %zu test images\n", train.n, test.n);

    cnn_model m;
    if (cnn_build(&m, 128, 28, 10, TG_F32, 1, 0.25, &err)) {
        fprintf(stderr, "train_cnn: %s\n", err.msg);
        return 1;
    }
    tg_optim *adam = tg_adam_new(m.tape, m.n_params, m.params, &(tg_adam_opts){.lr = 1e-3});
    tg_batcher batches;
    if (!adam || tg_batcher_init(&batches, &train, 128, true, true, 1, &err)) {
        fprintf(stderr, "train_cnn: cannot start: %s\n", tg_tape_error(m.tape));
        return 1;
    }
    tg_tensor *saved[CNN_MAX_PARAMS + CNN_MAX_BUFFERS];
    memcpy(saved, m.params, (size_t)m.n_params * sizeof *saved);
    memcpy(saved + m.n_params, m.buffers, (size_t)m.n_buffers * sizeof *saved);
    if (from && tg_load(m.tape, from, m.n_params + m.n_buffers, saved)) {
        fprintf(stderr, "train_cnn: %s\n", tg_tape_error(m.tape));
        return 1;
    }
    double acc = from ? accuracy(&m, &test) : 0;
    if (from)
        printf("%s%s: test accuracy %.2f%%\n", tap ? "# " : "", from, 100 * acc);
    for (int e = 1; e <= epochs; e++) {
        tg_optim_set_lr(adam, tg_lr_cosine(1e-3, 0, e - 1, epochs)); /* cosine schedule */
        double sum = 0;
        long steps = 0;
        while (tg_batcher_next(&batches, m.x, m.labels) > 0) {
            tg_zero_grad(m.tape);
            if (tg_replay(m.tape) || tg_backward(m.loss) || tg_optim_step(adam)) {
                fprintf(stderr, "train_cnn: %s\n", tg_tape_error(m.tape));
                return 1;
            }
            sum += tg_item(m.loss), steps++;
        }
        acc = accuracy(&m, &test);
        printf("%sepoch %2d  train loss %.4f  test accuracy %.2f%%\n", tap ? "# " : "", e,
               sum / (double)steps, 100 * acc);
        fflush(stdout);
    }
    /* the parameters and the running statistics, in one file */
    check(tg_save(m.tape, out, m.n_params + m.n_buffers, saved) == 0, "model saved");

    /* a fresh network (other random weights) loaded from the file */
    cnn_model f;
    if (cnn_build(&f, 128, 28, 10, TG_F32, 99, 0.25, &err))
        return 1;
    memcpy(saved, f.params, (size_t)f.n_params * sizeof *saved);
    memcpy(saved + f.n_params, f.buffers, (size_t)f.n_buffers * sizeof *saved);
    check(tg_load(f.tape, out, f.n_params + f.n_buffers, saved) == 0, "model loaded");
    double again = accuracy(&f, &test);
    printf("%sthe saved model, loaded into a new network: test accuracy %.2f%%\n",
           tap ? "# " : "", 100 * again);
    check(again == acc, "the loaded model evaluates to the same test accuracy");
    if (use_builtin)
        check(acc > 0.6, "the built-in images are learnt (test accuracy > 60%)");

    /* dropout and batch norm follow the mode: training-mode logits differ */
    tg_forward(f.logits);
    float z_eval = tg_data_f32(f.logits)[0];
    tg_set_training(f.tape, true);
    tg_forward(f.logits);
    check(tg_data_f32(f.logits)[0] != z_eval, "training mode gives other logits than eval");

    if (tap)
        printf("1..%d\n", checks);
    tg_batcher_free(&batches);
    tg_optim_free(adam);
    cnn_free(&m);
    cnn_free(&f);
    tg_dataset_free(&train);
    tg_dataset_free(&test);
    tg_dataset_free(&all);
    remove(out);
    return failed ? 1 : 0;
}
