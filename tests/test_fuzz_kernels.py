"""Property-based fuzzing of the convolution and pooling kernels against plain numpy loops.

Hypothesis draws shapes and arguments (1×1 inputs, kernels as large as the padded input, strides
larger than the input, dilation, ceil_mode, groups), float32 and float64, and the memory layout
of the input: contiguous, a transposed or sliced numpy view passed to ``minigrad.tensor``, or a
Tensor whose ``.data`` was replaced by such a view. Forward outputs and the vector-Jacobian
product (backward with a random upstream gradient) are compared with the plain loops of
tests/helpers/reference.py. The forward and the backward each run on a drawn thread count (the
kernels size per-thread scratch by the count of their own call).

Examples per test: the "ci" hypothesis profile (tests/conftest.py); ``MINIGRAD_FUZZ=long``
selects the long run.
"""
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, strategies as st  # noqa: E402

import minigrad  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402

from helpers import reference as R  # noqa: E402
from helpers.conv import forced_winograd  # noqa: E402
from minigrad.ops import conv_winograd5  # noqa: E402

LAYOUTS = ("contiguous", "transposed", "sliced", "tensor-data-view")
TOLERANCE = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}


@st.composite
def arrays(draw, shape, dtype, positive=False):
    """(tensor, float64 copy of its values): float values of ``shape`` without ties, in one of
    LAYOUTS. Distinct values keep max-type argmaxes unambiguous."""
    size = int(np.prod(shape))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    values = rng.permutation(size).astype(np.float64) / max(size, 1) + 0.05
    if not positive:
        values *= rng.choice([-1.0, 1.0], size)
    values = values.reshape(shape).astype(dtype)
    layout = draw(st.sampled_from(LAYOUTS))
    if layout == "contiguous":
        data = values
    elif layout == "transposed":    # swapped strides on the last two axes (reversed if 1-D)
        data = (np.ascontiguousarray(values.swapaxes(-1, -2)).swapaxes(-1, -2)
                if values.ndim > 1 else values[::-1].copy()[::-1])
    else:                                   # every other column of a wider array, offset by one
        wide = np.zeros(shape[:-1] + (2 * shape[-1] + 1,), dtype)
        wide[..., 1::2] = values
        data = wide[..., 1::2]
    assert layout == "contiguous" or data.base is not None     # a view, not a copy
    if layout == "tensor-data-view":        # a Tensor holding the non-contiguous view itself
        t = minigrad.tensor(np.zeros(shape, dtype), requires_grad=True)
        t.data = data
    else:
        t = minigrad.tensor(data, requires_grad=True)
    assert t.dtype == dtype
    return t, values.astype(np.float64)


dtypes = st.sampled_from([np.float32, np.float64])
#: thread counts drawn for a forward and, independently, for its backward (2 cores here)
THREAD_COUNTS = st.sampled_from([1, 2, 3, 8, 16])


@pytest.fixture(autouse=True)
def _restore_thread_count():
    before = minigrad.get_num_threads()
    yield
    minigrad.set_num_threads(before)


def _forward_threads(data):
    """Draw the forward's and the backward's thread counts; run on the forward's from now on.
    Returns the backward's."""
    minigrad.set_num_threads(data.draw(THREAD_COUNTS, label="forward threads"))
    return data.draw(THREAD_COUNTS, label="backward threads")


def _upstream(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _check(actual, expected, dtype, what, scaled=False):
    """``scaled``: the absolute tolerance in units of the largest expected value, for sums
    whose float32 rounding grows with their terms rather than with the result (Winograd's
    transforms: a small entry that is the difference of large terms)."""
    tolerance = dict(TOLERANCE[dtype])
    if scaled:
        tolerance["atol"] *= max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, err_msg=what,
                               **tolerance)


