/* Saving and loading named tensors: the format of docs/format.md.
 *
 * Saves build the whole file in memory and replace the target with it
 * through the atomic writer of src/io/file.c (temporary file, fsync,
 * rename, fsync of the directory): the target always holds either the old
 * or the new complete file, and on any failure the temporary file is
 * removed.
 *
 * Loads read the whole file (its size taken from fstat and checked against
 * the header), verify the magic, version, size, checksum and every record
 * with bounds checks, then match the records with the tensors by name,
 * dtype and shape.  Only when everything is right is any tensor written. */
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "TAPEGRAD"
#define VERSION 1u
#define HEADER 24u      /* magic, version, count, file size */
#define TRAILER 4u      /* CRC-32C */
#define MAX_NAME 4096u  /* bytes of a tensor name */
#define MIN_RECORD 11u  /* name length, 1-byte name, dtype, rank, one 4-byte element */

/* ---- CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, initial value
 * and final xor 0xFFFFFFFF; "123456789" gives 0xE3069283. --------------- */

static void crc_table(uint32_t t[256])
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        t[i] = c;
    }
}

uint32_t tg_crc32c(const unsigned char *p, size_t n)
{
    uint32_t t[256];
    crc_table(t);
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++)
        c = t[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* ---- little-endian encoding, independent of the host ------------------- */

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Tensor elements (host order) to little-endian bytes and back. */
static void encode(unsigned char *dst, const void *src, tg_dtype dtype, size_t n)
{
    if (dtype == TG_F64) {
        const double *s = src;
        for (size_t i = 0; i < n; i++) {
            uint64_t v;
            memcpy(&v, &s[i], 8);
            put_u64(dst + 8 * i, v);
        }
    } else { /* f32 and i32: 32-bit patterns */
        const uint32_t *s = src; /* memcpy below: no aliasing assumption */
        for (size_t i = 0; i < n; i++) {
            uint32_t v;
            memcpy(&v, (const unsigned char *)s + 4 * i, 4);
            put_u32(dst + 4 * i, v);
        }
    }
}

static void decode(void *dst, const unsigned char *src, tg_dtype dtype, size_t n)
{
    unsigned char *d = dst;
    if (dtype == TG_F64) {
        for (size_t i = 0; i < n; i++) {
            uint64_t v = get_u64(src + 8 * i);
            memcpy(d + 8 * i, &v, 8);
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            uint32_t v = get_u32(src + 4 * i);
            memcpy(d + 4 * i, &v, 4);
        }
    }
}

/* Strict UTF-8: no overlong forms, surrogates, code points above U+10FFFF,
 * and (for C strings) no NUL. */
static bool valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        uint32_t cp, min;
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if (n - i - 1 < k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += k + 1;
    }
    return true;
}

/* "512x10" or "scalar" */
static void dims_str(int rank, const uint64_t *dims, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = 0;
    if (rank == 0)
        snprintf(buf, len, "scalar");
    for (int i = 0; i < rank && at < len; i++) {
        int w = snprintf(buf + at, len - at, i ? "x%llu" : "%llu", (unsigned long long)dims[i]);
        if (w < 0)
            break;
        at += (size_t)w;
    }
}

/* ---- the tensors to save or load ----------------------------------------- */

/* Check tg_save's or tg_load's arguments (fn: "save" or "load") and put
 * the n tensors (n = 0: every TG_PARAM leaf) in *list (tg_malloc'ed),
 * checked: same tape, named (valid UTF-8, at most MAX_NAME bytes), names
 * unique. */
