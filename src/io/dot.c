/* Graph inspection: the tape as a Graphviz DOT digraph (tg_dot_write), saved
 * atomically (tg_dot_save), and rendered by Graphviz's dot when it is
 * installed (tg_dot_available, tg_dot_render).  Both files are written
 * through the atomic writer of src/io/file.c.
 *
 * Conventions of the output (the tests keep golden copies, tests/golden/):
 *  - an op node's label is "name = op(attributes)", then "shape dtype": the
 *    attributes are the text each op's attr_str writes (ops/op.h), e.g.
 *    "sum(axis=1 keepdim)", and are left out when the op has none or
 *    writes "" (a sum of all elements);
 *  - ids come from tape positions, never from pointers: "l<i>" is leaf i
 *    (creation order), "n<i>" the output of node i, "c<k>" the k-th constant
 *    that is not a leaf (tg_scalar, outputs computed with recording off),
 *    numbered in order of first use;
 *  - statements come in a fixed order: leaves, then constants and op nodes
 *    in tape order (each constant just before its first user); then the
 *    forward edges (tape order, input slot order), then the backward edges
 *    (reverse tape order);
 *  - with clusters, the op nodes of each scope (and a constant whose users
 *    all share one scope) are grouped in a cluster, nested as the scopes
 *    ("layer1/act" inside "layer1"); leaves stay outside, next to the
 *    layers that use them, which keeps the layout compact;
 *  - every piece of text in a label goes through esc(): a quoted DOT string
 *    that is valid UTF-8 without raw control characters, safe for Graphviz
 *    (no escape sequence or entity of the user's survives) and for strict
 *    DOT parsers.
 *
 * Everything is linear in the size of the graph: leaves and constants are
 * found through the tensor's `aux` link (set here, cleared before
 * returning), op nodes through their tape position, scopes through a small
 * hash table. */
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ======================================================================== */
/* Look                                                                     */
/* ======================================================================== */

#define COL_PARAM "#ffd8a8"  /* orange: parameters (require a gradient) */
#define COL_INPUT "#a5d8ff"  /* blue: inputs (data, labels)             */
#define COL_CONST "#e9ecef"  /* grey: constants, leaves or not          */
#define COL_OP "#ffffff"     /* white: op outputs                       */
#define COL_GRADOP "#fcc2d7" /* pink: op outputs of recorded gradients  */
#define COL_ROOT "#ffa8a8"   /* red: the root (the loss)                */
#define COL_EDGE "#495057"   /* forward edges                           */
#define COL_GRAD "#e03131"   /* backward edges: gradient contributions  */
#define NAME_CHARS 120       /* longest name shown (code points)        */
#define TITLE_CHARS 400

/* cluster fill by nesting depth, so nested scopes stay visible */
static const char *const cluster_fill[] = {"#f1f3f5", "#e7f5ff", "#fff9db", "#ebfbee"};

/* ======================================================================== */
/* Output: a buffered writer that counts bytes and steps                    */
/* ======================================================================== */

typedef struct dot_out {
    FILE *f;
    size_t n;
    uint64_t bytes, steps;
    int err;   /* errno of the first failed write, or 0 */
    bool failed;
    char buf[16384];
} dot_out;

static void out_flush(dot_out *o)
{
    if (o->n && !o->failed && fwrite(o->buf, 1, o->n, o->f) != o->n) {
        o->failed = true;
        o->err = errno ? errno : EIO;
    }
    o->n = 0;
}

static void out_mem(dot_out *o, const char *s, size_t len)
{
    o->bytes += len;
    while (len) {
        size_t room = sizeof o->buf - o->n;
        size_t k = len < room ? len : room;
        memcpy(o->buf + o->n, s, k);
        o->n += k;
        s += k;
        len -= k;
        if (o->n == sizeof o->buf)
            out_flush(o);
    }
}

static void out_str(dot_out *o, const char *s) { out_mem(o, s, strlen(s)); }

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void out_fmt(dot_out *o, const char *fmt, ...)
{
    char b[256];
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    if (w > 0)
        out_mem(o, b, (size_t)w < sizeof b ? (size_t)w : sizeof b - 1);
}

static void out_indent(dot_out *o, int depth)
{
    static const char sp[] = "                                ";
    size_t n = 2 * (size_t)(depth + 1);
    while (n) {
        size_t k = n < sizeof sp - 1 ? n : sizeof sp - 1;
        out_mem(o, sp, k);
        n -= k;
    }
}

/* ======================================================================== */
/* Escaping                                                                 */
/* ======================================================================== */

/* Length (1..4) of the valid UTF-8 sequence at s, with its code point in
 * *cp; 0 when the bytes are not valid UTF-8 (overlong forms, surrogates and
 * values above U+10FFFF are invalid).  Never reads past a NUL. */
static int utf8_seq(const unsigned char *s, uint32_t *cp)
{
    unsigned c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int n;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3Fu);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

