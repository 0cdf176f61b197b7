/* tapegrad train --model gpt|gru: a character-level language model on a
 * word list (seeds/lm.h), and tapegrad generate: words sampled from a saved
 * one.
 *
 * The recipe (seeds/lm.h states it; tests/bench/torch_gpt.py and
 * torch_gru.py replicate it): the word list split by tg_text_load with
 * val_fraction LM_VAL_FRACTION (0.1) and seed LM_SPLIT_SEED (1234); step s
 * trains on tg_text_batch(text, 0, --seed, s); AdamW, betas 0.9 / 0.95,
 * eps 1e-8, weight decay 0.1 on the matrices only (m->decay); gradients
 * clipped to a global norm of 1.0; learning rate: linear warmup over
 * --warmup steps, then cosine down to lr/10 at the last step (lm_lr).  The
 * defaults of each model are in one place, lm_recipe_default (seeds/lm.c):
 * gpt 4 layers, 4 heads, width 128, ctx 32, batch 32, lr 3e-3, 2000 steps,
 * warmup 100; gru 1 layer of width 256, ctx 32, batch 32, lr 3e-3, 2000
 * steps, warmup 100.  Initialisation: each builder's (gpt.c: nanoGPT's;
 * gru_lm.c: PyTorch's defaults).
 *
 * A step is: the batch into x, y; tg_zero_grad; tg_replay; tg_backward;
 * tg_clip_grad_norm; the two optimizer steps.  It records and allocates
 * nothing.  Every --eval-every steps: the mean training loss since the last
 * line, the validation loss (lm_eval: mean cross-entropy over the
 * validation windows, evaluation mode), the learning rate and ms/step; the
 * model is saved then (atomically) and at the end, and five sampled words
 * are printed. */
#include "cli.h"

#include "lm.h"

#include "chart.h" /* --chart and --metrics (tools/chart.c) */

#include "io.h" /* tg_atomic: checking --out before training */

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef struct lm_opts {
    lm_recipe r;
    const char *text, *out;
    const char *chart, *metrics; /* --chart (NULL: --no-chart), --metrics (NULL: none) */
    int threads, eval_every;
    size_t eval_rows; /* 0: all the validation windows */
    bool quiet;
} lm_opts;

