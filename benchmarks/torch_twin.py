"""The PyTorch twin of a minigrad model: the same layers, in the same order, under the same
names, so that the two state_dicts have the same keys and shapes and weights move either way:

    twin = to_torch(model, torch)                # weights copied from model
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    model.load_state_dict(twin.state_dict())

Used by the training-step benchmark (cases_train.py) and by tests/test_torch_weights.py. It
imports neither minigrad nor torch: modules are recognised by their class name and torch is
passed in, so the benchmark can import torch in a process of its own first.
"""


def to_torch(module, torch):
    """The ``torch.nn.Module`` computing what the minigrad ``module`` computes, its parameters
    and buffers copied. TypeError for a module without a PyTorch translation."""
    twin = _translate(module, torch)
    twin.load_state_dict({key: torch.from_numpy(value)
                          for key, value in module.state_dict().items()})
    return twin


def _translate(module, torch):
    tnn, kind = torch.nn, type(module).__name__
    if "Sequential" in (cls.__name__ for cls in type(module).__mro__):
        # a Sequential subclass (fcn_mnist's) computes the same; its own buffers come along
        twin = tnn.Sequential(*(_translate(m, torch) for m in module.children()))
        for name, value in module._buffers.items():
            twin.register_buffer(name, torch.from_numpy(value.copy()))
        return twin
    if kind == "Conv2d":
        return tnn.Conv2d(module.in_channels, module.out_channels, module.kernel_size,
                          stride=module.stride, padding=module.padding,
                          dilation=module.dilation, groups=module.groups,
                          bias=module.bias is not None)
    if kind in ("BatchNorm1d", "BatchNorm2d"):
        return getattr(tnn, kind)(module.num_features, eps=module.eps, momentum=module.momentum,
                                  affine=module.affine,
                                  track_running_stats=module.track_running_stats)
    if kind == "Linear":
        return tnn.Linear(module.in_features, module.out_features, bias=module.bias is not None)
    if kind == "PReLU":
        return tnn.PReLU(module.weight.size)
    if kind == "MaxPool2d":
        return tnn.MaxPool2d(module.kernel_size, module.stride, module.padding, module.dilation,
                             ceil_mode=module.ceil_mode)
    if kind == "AvgPool2d":
        return tnn.AvgPool2d(module.kernel_size, module.stride, module.padding, module.ceil_mode,
                             module.count_include_pad, module.divisor_override)
    if kind in ("AdaptiveAvgPool2d", "AdaptiveMaxPool2d"):
        return getattr(tnn, kind)(module.output_size)
    if kind == "GlobalAvgPool2d":
        return tnn.Sequential(tnn.AdaptiveAvgPool2d(1), tnn.Flatten())
    if kind == "Flatten":
        return tnn.Flatten(module.start_axis, module.end_axis)
    if kind in ("ReLU", "Sigmoid", "Tanh", "SiLU", "SELU", "Identity"):
        return getattr(tnn, kind)()
    if kind == "ConvNormReLU":
        return _conv_norm_relu(module, torch)
    if kind == "Inception":
        return _inception(module, torch)
    raise TypeError(f"no PyTorch translation for {kind}")


def _conv_norm_relu(module, torch):
    class ConvNormReLU(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = _translate(module.conv, torch)
            self.bn = None if module.bn is None else _translate(module.bn, torch)

        def forward(self, x):
            x = self.conv(x)
            return torch.relu(x if self.bn is None else self.bn(x))

    return ConvNormReLU()


def _inception(module, torch):
    class Inception(torch.nn.Module):
        def __init__(self):
            super().__init__()
            for i in range(1, 5):
                setattr(self, f"branch{i}", _translate(getattr(module, f"branch{i}"), torch))
            self.pool = torch.nn.MaxPool2d(3, stride=1, padding=1)

        def forward(self, x):
            return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x),
                              self.branch4(self.pool(x))], 1)

    return Inception()
