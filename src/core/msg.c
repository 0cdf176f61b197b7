/* Errors and messages: the lowest layer of the core.  It reads the structs
 * of core.h and calls only libc, so that every other file may report an
 * error or name a tensor without a cycle between files. */
#include "core.h"

#include <stdio.h>

/* ---- errors -------------------------------------------------------------- */

static int verror(tg_tape *tape, const char *prefix, const char *fmt,
                  va_list ap)
{
    if (!tape || tape->has_err)
        return TG_ERR;
    size_t n = 0;
    if (prefix) {
        int w = snprintf(tape->err, sizeof tape->err, "%s", prefix);
        n = w > 0 ? (size_t)w : 0;
        if (n >= sizeof tape->err)
            n = sizeof tape->err - 1;
    }
    vsnprintf(tape->err + n, sizeof tape->err - n, fmt, ap);
    tape->has_err = true;
    return TG_ERR;
}

int tg_error(tg_tape *tape, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(tape, NULL, fmt, ap);
    va_end(ap);
    return TG_ERR;
}

int tg_fail(tg_node *n, const char *fmt, ...)
{
    char prefix[96];
    if (n->index != SIZE_MAX)
        snprintf(prefix, sizeof prefix, "%s (node %zu): ", n->op->name,
                 n->index);
    else
        snprintf(prefix, sizeof prefix, "%s: ", n->op->name);
    va_list ap;
    va_start(ap, fmt);
    verror(n->out.tape, prefix, fmt, ap);
    va_end(ap);
    return TG_ERR;
}

void tg_query_fail(tg_tape *tape, const char *fmt, ...)
{
    if (!tape)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tape->query_err, sizeof tape->query_err, fmt, ap);
    va_end(ap);
}

const char *tg_query_error(const tg_tape *tape)
{
    return tape && tape->query_err[0] ? tape->query_err : NULL;
}

const char *tg_tape_error(const tg_tape *tape)
{
    if (!tape)
        return "tape is NULL";
    return tape->has_err ? tape->err : NULL;
}

void tg_tape_clear_error(tg_tape *tape)
{
    if (tape) {
        tape->has_err = false;
        tape->err[0] = 0;
        tape->query_err[0] = 0;
    }
}

tg_shp tg_shp_of(const tg_tensor *t)
{
    tg_shp s;
    tg_shape_str(t, s.s, sizeof s.s);
    return s;
}

/* ---- naming tensors ------------------------------------------------------ */

const char *tg_op_name(const tg_tensor *t)
{
    if (!t)
        return "(null)";
    if (t->node)
        return t->node->op->name;
    switch (t->kind) {
    case TG_PARAM: return "param";
    case TG_INPUT: return "input";
    default: return "const";
    }
}

char *tg_shape_str(const tg_tensor *t, char *buf, size_t len)
{
    if (!buf || !len)
        return buf;
    if (!t) {
        snprintf(buf, len, "(null)");
        return buf;
    }
    if (t->rank == 0) {
        snprintf(buf, len, "scalar");
        return buf;
    }
    size_t n = 0;
    buf[0] = 0;
    for (int i = 0; i < t->rank && n < len; i++) {
        int w = snprintf(buf + n, len - n, i ? "x%zu" : "%zu", t->shape[i]);
        if (w < 0)
            break;
        n += (size_t)w;
    }
    return buf;
}

const char *tg_label(const tg_tensor *t)
{
    return t && t->name ? t->name : tg_op_name(t);
}

const char *tg_version(void) { return TG_VERSION_STRING; }
