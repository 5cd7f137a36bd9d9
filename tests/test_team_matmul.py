"""Stacks of matrix products on minigrad's threads (``ops.team_matmul``, kernel
``_kernels.team_gemm``): against numpy's matmul, transposed operands, accumulation, the
fallback, the thread count, and the kernel's own guards."""
import numpy as np
import pytest

import minigrad
from minigrad._kernels import team_gemm
from minigrad.ops import team_matmul

RNG = np.random.default_rng(3)

needs_blas = pytest.mark.skipif(not team_matmul.BOUND,
                                reason="no OpenBLAS with CBLAS entry points found in numpy")


@pytest.fixture(params=[False, True], ids=["blas", "own"])
def own(request, monkeypatch):
    """The float32 products by BLAS or by the team's own product (where built)."""
    if request.param and not team_gemm.OWN:
        pytest.skip("the own product needs AVX-512")
    monkeypatch.setattr(team_matmul, "OWN_GEMM", request.param)
    monkeypatch.setattr(team_matmul, "OWN_MIN_MACS", 0)
    return request.param


@pytest.fixture
def two_threads(monkeypatch):
    """Two threads, and the team for products of any size."""
    monkeypatch.setattr(team_matmul, "TEAM_MIN_MACS", 0)
    before = minigrad.get_num_threads()
    minigrad.set_num_threads(2)
    yield
    minigrad.set_num_threads(before)


def _stacks(p, m, k, n, dtype, trans_a=False, trans_b=False):
    a = RNG.standard_normal((p, k, m) if trans_a else (p, m, k)).astype(dtype)
    b = RNG.standard_normal((p, n, k) if trans_b else (p, k, n)).astype(dtype)
    return (a.transpose(0, 2, 1) if trans_a else a), (b.transpose(0, 2, 1) if trans_b else b)


@needs_blas
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True),
                                              (True, True)])
@pytest.mark.parametrize("accumulate", [False, True])
def test_products_match_numpy(two_threads, own, monkeypatch, dtype, trans_a, trans_b,
                              accumulate):
    a, b = _stacks(5, 7, 9, 11, dtype, trans_a, trans_b)
    start = RNG.standard_normal((5, 7, 11)).astype(dtype)
    out = start.copy()
    calls = []
    monkeypatch.setattr(team_gemm, "products",
                        lambda *args: calls.append(args) or _products(*args))
    assert team_matmul.matmul(a, b, out, accumulate=accumulate) is out
    assert calls, "the team's kernel was not used"
    expected = np.matmul(a.astype(np.float64), b.astype(np.float64)) + (start if accumulate
                                                                        else 0)
    tolerance = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, expected, rtol=tolerance, atol=tolerance)


_products = team_gemm.products


@pytest.mark.skipif(not team_gemm.OWN, reason="the own product needs AVX-512")
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True),
                                              (True, True)])
@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (7, 300, 45), (8, 256, 32), (17, 513, 600),
                                     (64, 32, 64), (33, 1, 70)])
def test_own_product_edges(trans_a, trans_b, accumulate, m, k, n):
    """gemm_tile.h against float64 numpy: rows past a block of 8, columns past a panel of
    32 or a block of 512, sums past a block of 256 values."""
    a, b = _stacks(2, m, k, n, np.float32, trans_a, trans_b)
    start = RNG.standard_normal((2, m, n)).astype(np.float32)
    out = start.copy()
    left, right = team_matmul._operand(a), team_matmul._operand(b)
    team_gemm.products(left[1], left[0], right[1], right[0], out, accumulate, 0, 2, True)
    expected = np.matmul(a.astype(np.float64), b) + (start if accumulate else 0)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4 * max(1, k) ** 0.5)


def test_own_product_is_float32_only():
    a = np.ones((1, 2, 3))
    with pytest.raises(ValueError, match="float32"):
        team_gemm.products(a, False, a.transpose(0, 2, 1), False, np.ones((1, 2, 2)), False,
                           0, 1, True)