static void train_usage(FILE *f)
{
    lm_recipe g, r;
    lm_recipe_default(LM_GPT, &g);
    lm_recipe_default(LM_GRU, &r);
    fprintf(f,
            "usage: tapegrad train --model gpt|gru [options]\n"
            "Train a character-level language model on a word list (one word per line)\n"
            "and print words it makes up.\n"
            "\n"
            "  --model gpt|gru    gpt: token + position embeddings, L pre-LayerNorm\n"
            "                     transformer blocks (causal attention of H heads, MLP\n"
            "                     D-4D-D with GELU), final layer norm, linear to the\n"
            "                     vocabulary; gru: token embedding, L GRU layers of width D,\n"
            "                     linear to the vocabulary\n"
            "  --text FILE        the word list (default " LM_DEFAULT_TEXT ",\n"
            "                     Debian package wamerican); 10%% of the words (shuffled,\n"
            "                     seed %u) are kept for the validation loss\n"
            "  --steps N          optimizer steps (default %d)\n"
            "  --batch B          sequences a step (default %d)\n"
            "  --ctx T            characters a sequence (default %d)\n"
            "  --layers L         default %d (gpt), %d (gru)\n"
            "  --heads H          gpt: attention heads, dividing D (default %d)\n"
            "  --width D          default %d (gpt), %d (gru)\n"
            "  --dropout P        gpt: dropout after attention and MLP (default 0)\n"
            "  --lr X             peak learning rate (default %g)\n"
            "  --warmup N         linear warmup steps, then cosine to lr/10 (default %d,\n"
            "                     at most 10%% of --steps)\n"
            "  --checkpoint       activation checkpointing: less memory, more compute\n"
            "  --eval-every K     a line (and the model saved) every K steps (default 100)\n"
            "  --eval-rows N      validation windows per evaluation (default: all)\n"
            "  --threads N        worker threads (default: TAPEGRAD_THREADS or all CPUs)\n"
            "  --seed S           initialisation and batch order (default 1)\n"
            "  --out FILE         the model (default words_gpt.tgm / words_gru.tgm)\n"
            "  --chart FILE       SVG chart, rewritten at every evaluation (default\n"
            "                     train.svg): the training loss of every step and its\n"
            "                     moving average, the validation loss, the learning rate\n"
            "  --no-chart         no chart\n"
            "  --metrics FILE     CSV, rewritten at every evaluation: the header\n"
            "                     step,epoch,split,loss,accuracy,lr,seconds then one row per\n"
            "                     step (split train: the batch's loss) and one per\n"
            "                     evaluation (split val: the validation loss); epoch and\n"
            "                     accuracy are empty, seconds count from the first step\n"
            "  --quiet            only the final lines\n"
            "Training: AdamW (betas %g, %g; weight decay %g on the matrices), gradient\n"
            "norm clipped to %g.  `tapegrad generate FILE` samples words from the model.\n"
            "\n"
            "Exit status: 0 when the model was written; 1 when the word list cannot be\n"
            "read, --out, --chart or --metrics cannot be written or training fails (a\n"
            "chart or metrics write that fails during training is reported, training\n"
            "goes on, and the run ends with 1); 2 usage error.\n",
            LM_SPLIT_SEED, g.steps, g.cfg.batch, g.cfg.ctx, g.cfg.layers, r.cfg.layers,
            g.cfg.heads, g.cfg.width, r.cfg.width, g.lr, g.warmup, LM_BETA1, LM_BETA2,
            LM_WEIGHT_DECAY, LM_CLIP);
}

static const char GEN_USAGE[] =
    "usage: tapegrad generate MODEL [--n N] [--temperature T] [--top-k K]\n"
    "                        [--seed S] [--prefix STR] [--max-len N]\n"
    "\n"
    "Load a model saved by `tapegrad train --model gpt|gru` and print N words it\n"
    "makes up, one a line: each starts after a newline (and the prefix) and ends\n"
    "at the first sampled newline.\n"
    "\n"
    "  --n N              words (default 10)\n"
    "  --temperature T    sampling temperature, 0 for the most likely letter\n"
    "                     (default 1)\n"
    "  --top-k K          sample among the K most likely letters (default: all)\n"
    "  --seed S           default 1\n"
    "  --prefix STR       every word starts with STR\n"
    "  --max-len N        bytes a word at most (default 64)\n"
    "\n"
    "Exit status: 0; 1 when the model cannot be loaded; 2 usage error.\n";

