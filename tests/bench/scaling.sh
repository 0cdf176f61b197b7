#!/bin/sh
# Thread scaling in one session: bench_mlp (three networks, f32, SGD) and
# bench_gemm (2048³, f32) at 1, 2, 4 … nproc threads, R rounds with the
# thread counts alternating, medians; beside them the machine's parallel
# capacity at each count T: T independent 1-thread bench_mlp runs
# (784-512-512-10 b128) started at once, their throughput relative to one
# run alone (T on dedicated cores; less when vCPUs share a core or memory).
# Then the busy-machine figures: bench_mlp --busy at nproc threads (a busy
# loop pinned to the last CPU; 1 thread and nproc threads alternately).
# bench_pingpong's core-to-core round trip (CPUs 0 and 1) is printed from
# before and after the rounds: threads that share data pay it, independent
# runs do not, so scaling below the capacity with a slow round trip is the
# machine's, and a change between the two figures means the host moved the
# vCPUs during the run.
#   tests/bench/scaling.sh BUILD_DIR [R]
set -eu
B=${1:?usage: scaling.sh BUILD_DIR [ROUNDS]}/tests/bench
R=${2:-3}
P=$(nproc)
med() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" | tail -n 1; }
counts=""; t=1
while [ "$t" -lt "$P" ]; do counts="$counts $t"; t=$((t * 2)); done
counts="$counts $P"
CAP="--layers 784,512,512,10 --batch 128 --steps 150"
NETS="784,512,512,10:128:200 784,1024,1024,10:256:40 256,256,10:64:1000"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# capacity T: T copies at once; sum over copies of (alone / copy's time)
capacity() {
    alone=$("$B/bench_mlp" $CAP --threads 1 | field us_per_step)
    i=0
    while [ "$i" -lt "$1" ]; do
        "$B/bench_mlp" $CAP --threads 1 > "$tmp/copy$i" &
        i=$((i + 1))
    done
    wait
    for f in "$tmp"/copy*; do field us_per_step < "$f"; done |
        awk -v a="$alone" '{s += a / $1} END {printf "%.2f\n", s}'
    rm -f "$tmp"/copy*
}

ping0=$("$B/bench_pingpong" | field round_trip_ns)
for r in $(seq "$R"); do
    for t in $counts; do
        echo "$(capacity "$t")" >> "$tmp/capacity_$t"
        for net in $NETS; do
            IFS=: read -r layers batch steps <<EOT
$net
EOT
            "$B/bench_mlp" --layers "$layers" --batch "$batch" --steps "$steps" --threads "$t" |
                field us_per_step >> "$tmp/mlp_${layers}_$t"
        done
        "$B/bench_gemm" --m 2048 --n 2048 --k 2048 --no-openblas --threads "$t" |
            field gflops >> "$tmp/gemm_$t"
    done
done

ping1=$("$B/bench_pingpong" | field round_trip_ns)
echo "== thread scaling on $(nproc) CPUs ($(uname -m)), medians of $R alternating rounds, $(date -u +%Y-%m-%dT%H:%MZ)"
echo "core-to-core round trip (CPUs 0, 1): ${ping0:-n/a} ns before the rounds, ${ping1:-n/a} ns after"
printf '%-34s' "threads"
for t in $counts; do printf ' | %-22s' "$t"; done
echo
printf '%-34s' "parallel capacity (T runs at once)"
for t in $counts; do printf ' | %-22s' "$(med < "$tmp/capacity_$t")x"; done
echo
# row LABEL FILE_PREFIX time|rate: a table row; the speed-up is 1-thread
# time / time, or rate / 1-thread rate
row() {
    one=$(med < "$tmp/${2}_1")
    printf '%-34s' "$1"
    for t in $counts; do
        v=$(med < "$tmp/${2}_$t")
        c=$(med < "$tmp/capacity_$t")
        cell=$(awk -v o="$one" -v v="$v" -v c="$c" -v t="$t" -v k="$3" 'BEGIN {
            x = k == "time" ? o / v : v / o
            if (t == 1) printf "%.1f", v; else printf "%.1f %.2fx %.2fcap", v, x, x / c }')
        printf ' | %-22s' "$cell"
    done
    echo
}
for net in $NETS; do
    IFS=: read -r layers batch steps <<EOT
$net
EOT
    row "mlp $layers b$batch us/step" "mlp_$layers" time
done
row "gemm 2048^3 f32 GFLOP/s" gemm rate
echo "(Nx: speed-up over 1 thread; Ncap: speed-up / parallel capacity at that count)"

echo "== busy machine: a competing busy loop pinned to CPU $((P - 1)), 1 thread vs $P threads alternately"
for net in 784,512,512,10:128:100 784,1024,1024,10:256:20; do
    IFS=: read -r layers batch steps <<EOT
$net
EOT
    "$B/bench_mlp" --layers "$layers" --batch "$batch" --steps "$steps" --threads "$P" --busy |
        grep 'busy=1'
done
