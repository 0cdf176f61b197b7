/* Derivation files: lexer and parser (the grammar is in docs/derivations.md).
 *
 * One statement per line; a backslash at the end of a line continues it.  Names are resolved as they are met (a name is used after the
 * line that defines it), so every error is reported at its place with the
 * line and a caret. */
#include "deriv.h"

#include "core.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const dv_func dv_funcs[] = {
    {"sigmoid", 1, 1, "sigmoid(X)"},      {"relu", 1, 1, "relu(X)"},
    {"tanh", 1, 1, "tanh(X)"},            {"exp", 1, 1, "exp(X)"},
    {"log", 1, 1, "log(X)"},              {"sqrt", 1, 1, "sqrt(X)"},
    {"abs", 1, 1, "abs(X)"},              {"gelu", 1, 1, "gelu(X)"},
    {"silu", 1, 1, "silu(X)"},            {"softplus", 1, 1, "softplus(X)"},
    {"softmax", 1, 1, "softmax(X) (rows)"}, {"log_softmax", 1, 1, "log_softmax(X) (rows)"},
    {"sum", 1, 2, "sum(X) or sum(X, axis)"}, {"mean", 1, 2, "mean(X) or mean(X, axis)"},
    {"sum_rows", 1, 1, "sum_rows(X): the sum of the rows, sum(X, 0)"},
    {"sum_cols", 1, 1, "sum_cols(X): the sum of the columns, sum(X, 1)"},
    {"trace", 1, 1, "trace(A)"},          {"transpose", 1, 1, "transpose(A)"},
    {"class_means", 3, 3, "class_means(X, y, classes)"},
    {"gather", 2, 2, "gather(X, idx): rows of X"},
    {"one_hot", 2, 2, "one_hot(y, classes)"},
    {"mse", 2, 2, "mse(P, T): mean of (P-T)^2"},
    {"softmax_ce", 2, 2, "softmax_ce(Z, y): mean cross-entropy, i32 labels y"},
    {"softmax_ce_onehot", 2, 2, "softmax_ce_onehot(Z, T): mean over rows of -sum(T log softmax(Z))"},
    {"bce", 2, 2, "bce(P, T): mean binary cross-entropy"},
    {"bce_logits", 2, 2, "bce_logits(Z, T)"},
    {"l2", 2, 2, "l2(W, lambda): lambda/2 sum(W^2)"},
    {"maximum", 2, 2, "maximum(A, B): elementwise, broadcasting"},
    {"minimum", 2, 2, "minimum(A, B): elementwise, broadcasting"},
    {"max", 2, 2, "max(X, axis): the largest along an axis"},
    {"clamp", 3, 3, "clamp(X, lo, hi)"},
    {"leaky_relu", 2, 2, "leaky_relu(X, slope)"},
    {"layer_norm", 1, 3, "layer_norm(X) or layer_norm(X, gamma, beta): rows, eps 1e-5"},
    {"softmax_causal", 1, 1, "softmax_causal(S): rows, row i sees columns <= i"},
    {"sum_keep", 2, 2, "sum_keep(X, axis): sum(X, axis) keeping that axis as size 1 "
                       "(sum_keep(X, 1) of X [n,m] is [n,1])"},
    {"ones_like", 1, 1, "ones_like(X): a constant of X's shape, every element 1 "
                        "(to broadcast: ones_like(X) * v)"},
    {"step", 1, 1, "step(X): a constant, 1 where X > 0 and 0 elsewhere (ReLU's derivative)"},
    {"eye", 2, 3, "eye(r, c) or eye(r, c, k): the r x c constant with ones at (i, i + k) "
                  "(k = 0: I or its first rows/columns; eye(n + 1, n, -1) is [0; I])"},
    {"bias_unit", 1, 1, "bias_unit(A): [1; A], A [n,m] with a row of ones on top (the bias "
                        "unit a0 = 1 of Ng's notation), differentiable in A"},
};
const int dv_n_funcs = (int)(sizeof dv_funcs / sizeof dv_funcs[0]);

static const char *const keywords[] = {"input", "param", "check", "expect", "mismatch",
                                       "in", "onehot", "labels"};

/* ---- messages ------------------------------------------------------------ */

static size_t utf8_len(const char *p, const char *end)
{
    size_t n = 0;
    for (; p < end; p++)
        n += ((unsigned char)*p & 0xC0) != 0x80;
    return n;
}

/* Byte offset of the col-th (1-based) character of [p, end). */
static const char *utf8_at(const char *p, const char *end, size_t col)
{
    size_t c = 1;
    while (p < end && c < col) {
        p++;
        while (p < end && ((unsigned char)*p & 0xC0) == 0x80)
            p++;
        c++;
    }
    return p;
}

