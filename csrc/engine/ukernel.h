/* The convolution engine's micro-kernel contract, named once for every kernel and packer.
 *
 * C[m][n] (+)= sum_k A[k][m] * B[k][n] for an MR x NR block of outputs held in registers over the
 * whole reduction k, then written once (with the bias) into the output, whose rows (output
 * channels) are ldc apart and whose columns (output pixels) are contiguous.
 *
 *   A panel: k x MR, MR weights of consecutive output channels contiguous per k, zero-padded to MR.
 *   B panel: k x NR, NR consecutive output pixels contiguous per k, zero-padded to NR (the im2col
 *            gather writes it directly: it is the packing).
 *
 * MR and NR depend on the instruction set (the register file), so a driver asks the chosen kernel
 * for them (engine_ukernel) and packs to match. Every variant sums over k in the same order with one
 * fused multiply-add per term, so all of them (and the reference) give the same bits.
 */
#ifndef IM2COL_ENGINE_UKERNEL_H
#define IM2COL_ENGINE_UKERNEL_H
#include <stdint.h>

enum engine_isa { ENGINE_PORTABLE = 0, ENGINE_AVX2 = 1, ENGINE_AVX512 = 2 };

/* m <= MR rows and n <= NR columns of the block are stored: the sums plus bias (m values, or NULL),
 * or with accumulate, the sums added to what C holds (a later block of the reduction; no bias). */
typedef void (*ukernel_f32)(int64_t k, const float *A, const float *B, float *C, int64_t ldc,
                            int m, int n, const float *bias, int accumulate);
typedef void (*ukernel_f64)(int64_t k, const double *A, const double *B, double *C, int64_t ldc,
                            int m, int n, const double *bias, int accumulate);

typedef struct {
    int mr, nr;
    ukernel_f32 f32;
} ukernel_info_f32;
typedef struct {
    int mr, nr;
    ukernel_f64 f64;
} ukernel_info_f64;

/* the reference in plain C (ukernel_ref.c): MR = 4, NR = 8 */
#define REF_MR 4
#define REF_NR 8
void ukernel_ref_f32(int64_t, const float *, const float *, float *, int64_t, int, int, const float *, int);
void ukernel_ref_f64(int64_t, const double *, const double *, double *, int64_t, int, int, const double *, int);

#if defined(__x86_64__) || defined(__i386__)
/* AVX2+FMA (ukernel_avx2.c): 6 x 16 floats, 6 x 8 doubles (12 ymm accumulators) */
#define AVX2_MR 6
#define AVX2_NR_F32 16
#define AVX2_NR_F64 8
void ukernel_avx2_f32(int64_t, const float *, const float *, float *, int64_t, int, int, const float *, int);
void ukernel_avx2_f64(int64_t, const double *, const double *, double *, int64_t, int, int, const double *, int);
/* AVX-512F (ukernel_avx512.c): 8 x 32 floats, 8 x 16 doubles (16 zmm accumulators) */
#define AVX512_MR 8
#define AVX512_NR_F32 32
#define AVX512_NR_F64 16
void ukernel_avx512_f32(int64_t, const float *, const float *, float *, int64_t, int, int, const float *, int);
void ukernel_avx512_f64(int64_t, const double *, const double *, double *, int64_t, int, int, const double *, int);
#endif

/* the best instruction set this CPU runs (conv.c) */
int engine_best_isa(void);
/* the kernel of one instruction set; falls back to the portable one when the CPU lacks it */
ukernel_info_f32 engine_ukernel_f32(int isa);
ukernel_info_f64 engine_ukernel_f64(int isa);
#endif
