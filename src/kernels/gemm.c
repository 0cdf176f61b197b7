/*
 * GEMM: C[m×n] = alpha·op(A)·op(B) + beta·C, row-major, f32 and f64.
 *
 * The blocking follows Goto and van de Geijn ("Anatomy of high-performance
 * matrix multiplication", 2008) in the loop order BLIS uses for x86 cores
 * with a large L2, written for row-major C (vectors run along C's rows,
 * i.e. along n; A is broadcast one element at a time):
 *
 *   for pc in K by KC                        K block: kc ≤ KC
 *     for ic in M by MC                      pack op(A)[ic, pc] → MR-row slivers  (L3)
 *       for jc in N by NC                    pack op(B)[pc, jc] → NR-col slivers  (L2)
 *         for ir in MC by MR                 one A sliver, MR × kc              (L1)
 *           for jr in NC by NR               one B sliver, kc × NR, from L2
 *             micro-kernel: C[ir.., jr..] (+)= alpha · A sliver · B sliver
 *
 * The kernels (micro-kernel, macro-kernel = the two inner loops, packing)
 * come per ISA and dtype from gemm_generic.c / gemm_avx2.c / gemm_avx512.c;
 * this file picks one, plans the blocks and the threads, and owns the
 * workspace.
 *
 * A is not packed when the B block is narrow (A slivers would be used once
 * or twice: copying them costs more than it saves); the macro-kernel then
 * reads A in place.
 *
 * Other forms, chosen from the shape alone (never from the thread count):
 *  - direct: up to TG_GEMM_SMALL_FMAS multiply-adds (below which nothing is
 *    threaded either), no packing or blocking at all (the template's
 *    `small`); this is what the tiny MLP GEMMs take;
 *  - dot products (C narrow, A not transposed; AVX-512 f32): with n <= 12
 *    columns, vectors along n would mostly hold padding, so the vectors run
 *    along k instead, C[i, j] = Σ_p A[i, p]·Bᵀ[j, p];
 *  - Cᵀ (C narrow, A transposed, B not): the same blocked loops on
 *    Cᵀ = op(B)ᵀ·op(A)ᵀ, whose rows are C's few columns and whose vectors
 *    run along m, both operands read in place, stored transposed.
 * (With one thread and B small enough for a 16 KiB stack buffer, the
 * blocked loops run with B on the stack and A in place: no heap workspace.
 * Packing changes where operands are read from, not the arithmetic, so
 * that choice may depend on the thread count.)
 *
 * Threads: C is cut into a grid of parts along M and N, with the cuts on
 * micro-tile multiples, about PARTS_PER_THREAD per thread (plan_grid weighs
 * the packing more parts repeat against the end of the job), and the pool
 * hands the parts out one at a time; each part runs the loops above on its
 * own workspace (packing is done in parallel, by the parts).  Every element
 * of C is then computed by the same operations in the same order whatever
 * the thread count, so results are bit-identical for every count.  A C of
 * a few micro-tiles with a long K (too little to share along M and N) is
 * split along K instead, into slices fixed by the shape, with the partial
 * products added in slice order (ksplit).  A thread gets at least
 * PAR_FMAS_PER_THREAD multiply-adds.
 */
#include "gemm_kernels.h"

#include <math.h>
#include <pthread.h>

#define STACK_BYTES 16384      /* B buffer of the small / fallback path      */
/* A thread gets at least this many FMAs: in a loop of GEMMs on this
 * machine 2 threads gain 1.16× at 262 144 FMAs, 1.34× at 524 288, 1.66× at
 * 1 048 576; a worker woken from sleep costs more than a spinning one. */
#define PAR_FMAS_PER_THREAD 524288.0
#define PACK_COST 16           /* cost of copying an element, in FMA lanes   */
#define DOT_KC 2048            /* K block of the dot-product form            */
#define DOT_MIN_K 64           /* shorter dot products do not pay off        */
#define CT_MIN_K 16            /* nor do shorter Cᵀ tiles (transposed store) */
#define PARTS_PER_THREAD 4     /* parts of C handed out per thread             */
#define PART_MIN_FMAS 65536.0  /* no part smaller than this                    */
#define TAIL 0.25              /* weight of the job's end in plan_grid (measured) */
#define KSPLIT_MAX_TILES 4     /* k split when C has at most this many tiles,  */
#define KSPLIT_SLICE 2048      /* ... k at least 2 slices of this many, and    */
#define KSPLIT_MAX 16          /* ... at most this many slices                 */

