/* tapegrad train: an MLP on Fashion-MNIST (or a built-in synthetic data set
 * when the data is not installed), built once and replayed every step.
 *
 * A step is: copy the next batch into the input leaves, tg_replay,
 * tg_zero_grad, tg_backward, tg_optim_step; it records nothing and
 * allocates nothing.  Per epoch: the mean training loss, the test accuracy
 * (replaying only up to the logits), the time; the model is saved
 * atomically, and an SVG chart of loss and accuracy is written. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"
#define MAX_LAYERS 16

typedef struct options {
    const char *data, *out, *chart, *opt, *schedule;
    size_t layers[MAX_LAYERS + 1];
    int n_layers; /* number of weight layers */
    int epochs, threads;
    size_t batch, limit;
    double lr, momentum, weight_decay;
    uint64_t seed;
    bool synthetic, quiet;
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tapegrad train [options]\n"
            "Train an MLP (ReLU hidden layers, softmax cross-entropy) on Fashion-MNIST.\n"
            "  --data DIR         IDX files (train-images-idx3-ubyte[.gz] ...), default\n"
            "                     " DEFAULT_DATA " (apt-get install dataset-fashion-mnist)\n"
            "  --synthetic        use the built-in synthetic data set instead\n"
            "  --layers L         layer sizes, default 784,512,512,10 (input must match the data)\n"
            "  --epochs N         default 10\n"
            "  --batch B          default 128\n"
            "  --opt adam|sgd     default adam (lr 1e-3); sgd: momentum 0.9, lr 0.05\n"
            "  --lr X  --momentum X  --weight-decay X\n"
            "  --schedule none|cosine|step   learning-rate schedule per epoch, default none\n"
            "  --limit N          use the first N training samples\n"
            "  --threads T        worker threads (default: TAPEGRAD_THREADS or all CPUs)\n"
            "  --seed S           default 1\n"
            "  --out FILE         model file, saved every epoch (default fashion_mlp.tgm)\n"
            "  --chart FILE       SVG chart of loss and accuracy (default train.svg)\n"
            "  --quiet            no progress bar\n");
}

/* ---- options ------------------------------------------------------------- */

static bool parse_layers(const char *s, options *o)
{
    o->n_layers = -1;
    while (*s && o->n_layers < MAX_LAYERS) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || errno || v == 0 || v > 1000000)
            return false;
        o->layers[++o->n_layers] = v;
        if (*end == 0)
            break;
        if (*end != ',')
            return false;
        s = end + 1;
    }
    return o->n_layers >= 1 && *s && !strchr(s, ',');
}

static bool number(const char *s, double lo, double hi, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return end != s && !*end && !errno && *v >= lo && *v <= hi;
}

/* Returns -1 to go on, else an exit status. */
static int parse(int argc, char **argv, options *o)
{
    *o = (options){.data = DEFAULT_DATA, .out = "fashion_mlp.tgm", .chart = "train.svg",
                   .opt = "adam", .schedule = "none", .epochs = 10, .batch = 128,
                   .lr = -1, .momentum = 0.9, .seed = 1};
    parse_layers("784,512,512,10", o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        double d;
        bool ok = true, takes = true;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--synthetic")) {
            o->synthetic = true, takes = false;
        } else if (!strcmp(a, "--quiet")) {
            o->quiet = true, takes = false;
        } else if (!v) {
            ok = false;
        } else if (!strcmp(a, "--data")) {
            o->data = v;
        } else if (!strcmp(a, "--out")) {
            o->out = v;
        } else if (!strcmp(a, "--chart")) {
            o->chart = v;
        } else if (!strcmp(a, "--layers")) {
            ok = parse_layers(v, o);
        } else if (!strcmp(a, "--epochs")) {
            ok = number(v, 1, 100000, &d), o->epochs = (int)d;
        } else if (!strcmp(a, "--batch")) {
            ok = number(v, 1, 65536, &d), o->batch = (size_t)d;
        } else if (!strcmp(a, "--limit")) {
            ok = number(v, 1, 1e9, &d), o->limit = (size_t)d;
        } else if (!strcmp(a, "--threads")) {
            ok = number(v, 1, 1024, &d), o->threads = (int)d;
        } else if (!strcmp(a, "--seed")) {
            ok = number(v, 0, 1e15, &d), o->seed = (uint64_t)d;
        } else if (!strcmp(a, "--lr")) {
            ok = number(v, 0, 100, &o->lr);
        } else if (!strcmp(a, "--momentum")) {
            ok = number(v, 0, 0.9999, &o->momentum);
        } else if (!strcmp(a, "--weight-decay")) {
            ok = number(v, 0, 10, &o->weight_decay);
        } else if (!strcmp(a, "--opt")) {
            o->opt = v;
            ok = !strcmp(v, "adam") || !strcmp(v, "sgd");
        } else if (!strcmp(a, "--schedule")) {
            o->schedule = v;
            ok = !strcmp(v, "none") || !strcmp(v, "cosine") || !strcmp(v, "step");
        } else {
            fprintf(stderr, "tapegrad train: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        if (!ok) {
            fprintf(stderr, "tapegrad train: bad or missing value for %s\n", a);
            usage(stderr);
            return 2;
        }
        i += takes;
    }
    if (o->lr < 0)
        o->lr = !strcmp(o->opt, "sgd") ? 0.05 : 1e-3;
    return -1;
}

