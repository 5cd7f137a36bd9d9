"""Pooling cases (issue 4): float32, forward and forward + backward (a fixed upstream gradient).
``bytes`` is the forward's input + output bytes, for the bandwidth column."""
import numpy as np

import minigrad
import minigrad.nn.functional as F

# name: (x shape, minigrad pool, the same pool in torch given torch.nn.functional)
SHAPES = {
    "maxpool2_s2": ((64, 64, 32, 32), lambda x: F.max_pool2d(x, 2, 2),
                    lambda tf, x: tf.max_pool2d(x, 2, 2)),
    "maxpool3_s2_p1": ((64, 64, 32, 32), lambda x: F.max_pool2d(x, 3, 2, 1),
                       lambda tf, x: tf.max_pool2d(x, 3, 2, 1)),
    "maxpool3_s1_p1": ((64, 64, 32, 32), lambda x: F.max_pool2d(x, 3, 1, 1),
                       lambda tf, x: tf.max_pool2d(x, 3, 1, 1)),
    "avgpool2_s2": ((64, 64, 32, 32), lambda x: F.avg_pool2d(x, 2, 2),
                    lambda tf, x: tf.avg_pool2d(x, 2, 2)),
    "gap": ((64, 256, 8, 8), lambda x: F.global_avg_pool2d(x),
            lambda tf, x: x.mean(dim=(2, 3))),
}


def _case(torch, name, x_shape, mg_pool, torch_pool, rng):
    x = rng.standard_normal(x_shape, dtype=np.float32)
    mx = minigrad.tensor(x, requires_grad=True)
    y_shape = mg_pool(mx.detach()).shape
    gy = rng.standard_normal(y_shape, dtype=np.float32)

    def mg_forward():
        with minigrad.no_grad():
            mg_pool(mx)

    def mg_train():
        mx.grad = None
        mg_pool(mx).backward(gy)

    case = {"name": name, "mg_forward": mg_forward, "mg_train": mg_train,
            "torch_forward": None, "torch_train": None, "flops": None,
            "bytes": 4.0 * (x.size + np.prod(y_shape))}
    if torch is not None:
        tf = torch.nn.functional
        tx = torch.from_numpy(x).requires_grad_()
        tgy = torch.from_numpy(gy)

        def torch_forward():
            with torch.no_grad():
                torch_pool(tf, tx)

        def torch_train():
            tx.grad = None
            torch_pool(tf, tx).backward(tgy)

        case.update(torch_forward=torch_forward, torch_train=torch_train)
    return case


def cases(torch):
    rng = np.random.default_rng(0)
    return [_case(torch, name, *shape, rng) for name, shape in SHAPES.items()]