static const tg_gemm_kern *kernel(bool f64)
{
    switch (tg_cpu_isa()) {
#if defined(__x86_64__) || defined(__i386__)
    case TG_ISA_AVX512:
        return f64 ? &tg_gemm_avx512_f64 : &tg_gemm_avx512_f32;
    case TG_ISA_AVX2:
        return f64 ? &tg_gemm_avx2_f64 : &tg_gemm_avx2_f32;
#endif
    default:
        return f64 ? &tg_gemm_generic_f64 : &tg_gemm_generic_f32;
    }
}

/* ---- per-thread workspace ----------------------------------------------- */

/* Grown to the largest size a thread needed and then reused, so a program
 * that repeats its GEMMs stops allocating after the first round.  Freed
 * when the thread exits (pthread key destructor).  Two per thread: packed
 * operands (WS_PACK) and the partial products of a split over k (WS_KSPLIT,
 * whose slices use WS_PACK). */
enum { WS_PACK, WS_KSPLIT, WS_COUNT };
static _Thread_local struct {
    void *p;
    size_t bytes;
} ws[WS_COUNT];
static pthread_key_t ws_key[WS_COUNT];
static pthread_once_t ws_once = PTHREAD_ONCE_INIT;
static bool ws_key_ok[WS_COUNT];

static void ws_free(void *p) { tg_free_aligned(p); }
static void ws_make_key(void)
{
    for (int i = 0; i < WS_COUNT; i++)
        ws_key_ok[i] = pthread_key_create(&ws_key[i], ws_free) == 0;
}

static void *workspace_of(int which, size_t bytes)
{
    if (ws[which].bytes >= bytes)
        return ws[which].p;
    void *p = tg_aligned_alloc(bytes);
    if (!p)
        return NULL;
    pthread_once(&ws_once, ws_make_key);
    if (ws_key_ok[which] && pthread_setspecific(ws_key[which], p)) {
        tg_free_aligned(p);
        return NULL;
    }
    tg_free_aligned(ws[which].p);
    ws[which].p = p;
    ws[which].bytes = bytes;
    return p;
}

static void *workspace(size_t bytes) { return workspace_of(WS_PACK, bytes); }

/* ---- one GEMM ------------------------------------------------------------ */

/* The three forms a GEMM can take (chosen from the shape alone). */
enum {
    FORM_TILES, /* the blocked loops above                                  */
    FORM_DOT,   /* C narrow, A not transposed: dot products along k         */
    FORM_CT     /* C narrow, A transposed: the same loops on Cᵀ = op(B)ᵀ·Aᵀ */
};

typedef struct gemm_job {
    const tg_gemm_kern *kern;
    int form;
    bool ta, tb;
    size_t m, n, k;
    double alpha, beta;
    const char *a, *b; /* byte pointers: element (i, j) at base + (i·ld + j)·es */
    char *c;
    size_t lda, ldb, ldc;
    size_t kc;             /* K block: the same for every part               */
    size_t mc, nc;         /* M and N blocks (FORM_TILES), same for every part */
    bool pack_a;           /* FORM_TILES: pack A (else read it in place)     */
    size_t unit_m, unit_n; /* parts are cut on multiples of these            */
    size_t tm, tn;         /* the parts: a tm × tn grid                      */
} gemm_job;

static const void *elem_a(const gemm_job *g, size_t i, size_t p)
{
    size_t off = g->ta ? p * g->lda + i : i * g->lda + p;
    return g->a + off * g->kern->es;
}
static const void *elem_b(const gemm_job *g, size_t p, size_t j)
{
    size_t off = g->tb ? j * g->ldb + p : p * g->ldb + j;
    return g->b + off * g->kern->es;
}
static char *elem_c(const gemm_job *g, size_t i, size_t j)
{
    return g->c + (i * g->ldc + j) * g->kern->es;
}

/* Block size: x split into equal blocks of at most `max`, rounded up to a
 * multiple of `unit` (so that only the last block has an edge). */
static size_t balanced(size_t x, size_t max, size_t unit)
{
    size_t blocks = (x + max - 1) / max;
    return tg_round_up((x + blocks - 1) / blocks, unit);
}

/*
 * FORM_TILES over C[m0..m1, n0..n1] with blocks kc × mc (packed A, into pa;
 * NULL: A read in place) and kc × nc (packed B, into pb).
 */
