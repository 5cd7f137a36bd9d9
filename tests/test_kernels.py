"""The compiled kernels are the ones running, and thread control works."""
import numpy as np
import pytest

import minigrad as mg
from minigrad._kernels import activation as activation_kernels
import minigrad.nn.functional as F


def test_relu_kernel_is_compiled_cython():
    assert activation_kernels.__file__.endswith((".so", ".pyd"))
    assert type(activation_kernels.relu_forward).__name__ in (
        "cython_function_or_method", "fused_cython_function")


def test_relu_runs_through_the_kernel(monkeypatch):
    calls = []
    original = activation_kernels.relu_forward

    def spy(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(activation_kernels, "relu_forward", spy)
    F.relu(mg.tensor(np.array([-1.0, 2.0], np.float32)))
    assert calls


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [7, 1 << 16])      # serial and prange paths
def test_relu_kernel_matches_numpy(dtype, size):
    x = np.random.default_rng(0).standard_normal(size).astype(dtype)
    x[3] = np.nan
    t = mg.tensor(x, requires_grad=True)
    y = F.relu(t)
    expected = np.where(x > 0, x, 0)
    expected[3] = np.nan
    np.testing.assert_array_equal(y.data, expected)
    g = np.random.default_rng(1).standard_normal(size).astype(dtype)
    y.backward(g)
    np.testing.assert_array_equal(t.grad, np.where(x > 0, g, 0))


def test_relu_gradcheck():
    x = mg.tensor(np.random.default_rng(2).standard_normal((2, 3, 4, 4)), requires_grad=True,
                  dtype=np.float64)
    x.data[np.abs(x.data) < 1e-3] = 0.5     # keep away from the kink
    assert mg.gradcheck(F.relu, [x])


def test_set_num_threads_round_trip():
    before = mg.get_num_threads()
    try:
        mg.set_num_threads(1)
        assert mg.get_num_threads() == 1
    finally:
        mg.set_num_threads(before)
    with pytest.raises(ValueError, match="n must be"):
        mg.set_num_threads(0)


