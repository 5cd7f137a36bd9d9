# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Tree pooling kernels (Lee, Gallagher & Tu, 2016), forward and backward.

A tree of depth d has L = 2^(d−1) leaves and G = L − 1 gates, numbered as a heap: node m's
children are 2m + 1 and 2m + 2, nodes 0 … G−1 are the gates (0 the root) and nodes G … 2G the
leaves, left to right. The kernels take the F = 2L − 1 filters stacked in that order,
``filters[F, kh·kw]`` (gates first, then leaves), and every window R computes the F dot
products d_m = filters[m]·x_R, then bottom-up, for each gate m, s_m = sigmoid(d_m) and the node's
response r_m = s_m·r_{2m+1} + (1 − s_m)·r_{2m+2} (a leaf's response is its dot product). The
output is r_0.

Arrays are viewed as planes: ``x[P, H, W]``, ``y[P, OH, OW]`` with P = N·C, C-contiguous;
windows are unpadded, starting at (oh·sh, ow·sw), and lie inside the plane (the Python wrapper,
``minigrad/ops/pooling_extra.py``, computes the output size; ``_check`` guards the loops).
Every window's arithmetic runs in double, for float32 too.

Each kernel runs without the GIL, parallel over the planes (``prange``), so one thread owns whole
planes: the input gradient of a plane is written by one thread only, and the filter gradient is
first summed per plane (into ``partial[P, F·kh·kw]``, in double, windows in row-major order), then
the planes' sums are added serially in plane order. Every result is therefore bitwise the same
for any number of threads.
"""
from cython.parallel cimport prange
from cython cimport floating
from libc.math cimport exp
from libc.string cimport memset

from ._parallel cimport team_size

# Below this many input elements the OpenMP start-up costs more than the work.
cdef Py_ssize_t PARALLEL_MIN = 1 << 14

cdef enum:
    MAX_LEAVES = 8                      # a depth-4 tree: the per-window arrays live on the stack
    MAX_NODES = 2 * MAX_LEAVES - 1


def _check(x_shape, y_shape, filters_shape, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,
           Py_ssize_t sw):
    """ValueError unless the planes, the filters and the output size agree with the geometry."""
    planes, h, w = tuple(x_shape[:3])
    nodes, taps = tuple(filters_shape[:2])
    if min(kh, kw, sh, sw) < 1 or kh > h or kw > w:
        raise ValueError(f"tree_pool: kernel ({kh}, {kw}) and stride ({sh}, {sw}) must be "
                         f"positive with the kernel inside the {h}×{w} plane")
    if (tuple(y_shape[:3]) != (planes, (h - kh) // sh + 1, (w - kw) // sw + 1)
            or taps != kh * kw or nodes % 2 != 1 or not 3 <= nodes <= MAX_NODES):
        raise ValueError(f"tree_pool: inconsistent shapes x {(planes, h, w)}, out "
                         f"{tuple(y_shape[:3])}, filters {(nodes, taps)} for kernel ({kh}, {kw})")


cdef inline double _sigmoid(double z) noexcept nogil:
    """1 / (1 + e^−z) without overflow: e^z / (1 + e^z) for negative z."""
    cdef double e
    if z >= 0:
        return 1.0 / (1.0 + exp(-z))
    e = exp(z)
    return e / (1.0 + e)


cdef inline void _window(const floating* x, Py_ssize_t W, const floating* filters,
                         Py_ssize_t F, Py_ssize_t kh, Py_ssize_t kw, double* r,
                         double* s) noexcept nogil:
    """The window whose top-left cell is ``x``: r[m] = node m's response for every node, s[m] =
    sigmoid of gate m's dot product."""
    cdef Py_ssize_t m, i, j, K = kh * kw, G = F // 2
    cdef const floating* f
    cdef const floating* row
    cdef double d
    for m in range(F):
        f = filters + m * K
        d = 0.0
        for i in range(kh):
            row = x + i * W
            for j in range(kw):
                d += <double>f[i * kw + j] * <double>row[j]
        r[m] = d
    for m in range(G - 1, -1, -1):      # children before parents
        s[m] = _sigmoid(r[m])
        r[m] = s[m] * r[2 * m + 1] + (1.0 - s[m]) * r[2 * m + 2]


cdef void _forward_plane(const floating* x, const floating* filters, floating* y,
                         Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t F,
                         Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw) noexcept nogil:
    """One plane of ``forward`` (its own stack arrays: one per thread)."""
    cdef double r[MAX_NODES]
    cdef double s[MAX_NODES]
    cdef Py_ssize_t oh, ow
    for oh in range(OH):
        for ow in range(OW):
            _window(x + oh * sh * W + ow * sw, W, filters, F, kh, kw, r, s)
            y[oh * OW + ow] = <floating>r[0]


def forward(const floating[:, :, ::1] x, const floating[:, ::1] filters,
            floating[:, :, ::1] y, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
            int num_threads):
    """y[p, oh, ow] = the tree's response (root node) on the window of x[p] at rows
    [oh·sh, oh·sh + kh) and columns [ow·sw, ow·sw + kw); ``filters`` in heap order (gates, then
    leaves)."""
    _check(x.shape, y.shape, filters.shape, kh, kw, sh, sw)
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2], F = filters.shape[0], p
    cdef int nt = team_size(P * H * W, PARALLEL_MIN, num_threads)
    with nogil:
        for p in prange(P, schedule='static', num_threads=nt):
            _forward_plane(&x[p, 0, 0], &filters[0, 0], &y[p, 0, 0], W, OH, OW, F, kh, kw, sh,
                           sw)


