/* The recurrent cells (tg_gru_cell, tg_lstm_cell) and the GRU language model
 * (seeds/gru_lm.c): forward against torch.nn.GRUCell / LSTMCell, finite
 * differences through a 10-step unrolled sequence with shared weights,
 * errors, a replay that allocates nothing, and a short training of the GRU
 * LM that learns and is bit-identical with 1 and 2 threads. */
#include "tap.h"
#include "tapegrad.h"
#include "lm.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Deterministic values in closed form, computed the same way by the script
 * that produced the PyTorch references below. */
static double fw_ih(size_t k) { return 0.5 * sin(0.7 * (double)k + 0.1); }
static double fw_hh(size_t k) { return 0.5 * cos(0.9 * (double)k + 0.2); }
static double fb_ih(size_t k) { return 0.3 * sin(1.3 * (double)k + 0.5); }
static double fb_hh(size_t k) { return 0.3 * cos(1.1 * (double)k + 0.3); }
static double fx(size_t k) { return sin(0.5 * (double)k + 1.0); }
static double fh(size_t k) { return 0.4 * cos(0.8 * (double)k); }
static double fc(size_t k) { return 0.3 * sin(0.6 * (double)k + 0.7); }

static void fill(tg_tensor *t, double (*f)(size_t), size_t offset)
{
    for (size_t i = 0; i < tg_size(t); i++)
        tg_set(t, i, f(offset + i));
}

static void set_weights(tg_tensor *const w[4])
{
    fill(w[0], fw_ih, 0);
    fill(w[1], fw_hh, 0);
    fill(w[2], fb_ih, 0);
    fill(w[3], fb_hh, 0);
}

/* References: torch 1.13, float64, by this script (the weights copied in
 * transposed, since tapegrad stores them for x·W):
 *
 *   import torch, math; torch.set_default_dtype(torch.float64)
 *   B, IN, H = 2, 3, 2
 *   mat = lambda r, c, f: torch.tensor([[f(i*c+j) for j in range(c)] for i in range(r)])
 *   vec = lambda n, f: torch.tensor([f(k) for k in range(n)])
 *   (fw_ih, fw_hh, fb_ih, fb_hh, fx, fh, fc as above)
 *   xs = [mat(B, IN, lambda k, t=t: fx(t*B*IN + k)) for t in range(3)]
 *   h0, c0 = mat(B, H, fh), mat(B, H, fc)
 *   for K, Cell in ((3, torch.nn.GRUCell), (4, torch.nn.LSTMCell)):
 *       cell = Cell(IN, H)
 *       with torch.no_grad():
 *           cell.weight_ih.copy_(mat(IN, K*H, fw_ih).T); cell.weight_hh.copy_(mat(H, K*H, fw_hh).T)
 *           cell.bias_ih.copy_(vec(K*H, fb_ih)); cell.bias_hh.copy_(vec(K*H, fb_hh))
 *           run 3 steps from h0 (and c0), print h (and c) after steps 1 and 3 with repr()
 */
static const double gru_h1[4] = {-0.01633141554757972, 0.3255701753478287, 0.09136147265360728,
                                 0.07591552223455328};
static const double gru_h3[4] = {-0.2054521138391628, 0.3108870651893722, -0.09309167517291105,
                                 0.2878123688246734};
static const double lstm_h1[4] = {0.21522009995300886, 0.15237361815855638,
                                  0.014242165857265569, 0.054807714008647465};
static const double lstm_c1[4] = {0.3964024136914541, 0.5967945593695821, 0.028143989860667296,
                                  0.14025109062358768};
static const double lstm_h3[4] = {-0.030125837397008616, 0.10817505031616424,
                                  -0.012800856861194436, 0.12876938834815774};
static const double lstm_c3[4] = {-0.05964336595312658, 0.5228463749692798,
                                  -0.024378577054442394, 0.3979021139083858};

