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

static size_t round_up(size_t n) { return (n + TG_ALIGN - 1) & ~(size_t)(TG_ALIGN - 1); }

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

void *tg_arena_alloc(tg_arena *a, size_t bytes)
{
    size_t need = round_up(bytes ? bytes : 1);
    if (need < bytes)
        return NULL; /* overflow */
    /* Use the current chunk, else the next kept chunk with room. */
    tg_chunk *c = a->cur;
    while (c && c->cap - c->used < need) {
        c = c->next;
        if (c)
            c->used = 0; /* a chunk after cur is unused since the reset */
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
    }
    a->cur = c;
    void *p = c->mem + c->used;
    c->used += need;
    a->in_use += need;
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
