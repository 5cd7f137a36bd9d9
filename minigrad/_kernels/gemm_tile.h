/* The float32 matrix product of team_gemm.pyx for the small and skinny products of the
 * Winograd passes (tens to hundreds of rows and columns), where OpenBLAS's kernels for large
 * products run at half the core's peak or less.
 *
 * C (m × n) = A · B, or C += A · B: A read as a[i·sa_i + l·sa_l] and B as b[l·sb_l + j·sb_j]
 * (one of each pair of steps is 1: a matrix or its transpose, row-major). B is copied into
 * ``work`` in panels of NR columns, each row of a panel NR consecutive values (zeros past
 * n), so that a panel's rows lie in consecutive cache lines whatever B's layout; A is read
 * in place. The register tile is MR rows × NR columns (two 16-float vectors): each step
 * loads the panel's two vectors and broadcasts the MR values of A's column. With AVX-512
 * only (MINIGRAD_GEMM_TILE 0 otherwise: the caller keeps BLAS). Each value of C is summed in
 * the order of l, whatever the blocks: the result does not depend on how a caller splits
 * the columns. */
#ifndef MINIGRAD_GEMM_TILE_H
#define MINIGRAD_GEMM_TILE_H

#include <stddef.h>
#include <stdint.h>
#include "transpose16.h"
#include "vectors.h"

#if defined(__AVX512F__)
#define MINIGRAD_GEMM_TILE 1
#else
#define MINIGRAD_GEMM_TILE 0
#endif

#define MINIGRAD_GEMM_MR 8
#define MINIGRAD_GEMM_NR 32
#define MINIGRAD_GEMM_KC 256
#define MINIGRAD_GEMM_NC 512

/* floats of the ``work`` buffer minigrad_gemm takes: a packed block of B, and room to start
 * it on a cache line */
#define MINIGRAD_GEMM_WORK (MINIGRAD_GEMM_NC * MINIGRAD_GEMM_KC + 16)

/* columns [j0, j0 + NR) of B, row by row, into dst (NR·k values; zero columns past n) */
static inline void minigrad_gemm_pack_b(const float *b, ptrdiff_t sb_l, ptrdiff_t sb_j,
                                        ptrdiff_t n, ptrdiff_t k, ptrdiff_t j0, float *dst)
{
    ptrdiff_t cols = n - j0 < MINIGRAD_GEMM_NR ? n - j0 : MINIGRAD_GEMM_NR;
    if (sb_j == 1 && cols == MINIGRAD_GEMM_NR) {
        for (ptrdiff_t l = 0; l < k; l++) {
            const minigrad_lf *src = (const minigrad_lf *)(b + l * sb_l + j0);
            minigrad_lf *out = (minigrad_lf *)(dst + l * MINIGRAD_GEMM_NR);
            out[0] = src[0];
            out[1] = src[1];
        }
        return;
    }
    ptrdiff_t l0 = 0;
    if (sb_l == 1 && cols == MINIGRAD_GEMM_NR) {
        /* B transposed: its columns are rows in memory, turned by 16×16 transposes */
        for (; l0 + 16 <= k; l0 += 16)
            for (int h = 0; h < 2; h++) {
                const float *src[16];
                float *out[16];
                for (int i = 0; i < 16; i++) {
                    src[i] = b + (j0 + 16 * h + i) * sb_j + l0;
                    out[i] = dst + (l0 + i) * MINIGRAD_GEMM_NR + 16 * h;
                }
                minigrad_transpose16(src, out);
            }
    }
    /* the rest (or a last, narrow panel): column by column, each a contiguous run */
    for (ptrdiff_t l = l0; l < k; l++)
        for (ptrdiff_t j = cols; j < MINIGRAD_GEMM_NR; j++)
            dst[l * MINIGRAD_GEMM_NR + j] = 0;
    for (ptrdiff_t j = 0; j < cols; j++) {
        const float *src = b + (j0 + j) * sb_j;
        for (ptrdiff_t l = l0; l < k; l++)
            dst[l * MINIGRAD_GEMM_NR + j] = src[l * sb_l];
    }
}

/* One MR × NR tile of C summed over l < k: rows [0, rows) and columns [0, cols) of it
 * stored (or added, with ``accumulate``) at c; pb is B's packed panel, A's value (i, l) is
 * A_AT(i, l). */
