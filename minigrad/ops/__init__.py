"""Differentiable ops, one module per family; each op is a ``Function`` subclass (forward and
backward on numpy arrays) plus the functional wrapper users call."""
