/* One output row of max pooling from the phase planes (pooling.pyx, _max_rows), a vector of
 * outputs at a time with every tap folded in registers, in GCC vector types:
 *
 *   y[o] = max over taps t of src[shifts[t] + o], for o < count, taps in row-major order;
 *   idx[o] = corner + o * sw + offsets[t] of the winning tap t (idx NULL: values only),
 *
 * where a tap wins when its value is greater than the maximum so far (the first of equal
 * values wins) or NaN (NaN propagates): PyTorch's rule. The maximum starts at -inf and the
 * index at what idx holds on entry (the window's first in-bounds cell, kept when no cell
 * beats -inf). Folding the taps in registers writes each output once, where a pass per tap
 * over a row buffer loads and stores every output at every tap. */
#ifndef MINIGRAD_MAX_ROW_H
#define MINIGRAD_MAX_ROW_H

#include <math.h>

#include "vectors.h"

/* the cells a row may read past its last output (a vector's worth, for rows shorter than
 * one) */
#define MINIGRAD_MAX_ROW_SLACK 8

/* the comparison masks and index vectors beside minigrad_v8f and minigrad_v4d */
typedef int minigrad_mi8 __attribute__((vector_size(32), aligned(4), may_alias));
typedef long long minigrad_ml __attribute__((vector_size(32), aligned(8), may_alias));
typedef int minigrad_mi4 __attribute__((vector_size(16), aligned(4), may_alias));

/* V: the value vector; M: its comparison mask; I: the index vector (as many int lanes).
 * FOLD: outputs [o, o + LANES) into y_out and k_out (NULL: values only), the indices starting
 * from k_in. ROW: a row of count outputs, the last vector overlapping the one before it when
 * LANES does not divide count (its outputs are computed twice, to the same values), or on a
 * buffer when count < LANES; src must then hold LANES - 1 readable cells past the last. */
#define MINIGRAD_MAX_ROW(NAME, T, V, M, I, LANES)                                           \
static inline void NAME##_fold(const T *src, const Py_ssize_t *shifts, const int *offsets,  \
                               Py_ssize_t taps, Py_ssize_t o, int corner, int sw,           \
                               const int *k_in, T *y_out, int *k_out)                       \
{                                                                                            \
    Py_ssize_t t;                                                                            \
    int lane;                                                                                \
    V m = (V){0} - (T)INFINITY;                                                              \
    I k = {0}, cell;                                                                         \
    if (k_out != NULL)                                                                       \
        k = *(const I *)k_in;                                                                \
    for (lane = 0; lane < LANES; lane++)                                                     \
        cell[lane] = corner + ((int)o + lane) * sw;                                          \
    for (t = 0; t < taps; t++) {                                                             \
        V v = *(const V *)(src + shifts[t] + o);                                             \
        M take = (v > m) | (v != v);                                                         \
        I take_i = __builtin_convertvector(take, I);                                         \
        m = (V)(((M)v & take) | ((M)m & ~take));                                             \
        k = ((cell + offsets[t]) & take_i) | (k & ~take_i);                                  \
    }                                                                                        \
    *(V *)y_out = m;                                                                         \
    if (k_out != NULL)                                                                       \
        *(I *)k_out = k;                                                                     \
}                                                                                            \
                                                                                             \
static inline void NAME(const T *src, const Py_ssize_t *shifts, const int *offsets,          \
                        Py_ssize_t taps, Py_ssize_t count, int corner, int sw, T *y,         \
                        int *idx)                                                            \
{                                                                                            \
    Py_ssize_t o;                                                                            \
    T y_buf[LANES];                                                                          \
    int k_buf[LANES];                                                                        \
    if (count >= LANES) {                                                                    \
        for (o = 0; o + LANES <= count; o += LANES)                                          \
            NAME##_fold(src, shifts, offsets, taps, o, corner, sw,                           \
                        idx != NULL ? idx + o : NULL, y + o, idx != NULL ? idx + o : NULL);  \
        if (o < count) {                                                                     \
            o = count - LANES;                                                               \
            NAME##_fold(src, shifts, offsets, taps, o, corner, sw,                           \
                        idx != NULL ? idx + o : NULL, y + o, idx != NULL ? idx + o : NULL);  \
        }                                                                                    \
        return;                                                                              \
    }                                                                                        \
    for (o = 0; o < LANES; o++)                                                              \
        k_buf[o] = idx != NULL && o < count ? idx[o] : 0;                                    \
    NAME##_fold(src, shifts, offsets, taps, 0, corner, sw, k_buf, y_buf,                     \
                idx != NULL ? k_buf : NULL);                                                 \
    for (o = 0; o < count; o++) {                                                            \
        y[o] = y_buf[o];                                                                     \
        if (idx != NULL)                                                                     \
            idx[o] = k_buf[o];                                                               \
    }                                                                                        \
}

MINIGRAD_MAX_ROW(minigrad_max_row_f, float, minigrad_v8f, minigrad_mi8, minigrad_mi8, 8)
MINIGRAD_MAX_ROW(minigrad_max_row_d, double, minigrad_v4d, minigrad_ml, minigrad_mi4, 4)

