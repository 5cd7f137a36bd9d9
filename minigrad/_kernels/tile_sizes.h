/* Register tile sizes of the direct convolution kernels (direct_conv.pyx), and the work from
 * which they take a second thread, chosen by the vector registers the compiler targets: a
 * tile's accumulators plus its loaded row and broadcast weight must fit the register file, or
 * the tile spills to the stack every step. AVX-512 has 32 registers of 16 floats; AVX2 has 16
 * of 8. */
#ifndef MINIGRAD_TILE_SIZES_H
#define MINIGRAD_TILE_SIZES_H

#if defined(__AVX512F__)
/* forward: 8 x 48 floats = 24 accumulators; weight gradient: 9 x 32 = 18 */
#define MINIGRAD_OB 8
#define MINIGRAD_XB 48
#define MINIGRAD_GO 32
#define MINIGRAD_TG 9
/* one input channel per weight-gradient tile */
#define MINIGRAD_GRAD_PAIRS 0
#else
/* forward: 4 x 24 floats = 12 accumulators; weight gradient: 2 channels x 3 taps x 16 = 12,
 * the pair tile of grad_tiles.h */
#define MINIGRAD_OB 4
#define MINIGRAD_XB 24
#define MINIGRAD_GO 16
#define MINIGRAD_TG 3
#define MINIGRAD_GRAD_PAIRS 1
#endif

/* below this many multiply-adds a convolution runs on one thread (batch-1 latency). Low,
 * because a batch-1 network must run most of its layers on two threads or none: the workers
 * spin only between loops close together, and one lone two-thread layer a pass pays for
 * waking a sleeping worker every time (docs/algorithms.md) */
#define MINIGRAD_PARALLEL_MIN_MACS (1 << 19)

/* a forward tile's positions come in three runs of XB / 3, one vector wide with AVX-512 and
 * AVX2 for float32 */
#define MINIGRAD_RUNS 3
#define MINIGRAD_RUN (MINIGRAD_XB / MINIGRAD_RUNS)

/* the pair tile's width (used with MINIGRAD_GRAD_PAIRS), and the other weight-gradient tile
 * widths (grad_tiles.h) a layer may use instead: with AVX-512 16 channels, with AVX2 24
 * (with AVX-512 the 24-wide tile's 256-bit vectors would do half the work per instruction of
 * the 32-wide tile's 512-bit ones) */
#define MINIGRAD_GO_PAIR 16
#if defined(__AVX512F__)
#define MINIGRAD_GO_16 16
#define MINIGRAD_GO_24 0
#else
#define MINIGRAD_GO_16 0
#define MINIGRAD_GO_24 24
#endif

#endif
