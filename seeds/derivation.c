#include "derivation.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void dv_init(dv_table *t, const char *id, const char *title)
{
    memset(t, 0, sizeof *t);
    t->id = id;
    t->title = title;
}

static dv_row *row(dv_table *t, const char *where, const char *formula)
{
    for (int i = 0; i < t->n_rows; i++)
        if (!strcmp(t->rows[i].formula, formula))
            return &t->rows[i];
    if (t->n_rows == DV_MAX_ROWS) {
        fprintf(stderr, "derivation: more than %d formulas\n", DV_MAX_ROWS);
        exit(2);
    }
    dv_row *r = &t->rows[t->n_rows++];
    memset(r, 0, sizeof *r);
    r->where = where;
    r->formula = formula;
    return r;
}

static void fold(dv_table *t, dv_row *r, tg_tensor *x, const double *hand)
{
    tg_check c;
    if (tg_check_grad(x, hand, TG_F64, &c)) {
        dv_fail(t, tg_tape_of(x), r->formula);
        r->max_rel = INFINITY;
        return;
    }
    r->draws++;
    r->max_abs = fmax(r->max_abs, c.max_abs);
    r->max_rel = fmax(r->max_rel, c.max_rel);
}

void dv_check(dv_table *t, const char *where, const char *formula, tg_tensor *x,
              const double *hand, bool expect_right)
{
    dv_row *r = row(t, where, formula);
    r->expect_right = expect_right;
    fold(t, r, x, hand);
}

void dv_explain(dv_table *t, const char *formula, const char *wrong)
{
    for (int i = 0; i < t->n_rows; i++)
        if (!strcmp(t->rows[i].formula, formula))
            t->rows[i].wrong = wrong;
}

void dv_check_fix(dv_table *t, const char *where, const char *formula, const char *fixes,
                  tg_tensor *x, const double *hand)
{
    dv_row *r = row(t, where, formula);
    r->expect_right = true;
    r->fix_of = fixes;
    fold(t, r, x, hand);
}

static bool agrees(const dv_row *r) { return r->draws > 0 && r->max_rel <= DV_TOL; }

int dv_unexpected(const dv_table *t)
{
    int n = t->errors;
    for (int i = 0; i < t->n_rows; i++)
        n += agrees(&t->rows[i]) != t->rows[i].expect_right;
    return n;
}

int dv_count(const dv_table *t, bool agree)
{
    int n = 0;
    for (int i = 0; i < t->n_rows; i++)
        n += agrees(&t->rows[i]) == agree;
    return n;
}

int dv_fail(dv_table *t, tg_tape *tape, const char *what)
{
    const char *e = tape ? tg_tape_error(tape) : NULL;
    fprintf(stderr, "seed %s: %s: %s\n", t->id, what, e ? e : "library error");
    t->errors++;
    return -1;
}

void dv_transpose(const double *a, double *t, int r, int c)
{
    for (int i = 0; i < r; i++)
        for (int j = 0; j < c; j++)
            t[j * r + i] = a[i * c + j];
}

/* Width of a UTF-8 string in terminal columns: combining marks count 0,
 * CJK ideographs and full-width forms 2, everything else 1. */
static int width(const char *s)
{
    int w = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned cp = *p;
        int len = cp < 0x80 ? 1 : cp < 0xE0 ? 2 : cp < 0xF0 ? 3 : 4;
        for (int i = 1; i < len; i++)
            cp = (cp << 6) | (p[i] & 0x3F);
        if (len == 2)
            cp &= 0x7FF;
        else if (len == 3)
            cp &= 0xFFFF;
        else if (len == 4)
            cp &= 0x1FFFFF;
        for (int i = 0; i < len && *p; i++)
            p++;
        if (cp >= 0x300 && cp <= 0x36F)
            continue;
        bool wide = (cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF) ||
                    (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
                    (cp >= 0xFF00 && cp <= 0xFF60);
        w += wide ? 2 : 1;
    }
    return w;
}

static void pad(FILE *f, const char *s, int cols)
{
    fputs(s, f);
    for (int w = width(s); w < cols; w++)
        fputc(' ', f);
}

void dv_print(const dv_table *t, FILE *f)
{
    int fw = 7, ww = 5;
    for (int i = 0; i < t->n_rows; i++) {
        int w = width(t->rows[i].formula) + (t->rows[i].fix_of ? 2 : 0);
        fw = w > fw ? w : fw;
        ww = width(t->rows[i].where) > ww ? width(t->rows[i].where) : ww;
    }
    if (fw > 72)
        fw = 72;
    fprintf(f, "\nSeed %s: %s\n", t->id, t->title);
    pad(f, "formula", fw);
    fputs("  ", f);
    pad(f, "where", ww);
    fprintf(f, " %10s %10s  verdict\n", "max abs", "max rel");
    for (int i = 0; i < t->n_rows; i++) {
        const dv_row *r = &t->rows[i];
        char name[512];
        snprintf(name, sizeof name, "%s%s", r->fix_of ? "→ " : "", r->formula);
        pad(f, name, fw);
        fprintf(f, "  ");
        pad(f, r->where, ww);
        fprintf(f, " %10.2e %10.2e  %s%s\n", r->max_abs, r->max_rel,
                agrees(r) ? "AGREES" : "MISMATCH",
                agrees(r) == r->expect_right ? "" : "  (UNEXPECTED)");
        if (r->wrong && !agrees(r))
            fprintf(f, "    ✗ %s\n", r->wrong);
    }
    fprintf(f, "%d formulas, %d agree, %d mismatch (tolerance: max rel err <= %.0e)\n",
            t->n_rows, dv_count(t, true), dv_count(t, false), DV_TOL);
}

/* --tap: the table for people on stderr, TAP on stdout. */
static void print_tap(const dv_table *t, int rc)
{
    dv_print(t, stderr);
    int n = 0;
    printf("%s %d - seed %s runs without library errors\n", rc || t->errors ? "not ok" : "ok",
           ++n, t->id);
    for (int i = 0; i < t->n_rows; i++) {
        const dv_row *r = &t->rows[i];
        bool agree = agrees(r);
        printf("%s %d - %s %s (%s): %s, max rel %.2e over %d comparisons\n",
               agree == r->expect_right ? "ok" : "not ok", ++n, r->where,
               !r->expect_right ? "is reported wrong"
               : r->fix_of      ? "holds, corrected"
                                : "holds",
               r->formula,
               agree ? "AGREES" : "MISMATCH", r->max_rel, r->draws);
    }
    printf("1..%d\n", n);
}

int dv_main(const seed_example *seed, int argc, char **argv)
{
    int draws = 5;
    bool tap = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tap")) {
            tap = true;
        } else if (!strcmp(argv[i], "--draws") && i + 1 < argc) {
            draws = atoi(argv[++i]);
            if (draws < 1 || draws > 1000) {
                fprintf(stderr, "%s: --draws must be 1..1000\n", seed->name);
                return 2;
            }
        } else {
            fprintf(stderr, "usage: %s [--draws N] [--tap]\n", seed->name);
            return 2;
        }
    }
    dv_table t;
    dv_init(&t, seed->id, seed->title);
    int rc = seed->run(&t, draws);
    if (tap)
        print_tap(&t, rc);
    else
        dv_print(&t, stdout);
    return rc || dv_unexpected(&t) ? 1 : 0;
}

int dv_draws(dv_table *t, int draws, int (*draw)(dv_table *t, int d))
{
    for (int d = 0; d < draws; d++)
        if (draw(t, d))
            return -1;
    return 0;
}
