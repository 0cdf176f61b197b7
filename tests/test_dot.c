/* DOT export: golden files, rendering with Graphviz, hostile names, errors,
 * atomic saving, and linear work on a 100,000-node graph.
 *
 * Golden files live in tests/golden/ (meson runs this test from tests/, or
 * pass the golden directory as the first argument).  After an intended change
 * of the output, regenerate them with
 *     TAPEGRAD_UPDATE_GOLDEN=1 meson test -C BUILD dot
 * and review the diff.  With Graphviz installed, every DOT file this test
 * writes is rendered with dot -Tsvg and must produce no warning (tg_dot_render
 * fails on any output of dot's); without it those checks are skipped. */
#include "io.h"
#include "tap.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>


static const char *golden_dir = "golden";
static bool update_golden;
static bool have_dot;
static char tmpdir[64];

/* ---- helpers ------------------------------------------------------------- */

/* Write the graph into memory; returns a malloc'd NUL-terminated string. */
static char *dot_string(tg_tape *t, tg_tensor *root, const tg_dot_opts *o, size_t *len,
                        tg_dot_stats *st)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return NULL;
    int rc = tg_dot_write_stats(f, t, root, o, st);
    fclose(f);
    if (rc) {
        free(buf);
        return NULL;
    }
    if (len)
        *len = n;
    return buf;
}

/* Render a DOT file with dot -Tsvg: must succeed with no complaint. */
static void renders(const char *dot_path, const char *what)
{
    if (!have_dot) {
        printf("ok %d - # SKIP %s renders with dot -Tsvg (Graphviz is not installed)\n",
               ++tap_count, what);
        return;
    }
    char svg[512];
    snprintf(svg, sizeof svg, "%s/render.svg", tmpdir);
    tg_err e;
    int rc = tg_dot_render(dot_path, "svg", svg, &e);
    ok(rc == 0, "%s renders with dot -Tsvg without warnings", what);
    if (rc)
        diag("%s", e.msg);
}

/* Write s to the temporary directory and render it. */
static void renders_text(const char *s, size_t n, const char *what)
{
    char path[512];
    snprintf(path, sizeof path, "%s/t.dot", tmpdir);
    if (!tap_write_file(path, s, n)) {
        ok(0, "write %s", path);
        return;
    }
    renders(path, what);
}

/* ---- a strict DOT parser --------------------------------------------------- */
/* The grammar of https://graphviz.org/doc/info/lang.html, strictly: no
 * comments, no HTML strings, keywords only where the grammar has them, "->"
 * only (a digraph).  Quoted strings are read in one of two ways, and the
 * output must parse both ways: `literal` takes the spec at its word (the
 * only escape is \" ), otherwise a backslash pairs with any next byte (as
 * Graphviz, pydot and most parsers do). */
typedef struct dotp {
    const char *p, *end;
    bool literal;
    int tok; /* one of "{}[];,=:" or 'A' (ID), 'K' (keyword), '>' (->), 0 (end), -1 (bad) */
    char kw[16];
    const char *err;
} dotp;

static bool is_alpha(unsigned char c) { return c == '_' || c >= 0x80 || (unsigned)((c | 32) - 'a') < 26u; }
static bool is_digit(unsigned char c) { return (unsigned)(c - '0') < 10u; }

static void dp_next(dotp *d)
{
    while (d->p < d->end && (*d->p == ' ' || *d->p == '\n' || *d->p == '\t' || *d->p == '\r'))
        d->p++;
    if (d->p == d->end) {
        d->tok = 0;
        return;
    }
    unsigned char c = (unsigned char)*d->p;
    if (strchr("{}[];,=:", c)) {
        d->tok = c;
        d->p++;
    } else if (c == '-' && d->p + 1 < d->end && d->p[1] == '>') {
        d->tok = '>';
        d->p += 2;
    } else if (c == '"') {
        for (d->p++;; d->p++) {
            if (d->p >= d->end) {
                d->tok = -1, d->err = "unterminated string";
                return;
            }
            if (*d->p == '\\' && d->p + 1 < d->end && (!d->literal || d->p[1] == '"'))
                d->p++;
            else if (*d->p == '"')
                break;
        }
        d->p++;
        d->tok = 'A';
    } else if (is_alpha(c)) {
        const char *b = d->p;
        while (d->p < d->end && (is_alpha((unsigned char)*d->p) || is_digit((unsigned char)*d->p)))
            d->p++;
        static const char *const kws[] = {"node", "edge", "graph", "digraph", "subgraph", "strict"};
        d->tok = 'A';
        for (size_t k = 0; k < 6; k++)
            if ((size_t)(d->p - b) == strlen(kws[k]) && !strncasecmp(b, kws[k], strlen(kws[k]))) {
                d->tok = 'K';
                snprintf(d->kw, sizeof d->kw, "%s", kws[k]);
            }
    } else if (is_digit(c) || c == '.' || c == '-') {
        d->p += c == '-';
        const char *b = d->p;
        while (d->p < d->end && is_digit((unsigned char)*d->p))
            d->p++;
        if (d->p < d->end && *d->p == '.')
            for (d->p++; d->p < d->end && is_digit((unsigned char)*d->p);)
                d->p++;
        d->tok = d->p - b > (b < d->end && *b == '.' ? 1 : 0) ? 'A' : -1;
        if (d->tok < 0)
            d->err = "bad numeral";
    } else {
        d->tok = -1, d->err = "unexpected character";
    }
}

static bool dp_take(dotp *d, int tok)
{
    if (d->tok != tok)
        return false;
    dp_next(d);
    return true;
}

static bool dp_kw(dotp *d, const char *kw) { return d->tok == 'K' && !strcmp(d->kw, kw); }

