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

/* T, V: the element and its vector; LANES of them; M: the lane mask; K: the index vector (LANES
 * int lanes) and its K_* operations; EVEN: the permute's indices of the even inputs (of a
 * vector pair); CELLS: 2·lane as a K. */
#define MINIGRAD_MAX_2X2_ROW(NAME, T, V, LANES, M, MASKZ_LOAD, PERMUTE, CMP, MASK_MOV,         \
                             MASK_STORE, EVEN, ODD_STEP, CELLS, K, K_SET1, K_ADD, K_MASK_ADD,  \
                             K_MASK_STORE)                                                     \
static inline void NAME(const T *r0, const T *r1, Py_ssize_t count, int corner, int W, T *y,    \
                        int *idx)                                                              \
{                                                                                              \
    const __m512i even = EVEN, odd = ODD_STEP(even);                                           \
    const K cells = CELLS;                                                                     \
    Py_ssize_t o;                                                                              \
    for (o = 0; o < count; o += LANES) {                                                       \
        int n = count - o < LANES ? (int)(count - o) : LANES;                                  \
        /* the first n outputs; the first 2n inputs, in two vectors */                         \
        M out = (M)((1u << n) - 1);                                                            \
        M low = (M)((1u << (2 * n < LANES ? 2 * n : LANES)) - 1);                              \
        M high = (M)((1u << (2 * n > LANES ? 2 * n - LANES : 0)) - 1);                         \
        V a0 = MASKZ_LOAD(low, r0 + 2 * o), a1 = MASKZ_LOAD(high, r0 + 2 * o + LANES);         \
        V b0 = MASKZ_LOAD(low, r1 + 2 * o), b1 = MASKZ_LOAD(high, r1 + 2 * o + LANES);         \
        V v[4] = {PERMUTE(a0, even, a1), PERMUTE(a0, odd, a1), PERMUTE(b0, even, b1),          \
                  PERMUTE(b0, odd, b1)};                                                       \
        V m = v[0];                                                                            \
        K first = K_ADD(K_SET1(corner + 2 * (int)o), cells), k = first;                        \
        const int step[4] = {0, 1, W, W + 1};                                                  \
        int t;                                                                                 \
        for (t = 1; t < 4; t++) {                                                              \
            M take = CMP(v[t], m, _CMP_GT_OQ) | CMP(v[t], v[t], _CMP_UNORD_Q);                 \
            m = MASK_MOV(m, take, v[t]);                                                       \
            k = K_MASK_ADD(k, take, first, K_SET1(step[t]));                                   \
        }                                                                                      \
        MASK_STORE(y + o, out, m);                                                             \
        if (idx != NULL)                                                                       \
            K_MASK_STORE(idx + o, out, k);                                                     \
    }                                                                                          \
}

#define MINIGRAD_ADD_ONE_32(x) _mm512_add_epi32(x, _mm512_set1_epi32(1))
#define MINIGRAD_ADD_ONE_64(x) _mm512_add_epi64(x, _mm512_set1_epi64(1))
MINIGRAD_MAX_2X2_ROW(minigrad_max_2x2_f, float, __m512, 16, __mmask16, _mm512_maskz_loadu_ps,
                     _mm512_permutex2var_ps, _mm512_cmp_ps_mask, _mm512_mask_mov_ps,
                     _mm512_mask_storeu_ps,
                     _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0),
                     MINIGRAD_ADD_ONE_32, even, __m512i, _mm512_set1_epi32, _mm512_add_epi32,
                     _mm512_mask_add_epi32, _mm512_mask_storeu_epi32)
MINIGRAD_MAX_2X2_ROW(minigrad_max_2x2_d, double, __m512d, 8, __mmask8, _mm512_maskz_loadu_pd,
                     _mm512_permutex2var_pd, _mm512_cmp_pd_mask, _mm512_mask_mov_pd,
                     _mm512_mask_storeu_pd, _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0),
                     MINIGRAD_ADD_ONE_64, _mm256_set_epi32(14, 12, 10, 8, 6, 4, 2, 0), __m256i,
                     _mm256_set1_epi32, _mm256_add_epi32, _mm256_mask_add_epi32,
                     _mm256_mask_storeu_epi32)
#else
#define MINIGRAD_MAX_2X2 0
/* (not built: the scalar loop of pooling.pyx runs instead) */
static inline void minigrad_max_2x2_f(const float *r0, const float *r1, Py_ssize_t count,
                                      int corner, int W, float *y, int *idx) {}
static inline void minigrad_max_2x2_d(const double *r0, const double *r1, Py_ssize_t count,
                                      int corner, int W, double *y, int *idx) {}
#endif

#endif
