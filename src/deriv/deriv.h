/* Derivation files (docs/derivations.md): the parsed form shared by the
 * parser (parse.c: text -> statements, names resolved, syntax errors with a
 * caret) and the evaluator (eval.c: statements -> a tape per random draw,
 * gradients, the checks).  Not installed; the public face is tg_deriv_* in
 * include/tapegrad.h. */
#ifndef TG_DERIV_H
#define TG_DERIV_H

#include "tapegrad.h"

#include <stdbool.h>
#include <stddef.h>

enum { DV_MAX_ARGS = 4, DV_MAX_DEPTH = 64, DV_MAX_SYMS = 512, DV_MAX_ELEMS = 1 << 20 };

typedef enum ekind {
    E_NUM,    /* num                                     */
    E_NAME,   /* sym                                     */
    E_GRAD,   /* d sym / d sym2: the tape's gradient     */
    E_CALL,   /* fn(args)                                */
    E_NEG,    /* -a                                      */
    E_ADD, E_SUB,
    E_MUL,    /* elementwise *, ⊙                        */
    E_DIV,
    E_MATMUL, /* juxtaposition, @, ·                     */
    E_POW,    /* a ^ num                                 */
    E_T       /* aᵀ, a^T, a'                             */
} ekind;

typedef struct dv_expr dv_expr;
struct dv_expr {
    ekind k;
    int line, col;       /* where it starts (col in characters, 1-based) */
    const char *src;     /* its text in the file, len bytes             */
    size_t len;
    double num;
    int sym, sym2;       /* E_NAME, E_GRAD                             */
    int fn;              /* E_CALL: index in dv_funcs                  */
    int nargs;
    dv_expr *a[DV_MAX_ARGS];
};

typedef enum skind { SYM_LEAF, SYM_DEF, SYM_MYDEF } skind;
typedef enum cons { C_RANGE, C_ONEHOT, C_LABELS } cons;

typedef struct dv_sym {
    char *name;
    skind kind;
    int line;
    /* SYM_LEAF */
    int rank;
    size_t shape[4];
    cons cons;
    double lo, hi;       /* C_RANGE                                    */
    int classes;         /* C_LABELS: i32 values in [0, classes)       */
    bool param;          /* declared with `param` (else `input`)       */
    /* SYM_DEF, SYM_MYDEF */
    dv_expr *e;
} dv_sym;

typedef enum stkind { ST_DECL, ST_DEF, ST_MYDEF, ST_CHECK } stkind;

typedef struct dv_stmt {
    stkind k;
    int line;
    int sym;             /* ST_DEF/MYDEF: the symbol defined; ST_DECL: the
                            first declared, `count` of them              */
    int count;
    int loss, wrt;       /* ST_CHECK: d loss / d wrt                     */
    dv_expr *e;          /* ST_CHECK: the right side                     */
    bool expect_mismatch;
    char *text;          /* ST_CHECK: the line as written (trimmed)      */
} dv_stmt;

/* A function of the language: name, arguments, what each must be. */
typedef struct dv_func {
    const char *name;
    int min_args, max_args;
    const char *usage;   /* e.g. "sum(X) or sum(X, axis)"               */
} dv_func;
extern const dv_func dv_funcs[];
extern const int dv_n_funcs;

/* The per-check results, folded over the draws. */
typedef struct dv_result {
    tg_deriv_check pub;
    double *worst_tape, *worst_ref; /* the worst draw's two gradients    */
    size_t n;
} dv_result;

struct tg_deriv {
    char *file;          /* name for messages                           */
    char *text;          /* the file's text, NUL-terminated             */
    size_t len;
    dv_sym syms[DV_MAX_SYMS];
    int n_syms;
    dv_stmt *stmts;
    int n_stmts, cap_stmts;
    dv_result *res;      /* one per ST_CHECK, in order                  */
    int n_checks;
    /* every dv_expr, freed together */
    dv_expr **exprs;
    size_t n_exprs, cap_exprs;
};

/* parse.c */
int dv_parse(tg_deriv *d, tg_err *err);
/* "file:line:col: msg" then the line and a caret under col (into err). */
void dv_error_at(const tg_deriv *d, tg_err *err, int line, int col, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
/* The nearest name to s among the symbols and functions, or NULL. */
const char *dv_suggest(const tg_deriv *d, const char *s, size_t n);

#endif
