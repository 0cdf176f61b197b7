/* tg_text_load, tg_text_batch, tg_text_window_batch: words, shuffle, split,
 * vocabulary, token streams, windows, errors; and the same streams and
 * batches as tests/bench/lm_data.py (the Python copy the PyTorch scripts
 * use), compared when /usr/bin/python3 with numpy is there.
 *   test_text [SOURCE_ROOT] */
#define _POSIX_C_SOURCE 200809L
#include "tap.h"
#include "tapegrad.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];
static char made[16][128];
static int n_made;

/* a file in the temporary directory with the given content */
static const char *file(const char *name, const void *data, size_t n)
{
    char *p = made[n_made++];
    snprintf(p, sizeof made[0], "%s/%s", dir, name);
    if (!tap_write_file(p, data, n))
        diag("cannot write %s", p);
    return p;
}

/* The words of the small file, with a '\r\n' line, an empty line, a
 * two-byte UTF-8 letter and no final newline. */
static const char WORDS[] = "cat\ndog\r\n\nemu\nant\nyak\n\ncafé\nox\nbee\nfox\nhen\nowl";
#define N_WORDS 11

/* ---- an independent copy of the documented algorithm -------------------- */

static uint64_t ref_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* The shuffled words of WORDS for seed, joined with '\n' after each, as
 * bytes: the first n_train words to train, the others to val. */
static void ref_streams(uint64_t seed, size_t n_val, char *train, char *val)
{
    const char *w[N_WORDS] = {"cat", "dog", "emu", "ant", "yak", "caf\xc3\xa9", "ox", "bee",
                              "fox", "hen", "owl"};
    uint64_t state = seed;
    for (int i = N_WORDS - 1; i > 0; i--) {
        state += 0x9e3779b97f4a7c15u;
        int j = (int)(ref_mix(state) % (uint64_t)(i + 1));
        const char *t = w[i];
        w[i] = w[j];
        w[j] = t;
    }
    train[0] = val[0] = 0;
    for (size_t i = 0; i < N_WORDS; i++) {
        char *dst = i < N_WORDS - n_val ? train : val;
        strcat(dst, w[i]);
        strcat(dst, "\n");
    }
}

static bool stream_is(const tg_text *t, const int32_t *s, size_t n, const char *bytes)
{
    if (n != strlen(bytes))
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0 || s[i] >= t->vocab || t->byte_of[s[i]] != (unsigned char)bytes[i])
            return false;
    return true;
}