/* ---- options ------------------------------------------------------------- */

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int usage_error(const char *cmd, const char *fmt, ...)
{
    fprintf(stderr, "tapegrad %s: ", cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n\n", stderr);
    if (!strcmp(cmd, "train"))
        train_usage(stderr);
    else
        fputs(GEN_USAGE, stderr);
    return 2;
}

/* One valued option; false with what was expected in *want. */
static bool set_option(lm_opts *o, const char *a, const char *v, const char **want)
{
    uint64_t u = 0;
    lm_config *c = &o->r.cfg;
    bool ok;
    if (!strcmp(a, "--text")) {
        o->text = v, ok = *v != 0, *want = "a file name";
    } else if (!strcmp(a, "--out")) {
        o->out = v, ok = *v != 0, *want = "a file name";
    } else if (!strcmp(a, "--chart")) {
        o->chart = v, ok = *v != 0, *want = "a file name";
    } else if (!strcmp(a, "--metrics")) {
        o->metrics = v, ok = *v != 0, *want = "a file name";
    } else if (!strcmp(a, "--steps")) {
        ok = cli_whole(v, 1, 10000000, &u), o->r.steps = (int)u, *want = "a whole number in 1..10000000";
    } else if (!strcmp(a, "--batch")) {
        ok = cli_whole(v, 1, 4096, &u), c->batch = (int)u, *want = "a whole number in 1..4096";
    } else if (!strcmp(a, "--ctx")) {
        ok = cli_whole(v, 1, 4096, &u), c->ctx = (int)u, *want = "a whole number in 1..4096";
    } else if (!strcmp(a, "--layers")) {
        ok = cli_whole(v, 1, 64, &u), c->layers = (int)u, *want = "a whole number in 1..64";
    } else if (!strcmp(a, "--heads")) {
        ok = cli_whole(v, 1, 4096, &u), c->heads = (int)u, *want = "a whole number in 1..4096";
    } else if (!strcmp(a, "--width")) {
        ok = cli_whole(v, 1, 4096, &u), c->width = (int)u, *want = "a whole number in 1..4096";
    } else if (!strcmp(a, "--dropout")) {
        ok = cli_number(v, 0, 0.95, &c->dropout), *want = "a number in [0, 0.95]";
    } else if (!strcmp(a, "--lr")) {
        ok = cli_number(v, 0, 10, &o->r.lr), *want = "a number in [0, 10]";
    } else if (!strcmp(a, "--warmup")) {
        ok = cli_whole(v, 0, 10000000, &u), o->r.warmup = (int)u, *want = "a whole number in 0..10000000";
    } else if (!strcmp(a, "--eval-every")) {
        ok = cli_whole(v, 1, 10000000, &u), o->eval_every = (int)u,
        *want = "a whole number in 1..10000000";
    } else if (!strcmp(a, "--eval-rows")) {
        ok = cli_whole(v, 1, 100000000, &u), o->eval_rows = (size_t)u,
        *want = "a whole number in 1..100000000";
    } else if (!strcmp(a, "--threads")) {
        ok = cli_whole(v, 1, 1024, &u), o->threads = (int)u, *want = "a whole number in 1..1024";
    } else if (!strcmp(a, "--seed")) {
        ok = cli_whole(v, 0, UINT64_MAX, &u), c->seed = u,
        *want = "a whole number in 0..18446744073709551615";
    } else {
        return *want = NULL, false;
    }
    return ok;
}

/* Returns -1 to go on, else an exit status. */
static int parse_train(int argc, char **argv, lm_opts *o)
{
    const char *model = NULL;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--model"))
            model = argv[i + 1];
    int which = model && !strcmp(model, "gpt") ? LM_GPT : LM_GRU;
    *o = (lm_opts){.text = LM_DEFAULT_TEXT, .eval_every = 100, .chart = "train.svg"};
    bool no_chart = false;
    lm_recipe_default(which, &o->r);
    bool heads_given = false, warmup_given = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            train_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--checkpoint")) {
            o->r.cfg.checkpoint = 1;
            continue;
        } else if (!strcmp(a, "--quiet")) {
            o->quiet = true;
            continue;
        } else if (!strcmp(a, "--no-chart")) {
            no_chart = true;
            continue;
        }
        if (a[0] != '-')
            return usage_error("train", "unexpected argument '%s' (options start with --)", a);
        if (i + 1 == argc)
            return usage_error("train", "%s needs a value", a);
        const char *v = argv[++i], *want = NULL;
        if (!strcmp(a, "--model")) {
            if (strcmp(v, "gpt") && strcmp(v, "gru"))
                return usage_error("train", "bad value '%s' for --model: expected gpt or gru "
                                   "(or mlp, cnn: tapegrad train --help)", v);
            continue;
        }
        heads_given |= !strcmp(a, "--heads");
        warmup_given |= !strcmp(a, "--warmup");
        if (!set_option(o, a, v, &want))
            return want ? usage_error("train", "bad value '%s' for %s: expected %s", v, a, want)
                        : usage_error("train", "unknown option '%s'", a);
    }
    lm_config *c = &o->r.cfg;
    if (which == LM_GPT && c->width % c->heads)
        return usage_error("train", "--width %d is not a multiple of --heads %d", c->width,
                           c->heads);
    if (which == LM_GRU && (heads_given || c->dropout > 0))
        return usage_error("train", "--heads and --dropout are for --model gpt");
    if (!warmup_given && o->r.warmup > o->r.steps / 10) /* short runs: 10% */
        o->r.warmup = o->r.steps / 10;
    if (o->r.warmup > o->r.steps)
        return usage_error("train", "--warmup %d is more than --steps %d", o->r.warmup,
                           o->r.steps);
    if (!o->out)
        o->out = which == LM_GPT ? "words_gpt.tgm" : "words_gru.tgm";
    if (no_chart)
        o->chart = NULL;
    const char *files[3] = {o->out, o->chart, o->metrics};
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (files[i] && files[j] && !strcmp(files[i], files[j]))
                return usage_error("train", "--out, --chart and --metrics name the same file "
                                   "(%s)", files[i]);
    return -1;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* --out can be replaced the way tg_save does it: 0, or 1 with a message. */