static double max_diff(tg_tensor *t, const double *want, size_t n)
{
    double m = tg_size(t) == n ? 0 : INFINITY;
    for (size_t i = 0; t && i < n && m < INFINITY; i++)
        m = fmax(m, fabs(tg_get(t, i) - want[i]));
    return t ? m : INFINITY;
}

static void forward_vs_torch(void)
{
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        double tol = d ? 1e-15 : 1e-6;
        tg_tape *T = tg_tape_new();
        tg_gru g;
        tg_lstm l;
        ok(tg_gru_new(T, &g, 3, 2, dt, "g", 1) == 0 && tg_lstm_new(T, &l, 3, 2, dt, "l", 2) == 0,
           "%s: cells created", tg_dtype_name(dt));
        set_weights((tg_tensor *[]){g.w_ih, g.w_hh, g.b_ih, g.b_hh});
        set_weights((tg_tensor *[]){l.w_ih, l.w_hh, l.b_ih, l.b_hh});
        tg_tensor *x[3];
        for (int t = 0; t < 3; t++) {
            x[t] = tg_input(T, NULL, dt, 2, SHAPE(2, 3));
            fill(x[t], fx, (size_t)t * 6);
        }
        tg_tensor *h0 = tg_input(T, "h0", dt, 2, SHAPE(2, 2));
        tg_tensor *c0 = tg_input(T, "c0", dt, 2, SHAPE(2, 2));
        fill(h0, fh, 0);
        fill(c0, fc, 0);
        tg_tensor *gh[3], *lh[3], *lc[3];
        tg_tensor *h = h0, *lhp = h0, *lcp = c0;
        for (int t = 0; t < 3; t++) {
            h = gh[t] = tg_gru_cell(&g, x[t], h);
            tg_lstm_cell(&l, x[t], lhp, lcp, &lh[t], &lc[t]);
            lhp = lh[t], lcp = lc[t];
        }
        double e = max_diff(gh[0], gru_h1, 4);
        ok(e <= tol, "%s: GRU, 1 step = torch.nn.GRUCell (%.2g)",
           tg_dtype_name(dt), e);
        e = max_diff(gh[2], gru_h3, 4);
        ok(e <= tol, "%s: GRU, 3 steps = torch.nn.GRUCell (%.2g)",
           tg_dtype_name(dt), e);
        e = fmax(max_diff(lh[0], lstm_h1, 4), max_diff(lc[0], lstm_c1, 4));
        ok(e <= tol,
           "%s: LSTM, 1 step: h and c = torch.nn.LSTMCell (%.2g)", tg_dtype_name(dt), e);
        e = fmax(max_diff(lh[2], lstm_h3, 4), max_diff(lc[2], lstm_c3, 4));
        ok(e <= tol,
           "%s: LSTM, 3 steps: h and c = torch.nn.LSTMCell (%.2g)", tg_dtype_name(dt), e);
        /* A replay on new inputs, then the old ones again: the same values. */
        fill(x[0], fh, 3);
        tg_replay(T);
        bool moved = max_diff(gh[2], gru_h3, 4) > 1e-3;
        fill(x[0], fx, 0);
        ok(tg_replay(T) == 0 && moved && max_diff(gh[2], gru_h3, 4) <= tol &&
               max_diff(lc[2], lstm_c3, 4) <= tol,
           "%s: a replay follows new inputs and gives the references back", tg_dtype_name(dt));
        if (!gh[2] || !lc[2])
            diag("%s", tg_tape_error(T));
        tg_tape_free(T);
    }
}

