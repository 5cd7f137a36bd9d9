"""3×3, stride-1 (or dilated) convolution by Winograd's minimal filtering F(m×m, 3×3), m = 4
or 2 (Lavin & Gray 2016, "Fast Algorithms for Convolutional Neural Networks").

Each m×m block of outputs comes from an α×α patch of the input, α = m + 2: with the transforms
of ``minigrad/_kernels/winograd.pyx``, V = Bᵀ d B (per patch and input channel), U = G g Gᵀ
(per filter), the block is Aᵀ (Σ_c U ⊙ V) A. Summed over channels, each of the α² points ξ is
one matrix product over the batch's tiles, M[ξ] = U[ξ] · V[ξ], on minigrad's threads
(``team_matmul``: BLAS, or the float32 product of ``minigrad/_kernels/gemm_tile.h``): 36
multiplies per 16 outputs and channel pair with m = 4 (4× fewer than the direct sum's 144),
16 per 4 with m = 2 (2.25× fewer).

Where a plane's rows hold at least 8 tiles (undilated, float32, AVX-512), both passes run
image by image (``BY_IMAGE``, ``_kernels.forward_by_image``, ``backward_by_image``): one
thread takes an image through its transforms and its α² products, so that its V and M stay
in that core's cache and no thread waits for another between the steps. Where rows hold
fewer tiles, and with a dilation, the transforms run in lanes (16 planes at once, one per
vector lane); there the float32 forward takes a lane group at a time the same way
(``BY_GROUP``, ``_kernels.forward_by_group``), where the groups' products are wide enough and
the batch has enough groups. Elsewhere the batch goes in chunks, each step of a chunk split
over the threads.

A dilated 3×3 convolution (dilation (dh, dw) dividing the input's sides and the padding) is
dh·dw stride-1 ones, on the interleaved sub-grids of its input and output: each sub-grid gets
a tile grid of its own, and the kernels read and write the sub-grids in place (no copies of
the input or the output).

The backward pass is the same computation run backwards, exactly (each step is linear):
dM = A gy Aᵀ per output tile, then ∂L/∂V[ξ] = U[ξ]ᵀ · dM[ξ] taken back through Bᵀ · B into
the input's cells, and ∂L/∂U[ξ] = Σ_tiles dM[ξ] · V[ξ]ᵀ taken back through G · Gᵀ into the
filter's taps. Its products are as large as the forward's, so the whole pass has the saving.

Rounding: F(2×2)'s transforms only add, subtract and halve, so its results differ from the
direct sum by a few units in the last place of the largest terms; F(4×4)'s scale by up to 8
and 1/24 and lose a few bits more (both measured in tests/test_conv_winograd.py against the
float64 reference, within the convolution tests' float32 tolerances).

A larger odd square kernel k×k is cut into 3×3 blocks (``block_offsets``: 4 for 5×5, 9 for
7×7), each a 3×3 convolution of the input shifted by its offset; their sum is one product per
transform point with the blocks' inputs stacked as B·C channels: 9 multiplies per output and
channel pair for 5×5 instead of 25, with F(4×4)'s rounding.

Extra memory (per thread, reused by later calls; ``release_workspace()`` frees it): the tile
matrices of one chunk of images, V (α², B·C, T) and M (α², O, T) for T tiles, at most
``CHUNK_BYTES`` together, or U's size where U is larger (at least one image; on small maps at
least one group of 16 lane planes, ``minigrad/_kernels/winograd.pyx``); the transformed
filters U (α², O, B·C), made again by the backward pass rather than kept from the forward; in
backward one more (α², O, B·C) for ∂L/∂U. Image by image: per thread one image's V and M and
a 512 KiB panel for the products instead of the chunk's; in backward ``SUM_SHARES`` partial
sums of ∂L/∂U, each U's size. Group by group (forward): per thread one lane group's V and its
products for ``GROUP_OUT_BLOCK`` output channels, and the panel.
"""

import math

import numpy as np