@pytest.mark.parametrize("shape", [(3, 5, 7), (2, 4, 64), (4, 3, 20000), (0, 3, 9), (2, 0, 5),
                                   (2, 3, 0)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_channel_sums_match_numpy_for_any_thread_count(shape, dtype):
    """A bias's gradient: short runs (``_sum``), long ones in lanes with a tail, empty ones."""
    from minigrad._kernels import normalization
    x = np.random.default_rng(5).standard_normal(shape).astype(dtype)
    results = []
    for threads in (1, 2, 3):
        sums = np.full(shape[1], np.nan)
        normalization.channel_sums(x, sums, threads)
        results.append(sums)
    np.testing.assert_allclose(results[0], x.astype(np.float64).sum(axis=(0, 2)), rtol=1e-12,
                               atol=1e-12)
    for other in results[1:]:
        np.testing.assert_array_equal(results[0], other)
    with pytest.raises(ValueError, match="channel_sums: need"):
        normalization.channel_sums(x, np.empty(shape[1] + 1), 1)


@pytest.mark.parametrize("shape", [(1, 3, 5), (9, 4, 49), (64, 2, 33), (3, 5, 200), (17, 1, 16)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_sums_match_numpy_for_any_thread_count(shape, dtype):
    """The moments and the backward's sums: runs shorter than the 16 lanes, with tails, a batch
    that the image chunks do not divide; the same bits on 1, 2 and 3 threads."""
    from minigrad._kernels import normalization
    rng = np.random.default_rng(6)
    x = (rng.standard_normal(shape) + 3).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    x64, gy64 = x.astype(np.float64), gy.astype(np.float64)
    mean_ref = x64.mean(axis=(0, 2))
    var_ref = ((x64 - mean_ref[:, None]) ** 2).mean(axis=(0, 2))
    results = []
    for threads in (1, 2, 3):
        mean, var = np.full(shape[1], np.nan), np.full(shape[1], np.nan)
        normalization.moments(x, mean, var, threads)
        sum_gy, sum_gy_xc = np.full(shape[1], np.nan), np.full(shape[1], np.nan)
        normalization.grad_sums(gy, x, mean, sum_gy, sum_gy_xc, threads)
        results.append(np.concatenate([mean, var, sum_gy, sum_gy_xc]))
    mean = results[0][:shape[1]]
    expected = np.concatenate([mean_ref, var_ref, gy64.sum(axis=(0, 2)),
                               (gy64 * (x64 - mean[:, None])).sum(axis=(0, 2))])
    np.testing.assert_allclose(results[0], expected, rtol=1e-12, atol=1e-11)
    for other in results[1:]:
        np.testing.assert_array_equal(results[0], other)



def _windows(padded, kernel, stride, dilation, out):
    """The (i, j) window views of a padded batch: view[b, c, oh, ow] is the pixel that tap
    (i, j) reads at output (oh, ow)."""
    (kh, kw), (sh, sw), (dh, dw), (out_h, out_w) = kernel, stride, dilation, out
    for i in range(kh):
        for j in range(kw):
            yield i, j, padded[:, :, i * dh:i * dh + sh * (out_h - 1) + 1:sh,
                               j * dw:j * dw + sw * (out_w - 1) + 1:sw]


def _padded_shape(shape, kernel, padding, dilation):
    n, channels, height, width = shape
    return (n, channels, height + 2 * padding[0] + kernel[0] * dilation[0],
            width + 2 * padding[1] + kernel[1] * dilation[1])


def _im2col_reference(x, kernel, stride, padding, dilation, out):
    """cols[(c·kh + i)·kw + j, b, oh·Wo + ow] read from a zero-padded copy of x."""
    top, left = padding
    padded = np.zeros(_padded_shape(x.shape, kernel, padding, dilation), x.dtype)
    padded[:, :, top:top + x.shape[2], left:left + x.shape[3]] = x
    cols = np.empty((x.shape[1],) + tuple(kernel) + (x.shape[0],) + tuple(out), x.dtype)
    for i, j, window in _windows(padded, kernel, stride, dilation, out):
        cols[:, i, j] = window.transpose(1, 0, 2, 3)
    return cols.reshape(cols.shape[0] * kernel[0] * kernel[1], x.shape[0], -1)


def _col2im_reference(cols, x_shape, kernel, stride, padding, dilation, out):
    """Each column entry added to the padded pixel it was read from; the padding dropped."""
    top, left = padding
    padded = np.zeros(_padded_shape(x_shape, kernel, padding, dilation), cols.dtype)
    unrolled = cols.reshape((x_shape[1],) + tuple(kernel) + (x_shape[0],) + tuple(out))
    for i, j, window in _windows(padded, kernel, stride, dilation, out):
        window += unrolled[:, i, j].transpose(1, 0, 2, 3)
    return padded[:, :, top:top + x_shape[2], left:left + x_shape[3]]


# output rows on either side of im2col's GATHER_WIDTH and col2im's SCATTER_WIDTH
@pytest.mark.parametrize("height, width, kernel, stride, padding, dilation", [
    (8, 8, (3, 3), (2, 2), (1, 1), (1, 1)),       # 4 wide
    (9, 17, (3, 3), (1, 1), (1, 1), (1, 1)),      # 17 wide
    (20, 21, (3, 2), (2, 2), (1, 0), (1, 1)),     # 10 wide
    (11, 13, (3, 3), (1, 2), (2, 1), (2, 1)),     # 7 wide, dilated
    (6, 40, (5, 5), (1, 1), (2, 2), (1, 1)),      # 40 wide
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_im2col_and_col2im_match_the_reference(height, width, kernel, stride, padding,
                                               dilation, dtype, threads):
    from minigrad._kernels import im2col as kernels
    from minigrad.ops.geometry import window_output_size
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, height, width)).astype(dtype)
    out = tuple(window_output_size(size, k, s, p, d, padding_end=p)
                for size, k, s, p, d in zip((height, width), kernel, stride, padding, dilation))
    args = kernel + stride + padding + dilation + out
    cols = np.full((5 * kernel[0] * kernel[1], 3, out[0] * out[1]), np.nan, dtype)
    kernels.im2col(x, cols, *args, threads)
    np.testing.assert_array_equal(cols, _im2col_reference(x, kernel, stride, padding,
                                                          dilation, out))
    g = rng.standard_normal(cols.shape).astype(dtype)
    folded = np.full_like(x, np.nan)
    kernels.col2im(g, folded, *args, threads)
    np.testing.assert_allclose(folded, _col2im_reference(g, x.shape, kernel, stride, padding,
                                                         dilation, out),
                               rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


def test_both_unrolling_paths_are_tested():
    """The widths above straddle the thresholds between the table and the row loops."""
    from minigrad._kernels import im2col as kernels
    assert 4 < kernels.SCATTER_WIDTH <= 10 < kernels.GATHER_WIDTH <= 17
