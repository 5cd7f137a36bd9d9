"""Switching convolution algorithms and thread counts in tests, and checking a float32
convolution against the reference."""
import numpy as np

import minigrad
from minigrad.ops import conv_strided_winograd, conv_winograd

from . import reference as R


def forced_winograd(monkeypatch, tile=2):
    """Run Winograd F(tile×tile, 3×3) on every convolution it can compute (stride 1,
    ungrouped: 3×3 with a dilation that divides the input and the padding, larger odd square
    kernels padded by k − 3 or more), and F(4, 2) on every 3×3 stride-2 one (ungrouped,
    undilated), whatever their speed rules say; with ``tile`` None, neither. (The settings
    are part of the key of the cached layouts, so no test sees another's choice.)"""
    monkeypatch.setattr(conv_winograd, "USE_WINOGRAD", False if tile is None else tile)
    monkeypatch.setattr(conv_strided_winograd, "USE", False if tile is None else "always")


def on_threads(fn, threads=(1, 2, 3)):
    """[fn() on each of ``threads`` threads], the process's thread count restored after."""
    before = minigrad.get_num_threads()
    results = []
    try:
        for count in threads:
            minigrad.set_num_threads(count)
            results.append(fn())
    finally:
        minigrad.set_num_threads(before)
    return results


def check_float32_conv(x, w, b, y, rng, **hyper):
    """y = conv2d(x, w, b, **hyper) (float32 tensors, x and w requiring gradients) against
    the float64 reference, then the backward of a random output gradient against its
    reference: each pass to 1e-4 of its largest value."""
    expected = R.conv2d(x.data.astype(np.float64), w.data.astype(np.float64),
                        None if b is None else b.data.astype(np.float64), **hyper)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    gy = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(gy)
    grads = R.conv2d_vjp(x.data.astype(np.float64), w.data.astype(np.float64),
                         gy.astype(np.float64), **hyper)
    for got, want in zip((x.grad, w.grad), grads):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
