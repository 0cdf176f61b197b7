/* batch_norm and dropout: forward and backward against PyTorch (float64),
 * running statistics, training and evaluation mode switched between replays,
 * finite differences, the dropout masks (their rate, their rule, their
 * seed, their independence of the thread count), and replays that allocate
 * nothing. */
#define _POSIX_C_SOURCE 200809L
#include "tap.h"
#include "tapegrad.h"

#include "core.h" /* white box: the key dropout keeps in its node's scratch */

#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* ---- reference values --------------------------------------------------- */

/* Computed with PyTorch 1.13 in float64 by this script (output pasted):
 *   N,C,H,W = 2,3,2,2; n = 24
 *   x1[i] = ((i*37) % 23 - 11)/8                      (as [2,3,2,2])
 *   x2[i] = ((i*13) % 17 - 8)/4 + 0.5*((i//4) % 3)
 *   R[i]  = ((i*5) % 7 - 3)/2,   loss = sum(y * R)
 *   gamma = [1.5, -0.5, 2], beta = [0.25, 1, -0.75]
 *   bn = nn.BatchNorm2d(3, eps=1e-5, momentum=0.1).double(), weight, bias
 *        = gamma, beta, running_mean = [0.1, -0.2, 0.3], running_var = [1, 2, 0.5]
 *   bn.train(): y1 = bn(x1) (Y1, RM1, RV1), backward (DX1, DG1, DB1);
 *               y2 = bn(x2) (Y2, RM2, RV2)
 *   bn.eval():  y3 = bn(x2) (Y3), backward with fresh grads (DX3, DG3, DB3)
 *   x4[i] = ((i*11) % 13 - 6)/3 as [4,3]; nn.BatchNorm1d(3, eps=1e-3,
 *   momentum=0.25), weight, bias = gamma, beta, train(): Y4, RM4, RV4 */
static const double Y1[24] = {
    -1.8848534023015724, 1.067042660140108, -0.83060480857240082, 2.1212912538692796, 1.1204819043921435, 1.8433733307450042, 0.71887555641833178, 1.4417669827711925, 2.0713644965933145, -0.46786355034066857, -3.0070915972746515, 0.9428186979559886, -0.40890537108073222, 2.5429906913609481, 0.64534322264843924, -1.2523042460640694, 0.55823301722880725, 1.281124443581668, 0.15662666925499569, 0.87951809560785643, -2.4428186979559885, 1.5070915972746515, -1.0321364496593315, -3.5713644965933145};
static const double RM1[3] = {0.079062500000000008, -0.17375000000000002, 0.25750000000000001};
static const double RV1[3] = {0.9903738839285714, 1.8691964285714286, 0.53973214285714288};
static const double DX1[24] = {
    -2.3932285882598565, 2.2174684643083049, 0.27757613585139629, -1.0155189364638026, -0.94260798815080482, -0.65448196704322359, 0.53944573406012375, 0.82757175516770509, 1.161544057513149, -0.23651615632284939, -1.6345763701588478, 2.6718815821232096, 1.1772182504992299, -0.11587682181596884, -2.0557691502728774, 1.9081306461535741, 0.29692601915896721, 0.58505204026654856, -0.47001580728344877, -0.1818897861758674, -0.69692643450788949, -4.2902890726871128, 2.2114713039381693, 0.81341109010217105};
static const double DG1[3] = {-0.94882373435625433, 3.0522082446009677, 2.3981598221043172};
static const double DB1[3] = {-2, 1, 0.5};
static const double Y2[24] = {
    -2.2036161891078656, 1.6626881088802861, 0.47305601719162416, -0.71657607449703786, 1.6237085251758683, 0.29991900235361735, 0.70723885552969457, 1.1145587087057718, -3.2448341007034731, 2.0503239905855311, 0.42104457788122207, -1.2082348348230867, -1.311392120341369, 2.5549121776467825, 1.3652800859581207, 0.17564799426945862, 1.3182186352938103, 1.7255384884698877, 0.40174896564763662, 0.80906881882371384, -2.0228745411752413, -3.6521539538795502, 1.6430041374094537, 0.013724724705144853};
