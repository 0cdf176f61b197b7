/* Seed 004's derivation check as a program: relu_softmax_l2 [--draws N] [--tap].
 * The check itself is seeds/relu_softmax_l2.c (also run by `tapegrad check`). */
#include "derivation.h"

int main(int argc, char **argv) { return dv_main(&seed_relu_softmax_l2, argc, argv); }
