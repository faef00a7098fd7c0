/* Small transposes between a channels-last image and the column matrix, for im2col_cl / col2im_cl.
 *
 * A block of n_pix pixels × n_ch channels sits in the image pixel by pixel (channels contiguous,
 * pixels `step` elements apart) and in the column matrix channel by channel (rows `ld` elements
 * apart, pixels contiguous). Element by element, that transpose was no faster than the plane
 * kernels' strided gather (a one-off sweep, one core, 8×64×56×56 3×3: 12-16 ms against 3.6 ms for
 * the NCHW copy). With SSE2, which every x86-64 CPU has, 4×4 (32-bit) or 2×2 (64-bit) blocks go
 * through registers: one 16-byte load per pixel and one 16-byte store per row. Elsewhere, and for
 * the leftover edges, the plain loops. */
#ifndef IM2COL_TRANSPOSE_H
#define IM2COL_TRANSPOSE_H
#include <stddef.h>
#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#define IM2COL_HAVE_SSE2 1
#else
#define IM2COL_HAVE_SSE2 0
#endif

/* dst[c*ld + p] = src[p*step + c] for p < n_pix, c < n_ch; 32-bit elements. */
static inline void im2col_gather32(const uint32_t *src, ptrdiff_t step, uint32_t *dst, ptrdiff_t ld,
                                   ptrdiff_t n_pix, ptrdiff_t n_ch) {
    ptrdiff_t c = 0, p;
#if IM2COL_HAVE_SSE2
    for (; c + 4 <= n_ch; c += 4) {
        const uint32_t *s = src + c;
        uint32_t *d0 = dst + c * ld, *d1 = d0 + ld, *d2 = d1 + ld, *d3 = d2 + ld;
        for (p = 0; p + 4 <= n_pix; p += 4) {
            __m128i a = _mm_loadu_si128((const __m128i *)(s + p * step));        /* pixel p, 4 channels */
            __m128i b = _mm_loadu_si128((const __m128i *)(s + (p + 1) * step));
            __m128i e = _mm_loadu_si128((const __m128i *)(s + (p + 2) * step));
            __m128i f = _mm_loadu_si128((const __m128i *)(s + (p + 3) * step));
            __m128i ab_lo = _mm_unpacklo_epi32(a, b), ab_hi = _mm_unpackhi_epi32(a, b);
            __m128i ef_lo = _mm_unpacklo_epi32(e, f), ef_hi = _mm_unpackhi_epi32(e, f);
            _mm_storeu_si128((__m128i *)(d0 + p), _mm_unpacklo_epi64(ab_lo, ef_lo)); /* channel c */
            _mm_storeu_si128((__m128i *)(d1 + p), _mm_unpackhi_epi64(ab_lo, ef_lo));
            _mm_storeu_si128((__m128i *)(d2 + p), _mm_unpacklo_epi64(ab_hi, ef_hi));
            _mm_storeu_si128((__m128i *)(d3 + p), _mm_unpackhi_epi64(ab_hi, ef_hi));
        }
        for (; p < n_pix; p++) {
            d0[p] = s[p * step];
            d1[p] = s[p * step + 1];
            d2[p] = s[p * step + 2];
            d3[p] = s[p * step + 3];
        }
    }
#endif
    for (; c < n_ch; c++)
        for (p = 0; p < n_pix; p++)
            dst[c * ld + p] = src[p * step + c];
}

/* The same for 64-bit elements, in 2×2 blocks. */
static inline void im2col_gather64(const uint64_t *src, ptrdiff_t step, uint64_t *dst, ptrdiff_t ld,
                                   ptrdiff_t n_pix, ptrdiff_t n_ch) {
    ptrdiff_t c = 0, p;
#if IM2COL_HAVE_SSE2
    for (; c + 2 <= n_ch; c += 2) {
        const uint64_t *s = src + c;
        uint64_t *d0 = dst + c * ld, *d1 = d0 + ld;
        for (p = 0; p + 2 <= n_pix; p += 2) {
            __m128i a = _mm_loadu_si128((const __m128i *)(s + p * step));
            __m128i b = _mm_loadu_si128((const __m128i *)(s + (p + 1) * step));
            _mm_storeu_si128((__m128i *)(d0 + p), _mm_unpacklo_epi64(a, b));
            _mm_storeu_si128((__m128i *)(d1 + p), _mm_unpackhi_epi64(a, b));
        }
        for (; p < n_pix; p++) {
            d0[p] = s[p * step];
            d1[p] = s[p * step + 1];
        }
    }
#endif
    for (; c < n_ch; c++)
        for (p = 0; p < n_pix; p++)
            dst[c * ld + p] = src[p * step + c];
}

