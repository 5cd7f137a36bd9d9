"""Compiled Cython kernels.

Conventions (as in scikit-learn): each ``.pyx`` holds typed-memoryview kernels over the fused
type ``floating`` (float32/float64), compiled with bounds and wraparound checks off, their loops in
``nogil`` blocks with ``prange`` where they parallelise. Kernels trust their arguments: every
shape and value is validated by the thin Python wrapper in ``minigrad/ops`` before a kernel is
entered, including the thread count every parallel kernel takes as ``num_threads``
(``_parallel.pxd``). The OpenMP runtime's settings are applied in ``minigrad/runtime.py``.

Imported from a source tree whose kernels are not built (e.g. the repository root after a
non-editable install, where it shadows the installed package), this package raises an
ImportError that says so and names the two ways out, as numpy does.
"""
import os as _os
from importlib.machinery import EXTENSION_SUFFIXES as _EXTENSION_SUFFIXES

_FOLDER = _os.path.dirname(_os.path.abspath(__file__))


def _unbuilt_message(kernels):
    return (f"minigrad: the compiled kernels ({', '.join(kernels)}) are missing in this source "
            f"tree ({_FOLDER}): its .pyx files have not been built for this Python. Either "
            "build them in place with `pip install -e .` in the repository root, or, to use an "
            "installed minigrad, run Python from another folder so that this source tree does "
            "not shadow it.")


def _built(kernel, files):
    return any(kernel + suffix in files for suffix in _EXTENSION_SUFFIXES)


def _check_built():
    """An ImportError saying what to do when no kernel next to its .pyx source is compiled (a
    source tree imported without a build, e.g. from the repository root after a non-editable
    install). An installed or editable build has them; one directory listing, at import."""
    files = set(_os.listdir(_FOLDER))
    sources = sorted(name[:-len(".pyx")] for name in files if name.endswith(".pyx"))
    if sources and not any(_built(source, files) for source in sources):
        raise ImportError(_unbuilt_message(sources))


def __getattr__(name):
    # ``from minigrad._kernels import x`` asks for the attribute before importing the submodule:
    # for a kernel whose .pyx has no compiled module (added since the last build), say so rather
    # than "cannot import name".
    if not name.startswith("_"):
        files = set(_os.listdir(_FOLDER))
        if name + ".pyx" in files and not _built(name, files):
            raise ImportError(_unbuilt_message([name]), name=f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_check_built()