/*
 * Write text for the inside of a quoted DOT string, showing at most
 * max_chars characters (then "…").  What the reader sees is the text itself:
 *   "  →  \"      (the only escape DOT's lexer knows)
 *   \  →  \\      (Graphviz reads \n, \l, \N, \G ... in labels)
 *   &  →  &amp;   (Graphviz expands entities such as &alpha; in labels)
 *   newline → \n  (a line break in the label)
 *   tab, CR, other control characters, DEL and C1 controls → a visible
 *      escape: \t, \r, \x01, \u0085;  U+FFFE and U+FFFF (not XML
 *      characters, so they would break SVG output) → \ufffe, \uffff
 *   invalid UTF-8 → U+FFFD (one per invalid byte)
 * Valid non-ASCII UTF-8 is copied as is (DOT files are UTF-8).
 * Text that closes a string and ends in a backslash gets a space after it
 * (last = true): a parser that reads the DOT grammar literally (only \" is
 * an escape) would otherwise take \\" for a backslash and an escaped quote.
 */
static void esc_text(dot_out *o, const char *str, size_t max_chars, bool last)
{
    const unsigned char *s = (const unsigned char *)str;
    bool backslash = false; /* the last thing written is an escaped \ */
    for (size_t chars = 0; *s; chars++) {
        backslash = false;
        o->steps++;
        if (chars == max_chars) {
            out_str(o, "\xE2\x80\xA6"); /* … */
            return;
        }
        uint32_t cp;
        int n = utf8_seq(s, &cp);
        if (!n) {
            out_str(o, "\xEF\xBF\xBD"); /* U+FFFD replacement character */
            s++;
            continue;
        }
        if (n == 1) {
            switch (cp) {
            case '"': out_str(o, "\\\""); break;
            case '\\': out_str(o, "\\\\"), backslash = true; break;
            case '&': out_str(o, "&amp;"); break;
            case '\n': out_str(o, "\\n"); break;
            case '\t': out_str(o, "\\\\t"); break;
            case '\r': out_str(o, "\\\\r"); break;
            default:
                if (cp < 0x20 || cp == 0x7F)
                    out_fmt(o, "\\\\x%02x", (unsigned)cp);
                else
                    out_mem(o, (const char *)s, 1);
            }
        } else if (cp <= 0x9F || cp == 0xFFFE || cp == 0xFFFF) {
            out_fmt(o, "\\\\u%04x", (unsigned)cp);
        } else {
            out_mem(o, (const char *)s, (size_t)n);
        }
        s += n;
    }
    if (backslash && last)
        out_str(o, " ");
}

static void esc(dot_out *o, const char *str, size_t max_chars)
{
    esc_text(o, str, max_chars, false);
}

/* ======================================================================== */
/* The graph                                                                */
/* ======================================================================== */

/* A leaf or a constant that is not a leaf: what `aux` points to while the
 * writer runs.  Aligned as a tensor, so the pointer conversions through the
 * tensor's aux field are well defined (C11 6.3.2.3p7). */
typedef struct dot_ref {
    _Alignas(tg_tensor) tg_tensor *t;
    size_t num;          /* leaf index, or constant number              */
    const char *scope;   /* the scope shared by every user (scope_state 1) */
    uint8_t used;        /* drawn                                       */
    uint8_t scope_state; /* 0: no user yet, 1: one scope, 2: several    */
    char prefix;         /* 'l' leaf, 'c' constant                      */
} dot_ref;

static dot_ref *ref_of(const tg_tensor *t) { return (dot_ref *)(void *)t->aux; }

enum { F_NEED = 1, F_LIVE = 2 }; /* per node: drawn; a gradient can flow */

/* What gets drawn, in output order: a node (ref NULL) or a leaf/constant. */
typedef struct dot_item {
    tg_tensor *t;
    dot_ref *ref;
    const char *scope; /* the cluster it belongs to, or NULL */
} dot_item;

typedef struct dot_ctx {
    tg_tape *tape;
    tg_tensor *root;
    tg_dot_opts opts;
    dot_out *o;
    size_t end;          /* nodes [0, end) are candidates                */
    uint8_t *flag;       /* per node: F_NEED | F_LIVE                    */
    dot_ref *refs;       /* leaves [0, n_leaves), then constants         */
    size_t n_refs, n_consts;
    dot_item *items;
    size_t n_items;
} dot_ctx;

static void write_id(dot_out *o, const tg_tensor *t)
{
    if (t->node)
        out_fmt(o, "n%zu", t->node->index);
    else
        out_fmt(o, "%c%zu", ref_of(t)->prefix, ref_of(t)->num);
}

/* Whether a gradient can flow into t (computed here, not t->live, so that a
 * requires_grad changed after recording is seen as backward will see it). */
static bool is_live(const dot_ctx *cx, const tg_tensor *t)
{
    if (t->node)
        return cx->flag[t->node->index] & F_LIVE;
    return ref_of(t)->prefix == 'l' && t->requires_grad;
}

