/* The 1-D transforms of Winograd F(4, 3) and F(2, 3) (winograd.pyx), and their column splits,
 * each applied to n consecutive tiles at once: entry j of every input row belongs to tile j,
 * so every loop is element-wise over j and vectorises. Written in C for ``restrict``: without
 * it GCC must check six inputs against six outputs for overlap and keeps the loops scalar.
 *
 * Lavin & Gray's matrices for the points 0, +-1, +-2, +-1/2:
 *   Bt = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
 *         [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
 *   At = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]
 * bt: o = Bt i (input patches); b: o (+)= B i, its adjoint (input gradient); at: o = At i
 * (outputs); a: o = A i, its adjoint (output gradient).
 *
 * F(2, 3), points 0, +-1 (rows i, outputs o, ``step`` apart):
 *   Bt = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
 *   At = [[1, 1, 1, 0], [0, 1, -1, -1]] */
#ifndef MINIGRAD_WINOGRAD_1D_H
#define MINIGRAD_WINOGRAD_1D_H

#include <stddef.h>
#include "vectors.h"

#define MINIGRAD_W4_ROWS6(T) const T *restrict i0, const T *restrict i1, const T *restrict i2, \
    const T *restrict i3, const T *restrict i4, const T *restrict i5
#define MINIGRAD_W4_OUTS6(T) T *restrict o0, T *restrict o1, T *restrict o2, T *restrict o3, \
    T *restrict o4, T *restrict o5

#define MINIGRAD_W4_FUNCTIONS(SUFFIX, T)                                                       \
static inline void minigrad_w4_bt_##SUFFIX(MINIGRAD_W4_ROWS6(T), MINIGRAD_W4_OUTS6(T),         \
                                           ptrdiff_t n)                                        \
{                                                                                              \
    for (ptrdiff_t j = 0; j < n; j++) {                                                        \
        T d0 = i0[j], d1 = i1[j], d2 = i2[j], d3 = i3[j], d4 = i4[j], d5 = i5[j];              \
        o0[j] = 4 * d0 - 5 * d2 + d4;                                                          \
        o1[j] = d3 + d4 - 4 * (d1 + d2);                                                       \
        o2[j] = d4 - d3 + 4 * (d1 - d2);                                                       \
        o3[j] = d4 - d2 + 2 * (d3 - d1);                                                       \
        o4[j] = d4 - d2 + 2 * (d1 - d3);                                                       \
        o5[j] = 4 * d1 - 5 * d3 + d5;                                                          \
    }                                                                                          \
}                                                                                              \
                                                                                               \
static inline void minigrad_w4_b_##SUFFIX(MINIGRAD_W4_ROWS6(T), MINIGRAD_W4_OUTS6(T),          \
                                          ptrdiff_t n, int accumulate)                         \
{                                                                                              \
    if (accumulate) {                                                                          \
        for (ptrdiff_t j = 0; j < n; j++) {                                                    \
            T t0 = i0[j], t1 = i1[j], t2 = i2[j], t3 = i3[j], t4 = i4[j], t5 = i5[j];          \
            o0[j] += 4 * t0;                                                                   \
            o1[j] += 4 * (t2 - t1 + t5) + 2 * (t4 - t3);                                       \
            o2[j] += -5 * t0 - 4 * (t1 + t2) - t3 - t4;                                        \
            o3[j] += t1 - t2 + 2 * (t3 - t4) - 5 * t5;                                         \
            o4[j] += t0 + t1 + t2 + t3 + t4;                                                   \
            o5[j] += t5;                                                                       \
        }                                                                                      \
    } else {                                                                                   \
        for (ptrdiff_t j = 0; j < n; j++) {                                                    \
            T t0 = i0[j], t1 = i1[j], t2 = i2[j], t3 = i3[j], t4 = i4[j], t5 = i5[j];          \
            o0[j] = 4 * t0;                                                                    \
            o1[j] = 4 * (t2 - t1 + t5) + 2 * (t4 - t3);                                        \
            o2[j] = -5 * t0 - 4 * (t1 + t2) - t3 - t4;                                         \
            o3[j] = t1 - t2 + 2 * (t3 - t4) - 5 * t5;                                          \
            o4[j] = t0 + t1 + t2 + t3 + t4;                                                    \
            o5[j] = t5;                                                                        \
        }                                                                                      \
    }                                                                                          \
}                                                                                              \
                                                                                               \
