"""Dataset downloads end to end against a local HTTP server on 127.0.0.1: a good download
verifies and loads; corrupt, truncated and interrupted ones are refused with a clear error and
leave no file behind; offline, the error names the files and the folder. Never touches the
internet: the official mirror list is emptied and MINIGRAD_MIRROR points at the local server."""
import gzip
import hashlib
import http.server
import io
import os
import socket
import threading

import numpy as np
import pytest

from minigrad.data import CIFAR10, MNIST, DownloadError, download
from minigrad.data.download import Resource, download_resources, mirror_urls

from helpers.dataset_files import (MNIST_TEST_COUNTS, TRAIN_BATCHES, TinyCIFAR10, check_cifar,
                                   idx_bytes, make_cifar_batches, real_data_root,
                                   write_cifar_tarball)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.routes[path]``; ``server.faults[path]`` damages the response:
    "corrupt" flips one byte, "truncate" sends half the body (and says so in Content-Length),
    "interrupt" announces the full length, sends half and closes the connection."""

    def do_GET(self):
        body, fault = self.server.routes.get(self.path), self.server.faults.get(self.path)
        if body is None:
            self.send_error(404)
            return
        declared = len(body)
        if fault == "corrupt":
            middle = len(body) // 2
            body = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1:]
        elif fault == "truncate":
            body = body[:len(body) // 2]
            declared = len(body)
        elif fault == "interrupt":
            body = body[:len(body) // 2]
        self.send_response(200)
        self.send_header("Content-Length", str(declared))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.routes, httpd.faults = {}, {}
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def mirror(server, monkeypatch):
    """The local server as the only mirror; returns it with empty routes and faults."""
    server.routes.clear()
    server.faults.clear()
    monkeypatch.setattr(download, "MIRRORS", {})
    monkeypatch.setenv("MINIGRAD_MIRROR", f"http://127.0.0.1:{server.server_address[1]}")
    return server


def md5(data):
    return "md5:" + hashlib.md5(data).hexdigest()


def folder_listing(folder):
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


REAL_MNIST_TEST = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def serve_real_mnist_test(server):
    root = real_data_root("mnist")
    for name in REAL_MNIST_TEST:
        with open(os.path.join(root, "mnist", name), "rb") as stream:
            server.routes[f"/mnist/{name}"] = stream.read()


def test_real_mnist_download_verifies_and_loads(mirror, tmp_path):
    serve_real_mnist_test(mirror)
    test = MNIST(tmp_path, train=False, download=True, progress=False)
    assert np.bincount(test.labels).tolist() == MNIST_TEST_COUNTS
    assert folder_listing(tmp_path / "mnist") == sorted(REAL_MNIST_TEST)
    assert oct(os.stat(tmp_path / "mnist" / REAL_MNIST_TEST[0]).st_mode & 0o777) == "0o644"


@pytest.mark.parametrize("fault, message", [
    ("corrupt", "checksum mismatch"),
    ("truncate", "checksum mismatch"),
    ("interrupt", "download interrupted: received"),
])
def test_real_mnist_bad_download_is_refused(mirror, tmp_path, fault, message):
    serve_real_mnist_test(mirror)
    mirror.faults["/mnist/t10k-images-idx3-ubyte.gz"] = fault
    with pytest.raises(DownloadError) as info:
        MNIST(tmp_path, train=False, download=True, progress=False)
    text = str(info.value)
    assert "t10k-images-idx3-ubyte.gz" in text and message in text
    assert str(tmp_path / "mnist") in text     # says where to put the file by hand
    assert folder_listing(tmp_path / "mnist") == []     # nothing half-written left behind


@pytest.mark.parametrize("fault", [None, "corrupt", "truncate", "interrupt"])
def test_generated_file_exact_checksum(mirror, tmp_path, fault):
    payload = os.urandom(3 << 20)       # several chunks, so the interruption is mid-stream
    mirror.routes["/toy/blob.bin"] = payload
    if fault:
        mirror.faults["/toy/blob.bin"] = fault
    resources = [Resource("blob.bin", "sha256:" + hashlib.sha256(payload).hexdigest())]
    if fault is None:
        download_resources(resources, str(tmp_path), "toy", "Toy", progress=False)
        assert (tmp_path / "blob.bin").read_bytes() == payload
    else:
        with pytest.raises(DownloadError, match="blob.bin"):
            download_resources(resources, str(tmp_path), "toy", "Toy", progress=False)
        assert folder_listing(tmp_path) == []


def test_recompressed_gzip_accepted_by_content_checksum(mirror, tmp_path):
    content = idx_bytes(np.arange(10, dtype=np.uint8))
    original = gzip.compress(content, mtime=0)
    mirror.routes["/toy/labels.gz"] = gzip.compress(content, compresslevel=1, mtime=12345)
    resource = Resource("labels.gz", md5(original), md5(content))
    download_resources([resource], str(tmp_path), "toy", "Toy", progress=False)
    assert gzip.decompress((tmp_path / "labels.gz").read_bytes()) == content
    other = Resource("other.gz", md5(original), md5(content + b"x"))
    mirror.routes["/toy/other.gz"] = original[:-8] + bytes(8)   # broken gzip trailer
    with pytest.raises(DownloadError, match="decompressed content"):
        download_resources([other], str(tmp_path), "toy", "Toy", progress=False)
    assert folder_listing(tmp_path) == ["labels.gz"]


def test_next_mirror_is_tried_after_a_bad_one(mirror, tmp_path, monkeypatch):
    payload = b"good bytes" * 1000
    base = f"http://127.0.0.1:{mirror.server_address[1]}"
    mirror.routes["/bad/toy/blob"] = payload
    mirror.faults["/bad/toy/blob"] = "corrupt"
    mirror.routes["/good/toy/blob"] = payload
    monkeypatch.setenv("MINIGRAD_MIRROR", f"{base}/missing, {base}/bad {base}/good")
    assert mirror_urls("toy") == [f"{base}/missing/toy/", f"{base}/bad/toy/",
                                  f"{base}/good/toy/"]
    download_resources([Resource("blob", md5(payload))], str(tmp_path), "toy", "Toy",
                       progress=False)
    assert (tmp_path / "blob").read_bytes() == payload


def test_cifar_tarball_download(mirror, tmp_path, monkeypatch):
    batches = make_cifar_batches(TRAIN_BATCHES + ["test_batch.bin"], seed=4)
    write_cifar_tarball(tmp_path / "served.tar.gz", batches)
    archive = (tmp_path / "served.tar.gz").read_bytes()
    mirror.routes["/cifar10/cifar-10-binary.tar.gz"] = archive
    monkeypatch.setattr(TinyCIFAR10, "archive", Resource("cifar-10-binary.tar.gz", md5(archive)))
    check_cifar(TinyCIFAR10(tmp_path, train=False, progress=False), batches, ["test_batch.bin"])
    check_cifar(TinyCIFAR10(tmp_path, progress=False), batches, TRAIN_BATCHES)
    assert folder_listing(tmp_path / "cifar10") == ["cifar-10-binary.tar.gz"]
    # the real archive checksum refuses this toy archive
    (tmp_path / "cifar10" / "cifar-10-binary.tar.gz").unlink()
    with pytest.raises(DownloadError, match="checksum mismatch.*c32a1d4ab5d03f1284b67883e8d87530"):
        CIFAR10(tmp_path, progress=False)
    assert folder_listing(tmp_path / "cifar10") == []


def test_offline_error_names_files_and_folder(mirror, tmp_path, monkeypatch):
    with socket.socket() as probe:     # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv("MINIGRAD_MIRROR", dead)
    with pytest.raises(DownloadError) as info:
        MNIST(tmp_path, train=True, progress=False)
    text = str(info.value)
    assert f"{dead}/mnist/train-images-idx3-ubyte.gz" in text and "Connection refused" in text
    assert "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz" in text
    assert str(tmp_path / "mnist") in text
    assert folder_listing(tmp_path / "mnist") == []


def test_text_progress_bar_without_tqdm():
    stream = io.StringIO()
    with download._TextProgress("file.gz", 4 << 20, stream) as bar:
        bar.update(1 << 20)
        bar.update(3 << 20)
    assert stream.getvalue().endswith("\rfile.gz: 4.0/4.0 MiB (100%)\n")


def test_official_checksums_are_well_formed():
    resources = list(MNIST.resources.values()) + [CIFAR10.archive]
    for resource in resources:
        for checksum in filter(None, (resource.checksum, resource.content_checksum)):
            algorithm, _, digest = checksum.partition(":")
            assert algorithm == "md5" and len(digest) == 32 and int(digest, 16) >= 0
    for dataset in ("mnist", "fashion-mnist", "cifar10"):
        assert all(url.endswith("/") for url in download.MIRRORS[dataset])


def test_ctrl_c_mid_download_leaves_no_file(mirror, tmp_path, monkeypatch):
    mirror.routes["/toy/blob"] = os.urandom(3 << 20)

    def interrupt(self, n):
        raise KeyboardInterrupt

    monkeypatch.setattr(download._TextProgress, "update", interrupt)
    with pytest.raises(KeyboardInterrupt):
        download_resources([Resource("blob", "md5:0")], str(tmp_path), "toy", "Toy",
                           progress=False)
    assert folder_listing(tmp_path) == []
