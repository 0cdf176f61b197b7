/* Optimizers, schedules and gradient clipping: hand-worked steps, PyTorch
 * reference trajectories, the no-gradient rule, no allocation in a step, and
 * every error path. */
#include "tap.h"
#include "tapegrad.h"
#include "core.h" /* grad_gen: prove a stale gradient is never cleared */

#include <math.h>


static tg_tape *T;

/* the call failed and T's error contains msg; then forget it */
#define FAILS(call_failed, msg) TAPE_FAILS(T, call_failed, msg)

/* Give scalar parameter w the gradient g for this period (as a backward
 * pass would): tg_grad marks the buffer current. */
static void set_grad(tg_tensor *w, double g)
{
    tg_zero_grad(tg_tape_of(w));
    void *p = tg_grad(w);
    if (tg_dtype_of(w) == TG_F32)
        *(float *)p = (float)g;
    else
        *(double *)p = g;
}

/* ---- worked by hand: one scalar w0 = 1, constant gradient g = 0.5 ------- */
static void by_hand(tg_dtype dt)
{
    const char *dn = tg_dtype_name(dt);
    double tol = dt == TG_F32 ? 1e-6 : 1e-14;
    tg_tape *t = tg_tape_new();
    tg_tensor *w = tg_param(t, "w", dt, 0, NULL);

    /* SGD lr 0.1, μ 0.9: v1 = 0.5, w1 = 1 − 0.05 = 0.95; v2 = 0.45 + 0.5 =
     * 0.95, w2 = 0.855; v3 = 0.855 + 0.5 = 1.355, w3 = 0.7195; then a step
     * without gradient: v4 = 0.9·1.355 = 1.2195, w4 = 0.59755. */
    tg_fill(w, 1);
    tg_optim *o = tg_sgd_new(t, 1, &w, &(tg_sgd_opts){.lr = 0.1, .momentum = 0.9});
    const double sgd[] = {0.95, 0.855, 0.7195};
    for (int k = 0; k < 3; k++) {
        set_grad(w, 0.5);
        tg_optim_step(o);
        near(tg_get(w, 0), sgd[k], tol, "%s SGD momentum by hand, step %d: w = %g", dn, k + 1, sgd[k]);
    }
    tg_zero_grad(t);
    uint64_t gen = w->grad_gen;
    int64_t before = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
    double stale = tg_dtype_of(w) == TG_F32 ? *(float *)w->grad : *(double *)w->grad;
    ok(tg_optim_step(o) == 0, "%s step after tg_zero_grad without backward succeeds", dn);
    near(tg_get(w, 0), 0.59755, tol, "%s no gradient counts as zero: momentum alone, w4 = 0.59755", dn);
    ok(tg_test_control(TG_TEST_ALLOC_COUNT, 0) == before, "%s tg_optim_step allocates nothing",
       dn);
    double after = tg_dtype_of(w) == TG_F32 ? *(float *)w->grad : *(double *)w->grad;
    ok(w->grad_gen == gen && after == stale,
       "%s the stale gradient buffer is neither cleared nor marked current", dn);
    tg_optim_free(o);

    /* Nesterov, lr 0.1, μ 0.9: d = 0.5; v1 = 0.5, w1 = 1 − 0.1·(0.5 + 0.45) =
     * 0.905; v2 = 0.95, w2 = 0.905 − 0.1·(0.5 + 0.855) = 0.7695. */
    tg_fill(w, 1);
    o = tg_sgd_new(t, 1, &w, &(tg_sgd_opts){.lr = 0.1, .momentum = 0.9, .nesterov = true});
    const double nes[] = {0.905, 0.7695};
    for (int k = 0; k < 2; k++) {
        set_grad(w, 0.5);
        tg_optim_step(o);
        near(tg_get(w, 0), nes[k], tol, "%s SGD Nesterov by hand, step %d: w = %g", dn, k + 1, nes[k]);
    }
    tg_optim_free(o);

    /* Plain SGD with weight decay 0.1, lr 0.1: d = 0.5 + 0.1·1 = 0.6,
     * w1 = 0.94; d = 0.5 + 0.094 = 0.594, w2 = 0.8806. */
    tg_fill(w, 1);
    o = tg_sgd_new(t, 1, &w, &(tg_sgd_opts){.lr = 0.1, .weight_decay = 0.1});
    const double wd[] = {0.94, 0.8806};
    for (int k = 0; k < 2; k++) {
        set_grad(w, 0.5);
        tg_optim_step(o);
        near(tg_get(w, 0), wd[k], tol, "%s SGD weight decay by hand, step %d: w = %g", dn, k + 1, wd[k]);
    }
    tg_optim_free(o);

    /* Adam lr 0.1 with a constant gradient: m̂ = g and v̂ = g² at every step
     * (step 1: m = 0.05, v = 0.00025, m̂ = 0.05/0.1, v̂ = 0.00025/0.001;
     * step 2: m = 0.095, v = 0.00049975, m̂ = 0.095/0.19 = 0.5,
     * v̂ = 0.00049975/0.001999 = 0.25), so each step moves w by
     * lr·0.5/(0.5 + 1e-8): w1 = 0.9 + 2e-9, w2 = 0.8 + 4e-9, w3 = 0.7 + 6e-9. */
    tg_fill(w, 1);
    o = tg_adam_new(t, 1, &w, &(tg_adam_opts){.lr = 0.1});
    for (int k = 0; k < 3; k++) {
        set_grad(w, 0.5);
        tg_optim_step(o);
        double want = 1 - (k + 1) * 0.1 * 0.5 / (0.5 + 1e-8);
        near(tg_get(w, 0), want, tol, "%s Adam by hand, step %d: w = %.10f", dn, k + 1, want);
    }
    tg_optim_free(o);

    /* AdamW lr 0.1, wd 0.01: w1 = 1·(1 − 0.001) − 0.1·0.5/(0.5 + 1e-8)
     * = 0.899 + 2e-9; w2 = w1·0.999 − 0.1(...) = 0.798101 + ... */
    tg_fill(w, 1);
    o = tg_adam_new(t, 1, &w, &(tg_adam_opts){.lr = 0.1, .weight_decay = 0.01, .decoupled = true});
    double step = 0.1 * 0.5 / (0.5 + 1e-8);
    double want = 1;
    for (int k = 0; k < 2; k++) {
        set_grad(w, 0.5);
        tg_optim_step(o);
        want = want * 0.999 - step;
        near(tg_get(w, 0), want, tol, "%s AdamW by hand, step %d: w = %.10f", dn, k + 1, want);
    }
    ok(fabs(tg_get(w, 0) - 0.798101) < 1e-6, "%s AdamW: w2 = 0.899·0.999 − 0.1 = 0.798101", dn);
    tg_optim_free(o);
    tg_tape_free(t);
}

