/* The forward register tile's sums in GCC vector types (direct_conv.pyx, _conv_tile): the same
 * sums as plain loops over the runs' RUN positions compiled to much slower code, as the
 * weight-gradient tile's short loops did (grad_tiles.h; docs/algorithms.md has the figures).
 *
 * result[o * XB + s * RUN + x] = sum_c sum_t weight[(c * taps + t) * OB + o]
 *                                 * run_s[c * grid_length + shifts[t] + x]
 * for OB output channels o and the RUNS runs s (run_0, run_1, run_2) of RUN positions x,
 * over the taps first_tap <= t < last_tap of the taps (the others read only padding). */
#ifndef MINIGRAD_CONV_TILE_H
#define MINIGRAD_CONV_TILE_H

#include "tile_sizes.h"

#if defined(__AVX512F__)
#define MINIGRAD_VECTOR_BYTES 64
#else
#define MINIGRAD_VECTOR_BYTES 32
#endif

/* vectors that may sit at any element boundary (unaligned loads) */
typedef float minigrad_vf __attribute__((vector_size(MINIGRAD_VECTOR_BYTES), aligned(4),
                                         may_alias));
typedef double minigrad_vd __attribute__((vector_size(MINIGRAD_VECTOR_BYTES), aligned(8),
                                          may_alias));

/* The sums of one tile into the registers ``sums`` (declared by the caller). */
#define MINIGRAD_CONV_ACCUMULATE(T, V)                                                       \
    enum { LANES = MINIGRAD_VECTOR_BYTES / sizeof(T), K = MINIGRAD_RUN / LANES };            \
    V sums[MINIGRAD_OB][MINIGRAD_RUNS][K];                                                   \
    const T *runs[MINIGRAD_RUNS] = {run_0, run_1, run_2};                                    \
    Py_ssize_t c, t;                                                                         \
    int o, s, k;                                                                             \
    for (o = 0; o < MINIGRAD_OB; o++)                                                        \
        for (s = 0; s < MINIGRAD_RUNS; s++)                                                  \
            for (k = 0; k < K; k++)                                                          \
                sums[o][s][k] = (V){0};                                                      \
    for (c = 0; c < channels; c++)                                                           \
        for (t = first_tap; t < last_tap; t++) {                                             \
            Py_ssize_t at = c * grid_length + shifts[t];                                     \
            const T *w = weight + (c * taps + t) * MINIGRAD_OB;                              \
            V x[MINIGRAD_RUNS][K];                                                           \
            for (s = 0; s < MINIGRAD_RUNS; s++)                                              \
                for (k = 0; k < K; k++)                                                      \
                    x[s][k] = *(const V *)(runs[s] + at + k * LANES);                        \
            for (o = 0; o < MINIGRAD_OB; o++)                                                \
                for (s = 0; s < MINIGRAD_RUNS; s++)                                          \
                    for (k = 0; k < K; k++)                                                  \
                        sums[o][s][k] += w[o] * x[s][k];                                     \
        }

#define MINIGRAD_CONV_SUMS(NAME, T, V)                                                       \
static inline void NAME(const T *run_0, const T *run_1, const T *run_2,                      \
                        Py_ssize_t grid_length, const T *weight, const Py_ssize_t *shifts,   \
                        Py_ssize_t channels, Py_ssize_t taps, Py_ssize_t first_tap,          \
                        Py_ssize_t last_tap, T *result)                                      \
{                                                                                            \
    MINIGRAD_CONV_ACCUMULATE(T, V)                                                           \
    for (o = 0; o < MINIGRAD_OB; o++)                                                        \
        for (s = 0; s < MINIGRAD_RUNS; s++)                                                  \
            for (k = 0; k < K; k++)                                                          \
                *(V *)(result + o * MINIGRAD_XB + s * MINIGRAD_RUN + k * LANES) =            \
                    sums[o][s][k];                                                           \
}

MINIGRAD_CONV_SUMS(minigrad_conv_sums_f, float, minigrad_vf)
MINIGRAD_CONV_SUMS(minigrad_conv_sums_d, double, minigrad_vd)

/* dst[i] = src[i] + offset for i < n: a row segment of a tile's sums stored. Segments of
 * any length (a run that crosses into the next output row ends in two): with AVX-512, whole
 * vectors and one masked vector for the rest, where a loop of variable length ended in up
 * to 15 scalar stores. */
#if defined(__AVX512F__)
#include <immintrin.h>
#define MINIGRAD_SEGMENT(NAME, T, LANES, MASK, SET1, LOAD, MASKZ_LOAD, STORE, MASK_STORE, ADD) \
static inline void NAME(T *dst, const T *src, Py_ssize_t n, T offset)                        \
{                                                                                            \
    Py_ssize_t i = 0;                                                                        \
    for (; i + (LANES) <= n; i += (LANES))                                                   \
        STORE(dst + i, ADD(LOAD(src + i), SET1(offset)));                                    \
    if (i < n) {                                                                             \
        MASK m = (MASK)((1u << (n - i)) - 1);                                                \
        MASK_STORE(dst + i, m, ADD(MASKZ_LOAD(m, src + i), SET1(offset)));                   \
    }                                                                                        \
}
MINIGRAD_SEGMENT(minigrad_segment_f, float, 16, __mmask16, _mm512_set1_ps, _mm512_loadu_ps,
                 _mm512_maskz_loadu_ps, _mm512_storeu_ps, _mm512_mask_storeu_ps, _mm512_add_ps)
