/* IDX files (raw and gzip), data sets, resizing and mini-batches.  The IDX
 * files are written by the test into a temporary directory; every corrupt
 * or truncated one must give -1 and a message naming the problem, and never
 * crash or read out of bounds (the suite also runs under ASan/UBSan). */
#include "tap.h"
#include "tapegrad.h"
#include "core.h" /* tg_malloc: data sets built here are owned by the library */

#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef TG_HAVE_ZLIB
#include <zlib.h>
#endif


static char dir[64];
static char made[256][128]; /* files to remove at the end */
static int n_made;

static const char *path_of(const char *name)
{
    static char p[8][160];
    static int k;
    char *s = p[k++ % 8];
    snprintf(s, sizeof p[0], "%s/%s", dir, name);
    return s;
}

static const char *write_file(const char *name, const void *data, size_t len)
{
    const char *p = path_of(name);
    FILE *f = fopen(p, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f)) {
        diag("cannot write %s", p);
        exit(1);
    }
    for (int i = 0; i < n_made; i++)
        if (!strcmp(made[i], p))
            return p;
    if (n_made < 256)
        snprintf(made[n_made++], sizeof made[0], "%s", p);
    return p;
}

/* An IDX file in buf: header (type, rank, big-endian dims) then `data`,
 * which the caller gives already big-endian.  Returns its length. */
static size_t idx(unsigned char *buf, int type, int rank, const uint32_t *dims,
                  const void *data, size_t len)
{
    buf[0] = 0, buf[1] = 0, buf[2] = (unsigned char)type, buf[3] = (unsigned char)rank;
    size_t at = 4;
    for (int i = 0; i < rank; i++, at += 4) {
        buf[at] = (unsigned char)(dims[i] >> 24);
        buf[at + 1] = (unsigned char)(dims[i] >> 16);
        buf[at + 2] = (unsigned char)(dims[i] >> 8);
        buf[at + 3] = (unsigned char)dims[i];
    }
    if (len)
        memcpy(buf + at, data, len);
    return at + len;
}

#ifdef TG_HAVE_ZLIB
static const char *write_gz(const char *name, const void *data, size_t len)
{
    const char *p = write_file(name, "", 0);
    gzFile g = gzopen(p, "wb9");
    if (!g || (len && gzwrite(g, data, (unsigned)len) != (int)len) || gzclose(g) != Z_OK) {
        diag("cannot write %s", p);
        exit(1);
    }
    return p;
}

#endif

/* rc is -1 and the message contains want */
#define FAILS(rc, e, want, ...)                                                  \
    do {                                                                       \
        int r_ = (rc);                                                         \
        bool m_ = strstr((e).msg, (want)) != NULL;                             \
        ok(r_ == -1 && m_, __VA_ARGS__);                                       \
        if (r_ != -1 || !m_)                                                   \
            diag("rc %d, message \"%s\", wanted \"%s\"", r_, (e).msg, (want)); \
    } while (0)

/* ---- valid files ----------------------------------------------------------- */

static void valid(void)
{
    unsigned char buf[256];
    tg_idx x;
    tg_err e = {{0}};
    const unsigned char u8[24] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                                  12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 255};
    size_t n = idx(buf, 0x08, 3, (uint32_t[]){2, 3, 4}, u8, 24);
    int rc = tg_idx_read(write_file("u8.idx", buf, n), &x, &e);
    ok(rc == 0 && x.type == 0x08 && x.rank == 3 && x.dims[0] == 2 && x.dims[1] == 3 &&
           x.dims[2] == 4 && x.count == 24 && !memcmp(x.data, u8, 24),
       "u8 2x3x4: type, rank, dims, count and data");
    tg_idx_free(&x);
    ok(x.data == NULL && x.count == 0, "tg_idx_free clears the struct");
    tg_idx_free(&x);
    tg_idx_free(NULL);

    /* big-endian encodings written out by hand */
    const unsigned char i8[3] = {0xFF, 0x80, 0x7F};
    n = idx(buf, 0x09, 1, (uint32_t[]){3}, i8, 3);
    rc = tg_idx_read(write_file("i8.idx", buf, n), &x, &e);
    const int8_t *p8 = x.data;
    ok(rc == 0 && p8[0] == -1 && p8[1] == -128 && p8[2] == 127, "i8: -1, -128, 127");
    tg_idx_free(&x);

    const unsigned char i16[4] = {0xFF, 0xFE, 0x01, 0x2C}; /* -2, 300 */
    n = idx(buf, 0x0B, 1, (uint32_t[]){2}, i16, 4);
    rc = tg_idx_read(write_file("i16.idx", buf, n), &x, &e);
    const int16_t *p16 = x.data;
    ok(rc == 0 && p16[0] == -2 && p16[1] == 300, "i16 big-endian to host: -2, 300");
    tg_idx_free(&x);

    const unsigned char i32[8] = {0xFF, 0xFE, 0x79, 0x60, 0x00, 0x01, 0x00, 0x00}; /* -100000, 65536 */
    n = idx(buf, 0x0C, 2, (uint32_t[]){1, 2}, i32, 8);
    rc = tg_idx_read(write_file("i32.idx", buf, n), &x, &e);
    const int32_t *p32 = x.data;
    ok(rc == 0 && p32[0] == -100000 && p32[1] == 65536, "i32 big-endian to host: -100000, 65536");
    tg_idx_free(&x);

    const unsigned char f32[8] = {0x3F, 0xC0, 0, 0, 0xC1, 0x20, 0, 0}; /* 1.5, -10 */
    n = idx(buf, 0x0D, 1, (uint32_t[]){2}, f32, 8);
    rc = tg_idx_read(write_file("f32.idx", buf, n), &x, &e);
    const float *pf = x.data;
    ok(rc == 0 && pf[0] == 1.5f && pf[1] == -10.0f, "f32 big-endian to host: 1.5, -10");
    tg_idx_free(&x);

    const unsigned char f64[8] = {0xC0, 0x02, 0, 0, 0, 0, 0, 0}; /* -2.25 */
    n = idx(buf, 0x0E, 8, (uint32_t[]){1, 1, 1, 1, 1, 1, 1, 1}, f64, 8);
    rc = tg_idx_read(write_file("f64.idx", buf, n), &x, &e);
    ok(rc == 0 && x.rank == 8 && *(const double *)x.data == -2.25, "f64 of rank 8: -2.25");
    tg_idx_free(&x);