static void tiles(const gemm_job *g, size_t m0, size_t m1, size_t n0, size_t n1,
                  size_t kc, size_t mc, size_t nc, void *pa, void *pb)
{
    const tg_gemm_kern *K = g->kern;
    tg_gemm_blk blk = {0};
    blk.ldc = g->ldc;
    blk.alpha = g->alpha;
    blk.b = pb;
    for (size_t pc = 0; pc < g->k; pc += kc) {
        blk.kc = g->k - pc < kc ? g->k - pc : kc;
        blk.beta = pc ? 1 : g->beta; /* later K blocks add to C */
        for (size_t ic = m0; ic < m1; ic += mc) {
            blk.m = m1 - ic < mc ? m1 - ic : mc;
            if (pa) {
                K->pack_a(g->ta, blk.m, blk.kc, elem_a(g, ic, pc), g->lda, pa);
                blk.a = pa;
                blk.a_step = K->mr * blk.kc;
                blk.lda = K->mr;
                blk.arow = false;
                blk.a_padded = true;
            } else {
                blk.a = elem_a(g, ic, pc);
                blk.a_step = g->ta ? K->mr : K->mr * g->lda;
                blk.lda = g->lda;
                blk.arow = !g->ta;
                blk.a_padded = false;
            }
            for (size_t jc = n0; jc < n1; jc += nc) {
                blk.n = n1 - jc < nc ? n1 - jc : nc;
                K->pack_b(g->tb, blk.kc, blk.n, elem_b(g, pc, jc), g->ldb, pb);
                blk.c = elem_c(g, ic, jc);
                K->macro(&blk);
            }
        }
    }
}

/* FORM_TILES without a heap workspace: B blocks in a stack buffer, A in
 * place (the small path, and the fallback when allocation fails). */
static void tiles_stack(const gemm_job *g, size_t m0, size_t m1, size_t n0, size_t n1)
{
    const tg_gemm_kern *K = g->kern;
    _Alignas(TG_ALIGN) unsigned char buf[STACK_BYTES];
    size_t cap = STACK_BYTES / K->es; /* elements */
    size_t kc = g->kc, w = n1 - n0;
    if (kc * tg_round_up(w, K->vl) > cap) { /* does not fit in one block */
        if (kc * K->nr > cap)
            kc = cap / K->nr;
        w = cap / kc / K->nr * K->nr;
    }
    tiles(g, m0, m1, n0, n1, kc, m1 - m0, w, NULL, buf);
}

static void tiles_part(const gemm_job *g, size_t m0, size_t m1, size_t n0, size_t n1)
{
    const tg_gemm_kern *K = g->kern;
    size_t a_bytes = g->pack_a ? tg_round_up(g->mc * g->kc * K->es, TG_ALIGN) : 0;
    char *w = workspace(a_bytes + g->kc * g->nc * K->es);
    if (!w) { /* out of memory: the slower path that needs no workspace */
        tiles_stack(g, m0, m1, n0, n1);
        return;
    }
    tiles(g, m0, m1, n0, n1, g->kc, g->mc, g->nc, a_bytes ? w : NULL, w + a_bytes);
}

/* FORM_DOT on rows m0..m1: C[i, j] = alpha·Σ_p A[i, p]·B[p, j] + beta·C with
 * op(B)ᵀ's rows read in place (B transposed) or transposed into the
 * workspace, a K block at a time. */
static void dot_part(const gemm_job *g, size_t m0, size_t m1)
{
    const tg_gemm_kern *K = g->kern;
    _Alignas(TG_ALIGN) unsigned char buf[STACK_BYTES];
    size_t kc = g->kc;
    void *bt = NULL;
    if (!g->tb && !(bt = workspace(g->n * kc * K->es))) {
        bt = buf; /* out of memory: smaller K blocks on the stack */
        kc = STACK_BYTES / K->es / g->n;
    }
    tg_gemm_dot d = {0};
    d.m = m1 - m0;
    d.n = g->n;
    d.ldc = g->ldc;
    d.alpha = g->alpha;
    d.c = elem_c(g, m0, 0);
    d.lda = g->lda;
    for (size_t pc = 0; pc < g->k; pc += kc) {
        d.kc = g->k - pc < kc ? g->k - pc : kc;
        d.beta = pc ? 1 : g->beta;
        d.a = elem_a(g, m0, pc);
        if (g->tb) {
            d.bt = elem_b(g, pc, 0);
            d.ldbt = g->ldb;
        } else {
            K->pack_bt(d.kc, g->n, elem_b(g, pc, 0), g->ldb, bt);
            d.bt = bt;
            d.ldbt = d.kc;
        }
        K->dot(&d);
    }
}