static void load_small(void)
{
    const char *p = file("words.txt", WORDS, sizeof WORDS - 1);
    tg_text t;
    tg_err e = {0};
    int rc = tg_text_load(p, 0.25, 7, &t, &e);
    ok(rc == 0, "a small word list loads %s", e.msg);
    /* bytes: \n a b c d e f g h k l m n o t u w x y and 0xc3 0xa9 */
    const char *letters = "\nabcdefghklmnotuwxy";
    ok(t.vocab == (int)strlen(letters) + 2, "vocab: 19 ASCII bytes ('\\n' included, '\\r' stripped) "
       "and the 2 bytes of the UTF-8 e-acute: got %d", t.vocab);
    bool order = true;
    for (int i = 0; i < 19; i++)
        order &= t.byte_of[i] == (unsigned char)letters[i] && t.id_of[(unsigned char)letters[i]] == i;
    order &= t.byte_of[19] == 0xa9 && t.byte_of[20] == 0xc3 && t.id_of[0xa9] == 19 &&
             t.id_of[0xc3] == 20 && t.byte_of[21] == -1 && t.byte_of[255] == -1 &&
             t.id_of['\r'] == -1 && t.id_of['z'] == -1;
    ok(order, "ids in byte order; -1 past the vocabulary and for bytes not in the words");
    /* round(0.25 * 11 = 2.75) = 3 val words */
    ok(t.words_train == 8 && t.words_val == 3, "11 words -> 8 train, 3 val (round(2.75))");
    ok(t.n_train + t.n_val == 3 * 9 + 5 + 2 + 11, "tokens: 34 letter bytes + 11 newlines = %zu",
       t.n_train + t.n_val);
    char tr[128], va[128];
    ref_streams(7, 3, tr, va);
    ok(stream_is(&t, t.train, t.n_train, tr) && stream_is(&t, t.val, t.n_val, va),
       "the streams are the words shuffled as documented (seed 7), each followed by '\\n'");
    /* Literal expectation, from lm_data.py (python3 tests/bench/lm_data.py
     * dump words.txt 0.25 7 2 3): train is fox dog hen owl ox bee café ant, val
     * cat yak emu. */
    ok(stream_is(&t, t.train, 8, "fox\ndog\n") && stream_is(&t, t.val, t.n_val, "cat\nyak\nemu\n"),
       "seed 7: train starts with fox, dog; val is cat, yak, emu");

    tg_text u;
    ok(tg_text_load(p, 0.25, 7, &u, &e) == 0 && u.n_train == t.n_train &&
       memcmp(u.train, t.train, t.n_train * 4) == 0 && memcmp(u.val, t.val, t.n_val * 4) == 0,
       "the same seed gives the same streams");
    tg_text_free(&u);
    ok(tg_text_load(p, 0.25, 8, &u, &e) == 0 &&
       (u.n_train != t.n_train || memcmp(u.train, t.train, t.n_train * 4) != 0),
       "another seed gives another order");
    ref_streams(8, 3, tr, va);
    ok(stream_is(&u, u.train, u.n_train, tr) && stream_is(&u, u.val, u.n_val, va),
       "seed 8 as documented too");
    tg_text_free(&u);
    ok(tg_text_load(p, 0.5, 7, &u, &e) == 0 && u.words_val == 6 && u.words_train == 5,
       "val_fraction 0.5 of 11 words: round(5.5) = 6 val words (half up)");
    tg_text_free(&u);

    /* batches */
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = tg_input(tape, "x", TG_I32, 2, SHAPE(4, 5));
    tg_tensor *y = tg_input(tape, "y", TG_I32, 2, SHAPE(4, 5));
    ok(tg_text_batch(&t, 0, 42, 3, x, y, &e) == 0, "text_batch %s", e.msg);
    const int32_t *px = tg_data_i32(x), *py = tg_data_i32(y);
    bool rows_ok = true;
    for (int b = 0; b < 4; b++) {
        uint64_t i = 3 * 4 + (uint64_t)b;
        size_t st = (size_t)(ref_mix(42 + (i + 1) * 0x9e3779b97f4a7c15u) % (t.n_train - 5));
        for (int k = 0; k < 5; k++)
            rows_ok &= px[b * 5 + k] == t.train[st + k] && py[b * 5 + k] == t.train[st + k + 1];
    }
    ok(rows_ok, "each row is the window at the documented start; y is x shifted by one");
    int32_t keep[20];
    memcpy(keep, px, sizeof keep);
    ok(tg_text_batch(&t, 0, 42, 3, x, y, &e) == 0 && memcmp(keep, px, sizeof keep) == 0,
       "the same (seed, index) gives the same batch");
    ok(tg_text_batch(&t, 0, 42, 4, x, y, &e) == 0 && memcmp(keep, px, sizeof keep) != 0,
       "the next index another one");
    ok(tg_text_batch(&t, 1, 42, 0, x, y, &e) == 0, "a val batch (%zu tokens) %s", t.n_val, e.msg);
    bool in_val = true;
    for (int b = 0; b < 4; b++) {
        bool found = false;
        for (size_t s = 0; s + 5 < t.n_val && !found; s++)
            found = memcmp(t.val + s, px + b * 5, 20) == 0 && memcmp(t.val + s + 1, py + b * 5, 20) == 0;
        in_val &= found;
    }
    ok(in_val, "val batches come from the val stream");
    /* Literal, from lm_data.py (batch(load(words.txt, 0.25, 7), 0, 42, 3, 4, 5)) */
    static const int32_t want_x[20] = {0, 3, 1, 6, 20, 0, 13, 16, 10, 0, 6, 13, 17, 0, 4, 20, 19, 0, 1, 12};
    tg_text_batch(&t, 0, 42, 3, x, y, &e);
    ok(memcmp(px, want_x, sizeof want_x) == 0, "seed 42, index 3: the batch lm_data.py gives");

    /* validation windows: all of them, in order, each once */
    size_t T = 5, windows = (t.n_train - 1) / T, seen = 0;
    bool in_order = true;
    int r;
    for (size_t k = 0; (r = tg_text_window_batch(&t, 0, k, x, y, &e)) > 0; k++) {
        for (int b = 0; b < 4; b++) {
            bool full = b < r;
            for (size_t j = 0; j < T; j++) {
                size_t s = (k * 4 + (size_t)b) * T + j;
                in_order &= full ? px[b * 5 + j] == t.train[s] && py[b * 5 + j] == t.train[s + 1]
                                 : px[b * 5 + j] == 0 && py[b * 5 + j] == 0;
            }
        }
        seen += (size_t)r;
        if (k > 100)
            break;
    }
    ok(r == 0 && seen == windows && windows == (t.n_train - 1) / 5,
       "window batches cover the %zu full windows of %zu train tokens, then return 0 (%zu, %d)",
       windows, t.n_train, seen, r);
    ok(in_order, "windows in order, rows past the end zero");
    ok(tg_text_window_batch(&t, 0, SIZE_MAX, x, y, &e) == 0, "a huge k gives 0 rows, no overflow");

    /* errors */
    tg_tensor *f = tg_input(tape, "f", TG_F32, 2, SHAPE(4, 5));
    tg_tensor *v1 = tg_input(tape, "v", TG_I32, 1, SHAPE(20));
    tg_tensor *w6 = tg_input(tape, "w", TG_I32, 2, SHAPE(4, 6));
    tg_tensor *big = tg_input(tape, "big", TG_I32, 2, SHAPE(1, 40));
    tg_tensor *big2 = tg_input(tape, "big2", TG_I32, 2, SHAPE(1, 40));
    tg_tensor *op = tg_add(f, f);
    struct {
        int split;
        tg_tensor *x, *y;
        const char *want;
    } bad[] = {
        {2, x, y, "text_batch: split 2 must be 0 (train) or 1 (val)"},
        {0, NULL, y, "text_batch: the x tensor is NULL"},
        {0, x, NULL, "text_batch: the y tensor is NULL"},
        {0, x, x, "text_batch: x and y are the same tensor"},
        {0, f, y, "text_batch: x 'f' must be i32, not f32"},
        {0, x, v1, "text_batch: y 'v' is 20, expected [B,T]"},
        {0, x, w6, "text_batch: x is 4x5 but y is 4x6"},
        {0, op, y, "text_batch: x 'add"},
        {1, big, big2, "text_batch: the val stream has 12 tokens, not more than the context 40"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&e, 0, sizeof e);
        rc = tg_text_batch(&t, bad[i].split, 1, 0, bad[i].x, bad[i].y, &e);
        ok(rc == -1 && strstr(e.msg, bad[i].want), "text_batch refuses: %s (got: %s)", bad[i].want,
           e.msg);
    }
    ok(tg_text_batch(&t, 0, 1, 0, x, y, NULL) == 0 && tg_text_batch(&t, 2, 1, 0, x, y, NULL) == -1,
       "err may be NULL");
    memset(&e, 0, sizeof e);
    ok(tg_text_window_batch(&t, 0, 0, f, y, &e) == -1 &&
       strstr(e.msg, "text_window_batch: x 'f' must be i32"), "text_window_batch checks too: %s",
       e.msg);
    ok(tg_text_window_batch(&t, 1, 0, big, big2, &e) == 0,
       "text_window_batch with T >= the stream: 0 rows");
    tg_text empty = {0};
    memset(&e, 0, sizeof e);
    ok(tg_text_batch(&empty, 0, 1, 0, x, y, &e) == -1 && strstr(e.msg, "not loaded"),
       "an unloaded text: %s", e.msg);
    ok(tg_text_batch(NULL, 0, 1, 0, x, y, &e) == -1 && strstr(e.msg, "NULL"), "a NULL text: %s",
       e.msg);
    tg_tape_free(tape);
    tg_text_free(&t);
    tg_text_free(&t);
    tg_text_free(NULL);
    ok(t.train == NULL && t.vocab == 0, "tg_text_free empties the struct (twice is harmless)");
}

