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

#include "ckpt.h" /* checkpoints and --resume (tools/ckpt.c) */
#include "cnn.h" /* the convolutional network (seeds/) */
#include "dist.h" /* under mpirun (tools/dist.c) */

#include "chart.h" /* the chart and the metrics (tools/chart.c) */
#include "eval.h"  /* the architecture saved with the model */

#include "io.h" /* tg_atomic: the library's atomic file writer */

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"
#define MAX_LAYERS 16

typedef struct options {
    const char *data, *out, *chart, *opt, *schedule; /* data: NULL = the default rule */
    const char *model;                               /* "mlp" or "cnn"                */
    const char *metrics;                             /* --metrics FILE, or NULL       */
    bool layers_given;
    size_t layers[MAX_LAYERS + 1];
    int n_layers; /* number of weight layers */
    int epochs, threads;
    size_t batch, limit;
    double lr, momentum, weight_decay, dropout;
    uint64_t seed;
    bool synthetic, quiet, no_chart;
    const char *resume, *ckpt; /* --resume, --checkpoint (NULL: <out>.ckpt) */
    long long ckpt_every;
    char ckpt_buf[4200];
    size_t local_batch; /* --batch / the MPI ranks: this process's rows */
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
            "  --chart FILE       SVG chart (default train.svg), rewritten every epoch: the\n"
            "                     training loss of every step and its moving average, the\n"
            "                     test loss and test accuracy of every epoch, the learning\n"
            "                     rate when --schedule changes it\n"
            "  --no-chart         no chart\n"
            "  --metrics FILE     CSV, rewritten every epoch: the header\n"
            "                     step,epoch,split,loss,accuracy,lr,seconds then one row per\n"
            "                     step (split train: the batch's loss) and one per epoch\n"
            "                     (split test: the test loss and accuracy, a fraction);\n"
            "                     step counts the steps done, seconds since training began\n"
            "  --quiet            no progress bar\n"
            "  --checkpoint FILE  where checkpoints go (default: --out with .ckpt added):\n"
            "                     the model, the optimizer's state, the generators and\n"
            "                     the position, in the model file format\n"
            "  --checkpoint-every N  write a checkpoint every N steps (default: only on\n"
            "                     SIGINT or SIGTERM, which write one after the current step\n"
            "                     and stop the run with status 130 or 143)\n"
            "  --resume FILE      continue from a checkpoint (give the options of the run\n"
            "                     that wrote it): the weights end bit-identical to those\n"
            "                     of a run that was never stopped\n"
            "N, B, T and S are whole numbers (digits only).  --out and --chart are checked\n"
            "before the first epoch: their directory must exist and be writable.\n"
            "\n"
            "Under mpirun -np N (a build with MPI): data parallel training, each rank\n"
            "on --batch/N samples of every batch (--batch a multiple of N), gradients\n"
            "averaged over the ranks; only rank 0 prints and writes files.\n"
            "\n"
            "Exit status: 0 when the model (and the chart) were written; 130 (143) when\n"
            "SIGINT (SIGTERM) stopped it after writing a checkpoint; 1 when the data\n"
            "cannot be read, --out, --chart or --metrics cannot be written, or training\n"
            "fails (a chart or metrics write that fails during training is reported,\n"
            "training goes on, and the run ends with 1); 2 usage error.\n",
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
                                     "--opt",   "--schedule", "--model", "--dropout", "--metrics",
                                     "--resume", "--checkpoint", "--checkpoint-every"};

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
    } else if (!strcmp(a, "--resume")) {
        o->resume = v, ok = *v != 0, want = "a checkpoint file";
    } else if (!strcmp(a, "--checkpoint")) {
        o->ckpt = v, ok = *v != 0, want = "a file name";
    } else if (!strcmp(a, "--checkpoint-every")) {
        ok = cli_whole(v, 1, 1000000000000, &u), o->ckpt_every = (long long)u,
        want = "a whole number in 1..1000000000000";
    } else if (!strcmp(a, "--chart")) {
        o->chart = v, ok = *v != 0, want = "a file name";
    } else if (!strcmp(a, "--metrics")) {
        o->metrics = v, ok = *v != 0, want = "a file name";
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
    if (!o->ckpt) {
        snprintf(o->ckpt_buf, sizeof o->ckpt_buf, "%s.ckpt", o->out);
        o->ckpt = o->ckpt_buf;
    }
    if (!strcmp(o->ckpt, o->out) || (!o->no_chart && !strcmp(o->ckpt, o->chart)))
        return usage_error("--checkpoint %s names the same file as --out or --chart", o->ckpt);
    if (o->synthetic && o->data)
        return usage_error("--synthetic and --data %s: give one of them", o->data);
    if (!o->no_chart && !strcmp(o->out, o->chart))
        return usage_error("--out and --chart name the same file (%s)", o->out);
    if (o->metrics && (!strcmp(o->metrics, o->out) || (!o->no_chart && !strcmp(o->metrics, o->chart))))
        return usage_error("--metrics %s is also --out or --chart", o->metrics);
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
static int standardize(tg_dataset *train, tg_dataset *test, double *mean_sd, tg_err *err)
{
    double s = 0, s2 = 0, n = (double)train->n * (double)train->dim;
    for (size_t i = 0; i < train->n * train->dim; i++)
        s += train->x[i], s2 += (double)train->x[i] * train->x[i];
    double mean = s / n, sd = sqrt(fmax(s2 / n - mean * mean, 1e-12));
    mean_sd[0] = mean, mean_sd[1] = sd;
    return tg_dataset_normalize(train, mean, sd, err) || tg_dataset_normalize(test, mean, sd, err);
}

int cli_load_split(const char *dir, uint64_t seed, tg_dataset *train, tg_dataset *test,
                   tg_err *err)
{
    if (!dir) {
        tg_dataset tr = {0};
        if (synthetic_pair(seed, &tr, test)) {
            snprintf(err->msg, sizeof err->msg, "out of memory");
            return -1;
        }
        if (train)
            *train = tr;
        else
            tg_dataset_free(&tr);
        return 0;
    }
    if (load_split(dir, "t10k", test, err))
        return -1;
    if (train && load_split(dir, "train", train, err)) {
        tg_dataset_free(test);
        return -1;
    }
    return 0;
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
    m->x = tg_input(t, "x", TG_F32, 2, (size_t[]){o->local_batch, o->layers[0]});
    m->labels = tg_input(t, "labels", TG_I32, 1, (size_t[]){o->local_batch});
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
    if (cnn_build(&c, o->local_batch, d->rows, (size_t)d->classes, TG_F32, o->seed, o->dropout, err))
        return -1;
    *m = (model){.tape = c.tape, .x = c.x, .labels = c.labels, .logits = c.logits,
                 .loss = c.loss, .n_params = c.n_params, .n_saved = c.n_params + c.n_buffers};
    memcpy(m->saved, c.params, (size_t)c.n_params * sizeof *c.params);
    memcpy(m->saved + c.n_params, c.buffers, (size_t)c.n_buffers * sizeof *c.buffers);
    return 0;
}

/* Fraction of d classified right, and the mean cross-entropy in *loss:
 * replay up to the logits, batch by batch, in evaluation mode (dropout off,
 * batch norm on its running statistics). */
static double accuracy(model *m, const tg_dataset *d, tg_batcher *b, double *loss)
{
    size_t right = 0, seen = 0, classes = tg_dim(m->logits, 1);
    double ce = 0;
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
            double se = 0;
            for (size_t c = 0; c < classes; c++)
                se += exp((double)z[i * classes + c] - z[i * classes + best]);
            ce += log(se) + z[i * classes + best] - z[i * classes + (size_t)y[i]];
        }
        seen += (size_t)got;
    }
    tg_set_training(m->tape, was);
    (void)d;
    *loss = seen ? ce / (double)seen : NAN;
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
    bool metrics_failed;   /* the last --metrics write failed */
    cli_log log;           /* every step and epoch: chart and metrics (tools/chart.c) */
    cli_arch arch;         /* saved with the model (tools/eval.h) */
    tg_tensor *meta[2];
    char title[160];
    train_ckpt ck;         /* checkpoints (tools/ckpt.c) */
    train_pos at;          /* where the run is            */
    int rank, size;        /* under mpirun (tools/dist.c); else 0 and 1 */
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