static int writable(const char *path)
{
    struct stat st;
    if (!stat(path, &st) && !S_ISREG(st.st_mode)) {
        fprintf(stderr, "tapegrad train: --out %s %s\n", path,
                S_ISDIR(st.st_mode) ? "is a directory" : "is not a regular file");
        return 1;
    }
    tg_atomic a;
    if (tg_atomic_open(&a, "--out", path)) {
        fprintf(stderr, "tapegrad train: %s\n", a.msg);
        return 1;
    }
    tg_atomic_abort(&a);
    return 0;
}

/* ---- training ------------------------------------------------------------ */

typedef struct run {
    lm_opts o;
    tg_text text;
    lm_model m;
    tg_optim *opt_decay, *opt_rest;
    tg_err err;
    cli_log log; /* every step and evaluation: --chart, --metrics */
    bool views_failed; /* a chart or metrics write failed */
    char title[160];
} run;

static int tape_fail(run *s, const char *what)
{
    fprintf(stderr, "tapegrad train: %s: %s\n", what,
            s->m.tape && tg_tape_error(s->m.tape) ? tg_tape_error(s->m.tape) : "out of memory");
    return 1;
}

static int setup(run *s)
{
    lm_opts *o = &s->o;
    if (o->threads && tg_set_threads(o->threads)) {
        fprintf(stderr, "tapegrad train: cannot use %d threads\n", o->threads);
        return 2;
    }
    if (writable(o->out))
        return 1;
    char why[600];
    if ((o->chart && cli_check_writable("--chart", o->chart, why, sizeof why)) ||
        (o->metrics && cli_check_writable("--metrics", o->metrics, why, sizeof why))) {
        fprintf(stderr, "tapegrad train: %s\n", why);
        return 1;
    }
    if (tg_text_load(o->text, LM_VAL_FRACTION, LM_SPLIT_SEED, &s->text, &s->err)) {
        fprintf(stderr, "tapegrad train: cannot read the word list: %s\n", s->err.msg);
        if (!strcmp(o->text, LM_DEFAULT_TEXT))
            fprintf(stderr, "  (the default word list comes from the Debian package wamerican: "
                            "apt-get install wamerican; --text FILE reads another)\n");
        return 1;
    }
    lm_config *c = &o->r.cfg;
    c->vocab = s->text.vocab;
    if (s->text.n_train <= (size_t)c->ctx || s->text.n_val <= (size_t)c->ctx) {
        fprintf(stderr, "tapegrad train: %s: the splits have %zu and %zu characters; --ctx %d "
                        "needs more in each\n", o->text, s->text.n_train, s->text.n_val, c->ctx);
        return 1;
    }
    if (lm_build(&s->m, c, &s->err)) {
        fprintf(stderr, "tapegrad train: %s\n", s->err.msg);
        return 1;
    }
    snprintf(s->title, sizeof s->title, "%s, %d layer%s, width %d, ctx %d, batch %d",
             c->model == LM_GPT ? "gpt" : "gru", c->layers, c->layers > 1 ? "s" : "", c->width,
             c->ctx, c->batch);
    cli_log_init(&s->log, s->title, "val", 0);
    /* AdamW: weight decay on the matrices only */
    tg_tensor *rest[LM_MAX_PARAMS];
    int n_rest = 0;
    for (int i = 0; i < s->m.n_params; i++) {
        bool decays = false;
        for (int j = 0; j < s->m.n_decay; j++)
            decays |= s->m.decay[j] == s->m.params[i];
        if (!decays)
            rest[n_rest++] = s->m.params[i];
    }
    tg_adam_opts ao = {.lr = o->r.lr > 0 ? o->r.lr : 1e-3, .beta1 = LM_BETA1,
                       .beta2 = LM_BETA2, .eps = LM_EPS, .decoupled = true};
    ao.weight_decay = LM_WEIGHT_DECAY;
    if (s->m.n_decay)
        s->opt_decay = tg_adam_new(s->m.tape, s->m.n_decay, s->m.decay, &ao);
    ao.weight_decay = 0;
    if (n_rest)
        s->opt_rest = tg_adam_new(s->m.tape, n_rest, rest, &ao);
    if ((s->m.n_decay && !s->opt_decay) || (n_rest && !s->opt_rest))
        return tape_fail(s, "optimizer");
    return -1;
}

