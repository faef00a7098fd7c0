/* AVX-512F micro-kernels: an 8 x 32 float (8 x 16 double) block in 16 zmm registers over the whole
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

#if defined(__x86_64__) || defined(__i386__)
#include "conv.h"
#ifndef ENGINE_PF
#define ENGINE_PF 2 /* channels ahead the gather prefetches (2, 4, 8 measured: 2 best) */
#endif
/* The gather into 32-float panels, per reduction row r = (c, i, j) and panel: each piece (a run of
 * output pixels within one output row) is one masked load per 16 pixels (stride 1) or one masked
 * gather (stride > 1), its mask the tap's valid columns, so padding comes out zero without a branch
 * per pixel; the pieces are disjoint, so or-ing them gives the panel row. Same values as the C
 * gather (conv.c), in the same order of rows and panels. */
__attribute__((target("avx512f"))) void
engine_gather_avx512_f32(const float *xg, const engine_geom *g, int64_t r0, int64_t kc, int64_t KC,
                         int64_t npanels, float *Bp, const engine_piece *pc, const int64_t *ps)
{
    const int64_t HW = g->H * g->W, sw = g->sw, taps = g->kh * g->kw;
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i idx0 = _mm512_mullo_epi32(iota, _mm512_set1_epi32((int)sw));
    const __m512i idx1 = _mm512_add_epi32(idx0, _mm512_set1_epi32((int)(16 * sw)));
    const uintptr_t pf = (uintptr_t)(ENGINE_PF * HW * (int64_t)sizeof(float));
    int64_t c = r0 / taps, i = r0 % taps / g->kw, j = r0 % g->kw;
    for (int64_t r = 0; r < kc; r++) {
        const float *xc = xg + c * HW;
        const int64_t ioff = i * g->dh - g->pt, joff = j * g->dw - g->pl;
        /* valid output columns of this tap: 0 <= ow*sw + joff < W */
        const int64_t vlo = joff >= 0 ? 0 : (-joff + sw - 1) / sw;
        const int64_t vhi = g->W - joff <= 0 ? 0 : (g->W - joff + sw - 1) / sw;
        for (int64_t jp = 0; jp < npanels; jp++) {
            __m512 v0 = _mm512_setzero_ps(), v1 = _mm512_setzero_ps();
            for (int64_t e = ps[jp]; e < ps[jp + 1]; e++) {
                const int64_t ow = pc[e].ow, len = pc[e].len;
                const int64_t ih = pc[e].oh * g->sh + ioff;
                const int64_t lo = vlo < ow ? ow : vlo, hi = vhi > ow + len ? ow + len : vhi;
                if ((uint64_t)ih >= (uint64_t)g->H || hi <= lo) continue;
                /* panel position q holds output column ow + q - pc.dst, for q in [a, b) */
                const int64_t a = pc[e].dst + lo - ow, b = pc[e].dst + hi - ow;
                const uint64_t bits = ((b >= 64 ? ~0ull : (1ull << b) - 1)) & ~((1ull << a) - 1);
                const __mmask16 m0 = (__mmask16)bits, m1 = (__mmask16)(bits >> 16);
                /* address of panel position 0 (only masked-in positions are read) */
                const uintptr_t base = (uintptr_t)(xc + ih * g->W + joff) +
                                       (uintptr_t)((ow - pc[e].dst) * sw * (int64_t)sizeof(float));
                /* the same stretch ENGINE_PF channels on (ENGINE_PF * taps rows later), which
                 * the hardware prefetcher does not see coming: a 1x1 layer waits on memory */
                _mm_prefetch((const char *)(base + pf), _MM_HINT_T0);
                _mm_prefetch((const char *)(base + pf + 64), _MM_HINT_T0);
                if (sw == 1) {
                    v0 = _mm512_mask_loadu_ps(v0, m0, (const void *)base);
                    v1 = _mm512_mask_loadu_ps(v1, m1, (const void *)(base + 16 * sizeof(float)));
                } else {
                    v0 = _mm512_mask_i32gather_ps(v0, m0, idx0, (const void *)base, 4);
                    v1 = _mm512_mask_i32gather_ps(v1, m1, idx1, (const void *)base, 4);
                }
            }
            float *dst = Bp + jp * KC * 32 + r * 32;
            _mm512_storeu_ps(dst, v0);
            _mm512_storeu_ps(dst + 16, v1);
        }
        if (++j == g->kw) { j = 0; if (++i == g->kh) { i = 0; c++; } }
    }
}
#endif