/* ---- against PyTorch ------------------------------------------------------
 * loss = Σ (X·W + b − Y)², 5 steps of zero_grad / backward / step from W0, b0;
 * the *_skip cases skip the backward of step 3 (its gradient is zero).
 * Reference values produced once with torch 1.13 (python3-torch) by:
 *
 *   X = [[0.5, -1.0], [1.5, 2.0], [-0.5, 0.25], [1.0, 1.0]]
 *   Y = [[1.0, 0.0, -1.0], [0.5, 2.0, 1.0], [-1.0, 0.5, 0.0], [0.0, 1.0, 2.0]]
 *   W0 = [[0.5, -1.0, 2.0], [1.5, -0.25, 0.75]];  B0 = [0.1, -0.2, 0.3]
 *   cases: sgd             SGD(lr=0.01)
 *          sgd_mom         SGD(lr=0.01, momentum=0.9)
 *          sgd_mom_wd      SGD(lr=0.01, momentum=0.5, weight_decay=0.05)
 *          sgd_nesterov_wd SGD(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.1)
 *          adam            Adam(lr=0.01)
 *          adam_wd         Adam(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)
 *          adamw           AdamW(lr=0.01, weight_decay=0.1)
 *          *_skip          as above
 *   for dt in (torch.float64, torch.float32):
 *     for name, mk in cases:
 *       x = torch.tensor(X, dtype=dt); y = torch.tensor(Y, dtype=dt)
 *       w = torch.tensor(W0, dtype=dt, requires_grad=True)
 *       b = torch.tensor(B0, dtype=dt, requires_grad=True)
 *       opt = mk([w, b])
 *       for step in range(5):
 *         opt.zero_grad(set_to_none=False)
 *         loss = ((x @ w + b - y) ** 2).sum()
 *         if not (name.endswith("_skip") and step == 2):
 *           loss.backward()
 *         opt.step()
 *       print(w.flatten().tolist() + b.flatten().tolist())   # as %.17g
 */
