/* The weight-gradient register tiles in GCC vector types (direct_conv.pyx, _grad_block): written
 * as plain C loops, GCC unrolls a 16-iteration channel loop before it vectorises and the tile
 * runs scalar.
 *
 * tile[t * tap_stride + o] += sum_{p < count} row[shifts[t] + p] * gy_t[p * gy_stride + o]
 * for TG taps t and WIDTH channels o: with AVX2 the main tile (two input channels at once,
 * the pair tile below), and the narrower tiles a layer whose output channels are not a
 * multiple of GO may use when they pad them less (16 wide with AVX-512, 24 with AVX2: 20
 * channels to 24, not 32). */
#ifndef MINIGRAD_GRAD_TILES_H
#define MINIGRAD_GRAD_TILES_H

#include "tile_sizes.h"

/* 32-byte vectors that may sit at any element boundary (unaligned loads) */
typedef float minigrad_v8f __attribute__((vector_size(32), aligned(4), may_alias));
typedef double minigrad_v4d __attribute__((vector_size(32), aligned(8), may_alias));

#define MINIGRAD_GRAD_TILE_NARROW(NAME, T, V, LANES, WIDTH)                                  \
static inline void NAME(const T *gy_t, Py_ssize_t gy_stride, const T *row,                   \
                        const Py_ssize_t *shifts, Py_ssize_t count, T *tile,                 \
                        Py_ssize_t tap_stride)                                               \
{                                                                                            \
    enum { K = (WIDTH) / LANES };                                                            \
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

/* The same sum for two input channels at once (rows ``row`` and ``row + row_channel``, written
 * to ``tile`` and ``tile + tile_channel``): 2 x TG rows of accumulators share each loaded
 * gradient vector. With AVX2, 2 x 3 x 16 floats fill 12 of the 16 registers and leave room for
 * the two gradient vectors, which a 3 x 32 tile has not (it reloads them in every FMA). */
#define MINIGRAD_GRAD_TILE_PAIR(NAME, T, V, LANES, WIDTH)                                    \
static inline void NAME(const T *gy_t, Py_ssize_t gy_stride, const T *row,                   \
                        Py_ssize_t row_channel, const Py_ssize_t *shifts, Py_ssize_t count,  \
                        T *tile, Py_ssize_t tile_channel, Py_ssize_t tap_stride)             \
{                                                                                            \
    enum { K = (WIDTH) / LANES };                                                            \
    V sums[2][MINIGRAD_TG][K];                                                               \
    V g[K];                                                                                  \
    const T *second = row + row_channel;                                                     \
    Py_ssize_t p;                                                                            \
    int c, t, k;                                                                             \
    for (c = 0; c < 2; c++)                                                                  \
        for (t = 0; t < MINIGRAD_TG; t++)                                                    \
            for (k = 0; k < K; k++)                                                          \
                sums[c][t][k] = (V){0};                                                      \
    for (p = 0; p < count; p++) {                                                            \
        for (k = 0; k < K; k++)                                                              \
            g[k] = *(const V *)(gy_t + p * gy_stride + k * LANES);                           \
        for (t = 0; t < MINIGRAD_TG; t++) {                                                  \
            T v = row[shifts[t] + p];                                                        \
            for (k = 0; k < K; k++)                                                          \
                sums[0][t][k] += v * g[k];                                                   \
        }                                                                                    \
        for (t = 0; t < MINIGRAD_TG; t++) {                                                  \
            T v = second[shifts[t] + p];                                                     \
            for (k = 0; k < K; k++)                                                          \
                sums[1][t][k] += v * g[k];                                                   \
        }                                                                                    \
    }                                                                                        \
    for (c = 0; c < 2; c++)                                                                  \
        for (t = 0; t < MINIGRAD_TG; t++)                                                    \
            for (k = 0; k < K; k++)                                                          \
                *(V *)(tile + c * tile_channel + t * tap_stride + k * LANES) += sums[c][t][k]; \
}

MINIGRAD_GRAD_TILE_PAIR(minigrad_grad_tile_pair_f, float, minigrad_v8f, 8, MINIGRAD_GO_PAIR)
MINIGRAD_GRAD_TILE_PAIR(minigrad_grad_tile_pair_d, double, minigrad_v4d, 4, MINIGRAD_GO_PAIR)

MINIGRAD_GRAD_TILE_NARROW(minigrad_grad_tile_16_f, float, minigrad_v8f, 8, 16)
MINIGRAD_GRAD_TILE_NARROW(minigrad_grad_tile_16_d, double, minigrad_v4d, 4, 16)
MINIGRAD_GRAD_TILE_NARROW(minigrad_grad_tile_24_f, float, minigrad_v8f, 8, 24)
MINIGRAD_GRAD_TILE_NARROW(minigrad_grad_tile_24_d, double, minigrad_v4d, 4, 24)

/* the tile of ``width`` channels: 24, else 16 */
#define MINIGRAD_GRAD_TILE_PICK(NAME, T, TILE_16, TILE_24)                                   \
static inline void NAME(Py_ssize_t width, const T *gy_t, Py_ssize_t gy_stride, const T *row, \
                        const Py_ssize_t *shifts, Py_ssize_t count, T *tile,                 \
                        Py_ssize_t tap_stride)                                               \
{                                                                                            \
    if (width == 24)                                                                         \
        TILE_24(gy_t, gy_stride, row, shifts, count, tile, tap_stride);                      \
    else                                                                                     \
        TILE_16(gy_t, gy_stride, row, shifts, count, tile, tap_stride);                      \
}

MINIGRAD_GRAD_TILE_PICK(minigrad_grad_tile_narrow_f, float, minigrad_grad_tile_16_f,
                        minigrad_grad_tile_24_f)
MINIGRAD_GRAD_TILE_PICK(minigrad_grad_tile_narrow_d, double, minigrad_grad_tile_16_d,
                        minigrad_grad_tile_24_d)

#endif
