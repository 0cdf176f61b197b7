/* Character-level text data for the language models: a word list loaded,
 * shuffled and split (tg_text_load), random training windows
 * (tg_text_batch) and the non-overlapping validation windows
 * (tg_text_window_batch).
 *
 * Every random choice is made with splitmix64 in integer arithmetic, as the
 * header documents, so that tests/bench/lm_data.py reproduces the same
 * streams and batches bit for bit in Python (the PyTorch scripts train on
 * the very batches the C runs see). */
#include "io.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>

/* "text_load: <path>: ..." / "text_batch: ..." into err->msg (err may be NULL) */
#define fail_path(err, fn, path, ...) tg_msgf((err) ? (err)->msg : NULL, sizeof (err)->msg, \
                                              fn, (path) ? (path) : "(null)", __VA_ARGS__)
#define fail TG_ERR_MSG

#define GOLDEN 0x9e3779b97f4a7c15u

/* splitmix64 (Steele, Lea, Flood): advance the state, return its mix. */
static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t splitmix_next(uint64_t *state)
{
    *state += GOLDEN;
    return mix(*state);
}

void tg_text_free(tg_text *t)
{
    if (!t)
        return;
    tg_free(t->train);
    tg_free(t->val);
    memset(t, 0, sizeof *t);
    for (int i = 0; i < 256; i++)
        t->byte_of[i] = t->id_of[i] = -1;
}

/* The whole file in a tg_malloc'ed buffer (*n bytes). */
static int read_all(const char *path, unsigned char **buf, size_t *n, tg_err *err)
{
    const char *fn = "text_load";
    *buf = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail_path(err, fn, path, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        fail_path(err, fn, path, "cannot stat: %s", strerror(errno));
        fclose(f);
        return TG_ERR;
    }
    if (!S_ISREG(st.st_mode)) {
        fail_path(err, fn, path, "not a regular file");
        fclose(f);
        return TG_ERR;
    }
    if (st.st_size <= 0) {
        fail_path(err, fn, path, "the file is empty");
        fclose(f);
        return TG_ERR;
    }
    /* the token streams take 4 bytes a byte; stay far from overflow */
    if ((uint64_t)st.st_size > (uint64_t)1 << 32 ||
        (uint64_t)st.st_size > SIZE_MAX / (4 * sizeof(int32_t))) {
        fail_path(err, fn, path, "the file is too large (%lld bytes; at most 4 GiB)",
                  (long long)st.st_size);
        fclose(f);
        return TG_ERR;
    }
    size_t size = (size_t)st.st_size;
    unsigned char *b = tg_malloc(size + 1);
    if (!b) {
        fail_path(err, fn, path, "out of memory for %zu bytes", size);
        fclose(f);
        return TG_ERR;
    }
    size_t got = fread(b, 1, size, f);
    int rd_err = ferror(f);
    fclose(f);
    if (rd_err || got == 0) {
        tg_free(b);
        return fail_path(err, fn, path, rd_err ? "read error" : "the file is empty");
    }
    *buf = b;
    *n = got; /* a file that shrank meanwhile: what was read */
    return TG_OK;
}

typedef struct word {
    size_t off, len;
} word;