static double elem(const void *p, int dtype, size_t i)
{
    switch (dtype) {
    case TG_F32: return ((const float *)p)[i];
    case TG_F64: return ((const double *)p)[i];
    default: return ((const int32_t *)p)[i];
    }
}

/* A label line: "= v", "= [a, b, c]" (at most maxv values) or
 * "min a mean b max c" (with the number of NaNs, if any). */
static void write_summary(dot_out *o, const char *prefix, const void *p, int dtype,
                          size_t n, size_t maxv)
{
    out_str(o, "\\n");
    out_str(o, prefix);
    if (n == 1) {
        out_fmt(o, "= %.4g", elem(p, dtype, 0));
        return;
    }
    if (n <= maxv) {
        out_str(o, "= [");
        for (size_t i = 0; i < n; i++) {
            o->steps++;
            out_fmt(o, i ? ", %.4g" : "%.4g", elem(p, dtype, i));
        }
        out_str(o, "]");
        return;
    }
    double mn = 0, mx = 0, sum = 0;
    size_t nan = 0, seen = 0;
    for (size_t i = 0; i < n; i++) {
        double v = elem(p, dtype, i);
        o->steps++;
        if (v != v) {
            nan++;
            continue;
        }
        if (!seen || v < mn)
            mn = v;
        if (!seen || v > mx)
            mx = v;
        seen++;
        sum += v;
    }
    if (!seen) {
        out_fmt(o, "all %zu NaN", n);
        return;
    }
    out_fmt(o, "min %.4g mean %.4g max %.4g", mn, sum / (double)seen, mx);
    if (nan)
        out_fmt(o, " (%zu NaN)", nan);
}

/* "(axis=1 keepdim)" after an op's name: its attributes as the op writes
 * them (tg_op.attr_str, ops/op.h); nothing when the op has none or writes
 * "" (a sum of all elements). */
static void write_attrs(dot_out *o, const tg_node *n)
{
    if (!n->op->attr_str)
        return;
    char buf[256];
    buf[0] = 0;
    n->op->attr_str(n, buf, sizeof buf);
    if (!buf[0])
        return;
    out_str(o, "(");
    esc(o, buf, NAME_CHARS);
    out_str(o, ")");
}

static void write_label(dot_ctx *cx, const dot_item *it)
{
    dot_out *o = cx->o;
    tg_tensor *t = it->t;
    const char *kind = t->kind == TG_PARAM ? "param" : t->kind == TG_INPUT ? "input" : "const";
    char shape[64];
    tg_shape_str(t, shape, sizeof shape);
    const char *dtype = tg_dtype_name((tg_dtype)t->dtype);

    out_str(o, "label=\"");
    if (!it->ref) { /* an op: "name = op(attributes)" / shape dtype */
        if (t->name) {
            esc(o, t->name, NAME_CHARS);
            out_str(o, " = ");
        }
        esc(o, t->node->op->name, NAME_CHARS);
        write_attrs(o, t->node);
        out_fmt(o, "\\n%s %s", shape, dtype);
    } else if (t->name) { /* a named leaf or constant: name / kind shape dtype */
        esc(o, t->name, NAME_CHARS);
        out_fmt(o, "\\n%s %s %s", kind, shape, dtype);
    } else {
        out_fmt(o, "%s\\n%s %s", kind, shape, dtype);
    }
    size_t maxv = cx->opts.max_values > 0 ? (size_t)cx->opts.max_values : 6;
    if (cx->opts.values || (it->ref && it->ref->prefix == 'c' && t->size == 1))
        write_summary(o, "", t->data, t->dtype, t->size, maxv);
    if (cx->opts.grads && t->dtype != TG_I32) {
        bool valid = t->grad && t->grad_gen == tg_cur_gen(t) &&
                     !(t->node && t->tape->share_grads); /* shared: not kept */
        if (valid)
            write_summary(o, "grad ", t->grad, t->dtype, t->size, maxv);
        else if (is_live(cx, t))
            out_str(o, "\\nno grad");
    }
    out_str(o, "\"");
}

static void write_item(dot_ctx *cx, const dot_item *it, int depth)
{
    dot_out *o = cx->o;
    tg_tensor *t = it->t;
    const char *fill, *shape = "box", *style = "filled";
    if (!it->ref) {
        fill = t->node && t->node->recorded_grad ? COL_GRADOP : COL_OP;
        shape = "ellipse";
    } else if (t->kind == TG_PARAM) {
        fill = COL_PARAM;
    } else if (t->kind == TG_INPUT) {
        fill = COL_INPUT;
    } else {
        fill = COL_CONST;
        if (it->ref->prefix == 'c')
            style = "filled,dashed";
    }
    bool root = t == cx->root;
    out_indent(o, depth);
    write_id(o, t);
    out_fmt(o, " [shape=%s, style=\"%s\", fillcolor=\"%s\"%s, ", shape, style,
            root ? COL_ROOT : fill, root ? ", penwidth=2" : "");
    write_label(cx, it);
    out_str(o, "];\n");
}

