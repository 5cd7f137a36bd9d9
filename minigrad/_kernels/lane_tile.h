/* The lane tile of the direct convolution (direct_conv.pyx, conv_lanes): output channels in
 * the vector lanes, positions in the registers. Where the position tile of conv_tile.h puts
 * consecutive positions in a vector and so loses lanes on rows that are not a whole number of
 * vectors (14 or 7 outputs wide), this tile holds R whole rows of Q outputs each,
 * times two vectors of output channels (or one, for layers of 16); each step loads the weight
 * vectors and broadcasts the tile's R·Q input values.
 *
 * result[p][j] = sum_c sum_t weight[k(c, t) * LB + j]
 *                * grid[c * grid_length + shifts[t] + (p / Q) * grid_width + (p % Q) * S]
 * for the R·Q positions p and the LB = one or two vectors of output channels j, with cells S
 * = 1 or 2 apart along a row (a grid, or the input itself with a stride of 2), over the
 * products that read inside the plane: a two-row tile sums them tap by tap (each over every
 * channel), its weights packed tap by tap (k = t * channels + c), a one-row tile channel by
 * channel (k = c * taps + t). With AVX-512 only: its 32 registers hold the 28
 * accumulators of Q = 14 (or R = 2, Q = 7; 16 of Q = 8) and the two weights, or with one
 * vector the 28 of two rows of 14 and the weight. */
#ifndef MINIGRAD_LANE_TILE_H
#define MINIGRAD_LANE_TILE_H

/* the longest tap list of a tile: kernels of up to 8×8 taps */
#define MINIGRAD_LANE_MAX_TAPS 64

#if defined(__AVX512F__)
#define MINIGRAD_LANES 1
#else
#define MINIGRAD_LANES 0
#endif

#include "vectors.h"

/* MINIGRAD_ZEN: whether GCC tunes for AMD's Zen (-march=native picks it there); the rules
 * measured on both kinds of machine read it (direct_conv.ZEN). On Zen each vector's FMA loads
 * the input itself, as its broadcast operand ({1to16}): the empty asm keeps GCC from merging
 * the loads into one broadcast into a register, which ran slower there on rows of 8 and of 7
 * (Zen 4 splits a 512-bit FMA in two halves and has loads to spare). With two 512-bit FMAs a
 * cycle (Intel's server cores) the loads are the bottleneck: one broadcast serves both
 * vectors. */
#if defined(__tune_znver1__) || defined(__tune_znver2__) || defined(__tune_znver3__) \
    || defined(__tune_znver4__) || defined(__tune_znver5__)
#define MINIGRAD_ZEN 1
#define MINIGRAD_LANE_OWN_LOADS(at) __asm__ volatile("" : "+r"(at))
#else
#define MINIGRAD_ZEN 0
#define MINIGRAD_LANE_OWN_LOADS(at)
#endif

/* One step of the sums: tap t of channel c for the positions [FIRST, LAST), without each
 * row's first SKIP_FIRST or last SKIP_LAST columns (0, 1 or 2). The bounds are constants: the
 * loop unrolls (told to: GCC peels at most 16 iterations by itself, and the 28 of two rows of 14
 * left in a loop would keep the sums in memory) and the skipped positions vanish. */
#define MINIGRAD_LANE_STEP_AT(T, V, Q, VECS, FIRST, LAST, SKIP_FIRST, SKIP_LAST, WT)        \
    {                                                                                        \
        const T *g = gc + shifts[t];                                                         \
        V w[VECS];                                                                           \
        for (v = 0; v < (VECS); v++)                                                         \
            w[v] = *(const V *)((WT) + v * LANES);                                           \
        _Pragma("GCC unroll 32")                                                             \
        for (p = (FIRST); p < (LAST); p++) {                                                 \
            if (p % (Q) < (SKIP_FIRST) || p % (Q) >= (Q) - (SKIP_LAST))                     \
                continue;                                                                    \
            for (v = 0; v < (VECS); v++) {                                                   \
                const T *at = g + (p / (Q)) * grid_width + p % (Q) * STEP;                   \
                MINIGRAD_LANE_OWN_LOADS(at);                                                 \
                sums[p][v] += (*at - (V){0}) * w[v];                                         \
            }                                                                                \
        }                                                                                    \
    }

