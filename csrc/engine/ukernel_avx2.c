/* AVX2+FMA micro-kernels: a 6 x 16 float (6 x 8 double) block in 12 ymm registers over the whole
 * reduction. Function target attributes keep the build baseline x86-64; the driver calls these only
 * when the CPU reports avx2 and fma. */
#include "ukernel.h"
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <string.h>

#define MR AVX2_MR

__attribute__((target("avx2,fma"))) void
ukernel_avx2_f32(int64_t k, const float *A, const float *B, float *C, int64_t ldc, int m, int n,
                 const float *bias, int accumulate)
{
    __m256 c0[MR], c1[MR];
    for (int i = 0; i < MR; i++) c0[i] = c1[i] = _mm256_setzero_ps();
    for (int64_t p = 0; p < k; p++) {
        __m256 b0 = _mm256_loadu_ps(B + p * 16), b1 = _mm256_loadu_ps(B + p * 16 + 8);
        for (int i = 0; i < MR; i++) {
            __m256 a = _mm256_broadcast_ss(A + p * MR + i);
            c0[i] = _mm256_fmadd_ps(a, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(a, b1, c1[i]);
        }
    }
    for (int i = 0; i < MR; i++) {
        if (i >= m) break;
        /* through a buffer: no pixel past n is read or written */
        float t[16];
        for (int j = 0; j < 16; j++) t[j] = accumulate && j < n ? C[i * ldc + j] : (bias ? bias[i] : 0.0f);
        _mm256_storeu_ps(t, _mm256_add_ps(c0[i], _mm256_loadu_ps(t)));
        _mm256_storeu_ps(t + 8, _mm256_add_ps(c1[i], _mm256_loadu_ps(t + 8)));
        memcpy(C + i * ldc, t, (size_t)n * sizeof(float));
    }
}

__attribute__((target("avx2,fma"))) void
ukernel_avx2_f64(int64_t k, const double *A, const double *B, double *C, int64_t ldc, int m, int n,
                 const double *bias, int accumulate)
{
    __m256d c0[MR], c1[MR];
    for (int i = 0; i < MR; i++) c0[i] = c1[i] = _mm256_setzero_pd();
    for (int64_t p = 0; p < k; p++) {
        __m256d b0 = _mm256_loadu_pd(B + p * 8), b1 = _mm256_loadu_pd(B + p * 8 + 4);
        for (int i = 0; i < MR; i++) {
            __m256d a = _mm256_broadcast_sd(A + p * MR + i);
            c0[i] = _mm256_fmadd_pd(a, b0, c0[i]);
            c1[i] = _mm256_fmadd_pd(a, b1, c1[i]);
        }
    }
    for (int i = 0; i < MR; i++) {
        if (i >= m) break;
        /* through a buffer: no pixel past n is read or written */
        double t[8];
        for (int j = 0; j < 8; j++) t[j] = accumulate && j < n ? C[i * ldc + j] : (bias ? bias[i] : 0.0);
        _mm256_storeu_pd(t, _mm256_add_pd(c0[i], _mm256_loadu_pd(t)));
        _mm256_storeu_pd(t + 4, _mm256_add_pd(c1[i], _mm256_loadu_pd(t + 4)));
        memcpy(C + i * ldc, t, (size_t)n * sizeof(double));
    }
}
#endif
