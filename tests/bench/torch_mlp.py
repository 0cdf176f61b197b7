#!/usr/bin/python3
"""The PyTorch side of bench_mlp: the same MLP training step (forward,
backward, SGD update) timed the same way, for the README's comparison.

  /usr/bin/python3 tests/bench/torch_mlp.py --layers 784,512,512,10 --batch 128 \
      [--act relu|sigmoid] [--loss ce|mse] [--dtype f32|f64] [--threads T] [--steps S]

Prints as its last line:
  torch layers=.. batch=.. act=.. loss=.. dtype=.. threads=.. us_per_step=X cpu_per_wall=C
(median over S steps after a warm-up, like bench_mlp).  cpu_per_wall is the
process's CPU time over the wall time of the timed steps: 1.0 means one core.
Debian's torch 1.13 computes matrix products with OpenBLAS, whose threads
torch.set_num_threads does not control: with --threads 1 alone it still uses
every core (cpu_per_wall about 2 on two cores); run with OPENBLAS_NUM_THREADS=1
OMP_NUM_THREADS=1 for a single-core figure."""
import argparse
import resource
import statistics
import time

import torch

p = argparse.ArgumentParser()
p.add_argument("--layers", default="784,512,512,10")
p.add_argument("--batch", type=int, default=128)
p.add_argument("--act", choices=["relu", "sigmoid"], default="relu")
p.add_argument("--loss", choices=["ce", "mse"], default="ce")
p.add_argument("--dtype", choices=["f32", "f64"], default="f32")
p.add_argument("--threads", type=int, default=1)
p.add_argument("--steps", type=int, default=200)
a = p.parse_args()

torch.set_num_threads(a.threads)
torch.manual_seed(1)
dt = torch.float32 if a.dtype == "f32" else torch.float64
sizes = [int(s) for s in a.layers.split(",")]
mods = []
for i in range(len(sizes) - 1):
    mods.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
    if i + 2 < len(sizes):
        mods.append(torch.nn.ReLU() if a.act == "relu" else torch.nn.Sigmoid())
if a.act == "sigmoid" and a.loss == "mse":  # the seed-002 style net: sigmoid output too
    mods.append(torch.nn.Sigmoid())
net = torch.nn.Sequential(*mods).to(dt)
opt = torch.optim.SGD(net.parameters(), lr=0.01)
x = torch.randn(a.batch, sizes[0], dtype=dt)
if a.loss == "ce":
    y = torch.randint(0, sizes[-1], (a.batch,))
    lossf = torch.nn.CrossEntropyLoss()
else:
    y = torch.rand(a.batch, sizes[-1], dtype=dt)
    lossf = torch.nn.MSELoss()


def step():
    opt.zero_grad()
    loss = lossf(net(x), y)
    loss.backward()
    opt.step()


for _ in range(max(20, a.steps // 10)):
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
us = statistics.median(times) * 1e6
print(f"torch layers={a.layers} batch={a.batch} act={a.act} loss={a.loss} dtype={a.dtype} "
      f"threads={a.threads} us_per_step={us:.1f} cpu_per_wall={cpu / wall:.2f}")
