"""RandomCanvas: each image pasted at a random offset on a larger canvas, one side per batch."""
import numpy as np
import pytest

from minigrad.data import ArrayDataset, Compose, DataLoader, Normalize
from minigrad.data.transforms import RandomCanvas


def reference(x, sizes, p, fill, rng):
    """The documented draws, one image at a time."""
    if not rng.random() < p:
        return x.copy()
    size = sizes[rng.integers(0, len(sizes))]
    n, c, h, w = x.shape
    rows = rng.integers(0, size - h + 1, n)
    cols = rng.integers(0, size - w + 1, n)
    out = np.full((n, c, size, size), fill, dtype=x.dtype)
    for i in range(n):
        out[i, :, rows[i]:rows[i] + h, cols[i]:cols[i] + w] = x[i]
    return out


@pytest.mark.parametrize("sizes, p, fill", [(40, 1.0, 0.0), ([7, 9, 12], 1.0, -0.5),
                                            ([6, 10], 0.5, 0.0), (5, 0.0, 1.0)])
def test_matches_the_documented_draws(sizes, p, fill):
    x = np.random.default_rng(0).random((6, 2, 5, 4)).astype(np.float32)
    transform = RandomCanvas(sizes, p=p, fill=fill)
    listed = [sizes] if isinstance(sizes, int) else sizes
    for seed in range(5):
        out = transform(x, rng=np.random.default_rng(seed))
        expected = reference(x, listed, p, fill, np.random.default_rng(seed))
        np.testing.assert_array_equal(out, expected)
        assert out.dtype == x.dtype


def test_every_image_is_kept_whole_and_the_rest_is_fill():
    x = np.random.default_rng(1).random((50, 1, 28, 28)) + 1.0     # no pixel equals the fill
    out = RandomCanvas([28, 40, 64], seed=3)(x)
    assert out.shape[2] == out.shape[3] and out.shape[2] in (28, 40, 64)
    assert np.count_nonzero(out) == x[0].size * len(x)
    np.testing.assert_allclose(out.sum(axis=(1, 2, 3)), x.sum(axis=(1, 2, 3)))
    # offsets vary across the batch (a random placement, not a fixed one)
    corners = {tuple(np.argwhere(image[0])[0]) for image in out}
    assert out.shape[2] == 28 or len(corners) > 1


def test_sizes_and_skips_are_drawn_per_batch():
    x = np.ones((4, 1, 3, 3), np.float32)
    transform = RandomCanvas([3, 5, 8], p=0.5, seed=0)
    shapes = {transform(x).shape[2] for _ in range(100)}
    assert shapes == {3, 5, 8}


def test_same_seed_same_canvases_and_input_untouched():
    x = np.random.default_rng(2).random((3, 1, 4, 4)).astype(np.float32)
    before = x.copy()
    a, b = RandomCanvas(9, seed=7)(x), RandomCanvas(9, seed=7)(x)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(x, before)
    assert RandomCanvas(9)(x[0]).shape == (1, 9, 9)        # one C×H×W image


def test_in_a_loader_with_normalize():
    images = np.random.default_rng(3).integers(0, 256, (8, 1, 28, 28), dtype=np.uint8)
    loader = DataLoader(ArrayDataset(images, np.arange(8)), 4, seed=0,
                        transform=Compose([RandomCanvas(36), Normalize([0.5], [0.25])]))
    for batch, _ in loader:
        assert batch.shape == (4, 1, 36, 36) and batch.dtype == np.float32
        assert np.isclose(batch.min(), -2.0)               # the fill, normalised


@pytest.mark.parametrize("kwargs, message", [
    ({"sizes": 0}, "sizes"), ({"sizes": []}, "sizes"), ({"sizes": [28, 2.5]}, "sizes"),
    ({"sizes": True}, "sizes"), ({"sizes": 30, "p": 1.5}, "p"),
    ({"sizes": 30, "fill": float("nan")}, "fill")])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RandomCanvas(**kwargs)


def test_canvas_smaller_than_the_images_is_refused():
    with pytest.raises(ValueError, match=r"sizes \[20, 40\].*\(2, 1, 28, 28\)"):
        RandomCanvas([20, 40])(np.zeros((2, 1, 28, 28), np.float32))
    with pytest.raises(TypeError, match="floating-point"):
        RandomCanvas(40)(np.zeros((2, 1, 28, 28), np.uint8))
