/* The training log, its SVG chart and its metrics table: tools/chart.h. */
#include "chart.h"

#include "io.h" /* tg_atomic: the library's atomic file writer */

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static double clock_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cli_log_init(cli_log *g, const char *title, const char *eval_name, double steps_per_epoch)
{
    memset(g, 0, sizeof *g);
    g->title = title;
    g->eval_name = eval_name;
    g->steps_per_epoch = steps_per_epoch;
    g->t0 = clock_now();
}

void cli_log_free(cli_log *g)
{
    free(g->loss);
    free(g->lr);
    free(g->sec);
    free(g->epoch);
    free(g->e_step);
    free(g->e_loss);
    free(g->e_acc);
    free(g->e_lr);
    free(g->e_sec);
    free(g->e_epoch);
    memset(g, 0, sizeof *g);
}

/* Grow *p (elements of size es) to hold cap elements; false when out of memory. */
static bool grow(void *pp, size_t cap, size_t es)
{
    void **p = pp;
    void *q = realloc(*p, cap * es);
    if (!q)
        return false;
    *p = q;
    return true;
}

int cli_log_step(cli_log *g, double loss, double lr, int epoch)
{
    if (g->n == g->cap) {
        size_t c = g->cap ? 2 * g->cap : 256;
        if (!grow(&g->loss, c, sizeof(double)) || !grow(&g->lr, c, sizeof(double)) ||
            !grow(&g->sec, c, sizeof(double)) || !grow(&g->epoch, c, sizeof(int)))
            return -1;
        g->cap = c;
    }
    g->loss[g->n] = loss;
    g->lr[g->n] = lr;
    g->sec[g->n] = clock_now() - g->t0;
    g->epoch[g->n] = epoch;
    g->n++;
    return 0;
}

int cli_log_eval_at(cli_log *g, double step, double loss, double acc, int epoch)
{
    if (cli_log_eval(g, loss, acc, epoch))
        return -1;
    size_t k = g->n_eval - 1;
    g->e_step[k] = step;
    g->e_lr[k] = g->e_sec[k] = NAN;
    return 0;
}

int cli_log_eval(cli_log *g, double loss, double acc, int epoch)
{
    if (g->n_eval == g->cap_eval) {
        size_t c = g->cap_eval ? 2 * g->cap_eval : 32;
        if (!grow(&g->e_step, c, sizeof(double)) || !grow(&g->e_loss, c, sizeof(double)) ||
            !grow(&g->e_acc, c, sizeof(double)) || !grow(&g->e_lr, c, sizeof(double)) ||
            !grow(&g->e_sec, c, sizeof(double)) || !grow(&g->e_epoch, c, sizeof(int)))
            return -1;
        g->cap_eval = c;
    }
    size_t k = g->n_eval++;
    g->e_step[k] = (double)(g->step0 + g->n);
    g->e_loss[k] = loss;
    g->e_acc[k] = acc;
    g->e_lr[k] = g->n ? g->lr[g->n - 1] : NAN;
    g->e_sec[k] = clock_now() - g->t0;
    g->e_epoch[k] = epoch;
    return 0;
}

/* ---- ticks ------------------------------------------------------------------ */

int cli_ticks(double lo, double hi, int max_ticks, double *a, double *b, double *step)
{
    if (!isfinite(lo) || !isfinite(hi)) /* nothing to show: 0..1 */
        lo = 0, hi = 1;
    if (hi < lo) {
        double t = lo;
        lo = hi, hi = t;
    }
    if (hi - lo <= 1e-12 * fmax(fabs(lo), fabs(hi))) { /* one value: a little around it */
        double d = lo ? 0.05 * fabs(lo) : 0.5;
        lo -= d, hi += d;
    }
    if (max_ticks < 1)
        max_ticks = 1;
    double raw = (hi - lo) / max_ticks, mag = pow(10, floor(log10(raw))), s = mag, fa, fb;
    static const double M[] = {1, 2, 5};
    for (int i = 0;; i++) { /* the smallest round step giving at most max_ticks intervals */
        s = M[i % 3] * mag * pow(10, i / 3);
        fa = floor(lo / s + 1e-9), fb = ceil(hi / s - 1e-9);
        if (fb - fa <= max_ticks)
            break;
    }
    *a = fa * s;
    *b = fb * s;
    *step = s;
    return (int)(fb - fa) + 1;
}

