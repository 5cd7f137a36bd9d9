"""Batch-1 inference cases (issue 13): the latency of one image through each example network,
forward only, in eval mode, without a graph (minigrad under ``minigrad.no_grad()``, torch under
``torch.no_grad()``), float32. At batch 1 the per-op fixed costs (argument checks, the op call,
the output tensor) weigh as much as the arithmetic. The rows' ms are ms per image.

The networks are built as in cases_train.py (seed 0) and PyTorch runs their twins
(torch_twin.to_torch: the same layers and weights). The cases have no training pass.
"""
import numpy as np

import minigrad

from cases_train import network_cases    # also puts examples/ on the path
from torch_twin import to_torch
from training import forward_flops

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
    return network_cases(torch, _case, "b1")
