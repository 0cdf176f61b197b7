/* Labelled data sets in memory (from IDX files), their preprocessing
 * (normalisation, area-averaging resize, head) and seeded mini-batches. */
#include "io.h"

#include <math.h>
#include <stdio.h>

/* messages into a tg_err (tg_msgf, src/io/file.c) */
#define fail TG_ERR_MSG

void tg_dataset_free(tg_dataset *d)
{
    if (!d)
        return;
    tg_free(d->x);
    tg_free(d->y);
    memset(d, 0, sizeof *d);
}

int tg_dataset_new(tg_dataset *d, size_t n, size_t dim, int classes, tg_err *err)
{
    if (!d)
        return fail(err, "dataset_new: data set is NULL");
    memset(d, 0, sizeof *d);
    if (n == 0 || dim == 0 || classes < 1)
        return fail(err, "dataset_new: %zu samples, %zu features, %d classes: each must be >= 1",
                    n, dim, classes);
    if (dim > SIZE_MAX / sizeof(float) / n)
        return fail(err, "dataset_new: %zu x %zu features overflow", n, dim);
    d->x = tg_malloc(n * dim * sizeof(float));
    d->y = tg_malloc(n * sizeof(int32_t));
    if (!d->x || !d->y) {
        tg_dataset_free(d);
        return fail(err, "dataset_new: out of memory");
    }
    memset(d->x, 0, n * dim * sizeof(float));
    memset(d->y, 0, n * sizeof(int32_t));
    d->n = n, d->dim = dim, d->classes = classes;
    return TG_OK;
}

/* ---- loading ------------------------------------------------------------- */

int tg_dataset_load_idx(const char *images, const char *labels, tg_dataset *out, tg_err *err)
{
    if (!out)
        return fail(err, "dataset: out is NULL");
    memset(out, 0, sizeof *out);
    if (!images || !labels)
        return fail(err, "dataset: the %s path is NULL", images ? "labels" : "images");
    tg_idx im, lb;
    if (tg_idx_read(images, &im, err))
        return TG_ERR;
    if (tg_idx_read(labels, &lb, err)) {
        tg_idx_free(&im);
        return TG_ERR;
    }
    int rc = TG_ERR;
    if (im.type != 0x08 || im.rank != 3) {
        fail(err, "dataset: %s: images must be u8 (type 0x08) of rank 3 [n, rows, cols], "
                  "got type 0x%02x of rank %d", images, im.type, im.rank);
        goto done;
    }
    if (lb.type != 0x08 || lb.rank != 1) {
        fail(err, "dataset: %s: labels must be u8 (type 0x08) of rank 1 [n], got type 0x%02x "
                  "of rank %d", labels, lb.type, lb.rank);
        goto done;
    }
    if (im.dims[0] != lb.dims[0]) {
        fail(err, "dataset: %zu images (%s) but %zu labels (%s)", im.dims[0], images,
             lb.dims[0], labels);
        goto done;
    }
    size_t n = im.dims[0], dim = im.dims[1] * im.dims[2]; /* fits: tg_idx checked */
    if (n * dim > SIZE_MAX / sizeof(float)) {
        fail(err, "dataset: %s: %zu images of %zu pixels do not fit in memory as f32", images,
             n, dim);
        goto done;
    }
    out->x = tg_malloc(n * dim * sizeof(float));
    out->y = tg_malloc(n * sizeof(int32_t));
    if (!out->x || !out->y) {
        fail(err, "dataset: out of memory for %zu samples of %zu features", n, dim);
        goto done;
    }
    const uint8_t *px = im.data, *py = lb.data;
    for (size_t i = 0; i < n * dim; i++)
        out->x[i] = (float)px[i] / 255.0f;
    int max = 0;
    for (size_t i = 0; i < n; i++) {
        out->y[i] = py[i];
        if (py[i] > max)
            max = py[i];
    }
    out->n = n;
    out->dim = dim;
    out->rows = im.dims[1];
    out->cols = im.dims[2];
    out->classes = max + 1;
    rc = TG_OK;
done:
    tg_idx_free(&im);
    tg_idx_free(&lb);
    if (rc != TG_OK)
        tg_dataset_free(out);
    return rc;
}

