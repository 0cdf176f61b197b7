/* Activation checkpointing: memory and time of a chain of transformer blocks
 * trained with and without it.
 *
 * Each block is a pre-LayerNorm transformer block (as the GPT of `tapegrad
 * train --model gpt`, without the causal mask):
 *   y = x + proj(attn(ln1(x)));  out = y + fc2(gelu(fc1(ln2(y))))
 * with B×T tokens of width D, H heads, an MLP of 4D.  The loss is the mean
 * square of the last block's output.  For each mode (plain, then one
 * checkpoint segment per block) a child process builds the chain, runs
 * `--steps` training steps (replay, backward, SGD) and reports the tape's
 * bytes and its peak resident set (getrusage of the child, so the two modes
 * do not mix), and the median step time.
 *
 *   bench_checkpoint [--blocks 64] [--batch 32] [--ctx 32] [--width 128]
 *                    [--heads 4] [--steps 5] [--threads 1]
 */
#define _DEFAULT_SOURCE /* wait4 */
#include "tapegrad.h"

#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct opts {
    int blocks, batch, ctx, width, heads, steps, threads;
} opts;

typedef struct result {
    double step_ms;
    size_t graph, pools, leaves;
    int ok;
} result;

static tg_tensor *param(tg_tape *T, tg_rng *r, const char *what, int i, int rank, size_t a,
                        size_t b, double std)
{
    char nm[80];
    snprintf(nm, sizeof nm, "block%d.%s", i, what);
    tg_tensor *p = tg_param(T, nm, TG_F32, rank, (size_t[]){a, b});
    if (std > 0)
        tg_init_normal(p, r, 0, std);
    else
        tg_fill(p, std < 0 ? 1 : 0);
    return p;
}

static tg_tensor *linear(tg_tape *T, tg_rng *r, int i, const char *nm, tg_tensor *x, size_t in,
                         size_t out)
{
    char b[48];
    snprintf(b, sizeof b, "%s.b", nm);
    tg_tensor *w = param(T, r, nm, i, 2, in, out, 0.02);
    return tg_add_bias(tg_matmul(x, w), param(T, r, b, i, 1, out, 1, 0));
}

static tg_tensor *block(tg_tape *T, tg_rng *r, const opts *o, int i, tg_tensor *x)
{
    size_t B = (size_t)o->batch, Tn = (size_t)o->ctx, D = (size_t)o->width;
    size_t H = (size_t)o->heads, hd = D / H;
    tg_tensor *h = tg_layer_norm(x, param(T, r, "ln1.g", i, 1, D, 1, -1),
                                 param(T, r, "ln1.b", i, 1, D, 1, 0), 1e-5);
    tg_tensor *qkv = linear(T, r, i, "qkv", h, D, 3 * D); /* [B·T, 3D] */
    qkv = tg_reshape(qkv, 4, (size_t[]){B, Tn, 3 * H, hd});
    qkv = tg_permute(qkv, (int[]){0, 2, 1, 3}); /* [B, 3H, T, hd] */
    tg_tensor *q = tg_slice(qkv, 1, 0, H), *k = tg_slice(qkv, 1, H, H);
    tg_tensor *v = tg_slice(qkv, 1, 2 * H, H);
    tg_tensor *att = tg_softmax(tg_scale(tg_bmm(q, k, false, true), 1 / sqrt((double)hd)));
    tg_tensor *y = tg_permute(tg_bmm(att, v, false, false), (int[]){0, 2, 1, 3});
    y = tg_reshape(y, 2, (size_t[]){B * Tn, D});
    x = tg_add(x, linear(T, r, i, "proj", y, D, D));
    h = tg_layer_norm(x, param(T, r, "ln2.g", i, 1, D, 1, -1),
                      param(T, r, "ln2.b", i, 1, D, 1, 0), 1e-5);
    h = tg_gelu(linear(T, r, i, "fc1", h, D, 4 * D));
    return tg_add(x, linear(T, r, i, "fc2", h, 4 * D, D));
}

