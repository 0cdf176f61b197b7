/* Every heap allocation of the library goes through these functions, so a
 * test can count them and make them fail (tg_test_control). */
#include "core.h"

#include <stdatomic.h>
#include <stdlib.h>

static _Atomic uint64_t alloc_count;
static _Atomic int64_t fail_countdown = -1; /* < 0: never fail */

int64_t tg_test_control(tg_test_ctl what, int64_t arg)
{
    switch (what) {
    case TG_TEST_ALLOC_COUNT:
        return (int64_t)atomic_load(&alloc_count);
    case TG_TEST_FAIL_ALLOC:
        return atomic_exchange(&fail_countdown, arg < 0 ? -1 : arg);
    }
    return INT64_MIN;
}

/* True when the allocation about to be made must fail (test hook). */
static bool must_fail(void)
{
    int64_t c = atomic_load(&fail_countdown);
    while (c >= 0) {
        if (atomic_compare_exchange_weak(&fail_countdown, &c, c - 1))
            return c == 0;
    }
    return false;
}

void *tg_malloc(size_t bytes)
{
    if (must_fail())
        return NULL;
    void *p = malloc(bytes ? bytes : 1);
    if (p)
        atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
    return p;
}

void *tg_realloc(void *p, size_t bytes)
{
    if (must_fail())
        return NULL;
    void *q = realloc(p, bytes ? bytes : 1);
    if (q)
        atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
    return q;
}

void tg_free(void *p) { free(p); }

void *tg_aligned_alloc(size_t bytes)
{
    if (must_fail())
        return NULL;
    /* aligned_alloc wants a multiple of the alignment */
    size_t rounded = (bytes + TG_ALIGN - 1) / TG_ALIGN * TG_ALIGN;
    if (rounded < bytes)
        return NULL;
    void *p = aligned_alloc(TG_ALIGN, rounded ? rounded : TG_ALIGN);
    if (p)
        atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed);
    return p;
}

void tg_free_aligned(void *p) { free(p); }
