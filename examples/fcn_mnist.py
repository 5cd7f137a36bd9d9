"""A fully convolutional MNIST classifier: convolutions and pooling only, a 1×1 convolution to 10
class maps, and global average pooling — no fully connected layer.

Because global average pooling turns any H×W map into one score per class, the trained network
also classifies digits placed at a random offset on larger canvases (40×40 by default); the example
reports that accuracy after training.

    python examples/fcn_mnist.py                 # the default run (see the README's results)
    python examples/fcn_mnist.py --limit 2000 --epochs 1
    python examples/fcn_mnist.py --resume --epochs 0 --export-onnx fcn_mnist.onnx
    mpiexec -n 2 python examples/fcn_mnist.py --distributed      # docs/distributed.md
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import minigrad as mg  # noqa: E402  (before numpy: see minigrad/__init__.py)
import numpy as np  # noqa: E402
from minigrad import nn  # noqa: E402
from minigrad.data import MNIST, ArrayDataset, DataLoader, Normalize  # noqa: E402
from training import (argument_type, evaluate, main, parse_args, positive_int,  # noqa: E402
                      subset)

MEAN, STD = 0.1307, 0.3081
DEFAULTS = {"epochs": 5, "batch_size": 128, "lr": 0.2, "weight_decay": 5e-4}


def conv_bn_relu(cin, cout, kernel=3):
    return [nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU()]


def build_model(width=16):
    w = width
    return nn.Sequential(
        *conv_bn_relu(1, w), *conv_bn_relu(w, w), nn.MaxPool2d(2),             # 28 → 14
        *conv_bn_relu(w, 2 * w), *conv_bn_relu(2 * w, 2 * w), nn.MaxPool2d(2),  # 14 → 7
        *conv_bn_relu(2 * w, 4 * w),
        nn.Conv2d(4 * w, 10, 1),               # 1×1 convolution: one map per class
        nn.GlobalAvgPool2d(),                  # any H×W → (N, 10)
    )


def embed_in_canvas(images, size, seed):
    """Each 28×28 digit pasted at a random offset of a ``size``×``size`` black canvas."""
    rng = np.random.default_rng(seed)
    n, c, h, w = images.shape
    canvas = np.zeros((n, c, size, size), dtype=images.dtype)
    top = rng.integers(0, size - h + 1, n)
    left = rng.integers(0, size - w + 1, n)
    rows = top[:, None] + np.arange(h)                      # (n, h)
    cols = left[:, None] + np.arange(w)                     # (n, w)
    canvas[np.arange(n)[:, None, None, None], np.arange(c)[None, :, None, None],
           rows[:, None, :, None], cols[:, None, None, :]] = images
    return canvas


def canvas_accuracy(test_set, size, seed, shard=None):
    """The after-training report: accuracy on the canvases (over every rank's ``shard``)."""
    def evaluate_on_canvas(model):
        canvas = ArrayDataset(embed_in_canvas(test_set.images, size, seed), test_set.labels)
        loader = DataLoader(canvas, 500, transform=Normalize([MEAN], [STD]), shard=shard)
        accuracy, _ = evaluate(model, loader)
        print(f"test digits on {size}x{size} canvases at random offsets: accuracy "
              f"{accuracy:.4f}")
        return {f"canvas_{size}_accuracy": accuracy}
    return evaluate_on_canvas


canvas_size = argument_type(int, lambda n: n == 0 or n >= 28,
                            "0 or at least 28 (the digits are 28x28)")


def add_options(parser):
    parser.add_argument("--width", type=positive_int, default=16,
                        help="channels of the first stage")
    parser.add_argument("--canvas", type=canvas_size, default=40,
                        help="canvas size for the any-size evaluation (0 to skip)")


def run(argv=None):
    args = parse_args(__doc__.splitlines()[0], DEFAULTS, add_options, argv, name="fcn_mnist")
    train_set = MNIST(args.data_dir, train=True)
    test_set = subset(MNIST(args.data_dir, train=False), args.test_limit)
    normalize = Normalize([MEAN], [STD])
    canvas = canvas_accuracy(test_set, args.canvas, args.seed, args.shard) if args.canvas \
        else None
    # fully convolutional up to global pooling: the ONNX model takes any height and width too
    return main(args, lambda: build_model(args.width), train_set, test_set, normalize,
                normalize, after_training=canvas, onnx_any_size=True)


if __name__ == "__main__":
    run()
