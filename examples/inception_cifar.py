"""A GoogLeNet-style inception network for CIFAR-10, sized for a laptop CPU.

A 3×3 stem convolution, then inception modules (``nn.Inception``, GoogLeNet's four branches with
BatchNorm) in three stages at 32×32, 16×16 and 8×8, separated by stride-2 3×3 max pooling;
global average pooling and a linear classifier. Trained with random crop + flip augmentation and
SGD with Nesterov momentum on a one-cycle schedule.

``--downsample stride`` swaps every max-pooling stage for a stride-2 3×3 convolution (+BN+ReLU)
with the same number of channels, for the comparison of pooling against strided convolution.

    python examples/inception_cifar.py                     # the default run (README results)
    python examples/inception_cifar.py --limit 2000 --epochs 1
    python examples/inception_cifar.py --export-onnx inception.onnx   # train, then export
    mpiexec -n 2 python examples/inception_cifar.py --distributed    # docs/distributed.md
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from minigrad import nn  # noqa: E402
from minigrad.data import CIFAR10, Compose, Normalize, RandomCrop, RandomHorizontalFlip  # noqa
from training import main, parse_args, positive_number  # noqa: E402

# Per-channel statistics of the CIFAR-10 training images (pixels / 255).
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
DEFAULTS = {"epochs": 9, "batch_size": 128, "lr": 0.2, "weight_decay": 5e-4}

# (ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj) per inception module, per stage:
# GoogLeNet's proportions (Table 1) at a fraction of its widths.
STAGES = [
    [(16, 16, 24, 4, 8, 8)],                                    # 32×32
    [(32, 32, 48, 8, 16, 16), (48, 48, 64, 12, 24, 24)],        # 16×16
    [(64, 64, 96, 16, 32, 32), (96, 80, 128, 16, 32, 48)],      # 8×8
]
STEM = 32


def conv_bn_relu(cin, cout, kernel, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2,
                                   bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())


def build_model(downsample="pool", width=1.0):
    def w(c):
        return max(1, int(round(c * width)))

    layers = [conv_bn_relu(3, w(STEM), 3)]
    channels = w(STEM)
    for index, stage in enumerate(STAGES):
        if index > 0:
            layers.append(nn.MaxPool2d(3, stride=2, padding=1) if downsample == "pool"
                          else conv_bn_relu(channels, channels, 3, stride=2))
        for widths in stage:
            block = nn.Inception(channels, *(w(c) for c in widths), norm="batch")
            layers.append(block)
            channels = block.out_channels
    layers += [nn.GlobalAvgPool2d(), nn.Linear(channels, 10)]
    return nn.Sequential(*layers)


def add_options(parser):
    parser.add_argument("--downsample", choices=("pool", "stride"), default="pool",
                        help="stage transitions: 3x3/2 max pooling or a stride-2 convolution")
    parser.add_argument("--width", type=positive_number, default=1.0,
                        help="channel width multiplier")


def run_name(args):
    """inception_cifar, or inception_cifar_stride for --downsample stride (and its --out
    defaults to runs/<that name>)."""
    return "inception_cifar" + ("_stride" if args.downsample == "stride" else "")


def run(argv=None):
    args = parse_args(__doc__.splitlines()[0], DEFAULTS, add_options, argv, name=run_name)
    normalize = Normalize(MEAN, STD)
    augment = Compose([RandomCrop(32, padding=4), RandomHorizontalFlip(), normalize])

    print("note: the CIFAR-10 copy in ../shared/data was rebuilt from a JPEG re-encoding; "
          "accuracy on it is close to, not equal to, accuracy on the original")
    # main prints the model's summary: parameters and multiply-adds per 32x32 image
    return main(args, lambda: build_model(args.downsample, args.width),
                CIFAR10(args.data_dir, train=True),
                CIFAR10(args.data_dir, train=False), augment, normalize)


if __name__ == "__main__":
    run()
