/* Seed 000's derivation check as a program: fisher_mlp [--draws N] [--tap].
 * The check itself is seeds/fisher_mlp.c (also run by `tapegrad check`). */
#include "derivation.h"

int main(int argc, char **argv) { return dv_main(&seed_fisher_mlp, argc, argv); }