/* MINIGRAD_LANE_STEP_AT with channel c's weights packed channel by channel (wc: its taps'
 * blocks in a row), as the one-row tiles read them */
#define MINIGRAD_LANE_STEP(T, V, Q, VECS, FIRST, LAST, SKIP_FIRST, SKIP_LAST)               \
    MINIGRAD_LANE_STEP_AT(T, V, Q, VECS, FIRST, LAST, SKIP_FIRST, SKIP_LAST, wc + t * LB)

/* the kinds of columns a list's taps read (see below): every one, all but the first, all
 * but the last, all but the first two, all but the last two */
#define MINIGRAD_LANE_COLUMN_KINDS 5
#define MINIGRAD_LANE_LISTS (3 * MINIGRAD_LANE_COLUMN_KINDS)
#define MINIGRAD_LANE_SKIP_FIRST(COLUMNS) ((COLUMNS) == 1 ? 1 : (COLUMNS) == 3 ? 2 : 0)
#define MINIGRAD_LANE_SKIP_LAST(COLUMNS) ((COLUMNS) == 2 ? 1 : (COLUMNS) == 4 ? 2 : 0)

/* STEP (MINIGRAD_LANE_STEP, or MINIGRAD_LANE_TAP below) for each tap of list ROWS · 5 +
 * COLUMNS (see below) over the positions [FIRST, LAST). */
#define MINIGRAD_LANE_LIST(STEP, T, V, Q, VECS, ROWS, COLUMNS, FIRST, LAST)                  \
    for (k = 0; k < counts[(ROWS) * MINIGRAD_LANE_COLUMN_KINDS + (COLUMNS)]; k++) {          \
        t = taps_of[((ROWS) * MINIGRAD_LANE_COLUMN_KINDS + (COLUMNS)) * MINIGRAD_LANE_MAX_TAPS \
                    + k];                                                                    \
        STEP(T, V, Q, VECS, FIRST, LAST, MINIGRAD_LANE_SKIP_FIRST(COLUMNS),                  \
             MINIGRAD_LANE_SKIP_LAST(COLUMNS))                                               \
    }

/* the lists of the tile's rows ROWS (0, 1 or 2, below) over the positions [FIRST, LAST),
 * their columns' kinds from 0 to KINDS − 1 */
#define MINIGRAD_LANE_ROW_LISTS(STEP, T, V, Q, VECS, ROWS, KINDS, FIRST, LAST)               \
    {                                                                                        \
        MINIGRAD_LANE_LIST(STEP, T, V, Q, VECS, ROWS, 0, FIRST, LAST)                        \
        MINIGRAD_LANE_LIST(STEP, T, V, Q, VECS, ROWS, 1, FIRST, LAST)                        \
        MINIGRAD_LANE_LIST(STEP, T, V, Q, VECS, ROWS, 2, FIRST, LAST)                        \
        if ((KINDS) > 3) {                                                                   \
            MINIGRAD_LANE_LIST(STEP, T, V, Q, VECS, ROWS, 3, FIRST, LAST)                    \
            MINIGRAD_LANE_LIST(STEP, T, V, Q, VECS, ROWS, 4, FIRST, LAST)                    \
        }                                                                                    \
    }

/* MINIGRAD_LANE_STEP_AT for tap t of every channel in turn (the taps' loop outside the
 * channels'): one tap's steps differ only by a channel's strides, so the inner loop has no
 * branch but its own, where the channels' loop outside runs every list's short loop of taps
 * once per channel. Its weights are packed tap by tap (t·C + c), so that they stream in
 * order from the L2 (pack_weight's tap_major). */
