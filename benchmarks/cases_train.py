"""Training-step cases (issue 6): one forward + backward + SGD step of each example network at
batch 64, float32, against the identical architecture in PyTorch (built by translating the
minigrad model module by module, torch_twin.to_torch, so both run the same layers with the same
shapes).

The ``mg_forward``/``torch_forward`` rows time inference (eval mode, no graph); ``mg_train`` /
``torch_train`` time the whole training step. images/s = 64 / time.
"""
import os
import sys

import numpy as np

import minigrad
import minigrad.nn.functional as F
from minigrad import optim

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "examples"))
import fcn_mnist  # noqa: E402
import inception_cifar  # noqa: E402
from training import forward_flops  # noqa: E402

from torch_twin import to_torch  # noqa: E402

BATCH = 64


def _case(torch, name, model, input_shape, rng):
    x = rng.standard_normal((BATCH,) + input_shape, dtype=np.float32)
    labels = rng.integers(0, 10, BATCH)
    flops = forward_flops(model, (1,) + input_shape) * BATCH
    sgd = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    mx, mlabels = minigrad.tensor(x), minigrad.tensor(labels)

    def mg_forward():
        model.eval()
        with minigrad.no_grad():
            model(mx)
        model.train()

    def mg_train():
        loss = F.cross_entropy(model(mx), mlabels)
        sgd.zero_grad()
        loss.backward()
        sgd.step()

    case = {"name": name, "mg_forward": mg_forward, "mg_train": mg_train,
            "torch_forward": None, "torch_train": None, "flops": flops,
            "train_flops": 3 * flops, "bytes": None, "images": BATCH}
    if torch is not None:
        tmodel = to_torch(model, torch)
        tsgd = torch.optim.SGD(tmodel.parameters(), lr=0.01, momentum=0.9)
        tx, tlabels = torch.from_numpy(x), torch.from_numpy(labels)

        def torch_forward():
            tmodel.eval()
            with torch.no_grad():
                tmodel(tx)
            tmodel.train()

        def torch_train():
            loss = torch.nn.functional.cross_entropy(tmodel(tx), tlabels)
            tsgd.zero_grad()
            loss.backward()
            tsgd.step()

        case.update(torch_forward=torch_forward, torch_train=torch_train)
    return case


#: The example networks: (name, builder, input shape (C, H, W)).
NETWORKS = (("fcn_mnist", fcn_mnist.build_model, (1, 28, 28)),
            ("inception_cifar", inception_cifar.build_model, (3, 32, 32)))
#: The same architectures at half and double width (training steps only): the channel counts
#: move work between the convolution algorithms and between arithmetic and per-op costs.
OTHER_WIDTHS = (
    ("fcn_mnist_half", lambda: fcn_mnist.build_model(width=8), (1, 28, 28)),
    ("fcn_mnist_double", lambda: fcn_mnist.build_model(width=32), (1, 28, 28)),
    ("inception_cifar_half", lambda: inception_cifar.build_model(width=0.5), (3, 32, 32)),
    ("inception_cifar_double", lambda: inception_cifar.build_model(width=2.0), (3, 32, 32)))


def network_cases(torch, make_case, suffix, networks=NETWORKS):
    """``make_case(torch, name, model, input_shape, rng)`` for each of ``networks``, named
    ``<network>_<suffix>``, built in order from seed 0 (shared by the train and infer suites)."""
    rng = np.random.default_rng(0)
    minigrad.manual_seed(0)
    return [make_case(torch, f"{name}_{suffix}", build(), shape, rng)
            for name, build, shape in networks]


def cases(torch):
    return network_cases(torch, _case, "step", NETWORKS + OTHER_WIDTHS)
