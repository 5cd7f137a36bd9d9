/* The lane transforms of winograd_strided.pyx: every value is a group of 16 lanes (one per
 * channel of the group), kept in a GCC vector, so that each step of F(4, 2)'s transforms is a
 * vector operation whatever the tile grid. A group of n < 16 lanes loads zeros into the
 * others and stores only its n. Both float (one AVX-512 vector) and double (two). */
#ifndef MINIGRAD_WINOGRAD_STRIDED_H
#define MINIGRAD_WINOGRAD_STRIDED_H

#include <stddef.h>
#include <string.h>

#define MINIGRAD_S2_M 4
#define MINIGRAD_S2_ALPHA 5
#define MINIGRAD_S2_LANES 16

typedef float minigrad_s2_vf __attribute__((vector_size(64), aligned(4), may_alias));
typedef double minigrad_s2_vd __attribute__((vector_size(128), aligned(8), may_alias));

#define MINIGRAD_S2_KERNELS(T, V, S)                                                          \
static inline V minigrad_s2_load_##S(const T *src, ptrdiff_t n)                               \
{                                                                                             \
    if (n == MINIGRAD_S2_LANES)                                                               \
        return *(const V *)src;                                                               \
    T t[MINIGRAD_S2_LANES] = {0};                                                             \
    memcpy(t, src, n * sizeof(T));                                                            \
    return *(V *)t;                                                                           \
}                                                                                             \
                                                                                              \
static inline void minigrad_s2_store_##S(T *dst, V v, ptrdiff_t n)                            \
{                                                                                             \
    if (n == MINIGRAD_S2_LANES) {                                                             \
        *(V *)dst = v;                                                                        \
        return;                                                                               \
    }                                                                                         \
    T t[MINIGRAD_S2_LANES];                                                                   \
    *(V *)t = v;                                                                              \
    memcpy(dst, t, n * sizeof(T));                                                            \
}                                                                                             \
                                                                                              \
/* The column points of one row of padded cells: E, cell 2j + 1 to e_out + j·unit; O, tile   \
 * t's α points Σ_k Bᵀ[q, k]·cell 2(M·t + k) to o_out + q·o_xi + t·unit. */                  \