static void init(void)
{
    tg_tape *T = tg_tape_new();
    tg_gru g, g2;
    tg_lstm l;
    ok(tg_gru_new(T, &g, 5, 16, TG_F32, "enc", 42) == 0 && tg_gru_new(T, &g2, 5, 16, TG_F32,
                                                                      NULL, 42) == 0 &&
           tg_lstm_new(T, &l, 7, 9, TG_F64, "", 3) == 0,
       "gru_new and lstm_new succeed");
    ok(g.input == 5 && g.hidden == 16 && tg_dim(g.w_ih, 0) == 5 && tg_dim(g.w_ih, 1) == 48 &&
           tg_dim(g.w_hh, 0) == 16 && tg_dim(g.w_hh, 1) == 48 && tg_rank(g.b_ih) == 1 &&
           tg_dim(g.b_hh, 0) == 48,
       "GRU shapes: w_ih 5x48, w_hh 16x48, b_ih and b_hh 48");
    ok(tg_dim(l.w_ih, 1) == 36 && tg_dim(l.w_hh, 0) == 9 && tg_dim(l.b_hh, 0) == 36 &&
           tg_dtype_of(l.w_hh) == TG_F64,
       "LSTM shapes: 4H = 36 columns, f64");
    is_str(tg_name(g.w_ih), "enc.w_ih", "named <name>.w_ih");
    is_str(tg_name(g2.b_hh), "gru.b_hh", "NULL name: gru.*");
    is_str(tg_name(l.w_hh), "lstm.w_hh", "empty name: lstm.*");
    ok(tg_tape_find(T, "enc.b_hh") == g.b_hh && tg_requires_grad(g.b_hh), "leaves that require a gradient");
    bool same = true, inside = true;
    double lo = 0, hi = 0, a = 1 / sqrt(16.0);
    tg_tensor *wg[4] = {g.w_ih, g.w_hh, g.b_ih, g.b_hh}, *wg2[4] = {g2.w_ih, g2.w_hh, g2.b_ih, g2.b_hh};
    for (int i = 0; i < 4; i++)
        for (size_t j = 0; j < tg_size(wg[i]); j++) {
            double v = tg_get(wg[i], j);
            same &= v == tg_get(wg2[i], j);
            inside &= v >= -a && v < a;
            lo = fmin(lo, v), hi = fmax(hi, v);
        }
    ok(same, "the same seed gives the same weights");
    ok(inside && lo < -0.9 * a && hi > 0.9 * a, "U(-1/sqrt(H), 1/sqrt(H)): [%.4f, %.4f] for a = %.4f",
       lo, hi, a);
    tg_tape_free(T);
}

/* loss = Σ_t Σ h_t⊙P_t (+ Σ c_T² for the LSTM) over a 10-step sequence,
 * checked by finite differences w.r.t. the 4 weights, h0 (c0) and x_0. */
static void fd(int lstm, size_t B)
{
    enum { IN = 3, H = 4, STEPS = 10 };
    tg_tape *T = tg_tape_new();
    tg_gru g;
    tg_lstm l;
    tg_tensor *w[4];
    if (lstm) {
        tg_lstm_new(T, &l, IN, H, TG_F64, "l", 11);
        w[0] = l.w_ih, w[1] = l.w_hh, w[2] = l.b_ih, w[3] = l.b_hh;
    } else {
        tg_gru_new(T, &g, IN, H, TG_F64, "g", 12);
        w[0] = g.w_ih, w[1] = g.w_hh, w[2] = g.b_ih, w[3] = g.b_hh;
    }
    tg_tensor *h0 = tg_param(T, "h0", TG_F64, 2, SHAPE(B, H));
    tg_tensor *c0 = tg_param(T, "c0", TG_F64, 2, SHAPE(B, H));
    fill(h0, fh, 1);
    fill(c0, fc, 2);
    tg_tensor *h = h0, *c = c0, *loss = NULL, *x0 = NULL;
    for (int t = 0; t < STEPS; t++) {
        tg_tensor *x = t ? tg_input(T, NULL, TG_F64, 2, SHAPE(B, IN))
                         : tg_param(T, "x0", TG_F64, 2, SHAPE(B, IN));
        fill(x, fx, (size_t)t * B * IN);
        if (!t)
            x0 = x;
        if (lstm)
            tg_lstm_cell(&l, x, h, c, &h, &c);
        else
            h = tg_gru_cell(&g, x, h);
        tg_tensor *P = tg_const(T, NULL, TG_F64, 2, SHAPE(B, H));
        fill(P, fb_hh, (size_t)t * 7);
        tg_tensor *term = tg_sum(tg_mul(h, P));
        loss = loss ? tg_add(loss, term) : term;
    }
    if (lstm)
        loss = tg_add(loss, tg_sum(tg_mul(c, c)));
    tg_tensor *wrt[7] = {w[0], w[1], w[2], w[3], h0, x0, c0};
    tg_check ck;
    int rc = loss ? tg_check_fd(loss, lstm ? 7 : 6, wrt, 0, &ck) : -1;
    ok(rc == 0 && ck.max_rel <= 1e-7 && ck.skipped == 0,
       "%s, B = %zu, 10 steps, shared weights: finite differences w.r.t. w_ih, w_hh, b_ih, "
       "b_hh, h0%s, x0 (%zu elements, max rel %.2g)",
       lstm ? "LSTM" : "GRU", B, lstm ? ", c0" : "", rc == 0 ? ck.count : 0,
       rc == 0 ? ck.max_rel : -1.0);
    if (rc)
        diag("%s", tg_tape_error(T));
    else if (ck.max_rel > 1e-7)
        tg_check_print(stdout, "# fd", &ck);
    tg_tape_free(T);
}

