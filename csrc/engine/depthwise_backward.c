/* The gradients of the engine's direct depthwise kernel (depthwise.c), for every instruction set:
 * grad input as the transposed direct kernel, grad weight as per-tap partial sums in fixed lanes.
 * The loops in plain NumPy: im2col/reference.py's conv2d_backward with groups == C.
 */
#include "depthwise_common.h"

/* ================================ backward ================================
 *
 * grad input: per (image, input channel) task, a zeroed padded plane Q (split into phases like
 * the forward's P), then for each of the plane's output channels, output row oh and tap (i, j):
 * Q[ih][iw] = fma(w[i][j], gy[oh][ow], Q[ih][iw]) along the whole output row (the transposed direct
 * kernel, a scatter; contiguous in Q for every stride), and the image's pixels copied out of Q.
 * Each gx value takes its terms in (output channel, oh, i, j) order in every variant and belongs to
 * one task: the same bits.
 *
 * grad weight: per output-channel task, over images, bands of output rows and rows in order, each
 * tap keeps DW_LANES partial sums (lane q: pixels ow ≡ q mod DW_LANES, the band's input rows in P
 * as in the forward, pixels past OW multiplied by zero); at the end the lanes are added in a fixed
 * tree. The same for every instruction set and thread count. */

/* grad weight over one band: partial[t·DW_LANES + q] += Σ_r Σ_ow G[r][ow]·P[off[t] + r·rs + ow] */
typedef void (*dw_gw_f32)(const float *P, int64_t rs, const int64_t *off, int64_t taps, const float *G,
                          int64_t OW, int64_t OWp, int64_t nb, float *partial);
typedef void (*dw_gw_f64)(const double *P, int64_t rs, const int64_t *off, int64_t taps, const double *G,
                          int64_t OW, int64_t OWp, int64_t nb, double *partial);
/* grad input of one output plane gy (OH x OW): for each row oh and tap t,
 * Q[qoff[t] + oh·rs + ow] = fma(wk[t], gy[oh·OW + ow], Q[...]) for ow < OW */
typedef void (*dw_axpy_f32)(const float *wk, const int64_t *qoff, int64_t taps, const float *gy, int64_t OH,
                            int64_t OW, float *Q, int64_t rs);
typedef void (*dw_axpy_f64)(const double *wk, const int64_t *qoff, int64_t taps, const double *gy, int64_t OH,
                            int64_t OW, double *Q, int64_t rs);

#define DW_GW_PORTABLE(NAME, T, FMA)                                                              \
    static void NAME(const T *P, int64_t rs, const int64_t *off, int64_t taps, const T *G,        \
                     int64_t OW, int64_t OWp, int64_t nb, T *partial)                             \
    {                                                                                             \
        for (int64_t t = 0; t < taps; t++) {                                                      \
            T *acc = partial + t * DW_LANES;                                                      \
            for (int64_t r = 0; r < nb; r++) {                                                    \
                const T *gr = G + r * OWp, *pr = P + off[t] + r * rs;                             \
                for (int64_t ow0 = 0; ow0 < OWp; ow0 += DW_LANES)                                 \
                    for (int q = 0; q < DW_LANES; q++) {                                          \
                        const int64_t o = ow0 + q;                                                \
                        acc[q] = FMA(gr[o], o < OW ? pr[o] : (T)0, acc[q]);                       \
                    }                                                                             \
            }                                                                                     \
        }                                                                                         \
    }
DW_GW_PORTABLE(dw_gw_portable_f32, float, fmaf)
DW_GW_PORTABLE(dw_gw_portable_f64, double, fma)

#define DW_AXPY_PORTABLE(NAME, T, FMA)                                                            \
    static void NAME(const T *wk, const int64_t *qoff, int64_t taps, const T *gy, int64_t OH,     \
                     int64_t OW, T *Q, int64_t rs)                                                \
    {                                                                                             \
        for (int64_t oh = 0; oh < OH; oh++)                                                       \
            for (int64_t t = 0; t < taps; t++) {                                                  \
                const T a = wk[t], *x = gy + oh * OW;                                             \
                T *y = Q + qoff[t] + oh * rs;                                                     \
                for (int64_t i = 0; i < OW; i++) y[i] = FMA(a, x[i], y[i]);                       \
            }                                                                                     \
    }
