/* Resumable training (tools/ckpt.c, `tapegrad train --resume`): a run
 * killed with SIGKILL mid-epoch and resumed from its last checkpoint ends
 * with a model file byte-identical to a run that was never stopped (MLP
 * with Adam, MLP with SGD and momentum, the CNN with dropout and batch
 * norm); SIGINT writes a checkpoint and exits with 130; a checkpoint loads
 * as a model; wrong files and options are refused with a message.
 * Usage: test_resume /path/to/tapegrad */
#include "tapegrad.h"
#include "test_run.h"

#include <signal.h>
#include <time.h>

static const char *prog;
static char dir[64];
static char out_buf[16384], err_buf[16384];

/* Start prog with args (NULL-terminated argv without argv[0]) and, when
 * env_add is set, that one more environment variable; stdout and stderr go
 * to out.txt and err.txt.  The pid, or -1. */
static pid_t start(const char *env_add, char *const *args)
{
    char *argv[40], *envp[512];
    int n = 0, m = 0;
    argv[n++] = (char *)prog;
    for (int i = 0; args[i] && n < 39; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    for (char **e = environ; *e && m < 510; e++)
        if (strncmp(*e, "TAPEGRAD_TEST_", 14))
            envp[m++] = *e;
    if (env_add)
        envp[m++] = (char *)env_add;
    envp[m] = NULL;
    pid_t pid;
    return tr_spawn(argv, envp, &pid) ? -1 : pid;
}

static void slurp(void)
{
    tr_slurp("out.txt", out_buf, sizeof out_buf);
    tr_slurp("err.txt", err_buf, sizeof err_buf);
}

/* Wait for pid at most `limit` seconds (then SIGKILL it: a test never
 * hangs); its wait status, or -1 when it had to be killed. */
static int finish(pid_t pid, double limit)
{
    int st = 0;
    for (long k = 0;; k++) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            return -1;
        if (k * 0.01 > limit) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            slurp();
            return -1;
        }
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    }
    slurp();
    return st;
}

/* Run to the end (at most 240 s): the wait status. */
static int run(const char *env_add, char *const *args) { return finish(start(env_add, args), 240); }

static bool exited(int st, int code) { return st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == code; }

static bool same_file(const char *a, const char *b)
{
    size_t na, nb;
    char *pa = tap_read_file(a, &na), *pb = tap_read_file(b, &nb);
    bool same = pa && pb && na == nb && !memcmp(pa, pb, na);
    free(pa);
    free(pb);
    return same;
}

static bool exists(const char *p)
{
    struct stat st;
    return !stat(p, &st) && st.st_size > 0;
}

/* The "train loss ... test accuracy ...%" of each epoch line of buf, from
 * epoch `from` on, joined (the times differ between runs). */
static void epoch_results(const char *buf, int from, char *dst, size_t len)
{
    size_t used = 0;
    dst[0] = 0;
    for (const char *p = buf; (p = strstr(p, "epoch ")); p++) {
        int e = atoi(p + 6);
        const char *l = strstr(p, "train loss"), *a = l ? strstr(l, "%") : NULL;
        const char *nl = strchr(p, '\n');
        if (e >= from && l && a && (!nl || a < nl) && used + (size_t)(a - l) + 2 < len)
            used += (size_t)snprintf(dst + used, len - used, "%.*s;", (int)(a - l + 1), l);
    }
}

#define ARGS(...) ((char *const[]){__VA_ARGS__, NULL})

/* The uninterrupted run (out a_out) against one killed after step kill_at
 * that wrote a checkpoint every `every` steps, then resumed (out b_out). */
