/* Recurrent cells (GRU, LSTM) as compositions of existing ops, with the
 * equations and the default initialisation of torch.nn.GRUCell and
 * torch.nn.LSTMCell (formulas in tapegrad.h, section "Recurrent cells").
 *
 * A cell records plain nodes (matmul, add_bias, add, slice, sigmoid, tanh,
 * mul, sub), so it inherits every op's checks, gradients, replay and thread
 * behaviour; this file only checks the cell's own contract (the shapes of
 * the weights, x and the state) first, so that a mistake is reported as the
 * cell's, naming the shapes, instead of as some inner op's.
 *
 * Gates are fused: one matmul per input per step (x·W_ih [B,kH] and
 * h·W_hh [B,kH], k = 3 or 4), each followed by its bias, then slices. */
#include "core.h"

#include <math.h>
#include <stdio.h>

/* Shared by tg_gru_new and tg_lstm_new: k gate blocks of `hidden`. */
static int cell_new(tg_tape *tape, const char *fn, int k, tg_tensor **w_ih, tg_tensor **w_hh,
                    tg_tensor **b_ih, tg_tensor **b_hh, int input, int hidden, tg_dtype dt,
                    const char *name, uint64_t seed)
{
    if (!tape)
        return TG_ERR;
    if (input < 1 || hidden < 1)
        return tg_error(tape, "%s: input = %d and hidden = %d must both be >= 1", fn, input,
                        hidden);
    if (dt != TG_F32 && dt != TG_F64)
        return tg_error(tape, "%s: dtype %s; a cell's weights are f32 or f64", fn,
                        tg_dtype_name(dt));
    if (!name || !*name)
        name = fn[0] == 'g' ? "gru" : "lstm";
    size_t kh = (size_t)k * (size_t)hidden;
    char buf[4][300];
    static const char *const suffix[4] = {"w_ih", "w_hh", "b_ih", "b_hh"};
    for (int i = 0; i < 4; i++) {
        int len = snprintf(buf[i], sizeof buf[i], "%s.%s", name, suffix[i]);
        if (len < 0 || (size_t)len >= sizeof buf[i])
            return tg_error(tape, "%s: name '%.40s...' is longer than %zu bytes", fn, name,
                            sizeof buf[i] - 6);
    }
    tg_tensor *t[4];
    t[0] = tg_param(tape, buf[0], dt, 2, (size_t[]){(size_t)input, kh});
    t[1] = t[0] ? tg_param(tape, buf[1], dt, 2, (size_t[]){(size_t)hidden, kh}) : NULL;
    t[2] = t[1] ? tg_param(tape, buf[2], dt, 1, (size_t[]){kh}) : NULL;
    t[3] = t[2] ? tg_param(tape, buf[3], dt, 1, (size_t[]){kh}) : NULL;
    if (!t[3])
        return TG_ERR; /* tg_param left the reason on the tape */
    /* PyTorch: every weight and bias U(-1/sqrt(H), 1/sqrt(H)), drawn here
     * in the order w_ih, w_hh, b_ih, b_hh from one generator. */
    tg_rng rng;
    tg_rng_seed(&rng, seed);
    double a = 1.0 / sqrt((double)hidden);
    for (int i = 0; i < 4; i++)
        if (tg_init_uniform(t[i], &rng, -a, a))
            return TG_ERR;
    *w_ih = t[0], *w_hh = t[1], *b_ih = t[2], *b_hh = t[3];
    return TG_OK;
}

int tg_gru_new(tg_tape *tape, tg_gru *g, int input, int hidden, tg_dtype dt, const char *name,
               uint64_t seed)
{
    if (!tape)
        return TG_ERR;
    if (!g)
        return tg_error(tape, "gru_new: g is NULL");
    memset(g, 0, sizeof *g);
    tg_tensor *w[4];
    if (cell_new(tape, "gru_new", 3, &w[0], &w[1], &w[2], &w[3], input, hidden, dt, name, seed))
        return TG_ERR;
    g->w_ih = w[0], g->w_hh = w[1], g->b_ih = w[2], g->b_hh = w[3];
    g->input = input, g->hidden = hidden;
    return TG_OK;
}

