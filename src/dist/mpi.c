/* Data-parallel training over MPI (include/tapegrad.h, "Distributed
 * training"): initialisation, rank and size, the broadcast of parameters
 * from rank 0 and the averaging of a tape's gradients with MPI_Allreduce,
 * bucketed into a few large messages.
 *
 * Built with MPI (meson.build defines TG_HAVE_MPI when Meson finds it) this
 * file calls MPI; built without, every call that needs MPI fails with "built
 * without MPI" and tg_mpi_rank/tg_mpi_size answer 0 and 1, so a training
 * loop that uses them runs unchanged as one process.
 *
 * The allreduce: the gradients (f32 and f64 separately, in the order of the
 * parameter list) are packed into buckets of at most TG_MPI_BUCKET bytes;
 * each bucket is reduced with MPI_Iallreduce(MPI_SUM) as soon as it is
 * packed, and the next one is packed while it is in flight (two buffers);
 * the sums are scaled by 1/size on the way back.  Every rank gets the same
 * sums (Open MPI's algorithms send the reduced chunks to everyone), so the
 * ranks' parameters stay bit-identical.  The buffers are allocated on the
 * first call and kept until tg_mpi_finalize: a step allocates nothing. */
#include "core.h"

#include <stdio.h>

#ifdef TG_HAVE_MPI
#include <mpi.h>
#endif

#define TG_MPI_BUCKET ((size_t)4 << 20) /* bytes per message */

bool tg_have_mpi(void)
{
#ifdef TG_HAVE_MPI
    return true;
#else
    return false;
#endif
}

#ifndef TG_HAVE_MPI

static const char NO_MPI[] = "tapegrad was built without MPI (install an MPI such as "
                             "Debian's libopenmpi-dev and rebuild: meson setup --reconfigure "
                             "-Dmpi=enabled)";

int tg_mpi_init(tg_err *err)
{
    if (err)
        snprintf(err->msg, sizeof err->msg, "mpi_init: %s", NO_MPI);
    return TG_ERR;
}

int tg_mpi_rank(void) { return 0; }
int tg_mpi_size(void) { return 1; }

int tg_mpi_broadcast(tg_tape *tape, int n, tg_tensor *const *tensors)
{
    (void)n, (void)tensors;
    return tape ? tg_error(tape, "mpi_broadcast: %s", NO_MPI) : TG_ERR;
}

int tg_mpi_allreduce_grads(tg_tape *tape, int n, tg_tensor *const *params)
{
    (void)n, (void)params;
    return tape ? tg_error(tape, "mpi_allreduce_grads: %s", NO_MPI) : TG_ERR;
}

int tg_mpi_sum(double *values, int n, tg_err *err)
{
    (void)values, (void)n;
    if (err)
        snprintf(err->msg, sizeof err->msg, "mpi_sum: %s", NO_MPI);
    return TG_ERR;
}

void tg_mpi_abort(int status) { (void)status; }
void tg_mpi_finalize(void) {}

#else /* TG_HAVE_MPI */

static bool started; /* tg_mpi_init succeeded and tg_mpi_finalize not called */
static int my_rank, n_ranks = 1;
static void *bucket[2]; /* TG_MPI_BUCKET bytes each, aligned */

/* The MPI error's text into buf. */
static const char *mpi_msg(int code, char *buf)
{
    int len = 0;
    if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS)
        snprintf(buf, MPI_MAX_ERROR_STRING, "MPI error %d", code);
    return buf;
}

int tg_mpi_init(tg_err *err)
{
    if (started)
        return TG_OK;
    int inited = 0, rc = MPI_Initialized(&inited);
    if (rc == MPI_SUCCESS && !inited) {
        int provided;
        /* only the calling thread makes MPI calls; GEMM's workers never do */
        rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    }
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_rank(MPI_COMM_WORLD, &my_rank);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_size(MPI_COMM_WORLD, &n_ranks);
    if (rc != MPI_SUCCESS) {
        char buf[MPI_MAX_ERROR_STRING];
        if (err)
            snprintf(err->msg, sizeof err->msg, "mpi_init: %s", mpi_msg(rc, buf));
        return TG_ERR;
    }
    started = true;
    return TG_OK;
}

int tg_mpi_rank(void) { return started ? my_rank : 0; }
int tg_mpi_size(void) { return started ? n_ranks : 1; }

/* The n tensors (n = 0: the tape's leaves that pass `want`), checked:
 * leaves of tape, f32 or f64.  fn names the caller.  0 or -1. */