static void load_errors(void)
{
    tg_text t;
    tg_err e;
    const char *words = file("w2.txt", "a\nb\nc\nd\n", 8);
    const char *empty = file("empty.txt", "", 0);
    const char *blank = file("blank.txt", "\n\r\n\n", 4);
    const char *nul = file("nul.txt", "ab\ncd\0e\n", 8);
    const char *one = file("one.txt", "word\n", 5);
    struct {
        const char *path;
        double frac;
        const char *want;
    } bad[] = {
        {NULL, 0.1, "text_load: the path is NULL"},
        {"/nonexistent/words", 0.1, "text_load: /nonexistent/words: cannot open: No such file"},
        {"/tmp", 0.1, "text_load: /tmp: not a regular file"},
        {empty, 0.1, ": the file is empty"},
        {blank, 0.1, ": no words: every line is empty"},
        {nul, 0.1, ": a NUL byte at offset 5: not a text file"},
        {words, 0, ": val_fraction 0 must be inside (0, 1)"},
        {words, 1, ": val_fraction 1 must be inside (0, 1)"},
        {words, -0.5, ": val_fraction -0.5 must be inside (0, 1)"},
        {words, NAN, "must be inside (0, 1)"},
        {words, 0.01, "4 words with val_fraction 0.01 give 4 train and 0 val words (8 and 0 tokens)"},
        {one, 0.5, "1 words with val_fraction 0.5 give 0 train and 1 val words"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&e, 0, sizeof e);
        int rc = tg_text_load(bad[i].path, bad[i].frac, 1, &t, &e);
        ok(rc == -1 && strstr(e.msg, bad[i].want) && t.train == NULL && t.val == NULL &&
           t.vocab == 0, "text_load refuses: %s (got: %s)", bad[i].want, e.msg);
    }
    ok(tg_text_load(words, 0.1, 1, NULL, &e) == -1 && strstr(e.msg, "text_load: the tg_text is NULL"),
       "a NULL tg_text: %s", e.msg);
    ok(tg_text_load(words, 0.5, 1, &t, NULL) == 0 && t.words_val == 2, "err may be NULL");
    tg_text_free(&t);
}

