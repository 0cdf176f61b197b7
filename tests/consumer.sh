#!/bin/sh
# How other projects use tapegrad, checked end to end (the CI runs this):
#   1. `meson install` to a prefix gives tapegrad.h, the libraries, tapegrad.pc
#      and bin/tapegrad;
#   2. a program built with `pkg-config --cflags --libs tapegrad` (shared, and
#      with --static) trains a tiny net, checks its gradient and that its
#      training loop allocates nothing (tg_test_control), and a program that
#      calls an internal function does not link with the shared library;
#   3. a parent Meson project with tapegrad in subprojects/ gets it through
#      dependency('tapegrad') (meson.override_dependency).
# Prints "ok N - ..." / "not ok N - ..." lines (TAP) and exits non-zero on
# any failure.   Usage: tests/consumer.sh [WORK_DIR]
set -u
src=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
n=0
bad=0
step() { # step "name" command...
    n=$((n + 1))
    name=$1
    shift
    if "$@" > "$work/step$n.log" 2>&1; then
        echo "ok $n - $name"
    else
        echo "not ok $n - $name"
        sed 's/^/# /' "$work/step$n.log" | tail -n 30
        bad=$((bad + 1))
    fi
}
echo "1..8"

prefix=$work/prefix
step "meson install to a prefix" sh -c "
    meson setup '$work/build' '$src' --prefix='$prefix' --libdir=lib \
        -Dtests=false -Dexamples=false &&
    meson compile -C '$work/build' && meson install -C '$work/build'"

cat > "$work/user.c" <<'EOF'
/* A user's program: fit y = 2x - 1 with one weight and one bias, then check
 * the gradient of the loss against finite differences first, and that the
 * training loop allocates nothing after its first step. */
#include <math.h>
#include <stdio.h>
#include <tapegrad.h>

int main(void) {
    tg_tape *tape = tg_tape_new();
    size_t xs[2] = {4, 1}, ws[2] = {1, 1}, bs[1] = {1};
    tg_tensor *x = tg_input(tape, "x", TG_F64, 2, xs);
    tg_tensor *y = tg_input(tape, "y", TG_F64, 2, xs);
    tg_tensor *w = tg_param(tape, "w", TG_F64, 2, ws);
    tg_tensor *b = tg_param(tape, "b", TG_F64, 1, bs);
    double xv[4] = {0, 1, 2, 3}, yv[4] = {-1, 1, 3, 5};
    tg_copy_in(x, xv, TG_F64, 4);
    tg_copy_in(y, yv, TG_F64, 4);
    tg_tensor *loss = tg_mse(tg_add_bias(tg_matmul(x, w), b), y, TG_MEAN);
    tg_sgd_opts so = {.lr = 0.05, .momentum = 0.9};
    tg_optim *opt = tg_sgd_new(tape, 0, NULL, &so);
    if (!loss || !opt) {
        fprintf(stderr, "%s\n", tape ? tg_tape_error(tape) : "out of memory");
        return 1;
    }
    tg_check c; /* the gradient at the start, against finite differences */
    tg_tensor *wrt[2] = {w, b};
    if (tg_check_fd(loss, 2, wrt, 0, &c)) return 1;
    tg_check_print(stdout, "d loss / d (w, b)", &c);
    int64_t allocs = 0;
    for (int step = 0; step < 500; step++) {
        if (step == 1) /* the first backward allocated the gradients */
            allocs = tg_test_control(TG_TEST_ALLOC_COUNT, 0);
        tg_zero_grad(tape);
        if (tg_replay(tape) || tg_backward(loss) || tg_optim_step(opt)) return 1;
    }
    allocs = tg_test_control(TG_TEST_ALLOC_COUNT, 0) - allocs;
    tg_replay(tape);
    double l = tg_item(loss);
    printf("loss %.3g  w %.6f  b %.6f  allocations in steps 2-500: %lld\n", l, tg_item(w),
           tg_item(b), (long long)allocs);
    int ok = l < 1e-10 && fabs(tg_item(w) - 2) < 1e-5 && fabs(tg_item(b) + 1) < 1e-5 &&
             c.max_rel < 1e-7 && allocs == 0;
    tg_optim_free(opt);
    tg_tape_free(tape);
    return ok ? 0 : 1;
}
EOF

pc="PKG_CONFIG_PATH=$prefix/lib/pkgconfig"
step "pkg-config finds tapegrad" sh -c "$pc pkg-config --exists --print-errors tapegrad"
step "a program built with pkg-config (shared) trains and checks" sh -c "
    cc -std=c11 -Wall -Wextra -Werror -o '$work/user' '$work/user.c' \
        \$($pc pkg-config --cflags --libs tapegrad) -lm &&
    LD_LIBRARY_PATH='$prefix/lib' '$work/user'"
step "the same program linked statically (pkg-config --static)" sh -c "
    cc -std=c11 -Wall -Wextra -Werror -o '$work/user_static' '$work/user.c' \
        \$($pc pkg-config --cflags tapegrad) '$prefix/lib/libtapegrad.a' \
        \$($pc pkg-config --static --libs-only-l tapegrad | sed 's/-ltapegrad//') -lm &&
    '$work/user_static'"
# tg_malloc is internal (src/core/core.h): it is in libtapegrad.a but hidden
# in libtapegrad.so, so a program calling it links only with the former.
printf '%s\n' '#include <stddef.h>' 'void *tg_malloc(size_t bytes);' \
    'int main(void) { return tg_malloc(1) == NULL; }' > "$work/internal.c"
step "a program calling an internal function does not link with the shared library" sh -c "
    cc -std=c11 -c -o '$work/internal.o' '$work/internal.c' &&
    cc -o '$work/internal_static' '$work/internal.o' '$prefix/lib/libtapegrad.a' &&
    libs=\$($pc pkg-config --libs tapegrad) &&
    ! cc -o '$work/internal' '$work/internal.o' \$libs > '$work/internal.log' 2>&1 &&
    cat '$work/internal.log' && grep -q 'tg_malloc' '$work/internal.log'"
step "the installed tapegrad command runs (--help, check)" sh -c "
    LD_LIBRARY_PATH='$prefix/lib' '$prefix/bin/tapegrad' --help | grep -q 'tapegrad' &&
    LD_LIBRARY_PATH='$prefix/lib' '$prefix/bin/tapegrad' check"

parent=$work/parent
mkdir -p "$parent/subprojects"
ln -sfn "$src" "$parent/subprojects/tapegrad"
cp "$work/user.c" "$parent/user.c"
cat > "$parent/meson.build" <<'EOF'
project('parent', 'c', default_options : ['c_std=c11'])
tg = dependency('tapegrad', fallback : ['tapegrad', 'tapegrad_dep'],
  default_options : ['tests=false', 'examples=false'])
test('user', executable('user', 'user.c', dependencies : tg))
EOF
step "a parent Meson project uses tapegrad as a subproject" sh -c "
    cd '$parent' && meson setup '$work/pbuild' --force-fallback-for=tapegrad &&
    meson compile -C '$work/pbuild'"
step "the parent's program runs" meson test -C "$work/pbuild" --print-errorlogs

[ "$bad" = 0 ]
