/* main() shared by the seed-derivation programs: meson builds each one with
 * -DSEED=<its seed_example>.  Usage: PROGRAM [--draws N] [--tap]
 *   --tap   print TAP (used by meson test): one test per formula, asserting
 *           that right formulas agree and wrong ones are reported MISMATCH. */
#include "derivation.h"

#include <stdlib.h>
#include <string.h>

#ifndef SEED
#error "build with -DSEED=seed_<name>"
#endif

int main(int argc, char **argv)
{
    int draws = 5;
    bool tap = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tap")) {
            tap = true;
        } else if (!strcmp(argv[i], "--draws") && i + 1 < argc) {
            draws = atoi(argv[++i]);
            if (draws < 1 || draws > 1000) {
                fprintf(stderr, "%s: --draws must be 1..1000\n", SEED.name);
                return 2;
            }
        } else {
            fprintf(stderr, "usage: %s [--draws N] [--tap]\n", SEED.name);
            return 2;
        }
    }
    dv_table t;
    dv_init(&t, SEED.id, SEED.title);
    int rc = SEED.run(&t, draws);
    if (!tap) {
        dv_print(&t, stdout);
        return rc || dv_unexpected(&t) ? 1 : 0;
    }
    dv_print(&t, stderr); /* the table for people; stdout carries the TAP */
    int n = 0;
    printf("%s %d - seed %s runs without library errors\n", rc || t.errors ? "not ok" : "ok",
           ++n, t.id);
    for (int i = 0; i < t.n_rows; i++) {
        const dv_row *r = &t.rows[i];
        bool agree = r->draws > 0 && r->max_rel <= DV_TOL;
        printf("%s %d - %s %s (%s): %s, max rel %.2e over %d comparisons\n",
               agree == r->expect_right ? "ok" : "not ok", ++n, r->where,
               r->expect_right ? "holds" : "is reported wrong", r->formula,
               agree ? "AGREES" : "MISMATCH", r->max_rel, r->draws);
    }
    printf("1..%d\n", n);
    return rc || dv_unexpected(&t) ? 1 : 0;
}