/* ---- data ---------------------------------------------------------------- */

/* Load DIR/<stem>-images-idx3-ubyte[.gz] and the labels. */
static int load_split(const char *dir, const char *stem, tg_dataset *d, tg_err *err)
{
    char img[4096], lab[4096];
    for (int gz = 0; gz < 2; gz++) {
        snprintf(img, sizeof img, "%s/%s-images-idx3-ubyte%s", dir, stem, gz ? ".gz" : "");
        snprintf(lab, sizeof lab, "%s/%s-labels-idx1-ubyte%s", dir, stem, gz ? ".gz" : "");
        if (access(img, R_OK) == 0 && access(lab, R_OK) == 0)
            return tg_dataset_load_idx(img, lab, d, err);
    }
    snprintf(err->msg, sizeof err->msg, "no %s-images-idx3-ubyte[.gz] and labels in %s", stem,
             dir);
    return -1;
}

/* A synthetic stand-in for Fashion-MNIST: 28×28 "images" of 10 classes.
 * Each class is a random smooth prototype that shares most of its blobs
 * with a common base, and a sample is its prototype, shifted by up to two
 * pixels, with a random brightness and strong noise: an MLP gets most but
 * not all of them right, so the numbers mean something. */
static int synthetic(size_t n, uint64_t seed, const float *protos, tg_dataset *d)
{
    if (tg_dataset_new(d, n, 784, 10, NULL))
        return -1;
    d->rows = d->cols = 28;
    tg_rng r;
    tg_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        int c = (int)tg_rng_below(&r, 10);
        int dx = (int)tg_rng_below(&r, 5) - 2, dy = (int)tg_rng_below(&r, 5) - 2;
        double bright = 0.5 + tg_rng_uniform(&r);
        d->y[i] = c;
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++) {
                int sx = x - dx, sy = y - dy;
                double p = sx >= 0 && sx < 28 && sy >= 0 && sy < 28 ? protos[c * 784 + sy * 28 + sx]
                                                                      : 0;
                double v = bright * p + 0.7 * tg_rng_normal(&r);
                d->x[i * 784 + (size_t)(y * 28 + x)] = (float)(v < 0 ? 0 : v > 1 ? 1 : v);
            }
    }
    return 0;
}

static int synthetic_pair(uint64_t seed, tg_dataset *train, tg_dataset *test)
{
    float *protos = malloc(10 * 784 * sizeof *protos);
    if (!protos)
        return -1;
    tg_rng r;
    tg_rng_seed(&r, seed ^ 0x5eed);
    double cx[5], cy[5], s[5]; /* blobs 0..3 are common to all classes */
    for (int k = 0; k < 4; k++)
        cx[k] = 4 + 20 * tg_rng_uniform(&r), cy[k] = 4 + 20 * tg_rng_uniform(&r),
        s[k] = 2 + 4 * tg_rng_uniform(&r);
    for (int c = 0; c < 10; c++) { /* one Gaussian blob of its own */
        for (int k = 3; k < 5; k++)
            cx[k] = 4 + 20 * tg_rng_uniform(&r), cy[k] = 4 + 20 * tg_rng_uniform(&r),
            s[k] = 1.5 + 3 * tg_rng_uniform(&r);
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++) {
                double v = 0;
                for (int k = 0; k < 5; k++)
                    v += exp(-((x - cx[k]) * (x - cx[k]) + (y - cy[k]) * (y - cy[k])) /
                             (2 * s[k] * s[k]));
                protos[c * 784 + y * 28 + x] = (float)(v > 1 ? 1 : v);
            }
    }
    int rc = synthetic(12000, seed, protos, train) || synthetic(2000, seed + 1, protos, test);
    free(protos);
    return rc ? -1 : 0;
}

