/* The weight-gradient register tiles in GCC vector types (direct_conv.pyx, _grad_image): written
 * as plain C loops, GCC unrolls a 16-iteration channel loop before it vectorises and the tile
 * runs scalar.
 *
 * tile[t * tap_stride + o] += sum_p row[shifts[t] + p] * gy_t[p * gy_stride + o]
 * over the positions p < count whose column p mod grid_width is below cols (the rest are
 * padding columns, whose gradient is zero) and, in the masked tile, the taps t the masks keep
 * there, for TG taps and WIDTH channels o, for one or two input channels: the main tile (with
 * AVX-512 one channel x 32, with AVX2 the pair tile, two channels x 16), and one-channel
 * tiles for an odd last channel and for the narrower widths a layer whose output channels
 * are not a multiple of GO may use when they pad them less (16 wide with AVX-512, 24 with
 * AVX2: 20 channels to 24, not 32). */
#ifndef MINIGRAD_GRAD_TILES_H
#define MINIGRAD_GRAD_TILES_H

#include "tile_sizes.h"
#include "vectors.h"

/* One position's step: the taps whose bit is set in MASK (a constant for the positions that
 * read no padding, so that loop has no tests), for each of the tile's input channels. */
#define MINIGRAD_GRAD_STEP(T, V, LANES, CHANNELS, MASK)                                      \
    for (k = 0; k < K; k++)                                                                  \
        g[k] = *(const V *)(gy_t + p * gy_stride + k * (LANES));                             \
    for (c = 0; c < (CHANNELS); c++)                                                         \
        for (t = 0; t < MINIGRAD_TG; t++) {                                                  \
            if (!((MASK) >> t & 1))                                                          \
                continue;                                                                    \
            T v = row[c * row_channel + shifts[t] + p];                                      \
            for (k = 0; k < K; k++)                                                          \
                sums[c][t][k] += v * g[k];                                                   \
        }

/* CHANNELS (1 or 2) input channels at once: rows ``row`` and ``row + row_channel``, written to
 * ``tile`` and ``tile + tile_channel``, all CHANNELS x TG rows of accumulators sharing each
 * loaded gradient vector. With AVX2 the pair tile, 2 x 3 x 16 floats, fills 12 of the 16
 * registers and leaves room for its two gradient vectors, which a 3 x 32 tile has not (it
 * reloads them in every FMA).
 *
 * MASKED: the output at row r, column col takes tap t only where bit t of row_masks[r] &
 * col_masks[col] is set: the masks leave out the taps that read padding there (zeros: on
 * 7 x 7 with 3 x 3, a sixth of the products) and the padded taps of a last group. The main
 * tile of AVX-512 only: on the 16-wide tile the tests cost more than they saved (16 -> 16
 * on 28 x 28), and the AVX2 tiles were not measured with them. */
#define MINIGRAD_GRAD_TILE(NAME, T, V, LANES, WIDTH, CHANNELS, MASKED)                       \
static inline void NAME(const T *gy_t, Py_ssize_t gy_stride, const T *row,                   \
                        Py_ssize_t row_channel, const Py_ssize_t *shifts, Py_ssize_t count,  \
                        Py_ssize_t cols, Py_ssize_t grid_width, const int *row_masks,        \
                        const int *col_masks, T *tile, Py_ssize_t tile_channel,              \
                        Py_ssize_t tap_stride)                                               \
{                                                                                            \
    enum { K = (WIDTH) / (LANES), ALL = (1 << MINIGRAD_TG) - 1 };                            \
    V sums[CHANNELS][MINIGRAD_TG][K];                                                        \
    V g[K];                                                                                  \
    Py_ssize_t first, end, p, r;                                                             \
    int c, t, k, mask;                                                                       \
    for (c = 0; c < (CHANNELS); c++)                                                         \
        for (t = 0; t < MINIGRAD_TG; t++)                                                    \
            for (k = 0; k < K; k++)                                                          \
                sums[c][t][k] = (V){0};                                                      \
    for (first = 0, r = 0; first < count; first += grid_width, r++) {                        \
        end = first + cols < count ? first + cols : count;                                   \
        for (p = first; p < end; p++) {                                                      \
            mask = (MASKED) ? row_masks[r] & col_masks[p - first] : ALL;                     \
            if (mask == ALL) {                                                               \
                MINIGRAD_GRAD_STEP(T, V, LANES, CHANNELS, ALL)                               \
            } else {                                                                         \
                MINIGRAD_GRAD_STEP(T, V, LANES, CHANNELS, mask)                              \
            }                                                                                \
        }                                                                                    \
    }                                                                                        \
    for (c = 0; c < (CHANNELS); c++)                                                         \
        for (t = 0; t < MINIGRAD_TG; t++)                                                    \
            for (k = 0; k < K; k++)                                                          \
                *(V *)(tile + c * tile_channel + t * tap_stride + k * (LANES)) += sums[c][t][k]; \
}

