"""minigrad.onnx.export checked in ONNX Runtime: the exported file passes onnx.checker, and
ONNX Runtime's output equals minigrad's eval-mode output (max abs difference at most 1e-4 of
the output's scale) for

* both example networks built by their constructors and loaded from a checkpoint, at batch
  sizes 1 and 7 (dynamic batch), and the fully convolutional one at 40×40 and 64×64
  (``dynamic_size=True``); and the examples' own --export-onnx, after a short training run and
  (fcn_mnist) with --resume --epochs 0 from its checkpoint (these need the data);
* a table of single-op models covering every exportable op with its argument variants, each
  exported from a batch of 2 and run at batches 1 and 7, and a second table exported with
  ``dynamic_size=True`` and run at other heights and widths;
* ops with no deterministic ONNX form raising ExportError naming the op and its module.

The exported files do not rely on ONNX's ceil_mode, on whose last window runtimes disagree;
the tests pass with onnx 1.15 / onnxruntime 1.17 as well as with the current releases.

Skipped, with the reason, when the ``onnx`` extra (onnx, onnxruntime) is not installed.
"""
import os
import sys
import zlib

import numpy as np
import pytest

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import Function, nn
from minigrad.onnx import ExportError

from helpers.dataset_files import real_data_root

try:
    import onnx
    import onnxruntime
except ImportError:          # the "onnx" extra is not installed
    onnx = onnxruntime = None

ONNX_MISSING = "the onnx extra is not installed: pip install -e '.[onnx]' (onnx and onnxruntime)"
needs_onnx = pytest.mark.skipif(onnx is None, reason=ONNX_MISSING)

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
sys.path.insert(0, EXAMPLES)

RELATIVE_TOLERANCE = 1e-4


def run_onnx(path, x):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def minigrad_output(model, x):
    model.eval()
    with mg.no_grad():
        return model(mg.tensor(x)).data


def assert_close(got, expected, what=""):
    assert got.shape == expected.shape, (what, got.shape, expected.shape)
    error = np.abs(got.astype(np.float64) - expected).max(initial=0.0)
    scale = np.abs(expected).max(initial=0.0)
    assert error <= RELATIVE_TOLERANCE * scale + 1e-7, f"{what}: max error {error}, scale {scale}"


def export_and_compare(model, example, inputs, path, **options):
    """Export ``model`` from ``example``, check the file, and compare ONNX Runtime with minigrad
    on each of ``inputs``."""
    mg.onnx.export(model, example, path, **options)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    for x in inputs:
        assert_close(run_onnx(path, x), minigrad_output(model, x), f"input {x.shape}")


def randn(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


# -- the example networks ------------------------------------------------------------------------

def trained_like(model, rng):
    """Give ``model`` the kind of parameters and statistics training leaves (BatchNorm's γ, β and
    running statistics away from 1 and 0), so that eval mode is really exercised."""
    for name, p in model.named_parameters():
        if name.endswith(("bn.weight", "bn.bias")) or p.ndim == 1:
            p.data[...] = rng.uniform(0.5, 1.5, p.shape) if name.endswith("weight") \
                else rng.normal(0, 0.1, p.shape)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean[...] = rng.normal(0, 0.2, m.running_mean.shape)
            m.running_var[...] = rng.uniform(0.5, 2.0, m.running_var.shape)
    return model


def from_checkpoint(build, rng, tmp_path):
    """A model from ``build()`` with the state of a checkpoint written as the examples write
    theirs (``{"model": state_dict, ...}``)."""
    path = tmp_path / "checkpoint.npz"
    mg.save({"model": trained_like(build(), rng).state_dict(), "epoch": 1}, str(path))
    model = build()
    model.load_state_dict(mg.load(str(path))["model"])
    return model


@needs_onnx
def test_fcn_mnist_any_batch_and_size(tmp_path):
    import fcn_mnist
    rng = np.random.default_rng(0)
    model = from_checkpoint(fcn_mnist.build_model, rng, tmp_path)
    inputs = [randn(rng, n, 1, s, s) for n in (1, 7) for s in (28, 40, 64)]
    export_and_compare(model, randn(rng, 2, 1, 28, 28), inputs, tmp_path / "fcn.onnx",
                       dynamic_size=True)
    proto = onnx.load(str(tmp_path / "fcn.onnx"))
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 1, "height", "width"]
    assert "any height and width" in proto.doc_string


