/* Seed 004 trained for real: its 256-input ReLU/softmax network with the
 * λ/2m L2 penalty, on Fashion-MNIST downsampled from 28×28 to 16×16 (area
 * averaging), trained twice from the same initial weights on the same
 * batches with plain SGD:
 *   A. with the corrected hand-derived gradients (seed004_net.c, plain C),
 *   B. with the tape's gradients (the same network built from tg_ ops).
 * The two loss curves must agree to float rounding: the corrected
 * derivation is not just right at one point, it trains the same network.
 *
 * Usage: train_seed004 [--data DIR] [--synthetic] [--samples N] [--epochs E]
 *                      [--batch B] [--lr X] [--lambda X] [--hidden H] [--tap]
 * --tap prints TAP (meson test): the curves agree to 1e-9 relative. */
#include "seed004_net.h"

#include <tapegrad.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct opts {
    const char *data;
    bool synthetic, tap;
    size_t samples, batch;
    int epochs, hidden;
    double lr, lambda;
} opts;

/* Fashion-MNIST's training images at 16×16, or synthetic 16×16 images of 10
 * classes (random prototypes plus noise) when the data set is missing. */
static int load(const opts *o, tg_dataset *d)
{
    tg_err err = {{0}};
    char img[4096], lab[4096];
    snprintf(img, sizeof img, "%s/train-images-idx3-ubyte.gz", o->data);
    snprintf(lab, sizeof lab, "%s/train-labels-idx1-ubyte.gz", o->data);
    if (!o->synthetic && access(img, R_OK) == 0) {
        tg_dataset full;
        if (tg_dataset_load_idx(img, lab, &full, &err) ||
            tg_dataset_head(&full, o->samples < full.n ? o->samples : full.n, d, &err) ||
            tg_dataset_resize(d, 16, 16, &err)) {
            fprintf(stderr, "train_seed004: %s\n", err.msg);
            tg_dataset_free(&full);
            return -1;
        }
        tg_dataset_free(&full);
        printf("%sdata: Fashion-MNIST, first %zu training images, 28x28 -> 16x16\n", o->tap ? "# " : "", d->n);
        return 0;
    }
    if (tg_dataset_new(d, o->samples, 256, 10, &err)) {
        fprintf(stderr, "train_seed004: %s\n", err.msg);
        return -1;
    }
    tg_rng r;
    tg_rng_seed(&r, 4);
    float proto[10][256];
    for (int c = 0; c < 10; c++)
        for (int j = 0; j < 256; j++)
            proto[c][j] = (float)tg_rng_uniform(&r);
    for (size_t i = 0; i < d->n; i++) {
        d->y[i] = (int32_t)tg_rng_below(&r, 10);
        for (int j = 0; j < 256; j++)
            d->x[i * 256 + (size_t)j] = proto[d->y[i]][j] + (float)(0.5 * tg_rng_normal(&r));
    }
    d->rows = d->cols = 16;
    printf("%sdata: synthetic 16x16 images of 10 classes, %zu samples", o->tap ? "# " : "", d->n);
    if (!o->synthetic)
        printf(" (Fashion-MNIST is not in %s: apt-get install dataset-fashion-mnist)", o->data);
    printf("\n");
    return 0;
}

/* The same initial weights for both runs: W₁ He-normal, W₂ Xavier, b = 0. */
static void init(mlp *p, uint64_t seed)
{
    tg_rng r;
    tg_rng_seed(&r, seed);
    for (int i = 0; i < p->n * p->hid; i++)
        p->W1[i] = sqrt(2.0 / p->n) * tg_rng_normal(&r);
    double a = sqrt(6.0 / (p->hid + p->k));
    for (int i = 0; i < p->hid * p->k; i++)
        p->W2[i] = a * (2 * tg_rng_uniform(&r) - 1);
}

/* Run A: SGD with the hand-derived gradients.  Batches come from the same
 * seeded batcher as run B, so both see the same samples in the same order. */