static void errors(void)
{
    tg_tape *T = tg_tape_new(), *U = tg_tape_new();
    tg_gru g;
    tg_lstm l;
    tg_gru_new(T, &g, 3, 4, TG_F32, "g", 1);
    tg_lstm_new(T, &l, 3, 4, TG_F32, "l", 1);
    tg_tensor *x = tg_input(T, "x", TG_F32, 2, SHAPE(2, 3));
    tg_tensor *h = tg_input(T, "h", TG_F32, 2, SHAPE(2, 4));
    tg_tensor *c = tg_input(T, "c", TG_F32, 2, SHAPE(2, 4));
    tg_tensor *out_h, *out_c;

    ok(tg_gru_new(NULL, &g, 3, 4, TG_F32, "g", 1) == -1, "gru_new: NULL tape -> -1");
    TAPE_FAILS(T, tg_gru_new(T, NULL, 3, 4, TG_F32, "g", 1) == -1, "gru_new: g is NULL");
    tg_gru bad;
    TAPE_FAILS(T, tg_gru_new(T, &bad, 0, 4, TG_F32, "b", 1) == -1 && !bad.w_ih,
               "gru_new: input = 0 and hidden = 4 must both be >= 1");
    TAPE_FAILS(T, tg_lstm_new(T, &l, 3, -2, TG_F32, "b", 1) == -1 && !l.w_ih,
               "lstm_new: input = 3 and hidden = -2");
    tg_lstm_new(T, &l, 3, 4, TG_F32, "l2", 1);
    TAPE_FAILS(T, tg_gru_new(T, &bad, 3, 4, TG_I32, "b", 1) == -1,
               "gru_new: dtype i32; a cell's weights are f32 or f64");
    char longname[400];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    TAPE_FAILS(T, tg_gru_new(T, &bad, 3, 4, TG_F32, longname, 1) == -1, "gru_new: name 'aaaa");
    longname[294] = 0;
    ok(tg_gru_new(T, &bad, 3, 4, TG_F32, longname, 1) == 0 && strlen(tg_name(bad.b_hh)) == 299,
       "gru_new: a name of 294 bytes is accepted");
    longname[295] = 0, longname[294] = 'a';
    TAPE_FAILS(T, tg_gru_new(T, &bad, 3, 4, TG_F32, longname, 1) == -1,
               "is longer than 294 bytes");

    ok(!tg_gru_cell(&g, NULL, h) && !tg_tape_error(T), "gru_cell: x NULL -> NULL, no error");
    ok(!tg_gru_cell(&g, x, NULL) && !tg_tape_error(T), "gru_cell: h NULL -> NULL, no error");
    ok(!tg_gru_cell(NULL, NULL, NULL), "gru_cell: everything NULL -> NULL");
    TAPE_FAILS(T, !tg_gru_cell(NULL, x, h), "gru_cell: the cell is NULL");
    TAPE_FAILS(T, !tg_gru_cell(&g, tg_input(T, NULL, TG_F32, 2, SHAPE(2, 5)), h),
               "gru_cell: x is 2x5 but the cell takes x [B,3] (w_ih 3x12)");
    TAPE_FAILS(T, !tg_gru_cell(&g, tg_input(T, NULL, TG_F32, 1, SHAPE(3)), h),
               "gru_cell: x is 3 but the cell takes x [B,3]");
    TAPE_FAILS(T, !tg_gru_cell(&g, x, tg_input(T, NULL, TG_F32, 2, SHAPE(3, 4))),
               "gru_cell: h is 3x4 but x 2x3 and hidden = 4 need h [2,4] (w_hh 4x12)");
    TAPE_FAILS(T, !tg_gru_cell(&g, x, tg_input(T, NULL, TG_F32, 2, SHAPE(2, 5))),
               "gru_cell: h is 2x5");
    TAPE_FAILS(T, !tg_gru_cell(&g, tg_input(T, NULL, TG_F64, 2, SHAPE(2, 3)), h),
               "gru_cell: x is f64 but the cell's weights are f32");
    TAPE_FAILS(T, !tg_gru_cell(&g, tg_input(T, NULL, TG_I32, 2, SHAPE(2, 3)), h),
               "gru_cell: x is i32 but the cell's weights are f32");
    TAPE_FAILS(T, !tg_gru_cell(&g, x, tg_input(U, NULL, TG_F32, 2, SHAPE(2, 4))),
               "gru_cell: h belongs to another tape than the cell's weights");
    tg_gru wrong = g;
    wrong.hidden = 5;
    TAPE_FAILS(T, !tg_gru_cell(&wrong, x, h),
               "gru_cell: weights w_ih 3x12, w_hh 4x12, b_ih 12, b_hh 12 do not fit input = 3, "
               "hidden = 5 (expected 3x15, 5x15, 15, 15)");
    wrong = g;
    wrong.b_hh = l.b_hh;
    TAPE_FAILS(T, !tg_gru_cell(&wrong, x, h), "gru_cell: weights w_ih 3x12, w_hh 4x12, b_ih 12, b_hh 16");
    wrong = g;
    wrong.w_hh = NULL;
    TAPE_FAILS(T, !tg_gru_cell(&wrong, x, h),
               "gru_cell: the cell's w_hh is NULL (create the cell with tg_gru_new)");
    wrong = g;
    wrong.input = 0;
    TAPE_FAILS(T, !tg_gru_cell(&wrong, x, h), "gru_cell: the cell has input = 0 and hidden = 4");
    tg_gru zero;
    memset(&zero, 0, sizeof zero);
    TAPE_FAILS(T, !tg_gru_cell(&zero, x, h), "gru_cell: the cell's w_ih is NULL");

    ok(tg_lstm_cell(&l, NULL, h, c, &out_h, &out_c) == -1 && !out_h && !out_c &&
           !tg_tape_error(T),
       "lstm_cell: x NULL -> -1, outputs NULL, no error");
    ok(tg_lstm_cell(&l, x, h, NULL, &out_h, &out_c) == -1 && !tg_tape_error(T),
       "lstm_cell: c NULL -> -1, no error");
    TAPE_FAILS(T, tg_lstm_cell(&l, x, h, c, NULL, &out_c) == -1,
               "lstm_cell: h_out and c_out must not be NULL");
    TAPE_FAILS(T, tg_lstm_cell(NULL, x, h, c, &out_h, &out_c) == -1, "lstm_cell: the cell is NULL");
    TAPE_FAILS(T, tg_lstm_cell(&l, x, h, tg_input(T, NULL, TG_F32, 2, SHAPE(2, 3)), &out_h,
                               &out_c) == -1 && !out_h && !out_c,
               "lstm_cell: c is 2x3 but x 2x3 and hidden = 4 need c [2,4] (w_hh 4x16)");
    TAPE_FAILS(T, tg_lstm_cell(&l, tg_input(T, NULL, TG_F32, 3, SHAPE(1, 2, 3)), h, c, &out_h,
                               &out_c) == -1,
               "lstm_cell: x is 1x2x3 but the cell takes x [B,3] (w_ih 3x16)");
    ok(tg_lstm_cell(&l, x, h, c, &out_h, &out_c) == 0 && tg_dim(out_h, 1) == 4 &&
           tg_dim(out_c, 0) == 2,
       "lstm_cell: after the errors, a good step works");
    ok(tg_gru_cell(&g, x, h) != NULL, "gru_cell: after the errors, a good step works");
    tg_tape_free(U);
    tg_tape_free(T);
}