static inline void minigrad_w4_at_##SUFFIX(MINIGRAD_W4_ROWS6(T), T *restrict o0,               \
                                           T *restrict o1, T *restrict o2, T *restrict o3,     \
                                           ptrdiff_t n)                                        \
{                                                                                              \
    for (ptrdiff_t j = 0; j < n; j++) {                                                        \
        T m0 = i0[j], m1 = i1[j], m2 = i2[j], m3 = i3[j], m4 = i4[j], m5 = i5[j];              \
        T odd = m1 - m2, odd3 = m3 - m4, even = m1 + m2, even3 = m3 + m4;                      \
        o0[j] = m0 + even + even3;                                                             \
        o1[j] = odd + 2 * odd3;                                                                \
        o2[j] = even + 4 * even3;                                                              \
        o3[j] = odd + 8 * odd3 + m5;                                                           \
    }                                                                                          \
}                                                                                              \
                                                                                               \
static inline void minigrad_w4_a_##SUFFIX(const T *restrict i0, const T *restrict i1,          \
                                          const T *restrict i2, const T *restrict i3,          \
                                          MINIGRAD_W4_OUTS6(T), ptrdiff_t n)                   \
{                                                                                              \
    for (ptrdiff_t j = 0; j < n; j++) {                                                        \
        T y0 = i0[j], y1 = i1[j], y2 = i2[j], y3 = i3[j];                                      \
        T even = y0 + y2, odd = y1 + y3, even4 = y0 + 4 * y2, odd2 = 2 * y1 + 8 * y3;          \
        o0[j] = y0;                                                                            \
        o1[j] = even + odd;                                                                    \
        o2[j] = even - odd;                                                                    \
        o3[j] = even4 + odd2;                                                                  \
        o4[j] = even4 - odd2;                                                                  \
        o5[j] = y3;                                                                            \
    }                                                                                          \
}

/* The tiles' columns split by remainder mod m and joined back (m = 2 for F(2, 3) too):
 * p_k[j] = row[m j + k] and row[m j + k] = p_k[j] + shift, j < n (GCC vectorises both with
 * permutes). */
#define MINIGRAD_W_SPLIT_JOIN(SUFFIX, T)                                                       \
static inline void minigrad_w2_split_##SUFFIX(const T *restrict row, T *restrict p0,           \
                                              T *restrict p1, ptrdiff_t n)                     \
{                                                                                              \
    for (ptrdiff_t j = 0; j < n; j++) {                                                        \
        p0[j] = row[2 * j];                                                                    \
        p1[j] = row[2 * j + 1];                                                                \
    }                                                                                          \
}                                                                                              \
                                                                                               \
static inline void minigrad_w2_join_##SUFFIX(const T *restrict p0, const T *restrict p1,       \
                                             T *restrict row, ptrdiff_t n, T shift)            \
{                                                                                              \
    for (ptrdiff_t j = 0; j < n; j++) {                                                        \
        row[2 * j] = p0[j] + shift;                                                            \
        row[2 * j + 1] = p1[j] + shift;                                                        \
    }                                                                                          \
}                                                                                              \
                                                                                               \
static inline void minigrad_w4_split_##SUFFIX(const T *restrict row, T *restrict p0,           \
                                              T *restrict p1, T *restrict p2, T *restrict p3,  \
                                              ptrdiff_t n)                                     \
{                                                                                              \
    for (ptrdiff_t j = 0; j < n; j++) {                                                        \
        p0[j] = row[4 * j];                                                                    \
        p1[j] = row[4 * j + 1];                                                                \
        p2[j] = row[4 * j + 2];                                                                \
        p3[j] = row[4 * j + 3];                                                                \
    }                                                                                          \
}                                                                                              \
                                                                                               \
static inline void minigrad_w4_join_##SUFFIX(const T *restrict p0, const T *restrict p1,       \
                                             const T *restrict p2, const T *restrict p3,       \
                                             T *restrict row, ptrdiff_t n, T shift)            \
{                                                                                              \
    for (ptrdiff_t j = 0; j < n; j++) {                                                        \
        row[4 * j] = p0[j] + shift;                                                            \
        row[4 * j + 1] = p1[j] + shift;                                                        \
        row[4 * j + 2] = p2[j] + shift;                                                        \
        row[4 * j + 3] = p3[j] + shift;                                                        \
    }                                                                                          \
}

