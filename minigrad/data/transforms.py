"""Batch transforms for float images, vectorised over the batch (no per-image Python).

A transform takes ``x`` -- a float array N×C×H×W, or one image C×H×W -- and returns a new
array (the input is never modified). Random transforms draw from the generator ``rng`` passed
by the caller (``DataLoader`` passes its seeded augmentation generator), else from their own
generator seeded by ``seed``: the same seed gives the same augmentations.
"""
import numbers

import numpy as np

from .._validate import check_min, pair


class Transform:
    """Base class: ``transform(x, rng=None)``; subclasses implement ``apply(x, rng)`` on a
    4-D batch."""

    def __init__(self, seed=None):
        self.rng = np.random.default_rng(seed)

    def __call__(self, x, rng=None):
        x = np.asarray(x)
        if x.dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}: x must be a floating-point array, got "
                            f"dtype {x.dtype}")
        if x.ndim not in (3, 4):
            raise ValueError(f"{type(self).__name__}: x must be N×C×H×W or C×H×W, got shape "
                             f"{x.shape}")
        out = self.apply(x if x.ndim == 4 else x[None], self.rng if rng is None else rng)
        return out if x.ndim == 4 else out[0]

    def apply(self, x, rng):
        raise NotImplementedError

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "rng")
        return f"{type(self).__name__}({fields})"


class Compose(Transform):
    """Apply ``transforms`` in order, all drawing from the same generator."""

    def __init__(self, transforms):
        super().__init__()
        self.transforms = list(transforms)
        for t in self.transforms:
            if not isinstance(t, Transform):
                raise TypeError(f"Compose: transforms must be Transform instances, got "
                                f"{type(t).__name__}")

    def apply(self, x, rng):
        for t in self.transforms:
            x = t.apply(x, rng)
        return x


class Normalize(Transform):
    """``out[:, c] = (x[:, c] - mean[c]) / std[c]`` for each channel c (one value applies to
    every channel). Output dtype: that of ``x``."""

    def __init__(self, mean, std):
        super().__init__()
        self.mean = _channel_values("mean", mean)
        self.std = _channel_values("std", std)
        if np.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be > 0, got {self.std.tolist()}")
        if self.mean.size != self.std.size and 1 not in (self.mean.size, self.std.size):
            raise ValueError(f"Normalize: mean has {self.mean.size} values, std {self.std.size}")

    def apply(self, x, rng):
        channels = x.shape[1]
        for name, values in (("mean", self.mean), ("std", self.std)):
            if values.size not in (1, channels):
                raise ValueError(f"Normalize: {name} has {values.size} values but x has "
                                 f"{channels} channels (shape {x.shape})")
        mean = self.mean.astype(x.dtype).reshape(-1, 1, 1)
        inv_std = (1.0 / self.std).astype(x.dtype).reshape(-1, 1, 1)
        return (x - mean) * inv_std


def _channel_values(name, values):
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size == 0 or not np.all(np.isfinite(array)):
        raise ValueError(f"Normalize: {name} must be finite numbers, got {values!r}")
    return array


