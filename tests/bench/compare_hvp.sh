#!/bin/sh
# Hessian-vector products: bench_hvp against PyTorch's double backward
# (torch_hvp.py) on one core, alternating R runs of each, medians.
#   tests/bench/compare_hvp.sh BUILD_DIR [R] [bench_hvp options...]
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (set on this machine, they pick a
# slower OpenBLAS kernel) are unset for the PyTorch runs only.  PyTorch also
# gets glibc's mmap and trim thresholds raised (as in compare_cnn.sh): without
# them glibc returns its large activations to the system after each step and
# faults them in again, which roughly doubles its time here.
set -eu
B=${1:?usage: compare_hvp.sh BUILD_DIR [REPEATS] [options]}/tests/bench
R=${2:-5}
shift; [ $# -gt 0 ] && shift
T="$(dirname "$0")/torch_hvp.py"
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" | tail -n 1; }
med() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
g=""; hb=""; hr=""; j=""; pg=""; ph=""
for i in $(seq "$R"); do
    o=$("$B/bench_hvp" --threads 1 "$@" | tail -n 1)
    g="$g $(echo "$o" | field grad_us)"; hb="$hb $(echo "$o" | field hvp_bwd_us)"
    hr="$hr $(echo "$o" | field hvp_rec_us)"; j="$j $(echo "$o" | field jvp_us)"
    o=$(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 \
        MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 \
        /usr/bin/python3 "$T" "$@" | tail -n 1)
    pg="$pg $(echo "$o" | field grad_us)"; ph="$ph $(echo "$o" | field hvp_us)"
    echo "run $i: tapegrad grad $(echo $g | awk '{print $NF}') hvp $(echo $hb | awk '{print $NF}')" \
         "/ $(echo $hr | awk '{print $NF}') | torch grad $(echo $pg | awk '{print $NF}')" \
         "hvp $(echo $ph | awk '{print $NF}')"
done
G=$(echo "$g" | med); HB=$(echo "$hb" | med); HR=$(echo "$hr" | med); J=$(echo "$j" | med)
PG=$(echo "$pg" | med); PH=$(echo "$ph" | med)
echo "medians of $R (microseconds, one core): tapegrad gradient $G, HVP $HB (backward of <g,v>)" \
     "/ $HR (recorded), JVP $J; PyTorch gradient $PG, HVP $PH"
awk -v g="$G" -v hb="$HB" -v hr="$HR" -v ph="$PH" 'BEGIN {
    best = hb < hr ? hb : hr
    printf "HVP / gradient (tapegrad): %.2f; tapegrad HVP / PyTorch HVP: %.2f\n", best / g, best / ph }'