/* Standardise both splits with the training set's mean and deviation. */
static int standardize(tg_dataset *train, tg_dataset *test, tg_err *err)
{
    double s = 0, s2 = 0, n = (double)train->n * (double)train->dim;
    for (size_t i = 0; i < train->n * train->dim; i++)
        s += train->x[i], s2 += (double)train->x[i] * train->x[i];
    double mean = s / n, sd = sqrt(fmax(s2 / n - mean * mean, 1e-12));
    return tg_dataset_normalize(train, mean, sd, err) || tg_dataset_normalize(test, mean, sd, err);
}

/* ---- the network --------------------------------------------------------- */

typedef struct model {
    tg_tape *tape;
    tg_tensor *x, *labels, *logits, *loss;
    tg_tensor *params[2 * MAX_LAYERS];
    int n_params;
} model;

/* X [batch, L0] → (matmul, add_bias, relu)* → logits → softmax_ce, each
 * layer in its own scope; He-initialised weights, zero biases. */
static int build(model *m, const options *o)
{
    m->tape = tg_tape_new();
    if (!m->tape)
        return -1;
    tg_tape *t = m->tape;
    tg_rng r;
    tg_rng_seed(&r, o->seed);
    m->x = tg_input(t, "x", TG_F32, 2, (size_t[]){o->batch, o->layers[0]});
    m->labels = tg_input(t, "labels", TG_I32, 1, (size_t[]){o->batch});
    tg_tensor *h = m->x;
    for (int l = 0; l < o->n_layers; l++) {
        char name[32], scope[32];
        snprintf(scope, sizeof scope, "layer%d", l + 1);
        snprintf(name, sizeof name, "W%d", l + 1);
        tg_tensor *w = tg_param(t, name, TG_F32, 2, (size_t[]){o->layers[l], o->layers[l + 1]});
        snprintf(name, sizeof name, "b%d", l + 1);
        tg_tensor *b = tg_param(t, name, TG_F32, 1, (size_t[]){o->layers[l + 1]});
        tg_init_he(w, &r);
        m->params[m->n_params++] = w;
        m->params[m->n_params++] = b;
        tg_scope_push(t, scope);
        h = tg_add_bias(tg_matmul(h, w), b);
        if (l + 1 < o->n_layers)
            h = tg_relu(h);
        tg_scope_pop(t);
    }
    m->logits = h;
    m->loss = tg_softmax_ce(h, m->labels, TG_MEAN);
    return m->loss ? 0 : -1;
}

/* Fraction of d classified right: replay up to the logits, batch by batch. */
static double accuracy(model *m, const tg_dataset *d, tg_batcher *b)
{
    size_t right = 0, seen = 0, classes = tg_dim(m->logits, 1);
    long got;
    while ((got = tg_batcher_next(b, m->x, m->labels)) > 0) {
        if (tg_forward(m->logits))
            return -1;
        const float *z = tg_data_f32(m->logits);
        const int32_t *y = tg_data_i32(m->labels);
        for (long i = 0; i < got; i++) {
            size_t best = 0;
            for (size_t c = 1; c < classes; c++)
                best = z[i * classes + c] > z[i * classes + best] ? c : best;
            right += (int32_t)best == y[i];
        }
        seen += (size_t)got;
    }
    (void)d;
    return got < 0 ? -1 : (double)right / (double)seen;
}

/* ---- progress and chart -------------------------------------------------- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A bar on a terminal (redrawn in place), plain lines every 25% otherwise. */
static void progress(bool tty, int epoch, int epochs, size_t done, size_t total, double t0,
                     double loss, int *last_quarter)
{
    double el = now() - t0, rate = el > 0 ? (double)done / el : 0;
    double eta = rate > 0 ? (double)(total - done) / rate : 0;
    int pct = (int)(100 * done / total);
    if (tty) {
        char bar[31];
        int fill = (int)(30 * done / total);
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        fprintf(stderr, "\repoch %d/%d [%s] %3d%%  %6.1f batch/s  ETA %3.0fs  loss %.4f ", epoch,
                epochs, bar, pct, rate, eta, loss);
        if (done == total)
            fprintf(stderr, "\r%*s\r", 100, "");
    } else if (pct / 25 > *last_quarter && done < total) {
        *last_quarter = pct / 25;
        fprintf(stderr, "epoch %d/%d: %d%%, %.1f batch/s, ETA %.0f s, loss %.4f\n", epoch, epochs,
                pct, rate, eta, loss);
    }
}