class RandomCrop(Transform):
    """Pad each image by ``padding`` pixels (int, or (top and bottom, left and right)) with
    ``padding_mode`` ``"constant"`` (zeros), ``"reflect"`` or ``"edge"``, then cut a ``size``
    window (int or (h, w)) at a random offset per image. Output: N×C×h×w.

    Offsets are drawn as ``rng.integers(0, H + 2*pad_h - h + 1, N)`` for the rows, then
    ``rng.integers(0, W + 2*pad_w - w + 1, N)`` for the columns.
    """

    _MODES = ("constant", "reflect", "edge")

    def __init__(self, size, padding=0, padding_mode="constant", seed=None):
        super().__init__(seed)
        self.size = pair(size, "size", "RandomCrop")
        check_min(self.size, 1, "size", "RandomCrop")
        padding = pair(padding, "padding", "RandomCrop")
        check_min(padding, 0, "padding", "RandomCrop")
        if padding_mode not in self._MODES:
            raise ValueError(f"RandomCrop: padding_mode must be one of {self._MODES}, got "
                             f"{padding_mode!r}")
        self.padding, self.padding_mode = padding, padding_mode

    def apply(self, x, rng):
        (pad_h, pad_w), (h, w) = self.padding, self.size
        if pad_h or pad_w:
            x = np.pad(x, ((0, 0), (0, 0), (pad_h, pad_h), (pad_w, pad_w)),
                       mode=self.padding_mode)
        n, _, padded_h, padded_w = x.shape
        if h > padded_h or w > padded_w:
            raise ValueError(f"RandomCrop: size {self.size} is larger than the padded image "
                             f"{(padded_h, padded_w)} (x shape {x.shape}, "
                             f"padding {self.padding})")
        rows = rng.integers(0, padded_h - h + 1, n)
        cols = rng.integers(0, padded_w - w + 1, n)
        # windows[i, c, r, s] is the h×w window of image i, channel c at offset (r, s)
        windows = np.lib.stride_tricks.sliding_window_view(x, (h, w), axis=(2, 3))
        return windows[np.arange(n), :, rows, cols]


class RandomHorizontalFlip(Transform):
    """Mirror each image left-right with probability ``p`` (drawn as ``rng.random(N) < p``)."""

    def __init__(self, p=0.5, seed=None):
        super().__init__(seed)
        if not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p!r}")
        self.p = float(p)

    def apply(self, x, rng):
        flip = rng.random(x.shape[0]) < self.p
        return np.where(flip[:, None, None, None], x[..., ::-1], x)


class RandomCanvas(Transform):
    """Paste each image at a random offset on a larger square canvas filled with ``fill``: the
    same image, seen at another position and with more empty background around it (e.g. to
    train a fully convolutional network for inputs larger than its training images).

    One canvas side per batch, drawn from ``sizes`` (an int, or a sequence of ints each at least
    the images' height and width), so that a batch stays one N×C×S×S array. With probability
    ``1 - p`` a batch is returned unchanged (its original size). Output: N×C×S×S, dtype of ``x``.

    Draws per batch: ``rng.random() < p``; when placed, the side as ``sizes[rng.integers(0,
    len(sizes))]``, then ``rng.integers(0, S - H + 1, N)`` for the rows and ``rng.integers(0,
    S - W + 1, N)`` for the columns of the images' top-left corners.

    Example::

        place = RandomCanvas(range(28, 65, 4), p=0.5)     # half the batches on 28..64 canvases
        loader = DataLoader(train, 128, transform=Compose([place, Normalize([0.13], [0.31])]))
    """

    def __init__(self, sizes, p=1.0, fill=0.0, seed=None):
        super().__init__(seed)
        sizes = [sizes] if isinstance(sizes, numbers.Integral) else list(sizes)
        if not sizes or any(not isinstance(s, numbers.Integral) or isinstance(s, bool) or s < 1
                            for s in sizes):
            raise ValueError(f"RandomCanvas: sizes must be a positive int or a non-empty "
                             f"sequence of positive ints, got {sizes!r}")
        if not isinstance(p, numbers.Real) or not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomCanvas: p must be in [0, 1], got {p!r}")
        if not isinstance(fill, numbers.Real) or not np.isfinite(fill):
            raise ValueError(f"RandomCanvas: fill must be a finite number, got {fill!r}")
        self.sizes, self.p, self.fill = [int(s) for s in sizes], float(p), float(fill)

    def apply(self, x, rng):
        n, c, h, w = x.shape
        if min(self.sizes) < max(h, w):
            raise ValueError(f"RandomCanvas: every canvas size must be at least the images' "
                             f"height and width, got sizes {self.sizes} for x shape {x.shape}")
        if not rng.random() < self.p:
            return x.copy()
        size = self.sizes[rng.integers(0, len(self.sizes))]
        rows = rng.integers(0, size - h + 1, n)
        cols = rng.integers(0, size - w + 1, n)
        canvas = np.full((n, c, size, size), self.fill, dtype=x.dtype)
        # one scatter for the batch: image i's pixel (r, s) lands at (rows[i] + r, cols[i] + s)
        canvas[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None],
               (rows[:, None] + np.arange(h))[:, None, :, None],
               (cols[:, None] + np.arange(w))[:, None, None, :]] = x
        return canvas