/* An unrolled GRU + LSTM, recorded once: replays with new inputs and
 * backward allocate nothing and record nothing. */
static void replay_allocates_nothing(void)
{
    enum { B = 3, IN = 5, H = 8, STEPS = 10 };
    tg_tape *T = tg_tape_new();
    tg_gru g;
    tg_lstm l;
    tg_gru_new(T, &g, IN, H, TG_F32, "g", 5);
    tg_lstm_new(T, &l, H, H, TG_F32, "l", 6);
    tg_tensor *xs = tg_input(T, "xs", TG_F32, 3, SHAPE(B, STEPS, IN));
    tg_tensor *zero = tg_const(T, "zero", TG_F32, 2, SHAPE(B, H));
    tg_tensor *h = zero, *lh = zero, *lc = zero, *loss = NULL;
    tg_rng r;
    tg_rng_seed(&r, 9);
    tg_init_uniform(xs, &r, -1, 1);
    for (size_t t = 0; t < STEPS; t++) {
        tg_tensor *x = tg_reshape(tg_slice(xs, 1, t, 1), 2, SHAPE(B, IN));
        h = tg_gru_cell(&g, x, h);
        tg_lstm_cell(&l, h, lh, lc, &lh, &lc);
        tg_tensor *term = tg_mean(tg_mul(lh, lh));
        loss = loss ? tg_add(loss, term) : term;
    }
    tg_optim *opt = tg_adam_new(T, 0, NULL, &(tg_adam_opts){.lr = 1e-2});
    bool fine = loss && opt && tg_backward(loss) == 0 && tg_optim_step(opt) == 0;
    double first = tg_item(loss), last = first;
    tg_tape_stats s0, s1;
    tg_tape_get_stats(T, &s0);
    int64_t a0 = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
    for (int step = 0; step < 20 && fine; step++) {
        tg_init_uniform(xs, &r, -1, 1);
        tg_zero_grad(T);
        fine = tg_replay(T) == 0 && tg_backward(loss) == 0 && tg_optim_step(opt) == 0;
        last = tg_item(loss);
    }
    int64_t a1 = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
    tg_tape_get_stats(T, &s1);
    ok(fine, "20 replayed steps of a 10-step GRU + LSTM (%s)",
       tg_tape_error(T) ? tg_tape_error(T) : "no error");
    ok(s1.nodes == s0.nodes && s1.graph_bytes == s0.graph_bytes && s1.leaf_bytes == s0.leaf_bytes,
       "they record nothing (%zu nodes)", s1.nodes);
    ok(a1 == a0, "the library allocates nothing (%lld allocations)", (long long)(a1 - a0));
    ok(last < first, "and Adam lowers the loss: %.5f -> %.5f", first, last);
    tg_optim_free(opt);
    tg_tape_free(T);
}

