/* The machine's floating-point peak: a loop of independent multiply-adds per instruction set.
 *
 * "Fraction of peak" in `im2col bench` divides a measured rate by this program's figure, so the
 * loop must reach what the FMA units can do and nothing else: no loads or stores, only register
 * arithmetic. Each thread keeps ACC independent accumulators, enough to cover the FMA latency
 * (4 cycles on recent x86) times the number of FMA ports (2), so the pipes never wait on a result.
 *
 * Usage: fma_peak ISA DTYPE THREADS ITERATIONS
 *   ISA in avx512f, avx2, sse2, scalar; DTYPE in fp32, fp64.
 * Prints "GFLOP/s" as one number (an FMA counts as 2 flops; SSE2, which has no FMA, does a
 * multiply and an add per step, also 2 flops), or "unsupported" with exit status 3.
 * Compiled at run time by fma_peak.py with `cc -O2 -fopenmp`; each ISA's kernel carries its own
 * target attribute, so the file builds for baseline x86-64 (and the scalar kernel anywhere).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FMA_X86 1
#endif

/* Fully unrolled, the accumulator arrays live in registers (at -O2 GCC otherwise keeps them in
 * memory, and the store-to-load round trip, not the FMA, sets the pace). */
#define UNROLL _Pragma("GCC unroll 16")

/* Sums the accumulators into a volatile so the compiler cannot drop the loop. */
static volatile double sink;

#ifdef FMA_X86
/* 16 accumulators of 16 floats: 32 zmm registers leave room for the two operands. */
__attribute__((target("avx512f"))) static void avx512_fp32(long iters) {
    __m512 a[16], b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < 16; i++) a[i] = _mm512_set1_ps((float)i);
    for (long n = 0; n < iters; n++)
        UNROLL for (int i = 0; i < 16; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
    float s = 0, t[16];
    for (int i = 0; i < 16; i++) { _mm512_storeu_ps(t, a[i]); s += t[0]; }
    sink = s;
}
__attribute__((target("avx512f"))) static void avx512_fp64(long iters) {
    __m512d a[16], b = _mm512_set1_pd(0.999999), c = _mm512_set1_pd(1e-7);
    for (int i = 0; i < 16; i++) a[i] = _mm512_set1_pd((double)i);
    for (long n = 0; n < iters; n++)
        UNROLL for (int i = 0; i < 16; i++) a[i] = _mm512_fmadd_pd(a[i], b, c);
    double s = 0, t[8];
    for (int i = 0; i < 16; i++) { _mm512_storeu_pd(t, a[i]); s += t[0]; }
    sink = s;
}
/* 12 accumulators: 16 ymm registers hold them, the two operands and two spare. */
__attribute__((target("avx2,fma"))) static void avx2_fp32(long iters) {
    __m256 a[12], b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps((float)i);
    for (long n = 0; n < iters; n++)
        UNROLL for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
    float s = 0, t[8];
    for (int i = 0; i < 12; i++) { _mm256_storeu_ps(t, a[i]); s += t[0]; }
    sink = s;
}
__attribute__((target("avx2,fma"))) static void avx2_fp64(long iters) {
    __m256d a[12], b = _mm256_set1_pd(0.999999), c = _mm256_set1_pd(1e-7);
    for (int i = 0; i < 12; i++) a[i] = _mm256_set1_pd((double)i);
    for (long n = 0; n < iters; n++)
        UNROLL for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_pd(a[i], b, c);
    double s = 0, t[4];
    for (int i = 0; i < 12; i++) { _mm256_storeu_pd(t, a[i]); s += t[0]; }
    sink = s;
}
/* SSE2 has no FMA: a multiply then an add per accumulator, 12 chains on 16 xmm registers. */
__attribute__((target("sse2"))) static void sse2_fp32(long iters) {
    __m128 a[12], b = _mm_set1_ps(0.999999f), c = _mm_set1_ps(1e-7f);
    for (int i = 0; i < 12; i++) a[i] = _mm_set1_ps((float)i);
    for (long n = 0; n < iters; n++)
        UNROLL for (int i = 0; i < 12; i++) a[i] = _mm_add_ps(_mm_mul_ps(a[i], b), c);
    float s = 0, t[4];
    for (int i = 0; i < 12; i++) { _mm_storeu_ps(t, a[i]); s += t[0]; }
    sink = s;
}
__attribute__((target("sse2"))) static void sse2_fp64(long iters) {
    __m128d a[12], b = _mm_set1_pd(0.999999), c = _mm_set1_pd(1e-7);
    for (int i = 0; i < 12; i++) a[i] = _mm_set1_pd((double)i);
    for (long n = 0; n < iters; n++)
        UNROLL for (int i = 0; i < 12; i++) a[i] = _mm_add_pd(_mm_mul_pd(a[i], b), c);
    double s = 0, t[2];
    for (int i = 0; i < 12; i++) { _mm_storeu_pd(t, a[i]); s += t[0]; }
    sink = s;
}
#endif