static const double RM2[3] = {0.07740625000000001, -0.12825, 0.33487500000000003};
static const double RV2[3] = {1.0730329241071428, 1.8544866071428572, 0.65796874999999999};
static const double Y3[24] = {
    -2.7581822574076531, 1.9479710703658011, 0.49992389258935371, -0.94812328518709377, 1.4118632678376108, 0.21858881232414074, 0.5857501832513623, 0.95291155417858386, -2.8084746268823131, 5.2047519487937075, 2.7391437716626239, 0.27353559453154086, -1.6721468740753174, 3.0340064536981366, 1.5859592759216894, 0.13791209814524186, 1.1364922396421946, 1.5036536105694163, 0.31037915505594615, 0.67754052598316772, -0.95926849403400072, -3.4248766711650838, 4.5883499045109364, 2.1227417273798532};
static const double DX3[24] = {
    -2.172070766664671, 1.4480471777764474, 0, -1.4480471777764474, -0.55074205639083229, -0.18358068546361078, 0.18358068546361078, 0.55074205639083229, 2.4656081771310832, 0, -2.4656081771310832, 3.698412265696625, 0.72402358888822371, -0.72402358888822371, -2.172070766664671, 1.4480471777764474, -0, 0.36716137092722156, -0.55074205639083229, -0.18358068546361078, -1.2328040885655416, -3.698412265696625, 2.4656081771310832, 0};
static const double DG3[3] = {1.9595095080269027, 2.3889354599379673, 2.721492075763968};
static const double DB3[3] = {-2, 1, 0.5};
static const double Y4[12] = {
    -1.4464456642986887, 0.58920233066349603, 0.89319067734601609, 1.5223342482240165, 1.5751167370711057, -3.0504669482844227, -1.0223342482240165, 0.42488326292889445, 1.5504669482844224, 1.9464456642986887, 1.4107976693365041, -2.3931906773460159};
static const double RM4[3] = {-0.16666666666666669, 0.20833333333333334, 0.041666666666666664};
static const double RV4[3] = {1.212962962962963, 1.0925925925925926, 1.0925925925925926};

/* max over i of |got_i − want_i| / max(1, |want_i|) (values, or gradients) */
static double rel_err(tg_tensor *t, const double *want, size_t n, bool grad)
{
    if (!t || tg_size(t) != n)
        return INFINITY;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double g = grad ? tg_grad_get(t, i) : tg_get(t, i);
        double e = fabs(g - want[i]) / fmax(1.0, fabs(want[i]));
        worst = isnan(e) ? INFINITY : fmax(worst, e);
    }
    return worst;
}

static tg_tensor *from(tg_tape *t, tg_kind kind, const char *name, tg_dtype dt, int rank,
                       const size_t *shape, const double *v)
{
    tg_tensor *x = tg_leaf(t, kind, name, dt, rank, shape);
    size_t n = tg_size(x);
    if (x)
        tg_copy_in(x, v, TG_F64, n);
    return x;
}

/* ---- batch_norm against PyTorch ----------------------------------------- */