cdef void _backward_plane(const floating* x, const floating* filters, const floating* gy,
                          floating* gx, double* partial, Py_ssize_t H, Py_ssize_t W,
                          Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t F, Py_ssize_t kh,
                          Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw) noexcept nogil:
    """One plane of ``backward``: zeroes and fills this plane's gx and its row of ``partial``."""
    cdef double r[MAX_NODES]
    cdef double s[MAX_NODES]
    cdef double g[MAX_NODES]
    cdef Py_ssize_t K = kh * kw, G = F // 2, oh, ow, m, i, j, t
    cdef const floating* xw
    cdef floating* gxw
    cdef double total, cell
    memset(gx, 0, H * W * sizeof(floating))
    memset(partial, 0, F * K * sizeof(double))
    for oh in range(OH):
        for ow in range(OW):
            xw = x + oh * sh * W + ow * sw
            gxw = gx + oh * sh * W + ow * sw
            _window(xw, W, filters, F, kh, kw, r, s)
            g[0] = gy[oh * OW + ow]
            for m in range(G):          # parents before children
                g[2 * m + 1] = g[m] * s[m]
                g[2 * m + 2] = g[m] * (1.0 - s[m])
                g[m] = g[m] * (r[2 * m + 1] - r[2 * m + 2]) * s[m] * (1.0 - s[m])
            for i in range(kh):
                for j in range(kw):
                    t = i * kw + j
                    cell = xw[i * W + j]
                    total = 0.0
                    for m in range(F):
                        total += g[m] * <double>filters[m * K + t]
                        partial[m * K + t] += g[m] * cell
                    gxw[i * W + j] += <floating>total


def backward(const floating[:, :, ::1] x, const floating[:, ::1] filters,
             const floating[:, :, ::1] gy, floating[:, :, ::1] gx, double[:, ::1] partial,
             floating[:, ::1] gfilters, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,
             Py_ssize_t sw, int num_threads):
    """The gradients of ``forward`` (the same x, filters and geometry) for the output gradient
    gy: gx (every cell) and gfilters (F, kh·kw). ``partial`` (P, F·kh·kw) is scratch that
    receives each plane's filter gradient before the planes are summed in order.

    The forward's dot products and gates are recomputed window by window (nothing is kept
    between the passes). Top-down, the root gets gy, gate m passes g·s_m to its left child and
    g·(1 − s_m) to its right child, and its own dot product gets
    g·(r_left − r_right)·s_m·(1 − s_m); with g_m each node's dot-product gradient,
    gx_R += Σ_m g_m·filters[m] and gfilters[m] += g_m·x_R."""
    _check(x.shape, gy.shape, filters.shape, kh, kw, sh, sw)
    if (gx.shape[0] != x.shape[0] or gx.shape[1] != x.shape[1] or gx.shape[2] != x.shape[2]
            or gfilters.shape[0] != filters.shape[0] or gfilters.shape[1] != filters.shape[1]
            or partial.shape[0] != x.shape[0]
            or partial.shape[1] != filters.shape[0] * filters.shape[1]):
        raise ValueError("tree_pool: the shapes of gx, gfilters and partial do not match x "
                         "and filters")
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = gy.shape[1], OW = gy.shape[2], F = filters.shape[0]
    cdef Py_ssize_t K = kh * kw, p, t
    cdef double total
    cdef int nt = team_size(P * H * W, PARALLEL_MIN, num_threads)
    with nogil:
        for p in prange(P, schedule='static', num_threads=nt):
            _backward_plane(&x[p, 0, 0], &filters[0, 0], &gy[p, 0, 0], &gx[p, 0, 0],
                            &partial[p, 0], H, W, OH, OW, F, kh, kw, sh, sw)
        # the planes' sums, added in plane order (F·kh·kw values per plane: cheap serially)
        for t in range(F * K):
            total = 0.0
            for p in range(P):
                total += partial[p, t]
            gfilters[t // K, t % K] = <floating>total
