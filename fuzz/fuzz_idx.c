/* libFuzzer target: the IDX reader (tg_idx_read, raw and gzip) and the data
 * sets built from IDX files (tg_dataset_load_idx, then normalize, resize,
 * head and mini-batches on what loaded).
 *
 * Input: byte 0 chooses what happens, the rest is the payload.
 *   mode & 1 == 0   tg_idx_read on one file:
 *     mode & 2      the payload is gzip-compressed here first, so valid gzip
 *                   streams carry mutated IDX data (the payload itself may
 *                   also be gzip: the reader detects it by magic), and
 *                   (mode >> 2) & 3 damages the stream: 0 intact, 1 cut
 *                   short, 2 trailing garbage, 3 one byte flipped
 *     mode & 0x40   err = NULL
 *   mode & 1 == 1   tg_dataset_load_idx: two bytes give the split point,
 *                   eight bytes the choices for the other dataset functions
 *                   (normalize, resize, head, batches: run on success), and
 *                   the rest is cut in two, images then labels; mode & 2 /
 *                   mode & 4 gzip the images / labels here first.
 * Every failure must leave a message; every success must be consistent. */
#include "fuzz_common.h"
#include "tapegrad.h"

#include <math.h>

#ifdef TG_HAVE_ZLIB
#include <zlib.h>
#endif

static fz_file file_a, file_b;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fz_file_open(&file_a, "tg-fuzz-idx-a");
    fz_file_open(&file_b, "tg-fuzz-idx-b");
    return 0;
}

/* gzip of data into out (cap bytes); returns its length, 0 if unavailable. */
static size_t gzip(const uint8_t *data, size_t len, uint8_t *out, size_t cap)
{
#ifdef TG_HAVE_ZLIB
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return 0;
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int r = deflate(&z, Z_FINISH);
    size_t n = z.total_out;
    deflateEnd(&z);
    return r == Z_STREAM_END ? n : 0;
#else
    (void)data, (void)len, (void)out, (void)cap;
    return 0;
#endif
}

/* Write payload to f, gzip-compressed first when asked (and damaged after
 * `damage`, with `arg` choosing where). */
static void put_file(fz_file *f, const uint8_t *p, size_t len, int compress, int damage,
                     unsigned arg)
{
    if (!compress) {
        fz_file_set(f, p, len);
        return;
    }
    size_t cap = len + len / 8 + 128;
    uint8_t *z = malloc(cap + 64);
    FZ_CHECK(z, "out of memory");
    size_t n = gzip(p, len, z, cap);
    if (n == 0) { /* no zlib: the raw payload */
        free(z);
        fz_file_set(f, p, len);
        return;
    }
    switch (damage) {
    case 1: /* cut: lose 1..n bytes of the end */
        n -= 1 + arg % n;
        break;
    case 2: /* trailing garbage: 1..64 bytes */
        for (unsigned i = 0; i < 1 + arg % 64; i++)
            z[n++] = (uint8_t)(arg * 31 + i);
        break;
    case 3: /* one byte flipped */
        z[arg % n] ^= (uint8_t)(1 + (arg >> 8) % 255);
        break;
    }
    fz_file_set(f, z, n);
    free(z);
}

static void check_idx(const tg_idx *x)
{
    FZ_CHECK(x->rank >= 1 && x->rank <= 8, "rank %d", x->rank);
    size_t count = 1;
    for (int i = 0; i < x->rank; i++) {
        FZ_CHECK(x->dims[i] >= 1, "dimension %d is 0", i);
        count *= x->dims[i];
    }
    FZ_CHECK(count == x->count, "count %zu, product of dims %zu", x->count, count);
    FZ_CHECK(x->data != NULL, "no data");
    /* touch every byte: ASan sees a short buffer */
    size_t es = x->type == 0x0B ? 2 : x->type == 0x0C || x->type == 0x0D ? 4
              : x->type == 0x0E ? 8 : 1;
    FZ_CHECK(x->type == 0x08 || x->type == 0x09 || x->type == 0x0B || x->type == 0x0C ||
             x->type == 0x0D || x->type == 0x0E, "type 0x%02x", x->type);
    volatile uint8_t sink = 0;
    const uint8_t *b = x->data;
    for (size_t i = 0; i < count * es; i++)
        sink ^= b[i];
    (void)sink;
}