static int check_list(tg_tape *tape, int n, tg_tensor *const *t, const char *fn)
{
    if (!started)
        return tg_error(tape, "%s: call tg_mpi_init first", fn);
    if (n < 0 || (n > 0 && !t))
        return tg_error(tape, "%s: n = %d with %s tensors", fn, n, t ? "a list of" : "NULL");
    for (int i = 0; i < n; i++) {
        if (!t[i])
            return tg_error(tape, "%s: tensor %d is NULL", fn, i);
        if (t[i]->tape != tape)
            return tg_error(tape, "%s: tensor %d ('%s') belongs to another tape", fn, i,
                            tg_label(t[i]));
        if (t[i]->dtype != TG_F32 && t[i]->dtype != TG_F64)
            return tg_error(tape, "%s: tensor %d ('%s') is %s; only f32 and f64 are sent", fn,
                            i, tg_label(t[i]), tg_dtype_name((tg_dtype)t[i]->dtype));
    }
    return TG_OK;
}

/* Tensor i of the list (n = 0: the i-th leaf that requires a gradient),
 * NULL past the end; *pos walks the tape's leaves. */
static tg_tensor *nth(tg_tape *tape, int n, tg_tensor *const *t, int i, size_t *pos)
{
    if (n > 0)
        return i < n ? t[i] : NULL;
    while (*pos < tape->n_leaves) {
        tg_tensor *l = tape->leaves[(*pos)++];
        if (l->requires_grad && (l->dtype == TG_F32 || l->dtype == TG_F64))
            return l;
    }
    return NULL;
}

int tg_mpi_broadcast(tg_tape *tape, int n, tg_tensor *const *tensors)
{
    if (!tape)
        return TG_ERR;
    if (check_list(tape, n, tensors, "mpi_broadcast"))
        return TG_ERR;
    size_t pos = 0;
    tg_tensor *t;
    for (int i = 0; (t = nth(tape, n, tensors, i, &pos)); i++) {
        size_t left = t->size, esz = tg_dtype_size((tg_dtype)t->dtype);
        char *p = t->data;
        while (left) { /* counts are int */
            int c = left > (1u << 30) ? 1 << 30 : (int)left;
            int rc = MPI_Bcast(p, c, t->dtype == TG_F32 ? MPI_FLOAT : MPI_DOUBLE, 0,
                               MPI_COMM_WORLD);
            if (rc != MPI_SUCCESS) {
                char buf[MPI_MAX_ERROR_STRING];
                return tg_error(tape, "mpi_broadcast: '%s': %s", tg_label(t), mpi_msg(rc, buf));
            }
            p += (size_t)c * esz;
            left -= (size_t)c;
        }
        if (tg_write_leaf(t, "mpi_broadcast"))
            return TG_ERR;
    }
    return TG_OK;
}

/* A bucket being reduced: its elements come from tensors [first, last]
 * (the first from element off0 on), `count` of them. */
typedef struct flight {
    MPI_Request req;
    int first, last;
    size_t off0, count;
    bool busy;
} flight;

/* Whether t's gradient travels in the buckets of dtype dt. */
static bool takes(const tg_tensor *t, tg_dtype dt)
{
    return (tg_dtype)t->dtype == dt && t->requires_grad;
}

/* Wait for f, then scatter its sums times 1/size back into the gradients. */
static int land(tg_tape *tape, flight *f, void *buf, int n, tg_tensor *const *list,
                tg_tensor **all, tg_dtype dt)
{
    if (!f->busy)
        return TG_OK;
    f->busy = false;
    int rc = MPI_Wait(&f->req, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) {
        char b[MPI_MAX_ERROR_STRING];
        return tg_error(tape, "mpi_allreduce_grads: %s", mpi_msg(rc, b));
    }
    size_t done = 0, off = f->off0;
    for (int i = f->first; i <= f->last && done < f->count; i++, off = 0) {
        tg_tensor *t = n > 0 ? list[i] : all[i];
        if (!takes(t, dt))
            continue;
        size_t k = t->size - off < f->count - done ? t->size - off : f->count - done;
        if (dt == TG_F32) {
            float *g = (float *)t->grad + off, *s = (float *)buf + done;
            float sc = 1.0f / (float)n_ranks;
            for (size_t j = 0; j < k; j++)
                g[j] = s[j] * sc;
        } else {
            double *g = (double *)t->grad + off, *s = (double *)buf + done;
            double sc = 1.0 / (double)n_ranks;
            for (size_t j = 0; j < k; j++)
                g[j] = s[j] * sc;
        }
        done += k;
    }
    return TG_OK;
}

