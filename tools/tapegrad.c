/* tapegrad: the command-line face of the library.
 *
 *   tapegrad check   the five seed-derivation examples, one summary table
 *   tapegrad dot     the forward and gradient graph of a built-in network
 *   tapegrad train   training (tools/train.c; --model gpt|gru: tools/train_lm.c)
 *   tapegrad generate  words sampled from a saved language model (train_lm.c)
 *   tapegrad eval    a saved mlp/cnn on its test set (tools/eval.c)
 *   tapegrad info    what a saved model file holds (tools/eval.c)
 *   tapegrad         a short tour of the three
 *
 * Exit status: 0 success, 1 failure (a check with an unexpected verdict, a
 * file that cannot be written), 2 usage error (the usage goes to stderr). */
#include "cli.h"

#include "derivation.h"
#include "eval.h" /* eval and info */

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define PROG "tapegrad"

static const char USAGE[] =
    "usage: tapegrad [--help] [--version] [COMMAND [ARGS...]]\n"
    "\n"
    "Commands:\n"
    "  check   check the five seed documents' hand-derived gradients against the\n"
    "          tape and print one summary table\n"
    "  dot     write the forward and gradient graph of a built-in network as\n"
    "          Graphviz DOT (and SVG when Graphviz is installed)\n"
    "  train   train a network (--model mlp|cnn on Fashion-MNIST, gpt|gru on a word\n"
    "          list)\n"
    "  generate  print words made up by a language model saved by train\n"
    "  eval    test accuracy, per-class accuracy, confusion matrix and the most\n"
    "          confident mistakes (SVG) of a model saved by train --model mlp|cnn\n"
    "  info    a saved model file: format version, checksum, architecture, and\n"
    "          each tensor's name, dtype, shape, mean, std, min and max\n"
    "  help [COMMAND]   this text, or a command's\n"
    "\n"
    "Without a command, tapegrad runs a short tour: check, dot seed002, train, eval.\n"
    "`tapegrad COMMAND --help` describes each command.\n";

static const char CHECK_USAGE[] =
    "usage: tapegrad check [--verbose] [--draws N] [--seed S] [--dot] [FILE.deriv...]\n"
    "\n"
    "With files: verify each derivation file (docs/derivations.md): its network\n"
    "is evaluated on N seeded random draws in f64 and every `check dL/dX = ...`\n"
    "line is compared with the tape's gradient.  One verdict line per check\n"
    "(AGREES when the max relative error over the draws is <= 1e-8, else\n"
    "MISMATCH with the worst element) and a summary.  A check that ends with\n"
    "`expect mismatch` is a formula known to be wrong: MISMATCH is its expected\n"
    "verdict.  --verbose prints every element of each mismatch; --dot writes\n"
    "NAME.dot (and NAME.svg with Graphviz) of each file's forward graph.\n"
    "Exit status: 0 when every verdict is the expected one, 1 otherwise or when\n"
    "a file has an error (file:line:col, the line and a caret, on stderr).\n"
    "\n"
    "Without files: run the five seed-derivation examples (in examples/): every formula of the\n"
    "seed documents, computed by hand, is compared with the tape's gradient over\n"
    "several random draws.  Prints one summary table: for each seed, its number\n"
    "of formulas, how many agree and mismatch, and how many verdicts differ from\n"
    "what the example expects (a formula known to be wrong must MISMATCH).\n"
    "\n"
    "  -v, --verbose   also print each seed's full table, formula by formula\n"
    "  --draws N       random draws per formula (1..1000, default 5)\n"
    "  --seed S        files: the draws' seed (default 0)\n"
    "  --dot           files: write the forward graph as DOT (and SVG)\n"
    "\n"
    "Exit status: 0 when every verdict is the expected one, 1 otherwise.\n";

static void dot_usage(FILE *f)
{
    fputs("usage: tapegrad dot NET [-o FILE.dot] [--values] [--grads] [--no-backward]\n"
          "                    [--no-clusters] [--svg] [--png]\n"
          "\n"
          "Build network NET, run one backward pass from its loss and write the graph\n"
          "(ops, leaves, and the gradient flow as dashed red edges; one cluster per\n"
          "layer) as Graphviz DOT to FILE.dot (default: NET.dot in the current\n"
          "directory).  When Graphviz's dot is installed an SVG is rendered next to it\n"
          "by default; without Graphviz the .dot file is still written.\n"
          "\n"
          "  -o, --output FILE   the DOT file to write\n"
          "  --values            show values: min/mean/max, or every value of a small tensor\n"
          "  --grads             show gradients (after the backward pass)\n"
          "  --no-backward       leave out the gradient-flow edges\n"
          "  --no-clusters       do not group layers (scopes) into clusters\n"
          "  --svg, --png        render these formats (fails without Graphviz)\n"
          "\n"
          "Networks:\n",
          f);
    cli_net_list(f);
}

