"""Pictures of what a trained network learned: its first layer's filters, and the feature maps of
one image at each stage.

    paths = write_figures(model, image, out_dir, "fcn_mnist",
                          stages=[("stage 1 (14x14)", model[6]), ("stage 2 (7x7)", model[13])])

``write_figures`` writes ``<name>_filters.png`` and ``<name>_features.png`` into ``out_dir`` and
returns their paths (an empty dict, after saying so, when matplotlib is not installed: it is an
optional extra, ``pip install 'minigrad[examples]'``). The stages are any modules of the model,
given as ``(label, module)`` pairs; a forward hook on each catches its output during one forward
pass of ``image`` in eval mode.
"""
import os

import minigrad as mg  # before numpy: see minigrad/__init__.py
import numpy as np
from minigrad import nn


def pyplot(what="figures"):
    """matplotlib's pyplot on the Agg backend (files only), or None when not installed (after
    saying that no ``what`` is written)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"matplotlib is not installed (pip install 'minigrad[examples]'): no {what} "
              "written")
        return None
    return plt


def first_conv(model):
    """The first ``nn.Conv2d`` of ``model`` in registration order (the first layer for the
    examples' networks)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module
    raise ValueError(f"first_conv: {type(model).__name__} has no Conv2d")


def filter_images(weight):
    """``weight`` (out_channels × in_channels × kH × kW) as pictures: RGB filters (3 input
    channels) each scaled to [0, 1] around a mid-grey zero, shape (out, kH, kW, 3); otherwise the
    filters summed over the input channels, shape (out, kH, kW), for a diverging colour map."""
    weight = np.asarray(weight, dtype=np.float64)
    if weight.shape[1] == 3:
        rgb = weight.transpose(0, 2, 3, 1)
        scale = np.abs(rgb).reshape(len(rgb), -1).max(axis=1)
        return 0.5 + 0.5 * rgb / np.maximum(scale, 1e-12)[:, None, None, None]
    return weight.sum(axis=1)


def write_filters(model, path, title=None):
    """A grid of the first convolution's learned filters (``first_conv``), one tile per output
    channel: colour for RGB input, blue-white-red (negative-zero-positive, each filter on its
    own symmetric scale) otherwise. Returns ``path``, or None without matplotlib."""
    plt = pyplot()
    if plt is None:
        return None
    conv = first_conv(model)
    tiles = filter_images(conv.weight.data)
    count = len(tiles)
    cols = int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols, 1.1 * rows + 0.5), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if index >= count:
            ax.axis("off")
            continue
        tile = tiles[index]
        if tile.ndim == 3:
            ax.imshow(tile, interpolation="nearest")
        else:
            limit = max(np.abs(tile).max(), 1e-12)
            ax.imshow(tile, cmap="bwr", vmin=-limit, vmax=limit, interpolation="nearest")
    kh, kw = conv.weight.shape[2:]
    fig.suptitle(title or f"first layer: {count} learned {kh}x{kw} filters "
                 f"({conv.weight.shape[1]} input channel{'s' * (conv.weight.shape[1] > 1)})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def stage_outputs(model, image, stages):
    """The output (numpy, C×H×W) of each stage module for one ``image`` (C×H×W, as the network
    sees it), from a forward pass in eval mode without a graph; hooks removed afterwards and
    the model's training mode restored."""
    outputs = [None] * len(stages)
    handles = []

    def catch(index):
        def hook(module, args, output):
            outputs[index] = np.array(output.data[0])
        return hook

    was_training = model.training
    try:
        for index, (_, module) in enumerate(stages):
            handles.append(module.register_forward_hook(catch(index)))
        model.eval()
        with mg.no_grad():
            model(mg.tensor(np.ascontiguousarray(image[None], dtype=np.float32)))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    missing = [label for (label, _), out in zip(stages, outputs) if out is None]
    if missing:
        raise ValueError(f"stage_outputs: the stage modules {missing} were not called by the "
                         "model's forward")
    return outputs


def display(image):
    """An image (C×H×W, normalised) for imshow: each channel scaled to [0, 1]; H×W×3 for RGB."""
    image = np.asarray(image, dtype=np.float64)
    low = image.min(axis=(1, 2), keepdims=True)
    high = image.max(axis=(1, 2), keepdims=True)
    scaled = (image - low) / np.maximum(high - low, 1e-12)
    return scaled.transpose(1, 2, 0) if len(scaled) == 3 else scaled[0]


def write_feature_maps(model, image, stages, path, channels=8, title=None):
    """One row per stage: the input image, then the ``channels`` most active feature maps
    (largest mean activation) of each stage's output for this ``image``, each on its own grey
    scale, labelled with its channel index. Returns ``path``, or None without matplotlib."""
    plt = pyplot()
    if plt is None:
        return None
    outputs = stage_outputs(model, image, stages)
    cols = max(2, min(channels, max(len(out) for out in outputs)))
    fig, axes = plt.subplots(len(stages) + 1, cols, figsize=(1.3 * cols, 1.45 * (len(stages) + 1)
                                                              + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.axis("off")
    shown = display(image)
    axes[0, 0].imshow(shown, cmap=None if shown.ndim == 3 else "gray")
    axes[0, 0].axis("on")
    axes[0, 0].set_title(f"input {image.shape[1]}x{image.shape[2]}", fontsize=8)
    for row, ((label, _), out) in enumerate(zip(stages, outputs), start=1):
        order = np.argsort(-out.mean(axis=(1, 2)), kind="stable")[:cols]
        for col, channel in enumerate(order):
            ax = axes[row, col]
            ax.axis("on")
            ax.imshow(out[channel], cmap="gray", interpolation="nearest")
            ax.set_title(f"ch {channel}", fontsize=7)
        axes[row, 0].set_ylabel(f"{label}\n{out.shape[0]}x{out.shape[1]}x{out.shape[2]}",
                                fontsize=7)
    fig.suptitle(title or "feature maps of one test image (most active channels per stage)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_figures(model, image, out_dir, name, stages, channels=8):
    """Write ``<name>_filters.png`` (``write_filters``) and ``<name>_features.png``
    (``write_feature_maps`` of ``image``, C×H×W as the network sees it, at ``stages``: a list of
    ``(label, module)``) into ``out_dir``. Returns ``{"filters_png": path, "features_png":
    path}``, or ``{}`` without matplotlib."""
    if pyplot() is None:
        return {}
    os.makedirs(out_dir, exist_ok=True)
    filters = write_filters(model, os.path.join(out_dir, f"{name}_filters.png"))
    features = write_feature_maps(model, image, stages,
                                  os.path.join(out_dir, f"{name}_features.png"), channels)
    print(f"figures: {filters}, {features}")
    return {"filters_png": filters, "features_png": features}