/* Portable C, one lane per accumulator: what a machine without vector kernels gets. The
 * compiler may vectorise or contract it; it is the fallback figure, not a vector one. */
static void scalar_fp32(long iters) {
    float a[12], b = 0.999999f, c = 1e-7f, s = 0;
    for (int i = 0; i < 12; i++) a[i] = (float)i;
    for (long n = 0; n < iters; n++)
        UNROLL for (int i = 0; i < 12; i++) a[i] = a[i] * b + c;
    for (int i = 0; i < 12; i++) s += a[i];
    sink = s;
}
static void scalar_fp64(long iters) {
    double a[12], b = 0.999999, c = 1e-7, s = 0;
    for (int i = 0; i < 12; i++) a[i] = (double)i;
    for (long n = 0; n < iters; n++)
        UNROLL for (int i = 0; i < 12; i++) a[i] = a[i] * b + c;
    for (int i = 0; i < 12; i++) s += a[i];
    sink = s;
}

typedef void (*kernel_fn)(long);

struct kernel {
    const char *isa, *dtype;
    kernel_fn fn;
    int flops_per_iter; /* accumulators × lanes × 2 */
    int supported;
};

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s ISA DTYPE THREADS ITERATIONS\n", argv[0]);
        return 2;
    }
    int threads = atoi(argv[3]);
    long iters = atol(argv[4]);
#ifdef FMA_X86
    __builtin_cpu_init();
    int has512 = __builtin_cpu_supports("avx512f");
    int has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    struct kernel ks[] = {
        {"avx512f", "fp32", avx512_fp32, 16 * 16 * 2, has512},
        {"avx512f", "fp64", avx512_fp64, 16 * 8 * 2, has512},
        {"avx2", "fp32", avx2_fp32, 12 * 8 * 2, has2},
        {"avx2", "fp64", avx2_fp64, 12 * 4 * 2, has2},
        {"sse2", "fp32", sse2_fp32, 12 * 4 * 2, 1},
        {"sse2", "fp64", sse2_fp64, 12 * 2 * 2, 1},
        {"scalar", "fp32", scalar_fp32, 12 * 2, 1},
        {"scalar", "fp64", scalar_fp64, 12 * 2, 1},
    };
#else
    struct kernel ks[] = {
        {"scalar", "fp32", scalar_fp32, 12 * 2, 1},
        {"scalar", "fp64", scalar_fp64, 12 * 2, 1},
    };
#endif
    struct kernel *k = NULL;
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
        if (!strcmp(ks[i].isa, argv[1]) && !strcmp(ks[i].dtype, argv[2])) k = &ks[i];
    if (k == NULL || !k->supported || threads < 1 || iters < 1) {
        printf("unsupported\n");
        return 3;
    }
#ifdef _OPENMP
    omp_set_dynamic(0);
#else
    if (threads != 1) {
        printf("unsupported\n");
        return 3;
    }
#endif
    double t0 = now();
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
#endif
    k->fn(iters);
    double dt = now() - t0;
    printf("%.3f\n", (double)k->flops_per_iter * iters * threads / dt / 1e9);
    return 0;
}
