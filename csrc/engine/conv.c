/* The convolution engine's forward driver and the run-time choice of micro-kernel.
 *
 * Per call and group the weights are packed once into MR-channel panels (A), by the threads. The
 * work is split into tasks (image, group, block of whole NR-pixel panels); per block of ENGINE_KC
 * reduction rows a thread's task gathers those rows of its pixels' im2col columns straight into its
 * own packed panels (B; the column matrix never exists in memory), then runs the micro-kernel over
 * every panel and MR block of the group's output channels, writing into y with the bias (first
 * block) or adding to it. Each output is the same chain of kernel calls whatever the thread count
 * or instruction set, so they all give the same bits.
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


/* Cut pixels [p0, p0 + np) into pieces for panel jp (pixels [jp*NR, jp*NR + NR) of the block). */
static int64_t engine_pieces(const engine_geom *g, int64_t p0, int64_t np, int64_t NR, int64_t jp,
                             engine_piece *pc)
{
    int64_t q = jp * NR, qe = q + NR < np ? q + NR : np, n = 0;
    while (q < qe) {
        const int64_t oh = (p0 + q) / g->OW, ow = (p0 + q) % g->OW;
        const int64_t len = g->OW - ow < qe - q ? g->OW - ow : qe - q;
        pc[n].oh = oh; pc[n].ow = ow; pc[n].len = len; pc[n].dst = q - jp * NR;
        n++;
        q += len;
    }
    return n;
}

/* Cut every panel of pixels [p0, p0 + np) into pieces: panel jp's are pc[ps[jp]] .. pc[ps[jp+1]-1]. */
static void engine_all_pieces(const engine_geom *g, int64_t p0, int64_t np, int64_t NR,
                              engine_piece *pc, int64_t *ps)
{
    const int64_t npanels = (np + NR - 1) / NR;
    ps[0] = 0;
    for (int64_t jp = 0; jp < npanels; jp++)
        ps[jp + 1] = ps[jp] + engine_pieces(g, p0, np, NR, jp, pc + ps[jp]);
}

/* The gather of one block of the reduction: rows r0 .. r0+kc-1 of the columns (r = (c, i, j)) into
 * the kc x NR panels of every panel of the task (panels KC*NR apart, KC = min(R, ENGINE_KC)). Row
 * by row, all panels of a row in turn: one tap reads a contiguous stretch of its input plane, which
 * the hardware prefetcher follows (panel by panel, a 1x1 layer read 128 bytes of each of C planes
 * in turn). Zeros for padding and for pixels past np; a contiguous copy for stride 1. */
#define ENGINE_GATHER(NAME, T)                                                                     \
    static void NAME(const T *restrict xg, const engine_geom *g, int64_t r0, int64_t kc, int64_t KC, \
                     int64_t np, int64_t NR, T *restrict Bp, const engine_piece *pc,               \
                     const int64_t *ps)                                                            \
    {                                                                                              \
        const int64_t HW = g->H * g->W, sw = g->sw, taps = g->kh * g->kw;                          \
        const int64_t npanels = (np + NR - 1) / NR, nq = np - (npanels - 1) * NR;                  \
        int64_t c = r0 / taps, i = r0 % taps / g->kw, j = r0 % g->kw;                              \
        for (int64_t r = 0; r < kc; r++) {                                                         \
            const T *xc = xg + c * HW;                                                             \
            const int64_t ioff = i * g->dh - g->pt, joff = j * g->dw - g->pl;                      \
            /* valid output columns of this tap: 0 <= ow*sw + joff < W */                          \
            const int64_t vlo = joff >= 0 ? 0 : (-joff + sw - 1) / sw;                             \
            const int64_t vhi = g->W - joff <= 0 ? 0 : (g->W - joff + sw - 1) / sw;                \
            for (int64_t jp = 0; jp < npanels; jp++) {                                             \
                T *dst = Bp + jp * KC * NR + r * NR;                                               \
                for (int64_t e = ps[jp]; e < ps[jp + 1]; e++) {                                    \
                    const int64_t ow = pc[e].ow, len = pc[e].len;                                  \
                    T *restrict d = dst + pc[e].dst - ow;                                          \
                    const int64_t ih = pc[e].oh * g->sh + ioff;                                    \
                    int64_t lo = vlo < ow ? ow : vlo, hi = vhi > ow + len ? ow + len : vhi;        \
                    if ((uint64_t)ih >= (uint64_t)g->H || hi < lo) lo = hi = ow;                   \
                    const T *restrict s = xc + ih * g->W + joff;                                   \
                    for (int64_t o = ow; o < lo; o++) d[o] = 0;                                    \
                    if (sw == 1)                                                                   \
                        for (int64_t o = lo; o < hi; o++) d[o] = s[o];                             \
                    else                                                                           \
                        for (int64_t o = lo; o < hi; o++) d[o] = s[o * sw];                        \
                    for (int64_t o = hi; o < ow + len; o++) d[o] = 0;                              \
                }                                                                                  \
            }                                                                                      \
            for (int64_t q = nq; q < NR; q++) Bp[(npanels - 1) * KC * NR + r * NR + q] = 0;        \
            if (++j == g->kw) { j = 0; if (++i == g->kh) { i = 0; c++; } }                         \
        }                                                                                          \
    }

