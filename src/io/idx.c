/* IDX files (the MNIST format), raw or gzip-compressed.
 *
 * Layout: two zero bytes, a type byte, a rank byte, rank big-endian u32
 * dimension sizes, then the elements, big-endian, row-major.
 *
 * Nothing taken from the file is trusted: the header is checked field by
 * field, the element count and byte size are computed with overflow checks,
 * and the data size is compared with the real file size before anything of
 * that size is allocated.  A gzip stream's decompressed size is unknown in
 * advance: it is bounded by the largest ratio deflate can reach, and the
 * buffer grows only as data actually arrives. */
#include "io.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>

#ifdef TG_HAVE_ZLIB
#include <limits.h>
#include <zlib.h>
#endif

bool tg_have_zlib(void)
{
#ifdef TG_HAVE_ZLIB
    return true;
#else
    return false;
#endif
}

/* "idx: <path>: ..." into err->msg (err may be NULL). */
#define fail(err, path, ...) tg_msgf((err) ? (err)->msg : NULL, sizeof (err)->msg, "idx", \
                                     (path) ? (path) : "(null)", __VA_ARGS__)

static size_t type_size(int type)
{
    switch (type) {
    case 0x08: case 0x09: return 1;
    case 0x0B: return 2;
    case 0x0C: case 0x0D: return 4;
    case 0x0E: return 8;
    }
    return 0;
}

/* The largest expansion of deflate is 1032:1; a gzip file of c bytes cannot
 * decompress to more than this (plus slack for tiny files). */
#define GZ_MAX_RATIO 1032u
#define GZ_SLACK 4096u

/* ---- input: a raw FILE or a gzip stream ---------------------------------- */

typedef struct src {
    const char *path;
    FILE *f;
#ifdef TG_HAVE_ZLIB
    gzFile gz;
#endif
    bool is_gz;
    bool cut;           /* the gzip stream ended in the middle       */
    uint64_t file_size; /* bytes on disk (compressed size for gzip) */
} src;

/* Read up to n bytes into buf; *got gets how many.  Fails on a read error
 * or a corrupt gzip stream; a short count means the end of the data (for a
 * gzip stream cut in the middle, s->cut is also set). */
static int src_read(src *s, void *buf, size_t n, size_t *got, tg_err *err)
{
    *got = 0;
    if (!s->is_gz) {
        *got = fread(buf, 1, n, s->f);
        if (*got < n && ferror(s->f))
            return fail(err, s->path, "read error: %s", strerror(errno));
        return TG_OK;
    }
#ifdef TG_HAVE_ZLIB
    unsigned char *p = buf;
    while (*got < n) {
        size_t want = n - *got;
        unsigned chunk = want > (1u << 30) ? (1u << 30) : (unsigned)want;
        int r = gzread(s->gz, p + *got, chunk);
        int code = Z_OK;
        const char *msg = gzerror(s->gz, &code);
        if (r > 0)
            *got += (size_t)r;
        if (code == Z_BUF_ERROR) { /* "unexpected end of file" */
            s->cut = true;
            break;
        }
        if (r < 0 || (code != Z_OK && code != Z_STREAM_END)) {
            if (code == Z_ERRNO)
                return fail(err, s->path, "read error: %s", strerror(errno));
            size_t pl = strlen(s->path); /* zlib prefixes its message with the path */
            if (msg && !strncmp(msg, s->path, pl) && !strncmp(msg + pl, ": ", 2))
                msg += pl + 2;
            return fail(err, s->path, "corrupt gzip stream: %s", msg ? msg : "unknown error");
        }
        if (r == 0)
            break;
    }
#endif
    return TG_OK;
}

static void src_close(src *s)
{
    if (s->f)
        fclose(s->f);
    s->f = NULL;
#ifdef TG_HAVE_ZLIB
    if (s->gz)
        gzclose(s->gz);
    s->gz = NULL;
#endif
}

/* Open path and look at its first bytes: gzip (1f 8b) or raw.  The first
 * up to 4 bytes of the (decompressed) data are returned in head, their
 * count in *n_head. */
static int src_open(src *s, const char *path, unsigned char head[4], size_t *n_head,
                    tg_err *err)
{
    memset(s, 0, sizeof *s);
    s->path = path;
    s->f = fopen(path, "rb");
    if (!s->f)
        return fail(err, path, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fileno(s->f), &st) != 0)
        return fail(err, path, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return fail(err, path, "not a regular file");
    s->file_size = (uint64_t)st.st_size;
    if (src_read(s, head, 4, n_head, err))
        return TG_ERR;
    if (*n_head < 2 || head[0] != 0x1f || head[1] != 0x8b)
        return TG_OK;
#ifdef TG_HAVE_ZLIB
    fclose(s->f);
    s->f = NULL;
    s->is_gz = true;
    s->gz = gzopen(path, "rb");
    if (!s->gz)
        return fail(err, path, "cannot open: %s", errno ? strerror(errno) : "out of memory");
    if (src_read(s, head, 4, n_head, err))
        return TG_ERR;
    return TG_OK;
#else
    return fail(err, path, "is gzip-compressed but this tapegrad was built without zlib: "
                           "install zlib1g-dev and rebuild, or gunzip the file");
#endif
}

