/* Leaves, element access, copies with conversion, names, and the seeded
 * random generator with its initialisers. */
#include "tap.h"
#include "tapegrad.h"

#include <stdlib.h>


static void leaves(void)
{
    tg_tape *t = tg_tape_new();
    tg_tensor *w = tg_param(t, "W1", TG_F32, 2, SHAPE(3, 4));
    ok(w && tg_rank(w) == 2 && tg_dim(w, 0) == 3 && tg_dim(w, -1) == 4 && tg_size(w) == 12,
       "param 3x4: rank, dims, size");
    ok(tg_kind_of(w) == TG_PARAM && tg_requires_grad(w) && tg_dtype_of(w) == TG_F32,
       "kind param, requires grad, f32");
    bool zero = true;
    for (size_t i = 0; i < 12; i++)
        zero &= tg_get(w, i) == 0;
    ok(zero, "a new leaf is zero-filled");
    is_str(tg_name(w), "W1", "name kept");
    is_str(tg_op_name(w), "param", "op name of a param");
    char buf[32];
    is_str(tg_shape_str(w, buf, sizeof buf), "3x4", "shape string");
    tg_tensor *s = tg_const(t, NULL, TG_F64, 0, NULL);
    ok(s && tg_size(s) == 1 && tg_rank(s) == 0 && tg_name(s) == NULL, "rank-0 constant, unnamed");
    is_str(tg_shape_str(s, buf, sizeof buf), "scalar", "scalar shape string");
    tg_tensor *x = tg_input(t, "x", TG_F64, 4, SHAPE(2, 1, 3, 2));
    ok(x && tg_size(x) == 12 && !tg_requires_grad(x), "rank-4 input, no grad");
    ok(tg_tape_leaves(t) == 3 && tg_tape_leaf(t, 2) == x && tg_tape_leaf(t, 3) == NULL,
       "leaves listed in creation order");
    ok(tg_tape_find(t, "x") == x && tg_tape_find(t, "nope") == NULL, "find a leaf by name");
    ok(tg_set_name(x, "renamed \"x\"\n") == 0, "rename");
    is_str(tg_name(x), "renamed \"x\"\n", "any characters in a name");
    tg_set_name(x, NULL);
    ok(tg_name(x) == NULL, "remove a name");

    /* copies with dtype conversion */
    double d[12];
    for (int i = 0; i < 12; i++)
        d[i] = i * 0.5 - 2;
    ok(tg_copy_in(w, d, TG_F64, 12) == 0, "copy f64 into f32");
    ok(tg_get(w, 3) == -0.5 && tg_data_f32(w)[11] == 3.5f, "values converted");
    int32_t iv[12];
    tg_tensor *lab = tg_input(t, "lab", TG_I32, 1, SHAPE(12));
    ok(tg_copy_in(lab, (float[]){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, -10, 11}, TG_F32, 12) == 0,
       "integral floats into i32");
    tg_copy_out(lab, iv, TG_I32, 12);
    ok(iv[10] == -10 && iv[11] == 11, "i32 copy out");
    float back[12];
    ok(tg_copy_out(w, back, TG_F32, 12) == 0 && back[0] == -2.0f, "copy out");
    ok(tg_fill(w, 0.25) == 0 && tg_get(w, 7) == 0.25, "fill");
    ok(tg_set(w, 5, 9) == 0 && tg_get(w, 5) == 9, "set / get");
    tg_tensor *one = tg_leaf_from(t, TG_CONST, "one", TG_F64, 1, SHAPE(1), (double[]){42});
    ok(tg_item(one) == 42, "item of a 1-element tensor");
    ok(tg_data(w) == (void *)tg_data_f32(w) && tg_data_f64(x) != NULL && tg_data_i32(lab),
       "typed data pointers");
    tg_tensor *sc = tg_scalar(t, TG_F32, 2.5);
    ok(sc && tg_item(sc) == 2.5 && tg_tape_leaves(t) == 5, "tg_scalar is not a leaf");
    ok(tg_tape_error(t) == NULL, "no error so far");
    tg_tape_free(t);
}