static bool dp_attr_list(dotp *d)
{
    if (d->tok != '[')
        return false;
    while (dp_take(d, '[')) {
        while (d->tok != ']') {
            if (!dp_take(d, 'A') || !dp_take(d, '=') || !dp_take(d, 'A'))
                return false;
            if (d->tok == ';' || d->tok == ',')
                dp_next(d);
        }
        dp_next(d);
    }
    return true;
}

static bool dp_stmt_list(dotp *d);

static bool dp_subgraph(dotp *d)
{
    if (dp_kw(d, "subgraph")) {
        dp_next(d);
        dp_take(d, 'A');
    }
    return dp_take(d, '{') && dp_stmt_list(d) && dp_take(d, '}');
}

/* node_id: ID [':' ID [':' ID]] */
static bool dp_node_id(dotp *d)
{
    if (!dp_take(d, 'A'))
        return false;
    for (int k = 0; k < 2 && d->tok == ':'; k++) {
        dp_next(d);
        if (!dp_take(d, 'A'))
            return false;
    }
    return true;
}

static bool dp_edge_rhs(dotp *d)
{
    while (dp_take(d, '>'))
        if (!(dp_kw(d, "subgraph") || d->tok == '{' ? dp_subgraph(d) : dp_node_id(d)))
            return false;
    return d->tok == '[' ? dp_attr_list(d) : true;
}

static bool dp_stmt_list(dotp *d)
{
    while (d->tok != '}' && d->tok > 0) {
        bool good;
        if (dp_kw(d, "graph") || dp_kw(d, "node") || dp_kw(d, "edge")) {
            dp_next(d);
            good = dp_attr_list(d);
        } else if (dp_kw(d, "subgraph") || d->tok == '{') {
            good = dp_subgraph(d) && dp_edge_rhs(d);
        } else if (d->tok == 'A') {
            dp_next(d);
            if (dp_take(d, '='))
                good = dp_take(d, 'A');
            else if (d->tok == ':')
                good = false; /* ports: never written */
            else
                good = d->tok == '>' ? dp_edge_rhs(d) : d->tok == '[' ? dp_attr_list(d) : true;
        } else {
            good = false;
        }
        if (!good)
            return false;
        dp_take(d, ';');
    }
    return true;
}

/* Whether s parses as a DOT digraph under both readings of strings. */
static bool strict_dot_q(const char *s, size_t n, bool quiet)
{
    for (int literal = 0; literal < 2; literal++) {
        dotp d = {.p = s, .end = s + n, .literal = literal};
        dp_next(&d);
        if (dp_kw(&d, "strict"))
            dp_next(&d);
        bool good = dp_kw(&d, "digraph");
        if (good) {
            dp_next(&d);
            dp_take(&d, 'A');
            good = dp_take(&d, '{') && dp_stmt_list(&d) && dp_take(&d, '}') && d.tok == 0;
        }
        if (!good) {
            if (!quiet)
                diag("strict DOT parse failed (%s strings) near byte %zu: %s",
                     literal ? "literal" : "paired", (size_t)(d.p - s),
                     d.err ? d.err : "grammar");
            return false;
        }
    }
    return true;
}

static bool strict_dot(const char *s, size_t n) { return strict_dot_q(s, n, false); }

/* Compare with tests/golden/<name>.dot byte for byte (or rewrite it). */
static void golden(const char *name, const char *s, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.dot", golden_dir, name);
    if (update_golden) {
        ok(tap_write_file(path, s, n), "golden %s rewritten", path);
        renders(path, name);
        return;
    }
    size_t gn = 0;
    char *g = tap_read_file(path, &gn);
    bool same = g && gn == n && !memcmp(g, s, n);
    ok(same, "%s: output equals %s byte for byte", name, path);
    if (!g) {
        diag("cannot read %s (TAPEGRAD_UPDATE_GOLDEN=1 creates it)", path);
    } else if (!same) {
        size_t i = 0, line = 1;
        while (i < n && i < gn && s[i] == g[i])
            line += s[i++] == '\n';
        diag("first difference on line %zu (got %zu bytes, want %zu)", line, n, gn);
        diag("got:  %.120s", s + (i > 40 ? i - 40 : 0));
        diag("want: %.120s", g + (i > 40 ? i - 40 : 0));
    }
    free(g);
    ok(strict_dot(s, n), "%s: a strict DOT parser accepts it", name);
    renders_text(s, n, name);
}

/* The whole output is valid UTF-8 with no control character but newline. */
static bool clean_utf8(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        if (c < 0x80) {
            if ((c < 0x20 && c != '\n') || c == 0x7F)
                return false;
            i++;
            continue;
        }
        int k = c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2
              : c >= 0xF0 && c <= 0xF4 ? 3 : -1;
        if (k < 0)
            return false;
        uint32_t v = c & (k == 1 ? 0x1F : k == 2 ? 0x0F : 0x07);
        for (int j = 1; j <= k; j++) {
            if (i + (size_t)j >= n || (p[i + j] & 0xC0) != 0x80)
                return false;
            v = v << 6 | (p[i + j] & 0x3Fu);
        }
        uint32_t min = k == 1 ? 0x80 : k == 2 ? 0x800 : 0x10000;
        if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || v <= 0x9F ||
            v == 0xFFFE || v == 0xFFFF)
            return false;
        i += (size_t)k + 1;
    }
    return true;
}

/* ---- the small graphs of the golden files --------------------------------- */

/* A two-layer net on exact values (multiples of 1/4, sums of few terms), so
 * that every machine and kernel path computes the same numbers bit for bit:
 *   layer1: z1 = x·W1 + b1, h1 = relu(z1)   (relu in scope layer1/act)
 *   layer2: out = h1·W2 + b2
 *   loss:   loss = ½Σ(out[idx] − t)² + 0.5 · l2(W1, 0.25)
 * (out[idx]: gather_rows with i32 indices), plus a parameter no op uses
 * ("unused") and a dead branch off x (neg). */
