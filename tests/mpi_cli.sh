#!/bin/sh
# Data-parallel training over MPI, as TAP (tools/meson.build runs it):
#   mpi_cli.sh lib TEST_MPI HAVE   test_mpi under mpirun --oversubscribe -np 2
#   mpi_cli.sh cli TEST_MPI HAVE TAPEGRAD   `mpirun -np 2 tapegrad train`:
#       the same model as one process with the whole batch (to 1e-6), only
#       rank 0 prints, a rank killed mid-training ends the job non-zero
#       within 30 s with a message, a 2-rank run killed and resumed ends
#       bit-identical to one never stopped.
# HAVE is "mpi" when the library was built with MPI.  Without it, or without
# mpirun, the 2-rank tests are skipped (TAP SKIP, saying why); `lib` then
# runs test_mpi alone, which checks the "built without MPI" errors.
set -u
mode=$1 test_mpi=$2 have=$3
tapegrad=${4:-}
case $test_mpi in /*) ;; *) test_mpi=$PWD/$test_mpi ;; esac
case $tapegrad in /* | "") ;; *) tapegrad=$PWD/$tapegrad ;; esac

mpirun=$(command -v mpirun || true)
why=""
[ "$have" = mpi ] || why="tapegrad was built without MPI (apt-get install libopenmpi-dev, then meson setup --reconfigure)"
[ -n "$why" ] || [ -n "$mpirun" ] || why="mpirun is not installed (apt-get install openmpi-bin)"

if [ "$mode" = lib ]; then
    if [ -n "$why" ]; then
        [ "$have" = mpi ] && { echo "1..0 # SKIP $why"; exit 0; }
        exec "$test_mpi" # the errors of a build without MPI
    fi
fi
if [ -n "$why" ]; then
    echo "1..0 # SKIP $why"
    exit 0
fi

# As root (CI) Open MPI wants to be told; the same flags work for a user.
root=""
[ "$(id -u)" = 0 ] && root="--allow-run-as-root"
mpi2() {
    # shellcheck disable=SC2086
    timeout -s KILL 120 "$mpirun" $root --oversubscribe --bind-to none -np 2 "$@"
}

if [ "$mode" = lib ]; then
    mpi2 "$test_mpi"
    exit $?
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
n=0
fails=0
check() { # check DESCRIPTION COMMAND...
    d=$1
    shift
    n=$((n + 1))
    if "$@"; then
        echo "ok $n - $d"
    else
        echo "not ok $n - $d"
        fails=$((fails + 1))
    fi
}
echo "1..12"
opts="--synthetic --limit 1024 --batch 64 --threads 1 --quiet --no-chart --layers 784,32,10"

# 1 process with batch 64 against 2 ranks with 32 each
# shellcheck disable=SC2086
"$tapegrad" train $opts --epochs 2 --opt sgd --out one.tgm > one.txt 2>&1
check "1 process, batch 64: exit 0" [ $? -eq 0 ]
# shellcheck disable=SC2086
mpi2 "$tapegrad" train $opts --epochs 2 --opt sgd --out two.tgm > two.txt 2> two.err
check "mpirun -np 2 tapegrad train: exit 0" [ $? -eq 0 ]
"$test_mpi" compare one.tgm two.tgm > cmp.txt
check "2 ranks x 32 give the model of 1 process x 64 to 1e-6 ($(cat cmp.txt))" [ $? -eq 0 ]
check "only rank 0 prints: one line per epoch" [ "$(grep -c '^epoch  1/2' two.txt)" = 1 ]
check "it says it runs on 2 ranks" grep -q "data parallel: 2 MPI ranks, 32 samples" two.txt
check "only rank 0 writes: no temporary files left" [ "$(ls | grep -c tmp)" = 0 ]

# a batch the ranks cannot share
# shellcheck disable=SC2086
mpi2 "$tapegrad" train $opts --epochs 1 --batch 63 --out bad.tgm > bad.txt 2>&1
st=$?
check "--batch 63 on 2 ranks: exit non-zero ($st)" [ $st -ne 0 ]
check "the message says why" grep -q "not a multiple of the 2 MPI ranks" bad.txt

# rank 1 killed after step 5 of a long run: the job ends, non-zero, soon
start=$(date +%s)
# shellcheck disable=SC2086
TAPEGRAD_TEST_KILL_AT_STEP=5 TAPEGRAD_TEST_KILL_RANK=1 \
    mpi2 "$tapegrad" train $opts --epochs 100000 --out k.tgm > k.txt 2>&1
st=$?
took=$(($(date +%s) - start))
check "rank 1 killed: the job exits non-zero ($st) within 30 s ($took s)" \
    [ $st -ne 0 ] && [ $took -le 30 ]
check "with a message naming the killed rank" grep -q "rank 1.*signal 9" k.txt

# killed and resumed on 2 ranks = never stopped (bit for bit)
# shellcheck disable=SC2086
mpi2 "$tapegrad" train $opts --epochs 3 --out a.tgm > a.txt 2>&1
# shellcheck disable=SC2086
TAPEGRAD_TEST_KILL_AT_STEP=21 TAPEGRAD_TEST_KILL_RANK=0 \
    mpi2 "$tapegrad" train $opts --epochs 3 --out b.tgm --checkpoint-every 8 > b.txt 2>&1
# shellcheck disable=SC2086
mpi2 "$tapegrad" train $opts --epochs 3 --out b.tgm --resume b.tgm.ckpt > r.txt 2>&1
check "2 ranks killed mid-epoch, resumed: exit 0" [ $? -eq 0 ]
check "and the model is byte-identical to an uninterrupted 2-rank run" cmp -s a.tgm b.tgm
[ $fails -eq 0 ] || { echo "# two.err:"; sed 's/^/# /' two.err; echo "# r.txt:"; sed 's/^/# /' r.txt; }
exit 0