/* the main tile: with AVX-512 one channel x GO (two 64-byte vectors), with AVX2 the pair tile.
 * With AVX-512 also unmasked (``full``) for the kernels of more than one tap group (5 x 5,
 * 7 x 7): there the masked tile's loop, even at the positions that keep every tap, compiled
 * to slower code (it reloads the shifts every step) than the masks saved. */
#if defined(__AVX512F__)
MINIGRAD_GRAD_TILE(minigrad_grad_tile_masked_f, float, minigrad_lf, 16, MINIGRAD_GO, 1, 1)
MINIGRAD_GRAD_TILE(minigrad_grad_tile_masked_d, double, minigrad_ld, 8, MINIGRAD_GO, 1, 1)
MINIGRAD_GRAD_TILE(minigrad_grad_tile_full_f, float, minigrad_lf, 16, MINIGRAD_GO, 1, 0)
MINIGRAD_GRAD_TILE(minigrad_grad_tile_full_d, double, minigrad_ld, 8, MINIGRAD_GO, 1, 0)
#else
MINIGRAD_GRAD_TILE(minigrad_grad_tile_full_f, float, minigrad_v8f, 8, MINIGRAD_GO_PAIR, 2, 0)
MINIGRAD_GRAD_TILE(minigrad_grad_tile_full_d, double, minigrad_v4d, 4, MINIGRAD_GO_PAIR, 2, 0)
#define minigrad_grad_tile_masked_f minigrad_grad_tile_full_f
#define minigrad_grad_tile_masked_d minigrad_grad_tile_full_d
#endif

/* the main tile, masked (``masked``) or not */
#define MINIGRAD_GRAD_TILE_MAIN(NAME, T, MASKED_TILE, FULL_TILE)                             \
static inline void NAME(int masked, const T *gy_t, Py_ssize_t gy_stride, const T *row,       \
                        Py_ssize_t row_channel, const Py_ssize_t *shifts, Py_ssize_t count,  \
                        Py_ssize_t cols, Py_ssize_t grid_width, const int *row_masks,        \
                        const int *col_masks, T *tile, Py_ssize_t tile_channel,              \
                        Py_ssize_t tap_stride)                                               \
{                                                                                            \
    if (masked)                                                                              \
        MASKED_TILE(gy_t, gy_stride, row, row_channel, shifts, count, cols, grid_width,      \
                    row_masks, col_masks, tile, tile_channel, tap_stride);                   \
    else                                                                                     \
        FULL_TILE(gy_t, gy_stride, row, row_channel, shifts, count, cols, grid_width,        \
                  row_masks, col_masks, tile, tile_channel, tap_stride);                     \
}

MINIGRAD_GRAD_TILE_MAIN(minigrad_grad_tile_main_f, float, minigrad_grad_tile_masked_f,
                        minigrad_grad_tile_full_f)
MINIGRAD_GRAD_TILE_MAIN(minigrad_grad_tile_main_d, double, minigrad_grad_tile_masked_d,
                        minigrad_grad_tile_full_d)
/* one channel of 16 (with AVX2 the pair tile's width: an odd last channel) */
#if defined(__AVX512F__)
MINIGRAD_GRAD_TILE(minigrad_grad_tile_16_f, float, minigrad_lf, 16, 16, 1, 0)
MINIGRAD_GRAD_TILE(minigrad_grad_tile_16_d, double, minigrad_ld, 8, 16, 1, 0)
#else
MINIGRAD_GRAD_TILE(minigrad_grad_tile_16_f, float, minigrad_v8f, 8, 16, 1, 0)
MINIGRAD_GRAD_TILE(minigrad_grad_tile_16_d, double, minigrad_v4d, 4, 16, 1, 0)
#endif
MINIGRAD_GRAD_TILE(minigrad_grad_tile_24_f, float, minigrad_v8f, 8, 24, 1, 0)
MINIGRAD_GRAD_TILE(minigrad_grad_tile_24_d, double, minigrad_v4d, 4, 24, 1, 0)

