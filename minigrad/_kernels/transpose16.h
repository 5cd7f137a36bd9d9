/* A 16×16 float32 transpose in vector registers, for kernels that interleave 16 planes cell
 * by cell (winograd_strided.pyx, block_conv.pyx) or store a tile's sums channel by channel
 * (lane_store.h): each of four stages swaps one bit of the row index with the same bit of
 * the column index, pairing rows r and r + d (d = 1, 2, 4, 8) in two-source shuffles (one
 * vpermt2ps each with AVX-512). */
#ifndef MINIGRAD_TRANSPOSE16_H
#define MINIGRAD_TRANSPOSE16_H

#include <stddef.h>
#include "vectors.h"

typedef int minigrad_li __attribute__((vector_size(64)));

/* Stage d: new row r (bit d of r clear) takes row r's entries whose column has bit d clear
 * and row r + d's entries shifted down by d; new row r + d the rest. */
#define MINIGRAD_T16_STAGE(d, lo, hi)                                    \
    for (int i = 0; i < 16; i++) {                                      \
        if (!(i & (d))) {                                               \
            minigrad_lf a = r[i], b = r[i + (d)];                       \
            r[i] = __builtin_shuffle(a, b, (minigrad_li)lo);            \
            r[i + (d)] = __builtin_shuffle(a, b, (minigrad_li)hi);      \
        }                                                               \
    }

/* The 16 rows r[0..15] transposed in place: r[c] becomes column c. */
static inline void minigrad_transpose16_rows(minigrad_lf r[16])
{
    MINIGRAD_T16_STAGE(1,
        ((minigrad_li){0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30}),
        ((minigrad_li){1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}))
    MINIGRAD_T16_STAGE(2,
        ((minigrad_li){0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29}),
        ((minigrad_li){2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31}))
    MINIGRAD_T16_STAGE(4,
        ((minigrad_li){0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27}),
        ((minigrad_li){4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31}))
    MINIGRAD_T16_STAGE(8,
        ((minigrad_li){0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23}),
        ((minigrad_li){8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}))
}

/* Row c of dst (16 floats at dst[c]) = column c of the 16 rows at src[r]. */
static inline void minigrad_transpose16(const float *const *src, float *const *dst)
{
    minigrad_lf r[16];
    for (int i = 0; i < 16; i++)
        r[i] = *(const minigrad_lf *)src[i];
    minigrad_transpose16_rows(r);
    for (int i = 0; i < 16; i++)
        *(minigrad_lf *)dst[i] = r[i];
}

/* The same for 16 rows ``stride`` floats apart from ``src``, row c of the result going to the
 * 16 floats at dst + 16 * cells[c]: a block's channels into their cells (block_conv.pyx),
 * with the addresses worked out as it goes rather than gathered into arrays of pointers,
 * which GCC built in vector registers and took apart one pointer at a time. */
static inline void minigrad_transpose16_cells(const float *src, ptrdiff_t stride, float *dst,
                                              const ptrdiff_t *cells)
{
    minigrad_lf r[16];
    for (int i = 0; i < 16; i++)
        r[i] = *(const minigrad_lf *)(src + i * stride);
    minigrad_transpose16_rows(r);
    for (int i = 0; i < 16; i++)
        *(minigrad_lf *)(dst + 16 * cells[i]) = r[i];
}

/* Lane planes <-> interleaved cells (winograd.pyx's _interleave, planes one image apart): the
 * ``count`` (<= 16) planes at plane + i * plane_step, rows × cols each, and the cells of a
 * lane group, cell (r, q) the 16 floats at cells + r * row_step + 16 * q, lane i of each
 * holding plane i's value (r, q). Each row goes over by 16 columns at a time in one
 * transpose; the planes' loads and stores past ``cols`` are masked off, lanes past ``count``
 * read as zeros (in) or are dropped (out), and only the cells of the plane's columns are
 * written. */
#if defined(__AVX512F__)
#include <immintrin.h>

static inline void minigrad_planes_to_cells(const float *plane, ptrdiff_t plane_step, int count,
                                            ptrdiff_t rows, ptrdiff_t cols, float *cells,
                                            ptrdiff_t row_step)
{
    minigrad_lf r[16];
    for (ptrdiff_t y = 0; y < rows; y++)
        for (ptrdiff_t q = 0; q < cols; q += 16) {
            int w = cols - q < 16 ? (int)(cols - q) : 16;
            __mmask16 mask = (__mmask16)((1u << w) - 1);
            for (int i = 0; i < 16; i++)
                r[i] = i < count ? (minigrad_lf)_mm512_maskz_loadu_ps(
                                       mask, plane + i * plane_step + y * cols + q)
                                 : (minigrad_lf){0};
            minigrad_transpose16_rows(r);
            for (int c = 0; c < w; c++)
                *(minigrad_lf *)(cells + y * row_step + 16 * (q + c)) = r[c];
        }
}

/* ... and back: plane value = cell + shift, or += cell with ``add`` */
static inline void minigrad_cells_to_planes(const float *cells, ptrdiff_t row_step, float *plane,
                                            ptrdiff_t plane_step, int count, ptrdiff_t rows,
                                            ptrdiff_t cols, float shift, int add)
{
    minigrad_lf r[16];
    for (ptrdiff_t y = 0; y < rows; y++)
        for (ptrdiff_t q = 0; q < cols; q += 16) {
            int w = cols - q < 16 ? (int)(cols - q) : 16;
            __mmask16 mask = (__mmask16)((1u << w) - 1);
            for (int c = 0; c < 16; c++)
                r[c] = c < w ? *(const minigrad_lf *)(cells + y * row_step + 16 * (q + c))
                             : (minigrad_lf){0};
            minigrad_transpose16_rows(r);
            for (int i = 0; i < count; i++) {
                float *at = plane + i * plane_step + y * cols + q;
                __m512 v = (__m512)r[i];
                v = add ? _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, at))
                        : _mm512_add_ps(v, _mm512_set1_ps(shift));
                _mm512_mask_storeu_ps(at, mask, v);
            }
        }
}
#define MINIGRAD_TRANSPOSE_PLANES 1
#else
#define MINIGRAD_TRANSPOSE_PLANES 0
static inline void minigrad_planes_to_cells(const float *plane, ptrdiff_t plane_step, int count,
                                            ptrdiff_t rows, ptrdiff_t cols, float *cells,
                                            ptrdiff_t row_step) {}
static inline void minigrad_cells_to_planes(const float *cells, ptrdiff_t row_step, float *plane,
                                            ptrdiff_t plane_step, int count, ptrdiff_t rows,
                                            ptrdiff_t cols, float shift, int add) {}
#endif

#undef MINIGRAD_T16_STAGE
#endif
