"""Batch-1 inference cases (issue 13): the latency of one image through each example network,
forward only, in eval mode, without a graph (minigrad under ``minigrad.no_grad()``, torch under
``torch.no_grad()``), float32. At batch 1 the per-op fixed costs (argument checks, the op call,
the output tensor) weigh as much as the arithmetic. The rows' ms are ms per image.

The networks are built as in cases_train.py (seed 0) and PyTorch runs their twins
(torch_twin.to_torch: the same layers and weights). The cases have no training pass.
"""
import os
import sys

import numpy as np

import minigrad

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "examples"))
import fcn_mnist  # noqa: E402
import inception_cifar  # noqa: E402
from training import forward_flops  # noqa: E402

from torch_twin import to_torch  # noqa: E402

TITLE = "infer: batch 1, forward only, ms per image"
BATCH = 1


def _case(torch, name, model, input_shape, rng):
    x = rng.standard_normal((BATCH,) + input_shape, dtype=np.float32)
    flops = forward_flops(model, (BATCH,) + input_shape)    # leaves the model in train mode
    model.eval()
    mx = minigrad.tensor(x)

    def mg_forward():
        with minigrad.no_grad():
            model(mx)

    case = {"name": name, "mg_forward": mg_forward, "mg_train": None,
            "torch_forward": None, "torch_train": None,
            "flops": flops, "bytes": None}
    if torch is not None:
        tmodel = to_torch(model, torch).eval()
        tx = torch.from_numpy(x)

        def torch_forward():
            with torch.no_grad():
                tmodel(tx)

        case["torch_forward"] = torch_forward
    return case


def cases(torch):
    rng = np.random.default_rng(0)
    minigrad.manual_seed(0)
    return [
        _case(torch, "fcn_mnist_b1", fcn_mnist.build_model(), (1, 28, 28), rng),
        _case(torch, "inception_cifar_b1", inception_cifar.build_model(), (3, 32, 32), rng),
    ]
