/* Seed 001's derivation check as a program: delta_rule_mlp [--draws N] [--tap].
 * The check itself is seeds/delta_rule_mlp.c (also run by `tapegrad check`). */
#include "derivation.h"

int main(int argc, char **argv) { return dv_main(&seed_delta_rule_mlp, argc, argv); }
