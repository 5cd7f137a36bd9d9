"""3×3, stride-2 convolution by Winograd's F(4, 2) on the input's stride phases.

Along one axis a stride-2 3×3 filter is the sum of a 1-tap filter (w1) on the odd padded
cells and a 2-tap one (w0, w2) on the even ones; the 2-tap part is a stride-1 convolution that
F(m, 2) computes with m + 1 multiplies per m outputs. In 2-D the output is the sum of four
classes, one per pair of axis kinds (``minigrad/_kernels/winograd_strided.pyx`` has the
layout and the transforms): EE a 1×1 convolution of the (odd, odd) cells, EO and OE F(4, 2)
along one axis, OO along both. Per output and channel pair that is 1 + 5/4 + 5/4 + 25/16 =
5.06 multiplies instead of the direct sum's 9 (1.78× fewer). Each point ξ of a class is one
matrix product over the batch, M[ξ] = U[ξ] · V[ξ], on minigrad's threads (``team_matmul``),
in two stacks of products of one shape each: EE's point cut in 4 column slices with EO's
and OE's 10 points (14 products), and OO's 25.

The backward pass runs the same steps backwards (each is linear): the products' gradients
dM = the output transforms' adjoint of gy, then ∂L/∂V[ξ] = U[ξ]ᵀ · dM[ξ] taken back through
the input transforms' adjoint into x's cells, and ∂L/∂U[ξ] = Σ dM[ξ] · V[ξ]ᵀ back through the
filter transform into the taps.

Where (``passes``, measured rules): ungrouped, undilated 3×3 convolutions of stride 2 whose
output the 4×4 tiles cover well, from a batch of 16; the forward pass with products at least
``FORWARD_MIN_DEPTH`` deep, the backward pass (whose direct kernels are slower) from
``BACKWARD_MIN_DEPTH``. A layer may run its forward on the direct kernels and its backward
here.

Rounding: F(4, 2) with the points 0, ±1, ½, ∞ scales by up to 8/3 and loses a few bits
against the direct sum (measured in tests/test_conv_strided_winograd.py, within the
convolution tests' float32 tolerances).

Extra memory (per thread, reused by later calls; ``release_workspace()`` frees it): one
chunk's points V and products M, 81 per 4×4 tile and channel (input channels for V, output
channels for M), at most ``CHUNK_BYTES`` together (at least one group of 16 images); the
transformed filters U, 39/9 of the weight's size, made by each pass that needs them; in
backward one more such set for ∂L/∂U.
"""
import numpy as np

from .._kernels import winograd_strided as _kernels
from ..threads import get_num_threads
from .conv_winograd import WinogradPasses
from .team_matmul import matmul
from .workspace import workspace

#: Bound on one chunk's points V and products M.
CHUNK_BYTES = 8 << 20
#: True: use this path where the rules below expect it to be faster; "always": wherever it
#: can compute the convolution (tests); False: never.
USE = True
#: Where it is faster than the direct kernels (measured rules, docs/algorithms.md): the
#: products at least ``FORWARD_MIN_DEPTH`` deep, C·O / (C + O), for the forward pass
#: (``BLOCKED_FORWARD_MIN_DEPTH`` where the direct forward would run on the channel-blocked
#: grid, which was faster below and even at depths 51 to 60) and
#: ``BACKWARD_MIN_DEPTH`` for the backward pass (its direct kernels are slower: the backward
#: gains from shallower products on); 4×4 tiles covering the output with at most a
#: ``1 − MIN_TILE_USE`` share of dropped outputs (7×7 outputs, 0.77 used, were even; 6×6,
#: 0.56, lost by half); and at least a lane group of images (``MIN_IMAGES``): the kernels
#: transform 16 images at a time, and the filters' transform is spread over the batch.
FORWARD_MIN_DEPTH = 40
BLOCKED_FORWARD_MIN_DEPTH = 60
BACKWARD_MIN_DEPTH = 16
MIN_TILE_USE = 0.8
MIN_IMAGES = 16
#: Whether a forward whose output is one tile per image (4×4) runs here. Not since the direct
#: kernel's lane tile reads x in place: it was as fast or faster on Zen 4 and on an Intel Xeon,
#: and it kept its speed where other work on the host slowed these products' memory.
ONE_TILE_FORWARD = False
#: Outputs per tile along an axis (F(4, 2)).
TILE = 4
#: EE has TILE² columns per output tile, EO and OE TILE: cut in TILE slices, EE's product
#: joins their stack as TILE more of the same shape (then 14 products split evenly over the
#: threads rather than 1, 5 and 5).
EE_SLICES = TILE