/* FORM_CT on rows m0..m1 of C: the tile loops on Cᵀ[n × m] = op(B)ᵀ·op(A)ᵀ,
 * with op(B)ᵀ (n × k, B not transposed: columns contiguous) and op(A)ᵀ
 * (k × m, A transposed: rows contiguous) both read in place. */
static void ct_part(const gemm_job *g, size_t m0, size_t m1)
{
    const tg_gemm_kern *K = g->kern;
    tg_gemm_blk blk = {0};
    blk.m = g->n;
    blk.n = m1 - m0;
    blk.a_step = K->mr;
    blk.lda = g->ldb;
    blk.ldb = g->lda;
    blk.b_inplace = true;
    blk.ctrans = true;
    blk.c = elem_c(g, m0, 0);
    blk.ldc = g->ldc;
    blk.alpha = g->alpha;
    for (size_t pc = 0; pc < g->k; pc += g->kc) {
        blk.kc = g->k - pc < g->kc ? g->k - pc : g->kc;
        blk.beta = pc ? 1 : g->beta;
        blk.a = elem_b(g, pc, 0);
        blk.b = elem_a(g, m0, pc);
        K->macro(&blk);
    }
}

/* Parts [begin, end) of the grid (tg_parallel_for callback).  Part q is
 * row q / tn, column q % tn of the grid; each row (column) of parts gets an
 * equal share of the units of M (N). */
static void run_parts(void *ctx, size_t begin, size_t end)
{
    const gemm_job *g = ctx;
    size_t um = g->unit_m, un = g->unit_n;
    size_t mt = (g->m + um - 1) / um, nt = (g->n + un - 1) / un;
    for (size_t q = begin; q < end; q++) {
        size_t qi = q / g->tn, qj = q % g->tn;
        size_t m0 = qi * mt / g->tm * um, m1 = (qi + 1) * mt / g->tm * um;
        size_t n0 = qj * nt / g->tn * un, n1 = (qj + 1) * nt / g->tn * un;
        m1 = m1 < g->m ? m1 : g->m;
        n1 = n1 < g->n ? n1 : g->n;
        if (g->form == FORM_DOT)
            dot_part(g, m0, m1);
        else if (g->form == FORM_CT)
            ct_part(g, m0, m1);
        else
            tiles_part(g, m0, m1, n0, n1);
    }
}

/* Whether a part whose B blocks are `width` columns wide packs A: each A
 * sliver meets width / NR B slivers, and copying it pays off from about 3. */
static bool packs_a(const tg_gemm_kern *K, size_t width) { return width > 2 * K->nr; }

/* The grid of parts for `threads` threads.  Parts are handed out one at a
 * time (tg_parallel_for), so with P parts of cost c_i the job takes about
 * Σ c_i / threads + TAIL·(the largest c_i)·(threads − 1)/threads (each
 * thread first runs its own equal run of parts, so the runs end close
 * together: TAIL = 1/4 timed best on the MLP steps, against 1 and 1/10):
 * more parts even out the end of the job (and a thread the system
 * deschedules holds up less of it), but each part packs its own B columns
 * (and A rows, when it packs A), so more parts pack more.  Among the tm × tn grids of at most
 * PARTS_PER_THREAD·threads parts (every part at least one unit and
 * PART_MIN_FMAS multiply-adds), the one that minimises that estimate. */
static void plan_grid(gemm_job *g, size_t threads)
{
    const tg_gemm_kern *K = g->kern;
    size_t mt = (g->m + g->unit_m - 1) / g->unit_m;
    size_t nt = (g->n + g->unit_n - 1) / g->unit_n;
    double k = (double)g->k, fmas = (double)g->m * (double)g->n * k, best = 0;
    size_t most = threads * PARTS_PER_THREAD;
    if (fmas / PART_MIN_FMAS < (double)most)
        most = fmas / PART_MIN_FMAS < threads ? threads : (size_t)(fmas / PART_MIN_FMAS);
    for (size_t tm = 1; tm <= mt && tm <= most; tm++)
        for (size_t tn = 1; tn <= nt && tm * tn <= most; tn++) {
            double mp = (double)((mt + tm - 1) / tm * g->unit_m);
            double np = (double)((nt + tn - 1) / tn * g->unit_n);
            bool pa = g->form == FORM_TILES && packs_a(K, (size_t)np);
            bool pb = g->form == FORM_TILES;
            /* A read in place costs about a third of a copy per B sliver
             * that meets it (which is why packs_a packs from 3 on) */
            double a_use = pb && !pa ? PACK_COST / 3 * mp * k * ceil(np / (double)K->nr) : 0;
            double part = mp * np * k + a_use +
                          PACK_COST * ((pb ? np * k : 0) + (pa ? mp * k : 0));
            double total = fmas + a_use * (double)(tm * tn) +
                           PACK_COST * ((pb ? (double)tm * (double)g->n * k : 0) +
                                        (pa ? (double)tn * (double)g->m * k : 0));
            double t = (double)threads;
            double est = total / t + TAIL * part * (t - 1) / t;
            if (best == 0 || est < best) {
                best = est;
                g->tm = tm;
                g->tn = tn;
            }
        }
}