int tg_text_load(const char *path, double val_fraction, uint64_t seed, tg_text *t, tg_err *err)
{
    const char *fn = "text_load";
    if (!t)
        return fail(err, "text_load: the tg_text is NULL");
    /* *t is overwritten, not freed: it may be uninitialised */
    memset(t, 0, sizeof *t);
    for (int i = 0; i < 256; i++)
        t->byte_of[i] = t->id_of[i] = -1;
    if (!path)
        return fail(err, "text_load: the path is NULL");
    if (!(val_fraction > 0 && val_fraction < 1))
        return fail_path(err, fn, path, "val_fraction %g must be inside (0, 1)", val_fraction);
    unsigned char *buf;
    size_t n;
    if (read_all(path, &buf, &n, err))
        return TG_ERR;
    word *w = NULL;
    int rc = TG_ERR;
    /* words: the lines, a trailing '\r' stripped, empty ones dropped */
    size_t n_words = 0, cap = 0;
    for (size_t i = 0; i < n; i++)
        if (buf[i] == 0) {
            fail_path(err, fn, path, "a NUL byte at offset %zu: not a text file", i);
            goto done;
        }
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && buf[j] != '\n')
            j++;
        size_t len = j - i;
        if (len > 0 && buf[i + len - 1] == '\r')
            len--;
        if (len > 0) {
            if (n_words == cap) {
                size_t nc = cap ? 2 * cap : 1024;
                word *nw = tg_realloc(w, nc * sizeof *w);
                if (!nw) {
                    fail_path(err, fn, path, "out of memory");
                    goto done;
                }
                w = nw;
                cap = nc;
            }
            w[n_words++] = (word){i, len};
        }
        i = j + 1;
    }
    if (n_words == 0) {
        fail_path(err, fn, path, "no words: every line is empty");
        goto done;
    }
    /* Fisher-Yates, from the end, j = splitmix64 output mod (i + 1) */
    uint64_t state = seed;
    for (size_t i = n_words - 1; i > 0; i--) {
        size_t j = (size_t)(splitmix_next(&state) % ((uint64_t)i + 1));
        word tmp = w[i];
        w[i] = w[j];
        w[j] = tmp;
    }
    /* round half up (val_fraction * words >= 0): as C's round() */
    double v = val_fraction * (double)n_words;
    double fl = floor(v);
    size_t n_val_words = (size_t)fl + (v - fl >= 0.5 ? 1 : 0);
    if (n_val_words > n_words)
        n_val_words = n_words;
    size_t n_train_words = n_words - n_val_words;
    size_t tok[2] = {0, 0};
    int used[256] = {0};
    used['\n'] = 1;
    for (size_t k = 0; k < n_words; k++) {
        tok[k >= n_train_words] += w[k].len + 1;
        for (size_t i = 0; i < w[k].len; i++)
            used[buf[w[k].off + i]] = 1;
    }
    if (tok[0] < 2 || tok[1] < 2) {
        fail_path(err, fn, path, "%zu words with val_fraction %g give %zu train and %zu val "
                  "words (%zu and %zu tokens); each split needs at least 2 tokens", n_words,
                  val_fraction, n_train_words, n_val_words, tok[0], tok[1]);
        goto done;
    }
    int vocab = 0;
    for (int b = 0; b < 256; b++)
        if (used[b]) {
            t->id_of[b] = vocab;
            t->byte_of[vocab] = b;
            vocab++;
        }
    t->vocab = vocab;
    t->train = tg_malloc(tok[0] * sizeof(int32_t));
    t->val = tg_malloc(tok[1] * sizeof(int32_t));
    if (!t->train || !t->val) {
        fail_path(err, fn, path, "out of memory for %zu tokens", tok[0] + tok[1]);
        goto done;
    }
    size_t pos[2] = {0, 0};
    for (size_t k = 0; k < n_words; k++) {
        int s = k >= n_train_words;
        int32_t *dst = s ? t->val : t->train;
        for (size_t i = 0; i < w[k].len; i++)
            dst[pos[s]++] = t->id_of[buf[w[k].off + i]];
        dst[pos[s]++] = t->id_of['\n'];
    }
    t->n_train = tok[0];
    t->n_val = tok[1];
    t->words_train = n_train_words;
    t->words_val = n_val_words;
    rc = TG_OK;
done:
    tg_free(buf);
    tg_free(w);
    if (rc != TG_OK)
        tg_text_free(t);
    return rc;
}