def _toom_cook(m, taps, points):
    """(Aᵀ (m × α), G (α × taps), Bᵀ (α × α)) of F(m, taps) at the given finite points plus
    ∞: correlation y = Aᵀ ((G g) ⊙ (Bᵀ d)) is the transpose of the polynomial product
    a(x)·g(x) evaluated at the points and interpolated (Toom–Cook; Lavin & Gray 2016)."""
    alpha = len(points) + 1

    def vandermonde(columns):
        v = np.zeros((alpha, columns))
        for i, p in enumerate(points):
            v[i] = [p ** k for k in range(columns)]
        v[-1, -1] = 1            # ∞: the leading coefficient
        return v

    return vandermonde(m).T, vandermonde(taps), np.linalg.inv(vandermonde(alpha)).T


_AT, _G, _BT = (np.ascontiguousarray(m) for m in _toom_cook(TILE, 2, (0, 1, -1, 1 / 2)))


def _filter_transform():
    """T (39, 9): row ξ holds the weights of the 3×3 taps in point ξ of U, class by class
    (EE, EO, OE, OO), U[p, q] = (F_r g_k F_cᵀ)[p, q] for the class's taps g_k: the middle one
    on an E axis (F = 1), the outer two on an O axis (F = G); EE's one point repeated for its
    ``EE_SLICES`` column slices."""
    taps = {False: [1], True: [0, 2]}
    transform = {False: np.ones((1, 1)), True: _G}
    rows = []
    for kr, kc in ((False, False), (False, True), (True, False), (True, True)):
        points = [(p, q) for p in range(len(transform[kr])) for q in range(len(transform[kc]))]
        for p, q in points * (EE_SLICES if not (kr or kc) else 1):
            row = np.zeros((3, 3))
            for a, i in enumerate(taps[kr]):
                for b, j in enumerate(taps[kc]):
                    row[i, j] = transform[kr][p, a] * transform[kc][q, b]
            rows.append(row.ravel())
    return np.array(rows)


_T = _filter_transform()
#: U's (and V's, M's) first stack: EE's slices, EO's and OE's points
_WIDE = EE_SLICES + 2 * (TILE + 1)


