/* `tapegrad check FILE...`: verify derivation files (docs/derivations.md)
 * with the library's tg_deriv_*; one verdict line per check, a summary per
 * file and in all. */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Print s padded (or cut with "...") to `width` characters (UTF-8 aware). */
static void put_cell(const char *s, int width)
{
    int chars = 0;
    const char *p = s;
    for (; *p; p++)
        chars += ((unsigned char)*p & 0xC0) != 0x80;
    if (chars <= width) {
        printf("%s%*s", s, width - chars, "");
        return;
    }
    int c = 0;
    for (p = s; *p; p++) {
        if (((unsigned char)*p & 0xC0) != 0x80 && ++c > width - 3)
            break;
        putchar(*p);
    }
    printf("...");
}

static void put_index(const tg_deriv_check *r, size_t flat)
{
    size_t idx[4];
    for (int a = r->rank - 1; a >= 0; a--)
        idx[a] = flat % r->shape[a], flat /= r->shape[a];
    printf("%s[", r->wrt);
    for (int a = 0; a < r->rank; a++)
        printf(a ? ",%zu" : "%zu", idx[a]);
    printf("]");
}

static void verbose_elements(const tg_deriv *d, int i, const tg_deriv_check *r)
{
    const double *tape, *ref;
    size_t n;
    if (tg_deriv_worst(d, i, &tape, &ref, &n))
        return;
    printf("      draw %d, every element (tape = the tape's gradient, formula = the right side):\n",
           r->worst_draw);
    size_t shown = 0;
    for (size_t k = 0; k < n && shown < 200; k++, shown++) {
        printf("        ");
        put_index(r, k);
        double diff = tape[k] - ref[k];
        printf("  tape % .10e  formula % .10e  diff % .3e%s\n", tape[k], ref[k], diff,
               fabs(diff) > 1e-8 * fmax(1, fabs(tape[k])) ? "  <--" : "");
    }
    if (n > shown)
        printf("        ... %zu more\n", n - shown);
}

static int check_one(const char *path, const tg_deriv_opts *o, bool verbose, bool dot,
                     int *tot)
{
    tg_err err = {{0}};
    fflush(stdout); /* the messages on stderr come after what is printed */
    tg_deriv *d = tg_deriv_load(path, &err);
    if (!d) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    if (tg_deriv_run(d, o, &err)) {
        fflush(stdout);
        fprintf(stderr, "%s\n", err.msg);
        tg_deriv_free(d);
        return 1;
    }
    printf("%s\n", path);
    int n = tg_deriv_checks(d), agree = 0, unexpected = 0;
    for (int i = 0; i < n; i++) {
        const tg_deriv_check *r = tg_deriv_result(d, i);
        bool bad = r->agrees == r->expect_mismatch;
        agree += r->agrees;
        unexpected += bad;
        printf("  line %-4d ", r->line);
        put_cell(r->text, 46);
        printf("  %-8s  max rel %.1e", r->agrees ? "AGREES" : "MISMATCH", r->worst.max_rel);
        if (!r->agrees) {
            printf(" at ");
            put_index(r, r->worst.rel_i);
            printf(": tape %.6g, formula %.6g", r->worst.rel_tape, r->worst.rel_ref);
        }
        if (r->expect_mismatch)
            printf(r->agrees ? "  (UNEXPECTED: marked expect mismatch)" : "  (expected)");
        else if (bad)
            printf("  (UNEXPECTED)");
        printf("\n");
        if (verbose && !r->agrees)
            verbose_elements(d, i, r);
    }
    printf("  %d check%s: %d agree, %d mismatch%s", n, n == 1 ? "" : "s", agree, n - agree,
           unexpected ? "" : "\n");
    if (unexpected)
        printf(", %d unexpected\n", unexpected);
    tot[0] += n, tot[1] += agree, tot[2] += unexpected;
    int rc = unexpected ? 1 : 0;
    if (dot) {
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        char out[512];
        snprintf(out, sizeof out, "%.*s.dot", (int)(strcspn(base, ".") ? strcspn(base, ".") : strlen(base)), base);
        if (tg_deriv_dot(d, out, o, &err)) {
            fprintf(stderr, "%s: --dot: %s\n", path, err.msg);
            rc = 1;
        } else if (tg_dot_available()) {
            char svg[520];
            snprintf(svg, sizeof svg, "%.*s.svg", (int)(strlen(out) - 4), out);
            if (tg_dot_render(out, "svg", svg, &err)) {
                fprintf(stderr, "%s: --dot: %s\n", path, err.msg);
                rc = 1;
            } else {
                printf("  graph: %s, %s\n", out, svg);
            }
        } else {
            printf("  graph: %s (install Graphviz for the SVG)\n", out);
        }
    }
    tg_deriv_free(d);
    return rc;
}

int cli_check_files(int n, char **files, long draws, unsigned long long seed, bool verbose,
                    bool dot)
{
    tg_deriv_opts o = {.draws = (int)draws, .seed = seed};
    int tot[3] = {0}, rc = 0;
    printf("Derivation checks: each formula vs the tape's gradient (%ld draws, agree when max "
           "rel err <= 1e-8)\n\n", draws);
    for (int i = 0; i < n; i++) {
        rc |= check_one(files[i], &o, verbose, dot, tot);
        if (i + 1 < n)
            printf("\n");
    }
    if (n > 1)
        printf("\nall files: %d checks, %d agree, %d mismatch, %d unexpected\n", tot[0], tot[1],
               tot[0] - tot[1], tot[2]);
    fflush(stdout);
    return rc;
}