#define MINIGRAD_LANE_TAP(T, V, Q, VECS, FIRST, LAST, SKIP_FIRST, SKIP_LAST)                \
    for (c = 0; c < channels; c++) {                                                         \
        const T *gc = grid + c * grid_length;                                                \
        MINIGRAD_LANE_STEP_AT(T, V, Q, VECS, FIRST, LAST, SKIP_FIRST, SKIP_LAST,             \
                              weight + (t * channels + c) * LB)                              \
    }

/* The taps come in fifteen lists of ``counts[l]`` taps each, MINIGRAD_LANE_MAX_TAPS apart
 * in ``taps_of``: list l = rows · 5 + columns holds the taps that read inside the plane
 * from every row of the tile (rows 0), only from its first row (1) or only from its second
 * (2), and from every column (columns 0), all but each row's first (1) or last (2), all but
 * its first two (3) or last two (4). The taps a row would read from padding rows only are
 * left out, and so are, per list, the first or last columns' products: they are zeros. A
 * tile is R rows of Q positions times VECS vectors of output channels. */
#define MINIGRAD_LANE_SUMS(NAME, T, V, R, Q, VECS, S)                                        \
static inline void NAME(const T *grid, Py_ssize_t grid_length, Py_ssize_t grid_width,        \
                        const T *weight, const Py_ssize_t *shifts, Py_ssize_t channels,      \
                        Py_ssize_t taps, const int *taps_of, const int *counts, T *result)   \
{                                                                                            \
    enum { LANES = 64 / sizeof(T), LB = (VECS) * LANES, P = (R) * (Q), STEP = (S) };         \
    V sums[P][VECS];                                                                         \
    Py_ssize_t c, t;                                                                         \
    int p, k, v;                                                                             \
    for (p = 0; p < P; p++)                                                                  \
        for (v = 0; v < (VECS); v++)                                                         \
            sums[p][v] = (V){0};                                                             \
    if ((R) == 2) {                                                                          \
        /* two rows: the taps outside the channels (MINIGRAD_LANE_TAP) */                    \
        MINIGRAD_LANE_ROW_LISTS(MINIGRAD_LANE_TAP, T, V, Q, VECS, 0, 5, 0, P)                \
        MINIGRAD_LANE_ROW_LISTS(MINIGRAD_LANE_TAP, T, V, Q, VECS, 1, 5, 0, Q)                \
        MINIGRAD_LANE_ROW_LISTS(MINIGRAD_LANE_TAP, T, V, Q, VECS, 2, 5, Q, P)                \
    } else if (counts[3] + counts[4] == 0)                                                   \
        /* one row (14 or 8 wide, two vectors): the channels outside, whose taps read       \
         * neighbouring cells (the taps outside measured even there, docs/algorithms.md);   \
         * the lists that skip two columns only where a kernel has taps for them (each list  \
         * costs a test per channel) */                                                      \
        for (c = 0; c < channels; c++) {                                                     \
            const T *gc = grid + c * grid_length, *wc = weight + c * taps * LB;              \
            MINIGRAD_LANE_ROW_LISTS(MINIGRAD_LANE_STEP, T, V, Q, VECS, 0, 3, 0, P)           \
        }                                                                                    \
    else                                                                                     \
        for (c = 0; c < channels; c++) {                                                     \
            const T *gc = grid + c * grid_length, *wc = weight + c * taps * LB;              \
            MINIGRAD_LANE_ROW_LISTS(MINIGRAD_LANE_STEP, T, V, Q, VECS, 0, 5, 0, P)           \
        }                                                                                    \
    for (p = 0; p < P; p++)                                                                  \
        for (v = 0; v < (VECS); v++)                                                         \
            *(V *)(result + p * LB + v * LANES) = sums[p][v];                                \
}