#ifdef TG_HAVE_ZLIB
    n = idx(buf, 0x08, 3, (uint32_t[]){2, 3, 4}, u8, 24);
    rc = tg_idx_read(write_gz("u8.idx.gz", buf, n), &x, &e);
    ok(rc == 0 && x.count == 24 && x.dims[2] == 4 && !memcmp(x.data, u8, 24),
       "gzip u8 2x3x4 read through zlib");
    tg_idx_free(&x);
    n = idx(buf, 0x0D, 1, (uint32_t[]){2}, f32, 8);
    rc = tg_idx_read(write_gz("f32.gz", buf, n), &x, &e);
    pf = x.data;
    ok(rc == 0 && pf[0] == 1.5f && pf[1] == -10.0f, "gzip f32, recognised by content");
    tg_idx_free(&x);
    /* a raw file named .gz is read as raw */
    n = idx(buf, 0x08, 1, (uint32_t[]){2}, u8, 2);
    rc = tg_idx_read(write_file("raw.gz", buf, n), &x, &e);
    ok(rc == 0 && x.count == 2, "a raw file named .gz is read as raw (content decides)");
    tg_idx_free(&x);
    ok(tg_have_zlib(), "tg_have_zlib() is true in a build with zlib");
#else
    ok(!tg_have_zlib(), "tg_have_zlib() is false in a build without zlib");
    printf("ok %d - # SKIP gzip files: this build has no zlib\n", ++tap_count);
#endif
}

/* ---- corrupt files ------------------------------------------------------- */