void dv_error_at(const tg_deriv *d, tg_err *err, int line, int col, const char *fmt, ...)
{
    if (!err)
        return;
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *p = d->text, *end = d->text + d->len;
    for (int l = 1; l < line && p < end; p++)
        l += *p == '\n';
    const char *e = p;
    while (e < end && *e != '\n')
        e++;
    /* a window of at most 56 characters around the column */
    size_t cols = utf8_len(p, e), c = col > 0 ? (size_t)col : 1, from = 1;
    if (cols > 56 && c > 40)
        from = c - 40;
    const char *w = utf8_at(p, e, from), *we = utf8_at(w, e, 57);
    while (we > w && (we[-1] == ' ' || we[-1] == '\r'))
        we--;
    snprintf(err->msg, sizeof err->msg, "%.100s:%d:%d: %s\n  %s%.*s%s\n  %*s^", d->file, line, col,
             msg, from > 1 ? "..." : "", (int)(we - w), w, we < e ? "..." : "",
             (int)(c - from + (from > 1 ? 3 : 0)), "");
}

static size_t edit_distance(const char *a, size_t na, const char *b)
{
    size_t nb = strlen(b), row[64];
    if (na >= 63 || nb >= 63)
        return SIZE_MAX;
    for (size_t j = 0; j <= nb; j++)
        row[j] = j;
    for (size_t i = 1; i <= na; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= nb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            diag = up;
            row[j] = best;
        }
    }
    return row[nb];
}

const char *dv_suggest(const tg_deriv *d, const char *s, size_t n)
{
    const char *best = NULL;
    size_t bd = n / 3 + 2;
    for (int i = 0; i < d->n_syms + dv_n_funcs; i++) {
        const char *c = i < d->n_syms ? d->syms[i].name : dv_funcs[i - d->n_syms].name;
        size_t e = edit_distance(s, n, c);
        if (e < bd)
            bd = e, best = c;
    }
    return best;
}

/* ---- lexer --------------------------------------------------------------- */

typedef enum tok {
    T_EOF, T_NL, T_NUM, T_NAME, T_PLUS, T_MINUS, T_STAR, T_SLASH, T_CARET, T_LP, T_RP,
    T_LB, T_RB, T_COMMA, T_EQ, T_DEFEQ, T_AT, T_TR, T_PARTIAL, T_BAD
} tok;

typedef struct lexer {
    const char *p, *end;
    int line, col;  /* of p */
    int depth;      /* open ( and [: newlines inside do not end a statement */
    /* the current token */
    tok t;
    const char *s;
    size_t n;
    int tline, tcol;
    double num;
} lexer;

static void adv(lexer *lx, size_t bytes)
{
    for (size_t i = 0; i < bytes; i++, lx->p++)
        lx->col += ((unsigned char)*lx->p & 0xC0) != 0x80;
}

static bool starts(const lexer *lx, const char *u)
{
    size_t n = strlen(u);
    return (size_t)(lx->end - lx->p) >= n && !memcmp(lx->p, u, n);
}

static void next(lexer *lx)
{
    for (;;) {
        while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\r'))
            adv(lx, 1);
        if (lx->p < lx->end && *lx->p == '#')
            while (lx->p < lx->end && *lx->p != '\n')
                adv(lx, 1);
        if (lx->p < lx->end && *lx->p == '\\') { /* a continuation: \ at the end of a line */
            const char *q = lx->p + 1;
            while (q < lx->end && (*q == ' ' || *q == '\t' || *q == '\r'))
                q++;
            if (q < lx->end && *q == '\n') {
                lx->p = q + 1, lx->line++, lx->col = 1;
                continue;
            }
        }
        break;
    }
    lx->s = lx->p, lx->tline = lx->line, lx->tcol = lx->col, lx->n = 1;
    if (lx->p >= lx->end) {
        lx->t = T_EOF, lx->n = 0;
        return;
    }
    unsigned char c = (unsigned char)*lx->p;
    if (c == '\n') {
        lx->t = T_NL;
        lx->p++, lx->line++, lx->col = 1;
        return;
    }
    if (isdigit(c) || (c == '.' && lx->p + 1 < lx->end && isdigit((unsigned char)lx->p[1]))) {
        char buf[64];
        size_t k = 0;
        const char *q = lx->p;
        while (q < lx->end && k < sizeof buf - 1 &&
               (isdigit((unsigned char)*q) || *q == '.' ||
                ((*q == 'e' || *q == 'E') && q + 1 < lx->end &&
                 (isdigit((unsigned char)q[1]) || q[1] == '-' || q[1] == '+')) ||
                ((*q == '-' || *q == '+') && k > 0 && (buf[k - 1] == 'e' || buf[k - 1] == 'E'))))
            buf[k++] = *q++;
        buf[k] = 0;
        char *stop;
        lx->num = strtod(buf, &stop);
        lx->t = *stop || !isfinite(lx->num) ? T_BAD : T_NUM;
        lx->n = k;
        adv(lx, k);
        return;
    }
    if (isalpha(c) || c == '_') {
        const char *q = lx->p;
        while (q < lx->end && (isalnum((unsigned char)*q) || *q == '_'))
            q++;
        lx->t = T_NAME, lx->n = (size_t)(q - lx->p);
        adv(lx, lx->n);
        return;
    }
    static const struct { const char *u; tok t; } sym[] = {
        {":=", T_DEFEQ}, {"\xe1\xb5\x80", T_TR} /* ᵀ */, {"\xe2\x8a\x99", T_STAR} /* ⊙ */,
        {"\xc2\xb7", T_AT} /* · */, {"\xe2\x88\x82", T_PARTIAL} /* ∂ */,
        {"+", T_PLUS}, {"-", T_MINUS}, {"*", T_STAR}, {"/", T_SLASH}, {"^", T_CARET},
        {"(", T_LP}, {")", T_RP}, {"[", T_LB}, {"]", T_RB}, {",", T_COMMA}, {"=", T_EQ},
        {"@", T_AT}, {"'", T_TR}};
    for (size_t i = 0; i < sizeof sym / sizeof sym[0]; i++)
        if (starts(lx, sym[i].u)) {
            lx->t = sym[i].t, lx->n = strlen(sym[i].u);
            lx->depth += (lx->t == T_LP || lx->t == T_LB) - (lx->t == T_RP || lx->t == T_RB);
            if (lx->depth < 0)
                lx->depth = 0;
            adv(lx, lx->n);
            return;
        }
    lx->t = T_BAD; /* one character, UTF-8 sequence included */
    size_t k = 1;
    while (lx->p + k < lx->end && ((unsigned char)lx->p[k] & 0xC0) == 0x80)
        k++;
    lx->n = k;
    adv(lx, k);
}

