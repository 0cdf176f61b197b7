/* tapegrad train: an MLP or the convolutional network of seeds/cnn.h on
 * Fashion-MNIST (or a built-in synthetic data set when the data is not
 * installed), built once and replayed every step.
 *
 * A step is: copy the next batch into the input leaves, tg_replay,
 * tg_zero_grad, tg_backward, tg_optim_step; it records nothing and
 * allocates nothing.  Per epoch: the mean training loss, the test accuracy
 * (replaying only up to the logits, in evaluation mode), the time; the
 * model (parameters and batch-norm statistics) is saved
 * atomically, and an SVG chart of loss and accuracy is written. */
#include "cli.h"

#include "cnn.h" /* the convolutional network (seeds/) */

#include "io.h" /* tg_atomic: the library's atomic file writer */

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"
#define MAX_LAYERS 16

typedef struct options {
    const char *data, *out, *chart, *opt, *schedule; /* data: NULL = the default rule */
    const char *model;                               /* "mlp" or "cnn"                */
    bool layers_given;
    size_t layers[MAX_LAYERS + 1];
    int n_layers; /* number of weight layers */
    int epochs, threads;
    size_t batch, limit;
    double lr, momentum, weight_decay, dropout;
    uint64_t seed;
    bool synthetic, quiet, no_chart;
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tapegrad train [options]\n"
            "Train an MLP (ReLU hidden layers, softmax cross-entropy) or a convolutional\n"
            "network on Fashion-MNIST.  (`tapegrad train --model gpt --help`: the\n"
            "character-level language models gpt and gru.)\n"
            "\n"
            "Data: --data DIR reads DIR/{train,t10k}-{images-idx3,labels-idx1}-ubyte, each\n"
            "file raw or gzipped (.gz); when it cannot be read (missing, truncated or\n"
            "damaged files) the command fails and writes nothing.  --synthetic trains on a\n"
            "built-in synthetic set instead.  With neither, " DEFAULT_DATA "\n"
            "is used when it exists (apt-get install dataset-fashion-mnist), else the\n"
            "synthetic set, with a notice on stderr.\n"
            "\n"
            "  --data DIR         the IDX files, see above\n"
            "  --synthetic        the built-in synthetic data set (10 classes, 28x28)\n"
            "  --model mlp|cnn    default mlp; cnn: conv 3x3 32 - batch norm - ReLU -\n"
            "                     max-pool 2 - conv 3x3 64 - batch norm - ReLU - max-pool 2 -\n"
            "                     dropout - fc 128 - ReLU - fc 10 (square images, side a\n"
            "                     multiple of 4)\n"
            "  --layers L         mlp layer sizes, default 784,512,512,10 (at most %d sizes;\n"
            "                     the first must match the data)\n"
            "  --dropout P        cnn: dropout probability before fc 128, default 0.25\n"
            "  --epochs N         default 10\n"
            "  --batch B          default 128 (a last partial batch is left out; the\n"
            "                     reshuffled epochs leave out other samples)\n"
            "  --opt adam|sgd     default adam (lr 1e-3); sgd: momentum 0.9, lr 0.05\n"
            "  --lr X  --momentum X  --weight-decay X\n"
            "  --schedule none|cosine|step   learning-rate schedule per epoch, default none\n"
            "                     (cosine for the cnn)\n"
            "  --limit N          use the first N training samples\n"
            "  --threads T        worker threads (default: TAPEGRAD_THREADS or all CPUs)\n"
            "  --seed S           default 1\n"
            "  --out FILE         model file, saved every epoch (default fashion_mlp.tgm,\n"
            "                     fashion_cnn.tgm for the cnn)\n"
            "  --chart FILE       SVG chart of loss and accuracy (default train.svg)\n"
            "  --no-chart         no chart\n"
            "  --quiet            no progress bar\n"
            "N, B, T and S are whole numbers (digits only).  --out and --chart are checked\n"
            "before the first epoch: their directory must exist and be writable.\n"
            "\n"
            "Exit status: 0 when the model (and the chart) were written; 1 when the data\n"
            "cannot be read, --out or --chart cannot be written, or training fails (a\n"
            "chart that fails during training is reported, training goes on, and the run\n"
            "ends with 1); 2 usage error.\n",
            MAX_LAYERS + 1);
}

