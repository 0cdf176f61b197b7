#!/usr/bin/python3
"""The PyTorch side of bench_gpt and of `tapegrad train --model gpt`: the
character-level GPT of seeds/gpt.c (nanoGPT's architecture) in PyTorch.

  token + position embeddings; L pre-LayerNorm blocks
    x = x + drop(proj(attn(ln1(x))));  x = x + drop(fc2(gelu(fc1(ln2(x)))))
  with causal multi-head attention (one qkv linear D -> 3D, H heads), exact
  erf GELU (nn.GELU()), layer norm eps 1e-5; final layer norm; linear head
  D -> V without bias (untied).  Init as nanoGPT and seeds/gpt.c: weights and
  embeddings N(0, 0.02), the residual projections (attn proj, fc2)
  N(0, 0.02/sqrt(2L)), biases 0, LayerNorm 1/0.  AdamW weight decay only on
  the 2-D matmul weights (qkv, proj, fc1, fc2, head), as m->decay.

  Step time (like bench_gpt: zero_grad, forward, backward, clip at 1.0,
  AdamW lr 3e-4 betas (0.9, 0.95) wd 0.1; fixed random tokens):
    /usr/bin/python3 tests/bench/torch_gpt.py step [--batch 32] [--ctx 32] [--layers 4]
        [--heads 4] [--width 128] [--vocab 70] [--steps S] [--threads T]
  last line: torch gpt batch=.. ... threads=.. us_per_step=X cpu_us_per_step=C cpu_per_wall=W

  Training (like `tapegrad train --model gpt`: the same batches, drawn by
  tests/bench/lm_data.py exactly as tg_text_batch draws them; recipe below):
    /usr/bin/python3 tests/bench/torch_gpt.py train [--steps N] [--data FILE] ...
  prints train loss every --log steps, the validation loss (mean CE over the
  first --val-rows validation windows) and generated samples.

  The loss of tests/test_gpt.c's fixed-weight check (float64; parameters
  from the pattern below, in seeds/gpt.c's order and layout):
    /usr/bin/python3 tests/bench/torch_gpt.py pattern --batch 2 --ctx 4 --layers 2 \
        --heads 2 --width 8 --vocab 7 --dtype f64

Run with OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 (and --threads 1) for a
one-core figure."""
import argparse
import math
import os
import resource
import statistics
import sys
import time

import torch
from torch import nn
from torch.nn import functional as F

p = argparse.ArgumentParser()
p.add_argument("mode", choices=["step", "train", "pattern"])
p.add_argument("--batch", type=int, default=32)
p.add_argument("--ctx", type=int, default=32)
p.add_argument("--layers", type=int, default=4)
p.add_argument("--heads", type=int, default=4)
p.add_argument("--width", type=int, default=128)
p.add_argument("--vocab", type=int, default=70, help="step mode only (train: the data's)")
p.add_argument("--dropout", type=float, default=0.0)
p.add_argument("--steps", type=int, default=None,
               help="timed steps (step mode, default 50) or training steps (default 2000)")
p.add_argument("--threads", type=int, default=1)
p.add_argument("--lr", type=float, default=3e-3)
p.add_argument("--min-lr", type=float, default=None, help="default lr/10")
p.add_argument("--warmup", type=int, default=None, help="default 100, at most steps/10")
p.add_argument("--weight-decay", type=float, default=0.1)
p.add_argument("--clip", type=float, default=1.0)
p.add_argument("--seed", type=int, default=1, help="initialisation (torch.manual_seed)")
p.add_argument("--data-seed", type=int, default=1)
p.add_argument("--val-fraction", type=float, default=0.1)
p.add_argument("--val-rows", type=int, default=0, help="0: every validation window")
p.add_argument("--log", type=int, default=100)
p.add_argument("--samples", type=int, default=3)
p.add_argument("--data", default="/usr/share/dict/american-english")
p.add_argument("--dtype", choices=["f32", "f64"], default="f32")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
DT = torch.float64 if a.dtype == "f64" else torch.float32


