/* tapegrad eval: a model saved by `tapegrad train --model mlp|cnn` on its
 * test set (accuracy, per class, confusion matrix, an SVG of the most
 * confident mistakes); tapegrad info: what a saved file holds
 * (tg_file_read).  The architecture record is described in tools/eval.h. */
#include "eval.h"

#include "cnn.h" /* the convolutional network (seeds/) */
#include "lm.h"  /* the language models' configuration record */

#include "io.h" /* tg_atomic: the library's atomic file writer */

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"
#define EVAL_BATCH 250

static const char *const FASHION[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                        "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

static const char EVAL_USAGE[] =
    "usage: tapegrad eval MODEL [--data DIR | --synthetic [--seed S]] [--images FILE]\n"
    "                    [--count N] [--no-images]\n"
    "\n"
    "Evaluate a model saved by `tapegrad train --model mlp|cnn` on the test split:\n"
    "the test accuracy and mean loss, the accuracy of every class, the confusion\n"
    "matrix (rows: the true class, columns: the predicted one; Fashion-MNIST's\n"
    "class names when the data is IDX files of 10 classes), and an SVG of the N\n"
    "test images the model got wrong with the highest confidence, each with its\n"
    "true and predicted class.  The model file records its network and the\n"
    "standardisation of its inputs (files saved before that was recorded: the\n"
    "network is inferred from the tensors' names and shapes and the\n"
    "standardisation recomputed from the training split, with a note).\n"
    "\n"
    "  --data DIR         the IDX files (DIR/t10k-images-idx3-ubyte etc., raw or .gz)\n"
    "  --synthetic        the built-in synthetic set, of the seed the model records\n"
    "                     (default: the data the model was trained on; for IDX data\n"
    "                     " DEFAULT_DATA ")\n"
    "  --seed S           the synthetic set's seed (default: the model's --seed when\n"
    "                     recorded, else 1, tapegrad train's default)\n"
    "  --images FILE      the SVG of the mistakes (default misclassified.svg)\n"
    "  --count N          mistakes drawn, 1..100 (default 16)\n"
    "  --no-images        no SVG\n"
    "\n"
    "Exit status: 0; 1 when the model or the data cannot be read, do not fit each\n"
    "other, or the SVG cannot be written; 2 usage error.\n";

static const char INFO_USAGE[] =
    "usage: tapegrad info MODEL\n"
    "\n"
    "What a file saved by tapegrad (tg_save; docs/format.md) holds: its format\n"
    "version, size and checksum status, the architecture when the file records\n"
    "one (tapegrad train saves it), and every tensor's name, dtype, shape and\n"
    "the mean, standard deviation, minimum and maximum of its values.  A file\n"
    "whose checksum does not match is still listed when its records can be\n"
    "read, marked DAMAGED.\n"
    "\n"
    "Exit status: 0; 1 when the file cannot be read or its checksum does not\n"
    "match; 2 usage error.\n";

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int usage_error(const char *cmd, const char *usage, const char *fmt, ...)
{
    fprintf(stderr, "tapegrad %s: ", cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n\n%s", usage);
    return 2;
}

/* ---- the architecture record ----------------------------------------------- */

int cli_arch_attach(tg_tape *t, const cli_arch *a, tg_tensor *meta[2], tg_err *err)
{
    int32_t v[ARCH_LEN] = {ARCH_VERSION, a->kind, a->classes, (int32_t)a->rows,
                           (int32_t)a->cols, a->synthetic, (int32_t)(uint32_t)a->seed,
                           (int32_t)(uint32_t)(a->seed >> 32), a->n_sizes};
    for (int i = 0; i < a->n_sizes && i < ARCH_MAX_SIZES; i++)
        v[9 + i] = (int32_t)a->sizes[i];
    double norm[2] = {a->mean, a->sd};
    meta[0] = tg_const(t, "train.arch", TG_I32, 1, (size_t[]){ARCH_LEN});
    meta[1] = tg_const(t, "train.norm", TG_F64, 1, (size_t[]){2});
    if (!meta[0] || !meta[1] || tg_copy_in(meta[0], v, TG_I32, ARCH_LEN) ||
        tg_copy_in(meta[1], norm, TG_F64, 2)) {
        snprintf(err->msg, sizeof err->msg, "%s",
                 tg_tape_error(t) ? tg_tape_error(t) : "out of memory");
        return -1;
    }
    return 0;
}

static const tg_file_tensor *find(const tg_file_info *fi, const char *name)
{
    for (size_t i = 0; i < fi->n; i++)
        if (!strcmp(fi->tensors[i].name, name))
            return &fi->tensors[i];
    return NULL;
}

/* "train.arch" and "train.norm" into *a, every field checked.  0; 1 when
 * the file has no record; -1 with a message when it is damaged. */
static int read_record(const tg_file_info *fi, cli_arch *a, char *why, size_t len)
{
    const tg_file_tensor *t = find(fi, "train.arch"), *nt = find(fi, "train.norm");
    if (!t)
        return 1;
    if (t->dtype != TG_I32 || t->rank != 1 || t->size != ARCH_LEN)
        return snprintf(why, len, "train.arch is not i32 [%d]", ARCH_LEN), -1;
    const int32_t *v = t->data;
    if (v[0] != ARCH_VERSION)
        return snprintf(why, len, "train.arch has version %d (this tapegrad reads %d)", v[0],
                        ARCH_VERSION), -1;
    *a = (cli_arch){.kind = v[1], .classes = v[2], .rows = (size_t)(uint32_t)v[3],
                    .cols = (size_t)(uint32_t)v[4], .synthetic = v[5] == 1,
                    .seed = (uint64_t)(uint32_t)v[6] | (uint64_t)(uint32_t)v[7] << 32,
                    .n_sizes = v[8], .recorded = true};
    bool ok = (v[1] == ARCH_MLP || v[1] == ARCH_CNN) && v[2] >= 2 && v[2] <= 1000000 &&
              v[3] >= 0 && v[3] <= 4096 && v[4] >= 0 && v[4] <= 4096 && (v[5] == 0 || v[5] == 1) &&
              (v[1] == ARCH_CNN ? v[8] == 0 && v[3] == v[4] && v[3] >= 4 && v[3] % 4 == 0
                                : v[8] >= 2 && v[8] <= ARCH_MAX_SIZES);
    for (int i = 0; ok && i < ARCH_MAX_SIZES; i++) {
        int32_t s = v[9 + i];
        ok = i < a->n_sizes ? s >= 1 && s <= 1000000 : s == 0;
        if (i < a->n_sizes)
            a->sizes[i] = (size_t)s;
    }
    if (ok && a->kind == ARCH_MLP && (int32_t)a->sizes[a->n_sizes - 1] != a->classes)
        ok = false;
    if (!ok)
        return snprintf(why, len, "train.arch holds values no tapegrad train writes (a damaged "
                                  "record)"), -1;
    if (nt) {
        const double *n = nt->data;
        if (nt->dtype != TG_F64 || nt->size != 2 || !isfinite(n[0]) || !isfinite(n[1]) ||
            n[1] <= 0)
            return snprintf(why, len, "train.norm is not f64 [2] with a deviation > 0"), -1;
        a->mean = n[0], a->sd = n[1], a->have_norm = true;
    }
    return 0;
}

/* A file without the record (saved before it existed): the MLP from W1,
 * b1, W2, ... or the CNN from its tensors' names.  0, or -1 with a message. */
static int infer(const tg_file_info *fi, cli_arch *a, char *why, size_t len)
{
    *a = (cli_arch){0};
    const tg_file_tensor *fc1 = find(fi, "fc1.W"), *fc2 = find(fi, "fc2.W");
    if (find(fi, "conv1.w") && fc1 && fc2 && fc1->rank == 2 && fc2->rank == 2) {
        double side = 4 * sqrt((double)fc1->shape[0] / 64);
        a->kind = ARCH_CNN, a->classes = (int)fc2->shape[1];
        a->rows = a->cols = (size_t)llround(side);
        a->seed = 1;
        if (a->rows * a->rows * 4 != fc1->shape[0] || a->rows < 4)
            return snprintf(why, len, "fc1.W has %zu inputs: not a cnn of tapegrad train",
                            fc1->shape[0]), -1;
        return 0;
    }
    for (int l = 1; l < ARCH_MAX_SIZES; l++) {
        char wn[16], bn[16];
        snprintf(wn, sizeof wn, "W%d", l);
        snprintf(bn, sizeof bn, "b%d", l);
        const tg_file_tensor *w = find(fi, wn), *b = find(fi, bn);
        if (!w)
            break;
        if (w->rank != 2 || !b || b->rank != 1 || b->shape[0] != w->shape[1] ||
            (l > 1 && w->shape[0] != a->sizes[l - 1]))
            return snprintf(why, len, "%s and %s do not chain as the layers of an MLP", wn, bn),
                   -1;
        if (l == 1)
            a->sizes[0] = w->shape[0];
        a->sizes[l] = w->shape[1];
        a->n_sizes = l + 1;
    }
    if (a->n_sizes < 2)
        return snprintf(why, len, "it holds neither an MLP (W1, b1, ...) nor the cnn "
                                  "(conv1.w, ...) of tapegrad train"), -1;
    a->kind = ARCH_MLP, a->classes = (int)a->sizes[a->n_sizes - 1];
    a->seed = 1; /* tapegrad train's default --seed */
    size_t side = (size_t)llround(sqrt((double)a->sizes[0]));
    if (side * side == a->sizes[0])
        a->rows = a->cols = side;
    return 0;
}

/* "mlp 784-512-10" or "cnn (28x28 images)" */
static void arch_name(const cli_arch *a, char *buf, size_t len)
{
    if (a->kind == ARCH_CNN) {
        snprintf(buf, len, "cnn for %zux%zu images, %d classes", a->rows, a->cols, a->classes);
        return;
    }
    int at = snprintf(buf, len, "mlp ");
    for (int i = 0; i < a->n_sizes && at > 0 && (size_t)at < len; i++)
        at += snprintf(buf + at, len - (size_t)at, "%s%zu", i ? "-" : "", a->sizes[i]);
}

/* ---- eval ------------------------------------------------------------------------ */

typedef struct eval_opts {
    const char *model, *data, *images;
    bool synthetic, no_images, seed_given;
    int count;
    uint64_t seed;
} eval_opts;

static int parse_eval(int argc, char **argv, eval_opts *o)
{
    *o = (eval_opts){.images = "misclassified.svg", .count = 16};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(EVAL_USAGE, stdout);
            return 0;
        } else if (!strcmp(a, "--synthetic")) {
            o->synthetic = true;
        } else if (!strcmp(a, "--no-images")) {
            o->no_images = true;
        } else if (!strcmp(a, "--data") || !strcmp(a, "--images") || !strcmp(a, "--count") ||
                   !strcmp(a, "--seed")) {
            if (i + 1 == argc || !*argv[i + 1])
                return usage_error("eval", EVAL_USAGE, "%s needs a value", a);
            const char *v = argv[++i];
            uint64_t u;
            if (!strcmp(a, "--data"))
                o->data = v;
            else if (!strcmp(a, "--images"))
                o->images = v;
            else if (!strcmp(a, "--seed") && !cli_whole(v, 0, UINT64_MAX, &o->seed))
                return usage_error("eval", EVAL_USAGE, "bad value '%s' for --seed: expected a "
                                   "whole number in 0..18446744073709551615", v);
            else if (!strcmp(a, "--seed"))
                o->seed_given = true;
            else if (!cli_whole(v, 1, 100, &u))
                return usage_error("eval", EVAL_USAGE, "bad value '%s' for --count: expected a "
                                   "whole number in 1..100", v);
            else
                o->count = (int)u;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("eval", EVAL_USAGE, "unknown option '%s'", a);
        } else if (o->model) {
            return usage_error("eval", EVAL_USAGE, "one model at a time ('%s' is extra)", a);
        } else {
            o->model = a;
        }
    }
    if (!o->model)
        return usage_error("eval", EVAL_USAGE, "which model? (a file saved by tapegrad train)");
    if (o->seed_given && o->data)
        return usage_error("eval", EVAL_USAGE, "--seed is for the synthetic set, not --data");
    if (o->synthetic && o->data)
        return usage_error("eval", EVAL_USAGE, "--synthetic and --data %s: give one of them",
                           o->data);
    if (!o->no_images && !strcmp(o->images, o->model))
        return usage_error("eval", EVAL_USAGE, "--images names the model file");
    return -1;
}

