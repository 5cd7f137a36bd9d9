"""Convolution cases (issues 3 and 13): batch 64, float32, NCHW, forward and forward + backward
(every gradient the layer needs, a fixed upstream gradient).

The shapes real networks use besides 3×3 stride 1: strided, dilated, 5×5 (also with the few input
channels of an inception 5×5 branch), 1×1 and 3×3 on the small maps of late stages, depthwise and
grouped, a 7×7 stride-2 stem, and each example network's first layer. A first layer (the
``FIRST_LAYER`` cases) runs as in a network: its input is the data, so backward computes no
input gradient, and it has no bias (BatchNorm follows).
"""
import numpy as np

import minigrad
import minigrad.nn.functional as F

N = 64


def _shape(x, w, stride=1, padding=0, dilation=1, groups=1):
    return {"x_shape": (N,) + x, "w_shape": w, "stride": stride, "padding": padding,
            "dilation": dilation, "groups": groups}


# name: input (C, H, W), weight (O, C/groups, kH, kW), then the conv2d arguments
SHAPES = {
    "conv3x3_s1": _shape((32, 32, 32), (64, 32, 3, 3), padding=1),
    "conv3x3_s2": _shape((32, 32, 32), (64, 32, 3, 3), stride=2, padding=1),
    "conv3x3_d2": _shape((32, 32, 32), (64, 32, 3, 3), padding=2, dilation=2),
    "conv5x5": _shape((16, 32, 32), (32, 16, 5, 5), padding=2),
    "conv1x1": _shape((64, 32, 32), (32, 64, 1, 1)),
    # stride 2 at the widths of an early and of a late stage transition
    "conv3x3_s2_16to32": _shape((16, 32, 32), (32, 16, 3, 3), stride=2, padding=1),
    "conv3x3_s2_128to256": _shape((128, 8, 8), (256, 128, 3, 3), stride=2, padding=1),
    "conv5x5_32to64_16x16": _shape((32, 16, 16), (64, 32, 5, 5), padding=2),
    # an inception 5×5 branch after its 1×1 reduction to few channels: the shapes of the
    # narrower inception_cifar.py network of 2026-11 (16×16, 8 → 16 and 8×8, 16 → 32)
    "inc5x5_8to16_16x16": _shape((8, 16, 16), (16, 8, 5, 5), padding=2),
    "inc5x5_16to32_8x8": _shape((16, 8, 8), (32, 16, 5, 5), padding=2),
    # late stages: small maps, many channels
    "conv1x1_256to64_8x8": _shape((256, 8, 8), (64, 256, 1, 1)),
    "conv3x3_128_8x8": _shape((128, 8, 8), (128, 128, 3, 3), padding=1),
    "conv3x3_256_4x4": _shape((256, 4, 4), (256, 256, 3, 3), padding=1),
    # depthwise (groups = channels) and grouped
    "dw3x3_s1": _shape((64, 32, 32), (64, 1, 3, 3), padding=1, groups=64),
    "dw3x3_s2": _shape((64, 32, 32), (64, 1, 3, 3), stride=2, padding=1, groups=64),
    "grouped3x3_g4": _shape((64, 32, 32), (64, 16, 3, 3), padding=1, groups=4),
    # first layers: a ResNet-style 7×7 stride-2 stem, and the first convolution of
    # examples/fcn_mnist.py (width 16, 28×28 digits) and examples/inception_cifar.py (stem 64)
    "stem7x7_s2": _shape((3, 64, 64), (64, 3, 7, 7), stride=2, padding=3),
    "fcn_first": _shape((1, 28, 28), (16, 1, 3, 3), padding=1),
    "inception_first": _shape((3, 32, 32), (64, 3, 3, 3), padding=1),
}
#: the cases that run as a network's first layer: no input gradient, no bias
FIRST_LAYER = ("stem7x7_s2", "fcn_first", "inception_first")


def _case(torch, name, x_shape, w_shape, stride, padding, dilation, groups, rng):
    first = name in FIRST_LAYER
    x = rng.standard_normal(x_shape, dtype=np.float32)
    w = rng.standard_normal(w_shape, dtype=np.float32) * 0.1
    b = None if first else rng.standard_normal(w_shape[0], dtype=np.float32)
    args = (stride, padding, dilation, groups)
    mx = minigrad.tensor(x, requires_grad=not first)
    mw = minigrad.nn.Parameter(w)
    mb = None if first else minigrad.nn.Parameter(b)
    with minigrad.no_grad():
        y_shape = F.conv2d(mx, mw, mb, *args).shape
    gy = rng.standard_normal(y_shape, dtype=np.float32)
    flops = 2.0 * np.prod(y_shape) * np.prod(w_shape[1:])
    params = [p for p in (mx, mw, mb) if p is not None]

    def mg_forward():
        with minigrad.no_grad():
            F.conv2d(mx, mw, mb, *args)

    def mg_train():
        for p in params:
            p.grad = None
        F.conv2d(mx, mw, mb, *args).backward(gy)

    case = {"name": name, "mg_forward": mg_forward, "mg_train": mg_train,
            "torch_forward": None, "torch_train": None, "flops": flops,
            # forward, grad of weight and (unless a first layer) grad of x: one GEMM each
            "train_flops": (2 if first else 3) * flops,
            "bytes": None}
    if torch is not None:
        tx = torch.from_numpy(x).requires_grad_(not first)
        tw = torch.from_numpy(w).requires_grad_()
        tb = None if first else torch.from_numpy(b).requires_grad_()
        tparams = [p for p in (tx, tw, tb) if p is not None]
        tgy = torch.from_numpy(gy)

        def torch_forward():
            with torch.no_grad():
                torch.nn.functional.conv2d(tx, tw, tb, *args)

        def torch_train():
            for p in tparams:
                p.grad = None
            torch.nn.functional.conv2d(tx, tw, tb, *args).backward(tgy)

        case.update(torch_forward=torch_forward, torch_train=torch_train)
    return case


def cases(torch):
    rng = np.random.default_rng(0)
    return [_case(torch, name, rng=rng, **shape) for name, shape in SHAPES.items()]
