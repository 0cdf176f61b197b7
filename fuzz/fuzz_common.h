/* Shared by the libFuzzer targets: files for readers that take a path, a
 * byte reader over the input, and the check that aborts (libFuzzer then
 * saves the input as a crash).  (fuzz_load repairs checksums with the
 * library's own tg_crc32c, from src/io/io.h.)  The targets also build with
 * gcc, without libFuzzer, for the replay test (fuzz/replay.c). */
#ifndef TG_FUZZ_COMMON_H
#define TG_FUZZ_COMMON_H

/* syscall(SYS_memfd_create): included first by every target */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A broken invariant: say which and abort, so that libFuzzer keeps the input. */
#define FZ_CHECK(cond, ...)                                                    \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
            abort();                                                           \
        }                                                                      \
    } while (0)

/* FUZZ_TRACE=1 in the environment: the targets say what they do (stderr). */
static inline int fz_tracing(void)
{
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("FUZZ_TRACE");
        on = e && *e && *e != '0';
    }
    return on;
}
#define FZ_TRACE(...)                                                          \
    do {                                                                       \
        if (fz_tracing())                                                      \
            fprintf(stderr, __VA_ARGS__);                                      \
    } while (0)

/* ---- a file the readers can open by path ---------------------------------
 * An anonymous memory file (memfd) reached through /proc/self/fd/N: no disk,
 * no clean-up, and each libFuzzer process has its own.  Where memfd is not
 * available, an unlinked-at-exit temporary file is used instead. */
typedef struct fz_file {
    int fd;
    char path[64];
} fz_file;

static char fz_tmp_paths[4][64];
static int fz_n_tmp;

static inline void fz_remove_tmp(void)
{
    for (int i = 0; i < fz_n_tmp; i++)
        unlink(fz_tmp_paths[i]);
}

static inline void fz_file_open(fz_file *f, const char *name)
{
    f->fd = -1;
#ifdef SYS_memfd_create
    f->fd = (int)syscall(SYS_memfd_create, name, 0u);
    if (f->fd >= 0) {
        snprintf(f->path, sizeof f->path, "/proc/self/fd/%d", f->fd);
        if (access(f->path, R_OK) == 0)
            return;
        close(f->fd);
        f->fd = -1;
    }
#endif
    const char *dir = getenv("TMPDIR");
    snprintf(f->path, sizeof f->path, "%s/tg-fuzz-XXXXXX", dir && *dir ? dir : "/tmp");
    f->fd = mkstemp(f->path);
    FZ_CHECK(f->fd >= 0 && fz_n_tmp < 4, "cannot create a temporary file: %s", strerror(errno));
    if (fz_n_tmp == 0)
        atexit(fz_remove_tmp);
    memcpy(fz_tmp_paths[fz_n_tmp++], f->path, sizeof f->path);
}

/* Make the file hold exactly data[0..len). */
static inline void fz_file_set(fz_file *f, const void *data, size_t len)
{
    FZ_CHECK(ftruncate(f->fd, 0) == 0, "ftruncate: %s", strerror(errno));
    const unsigned char *p = data;
    size_t at = 0;
    while (at < len) {
        ssize_t w = pwrite(f->fd, p + at, len - at, (off_t)at);
        FZ_CHECK(w > 0 || (w < 0 && errno == EINTR), "pwrite: %s", strerror(errno));
        if (w > 0)
            at += (size_t)w;
    }
}

/* ---- reading the input as a stream of choices ----------------------------
 * Past the end every read gives 0, so any input is a complete program. */
typedef struct fz_in {
    const uint8_t *p;
    size_t n, at;
} fz_in;

static inline uint8_t fz_u8(fz_in *in) { return in->at < in->n ? in->p[in->at++] : 0; }
/* (each byte read in its own statement: the order of two calls in one
 * expression is unspecified) */
static inline uint16_t fz_u16(fz_in *in)
{
    uint16_t lo = fz_u8(in);
    return (uint16_t)(lo | fz_u8(in) << 8);
}
static inline uint32_t fz_u32(fz_in *in)
{
    uint32_t lo = fz_u16(in);
    return lo | (uint32_t)fz_u16(in) << 16;
}
static inline uint64_t fz_u64(fz_in *in)
{
    uint64_t lo = fz_u32(in);
    return lo | (uint64_t)fz_u32(in) << 32;
}
static inline int fz_more(const fz_in *in) { return in->at < in->n; }

/* fuzz_graph.c: how many times the op of id `id` (enum tg_op_id, ops/ops.h)
 * returned a tensor since the process started; fuzz/replay.c checks that
 * its corpus reaches every op of ops/ops.def. */
size_t fz_graph_reached(int id);

#endif
