/* The tapegrad command, run as a user runs it (no shell): exit statuses,
 * --help, usage errors, `check`, `dot` on every built-in network (the DOT it
 * writes must render with Graphviz without a warning, when Graphviz is
 * installed), and the tour.  Usage: test_cli /path/to/tapegrad */
#include "tapegrad.h"
#include "test_run.h"

#ifdef TG_HAVE_ZLIB
#include <zlib.h>
#endif

static const char *prog;
static char dir[64];
static char out_buf[65536], err_buf[65536];
static bool have_dot;

static void slurp(const char *path, char *buf, size_t len) { tr_slurp(path, buf, len); }

/* Run prog with args (NULL-terminated); stdout/stderr into out_buf,
 * err_buf.  Returns the exit status, or -1 when it did not exit. */
static int run(const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    int st = tr_vrun(prog, out_buf, sizeof out_buf, err_buf, sizeof err_buf, arg, ap);
    va_end(ap);
    return st;
}

static bool exists(const char *p)
{
    struct stat st;
    return !stat(p, &st) && st.st_size > 0;
}

static void renders(const char *dot_path)
{
    if (!have_dot) {
        printf("ok %d - # SKIP %s renders (Graphviz is not installed)\n", ++tap_count, dot_path);
        return;
    }
    tg_err e;
    int rc = tg_dot_render(dot_path, "svg", "check.svg", &e);
    ok(rc == 0, "%s renders with dot -Tsvg without warnings", dot_path);
    if (rc)
        diag("%s", e.msg);
}

/* buf contains want; on failure show buf's start as "#" lines */
static void has(const char *buf, const char *want, const char *what)
{
    if (ok(strstr(buf, want) != NULL, "%s", what))
        return;
    diag("wanted \"%s\" in:", want);
    char line[200];
    const char *p = buf;
    for (int k = 0; k < 12 && *p; k++) {
        size_t n = strcspn(p, "\n");
        snprintf(line, sizeof line, "%.*s", (int)(n < 150 ? n : 150), p);
        diag("  %s", line);
        p += n + (p[n] == '\n');
    }
}

/* The last line of a training run in out_buf: "peak resident memory X MiB"
 * with X plausible (a process holding a model: over 1 MiB, under 1 TiB). */
static void peak_memory(const char *what)
{
    const char *p = strstr(out_buf, "peak resident memory ");
    double mib = p ? strtod(p + strlen("peak resident memory "), NULL) : 0;
    ok(p && mib > 1 && mib < 1048576 && !strcmp(strchr(p, '\n') - 4, " MiB\n") &&
           !strchr(p, '\n')[1],
       "%s ends with its peak resident memory (%.1f MiB)", what, mib);
}

