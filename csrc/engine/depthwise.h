/* The convolution engine's direct depthwise kernel (depthwise.c, its gradients in
 * depthwise_backward.c): groups == C, K = m·C. */
#ifndef IM2COL_ENGINE_DEPTHWISE_H
#define IM2COL_ENGINE_DEPTHWISE_H
#include <stdint.h>
#include "conv.h"

/* y = depthwise conv(x, w) + bias: x (N, C, H, W), w (K, 1, kh, kw) with K = m·C (output channel k
 * reads input channel k / m), y (N, K, OH, OW), all C-contiguous; g->groups must be g->C.
 * Every output is bias + w[0]·x[0] + w[1]·x[1] + ... over all kh·kw taps in row-major tap order,
 * one fused multiply-add per tap (taps in the padding multiply a zero), so every instruction set
 * and every thread count gives the same bits. Returns 0, or -1 when out of memory. */
int engine_depthwise2d_f32(const float *x, const float *w, const float *bias, float *y,
                           const engine_geom *g, int isa, int n_threads);
int engine_depthwise2d_f64(const double *x, const double *w, const double *bias, double *y,
                           const engine_geom *g, int isa, int n_threads);

/* The gradients of that convolution for grad_output gy (N, K, OH, OW): gx (N, C, H, W) when gx is
 * not NULL, gw (K, 1, kh, kw) summed over the batch when gw is not NULL. Every value is summed in
 * an order fixed by the geometry alone (see depthwise_backward.c), so the same bits for every instruction
 * set and thread count. Returns 0, or -1 when out of memory. */
int engine_depthwise2d_backward_f32(const float *gy, const float *x, const float *w, float *gx, float *gw,
                                    const engine_geom *g, int isa, int n_threads);
int engine_depthwise2d_backward_f64(const double *gy, const double *x, const double *w, double *gx,
                                    double *gw, const engine_geom *g, int isa, int n_threads);
#endif