static void print_setup(const run *s)
{
    const lm_opts *o = &s->o;
    const lm_config *c = &s->m.cfg;
    size_t n = 0;
    for (int i = 0; i < s->m.n_params; i++)
        n += tg_size(s->m.params[i]);
    printf("data: %s: %zu train words (%zu characters), %zu val words (%zu), vocabulary %d\n",
           o->text, s->text.words_train, s->text.n_train, s->text.words_val, s->text.n_val,
           c->vocab);
    if (c->model == LM_GPT)
        printf("model: gpt, %d layers, %d heads, width %d, ctx %d, dropout %g%s: %zu parameters\n",
               c->layers, c->heads, c->width, c->ctx, c->dropout,
               c->checkpoint ? ", checkpointed" : "", n);
    else
        printf("model: gru, %d layer%s of width %d, ctx %d%s: %zu parameters\n", c->layers,
               c->layers > 1 ? "s" : "", c->width, c->ctx, c->checkpoint ? ", checkpointed" : "", n);
    printf("training: %d steps of batch %d, AdamW lr %g (warmup %d, cosine to %g), betas %g %g, "
           "weight decay %g, clip %g, seed %llu, %d thread%s, %s kernels\n",
           o->r.steps, c->batch, o->r.lr, o->r.warmup, o->r.lr * LM_MIN_LR_RATIO, LM_BETA1,
           LM_BETA2, LM_WEIGHT_DECAY, LM_CLIP, (unsigned long long)c->seed, tg_get_threads(),
           tg_get_threads() > 1 ? "s" : "", tg_isa());
    fflush(stdout);
}

