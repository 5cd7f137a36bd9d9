"""Switching convolution algorithms in tests."""
from minigrad.ops import conv_winograd


def forced_winograd(monkeypatch, on=True):
    """With ``on``, run Winograd on every convolution it can compute (3×3, stride 1, no
    dilation, ungrouped), whatever its speed rules say; otherwise never. (The setting is part
    of the key of the cached layouts, so no test sees another's choice.)"""
    monkeypatch.setattr(conv_winograd, "USE_WINOGRAD", "always" if on else False)