static void killed_and_resumed(const char *what, char *const *opts, int n_opts,
                               const char *a_out, const char *b_out, const char *every,
                               const char *kill_at, int resumed_epoch)
{
    char *args[40];
    int n = 0;
    for (int i = 0; i < n_opts; i++)
        args[n++] = opts[i];
    args[n++] = "--out";
    args[n++] = (char *)a_out;
    args[n] = NULL;
    int st = run(NULL, args);
    ok(exited(st, 0), "%s: the uninterrupted run succeeds", what);
    if (!exited(st, 0))
        diag("%s", err_buf);
    char want[2048], got[2048], ckpt[256], env[64];
    epoch_results(out_buf, resumed_epoch, want, sizeof want);
    args[n - 1] = (char *)b_out;
    args[n++] = "--checkpoint-every";
    args[n++] = (char *)every;
    args[n] = NULL;
    snprintf(env, sizeof env, "TAPEGRAD_TEST_KILL_AT_STEP=%s", kill_at);
    st = run(env, args);
    ok(st >= 0 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
       "%s: the second run is killed by SIGKILL after step %s", what, kill_at);
    snprintf(ckpt, sizeof ckpt, "%s.ckpt", b_out);
    ok(exists(ckpt), "%s: it left a checkpoint %s", what, ckpt);
    args[n++] = "--resume";
    args[n++] = ckpt;
    args[n] = NULL;
    st = run(NULL, args);
    ok(exited(st, 0), "%s: --resume %s succeeds", what, ckpt);
    if (!exited(st, 0))
        diag("%s", err_buf);
    char line[400];
    snprintf(line, sizeof line, "resumed from %s: epoch %d,", ckpt, resumed_epoch);
    has_str(out_buf, line, "%s: it says where it resumed", what);
    has_str(out_buf, "\npeak resident memory ", "%s: it ends with its peak resident memory", what);
    epoch_results(out_buf, resumed_epoch, got, sizeof got);
    ok(want[0] && !strcmp(want, got), "%s: the same losses and accuracies from epoch %d on",
       what, resumed_epoch);
    if (strcmp(want, got))
        diag("uninterrupted: %s\nresumed:       %s", want, got);
    ok(same_file(a_out, b_out), "%s: the final model files are byte-identical", what);
}

static char *const MLP[] = {"train", "--synthetic", "--limit", "640", "--batch", "64",
                            "--epochs", "3", "--threads", "1", "--quiet", "--no-chart",
                            "--layers", "784,32,10"};
#define N_MLP (int)(sizeof MLP / sizeof *MLP)

static void resume(void)
{
    /* 10 steps an epoch: killed in epoch 2 after step 3, last checkpoint at step 12 */
    killed_and_resumed("mlp adam", MLP, N_MLP, "a.tgm", "b.tgm", "4", "13", 2);
    char *sgd[N_MLP + 6];
    memcpy(sgd, MLP, sizeof MLP);
    sgd[N_MLP] = "--opt", sgd[N_MLP + 1] = "sgd", sgd[N_MLP + 2] = "--momentum";
    sgd[N_MLP + 3] = "0.9", sgd[N_MLP + 4] = "--schedule", sgd[N_MLP + 5] = "cosine";
    /* the checkpoint after the last step of epoch 1 (step 10) */
    killed_and_resumed("mlp sgd+momentum cosine", sgd, N_MLP + 6, "c.tgm", "d.tgm", "5", "11",
                       1);
    char *const cnn[] = {"train", "--synthetic", "--model", "cnn", "--limit", "192", "--batch",
                         "32", "--epochs", "2", "--threads", "1", "--quiet", "--no-chart"};
    /* 6 steps an epoch: killed after step 9, resumed from step 8 (epoch 2) */
    killed_and_resumed("cnn (dropout, batch norm)", cnn, (int)(sizeof cnn / sizeof *cnn),
                       "e.tgm", "f.tgm", "4", "9", 2);

    /* a checkpoint is a model file too: its tensors load by name */
    tg_tape *t = tg_tape_new();
    tg_tensor *w = tg_param(t, "W1", TG_F32, 2, SHAPE(784, 32));
    tg_tensor *m = tg_input(t, "optim.W1.adam_m", TG_F32, 2, SHAPE(784, 32));
    ok(tg_load(t, "b.tgm.ckpt", 2, (tg_tensor *[]){w, m}) == 0,
       "the checkpoint loads as a model file (W1 and its Adam moment by name)");
    tg_tensor *w2 = tg_param(t, "W2", TG_F32, 2, SHAPE(32, 10));
    tg_tensor *b1 = tg_param(t, "b1", TG_F32, 1, SHAPE(32));
    tg_tensor *b2 = tg_param(t, "b2", TG_F32, 1, SHAPE(10));
    ok(tg_load(t, "b.tgm", 4, (tg_tensor *[]){w, b1, w2, b2}) == 0,
       "the model file (--out) of a resumed run loads as before");
    tg_tape_free(t);
}