def passes(kernel, stride, dilation, groups, channels, out_channels, n, out_h, out_w,
           mode=True, blocked=False):
    """(forward, backward): whether each pass of a convolution runs on this path. Only 3×3,
    stride 2, undilated, ungrouped; with ``mode`` True, by the rules above (``blocked``:
    whether the direct forward would run on the channel-blocked grid); "always": both,
    wherever it can; False: neither."""
    if (mode is False or tuple(kernel) != (3, 3) or tuple(stride) != (2, 2)
            or tuple(dilation) != (1, 1) or groups != 1):
        return False, False
    if mode == "always":
        return True, True
    tiles = -(-out_h // TILE) * -(-out_w // TILE)
    if n < MIN_IMAGES or out_h * out_w < MIN_TILE_USE * TILE * TILE * tiles:
        return False, False
    depth = channels * out_channels / (channels + out_channels)
    forward_depth = BLOCKED_FORWARD_MIN_DEPTH if blocked else FORWARD_MIN_DEPTH
    return (depth >= forward_depth and (tiles > 1 or ONE_TILE_FORWARD),
            depth >= BACKWARD_MIN_DEPTH)


class StridedWinogradPlan(WinogradPasses):
    """The tile grid of one convolution: x (N, C, H, W) padded by ((top, bottom), (left,
    right)), output (N, O, Ho, Wo) covered by Th × Tw tiles of 4×4 (Th = ceil(Ho / 4)), the
    batch processed in chunks of ``chunk`` images; the passes of
    ``conv_winograd.WinogradPasses`` on this tile layout. A chunk's V and M are each a flat
    buffer and its two stacks of matrices (``_split``): the kernels read and write the
    buffer, the products the stacks."""

    def __init__(self, x_shape, weight_shape, padding, itemsize):
        self.n, self.channels, self.height, self.width = x_shape
        self.out_channels = weight_shape[0]
        (self.top, bottom), (self.left, right) = padding
        self.out_h = (self.height + self.top + bottom - 3) // 2 + 1
        self.out_w = (self.width + self.left + right - 3) // 2 + 1
        self.tiles_h = -(-self.out_h // TILE)
        self.tiles_w = -(-self.out_w // TILE)
        # (points, columns per image) of each class
        self.classes = _kernels.class_columns(self.tiles_h, self.tiles_w)
        # entries of V (or M) per image and channel, the four classes together
        self.per_image = sum(points * columns for points, columns in self.classes)
        chunk = CHUNK_BYTES // max(self.per_image * (self.channels + self.out_channels)
                                   * itemsize, 1)
        # whole groups of images (at least one, past CHUNK_BYTES if need be): the kernels
        # transform the images of a channel GROUP at a time, one per vector lane
        group = _kernels.LANES
        self.chunk = max(1, min(self.n, max(group, chunk - chunk % group)))
        self.scratch_length = _kernels.scratch_length(self.tiles_h, self.tiles_w)

    def _split(self, flat, rows, images):
        """The two stacks of (rows, columns) matrices of the classes in one flat buffer:
        EE's point as ``EE_SLICES`` planes (the kernels put unit row ur in plane ur mod 4),
        EO's and OE's points, all of the same shape; then OO's points."""
        (_, ee), (points, columns), _, (oo_points, oo_columns) = self.classes
        wide = (EE_SLICES + 2 * points) * rows * columns * images
        return (flat[:wide].reshape(EE_SLICES + 2 * points, rows, columns * images),
                flat[wide:].reshape(oo_points, rows, oo_columns * images))

    def _tiles(self, images, dtype):
        """The chunk's points V and products M: each a flat buffer and its two stacks."""
        result = []
        for name, rows in (("winograd_v", self.channels), ("winograd_m", self.out_channels)):
            flat = workspace.get(name, (self.per_image * rows * images,), dtype)
            result.append((flat, self._split(flat, rows, images)))
        return result

    def transform_weight(self, weight):
        """U (39, O, C) = T · g for every filter g (``_filter_transform``), as the two stacks
        of ``_split``."""
        # a workspace: the caller uses U at once (forward, or the backward pass it is made for)
        u = workspace.get("winograd_u", (len(_T), self.out_channels, self.channels),
                          weight.dtype)
        _kernels.filter_points(_T, np.ascontiguousarray(weight).reshape(-1, 9),
                               u.reshape(len(_T), -1), get_num_threads())
        return u[:_WIDE], u[_WIDE:]

    # the steps of ``WinogradPasses``
    def _input_tiles(self, x, v, scratch, threads):
        _kernels.input_tiles(x, v[0], _BT, self.top, self.left, self.tiles_h, self.tiles_w,
                             scratch, threads)

    def _input_grad(self, v, gx, scratch, threads):
        _kernels.input_grad(v[0], gx, _BT, self.top, self.left, self.tiles_h, self.tiles_w,
                            scratch, threads)

    def _products(self, u, v, products):
        for uk, vk, mk in zip(u, v[1], products[1]):
            matmul(uk, vk, mk)

    def _output_tiles(self, products, y, bias, scratch, threads):
        _kernels.output_tiles(products[0], y, _AT, bias, self.tiles_h, self.tiles_w, scratch,
                              threads)

    def _output_grad(self, gy, products, scratch, threads):
        _kernels.output_grad(gy, products[0], _AT, self.tiles_h, self.tiles_w, scratch,
                             threads)

    def _grad_u_buffer(self, dtype):
        return workspace.get("winograd_grad_u", (len(_T), self.out_channels, self.channels),
                             dtype)

    def _grad_u_products(self, products, v, grad_u, accumulate):
        for gk, vk, mk in zip((grad_u[:_WIDE], grad_u[_WIDE:]), v[1], products[1]):
            matmul(mk, vk.transpose(0, 2, 1), gk, accumulate=accumulate)

    def _grad_v_products(self, u, products, v):
        for uk, vk, mk in zip(u, v[1], products[1]):
            matmul(uk.transpose(0, 2, 1), mk, vk)

    def _filter_grad(self, grad_u, threads):
        """∂L/∂weight (O, C, 3, 3): the adjoint of ``transform_weight``."""
        gw = np.empty((self.out_channels, self.channels, 3, 3), grad_u.dtype)
        _kernels.filter_grad(_T, grad_u.reshape(len(_T), -1), gw.reshape(-1, 9), threads)
        return gw
