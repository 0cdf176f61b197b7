/* Seed 002's derivation check as a program: batch_sigmoid_mlp [--draws N] [--tap].
 * The check itself is seeds/batch_sigmoid_mlp.c (also run by `tapegrad check`). */
#include "derivation.h"

int main(int argc, char **argv) { return dv_main(&seed_batch_sigmoid_mlp, argc, argv); }