/* Loss (left axis) and test accuracy (right axis) per epoch, as SVG. */
static int write_chart(const char *path, const double *loss, const double *acc, int n)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    const double W = 640, H = 360, L = 60, R = 60, T = 40, B = 50;
    double lmax = 0;
    for (int i = 0; i < n; i++)
        lmax = fmax(lmax, loss[i]);
    lmax = lmax > 0 ? lmax * 1.1 : 1;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
               "<text x=\"%g\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">"
               "training loss and test accuracy per epoch</text>\n",
            W, H, W / 2);
    fprintf(f, "<path d=\"M%g %gV%gH%gV%g\" fill=\"none\" stroke=\"#555\"/>\n", L, T, H - B,
            W - R, T);
    for (int k = 0; k <= 4; k++) { /* grid and both axes' ticks */
        double y = T + (H - T - B) * k / 4;
        fprintf(f, "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"#ddd\"/>\n", L, y,
                W - R, y);
        fprintf(f, "<text x=\"%g\" y=\"%g\" text-anchor=\"end\" fill=\"#1c7ed6\">%.3g</text>\n",
                L - 6, y + 4, lmax * (4 - k) / 4);
        fprintf(f, "<text x=\"%g\" y=\"%g\" fill=\"#e8590c\">%d%%</text>\n", W - R + 6, y + 4,
                25 * (4 - k));
    }
    for (int s = 0; s < 2; s++) {
        const double *v = s ? acc : loss;
        fprintf(f, "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"%s\" points=\"",
                s ? "#e8590c" : "#1c7ed6");
        for (int i = 0; i < n; i++) {
            double x = L + (W - L - R) * (n > 1 ? (double)i / (n - 1) : 0.5);
            double y = T + (H - T - B) * (1 - (s ? v[i] : v[i] / lmax));
            fprintf(f, "%.1f,%.1f ", x, y);
        }
        fprintf(f, "\"/>\n");
    }
    for (int i = 0; i < n; i++)
        fprintf(f, "<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%d</text>\n",
                L + (W - L - R) * (n > 1 ? (double)i / (n - 1) : 0.5), H - B + 16, i + 1);
    fprintf(f, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">epoch</text>\n"
               "<text x=\"%g\" y=\"%g\" fill=\"#1c7ed6\">train loss</text>\n"
               "<text x=\"%g\" y=\"%g\" text-anchor=\"end\" fill=\"#e8590c\">test accuracy</text>\n"
               "</svg>\n",
            W / 2, H - 12, L, T - 6, W - R, T - 6);
    int rc = ferror(f) | fflush(f) | fsync(fileno(f));
    rc |= fclose(f);
    if (rc || rename(tmp, path)) {
        remove(tmp);
        return -1;
    }
    return 0;
}

/* ---- main ---------------------------------------------------------------- */

