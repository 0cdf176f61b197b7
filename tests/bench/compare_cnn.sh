#!/bin/sh
# The README's CNN figures in one session: one training step (forward,
# backward, SGD) of the network of seeds/cnn.h at batch 128, f32, tapegrad
# (bench_cnn) on 1 and 2 threads against PyTorch on one core
# (torch_cnn.py step), alternating runs, median of R; then the machine's
# parallel capacity (two 1-thread bench_cnn at once against one alone),
# and conv2d's GFLOP/s on the network's layer shapes (bench_conv).
#   tests/bench/compare_cnn.sh BUILD_DIR [R]
set -eu
B=${1:?usage: compare_cnn.sh BUILD_DIR [REPEATS]}/tests/bench
R=${2:-3}
# glibc's malloc returns PyTorch's large activations to the system after
# every step and faults them in again on the next (about 200 ms of a 270 ms
# step here); its own training loop escapes that by the dynamic mmap
# threshold.  The two MALLOC_ settings keep those pages, so the step is
# timed as it runs in training.  (tapegrad allocates nothing in a step.)
E="env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1"
E="$E MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824"
T="$(dirname "$0")/torch_cnn.py"
med() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" | tail -n 1; }

t1=""; t2=""; p1=""; cap=""
for i in $(seq "$R"); do
    t1="$t1 $("$B/bench_cnn" --threads 1 --steps 30 | field us_per_step)"
    t2="$t2 $("$B/bench_cnn" --threads 2 --steps 30 | field us_per_step)"
    p1="$p1 $($E /usr/bin/python3 "$T" step --threads 1 --steps 30 | field us_per_step)"
    # two 1-thread runs at once: the throughput of both over that of one alone
    a=$("$B/bench_cnn" --threads 1 --steps 30 | field us_per_step)
    "$B/bench_cnn" --threads 1 --steps 30 > "${TMPDIR:-/tmp}/cap1.$$" &
    "$B/bench_cnn" --threads 1 --steps 30 > "${TMPDIR:-/tmp}/cap2.$$"
    wait
    b1=$(field us_per_step < "${TMPDIR:-/tmp}/cap1.$$")
    b2=$(field us_per_step < "${TMPDIR:-/tmp}/cap2.$$")
    cap="$cap $(awk -v a="$a" -v b="$b1" -v c="$b2" 'BEGIN {printf "%.2f", a / b + a / c}')"
    rm -f "${TMPDIR:-/tmp}/cap1.$$" "${TMPDIR:-/tmp}/cap2.$$"
done
m1=$(echo "$t1" | med); m2=$(echo "$t2" | med); mp=$(echo "$p1" | med); mc=$(echo "$cap" | med)
echo "== CNN training step, batch 128, f32: microseconds (median of $R)"
echo "  tapegrad 1 thread:  $m1   (runs:$t1)"
echo "  tapegrad 2 threads: $m2   (runs:$t2)"
echo "  PyTorch 1 core:     $mp   (runs:$p1)"
awk -v a="$m1" -v b="$mp" -v c="$m2" -v k="$mc" 'BEGIN {
    printf "  tapegrad / PyTorch, one core: %.2fx\n", a / b
    printf "  2 threads: %.2fx the 1-thread speed; parallel capacity %.2fx (two 1-thread runs at once)\n", a / c, k }'
echo "== conv2d on the network's layer shapes (bench_conv)"
"$B/bench_conv" --threads 1 2>&1 | tail -n 12
