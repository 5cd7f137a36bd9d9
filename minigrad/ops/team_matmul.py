"""Stacks of matrix products for the convolution's hot paths, run by minigrad's own threads
(``minigrad/_kernels/team_gemm.pyx``: each product, or a slab of its columns, whole on one
thread, numpy's OpenBLAS called single-threaded or, ``OWN_GEMM``, minigrad's own float32
product) instead of by OpenBLAS's threads.

On a machine with as many cores as threads, OpenBLAS's threads and minigrad's OpenMP team
take turns on the cores: every switch between a BLAS product and a kernel hands a core from
one thread to the other. Winograd's convolution alternates them on every call (transforms,
α² products, transforms), and its products ran faster on the team (docs/algorithms.md has the
measurements).

The BLAS is found at import: the OpenBLAS numpy loaded (``/proc/self/maps``), with its CBLAS
``?gemm`` and its thread-count functions. Where there is none (another BLAS, another
platform), or with one thread, ``matmul`` is numpy's ``matmul``.
"""
import ctypes
import threading

import numpy as np

from .._kernels import team_gemm as _kernels
from ..runtime import openblas_libraries
from ..threads import get_num_threads

#: Run the products on the team where a BLAS was bound (tests switch it off to compare).
USE_TEAM = True
#: ... and the float32 ones (``matmul_sum``'s too) by the team's own product
#: (``minigrad/_kernels/gemm_tile.h``, with AVX-512) rather than BLAS: on the small and
#: skinny products of the Winograd passes and of 1×1 convolutions it ran faster than
#: OpenBLAS (docs/algorithms.md has the measurements). Tests switch it.
OWN_GEMM = _kernels.OWN
#: ... from this many multiply-adds per product (or per unit of columns, for products split
#: in slabs): below, OpenBLAS's kernels for small products (no packing) were faster (36
#: products of 64×64 by 64×128 on two threads: 136 µs against 153); from 2¹⁹ the
#: convolutions' passes were faster with the own product (docs/algorithms.md).
OWN_MIN_MACS = 1 << 19
#: ``matmul_sum`` on the team: the shares its products are summed in (a fixed split, so that
#: results do not depend on the thread count; enough shares to spread over the threads).
SUM_SHARES = 16
#: ``matmul_sum`` without the team: the most bytes of per-product partials held at once.
SUM_CHUNK_BYTES = 4 << 20
#: ... and where each thread gets a share of at least one product and all of them together at
#: least this many multiply-adds: below, starting the team and switching OpenBLAS's thread
#: count cost more than they save (a stack of two 64×64×64 products: 9.3 µs on the team,
#: 11.1 by numpy's matmul; 2·32×32×64: 5.8 against 4.3; one product of a batch-1 1×1
#: convolution: 7.9 against 3.2).
TEAM_MIN_MACS = 1 << 19

#: The entry points by OpenBLAS build: numpy's own wheels (64-bit integers, prefixed), 64-bit
#: integer builds, plain builds: (sgemm, dgemm, 64-bit integers, set threads, get threads).
_SYMBOLS = (
    ("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_", True,
     "scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("cblas_sgemm64_", "cblas_dgemm64_", True,
     "openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("cblas_sgemm", "cblas_dgemm", False,
     "openblas_set_num_threads", "openblas_get_num_threads"),
)


def _bind():
    """Bind the kernels to numpy's OpenBLAS; whether one was found."""
    for library in openblas_libraries():
        for sgemm, dgemm, ilp64, set_threads, get_threads in _SYMBOLS:
            if all(hasattr(library, name) for name in (sgemm, dgemm, set_threads, get_threads)):
                _kernels.bind(*(ctypes.cast(getattr(library, name), ctypes.c_void_p).value
                                for name in (sgemm, dgemm)), ilp64,
                              *(ctypes.cast(getattr(library, name), ctypes.c_void_p).value
                                for name in (set_threads, get_threads)))
                return True
    return False


#: Whether a BLAS was found and bound.
BOUND = _bind()
#: One caller at a time: each sets OpenBLAS's thread count and restores what it found, which
#: two overlapping callers (Python threads) could leave at one.
_TEAM = threading.Lock()


def _operand(matrices):
    """(transposed, view) for a stack of matrices (P, R, S) the kernel can read: itself with
    unit steps along its rows, or its transpose (P, S, R) with them; None otherwise."""
    step = matrices.itemsize
    if matrices.strides[2] == step and matrices.strides[1] >= max(1, matrices.shape[2]) * step:
        return False, matrices
    swapped = matrices.transpose(0, 2, 1)
    if swapped.strides[2] == step and swapped.strides[1] >= max(1, swapped.shape[2]) * step:
        return True, swapped
    return None