/* ---- the same as lm_data.py --------------------------------------------- */

typedef struct sbuf {
    char *s;
    size_t n, cap;
} sbuf;

static void put(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->n + (size_t)k + 1 > b->cap) {
        b->cap = 2 * (b->n + (size_t)k + 1);
        b->s = realloc(b->s, b->cap);
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, (size_t)k + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)k;
}

static void put_ids(sbuf *b, const char *sep, const int32_t *v, size_t n)
{
    put(b, "%s", sep);
    for (size_t i = 0; i < n; i++)
        put(b, i ? " %d" : "%d", v[i]);
}

static uint64_t stream_hash(const int32_t *v, size_t n)
{
    uint64_t h = 0;
    for (size_t i = 0; i < n; i++)
        h += (uint64_t)v[i] * ((uint64_t)i * 0x9e3779b97f4a7c15u + 1);
    return h;
}

/* What `lm_data.py dump` prints (see there). */
static void dump(const tg_text *t, uint64_t seed, size_t B, size_t T, sbuf *o)
{
    put(o, "vocab %d\nbytes", t->vocab);
    for (int i = 0; i < t->vocab; i++)
        put(o, i ? " %d" : " %d", t->byte_of[i]);
    put(o, "\nwords %zu %zu tokens %zu %zu\n", t->words_train, t->words_val, t->n_train, t->n_val);
    tg_tape *tape = tg_tape_new();
    tg_tensor *x = tg_input(tape, "x", TG_I32, 2, SHAPE(B, T));
    tg_tensor *y = tg_input(tape, "y", TG_I32, 2, SHAPE(B, T));
    const int32_t *px = tg_data_i32(x), *py = tg_data_i32(y);
    for (int split = 0; split < 2; split++) {
        const int32_t *s = split ? t->val : t->train;
        size_t n = split ? t->n_val : t->n_train;
        put(o, "stream %d hash %016llx head", split, (unsigned long long)stream_hash(s, n));
        put_ids(o, " ", s, n < 40 ? n : 40);
        put(o, "\n");
        if (n > T) {
            const uint64_t idx[] = {0, 1, 7, 123456789};
            for (int i = 0; i < 4; i++) {
                tg_text_batch(t, split, seed, idx[i], x, y, NULL);
                put(o, "batch %d %llu", split, (unsigned long long)idx[i]);
                put_ids(o, " x ", px, B * T);
                put_ids(o, " y ", py, B * T);
                put(o, "\n");
            }
        }
        for (size_t k = 0;; k++) {
            int rows = tg_text_window_batch(t, split, k, x, y, NULL);
            put(o, "window %d %zu rows %d", split, k, rows);
            put_ids(o, " x ", px, B * T);
            put_ids(o, " y ", py, B * T);
            put(o, "\n");
            if (rows == 0 || k >= 3)
                break;
        }
    }
    tg_tape_free(tape);
}