/* ======================================================================== */
/* check                                                                    */
/* ======================================================================== */

static const seed_example *const SEEDS[] = {
    &seed_fisher_mlp, &seed_delta_rule_mlp, &seed_batch_sigmoid_mlp, &seed_bias_unit_bce,
    &seed_relu_softmax_l2,
};
#define N_SEEDS (int)(sizeof SEEDS / sizeof SEEDS[0])

/* Print "tapegrad CMD: <message>" and CMD's usage to stderr; returns 2. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int usage_error(const char *cmd, const char *fmt, ...)
{
    fprintf(stderr, PROG "%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n\n", stderr);
    if (!cmd)
        fputs(USAGE, stderr);
    else if (!strcmp(cmd, "check"))
        fputs(CHECK_USAGE, stderr);
    else
        dot_usage(stderr);
    return 2;
}

static bool is_help(const char *a) { return !strcmp(a, "--help") || !strcmp(a, "-h"); }

/* A whole number in [lo, hi] from s, or -1. */
static long parse_count(const char *s, long lo, long hi)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return errno || *end || v < lo || v > hi ? -1 : v;
}

int cli_check(int argc, char **argv)
{
    bool verbose = false, dot = false;
    long draws = 5;
    unsigned long long seed = 0;
    int n_files = 0;
    char **files = argv + 1; /* the file arguments, moved to the front */
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            fputs(CHECK_USAGE, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) {
            verbose = true;
        } else if (!strcmp(argv[i], "--draws")) {
            if (i + 1 == argc)
                return usage_error("check", "--draws needs a number");
            if ((draws = parse_count(argv[++i], 1, 1000)) < 0)
                return usage_error("check", "--draws must be 1..1000, not '%s'", argv[i]);
        } else if (!strcmp(argv[i], "--seed")) {
            char *end;
            errno = 0;
            if (i + 1 == argc)
                return usage_error("check", "--seed needs a number");
            seed = strtoull(argv[++i], &end, 10);
            if (errno || *end || argv[i][0] == '-' || !argv[i][0])
                return usage_error("check", "--seed must be a whole number >= 0, not '%s'",
                                   argv[i]);
        } else if (!strcmp(argv[i], "--dot")) {
            dot = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return usage_error("check", "unknown option '%s'", argv[i]);
        } else {
            files[n_files++] = argv[i];
        }
    }
    if (n_files)
        return cli_check_files(n_files, files, draws, seed, verbose, dot);
    if (dot || seed)
        return usage_error("check", "--seed and --dot are for derivation files");
    static dv_table tables[N_SEEDS];
    int rc[N_SEEDS];
    for (int s = 0; s < N_SEEDS; s++) {
        dv_init(&tables[s], SEEDS[s]->id, SEEDS[s]->title);
        rc[s] = SEEDS[s]->run(&tables[s], (int)draws);
    }
    printf("Seed derivations: hand-derived gradients vs the tape (%ld draws per formula, "
           "agree when max rel err <= %.0e)\n\n", draws, DV_TOL);
    printf("%-4s  %8s  %5s  %8s  %10s  %s\n", "seed", "formulas", "agree", "mismatch",
           "unexpected", "document");
    int tot[4] = {0}, bad = 0;
    for (int s = 0; s < N_SEEDS; s++) {
        const dv_table *t = &tables[s];
        int v[4] = {t->n_rows, dv_count(t, true), dv_count(t, false), dv_unexpected(t)};
        if (rc[s] && !v[3])
            v[3] = 1; /* a library error the table did not count */
        printf("%-4s  %8d  %5d  %8d  %10d  %s\n", t->id, v[0], v[1], v[2], v[3], t->title);
        for (int k = 0; k < 4; k++)
            tot[k] += v[k];
        bad += v[3] != 0;
    }
    printf("%-4s  %8d  %5d  %8d  %10d\n", "all", tot[0], tot[1], tot[2], tot[3]);
    printf("\n%s\n", tot[3] ? "UNEXPECTED verdicts: see tapegrad check --verbose"
                            : "Every verdict is the expected one: formulas that hold agree, "
                              "the errors the errata describe mismatch.");
    if (verbose)
        for (int s = 0; s < N_SEEDS; s++)
            dv_print(&tables[s], stdout);
    else
        printf("(tapegrad check --verbose prints every formula.)\n");
    fflush(stdout);
    return bad ? 1 : 0;
}