/* ---- split over k --------------------------------------------------------- */

/* C with few micro-tiles and a long k (a GEMV-like shape: a weight gradient
 * over a large batch with few outputs) has too few parts to share, so k is
 * cut into `slices` (from the shape alone), each slice's product goes to
 * its own m×n partial, and the partials are added in slice order: the same
 * operations in the same order for every thread count. */
typedef struct ksplit_job {
    bool f64, ta, tb;
    size_t m, n, k, slices;
    const char *a, *b;
    size_t lda, ldb, es;
    char *part; /* slices × m × n */
} ksplit_job;

static void gemm(bool f64, bool ta, bool tb, size_t m, size_t n, size_t k,
                 double alpha, const void *a, size_t lda, const void *b,
                 size_t ldb, double beta, void *c, size_t ldc);

static _Thread_local bool in_slice; /* a slice's GEMM is not split again */

static void ksplit_slices(void *ctx, size_t begin, size_t end)
{
    const ksplit_job *x = ctx;
    in_slice = true;
    for (size_t q = begin; q < end; q++) {
        size_t p0 = q * x->k / x->slices, p1 = (q + 1) * x->k / x->slices;
        const char *a = x->a + (x->ta ? p0 * x->lda : p0) * x->es;
        const char *b = x->b + (x->tb ? p0 : p0 * x->ldb) * x->es;
        gemm(x->f64, x->ta, x->tb, x->m, x->n, p1 - p0, 1, a, x->lda, b, x->ldb, 0,
             x->part + q * x->m * x->n * x->es, x->n);
    }
    in_slice = false;
}

/* Whether C = alpha·op(A)·op(B) + beta·C is split over k; *slices. */
static bool ksplits(const tg_gemm_kern *K, size_t m, size_t n, size_t k, size_t *slices)
{
    size_t tiles = ((m + K->mr - 1) / K->mr) * ((n + K->nr - 1) / K->nr);
    if (tiles > KSPLIT_MAX_TILES || k < 2 * KSPLIT_SLICE)
        return false;
    *slices = k / KSPLIT_SLICE < KSPLIT_MAX ? k / KSPLIT_SLICE : KSPLIT_MAX;
    return true;
}

static bool ksplit(bool f64, bool ta, bool tb, size_t m, size_t n, size_t k, size_t slices,
                   double alpha, const void *a, size_t lda, const void *b, size_t ldb,
                   double beta, void *c, size_t ldc)
{
    size_t es = f64 ? sizeof(double) : sizeof(float);
    char *part = workspace_of(WS_KSPLIT, slices * m * n * es);
    if (!part)
        return false; /* out of memory: the caller runs the unsplit forms */
    ksplit_job x = {f64, ta, tb, m, n, k, slices, a, b, lda, ldb, es, part};
    tg_parallel_for(slices, 1, ksplit_slices, &x);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0; /* the partials added in slice order, in the dtype */
            float sf = 0;
            for (size_t q = 0; q < slices; q++) {
                size_t at = (q * m + i) * n + j;
                if (f64)
                    s += ((const double *)(const void *)part)[at];
                else
                    sf += ((const float *)(const void *)part)[at];
            }
            if (f64) {
                double *cij = (double *)c + i * ldc + j;
                *cij = beta == 0 ? alpha * s : alpha * s + beta * *cij;
            } else {
                float *cij = (float *)c + i * ldc + j;
                *cij = beta == 0 ? (float)alpha * sf : (float)alpha * sf + (float)beta * *cij;
            }
        }
    return true;
}