/* Compare the C dump with the Python one for these arguments. */
static void same_as_python(const char *src_root, const char *path, double frac, uint64_t seed,
                           size_t B, size_t T, const char *what)
{
    tg_text t;
    tg_err e;
    if (tg_text_load(path, frac, seed, &t, &e)) {
        ok(0, "%s loads: %s", what, e.msg);
        return;
    }
    sbuf c = {0}, py = {0};
    dump(&t, seed, B, T, &c);
    tg_text_free(&t);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/bench/lm_data.py' dump '%s' %.17g %llu %zu %zu",
             src_root, path, frac, (unsigned long long)seed, B, T);
    FILE *p = popen(cmd, "r");
    char buf[4096];
    size_t r;
    while (p && (r = fread(buf, 1, sizeof buf, p)) > 0) {
        put(&py, "%.*s", (int)r, buf);
    }
    int st = p ? pclose(p) : -1;
    bool same = st == 0 && py.s && c.s && strcmp(py.s, c.s) == 0;
    ok(same, "%s: lm_data.py gives the same vocabulary, streams, batches and windows", what);
    if (!same) {
        diag("command: %s (status %d)", cmd, st);
        size_t i = 0;
        while (c.s && py.s && c.s[i] && c.s[i] == py.s[i])
            i++;
        diag("first difference at byte %zu: C \"%.80s\" python \"%.80s\"", i, c.s ? c.s + i : "",
             py.s ? py.s + i : "");
    }
    free(c.s);
    free(py.s);
}

static void python(const char *src_root)
{
    if (!src_root) {
        ok(1, "# SKIP no source root given (test_text SOURCE_ROOT)");
        return;
    }
    if (access("/usr/bin/python3", X_OK) != 0 ||
        system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) {
        ok(1, "# SKIP /usr/bin/python3 with numpy is not installed");
        return;
    }
    const char *p = made[0]; /* words.txt */
    same_as_python(src_root, p, 0.25, 7, 2, 3, "small list, B 2 T 3");
    same_as_python(src_root, p, 0.25, 7, 4, 5, "small list, B 4 T 5");
    same_as_python(src_root, p, 0.5, 0xfedcba9876543210u, 3, 2, "small list, seed 2^64-ish");
    const char *dict = "/usr/share/dict/american-english";
    if (access(dict, R_OK) == 0)
        same_as_python(src_root, dict, 0.1, 1337, 8, 32, "the wamerican word list");
    else
        ok(1, "# SKIP %s is not installed (Debian package wamerican)", dict);
}

int main(int argc, char **argv)
{
    snprintf(dir, sizeof dir, "/tmp/tg_text_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    load_small();
    load_errors();
    python(argc > 1 ? argv[1] : NULL);
    for (int i = 0; i < n_made; i++)
        unlink(made[i]);
    ok(rmdir(dir) == 0, "the temporary directory is left empty and removed");
    return tap_done();
}