/* ---- parser -------------------------------------------------------------- */

typedef struct parser {
    tg_deriv *d;
    lexer lx;
    tg_err *err;
    bool failed;
    int depth;
    stkind ctx; /* the statement being parsed: gradients only in := and check */
} parser;

static int fail(parser *ps, int line, int col, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static int fail(parser *ps, int line, int col, const char *fmt, ...)
{
    if (ps->failed)
        return -1;
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dv_error_at(ps->d, ps->err, line, col, "%s", msg);
    ps->failed = true;
    return -1;
}

static const char *tok_desc(const lexer *lx, char *buf, size_t cap)
{
    switch (lx->t) {
    case T_EOF: return "the end of the file";
    case T_NL: return "the end of the line";
    default: snprintf(buf, cap, "'%.*s'", (int)(lx->n < 40 ? lx->n : 40), lx->s); return buf;
    }
}

static int unexpected(parser *ps, const char *wanted)
{
    char b[64];
    return fail(ps, ps->lx.tline, ps->lx.tcol, "expected %s, found %s", wanted,
                tok_desc(&ps->lx, b, sizeof b));
}

static bool is_word(const lexer *lx, const char *w)
{
    return lx->t == T_NAME && lx->n == strlen(w) && !memcmp(lx->s, w, lx->n);
}

static int find_sym(const tg_deriv *d, const char *s, size_t n)
{
    for (int i = 0; i < d->n_syms; i++)
        if (strlen(d->syms[i].name) == n && !memcmp(d->syms[i].name, s, n))
            return i;
    return -1;
}

static int find_func(const char *s, size_t n)
{
    for (int i = 0; i < dv_n_funcs; i++)
        if (strlen(dv_funcs[i].name) == n && !memcmp(dv_funcs[i].name, s, n))
            return i;
    return -1;
}

static bool is_keyword(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof keywords / sizeof *keywords; i++)
        if (strlen(keywords[i]) == n && !memcmp(keywords[i], s, n))
            return true;
    return false;
}

static dv_expr *new_expr(parser *ps, ekind k, const lexer *at)
{
    tg_deriv *d = ps->d;
    if (d->n_exprs == d->cap_exprs) {
        size_t cap = d->cap_exprs ? 2 * d->cap_exprs : 64;
        dv_expr **p = tg_realloc(d->exprs, cap * sizeof *p);
        if (!p)
            return fail(ps, at->tline, at->tcol, "out of memory"), NULL;
        d->exprs = p, d->cap_exprs = cap;
    }
    dv_expr *e = tg_malloc(sizeof *e);
    if (!e)
        return fail(ps, at->tline, at->tcol, "out of memory"), NULL;
    memset(e, 0, sizeof *e);
    d->exprs[d->n_exprs++] = e;
    e->k = k, e->line = at->tline, e->col = at->tcol, e->src = at->s, e->sym = e->sym2 = -1;
    return e;
}

/* e spans from its start to the end of the last token consumed */
static void close_span(parser *ps, dv_expr *e, const char *end) { e->len = (size_t)(end - e->src); (void)ps; }

static dv_expr *parse_expr(parser *ps);

static int name_error(parser *ps, const lexer *at, const char *what)
{
    const char *s = dv_suggest(ps->d, at->s, at->n);
    if (s)
        return fail(ps, at->tline, at->tcol, "unknown %s '%.*s'; did you mean '%s'?", what,
                    (int)at->n, at->s, s);
    return fail(ps, at->tline, at->tcol, "unknown %s '%.*s' (names are used after the line "
                "that declares or defines them)", what, (int)at->n, at->s);
}

/* After a NAME "dX" or ∂: a gradient dX/dY (or ∂X/∂Y)?  Leaves the lexer
 * past it and fills e when it is one. */