@st.composite
def window_axis(draw, max_kernel=4, max_stride=5, max_dilation=3, pool=True):
    """(size, kernel, stride, padding, dilation) along one axis with at least one window: the
    size ranges from exactly the padded kernel extent (the kernel covers the whole input) to a
    few cells more; strides may exceed the input."""
    kernel = draw(st.integers(1, max_kernel))
    dilation = draw(st.integers(1, max_dilation))
    padding = draw(st.integers(0, kernel // 2 if pool else 2))
    stride = draw(st.integers(1, max_stride))
    extent = dilation * (kernel - 1) + 1
    size = draw(st.integers(max(1, extent - 2 * padding), extent - 2 * padding + 5))
    return size, kernel, stride, padding, dilation


@given(data=st.data(), dtype=dtypes)
def test_conv2d_matches_reference(data, dtype):
    backward_threads = _forward_threads(data)
    rows = data.draw(window_axis(pool=False))
    cols = data.draw(window_axis(pool=False))
    (height, kh, sh, ph, dh), (width, kw, sw, pw, dw) = rows, cols
    groups = data.draw(st.integers(1, 3))
    channels = groups * data.draw(st.integers(1, 2))
    # up to 15 output channels: across the direct kernels' 8-channel register blocks
    out_channels = groups * data.draw(st.integers(1, 5))
    n = data.draw(st.integers(1, 2))
    x, xv = data.draw(arrays((n, channels, height, width), dtype))
    w, wv = data.draw(arrays((out_channels, channels // groups, kh, kw), dtype))
    with_bias = data.draw(st.booleans())
    b, bv = data.draw(arrays((out_channels,), dtype)) if with_bias else (None, None)
    args = dict(stride=(sh, sw), padding=(ph, pw), dilation=(dh, dw), groups=groups)
    y = F.conv2d(x, w, b, **args)
    expected = R.conv2d(xv, wv, bv, (sh, sw), (ph, pw), (dh, dw), groups)
    assert y.shape == expected.shape and y.dtype == dtype
    _check(y.data, expected, dtype, "conv2d forward")
    gy = _upstream(y.shape)
    minigrad.set_num_threads(backward_threads)
    y.backward(gy.astype(dtype))
    gx, gw, gb = R.conv2d_vjp(xv, wv, gy, (sh, sw), (ph, pw), (dh, dw), groups)
    _check(x.grad, gx, dtype, "conv2d grad x")
    _check(w.grad, gw, dtype, "conv2d grad weight")
    if with_bias:
        _check(b.grad, gb, dtype, "conv2d grad bias")


@given(data=st.data(), dtype=dtypes)
def test_winograd_conv2d_matches_reference(data, dtype):
    """Stride 1 by Winograd F(2×2) or F(4×4) whatever the shape (its speed rules off):
    outputs and padding that leave parts of the tiles outside the output or the input, rows
    of tiles in lanes and by rows, 3×3 with dilations that divide the input and the padding,
    and 5×5 cut into 3×3 blocks."""
    backward_threads = _forward_threads(data)
    size = data.draw(st.sampled_from([3, 3, 5]), label="kernel size")
    if size == 3:
        dilation = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
        padding = tuple(d * data.draw(st.integers(0, 2)) for d in dilation)
    else:
        dilation = (1, 1)
        padding = (data.draw(st.integers(2, 3)), data.draw(st.integers(2, 3)))
    reach = tuple(d * (size - 1) + 1 - 2 * p for d, p in zip(dilation, padding))
    height = dilation[0] * data.draw(st.integers(max(1, -(-reach[0] // dilation[0])), 11))
    width = dilation[1] * data.draw(st.integers(max(1, -(-reach[1] // dilation[1])), 36))
    channels, out_channels = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
    n = data.draw(st.integers(1, 3))
    tile = data.draw(st.sampled_from([2, 4]), label="tile size")
    x, xv = data.draw(arrays((n, channels, height, width), dtype))
    w, wv = data.draw(arrays((out_channels, channels, size, size), dtype))
    b, bv = data.draw(arrays((out_channels,), dtype))
    with pytest.MonkeyPatch.context() as patch:
        forced_winograd(patch, tile)
        y = F.conv2d(x, w, b, padding=padding, dilation=dilation)
        assert y._creator.winograd is not None
        expected = R.conv2d(xv, wv, bv, (1, 1), padding, dilation, 1)
        _check(y.data, expected, dtype, "winograd forward", scaled=True)
        gy = _upstream(y.shape)
        minigrad.set_num_threads(backward_threads)
        y.backward(gy.astype(dtype))
    gx, gw, gb = R.conv2d_vjp(xv, wv, gy, (1, 1), padding, dilation, 1)
    _check(x.grad, gx, dtype, "winograd grad x", scaled=True)
    _check(w.grad, gw, dtype, "winograd grad weight", scaled=True)
    _check(b.grad, gb, dtype, "winograd grad bias")


@pytest.mark.skipif(not conv_winograd5.takes((5, 5), (1, 1), (1, 1), 1, 8, 16, 64, 16, 16, 4),
                    reason="F(4×4, 5×5) runs on the AVX-512 products")
@given(data=st.data())
def test_winograd5_conv2d_matches_reference(data):
    """5×5 stride 1 by F(4×4, 5×5), all three passes, whatever the shape (its bounds off):
    padding 0–4 per axis, outputs that leave parts of the last tiles out, planes narrower and
    wider than a 16-column transpose, batches below and above a lane group of 16 images."""
    backward_threads = _forward_threads(data)
    padding = (data.draw(st.integers(0, 4)), data.draw(st.integers(0, 4)))
    height = data.draw(st.integers(max(1, 5 - 2 * padding[0]), 19))
    width = data.draw(st.integers(max(1, 5 - 2 * padding[1]), 37))
    channels, out_channels = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
    n = data.draw(st.sampled_from([1, 2, 15, 16, 17, 33]), label="batch")
    x, xv = data.draw(arrays((n, channels, height, width), np.float32))
    w, wv = data.draw(arrays((out_channels, channels, 5, 5), np.float32))
    b, bv = data.draw(arrays((out_channels,), np.float32))
    with pytest.MonkeyPatch.context() as patch:
        for name in ("MIN_IMAGES", "MIN_CHANNELS", "MIN_OUT_CHANNELS", "MIN_POSITIONS",
                     "MIN_TILE_USE", "GRAD_WEIGHT_MIN_DEPTH"):
            patch.setattr(conv_winograd5, name, 0)
        y = F.conv2d(x, w, b, padding=padding)
        layer = y._creator
        assert isinstance(layer.winograd, conv_winograd5.Winograd5Plan)
        assert isinstance(layer.winograd5_grad_input, conv_winograd5.Winograd5Plan)
        assert isinstance(layer.winograd5_grad_weight, conv_winograd5.Winograd5Plan)
        expected = R.conv2d(xv, wv, bv, (1, 1), padding, (1, 1), 1)
        _check(y.data, expected, np.float32, "winograd5 forward", scaled=True)
        gy = _upstream(y.shape)
        minigrad.set_num_threads(backward_threads)
        y.backward(gy.astype(np.float32))
    gx, gw, gb = R.conv2d_vjp(xv, wv, gy, (1, 1), padding, (1, 1), 1)
    _check(x.grad, gx, np.float32, "winograd5 grad x", scaled=True)
    _check(w.grad, gw, np.float32, "winograd5 grad weight", scaled=True)
    _check(b.grad, gb, np.float32, "winograd5 grad bias")


@given(data=st.data(), dtype=dtypes)
def test_strided_winograd_conv2d_matches_reference(data, dtype):
    """3×3 stride 2 by F(4, 2) on the stride phases whatever the shape (its speed rules off):
    odd and even sides, padding 0–2 per axis, outputs that leave parts of the last tiles
    out, batches below and above a lane group of 16 images."""
    backward_threads = _forward_threads(data)
    padding = (data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2)))
    height = data.draw(st.integers(max(1, 3 - 2 * padding[0]), 19))
    width = data.draw(st.integers(max(1, 3 - 2 * padding[1]), 36))
    channels, out_channels = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
    n = data.draw(st.sampled_from([1, 2, 3, 16, 17]), label="batch")
    x, xv = data.draw(arrays((n, channels, height, width), dtype))
    w, wv = data.draw(arrays((out_channels, channels, 3, 3), dtype))
    b, bv = data.draw(arrays((out_channels,), dtype))
    with pytest.MonkeyPatch.context() as patch:
        forced_winograd(patch)
        y = F.conv2d(x, w, b, stride=2, padding=padding)
        assert y._creator.winograd is not None
        expected = R.conv2d(xv, wv, bv, (2, 2), padding, (1, 1), 1)
        _check(y.data, expected, dtype, "strided winograd forward", scaled=True)
        gy = _upstream(y.shape)
        minigrad.set_num_threads(backward_threads)
        y.backward(gy.astype(dtype))
    gx, gw, gb = R.conv2d_vjp(xv, wv, gy, (2, 2), padding, (1, 1), 1)
    _check(x.grad, gx, dtype, "strided winograd grad x", scaled=True)
    _check(w.grad, gw, dtype, "strided winograd grad weight", scaled=True)
    _check(b.grad, gb, dtype, "strided winograd grad bias")


@given(data=st.data(), dtype=dtypes, ceil_mode=st.booleans())
def test_max_pool2d_matches_reference(data, dtype, ceil_mode):
    backward_threads = _forward_threads(data)
    (height, kh, sh, ph, dh), (width, kw, sw, pw, dw) = data.draw(window_axis()), data.draw(
        window_axis())
    n, c = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3))
    x, xv = data.draw(arrays((n, c, height, width), dtype))
    y, indices = F.max_pool2d(x, (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil_mode,
                              return_indices=True)
    expected, argmax = R.max_pool2d(xv, (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil_mode)
    # windows lying wholly in the padding are test_max_pool_window_in_padding_only's subject
    hypothesis.assume((argmax >= 0).all())
    assert y.shape == expected.shape and y.dtype == dtype
    np.testing.assert_array_equal(y.data, expected.astype(dtype))     # max is exact
    np.testing.assert_array_equal(indices.data, argmax)
    gy = _upstream(y.shape)
    minigrad.set_num_threads(backward_threads)
    y.backward(gy.astype(dtype))
    _check(x.grad, R.scatter_to_argmax(xv.shape, argmax, gy), dtype, "max_pool2d grad")


@given(data=st.data(), dtype=dtypes, ceil_mode=st.booleans(), count_include_pad=st.booleans(),
       divisor_override=st.one_of(st.none(), st.integers(1, 5)))
def test_avg_pool2d_matches_reference(data, dtype, ceil_mode, count_include_pad,
                                      divisor_override):
    backward_threads = _forward_threads(data)
    (height, kh, sh, ph, _), (width, kw, sw, pw, _) = (data.draw(window_axis(max_dilation=1)),
                                                       data.draw(window_axis(max_dilation=1)))
    n, c = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3))
    x, xv = data.draw(arrays((n, c, height, width), dtype))
    args = ((kh, kw), (sh, sw), (ph, pw), ceil_mode, count_include_pad, divisor_override)
    y = F.avg_pool2d(x, *args)
    expected = R.avg_pool2d(xv, *args)
    assert y.shape == expected.shape and y.dtype == dtype
    _check(y.data, expected, dtype, "avg_pool2d forward")
    gy = _upstream(y.shape)
    minigrad.set_num_threads(backward_threads)
    y.backward(gy.astype(dtype))
    _check(x.grad, R.avg_pool2d_vjp(xv.shape, gy, *args), dtype, "avg_pool2d grad")


@given(data=st.data(), dtype=dtypes, mode=st.sampled_from(["max", "avg"]))
def test_adaptive_and_global_pools_match_reference(data, dtype, mode):
    backward_threads = _forward_threads(data)
    n, c = data.draw(st.integers(1, 2)), data.draw(st.integers(1, 3))
    height, width = data.draw(st.integers(1, 9)), data.draw(st.integers(1, 9))
    # output sizes from 1 to beyond the input (bins then repeat cells)
    out = (data.draw(st.integers(1, height + 2)), data.draw(st.integers(1, width + 2)))
    use_global = data.draw(st.booleans())
    x, xv = data.draw(arrays((n, c, height, width), dtype))
    if use_global:
        out = (1, 1)
        y = getattr(F, f"global_{mode}_pool2d")(x, keepdims=True)
    else:
        y = getattr(F, f"adaptive_{mode}_pool2d")(x, out)
    expected, argmax = R.adaptive_pool2d(xv, out, mode)
    assert y.shape == expected.shape and y.dtype == dtype
    _check(y.data, expected, dtype, f"{mode} adaptive forward")
    gy = _upstream(y.shape)
    minigrad.set_num_threads(backward_threads)
    y.backward(gy.astype(dtype))
    _check(x.grad, R.adaptive_pool2d_vjp(xv.shape, gy, mode, argmax), dtype,
           f"{mode} adaptive grad")


@st.composite
def unpadded_windows(draw, max_kernel=3):
    """(shape, kernel, stride) with at least one full window per axis."""
    kernel = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    stride = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    size = tuple(draw(st.integers(k, k + 5)) for k in kernel)
    return (draw(st.integers(1, 2)), draw(st.integers(1, 2))) + size, kernel, stride


@given(data=st.data(), dtype=dtypes, p=st.sampled_from([1.0, 2.0, 3.5]), ceil_mode=st.booleans())
def test_lp_pool2d_matches_reference(data, dtype, p, ceil_mode):
    backward_threads = _forward_threads(data)
    shape, kernel, stride = data.draw(unpadded_windows())
    x, xv = data.draw(arrays(shape, dtype))
    y = F.lp_pool2d(x, p, kernel, stride, ceil_mode)
    gy = _upstream(y.shape)
    expected, expected_grad = R.lp_pool2d(xv, p, kernel, stride, ceil_mode, gy)
    _check(y.data, expected, dtype, "lp_pool2d forward")
    minigrad.set_num_threads(backward_threads)
    y.backward(gy.astype(dtype))
    _check(x.grad, expected_grad, dtype, "lp_pool2d grad")


@given(data=st.data(), dtype=dtypes, training=st.booleans(), seed=st.integers(0, 2 ** 31))
def test_stochastic_pool2d_matches_reference(data, dtype, training, seed):
    backward_threads = _forward_threads(data)
    shape, kernel, stride = data.draw(unpadded_windows())
    x, xv = data.draw(arrays(shape, dtype, positive=True))
    y = F.stochastic_pool2d(x, kernel, stride, training=training, seed=seed)
    gy = _upstream(y.shape)
    minigrad.set_num_threads(backward_threads)
    y.backward(gy.astype(dtype))
    if training:
        draws = np.random.default_rng(seed).random(y.shape)
        expected, index = R.stochastic_pool2d_train(xv, draws, kernel, stride)
        expected_grad = R.scatter_to_argmax(xv.shape, index, gy)
    else:
        expected, expected_grad = R.stochastic_pool2d_eval(xv, kernel, stride, gy)
    _check(y.data, expected, dtype, "stochastic_pool2d forward")
    _check(x.grad, expected_grad, dtype, "stochastic_pool2d grad")


@given(data=st.data(), dtype=dtypes, overlapping=st.booleans())
def test_fractional_max_pool2d_matches_reference(data, dtype, overlapping):
    backward_threads = _forward_threads(data)
    kernel = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    size = tuple(data.draw(st.integers(k, k + 6)) for k in kernel)
    out = tuple(data.draw(st.integers(1, s - k + 1)) for s, k in zip(size, kernel))
    shape = (data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2))) + size
    x, xv = data.draw(arrays(shape, dtype))
    samples = np.random.default_rng(data.draw(st.integers(0, 2 ** 31))).random(
        shape[:2] + (2,)).astype(dtype)
    y = F.fractional_max_pool2d(x, kernel, output_size=out, overlapping=overlapping,
                                random_samples=samples)
    expected, index = R.fractional_max_pool2d(xv.astype(dtype), kernel, out, samples,
                                              overlapping)
    np.testing.assert_array_equal(y.data, expected)
    gy = _upstream(y.shape)
    minigrad.set_num_threads(backward_threads)
    y.backward(gy.astype(dtype))
    _check(x.grad, R.scatter_to_argmax(xv.shape, index, gy), dtype, "fractional grad")


@given(data=st.data(), dtype=dtypes, kind=st.sampled_from(["spp-max", "spp-avg", "mixed",
                                                           "gated"]))
def test_composed_pools_match_reference_forward_and_gradcheck(data, dtype, kind):
    """Spatial pyramid, mixed and gated pooling: forward against the reference loops, backward
    by central differences (float64, tiny shapes)."""
    backward_threads = _forward_threads(data)
    shape, kernel, stride = data.draw(unpadded_windows())
    x, xv = data.draw(arrays(shape, dtype))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 31)))
    if kind.startswith("spp"):
        levels = tuple(sorted({data.draw(st.integers(1, min(shape[2:]))) for _ in range(2)}))
        mode = kind[4:]
        y = F.spatial_pyramid_pool2d(x, levels, mode)
        expected = R.spatial_pyramid_pool2d(xv, levels, np.max if mode == "max" else np.mean)
        fn, params = (lambda a: F.spatial_pyramid_pool2d(a, levels, mode)), []
    elif kind == "mixed":
        alpha = rng.random(shape[1])
        y = F.mixed_pool2d(x, alpha.astype(dtype), kernel, stride)
        expected = R.mixed_pool2d(xv, alpha.reshape(1, -1, 1, 1), kernel, stride)[0]
        fn, params = (lambda a, b: F.mixed_pool2d(a, b, kernel, stride)), [alpha]
    else:
        weight = rng.standard_normal(kernel)
        y = F.gated_pool2d(x, weight.astype(dtype), kernel, stride)
        expected = R.gated_pool2d(xv, weight, kernel, stride)
        fn, params = (lambda a, b: F.gated_pool2d(a, b, kernel, stride)), [weight]
    _check(y.data, expected, dtype, f"{kind} forward")
    # one plane keeps the finite differences cheap; a per-channel alpha then has one entry
    inputs = [xv[:1, :1]] + [p[:1] if kind == "mixed" else p for p in params]
    minigrad.set_num_threads(backward_threads)
    minigrad.gradcheck(fn, [minigrad.tensor(a, requires_grad=True, dtype=np.float64)
                            for a in inputs])


def test_max_pool_window_in_padding_only():
    """With dilation a window can hold padding cells only: y = −inf as in PyTorch, but its
    argmax must still be a cell of the plane, or backward scatters outside the gradient buffer
    (an out-of-bounds write with boundscheck off)."""
    x = minigrad.tensor(np.array([[[[0.05, 0.55]]]], np.float32), requires_grad=True)
    y, indices = F.max_pool2d(x, (1, 2), None, (0, 1), (1, 3), return_indices=True)
    assert y.data[0, 0, 0, 0] == -np.inf
    assert 0 <= indices.data.min() and indices.data.max() < 2, indices.data
    y.backward(np.ones(y.shape, np.float32))
    assert x.grad.shape == (1, 1, 1, 2) and np.isfinite(x.grad).all()


def test_a_tensor_whose_data_was_replaced_by_a_view_still_works():
    """Regression: the kernels take C-contiguous memoryviews, and ``t.data = view`` used to
    reach them as is ("ndarray is not C-contiguous"); Function.__call__ now makes it contiguous."""
    values = np.arange(2 * 3 * 5 * 4, dtype=np.float32).reshape(2, 3, 5, 4)
    x = minigrad.tensor(np.zeros((2, 3, 4, 5), np.float32), requires_grad=True)
    x.data = values.transpose(0, 1, 3, 2)
    pooled = F.max_pool2d(x, 2)
    expected = R.max_pool2d(x.data.astype(np.float64), (2, 2), (2, 2), (0, 0), (1, 1), False)[0]
    np.testing.assert_array_equal(pooled.data, expected)
    summed = F.conv2d(x, minigrad.tensor(np.ones((1, 3, 1, 1), np.float32)))
    np.testing.assert_array_equal(summed.data, x.data.sum(axis=1, keepdims=True))
    (pooled.sum() + summed.sum()).backward()
    np.testing.assert_array_equal(x.grad, 1 + R.scatter_to_argmax(
        x.shape, R.max_pool2d(x.data, (2, 2), (2, 2), (0, 0), (1, 1), False)[1],
        np.ones(pooled.shape)))


@pytest.mark.parametrize("name", ["relu", "sigmoid", "selu", "elu", "silu", "gelu", "tanh"])
def test_activations_accept_zero_dimensional_input(name):
    """Regression (found by tests/helpers/fuzz_bad_input.py): sigmoid/silu/selu/elu of a 0-d
    tensor raised "return arrays must be of ArrayType" (a ufunc out= given a numpy scalar)."""
    x = minigrad.tensor(np.float64(-0.5), requires_grad=True)
    y = getattr(F, name)(x)
    assert y.shape == ()
    y.backward()
    batch = minigrad.tensor(np.array([-0.5]), requires_grad=True)
    getattr(F, name)(batch).backward(np.ones(1))
    np.testing.assert_allclose(x.grad, batch.grad[0], rtol=1e-12)
