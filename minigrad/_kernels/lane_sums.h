/* The sums of batch normalisation's passes (normalization.pyx) in GCC vector types: each run's
 * values go into LANES = 16 double lanes, lane k taking the values at i = k mod 16 (the tail's
 * in the first lanes), converted from float32 a vector at a time. Written as Cython loops
 * over the 16 lanes, GCC kept them scalar.
 *
 *   add:      lanes[k] += a[i]
 *   products: lanes[k] += (a[i] - shift_a) * (b[i] - shift_b)
 *   both:     sums[k] += a[i] and dots[k] += a[i] * (b[i] - shift_b), one pass */
#ifndef MINIGRAD_LANE_SUMS_H
#define MINIGRAD_LANE_SUMS_H

#include "vectors.h"

#define MINIGRAD_LANE_SUMS 16

/* the 8 values at p as 8 doubles */
static inline minigrad_ld minigrad_widen_f(const float *p)
{
    return __builtin_convertvector(*(const minigrad_v8f *)p, minigrad_ld);
}
static inline minigrad_ld minigrad_widen_d(const double *p) { return *(const minigrad_ld *)p; }

#define MINIGRAD_LANE_SUM_FUNCTIONS(SUFFIX, T)                                               \
static inline void minigrad_lanes_add_##SUFFIX(double *lanes, const T *a, Py_ssize_t length)  \
{                                                                                            \
    minigrad_ld s0 = *(minigrad_ld *)lanes, s1 = *(minigrad_ld *)(lanes + 8);                \
    Py_ssize_t i = 0, k;                                                                     \
    for (; i + 16 <= length; i += 16) {                                                      \
        s0 += minigrad_widen_##SUFFIX(a + i);                                                \
        s1 += minigrad_widen_##SUFFIX(a + i + 8);                                            \
    }                                                                                        \
    *(minigrad_ld *)lanes = s0;                                                              \
    *(minigrad_ld *)(lanes + 8) = s1;                                                        \
    for (k = 0; i + k < length; k++)                                                         \
        lanes[k] += a[i + k];                                                                \
}                                                                                            \
                                                                                             \
static inline void minigrad_lanes_products_##SUFFIX(double *lanes, const T *a, const T *b,    \
                                                    Py_ssize_t length, double shift_a,       \
                                                    double shift_b)                          \
{                                                                                            \
    minigrad_ld s0 = *(minigrad_ld *)lanes, s1 = *(minigrad_ld *)(lanes + 8);                \
    Py_ssize_t i = 0, k;                                                                     \
    for (; i + 16 <= length; i += 16) {                                                      \
        s0 += (minigrad_widen_##SUFFIX(a + i) - shift_a)                                     \
              * (minigrad_widen_##SUFFIX(b + i) - shift_b);                                  \
        s1 += (minigrad_widen_##SUFFIX(a + i + 8) - shift_a)                                 \
              * (minigrad_widen_##SUFFIX(b + i + 8) - shift_b);                              \
    }                                                                                        \
    *(minigrad_ld *)lanes = s0;                                                              \
    *(minigrad_ld *)(lanes + 8) = s1;                                                        \
    for (k = 0; i + k < length; k++)                                                         \
        lanes[k] += ((double)a[i + k] - shift_a) * ((double)b[i + k] - shift_b);             \
}                                                                                            \
                                                                                             \
static inline void minigrad_lanes_both_##SUFFIX(double *sums, double *dots, const T *a,       \
                                                const T *b, Py_ssize_t length,               \
                                                double shift_b)                              \
{                                                                                            \
    minigrad_ld s0 = *(minigrad_ld *)sums, s1 = *(minigrad_ld *)(sums + 8);                  \
    minigrad_ld d0 = *(minigrad_ld *)dots, d1 = *(minigrad_ld *)(dots + 8);                  \
    Py_ssize_t i = 0, k;                                                                     \
    for (; i + 16 <= length; i += 16) {                                                      \
        minigrad_ld a0 = minigrad_widen_##SUFFIX(a + i), a1 = minigrad_widen_##SUFFIX(a + i + 8); \
        s0 += a0;                                                                            \
        s1 += a1;                                                                            \
        d0 += a0 * (minigrad_widen_##SUFFIX(b + i) - shift_b);                               \
        d1 += a1 * (minigrad_widen_##SUFFIX(b + i + 8) - shift_b);                           \
    }                                                                                        \
    *(minigrad_ld *)sums = s0;                                                               \
    *(minigrad_ld *)(sums + 8) = s1;                                                         \
    *(minigrad_ld *)dots = d0;                                                               \
    *(minigrad_ld *)(dots + 8) = d1;                                                         \
    for (k = 0; i + k < length; k++) {                                                       \
        sums[k] += a[i + k];                                                                 \
        dots[k] += (double)a[i + k] * ((double)b[i + k] - shift_b);                          \
    }                                                                                        \
}

MINIGRAD_LANE_SUM_FUNCTIONS(f, float)
MINIGRAD_LANE_SUM_FUNCTIONS(d, double)

#endif
