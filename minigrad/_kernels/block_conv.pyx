# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The forward direct convolution on a channel-blocked grid (float32, AVX-512 only).

The grid layout. The input's padded planes in their stride phases, as on the planar grid of
``direct_conv.pyx`` (same ``grid_width``, phase length and tap shifts), but in blocks of 16
channels whose values sit side by side: cell q of block b holds channels 16·b … 16·b + 15 of
grid position q, 16 consecutive floats (a cache line). Tap t of output (r, col) reads cell
r·grid_width + col + shift[t] of every block.

The tile (``block_tile.h``) is 8 outputs of a row × 32 output channels, 16 accumulators:
each input channel of a block loads two weight vectors and broadcasts the 8 outputs' inputs,
so a tap reads 8 whole cells, one line each, and the next of the block's 16 channels reads
the same lines again. The planar grid's position tile reads each tap's 16-position vectors
across two lines and jumps by a plane per channel; on the stride-2 layers, whose planes its
tiles read only a few rows of at a time, its loads waited on the cache (docs/algorithms.md
has the measurements). Rows whose width is not a multiple of 8 end in a tile that overlaps
the one before it (it computes some outputs twice, with the same sums).

With one block of input channels and a stride of 2 along the rows, the same tile reads the
input's planes instead, zero-padded and copied image by image (``conv_planar_by_image``): a
tap's 8 broadcasts read every second value of a row, so the block's 16 channels read 16
lines where cells take 8, but one block's lines stay in L1, and a row copy costs less than
the transpose into cells.

