/* Optimizers (SGD, Adam, AdamW), learning-rate schedules and gradient
 * clipping by global norm, with the semantics of PyTorch's torch.optim.SGD,
 * torch.optim.Adam, torch.optim.AdamW, StepLR, CosineAnnealingLR and
 * torch.nn.utils.clip_grad_norm_ (formulas in tapegrad.h).
 *
 * All state is allocated by the constructors; tg_optim_step allocates
 * nothing.  A parameter's gradient is valid only when its grad_gen is the
 * tape's current leaf generation (see src/core/backward.c); otherwise it is
 * zero and the step uses a loop variant with a zero gradient instead of
 * reading (or clearing) the stale buffer.  Every update is one loop over the elements of
 * one parameter, specialised before the loop on dtype, gradient presence,
 * weight-decay mode and momentum mode, so the loop body has no branches and
 * no calls and the compiler vectorises it (sqrt needs -fno-math-errno, which
 * meson.build passes). */
#include "core.h"
#include "kernels.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>

enum { OPT_SGD = 1, OPT_ADAM = 2 };

struct tg_optim {
    tg_tape *tape;
    int kind;
    size_t n;
    tg_tensor **params;
    void **s1;          /* SGD: momentum buffers (NULL when μ = 0); Adam: m */
    void **s2;          /* Adam: v                                         */
    double lr, momentum, weight_decay, beta1, beta2, eps;
    bool nesterov, decoupled;
    long long steps;    /* Adam: steps taken (for the bias correction)     */
    /* tg_optim_state: the state moved into leaves of the tape (s1[k], s2[k]
     * then point into them and are not freed here); steps_t mirrors steps */
    tg_tensor **state_t;
    int n_state_t;
    tg_tensor *steps_t;
};

/* ---- parameter lists ----------------------------------------------------- */

/* Check params[i] (or the tape's leaf) as a parameter to update. */
static int check_param(tg_tape *tape, const tg_tensor *t, int i, const char *fn)
{
    if (!t)
        return tg_error(tape, "%s: params[%d] is NULL", fn, i);
    if (t->tape != tape)
        return tg_error(tape, "%s: params[%d] ('%s') belongs to another tape", fn, i, tg_label(t));
    if (t->node || t->temp)
        return tg_error(tape, "%s: params[%d] ('%s') is not a parameter: it is the output "
                              "of an op, not a leaf", fn, i, tg_label(t));
    if (t->dtype != TG_F32 && t->dtype != TG_F64)
        return tg_error(tape, "%s: params[%d] ('%s') is %s; only f32 and f64 parameters "
                              "can be updated", fn, i, tg_label(t),
                        tg_dtype_name((tg_dtype)t->dtype));
    if (!t->requires_grad)
        return tg_error(tape, "%s: params[%d] ('%s') is not a parameter: this %s leaf does "
                              "not require a gradient", fn, i, tg_label(t), tg_op_name(t));
    return TG_OK;
}

/* Validate the list (n = 0: every leaf of the tape that requires a
 * gradient).  *count gets its length; with out != NULL the tensors are also
 * stored into a new array (tg_malloc) in *out. */
static int collect(tg_tape *tape, int n, tg_tensor *const *params, const char *fn,
                   tg_tensor ***out, size_t *count)
{
    size_t c = 0;
    if (n < 0)
        return tg_error(tape, "%s: n = %d is negative", fn, n);
    if (n > 0 && !params)
        return tg_error(tape, "%s: params is NULL but n = %d", fn, n);
    if (n == 0) {
        for (size_t i = 0; i < tape->n_leaves; i++)
            c += tape->leaves[i]->requires_grad != 0;
        if (c == 0)
            return tg_error(tape, "%s: no parameters: no leaf of the tape requires a gradient",
                            fn);
    } else {
        for (int i = 0; i < n; i++) {
            if (check_param(tape, params[i], i, fn))
                return TG_ERR;
            for (int j = 0; j < i; j++)
                if (params[j] == params[i])
                    return tg_error(tape, "%s: params[%d] and params[%d] are the same "
                                          "tensor ('%s')", fn, j, i, tg_label(params[i]));
        }
        c = (size_t)n;
    }
    *count = c;
    if (!out)
        return TG_OK;
    tg_tensor **p = tg_malloc(c * sizeof *p);
    if (!p)
        return tg_error(tape, "%s: out of memory", fn);
    if (n == 0) {
        size_t k = 0;
        for (size_t i = 0; i < tape->n_leaves; i++)
            if (tape->leaves[i]->requires_grad)
                p[k++] = tape->leaves[i];
    } else {
        memcpy(p, params, c * sizeof *p);
    }
    *out = p;
    return TG_OK;
}