@needs_onnx
def test_inception_cifar_any_batch(tmp_path):
    import inception_cifar
    rng = np.random.default_rng(1)
    model = from_checkpoint(inception_cifar.build_model, rng, tmp_path)
    inputs = [randn(rng, n, 3, 32, 32) for n in (1, 7)]
    export_and_compare(model, randn(rng, 2, 3, 32, 32), inputs, tmp_path / "inception.onnx")
    proto = onnx.load(str(tmp_path / "inception.onnx"))
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, 32, 32]
    assert [d.dim_param or d.dim_value
            for d in proto.graph.output[0].type.tensor_type.shape.dim] == ["batch", 10]
    # parameters keep their names, so the file is readable in a viewer such as Netron
    names = {t.name for t in proto.graph.initializer}
    assert {"0.0.weight", "2.branch1.bn.running_mean", "10.weight"} <= names


@needs_onnx
def test_inception_cifar_stride_variant_with_fixed_batch(tmp_path):
    import inception_cifar
    rng = np.random.default_rng(2)
    model = trained_like(inception_cifar.build_model("stride", width=0.5), rng)
    x = randn(rng, 3, 3, 32, 32)
    export_and_compare(model, x, [x], tmp_path / "stride.onnx", dynamic_batch=False)
    dims = onnx.load(str(tmp_path / "stride.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [3, 3, 32, 32]


def run_example(module, args, tmp_path):
    """``module.run(args)`` with a few real images; skips without the data."""
    root = real_data_root("mnist" if module.__name__ == "fcn_mnist" else "cifar10")
    return module.run(["--data-dir", root, "--no-progress", "--out", str(tmp_path), *args])


@needs_onnx
def test_fcn_mnist_example_exports_after_training_and_from_its_checkpoint(tmp_path):
    import fcn_mnist
    common = ["--limit", "64", "--test-limit", "50", "--batch-size", "32", "--width", "4",
              "--canvas", "0"]
    trained = run_example(fcn_mnist, common + ["--epochs", "1", "--export-onnx",
                                               str(tmp_path / "trained.onnx")], tmp_path)
    exported = run_example(fcn_mnist, common + ["--resume", "--epochs", "0", "--export-onnx",
                                                str(tmp_path / "resumed.onnx")], tmp_path)
    assert trained["onnx"] == str(tmp_path / "trained.onnx")
    assert exported == {"name": "fcn_mnist", "epochs": 1, "onnx": str(tmp_path / "resumed.onnx")}
    model = fcn_mnist.build_model(4)
    model.load_state_dict(mg.load(str(tmp_path / "fcn_mnist.npz"))["model"])
    rng = np.random.default_rng(3)
    for n, size in ((1, 28), (7, 40), (7, 64)):
        x = randn(rng, n, 1, size, size)
        expected = minigrad_output(model, x)
        for name in ("trained.onnx", "resumed.onnx"):
            assert_close(run_onnx(tmp_path / name, x), expected, f"{name} on {x.shape}")


@needs_onnx
def test_inception_cifar_example_exports_after_training(tmp_path):
    import inception_cifar
    run_example(inception_cifar, ["--limit", "64", "--test-limit", "50", "--batch-size", "32",
                                  "--width", "0.25", "--epochs", "1", "--export-onnx",
                                  str(tmp_path / "inception.onnx")], tmp_path)
    model = inception_cifar.build_model(width=0.25)
    model.load_state_dict(mg.load(str(tmp_path / "inception_cifar.npz"))["model"])
    rng = np.random.default_rng(4)
    for n in (1, 7):
        x = randn(rng, n, 3, 32, 32)
        assert_close(run_onnx(tmp_path / "inception.onnx", x), minigrad_output(model, x))


# -- one op at a time ----------------------------------------------------------------------------

class Op(nn.Module):
    """A model of one op: ``forward(x) = fn(x, *params)``; ``params`` become Parameters."""

    def __init__(self, fn, *params):
        super().__init__()
        self.fn = fn
        self.count = len(params)
        for i, p in enumerate(params):
            setattr(self, f"p{i}", nn.Parameter(p))

    def forward(self, x):
        return self.fn(x, *(getattr(self, f"p{i}") for i in range(self.count)))


def conv(out_channels, in_channels, kernel, rng, bias=True, **options):
    """An Op model of F.conv2d with random weights."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    groups = options.get("groups", 1)
    w = randn(rng, out_channels, in_channels // groups, kh, kw, scale=0.3)
    if bias:
        return Op(lambda x, w, b: F.conv2d(x, w, b, **options), w, randn(rng, out_channels))
    return Op(lambda x, w: F.conv2d(x, w, **options), w)


def batch_norm_layer(rng, **options):
    layer = nn.BatchNorm2d(4, **options)
    if layer.affine:
        layer.weight.data[...] = rng.uniform(0.5, 1.5, 4)
        layer.bias.data[...] = rng.normal(0, 0.5, 4)
    if layer.track_running_stats:
        layer.running_mean[...] = rng.normal(0, 0.5, 4)
        layer.running_var[...] = rng.uniform(0.5, 2.0, 4)
    return layer


def linear_layer(rng, in_features, out_features, bias=True):
    return nn.Linear(in_features, out_features, bias=bias)


# (name, model builder taking an rng, input shape (batch 2), kind of input values)
CASES = [
    # convolution
    ("conv3x3_pad1", lambda r: conv(5, 4, 3, r, padding=1), (2, 4, 9, 9), "normal"),
    ("conv3x3_stride2_nobias", lambda r: conv(5, 4, 3, r, bias=False, stride=2),
     (2, 4, 9, 9), "normal"),
    ("conv_rect_pad_pair_stride_pair", lambda r: conv(3, 4, (3, 5), r, padding=(1, 2),
                                                      stride=(2, 1)), (2, 4, 9, 10), "normal"),
    ("conv_same_even_kernel", lambda r: conv(3, 4, 4, r, padding="same"), (2, 4, 8, 7),
     "normal"),
    ("conv_same_dilation2", lambda r: conv(3, 4, 3, r, padding="same", dilation=2),
     (2, 4, 9, 9), "normal"),
    ("conv_valid", lambda r: conv(3, 4, 3, r, padding="valid"), (2, 4, 7, 8), "normal"),
    ("conv_dilation2_stride2", lambda r: conv(3, 4, 3, r, dilation=2, stride=2, padding=1),
     (2, 4, 11, 11), "normal"),
    ("conv_groups2", lambda r: conv(6, 4, 3, r, groups=2, padding=1), (2, 4, 8, 8), "normal"),
    ("conv_depthwise", lambda r: conv(4, 4, 3, r, groups=4), (2, 4, 8, 8), "normal"),
    ("conv_pointwise", lambda r: conv(6, 4, 1, r), (2, 4, 5, 5), "normal"),
    ("conv_module", lambda r: nn.Conv2d(4, 6, 3, stride=2, padding=1, dilation=1),
     (2, 4, 10, 10), "normal"),
    # batch norm, linear, matmul
    ("batch_norm_eval", batch_norm_layer, (2, 4, 5, 5), "normal"),
    ("batch_norm_no_affine", lambda r: batch_norm_layer(r, affine=False), (2, 4, 5, 5),
     "normal"),
    ("batch_norm_batch_statistics", lambda r: batch_norm_layer(r, track_running_stats=False),
     (2, 4, 5, 5), "normal"),
    ("linear_2d", lambda r: linear_layer(r, 6, 3), (2, 6), "normal"),
    ("linear_3d_no_bias", lambda r: linear_layer(r, 6, 3, bias=False), (2, 5, 6), "normal"),
    ("matmul_weight", lambda r: Op(lambda x, w: x @ w, randn(r, 6, 4)), (2, 3, 6), "normal"),
    ("matmul_vector", lambda r: Op(lambda x, v: x @ v, randn(r, 6)), (2, 3, 6), "normal"),
    ("matmul_self", lambda r: Op(lambda x: x @ x.transpose(0, 2, 1)), (2, 3, 6), "normal"),
    # arithmetic
    ("add_channel_bias", lambda r: Op(lambda x, b: x + b.reshape(1, -1, 1, 1), randn(r, 4)),
     (2, 4, 3, 3), "normal"),
    ("sub_mul_div_neg_pow", lambda r: Op(lambda x: -(x - 1.5) * x / (x * x + 1.0) + x ** 2),
     (2, 4, 3, 3), "normal"),
    ("scalar_left_operands", lambda r: Op(lambda x: 2.0 - x + 3.0 * x), (2, 4, 3, 3),
     "normal"),
    ("exp_log_sqrt_abs_clip", lambda r: Op(lambda x: (x.log() + x.sqrt() + (-x).abs().exp())
                                             .clip(-1.0, 2.0)), (2, 4, 3, 3), "positive"),
    ("clip_one_side", lambda r: Op(lambda x: x.clip(min=0.25)), (2, 4, 3, 3), "normal"),
    ("cast_roundtrip", lambda r: Op(lambda x: x.astype(np.float64).astype(np.float32) * 2.0),
     (2, 3), "normal"),
    # shapes
    ("flatten", lambda r: nn.Flatten(), (2, 4, 3, 3), "normal"),
    ("reshape_keep_batch", lambda r: Op(lambda x: x.reshape(x.shape[0], 2, -1)), (2, 4, 3, 3),
     "normal"),
    ("reshape_channels_last", lambda r: Op(lambda x: x.transpose(0, 2, 3, 1).reshape(
        x.shape[0], -1, x.shape[1])), (2, 4, 3, 5), "normal"),
    ("transpose_permute", lambda r: Op(lambda x: x.permute(0, 3, 1, 2)), (2, 4, 3, 5),
     "normal"),
    ("getitem_slices", lambda r: Op(lambda x: x[:, 1:3, ::2, -2:]), (2, 4, 5, 5), "normal"),
    ("getitem_int_none_ellipsis", lambda r: Op(lambda x: x[:, 0, None, ..., -1]),
     (2, 4, 5, 6), "normal"),
    ("getitem_negative_step", lambda r: Op(lambda x: x[..., ::-1]), (2, 4, 3, 5), "normal"),
    ("getitem_index_array", lambda r: Op(lambda x: x[:, [3, 0, 0]]), (2, 4, 3, 3), "normal"),
    ("getitem_mask", lambda r: Op(lambda x: x[:, :, np.array([True, False, True])]),
     (2, 4, 3, 3), "normal"),
    ("cat", lambda r: Op(lambda x, c: mg.cat([x, x * 2.0, c.reshape(1, 2, 1, 1) * x[:, :2]],
                                             axis=1), randn(r, 2)), (2, 4, 3, 3), "normal"),
    ("split_size", lambda r: Op(lambda x: mg.cat(list(mg.split(x, 3, axis=1))[::-1], axis=1)),
     (2, 7, 3, 3), "normal"),
    ("split_sections", lambda r: Op(lambda x: mg.split(x, [1, 4, 2], axis=1)[1]),
     (2, 7, 3, 3), "normal"),
    ("stack", lambda r: Op(lambda x: mg.stack([x, -x], axis=2)), (2, 4, 3), "normal"),
    ("reductions", lambda r: Op(lambda x: x.sum(axis=(2, 3)) + x.mean(axis=(1, 2)).max(
        axis=-1, keepdims=True)), (2, 4, 3, 5), "normal"),
    # activations
    ("relu", lambda r: nn.ReLU(), (2, 4, 3, 3), "normal"),
    ("leaky_relu", lambda r: nn.LeakyReLU(0.2), (2, 4, 3, 3), "normal"),
    ("prelu_shared", lambda r: nn.PReLU(), (2, 4, 3, 3), "normal"),
    ("prelu_per_channel", lambda r: nn.PReLU(4, init=0.1), (2, 4, 3, 3), "normal"),
    ("elu", lambda r: nn.ELU(0.5), (2, 4, 3, 3), "normal"),
    ("selu", lambda r: nn.SELU(), (2, 4, 3, 3), "normal"),
    ("gelu", lambda r: nn.GELU(), (2, 4, 3, 3), "normal"),
    ("gelu_tanh", lambda r: nn.GELU("tanh"), (2, 4, 3, 3), "normal"),
    ("silu", lambda r: nn.SiLU(), (2, 4, 3, 3), "normal"),
    ("swish_per_channel", lambda r: nn.Swish(4, init=1.5), (2, 4, 3, 3), "normal"),
    ("sigmoid", lambda r: nn.Sigmoid(), (2, 4, 3, 3), "normal"),
    ("tanh", lambda r: nn.Tanh(), (2, 4, 3, 3), "normal"),
    ("softmax_channels", lambda r: nn.Softmax(1), (2, 4, 3, 3), "normal"),
    ("softmax_last", lambda r: nn.Softmax(-1), (2, 4, 3, 3), "normal"),
    ("log_softmax", lambda r: nn.LogSoftmax(1), (2, 10), "normal"),
    ("maxout", lambda r: nn.Maxout(2), (2, 6, 3, 3), "normal"),
    ("maxout_last_axis", lambda r: nn.Maxout(3, axis=-1), (2, 4, 6), "normal"),
    ("dropout_is_identity", lambda r: nn.Sequential(nn.Dropout(0.5), nn.ReLU()), (2, 4, 3, 3),
     "normal"),
    # max and average pooling
    ("max_pool2", lambda r: nn.MaxPool2d(2), (2, 3, 8, 8), "normal"),
    ("max_pool3_stride2_pad1", lambda r: nn.MaxPool2d(3, 2, 1), (2, 3, 9, 9), "normal"),
    ("max_pool_dilation2", lambda r: nn.MaxPool2d(3, 1, 1, dilation=2), (2, 3, 9, 9), "normal"),
    ("max_pool_ceil_mode", lambda r: nn.MaxPool2d(2, ceil_mode=True), (2, 3, 7, 9), "normal"),
    ("max_pool_ceil_pad_dilation", lambda r: nn.MaxPool2d(3, 2, 1, dilation=2, ceil_mode=True),
     (2, 3, 10, 11), "normal"),
    ("max_pool_ceil_drops_last_window", lambda r: nn.MaxPool2d(2, 3, 1, ceil_mode=True),
     (2, 3, 5, 8), "normal"),
    ("max_pool_ceil_dilated_wide_padding", lambda r: nn.MaxPool2d(2, 3, 1, dilation=3,
                                                                  ceil_mode=True),
     (2, 3, 9, 10), "normal"),
    ("max_pool_rect", lambda r: nn.MaxPool2d((2, 3), (1, 2)), (2, 3, 6, 9), "normal"),
    ("max_pool_window_wider_than_input", lambda r: nn.MaxPool2d(5, 3, 2, dilation=3),
     (2, 3, 10, 10), "normal"),
    ("avg_pool_pad_count_include", lambda r: nn.AvgPool2d(3, 2, 1), (2, 3, 9, 9), "normal"),
    ("avg_pool_pad_exclude", lambda r: nn.AvgPool2d(3, 2, 1, count_include_pad=False),
     (2, 3, 9, 9), "normal"),
    ("avg_pool_ceil_mode", lambda r: nn.AvgPool2d(2, ceil_mode=True), (2, 3, 7, 9), "normal"),
    ("avg_pool_ceil_drops_last_window", lambda r: nn.AvgPool2d(2, 3, 1, ceil_mode=True),
     (2, 3, 5, 8), "normal"),
    ("avg_pool_ceil_pad_exclude", lambda r: nn.AvgPool2d(3, 2, 1, ceil_mode=True,
                                                         count_include_pad=False),
     (2, 3, 8, 10), "normal"),
    ("avg_pool_divisor_override", lambda r: nn.AvgPool2d(3, 2, 1, divisor_override=4),
     (2, 3, 9, 9), "normal"),
    ("avg_pool_divisor_override_ceil", lambda r: nn.AvgPool2d(3, 2, 1, ceil_mode=True,
                                                              divisor_override=5),
     (2, 3, 8, 8), "normal"),
    # global, adaptive, Lp pooling
    ("global_avg", lambda r: nn.GlobalAvgPool2d(), (2, 3, 5, 6), "normal"),
    ("global_max_keepdims", lambda r: nn.GlobalMaxPool2d(keepdims=True), (2, 3, 5, 6),
     "normal"),
    ("adaptive_avg_uniform", lambda r: nn.AdaptiveAvgPool2d(4), (2, 3, 8, 12), "normal"),
    ("adaptive_max_uniform", lambda r: nn.AdaptiveMaxPool2d((2, 3)), (2, 3, 8, 9), "normal"),
    ("adaptive_avg_uneven", lambda r: nn.AdaptiveAvgPool2d(3), (2, 3, 7, 8), "normal"),
    ("adaptive_max_uneven", lambda r: nn.AdaptiveMaxPool2d((3, 5)), (2, 3, 7, 7), "normal"),
    ("adaptive_one", lambda r: nn.AdaptiveAvgPool2d(1), (2, 3, 7, 5), "normal"),
    ("adaptive_keep_height", lambda r: nn.AdaptiveMaxPool2d((None, 2)), (2, 3, 5, 7),
     "normal"),
    ("lp_pool2", lambda r: nn.LPPool2d(2, 2), (2, 3, 8, 8), "normal"),
    ("lp_pool1_stride1", lambda r: nn.LPPool2d(1, 3, 1), (2, 3, 6, 6), "normal"),
    ("lp_pool3_ceil_mode", lambda r: nn.LPPool2d(3, 2, ceil_mode=True), (2, 3, 7, 9),
     "normal"),
    ("lp_pool_fractional_p", lambda r: nn.LPPool2d(1.5, (2, 3), (2, 2)), (2, 3, 8, 9),
     "normal"),
    # compositions
    ("mixed_pool", lambda r: nn.MixedPool2d(2), (2, 3, 8, 8), "normal"),
    ("mixed_pool_per_channel_padded", lambda r: nn.MixedPool2d(3, 2, 1, num_channels=3),
     (2, 3, 9, 9), "normal"),
    ("gated_pool", lambda r: Op(lambda x, w: F.gated_pool2d(x, w, 2), randn(r, 2, 2)),
     (2, 3, 8, 8), "normal"),
    ("spatial_pyramid_max", lambda r: nn.SpatialPyramidPool2d(), (2, 3, 9, 9), "normal"),
    ("spatial_pyramid_avg", lambda r: nn.SpatialPyramidPool2d((1, 3), mode="avg"),
     (2, 3, 8, 8), "normal"),
    ("stochastic_pool_eval", lambda r: nn.StochasticPool2d(2), (2, 3, 8, 8), "relu"),
]


def make_input(rng, shape, kind):
    x = randn(rng, *shape)
    if kind == "positive":
        return np.abs(x) + 0.1
    if kind == "relu":          # non-negative, with some all-zero windows
        x = np.maximum(x, 0)
        x[..., :2, :2] = 0
        return x
    return x


@needs_onnx
@pytest.mark.parametrize("name, build, shape, kind", CASES, ids=[c[0] for c in CASES])
def test_single_op_any_batch(name, build, shape, kind, tmp_path):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    model = build(rng)
    inputs = [make_input(rng, (n,) + shape[1:], kind) for n in (1, 7)]
    export_and_compare(model, make_input(rng, shape, kind), inputs, tmp_path / f"{name}.onnx")


#: (name, model, input shape, other (height, width)s to run at): exported with dynamic_size.
DYNAMIC_SIZE_CASES = [
    ("conv_stride2", lambda r: conv(3, 3, 3, r, stride=2, padding=1), (2, 3, 9, 9),
     [(12, 7), (16, 16)]),
    ("conv_same", lambda r: conv(3, 3, 4, r, padding="same", dilation=2), (2, 3, 9, 9),
     [(12, 7)]),
    ("max_pool_ceil_mode", lambda r: nn.MaxPool2d(3, 2, 1, ceil_mode=True), (2, 3, 8, 8),
     [(9, 10), (13, 7)]),
    ("max_pool_stride_default", lambda r: nn.MaxPool2d(2), (2, 3, 8, 8), [(9, 11)]),
    ("max_pool_ceil_drops_last_window", lambda r: nn.MaxPool2d(2, 3, 1, ceil_mode=True),
     (2, 3, 8, 8), [(5, 7), (9, 10)]),
    ("avg_pool_ceil_mode", lambda r: nn.AvgPool2d(2, ceil_mode=True), (2, 3, 8, 8),
     [(9, 11)]),
    ("avg_pool_ceil_count_include_pad", lambda r: nn.AvgPool2d(3, 2, 1, ceil_mode=True),
     (2, 3, 8, 8), [(9, 11), (6, 5)]),
    ("avg_pool_divisor_override", lambda r: nn.AvgPool2d(3, 2, 1, divisor_override=4),
     (2, 3, 8, 8), [(9, 11)]),
    ("lp_pool_ceil_mode", lambda r: nn.LPPool2d(2, 2, ceil_mode=True), (2, 3, 8, 8),
     [(9, 11)]),
    ("adaptive_avg", lambda r: nn.AdaptiveAvgPool2d((3, 2)), (2, 3, 9, 8), [(10, 7), (16, 5)]),
    ("adaptive_max_keep_width", lambda r: nn.AdaptiveMaxPool2d((2, None)), (2, 3, 8, 8),
     [(7, 5)]),
    ("spatial_pyramid", lambda r: nn.SpatialPyramidPool2d(), (2, 3, 8, 8), [(9, 13), (4, 6)]),
    ("gated_pool", lambda r: Op(lambda x, w: F.gated_pool2d(x, w, 2), randn(r, 2, 2)),
     (2, 3, 8, 8), [(10, 6)]),
    ("mixed_pool", lambda r: nn.MixedPool2d(3, 2, 1), (2, 3, 8, 8), [(11, 6)]),
    ("maxout_then_global_max", lambda r: nn.Sequential(nn.Maxout(3), nn.GlobalMaxPool2d()),
     (2, 6, 5, 5), [(7, 3)]),
    ("flatten_spatial_then_softmax", lambda r: Op(lambda x: F.softmax(x.flatten(2), -1)),
     (2, 3, 4, 5), [(6, 2)]),
    ("crop_border", lambda r: Op(lambda x: x[:, :, 1:-1, 2:]), (2, 3, 6, 6), [(9, 5)]),
]


@needs_onnx
@pytest.mark.parametrize("name, build, shape, sizes", DYNAMIC_SIZE_CASES,
                         ids=[c[0] for c in DYNAMIC_SIZE_CASES])
def test_single_op_any_size(name, build, shape, sizes, tmp_path):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    model = build(rng)
    inputs = [randn(rng, n, shape[1], h, w) for n, (h, w) in zip((1, 7, 3), [shape[2:]] + sizes)]
    export_and_compare(model, randn(rng, *shape), inputs, tmp_path / f"{name}.onnx",
                       dynamic_size=True)


@needs_onnx
@pytest.mark.parametrize("opset", [13, 18, 20])
def test_other_opsets(opset, tmp_path):
    """Where the operators changed (Reduce* axes as an input from 18, Gelu from 20)."""
    rng = np.random.default_rng(opset)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.GELU(), nn.GELU("tanh"),
                          nn.Maxout(2), nn.AdaptiveMaxPool2d(3), nn.Flatten(),
                          nn.Linear(27, 4), nn.LogSoftmax(1))
    inputs = [randn(rng, n, 3, 7, 7) for n in (1, 7)]
    export_and_compare(model, randn(rng, 2, 3, 7, 7), inputs, tmp_path / "m.onnx", opset=opset)
    assert onnx.load(str(tmp_path / "m.onnx")).opset_import[0].version == opset


# -- what export refuses -------------------------------------------------------------------------

class Stage(nn.Module):
    def __init__(self, pool):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.pool = pool

    def forward(self, x):
        return self.pool(self.conv(x))


class Double(Function):
    """A user-written op the exporter does not know."""

    def forward(self, x):
        return 2 * x

    def backward(self, gy):
        return 2 * gy


class Trainer(nn.Module):
    def forward(self, x):
        return F.dropout(F.stochastic_pool2d(F.relu(x), 2, training=True), 0.5)


@needs_onnx
@pytest.mark.parametrize("model, message", [
    (nn.Sequential(Stage(nn.FractionalMaxPool2d(2, output_size=4))),
     "fractional_max_pool2d in module '0.pool' (FractionalMaxPool2d) has no ONNX form"),
    (Trainer(), "stochastic_pool2d in training mode in the model's own forward (Trainer) has "
                "no ONNX form: it samples"),
    (nn.Sequential(nn.ReLU(), Op(lambda x: Double()(x))),
     "in module '1' (Op) has no ONNX form: minigrad's exporter does not know the op "),
], ids=["fractional", "stochastic_training", "unknown_op"])
def test_ops_without_an_onnx_form_are_named(model, message, tmp_path):
    with pytest.raises(ExportError) as error:
        mg.onnx.export(model, np.ones((1, 3, 8, 8), np.float32), tmp_path / "m.onnx")
    assert message in str(error.value)
    assert not (tmp_path / "m.onnx").exists()


@needs_onnx
def test_dropout_in_training_mode_is_named(tmp_path):
    model = Op(lambda x: F.dropout(x, 0.5, training=True))
    with pytest.raises(ExportError, match="dropout in training mode in the model's own forward "
                                          r"\(Op\) has no ONNX form"):
        mg.onnx.export(model, np.ones((2, 3), np.float32), tmp_path / "m.onnx")


@needs_onnx
def test_a_size_fixed_by_a_weight_refuses_dynamic_size(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))
    x = np.ones((2, 1, 8, 8), np.float32)
    with pytest.raises(ExportError, match=r"Linear in module '2' \(Linear\): the input's last "
                                          "axis .* varies with the input"):
        mg.onnx.export(model, x, tmp_path / "m.onnx", dynamic_size=True)
    export_and_compare(model, x, [np.ones((5, 1, 8, 8), np.float32)], tmp_path / "m.onnx")


@needs_onnx
def test_a_pooling_window_without_its_call_arguments(monkeypatch, tmp_path):
    """When the functional call's arguments cannot be read, the window is inferred from the
    traced sizes: right for that size, so only a fixed-size export takes it."""
    monkeypatch.setattr(mg.onnx, "ARGUMENTS_OF", ())
    model = nn.MaxPool2d(2, ceil_mode=True)
    x = randn(np.random.default_rng(5), 2, 3, 7, 9)
    export_and_compare(model, x, [x], tmp_path / "m.onnx", dynamic_batch=False)
    with pytest.raises(ExportError, match=r"MaxPool2d in the model's own forward "
                                          r"\(MaxPool2d\): cannot tell the window"):
        mg.onnx.export(model, x, tmp_path / "m.onnx", dynamic_size=True)


@needs_onnx
def test_a_model_that_returns_its_input(tmp_path):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    export_and_compare(nn.Identity(), x, [x, x[:1]], tmp_path / "identity.onnx")


@needs_onnx
def test_export_restores_training_mode_and_returns_the_path(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout())
    model[1].eval()                           # a frozen BatchNorm stays frozen
    path = tmp_path / "m.onnx"
    assert mg.onnx.export(model, np.ones((2, 1, 5, 5), np.float32), path) == path
    assert [m.training for m in model.modules()] == [True, True, False, True]


@needs_onnx
@pytest.mark.parametrize("options, error, message", [
    (dict(opset=12), ValueError, "opset must be an int from 13"),
    (dict(opset="17"), ValueError, "opset must be an int"),
    (dict(dynamic_batch=1), TypeError, "dynamic_batch must be a bool"),
])
def test_bad_arguments(options, error, message, tmp_path):
    with pytest.raises(error, match=message):
        mg.onnx.export(nn.ReLU(), np.ones((2, 3), np.float32), tmp_path / "m.onnx", **options)


def test_onnx_is_installed_where_required():
    # .ci/run sets MINIGRAD_REQUIRE_ONNX=1: there a missing install must fail, not skip quietly
    if os.environ.get("MINIGRAD_REQUIRE_ONNX") == "1":
        assert onnx is not None, f"MINIGRAD_REQUIRE_ONNX=1, but {ONNX_MISSING}"


def test_without_onnx_export_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)        # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'minigrad\[onnx\]'"):
        mg.onnx.export(nn.ReLU(), np.ones((2, 3), np.float32), tmp_path / "m.onnx")


def test_importing_minigrad_does_not_import_onnx():
    import subprocess
    code = "import sys, minigrad; print('onnx' in sys.modules, 'onnxruntime' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "False"]
