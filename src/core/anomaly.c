/* Anomaly mode: every value a node produces, forward and backward, checked
 * for NaN and Inf, with a message naming the op and the tensors. */
#include "core.h"

#include <stdio.h>

bool tg_set_anomaly(tg_tape *tape, bool on)
{
    if (!tape)
        return false;
    bool old = tape->anomaly;
    tape->anomaly = on;
    return old;
}

/* Index of the first NaN/Inf among n values of dtype, or SIZE_MAX. */
static size_t first_nonfinite(const void *p, int dtype, size_t n)
{
    if (dtype == TG_F32) {
        const float *f = p;
        for (size_t i = 0; i < n; i++)
            if (f[i] - f[i] != 0) /* NaN or ±Inf; avoids isfinite's libm call */
                return i;
    } else if (dtype == TG_F64) {
        const double *d = p;
        for (size_t i = 0; i < n; i++)
            if (d[i] - d[i] != 0)
                return i;
    }
    return SIZE_MAX;
}

/* "x = 'W1' (param 3x4), 'h' (relu 8x4)": the node's inputs, for messages */
static void describe_inputs(const tg_node *n, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; i < n->n_in && at < len; i++) {
        int w = snprintf(buf + at, len - at, "%s'%s' (%s %s)", i ? ", " : "", tg_label(n->in[i]),
                         tg_op_name(n->in[i]), tg_shp_of(n->in[i]).s);
        if (w < 0)
            break;
        at += (size_t)w;
    }
}

/* "NaN", "+Inf" or "-Inf" (printf's spelling of NaN varies with its sign) */
static const char *what(const void *p, int dtype, size_t i)
{
    double v = dtype == TG_F32 ? ((const float *)p)[i] : ((const double *)p)[i];
    return v != v ? "NaN" : v > 0 ? "+Inf" : "-Inf";
}

/* the name of a node's output: its name, else the op's name */
static const char *out_name(const tg_node *n)
{
    return n->out.name ? n->out.name : n->op->name;
}

int tg_anomaly_forward(tg_node *n)
{
    size_t i = first_nonfinite(n->out.data, n->out.dtype, n->out.size);
    if (i == SIZE_MAX)
        return TG_OK;
    char in[256];
    describe_inputs(n, in, sizeof in);
    return tg_fail(n, "anomaly: forward produced %s in output '%s' (%s) at element %zu; "
                      "inputs %s", what(n->out.data, n->out.dtype, i), out_name(n),
                   tg_shp_of(&n->out).s, i, in);
}

int tg_anomaly_backward(tg_node *n)
{
    for (int j = 0; j < n->n_in; j++) {
        tg_tensor *x = n->in[j];
        if (!x->live)
            continue;
        size_t i = first_nonfinite(x->grad, x->dtype, x->size);
        if (i == SIZE_MAX)
            continue;
        char in[256];
        describe_inputs(n, in, sizeof in);
        return tg_fail(n, "anomaly: backward produced %s in the gradient of input %d '%s' "
                          "(%s) at element %zu; output '%s'; inputs %s",
                       what(x->grad, x->dtype, i), j, tg_label(x), tg_shp_of(x).s, i,
                       out_name(n), in);
    }
    return TG_OK;
}
