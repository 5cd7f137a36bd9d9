"""2-D convolution (strided, padded, dilated, grouped), PyTorch's ``conv2d`` semantics.

Seven algorithms, chosen by the shapes:

- 5×5, stride 1, ungrouped, float32 (AVX-512), from a batch of 32 (``conv_winograd5.takes``):
  Winograd's F(4×4, 5×5) for the forward, the input gradient (the forward of gy by the
  turned filters) and, with deep enough products, the weight gradient, in lanes of 16
  images (``conv_winograd5.py``); the other passes by the rules below;
- 3×3, stride 1, ungrouped, with many channels (``conv_winograd.tile_size`` has the rules),
  also dilated where the dilation divides the input and the padding: Winograd's F(4×4, 3×3)
  or F(2×2, 3×3), one matrix product per transform point over the batch's tiles
  (``conv_winograd.py``, transforms in ``minigrad/_kernels/winograd.pyx``);
- 3×3, stride 2, ungrouped, with deep enough products (``conv_strided_winograd.passes``: the
  forward and the backward pass by rules of their own): Winograd's F(4, 2) on the stride
  phases (``conv_strided_winograd.py``, ``minigrad/_kernels/winograd_strided.pyx``);
- other kernels of 3+ taps (strided, and grouped with 8+ channels per group too): direct
  convolution on flat padded planes (``conv_direct.py``, kernels in
  ``minigrad/_kernels/direct_conv.pyx``; a strided float32 forward on a channel-blocked grid,
  ``minigrad/_kernels/block_conv.pyx``);
- depthwise (groups = in channels = out channels, any stride, padding and dilation): a
  per-plane stencil, ``minigrad/_kernels/depthwise.pyx``, one padded plane per thread;
- the 1×1, stride-1, unpadded case: a plain matrix product;
- everything else (narrow groups, strides beyond the kernel, tiny maps): the windows are
  unrolled by the Cython kernels in ``minigrad/_kernels/im2col.pyx`` and the products go to
  numpy's BLAS.
"""
import functools
import math

import numpy as np

from .._kernels import depthwise as _depthwise
from .._kernels import im2col as _kernels
from .._kernels import normalization as _normalization
from .._validate import Spec, check_input_4d, check_max, check_min, pair, plain
from ..function import Function
from ..tensor import as_tensor
from ..threads import get_num_threads
from . import conv_direct, conv_strided_winograd, conv_winograd, conv_winograd5
from .workspace import absent, aligned_empty
from .workspace import release_workspace, workspace as _workspace  # noqa: F401 (re-export)
from .geometry import C_INT_MAX, check_padded_plane, resolve_padding, window_output_size
from .team_matmul import matmul, matmul_columns, matmul_sum, numpy_matmul
from .shape import batch_of_one

#: Upper bound for the unrolled-window (im2col) buffer: a batch is processed in chunks of as
#: many images as fit (at least one image). Large enough that each product is a big GEMM,
#: small enough that the columns stay in cache between the unrolling and the product (the conv
#: suite's conv3x3_s2 showed both limits when it ran through im2col).
CHUNK_BYTES = 4 << 20
#: Use the direct kernels where they apply (tests switch it off to check the im2col path on
#: the same shapes).
USE_DIRECT = True