DW_AXPY_PORTABLE(dw_axpy_portable_f32, float, fmaf)
DW_AXPY_PORTABLE(dw_axpy_portable_f64, double, fma)

#if defined(__x86_64__) || defined(__i386__)
/* the first n lanes of p (none if n <= 0), zeros in the others; nothing past them is read */
static inline AVX512_ATTR __m512 ld512_f32(const float *p, int64_t n)
{
    return n >= 16 ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps((__mmask16)((1u << (n > 0 ? n : 0)) - 1), p);
}
static inline AVX512_ATTR __m512d ld512_f64(const double *p, int64_t n)
{
    return n >= 8 ? _mm512_loadu_pd(p) : _mm512_maskz_loadu_pd((__mmask8)((1u << (n > 0 ? n : 0)) - 1), p);
}
static inline AVX2_ATTR __m256 ld256_f32(const float *p, int64_t n)
{
    if (n >= 8) return _mm256_loadu_ps(p);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n > 0 ? n : 0)), lane));
}
static inline AVX2_ATTR __m256d ld256_f64(const double *p, int64_t n)
{
    if (n >= 4) return _mm256_loadu_pd(p);
    const __m256i lane = _mm256_setr_epi64x(0, 1, 2, 3);
    return _mm256_maskload_pd(p, _mm256_cmpgt_epi64(_mm256_set1_epi64x(n > 0 ? n : 0), lane));
}

#define DW_GW_VEC(NAME, ATTR, T, VEC, V, LOADU, LOADN, FMADD, STOREU)                             \
    static ATTR void NAME(const T *P, int64_t rs, const int64_t *off, int64_t taps, const T *G,   \
                          int64_t OW, int64_t OWp, int64_t nb, T *partial)                        \
    {                                                                                             \
        for (int64_t t = 0; t < taps; t++) {                                                      \
            VEC acc[DW_LANES / (V)];                                                              \
            for (int v = 0; v < DW_LANES / (V); v++) acc[v] = LOADU(partial + t * DW_LANES + v * (V)); \
            for (int64_t r = 0; r < nb; r++) {                                                    \
                const T *gr = G + r * OWp, *pr = P + off[t] + r * rs;                             \
                for (int64_t ow0 = 0; ow0 < OWp; ow0 += DW_LANES)                                 \
                    for (int v = 0; v < DW_LANES / (V); v++) {                                    \
                        const int64_t o = ow0 + v * (V);                                          \
                        acc[v] = FMADD(LOADU(gr + o), LOADN(pr + o, OW - o), acc[v]);             \
                    }                                                                             \
            }                                                                                     \
            for (int v = 0; v < DW_LANES / (V); v++) STOREU(partial + t * DW_LANES + v * (V), acc[v]); \
        }                                                                                         \
    }
/* the tail through masked loads and stores: a 14-wide row is one vector, not 14 scalar FMAs */
#define DW_AXPY_VEC(NAME, ATTR, T, VEC, V, SET1, LOADU, LOADN, FMADD, STOREU, STOREN)             \
    static ATTR void NAME(const T *wk, const int64_t *qoff, int64_t taps, const T *gy, int64_t OH, \
                          int64_t OW, T *Q, int64_t rs)                                           \
    {                                                                                             \
        for (int64_t oh = 0; oh < OH; oh++)                                                       \
            for (int64_t t = 0; t < taps; t++) {                                                  \
                const VEC av = SET1(wk[t]);                                                       \
                const T *x = gy + oh * OW;                                                        \
                T *y = Q + qoff[t] + oh * rs;                                                     \
                int64_t i = 0;                                                                    \
                for (; i + (V) <= OW; i += (V)) STOREU(y + i, FMADD(av, LOADU(x + i), LOADU(y + i))); \
                if (i < OW)                                                                       \
                    STOREN(y + i, FMADD(av, LOADN(x + i, OW - i), LOADN(y + i, OW - i)), OW - i); \
            }                                                                                     \
    }