/* ---- construction -------------------------------------------------------- */

static bool bad_lr(double lr) { return !(lr >= 0) || !isfinite(lr); }

static void free_state(void **s, size_t n)
{
    if (!s)
        return;
    for (size_t i = 0; i < n; i++)
        tg_free_aligned(s[i]);
    tg_free(s);
}

void tg_optim_free(tg_optim *o)
{
    if (!o)
        return;
    if (o->state_t) { /* the buffers belong to the tape's leaves */
        tg_free(o->s1);
        tg_free(o->s2);
        o->s1 = o->s2 = NULL;
        tg_free(o->state_t);
    }
    free_state(o->s1, o->n);
    free_state(o->s2, o->n);
    tg_free(o->params);
    tg_free(o);
}

/* One zeroed buffer of each parameter's size and dtype. */
static void **new_state(tg_optim *o)
{
    void **s = tg_malloc(o->n * sizeof *s);
    if (!s)
        return NULL;
    memset(s, 0, o->n * sizeof *s);
    for (size_t i = 0; i < o->n; i++) {
        const tg_tensor *t = o->params[i];
        size_t bytes = t->size * tg_dtype_size((tg_dtype)t->dtype);
        if (!(s[i] = tg_aligned_alloc(bytes))) {
            free_state(s, o->n);
            return NULL;
        }
        memset(s[i], 0, bytes);
    }
    return s;
}

static tg_optim *optim_new(tg_tape *tape, int n, tg_tensor *const *params, int kind,
                           int n_state, const char *fn)
{
    tg_optim *o = tg_malloc(sizeof *o);
    if (!o) {
        tg_error(tape, "%s: out of memory", fn);
        return NULL;
    }
    memset(o, 0, sizeof *o);
    o->tape = tape;
    o->kind = kind;
    if (collect(tape, n, params, fn, &o->params, &o->n)) {
        tg_free(o);
        return NULL;
    }
    if ((n_state >= 1 && !(o->s1 = new_state(o))) ||
        (n_state >= 2 && !(o->s2 = new_state(o)))) {
        tg_optim_free(o);
        tg_error(tape, "%s: out of memory", fn);
        return NULL;
    }
    return o;
}

tg_optim *tg_sgd_new(tg_tape *tape, int n, tg_tensor *const *params, const tg_sgd_opts *opts)
{
    if (!tape)
        return NULL;
    if (!opts) {
        tg_error(tape, "sgd: opts is NULL (SGD needs at least a learning rate)");
        return NULL;
    }
    if (bad_lr(opts->lr)) {
        tg_error(tape, "sgd: learning rate %g is not a finite number >= 0", opts->lr);
        return NULL;
    }
    if (!(opts->momentum >= 0) || !isfinite(opts->momentum)) {
        tg_error(tape, "sgd: momentum %g is not a finite number >= 0", opts->momentum);
        return NULL;
    }
    if (!(opts->weight_decay >= 0) || !isfinite(opts->weight_decay)) {
        tg_error(tape, "sgd: weight_decay %g is not a finite number >= 0",
                 opts->weight_decay);
        return NULL;
    }
    if (opts->nesterov && opts->momentum == 0) {
        tg_error(tape, "sgd: Nesterov momentum needs a momentum > 0");
        return NULL;
    }
    tg_optim *o = optim_new(tape, n, params, OPT_SGD, opts->momentum > 0 ? 1 : 0, "sgd");
    if (!o)
        return NULL;
    o->lr = opts->lr;
    o->momentum = opts->momentum;
    o->weight_decay = opts->weight_decay;
    o->nesterov = opts->nesterov;
    return o;
}

