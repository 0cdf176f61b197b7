#!/bin/sh
# The README's Performance table in one session: bench_gemm against OpenBLAS,
# bench_mlp against PyTorch (python3-torch), alternating runs, median of R.
#   tests/bench/compare.sh BUILD_DIR [R]
# OpenBLAS's best (AVX-512) kernel is used: OPENBLAS_CORETYPE and
# OPENBLAS_L2_SIZE, which this machine sets, are unset for these commands.
set -eu
B=${1:?usage: compare.sh BUILD_DIR [REPEATS]}/tests/bench
R=${2:-3}
E="env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE"
T="$(dirname "$0")/torch_mlp.py"
med() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" | tail -n 1; }

echo "== GEMM, f32, 1 thread: GFLOP/s (median of $R), tapegrad / OpenBLAS"
for a in "--m 512 --n 512 --k 512" "--m 128 --n 512 --k 784" "--m 128 --n 512 --k 512" \
         "--m 128 --n 10 --k 512" "--ta --m 784 --n 512 --k 128" "--ta --m 512 --n 512 --k 128" \
         "--ta --m 512 --n 10 --k 128" "--tb --m 128 --n 512 --k 512" "--tb --m 128 --n 512 --k 10" \
         "--m 512 --n 512 --k 512 --dtype f64"; do
    out=$(for i in $(seq "$R"); do $E "$B/bench_gemm" $a --threads 1 | tail -n 1; done)
    tg=$(echo "$out" | field gflops | med)
    ob=$(echo "$out" | field openblas_gflops | med)
    echo "  $a: $tg / ${ob:-n/a}"
done

echo "== MLP training step (forward, backward, SGD), f32: microseconds (median of $R)"
echo "   tapegrad 1 thread | tapegrad 2 threads | torch 1 core | torch default (set_num_threads(1))"
for cfg in "784,512,512,10 128 relu ce 200" "256,256,10 64 relu ce 2000" \
           "4,5,3 32 sigmoid mse 100000" "784,1024,1024,10 256 relu ce 40"; do
    set -- $cfg
    a="--layers $1 --batch $2 --act $3 --loss $4"
    ts=$(( $5 > 3000 ? 3000 : $5 ))
    t1=""; t2=""; p1=""; p0=""
    for i in $(seq "$R"); do
        t1="$t1 $("$B/bench_mlp" $a --steps "$5" --threads 1 | field us_per_step)"
        t2="$t2 $("$B/bench_mlp" $a --steps "$5" --threads 2 | field us_per_step)"
        p1="$p1 $($E OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 "$T" $a --steps $ts | field us_per_step)"
        p0="$p0 $($E /usr/bin/python3 "$T" $a --steps $ts | field us_per_step)"
    done
    m() { echo "$1" | tr ' ' '\n' | grep . | med; }
    echo "  $1 batch $2 $3 $4: $(m "$t1") | $(m "$t2") | $(m "$p1") | $(m "$p0")"
done