static int one_step(run *s, int step, double *loss)
{
    lm_model *m = &s->m;
    double lr = lm_lr(s->o.r.lr, s->o.r.warmup, s->o.r.steps, step);
    if (tg_text_batch(&s->text, 0, m->cfg.seed, (uint64_t)step, m->x, m->y, &s->err)) {
        fprintf(stderr, "tapegrad train: %s\n", s->err.msg);
        return 1;
    }
    tg_zero_grad(m->tape);
    if (tg_replay(m->tape) || tg_backward(m->loss))
        return tape_fail(s, "step");
    if (tg_clip_grad_norm(m->tape, m->n_params, m->params, LM_CLIP) < 0)
        return tape_fail(s, "clipping");
    tg_optim *opts[2] = {s->opt_decay, s->opt_rest};
    for (int i = 0; i < 2; i++) {
        if (!opts[i])
            continue;
        tg_optim_set_lr(opts[i], lr);
        if (tg_optim_step(opts[i]))
            return tape_fail(s, "optimizer");
    }
    *loss = tg_item(m->loss);
    if (cli_log_step(&s->log, *loss, lr, 0)) {
        fprintf(stderr, "tapegrad train: out of memory\n");
        return 1;
    }
    if (!isfinite(*loss)) {
        fprintf(stderr, "tapegrad train: the loss is %g at step %d; try a lower --lr\n", *loss,
                step + 1);
        return 1;
    }
    return -1;
}

static int save(run *s)
{
    if (lm_save(&s->m, s->text.byte_of, s->o.out, &s->err)) {
        fprintf(stderr, "tapegrad train: %s\n", s->err.msg);
        return 1;
    }
    return -1;
}

/* Five words from the saved model (loaded back with batch 1). */
static int samples(run *s)
{
    lm_model g;
    int byte_of[256];
    if (lm_load(&g, s->o.out, 1, byte_of, &s->err)) {
        fprintf(stderr, "tapegrad train: reading the model back: %s\n", s->err.msg);
        return 1;
    }
    tg_rng rng;
    tg_rng_seed(&rng, s->m.cfg.seed);
    lm_sample_opts so = {.temperature = 1.0};
    printf("samples:");
    int rc = -1;
    for (int i = 0; i < 5; i++) {
        char w[128];
        if (lm_generate(&g, byte_of, NULL, &so, &rng, w, sizeof w, &s->err) < 0) {
            fprintf(stderr, "\ntapegrad train: %s\n", s->err.msg);
            rc = 1;
            break;
        }
        printf(" %s", w);
    }
    printf("\n");
    lm_free(&g);
    return rc;
}

static int train_loop(run *s)
{
    const lm_opts *o = &s->o;
    print_setup(s);
    double sum = 0, t_steps = 0, last_val = NAN;
    int since = 0;
    for (int step = 0; step < o->r.steps; step++) {
        double t0 = now(), loss;
        int st = one_step(s, step, &loss);
        if (st >= 0)
            return st;
        t_steps += now() - t0;
        sum += loss;
        since++;
        bool last = step + 1 == o->r.steps;
        if ((step + 1) % o->eval_every && !last)
            continue;
        if (lm_eval(&s->m, &s->text, 1, o->eval_rows, &last_val, &s->err)) {
            fprintf(stderr, "tapegrad train: %s\n", s->err.msg);
            return 1;
        }
        if (!o->quiet || last)
            printf("step %6d  train loss %.4f  val loss %.4f  lr %.3e  %.1f ms/step\n", step + 1,
                   sum / since, last_val,
                   lm_lr(o->r.lr, o->r.warmup, o->r.steps, step), 1e3 * t_steps / since);
        fflush(stdout);
        sum = t_steps = 0;
        since = 0;
        if ((st = save(s)) >= 0)
            return st;
        if (cli_log_eval(&s->log, last_val, NAN, 0)) {
            fprintf(stderr, "tapegrad train: out of memory\n");
            return 1;
        }
        char why[600]; /* a chart or metrics that fail: reported, training goes on, status 1 */
        if (o->chart && cli_chart_write(&s->log, "--chart", o->chart, why, sizeof why))
            s->views_failed = true, fprintf(stderr, "tapegrad train: the chart was not written: "
                                                    "%s\n", why);
        if (o->metrics && cli_metrics_write(&s->log, "--metrics", o->metrics, why, sizeof why))
            s->views_failed = true, fprintf(stderr, "tapegrad train: the metrics were not "
                                                    "written: %s\n", why);
    }
    printf("model saved to %s (val loss %.4f)\n", o->out, last_val);
    if (o->chart || o->metrics)
        printf("%s%s%s%s%s\n", o->chart ? "chart: " : "", o->chart ? o->chart : "",
               o->chart && o->metrics ? ", " : "", o->metrics ? "metrics: " : "",
               o->metrics ? o->metrics : "");
    int st = samples(s);
    cli_print_peak_memory();
    return st < 0 && s->views_failed ? 1 : st;
}

