/* Is my hand-derived gradient right?  Softmax regression, L = mean CE(XW, y);
 * my derivation says dL/dW = Xᵀ(P − Y)/n.  The README shows this program. */
#include <tapegrad.h>

int main(void)
{
    enum { N = 8, D = 5, K = 3 };
    tg_tape *tape = tg_tape_new();
    tg_rng rng;
    tg_rng_seed(&rng, 1);
    tg_tensor *X = tg_input(tape, "X", TG_F64, 2, (size_t[]){N, D});
    tg_tensor *y = tg_input(tape, "y", TG_I32, 1, (size_t[]){N});
    tg_tensor *W = tg_param(tape, "W", TG_F64, 2, (size_t[]){D, K});
    tg_init_normal(X, &rng, 0, 1);
    tg_init_normal(W, &rng, 0, 1);
    for (int i = 0; i < N; i++)
        tg_set(y, (size_t)i, i % K);
    tg_tensor *Z = tg_matmul(X, W), *P = tg_softmax(Z);
    tg_tensor *L = tg_softmax_ce(Z, y, TG_MEAN);
    if (!L || tg_backward(L)) {
        fprintf(stderr, "%s\n", tg_tape_error(tape));
        return 1;
    }
    double mine[D * K] = {0}; /* dL/dW = Xᵀ (P − Y) / N, in plain loops */
    for (int i = 0; i < N; i++)
        for (int j = 0; j < D; j++)
            for (int c = 0; c < K; c++)
                mine[j * K + c] += tg_get(X, (size_t)(i * D + j)) *
                                   (tg_get(P, (size_t)(i * K + c)) - (i % K == c)) / N;
    tg_check chk;
    tg_check_grad(W, mine, TG_F64, &chk); /* compare with the tape's dL/dW */
    tg_check_print(stdout, "dL/dW", &chk);
    tg_tape_free(tape);
    return chk.max_rel <= 1e-8 ? 0 : 1;
}