tg_optim *tg_adam_new(tg_tape *tape, int n, tg_tensor *const *params, const tg_adam_opts *opts)
{
    if (!tape)
        return NULL;
    const char *fn = opts && opts->decoupled ? "adamw" : "adam";
    tg_adam_opts d = {0};
    if (opts)
        d = *opts;
    if (d.lr == 0)
        d.lr = 1e-3;
    if (d.beta1 == 0)
        d.beta1 = 0.9;
    if (d.beta2 == 0)
        d.beta2 = 0.999;
    if (d.eps == 0)
        d.eps = 1e-8;
    if (bad_lr(d.lr)) {
        tg_error(tape, "%s: learning rate %g is not a finite number >= 0", fn, d.lr);
        return NULL;
    }
    if (!(d.beta1 > 0 && d.beta1 < 1) || !(d.beta2 > 0 && d.beta2 < 1)) {
        tg_error(tape, "%s: betas (%g, %g) must both be in (0, 1)", fn, d.beta1, d.beta2);
        return NULL;
    }
    if (!(d.eps > 0) || !isfinite(d.eps)) {
        tg_error(tape, "%s: eps %g is not a finite number > 0", fn, d.eps);
        return NULL;
    }
    if (!(d.weight_decay >= 0) || !isfinite(d.weight_decay)) {
        tg_error(tape, "%s: weight_decay %g is not a finite number >= 0", fn, d.weight_decay);
        return NULL;
    }
    tg_optim *o = optim_new(tape, n, params, OPT_ADAM, 2, fn);
    if (!o)
        return NULL;
    o->lr = d.lr;
    o->beta1 = d.beta1;
    o->beta2 = d.beta2;
    o->eps = d.eps;
    o->weight_decay = d.weight_decay;
    o->decoupled = d.decoupled;
    return o;
}

void tg_optim_set_lr(tg_optim *o, double lr)
{
    if (!o)
        return;
    if (bad_lr(lr)) {
        tg_error(o->tape, "optim_set_lr: learning rate %g is not a finite number >= 0 "
                          "(kept %g)", lr, o->lr);
        return;
    }
    o->lr = lr;
}

double tg_optim_get_lr(const tg_optim *o) { return o ? o->lr : NAN; }

/* ---- update kernels -------------------------------------------------------
 * D is the expression of the descent direction's gradient part for element
 * i (g[i], g[i] + wd·w[i], wd·w[i] or 0); each macro expands to branch-free
 * loops, one per mode, chosen before the loop. */

#define SGD_LOOPS(T, D)                                                       \
    do {                                                                      \
        if (!v) {                                                             \
            for (size_t i = 0; i < n; i++)                                    \
                w[i] -= lr * (D);                                             \
        } else if (!nesterov) {                                               \
            for (size_t i = 0; i < n; i++) {                                  \
                T b = mu * v[i] + (D);                                        \
                v[i] = b;                                                     \
                w[i] -= lr * b;                                               \
            }                                                                 \
        } else {                                                              \
            for (size_t i = 0; i < n; i++) {                                  \
                T d = (D);                                                    \
                T b = mu * v[i] + d;                                          \
                v[i] = b;                                                     \
                w[i] -= lr * (d + mu * b);                                    \
            }                                                                 \
        }                                                                     \
    } while (0)

#define DEFINE_SGD(T, SUF)                                                    \
    static void sgd_##SUF(T *restrict w, const T *restrict g, T *restrict v,  \
                          size_t n, T lr, T mu, T wd, bool nesterov)          \
    {                                                                         \
        if (g && wd != 0)                                                     \
            SGD_LOOPS(T, g[i] + wd * w[i]);                                   \
        else if (g)                                                           \
            SGD_LOOPS(T, g[i]);                                               \
        else if (wd != 0)                                                     \
            SGD_LOOPS(T, wd * w[i]);                                          \
        else if (v) /* no gradient, no decay: only the momentum acts */       \
            SGD_LOOPS(T, (T)0);                                               \
    }

DEFINE_SGD(float, f32)
DEFINE_SGD(double, f64)

/* G: the gradient of element i (coupled weight decay included); W: w[i]
 * after the decoupled decay (w[i] or keep·w[i]). */
#define ADAM_LOOP(T, SQRT, G, W)                                              \
    for (size_t i = 0; i < n; i++) {                                          \
        T gi = (G);                                                           \
        T mi = m[i] + omb1 * (gi - m[i]);                                     \
        T vi = b2 * v[i] + omb2 * (gi * gi);                                  \
        m[i] = mi;                                                            \
        v[i] = vi;                                                            \
        w[i] = (W) - step * (mi / (SQRT(vi) / bc2s + eps));                   \
    }

