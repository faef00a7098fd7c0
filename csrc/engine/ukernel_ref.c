/* The reference micro-kernel in plain C: the algorithm every vectorised variant implements.
 * One fma() per term in k order, so its bits are the vectorised kernels' bits (see ukernel.h). */
#include <math.h>
#include "ukernel.h"

#define REF_KERNEL(NAME, T, FMA)                                                               \
    void NAME(int64_t k, const T *A, const T *B, T *C, int64_t ldc, int m, int n, const T *bias, int accumulate) \
    {                                                                                          \
        T acc[REF_MR][REF_NR] = {{0}};                                                         \
        for (int64_t p = 0; p < k; p++)                                                        \
            for (int i = 0; i < REF_MR; i++)                                                   \
                for (int j = 0; j < REF_NR; j++)                                               \
                    acc[i][j] = FMA(A[p * REF_MR + i], B[p * REF_NR + j], acc[i][j]);          \
        for (int i = 0; i < m; i++) {                                                          \
            T b = bias ? bias[i] : (T)0;                                                       \
            for (int j = 0; j < n; j++)                                                        \
                C[i * ldc + j] = acc[i][j] + (accumulate ? C[i * ldc + j] : b);                                                \
        }                                                                                      \
    }

REF_KERNEL(ukernel_ref_f32, float, fmaf)
REF_KERNEL(ukernel_ref_f64, double, fma)
