"""Pooling study: one fully convolutional network, its two downsampling layers swapped among the
pooling kinds of the lecture, each trained with the same budget over several seeds.

The lecture's claims put to the test: max pooling passes on the winner of each window only;
average pooling "does not consistently perform better than max pooling"; there are many
alternatives (Lp, stochastic, fractional max, the generalised mixed, gated and tree poolings);
and strided or atrous (dilated) convolutions now often replace pooling.

The network is an FCN like ``fcn_mnist.py``'s: two stages of two 3×3 conv-BN-ReLU layers, each
followed by a downsampling layer (28 → 14 → 7 on MNIST), a third stage of one conv-BN-ReLU, a 1×1
convolution to one map per class and global average pooling. The downsampling layers
(``--variants``, all by default):

    max         nn.MaxPool2d(2)
    avg         nn.AvgPool2d(2)
    lp2, lp3    nn.LPPool2d(p, 2), p = 2 and 3
    stochastic  nn.StochasticPool2d(2): samples a cell per window in training, the
                probability-weighted average in evaluation
    fractional  nn.FractionalMaxPool2d(3, output_ratio=0.5): overlapping 3×3 regions at
                pseudo-random starts, redrawn at every batch, fixed in evaluation. (A 2×2 kernel
                at ratio 1/2 would give start spacing exactly 2: plain max pooling.)
    mixed       nn.MixedPool2d(2): α·max + (1 − α)·avg, α learned per layer
    gated       nn.GatedPool2d(2): the mix set per window by a learned gate
    tree        nn.TreePool2d(2): a depth-2 tree of learned pooling filters and gates
    strided     a 3×3 stride-2 conv-BN-ReLU with as many channels
    atrous      no downsampling: the second stage's convolutions dilated 2, the third's 4,
                so the receptive field stays about that of the pooled network (21 against 24
                pixels) while every map keeps the full resolution

Spatial pyramid pooling (``nn.SpatialPyramidPool2d``) is not among them: it replaces the global
pooling head (fixed-length features from any input size), not a 2× downsampling, and this net's
head is already size-independent.

Every variant gets the same budget: the same first ``--limit`` training images, ``--epochs``
epochs in the same batch order for a given seed, SGD with Nesterov momentum on a one-cycle
schedule (``training.py``'s recipe; no weight decay on the pooling layers' own parameters,
which would pull them towards one particular pooling), and seeds 0 … ``--seeds`` − 1. For a
given seed every variant starts from the same initial convolutions where the architectures
agree, so differences between variants are paired.

Why the defaults (MNIST, the first 4,000 training images, 2 epochs in batches of 64, width 16,
3 seeds, all 10,000 test images): the whole study, 11 variants × 3 seeds with evaluation, must
finish in 30 minutes on 2 cores, and an atrous run takes four to five times a pooled one (every
map at full resolution), a strided one two to three times. With all 60,000 images the network
passes 99 % (fcn_mnist.py) and differences of a tenth of a point drown in seed noise; on a few
thousand it is still learning (about 96 % for max pooling), so the pooling's inductive bias and
how fast each variant learns show in the accuracy. Batches of 64 rather than fcn_mnist's 128 give twice the steps for
the same images (in batches of 128, max pooling reaches only about 89 % on 3,000 images).
CIFAR-10 is not the default: on this budget (twice MNIST's cost per image) the network reaches
only about 37 % (max 37.6 %, avg 36.7 %, lp2 37.0 % for seed 0); it needs a longer run.
``--dataset fashion-mnist`` (downloaded on first use) is a harder test at MNIST's cost.

Output, in ``--out`` (default runs/pooling_study): a table per variant (test accuracy mean ±
standard deviation over the seeds, mean training and evaluation time, parameters,
multiply-adds per image from ``minigrad.summary``: the fixed poolings count zero, as in
torchinfo, gated and tree pooling their learned filters) printed and saved with every run's results in ``pooling_study.json`` (written after
each run, so an interrupted study keeps what it finished), and ``pooling_study.png``: accuracy
with error bars and every seed's point, and training time.

    python examples/pooling_study.py                      # the default study (≤ 30 min, 2 cores)
    python examples/pooling_study.py --variants max,avg,strided --seeds 5
    python examples/pooling_study.py --dataset cifar10 --limit 10000 --epochs 3
    python examples/pooling_study.py --limit 256 --epochs 1 --seeds 1 --test-limit 200
"""
import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import minigrad as mg  # noqa: E402  (before numpy: see minigrad/__init__.py)
import numpy as np  # noqa: E402
import minigrad.nn.functional as F  # noqa: E402
from minigrad import nn, optim  # noqa: E402
from minigrad.data import CIFAR10, MNIST, DataLoader, FashionMNIST, Normalize  # noqa: E402
from figures import pyplot  # noqa: E402
from training import (ONE_CYCLE, Progress, evaluate,  # noqa: E402
                      non_negative_number, positive_int, positive_number, subset, thread_count)