/* ======================================================================== */
/* dot                                                                      */
/* ======================================================================== */

/* "mlp:784,512,10" -> "mlp-784-512-10": a file name without surprises */
static void file_stem(const char *name, char *out, size_t len)
{
    size_t n = 0;
    for (const char *p = name; *p && n + 1 < len; p++) {
        char c = *p;
        bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
        out[n++] = safe ? c : '-';
    }
    out[n] = 0;
}

/* FILE.dot -> FILE.<ext> (or FILE.<ext> appended when it does not end in .dot) */
static char *image_path(const char *dot_path, const char *ext)
{
    size_t n = strlen(dot_path);
    if (n > 4 && !strcmp(dot_path + n - 4, ".dot"))
        n -= 4;
    char *p = malloc(n + strlen(ext) + 2);
    if (p)
        sprintf(p, "%.*s.%s", (int)n, dot_path, ext);
    return p;
}

static int render(const char *dot_path, const char *ext)
{
    char *img = image_path(dot_path, ext);
    if (!img) {
        fprintf(stderr, PROG " dot: out of memory\n");
        return 1;
    }
    tg_err e;
    int rc = tg_dot_render(dot_path, ext, img, &e);
    if (rc)
        fprintf(stderr, PROG " dot: %s\n", e.msg);
    else
        printf("wrote %s\n", img);
    free(img);
    return rc ? 1 : 0;
}

/* What `tapegrad dot` was asked for. */
typedef struct dot_args {
    const char *net, *out; /* out: NULL until the default is set */
    tg_dot_opts o;
    bool svg, png;
    char default_out[96];  /* NET.dot, file-name-safe            */
} dot_args;

/* The options and the network name; -1 to go on, else the exit status. */
static int parse_dot(int argc, char **argv, dot_args *d)
{
    *d = (dot_args){.o = {.backward = true, .clusters = true}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) {
            dot_usage(stdout);
            return 0;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (i + 1 == argc || !*argv[i + 1])
                return usage_error("dot", "%s needs a file name", a);
            d->out = argv[++i];
        } else if (!strcmp(a, "--values")) {
            d->o.values = true;
        } else if (!strcmp(a, "--grads")) {
            d->o.grads = true;
        } else if (!strcmp(a, "--no-backward")) {
            d->o.backward = false;
        } else if (!strcmp(a, "--no-clusters")) {
            d->o.clusters = false;
        } else if (!strcmp(a, "--svg")) {
            d->svg = true;
        } else if (!strcmp(a, "--png")) {
            d->png = true;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("dot", "unknown option '%s'", a);
        } else if (d->net) {
            return usage_error("dot", "one network at a time ('%s' is extra)", a);
        } else {
            d->net = a;
        }
    }
    return d->net ? -1 : usage_error("dot", "which network? (see the list below)");
}

/* Build the network, run one backward pass and write the DOT file (by
 * default NET.dot); -1 to go on, else the exit status. */
static int write_dot(dot_args *d)
{
    cli_net net;
    tg_err err;
    int built = cli_net_build(d->net, &net, &err);
    if (built == -2)
        return usage_error("dot", "%s", err.msg);
    if (built) {
        fprintf(stderr, PROG " dot: %s\n", err.msg);
        return 1;
    }
    if (!d->out) {
        char stem[80];
        file_stem(net.name, stem, sizeof stem);
        snprintf(d->default_out, sizeof d->default_out, "%s.dot", stem);
        d->out = d->default_out;
    }
    tg_dot_opts o = d->o;
    o.title = net.title;
    if (tg_backward(net.loss) || tg_dot_save(d->out, net.tape, net.loss, &o)) {
        fprintf(stderr, PROG " dot: %s\n", tg_tape_error(net.tape));
        tg_tape_free(net.tape);
        return 1;
    }
    printf("wrote %s (%s: %zu ops, %zu leaves, loss %.6g)\n", d->out, net.name,
           tg_tape_nodes(net.tape), tg_tape_leaves(net.tape), tg_item(net.loss));
    tg_tape_free(net.tape);
    return -1;
}

