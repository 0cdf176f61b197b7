#!/usr/bin/python3
"""The PyTorch side of bench_cnn and of `tapegrad train --model cnn`: the
same convolutional network (seeds/cnn.h) in PyTorch.

  Step time (like bench_cnn: forward, backward, SGD lr 0.01, batch B, f32):
    /usr/bin/python3 tests/bench/torch_cnn.py step [--batch 128] [--steps S] [--threads T]
  last line: torch cnn batch=.. threads=.. us_per_step=X cpu_per_wall=C

  Training (like tapegrad train --model cnn: Adam lr 1e-3, batch 128,
  standardised pixels, test accuracy in eval mode after every epoch):
    /usr/bin/python3 tests/bench/torch_cnn.py train [--epochs 10] [--schedule none|cosine]
        [--data DIR] [--seed S] [--limit N]
  one line per epoch: epoch E  train loss L  test accuracy A%  T s (ms a step, cpu_per_wall)

Run with OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 (and --threads 1) for a
one-core figure: Debian's torch uses OpenBLAS threads that
torch.set_num_threads does not control."""
import argparse
import gzip
import math
import os
import resource
import statistics
import struct
import time

import numpy as np
import torch
from torch import nn

p = argparse.ArgumentParser()
p.add_argument("mode", choices=["step", "train"])
p.add_argument("--batch", type=int, default=128)
p.add_argument("--steps", type=int, default=50)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--epochs", type=int, default=10)
p.add_argument("--dropout", type=float, default=0.25)
p.add_argument("--lr", type=float, default=1e-3)
p.add_argument("--schedule", choices=["none", "cosine"], default="none")
p.add_argument("--seed", type=int, default=1)
p.add_argument("--limit", type=int, default=0, help="train on the first N samples only")
p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)


def block(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.MaxPool2d(2)]


net = nn.Sequential(*block(1, 32), *block(32, 64), nn.Dropout(a.dropout), nn.Flatten(),
                    nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))
for m in net.modules():  # He normal weights, zero biases: as seeds/cnn.c
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        if m.bias is not None:
            nn.init.zeros_(m.bias)
lossf = nn.CrossEntropyLoss()


def step_mode():
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    x = torch.randn(a.batch, 1, 28, 28)
    y = torch.randint(0, 10, (a.batch,))

    def step():
        opt.zero_grad()
        loss = lossf(net(x), y)
        loss.backward()
        opt.step()

    for _ in range(max(5, a.steps // 10)):
        step()
    times = []
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    w0 = time.perf_counter()
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    wall = time.perf_counter() - w0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    print(f"torch cnn batch={a.batch} threads={a.threads} "
          f"us_per_step={statistics.median(times) * 1e6:.1f} cpu_per_wall={cpu / wall:.2f}")


def idx(path):
    with gzip.open(path) if path.endswith(".gz") else open(path, "rb") as f:
        raw = f.read()
    nd = raw[3]
    dims = struct.unpack(">" + "I" * nd, raw[4:4 + 4 * nd])
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * nd).reshape(dims)


def load(stem):
    def find(name):
        path = os.path.join(a.data, name)
        return path if os.path.exists(path) else path + ".gz"
    x = idx(find(f"{stem}-images-idx3-ubyte")).astype(np.float32) / 255
    y = idx(find(f"{stem}-labels-idx1-ubyte")).astype(np.int64)
    return x, y


def train_mode():
    xtr, ytr = load("train")
    if a.limit:
        xtr, ytr = xtr[:a.limit], ytr[:a.limit]
    xte, yte = load("t10k")
    mean, sd = xtr.mean(dtype=np.float64), xtr.std(dtype=np.float64)  # as tapegrad train
    xtr = torch.from_numpy((xtr - mean) / sd).float().unsqueeze(1)
    xte = torch.from_numpy((xte - mean) / sd).float().unsqueeze(1)
    ytr, yte = torch.from_numpy(ytr), torch.from_numpy(yte)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    g = torch.Generator().manual_seed(a.seed)
    steps = len(xtr) // a.batch  # drop the last partial batch, as tapegrad train
    for e in range(a.epochs):
        if a.schedule == "cosine":  # per epoch, as tapegrad train --schedule cosine
            for grp in opt.param_groups:
                grp["lr"] = a.lr * (1 + math.cos(math.pi * e / a.epochs)) / 2
        net.train()
        t0 = time.perf_counter()
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        perm = torch.randperm(len(xtr), generator=g)
        total = 0.0
        for s in range(steps):
            i = perm[s * a.batch:(s + 1) * a.batch]
            opt.zero_grad()
            loss = lossf(net(xtr[i]), ytr[i])
            loss.backward()
            opt.step()
            total += loss.item()
        secs = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        net.eval()
        with torch.no_grad():
            right = sum((net(xte[k:k + 1000]).argmax(1) == yte[k:k + 1000]).sum().item()
                        for k in range(0, len(xte), 1000))
        print(f"epoch {e + 1:2d}  train loss {total / steps:.4f}  test accuracy "
              f"{100 * right / len(xte):.2f}%  {secs:.2f} s  ({1e3 * secs / steps:.1f} ms a step, "
              f"cpu_per_wall {cpu / secs:.2f})", flush=True)


step_mode() if a.mode == "step" else train_mode()
