/* libFuzzer target: the parameter-file loader tg_load, into a small fixed
 * network (f32 and f64 parameters of ranks 0..2, an i32 and an f32 input).
 *
 * Input: byte 0 = mode, byte 1 = a tensor mask, the rest = the file.
 *   mode & 3     which tensors: 0 n = 0 (every parameter), 1 an explicit
 *                list of all seven named tensors, 2 the subset of them in
 *                the mask, 3 a bad list (NULL entry, a tensor twice, an
 *                unnamed tensor, one of another tape, n < 0, NULL list)
 *   mode & 4     repair the size field of the header (so that mutations go
 *                past the size check)
 *   mode & 8     repair the CRC-32C (so that mutations reach the records)
 *   mode & 16    after a successful load: tg_save the same tensors and
 *                load them back into a second copy of the network, which
 *                must then be identical bit for bit
 *   mode & 32    tg_file_read's any_checksum (the file is also listed
 *                with tg_file_read: a listing whose shapes and sizes agree,
 *                or a message; a file tg_load accepts must be listed)
 * A failed load must leave a message and every tensor unchanged; a
 * successful one must leave the tensors not loaded unchanged. */
#include "fuzz_common.h"
#include "io.h" /* tg_crc32c, to repair mutated files */
#include "tapegrad.h"

#include <sys/stat.h>

#define N_NAMED 7

typedef struct net {
    tg_tape *t;
    tg_tensor *all[N_NAMED]; /* W1 b1 W2 b2 π (params), lab, x (inputs) */
    tg_tensor *unnamed;      /* an input without a name */
} net;

static net A, B;
static tg_tape *other;
static tg_tensor *foreign; /* a named tensor of another tape */
static fz_file file;
static char dir[64], save_path[96];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void net_build(net *n)
{
    n->t = tg_tape_new();
    FZ_CHECK(n->t, "out of memory");
    n->all[0] = tg_param(n->t, "W1", TG_F32, 2, (size_t[]){3, 4});
    n->all[1] = tg_param(n->t, "b1", TG_F32, 1, (size_t[]){4});
    n->all[2] = tg_param(n->t, "W2", TG_F64, 2, (size_t[]){4, 2});
    n->all[3] = tg_param(n->t, "b2", TG_F64, 1, (size_t[]){2});
    n->all[4] = tg_param(n->t, "\xcf\x80", TG_F64, 0, NULL); /* "π", a scalar */
    n->all[5] = tg_input(n->t, "lab", TG_I32, 1, (size_t[]){3});
    n->all[6] = tg_input(n->t, "x", TG_F32, 2, (size_t[]){2, 3});
    n->unnamed = tg_input(n->t, NULL, TG_F32, 1, (size_t[]){2});
    for (int i = 0; i < N_NAMED; i++)
        FZ_CHECK(n->all[i], "building the network: %s", tg_tape_error(n->t));
}

/* Known values, different for each call of the same seed. */
static void net_fill(net *n, unsigned seed)
{
    for (int i = 0; i < N_NAMED; i++)
        for (size_t k = 0; k < tg_size(n->all[i]); k++)
            tg_set(n->all[i], k, (double)((seed * 7 + (unsigned)i * 13 + (unsigned)k) % 19) - 9);
}

