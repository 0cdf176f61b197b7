#!/bin/sh
# Line and branch coverage of the library (src/ and ops/) by the test suite,
# as reported in docs/robustness.md.  Needs gcovr (apt-get install gcovr).
#   tests/coverage.sh [BUILD_DIR]      (default: build-coverage)
set -eu
cd "$(dirname "$0")/.."
B=${1:-build-coverage}
[ -f "$B/build.ninja" ] || meson setup "$B" -Db_coverage=true -Dbuildtype=debug \
    -Dc_args=-fprofile-update=atomic # the thread pool runs instrumented code on 2 threads
meson compile -C "$B"
find "$B" -name '*.gcda' -delete
TAPEGRAD_CHAIN_NODES=1000000 meson test -C "$B" --num-processes 2
ROOT=$(pwd)
cd "$B" # gcov resolves the objects' paths from the build directory
cov() { gcovr -r "$ROOT" --filter '.*/src/.*' --filter '.*/ops/.*' "$@" . | tail -n 2; }
echo "lines:";    cov
echo "branches:"; cov --branches --exclude-unreachable-branches
echo "branches outside src/kernels/gemm_tmpl.h:"
cov --branches --exclude-unreachable-branches --exclude '.*/gemm_tmpl.h'