/* The network of *a on a new tape for batches of EVAL_BATCH, its saved
 * tensors loaded from path.  0, or -1 with a message. */
typedef struct net {
    tg_tape *tape;
    tg_tensor *x, *logits;
} net;

static int build_net(const cli_arch *a, const char *path, net *n, char *why, size_t len)
{
    memset(n, 0, sizeof *n);
    tg_tensor *list[2 * ARCH_MAX_SIZES + CNN_MAX_PARAMS + CNN_MAX_BUFFERS];
    int k = 0;
    if (a->kind == ARCH_CNN) {
        cnn_model c;
        tg_err e;
        if (cnn_build(&c, EVAL_BATCH, a->rows, (size_t)a->classes, TG_F32, 0, 0, &e))
            return snprintf(why, len, "%s", e.msg), -1;
        n->tape = c.tape, n->x = c.x, n->logits = c.logits;
        for (int i = 0; i < c.n_params; i++)
            list[k++] = c.params[i];
        for (int i = 0; i < c.n_buffers; i++)
            list[k++] = c.buffers[i];
    } else {
        tg_tape *t = n->tape = tg_tape_new();
        if (!t)
            return snprintf(why, len, "out of memory"), -1;
        tg_tensor *h = n->x = tg_input(t, "x", TG_F32, 2, (size_t[]){EVAL_BATCH, a->sizes[0]});
        for (int l = 1; l < a->n_sizes; l++) {
            char wn[16], bn[16];
            snprintf(wn, sizeof wn, "W%d", l);
            snprintf(bn, sizeof bn, "b%d", l);
            tg_tensor *w = tg_param(t, wn, TG_F32, 2, (size_t[]){a->sizes[l - 1], a->sizes[l]});
            tg_tensor *b = tg_param(t, bn, TG_F32, 1, (size_t[]){a->sizes[l]});
            list[k++] = w, list[k++] = b;
            h = tg_add_bias(tg_matmul(h, w), b);
            if (l + 1 < a->n_sizes)
                h = tg_relu(h);
        }
        n->logits = h;
        if (!h) {
            snprintf(why, len, "%s", tg_tape_error(t) ? tg_tape_error(t) : "out of memory");
            tg_tape_free(t);
            n->tape = NULL;
            return -1;
        }
    }
    if (tg_load(n->tape, path, k, list)) {
        snprintf(why, len, "%s", tg_tape_error(n->tape));
        tg_tape_free(n->tape);
        n->tape = NULL;
        return -1;
    }
    tg_set_training(n->tape, false);
    return 0;
}

