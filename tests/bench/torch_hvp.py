#!/usr/bin/python3
"""The PyTorch side of bench_hvp: a Hessian-vector product of the MLP's
softmax cross-entropy loss with respect to all parameters, by double
backward (torch.autograd.grad with create_graph=True, then the gradient of
<g, v>), and one plain gradient, each timed as the median over S runs.

  /usr/bin/python3 tests/bench/torch_hvp.py [--layers 784,512,512,10] [--batch 128]
      [--act relu|tanh] [--dtype f32|f64] [--steps S]

Last line: torch_hvp layers=.. batch=.. act=.. dtype=.. grad_us=.. hvp_us=..
For a one-core figure run with OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
(torch.set_num_threads(1) is set here too)."""
import argparse
import statistics
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--layers", default="784,512,512,10")
p.add_argument("--batch", type=int, default=128)
p.add_argument("--act", choices=["relu", "tanh"], default="relu")
p.add_argument("--dtype", choices=["f32", "f64"], default="f32")
p.add_argument("--steps", type=int, default=50)
a = p.parse_args()

torch.set_num_threads(1)
torch.manual_seed(1)
dt = torch.float32 if a.dtype == "f32" else torch.float64
sizes = [int(s) for s in a.layers.split(",")]
mods = []
for i in range(len(sizes) - 1):
    mods.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
    if i + 2 < len(sizes):
        mods.append(torch.nn.ReLU() if a.act == "relu" else torch.nn.Tanh())
net = torch.nn.Sequential(*mods).to(dt)
params = list(net.parameters())
x = torch.randn(a.batch, sizes[0], dtype=dt)
y = torch.randint(0, sizes[-1], (a.batch,))
v = [torch.randn_like(q) for q in params]
lossf = torch.nn.CrossEntropyLoss()


def grad():
    loss = lossf(net(x), y)
    return torch.autograd.grad(loss, params)


def hvp():
    loss = lossf(net(x), y)
    g = torch.autograd.grad(loss, params, create_graph=True)
    s = sum((gi * vi).sum() for gi, vi in zip(g, v))
    return torch.autograd.grad(s, params)


def median_us(f):
    for _ in range(max(10, a.steps // 10)):
        f()
    t = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        f()
        t.append(time.perf_counter() - t0)
    return statistics.median(t) * 1e6


g_us = median_us(grad)
h_us = median_us(hvp)
print(f"torch_hvp layers={a.layers} batch={a.batch} act={a.act} dtype={a.dtype} "
      f"grad_us={g_us:.1f} hvp_us={h_us:.1f}")
