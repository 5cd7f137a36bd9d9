/* The weight-gradient register tile for layers with at most GO / 2 output channels
 * (direct_conv.pyx, _grad_tile_half), in GCC vector types: written as plain C loops, GCC
 * unrolls a 16-iteration channel loop before it vectorises and the tile runs scalar.
 *
 * tile[t * tap_stride + o] += sum_{p < count} row[shifts[t] + p] * gy_t[p * gy_stride + o]
 * for TG taps t and GO / 2 channels o. */
#ifndef MINIGRAD_GRAD_TILE_HALF_H
#define MINIGRAD_GRAD_TILE_HALF_H

#include "tile_sizes.h"

/* 32-byte vectors that may sit at any element boundary (unaligned loads) */
typedef float minigrad_v8f __attribute__((vector_size(32), aligned(4), may_alias));
typedef double minigrad_v4d __attribute__((vector_size(32), aligned(8), may_alias));

#define MINIGRAD_GRAD_TILE_HALF(NAME, T, V, LANES)                                           \
static inline void NAME(const T *gy_t, Py_ssize_t gy_stride, const T *row,                   \
                        const Py_ssize_t *shifts, Py_ssize_t count, T *tile,                 \
                        Py_ssize_t tap_stride)                                               \
{                                                                                            \
    enum { K = MINIGRAD_GO_HALF / LANES };                                                   \
    V sums[MINIGRAD_TG][K];                                                                  \
    V g[K];                                                                                  \
    Py_ssize_t p;                                                                            \
    int t, k, lane;                                                                          \
    for (t = 0; t < MINIGRAD_TG; t++)                                                        \
        for (k = 0; k < K; k++)                                                              \
            sums[t][k] = (V){0};                                                             \
    for (p = 0; p < count; p++) {                                                            \
        for (k = 0; k < K; k++)                                                              \
            g[k] = *(const V *)(gy_t + p * gy_stride + k * LANES);                           \
        for (t = 0; t < MINIGRAD_TG; t++) {                                                  \
            T v = row[shifts[t] + p];                                                        \
            for (k = 0; k < K; k++)                                                          \
                sums[t][k] += v * g[k];                                                      \
        }                                                                                    \
    }                                                                                        \
    for (t = 0; t < MINIGRAD_TG; t++)                                                        \
        for (k = 0; k < K; k++)                                                              \
            for (lane = 0; lane < LANES; lane++)                                             \
                tile[t * tap_stride + k * LANES + lane] += sums[t][k][lane];                 \
}

MINIGRAD_GRAD_TILE_HALF(minigrad_grad_tile_half_f, float, minigrad_v8f, 8)
MINIGRAD_GRAD_TILE_HALF(minigrad_grad_tile_half_d, double, minigrad_v4d, 4)

#endif
