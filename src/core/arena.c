/* Bump allocation in chunks.  A reset keeps the chunks, so a program that
 * rebuilds the same graph every step allocates nothing after the first.
 *
 * Under AddressSanitizer a chunk is poisoned except for the blocks handed
 * out, and every block is followed by a poisoned redzone: an access past a
 * tensor's buffer is then reported like one past a malloc'ed block, instead
 * of landing silently in the next tensor of the same chunk. */
#include "core.h"

#if defined(__SANITIZE_ADDRESS__)
#define TG_ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TG_ARENA_ASAN 1
#endif
#endif
#ifdef TG_ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#define REDZONE ((size_t)16)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#define REDZONE ((size_t)0)
#endif

struct tg_chunk {
    tg_chunk *next;
    size_t cap, used;
    unsigned char *mem; /* TG_ALIGN-aligned */
};

#define MIN_CHUNK ((size_t)64 << 10)
#define MAX_GROWTH ((size_t)64 << 20)

static tg_chunk *chunk_new(size_t cap)
{
    tg_chunk *c = tg_malloc(sizeof *c);
    if (!c)
        return NULL;
    c->mem = tg_aligned_alloc(cap);
    if (!c->mem) {
        tg_free(c);
        return NULL;
    }
    c->next = NULL;
    c->cap = cap;
    c->used = 0;
    POISON(c->mem, cap);
    return c;
}

/* Buffers of 64 bytes or more start on a cache line (for SIMD loads); small
 * objects only need 16, which keeps a long chain of scalar ops compact. */
static size_t align_for(size_t bytes) { return bytes >= TG_ALIGN ? TG_ALIGN : 16; }

void *tg_arena_alloc(tg_arena *a, size_t bytes)
{
    if (bytes > SIZE_MAX / 2)
        return NULL;
    size_t align = align_for(bytes), need = (bytes + REDZONE + 15) & ~(size_t)15;
    /* Use the current chunk, else the next kept chunk with room. */
    tg_chunk *c = a->cur;
    size_t at = c ? (c->used + align - 1) & ~(align - 1) : 0;
    while (c && (at > c->cap || c->cap - at < need)) {
        c = c->next;
        if (c)
            c->used = 0; /* a chunk after cur is unused since the reset */
        at = 0;
    }
    if (!c) {
        size_t cap = a->last_cap ? a->last_cap * 2 : MIN_CHUNK;
        if (cap > MAX_GROWTH)
            cap = MAX_GROWTH;
        if (cap < need)
            cap = need;
        c = chunk_new(cap);
        if (!c)
            return NULL;
        a->last_cap = cap;
        a->chunks++;
        /* append after the last chunk so the order of reuse is stable */
        if (!a->first) {
            a->first = c;
        } else {
            tg_chunk *last = a->cur ? a->cur : a->first;
            while (last->next)
                last = last->next;
            last->next = c;
        }
        at = 0;
    }
    a->cur = c;
    void *p = c->mem + at;
    a->in_use += need + (at - c->used);
    c->used = at + need;
    UNPOISON(p, bytes);
    return p;
}

char *tg_arena_strdup(tg_arena *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = tg_arena_alloc(a, n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void tg_arena_reset(tg_arena *a)
{
    for (tg_chunk *c = a->first; c; c = c->next)
        POISON(c->mem, c->cap);
    a->cur = a->first;
    if (a->first)
        a->first->used = 0;
    a->in_use = 0;
}

void tg_arena_free(tg_arena *a)
{
    tg_chunk *c = a->first;
    while (c) {
        tg_chunk *next = c->next;
        tg_free_aligned(c->mem);
        tg_free(c);
        c = next;
    }
    memset(a, 0, sizeof *a);
}

tg_arena_mark tg_arena_get_mark(const tg_arena *a)
{
    tg_arena_mark m = {a->cur, a->cur ? a->cur->used : 0, a->in_use};
    return m;
}

void tg_arena_rewind(tg_arena *a, tg_arena_mark m)
{
    if (!m.cur) { /* nothing had been allocated: back to empty */
        tg_arena_reset(a);
        return;
    }
    for (tg_chunk *c = m.cur->next; c; c = c->next)
        POISON(c->mem, c->cap);
    POISON(m.cur->mem + m.used, m.cur->cap - m.used);
    a->cur = m.cur;
    a->cur->used = m.used;
    a->in_use = m.in_use;
}

bool tg_arena_poisons(void)
{
#ifdef TG_ARENA_ASAN
    return true;
#else
    return false;
#endif
}

void tg_arena_poison_all(tg_arena *a)
{
    for (tg_chunk *c = a->first; c; c = c->next)
        POISON(c->mem, c->cap);
}

void tg_arena_unpoison(void *p, size_t bytes) { UNPOISON(p, bytes); }