#define MINIGRAD_W2_FUNCTIONS(SUFFIX, T)                                                       \
static inline void minigrad_w2_bt_##SUFFIX(const T *restrict i, ptrdiff_t is, T *restrict o,   \
                                           ptrdiff_t os, ptrdiff_t n)                          \
{                                                                                              \
    for (ptrdiff_t j = 0; j < n; j++) {                                                        \
        T d0 = i[j], d1 = i[is + j], d2 = i[2 * is + j], d3 = i[3 * is + j];                   \
        o[j] = d0 - d2;                                                                        \
        o[os + j] = d1 + d2;                                                                   \
        o[2 * os + j] = d2 - d1;                                                               \
        o[3 * os + j] = d1 - d3;                                                               \
    }                                                                                          \
}                                                                                              \
                                                                                               \
static inline void minigrad_w2_b_##SUFFIX(const T *restrict i, ptrdiff_t is, T *restrict o,    \
                                          ptrdiff_t os, ptrdiff_t n, int accumulate)           \
{                                                                                              \
    for (ptrdiff_t j = 0; j < n; j++) {                                                        \
        T t0 = i[j], t1 = i[is + j], t2 = i[2 * is + j], t3 = i[3 * is + j];                   \
        T r0 = t0, r1 = t1 - t2 + t3, r2 = t1 + t2 - t0, r3 = -t3;                             \
        if (accumulate) {                                                                      \
            r0 += o[j]; r1 += o[os + j]; r2 += o[2 * os + j]; r3 += o[3 * os + j];             \
        }                                                                                      \
        o[j] = r0; o[os + j] = r1; o[2 * os + j] = r2; o[3 * os + j] = r3;                     \
    }                                                                                          \
}                                                                                              \
                                                                                               \
static inline void minigrad_w2_at_##SUFFIX(const T *restrict i, ptrdiff_t is, T *restrict o,   \
                                           ptrdiff_t os, ptrdiff_t n)                          \
{                                                                                              \
    for (ptrdiff_t j = 0; j < n; j++) {                                                        \
        T m0 = i[j], m1 = i[is + j], m2 = i[2 * is + j], m3 = i[3 * is + j];                   \
        o[j] = m0 + m1 + m2;                                                                   \
        o[os + j] = m1 - m2 - m3;                                                              \
    }                                                                                          \
}                                                                                              \
                                                                                               \
static inline void minigrad_w2_a_##SUFFIX(const T *restrict i, ptrdiff_t is, T *restrict o,    \
                                          ptrdiff_t os, ptrdiff_t n)                           \
{                                                                                              \
    for (ptrdiff_t j = 0; j < n; j++) {                                                        \
        T y0 = i[j], y1 = i[is + j];                                                           \
        o[j] = y0;                                                                             \
        o[os + j] = y0 + y1;                                                                   \
        o[2 * os + j] = y0 - y1;                                                               \
        o[3 * os + j] = -y1;                                                                   \
    }                                                                                          \
}

/* F(4, 5): the same eight points (0, +-1, +-2, +-1/2 and infinity; Bt is F(6, 3)'s), for a
 * 5×5 kernel in one piece. Float32 only, on whole vectors of 16 lanes (a lane group of
 * winograd.pyx's forward5_by_group), rows ``is`` and ``os`` floats apart:
 *   Bt = [[1, 0, -21/4, 0, 21/4, 0, -1, 0], [0, 1, 1, -17/4, -17/4, 1, 1, 0],
 *         [0, -1, 1, 17/4, -17/4, -1, 1, 0], [0, 1/2, 1/4, -5/2, -5/4, 2, 1, 0],
 *         [0, -1/2, 1/4, 5/2, -5/4, -2, 1, 0], [0, 2, 4, -5/2, -5, 1/2, 1, 0],
 *         [0, -2, 4, 5/2, -5, -1/2, 1, 0], [0, -1, 0, 21/4, 0, -21/4, 0, 1]]
 *   At = [[1, 1, 1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 1/2, -1/2, 0],
 *         [0, 1, 1, 4, 4, 1/4, 1/4, 0], [0, 1, -1, 8, -8, 1/8, -1/8, 1]]
 * (G, for the filters, is conv_winograd5.G.) */