static bool try_grad(parser *ps, dv_expr **out)
{
    lexer save = ps->lx;
    lexer *lx = &ps->lx;
    int num, den;
    if (lx->t == T_PARTIAL) {
        next(lx);
        if (lx->t != T_NAME || (num = find_sym(ps->d, lx->s, lx->n)) < 0)
            goto no;
    } else if (lx->t == T_NAME && lx->n > 1 && lx->s[0] == 'd' &&
               find_sym(ps->d, lx->s, lx->n) < 0 &&
               (num = find_sym(ps->d, lx->s + 1, lx->n - 1)) >= 0) {
    } else {
        return false;
    }
    next(lx);
    if (lx->t != T_SLASH)
        goto no;
    next(lx);
    if (save.t == T_PARTIAL) {
        if (lx->t != T_PARTIAL)
            goto no;
        next(lx);
        if (lx->t != T_NAME || (den = find_sym(ps->d, lx->s, lx->n)) < 0)
            goto no;
    } else if (lx->t != T_NAME || lx->n < 2 || lx->s[0] != 'd' ||
               (den = find_sym(ps->d, lx->s + 1, lx->n - 1)) < 0) {
        goto no;
    }
    const char *end = lx->s + lx->n;
    dv_expr *e = new_expr(ps, E_GRAD, &save);
    if (!e)
        return true;
    e->sym = num, e->sym2 = den;
    close_span(ps, e, end);
    if (ps->d->syms[num].kind != SYM_DEF)
        fail(ps, save.tline, save.tcol, "d%s/d%s: %s is not a forward definition (=), so it has "
             "no gradient to take", ps->d->syms[num].name, ps->d->syms[den].name,
             ps->d->syms[num].name);
    else if (ps->d->syms[den].kind == SYM_MYDEF)
        fail(ps, save.tline, save.tcol, "d%s/d%s: %s is a := definition, which is not on the "
             "tape; take the gradient of a declared or forward (=) name",
             ps->d->syms[num].name, ps->d->syms[den].name, ps->d->syms[den].name);
    else if (ps->ctx == ST_DEF)
        fail(ps, save.tline, save.tcol, "d%s/d%s: gradients can be used in := definitions and "
             "check lines, not in a forward definition (=)", ps->d->syms[num].name,
             ps->d->syms[den].name);
    next(lx);
    *out = e;
    return true;
no:
    ps->lx = save;
    return false;
}

static dv_expr *parse_primary(parser *ps)
{
    lexer *lx = &ps->lx;
    lexer at = *lx;
    dv_expr *e = NULL;
    if (lx->t == T_NUM) {
        if (!(e = new_expr(ps, E_NUM, &at)))
            return NULL;
        e->num = lx->num;
        close_span(ps, e, lx->s + lx->n);
        next(lx);
        return e;
    }
    if (lx->t == T_LP) {
        next(lx);
        dv_expr *in = parse_expr(ps);
        if (!in)
            return NULL;
        if (lx->t != T_RP)
            return unexpected(ps, "')'"), NULL;
        /* the parenthesised expression keeps its own node; widen its span */
        in->src = at.s, in->line = at.tline, in->col = at.tcol;
        close_span(ps, in, lx->s + 1);
        next(lx);
        return in;
    }
    if (lx->t == T_PARTIAL || lx->t == T_NAME) {
        if (try_grad(ps, &e))
            return ps->failed ? NULL : e;
        if (lx->t == T_PARTIAL)
            return unexpected(ps, "a gradient such as ∂L/∂W"), NULL;
        int f = find_func(lx->s, lx->n);
        next(lx);
        if (f >= 0) {
            if (lx->t != T_LP)
                return fail(ps, at.tline, at.tcol, "'%s' is a function: %s", dv_funcs[f].name,
                            dv_funcs[f].usage), NULL;
            next(lx);
            if (!(e = new_expr(ps, E_CALL, &at)))
                return NULL;
            e->fn = f;
            while (lx->t != T_RP) {
                if (e->nargs == DV_MAX_ARGS)
                    return fail(ps, lx->tline, lx->tcol, "too many arguments: %s",
                                dv_funcs[f].usage), NULL;
                if (!(e->a[e->nargs++] = parse_expr(ps)))
                    return NULL;
                if (lx->t == T_COMMA)
                    next(lx);
                else if (lx->t != T_RP)
                    return unexpected(ps, "',' or ')'"), NULL;
            }
            if (e->nargs < dv_funcs[f].min_args || e->nargs > dv_funcs[f].max_args)
                return fail(ps, at.tline, at.tcol, "%s takes %d argument%s, got %d: %s",
                            dv_funcs[f].name, dv_funcs[f].max_args,
                            dv_funcs[f].max_args == 1 ? "" : "s", e->nargs,
                            dv_funcs[f].usage), NULL;
            close_span(ps, e, lx->s + 1);
            next(lx);
            return e;
        }
        if (is_keyword(at.s, at.n))
            return fail(ps, at.tline, at.tcol, "'%.*s' is a keyword, not a value", (int)at.n,
                        at.s), NULL;
        int s = find_sym(ps->d, at.s, at.n);
        if (s < 0)
            return name_error(ps, &at, lx->t == T_LP ? "function" : "name"), NULL;
        if (ps->ctx == ST_DEF && ps->d->syms[s].kind == SYM_MYDEF)
            return fail(ps, at.tline, at.tcol, "'%s' is a := definition (computed after the "
                        "gradients); a forward definition (=) cannot use it",
                        ps->d->syms[s].name), NULL;
        if (!(e = new_expr(ps, E_NAME, &at)))
            return NULL;
        e->sym = s;
        close_span(ps, e, at.s + at.n);
        return e;
    }
    if (lx->t == T_BAD)
        return fail(ps, lx->tline, lx->tcol, "unexpected character '%.*s'", (int)lx->n, lx->s),
               NULL;
    return unexpected(ps, "a value (a number, a name, a function or '(')"), NULL;
}