/* ---- options ------------------------------------------------------------- */

bool cli_whole(const char *s, uint64_t lo, uint64_t hi, uint64_t *v)
{
    if (*s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    *v = x;
    return !*end && !errno && x >= lo && x <= hi;
}

/* "784,512,10": 2..MAX_LAYERS+1 sizes of 1..1000000; false with a message */
static bool parse_layers(const char *s, options *o, char *why, size_t len)
{
    int k = 0;
    for (const char *p = s;; p++) {
        size_t n = strcspn(p, ",");
        if (k == MAX_LAYERS + 1) {
            int all = k + 1;
            for (const char *q = p + n; *q; q++)
                all += *q == ',';
            snprintf(why, len, "at most %d sizes (%d layers), not %d", MAX_LAYERS + 1,
                     MAX_LAYERS, all);
            return false;
        }
        char num[16];
        uint64_t v;
        snprintf(num, sizeof num, "%.*s", (int)(n < 15 ? n : 15), p);
        if (n == 0 || n > 7 || !cli_whole(num, 1, 1000000, &v)) {
            snprintf(why, len, "size %d ('%.*s') must be a whole number in 1..1000000", k + 1,
                     (int)(n < 20 ? n : 20), p);
            return false;
        }
        o->layers[k++] = (size_t)v;
        p += n;
        if (!*p)
            break;
    }
    if (k < 2) {
        snprintf(why, len, "give at least an input and an output size (e.g. 784,10)");
        return false;
    }
    o->n_layers = k - 1;
    return true;
}

bool cli_number(const char *s, double lo, double hi, double *v)
{
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    return end != s && !*end && !errno && *v >= lo && *v <= hi;
}

/* "tapegrad train: <message>" and the usage on stderr; returns 2. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static int usage_error(const char *fmt, ...)
{
    fputs("tapegrad train: ", stderr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n\n", stderr);
    usage(stderr);
    return 2;
}

/* Options that take a value. */
static const char *const VALUED[] = {"--data",  "--out",  "--chart", "--layers",
                                     "--epochs", "--batch", "--limit", "--threads",
                                     "--seed",  "--lr",   "--momentum", "--weight-decay",
                                     "--opt",   "--schedule", "--model", "--dropout"};

/* One option with its value v; false with what was expected in why. */
static bool set_option(options *o, const char *a, const char *v, char *why, size_t len)
{
    uint64_t u = 0;
    bool ok = true;
    const char *want = NULL;
    if (!strcmp(a, "--data")) {
        o->data = v, ok = *v != 0, want = "a directory";
    } else if (!strcmp(a, "--out")) {
        o->out = v, ok = *v != 0, want = "a file name";
    } else if (!strcmp(a, "--chart")) {
        o->chart = v, ok = *v != 0, want = "a file name";
    } else if (!strcmp(a, "--layers")) {
        o->layers_given = true;
        return parse_layers(v, o, why, len);
    } else if (!strcmp(a, "--model")) {
        o->model = v, want = "mlp, cnn, gpt or gru";
        ok = !strcmp(v, "mlp") || !strcmp(v, "cnn");
    } else if (!strcmp(a, "--dropout")) {
        ok = cli_number(v, 0, 0.95, &o->dropout), want = "a number in [0, 0.95]";
    } else if (!strcmp(a, "--epochs")) {
        ok = cli_whole(v, 1, 100000, &u), o->epochs = (int)u, want = "a whole number in 1..100000";
    } else if (!strcmp(a, "--batch")) {
        ok = cli_whole(v, 1, 65536, &u), o->batch = (size_t)u, want = "a whole number in 1..65536";
    } else if (!strcmp(a, "--limit")) {
        ok = cli_whole(v, 1, 1000000000, &u), o->limit = (size_t)u,
        want = "a whole number in 1..1000000000";
    } else if (!strcmp(a, "--threads")) {
        ok = cli_whole(v, 1, 1024, &u), o->threads = (int)u, want = "a whole number in 1..1024";
    } else if (!strcmp(a, "--seed")) {
        ok = cli_whole(v, 0, UINT64_MAX, &u), o->seed = u,
        want = "a whole number in 0..18446744073709551615";
    } else if (!strcmp(a, "--lr")) {
        ok = cli_number(v, 0, 100, &o->lr), want = "a number in [0, 100]";
    } else if (!strcmp(a, "--momentum")) {
        ok = cli_number(v, 0, 0.9999, &o->momentum), want = "a number in [0, 0.9999]";
    } else if (!strcmp(a, "--weight-decay")) {
        ok = cli_number(v, 0, 10, &o->weight_decay), want = "a number in [0, 10]";
    } else if (!strcmp(a, "--opt")) {
        o->opt = v, want = "adam or sgd";
        ok = !strcmp(v, "adam") || !strcmp(v, "sgd");
    } else { /* --schedule */
        o->schedule = v, want = "none, cosine or step";
        ok = !strcmp(v, "none") || !strcmp(v, "cosine") || !strcmp(v, "step");
    }
    if (!ok)
        snprintf(why, len, "expected %s", want);
    return ok;
}

/* Returns -1 to go on, else an exit status. */
static int parse(int argc, char **argv, options *o)
{
    *o = (options){.chart = "train.svg", .opt = "adam", .model = "mlp",
                   .epochs = 10, .batch = 128, .lr = -1, .momentum = 0.9, .dropout = 0.25,
                   .seed = 1};
    char why[160];
    parse_layers("784,512,512,10", o, why, sizeof why);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--synthetic")) {
            o->synthetic = true;
            continue;
        } else if (!strcmp(a, "--quiet")) {
            o->quiet = true;
            continue;
        } else if (!strcmp(a, "--no-chart")) {
            o->no_chart = true;
            continue;
        }
        bool valued = false;
        for (size_t k = 0; k < sizeof VALUED / sizeof *VALUED; k++)
            valued |= !strcmp(a, VALUED[k]);
        if (!valued && a[0] == '-')
            return usage_error("unknown option '%s'", a);
        if (!valued)
            return usage_error("unexpected argument '%s' (options start with --)", a);
        if (i + 1 == argc)
            return usage_error("%s needs a value", a);
        const char *v = argv[++i];
        if (!set_option(o, a, v, why, sizeof why))
            return usage_error("bad value '%s' for %s: %s", v, a, why);
    }
    bool cnn = !strcmp(o->model, "cnn");
    if (cnn && o->layers_given)
        return usage_error("--layers is for --model mlp (the cnn's layers are fixed)");
    if (!o->out)
        o->out = cnn ? "fashion_cnn.tgm" : "fashion_mlp.tgm";
    if (!o->schedule)
        o->schedule = cnn ? "cosine" : "none";
    if (o->synthetic && o->data)
        return usage_error("--synthetic and --data %s: give one of them", o->data);
    if (!o->no_chart && !strcmp(o->out, o->chart))
        return usage_error("--out and --chart name the same file (%s)", o->out);
    if (o->lr < 0)
        o->lr = !strcmp(o->opt, "sgd") ? 0.05 : 1e-3;
    return -1;
}