#define DEFINE_ADAM(T, SUF, SQRT)                                             \
    static void adam_##SUF(T *restrict w, const T *restrict g, T *restrict m, \
                           T *restrict v, size_t n, T step, T omb1, T b2,     \
                           T omb2, T bc2s, T eps, T wd, T keep)               \
    {                                                                         \
        if (g && wd != 0)                                                     \
            ADAM_LOOP(T, SQRT, g[i] + wd * w[i], w[i])                        \
        else if (g && keep != 1)                                              \
            ADAM_LOOP(T, SQRT, g[i], keep * w[i])                             \
        else if (g)                                                           \
            ADAM_LOOP(T, SQRT, g[i], w[i])                                    \
        else if (wd != 0)                                                     \
            ADAM_LOOP(T, SQRT, wd * w[i], w[i])                               \
        else if (keep != 1)                                                   \
            ADAM_LOOP(T, SQRT, (T)0, keep * w[i])                             \
        else                                                                  \
            ADAM_LOOP(T, SQRT, (T)0, w[i])                                    \
    }

DEFINE_ADAM(float, f32, sqrtf)
DEFINE_ADAM(double, f64, sqrt)

/* The parameter's gradient buffer if it holds this period's gradient, else
 * NULL (a zero gradient). */
static const void *grad_of(const tg_tensor *t)
{
    return t->grad && t->grad_gen == tg_cur_gen(t) ? t->grad : NULL;
}

/* One parameter's update, in element ranges [b, e) for tg_parallel_for. */
typedef struct update {
    const tg_optim *o;
    tg_tensor *t;
    const void *g;
    void *s1, *s2;
    double step, bc2s, wd, keep; /* Adam's per-step constants */
} update;

#define AT(p, T, b) ((p) ? (T *)(p) + (b) : NULL)

static void sgd_range(void *ctx, size_t b, size_t e)
{
    const update *u = ctx;
    const tg_optim *o = u->o;
    if (u->t->dtype == TG_F32)
        sgd_f32(AT(u->t->data, float, b), AT(u->g, const float, b), AT(u->s1, float, b), e - b,
                (float)o->lr, (float)o->momentum, (float)o->weight_decay, o->nesterov);
    else
        sgd_f64(AT(u->t->data, double, b), AT(u->g, const double, b), AT(u->s1, double, b),
                e - b, o->lr, o->momentum, o->weight_decay, o->nesterov);
}

static void adam_range(void *ctx, size_t b, size_t e)
{
    const update *u = ctx;
    const tg_optim *o = u->o;
    if (u->t->dtype == TG_F32)
        adam_f32(AT(u->t->data, float, b), AT(u->g, const float, b), AT(u->s1, float, b),
                 AT(u->s2, float, b), e - b, (float)u->step, (float)(1 - o->beta1),
                 (float)o->beta2, (float)(1 - o->beta2), (float)u->bc2s, (float)o->eps,
                 (float)u->wd, (float)u->keep);
    else
        adam_f64(AT(u->t->data, double, b), AT(u->g, const double, b), AT(u->s1, double, b),
                 AT(u->s2, double, b), e - b, u->step, 1 - o->beta1, o->beta2, 1 - o->beta2,
                 u->bc2s, o->eps, u->wd, u->keep);
}

static void sgd_step(tg_optim *o)
{
    for (size_t k = 0; k < o->n; k++) {
        update u = {o, o->params[k], grad_of(o->params[k]), o->s1 ? o->s1[k] : NULL, NULL,
                    0, 0, 0, 0};
        tg_parallel_for(u.t->size, TG_ELEM_GRAIN, sgd_range, &u);
    }
}

/* The steps taken: with tg_optim_state the counter lives in a leaf, which
 * tg_load may have changed (a value that is no count keeps the old one). */
static long long steps_now(const tg_optim *o)
{
    if (!o->steps_t)
        return o->steps;
    double v = ((const double *)o->steps_t->data)[0];
    return v >= 0 && v <= 9007199254740992.0 && v == floor(v) ? (long long)v : o->steps;
}