static void bn_torch(tg_dtype dt)
{
    const char *dn = tg_dtype_name(dt);
    double tol = dt == TG_F64 ? 1e-13 : 2e-6;
    double x1[24], x2[24], r[24];
    for (int i = 0; i < 24; i++) {
        x1[i] = ((i * 37) % 23 - 11) / 8.0;
        x2[i] = ((i * 13) % 17 - 8) / 4.0 + 0.5 * ((i / 4) % 3);
        r[i] = ((i * 5) % 7 - 3) / 2.0;
    }
    tg_tape *t = tg_tape_new();
    tg_tensor *x = from(t, TG_PARAM, "x", dt, 4, SHAPE(2, 3, 2, 2), x1);
    tg_tensor *g = from(t, TG_PARAM, "gamma", dt, 1, SHAPE(3), (double[]){1.5, -0.5, 2});
    tg_tensor *b = from(t, TG_PARAM, "beta", dt, 1, SHAPE(3), (double[]){0.25, 1, -0.75});
    tg_tensor *rm = from(t, TG_INPUT, "rm", dt, 1, SHAPE(3), (double[]){0.1, -0.2, 0.3});
    tg_tensor *rv = from(t, TG_CONST, "rv", dt, 1, SHAPE(3), (double[]){1, 2, 0.5});
    tg_tensor *R = from(t, TG_CONST, "R", dt, 4, SHAPE(2, 3, 2, 2), r);
    ok(tg_training(t), "%s: a new tape is in training mode", dn);
    tg_tensor *y = tg_batch_norm(x, g, b, rm, rv, 0.1, 1e-5);
    tg_tensor *loss = tg_sum(tg_mul(y, R));
    ok(loss != NULL, "%s: batch_norm records (%s)", dn, tg_tape_error(t) ? tg_tape_error(t) : "ok");
    ok(rel_err(y, Y1, 24, false) <= tol, "%s: training forward = PyTorch (err %.2g)", dn,
       rel_err(y, Y1, 24, false));
    ok(rel_err(rm, RM1, 3, false) <= tol && rel_err(rv, RV1, 3, false) <= tol,
       "%s: running mean and (unbiased) variance updated once (err %.2g, %.2g)", dn,
       rel_err(rm, RM1, 3, false), rel_err(rv, RV1, 3, false));
    ok(tg_backward(loss) == 0, "%s: backward", dn);
    ok(rel_err(x, DX1, 24, true) <= tol && rel_err(g, DG1, 3, true) <= tol &&
           rel_err(b, DB1, 3, true) <= tol,
       "%s: training dx, dgamma, dbeta = PyTorch (err %.2g, %.2g, %.2g)", dn,
       rel_err(x, DX1, 24, true), rel_err(g, DG1, 3, true), rel_err(b, DB1, 3, true));

    /* backward follows the mode forward ran in, not the current one */
    tg_set_training(t, false);
    tg_zero_grad(t);
    int rc = tg_backward(loss);
    double e = rel_err(x, DX1, 24, true);
    ok(rc == 0 && e <= tol,
       "%s: evaluation mode set after the forward: backward still goes through the batch "
       "statistics (err %.2g)", dn, e);
    tg_set_training(t, true);

    /* a second training forward (replay, new x) */
    tg_copy_in(x, x2, TG_F64, 24);
    rc = tg_replay(t);
    e = rel_err(y, Y2, 24, false);
    ok(rc == 0 && e <= tol, "%s: replay on x2 = PyTorch (err %.2g)", dn, e);
    ok(rel_err(rm, RM2, 3, false) <= tol && rel_err(rv, RV2, 3, false) <= tol,
       "%s: running statistics after 2 training forwards (err %.2g, %.2g)", dn,
       rel_err(rm, RM2, 3, false), rel_err(rv, RV2, 3, false));

    /* evaluation mode, switched without recording again */
    ok(tg_set_training(t, false) == true && !tg_training(t), "%s: tg_set_training returns the old mode", dn);
    double rm_before[3], rv_before[3];
    tg_copy_out(rm, rm_before, TG_F64, 3);
    tg_copy_out(rv, rv_before, TG_F64, 3);
    rc = tg_replay(t);
    e = rel_err(y, Y3, 24, false);
    ok(rc == 0 && e <= tol,
       "%s: evaluation replay uses the running statistics = PyTorch eval (err %.2g)", dn, e);
    tg_replay(t);
    bool same = true;
    for (int i = 0; i < 3; i++)
        same = same && tg_get(rm, i) == rm_before[i] && tg_get(rv, i) == rv_before[i];
    ok(same, "%s: evaluation forwards leave the running statistics unchanged", dn);
    tg_zero_grad(t);
    rc = tg_backward(loss);
    double ex = rel_err(x, DX3, 24, true), eg = rel_err(g, DG3, 3, true);
    e = rel_err(b, DB3, 3, true);
    ok(rc == 0 && ex <= tol && eg <= tol && e <= tol,
       "%s: evaluation dx = γ/σ·dy, dgamma, dbeta = PyTorch (err %.2g, %.2g, %.2g)", dn, ex,
       eg, e);

    /* and back to training */
    tg_set_training(t, true);
    rc = tg_replay(t);
    e = rel_err(y, Y2, 24, false);
    ok(rc == 0 && e <= tol,
       "%s: back in training mode the batch statistics are used (err %.2g)", dn, e);
    tg_tape_free(t);

    /* rank 2 [N,C]: over N */
    t = tg_tape_new();
    double x4[12];
    for (int i = 0; i < 12; i++)
        x4[i] = ((i * 11) % 13 - 6) / 3.0;
    x = from(t, TG_INPUT, "x4", dt, 2, SHAPE(4, 3), x4);
    g = from(t, TG_PARAM, "gamma", dt, 1, SHAPE(3), (double[]){1.5, -0.5, 2});
    b = from(t, TG_PARAM, "beta", dt, 1, SHAPE(3), (double[]){0.25, 1, -0.75});
    rm = from(t, TG_INPUT, "rm", dt, 1, SHAPE(3), (double[]){0, 0, 0});
    rv = from(t, TG_INPUT, "rv", dt, 1, SHAPE(3), (double[]){1, 1, 1});
    y = tg_batch_norm(x, g, b, rm, rv, 0.25, 1e-3);
    ok(rel_err(y, Y4, 12, false) <= tol && rel_err(rm, RM4, 3, false) <= tol &&
           rel_err(rv, RV4, 3, false) <= tol,
       "%s: [N,C] input = PyTorch BatchNorm1d, with its running statistics (err %.2g)", dn,
       rel_err(y, Y4, 12, false));
    tg_tape_free(t);
}

