/* What the depthwise forward (depthwise.c) and backward (depthwise_backward.c) share: the band
 * buffer's size, grad weight's lane count, the instruction-set attributes and partial-vector stores,
 * and the fill of one padded input row split into its stride phases. Internal to those two files. */
#ifndef IM2COL_ENGINE_DEPTHWISE_COMMON_H
#define IM2COL_ENGINE_DEPTHWISE_COMMON_H
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "depthwise.h"
#include "../_omp_compat.h"

/* Bytes of one thread's band buffer P: within a 1-2 MiB L2 with room for the output rows. */
#define DW_BAND_BYTES (64 * 1024)
/* Partial sums per tap of grad weight, the same number for every instruction set (so the same
 * bits): lane q sums the pixels ow = q mod 16, then the 16 are added in a fixed tree. */
#define DW_LANES 16

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AVX2_ATTR __attribute__((target("avx2,fma")))
#define AVX512_ATTR __attribute__((target("avx512f")))

/* store the first n (> 0) lanes of v */
static inline AVX512_ATTR void st512_f32(float *p, __m512 v, int64_t n)
{
    if (n >= 16) _mm512_storeu_ps(p, v);
    else _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), v);
}
static inline AVX512_ATTR void st512_f64(double *p, __m512d v, int64_t n)
{
    if (n >= 8) _mm512_storeu_pd(p, v);
    else _mm512_mask_storeu_pd(p, (__mmask8)((1u << n) - 1), v);
}
static inline AVX2_ATTR void st256_f32(float *p, __m256 v, int64_t n)
{
    if (n >= 8) { _mm256_storeu_ps(p, v); return; }
    float t[8];  /* through a buffer: no pixel past n is written */
    _mm256_storeu_ps(t, v);
    memcpy(p, t, (size_t)n * sizeof(float));
}
static inline AVX2_ATTR void st256_f64(double *p, __m256d v, int64_t n)
{
    if (n >= 4) { _mm256_storeu_pd(p, v); return; }
    double t[4];
    _mm256_storeu_pd(t, v);
    memcpy(p, t, (size_t)n * sizeof(double));
}
#endif

/* padded input row ih (zeros outside the image) split into sw phases of Wq entries each; with
 * ZERO 0 only the image's pixels are written (the zeros already there, from an earlier fill) */
#define DW_FILL_ROW(T, dst, src, W, pl, sw, Wq, ZERO)                                             \
    for (int64_t p = 0; p < (sw); p++) {                                                          \
        T *d = (dst) + p * (Wq);                                                                  \
        /* entry t holds input column p + sw·t - pl when that is inside [0, W) */                 \
        int64_t lo = (pl) - p > 0 ? ((pl) - p + (sw) - 1) / (sw) : 0;                             \
        int64_t hi = (W) + (pl) - p > 0 ? ((W) + (pl) - p + (sw) - 1) / (sw) : 0;                 \
        lo = lo > (Wq) ? (Wq) : lo;                                                               \
        hi = hi > (Wq) ? (Wq) : hi < lo ? lo : hi;                                                \
        if (ZERO) memset(d, 0, (size_t)lo * sizeof(T));                                           \
        if ((sw) == 1) memcpy(d + lo, (src) + lo - (pl), (size_t)(hi - lo) * sizeof(T));          \
        else for (int64_t t = lo; t < hi; t++) d[t] = (src)[p + (sw) * t - (pl)];                 \
        if (ZERO) memset(d + hi, 0, (size_t)((Wq) - hi) * sizeof(T));                             \
    }
#endif
