/* Seed 003's derivation check as a program: bias_unit_bce [--draws N] [--tap].
 * The check itself is seeds/bias_unit_bce.c (also run by `tapegrad check`). */
#include "derivation.h"

int main(int argc, char **argv) { return dv_main(&seed_bias_unit_bce, argc, argv); }