/* ---- batch_norm: finite differences ------------------------------------- */

/* loss = Σ batch_norm(x)·R on a random draw; FD with respect to x, γ, β */
static void bn_fd(const char *what, int rank, const size_t *shape, bool training, uint64_t seed)
{
    tg_rng rng;
    tg_rng_seed(&rng, seed);
    tg_tape *t = tg_tape_new();
    tg_set_training(t, training);
    size_t C = shape[1];
    tg_tensor *x = tg_param(t, "x", TG_F64, rank, shape);
    tg_tensor *g = tg_param(t, "gamma", TG_F64, 1, &C);
    tg_tensor *b = tg_param(t, "beta", TG_F64, 1, &C);
    tg_tensor *rm = tg_input(t, "rm", TG_F64, 1, &C);
    tg_tensor *rv = tg_input(t, "rv", TG_F64, 1, &C);
    tg_tensor *R = tg_const(t, "R", TG_F64, rank, shape);
    tg_init_normal(x, &rng, 0.5, 2);
    tg_init_uniform(g, &rng, 0.5, 2);
    tg_init_uniform(b, &rng, -1, 1);
    tg_init_uniform(rm, &rng, -0.5, 0.5);
    tg_init_uniform(rv, &rng, 0.5, 2);
    tg_init_uniform(R, &rng, -1, 1);
    tg_tensor *loss = tg_sum(tg_mul(tg_batch_norm(x, g, b, rm, rv, 0.1, 1e-5), R));
    tg_check c;
    int rc = loss ? tg_check_fd(loss, 3, (tg_tensor *[]){x, g, b}, 0, &c) : -1;
    ok(rc == 0 && c.max_rel <= 1e-7, "batch_norm FD, %s mode, %s: max rel err %.2g (<= 1e-7)",
       training ? "training" : "evaluation", what, rc ? INFINITY : c.max_rel);
    if (rc)
        diag("%s", tg_tape_error(t));
    tg_tape_free(t);
}

