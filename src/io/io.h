/* The I/O layer (src/io/): saved models, DOT, IDX files, data sets, and the
 * atomic file writer they share.  Uses the core layer only.  Not installed. */
#ifndef TG_IO_H
#define TG_IO_H

#include "core.h"

#include <stdio.h>

/* ---- DOT export (src/io/dot.c) ------------------------------------------ */
/* What one tg_dot_write did: bytes written and elementary steps (loop
 * iterations), so that a test can check the work is linear without timing. */
typedef struct tg_dot_stats {
    uint64_t bytes, steps;
} tg_dot_stats;
/* tg_dot_write, filling *stats (which may be NULL). */
int tg_dot_write_stats(FILE *f, tg_tape *tape, tg_tensor *root, const tg_dot_opts *opts,
                       tg_dot_stats *stats);

/* ---- messages (src/io/file.c) ------------------------------------------- */
/* Write "<what>: <path>: " (a part left out when NULL; the whole prefix
 * when it does not fit) and then the printf message into buf[0, len);
 * nothing when buf is NULL.  Returns TG_ERR, so that a caller can return
 * it.  The messages of the I/O layer that go to a tg_err or a buffer
 * (tape errors go through tg_error). */
int tg_msgf(char *buf, size_t len, const char *what, const char *path, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
/* tg_msgf into a tg_err (which may be NULL), without a prefix. */
#define TG_ERR_MSG(err, ...) tg_msgf((err) ? (err)->msg : NULL, sizeof (err)->msg, NULL, NULL, \
                                     __VA_ARGS__)

/* ---- replacing a file atomically (src/io/file.c) ------------------------- */
/* Every file the library writes goes through this:
 *
 *     tg_atomic a;
 *     if (tg_atomic_open(&a, "save", path))   // a.msg says why
 *         ...;
 *     fwrite(..., a.f);                       // or anything writing to a.f
 *     if (failed) tg_atomic_abort(&a);        // the target is left as it was
 *     else if (tg_atomic_commit(&a)) ...;     // a.msg says why
 *
 * The target is path with its symbolic links followed (at most 40; a link
 * of another user in a sticky world-writable directory is not followed, as
 * fs.protected_symlinks has it): the file a link leads to is replaced and
 * the link stays a link; a dangling link's file is created.  open refuses a
 * target that exists and is not a regular file (a directory, FIFO, device,
 * socket: "is a FIFO, not a regular file; refusing to replace it") before
 * creating anything, then creates "<target>.tmp-XXXXXX" (mkstemp) next to
 * the target, with the permission bits of the file it replaces (a new
 * file: 0666 & ~umask).  commit checks that every write to a.f succeeded,
 * fsyncs the file, renames it over the target and fsyncs the directory.  On
 * failure (TG_ERR) both have removed the temporary file and released
 * everything, and a.msg holds "<fn>: <path>: " and the step that failed
 * with strerror ("rename of the temporary file failed (Operation not
 * permitted); the old file is unchanged"); abort does the same without a
 * message.  Exactly one of commit and abort follows a successful open. */
typedef struct tg_atomic {
    const char *fn, *path; /* for messages: the caller's name and path     */
    char *tmp;             /* the temporary file's name (tg_malloc'ed)     */
    char *target;          /* the file replaced (in tmp's allocation)      */
    FILE *f;               /* open for writing on tmp                      */
    char msg[512];         /* why the last call failed                     */
} tg_atomic;
int tg_atomic_open(tg_atomic *a, const char *fn, const char *path);
int tg_atomic_commit(tg_atomic *a);
void tg_atomic_abort(tg_atomic *a);

/* ---- saved models (src/io/save.c) --------------------------------------- */
/* CRC-32C of n bytes, as docs/format.md defines it. */
uint32_t tg_crc32c(const unsigned char *p, size_t n);

#endif
