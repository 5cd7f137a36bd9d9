"""Thread counts: every op gives the same result whatever count its forward and its backward run
with (each in a subprocess, so a crash or a hang fails with the op's name); the count is
validated before a kernel runs; it is one setting for the whole process; Python threads that
train models of their own at the same time get what they would get one after another."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import nn, optim
from minigrad._kernels import activation as activation_kernels
from minigrad._kernels import pooling as pooling_kernels

#: (forward, backward) thread counts; (1, 1) is the reference. 8 and 16 oversubscribe 2 cores.
COUNTS = [(1, 16), (16, 1), (2, 3), (3, 8), (8, 2), (16, 16)]
WORKER_TIMEOUT = 300


def _cases():
    """name → (function of the tensors, input arrays). Inputs have 65,536 elements or more, above
    every kernel's serial cutoff, so each count really runs a team of that size."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 16, 32, 32)).astype(np.float32)
    positive = np.abs(x) + 0.01
    w3 = rng.standard_normal((16, 16, 3, 3)).astype(np.float32) * 0.1
    w1 = rng.standard_normal((8, 16, 1, 1)).astype(np.float32)
    wg = rng.standard_normal((16, 4, 3, 3)).astype(np.float32)
    wd = rng.standard_normal((16, 1, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(16).astype(np.float32)
    gamma, beta = rng.standard_normal(16).astype(np.float32), rng.standard_normal(16).astype(
        np.float32)
    logits = rng.standard_normal((4096, 16)).astype(np.float32)
    labels = rng.integers(0, 16, 4096)
    samples = rng.random((4, 16, 2))
    running = (np.zeros(16, np.float32), np.ones(16, np.float32))
    return {
        "conv2d 3x3 stride 1 (direct)": (lambda x, w, b: F.conv2d(x, w, b, padding=1),
                                         [x, w3, bias]),
        "conv2d 3x3 stride 2 (im2col)": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
                                         [x, w3, bias]),
        "conv2d 3x3 dilation 2": (lambda x, w: F.conv2d(x, w, padding=2, dilation=2), [x, w3]),
        "conv2d 1x1": (lambda x, w: F.conv2d(x, w), [x, w1]),
        "conv2d grouped": (lambda x, w: F.conv2d(x, w, padding=1, groups=4), [x, wg]),
        "conv2d depthwise": (lambda x, w, b: F.conv2d(x, w, b, padding=1, groups=16),
                             [x, wd, bias]),
        "conv2d depthwise stride 2 dilation 2": (
            lambda x, w: F.conv2d(x, w, stride=2, padding=2, dilation=2, groups=16), [x, wd]),
        "max_pool2d 3 stride 2 padding 1": (lambda x: F.max_pool2d(x, 3, 2, 1), [x]),
        "max_pool2d 3 stride 1 padding 1": (lambda x: F.max_pool2d(x, 3, 1, 1), [x]),
        "max_pool2d 2x2": (lambda x: F.max_pool2d(x, 2), [x]),
        "avg_pool2d 3 stride 1 padding 1": (lambda x: F.avg_pool2d(x, 3, 1, 1), [x]),
        "avg_pool2d 3 stride 2 padding 1": (lambda x: F.avg_pool2d(x, 3, 2, 1), [x]),
        "avg_pool2d 2x2": (lambda x: F.avg_pool2d(x, 2), [x]),
        "avg_pool2d 3 stride 1": (lambda x: F.avg_pool2d(x, 3, 1), [x]),
        "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, (5, 7)), [x]),
        "adaptive_max_pool2d": (lambda x: F.adaptive_max_pool2d(x, (5, 7)), [x]),
        "global_avg_pool2d": (F.global_avg_pool2d, [x]),
        "global_max_pool2d": (F.global_max_pool2d, [x]),
        "lp_pool2d": (lambda x: F.lp_pool2d(x, 2, 3, 2), [x]),
        "stochastic_pool2d training": (lambda x: F.stochastic_pool2d(x, 2, seed=0), [positive]),
        "stochastic_pool2d evaluation": (lambda x: F.stochastic_pool2d(x, 2, training=False),
                                         [positive]),
        "fractional_max_pool2d": (lambda x: F.fractional_max_pool2d(
            x, 2, output_size=(20, 20), random_samples=samples), [x]),
        "mixed_pool2d": (lambda x, a: F.mixed_pool2d(x, a, 3, 2, 1),
                         [x, np.full(16, 0.3, np.float32)]),
        "gated_pool2d": (lambda x, g: F.gated_pool2d(x, g, 2),
                         [x, rng.standard_normal((2, 2)).astype(np.float32)]),
        "tree_pool2d depth 3": (lambda x, v, w: F.tree_pool2d(x, v, w, 3, 2),
                                [x, rng.standard_normal((4, 3, 3)).astype(np.float32) * 0.3,
                                 rng.standard_normal((3, 3, 3)).astype(np.float32)]),
        "spatial_pyramid_pool2d": (F.spatial_pyramid_pool2d, [x]),
        "relu": (F.relu, [x]),
        "leaky_relu": (F.leaky_relu, [x]),
        "prelu": (F.prelu, [x, np.full(16, 0.2, np.float32)]),
        "elu": (F.elu, [x]),
        "selu": (F.selu, [x]),
        "gelu": (F.gelu, [x]),
        "gelu tanh": (lambda x: F.gelu(x, approximate="tanh"), [x]),
        "silu": (F.silu, [x]),
        "sigmoid": (F.sigmoid, [x]),
        "tanh": (F.tanh, [x]),
        "softmax": (lambda x: F.softmax(x, 1), [x]),
        "log_softmax": (lambda x: F.log_softmax(x, 1), [x]),
        "maxout": (lambda x: F.maxout(x, 2), [x]),
        "batch_norm training": (lambda x, g, b: F.batch_norm(x, *running, g, b, training=True),
                                [x, gamma, beta]),
        "batch_norm evaluation": (lambda x, g, b: F.batch_norm(
            x, running[0] + 0.5, running[1] * 2, g, b), [x, gamma, beta]),
        "cross_entropy": (lambda z: F.cross_entropy(z, labels), [logits]),
        "linear": (lambda x, w: F.linear(x, w), [logits, w1.reshape(8, 16)]),
    }


def _run(fn, arrays, forward_threads, backward_threads):
    """Output and input gradients, the forward on one count and the backward on another."""
    tensors = [mg.tensor(a, requires_grad=True) for a in arrays]
    mg.set_num_threads(forward_threads)
    y = fn(*tensors)
    upstream = np.random.default_rng(1).standard_normal(y.shape).astype(y.dtype)
    mg.set_num_threads(backward_threads)
    y.backward(upstream)
    return [y.data] + [t.grad for t in tensors]


def _worker():
    """Subprocess body: for each case print 'start NAME', then 'ok NAME' or 'differs NAME ...'."""
    for name, (fn, arrays) in _cases().items():
        print(f"start {name}", flush=True)
        reference = _run(fn, arrays, 1, 1)
        for counts in COUNTS:
            result = _run(fn, arrays, *counts)
            for i, (a, b) in enumerate(zip(reference, result)):
                if not np.array_equal(a, b, equal_nan=True):
                    print(f"differs {name} threads {counts} array {i}: max |diff| "
                          f"{np.max(np.abs(a.astype(np.float64) - b))}", flush=True)
        print(f"ok {name}", flush=True)


def test_every_op_gives_the_same_result_for_any_forward_and_backward_thread_counts():
    env = dict(os.environ, PYTHONFAULTHANDLER="1")
    try:
        done = subprocess.run([sys.executable, __file__], capture_output=True, text=True,
                              timeout=WORKER_TIMEOUT, env=env)
        output, stderr, code = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired as e:
        output, stderr, code = e.stdout or "", e.stderr or "", "timeout"
        output = output.decode() if isinstance(output, bytes) else output
        stderr = stderr.decode() if isinstance(stderr, bytes) else stderr
    lines = output.splitlines()
    started = [line[len("start "):] for line in lines if line.startswith("start ")]
    finished = {line[len("ok "):] for line in lines if line.startswith("ok ")}
    unfinished = [name for name in started if name not in finished]
    assert code == 0 and not unfinished, (
        f"worker ended with {code} during {unfinished}:\n{stderr[-3000:]}")
    assert sorted(finished) == sorted(_cases()), "the worker skipped cases"
    differing = [line for line in lines if line.startswith("differs ")]
    assert not differing, "\n".join(differing)


def test_thread_count_is_validated():
    before = mg.get_num_threads()
    for bad in (0, -1, mg.threads.MAX_THREADS + 1):
        with pytest.raises(ValueError, match="n must be between 1 and"):
            mg.set_num_threads(bad)
    for bad in (1.5, "2", None, True):
        with pytest.raises(TypeError, match="n must be an int"):
            mg.set_num_threads(bad)
    mg.set_num_threads(np.int64(3))
    assert mg.get_num_threads() == 3 and type(mg.get_num_threads()) is int
    mg.set_num_threads(before)


def test_kernels_refuse_a_count_below_one_and_scratch_smaller_than_the_team():
    x = np.ones(1 << 16, np.float32)
    with pytest.raises(ValueError, match="num_threads must be a positive int"):
        activation_kernels.relu_forward(x, np.empty_like(x), 0)
    planes = np.ones((64, 32, 32), np.float32)
    out = np.empty((64, 32, 32), np.float32)
    divisor = np.full((32, 32), 9, np.float32)
    # 3×3 stride-1 padding-1 windows: a padded 34×34 plane per thread
    args = (3, 3, 1, 1, 1, 1, 34, 34)
    with pytest.raises(ValueError, match="scratch has 1 planes for a team of 4 threads"):
        pooling_kernels.avg_pool_forward(planes, out, *args, np.empty((1, 34 * 34), np.float32),
                                         divisor, 4)
    with pytest.raises(ValueError, match="scratch has 2 planes for a team of 3 threads"):
        pooling_kernels.avg_pool_backward(out, planes.copy(), *args,
                                          np.empty((2, 34 * 34), np.float32), divisor, 3)
    # enough planes: runs
    pooling_kernels.avg_pool_forward(planes, out, *args, np.empty((4, 34 * 34), np.float32),
                                     divisor, 4)
    assert np.allclose(out[:, 1:-1, 1:-1], 1)


def test_set_num_threads_in_one_python_thread_holds_in_every_other():
    before = mg.get_num_threads()
    seen = []
    try:
        setter = threading.Thread(target=mg.set_num_threads, args=(3,))
        setter.start()
        setter.join()
        reader = threading.Thread(target=lambda: seen.append(mg.get_num_threads()))
        reader.start()
        reader.join()
        assert seen == [3] and mg.get_num_threads() == 3
    finally:
        mg.set_num_threads(before)


def _train(seed, steps=3):
    """A small conv net trained for a few steps from its own seed; its final weights."""
    rng = np.random.default_rng(seed)
    mg.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.AvgPool2d(3, 1, 1), nn.MaxPool2d(2), nn.Conv2d(8, 5, 1),
                          nn.GlobalAvgPool2d())
    return model, rng


def _steps(model, rng, steps=3):
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    images = rng.standard_normal((16, 3, 24, 24)).astype(np.float32)
    labels = rng.integers(0, 5, 16)
    for _ in range(steps):
        loss = F.cross_entropy(model(mg.tensor(images)), mg.tensor(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return [p.data.copy() for p in model.parameters()]


def test_python_threads_training_their_own_models_match_running_them_in_turn():
    # models are built first: their initialisation draws from minigrad's global generator
    built = [_train(seed) for seed in range(4)]
    sequential = [_steps(*_train(seed)) for seed in range(4)]
    results = [None] * 4

    def work(i):
        results[i] = _steps(*built[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for expected, got in zip(sequential, results):
        assert got is not None
        for a, b in zip(expected, got):
            np.testing.assert_array_equal(a, b)


if __name__ == "__main__":
    _worker()