static void adam_step(tg_optim *o)
{
    o->steps = steps_now(o) + 1;
    double bc1 = 1 - pow(o->beta1, (double)o->steps);
    double bc2 = 1 - pow(o->beta2, (double)o->steps);
    update u = {o, NULL, NULL, NULL, NULL, o->lr / bc1, sqrt(bc2),
                o->decoupled ? 0 : o->weight_decay, o->decoupled ? 1 - o->lr * o->weight_decay : 1};
    for (size_t k = 0; k < o->n; k++) {
        u.t = o->params[k];
        u.g = grad_of(u.t);
        u.s1 = o->s1[k];
        u.s2 = o->s2[k];
        tg_parallel_for(u.t->size, TG_ELEM_GRAIN, adam_range, &u);
    }
}

int tg_optim_step(tg_optim *o)
{
    if (!o)
        return TG_ERR;
    if (o->kind == OPT_SGD) {
        sgd_step(o);
        o->steps = steps_now(o) + 1;
    } else {
        adam_step(o);
    }
    if (o->steps_t) {
        ((double *)o->steps_t->data)[0] = (double)o->steps;
        tg_write_leaf(o->steps_t, "optim_step");
    }
    for (size_t k = 0; k < o->n; k++) /* leaves: a write, never refused */
        tg_write_leaf(o->params[k], "optim_step");
    return TG_OK;
}

/* ---- schedules ----------------------------------------------------------- */

double tg_lr_step(double base, long epoch, long step_size, double gamma)
{
    if (epoch < 0 || step_size < 1)
        return NAN;
    return base * pow(gamma, (double)(epoch / step_size));
}

double tg_lr_cosine(double base, double min_lr, long t, long total)
{
    if (total < 1 || t < 0)
        return NAN;
    if (t > total)
        t = total;
    const double pi = 3.14159265358979323846;
    return min_lr + (base - min_lr) * (1 + cos(pi * (double)t / (double)total)) / 2;
}

/* ---- clipping ------------------------------------------------------------ */

static double sumsq(const tg_tensor *t)
{
    const void *gv = grad_of(t);
    double s = 0;
    if (!gv)
        return 0;
    if (t->dtype == TG_F32) {
        const float *g = gv;
        for (size_t i = 0; i < t->size; i++)
            s += (double)g[i] * g[i];
    } else {
        const double *g = gv;
        for (size_t i = 0; i < t->size; i++)
            s += g[i] * g[i];
    }
    return s;
}

static void scale_grad(tg_tensor *t, double c)
{
    void *gv = t->grad && t->grad_gen == tg_cur_gen(t) ? t->grad : NULL;
    if (!gv)
        return;
    if (t->dtype == TG_F32) {
        float *g = gv, cf = (float)c;
        for (size_t i = 0; i < t->size; i++)
            g[i] *= cf;
    } else {
        double *g = gv;
        for (size_t i = 0; i < t->size; i++)
            g[i] *= c;
    }
}

double tg_clip_grad_norm(tg_tape *tape, int n, tg_tensor *const *params, double max_norm)
{
    if (!tape)
        return -1;
    if (!(max_norm >= 0)) {
        tg_error(tape, "clip_grad_norm: max_norm %g is not a number >= 0", max_norm);
        return -1;
    }
    size_t count;
    if (collect(tape, n, params, "clip_grad_norm", NULL, &count))
        return -1;
    double s = 0;
    if (n == 0) {
        for (size_t i = 0; i < tape->n_leaves; i++)
            if (tape->leaves[i]->requires_grad)
                s += sumsq(tape->leaves[i]);
    } else {
        for (int i = 0; i < n; i++)
            s += sumsq(params[i]);
    }
    double norm = sqrt(s);
    if (!isfinite(norm))
        return norm; /* NaN or Inf: the gradients are left as they are */
    double coef = max_norm / (norm + 1e-6);
    if (coef < 1) {
        if (n == 0) {
            for (size_t i = 0; i < tape->n_leaves; i++)
                if (tape->leaves[i]->requires_grad)
                    scale_grad(tape->leaves[i], coef);
        } else {
            for (int i = 0; i < n; i++)
                scale_grad(params[i], coef);
        }
    }
    return norm;
}

/* ---- state for checkpoints ------------------------------------------------ */

