/* A minimal TAP producer for the test programs (meson test, protocol tap). */
#ifndef TG_TAP_H
#define TG_TAP_H

#include <math.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tapegrad.h"

/* A shape as a compound literal: SHAPE(2, 3) */
#define SHAPE(...) (size_t[]){__VA_ARGS__}

/* The call failed (call_failed is true) and tape's error contains msg; then
 * the error is cleared.  A program may define TAP_FAILS_HOOK(err) before
 * including tap.h to see each error that passed (tests/oplist.h). */
#ifndef TAP_FAILS_HOOK
#define TAP_FAILS_HOOK(err) ((void)0)
#endif
#define TAPE_FAILS(tape, call_failed, msg)                                     \
    do {                                                                       \
        bool f_ = (call_failed);                                               \
        const char *e_ = tg_tape_error(tape);                                  \
        if (ok(f_ && e_ && strstr(e_, msg), "%s -> \"%s\"", #call_failed, e_ ? e_ : "(no error)")) \
            TAP_FAILS_HOOK(e_);                                                \
        if (e_ && !strstr(e_, msg))                                            \
            diag("wanted it to contain \"%s\"", msg);                          \
        tg_tape_clear_error(tape);                                             \
    } while (0)

static int tap_count, tap_failed;

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int tap_ok(int cond, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    printf("%s %d - ", cond ? "ok" : "not ok", ++tap_count);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!cond) {
        tap_failed++;
        printf("#   failed at %s:%d\n", file, line);
    }
    fflush(stdout);
    return cond;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

/* |got - want| <= tol · max(1, |want|) */
#define near(got, want, tol, ...)                                              \
    do {                                                                       \
        double g_ = (got), w_ = (want);                                        \
        if (!tap_ok(fabs(g_ - w_) <= (tol) * fmax(1.0, fabs(w_)), __FILE__,    \
                    __LINE__, __VA_ARGS__))                                    \
            printf("#   got %.17g, want %.17g\n", g_, w_);                     \
    } while (0)

/* strings equal */
#define is_str(got, want, ...)                                                 \
    do {                                                                       \
        const char *g_ = (got), *w_ = (want);                                  \
        if (!tap_ok(g_ && w_ && !strcmp(g_, w_), __FILE__, __LINE__,           \
                    __VA_ARGS__))                                              \
            printf("#   got  \"%s\"\n#   want \"%s\"\n", g_ ? g_ : "(null)",    \
                   w_ ? w_ : "(null)");                                        \
    } while (0)

/* got contains want */
#define has_str(got, want, ...)                                                \
    do {                                                                       \
        const char *g_ = (got), *w_ = (want);                                  \
        if (!tap_ok(g_ && w_ && strstr(g_, w_), __FILE__, __LINE__,            \
                    __VA_ARGS__))                                              \
            printf("#   got  \"%s\"\n#   want it to contain \"%s\"\n",         \
                   g_ ? g_ : "(null)", w_ ? w_ : "(null)");                    \
    } while (0)

#if defined(__GNUC__)
__attribute__((unused, format(printf, 1, 2)))
#endif
static void diag(const char *fmt, ...)
{
    va_list ap;
    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

static int tap_done(void)
{
    printf("1..%d\n", tap_count);
    return tap_failed ? 1 : 0;
}

/* Test files.  tap_write_file: the n bytes of data to path (true on
 * success).  tap_read_file: the whole file, NUL-terminated, its length in
 * *len; NULL when it cannot be read (free the result). */
static inline bool tap_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    bool good = f && fwrite(data, 1, n, f) == n;
    return f && fclose(f) == 0 && good;
}

/* Up to cap bytes of the file at path into buf; the count read (0 when it
 * cannot be opened). */
static inline size_t tap_slurp(const char *path, void *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, cap, f) : 0;
    if (f)
        fclose(f);
    return n;
}

/* The DOT text of root's graph (default options) in buf, NUL-terminated
 * (empty when writing failed). */
static inline void tap_dot_text(tg_tape *t, tg_tensor *root, char *buf, size_t cap)
{
    FILE *f = tmpfile();
    buf[0] = 0;
    if (f && root && tg_dot_write(f, t, root, NULL) == 0) {
        rewind(f);
        size_t n = fread(buf, 1, cap - 1, f);
        buf[n] = 0;
    }
    if (f)
        fclose(f);
}

/* Whether p is a symbolic link whose text is `text`. */
static inline bool tap_is_link_to(const char *p, const char *text)
{
    char buf[600];
    ssize_t n = readlink(p, buf, sizeof buf - 1);
    if (n < 0)
        return false;
    buf[n] = 0;
    return !strcmp(buf, text);
}

/* What p names, as ls -l shows it: '-' (regular file), 'l', 'p' (FIFO),
 * 'c', 'd', '?' (anything else, or nothing). */
static inline char tap_type_of(const char *p)
{
    struct stat st;
    if (lstat(p, &st))
        return '?';
    return S_ISREG(st.st_mode) ? '-' : S_ISLNK(st.st_mode) ? 'l' : S_ISFIFO(st.st_mode) ? 'p'
         : S_ISCHR(st.st_mode) ? 'c' : S_ISDIR(st.st_mode) ? 'd' : '?';
}

static inline char *tap_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 4096, n = 0, r;
    char *b = f ? malloc(cap + 1) : NULL;
    while (b && (r = fread(b + n, 1, cap - n, f)) > 0)
        if ((n += r) == cap) {
            char *bigger = realloc(b, 2 * cap + 1);
            if (!bigger)
                free(b);
            b = bigger, cap *= 2;
        }
    if (f)
        fclose(f);
    if (b)
        b[n] = 0;
    *len = b ? n : 0;
    return b;
}

#endif
