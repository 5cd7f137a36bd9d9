"""The training loop both example networks share: options, epochs with a progress bar, evaluation,
checkpoints with --resume, and a PNG of the training curves.

An example supplies a ``build`` function (model, and the train/test datasets and transforms) and
calls :func:`main`.

With --distributed, under ``mpiexec -n P``, the same loop trains data-parallel
(``minigrad.distributed``): each rank trains on its shard of every global batch of --batch-size
images, gradients are averaged over the ranks, the test set is evaluated in shards and the
counts summed; rank 0 alone prints and writes the checkpoint, plot and JSON, and reads the
checkpoint for --resume (the others receive it from rank 0).
"""
import argparse
import importlib.util
import json
import math
import os
import sys
import time

import minigrad as mg  # before numpy: see minigrad/__init__.py
import numpy as np
import minigrad.nn.functional as F
from minigrad import distributed as dist
from minigrad import optim
from minigrad.data import ArrayDataset, DataLoader
from minigrad.threads import MAX_THREADS
from figures import pyplot

try:                                   # optional extra: a progress bar
    from tqdm import tqdm
except ImportError:                    # pragma: no cover - depends on the environment
    tqdm = None


def argument_type(convert, accept, requirement):
    """An argparse ``type=``: ``convert(text)`` when that succeeds and ``accept`` holds for the
    value, else a usage error "argument --x: must be <requirement>, got '<text>'" (status 2)."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {text!r}")
        return value
    return parse


positive_int = argument_type(int, lambda n: n >= 1, "a positive integer")
non_negative_int = argument_type(int, lambda n: n >= 0, "a non-negative integer")
positive_number = argument_type(float, lambda x: 0.0 < x < math.inf, "a positive number")
non_negative_number = argument_type(float, lambda x: 0.0 <= x < math.inf,
                                    "a non-negative number")
unit_interval = argument_type(float, lambda x: 0.0 <= x <= 1.0, "a number from 0 to 1")
thread_count = argument_type(int, lambda n: 1 <= n <= MAX_THREADS,
                             f"an integer from 1 to {MAX_THREADS}")
CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "epoch", "seconds", "history")


def parse_args(description, defaults, extra=None, argv=None, *, name):
    """The options every example shares (plus those ``extra(parser)`` adds), checked: a bad value
    is a usage error (usage line, message naming the option, exit status 2) before any data is
    read. ``name`` is the run's name, or a function of the parsed options giving it: the
    checkpoint is ``<--out>/<name>.npz``, --out defaulting to ``runs/<name>``.

    Adds to the options: ``name``; ``checkpoint``, the checkpoint's contents with --resume (else
    None); ``usage_error(message)``, for the checks that need the data (see :func:`main`)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--epochs", type=non_negative_int, default=defaults["epochs"],
                        help="epochs in all (0 with --resume: train no more, e.g. to "
                             "--export-onnx a checkpoint)")
    parser.add_argument("--batch-size", type=positive_int, default=defaults["batch_size"])
    parser.add_argument("--lr", type=non_negative_number, default=defaults["lr"],
                        help="peak learning rate of the one-cycle schedule")
    parser.add_argument("--weight-decay", type=non_negative_number,
                        default=defaults["weight_decay"])
    parser.add_argument("--label-smoothing", type=unit_interval,
                        default=defaults.get("label_smoothing", 0.0),
                        help="mix the training targets with the uniform distribution (0 to 1)")
    flip = defaults.get("test_flip", False)
    parser.add_argument("--test-flip", action=argparse.BooleanOptionalAction, default=flip,
                        help="after the last epoch, also report the accuracy of the logits "
                             "averaged over each test image and its mirror (test-time "
                             "augmentation; default: "
                             f"{'on' if flip else 'off'})")
    shift = defaults.get("test_shift", 0)
    parser.add_argument("--test-shift", type=non_negative_int, default=shift, metavar="PIXELS",
                        help="after the last epoch, also report the accuracy of the logits "
                             "summed over the test views (each image, and its mirror with "
                             "--test-flip) and each of them moved by (PIXELS, PIXELS) and "
                             "(-PIXELS, -PIXELS), borders reflected (test-time augmentation; "
                             f"default: {shift}, 0 is off)")
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="train on the first N training images only (at least one batch: "
                             "incomplete batches are dropped)")
    parser.add_argument("--test-limit", type=positive_int, default=None,
                        help="evaluate on N test images only, evenly spaced through the test "
                             "set (whose files may be sorted by class)")
    parser.add_argument("--data-dir", default=None,
                        help="dataset root (default: $MINIGRAD_DATA, else ~/.cache/minigrad)")
    parser.add_argument("--threads", type=thread_count, default=None,
                        help="OpenMP threads for the kernels (default: all cores)")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--out", default=None,
                        help="folder for checkpoint and plot (default: runs/<name of the run>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the checkpoint in --out (its learning rate and "
                             "weight decay are kept). With the --epochs, --batch-size and --limit "
                             "it was started with, the run goes on exactly as if uninterrupted; "
                             "with a larger --epochs (or another number of batches per epoch), "
                             "the one-cycle schedule is rebuilt for the new total and "
                             "fast-forwarded to the epochs already trained, so the remaining "
                             "epochs get the learning rates of an uninterrupted run of --epochs "
                             "(a warm restart when the checkpoint's schedule had finished)")
    parser.add_argument("--stop-after", type=positive_int, default=None, metavar="EPOCH",
                        help="stop after this epoch (e.g. to split a long run; --resume "
                             "continues it)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--export-onnx", metavar="FILE", default=None,
                        help="after training, write the model as ONNX to FILE and check it in "
                             "ONNX Runtime when installed (pip install 'minigrad[onnx]'); with "
                             "--resume and --epochs 0, export the checkpoint's model")
    parser.add_argument("--distributed", action="store_true",
                        help="data-parallel over the processes of mpiexec -n P: each trains on "
                             "--batch-size / P images of every batch (--threads, for the "
                             "kernels and BLAS, defaults to this machine's cores / its "
                             "processes)")
    parser.add_argument("--sync-bn", action="store_true",
                        help="with --distributed: BatchNorm statistics over the global batch "
                             "(nn.SyncBatchNorm) instead of each process's part")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    if args.epochs == 0 and not (args.resume and args.export_onnx):
        parser.error("argument --epochs: must be a positive integer, got '0' (0 trains "
                     "nothing: it is for exporting a checkpoint, --resume --epochs 0 "
                     "--export-onnx FILE)")
    if args.export_onnx and importlib.util.find_spec("onnx") is None:
        parser.error("--export-onnx needs the onnx package: pip install 'minigrad[onnx]' (or "
                     "pip install onnx onnxruntime)")
    if args.sync_bn and not args.distributed:
        parser.error("--sync-bn synchronises BatchNorm across processes: it needs --distributed")
    args.shard = join_processes(args) if args.distributed else None
    if args.shard and args.batch_size % args.shard[1]:
        parser.error(f"--batch-size {args.batch_size} does not split evenly over the "
                     f"{args.shard[1]} processes (--distributed)")
    if args.limit is not None and args.limit < args.batch_size:
        parser.error(f"--limit {args.limit} is smaller than --batch-size {args.batch_size}: not "
                     "one full batch to train on (incomplete batches are dropped); give a "
                     "larger --limit or a smaller --batch-size")
    args.name = name(args) if callable(name) else name
    if args.out is None:
        args.out = os.path.join("runs", args.name)
    args.checkpoint = on_rank_zero(lambda: read_checkpoint(parser, args), args.shard) \
        if args.resume else None
    args.usage_error = parser.error
    return args