/* A data set must hold samples before it is transformed. */
static int check_data(const tg_dataset *d, const char *fn, tg_err *err)
{
    if (!d)
        return fail(err, "%s: data set is NULL", fn);
    if (!d->x || !d->y || d->n == 0 || d->dim == 0)
        return fail(err, "%s: the data set is empty (%zu samples of %zu features)", fn, d->n,
                    d->dim);
    return TG_OK;
}

int tg_dataset_normalize(tg_dataset *d, double mean, double std, tg_err *err)
{
    if (check_data(d, "dataset_normalize", err))
        return TG_ERR;
    if (!isfinite(mean) || !(std > 0) || !isfinite(std))
        return fail(err, "dataset_normalize: mean %g must be finite and std %g finite and > 0",
                    mean, std);
    size_t n = d->n * d->dim;
    float *x = d->x;
    for (size_t i = 0; i < n; i++) /* in f64, rounded once to f32 */
        x[i] = (float)(((double)x[i] - mean) / std);
    return TG_OK;
}

/* ---- resizing by area averaging -------------------------------------------
 * Output pixel i along an axis of n_in → n_out covers the input interval
 * [i·n_in/n_out, (i+1)·n_in/n_out).  In units of 1/n_out that is
 * [i·n_in, (i+1)·n_in), and input pixel k is [k·n_out, (k+1)·n_out), so the
 * overlaps are exact integers; the weight of k in i is overlap / n_in (the
 * weights of one output pixel sum to 1).  A 2-D pixel's weight is the product
 * of its row and column weights, which makes the resize separable. */

/* The dense weight matrix W [n_out × n_in] of one axis. */
static void axis_weights(double *w, size_t n_in, size_t n_out)
{
    for (size_t i = 0; i < n_out; i++) {
        double *row = w + i * n_in;
        uint64_t lo = (uint64_t)i * n_in, hi = lo + n_in;
        for (size_t k = 0; k < n_in; k++) {
            uint64_t klo = (uint64_t)k * n_out, khi = klo + n_out;
            uint64_t a = lo > klo ? lo : klo, b = hi < khi ? hi : khi;
            row[k] = b > a ? (double)(b - a) / (double)n_in : 0;
        }
    }
}

int tg_dataset_resize(tg_dataset *d, size_t new_rows, size_t new_cols, tg_err *err)
{
    if (check_data(d, "dataset_resize", err))
        return TG_ERR;
    if (d->rows == 0 || d->cols == 0 || d->rows * d->cols != d->dim)
        return fail(err, "dataset_resize: the samples are not images (rows %zu x cols %zu, "
                         "%zu features)", d->rows, d->cols, d->dim);
    const size_t lim = 1 << 15; /* weight matrices stay small */
    if (new_rows == 0 || new_cols == 0 || new_rows > lim || new_cols > lim)
        return fail(err, "dataset_resize: new size %zux%zu must be between 1x1 and %zux%zu",
                    new_rows, new_cols, lim, lim);
    if (d->rows > lim || d->cols > lim)
        return fail(err, "dataset_resize: images of %zux%zu are too large to resize",
                    d->rows, d->cols);
    size_t R = d->rows, C = d->cols, r = new_rows, c = new_cols, nd = r * c;
    if (d->n > SIZE_MAX / sizeof(float) / nd)
        return fail(err, "dataset_resize: %zu images of %zux%zu do not fit in memory", d->n,
                    r, c);
    float *x = tg_malloc(d->n * nd * sizeof(float));
    double *wy = tg_malloc(r * R * sizeof(double));
    double *wx = tg_malloc(c * C * sizeof(double));
    double *tmp = tg_malloc(R * c * sizeof(double));
    if (!x || !wy || !wx || !tmp) {
        tg_free(x);
        tg_free(wy);
        tg_free(wx);
        tg_free(tmp);
        return fail(err, "dataset_resize: out of memory");
    }
    axis_weights(wy, R, r);
    axis_weights(wx, C, c);
    for (size_t s = 0; s < d->n; s++) {
        const float *in = d->x + s * d->dim;
        /* tmp [R × c] = in [R × C] · wxᵀ */
        for (size_t k = 0; k < R; k++)
            for (size_t j = 0; j < c; j++) {
                double acc = 0;
                for (size_t l = 0; l < C; l++)
                    acc += wx[j * C + l] * in[k * C + l];
                tmp[k * c + j] = acc;
            }
        /* out [r × c] = wy [r × R] · tmp */
        float *o = x + s * nd;
        for (size_t i = 0; i < r; i++)
            for (size_t j = 0; j < c; j++) {
                double acc = 0;
                for (size_t k = 0; k < R; k++)
                    acc += wy[i * R + k] * tmp[k * c + j];
                o[i * c + j] = (float)acc;
            }
    }
    tg_free(wy);
    tg_free(wx);
    tg_free(tmp);
    tg_free(d->x);
    d->x = x;
    d->rows = r;
    d->cols = c;
    d->dim = nd;
    return TG_OK;
}