@needs_blas
def test_products_on_strided_planes(two_threads):
    """Planes a gap apart (as Winograd's tile matrices are) and rows longer than the matrix."""
    a = RNG.standard_normal((4, 6, 8)).astype(np.float32)
    wide = RNG.standard_normal((4 * 3 * 10 + 5,)).astype(np.float32)
    b = np.lib.stride_tricks.as_strided(wide, (4, 8, 3), (4 * (3 * 10 + 1), 4 * 3, 4))
    out = np.zeros((4, 6, 5), np.float32)[:, :, :3]
    team_matmul.matmul(a, b, out)
    np.testing.assert_allclose(out, np.matmul(a, b), rtol=1e-5, atol=1e-5)


@needs_blas
@pytest.mark.parametrize("summed", [False, True])
def test_results_do_not_depend_on_the_thread_count(own, monkeypatch, summed):
    """Whole products per thread, and sums in shares fixed by the stack's length."""
    monkeypatch.setattr(team_matmul, "TEAM_MIN_MACS", 0)
    p = 37 if summed else 6
    a, b = _stacks(p, 33, 40, 50, np.float32)
    results = []
    before = minigrad.get_num_threads()
    try:
        for threads in (1, 2, 3, 8):
            minigrad.set_num_threads(threads)
            results.append(team_matmul.matmul_sum(a, b, np.empty((33, 50), np.float32))
                           if summed else
                           team_matmul.matmul(a, b, np.empty((p, 33, 50), np.float32)))
    finally:
        minigrad.set_num_threads(before)
    for other in results[1:]:
        np.testing.assert_array_equal(results[0], other)


def test_fallback_is_numpy(monkeypatch):
    monkeypatch.setattr(team_matmul, "USE_TEAM", False)
    monkeypatch.setattr(team_gemm, "products", None)     # would fail if called
    a, b = _stacks(3, 4, 5, 6, np.float64)
    out = np.ones((3, 4, 6))
    team_matmul.matmul(a, b, out, accumulate=True)
    np.testing.assert_allclose(out, 1 + np.matmul(a, b), rtol=1e-12)


@needs_blas
def test_overlapping_or_unsupported_layouts_fall_back(two_threads, monkeypatch):
    monkeypatch.setattr(team_gemm, "products", None)
    a, b = _stacks(2, 4, 4, 4, np.float32)
    # out overlapping an input: numpy's matmul handles it (it copies)
    buffer = np.concatenate([a, b])
    expected = np.matmul(a, b)
    team_matmul.matmul(buffer[:2], buffer[2:], buffer[:2])
    np.testing.assert_allclose(buffer[:2], expected, rtol=1e-5)
    # every step of a operand larger than one element: no rows to hand to BLAS
    team_matmul.matmul(np.ones((2, 8, 8), np.float32)[:, ::2, ::2], b, np.empty((2, 4, 4),
                                                                               np.float32))


@pytest.mark.parametrize("shapes", [((2, 3, 4), (2, 5, 6), (2, 3, 6)),
                                    ((2, 3, 4), (3, 4, 6), (2, 3, 6)),
                                    ((2, 3, 4), (2, 4, 6), (2, 3, 5)),
                                    ((3, 4), (4, 6), (3, 6))])
def test_matmul_names_the_shapes_that_do_not_chain(shapes):
    a, b, out = (np.ones(s, np.float32) for s in shapes)
    with pytest.raises(ValueError, match="shapes do not chain"):
        team_matmul.matmul(a, b, out)


@needs_blas
def test_empty_stacks(two_threads):
    out = np.ones((0, 3, 4), np.float32)
    team_matmul.matmul(np.ones((0, 3, 2), np.float32), np.ones((0, 2, 4), np.float32), out)
    out = np.ones((2, 3, 4), np.float32)
    team_matmul.matmul(np.ones((2, 3, 0), np.float32), np.ones((2, 0, 4), np.float32), out)
    np.testing.assert_array_equal(out, 0)