/* The rest of the dataset API on a loaded data set, with choices from in. */
static void use_dataset(tg_dataset *d, fz_in *in)
{
    FZ_CHECK(d->n >= 1 && d->dim >= 1 && d->x && d->y, "empty data set loaded");
    FZ_CHECK(d->rows * d->cols == d->dim, "%zux%zu images, %zu features", d->rows, d->cols,
             d->dim);
    FZ_CHECK(d->classes >= 1 && d->classes <= 256, "%d classes", d->classes);
    for (size_t i = 0; i < d->n; i++)
        FZ_CHECK(d->y[i] >= 0 && d->y[i] < d->classes, "label %d of %d classes", (int)d->y[i],
                 d->classes);
    for (size_t i = 0; i < d->n * d->dim; i++)
        FZ_CHECK(d->x[i] >= 0 && d->x[i] <= 1, "pixel %g outside [0, 1]", (double)d->x[i]);

    tg_err err;
    static const double stds[] = {1, 0.5, 0, -1, NAN, INFINITY, 1e-30, 255};
    uint8_t c = fz_u8(in);
    err.msg[0] = 0;
    int rc = tg_dataset_normalize(d, (c & 0x80) ? NAN : 0.1307, stds[c % 8], &err);
    FZ_TRACE("normalize: %d %s\n", rc, err.msg);
    FZ_CHECK(rc == 0 || err.msg[0], "normalize failed without a message");

    /* resize to 0..16 x 0..16 (0: must be refused) */
    size_t r = fz_u8(in) % 17, cc = fz_u8(in) % 17;
    err.msg[0] = 0;
    rc = tg_dataset_resize(d, r, cc, &err);
    FZ_TRACE("resize to %zux%zu: %d %s\n", r, cc, rc, err.msg);
    FZ_CHECK(rc == 0 || err.msg[0], "resize failed without a message");
    FZ_CHECK(rc != 0 || (d->rows == r && d->cols == cc && d->dim == r * cc), "resize geometry");

    tg_dataset h;
    size_t hn = fz_u8(in) % (d->n + 2); /* 0 and n + 1 must be refused */
    err.msg[0] = 0;
    rc = tg_dataset_head(d, hn, &h, &err);
    FZ_TRACE("head %zu: %d %s\n", hn, rc, err.msg);
    FZ_CHECK(rc == 0 || err.msg[0], "head failed without a message");
    tg_dataset *use = rc == 0 ? &h : d;

    /* one epoch and a bit of mini-batches into tensors of a tape */
    size_t batch = fz_u8(in) % 9; /* 0 must be refused */
    uint8_t flags = fz_u8(in);
    tg_batcher b;
    err.msg[0] = 0;
    rc = tg_batcher_init(&b, use, batch, flags & 1, flags & 2, flags, &err);
    FZ_TRACE("batcher of %zu: %d %s\n", batch, rc, err.msg);
    FZ_CHECK(rc == 0 || err.msg[0], "batcher_init failed without a message");
    if (rc == 0 && use->dim <= 4096) {
        tg_tape *t = tg_tape_new();
        FZ_CHECK(t, "out of memory");
        /* (flags & 4): x of a wrong width, which must be refused */
        size_t xs[2] = {batch, use->dim + ((flags & 4) ? 1 : 0)};
        tg_tensor *x = tg_input(t, "x", (flags & 8) ? TG_F64 : TG_F32, 2, xs);
        tg_tensor *y = tg_input(t, "y", (flags & 16) ? TG_F32 : TG_I32, 1, &batch);
        size_t total = 0;
        for (int step = 0; step < 64; step++) {
            tg_tape_clear_error(t);
            long k = tg_batcher_next(&b, x, y);
            if (k < 0) {
                FZ_CHECK(tg_tape_error(t) != NULL, "batcher_next failed without a message");
                break;
            }
            FZ_CHECK((size_t)k <= batch, "batch of %ld > %zu", k, batch);
            if (k == 0 && step > 0 && (flags & 32))
                break;
            total += (size_t)k;
            const int32_t *lab = tg_data_i32(y);
            for (long i = 0; lab && i < k; i++)
                FZ_CHECK(lab[i] >= 0 && lab[i] < use->classes, "batch label %d", (int)lab[i]);
        }
        (void)total;
        tg_tape_free(t);
    }
    tg_batcher_free(&b);
    if (use == &h)
        tg_dataset_free(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    fz_in in = {data + 1, size - 1, 0};
    tg_err err;
    if (!(mode & 1)) {
        put_file(&file_a, data + 1, size - 1, mode & 2, (mode >> 2) & 3,
                 size > 2 ? (unsigned)data[size - 1] << 8 | data[size - 2] : 0);
        tg_idx x;
        memset(&err, 0, sizeof err);
        int rc = tg_idx_read(file_a.path, &x, (mode & 0x40) ? NULL : &err);
        FZ_TRACE("idx_read: %d %s\n", rc, err.msg);
        if (rc == 0) {
            check_idx(&x);
        } else {
            FZ_CHECK(rc == -1, "tg_idx_read returned %d", rc);
            FZ_CHECK((mode & 0x40) || !strncmp(err.msg, "idx: ", 5), "message \"%s\"", err.msg);
            FZ_CHECK(x.data == NULL && x.count == 0, "a failed read left data behind");
        }
        tg_idx_free(&x);
        return 0;
    }

    /* a data set from two files */
    size_t split = fz_u16(&in);
    uint8_t choice_bytes[8];
    for (int i = 0; i < 8; i++)
        choice_bytes[i] = fz_u8(&in);
    size_t rest = size - 1 - in.at;
    split = rest ? split % (rest + 1) : 0;
    const uint8_t *p = data + 1 + in.at;
    put_file(&file_a, p, split, mode & 2, 0, 0);
    put_file(&file_b, p + split, rest - split, mode & 4, 0, 0);
    tg_dataset d;
    memset(&err, 0, sizeof err);
    int rc = tg_dataset_load_idx(file_a.path, file_b.path, &d, &err);
    FZ_TRACE("dataset_load_idx: %d %s\n", rc, err.msg);
    if (rc == 0) {
        fz_in choices = {choice_bytes, sizeof choice_bytes, 0};
        use_dataset(&d, &choices);
    } else {
        FZ_CHECK(rc == -1 && err.msg[0], "tg_dataset_load_idx failed without a message");
        FZ_CHECK(d.x == NULL && d.y == NULL && d.n == 0, "a failed load left data behind");
    }
    tg_dataset_free(&d);
    return 0;
}