/* What the evaluation found. */
typedef struct results {
    size_t n, right;
    double loss;       /* mean cross-entropy */
    int classes;
    size_t *confusion; /* classes × classes: [true][predicted] */
    int32_t *pred;     /* n */
    double *conf;      /* n: the predicted class's probability */
} results;

static int run_eval(net *m, const tg_dataset *d, const cli_arch *a, results *r, char *why,
                    size_t len)
{
    size_t C = tg_dim(m->logits, 1);
    r->classes = a->classes;
    r->n = d->n;
    r->confusion = calloc(C * C, sizeof *r->confusion);
    r->pred = malloc(d->n * sizeof *r->pred);
    r->conf = malloc(d->n * sizeof *r->conf);
    tg_tensor *labels = tg_input(m->tape, "eval.labels", TG_I32, 1, (size_t[]){EVAL_BATCH});
    tg_batcher b;
    tg_err e;
    if (!r->confusion || !r->pred || !r->conf || !labels)
        return snprintf(why, len, "out of memory"), -1;
    if (tg_batcher_init(&b, d, EVAL_BATCH, false, false, 0, &e))
        return snprintf(why, len, "%s", e.msg), -1;
    long got;
    size_t at = 0;
    double ce = 0;
    while ((got = tg_batcher_next(&b, m->x, labels)) > 0) {
        if (tg_forward(m->logits)) {
            got = -1;
            break;
        }
        const float *z = tg_data_f32(m->logits);
        for (long i = 0; i < got; i++, at++) {
            const float *zi = z + (size_t)i * C;
            size_t best = 0;
            for (size_t c = 1; c < C; c++)
                best = zi[c] > zi[best] ? c : best;
            double se = 0;
            for (size_t c = 0; c < C; c++)
                se += exp((double)zi[c] - zi[best]);
            size_t y = (size_t)d->y[at];
            ce += log(se) + zi[best] - zi[y];
            r->pred[at] = (int32_t)best;
            r->conf[at] = 1 / se;
            r->confusion[y * C + best]++;
            r->right += best == y;
        }
    }
    tg_batcher_free(&b);
    if (got < 0)
        return snprintf(why, len, "%s", tg_tape_error(m->tape)), -1;
    r->loss = ce / (double)(r->n ? r->n : 1);
    return 0;
}