class Conv2d(Function):
    """y[n, o] = bias[o] + Σ_{c in group(o), i, j} weight[o, c, i, j] ·
    x_padded[n, c, oh·sh + i·dh, ow·sw + j·dw]

    for x (N, C, H, W), weight (O, C/groups, kh, kw), optional bias (O,); output
    (N, O, Ho, Wo) with ``Ho = floor((H + pad_top + pad_bottom − dh·(kh − 1) − 1) / sh) + 1``
    (likewise Wo).

    3×3, stride-1 convolutions with many channels (dilated too, where the dilation divides the
    input and the padding) go to ``conv_winograd.WinogradPlan``
    (``conv_winograd.tile_size`` has the rules; its module docstring, the memory), 3×3
    stride-2 ones with deep products to ``conv_strided_winograd.StridedWinogradPlan`` (the
    forward and the backward pass each by its own rule, ``conv_strided_winograd.passes``). Other
    kernels of 3+ taps (strided up to the kernel's size, grouped with 8+ channels per group)
    go to ``conv_direct.DirectPlan`` (no unrolled windows; its docstring gives its extra
    memory), except on tiny maps with many output channels; depthwise ones to the stencil
    kernels of ``minigrad/_kernels/depthwise.pyx`` (bitwise the same for any thread count;
    the weight gradient sums in double). For the others, a batch is processed in chunks of B
    images. ``cols`` (C·kh·kw, B, Ho·Wo) holds a chunk's
    unrolled windows, so each group's block is one (C/G·kh·kw, B·Ho·Wo) matrix and each
    product is a single large GEMM per group rather than one per image: BLAS runs faster on
    the larger product, most of all for the input gradient, whose inner dimension O/G is small
    (conv suite: conv3x3_s2, when it ran here); the (O, B, Ho·Wo) product goes to NCHW in
    one strided copy that also adds the bias. Backward recomputes the columns chunk by chunk
    instead of keeping the unrolled batch: ``grad_weight_g = Σ gy_g @ cols_gᵀ``, ``grad_x = col2im(weight_gᵀ @ gy_g)`` (the
    same buffer holds both in turn), ``grad_bias = Σ_{n,h,w} gy``.

    Peak extra memory (besides the inputs, the output and the gradients themselves): one
    ``cols`` chunk, at most ``max(CHUNK_BYTES, C·kh·kw·Ho·Wo·itemsize)``, plus one chunk of
    products ``B·O·Ho·Wo·itemsize`` (at most ``O / (C·kh·kw)`` times the former). Both are
    kept per thread and reused by later calls (``release_workspace()`` frees them). The 1×1,
    stride-1, unpadded case is a product straight from x into the NCHW output, one per image
    (no columns, no copies), or, for a single image, ungrouped with AVX-512 and the lane
    tile's channel counts on planes of a whole number of rows of 7, 8 or 14, the lane tile
    reading x in place (``conv_direct.pointwise``; so too its input gradient); its weight
    gradient sums the per-image products ``gy[n] @ x[n]ᵀ`` in ``team_matmul.matmul_sum``'s
    ordered shares, at most ``SUM_SHARES·O·C/G·itemsize`` extra.
    """

    def __init__(self, stride, padding, dilation, groups):
        self.stride = stride            # (sh, sw)
        self.padding = padding          # ((top, bottom), (left, right))
        self.dilation = dilation        # (dh, dw)
        self.groups = groups

    # -- geometry and buffers ------------------------------------------------------------------
    def _setup(self, x, weight):
        self.__dict__.update(_layout(x.shape, weight.shape, tuple(self.stride),
                                     tuple(map(tuple, self.padding)), tuple(self.dilation),
                                     self.groups, x.itemsize, USE_DIRECT,
                                     conv_winograd.USE_WINOGRAD, conv_strided_winograd.USE,
                                     CHUNK_BYTES))
        # weight as (G, O/G, C/G·kh·kw): one matrix per group
        self.weight_matrices = weight.reshape(self.groups, weight.shape[0] // self.groups, -1)

    def _chunks(self, n):
        for start in range(0, n, self.chunk):
            yield start, min(n, start + self.chunk)

    def _grouped(self, a, rows):
        """View (B, R·G, P...) as (B, G, R, P) for the per-group, per-image products (P
        spelled out: -1 is ambiguous for an empty batch)."""
        return a.reshape(a.shape[0], self.groups, rows // self.groups, math.prod(a.shape[2:]))

    def _columns(self, n_images, dtype):
        """The columns workspace for ``n_images``: the (C·kh·kw, B, P) array the kernels fill
        and its (G, C/G·kh·kw, B·P) view for the products."""
        buffer = _workspace.get("cols", (self.col_rows, n_images, self.plane), dtype)
        return buffer, buffer.reshape(self.groups, self.col_rows // self.groups, -1)

    def _products(self, out_channels, n_images, dtype):
        """Workspace (G, O/G, B·P) for a chunk's output or output gradient, and its
        (B, G, O/G, P) view in NCHW order."""
        buffer = _workspace.get("products", (self.groups, out_channels // self.groups,
                                             n_images, self.plane), dtype)
        return buffer.reshape(self.groups, -1, n_images * self.plane), buffer.transpose(2, 0, 1, 3)

    # -- passes --------------------------------------------------------------------------------
    def forward(self, x, weight, bias=None):
        x = np.ascontiguousarray(x)
        self._setup(x, weight)
        n, out_channels = x.shape[0], weight.shape[0]
        grid = None
        if self.winograd is not None:
            y = self.winograd.forward(x, self.winograd.transform_weight(weight), bias)
        elif self.direct is not None:
            grid = self._kept_grid(x)
            y = self.direct.forward(x, weight, bias, grid)
        elif self.depthwise:
            y = aligned_empty((n, out_channels, self.out_h, self.out_w), x.dtype)
            _depthwise.forward(x, weight.reshape(out_channels, -1),
                               absent(x.dtype) if bias is None else bias, y,
                               *self.window_args, get_num_threads())
        elif self.pointwise_row is not None:
            y = conv_direct.pointwise(x, weight, bias, self.pointwise_row)
        elif self.pointwise:
            y = aligned_empty((n, out_channels, self.out_h, self.out_w), x.dtype)
            _per_image_matmul(self.weight_matrices, self._grouped(x, x.shape[1]),
                              self._grouped(y, out_channels))
            if bias is not None:
                _kernels.add_channel_bias(y.reshape(n, out_channels, self.plane), bias,
                                          get_num_threads())
        else:
            y = aligned_empty((n, out_channels, self.out_h, self.out_w), x.dtype)
            group_bias = None if bias is None else bias.reshape(self.groups, -1, 1)
            for start, stop in self._chunks(n):
                cols, cols_g = self._columns(stop - start, x.dtype)
                _kernels.im2col(x[start:stop], cols, *self.kernel_args, get_num_threads())
                products, products_nchw = self._products(out_channels, stop - start, x.dtype)
                _group_matmul(self.weight_matrices, cols_g, products)
                y_chunk = self._grouped(y[start:stop], out_channels)
                if bias is None:
                    np.copyto(y_chunk, products_nchw)
                else:
                    np.add(products_nchw, group_bias, out=y_chunk)
        if any(self.needs_input_grad):
            self.save_for_backward(x, weight, grid)
        return y

    def _kept_grid(self, x):
        """x on the direct forward's grid, kept for the backward's weight gradient where that
        reads the same grid (``DirectPlan.shares_grid``: stride 1, so never im2col's weight
        gradient), else None: one embedding of x a step instead of two."""
        plan = self.direct_backward
        if (len(self.needs_input_grad) > 1 and self.needs_input_grad[1]
                and plan is self.direct and plan.shares_grid):
            return plan.kept_grid(x)
        return None

    def backward(self, gy):
        x, weight, grid = self.saved_tensors
        need_x, need_weight = self.needs_input_grad[:2]
        need_bias = len(self.needs_input_grad) > 2 and self.needs_input_grad[2]
        gy = np.ascontiguousarray(gy, dtype=x.dtype)
        turned = self.winograd5_grad_input if need_x else None
        if turned is not None:
            # the input gradient of a stride-1 5×5 convolution is one itself: gy correlated
            # with the filters turned by 180° and their channels swapped, padded by 4 − p
            gx_turned = turned.forward(gy, turned.transform_weight(
                np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))), None)
            need_x = False
        grad_weight = self.winograd5_grad_weight if need_weight else None
        if grad_weight is not None:
            gw_five = grad_weight.grad_weight(x, gy)
            need_weight = False
        if not (need_x or need_weight):
            gx = gw = None
        elif self.winograd_backward is not None:
            # the filters transformed again rather than kept: (m + 2)²/9 times the weight's
            # memory per layer until backward, for a product far smaller than the pass's;
            # only the input gradient reads them
            plan = self.winograd_backward
            u = plan.transform_weight(weight) if need_x else None
            gx, gw = plan.backward(x, u, gy, need_x, need_weight)
        elif self.direct_backward is not None:
            plan = self.direct_backward
            gemm_x = need_x and plan.grad_input_by_gemm
            gemm_w = need_weight and plan.grad_weight_by_gemm
            gx = gw = None
            if gemm_x or gemm_w:         # one pass of im2col's chunks for both
                gx, gw = self._backward_unrolled(x, gy, gemm_x, gemm_w)
            if need_x and not gemm_x:
                gx = plan.grad_input(gy, weight)
            if need_weight and not gemm_w:
                gw = plan.grad_weight(x, gy, grid)
        elif self.depthwise:
            gx, gw = self._backward_depthwise(x, weight, gy, need_x, need_weight)
        else:
            gx, gw = self._backward_unrolled(x, gy, need_x, need_weight)
        if turned is not None:
            gx = gx_turned
        if grad_weight is not None:
            gw = gw_five
        grads = (gx, None if gw is None else gw.reshape(weight.shape))
        if len(self.needs_input_grad) > 2:
            grads += (_bias_grad(gy) if need_bias else None,)
        return grads

    def _backward_depthwise(self, x, weight, gy, need_x, need_weight):
        """(grad_x, grad_weight as (C, kh·kw)) by the stencil kernels."""
        filters = weight.reshape(weight.shape[0], -1)
        gx = gw = None
        if need_x:
            gx = np.empty_like(x)
            _depthwise.grad_input(gy, filters, gx, *self.window_args, get_num_threads())
        if need_weight:
            gw = np.empty_like(filters)
            _depthwise.grad_weight(x, gy, gw, *self.window_args, get_num_threads())
        return gx, gw

    def _backward_unrolled(self, x, gy, need_x, need_weight):
        """(grad_x, grad_weight as (G, O/G, C/G·kh·kw)) by the pointwise product or im2col."""
        n, out_channels = gy.shape[:2]
        # (the lane tile's 1×1 input gradient comes as a new array)
        lane_x = need_x and self.pointwise_input_row is not None
        gx = np.empty_like(x) if need_x and not lane_x else None
        gw = np.zeros(self.weight_matrices.shape, x.dtype) if need_weight else None
        weight_t = self.weight_matrices.transpose(0, 2, 1)
        if self.pointwise:
            gy_g = self._grouped(gy, out_channels)
            x_g = self._grouped(x, x.shape[1])
            if lane_x:
                # the transposed weight (C, O, 1, 1) summing gy's channels, on the lane tile
                gx = conv_direct.pointwise(gy, weight_t[0][:, :, None, None], None,
                                           self.pointwise_input_row)
            elif need_x:
                _per_image_matmul(weight_t, gy_g, self._grouped(gx, x.shape[1]))
            if need_weight:
                for g in range(self.groups):
                    matmul_sum(gy_g[:, g], x_g[:, g].transpose(0, 2, 1), gw[g])
        elif need_x or need_weight:
            for start, stop in self._chunks(n):
                cols, cols_g = self._columns(stop - start, x.dtype)
                gy_chunk, gy_nchw = self._products(out_channels, stop - start, x.dtype)
                np.copyto(gy_nchw, self._grouped(gy[start:stop], out_channels))
                if need_weight:
                    _kernels.im2col(x[start:stop], cols, *self.kernel_args, get_num_threads())
                    _group_matmul(gy_chunk, cols_g.transpose(0, 2, 1), gw, accumulate=True)
                if need_x:     # reuse the columns buffer for the input-gradient columns
                    _group_matmul(weight_t, gy_chunk, cols_g)
                    _kernels.col2im(cols, gx[start:stop], *self.kernel_args, get_num_threads())
        return gx, gw


def _bias_grad(gy):
    """Σ_{n,h,w} gy[n, o, h, w] per channel, summed in double, in an order that does not
    depend on the thread count (numpy's sum over three axes took 3–10 times as long)."""
    sums = np.empty(gy.shape[1])
    _normalization.channel_sums(gy.reshape(gy.shape[:2] + (math.prod(gy.shape[2:]),)), sums,
                                get_num_threads())
    return sums.astype(gy.dtype)


def _per_image_matmul(a, b, out):
    """out = a @ b for the pointwise path's stacks (N, G, R, S) (a may be the weight, (G, R,
    S), for every image); ungrouped, the N products run on minigrad's threads
    (``team_matmul``), each whole on one."""
    if out.shape[1] != 1:
        return np.matmul(a, b, out=out)
    if a.ndim == 3 and out.shape[0] == 1:     # the weight (1, R, S) is the one image's stack
        return matmul(a, b[:, 0], out[:, 0])
    a = np.broadcast_to(a, out.shape[:1] + a.shape[-3:])
    return matmul(a[:, 0], b[:, 0], out[:, 0])


def _group_matmul(a, b, out, accumulate=False):
    """out (+)= a @ b for im2col's per-group matrices (G, R, S); ungrouped, the one product
    with its columns split over minigrad's threads (``team_matmul``)."""
    if out.shape[0] == 1:
        return matmul_columns(a[0], b[0], out[0], accumulate)
    return numpy_matmul(a, b, out, accumulate)


@functools.lru_cache(maxsize=512)
def _layout(x_shape, weight_shape, stride, padding, dilation, groups, itemsize, use_direct,
            use_winograd, use_strided_winograd, chunk_bytes):
    """The geometry of one convolution and its algorithm, as ``Conv2d`` attributes. Cached: a
    network asks for the same few at every step, and working them out costs as much as a small
    convolution at batch 1."""
    n, channels, height, width = x_shape
    out_channels, _, kh, kw = weight_shape
    (top, bottom), (left, right) = padding
    (sh, sw), (dh, dw) = stride, dilation
    out_h = window_output_size(height, kh, sh, top, dh, padding_end=bottom)
    out_w = window_output_size(width, kw, sw, left, dw, padding_end=right)
    col_rows = channels * kh * kw
    per_image = col_rows * out_h * out_w * itemsize
    pointwise = (kh, kw, sh, sw, top, bottom, left, right) == (1, 1, 1, 1, 0, 0, 0, 0)
    lane_pointwise = pointwise and groups == 1 and use_direct   # then the lane tile may take it
    window_args = (kh, kw, sh, sw, top, left, dh, dw)
    tile = conv_winograd.tile_size((kh, kw), stride, dilation, groups, channels, out_channels,
                                   n, out_h, out_w, use_winograd, height, width, padding)
    winograd = (None if tile is None
                else conv_winograd.WinogradPlan(x_shape, weight_shape, padding, itemsize, tile,
                                                dilation))
    winograd_backward = winograd
    blocked = use_direct and conv_direct.takes_blocks(channels, out_channels, out_w, kh * kw,
                                                      stride, groups, itemsize)
    strided = conv_strided_winograd.passes((kh, kw), stride, dilation, groups, channels,
                                           out_channels, n, out_h, out_w, use_strided_winograd,
                                           blocked)
    if any(strided):
        plan = conv_strided_winograd.StridedWinogradPlan(x_shape, weight_shape, padding,
                                                         itemsize)
        winograd = plan if strided[0] else None
        winograd_backward = plan if strided[1] else None
    five = use_winograd is True and conv_winograd5.takes((kh, kw), stride, dilation, groups,
                                                         channels, out_channels, n, out_h,
                                                         out_w, itemsize)
    if five:
        # the forward, and the weight gradient by its own rule; the backward's plan above
        # takes the rest
        winograd = conv_winograd5.Winograd5Plan(x_shape, weight_shape, padding)
    # the input gradient as the forward of gy by the turned filters, padded by 4 − p
    turned_padding = tuple((kh - 1 - low, kh - 1 - high) for low, high in padding)
    winograd5_grad_input = (
        conv_winograd5.Winograd5Plan((n, out_channels, out_h, out_w),
                                     (channels, out_channels, kh, kw), turned_padding)
        if use_winograd is True and min(min(side) for side in turned_padding) >= 0
        and conv_winograd5.takes((kh, kw), stride, dilation, groups, out_channels, channels, n,
                                 height, width, itemsize) else None)
    direct, direct_backward = (conv_direct.plan(x_shape, weight_shape, padding, dilation,
                                                stride, groups)
                               if use_direct and None in (winograd, winograd_backward)
                               else (None, None))
    return {
        "out_h": out_h, "out_w": out_w, "plane": out_h * out_w,
        # the window as the kernels take it; im2col/col2im also take the output size
        "window_args": window_args, "kernel_args": window_args + (out_h, out_w),
        "pointwise": pointwise,
        # the lane tile's rows for a 1×1 convolution's forward and input gradient (None: BLAS)
        "pointwise_row": conv_direct.pointwise_row(channels, out_channels, out_h * out_w, n)
        if lane_pointwise else None,
        "pointwise_input_row": conv_direct.pointwise_row(out_channels, channels, out_h * out_w, n)
        if lane_pointwise else None,
        # one filter per channel: a stencil, no GEMM to give BLAS
        "depthwise": 1 < groups == channels == out_channels,
        # the Winograd plans of the forward and of the backward pass (the stride-1 one serves
        # both), and the direct plans for a pass without one (None: another path)
        "winograd": winograd, "winograd_backward": winograd_backward,
        # F(4×4, 5×5) for the input and the weight gradient of a 5×5 layer (None: the
        # backward's own plan)
        "winograd5_grad_input": winograd5_grad_input,
        "winograd5_grad_weight": (winograd if five and conv_winograd5.takes_grad_weight(
            channels, out_channels) else None),
        "direct": direct, "direct_backward": direct_backward,
        "col_rows": col_rows,
        "chunk": max(1, min(n, chunk_bytes // max(per_image, 1))),
    }


@functools.lru_cache(maxsize=512)
def _checked_setup(x, weight, bias, stride, padding, dilation, groups):
    """Every check of ``conv2d``'s arguments (x, weight, bias as ``Spec``; None for no bias);
    returns the validated (stride, padding, dilation, groups): pairs, padding as
    ((top, bottom), (left, right)), groups an int."""
    op = "conv2d"
    check_input_4d(x, op, "x")
    if weight.ndim != 4:
        raise ValueError(f"{op}: weight must be 4-D (out_channels, in_channels/groups, kH, kW), "
                         f"got shape {weight.shape}")
    if weight.dtype != x.dtype:
        raise TypeError(f"{op}: weight dtype {weight.dtype} differs from x dtype {x.dtype}")
    if 0 in weight.shape:
        raise ValueError(f"{op}: weight must have no zero-sized dimension, got shape "
                         f"{weight.shape}")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    groups = int(groups)
    channels, out_channels = x.shape[1], weight.shape[0]
    if channels % groups or out_channels % groups:
        raise ValueError(f"{op}: groups={groups} must divide both the input channels "
                         f"(x shape {x.shape}) and the output channels (weight shape "
                         f"{weight.shape})")
    if weight.shape[1] * groups != channels:
        raise ValueError(f"{op}: channel mismatch: x shape {x.shape} has {channels} channels but "
                         f"weight shape {weight.shape} with groups={groups} expects "
                         f"{weight.shape[1] * groups}")
    if bias is not None:
        if bias.shape != (out_channels,):
            raise ValueError(f"{op}: bias must have shape ({out_channels},) for weight shape "
                             f"{weight.shape}, got {bias.shape}")
        if bias.dtype != x.dtype:
            raise TypeError(f"{op}: bias dtype {bias.dtype} differs from x dtype {x.dtype}")
    stride = pair(stride, "stride", op)
    check_min(stride, 1, "stride", op)
    check_max(stride, C_INT_MAX, "stride", op)
    dilation = pair(dilation, "dilation", op)
    check_min(dilation, 1, "dilation", op)
    check_max(dilation, C_INT_MAX, "dilation", op)
    kernel = weight.shape[2:]
    padding = resolve_padding(padding, kernel, stride, dilation, op)
    check_max([p for side in padding for p in side], C_INT_MAX, "padding", op)
    check_padded_plane(x.shape[2:], padding, op)
    for axis, size, k, d, (before, after) in zip(("height", "width"), x.shape[2:], kernel,
                                                  dilation, padding):
        if d * (k - 1) + 1 > size + before + after:
            raise ValueError(
                f"{op}: kernel {tuple(kernel)} with dilation {dilation} spans "
                f"{d * (k - 1) + 1} along the {axis}, more than the padded input "
                f"({size} + padding {before + after}); x shape {x.shape}, weight shape "
                f"{weight.shape}")
    return stride, padding, dilation, groups


@batch_of_one
def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution over x (N, C, H, W) with weight (O, C/groups, kH, kW) and optional bias
    (O,), as ``torch.nn.functional.conv2d``; an unbatched x (C, H, W) gives (O, Ho, Wo).

    ``stride``, ``dilation``: an int or an (h, w) pair, positive. ``padding``: an int or a pair
    (zeros added on both sides), ``'valid'`` (none) or ``'same'`` (output size = input size;
    stride 1 only; an odd total padding puts the extra row/column at the bottom/right, as
    PyTorch does). Output (N, O, Ho, Wo) with
    ``Ho = floor((H + 2·padding − dilation·(kH − 1) − 1) / stride) + 1`` (likewise Wo).
    See ``Conv2d`` for the algorithm and the extra memory it uses.
    """
    op = "conv2d"
    x = as_tensor(x, name="x", op_name=op)
    weight = as_tensor(weight, name="weight", op_name=op)
    if bias is not None:
        bias = as_tensor(bias, name="bias", op_name=op)
    args = (Spec(x.shape, x.dtype), Spec(weight.shape, weight.dtype),
            None if bias is None else Spec(bias.shape, bias.dtype),
            stride, padding, dilation, groups)
    # A network repeats the same few argument sets at every call: their checks are cached when
    # every argument is a plain int, pair or padding string (so that the cache never confuses
    # 1 with True or 1.0), and run afresh otherwise.
    check = (_checked_setup if plain(stride) and plain(padding) and plain(dilation)
             and plain(groups) else _checked_setup.__wrapped__)
    stride, padding, dilation, groups = check(*args)
    inputs = (x, weight) if bias is None else (x, weight, bias)
    return Conv2d(stride, padding, dilation, groups)(*inputs)