static void bn_grad(void)
{
    for (int tr = 1; tr >= 0; tr--) {
        bool training = tr;
        bn_fd("[3,2,3,2]", 4, SHAPE(3, 2, 3, 2), training, 1);
        bn_fd("N=1 [1,3,2,3]", 4, SHAPE(1, 3, 2, 3), training, 2);
        bn_fd("C=1 [4,1,2,2]", 4, SHAPE(4, 1, 2, 2), training, 3);
        bn_fd("H=W=1 [5,2,1,1]", 4, SHAPE(5, 2, 1, 1), training, 4);
        bn_fd("W=9 (a run of 8 and a tail) [2,2,1,9]", 4, SHAPE(2, 2, 1, 9), training, 5);
        bn_fd("[N,C] [5,4]", 2, SHAPE(5, 4), training, 6);
        bn_fd("[N,C] N=2 C=1 [2,1]", 2, SHAPE(2, 1), training, 7);
    }
    bn_fd("eval N=1 [1,2] (a single value per channel)", 2, SHAPE(1, 2), false, 8);
    bn_fd("eval [1,3,1,1]", 4, SHAPE(1, 3, 1, 1), false, 9);

    /* gamma and beta the same tensor: both contributions land */
    tg_tape *t = tg_tape_new();
    tg_tensor *x = tg_param(t, "x", TG_F64, 2, SHAPE(4, 3));
    tg_tensor *gb = tg_param(t, "gb", TG_F64, 1, SHAPE(3));
    tg_tensor *rm = tg_input(t, "rm", TG_F64, 1, SHAPE(3)), *rv = tg_input(t, "rv", TG_F64, 1, SHAPE(3));
    tg_rng rng;
    tg_rng_seed(&rng, 11);
    tg_init_normal(x, &rng, 0, 1);
    tg_init_uniform(gb, &rng, 0.5, 1.5);
    tg_fill(rv, 1);
    tg_tensor *R = tg_const(t, "R", TG_F64, 2, SHAPE(4, 3));
    tg_init_uniform(R, &rng, -1, 1);
    tg_tensor *loss = tg_sum(tg_mul(tg_batch_norm(x, gb, gb, rm, rv, 0.1, 1e-5), R));
    tg_check c;
    int rc = tg_check_fd(loss, 2, (tg_tensor *[]){x, gb}, 0, &c);
    ok(rc == 0 && c.max_rel <= 1e-7, "batch_norm FD with gamma = beta (one tensor): %.2g",
       rc ? INFINITY : c.max_rel);
    tg_tape_free(t);
}

/* ---- batch_norm: modes, errors, threads --------------------------------- */

static void bn_modes(void)
{
    /* one value per channel: refused in training at record time and at a
     * replay after switching; fine in evaluation */
    tg_tape *t = tg_tape_new();
    tg_tensor *x = tg_param(t, "x", TG_F32, 4, SHAPE(1, 2, 1, 1));
    tg_tensor *g = tg_param(t, "g", TG_F32, 1, SHAPE(2)), *b = tg_param(t, "b", TG_F32, 1, SHAPE(2));
    tg_tensor *rm = tg_input(t, "rm", TG_F32, 1, SHAPE(2)), *rv = tg_input(t, "rv", TG_F32, 1, SHAPE(2));
    tg_fill(rv, 1);
    TAPE_FAILS(t, !tg_batch_norm(x, g, b, rm, rv, 0.1, 1e-5),
               "batch_norm: expected more than 1 value per channel in training mode, got input 1x2x1x1");
    tg_set_training(t, false);
    tg_tensor *y = tg_batch_norm(x, g, b, rm, rv, 0.1, 1e-5);
    ok(y != NULL, "one value per channel records in evaluation mode");
    tg_set_training(t, true);
    TAPE_FAILS(t, tg_replay(t) != 0,
               "batch_norm (node 0): expected more than 1 value per channel in training mode");
    TAPE_FAILS(t, tg_backward(tg_sum(y)) != 0, "replay");
    tg_set_training(t, false);
    ok(tg_replay(t) == 0, "... and replays again once back in evaluation mode");

    /* running statistics turned into parameters after recording: the next
     * forward refuses */
    tg_set_requires_grad(rv, true);
    TAPE_FAILS(t, tg_replay(t) != 0, "running_var ('rv') requires a gradient");
    tg_tape_free(t);

    /* 1 and 2 threads: the same values and gradients, bit for bit, on a
     * tensor large enough to be split over channels */
    float *v1 = NULL, *g1 = NULL;
    size_t n = 4 * 16 * 24 * 24;
    for (int threads = 1; threads <= 2; threads++) {
        tg_set_threads(threads);
        t = tg_tape_new();
        x = tg_param(t, "x", TG_F32, 4, SHAPE(4, 16, 24, 24));
        g = tg_param(t, "g", TG_F32, 1, SHAPE(16));
        b = tg_param(t, "b", TG_F32, 1, SHAPE(16));
        rm = tg_input(t, "rm", TG_F32, 1, SHAPE(16));
        rv = tg_input(t, "rv", TG_F32, 1, SHAPE(16));
        tg_rng rng;
        tg_rng_seed(&rng, 5);
        tg_init_normal(x, &rng, 3, 2);
        tg_init_uniform(g, &rng, 0.5, 2);
        tg_init_uniform(b, &rng, -1, 1);
        tg_fill(rv, 1);
        tg_tensor *R = tg_const(t, "R", TG_F32, 4, SHAPE(4, 16, 24, 24));
        tg_init_uniform(R, &rng, -1, 1);
        y = tg_batch_norm(x, g, b, rm, rv, 0.1, 1e-5);
        tg_backward(tg_sum(tg_mul(y, R)));
        if (threads == 1) {
            v1 = malloc(n * sizeof *v1);
            g1 = malloc(n * sizeof *g1);
            memcpy(v1, tg_data(y), n * sizeof *v1);
            memcpy(g1, tg_grad(x), n * sizeof *g1);
        } else {
            ok(!memcmp(v1, tg_data(y), n * sizeof *v1) && !memcmp(g1, tg_grad(x), n * sizeof *g1),
               "batch_norm: 1 and 2 threads give the same output and gradient, bit for bit");
        }
        tg_tape_free(t);
    }
    free(v1);
    free(g1);
    tg_set_threads(1);
}

