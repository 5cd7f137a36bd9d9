"""The global random number generator, so that model initialisation and dropout are reproducible.

``minigrad.manual_seed(seed)`` reseeds it (like ``torch.manual_seed``); every random choice in
minigrad (``nn.init``, dropout masks) draws from it unless given its own ``rng``.
"""
import numbers

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed):
    """Reseed the global generator; returns it."""
    global _generator
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative integer, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def default_generator():
    """The global ``numpy.random.Generator``."""
    return _generator


def resolve_rng(rng, op_name):
    """The generator to draw from: the global one for None, a fresh one seeded with ``rng`` for
    an integer (the same integer gives the same draws every call), or ``rng`` itself."""
    if rng is None:
        return _generator
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool) and rng >= 0:
        return np.random.default_rng(int(rng))
    raise TypeError(f"{op_name}: rng must be None, a non-negative integer seed or a "
                    f"numpy.random.Generator, got {type(rng).__name__}")