def _bindable(a, b, out, macs, threads, min_threads=2):
    """Whether the team should run ``macs`` multiply-adds of a @ b into out (2-D or stacks)
    on ``threads`` threads: at least ``min_threads`` of them, enough work
    (``TEAM_MIN_MACS``), a common float dtype the kernels take, out with unit steps along its
    rows and overlapping neither input."""
    return (USE_TEAM and BOUND and threads >= min_threads and macs >= TEAM_MIN_MACS
            and a.dtype == b.dtype == out.dtype
            and a.dtype in (np.float32, np.float64) and out.strides[-1] == out.itemsize
            and out.strides[-2] >= max(1, out.shape[-1]) * out.itemsize
            and not (np.may_share_memory(out, a) or np.may_share_memory(out, b)))


def matmul(a, b, out, accumulate=False):
    """out = a @ b, or out += a @ b with ``accumulate``, for stacks of matrices a (P, M, K),
    b (P, K, N) and out (P, M, N) of one float dtype (any of them transposed views); returns
    out. The P products are split evenly over the threads, each whole on one thread, where a
    BLAS is bound, there is enough work (``TEAM_MIN_MACS``, P at least the threads) and every
    matrix has unit steps along its rows or columns; otherwise numpy's ``matmul``. Results
    do not depend on the thread count (each product is BLAS's on one thread, whichever runs
    it).

    Example::

        u = np.ones((36, 64, 32), np.float32); v = np.ones((36, 32, 100), np.float32)
        m = np.empty((36, 64, 100), np.float32)
        team_matmul.matmul(u, v, m)
    """
    _check_stacks("matmul", a, b, out)
    if not _on_team(a, b, out, accumulate, 0, a.shape[0]):
        numpy_matmul(a, b, out, accumulate)
    return out


def matmul_columns(a, b, out, accumulate=False):
    """out = a @ b (or out += a @ b) for single matrices a (M, K), b (K, N), out (M, N), as
    ``matmul``, out's columns split over the threads (each slab one product on one thread)."""
    if a.ndim != 2 or b.ndim != 2 or out.ndim != 2 or not (
            a.shape[1] == b.shape[0] and out.shape == (a.shape[0], b.shape[1])):
        raise ValueError(f"team_matmul.matmul_columns: shapes do not chain: a {a.shape} @ b "
                         f"{b.shape} -> out {out.shape}")
    if not _on_team(a[None], b[None], out[None], accumulate, 1, b.shape[1]):
        numpy_matmul(a, b, out, accumulate)
    return out