static void rng(void)
{
    tg_rng r;
    tg_rng_seed(&r, 42);
    /* reference values from an independent implementation (Python) */
    ok(tg_rng_next(&r) == 0x15780b2e0c2ec716u && tg_rng_next(&r) == 0x6104d9866d113a7eu &&
           tg_rng_next(&r) == 0xae17533239e499a1u,
       "xoshiro256** from splitmix64(42) matches the reference stream");
    tg_rng_seed(&r, 0);
    ok(tg_rng_next(&r) == 0x99ec5f36cb75f2b4u, "seed 0 matches the reference stream");
    tg_rng_seed(&r, 42);
    ok(tg_rng_uniform(&r) == 0.08386297105988216 && tg_rng_uniform(&r) == 0.3789802506626686,
       "uniform = top 53 bits / 2^53");
    tg_rng_seed(&r, 7);
    near(tg_rng_normal(&r), 0.9643618527255184, 1e-15, "polar normal, 1st (vs libm log)");
    near(tg_rng_normal(&r), -0.3039301238656567, 1e-15, "polar normal, 2nd");
    near(tg_rng_normal(&r), 0.30479435832638674, 1e-15, "polar normal, 3rd");

    /* statistics of 200000 draws */
    tg_rng_seed(&r, 1);
    double s1 = 0, s2 = 0, s4 = 0, umin = 1, umax = 0;
    const int N = 200000;
    for (int i = 0; i < N; i++) {
        double z = tg_rng_normal(&r);
        s1 += z, s2 += z * z, s4 += z * z * z * z;
        double u = tg_rng_uniform(&r);
        umin = fmin(umin, u), umax = fmax(umax, u);
    }
    near(s1 / N, 0, 0.01, "normal mean ~ 0 (%.4f)", s1 / N);
    near(s2 / N, 1, 0.01, "normal variance ~ 1 (%.4f)", s2 / N);
    near(s4 / N, 3, 0.05, "normal kurtosis ~ 3 (%.3f)", s4 / N);
    ok(umin >= 0 && umax < 1 && umin < 1e-4 && umax > 1 - 1e-4, "uniform covers [0, 1)");
    int counts[7] = {0};
    for (int i = 0; i < 70000; i++)
        counts[tg_rng_below(&r, 7)]++;
    bool flat = true;
    for (int i = 0; i < 7; i++)
        flat &= abs(counts[i] - 10000) < 500;
    ok(flat, "rng_below(7) is flat");
    ok(tg_rng_below(&r, 0) == 0 && tg_rng_below(&r, 1) == 0, "rng_below(0) = rng_below(1) = 0");

    /* the same seed gives the same tensor, bit for bit */
    tg_tape *t = tg_tape_new();
    tg_tensor *a = tg_param(t, "a", TG_F32, 2, SHAPE(64, 32));
    tg_tensor *b = tg_param(t, "b", TG_F32, 2, SHAPE(64, 32));
    tg_rng_seed(&r, 5);
    tg_init_he(a, &r);
    tg_rng_seed(&r, 5);
    tg_init_he(b, &r);
    ok(!memcmp(tg_data(a), tg_data(b), 64 * 32 * 4), "same seed, same tensor");
    /* He: std sqrt(2 / fan_in), fan_in = 64 */
    double v = 0;
    for (size_t i = 0; i < 2048; i++)
        v += tg_get(a, i) * tg_get(a, i);
    near(sqrt(v / 2048), sqrt(2.0 / 64), 0.01, "He init std ~ sqrt(2/64)");
    /* a convolution weight [out 8, in 16, 3, 3]: fan_in = 16·9 = 144 (not 8·9) */
    tg_tensor *cw = tg_param(t, "cw", TG_F64, 4, SHAPE(8, 16, 3, 3));
    tg_init_he(cw, &r);
    double cv = 0;
    for (size_t i = 0; i < 8 * 16 * 9; i++)
        cv += tg_get(cw, i) * tg_get(cw, i);
    near(sqrt(cv / (8 * 16 * 9)), sqrt(2.0 / 144), 0.01, "He init of a conv weight: std ~ sqrt(2/(16*3*3))");
    /* Xavier: U(±sqrt(6/(64+32))) = U(±0.25) */
    tg_init_xavier(b, &r);
    double mx = 0;
    for (size_t i = 0; i < 2048; i++)
        mx = fmax(mx, fabs(tg_get(b, i)));
    ok(mx <= 0.25 && mx > 0.24, "Xavier bound sqrt(6/96) = 0.25 (max |w| %.4f)", mx);
    tg_init_uniform(b, &r, 3, 3);
    ok(tg_get(b, 17) == 3, "uniform on [3, 3] gives 3");
    tg_init_normal(a, &r, 10, 0);
    ok(tg_get(a, 3) == 10, "normal with stddev 0 gives the mean");
    tg_tape_free(t);
}

int main(void)
{
    leaves();
    rng();
    return tap_done();
}