typedef struct small {
    tg_tape *t;
    tg_tensor *x, *idx, *tgt, *W1, *b1, *W2, *b2, *unused;
    tg_tensor *z1, *h1, *z2, *picked, *se, *pen, *loss, *dead;
} small;

static void build_small(small *s, bool scopes)
{
    tg_tape *t = s->t = tg_tape_new();
    s->x = tg_leaf_from(t, TG_INPUT, "x", TG_F64, 2, SHAPE(2, 3),
                        (double[]){1, -0.5, 0.25, 0, 0.75, -1});
    s->idx = tg_leaf_from(t, TG_INPUT, "idx", TG_I32, 1, SHAPE(2), (int32_t[]){1, 0});
    s->tgt = tg_leaf_from(t, TG_INPUT, "t", TG_F64, 2, SHAPE(2, 2), (double[]){1, 0, 0, 1});
    s->W1 = tg_leaf_from(t, TG_PARAM, "W1", TG_F64, 2, SHAPE(3, 4),
                         (double[]){0.5, -0.25, 1, 0, 0.25, 0.5, -0.5, 1, -1, 0.75, 0.25, 0.5});
    s->b1 = tg_leaf_from(t, TG_PARAM, "b1", TG_F64, 1, SHAPE(4), (double[]){0, 0.25, -0.25, 0.5});
    s->W2 = tg_leaf_from(t, TG_PARAM, "W2", TG_F64, 2, SHAPE(4, 2),
                         (double[]){1, -1, 0.5, 0.25, -0.5, 0.75, 0.25, 0});
    s->b2 = tg_leaf_from(t, TG_PARAM, "b2", TG_F64, 1, SHAPE(2), (double[]){0.25, -0.25});
    s->unused = tg_param(t, "unused", TG_F64, 1, SHAPE(2));
    if (scopes)
        tg_scope_push(t, "layer1");
    s->z1 = tg_add_bias(tg_matmul(s->x, s->W1), s->b1);
    tg_set_name(s->z1, "z1");
    if (scopes)
        tg_scope_push(t, "act");
    s->h1 = tg_relu(s->z1);
    if (scopes) {
        tg_scope_pop(t);
        tg_scope_pop(t);
        tg_scope_push(t, "layer2");
    }
    s->z2 = tg_add_bias(tg_matmul(s->h1, s->W2), s->b2);
    tg_set_name(s->z2, "out");
    if (scopes) {
        tg_scope_pop(t);
        tg_scope_push(t, "loss");
    }
    s->picked = tg_gather_rows(s->z2, s->idx);
    s->se = tg_mse(s->picked, s->tgt, TG_SUM | TG_HALF);
    s->pen = tg_mul(tg_scalar(t, TG_F64, 0.5), tg_l2(s->W1, 0.25));
    s->loss = tg_add(s->se, s->pen);
    tg_set_name(s->loss, "loss");
    if (scopes)
        tg_scope_pop(t);
    s->dead = tg_neg(s->x); /* not an ancestor of the loss */
}

