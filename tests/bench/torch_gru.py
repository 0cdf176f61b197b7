#!/usr/bin/python3
"""The PyTorch twin of `tapegrad train --model gru` (seeds/gru_lm.c): the
same character-level GRU language model, initialisation, optimizer,
schedule and batches, in float32 on one thread.

  nn.Embedding(V, D) -> nn.GRU(D, D, num_layers=L, batch_first=True)
  -> nn.Linear(D, V); loss = mean cross-entropy over the B*T positions.

  Initialisation: PyTorch's defaults, as seeds/gru_lm.c draws them (the
  distributions, not the numbers): embedding N(0, 1), GRU weights and biases
  U(-1/sqrt(D), 1/sqrt(D)), head U(-1/sqrt(D), 1/sqrt(D)).
  Optimizer: AdamW, weight decay only on the GRU matrices and the head's
  weight (m->decay), gradient clipping at 1.0 (clip_grad_norm_), learning
  rate: linear warmup over --warmup steps to --lr, then cosine down to
  --min-lr at the last step (the recipe of tools/train_lm.c).
  Data: tests/bench/lm_data.py, which reproduces tg_text_load and
  tg_text_batch bit for bit: the word list split with val fraction 0.1 and
  --split-seed (LM_SPLIT_SEED, 1234), and step s trains on batch index s of
  --seed, exactly the batch the C run sees.  Validation loss: mean CE over the
  first --val-rows validation windows (tg_text_window_batch order; all of
  them with --val-rows 0).

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 tests/bench/torch_gru.py \\
        [--data /usr/share/dict/american-english] [--steps 2000] [--layers 1] [--width 256] ...

The defaults are those of `tapegrad train --model gru` (lm_recipe_default:
1 layer of width 256, ctx 32, batch 32, lr 3e-3, 2000 steps, warmup 100).

Prints the train loss every --every steps, the validation loss then and at
the end, ms/step (training only, evaluations excluded) and a few samples.
Run it with OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1: Debian's torch uses
OpenBLAS threads that torch.set_num_threads does not control."""
import argparse
import os
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lm_data  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--data", default="/usr/share/dict/american-english")
p.add_argument("--val-fraction", type=float, default=0.1)
p.add_argument("--split-seed", type=int, default=1234, help="LM_SPLIT_SEED")
p.add_argument("--seed", type=int, default=1,
               help="the batches' seed (tg_text_batch), as --seed of tapegrad train; also "
                    "torch.manual_seed (the initial weights cannot be C's)")
p.add_argument("--steps", type=int, default=2000)
p.add_argument("--batch", type=int, default=32)
p.add_argument("--ctx", type=int, default=32)
p.add_argument("--layers", type=int, default=1)
p.add_argument("--width", type=int, default=256)
p.add_argument("--lr", type=float, default=3e-3)
p.add_argument("--min-lr", type=float, default=None, help="default: lr / 10")
p.add_argument("--warmup", type=int, default=None, help="default: 100, at most steps/10")
p.add_argument("--beta1", type=float, default=0.9)
p.add_argument("--beta2", type=float, default=0.95)
p.add_argument("--weight-decay", type=float, default=0.1)
p.add_argument("--clip", type=float, default=1.0)
p.add_argument("--every", type=int, default=100)
p.add_argument("--val-rows", type=int, default=0, help="0: every validation window")
p.add_argument("--samples", type=int, default=3)
p.add_argument("--threads", type=int, default=1)
a = p.parse_args()
if a.min_lr is None:
    a.min_lr = a.lr / 10
if a.warmup is None:
    a.warmup = min(100, a.steps // 10)
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)

text = lm_data.load(a.data, a.val_fraction, a.split_seed)
V, D, L, B, T = text.vocab, a.width, a.layers, a.batch, a.ctx


class GruLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(V, D)            # N(0, 1)
        self.gru = nn.GRU(D, D, num_layers=L, batch_first=True)  # U(-1/sqrt(D), 1/sqrt(D))
        self.head = nn.Linear(D, V)              # U(-1/sqrt(D), 1/sqrt(D)) weight and bias

    def forward(self, x, h=None):
        out, h = self.gru(self.emb(x), h)
        return self.head(out), h


model = GruLM()
decay = [model.head.weight] + [w for n, w in model.gru.named_parameters() if n.startswith("weight")]
ids = {id(w) for w in decay}
no_decay = [w for w in model.parameters() if id(w) not in ids]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                         {"params": no_decay, "weight_decay": 0.0}],
                        lr=a.lr, betas=(a.beta1, a.beta2), eps=1e-8)
lossf = nn.CrossEntropyLoss()


def val_loss():
    model.eval()
    total, rows = 0.0, 0
    with torch.no_grad():
        for x, y, n in lm_data.val_windows(text, B, T, a.val_rows):
            logits, _ = model(torch.from_numpy(x[:n]))
            total += float(lossf(logits.reshape(-1, V), torch.from_numpy(y[:n]).reshape(-1))) * n
            rows += n
    model.train()
    return total / max(rows, 1), rows


def sample(n, gen):
    """n tokens after '\\n', sampled at temperature 1."""
    model.eval()
    out = []
    with torch.no_grad():
        tok = torch.tensor([[text.id_of[10]]])
        h = None
        for _ in range(n):
            logits, h = model(tok, h)
            p_ = torch.softmax(logits[0, -1], -1)
            tok = torch.multinomial(p_, 1, generator=gen).view(1, 1)
            out.append(int(tok))
    model.train()
    return text.decode(out)


print("torch gru: vocab %d, %d layer(s), width %d, batch %d, ctx %d, %d steps, lr %g -> %g "
      "(warmup %d), AdamW betas %g/%g wd %g, clip %g, %d parameters"
      % (V, L, D, B, T, a.steps, a.lr, a.min_lr, a.warmup, a.beta1, a.beta2, a.weight_decay,
         a.clip, sum(w.numel() for w in model.parameters())), flush=True)
train_time, recent = 0.0, []
for step in range(a.steps):
    x, y = lm_data.batch(text, 0, a.seed, step, B, T)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    t0 = time.perf_counter()
    for g in opt.param_groups:
        g["lr"] = lm_data.lm_lr(a.lr, a.min_lr, a.warmup, a.steps, step)
    opt.zero_grad()
    logits, _ = model(x)
    loss = lossf(logits.reshape(-1, V), y.reshape(-1))
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), a.clip)
    opt.step()
    train_time += time.perf_counter() - t0
    recent.append(float(loss))
    if (step + 1) % a.every == 0 or step + 1 == a.steps:
        vl, rows = val_loss()
        print("step %5d  train loss %.4f (mean of the last %d)  val loss %.4f (%d rows)  %.1f ms/step"
              % (step + 1, sum(recent) / len(recent), len(recent), vl, rows,
                 1e3 * train_time / (step + 1)), flush=True)
        recent = []
vl, rows = val_loss()
print("final val loss %.4f over %d windows of %d; %.1f ms/step (%d steps, %.1f s training)"
      % (vl, rows, T, 1e3 * train_time / a.steps, a.steps, train_time))
gen = torch.Generator().manual_seed(a.seed)
for i in range(a.samples):
    print("sample %d: %s" % (i + 1, sample(60, gen).replace("\n", " ")))