static int run_hand(const opts *o, const tg_dataset *d, double *curve, size_t steps)
{
    mlp p, g;
    if (mlp_alloc(&p, 256, o->hidden, 10) || mlp_alloc(&g, 256, o->hidden, 10))
        return -1;
    init(&p, 7);
    tg_tape *t = tg_tape_new(); /* only to hold the batch tensors */
    tg_tensor *xb = tg_input(t, "x", TG_F64, 2, (size_t[]){o->batch, 256});
    tg_tensor *yb = tg_input(t, "labels", TG_I32, 1, (size_t[]){o->batch});
    double *X = malloc(256 * o->batch * sizeof *X);
    int *lab = malloc(o->batch * sizeof *lab);
    tg_batcher b;
    int rc = -1;
    if (!xb || !yb || !X || !lab || tg_batcher_init(&b, d, o->batch, true, true, 11, NULL))
        goto out;
    int m = (int)o->batch;
    size_t s = 0;
    for (int e = 0; e < o->epochs; e++)
        while (tg_batcher_next(&b, xb, yb) > 0 && s < steps) {
            const double *xr = tg_data_f64(xb);
            for (int j = 0; j < m; j++) { /* samples as columns: X⁽⁰⁾ [n×m] */
                lab[j] = tg_data_i32(yb)[j];
                for (int a = 0; a < 256; a++)
                    X[a * m + j] = xr[(size_t)j * 256 + (size_t)a];
            }
            curve[s++] = corrected_grads(&p, X, lab, m, o->lambda, &g);
            for (int i = 0; i < p.n * p.hid; i++)
                p.W1[i] -= o->lr * g.W1[i];
            for (int i = 0; i < p.hid; i++)
                p.b1[i] -= o->lr * g.b1[i];
            for (int i = 0; i < p.hid * p.k; i++)
                p.W2[i] -= o->lr * g.W2[i];
            for (int i = 0; i < p.k; i++)
                p.b2[i] -= o->lr * g.b2[i];
        }
    rc = 0;
    tg_batcher_free(&b);
out:
    free(X);
    free(lab);
    tg_tape_free(t);
    mlp_free(&p);
    mlp_free(&g);
    return rc;
}

/* Run B: the same network on the tape, samples as rows (X·W₁ is (W₁ᵀXᵀ)ᵀ),
 * L = mean CE + λ/2m (‖W₁‖² + ‖W₂‖²), SGD through tg_sgd. */
static int run_tape(const opts *o, const tg_dataset *d, double *curve, size_t steps)
{
    mlp p;
    if (mlp_alloc(&p, 256, o->hidden, 10))
        return -1;
    init(&p, 7);
    size_t hid = (size_t)o->hidden;
    tg_tape *t = tg_tape_new();
    tg_tensor *x = tg_input(t, "x", TG_F64, 2, (size_t[]){o->batch, 256});
    tg_tensor *y = tg_input(t, "labels", TG_I32, 1, (size_t[]){o->batch});
    tg_tensor *W1 = tg_leaf_from(t, TG_PARAM, "W1", TG_F64, 2, (size_t[]){256, hid}, p.W1);
    tg_tensor *b1 = tg_leaf_from(t, TG_PARAM, "b1", TG_F64, 1, (size_t[]){hid}, p.b1);
    tg_tensor *W2 = tg_leaf_from(t, TG_PARAM, "W2", TG_F64, 2, (size_t[]){hid, 10}, p.W2);
    tg_tensor *b2 = tg_leaf_from(t, TG_PARAM, "b2", TG_F64, 1, (size_t[]){10}, p.b2);
    mlp_free(&p);
    double l2 = o->lambda / (double)o->batch; /* tg_l2(w, λ') = λ'/2 Σw² */
    tg_tensor *z = tg_add_bias(tg_matmul(tg_relu(tg_add_bias(tg_matmul(x, W1), b1)), W2), b2);
    tg_tensor *loss = tg_add(tg_softmax_ce(z, y, TG_MEAN), tg_add(tg_l2(W1, l2), tg_l2(W2, l2)));
    tg_optim *sgd = tg_sgd_new(t, 0, NULL, &(tg_sgd_opts){.lr = o->lr});
    tg_batcher b;
    int rc = -1;
    if (!loss || !sgd || tg_batcher_init(&b, d, o->batch, true, true, 11, NULL)) {
        fprintf(stderr, "train_seed004: %s\n", tg_tape_error(t) ? tg_tape_error(t) : "setup");
        goto out;
    }
    size_t s = 0;
    for (int e = 0; e < o->epochs; e++)
        while (tg_batcher_next(&b, x, y) > 0 && s < steps) {
            tg_zero_grad(t);
            if (tg_replay(t) || tg_backward(loss) || tg_optim_step(sgd))
                goto done;
            curve[s++] = tg_item(loss);
        }
    rc = 0;
done:
    tg_batcher_free(&b);
out:
    tg_optim_free(sgd);
    tg_tape_free(t);
    return rc;
}

