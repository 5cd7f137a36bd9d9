/* The 32-byte GCC vector types the kernels' C tiles share (grad_tiles.h, max_row.h): vectors
 * that may sit at any element boundary (unaligned loads) and alias their element type. */
#ifndef MINIGRAD_VECTORS_H
#define MINIGRAD_VECTORS_H

typedef float minigrad_v8f __attribute__((vector_size(32), aligned(4), may_alias));
typedef double minigrad_v4d __attribute__((vector_size(32), aligned(8), may_alias));

#endif
