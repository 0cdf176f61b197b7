#!/bin/sh
# The README's GPT step figures in one session: one training step (zero_grad,
# forward, backward, clip at 1.0, AdamW) of the character-level GPT of
# seeds/lm.h (batch 32, ctx 32, 4 layers, 4 heads, width 128, vocab 70, f32),
# tapegrad (bench_gpt) against PyTorch (torch_gpt.py step), both on one core,
# alternating runs, the median of R runs of each (each run: the median of S
# steps after a warm-up).  Also the CPU time per step of each side (less
# sensitive to other load on the machine than the wall time).
#   tests/bench/compare_gpt.sh BUILD_DIR [R] [S]
set -eu
B=${1:?usage: compare_gpt.sh BUILD_DIR [REPEATS] [STEPS]}/tests/bench
R=${2:-5}
S=${3:-30}
# one core each; as in compare_cnn.sh, glibc keeps PyTorch's freed pages
E="env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1"
E="$E MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824"
T="$(dirname "$0")/torch_gpt.py"
med() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" | tail -n 1; }

tc=""; pc=""; tcpu=""; pcpu=""
for i in $(seq "$R"); do
    out=$(OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 "$B/bench_gpt" --threads 1 --steps "$S")
    tc="$tc $(echo "$out" | field us_per_step)"
    tcpu="$tcpu $(echo "$out" | field cpu_us_per_step)"
    out=$($E /usr/bin/python3 "$T" step --threads 1 --steps "$S")
    pc="$pc $(echo "$out" | field us_per_step)"
    pcpu="$pcpu $(echo "$out" | field cpu_us_per_step)"
done
mt=$(echo "$tc" | med); mp=$(echo "$pc" | med)
ct=$(echo "$tcpu" | med); cp=$(echo "$pcpu" | med)
echo "== GPT training step (batch 32, ctx 32, 4 layers, 4 heads, width 128, f32): microseconds (median of $R)"
echo "  tapegrad 1 thread: $mt   (runs:$tc)"
echo "  PyTorch 1 core:    $mp   (runs:$pc)"
echo "  CPU time per step: tapegrad $ct, PyTorch $cp"
awk -v a="$mt" -v b="$mp" -v c="$ct" -v d="$cp" 'BEGIN {
    printf "  tapegrad / PyTorch, one core: %.2fx (wall), %.2fx (CPU time)\n", a / b, c / d }'