class Block(nn.Module):
    def __init__(self, d, h, p):
        super().__init__()
        self.h = h
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)
        self.gelu = nn.GELU()  # exact erf, as tg_gelu
        self.drop = nn.Dropout(p)

    def forward(self, x):
        b, t, d = x.shape
        hd = d // self.h
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q = q.view(b, t, self.h, hd).transpose(1, 2)
        k = k.view(b, t, self.h, hd).transpose(1, 2)
        v = v.view(b, t, self.h, hd).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        mask = torch.ones(t, t, dtype=torch.bool).tril()
        att = F.softmax(att.masked_fill(~mask, float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.drop(self.proj(y))
        return x + self.drop(self.fc2(self.gelu(self.fc1(self.ln2(x)))))


class GPT(nn.Module):
    def __init__(self, vocab, ctx, layers, heads, width, dropout):
        super().__init__()
        self.wte = nn.Embedding(vocab, width)
        self.wpe = nn.Parameter(torch.zeros(ctx, width))
        self.blocks = nn.ModuleList(Block(width, heads, dropout) for _ in range(layers))
        self.ln_f = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocab, bias=False)
        for name, q in self.named_parameters():  # nanoGPT's initialisation
            if name.endswith("proj.weight") or name.endswith("fc2.weight"):
                nn.init.normal_(q, 0.0, 0.02 / math.sqrt(2 * layers))
            elif q.dim() == 2:
                nn.init.normal_(q, 0.0, 0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(q)

    def forward(self, x):
        h = self.wte(x) + self.wpe[: x.shape[1]]
        for blk in self.blocks:
            h = blk(h)
        return self.head(self.ln_f(h))

    def loss(self, x, y):
        logits = self(x)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    def optimizer(self, lr, wd):
        # weight decay on the 2-D matmul weights only (seeds/gpt.c's m->decay)
        decay = [q for n, q in self.named_parameters()
                 if q.dim() == 2 and n not in ("wte.weight", "wpe")]
        other = [q for n, q in self.named_parameters()
                 if not (q.dim() == 2 and n not in ("wte.weight", "wpe"))]
        return torch.optim.AdamW([{"params": decay, "weight_decay": wd},
                                  {"params": other, "weight_decay": 0.0}],
                                 lr=lr, betas=(0.9, 0.95), eps=1e-8)


def step_mode():
    steps = a.steps or 50
    net = GPT(a.vocab, a.ctx, a.layers, a.heads, a.width, a.dropout).to(DT)
    opt = net.optimizer(3e-4, 0.1)
    g = torch.Generator().manual_seed(2)
    x = torch.randint(0, a.vocab, (a.batch, a.ctx), generator=g)
    y = torch.randint(0, a.vocab, (a.batch, a.ctx), generator=g)

    def step():
        opt.zero_grad()
        loss = net.loss(x, y)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        return loss

    for _ in range(max(3, steps // 10)):
        step()
    times = []
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    w0 = time.perf_counter()
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
    wall = time.perf_counter() - w0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    print(f"loss {loss.item():.4f}, fastest step {min(times) * 1e6:.0f} us, "
          f"slowest {max(times) * 1e6:.0f} us")
    print(f"torch gpt batch={a.batch} ctx={a.ctx} layers={a.layers} heads={a.heads} "
          f"width={a.width} vocab={a.vocab} dtype={a.dtype} threads={a.threads} "
          f"us_per_step={statistics.median(times) * 1e6:.1f} cpu_us_per_step={cpu / steps * 1e6:.1f} "
          f"cpu_per_wall={cpu / wall:.2f}")


def train_mode():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import lm_data  # tests/bench/lm_data.py: tg_text_* in Python, bit for bit

    steps = a.steps or 2000
    warmup = min(100, steps // 10) if a.warmup is None else a.warmup  # as train_lm.c
    text = lm_data.load(a.data, a.val_fraction, 1234)  # LM_SPLIT_SEED
    V, T, B = text.vocab, a.ctx, a.batch
    net = GPT(V, T, a.layers, a.heads, a.width, a.dropout).to(DT)
    opt = net.optimizer(a.lr, a.weight_decay)
    nparams = sum(q.numel() for q in net.parameters())
    print(f"torch gpt: vocab {V}, {text.words_train} training words ({text.n_train} tokens), "
          f"{text.words_val} validation words ({text.n_val} tokens), {nparams} parameters; "
          f"{steps} steps, batch {B}, ctx {T}, lr {a.lr} warmup {warmup}, seed {a.seed}",
          flush=True)

    def val_loss():
        net.eval()
        total, rows = 0.0, 0
        with torch.no_grad():
            for x, y, r in lm_data.val_windows(text, B, T, a.val_rows):
                logits = net(torch.from_numpy(x[:r]))
                total += F.cross_entropy(logits.double().reshape(-1, V),
                                         torch.from_numpy(y[:r]).reshape(-1),
                                         reduction="sum").item()
                rows += r
        net.train()
        return total / (rows * T)

    since, n_since, t0 = 0.0, 0, time.perf_counter()
    for s in range(steps):
        lr = lm_data.lm_lr(a.lr, a.lr * 0.1, warmup, steps, s)
        for grp in opt.param_groups:
            grp["lr"] = lr
        x, y = lm_data.batch(text, 0, a.seed, s, B, T)
        opt.zero_grad()
        loss = net.loss(torch.from_numpy(x), torch.from_numpy(y))
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), a.clip)
        opt.step()
        since += loss.item()
        n_since += 1
        if (s + 1) % a.log == 0 or s + 1 == steps:
            dt = time.perf_counter() - t0
            print(f"step {s + 1:5d}  train loss {since / n_since:.4f}  val loss {val_loss():.4f}  "
                  f"lr {lr:.2e}  {1e3 * dt / n_since:.1f} ms/step", flush=True)
            since, n_since, t0 = 0.0, 0, time.perf_counter()
    # samples: words drawn letter by letter after a newline (temperature 1)
    net.eval()
    g = torch.Generator().manual_seed(a.seed)
    nl = text.id_of[ord("\n")]
    with torch.no_grad():
        for _ in range(a.samples):
            ids = [nl]
            while len(ids) < 64:
                ctx = torch.tensor([ids[-T:]])
                p = F.softmax(net(ctx)[0, -1].double(), dim=-1)
                nxt = int(torch.multinomial(p, 1, generator=g))
                if nxt == nl:
                    break
                ids.append(nxt)
            print("sample:", text.decode(ids[1:]))


def pattern_mode():
    """Parameter p (0-based, in creation order) element i (row-major in
    seeds/gpt.c's layout: matrices [in, out]) = 0.3·sin(0.37·i + 1.1·p + 0.3);
    tokens x[b,t] = (3b + 5t + 1) mod V, y[b,t] = (2b + 3t + 4) mod V.
    Prints the mean cross-entropy."""
    V, T, B = a.vocab, a.ctx, a.batch
    net = GPT(V, T, a.layers, a.heads, a.width, 0.0).to(DT)
    with torch.no_grad():
        named = dict(net.named_parameters())  # (own wpe first: put wte first, as gpt.c)
        order = ["wte.weight", "wpe"] + [n for n in named if n not in ("wte.weight", "wpe")]
        for p, (name, q) in enumerate((n, named[n]) for n in order):
            i = torch.arange(q.numel(), dtype=torch.float64)
            v = 0.3 * torch.sin(0.37 * i + 1.1 * p + 0.3)
            if q.dim() == 2 and name not in ("wte.weight", "wpe"):  # nn.Linear: [out, in]
                q.copy_(v.reshape(q.shape[1], q.shape[0]).t())
            else:
                q.copy_(v.reshape(q.shape))
    b = torch.arange(B).reshape(B, 1)
    t = torch.arange(T).reshape(1, T)
    x, y = (3 * b + 5 * t + 1) % V, (2 * b + 3 * t + 4) % V
    print(f"loss {net.loss(x, y).item():.17g}")


if a.mode == "pattern":
    pattern_mode()
elif a.mode == "step":
    step_mode()
else:
    train_mode()