/* The strict parser is not a rubber stamp. */
static void test_strict_parser(void)
{
    static const char *good = "digraph g { graph [a=b]; x [label=\"q\\\"\"]; x -> y -> z [w=1]; "
                              "subgraph cluster_0 { n; } }";
    ok(strict_dot(good, strlen(good)), "strict parser: accepts a valid digraph");
    static const char *bad[] = {
        "digraph { a [label=\"ends in backslash\\\\\"]; }", /* literal reading: unterminated */
        "graph { a -- b }",
        "digraph { a -> }",
        "digraph { node -> b }",
        "digraph { a [label=<b>html</b>]; }",
        "digraph { a [label] }",
        "digraph { /* comment */ a }",
        "digraph { a } extra",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ok(!strict_dot_q(bad[i], strlen(bad[i]), true), "strict parser: rejects %s", bad[i]);
}

static void test_golden(void)
{
    small s;
    build_small(&s, false);
    ok(!tg_tape_error(s.t), "small graph built (%s)", tg_tape_error(s.t) ? tg_tape_error(s.t) : "");
    size_t n;
    char *d;

    d = dot_string(s.t, s.loss, &(tg_dot_opts){0}, &n, NULL);
    golden("forward", d, n);
    ok(d && !strstr(d, "neg") && !strstr(d, "unused"),
       "forward: only the root's ancestors (no dead branch, no unused leaf)");
    ok(d && strstr(d, "l0 -> n0 [label=\"0\"]") && strstr(d, "l3 -> n0 [label=\"1\"]"),
       "forward: edges into a two-input op carry the input slot");
    ok(d && strstr(d, "n1 -> n2;"), "forward: an edge into a one-input op has no label");
    ok(d && strstr(d, "fillcolor=\"#ffa8a8\", penwidth=2"), "forward: the root is highlighted");
    free(d);

    d = dot_string(s.t, s.loss, &(tg_dot_opts){.values = true, .max_values = 4,
                                                .title = "values \"of\" a small net"},
                   &n, NULL);
    golden("values", d, n);
    ok(d && strstr(d, "= [1, 0]") && strstr(d, "min -1 mean 0.08333 max 1"),
       "values: small tensors listed, larger ones summarised");
    free(d);

    tg_backward(s.loss);
    d = dot_string(s.t, NULL, &(tg_dot_opts){.values = true, .grads = true}, &n, NULL);
    golden("grads", d, n);
    ok(d && strstr(d, "neg") && strstr(d, "unused"), "grads: root NULL draws the whole tape");
    ok(d && strstr(d, "no grad"), "grads: a parameter backward did not reach says \"no grad\"");
    ok(d && strstr(d, "grad = 1\""), "grads: the root's gradient is 1");
    free(d);

    d = dot_string(s.t, s.loss, &(tg_dot_opts){.backward = true}, &n, NULL);
    golden("backward", d, n);
    /* contributions: every input that is live, of every live node */
    size_t dashed = 0;
    for (const char *p = d; p && (p = strstr(p, "style=dashed, color")); p++)
        dashed++;
    size_t want = 0;
    for (size_t i = 0; i < tg_tape_nodes(s.t); i++) {
        tg_node *nd = s.t->nodes[i];
        if (i <= (size_t)tg_node_index(s.loss) && nd->out.live)
            for (int j = 0; j < nd->n_in; j++)
                want += nd->in[j]->live;
    }
    ok(d && dashed == want && want == 14,
       "backward: one dashed edge per gradient contribution (%zu, want %zu)", dashed, want);
    ok(d && !strstr(d, "-> l0 [style=dashed") && !strstr(d, "-> l1 [style=dashed"),
       "backward: no gradient edge into an input");
    free(d);
    tg_tape_free(s.t);

    build_small(&s, true);
    tg_backward(s.loss);
    d = dot_string(s.t, s.loss, &(tg_dot_opts){.clusters = true, .backward = true,
                                                .title = "clusters"},
                   &n, NULL);
    golden("clusters", d, n);
    const char *l1 = d ? strstr(d, "label=\"layer1\"") : NULL;
    const char *act = d ? strstr(d, "label=\"act\"") : NULL;
    const char *l2 = d ? strstr(d, "label=\"layer2\"") : NULL;
    ok(l1 && act && l2 && l1 < act && act < l2, "clusters: act nested in layer1, then layer2");
    ok(d && strstr(d, "\n  l0 [") && strstr(d, "\n  l6 [") && strstr(d, "\n    c0 ["),
       "clusters: leaves stay outside, a constant goes into its users' scope");
    free(d);

    /* deterministic: the same graph rebuilt elsewhere in memory */
    char *filler = malloc(12345);
    small s2;
    build_small(&s2, true);
    tg_backward(s2.loss);
    size_t n2;
    char *d1 = dot_string(s.t, s.loss, &(tg_dot_opts){.clusters = true, .values = true,
                                                     .grads = true, .backward = true},
                          &n, NULL);
    char *d2 = dot_string(s2.t, s2.loss, &(tg_dot_opts){.clusters = true, .values = true,
                                                       .grads = true, .backward = true},
                          &n2, NULL);
    ok(d1 && d2 && n == n2 && !memcmp(d1, d2, n), "the same graph on another tape: same bytes");
    bool aux_clear = true;
    for (size_t i = 0; i < tg_tape_leaves(s.t); i++)
        aux_clear &= tg_tape_leaf(s.t, i)->aux == NULL;
    ok(aux_clear, "every leaf's aux link is NULL again afterwards");
    free(d1);
    free(d2);
    free(filler);
    tg_tape_free(s2.t);
    tg_tape_free(s.t);
}

/* ---- op attributes --------------------------------------------------------- */

/* An op's attributes (tg_op.attr_str) follow its name in the label. */
static void test_attrs(void)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *x = tg_param(t, "x", TG_F32, 2, SHAPE(3, 4));
    tg_tensor *w = tg_param(t, "w", TG_F32, 2, SHAPE(5, 4));
    tg_tensor *y = tg_input(t, "y", TG_F32, 2, SHAPE(3, 5));
    tg_tensor *rows = tg_sum_axis(x, 1, true);
    tg_tensor *fit = tg_mse(tg_matmul_t(x, w, false, true), y, TG_MEAN | TG_HALF);
    tg_set_name(fit, "fit");
    tg_tensor *pen = tg_l2(w, 0.125);
    tg_tensor *loss = tg_add(tg_add(fit, pen), tg_sum(tg_scale(rows, 2.5)));
    ok(loss && !tg_tape_error(t), "a graph with attributes built (%s)",
       tg_tape_error(t) ? tg_tape_error(t) : "");
    size_t n;
    char *d = dot_string(t, loss, NULL, &n, NULL);
    has_str(d, "label=\"sum(axis=1 keepdim)\\n3x1 f32\"", "sum_axis: axis and keepdim");
    has_str(d, "label=\"matmul(trans_b)\\n3x5 f32\"", "matmul_t: the transpose");
    has_str(d, "label=\"fit = mse(mean half)\\nscalar f32\"",
            "mse: the reduction and the half, after the name");
    has_str(d, "label=\"l2(lambda=0.125)\\n", "l2: lambda");
    has_str(d, "label=\"scale(c=2.5)\\n3x1 f32\"", "scale: c");
    has_str(d, "label=\"sum\\nscalar f32\"", "a sum of all elements: no attributes");
    ok(d && !strstr(d, "()") && strstr(d, "label=\"add\\n"),
       "an op without attributes: its name alone, no empty parentheses");
    ok(d && strict_dot(d, n), "the labels are valid DOT");
    if (d)
        renders_text(d, n, "a graph with attributes");
    free(d);
    tg_tape_free(t);
}

/* ---- hostile names --------------------------------------------------------- */