typedef struct ref {
    const char *name;
    tg_dtype dtype;
    double wb[9]; /* W (2x3) then b (3) after 5 steps */
} ref;

static const ref refs[] = {
    {"sgd", TG_F64, {0.18233275105649716, -0.39937436541063992, 1.4428287821124741, 0.69283718736968969, 0.43852172087374097, 0.31822587687069231, -0.16907930724672976, 0.29101766513095034, -0.096401097420111742}},
    {"sgd_mom", TG_F64, {-0.20495037872182298, 0.41660541072656726, 0.66129651359538455, -0.44097026286419749, 1.3547873918236921, -0.23235737224673955, -0.50098134455102672, 0.95047888802763003, -0.63237888910546336}},
    {"sgd_mom_wd", TG_F64, {0.051456204262478517, -0.10954165304891647, 1.1585803411475135, 0.28536791145863483, 0.75793959843391445, 0.12851994749324766, -0.28096933846303562, 0.52178331553202406, -0.28419277986181196}},
    {"sgd_nesterov_wd", TG_F64, {0.0056315791436729731, 0.29786712554664135, 0.67948249585789644, -0.39201936220971439, 1.1431309723120071, -0.026262450139535334, -0.34252667456913183, 0.8173549509043232, -0.53019365915829886}},
    {"adam", TG_F64, {0.45008576521967297, -0.95005051731646695, 1.9500579494413881, 1.4500480354909984, -0.200051929654395, 0.70008074659299913, 0.05009465735058883, -0.15005551523254973, 0.25007073318944933}},
    {"adam_wd", TG_F64, {0.45016587406772346, -0.95009914174258647, 1.9501124775114398, 1.4500941795446556, -0.20010222277710268, 0.70015621861044119, 0.050183182834522611, -0.15010924618465032, 0.25013806246039189}},
    {"adamw", TG_F64, {0.44769764585732075, -0.9451631689949106, 1.9401847576790605, 1.4426676658647095, -0.19890676719815062, 0.69644719562234281, 0.049701486656707899, -0.14915994032075997, 0.24868050345165135}},
    {"sgd_mom_wd_skip", TG_F64, {0.089499103592270299, -0.2273531107057096, 1.281153684277293, 0.46314476117921338, 0.63324850412703448, 0.19361719493005322, -0.24557003224980961, 0.42974759755808178, -0.20843154853695986}},
    {"adam_wd_skip", TG_F64, {0.45537542178819174, -0.95530642604845672, 1.9552450814595048, 1.45529162791426, -0.20535486606515482, 0.70535872270530997, 0.055427006951576069, -0.1553596594670251, 0.25537263851394987}},
    {"adamw_skip", TG_F64, {0.4524563746494113, -0.94992645316225011, 1.9449469617856789, 1.4474311688231147, -0.20366989414403849, 0.70120646178498314, 0.054459134343899193, -0.15392262885196772, 0.25344112840048083}},
    {"sgd", TG_F32, {0.18233273923397064, -0.39937439560890198, 1.4428287744522095, 0.69283729791641235, 0.43852171301841736, 0.31822589039802551, -0.16907930374145508, 0.29101765155792236, -0.096401095390319824}},
    {"sgd_mom", TG_F32, {-0.20495037734508514, 0.41660535335540771, 0.66129666566848755, -0.44097012281417847, 1.3547872304916382, -0.23235738277435303, -0.50098133087158203, 0.95047885179519653, -0.63237887620925903}},
    {"sgd_mom_wd", TG_F32, {0.051456216722726822, -0.10954172164201736, 1.1585804224014282, 0.28536790609359741, 0.75793963670730591, 0.12851996719837189, -0.28096932172775269, 0.52178329229354858, -0.2841927707195282}},
    {"sgd_nesterov_wd", TG_F32, {0.0056316289119422436, 0.29786711931228638, 0.67948263883590698, -0.39201933145523071, 1.143130898475647, -0.026262469589710236, -0.34252667427062988, 0.81735485792160034, -0.53019368648529053}},
    {"adam", TG_F32, {0.45008578896522522, -0.95005053281784058, 1.9500579833984375, 1.4500480890274048, -0.2000519186258316, 0.70008081197738647, 0.050094667822122574, -0.15005549788475037, 0.25007078051567078}},
    {"adam_wd", TG_F32, {0.45016589760780334, -0.95009911060333252, 1.9501123428344727, 1.4500942230224609, -0.20010219514369965, 0.70015615224838257, 0.050183180719614029, -0.15010924637317657, 0.2501380443572998}},
    {"adamw", TG_F32, {0.44769766926765442, -0.9451633095741272, 1.9401849508285522, 1.4426677227020264, -0.19890677928924561, 0.69644731283187866, 0.049701489508152008, -0.14915993809700012, 0.24868056178092957}},
    {"sgd_mom_wd_skip", TG_F32, {0.089499123394489288, -0.22735318541526794, 1.281153678894043, 0.46314477920532227, 0.63324850797653198, 0.19361716508865356, -0.24557000398635864, 0.42974752187728882, -0.20843154191970825}},
    {"adam_wd_skip", TG_F32, {0.45537543296813965, -0.9553065299987793, 1.9552451372146606, 1.4552915096282959, -0.20535485446453094, 0.70535874366760254, 0.055427014827728271, -0.1553596556186676, 0.25537264347076416}},
    {"adamw_skip", TG_F32, {0.45245638489723206, -0.94992655515670776, 1.9449471235275269, 1.447431206703186, -0.20366990566253662, 0.70120656490325928, 0.054459139704704285, -0.15392264723777771, 0.25344118475914001}},
};

