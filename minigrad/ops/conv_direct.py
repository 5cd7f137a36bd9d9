"""Convolution without unrolled windows: the flat-grid kernels of
``minigrad/_kernels/direct_conv.pyx`` (read its docstring for the layout and the tiling).

``Conv2d`` uses this path for convolutions with at least ``MIN_TAPS`` kernel taps (3×3, 5×5,
dilated, 'same', strided up to the kernel's size, grouped with at least
``GROUP_MIN_CHANNELS`` channels per group: one direct convolution per group), except on tiny
maps with many output channels (``DirectPlan.beats_gemm``; the forward's bar is lower for
inputs with few channels, ``FORWARD_MIN_TILE_USE``); narrow groups keep the im2col + BLAS
path, and 1×1 convolutions their per-image BLAS products, except where the lane tile takes
their channels and planes (``pointwise``: forward and input gradient). It is faster than
im2col + BLAS for these shapes because it never writes the unrolled windows, which for a
batch are many times the input's size (benchmark cases conv3x3_s1, conv3x3_d2, conv5x5,
grouped3x3_g4).

A stride-(sh, sw) convolution runs on the input split into its sh·sw stride phases (polyphase):
padded cell (R, C) goes to phase plane (R mod sh, C mod sw), cell (R div sh, C div sw). Tap
(i, j) of output (r, col) then reads phase ((i·dh) mod sh, (j·dw) mod sw) at cell
(r + (i·dh) div sh, col + (j·dw) div sw): one constant shift in the flat layout, as for stride
1 (one phase). The input gradient of each phase is a stride-1 correlation of the output
gradient with that phase's taps, written straight into its cells of x's gradient. On wide
enough outputs the forward interleaves the phases' rows (``DirectPlan.interleaved``), and on
small planes (input gradient) or with many channels (weight gradient) a strided
convolution's backward is im2col's product instead (``DirectPlan.grad_input_by_gemm``,
``grad_weight_by_gemm``: ``Conv2d.backward`` asks).

With AVX-512 the forward of a strided float32 convolution whose channels fill its blocks runs
on a channel-blocked grid instead (``DirectPlan.blocked``, ``BLOCKED``; kernels in
``minigrad/_kernels/block_conv.pyx``): the same cells and shifts, 16 input channels side by
side in each cell, so that a tile of 8 outputs × 32 output channels reads each tap's inputs in
whole cache lines; with 16 input channels and a stride of 2 along the rows the same tile reads
zero-padded planes instead (``DirectPlan.planar``, ``BLOCKED_PLANAR_CHANNELS``).

A stride-1 float32 forward whose outputs each sum at most 27 products (a first layer of one
to three channels: ``DirectPlan.rows``, ``ROW_TILE_MAX_SUMS``; AVX-512 only) runs on the row
tile (``minigrad/_kernels/row_conv.pyx``): 8 output channels × 32 outputs of a row (or two
rows of at most 16), x read in place with its padding masked out of the loads, each output
vector stored once.

The lane tile (``_takes_lanes``) broadcasts single cells and skips the products of padding
rows and of a tile's first or last one or two columns. Where that is all the padding a pass
reads, it reads x itself (the forward, stride 1 or 2: ``DirectPlan.in_place``) or the output
gradient (the input gradient: ``input_in_place``), their planes flat, with no grid; a
strided forward on rows of 14, or on short rows of few channels, then leaves the
channel-blocked grid (``LANE_ROW_OVER_BLOCKS``, ``LANE_OVER_BLOCKS_MAX_SPAN``).

On a small map each plane ends in a partly used tile (an 8×8 output fills two thirds of its
tiles' positions with AVX-512, a 7×7 half), so where it saves tiles (``STACK_MAX_TILE_SHARE``)
a stride-1 convolution stacks the batch's planes of each channel into one tall plane,
``DirectPlan.stack_period`` rows per image: the zero rows between two images are the bottom
padding of one and the top padding of the next, and a tile's runs go on from one image into
the next. The kernel stores each output row straight into its image, and the input gradient
runs on the same stacking.

A vector of positions cannot skip a padding column, but a tile can skip a kernel row that
reads only padding rows for every output row it stores (the forward at any stride:
``DirectPlan.row_taps``; the stride-1 input gradient: ``input_row_taps``). Consecutive rows
of one image share few such skips, so stacked planes whose runs fall a whole number per
image take tiles of the same run of three images (``interleave``), whose rows skip the same
taps.

Extra memory (per thread, reused by later calls; ``release_workspace()`` frees it): the input
on its padded grid, about ``N·C·Hp·Wp`` values (about the input's size; none where the lane
tile reads x in place; in training with stride 1, unstacked, a grid of its own kept until the
backward: ``kept_grid``; on the channel-blocked grid one image's per thread, or the batch's
below ``BLOCKED_BY_IMAGE`` images per thread, and on zero-padded planes one image's per
thread); in backward the output gradient on the phase
grid (``N·O·(Hq·Wq + reach)``, Hq·Wq = Hp·Wp / (sh·sw); none where the lane tile reads it in
place), per thread one image's block of it position-major (``Ho·Wq·width``, the
weight-gradient tile's width) and weight-gradient partials of at most ``PARTIALS_BYTES``; and
up to ``PACK_WORKSPACE_MAX_BYTES`` of the lane tile's packed weights.
"""

import math
from functools import cached_property, lru_cache

import numpy as np

from .._kernels import block_conv as _blocks
from .._kernels import direct_conv as _kernels
from .._kernels import row_conv as _rows
from ..threads import get_num_threads
from .workspace import CACHE_LINE as _CACHE_LINE, absent, aligned_empty, workspace

