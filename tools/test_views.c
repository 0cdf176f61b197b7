/* What a person sees of a training run (issue 19), tested as a user runs
 * the tapegrad command, plus the chart module's ticks directly:
 *   the chart (tools/chart.c): round ticks of 1, 2 or 5 times a power of
 *     ten, axes zoomed to the data, the series and their point counts;
 *   --metrics: the columns, one row per step and per epoch, values that
 *     agree with what train prints;
 *   eval: its accuracy equals train's last test accuracy, the per-class
 *     figures and the confusion matrix add up, the mistakes SVG;
 *   info: names, shapes, dtypes and statistics of a file of known values,
 *     the checksum status of a damaged file;
 *   tg_file_read: values back bit for bit, the errors of damaged files;
 *   the error cases: missing, damaged and truncated files, a language
 *     model given to eval, a file that is no model, bad options.
 * Usage: test_views /path/to/tapegrad */
#include "tapegrad.h"
#include "test_run.h"

#include "chart.h"

#include <math.h>

static const char *prog;
static char out_buf[1 << 18], err_buf[1 << 16];
static char file_buf[1 << 22];

static size_t slurp(const char *path, char *buf, size_t len) { return tr_slurp(path, buf, len); }

/* Run prog with args (NULL-terminated); stdout and stderr into out_buf and
 * err_buf.  The exit status, or -1 when it did not exit. */
static int run(const char *arg, ...)
{
    va_list ap;
    va_start(ap, arg);
    int st = tr_vrun(prog, out_buf, sizeof out_buf, err_buf, sizeof err_buf, arg, ap);
    va_end(ap);
    return st;
}

