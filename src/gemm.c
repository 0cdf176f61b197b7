/* GEMM: C = alpha·op(A)·op(B) + beta·C (row-major).  Plain loops for now. */
#include "internal.h"

#define GEMM(T, S)                                                             \
    void tg_gemm_##S(bool ta, bool tb, size_t m, size_t n, size_t k, T alpha,  \
                     const T *a, size_t lda, const T *b, size_t ldb, T beta,   \
                     T *c, size_t ldc)                                         \
    {                                                                          \
        for (size_t i = 0; i < m; i++) {                                       \
            T *ci = c + i * ldc;                                               \
            if (beta == 0)                                                     \
                for (size_t j = 0; j < n; j++)                                 \
                    ci[j] = 0;                                                 \
            for (size_t p = 0; p < k; p++) {                                   \
                T aip = alpha * (ta ? a[p * lda + i] : a[i * lda + p]);        \
                if (!tb) {                                                     \
                    const T *bp = b + p * ldb;                                 \
                    for (size_t j = 0; j < n; j++)                             \
                        ci[j] += aip * bp[j];                                  \
                } else {                                                       \
                    for (size_t j = 0; j < n; j++)                             \
                        ci[j] += aip * b[j * ldb + p];                         \
                }                                                              \
            }                                                                  \
        }                                                                      \
    }
GEMM(float, f32)
GEMM(double, f64)