#: Kernels with fewer taps go to im2col: the weight-gradient kernel works on groups of
#: ``TAP_BLOCK`` taps (9 with AVX-512), so a 1×2 kernel would waste most of its work.
MIN_TAPS = 3
#: A grouped convolution runs as one direct convolution per group when each group has at least
#: this many input channels; with fewer, the per-group calls cost more than im2col's one
#: pass (docs/algorithms.md has the measurements).
GROUP_MIN_CHANNELS = 8
#: On tiny maps a register tile of ``POSITION_BLOCK`` positions is partly wasted (a 4×4 output
#: fills a third of a 48-position tile): below this share of useful positions, im2col + BLAS
#: is faster, once there are at least ``GEMM_MIN_OUT`` output channels for the GEMM (benchmark
#: cases conv3x3_256_4x4, conv3x3_128_8x8; the inception 5×5 branches on small maps, with fewer,
#: stay direct). The AVX2 tiles are smaller, so they waste less on small maps, but their
#: backward still loses to BLAS on 7×7 and 4×4 maps with more than ``SMALL_MAP_MAX_OUT`` output
#: channels: a higher bar, which layers with at most that many outputs need not pass while at
#: least ``SMALL_MAP_MIN_TILE_USE`` of the tiles are used (docs/algorithms.md has the
#: measurements).
MIN_TILE_USE = 0.5 if _kernels.POSITION_BLOCK >= 48 else 0.7
GEMM_MIN_OUT = 64
SMALL_MAP_MAX_OUT = 64
SMALL_MAP_MIN_TILE_USE = 0.5
#: The forward alone keeps the direct path down to this tile use when the input has at most
#: ``FORWARD_MAX_CHANNELS`` channels and the output at most ``FORWARD_MAX_OUT`` (per group):
#: im2col's product, with few rows and C·kh·kw deep, is then too small for BLAS (batch 1 above
#: all); with more channels BLAS wins (docs/algorithms.md has the measurements).
FORWARD_MIN_TILE_USE = 0.5
FORWARD_MAX_CHANNELS = 64
FORWARD_MAX_OUT = 128
#: With more channels the forward also stays direct on a plane of one tile (3×3 on 4×4 with
#: AVX2) from this batch on: below it packing the weight, once per call, costs more than the
#: GEMM's im2col saves (docs/algorithms.md has the measurements).
FORWARD_ONE_TILE_MIN_BATCH = 32
#: The forward of a strided convolution with output rows of at least this many columns reads
#: its input with the phases' rows interleaved, where that takes no more runs
#: (``DirectPlan.interleaved``); on shorter rows a channel's phase planes are small and
#: interleaving them did not pay (docs/algorithms.md has the measurements). None: never
#: (tests compare both layouts).
INTERLEAVE_MIN_COLUMNS = 16
#: A strided convolution's input gradient goes to im2col's product and col2im up to this many
#: output positions per plane, and for inputs of fewer channels than
#: ``GEMM_GRAD_INPUT_MIN_CHANNELS`` (a tile's block, ``_kernels.OUT_BLOCK``): each stride
#: phase of it is a correlation with a few of the taps (a 3×3/2 kernel's phases have 4, 2, 2
#: and 1) over a phase plane of a quarter of the input's cells; on small planes the position
#: tiles of those correlations are mostly overhang, with few channels their blocks mostly
#: empty. Elsewhere the direct correlations are faster than writing the columns
#: (docs/algorithms.md has the measurements).
GEMM_GRAD_INPUT_MAX_POSITIONS = 64
GEMM_GRAD_INPUT_MIN_CHANNELS = _kernels.OUT_BLOCK
#: ... and its weight gradient from this many input channels (per group): the direct kernel's
#: sums per image are flushed to partials of C·taps·(its tile's width) values, which with
#: many channels outgrow the core's cache (docs/algorithms.md has the measurements).
GEMM_GRAD_WEIGHT_MIN_CHANNELS = 160
#: Upper bound for the weight-gradient partial sums (one (C, taps, O) block per image chunk).
PARTIALS_BYTES = 4 << 20
#: At most this many image chunks: partial sums are added in a fixed order, so the split
#: depends only on the batch size and results do not depend on the thread count.
MAX_CHUNKS = 16
#: The weight-gradient tile skips the taps that read padding (its masks) on kernels of at most
#: this many taps (None: any): one tap group (3×3 with AVX-512), where larger kernels (5×5,
#: 7×7) ran faster on its unmasked twin; any where GCC tunes for Zen (``_kernels.ZEN``),
#: where the masks were as fast or faster on every kernel measured (docs/algorithms.md).
MASKED_MAX_TAPS = None if _kernels.ZEN else _kernels.TAP_BLOCK
#: A forward on outputs 4 or 7 wide or a whole number of 14 or 8 (``_kernels.lane_tile_width``),
#: with a whole number of lane blocks of output channels (32, or 16 on rows of one tile:
#: ``LANE_MIN_VECTORS``) and at least this many input channels, runs on the lane tile
#: (``_kernels.conv_lanes``: output channels in the vector lanes, so rows of 14, 8, 7 or 4 lose
#: no lanes, and it skips the padding's products, which the position tiles multiply). With
#: fewer channels each tile's transposing store weighs more against its sums. None: never
#: (tests compare both kernels).
LANE_MIN_CHANNELS = 16
#: ... or from this many where each output sums at least ``LANE_MIN_SUMS`` products (channels
#: × taps: 8 channels of a 5×5 kernel, against the 16 of a 3×3 that LANE_MIN_CHANNELS admits):
#: measured where GCC tunes for Zen (``_kernels.ZEN``), None elsewhere. With 8 channels of
#: a 3×3 kernel the position tiles were faster on rows a whole number of 16 wide.
LANE_FEW_CHANNELS = 8 if _kernels.ZEN else None
LANE_MIN_SUMS = 144
#: The fewest vectors of output channels a lane tile holds: 1 lets layers of 16 (or 48, …)
#: output channels take it on outputs 4, 7, 8 or 14 wide with one vector per tile (two rows of
#: positions), 2 keeps them off.
LANE_MIN_VECTORS = 1
#: Whether one vector of output channels takes rows of several tiles too (two rows of 14 or
#: 8): where GCC tunes for Zen (``_kernels.ZEN``), on which it beat the position tiles on
#: every such layer measured since the tiles' tap lists are worked out once per class
#: (docs/algorithms.md); elsewhere only rows of one tile, as measured before.
LANE_ONE_VECTOR_ROWS = _kernels.ZEN
#: From this many images on, a forward on outputs 8 wide takes one vector of output channels
#: per lane tile (two rows of 8, summed tap by tap) also where they would fill two (one row
#: of 8): faster on batches of 16 and more (docs/algorithms.md), slower on one image. The
#: input gradient keeps two. None: never.
LANE_ONE_VECTOR_MIN_IMAGES = 16
#: The lane tile's packed weights of at most this many bytes go to the thread's workspace: an
#: aligned array of their own cost a batch-1 layer a visible share of its time, while larger
#: ones kept there took memory the step's next arrays would have reused (the 128→256
#: stride-2 step 5 % slower with its 1.2 MB there).
PACK_WORKSPACE_MAX_BYTES = 1 << 17
#: Whether rows a whole number of ``WIDE_ROW`` outputs wide take the lane tile: the position
#: tiles' runs of 16 fill such rows, and they were faster there on Intel (two FMAs a cycle;
#: docs/algorithms.md), the lane tile on Zen (``_kernels.ZEN``, by the compiler's tuning).
LANE_WIDE_ROWS = _kernels.ZEN
WIDE_ROW = 16
#: The row widths of a lane tile: 14 or 8 outputs of one row, or two rows of 7 or of 4.
LANE_WIDTHS = _kernels.LANE_WIDTHS
#: A forward that the lane tile reads x in place for, on rows of tiles this wide, runs there
#: rather than on the channel-blocked grid (``DirectPlan.blocked``): faster on every such
#: strided layer measured.
LANE_ROW_OVER_BLOCKS = 14
#: ... and so does one on outputs at most ``LANE_OVER_BLOCKS_MAX_WIDTH`` wide whose output
#: columns times input channels are at most ``LANE_OVER_BLOCKS_MAX_SPAN`` (rows of 8 up to 64
#: channels, of 16 up to 32), where GCC tunes for Zen: since the lane tile stores its sums by
#: a register transpose it was faster there, and the blocked grid faster with more channels
#: or wider rows (docs/algorithms.md has the measurements).
LANE_OVER_BLOCKS_MAX_WIDTH = 16
LANE_OVER_BLOCKS_MAX_SPAN = 512 if _kernels.ZEN else 0
#: The largest batch whose 1×1 convolutions run on the lane tile (``pointwise_row``).
POINTWISE_MAX_IMAGES = 1
#: A stride-1 forward (and its input gradient) stacks the batch's planes
#: (``DirectPlan.stack_period``) when that takes at most this share of the tiles of one plane
#: at a time. None: never (tests compare both).
STACK_MAX_TILE_SHARE = 0.9
#: The forward of an ungrouped, strided float32 convolution runs on the channel-blocked grid
#: (``_blocks.conv``, AVX-512 only) where its channels fill the tile's blocks (a multiple of
#: ``_blocks.BLOCK_CHANNELS`` input and ``BLOCK_OUT`` output channels) on outputs at least
#: ``BLOCK_POSITIONS`` wide. With stride 1 the position tiles were as fast (they read their
#: rows again from L1 tile after tile; docs/algorithms.md has the measurements): True takes
#: strided ones only, "always" stride 1 too (tests), None: never.
BLOCKED = True
#: ... image by image (``_blocks.conv_by_image``: each thread's grid stays in its cache) from
#: this many images per thread; with fewer, a grid of the batch shares them out evenly.
BLOCKED_BY_IMAGE = 8
#: ... and, image by image with a stride of 2 along the rows, from at most this many input
#: channels on zero-padded planes rather than cells (``_blocks.conv_planar_by_image``): a copy
#: of the planes costs less than their transpose into cells, and one block's lines stay in
#: L1; with more channels the tile's reads of planes were slower (docs/algorithms.md). None:
#: never.
BLOCKED_PLANAR_CHANNELS = 16
#: The stride-1 float32 forward whose outputs each sum at most this many products (channels ×
#: taps: a first layer of one to three channels) runs on the row tile (``_rows.conv``,
#: AVX-512 only), which reads x in place and stores each output vector once; the position
#: tiles store about two vectors per accumulator, which with so few products is a large share
#: of their time (docs/algorithms.md). None: never.
ROW_TILE_MAX_SUMS = 27
#: Input channels the forward kernel sums per pass over a band of tiles, on planes of at least
#: a band (``channel_chunk``).
CHANNEL_CHUNK = 32