class RandomAffine(Transform):
    """Rotate each image by an angle drawn uniformly from ``[-degrees, degrees]`` and, with
    ``scale=(lo, hi)``, zoom it by a factor drawn uniformly from ``[lo, hi]``, both about the
    image's centre; pixels sampled bilinearly, those from outside the image set to ``fill``.
    Output: N×C×H×W, dtype of ``x``. Positive angles turn the image counter-clockwise.

    Each output pixel is read from the input at the inverse map of its position (so there are
    no holes): for angle θ and factor s, the source of the offset ``(dy, dx)`` from the centre
    is ``(cos θ·dy + sin θ·dx, cos θ·dx − sin θ·dy) / s``, in rows and columns, rows pointing
    down.

    Draws per batch: ``rng.uniform(-degrees, degrees, N)``, then (with ``scale``)
    ``rng.uniform(lo, hi, N)``.

    Example::

        augment = Compose([RandomAffine(10, scale=(0.9, 1.1)), Normalize([0.13], [0.31])])
    """

    def __init__(self, degrees, scale=None, fill=0.0, seed=None):
        super().__init__(seed)
        if not isinstance(degrees, numbers.Real) or isinstance(degrees, bool) \
                or not 0 <= degrees <= 180:
            raise ValueError(f"RandomAffine: degrees must be a number in [0, 180], got "
                             f"{degrees!r}")
        if scale is not None:
            try:
                lo, hi = (float(s) for s in scale)
            except (TypeError, ValueError):
                raise ValueError(f"RandomAffine: scale must be None or a pair (lo, hi), got "
                                 f"{scale!r}") from None
            if not (0 < lo <= hi and np.isfinite(hi)):
                raise ValueError(f"RandomAffine: scale must satisfy 0 < lo <= hi, got "
                                 f"{scale!r}")
            scale = (lo, hi)
        if not isinstance(fill, numbers.Real) or not np.isfinite(fill):
            raise ValueError(f"RandomAffine: fill must be a finite number, got {fill!r}")
        self.degrees, self.scale, self.fill = float(degrees), scale, float(fill)

    def apply(self, x, rng):
        n, c, h, w = x.shape
        angle = np.deg2rad(rng.uniform(-self.degrees, self.degrees, n))
        zoom = rng.uniform(*self.scale, n) if self.scale else np.ones(n)
        cos, sin = (np.cos(angle) / zoom)[:, None, None], (np.sin(angle) / zoom)[:, None, None]
        cy, cx = (h - 1) / 2, (w - 1) / 2
        dy, dx = np.arange(h)[:, None] - cy, np.arange(w)[None, :] - cx
        rows = cos * dy + sin * dx + cy             # source positions, N×H×W
        cols = cos * dx - sin * dy + cx
        # a two-pixel border of fill: a position within a pixel of the image blends into it,
        # and any farther one is clipped to where both its rows (or columns) are fill
        padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)), constant_values=self.fill)
        r0, c0 = np.floor(rows), np.floor(cols)
        fr, fc = (rows - r0).astype(x.dtype), (cols - c0).astype(x.dtype)
        r0 = np.clip(r0, -2, h).astype(np.intp) + 2
        c0 = np.clip(c0, -2, w).astype(np.intp) + 2
        r1, c1 = r0 + 1, c0 + 1
        image = np.arange(n)[:, None, None]

        def at(r, s):                               # N×H×W×C → N×C×H×W
            return padded[image, :, r, s].transpose(0, 3, 1, 2)
        fr, fc = fr[:, None], fc[:, None]
        top = at(r0, c0) * (1 - fc) + at(r0, c1) * fc
        bottom = at(r1, c0) * (1 - fc) + at(r1, c1) * fc
        return (top * (1 - fr) + bottom * fr).astype(x.dtype, copy=False)
