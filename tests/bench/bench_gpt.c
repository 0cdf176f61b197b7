/* bench_gpt: microseconds per replayed training step of the character-level
 * GPT of seeds/lm.h (gpt_build): zero_grad, forward (replay), backward,
 * gradient clipping at 1.0 and an AdamW step (lr 3e-4, weight decay 0.1 on
 * m.decay), the median over S steps after a warm-up, on fixed random tokens.
 *
 *   bench_gpt [--batch 32] [--ctx 32] [--layers 4] [--heads 4] [--width 128]
 *             [--vocab 70] [--threads T] [--steps S] [--dtype f32|f64]
 *             [--checkpoint] [--profile]
 *
 * Prints the library's heap allocations per step (tg_test_control) and, with
 * --profile, the time of each op kind's forward and backward summed over
 * the tape, and of the clipping and the optimizer steps (ten more timed
 * steps, node by node, with the thread's CPU clock; the backward walk is the
 * library's, repeated here with a clock around each node).  Last line: gpt batch=.. ctx=.. layers=.. heads=.. width=..
 * vocab=.. dtype=.. threads=.. us_per_step=X cpu_us_per_step=C allocs_per_step=A
 * (C: the process's CPU time per timed step, all threads).
 * tests/bench/torch_gpt.py step times the same step in PyTorch. */
#define _POSIX_C_SOURCE 200809L
#include "lm.h"
#include "bench.h"
#include "core.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CPU seconds of the process (all its threads) */
static double cpu_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_gpt [--batch B] [--ctx T] [--layers L] [--heads H] "
                    "[--width D] [--vocab V] [--threads N] [--steps S] [--dtype f32|f64] "
                    "[--checkpoint] [--profile]\n");
    return 2;
}

enum { MAX_KINDS = 64 };
typedef struct kind_time {
    const char *name;
    double fwd, bwd; /* seconds */
    int count;
} kind_time;

static kind_time *kind_of(kind_time *k, int *n, const char *name)
{
    for (int i = 0; i < *n; i++)
        if (!strcmp(k[i].name, name))
            return &k[i];
    if (*n == MAX_KINDS)
        return &k[MAX_KINDS - 1];
    k[*n] = (kind_time){.name = name};
    return &k[(*n)++];
}

static int cmp_kind(const void *x, const void *y)
{
    const kind_time *a = x, *b = y;
    double ta = a->fwd + a->bwd, tb = b->fwd + b->bwd;
    return (ta < tb) - (ta > tb);
}

/* CPU seconds of the calling thread: the profile's clock (with --threads 1
 * the work of a node runs on this thread; less disturbed by other load on
 * the machine than the wall clock) */
static double thread_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One forward and one backward node by node, each timed; the same work as
 * tg_replay and tg_backward (without checkpoint segments). */
static void profile(lm_model *m, tg_optim *o1, tg_optim *o2, int reps)
{
    kind_time k[MAX_KINDS];
    int nk = 0;
    tg_tape *t = m->tape;
    double total = 0;
    for (int rep = 0; rep < reps; rep++) {
        tg_zero_grad(t);
        for (size_t i = 0; i < t->n_nodes; i++) {
            tg_node *n = t->nodes[i];
            double t0 = thread_now_s();
            n->op->forward(n);
            double dt = thread_now_s() - t0;
            n->fwd_gen = t->gen;
            kind_time *e = kind_of(k, &nk, n->op->name);
            e->fwd += dt;
            e->count += rep == 0;
            total += dt;
        }
        /* a real backward first prepares the buffers and live flags */
        tg_backward(m->loss);
        t->pass_gen = ++t->gen;
        int acc;
        void *g = tg_grad_acc(m->loss, &acc);
        if (m->loss->dtype == TG_F32)
            *(float *)g = 1;
        else
            *(double *)g = 1;
        for (size_t i = m->loss->node->index + 1; i-- > 0;) {
            tg_node *n = t->nodes[i];
            if (n->out.grad_gen != t->pass_gen)
                continue;
            double t0 = thread_now_s();
            n->op->backward(n);
            double dt = thread_now_s() - t0;
            kind_of(k, &nk, n->op->name)->bwd += dt;
            total += dt;
        }
        double t0 = thread_now_s();
        tg_clip_grad_norm(t, m->n_params, m->params, 1.0);
        double t1 = thread_now_s();
        tg_optim_step(o1);
        tg_optim_step(o2);
        double t2 = thread_now_s();
        kind_of(k, &nk, "(clip)")->fwd += t1 - t0;
        kind_of(k, &nk, "(adamw)")->fwd += t2 - t1;
        total += t2 - t0;
    }
    qsort(k, (size_t)nk, sizeof *k, cmp_kind);
    printf("profile (thread CPU time per step, mean of %d): op kind, nodes, forward us, "
           "backward us, share\n",
           reps);
    for (int i = 0; i < nk; i++)
        printf("  %-14s %4d %9.1f %9.1f %5.1f%%\n", k[i].name, k[i].count, 1e6 * k[i].fwd / reps,
               1e6 * k[i].bwd / reps, 100 * (k[i].fwd + k[i].bwd) / total);
    printf("  %-14s %4zu %19.1f\n", "total", t->n_nodes, 1e6 * total / reps);
}

