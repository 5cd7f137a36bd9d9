"""Per-thread scratch buffers that the convolution kernels reuse from call to call, and the
empty arrays that stand for the kernels' absent optional arguments."""
import ctypes
import math
import mmap
import os
import threading

import numpy as np

from ..runtime import cpu_info

#: Buffers start on a page boundary, as large ``mmap``-backed arrays do: BLAS and the
#: vectorised kernels lose speed on rows that straddle cache lines (benchmark case conv3x3_s2).
ALIGNMENT = 4096
HUGE_PAGE = 2 << 20
#: Outputs from this size start on a cache line (``aligned_empty``).
CACHE_LINE = 64
ALIGNED_MIN_BYTES = 1 << 16
#: Views kept for reuse, per thread (a network asks for a few shapes per layer).
MAX_VIEWS = 256
#: The chunk budget where the L3 is the core complex's own (AMD's Zen): 8 MiB chunks were the
#: fastest there (docs/algorithms.md).
NEAR_L3_BUDGET = 8 << 20

_ABSENT = {}


def _l2_bytes():
    """The first core's L2 size in bytes (Linux's sysfs), or None."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for index in sorted(os.listdir(base)):
            with open(os.path.join(base, index, "level")) as level:
                if level.read().strip() != "2":
                    continue
            with open(os.path.join(base, index, "size")) as size:
                text = size.read().strip()
            units = {"K": 1 << 10, "M": 1 << 20}
            return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)
    except (OSError, ValueError):
        pass
    return None


def chunk_budget():
    """Bytes of intermediate results one chunk of a batch may hold when a later step reads
    them back (Winograd's tile matrices): they come back at cache speed only while they fit
    in a cache near the core. On AMD's Zen that is the core complex's L3; elsewhere (Intel's
    server cores, whose L3 is a die-wide mesh: a third of L2's copy speed) half the core's
    L2, the fastest there (docs/algorithms.md); ``NEAR_L3_BUDGET`` when the L2 is unknown.
    By the vendor, not the compiler's tuning (``direct_conv.ZEN``): a portable build on Zen
    has the same caches."""
    l2 = _l2_bytes()
    if cpu_info("vendor_id") == "AuthenticAMD" or not l2:
        return NEAR_L3_BUDGET
    return l2 // 2


def absent(dtype, ndim=1):
    """An empty ``ndim``-D array of ``dtype``: what a kernel takes for an optional array
    argument it should skip (no bias, no second input). Shared and never written to."""
    key = (np.dtype(dtype), ndim)
    array = _ABSENT.get(key)
    if array is None:
        array = _ABSENT[key] = np.empty((0,) * ndim, key[0])
        array.flags.writeable = False
    return array


class _Workspace(threading.local):
    """Scratch buffers reused across calls (one set per thread).

    A fresh large ``np.empty`` is backed by new pages that the OS zero-fills on first touch,
    which costs more than filling them; below glibc's adaptive mmap threshold the allocator
    often hands back warm memory, but only by luck of the allocation pattern. Reuse makes it
    deterministic. Each named slot only grows, to the largest chunk seen."""

    def __init__(self):
        self.buffers = {}
        # (name, shape, dtype) → the view last handed out: at batch 1, making the view anew
        # costs as much as a small kernel
        self.views = {}

    def get(self, name, shape, dtype):
        key = (name, shape, dtype)
        view = self.views.get(key)
        if view is not None:
            return view
        dtype = np.dtype(dtype)
        nbytes = int(math.prod(shape)) * dtype.itemsize
        buffer = self.buffers.get(name)
        if buffer is None or buffer.size < nbytes:
            buffer = self.buffers[name] = _aligned_bytes(nbytes)
            self.views = {k: v for k, v in self.views.items() if k[0] != name}
        if len(self.views) >= MAX_VIEWS:
            self.views.clear()
        view = self.views[key] = buffer[:nbytes].view(dtype).reshape(shape)
        return view

    def clear(self):
        self.buffers.clear()
        self.views.clear()


def _aligned_bytes(nbytes, alignment=ALIGNMENT):
    """An uninitialised uint8 array of ``nbytes`` starting on an ``alignment`` boundary. From
    2 MiB up it is a private anonymous mapping advised for transparent huge pages, so its
    backing does not depend on what the heap held before (with heap memory, the strided 3×3
    convolution's speed changed from one process to the next)."""
    if nbytes >= HUGE_PAGE and hasattr(mmap, "MADV_HUGEPAGE"):
        mapping = mmap.mmap(-1, -(-nbytes // HUGE_PAGE) * HUGE_PAGE)
        try:
            mapping.madvise(mmap.MADV_HUGEPAGE)
        except OSError:
            pass
        return np.frombuffer(mapping, np.uint8)[:nbytes]
    return _heap_array(nbytes, np.dtype(np.uint8), alignment)


def _address(array):
    """The address of a writeable array's first element (``array.ctypes.data`` builds an
    object that costs three times as long: a visible share of a small layer at batch 1)."""
    return ctypes.addressof(ctypes.c_char.from_buffer(array))


def _heap_array(count, dtype, alignment):
    """An uninitialised 1-D array of ``count`` elements of ``dtype`` from the heap, starting
    on an ``alignment`` boundary: a slice of a slightly larger array (numpy's heap arrays start
    on 16 bytes, so the boundary is a whole number of elements away)."""
    raw = np.empty(count + alignment // dtype.itemsize, dtype)
    start = -_address(raw) % alignment // dtype.itemsize
    return raw[start:start + count]


def aligned_empty(shape, dtype, min_bytes=ALIGNED_MIN_BYTES):
    """``np.empty(shape, dtype)`` starting on a cache line from ``min_bytes`` up: for a
    forward's output, which the kernels store whole vectors into, where numpy's 16-byte
    alignment left every one of those stores straddling two lines (a forward's kernel 20–25 %
    slower, by where the heap happened to put its output); with ``min_bytes`` 0, for packed
    weights that a kernel loads whole vectors of at every tile. Smaller arrays keep
    ``np.empty``: at batch 1 the network ran slower with its small outputs aligned. The
    array is a view of part of a larger buffer, so gradients stay ``np.empty``: the autograd
    engine keeps a first gradient without copying it only when the array owns its memory or
    is all of an unshared one."""
    dtype = np.dtype(dtype)
    count = math.prod(shape)
    if count * dtype.itemsize < min_bytes:
        return np.empty(shape, dtype)
    return _heap_array(count, dtype, CACHE_LINE).reshape(shape)


workspace = _Workspace()


def release_workspace():
    """Free this thread's convolution scratch buffers (they are re-created on the next call)."""
    workspace.clear()