/* A constant exponent: numbers and + - * / ^ of them. */
static bool fold(const dv_expr *e, double *v)
{
    double a, b;
    switch (e->k) {
    case E_NUM: *v = e->num; return true;
    case E_NEG: return fold(e->a[0], &a) && (*v = -a, true);
    case E_ADD: return fold(e->a[0], &a) && fold(e->a[1], &b) && (*v = a + b, true);
    case E_SUB: return fold(e->a[0], &a) && fold(e->a[1], &b) && (*v = a - b, true);
    case E_MUL: case E_MATMUL:
        return fold(e->a[0], &a) && fold(e->a[1], &b) && (*v = a * b, true);
    case E_DIV: return fold(e->a[0], &a) && fold(e->a[1], &b) && (*v = a / b, true);
    case E_POW: return fold(e->a[0], &a) && (*v = pow(a, e->num), true);
    default: return false;
    }
}

static dv_expr *binary(parser *ps, ekind k, dv_expr *a, dv_expr *b)
{
    lexer at = {.tline = a->line, .tcol = a->col, .s = a->src};
    dv_expr *e = new_expr(ps, k, &at);
    if (!e)
        return NULL;
    e->a[0] = a, e->a[1] = b, e->nargs = 2;
    close_span(ps, e, b->src + b->len);
    return e;
}

static dv_expr *parse_unary(parser *ps);

static dv_expr *parse_postfix(parser *ps)
{
    dv_expr *e = parse_primary(ps);
    lexer *lx = &ps->lx;
    while (e) {
        lexer save = *lx;
        if (lx->t == T_TR) {
        } else if (lx->t == T_CARET) {
            next(lx);
            if (!is_word(lx, "T")) {
                *lx = save;
                break;
            }
        } else {
            break;
        }
        const char *end = lx->s + lx->n;
        next(lx);
        lexer at = {.tline = e->line, .tcol = e->col, .s = e->src};
        dv_expr *t = new_expr(ps, E_T, &at);
        if (!t)
            return NULL;
        t->a[0] = e, t->nargs = 1;
        close_span(ps, t, end);
        e = t;
    }
    if (e && lx->t == T_CARET) {
        lexer at = *lx;
        next(lx);
        dv_expr *x = parse_unary(ps);
        double p;
        if (!x)
            return NULL;
        if (!fold(x, &p) || !isfinite(p))
            return fail(ps, at.tline, at.tcol, "the exponent after '^' must be a number "
                        "(^T transposes)"), NULL;
        dv_expr *r = binary(ps, E_POW, e, x);
        if (r)
            r->num = p, r->nargs = 1;
        return r;
    }
    return e;
}

static dv_expr *parse_unary(parser *ps)
{
    if (++ps->depth > DV_MAX_DEPTH) {
        fail(ps, ps->lx.tline, ps->lx.tcol, "expression nested more than %d deep", DV_MAX_DEPTH);
        return NULL;
    }
    dv_expr *e;
    if (ps->lx.t == T_MINUS) {
        lexer at = ps->lx;
        next(&ps->lx);
        dv_expr *x = parse_unary(ps);
        if (!x || !(e = new_expr(ps, E_NEG, &at)))
            return NULL;
        e->a[0] = x, e->nargs = 1;
        close_span(ps, e, x->src + x->len);
    } else {
        e = parse_postfix(ps);
    }
    ps->depth--;
    return e;
}

static bool starts_value(const lexer *lx)
{
    return lx->t == T_NUM || lx->t == T_LP || lx->t == T_PARTIAL ||
           (lx->t == T_NAME && !is_word(lx, "expect"));
}

static dv_expr *parse_term(parser *ps)
{
    dv_expr *e = parse_unary(ps);
    lexer *lx = &ps->lx;
    while (e) {
        ekind k;
        if (lx->t == T_STAR)
            k = E_MUL;
        else if (lx->t == T_SLASH)
            k = E_DIV;
        else if (lx->t == T_AT)
            k = E_MATMUL;
        else if (starts_value(lx))
            k = E_MATMUL; /* juxtaposition */
        else
            break;
        if (lx->t == T_STAR || lx->t == T_SLASH || lx->t == T_AT)
            next(lx);
        dv_expr *b = parse_unary(ps);
        if (!b)
            return NULL;
        e = binary(ps, k, e, b);
    }
    return e;
}

