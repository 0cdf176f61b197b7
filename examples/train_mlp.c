/* The README's example: a 2-layer MLP learning to tell which of two
 * interleaved spirals a point belongs to.  Build the graph once, then every
 * step only replays it on the next batch, differentiates and updates. */
#include <tapegrad.h>
#include <math.h>

#define PI 3.14159265358979323846

int main(void)
{
    enum { N = 512, B = 64, H = 64 };
    tg_err err;
    tg_dataset data; /* two spirals: x = r·(cos, sin)(θ + πy), label y */
    tg_dataset_new(&data, N, 2, 2, &err);
    tg_rng rng;
    tg_rng_seed(&rng, 42);
    for (int i = 0; i < N; i++) {
        double r = tg_rng_uniform(&rng), th = 3 * PI * r + PI * (i % 2);
        data.x[2 * i] = (float)(r * cos(th) + 0.02 * tg_rng_normal(&rng));
        data.x[2 * i + 1] = (float)(r * sin(th) + 0.02 * tg_rng_normal(&rng));
        data.y[i] = i % 2;
    }

    tg_tape *tape = tg_tape_new();
    tg_tensor *x = tg_input(tape, "x", TG_F32, 2, (size_t[]){B, 2});
    tg_tensor *y = tg_input(tape, "y", TG_I32, 1, (size_t[]){B});
    tg_tensor *W1 = tg_param(tape, "W1", TG_F32, 2, (size_t[]){2, H});
    tg_tensor *b1 = tg_param(tape, "b1", TG_F32, 1, (size_t[]){H});
    tg_tensor *W2 = tg_param(tape, "W2", TG_F32, 2, (size_t[]){H, 2});
    tg_tensor *b2 = tg_param(tape, "b2", TG_F32, 1, (size_t[]){2});
    tg_init_he(W1, &rng);
    tg_init_xavier(W2, &rng);

    tg_tensor *h = tg_tanh(tg_add_bias(tg_matmul(x, W1), b1));
    tg_tensor *loss = tg_softmax_ce(tg_add_bias(tg_matmul(h, W2), b2), y, TG_MEAN);
    tg_optim *adam = tg_adam_new(tape, 0, NULL, &(tg_adam_opts){.lr = 0.01});
    tg_batcher batches;
    tg_batcher_init(&batches, &data, B, true, true, 1, &err);
    if (!loss || !adam) {
        fprintf(stderr, "%s\n", tg_tape_error(tape));
        return 1;
    }

    for (int epoch = 1; epoch <= 500; epoch++) {
        double sum = 0;
        int steps = 0;
        while (tg_batcher_next(&batches, x, y) > 0) { /* copies the batch into x, y */
            tg_zero_grad(tape);
            tg_replay(tape);      /* forward on the new batch, no allocation */
            tg_backward(loss);    /* every gradient, one reverse walk */
            tg_optim_step(adam);
            sum += tg_item(loss), steps++;
        }
        if (epoch % 100 == 0)
            printf("epoch %3d  loss %.4f\n", epoch, sum / steps);
    }
    double final = tg_item(loss);
    tg_batcher_free(&batches);
    tg_optim_free(adam);
    tg_tape_free(tape);
    tg_dataset_free(&data);
    return final < 0.2 ? 0 : 1; /* the test suite runs this program */
}
