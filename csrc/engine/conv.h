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

/* y = conv(x, w) + bias, x/w/y C-contiguous; returns 0, or -1 when out of memory. */
int engine_conv2d_f32(const float *x, const float *w, const float *bias, float *y,
                      const engine_geom *g, int isa, int n_threads);
int engine_conv2d_f64(const double *x, const double *w, const double *bias, double *y,
                      const engine_geom *g, int isa, int n_threads);
#endif