/* ---- dropout ------------------------------------------------------------ */

/* The rule of the header, written out here: element i of a mask with key k
 * is kept iff u_i >= p, u_i = (splitmix64 of k + i, counting from 1) >> 11
 * as a multiple of 2^-53. */
static bool kept(uint64_t key, uint64_t i, double p)
{
    uint64_t z = key + 0x9e3779b97f4a7c15u * (i + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    z ^= z >> 31;
    return ldexp((double)(z >> 11), -53) >= p;
}

/* the key of dropout output y's last forward (white box: scratch) */
static uint64_t key_of(tg_tensor *y) { return *(const uint64_t *)y->node->scratch; }

static size_t zeros(tg_tensor *y)
{
    size_t z = 0;
    const float *v = tg_data_f32(y);
    for (size_t i = 0; i < tg_size(y); i++)
        z += v[i] == 0;
    return z;
}

static void dropout(void)
{
    const size_t n = (size_t)1 << 20;
    const double p = 0.3;
    tg_tape *t = tg_tape_new();
    tg_tensor *x = tg_param(t, "x", TG_F32, 2, SHAPE(1024, 1024));
    tg_rng rng;
    tg_rng_seed(&rng, 3);
    tg_init_uniform(x, &rng, 0.5, 1.5); /* no zeros of its own */
    tg_tensor *y = tg_dropout(x, p);
    ok(y != NULL, "dropout records");
    /* the rate: binomial(n, p), within 5 standard deviations */
    double z = (double)zeros(y), sd = sqrt((double)n * p * (1 - p));
    ok(fabs(z - (double)n * p) <= 5 * sd, "dropout p=0.3 zeroes %.0f of %zu (expected %.0f ± %.0f)",
       z, n, (double)n * p, 5 * sd);
    /* the mask follows the documented rule, and kept values are x/(1-p) */
    const float *xv = tg_data_f32(x), *yv = tg_data_f32(y);
    float scale = (float)(1 / (1 - p));
    size_t bad = 0;
    uint64_t k1 = key_of(y);
    for (size_t i = 0; i < n; i++)
        bad += yv[i] != (kept(k1, i, p) ? xv[i] * scale : 0.0f);
    ok(bad == 0, "each element kept iff u_i >= p, kept ones times (float)(1/(1-p)) exactly (%zu differ)",
       bad);
    /* the gradient is mask·scale·dy */
    float *dy = malloc(n * sizeof *dy);
    for (size_t i = 0; i < n; i++)
        dy[i] = (float)tg_rng_uniform(&rng) - 0.5f;
    ok(tg_backward_vjp(y, dy) == 0, "dropout backward");
    const float *dx = tg_grad(x);
    bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += dx[i] != (kept(k1, i, p) ? dy[i] * scale : 0.0f);
    ok(bad == 0, "dx = mask · 1/(1-p) · dy exactly (%zu differ)", bad);

    /* another replay, another mask; backward uses the newest */
    float *first = malloc(n * sizeof *first);
    memcpy(first, yv, n * sizeof *first);
    tg_replay(t);
    uint64_t k2 = key_of(y);
    ok(k2 != k1 && memcmp(first, yv, n * sizeof *first) != 0, "a replay draws a new mask");
    tg_zero_grad(t);
    tg_backward_vjp(y, dy);
    bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += dx[i] != (kept(k2, i, p) ? dy[i] * scale : 0.0f);
    ok(bad == 0, "backward uses the mask of the last forward (%zu differ)", bad);

    /* the same seed, the same masks; with 2 threads too */
    tg_tape_seed(t, 77);
    tg_set_threads(1);
    tg_replay(t);
    memcpy(first, yv, n * sizeof *first);
    uint64_t k3 = key_of(y);
    tg_replay(t);
    tg_tape_seed(t, 77);
    tg_set_threads(2);
    tg_replay(t);
    ok(key_of(y) == k3 && !memcmp(first, yv, n * sizeof *first),
       "tg_tape_seed: the same seed gives the same mask, with 1 thread and with 2");
    tg_set_threads(1);
    tg_tape *t2 = tg_tape_new();
    tg_tensor *x2 = tg_param(t2, "x", TG_F32, 2, SHAPE(1024, 1024));
    tg_copy_in(x2, xv, TG_F32, n);
    tg_tape_seed(t2, 77);
    tg_tensor *y2 = tg_dropout(x2, p);
    ok(!memcmp(first, tg_data_f32(y2), n * sizeof *first),
       "another tape with the same seed draws the same mask");
    tg_tape_free(t2);

    /* evaluation: the identity; backward passes dy through */
    tg_set_training(t, false);
    tg_replay(t);
    ok(!memcmp(xv, yv, n * sizeof *yv), "evaluation mode: y = x");
    tg_zero_grad(t);
    tg_backward_vjp(y, dy);
    ok(!memcmp(dx, dy, n * sizeof *dy), "evaluation mode: dx = dy");
    tg_set_training(t, true);
    tg_tensor *y0 = tg_dropout(x, 0);
    ok(y0 && !memcmp(xv, tg_data_f32(y0), n * sizeof *xv), "p = 0 in training mode: y = x");
    free(dy);
    free(first);
    tg_tape_free(t);

    /* finite differences in training mode: the copy keeps one mask */
    t = tg_tape_new();
    tg_tensor *a = tg_param(t, "a", TG_F64, 2, SHAPE(5, 7));
    tg_init_uniform(a, &rng, -2, 2);
    tg_tensor *R = tg_const(t, "R", TG_F64, 2, SHAPE(5, 7));
    tg_init_uniform(R, &rng, -1, 1);
    tg_tensor *loss = tg_sum(tg_mul(tg_tanh(tg_dropout(tg_scale(a, 1.5), 0.4)), R));
    tg_check c;
    int rc = tg_check_fd(loss, 1, &a, 0, &c);
    ok(rc == 0 && c.max_rel <= 1e-7, "dropout FD in training mode: max rel err %.2g (<= 1e-7)",
       rc ? INFINITY : c.max_rel);
    tg_tape_free(t);
}

/* ---- a replayed step allocates nothing ---------------------------------- */

static void no_alloc(void)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *x = tg_input(t, "x", TG_F32, 4, SHAPE(8, 4, 5, 5));
    tg_tensor *g = tg_param(t, "g", TG_F32, 1, SHAPE(4)), *b = tg_param(t, "b", TG_F32, 1, SHAPE(4));
    tg_tensor *rm = tg_input(t, "rm", TG_F32, 1, SHAPE(4)), *rv = tg_input(t, "rv", TG_F32, 1, SHAPE(4));
    tg_rng rng;
    tg_rng_seed(&rng, 9);
    tg_init_normal(x, &rng, 0, 1);
    tg_fill(g, 1);
    tg_fill(rv, 1);
    tg_tensor *h = tg_dropout(tg_relu(tg_batch_norm(x, g, b, rm, rv, 0.1, 1e-5)), 0.25);
    tg_tensor *loss = tg_mean(tg_mul(h, h));
    tg_backward(loss);
    int64_t before = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
    int rc = 0;
    for (int step = 0; step < 4; step++) {
        tg_set_training(t, step != 2);
        rc |= tg_replay(t);
        tg_zero_grad(t);
        rc |= tg_backward(loss);
    }
    int64_t after = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
    ok(rc == 0 && after == before,
       "replay and backward of batch_norm and dropout, in both modes, allocate nothing (%lld)",
       (long long)(after - before));
    tg_tape_free(t);
}