/* ---- the GRU language model (seeds/gru_lm.c) ---------------------------- */

static const char text[] =
    "the quick brown fox jumps over the lazy dog\n"
    "a stitch in time saves nine\n"
    "the early bird catches the worm\n"
    "all that glitters is not gold\n"
    "the pen is mightier than the sword\n"
    "actions speak louder than words\n"
    "the fox and the dog are friends\n"
    "a bird in the hand is worth two in the bush\n"
    "when in rome do as the romans do\n"
    "the squeaky wheel gets the grease\n";

enum { LM_STEPS = 30 };

static void lm_free_gru(lm_model *m)
{
    tg_tape_free(m->tape);
    memset(m, 0, sizeof *m);
}

/* Train the GRU LM for LM_STEPS steps of Adam on windows of `text`; the
 * losses go to loss[], the allocations the replayed steps made to *allocs.
 * the tape's statistics to *stats.  Returns 0 or -1. */
static int train_lm(int threads, int checkpoint, tg_dtype dt, double *loss, int64_t *allocs,
                    tg_tape_stats *stats)
{
    int id_of[256], vocab = 0;
    for (int i = 0; i < 256; i++)
        id_of[i] = -1;
    for (const char *p = text; *p; p++)
        if (id_of[(unsigned char)*p] < 0)
            id_of[(unsigned char)*p] = 0;
    for (int i = 0; i < 256; i++)
        if (id_of[i] == 0)
            id_of[i] = vocab++;
    tg_set_threads(threads);
    lm_config cfg = {.model = LM_GRU, .vocab = vocab, .ctx = 16, .batch = 16, .layers = 2,
                     .width = 128, .checkpoint = checkpoint, .seed = 5, .dtype = dt};
    lm_model m;
    tg_err err;
    if (gru_lm_build(&m, &cfg, &err)) {
        diag("%s", err.msg);
        return -1;
    }
    tg_optim *opt = tg_adam_new(m.tape, m.n_params, m.params, &(tg_adam_opts){.lr = 1e-2});
    size_t n = sizeof text - 1, B = 16, T = 16;
    int rc = opt ? 0 : -1;
    for (int step = 0; step < LM_STEPS && rc == 0; step++) {
        int32_t *x = tg_data_i32(m.x), *y = tg_data_i32(m.y);
        for (size_t b = 0; b < B; b++) {
            size_t s = ((size_t)step * B + b) * 7919 % (n - T);
            for (size_t t = 0; t < T; t++) {
                x[b * T + t] = id_of[(unsigned char)text[s + t]];
                y[b * T + t] = id_of[(unsigned char)text[s + t + 1]];
            }
        }
        if (step == 1)
            *allocs = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
        tg_zero_grad(m.tape);
        rc = tg_replay(m.tape) || tg_backward(m.loss) ||
             tg_clip_grad_norm(m.tape, m.n_params, m.params, 1.0) < 0 || tg_optim_step(opt);
        loss[step] = tg_item(m.loss);
    }
    *allocs = tg_test_control(TG_TEST_ALLOC_COUNT, 0) - *allocs;
    tg_tape_get_stats(m.tape, stats);
    if (rc)
        diag("%s", tg_tape_error(m.tape));
    tg_optim_free(opt);
    lm_free_gru(&m);
    tg_set_threads(1);
    return rc;
}

