/* The convolution engine's forward driver and the run-time choice of micro-kernel.
 *
 * Per call and group the weights are packed once into MR-channel panels (A). The work is split into
 * tasks (image, group, block of output pixels); a thread's task gathers its pixels' im2col columns
 * straight into its own NR-wide packed panels (B; the column matrix never exists in memory), then
 * runs the micro-kernel over every MR block of the group's output channels, writing into y with the
 * bias. Each output is computed by one kernel call whatever the thread count, so 1 and 2 threads give
 * the same bits.
 */
#include <stdlib.h>
#include <string.h>
#include "conv.h"
#include "../_omp_compat.h"

int engine_best_isa(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return ENGINE_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return ENGINE_AVX2;
#endif
    return ENGINE_PORTABLE;
}

ukernel_info_f32 engine_ukernel_f32(int isa)
{
    int best = engine_best_isa();
    ukernel_info_f32 r = {REF_MR, REF_NR, ukernel_ref_f32};
    (void)best;
#if defined(__x86_64__) || defined(__i386__)
    if (isa == ENGINE_AVX512 && best >= ENGINE_AVX512) {
        r.mr = AVX512_MR; r.nr = AVX512_NR_F32; r.f32 = ukernel_avx512_f32;
    } else if (isa == ENGINE_AVX2 && best >= ENGINE_AVX2) {
        r.mr = AVX2_MR; r.nr = AVX2_NR_F32; r.f32 = ukernel_avx2_f32;
    }
#endif
    return r;
}

ukernel_info_f64 engine_ukernel_f64(int isa)
{
    int best = engine_best_isa();
    ukernel_info_f64 r = {REF_MR, REF_NR, ukernel_ref_f64};
    (void)best;
#if defined(__x86_64__) || defined(__i386__)
    if (isa == ENGINE_AVX512 && best >= ENGINE_AVX512) {
        r.mr = AVX512_MR; r.nr = AVX512_NR_F64; r.f64 = ukernel_avx512_f64;
    } else if (isa == ENGINE_AVX2 && best >= ENGINE_AVX2) {
        r.mr = AVX2_MR; r.nr = AVX2_NR_F64; r.f64 = ukernel_avx2_f64;
    }
#endif
    return r;
}

/* Bytes of one thread's packed column block: about half of a 2 MiB L2, beside the weights. */
#define ENGINE_BLOCK_BYTES (192 * 1024)
/* Reduction block: 256 x 32 floats of packed columns = 32 KiB, within a 48 KiB L1. The same for
 * every instruction set, so that all of them still sum in the same order (the same bits). */
#define ENGINE_KC 256

