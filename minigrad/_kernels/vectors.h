/* The GCC vector types the kernels' C tiles share (grad_tiles.h, max_row.h, lane_tile.h):
 * vectors that may sit at any element boundary (unaligned loads) and alias their element
 * type; 32 bytes, and the 64 of AVX-512. */
#ifndef MINIGRAD_VECTORS_H
#define MINIGRAD_VECTORS_H

typedef float minigrad_v8f __attribute__((vector_size(32), aligned(4), may_alias));
typedef double minigrad_v4d __attribute__((vector_size(32), aligned(8), may_alias));
typedef float minigrad_lf __attribute__((vector_size(64), aligned(4), may_alias));
typedef double minigrad_ld __attribute__((vector_size(64), aligned(8), may_alias));

#endif