static inline void minigrad_w45_bt(const float *i, ptrdiff_t is, float *o, ptrdiff_t os)
{
    minigrad_lf d0 = *(const minigrad_lf *)i, d1 = *(const minigrad_lf *)(i + is);
    minigrad_lf d2 = *(const minigrad_lf *)(i + 2 * is), d3 = *(const minigrad_lf *)(i + 3 * is);
    minigrad_lf d4 = *(const minigrad_lf *)(i + 4 * is), d5 = *(const minigrad_lf *)(i + 5 * is);
    minigrad_lf d6 = *(const minigrad_lf *)(i + 6 * is), d7 = *(const minigrad_lf *)(i + 7 * is);
    /* the even and odd parts of each pair of rows for the points +-x */
    minigrad_lf e1 = d2 + d6 - 4.25f * d4, o1 = d1 + d5 - 4.25f * d3;
    minigrad_lf e2 = 0.25f * d2 - 1.25f * d4 + d6, o2 = 0.5f * d1 - 2.5f * d3 + 2.0f * d5;
    minigrad_lf e3 = 4.0f * d2 - 5.0f * d4 + d6, o3 = 2.0f * d1 - 2.5f * d3 + 0.5f * d5;
    *(minigrad_lf *)o = d0 - d6 + 5.25f * (d4 - d2);
    *(minigrad_lf *)(o + os) = e1 + o1;
    *(minigrad_lf *)(o + 2 * os) = e1 - o1;
    *(minigrad_lf *)(o + 3 * os) = e2 + o2;
    *(minigrad_lf *)(o + 4 * os) = e2 - o2;
    *(minigrad_lf *)(o + 5 * os) = e3 + o3;
    *(minigrad_lf *)(o + 6 * os) = e3 - o3;
    *(minigrad_lf *)(o + 7 * os) = d7 - d1 + 5.25f * (d3 - d5);
}

static inline void minigrad_w45_at(const float *i, ptrdiff_t is, float *o, ptrdiff_t os)
{
    minigrad_lf m0 = *(const minigrad_lf *)i, m1 = *(const minigrad_lf *)(i + is);
    minigrad_lf m2 = *(const minigrad_lf *)(i + 2 * is), m3 = *(const minigrad_lf *)(i + 3 * is);
    minigrad_lf m4 = *(const minigrad_lf *)(i + 4 * is), m5 = *(const minigrad_lf *)(i + 5 * is);
    minigrad_lf m6 = *(const minigrad_lf *)(i + 6 * is), m7 = *(const minigrad_lf *)(i + 7 * is);
    minigrad_lf s1 = m1 + m2, d1 = m1 - m2, s2 = m3 + m4, d2 = m3 - m4, s3 = m5 + m6,
                d3 = m5 - m6;
    *(minigrad_lf *)o = m0 + s1 + s2 + s3;
    *(minigrad_lf *)(o + os) = d1 + 2.0f * d2 + 0.5f * d3;
    *(minigrad_lf *)(o + 2 * os) = s1 + 4.0f * s2 + 0.25f * s3;
    *(minigrad_lf *)(o + 3 * os) = d1 + 8.0f * d2 + 0.125f * d3 + m7;
}

/* the adjoint of minigrad_w45_at: o = A i, 4 rows in, 8 out (the output gradient's points) */
static inline void minigrad_w45_a(const float *i, ptrdiff_t is, float *o, ptrdiff_t os)
{
    minigrad_lf y0 = *(const minigrad_lf *)i, y1 = *(const minigrad_lf *)(i + is);
    minigrad_lf y2 = *(const minigrad_lf *)(i + 2 * is), y3 = *(const minigrad_lf *)(i + 3 * is);
    minigrad_lf e1 = y0 + y2, o1 = y1 + y3, e2 = y0 + 4.0f * y2, o2 = 2.0f * y1 + 8.0f * y3;
    minigrad_lf e3 = y0 + 0.25f * y2, o3 = 0.5f * y1 + 0.125f * y3;
    *(minigrad_lf *)o = y0;
    *(minigrad_lf *)(o + os) = e1 + o1;
    *(minigrad_lf *)(o + 2 * os) = e1 - o1;
    *(minigrad_lf *)(o + 3 * os) = e2 + o2;
    *(minigrad_lf *)(o + 4 * os) = e2 - o2;
    *(minigrad_lf *)(o + 5 * os) = e3 + o3;
    *(minigrad_lf *)(o + 6 * os) = e3 - o3;
    *(minigrad_lf *)(o + 7 * os) = y3;
}

MINIGRAD_W4_FUNCTIONS(f, float)
MINIGRAD_W4_FUNCTIONS(d, double)
MINIGRAD_W_SPLIT_JOIN(f, float)
MINIGRAD_W_SPLIT_JOIN(d, double)
MINIGRAD_W2_FUNCTIONS(f, float)
MINIGRAD_W2_FUNCTIONS(d, double)

#endif
