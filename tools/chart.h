/* What a training run logs, and the two files made from it: the SVG chart
 * (`--chart`) and the metrics table (`--metrics`).  One module for the
 * MLP, the CNN (tools/train.c) and the language models (tools/train_lm.c).
 *
 * A trainer calls cli_log_step after every optimizer step and
 * cli_log_eval after every evaluation (an epoch's test set, or the LM's
 * validation windows), then writes the chart and the metrics with
 * cli_chart_write and cli_metrics_write, which replace their files
 * atomically (src/io/file.c), so a run can rewrite them after every epoch.
 *
 * The chart (640 px wide, readable at that size) has one panel per kind of
 * value on a shared x axis (epochs, or steps for the language models):
 *   loss      the training loss of every step (light), its exponential moving
 *             average (bias-corrected, span about 1/40 of the run), and the
 *             evaluation loss (dots);
 *   accuracy  the evaluation accuracy (dots), when the trainer logs one;
 *   lr        the learning rate of every step, when it changes during the run.
 * Every axis is zoomed to its data with ticks at round numbers (steps of 1,
 * 2 or 5 times a power of ten); training losses in the top 2% of the run
 * (the first steps) may lie above the loss axis and are clipped, which the
 * chart says.  The elements carry classes a test can find: polyline
 * class="train-step|train-smooth|eval-loss|eval-acc|lr", circles
 * class="eval-loss|eval-acc", tick labels <text class="tick-x|tick-loss|
 * tick-acc|tick-lr">.
 *
 * The metrics file is CSV with a header line and the columns
 *   step,epoch,split,loss,accuracy,lr,seconds
 * one row per optimizer step (split "train": that step's batch loss) and
 * one per evaluation (split "test" or "val": the evaluation's loss and, for
 * the classifiers, its accuracy as a fraction); step counts the optimizer
 * steps done (1-based); epoch is the 1-based epoch (empty for the language
 * models); accuracy is empty where there is none; lr is the learning rate
 * of the step (of the last step for an evaluation); seconds is the wall
 * time since cli_log_init. */
#ifndef TAPEGRAD_CHART_H
#define TAPEGRAD_CHART_H

#include <stdbool.h>
#include <stddef.h>

typedef struct cli_log {
    const char *title;      /* the chart's first line                       */
    const char *eval_name;  /* "test" or "val"                              */
    double steps_per_epoch; /* x axis in epochs; 0: in steps                */
    double t0;              /* cli_log_init's clock                         */
    size_t step0;           /* steps done before the log began (--resume)   */
    size_t n, cap;          /* steps                                        */
    double *loss, *lr, *sec;
    int *epoch;
    size_t n_eval, cap_eval; /* evaluations                                 */
    double *e_step, *e_loss, *e_acc, *e_lr, *e_sec; /* e_acc: NAN when none */
    int *e_epoch;
} cli_log;

/* Start an empty log (title and eval_name are kept as pointers). */
void cli_log_init(cli_log *g, const char *title, const char *eval_name, double steps_per_epoch);
void cli_log_free(cli_log *g);
/* One optimizer step: its loss, learning rate and 1-based epoch (0: none).
 * 0, or -1 when out of memory. */
int cli_log_step(cli_log *g, double loss, double lr, int epoch);
/* One evaluation after the steps logged so far: loss, accuracy in [0, 1]
 * (NAN: none), epoch (0: none).  0, or -1 when out of memory. */
int cli_log_eval(cli_log *g, double loss, double acc, int epoch);

/* An evaluation done before the log began (a resumed run's earlier
 * epochs): after `step` steps of the run, loss and accuracy as above (NAN:
 * unknown); its lr and seconds are unknown.  0, or -1. */
int cli_log_eval_at(cli_log *g, double step, double loss, double acc, int epoch);

/* The chart of the log as SVG, replacing path atomically; opt names the
 * option in messages ("--chart").  0, or -1 with the reason in why. */
int cli_chart_write(const cli_log *g, const char *opt, const char *path, char *why, size_t len);
/* The metrics table (CSV, above), replacing path atomically.  0, or -1. */
int cli_metrics_write(const cli_log *g, const char *opt, const char *path, char *why,
                      size_t len);

/* Whether path can be replaced the way the two above write it (not a
 * directory or another non-regular file; a temporary file can be made next
 * to it, and is removed at once).  0, or -1 with the reason in why. */
int cli_check_writable(const char *opt, const char *path, char *why, size_t len);

/* Round-number ticks for data in [lo, hi] with at most max_ticks + 1 of
 * them: *step is 1, 2 or 5 times a power of ten and [*a, *b] the data's
 * range widened to multiples of it.  The number of ticks. */
int cli_ticks(double lo, double hi, int max_ticks, double *a, double *b, double *step);

#endif