/* ---- clusters ------------------------------------------------------------ */

/* Scope strings sorted so that a scope comes just before the scopes nested
 * in it: '/' sorts below every other byte. */
static int scope_key(unsigned char c) { return c == 0 ? 0 : c == '/' ? 1 : c + 2; }

static int cmp_scope(const void *a, const void *b)
{
    const unsigned char *x = *(const unsigned char *const *)a;
    const unsigned char *y = *(const unsigned char *const *)b;
    for (;; x++, y++) {
        int d = scope_key(*x) - scope_key(*y);
        if (d || !*x)
            return d;
    }
}

typedef struct scope_map {
    const char **sorted; /* the tape's scopes in cluster order  */
    size_t n;
    const char **key;    /* hash table: scope pointer -> rank   */
    size_t *rank;
    size_t mask;
} scope_map;

static size_t ptr_hash(const void *p, size_t mask)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15u;
    return (size_t)(h >> 32) & mask;
}

static int scope_map_init(scope_map *m, const tg_tape *tape)
{
    memset(m, 0, sizeof *m);
    m->n = tape->n_scopes;
    size_t cap = 8;
    while (cap < 2 * m->n)
        cap *= 2;
    m->mask = cap - 1;
    m->sorted = tg_malloc((m->n ? m->n : 1) * sizeof *m->sorted);
    m->key = tg_malloc(cap * sizeof *m->key);
    m->rank = tg_malloc(cap * sizeof *m->rank);
    if (!m->sorted || !m->key || !m->rank)
        return TG_ERR;
    memset(m->key, 0, cap * sizeof *m->key);
    if (m->n)
        memcpy(m->sorted, tape->scopes, m->n * sizeof *m->sorted);
    if (m->n > 1)
        qsort(m->sorted, m->n, sizeof *m->sorted, cmp_scope);
    for (size_t r = 0; r < m->n; r++) {
        size_t h = ptr_hash(m->sorted[r], m->mask);
        while (m->key[h])
            h = (h + 1) & m->mask;
        m->key[h] = m->sorted[r];
        m->rank[h] = r;
    }
    return TG_OK;
}

/* Rank of scope s (1-based; 0 for none or a scope of another tape). */
static size_t scope_rank(const scope_map *m, const char *s)
{
    if (!s)
        return 0;
    for (size_t h = ptr_hash(s, m->mask); m->key[h]; h = (h + 1) & m->mask)
        if (m->key[h] == s)
            return m->rank[h] + 1;
    return 0;
}

static void scope_map_free(scope_map *m)
{
    tg_free(m->sorted);
    tg_free(m->key);
    tg_free(m->rank);
}

/* Sort the items by scope rank (counting sort, stable, so tape order holds
 * inside a cluster): afterwards start[r] is the end of bucket r (bucket 0:
 * no scope, bucket r + 1: m->sorted[r]) and order[] the items in bucket
 * order.  start has m->n + 2 entries. */
static void bucket_by_scope(dot_ctx *cx, const scope_map *m, size_t *start, size_t *order)
{
    memset(start, 0, (m->n + 2) * sizeof *start);
    for (size_t i = 0; i < cx->n_items; i++) {
        cx->o->steps++;
        start[scope_rank(m, cx->items[i].scope) + 1]++;
    }
    for (size_t r = 1; r < m->n + 2; r++)
        start[r] += start[r - 1];
    for (size_t i = 0; i < cx->n_items; i++) {
        cx->o->steps++;
        order[start[scope_rank(m, cx->items[i].scope)]++] = i;
    }
}

/* The clusters open while writing: one per component of the current
 * scope ("layer1", "act" for "layer1/act"). */
enum { MAX_COMP = 260 };
typedef struct cluster_stack {
    const char *comp[MAX_COMP]; /* the components, pointing into scopes */
    size_t len[MAX_COMP];
    int depth;                  /* clusters open                        */
    size_t clusters;            /* clusters opened so far (their ids)   */
} cluster_stack;

/* Close open clusters until `depth` are left. */
static void close_clusters(dot_out *o, cluster_stack *st, int depth)
{
    for (; st->depth > depth; st->depth--) {
        out_indent(o, st->depth - 1);
        out_str(o, "}\n");
    }
}

/* Open a cluster for the scope component p[0, len), inside the open ones. */
static void open_cluster(dot_out *o, cluster_stack *st, const char *p, size_t len)
{
    int d = st->depth;
    st->comp[d] = p;
    st->len[d] = len;
    char name[MAX_COMP * 2 + 1];
    memcpy(name, p, len < sizeof name - 1 ? len : sizeof name - 1);
    name[len < sizeof name - 1 ? len : sizeof name - 1] = 0;
    out_indent(o, d);
    out_fmt(o, "subgraph cluster_%zu {\n", st->clusters++);
    out_indent(o, d + 1);
    out_str(o, "graph [label=\"");
    esc_text(o, name, NAME_CHARS, true);
    bool grad = len == 4 && !memcmp(p, "grad", 4); /* tg_grad_graph's scope */
    out_fmt(o, "\", style=\"rounded,filled%s\", fillcolor=\"%s\", color=\"%s\"];\n",
            grad ? ",dashed" : "", grad ? "#fff0f6" : cluster_fill[d % 4],
            grad ? "#e64980" : "#adb5bd");
    st->depth++;
}

