"""Dataset downloads: official mirrors, checksum verification, no half-written files.

A file is streamed into a temporary file next to its destination (``.<name>.XXXX.part``),
hashed while it streams, checked against the checksum of the file as originally distributed
and only then renamed to its real name. On any failure (network error, connection closed
mid-body, short body, wrong checksum, Ctrl-C) the temporary file is deleted, so a dataset
folder never holds a partial file under a name the loaders would pick up.

Mirrors: ``MIRRORS`` maps each dataset folder name (``mnist``, ``fashion-mnist``, ``cifar10``)
to base URLs tried in order. The environment variable ``MINIGRAD_MIRROR`` (one or more base
URLs separated by commas or whitespace) is tried first; such a mirror has the layout of a data
root, e.g. ``$MINIGRAD_MIRROR/mnist/train-images-idx3-ubyte.gz`` -- so a plain
``python -m http.server`` started inside a data root is a mirror.
"""
import gzip
import hashlib
import http.client
import os
import sys
import tempfile
import time
import urllib.request
import zlib
from dataclasses import dataclass
from typing import Optional

MIRROR_ENV = "MINIGRAD_MIRROR"

#: Base URLs per dataset folder, tried in order after ``$MINIGRAD_MIRROR``.
MIRRORS = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ],
    "fashion-mnist": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ],
    "cifar10": [
        "https://www.cs.toronto.edu/~kriz/",
    ],
}

TIMEOUT_SECONDS = 30
_CHUNK_BYTES = 1 << 20
_CHECKSUM_ALGORITHMS = ("md5", "sha256")


class DownloadError(RuntimeError):
    """A dataset file could not be downloaded and verified (offline, corrupt, truncated...)."""


@dataclass(frozen=True)
class Resource:
    """One downloadable file.

    ``checksum`` (``"md5:<hex>"`` or ``"sha256:<hex>"``) is that of the file as originally
    distributed. ``content_checksum``, for a ``.gz`` file, is that of its decompressed content:
    it also accepts a mirror that re-compressed the original bytes (same data, other gzip
    wrapper, hence another archive checksum).
    """

    filename: str
    checksum: str
    content_checksum: Optional[str] = None


def mirror_urls(dataset):
    """Base URLs to try for ``dataset`` (a folder name such as ``"mnist"``), in order."""
    from_env = [
        base.rstrip("/") + "/" + dataset + "/"
        for base in os.environ.get(MIRROR_ENV, "").replace(",", " ").split()
    ]
    return from_env + list(MIRRORS.get(dataset, []))


def missing_files_message(title, dataset, folder, filenames, alternatives=""):
    """The text telling a user exactly which files to put where."""
    urls = ", ".join(MIRRORS.get(dataset, []))
    text = (f"{title}: missing file(s) {', '.join(filenames)} in folder {folder}. "
            f"Put them there by hand" + (f" (official source: {urls})" if urls else ""))
    if alternatives:
        text += f"; {alternatives}"
    return text + (f". Or set the environment variable MINIGRAD_DATA to a data root holding "
                   f"{dataset}/, or retry with download=True while online.")


def download_resources(resources, folder, dataset, title, progress=True, alternatives=""):
    """Download every resource into ``folder`` from the mirrors of ``dataset``, verified.

    Raises ``DownloadError`` naming each URL tried with its failure and, when no mirror
    delivered a file, which files to put where by hand.
    """
    os.makedirs(folder, exist_ok=True)
    bases = mirror_urls(dataset)
    for position, resource in enumerate(resources):
        failures = []
        for base in bases:
            url = base + resource.filename
            try:
                _download_verified(url, resource, folder, progress)
                break
            except (OSError, http.client.HTTPException, DownloadError) as exc:
                failures.append(f"{url}: {_describe(exc)}")
        else:
            tried = "\n  ".join(failures) if failures else "(no mirror configured)"
            raise DownloadError(
                f"could not download {resource.filename}; tried:\n  {tried}\n"
                + missing_files_message(title, dataset, folder,
                                        [r.filename for r in resources[position:]], alternatives))