/* ---- reading ------------------------------------------------------------- */

static uint64_t be(const unsigned char *p, size_t k)
{
    uint64_t v = 0;
    for (size_t i = 0; i < k; i++)
        v = v << 8 | p[i];
    return v;
}

/* Big-endian elements of size es to host order, in place. */
static void to_host(unsigned char *d, size_t count, size_t es)
{
    if (es == 2) {
        for (size_t i = 0; i < count; i++) {
            uint16_t v = (uint16_t)be(d + 2 * i, 2);
            memcpy(d + 2 * i, &v, 2);
        }
    } else if (es == 4) {
        for (size_t i = 0; i < count; i++) {
            uint32_t v = (uint32_t)be(d + 4 * i, 4);
            memcpy(d + 4 * i, &v, 4);
        }
    } else if (es == 8) {
        for (size_t i = 0; i < count; i++) {
            uint64_t v = be(d + 8 * i, 8);
            memcpy(d + 8 * i, &v, 8);
        }
    }
}

/* "60000x28x28" */
static void dims_str(const size_t *dims, int rank, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; i < rank && at < len; i++) {
        int w = snprintf(buf + at, len - at, i ? "x%zu" : "%zu", dims[i]);
        if (w < 0)
            break;
        at += (size_t)w;
    }
}

/* Read the data of a raw file: its size is known, so check it first. */
static int read_raw(src *s, tg_idx *out, size_t bytes, size_t header, tg_err *err)
{
    uint64_t avail = s->file_size > header ? s->file_size - header : 0;
    char d[96];
    dims_str(out->dims, out->rank, d, sizeof d);
    if ((uint64_t)bytes > avail)
        return fail(err, s->path, "truncated: expected %zu bytes of data (%s), found %llu",
                    bytes, d, (unsigned long long)avail);
    if ((uint64_t)bytes < avail)
        return fail(err, s->path, "trailing garbage: %llu bytes after the %zu bytes of data (%s)",
                    (unsigned long long)(avail - bytes), bytes, d);
    out->data = tg_malloc(bytes);
    if (!out->data)
        return fail(err, s->path, "out of memory for %zu bytes of data", bytes);
    size_t got;
    if (src_read(s, out->data, bytes, &got, err))
        return TG_ERR;
    if (got < bytes) /* the file shrank since fstat */
        return fail(err, s->path, "truncated: expected %zu bytes of data (%s), found %zu",
                    bytes, d, got);
    unsigned char extra;
    if (src_read(s, &extra, 1, &got, err))
        return TG_ERR;
    if (got)
        return fail(err, s->path, "trailing garbage after the %zu bytes of data (%s)", bytes, d);
    return TG_OK;
}

#ifdef TG_HAVE_ZLIB
/* Read the data of a gzip stream incrementally: the buffer grows (doubling,
 * from 1 MiB) only as decompressed data arrives. */
static int read_gz(src *s, tg_idx *out, size_t bytes, size_t header, tg_err *err)
{
    char d[96];
    dims_str(out->dims, out->rank, d, sizeof d);
    uint64_t limit = s->file_size > (UINT64_MAX - GZ_SLACK) / GZ_MAX_RATIO
                         ? UINT64_MAX
                         : s->file_size * GZ_MAX_RATIO + GZ_SLACK;
    if ((uint64_t)bytes > limit - header)
        return fail(err, s->path, "dimensions %s need %zu bytes of data, more than a gzip "
                                  "file of %llu bytes can hold (at most %llu)",
                    d, bytes, (unsigned long long)s->file_size,
                    (unsigned long long)(limit - header));
    size_t have = 0, cap = 0;
    while (have < bytes) {
        if (have == cap) {
            size_t ncap = cap ? (cap > bytes / 2 ? bytes : cap * 2)
                              : (bytes < ((size_t)1 << 20) ? bytes : (size_t)1 << 20);
            void *p = tg_realloc(out->data, ncap);
            if (!p)
                return fail(err, s->path, "out of memory for %zu bytes of data", ncap);
            out->data = p;
            cap = ncap;
        }
        size_t got, req = cap - have;
        if (src_read(s, (unsigned char *)out->data + have, req, &got, err))
            return TG_ERR;
        have += got;
        if (got < req)
            return fail(err, s->path, "truncated: expected %zu bytes of data (%s), found %zu "
                                      "(%s)", bytes, d, have,
                        s->cut ? "the gzip stream is cut short" : "the gzip stream ended early");
    }
    /* Anything after the data?  (This read also makes zlib check the CRC
     * and length in the gzip trailer.) */
    unsigned char extra[4096];
    size_t got, trailing = 0;
    do {
        if (src_read(s, extra, sizeof extra, &got, err))
            return TG_ERR;
        trailing += got;
    } while (got == sizeof extra && trailing < ((size_t)1 << 20));
    if (s->cut)
        return fail(err, s->path, "truncated gzip stream: the data is complete but the gzip "
                                  "trailer (CRC and length) is cut short");
    if (trailing)
        return fail(err, s->path, "trailing garbage: %s%zu bytes after the %zu bytes of data (%s)",
                    got == sizeof extra ? "more than " : "", trailing, bytes, d);
    return TG_OK;
}
#endif