static inline void minigrad_s2_cols_in_##S(const T *row, T *e_out, T *o_out, ptrdiff_t unit,  \
                                           ptrdiff_t o_xi, ptrdiff_t tiles_w, const T *bt,    \
                                           ptrdiff_t n)                                       \
{                                                                                             \
    const V *cell = (const V *)row;                                                           \
    for (ptrdiff_t j = 0; j < MINIGRAD_S2_M * tiles_w; j++)                                   \
        minigrad_s2_store_##S(e_out + j * unit, cell[2 * j + 1], n);                          \
    for (ptrdiff_t t = 0; t < tiles_w; t++) {                                                 \
        const V *d = cell + 2 * MINIGRAD_S2_M * t;                                            \
        for (int q = 0; q < MINIGRAD_S2_ALPHA; q++) {                                         \
            const T *b = bt + q * MINIGRAD_S2_ALPHA;                                          \
            V acc = b[0] * d[0] + b[1] * d[2] + b[2] * d[4] + b[3] * d[6] + b[4] * d[8];      \
            minigrad_s2_store_##S(o_out + q * o_xi + t * unit, acc, n);                       \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* The adjoint: one row of padded cells (2M·Tw + 1) from its column points' gradients. */     \
static inline void minigrad_s2_cols_in_grad_##S(T *row, const T *e_in, const T *o_in,         \
                                                ptrdiff_t unit, ptrdiff_t o_xi,               \
                                                ptrdiff_t tiles_w, const T *bt, ptrdiff_t n)  \
{                                                                                             \
    V *cell = (V *)row;                                                                       \
    memset(row, 0, (2 * MINIGRAD_S2_M * tiles_w + 1) * sizeof(V));                            \
    for (ptrdiff_t j = 0; j < MINIGRAD_S2_M * tiles_w; j++)                                   \
        cell[2 * j + 1] = minigrad_s2_load_##S(e_in + j * unit, n);                           \
    for (ptrdiff_t t = 0; t < tiles_w; t++) {                                                 \
        V *d = cell + 2 * MINIGRAD_S2_M * t;                                                  \
        for (int q = 0; q < MINIGRAD_S2_ALPHA; q++) {                                         \
            const T *b = bt + q * MINIGRAD_S2_ALPHA;                                          \
            V g = minigrad_s2_load_##S(o_in + q * o_xi + t * unit, n);                        \
            d[0] += b[0] * g;                                                                 \
            d[2] += b[1] * g;                                                                 \
            d[4] += b[2] * g;                                                                 \
            d[6] += b[3] * g;                                                                 \
            d[8] += b[4] * g;                                                                 \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* One row of M·Tw outputs from its column points: E, e_in + j·unit; plus O,                  \
 * Σ_q Aᵀ[k, q]·(o_in + q·o_xi + t·unit) at output M·t + k. */                                \
static inline void minigrad_s2_cols_out_##S(T *row, const T *e_in, const T *o_in,             \
                                            ptrdiff_t unit, ptrdiff_t o_xi, ptrdiff_t tiles_w, \
                                            const T *at, ptrdiff_t n)                         \
{                                                                                             \
    V *out = (V *)row;                                                                        \
    for (ptrdiff_t j = 0; j < MINIGRAD_S2_M * tiles_w; j++)                                   \
        out[j] = minigrad_s2_load_##S(e_in + j * unit, n);                                    \
    for (ptrdiff_t t = 0; t < tiles_w; t++) {                                                 \
        V m[MINIGRAD_S2_ALPHA];                                                               \
        for (int q = 0; q < MINIGRAD_S2_ALPHA; q++)                                           \
            m[q] = minigrad_s2_load_##S(o_in + q * o_xi + t * unit, n);                       \
        for (int k = 0; k < MINIGRAD_S2_M; k++) {                                             \
            const T *a = at + k * MINIGRAD_S2_ALPHA;                                          \
            out[MINIGRAD_S2_M * t + k] += a[0] * m[0] + a[1] * m[1] + a[2] * m[2]             \
                                          + a[3] * m[3] + a[4] * m[4];                        \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* The adjoint: the column points' gradients of one row of output gradients. */               \
static inline void minigrad_s2_cols_out_grad_##S(const T *row, T *e_out, T *o_out,            \
                                                 ptrdiff_t unit, ptrdiff_t o_xi,              \
                                                 ptrdiff_t tiles_w, const T *at, ptrdiff_t n) \
{                                                                                             \
    const V *out = (const V *)row;                                                            \
    for (ptrdiff_t j = 0; j < MINIGRAD_S2_M * tiles_w; j++)                                   \
        minigrad_s2_store_##S(e_out + j * unit, out[j], n);                                   \
    for (ptrdiff_t t = 0; t < tiles_w; t++) {                                                 \
        const V *g = out + MINIGRAD_S2_M * t;                                                 \
        for (int q = 0; q < MINIGRAD_S2_ALPHA; q++) {                                         \
            V acc = at[q] * g[0] + at[MINIGRAD_S2_ALPHA + q] * g[1]                           \
                    + at[2 * MINIGRAD_S2_ALPHA + q] * g[2]                                    \
                    + at[3 * MINIGRAD_S2_ALPHA + q] * g[3];                                   \
            minigrad_s2_store_##S(o_out + q * o_xi + t * unit, acc, n);                       \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* dst row i (+)= Σ_k mat[i, k]·src row k, `cells` lane groups per row, i < m_out, k < m_in   \
 * (mat m_out × m_in, or with `transpose` its transpose, stored m_in × m_out); each cell's   \
 * sum in a register, over the nonzero coefficients only. */                                 \
static inline void minigrad_s2_rows_##S(const T *src, ptrdiff_t src_step, T *dst,             \
                                        ptrdiff_t dst_step, ptrdiff_t cells, const T *mat,    \
                                        int m_out, int m_in, int transpose, int add)         \
{                                                                                             \
    for (int i = 0; i < m_out; i++) {                                                         \
        T c[MINIGRAD_S2_ALPHA];                                                               \
        const V *s[MINIGRAD_S2_ALPHA];                                                        \
        int terms = 0;                                                                        \
        for (int k = 0; k < m_in; k++) {                                                      \
            T coefficient = transpose ? mat[k * m_out + i] : mat[i * m_in + k];               \
            if (coefficient != 0) {                                                           \
                c[terms] = coefficient;                                                       \
                s[terms++] = (const V *)(src + k * src_step);                                 \
            }                                                                                 \
        }                                                                                     \
        V *d = (V *)(dst + i * dst_step);                                                     \
        for (ptrdiff_t j = 0; j < cells; j++) {                                               \
            V acc = add ? d[j] : (V){0};                                                      \
            for (int k = 0; k < terms; k++)                                                   \
                acc += c[k] * s[k][j];                                                        \
            d[j] = acc;                                                                       \
        }                                                                                     \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* The filters' points: u[ξ·u_step + l] = Σ_k t[ξ·9 + k]·w[l·9 + k] for the n filters of 3×3   \
 * taps at w (9 each), ξ < points. */                                                         \
static inline void minigrad_s2_filters_##S(const T *w, ptrdiff_t n, T *u, ptrdiff_t u_step,   \
                                           const T *t, int points)                           \
{                                                                                             \
    V g[9] = {0};                                                                             \
    for (ptrdiff_t l = 0; l < n; l++)                                                         \
        for (int k = 0; k < 9; k++)                                                           \
            g[k][l] = w[l * 9 + k];                                                           \
    for (int xi = 0; xi < points; xi++) {                                                     \
        const T *c = t + xi * 9;                                                              \
        V acc = c[0] * g[0];                                                                  \
        for (int k = 1; k < 9; k++)                                                           \
            if (c[k] != 0)                                                                    \
                acc += c[k] * g[k];                                                           \
        minigrad_s2_store_##S(u + xi * u_step, acc, n);                                       \
    }                                                                                         \
}                                                                                             \
                                                                                              \
/* The adjoint: gw[l·9 + k] = Σ_ξ t[ξ·9 + k]·gu[ξ·u_step + l]. */                             \
static inline void minigrad_s2_filters_grad_##S(const T *gu, ptrdiff_t u_step, ptrdiff_t n,   \
                                                T *gw, const T *t, int points)               \
{                                                                                             \
    V g[9] = {0};                                                                             \
    for (int xi = 0; xi < points; xi++) {                                                     \
        const T *c = t + xi * 9;                                                              \
        V v = minigrad_s2_load_##S(gu + xi * u_step, n);                                      \
        for (int k = 0; k < 9; k++)                                                           \
            if (c[k] != 0)                                                                    \
                g[k] += c[k] * v;                                                             \
    }                                                                                         \
    for (ptrdiff_t l = 0; l < n; l++)                                                         \
        for (int k = 0; k < 9; k++)                                                           \
            gw[l * 9 + k] = g[k][l];                                                          \
}

MINIGRAD_S2_KERNELS(float, minigrad_s2_vf, f)
MINIGRAD_S2_KERNELS(double, minigrad_s2_vd, d)

#undef MINIGRAD_S2_KERNELS
#endif