/* Make the open clusters those of scope s: keep the leading components s
 * shares with what is open, close the rest, open the components of s that
 * are missing. */
static void enter_scope(dot_out *o, cluster_stack *st, const char *s)
{
    int k = 0;
    bool same = true; /* components [0, k) of s are the open ones */
    for (const char *p = s;; k++) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (k == MAX_COMP - 1) { /* cannot happen: scopes are < 512 bytes */
            len = strlen(p);
            e = NULL;
        }
        if (same && !(k < st->depth && st->len[k] == len && !memcmp(st->comp[k], p, len))) {
            same = false;
            close_clusters(o, st, k);
        }
        if (!same)
            open_cluster(o, st, p, len);
        if (!e)
            break;
        p = e + 1;
    }
    close_clusters(o, st, k + 1); /* s is a prefix of what is open */
}

/* Emit the items grouped in nested clusters: the items bucketed by scope,
 * then the sorted scopes walked with a stack of open clusters. */
static int write_clustered(dot_ctx *cx)
{
    dot_out *o = cx->o;
    scope_map m;
    size_t *start = NULL, *order = NULL;
    int rc = TG_ERR;
    if (scope_map_init(&m, cx->tape))
        goto done;
    start = tg_malloc((m.n + 2) * sizeof *start);
    order = tg_malloc((cx->n_items ? cx->n_items : 1) * sizeof *order);
    if (!start || !order)
        goto done;
    bucket_by_scope(cx, &m, start, order);
    size_t at = 0;
    for (; at < start[0]; at++) /* no scope: outside every cluster */
        write_item(cx, &cx->items[order[at]], 0);
    cluster_stack st;
    st.depth = 0;
    st.clusters = 0;
    for (size_t r = 0; r < m.n; r++) {
        o->steps++;
        if (at == start[r + 1])
            continue; /* no item in this scope */
        enter_scope(o, &st, m.sorted[r]);
        for (; at < start[r + 1]; at++)
            write_item(cx, &cx->items[order[at]], st.depth);
    }
    close_clusters(o, &st, 0);
    rc = TG_OK;
done:
    scope_map_free(&m);
    tg_free(start);
    tg_free(order);
    return rc;
}

/* ---- the walk ------------------------------------------------------------ */

/* A constant met as an input: numbered at first use and added to the items. */
static dot_ref *add_const(dot_ctx *cx, tg_tensor *t)
{
    dot_ref *r = &cx->refs[cx->n_refs++];
    memset(r, 0, sizeof *r);
    r->t = t;
    r->num = cx->n_consts++;
    r->prefix = 'c';
    r->used = 1;
    t->aux = (tg_tensor *)(void *)r;
    cx->items[cx->n_items++] = (dot_item){t, r, NULL};
    return r;
}

/* Record that a node in `scope` uses r. */
static void used_in(dot_ref *r, const char *scope)
{
    if (r->scope_state == 0) {
        r->scope_state = 1;
        r->scope = scope;
    } else if (r->scope_state == 1 && r->scope != scope) {
        r->scope_state = 2;
        r->scope = NULL;
    }
}

/* Link every leaf to its ref (leaf i: "l<i>"); with no root every leaf is
 * drawn, else only the ancestors of the root (mark_ancestors). */
static void index_leaves(dot_ctx *cx)
{
    tg_tape *tape = cx->tape;
    for (size_t i = 0; i < tape->n_leaves; i++) {
        cx->o->steps++;
        dot_ref *r = &cx->refs[i];
        memset(r, 0, sizeof *r);
        r->t = tape->leaves[i];
        r->num = i;
        r->prefix = 'l';
        r->used = !cx->root;
        tape->leaves[i]->aux = (tg_tensor *)(void *)r;
    }
    cx->n_refs = tape->n_leaves;
}

/* Flag F_NEED on the nodes to draw (all, or the ancestors of the root,
 * walking the tape backwards) and mark the leaves they use. */
static void mark_ancestors(dot_ctx *cx)
{
    tg_tape *tape = cx->tape;
    tg_tensor *root = cx->root;
    if (root && root->node)
        cx->flag[root->node->index] = F_NEED;
    for (size_t i = cx->end; i-- > 0;) {
        cx->o->steps++;
        if (root && !(cx->flag[i] & F_NEED))
            continue;
        cx->flag[i] = F_NEED;
        tg_node *n = tape->nodes[i];
        for (int j = 0; j < n->n_in; j++) {
            tg_tensor *x = n->in[j];
            cx->o->steps++;
            if (x->node) {
                if (x->node->index < i)
                    cx->flag[x->node->index] = F_NEED;
            } else if (ref_of(x)) {
                ref_of(x)->used = 1;
            }
        }
    }
    if (root && !root->node && ref_of(root)) /* a leaf alone */
        ref_of(root)->used = 1;
}