/* ---- data ---------------------------------------------------------------- */

/* DIR/NAME, raw or else gzipped (NAME.gz), into path; false (and a message)
 * when neither is there. */
static bool find_file(const char *dir, const char *name, char *path, size_t len, tg_err *err)
{
    for (int gz = 0; gz < 2; gz++) {
        snprintf(path, len, "%s/%s%s", dir, name, gz ? ".gz" : "");
        if (access(path, F_OK) == 0)
            return true;
    }
    snprintf(err->msg, sizeof err->msg, "%s: no %s (or %s.gz)", dir, name, name);
    return false;
}

/* Load DIR/<stem>-images-idx3-ubyte and the labels, each raw or gzipped. */
static int load_split(const char *dir, const char *stem, tg_dataset *d, tg_err *err)
{
    char img[4096], lab[4096], name[64];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", stem);
    if (!find_file(dir, name, img, sizeof img, err))
        return -1;
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", stem);
    if (!find_file(dir, name, lab, sizeof lab, err))
        return -1;
    return tg_dataset_load_idx(img, lab, d, err);
}

/* Both splits of DIR, which must agree: the same image size and the same
 * classes.  A raw IDX file has no checksum, so a flipped bit in its pixels
 * cannot be seen; one in a header, in gzipped data (CRC) or in a label that
 * leaves the classes can. */