/* The adjoint of im2col_gather32 for float: im[p*step + c] += col[c*ld + p]. Each element gets
 * one add, as in the loop, so the result is the same bit for bit. */
static inline void im2col_scatter_add_f32(const float *col, ptrdiff_t ld, float *im, ptrdiff_t step,
                                          ptrdiff_t n_pix, ptrdiff_t n_ch) {
    ptrdiff_t c = 0, p;
#if IM2COL_HAVE_SSE2
    for (; c + 4 <= n_ch; c += 4) {
        const float *s0 = col + c * ld, *s1 = s0 + ld, *s2 = s1 + ld, *s3 = s2 + ld;
        float *d = im + c;
        for (p = 0; p + 4 <= n_pix; p += 4) {
            __m128 a = _mm_loadu_ps(s0 + p), b = _mm_loadu_ps(s1 + p);    /* channel c, 4 pixels */
            __m128 e = _mm_loadu_ps(s2 + p), f = _mm_loadu_ps(s3 + p);
            _MM_TRANSPOSE4_PS(a, b, e, f);                                 /* now pixel p, 4 channels */
            _mm_storeu_ps(d + p * step, _mm_add_ps(_mm_loadu_ps(d + p * step), a));
            _mm_storeu_ps(d + (p + 1) * step, _mm_add_ps(_mm_loadu_ps(d + (p + 1) * step), b));
            _mm_storeu_ps(d + (p + 2) * step, _mm_add_ps(_mm_loadu_ps(d + (p + 2) * step), e));
            _mm_storeu_ps(d + (p + 3) * step, _mm_add_ps(_mm_loadu_ps(d + (p + 3) * step), f));
        }
        for (; p < n_pix; p++) {
            d[p * step] += s0[p];
            d[p * step + 1] += s1[p];
            d[p * step + 2] += s2[p];
            d[p * step + 3] += s3[p];
        }
    }
#endif
    if (c < n_ch)                    /* the leftover channels, pixel by pixel */
        for (p = 0; p < n_pix; p++)
            for (ptrdiff_t r = c; r < n_ch; r++)
                im[p * step + r] += col[r * ld + p];
}

/* The same for double, in 2×2 blocks. */
static inline void im2col_scatter_add_f64(const double *col, ptrdiff_t ld, double *im, ptrdiff_t step,
                                          ptrdiff_t n_pix, ptrdiff_t n_ch) {
    ptrdiff_t c = 0, p;
#if IM2COL_HAVE_SSE2
    for (; c + 2 <= n_ch; c += 2) {
        const double *s0 = col + c * ld, *s1 = s0 + ld;
        double *d = im + c;
        for (p = 0; p + 2 <= n_pix; p += 2) {
            __m128d a = _mm_loadu_pd(s0 + p), b = _mm_loadu_pd(s1 + p);
            _mm_storeu_pd(d + p * step, _mm_add_pd(_mm_loadu_pd(d + p * step), _mm_unpacklo_pd(a, b)));
            _mm_storeu_pd(d + (p + 1) * step,
                          _mm_add_pd(_mm_loadu_pd(d + (p + 1) * step), _mm_unpackhi_pd(a, b)));
        }
        for (; p < n_pix; p++) {
            d[p * step] += s0[p];
            d[p * step + 1] += s1[p];
        }
    }
#endif
    if (c < n_ch)                    /* the leftover channels, pixel by pixel */
        for (p = 0; p < n_pix; p++)
            for (ptrdiff_t r = c; r < n_ch; r++)
                im[p * step + r] += col[r * ld + p];
}
#endif
