"""A fully convolutional MNIST classifier: convolutions and pooling only, a 1×1 convolution to 10
class maps, and global average pooling — no fully connected layer.

Because global average pooling turns any H×W map into one score per class, the same network
classifies inputs of any size. It is trained so: 30 % of the batches (--canvas-fraction) put their
digits at random offsets on canvases of 28 to 64 pixels (--train-canvas), the side drawn per batch,
and for the last 12 % of the steps (--freeze-bn) BatchNorm normalises with its running statistics
as at test time (batch statistics depend on how much empty canvas a batch holds), with steps a
tenth of the schedule's (--freeze-lr-scale), which keeps that phase stable. The labels are
smoothed by 0.1 (--label-smoothing), and the last stage (at 7×7) has two 3×3 convolutions, to
twice and four times the channels of the one before.
After training it reports the accuracy on the 28×28 test digits and on the test digits at random
offsets on 40×40 and 64×64 canvases (--canvas), and writes pictures (--no-figures: none): the
first layer's filters, the feature maps of one test digit at each stage (examples/figures.py), and
the dense prediction of a page of test digits: without the global pooling, the class scores at
every location (fcn_mnist_dense.png).

    python examples/fcn_mnist.py                 # the default run (see the README's results)
    python examples/fcn_mnist.py --limit 2000 --epochs 1
    python examples/fcn_mnist.py --figures-only  # the figures of the checkpoint in --out again
    python examples/fcn_mnist.py --resume --epochs 0 --export-onnx fcn_mnist.onnx
    mpiexec -n 2 python examples/fcn_mnist.py --distributed      # docs/distributed.md
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import minigrad as mg  # noqa: E402  (before numpy: see minigrad/__init__.py)
import numpy as np  # noqa: E402
from minigrad import nn  # noqa: E402
from minigrad.data import MNIST, ArrayDataset, Compose, DataLoader, Normalize  # noqa: E402
from minigrad.data.transforms import RandomCanvas, RandomCrop  # noqa: E402
from figures import pyplot, write_figures  # noqa: E402
from training import (argument_type, checkpoint_path, evaluate, main,  # noqa: E402
                      non_negative_int, parse_args, positive_int, subset)

MEAN, STD = 0.1307, 0.3081
DEFAULTS = {"epochs": 5, "batch_size": 128, "lr": 0.2, "weight_decay": 5e-4,
            "label_smoothing": 0.1}


def conv_bn_relu(cin, cout, kernel=3):
    return [nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout),
            nn.ReLU()]


class FullyConvolutional(nn.Sequential):
    """``nn.Sequential`` whose BatchNorm layers stop using batch statistics after
    ``freeze_after`` training steps (None: never), their running statistics first recalibrated
    over the ``calibration_steps`` steps before (forward passes in training mode with
    gradients, counted in the buffer ``steps``, so a resumed run goes on counting).

    A batch on a larger canvas is mostly empty background: its batch statistics differ from a
    28×28 batch's and from those of every other canvas size. In training mode BatchNorm
    normalises each batch with its own statistics, so the network learns a different
    normalisation for each canvas size, while at test time it applies one set: digits on 64×64
    canvases then lose several points. So for the last steps (small learning rates at the end
    of the one-cycle schedule) the BatchNorm layers normalise with fixed statistics, as at test
    time, and the network adapts to that one normalisation for every size; their scale and
    shift still learn. The fixed statistics are the plain average over the calibration steps'
    batches (BatchNorm's ``momentum=None``), a mixture of every canvas size: the usual running
    average would weight the last few batches, and so the last few sizes, most.

    The frozen steps' gradients are multiplied by ``frozen_step_scale``. Without BatchNorm's
    batch normalisation the network is far more sensitive to its weights' scale, and at the
    one-cycle schedule's learning rate at that point the activations could grow tenfold in a
    few dozen steps and training diverge (in runs of 6 and 7 epochs); a tenth of the steps
    kept it stable."""

    def __init__(self, *modules, freeze_after=None, calibration_steps=0, frozen_step_scale=1.0):
        super().__init__(*modules)
        self.freeze_after, self.calibration_steps = freeze_after, calibration_steps
        self.frozen_step_scale = frozen_step_scale
        self.register_buffer("steps", np.zeros(1, dtype=np.int64))

    def forward(self, x):
        if not (self.training and mg.is_grad_enabled()) or self.freeze_after is None:
            return super().forward(x)
        self.steps[0] += 1
        step = int(self.steps[0])
        norms = [m for m in self.modules() if isinstance(m, nn.BatchNorm2d)]
        calibrating = 0 <= self.freeze_after - step < self.calibration_steps
        for m in norms:
            if calibrating and self.freeze_after - step == self.calibration_steps - 1:
                m.reset_running_stats()        # the first calibration step
            m.momentum = None if calibrating else 0.1
        if step <= self.freeze_after:
            return super().forward(x)
        for m in norms:
            m.train(False)
        try:
            y = super().forward(x)
            # the output unchanged (up to rounding), its gradient (with SGD: every step) scaled
            scale = self.frozen_step_scale
            return y if scale == 1 else y * scale + (y * (1 - scale)).detach()
        finally:
            for m in norms:
                m.train(True)


def build_model(width=16, freeze_after=None, calibration_steps=0, frozen_step_scale=1.0):
    w = width
    return FullyConvolutional(
        *conv_bn_relu(1, w), *conv_bn_relu(w, w), nn.MaxPool2d(2),             # 28 → 14
        *conv_bn_relu(w, 2 * w), *conv_bn_relu(2 * w, 2 * w), nn.MaxPool2d(2),  # 14 → 7
        # the last stage deeper and wider: at 7×7 its channels cost little time, and with
        # its second 3×3 convolution each class map sees more of the canvas
        *conv_bn_relu(2 * w, 4 * w), *conv_bn_relu(4 * w, 8 * w),
        nn.Conv2d(8 * w, 10, 1),               # 1×1 convolution: one map per class
        nn.GlobalAvgPool2d(),                  # any H×W → (N, 10)
        freeze_after=freeze_after, calibration_steps=calibration_steps,
        frozen_step_scale=frozen_step_scale)


def stages(model):
    """The (label, module) pairs whose outputs the feature-map figure shows: each pooling
    stage, the last 3×3 convolution's ReLU and the 1×1 convolution's class maps."""
    layers = list(model)
    pools = [(f"pool {i + 1}", m) for i, m in
             enumerate(m for m in layers if isinstance(m, nn.MaxPool2d))]
    return pools + [("last 3x3 conv", layers[-3]), ("class maps (1x1)", layers[-2])]


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


def make_page(test_set, seed, rows=3, cols=4, slot=34):
    """A page of ``rows`` × ``cols`` test digits: each in its ``slot``×``slot`` cell of a black
    page at a random offset, drawn at random from ``test_set``. Returns the page (uint8,
    1×H×W), the digits' labels and their top-left corners."""
    rng = np.random.default_rng(seed)
    count = rows * cols
    # distinct digits, unless --test-limit left fewer than the page holds
    picks = rng.choice(len(test_set), count, replace=len(test_set) < count)
    images, labels = test_set[picks]
    page = np.zeros((1, rows * slot, cols * slot), dtype=np.uint8)
    corners = []
    for k in range(count):
        top = (k // cols) * slot + int(rng.integers(0, slot - 28 + 1))
        left = (k % cols) * slot + int(rng.integers(0, slot - 28 + 1))
        page[:, top:top + 28, left:left + 28] = images[k]
        corners.append((top, left))
    return page, np.asarray(labels), corners


def dense_predictions(model, image):
    """Class probabilities at every location: the network without its global pooling (the 1×1
    convolution's 10 maps), a softmax over the classes at each output cell. ``image``: 1×H×W,
    normalised. Returns 10 × H/4 × W/4 (the two 2×2 poolings)."""
    body = model[:-1]
    model.eval()
    with mg.no_grad():
        logits = body(mg.tensor(np.ascontiguousarray(image[None], dtype=np.float32))).data[0]
    model.train()
    logits = logits - logits.max(axis=0, keepdims=True)
    probabilities = np.exp(logits)
    return probabilities / probabilities.sum(axis=0, keepdims=True)


def write_dense_demo(model, test_set, path, seed=0):
    """``fcn_mnist_dense.png``: a page of 12 test digits (``make_page``), and next to it the
    same page under the dense prediction: at each output cell (4×4 pixels) its predicted class's
    colour with opacity its probability, and the class digit where that exceeds 0.5. A yellow
    box around each digit, labelled with the class of the average of the probabilities in it.
    Returns ``path`` (None without matplotlib)."""
    plt = pyplot()
    if plt is None:
        return None
    page, labels, corners = make_page(test_set, seed)
    image = Normalize([MEAN], [STD])(page.astype(np.float32) / 255)
    probabilities = dense_predictions(model, image)
    classes, confidence = probabilities.argmax(axis=0), probabilities.max(axis=0)
    height, width = page.shape[1:]
    colours = plt.get_cmap("tab10")(np.arange(10))
    overlay = colours[classes]                     # (h, w, 4): each cell its class's colour
    overlay[..., 3] = 0.75 * confidence
    fig, (ax_page, ax_dense) = plt.subplots(1, 2, figsize=(12, 5.2))
    for ax in (ax_page, ax_dense):
        ax.imshow(page[0], cmap="gray", extent=(0, width, height, 0))
        ax.set_xticks([])
        ax.set_yticks([])
    ax_page.set_title(f"{len(labels)} test digits on a {height}x{width} page "
                      f"(labels {' '.join(str(int(y)) for y in labels)})", fontsize=9)
    # each output cell covers 4x4 pixels of the page (two 2x2 poolings)
    ax_dense.imshow(overlay, extent=(0, classes.shape[1] * 4, classes.shape[0] * 4, 0),
                    interpolation="nearest")
    for (r, c) in zip(*np.nonzero(confidence > 0.5)):
        ax_dense.text(4 * c + 2, 4 * r + 2, str(classes[r, c]), ha="center", va="center",
                      fontsize=5, color="white")
    for (top, left) in corners:
        # the global average over this digit's 28x28 window of cells: what the classifier says
        window = probabilities[:, top // 4:(top + 28) // 4, left // 4:(left + 28) // 4]
        ax_dense.add_patch(plt.Rectangle((left, top), 28, 28, fill=False, color="yellow",
                                         linewidth=0.8))
        ax_dense.text(left + 1, top + 1, str(int(window.mean(axis=(1, 2)).argmax())),
                      ha="left", va="top", fontsize=8, color="black",
                      bbox={"facecolor": "yellow", "pad": 1, "linewidth": 0})
    ax_dense.set_xlim(0, width)
    ax_dense.set_ylim(height, 0)
    ax_dense.set_title("without global pooling: the predicted class at every location "
                       "(colour; opacity = probability)", fontsize=9)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[k]) for k in range(10)]
    fig.legend(handles, [str(k) for k in range(10)], loc="lower center", ncol=10,
               title="class", fontsize=8, title_fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 0.97))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"dense prediction of a page of test digits: {path}")
    return path