int main(int argc, char **argv)
{
    long batch = 32, ctx = 32, layers = 4, heads = 4, width = 128, vocab = 70, threads = 1,
         steps = 50;
    const char *dts = "f32";
    bool prof = false, ckpt = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--profile")) {
            prof = true;
            continue;
        }
        if (!strcmp(argv[i], "--checkpoint")) {
            ckpt = true;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return usage();
        long *dst = !strcmp(argv[i], "--batch")     ? &batch
                    : !strcmp(argv[i], "--ctx")     ? &ctx
                    : !strcmp(argv[i], "--layers")  ? &layers
                    : !strcmp(argv[i], "--heads")   ? &heads
                    : !strcmp(argv[i], "--width")   ? &width
                    : !strcmp(argv[i], "--vocab")   ? &vocab
                    : !strcmp(argv[i], "--threads") ? &threads
                    : !strcmp(argv[i], "--steps")   ? &steps
                                                    : NULL;
        if (dst)
            *dst = strtol(v, NULL, 10);
        else if (!strcmp(argv[i], "--dtype"))
            dts = v;
        else
            return usage();
        i++;
    }
    tg_dtype dt = !strcmp(dts, "f64") ? TG_F64 : TG_F32;
    if (threads < 1 || steps < 1 || (dt == TG_F32 && strcmp(dts, "f32")) || batch > 1 << 20 ||
        ctx > 1 << 20 || layers > 64 || heads > 1 << 16 || width > 1 << 16 || vocab > 256)
        return usage();
    tg_set_threads((int)threads);
    lm_config cfg = {.model = LM_GPT, .vocab = (int)vocab, .ctx = (int)ctx, .batch = (int)batch,
                     .layers = (int)layers, .heads = (int)heads, .width = (int)width,
                     .checkpoint = ckpt, .seed = 1, .dtype = dt};
    lm_model m;
    tg_err err;
    if (gpt_build(&m, &cfg, &err)) {
        fprintf(stderr, "bench_gpt: %s\n", err.msg);
        return 1;
    }
    tg_rng r;
    tg_rng_seed(&r, 2);
    int32_t *x = tg_data_i32(m.x), *y = tg_data_i32(m.y);
    for (long i = 0; i < batch * ctx; i++) {
        x[i] = (int32_t)tg_rng_below(&r, (uint64_t)vocab);
        y[i] = (int32_t)tg_rng_below(&r, (uint64_t)vocab);
    }
    tg_optim *opt = tg_adam_new(m.tape, m.n_decay, m.decay,
                                &(tg_adam_opts){.lr = 3e-4, .beta1 = 0.9, .beta2 = 0.95,
                                                .weight_decay = 0.1, .decoupled = true});
    tg_tensor *rest[LM_MAX_PARAMS];
    int n_rest = 0;
    for (int i = 0; i < m.n_params; i++) {
        bool d = false;
        for (int j = 0; j < m.n_decay; j++)
            d |= m.params[i] == m.decay[j];
        if (!d)
            rest[n_rest++] = m.params[i];
    }
    tg_optim *opt2 = tg_adam_new(m.tape, n_rest, rest,
                                 &(tg_adam_opts){.lr = 3e-4, .beta1 = 0.9, .beta2 = 0.95,
                                                 .decoupled = true});
    double *us = malloc((size_t)steps * sizeof *us);
    if (!opt || !opt2 || !us) {
        fprintf(stderr, "bench_gpt: %s\n", us ? tg_tape_error(m.tape) : "out of memory");
        return 1;
    }
    long warm = steps / 10 > 3 ? steps / 10 : 3;
    int64_t allocs = 0;
    double cpu0 = 0;
    for (long s = -warm; s < steps; s++) {
        if (s == 0)
            cpu0 = cpu_now_s();
        int64_t a0 = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
        double t0 = 1e6 * bench_now_s();
        tg_zero_grad(m.tape);
        if (tg_replay(m.tape) || tg_backward(m.loss) ||
            tg_clip_grad_norm(m.tape, m.n_params, m.params, 1.0) < 0 || tg_optim_step(opt) ||
            tg_optim_step(opt2)) {
            fprintf(stderr, "bench_gpt: %s\n", tg_tape_error(m.tape));
            return 1;
        }
        if (s >= 0) {
            us[s] = 1e6 * bench_now_s() - t0;
            allocs += tg_test_control(TG_TEST_ALLOC_COUNT, 0) - a0;
        }
    }
    double cpu_us = 1e6 * (cpu_now_s() - cpu0) / (double)steps;
    double med = bench_median(us, (size_t)steps);
    printf("loss %.4f, fastest step %.0f us, slowest %.0f us, %zu nodes\n", tg_item(m.loss),
           us[0], us[steps - 1], tg_tape_nodes(m.tape));
    if (prof && !ckpt)
        profile(&m, opt, opt2, 10);
    else if (prof)
        printf("(no profile with --checkpoint: segments recompute inside backward)\n");
    printf("gpt batch=%ld ctx=%ld layers=%ld heads=%ld width=%ld vocab=%ld dtype=%s threads=%ld "
           "us_per_step=%.1f cpu_us_per_step=%.1f allocs_per_step=%.2f\n",
           batch, ctx, layers, heads, width, vocab, dts, threads, med, cpu_us,
           (double)allocs / (double)steps);
    free(us);
    tg_optim_free(opt);
    tg_optim_free(opt2);
    tg_tape_free(m.tape);
    return 0;
}
