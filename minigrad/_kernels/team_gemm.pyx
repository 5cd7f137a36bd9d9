# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""A batch of matrix products on minigrad's own threads, each product (or a slab of its
columns) whole on one thread, by numpy's BLAS called single-threaded or, in float32 with
AVX-512, by the register tile of ``gemm_tile.h`` (``own``).

Why: numpy's OpenBLAS runs a large product on threads of its own, which on a machine with as
many cores as minigrad's threads take turns on the cores with minigrad's OpenMP team (one
hands the core to the other at every switch between a BLAS product and a kernel). Here the
team itself runs the products, one after the other per thread, while OpenBLAS is set to one
thread, so that only the team's threads run.

The BLAS entry points are not linked but bound at run time (``bind``) from the OpenBLAS that
numpy loaded, by ``minigrad/ops/team_matmul.py``; unbound, ``products`` raises.
"""
from cython.parallel cimport parallel, prange, threadid
from libc.stdint cimport int64_t, intptr_t
from libc.stdlib cimport free, malloc

from ._gemm_tile cimport GEMM_TILE as OWN_BUILT, GEMM_WORK as OWN_WORK, gemm as _own_gemm
from ._parallel cimport check_threads

ctypedef fused floating:
    float
    double

#: Whether this build has the float32 product of gemm_tile.h (AVX-512): ``products(own=True)``
OWN = bool(OWN_BUILT)

# CBLAS's enums
cdef enum:
    ROW_MAJOR = 101
    NO_TRANS = 111
    TRANS = 112

# cblas_?gemm with 64-bit (ILP64) or 32-bit integers
ctypedef void (*sgemm64_t)(int, int, int, int64_t, int64_t, int64_t, float, const float*,
                           int64_t, const float*, int64_t, float, float*,
                           int64_t) noexcept nogil
ctypedef void (*dgemm64_t)(int, int, int, int64_t, int64_t, int64_t, double, const double*,
                           int64_t, const double*, int64_t, double, double*,
                           int64_t) noexcept nogil
ctypedef void (*sgemm32_t)(int, int, int, int, int, int, float, const float*, int,
                           const float*, int, float, float*, int) noexcept nogil
ctypedef void (*dgemm32_t)(int, int, int, int, int, int, double, const double*, int,
                           const double*, int, double, double*, int) noexcept nogil
ctypedef void (*set_threads_t)(int) noexcept nogil
ctypedef int (*get_threads_t)() noexcept nogil

cdef void* _sgemm = NULL
cdef void* _dgemm = NULL
cdef bint _ilp64 = False
cdef set_threads_t _set_threads = NULL
cdef get_threads_t _get_threads = NULL


def bind(intptr_t sgemm, intptr_t dgemm, bint ilp64, intptr_t set_threads,
         intptr_t get_threads):
    """Use these addresses (of cblas_sgemm, cblas_dgemm, with 64-bit integers if ``ilp64``,
    and of the library's set/get thread-count functions) from now on; all zero: unbind."""
    global _sgemm, _dgemm, _ilp64, _set_threads, _get_threads
    if not (sgemm and dgemm and set_threads and get_threads):
        sgemm = dgemm = set_threads = get_threads = 0
    _sgemm, _dgemm, _ilp64 = <void*>sgemm, <void*>dgemm, ilp64
    _set_threads, _get_threads = <set_threads_t>set_threads, <get_threads_t>get_threads


def bound():
    """Whether BLAS entry points are bound."""
    return _sgemm != NULL


cdef inline void _gemm(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                       const floating* a, Py_ssize_t lda, const floating* b, Py_ssize_t ldb,
                       floating beta, floating* c, Py_ssize_t ldc, float* work) noexcept nogil:
    """c = op(a) · op(b) + beta · c (beta 0 or 1), by gemm_tile.h where ``work`` is given
    (float32 only), else by BLAS."""
    cdef int ta = TRANS if trans_a else NO_TRANS, tb = TRANS if trans_b else NO_TRANS
    if floating is float:
        if work != NULL:
            # op(a)[i, l] and op(b)[l, j] as steps along i and l, l and j
            _own_gemm(a, 1 if trans_a else lda, lda if trans_a else 1, b,
                      1 if trans_b else ldb, ldb if trans_b else 1, c, ldc, m, n, k,
                      beta != 0, work)
        elif _ilp64:
            (<sgemm64_t>_sgemm)(ROW_MAJOR, ta, tb, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
        else:
            (<sgemm32_t>_sgemm)(ROW_MAJOR, ta, tb, <int>m, <int>n, <int>k, 1, a, <int>lda, b,
                                <int>ldb, beta, c, <int>ldc)
    else:
        if _ilp64:
            (<dgemm64_t>_dgemm)(ROW_MAJOR, ta, tb, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
        else:
            (<dgemm32_t>_dgemm)(ROW_MAJOR, ta, tb, <int>m, <int>n, <int>k, 1, a, <int>lda, b,
                                <int>ldb, beta, c, <int>ldc)


cdef int _check_own(str kernel, bint own, bint float32) except -1:
    """ValueError if ``own`` is asked of a build or a dtype without the own product."""
    if own and not (float32 and OWN_BUILT):
        raise ValueError(f"team_gemm.{kernel}: the own product is float32 with AVX-512 only")
    return 0


cdef float* _own_work(bint own, int nt) except? NULL:
    """With ``own``, a new buffer (free it) of a panel of B for each of ``nt`` threads, row
    t·OWN_WORK for thread t; NULL without."""
    if not own:
        return NULL
    cdef float* work = <float*>malloc(nt * OWN_WORK * sizeof(float))
    if work == NULL:
        raise MemoryError()
    return work


cdef int _check_bound(str kernel) except -1:
    if _sgemm == NULL:
        raise RuntimeError(f"team_gemm.{kernel}: no BLAS bound (team_gemm.bind)")
    return 0


cdef int _check_rows(str kernel, Py_ssize_t itemsize, tuple matrices) except -1:
    """ValueError unless each matrix, given as (step along its rows, step between its rows,
    both in bytes, row length), has unit steps and a leading dimension at least its row
    length (at least 1)."""
    cdef Py_ssize_t step, lead, length
    for step, lead, length in matrices:
        if step != itemsize or lead < max(1, length) * itemsize:
            raise ValueError(f"team_gemm.{kernel}: every matrix needs unit steps along its "
                             f"rows and a leading dimension at least its row length")
    return 0


cdef int _check_operands(str kernel, const floating[:, :, :] a, bint trans_a,
                         const floating[:, :, :] b, bint trans_b, floating[:, :, :] c,
                         str c_name, Py_ssize_t count, bint also, str required) except -1:
    """ValueError unless ``also`` holds (what the message calls ``required``) and the stacks
    of ``count`` products op(a[p]) · op(b[p]) fit c's (·, M, N) matrices, then
    ``_check_rows`` of all three."""
    cdef Py_ssize_t m = c.shape[1], n = c.shape[2], k = a.shape[1] if trans_a else a.shape[2]
    if not (also and a.shape[0] == count and b.shape[0] == count
            and (a.shape[2] if trans_a else a.shape[1]) == m
            and (b.shape[2] if trans_b else b.shape[1]) == k
            and (b.shape[1] if trans_b else b.shape[2]) == n):
        raise ValueError(f"team_gemm.{kernel}: shapes do not chain or {required}: a "
                         f"({a.shape[0]}, {a.shape[1]}, {a.shape[2]}){'ᵀ' if trans_a else ''}, "
                         f"b ({b.shape[0]}, {b.shape[1]}, {b.shape[2]})"
                         f"{'ᵀ' if trans_b else ''}, {c_name} ({c.shape[0]}, {m}, {n})")
    return _check_rows(kernel, sizeof(floating), ((a.strides[2], a.strides[1], a.shape[2]),
                                                  (b.strides[2], b.strides[1], b.shape[2]),
                                                  (c.strides[2], c.strides[1], n)))


def products(const floating[:, :, :] a, bint trans_a, const floating[:, :, :] b, bint trans_b,
             floating[:, :, :] out, bint accumulate, Py_ssize_t unit, int num_threads,
             bint own=False):
    """out[p] (+)= op(a[p]) · op(b[p]) for every p, op(x) = xᵀ where asked (``trans_a``,
    ``trans_b``): a (P, M, K) or, transposed, (P, K, M); b (P, K, N) or (P, N, K); out (P,
    M, N); ``accumulate`` adds to out instead of overwriting it. Each matrix has unit steps
    along its last axis and a leading dimension (step of its middle axis) at least its row
    length; out overlaps neither input (the wrapper checks that). With ``unit`` 0 the
    products are split evenly over ``num_threads`` threads, each whole on one thread; with a
    ``unit`` ≥ 1 that divides N, thread t computes columns [unit·(t·U div T), unit·((t +
    1)·U div T)) of every product (U = N / unit, T threads): the columns of the same units
    (the images of a batch) that a kernel splitting them evenly gives that thread. Each
    product is BLAS's, or with ``own`` (float32, where ``OWN``) gemm_tile.h's, which sums
    every value in the same order however the columns are split. OpenBLAS runs on one
    thread meanwhile and on its former count afterwards."""
    cdef Py_ssize_t count = out.shape[0], m = out.shape[1], n = out.shape[2]
    cdef Py_ssize_t k = a.shape[1] if trans_a else a.shape[2]
    cdef Py_ssize_t lda = a.strides[1] // sizeof(floating)
    cdef Py_ssize_t ldb = b.strides[1] // sizeof(floating)
    cdef Py_ssize_t ldc = out.strides[1] // sizeof(floating)
    cdef floating beta = 1 if accumulate else 0
    cdef Py_ssize_t units = n // unit if unit > 0 else 0, p, t, first, last
    cdef int nt = check_threads(num_threads), before
    cdef float* work
    cdef float* mine
    _check_own("products", own, floating is float)
    _check_bound("products")
    _check_operands("products", a, trans_a, b, trans_b, out, "out", count,
                    unit >= 0 and (unit == 0 or n % unit == 0),
                    f"columns not in whole units of {unit}")
    if count == 0 or m == 0 or n == 0:
        return
    if unit > 0:
        nt = <int>min(nt, units)
    work = _own_work(own, nt)
    with nogil:
        before = _get_threads()
        _set_threads(1)
        with parallel(num_threads=nt):
            mine = work + threadid() * OWN_WORK if own else NULL
            if unit == 0:
                for p in prange(count, schedule="static"):
                    _gemm(trans_a, trans_b, m, n, k, &a[p, 0, 0], lda, &b[p, 0, 0], ldb,
                          beta, &out[p, 0, 0], ldc, mine)
            else:
                for t in prange(nt, schedule="static"):
                    first = unit * (t * units // nt)
                    last = unit * ((t + 1) * units // nt)
                    for p in range(count):
                        # the slab's columns of op(b): columns of b, or rows of the stored bᵀ
                        _gemm(trans_a, trans_b, m, last - first, k, &a[p, 0, 0], lda,
                              &b[p, first, 0] if trans_b else &b[p, 0, first], ldb, beta,
                              &out[p, 0, first], ldc, mine)
        _set_threads(before)
    free(work)


def summed_products(const floating[:, :, :] a, bint trans_a, const floating[:, :, :] b,
                    bint trans_b, floating[:, :, :] partials, int num_threads,
                    bint own=False):
    """partials[s] = Σ_{p in share s} op(a[p]) · op(b[p]) for the S = partials.shape[0]
    shares of P products split evenly and in order (share s: products [s·P div S, (s + 1)·P
    div S)): a (P, M, K) or, transposed, (P, K, M); b (P, K, N) or (P, N, K); partials (S,
    M, N) with 1 ≤ S ≤ max(P, 1), overlapping neither input (the wrapper checks that). Each
    share is summed whole on one thread, product by product by BLAS (or with ``own``, as
    ``products``, by gemm_tile.h), so the partials do not depend on ``num_threads``;
    OpenBLAS runs on one thread meanwhile."""
    cdef Py_ssize_t count = a.shape[0], shares = partials.shape[0]
    cdef Py_ssize_t m = partials.shape[1], n = partials.shape[2]
    cdef Py_ssize_t k = a.shape[1] if trans_a else a.shape[2]
    cdef Py_ssize_t lda = a.strides[1] // sizeof(floating)
    cdef Py_ssize_t ldb = b.strides[1] // sizeof(floating)
    cdef Py_ssize_t ldc = partials.strides[1] // sizeof(floating)
    cdef Py_ssize_t p, t
    cdef int nt = check_threads(num_threads), before
    cdef float* work
    cdef float* mine
    _check_own("summed_products", own, floating is float)
    _check_bound("summed_products")
    _check_operands("summed_products", a, trans_a, b, trans_b, partials, "partials", count,
                    1 <= shares <= max(count, 1), "shares not between 1 and the products")
    if m == 0 or n == 0:
        return
    if count == 0 or k == 0:
        partials[...] = 0
        return
    nt = <int>min(nt, shares)
    work = _own_work(own, nt)
    with nogil:
        before = _get_threads()
        _set_threads(1)
        with parallel(num_threads=nt):
            mine = work + threadid() * OWN_WORK if own else NULL
            for t in prange(shares, schedule="static"):
                for p in range(t * count // shares, (t + 1) * count // shares):
                    _gemm(trans_a, trans_b, m, n, k, &a[p, 0, 0], lda, &b[p, 0, 0], ldb,
                          0 if p == t * count // shares else 1, &partials[t, 0, 0], ldc,
                          mine)
        _set_threads(before)
    free(work)