def write_all_figures(model, test_set, out, seed):
    """The filters, the feature maps of the first test digit and the dense demo, into ``out``."""
    image = Normalize([MEAN], [STD])(test_set[np.arange(1)][0][0].astype(np.float32) / 255)
    paths = write_figures(model, image, out, "fcn_mnist", stages(model))
    if paths:
        paths["dense_png"] = write_dense_demo(model, test_set, os.path.join(
            out, "fcn_mnist_dense.png"), seed)
    return paths


def parse_sizes(text):
    sizes = [int(part) for part in text.split(",")]
    return [] if sizes == [0] else sizes


canvas_sizes = argument_type(parse_sizes, lambda sizes: all(n >= 28 for n in sizes),
                             "0, or canvas sizes of at least 28 separated by commas, e.g. "
                             "40,64 (the digits are 28x28)")
train_canvas = argument_type(int, lambda n: n == 0 or n >= 28,
                             "0 or at least 28 (the digits are 28x28)")
fraction = argument_type(float, lambda x: 0.0 <= x <= 1.0, "a number from 0 to 1")


def add_options(parser):
    parser.add_argument("--width", type=positive_int, default=16,
                        help="channels of the first stage")
    parser.add_argument("--canvas", type=canvas_sizes, default=[40, 64],
                        help="canvas sizes for the any-size evaluation after training, "
                             "separated by commas (0 to skip)")
    parser.add_argument("--train-canvas", type=train_canvas, default=64, metavar="MAX",
                        help="train on digits at random offsets on canvases of 28 to MAX "
                             "pixels, the side drawn per batch among 28, 32, ..., MAX (0: on "
                             "the 28x28 images only)")
    parser.add_argument("--canvas-fraction", type=fraction, default=0.3,
                        help="the fraction of training batches placed on canvases")
    parser.add_argument("--shift", type=non_negative_int, default=2,
                        help="random shifts of up to this many pixels of the 28x28 batches")
    parser.add_argument("--freeze-bn", type=fraction, default=0.12, metavar="FRACTION",
                        help="the last FRACTION of the training steps normalise with the "
                             "BatchNorm running statistics, as at test time (0: never)")
    parser.add_argument("--freeze-lr-scale", type=fraction, default=0.1, metavar="SCALE",
                        help="the frozen steps' size relative to the schedule's: their "
                             "gradients are multiplied by SCALE (1: unchanged)")
    parser.add_argument("--calibrate-bn", type=non_negative_int, default=0, metavar="STEPS",
                        help="make the frozen statistics the plain average over the STEPS "
                             "training batches before the freeze (0: BatchNorm's running "
                             "average; with --freeze-bn 0, recalibrate over the last STEPS "
                             "batches without freezing)")
    parser.add_argument("--no-figures", action="store_true",
                        help="no filter, feature-map or dense-prediction pictures")
    parser.add_argument("--figures-only", action="store_true",
                        help="no training: write the figures of the checkpoint in --out")