int tg_dataset_head(const tg_dataset *d, size_t n, tg_dataset *out, tg_err *err)
{
    if (!out)
        return fail(err, "dataset_head: out is NULL");
    if (out == d)
        return fail(err, "dataset_head: out must differ from the source data set");
    memset(out, 0, sizeof *out);
    if (check_data(d, "dataset_head", err))
        return TG_ERR;
    if (n == 0 || n > d->n)
        return fail(err, "dataset_head: n = %zu is outside 1..%zu", n, d->n);
    out->x = tg_malloc(n * d->dim * sizeof(float));
    out->y = tg_malloc(n * sizeof(int32_t));
    if (!out->x || !out->y) {
        tg_dataset_free(out);
        return fail(err, "dataset_head: out of memory");
    }
    memcpy(out->x, d->x, n * d->dim * sizeof(float));
    memcpy(out->y, d->y, n * sizeof(int32_t));
    out->n = n;
    out->dim = d->dim;
    out->rows = d->rows;
    out->cols = d->cols;
    out->classes = d->classes;
    return TG_OK;
}

/* ---- mini-batches -------------------------------------------------------- */

static void shuffle(tg_batcher *b)
{
    size_t n = b->data->n;
    for (size_t i = n; i-- > 1;) {
        size_t j = (size_t)tg_rng_below(&b->rng, (uint64_t)i + 1);
        size_t t = b->order[i];
        b->order[i] = b->order[j];
        b->order[j] = t;
    }
}

int tg_batcher_init(tg_batcher *b, const tg_dataset *d, size_t batch, bool shuffle_each,
                    bool drop_last, uint64_t seed, tg_err *err)
{
    if (!b)
        return fail(err, "batcher_init: batcher is NULL");
    memset(b, 0, sizeof *b);
    if (check_data(d, "batcher_init", err))
        return TG_ERR;
    if (d->classes < 1)
        return fail(err, "batcher_init: the data set has %d classes", d->classes);
    if (batch == 0)
        return fail(err, "batcher_init: batch size is 0");
    if (drop_last && batch > d->n)
        return fail(err, "batcher_init: batch %zu is larger than the data set (%zu samples), "
                         "so drop_last would drop every batch", batch, d->n);
    if (d->n > SIZE_MAX / sizeof(size_t))
        return fail(err, "batcher_init: too many samples");
    b->order = tg_malloc(d->n * sizeof(size_t));
    if (!b->order)
        return fail(err, "batcher_init: out of memory");
    for (size_t i = 0; i < d->n; i++)
        b->order[i] = i;
    b->data = d;
    b->batch = batch;
    b->pos = 0;
    b->shuffle = shuffle_each;
    b->drop_last = drop_last;
    tg_rng_seed(&b->rng, seed);
    if (shuffle_each)
        shuffle(b);
    return TG_OK;
}

/* What both tg_batcher_next functions check first: the tensors are there,
 * the batcher is initialised, x is [batch, dim] (or [batch, ...] of dim
 * elements a sample, e.g. [batch, 1, rows, cols]) f32 or f64.  fn and yname
 * name the function and its second tensor in the messages.  0 or -1. */