/* v (a multiple of step) with the decimals the step needs. */
static void tick_label(char *buf, size_t len, double v, double step, const char *suffix)
{
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    if (fabs(v) < 1e-9 * step)
        v = 0; /* no "-0" */
    if (dec > 4)
        snprintf(buf, len, "%g%s", v, suffix);
    else
        snprintf(buf, len, "%.*f%s", dec, v, suffix);
}

/* ---- the chart ---------------------------------------------------------------- */

enum { W = 640, ML = 64, MR = 24, PW = W - ML - MR };

#define C_RAW "#a5d8ff"
#define C_SMOOTH "#1864ab"
#define C_EVAL "#e8590c"
#define C_ACC "#2f9e44"
#define C_LR "#7048e8"

/* One panel: its place, y range and ticks. */
typedef struct panel {
    double top, h;    /* the plot area's top and height (px) */
    double a, b, st;  /* the y axis: [a, b], ticks every st  */
} panel;

typedef struct chart {
    FILE *f;
    const cli_log *g;
    double xa, xb, xst; /* the x axis */
} chart;

static double px(const chart *c, double x) { return ML + PW * (x - c->xa) / (c->xb - c->xa); }
static double py(const panel *p, double v) { return p->top + p->h * (1 - (v - p->a) / (p->b - p->a)); }

/* The x position after k steps (counted from the run's start). */
static double step_x(const cli_log *g, double k)
{
    return g->steps_per_epoch > 0 ? k / g->steps_per_epoch : k;
}

/* The x position of the log's step i (0-based). */
static double log_x(const cli_log *g, size_t i)
{
    return step_x(g, (double)(g->step0 + i + 1));
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The q-quantile of the finite values of v[0, n) (NAN when none). */
static double quantile(const double *v, size_t n, double q)
{
    double *s = malloc((n ? n : 1) * sizeof *s);
    if (!s)
        return NAN;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i]))
            s[m++] = v[i];
    double r = NAN;
    if (m) {
        qsort(s, m, sizeof *s, cmp_double);
        r = s[(size_t)floor(q * (double)(m - 1))];
    }
    free(s);
    return r;
}

/* Frame, grid, y tick labels (class cls, suffix after each) and the panel's
 * name with its legend (items: colour, label, dot?). */
static void frame(const chart *c, const panel *p, const char *name, const char *cls,
                  double unit, const char *suffix)
{
    FILE *f = c->f;
    fprintf(f, "<text x=\"%d\" y=\"%.1f\" font-weight=\"bold\">%s</text>\n", ML, p->top - 8, name);
    int ny = (int)floor((p->b - p->a) / p->st + 0.5);
    for (int i = 0; i <= ny; i++) {
        double v = p->a + i * p->st, y = py(p, v);
        char lab[32];
        tick_label(lab, sizeof lab, v * unit, p->st * unit, suffix);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e9ecef\"/>\n", ML,
                y, W - MR, y);
        fprintf(f, "<text class=\"%s\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", cls,
                ML - 6, y + 4, lab);
    }
    int nx = (int)floor((c->xb - c->xa) / c->xst + 0.5);
    for (int i = 0; i <= nx; i++) {
        double x = c->xa + i * c->xst;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e9ecef\"/>\n",
                px(c, x), p->top, px(c, x), p->top + p->h);
    }
    fprintf(f, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"none\" "
               "stroke=\"#adb5bd\"/>\n", ML, p->top, PW, p->h);
}

/* A legend item at x on the panel's name line; returns the x after it. */
static double legend(const chart *c, const panel *p, double x, const char *colour, double width,
                     bool dot, const char *label)
{
    double y = p->top - 12;
    if (dot)
        fprintf(c->f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n", x + 8, y,
                colour);
    else
        fprintf(c->f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                      "stroke-width=\"%g\"/>\n", x, y, x + 16, y, colour, width);
    fprintf(c->f, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#495057\">%s</text>\n", x + 20, y + 4,
            label);
    return x + 20 + 6.6 * (double)strlen(label) + 14;
}

/* A polyline of the finite points (x[i], y[i] * unit), clipped to the panel. */
static void polyline(const chart *c, const panel *p, const char *cls, const char *colour,
                     double width, size_t n, const double *x, const double *y, double unit,
                     bool dots)
{
    FILE *f = c->f;
    fprintf(f, "<polyline class=\"%s\" clip-path=\"url(#clip%.0f)\" fill=\"none\" "
               "stroke=\"%s\" stroke-width=\"%g\" stroke-linejoin=\"round\" points=\"",
            cls, p->top, colour, width);
    for (size_t i = 0; i < n; i++)
        if (isfinite(y[i]))
            fprintf(f, "%.1f,%.1f ", px(c, x[i]), py(p, y[i] * unit));
    fprintf(f, "\"/>\n");
    for (size_t i = 0; dots && i < n; i++)
        if (isfinite(y[i]))
            fprintf(f, "<circle class=\"%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n",
                    cls, px(c, x[i]), py(p, y[i] * unit), colour);
}