static const double X[8] = {0.5, -1.0, 1.5, 2.0, -0.5, 0.25, 1.0, 1.0};
static const double Y[12] = {1.0, 0.0, -1.0, 0.5, 2.0, 1.0, -1.0, 0.5, 0.0, 0.0, 1.0, 2.0};
static const double W0[6] = {0.5, -1.0, 2.0, 1.5, -0.25, 0.75};
static const double B0[3] = {0.1, -0.2, 0.3};

static tg_optim *make(const char *name, tg_tape *t, tg_tensor **p)
{
    if (!strncmp(name, "sgd_nesterov_wd", 15))
        return tg_sgd_new(t, 2, p, &(tg_sgd_opts){.lr = 0.01, .momentum = 0.9, .nesterov = true,
                                                  .weight_decay = 0.1});
    if (!strncmp(name, "sgd_mom_wd", 10))
        return tg_sgd_new(t, 2, p, &(tg_sgd_opts){.lr = 0.01, .momentum = 0.5, .weight_decay = 0.05});
    if (!strcmp(name, "sgd_mom"))
        return tg_sgd_new(t, 2, p, &(tg_sgd_opts){.lr = 0.01, .momentum = 0.9});
    if (!strcmp(name, "sgd"))
        return tg_sgd_new(t, 2, p, &(tg_sgd_opts){.lr = 0.01});
    if (!strncmp(name, "adam_wd", 7))
        return tg_adam_new(t, 2, p, &(tg_adam_opts){.lr = 0.01, .beta1 = 0.8, .beta2 = 0.99,
                                                    .eps = 1e-6, .weight_decay = 0.1});
    if (!strcmp(name, "adam"))
        return tg_adam_new(t, 2, p, &(tg_adam_opts){.lr = 0.01});
    return tg_adam_new(t, 2, p, &(tg_adam_opts){.lr = 0.01, .weight_decay = 0.1, .decoupled = true});
}