static dv_expr *parse_expr(parser *ps)
{
    if (++ps->depth > DV_MAX_DEPTH) {
        fail(ps, ps->lx.tline, ps->lx.tcol, "expression nested more than %d deep", DV_MAX_DEPTH);
        return NULL;
    }
    dv_expr *e = parse_term(ps);
    while (e && (ps->lx.t == T_PLUS || ps->lx.t == T_MINUS)) {
        ekind k = ps->lx.t == T_PLUS ? E_ADD : E_SUB;
        next(&ps->lx);
        dv_expr *b = parse_term(ps);
        if (!b)
            return NULL;
        e = binary(ps, k, e, b);
    }
    ps->depth--;
    return e;
}

/* ---- statements ---------------------------------------------------------- */

static dv_stmt *new_stmt(parser *ps, stkind k, int line)
{
    tg_deriv *d = ps->d;
    if (d->n_stmts == d->cap_stmts) {
        int cap = d->cap_stmts ? 2 * d->cap_stmts : 32;
        dv_stmt *p = tg_realloc(d->stmts, (size_t)cap * sizeof *p);
        if (!p)
            return fail(ps, line, 1, "out of memory"), NULL;
        d->stmts = p, d->cap_stmts = cap;
    }
    dv_stmt *s = &d->stmts[d->n_stmts++];
    memset(s, 0, sizeof *s);
    s->k = k, s->line = line, s->sym = s->loss = s->wrt = -1;
    return s;
}

/* A new symbol named by the current token (checked: not a keyword,
 * function or existing name). */
static int new_sym(parser *ps, skind kind)
{
    lexer *lx = &ps->lx;
    tg_deriv *d = ps->d;
    if (is_keyword(lx->s, lx->n))
        return fail(ps, lx->tline, lx->tcol, "'%.*s' is a keyword and cannot be a name",
                    (int)lx->n, lx->s);
    if (find_func(lx->s, lx->n) >= 0)
        return fail(ps, lx->tline, lx->tcol, "'%.*s' is a function and cannot be a name",
                    (int)lx->n, lx->s);
    int old = find_sym(d, lx->s, lx->n);
    if (old >= 0)
        return fail(ps, lx->tline, lx->tcol, "'%s' is already defined on line %d",
                    d->syms[old].name, d->syms[old].line);
    if (d->n_syms == DV_MAX_SYMS)
        return fail(ps, lx->tline, lx->tcol, "more than %d names", DV_MAX_SYMS);
    dv_sym *s = &d->syms[d->n_syms];
    memset(s, 0, sizeof *s);
    if (!(s->name = tg_malloc(lx->n + 1)))
        return fail(ps, lx->tline, lx->tcol, "out of memory");
    memcpy(s->name, lx->s, lx->n);
    s->name[lx->n] = 0;
    s->kind = kind, s->line = lx->tline, s->lo = -1, s->hi = 1;
    return d->n_syms++;
}

static int number(parser *ps, double *v)
{
    lexer *lx = &ps->lx;
    double sign = 1;
    if (lx->t == T_MINUS)
        sign = -1, next(lx);
    if (lx->t != T_NUM)
        return unexpected(ps, "a number");
    *v = sign * lx->num;
    next(lx);
    return 0;
}

static int parse_decl_item(parser *ps, bool param)
{
    lexer *lx = &ps->lx;
    lexer at = *lx;
    int si = new_sym(ps, SYM_LEAF);
    if (si < 0)
        return -1;
    dv_sym *s = &ps->d->syms[si];
    s->param = param;
    next(lx);
    if (lx->t == T_LB) {
        next(lx);
        size_t total = 1;
        while (lx->t != T_RB) {
            if (s->rank == 4)
                return fail(ps, lx->tline, lx->tcol, "'%s': at most 4 dimensions", s->name);
            if (lx->t != T_NUM || lx->num < 1 || lx->num > DV_MAX_ELEMS ||
                lx->num != floor(lx->num))
                return fail(ps, lx->tline, lx->tcol, "'%s': a dimension must be a whole number "
                            "from 1 to %d", s->name, DV_MAX_ELEMS);
            s->shape[s->rank++] = (size_t)lx->num;
            total *= (size_t)lx->num;
            if (total > DV_MAX_ELEMS)
                return fail(ps, lx->tline, lx->tcol, "'%s' has more than %d elements", s->name,
                            DV_MAX_ELEMS);
            next(lx);
            if (lx->t == T_COMMA)
                next(lx);
            else if (lx->t != T_RB)
                return unexpected(ps, "',' or ']'");
        }
        next(lx);
    }
    for (;;) {
        if (is_word(lx, "in")) {
            next(lx);
            if (lx->t != T_LB)
                return unexpected(ps, "'[' (in [lo, hi])");
            next(lx);
            if (number(ps, &s->lo))
                return -1;
            if (lx->t != T_COMMA)
                return unexpected(ps, "','");
            next(lx);
            if (number(ps, &s->hi))
                return -1;
            if (lx->t != T_RB)
                return unexpected(ps, "']'");
            next(lx);
            if (!(s->lo < s->hi))
                return fail(ps, at.tline, at.tcol, "'%s': the range [%g, %g] is empty", s->name,
                            s->lo, s->hi);
            s->cons = C_RANGE;
        } else if (is_word(lx, "onehot")) {
            if (s->rank != 2)
                return fail(ps, lx->tline, lx->tcol, "'%s': onehot needs a matrix [rows, classes]",
                            s->name);
            s->cons = C_ONEHOT;
            next(lx);
        } else if (is_word(lx, "labels")) {
            next(lx);
            if (lx->t != T_NUM || lx->num < 1 || lx->num > 1e6 || lx->num != floor(lx->num))
                return fail(ps, lx->tline, lx->tcol, "'%s': labels N needs the number of "
                            "classes N (1 to 1000000)", s->name);
            if (s->rank != 1)
                return fail(ps, at.tline, at.tcol, "'%s': labels are a vector [n]", s->name);
            s->cons = C_LABELS, s->classes = (int)lx->num;
            next(lx);
        } else {
            return 0;
        }
    }
}