/* Check the first 4 bytes (head, n of them read): magic, element type and
 * rank; the element size in *es. */
static int check_magic(const src *s, const unsigned char head[4], size_t n, size_t *es,
                       tg_err *err)
{
    if (n < 4)
        return fail(err, s->path, "truncated header: %s has %zu bytes, an IDX header needs at "
                                  "least 4%s", s->is_gz ? "the decompressed data" : "the file",
                    n, s->cut ? " (the gzip stream is cut short)" : "");
    if (head[0] != 0 || head[1] != 0)
        return fail(err, s->path, "not an IDX file: wrong magic %02x %02x %02x %02x "
                                  "(expected 00 00, a type byte, a rank byte)",
                    head[0], head[1], head[2], head[3]);
    if (!(*es = type_size(head[2])))
        return fail(err, s->path, "unknown IDX element type 0x%02x (known: 0x08 u8, 0x09 i8, "
                                  "0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64)", head[2]);
    if (head[3] < 1 || head[3] > 8)
        return fail(err, s->path, "rank %d is outside 1..8", head[3]);
    return TG_OK;
}

/* Read the rank dimension sizes into out->dims and set out->count, checked
 * for 0 and for overflow of the byte size (elements of es bytes). */
static int read_dims(src *s, tg_idx *out, size_t es, tg_err *err)
{
    unsigned char dimb[32];
    size_t n, want = 4 * (size_t)out->rank;
    if (src_read(s, dimb, want, &n, err))
        return TG_ERR;
    if (n < want)
        return fail(err, s->path, "truncated header: expected %d dimension sizes (%zu bytes), "
                                  "found %zu bytes%s", out->rank, want, n,
                    s->cut ? " (the gzip stream is cut short)" : "");
    size_t count = 1;
    bool overflow = false;
    for (int i = 0; i < out->rank; i++) {
        out->dims[i] = (size_t)be(dimb + 4 * i, 4);
        if (out->dims[i] == 0)
            return fail(err, s->path, "dimension %d is 0", i);
        if (count > SIZE_MAX / out->dims[i])
            overflow = true;
        else
            count *= out->dims[i];
    }
    if (overflow || count > (size_t)PTRDIFF_MAX / es) {
        char d[96];
        dims_str(out->dims, out->rank, d, sizeof d);
        return fail(err, s->path, "dimensions %s overflow: %zu-byte elements of that count do "
                                  "not fit in memory", d, es);
    }
    out->count = count;
    return TG_OK;
}

int tg_idx_read(const char *path, tg_idx *out, tg_err *err)
{
    if (!out)
        return fail(err, path, "out is NULL");
    memset(out, 0, sizeof *out);
    if (!path)
        return fail(err, path, "path is NULL");
    src s;
    unsigned char head[4];
    size_t n = 0, es = 0;
    int rc = TG_ERR;
    if (src_open(&s, path, head, &n, err) || check_magic(&s, head, n, &es, err))
        goto done;
    out->type = head[2];
    out->rank = head[3];
    if (read_dims(&s, out, es, err))
        goto done;
    size_t header = 4 + 4 * (size_t)out->rank, bytes = out->count * es;
#ifdef TG_HAVE_ZLIB
    if (s.is_gz ? read_gz(&s, out, bytes, header, err) : read_raw(&s, out, bytes, header, err))
        goto done;
#else
    if (read_raw(&s, out, bytes, header, err))
        goto done;
#endif
    to_host(out->data, out->count, es);
    rc = TG_OK;
done:
    src_close(&s);
    if (rc != TG_OK)
        tg_idx_free(out);
    return rc;
}

void tg_idx_free(tg_idx *idx)
{
    if (!idx)
        return;
    tg_free(idx->data);
    memset(idx, 0, sizeof *idx);
}