static void interrupt(void)
{
    char *args[40];
    memcpy(args, MLP, sizeof MLP);
    int n = N_MLP;
    args[7] = "100000"; /* --epochs: it cannot finish before the signal */
    args[n++] = "--out", args[n++] = "s.tgm", args[n++] = "--checkpoint-every",
    args[n++] = "1000000", args[n] = NULL;
    unlink("s.tgm");
    pid_t pid = start(NULL, args);
    /* the model file appears after the first epoch: it is training */
    for (int k = 0; k < 6000 && !exists("s.tgm"); k++)
        nanosleep(&(struct timespec){0, 10000000}, NULL);
    kill(pid, SIGINT);
    int st = finish(pid, 60);
    ok(exited(st, 130), "SIGINT during training: exit status 130");
    has_str(err_buf, "stopped by SIGINT", "it says it was stopped");
    has_str(err_buf, "checkpoint written to s.tgm.ckpt", "it names the checkpoint");
    const char *p = strstr(err_buf, "in epoch ");
    int epoch = p ? atoi(p + 9) : 0;
    ok(epoch >= 1, "it names the epoch it stopped in (%d)", epoch);
    if (epoch < 1)
        return;
    /* resumed to the end of that epoch = a run of that many epochs */
    char e[16];
    snprintf(e, sizeof e, "%d", epoch);
    args[7] = e;
    args[n - 1] = "1000000";
    args[n++] = "--resume", args[n++] = "s.tgm.ckpt", args[n] = NULL;
    st = run(NULL, args);
    ok(exited(st, 0), "--resume s.tgm.ckpt --epochs %d finishes the epoch", epoch);
    args[n - 2] = NULL;
    args[N_MLP + 1] = "u.tgm";
    st = run(NULL, args);
    ok(exited(st, 0) && same_file("s.tgm", "u.tgm"),
       "and ends identical to an uninterrupted run of %d epochs", epoch);
}

/* The library calls a user's own loop resumes with: tg_optim_state saved
 * with tg_save and loaded into a fresh optimizer on a fresh tape, and the
 * tape's generator through tg_tape_rng_get/set: the next steps and draws
 * are the same as without the interruption. */
typedef struct tiny {
    tg_tape *t;
    tg_tensor *w, *x, *loss;
    tg_optim *o;
} tiny;

static void tiny_new(tiny *m)
{
    m->t = tg_tape_new();
    m->w = tg_param(m->t, "w", TG_F32, 1, SHAPE(5));
    m->x = tg_input(m->t, "x", TG_F32, 1, SHAPE(5));
    tg_rng r;
    tg_rng_seed(&r, 9);
    tg_init_normal(m->w, &r, 0, 1);
    tg_init_normal(m->x, &r, 0, 1);
    /* dropout draws from the tape's generator */
    m->loss = tg_sum(tg_mul(tg_dropout(tg_mul(m->w, m->w), 0.5), m->x));
    m->o = tg_adam_new(m->t, 1, &m->w, &(tg_adam_opts){.lr = 0.1});
}

static bool tiny_steps(tiny *m, int n)
{
    bool good = true;
    for (int i = 0; i < n; i++) {
        tg_zero_grad(m->t);
        good &= !tg_replay(m->t) && !tg_backward(m->loss) && !tg_optim_step(m->o);
    }
    return good;
}