static int check_batch(const tg_batcher *b, const tg_tensor *x, const tg_tensor *y,
                       const char *fn, const char *yname)
{
    tg_tape *tape = x ? x->tape : y ? y->tape : NULL;
    if (!x || !y) {
        if (tape)
            tg_error(tape, "%s: the %s tensor is NULL", fn, x ? yname : "x");
        return -1;
    }
    if (!b || !b->data || !b->order) {
        tg_error(tape, "%s: the batcher is NULL or not initialised", fn);
        return -1;
    }
    if (x->dtype != TG_F32 && x->dtype != TG_F64) {
        tg_error(tape, "%s: x '%s' must be f32 or f64, not %s", fn, tg_label(x),
                 tg_dtype_name((tg_dtype)x->dtype));
        return -1;
    }
    size_t features = x->rank >= 2 ? x->size / x->shape[0] : 0;
    if (x->rank < 2 || x->shape[0] != b->batch || features != b->data->dim) {
        tg_error(tape, "%s: x '%s' is %s, expected %zux%zu (batch x features) or %zux... "
                 "with %zu elements a sample", fn, tg_label(x), tg_shp_of(x).s, b->batch,
                 b->data->dim, b->batch, b->data->dim);
        return -1;
    }
    return 0;
}

/* The number of samples of the next batch: 0 at the end of the epoch. */
static size_t next_size(const tg_batcher *b)
{
    size_t left = b->data->n - b->pos;
    return b->drop_last && left < b->batch ? 0 : left < b->batch ? left : b->batch;
}

/* The number of samples k of the next batch, its rows copied into x and
 * the rest of x zeroed; 0 at the end of the epoch (the batcher is then
 * rewound and reshuffled, x is left as it was).  b->pos still points at
 * the batch's first sample. */
static size_t take_rows(tg_batcher *b, tg_tensor *x)
{
    const tg_dataset *d = b->data;
    size_t k = next_size(b), dim = d->dim;
    if (k == 0) {
        b->pos = 0; /* end of the epoch: the next call starts a new one */
        if (b->shuffle)
            shuffle(b);
        return 0;
    }
    const size_t *idx = b->order + b->pos;
    if (x->dtype == TG_F32) {
        float *dst = x->data;
        for (size_t i = 0; i < k; i++)
            memcpy(dst + i * dim, d->x + idx[i] * dim, dim * sizeof(float));
        memset(dst + k * dim, 0, (b->batch - k) * dim * sizeof(float));
    } else {
        double *dst = x->data;
        for (size_t i = 0; i < k; i++) {
            const float *src = d->x + idx[i] * dim;
            for (size_t j = 0; j < dim; j++)
                dst[i * dim + j] = src[j];
        }
        memset(dst + k * dim, 0, (b->batch - k) * dim * sizeof(double));
    }
    return k;
}

long tg_batcher_next(tg_batcher *b, tg_tensor *x, tg_tensor *labels)
{
    const char *fn = "batcher_next";
    if (check_batch(b, x, labels, fn, "labels"))
        return -1;
    if (labels->dtype != TG_I32) {
        tg_error(labels->tape, "%s: labels '%s' must be i32, not %s", fn, tg_label(labels),
                 tg_dtype_name((tg_dtype)labels->dtype));
        return -1;
    }
    if (labels->rank != 1 || labels->shape[0] != b->batch) {
        tg_error(labels->tape, "%s: labels '%s' is %s, expected %zu (batch)", fn,
                 tg_label(labels), tg_shp_of(labels).s, b->batch);
        return -1;
    }
    size_t k = take_rows(b, x);
    int32_t *y = labels->data;
    for (size_t i = 0; i < k; i++)
        y[i] = b->data->y[b->order[b->pos + i]];
    /* -1 is no class: a loss over the padding fails rather than training it as class 0 */
    for (size_t i = k; k && i < b->batch; i++)
        y[i] = -1;
    b->pos += k;
    return (long)k;
}