#: name → (dataset class, per-channel mean and std of its training images, pixels / 255)
DATASETS = {
    "mnist": (MNIST, (0.1307,), (0.3081,)),
    "fashion-mnist": (FashionMNIST, (0.2860,), (0.3530,)),
    "cifar10": (CIFAR10, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}
DEFAULTS = {"dataset": "mnist", "limit": 4000, "test_limit": None, "epochs": 2, "seeds": 3,
            "width": 16, "batch_size": 64, "lr": 0.2, "weight_decay": 5e-4}


def pooling_layer(variant, channels):
    """The downsampling layer of ``variant`` (halving height and width) after a stage of
    ``channels`` channels; None for atrous, which does not downsample."""
    if variant == "max":
        return nn.MaxPool2d(2)
    if variant == "avg":
        return nn.AvgPool2d(2)
    if variant in ("lp2", "lp3"):
        return nn.LPPool2d(int(variant[2]), 2)
    if variant == "stochastic":
        return nn.StochasticPool2d(2)          # from minigrad's generator: seeded per run
    if variant == "fractional":
        return nn.FractionalMaxPool2d(3, output_ratio=0.5)
    if variant == "mixed":
        return nn.MixedPool2d(2)
    if variant == "gated":
        return nn.GatedPool2d(2)
    if variant == "tree":
        return nn.TreePool2d(2)
    if variant == "strided":
        return nn.Sequential(*conv_bn_relu(channels, channels, stride=2))
    if variant == "atrous":
        return None
    raise ValueError(f"pooling_layer: unknown variant {variant!r}, expected one of {VARIANTS}")


VARIANTS = ("max", "avg", "lp2", "lp3", "stochastic", "fractional", "mixed", "gated", "tree",
            "strided", "atrous")


def conv_bn_relu(cin, cout, stride=1, dilation=1):
    return [nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation,
                      bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


def build_model(variant, in_channels=1, width=16, classes=10):
    """An FCN like fcn_mnist.py's (its last stage one 3×3 convolution to 4·width channels),
    with ``variant``'s downsampling (see the module docstring)."""
    w = width
    atrous = variant == "atrous"
    layers = [*conv_bn_relu(in_channels, w), *conv_bn_relu(w, w)]
    if not atrous:
        layers.append(pooling_layer(variant, w))
    dilation = 2 if atrous else 1              # a 3×3 conv dilated 2 sees what it would see
    layers += [*conv_bn_relu(w, 2 * w, dilation=dilation),          # after a 2× downsampling
               *conv_bn_relu(2 * w, 2 * w, dilation=dilation)]
    if not atrous:
        layers.append(pooling_layer(variant, 2 * w))
    layers += [*conv_bn_relu(2 * w, 4 * w, dilation=4 if atrous else 1),
               nn.Conv2d(4 * w, classes, 1),   # 1×1 convolution: one map per class
               nn.GlobalAvgPool2d()]
    return nn.Sequential(*layers)


def pooling_parameters(model):
    """The parameters of the downsampling layers (learned pooling: α, gates, tree filters)."""
    pools = [m for m in model.modules()
             if type(m).__name__.endswith("Pool2d") and m is not model]
    return [p for m in pools for p in m.parameters()]


def make_optimizer(model, args, total_steps):
    """training.py's recipe: SGD with Nesterov momentum, one-cycle schedule stepped per batch,
    weight decay on the convolution weights only (not on BatchNorm, biases, or the learned
    pooling parameters)."""
    pooling = {id(p) for p in pooling_parameters(model)}
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim <= 1 or id(p) in pooling else decay).append(p)
    optimizer = optim.SGD([{"params": decay, "weight_decay": args.weight_decay},
                           {"params": no_decay, "weight_decay": 0.0}],
                          lr=args.lr, momentum=0.9, nesterov=True)
    scheduler = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr,
                                              total_steps=total_steps, **ONE_CYCLE)
    return optimizer, scheduler