ENGINE_GATHER(engine_gather_f32, float)
ENGINE_GATHER(engine_gather_f64, double)

#define ENGINE_CONV(NAME, T, INFO, GETK, FIELD, GATHER, VEC)                                      \
    int NAME(const T *x, const T *w, const T *bias, T *y, const engine_geom *g, int isa,           \
             int n_threads)                                                                        \
    {                                                                                              \
        INFO uk = GETK(isa);                                                                       \
        const int64_t MR = uk.mr, NR = uk.nr;                                                      \
        const int64_t G = g->groups, Cg = g->C / G, Kg = g->K / G, taps = g->kh * g->kw;           \
        const int64_t R = Cg * taps, L = g->OH * g->OW;                                            \
        const int64_t mblocks = (Kg + MR - 1) / MR;                                                \
        /* the instruction set's own gather (masked vector loads), or NULL for the C one */       \
        void (*vec)(const T *, const engine_geom *, int64_t, int64_t, int64_t, int64_t, T *,       \
                    const engine_piece *, const int64_t *) = VEC;                                  \
        /* A: per group, mblocks panels of R x MR, channels past Kg zero (packed by the threads */ \
        /* below, panel by panel, each written in order) */                                       \
        T *A = (T *)malloc((size_t)(G * mblocks * R * MR) * sizeof(T));                            \
        if (!A) return -1;                                                                         \
        /* pixels per task: a multiple of NR whose packed block of one reduction block */         \
        /* (kc x NR per panel) fits ENGINE_BLOCK_BYTES: the weights of one reduction block are */  \
        /* then reused over all the task's panels */                                              \
        const int64_t KC = R < ENGINE_KC ? R : ENGINE_KC;                                          \
        int64_t nb = ENGINE_BLOCK_BYTES / (int64_t)sizeof(T) / (KC * NR);                          \
        if (nb < 1) nb = 1;                                                                        \
        /* the L pixels' P panels split into pblocks blocks of whole panels, sizes within one */   \
        /* panel of each other; with few tasks, a multiple of the thread count, so both cores */   \
        /* get the same work (batch 1: 25 panels had been 4 tasks of 6 and one of 1) */            \
        if (n_threads < 1) n_threads = 1;                                                          \
        const int64_t P = (L + NR - 1) / NR;                                                       \
        int64_t pblocks = (P + nb - 1) / nb;                                                       \
        if (g->N * G * pblocks < 8 * n_threads) {                                                  \
            pblocks = (pblocks + n_threads - 1) / n_threads * n_threads;                           \
            if (pblocks > P) pblocks = P;                                                          \
        }                                                                                          \
        const int64_t PB = (P + pblocks - 1) / pblocks * NR, tasks = g->N * G * pblocks;           \
        int failed = 0;                                                                            \
        if (n_threads > tasks) n_threads = (int)tasks;                                             \
        _Pragma("omp parallel num_threads(n_threads) reduction(|:failed)")                         \
        {                                                                                          \
            T *Bp = (T *)malloc((size_t)(KC * PB) * sizeof(T));                                   \
            /* pieces of the task's panels: at most one per pixel, plus one per output row */      \
            engine_piece *pc = (engine_piece *)malloc((size_t)(2 * PB + 2) * sizeof(engine_piece)); \
            int64_t *ps = (int64_t *)malloc((size_t)(PB / NR + 2) * sizeof(int64_t));              \
            if (!Bp || !pc || !ps) failed = 1; /* every thread still meets the omp for */          \
            _Pragma("omp for schedule(static)")                                                    \
            for (int64_t pn = 0; pn < G * mblocks; pn++) {                                         \
                const int64_t k0 = pn % mblocks * MR, nk = Kg - k0 < MR ? Kg - k0 : MR;            \
                const T *wp = w + (pn / mblocks * Kg + k0) * R;                                    \
                T *panel = A + pn * R * MR;                                                        \
                for (int64_t r = 0; r < R; r++)                                                    \
                    for (int64_t kk = 0; kk < MR; kk++)                                            \
                        panel[r * MR + kk] = kk < nk ? wp[kk * R + r] : (T)0;                      \
            }                                                                                      \
            {                                                                                      \
                _Pragma("omp for schedule(static)")                                                \
                for (int64_t t = 0; t < tasks; t++) {                                              \
                    if (!Bp || !pc || !ps) continue;                                               \
                    const int64_t n = t / (G * pblocks), gi = t / pblocks % G;                     \
                    const int64_t b = t % pblocks;                                                 \
                    const int64_t p0 = b * P / pblocks * NR, pe = (b + 1) * P / pblocks * NR;      \
                    const int64_t np = (L < pe ? L : pe) - p0;                                     \
                    const int64_t npanels = (np + NR - 1) / NR;                                    \
                    const T *xg = x + (n * g->C + gi * Cg) * g->H * g->W;                          \
                    T *yg = y + (n * g->K + gi * Kg) * L + p0;                                     \
                    const T *bg = bias ? bias + gi * Kg : NULL;                                    \
                    engine_all_pieces(g, p0, np, NR, pc, ps);                                      \
                    /* per block of ENGINE_KC reduction rows: gather them for every panel, then */ \
                    /* run the micro-kernel over every panel (kc x NR, in L1) and MR block of the */ \
                    /* weights (the kc rows of all of them in L2) */                               \
                    for (int64_t r0 = 0; r0 < R; r0 += ENGINE_KC) {                                \
                        const int64_t kc = R - r0 < ENGINE_KC ? R - r0 : ENGINE_KC;                \
                        if (vec)                                                                   \
                            vec(xg, g, r0, kc, KC, npanels, Bp, pc, ps);                           \
                        else                                                                       \
                            GATHER(xg, g, r0, kc, KC, np, NR, Bp, pc, ps);                         \
                        for (int64_t jp = 0; jp < npanels; jp++) {                                 \
                            const int nn = (int)(np - jp * NR < NR ? np - jp * NR : NR);           \
                            for (int64_t mb = 0; mb < mblocks; mb++) {                             \
                                const T *Ap = A + (gi * mblocks + mb) * R * MR + r0 * MR;          \
                                const int m = (int)(Kg - mb * MR < MR ? Kg - mb * MR : MR);        \
                                uk.FIELD(kc, Ap, Bp + jp * KC * NR, yg + mb * MR * L + jp * NR, \
                                         L, m, nn, bg && r0 == 0 ? bg + mb * MR : NULL, r0 > 0);   \
                            }                                                                      \
                        }                                                                          \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
            free(Bp);                                                                              \
            free(pc);                                                                              \
            free(ps);                                                                              \
        }                                                                                          \
        free(A);                                                                                   \
        return failed ? -1 : 0;                                                                    \
    }

#if defined(__x86_64__) || defined(__i386__)
/* the AVX-512 panel gather goes with the AVX-512 kernel (its NR = 32 floats) */
#define ENGINE_VEC_F32 (uk.f32 == ukernel_avx512_f32 ? engine_gather_avx512_f32 : NULL)
#else
#define ENGINE_VEC_F32 NULL
#endif
ENGINE_CONV(engine_conv2d_f32, float, ukernel_info_f32, engine_ukernel_f32, f32, engine_gather_f32,
            ENGINE_VEC_F32)
ENGINE_CONV(engine_conv2d_f64, double, ukernel_info_f64, engine_ukernel_f64, f64, engine_gather_f64, NULL)