static void test_hostile(void)
{
    static const char *names[] = {
        "quote\" and \\backslash\\",
        "new\nline and\r\ncrlf",
        "tab\there",
        "<html> {record|field} & &amp; &alpha; \\N \\G \\l",
        "权重 ∂L/∂W ⊙ σ′ 😀",
        "bad utf8: \xff\xfe \xc3 \xe2\x82 \xed\xa0\x80 \xc0\xaf \xf8\x88\x80\x80\x80",
        "ctl \x01\x02\x1b[31m \x7f c1:\xc2\x85 nonchar:\xef\xbf\xbe",
        "\"; n0 -> n1; label=\"injected",
        "trailing backslash \\",
        "",
    };
    int nn = (int)(sizeof names / sizeof *names);
    tg_tape *t = tg_tape_new();
    tg_tensor *x = tg_param(t, names[0], TG_F32, 1, SHAPE(3));
    tg_tensor *y = x;
    for (int i = 1; i < nn; i++) {
        tg_tensor *w = tg_param(t, names[i], TG_F32, 1, SHAPE(3));
        y = tg_mul(y, w);
        tg_set_name(y, names[nn - i]);
    }
    char *longname = malloc(10001);
    for (int i = 0; i < 10000; i++)
        longname[i] = "ab\"\\c∂"[i % 6];
    longname[10000] = 0;
    tg_tensor *loss = tg_sum(y);
    tg_set_name(loss, longname);
    tg_scope_push(t, "scope \"with\" quotes\\ & <tags>");
    tg_scope_push(t, "ends in \\");
    tg_tensor *loss2 = tg_add(loss, tg_scalar(t, TG_F32, 1));
    tg_set_name(loss2, "∑ \"final\"");
    tg_scope_pop(t);
    tg_scope_pop(t);
    tg_backward(loss2);
    ok(!tg_tape_error(t), "hostile graph built");

    size_t n;
    char *d = dot_string(t, loss2, &(tg_dot_opts){.values = true, .grads = true,
                                                  .backward = true, .clusters = true,
                                                  .title = "title \\"},
                         &n, NULL);
    ok(d != NULL, "hostile names: written");
    ok(d && clean_utf8(d, n), "hostile names: the output is valid UTF-8 without control "
                              "characters (other than newlines between statements)");
    ok(d && strstr(d, "quote\\\" and \\\\backslash\\\\"), "quote and backslash escaped");
    ok(d && strstr(d, "new\\nline"), "newline becomes a line break (\\n)");
    ok(d && strstr(d, "tab\\\\there"), "tab shown as a visible \\t");
    ok(d && strstr(d, "&amp; &amp;amp; &amp;alpha; \\\\N \\\\G \\\\l"),
       "& and Graphviz escapes neutralised");
    ok(d && strstr(d, "权重 ∂L/∂W ⊙ σ′ 😀"), "valid non-ASCII UTF-8 passed through");
    ok(d && strstr(d, "bad utf8: \xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd"),
       "invalid UTF-8 replaced by U+FFFD");
    ok(d && strstr(d, "\\\\x01\\\\x02\\\\x1b[31m \\\\x7f c1:\\\\u0085 nonchar:\\\\ufffe"),
       "control characters, C1 and U+FFFE shown as escapes");
    ok(d && !strstr(d, "\n  n0 -> n1; label="), "an injected statement stays inside its string");
    ok(d && strstr(d, "\xe2\x80\xa6 = sum\\n"), "the 10,000-character name is cut with …");
    ok(d && n < 20000, "the output stays small (%zu bytes)", n);
    /* every statement line: a well-formed quoted string count (even quotes
     * once \" is removed) */
    bool balanced = true;
    for (const char *p = d; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t q = 0;
        for (const char *c = p; c < e; c++) {
            if (*c == '\\' && c + 1 < e) {
                c++;
                continue;
            }
            q += *c == '"';
        }
        balanced &= q % 2 == 0;
        p = e + 1;
    }
    ok(balanced, "every line has balanced quotes");
    ok(d && strict_dot(d, n), "hostile names: a strict DOT parser accepts the output");
    ok(d && strstr(d, "label=\"ends in \\\\ \"") && strstr(d, "label=\"title \\\\ \"") ,
       "a string that ends in a backslash gets a space, for literal parsers");
    if (d)
        renders_text(d, n, "hostile names");
    if (d && have_dot) {
        /* what Graphviz shows is the name itself */
        char dp[512], sp[512];
        snprintf(dp, sizeof dp, "%s/h.dot", tmpdir);
        snprintf(sp, sizeof sp, "%s/h.svg", tmpdir);
        tg_err e;
        tap_write_file(dp, d, n);
        ok(tg_dot_render(dp, "svg", sp, &e) == 0, "hostile: rendered to SVG");
        size_t sn;
        char *svg = tap_read_file(sp, &sn);
        ok(svg && strstr(svg, "quote&quot; and \\backslash\\"), "SVG shows quote\" and \\backslash\\");
        ok(svg && strstr(svg, "&lt;html&gt; {record|field} &amp; &amp;amp; &amp;alpha; \\N \\G \\l"),
           "SVG shows <html> {record|field} & &amp; &alpha; \\N \\G \\l literally");
        ok(svg && strstr(svg, "权重 ∂L/∂W ⊙ σ′ 😀"), "SVG shows the CJK/math/emoji name");
        ok(svg && strstr(svg, "tab\\there"), "SVG shows tab\\there");
        free(svg);
    }
    free(d);

    /* the same with an ASCII-only long name and every option off */
    d = dot_string(t, NULL, &(tg_dot_opts){.title = "title \"\\\n\xff"}, &n, NULL);
    ok(d && clean_utf8(d, n) && strict_dot(d, n), "whole tape, no clusters: clean, strict DOT");
    if (d)
        renders_text(d, n, "hostile names, whole tape");
    free(d);
    free(longname);
    tg_tape_free(t);
}

/* ---- errors and files -------------------------------------------------------- */

/* Whether dir holds a temporary file of target: a name "<target>.<more>"
 * (tg_dot_save and tg_dot_render write "<target>.tmp-XXXXXX"). */