def train_and_evaluate(variant, seed, train_set, test_loader, transform, args, label):
    """One run: a fresh ``variant`` network seeded with ``seed``, trained for ``args.epochs``
    epochs, then evaluated. Returns its results (a run whose loss stops being finite is
    stopped and reported as diverged, without an accuracy)."""
    mg.manual_seed(seed)
    model = build_model(variant, train_set.images.shape[1], args.width)
    steps_per_epoch = len(train_set) // args.batch_size
    optimizer, scheduler = make_optimizer(model, args, args.epochs * steps_per_epoch)
    loss_sum = correct = seen = 0
    diverged = False
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        loader = DataLoader(train_set, args.batch_size, shuffle=True, drop_last=True,
                            seed=[seed, epoch], transform=transform)
        progress = Progress(steps_per_epoch * args.batch_size, epoch, args.epochs, True) \
            if not args.no_progress else None
        if progress is not None:             # which run the bar belongs to
            progress.label = f"{label} epoch {epoch}/{args.epochs}"
            if progress.bar is not None:
                progress.bar.set_description(progress.label)
        loss_sum = correct = seen = 0
        for images, labels in loader:
            logits = model(mg.tensor(images))
            loss = F.cross_entropy(logits, mg.tensor(labels))
            if not math.isfinite(loss.item()):
                diverged = True
                break
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            loss_sum += loss.item() * len(labels)
            correct += int((logits.data.argmax(axis=1) == labels).sum())
            seen += len(labels)
            if progress is not None:
                progress.update(len(labels), loss_sum / seen, correct / seen)
        if progress is not None:
            progress.close()
        if diverged:
            break
    training_seconds = time.perf_counter() - start
    start = time.perf_counter()
    test_accuracy = test_loss = None
    if not diverged:
        test_accuracy, test_loss = evaluate(model, test_loader)
    return {"variant": variant, "seed": seed, "test_accuracy": test_accuracy,
            "test_loss": test_loss, "diverged": diverged,
            "train_loss": loss_sum / seen if seen else None,
            "train_accuracy": correct / seen if seen else None,
            "training_seconds": training_seconds,
            "evaluation_seconds": time.perf_counter() - start,
            "learned_pooling": [np.asarray(p.data).ravel().tolist()
                                for p in pooling_parameters(model) if p.size <= 16]}


