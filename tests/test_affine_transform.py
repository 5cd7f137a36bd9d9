"""RandomAffine: a random rotation and zoom about each image's centre, sampled bilinearly."""
import math

import numpy as np
import pytest

from minigrad.data.transforms import RandomAffine


def reference(x, degrees, scale, fill, rng):
    """The documented draws and inverse map, one output pixel at a time."""
    n, c, h, w = x.shape
    angles = rng.uniform(-degrees, degrees, n)
    zooms = rng.uniform(*scale, n) if scale else np.ones(n)
    out = np.empty(x.shape, dtype=np.float64)

    def pixel(i, ch, r, s):
        return x[i, ch, r, s] if 0 <= r < h and 0 <= s < w else fill
    for i in range(n):
        t = math.radians(angles[i])
        for r in range(h):
            for s in range(w):
                dy, dx = r - (h - 1) / 2, s - (w - 1) / 2
                row = (math.cos(t) * dy + math.sin(t) * dx) / zooms[i] + (h - 1) / 2
                col = (math.cos(t) * dx - math.sin(t) * dy) / zooms[i] + (w - 1) / 2
                r0, c0 = math.floor(row), math.floor(col)
                fr, fc = row - r0, col - c0
                for ch in range(c):
                    out[i, ch, r, s] = (
                        (1 - fr) * ((1 - fc) * pixel(i, ch, r0, c0) + fc * pixel(i, ch, r0, c0 + 1))
                        + fr * ((1 - fc) * pixel(i, ch, r0 + 1, c0)
                                + fc * pixel(i, ch, r0 + 1, c0 + 1)))
    return out


@pytest.mark.parametrize("degrees, scale, fill, shape", [
    (10, None, 0.0, (3, 1, 7, 7)), (30, (0.8, 1.2), -0.5, (2, 2, 6, 9)),
    (180, (0.5, 2.0), 1.0, (4, 1, 5, 5)), (0, (1.0, 1.0), 0.0, (2, 3, 4, 4))])
def test_matches_the_documented_draws_and_map(degrees, scale, fill, shape):
    x = np.random.default_rng(1).random(shape).astype(np.float32)
    transform = RandomAffine(degrees, scale=scale, fill=fill)
    for seed in range(3):
        out = transform(x, rng=np.random.default_rng(seed))
        assert out.dtype == x.dtype and out.shape == x.shape
        expected = reference(x, degrees, scale, fill, np.random.default_rng(seed))
        np.testing.assert_allclose(out, expected, atol=1e-5)


def test_zero_degrees_is_the_identity_and_90_a_quarter_turn():
    x = np.random.default_rng(2).random((2, 1, 5, 5))
    np.testing.assert_allclose(RandomAffine(0)(x), x)

    class Always90:
        def uniform(self, lo, hi, n):
            return np.full(n, 90.0)
    turned = RandomAffine(90).apply(x, Always90())
    np.testing.assert_allclose(turned, np.rot90(x, axes=(2, 3)), atol=1e-12)


def test_one_image_and_seeded_reproducibility():
    x = np.random.default_rng(3).random((1, 8, 8)).astype(np.float32)
    a, b = RandomAffine(20, seed=5), RandomAffine(20, seed=5)
    out = a(x)
    assert out.shape == x.shape
    np.testing.assert_array_equal(out, b(x))


@pytest.mark.parametrize("kwargs, match", [
    ({"degrees": -1}, "degrees"), ({"degrees": 200}, "degrees"), ({"degrees": True}, "degrees"),
    ({"degrees": 5, "scale": (0, 1)}, "scale"), ({"degrees": 5, "scale": (1.2, 0.8)}, "scale"),
    ({"degrees": 5, "scale": 1.1}, "scale"), ({"degrees": 5, "fill": float("nan")}, "fill")])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RandomAffine(**kwargs)


def test_integer_images_are_refused():
    with pytest.raises(TypeError, match="floating-point"):
        RandomAffine(5)(np.zeros((1, 1, 4, 4), dtype=np.uint8))