#define ENGINE_CONV(NAME, T, INFO, GETK, FIELD)                                                   \
    int NAME(const T *x, const T *w, const T *bias, T *y, const engine_geom *g, int isa,           \
             int n_threads)                                                                        \
    {                                                                                              \
        INFO uk = GETK(isa);                                                                       \
        const int64_t MR = uk.mr, NR = uk.nr;                                                      \
        const int64_t G = g->groups, Cg = g->C / G, Kg = g->K / G, taps = g->kh * g->kw;           \
        const int64_t R = Cg * taps, L = g->OH * g->OW, HW = g->H * g->W;                          \
        const int64_t mblocks = (Kg + MR - 1) / MR;                                                \
        /* A: per group, mblocks panels of R x MR, channels past Kg zero */                        \
        T *A = (T *)calloc((size_t)(G * mblocks * R * MR), sizeof(T));                             \
        if (!A) return -1;                                                                         \
        for (int64_t gi = 0; gi < G; gi++)                                                         \
            for (int64_t k = 0; k < Kg; k++) {                                                     \
                T *panel = A + (gi * mblocks + k / MR) * R * MR + k % MR;                          \
                const T *row = w + (gi * Kg + k) * R;                                              \
                for (int64_t r = 0; r < R; r++) panel[r * MR] = row[r];                            \
            }                                                                                      \
        /* pixels per task: a multiple of NR whose packed block fits ENGINE_BLOCK_BYTES */         \
        int64_t nb = ENGINE_BLOCK_BYTES / (int64_t)sizeof(T) / (R * NR);                           \
        if (nb < 1) nb = 1;                                                                        \
        int64_t PB = nb * NR;                                                                      \
        if (PB > (L + NR - 1) / NR * NR) PB = (L + NR - 1) / NR * NR;                              \
        const int64_t pblocks = (L + PB - 1) / PB, tasks = g->N * G * pblocks;                     \
        int failed = 0;                                                                            \
        if (n_threads < 1) n_threads = 1;                                                          \
        if (n_threads > tasks) n_threads = (int)tasks;                                             \
        _Pragma("omp parallel num_threads(n_threads) reduction(|:failed)")                         \
        {                                                                                          \
            T *Bp = (T *)malloc((size_t)(R * PB) * sizeof(T));                                     \
            if (!Bp) failed = 1; /* every thread still meets the omp for */                      \
            {                                                                                 \
                _Pragma("omp for schedule(static)")                                                \
                for (int64_t t = 0; t < tasks; t++) {                                              \
                    if (!Bp) continue;                                                             \
                    const int64_t n = t / (G * pblocks), gi = t / pblocks % G;                     \
                    const int64_t p0 = t % pblocks * PB;                                           \
                    const int64_t np = L - p0 < PB ? L - p0 : PB;                                  \
                    const int64_t npanels = (np + NR - 1) / NR;                                    \
                    const T *xg = x + (n * g->C + gi * Cg) * HW;                                   \
                    /* the gather: row r = (c, i, j) of the columns, NR pixels per panel row */    \
                    for (int64_t jp = 0; jp < npanels; jp++) {                                     \
                        T *panel = Bp + jp * R * NR;                                               \
                        const int64_t q0 = jp * NR, nq = np - q0 < NR ? np - q0 : NR;              \
                        const int64_t oh0 = (p0 + q0) / g->OW, ow0 = (p0 + q0) % g->OW;            \
                        for (int64_t r = 0; r < R; r++) {                                          \
                            const int64_t c = r / taps, i = r % taps / g->kw, j = r % g->kw;       \
                            const T *xc = xg + c * HW;                                             \
                            const int64_t ioff = i * g->dh - g->pt, joff = j * g->dw - g->pl;      \
                            T *dst = panel + r * NR;                                               \
                            /* runs of pixels within one output row: one bounds test per run, */ \
                            /* a branch-free (for stride 1, contiguous) copy inside its valid span */ \
                            int64_t oh = oh0, ow = ow0, q = 0;                                     \
                            while (q < nq) {                                                       \
                                const int64_t run = g->OW - ow < nq - q ? g->OW - ow : nq - q;     \
                                const int64_t ih = oh * g->sh + ioff;                              \
                                if ((uint64_t)ih >= (uint64_t)g->H) {                              \
                                    for (int64_t e = 0; e < run; e++) dst[q + e] = 0;              \
                                } else {                                                           \
                                    const T *src = xc + ih * g->W + joff;                          \
                                    /* valid ow: 0 <= ow*sw + joff < W */                          \
                                    int64_t lo = joff >= 0 ? 0 : (-joff + g->sw - 1) / g->sw;      \
                                    int64_t hi = g->W - joff <= 0 ? 0 : (g->W - joff + g->sw - 1) / g->sw; \
                                    lo = lo < ow ? ow : lo > ow + run ? ow + run : lo;             \
                                    hi = hi > ow + run ? ow + run : hi < lo ? lo : hi;             \
                                    T *d = dst + q - ow;                                           \
                                    for (int64_t o = ow; o < lo; o++) d[o] = 0;                    \
                                    if (g->sw == 1)                                                \
                                        for (int64_t o = lo; o < hi; o++) d[o] = src[o];           \
                                    else                                                           \
                                        for (int64_t o = lo; o < hi; o++) d[o] = src[o * g->sw];   \
                                    for (int64_t o = hi; o < ow + run; o++) d[o] = 0;              \
                                }                                                                  \
                                q += run; ow += run;                                               \
                                if (ow == g->OW) { ow = 0; oh++; }                                 \
                            }                                                                      \
                            for (int64_t q = nq; q < NR; q++) dst[q] = 0;                          \
                        }                                                                          \
                    }                                                                              \
                    T *yg = y + (n * g->K + gi * Kg) * L + p0;                                     \
                    const T *bg = bias ? bias + gi * Kg : NULL;                                    \
                    /* the reduction in blocks of ENGINE_KC: a kc x NR column panel stays in L1 */ \
                    /* while the micro-kernel runs down every MR block of the weights (in L2) */   \
                    for (int64_t r0 = 0; r0 < R; r0 += ENGINE_KC) {                                \
                        const int64_t kc = R - r0 < ENGINE_KC ? R - r0 : ENGINE_KC;                \
                        for (int64_t jp = 0; jp < npanels; jp++) {                                 \
                            const int nn = (int)(np - jp * NR < NR ? np - jp * NR : NR);           \
                            for (int64_t mb = 0; mb < mblocks; mb++) {                             \
                                const T *Ap = A + (gi * mblocks + mb) * R * MR + r0 * MR;          \
                                const int m = (int)(Kg - mb * MR < MR ? Kg - mb * MR : MR);        \
                                uk.FIELD(kc, Ap, Bp + jp * R * NR + r0 * NR, yg + mb * MR * L + jp * NR, \
                                         L, m, nn, bg && r0 == 0 ? bg + mb * MR : NULL, r0 > 0);   \
                            }                                                                      \
                        }                                                                          \
                    }                                                                              \
                }                                                                                  \
                free(Bp);                                                                          \
            }                                                                                      \
        }                                                                                          \
        free(A);                                                                                   \
        return failed ? -1 : 0;                                                                    \
    }

ENGINE_CONV(engine_conv2d_f32, float, ukernel_info_f32, engine_ukernel_f32, f32)
ENGINE_CONV(engine_conv2d_f64, double, ukernel_info_f64, engine_ukernel_f64, f64)