int cli_train(int argc, char **argv)
{
    options o;
    int status = parse(argc, argv, &o);
    if (status >= 0)
        return status;
    if (o.threads && tg_set_threads(o.threads)) {
        fprintf(stderr, "tapegrad train: cannot use %d threads\n", o.threads);
        return 2;
    }
    tg_err err = {{0}};
    tg_dataset train = {0}, test = {0}, full = {0};
    const char *source = o.data;
    if (!o.synthetic && (load_split(o.data, "train", &full, &err) ||
                         load_split(o.data, "t10k", &test, &err))) {
        fprintf(stderr, "tapegrad train: %s\n", err.msg);
        if (access(o.data, F_OK) != 0)
            fprintf(stderr, "  Fashion-MNIST is not installed: apt-get install "
                            "dataset-fashion-mnist (or pass --data DIR).\n");
        fprintf(stderr, "  Training on the built-in synthetic data set instead.\n");
        tg_dataset_free(&full);
        tg_dataset_free(&test);
        o.synthetic = true;
    }
    if (o.synthetic) {
        source = "built-in synthetic data (10 classes, 28x28)";
        if (synthetic_pair(o.seed, &full, &test)) {
            fprintf(stderr, "tapegrad train: out of memory\n");
            return 1;
        }
    }
    model m = {0};
    tg_batcher tb = {0}, eb = {0};
    tg_optim *opt = NULL;
    double *losses = calloc((size_t)o.epochs, sizeof *losses);
    double *accs = calloc((size_t)o.epochs, sizeof *accs);
    status = 1;
    if (!losses || !accs)
        goto done;
    if (o.limit && o.limit < full.n ? tg_dataset_head(&full, o.limit, &train, &err)
                                    : (train = full, full = (tg_dataset){0}, 0))
        goto data_error;
    if (o.layers[0] != train.dim || o.layers[o.n_layers] < (size_t)train.classes) {
        fprintf(stderr, "tapegrad train: --layers must start with %zu inputs and end with at "
                        "least %d classes\n", train.dim, train.classes);
        status = 2;
        goto done;
    }
    if (standardize(&train, &test, &err) ||
        tg_batcher_init(&tb, &train, o.batch, true, true, o.seed, &err) ||
        tg_batcher_init(&eb, &test, o.batch, false, false, 0, &err))
        goto data_error;
    if (build(&m, &o))
        goto tape_error;
    opt = !strcmp(o.opt, "sgd")
        ? tg_sgd_new(m.tape, m.n_params, m.params,
                     &(tg_sgd_opts){.lr = o.lr, .momentum = o.momentum,
                                    .weight_decay = o.weight_decay})
        : tg_adam_new(m.tape, m.n_params, m.params,
                      &(tg_adam_opts){.lr = o.lr, .weight_decay = o.weight_decay,
                                      .decoupled = o.weight_decay > 0});
    if (!opt)
        goto tape_error;

    printf("data: %s: %zu training, %zu test samples\n", source, train.n, test.n);
    printf("model:");
    for (int l = 0; l <= o.n_layers; l++)
        printf("%s%zu", l ? "-" : " ", o.layers[l]);
    printf(" ReLU MLP, softmax cross-entropy, batch %zu, %s lr %g, %d thread%s, %s kernels\n",
           o.batch, o.opt, o.lr, tg_get_threads(), tg_get_threads() > 1 ? "s" : "", tg_isa());
    bool tty = !o.quiet && isatty(fileno(stderr));
    size_t steps = train.n / o.batch;
    for (int e = 0; e < o.epochs; e++) {
        double base = o.lr;
        if (!strcmp(o.schedule, "cosine"))
            tg_optim_set_lr(opt, tg_lr_cosine(base, 0, e, o.epochs));
        else if (!strcmp(o.schedule, "step"))
            tg_optim_set_lr(opt, tg_lr_step(base, e, (o.epochs + 2) / 3, 0.1));
        double t0 = now(), sum = 0;
        size_t done = 0;
        int quarter = 0;
        long got;
        while ((got = tg_batcher_next(&tb, m.x, m.labels)) > 0) {
            tg_zero_grad(m.tape);
            if (tg_replay(m.tape) || tg_backward(m.loss) || tg_optim_step(opt))
                goto tape_error;
            sum += tg_item(m.loss);
            done++;
            if (!o.quiet && (done % 16 == 0 || done == steps))
                progress(tty, e + 1, o.epochs, done, steps, t0, sum / (double)done, &quarter);
        }
        if (got < 0)
            goto tape_error;
        double train_time = now() - t0;
        losses[e] = sum / (double)done;
        accs[e] = accuracy(&m, &test, &eb);
        if (accs[e] < 0)
            goto tape_error;
        printf("epoch %2d/%d  train loss %.4f  test accuracy %.2f%%  %.2f s (%.0f samples/s)\n",
               e + 1, o.epochs, losses[e], 100 * accs[e], train_time,
               (double)(done * o.batch) / train_time);
        fflush(stdout);
        if (tg_save(m.tape, o.out, 0, NULL))
            goto tape_error;
        if (write_chart(o.chart, losses, accs, e + 1))
            fprintf(stderr, "tapegrad train: cannot write %s: %s\n", o.chart, strerror(errno));
    }
    printf("model saved to %s, chart to %s\n", o.out, o.chart);
    status = 0;
    goto done;
tape_error:
    fprintf(stderr, "tapegrad train: %s\n", m.tape ? tg_tape_error(m.tape) : "out of memory");
    goto done;
data_error:
    fprintf(stderr, "tapegrad train: %s\n", err.msg);
done:
    tg_optim_free(opt);
    free(losses);
    free(accs);
    tg_batcher_free(&tb);
    tg_batcher_free(&eb);
    tg_tape_free(m.tape);
    tg_dataset_free(&train);
    tg_dataset_free(&test);
    tg_dataset_free(&full);
    return status;
}