#define STATUS(want, ...)                                                                 \
    do {                                                                                  \
        int s_ = run(__VA_ARGS__, NULL);                                                  \
        if (!ok(s_ == (want), "tapegrad %s -> exit %d", #__VA_ARGS__, want))              \
            diag("exit %d; stderr: %.*s", s_, (int)strcspn(err_buf, "\n"), err_buf);                                 \
    } while (0)

static void usage(void)
{
    STATUS(0, "--help");
    has(out_buf, "usage: tapegrad", "--help prints the usage to stdout");
    STATUS(0, "--version");
    has(out_buf, "tapegrad 0.1.0", "--version prints the version");
    STATUS(0, "help", "dot");
    has(out_buf, "usage: tapegrad dot NET", "help dot = dot --help");
    STATUS(0, "check", "--help");
    has(out_buf, "usage: tapegrad check", "check --help");
    STATUS(0, "dot", "--help");
    has(out_buf, "seed002, batch", "dot --help lists the networks");
    has(out_buf, "mlp:N0,N1", "... and the MLP form");

    STATUS(2, "--bogus");
    has(err_buf, "unknown option '--bogus'", "an unknown option is named on stderr");
    has(err_buf, "usage: tapegrad", "... followed by the usage");
    ok(out_buf[0] == 0, "... and nothing on stdout");
    STATUS(2, "frobnicate");
    has(err_buf, "unknown command 'frobnicate'", "an unknown command");
    STATUS(2, "help", "frobnicate");
    STATUS(2, "check", "--draws", "0");
    has(err_buf, "--draws must be 1..1000", "check --draws 0");
    STATUS(2, "check", "--draws");
    STATUS(2, "check", "--extra");
    STATUS(2, "dot");
    has(err_buf, "usage: tapegrad dot", "dot without a network prints dot's usage");
    STATUS(2, "dot", "nosuchnet");
    has(err_buf, "unknown network 'nosuchnet'", "an unknown network");
    STATUS(2, "dot", "seed002", "--bogus");
    STATUS(2, "dot", "seed002", "seed003");
    STATUS(2, "dot", "seed002", "-o");
    STATUS(2, "dot", "mlp:3,x");
    has(err_buf, "mlp: expected a layer size", "a malformed mlp");
    STATUS(2, "dot", "mlp:3");
    STATUS(2, "dot", "mlp:3,0,2");
    STATUS(2, "dot", "mlp:100000,100000");
}

static void check(void)
{
    STATUS(0, "check", "--draws", "2");
    has(out_buf, "seed  formulas  agree  mismatch  unexpected", "check prints the summary");
    bool all = true;
    for (int s = 0; s < 5; s++) {
        char id[8];
        snprintf(id, sizeof id, "\n00%d ", s);
        all &= strstr(out_buf, id) != NULL;
    }
    ok(all, "... with a row for each of the five seeds");
    has(out_buf, "\nall ", "... and a total");
    ok(!strstr(out_buf, "max abs"), "... and no per-formula table without --verbose");
    STATUS(0, "check", "--verbose", "--draws", "1");
    has(out_buf, "max abs", "check --verbose prints the full tables");
}

/* tapegrad check FILE.deriv: verdicts, exit status, errors, --verbose, --dot */
static void check_files(void)
{
    static const char good[] = "input X[3,2]\nparam W[2,4]\nZ = X W\nL = 1/2 sum(Z^2)\n"
                               "check dL/dW = Xᵀ Z\ncheck dL/dX = Z Wᵀ\n";
    static const char wrong[] = "input X[3,2]\nparam W[2,4]\nZ = X W\nL = 1/2 sum(Z^2)\n"
                                "check dL/dW = Xᵀ Z / 2\n";
    static const char known[] = "input X[3,2]\nparam W[2,4]\nZ = X W\nL = 1/2 sum(Z^2)\n"
                                "check dL/dW = Xᵀ Z / 2   expect mismatch\n";
    static const char bad[] = "input X[3,2]\nparam W[2,4]\nZ = X Wq\n";
    tap_write_file("good.deriv", good, sizeof good - 1);
    tap_write_file("wrong.deriv", wrong, sizeof wrong - 1);
    tap_write_file("known.deriv", known, sizeof known - 1);
    tap_write_file("bad.deriv", bad, sizeof bad - 1);
    STATUS(0, "check", "good.deriv");
    has(out_buf, "line 5    dL/dW = Xᵀ Z", "a verdict line per check, with its line");
    has(out_buf, "2 checks: 2 agree, 0 mismatch", "... and the file's summary");
    STATUS(1, "check", "wrong.deriv");
    has(out_buf, "MISMATCH  max rel", "a wrong formula: MISMATCH with the worst element");
    has(out_buf, "(UNEXPECTED)", "... marked unexpected");
    STATUS(0, "check", "known.deriv");
    has(out_buf, "(expected)", "`expect mismatch`: the mismatch is the expected verdict");
    STATUS(1, "check", "--verbose", "wrong.deriv");
    has(out_buf, "every element", "--verbose prints each element of the mismatch");
    has(out_buf, "W[1,3]", "... by index");
    STATUS(1, "check", "good.deriv", "wrong.deriv");
    has(out_buf, "all files: 3 checks, 2 agree, 1 mismatch, 1 unexpected", "two files: a total");
    STATUS(1, "check", "bad.deriv");
    has(err_buf, "bad.deriv:3:7: unknown name 'Wq'; did you mean 'W'?", "an error at its place");
    has(err_buf, "\n  Z = X Wq\n        ^", "... with the line and a caret");
    STATUS(1, "check", "missing.deriv");
    has(err_buf, "missing.deriv: cannot open", "a missing file");
    STATUS(2, "check", "--seed", "x", "good.deriv");
    STATUS(2, "check", "--dot");
    STATUS(0, "check", "--dot", "--seed", "3", "--draws", "2", "good.deriv");
    ok(exists("good.dot"), "--dot writes good.dot");
    if (have_dot)
        ok(exists("good.svg"), "... and good.svg (Graphviz installed)");
}

static void dot(void)
{
    static const char *nets[] = {"seed000", "seed001", "seed002", "seed003", "seed004",
                                 "fisher", "relusoftmax", "mlp:784,512,10", "mlp:5,3", "cnn"};
    for (size_t i = 0; i < sizeof nets / sizeof *nets; i++) {
        char path[64];
        snprintf(path, sizeof path, "net%zu.dot", i);
        unlink(path);
        STATUS(0, "dot", nets[i], "-o", path, "--values", "--grads");
        ok(exists(path), "dot %s wrote %s", nets[i], path);
        renders(path);
    }
    slurp("net9.dot", out_buf, sizeof out_buf); /* cnn */
    ok(strstr(out_buf, "graph [label=\"block1\"") && strstr(out_buf, "graph [label=\"block2\"") &&
           strstr(out_buf, "graph [label=\"head\"") && strstr(out_buf, "conv2d(k=3x3"),
       "dot cnn: one cluster per block");
    unlink("seed002.dot");
    unlink("seed002.svg");
    STATUS(0, "dot", "seed002");
    ok(exists("seed002.dot"), "dot seed002 writes seed002.dot by default");
    if (have_dot) {
        ok(exists("seed002.svg"), "... and seed002.svg (Graphviz is installed)");
        has(out_buf, "wrote seed002.svg", "... and says so");
    } else {
        has(out_buf, "apt-get install graphviz", "... and says how to install Graphviz");
    }
    STATUS(0, "dot", "mlp:4,3,2", "--no-backward", "--no-clusters", "-o", "plain.dot");
    slurp("plain.dot", out_buf, sizeof out_buf);
    ok(!strstr(out_buf, "style=dashed") && !strstr(out_buf, "cluster_"),
       "--no-backward --no-clusters: no dashed edges, no clusters");
    STATUS(0, "dot", "mlp:4,3,2", "-o", "full.dot");
    slurp("full.dot", out_buf, sizeof out_buf);
    ok(strstr(out_buf, "style=dashed") && strstr(out_buf, "cluster_"),
       "by default: gradient edges and clusters");
    if (have_dot) {
        STATUS(0, "dot", "seed001", "--png", "-o", "p.dot");
        ok(exists("p.png") && !exists("p.svg"), "--png renders a PNG (and no SVG)");
    }
    /* no Graphviz: the .dot is still written, and --svg then fails */
    char *old = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    setenv("PATH", "/nonexistent-dir", 1);
    unlink("nodot.dot");
    STATUS(0, "dot", "seed002", "-o", "nodot.dot");
    ok(exists("nodot.dot") && !exists("nodot.svg"), "without Graphviz: the .dot, no SVG");
    has(out_buf, "apt-get install graphviz", "... and how to install Graphviz");
    STATUS(1, "dot", "seed002", "-o", "nodot.dot", "--svg");
    has(err_buf, "apt-get install graphviz", "--svg without Graphviz fails and says why");
    ok(exists("nodot.dot"), "... after writing the .dot");
    if (old)
        setenv("PATH", old, 1);
    free(old);
    STATUS(1, "dot", "seed002", "-o", "no/such/dir/x.dot");
    has(err_buf, "No such file or directory", "an unwritable output fails with the reason");
}

/* ---- train --model gpt|gru, generate, dot gpt|gru -------------------------- */

/* The lines of buf (each ending in '\n'), and whether each starts with prefix. */
static int count_lines(const char *buf, const char *prefix, bool *all_prefixed)
{
    int n = 0;
    *all_prefixed = true;
    for (const char *p = buf; *p;) {
        size_t len = strcspn(p, "\n");
        *all_prefixed &= strncmp(p, prefix, strlen(prefix)) == 0;
        n++;
        p += len + (p[len] == '\n');
    }
    return n;
}

/* A model file whose "lm.config" says width = 1e9 (saved with a valid checksum). */
static void write_bad_config(const char *path)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *c = tg_const(t, "lm.config", TG_I32, 1, (size_t[]){16});
    tg_tensor *v = tg_const(t, "lm.vocab", TG_I32, 1, (size_t[]){256});
    int32_t cv[16] = {1, 1, 6, 4, 2, 2, 2, 1000000000, 0, 0, (int32_t)TG_F32, 1};
    int32_t vv[256];
    for (int i = 0; i < 256; i++)
        vv[i] = i < 6 ? "\nabcde"[i] : -1;
    tg_copy_in(c, cv, TG_I32, 16);
    tg_copy_in(v, vv, TG_I32, 256);
    tg_save(t, path, 2, (tg_tensor *[]){c, v});
    tg_tape_free(t);
}

#define LM_TINY "--text", "words.txt", "--steps", "6", "--eval-every", "3", "--batch", "4", \
                "--ctx", "8", "--width", "16", "--layers", "1"

static void language_models(void)
{
    /* 300 made-up words of 3 to 6 letters */
    static char words[4096];
    size_t n = 0;
    tg_rng r;
    tg_rng_seed(&r, 5);
    for (int w = 0; w < 300; w++) {
        int len = 3 + (int)tg_rng_below(&r, 4);
        for (int k = 0; k < len; k++)
            words[n++] = (k % 2 ? "aeiou" : "bdgklmnprst")[tg_rng_below(&r, k % 2 ? 5 : 11)];
        words[n++] = '\n';
    }
    tap_write_file("words.txt", words, n);

    STATUS(0, "--help");
    has(out_buf, "generate", "the top-level usage lists generate");
    STATUS(0, "train", "--model", "gpt", "--help");
    has(out_buf, "--ctx T", "train --model gpt --help describes the language-model options");
    STATUS(0, "generate", "--help");
    has(out_buf, "usage: tapegrad generate MODEL", "generate --help");
    STATUS(0, "help", "generate");
    STATUS(2, "train", "--model", "gpt", "--width", "16", "--heads", "3", LM_TINY);
    has(err_buf, "--width 16 is not a multiple of --heads 3", "gpt: heads must divide width");
    STATUS(2, "train", "--model", "gru", "--heads", "2", LM_TINY);
    STATUS(2, "train", "--model", "gpt", "--bogus", "1");
    STATUS(2, "train", "--model", "gpt", "--steps", "0");
    STATUS(2, "train", "--model", "gpt", "--ctx", "1.5");
    STATUS(2, "train", "--model", "transformer");
    STATUS(2, "generate");
    STATUS(2, "generate", "x.tgm", "--n", "0");
    STATUS(2, "generate", "x.tgm", "--temperature", "-1");
    STATUS(1, "train", "--model", "gpt", "--text", "nosuch.txt", "--steps", "2");
    has(err_buf, "cannot read the word list: text_load: nosuch.txt: cannot open",
        "a missing word list: exit 1 with a message");
    tap_write_file("bin.txt", "ab\0cd\n", 6);
    STATUS(1, "train", "--model", "gru", "--text", "bin.txt", "--steps", "2");
    has(err_buf, "a NUL byte", "a binary file is refused");
    if (access("/usr/share/dict/american-english", F_OK)) {
        STATUS(1, "train", "--model", "gpt", "--steps", "2");
        has(err_buf, "wamerican", "the default word list missing: the message names wamerican");
    } else {
        printf("ok %d - # SKIP the default word list is installed (its absence not testable)\n",
               ++tap_count);
    }

    static const char *const models[] = {"gpt", "gru"};
    for (int i = 0; i < 2; i++) {
        const char *mo = models[i];
        static char gen1[sizeof out_buf];
        char file[32];
        snprintf(file, sizeof file, "lm_%s.tgm", mo);
        unlink(file);
        if (i) /* gru takes no --heads */
            STATUS(0, "train", "--model", mo, LM_TINY, "--out", file);
        else
            STATUS(0, "train", "--model", mo, LM_TINY, "--heads", "2", "--out", file);
        has(out_buf, "step      6  train loss", "train --model prints the steps");
        has(out_buf, "val loss", "... with the validation loss");
        has(out_buf, "samples: ", "... and sampled words");
        peak_memory("train --model");
        ok(exists(file), "train --model %s saved %s", mo, file);
        STATUS(0, "generate", file, "--n", "7", "--seed", "3");
        bool pre;
        ok(count_lines(out_buf, "", &pre) == 7, "generate %s --n 7 prints 7 lines", mo);
        snprintf(gen1, sizeof gen1, "%s", out_buf);
        STATUS(0, "generate", file, "--n", "7", "--seed", "3");
        ok(!strcmp(gen1, out_buf), "the same seed, the same words");
        STATUS(0, "generate", file, "--n", "5", "--prefix", "ba", "--top-k", "3");
        ok(count_lines(out_buf, "ba", &pre) == 5 && pre, "--prefix ba: 5 words starting with ba");
        STATUS(0, "generate", file, "--n", "3", "--temperature", "0", "--max-len", "12");
        size_t l1 = strcspn(out_buf, "\n") + 1;
        ok(count_lines(out_buf, "", &pre) == 3 && strlen(out_buf) == 3 * l1 &&
               !strncmp(out_buf, out_buf + l1, l1) && !strncmp(out_buf, out_buf + 2 * l1, l1),
           "temperature 0: the same (most likely) word every time");
        STATUS(1, "generate", file, "--prefix", "zq");
        has(err_buf, "is not in the model's vocabulary", "a prefix outside the vocabulary");
        /* activation checkpointing: the same losses (bit-identical gradients) */
        char plain[sizeof out_buf];
        STATUS(0, "train", "--model", mo, LM_TINY, "--out", "ck.tgm", "--quiet");
        snprintf(plain, sizeof plain, "%s", strstr(out_buf, "step      6") ? strstr(out_buf, "step      6") : "");
        STATUS(0, "train", "--model", mo, LM_TINY, "--out", "ck.tgm", "--quiet", "--checkpoint");
        const char *ck = strstr(out_buf, "step      6");
        ok(ck && plain[0] && !strncmp(plain, ck, 60) && strstr(out_buf, "checkpointed"),
           "train --model %s --checkpoint: the same train and val loss", mo);
    }
    /* damaged and foreign files */
    size_t len;
    char *m = tap_read_file("lm_gpt.tgm", &len);
    if (m && len > 100) {
        m[len / 2] ^= 0x10;
        tap_write_file("flip.tgm", m, len);
        STATUS(1, "generate", "flip.tgm");
        has(err_buf, "tapegrad generate: ", "a flipped bit: exit 1 with a message");
        tap_write_file("cut.tgm", m, len / 3);
        STATUS(1, "generate", "cut.tgm");
        has(err_buf, "tapegrad generate: ", "a truncated model: exit 1 with a message");
    }
    free(m);
    STATUS(1, "generate", "words.txt");
    has(err_buf, "tapegrad generate: ", "a file that is no model: exit 1");
    STATUS(1, "generate", "nosuch.tgm");
    has(err_buf, "cannot open", "a missing model: exit 1");
    write_bad_config("badcfg.tgm");
    STATUS(1, "generate", "badcfg.tgm");
    has(err_buf, "lm.config: width 1000000000 is outside 1..4096",
        "a configuration out of range: exit 1 naming the field");
    STATUS(1, "train", "--model", "gpt", LM_TINY, "--out", "no/such/dir/m.tgm");

    STATUS(0, "dot", "gpt", "-o", "gpt.dot");
    slurp("gpt.dot", out_buf, sizeof out_buf);
    ok(strstr(out_buf, "graph [label=\"block0\"") && strstr(out_buf, "graph [label=\"block1\"") &&
           !strstr(out_buf, "graph [label=\"block2\"") && strstr(out_buf, "graph [label=\"head\""),
       "dot gpt: one cluster per block (2 blocks)");
    renders("gpt.dot");
    STATUS(0, "dot", "gru", "-o", "gru.dot");
    slurp("gru.dot", out_buf, sizeof out_buf);
    ok(strstr(out_buf, "graph [label=\"embed\"") && strstr(out_buf, "graph [label=\"head\"") &&
           strstr(out_buf, "cluster_"), "dot gru: clusters for the embedding, steps and head");
    renders("gru.dot");
}

static void train(void)
{
    STATUS(0, "train", "--help");
    has(out_buf, "--layers", "train --help lists the options");
    STATUS(2, "train", "--bogus");
    STATUS(2, "train", "--layers", "784");
    STATUS(2, "train", "--layers", "784,x,10");
    STATUS(2, "train", "--epochs", "0");
    STATUS(2, "train", "--opt", "rmsprop");
    STATUS(2, "train", "--synthetic", "--layers", "100,10");
    has(err_buf, "--layers must start with 784 inputs", "a layer size not matching the data");
    STATUS(0, "train", "--synthetic", "--epochs", "2", "--layers", "784,32,10", "--out", "m.tgm",
           "--chart", "c.svg");
    has(out_buf, "epoch  2/2  train loss", "train prints every epoch");
    has(out_buf, "test accuracy", "... with the test accuracy");
    peak_memory("train");
    ok(exists("m.tgm") && exists("c.svg"), "the model and the chart are written");
    STATUS(0, "train", "--synthetic", "--epochs", "1", "--layers", "784,16,10", "--opt", "sgd",
           "--schedule", "cosine", "--limit", "1000", "--out", "m3.tgm", "--chart", "c3.svg");
    /* the convolutional network */
    STATUS(2, "train", "--model", "cnn", "--layers", "784,10");
    has(err_buf, "--layers is for --model mlp", "--layers with --model cnn is refused");
    STATUS(2, "train", "--model", "resnet");
    STATUS(2, "train", "--model", "cnn", "--dropout", "1");
    unlink("fashion_cnn.tgm");
    STATUS(0, "train", "--model", "cnn", "--synthetic", "--epochs", "1", "--limit", "512",
           "--no-chart", "--quiet");
    has(out_buf, "model: cnn: conv 3x3 32, bn, ReLU, max-pool 2", "train --model cnn says so");
    has(out_buf, "epoch  1/1  train loss", "... trains an epoch");
    ok(exists("fashion_cnn.tgm"), "... and saves to fashion_cnn.tgm by default");
    unlink("fashion_cnn.tgm");
}

/* ---- train: parsing ------------------------------------------------------- */

/* Options a run accepted by mistake would train with: small and quick. */
#define QUICK "--synthetic", "--layers", "784,4,10", "--limit", "300", "--batch", "50", \
              "--out", "quick.tgm", "--chart", "quick.svg", "--quiet"

static void train_parsing(void)
{
    STATUS(2, "train", "--epochs", "1.9", QUICK);
    has(err_buf, "--epochs", "--epochs 1.9 is refused (a whole number is needed)");
    STATUS(2, "train", "--batch", "0x40", "--epochs", "1", QUICK);
    has(err_buf, "'0x40'", "--batch 0x40 is refused, naming the value");
    STATUS(2, "train", "--seed", "1e3", "--epochs", "1", QUICK);
    STATUS(2, "train", "--limit", "300.0", "--epochs", "1", QUICK);
    STATUS(2, "train", "--threads", "+2", "--epochs", "1", QUICK);
    STATUS(2, "train", "--epochs", " 1", QUICK);
    STATUS(2, "train", "--bogus");
    has(err_buf, "unknown option '--bogus'", "an unknown last option is called unknown");
    ok(!strstr(err_buf, "missing value"), "... not a bad or missing value");
    STATUS(2, "train", "--bogus", "3");
    has(err_buf, "unknown option '--bogus'", "an unknown option with a value too");
    STATUS(2, "train", "stray");
    has(err_buf, "'stray'", "a stray argument is named");
    STATUS(2, "train", "--epochs");
    has(err_buf, "--epochs needs a value", "a known option without its value");
    /* 18 sizes: 17 layers, one more than supported (used to train 16) */
    STATUS(2, "train", "--layers", "784,10,10,10,10,10,10,10,10,10,10,10,10,10,10,10,10,10",
           "--epochs", "1", "--synthetic", "--limit", "300", "--batch", "50", "--out", "q.tgm",
           "--chart", "q.svg", "--quiet");
    has(err_buf, "at most 17 sizes", "--layers with too many sizes is an error");
    STATUS(2, "train", "--layers", "784,-4,10");
    STATUS(2, "train", "--layers", "784,,10");
    STATUS(2, "train", "--layers", "784,10,");
    STATUS(2, "train", "--data", "somewhere", "--epochs", "1", QUICK);
    has(err_buf, "--synthetic", "--synthetic with --data is a usage error");
    STATUS(2, "train", "--epochs", "1", "--synthetic", "--layers", "784,4,10", "--limit", "300",
           "--batch", "50", "--quiet", "--out", "same", "--chart", "same");
    has(err_buf, "same file", "--out and --chart naming one file");

    /* an unusable TAPEGRAD_ISA: warned about, with the valid values */
    setenv("TAPEGRAD_ISA", "avx9000", 1);
    STATUS(0, "--version");
    has(err_buf, "TAPEGRAD_ISA=avx9000", "an unknown TAPEGRAD_ISA is warned about");
    has(err_buf, "generic, avx2, avx512", "... listing the valid values");
    setenv("TAPEGRAD_ISA", "generic", 1);
    STATUS(0, "--version");
    ok(err_buf[0] == 0, "TAPEGRAD_ISA=generic: no warning");
    unsetenv("TAPEGRAD_ISA");
}

/* ---- train: the data it reads and the files it writes --------------------- */

enum { N_TRAIN = 50, N_TEST = 20 };

/* A u8 IDX file of images [n,28,28] (a fixed pattern) or labels [n]
 * (i % 10) into buf; its length. */
static size_t idx_file(unsigned char *buf, bool images, uint32_t n)
{
    uint32_t dims[3] = {n, 28, 28};
    int rank = images ? 3 : 1;
    size_t at = 4, count = images ? (size_t)n * 784 : n;
    buf[0] = buf[1] = 0, buf[2] = 0x08, buf[3] = (unsigned char)rank;
    for (int i = 0; i < rank; i++, at += 4)
        for (int b = 0; b < 4; b++)
            buf[at + (size_t)b] = (unsigned char)(dims[i] >> (24 - 8 * b));
    uint32_t r = 12345; /* a fixed LCG: noise that gzip cannot squeeze away */
    for (size_t i = 0; i < count; i++)
        buf[at + i] = images ? (unsigned char)((r = r * 1103515245u + 12345u) >> 24)
                             : (unsigned char)(i % 10);
    return at + count;
}

/* Write buf to path, gzip-compressed when gz (false when it cannot). */
static bool put(const char *path, const unsigned char *buf, size_t len, bool gz)
{
#ifdef TG_HAVE_ZLIB
    if (gz) {
        gzFile g = gzopen(path, "wb6");
        return g && gzwrite(g, buf, (unsigned)len) == (int)len && gzclose(g) == Z_OK;
    }
#else
    if (gz)
        return false;
#endif
    return tap_write_file(path, buf, len);
}

static unsigned char idx_buf[N_TRAIN * 784 + 64];

/* DIR with the four Fashion-MNIST files, the images gzipped when gz_images
 * (the labels stay raw).  Returns false when they cannot be written. */
static bool data_dir(const char *dir_name, bool gz_images)
{
    static const char *const stems[] = {"train", "t10k"};
    char path[256];
    mkdir(dir_name, 0755);
    bool good = true;
    for (int s = 0; s < 2; s++) {
        uint32_t n = s ? N_TEST : N_TRAIN;
        snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte%s", dir_name, stems[s],
                 gz_images ? ".gz" : "");
        good &= put(path, idx_buf, idx_file(idx_buf, true, n), gz_images);
        snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir_name, stems[s]);
        good &= put(path, idx_buf, idx_file(idx_buf, false, n), false);
    }
    return good;
}