static int parse_decl(parser *ps, bool param)
{
    lexer *lx = &ps->lx;
    int line = lx->tline, first = ps->d->n_syms;
    next(lx);
    if (lx->t != T_NAME)
        return unexpected(ps, "a name to declare");
    while (lx->t == T_NAME) {
        if (parse_decl_item(ps, param))
            return -1;
        if (lx->t == T_COMMA)
            next(lx);
    }
    dv_stmt *st = new_stmt(ps, ST_DECL, line);
    if (!st)
        return -1;
    st->sym = first, st->count = ps->d->n_syms - first;
    return 0;
}

static int parse_check(parser *ps)
{
    lexer *lx = &ps->lx;
    int line = lx->tline;
    next(lx);
    const char *begin = lx->s;
    dv_expr *g = NULL;
    ps->ctx = ST_CHECK;
    if (!try_grad(ps, &g))
        return ps->failed ? -1 : unexpected(ps, "a gradient such as dL/dW (check dL/dW = ...)");
    if (ps->failed)
        return -1;
    if (lx->t != T_EQ)
        return unexpected(ps, "'=' after the gradient");
    next(lx);
    dv_expr *rhs = parse_expr(ps);
    if (!rhs)
        return -1;
    const char *end = rhs->src + rhs->len;
    dv_stmt *st = new_stmt(ps, ST_CHECK, line);
    if (!st)
        return -1;
    st->loss = g->sym, st->wrt = g->sym2, st->e = rhs;
    if (is_word(lx, "expect")) {
        next(lx);
        if (!is_word(lx, "mismatch"))
            return unexpected(ps, "'mismatch' (expect mismatch)");
        next(lx);
        st->expect_mismatch = true;
    }
    size_t n = (size_t)(end - begin);
    if (!(st->text = tg_malloc(n + 1)))
        return fail(ps, line, 1, "out of memory");
    memcpy(st->text, begin, n);
    st->text[n] = 0;
    return 0;
}

static int parse_def(parser *ps)
{
    lexer *lx = &ps->lx;
    lexer at = *lx;
    next(lx);
    bool my = lx->t == T_DEFEQ;
    if (lx->t != T_EQ && !my) {
        if (find_sym(ps->d, at.s, at.n) < 0 && find_func(at.s, at.n) < 0) {
            const char *s = dv_suggest(ps->d, at.s, at.n);
            if (!s) {
                static const char *const kw[] = {"input", "param", "check"};
                for (int i = 0; i < 3; i++)
                    if (edit_distance(at.s, at.n, kw[i]) <= 2)
                        s = kw[i];
            }
            if (s)
                return fail(ps, at.tline, at.tcol, "a line starts with a declaration (input, "
                            "param), check, or NAME = ...; '%.*s' is none (did you mean '%s'?)",
                            (int)at.n, at.s, s);
        }
        return unexpected(ps, "'=' or ':=' (a definition NAME = ... or NAME := ...)");
    }
    ps->lx = at;
    int si = new_sym(ps, my ? SYM_MYDEF : SYM_DEF);
    if (si < 0)
        return -1;
    ps->d->n_syms--; /* not visible in its own definition */
    next(lx);
    next(lx);
    ps->ctx = my ? ST_MYDEF : ST_DEF;
    dv_expr *e = parse_expr(ps);
    ps->d->n_syms++; /* visible again (and freed with the rest on failure) */
    if (!e)
        return -1;
    ps->d->syms[si].e = e;
    dv_stmt *st = new_stmt(ps, my ? ST_MYDEF : ST_DEF, at.tline);
    if (!st)
        return -1;
    st->sym = si;
    return 0;
}