/* Under mpirun: MPI, and this rank's share of every batch (tools/dist.c);
 * only rank 0 prints (its stdout) and writes files. */
static int use_mpi(session *s)
{
    int status = dist_start(&s->rank, &s->size);
    if (status >= 0)
        return status;
    s->o.local_batch = s->o.batch / (size_t)s->size;
    if (s->o.batch % (size_t)s->size) {
        fprintf(stderr, "tapegrad train: --batch %zu is not a multiple of the %d MPI ranks\n",
                s->o.batch, s->size);
        return 2;
    }
    if (s->rank)
        s->o.quiet = true;
    return -1;
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
    if (writable("--out", o->out) || (!o->no_chart && writable("--chart", o->chart)) ||
        (o->metrics && writable("--metrics", o->metrics)) ||
        writable("--checkpoint", o->ckpt))
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
    double mean_sd[2];
    if (standardize(&s->train, &s->test, mean_sd, &s->err) ||
        tg_batcher_init(&s->tb, &s->train, o->batch, true, true, o->seed, &s->err) ||
        tg_batcher_init(&s->eb, &s->test, o->local_batch, false, false, 0, &s->err))
        return data_fail(s);
    s->arch.mean = mean_sd[0], s->arch.sd = mean_sd[1];
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

/* The architecture record saved with the model (tools/eval.h) and the
 * chart's title. */
static int describe_model(session *s)
{
    const options *o = &s->o;
    cli_arch *a = &s->arch;
    bool cnn = !strcmp(o->model, "cnn");
    a->kind = cnn ? ARCH_CNN : ARCH_MLP;
    a->classes = (int)tg_dim(s->m.logits, 1);
    a->rows = s->train.rows, a->cols = s->train.cols;
    a->synthetic = o->synthetic, a->seed = o->seed;
    a->n_sizes = cnn ? 0 : o->n_layers + 1;
    for (int l = 0; l < a->n_sizes; l++)
        a->sizes[l] = o->layers[l];
    a->have_norm = true;
    if (cli_arch_attach(s->m.tape, a, s->meta, &s->err))
        return data_fail(s);
    int at = snprintf(s->title, sizeof s->title, "%s", cnn ? "cnn" : "mlp ");
    for (int l = 0; !cnn && l <= o->n_layers && at < (int)sizeof s->title; l++)
        at += snprintf(s->title + at, sizeof s->title - (size_t)at, "%s%zu", l ? "-" : "",
                       o->layers[l]);
    if (at < (int)sizeof s->title)
        snprintf(s->title + at, sizeof s->title - (size_t)at, " on %s, %s, batch %zu",
                 o->synthetic ? "synthetic data" : !o->data ? "Fashion-MNIST" : o->data, o->opt,
                 o->batch);
    return -1;
}

/* The log the chart and the metrics come from (tools/chart.h); after
 * --resume (setup_ckpt) it holds the steps from there on and the accuracy
 * of the epochs before. */
static int start_log(session *s)
{
    size_t per_epoch = s->train.n / s->o.batch;
    cli_log_init(&s->log, s->title, "test", (double)per_epoch);
    s->log.step0 = (size_t)s->at.step; /* --resume: the steps before are not in the log */
    for (int e = 0; e < s->at.epoch; e++) /* but the accuracy of the epochs done is */
        if (cli_log_eval_at(&s->log, (double)((size_t)(e + 1) * per_epoch), NAN, s->accs[e],
                            e + 1)) {
            fprintf(stderr, "tapegrad train: out of memory\n");
            return 1;
        }
    return -1;
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

/* The checkpoint's leaves on the model's tape, and with --resume the state
 * of the run that wrote it (tools/ckpt.c). */
static int setup_ckpt(session *s)
{
    const options *o = &s->o;
    char why[700];
    int32_t cfg[CKPT_N_CFG] = {
        [CKPT_MODEL] = !strcmp(o->model, "cnn"), [CKPT_OPT] = !strcmp(o->opt, "adam"),
        [CKPT_BATCH] = (int32_t)o->batch, [CKPT_SAMPLES] = (int32_t)s->train.n,
        [CKPT_SEED_LO] = (int32_t)(uint32_t)o->seed, [CKPT_SEED_HI] = (int32_t)(o->seed >> 32)};
    tg_tensor *list[sizeof s->m.saved / sizeof *s->m.saved + 2]; /* as end_epoch saves */
    memcpy(list, s->m.saved, (size_t)s->m.n_saved * sizeof *list);
    memcpy(list + s->m.n_saved, s->meta, sizeof s->meta);
    if (ckpt_init(&s->ck, o->ckpt, o->ckpt_every, s->m.tape, s->opt, &s->tb, s->m.n_saved + 2,
                  list, cfg, o->epochs, why, sizeof why)) {
        fprintf(stderr, "tapegrad train: %s\n", why);
        return 1;
    }
    int rc = o->resume ? ckpt_resume(&s->ck, o->resume, &s->at, s->losses, s->accs, why,
                                     sizeof why) : 0;
    if (rc)
        fprintf(stderr, "tapegrad train: %s\n", why);
    if (rc == 0 && s->size > 1 && tg_mpi_broadcast(s->m.tape, s->m.n_saved, s->m.saved))
        return tape_fail(s); /* all ranks start from rank 0's model */
    return rc == 0 ? -1 : rc == -2 ? 2 : 1;
}

/* After each step: a checkpoint every --checkpoint-every steps, and one
 * before stopping on SIGINT or SIGTERM (status 128 + the signal).  -1 to
 * go on, else the exit status. */
static int after_step(session *s)
{
    const options *o = &s->o;
    int sig = ckpt_stop_signal();
    char why[700];
    if (s->rank == 0 && (sig || (o->ckpt_every && s->at.step % o->ckpt_every == 0)) &&
        ckpt_write(&s->ck, &s->at, s->losses, s->accs, why, sizeof why)) {
        fprintf(stderr, "tapegrad train: the checkpoint was not written: %s\n", why);
        return 1;
    }
    ckpt_test_kill(&s->ck, s->at.step, s->rank);
    if (!sig)
        return -1;
    fprintf(stderr, "\ntapegrad train: stopped by %s in epoch %d after step %zu; checkpoint "
                    "written to %s (continue with --resume %s)\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM", s->at.epoch + 1, s->at.batch, o->ckpt, o->ckpt);
    return 128 + sig;
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
 * of their losses (s->at, which --resume may have started mid-epoch).  -1
 * to go on, else the exit status (a tape failure: 1). */
static int train_steps(session *s, int e, double t0, bool tty, size_t *done, double *sum)
{
    const options *o = &s->o;
    size_t steps = s->train.n / o->batch;
    int quarter = 0;
    long got;
    train_pos *at = &s->at;
    if (at->epoch != e) /* a new epoch (not the one a checkpoint stopped in) */
        *at = (train_pos){.epoch = e, .step = at->step};
    while ((got = s->size > 1 ? tg_batcher_next_shard(&s->tb, s->m.x, s->m.labels, s->rank,
                                                      s->size)
                              : tg_batcher_next(&s->tb, s->m.x, s->m.labels)) > 0) {
        tg_zero_grad(s->m.tape);
        if (tg_replay(s->m.tape) || tg_backward(s->m.loss) ||
            (s->size > 1 && tg_mpi_allreduce_grads(s->m.tape, s->m.n_params, s->m.saved)) ||
            tg_optim_step(s->opt))
            return tape_fail(s);
        at->loss_sum += tg_item(s->m.loss);
        at->batch++;
        at->step++;
        if (cli_log_step(&s->log, tg_item(s->m.loss), tg_optim_get_lr(s->opt), e + 1)) {
            fprintf(stderr, "tapegrad train: out of memory\n");
            return 1;
        }
        if (!o->quiet && (at->batch % 16 == 0 || at->batch == steps))
            progress(tty, e + 1, o->epochs, at->batch, steps, t0,
                     at->loss_sum / (double)at->batch, &quarter);
        int status = after_step(s);
        if (status >= 0)
            return status;
    }
    *done = at->batch;
    *sum = at->loss_sum;
    return got < 0 ? tape_fail(s) : -1;
}

/* After epoch e: the test accuracy, the epoch's line, the model file
 * (saved atomically) and the chart so far. */
static int end_epoch(session *s, int e, size_t done, double loss, double train_time)
{
    const options *o = &s->o;
    s->losses[e] = loss;
    double test_loss = NAN;
    s->accs[e] = accuracy(&s->m, &s->test, &s->eb, &test_loss);
    if (s->accs[e] < 0)
        return tape_fail(s);
    if (cli_log_eval(&s->log, test_loss, s->accs[e], e + 1)) {
        fprintf(stderr, "tapegrad train: out of memory\n");
        return 1;
    }
    printf("epoch %2d/%d  train loss %.4f  test accuracy %.2f%%  %.2f s (%.0f samples/s)\n",
           e + 1, o->epochs, s->losses[e], 100 * s->accs[e], train_time,
           (double)(done * o->batch) / train_time);
    fflush(stdout);
    tg_tensor *list[sizeof s->m.saved / sizeof *s->m.saved + 2];
    memcpy(list, s->m.saved, (size_t)s->m.n_saved * sizeof *list);
    memcpy(list + s->m.n_saved, s->meta, sizeof s->meta); /* the architecture */
    if (s->rank) /* under mpirun only rank 0 writes */
        return -1;
    if (tg_save(s->m.tape, o->out, s->m.n_saved + 2, list))
        return tape_fail(s);
    char why[600];
    s->chart_failed = !o->no_chart && cli_chart_write(&s->log, "--chart", o->chart, why,
                                                      sizeof why);
    if (s->chart_failed)
        fprintf(stderr, "tapegrad train: the chart was not written: %s\n", why);
    s->metrics_failed = o->metrics && cli_metrics_write(&s->log, "--metrics", o->metrics, why,
                                                        sizeof why);
    if (s->metrics_failed)
        fprintf(stderr, "tapegrad train: the metrics were not written: %s\n", why);
    return -1;
}

/* The setup lines, every epoch, and where the results went. */
static int run_epochs(session *s)
{
    const options *o = &s->o;
    print_setup(s);
    if (o->resume)
        printf("resumed from %s: epoch %d, after step %zu of it\n", o->resume,
               s->at.epoch + 1, s->at.batch);
    if (s->size > 1)
        printf("data parallel: %d MPI ranks, %zu samples of each batch per rank\n", s->size,
               o->local_batch);
    bool tty = !o->quiet && isatty(fileno(stderr));
    if (s->size == 1) /* under mpirun, mpirun's own handling of signals stays */
        ckpt_catch_signals();
    for (int e = s->at.epoch; e < o->epochs; e++) {
        size_t done;
        double sum;
        schedule_lr(s, e);
        double t0 = now();
        int stop = train_steps(s, e, t0, tty, &done, &sum);
        if (stop >= 0)
            return stop;
        if (s->size > 1 && tg_mpi_sum(&sum, 1, &s->err) == 0) /* the ranks' mean loss */
            sum /= s->size;
        int status = end_epoch(s, e, done, sum / (double)done, now() - t0);
        if (status >= 0)
            return status;
    }
    if (o->metrics && !s->metrics_failed)
        printf("metrics written to %s\n", o->metrics);
    int status = 0;
    if (s->metrics_failed) {
        printf("model saved to %s; the metrics %s were NOT written (see the message above)\n",
               o->out, o->metrics);
        status = 1;
    } else if (o->no_chart) {
        printf("model saved to %s\n", o->out);
    } else if (s->chart_failed) { /* the model is saved; the chart is not there */
        printf("model saved to %s; the chart %s was NOT written (see the message above)\n",
               o->out, o->chart);
        status = 1;
    } else {
        printf("model saved to %s, chart to %s\n", o->out, o->chart);
    }
    cli_print_peak_memory();
    return status;
}

void cli_print_peak_memory(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru))
        return;
#ifdef __APPLE__
    double mib = (double)ru.ru_maxrss / (1 << 20); /* bytes there */
#else
    double mib = (double)ru.ru_maxrss / 1024; /* KiB on Linux */
#endif
    printf("peak resident memory %.1f MiB\n", mib);
}

static void free_session(session *s)
{
    ckpt_default_signals();
    ckpt_free(&s->ck);
    tg_optim_free(s->opt);
    free(s->losses);
    free(s->accs);
    cli_log_free(&s->log);
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
    static step *const steps[] = {use_mpi, use_threads, check_outputs, load_data, alloc_curves,
                                  prepare_data, build_model,   describe_model, setup_ckpt,
                                  start_log,    run_epochs};
    for (int i = 1; i + 1 < argc; i++) /* the language models: tools/train_lm.c */
        if (!strcmp(argv[i], "--model") && (!strcmp(argv[i + 1], "gpt") ||
                                            !strcmp(argv[i + 1], "gru"))) {
            if (dist_launched() > 1) { /* each rank would write the same files */
                fprintf(stderr, "tapegrad train: --model %s does not run under mpirun (data "
                                "parallelism is for --model mlp and cnn)\n", argv[i + 1]);
                return 2;
            }
            return cli_train_lm(argc, argv);
        }
    session s = {0};
    int status = parse(argc, argv, &s.o);
    for (size_t i = 0; status < 0 && i < sizeof steps / sizeof *steps; i++)
        status = steps[i](&s);
    free_session(&s);
    dist_end(status, s.size);
    return status;
}