static void lm(void)
{
    double l1[LM_STEPS], l2[LM_STEPS], lc[LM_STEPS];
    int64_t a1 = -1, a2 = -1, ac = -1;
    tg_tape_stats s1, s2, sc;
    int rc = train_lm(1, 0, TG_F32, l1, &a1, &s1);
    ok(rc == 0, "GRU LM (2 layers, width 128, B = T = 16): %d steps of Adam", LM_STEPS);
    if (rc)
        return;
    double first = l1[0], last = 0;
    for (int i = LM_STEPS - 5; i < LM_STEPS; i++)
        last += l1[i] / 5;
    ok(last < first - 1.0, "it learns: loss %.4f -> %.4f (mean of the last 5 steps), a fall of "
       "more than 1.0", first, last);
    ok(a1 == 0, "the replayed steps allocate nothing (%lld)", (long long)a1);
    rc = train_lm(2, 0, TG_F32, l2, &a2, &s2);
    ok(rc == 0 && !memcmp(l1, l2, sizeof l1), "2 threads: the %d losses are bit-identical "
       "(last %.9g vs %.9g)", LM_STEPS, l1[LM_STEPS - 1], l2[LM_STEPS - 1]);
    rc = train_lm(1, 1, TG_F32, lc, &ac, &sc);
    ok(rc == 0 && !memcmp(l1, lc, sizeof l1) && ac == 0,
       "checkpointing (a segment per 8 steps): bit-identical losses, nothing allocated (%lld)",
       (long long)ac);
    size_t m1 = s1.graph_bytes + s1.checkpoint_bytes, mc = sc.graph_bytes + sc.checkpoint_bytes;
    ok(s1.segments == 0 && sc.segments == 2 && mc < m1,
       "checkpointing: 2 segments for T = 16; graph + checkpoint memory %zu -> %zu bytes",
       m1, mc);
}