/* "<prefix>.<param name>.<what>", or p<k> for a parameter without a name. */
static tg_tensor *state_leaf(tg_optim *o, const char *prefix, size_t k, const char *what)
{
    const tg_tensor *p = o->params[k];
    char name[4200];
    if (p->name)
        snprintf(name, sizeof name, "%s.%s.%s", prefix, p->name, what);
    else
        snprintf(name, sizeof name, "%s.p%zu.%s", prefix, k, what);
    return tg_input(o->tape, name, (tg_dtype)p->dtype, p->rank, p->shape);
}

int tg_optim_state(tg_optim *o, const char *prefix, int max, tg_tensor **out)
{
    if (!o)
        return TG_ERR;
    if (max < 0 || (max > 0 && !out))
        return tg_error(o->tape, "optim_state: max = %d with out %s: give max >= 0 and, when "
                                 "max > 0, room for max tensors", max, out ? "set" : "NULL");
    int slots = (o->s1 != NULL) + (o->s2 != NULL);
    size_t total = o->n * (size_t)slots + 1;
    if (total > INT_MAX)
        return tg_error(o->tape, "optim_state: too many state tensors");
    if (!o->state_t) {
        if (!prefix || !*prefix)
            prefix = "optim";
        if (strlen(prefix) > 64)
            return tg_error(o->tape, "optim_state: prefix longer than 64 bytes");
        tg_tensor **t = tg_malloc(total * sizeof *t);
        if (!t)
            return tg_error(o->tape, "optim_state: out of memory");
        size_t c = 0;
        for (size_t k = 0; k < o->n; k++)
            for (int s = 0; s < slots; s++) {
                const char *what = o->kind == OPT_SGD ? "momentum" : s ? "adam_v" : "adam_m";
                if (!(t[c++] = state_leaf(o, prefix, k, what))) {
                    tg_free(t);
                    return TG_ERR; /* tg_input's message is on the tape */
                }
            }
        char name[80];
        snprintf(name, sizeof name, "%s.steps", prefix);
        tg_tensor *st = tg_input(o->tape, name, TG_F64, 1, (size_t[]){1});
        if (!st) {
            tg_free(t);
            return TG_ERR;
        }
        t[c] = st;
        /* move the state into the leaves: from now on they are the state */
        c = 0;
        for (size_t k = 0; k < o->n; k++)
            for (int s = 0; s < slots; s++) {
                void **buf = s ? &o->s2[k] : &o->s1[k];
                tg_tensor *leaf = t[c++];
                memcpy(leaf->data, *buf, leaf->size * tg_dtype_size((tg_dtype)leaf->dtype));
                tg_free_aligned(*buf);
                *buf = leaf->data;
            }
        ((double *)st->data)[0] = (double)o->steps;
        o->steps_t = st;
        o->state_t = t;
        o->n_state_t = (int)total;
    }
    for (int i = 0; i < o->n_state_t && i < max; i++)
        out[i] = o->state_t[i];
    return o->n_state_t;
}

long long tg_optim_steps(const tg_optim *o)
{
    if (!o)
        return -1;
    return steps_now(o);
}

size_t tg_optim_bytes(const tg_optim *o)
{
    if (!o)
        return 0;
    size_t slots = (size_t)(o->s1 != NULL) + (o->s2 != NULL), bytes = 0;
    for (size_t k = 0; k < o->n; k++)
        bytes += slots * o->params[k]->size * tg_dtype_size((tg_dtype)o->params[k]->dtype);
    return bytes;
}

int tg_optim_set_steps(tg_optim *o, long long steps)
{
    if (!o)
        return TG_ERR;
    if (steps < 0 || steps > (1LL << 53))
        return tg_error(o->tape, "optim_set_steps: %lld is outside 0..2^53", steps);
    o->steps = steps;
    if (o->steps_t)
        ((double *)o->steps_t->data)[0] = (double)steps;
    return TG_OK;
}

/* ---- the tape's generator ------------------------------------------------- */

int tg_tape_rng_get(const tg_tape *tape, tg_rng *rng)
{
    if (!tape || !rng)
        return TG_ERR;
    *rng = tape->rng;
    return TG_OK;
}

int tg_tape_rng_set(tg_tape *tape, const tg_rng *rng)
{
    if (!tape)
        return TG_ERR;
    if (!rng)
        return tg_error(tape, "tape_rng_set: rng is NULL");
    if (!(rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]))
        return tg_error(tape, "tape_rng_set: the state is all zero, which xoshiro256** "
                              "never leaves (not a saved generator)");
    tape->rng = *rng;
    return TG_OK;
}
