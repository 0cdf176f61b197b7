/*
 * Run-time choice of the kernel path: "avx512", "avx2" (AVX2 + FMA) or
 * "generic".  The default is the best path the CPU and the OS support, or
 * TAPEGRAD_ISA when that names a supported path.  Anything else is ignored
 * and the library prints nothing: tg_isa() names the path in use, and the
 * tapegrad command warns about an unknown or unsupported TAPEGRAD_ISA.
 */
#include "kernels.h"

#include <stdatomic.h>
#include <stdlib.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <cpuid.h>
#define TG_X86 1
#endif

static const char *const isa_names[] = {"generic", "avx2", "avx512"};

#ifdef TG_X86
/* The register state the OS saves on context switches (XCR0), or 0 when
 * the OS does not support XSAVE: the CPU flags alone do not make AVX usable. */
static uint64_t xcr0(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE))
        return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}
#endif

static bool supported(int isa)
{
    if (isa == TG_ISA_GENERIC)
        return true;
#ifdef TG_X86
    __builtin_cpu_init();
    uint64_t x = xcr0();
    bool ymm = (x & 0x6) == 0x6;     /* XMM and YMM state   */
    bool zmm = (x & 0xe6) == 0xe6;   /* + opmask, ZMM0-15 high halves, ZMM16-31 */
    bool avx2 = ymm && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == TG_ISA_AVX2)
        return avx2;
    if (isa == TG_ISA_AVX512)
        return avx2 && zmm && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw");
#endif
    return false;
}

static int best(void)
{
    for (int isa = TG_ISA_AVX512; isa > TG_ISA_GENERIC; isa--)
        if (supported(isa))
            return isa;
    return TG_ISA_GENERIC;
}

static int lookup(const char *name)
{
    for (int i = 0; i < (int)(sizeof isa_names / sizeof *isa_names); i++)
        if (!strcmp(name, isa_names[i]))
            return i;
    return -1;
}

static _Atomic int active = -1; /* -1: not chosen yet */

int tg_cpu_isa(void)
{
    int isa = atomic_load_explicit(&active, memory_order_relaxed);
    if (isa >= 0)
        return isa;
    const char *env = getenv("TAPEGRAD_ISA");
    isa = env ? lookup(env) : -1;
    if (isa < 0 || !supported(isa))
        isa = best();
    /* Several threads may get here first: they all compute the same value,
     * unless tg_set_isa ran meanwhile, which then wins. */
    int expected = -1;
    if (!atomic_compare_exchange_strong(&active, &expected, isa))
        isa = expected;
    return isa;
}

int tg_set_isa(const char *name)
{
    int isa = name ? lookup(name) : best();
    if (isa < 0 || !supported(isa))
        return TG_ERR;
    atomic_store(&active, isa);
    return TG_OK;
}

const char *tg_isa(void) { return isa_names[tg_cpu_isa()]; }

bool tg_isa_supported(const char *name)
{
    int isa = name ? lookup(name) : -1;
    return isa >= 0 && supported(isa);
}
