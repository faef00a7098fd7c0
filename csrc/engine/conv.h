/* The convolution engine's drivers: 2-D NCHW forward convolution on the packed micro-kernel. */
#ifndef IM2COL_ENGINE_CONV_H
#define IM2COL_ENGINE_CONV_H
#include <stdint.h>
#include "ukernel.h"

/* One convolution's geometry, checked above (im2col._validation): input (N, C, H, W), K kernels of
 * (C/groups, kh, kw), output (N, K, OH, OW); padding top/left (bottom/right follow from OH, OW). */
typedef struct {
    int64_t N, C, H, W, K, kh, kw, sh, sw, pt, pl, dh, dw, OH, OW, groups;
} engine_geom;

/* One piece of a task's pixels: a run within one output row and one NR panel. The gather walks these
 * per reduction row r, so the row/panel arithmetic is done once per panel, not once per (r, panel). */
typedef struct {
    int64_t oh, ow, len, dst; /* output row, first output column, pixels, offset in the panel row */
} engine_piece;

#if defined(__x86_64__) || defined(__i386__)
/* AVX-512F gather (ukernel_avx512.c) of reduction rows r0 .. r0+kc-1 into the npanels 32-float
 * panels of a task (KC*32 floats apart), from the group's input planes xg; panel jp's pieces are
 * pc[ps[jp]] .. pc[ps[jp+1]-1], and positions no piece covers (or padding) are zero. */
void engine_gather_avx512_f32(const float *xg, const engine_geom *g, int64_t r0, int64_t kc,
                              int64_t KC, int64_t npanels, float *Bp, const engine_piece *pc,
                              const int64_t *ps);
#endif

/* y = conv(x, w) + bias, x/w/y C-contiguous; returns 0, or -1 when out of memory. */
int engine_conv2d_f32(const float *x, const float *w, const float *bias, float *y,
                      const engine_geom *g, int isa, int n_threads);
int engine_conv2d_f64(const double *x, const double *w, const double *bias, double *y,
                      const engine_geom *g, int isa, int n_threads);
#endif