static int load_dir(const char *dir, tg_dataset *train, tg_dataset *test, tg_err *err)
{
    struct stat st;
    int e = stat(dir, &st) ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
    if (e) {
        snprintf(err->msg, sizeof err->msg, "%s: %s", dir, strerror(e));
        return -1;
    }
    if (load_split(dir, "train", train, err) || load_split(dir, "t10k", test, err))
        return -1;
    if (train->rows != test->rows || train->cols != test->cols) {
        snprintf(err->msg, sizeof err->msg, "%s: training images are %zux%zu but test images "
                 "%zux%zu", dir, train->rows, train->cols, test->rows, test->cols);
        return -1;
    }
    if (train->classes != test->classes) {
        snprintf(err->msg, sizeof err->msg, "%s: the training labels go up to %d but the test "
                 "labels up to %d: a damaged label file, or two different data sets", dir,
                 train->classes - 1, test->classes - 1);
        return -1;
    }
    return 0;
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
    tg_tensor *saved[2 * MAX_LAYERS + CNN_MAX_PARAMS + CNN_MAX_BUFFERS];
    int n_params; /* saved[0, n_params): the optimizer's parameters        */
    int n_saved;  /* then the batch-norm running statistics: all are saved */
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
        m->saved[m->n_params++] = w;
        m->saved[m->n_params++] = b;
        tg_scope_push(t, scope);
        h = tg_add_bias(tg_matmul(h, w), b);
        if (l + 1 < o->n_layers)
            h = tg_relu(h);
        tg_scope_pop(t);
    }
    m->logits = h;
    m->loss = tg_softmax_ce(h, m->labels, TG_MEAN);
    m->n_saved = m->n_params;
    return m->loss ? 0 : -1;
}

/* The convolutional network of seeds/cnn.h for square images of the data. */
static int build_cnn(model *m, const options *o, const tg_dataset *d, tg_err *err)
{
    if (d->rows != d->cols || !d->rows || d->rows % 4) {
        snprintf(err->msg, sizeof err->msg, "--model cnn needs square images whose side is a "
                 "multiple of 4; the data's are %zux%zu", d->rows, d->cols);
        return -1;
    }
    cnn_model c;
    if (cnn_build(&c, o->batch, d->rows, (size_t)d->classes, TG_F32, o->seed, o->dropout, err))
        return -1;
    *m = (model){.tape = c.tape, .x = c.x, .labels = c.labels, .logits = c.logits,
                 .loss = c.loss, .n_params = c.n_params, .n_saved = c.n_params + c.n_buffers};
    memcpy(m->saved, c.params, (size_t)c.n_params * sizeof *c.params);
    memcpy(m->saved + c.n_params, c.buffers, (size_t)c.n_buffers * sizeof *c.buffers);
    return 0;
}

/* Fraction of d classified right: replay up to the logits, batch by batch,
 * in evaluation mode (dropout off, batch norm on its running statistics). */