@needs_blas
def test_kernel_checks_its_arguments():
    a = np.ones((2, 3, 4), np.float32)
    b = np.ones((2, 4, 5), np.float32)
    out = np.empty((2, 3, 5), np.float32)
    with pytest.raises(ValueError, match="do not chain"):
        team_gemm.products(a, False, b, True, out, False, 0, 2)
    with pytest.raises(ValueError, match="whole units of 2"):
        team_gemm.products(a, False, b, False, out, False, 2, 2)     # 5 columns
    with pytest.raises(ValueError, match="whole units of -1"):
        team_gemm.products(a, False, b, False, out, False, -1, 2)
    with pytest.raises(ValueError, match="unit steps"):
        team_gemm.products(a, False, np.ones((2, 4, 10), np.float32)[:, :, ::2], False, out,
                           False, 0, 2)
    with pytest.raises(ValueError, match="num_threads"):
        team_gemm.products(a, False, b, False, out, False, 0, 0)


@needs_blas
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True),
                                              (True, True)])
@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("n", [1, 2, 37])
def test_column_slabs_match_numpy(two_threads, own, monkeypatch, dtype, trans_a, trans_b,
                                  accumulate, n):
    """One product, out's columns split over the threads (with fewer columns than threads,
    numpy's matmul, or the own product on fewer threads)."""
    a, b = _stacks(1, 9, 13, n, dtype, trans_a, trans_b)
    a, b = a[0], b[0]
    start = RNG.standard_normal((9, n)).astype(dtype)
    out = start.copy()
    calls = []
    monkeypatch.setattr(team_gemm, "products",
                        lambda *args: calls.append(args) or _products(*args))
    assert team_matmul.matmul_columns(a, b, out, accumulate=accumulate) is out
    # a column for every thread, else numpy's (the own product: always)
    assert bool(calls) is (n >= 2 or (own and dtype == np.float32))
    expected = a.astype(np.float64) @ b.astype(np.float64) + (start if accumulate else 0)
    tolerance = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, expected, rtol=tolerance, atol=tolerance)



def test_column_slabs_name_the_shapes_that_do_not_chain():
    with pytest.raises(ValueError, match="shapes do not chain"):
        team_matmul.matmul_columns(np.ones((3, 4)), np.ones((5, 6)), np.ones((3, 6)))


@needs_blas
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("unit, units", [(1, 1), (4, 3), (16, 8), (3, 5)])
@pytest.mark.parametrize("threads", [2, 3])
def test_slabs_of_units_match_numpy(own, monkeypatch, dtype, trans_a, unit, units, threads):
    """Each thread a slab of whole units of every product's columns (with fewer units than
    threads, the products split instead)."""
    monkeypatch.setattr(team_matmul, "TEAM_MIN_MACS", 0)
    a, b = _stacks(4, 6, 7, unit * units, dtype, trans_a)
    out = np.full((4, 6, unit * units), np.nan, dtype)
    calls = []
    monkeypatch.setattr(team_gemm, "products",
                        lambda *args: calls.append(args) or _products(*args))
    before = minigrad.get_num_threads()
    minigrad.set_num_threads(threads)
    try:
        assert team_matmul.matmul_slabs(a, b, out, unit) is out
    finally:
        minigrad.set_num_threads(before)
    # slabs of units, or with fewer units than threads whole products per thread
    assert calls and calls[0][6] == (unit if units >= threads else 0)
    tolerance = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, np.matmul(a.astype(np.float64), b), rtol=tolerance,
                               atol=tolerance)



@pytest.mark.parametrize("shapes, unit", [(((2, 3, 4), (2, 4, 6), (2, 3, 6)), 4),
                                          (((2, 3, 4), (2, 4, 6), (2, 3, 6)), 0),
                                          (((2, 3, 4), (2, 5, 6), (2, 3, 6)), 2)])
def test_slabs_name_the_shapes_and_units(shapes, unit):
    a, b, out = (np.ones(s, np.float32) for s in shapes)
    with pytest.raises(ValueError, match="whole units"):
        team_matmul.matmul_slabs(a, b, out, unit)


@needs_blas
def test_openblas_thread_count_is_restored(two_threads):
    """The products set OpenBLAS to one thread and give it back its count afterwards, also
    from several Python threads at once."""
    import threading
    library = next(lib for lib in minigrad.runtime.openblas_libraries()
                   if hasattr(lib, "scipy_openblas_get_num_threads64_")
                   or hasattr(lib, "openblas_get_num_threads"))
    get = getattr(library, "scipy_openblas_get_num_threads64_", None) or \
        library.openblas_get_num_threads
    before = get()
    a, b = _stacks(8, 32, 32, 32, np.float32)

    def work():
        for _ in range(20):
            team_matmul.matmul(a, b, np.empty((8, 32, 32), np.float32))
    workers = [threading.Thread(target=work) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert get() == before


_summed_products = team_gemm.summed_products


@needs_blas
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True),
                                              (True, True)])