/* The training loss of every step, thinned to the min and max of each
 * bucket when there are more steps than half-pixels. */
static void raw_loss(const chart *c, const panel *p)
{
    const cli_log *g = c->g;
    size_t buckets = 2 * PW, n = g->n;
    double *x = malloc((2 * (n < buckets ? n : buckets) + 1) * sizeof *x);
    double *y = malloc((2 * (n < buckets ? n : buckets) + 1) * sizeof *y);
    size_t m = 0;
    if (x && y && n <= buckets) {
        for (size_t i = 0; i < n; i++)
            x[m] = log_x(g, i), y[m++] = g->loss[i];
    } else if (x && y) {
        for (size_t k = 0; k < buckets; k++) {
            size_t i0 = k * n / buckets, i1 = (k + 1) * n / buckets;
            double lo = INFINITY, hi = -INFINITY;
            for (size_t i = i0; i < i1; i++)
                if (isfinite(g->loss[i]))
                    lo = fmin(lo, g->loss[i]), hi = fmax(hi, g->loss[i]);
            if (lo > hi)
                continue;
            double xm = step_x(g, (double)g->step0 + 0.5 * (double)(i0 + i1) + 0.5);
            x[m] = xm, y[m++] = lo;
            x[m] = xm, y[m++] = hi;
        }
    }
    if (x && y)
        polyline(c, p, "train-step", C_RAW, 1, m, x, y, 1, false);
    free(x);
    free(y);
}

/* The exponential moving average of the loss, bias-corrected (Adam's
 * correction), span n/40 steps; into s[0, n). */
static void smooth(const cli_log *g, double *s)
{
    double span = fmax(1, (double)g->n / 40), a = 1 - 2 / (span + 1), m = 0, w = 0;
    for (size_t i = 0; i < g->n; i++) {
        if (isfinite(g->loss[i]))
            m = a * m + (1 - a) * g->loss[i], w = a * w + (1 - a);
        s[i] = w > 0 ? m / w : NAN;
    }
}

static void loss_panel(const chart *c, panel *p)
{
    const cli_log *g = c->g;
    double *s = malloc((g->n ? g->n : 1) * sizeof *s), *xs = malloc((g->n ? g->n : 1) * sizeof *xs);
    if (!s || !xs) {
        free(s);
        free(xs);
        return;
    }
    smooth(g, s);
    for (size_t i = 0; i < g->n; i++)
        xs[i] = log_x(g, i);
    double lo = INFINITY, hi = quantile(g->loss, g->n, 0.98);
    hi = isfinite(hi) ? hi : -INFINITY;
    for (size_t i = 0; i < g->n; i++) {
        if (isfinite(g->loss[i]))
            lo = fmin(lo, g->loss[i]);
        if (isfinite(s[i]) && (double)i >= 0.02 * (double)g->n)
            lo = fmin(lo, s[i]), hi = fmax(hi, s[i]);
    }
    for (size_t k = 0; k < g->n_eval; k++)
        if (isfinite(g->e_loss[k]))
            lo = fmin(lo, g->e_loss[k]), hi = fmax(hi, g->e_loss[k]);
    cli_ticks(lo, hi, 5, &p->a, &p->b, &p->st);
    frame(c, p, "loss", "tick-loss", 1, "");
    double x = ML + 48;
    x = legend(c, p, x, C_RAW, 2, false, "train, each step");
    x = legend(c, p, x, C_SMOOTH, 2.5, false, "train, smoothed");
    char lab[32];
    snprintf(lab, sizeof lab, "%s", g->eval_name);
    legend(c, p, x, C_EVAL, 2, true, lab);
    raw_loss(c, p);
    polyline(c, p, "train-smooth", C_SMOOTH, 2.5, g->n, xs, s, 1, false);
    double *ex = malloc((g->n_eval ? g->n_eval : 1) * sizeof *ex);
    if (ex) {
        for (size_t k = 0; k < g->n_eval; k++)
            ex[k] = step_x(g, g->e_step[k]);
        polyline(c, p, "eval-loss", C_EVAL, 2, g->n_eval, ex, g->e_loss, 1, true);
    }
    size_t above = 0;
    for (size_t i = 0; i < g->n; i++)
        above += g->loss[i] > p->b;
    if (above)
        fprintf(c->f, "<text class=\"clipped\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\" "
                      "fill=\"#868e96\">%zu step%s above the axis</text>\n", W - MR - 4,
                p->top + 14, above, above > 1 ? "s" : "");
    free(ex);
    free(s);
    free(xs);
}