def channel_chunk(positions):
    """Input channels per pass of ``_kernels.conv`` over planes of ``positions`` grid
    positions. On a plane of a band of tiles or more, a pass sweeps the band with the rows
    and weights of ``CHANNEL_CHUNK`` channels, which stay in L1 from one tile to the next
    (with 64 channels at once they did not). On smaller planes there is no sweep to gain from
    and each extra pass costs: one pass (a chunk larger than any layer's channels)."""
    if positions >= _kernels.BAND_TILES * _kernels.POSITION_BLOCK:
        return CHANNEL_CHUNK
    return 1 << 30


def grad_tile_width(out_channels):
    """The weight-gradient kernel's tile width for a layer of ``out_channels`` outputs: the
    one of ``GRAD_TILE_WIDTHS`` that pads them least; on a tie the main tile's
    (``GRAD_OUT_BLOCK``, the fastest), else the widest. With AVX2 (main 16, also 24): 20 → 24,
    40 → 16·3, 64 → 16·4; with AVX-512 (main 32, also 16): 20 → 32, 40 → 16·3, 10 → 16."""
    return min(_kernels.GRAD_TILE_WIDTHS,
               key=lambda width: (_round_up(out_channels, width),
                                  width != _kernels.GRAD_OUT_BLOCK, -width))