static void run(const opts *o, bool ckpt, result *res)
{
    tg_set_threads(o->threads);
    tg_tape *T = tg_tape_new();
    tg_rng r;
    tg_rng_seed(&r, 1);
    size_t rows = (size_t)o->batch * (size_t)o->ctx, D = (size_t)o->width;
    tg_tensor *x = tg_input(T, "x", TG_F32, 2, (size_t[]){rows, D});
    tg_init_normal(x, &r, 0, 1);
    for (int i = 0; i < o->blocks; i++) {
        if (ckpt)
            tg_checkpoint_begin(T);
        x = block(T, &r, o, i, x);
        if (ckpt)
            tg_checkpoint_end(T, 1, &x);
    }
    tg_tensor *loss = tg_mean(tg_mul(x, x));
    tg_optim *opt = tg_sgd_new(T, 0, NULL, &(tg_sgd_opts){.lr = 1e-3});
    double t[64];
    int steps = o->steps < 64 ? o->steps : 64;
    res->ok = loss && opt && !tg_backward(loss);
    for (int s = 0; s < steps && res->ok; s++) {
        double t0 = bench_now_s();
        res->ok = !tg_replay(T) && (tg_zero_grad(T), !tg_backward(loss)) && !tg_optim_step(opt);
        t[s] = bench_now_s() - t0;
    }
    if (!res->ok)
        fprintf(stderr, "bench_checkpoint: %s\n", tg_tape_error(T));
    tg_tape_stats st;
    tg_tape_get_stats(T, &st);
    res->graph = st.graph_bytes, res->pools = st.checkpoint_bytes, res->leaves = st.leaf_bytes;
    res->step_ms = steps ? 1e3 * bench_median(t, (size_t)steps) : 0;
    tg_optim_free(opt);
    tg_tape_free(T);
}

/* Run one mode in a child; its result through a pipe, its peak RSS from wait4. */
static int measure(const opts *o, bool ckpt, result *res, long *rss_kb)
{
    int fd[2];
    if (pipe(fd))
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(fd[0]);
        result r = {0};
        run(o, ckpt, &r);
        ssize_t w = write(fd[1], &r, sizeof r);
        _exit(w == (ssize_t)sizeof r && r.ok ? 0 : 1);
    }
    close(fd[1]);
    ssize_t got = read(fd[0], res, sizeof *res);
    close(fd[0]);
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid || got != (ssize_t)sizeof *res || status != 0)
        return -1;
    *rss_kb = ru.ru_maxrss;
    return 0;
}

int main(int argc, char **argv)
{
    opts o = {64, 32, 32, 128, 4, 5, 1};
    for (int i = 1; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--blocks")) o.blocks = v;
        else if (!strcmp(argv[i], "--batch")) o.batch = v;
        else if (!strcmp(argv[i], "--ctx")) o.ctx = v;
        else if (!strcmp(argv[i], "--width")) o.width = v;
        else if (!strcmp(argv[i], "--heads")) o.heads = v;
        else if (!strcmp(argv[i], "--steps")) o.steps = v;
        else if (!strcmp(argv[i], "--threads")) o.threads = v;
        else {
            fprintf(stderr, "bench_checkpoint: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (o.blocks < 1 || o.batch < 1 || o.ctx < 1 || o.heads < 1 || o.width < o.heads ||
        o.width % o.heads || o.steps < 1 || o.threads < 1) {
        fprintf(stderr, "bench_checkpoint: bad sizes\n");
        return 2;
    }
    printf("%d transformer blocks, batch %d x ctx %d, width %d, %d heads, f32, %d thread(s), "
           "%d steps\n", o.blocks, o.batch, o.ctx, o.width, o.heads, o.threads, o.steps);
    printf("%-14s %12s %12s %12s %14s %12s\n", "mode", "graph MiB", "pools MiB", "params MiB",
           "peak RSS MiB", "ms/step");
    double ms[2];
    for (int m = 0; m < 2; m++) {
        result r;
        long rss;
        if (measure(&o, m == 1, &r, &rss)) {
            fprintf(stderr, "bench_checkpoint: the %s run failed\n", m ? "checkpointed" : "plain");
            return 1;
        }
        ms[m] = r.step_ms;
        printf("%-14s %12.1f %12.1f %12.1f %14.1f %12.1f\n", m ? "checkpointed" : "plain",
               r.graph / 1048576.0, r.pools / 1048576.0, r.leaves / 1048576.0, rss / 1024.0,
               r.step_ms);
    }
    printf("checkpointed step time: %.2fx the plain one\n", ms[1] / ms[0]);
    return 0;
}