int tg_lstm_new(tg_tape *tape, tg_lstm *l, int input, int hidden, tg_dtype dt, const char *name,
                uint64_t seed)
{
    if (!tape)
        return TG_ERR;
    if (!l)
        return tg_error(tape, "lstm_new: l is NULL");
    memset(l, 0, sizeof *l);
    tg_tensor *w[4];
    if (cell_new(tape, "lstm_new", 4, &w[0], &w[1], &w[2], &w[3], input, hidden, dt, name,
                 seed))
        return TG_ERR;
    l->w_ih = w[0], l->w_hh = w[1], l->b_ih = w[2], l->b_hh = w[3];
    l->input = input, l->hidden = hidden;
    return TG_OK;
}

static bool is2(const tg_tensor *t, size_t r, size_t c)
{
    return t->rank == 2 && t->shape[0] == r && t->shape[1] == c;
}

/* The cell's contract, checked before anything is recorded.  st[0..ns) are
 * the states ([B,H] each: h, and c for the LSTM), named by sname.  Returns
 * the tape to record on, or NULL (with the tape's error set when there is a
 * tape to set it on; NULL x or state: NULL and the error unchanged). */
static tg_tape *cell_check(const char *fn, int k, tg_tensor *const w[4], int input, int hidden,
                           tg_tensor *x, int ns, tg_tensor *const *st, const char *const *sname)
{
    tg_tape *tape = x ? x->tape : NULL;
    for (int i = 0; i < 4 && w; i++)
        if (w[i]) {
            tape = w[i]->tape;
            break;
        }
    if (!w) {
        if (tape)
            tg_error(tape, "%s: the cell is NULL", fn);
        return NULL;
    }
    if (!x)
        return NULL;
    for (int i = 0; i < ns; i++)
        if (!st[i])
            return NULL;
    static const char *const wn[4] = {"w_ih", "w_hh", "b_ih", "b_hh"};
    for (int i = 0; i < 4; i++)
        if (!w[i]) {
            tg_error(tape, "%s: the cell's %s is NULL (create the cell with %s)", fn, wn[i],
                     k == 3 ? "tg_gru_new" : "tg_lstm_new");
            return NULL;
        }
    if (input < 1 || hidden < 1) {
        tg_error(tape, "%s: the cell has input = %d and hidden = %d", fn, input, hidden);
        return NULL;
    }
    size_t in = (size_t)input, h = (size_t)hidden, kh = (size_t)k * h;
    if (!is2(w[0], in, kh) || !is2(w[1], h, kh) || w[2]->rank != 1 || w[2]->shape[0] != kh ||
        w[3]->rank != 1 || w[3]->shape[0] != kh) {
        tg_error(tape,
                 "%s: weights w_ih %s, w_hh %s, b_ih %s, b_hh %s do not fit input = %d, "
                 "hidden = %d (expected %zux%zu, %zux%zu, %zu, %zu)",
                 fn, tg_shp_of(w[0]).s, tg_shp_of(w[1]).s, tg_shp_of(w[2]).s, tg_shp_of(w[3]).s,
                 input, hidden, in, kh, h, kh, kh, kh);
        return NULL;
    }
    for (int i = 1; i < 4; i++)
        if (w[i]->tape != tape || w[i]->dtype != w[0]->dtype) {
            tg_error(tape, "%s: the cell's %s is on another tape or of another dtype than w_ih",
                     fn, wn[i]);
            return NULL;
        }
    tg_tensor *all[3] = {x, ns > 0 ? st[0] : NULL, ns > 1 ? st[1] : NULL};
    const char *an[3] = {"x", ns > 0 ? sname[0] : NULL, ns > 1 ? sname[1] : NULL};
    for (int i = 0; i < 1 + ns; i++) {
        if (all[i]->tape != tape) {
            tg_error(tape, "%s: %s belongs to another tape than the cell's weights", fn, an[i]);
            return NULL;
        }
        if (all[i]->dtype != w[0]->dtype) {
            tg_error(tape, "%s: %s is %s but the cell's weights are %s", fn, an[i],
                     tg_dtype_name((tg_dtype)all[i]->dtype),
                     tg_dtype_name((tg_dtype)w[0]->dtype));
            return NULL;
        }
    }
    if (x->rank != 2 || x->shape[1] != in) {
        tg_error(tape, "%s: x is %s but the cell takes x [B,%d] (w_ih %s)", fn,
                 tg_shp_of(x).s, input, tg_shp_of(w[0]).s);
        return NULL;
    }
    for (int i = 0; i < ns; i++)
        if (!is2(st[i], x->shape[0], h)) {
            tg_error(tape, "%s: %s is %s but x %s and hidden = %d need %s [%zu,%d] (w_hh %s)",
                     fn, sname[i], tg_shp_of(st[i]).s, tg_shp_of(x).s, hidden, sname[i],
                     x->shape[0], hidden, tg_shp_of(w[1]).s);
            return NULL;
        }
    return tape;
}