/* ---- speed (TG_NORM_SPEED=1: reported, not asserted) ---------------------- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static void speed(int threads, size_t N, size_t C, size_t H)
{
    tg_set_threads(threads);
    tg_tape *t = tg_tape_new(), *u = tg_tape_new();
    tg_tensor *x = tg_param(t, "x", TG_F32, 4, SHAPE(N, C, H, H));
    tg_tensor *g = tg_param(t, "g", TG_F32, 1, &C), *b = tg_param(t, "b", TG_F32, 1, &C);
    tg_tensor *rm = tg_input(t, "rm", TG_F32, 1, &C), *rv = tg_input(t, "rv", TG_F32, 1, &C);
    tg_tensor *xd = tg_param(u, "x", TG_F32, 4, SHAPE(N, C, H, H));
    tg_rng rng;
    tg_rng_seed(&rng, 1);
    tg_init_normal(x, &rng, 0, 1);
    tg_fill(xd, 1);
    tg_fill(g, 1);
    tg_fill(rv, 1);
    tg_tensor *y = tg_batch_norm(x, g, b, rm, rv, 0.1, 1e-5);
    tg_tensor *d = tg_dropout(xd, 0.5);
    float *seed = calloc(tg_size(y), sizeof *seed);
    for (size_t i = 0; i < tg_size(y); i++)
        seed[i] = 1;
    double ms[4] = {1e30, 1e30, 1e30, 1e30};
    for (int r = 0; r < 5; r++) {
        double t0 = now_ms();
        tg_replay(t);
        double t1 = now_ms();
        tg_backward_vjp(y, seed);
        double t2 = now_ms();
        tg_replay(u);
        double t3 = now_ms();
        tg_backward_vjp(d, seed);
        double t4 = now_ms();
        ms[0] = fmin(ms[0], t1 - t0), ms[1] = fmin(ms[1], t2 - t1);
        ms[2] = fmin(ms[2], t3 - t2), ms[3] = fmin(ms[3], t4 - t3);
    }
    diag("%zux%zux%zux%zu f32, %s, %d thread%s: batch_norm forward %.2f ms, backward %.2f ms; "
         "dropout forward %.2f ms, backward %.2f ms",
         N, C, H, H, tg_isa(), threads, threads > 1 ? "s" : "", ms[0], ms[1], ms[2], ms[3]);
    free(seed);
    tg_tape_free(t);
    tg_tape_free(u);
    tg_set_threads(1);
}

int main(void)
{
    bn_torch(TG_F64);
    bn_torch(TG_F32);
    bn_grad();
    bn_modes();
    dropout();
    no_alloc();
    if (getenv("TG_NORM_SPEED")) {
        for (int th = 1; th <= 2; th++) {
            speed(th, 128, 32, 28);
            speed(th, 128, 64, 14);
        }
    }
    return tap_done();
}