static int gather(tg_tape *tape, int n, tg_tensor *const *tensors, const char *fn,
                  const char *path, tg_tensor ***list, size_t *count)
{
    if (!tape)
        return TG_ERR;
    if (!path || !*path)
        return tg_error(tape, "%s: path is NULL or empty", fn);
    size_t c = 0;
    if (n < 0)
        return tg_error(tape, "%s: %s: n = %d is negative", fn, path, n);
    if (n > 0 && !tensors)
        return tg_error(tape, "%s: %s: tensors is NULL but n = %d", fn, path, n);
    if (n == 0) {
        for (size_t i = 0; i < tape->n_leaves; i++)
            c += tape->leaves[i]->kind == TG_PARAM;
        if (c == 0)
            return tg_error(tape, "%s: %s: the tape has no parameters", fn, path);
    } else {
        c = (size_t)n;
    }
    tg_tensor **p = tg_malloc(c * sizeof *p);
    if (!p)
        return tg_error(tape, "%s: %s: out of memory", fn, path);
    if (n == 0) {
        size_t k = 0;
        for (size_t i = 0; i < tape->n_leaves; i++)
            if (tape->leaves[i]->kind == TG_PARAM)
                p[k++] = tape->leaves[i];
    } else {
        memcpy(p, tensors, c * sizeof *p);
    }
    for (size_t i = 0; i < c; i++) {
        const tg_tensor *t = p[i];
        int bad = TG_OK;
        if (!t)
            bad = tg_error(tape, "%s: %s: tensors[%zu] is NULL", fn, path, i);
        else if (t->tape != tape)
            bad = tg_error(tape, "%s: %s: tensor %zu ('%s') belongs to another tape", fn, path,
                           i, tg_label(t));
        else if (t->node && !strcmp(fn, "load"))
            bad = tg_error(tape, "%s: %s: tensor %zu ('%s') is the output of %s (node %zu): "
                                 "only leaves can be loaded", fn, path, i, tg_label(t),
                           t->node->op->name, t->node->index);
        else if (!t->name || !*t->name)
            bad = tg_error(tape, "%s: %s: tensor %zu (%s %s) has no name; tensors are matched "
                                 "by name (tg_set_name)", fn, path, i, tg_op_name(t),
                           tg_shp_of(t).s);
        else if (strlen(t->name) > MAX_NAME)
            bad = tg_error(tape, "%s: %s: the name of tensor %zu is longer than %u bytes", fn,
                           path, i, MAX_NAME);
        else if (!valid_utf8((const unsigned char *)t->name, strlen(t->name)))
            bad = tg_error(tape, "%s: %s: the name of tensor %zu is not valid UTF-8", fn, path,
                           i);
        for (size_t j = 0; !bad && j < i; j++)
            if (p[j] == t)
                bad = tg_error(tape, "%s: %s: tensor '%s' is listed twice", fn, path, t->name);
            else if (!strcmp(p[j]->name, t->name))
                bad = tg_error(tape, "%s: %s: two tensors are named '%s'", fn, path, t->name);
        if (bad) {
            tg_free(p);
            return TG_ERR;
        }
    }
    *list = p;
    *count = c;
    return TG_OK;
}

/* ---- saving -------------------------------------------------------------- */

/* The size of the file holding list[0, count), or 0 when it would not fit
 * in a size_t.  Every record is bounded by a tensor in memory. */
static size_t file_size(tg_tensor *const *list, size_t count)
{
    size_t size = HEADER + TRAILER;
    for (size_t i = 0; i < count; i++) {
        const tg_tensor *t = list[i];
        size_t rec = 4 + strlen(t->name) + 2 + 8 * (size_t)t->rank +
                     t->size * tg_dtype_size((tg_dtype)t->dtype);
        if (size > SIZE_MAX - rec)
            return 0;
        size += rec;
    }
    return size;
}

/* The whole file (docs/format.md) into buf, of file_size(list, count)
 * bytes. */
static void encode_file(unsigned char *buf, size_t size, tg_tensor *const *list, size_t count)
{
    unsigned char *p = buf;
    memcpy(p, MAGIC, 8);
    put_u32(p + 8, VERSION);
    put_u32(p + 12, (uint32_t)count);
    put_u64(p + 16, (uint64_t)size);
    p += HEADER;
    for (size_t i = 0; i < count; i++) {
        const tg_tensor *t = list[i];
        size_t len = strlen(t->name);
        put_u32(p, (uint32_t)len);
        memcpy(p + 4, t->name, len);
        p += 4 + len;
        *p++ = t->dtype;
        *p++ = t->rank;
        for (int k = 0; k < t->rank; k++, p += 8)
            put_u64(p, (uint64_t)t->shape[k]);
        encode(p, t->data, (tg_dtype)t->dtype, t->size);
        p += t->size * tg_dtype_size((tg_dtype)t->dtype);
    }
    put_u32(p, tg_crc32c(buf, size - TRAILER));
}

