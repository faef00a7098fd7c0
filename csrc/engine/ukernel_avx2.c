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
                 const float *bias)
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
        __m256 b = _mm256_set1_ps(bias ? bias[i] : 0.0f);
        __m256 r0 = _mm256_add_ps(c0[i], b), r1 = _mm256_add_ps(c1[i], b);
        if (n == 16) {
            _mm256_storeu_ps(C + i * ldc, r0);
            _mm256_storeu_ps(C + i * ldc + 8, r1);
        } else { /* ragged right edge: through a buffer, so no pixel past n is written */
            float t[16];
            _mm256_storeu_ps(t, r0);
            _mm256_storeu_ps(t + 8, r1);
            memcpy(C + i * ldc, t, (size_t)n * sizeof(float));
        }
    }
}

__attribute__((target("avx2,fma"))) void
ukernel_avx2_f64(int64_t k, const double *A, const double *B, double *C, int64_t ldc, int m, int n,
                 const double *bias)
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
        __m256d b = _mm256_set1_pd(bias ? bias[i] : 0.0);
        __m256d r0 = _mm256_add_pd(c0[i], b), r1 = _mm256_add_pd(c1[i], b);
        if (n == 8) {
            _mm256_storeu_pd(C + i * ldc, r0);
            _mm256_storeu_pd(C + i * ldc + 4, r1);
        } else {
            double t[8];
            _mm256_storeu_pd(t, r0);
            _mm256_storeu_pd(t + 4, r1);
            memcpy(C + i * ldc, t, (size_t)n * sizeof(double));
        }
    }
}
#endif