MINIGRAD_SEGMENT(minigrad_segment_d, double, 8, __mmask8, _mm512_set1_pd, _mm512_loadu_pd,
                 _mm512_maskz_loadu_pd, _mm512_storeu_pd, _mm512_mask_storeu_pd, _mm512_add_pd)
#else
#define MINIGRAD_SEGMENT(NAME, T)                                                            \
static inline void NAME(T *dst, const T *src, Py_ssize_t n, T offset)                        \
{                                                                                            \
    Py_ssize_t i;                                                                            \
    for (i = 0; i < n; i++)                                                                  \
        dst[i] = src[i] + offset;                                                            \
}
MINIGRAD_SEGMENT(minigrad_segment_f, float)
MINIGRAD_SEGMENT(minigrad_segment_d, double)
#endif

/* The sums of MINIGRAD_CONV_SUMS stored straight from the registers (AVX-512): run s's
 * positions [first[j], first[j] + count[j]) for its segments j = 2s, 2s + 1 (count 0: none)
 * go to out[o * plane_stride + dst[j] + i] for i < count[j], plus bias[o] (0 without), for
 * the out_rows <= OB output planes o. Each segment is one masked store per vector, at dst[j]
 * − first[j]: where a tile stored its sums in a buffer that each segment read back, a
 * layer of few channels spent as long storing as summing. */
#define MINIGRAD_STORED_PARAMS(T)                                                            \
    const T *run_0, const T *run_1, const T *run_2, Py_ssize_t grid_length,                  \
    const T *weight, const Py_ssize_t *shifts, Py_ssize_t channels, Py_ssize_t taps,         \
    Py_ssize_t first_tap, Py_ssize_t last_tap, T *out, Py_ssize_t out_rows,                  \
    Py_ssize_t plane_stride, const T *bias, const Py_ssize_t *dst, const int *first,         \
    const int *count
#if defined(__AVX512F__)
#define MINIGRAD_DIRECT_STORES 1
#define MINIGRAD_CONV_SUMS_STORED(NAME, T, V, MASK, MASK_STORE, CAST)                        \
static inline void NAME(MINIGRAD_STORED_PARAMS(T))                                           \
{                                                                                            \
    MINIGRAD_CONV_ACCUMULATE(T, V)                                                           \
    /* every segment's masks and start, once: then the stores have no branch (a store        \
     * whose mask is empty writes nothing) */                                                \
    MASK masks[2 * MINIGRAD_RUNS][K];                                                        \
    Py_ssize_t starts[2 * MINIGRAD_RUNS];                                                    \
    int j;                                                                                   \
    for (j = 0; j < 2 * MINIGRAD_RUNS; j++) {                                                \
        unsigned int lanes = count[j] ? ((1u << count[j]) - 1u) << first[j] : 0u;            \
        starts[j] = count[j] ? dst[j] - first[j] : 0;                                        \
        for (k = 0; k < K; k++)                                                              \
            masks[j][k] = (MASK)((lanes >> (k * LANES)) & ((1u << LANES) - 1u));             \
    }                                                                                        \
    _Pragma("GCC unroll 8")                                                                  \
    for (o = 0; o < MINIGRAD_OB; o++) {                                                      \
        if (o >= out_rows)                                                                   \
            break;                                                                           \
        T add = bias != NULL ? bias[o] : (T)0;                                               \
        T *plane = out + o * plane_stride;                                                   \
        for (s = 0; s < MINIGRAD_RUNS; s++)                                                  \
            for (j = 2 * s; j < 2 * s + 2; j++)                                              \
                for (k = 0; k < K; k++)                                                      \
                    MASK_STORE(plane + starts[j] + k * LANES, masks[j][k],                   \
                               CAST(sums[o][s][k] + add));                                   \
    }                                                                                        \
}
MINIGRAD_CONV_SUMS_STORED(minigrad_conv_sums_stored_f, float, minigrad_vf, __mmask16,
                          _mm512_mask_storeu_ps, (__m512))
MINIGRAD_CONV_SUMS_STORED(minigrad_conv_sums_stored_d, double, minigrad_vd, __mmask8,
                          _mm512_mask_storeu_pd, (__m512d))
#else
#define MINIGRAD_DIRECT_STORES 0
/* never called without AVX-512 (direct_conv.pyx tests MINIGRAD_DIRECT_STORES) */
#define MINIGRAD_CONV_SUMS_STORED(NAME, T)                                                   \
static inline void NAME(MINIGRAD_STORED_PARAMS(T)) {}
MINIGRAD_CONV_SUMS_STORED(minigrad_conv_sums_stored_f, float)
MINIGRAD_CONV_SUMS_STORED(minigrad_conv_sums_stored_d, double)
#endif

#endif