/* Replace the file at path with buf (src/io/file.c: temporary file,
 * fsync, rename, fsync of the directory). */
static int replace_file(tg_tape *tape, const char *path, const unsigned char *buf, size_t size)
{
    tg_atomic a;
    if (tg_atomic_open(&a, "save", path))
        return tg_error(tape, "%s", a.msg);
    fwrite(buf, 1, size, a.f); /* a short write sets the error flag commit checks */
    if (tg_atomic_commit(&a))
        return tg_error(tape, "%s", a.msg);
    return TG_OK;
}

int tg_save(tg_tape *tape, const char *path, int n, tg_tensor *const *tensors)
{
    tg_tensor **list;
    size_t count;
    if (gather(tape, n, tensors, "save", path, &list, &count))
        return TG_ERR;
    size_t size = count > UINT32_MAX ? 0 : file_size(list, count);
    unsigned char *buf = NULL;
    int rc = TG_ERR;
    if (count > UINT32_MAX) {
        tg_error(tape, "save: %s: too many tensors (%zu)", path, count);
    } else if (!size) {
        tg_error(tape, "save: %s: the file would be too large", path);
    } else if (!(buf = tg_malloc(size))) {
        tg_error(tape, "save: %s: out of memory", path);
    } else {
        encode_file(buf, size, list, count);
        rc = replace_file(tape, path, buf, size);
    }
    tg_free(list);
    tg_free(buf);
    return rc;
}

/* ---- loading ------------------------------------------------------------- */

typedef struct record {
    const unsigned char *name;
    size_t name_len;
    int dtype, rank;
    uint64_t dims[TG_MAX_RANK];
    size_t size; /* elements */
    const unsigned char *data;
} record;

/* Read the whole regular file at path into *buf (tg_malloc'ed); the
 * messages start "<fn>: <path>: ". */