def _round_up(value, multiple):
    return -(-value // multiple) * multiple


@lru_cache(maxsize=256)
def position_runs(rows, cols, grid_width, planes=1, period=None):
    """Where the forward kernel's runs of ``POSITION_RUN`` consecutive grid positions start
    for a rows × cols output on rows ``grid_width`` wide: (row, column) pairs, (n, 2),
    read-only, in increasing order. Each run starts at the first output position the runs
    before it leave uncovered, so a run never starts in the padding columns: on an 8×8 output
    with 5×5 'same' padding (rows 10 wide), the eight 8-wide runs of AVX2 cover the output
    exactly, where consecutive tiles would compute four 24-position tiles for 64 outputs.

    With ``planes`` > 1, the outputs of that many planes stacked ``period`` rows apart (the
    rows between them skipped like the padding columns): a run may then end in the next
    plane's first row."""
    run = _kernels.POSITION_RUN
    period = rows if period is None else period
    starts = []
    position = 0
    while True:
        row, col = divmod(position, grid_width)
        if col >= cols:
            row, col = row + 1, 0
        if row % period >= rows:
            row, col = (row // period + 1) * period, 0
        if row >= planes * period:
            break
        starts.append((row, col))
        position = row * grid_width + col + run
    runs = np.array(starts, np.intp).reshape(-1, 2)
    runs.flags.writeable = False
    return runs


def _row_taps(rows, kh, kw, inside):
    """For a correlation's ``rows`` rows of runs: row r's taps (kernel rows i, taps i·kw to
    i·kw + kw − 1) from the first to the last i with ``inside(r, i)`` (the kernel row reads
    a row of data, not a whole row of padding), (rows, 2) [first, end), read-only; None where
    every row takes every tap."""
    spans = []
    for r in range(rows):
        kept = [i for i in range(kh) if inside(r, i)]
        spans.append((kept[0] * kw, (kept[-1] + 1) * kw) if kept else (0, 0))
    if all(span == (0, kh * kw) for span in spans):
        return None
    spans = np.array(spans, np.intp).reshape(-1, 2)
    spans.flags.writeable = False
    return spans


def _interleaves(runs, planes, period):
    """Whether the stacked ``runs`` of ``planes`` planes ``period`` rows apart fall a whole
    number per plane, each inside its own plane: the kernel's tiles may then take the same
    run of several planes (``_kernels.conv``'s ``interleave``)."""
    per_plane, rest = divmod(len(runs), planes)
    return rest == 0 and bool(np.all(runs[:, 0] // period
                                     == np.arange(len(runs)) // per_plane))


def _fewer_tiles(stacked, runs, planes):
    """Whether the ``stacked`` runs of ``planes`` planes take at most
    ``STACK_MAX_TILE_SHARE`` of the tiles of ``runs`` once per plane."""
    tiles = -(-len(stacked) // _kernels.POSITION_RUNS)
    return tiles <= STACK_MAX_TILE_SHARE * planes * -(-len(runs) // _kernels.POSITION_RUNS)


def _run_end(runs, grid_width):
    """The position after the last run's last one."""
    row, col = runs[-1]
    return int(row * grid_width + col) + _kernels.POSITION_RUN


def applies(kernel, stride, groups, channels):
    """Whether the direct path handles this convolution: enough taps, a stride no larger than
    the kernel (so that every stride phase has taps), and ungrouped or at least
    ``GROUP_MIN_CHANNELS`` input channels per group."""
    return ((groups == 1 or channels // groups >= GROUP_MIN_CHANNELS)
            and kernel[0] * kernel[1] >= MIN_TAPS
            and stride[0] <= kernel[0] and stride[1] <= kernel[1])


def plan(x_shape, weight_shape, padding, dilation, stride, groups):
    """The ``DirectPlan`` for these shapes (all tuples) for the forward and for the backward
    pass, each None where another algorithm applies or is expected to be faster. ``Conv2d``
    keeps them in its cached layout (``conv._layout``), so they are built once per shape."""
    kernel = weight_shape[2:]
    if not applies(kernel, stride, groups, x_shape[1]):
        return None, None
    direct = DirectPlan(x_shape, weight_shape, padding, dilation, stride, groups)
    backward = direct.beats_gemm()
    few_channels = (direct.channels <= FORWARD_MAX_CHANNELS
                    and direct.out_channels <= FORWARD_MAX_OUT)
    one_tile = (direct.tiles == 1
                and direct.n >= FORWARD_ONE_TILE_MIN_BATCH)
    forward = (backward or direct.lanes or direct.blocked
               or (direct.tile_use >= FORWARD_MIN_TILE_USE and (few_channels or one_tile)))
    return direct if forward else None, direct if backward else None


def _pack_blocks(weight):
    """(O, C, kh, kw) → the channel-blocked tile's packed weight (``_blocks.conv``),
    (O / 32, C·T·32): for each block of 32 output channels, block of 16 input channels and
    tap, the 16 × 32 weights the tile reads one input channel (a row of 32) at a time."""
    out_channels, channels = weight.shape[:2]
    out, block = _blocks.BLOCK_OUT, _blocks.BLOCK_CHANNELS
    blocks = weight.reshape(out_channels // out, out, channels // block, block, -1)
    packed = blocks.transpose(0, 2, 4, 3, 1)
    # on a cache line: the tile loads its weights as whole vectors
    aligned = aligned_empty(packed.shape, weight.dtype, min_bytes=0)
    np.copyto(aligned, packed)
    return aligned.reshape(out_channels // out, -1)


def _pack(weight, threads, block=None, tap_major=False):
    """(R, C, kh, kw) or (R, C, taps), any strides → (R'/B, C·taps, B), B = ``block`` (by
    default OUT_BLOCK, a position tile's), R' = R rounded up to B with zero rows: one register
    tile's weights for one (channel, tap) step are contiguous, (channel, tap) pairs channel by
    channel or, with ``tap_major``, tap by tap. On the convolution's team (``threads``). The
    lane tile's small blocks go to this thread's workspace, valid until the next such
    pack."""
    block = block or _kernels.OUT_BLOCK
    rows, channels = weight.shape[:2]
    weight = weight.reshape(rows, channels, -1)
    shape = (-(-rows // block), channels * weight.shape[2], block)
    # the lane tile loads a block's rows as whole vectors: on a cache line, or every load
    # straddles two (the position tile broadcasts single weights); small ones from the
    # workspace (``PACK_WORKSPACE_MAX_BYTES``)
    if block * weight.itemsize < _CACHE_LINE:
        packed = np.empty(shape, weight.dtype)
    elif math.prod(shape) * weight.itemsize <= PACK_WORKSPACE_MAX_BYTES:
        packed = workspace.get("packed", shape, weight.dtype)
    else:
        packed = aligned_empty(shape, weight.dtype, min_bytes=0)
    _kernels.pack_weight(weight, packed, threads, tap_major)
    return packed


def _takes_lanes(summed, produced, width, taps, images=1):
    """The lane tile's rule (``LANE_MIN_CHANNELS``, ``LANE_FEW_CHANNELS``,
    ``LANE_ONE_VECTOR_ROWS``, ``LANE_WIDE_ROWS``) for a correlation of ``taps`` taps that sums
    ``summed`` channels into ``produced`` ones on maps ``width`` wide, in a batch of
    ``images``."""
    tile, vectors = _kernels.lane_tile_width(width), lane_vectors(produced, width, images)
    return (_kernels.LANE_TILE and LANE_MIN_CHANNELS is not None
            and (summed >= LANE_MIN_CHANNELS
                 or (LANE_FEW_CHANNELS is not None and summed >= LANE_FEW_CHANNELS
                     and summed * taps >= LANE_MIN_SUMS))
            and vectors >= LANE_MIN_VECTORS
            and produced % _kernels.lane_block(4, vectors) == 0
            and tile > 0 and (vectors == 2 or tile == width or LANE_ONE_VECTOR_ROWS)
            and taps <= _kernels.LANE_TAPS
            and (LANE_WIDE_ROWS or width % WIDE_ROW != 0))


def takes_blocks(channels, out_channels, out_w, taps, stride, groups, itemsize=4):
    """The channel-blocked forward's rule (``BLOCKED``) for elements of ``itemsize`` bytes."""
    return (BLOCKED is not None and _blocks.TILE and itemsize == 4 and groups == 1
            and (tuple(stride) != (1, 1) or BLOCKED == "always")
            and channels % _blocks.BLOCK_CHANNELS == 0
            and out_channels % _blocks.BLOCK_OUT == 0
            and out_w >= _blocks.BLOCK_POSITIONS and taps <= _blocks.MAX_TAPS)


def _skips_padding(first, last, width):
    """Whether the lane tile, on rows ``width`` wide, skips every product of tap t outside the
    columns [first[t], last[t]): in each of its tiles such columns are at most the first two
    or the last two (``_lane_columns`` in direct_conv.pyx), or all of them."""
    tile = _kernels.lane_tile_width(width)
    for col in range(0, width, tile):
        before = np.clip(first - col, 0, tile)
        after = np.clip(col + tile - last, 0, tile)
        reads = before + after < tile
        if (reads & ((np.minimum(before, after) > 0) | (np.maximum(before, after) > 2))).any():
            return False
    return True


def lane_vectors(produced, width=None, images=1):
    """The vectors of output channels per lane tile for ``produced`` of them on outputs
    ``width`` wide, in a batch of ``images``: two (32 float32 channels) where they are a whole
    number of such blocks, else one; one also on outputs 8 wide from
    ``LANE_ONE_VECTOR_MIN_IMAGES`` images on."""
    if (width == 8 and LANE_ONE_VECTOR_MIN_IMAGES is not None
            and images >= LANE_ONE_VECTOR_MIN_IMAGES):
        return 1
    return 2 if produced % _kernels.lane_block(4, 2) == 0 else 1


def pointwise_row(summed, produced, plane, images):
    """The row width (one of ``LANE_WIDTHS``) a 1×1 convolution that sums ``summed`` channels
    into ``produced`` ones on a batch of ``images`` planes of ``plane`` positions runs its lane
    tile on, or None (the lane tile's rule, ``_takes_lanes``). Its positions are independent,
    so any plane that is a whole number of rows of such a width is one: 32×32 as 128 rows of
    8. Only with two vectors of output channels (with one, BLAS was faster), not on rows of 4
    (not measured against BLAS), and only for batches of at most ``POINTWISE_MAX_IMAGES``:
    with more, each thread multiplies whole images by BLAS (``team_matmul``), which packs the
    planes it reads, while the lane tile reads C planes at once a row at a time, a pattern
    the hardware prefetcher does not follow once they leave the cache."""
    if images > POINTWISE_MAX_IMAGES:
        return None
    for width in sorted(set(LANE_WIDTHS) - {4}, reverse=True):
        if (plane % width == 0 and lane_vectors(produced) == 2
                and _takes_lanes(summed, produced, width, 1)):
            return width
    return None


_NO_SHIFT = np.zeros(1, np.intp)
_NO_OFFSET = np.zeros((1, 2), np.intp)


def pointwise(x, weight, bias, row):
    """y[n, o, p] = bias[o] + Σ_c weight[o, c] · x[n, c, p], the 1×1 convolution (stride 1,
    unpadded) on the lane tile, its planes read in place as rows ``row`` wide
    (``pointwise_row``): x (N, C, H, W) C-contiguous, weight (O, C, 1, 1) any strides, bias
    (O,) or None. No copy of x: a plane is its own grid."""
    n, channels, height, width = x.shape
    rows = height * width // row
    y = np.empty((n, weight.shape[0], height, width), x.dtype)
    threads = get_num_threads()
    packed, tap_major = _pack_lanes(weight, threads, row)
    _kernels.conv_lanes(x.reshape(n, channels, -1), packed, _NO_SHIFT, _NO_OFFSET,
                        (0, rows, 0, row), y.reshape(n, -1, rows, row),
                        absent(x.dtype) if bias is None else bias, row, 0, threads, 1,
                        tap_major)
    return y


def _pack_lanes(weight, threads, width, images=1):
    """``_pack`` for the lane tile on outputs ``width`` wide in a batch of ``images``: blocks
    of ``lane_block`` of ``lane_vectors(R, width, images)`` rows, tap by tap for two-row tiles
    (``lane_tile_rows``). Returns the packed weight and whether it is tap by tap
    (``conv_lanes``'s ``tap_major``)."""
    vectors = lane_vectors(weight.shape[0], width, images)
    tap_major = _kernels.lane_tile_rows(width, vectors) == 2
    return (_pack(weight, threads, _kernels.lane_block(weight.itemsize, vectors), tap_major),
            tap_major)


class DirectPlan:
    """Grid geometry of one convolution: x (N, C, H, W) padded by ((top, bottom), (left,
    right)) to (Hp, Wp) and split into sh·sw phase planes of Hq × Wq (Hq = ceil(Hp / sh), Wq =
    ceil(Wp / sw)), kernel (kh, kw) with dilation (dh, dw), output (N, O, Ho, Wo) with
    Ho = (Hp − dh·(kh − 1) − 1) div sh + 1. Stride 1 has one phase, the padded plane, with
    rows Wq = W + max(left, right, Wo − W) wide: a reading past a row's end lands in the
    next row's left padding, so one gap serves both sides.

    Tap t = i·kw + j reads grid position p + shifts[t] for the output at p = r·Wq + col, with
    shifts[t] = phase(t)·Hq·Wq + ((i·dh) div sh)·Wq + (j·dw) div sw. The forward may lay
    the phases' rows interleaved instead (``interleaved``): rows sh·sw·Wq wide, phase p's row
    i at i·sh·sw·Wq + p·Wq, so ``forward_shifts``[t] = phase(t)·Wq + ((i·dh) div sh)·sh·sw·Wq
    + (j·dw) div sw and the output at p = r·sh·sw·Wq + col (``forward_width``)."""

    def __init__(self, x_shape, weight_shape, padding, dilation, stride=(1, 1), groups=1):
        self.n, channels, height, width = x_shape
        out_channels, _, kh, kw = weight_shape
        # per group: each group is a convolution of its own on a slice of the channels
        self.groups = groups
        self.channels, self.out_channels = channels // groups, out_channels // groups
        (self.top, bottom), (self.left, right) = padding
        self.dilation = dh, dw = tuple(dilation)
        self.kernel = kh, kw
        self.stride = sh, sw = tuple(stride)
        self.height, self.width = height, width
        self.padded = padded_height, padded_width = (height + self.top + bottom,
                                                     width + self.left + right)
        self.out_h = (padded_height - dh * (kh - 1) - 1) // sh + 1
        self.out_w = (padded_width - dw * (kw - 1) - 1) // sw + 1
        self.phase_h = -(-padded_height // sh)
        if self.stride == (1, 1):
            # One gap of max(left, right) zeros between consecutive rows serves as the right
            # padding of one and the left padding of the next: fewer wasted positions per row
            # (the row must still hold an output row).
            self.grid_width = width + max(self.left, right, self.out_w - width)
        else:
            self.grid_width = -(-padded_width // sw)
        self.phase_length = self.phase_h * self.grid_width
        self.taps = kh * kw
        self.macs = groups * self.n * self.channels * self.out_channels * self.taps \
            * self.out_h * self.out_w
        offsets = [(i * dh, j * dw) for i in range(kh) for j in range(kw)]
        # each tap's (row, column) offset (the lane tile skips its padding products)
        self.tap_offsets = np.array(offsets, np.intp).reshape(-1, 2)
        self.tap_phases = [(di % sh) * sw + dj % sw for di, dj in offsets]

        def tap_shifts(phase_stride, row_stride):
            # tap t's shift on a grid whose phases lie phase_stride apart, rows row_stride
            return np.array([phase * phase_stride + (di // sh) * row_stride + dj // sw
                             for phase, (di, dj) in zip(self.tap_phases, offsets)], np.intp)
        # within its phase (the output gradient's grid of the strided input gradient)
        self.local_shifts = tap_shifts(0, self.grid_width)
        self.shifts = tap_shifts(self.phase_length, self.grid_width)
        reach = int(self.shifts.max())
        self.positions = self.out_h * self.grid_width
        # The forward's grid: with a stride, the phases' rows interleaved (row i of every
        # phase, then row i + 1) where that takes no more runs than whole phase planes one
        # after another: a tile then reads one stretch of each channel instead of sh·sw. (The
        # weight gradient keeps the planes: on interleaved rows its position-major copy of
        # the output gradient would be sh·sw times as long.)
        self.runs = position_runs(self.out_h, self.out_w, self.grid_width)
        self.forward_width, self.forward_phase_stride = self.grid_width, self.phase_length
        self.forward_shifts = self.shifts
        if (self.stride != (1, 1) and INTERLEAVE_MIN_COLUMNS is not None
                and self.out_w >= INTERLEAVE_MIN_COLUMNS):
            runs = position_runs(self.out_h, self.out_w, sh * sw * self.grid_width)
            if len(runs) <= len(self.runs):
                self.runs = runs
                self.forward_width = sh * sw * self.grid_width
                self.forward_phase_stride = self.grid_width
                self.forward_shifts = tap_shifts(self.grid_width, self.forward_width)
        self.interleaved = self.forward_width != self.grid_width
        tile = _kernels.POSITION_BLOCK
        # input grid: the forward's last run reads up to a run past the last output, the
        # weight gradient every position of the output's rows
        self.x_length = max(sh * sw * self.phase_length,
                            _run_end(self.runs, self.forward_width)
                            + int(self.forward_shifts.max()),
                            self.positions + reach)
        # output gradient grid: the input gradient at phase position q reads q − shift (that
        # phase's taps); ``front`` zeros keep those reads inside the plane
        self.first_input = self.top * self.grid_width + self.left    # stride 1 only
        if self.stride == (1, 1):
            self.front = max(0, reach - self.first_input)
            self.input_runs = position_runs(height, width, self.grid_width)
            self.gy_length = self.front + max(
                self.first_input + _run_end(self.input_runs, self.grid_width),
                self.positions)
        else:
            # the input gradient's tiles for one phase of x's cells start up to a row into
            # the phase grid and overhang its last cell by up to a tile
            self.front = int(self.local_shifts.max())
            self.gy_length = self.front + max(self.phase_length + self.grid_width + tile,
                                              self.positions)
        # Small maps: the batch's planes of a channel stacked into one tall plane, `period`
        # rows apart (the zero rows between two images serve as the bottom padding of one and
        # the top padding of the next), so that a tile's runs go on into the next image
        # instead of each image ending in a partly used tile.
        self.stack_period = self.stack_runs = self.stack_input_runs = None
        if self.stride == (1, 1) and STACK_MAX_TILE_SHARE is not None and self.n > 1:
            period = height + max(self.top, bottom, self.out_h - height)
            runs = position_runs(self.out_h, self.out_w, self.grid_width, self.n, period)
            if _fewer_tiles(runs, self.runs, self.n):
                self.stack_period, self.stack_runs = period, runs
            # the input gradient's too, where each image's output gradient fits its slot
            runs = position_runs(height, width, self.grid_width, self.n, period)
            if self.out_h - self.top <= height and _fewer_tiles(runs, self.input_runs, self.n):
                self.stack_period, self.stack_input_runs = period, runs

        # The position tiles: each row's taps that do not read whole padding rows (the
        # forward's output rows at any stride, the stride-1 input gradient's input rows), and
        # whether stacked tiles take one row of RUNS images each (``_kernels.conv``'s
        # ``interleave``)
        self.input_row_taps = None
        self.row_taps = _row_taps(self.out_h, kh, kw,
                                  lambda r, i: 0 <= r * sh + i * dh - self.top < height)
        if self.stride == (1, 1):
            self.input_row_taps = _row_taps(height, kh, kw,
                                            lambda r, i: 0 <= r + self.top - i * dh < self.out_h)
        self.interleave = (self.row_taps is not None and self.stack_runs is not None
                           and _interleaves(self.stack_runs, self.n, self.stack_period))
        self.input_interleave = (self.input_row_taps is not None
                                 and self.stack_input_runs is not None
                                 and _interleaves(self.stack_input_runs, self.n,
                                                  self.stack_period))

    def team(self):
        """The threads this convolution's kernels run on, and so the embeddings of their grids
        (``_kernels.team``: one below ``PARALLEL_MIN_MACS`` multiply-adds)."""
        return _kernels.team(self.macs, get_num_threads())

    @cached_property
    def blocked(self):
        """Whether a float32 forward runs on the channel-blocked grid (``BLOCKED``, read when
        the plan is made): not where the lane tile reads x in place on outputs a whole number
        of 14 wide (``LANE_ROW_OVER_BLOCKS``) or on short rows of few channels
        (``LANE_OVER_BLOCKS_MAX_WIDTH``, ``LANE_OVER_BLOCKS_MAX_SPAN``), where it was faster
        (docs/algorithms.md)."""
        return (takes_blocks(self.channels, self.out_channels, self.out_w, self.taps,
                             self.stride, self.groups)
                and not (self.in_place is not None
                         and (_kernels.lane_tile_width(self.out_w) == LANE_ROW_OVER_BLOCKS
                              or (self.out_w <= LANE_OVER_BLOCKS_MAX_WIDTH and self.out_w
                                  * self.channels <= LANE_OVER_BLOCKS_MAX_SPAN))))

    @cached_property
    def rows(self):
        """Whether a float32 forward runs on the row tile (``ROW_TILE_MAX_SUMS``, read when
        the plan is made)."""
        return (ROW_TILE_MAX_SUMS is not None and _rows.TILE and self.stride == (1, 1)
                and self.groups == 1 and self.channels * self.taps <= ROW_TILE_MAX_SUMS
                and self.out_channels % _rows.ROW_OUT == 0
                and self.kernel[1] <= _rows.ROW_MAX_KW)

    @cached_property
    def planar(self):
        """The taps' shifts on the zero-padded planes that a blocked forward reads image by
        image (``BLOCKED_PLANAR_CHANNELS``), or None."""
        if (BLOCKED_PLANAR_CHANNELS is None or self.channels > BLOCKED_PLANAR_CHANNELS
                or self.stride[1] != 2):
            return None
        return self.tap_offsets @ np.array([self.padded[1], 1], np.intp)

    @cached_property
    def lanes(self):
        """Whether the forward runs on the lane tile (``LANE_MIN_CHANNELS``)."""
        return (self.groups == 1
                and _takes_lanes(self.channels, self.out_channels, self.out_w, self.taps,
                                 self.n))

    @cached_property
    def tap_inside(self):
        """(starts, ends), each (T, 2): tap t at output row r reads x's row r·sh + di − top,
        inside x for starts[t, 0] ≤ r < ends[t, 0], i.e. from ceil((top − di) / sh) to
        ceil((top + H − di) / sh); likewise columns ([t, 1])."""
        starts = -((self.tap_offsets - (self.top, self.left)) // self.stride)
        ends = -((self.tap_offsets - (self.top + self.height, self.left + self.width))
                 // self.stride)
        return starts, ends

    @cached_property
    def lane_reads(self):
        """The forward lane tile's (offsets (T, 2), inside): tap t reads inside x at output
        (r, col) where 0 ≤ r + offsets[t, 0] < inside[1] and 0 ≤ col + offsets[t, 1] <
        inside[3] (``tap_inside`` shifted to start at 0), for up to ceil(H / sh) rows (one
        more than some taps have on odd heights: that row's products read padding zeros,
        which is harmless)."""
        starts, ends = self.tap_inside
        rows, cols = (ends - starts).max(axis=0)
        return np.ascontiguousarray(-starts), (0, int(rows), 0, int(cols))

    @cached_property
    def in_place(self):
        """The forward lane tile reading x itself, its planes flat, instead of a grid:
        (shifts, row width, step) with x's cell (r·sh + i·dh − top, col·sw + j·dw − left) for
        tap (i, j) at output (r, col), or None. It must skip every product of padding, and it
        does where each tap reads as many rows and columns of x as every other (so that
        ``lane_reads`` bounds each tap exactly) and the padding a tap reads in a tile is at
        most its first or its last two columns; the tile's cells are 1 or 2 apart (``sw``)."""
        sh, sw = self.stride
        if not self.lanes or sw not in (1, 2):
            return None
        starts, ends = self.tap_inside
        lengths = ends - starts
        if (lengths != lengths[0]).any():
            return None
        if not _skips_padding(starts[:, 1], ends[:, 1], self.out_w):
            return None
        shifts = ((self.tap_offsets[:, 0] - self.top) * self.width
                  + self.tap_offsets[:, 1] - self.left)
        return np.ascontiguousarray(shifts, np.intp), sh * self.width, sw

    @cached_property
    def input_in_place(self):
        """The input gradient's lane tile reading the output gradient itself (its planes
        flat, rows ``out_w`` apart) instead of its grid: the shifts, with gy's cell (r − i·dh
        + top, col − j·dw + left) for tap (i, j) at input (r, col), or None. Each tap reads the
        rows and columns of gy exactly where its offsets and ``inside`` say; the tile must skip
        all the others (``_skips_padding``)."""
        if not self.input_lanes:
            return None
        first = self.tap_offsets[:, 1] - self.left
        if not _skips_padding(first, first + self.out_w, self.width):
            return None
        shifts = ((self.top - self.tap_offsets[:, 0]) * self.out_w
                  + self.left - self.tap_offsets[:, 1])
        return np.ascontiguousarray(shifts, np.intp)

    @property
    def input_lanes(self):
        """Whether the input gradient (stride 1: a correlation of the output gradient with the
        transposed weight) runs on the lane tile: the forward's rule with the channels'
        roles swapped, on the input's height and width."""
        return (self.stride == (1, 1) and self.groups == 1
                and _takes_lanes(self.out_channels, self.channels, self.width, self.taps))

    @property
    def grad_input_by_gemm(self):
        """Whether the input gradient should be im2col's product and col2im rather than
        ``grad_input`` (``GEMM_GRAD_INPUT_MAX_POSITIONS``,
        ``GEMM_GRAD_INPUT_MIN_CHANNELS``)."""
        return self.stride != (1, 1) and (
            self.out_h * self.out_w <= GEMM_GRAD_INPUT_MAX_POSITIONS
            or self.channels < GEMM_GRAD_INPUT_MIN_CHANNELS)

    @property
    def grad_weight_by_gemm(self):
        """Whether the weight gradient should be im2col's product rather than
        ``grad_weight`` (``GEMM_GRAD_WEIGHT_MIN_CHANNELS``)."""
        return self.stride != (1, 1) and self.channels >= GEMM_GRAD_WEIGHT_MIN_CHANNELS

    @property
    def tiles(self):
        """Register tiles per output plane of the forward."""
        return -(-len(self.runs) // _kernels.POSITION_RUNS)

    @property
    def tile_use(self):
        """The share of the register tiles' positions that are outputs (the rest: the grid's
        padding columns that runs cross and the runs' overhang)."""
        return self.out_h * self.out_w / (self.tiles * _kernels.POSITION_BLOCK)

    def beats_gemm(self):
        """Whether this plan's backward is expected to be faster than im2col + BLAS (measured
        rule: ``MIN_TILE_USE``, ``GEMM_MIN_OUT``, ``SMALL_MAP_MAX_OUT``; and wherever the input
        gradient runs on the lane tile, which wastes no positions on small maps)."""
        return (self.tile_use >= MIN_TILE_USE or self.out_channels < GEMM_MIN_OUT
                or (self.out_channels <= SMALL_MAP_MAX_OUT
                    and self.tile_use >= SMALL_MAP_MIN_TILE_USE)
                or self.input_lanes)

    def _stacked(self, x, front, first_row, first_col, reads, name):
        """x (N, C, h, w) on a grid of stacked planes, (1, C, L) with L at least ``reads``:
        image n's cell (r, col) at front + n·P + (first_row + r)·Wq + first_col + col
        (P = stack_period·Wq), zeros elsewhere."""
        plane = self.stack_period * self.grid_width
        length = max(front + self.n * plane, reads)
        grid = workspace.get(name, (1, x.shape[1], length), x.dtype)
        slots = grid[0, :, front:front + self.n * plane].reshape(x.shape[1], self.n, plane)
        # image by image, as the kernel's threads then read them (each its share of images)
        _kernels.embed(x, slots.transpose(1, 0, 2), self.grid_width,
                       first_row * self.grid_width + first_col, self.team())
        grid[0, :, :front] = 0
        grid[0, :, front + self.n * plane:] = 0
        return grid

    def _stacked_x(self, x):
        """x on the stacked grid and the forward's start: image n's output row r is row
        n·period + r of the tall output, which the kernel stores as y[n, :, r]."""
        gap = self.stack_period - self.height
        start = (gap - self.top) * self.grid_width
        grid = self._stacked(x, 0, gap, self.left, start + _run_end(self.stack_runs,
                             self.grid_width) + int(self.shifts.max()), "grid")
        return grid, start

    def _stacked_gy(self, gy):
        """The output gradient on the stacked grid and the input gradient's start: image n's
        output gradient where the forward reads its outputs, its input cells where the
        forward reads them."""
        gap = self.stack_period - self.height
        front = max(0, int(self.shifts.max()) - gap * self.grid_width - self.left)
        start = front + gap * self.grid_width + self.left
        gy_grid = self._stacked(gy, front, gap - self.top, 0, start + _run_end(
            self.stack_input_runs, self.grid_width), "gy_grid")
        return gy_grid, start

    def _x_grid(self, x, forward=False, keep=False):
        """x on its grid: the forward's (``forward``: with a stride, maybe interleaved) or
        the weight gradient's; in a new array with ``keep``, else in the workspace."""
        shape = (self.n, x.shape[1], self.x_length)
        grid = aligned_empty(shape, x.dtype) if keep else workspace.get("grid", shape, x.dtype)
        if self.stride == (1, 1):
            _kernels.embed(x, grid, self.grid_width, self.first_input, self.team())
            return grid
        phase_stride, row_stride = ((self.forward_phase_stride, self.forward_width) if forward
                                    else (self.phase_length, self.grid_width))
        _kernels.embed_phases(x, grid, self.top, self.left, *self.stride, self.phase_h,
                              self.grid_width, phase_stride, row_stride, self.team())
        return grid

    def _group(self, g, a, axis=1):
        """Group g's slice of the channel axis of ``a`` (axis 1; axis 0 for the weight and
        the bias), which has one of ``self.channels`` or ``self.out_channels`` channels per
        group."""
        if self.groups == 1:
            return a
        size = a.shape[axis] // self.groups
        return a[(slice(None),) * axis + (slice(g * size, (g + 1) * size),)]

    @property
    def shares_grid(self):
        """Whether the forward reads x on the weight gradient's grid (stride 1, not stacked),
        so that a forward before a backward may keep it (``kept_grid``)."""
        return self.stride == (1, 1) and (self.lanes or self.stack_runs is None)

    def kept_grid(self, x):
        """x on the forward's grid in an array of its own, which the backward's
        ``grad_weight`` takes instead of embedding x again (``shares_grid`` only): about x's
        memory more until then."""
        return self._x_grid(x, forward=True, keep=True)

    def forward(self, x, weight, bias, grid=None):
        """y = conv(x, weight) + bias, (N, O, Ho, Wo); x C-contiguous, or already on its grid
        (``grid``, from ``kept_grid``)."""
        if self.rows and x.dtype == np.float32:
            y = aligned_empty((self.n, self.out_channels, self.out_h, self.out_w), x.dtype)
            _rows.conv(x, weight, absent(x.dtype) if bias is None else bias, y, self.top,
                       self.left, *self.dilation, self.team())
            return y
        if self.blocked and x.dtype == np.float32:
            return self._forward_blocked(x, weight, bias)
        if self.lanes:
            y = aligned_empty((self.n, self.out_channels, self.out_h, self.out_w), x.dtype)
            offsets, inside = self.lane_reads
            if grid is None and self.in_place is not None:
                shifts, width, step = self.in_place
                grid = x.reshape(self.n, x.shape[1], -1)
            else:
                grid = self._x_grid(x, forward=True) if grid is None else grid
                shifts, width, step = self.forward_shifts, self.forward_width, 1
            packed, tap_major = _pack_lanes(weight, self.team(), self.out_w, self.n)
            _kernels.conv_lanes(grid, packed, shifts, offsets, inside, y,
                                absent(x.dtype) if bias is None else bias, width, 0,
                                self.team(), step, tap_major)
            return y
        if self.stack_runs is not None:
            grid, start = self._stacked_x(x)
            shifts, width, runs, period = (self.shifts, self.grid_width, self.stack_runs,
                                           self.stack_period)
            chunk = channel_chunk(grid.shape[2])
        else:
            grid, start = (self._x_grid(x, forward=True) if grid is None else grid), 0
            shifts, width, runs, period = self.forward_shifts, self.forward_width, self.runs, 0
            chunk = channel_chunk(self.positions)
        y = aligned_empty((self.n, self.out_channels * self.groups, self.out_h, self.out_w),
                          x.dtype)
        for g in range(self.groups):
            _kernels.conv(self._group(g, grid),
                          _pack(self._group(g, weight, axis=0), self.team()), shifts,
                          self._group(g, y),
                          absent(x.dtype) if bias is None else self._group(g, bias, axis=0),
                          width, start, runs, chunk, self.team(), period, self.row_taps,
                          self.interleave)
        return y

    def _forward_blocked(self, x, weight, bias):
        """``forward`` on the channel-blocked grid (``_blocks``): the planar grid's cells and
        shifts, 16 channels to a cell; or the same tile on zero-padded planes (``planar``)."""
        sh, sw = self.stride
        threads, x = self.team(), np.ascontiguousarray(x)
        y = aligned_empty((self.n, self.out_channels, self.out_h, self.out_w), x.dtype)
        bias = absent(x.dtype) if bias is None else bias
        by_image = self.n >= BLOCKED_BY_IMAGE * threads
        if by_image and self.planar is not None:
            planes = workspace.get("block_grid", (threads, self.channels,
                                                  math.prod(self.padded)), x.dtype)
            _blocks.conv_planar_by_image(x, planes, _pack_blocks(weight), self.planar, y, bias,
                                         self.top, self.left, sh, self.padded[1], threads)
            return y
        cells = max(sh * sw * self.phase_length,
                    (self.out_h - 1) * self.grid_width + self.out_w + int(self.shifts.max()))
        block = _blocks.BLOCK_CHANNELS
        geometry = (self.top, self.left, sh, sw, self.phase_length, self.grid_width)
        if by_image:
            scratch = workspace.get("block_grid", (threads, self.channels // block,
                                                   cells * block), x.dtype)
            _blocks.conv_by_image(x, scratch, _pack_blocks(weight), self.shifts, y, bias,
                                  *geometry, threads)
            return y
        grid = workspace.get("block_grid", (self.n, self.channels // block, cells * block),
                             x.dtype)
        _blocks.embed(x, grid, *geometry, threads)
        _blocks.conv(grid, _pack_blocks(weight), self.shifts, y, bias, self.grid_width,
                     threads)
        return y

    def grad_input(self, gy, weight):
        """∂L/∂x: the output gradient on the input's grid (or itself, where the lane tile
        reads it in place: ``input_in_place``), correlated with the transposed weight at the
        negated shifts; only the positions inside the padding are stored. With a stride, one
        such correlation per phase plane, over that phase's taps."""
        if self.input_in_place is not None:
            # the lane tile reads gy itself: no grid
            gx = np.empty((self.n, self.channels, self.height, self.width), gy.dtype)
            self._grad_input_lanes(gy.reshape(self.n, gy.shape[1], -1), weight, gx,
                                   self.input_in_place, self.out_w, 0)
            return gx
        if self.stack_input_runs is not None and not self.input_lanes:
            gy_grid, start = self._stacked_gy(gy)
            # stride 1: where the correlation starts, its runs, channel chunk and period
            layout = (start, self.stack_input_runs, channel_chunk(gy_grid.shape[2]),
                      self.stack_period, self.input_interleave)
        else:
            gy_grid = workspace.get("gy_grid", (self.n, gy.shape[1], self.gy_length), gy.dtype)
            _kernels.embed(gy, gy_grid, self.grid_width, self.front, self.team())
            layout = ((self.front + self.first_input, self.input_runs,
                       channel_chunk(self.positions), 0, False)
                      if self.stride == (1, 1) else None)
        gx = np.empty((self.n, self.channels * self.groups, self.height, self.width), gy.dtype)
        for g in range(self.groups):
            self._grad_input_group(self._group(g, gy_grid), self._group(g, weight, axis=0),
                                   self._group(g, gx), layout)
        return gx

    def _grad_input_group(self, gy_grid, weight, gx, layout):
        if self.input_lanes:
            self._grad_input_lanes(gy_grid, weight, gx, -self.shifts, self.grid_width,
                                   self.front + self.first_input)
            return
        weight_t = weight.transpose(1, 0, 2, 3)                       # (C, O, kh, kw)
        no_bias = absent(gy_grid.dtype)
        if self.stride == (1, 1):
            start, runs, chunk, period, interleave = layout
            _kernels.conv(gy_grid, _pack(weight_t, self.team()), -self.shifts, gx, no_bias,
                          self.grid_width, start, runs, chunk, self.team(), period,
                          self.input_row_taps, interleave)
            return
        sh, sw = self.stride
        weight_t = weight_t.reshape(self.channels, self.out_channels, self.taps)
        for a in range(sh):
            for b in range(sw):
                # the input cells of this phase: rows ≡ a − top (mod sh), likewise columns,
                # written in place (a strided view of gx) from their window of the phase grid
                r0, c0 = (a - self.top) % sh, (b - self.left) % sw
                target = gx[:, :, r0::sh, c0::sw]
                taps = [t for t, k in enumerate(self.tap_phases) if k == a * sw + b]
                if not taps:
                    target[...] = 0
                    continue
                if target.size == 0:
                    continue
                first_row, first_col = (r0 + self.top) // sh, (c0 + self.left) // sw
                _kernels.conv(gy_grid, _pack(weight_t[:, :, taps], self.team()),
                              -self.local_shifts[taps], target, no_bias, self.grid_width,
                              self.front + first_row * self.grid_width + first_col,
                              position_runs(*target.shape[2:], self.grid_width),
                              channel_chunk(self.positions), self.team())

    def _grad_input_lanes(self, gy_grid, weight, gx, shifts, width, start):
        """The input gradient on the lane tile, from gy on its grid or in place: tap t at
        input (r, col) reads gy at (r, col) − tap_offsets[t] + (top, left)."""
        inside = (-self.top, self.out_h - self.top, -self.left, self.out_w - self.left)
        packed, tap_major = _pack_lanes(weight.transpose(1, 0, 2, 3), self.team(), self.width)
        _kernels.conv_lanes(gy_grid, packed, shifts, -self.tap_offsets, inside, gx,
                            absent(gy_grid.dtype), width, start, self.team(), 1, tap_major)

    def grad_weight(self, x, gy, grid=None):
        """∂L/∂weight (O, C/groups, kh, kw): Σ over images and positions of gy · shifted x,
        summed over a fixed split of the batch into chunks; x on its grid already where the
        forward kept it (``grid``)."""
        grid = self._x_grid(x) if grid is None else grid
        if self.groups == 1:
            return self._grad_weight_group(grid, gy)
        return np.concatenate([self._grad_weight_group(self._group(g, grid), self._group(g, gy))
                               for g in range(self.groups)])

    @cached_property
    def grad_masks(self):
        """The weight-gradient kernel's tap masks, (T' / TG, Ho) by rows and (T' / TG, Wo) by
        columns (T' = taps rounded up to TG): bit b of [g, r] set where tap g·TG + b at
        output row r reads a row of x (not padding), likewise for columns; the rounding's
        taps are never set."""
        block = _kernels.TAP_BLOCK
        padded = _round_up(self.taps, block)
        starts, ends = self.tap_inside
        bits = np.left_shift(1, np.arange(padded) % block)[:self.taps]
        groups = np.arange(self.taps) // block

        def masks(axis, count):
            at = np.arange(count)[:, None]
            inside = (at >= starts[:, axis]) & (at < ends[:, axis])
            out = np.zeros((padded // block, count), np.intc)
            np.add.at(out.T, (slice(None), groups), np.where(inside, bits, 0))
            return out
        return masks(0, self.out_h), masks(1, self.out_w)

    def _grad_weight_group(self, grid, gy):
        width = grad_tile_width(self.out_channels)
        padded_out = _round_up(self.out_channels, width)
        padded_taps = _round_up(self.taps, _kernels.TAP_BLOCK)
        shifts = np.zeros(padded_taps, np.intp)          # extra taps: computed, discarded
        shifts[:self.taps] = self.shifts
        block_bytes = self.channels * padded_taps * padded_out * gy.itemsize
        chunks = max(1, min(self.n, MAX_CHUNKS, PARTIALS_BYTES // block_bytes))
        partials = workspace.get("partials", (chunks, self.channels, padded_taps, padded_out),
                                 gy.dtype)
        threads = self.team()
        scratch = workspace.get("gy_scratch", (threads, self.positions, width), gy.dtype)
        _kernels.weight_grad(gy, grid, shifts, *self.grad_masks, self.positions,
                             self.grid_width, partials, scratch, width, threads,
                             MASKED_MAX_TAPS is None or self.taps <= MASKED_MAX_TAPS)
        total = np.empty((self.out_channels, self.channels, self.taps), gy.dtype)
        _kernels.sum_partials(partials, total, threads)
        return total