static void remove_dir(void)
{
    unlink(save_path);
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    net_build(&A);
    net_build(&B);
    other = tg_tape_new();
    foreign = tg_param(other, "W1", TG_F32, 2, (size_t[]){3, 4});
    FZ_CHECK(foreign, "building the other tape");
    fz_file_open(&file, "tg-fuzz-load");
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/tg-fuzz-load-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    FZ_CHECK(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
    snprintf(save_path, sizeof save_path, "%s/model.tg", dir);
    atexit(remove_dir);
    return 0;
}

/* The bytes of every tensor of a network, to compare before and after. */
typedef struct snap {
    unsigned char b[N_NAMED][256];
} snap;

static void take(snap *s, const net *n)
{
    for (int i = 0; i < N_NAMED; i++) {
        size_t bytes = tg_size(n->all[i]) * tg_dtype_size(tg_dtype_of(n->all[i]));
        FZ_CHECK(bytes <= sizeof s->b[i], "snapshot too small");
        memset(s->b[i], 0, sizeof s->b[i]);
        memcpy(s->b[i], tg_data(n->all[i]), bytes);
    }
}

static int same(const snap *a, const snap *b, int i) { return !memcmp(a->b[i], b->b[i], 256); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t mode = data[0], mask = data[1];
    size_t len = size - 2;
    uint8_t *f = malloc(len ? len : 1);
    FZ_CHECK(f, "out of memory");
    if (len)
        memcpy(f, data + 2, len);
    if ((mode & 4) && len >= 24)
        for (int i = 0; i < 8; i++)
            f[16 + i] = (uint8_t)((uint64_t)len >> (8 * i));
    if ((mode & 8) && len >= 28) {
        uint32_t c = tg_crc32c(f, len - 4);
        for (int i = 0; i < 4; i++)
            f[len - 4 + i] = (uint8_t)(c >> (8 * i));
    }
    fz_file_set(&file, f, len);
    free(f);

    /* the listing without a tape */
    tg_file_info fi;
    tg_err fe = {{0}};
    int lr = tg_file_read(file.path, (mode & 32) != 0, &fi, &fe);
    FZ_TRACE("file_read: %d %s\n", lr, lr ? fe.msg : "");
    FZ_CHECK(lr == 0 || (lr == -1 && fe.msg[0] && fi.n == 0 && !fi.tensors),
             "tg_file_read returned %d, message '%s'", lr, fe.msg);
    for (size_t i = 0; lr == 0 && i < fi.n; i++) {
        const tg_file_tensor *t = &fi.tensors[i];
        size_t elems = 1;
        for (int k = 0; k < t->rank; k++)
            elems *= t->shape[k];
        FZ_CHECK(t->name && *t->name && t->rank >= 0 && t->rank <= TG_MAX_RANK &&
                     elems == t->size && (t->data || !t->size) && tg_dtype_size(t->dtype),
                 "tg_file_read: record %zu is inconsistent", i);
    }
    FZ_CHECK(lr || (mode & 32) || fi.checksum_ok, "a checksum mismatch listed without any_checksum");
    tg_file_free(&fi);

    /* the tensors to load */
    tg_tensor *list[N_NAMED + 1];
    int n = 0;
    tg_tensor *const *lp = list;
    bool bad_list = false;
    switch (mode & 3) {
    case 0:
        n = 0;
        lp = NULL;
        break;
    case 1:
        for (int i = 0; i < N_NAMED; i++)
            list[n++] = A.all[(i + mask) % N_NAMED]; /* in some order */
        break;
    case 2:
        for (int i = 0; i < N_NAMED; i++)
            if (mask & (1u << i))
                list[n++] = A.all[i];
        if (n == 0)
            lp = (mask & 0x80) ? list : NULL;
        break;
    case 3:
        bad_list = true;
        list[0] = A.all[0];
        list[1] = A.all[3];
        n = 3;
        switch (mask % 6) {
        case 0: list[2] = NULL; break;
        case 1: list[2] = A.all[3]; break; /* twice */
        case 2: list[2] = A.unnamed; break;
        case 3: list[2] = foreign; break;
        case 4: n = -1 - (mask >> 3); break;
        case 5: lp = NULL; break;
        }
        break;
    }

    net_fill(&A, mask);
    snap before, after;
    take(&before, &A);
    tg_tape_clear_error(A.t);
    int rc = tg_load(A.t, file.path, n, lp);
    FZ_TRACE("load (n = %d): %d %s\n", n, rc, rc ? tg_tape_error(A.t) : "");
    take(&after, &A);
    if (rc != 0) {
        FZ_CHECK(rc == -1, "tg_load returned %d", rc);
        FZ_CHECK(tg_tape_error(A.t), "tg_load failed without a message");
        for (int i = 0; i < N_NAMED; i++)
            FZ_CHECK(same(&before, &after, i), "a failed load changed tensor %d: %s", i,
                     tg_tape_error(A.t));
        return 0;
    }
    FZ_CHECK(!bad_list, "a bad list of tensors was accepted");
    FZ_CHECK(lr == 0, "tg_load accepted a file tg_file_read refused: %s", fe.msg);
    FZ_CHECK(!tg_tape_error(A.t), "a successful load left an error: %s", tg_tape_error(A.t));
    /* the tensors not loaded are untouched */
    for (int i = 0; i < N_NAMED; i++) {
        bool listed = n == 0 ? tg_kind_of(A.all[i]) == TG_PARAM : false;
        for (int k = 0; k < n; k++)
            listed |= list[k] == A.all[i];
        FZ_CHECK(listed || same(&before, &after, i), "load changed tensor %d, not listed", i);
    }

    if (mode & 16) {
        /* save what was loaded, load it into B, compare */
        tg_tensor *blist[N_NAMED];
        for (int k = 0; k < n; k++)
            for (int i = 0; i < N_NAMED; i++)
                if (list[k] == A.all[i])
                    blist[k] = B.all[i];
        tg_tape_clear_error(A.t);
        FZ_CHECK(tg_save(A.t, save_path, n, lp) == 0, "saving a loaded model: %s",
                 tg_tape_error(A.t));
        net_fill(&B, mask + 1u);
        tg_tape_clear_error(B.t);
        FZ_CHECK(tg_load(B.t, save_path, n, n ? blist : NULL) == 0, "reloading a saved model: %s",
                 tg_tape_error(B.t));
        for (int k = 0; k < (n ? n : 5); k++) {
            tg_tensor *a = n ? list[k] : A.all[k], *b = n ? blist[k] : B.all[k];
            size_t bytes = tg_size(a) * tg_dtype_size(tg_dtype_of(a));
            FZ_CHECK(!memcmp(tg_data(a), tg_data(b), bytes), "round trip changed '%s'",
                     tg_name(a));
        }
    }
    return 0;
}