/* The items in output order: the drawn leaves, then the nodes in tape
 * order, each constant just before its first user.  On the way: F_LIVE
 * (a gradient can flow) and each item's cluster. */
static void collect_items(dot_ctx *cx)
{
    tg_tape *tape = cx->tape;
    tg_tensor *root = cx->root;
    dot_out *o = cx->o;
    for (size_t i = 0; i < tape->n_leaves; i++) {
        o->steps++;
        if (cx->refs[i].used)
            cx->items[cx->n_items++] = (dot_item){tape->leaves[i], &cx->refs[i], NULL};
    }
    if (root && !root->node && !ref_of(root)) /* a constant alone */
        add_const(cx, root);

    /* Forward: liveness, constants at first use and their scope. */
    for (size_t i = 0; i < cx->end; i++) {
        o->steps++;
        if (!(cx->flag[i] & F_NEED))
            continue;
        tg_node *n = tape->nodes[i];
        bool live = false;
        for (int j = 0; j < n->n_in; j++) {
            tg_tensor *x = n->in[j];
            o->steps++;
            if (!x->node) {
                dot_ref *r = ref_of(x) ? ref_of(x) : add_const(cx, x);
                used_in(r, n->scope);
            }
            live |= is_live(cx, x);
        }
        if (live)
            cx->flag[i] |= F_LIVE;
        cx->items[cx->n_items++] = (dot_item){&n->out, NULL, n->scope};
    }
    for (size_t i = 0; i < cx->n_items; i++) {
        dot_ref *r = cx->items[i].ref;
        o->steps++;
        if (r) /* leaves stay outside: a cluster is a layer's ops */
            cx->items[i].scope = r->prefix == 'c' && r->scope_state == 1 ? r->scope : NULL;
    }
}

static void write_header(dot_ctx *cx)
{
    dot_out *o = cx->o;
    out_str(o, "digraph tapegrad {\n");
    out_str(o, "  graph [charset=\"UTF-8\", rankdir=TB, fontname=\"Helvetica\", fontsize=12, "
               "nodesep=0.25, ranksep=0.35");
    if (cx->opts.title) {
        out_str(o, ", labelloc=t, label=\"");
        esc_text(o, cx->opts.title, TITLE_CHARS, true);
        out_str(o, "\"");
    }
    out_str(o, "];\n");
    out_str(o, "  node [fontname=\"Helvetica\", fontsize=10, margin=\"0.1,0.04\"];\n");
    out_str(o, "  edge [fontname=\"Helvetica\", fontsize=9, color=\"" COL_EDGE "\", "
               "arrowsize=0.7];\n");
}

/* Forward edges: input slot -> op, in tape order. */
static void write_forward_edges(dot_ctx *cx)
{
    dot_out *o = cx->o;
    for (size_t i = 0; i < cx->end; i++) {
        o->steps++;
        if (!(cx->flag[i] & F_NEED))
            continue;
        tg_node *n = cx->tape->nodes[i];
        for (int j = 0; j < n->n_in; j++) {
            o->steps++;
            out_str(o, "  ");
            write_id(o, n->in[j]);
            out_fmt(o, " -> n%zu", i);
            if (n->n_in > 1)
                out_fmt(o, " [label=\"%d\"]", j);
            out_str(o, ";\n");
        }
    }
}

/* Backward edges: one per gradient contribution, i.e. from every node a
 * gradient reaches into each input it flows to, in the order backward runs
 * them.  constraint=false keeps the forward layout. */
static void write_backward_edges(dot_ctx *cx)
{
    dot_out *o = cx->o;
    for (size_t i = cx->end; i-- > 0;) {
        o->steps++;
        if ((cx->flag[i] & (F_NEED | F_LIVE)) != (F_NEED | F_LIVE))
            continue;
        tg_node *n = cx->tape->nodes[i];
        for (int j = 0; j < n->n_in; j++) {
            o->steps++;
            if (!is_live(cx, n->in[j]))
                continue;
            out_fmt(o, "  n%zu -> ", i);
            write_id(o, n->in[j]);
            out_str(o, " [style=dashed, color=\"" COL_GRAD "\", fontcolor=\"" COL_GRAD
                       "\", label=\"\xE2\x88\x82\", constraint=false];\n"); /* ∂ */
        }
    }
}

