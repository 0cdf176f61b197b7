/* A minimal TAP producer for the test programs (meson test, protocol tap). */
#ifndef TG_TAP_H
#define TG_TAP_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

#endif
