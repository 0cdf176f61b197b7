/*
 * Portable GEMM kernels, for any CPU (and the reference the others are
 * tested against).  With GCC or Clang the tile is written with vector
 * extensions (16-byte vectors: SSE2 on x86-64, NEON on arm64); otherwise
 * with scalars.  Micro-tiles: f32 4 × 8 (4 rows × 2 vectors of 4),
 * f64 4 × 4 (2 vectors of 2): 8 accumulators, which fit the 16 registers
 * of SSE2.
 */
#include "gemm_kernels.h"

#if defined(__GNUC__)
typedef float tg_v4f32 __attribute__((vector_size(16)));
typedef double tg_v2f64 __attribute__((vector_size(16)));
#define GV_OPS(V, T, VL, S)                                                    \
    static inline V gv_load_##S(const T *p)                                    \
    {                                                                          \
        V v;                                                                   \
        memcpy(&v, p, sizeof v);                                               \
        return v;                                                              \
    }                                                                          \
    static inline V gv_loadn_##S(const T *p, size_t n)                         \
    {                                                                          \
        V v = {0};                                                             \
        memcpy(&v, p, n * sizeof(T));                                          \
        return v;                                                              \
    }                                                                          \
    static inline void gv_store_##S(T *p, V v) { memcpy(p, &v, sizeof v); }   \
    static inline void gv_storen_##S(T *p, V v, size_t n)                      \
    {                                                                          \
        memcpy(p, &v, n * sizeof(T));                                          \
    }                                                                          \
    static inline V gv_bcast_##S(T x)                                          \
    {                                                                          \
        V v;                                                                   \
        for (int i = 0; i < VL; i++)                                           \
            v[i] = x;                                                          \
        return v;                                                              \
    }
GV_OPS(tg_v4f32, float, 4, f32)
GV_OPS(tg_v2f64, double, 2, f64)
#define GV_VL_F32 4
#define GV_VL_F64 2
#define GV_NV 2
#else
/* No vector extensions: one lane per "vector". */
#define GV_OPS(V, T, S)                                                        \
    static inline V gv_load_##S(const T *p) { return *p; }                     \
    static inline V gv_loadn_##S(const T *p, size_t n) { return n ? *p : 0; }  \
    static inline void gv_store_##S(T *p, V v) { *p = v; }                     \
    static inline void gv_storen_##S(T *p, V v, size_t n)                      \
    {                                                                          \
        if (n)                                                                 \
            *p = v;                                                            \
    }                                                                          \
    static inline V gv_bcast_##S(T x) { return x; }
typedef float tg_v4f32;
typedef double tg_v2f64;
GV_OPS(float, float, f32)
GV_OPS(double, double, f64)
#define GV_VL_F32 1
#define GV_VL_F64 1
#define GV_NV 4
#endif

/* ---- f32 ---------------------------------------------------------------- */
#define T float
#define V tg_v4f32
#define VL GV_VL_F32
#define MR 4
#define NV GV_NV
#define KC 256
#define NC 512
#define MC 1024
#define PFX generic_f32
#define KERN tg_gemm_generic_f32
#define ISA_NAME "generic"
#define VZERO() gv_bcast_f32(0)
#define VLOAD(p) gv_load_f32(p)
#define VLOADN(p, n) gv_loadn_f32(p, n)
#define VSTORE(p, v) gv_store_f32(p, v)
#define VSTOREN(p, v, n) gv_storen_f32(p, v, n)
#define VBCAST(x) gv_bcast_f32(x)
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VMUL(a, b) ((a) * (b))
#define VADD(a, b) ((a) + (b))
#define TB 0
#include "gemm_tmpl.h"

/* ---- f64 ---------------------------------------------------------------- */
#define T double
#define V tg_v2f64
#define VL GV_VL_F64
#define MR 4
#define NV GV_NV
#define KC 256
#define NC 256
#define MC 1024
#define PFX generic_f64
#define KERN tg_gemm_generic_f64
#define ISA_NAME "generic"
#define VZERO() gv_bcast_f64(0)
#define VLOAD(p) gv_load_f64(p)
#define VLOADN(p, n) gv_loadn_f64(p, n)
#define VSTORE(p, v) gv_store_f64(p, v)
#define VSTOREN(p, v, n) gv_storen_f64(p, v, n)
#define VBCAST(x) gv_bcast_f64(x)
#define VFMA(a, b, c) ((a) * (b) + (c))
#define VMUL(a, b) ((a) * (b))
#define VADD(a, b) ((a) + (b))
#define TB 0
#include "gemm_tmpl.h"