static int walk_and_write(dot_ctx *cx)
{
    index_leaves(cx);
    mark_ancestors(cx);
    collect_items(cx);
    write_header(cx);
    if (cx->opts.clusters) {
        if (write_clustered(cx))
            return TG_ERR;
    } else {
        for (size_t i = 0; i < cx->n_items; i++) {
            cx->o->steps++;
            write_item(cx, &cx->items[i], 0);
        }
    }
    write_forward_edges(cx);
    if (cx->opts.backward)
        write_backward_edges(cx);
    out_str(cx->o, "}\n");
    return TG_OK;
}

int tg_dot_write_stats(FILE *f, tg_tape *tape, tg_tensor *root, const tg_dot_opts *opts,
                       tg_dot_stats *stats)
{
    if (stats)
        memset(stats, 0, sizeof *stats);
    if (!tape && root)
        tape = root->tape;
    if (!tape)
        return TG_ERR;
    if (!f)
        return tg_error(tape, "dot_write: file is NULL");
    if (root && root->tape != tape)
        return tg_error(tape, "dot_write: root '%s' belongs to another tape", tg_label(root));
    if (root && root->node &&
        (root->node->index >= tape->n_nodes || tape->nodes[root->node->index] != root->node))
        return tg_error(tape, "dot_write: root '%s' is no longer on the tape (cleared?)",
                        tg_label(root));

    dot_ctx cx;
    memset(&cx, 0, sizeof cx);
    cx.tape = tape;
    cx.root = root;
    if (opts)
        cx.opts = *opts;
    cx.end = !root ? tape->n_nodes : root->node ? root->node->index + 1 : 0;

    dot_out *o = tg_malloc(sizeof *o);
    /* refs: the leaves, then at most one constant per input (and the root) */
    size_t max_refs = tape->n_leaves + TG_MAX_IN * cx.end + 1;
    cx.flag = tg_malloc(cx.end ? cx.end : 1);
    cx.refs = tg_malloc(max_refs * sizeof *cx.refs);
    cx.items = tg_malloc((max_refs + cx.end) * sizeof *cx.items);
    int rc = TG_ERR;
    if (!o || !cx.flag || !cx.refs || !cx.items) {
        tg_error(tape, "dot_write: out of memory");
        goto done;
    }
    memset(cx.flag, 0, cx.end ? cx.end : 1);
    memset(o, 0, offsetof(dot_out, buf));
    o->f = f;
    cx.o = o;
    errno = 0;
    rc = walk_and_write(&cx);
    out_flush(o);
    if (rc)
        tg_error(tape, "dot_write: out of memory");
    else if (o->failed || fflush(f) || ferror(f)) {
        int e = o->failed ? o->err : errno ? errno : EIO;
        rc = tg_error(tape, "dot_write: write failed: %s", strerror(e));
    }
    if (stats) {
        stats->bytes = o->bytes;
        stats->steps = o->steps;
    }
done:
    if (cx.refs) /* leave no link behind */
        for (size_t i = 0; i < cx.n_refs; i++)
            cx.refs[i].t->aux = NULL;
    tg_free(o);
    tg_free(cx.flag);
    tg_free(cx.refs);
    tg_free(cx.items);
    return rc;
}

int tg_dot_write(FILE *f, tg_tape *tape, tg_tensor *root, const tg_dot_opts *opts)
{
    return tg_dot_write_stats(f, tape, root, opts, NULL);
}

/* ======================================================================== */
/* Saving                                                                   */
/* ======================================================================== */

int tg_dot_save(const char *path, tg_tape *tape, tg_tensor *root, const tg_dot_opts *opts)
{
    if (!tape && root)
        tape = root->tape;
    if (!tape)
        return TG_ERR;
    if (!path || !*path)
        return tg_error(tape, "dot_save: path is NULL or empty");
    tg_atomic a; /* src/io/file.c */
    if (tg_atomic_open(&a, "dot_save", path))
        return tg_error(tape, "%s", a.msg);
    if (tg_dot_write(a.f, tape, root, opts)) {
        tg_atomic_abort(&a);
        return TG_ERR;
    }
    if (tg_atomic_commit(&a))
        return tg_error(tape, "%s", a.msg);
    return TG_OK;
}

/* ======================================================================== */
/* Rendering with Graphviz                                                  */
/* ======================================================================== */

#define INSTALL_HINT                                                                        \
    "install Graphviz to render graphs (Debian/Ubuntu: sudo apt-get install graphviz; "     \
    "Fedora: sudo dnf install graphviz; macOS: brew install graphviz)"

/* The full path of the executable `dot` found on PATH (no shell), written
 * into buf; false when there is none. */
static bool find_dot(char *buf, size_t len)
{
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path;;) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        int w = n ? snprintf(buf, len, "%.*s/dot", (int)n, p) : snprintf(buf, len, "./dot");
        struct stat st;
        if (w > 0 && (size_t)w < len && !stat(buf, &st) && S_ISREG(st.st_mode) &&
            !access(buf, X_OK))
            return true;
        if (!e)
            return false;
        p = e + 1;
    }
}

bool tg_dot_available(void)
{
    char buf[4096];
    return find_dot(buf, sizeof buf);
}