/* Damage file DIR/NAME: cut it to `keep` bytes (keep > 0), or flip bit
 * `bit` of byte `at` (keep == 0). */
static bool damage(const char *dir_name, const char *name, size_t keep, size_t at, int bit)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir_name, name);
    size_t len = tap_slurp(path, idx_buf, sizeof idx_buf);
    if (keep)
        return keep < len && tap_write_file(path, idx_buf, keep);
    if (at >= len)
        return false;
    idx_buf[at] ^= (unsigned char)(1u << bit);
    return tap_write_file(path, idx_buf, len);
}

static void rm_tree(const char *path)
{
    DIR *dp = opendir(path);
    struct dirent *e;
    char sub[512];
    while (dp && (e = readdir(dp)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            if (unlink(sub))
                rm_tree(sub);
        }
    if (dp)
        closedir(dp);
    rmdir(path);
}

static const char KEEP_TGM[] = "a model file that must survive", KEEP_SVG[] = "<svg>old</svg>";

/* keep.tgm and keep.svg, holding what they held before the failed run */
static bool kept(void)
{
    char buf[128];
    size_t a = tap_slurp("keep.tgm", buf, sizeof buf);
    bool same = a == sizeof KEEP_TGM - 1 && !memcmp(buf, KEEP_TGM, a);
    size_t b = tap_slurp("keep.svg", buf, sizeof buf);
    return same && b == sizeof KEEP_SVG - 1 && !memcmp(buf, KEEP_SVG, b);
}

#define ON_DATA(d) "--data", d, "--epochs", "1", "--layers", "784,8,10", "--batch", "10", \
                   "--quiet"

/* `train --data DIR` (with --out keep.tgm, --chart keep.svg) fails with
 * exit 1 and a message containing want, before any epoch, leaving both
 * files as they were. */
static void refuses_data(const char *d, const char *want, const char *what)
{
    STATUS(1, "train", ON_DATA(d), "--out", "keep.tgm", "--chart", "keep.svg");
    has(err_buf, want, what);
    ok(!strstr(out_buf, "epoch"), "... before training");
    ok(kept(), "... and --out and --chart are untouched");
}

static void train_files(void)
{
    tap_write_file("keep.tgm", KEEP_TGM, sizeof KEEP_TGM - 1);
    tap_write_file("keep.svg", KEEP_SVG, sizeof KEEP_SVG - 1);

    /* good data, raw; the images gzipped and the labels raw */
    ok(data_dir("good", false), "made a small raw IDX data set");
    STATUS(0, "train", ON_DATA("good"), "--out", "g.tgm", "--chart", "g.svg");
    has(out_buf, "data: good: 50 training, 20 test samples", "--data DIR reads its IDX files");
    ok(exists("g.tgm") && exists("g.svg"), "... and writes the model and the chart");
    has(out_buf, "model saved to g.tgm, chart to g.svg", "... and says so");
#ifdef TG_HAVE_ZLIB
    ok(data_dir("mixed", true), "made a data set of gzipped images and raw labels");
    STATUS(0, "train", ON_DATA("mixed"), "--out", "g.tgm", "--chart", "g.svg");
    has(out_buf, "data: mixed: 50 training, 20 test samples",
        "gzipped images with raw labels are found");
#else
    printf("ok %d - # SKIP gzipped images: this build has no zlib\n", ++tap_count);
#endif

    /* an explicit --data that cannot be read: exit 1, nothing written */
    refuses_data("no/such/dir", "no/such/dir", "a missing --data directory");
    data_dir("nofile", false);
    unlink("nofile/t10k-labels-idx1-ubyte");
    refuses_data("nofile", "t10k-labels-idx1-ubyte", "a missing IDX file is named");
    data_dir("cut", false);
    damage("cut", "train-images-idx3-ubyte", 16 + 30 * 784, 0, 0);
    refuses_data("cut", "truncated", "a truncated IDX file");
    data_dir("flipmagic", false);
    damage("flipmagic", "t10k-images-idx3-ubyte", 0, 2, 0); /* type 0x08 -> 0x09 */
    refuses_data("flipmagic", "t10k-images-idx3-ubyte", "a bit flipped in a header (the type)");
    data_dir("flipdims", false);
    damage("flipdims", "train-images-idx3-ubyte", 0, 7, 6); /* 50 images -> 114 */
    refuses_data("flipdims", "truncated", "a bit flipped in a header (the count)");
    data_dir("fliplabel", false);
    damage("fliplabel", "t10k-labels-idx1-ubyte", 0, 8 + 3, 7); /* label 3 -> 131 */
    refuses_data("fliplabel", "131", "a bit flipped in a label (out of the classes)");
#ifdef TG_HAVE_ZLIB
    data_dir("flipgz", true);
    damage("flipgz", "train-images-idx3-ubyte.gz", 0, 200, 3);
    refuses_data("flipgz", "train-images-idx3-ubyte.gz", "a bit flipped in a gzipped file");
#endif

    /* --out and --chart are checked before the first epoch */
    STATUS(1, "train", ON_DATA("good"), "--out", "no/such/dir/m.tgm", "--chart", "keep.svg");
    has(err_buf, "no/such/dir/m.tgm", "an --out in a missing directory is refused, named");
    ok(!strstr(out_buf, "epoch") && kept(), "... before training");
    mkdir("adir", 0755);
    STATUS(1, "train", ON_DATA("good"), "--out", "adir", "--chart", "keep.svg");
    has(err_buf, "is a directory", "an --out that is a directory is refused");
    ok(!strstr(out_buf, "epoch") && kept(), "... before training");
    STATUS(1, "train", ON_DATA("good"), "--out", "keep.tgm", "--chart", "no/such/dir/c.svg");
    has(err_buf, "no/such/dir/c.svg", "a --chart in a missing directory is refused, named");
    ok(!strstr(out_buf, "epoch") && kept(), "... before training, the model untouched");
    STATUS(1, "train", ON_DATA("good"), "--out", "keep.tgm", "--chart", "keep.svg/c.svg");
    has(err_buf, "keep.svg/c.svg", "a --chart under a regular file is refused");
    ok(!strstr(out_buf, "epoch") && kept(), "... before training");
    if (geteuid() != 0) {
        mkdir("ro", 0555);
        STATUS(1, "train", ON_DATA("good"), "--out", "keep.tgm", "--chart", "ro/c.svg");
        has(err_buf, "ro/c.svg", "a --chart in a read-only directory is refused");
        ok(!strstr(out_buf, "epoch") && kept(), "... before training");
        chmod("ro", 0755);
    } else {
        printf("ok %d - # SKIP a read-only directory (running as root, which writes anyway)\n",
               ++tap_count);
    }
    STATUS(0, "train", ON_DATA("good"), "--out", "g.tgm", "--no-chart");
    has(out_buf, "model saved to g.tgm", "--no-chart: the model is saved");
    ok(!strstr(out_buf, "chart"), "... and no chart mentioned");
    rm_tree("good");
    rm_tree("mixed");
    rm_tree("nofile");
    rm_tree("cut");
    rm_tree("flipmagic");
    rm_tree("flipdims");
    rm_tree("fliplabel");
    rm_tree("flipgz");
    rm_tree("adir");
    rm_tree("ro");
}

static void tour(void)
{
    unlink("seed002.dot");
    int s = run(NULL);
    ok(s == 0, "the tour runs (exit %d)", s);
    has(out_buf, "1/4  tapegrad check", "the tour runs check");
    has(out_buf, "seed  formulas", "... which prints the summary");
    has(out_buf, "2/4  tapegrad dot seed002", "the tour runs dot seed002");
    ok(exists("seed002.dot"), "... which writes seed002.dot in the current directory");
    has(out_buf, "3/4  tapegrad train", "the tour runs train");
    has(out_buf, "epoch  2/2", "... for two epochs");
    has(out_buf, "4/4  tapegrad eval fashion_mlp.tgm", "the tour runs eval on that model");
    has(out_buf, "confusion matrix", "... which prints the confusion matrix");
    ok(exists("misclassified.svg"), "... and draws the mistakes");
    if (access("/usr/share/datasets/fashion-mnist", F_OK)) {
        has(err_buf, "SYNTHETIC", "... on the synthetic data (Fashion-MNIST is not installed), "
                                  "said loudly");
        has(err_buf, "apt-get install dataset-fashion-mnist", "... with how to install it");
    }
}

int main(int argc, char **argv)
{
    static char abs_prog[4096];
    if (!tr_prog(argc, argv, "test_cli", abs_prog, sizeof abs_prog))
        return 1;
    prog = abs_prog;
    have_dot = tg_dot_available();
    snprintf(dir, sizeof dir, "/tmp/tg_cli_test_XXXXXX");
    if (!tr_enter_tmp(dir))
        return 1;
    usage();
    check();
    check_files();
    dot();
    train();
    train_parsing();
    train_files();
    language_models();
    tour();
    tr_leave_tmp(dir);
    return tap_done();
}