def training_transform(args):
    """Optional shifts, then a --canvas-fraction of the batches on canvases, then Normalize."""
    steps = [RandomCrop(28, padding=args.shift)] if args.shift else []
    if args.train_canvas > 28 and args.canvas_fraction > 0:
        sizes = sorted(set(range(28, args.train_canvas + 1, 4)) | {args.train_canvas})
        steps.append(RandomCanvas(sizes, p=args.canvas_fraction))
    return Compose(steps + [Normalize([MEAN], [STD])])


def figures_from_checkpoint(args, test_set):
    """--figures-only: the figures of the checkpoint's model, no training."""
    path = checkpoint_path(args)
    if not os.path.isfile(path):
        args.usage_error(f"--figures-only: no checkpoint {path} (train first, or give the "
                         "--out of a trained run)")
    model = build_model(args.width)
    try:
        model.load_state_dict(mg.load(path)["model"])
    except (KeyError, TypeError, ValueError) as e:
        args.usage_error(f"--figures-only: {path} does not fit this model (trained with "
                         f"another --width?): {str(e)[:200]}")
    return write_all_figures(model, test_set, args.out, args.seed)


def run(argv=None):
    args = parse_args(__doc__.splitlines()[0], DEFAULTS, add_options, argv, name="fcn_mnist")
    if args.figures_only and args.no_figures:
        args.usage_error("--figures-only and --no-figures contradict each other")
    train_set = MNIST(args.data_dir, train=True)
    test_set = subset(MNIST(args.data_dir, train=False), args.test_limit, spread=True)
    rank = (args.shard or (0, 1))[0]
    if args.figures_only:
        return figures_from_checkpoint(args, test_set) if rank == 0 else {}
    normalize = Normalize([MEAN], [STD])
    reports = [canvas_accuracy(test_set, size, args.seed, args.shard) for size in args.canvas]

    def after_training(model):
        results = {}
        for report in reports:
            results.update(report(model))
        if not args.no_figures and rank == 0:
            results.update(write_all_figures(model, test_set, args.out, args.seed))
        return results
    steps = args.epochs * (min(len(train_set), args.limit or len(train_set)) // args.batch_size)
    # --freeze-bn 0 with --calibrate-bn: the statistics of the last steps' batches, never frozen
    freeze_after = round(steps * (1 - args.freeze_bn)) \
        if args.freeze_bn or args.calibrate_bn else None
    calibration = min(args.calibrate_bn, freeze_after or 0)
    # fully convolutional up to global pooling: the ONNX model takes any height and width too
    return main(args, lambda: build_model(args.width, freeze_after, calibration,
                                          args.freeze_lr_scale), train_set,
                test_set, training_transform(args), normalize, after_training=after_training,
                onnx_any_size=True)


if __name__ == "__main__":
    run()