static double accuracy(model *m, const tg_dataset *d, tg_batcher *b)
{
    size_t right = 0, seen = 0, classes = tg_dim(m->logits, 1);
    long got;
    bool was = tg_set_training(m->tape, false);
    while ((got = tg_batcher_next(b, m->x, m->labels)) > 0) {
        if (tg_forward(m->logits)) {
            tg_set_training(m->tape, was);
            return -1;
        }
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
    tg_set_training(m->tape, was);
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

/* Loss (left axis) and test accuracy (right axis) per epoch, as SVG,
 * replacing path atomically.  0, or -1 with the reason in why. */
static int write_chart(const char *path, const double *loss, const double *acc, int n,
                       char *why, size_t len)
{
    tg_atomic a;
    if (tg_atomic_open(&a, "--chart", path)) {
        snprintf(why, len, "%s", a.msg);
        return -1;
    }
    FILE *f = a.f;
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
    if (tg_atomic_commit(&a)) {
        snprintf(why, len, "%s", a.msg);
        return -1;
    }
    return 0;
}

/* ---- the steps of a run ------------------------------------------------- */

/* Everything a run holds; cli_train frees it (free_session) at the end. */
typedef struct session {
    options o;
    const char *source; /* where the data came from, for the first line */
    tg_err err;
    tg_dataset train, test, full;
    tg_batcher tb, eb;
    model m;
    tg_optim *opt;
    double *losses, *accs; /* per epoch, for the chart */
    bool chart_failed;     /* the last chart write failed */
} session;

/* A step returns -1 to go on, else the exit status (its message printed). */
typedef int step(session *s);

static int tape_fail(const session *s)
{
    fprintf(stderr, "tapegrad train: %s\n",
            s->m.tape ? tg_tape_error(s->m.tape) : "out of memory");
    return 1;
}

static int data_fail(const session *s)
{
    fprintf(stderr, "tapegrad train: %s\n", s->err.msg);
    return 1;
}

static int use_threads(session *s)
{
    if (s->o.threads && tg_set_threads(s->o.threads)) {
        fprintf(stderr, "tapegrad train: cannot use %d threads\n", s->o.threads);
        return 2;
    }
    return -1;
}

/* Whether path can be replaced the way tg_save and the chart write it: not
 * a directory or another non-regular file (a device such as /dev/null would
 * be replaced by a regular file), and a temporary file can be made next to
 * it (the atomic writer's own first step, undone at once).  0, or 1 with
 * the reason on stderr. */
static int writable(const char *opt, const char *path)
{
    struct stat st;
    if (!stat(path, &st) && !S_ISREG(st.st_mode)) {
        fprintf(stderr, "tapegrad train: %s %s %s\n", opt, path,
                S_ISDIR(st.st_mode) ? "is a directory" : "is not a regular file");
        return 1;
    }
    tg_atomic a;
    if (tg_atomic_open(&a, opt, path)) {
        fprintf(stderr, "tapegrad train: %s\n", a.msg);
        return 1;
    }
    tg_atomic_abort(&a);
    return 0;
}

/* --out and --chart, before anything is loaded or trained. */
static int check_outputs(session *s)
{
    const options *o = &s->o;
    struct stat a, b;
    if (!o->no_chart && !stat(o->out, &a) && !stat(o->chart, &b) && a.st_dev == b.st_dev &&
        a.st_ino == b.st_ino) {
        fprintf(stderr, "tapegrad train: --out %s and --chart %s are the same file\n", o->out,
                o->chart);
        return 2;
    }
    if (writable("--out", o->out) || (!o->no_chart && writable("--chart", o->chart)))
        return 1;
    return -1;
}

/* The data, as the usage says: --synthetic; --data DIR, which must load;
 * or, with neither, Fashion-MNIST where it is installed and else the
 * synthetic set, with a notice.  Data that is there but cannot be read is
 * an error (exit 1), never replaced by the synthetic set. */
static int load_data(session *s)
{
    options *o = &s->o;
    const char *dir = o->data;
    if (!o->synthetic && !dir) {
        if (access(DEFAULT_DATA, F_OK) == 0) {
            dir = DEFAULT_DATA;
        } else {
            fprintf(stderr, "tapegrad train: NOTE: Fashion-MNIST is not installed (no %s),\n"
                            "  so this trains on the built-in SYNTHETIC data set.  Install it "
                            "with\n  apt-get install dataset-fashion-mnist, or pass --data DIR; "
                            "--synthetic asks\n  for the synthetic set without this note.\n",
                    DEFAULT_DATA);
            o->synthetic = true;
        }
    }
    if (o->synthetic) {
        s->source = "built-in synthetic data (10 classes, 28x28)";
        if (synthetic_pair(o->seed, &s->full, &s->test)) {
            fprintf(stderr, "tapegrad train: out of memory\n");
            return 1;
        }
        return -1;
    }
    s->source = dir;
    if (load_dir(dir, &s->full, &s->test, &s->err)) {
        fprintf(stderr, "tapegrad train: cannot read the data: %s\n", s->err.msg);
        if (!o->data)
            fprintf(stderr, "  (%s is the default; --data DIR reads another directory, "
                            "--synthetic the built-in data set)\n", DEFAULT_DATA);
        return 1;
    }
    return -1;
}

/* The loss and accuracy of every epoch, for the chart (out of memory: exit 1). */
static int alloc_curves(session *s)
{
    s->losses = calloc((size_t)s->o.epochs, sizeof *s->losses);
    s->accs = calloc((size_t)s->o.epochs, sizeof *s->accs);
    return s->losses && s->accs ? -1 : 1;
}

/* The training split (the first --limit samples), a check of --layers
 * against the data, standardisation and the two batchers. */
static int prepare_data(session *s)
{
    const options *o = &s->o;
    if (o->limit && o->limit < s->full.n
            ? tg_dataset_head(&s->full, o->limit, &s->train, &s->err)
            : (s->train = s->full, s->full = (tg_dataset){0}, 0))
        return data_fail(s);
    if (!strcmp(o->model, "mlp") &&
        (o->layers[0] != s->train.dim || o->layers[o->n_layers] < (size_t)s->train.classes)) {
        fprintf(stderr, "tapegrad train: --layers must start with %zu inputs and end with at "
                        "least %d classes\n", s->train.dim, s->train.classes);
        return 2;
    }
    if (o->batch > s->train.n) {
        fprintf(stderr, "tapegrad train: --batch %zu is larger than the %zu training samples\n",
                o->batch, s->train.n);
        return 2;
    }
    if (standardize(&s->train, &s->test, &s->err) ||
        tg_batcher_init(&s->tb, &s->train, o->batch, true, true, o->seed, &s->err) ||
        tg_batcher_init(&s->eb, &s->test, o->batch, false, false, 0, &s->err))
        return data_fail(s);
    return -1;
}

/* The network on its tape and the optimizer over its parameters. */
static int build_model(session *s)
{
    const options *o = &s->o;
    if (!strcmp(o->model, "cnn")) {
        if (build_cnn(&s->m, o, &s->train, &s->err))
            return data_fail(s);
    } else if (build(&s->m, o)) {
        return tape_fail(s);
    }
    s->opt = !strcmp(o->opt, "sgd")
        ? tg_sgd_new(s->m.tape, s->m.n_params, s->m.saved,
                     &(tg_sgd_opts){.lr = o->lr, .momentum = o->momentum,
                                    .weight_decay = o->weight_decay})
        : tg_adam_new(s->m.tape, s->m.n_params, s->m.saved,
                      &(tg_adam_opts){.lr = o->lr, .weight_decay = o->weight_decay,
                                      .decoupled = o->weight_decay > 0});
    return s->opt ? -1 : tape_fail(s);
}

static void print_setup(const session *s)
{
    const options *o = &s->o;
    printf("data: %s: %zu training, %zu test samples\n", s->source, s->train.n, s->test.n);
    printf("model:");
    if (!strcmp(o->model, "cnn")) {
        printf(" cnn: conv 3x3 32, bn, ReLU, max-pool 2, conv 3x3 64, bn, ReLU, max-pool 2, "
               "dropout %g, fc 128, ReLU, fc %d,", o->dropout, s->train.classes);
    } else {
        for (int l = 0; l <= o->n_layers; l++)
            printf("%s%zu", l ? "-" : " ", o->layers[l]);
        printf(" ReLU MLP,");
    }
    printf(" softmax cross-entropy, batch %zu, %s lr %g%s%s, %d thread%s, %s kernels\n",
           o->batch, o->opt, o->lr, strcmp(o->schedule, "none") ? " " : "",
           strcmp(o->schedule, "none") ? o->schedule : "", tg_get_threads(),
           tg_get_threads() > 1 ? "s" : "", tg_isa());
}

/* The learning rate of epoch e (0-based) from --schedule. */
static void schedule_lr(session *s, int e)
{
    const options *o = &s->o;
    if (!strcmp(o->schedule, "cosine"))
        tg_optim_set_lr(s->opt, tg_lr_cosine(o->lr, 0, e, o->epochs));
    else if (!strcmp(o->schedule, "step"))
        tg_optim_set_lr(s->opt, tg_lr_step(o->lr, e, (o->epochs + 2) / 3, 0.1));
}

/* Epoch e's steps over the training set (replay, backward, optimizer step),
 * with the progress (the epoch started at t0); the batches done and the sum
 * of their losses.  0, or -1 when the tape failed. */
static int train_steps(session *s, int e, double t0, bool tty, size_t *done, double *sum)
{
    const options *o = &s->o;
    size_t steps = s->train.n / o->batch;
    int quarter = 0;
    long got;
    *done = 0;
    *sum = 0;
    while ((got = tg_batcher_next(&s->tb, s->m.x, s->m.labels)) > 0) {
        tg_zero_grad(s->m.tape);
        if (tg_replay(s->m.tape) || tg_backward(s->m.loss) || tg_optim_step(s->opt))
            return -1;
        *sum += tg_item(s->m.loss);
        ++*done;
        if (!o->quiet && (*done % 16 == 0 || *done == steps))
            progress(tty, e + 1, o->epochs, *done, steps, t0, *sum / (double)*done, &quarter);
    }
    return got < 0 ? -1 : 0;
}

/* After epoch e: the test accuracy, the epoch's line, the model file
 * (saved atomically) and the chart so far. */
static int end_epoch(session *s, int e, size_t done, double loss, double train_time)
{
    const options *o = &s->o;
    s->losses[e] = loss;
    s->accs[e] = accuracy(&s->m, &s->test, &s->eb);
    if (s->accs[e] < 0)
        return tape_fail(s);
    printf("epoch %2d/%d  train loss %.4f  test accuracy %.2f%%  %.2f s (%.0f samples/s)\n",
           e + 1, o->epochs, s->losses[e], 100 * s->accs[e], train_time,
           (double)(done * o->batch) / train_time);
    fflush(stdout);
    if (tg_save(s->m.tape, o->out, s->m.n_saved, s->m.saved))
        return tape_fail(s);
    char why[600];
    s->chart_failed = !o->no_chart && write_chart(o->chart, s->losses, s->accs, e + 1, why,
                                                  sizeof why);
    if (s->chart_failed)
        fprintf(stderr, "tapegrad train: the chart was not written: %s\n", why);
    return -1;
}

/* The setup lines, every epoch, and where the results went. */
static int run_epochs(session *s)
{
    const options *o = &s->o;
    print_setup(s);
    bool tty = !o->quiet && isatty(fileno(stderr));
    for (int e = 0; e < o->epochs; e++) {
        size_t done;
        double sum;
        schedule_lr(s, e);
        double t0 = now();
        if (train_steps(s, e, t0, tty, &done, &sum))
            return tape_fail(s);
        int status = end_epoch(s, e, done, sum / (double)done, now() - t0);
        if (status >= 0)
            return status;
    }
    if (o->no_chart) {
        printf("model saved to %s\n", o->out);
    } else if (s->chart_failed) { /* the model is saved; the chart is not there */
        printf("model saved to %s; the chart %s was NOT written (see the message above)\n",
               o->out, o->chart);
        return 1;
    } else {
        printf("model saved to %s, chart to %s\n", o->out, o->chart);
    }
    return 0;
}

static void free_session(session *s)
{
    tg_optim_free(s->opt);
    free(s->losses);
    free(s->accs);
    tg_batcher_free(&s->tb);
    tg_batcher_free(&s->eb);
    tg_tape_free(s->m.tape);
    tg_dataset_free(&s->train);
    tg_dataset_free(&s->test);
    tg_dataset_free(&s->full);
}

/* ---- main ---------------------------------------------------------------- */

int cli_train(int argc, char **argv)
{
    static step *const steps[] = {use_threads,  check_outputs, load_data, alloc_curves,
                                  prepare_data, build_model,   run_epochs};
    for (int i = 1; i + 1 < argc; i++) /* the language models: tools/train_lm.c */
        if (!strcmp(argv[i], "--model") && (!strcmp(argv[i + 1], "gpt") ||
                                            !strcmp(argv[i + 1], "gru")))
            return cli_train_lm(argc, argv);
    session s = {0};
    int status = parse(argc, argv, &s.o);
    for (size_t i = 0; status < 0 && i < sizeof steps / sizeof *steps; i++)
        status = steps[i](&s);
    free_session(&s);
    return status;
}