static int read_file(const char *fn, const char *path, unsigned char **buf, size_t *size,
                     tg_err *e)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return tg_msgf(e->msg, sizeof e->msg, fn, path, "cannot open: %s", strerror(errno));
    struct stat st;
    int rc = TG_ERR;
    unsigned char *b = NULL;
    if (fstat(fd, &st)) {
        tg_msgf(e->msg, sizeof e->msg, fn, path, "cannot stat: %s", strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        tg_msgf(e->msg, sizeof e->msg, fn, path, "not a regular file");
        goto done;
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > (uint64_t)PTRDIFF_MAX) {
        tg_msgf(e->msg, sizeof e->msg, fn, path, "the file is too large");
        goto done;
    }
    size_t n = (size_t)st.st_size, got = 0;
    b = tg_malloc(n + 1);
    if (!b) {
        tg_msgf(e->msg, sizeof e->msg, fn, path, "out of memory for %zu bytes", n);
        goto done;
    }
    for (;;) { /* read until EOF, refusing more bytes than fstat said */
        ssize_t r = read(fd, b + got, n + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            tg_msgf(e->msg, sizeof e->msg, fn, path, "read error: %s", strerror(errno));
            goto done;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        if (got > n) {
            tg_msgf(e->msg, sizeof e->msg, fn, path, "the file grew while it was read");
            goto done;
        }
    }
    *buf = b;
    *size = got;
    b = NULL;
    rc = TG_OK;
done:
    tg_free(b);
    close(fd);
    return rc;
}

/* What the header says, and the checksum's verdict. */
typedef struct header {
    uint32_t version, stored, computed;
    uint64_t size;
} header;

/* Check the header: magic, version, the size field against the real size,
 * and (unless any_crc) the checksum, filling *h as far as it got. */
static int check_header(const char *fn, const char *path, const unsigned char *b, size_t size,
                        bool any_crc, header *h, tg_err *e)
{
    char *m = e->msg;
    size_t ml = sizeof e->msg;
    if (size < 8 ? memcmp(b, MAGIC, size) != 0 : memcmp(b, MAGIC, 8) != 0)
        return tg_msgf(m, ml, fn, path, "not a tapegrad file (wrong magic; expected \"%s\")",
                       MAGIC);
    if (size < 12)
        return tg_msgf(m, ml, fn, path, "truncated: %zu bytes, the header alone has %u", size,
                       HEADER);
    uint32_t version = h->version = get_u32(b + 8);
    if (version == 0 || version > VERSION)
        return tg_msgf(m, ml, fn, path, "format version %u is %s (this tapegrad reads version "
                                        "%u)", version,
                       version ? "newer than this tapegrad" : "invalid", VERSION);
    if (size < HEADER + TRAILER)
        return tg_msgf(m, ml, fn, path, "truncated: %zu bytes, the header and checksum alone "
                                        "have %u", size, HEADER + TRAILER);
    uint64_t declared = h->size = get_u64(b + 16);
    if (declared > size)
        return tg_msgf(m, ml, fn, path, "truncated: the header says %llu bytes but the file has "
                                        "%zu", (unsigned long long)declared, size);
    if (declared < size)
        return tg_msgf(m, ml, fn, path, "size mismatch: the header says %llu bytes but the file "
                                        "has %zu (trailing data or a corrupt header)",
                       (unsigned long long)declared, size);
    h->stored = get_u32(b + size - TRAILER);
    h->computed = tg_crc32c(b, size - TRAILER);
    if (h->stored != h->computed && !any_crc)
        return tg_msgf(m, ml, fn, path, "checksum mismatch (stored 0x%08x, computed 0x%08x): "
                                        "the file is corrupt", h->stored, h->computed);
    return TG_OK;
}

/* Parse the record at b + *at into *x, every field checked against end
 * (the start of the checksum), and move *at past it.  TG_ERR, with the
 * reason in bad->msg, when the record is corrupt. */
static int parse_record(const unsigned char *b, size_t end, size_t *at_io, record *x,
                        tg_err *bad)
{
    size_t at = *at_io;
    memset(x, 0, sizeof *x);
    if (end - at < 4)
        return TG_ERR_MSG(bad, "the name length is cut off");
    uint32_t name_len = get_u32(b + at);
    at += 4;
    if (name_len == 0 || name_len > MAX_NAME)
        return TG_ERR_MSG(bad, "the name length %u is outside 1..%u", name_len, MAX_NAME);
    if (end - at < name_len)
        return TG_ERR_MSG(bad, "the name runs past the end");
    x->name = b + at;
    x->name_len = name_len;
    at += name_len;
    if (!valid_utf8(x->name, name_len))
        return TG_ERR_MSG(bad, "the name is not valid UTF-8");
    if (end - at < 2)
        return TG_ERR_MSG(bad, "the dtype and rank are cut off");
    x->dtype = b[at];
    x->rank = b[at + 1];
    at += 2;
    size_t es = tg_dtype_size((tg_dtype)x->dtype);
    if (!es)
        return TG_ERR_MSG(bad, "unknown dtype %d", x->dtype);
    if (x->rank > TG_MAX_RANK)
        return TG_ERR_MSG(bad, "rank %d is above %d", x->rank, TG_MAX_RANK);
    if (end - at < 8 * (size_t)x->rank)
        return TG_ERR_MSG(bad, "the dimensions run past the end");
    size_t elems = 1;
    for (int k = 0; k < x->rank; k++, at += 8) {
        x->dims[k] = get_u64(b + at);
        if (x->dims[k] == 0)
            return TG_ERR_MSG(bad, "dimension %d is 0", k);
        if (x->dims[k] > (end - at) || elems > (end - at) / x->dims[k])
            return TG_ERR_MSG(bad, "the dimensions exceed the file");
        elems *= (size_t)x->dims[k];
    }
    if (elems > (end - at) / es)
        return TG_ERR_MSG(bad, "the data runs past the end");
    x->size = elems;
    x->data = b + at;
    *at_io = at + elems * es;
    return TG_OK;
}

/* Check the header, size and checksum (any checksum when any_crc); then
 * parse the records into *recs (tg_malloc'ed) with every bound checked. */
static int parse(const char *fn, const char *path, const unsigned char *b, size_t size,
                 bool any_crc, header *h, record **recs, size_t *n_recs, tg_err *e)
{
    if (check_header(fn, path, b, size, any_crc, h, e))
        return TG_ERR;
    uint32_t count = get_u32(b + 12);
    size_t end = size - TRAILER, at = HEADER;
    if (count > (end - at) / MIN_RECORD)
        return tg_msgf(e->msg, sizeof e->msg, fn, path, "corrupt: %u tensors cannot fit in %zu "
                       "bytes", count, size);
    record *r = tg_malloc((count ? count : 1) * sizeof *r);
    if (!r)
        return tg_msgf(e->msg, sizeof e->msg, fn, path, "out of memory");
    for (uint32_t i = 0; i < count; i++) {
        tg_err bad;
        if (parse_record(b, end, &at, &r[i], &bad)) {
            tg_free(r);
            return tg_msgf(e->msg, sizeof e->msg, fn, path, "corrupt record of tensor %u: %s",
                           i, bad.msg);
        }
    }
    if (at != end) {
        tg_free(r);
        return tg_msgf(e->msg, sizeof e->msg, fn, path, "corrupt: %zu unexplained bytes after "
                       "the last tensor", end - at);
    }
    *recs = r;
    *n_recs = count;
    return TG_OK;
}

static bool same_name(const record *r, const char *name)
{
    return strlen(name) == r->name_len && !memcmp(name, r->name, r->name_len);
}

/* Find each tensor's record (match[i] for list[i]): exactly one of its
 * name, with the same dtype and shape. */
static int match_records(tg_tape *tape, const char *path, tg_tensor *const *list, size_t count,
                         const record *recs, size_t n_recs, size_t *match)
{
    for (size_t i = 0; i < count; i++) {
        const tg_tensor *t = list[i];
        size_t found = 0;
        for (size_t j = 0; j < n_recs; j++)
            if (same_name(&recs[j], t->name)) {
                if (found++)
                    break;
                match[i] = j;
            }
        if (found == 0)
            return tg_error(tape, "load: %s: tensor '%s' is not in the file", path, t->name);
        if (found > 1)
            return tg_error(tape, "load: %s: the file has more than one tensor named '%s'", path,
                            t->name);
        const record *r = &recs[match[i]];
        if (r->dtype != t->dtype)
            return tg_error(tape, "load: %s: tensor '%s': file has dtype %s, network has %s",
                            path, t->name, tg_dtype_name((tg_dtype)r->dtype),
                            tg_dtype_name((tg_dtype)t->dtype));
        bool same = r->rank == t->rank;
        for (int k = 0; same && k < t->rank; k++)
            same = r->dims[k] == t->shape[k];
        if (!same) {
            char fs[128];
            dims_str(r->rank, r->dims, fs, sizeof fs);
            return tg_error(tape, "load: %s: tensor '%s': file has shape %s, network has %s",
                            path, t->name, fs, tg_shp_of(t).s);
        }
    }
    return TG_OK;
}

/* Loading a whole model (n = 0): a tensor in the file that the tape does
 * not have means a different network.  Each tensor matched one record, so
 * the counts are equal exactly when every record was matched. */
static int check_all_matched(tg_tape *tape, const char *path, size_t count, const record *recs,
                             size_t n_recs, const size_t *match)
{
    if (n_recs == count)
        return TG_OK;
    for (size_t j = 0; j < n_recs; j++) {
        bool used = false;
        for (size_t i = 0; !used && i < count; i++)
            used = match[i] == j;
        if (!used) {
            char fs[128];
            dims_str(recs[j].rank, recs[j].dims, fs, sizeof fs);
            return tg_error(tape, "load: %s: the file has a tensor '%.*s' (%s %s) that the tape "
                                  "has no parameter for", path, (int)recs[j].name_len,
                            (const char *)recs[j].name, tg_dtype_name((tg_dtype)recs[j].dtype),
                            fs);
        }
    }
    return TG_OK;
}

int tg_load(tg_tape *tape, const char *path, int n, tg_tensor *const *tensors)
{
    tg_tensor **list = NULL;
    size_t count = 0, size = 0, n_recs = 0;
    unsigned char *buf = NULL;
    record *recs = NULL;
    size_t *match = NULL;
    int rc = TG_ERR;
    tg_err e;
    header h;
    if (gather(tape, n, tensors, "load", path, &list, &count))
        goto done;
    if (read_file("load", path, &buf, &size, &e) ||
        parse("load", path, buf, size, false, &h, &recs, &n_recs, &e)) {
        tg_error(tape, "%s", e.msg);
        goto done;
    }
    if (!(match = tg_malloc(count * sizeof *match))) {
        tg_error(tape, "load: %s: out of memory", path);
        goto done;
    }
    if (match_records(tape, path, list, count, recs, n_recs, match) ||
        (n == 0 && check_all_matched(tape, path, count, recs, n_recs, match)))
        goto done;
    /* everything verified: now write */
    for (size_t i = 0; i < count; i++) {
        decode(list[i]->data, recs[match[i]].data, (tg_dtype)list[i]->dtype, list[i]->size);
        tg_write_leaf(list[i], "load"); /* a leaf (gather refused op outputs): never fails */
    }
    rc = TG_OK;
done:
    tg_free(match);
    tg_free(recs);
    tg_free(buf);
    tg_free(list);
    return rc;
}

/* ---- listing a file without a tape ---------------------------------------- */

void tg_file_free(tg_file_info *info)
{
    if (!info)
        return;
    tg_free(info->tensors);
    tg_free(info->mem_);
    memset(info, 0, sizeof *info);
}

/* The records' names (NUL-terminated) and decoded data, in one block at
 * *mem (tg_malloc'ed), described by info->tensors. */
static int list_records(const record *recs, size_t n, tg_file_info *info, tg_err *e,
                        const char *path)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++) { /* data 8-aligned first, then the names */
        size_t d = recs[i].size * tg_dtype_size((tg_dtype)recs[i].dtype);
        bytes += (d + 7) & ~(size_t)7;
    }
    size_t names_at = bytes;
    for (size_t i = 0; i < n; i++)
        bytes += recs[i].name_len + 1;
    info->tensors = tg_malloc((n ? n : 1) * sizeof *info->tensors);
    unsigned char *mem = info->tensors ? tg_malloc(bytes ? bytes : 1) : NULL;
    if (!mem) {
        tg_free(info->tensors);
        info->tensors = NULL;
        return tg_msgf(e->msg, sizeof e->msg, "file_read", path, "out of memory");
    }
    info->mem_ = mem;
    size_t at = 0, nat = names_at;
    for (size_t i = 0; i < n; i++) {
        const record *r = &recs[i];
        tg_file_tensor *t = &info->tensors[i];
        memset(t, 0, sizeof *t);
        memcpy(mem + nat, r->name, r->name_len);
        mem[nat + r->name_len] = 0;
        t->name = (const char *)mem + nat;
        nat += r->name_len + 1;
        t->dtype = (tg_dtype)r->dtype;
        t->rank = r->rank;
        for (int k = 0; k < r->rank; k++)
            t->shape[k] = (size_t)r->dims[k];
        t->size = r->size;
        decode(mem + at, r->data, t->dtype, r->size);
        t->data = mem + at;
        at += (r->size * tg_dtype_size(t->dtype) + 7) & ~(size_t)7;
    }
    info->n = n;
    return TG_OK;
}

int tg_file_read(const char *path, bool any_checksum, tg_file_info *info, tg_err *err)
{
    tg_err local;
    tg_err *e = err ? err : &local;
    if (!info)
        return TG_ERR_MSG(e, "file_read: info is NULL");
    memset(info, 0, sizeof *info);
    if (!path || !*path)
        return TG_ERR_MSG(e, "file_read: path is NULL or empty");
    unsigned char *buf = NULL;
    size_t size = 0, n_recs = 0;
    record *recs = NULL;
    header h = {0};
    int rc = TG_ERR;
    if (!read_file("file_read", path, &buf, &size, e) &&
        !parse("file_read", path, buf, size, any_checksum, &h, &recs, &n_recs, e) &&
        !list_records(recs, n_recs, info, e, path)) {
        info->version = h.version;
        info->size = h.size;
        info->checksum_stored = h.stored;
        info->checksum_computed = h.computed;
        info->checksum_ok = h.stored == h.computed;
        rc = TG_OK;
    }
    tg_free(recs);
    tg_free(buf);
    return rc;
}