static void against_pytorch(const ref *r)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *x = tg_leaf_from(t, TG_CONST, "x", TG_F64, 2, SHAPE(4, 2), X);
    tg_tensor *y = tg_leaf_from(t, TG_CONST, "y", TG_F64, 2, SHAPE(4, 3), Y);
    tg_tensor *w = tg_param(t, "W", r->dtype, 2, SHAPE(2, 3));
    tg_tensor *b = tg_param(t, "b", r->dtype, 1, SHAPE(3));
    if (r->dtype == TG_F32) { /* the data in f32, as torch's float32 tensors */
        tg_tensor *x32 = tg_const(t, "x32", TG_F32, 2, SHAPE(4, 2));
        tg_tensor *y32 = tg_const(t, "y32", TG_F32, 2, SHAPE(4, 3));
        tg_copy_in(x32, X, TG_F64, 8);
        tg_copy_in(y32, Y, TG_F64, 12);
        x = x32;
        y = y32;
    }
    tg_copy_in(w, W0, TG_F64, 6);
    tg_copy_in(b, B0, TG_F64, 3);
    tg_tensor *loss = tg_mse(tg_add_bias(tg_matmul(x, w), b), y, TG_SUM);
    tg_tensor *p[2] = {w, b};
    tg_optim *o = make(r->name, t, p);
    bool skip = strstr(r->name, "_skip") != NULL;
    int64_t allocs = 0;
    for (int step = 0; step < 5; step++) {
        tg_zero_grad(t);
        tg_replay(t);
        if (!(skip && step == 2))
            tg_backward(loss);
        int64_t a = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
        tg_optim_step(o);
        allocs += tg_test_control(TG_TEST_ALLOC_COUNT, 0) - a;
    }
    double tol = r->dtype == TG_F32 ? 2e-6 : 1e-13, worst = 0;
    for (int i = 0; i < 9; i++) {
        double got = i < 6 ? tg_get(w, (size_t)i) : tg_get(b, (size_t)i - 6);
        double err = fabs(got - r->wb[i]) / fmax(1, fabs(r->wb[i]));
        worst = fmax(worst, err);
    }
    ok(o && worst <= tol, "%s %s: W and b after 5 steps match PyTorch (max rel err %.2e <= %.0e)",
       tg_dtype_name(r->dtype), r->name, worst, tol);
    ok(allocs == 0, "%s %s: no allocation in 5 steps", tg_dtype_name(r->dtype), r->name);
    if (tg_tape_error(t))
        diag("tape error: %s", tg_tape_error(t));
    tg_optim_free(o);
    tg_tape_free(t);
}

/* ---- n = 0: every leaf that requires a gradient --------------------------- */
static void all_params(void)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *a = tg_param(t, "a", TG_F64, 1, SHAPE(2));
    tg_tensor *frozen = tg_param(t, "frozen", TG_F64, 1, SHAPE(2));
    tg_tensor *in = tg_input(t, "in", TG_F64, 1, SHAPE(2));
    tg_set_requires_grad(frozen, false);
    tg_set_requires_grad(in, true);
    tg_fill(a, 1);
    tg_fill(frozen, 1);
    tg_fill(in, 1);
    tg_optim *o = tg_sgd_new(t, 0, NULL, &(tg_sgd_opts){.lr = 0.5, .weight_decay = 1});
    tg_optim_step(o); /* no gradients: w −= 0.5·(0 + 1·w) */
    ok(o && tg_get(a, 0) == 0.5 && tg_get(in, 1) == 0.5 && tg_get(frozen, 0) == 1,
       "n = 0 updates every leaf requiring a gradient (params and inputs), not frozen ones");
    tg_optim_free(o);
    /* tg_optim_bytes: the state's bytes, also once moved into leaves */
    tg_tensor *w32 = tg_param(t, "w32", TG_F32, 2, SHAPE(3, 5));
    tg_optim *plain = tg_sgd_new(t, 1, &w32, &(tg_sgd_opts){.lr = 0.1});
    tg_optim *mom = tg_sgd_new(t, 2, (tg_tensor *[]){a, w32}, &(tg_sgd_opts){.lr = 0.1, .momentum = 0.9});
    tg_optim *adam = tg_adam_new(t, 2, (tg_tensor *[]){a, w32}, NULL);
    ok(tg_optim_bytes(plain) == 0 && tg_optim_bytes(mom) == 2 * 8 + 15 * 4 &&
           tg_optim_bytes(adam) == 2 * (2 * 8 + 15 * 4),
       "optim_bytes: none for plain SGD, one copy with momentum, two for Adam");
    ok(tg_optim_state(adam, NULL, 0, NULL) == 5 && tg_optim_bytes(adam) == 2 * (2 * 8 + 15 * 4),
       "... the same once tg_optim_state moved the state into leaves");
    tg_optim_free(plain);
    tg_optim_free(mom);
    tg_optim_free(adam);
    tg_tape_free(t);
}