#define MINIGRAD_GEMM_TILE_BODY(A_AT)                                                        \
    minigrad_lf sums[MINIGRAD_GEMM_MR][2];                                                   \
    for (int i = 0; i < MINIGRAD_GEMM_MR; i++)                                               \
        sums[i][0] = sums[i][1] = (minigrad_lf){0};                                          \
    for (ptrdiff_t l = 0; l < k; l++) {                                                      \
        minigrad_lf b0 = *(const minigrad_lf *)(pb + l * MINIGRAD_GEMM_NR);                  \
        minigrad_lf b1 = *(const minigrad_lf *)(pb + l * MINIGRAD_GEMM_NR + 16);             \
        _Pragma("GCC unroll 16")                                                             \
        for (int i = 0; i < MINIGRAD_GEMM_MR; i++) {                                         \
            minigrad_lf v = (A_AT) - (minigrad_lf){0};                                       \
            sums[i][0] += v * b0;                                                            \
            sums[i][1] += v * b1;                                                            \
        }                                                                                    \
    }                                                                                        \
    minigrad_gemm_store(sums, c, ldc, rows, cols, accumulate);

/* the tile's sums into C: whole rows of NR as vectors, a narrower panel value by value */
static inline void minigrad_gemm_store(minigrad_lf sums[MINIGRAD_GEMM_MR][2], float *c,
                                       ptrdiff_t ldc, ptrdiff_t rows, ptrdiff_t cols,
                                       int accumulate)
{
    if (cols == MINIGRAD_GEMM_NR) {
        for (ptrdiff_t i = 0; i < rows; i++) {
            minigrad_lf *row = (minigrad_lf *)(c + i * ldc);
            if (accumulate) {
                row[0] += sums[i][0];
                row[1] += sums[i][1];
            } else {
                row[0] = sums[i][0];
                row[1] = sums[i][1];
            }
        }
        return;
    }
    float result[MINIGRAD_GEMM_MR][MINIGRAD_GEMM_NR];
    for (int i = 0; i < MINIGRAD_GEMM_MR; i++) {
        *(minigrad_lf *)&result[i][0] = sums[i][0];
        *(minigrad_lf *)&result[i][16] = sums[i][1];
    }
    for (ptrdiff_t i = 0; i < rows; i++)
        for (ptrdiff_t j = 0; j < cols; j++)
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + result[i][j] : result[i][j];
}

/* A's block read in place, its columns ``sa`` apart, each MR consecutive values */
static inline void minigrad_gemm_tile_columns(const float *a, ptrdiff_t sa, const float *pb,
                                              ptrdiff_t k, float *c, ptrdiff_t ldc,
                                              ptrdiff_t rows, ptrdiff_t cols, int accumulate)
{
    MINIGRAD_GEMM_TILE_BODY(a[l * sa + i])
}

/* A's block read in place through a pointer per row, ``sa`` apart, its values ``step``
 * apart along the row (rows past m read row 0 again: their sums are not stored) */
#define MINIGRAD_GEMM_TILE_ROWS(NAME, STEP)                                                  \
static inline void NAME(const float *a, ptrdiff_t sa, ptrdiff_t step, const float *pb,       \
                        ptrdiff_t k, float *c, ptrdiff_t ldc, ptrdiff_t rows,                \
                        ptrdiff_t cols, int accumulate)                                      \
{                                                                                            \
    const float *row[MINIGRAD_GEMM_MR];                                                      \
    (void)step;                                                                              \
    for (int i = 0; i < MINIGRAD_GEMM_MR; i++)                                               \
        row[i] = a + (i < rows ? i : 0) * sa;                                                \
    MINIGRAD_GEMM_TILE_BODY(row[i][l * (STEP)])                                              \
}
/* row-major A (values 1 apart), and the last, short block of a transposed one */
MINIGRAD_GEMM_TILE_ROWS(minigrad_gemm_tile_rows, 1)
MINIGRAD_GEMM_TILE_ROWS(minigrad_gemm_tile_strided, step)

/* C (+)= A · B over one block of kc values of l and nc columns of C, B's panels ``step``
 * floats apart from ``panels``: each block of MR rows of A (in L1) passes over the panels,
 * storing its rows of C from left to right. A is read in place: by rows (row-major A), or by
 * columns of MR values (A transposed; a last, short block row by row). */
