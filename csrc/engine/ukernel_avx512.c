/* AVX-512F micro-kernels: a 6 x 32 float (6 x 16 double) block in 12 zmm registers over the whole
 * reduction. Compiled with a function target attribute so the build stays baseline x86-64; the
 * driver calls it only when the CPU reports avx512f. */
#include "ukernel.h"
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define MR AVX512_MR

__attribute__((target("avx512f"))) void
ukernel_avx512_f32(int64_t k, const float *A, const float *B, float *C, int64_t ldc, int m, int n,
                   const float *bias, int accumulate)
{
    __m512 c0[MR], c1[MR];
    for (int i = 0; i < MR; i++) c0[i] = c1[i] = _mm512_setzero_ps();
    for (int64_t p = 0; p < k; p++) {
        __m512 b0 = _mm512_loadu_ps(B + p * 32), b1 = _mm512_loadu_ps(B + p * 32 + 16);
        for (int i = 0; i < MR; i++) {
            __m512 a = _mm512_set1_ps(A[p * MR + i]);
            c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
            c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
        }
    }
    /* ragged right edge: masked stores touch only the n valid pixels */
    __mmask16 k0 = n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1);
    __mmask16 k1 = n >= 32 ? 0xFFFF : n <= 16 ? 0 : (__mmask16)((1u << (n - 16)) - 1);
    for (int i = 0; i < MR; i++) {
        if (i >= m) break;
        __m512 b = _mm512_set1_ps(bias ? bias[i] : 0.0f), b0 = b, b1 = b;
        if (accumulate) {
            b0 = _mm512_maskz_loadu_ps(k0, C + i * ldc);
            b1 = _mm512_maskz_loadu_ps(k1, C + i * ldc + 16);
        }
        _mm512_mask_storeu_ps(C + i * ldc, k0, _mm512_add_ps(c0[i], b0));
        _mm512_mask_storeu_ps(C + i * ldc + 16, k1, _mm512_add_ps(c1[i], b1));
    }
}

__attribute__((target("avx512f"))) void
ukernel_avx512_f64(int64_t k, const double *A, const double *B, double *C, int64_t ldc, int m, int n,
                   const double *bias, int accumulate)
{
    __m512d c0[MR], c1[MR];
    for (int i = 0; i < MR; i++) c0[i] = c1[i] = _mm512_setzero_pd();
    for (int64_t p = 0; p < k; p++) {
        __m512d b0 = _mm512_loadu_pd(B + p * 16), b1 = _mm512_loadu_pd(B + p * 16 + 8);
        for (int i = 0; i < MR; i++) {
            __m512d a = _mm512_set1_pd(A[p * MR + i]);
            c0[i] = _mm512_fmadd_pd(a, b0, c0[i]);
            c1[i] = _mm512_fmadd_pd(a, b1, c1[i]);
        }
    }
    __mmask8 k0 = n >= 8 ? 0xFF : (__mmask8)((1u << n) - 1);
    __mmask8 k1 = n >= 16 ? 0xFF : n <= 8 ? 0 : (__mmask8)((1u << (n - 8)) - 1);
    for (int i = 0; i < MR; i++) {
        if (i >= m) break;
        __m512d b = _mm512_set1_pd(bias ? bias[i] : 0.0), b0 = b, b1 = b;
        if (accumulate) {
            b0 = _mm512_maskz_loadu_pd(k0, C + i * ldc);
            b1 = _mm512_maskz_loadu_pd(k1, C + i * ldc + 8);
        }
        _mm512_mask_storeu_pd(C + i * ldc, k0, _mm512_add_pd(c0[i], b0));
        _mm512_mask_storeu_pd(C + i * ldc + 8, k1, _mm512_add_pd(c1[i], b1));
    }
}
#endif
