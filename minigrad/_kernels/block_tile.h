/* The register tile of the channel-blocked direct convolution (block_conv.pyx): 8 outputs of
 * one row times 32 output channels (two vectors), on a grid whose cells hold 16 input
 * channels side by side. Each of a block's 16 channels loads the two weight vectors and
 * broadcasts the 8 outputs' inputs; the broadcasts of one tap walk 8 cells, each a cache line
 * the block's 16 steps read in turn, so the tile reads its grid in whole lines, one stretch
 * per tap (the planar grid of conv_tile.h reads 16-position vectors across two lines).
 *
 * result[p * 32 + j] = sum_b sum_t sum_i weight[((b * taps + t) * 16 + i) * 32 + j]
 *                      * x[b * block_length + shifts[t] + p * 16 + i]
 * for the 8 positions p and 32 output channels j. With AVX-512 only: 16 accumulators, two
 * weights and a broadcast.
 *
 * The same tile reads zero-padded planes too (minigrad_planar_sums), for a stride of 2 along
 * the rows: x[b * 16 * plane + i * plane + shifts[t] + 2 * p]. A copy of the planes costs
 * less than their transpose into cells, and with one block its lines stay in L1. */
#ifndef MINIGRAD_BLOCK_TILE_H
#define MINIGRAD_BLOCK_TILE_H

#include <stddef.h>
#include "vectors.h"

#if defined(__AVX512F__)
#define MINIGRAD_BLOCK_TILE 1
#else
#define MINIGRAD_BLOCK_TILE 0

#endif

/* input channels per cell, outputs per tile, output channels per tile */
#define MINIGRAD_BLOCK_CHANNELS 16
#define MINIGRAD_BLOCK_POSITIONS 8
#define MINIGRAD_BLOCK_OUT 32

/* The tile on any layout: input channel i of block b at x + b * block_length + i * channel,
 * position p a further p * position on. The two layouts below pass constants for the
 * offsets the inner loop multiplies by, so that the compiler folds them into addresses. */
static inline __attribute__((always_inline)) void
minigrad_block_sums_on(const float *x, ptrdiff_t block_length, ptrdiff_t channel,
                       ptrdiff_t position, const float *weight, const ptrdiff_t *shifts,
                       ptrdiff_t blocks, ptrdiff_t taps, float *result)
{
    minigrad_lf sums[MINIGRAD_BLOCK_POSITIONS][2];
    ptrdiff_t b, t;
    int p, i;
    for (p = 0; p < MINIGRAD_BLOCK_POSITIONS; p++)
        sums[p][0] = sums[p][1] = (minigrad_lf){0};
    for (b = 0; b < blocks; b++)
        for (t = 0; t < taps; t++) {
            const float *g = x + b * block_length + shifts[t];
            const float *w = weight + (b * taps + t) * MINIGRAD_BLOCK_CHANNELS
                                      * MINIGRAD_BLOCK_OUT;
            _Pragma("GCC unroll 16")
            for (i = 0; i < MINIGRAD_BLOCK_CHANNELS; i++) {
                minigrad_lf w0 = *(const minigrad_lf *)(w + i * MINIGRAD_BLOCK_OUT);
                minigrad_lf w1 = *(const minigrad_lf *)(w + i * MINIGRAD_BLOCK_OUT + 16);
                const float *gi = g + i * channel;
                _Pragma("GCC unroll 8")
                for (p = 0; p < MINIGRAD_BLOCK_POSITIONS; p++) {
                    float v = gi[p * position];
                    sums[p][0] += v * w0;
                    sums[p][1] += v * w1;
                }
            }
        }
    for (p = 0; p < MINIGRAD_BLOCK_POSITIONS; p++) {
        *(minigrad_lf *)(result + p * MINIGRAD_BLOCK_OUT) = sums[p][0];
        *(minigrad_lf *)(result + p * MINIGRAD_BLOCK_OUT + 16) = sums[p][1];
    }
}

/* The channel-blocked grid: a cell's 16 channels side by side, cells one after another. */
static inline void minigrad_block_sums(const float *x, ptrdiff_t block_length,
                                       const float *weight, const ptrdiff_t *shifts,
                                       ptrdiff_t blocks, ptrdiff_t taps, float *result)
{
    minigrad_block_sums_on(x, block_length, 1, MINIGRAD_BLOCK_CHANNELS, weight, shifts,
                           blocks, taps, result);
}

/* Zero-padded planes ``plane`` floats long, read at every second column (stride 2). */
static inline void minigrad_planar_sums(const float *x, ptrdiff_t plane, const float *weight,
                                        const ptrdiff_t *shifts, ptrdiff_t blocks,
                                        ptrdiff_t taps, float *result)
{
    minigrad_block_sums_on(x, MINIGRAD_BLOCK_CHANNELS * plane, plane, 2, weight, shifts,
                           blocks, taps, result);
}

#endif