def join_processes(args):
    """Join the job (``minigrad.distributed``) and return this process's shard, (rank, number
    of processes). Only rank 0 keeps its output. Each process's kernels and BLAS run on
    --threads threads, by default an equal part of this machine's cores."""
    dist.init()
    if dist.rank() != 0:
        sys.stdout = open(os.devnull, "w")      # the progress bar and reports: rank 0's alone
    if args.threads is None:
        args.threads = max(1, (os.cpu_count() or 1) // dist.local_world_size())
    mg.runtime.set_blas_threads(args.threads)    # numpy's GEMMs too, not one thread per core
    return dist.rank(), dist.world_size()


def on_rank_zero(read, shard):
    """``read()``'s result; with a ``shard`` (--distributed), run on rank 0 alone and sent to
    the other ranks (they may not see rank 0's files), and a usage error there (SystemExit)
    ends every rank with its status."""
    if shard is None:
        return read()
    result = status = None
    if shard[0] == 0:
        try:
            result = read()
        except SystemExit as e:
            status = e.code
    status, result = dist.broadcast((status, result))
    if status is not None:
        sys.exit(status)
    return result


def checkpoint_path(args):
    """Where the run named ``args.name`` keeps its checkpoint."""
    return os.path.join(args.out, f"{args.name}.npz")


def read_checkpoint(parser, args):
    """The contents of the checkpoint --resume continues, after checking that it exists, is one
    of these checkpoints, and leaves epochs to train."""
    path = checkpoint_path(args)
    if not os.path.isfile(path):
        parser.error(f"--resume: no checkpoint {path} (train without --resume first, or give "
                     "the --out of the run to continue)")
    try:
        state = mg.load(path)
    except (OSError, ValueError) as e:
        parser.error(f"--resume: cannot read the checkpoint: {e}")
    if not isinstance(state, dict) or any(key not in state for key in CHECKPOINT_KEYS):
        parser.error(f"--resume: {path} is not a checkpoint of this example (it needs "
                     f"{', '.join(CHECKPOINT_KEYS)})")
    done = int(state["epoch"])
    if 0 < args.epochs <= done:
        parser.error(f"--resume: {path} has already trained {done} epochs; give --epochs "
                     f"larger than {done} to train more")
    return state


def count_parameters(model):
    return sum(p.size for p in model.parameters())


def forward_flops(model, input_shape):
    """Forward FLOPs (2 × multiply-adds) of the convolutions and linear layers for one input of
    ``input_shape``, from ``minigrad.summary``'s count of one pass's ops: also the
    convolutions a module runs without a submodule of its own (``nn.Inception`` runs its three
    1×1 convolutions as one)."""
    macs = mg.summary(model, input_shape).macs_by_op
    return 2 * (macs.get("Conv2d", 0) + macs.get("Linear", 0))


def export_onnx(model, path, images, any_size):
    """Write ``model`` as ONNX to ``path`` (``minigrad.onnx.export``: batch size symbolic, and
    height and width with ``any_size``) from the example batch ``images``; when onnxruntime is
    installed, run the file on them and report how far its logits are from minigrad's."""
    mg.onnx.export(model, images, path, dynamic_size=any_size)
    try:
        import onnxruntime
    except ImportError:
        print(f"ONNX model written to {path} (onnxruntime is not installed: not checked)")
        return path
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    model.eval()
    with mg.no_grad():
        expected = model(mg.tensor(images)).data
    model.train()
    difference = np.abs(session.run(None, {"input": images})[0] - expected).max()
    print(f"ONNX model written to {path}; on {len(images)} test images ONNX Runtime's logits "
          f"differ from minigrad's by at most {difference:.2g}")
    return path


def translate(images, dy, dx):
    """``images`` (N, C, H, W) moved by (dy, dx) pixels, the uncovered border filled by
    reflection, as the training crops pad."""
    pad = max(abs(dy), abs(dx))
    height, width = images.shape[-2:]
    padded = np.pad(images, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="reflect")
    return np.ascontiguousarray(padded[..., pad - dy:pad - dy + height,
                                       pad - dx:pad - dx + width])


def evaluate(model, loader, flip=False, shift=0):
    """Accuracy and mean loss of ``model`` in eval mode, without building a graph; over all
    ranks' shards when ``loader`` is sharded (every rank must call it then).

    Test-time augmentation: with ``flip`` also the accuracy of the logits summed over each
    image and its horizontal mirror; with ``shift`` (pixels) also that of the logits summed
    over those views and each of them moved by (shift, shift) and (-shift, -shift) (reflected
    borders). Then returns (accuracy, loss, augmented), ``augmented`` holding
    ``test_acc_flip`` and ``test_acc_shift`` as asked for."""
    model.eval()
    correct, total, loss_sum = 0, 0, 0.0
    augmented = dict.fromkeys((["test_acc_flip"] if flip else [])
                              + (["test_acc_shift"] if shift else []), 0)
    moves = [(shift, shift), (-shift, -shift)] if shift else []

    def logits_of(images):
        return model(mg.tensor(np.ascontiguousarray(images))).data

    with mg.no_grad():
        for images, labels in loader:
            logits = model(mg.tensor(images))
            loss_sum += F.cross_entropy(logits, mg.tensor(labels), reduction="sum").item()
            correct += int((logits.data.argmax(axis=1) == labels).sum())
            total += len(labels)
            summed = logits.data
            if flip:
                images = np.concatenate([images, images[..., ::-1]])
                summed = summed + logits_of(images[len(labels):])
                augmented["test_acc_flip"] += int((summed.argmax(axis=1) == labels).sum())
            for dy, dx in moves:
                moved = logits_of(translate(images, dy, dx))
                summed = summed + moved.reshape(-1, len(labels), moved.shape[1]).sum(axis=0)
            if shift:
                augmented["test_acc_shift"] += int((summed.argmax(axis=1) == labels).sum())
    model.train()
    keys = list(augmented)
    if loader.world_size > 1:
        correct, total, loss_sum, *counts = dist.all_reduce(
            np.array([correct, total, loss_sum] + [augmented[k] for k in keys]))
        augmented = dict(zip(keys, counts))
    if not keys:
        return correct / total, loss_sum / total
    return correct / total, loss_sum / total, {k: augmented[k] / total for k in keys}


class Progress:
    """A progress bar per epoch (tqdm when installed, else a line every ~10 %)."""

    def __init__(self, total, epoch, epochs, enabled):
        self.total, self.done, self.start = total, 0, time.perf_counter()
        self.label = f"epoch {epoch}/{epochs}"
        self.bar = tqdm(total=total, desc=self.label, unit="img", leave=True,
                        file=sys.stdout) if (tqdm and enabled) else None
        self.next_print = total / 10

    def update(self, count, loss, accuracy):
        self.done += count
        rate = self.done / max(time.perf_counter() - self.start, 1e-9)
        if self.bar is not None:
            self.bar.update(count)
            self.bar.set_postfix(loss=f"{loss:.4f}", acc=f"{accuracy:.4f}",
                                 img_s=f"{rate:.0f}")
        elif self.done >= self.next_print or self.done == self.total:
            self.next_print += self.total / 10
            print(f"{self.label} {self.done}/{self.total} loss {loss:.4f} acc {accuracy:.4f} "
                  f"{rate:.0f} img/s", flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def plot_curves(history, path):
    plt = pyplot("plot")
    if plt is None:
        return None
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    ax_loss.plot(epochs, [h["test_loss"] for h in history], "o-", label="test")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("cross-entropy")
    ax_loss.legend()
    ax_acc.plot(epochs, [h["train_acc"] for h in history], "o-", label="train")
    ax_acc.plot(epochs, [h["test_acc"] for h in history], "o-", label="test")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def subset(dataset, limit, spread=False):
    """The first ``limit`` images of ``dataset`` (all of it when limit is None); with
    ``spread``, ``limit`` images evenly spaced through it instead, for a file sorted by class
    (CIFAR-10's test batch is), whose first images are a few classes only."""
    if limit is None or limit >= len(dataset):
        return dataset
    keep = (np.arange(limit) * len(dataset)) // limit if spread else slice(limit)
    return ArrayDataset(dataset.images[keep], dataset.labels[keep], dataset.classes)


#: The one-cycle schedule's options besides its peak and length.
ONE_CYCLE = {"pct_start": 0.25, "cycle_momentum": False}


def resume_schedule(scheduler, saved, optimizer, done_steps, total_steps, args):
    """The schedule to continue with after ``done_steps`` steps: the checkpoint's (``saved``)
    when it was built for this run's ``total_steps``, so the run goes on exactly as if
    uninterrupted; otherwise (more --epochs, or another --batch-size or --limit) a one-cycle
    schedule over ``total_steps`` from the optimiser's restored learning rates, fast-forwarded to
    ``done_steps``: the rest of the run gets the learning rates of an uninterrupted run of this
    length. Says so in one line."""
    if saved["total_steps"] == total_steps and saved["last_epoch"] == done_steps:
        scheduler.load_state_dict(saved)
        return scheduler
    # With last_epoch set, OneCycleLR keeps the groups' initial, peak and final rates.
    scheduler = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=total_steps,
                                              last_epoch=done_steps - 1, **ONE_CYCLE)
    print(f"--resume: the checkpoint's one-cycle schedule was for {saved['total_steps']} steps, "
          f"this run has {total_steps} ({args.epochs} epochs of {total_steps // args.epochs}): "
          f"schedule rebuilt for {total_steps} steps and fast-forwarded to step {done_steps}, "
          f"lr {scheduler.get_last_lr()[0]:.3g}")
    return scheduler


def sample_images(test_set, transform, count=8):
    """The first ``count`` test images as the network sees them (float32, transformed)."""
    images, _ = next(iter(DataLoader(subset(test_set, count), count, transform=transform)))
    return np.ascontiguousarray(images, dtype=np.float32)


def export_checkpoint(args, model, test_set, test_transform, any_size):
    """--resume --epochs 0 --export-onnx FILE: the checkpoint's model, exported; no training."""
    checkpoint = checkpoint_path(args)
    try:
        model.load_state_dict(args.checkpoint["model"])
    except (KeyError, TypeError, ValueError) as e:
        args.usage_error(f"--resume: {checkpoint} does not fit this model (trained with other "
                         f"options?): {str(e)[:200]}")
    print(f"exporting the model of {checkpoint} (epoch {int(args.checkpoint['epoch'])}), no "
          "training")
    path = None
    if (args.shard or (0, 1))[0] == 0:
        path = export_onnx(model, args.export_onnx, sample_images(test_set, test_transform),
                           any_size)
    return {"name": args.name, "epochs": int(args.checkpoint["epoch"]), "onnx": path}


def main(args, build_model, train_set, test_set, train_transform, test_transform,
         after_training=None, onnx_any_size=False):
    """Train ``build_model()`` on ``train_set``; evaluate on ``test_set`` after every epoch.

    ``args`` comes from :func:`parse_args`. Prints the model's summary (``minigrad.summary``)
    first. Uses SGD with Nesterov momentum and a one-cycle schedule stepped per batch. Writes
    ``<name>.npz`` (checkpoint: model, optimiser, scheduler, epoch, history),
    ``<name>_curves.png`` and ``<name>_results.json`` into ``args.out``, and with --export-onnx
    the model as ONNX (height and width symbolic when ``onnx_any_size``). Returns the results.
    Too few images for one batch, or a --resume checkpoint that does not fit the model, is a
    usage error (exit status 2). With --distributed (``args.shard``) see the module docstring.
    """
    name = args.name
    rank, processes = args.shard or (0, 1)
    if args.threads:
        mg.set_num_threads(args.threads)
    mg.manual_seed(args.seed)
    train_set = subset(train_set, args.limit)
    test_set = subset(test_set, args.test_limit, spread=True)
    if len(train_set) < args.batch_size:
        args.usage_error(f"--batch-size {args.batch_size} is larger than the {len(train_set)} "
                         "training images: not one full batch to train on (incomplete batches "
                         "are dropped); give a smaller --batch-size")
    if rank == 0:
        os.makedirs(args.out, exist_ok=True)

    model = build_model()
    print(mg.summary(model, (1,) + train_set.images.shape[1:]).table(max_depth=2))
    if args.epochs == 0:           # --resume --epochs 0 --export-onnx: the checkpoint's model
        return export_checkpoint(args, model, test_set, test_transform, onnx_any_size)
    if args.sync_bn and args.shard:
        model = mg.nn.SyncBatchNorm.convert_sync_batchnorm(model)

    def train_loader_for(epoch):
        # Seeded per epoch, so a resumed run draws the same batches and augmentations; each
        # rank takes its block of every global batch.
        return DataLoader(train_set, args.batch_size // processes, shuffle=True, drop_last=True,
                          seed=[args.seed, epoch], transform=train_transform, shard=args.shard)

    steps_per_epoch = len(train_loader_for(1))
    total_steps = args.epochs * steps_per_epoch
    test_loader = DataLoader(test_set, 500, transform=test_transform, shard=args.shard)
    decay, no_decay = [], []
    for p in model.parameters():
        # No weight decay on BatchNorm scales and shifts or on biases, the usual practice.
        (no_decay if p.ndim == 1 else decay).append(p)
    optimizer = optim.SGD([{"params": decay, "weight_decay": args.weight_decay},
                           {"params": no_decay, "weight_decay": 0.0}],
                          lr=args.lr, momentum=0.9, nesterov=True)
    scheduler = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr,
                                              total_steps=total_steps, **ONE_CYCLE)
    checkpoint = checkpoint_path(args)
    # what each test-time accuracy of ``evaluate`` sums, for the printed lines
    views = {"test_acc_flip": "flips",
             "test_acc_shift": "flips and shifts" if args.test_flip else "shifts"}
    history, first_epoch, trained_seconds, step_losses = [], 1, 0.0, []
    if args.resume:
        state = args.checkpoint
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        except (KeyError, TypeError, ValueError) as e:
            message = str(e) if len(str(e)) <= 200 else str(e)[:200] + "..."
            args.usage_error(f"--resume: {checkpoint} does not fit this model (trained "
                             f"with other options?): {message}")
        history = json.loads(str(state["history"]))
        first_epoch = int(state["epoch"]) + 1
        trained_seconds = float(state["seconds"])
        print(f"resumed from {checkpoint} after epoch {first_epoch - 1}")
        scheduler = resume_schedule(scheduler, state["scheduler"], optimizer,
                                    (first_epoch - 1) * steps_per_epoch, total_steps, args)
    # Trains through the wrapper; ``model`` itself is saved, so checkpoints load anywhere.
    trained = dist.DistributedDataParallel(model) if args.shard else model

    print(f"{name}: {count_parameters(model):,} parameters, "
          f"{len(train_set):,} training and {len(test_set):,} test images, "
          f"{mg.get_num_threads()} threads" + (f" in each of {processes} processes"
                                               if args.shard else ""))
    for epoch in range(first_epoch, args.epochs + 1):
        start = time.perf_counter()
        train_loader = train_loader_for(epoch)
        progress = Progress(steps_per_epoch * args.batch_size, epoch, args.epochs,
                            not args.no_progress and rank == 0)
        loss_sum = correct = seen = 0
        for images, labels in train_loader:
            logits = trained(mg.tensor(images))
            loss = F.cross_entropy(logits, mg.tensor(labels),
                                   label_smoothing=args.label_smoothing)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            step_losses.append(loss.item())
            loss_sum += step_losses[-1] * len(labels)
            correct += int((logits.data.argmax(axis=1) == labels).sum())
            seen += len(labels)
            # rank 0's running loss and accuracy; every rank's images
            progress.update(len(labels) * processes, loss_sum / seen, correct / seen)
        progress.close()
        if args.shard:
            loss_sum, correct, seen = dist.all_reduce(np.array([loss_sum, correct, seen]))
        seconds = time.perf_counter() - start
        trained_seconds += seconds
        # the extra views multiply the evaluation: only after the run's last epoch
        last = epoch == args.epochs or (args.stop_after is not None and epoch >= args.stop_after)
        test_acc, test_loss, *augmented = evaluate(model, test_loader,
                                                   flip=args.test_flip and last,
                                                   shift=args.test_shift if last else 0)
        augmented = augmented[0] if augmented else {}
        history.append({"epoch": epoch, "train_loss": loss_sum / seen,
                        "train_acc": correct / seen, "test_loss": test_loss,
                        "test_acc": test_acc, "seconds": seconds,
                        "images_per_second": seen / seconds, **augmented})
        extra = "; ".join(f"with {views[key]} {value:.4f}" for key, value in augmented.items())
        print(f"epoch {epoch}: train loss {loss_sum / seen:.4f} acc {correct / seen:.4f} | "
              f"test loss {test_loss:.4f} acc {test_acc:.4f}"
              + (f" ({extra})" if extra else "")
              + f" | {seconds:.1f} s, {seen / seconds:.0f} img/s", flush=True)
        if rank == 0:
            mg.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "epoch": epoch,
                     "seconds": trained_seconds, "history": json.dumps(history)},
                    checkpoint)
        if args.stop_after is not None and epoch >= args.stop_after:
            break

    # The headline accuracy is that of all the test-time views asked for (the others are kept).
    final = history[-1] if history else {}
    accuracy_key = next((k for k in ("test_acc_shift", "test_acc_flip") if k in final),
                        "test_acc")
    results = {"name": name, "test_accuracy": final.get(accuracy_key),
               "test_accuracy_no_flip": final.get("test_acc"),
               "test_accuracy_flip": final.get("test_acc_flip"),
               "test_flip": "test_acc_flip" in final,
               "test_shift": args.test_shift if "test_acc_shift" in final else 0,
               "training_seconds": trained_seconds, "epochs": len(history),
               "images_per_second": float(np.mean([h["images_per_second"] for h in history]))
               if history else None,
               "parameters": count_parameters(model), "processes": processes,
               "history": history}
    if after_training is not None:
        results.update(after_training(model))
    if args.export_onnx and rank == 0:
        results["onnx"] = export_onnx(model, args.export_onnx,
                                      sample_images(test_set, test_transform), onnx_any_size)
    plot = None
    if rank == 0:
        plot = plot_curves(history, os.path.join(args.out, f"{name}_curves.png"))
        with open(os.path.join(args.out, f"{name}_results.json"), "w") as f:
            json.dump(results, f, indent=2)
    results["step_losses"] = step_losses      # this run's per-step losses (not saved)
    print(f"{name}: test accuracy {results['test_accuracy']:.4f}"
          + (f" (test-time {views[accuracy_key]})" if accuracy_key in views else "")
          + f" after {len(history)} epochs, "
          f"{trained_seconds / 60:.1f} min of training, "
          f"{results['images_per_second']:.0f} img/s; checkpoint {checkpoint}"
          + (f", curves {plot}" if plot else ""))
    return results
