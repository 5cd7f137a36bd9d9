"""Switching convolution algorithms and thread counts in tests."""
import minigrad
from minigrad.ops import conv_strided_winograd, conv_winograd


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