/* The 2×2, stride-2 window inside the input (pooling.pyx, _max_2x2_row): one output row,
 *
 *   y[o] = max of r0[2o], r0[2o + 1], r1[2o], r1[2o + 1], by the tap rule above in that order;
 *   idx[o] = the winner's cell, corner + 2o (+ 1, + W, + W + 1) (idx NULL: values only),
 *
 * for o < count, 16 float32 (8 float64) outputs a vector: each row's 2·16 inputs in two
 * loads, split into even and odd columns by a permute; the last vector's loads and stores
 * masked, so rows of any length (pooled 28×28 and 14×14 maps have rows of 14 and 7, which
 * a compiler's vector loop leaves to scalar code) stay in vectors. With AVX-512 only. */
#if defined(__AVX512F__) && defined(__AVX512VL__)
#include <immintrin.h>
#define MINIGRAD_MAX_2X2 1

static inline void minigrad_max_2x2_f(const float *r0, const float *r1, Py_ssize_t count,
                                      int corner, int W, float *y, int *idx)
{
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16,
                                          14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    Py_ssize_t o;
    for (o = 0; o < count; o += 16) {
        int n = count - o < 16 ? (int)(count - o) : 16;
        __mmask16 out = (__mmask16)(n == 16 ? 0xFFFF : (1u << n) - 1);
        __mmask16 low = (__mmask16)(2 * n >= 16 ? 0xFFFF : (1u << (2 * n)) - 1);
        __mmask16 high = (__mmask16)(2 * n > 16 ? (1u << (2 * n - 16)) - 1 : 0);
        __m512 a0 = _mm512_maskz_loadu_ps(low, r0 + 2 * o);
        __m512 a1 = _mm512_maskz_loadu_ps(high, r0 + 2 * o + 16);
        __m512 b0 = _mm512_maskz_loadu_ps(low, r1 + 2 * o);
        __m512 b1 = _mm512_maskz_loadu_ps(high, r1 + 2 * o + 16);
        __m512 v[4] = {_mm512_permutex2var_ps(a0, even, a1), _mm512_permutex2var_ps(a0, odd, a1),
                       _mm512_permutex2var_ps(b0, even, b1), _mm512_permutex2var_ps(b0, odd, b1)};
        __m512 m = v[0];
        __m512i first = _mm512_add_epi32(_mm512_set1_epi32(corner + 2 * (int)o), even);
        __m512i k = first;
        const int step[4] = {0, 1, W, W + 1};
        int t;
        for (t = 1; t < 4; t++) {
            __mmask16 take = _mm512_cmp_ps_mask(v[t], m, _CMP_GT_OQ)
                             | _mm512_cmp_ps_mask(v[t], v[t], _CMP_UNORD_Q);
            m = _mm512_mask_mov_ps(m, take, v[t]);
            k = _mm512_mask_add_epi32(k, take, first, _mm512_set1_epi32(step[t]));
        }
        _mm512_mask_storeu_ps(y + o, out, m);
        if (idx != NULL)
            _mm512_mask_storeu_epi32(idx + o, out, k);
    }
}

static inline void minigrad_max_2x2_d(const double *r0, const double *r1, Py_ssize_t count,
                                      int corner, int W, double *y, int *idx)
{
    const __m512i even = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi64(even, _mm512_set1_epi64(1));
    const __m256i cells = _mm256_set_epi32(14, 12, 10, 8, 6, 4, 2, 0);
    Py_ssize_t o;
    for (o = 0; o < count; o += 8) {
        int n = count - o < 8 ? (int)(count - o) : 8;
        __mmask8 out = (__mmask8)(n == 8 ? 0xFF : (1u << n) - 1);
        __mmask8 low = (__mmask8)(2 * n >= 8 ? 0xFF : (1u << (2 * n)) - 1);
        __mmask8 high = (__mmask8)(2 * n > 8 ? (1u << (2 * n - 8)) - 1 : 0);
        __m512d a0 = _mm512_maskz_loadu_pd(low, r0 + 2 * o);
        __m512d a1 = _mm512_maskz_loadu_pd(high, r0 + 2 * o + 8);
        __m512d b0 = _mm512_maskz_loadu_pd(low, r1 + 2 * o);
        __m512d b1 = _mm512_maskz_loadu_pd(high, r1 + 2 * o + 8);
        __m512d v[4] = {_mm512_permutex2var_pd(a0, even, a1), _mm512_permutex2var_pd(a0, odd, a1),
                        _mm512_permutex2var_pd(b0, even, b1), _mm512_permutex2var_pd(b0, odd, b1)};
        __m512d m = v[0];
        __m256i first = _mm256_add_epi32(_mm256_set1_epi32(corner + 2 * (int)o), cells);
        __m256i k = first;
        const int step[4] = {0, 1, W, W + 1};
        int t;
        for (t = 1; t < 4; t++) {
            __mmask8 take = _mm512_cmp_pd_mask(v[t], m, _CMP_GT_OQ)
                            | _mm512_cmp_pd_mask(v[t], v[t], _CMP_UNORD_Q);
            m = _mm512_mask_mov_pd(m, take, v[t]);
            k = _mm256_mask_add_epi32(k, take, first, _mm256_set1_epi32(step[t]));
        }
        _mm512_mask_storeu_pd(y + o, out, m);
        if (idx != NULL)
            _mm256_mask_storeu_epi32(idx + o, out, k);
    }
}
#else
#define MINIGRAD_MAX_2X2 0
/* (not built: the scalar loop of pooling.pyx runs instead) */
static inline void minigrad_max_2x2_f(const float *r0, const float *r1, Py_ssize_t count,
                                      int corner, int W, float *y, int *idx) {}
static inline void minigrad_max_2x2_d(const double *r0, const double *r1, Py_ssize_t count,
                                      int corner, int W, double *y, int *idx) {}
#endif

#endif