static void free_results(results *r)
{
    free(r->confusion);
    free(r->pred);
    free(r->conf);
}

/* Class c's name, or "class c". */
static const char *class_name(bool fashion, int c, char *buf, size_t len)
{
    if (fashion && c >= 0 && c < 10)
        return FASHION[c];
    snprintf(buf, len, "class %d", c);
    return buf;
}

static void print_results(const results *r, bool fashion)
{
    int C = r->classes;
    printf("test accuracy: %.2f%% (%zu of %zu), mean loss %.4f\n\n",
           100.0 * (double)r->right / (double)r->n, r->right, r->n, r->loss);
    printf("%-12s %9s %14s\n", "class", "accuracy", "right / total");
    for (int c = 0; c < C; c++) {
        size_t tot = 0;
        for (int p = 0; p < C; p++)
            tot += r->confusion[(size_t)c * (size_t)C + (size_t)p];
        size_t ok = r->confusion[(size_t)c * (size_t)C + (size_t)c];
        char nb[24];
        if (tot)
            printf("%-12s %8.2f%% %6zu / %zu\n", class_name(fashion, c, nb, sizeof nb),
                   100.0 * (double)ok / (double)tot, ok, tot);
        else
            printf("%-12s %9s %6zu / %zu\n", class_name(fashion, c, nb, sizeof nb), "-", ok,
                   tot);
    }
    if (C > 20) {
        printf("\n(no confusion matrix: %d classes)\n", C);
        return;
    }
    printf("\nconfusion matrix (rows: true class, columns: predicted class)\n%-12s", "");
    for (int p = 0; p < C; p++) {
        char nb[24];
        printf(" %5.5s", fashion ? class_name(true, p, nb, sizeof nb) : (snprintf(nb, sizeof nb,
                                                                                   "%d", p), nb));
    }
    printf("\n");
    for (int c = 0; c < C; c++) {
        char nb[24];
        printf("%-12s", class_name(fashion, c, nb, sizeof nb));
        for (int p = 0; p < C; p++)
            printf(" %5zu", r->confusion[(size_t)c * (size_t)C + (size_t)p]);
        printf("\n");
    }
}