/* The images: an SVG by default when Graphviz is there (else how to get
 * one), or the --svg and --png asked for. */
static int render_images(const dot_args *d)
{
    if (!d->svg && !d->png) {
        if (tg_dot_available())
            return render(d->out, "svg");
        printf("No SVG: Graphviz's dot is not installed.  Install it (Debian/Ubuntu: "
               "sudo apt-get install graphviz; macOS: brew install graphviz), then run\n"
               "  dot -Tsvg %s -o image.svg\n", d->out);
        return 0;
    }
    int rc = 0;
    if (d->svg)
        rc |= render(d->out, "svg");
    if (d->png)
        rc |= render(d->out, "png");
    return rc;
}

int cli_dot(int argc, char **argv)
{
    dot_args d;
    int status = parse_dot(argc, argv, &d);
    if (status < 0)
        status = write_dot(&d);
    return status < 0 ? render_images(&d) : status;
}

/* ======================================================================== */
/* main                                                                     */
/* ======================================================================== */

static int tour(void)
{
    int status = 0;
    printf("tapegrad %s: a short tour (tapegrad --help lists the commands)\n\n", tg_version());
    printf("== 1/4  tapegrad check: the seed documents' gradients against the tape ==\n\n");
    fflush(stdout);
    status |= cli_check(1, (char *[]){"check", NULL}) != 0;
    printf("\n== 2/4  tapegrad dot seed002: the graph of seed 002's network ==\n\n");
    fflush(stdout);
    status |= cli_dot(2, (char *[]){"dot", "seed002", NULL}) != 0;
    printf("\n== 3/4  tapegrad train --epochs 2 (tapegrad train runs the full 10) ==\n\n");
    fflush(stdout);
    int trained = cli_train(3, (char *[]){"train", "--epochs", "2", NULL});
    status |= trained != 0;
    printf("(train.svg: the loss of every step, test loss and accuracy per epoch)\n");
    printf("\n== 4/4  tapegrad eval fashion_mlp.tgm: the model just trained ==\n\n");
    fflush(stdout);
    if (trained == 0)
        status |= cli_eval(2, (char *[]){"eval", "fashion_mlp.tgm", NULL}) != 0;
    else
        printf("(skipped: training failed)\n");
    fflush(stdout);
    return status;
}

/* The library ignores a TAPEGRAD_ISA it cannot use (and takes the best
 * kernel path); a user who set it should hear so, with the valid values. */
static void warn_isa(void)
{
    static const char *const names[] = {"generic", "avx2", "avx512"};
    const char *env = getenv("TAPEGRAD_ISA");
    if (!env || tg_isa_supported(env))
        return;
    bool known = false;
    char here[64] = "";
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        known |= !strcmp(env, names[i]);
        if (tg_isa_supported(names[i]))
            snprintf(here + strlen(here), sizeof here - strlen(here), "%s%s", *here ? ", " : "",
                     names[i]);
    }
    fprintf(stderr, PROG ": warning: TAPEGRAD_ISA=%s %s; using %s.  Valid values: generic, "
                    "avx2, avx512 (this CPU runs: %s).\n",
            env, known ? "is not supported by this CPU" : "is not a kernel path", tg_isa(), here);
}

int main(int argc, char **argv)
{
    warn_isa();
    if (argc < 2)
        return tour();
    const char *cmd = argv[1];
    if (is_help(cmd)) {
        fputs(USAGE, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("tapegrad %s\n", tg_version());
        return 0;
    }
    if (!strcmp(cmd, "check"))
        return cli_check(argc - 1, argv + 1);
    if (!strcmp(cmd, "dot"))
        return cli_dot(argc - 1, argv + 1);
    if (!strcmp(cmd, "train"))
        return cli_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "generate"))
        return cli_generate(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval"))
        return cli_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "info"))
        return cli_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "help")) {
        if (argc == 2) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (argc == 3 && (!strcmp(argv[2], "check") || !strcmp(argv[2], "dot") ||
                          !strcmp(argv[2], "train") || !strcmp(argv[2], "generate") ||
                          !strcmp(argv[2], "eval") || !strcmp(argv[2], "info")))
            return main(3, (char *[]){argv[0], argv[2], "--help", NULL});
        return usage_error(NULL, "help: unknown command '%s'", argv[2]);
    }
    if (cmd[0] == '-')
        return usage_error(NULL, "unknown option '%s'", cmd);
    return usage_error(NULL, "unknown command '%s'", cmd);
}