static void lm_errors(void)
{
    lm_model m;
    tg_err err;
    lm_config cfg = {.model = LM_GRU, .vocab = 1, .ctx = 4, .batch = 2, .layers = 1,
                     .width = 8, .dtype = TG_F32};
    ok(gru_lm_build(&m, &cfg, &err) == -1 && strstr(err.msg, "gru: bad configuration: vocab 1") &&
           !m.tape,
       "gru_lm_build: vocab 1 -> \"%s\"", err.msg);
    cfg.vocab = 5, cfg.layers = 0;
    ok(gru_lm_build(&m, &cfg, &err) == -1 && strstr(err.msg, "layers 0 (1..63)"),
       "gru_lm_build: layers 0 -> \"%s\"", err.msg);
    cfg.layers = 1, cfg.dtype = TG_I32;
    ok(gru_lm_build(&m, &cfg, &err) == -1 && strstr(err.msg, "dtype 3"),
       "gru_lm_build: dtype i32 -> \"%s\"", err.msg);
    ok(gru_lm_build(&m, NULL, &err) == -1 && strstr(err.msg, "gru: no configuration"),
       "gru_lm_build: NULL configuration");
    cfg.dtype = TG_F64, cfg.ctx = 3;
    ok(gru_lm_build(&m, &cfg, NULL) == 0 && m.n_params == 7 && m.n_decay == 3 &&
           tg_dim(m.logits, 2) == 5 && tg_dim(m.logits, 1) == 3,
       "gru_lm_build: 1 layer, T = 3: 7 parameters, 3 decayed, logits 2x3x5");
    if (m.tape) {
        tg_check ck;
        for (size_t i = 0; i < 6; i++) {
            tg_set(m.x, i, (double)(i * 3 % 5));
            tg_set(m.y, i, (double)((i * 2 + 1) % 5));
        }
        tg_replay(m.tape);
        int rc = tg_check_fd(m.loss, 0, NULL, 0, &ck);
        ok(rc == 0 && ck.max_rel <= 1e-7, "gru LM (f64): finite differences w.r.t. every "
           "parameter (%zu elements, max rel %.2g)", rc ? 0 : ck.count, rc ? -1.0 : ck.max_rel);
        lm_free_gru(&m);
    }
}

int main(void)
{
    tg_set_threads(1);
    forward_vs_torch();
    init();
    for (int lstm = 0; lstm < 2; lstm++) {
        fd(lstm, 1);
        fd(lstm, 3);
    }
    errors();
    replay_allocates_nothing();
    lm_errors();
    lm();
    return tap_done();
}
