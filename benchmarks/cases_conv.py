"""Convolution cases (issue 3): batch 64, float32, forward and forward + backward (all three
gradients, a fixed upstream gradient)."""
import numpy as np

import minigrad
import minigrad.nn.functional as F

N = 64

# name: (x shape, weight shape, stride, padding, dilation)
SHAPES = {
    "conv3x3_s1": ((N, 32, 32, 32), (64, 32, 3, 3), 1, 1, 1),
    "conv3x3_s2": ((N, 32, 32, 32), (64, 32, 3, 3), 2, 1, 1),
    "conv3x3_d2": ((N, 32, 32, 32), (64, 32, 3, 3), 1, 2, 2),
    "conv5x5": ((N, 16, 32, 32), (32, 16, 5, 5), 1, 2, 1),
    "conv1x1": ((N, 64, 32, 32), (32, 64, 1, 1), 1, 0, 1),
}


def _case(torch, name, x_shape, w_shape, stride, padding, dilation, rng):
    x = rng.standard_normal(x_shape, dtype=np.float32)
    w = rng.standard_normal(w_shape, dtype=np.float32) * 0.1
    b = rng.standard_normal(w_shape[0], dtype=np.float32)
    args = (stride, padding, dilation)
    mx = minigrad.tensor(x, requires_grad=True)
    mw = minigrad.nn.Parameter(w)
    mb = minigrad.nn.Parameter(b)
    y_shape = F.conv2d(mx.detach(), mw.detach(), mb.detach(), *args).shape
    gy = rng.standard_normal(y_shape, dtype=np.float32)
    flops = 2.0 * np.prod(y_shape) * np.prod(w_shape[1:])

    def mg_forward():
        with minigrad.no_grad():
            F.conv2d(mx, mw, mb, *args)

    def mg_train():
        mx.grad = mw.grad = mb.grad = None
        F.conv2d(mx, mw, mb, *args).backward(gy)

    case = {"name": name, "mg_forward": mg_forward, "mg_train": mg_train,
            "torch_forward": None, "torch_train": None, "flops": flops,
            "train_flops": 3 * flops,       # forward, grad of x, grad of weight: one GEMM each
            "bytes": None}
    if torch is not None:
        tx = torch.from_numpy(x).requires_grad_()
        tw = torch.from_numpy(w).requires_grad_()
        tb = torch.from_numpy(b).requires_grad_()
        tgy = torch.from_numpy(gy)

        def torch_forward():
            with torch.no_grad():
                torch.nn.functional.conv2d(tx, tw, tb, *args)

        def torch_train():
            tx.grad = tw.grad = tb.grad = None
            torch.nn.functional.conv2d(tx, tw, tb, *args).backward(tgy)

        case.update(torch_forward=torch_forward, torch_train=torch_train)
    return case


def cases(torch):
    rng = np.random.default_rng(0)
    return [_case(torch, name, *shape, rng) for name, shape in SHAPES.items()]