/* ---- schedules ------------------------------------------------------------ */
static void schedules(void)
{
    near(tg_lr_step(0.1, 0, 3, 0.5), 0.1, 1e-15, "step schedule: epoch 0 keeps base");
    near(tg_lr_step(0.1, 2, 3, 0.5), 0.1, 1e-15, "step schedule: epoch 2 (< step_size 3) keeps base");
    near(tg_lr_step(0.1, 3, 3, 0.5), 0.05, 1e-15, "step schedule: epoch 3 is base·0.5");
    near(tg_lr_step(0.1, 7, 3, 0.5), 0.025, 1e-15, "step schedule: epoch 7 is base·0.5² (⌊7/3⌋ = 2)");
    ok(isnan(tg_lr_step(0.1, 1, 0, 0.5)) && isnan(tg_lr_step(0.1, -1, 3, 0.5)),
       "step schedule: step_size 0 or a negative epoch gives NaN");
    /* 0.001 + 0.099·(1 + cos(π·t/10))/2, values from Python's math module */
    const long ts[] = {0, 2, 5, 9, 10, 12};
    const double want[] = {0.1, 0.090546341221559898, 0.0505, 0.0034227024433899004, 0.001, 0.001};
    for (int i = 0; i < 6; i++)
        near(tg_lr_cosine(0.1, 0.001, ts[i], 10), want[i], 1e-15,
             "cosine schedule t = %ld of 10: %.17g", ts[i], want[i]);
    ok(isnan(tg_lr_cosine(0.1, 0, 1, 0)) && isnan(tg_lr_cosine(0.1, 0, -1, 10)),
       "cosine schedule: total 0 or t < 0 gives NaN");
}

/* ---- clipping ------------------------------------------------------------- */
static void clipping(void)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *a = tg_param(t, "a", TG_F32, 1, SHAPE(2));
    tg_tensor *c = tg_param(t, "c", TG_F64, 1, SHAPE(3));
    tg_tensor *none = tg_param(t, "none", TG_F32, 1, SHAPE(4)); /* no gradient */
    tg_tensor *p[2] = {a, c};
    tg_zero_grad(t);
    float *ga = tg_grad(a);
    double *gc = tg_grad(c);
    ga[0] = 3, ga[1] = -4, gc[0] = 12, gc[1] = 0.5, gc[2] = -1.5;
    /* torch.nn.utils.clip_grad_norm_([a, c], 6.5) on the same gradients:
     * norm 13.09580135345459 (= √171.5), gradients 1.48902678, -1.98536897,
     * 5.95610714, 0.248171121, -0.744513392 */
    double n = tg_clip_grad_norm(t, 2, p, 6.5);
    near(n, sqrt(171.5), 1e-15, "clip: the returned norm is √(9 + 16 + 144 + 0.25 + 2.25)");
    const double want[5] = {1.48902678, -1.98536897, 5.95610714, 0.248171121, -0.744513392};
    double worst = 0;
    for (int i = 0; i < 5; i++)
        worst = fmax(worst, fabs((i < 2 ? tg_grad_get(a, (size_t)i) : tg_grad_get(c, (size_t)i - 2)) -
                                 want[i]));
    ok(worst < 1e-6, "clip: gradients scaled by 6.5/(norm + 1e-6) as PyTorch (max err %.1e)", worst);
    double c_norm = tg_clip_grad_norm(t, 0, NULL, 1e9);
    near(c_norm, 6.5 * sqrt(171.5) / (sqrt(171.5) + 1e-6), 1e-7,
         "clip, n = 0: every param (one without a gradient counts 0); norm now 6.5");
    ok(tg_grad_get(a, 0) == (float)want[0] || fabs(tg_grad_get(a, 0) - want[0]) < 1e-7,
       "clip: a norm below max_norm changes nothing");
    ok(none->grad_gen != tg_cur_gen(none), "clip: a parameter without a gradient stays without one");
    gc[1] = INFINITY;
    double g0 = gc[0];
    ok(isinf(tg_clip_grad_norm(t, 2, p, 1)) && gc[0] == g0,
       "clip: an infinite norm is returned and nothing is scaled");
    int64_t before = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
    gc[1] = 0.5;
    tg_clip_grad_norm(t, 2, p, 1);
    ok(tg_test_control(TG_TEST_ALLOC_COUNT, 0) == before, "clip allocates nothing");
    tg_tape_free(t);
}