/* Escape &, <, > for SVG text. */
static void svg_text(FILE *f, const char *s)
{
    for (; *s; s++)
        if (*s == '&')
            fputs("&amp;", f);
        else if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else
            fputc(*s, f);
}

/* One image (d's sample i, unstandardised with mean and sd) at (x0, y0),
 * each pixel a scale × scale square: one path per grey level (16 levels),
 * runs of a row as one rectangle. */
static void draw_image(FILE *f, const tg_dataset *d, size_t i, double mean, double sd, double x0,
                       double y0, double scale)
{
    size_t R = d->rows, W = d->cols;
    const float *px = d->x + i * d->dim;
    fprintf(f, "<g class=\"image\" transform=\"translate(%g %g) scale(%g)\">\n"
               "<rect width=\"%zu\" height=\"%zu\" fill=\"#000\"/>\n", x0, y0, scale, W, R);
    for (int level = 1; level < 16; level++) {
        bool open = false;
        for (size_t y = 0; y < R; y++)
            for (size_t x = 0; x < W;) {
                double v = px[y * W + x] * sd + mean;
                int l = (int)floor(fmin(fmax(v, 0), 1) * 15 + 0.5);
                if (l != level) {
                    x++;
                    continue;
                }
                size_t run = 1;
                while (x + run < W) {
                    double u = px[y * W + x + run] * sd + mean;
                    if ((int)floor(fmin(fmax(u, 0), 1) * 15 + 0.5) != level)
                        break;
                    run++;
                }
                if (!open)
                    fprintf(f, "<path fill=\"#%02x%02x%02x\" d=\"", level * 17, level * 17,
                            level * 17);
                open = true;
                fprintf(f, "M%zu %zuh%zuv1h-%zuz", x, y, run, run);
                x += run;
            }
        if (open)
            fprintf(f, "\"/>\n");
    }
    fprintf(f, "</g>\n");
}

static int cmp_conf_desc(const void *a, const void *b, const double *conf)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    if (conf[i] != conf[j])
        return conf[i] > conf[j] ? -1 : 1;
    return (i > j) - (i < j);
}