/* The fused gate pre-activations of one input: x·W + b. */
static tg_tensor *affine(tg_tensor *x, tg_tensor *w, tg_tensor *b)
{
    return tg_add_bias(tg_matmul(x, w), b);
}

tg_tensor *tg_gru_cell(const tg_gru *g, tg_tensor *x, tg_tensor *h)
{
    tg_tensor *w[4] = {NULL, NULL, NULL, NULL};
    if (g)
        w[0] = g->w_ih, w[1] = g->w_hh, w[2] = g->b_ih, w[3] = g->b_hh;
    const char *sn[1] = {"h"};
    if (!cell_check("gru_cell", 3, g ? w : NULL, g ? g->input : 0, g ? g->hidden : 0, x, 1, &h,
                    sn))
        return NULL;
    size_t H = (size_t)g->hidden;
    tg_tensor *gi = affine(x, g->w_ih, g->b_ih); /* [B,3H]: r | z | n */
    tg_tensor *gh = affine(h, g->w_hh, g->b_hh);
    tg_tensor *rz = tg_sigmoid(tg_add(tg_slice(gi, 1, 0, 2 * H), tg_slice(gh, 1, 0, 2 * H)));
    tg_tensor *r = tg_slice(rz, 1, 0, H), *z = tg_slice(rz, 1, H, H);
    tg_tensor *n = tg_tanh(tg_add(tg_slice(gi, 1, 2 * H, H), tg_mul(r, tg_slice(gh, 1, 2 * H, H))));
    /* h' = (1 − z)·n + z·h = n + z·(h − n) */
    return tg_add(n, tg_mul(z, tg_sub(h, n)));
}

int tg_lstm_cell(const tg_lstm *l, tg_tensor *x, tg_tensor *h, tg_tensor *c, tg_tensor **h_out,
                 tg_tensor **c_out)
{
    if (h_out)
        *h_out = NULL;
    if (c_out)
        *c_out = NULL;
    tg_tensor *w[4] = {NULL, NULL, NULL, NULL};
    if (l)
        w[0] = l->w_ih, w[1] = l->w_hh, w[2] = l->b_ih, w[3] = l->b_hh;
    tg_tensor *st[2] = {h, c};
    const char *sn[2] = {"h", "c"};
    tg_tape *tape = cell_check("lstm_cell", 4, l ? w : NULL, l ? l->input : 0,
                               l ? l->hidden : 0, x, 2, st, sn);
    if (!tape)
        return TG_ERR;
    if (!h_out || !c_out)
        return tg_error(tape, "lstm_cell: h_out and c_out must not be NULL");
    size_t H = (size_t)l->hidden;
    tg_tensor *gates = tg_add(affine(x, l->w_ih, l->b_ih), affine(h, l->w_hh, l->b_hh));
    tg_tensor *ifg = tg_sigmoid(tg_slice(gates, 1, 0, 2 * H)); /* [B,4H]: i | f | g | o */
    tg_tensor *i = tg_slice(ifg, 1, 0, H), *f = tg_slice(ifg, 1, H, H);
    tg_tensor *gg = tg_tanh(tg_slice(gates, 1, 2 * H, H));
    tg_tensor *o = tg_sigmoid(tg_slice(gates, 1, 3 * H, H));
    tg_tensor *c2 = tg_add(tg_mul(f, c), tg_mul(i, gg));
    tg_tensor *h2 = tg_mul(o, tg_tanh(c2));
    if (!h2)
        return TG_ERR;
    *h_out = h2, *c_out = c2;
    return TG_OK;
}