/* ---- errors --------------------------------------------------------------- */
static void errors(void)
{
    tg_tensor *w = tg_param(T, "w", TG_F32, 1, SHAPE(3));
    tg_tensor *lab = tg_input(T, "lab", TG_I32, 1, SHAPE(3));
    tg_tensor *in = tg_input(T, "in", TG_F32, 1, SHAPE(3));
    tg_tensor *sq = tg_relu(w);
    tg_tape *other = tg_tape_new();
    tg_tensor *ow = tg_param(other, "ow", TG_F32, 1, SHAPE(3));
    tg_sgd_opts sgd = {.lr = 0.1};
    ok(tg_sgd_new(NULL, 1, &w, &sgd) == NULL && tg_adam_new(NULL, 0, NULL, NULL) == NULL,
       "a NULL tape gives NULL");
    FAILS(!tg_sgd_new(T, 1, &w, NULL), "sgd: opts is NULL");
    FAILS(!tg_sgd_new(T, 1, &w, &(tg_sgd_opts){.lr = -0.1}), "sgd: learning rate -0.1 is not a finite number >= 0");
    FAILS(!tg_sgd_new(T, 1, &w, &(tg_sgd_opts){.lr = NAN}), "sgd: learning rate nan is not");
    FAILS(!tg_sgd_new(T, 1, &w, &(tg_sgd_opts){.lr = INFINITY}), "sgd: learning rate inf is not");
    FAILS(!tg_sgd_new(T, 1, &w, &(tg_sgd_opts){.lr = 0.1, .momentum = -1}), "sgd: momentum -1 is not");
    FAILS(!tg_sgd_new(T, 1, &w, &(tg_sgd_opts){.lr = 0.1, .weight_decay = -1}), "sgd: weight_decay -1 is not");
    FAILS(!tg_sgd_new(T, 1, &w, &(tg_sgd_opts){.lr = 0.1, .nesterov = true}),
          "sgd: Nesterov momentum needs a momentum > 0");
    FAILS(!tg_adam_new(T, 1, &w, &(tg_adam_opts){.lr = -1}), "adam: learning rate -1 is not");
    FAILS(!tg_adam_new(T, 1, &w, &(tg_adam_opts){.beta1 = 1}), "adam: betas (1, 0.999) must both be in (0, 1)");
    FAILS(!tg_adam_new(T, 1, &w, &(tg_adam_opts){.beta2 = 1.5}), "adam: betas (0.9, 1.5) must both be in (0, 1)");
    FAILS(!tg_adam_new(T, 1, &w, &(tg_adam_opts){.beta1 = -0.1}), "adam: betas (-0.1, 0.999)");
    FAILS(!tg_adam_new(T, 1, &w, &(tg_adam_opts){.eps = -1}), "adam: eps -1 is not a finite number > 0");
    FAILS(!tg_adam_new(T, 1, &w, &(tg_adam_opts){.weight_decay = NAN, .decoupled = true}),
          "adamw: weight_decay nan is not");
    FAILS(!tg_sgd_new(T, 1, &lab, &sgd), "sgd: params[0] ('lab') is i32; only f32 and f64 parameters");
    FAILS(!tg_sgd_new(T, 1, &in, &sgd), "sgd: params[0] ('in') is not a parameter: this input leaf does not require a gradient");
    FAILS(!tg_sgd_new(T, 1, &sq, &sgd), "sgd: params[0] ('relu') is not a parameter: it is the output of an op");
    FAILS(!tg_sgd_new(T, 1, &ow, &sgd), "sgd: params[0] ('ow') belongs to another tape");
    FAILS(!tg_adam_new(T, 2, (tg_tensor *[]){w, NULL}, NULL), "adam: params[1] is NULL");
    FAILS(!tg_adam_new(T, 2, (tg_tensor *[]){w, w}, NULL), "adam: params[0] and params[1] are the same tensor ('w')");
    FAILS(!tg_adam_new(T, -1, NULL, NULL), "adam: n = -1 is negative");
    FAILS(!tg_adam_new(T, 2, NULL, NULL), "adam: params is NULL but n = 2");
    ok(!tg_sgd_new(other, 1, &w, &sgd) && tg_tape_error(other) &&
           strstr(tg_tape_error(other), "sgd: params[0] ('w') belongs to another tape"),
       "a parameter of another tape, error on the optimizer's tape: \"%s\"",
       tg_tape_error(other) ? tg_tape_error(other) : "(none)");
    tg_tape *empty = tg_tape_new();
    tg_input(empty, "x", TG_F32, 1, SHAPE(2));
    ok(!tg_sgd_new(empty, 0, NULL, &sgd) && tg_tape_error(empty) &&
           strstr(tg_tape_error(empty), "sgd: no parameters: no leaf of the tape requires a gradient"),
       "a tape without parameters: \"%s\"", tg_tape_error(empty) ? tg_tape_error(empty) : "(none)");
    tg_tape_free(empty);

    tg_optim *o = tg_adam_new(T, 1, &w, NULL);
    ok(o && tg_optim_get_lr(o) == 1e-3, "Adam with opts NULL takes the defaults (lr 1e-3)");
    tg_optim_set_lr(o, 0.05);
    ok(tg_optim_get_lr(o) == 0.05, "set_lr / get_lr");
    tg_optim_set_lr(o, -1);
    FAILS(tg_optim_get_lr(o) != 0.05 ? false : true, "optim_set_lr: learning rate -1 is not a finite number >= 0 (kept 0.05)");
    tg_optim_set_lr(o, NAN);
    FAILS(tg_optim_get_lr(o) == 0.05, "optim_set_lr: learning rate nan");
    tg_optim_free(o);
    ok(tg_optim_step(NULL) == -1 && isnan(tg_optim_get_lr(NULL)), "NULL optimizer: step -1, lr NaN");
    tg_optim_set_lr(NULL, 1);
    tg_optim_free(NULL);

    ok(tg_clip_grad_norm(NULL, 0, NULL, 1) < 0, "clip with a NULL tape is an error");
    FAILS(tg_clip_grad_norm(T, 1, &w, -1) < 0, "clip_grad_norm: max_norm -1 is not a number >= 0");
    FAILS(tg_clip_grad_norm(T, 1, &w, NAN) < 0, "clip_grad_norm: max_norm nan");
    FAILS(tg_clip_grad_norm(T, 1, &lab, 1) < 0, "clip_grad_norm: params[0] ('lab') is i32");
    FAILS(tg_clip_grad_norm(T, 2, (tg_tensor *[]){w, w}, 1) < 0, "clip_grad_norm: params[0] and params[1] are the same");
    tg_tape_free(other);
}

int main(void)
{
    T = tg_tape_new();
    by_hand(TG_F64);
    by_hand(TG_F32);
    for (size_t i = 0; i < sizeof refs / sizeof refs[0]; i++)
        against_pytorch(&refs[i]);
    all_params();
    schedules();
    clipping();
    errors();
    tg_tape_free(T);
    return tap_done();
}