static inline void minigrad_gemm_panels(const float *a, ptrdiff_t sa_i, ptrdiff_t sa_l,
                                        const float *panels, ptrdiff_t step, float *c,
                                        ptrdiff_t ldc, ptrdiff_t m, ptrdiff_t nc, ptrdiff_t kc,
                                        int add)
{
    for (ptrdiff_t i0 = 0; i0 < m; i0 += MINIGRAD_GEMM_MR) {
        ptrdiff_t rows = m - i0 < MINIGRAD_GEMM_MR ? m - i0 : MINIGRAD_GEMM_MR;
        const float *at = a + i0 * sa_i;
        for (ptrdiff_t j0 = 0; j0 < nc; j0 += MINIGRAD_GEMM_NR) {
            ptrdiff_t cols = nc - j0 < MINIGRAD_GEMM_NR ? nc - j0 : MINIGRAD_GEMM_NR;
            const float *panel = panels + j0 / MINIGRAD_GEMM_NR * step;
            float *ct = c + i0 * ldc + j0;
            if (sa_l == 1)
                minigrad_gemm_tile_rows(at, sa_i, 1, panel, kc, ct, ldc, rows, cols, add);
            else if (rows == MINIGRAD_GEMM_MR)
                minigrad_gemm_tile_columns(at, sa_l, panel, kc, ct, ldc, rows, cols, add);
            else
                minigrad_gemm_tile_strided(at, sa_i, sa_l, panel, kc, ct, ldc, rows, cols,
                                           add);
        }
    }
}

/* C (+)= A · B over blocks of NC columns and KC values of l: B's block packed into ``work``
 * (its panels in L2), or, with ``work`` NULL, read where B already lies in panels (as
 * minigrad_gemm_packed describes), then multiplied (minigrad_gemm_panels). */
static inline void minigrad_gemm_blocks(const float *a, ptrdiff_t sa_i, ptrdiff_t sa_l,
                                        const float *b, ptrdiff_t sb_l, ptrdiff_t sb_j, float *c,
                                        ptrdiff_t ldc, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                        int accumulate, float *work)
{
    if (k == 0 && !accumulate)      /* an empty sum: zeros */
        for (ptrdiff_t i = 0; i < m; i++)
            for (ptrdiff_t j = 0; j < n; j++)
                c[i * ldc + j] = 0;
    for (ptrdiff_t jc = 0; jc < n; jc += MINIGRAD_GEMM_NC) {
        ptrdiff_t nc = n - jc < MINIGRAD_GEMM_NC ? n - jc : MINIGRAD_GEMM_NC;
        for (ptrdiff_t l0 = 0; l0 < k; l0 += MINIGRAD_GEMM_KC) {
            ptrdiff_t kc = k - l0 < MINIGRAD_GEMM_KC ? k - l0 : MINIGRAD_GEMM_KC;
            const float *panels = b + jc * k + l0 * MINIGRAD_GEMM_NR;
            ptrdiff_t step = MINIGRAD_GEMM_NR * k;
            if (work != NULL) {
                for (ptrdiff_t j0 = 0; j0 < nc; j0 += MINIGRAD_GEMM_NR)
                    minigrad_gemm_pack_b(b + l0 * sb_l, sb_l, sb_j, n, kc, jc + j0,
                                         work + j0 * kc);
                panels = work;
                step = MINIGRAD_GEMM_NR * kc;
            }
            minigrad_gemm_panels(a + l0 * sa_l, sa_i, sa_l, panels, step, c + jc, ldc, m, nc,
                                 kc, accumulate || l0 > 0);
        }
    }
}

/* C (+)= A · B, as described above; ``work`` holds MINIGRAD_GEMM_WORK floats. */
static inline void minigrad_gemm(const float *a, ptrdiff_t sa_i, ptrdiff_t sa_l,
                                 const float *b, ptrdiff_t sb_l, ptrdiff_t sb_j, float *c,
                                 ptrdiff_t ldc, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                 int accumulate, float *work)
{
    /* the tile loads the panels as whole vectors: off a cache line, every load is split */
    work = (float *)(((uintptr_t)work + 63) & ~(uintptr_t)63);
    minigrad_gemm_blocks(a, sa_i, sa_l, b, sb_l, sb_j, c, ldc, m, n, k, accumulate, work);
}

/* C (+)= A · B with B already in panels (as minigrad_gemm packs them, but over all k):
 * column j, row l of B at b[(j div NR)·NR·k + l·NR + j mod NR], every panel NR columns wide
 * (columns past n are read, not stored). For a caller that can write B so, rather than have
 * it copied. The sums run in the same order as minigrad_gemm's. */
static inline void minigrad_gemm_packed(const float *a, ptrdiff_t sa_i, ptrdiff_t sa_l,
                                        const float *b, float *c, ptrdiff_t ldc, ptrdiff_t m,
                                        ptrdiff_t n, ptrdiff_t k, int accumulate)
{
    minigrad_gemm_blocks(a, sa_i, sa_l, b, 0, 0, c, ldc, m, n, k, accumulate, NULL);
}

#endif