def _describe(exc):
    reason = getattr(exc, "reason", None)   # URLError wraps the socket error in .reason
    return f"{type(exc).__name__}: {reason if reason is not None else exc}"


def _download_verified(url, resource, folder, progress):
    """Stream ``url`` to a temporary file in ``folder``; rename it to ``resource.filename``
    only once its size and checksum are verified."""
    algorithm, _ = _parse_checksum(resource.checksum)
    fd, partial = tempfile.mkstemp(dir=folder, prefix=f".{resource.filename}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, \
                urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            length = response.headers.get("Content-Length")
            expected_size = int(length) if length and length.isdigit() else None
            digest = _new_hash(algorithm)
            received = 0
            with _progress_bar(resource.filename, expected_size, progress) as bar:
                while True:
                    chunk = response.read(_CHUNK_BYTES)
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if expected_size is not None and received != expected_size:
            raise DownloadError(f"download interrupted: received {received} of "
                                f"{expected_size} bytes")
        _verify(partial, digest.hexdigest(), resource)
        os.chmod(partial, 0o644)    # mkstemp makes it private; a dataset file is not
        os.replace(partial, os.path.join(folder, resource.filename))
    except BaseException:
        _remove_if_present(partial)
        raise


def _verify(path, digest, resource):
    algorithm, expected = _parse_checksum(resource.checksum)
    if digest == expected:
        return
    message = (f"checksum mismatch: {algorithm} {digest}, expected {expected} "
               "(corrupt or truncated download)")
    if resource.content_checksum is not None:
        content_algorithm, content_expected = _parse_checksum(resource.content_checksum)
        content_digest = _gunzip_digest(path, content_algorithm)
        if content_digest == content_expected:
            return
        message += (f"; decompressed content {content_algorithm} {content_digest}, "
                    f"expected {content_expected}")
    raise DownloadError(message)


def _gunzip_digest(path, algorithm):
    """Checksum of the decompressed content of a gzip file ("not gzip" if it is none)."""
    digest = _new_hash(algorithm)
    try:
        with gzip.open(path, "rb") as stream:
            for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
                digest.update(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        return f"<not a valid gzip file: {exc}>"
    return digest.hexdigest()


def _new_hash(algorithm):
    # an integrity check, not security: md5 stays allowed on FIPS-restricted systems
    return hashlib.new(algorithm, usedforsecurity=False)


def _parse_checksum(checksum):
    algorithm, _, hexdigest = checksum.partition(":")
    if algorithm not in _CHECKSUM_ALGORITHMS or not hexdigest:
        raise ValueError(f"checksum must be 'md5:<hex>' or 'sha256:<hex>', got {checksum!r}")
    return algorithm, hexdigest.lower()


def _remove_if_present(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _progress_bar(name, total, enabled):
    if not enabled:
        return _TextProgress(name, total, stream=None)
    try:
        from tqdm import tqdm
    except ImportError:
        return _TextProgress(name, total, stream=sys.stderr)
    return tqdm(total=total, desc=name, unit="B", unit_scale=True, unit_divisor=1024,
                leave=False)


class _TextProgress:
    """Minimal progress line (used without tqdm); silent when ``stream`` is None."""

    _MIN_INTERVAL_SECONDS = 0.25

    def __init__(self, name, total, stream):
        self.name, self.total, self.stream = name, total, stream
        self.done = 0
        self._last_draw = 0.0

    def update(self, n):
        self.done += n
        now = time.monotonic()
        if self.stream is not None and now - self._last_draw >= self._MIN_INTERVAL_SECONDS:
            self._last_draw = now
            self._draw()

    def _draw(self):
        mb = self.done / 2**20
        if self.total:
            line = f"{self.name}: {mb:.1f}/{self.total / 2**20:.1f} MiB " \
                   f"({100 * self.done / self.total:.0f}%)"
        else:
            line = f"{self.name}: {mb:.1f} MiB"
        self.stream.write("\r" + line)
        self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self.stream is not None:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()
