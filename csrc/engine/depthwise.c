/* The convolution engine's direct depthwise kernel: groups == C, so each output channel is one
 * input plane convolved with its own kh x kw weights. As a GEMM that is a 1-row product per channel
 * (the BLAS route's worst case); here the taps run straight over the plane instead.
 *
 * A task is one (image, input channel) plane; tasks are shared statically among the OpenMP threads.
 * Per band of output rows, the task copies the input rows it needs into a per-thread buffer P that
 * already holds the zero padding and splits each row into its sw phases (P row r, phase p, entry t is
 * the padded input row r's pixel p + sw·t), so that tap (i, j) of output pixel (oh, ow) sits at
 *
 *     P + off[i·kw + j] + oh·sh·prow + ow,   off[i·kw + j] = i·dh·prow + (j·dw mod sw)·Wq + ⌊j·dw / sw⌋
 *
 * : contiguous along the output width for every stride and dilation, with no bounds test. Then, for
 * each of the channel's m output channels (K = m·C), a row kernel computes every output as
 *
 *     y = bias; for each tap t in row-major order: y = fma(w[t], P[off[t] + ...], y)
 *
 * holding an R x U block of output vectors (R output rows, U vectors along the width) in registers
 * over all the taps. The portable, AVX2 and AVX-512 row kernels do exactly this per output, so they
 * give the same bits; each output belongs to one task, so any thread count does too.
 * The loop in plain NumPy: im2col/reference.py's conv2d with groups == C. The gradients are in
 * depthwise_backward.c, what both share in depthwise_common.h.
 */
#include "depthwise_common.h"

/* Output vectors held in registers per block (R rows x U vectors): 8 of 16 (AVX2) or 32 registers. */
#define DW_ACC 8
/* Lanes of the portable kernel's blocks (plain arrays a compiler may vectorise). */
#define DW_PORTABLE_V 8

/* the row kernel: nr output rows (OW apart in y) from P rows rs apart; U vectors per block */
typedef void (*dw_rows_f32)(const float *P, int64_t rs, const int64_t *off, int64_t taps,
                            const float *wk, float b, float *y, int64_t OW, int64_t nr, int U);
typedef void (*dw_rows_f64)(const double *P, int64_t rs, const int64_t *off, int64_t taps,
                            const double *wk, double b, double *y, int64_t OW, int64_t nr, int U);

/* ---- portable C: one fma() per tap and output, blocks of DW_PORTABLE_V pixels ---- */
#define DW_ROWS_PORTABLE(NAME, T, FMA)                                                            \
    static void NAME(const T *P, int64_t rs, const int64_t *off, int64_t taps, const T *wk, T b,  \
                     T *y, int64_t OW, int64_t nr, int U)                                         \
    {                                                                                             \
        (void)U;                                                                                  \
        for (int64_t r = 0; r < nr; r++)                                                          \
            for (int64_t ow0 = 0; ow0 < OW; ow0 += DW_PORTABLE_V) {                               \
                T acc[DW_PORTABLE_V];                                                             \
                for (int q = 0; q < DW_PORTABLE_V; q++) acc[q] = b;                               \
                for (int64_t t = 0; t < taps; t++) {                                              \
                    const T *p = P + off[t] + r * rs + ow0, wv = wk[t];                           \
                    for (int q = 0; q < DW_PORTABLE_V; q++) acc[q] = FMA(wv, p[q], acc[q]);       \
                }                                                                                 \
                const int64_t n = OW - ow0 < DW_PORTABLE_V ? OW - ow0 : DW_PORTABLE_V;            \
                memcpy(y + r * OW + ow0, acc, (size_t)n * sizeof(T));                             \
            }                                                                                     \
    }
DW_ROWS_PORTABLE(dw_rows_portable_f32, float, fmaf)
DW_ROWS_PORTABLE(dw_rows_portable_f64, double, fma)

/* ---- vector kernels: an R x U block of vectors, R·U = DW_ACC, compile-time sizes ---- */
#define DW_BLOCK(NAME, ATTR, T, VEC, V, SET1, LOADU, FMADD, STORE_N, R, U)                        \
    static inline ATTR void NAME(const T *P, int64_t rs, const int64_t *off, int64_t taps,        \
                                 const T *wk, T b, T *y, int64_t OW, int64_t nr)                  \
    {                                                                                             \
        for (int64_t ow0 = 0; ow0 < OW; ow0 += (U) * (V)) {                                       \
            VEC acc[R][U];                                                                        \
            for (int r = 0; r < (R); r++)                                                         \
                for (int u = 0; u < (U); u++) acc[r][u] = SET1(b);                                \
            for (int64_t t = 0; t < taps; t++) {                                                  \
                const VEC wv = SET1(wk[t]);                                                       \
                const T *p = P + off[t] + ow0;                                                    \
                for (int r = 0; r < (R); r++)                                                     \
                    for (int u = 0; u < (U); u++)                                                 \
                        acc[r][u] = FMADD(wv, LOADU(p + r * rs + u * (V)), acc[r][u]);            \
            }                                                                                     \
            for (int r = 0; r < (R) && r < nr; r++)                                               \
                for (int u = 0; u < (U) && ow0 + u * (V) < OW; u++)                               \
                    STORE_N(y + r * OW + ow0 + u * (V), acc[r][u], OW - ow0 - u * (V));           \
        }                                                                                         \
    }