DW_GW_VEC(dw_gw_avx512_f32, AVX512_ATTR, float, __m512, 16, _mm512_loadu_ps, ld512_f32, _mm512_fmadd_ps, _mm512_storeu_ps)
DW_GW_VEC(dw_gw_avx512_f64, AVX512_ATTR, double, __m512d, 8, _mm512_loadu_pd, ld512_f64, _mm512_fmadd_pd, _mm512_storeu_pd)
DW_GW_VEC(dw_gw_avx2_f32, AVX2_ATTR, float, __m256, 8, _mm256_loadu_ps, ld256_f32, _mm256_fmadd_ps, _mm256_storeu_ps)
DW_GW_VEC(dw_gw_avx2_f64, AVX2_ATTR, double, __m256d, 4, _mm256_loadu_pd, ld256_f64, _mm256_fmadd_pd, _mm256_storeu_pd)
DW_AXPY_VEC(dw_axpy_avx512_f32, AVX512_ATTR, float, __m512, 16, _mm512_set1_ps, _mm512_loadu_ps, ld512_f32,
            _mm512_fmadd_ps, _mm512_storeu_ps, st512_f32)
DW_AXPY_VEC(dw_axpy_avx512_f64, AVX512_ATTR, double, __m512d, 8, _mm512_set1_pd, _mm512_loadu_pd, ld512_f64,
            _mm512_fmadd_pd, _mm512_storeu_pd, st512_f64)
DW_AXPY_VEC(dw_axpy_avx2_f32, AVX2_ATTR, float, __m256, 8, _mm256_set1_ps, _mm256_loadu_ps, ld256_f32,
            _mm256_fmadd_ps, _mm256_storeu_ps, st256_f32)
DW_AXPY_VEC(dw_axpy_avx2_f64, AVX2_ATTR, double, __m256d, 4, _mm256_set1_pd, _mm256_loadu_pd, ld256_f64,
            _mm256_fmadd_pd, _mm256_storeu_pd, st256_f64)
#define CHOOSE_BWD(AX2, GW2, AX512, GW512)                                                        \
    {                                                                                             \
        const int best = engine_best_isa();                                                       \
        if (isa == ENGINE_AVX512 && best >= ENGINE_AVX512) { axpy = AX512; gwb = GW512; }         \
        else if (isa == ENGINE_AVX2 && best >= ENGINE_AVX2) { axpy = AX2; gwb = GW2; }            \
    }
#else
#define CHOOSE_BWD(AX2, GW2, AX512, GW512) (void)isa;
#endif