/* C = beta·C (k == 0 or alpha == 0: the product contributes nothing). */
static void scale_c(const gemm_job *g)
{
    for (size_t i = 0; i < g->m; i++) {
        char *row = elem_c(g, i, 0);
        if (g->kern->es == sizeof(float)) {
            float *c = (float *)row, beta = (float)g->beta;
            for (size_t j = 0; j < g->n; j++)
                c[j] = beta == 0 ? 0 : beta * c[j];
        } else {
            double *c = (double *)row, beta = g->beta;
            for (size_t j = 0; j < g->n; j++)
                c[j] = beta == 0 ? 0 : beta * c[j];
        }
    }
}

static void gemm(bool f64, bool ta, bool tb, size_t m, size_t n, size_t k,
                 double alpha, const void *a, size_t lda, const void *b,
                 size_t ldb, double beta, void *c, size_t ldc)
{
    if (!m || !n)
        return;
    const tg_gemm_kern *K = kernel(f64);
    double fmas = (double)m * (double)n * (double)k;
    /* The form and the K block depend on the shape only, never on the
     * thread count. */
    size_t slices;
    if (k && alpha != 0 && !in_slice && ksplits(K, m, n, k, &slices) &&
        ksplit(f64, ta, tb, m, n, k, slices, alpha, a, lda, b, ldb, beta, c, ldc))
        return;
    bool dot = K->dot && !ta && n <= K->dot_nmax && k >= DOT_MIN_K && m >= 8;
    bool ct = !dot && ta && !tb && n < K->vl && m >= 4 * K->vl && k >= CT_MIN_K;
    if (!dot && !ct && fmas <= TG_GEMM_SMALL_FMAS && k && alpha != 0 &&
        k * n <= (tb ? TG_GEMM_SMALL_KNT : TG_GEMM_SMALL_KN)) {
        tg_gemm_small sm = {ta, tb, m, n, k, a, lda, b, ldb, c, ldc, alpha, beta};
        K->small(&sm); /* small: straight from the operands */
        return;
    }
    gemm_job g = {0};
    g.kern = K;
    g.ta = ta;
    g.tb = tb;
    g.m = m;
    g.n = n;
    g.k = k;
    g.alpha = alpha;
    g.beta = beta;
    g.a = a;
    g.b = b;
    g.c = c;
    g.lda = lda;
    g.ldb = ldb;
    g.ldc = ldc;
    g.tm = g.tn = 1;
    if (!k || alpha == 0) {
        if (beta != 1)
            scale_c(&g);
        return;
    }

    /* Threads: as many as have PAR_FMAS_PER_THREAD multiply-adds each. */
    size_t threads = (size_t)tg_get_threads();
    if (fmas < PAR_FMAS_PER_THREAD * (double)threads)
        threads = fmas < 2 * PAR_FMAS_PER_THREAD ? 1 : (size_t)(fmas / PAR_FMAS_PER_THREAD);
    if (dot) {
        g.form = FORM_DOT;
        g.kc = balanced(k, DOT_KC, 1);
        g.unit_m = 8;
        g.unit_n = n;
    } else if (ct) {
        g.form = FORM_CT;
        g.kc = balanced(k, K->kc, 1);
        g.unit_m = K->nr;
        g.unit_n = n;
    } else {
        g.form = FORM_TILES;
        g.kc = balanced(k, K->kc, 1);
        g.unit_m = K->mr;
        g.unit_n = K->nr;
        if (threads == 1 && k <= K->kc &&
            k * tg_round_up(n, K->vl) * K->es <= STACK_BYTES) {
            tiles_stack(&g, 0, m, 0, n); /* small: one block, B on the stack */
            return;
        }
    }
    if (threads > 1)
        plan_grid(&g, threads);
    if (g.form == FORM_TILES) {
        /* Block sizes from the largest part, so that every part needs the
         * same workspace. */
        size_t mt = (m + K->mr - 1) / K->mr, nt = (n + K->nr - 1) / K->nr;
        size_t mp = (mt + g.tm - 1) / g.tm * K->mr, np = (nt + g.tn - 1) / g.tn * K->nr;
        g.mc = balanced(mp < m ? mp : m, K->mc, K->mr);
        g.nc = balanced(np < n ? np : n, K->nc, K->nr);
        g.pack_a = packs_a(K, g.nc);
    }
    tg_parallel_for(g.tm * g.tn, 1, run_parts, &g);
}

void tg_gemm_f32(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha,
                 const float *a, size_t lda, const float *b, size_t ldb,
                 float beta, float *c, size_t ldc)
{
    gemm(false, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void tg_gemm_f64(bool ta, bool tb, size_t m, size_t n, size_t k,
                 double alpha, const double *a, size_t lda, const double *b,
                 size_t ldb, double beta, double *c, size_t ldc)
{
    gemm(true, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