int cli_train_lm(int argc, char **argv)
{
    run s;
    memset(&s, 0, sizeof s);
    int status = parse_train(argc, argv, &s.o);
    if (status < 0)
        status = setup(&s);
    if (status < 0)
        status = train_loop(&s);
    tg_optim_free(s.opt_decay);
    tg_optim_free(s.opt_rest);
    cli_log_free(&s.log);
    lm_free(&s.m);
    tg_text_free(&s.text);
    return status < 0 ? 0 : status;
}

/* ---- generate ------------------------------------------------------------- */

int cli_generate(int argc, char **argv)
{
    const char *path = NULL, *prefix = NULL;
    uint64_t n = 10, seed = 1, u = 0;
    lm_sample_opts so = {.temperature = 1.0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(GEN_USAGE, stdout);
            return 0;
        }
        if (a[0] != '-' || !a[1]) {
            if (path)
                return usage_error("generate", "one model at a time ('%s' is extra)", a);
            path = a;
            continue;
        }
        if (i + 1 == argc)
            return usage_error("generate", "%s needs a value", a);
        const char *v = argv[++i];
        bool ok;
        const char *want;
        if (!strcmp(a, "--n")) {
            ok = cli_whole(v, 1, 1000000, &n), want = "a whole number in 1..1000000";
        } else if (!strcmp(a, "--temperature")) {
            ok = cli_number(v, 0, 100, &so.temperature), want = "a number in [0, 100]";
        } else if (!strcmp(a, "--top-k")) {
            ok = cli_whole(v, 1, 256, &u), so.top_k = (int)u, want = "a whole number in 1..256";
        } else if (!strcmp(a, "--seed")) {
            ok = cli_whole(v, 0, UINT64_MAX, &seed), want = "a whole number in 0..18446744073709551615";
        } else if (!strcmp(a, "--max-len")) {
            ok = cli_whole(v, 1, 4096, &u), so.max_len = (int)u, want = "a whole number in 1..4096";
        } else if (!strcmp(a, "--prefix")) {
            ok = true, want = "", prefix = v;
        } else {
            return usage_error("generate", "unknown option '%s'", a);
        }
        if (!ok)
            return usage_error("generate", "bad value '%s' for %s: expected %s", v, a, want);
    }
    if (!path)
        return usage_error("generate", "which model? (a file written by tapegrad train "
                                       "--model gpt|gru)");
    if (!so.max_len)
        so.max_len = 64;
    if (prefix && strlen(prefix) >= (size_t)so.max_len)
        return usage_error("generate", "--prefix has %zu bytes; --max-len %d leaves no room",
                           strlen(prefix), so.max_len);
    lm_model m;
    tg_err err;
    int byte_of[256];
    if (lm_load(&m, path, 1, byte_of, &err)) {
        fprintf(stderr, "tapegrad generate: %s\n", err.msg);
        return 1;
    }
    tg_rng rng;
    tg_rng_seed(&rng, seed);
    char *w = malloc((size_t)so.max_len + 1);
    int rc = w ? 0 : 1;
    for (uint64_t i = 0; rc == 0 && i < n; i++) {
        if (lm_generate(&m, byte_of, prefix, &so, &rng, w, (size_t)so.max_len + 1, &err) < 0) {
            fprintf(stderr, "tapegrad generate: %s\n", err.msg);
            rc = 1;
        } else {
            printf("%s\n", w);
        }
    }
    free(w);
    lm_free(&m);
    return rc;
}
