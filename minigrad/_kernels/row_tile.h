/* The row tile of a stride-1 convolution whose outputs each sum few products (a network's
 * first layer: one to three input channels): 8 output channels × two vectors of 16 outputs
 * (the two halves of 32 outputs of a row, or two rows of at most 16), 16 accumulators. Each
 * tap loads its inputs once, a vector for each, and each of the 8 channels broadcasts its
 * weight into two FMAs; every product of an output is summed in its register before its one
 * store. The position tiles store sums of runs that cross rows, about two stores per
 * accumulator, which with 9 products an output take more than half as long as the products.
 *
 * x is read in place: a tap's row outside the plane is read by no vector, and its columns
 * outside the row are masked out of the loads (a masked lane reads nothing).
 *
 * out[o][r][col] = bias[o] + sum_c sum_i sum_j weight[o][c][i][j]
 *                  * x[c][r + i * dh - top][col + j * dw - left]
 * for the 8 output channels o and the tile's outputs; x's cells outside the plane count as 0.
 * With AVX-512 only. */
#ifndef MINIGRAD_ROW_TILE_H
#define MINIGRAD_ROW_TILE_H

#include <stddef.h>

#if defined(__AVX512F__)
#define MINIGRAD_ROW_TILE 1
#include <immintrin.h>
#else
#define MINIGRAD_ROW_TILE 0
#endif

/* output channels, outputs and a vector's lanes per tile; the widest kernel row it takes */
#define MINIGRAD_ROW_OUT 8
#define MINIGRAD_ROW_POSITIONS 32
#define MINIGRAD_ROW_LANES 16
#define MINIGRAD_ROW_MAX_KW 16

/* the tile's parameters, for both builds */
#define MINIGRAD_ROW_TILE_PARAMS                                                             \
    const float *x, ptrdiff_t channels, ptrdiff_t height, ptrdiff_t width,                   \
    const float *weight, ptrdiff_t filter, ptrdiff_t kh, ptrdiff_t kw, ptrdiff_t dh,         \
    ptrdiff_t dw, ptrdiff_t top, ptrdiff_t left, const ptrdiff_t *rows, const ptrdiff_t *cols, \
    ptrdiff_t out_h, ptrdiff_t out_w, const float *bias, float *out, ptrdiff_t out_plane

#if MINIGRAD_ROW_TILE

/* Lanes [lo, hi) of a vector of 16. */
static inline __mmask16 minigrad_row_lanes(ptrdiff_t lo, ptrdiff_t hi)
{
    if (lo < 0)
        lo = 0;
    if (hi > 16)
        hi = 16;
    return hi > lo ? (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u)) : 0;
}

/* x: the image's C planes (height × width); weight: output channel o's C·kh·kw weights at
 * weight + o * filter; out: output channel o's plane at out + o * out_plane, out_h × out_w;
 * bias: 8 values or NULL. Vector k holds the 16 outputs from (rows[k], cols[k]) along the
 * row (those past out_w or out_h are neither summed nor stored): two halves of a row of 32,
 * or two rows of at most 16. */
static inline void minigrad_row_tile(MINIGRAD_ROW_TILE_PARAMS)
{
    __m512 sums[MINIGRAD_ROW_OUT][2];
    __mmask16 masks[MINIGRAD_ROW_MAX_KW][2], stored[2];
    ptrdiff_t c, i, j, k, start, row[2];
    int o;
    for (k = 0; k < 2; k++) {
        stored[k] = rows[k] < out_h ? minigrad_row_lanes(0, out_w - cols[k]) : 0;
        /* tap column j's inputs: inside the row, for outputs that are stored */
        for (j = 0; j < kw; j++) {
            start = cols[k] + j * dw - left;
            masks[j][k] = minigrad_row_lanes(-start, width - start) & stored[k];
        }
    }
    /* every loop over the accumulators unrolled: an index the compiler cannot fold would keep
     * them in memory */
    _Pragma("GCC unroll 8")
    for (o = 0; o < MINIGRAD_ROW_OUT; o++)
        sums[o][0] = sums[o][1] = bias ? _mm512_set1_ps(bias[o]) : _mm512_setzero_ps();
    for (c = 0; c < channels; c++)
        for (i = 0; i < kh; i++) {
            __mmask16 inside[2];
            for (k = 0; k < 2; k++) {
                row[k] = rows[k] + i * dh - top;
                inside[k] = row[k] >= 0 && row[k] < height ? 0xffff : 0;
                /* a row outside the plane reads nothing: any row inside will do */
                row[k] = row[k] < 0 ? 0 : row[k] >= height ? height - 1 : row[k];
            }
            if (!(inside[0] | inside[1]))
                continue;
            const float *in0 = x + (c * height + row[0]) * width + cols[0] - left;
            const float *in1 = x + (c * height + row[1]) * width + cols[1] - left;
            const float *w = weight + (c * kh + i) * kw;
            for (j = 0; j < kw; j++) {
                __m512 v0 = _mm512_maskz_loadu_ps(masks[j][0] & inside[0], in0 + j * dw);
                __m512 v1 = _mm512_maskz_loadu_ps(masks[j][1] & inside[1], in1 + j * dw);
                _Pragma("GCC unroll 8")
                for (o = 0; o < MINIGRAD_ROW_OUT; o++) {
                    __m512 wo = _mm512_set1_ps(w[o * filter + j]);
                    sums[o][0] = _mm512_fmadd_ps(v0, wo, sums[o][0]);
                    sums[o][1] = _mm512_fmadd_ps(v1, wo, sums[o][1]);
                }
            }
        }
    _Pragma("GCC unroll 8")
    for (o = 0; o < MINIGRAD_ROW_OUT; o++) {
        float *plane = out + o * out_plane;
        _mm512_mask_storeu_ps(plane + rows[0] * out_w + cols[0], stored[0], sums[o][0]);
        _mm512_mask_storeu_ps(plane + rows[1] * out_w + cols[1], stored[1], sums[o][1]);
    }
}

#else

static inline void minigrad_row_tile(MINIGRAD_ROW_TILE_PARAMS)
{
    /* never called: row_conv.conv raises without the tile */
    (void)x; (void)channels; (void)height; (void)width; (void)weight; (void)filter;
    (void)kh; (void)kw; (void)dh; (void)dw; (void)top; (void)left; (void)rows; (void)cols;
    (void)out_h; (void)out_w; (void)bias; (void)out; (void)out_plane;
}

#endif
#endif
