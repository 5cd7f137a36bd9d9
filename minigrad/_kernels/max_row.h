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

#endif