static void library(void)
{
    tiny a, b;
    tiny_new(&a);
    tiny_new(&b);
    tg_tape_seed(a.t, 5);
    tg_tape_seed(b.t, 5);
    bool ran = tiny_steps(&a, 7) && tiny_steps(&b, 3);
    tg_tensor *st[8];
    int n = tg_optim_state(b.o, NULL, 8, st);
    ok(n == 3 && !strcmp(tg_name(st[0]), "optim.w.adam_m") &&
           !strcmp(tg_name(st[1]), "optim.w.adam_v") && !strcmp(tg_name(st[2]), "optim.steps"),
       "tg_optim_state: Adam's m, v and steps, named (got %d)", n);
    ok(tg_optim_steps(b.o) == 3 && tg_get(st[2], 0) == 3, "the step counter is 3");
    tg_rng g;
    tg_tape_rng_get(b.t, &g);
    tg_tensor *list[4] = {b.w, st[0], st[1], st[2]};
    ok(ran && !tg_save(b.t, "lib.ckpt", 4, list), "saved with the parameter");
    tg_optim_free(b.o);
    tg_tape_free(b.t);
    tiny c; /* a new process: a fresh model, optimizer and tape */
    tiny_new(&c);
    tg_tensor *cs[3];
    tg_optim_state(c.o, NULL, 3, cs);
    tg_tensor *clist[4] = {c.w, cs[0], cs[1], cs[2]};
    ok(!tg_load(c.t, "lib.ckpt", 4, clist) && !tg_tape_rng_set(c.t, &g) &&
           tg_optim_steps(c.o) == 3,
       "loaded into a fresh optimizer: 3 steps taken");
    ok(tiny_steps(&c, 4) && !memcmp(tg_data(c.w), tg_data(a.w), 5 * sizeof(float)),
       "4 more steps: bit-identical to 7 uninterrupted steps (moments, t, dropout masks)");
    ok(tg_optim_steps(c.o) == 7, "and the counter is 7");
    tg_optim_free(a.o);
    tg_optim_free(c.o);
    tg_tape_free(a.t);
    tg_tape_free(c.t);
    unlink("lib.ckpt");
}

static void refusals(void)
{
    char *args[40];
    memcpy(args, MLP, sizeof MLP);
    int n = N_MLP;
    args[n++] = "--out", args[n++] = "r.tgm", args[n++] = "--resume", args[n++] = "none.ckpt";
    args[n] = NULL;
    int st = run(NULL, args);
    ok(exited(st, 1), "--resume of a missing file: exit 1");
    has_str(err_buf, "none.ckpt", "the message names the file");
    args[n - 1] = "a.tgm";
    st = run(NULL, args);
    ok(exited(st, 1), "--resume of a model file (not a checkpoint): exit 1");
    has_str(err_buf, "train.meta", "the message says what is missing");
    args[n - 1] = "b.tgm.ckpt";
    args[5] = "32"; /* --batch */
    st = run(NULL, args);
    ok(exited(st, 2), "--resume with another --batch: exit 2");
    has_str(err_buf, "another --batch (64, this run: 32)", "the message names the option");
    args[5] = "64";
    args[7] = "1"; /* --epochs 1 < the checkpoint's epoch 2 */
    st = run(NULL, args);
    ok(exited(st, 2), "--resume with nothing left to train: exit 2");
    has_str(err_buf, "nothing left to train", "the message says why");
    /* a damaged checkpoint: the checksum catches it */
    size_t len;
    char *buf = tap_read_file("b.tgm.ckpt", &len);
    if (buf && len > 100) {
        buf[len / 2] ^= 0x10;
        tap_write_file("bad.ckpt", buf, len);
    }
    free(buf);
    args[7] = "3";
    args[n - 1] = "bad.ckpt";
    st = run(NULL, args);
    ok(exited(st, 1), "--resume of a damaged checkpoint: exit 1");
    has_str(err_buf, "checksum", "the message names the checksum");
    char *const bad_every[] = {"train", "--synthetic", "--checkpoint-every", "0", NULL};
    st = run(NULL, bad_every);
    ok(exited(st, 2), "--checkpoint-every 0: usage error");
    char *const same[] = {"train", "--synthetic", "--out", "x.tgm", "--checkpoint", "x.tgm",
                          NULL};
    st = run(NULL, same);
    ok(exited(st, 2), "--checkpoint naming --out: usage error");
}

int main(int argc, char **argv)
{
    static char abs_prog[4096];
    if (!tr_prog(argc, argv, "test_resume", abs_prog, sizeof abs_prog))
        return 1;
    prog = abs_prog;
    snprintf(dir, sizeof dir, "/tmp/tg_resume_test_XXXXXX");
    if (!tr_enter_tmp(dir))
        return 1;
    library();
    resume();
    interrupt();
    refusals();
    tr_leave_tmp(dir);
    return tap_done();
}