from .._kernels import winograd as _kernels
from ..threads import get_num_threads
from .team_matmul import matmul, matmul_slabs
from .workspace import absent, aligned_empty, chunk_budget, workspace

#: Bound on one chunk's tile matrices V and M: small enough that the transforms' output is
#: still in cache when the products read it (the machine's ``chunk_budget``), unless the
#: transformed filters U are larger: every chunk reads all of U, and chunks smaller than U
#: spend more time re-reading it than they save.
CHUNK_BYTES = chunk_budget()
#: Entries between the end of one ξ plane of the tile matrices and the start of the next: with
#: planes a power of two apart, the α² entries of a tile would fall on the same cache sets.
PLANE_GAP = 16
#: The image-by-image backward sums ∂L/∂U in this many partials (fewer for a smaller batch),
#: each over a fixed share of the images: work for up to as many threads, for as many times
#: U's memory (2, 4, 8 or 16 ran alike on two threads).
SUM_SHARES = 8
#: Run both float32 passes by rows image by image, each image's transforms and products on one
#: thread (``_kernels.forward_by_image``, ``backward_by_image``), rather than in chunks whose
#: steps each split over the threads: no waiting between the steps, no Python between the
#: chunks (tests switch it; docs/algorithms.md has the measurements).
BY_IMAGE = _kernels.BY_IMAGE
#: In lanes (rows of few tiles, dilated convolutions), run the float32 forward lane group by
#: lane group (``_kernels.forward_by_group``): each group's transforms and products on one
#: thread, in its core's cache, its products ``GROUP_OUT_BLOCK`` output channels at a time.
#: Only where a group's products have at least ``GROUP_MIN_COLUMNS`` columns (each group
#: reads all of U: on planes of one tile, 16 columns, the chunked products split by points
#: were faster) and the groups keep at least ``GROUP_MIN_USE`` of the threads' lanes busy (a
#: batch of one group leaves the other threads idle). The backward too, where the
#: transformed filters U take at most ``GROUP_BACKWARD_MAX_FILTERS`` of the memory of a
#: group's V and dM: each group reads U and adds into a U-sized partial sum, which for larger
#: U left the core's cache. docs/algorithms.md has the measurements.
BY_GROUP = True
GROUP_OUT_BLOCK = 64
GROUP_MIN_COLUMNS = 64
GROUP_MIN_USE = 0.8
GROUP_BACKWARD_MAX_FILTERS = 0.5
#: True: use Winograd where the rules below expect it to be faster; a tile size (2 or 4):
#: that one wherever Winograd can compute the convolution (tests); False: never.
USE_WINOGRAD = True
#: Where Winograd is faster than the direct kernels and im2col + BLAS (measured rules,
#: docs/algorithms.md): the products must have at least ``MIN_CHANNELS`` rows and columns
#: (16 channels a side were as fast either way), the m×m tiles must cover the output with
#: at most a ``1 − MIN_TILE_USE`` share of dropped outputs (4×4 tiles on a 6×6 map drop 28 of
#: 64: there 2×2 tiles), and the batch must have ``MIN_TILES`` tiles, ``SHALLOW_MIN_TILES``
#: where the products are shallow, C·O / (C + O) < ``DEEP``: the filters are transformed on
#: every call, a cost spread over the batch's tiles (at batch 1 it did not pay).
MIN_CHANNELS = 32
MIN_TILE_USE = 0.6
MIN_TILES = 32
SHALLOW_MIN_TILES = 256
DEEP = 48
#: Kernels larger than 3×3 transform the input once per 3×3 block: they paid only with
#: products at least ``BLOCKS_MIN_DEPTH`` deep (over the blocks' B·C channels) on maps of
#: more than ``BLOCKS_MIN_POSITIONS`` outputs.
BLOCKS_MIN_DEPTH = 32
BLOCKS_MIN_POSITIONS = 64
#: The tile sizes, preferred first: F(4×4, 3×3) multiplies 36 times per 16 outputs, F(2×2)
#: 16 times per 4, and its tile matrices are 2.25 / 4 of the size per output.
TILE_SIZES = (4, 2)