/* Run argv[0] with stdin from /dev/null and stdout+stderr into `out`
 * (at most len-1 bytes kept, NUL-terminated).  Returns the wait status, or
 * -1 with errno when it could not be run. */
static int run_capture(char *const argv[], char *out, size_t len)
{
    int pfd[2];
    if (pipe(pfd))
        return -1;
    posix_spawn_file_actions_t fa;
    int e = posix_spawn_file_actions_init(&fa);
    if (!e)
        e = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (!e)
        e = posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    if (!e)
        e = posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
    if (!e)
        e = posix_spawn_file_actions_addclose(&fa, pfd[0]);
    if (!e)
        e = posix_spawn_file_actions_addclose(&fa, pfd[1]);
    pid_t pid;
    if (!e)
        e = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pfd[1]);
    if (e) {
        close(pfd[0]);
        errno = e;
        return -1;
    }
    size_t have = 0;
    for (;;) {
        char chunk[1024];
        ssize_t r = read(pfd[0], chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        size_t k = (size_t)r;
        if (k > len - 1 - have)
            k = len - 1 - have;
        memcpy(out + have, chunk, k);
        have += k;
    }
    out[have] = 0;
    close(pfd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return status;
}

/* dot's message made one line: newlines become "; ", trailing space cut */
static void one_line(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = 0;
    for (char *p = s; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

/* Run Graphviz's dot (at path `dot`) on the DOT file dot_path, writing
 * `format` to out.  Fails when dot cannot run, fails, or prints anything (a
 * warning means a wrong picture), with dot's message. */
static int run_dot(char *dot, const char *format, const char *dot_path, const char *out,
                   tg_err *err)
{
    /* No shell: argv is passed as is.  A path starting with '-' would read
     * as an option, so the input gets "./"; the output is glued to -o. */
    char *in_arg = tg_malloc(strlen(dot_path) + 3);
    char *o_arg = tg_malloc(strlen(out) + 3);
    char t_arg[8];
    snprintf(t_arg, sizeof t_arg, "-T%s", format);
    if (!in_arg || !o_arg) {
        tg_free(in_arg);
        tg_free(o_arg);
        return TG_ERR_MSG(err, "dot_render: out of memory");
    }
    sprintf(in_arg, "%s%s", dot_path[0] == '-' ? "./" : "", dot_path);
    sprintf(o_arg, "-o%s", out);
    char *argv[] = {dot, t_arg, o_arg, in_arg, NULL};
    char msg[2048];
    int status = run_capture(argv, msg, sizeof msg);
    tg_free(in_arg);
    tg_free(o_arg);
    one_line(msg);
    if (status < 0)
        return TG_ERR_MSG(err, "dot_render: cannot run %s: %s", dot, strerror(errno));
    if (!WIFEXITED(status))
        return TG_ERR_MSG(err, "dot_render: dot was killed by signal %d%s%s", WTERMSIG(status),
                          *msg ? ": " : "", msg);
    if (WEXITSTATUS(status))
        return TG_ERR_MSG(err, "dot_render: dot failed on '%s' (exit %d): %s", dot_path,
                          WEXITSTATUS(status), *msg ? msg : "no message");
    if (*msg)
        return TG_ERR_MSG(err, "dot_render: dot complained about '%s': %s", dot_path, msg);
    return TG_OK;
}

int tg_dot_render(const char *dot_path, const char *format, const char *out_path,
                  tg_err *err)
{
    if (err)
        err->msg[0] = 0;
    if (!dot_path || !*dot_path || !out_path || !*out_path)
        return TG_ERR_MSG(err, "dot_render: %s path is NULL or empty",
                          !dot_path || !*dot_path ? "the DOT file's" : "the output");
    if (!format || (strcmp(format, "svg") && strcmp(format, "png")))
        return TG_ERR_MSG(err, "dot_render: format must be \"svg\" or \"png\", not %s%s%s",
                          format ? "\"" : "", format ? format : "NULL", format ? "\"" : "");
    char dot[4096];
    if (!find_dot(dot, sizeof dot))
        return TG_ERR_MSG(err, "dot_render: Graphviz's dot was not found on PATH; " INSTALL_HINT);
    struct stat st;
    if (stat(dot_path, &st))
        return TG_ERR_MSG(err, "dot_render: cannot read '%s': %s", dot_path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return TG_ERR_MSG(err, "dot_render: '%s' is not a regular file", dot_path);

    /* dot writes into the temporary file by its name; commit then syncs and
     * renames it like any other file (src/io/file.c) */
    tg_atomic a;
    if (tg_atomic_open(&a, "dot_render", out_path))
        return TG_ERR_MSG(err, "%s", a.msg);
    if (run_dot(dot, format, dot_path, a.tmp, err)) {
        tg_atomic_abort(&a);
        return TG_ERR;
    }
    if (tg_atomic_commit(&a))
        return TG_ERR_MSG(err, "%s", a.msg);
    return TG_OK;
}