#define STATUS(want, ...)                                                                 \
    do {                                                                                  \
        int s_ = run(__VA_ARGS__, NULL);                                                  \
        if (!ok(s_ == (want), "tapegrad %s -> exit %d", #__VA_ARGS__, want))              \
            diag("exit %d; stderr: %.300s", s_, err_buf);                                 \
    } while (0)

static void has(const char *buf, const char *want, const char *what)
{
    if (!ok(strstr(buf, want) != NULL, "%s", what))
        diag("wanted \"%s\" in: %.400s", want, buf);
}

/* ---- the SVG chart ---------------------------------------------------------- */

/* The numbers of the <text class="cls"> labels (a trailing % dropped), in
 * order; their count. */
static int tick_values(const char *svg, const char *cls, double *v, int max)
{
    char key[64];
    snprintf(key, sizeof key, "class=\"%s\"", cls);
    int n = 0;
    for (const char *p = strstr(svg, key); p && n < max; p = strstr(p + 1, key)) {
        const char *gt = strchr(p, '>');
        if (!gt)
            break;
        v[n++] = strtod(gt + 1, NULL);
    }
    return n;
}

/* Ticks at round numbers: evenly spaced by 1, 2 or 5 times a power of ten,
 * each a multiple of that step, ascending (bottom-up: the SVG lists them
 * from the axis's low end). */
static bool round_ticks(const double *v, int n, double *step)
{
    if (n < 2)
        return false;
    double s = v[1] - v[0];
    if (!(s > 0))
        return false;
    double mag = pow(10, floor(log10(s) + 1e-9)), m = s / mag;
    if (fabs(m - 1) > 1e-6 && fabs(m - 2) > 1e-6 && fabs(m - 5) > 1e-6)
        return false;
    for (int i = 0; i < n; i++) {
        if (fabs(v[i] - (v[0] + i * s)) > 1e-6 * fmax(1, fabs(v[i])))
            return false;
        double k = v[i] / s;
        if (fabs(k - round(k)) > 1e-6)
            return false;
    }
    *step = s;
    return true;
}

/* The points of the <polyline class="cls">: count, and y range in px. */
static int polyline_points(const char *svg, const char *cls)
{
    char key[64];
    snprintf(key, sizeof key, "<polyline class=\"%s\"", cls);
    const char *p = strstr(svg, key);
    if (!p || !(p = strstr(p, "points=\"")))
        return -1;
    p += 8;
    int n = 0;
    for (; *p && *p != '"'; p++)
        n += *p == ',';
    return n;
}

static int count(const char *s, const char *what)
{
    int n = 0;
    for (const char *p = strstr(s, what); p; p = strstr(p + 1, what))
        n++;
    return n;
}

static void ticks_unit(void)
{
    double a, b, st;
    int n = cli_ticks(0.124, 0.496, 5, &a, &b, &st);
    ok(fabs(st - 0.1) < 1e-12 && fabs(a - 0.1) < 1e-12 && fabs(b - 0.5) < 1e-12 && n == 5,
       "cli_ticks(0.124..0.496): 0.1, 0.2, ... 0.5 (the issue's 0.124/0.248 axis), got %g..%g "
       "by %g", a, b, st);
    n = cli_ticks(85.29, 88.73, 4, &a, &b, &st);
    ok(st == 1 && a == 85 && b == 89 && n == 5, "cli_ticks(85.29%%..88.73%%): 85..89 by 1, got "
       "%g..%g by %g", a, b, st);
    n = cli_ticks(0, 10, 8, &a, &b, &st);
    ok(st == 2 && a == 0 && b == 10 && n == 6, "cli_ticks(0..10, 8): by 2, got %g", st);
    n = cli_ticks(3e-5, 1e-3, 3, &a, &b, &st);
    ok(fabs(st - 5e-4) < 1e-15 && a == 0 && fabs(b - 1e-3) < 1e-15 && n == 3,
       "cli_ticks(3e-5..1e-3, 3): by 5e-4, got %g..%g by %g", a, b, st);
    n = cli_ticks(0.7, 0.7, 5, &a, &b, &st);
    ok(a < 0.7 && b > 0.7 && n >= 2 && n <= 6, "cli_ticks of one value: around it (%g..%g)", a,
       b);
    n = cli_ticks(NAN, INFINITY, 5, &a, &b, &st);
    ok(a == 0 && b == 1 && n >= 2, "cli_ticks of nothing finite: 0..1");
    int good = 0, k;
    for (k = 0; k < 200; k++) { /* any range: round, covering, at most max+1 ticks */
        double lo = sin(k) * pow(10, k % 7 - 3), hi = lo + fabs(cos(k * 1.7)) * pow(10, k % 5 - 2);
        n = cli_ticks(lo, hi, 5, &a, &b, &st);
        double mag = pow(10, floor(log10(st) + 1e-9)), m = st / mag;
        if (!(a <= lo && b >= hi && n <= 6 && n >= 2 && a > lo - st && b < hi + st &&
              (fabs(m - 1) < 1e-9 || fabs(m - 2) < 1e-9 || fabs(m - 5) < 1e-9))) {
            diag("cli_ticks(%g, %g): %g..%g by %g, %d ticks", lo, hi, a, b, st, n);
            break;
        }
        good++;
    }
    ok(good == 200, "cli_ticks on 200 ranges: round steps, covering the data, at most 6 ticks");
}

/* A chart drawn from a log of known values: the series, the ticks, the
 * zoom and the learning-rate panel. */
static void chart_unit(void)
{
    double acc[4] = {0.8531, 0.8602, 0.8677, 0.8673};
    cli_log h;
    cli_log_init(&h, "a <test> & chart", "test", 10);
    for (int s = 0; s < 40; s++) { /* 4 epochs of 10 steps; lr halves after 2 */
        cli_log_step(&h, 1.0 + 0.5 * exp(-s / 8.0) + 0.01 * (s % 3), s < 20 ? 0.01 : 0.005,
                     s / 10 + 1);
        if (s % 10 == 9)
            cli_log_eval(&h, 1.2 - 0.02 * s / 10, acc[s / 10], s / 10 + 1);
    }
    char why[600];
    int rc = cli_chart_write(&h, "--chart", "unit.svg", why, sizeof why);
    ok(rc == 0, "cli_chart_write writes unit.svg");
    slurp("unit.svg", file_buf, sizeof file_buf);
    ok(!strncmp(file_buf, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"640\"", 50) &&
           strstr(file_buf, "</svg>\n"),
       "an SVG 640 px wide");
    has(file_buf, "a &lt;test&gt; &amp; chart", "the title is escaped");
    ok(polyline_points(file_buf, "train-step") == 40, "40 steps drawn (light)");
    ok(polyline_points(file_buf, "train-smooth") == 40, "40 smoothed points");
    ok(count(file_buf, "<circle class=\"eval-loss\"") == 4, "4 test-loss dots");
    ok(count(file_buf, "<circle class=\"eval-acc\"") == 4, "4 accuracy dots");
    double v[32], st;
    int n = tick_values(file_buf, "tick-acc", v, 32);
    ok(round_ticks(v, n, &st), "accuracy ticks are round numbers (%d)", n);
    ok(n >= 2 && v[0] <= 85.31 && v[0] > 85.31 - st && v[n - 1] >= 86.77 &&
           v[n - 1] < 86.77 + st,
       "the accuracy axis is zoomed to 85.31%%..86.77%% (%g..%g), not 0..100", v[0], v[n - 1]);
    n = tick_values(file_buf, "tick-lr", v, 32);
    ok(round_ticks(v, n, &st) && v[0] <= 0.005 && v[n - 1] >= 0.01 && v[n - 1] < 0.01 + st,
       "a learning-rate panel with round ticks over 0.005..0.01");
    n = tick_values(file_buf, "tick-x", v, 32);
    ok(n == 5 && v[0] == 0 && v[4] == 4, "x ticks 0..4 epochs");
    cli_log_free(&h);
    /* constant lr: no lr panel; no evaluation with accuracy: no accuracy panel */
    cli_log_init(&h, "lm", "val", 0);
    for (int s = 0; s < 30; s++)
        cli_log_step(&h, 3 - 0.05 * s, 1e-3, 0);
    cli_log_eval(&h, 1.7, NAN, 0);
    rc = cli_chart_write(&h, "--chart", "unit2.svg", why, sizeof why);
    slurp("unit2.svg", file_buf, sizeof file_buf);
    ok(rc == 0 && !strstr(file_buf, "tick-lr") && !strstr(file_buf, "tick-acc") &&
           strstr(file_buf, ">step</text>"),
       "no lr or accuracy panel when there is none; x in steps");
    rc = cli_metrics_write(&h, "--metrics", "unit.csv", why, sizeof why);
    slurp("unit.csv", file_buf, sizeof file_buf);
    ok(rc == 0 && !strncmp(file_buf, "step,epoch,split,loss,accuracy,lr,seconds\n1,,train,3,,0.001,",
                           59),
       "metrics: the header and a first row with empty epoch and accuracy");
    ok(count(file_buf, "\n") == 32 && strstr(file_buf, "\n30,,val,1.7,,0.001,"),
       "metrics: 30 step rows and the evaluation after step 30");
    rc = cli_chart_write(&h, "--chart", "no/such/dir/c.svg", why, sizeof why);
    ok(rc == -1 && strstr(why, "no/such/dir/c.svg"), "a chart that cannot be written: -1, named");
    cli_log_free(&h);
}

/* ---- train --metrics and --chart ---------------------------------------------------- */

/* The n-th comma-separated field of line (0-based) into out. */
static void csv_field(const char *line, int k, char *out, size_t len)
{
    for (int i = 0; i < k && line; i++)
        line = strchr(line, ',') ? strchr(line, ',') + 1 : NULL;
    size_t n = line ? strcspn(line, ",\n") : 0;
    snprintf(out, len, "%.*s", (int)n, line ? line : "");
}

static double train_acc[8]; /* the test accuracy train printed per epoch, % */

static void train_views(void)
{
    /* 2000 samples, batch 100: 20 steps an epoch, 3 epochs */
    STATUS(0, "train", "--synthetic", "--epochs", "3", "--layers", "784,32,10", "--limit", "2000",
           "--batch", "100", "--out", "m.tgm", "--chart", "c.svg", "--metrics", "m.csv",
           "--quiet", "--threads", "1");
    has(out_buf, "metrics written to m.csv", "train says where the metrics went");
    has(out_buf, "\npeak resident memory ", "... and ends with its peak resident memory");
    for (int e = 0; e < 3; e++) {
        char key[32];
        snprintf(key, sizeof key, "epoch  %d/3", e + 1);
        const char *p = strstr(out_buf, key);
        p = p ? strstr(p, "test accuracy ") : NULL;
        train_acc[e] = p ? strtod(p + 14, NULL) : -1;
    }
    slurp("m.csv", file_buf, sizeof file_buf);
    ok(!strncmp(file_buf, "step,epoch,split,loss,accuracy,lr,seconds\n", 42),
       "metrics: the documented header");
    int train_rows = 0, test_rows = 0, bad = 0;
    double last_sec = 0;
    char f[64];
    for (const char *line = strchr(file_buf, '\n') + 1; *line; line = strchr(line, '\n') + 1) {
        csv_field(line, 2, f, sizeof f);
        char st[32], ep[32], acc[32], lr[32], sec[32];
        csv_field(line, 0, st, sizeof st);
        csv_field(line, 1, ep, sizeof ep);
        csv_field(line, 4, acc, sizeof acc);
        csv_field(line, 5, lr, sizeof lr);
        csv_field(line, 6, sec, sizeof sec);
        if (strtod(sec, NULL) < last_sec || strtod(lr, NULL) != 0.001)
            bad++;
        last_sec = strtod(sec, NULL);
        if (!strcmp(f, "train")) {
            train_rows++;
            bad += atoi(st) != train_rows || atoi(ep) != (train_rows - 1) / 20 + 1 || *acc;
        } else if (!strcmp(f, "test")) {
            test_rows++;
            bad += atoi(st) != 20 * test_rows || atoi(ep) != test_rows ||
                   fabs(100 * strtod(acc, NULL) - train_acc[test_rows - 1]) > 0.006;
        } else {
            bad++;
        }
    }
    ok(train_rows == 60 && test_rows == 3 && bad == 0,
       "metrics: 60 step rows and 3 epoch rows, steps and epochs counted, lr 0.001, seconds "
       "non-decreasing, test accuracy as printed (%d, %d, %d bad)", train_rows, test_rows, bad);
    slurp("c.svg", file_buf, sizeof file_buf);
    ok(polyline_points(file_buf, "train-step") == 60, "the chart draws all 60 steps");
    ok(count(file_buf, "<circle class=\"eval-acc\"") == 3, "... and 3 accuracy dots");
    double v[32], st;
    int n = tick_values(file_buf, "tick-loss", v, 32);
    ok(round_ticks(v, n, &st) && n >= 3, "loss ticks are round numbers: %g, %g, ... (%d)",
       n ? v[0] : 0, n > 1 ? v[1] : 0, n);
    n = tick_values(file_buf, "tick-acc", v, 32);
    double lo = fmin(train_acc[0], fmin(train_acc[1], train_acc[2]));
    double hi = fmax(train_acc[0], fmax(train_acc[1], train_acc[2]));
    ok(round_ticks(v, n, &st) && v[0] <= lo && v[0] > lo - st && v[n - 1] >= hi &&
           v[n - 1] < hi + st,
       "accuracy ticks round and zoomed to %.2f..%.2f: %g..%g", lo, hi, n ? v[0] : 0,
       n ? v[n - 1] : 0);
    ok(!strstr(file_buf, "tick-lr"), "no learning-rate panel without a schedule");
    n = tick_values(file_buf, "tick-x", v, 32);
    ok(n == 4 && v[3] == 3, "x ticks: epochs 0..3");
    STATUS(0, "train", "--synthetic", "--epochs", "2", "--layers", "784,16,10", "--limit", "1000",
           "--batch", "100", "--out", "s.tgm", "--chart", "s.svg", "--schedule", "step",
           "--quiet", "--no-chart", "--metrics", "s.csv");
    ok(access("s.svg", F_OK) != 0, "--no-chart: no chart");
    STATUS(0, "train", "--synthetic", "--epochs", "3", "--layers", "784,16,10", "--limit", "1000",
           "--batch", "100", "--out", "s.tgm", "--chart", "s.svg", "--schedule", "cosine",
           "--quiet");
    slurp("s.svg", file_buf, sizeof file_buf);
    n = tick_values(file_buf, "tick-lr", v, 32);
    ok(round_ticks(v, n, &st), "--schedule cosine: a learning-rate panel with round ticks");
    STATUS(2, "train", "--synthetic", "--metrics", "m.tgm", "--out", "m.tgm");
    has(err_buf, "--metrics m.tgm is also --out", "--metrics naming --out: usage error");
    STATUS(1, "train", "--synthetic", "--epochs", "1", "--metrics", "no/such/dir/m.csv");
    has(err_buf, "no/such/dir/m.csv", "--metrics in a missing directory: refused before training");
    STATUS(2, "train", "--synthetic", "--metrics");
}

/* ---- eval ------------------------------------------------------------------------------ */

static void eval_views(void)
{
    STATUS(0, "eval", "m.tgm", "--images", "mis.svg");
    const char *p = strstr(out_buf, "test accuracy: ");
    double acc = p ? strtod(p + 15, NULL) : -1;
    unsigned long right = 0, total = 0;
    if (p)
        sscanf(strchr(p, '(') ? strchr(p, '(') : p, "(%lu of %lu)", &right, &total);
    ok(fabs(acc - train_acc[2]) < 1e-9 && total == 2000 && right == (unsigned long)llround(acc * 20),
       "eval: %.2f%% (%lu of %lu), train's last epoch said %.2f%%", acc, right, total,
       train_acc[2]);
    has(out_buf, "data: built-in synthetic data: 2000 test samples",
        "eval uses the data the model was trained on (recorded: the synthetic set)");
    /* per class and the confusion matrix: they add up */
    unsigned long cls_right = 0, cls_total = 0, diagonal = 0, cells = 0;
    int rows = 0, bad = 0;
    const char *c = strstr(out_buf, "right / total\n");
    for (int k = 0; c && k < 10; k++) {
        c = strchr(c, '\n') + 1;
        unsigned long r, t;
        double pct;
        if (sscanf(c + 12, "%lf%% %lu / %lu", &pct, &r, &t) != 3 ||
            fabs(pct - 100.0 * (double)r / (double)t) > 0.006)
            bad++;
        cls_right += r, cls_total += t;
    }
    const char *m = strstr(out_buf, "predicted class)\n");
    m = m ? strchr(m + 17, '\n') : NULL; /* past the column names */
    for (int k = 0; m && k < 10; k++, rows++) {
        m++;
        const char *q = m + 12;
        unsigned long row = 0;
        for (int j = 0; j < 10; j++) {
            char *end;
            unsigned long x = strtoul(q, &end, 10);
            q = end;
            row += x, cells += x;
            if (j == k)
                diagonal += x;
        }
        m = strchr(m, '\n');
    }
    ok(bad == 0 && cls_right == right && cls_total == 2000,
       "per-class accuracies add up to %lu of 2000", cls_right);
    ok(rows == 10 && cells == 2000 && diagonal == right, "the confusion matrix: 10 rows, %lu cells, "
       "diagonal %lu = the right answers", cells, diagonal);
    slurp("mis.svg", file_buf, sizeof file_buf);
    int shown = count(file_buf, "<g class=\"mistake\"");
    ok(shown == 16, "mis.svg shows 16 mistakes (%d)", shown);
    int wrong_labels = 0;
    for (const char *g = strstr(file_buf, "data-true=\""); g; g = strstr(g + 1, "data-true=\""))
        wrong_labels += atoi(g + 11) != atoi(strstr(g, "data-pred=\"") + 11);
    ok(wrong_labels == 16, "each with a true label other than the predicted one");
    ok(count(file_buf, ">true: ") == 16 && count(file_buf, ">predicted: ") == 16,
       "each labelled with its true and predicted class");
    char want[64];
    snprintf(want, sizeof want, "(%lu of 2000 wrong)", 2000 - right);
    has(file_buf, want, "the SVG says how many were wrong");
    STATUS(0, "eval", "m.tgm", "--count", "3", "--images", "three.svg");
    slurp("three.svg", file_buf, sizeof file_buf);
    ok(count(file_buf, "<g class=\"mistake\"") == 3, "--count 3: three images");
    /* errors */
    STATUS(2, "eval");
    STATUS(2, "eval", "m.tgm", "--count", "0");
    STATUS(2, "eval", "m.tgm", "--synthetic", "--data", "x");
    STATUS(1, "eval", "nosuch.tgm");
    has(err_buf, "nosuch.tgm: cannot open", "eval of a missing file names it");
    STATUS(1, "eval", "m.tgm", "--data", "no/such/dir");
    has(err_buf, "cannot read the data", "eval --data of a missing directory");
    size_t n = slurp("m.tgm", file_buf, sizeof file_buf);
    file_buf[n / 2] ^= 0x10;
    tap_write_file("damaged.tgm", file_buf, n);
    STATUS(1, "eval", "damaged.tgm");
    has(err_buf, "checksum mismatch", "eval of a damaged file: checksum mismatch");
    tap_write_file("short.tgm", file_buf, n / 3);
    STATUS(1, "eval", "short.tgm");
    has(err_buf, "truncated", "eval of a truncated file");
    STATUS(1, "eval", "words.tgm");
    has(err_buf, "is a language model", "eval of a language model: the wrong kind, said");
    STATUS(1, "eval", "known.tgm");
    has(err_buf, "not a model of tapegrad train", "eval of a file that is no model");
    /* a file saved before the architecture was recorded: inferred */
    tg_file_info fi;
    tg_tape *t = tg_tape_new();
    tg_tensor *list[4];
    int k = 0;
    if (!tg_file_read("m.tgm", false, &fi, NULL)) {
        for (size_t i = 0; i < fi.n; i++)
            if (strncmp(fi.tensors[i].name, "train.", 6)) {
                const tg_file_tensor *x = &fi.tensors[i];
                list[k] = tg_param(t, x->name, x->dtype, x->rank, x->shape);
                tg_copy_in(list[k++], x->data, x->dtype, x->size);
            }
        tg_file_free(&fi);
    }
    ok(k == 4 && tg_save(t, "old.tgm", 4, list) == 0, "old.tgm: the model without its record");
    tg_tape_free(t);
    STATUS(0, "eval", "old.tgm", "--synthetic", "--no-images");
    has(err_buf, "records no architecture", "eval of an older file says it inferred the network");
    has(err_buf, "recomputed", "... and recomputed the standardisation");
    has(out_buf, "mlp 784-32-10", "... as an mlp 784-32-10");
}

/* ---- info and tg_file_read ----------------------------------------------------------- */

/* The info row of tensor name: dtype, shape and the four statistics. */
static bool info_row(const char *out, const char *name, const char *dtype, const char *shape,
                     double mean, double sd, double lo, double hi)
{
    char key[64], d[16], sh[32];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(out, key);
    double v[4];
    if (!p || sscanf(p + strlen(key), "%15s %31s %lf %lf %lf %lf", d, sh, &v[0], &v[1], &v[2],
                     &v[3]) != 6) {
        diag("no row for %s in: %.600s", name, out);
        return false;
    }
    bool good = !strcmp(d, dtype) && !strcmp(sh, shape) && fabs(v[0] - mean) < 1e-3 &&
                fabs(v[1] - sd) < 1e-3 && v[2] == lo && v[3] == hi;
    if (!good)
        diag("%s: %s %s %g %g %g %g", name, d, sh, v[0], v[1], v[2], v[3]);
    return good;
}

static void info_views(void)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *a = tg_param(t, "a", TG_F32, 2, SHAPE(2, 2));
    tg_tensor *i = tg_const(t, "ints", TG_I32, 1, SHAPE(3));
    tg_tensor *s = tg_param(t, "s", TG_F64, 0, NULL);
    tg_copy_in(a, (float[]){1, 2, 3, 4}, TG_F32, 4);
    tg_copy_in(i, (int32_t[]){-1, 0, 7}, TG_I32, 3);
    tg_copy_in(s, (double[]){-0.125}, TG_F64, 1);
    if (!ok(tg_save(t, "known.tgm", 3, (tg_tensor *[]){a, i, s}) == 0, "known.tgm saved"))
        diag("%s", tg_tape_error(t));
    tg_tape_free(t);

    tg_file_info fi;
    tg_err e;
    int rc = tg_file_read("known.tgm", false, &fi, &e);
    ok(rc == 0 && fi.n == 3 && fi.version == 1 && fi.checksum_ok, "tg_file_read: 3 tensors, "
       "version 1, checksum OK");
    if (rc == 0 && fi.n == 3) {
        const float *av = fi.tensors[0].data;
        const int32_t *iv = fi.tensors[1].data;
        const double *sv = fi.tensors[2].data;
        ok(!strcmp(fi.tensors[0].name, "a") && fi.tensors[0].dtype == TG_F32 &&
               fi.tensors[0].rank == 2 && fi.tensors[0].shape[0] == 2 &&
               fi.tensors[0].shape[1] == 2 && av[0] == 1 && av[3] == 4,
           "tensor a: f32 2x2 with 1..4");
        ok(!strcmp(fi.tensors[1].name, "ints") && fi.tensors[1].dtype == TG_I32 && iv[0] == -1 &&
               iv[2] == 7 && fi.tensors[2].rank == 0 && fi.tensors[2].size == 1 &&
               sv[0] == -0.125,
           "ints i32 [3] = -1 0 7, s an f64 scalar -0.125");
        ok(fi.size == 24 + 4 + (4 + 1 + 2 + 16 + 16) + (4 + 4 + 2 + 8 + 12) + (4 + 1 + 2 + 8),
           "the size is the format's (%llu bytes)", (unsigned long long)fi.size);
    }
    tg_file_free(&fi);
    ok(fi.n == 0 && fi.tensors == NULL, "tg_file_free empties the info");
    tg_file_free(NULL);

    STATUS(0, "info", "known.tgm");
    has(out_buf, "format version 1", "info: the format version");
    has(out_buf, ", OK\n", "info: the checksum is OK");
    has(out_buf, "architecture: not recorded", "info: no architecture in a plain file");
    has(out_buf, "tensors: 3 (8 values)", "info: 3 tensors, 8 values");
    /* a: mean 2.5, std sqrt(1.25) = 1.118, min 1, max 4 */
    ok(info_row(out_buf, "a", "f32", "2x2", 2.5, sqrt(1.25), 1, 4),
       "info: a f32 2x2, mean 2.5, std 1.118, min 1, max 4");
    /* ints: mean 2, std sqrt((9 + 4 + 25) / 3) = 3.559 */
    ok(info_row(out_buf, "ints", "i32", "3", 2, sqrt(38.0 / 3), -1, 7),
       "info: ints i32 3, mean 2, std 3.559, min -1, max 7");
    ok(info_row(out_buf, "s", "f64", "scalar", -0.125, 0, -0.125, -0.125),
       "info: s f64 scalar -0.125");
    STATUS(0, "info", "m.tgm");
    has(out_buf, "architecture: mlp 784-32-10 (tapegrad train --model mlp), trained on the "
                 "built-in synthetic set of seed 1", "info: the recorded architecture");
    has(out_buf, "W1            f32    784x32", "info: W1 784x32");
    STATUS(0, "info", "words.tgm");
    has(out_buf, "architecture: gru (tapegrad train --model gru): 1 layer of width 8",
        "info: a language model's configuration");

    /* damage: a flipped bit in a value, a cut, a wrong magic, a missing file */
    size_t n = slurp("known.tgm", file_buf, sizeof file_buf);
    file_buf[50] ^= 0x01; /* in a's data (bytes 47..62) */
    tap_write_file("flip.tgm", file_buf, n);
    STATUS(1, "info", "flip.tgm");
    has(out_buf, "checksum: MISMATCH", "info of a damaged file: the checksum status");
    has(out_buf, "DAMAGED", "... said loudly");
    has(out_buf, "tensors: 3", "... and still the listing");
    rc = tg_file_read("flip.tgm", false, &fi, &e);
    ok(rc == -1 && strstr(e.msg, "checksum mismatch") && fi.n == 0,
       "tg_file_read without any_checksum: -1, checksum mismatch");
    rc = tg_file_read("flip.tgm", true, &fi, &e);
    ok(rc == 0 && !fi.checksum_ok && fi.checksum_stored != fi.checksum_computed && fi.n == 3,
       "tg_file_read with any_checksum: the records, checksum_ok false");
    tg_file_free(&fi);
    file_buf[50] ^= 0x01;
    tap_write_file("cut.tgm", file_buf, n - 5);
    STATUS(1, "info", "cut.tgm");
    has(err_buf, "truncated", "info of a truncated file");
    tap_write_file("junk.tgm", "hello world, no model here", 26);
    STATUS(1, "info", "junk.tgm");
    has(err_buf, "not a tapegrad file", "info of another kind of file");
    file_buf[36] ^= 0x40; /* a's first dimension: 2 + 2^46, past the file */
    tap_write_file("dims.tgm", file_buf, n);
    STATUS(1, "info", "dims.tgm");
    has(err_buf, "corrupt record of tensor 0", "info of a file whose record is damaged: refused");
    file_buf[36] ^= 0x40;
    STATUS(1, "info", "nosuch.tgm");
    has(err_buf, "info: file_read: nosuch.tgm: cannot open", "info of a missing file");
    STATUS(2, "info");
    STATUS(2, "info", "a.tgm", "b.tgm");
    STATUS(0, "info", "--help");
    ok(tg_file_read(NULL, false, &fi, &e) == -1 && strstr(e.msg, "path is NULL"),
       "tg_file_read(NULL path): -1");
    ok(tg_file_read("known.tgm", false, NULL, &e) == -1 && strstr(e.msg, "info is NULL"),
       "tg_file_read(NULL info): -1");
    ok(tg_file_read(".", false, &fi, NULL) == -1, "tg_file_read of a directory: -1 (err NULL)");
}

/* A tiny language model for the wrong-kind case. */
static void language_model(void)
{
    static char words[4096];
    size_t n = 0;
    for (int w = 0; w < 300; w++) {
        int len = 3 + w % 4;
        for (int k = 0; k < len; k++)
            words[n++] = (k % 2 ? "aeiou" : "bdgklmnprst")[(w * 7 + k * 3) % (k % 2 ? 5 : 11)];
        words[n++] = '\n';
    }
    tap_write_file("words.txt", words, n);
    STATUS(0, "train", "--model", "gru", "--text", "words.txt", "--steps", "6", "--eval-every",
           "3", "--batch", "4", "--ctx", "8", "--width", "8", "--out", "words.tgm", "--quiet",
           "--chart", "lm.svg", "--metrics", "lm.csv");
    slurp("lm.csv", file_buf, sizeof file_buf);
    ok(count(file_buf, ",train,") == 6 && count(file_buf, ",val,") == 2,
       "train --model gru --metrics: 6 step rows and 2 validation rows");
    slurp("lm.svg", file_buf, sizeof file_buf);
    ok(polyline_points(file_buf, "train-step") == 6 && strstr(file_buf, "tick-lr") &&
           count(file_buf, "<circle class=\"eval-loss\"") == 2,
       "... and its chart: 6 steps, 2 validation dots, the learning-rate schedule");
}

int main(int argc, char **argv)
{
    static char abs_prog[4096];
    if (!tr_prog(argc, argv, "test_views", abs_prog, sizeof abs_prog))
        return 1;
    prog = abs_prog;
    static char dir[64] = "/tmp/tg_views_test_XXXXXX";
    if (!tr_enter_tmp(dir))
        return 1;
    ticks_unit();
    chart_unit();
    train_views();
    language_model();
    info_views();
    eval_views();
    tr_leave_tmp(dir);
    return tap_done();
}