static bool dir_has_temp(const char *dir, const char *target)
{
    DIR *dp = opendir(dir);
    bool found = false;
    struct dirent *e;
    size_t tl = strlen(target);
    while (dp && (e = readdir(dp)))
        if (!strncmp(e->d_name, target, tl) && e->d_name[tl] == '.' && e->d_name[tl + 1])
            found = true;
    if (dp)
        closedir(dp);
    return found;
}

static void test_errors_and_files(void)
{
    small s;
    build_small(&s, false);
    tg_tape *t = s.t;
    tg_tape *other = tg_tape_new();
    tg_tensor *o = tg_param(other, "o", TG_F32, 1, SHAPE(1));

    ok(tg_dot_write(NULL, t, s.loss, NULL) == -1, "NULL file fails");
    has_str(tg_tape_error(t), "dot_write: file is NULL", "... and says so");
    tg_tape_clear_error(t);

    ok(tg_dot_write(stdout, t, o, NULL) == -1, "a root of another tape fails");
    has_str(tg_tape_error(t), "root 'o' belongs to another tape", "... and says so");
    tg_tape_clear_error(t);
    ok(tg_dot_write(stdout, NULL, NULL, NULL) == -1, "no tape and no root: -1");

    FILE *full = fopen("/dev/full", "w");
    if (full) {
        ok(tg_dot_write(full, t, s.loss, NULL) == -1, "a write error (/dev/full) fails");
        has_str(tg_tape_error(t), "dot_write: write failed: No space left on device",
                "... with strerror");
        tg_tape_clear_error(t);
        fclose(full);
    } else {
        printf("ok %d - # SKIP /dev/full is missing\n", ++tap_count);
    }

    /* the root given alone finds its tape; a leaf root draws one node */
    size_t n;
    char *d = dot_string(NULL, s.W2, NULL, &n, NULL);
    ok(d && strstr(d, "l5 [") && !strstr(d, "n0") && !strstr(d, "l0"),
       "a leaf root alone: just that leaf (tape taken from the root)");
    free(d);

    char path[512], other_path[512];
    snprintf(path, sizeof path, "%s/graph.dot", tmpdir);
    ok(tg_dot_save(path, t, s.loss, NULL) == 0, "tg_dot_save writes %s", path);
    size_t fn;
    char *f = tap_read_file(path, &fn);
    d = dot_string(t, s.loss, NULL, &n, NULL);
    ok(f && d && fn == n && !memcmp(f, d, n), "the saved file equals tg_dot_write's output");
    free(f);
    free(d);
    struct stat st;
    int st_rc = stat(path, &st);
    ok(!st_rc && (st.st_mode & 0777) != 0600 && (st.st_mode & 0400),
       "the saved file gets the usual mode, not mkstemp's 0600 (%o)", st.st_mode & 0777);
    ok(!dir_has_temp(tmpdir, "graph.dot"), "no temporary file is left behind");
    char fake[600];
    snprintf(fake, sizeof fake, "%s.tmp-AbC123", path);
    tap_write_file(fake, "x", 1);
    ok(dir_has_temp(tmpdir, "graph.dot"), "(a temporary file left behind would be seen)");
    unlink(fake);

    /* a failure in the middle leaves the old file as it was */
    tap_write_file(path, "old contents\n", 13);
    tg_test_control(TG_TEST_FAIL_ALLOC, 1); /* 0: the temporary file's name, 1: tg_dot_write's */
    ok(tg_dot_save(path, t, s.loss, NULL) == -1, "a failing save returns -1");
    tg_test_control(TG_TEST_FAIL_ALLOC, -1);
    has_str(tg_tape_error(t), "dot_write: out of memory", "... with the reason");
    tg_tape_clear_error(t);
    f = tap_read_file(path, &fn);
    ok(f && fn == 13 && !memcmp(f, "old contents\n", 13), "... and the old file is intact");
    free(f);
    ok(!dir_has_temp(tmpdir, "graph.dot"), "... and no temporary file is left behind");

    snprintf(other_path, sizeof other_path, "%s/no/such/dir/g.dot", tmpdir);
    ok(tg_dot_save(other_path, t, s.loss, NULL) == -1, "saving into a missing directory fails");
    has_str(tg_tape_error(t), "No such file or directory", "... with strerror");
    tg_tape_clear_error(t);
    ok(tg_dot_save(NULL, t, s.loss, NULL) == -1, "a NULL path fails");
    has_str(tg_tape_error(t), "dot_save: path is NULL", "... and says so");
    tg_tape_clear_error(t);

    /* rendering */
    tg_err e;
    ok(tg_dot_render(path, "jpeg", path, &e) == -1 && strstr(e.msg, "format must be"),
       "render: an unknown format is refused (%s)", e.msg);
    ok(tg_dot_render(NULL, "svg", path, &e) == -1 && strstr(e.msg, "NULL"),
       "render: a NULL path is refused");
    ok(tg_dot_render(NULL, "svg", path, NULL) == -1, "render: err may be NULL");

    char *old_path = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    setenv("PATH", "/nonexistent-dir", 1);
    ok(!tg_dot_available(), "without dot on PATH: tg_dot_available() is false");
    snprintf(other_path, sizeof other_path, "%s/nodot.svg", tmpdir);
    ok(tg_dot_render(path, "svg", other_path, &e) == -1, "render without dot fails");
    has_str(e.msg, "apt-get install graphviz", "... and says how to install Graphviz");
    ok(access(other_path, F_OK) != 0, "... and writes nothing");
    if (old_path)
        setenv("PATH", old_path, 1);
    else
        unsetenv("PATH");
    free(old_path);

    if (have_dot) {
        char svg[512], png[512], bad[512];
        snprintf(svg, sizeof svg, "%s/graph.svg", tmpdir);
        snprintf(png, sizeof png, "%s/graph.png", tmpdir);
        snprintf(bad, sizeof bad, "%s/bad.dot", tmpdir);
        ok(tg_dot_save(path, t, NULL, NULL) == 0, "save again");
        ok(tg_dot_render(path, "svg", svg, &e) == 0, "render to SVG (%s)", e.msg);
        f = tap_read_file(svg, &fn);
        ok(f && strstr(f, "<svg"), "... an SVG file");
        free(f);
        ok(tg_dot_render(path, "png", png, &e) == 0, "render to PNG (%s)", e.msg);
        f = tap_read_file(png, &fn);
        ok(f && fn > 8 && !memcmp(f, "\x89PNG", 4), "... a PNG file");
        free(f);
        tap_write_file(bad, "digraph { a -> ; }\n", 19);
        ok(tg_dot_render(bad, "svg", svg, &e) == -1, "a DOT syntax error fails");
        has_str(e.msg, "syntax error", "... with dot's message");
        f = tap_read_file(svg, &fn);
        ok(f && strstr(f, "<svg"), "... and the old SVG is intact");
        free(f);
        tap_write_file(bad, "digraph { a [shape=nosuchshape]; }\n", 35);
        ok(tg_dot_render(bad, "svg", svg, &e) == -1, "a dot warning fails too");
        has_str(e.msg, "Warning", "... with the warning (%s)", e.msg);
        ok(!dir_has_temp(tmpdir, "graph.svg"), "no temporary render file left");
        snprintf(bad, sizeof bad, "%s/missing.dot", tmpdir);
        ok(tg_dot_render(bad, "svg", svg, &e) == -1 && strstr(e.msg, "No such file"),
           "a missing DOT file: %s", e.msg);
    } else {
        printf("ok %d - # SKIP rendering to SVG/PNG (Graphviz is not installed)\n", ++tap_count);
    }
    tg_tape_free(other);
    tg_tape_free(t);
}

