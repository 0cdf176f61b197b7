/* The table the seed-derivation examples print: every hand-derived formula
 * compared with the tape's gradient through tg_check_grad, over several
 * random draws, with a verdict and, for a formula that is wrong as written,
 * what is wrong and the corrected formula next to it.
 *
 * A verdict is AGREES when the worst relative error over all draws is at
 * most DV_TOL, MISMATCH otherwise.  Each row also records what the
 * example's author expects (right or wrong as written); dv_unexpected()
 * counts rows whose verdict differs, which the tests assert to be 0. */
#ifndef DERIVATION_H
#define DERIVATION_H

#include "tapegrad.h"

#include <stdbool.h>
#include <stdio.h>

#define DV_TOL 1e-8
#define DV_MAX_ROWS 64

typedef struct dv_row {
    const char *where;     /* equation number or section in the document   */
    const char *formula;   /* the formula as the document writes it         */
    const char *wrong;     /* for a formula expected wrong: what is wrong   */
    const char *fix_of;    /* for a corrected formula: the formula it fixes */
    bool expect_right;
    int draws;             /* comparisons folded in (draws × places checked) */
    double max_abs, max_rel;
} dv_row;

typedef struct dv_table {
    const char *id;        /* "000" ... the seed document                   */
    const char *title;
    int n_rows;
    dv_row rows[DV_MAX_ROWS];
    int errors;            /* library errors met (should stay 0)            */
} dv_table;

/* One seed example: run fills the table with `draws` random draws per
 * formula and returns 0, or -1 when the library reported an error (printed
 * to stderr).  network builds the document's network at one small size
 * (seeds/nets.h): what `tapegrad dot` draws. */
typedef struct seed_example {
    const char *id;        /* "000"                                         */
    const char *name;      /* program name, e.g. "fisher_mlp"               */
    const char *title;     /* one line: what the document derives           */
    int (*run)(dv_table *t, int draws);
    tg_tensor *(*network)(tg_tape *tape, tg_rng *rng);
} seed_example;

void dv_init(dv_table *t, const char *id, const char *title);

/*
 * Compare hand[0 .. tg_size(x)) (doubles, x's row-major layout) with the
 * tape's gradient of x from the last backward, and fold the result into the
 * row `formula` (created at first use).  expect_right says whether the
 * formula, as written in the document, is expected to hold.
 */
void dv_check(dv_table *t, const char *where, const char *formula, tg_tensor *x,
              const double *hand, bool expect_right);

/* Explain a formula expected wrong: `wrong` says in one line what is wrong. */
void dv_explain(dv_table *t, const char *formula, const char *wrong);

/* Same as dv_check, for a corrected formula: `fixes` is the formula (as
 * passed to dv_check) that it corrects.  Corrected formulas are expected
 * right. */
void dv_check_fix(dv_table *t, const char *where, const char *formula, const char *fixes,
                  tg_tensor *x, const double *hand);

/* Print the table (formula, where, max abs, max rel, verdict, notes). */
void dv_print(const dv_table *t, FILE *f);

/* Rows whose verdict differs from what the author expects. */
int dv_unexpected(const dv_table *t);
/* Rows that agree / mismatch. */
int dv_count(const dv_table *t, bool agree);

/* T [c×r] = Aᵀ for A [r×c], both row-major (for the hand-side formulas). */
void dv_transpose(const double *a, double *t, int r, int c);

/* Run draw(t, d) for d = 0 .. draws-1, stopping at the first that fails;
 * returns 0 or -1 (the loop of every seed's run). */
int dv_draws(dv_table *t, int draws, int (*draw)(dv_table *t, int d));

/* Report a library error met while running an example; returns -1. */
int dv_fail(dv_table *t, tg_tape *tape, const char *what);

/* main() of a seed's example program (examples/fisher_mlp.c ...):
 * PROGRAM [--draws N] [--tap].  Prints the table, or with --tap TAP (used by
 * meson test): one test per formula, asserting that right formulas agree
 * and wrong ones are reported MISMATCH.  Returns the exit status. */
int dv_main(const seed_example *seed, int argc, char **argv);

/* The five seeds, for the summary (tapegrad check). */
extern const seed_example seed_fisher_mlp, seed_delta_rule_mlp, seed_batch_sigmoid_mlp,
    seed_bias_unit_bce, seed_relu_softmax_l2;

#endif