/* The gradients of the tensors of dtype dt, reduced bucket by bucket. */
static int reduce_dtype(tg_tape *tape, int n, tg_tensor *const *list, tg_tensor **all,
                        int count, tg_dtype dt)
{
    size_t esz = tg_dtype_size(dt), cap = TG_MPI_BUCKET / esz;
    flight fl[2] = {{0}, {0}};
    int cur = 0;
    size_t fill = 0;
    flight *f = &fl[cur];
    for (int i = 0; i <= count; i++) {
        tg_tensor *t = i < count ? (n > 0 ? list[i] : all[i]) : NULL;
        if (t && !takes(t, dt))
            continue;
        const char *g = t ? tg_grad(t) : NULL; /* a parameter without one sends zeros */
        if (t && !g)
            return tg_error(tape, "mpi_allreduce_grads: no gradient buffer for '%s'",
                            tg_label(t));
        size_t off = 0;
        while (t ? off < t->size : fill > 0) {
            if (t) {
                if (fill == 0) {
                    if (land(tape, &fl[cur], bucket[cur], n, list, all, dt))
                        return TG_ERR;
                    *f = (flight){.first = i, .off0 = off};
                }
                size_t k = t->size - off < cap - fill ? t->size - off : cap - fill;
                memcpy((char *)bucket[cur] + fill * esz, g + off * esz, k * esz);
                fill += k;
                off += k;
                f->last = i;
            }
            if (fill == cap || (!t && fill > 0)) { /* send it, switch buffers */
                f->count = fill;
                int rc = MPI_Iallreduce(MPI_IN_PLACE, bucket[cur], (int)fill,
                                        dt == TG_F32 ? MPI_FLOAT : MPI_DOUBLE, MPI_SUM,
                                        MPI_COMM_WORLD, &f->req);
                if (rc != MPI_SUCCESS) {
                    char b[MPI_MAX_ERROR_STRING];
                    return tg_error(tape, "mpi_allreduce_grads: %s", mpi_msg(rc, b));
                }
                f->busy = true;
                fill = 0;
                cur ^= 1;
                f = &fl[cur];
            }
        }
    }
    for (int k = 0; k < 2; k++, cur ^= 1)
        if (land(tape, &fl[cur], bucket[cur], n, list, all, dt))
            return TG_ERR;
    return TG_OK;
}

int tg_mpi_allreduce_grads(tg_tape *tape, int n, tg_tensor *const *params)
{
    if (!tape)
        return TG_ERR;
    if (check_list(tape, n, params, "mpi_allreduce_grads"))
        return TG_ERR;
    for (int i = 0; i < n; i++)
        if (!params[i]->requires_grad)
            return tg_error(tape, "mpi_allreduce_grads: tensor %d ('%s') requires no "
                                  "gradient", i, tg_label(params[i]));
    for (int k = 0; k < 2; k++)
        if (!bucket[k] && !(bucket[k] = tg_aligned_alloc(TG_MPI_BUCKET)))
            return tg_error(tape, "mpi_allreduce_grads: out of memory");
    /* n = 0: the tape's leaves that require a gradient, in tape order */
    tg_tensor **all = NULL;
    int count = n;
    if (n == 0) {
        all = tape->leaves;
        count = (int)tape->n_leaves;
    }
    int rc = TG_OK;
    for (int d = TG_F32; rc == TG_OK && d <= TG_F64; d++)
        rc = reduce_dtype(tape, n, params, all, count, (tg_dtype)d);
    return rc;
}

int tg_mpi_sum(double *values, int n, tg_err *err)
{
    if (!started || !values || n < 1) {
        if (err)
            snprintf(err->msg, sizeof err->msg, "mpi_sum: %s",
                     !started ? "call tg_mpi_init first" : "values NULL or n < 1");
        return TG_ERR;
    }
    int rc = MPI_Allreduce(MPI_IN_PLACE, values, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) {
        char b[MPI_MAX_ERROR_STRING];
        if (err)
            snprintf(err->msg, sizeof err->msg, "mpi_sum: %s", mpi_msg(rc, b));
        return TG_ERR;
    }
    return TG_OK;
}

void tg_mpi_abort(int status)
{
    if (started)
        MPI_Abort(MPI_COMM_WORLD, status);
}

void tg_mpi_finalize(void)
{
    if (!started)
        return;
    for (int k = 0; k < 2; k++) {
        tg_free_aligned(bucket[k]);
        bucket[k] = NULL;
    }
    started = false;
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin)
        MPI_Finalize();
}

#endif