/* ---- symbolic links and files that are not regular ---------------------------- */

/* tg_dot_save and tg_dot_render write through a symbolic link to the file
 * it leads to (the link stays a link) and refuse FIFOs, devices and
 * directories before creating anything (src/io/file.c). */
static void test_links_and_special_files(void)
{
    small s;
    build_small(&s, false);
    tg_tape *t = s.t;
    char real[512], link[512], dangling[512], created[512], fifo[512], dir[512], want[1200];
    snprintf(real, sizeof real, "%s/lreal.dot", tmpdir);
    snprintf(link, sizeof link, "%s/llink.dot", tmpdir);
    snprintf(dangling, sizeof dangling, "%s/ldangling.dot", tmpdir);
    snprintf(created, sizeof created, "%s/lcreated.dot", tmpdir);
    snprintf(fifo, sizeof fifo, "%s/lfifo", tmpdir);
    snprintf(dir, sizeof dir, "%s/ldir", tmpdir);
    size_t n, fn;
    char *d = dot_string(t, s.loss, NULL, &n, NULL);

    tap_write_file(real, "old\n", 4);
    symlink("lreal.dot", link);
    ok(tg_dot_save(link, t, s.loss, NULL) == 0, "dot_save to a symbolic link (%s)", tg_tape_error(t));
    char *f = tap_read_file(real, &fn);
    ok(tap_is_link_to(link, "lreal.dot") && f && d && fn == n && !memcmp(f, d, n) &&
           !dir_has_temp(tmpdir, "lreal.dot"),
       "... replaces the file it leads to; the link stays a link; no temporary file");
    free(f);
    symlink("lcreated.dot", dangling);
    ok(tg_dot_save(dangling, t, s.loss, NULL) == 0 && tap_is_link_to(dangling, "lcreated.dot") &&
           tap_type_of(created) == '-',
       "dot_save to a dangling link creates the file it names, the link kept");

    mkfifo(fifo, 0600);
    tg_tape_clear_error(t);
    snprintf(want, sizeof want, "dot_save: %s: is a FIFO, not a regular file; refusing to replace it",
             fifo);
    bool fifo_refused = tg_dot_save(fifo, t, s.loss, NULL) == -1;
    has_str(tg_tape_error(t), want, "dot_save to a FIFO is refused");
    fifo_refused = fifo_refused && tap_type_of(fifo) == 'p' && !dir_has_temp(tmpdir, "lfifo");
    ok(fifo_refused, "... and it is still a FIFO, no temporary file");
    tg_tape_clear_error(t);
    mkdir(dir, 0755);
    snprintf(want, sizeof want, "dot_save: %s: is a directory, not a regular file", dir);
    ok(tg_dot_save(dir, t, s.loss, NULL) == -1, "dot_save to a directory fails");
    has_str(tg_tape_error(t), want, "... and is refused as a directory");
    tg_tape_clear_error(t);
    /* only once a FIFO was refused, so that a library without the check
     * cannot replace the machine's /dev/null (the tests may run as root) */
    if (fifo_refused) {
        struct stat st;
        ok(tg_dot_save("/dev/null", t, s.loss, NULL) == -1, "dot_save to /dev/null fails");
        has_str(tg_tape_error(t), "dot_save: /dev/null: is a character device, not a regular file",
                "... and is refused as a character device");
        ok(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode), "... /dev/null is still one");
        tg_tape_clear_error(t);
    } else {
        ok(0, "dot_save to /dev/null not tried: a FIFO was not refused");
    }

    /* rendering: the output path goes through the same writer */
    if (have_dot) {
        char src[512], svg[512], svg_link[512];
        snprintf(src, sizeof src, "%s/lsrc.dot", tmpdir);
        ok(tg_dot_save(src, t, s.loss, NULL) == 0, "save a DOT file to render");
        snprintf(svg, sizeof svg, "%s/lreal.svg", tmpdir);
        snprintf(svg_link, sizeof svg_link, "%s/llink.svg", tmpdir);
        tap_write_file(svg, "old\n", 4);
        symlink("lreal.svg", svg_link);
        tg_err e;
        ok(tg_dot_render(src, "svg", svg_link, &e) == 0, "render to a symbolic link (%s)", e.msg);
        f = tap_read_file(svg, &fn);
        ok(tap_is_link_to(svg_link, "lreal.svg") && f && strstr(f, "<svg") && !dir_has_temp(tmpdir, "lreal.svg"),
           "... replaces the file it leads to; the link stays a link; no temporary file");
        free(f);
        snprintf(want, sizeof want, "dot_render: %s: is a FIFO, not a regular file; refusing to "
                 "replace it", fifo);
        ok(tg_dot_render(src, "svg", fifo, &e) == -1 && tap_type_of(fifo) == 'p' &&
               !dir_has_temp(tmpdir, "lfifo"),
           "render to a FIFO: -1, still a FIFO, no temporary file");
        has_str(e.msg, want, "... refused as a FIFO");
        snprintf(want, sizeof want, "dot_render: %s: is a directory, not a regular file", dir);
        ok(tg_dot_render(src, "svg", dir, &e) == -1, "render to a directory fails");
        has_str(e.msg, want, "... refused as a directory");
        if (fifo_refused) {
            struct stat st;
            ok(tg_dot_render(src, "svg", "/dev/null", &e) == -1 && stat("/dev/null", &st) == 0 &&
                   S_ISCHR(st.st_mode),
               "render to /dev/null: -1, still a character device");
            has_str(e.msg, "dot_render: /dev/null: is a character device, not a regular file",
                    "... refused as a character device");
        } else {
            ok(0, "render to /dev/null not tried: a FIFO was not refused");
        }
    } else {
        printf("ok %d - # SKIP rendering to links, FIFOs and devices (Graphviz is not installed)\n",
               ++tap_count);
    }
    rmdir(dir);
    free(d);
    tg_tape_free(t);
}

