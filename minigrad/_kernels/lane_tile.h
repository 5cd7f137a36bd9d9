/* The lane tile of the direct convolution (direct_conv.pyx, conv_lanes): output channels in
 * the vector lanes, positions in the registers. Where the position tile of conv_tile.h puts
 * consecutive positions in a vector and so loses lanes on rows that are not a whole number of
 * vectors (14 or 7 outputs wide), this tile holds R whole rows of Q outputs each,
 * times two vectors of output channels; each step loads the two weight vectors and
 * broadcasts the tile's R·Q input values.
 *
 * result[p][j] = sum_c sum_t weight[(c * taps + t) * LB + j]
 *                * grid[c * grid_length + shifts[t] + (p / Q) * grid_width + p % Q]
 * for the R·Q positions p and the LB = two vectors of output channels j. With AVX-512 only:
 * its 32 registers hold the 28 accumulators of Q = 14 (or R = 2, Q = 7) and the two weights. */
#ifndef MINIGRAD_LANE_TILE_H
#define MINIGRAD_LANE_TILE_H

#if defined(__AVX512F__)
#define MINIGRAD_LANES 1
#else
#define MINIGRAD_LANES 0
#endif

typedef float minigrad_lf __attribute__((vector_size(64), aligned(4), may_alias));
typedef double minigrad_ld __attribute__((vector_size(64), aligned(8), may_alias));

#define MINIGRAD_LANE_SUMS(NAME, T, V, R, Q)                                                 \
static inline void NAME(const T *grid, Py_ssize_t grid_length, Py_ssize_t grid_width,        \
                        const T *weight, const Py_ssize_t *shifts, Py_ssize_t channels,      \
                        Py_ssize_t taps, T *result)                                          \
{                                                                                            \
    enum { LANES = 64 / sizeof(T), LB = 2 * LANES, P = (R) * (Q) };                          \
    V sums[P][2];                                                                            \
    Py_ssize_t c, t;                                                                         \
    int p;                                                                                   \
    for (p = 0; p < P; p++) {                                                                \
        sums[p][0] = (V){0};                                                                 \
        sums[p][1] = (V){0};                                                                 \
    }                                                                                        \
    for (c = 0; c < channels; c++)                                                           \
        for (t = 0; t < taps; t++) {                                                         \
            const T *g = grid + c * grid_length + shifts[t];                                 \
            V w0 = *(const V *)(weight + (c * taps + t) * LB);                               \
            V w1 = *(const V *)(weight + (c * taps + t) * LB + LANES);                       \
            for (p = 0; p < P; p++) {                                                        \
                V x = (V){0} + g[(p / (Q)) * grid_width + p % (Q)];                          \
                sums[p][0] += x * w0;                                                        \
                sums[p][1] += x * w1;                                                        \
            }                                                                                \
        }                                                                                    \
    for (p = 0; p < P; p++) {                                                                \
        *(V *)(result + p * LB) = sums[p][0];                                                \
        *(V *)(result + p * LB + LANES) = sums[p][1];                                        \
    }                                                                                        \
}

/* a row of 14 outputs; two rows of 7 */
MINIGRAD_LANE_SUMS(minigrad_lanes_14_f, float, minigrad_lf, 1, 14)
MINIGRAD_LANE_SUMS(minigrad_lanes_14_d, double, minigrad_ld, 1, 14)
MINIGRAD_LANE_SUMS(minigrad_lanes_7_f, float, minigrad_lf, 2, 7)
MINIGRAD_LANE_SUMS(minigrad_lanes_7_d, double, minigrad_ld, 2, 7)

/* the tile of two rows of 7 (``two_rows``) or of a row of 14 */
#define MINIGRAD_LANE_TILE(NAME, T, SUFFIX)                                                  \
static inline void NAME(int two_rows, const T *grid, Py_ssize_t grid_length,                 \
                        Py_ssize_t grid_width, const T *weight, const Py_ssize_t *shifts,     \
                        Py_ssize_t channels, Py_ssize_t taps, T *result)                     \
{                                                                                            \
    if (two_rows)                                                                            \
        minigrad_lanes_7_##SUFFIX(grid, grid_length, grid_width, weight, shifts, channels,   \
                                  taps, result);                                             \
    else                                                                                     \
        minigrad_lanes_14_##SUFFIX(grid, grid_length, grid_width, weight, shifts, channels,  \
                                   taps, result);                                            \
}

MINIGRAD_LANE_TILE(minigrad_lanes_f, float, f)
MINIGRAD_LANE_TILE(minigrad_lanes_d, double, d)

#endif
