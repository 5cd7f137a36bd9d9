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

One output row at a time, "tap by tap" as the other pooling kernels: each filter tap (i, j)
updates the dot products of the whole row, ``d_m[ow] += filters[m, i·kw + j] · row_i[ow·sw + j]``,
a loop the compiler vectorises, into a per-thread scratch row of doubles (float32 input too);
then the gates combine the row's responses. Each dot product thus sums its taps in row-major
order whatever the thread count.

Each kernel runs without the GIL, parallel over the planes (``prange``), so one thread owns whole
planes: a plane's input gradient is accumulated by one thread (in double, in its scratch), and
the filter gradient is first summed per plane (into ``partial[P, F·kh·kw]``, in double), then
the planes' sums are added serially in plane order. Every result is therefore bitwise the same
for any number of threads.
"""
from cython.parallel cimport parallel, prange, threadid
from cython cimport floating
from libc.math cimport exp
from libc.string cimport memset

from ._parallel cimport team_size

# Below this many input elements the OpenMP start-up costs more than the work.
cdef Py_ssize_t PARALLEL_MIN = 1 << 14

#: most filters a tree may have (a depth-4 tree: 8 leaves and 7 gates)
MAX_FILTERS = 15


def forward_scratch(Py_ssize_t filters, Py_ssize_t out_width):
    """Doubles of scratch each thread needs in ``forward``: one row of dot products per filter
    and one row of gate values per gate."""
    return (filters + filters // 2) * out_width


def backward_scratch(Py_ssize_t filters, Py_ssize_t out_width, Py_ssize_t height,
                     Py_ssize_t width):
    """Doubles of scratch each thread needs in ``backward``: the rows of dot products, gates and
    node gradients, and the plane's input gradient."""
    return (2 * filters + filters // 2) * out_width + height * width


def _check(x_shape, y_shape, filters_shape, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,
           Py_ssize_t sw):
    """ValueError unless the planes, the filters and the output size agree with the geometry."""
    planes, h, w = tuple(x_shape[:3])
    nodes, taps = tuple(filters_shape[:2])
    if min(kh, kw, sh, sw) < 1 or kh > h or kw > w:
        raise ValueError(f"tree_pool: kernel ({kh}, {kw}) and stride ({sh}, {sw}) must be "
                         f"positive with the kernel inside the {h}×{w} plane")
    if (tuple(y_shape[:3]) != (planes, (h - kh) // sh + 1, (w - kw) // sw + 1)
            or taps != kh * kw or nodes % 2 != 1 or not 3 <= nodes <= MAX_FILTERS):
        raise ValueError(f"tree_pool: inconsistent shapes x {(planes, h, w)}, out "
                         f"{tuple(y_shape[:3])}, filters {(nodes, taps)} for kernel ({kh}, {kw})")


cdef int _team(double[:, ::1] scratch, Py_ssize_t need, Py_ssize_t work,
               int num_threads) except -1:
    """The team size: ValueError unless ``scratch`` has a row of ``need`` doubles per thread."""
    cdef int nt = team_size(work, PARALLEL_MIN, num_threads)
    if scratch.shape[0] < nt or scratch.shape[1] < need:
        raise ValueError(f"tree_pool: scratch of shape ({scratch.shape[0]}, {scratch.shape[1]}) "
                         f"for a team of {nt} threads needing {need} doubles each")
    return nt


cdef inline double _sigmoid(double z) noexcept nogil:
    """1 / (1 + e^−z) without overflow: e^z / (1 + e^z) for negative z."""
    cdef double e
    if z >= 0:
        return 1.0 / (1.0 + exp(-z))
    e = exp(z)
    return e / (1.0 + e)


cdef void _dot_rows(const floating* x, Py_ssize_t W, Py_ssize_t oh, Py_ssize_t OW,
                    const floating* filters, Py_ssize_t F, Py_ssize_t kh, Py_ssize_t kw,
                    Py_ssize_t sh, Py_ssize_t sw, double* d) noexcept nogil:
    """d[m·OW + ow] = filters[m]·(window (oh, ow) of the plane x), for every filter m; the taps
    are added in row-major order."""
    cdef Py_ssize_t m, i, j, ow
    cdef const floating* src
    cdef double* dm
    cdef double tap
    memset(d, 0, F * OW * sizeof(double))
    for m in range(F):
        dm = d + m * OW
        for i in range(kh):
            for j in range(kw):
                tap = filters[m * kh * kw + i * kw + j]
                src = x + (oh * sh + i) * W + j
                for ow in range(OW):
                    dm[ow] += tap * <double>src[ow * sw]


cdef void _combine_rows(double* d, double* s, Py_ssize_t F, Py_ssize_t OW) noexcept nogil:
    """Gates, children before parents: s[m·OW + ow] = sigmoid(d_m), then d_m becomes node m's
    response s·d_left + (1 − s)·d_right (the leaves' rows stay their dot products)."""
    cdef Py_ssize_t m, ow
    cdef double* dm
    cdef double* sm
    cdef double* left
    cdef double* right
    for m in range(F // 2 - 1, -1, -1):
        dm, sm = d + m * OW, s + m * OW
        left, right = d + (2 * m + 1) * OW, d + (2 * m + 2) * OW
        for ow in range(OW):
            sm[ow] = _sigmoid(dm[ow])
            dm[ow] = sm[ow] * left[ow] + (1.0 - sm[ow]) * right[ow]


cdef void _forward_plane(const floating* x, const floating* filters, floating* y, double* d,
                         Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t F,
                         Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw) noexcept nogil:
    """One plane of ``forward``; ``d``: this thread's scratch, F·OW doubles for the responses
    and, past them, (F // 2)·OW for the gates."""
    cdef Py_ssize_t oh, ow
    for oh in range(OH):
        _dot_rows(x, W, oh, OW, filters, F, kh, kw, sh, sw, d)
        _combine_rows(d, d + F * OW, F, OW)
        for ow in range(OW):
            y[oh * OW + ow] = <floating>d[ow]


def forward(const floating[:, :, ::1] x, const floating[:, ::1] filters,
            floating[:, :, ::1] y, double[:, ::1] scratch, Py_ssize_t kh, Py_ssize_t kw,
            Py_ssize_t sh, Py_ssize_t sw, int num_threads):
    """y[p, oh, ow] = the tree's response (root node) on the window of x[p] at rows
    [oh·sh, oh·sh + kh) and columns [ow·sw, ow·sw + kw); ``filters`` in heap order (gates, then
    leaves). ``scratch``: a row of ``forward_scratch(F, OW)`` doubles per thread."""
    _check(x.shape, y.shape, filters.shape, kh, kw, sh, sw)
    cdef Py_ssize_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t OH = y.shape[1], OW = y.shape[2], F = filters.shape[0], p
    cdef int nt = _team(scratch, forward_scratch(F, OW), P * H * W, num_threads)
    with nogil, parallel(num_threads=nt):
        for p in prange(P, schedule='static'):
            _forward_plane(&x[p, 0, 0], &filters[0, 0], &y[p, 0, 0], &scratch[threadid(), 0], W,
                           OH, OW, F, kh, kw, sh, sw)


cdef void _backward_plane(const floating* x, const floating* filters, const floating* gy,
                          floating* gx, double* partial, double* buffer, Py_ssize_t H,
                          Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t F,
                          Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh,
                          Py_ssize_t sw) noexcept nogil:
    """One plane of ``backward``: fills this plane's gx and its row of ``partial``. ``buffer``:
    this thread's scratch (``backward_scratch`` doubles)."""
    cdef Py_ssize_t K = kh * kw, G = F // 2, oh, ow, m, i, j
    cdef double* d = buffer                     # F·OW responses
    cdef double* s = d + F * OW                 # G·OW gates
    cdef double* g = s + G * OW                 # F·OW gradients of the dot products
    cdef double* gxd = g + F * OW               # H·W input gradient
    cdef double* gm
    cdef double* gxr
    cdef const floating* src
    cdef double tap, total, gate, upstream
    memset(gxd, 0, H * W * sizeof(double))
    memset(partial, 0, F * K * sizeof(double))
    for oh in range(OH):
        _dot_rows(x, W, oh, OW, filters, F, kh, kw, sh, sw, d)
        _combine_rows(d, s, F, OW)
        for ow in range(OW):
            g[ow] = gy[oh * OW + ow]
        for m in range(G):                      # parents before children
            for ow in range(OW):
                upstream, gate = g[m * OW + ow], s[m * OW + ow]
                g[(2 * m + 1) * OW + ow] = upstream * gate
                g[(2 * m + 2) * OW + ow] = upstream * (1.0 - gate)
                g[m * OW + ow] = upstream * (d[(2 * m + 1) * OW + ow] - d[(2 * m + 2) * OW + ow]) \
                    * gate * (1.0 - gate)
        for m in range(F):
            gm = g + m * OW
            for i in range(kh):
                for j in range(kw):
                    tap = filters[m * K + i * kw + j]
                    src = x + (oh * sh + i) * W + j
                    gxr = gxd + (oh * sh + i) * W + j
                    total = 0.0
                    for ow in range(OW):
                        total += gm[ow] * <double>src[ow * sw]
                        gxr[ow * sw] += tap * gm[ow]
                    partial[m * K + i * kw + j] += total
    for i in range(H * W):
        gx[i] = <floating>gxd[i]


def backward(const floating[:, :, ::1] x, const floating[:, ::1] filters,
             const floating[:, :, ::1] gy, floating[:, :, ::1] gx, double[:, ::1] partial,
             floating[:, ::1] gfilters, double[:, ::1] scratch, Py_ssize_t kh, Py_ssize_t kw,
             Py_ssize_t sh, Py_ssize_t sw, int num_threads):
    """The gradients of ``forward`` (the same x, filters and geometry) for the output gradient
    gy: gx (every cell) and gfilters (F, kh·kw). ``partial`` (P, F·kh·kw) receives each plane's
    filter gradient before the planes are summed in order; ``scratch``: a row of
    ``backward_scratch(F, OW, H, W)`` doubles per thread.

    The forward's dot products and gates are recomputed row by row (nothing is kept between the
    passes). Top-down, the root gets gy, gate m passes g·s_m to its left child and g·(1 − s_m)
    to its right child, and its own dot product gets g·(r_left − r_right)·s_m·(1 − s_m); with
    g_m each node's dot-product gradient, gx_R += Σ_m g_m·filters[m] and
    gfilters[m] += g_m·x_R."""
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
    cdef int nt = _team(scratch, backward_scratch(F, OW, H, W), P * H * W, num_threads)
    with nogil:
        with parallel(num_threads=nt):
            for p in prange(P, schedule='static'):
                _backward_plane(&x[p, 0, 0], &filters[0, 0], &gy[p, 0, 0], &gx[p, 0, 0],
                                &partial[p, 0], &scratch[threadid(), 0], H, W, OH, OW, F, kh,
                                kw, sh, sw)
        # the planes' sums, added in plane order (F·kh·kw values per plane: cheap serially)
        for t in range(F * K):
            total = 0.0
            for p in range(P):
                total += partial[p, t]
            gfilters[t // K, t % K] = <floating>total