#: G for each tile size m (Lavin & Gray's points: 0, ±1; 0, ±1, ±2, ±½)
_G = {2: np.array([[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]]),
      4: np.array([[1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6],
                   [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1]])}


def tile_size(kernel, stride, dilation, groups, channels, out_channels, n, out_h, out_w,
              mode=True, height=None, width=None, padding=None):
    """The tile size m of the F(m×m, 3×3) this convolution runs by, or None for another
    algorithm: stride 1, ungrouped, a 3×3 kernel or a larger odd square one (cut into 3×3
    blocks, ``WinogradPlan``; undilated, padded by at least k − 3 on every side, so that every
    block's input padding is ≥ 0), and the measured rules above (``mode`` True), or the tile
    size ``mode`` itself. A dilated 3×3 qualifies when its dilation divides the input (height
    × width) and every side's padding: then each of its interleaved sub-grids is a stride-1
    convolution of its own, and the rules see the batch of sub-grids."""
    size = kernel[0]
    if (kernel[0] != kernel[1] or size < 3 or size % 2 == 0 or tuple(stride) != (1, 1)
            or groups != 1 or mode is False
            or not _dilation_fits(dilation, height, width, padding)):
        return None
    if size > 3 and (tuple(dilation) != (1, 1) or padding is None
                     or min(min(side) for side in padding) < size - 3):
        return None
    if mode is not True:
        return mode
    dh, dw = dilation
    n, out_h, out_w = n * dh * dw, out_h // dh, out_w // dw
    channels *= len(block_offsets(size)) ** 2       # the products' depth
    if min(channels, out_channels) < MIN_CHANNELS:
        return None
    depth = channels * out_channels / (channels + out_channels)
    if size > 3 and (depth < BLOCKS_MIN_DEPTH or out_h * out_w <= BLOCKS_MIN_POSITIONS):
        return None
    deep = depth >= DEEP
    for m in TILE_SIZES:
        tiles = -(-out_h // m) * -(-out_w // m)
        if out_h * out_w >= MIN_TILE_USE * m * m * tiles:
            return m if n * tiles >= (MIN_TILES if deep else SHALLOW_MIN_TILES) else None
    return None


def _dilation_fits(dilation, height, width, padding):
    """No dilation, or one that divides the input's sides and every padding (so that all its
    sub-grids have one shape)."""
    dh, dw = dilation
    if dh == dw == 1:
        return True
    if padding is None:
        return False
    (top, bottom), (left, right) = padding
    return not (height % dh or top % dh or bottom % dh or width % dw or left % dw
                or right % dw)


def block_offsets(size):
    """The offsets a of the 3×3 blocks a k×k kernel (k odd) is cut into along one axis: 0, 2,
    …, k − 3. Block 0 takes taps 0–2; each later block its last two taps (its first, the
    previous block's last, is zero in it)."""
    return tuple(range(0, size - 2, 2))


class WinogradPasses:
    """The passes of a Winograd plan, chunk by chunk of the batch; a plan supplies its tile
    layout's steps. Forward: the input's points V (``_input_tiles``), the products M = U · V
    (``_products``), the output (``_output_tiles``). Backward, each step's adjoint: dM
    (``_output_grad``); for the weight, V again and ∂L/∂U = dM · Vᵀ summed over the chunks
    (``_grad_u_products`` into ``_grad_u_buffer``), then the filters' adjoint
    (``_filter_grad``); for the input, ∂L/∂V = Uᵀ · dM in V's buffer (``_grad_v_products``)
    and the input's adjoint (``_input_grad``). ``_tiles`` gives a chunk's V and M buffers; the
    plan also sets n, out_channels, out_h, out_w, chunk and scratch_length."""

    def _chunks(self):
        for start in range(0, self.n, self.chunk):
            yield start, min(self.n, start + self.chunk)

    def _scratch(self, threads, dtype):
        return workspace.get("winograd_scratch", (threads, self.scratch_length), dtype)

    def forward(self, x, u, bias):
        """y (N, O, Ho, Wo) = conv(x, g) + bias, for U = ``transform_weight(g)``."""
        y = aligned_empty((self.n, self.out_channels, self.out_h, self.out_w), x.dtype)
        bias = absent(x.dtype) if bias is None else bias
        threads = get_num_threads()
        scratch = self._scratch(threads, x.dtype)
        for start, stop in self._chunks():
            v, products = self._tiles(stop - start, x.dtype)
            self._input_tiles(x[start:stop], v, scratch, threads)
            self._products(u, v, products)
            self._output_tiles(products, y[start:stop], bias, scratch, threads)
        return y

    def backward(self, x, u, gy, need_x, need_weight):
        """(∂L/∂x or None, ∂L/∂weight (O, C, k, k) or None) for the output gradient gy; U
        (``transform_weight``) is read only for ∂L/∂x (None without ``need_x``)."""
        threads = get_num_threads()
        scratch = self._scratch(threads, x.dtype)
        gx = np.empty_like(x) if need_x else None
        # the first chunk overwrites it; only an empty batch (no chunk) leaves it zero
        grad_u = self._grad_u_buffer(x.dtype) if need_weight else None
        if need_weight and not self.n:
            grad_u[...] = 0
        for start, stop in self._chunks():
            v, products = self._tiles(stop - start, x.dtype)
            self._output_grad(gy[start:stop], products, scratch, threads)
            if need_weight:
                self._input_tiles(x[start:stop], v, scratch, threads)
                self._grad_u_products(products, v, grad_u, start > 0)
            if need_x:    # V's buffer is free again: it takes ∂L/∂V
                self._grad_v_products(u, products, v)
                self._input_grad(v, gx[start:stop], scratch, threads)
        return gx, self._filter_grad(grad_u, threads) if need_weight else None


class WinogradPlan(WinogradPasses):
    """The tile grid of one convolution: x (N, C, H, W) padded by ((top, bottom), (left,
    right)), output (N, O, Ho, Wo) covered by Th × Tw tiles of m×m (m = ``tile``,
    Th = ceil(Ho / m)), or with dilation (dh, dw) each of its dh·dw sub-grids by Th × Tw tiles
    (Th = ceil(Ho / (dh·m))); the batch processed in chunks of ``chunk`` images. A k×k kernel
    (k odd) runs as the sum of 3×3 ones, its blocks at (a, b) (``block_offsets``), each a 3×3
    convolution of x padded by (top − a, left − b): the products of one transform point take
    the blocks' inputs as B·C channels."""

    def __init__(self, x_shape, weight_shape, padding, itemsize, tile=4, dilation=(1, 1)):
        # only what ``tile_size`` lets through: 3×3 or larger odd square kernels, stride 1,
        # ungrouped, a dilation that divides the input and the padding
        self.n, self.channels, self.height, self.width = x_shape
        self.out_channels, _, self.kernel, _ = weight_shape
        (self.top, bottom), (self.left, right) = padding
        self.dh, self.dw = dilation
        self.out_h = self.height + self.top + bottom - self.dh * (self.kernel - 1)
        self.out_w = self.width + self.left + right - self.dw * (self.kernel - 1)
        self.blocks = [(a, b) for a in block_offsets(self.kernel)
                       for b in block_offsets(self.kernel)]
        # the same offsets as the image-by-image kernels take them
        self.block_array = np.array(self.blocks, np.intp).reshape(-1, 2)
        self.rows = len(self.blocks) * self.channels      # of V, and the products' depth
        self.tile = m = tile
        self.points = (m + 2) ** 2
        # a tile grid per sub-grid of the dilation, (Ho / dh) × (Wo / dw) outputs each
        grids = self.dh * self.dw
        self.tiles_h = -(-self.out_h // (self.dh * m))
        self.tiles_w = -(-self.out_w // (self.dw * m))
        self.per_image = grids * self.tiles_h * self.tiles_w
        # group by group: the batch's lane planes (an image's sub-grids each), their groups,
        # and the columns of one group's products
        self.lane_planes = self.n * grids
        self.lane_groups = -(-self.lane_planes // _kernels.LANE_GROUP)
        self.group_columns = _kernels.LANE_GROUP * self.tiles_h * self.tiles_w
        # in lanes, one span of cells serves every block (``_kernels.forward_by_group``)
        reach = max(max(a // self.dh, b // self.dw) for a, b in self.blocks)
        self.scratch_length = _kernels.scratch_length(m, self.tiles_h, self.tiles_w,
                                                      self.dh, self.dw, reach)
        per_image_bytes = (self.points * (self.rows + self.out_channels) * self.per_image
                           * itemsize)
        filter_bytes = self.points * self.out_channels * self.rows * itemsize
        self.chunk = max(1, min(self.n, max(CHUNK_BYTES, filter_bytes)
                                // max(per_image_bytes, 1)))
        # the products split by whole points where U is at least the chunk's V and M: each
        # thread then reads only its points' U, and the smaller V and M cross cores instead
        self.by_points = filter_bytes >= self.chunk * per_image_bytes
        if _kernels.in_lanes(self.tiles_w, self.dh, self.dw):
            # whole groups of lane planes (at least one, past CHUNK_BYTES if need be): a short
            # group leaves vector lanes empty, and its thread idle while the others work
            whole = _kernels.LANE_GROUP // math.gcd(_kernels.LANE_GROUP, grids)
            self.chunk = max(1, min(self.n, max(whole, self.chunk - self.chunk % whole)))

    @property
    def dilation(self):
        return self.dh, self.dw

    def _by_image(self, dtype):
        """Whether the passes run image by image (``BY_IMAGE``): float32, by rows."""
        return (BY_IMAGE and dtype == np.float32 and self.dilation == (1, 1)
                and not _kernels.in_lanes(self.tiles_w))

    def _image_work(self, threads, dtype):
        return workspace.get("winograd_work", (threads, _kernels.by_image_length(
            self.tile, self.rows, self.out_channels, self.tiles_h, self.tiles_w, PLANE_GAP)),
            dtype)

    def _by_group(self, dtype, threads):
        """Whether the forward runs lane group by lane group on ``threads`` threads
        (``BY_GROUP``): float32, in lanes, by the rules there."""
        busy = -(-self.lane_groups // threads) * threads * _kernels.LANE_GROUP
        return (BY_GROUP and _kernels.BY_IMAGE and dtype == np.float32
                and _kernels.in_lanes(self.tiles_w, self.dh, self.dw)
                and self.group_columns >= GROUP_MIN_COLUMNS
                and self.lane_planes >= GROUP_MIN_USE * busy)

    def _backward_by_group(self, dtype, threads):
        """Whether the backward runs lane group by lane group: as the forward, where U takes
        at most ``GROUP_BACKWARD_MAX_FILTERS`` of a group's V and dM."""
        return (self._by_group(dtype, threads)
                and self.out_channels * self.rows <= GROUP_BACKWARD_MAX_FILTERS
                * (self.out_channels + self.rows) * self.group_columns)

    def _group_work(self, threads, dtype, out_block):
        """Each thread's share of ``winograd_work`` group by group, with products for
        ``out_block`` output channels."""
        return workspace.get("winograd_work", (threads, _kernels.by_group_length(
            self.tile, self.rows, out_block, self.tiles_h, self.tiles_w, PLANE_GAP)), dtype)

    def _forward_by_group(self, x, u, bias, threads):
        y = aligned_empty((self.n, self.out_channels, self.out_h, self.out_w), x.dtype)
        block = min(self.out_channels, GROUP_OUT_BLOCK)
        work = self._group_work(threads, x.dtype, block)
        _kernels.forward_by_group(self.tile, x, u, y, absent(x.dtype) if bias is None else bias,
                                  self.block_array, self.top, self.left, self.tiles_h,
                                  self.tiles_w, self.dh, self.dw, block, PLANE_GAP,
                                  self._scratch(threads, x.dtype), work, threads)
        return y

    def forward(self, x, u, bias):
        """``WinogradPasses.forward``, or image by image (``BY_IMAGE``) or lane group by lane
        group (``BY_GROUP``) where they apply."""
        threads = get_num_threads()
        if self._by_group(x.dtype, threads):
            return self._forward_by_group(x, u, bias, threads)
        if not self._by_image(x.dtype):
            return super().forward(x, u, bias)
        y = aligned_empty((self.n, self.out_channels, self.out_h, self.out_w), x.dtype)
        _kernels.forward_by_image(self.tile, x, u, y, absent(x.dtype) if bias is None else bias,
                                  self.block_array, self.top, self.left, self.tiles_h,
                                  self.tiles_w, PLANE_GAP, self._scratch(threads, x.dtype),
                                  self._image_work(threads, x.dtype), threads)
        return y

    def backward(self, x, u, gy, need_x, need_weight):
        """``WinogradPasses.backward``, or image by image (``BY_IMAGE``) where it applies:
        ∂L/∂U summed in ``SUM_SHARES`` partials (fixed by the batch size), then added in
        order; at most ``SUM_SHARES`` times U's size extra. Likewise lane group by lane
        group (``BY_GROUP``), the partials over shares of the groups."""
        threads = get_num_threads()
        by_group = self._backward_by_group(x.dtype, threads)
        if not (by_group or self._by_image(x.dtype)):
            return super().backward(x, u, gy, need_x, need_weight)
        gx = np.empty_like(x) if need_x else np.empty((0, 1, 1, 1), x.dtype)
        units = self.lane_groups if by_group else self.n
        shares = (workspace.get("winograd_grad_u_shares", (min(SUM_SHARES, max(units, 1)),
                                self.points, self.out_channels, self.rows), x.dtype)
                  if need_weight else np.empty((0, 1, 1, 1), x.dtype))
        u = u if need_x else np.empty((1, 1, 1), x.dtype)
        if by_group:
            _kernels.backward_by_group(self.tile, x, u, gy, gx, shares, self.block_array,
                                       self.top, self.left, self.tiles_h, self.tiles_w,
                                       self.dh, self.dw, PLANE_GAP,
                                       self._scratch(threads, x.dtype),
                                       self._group_work(threads, x.dtype, self.out_channels),
                                       threads)
        else:
            _kernels.backward_by_image(self.tile, x, u, gy, gx, shares, self.block_array,
                                       self.top, self.left, self.tiles_h, self.tiles_w,
                                       PLANE_GAP, self._scratch(threads, x.dtype),
                                       self._image_work(threads, x.dtype), threads)
        gw = self._filter_grad(shares.sum(axis=0), threads) if need_weight else None
        return (gx if need_x else None), gw

    def _tiles(self, images, dtype):
        """The chunk's tile matrices: V (α², B·C, T) and M (α², O, T), each ξ plane followed
        by ``PLANE_GAP`` unused entries."""
        count = images * self.per_image
        return tuple(workspace.get(name, (self.points, rows * count + PLANE_GAP), dtype)
                     [:, :rows * count].reshape(self.points, rows, count)
                     for name, rows in (("winograd_v", self.rows),
                                        ("winograd_m", self.out_channels)))

    def _filter_planes(self, dtype):
        """A new (α², O, B·C) array, its ξ planes ``PLANE_GAP`` entries apart (planes a power
        of two apart put the α² entries of a filter on the same cache sets)."""
        size = self.out_channels * self.rows
        return np.empty((self.points, size + PLANE_GAP), dtype)[:, :size].reshape(
            self.points, self.out_channels, self.rows)

    def _input_tiles(self, x, v, scratch, threads):
        """V for x's chunk: block i's tiles in rows i·C … (i + 1)·C − 1."""
        for i, (a, b) in enumerate(self.blocks):
            _kernels.input_tiles(self.tile, x, v[:, i * self.channels:(i + 1) * self.channels],
                                 self.top - a, self.left - b, self.tiles_h, self.tiles_w,
                                 scratch, threads, *self.dilation)

    def _input_grad(self, grad_v, gx, scratch, threads):
        """gx = the blocks' input gradients summed (the adjoint of ``_input_tiles``)."""
        for i, (a, b) in enumerate(self.blocks):
            _kernels.input_grad(self.tile, grad_v[:, i * self.channels:(i + 1) * self.channels],
                                gx, self.top - a, self.left - b, self.tiles_h, self.tiles_w,
                                scratch, threads, *self.dilation, add=i > 0)

    def _stacked(self, weight):
        """The blocks' 3×3 filters (O, B·C, 3, 3) of weight (O, C, k, k), block-major."""
        if self.kernel == 3:
            return np.ascontiguousarray(weight)
        stacked = np.zeros((weight.shape[0], len(self.blocks)) + weight.shape[1:2] + (3, 3),
                           weight.dtype)
        for i, (a, b) in enumerate(self.blocks):
            stacked[:, i, :, a > 0:, b > 0:] = weight[:, :, a + (a > 0):a + 3, b + (b > 0):b + 3]
        return stacked.reshape(weight.shape[0], self.rows, 3, 3)

    def _folded(self, stacked):
        """The adjoint of ``_stacked``: the blocks' gradients (O, B·C, 3, 3) summed into the
        k×k kernel's taps (a block's zero row and column get none)."""
        if self.kernel == 3:
            return stacked
        blocks = stacked.reshape(stacked.shape[0], len(self.blocks), self.channels, 3, 3)
        weight = np.zeros((stacked.shape[0], self.channels, self.kernel, self.kernel),
                          stacked.dtype)
        for i, (a, b) in enumerate(self.blocks):
            weight[:, :, a + (a > 0):a + 3, b + (b > 0):b + 3] += blocks[:, i, :, a > 0:, b > 0:]
        return weight

    def transform_weight(self, weight):
        """U (α², O, B·C) = G g Gᵀ for every 3×3 block g of weight (O, C, k, k)."""
        u = self._filter_planes(weight.dtype)
        _kernels.filter_tiles(_G[self.tile], self._stacked(weight).reshape(-1, 9), u,
                              get_num_threads())
        return u

    # the steps of ``WinogradPasses``: the products split by tile columns (whole images per
    # thread, those the transforms gave it) or, ``by_points``, by points; ∂L/∂U's, summed
    # over the tiles, by points
    def _products(self, u, v, products):
        if self.by_points:
            matmul(u, v, products)
        else:
            matmul_slabs(u, v, products, self.per_image)

    def _output_tiles(self, products, y, bias, scratch, threads):
        _kernels.output_tiles(self.tile, products, y, bias, self.tiles_h, self.tiles_w,
                              scratch, threads, *self.dilation)

    def _output_grad(self, gy, products, scratch, threads):
        _kernels.output_grad(self.tile, gy, products, self.tiles_h, self.tiles_w, scratch,
                             threads, *self.dilation)

    def _grad_u_buffer(self, dtype):
        return self._filter_planes(dtype)

    def _grad_u_products(self, products, v, grad_u, accumulate):
        matmul(products, v.transpose(0, 2, 1), grad_u, accumulate=accumulate)

    def _grad_v_products(self, u, products, v):
        if self.by_points:
            matmul(u.transpose(0, 2, 1), products, v)
        else:
            matmul_slabs(u.transpose(0, 2, 1), products, v, self.per_image)

    def _filter_grad(self, grad_u, threads):
        """∂L/∂weight (O, C, k, k): G's adjoint per 3×3 block, the blocks folded."""
        grad_blocks = np.empty((self.out_channels, self.rows, 3, 3), grad_u.dtype)
        _kernels.filter_grad(_G[self.tile], grad_u, grad_blocks.reshape(-1, 9), threads)
        return self._folded(grad_blocks)