/* The `count` mistakes of highest confidence, as a grid of images. */
static int write_mistakes(const eval_opts *o, const tg_dataset *d, const cli_arch *a,
                          const results *r, bool fashion, int *drawn, char *why, size_t len)
{
    size_t n_wrong = 0;
    size_t *wrong = malloc((r->n ? r->n : 1) * sizeof *wrong);
    if (!wrong)
        return snprintf(why, len, "out of memory"), -1;
    for (size_t i = 0; i < r->n; i++)
        if (r->pred[i] != d->y[i])
            wrong[n_wrong++] = i;
    /* selection of the top count by confidence (count <= 100: simple) */
    size_t k = n_wrong < (size_t)o->count ? n_wrong : (size_t)o->count;
    for (size_t s = 0; s < k; s++) {
        size_t best = s;
        for (size_t t = s + 1; t < n_wrong; t++)
            if (cmp_conf_desc(&wrong[t], &wrong[best], r->conf) < 0)
                best = t;
        size_t tmp = wrong[s];
        wrong[s] = wrong[best];
        wrong[best] = tmp;
    }
    tg_atomic at;
    if (tg_atomic_open(&at, "--images", o->images)) {
        free(wrong);
        return snprintf(why, len, "%s", at.msg), -1;
    }
    FILE *f = at.f;
    const int cols = 4, cell_w = 160, img = 112, cell_h = img + 48;
    double scale = (double)img / (double)(d->rows > d->cols ? d->rows : d->cols);
    int rows = (int)((k + cols - 1) / cols);
    int W = cols * cell_w, H = 44 + (rows ? rows : 1) * cell_h;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"11\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
               "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">",
            W, H, W, H, W / 2);
    fprintf(f, "the %zu most confident mistakes of ", k);
    svg_text(f, o->model);
    fprintf(f, " (%zu of %zu wrong)</text>\n", n_wrong, r->n);
    for (size_t s = 0; s < k; s++) {
        size_t i = wrong[s];
        double x0 = (double)(s % (size_t)cols) * cell_w + (cell_w - img) / 2.0;
        double y0 = 40 + (double)(s / (size_t)cols) * cell_h;
        char nb[24], pb[24];
        fprintf(f, "<g class=\"mistake\" data-index=\"%zu\" data-true=\"%d\" data-pred=\"%d\">\n",
                i, d->y[i], r->pred[i]);
        draw_image(f, d, i, a->mean, a->sd, x0, y0, scale);
        fprintf(f, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">true: ", x0 + img / 2.0,
                y0 + img + 16);
        svg_text(f, class_name(fashion, d->y[i], nb, sizeof nb));
        fprintf(f, "</text>\n<text x=\"%g\" y=\"%g\" text-anchor=\"middle\" fill=\"#c92a2a\">"
                   "predicted: ", x0 + img / 2.0, y0 + img + 32);
        svg_text(f, class_name(fashion, r->pred[i], pb, sizeof pb));
        fprintf(f, " (%.1f%%)</text>\n</g>\n", floor(1000 * r->conf[i]) / 10);
    }
    fprintf(f, "</svg>\n");
    free(wrong);
    *drawn = (int)k;
    if (tg_atomic_commit(&at))
        return snprintf(why, len, "%s", at.msg), -1;
    return 0;
}

/* The model file's architecture: recorded, or inferred for an older file
 * (with a note); 0, or 1 after a message. */
static int model_arch(const char *path, cli_arch *a)
{
    tg_file_info fi;
    tg_err e;
    if (tg_file_read(path, false, &fi, &e)) {
        fprintf(stderr, "tapegrad eval: %s\n", e.msg);
        return 1;
    }
    char why[300];
    int rc = read_record(&fi, a, why, sizeof why);
    if (rc == 1 && find(&fi, "lm.config")) {
        fprintf(stderr, "tapegrad eval: %s is a language model (tapegrad train --model gpt|gru); "
                        "eval is for --model mlp|cnn (tapegrad generate samples from it)\n", path);
        rc = -2;
    } else if (rc == 1 && infer(&fi, a, why, sizeof why) == 0) {
        fprintf(stderr, "tapegrad eval: note: %s records no architecture (saved by an older "
                        "tapegrad); inferred from its tensors\n", path);
        rc = 0;
    } else if (rc) {
        fprintf(stderr, "tapegrad eval: %s: not a model of tapegrad train --model mlp|cnn: %s\n",
                path, why);
    }
    tg_file_free(&fi);
    return rc ? 1 : 0;
}

/* The test data eval reads, standardised; the training split only to
 * recompute a standardisation the model does not record.  0, or 1. */