/* the tile of ``width`` channels: 24, else 16 */
#define MINIGRAD_GRAD_TILE_PICK(NAME, T, TILE_16, TILE_24)                                   \
static inline void NAME(Py_ssize_t width, const T *gy_t, Py_ssize_t gy_stride, const T *row, \
                        const Py_ssize_t *shifts, Py_ssize_t count, Py_ssize_t cols,         \
                        Py_ssize_t grid_width, const int *row_masks, const int *col_masks,   \
                        T *tile, Py_ssize_t tap_stride)                                      \
{                                                                                            \
    if (width == 24)                                                                         \
        TILE_24(gy_t, gy_stride, row, 0, shifts, count, cols, grid_width, row_masks,         \
                col_masks, tile, 0, tap_stride);                                             \
    else                                                                                     \
        TILE_16(gy_t, gy_stride, row, 0, shifts, count, cols, grid_width, row_masks,         \
                col_masks, tile, 0, tap_stride);                                             \
}

MINIGRAD_GRAD_TILE_PICK(minigrad_grad_tile_narrow_f, float, minigrad_grad_tile_16_f,
                        minigrad_grad_tile_24_f)
MINIGRAD_GRAD_TILE_PICK(minigrad_grad_tile_narrow_d, double, minigrad_grad_tile_16_d,
                        minigrad_grad_tile_24_d)

/* The tiles' gradient, position-major: dst[i * width + o] = src[o * stride + i] for 16
 * channels o (rows ``stride`` apart) and 8 positions i, as the work item copies it. With
 * AVX-512 a register transpose: each zmm holds channels o and o + 8 in its halves, and the
 * two 8 x 8 transposes run side by side (unpack, shuffle, then a two-source permute across
 * the 128-bit lanes), where the element loop moved one value at a time. */
#if defined(__AVX512F__)
#include <immintrin.h>
#define MINIGRAD_POSITION_MAJOR 1
static inline void minigrad_position_major_16x8(const float *src, Py_ssize_t stride, float *dst,
                                                Py_ssize_t width)
{
    __m512 r[8], t[8], u[8];
    int k;
    for (k = 0; k < 8; k++)
        r[k] = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(src + k * stride)),
                                  _mm256_loadu_ps(src + (k + 8) * stride), 1);
    for (k = 0; k < 8; k += 2) {
        t[k] = _mm512_unpacklo_ps(r[k], r[k + 1]);
        t[k + 1] = _mm512_unpackhi_ps(r[k], r[k + 1]);
    }
    for (k = 0; k < 8; k += 4) {
        u[k] = _mm512_shuffle_ps(t[k], t[k + 2], 0x44);
        u[k + 1] = _mm512_shuffle_ps(t[k], t[k + 2], 0xEE);
        u[k + 2] = _mm512_shuffle_ps(t[k + 1], t[k + 3], 0x44);
        u[k + 3] = _mm512_shuffle_ps(t[k + 1], t[k + 3], 0xEE);
    }
    /* position p < 4 from the low 128-bit lanes of u[p] (rows 0-3) and u[p + 4] (rows 4-7),
     * p >= 4 from their high lanes; in each 256-bit half */
    const __m512i low = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19,
                                          8, 9, 10, 11, 24, 25, 26, 27);
    const __m512i high = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23,
                                           12, 13, 14, 15, 28, 29, 30, 31);
    for (k = 0; k < 4; k++) {
        _mm512_storeu_ps(dst + k * width, _mm512_permutex2var_ps(u[k], low, u[k + 4]));
        _mm512_storeu_ps(dst + (k + 4) * width, _mm512_permutex2var_ps(u[k], high, u[k + 4]));
    }
}
#else
#define MINIGRAD_POSITION_MAJOR 0
static inline void minigrad_position_major_16x8(const float *src, Py_ssize_t stride, float *dst,
                                                Py_ssize_t width)
{
    int o, i;
    for (o = 0; o < 16; o++)
        for (i = 0; i < 8; i++)
            dst[i * width + o] = src[o * stride + i];
}
#endif

#endif