def mean_std(values):
    """Mean and sample standard deviation (None for fewer than two values)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return None, None
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else None


def summarise(variant, runs, cost):
    """One row of the table: ``variant``'s ``runs`` aggregated, with its ``cost``
    (parameters, multiply-adds)."""
    finished = [r for r in runs if not r["diverged"]]
    accuracy, accuracy_std = mean_std([r["test_accuracy"] for r in finished])
    training, _ = mean_std([r["training_seconds"] for r in runs])
    evaluation, _ = mean_std([r["evaluation_seconds"] for r in runs])
    return {"variant": variant, "runs": len(runs), "diverged": len(runs) - len(finished),
            "test_accuracy_mean": accuracy, "test_accuracy_std": accuracy_std,
            "test_accuracies": [r["test_accuracy"] for r in runs],
            "training_seconds_mean": training, "evaluation_seconds_mean": evaluation, **cost}


def format_table(rows):
    header = (f"{'variant':<11} {'test accuracy':>17} {'train s':>8} {'eval s':>7} "
              f"{'params':>8} {'MMACs/img':>10}")
    lines = [header, "-" * len(header)]
    for row in rows:
        if row["test_accuracy_mean"] is None:
            accuracy = "diverged"
        else:
            std = row["test_accuracy_std"]
            accuracy = f"{100 * row['test_accuracy_mean']:.2f}" + (
                f" ± {100 * std:.2f} %" if std is not None else " %")
            if row["diverged"]:
                accuracy += f" ({row['diverged']} diverged)"
        lines.append(f"{row['variant']:<11} {accuracy:>17} {row['training_seconds_mean']:>8.1f} "
                     f"{row['evaluation_seconds_mean']:>7.1f} {row['parameters']:>8,} "
                     f"{row['macs'] / 1e6:>10.2f}")
    return "\n".join(lines)


def plot_study(rows, runs, title, path):
    """Accuracy (mean ± std, every seed a dot) and mean training time per variant, as a PNG."""
    plt = pyplot("chart")
    if plt is None:
        return None
    names = [row["variant"] for row in rows]
    x = np.arange(len(names))
    fig, (ax_acc, ax_time) = plt.subplots(1, 2, figsize=(12, 4.5))
    means = [100 * row["test_accuracy_mean"] if row["test_accuracy_mean"] is not None
             else np.nan for row in rows]
    stds = [100 * (row["test_accuracy_std"] or 0.0) for row in rows]
    ax_acc.errorbar(x, means, yerr=stds, fmt="o", color="C0", capsize=4, label="mean ± std")
    for i, name in enumerate(names):
        points = [100 * r["test_accuracy"] for r in runs
                  if r["variant"] == name and r["test_accuracy"] is not None]
        ax_acc.plot([i + 0.15] * len(points), points, ".", color="C1", alpha=0.7,
                    label="one seed" if i == 0 else None)
    ax_acc.set_xticks(x)
    ax_acc.set_xticklabels(names, rotation=45, ha="right")
    ax_acc.set_ylabel("test accuracy (%)")
    ax_acc.set_title(title)
    ax_acc.legend()
    ax_acc.grid(axis="y", alpha=0.3)
    ax_time.bar(x, [row["training_seconds_mean"] for row in rows], color="C2")
    ax_time.set_xticks(x)
    ax_time.set_xticklabels(names, rotation=45, ha="right")
    ax_time.set_ylabel("training time per run (s)")
    ax_time.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def variant_list(text):
    """--variants: comma-separated names of VARIANTS, in the order given, without repeats."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in VARIANTS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"must be a comma-separated list of {', '.join(VARIANTS)}, got {text!r}")
    return list(dict.fromkeys(names))