static void acc_panel(const chart *c, panel *p)
{
    const cli_log *g = c->g;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t k = 0; k < g->n_eval; k++)
        if (isfinite(g->e_acc[k]))
            lo = fmin(lo, 100 * g->e_acc[k]), hi = fmax(hi, 100 * g->e_acc[k]);
    cli_ticks(lo, hi, 4, &p->a, &p->b, &p->st);
    char name[64];
    snprintf(name, sizeof name, "%s accuracy", g->eval_name);
    frame(c, p, name, "tick-acc", 1, "%");
    double *ex = malloc((g->n_eval ? g->n_eval : 1) * sizeof *ex);
    if (!ex)
        return;
    for (size_t k = 0; k < g->n_eval; k++)
        ex[k] = step_x(g, g->e_step[k]);
    polyline(c, p, "eval-acc", C_ACC, 2, g->n_eval, ex, g->e_acc, 100, true);
    if (g->n_eval && isfinite(g->e_acc[g->n_eval - 1]))
        fprintf(c->f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" fill=\"%s\">last %.2f%%"
                      "</text>\n", W - MR, p->top - 8, C_ACC, 100 * g->e_acc[g->n_eval - 1]);
    free(ex);
}

static void lr_panel(const chart *c, panel *p)
{
    const cli_log *g = c->g;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < g->n; i++)
        if (isfinite(g->lr[i]))
            lo = fmin(lo, g->lr[i]), hi = fmax(hi, g->lr[i]);
    cli_ticks(lo, hi, 3, &p->a, &p->b, &p->st);
    frame(c, p, "learning rate", "tick-lr", 1, "");
    /* a step drawn as a step: the old rate up to the step where it changes */
    double *xs = malloc((2 * g->n + 1) * sizeof *xs), *ys = malloc((2 * g->n + 1) * sizeof *ys);
    size_t m = 0;
    for (size_t i = 0; xs && ys && i < g->n; i++) {
        if (i && g->lr[i] != g->lr[i - 1] &&
            fabs(g->lr[i] - g->lr[i - 1]) > 0.02 * fmax(fabs(g->lr[i]), fabs(g->lr[i - 1])))
            xs[m] = log_x(g, i - 1), ys[m++] = g->lr[i];
        xs[m] = log_x(g, i), ys[m++] = g->lr[i];
    }
    if (xs && ys)
        polyline(c, p, "lr", C_LR, 2, m, xs, ys, 1, false);
    free(xs);
    free(ys);
}

/* Whether the learning rate changes during the run. */
static bool lr_varies(const cli_log *g)
{
    for (size_t i = 1; i < g->n; i++)
        if (fabs(g->lr[i] - g->lr[0]) > 1e-12 * fabs(g->lr[0]))
            return true;
    return false;
}

static bool has_acc(const cli_log *g)
{
    for (size_t k = 0; k < g->n_eval; k++)
        if (isfinite(g->e_acc[k]))
            return true;
    return false;
}

