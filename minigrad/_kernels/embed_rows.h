/* The rows of one plane laid into its grid (direct_conv.pyx, embed): each row of ``width``
 * values followed by ``gap`` zeros, but for the last row, in vector loads and stores. A
 * library call per row (a copy, then a fill) cost more than the copy on the short rows of
 * small maps. */
#ifndef MINIGRAD_EMBED_ROWS_H
#define MINIGRAD_EMBED_ROWS_H

#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#define MINIGRAD_EMBED_ROWS(NAME, T, LANES, MASK, MASKZ_LOAD, LOAD, STORE, MASK_STORE,     \
                            SETZERO)                                                         \
static inline void NAME(T *dst, const T *src, Py_ssize_t rows, Py_ssize_t width,             \
                        Py_ssize_t src_row, Py_ssize_t gap)                                  \
{                                                                                            \
    Py_ssize_t r, i, end;                                                                    \
    for (r = 0; r < rows; r++, dst += width + gap, src += src_row) {                         \
        for (i = 0; i + (LANES) <= width; i += (LANES))                                      \
            STORE(dst + i, LOAD(src + i));                                                   \
        if (i == width && gap <= (LANES) && width >= (LANES) && r < rows - 1) {              \
            /* a whole vector of zeros for the gap: the next row's stores overwrite the */   \
            /* rest (rows of whole vectors, the common small maps) */                        \
            STORE(dst + i, SETZERO());                                                       \
            continue;                                                                        \
        }                                                                                    \
        /* the row's rest and its gap: masked loads read nothing past the row */             \
        end = width + (r < rows - 1 ? gap : 0);                                              \
        for (; i < end; i += (LANES)) {                                                      \
            Py_ssize_t valid = width - i < 0 ? 0 : (width - i < (LANES) ? width - i : (LANES)); \
            Py_ssize_t count = end - i < (LANES) ? end - i : (LANES);                        \
            MASK_STORE(dst + i, (MASK)((1u << count) - 1),                                   \
                       MASKZ_LOAD((MASK)((1u << valid) - 1), src + i));                      \
        }                                                                                    \
    }                                                                                        \
}
MINIGRAD_EMBED_ROWS(minigrad_embed_rows_f, float, 16, __mmask16, _mm512_maskz_loadu_ps,
                    _mm512_loadu_ps, _mm512_storeu_ps, _mm512_mask_storeu_ps,
                    _mm512_setzero_ps)
MINIGRAD_EMBED_ROWS(minigrad_embed_rows_d, double, 8, __mmask8, _mm512_maskz_loadu_pd,
                    _mm512_loadu_pd, _mm512_storeu_pd, _mm512_mask_storeu_pd,
                    _mm512_setzero_pd)
#else
#define MINIGRAD_EMBED_ROWS(NAME, T)                                                         \
static inline void NAME(T *dst, const T *src, Py_ssize_t rows, Py_ssize_t width,             \
                        Py_ssize_t src_row, Py_ssize_t gap)                                  \
{                                                                                            \
    Py_ssize_t r;                                                                            \
    for (r = 0; r < rows; r++, dst += width + gap, src += src_row) {                         \
        memcpy(dst, src, width * sizeof(T));                                                 \
        if (r < rows - 1)                                                                    \
            memset(dst + width, 0, gap * sizeof(T));                                         \
    }                                                                                        \
}
MINIGRAD_EMBED_ROWS(minigrad_embed_rows_f, float)
MINIGRAD_EMBED_ROWS(minigrad_embed_rows_d, double)
#endif

#endif