@pytest.mark.parametrize("p", [2, 5, 40])
@pytest.mark.parametrize("m, n", [(7, 11), (11, 7)])
def test_summed_products_match_numpy(two_threads, own, monkeypatch, dtype, trans_a, trans_b,
                                     p, m, n):
    """Σ_p a[p] @ b[p] in ordered shares (fewer products than ``SUM_SHARES``: one each), with
    more columns than rows (by BLAS, the products taken transposed) and fewer."""
    a, b = _stacks(p, m, 9, n, dtype, trans_a, trans_b)
    out = np.full((m, n), np.nan, dtype)
    calls = []
    monkeypatch.setattr(team_gemm, "summed_products",
                        lambda *args: calls.append(args) or _summed_products(*args))
    assert team_matmul.matmul_sum(a, b, out) is out
    assert calls and calls[0][4].shape[0] == min(p, team_matmul.SUM_SHARES)
    expected = np.matmul(a.astype(np.float64), b.astype(np.float64)).sum(axis=0)
    tolerance = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, expected, rtol=tolerance, atol=tolerance * p)
    swapped = m < n and not (own and dtype == np.float32)
    assert calls[0][4].shape[1:] == ((n, m) if swapped else (m, n))


@pytest.mark.parametrize("use_team", [False, True])
@pytest.mark.parametrize("p", [0, 1, 9])
def test_summed_fallback_and_edges(monkeypatch, use_team, p):
    """numpy's matmul by chunks of products (a chunk smaller than the stack), one product, an
    empty stack (zeros)."""
    monkeypatch.setattr(team_matmul, "USE_TEAM", use_team)
    monkeypatch.setattr(team_matmul, "TEAM_MIN_MACS", 0)
    monkeypatch.setattr(team_matmul, "SUM_CHUNK_BYTES", 3 * 4 * 6 * 8 * 2)
    a, b = _stacks(p, 4, 5, 6, np.float64)
    out = np.full((4, 6), np.nan)
    team_matmul.matmul_sum(a, b, out)
    np.testing.assert_allclose(out, np.matmul(a, b).sum(axis=0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shapes", [((2, 3, 4), (2, 5, 6), (3, 6)),
                                    ((2, 3, 4), (3, 4, 6), (3, 6)),
                                    ((2, 3, 4), (2, 4, 6), (2, 3, 6)),
                                    ((2, 3, 4), (2, 4, 6), (3, 5))])
def test_sum_names_the_shapes_that_do_not_chain(shapes):
    a, b, out = (np.ones(s, np.float32) for s in shapes)
    with pytest.raises(ValueError, match="shapes do not chain"):
        team_matmul.matmul_sum(a, b, out)


@needs_blas
def test_summed_kernel_checks_its_arguments():
    a = np.ones((3, 4, 5), np.float32)
    b = np.ones((3, 5, 6), np.float32)
    with pytest.raises(ValueError, match="shares not between 1 and the products"):
        team_gemm.summed_products(a, False, b, False, np.empty((4, 4, 6), np.float32), 2)
    with pytest.raises(ValueError, match="shares not between 1 and the products"):
        team_gemm.summed_products(a, False, b, False, np.empty((0, 4, 6), np.float32), 2)
    with pytest.raises(ValueError, match="do not chain"):
        team_gemm.summed_products(a, False, b, True, np.empty((2, 4, 6), np.float32), 2)
    with pytest.raises(ValueError, match="unit steps"):
        team_gemm.summed_products(a, False, np.ones((3, 5, 12), np.float32)[:, :, ::2], False,
                                  np.empty((2, 4, 6), np.float32), 2)
    with pytest.raises(ValueError, match="num_threads"):
        team_gemm.summed_products(a, False, b, False, np.empty((2, 4, 6), np.float32), 0)