static void corrupt(void)
{
    unsigned char buf[4096];
    tg_idx x;
    tg_err e;
    const unsigned char data[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    size_t n;

    n = idx(buf, 0x08, 1, (uint32_t[]){4}, data, 4);
    buf[1] = 1;
    FAILS(tg_idx_read(write_file("magic.idx", buf, n), &x, &e), e,
          "not an IDX file: wrong magic 00 01 08 01", "wrong magic: \"%s\"", e.msg);
    ok(x.data == NULL && x.count == 0, "on failure *out is empty");
    const unsigned char text[] = "hello, world";
    FAILS(tg_idx_read(write_file("text.idx", text, sizeof text), &x, &e), e,
          "not an IDX file: wrong magic 68 65 6c 6c", "a text file: \"%s\"", e.msg);

    n = idx(buf, 0x0A, 1, (uint32_t[]){4}, data, 4);
    FAILS(tg_idx_read(write_file("type.idx", buf, n), &x, &e), e,
          "unknown IDX element type 0x0a", "unknown type: \"%s\"", e.msg);

    n = idx(buf, 0x08, 0, NULL, data, 4);
    FAILS(tg_idx_read(write_file("rank0.idx", buf, n), &x, &e), e, "rank 0 is outside 1..8",
          "rank 0: \"%s\"", e.msg);
    n = idx(buf, 0x08, 9, (uint32_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, data, 1);
    FAILS(tg_idx_read(write_file("rank9.idx", buf, n), &x, &e), e, "rank 9 is outside 1..8",
          "rank 9: \"%s\"", e.msg);

    n = idx(buf, 0x08, 3, (uint32_t[]){2, 0, 2}, data, 4);
    FAILS(tg_idx_read(write_file("zero.idx", buf, n), &x, &e), e, "dimension 1 is 0",
          "zero dimension: \"%s\"", e.msg);

    const uint32_t big = 1u << 20;
    n = idx(buf, 0x08, 4, (uint32_t[]){big, big, big, big}, data, 16);
    FAILS(tg_idx_read(write_file("ovf4.idx", buf, n), &x, &e), e,
          "dimensions 1048576x1048576x1048576x1048576 overflow",
          "4 dims of 2^20: the element count overflows: \"%s\"", e.msg);
    n = idx(buf, 0x08, 8, (uint32_t[]){~0u, ~0u, ~0u, ~0u, ~0u, ~0u, ~0u, ~0u}, data, 16);
    FAILS(tg_idx_read(write_file("ovf8.idx", buf, n), &x, &e), e, "overflow",
          "8 dims of 2^32-1: \"%s\"", e.msg);
    n = idx(buf, 0x0E, 3, (uint32_t[]){1u << 21, 1u << 21, 1u << 21}, data, 16);
    FAILS(tg_idx_read(write_file("ovfbytes.idx", buf, n), &x, &e), e,
          "dimensions 2097152x2097152x2097152 overflow",
          "2^63 f64 elements: the byte size overflows: \"%s\"", e.msg);

    n = idx(buf, 0x08, 2, (uint32_t[]){1000, 1000}, data, 10);
    FAILS(tg_idx_read(write_file("exceed.idx", buf, n), &x, &e), e,
          "truncated: expected 1000000 bytes of data (1000x1000), found 10",
          "dims exceeding the file: \"%s\"", e.msg);
    n = idx(buf, 0x0C, 3, (uint32_t[]){60000, 28, 28}, data, 16);
    FAILS(tg_idx_read(write_file("exceed2.idx", buf, n), &x, &e), e,
          "truncated: expected 188160000 bytes of data (60000x28x28), found 16",
          "an i32 60000x28x28 header over 16 bytes: \"%s\"", e.msg);

    FAILS(tg_idx_read(write_file("empty.idx", "", 0), &x, &e), e,
          "truncated header: the file has 0 bytes", "empty file: \"%s\"", e.msg);
    n = idx(buf, 0x08, 3, (uint32_t[]){2, 2, 4}, data, 16);
    for (size_t cut = 1; cut < 16; cut++) {
        const char *p = write_file("hdr.idx", buf, cut);
        if (cut < 4)
            FAILS(tg_idx_read(p, &x, &e), e, "truncated header: the file has",
                  "header cut at byte %zu: \"%s\"", cut, e.msg);
        else
            FAILS(tg_idx_read(p, &x, &e), e, "truncated header: expected 3 dimension sizes (12 bytes)",
                  "dimensions cut at byte %zu: \"%s\"", cut, e.msg);
    }
    /* data cut at every point: the message gives the exact counts */
    for (size_t cut = 16; cut < n; cut++) {
        char want[96];
        snprintf(want, sizeof want, "truncated: expected 16 bytes of data (2x2x4), found %zu",
                 cut - 16);
        FAILS(tg_idx_read(write_file("data.idx", buf, cut), &x, &e), e, want,
              "data cut at byte %zu: \"%s\"", cut, e.msg);
    }
    buf[n] = 0;
    FAILS(tg_idx_read(write_file("trail1.idx", buf, n + 1), &x, &e), e,
          "trailing garbage: 1 bytes after the 16 bytes of data (2x2x4)",
          "one trailing byte: \"%s\"", e.msg);
    memset(buf + n, 'x', 100);
    FAILS(tg_idx_read(write_file("trail100.idx", buf, n + 100), &x, &e), e,
          "trailing garbage: 100 bytes after", "100 trailing bytes: \"%s\"", e.msg);

    FAILS(tg_idx_read(path_of("does-not-exist"), &x, &e), e, "cannot open: No such file",
          "a missing file: \"%s\"", e.msg);
    FAILS(tg_idx_read(dir, &x, &e), e, "not a regular file", "a directory: \"%s\"", e.msg);
    has_str(e.msg, dir, "the message names the file");
    FAILS(tg_idx_read(NULL, &x, &e), e, "path is NULL", "NULL path: \"%s\"", e.msg);
    ok(tg_idx_read(path_of("u8.idx"), NULL, NULL) == -1, "NULL out (and NULL err) is -1");
    ok(tg_idx_read(path_of("magic.idx"), &x, NULL) == -1, "a NULL err is allowed");
}

/* ---- gzip corruptions ------------------------------------------------------ */

static void corrupt_gz(void)
{
#ifdef TG_HAVE_ZLIB
    unsigned char raw[4096], gz[8192];
    tg_idx x;
    tg_err e;
    unsigned char data[1000];
    for (int i = 0; i < 1000; i++)
        data[i] = (unsigned char)(i * 7 + i / 13);
    size_t n = idx(raw, 0x08, 2, (uint32_t[]){10, 100}, data, 1000);
    size_t len = tap_slurp(write_gz("good.gz", raw, n), gz, sizeof gz);
    ok(len > 30 && tg_idx_read(path_of("good.gz"), &x, &e) == 0 && x.count == 1000 &&
           !memcmp(x.data, data, 1000), "gzip 10x100 reads back (%zu compressed bytes)", len);
    tg_idx_free(&x);

    /* cut anywhere: always an error that says truncated */
    int bad = 0;
    for (size_t cut = 1; cut < len; cut++) {
        int rc = tg_idx_read(write_file("cut.gz", gz, cut), &x, &e);
        if (rc != -1 || !strstr(e.msg, "truncated")) {
            if (bad++ < 5)
                diag("cut at %zu of %zu: rc %d \"%s\"", cut, len, rc, e.msg);
        }
    }
    ok(bad == 0, "a gzip stream cut at each of its %zu bytes fails with \"truncated\"", len - 1);
    tg_idx_read(write_file("cut.gz", gz, len / 2), &x, &e);
    has_str(e.msg, "truncated: expected 1000 bytes of data (10x100), found",
            "cut in the middle: the counts");
    has_str(e.msg, "the gzip stream is cut short", "cut in the middle: says the stream is cut");
    tg_idx_read(write_file("cut.gz", gz, len - 4), &x, &e);
    has_str(e.msg, "truncated gzip stream: the data is complete but the gzip trailer",
            "only the trailer cut: \"%s\"", e.msg);

    unsigned char c[8192];
    memcpy(c, gz, len);
    c[10] = 0xFF; /* first deflate block: BTYPE 11, reserved */
    FAILS(tg_idx_read(write_file("badblock.gz", c, len), &x, &e), e, "corrupt gzip stream",
          "corrupt deflate data: \"%s\"", e.msg);
    memcpy(c, gz, len);
    c[len - 8] ^= 0x01; /* CRC-32 of the trailer */
    FAILS(tg_idx_read(write_file("badcrc.gz", c, len), &x, &e), e,
          "corrupt gzip stream: incorrect data check", "wrong gzip CRC: \"%s\"", e.msg);
    memcpy(c, gz, len);
    c[len - 4] ^= 0x01; /* ISIZE */
    FAILS(tg_idx_read(write_file("badlen.gz", c, len), &x, &e), e,
          "corrupt gzip stream: incorrect length check", "wrong gzip length: \"%s\"", e.msg);
    memcpy(c, gz, len);
    c[3] = 0xE0; /* reserved FLG bits */
    FAILS(tg_idx_read(write_file("badflg.gz", c, len), &x, &e), e, "corrupt gzip stream",
          "reserved gzip header flags: \"%s\"", e.msg);
    const unsigned char only_magic[2] = {0x1f, 0x8b};
    FAILS(tg_idx_read(write_file("magiconly.gz", only_magic, 2), &x, &e), e, "truncated",
          "just the gzip magic: \"%s\"", e.msg);

    /* the decompressed data is checked like a raw file */
    n = idx(raw, 0x08, 2, (uint32_t[]){10, 100}, data, 1000);
    raw[1] = 7;
    FAILS(tg_idx_read(write_gz("magic.gz", raw, n), &x, &e), e, "not an IDX file: wrong magic",
          "gzip of a wrong magic: \"%s\"", e.msg);
    n = idx(raw, 0x08, 2, (uint32_t[]){10, 100}, data, 1000);
    FAILS(tg_idx_read(write_gz("short.gz", raw, n - 1), &x, &e), e,
          "truncated: expected 1000 bytes of data (10x100), found 999 (the gzip stream ended early)",
          "gzip of a truncated IDX file: \"%s\"", e.msg);
    FAILS(tg_idx_read(write_gz("hdr.gz", raw, 6), &x, &e), e,
          "truncated header: expected 2 dimension sizes (8 bytes), found 2 bytes",
          "gzip of a truncated header: \"%s\"", e.msg);
    memset(raw + n, 0, 50);
    FAILS(tg_idx_read(write_gz("trail.gz", raw, n + 50), &x, &e), e,
          "trailing garbage: 50 bytes after the 1000 bytes of data",
          "gzip with trailing bytes: \"%s\"", e.msg);
    n = idx(raw, 0x08, 3, (uint32_t[]){65536, 65536, 16}, data, 16);
    FAILS(tg_idx_read(write_gz("bomb.gz", raw, n), &x, &e), e,
          "more than a gzip file of",
          "a tiny gzip claiming 64 GiB is refused before reading: \"%s\"", e.msg);
    n = idx(raw, 0x08, 4, (uint32_t[]){1u << 20, 1u << 20, 1u << 20, 1u << 20}, data, 16);
    FAILS(tg_idx_read(write_gz("ovf.gz", raw, n), &x, &e), e, "overflow",
          "gzip of an overflowing header: \"%s\"", e.msg);
    n = idx(raw, 0x08, 2, (uint32_t[]){2000, 100}, data, 1000);
    FAILS(tg_idx_read(write_gz("halfdata.gz", raw, n), &x, &e), e,
          "truncated: expected 200000 bytes of data (2000x100), found 1000",
          "gzip whose dims exceed its data: \"%s\"", e.msg);
#else
    /* any file starting with the gzip magic */
    const unsigned char gz[12] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0};
    tg_idx x;
    tg_err e;
    FAILS(tg_idx_read(write_file("nozlib.gz", gz, sizeof gz), &x, &e), e,
          "is gzip-compressed but this tapegrad was built without zlib: install zlib1g-dev "
          "and rebuild, or gunzip the file", "without zlib a .gz says how to read it: \"%s\"", e.msg);
    printf("ok %d - # SKIP corrupt gzip streams: this build has no zlib\n", ++tap_count);
#endif
}

/* ---- data sets ------------------------------------------------------------- */

/* images u8 [n, rows, cols] with pixel value (i·7 + j) % 256, labels l[i] */
static void write_set(const char *im, const char *lb, int n, int rows, int cols,
                      const unsigned char *labels, int n_labels)
{
    static unsigned char buf[1 << 16], px[1 << 16];
    for (int i = 0; i < n * rows * cols; i++)
        px[i] = (unsigned char)((i * 7 + i / 5) % 256);
    size_t len = idx(buf, 0x08, 3, (uint32_t[]){(uint32_t)n, (uint32_t)rows, (uint32_t)cols}, px,
                     (size_t)(n * rows * cols));
    write_file(im, buf, len);
    len = idx(buf, 0x08, 1, (uint32_t[]){(uint32_t)n_labels}, labels, (size_t)n_labels);
    write_file(lb, buf, len);
}

static void datasets(void)
{
    tg_dataset d, h;
    tg_err e;
    const unsigned char lab[5] = {0, 2, 1, 2, 0};
    write_set("im5", "lb5", 5, 2, 3, lab, 5);
    int rc = tg_dataset_load_idx(path_of("im5"), path_of("lb5"), &d, &e);
    ok(rc == 0 && d.n == 5 && d.dim == 6 && d.rows == 2 && d.cols == 3 && d.classes == 3,
       "load: 5 images of 2x3, 3 classes (max label 2 + 1)");
    bool xs = rc == 0;
    for (int i = 0; xs && i < 30; i++)
        xs = d.x[i] == (float)((i * 7 + i / 5) % 256) / 255.0f;
    ok(xs && d.x[0] >= 0 && d.y[1] == 2 && d.y[4] == 0, "pixels scaled to [0, 1] (v/255), labels kept");

    ok(tg_dataset_head(&d, 3, &h, &e) == 0 && h.n == 3 && h.dim == 6 && h.classes == 3 &&
           h.rows == 2 && !memcmp(h.x, d.x, 18 * sizeof(float)) && h.y[2] == 1,
       "head: the first 3 samples, geometry and classes kept");
    tg_dataset_free(&h);
    ok(h.x == NULL && h.n == 0, "tg_dataset_free clears the struct");
    FAILS(tg_dataset_head(&d, 6, &h, &e), e, "dataset_head: n = 6 is outside 1..5", "head 6 of 5");
    FAILS(tg_dataset_head(&d, 0, &h, &e), e, "dataset_head: n = 0 is outside 1..5", "head 0");

    float before = d.x[7];
    ok(tg_dataset_normalize(&d, 0.5, 0.25, &e) == 0, "normalize");
    near(d.x[7], (before - 0.5) / 0.25, 1e-6, "normalize: x = (x − 0.5) / 0.25");
    FAILS(tg_dataset_normalize(&d, 0, 0, &e), e, "std 0 finite and > 0", "normalize with std 0");
    FAILS(tg_dataset_normalize(&d, NAN, 1, &e), e, "dataset_normalize: mean nan must be finite",
          "normalize with a NaN mean");
    tg_dataset_free(&d);
    FAILS(tg_dataset_normalize(&d, 0, 1, &e), e, "the data set is empty", "normalize a freed set");

    write_set("im4", "lb5b", 4, 2, 3, lab, 5);
    FAILS(tg_dataset_load_idx(path_of("im4"), path_of("lb5b"), &d, &e), e,
          "dataset: 4 images", "image and label counts differ: \"%s\"", e.msg);
    has_str(e.msg, "but 5 labels", "... and the message gives both counts");
    ok(d.x == NULL && d.n == 0, "on failure *out is empty");
    FAILS(tg_dataset_load_idx(path_of("lb5"), path_of("lb5"), &d, &e), e,
          "images must be u8 (type 0x08) of rank 3 [n, rows, cols], got type 0x08 of rank 1",
          "labels given as images: \"%s\"", e.msg);
    FAILS(tg_dataset_load_idx(path_of("im5"), path_of("im5"), &d, &e), e,
          "labels must be u8 (type 0x08) of rank 1 [n], got type 0x08 of rank 3",
          "images given as labels: \"%s\"", e.msg);
    FAILS(tg_dataset_load_idx(path_of("f32.idx"), path_of("lb5"), &d, &e), e,
          "images must be u8", "f32 images: \"%s\"", e.msg);
    FAILS(tg_dataset_load_idx(path_of("im5"), path_of("data.idx"), &d, &e), e,
          "truncated: expected 16 bytes of data", "a corrupt labels file: \"%s\"", e.msg);
    FAILS(tg_dataset_load_idx(path_of("nope"), path_of("lb5"), &d, &e), e, "cannot open",
          "a missing images file: \"%s\"", e.msg);
    FAILS(tg_dataset_load_idx(NULL, path_of("lb5"), &d, &e), e, "the images path is NULL",
          "a NULL path");
}

/* ---- resizing ------------------------------------------------------------ */

static void one_image(tg_dataset *d, size_t rows, size_t cols, const float *px)
{
    memset(d, 0, sizeof *d);
    d->n = 1, d->rows = rows, d->cols = cols, d->dim = rows * cols, d->classes = 1;
    d->x = tg_malloc(d->dim * sizeof(float));
    d->y = tg_malloc(sizeof(int32_t));
    memcpy(d->x, px, d->dim * sizeof(float));
    d->y[0] = 0;
}

static void resize_case(void)
{
    tg_err e;
    tg_dataset d;

    /* 4x4 -> 2x2: plain means of the 2x2 blocks */
    const float a[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    one_image(&d, 4, 4, a);
    int rc = tg_dataset_resize(&d, 2, 2, &e);
    ok(rc == 0 && d.rows == 2 && d.cols == 2 && d.dim == 4 && d.x[0] == 3.5f && d.x[1] == 5.5f &&
           d.x[2] == 11.5f && d.x[3] == 13.5f,
       "4x4 -> 2x2: (1+2+5+6)/4 = 3.5, 5.5, 11.5, 13.5");
    tg_dataset_free(&d);

    /* 3x3 -> 2x2: each output pixel covers 1.5x1.5 input pixels; for output
     * (0,0): weights 1, 0.5, 0.5, 0.25 over 2.25.
     *   out00 = (1 + 0.5·2 + 0.5·4 + 0.25·5) / 2.25 = 5.25/2.25 = 7/3
     *   out01 = (0.5·2 + 3 + 0.25·5 + 0.5·6) / 2.25 = 8.25/2.25 = 11/3
     *   out10 = (0.5·4 + 0.25·5 + 7 + 0.5·8) / 2.25 = 14.25/2.25 = 19/3
     *   out11 = (0.25·5 + 0.5·6 + 0.5·8 + 9) / 2.25 = 17.25/2.25 = 23/3 */
    const float b[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    one_image(&d, 3, 3, b);
    rc = tg_dataset_resize(&d, 2, 2, &e);
    ok(rc == 0, "3x3 -> 2x2");
    near(d.x[0], 7.0 / 3, 1e-6, "3x3 -> 2x2 (0,0) = 7/3");
    near(d.x[1], 11.0 / 3, 1e-6, "3x3 -> 2x2 (0,1) = 11/3");
    near(d.x[2], 19.0 / 3, 1e-6, "3x3 -> 2x2 (1,0) = 19/3");
    near(d.x[3], 23.0 / 3, 1e-6, "3x3 -> 2x2 (1,1) = 23/3");
    tg_dataset_free(&d);

    /* 28x28 -> 16x16: each output pixel averages a 1.75x1.75 area */
    float c[784];
    for (int i = 0; i < 784; i++)
        c[i] = (float)((i * 37 + i / 28 * 11) % 101) / 100.0f;
    one_image(&d, 28, 28, c);
    rc = tg_dataset_resize(&d, 16, 16, &e);
    ok(rc == 0 && d.rows == 16 && d.cols == 16 && d.dim == 256, "28x28 -> 16x16");
    /* output (0,0): input rows/cols 0 (weight 1) and 1 (weight 0.75) */
    double want00 = (c[0] + 0.75 * c[1] + 0.75 * c[28] + 0.5625 * c[29]) / (1.75 * 1.75);
    near(d.x[0], want00, 1e-6, "28->16 (0,0) = (a00 + .75 a01 + .75 a10 + .5625 a11) / 1.75²");
    /* output (1,1): input rows/cols 1 (0.25), 2 (1), 3 (0.5) */
    const double w[3] = {0.25, 1, 0.5};
    double want11 = 0;
    for (int r = 0; r < 3; r++)
        for (int q = 0; q < 3; q++)
            want11 += w[r] * w[q] * c[(r + 1) * 28 + q + 1];
    want11 /= 1.75 * 1.75;
    near(d.x[17], want11, 1e-6, "28->16 (1,1): weights 0.25, 1, 0.5 on rows and columns 1..3");
    /* row sums: Σ_j out[i][j] = (16/28)·Σ_k wy[i,k]·rowsum_in[k], and over
     * a whole row band the 16 output rows carry every input row once */
    double in_sum = 0, out_sum = 0, worst = 0;
    for (int i = 0; i < 784; i++)
        in_sum += c[i];
    for (int i = 0; i < 256; i++)
        out_sum += d.x[i];
    near(out_sum * (28.0 * 28) / (16 * 16), in_sum, 1e-6, "28->16 preserves the total (mean) intensity");
    for (int i = 0; i < 16; i++) {
        double lo = i * 1.75, hi = lo + 1.75, want = 0, got = 0;
        for (int k = 0; k < 28; k++) {
            double ov = fmin(hi, k + 1.0) - fmax(lo, (double)k);
            if (ov > 0) {
                double rs = 0;
                for (int l = 0; l < 28; l++)
                    rs += c[k * 28 + l];
                want += ov / 1.75 * rs * 16 / 28;
            }
        }
        for (int j = 0; j < 16; j++)
            got += d.x[i * 16 + j];
        worst = fmax(worst, fabs(got - want));
    }
    ok(worst < 1e-5, "28->16: every output row sum is the weighted input row sums (max err %.1e)", worst);
    tg_dataset_free(&d);

    /* ratio 2: exactly the 2x2 means */
    one_image(&d, 28, 28, c);
    rc = tg_dataset_resize(&d, 14, 14, &e);
    worst = 0;
    for (int i = 0; rc == 0 && i < 14; i++)
        for (int j = 0; j < 14; j++) {
            const float *p = c + 2 * i * 28 + 2 * j;
            double m = ((double)p[0] + p[1] + p[28] + p[29]) / 4;
            worst = fmax(worst, fabs(d.x[i * 14 + j] - m));
        }
    ok(rc == 0 && worst < 1e-7, "28->14 (ratio 2) is the plain 2x2 mean (max err %.1e)", worst);
    tg_dataset_free(&d);

    /* errors */
    one_image(&d, 2, 2, a);
    FAILS(tg_dataset_resize(&d, 0, 2, &e), e, "new size 0x2 must be between 1x1", "resize to 0 rows");
    d.rows = 0;
    FAILS(tg_dataset_resize(&d, 1, 1, &e), e, "the samples are not images", "resize without geometry");
    tg_dataset_free(&d);
    FAILS(tg_dataset_resize(NULL, 1, 1, &e), e, "dataset_resize: data set is NULL", "resize NULL");
}

/* ---- mini-batches ---------------------------------------------------------- */

static void ten(tg_dataset *d)
{
    memset(d, 0, sizeof *d);
    d->n = 10, d->dim = 2, d->classes = 3;
    d->x = tg_malloc(20 * sizeof(float));
    d->y = tg_malloc(10 * sizeof(int32_t));
    for (int i = 0; i < 10; i++) {
        d->x[2 * i] = (float)i; /* sample id */
        d->x[2 * i + 1] = (float)(100 + i);
        d->y[i] = i % 3;
    }
}

/* One epoch: the ids in order into ids[], batch sizes into sizes[].
 * Returns the number of batches, or -1 when a batch is inconsistent. */
static int epoch(tg_batcher *b, tg_tensor *x, tg_tensor *y, int *ids, long *sizes)
{
    int nb = 0, k = 0;
    for (;;) {
        long got = tg_batcher_next(b, x, y);
        if (got <= 0)
            return got < 0 ? -1 : nb;
        sizes[nb++] = got;
        for (long i = 0; i < (long)tg_dim(x, 0); i++) {
            double id = tg_get(x, (size_t)i * 2), second = tg_get(x, (size_t)i * 2 + 1);
            double lab = tg_get(y, (size_t)i);
            if (i < got) {
                if (second != 100 + id || lab != (int)id % 3)
                    return -1;
                ids[k++] = (int)id;
            } else if (id != 0 || second != 0 || lab != -1) {
                return -1; /* the rest of a partial batch: zeros, label -1 (no class) */
            }
        }
    }
}

static bool each_once(const int *ids, int n)
{
    int seen[10] = {0};
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= 10 || seen[ids[i]]++)
            return false;
    return n == 10;
}

static void batches(void)
{
    tg_dataset d;
    tg_err e;
    ten(&d);
    tg_tape *t = tg_tape_new();
    tg_tensor *x = tg_input(t, "x", TG_F32, 2, SHAPE(4, 2));
    tg_tensor *x64 = tg_input(t, "x64", TG_F64, 2, SHAPE(4, 2));
    tg_tensor *y = tg_input(t, "y", TG_I32, 1, SHAPE(4));
    tg_batcher b, b2;
    int ids[3][10], ids2[10];
    long sizes[4], sizes2[4];

    ok(tg_batcher_init(&b, &d, 4, true, false, 7, &e) == 0, "batcher: 10 samples, batch 4, shuffled");
    int nb = epoch(&b, x, y, ids[0], sizes);
    ok(nb == 3 && sizes[0] == 4 && sizes[1] == 4 && sizes[2] == 2,
       "an epoch is 4 + 4 + a partial 2, then 0 (rows past 2 are zero, their labels -1)");
    ok(each_once(ids[0], 10), "epoch 1 visits every sample exactly once");
    nb = epoch(&b, x64, y, ids[1], sizes);
    ok(nb == 3 && each_once(ids[1], 10), "epoch 2 (into an f64 tensor) visits every sample once");
    ok(memcmp(ids[0], ids[1], sizeof ids[0]) != 0, "epoch 2 is reshuffled");
    ok(tg_batcher_init(&b2, &d, 4, true, false, 7, &e) == 0 && epoch(&b2, x, y, ids2, sizes2) == 3 &&
           !memcmp(ids2, ids[0], sizeof ids2) && epoch(&b2, x, y, ids2, sizes2) == 3 &&
           !memcmp(ids2, ids[1], sizeof ids2),
       "the same seed gives the same two epochs");
    tg_batcher_free(&b2);
    ok(tg_batcher_init(&b2, &d, 4, true, false, 8, &e) == 0 && epoch(&b2, x, y, ids2, sizes2) == 3 &&
           memcmp(ids2, ids[0], sizeof ids2) != 0, "another seed gives another order");
    tg_batcher_free(&b2);
    tg_batcher_free(&b);
    ok(b.order == NULL, "tg_batcher_free clears the batcher");

    ok(tg_batcher_init(&b, &d, 4, false, false, 0, &e) == 0 && epoch(&b, x, y, ids[2], sizes) == 3,
       "without shuffle");
    bool in_order = true;
    for (int i = 0; i < 10; i++)
        in_order = in_order && ids[2][i] == i;
    ok(in_order, "without shuffle the samples come in order");
    tg_batcher_free(&b);

    ok(tg_batcher_init(&b, &d, 4, true, true, 3, &e) == 0 && epoch(&b, x, y, ids[2], sizes) == 2 &&
           sizes[0] == 4 && sizes[1] == 4, "drop_last: two full batches, the partial one dropped");
    tg_batcher_free(&b);

    /* errors */
    FAILS(tg_batcher_init(&b, &d, 0, true, false, 1, &e), e, "batch size is 0", "batch 0");
    FAILS(tg_batcher_init(&b, &d, 11, true, true, 1, &e), e,
          "batch 11 is larger than the data set (10 samples), so drop_last would drop every batch",
          "drop_last with batch > n");
    FAILS(tg_batcher_init(&b, NULL, 4, true, false, 1, &e), e, "batcher_init: data set is NULL",
          "NULL data set");
    tg_batcher_init(&b, &d, 4, true, false, 1, &e);
    tg_tensor *x3 = tg_input(t, "x3", TG_F32, 2, SHAPE(4, 3));
    tg_tensor *xi = tg_input(t, "xi", TG_I32, 2, SHAPE(4, 2));
    tg_tensor *y5 = tg_input(t, "y5", TG_I32, 1, SHAPE(5));
    tg_tensor *yf = tg_input(t, "yf", TG_F32, 1, SHAPE(4));
    struct { tg_tensor *x, *y; const char *msg; } cases[] = {
        {x3, y, "batcher_next: x 'x3' is 4x3, expected 4x2 (batch x features) or 4x... with 2 elements a sample"},
        {xi, y, "batcher_next: x 'xi' must be f32 or f64, not i32"},
        {x, y5, "batcher_next: labels 'y5' is 5, expected 4 (batch)"},
        {x, yf, "batcher_next: labels 'yf' must be i32, not f32"},
        {x, NULL, "batcher_next: the labels tensor is NULL"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long r = tg_batcher_next(&b, cases[i].x, cases[i].y);
        const char *m = tg_tape_error(t);
        ok(r == -1 && m && strstr(m, cases[i].msg), "%s", m ? m : "(no error)");
        tg_tape_clear_error(t);
    }
    /* images: x [batch, 1, 1, 2] takes the same values as x [batch, 2] */
    tg_tensor *x4 = tg_input(t, "x4", TG_F32, 4, SHAPE(4, 1, 1, 2));
    tg_batcher b4;
    tg_batcher_init(&b4, &d, 4, true, false, 1, &e);
    tg_batcher_free(&b);
    tg_batcher_init(&b, &d, 4, true, false, 1, &e);
    ok(tg_batcher_next(&b4, x4, y) == 4 && tg_batcher_next(&b, x, y) == 4 &&
           !memcmp(tg_data(x4), tg_data(x), 8 * sizeof(float)),
       "x of shape [batch, 1, 1, 2] gets the same batch as [batch, 2]");
    tg_batcher_free(&b4);
    ok(tg_batcher_next(&b, NULL, NULL) == -1, "NULL x and labels: -1");
    ok(tg_batcher_next(NULL, x, y) == -1 && tg_tape_error(t) &&
           strstr(tg_tape_error(t), "the batcher is NULL or not initialised"),
       "NULL batcher: -1 and an error on the tensors' tape");
    tg_tape_clear_error(t);
    tg_batcher_free(&b);
    tg_tape_free(t);
    tg_dataset_free(&d);
}

/* The class of a row of padded()'s data: its first feature is id / 4. */
static int class_of(const double *row) { return (int)lround(row[0] * 4) % 3; }

/* The mean softmax cross-entropy of the k real rows of a batch (x [k,2])
 * under W [2,3], and its gradient dW: the reference a padded batch must
 * reproduce, on a tape of exactly k rows. */
static double real_rows_loss(const double *x, int k, const double *W, double *dW)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *xr = tg_input(t, "x", TG_F64, 2, SHAPE((size_t)k, 2));
    tg_tensor *yr = tg_input(t, "y", TG_I32, 1, SHAPE((size_t)k));
    tg_tensor *w = tg_param(t, "W", TG_F64, 2, SHAPE(2, 3));
    memcpy(tg_data_f64(xr), x, (size_t)k * 2 * sizeof(double));
    memcpy(tg_data_f64(w), W, 6 * sizeof(double));
    for (int i = 0; i < k; i++)
        tg_data_i32(yr)[i] = class_of(x + 2 * i);
    tg_tensor *loss = tg_softmax_ce(tg_matmul(xr, w), yr, TG_MEAN);
    double v = loss && tg_backward(loss) == 0 ? tg_item(loss) : NAN;
    memcpy(dW, tg_grad(w), 6 * sizeof(double));
    tg_tape_free(t);
    return v;
}

/* A last partial batch never trains as samples of class 0.  With targets
 * (tg_batcher_next_targets) the k real rows weigh 1/k and the padding rows
 * are zero, so softmax_ce_onehot with TG_SUM on the full-size tape is the
 * mean loss of the real rows, with the same gradient, and the padding rows'
 * gradient is exactly 0.  With i32 labels the padding rows get label -1,
 * which the loss refuses. */
static void padded(void)
{
    tg_dataset d;
    tg_err e;
    ten(&d);
    for (int i = 0; i < 10; i++)
        d.x[2 * i] /= 4, d.x[2 * i + 1] /= -40; /* moderate logits */
    tg_tape *t = tg_tape_new();
    tg_tensor *x = tg_input(t, "x", TG_F64, 2, SHAPE(4, 2));
    tg_tensor *tgt = tg_input(t, "targets", TG_F64, 2, SHAPE(4, 3));
    tg_tensor *w = tg_param(t, "W", TG_F64, 2, SHAPE(2, 3));
    const double W[6] = {0.5, -0.25, 1.0, 0.75, 0.125, -0.5};
    memcpy(tg_data_f64(w), W, sizeof W);
    tg_tensor *logits = tg_matmul(x, w);
    tg_tensor *loss = tg_softmax_ce_onehot(logits, tgt, TG_SUM);
    tg_batcher b;
    ok(loss && tg_batcher_init(&b, &d, 4, false, false, 0, &e) == 0,
       "targets: 10 samples in batches of 4, the last one partial");
    long sizes[4] = {0};
    int nb = 0;
    for (long got; nb < 4 && (got = tg_batcher_next_targets(&b, x, tgt)) > 0; nb++) {
        sizes[nb] = got;
        const double *xs = tg_data_f64(x), *ts = tg_data_f64(tgt);
        bool rows_ok = true;
        for (long i = 0; i < 4; i++)
            for (int c = 0; c < 3; c++) {
                bool hot = i < got && c == class_of(xs + 2 * i);
                rows_ok &= ts[i * 3 + c] == (hot ? 1.0 / (double)got : 0.0);
            }
        ok(rows_ok, "batch %d: targets 1/%ld at each real row's class, padding rows all 0", nb + 1,
           got);
        tg_zero_grad(t);
        ok(tg_replay(t) == 0 && tg_backward(loss) == 0, "batch %d: replay and backward", nb + 1);
        double ref_dW[6], want = real_rows_loss(xs, (int)got, W, ref_dW);
        near(tg_item(loss), want, 1e-14, "batch %d: the loss is the mean loss of its %ld real rows",
             nb + 1, got);
        double dmax = 0;
        for (int i = 0; i < 6; i++)
            dmax = fmax(dmax, fabs(((const double *)tg_grad(w))[i] - ref_dW[i]));
        ok(dmax <= 1e-14, "batch %d: dW is the gradient of the real rows alone (max diff %.2g)",
           nb + 1, dmax);
        const double *dz = tg_grad(logits);
        bool zero = true, live = true;
        for (long i = 0; i < 4; i++)
            for (int c = 0; c < 3; c++)
                i < got ? (live &= dz[i * 3 + c] != 0) : (zero &= dz[i * 3 + c] == 0.0);
        ok(zero && live, "batch %d: the padding rows' gradient is exactly 0, the real rows' not",
           nb + 1);
    }
    ok(nb == 3 && sizes[0] == 4 && sizes[1] == 4 && sizes[2] == 2,
       "an epoch of targets is 4 + 4 + 2 real rows, then 0");

    /* i32 labels: the padding is no class, so a loss over it fails loudly */
    tg_tensor *y = tg_input(t, "labels", TG_I32, 1, SHAPE(4));
    tg_tensor *ce = tg_softmax_ce(logits, y, TG_MEAN);
    long got = 0;
    while ((got = tg_batcher_next(&b, x, y)) == 4) {
    }
    ok(got == 2 && tg_data_i32(y)[2] == -1 && tg_data_i32(y)[3] == -1,
       "i32 labels: the padding rows of the partial batch are labelled -1");
    TAPE_FAILS(t, ce && tg_forward(ce), "label -1 at row 2 is outside [0, 3)");

    /* f32 targets, and more columns than classes (a wider output layer) */
    tg_tensor *x32 = tg_input(t, "x32", TG_F32, 2, SHAPE(4, 2));
    tg_tensor *t32 = tg_input(t, "t32", TG_F32, 2, SHAPE(4, 5));
    tg_batcher_free(&b);
    tg_batcher_init(&b, &d, 4, false, false, 0, &e); /* in order: 8 and 9 come last */
    while ((got = tg_batcher_next_targets(&b, x32, t32)) == 4) {
    }
    const float *f = tg_data_f32(t32);
    float sum = 0, pad = 0;
    for (int i = 0; i < 20; i++)
        i < 10 ? (sum += f[i]) : (pad += fabsf(f[i]));
    ok(got == 2 && sum == 1.0f && pad == 0 && f[0 * 5 + 8 % 3] == 0.5f && f[1 * 5 + 9 % 3] == 0.5f,
       "f32 targets [4, 5]: the two real rows weigh 1/2 at their class, the padding 0");

    /* errors */
    tg_tensor *ti = tg_input(t, "ti", TG_I32, 2, SHAPE(4, 3));
    tg_tensor *t2 = tg_input(t, "t2", TG_F64, 2, SHAPE(4, 2));
    tg_tensor *t1 = tg_input(t, "t1", TG_F64, 1, SHAPE(4));
    struct { tg_tensor *tt; const char *msg; } cases[] = {
        {ti, "batcher_next_targets: targets 'ti' must be f32 or f64, not i32"},
        {t2, "batcher_next_targets: targets 't2' is 4x2, expected 4 x at least 3 (batch x classes)"},
        {t1, "batcher_next_targets: targets 't1' is 4, expected 4 x at least 3 (batch x classes)"},
        {NULL, "batcher_next_targets: the targets tensor is NULL"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tg_tape_clear_error(t);
        long r = tg_batcher_next_targets(&b, x, cases[i].tt);
        const char *m = tg_tape_error(t);
        ok(r == -1 && m && strstr(m, cases[i].msg), "%s", m ? m : "(no error)");
    }
    tg_tape_clear_error(t);
    tg_batcher_free(&b);
    tg_batcher_init(&b, &d, 4, false, false, 0, &e);
    d.y[1] = 3; /* beyond the 3 columns of tgt */
    tg_data_f64(tgt)[0] = 42;
    TAPE_FAILS(t, tg_batcher_next_targets(&b, x, tgt) == -1,
               "batcher_next_targets: label 3 of sample 1 is outside [0, 3)");
    ok(tg_data_f64(tgt)[0] == 42 && b.pos == 0, "... and nothing is written or consumed");
    tg_batcher_free(&b);
    tg_tape_free(t);
    tg_dataset_free(&d);
}

/* ---- the real thing, when installed --------------------------------------- */

static void fashion(void)
{
    const char *im = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
    const char *lb = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
    if (access(im, R_OK) || access(lb, R_OK)) {
        printf("ok %d - # SKIP Fashion-MNIST is not installed (/usr/share/datasets/fashion-mnist)\n",
               ++tap_count);
        return;
    }
    if (!tg_have_zlib()) {
        printf("ok %d - # SKIP Fashion-MNIST is gzip-compressed and this build has no zlib\n",
               ++tap_count);
        return;
    }
    tg_dataset d;
    tg_err e = {{0}};
    int rc = tg_dataset_load_idx(im, lb, &d, &e);
    ok(rc == 0 && d.n == 10000 && d.rows == 28 && d.cols == 28 && d.dim == 784 && d.classes == 10,
       "Fashion-MNIST t10k: 10000 images of 28x28, 10 classes %s", e.msg);
    int count[10] = {0};
    for (size_t i = 0; rc == 0 && i < d.n; i++)
        count[d.y[i]]++;
    ok(rc == 0 && count[0] == 1000 && count[9] == 1000, "t10k has 1000 samples of each class");
    tg_dataset_free(&d);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/tg_data_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    valid();
    corrupt();
    corrupt_gz();
    datasets();
    resize_case();
    batches();
    padded();
    fashion();
    for (int i = 0; i < n_made; i++)
        unlink(made[i]);
    ok(rmdir(dir) == 0, "the temporary directory is left empty and removed");
    return tap_done();
}