#define DW_BWD_DRIVER(NAME, T, FMA_UNUSED, AXPY_T, GW_T, AXP, GWP, AX2, GW2, AX512, GW512)        \
    int NAME(const T *gy, const T *x, const T *w, T *gx, T *gw, const engine_geom *g, int isa,    \
             int n_threads)                                                                       \
    {                                                                                             \
        AXPY_T axpy = AXP;                                                                        \
        GW_T gwb = GWP;                                                                           \
        CHOOSE_BWD(AX2, GW2, AX512, GW512)                                                        \
        const int64_t C = g->C, K = g->K, m = K / C, H = g->H, W = g->W, OH = g->OH, OW = g->OW;  \
        const int64_t sh = g->sh, sw = g->sw, kh = g->kh, kw = g->kw, taps = kh * kw;             \
        if (n_threads < 1) n_threads = 1;                                                         \
        int failed = 0;                                                                           \
        if (gx) {                                                                                 \
            /* per thread, a padded plane Q split into sw phases as P is in the forward: tap t of \
             * output pixel (oh, ow) adds into Q + off[t] + oh·sh·qrow + ow, contiguous along ow */ \
            const int64_t Wq0 = (kw - 1) * g->dw / sw + OW, Wq1 = (W + g->pl + sw - 1) / sw;      \
            const int64_t Wq = Wq0 > Wq1 ? Wq0 : Wq1, qrow = sw * Wq;                             \
            const int64_t Hq0 = (OH - 1) * sh + (kh - 1) * g->dh + 1, Hq1 = H + g->pt;            \
            const int64_t Hq = Hq0 > Hq1 ? Hq0 : Hq1;                                             \
            int64_t *qoff = (int64_t *)malloc((size_t)taps * sizeof(int64_t));                    \
            if (!qoff) return -1;                                                                 \
            for (int64_t i = 0; i < kh; i++)                                                      \
                for (int64_t j = 0; j < kw; j++)                                                  \
                    qoff[i * kw + j] = i * g->dh * qrow + (j * g->dw % sw) * Wq + j * g->dw / sw; \
            const int64_t tasks = g->N * C;                                                       \
            const int nt = n_threads > tasks ? (int)(tasks > 0 ? tasks : 1) : n_threads;          \
            _Pragma("omp parallel num_threads(nt) reduction(|:failed)")                           \
            {                                                                                     \
                T *Q = (T *)malloc((size_t)(Hq * qrow) * sizeof(T));                              \
                if (!Q) failed = 1; /* every thread still meets the omp for */                    \
                _Pragma("omp for schedule(static)")                                               \
                for (int64_t t = 0; t < tasks; t++) {                                             \
                    if (!Q) continue;                                                             \
                    const int64_t n = t / C, c = t % C;                                           \
                    memset(Q, 0, (size_t)(Hq * qrow) * sizeof(T));                                \
                    for (int64_t mm = 0; mm < m; mm++) {                                          \
                        const int64_t k = c * m + mm;                                             \
                        const T *wk = w + k * taps, *gyp = gy + (n * K + k) * OH * OW;            \
                        axpy(wk, qoff, taps, gyp, OH, OW, Q, sh * qrow);                          \
                    }                                                                             \
                    /* the image's pixels out of Q: padded column iw + pl is phase (iw + pl) mod sw */ \
                    T *gxp = gx + (n * C + c) * H * W;                                            \
                    for (int64_t ih = 0; ih < H; ih++) {                                          \
                        const T *q = Q + (ih + g->pt) * qrow;                                     \
                        T *d = gxp + ih * W;                                                      \
                        if (sw == 1) memcpy(d, q + g->pl, (size_t)W * sizeof(T));                 \
                        else                                                                      \
                            for (int64_t p = 0; p < sw; p++) { /* entry t: column p + sw·t - pl */ \
                                int64_t lo = g->pl - p > 0 ? (g->pl - p + sw - 1) / sw : 0;       \
                                int64_t hi = W + g->pl - p > 0 ? (W + g->pl - p + sw - 1) / sw : 0; \
                                for (int64_t tt = lo; tt < hi; tt++) d[p + sw * tt - g->pl] = q[p * Wq + tt]; \
                            }                                                                     \
                    }                                                                             \
                }                                                                                 \
                free(Q);                                                                          \
            }                                                                                     \
            free(qoff);                                                                           \
        }                                                                                         \
        if (gw) {                                                                                 \
            const int64_t OWp = (OW + DW_LANES - 1) / DW_LANES * DW_LANES;                        \
            const int64_t Wq = ((kw - 1) * g->dw / sw + OWp + 15) / 16 * 16, prow = sw * Wq;      \
            const int64_t span = (kh - 1) * g->dh + 1;                                            \
            int64_t BO = ((int64_t)(DW_BAND_BYTES / sizeof(T)) / prow - span) / sh + 1;           \
            BO = BO > OH ? OH : BO < 1 ? 1 : BO;                                                  \
            const int64_t rows_alloc = (BO - 1) * sh + span;                                      \
            int64_t *off = (int64_t *)malloc((size_t)taps * sizeof(int64_t));                     \
            if (!off) return -1;                                                                  \
            for (int64_t i = 0; i < kh; i++)                                                      \
                for (int64_t j = 0; j < kw; j++)                                                  \
                    off[i * kw + j] = i * g->dh * prow + (j * g->dw % sw) * Wq + j * g->dw / sw;  \
            const int nt = n_threads > K ? (int)K : n_threads;                                    \
            _Pragma("omp parallel num_threads(nt) reduction(|:failed)")                           \
            {                                                                                     \
                T *P = (T *)malloc((size_t)(rows_alloc * prow + BO * OWp + taps * DW_LANES) * sizeof(T)); \
                if (!P) failed = 1; /* every thread still meets the omp for */                    \
                T *G = P + rows_alloc * prow, *partial = G + BO * OWp;                            \
                const int single = BO >= OH; /* then P's zeros are written once, as forward */    \
                if (P) memset(P, 0, (size_t)(rows_alloc * prow + BO * OWp) * sizeof(T));          \
                _Pragma("omp for schedule(static)")                                               \
                for (int64_t k = 0; k < K; k++) {                                                 \
                    if (!P) continue;                                                             \
                    const int64_t c = k / m;                                                      \
                    memset(partial, 0, (size_t)(taps * DW_LANES) * sizeof(T));                    \
                    for (int64_t n = 0; n < g->N; n++) {                                          \
                        const T *xp = x + (n * C + c) * H * W, *gyp = gy + (n * K + k) * OH * OW; \
                        for (int64_t oh0 = 0; oh0 < OH; oh0 += BO) {                              \
                            const int64_t nb = OH - oh0 < BO ? OH - oh0 : BO;                     \
                            const int64_t need = (nb - 1) * sh + span;                            \
                            for (int64_t r = 0; r < need; r++) {                                  \
                                const int64_t ih = oh0 * sh - g->pt + r;                          \
                                if ((uint64_t)ih >= (uint64_t)H) {                                \
                                    if (!single) memset(P + r * prow, 0, (size_t)prow * sizeof(T)); \
                                } else                                                            \
                                    DW_FILL_ROW(T, P + r * prow, xp + ih * W, W, g->pl, sw, Wq, !single) \
                            }                                                                     \
                            for (int64_t r = 0; r < nb; r++) {                                    \
                                /* the OWp - OW zeros past each row: from the memset above */     \
                                memcpy(G + r * OWp, gyp + (oh0 + r) * OW, (size_t)OW * sizeof(T)); \
                            }                                                                     \
                            gwb(P, sh * prow, off, taps, G, OW, OWp, nb, partial);                \
                        }                                                                         \
                    }                                                                             \
                    for (int64_t t = 0; t < taps; t++) { /* the lanes in a fixed tree */          \
                        T *a = partial + t * DW_LANES;                                            \
                        for (int s = DW_LANES / 2; s > 0; s /= 2)                                 \
                            for (int q = 0; q < s; q++) a[q] = a[q] + a[q + s];                   \
                        gw[k * taps + t] = a[0];                                                  \
                    }                                                                             \
                }                                                                                 \
                free(P);                                                                          \
            }                                                                                     \
            free(off);                                                                            \
        }                                                                                         \
        return failed ? -1 : 0;                                                                   \
    }

#if defined(__x86_64__) || defined(__i386__)
DW_BWD_DRIVER(engine_depthwise2d_backward_f32, float, fmaf, dw_axpy_f32, dw_gw_f32, dw_axpy_portable_f32,
              dw_gw_portable_f32, dw_axpy_avx2_f32, dw_gw_avx2_f32, dw_axpy_avx512_f32, dw_gw_avx512_f32)
DW_BWD_DRIVER(engine_depthwise2d_backward_f64, double, fma, dw_axpy_f64, dw_gw_f64, dw_axpy_portable_f64,
              dw_gw_portable_f64, dw_axpy_avx2_f64, dw_gw_avx2_f64, dw_axpy_avx512_f64, dw_gw_avx512_f64)
#else
DW_BWD_DRIVER(engine_depthwise2d_backward_f32, float, fmaf, dw_axpy_f32, dw_gw_f32, dw_axpy_portable_f32,
              dw_gw_portable_f32, 0, 0, 0, 0)
DW_BWD_DRIVER(engine_depthwise2d_backward_f64, double, fma, dw_axpy_f64, dw_gw_f64, dw_axpy_portable_f64,
              dw_gw_portable_f64, 0, 0, 0, 0)
#endif