/* The split's stream, and x, y checked: i32 [B,T] both, B, T >= 1. */
static const int32_t *check_args(const char *fn, const tg_text *t, int split, const tg_tensor *x,
                                 const tg_tensor *y, size_t *n, tg_err *err)
{
    if (!t) {
        fail(err, "%s: the tg_text is NULL", fn);
        return NULL;
    }
    if (split != 0 && split != 1) {
        fail(err, "%s: split %d must be 0 (train) or 1 (val)", fn, split);
        return NULL;
    }
    const int32_t *s = split ? t->val : t->train;
    *n = split ? t->n_val : t->n_train;
    if (!s || *n == 0) {
        fail(err, "%s: the text is not loaded (tg_text_load)", fn);
        return NULL;
    }
    if (!x || !y) {
        fail(err, "%s: the %s tensor is NULL", fn, x ? "y" : "x");
        return NULL;
    }
    if (x == y) {
        fail(err, "%s: x and y are the same tensor", fn);
        return NULL;
    }
    const tg_tensor *both[2] = {x, y};
    for (int i = 0; i < 2; i++) {
        const tg_tensor *v = both[i];
        if (v->kind == TG_OP) {
            fail(err, "%s: %s '%s' is an op's output; it must be a leaf (tg_input)", fn,
                 i ? "y" : "x", tg_label((tg_tensor *)v));
            return NULL;
        }
        if (v->dtype != TG_I32) {
            fail(err, "%s: %s '%s' must be i32, not %s", fn, i ? "y" : "x",
                 tg_label((tg_tensor *)v), tg_dtype_name((tg_dtype)v->dtype));
            return NULL;
        }
        if (v->rank != 2 || v->size == 0) {
            fail(err, "%s: %s '%s' is %s, expected [B,T] with B, T >= 1", fn, i ? "y" : "x",
                 tg_label((tg_tensor *)v), tg_shp_of((tg_tensor *)v).s);
            return NULL;
        }
    }
    if (x->shape[0] != y->shape[0] || x->shape[1] != y->shape[1]) {
        fail(err, "%s: x is %s but y is %s; both must be [B,T]", fn,
             tg_shp_of((tg_tensor *)x).s, tg_shp_of((tg_tensor *)y).s);
        return NULL;
    }
    return s;
}

int tg_text_batch(const tg_text *t, int split, uint64_t seed, uint64_t index, tg_tensor *x,
                  tg_tensor *y, tg_err *err)
{
    const char *fn = "text_batch";
    size_t n;
    const int32_t *s = check_args(fn, t, split, x, y, &n, err);
    if (!s)
        return TG_ERR;
    size_t B = x->shape[0], T = x->shape[1];
    if (n <= T)
        return fail(err, "%s: the %s stream has %zu tokens, not more than the context %zu", fn,
                    split ? "val" : "train", n, T);
    int32_t *px = x->data, *py = y->data;
    uint64_t starts = (uint64_t)(n - T);
    for (size_t b = 0; b < B; b++) {
        uint64_t i = index * (uint64_t)B + (uint64_t)b;
        size_t st = (size_t)(mix(seed + (i + 1) * GOLDEN) % starts);
        memcpy(px + b * T, s + st, T * sizeof(int32_t));
        memcpy(py + b * T, s + st + 1, T * sizeof(int32_t));
    }
    return TG_OK;
}

int tg_text_window_batch(const tg_text *t, int split, size_t k, tg_tensor *x, tg_tensor *y,
                         tg_err *err)
{
    const char *fn = "text_window_batch";
    size_t n;
    const int32_t *s = check_args(fn, t, split, x, y, &n, err);
    if (!s)
        return TG_ERR;
    size_t B = x->shape[0], T = x->shape[1];
    /* full windows: start w·T with w·T + T + 1 <= n */
    size_t windows = n > T ? (n - 1) / T : 0;
    if (B > (size_t)INT32_MAX)
        return fail(err, "%s: batch %zu is too large", fn, B);
    int32_t *px = x->data, *py = y->data;
    int rows = 0;
    for (size_t b = 0; b < B; b++) {
        /* window k·B + b, compared without overflow */
        bool full = k < windows / B + 1 && k * B + b < windows;
        if (full) {
            size_t st = (k * B + b) * T;
            memcpy(px + b * T, s + st, T * sizeof(int32_t));
            memcpy(py + b * T, s + st + 1, T * sizeof(int32_t));
            rows++;
        } else {
            memset(px + b * T, 0, T * sizeof(int32_t));
            memset(py + b * T, 0, T * sizeof(int32_t));
        }
    }
    return rows;
}
