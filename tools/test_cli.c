/* The tapegrad command, run as a user runs it (no shell): exit statuses,
 * --help, usage errors, `check`, `dot` on every built-in network (the DOT it
 * writes must render with Graphviz without a warning, when Graphviz is
 * installed), and the tour.  Usage: test_cli /path/to/tapegrad */
#include "tap.h"
#include "tapegrad.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *prog;
static char dir[64];
static char out_buf[65536], err_buf[65536];
static bool have_dot;

/* The file at path into buf as a string (empty when it cannot be read). */
static void slurp(const char *path, char *buf, size_t len)
{
    buf[tap_slurp(path, buf, len - 1)] = 0;
}

/* Run prog with args (NULL-terminated) in dir; stdout/stderr into out_buf,
 * err_buf.  Returns the exit status, or -1 when it did not exit. */
static int run(const char *arg, ...)
{
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)prog;
    va_list ap;
    va_start(ap, arg);
    for (const char *a = arg; a && n < 31; a = va_arg(ap, const char *))
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "out.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, "err.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int e = posix_spawn(&pid, prog, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (e) {
        snprintf(err_buf, sizeof err_buf, "spawn: %s", strerror(e));
        out_buf[0] = 0;
        return -1;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    slurp("out.txt", out_buf, sizeof out_buf);
    slurp("err.txt", err_buf, sizeof err_buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
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
    STATUS(2, "check", "extra");
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

static void dot(void)
{
    static const char *nets[] = {"seed000", "seed001", "seed002", "seed003", "seed004",
                                 "fisher", "relusoftmax", "mlp:784,512,10", "mlp:5,3"};
    for (size_t i = 0; i < sizeof nets / sizeof *nets; i++) {
        char path[64];
        snprintf(path, sizeof path, "net%zu.dot", i);
        unlink(path);
        STATUS(0, "dot", nets[i], "-o", path, "--values", "--grads");
        ok(exists(path), "dot %s wrote %s", nets[i], path);
        renders(path);
    }
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
    ok(exists("m.tgm") && exists("c.svg"), "the model and the chart are written");
    STATUS(0, "train", "--data", "no/such/dir", "--epochs", "1", "--layers", "784,16,10",
           "--limit", "2000", "--out", "m2.tgm", "--chart", "c2.svg");
    has(err_buf, "apt-get install dataset-fashion-mnist", "missing data: says how to install it");
    has(err_buf, "synthetic data set instead", "... and trains on the synthetic set");
    STATUS(0, "train", "--synthetic", "--epochs", "1", "--layers", "784,16,10", "--opt", "sgd",
           "--schedule", "cosine", "--limit", "1000", "--out", "m3.tgm", "--chart", "c3.svg");
    STATUS(1, "train", "--synthetic", "--epochs", "1", "--layers", "784,16,10", "--limit",
           "1000", "--out", "no/such/dir/m.tgm", "--chart", "c4.svg");
    has(err_buf, "save", "an unwritable model path fails with the reason");
}

static void tour(void)
{
    unlink("seed002.dot");
    int s = run(NULL);
    ok(s == 0, "the tour runs (exit %d)", s);
    has(out_buf, "1/3  tapegrad check", "the tour runs check");
    has(out_buf, "seed  formulas", "... which prints the summary");
    has(out_buf, "2/3  tapegrad dot seed002", "the tour runs dot seed002");
    ok(exists("seed002.dot"), "... which writes seed002.dot in the current directory");
    has(out_buf, "3/3  tapegrad train", "the tour runs train");
    has(out_buf, "epoch  2/2", "... for two epochs");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        printf("Bail out! usage: test_cli /path/to/tapegrad\n");
        return 1;
    }
    static char abs_prog[4096];
    char cwd[2048];
    if (argv[1][0] == '/')
        snprintf(abs_prog, sizeof abs_prog, "%s", argv[1]);
    else if (getcwd(cwd, sizeof cwd))
        snprintf(abs_prog, sizeof abs_prog, "%s/%s", cwd, argv[1]);
    if (access(abs_prog, X_OK)) {
        printf("Bail out! cannot run %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    prog = abs_prog; /* the tests run in a temporary directory */
    have_dot = tg_dot_available();
    snprintf(dir, sizeof dir, "/tmp/tg_cli_test_XXXXXX");
    if (!mkdtemp(dir) || chdir(dir)) {
        printf("Bail out! cannot make a temporary directory: %s\n", strerror(errno));
        return 1;
    }
    usage();
    check();
    dot();
    train();
    tour();
    DIR *dp = opendir(".");
    struct dirent *e;
    while (dp && (e = readdir(dp)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlink(e->d_name);
    if (dp)
        closedir(dp);
    if (chdir("/") == 0)
        rmdir(dir);
    return tap_done();
}
