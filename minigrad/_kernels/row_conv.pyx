# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The stride-1 forward of a convolution whose outputs each sum few products (float32,
AVX-512 only): a network's first layer, of one to three input channels.

The tile (``row_tile.h``) is 8 output channels × 32 outputs of one row. It reads x in place
(no grid: a tap's rows outside the plane are skipped, its columns outside masked out of the
loads), sums every product of an output in its register and stores each vector once. A work
item is one output row of one image and block of 8 output channels, its tiles side by side;
each output belongs to one item, so the sums do not depend on the thread count.
"""
from cython.parallel cimport prange

from ._parallel cimport check_threads

cdef extern from "row_tile.h" nogil:
    enum:
        BUILT "MINIGRAD_ROW_TILE"
        OUT "MINIGRAD_ROW_OUT"
        POSITIONS "MINIGRAD_ROW_POSITIONS"
        LANES "MINIGRAD_ROW_LANES"
        MAX_KW "MINIGRAD_ROW_MAX_KW"
    void _row_tile "minigrad_row_tile" (const float* x, Py_ssize_t channels, Py_ssize_t height,
                                        Py_ssize_t width, const float* weight,
                                        Py_ssize_t filter, Py_ssize_t kh, Py_ssize_t kw,
                                        Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t top,
                                        Py_ssize_t left, const Py_ssize_t* rows,
                                        const Py_ssize_t* cols, Py_ssize_t out_h,
                                        Py_ssize_t out_w, const float* bias, float* out,
                                        Py_ssize_t out_plane)

#: Whether this build has the tile (AVX-512); without it ``conv`` raises.
TILE = bool(BUILT)
#: Output channels per tile (``conv`` takes a multiple), outputs per tile, widest kernel row.
ROW_OUT = OUT
ROW_POSITIONS = POSITIONS
ROW_MAX_KW = MAX_KW


def conv(const float[:, :, :, ::1] x, const float[:, :, :, ::1] weight,
         const float[::1] bias, float[:, :, :, ::1] out, Py_ssize_t top, Py_ssize_t left,
         Py_ssize_t dh, Py_ssize_t dw, int num_threads):
    """out[n, o, r, col] = bias[o] + Σ_c Σ_i Σ_j weight[o, c, i, j] ·
    x[n, c, r + i·dh − top, col + j·dw − left], x's cells outside its planes 0: a stride-1
    convolution of x (N, C, H, W) with weight (O, C, kh, kw), O a multiple of 8 and kw at most
    16, into out (N, O, Ho, Wo) of any size. ``bias`` (O,) or empty."""
    cdef Py_ssize_t n_images = x.shape[0], channels = x.shape[1]
    cdef Py_ssize_t height = x.shape[2], width = x.shape[3]
    cdef Py_ssize_t out_channels = weight.shape[0], kh = weight.shape[2], kw = weight.shape[3]
    cdef Py_ssize_t out_h = out.shape[2], out_w = out.shape[3]
    if not BUILT:
        raise RuntimeError("row_conv.conv: this build has no AVX-512 tile")
    if (weight.shape[1] != channels or out.shape[0] != n_images
            or out.shape[1] != out_channels or out_channels % OUT
            or (bias.shape[0] and bias.shape[0] != out_channels)
            or kh < 1 or kw < 1 or kw > MAX_KW):
        raise ValueError(f"row_conv.conv: inconsistent shapes x ({n_images}, {channels}, "
                         f"{height}, {width}), weight ({out_channels}, {weight.shape[1]}, "
                         f"{kh}, {kw}), bias ({bias.shape[0]},), out ({out.shape[0]}, "
                         f"{out.shape[1]}, {out_h}, {out_w}): output channels a multiple "
                         f"of {OUT}, kernel rows at most {MAX_KW} wide")
    if dh < 1 or dw < 1 or top < 0 or left < 0:
        raise ValueError(f"row_conv.conv: dilation ({dh}, {dw}) must be positive and padding "
                         f"({top}, {left}) not negative")
    cdef int nt = check_threads(num_threads)
    # a tile's two vectors: two halves of a row of 32, or on rows of at most 16 two rows
    cdef bint two_rows = out_w <= LANES
    cdef Py_ssize_t chunks = (out_w + POSITIONS - 1) // POSITIONS
    cdef Py_ssize_t lines = (out_h + 1) // 2 if two_rows else out_h
    cdef Py_ssize_t blocks = out_channels // OUT
    cdef Py_ssize_t item, n, b, line
    cdef bint has_bias = bias.shape[0] > 0
    if n_images == 0 or out_h == 0 or out_w == 0:
        return
    for item in prange(n_images * blocks * lines, nogil=True, schedule="static",
                       num_threads=nt):
        n = item // (blocks * lines)
        b = (item // lines) % blocks
        line = item % lines
        _line(&x[n, 0, 0, 0], channels, height, width, &weight[b * OUT, 0, 0, 0], kh, kw,
              dh, dw, top, left, line, two_rows, chunks, out_h, out_w,
              &bias[b * OUT] if has_bias else NULL, &out[n, b * OUT, 0, 0])


cdef void _line(const float* x, Py_ssize_t channels, Py_ssize_t height, Py_ssize_t width,
                const float* weight, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t dh,
                Py_ssize_t dw, Py_ssize_t top, Py_ssize_t left, Py_ssize_t line,
                bint two_rows, Py_ssize_t chunks, Py_ssize_t out_h, Py_ssize_t out_w,
                const float* bias, float* out) noexcept nogil:
    """One work item's tiles: output rows 2·line and 2·line + 1 (``two_rows``), or row
    ``line`` in ``chunks`` tiles side by side."""
    cdef Py_ssize_t rows[2]
    cdef Py_ssize_t cols[2]
    cdef Py_ssize_t chunk
    for chunk in range(1 if two_rows else chunks):
        if two_rows:
            rows[0], rows[1], cols[0], cols[1] = 2 * line, 2 * line + 1, 0, 0
        else:
            rows[0] = rows[1] = line
            cols[0], cols[1] = chunk * POSITIONS, chunk * POSITIONS + LANES
        _row_tile(x, channels, height, width, weight, channels * kh * kw, kh, kw, dh, dw,
                  top, left, rows, cols, out_h, out_w, bias, out, out_h * out_w)