int dv_parse(tg_deriv *d, tg_err *err)
{
    parser ps = {.d = d, .err = err};
    ps.lx = (lexer){.p = d->text, .end = d->text + d->len, .line = 1, .col = 1};
    next(&ps.lx);
    while (ps.lx.t != T_EOF) {
        lexer *lx = &ps.lx;
        ps.depth = 0;
        int rc;
        if (lx->t == T_NL) {
            next(lx);
            continue;
        }
        if (is_word(lx, "input") || is_word(lx, "param"))
            rc = parse_decl(&ps, is_word(lx, "param"));
        else if (is_word(lx, "check"))
            rc = parse_check(&ps);
        else if (lx->t == T_NAME)
            rc = parse_def(&ps);
        else
            rc = unexpected(&ps, "a declaration (input, param), a definition or a check");
        if (rc || ps.failed)
            return -1;
        if (lx->t != T_NL && lx->t != T_EOF)
            return unexpected(&ps, lx->depth ? "')'" : "the end of the line"), -1;
    }
    d->n_checks = 0;
    for (int i = 0; i < d->n_stmts; i++)
        d->n_checks += d->stmts[i].k == ST_CHECK;
    if (!d->n_checks) {
        dv_error_at(d, err, 1, 1, "no check line (check dL/dW = ...): nothing to verify");
        return -1;
    }
    return 0;
}

/* ---- construction -------------------------------------------------------- */

void tg_deriv_free(tg_deriv *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->n_syms; i++)
        tg_free(d->syms[i].name);
    for (int i = 0; i < d->n_stmts; i++)
        tg_free(d->stmts[i].text);
    for (size_t i = 0; i < d->n_exprs; i++)
        tg_free(d->exprs[i]);
    for (int i = 0; d->res && i < d->n_checks; i++)
        tg_free(d->res[i].worst_tape), tg_free(d->res[i].worst_ref);
    tg_free(d->res);
    tg_free(d->exprs);
    tg_free(d->stmts);
    tg_free(d->text);
    tg_free(d->file);
    tg_free(d);
}

tg_deriv *tg_deriv_parse(const char *text, size_t len, const char *name, tg_err *err)
{
    tg_err dummy;
    if (!err)
        err = &dummy;
    if (!text) {
        snprintf(err->msg, sizeof err->msg, "deriv_parse: NULL text");
        return NULL;
    }
    if (!name)
        name = "(text)";
    if (memchr(text, 0, len)) {
        snprintf(err->msg, sizeof err->msg, "%s: holds a NUL byte (not a text file?)", name);
        return NULL;
    }
    tg_deriv *d = tg_malloc(sizeof *d);
    if (!d) {
        snprintf(err->msg, sizeof err->msg, "%s: out of memory", name);
        return NULL;
    }
    memset(d, 0, sizeof *d);
    size_t nl = strlen(name);
    d->file = tg_malloc(nl + 1);
    d->text = tg_malloc(len + 1);
    if (!d->file || !d->text) {
        snprintf(err->msg, sizeof err->msg, "%s: out of memory", name);
        tg_deriv_free(d);
        return NULL;
    }
    memcpy(d->file, name, nl + 1);
    memcpy(d->text, text, len);
    d->text[len] = 0;
    d->len = len;
    if (dv_parse(d, err)) {
        tg_deriv_free(d);
        return NULL;
    }
    d->res = tg_malloc((size_t)d->n_checks * sizeof *d->res);
    if (!d->res) {
        snprintf(err->msg, sizeof err->msg, "%s: out of memory", name);
        tg_deriv_free(d);
        return NULL;
    }
    memset(d->res, 0, (size_t)d->n_checks * sizeof *d->res);
    for (int i = 0, k = 0; i < d->n_stmts; i++) {
        dv_stmt *st = &d->stmts[i];
        if (st->k != ST_CHECK)
            continue;
        d->res[k].pub.line = st->line;
        d->res[k].pub.text = st->text;
        d->res[k].pub.wrt = d->syms[st->wrt].name;
        d->res[k].pub.expect_mismatch = st->expect_mismatch;
        k++;
    }
    return d;
}

tg_deriv *tg_deriv_load(const char *path, tg_err *err)
{
    tg_err dummy;
    if (!err)
        err = &dummy;
    if (!path) {
        snprintf(err->msg, sizeof err->msg, "deriv_load: NULL path");
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err->msg, sizeof err->msg, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = tg_malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(f);
            snprintf(err->msg, sizeof err->msg, "%s: out of memory", path);
            return NULL;
        }
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap || n >= ((size_t)1 << 24))
            break;
        char *p = tg_realloc(buf, cap * 2);
        if (!p)
            tg_free(buf);
        buf = p, cap *= 2;
    }
    bool bad = ferror(f) != 0, big = n >= ((size_t)1 << 24);
    fclose(f);
    if (bad || big) {
        tg_free(buf);
        snprintf(err->msg, sizeof err->msg, "%s: %s", path,
                 bad ? "read error (a directory?)" : "larger than 16 MiB");
        return NULL;
    }
    tg_deriv *d = tg_deriv_parse(buf, n, path, err);
    tg_free(buf);
    return d;
}