def parse_args(argv=None):
    d = DEFAULTS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=variant_list, default=list(VARIANTS),
                        help=f"comma-separated downsampling variants (default: all of "
                             f"{','.join(VARIANTS)})")
    parser.add_argument("--dataset", choices=tuple(DATASETS), default=d["dataset"])
    parser.add_argument("--seeds", type=positive_int, default=d["seeds"],
                        help="runs per variant, seeds 0 … N−1")
    parser.add_argument("--epochs", type=positive_int, default=d["epochs"])
    parser.add_argument("--limit", type=positive_int, default=d["limit"],
                        help="train on the first N training images (incomplete batches are "
                             "dropped)")
    parser.add_argument("--test-limit", type=positive_int, default=d["test_limit"],
                        help="evaluate on N test images only, evenly spaced through the test set "
                             "(default: all)")
    parser.add_argument("--width", type=positive_int, default=d["width"],
                        help="channels of the first stage (then 2× and 4×)")
    parser.add_argument("--batch-size", type=positive_int, default=d["batch_size"])
    parser.add_argument("--lr", type=positive_number, default=d["lr"],
                        help="peak learning rate of the one-cycle schedule")
    parser.add_argument("--weight-decay", type=non_negative_number, default=d["weight_decay"])
    parser.add_argument("--data-dir", default=None,
                        help="dataset root (default: $MINIGRAD_DATA, else ~/.cache/minigrad)")
    parser.add_argument("--out", default=os.path.join("runs", "pooling_study"),
                        help="folder for the JSON and the chart")
    parser.add_argument("--threads", type=thread_count, default=None,
                        help="OpenMP threads for the kernels (default: all cores)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.limit < args.batch_size:
        parser.error(f"--limit {args.limit} is smaller than --batch-size {args.batch_size}: not "
                     "one full batch to train on (incomplete batches are dropped)")
    args.usage_error = parser.error
    return args


def run(argv=None):
    args = parse_args(argv)
    variants = args.variants
    if args.threads:
        mg.set_num_threads(args.threads)
    dataset, mean, std = DATASETS[args.dataset]
    train_set = subset(dataset(args.data_dir, train=True), args.limit)
    test_set = subset(dataset(args.data_dir, train=False), args.test_limit, spread=True)
    if len(train_set) < args.batch_size:
        args.usage_error(f"--batch-size {args.batch_size} is larger than the {len(train_set)} "
                         "training images")
    normalize = Normalize(mean, std)
    test_loader = DataLoader(test_set, 500, transform=normalize)
    os.makedirs(args.out, exist_ok=True)
    json_path = os.path.join(args.out, "pooling_study.json")
    input_shape = (1,) + train_set.images.shape[1:]
    settings = {k: getattr(args, k) for k in ("dataset", "epochs", "limit", "test_limit",
                                               "width", "batch_size", "lr", "weight_decay")}
    settings.update(seeds=list(range(args.seeds)), variants=variants,
                    train_images=len(train_set), test_images=len(test_set),
                    threads=mg.get_num_threads())
    print(f"pooling study on {args.dataset}: {len(variants)} variants × {args.seeds} seeds, "
          f"{len(train_set):,} training images × {args.epochs} epochs, {len(test_set):,} test "
          f"images, width {args.width}, {mg.get_num_threads()} threads")

    costs, runs, rows = {}, [], []
    study_start = time.perf_counter()
    total = len(variants) * args.seeds
    for variant in variants:
        s = mg.summary(build_model(variant, input_shape[1], args.width), input_shape)
        costs[variant] = {"parameters": s.total_params, "macs": s.total_macs}
        for seed in range(args.seeds):
            label = f"[{len(runs) + 1}/{total}] {variant} seed {seed}"
            result = train_and_evaluate(variant, seed, train_set, test_loader, normalize, args,
                                        label)
            runs.append(result)
            accuracy = ("diverged" if result["diverged"]
                        else f"test accuracy {result['test_accuracy']:.4f}")
            print(f"{label}: {accuracy}, training {result['training_seconds']:.1f} s, "
                  f"evaluation {result['evaluation_seconds']:.1f} s", flush=True)
            rows = [summarise(v, [r for r in runs if r["variant"] == v], costs[v])
                    for v in variants if v in costs]
            with open(json_path, "w") as f:     # after every run: an interruption keeps them
                json.dump({"settings": settings, "variants": rows, "runs": runs,
                           "seconds": time.perf_counter() - study_start}, f, indent=2)
    seconds = time.perf_counter() - study_start
    print(f"\n{format_table(rows)}\n")
    title = (f"{args.dataset}, {len(train_set):,} images × {args.epochs} epochs, "
             f"{args.seeds} seed{'s' if args.seeds > 1 else ''}")
    plot = plot_study(rows, runs, title, os.path.join(args.out, "pooling_study.png"))
    print(f"pooling study: {seconds / 60:.1f} min; results {json_path}"
          + (f", chart {plot}" if plot else ""))
    return {"settings": settings, "variants": rows, "runs": runs, "seconds": seconds,
            "json": json_path, "plot": plot}


if __name__ == "__main__":
    run()