Two tiles make a unit of 16 outputs: their 16 × 32 sums are transposed in registers
(``transpose16.h``) and stored as rows of the output planes. Each unit belongs to one thread,
which computes all its sums, so the results do not depend on the thread count.
"""
from cython.parallel cimport prange, threadid
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from ._parallel cimport check_threads
from .direct_conv import check_reads

cdef extern from "block_tile.h" nogil:
    enum:
        BUILT "MINIGRAD_BLOCK_TILE"
        CHANNELS "MINIGRAD_BLOCK_CHANNELS"
        POSITIONS "MINIGRAD_BLOCK_POSITIONS"
        OUT "MINIGRAD_BLOCK_OUT"
    void _block_sums "minigrad_block_sums" (const float* x, Py_ssize_t block_length,
                                            const float* weight, const Py_ssize_t* shifts,
                                            Py_ssize_t blocks, Py_ssize_t taps, float* result)
    void _planar_sums "minigrad_planar_sums" (const float* x, Py_ssize_t plane,
                                              const float* weight, const Py_ssize_t* shifts,
                                              Py_ssize_t blocks, Py_ssize_t taps,
                                              float* result)

cdef extern from "embed_rows.h" nogil:
    void _embed_rows "minigrad_embed_rows_f" (float* dst, const float* src, Py_ssize_t rows,
                                              Py_ssize_t width, Py_ssize_t src_row,
                                              Py_ssize_t gap)

cdef extern from "transpose16.h" nogil:
    void _transpose16 "minigrad_transpose16" (const float** src, float** dst)
    void _transpose16_cells "minigrad_transpose16_cells" (const float* src, Py_ssize_t stride,
                                                          float* dst, const Py_ssize_t* cells)

cdef enum:
    # the taps whose shifts ``conv`` keeps in a local array
    TAPS_HELD = 64

#: Whether this build has the tile (AVX-512); without it ``conv`` raises.
TILE = bool(BUILT)
#: Input channels per block (cell), output channels per tile, outputs per tile.
BLOCK_CHANNELS = CHANNELS
BLOCK_OUT = OUT
BLOCK_POSITIONS = POSITIONS
#: The most taps ``conv`` takes.
MAX_TAPS = TAPS_HELD


cdef int _check_embed(str name, Py_ssize_t* src, Py_ssize_t* grid, Py_ssize_t grids,
                      Py_ssize_t top, Py_ssize_t left, Py_ssize_t sh, Py_ssize_t sw,
                      Py_ssize_t phase_length, Py_ssize_t grid_width) except -1:
    """ValueError unless ``grids`` grids of shape ``grid`` (images or threads, C / 16, L·16)
    hold planes of shape ``src`` (N, C, H, W) in ``embed``'s layout."""
    cdef Py_ssize_t rows = src[2], width = src[3], cells = grid[2] // CHANNELS
    if (src[1] % CHANNELS or grid[0] != grids or grid[1] != src[1] // CHANNELS
            or grid[2] % CHANNELS or sh < 1 or sw < 1 or top < 0 or left < 0
            or grid_width < 1 or phase_length < 0
            or (rows and width and (sh * sw - 1) * phase_length
                + ((rows - 1 + top) // sh) * grid_width + (width - 1 + left) // sw >= cells)
            or (width and (width - 1 + left) // sw >= grid_width)):
        raise ValueError(f"{name}: grid ({grid[0]}, {grid[1]}, {grid[2]}) ({sh}×{sw} phases "
                         f"{phase_length} cells apart, rows {grid_width} wide, padding {top}, "
                         f"{left}) cannot hold input ({src[0]}, {src[1]}, {rows}, {width}) in "
                         f"blocks of {CHANNELS}")
    return 0


def embed(const float[:, :, :, ::1] src, float[:, :, ::1] grid, Py_ssize_t top,
          Py_ssize_t left, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t phase_length,
          Py_ssize_t grid_width, int num_threads):
    """src (N, C, H, W), C a multiple of 16, onto grid (N, C / 16, L·16): padded cell
    (R, C') = (r + top, col + left) goes to phase p = (R mod sh)·sw + C' mod sw, position
    q = p·phase_length + (R div sh)·grid_width + C' div sw, whose 16 floats are the block's
    channels. Every other value is 0. (With stride 1 the rows may share their padding gap:
    grid_width ≥ W + left.) 16 columns at a time by a register transpose."""
    cdef Py_ssize_t n_images = src.shape[0], blocks = src.shape[1] // CHANNELS
    cdef Py_ssize_t item, n, b
    _check_embed("block_conv.embed", src.shape, grid.shape, n_images, top, left, sh, sw,
                 phase_length, grid_width)
    cdef int nt = check_threads(num_threads)
    cdef Embedding e = _embedding(src.shape[2], src.shape[3], top, left, sh, sw, phase_length,
                                  grid_width)
    for item in prange(n_images * blocks, nogil=True, schedule="static", num_threads=nt):
        n = item // blocks
        b = item % blocks
        memset(&grid[n, b, 0], 0, grid.shape[2] * sizeof(float))
        _embed_block(&src[n, b * CHANNELS, 0, 0], &grid[n, b, 0], &e)
    free(e.columns)


cdef struct Embedding:
    # the input planes' size, the padding rows before them, the stride, the cells from one
    # phase to the next and from one of a phase's rows to the next, and each input column's
    # cell within its grid row (its phase's offset plus its place in the phase's row), worked
    # out once per call so that the embedding divides by the stride per row only
    Py_ssize_t rows, width, top, sh, sw, phase_length, grid_width
    Py_ssize_t* columns


cdef Embedding _embedding(Py_ssize_t rows, Py_ssize_t width, Py_ssize_t top, Py_ssize_t left,
                          Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t phase_length,
                          Py_ssize_t grid_width) except *:
    """The geometry of ``embed``; the caller frees its ``columns``."""
    cdef Embedding e
    cdef Py_ssize_t j
    e.rows, e.width, e.top, e.sh, e.sw = rows, width, top, sh, sw
    e.phase_length, e.grid_width = phase_length, grid_width
    e.columns = <Py_ssize_t*>malloc(max(width, 1) * sizeof(Py_ssize_t))
    if e.columns == NULL:
        raise MemoryError()
    for j in range(width):
        e.columns[j] = ((j + left) % sw) * phase_length + (j + left) // sw
    return e


cdef void _embed_block(const float* src, float* block, const Embedding* e) noexcept nogil:
    """``embed`` for one block: the 16 planes at ``src`` onto ``block``, whose other cells
    the caller zeroes."""
    cdef Py_ssize_t r, R, col0, i, j, row_cell, width = e.width, plane = e.rows * e.width
    for r in range(e.rows):
        R = r + e.top
        row_cell = (R % e.sh) * e.sw * e.phase_length + (R // e.sh) * e.grid_width
        for col0 in range(0, width - width % 16, 16):
            _transpose16_cells(src + r * width + col0, plane, block + row_cell * CHANNELS,
                               &e.columns[col0])
        for j in range(width - width % 16, width):
            for i in range(CHANNELS):
                block[(row_cell + e.columns[j]) * CHANNELS + i] = src[i * plane + r * width + j]


cdef struct Tiling:
    # ``per_row`` tiles side by side cover an output row (the last ending at its last
    # output), ``tiles`` the plane, in ``units`` pairs; output (r, col) reads from float
    # r·row_step + col·col_step of the grid, on zero-padded planes (``planar``) or cells
    Py_ssize_t per_row, tiles, units, out_h, out_w, row_step, col_step
    bint planar


cdef Tiling _tiling(Py_ssize_t out_h, Py_ssize_t out_w, Py_ssize_t row_step,
                    Py_ssize_t col_step, bint planar) noexcept:
    cdef Tiling tiling
    tiling.per_row = (out_w + POSITIONS - 1) // POSITIONS
    tiling.tiles = out_h * tiling.per_row
    tiling.units = (tiling.tiles + 1) // 2
    tiling.out_h, tiling.out_w = out_h, out_w
    tiling.row_step, tiling.col_step, tiling.planar = row_step, col_step, planar
    return tiling


cdef void _unit(const float* grid, Py_ssize_t block_length, Py_ssize_t blocks,
                const float* packed, const Py_ssize_t* cell_shifts, Py_ssize_t taps,
                Tiling* tiling, Py_ssize_t unit, float* out,
                const float* bias) noexcept nogil:
    """Unit ``unit`` of one image and block of 32 output channels: tiles 2·unit and
    2·unit + 1 (the last tile again if there is none), their sums transposed and stored into
    the 32 output planes at ``out`` (plus ``bias`` unless NULL). ``block_length``: floats
    from one block of the grid to the next, or a padded plane's (``tiling.planar``)."""
    cdef float sums[2 * POSITIONS * OUT]
    cdef float rows_of[OUT * 2 * POSITIONS]
    cdef const float* srcs[16]
    cdef float* dsts[16]
    cdef Py_ssize_t row[2]
    cdef Py_ssize_t col[2]
    cdef Py_ssize_t k, p, o, tile, plane = tiling.out_h * tiling.out_w
    cdef const float* origin
    cdef float* dst
    cdef float offset
    for k in range(2):
        tile = min(2 * unit + k, tiling.tiles - 1)
        row[k] = tile // tiling.per_row
        col[k] = min(tile % tiling.per_row * POSITIONS, tiling.out_w - POSITIONS)
        origin = grid + row[k] * tiling.row_step + col[k] * tiling.col_step
        if tiling.planar:
            _planar_sums(origin, block_length, packed, cell_shifts, blocks, taps,
                         &sums[k * POSITIONS * OUT])
        else:
            _block_sums(origin, block_length, packed, cell_shifts, blocks, taps,
                        &sums[k * POSITIONS * OUT])
    # sums[p][o] (16 positions) → rows_of[o][p], 16 output channels at a time
    for k in range(2):
        for p in range(16):
            srcs[p] = &sums[p * OUT + k * 16]
            dsts[p] = &rows_of[(k * 16 + p) * 2 * POSITIONS]
        _transpose16(srcs, dsts)
    for o in range(OUT):
        offset = bias[o] if bias != NULL else 0
        for k in range(2 if 2 * unit + 1 < tiling.tiles else 1):
            dst = out + o * plane + row[k] * tiling.out_w + col[k]
            for p in range(POSITIONS):
                dst[p] = rows_of[o * 2 * POSITIONS + k * POSITIONS + p] + offset


def conv(const float[:, :, ::1] grid, const float[:, ::1] packed,
         const Py_ssize_t[::1] shifts, float[:, :, :, ::1] out, const float[::1] bias,
         Py_ssize_t grid_width, int num_threads):
    """out[n, o, r, col] = bias[o] + Σ_c Σ_t W[o, c, t] · (channel c at grid position
    r·grid_width + col + shifts[t]) for the grid of ``embed`` (N, C / 16, L·16) and W packed
    as (O / 32, C·T·32): packed[o // 32, ((c // 16)·T + t)·512 + (c % 16)·32 + o % 32] =
    W[o, c, t], the order in which the tile reads it (``conv_direct._pack_blocks``). ``bias``
    may be empty. Outputs at least 8 wide (``BLOCK_POSITIONS``) and at most ``grid_width``."""
    cdef Py_ssize_t n_images = out.shape[0], out_blocks = out.shape[1] // OUT
    cdef Py_ssize_t cell_shifts[TAPS_HELD]
    if grid.shape[0] != n_images:
        raise ValueError(f"block_conv.conv: a grid of {grid.shape[0]} images for "
                         f"{n_images} outputs")
    _check_grid("block_conv.conv", grid.shape, packed.shape, shifts, out.shape, bias.shape[0],
                grid_width, cell_shifts)
    cdef int nt = check_threads(num_threads)
    cdef Tiling tiling = _tiling(out.shape[2], out.shape[3], grid_width * CHANNELS, CHANNELS,
                                 False)
    cdef Py_ssize_t item, n, ob, unit
    cdef bint has_bias = bias.shape[0] > 0
    for item in prange(n_images * out_blocks * tiling.units, nogil=True, schedule="static",
                       num_threads=nt):
        n = item // (out_blocks * tiling.units)
        ob = (item // tiling.units) % out_blocks
        unit = item % tiling.units
        _unit(&grid[n, 0, 0], grid.shape[2], grid.shape[1], &packed[ob, 0], cell_shifts,
              shifts.shape[0], &tiling, unit, &out[n, ob * OUT, 0, 0],
              &bias[ob * OUT] if has_bias else NULL)


def conv_by_image(const float[:, :, :, ::1] src, float[:, :, ::1] scratch,
                  const float[:, ::1] packed, const Py_ssize_t[::1] shifts,
                  float[:, :, :, ::1] out, const float[::1] bias, Py_ssize_t top,
                  Py_ssize_t left, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t phase_length,
                  Py_ssize_t grid_width, int num_threads):
    """``embed`` and ``conv`` image by image: each thread embeds an image of ``src`` onto its
    own grid of ``scratch`` (``num_threads``, C / 16, L·16) and computes that image's
    outputs while the grid is still in its core's cache."""
    cdef Py_ssize_t n_images = out.shape[0], out_blocks = out.shape[1] // OUT
    cdef Py_ssize_t blocks = scratch.shape[1], length = scratch.shape[2]
    cdef Py_ssize_t cell_shifts[TAPS_HELD]
    cdef int nt = check_threads(num_threads)
    if src.shape[0] != n_images:
        raise ValueError(f"block_conv.conv_by_image: {src.shape[0]} images for {n_images} "
                         f"outputs")
    _check_embed("block_conv.conv_by_image", src.shape, scratch.shape, nt, top, left, sh, sw,
                 phase_length, grid_width)
    _check_grid("block_conv.conv_by_image", scratch.shape, packed.shape, shifts, out.shape,
                bias.shape[0], grid_width, cell_shifts)
    cdef Tiling tiling = _tiling(out.shape[2], out.shape[3], grid_width * CHANNELS, CHANNELS,
                                 False)
    cdef Py_ssize_t n, ob, unit, b
    cdef float* grid
    cdef bint has_bias = bias.shape[0] > 0
    cdef Embedding e = _embedding(src.shape[2], src.shape[3], top, left, sh, sw, phase_length,
                                  grid_width)
    # every image puts its values in the same cells: the others stay zero from here
    memset(&scratch[0, 0, 0], 0, scratch.shape[0] * blocks * length * sizeof(float))
    for n in prange(n_images, nogil=True, schedule="static", num_threads=nt):
        grid = &scratch[threadid(), 0, 0]
        for b in range(blocks):
            _embed_block(&src[n, b * CHANNELS, 0, 0], grid + b * length, &e)
        for ob in range(out_blocks):
            for unit in range(tiling.units):
                _unit(grid, length, blocks, &packed[ob, 0], cell_shifts, shifts.shape[0],
                      &tiling, unit, &out[n, ob * OUT, 0, 0],
                      &bias[ob * OUT] if has_bias else NULL)
    free(e.columns)


cdef int _check_grid(str name, Py_ssize_t* grid, Py_ssize_t* packed,
                     const Py_ssize_t[::1] shifts, Py_ssize_t* out, Py_ssize_t bias,
                     Py_ssize_t grid_width, Py_ssize_t* cell_shifts) except -1:
    """``_check_conv`` for grids of shape ``grid`` (any count, C / 16, L·16), rows
    ``grid_width`` cells apart."""
    if grid[2] % CHANNELS:
        raise ValueError(f"{name}: a grid of ({grid[0]}, {grid[1]}, {grid[2]}) floats is not "
                         f"made of cells of {CHANNELS}")
    return _check_conv(name, grid[1], grid[2] // CHANNELS, packed, shifts, out, bias,
                       grid_width, out[3], CHANNELS, cell_shifts)


cdef int _check_conv(str name, Py_ssize_t blocks, Py_ssize_t cells, Py_ssize_t* packed,
                     const Py_ssize_t[::1] shifts, Py_ssize_t* out, Py_ssize_t bias,
                     Py_ssize_t rows_apart, Py_ssize_t read_span, Py_ssize_t scale,
                     Py_ssize_t* cell_shifts) except -1:
    """ValueError unless ``blocks`` blocks of 16 input channels, a weight packed as
    ``packed``, ``shifts`` and ``bias`` values (0: none) make outputs of shape ``out``, and
    every tap of every output reads one of a block's ``cells`` cells: output rows lie
    ``rows_apart`` cells apart and an output row's reads span ``read_span`` cells from its
    first. Then ``cell_shifts`` (TAPS_HELD) holds the shifts in floats (``scale`` a cell)."""
    cdef Py_ssize_t out_channels = out[1], out_h = out[2], out_w = out[3]
    cdef Py_ssize_t taps = shifts.shape[0]
    cdef Py_ssize_t t
    if not BUILT:
        raise RuntimeError(f"{name}: this build has no AVX-512 tile")
    if (out_channels % OUT or taps == 0
            or packed[0] != out_channels // OUT or packed[1] != blocks * taps * CHANNELS * OUT
            or (bias and bias != out_channels)
            or out_w < POSITIONS or read_span > rows_apart or out_h < 1):
        raise ValueError(f"{name}: inconsistent shapes: {blocks} blocks of input channels, "
                         f"packed ({packed[0]}, {packed[1]}), {taps} shifts, out ({out[0]}, "
                         f"{out_channels}, {out_h}, {out_w}), bias ({bias},), output rows "
                         f"reading {read_span} of the {rows_apart} cells between them")
    if taps > TAPS_HELD:
        raise ValueError(f"{name}: at most {TAPS_HELD} taps, got {taps}")
    # the output's positions, each shifted by every tap, within the grid's cells
    check_reads(cells, 0, (out_h - 1) * rows_apart + read_span, shifts)
    for t in range(taps):
        cell_shifts[t] = shifts[t] * scale
    return 0


def conv_planar_by_image(const float[:, :, :, ::1] src, float[:, :, ::1] scratch,
                         const float[:, ::1] packed, const Py_ssize_t[::1] shifts,
                         float[:, :, :, ::1] out, const float[::1] bias, Py_ssize_t top,
                         Py_ssize_t left, Py_ssize_t sh, Py_ssize_t padded_width,
                         int num_threads):
    """``conv_by_image`` for a stride of (sh, 2) on zero-padded planes: each thread copies an
    image of ``src`` (N, C, H, W), C a multiple of 16, onto its planes of ``scratch``
    (``num_threads``, C, Hp·Wp), rows ``padded_width`` (Wp) wide, ``top`` rows and ``left``
    columns into each, and computes that image's outputs. out[n, o, r, col] = bias[o] +
    Σ_c Σ_t W[o, c, t] · plane c at (r·sh·Wp + 2·col + shifts[t]); W packed as for ``conv``.
    The planes' other values are zeroed once, as every image fills the same ones."""
    cdef Py_ssize_t n_images = out.shape[0], out_blocks = out.shape[1] // OUT
    cdef Py_ssize_t channels = src.shape[1], rows = src.shape[2], width = src.shape[3]
    cdef Py_ssize_t plane = scratch.shape[2]
    cdef Py_ssize_t cell_shifts[TAPS_HELD]
    cdef int nt = check_threads(num_threads)
    if src.shape[0] != n_images:
        raise ValueError(f"block_conv.conv_planar_by_image: {src.shape[0]} images for "
                         f"{n_images} outputs")
    if (channels % CHANNELS or scratch.shape[0] != nt or scratch.shape[1] != channels
            or sh < 1 or top < 0 or left < 0 or padded_width < 1
            or left + width > padded_width or (top + rows) * padded_width > plane):
        raise ValueError(f"block_conv.conv_planar_by_image: planes ({scratch.shape[0]}, "
                         f"{scratch.shape[1]}, {plane}) with rows {padded_width} wide cannot "
                         f"hold input ({src.shape[0]}, {channels}, {rows}, {width}) "
                         f"{top} rows and {left} columns in, one image per thread of "
                         f"{nt}, in blocks of {CHANNELS}")
    _check_conv("block_conv.conv_planar_by_image", channels // CHANNELS, plane, packed.shape,
                shifts, out.shape, bias.shape[0], sh * padded_width,
                2 * (out.shape[3] - 1) + 1, 1, cell_shifts)
    cdef Tiling tiling = _tiling(out.shape[2], out.shape[3], sh * padded_width, 2, True)
    cdef Py_ssize_t n, ob, unit, c
    cdef float* planes
    cdef bint has_bias = bias.shape[0] > 0
    memset(&scratch[0, 0, 0], 0, nt * channels * plane * sizeof(float))
    for n in prange(n_images, nogil=True, schedule="static", num_threads=nt):
        planes = &scratch[threadid(), 0, 0]
        for c in range(channels):
            # the rows, each followed by zeros up to the next one's first value
            _embed_rows(planes + c * plane + top * padded_width + left, &src[n, c, 0, 0], rows,
                        width, width, padded_width - width)
        for ob in range(out_blocks):
            for unit in range(tiling.units):
                _unit(planes, plane, channels // CHANNELS, &packed[ob, 0], cell_shifts,
                      shifts.shape[0], &tiling, unit, &out[n, ob * OUT, 0, 0],
                      &bias[ob * OUT] if has_bias else NULL)