def matmul_slabs(a, b, out, unit):
    """out = a @ b for stacks as ``matmul``, each thread computing a slab of whole ``unit``s
    of every product's columns: the same images of a batch as the kernels that split the
    images evenly over the threads, so that a thread's products read and write what its own
    core's cache holds. Columns must be a whole number of units."""
    _check_stacks("matmul_slabs", a, b, out, unit)
    if not _on_team(a, b, out, False, unit, out.shape[2] // unit):
        matmul(a, b, out)
    return out


def matmul_sum(a, b, out):
    """out = Σ_p a[p] @ b[p] for stacks a (P, M, K), b (P, K, N) and out (M, N) of one float
    dtype (a weight gradient summed over a batch's images); returns out. Where the team can
    run it (as ``matmul``), the P products are cut into ``SUM_SHARES`` (or P) even, ordered
    shares, each summed whole on one thread into a partial of its own (BLAS accumulating
    product by product; with M < N each product as (b[p]ᵀ @ a[p]ᵀ)ᵀ, more rows than columns,
    which BLAS ran faster: 64 × 256 sums of 64-deep products 0.81 ms against 0.97; float32
    products of ``OWN_MIN_MACS`` or more by the own product, as they are), and the
    partials are added in order: at most ``SUM_SHARES``·M·N values extra, and results that
    do not depend on the thread count. Otherwise numpy's ``matmul`` by chunks of products
    whose partials are summed (at most ``SUM_CHUNK_BYTES`` of them at a time).

    Example::

        g = np.ones((64, 32, 100), np.float32); x = np.ones((64, 100, 16), np.float32)
        w = np.empty((32, 16), np.float32)
        team_matmul.matmul_sum(g, x, w)         # w == 6400
    """
    if not (a.ndim == b.ndim == 3 and out.ndim == 2 and a.shape[0] == b.shape[0]
            and a.shape[2] == b.shape[1] and out.shape == (a.shape[1], b.shape[2])):
        raise ValueError(f"team_matmul.matmul_sum: shapes do not chain: a {a.shape} @ b "
                         f"{b.shape} summed -> out {out.shape}")
    threads = get_num_threads()
    # one thread too (the kernel sums in place where numpy would keep every product), but
    # not one product, which numpy's BLAS splits over its threads
    if a.shape[0] > 1 and _bindable(a, b, out[None], a.shape[0] * out.size * a.shape[2],
                                    threads, 1):
        own = _own(out, out.size * a.shape[2])
        # BLAS: the products with more rows than columns, as (b[p]ᵀ @ a[p]ᵀ)ᵀ where M < N
        swap = not own and out.shape[0] < out.shape[1]
        first, second = (b.transpose(0, 2, 1), a.transpose(0, 2, 1)) if swap else (a, b)
        left, right = _operand(first), _operand(second)
        if left is not None and right is not None:
            partials = np.empty((min(SUM_SHARES, a.shape[0]), first.shape[1],
                                 second.shape[2]), out.dtype)
            with _TEAM:
                _kernels.summed_products(left[1], left[0], right[1], right[0], partials,
                                         threads, own)
            if swap:     # (numpy's sum into a transposed out walks it element by element)
                np.copyto(out, partials.sum(axis=0).T)
            else:
                np.sum(partials, axis=0, out=out)
            return out
    if a.shape[0] == 1:
        return np.matmul(a[0], b[0], out=out)
    step = max(1, SUM_CHUNK_BYTES // max(1, out.nbytes))
    out[...] = 0
    for start in range(0, a.shape[0], step):
        out += np.matmul(a[start:start + step], b[start:start + step]).sum(axis=0)
    return out


def _check_stacks(name, a, b, out, unit=None):
    """ValueError unless a (P, M, K) @ b (P, K, N) -> out (P, M, N) chain and, with a
    ``unit``, N is a whole number of them."""
    chains = a.ndim == b.ndim == out.ndim == 3 and (
        a.shape[0] == b.shape[0] == out.shape[0] and a.shape[2] == b.shape[1]
        and out.shape[1:] == (a.shape[1], b.shape[2]))
    if unit is None and not chains:
        raise ValueError(f"team_matmul.{name}: shapes do not chain: a {a.shape} @ b {b.shape} "
                         f"-> out {out.shape}")
    if unit is not None and not (chains and unit >= 1 and out.shape[2] % unit == 0):
        raise ValueError(f"team_matmul.{name}: shapes do not chain or columns not in whole "
                         f"units of {unit}: a {a.shape} @ b {b.shape} -> out {out.shape}")


def _own(out, macs):
    """Whether products into ``out`` of ``macs`` multiply-adds each (per product, or per unit
    of a slab) go to the own product: ``OWN_GEMM``, float32, at least ``OWN_MIN_MACS``. A
    choice by shape alone, so that the thread count never changes which code sums them."""
    return OWN_GEMM and out.dtype == np.float32 and macs >= OWN_MIN_MACS


def _on_team(a, b, out, accumulate, unit, parts):
    """Run ``_kernels.products`` for these stacks in ``parts`` shares (whole products with
    ``unit`` 0, else column slabs of ``unit``s) where ``_bindable`` and both operands have
    rows to hand to BLAS; whether it did. Float32 products of ``OWN_MIN_MACS`` or more (per
    unit) go to the own product (``OWN_GEMM``) whatever the thread count, so that their
    results do not depend on it: with fewer shares than threads on as many threads as shares
    (a stack split in slabs goes back to its caller, to be split by products), on one thread
    where the team would not pay."""
    threads = get_num_threads()
    own = _own(out, out.shape[-2] * (unit or out.shape[-1]) * a.shape[-1])
    if own:
        if not _bindable(a, b, out, TEAM_MIN_MACS, 1, min_threads=1):
            return False
        if parts < threads:
            if unit and a.shape[0] >= threads:
                return False
            threads = max(1, parts)
        if out.size * a.shape[-1] < TEAM_MIN_MACS:
            threads = 1
    elif parts < threads or not _bindable(a, b, out, out.size * a.shape[-1], threads):
        return False
    left, right = _operand(a), _operand(b)
    if left is None or right is None:
        return False
    with _TEAM:
        _kernels.products(left[1], left[0], right[1], right[0], out, accumulate, unit,
                          threads, own)
    return True


def numpy_matmul(a, b, out, accumulate=False):
    """out = a @ b, or out += a @ b with ``accumulate``, by numpy's ``matmul`` (any shapes it
    takes); returns out. The fallback of the functions above."""
    if accumulate:
        out += np.matmul(a, b)
    else:
        np.matmul(a, b, out=out)
    return out