static bool arg(int argc, char **argv, int *i, const char *name, double *v)
{
    if (strcmp(argv[*i], name) || *i + 1 >= argc)
        return false;
    *v = atof(argv[++*i]);
    return true;
}

int main(int argc, char **argv)
{
    opts o = {"/usr/share/datasets/fashion-mnist", false, false, 10000, 64, 3, 256, 0.1, 1e-3};
    for (int i = 1; i < argc; i++) {
        double v;
        if (!strcmp(argv[i], "--synthetic"))
            o.synthetic = true;
        else if (!strcmp(argv[i], "--tap"))
            o.tap = true;
        else if (!strcmp(argv[i], "--data") && i + 1 < argc)
            o.data = argv[++i];
        else if (arg(argc, argv, &i, "--samples", &v) && v >= 1)
            o.samples = (size_t)v;
        else if (arg(argc, argv, &i, "--batch", &v) && v >= 1)
            o.batch = (size_t)v;
        else if (arg(argc, argv, &i, "--epochs", &v) && v >= 1)
            o.epochs = (int)v;
        else if (arg(argc, argv, &i, "--hidden", &v) && v >= 1)
            o.hidden = (int)v;
        else if (arg(argc, argv, &i, "--lr", &v) && v > 0)
            o.lr = v;
        else if (arg(argc, argv, &i, "--lambda", &v) && v >= 0)
            o.lambda = v;
        else {
            fprintf(stderr, "usage: train_seed004 [--data DIR] [--synthetic] [--samples N] "
                            "[--epochs E] [--batch B] [--lr X] [--lambda X] [--hidden H] [--tap]\n");
            return 2;
        }
    }
    tg_dataset d;
    if (load(&o, &d))
        return 1;
    size_t per_epoch = d.n / o.batch, steps = per_epoch * (size_t)o.epochs;
    double *a = calloc(steps ? steps : 1, sizeof *a), *b = calloc(steps ? steps : 1, sizeof *b);
    if (!a || !b || !steps || run_hand(&o, &d, a, steps) || run_tape(&o, &d, b, steps)) {
        fprintf(stderr, "train_seed004: training failed (batch larger than the data?)\n");
        return 1;
    }
    const char *c = o.tap ? "# " : ""; /* the table is a TAP comment in --tap mode */
    printf("%s256-%d-10 ReLU/softmax, L = mean CE + λ/2m Σ‖W‖² (λ = %g), SGD lr %g, batch %zu\n",
           c, o.hidden, o.lambda, o.lr, o.batch);
    printf("%sepoch   loss (hand-derived)   loss (tape)          max rel difference\n", c);
    double worst = 0;
    for (int e = 0; e < o.epochs; e++) {
        double sa = 0, sb = 0, we = 0;
        for (size_t s = (size_t)e * per_epoch; s < (size_t)(e + 1) * per_epoch; s++) {
            sa += a[s], sb += b[s];
            we = fmax(we, fabs(a[s] - b[s]) / fabs(b[s]));
        }
        worst = fmax(worst, we);
        printf("%s%5d   %.15f     %.15f    %.2e\n", c, e + 1, sa / (double)per_epoch,
               sb / (double)per_epoch, we);
    }
    printf("%sfirst step loss %.6f, last step loss %.6f; largest relative difference between the "
           "curves over %zu steps: %.2e\n", c, b[0], b[steps - 1], steps, worst);
    bool same = worst <= 1e-9, learned = b[steps - 1] < b[0];
    if (o.tap)
        printf("%s 1 - hand-derived and tape gradients give the same loss curve (%.2e <= 1e-9)\n"
               "%s 2 - the loss went down (%.4f -> %.4f)\n1..2\n",
               same ? "ok" : "not ok", worst, learned ? "ok" : "not ok", b[0], b[steps - 1]);
    free(a);
    free(b);
    tg_dataset_free(&d);
    return same && learned ? 0 : 1;
}