/* nr rows in blocks of R = DW_ACC / U rows; the last block's extra rows read P's zero rows */
#define DW_ROWS(NAME, ATTR, T, B1, B2, B4)                                                        \
    static ATTR void NAME(const T *P, int64_t rs, const int64_t *off, int64_t taps, const T *wk,  \
                          T b, T *y, int64_t OW, int64_t nr, int U)                               \
    {                                                                                             \
        const int64_t R = DW_ACC / U;                                                             \
        for (int64_t r0 = 0; r0 < nr; r0 += R) {                                                  \
            const int64_t n = nr - r0 < R ? nr - r0 : R;                                          \
            if (U == 1) B1(P + r0 * rs, rs, off, taps, wk, b, y + r0 * OW, OW, n);                \
            else if (U == 2) B2(P + r0 * rs, rs, off, taps, wk, b, y + r0 * OW, OW, n);           \
            else B4(P + r0 * rs, rs, off, taps, wk, b, y + r0 * OW, OW, n);                       \
        }                                                                                         \
    }

#if defined(__x86_64__) || defined(__i386__)

#define DW_ISA(SUF, ATTR, T, VEC, V, SET1, LOADU, FMADD, STORE_N)                                 \
    DW_BLOCK(dw_blk8x1_##SUF, ATTR, T, VEC, V, SET1, LOADU, FMADD, STORE_N, 8, 1)                 \
    DW_BLOCK(dw_blk4x2_##SUF, ATTR, T, VEC, V, SET1, LOADU, FMADD, STORE_N, 4, 2)                 \
    DW_BLOCK(dw_blk2x4_##SUF, ATTR, T, VEC, V, SET1, LOADU, FMADD, STORE_N, 2, 4)                 \
    DW_ROWS(dw_rows_##SUF, ATTR, T, dw_blk8x1_##SUF, dw_blk4x2_##SUF, dw_blk2x4_##SUF)

DW_ISA(avx512_f32, AVX512_ATTR, float, __m512, 16, _mm512_set1_ps, _mm512_loadu_ps, _mm512_fmadd_ps, st512_f32)
DW_ISA(avx512_f64, AVX512_ATTR, double, __m512d, 8, _mm512_set1_pd, _mm512_loadu_pd, _mm512_fmadd_pd, st512_f64)
DW_ISA(avx2_f32, AVX2_ATTR, float, __m256, 8, _mm256_set1_ps, _mm256_loadu_ps, _mm256_fmadd_ps, st256_f32)
DW_ISA(avx2_f64, AVX2_ATTR, double, __m256d, 4, _mm256_set1_pd, _mm256_loadu_pd, _mm256_fmadd_pd, st256_f64)
#endif

#define DW_DRIVER(NAME, T, ROWS_T, PORTABLE, AVX2, V_AVX2, AVX512, V_AVX512)                      \
    int NAME(const T *x, const T *w, const T *bias, T *y, const engine_geom *g, int isa,          \
             int n_threads)                                                                       \
    {                                                                                             \
        ROWS_T rows = PORTABLE;                                                                   \
        int64_t V = DW_PORTABLE_V;                                                                \
        CHOOSE_ISA(AVX2, V_AVX2, AVX512, V_AVX512)                                                \
        const int64_t C = g->C, K = g->K, m = K / C, H = g->H, W = g->W, OH = g->OH, OW = g->OW;  \
        const int64_t sh = g->sh, sw = g->sw, kh = g->kh, kw = g->kw, taps = kh * kw;             \
        const int U = OW <= V ? 1 : OW <= 2 * V ? 2 : 4;                                          \
        const int64_t R = DW_ACC / U;                                                             \
        /* a row's phases: room for the widest tap shift and a whole last block of U vectors */   \
        int64_t Wq = (kw - 1) * g->dw / sw + OW + (U * V > DW_LANES ? U * V : DW_LANES);          \
        Wq = (Wq + 15) / 16 * 16;                                                                 \
        const int64_t prow = sw * Wq, span = (kh - 1) * g->dh + 1;                                \
        /* output rows per band: its rows, plus R - 1 blocks' extra zero rows, fit the budget */  \
        int64_t BO = ((int64_t)(DW_BAND_BYTES / sizeof(T)) / prow - span) / sh - R + 2;           \
        if (BO > OH) BO = OH;                                                                     \
        if (BO > R) BO = BO / R * R;                                                              \
        if (BO < 1) BO = 1;                                                                       \
        const int64_t rows_alloc = (BO + R - 2) * sh + span;                                      \
        int64_t *off = (int64_t *)malloc((size_t)taps * sizeof(int64_t));                         \
        if (!off) return -1;                                                                      \
        for (int64_t i = 0; i < kh; i++)                                                          \
            for (int64_t j = 0; j < kw; j++)                                                      \
                off[i * kw + j] = i * g->dh * prow + (j * g->dw % sw) * Wq + j * g->dw / sw;      \
        const int64_t tasks = g->N * C;                                                           \
        int failed = 0;                                                                           \
        if (n_threads < 1) n_threads = 1;                                                         \
        if (n_threads > tasks) n_threads = (int)(tasks > 0 ? tasks : 1);                          \
        _Pragma("omp parallel num_threads(n_threads) reduction(|:failed)")                        \
        {                                                                                         \
            T *P = (T *)malloc((size_t)(rows_alloc * prow) * sizeof(T));                          \
            if (!P) failed = 1; /* every thread still meets the omp for */                        \
            /* one band per plane: its zeros are the same for every task, written once */         \
            const int single = BO >= OH;                                                          \
            if (P && single) memset(P, 0, (size_t)(rows_alloc * prow) * sizeof(T));               \
            _Pragma("omp for schedule(static)")                                                   \
            for (int64_t t = 0; t < tasks; t++) {                                                 \
                if (!P) continue;                                                                 \
                const int64_t n = t / C, c = t % C;                                               \
                const T *xp = x + (n * C + c) * H * W;                                            \
                for (int64_t oh0 = 0; oh0 < OH; oh0 += BO) {                                      \
                    const int64_t nb = OH - oh0 < BO ? OH - oh0 : BO;                             \
                    const int64_t need = (nb - 1) * sh + span;                                    \
                    const int64_t used = ((nb + R - 1) / R * R - 1) * sh + span;                  \
                    for (int64_t r = 0; r < used; r++) {                                          \
                        const int64_t ih = oh0 * sh - g->pt + r;                                  \
                        if (r >= need || (uint64_t)ih >= (uint64_t)H) {                           \
                            if (!single) memset(P + r * prow, 0, (size_t)prow * sizeof(T));       \
                        } else                                                                    \
                            DW_FILL_ROW(T, P + r * prow, xp + ih * W, W, g->pl, sw, Wq, !single)  \
                    }                                                                             \
                    for (int64_t mm = 0; mm < m; mm++) {                                          \
                        const int64_t k = c * m + mm;                                             \
                        rows(P, sh * prow, off, taps, w + k * taps, bias ? bias[k] : (T)0,        \
                             y + ((n * K + k) * OH + oh0) * OW, OW, nb, U);                       \
                    }                                                                             \
                }                                                                                 \
            }                                                                                     \
            free(P);                                                                              \
        }                                                                                         \
        free(off);                                                                                \
        return failed ? -1 : 0;                                                                   \
    }

#if defined(__x86_64__) || defined(__i386__)
#define CHOOSE_ISA(AVX2, V_AVX2, AVX512, V_AVX512)                                                \
    {                                                                                             \
        const int best = engine_best_isa();                                                       \
        if (isa == ENGINE_AVX512 && best >= ENGINE_AVX512) { rows = AVX512; V = V_AVX512; }       \
        else if (isa == ENGINE_AVX2 && best >= ENGINE_AVX2) { rows = AVX2; V = V_AVX2; }          \
    }
DW_DRIVER(engine_depthwise2d_f32, float, dw_rows_f32, dw_rows_portable_f32, dw_rows_avx2_f32, 8,
          dw_rows_avx512_f32, 16)
DW_DRIVER(engine_depthwise2d_f64, double, dw_rows_f64, dw_rows_portable_f64, dw_rows_avx2_f64, 4,
          dw_rows_avx512_f64, 8)
#else
#define CHOOSE_ISA(AVX2, V_AVX2, AVX512, V_AVX512) (void)isa;
DW_DRIVER(engine_depthwise2d_f32, float, dw_rows_f32, dw_rows_portable_f32, 0, 0, 0, 0)
DW_DRIVER(engine_depthwise2d_f64, double, dw_rows_f64, dw_rows_portable_f64, 0, 0, 0, 0)
#endif

