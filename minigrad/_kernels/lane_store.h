/* The lane tile's sums (lane_tile.h: result[p * LB + v * 16 + j] for position p, vector v of
 * output channels and lane j) stored into the output planes, plus each channel's bias, a
 * vector at a time: for the tiles whose sums are 16 vectors of 16 floats, two rows of 8 with
 * one vector of channels, one row of 8 with two, two rows of 4 with two. Transposed in
 * registers, each vector holds one or two channels' outputs side by side, in halves (8
 * wide) or quarters (4 wide) that each go to one row of a plane; the store float by float it
 * replaces took a layer of few input channels a sizeable share of its time (benchmark case
 * inc5x5_8to16_16x16). */
#ifndef MINIGRAD_LANE_STORE_H
#define MINIGRAD_LANE_STORE_H

#include <stddef.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#include "transpose16.h"

/* Whether it stored the tile: ``width`` outputs (8 or 4) of ``rows`` rows, ``vectors``
 * vectors of output channels, all of them in the layer; ``bias`` may be NULL. */
static inline int minigrad_lane_store_f(int width, int vectors, int rows, const float *result,
                                        float *out, ptrdiff_t plane_stride,
                                        ptrdiff_t row_stride, const float *bias)
{
    /* source vector k at result + (k % 8) * along + (k / 8) * across; a transposed vector's
     * lanes 8 to 15 belong to channel j + upper; its segments' offsets in channel j's plane */
    ptrdiff_t along, across, upper, at[4];
    if (width == 8 && vectors == 1 && rows == 2) {
        along = 16, across = 128, upper = 0;
        at[0] = 0, at[1] = row_stride;
    } else if (width == 8 && vectors == 2 && rows == 1) {
        along = 32, across = 16, upper = 16;
        at[0] = 0, at[1] = 16 * plane_stride;
    } else if (width == 4 && vectors == 2 && rows == 2) {
        along = 32, across = 16, upper = 16;
        at[0] = 0, at[1] = row_stride;
        at[2] = 16 * plane_stride, at[3] = 16 * plane_stride + row_stride;
    } else
        return 0;
    minigrad_lf r[16];
    for (int k = 0; k < 16; k++)
        r[k] = *(const minigrad_lf *)(result + (k & 7) * along + (k >> 3) * across);
    minigrad_transpose16_rows(r);
    for (int j = 0; j < 16; j++) {
        __m512 add = _mm512_setzero_ps();
        if (bias != NULL)
            add = _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(bias[j]),
                                       _mm512_set1_ps(bias[j + upper]));
        __m512 v = _mm512_add_ps((__m512)r[j], add);
        float *dst = out + j * plane_stride;
        if (width == 8) {
            _mm256_storeu_ps(dst + at[0], _mm512_castps512_ps256(v));
            _mm256_storeu_ps(dst + at[1], _mm512_extractf32x8_ps(v, 1));
        } else {
            _mm_storeu_ps(dst + at[0], _mm512_castps512_ps128(v));
            _mm_storeu_ps(dst + at[1], _mm512_extractf32x4_ps(v, 1));
            _mm_storeu_ps(dst + at[2], _mm512_extractf32x4_ps(v, 2));
            _mm_storeu_ps(dst + at[3], _mm512_extractf32x4_ps(v, 3));
        }
    }
    return 1;
}
#else
/* the lane tile is built with AVX-512 only */
static inline int minigrad_lane_store_f(int width, int vectors, int rows, const float *result,
                                        float *out, ptrdiff_t plane_stride,
                                        ptrdiff_t row_stride, const float *bias)
{
    return 0;
}
#endif

#endif