static int eval_data(const eval_opts *o, cli_arch *a, tg_dataset *test, const char **source)
{
    const char *dir = o->data;
    bool synth = o->synthetic || (!dir && a->synthetic);
    if (!synth && !dir) {
        dir = DEFAULT_DATA;
        if (access(dir, F_OK)) {
            fprintf(stderr, "tapegrad eval: no data: %s is not installed (apt-get install "
                            "dataset-fashion-mnist); give --data DIR or --synthetic\n", dir);
            return 1;
        }
    }
    *source = synth ? "built-in synthetic data" : dir;
    if (o->seed_given)
        a->seed = o->seed;
    tg_err e;
    tg_dataset train = {0};
    if (cli_load_split(synth ? NULL : dir, a->seed, a->have_norm ? NULL : &train, test, &e)) {
        fprintf(stderr, "tapegrad eval: cannot read the data: %s\n", e.msg);
        return 1;
    }
    if (!a->have_norm) { /* an older file: as tapegrad train computed it */
        double s = 0, s2 = 0, n = (double)train.n * (double)train.dim;
        for (size_t i = 0; i < train.n * train.dim; i++)
            s += train.x[i], s2 += (double)train.x[i] * train.x[i];
        a->mean = s / n, a->sd = sqrt(fmax(s2 / n - a->mean * a->mean, 1e-12));
        a->have_norm = true;
        fprintf(stderr, "tapegrad eval: note: the standardisation (mean %.4f, deviation %.4f) "
                        "is recomputed from the whole training split\n", a->mean, a->sd);
        tg_dataset_free(&train);
    }
    size_t in = a->kind == ARCH_CNN ? a->rows * a->cols : a->sizes[0];
    if (test->dim != in || test->classes > a->classes ||
        (a->kind == ARCH_CNN && (test->rows != a->rows || test->cols != a->cols))) {
        fprintf(stderr, "tapegrad eval: the data does not fit the model: %zu values a sample "
                        "(%zux%zu) and %d classes, the model takes %zu values (%zux%zu) and %d "
                        "classes\n", test->dim, test->rows, test->cols, test->classes, in,
                a->rows, a->cols, a->classes);
        tg_dataset_free(test);
        return 1;
    }
    if (tg_dataset_normalize(test, a->mean, a->sd, &e)) {
        fprintf(stderr, "tapegrad eval: %s\n", e.msg);
        tg_dataset_free(test);
        return 1;
    }
    return 0;
}

int cli_eval(int argc, char **argv)
{
    eval_opts o;
    int status = parse_eval(argc, argv, &o);
    if (status >= 0)
        return status;
    cli_arch a;
    if (model_arch(o.model, &a))
        return 1;
    tg_dataset test = {0};
    const char *source;
    if (eval_data(&o, &a, &test, &source))
        return 1;
    net m;
    results r = {0};
    char why[700], desc[200];
    status = 1;
    if (build_net(&a, o.model, &m, why, sizeof why)) {
        fprintf(stderr, "tapegrad eval: %s\n", why);
        goto done;
    }
    arch_name(&a, desc, sizeof desc);
    printf("model: %s: %s; inputs standardised with mean %.4f, deviation %.4f\n", o.model, desc,
           a.mean, a.sd);
    printf("data: %s: %zu test samples\n", source, test.n);
    if (run_eval(&m, &test, &a, &r, why, sizeof why)) {
        fprintf(stderr, "tapegrad eval: %s\n", why);
        goto done;
    }
    bool fashion = !(o.synthetic || (!o.data && a.synthetic)) && a.classes == 10;
    print_results(&r, fashion);
    status = 0;
    if (!o.no_images && test.rows * test.cols == test.dim && test.rows) {
        int drawn = 0;
        if (write_mistakes(&o, &test, &a, &r, fashion, &drawn, why, sizeof why)) {
            fprintf(stderr, "tapegrad eval: the images were not written: %s\n", why);
            status = 1;
        } else {
            printf("\nwrote %s: the %d most confident mistakes\n", o.images, drawn);
        }
    }
done:
    free_results(&r);
    tg_tape_free(m.tape);
    tg_dataset_free(&test);
    return status;
}

/* ---- info ------------------------------------------------------------------------- */