long tg_batcher_next_targets(tg_batcher *b, tg_tensor *x, tg_tensor *targets)
{
    const char *fn = "batcher_next_targets";
    if (check_batch(b, x, targets, fn, "targets"))
        return -1;
    tg_tape *tape = targets->tape;
    const tg_dataset *d = b->data;
    if (targets->dtype != TG_F32 && targets->dtype != TG_F64) {
        tg_error(tape, "%s: targets '%s' must be f32 or f64, not %s", fn, tg_label(targets),
                 tg_dtype_name((tg_dtype)targets->dtype));
        return -1;
    }
    if (targets->rank != 2 || targets->shape[0] != b->batch ||
        targets->shape[1] < (size_t)d->classes) {
        tg_error(tape, "%s: targets '%s' is %s, expected %zu x at least %d (batch x classes)",
                 fn, tg_label(targets), tg_shp_of(targets).s, b->batch, d->classes);
        return -1;
    }
    size_t c = targets->shape[1], k = next_size(b);
    for (size_t i = 0; i < k; i++) { /* before anything is written */
        int32_t y = d->y[b->order[b->pos + i]];
        if (y < 0 || (size_t)y >= c) {
            tg_error(tape, "%s: label %d of sample %zu is outside [0, %zu)", fn, (int)y,
                     b->order[b->pos + i], c);
            return -1;
        }
    }
    if ((k = take_rows(b, x)) == 0)
        return 0;
    /* row i < k: 1/k at its class, so that Σ t = 1 over the batch; padding: 0 */
    double w = 1.0 / (double)k;
    if (targets->dtype == TG_F32)
        memset(targets->data, 0, b->batch * c * sizeof(float));
    else
        memset(targets->data, 0, b->batch * c * sizeof(double));
    for (size_t i = 0; i < k; i++) {
        size_t at = i * c + (size_t)d->y[b->order[b->pos + i]];
        if (targets->dtype == TG_F32)
            ((float *)targets->data)[at] = (float)w;
        else
            ((double *)targets->data)[at] = w;
    }
    b->pos += k;
    return (long)k;
}

void tg_batcher_free(tg_batcher *b)
{
    if (!b)
        return;
    tg_free(b->order);
    memset(b, 0, sizeof *b);
}

long tg_batcher_next_shard(tg_batcher *b, tg_tensor *x, tg_tensor *labels, int rank, int size)
{
    const char *fn = "batcher_next_shard";
    tg_tape *tape = x ? x->tape : labels ? labels->tape : NULL;
    if (!x || !labels || !b || !b->data || !b->order) {
        if (tape)
            tg_error(tape, "%s: %s", fn, !x ? "x is NULL" : !labels ? "labels is NULL"
                                                          : "the batcher is NULL or not "
                                                            "initialised");
        return -1;
    }
    if (size < 1 || rank < 0 || rank >= size) {
        tg_error(tape, "%s: rank %d of %d: need size >= 1 and 0 <= rank < size", fn, rank,
                 size);
        return -1;
    }
    if (!b->drop_last) {
        tg_error(tape, "%s: the batcher needs drop_last (every rank gets a full share)", fn);
        return -1;
    }
    if (b->batch % (size_t)size) {
        tg_error(tape, "%s: the global batch %zu is not a multiple of %d ranks", fn, b->batch,
                 size);
        return -1;
    }
    size_t part = b->batch / (size_t)size, dim = b->data->dim;
    if (x->dtype != TG_F32 && x->dtype != TG_F64) {
        tg_error(tape, "%s: x '%s' must be f32 or f64, not %s", fn, tg_label(x),
                 tg_dtype_name((tg_dtype)x->dtype));
        return -1;
    }
    if (x->rank < 2 || x->shape[0] != part || x->size / x->shape[0] != dim) {
        tg_error(tape, "%s: x '%s' is %s, expected %zux%zu (batch %zu / %d ranks x features)",
                 fn, tg_label(x), tg_shp_of(x).s, part, dim, b->batch, size);
        return -1;
    }
    if (labels->dtype != TG_I32 || labels->rank != 1 || labels->shape[0] != part) {
        tg_error(tape, "%s: labels '%s' is %s %s, expected i32 %zu (batch %zu / %d ranks)", fn,
                 tg_label(labels), tg_dtype_name((tg_dtype)labels->dtype),
                 tg_shp_of(labels).s, part, b->batch, size);
        return -1;
    }
    if (next_size(b) == 0) { /* the end of the epoch, as take_rows */
        b->pos = 0;
        if (b->shuffle)
            shuffle(b);
        return 0;
    }
    const size_t *idx = b->order + b->pos + (size_t)rank * part;
    const tg_dataset *d = b->data;
    int32_t *y = labels->data;
    for (size_t i = 0; i < part; i++) {
        const float *src = d->x + idx[i] * dim;
        if (x->dtype == TG_F32)
            memcpy((float *)x->data + i * dim, src, dim * sizeof(float));
        else
            for (size_t j = 0; j < dim; j++)
                ((double *)x->data)[i * dim + j] = src[j];
        y[i] = d->y[idx[i]];
    }
    b->pos += b->batch;
    return (long)part;
}