/* ---- a big graph: linear work -------------------------------------------------- */

/* A chain of n two-input ops in 4 scopes (cycled every 1000 nodes) over 3
 * leaves, one of them a parameter, so clusters and backward edges count. */
static tg_tape *chain(size_t n, tg_tensor **root)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *w = tg_param(t, "w", TG_F32, 1, SHAPE(2));
    tg_tensor *a = tg_input(t, "a", TG_F32, 1, SHAPE(2));
    tg_tensor *y = tg_input(t, "y", TG_F32, 1, SHAPE(2));
    static const char *scope[] = {"block0", "block1", "block1/inner", "block2"};
    for (size_t i = 0; i < n; i++) {
        if (i % 1000 == 0) {
            if (i)
                tg_scope_pop(t);
            tg_scope_push(t, scope[(i / 1000) % 4]);
        }
        y = i % 2 ? tg_add(y, w) : tg_mul(y, a);
    }
    tg_scope_pop(t);
    *root = y;
    return t;
}

static void test_linear(void)
{
    tg_dot_stats st[2];
    size_t sizes[2] = {10000, 100000};
    const tg_dot_opts o = {.clusters = true, .backward = true};
    for (int k = 0; k < 2; k++) {
        tg_tensor *root;
        tg_tape *t = chain(sizes[k], &root);
        FILE *f = fopen("/dev/null", "w");
        int rc = tg_dot_write_stats(f, t, root, &o, &st[k]);
        fclose(f);
        ok(rc == 0 && tg_tape_nodes(t) == sizes[k], "%zu-node graph written (%llu bytes, "
           "%llu steps)", sizes[k], (unsigned long long)st[k].bytes,
           (unsigned long long)st[k].steps);
        if (k == 0) {
            size_t n;
            char *d = dot_string(t, root, &o, &n, NULL);
            ok(d && strict_dot(d, n) && clean_utf8(d, n), "the 10,000-node graph is strict DOT");
            free(d);
        } else {
            char path[512];
            snprintf(path, sizeof path, "%s/big.dot", tmpdir);
            ok(tg_dot_save(path, t, root, &o) == 0, "the 100,000-node graph saved to a file");
            unlink(path);
        }
        tg_tape_free(t);
    }
    double steps = (double)st[1].steps / (double)st[0].steps;
    double bytes = (double)st[1].bytes / (double)st[0].bytes;
    ok(steps > 9.5 && steps < 10.5, "work is linear: 10x the nodes, %.3fx the steps", steps);
    /* ids grow by one digit: a little over 10x the bytes */
    ok(bytes > 9.5 && bytes < 11, "output is linear: 10x the nodes, %.3fx the bytes", bytes);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        golden_dir = argv[1];
    const char *u = getenv("TAPEGRAD_UPDATE_GOLDEN");
    update_golden = u && *u && strcmp(u, "0");
    have_dot = tg_dot_available();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tg_dot_test_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        printf("Bail out! cannot create a temporary directory: %s\n", strerror(errno));
        return 1;
    }
    if (!have_dot)
        diag("Graphviz's dot is not installed: rendering checks are skipped");
    test_strict_parser();
    test_golden();
    test_attrs();
    test_hostile();
    test_errors_and_files();
    test_links_and_special_files();
    test_linear();

    /* clean the temporary directory */
    DIR *dp = opendir(tmpdir);
    struct dirent *e;
    while (dp && (e = readdir(dp))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
        unlink(p);
    }
    if (dp)
        closedir(dp);
    rmdir(tmpdir);
    return tap_done();
}