/* Write the SVG text to f. */
static void draw(FILE *f, const cli_log *g)
{
    chart c = {.f = f, .g = g};
    double xmax = g->n ? log_x(g, g->n - 1) : 1;
    for (size_t k = 0; k < g->n_eval; k++)
        xmax = fmax(xmax, step_x(g, g->e_step[k]));
    cli_ticks(0, xmax, 8, &c.xa, &c.xb, &c.xst);
    if (g->steps_per_epoch > 0 && c.xst < 1 && xmax >= 2) /* whole epochs */
        cli_ticks(0, xmax, (int)ceil(xmax), &c.xa, &c.xb, &c.xst);
    bool acc = has_acc(g), lr = lr_varies(g);
    panel pl = {.top = 68, .h = 210}, pa = {0}, pr = {0};
    double bottom = pl.top + pl.h;
    if (acc)
        pa = (panel){.top = bottom + 40, .h = 130}, bottom = pa.top + pa.h;
    if (lr)
        pr = (panel){.top = bottom + 40, .h = 80}, bottom = pr.top + pr.h;
    double H = bottom + 46;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%.0f\" "
               "viewBox=\"0 0 %d %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            W, H, W, H);
    fprintf(f, "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">", W / 2);
    for (const char *t = g->title ? g->title : "training"; *t; t++) /* escaped */
        if (*t == '<')
            fputs("&lt;", f);
        else if (*t == '&')
            fputs("&amp;", f);
        else if (*t == '>')
            fputs("&gt;", f);
        else
            fputc(*t, f);
    fprintf(f, "</text>\n<defs>\n");
    const panel *ps[3] = {&pl, acc ? &pa : NULL, lr ? &pr : NULL};
    for (int i = 0; i < 3; i++)
        if (ps[i])
            fprintf(f, "<clipPath id=\"clip%.0f\"><rect x=\"%d\" y=\"%.1f\" width=\"%d\" "
                       "height=\"%.1f\"/></clipPath>\n", ps[i]->top, ML, ps[i]->top - 1, PW,
                    ps[i]->h + 2);
    fprintf(f, "</defs>\n");
    loss_panel(&c, &pl);
    if (acc)
        acc_panel(&c, &pa);
    if (lr)
        lr_panel(&c, &pr);
    int nx = (int)floor((c.xb - c.xa) / c.xst + 0.5);
    for (int i = 0; i <= nx; i++) {
        double x = c.xa + i * c.xst;
        char lab[32];
        tick_label(lab, sizeof lab, x, c.xst, "");
        fprintf(f, "<text class=\"tick-x\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s"
                   "</text>\n", px(&c, x), bottom + 16, lab);
    }
    fprintf(f, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n</svg>\n",
            ML + PW / 2, bottom + 36, g->steps_per_epoch > 0 ? "epoch" : "step");
}

int cli_chart_write(const cli_log *g, const char *opt, const char *path, char *why, size_t len)
{
    tg_atomic a;
    if (tg_atomic_open(&a, opt, path)) {
        snprintf(why, len, "%s", a.msg);
        return -1;
    }
    draw(a.f, g);
    if (tg_atomic_commit(&a)) {
        snprintf(why, len, "%s", a.msg);
        return -1;
    }
    return 0;
}

/* ---- the metrics table ---------------------------------------------------------- */

/* A number, or nothing for NAN. */
static void field(FILE *f, const char *fmt, double v)
{
    fputc(',', f);
    if (isfinite(v))
        fprintf(f, fmt, v);
}

int cli_metrics_write(const cli_log *g, const char *opt, const char *path, char *why, size_t len)
{
    tg_atomic a;
    if (tg_atomic_open(&a, opt, path)) {
        snprintf(why, len, "%s", a.msg);
        return -1;
    }
    FILE *f = a.f;
    fputs("step,epoch,split,loss,accuracy,lr,seconds\n", f);
    size_t k = 0;
    for (size_t i = 0; i <= g->n; i++) {
        for (; k < g->n_eval && g->e_step[k] <= (double)(g->step0 + i); k++) {
            fprintf(f, "%.0f,", g->e_step[k]); /* evaluations after that step */
            if (g->e_epoch[k])
                fprintf(f, "%d", g->e_epoch[k]);
            fprintf(f, ",%s", g->eval_name);
            field(f, "%.6g", g->e_loss[k]);
            field(f, "%.6g", g->e_acc[k]);
            field(f, "%.6g", g->e_lr[k]);
            field(f, "%.3f", g->e_sec[k]);
            fputc('\n', f);
        }
        if (i == g->n)
            break;
        fprintf(f, "%zu,", g->step0 + i + 1);
        if (g->epoch[i])
            fprintf(f, "%d", g->epoch[i]);
        fputs(",train", f);
        field(f, "%.6g", g->loss[i]);
        field(f, "%.6g", NAN);
        field(f, "%.6g", g->lr[i]);
        field(f, "%.3f", g->sec[i]);
        fputc('\n', f);
    }
    if (tg_atomic_commit(&a)) {
        snprintf(why, len, "%s", a.msg);
        return -1;
    }
    return 0;
}

int cli_check_writable(const char *opt, const char *path, char *why, size_t len)
{
    struct stat st;
    if (!stat(path, &st) && !S_ISREG(st.st_mode)) {
        snprintf(why, len, "%s %s %s", opt, path,
                 S_ISDIR(st.st_mode) ? "is a directory" : "is not a regular file");
        return -1;
    }
    tg_atomic a;
    if (tg_atomic_open(&a, opt, path)) {
        snprintf(why, len, "%s", a.msg);
        return -1;
    }
    tg_atomic_abort(&a);
    return 0;
}
