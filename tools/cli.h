/* The tapegrad command's subcommands and built-in networks.
 *
 * A subcommand is called like main() with argv starting at its own name:
 * `tapegrad train --epochs 3` calls cli_train(3, {"train", "--epochs", "3"}).
 * It returns the exit status: 0 success, 1 failure, 2 usage error (after
 * printing the usage to stderr).  `--help` prints the usage to stdout and
 * returns 0.  The tour (`tapegrad` alone) calls cli_train with
 * {"train", "--epochs", "2"}. */
#ifndef TAPEGRAD_CLI_H
#define TAPEGRAD_CLI_H

#include "tapegrad.h"

#include <stdio.h>

int cli_check(int argc, char **argv); /* tools/tapegrad.c */
/* check FILE...: derivation files (tools/check_file.c); exit status 1 when
 * a verdict is not the expected one or a file cannot be checked. */
int cli_check_files(int n, char **files, long draws, unsigned long long seed, bool verbose,
                    bool dot);
int cli_dot(int argc, char **argv);   /* tools/tapegrad.c */
int cli_train(int argc, char **argv); /* tools/train.c    */
/* The last line of a training run (tools/train.c): "peak resident memory
 * X MiB", the process's peak resident set (getrusage's ru_maxrss). */
void cli_print_peak_memory(void);
/* Option values (tools/train.c): a whole number in [lo, hi] written with
 * digits only (no sign, space, exponent, fraction or hex prefix); a number
 * (strtod) in [lo, hi].  False when s is not one. */
bool cli_whole(const char *s, uint64_t lo, uint64_t hi, uint64_t *v);
bool cli_number(const char *s, double lo, double hi, double *v);
/* train --model gpt|gru and generate (tools/train_lm.c); cli_train calls
 * cli_train_lm when --model is gpt or gru. */
int cli_train_lm(int argc, char **argv);
int cli_generate(int argc, char **argv);

/* ---- built-in networks (tools/nets.c) ---------------------------------- */

/* A network on its own tape: `loss` is the scalar to differentiate. */
typedef struct cli_net {
    tg_tape *tape;
    tg_tensor *loss;
    char name[64];   /* canonical name, e.g. "seed002" or "mlp:784,512,10" */
    char title[256]; /* one line: what the network is                      */
} cli_net;

/* Build network `name`: seed000 .. seed004, an alias (fisher, delta, batch,
 * biasunit, relusoftmax), cnn or mlp:N0,N1,...,Nk.  Returns 0; -2 when the name
 * is not a network (a usage error), -1 when building failed; the message is
 * in err (which may be NULL). */
int cli_net_build(const char *name, cli_net *net, tg_err *err);
/* Print the list of built-in networks, one per line, indented. */
void cli_net_list(FILE *f);

#endif
