/* Bump allocation in chunks.  A reset keeps the chunks, so a program that
 * rebuilds the same graph every step allocates nothing after the first. */
#include "internal.h"

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
    return c;
}

/* Buffers of 64 bytes or more start on a cache line (for SIMD loads); small
 * objects only need 16, which keeps a long chain of scalar ops compact. */
static size_t align_for(size_t bytes) { return bytes >= TG_ALIGN ? TG_ALIGN : 16; }

void *tg_arena_alloc(tg_arena *a, size_t bytes)
{
    if (bytes > SIZE_MAX / 2)
        return NULL;
    size_t align = align_for(bytes), need = (bytes + 15) & ~(size_t)15;
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
    a->cur = m.cur;
    a->cur->used = m.used;
    a->in_use = m.in_use;
}