/* the sums in float32 (NAME_f) and float64 (NAME_d) */
#define MINIGRAD_LANE_SUMS_BOTH(NAME, R, Q, VECS, S)                                         \
    MINIGRAD_LANE_SUMS(NAME##_f, float, minigrad_lf, R, Q, VECS, S)                          \
    MINIGRAD_LANE_SUMS(NAME##_d, double, minigrad_ld, R, Q, VECS, S)

/* Two vectors of output channels: a row of 14 outputs; two rows of 7; a row of 8; two rows
 * of 4. One vector (16 float32 output channels): two rows of 14, of 7, of 8 or of 4. Each
 * reading its row's cells one apart (a grid) or two (the input itself, stride 2: _s2). */
#define MINIGRAD_LANE_KINDS(SUFFIX, S)                                                       \
    MINIGRAD_LANE_SUMS_BOTH(minigrad_lanes_14##SUFFIX, 1, 14, 2, S)                          \
    MINIGRAD_LANE_SUMS_BOTH(minigrad_lanes_7##SUFFIX, 2, 7, 2, S)                            \
    MINIGRAD_LANE_SUMS_BOTH(minigrad_lanes_8##SUFFIX, 1, 8, 2, S)                            \
    MINIGRAD_LANE_SUMS_BOTH(minigrad_lanes_4##SUFFIX, 2, 4, 2, S)                            \
    MINIGRAD_LANE_SUMS_BOTH(minigrad_lanes1_14##SUFFIX, 2, 14, 1, S)                         \
    MINIGRAD_LANE_SUMS_BOTH(minigrad_lanes1_7##SUFFIX, 2, 7, 1, S)                           \
    MINIGRAD_LANE_SUMS_BOTH(minigrad_lanes1_8##SUFFIX, 2, 8, 1, S)                           \
    MINIGRAD_LANE_SUMS_BOTH(minigrad_lanes1_4##SUFFIX, 2, 4, 1, S)
MINIGRAD_LANE_KINDS(, 1)
MINIGRAD_LANE_KINDS(_s2, 2)

/* one kind of tile, with its cells ``step`` (1 or 2) apart */
#define MINIGRAD_LANE_CALL(KIND, SUFFIX)                                                     \
    {                                                                                        \
        if (step == 2)                                                                       \
            KIND##_s2_##SUFFIX(grid, grid_length, grid_width, weight, shifts, channels, taps, \
                               taps_of, counts, result);                                     \
        else                                                                                 \
            KIND##_##SUFFIX(grid, grid_length, grid_width, weight, shifts, channels, taps,   \
                            taps_of, counts, result);                                        \
    }

/* the tile for outputs ``width`` wide (4, 7, 8 or 14), ``vectors`` vectors of channels and
 * cells ``step`` apart along a row */
#define MINIGRAD_LANE_TILE(NAME, T, SUFFIX)                                                  \
static inline void NAME(int width, int vectors, int step, const T *grid,                     \
                        Py_ssize_t grid_length, Py_ssize_t grid_width, const T *weight,      \
                        const Py_ssize_t *shifts, Py_ssize_t channels, Py_ssize_t taps,      \
                        const int *taps_of, const int *counts, T *result)                    \
{                                                                                            \
    if (vectors == 1) {                                                                      \
        if (width == 7)                                                                      \
            MINIGRAD_LANE_CALL(minigrad_lanes1_7, SUFFIX)                                    \
        else if (width == 8)                                                                 \
            MINIGRAD_LANE_CALL(minigrad_lanes1_8, SUFFIX)                                    \
        else if (width == 4)                                                                 \
            MINIGRAD_LANE_CALL(minigrad_lanes1_4, SUFFIX)                                    \
        else                                                                                 \
            MINIGRAD_LANE_CALL(minigrad_lanes1_14, SUFFIX)                                   \
    } else if (width == 7)                                                                   \
        MINIGRAD_LANE_CALL(minigrad_lanes_7, SUFFIX)                                         \
    else if (width == 8)                                                                     \
        MINIGRAD_LANE_CALL(minigrad_lanes_8, SUFFIX)                                         \
    else if (width == 4)                                                                     \
        MINIGRAD_LANE_CALL(minigrad_lanes_4, SUFFIX)                                         \
    else                                                                                     \
        MINIGRAD_LANE_CALL(minigrad_lanes_14, SUFFIX)                                        \
}

MINIGRAD_LANE_TILE(minigrad_lanes_f, float, f)
MINIGRAD_LANE_TILE(minigrad_lanes_d, double, d)

#endif
