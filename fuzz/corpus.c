/* Writes the seed corpora of the fuzz targets (fuzz/corpus/{idx,load,graph}):
 * a handful of small valid and nearly-valid inputs each, always the same
 * bytes.  Run from the source directory after building with -Dfuzz=true:
 *     BUILD/fuzz/fuzz_corpus fuzz/corpus
 * The input formats are described at the top of each fuzz_*.c. */
#include "ops.h" /* TG_OP_<name>: the op ids of ops/ops.def */
#include "tapegrad.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef TG_HAVE_ZLIB
#include <zlib.h>
#endif

static const char *root;

typedef struct buf {
    unsigned char b[8192];
    size_t n;
} buf;

static void put(buf *f, const void *p, size_t n)
{
    if (f->n + n > sizeof f->b) {
        fprintf(stderr, "corpus: buffer full\n");
        exit(1);
    }
    memcpy(f->b + f->n, p, n);
    f->n += n;
}

static void byte(buf *f, unsigned v)
{
    unsigned char c = (unsigned char)v;
    put(f, &c, 1);
}

static void save(const char *sub, const char *name, const buf *f)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, sub);
    mkdir(root, 0755);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/%s/%s", root, sub, name);
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(f->b, 1, f->n, fp) != f->n || fclose(fp)) {
        fprintf(stderr, "corpus: cannot write %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

/* ---- IDX ------------------------------------------------------------------ */

static void be32(buf *f, uint32_t v)
{
    for (int i = 3; i >= 0; i--)
        byte(f, (v >> (8 * i)) & 0xFF);
}

/* An IDX file: header, then n_data bytes of data (pattern i * 37 + 11). */
static void idx(buf *f, int type, int rank, const uint32_t *dims, size_t n_data)
{
    byte(f, 0), byte(f, 0), byte(f, (unsigned)type), byte(f, (unsigned)rank);
    for (int i = 0; i < rank; i++)
        be32(f, dims[i]);
    for (size_t i = 0; i < n_data; i++)
        byte(f, (unsigned)(i * 37 + 11) & 0xFF);
}

/* gzip of src appended to f (nothing without zlib). */
static int gz(buf *f, const buf *src)
{
#ifdef TG_HAVE_ZLIB
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    z.next_in = (Bytef *)(uintptr_t)src->b;
    z.avail_in = (uInt)src->n;
    z.next_out = f->b + f->n;
    z.avail_out = (uInt)(sizeof f->b - f->n);
    int r = deflate(&z, Z_FINISH);
    f->n += z.total_out;
    deflateEnd(&z);
    return r == Z_STREAM_END ? 0 : -1;
#else
    (void)f, (void)src;
    return -1;
#endif
}

static void corpus_idx(void)
{
    buf f, p;
    /* mode 0: raw files of every element type */
    static const struct {
        const char *name;
        int type, rank;
        uint32_t dims[3];
        size_t bytes;
    } raw[] = {
        {"raw_u8_images", 0x08, 3, {2, 3, 3}, 18},
        {"raw_u8_labels", 0x08, 1, {5}, 5},
        {"raw_i8", 0x09, 2, {2, 2}, 4},
        {"raw_i16", 0x0B, 1, {3}, 6},
        {"raw_i32", 0x0C, 2, {1, 2}, 8},
        {"raw_f32", 0x0D, 2, {2, 2}, 16},
        {"raw_f64", 0x0E, 1, {2}, 16},
    };
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
        f.n = 0;
        byte(&f, 0x00);
        idx(&f, raw[i].type, raw[i].rank, raw[i].dims, raw[i].bytes);
        save("idx", raw[i].name, &f);
    }
    /* nearly valid */
    f.n = 0, byte(&f, 0), idx(&f, 0x08, 3, (uint32_t[]){2, 3, 3}, 17);
    save("idx", "bad_truncated", &f);
    f.n = 0, byte(&f, 0), idx(&f, 0x08, 1, (uint32_t[]){4}, 6);
    save("idx", "bad_trailing", &f);
    f.n = 0, byte(&f, 0);
    idx(&f, 0x0E, 4, (uint32_t[]){0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}, 0);
    save("idx", "bad_overflow", &f);
    f.n = 0, byte(&f, 0), idx(&f, 0x0A, 1, (uint32_t[]){1}, 1);
    save("idx", "bad_type", &f);

    /* a real .gz file (mode 0: the reader detects it) */
    p.n = 0;
    idx(&p, 0x08, 3, (uint32_t[]){3, 2, 2}, 12);
    f.n = 0;
    byte(&f, 0x00);
    if (gz(&f, &p) == 0)
        save("idx", "gz_u8_images", &f);
    /* mode 2: the target compresses the payload; 6 and 10: cut, garbage */
    static const unsigned gz_modes[] = {0x02, 0x06, 0x0A, 0x0E};
    static const char *const gz_names[] = {"gz_by_target", "gz_cut", "gz_trailing",
                                           "gz_flipped"};
    for (int i = 0; i < 4; i++) {
        f.n = 0;
        byte(&f, gz_modes[i]);
        idx(&f, 0x0D, 2, (uint32_t[]){2, 3}, 24);
        save("idx", gz_names[i], &f);
    }

    /* mode 1: a data set: split point, 8 choice bytes (normalize, resize,
     * head, batches), images, labels; raw, images gzipped by the target,
     * both gzipped, and a .gz file as such */
    static const unsigned ds_modes[] = {0x01, 0x03, 0x07, 0x01};
    static const unsigned char choices[4][8] = {{0x00, 4, 4, 3, 2, 0x01},
                                                {0x02, 2, 3, 4, 3, 0x03},
                                                {0x83, 16, 1, 9, 8, 0x2A},
                                                {0x01, 0, 7, 1, 1, 0x3F}};
    for (int v = 0; v < 4; v++) {
        buf im, lb, gim;
        im.n = lb.n = gim.n = 0;
        idx(&im, 0x08, 3, (uint32_t[]){4, 4, 4}, 64);
        idx(&lb, 0x08, 1, (uint32_t[]){4}, 0);
        for (int i = 0; i < 4; i++)
            byte(&lb, (unsigned)(i % 3));
        const buf *a = &im;
        if (v == 3 && gz(&gim, &im) == 0)
            a = &gim;
        f.n = 0;
        byte(&f, ds_modes[v]);
        byte(&f, a->n & 0xFF), byte(&f, a->n >> 8);
        put(&f, choices[v], 8);
        put(&f, a->b, a->n);
        put(&f, lb.b, lb.n);
        char name[32];
        snprintf(name, sizeof name, "dataset_%d", v);
        save("idx", name, &f);
    }
}

/* ---- saved models (fuzz_load) ---------------------------------------------- */

static void corpus_load(void)
{
    /* the network of fuzz_load.c */
    tg_tape *t = tg_tape_new();
    tg_tensor *all[7];
    all[0] = tg_param(t, "W1", TG_F32, 2, (size_t[]){3, 4});
    all[1] = tg_param(t, "b1", TG_F32, 1, (size_t[]){4});
    all[2] = tg_param(t, "W2", TG_F64, 2, (size_t[]){4, 2});
    all[3] = tg_param(t, "b2", TG_F64, 1, (size_t[]){2});
    all[4] = tg_param(t, "\xcf\x80", TG_F64, 0, NULL);
    all[5] = tg_input(t, "lab", TG_I32, 1, (size_t[]){3});
    all[6] = tg_input(t, "x", TG_F32, 2, (size_t[]){2, 3});
    for (int i = 0; i < 7; i++)
        for (size_t k = 0; k < tg_size(all[i]); k++)
            tg_set(all[i], k, (double)((i * 5 + (int)k) % 7) - 3);
    char dir[] = "/tmp/tg-corpus-XXXXXX";
    if (!mkdtemp(dir)) {
        fprintf(stderr, "corpus: mkdtemp: %s\n", strerror(errno));
        exit(1);
    }
    char path[64];
    snprintf(path, sizeof path, "%s/m.tg", dir);
    /* (mode, mask, which tensors saved, file name) */
    static const struct {
        unsigned mode, mask;
        int n_saved; /* 0: the parameters, 7: all named tensors */
        const char *name;
    } v[] = {
        {0x00, 0x00, 0, "params_all"},
        {0x10, 0x00, 0, "params_round_trip"},
        {0x01, 0x00, 7, "list_all"},
        {0x1D, 0x03, 7, "list_all_repaired"},
        {0x02, 0x65, 7, "list_subset"},
        {0x0C, 0x00, 0, "params_repaired"},
        {0x03, 0x01, 0, "bad_list_twice"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        if (tg_save(t, path, v[i].n_saved, v[i].n_saved ? all : NULL)) {
            fprintf(stderr, "corpus: %s\n", tg_tape_error(t));
            exit(1);
        }
        buf f;
        f.n = 0;
        byte(&f, v[i].mode), byte(&f, v[i].mask);
        FILE *fp = fopen(path, "rb");
        f.n += fread(f.b + f.n, 1, sizeof f.b - f.n, fp);
        fclose(fp);
        save("load", v[i].name, &f);
        if (i == 0) { /* nearly valid: one byte of data changed (CRC mismatch), cut */
            f.b[f.n - 9] ^= 0x40;
            save("load", "bad_crc", &f);
            f.b[f.n - 9] ^= 0x40;
            f.n -= 10;
            save("load", "bad_truncated", &f);
        }
    }
    unlink(path);
    rmdir(dir);
    tg_tape_free(t);
}

/* ---- graph programs (fuzz_graph) -------------------------------------------- */

/* Opcodes and argument encodings of fuzz_graph.c; an op is applied with
 * OP_APPLY, its id (TG_OP_<name>, ops/ops.h), then what its builder reads. */
enum { OP_LEAF = 0, OP_SCALAR = 2, OP_APPLY = 3, OP_SET = 9, OP_REPLAY = 10, OP_BACKWARD = 11,
       OP_CHECK = 12, OP_OPTIM = 13, OP_DOT = 0x1D, OP_REQ = 14, OP_QUERY = 0x1E,
       OP_MODES = 15, OP_SCOPE = 0x1F };
enum { K_PARAM = 0x00, K_INPUT = 0x30, K_CONST = 0x58, K_TAPE1 = 0x07 };
enum { D_F32 = 0, D_F64 = 7, D_I32 = 12 };
enum { N_NONE = 0, N_W = 1, N_X = 2, N_LABELS = 3, N_W1 = 4, N_B = 5, N_LOSS = 6, N_QUOTE = 8 };

/* a float value byte: (b - 96) / 16 for b < 192 */
#define FV(v) ((v) * 16 + 96)
static unsigned fv(double v) { return (unsigned)FV(v); }

/* A leaf with values: n dims (1..8 each), values taken cyclically. */
static void leaf(buf *f, unsigned kind, unsigned dtype, int rank, const int *dims,
                 unsigned nm, const double *vals, int n_vals)
{
    byte(f, OP_LEAF);
    byte(f, kind);
    byte(f, dtype | (unsigned)rank << 4 | (dtype == D_I32 ? 0x80 : 0));
    int count = 1;
    for (int i = 0; i < rank; i++) {
        byte(f, (unsigned)dims[i] - 1);
        count *= dims[i];
    }
    byte(f, nm);
    if (!n_vals) {
        byte(f, 0); /* zeros */
        return;
    }
    byte(f, 1); /* values from the input (copy_in) */
    byte(f, 1), byte(f, 2), byte(f, 3), byte(f, 4); /* rng seed */
    for (int i = 0; i < count && i < 16; i++)
        byte(f, dtype == D_I32 ? (unsigned)vals[i % n_vals] : fv(vals[i % n_vals]));
}

/* An op of one input (its attributes, if any, follow) and of two (arg:
 * flags, transposes or classes). */
static void unary(buf *f, tg_op_id op, unsigned slot)
{
    byte(f, OP_APPLY), byte(f, op), byte(f, slot);
}
static void binary(buf *f, tg_op_id op, unsigned a, unsigned b, unsigned arg)
{
    byte(f, OP_APPLY), byte(f, op), byte(f, a), byte(f, b), byte(f, arg);
}

/* The leaves of the every_op program (slots) and each op's arguments
 * there: the bytes after its id, slots then attributes, as its builder in
 * fuzz_graph.c reads them; valid, so that the op's forward and backward
 * run.  An op without an entry gets one input, X. */
enum { S_X, S_P, S_L, S_B, S_Q, N_LEAVES };
static const struct {
    unsigned char n, b[7];
} every_op_args[TG_OP_COUNT] = {
    [TG_OP_matmul] = {3, {S_X, S_X, 2}},          /* X·Xᵀ */
    [TG_OP_add_bias] = {3, {S_X, S_B, 0}},
    [TG_OP_add] = {3, {S_X, S_P, 0}},
    [TG_OP_sub] = {3, {S_X, S_P, 0}},
    [TG_OP_mul] = {3, {S_X, S_P, 0}},
    [TG_OP_div] = {3, {S_X, S_P, 0}},
    [TG_OP_scale] = {2, {S_X, FV(1.5)}},
    [TG_OP_log] = {1, {S_P}},
    [TG_OP_softmax] = {2, {S_X, 1}},              /* causal (X is 2x3) */
    [TG_OP_log_softmax] = {2, {S_X, 1}},          /* causal */
    [TG_OP_sum] = {3, {S_X, 1, 20}},              /* axis 1, keepdim */
    [TG_OP_mean] = {3, {S_X, 1, 5}},              /* axis -1 */
    [TG_OP_reshape] = {5, {S_X, 0x0B, 1, 2, 0}},  /* [2,3,1] */
    [TG_OP_class_means] = {3, {S_X, S_L, 2}},     /* 3 classes */
    [TG_OP_gather_rows] = {3, {S_X, S_L, 0}},
    [TG_OP_trace] = {1, {S_Q}},
    [TG_OP_mse] = {3, {S_X, S_P, 4}},             /* TG_MEAN | TG_HALF */
    [TG_OP_softmax_ce] = {3, {S_X, S_L, 0xA9}},   /* ignore_index 1 (row 0), TG_MEAN */
    [TG_OP_softmax_ce_onehot] = {3, {S_X, S_P, 2}}, /* TG_BATCH_MEAN */
    [TG_OP_bce] = {3, {S_P, S_P, 0}},
    [TG_OP_bce_logits] = {3, {S_X, S_P, 1}},
    [TG_OP_l2] = {2, {S_X, FV(0.5)}},
    [TG_OP_conv2d] = {7, {S_X, S_Q, 2, 0, 0x05, 0, 0}}, /* [1,1,2,3] ⋆ [1,1,2,2], padding 1 */
    [TG_OP_batch_norm] = {4, {S_X, 0x01, 0, 0}}, /* its own γ, β, running stats; 0.1, 1e-5 */
    [TG_OP_dropout] = {2, {S_X, 0x00}},           /* p 0.5 */
    /* X viewed as [1,1,2,3], kernel 2x2, stride 1x1, padding 1x1 (avg: cip) */
    [TG_OP_max_pool2d] = {5, {S_X, 0x02, 0x05, 0x05, 0x03}},
    [TG_OP_avg_pool2d] = {5, {S_X, 0x03, 0x05, 0x05, 0x03}},
    /* the gradient ops of conv2d, the poolings, dropout: as the op, on its output */
    [TG_OP_conv2d_input_grad] = {7, {S_X, S_Q, 2, 0, 0x05, 0, 0}},
    [TG_OP_conv2d_weight_grad] = {7, {S_X, S_Q, 2, 0, 0x05, 0, 0}},
    [TG_OP_max_pool2d_scatter] = {5, {S_X, 0x02, 0x05, 0x05, 0x03}},
    [TG_OP_max_pool2d_gather] = {5, {S_X, 0x02, 0x05, 0x05, 0x03}},
    [TG_OP_avg_pool2d_scatter] = {5, {S_X, 0x03, 0x05, 0x05, 0x03}},
    [TG_OP_dropout_apply] = {3, {S_X, 0x00, 0x00}},
    [TG_OP_leaky_relu] = {2, {S_X, FV(0.25)}},
    [TG_OP_bmm] = {3, {S_X, S_X, 2}},             /* X·Xᵀ as a batch of one */
    [TG_OP_layer_norm] = {3, {S_X, 0x03, 0}},     /* its own γ, β; eps 1e-5 */
    [TG_OP_embedding] = {3, {S_X, S_L, 0}},       /* rows 1, 0 of X */
    [TG_OP_sqrt] = {1, {S_P}},
    [TG_OP_pow] = {2, {S_P, FV(1.5)}},
    [TG_OP_clamp] = {3, {S_X, FV(-0.5), FV(0.75)}},
    [TG_OP_one_hot] = {4, {S_L, 2, 1, 3}},        /* 3 classes, ignore index 1 */
    [TG_OP_step] = {2, {S_X, FV(0.5)}},
    [TG_OP_add_scalar] = {2, {S_X, FV(0.5)}},
    [TG_OP_permute] = {3, {S_X, 0, 1}},           /* perm 1,0 */
    [TG_OP_slice] = {4, {S_X, 7, 1, 2}},          /* axis 1, start 1, length 2 */
    [TG_OP_concat] = {4, {S_X, 0x01, 6, S_P}},    /* X, P along axis 1 */
    [TG_OP_maximum] = {3, {S_X, S_B, 0}},         /* [2,3] with [3] */
    [TG_OP_minimum] = {3, {S_X, S_P, 0}},
    [TG_OP_max_axis] = {2, {S_X, 20}},            /* axis 1, keepdim */
    [TG_OP_scatter_rows] = {3, {S_X, S_L, 2}},    /* rows 1, 0 of X into 3 rows */
    [TG_OP_max_mask] = {2, {S_X, 7}},             /* axis 1 */
};

/* Every op of ops/ops.def on valid inputs, 8 at a time: each result summed
 * into one loss, backward from it twice, replay with 1 and 2 threads, then
 * the tape cleared (the leaves stay) for the next 8; the last 8 are left to
 * the final replay, backward and DOT. */
static void every_op(buf *f)
{
    static const double x[] = {0.5, -0.25, 1, -1, 0.75, 0.125};
    static const double p[] = {0.25, 0.5, 0.75, 0.125, 0.625, 0.875};
    byte(f, 1); /* generic kernels, 1 thread */
    leaf(f, K_PARAM, D_F64, 2, (int[]){2, 3}, N_X, x, 6);                /* X */
    leaf(f, K_PARAM, D_F64, 2, (int[]){2, 3}, N_W, p, 6);                /* P in (0,1) */
    leaf(f, K_INPUT, D_I32, 1, (int[]){2}, N_LABELS, (double[]){1, 0}, 2); /* L */
    leaf(f, K_PARAM, D_F64, 1, (int[]){3}, N_B, x + 1, 3);               /* B */
    leaf(f, K_PARAM, D_F64, 2, (int[]){2, 2}, N_W1, p + 1, 4);           /* Q */
    unsigned n = N_LEAVES, loss = 0;
    for (int id = 0; id < TG_OP_COUNT; id++) {
        byte(f, OP_APPLY), byte(f, (unsigned)id);
        if (every_op_args[id].n)
            put(f, every_op_args[id].b, every_op_args[id].n);
        else
            byte(f, S_X);
        unsigned r = n++;
        unary(f, TG_OP_sum, r), byte(f, 0); /* of all elements */
        unsigned s = n++;
        if (id % 8 == 0) {
            loss = s;
        } else {
            binary(f, TG_OP_add, loss, s, 0);
            loss = n++;
        }
        if (id % 8 == 7 && id < TG_OP_COUNT - 1) {
            byte(f, OP_BACKWARD), byte(f, 6), byte(f, loss); /* twice */
            byte(f, OP_REPLAY), byte(f, 0);                  /* 1 vs 2 threads */
            byte(f, OP_MODES), byte(f, 0x06);                /* clear tape 0 */
            n = N_LEAVES;
        }
    }
}

static void corpus_graph(void)
{
    static const double w[] = {0.5, -0.25, 1, -1, 0.75, 0.125, -0.5, 2};
    buf f;

    /* 1: a 2-layer MLP with softmax cross-entropy; backward, replay, a label
     * out of range, replay (fails), backward, DOT */
    f.n = 0;
    byte(&f, 0); /* best ISA, 1 thread */
    leaf(&f, K_INPUT, D_F32, 2, (int[]){4, 3}, N_X, w, 8);         /* 0 x      */
    leaf(&f, K_PARAM, D_F32, 2, (int[]){3, 5}, N_W1, w + 1, 7);    /* 1 W1     */
    leaf(&f, K_PARAM, D_F32, 1, (int[]){5}, N_B, w + 2, 3);        /* 2 b1     */
    leaf(&f, K_PARAM, D_F32, 2, (int[]){5, 3}, N_W, w + 3, 5);     /* 3 W2     */
    leaf(&f, K_INPUT, D_I32, 1, (int[]){4}, N_LABELS, (double[]){0, 2, 1, 2}, 4); /* 4 */
    binary(&f, TG_OP_matmul, 0, 1, 0);                              /* 5 x·W1   */
    binary(&f, TG_OP_add_bias, 5, 2, 0);                            /* 6        */
    unary(&f, TG_OP_relu, 6);                                       /* 7        */
    binary(&f, TG_OP_matmul, 7, 3, 0);                              /* 8        */
    binary(&f, TG_OP_softmax_ce, 8, 4, 1);                          /* 9 loss   */
    byte(&f, OP_BACKWARD), byte(&f, 0), byte(&f, 9);
    byte(&f, OP_REPLAY), byte(&f, 0);                               /* 1 vs 2 threads */
    byte(&f, OP_SET), byte(&f, 4), byte(&f, 0), byte(&f, 1), byte(&f, 230); /* label 1000 */
    byte(&f, OP_REPLAY), byte(&f, 2);
    byte(&f, OP_BACKWARD), byte(&f, 6), byte(&f, 9);                /* twice */
    byte(&f, OP_DOT), byte(&f, 0), byte(&f, 0x0F), byte(&f, N_LOSS);
    save("graph", "mlp", &f);

    /* 2: f64, every op of one input on one parameter, a non-scalar seed,
     * checks */
    f.n = 0;
    byte(&f, 1); /* generic kernels */
    leaf(&f, K_PARAM, D_F64, 2, (int[]){2, 3}, N_W, w, 8);          /* 0 */
    static const tg_op_id un[] = {TG_OP_sigmoid, TG_OP_relu,  TG_OP_tanh,  TG_OP_exp,
                                  TG_OP_log,     TG_OP_softmax, TG_OP_log_softmax,
                                  TG_OP_neg,     TG_OP_scale, TG_OP_transpose,
                                  TG_OP_sum,     TG_OP_mean,  TG_OP_sum,   TG_OP_mean,
                                  TG_OP_trace,   TG_OP_l2};
    for (size_t i = 0; i < sizeof un / sizeof un[0]; i++) {        /* 1..16 */
        unary(&f, un[i], 0);
        if (un[i] == TG_OP_scale || un[i] == TG_OP_l2)
            byte(&f, fv(1.5));
        if (un[i] == TG_OP_softmax || un[i] == TG_OP_log_softmax)
            byte(&f, un[i] == TG_OP_log_softmax); /* plain softmax, causal log_softmax */
        if (un[i] == TG_OP_sum || un[i] == TG_OP_mean) {
            bool axis = i >= 12; /* all elements, then axis 1 / axis -1 keepdim */
            byte(&f, axis);
            if (axis)
                byte(&f, un[i] == TG_OP_sum ? 7 : 18);
        }
    }
    unary(&f, TG_OP_reshape, 0), byte(&f, 0x0B), byte(&f, 1), byte(&f, 0),
        byte(&f, 0); /* reshape to a factorisation, rank 3 */
    byte(&f, OP_BACKWARD), byte(&f, 0x07), byte(&f, 1);             /* seeded, twice */
    for (int i = 0; i < 6; i++)
        byte(&f, fv(0.5 * i));
    byte(&f, OP_CHECK), byte(&f, 1), byte(&f, 0);                   /* check_grad self */
    binary(&f, TG_OP_mse, 1, 3, 4);                                 /* mse ½ */
    byte(&f, OP_BACKWARD), byte(&f, 0), byte(&f, 0xFF);             /* NULL root */
    byte(&f, OP_CHECK), byte(&f, 0x02), byte(&f, 17), byte(&f, 0);  /* check_fd of the mse wrt W */
    save("graph", "unary_f64", &f);

    /* 3: mistakes: i32 into float ops, shapes that do not match, an
     * overflowing leaf, a NULL input, tensors of two tapes, bad flags */
    f.n = 0;
    byte(&f, 0);
    leaf(&f, K_PARAM, D_F32, 2, (int[]){2, 3}, N_W, w, 8);          /* 0 */
    leaf(&f, K_INPUT, D_I32, 1, (int[]){2}, N_LABELS, (double[]){1, 226}, 2); /* 1: labels 1, 8 */
    leaf(&f, K_PARAM | K_TAPE1, D_F32, 2, (int[]){3, 2}, N_W1, w, 3); /* 2, tape 1 */
    byte(&f, OP_LEAF), byte(&f, K_PARAM), byte(&f, D_F64 | 2 << 4), byte(&f, 213),
        byte(&f, 211), byte(&f, N_W), byte(&f, 0);                  /* SIZE_MAX x 2^62 */
    binary(&f, TG_OP_matmul, 0, 0, 0);                              /* inner differ */
    binary(&f, TG_OP_matmul, 0, 2, 0);                              /* two tapes */
    binary(&f, TG_OP_add, 1, 0, 0);                                 /* i32 */
    binary(&f, TG_OP_softmax_ce, 0, 1, 3);                          /* bad flags */
    binary(&f, TG_OP_softmax_ce, 0, 1, 1);                          /* label 9 */
    binary(&f, TG_OP_gather_rows, 0, 1, 0);                         /* index 9 */
    binary(&f, TG_OP_class_means, 0, 1, 8);                         /* classes -1 */
    binary(&f, TG_OP_bce, 0, 0xFF, 0);                              /* NULL */
    unary(&f, TG_OP_trace, 0);                                      /* not square */
    unary(&f, TG_OP_sum, 0), byte(&f, 1), byte(&f, 250);            /* axis INT_MIN */
    unary(&f, TG_OP_reshape, 0), byte(&f, 0x03), byte(&f, 212), byte(&f, 212), byte(&f, 0),
        byte(&f, 0), byte(&f, 0);                                   /* overflowing shape */
    byte(&f, OP_SET), byte(&f, 1), byte(&f, 0x84), byte(&f, 0), byte(&f, 100); /* 0.25 in i32 */
    byte(&f, OP_REQ), byte(&f, 1), byte(&f, 1);                     /* i32 requires grad */
    save("graph", "mistakes", &f);

    /* 4: modes: no-grad, anomaly, scopes, clear and rebuild, optimizers,
     * queries, a class mean and a gather that backward goes through */
    f.n = 0;
    byte(&f, 2 | 8); /* avx2 if the CPU has it, 2 threads */
    leaf(&f, K_PARAM, D_F32, 2, (int[]){4, 2}, N_W, w, 8);          /* 0 */
    leaf(&f, K_INPUT, D_I32, 1, (int[]){4}, N_LABELS, (double[]){0, 1, 1, 2}, 4); /* 1 */
    byte(&f, OP_SCOPE), byte(&f, 0), byte(&f, N_QUOTE);
    binary(&f, TG_OP_class_means, 0, 1, 2);                         /* 2: 3 classes */
    binary(&f, TG_OP_gather_rows, 0, 1, 0);                         /* 3 */
    byte(&f, OP_SCOPE), byte(&f, 2);                                /* pop */
    binary(&f, TG_OP_mul, 2, 2, 0);                                 /* 4 */
    unary(&f, TG_OP_sum, 4), byte(&f, 0);                           /* 5 */
    unary(&f, TG_OP_sum, 3), byte(&f, 0);                           /* 6 */
    binary(&f, TG_OP_add, 5, 6, 0);                                 /* 7 */
    byte(&f, OP_BACKWARD), byte(&f, 0), byte(&f, 7);
    byte(&f, OP_OPTIM), byte(&f, 0x14), byte(&f, fv(0.125)), byte(&f, fv(0)), byte(&f, fv(0)),
        byte(&f, fv(0)), byte(&f, fv(0)), byte(&f, 0), byte(&f, 1), /* Adam, 2 steps */
        byte(&f, fv(0.125)), byte(&f, fv(0.0625)),                  /* and their lr */
        byte(&f, 3), byte(&f, 2), byte(&f, fv(0.5)), byte(&f, fv(0.25)); /* schedules */
    byte(&f, OP_OPTIM), byte(&f, 0x28), byte(&f, fv(1));            /* clip to norm 1 */
    byte(&f, OP_MODES), byte(&f, 0x0A);                             /* anomaly on */
    unary(&f, TG_OP_log, 0);                                        /* NaN: refused */
    byte(&f, OP_MODES), byte(&f, 0x00);                             /* recording off */
    unary(&f, TG_OP_exp, 0);                                        /* a constant */
    byte(&f, OP_MODES), byte(&f, 0x08);                             /* recording on */
    byte(&f, OP_QUERY), byte(&f, 0x04), byte(&f, 7), byte(&f, 5), byte(&f, 1), byte(&f, 0),
        byte(&f, 0), byte(&f, N_LOSS), byte(&f, 0), byte(&f, 0), byte(&f, 0), byte(&f, 0),
        byte(&f, N_W);                                              /* set_name, find */
    byte(&f, OP_MODES), byte(&f, 0x06);                             /* clear */
    binary(&f, TG_OP_class_means, 0, 1, 2);
    byte(&f, OP_DOT), byte(&f, 0), byte(&f, 0x1F), byte(&f, N_QUOTE);
    save("graph", "modes", &f);

    /* 5: batch_norm and dropout with the training mode switched between
     * recording and replays: backward twice and replays with 1 and 2
     * threads over fresh masks and running statistics, check_fd, a single
     * value per channel refused in training mode (at record, then at a
     * replay after switching), inputs picked from the pool (dtypes differ) */
    f.n = 0;
    byte(&f, 0x08); /* best ISA, 2 threads */
    leaf(&f, K_PARAM, D_F64, 2, (int[]){4, 3}, N_X, w, 8);               /* 0 */
    leaf(&f, K_PARAM, D_F32, 4, (int[]){2, 3, 2, 2}, N_W, w, 8);         /* 1 */
    byte(&f, OP_APPLY), byte(&f, TG_OP_batch_norm), byte(&f, 1), byte(&f, 0x01), byte(&f, 0),
        byte(&f, 0);                                  /* 2: own γ, β, stats; 0.1, 1e-5 */
    byte(&f, OP_APPLY), byte(&f, TG_OP_dropout), byte(&f, 2), byte(&f, 0x00); /* 3: p 0.5 */
    unary(&f, TG_OP_sum, 3), byte(&f, 0);                                /* 4 */
    byte(&f, OP_BACKWARD), byte(&f, 6), byte(&f, 4);                     /* twice */
    byte(&f, OP_REPLAY), byte(&f, 0);                                    /* 1 vs 2 threads */
    byte(&f, OP_APPLY), byte(&f, TG_OP_batch_norm), byte(&f, 0), byte(&f, 0x03), byte(&f, 1),
        byte(&f, 1);                                  /* 5: evaluation mode; 0.5, 1e-3 */
    byte(&f, OP_REPLAY), byte(&f, 0);
    byte(&f, OP_APPLY), byte(&f, TG_OP_dropout), byte(&f, 0), byte(&f, 0x31); /* 6: training, p 0.25 */
    unary(&f, TG_OP_sum, 6), byte(&f, 0);                                /* 7 */
    byte(&f, OP_CHECK), byte(&f, 0x02), byte(&f, 7), byte(&f, 0);       /* check_fd wrt 0 */
    byte(&f, OP_REPLAY), byte(&f, 0);
    byte(&f, OP_BACKWARD), byte(&f, 6), byte(&f, 7);
    leaf(&f, K_PARAM, D_F64, 2, (int[]){1, 3}, N_X, w, 8);               /* 8 */
    byte(&f, OP_APPLY), byte(&f, TG_OP_batch_norm), byte(&f, 8), byte(&f, 0x01), byte(&f, 0),
        byte(&f, 0);                                  /* one value per channel: refused */
    byte(&f, OP_APPLY), byte(&f, TG_OP_batch_norm), byte(&f, 8), byte(&f, 0x03), byte(&f, 0),
        byte(&f, 0);                                  /* 9: in evaluation mode */
    byte(&f, OP_APPLY), byte(&f, TG_OP_dropout), byte(&f, 9), byte(&f, 0x30); /* 10: training */
    byte(&f, OP_REPLAY), byte(&f, 0);                                    /* fails at 9 */
    byte(&f, OP_APPLY), byte(&f, TG_OP_batch_norm), byte(&f, 1), byte(&f, 0x00), byte(&f, 0),
        byte(&f, 0), byte(&f, 0), byte(&f, 0), byte(&f, 0), byte(&f, 0); /* f32 x, f64 stats */
    save("graph", "norm_modes", &f);

    /* 6: every op of the list (generated from it: a new op is in it) */
    f.n = 0;
    every_op(&f);
    save("graph", "every_op", &f);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR (normally fuzz/corpus)\n", argv[0]);
        return 2;
    }
    root = argv[1];
    corpus_idx();
    corpus_load();
    corpus_graph();
    return 0;
}