/* A name with control characters shown as '?'. */
static void print_name(const char *s, int width)
{
    int n = 0;
    for (; *s; s++, n++)
        putchar((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s);
    for (; n < width; n++)
        putchar(' ');
}

static void print_arch(const tg_file_info *fi)
{
    cli_arch a;
    char why[300], desc[200];
    int rc = read_record(fi, &a, why, sizeof why);
    const tg_file_tensor *lc = find(fi, "lm.config");
    if (rc == 0) {
        arch_name(&a, desc, sizeof desc);
        printf("architecture: %s (tapegrad train --model %s), trained on %s", desc,
               a.kind == ARCH_CNN ? "cnn" : "mlp",
               a.synthetic ? "the built-in synthetic set" : "IDX files");
        if (a.synthetic)
            printf(" of seed %llu", (unsigned long long)a.seed);
        if (a.have_norm)
            printf("; inputs standardised with mean %.4f, deviation %.4f", a.mean, a.sd);
        printf("\n");
    } else if (rc < 0) {
        printf("architecture: DAMAGED record: %s\n", why);
    } else if (lc && lc->dtype == TG_I32 && lc->size == LM_CONFIG_LEN) {
        lm_config c;
        tg_err e;
        if (lm_config_unpack(lc->data, &c, &e))
            printf("architecture: DAMAGED lm.config: %s\n", e.msg);
        else if (c.model == LM_GPT)
            printf("architecture: gpt (tapegrad train --model gpt): %d layers, %d heads, width "
                   "%d, ctx %d, vocabulary %d\n", c.layers, c.heads, c.width, c.ctx, c.vocab);
        else
            printf("architecture: gru (tapegrad train --model gru): %d layer%s of width %d, ctx "
                   "%d, vocabulary %d\n", c.layers, c.layers > 1 ? "s" : "", c.width, c.ctx,
                   c.vocab);
    } else if (infer(fi, &a, why, sizeof why) == 0) {
        arch_name(&a, desc, sizeof desc);
        printf("architecture: not recorded; the tensors fit a %s\n", desc);
    } else {
        printf("architecture: not recorded\n");
    }
}

int cli_info(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(INFO_USAGE, stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return usage_error("info", INFO_USAGE, "unknown option '%s'", argv[i]);
        } else if (path) {
            return usage_error("info", INFO_USAGE, "one file at a time ('%s' is extra)", argv[i]);
        }
        path = argv[i];
    }
    if (!path)
        return usage_error("info", INFO_USAGE, "which file?");
    tg_file_info fi;
    tg_err e;
    if (tg_file_read(path, true, &fi, &e)) {
        fprintf(stderr, "tapegrad info: %s\n", e.msg);
        return 1;
    }
    size_t values = 0;
    int w = 12;
    for (size_t i = 0; i < fi.n; i++) {
        values += fi.tensors[i].size;
        int l = (int)strlen(fi.tensors[i].name);
        w = l > w && l <= 40 ? l : w;
    }
    printf("file: %s: %llu bytes, format version %u\n", path, (unsigned long long)fi.size,
           fi.version);
    if (fi.checksum_ok)
        printf("checksum: CRC-32C 0x%08x, OK\n", fi.checksum_stored);
    else
        printf("checksum: MISMATCH: stored 0x%08x, computed 0x%08x: the file is DAMAGED (the "
               "values below may be wrong; tg_load refuses it)\n", fi.checksum_stored,
               fi.checksum_computed);
    print_arch(&fi);
    printf("tensors: %zu (%zu values)\n\n", fi.n, values);
    printf("%-*s  %-5s  %-14s  %11s  %11s  %11s  %11s\n", w, "name", "dtype", "shape", "mean",
           "std", "min", "max");
    for (size_t i = 0; i < fi.n; i++) {
        const tg_file_tensor *t = &fi.tensors[i];
        double s = 0, s2 = 0, lo = INFINITY, hi = -INFINITY;
        size_t bad = 0;
        for (size_t j = 0; j < t->size; j++) {
            double v = t->dtype == TG_F32   ? ((const float *)t->data)[j]
                       : t->dtype == TG_F64 ? ((const double *)t->data)[j]
                                            : ((const int32_t *)t->data)[j];
            if (!isfinite(v)) {
                bad++;
                continue;
            }
            s += v, s2 += v * v, lo = fmin(lo, v), hi = fmax(hi, v);
        }
        double n = (double)(t->size - bad), mean = n ? s / n : NAN;
        double sd = n ? sqrt(fmax(s2 / n - mean * mean, 0)) : NAN;
        char shape[64] = "scalar";
        int at = 0;
        for (int k = 0; k < t->rank && at >= 0 && at < (int)sizeof shape; k++)
            at += snprintf(shape + at, sizeof shape - (size_t)at, k ? "x%zu" : "%zu",
                           t->shape[k]);
        print_name(t->name, w);
        printf("  %-5s  %-14s  %11.4g  %11.4g  %11.4g  %11.4g", tg_dtype_name(t->dtype), shape,
               mean, sd, n ? lo : NAN, n ? hi : NAN);
        if (bad)
            printf("  (%zu not finite)", bad);
        printf("\n");
    }
    int rc = fi.checksum_ok ? 0 : 1;
    tg_file_free(&fi);
    return rc;
}
