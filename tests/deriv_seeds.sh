#!/bin/sh
# deriv_seeds: the seed documents as derivation files (examples/seed*.deriv)
# give the same verdict counts as the seed C programs.
#   usage: deriv_seeds.sh TAPEGRAD SOURCE_DIR
# Prints TAP.  The expected counts (formulas, agree, mismatch) are the C
# programs' tables, as `tapegrad check` (no file) prints them:
#   seed 000 fisher_mlp 31 26 5, seed 001 delta_rule_mlp 42 32 10,
#   seed 002 batch_sigmoid_mlp 15 8 7, seed 003 bias_unit_bce 32 23 9,
#   seed 004 relu_softmax_l2 35 22 13; and the README's example,
#   softmax_regression.deriv: 5 checks, 4 agree, 1 known mismatch.
tg=$1
src=$2
if [ -z "$tg" ] || [ -z "$src" ]; then
    echo "usage: $0 TAPEGRAD SOURCE_DIR" >&2
    exit 2
fi
set -- \
    "seed000_fisher.deriv 31 26 5" \
    "seed001_delta_rule.deriv 42 32 10" \
    "seed002_batch_sigmoid.deriv 15 8 7" \
    "seed003_bias_unit_bce.deriv 32 23 9" \
    "seed004_relu_softmax_l2.deriv 35 22 13" \
    "softmax_regression.deriv 5 4 1"
echo "1..$(( $# * 2 ))"
fail=0
k=0
for row in "$@"; do
    # shellcheck disable=SC2086
    set -- $row
    file=$1 n=$2 agree=$3 mism=$4
    out=$("$tg" check "$src/examples/$file" 2>&1)
    rc=$?
    k=$((k + 1))
    if [ "$rc" -eq 0 ]; then
        echo "ok $k - $file: exit status 0"
    else
        echo "not ok $k - $file: exit status $rc"
        echo "$out" | sed 's/^/# /'
        fail=1
    fi
    want="$n checks: $agree agree, $mism mismatch"
    got=$(echo "$out" | grep -E '^ *[0-9]+ checks?:' | sed 's/^ *//')
    k=$((k + 1))
    if [ "$got" = "$want" ]; then
        echo "ok $k - $file: $want (as the C program)"
    else
        echo "not ok $k - $file: '$got', the C program gives '$want'"
        [ "$rc" -eq 0 ] && echo "$out" | sed 's/^/# /'
        fail=1
    fi
done
exit $fail
