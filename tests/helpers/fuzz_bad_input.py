"""Bad-input fuzzer: every public functional op, cat/stack/split and every Tensor method, called
with one argument replaced by something invalid (wrong dtype, shape, type, range, NaN/Inf,
non-contiguous or read-only arrays, absurdly large sizes).

The contract checked: a call either works or raises ValueError/TypeError/IndexError/RuntimeError
whose message names the argument that was spoiled. A segfault, a hang, any other exception
(AttributeError, OverflowError, MemoryError, ...) or a message that does not name the argument
is a finding.

Cases run in a worker subprocess, one after another; the worker reports each case's outcome
before starting the next, so when it dies (segfault, abort) the case that killed it is the first
unreported one. The parent then records it as a crash and starts a new worker after it.
Case ``i`` of seed ``s`` is generated from ``default_rng([s, i])`` alone, so any finding can be
replayed on its own:

    python tests/helpers/fuzz_bad_input.py --cases 2000          # run, print the summary
    python tests/helpers/fuzz_bad_input.py --replay SEED INDEX   # re-run one case here

tests/test_no_crash.py imports it as ``helpers.fuzz_bad_input`` and runs it in CI.
"""
import argparse
import collections
import inspect
import json
import os
import re
import select
import subprocess
import sys
import time
import warnings

import numpy as np

ALLOWED_ERRORS = (ValueError, TypeError, IndexError, RuntimeError)
#: each case runs its call on one of these thread counts and its backward on another
THREAD_COUNTS = (1, 2, 3, 8, 16)
CASE_TIMEOUT_S = 20.0
WORKER_MEMORY_LIMIT = 4 << 30   # address space of a worker: "huge" must never really allocate
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# -- bad values, by the kind of argument they replace --------------------------------------------

def _float_array(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def bad_arrays(rng, like_shape):
    """Invalid or awkward array-likes for an argument whose valid shape is ``like_shape``."""
    shape = tuple(like_shape) or (1,)
    good = _float_array(rng, shape)
    nan = good.copy()
    if nan.size:
        nan.flat[rng.integers(nan.size)] = np.nan
        nan.flat[rng.integers(nan.size)] = np.inf
    read_only = good.copy()
    read_only.flags.writeable = False
    # A zero-stride view: non-contiguous, read-only, 4 MB once made contiguous. (A view whose
    # copy would take gigabytes tests numpy's allocator, not minigrad, so "huge" is tried
    # through the arguments instead: kernels, strides, output sizes no input can satisfy.)
    big_view = np.broadcast_to(np.float32(1.0), (1, 1, 1024, 1024))
    values = [
        good.astype(np.int32), good.astype(np.int64), good > 0, good.astype(np.float16),
        good.astype(np.complex64), np.empty(shape, dtype=object), good.astype(np.uint8),
        nan, np.full(shape, np.inf, np.float32), np.full(shape, -np.inf, np.float64),
        np.full(shape, np.nan, np.float64), read_only,
        _float_array(rng, shape[::-1]).T if len(shape) > 1 else good[::-1],  # non-contiguous
        _float_array(rng, shape[:-1] + (2 * shape[-1] + 1,))[..., ::2],
        np.zeros((0,) + shape[1:], np.float32), np.zeros(shape[:1] + (0,) + shape[2:], np.float32),
        np.zeros(shape[:-1] + (0,), np.float32),
        np.zeros((), np.float32), _float_array(rng, (3,)), _float_array(rng, (2, 3)),
        _float_array(rng, (1, 2, 3, 4, 5)), _float_array(rng, (1, 1, 1, 1)),
        _float_array(rng, (2, 3, 1, 1)), _float_array(rng, (1, 2, 64, 1)),
        big_view, big_view[..., :1, :], np.float32(np.nan), 1.5, 3, True, None, "tensor",
        [1.0, 2.0], [[1, 2], [3]], object(), np.array(["a", "b"]),
    ]
    return values


INTS = [0, -1, -7, 2 ** 31, 2 ** 31 - 1, 2 ** 40, 2 ** 63, -(2 ** 63), 2 ** 100, 1.5, 2.0,
        float("nan"), float("inf"), True, False, None, "3", b"3", (1,), (1, 2, 3), (0, 1), (-1, 2),
        (2 ** 40, 1), (1, 2 ** 31), [1.5, 1], np.int64(2 ** 40), np.float64(2.0), np.int8(-3),
        np.array([1, 2]), object(), {}, complex(1, 1)]
FLOATS = [float("nan"), float("inf"), -float("inf"), -1.0, 0.0, -0.0, 1e308, 1e-320, 2.0, -1e30,
          "0.5", None, True, complex(1, 0), np.array([0.1, 0.2]), (0.5,), object(), np.float16(0.5),
          np.float64(np.nan), 10 ** 400]
STRINGS = ["bogus", "", "MEAN", None, 3, b"mean", ("mean",), object(), "max ", "same", "valid"]
BOOLS = ["yes", 2, None, np.array([True, False]), 1.5, object(), np.bool_(True), 0, "False"]
AXES = [5, -5, 4, -100, 2 ** 63, 2 ** 31, 1.0, None, "1", (0, 1), [1], np.int64(-1), True, object()]
SEEDS = [-1, 1.5, "seed", object(), 2 ** 70, np.random.RandomState(0), True, [1, 2], -(2 ** 70)]
SECTIONS = [[1, 2, 3], [-1, 5], [2 ** 40], [], "ab", 0, -1, 2 ** 62, [1.5, 2.5], None, [0, 0],
            (2 ** 63,), np.array([1, 1]), [None], 1.5, object(), [True, False, True]]
INT_SCALARS = [v for v in INTS if not isinstance(v, (tuple, list))]


class Arg:
    """One argument of an op: its name, how to make a valid value, which bad values to try."""

    def __init__(self, name, valid, kind):
        self.name, self.valid, self.kind = name, valid, kind


def _bad_values(arg, rng, valid_value):
    if arg.kind == "array":
        shape = np.shape(valid_value.data if hasattr(valid_value, "data") else valid_value)
        return bad_arrays(rng, shape)
    if arg.kind == "arrays":        # a sequence of tensors (cat, stack)
        t = valid_value[0]
        return [[], [t, _float_array(rng, (7, 1))], [t, np.ones(np.shape(t.data), np.int64)],
                "abc", [None], t, [t, None], [t, "x"], [np.zeros(())] * 2, (t.data,) * 2,
                [t, t.data.astype(np.float64)], iter([t]), [t] * 2 + bad_arrays(rng, t.shape)[:1]]
    return {"int": INTS, "int_scalar": INT_SCALARS, "float": FLOATS, "str": STRINGS,
            "bool": BOOLS, "axis": AXES, "seed": SEEDS, "sections": SECTIONS}[arg.kind]


# -- op templates: a valid call, and which arguments may be spoiled -------------------------------

def _templates():
    """{op name: (callable, [Arg, ...])}. Every public functional op must be here (the test
    checks it), so a new op cannot silently escape the fuzzer."""
    import minigrad
    import minigrad.nn.functional as F
    from minigrad.ops import pooling as P

    def t(*shape, dtype=np.float32, grad=True, low=None):
        def make(rng):
            a = rng.standard_normal(shape).astype(dtype)
            if low is not None:
                a = np.abs(a) + low
            return minigrad.tensor(a, requires_grad=grad and np.dtype(dtype).kind == "f")
        return make

    def const(value):
        return lambda rng: value

    def labels(n, classes, *rest):
        return lambda rng: rng.integers(0, classes, (n,) + rest)

    x4 = t(2, 3, 6, 6)
    ops = {
        "conv2d": (F.conv2d, [Arg("x", x4, "array"), Arg("weight", t(4, 3, 3, 3), "array"),
                              Arg("bias", t(4), "array"), Arg("stride", const(1), "int"),
                              Arg("padding", const(1), "int"), Arg("dilation", const(1), "int"),
                              Arg("groups", const(1), "int_scalar")]),
        "max_pool2d": (P.max_pool2d, [Arg("x", x4, "array"), Arg("kernel_size", const(3), "int"),
                                      Arg("stride", const(2), "int"), Arg("padding", const(1), "int"),
                                      Arg("dilation", const(1), "int"),
                                      Arg("ceil_mode", const(True), "bool"),
                                      Arg("return_indices", const(False), "bool")]),
        "avg_pool2d": (P.avg_pool2d, [Arg("x", x4, "array"), Arg("kernel_size", const(3), "int"),
                                      Arg("stride", const(2), "int"), Arg("padding", const(1), "int"),
                                      Arg("ceil_mode", const(True), "bool"),
                                      Arg("count_include_pad", const(False), "bool"),
                                      Arg("divisor_override", const(None), "int_scalar")]),
        "adaptive_avg_pool2d": (P.adaptive_avg_pool2d, [Arg("x", x4, "array"),
                                                        Arg("output_size", const((4, 5)), "int")]),
        "adaptive_max_pool2d": (P.adaptive_max_pool2d, [Arg("x", x4, "array"),
                                                        Arg("output_size", const(4), "int"),
                                                        Arg("return_indices", const(True), "bool")]),
        "global_avg_pool2d": (P.global_avg_pool2d, [Arg("x", x4, "array"),
                                                    Arg("keepdims", const(True), "bool")]),
        "global_max_pool2d": (P.global_max_pool2d, [Arg("x", x4, "array"),
                                                    Arg("keepdims", const(False), "bool")]),
        "lp_pool2d": (F.lp_pool2d, [Arg("x", x4, "array"), Arg("p", const(2.0), "float"),
                                    Arg("kernel_size", const(2), "int"), Arg("stride", const(None), "int"),
                                    Arg("ceil_mode", const(True), "bool")]),
        "stochastic_pool2d": (F.stochastic_pool2d, [
            Arg("x", t(2, 3, 6, 6, low=0.0), "array"), Arg("kernel_size", const(2), "int"),
            Arg("stride", const(2), "int"), Arg("training", const(True), "bool"),
            Arg("seed", const(3), "seed")]),
        "fractional_max_pool2d": (F.fractional_max_pool2d, [
            Arg("x", x4, "array"), Arg("kernel_size", const(2), "int"),
            Arg("output_size", const((3, 4)), "int"), Arg("overlapping", const(True), "bool"),
            Arg("seed", const(1), "seed")]),
        "spatial_pyramid_pool2d": (F.spatial_pyramid_pool2d, [
            Arg("x", x4, "array"), Arg("levels", const((1, 2)), "sections"),
            Arg("mode", const("max"), "str")]),
        "mixed_pool2d": (F.mixed_pool2d, [Arg("x", x4, "array"), Arg("alpha", t(3), "array"),
                                          Arg("kernel_size", const(2), "int"),
                                          Arg("stride", const(None), "int"),
                                          Arg("padding", const(1), "int")]),
        "gated_pool2d": (F.gated_pool2d, [Arg("x", x4, "array"), Arg("gate_weight", t(2, 2), "array"),
                                          Arg("kernel_size", const(2), "int"),
                                          Arg("stride", const(1), "int")]),
        "tree_pool2d": (F.tree_pool2d, [Arg("x", x4, "array"), Arg("leaf_weight", t(2, 2, 2), "array"),
                                        Arg("gate_weight", t(1, 2, 2), "array"),
                                        Arg("kernel_size", const(2), "int"),
                                        Arg("stride", const(1), "int")]),
        "batch_norm": (F.batch_norm, [Arg("input", x4, "array"),
                                      Arg("running_mean", t(3, grad=False), "array"),
                                      Arg("running_var", t(3, grad=False, low=0.5), "array"),
                                      Arg("weight", t(3), "array"), Arg("bias", t(3), "array"),
                                      Arg("training", const(True), "bool"),
                                      Arg("momentum", const(0.1), "float"),
                                      Arg("eps", const(1e-5), "float")]),
        "linear": (F.linear, [Arg("input", t(4, 5), "array"), Arg("weight", t(3, 5), "array"),
                              Arg("bias", t(3), "array")]),
        "dropout": (F.dropout, [Arg("input", x4, "array"), Arg("p", const(0.5), "float"),
                                Arg("training", const(True), "bool"), Arg("rng", const(0), "seed"),
                                Arg("mask", const(None), "array")]),
        "cross_entropy": (F.cross_entropy, [Arg("logits", t(4, 5), "array"),
                                            Arg("target", labels(4, 5), "array"),
                                            Arg("label_smoothing", const(0.1), "float"),
                                            Arg("reduction", const("mean"), "str")]),
        "nll_loss": (F.nll_loss, [Arg("input", t(4, 5, 2), "array"),
                                  Arg("target", labels(4, 5, 2), "array"),
                                  Arg("reduction", const("sum"), "str")]),
        "mse_loss": (F.mse_loss, [Arg("input", t(4, 5), "array"), Arg("target", t(4, 5), "array"),
                                  Arg("reduction", const("none"), "str")]),
        "prelu": (F.prelu, [Arg("x", x4, "array"), Arg("weight", t(3), "array")]),
        "swish": (F.swish, [Arg("x", x4, "array"), Arg("beta", t(1), "array")]),
        "leaky_relu": (F.leaky_relu, [Arg("x", x4, "array"), Arg("negative_slope", const(0.1), "float")]),
        "elu": (F.elu, [Arg("x", x4, "array"), Arg("alpha", const(1.0), "float")]),
        "gelu": (F.gelu, [Arg("x", x4, "array"), Arg("approximate", const("tanh"), "str")]),
        "softmax": (F.softmax, [Arg("x", x4, "array"), Arg("axis", const(1), "axis")]),
        "log_softmax": (F.log_softmax, [Arg("x", x4, "array"), Arg("axis", const(-1), "axis")]),
        "maxout": (F.maxout, [Arg("x", t(2, 6, 3, 3), "array"), Arg("pieces", const(3), "int_scalar"),
                              Arg("axis", const(1), "axis")]),
        "cat": (minigrad.cat, [Arg("tensors", lambda rng: [x4(rng), x4(rng)], "arrays"),
                               Arg("axis", const(1), "axis")]),
        "stack": (minigrad.stack, [Arg("tensors", lambda rng: [x4(rng), x4(rng)], "arrays"),
                                   Arg("axis", const(0), "axis")]),
        "split": (minigrad.split, [Arg("x", x4, "array"),
                                   Arg("split_size_or_sections", const([1, 2]), "sections"),
                                   Arg("axis", const(1), "axis")]),
    }
    for name in ("relu", "selu", "sigmoid", "silu", "tanh"):
        ops[name] = (getattr(F, name), [Arg("x", x4, "array")])

    # Tensor methods and operators, called unbound: Tensor.method(self, ...).
    T = minigrad.Tensor
    me = Arg("self", x4, "array")
    for name in ("exp", "log", "sqrt", "abs", "numpy", "detach", "zero_grad", "item"):
        ops[f"Tensor.{name}"] = (getattr(T, name), [me])
    ops["Tensor.T"] = (lambda s: s.T, [me])
    for name in ("sum", "mean", "max"):
        ops[f"Tensor.{name}"] = (getattr(T, name), [me, Arg("axis", const((2, 3)), "axis"),
                                                    Arg("keepdims", const(True), "bool")])
    ops["Tensor.clip"] = (T.clip, [me, Arg("min", const(-0.5), "float"), Arg("max", const(0.5), "float")])
    ops["Tensor.reshape"] = (T.reshape, [me, Arg("shape", const((6, -1)), "int")])
    ops["Tensor.transpose"] = (T.transpose, [me, Arg("axes", const((0, 2, 1, 3)), "int")])
    ops["Tensor.permute"] = (T.permute, [me, Arg("axes", const((3, 2, 1, 0)), "int")])
    ops["Tensor.flatten"] = (T.flatten, [me, Arg("start_axis", const(1), "axis"),
                                         Arg("end_axis", const(-1), "axis")])
    ops["Tensor.astype"] = (T.astype, [me, Arg("dtype", const(np.float64), "str")])
    ops["Tensor.requires_grad_"] = (T.requires_grad_, [me, Arg("flag", const(True), "bool")])
    ops["Tensor.register_post_accumulate_grad_hook"] = (
        T.register_post_accumulate_grad_hook, [me, Arg("hook", const(lambda t: None), "str")])
    ops["Tensor.backward"] = (lambda s, grad: (s * 1.0).backward(grad),
                              [me, Arg("grad", t(2, 3, 6, 6, grad=False), "array")])
    ops["Tensor.__getitem__"] = (T.__getitem__, [me, Arg("index", const((0, slice(1, 3))), "int")])
    for name in ("__add__", "__sub__", "__mul__", "__truediv__", "__radd__", "__rsub__",
                 "__rmul__", "__rtruediv__", "__lt__", "__le__", "__gt__", "__ge__"):
        ops[f"Tensor.{name}"] = (getattr(T, name), [me, Arg("other", t(1, 3, 1, 6), "array")])
    ops["Tensor.__pow__"] = (T.__pow__, [me, Arg("exponent", const(2.0), "float")])
    ops["Tensor.__neg__"] = (T.__neg__, [me])
    ops["Tensor.__matmul__"] = (T.__matmul__, [Arg("self", t(4, 5), "array"),
                                               Arg("other", t(5, 3), "array")])
    ops["Tensor.__rmatmul__"] = (T.__rmatmul__, [Arg("self", t(4, 5), "array"),
                                                 Arg("other", t(3, 4), "array")])
    ops["Tensor.__init__"] = (T, [Arg("data", x4, "array"), Arg("requires_grad", const(False), "bool"),
                                  Arg("dtype", const(None), "str")])
    for name, (fn, args) in ops.items():
        if args[0].name == "self":   # a user calls methods on Tensors: wrap whatever "self" is
            ops[name] = ((lambda f: lambda s, *a, **k: f(
                s if isinstance(s, T) else minigrad.tensor(s), *a, **k))(fn), args)
    return ops


#: Extra words a message may use for an argument (e.g. split's message says "sections").
ALIASES = {"x": ("x", "input"), "split_size_or_sections": ("split_size", "sections"), "self": ("tensor", "shape",
           "shapes", "dtype", "input", "x", "operands"), "tensors": ("tensor", "tensors", "shapes"),
           "other": ("shape", "shapes", "dtype", "operands"), "data": ("data", "dtype", "tensor"),
           "axes": ("axes", "axis"), "shape": ("shape", "reshape"), "index": ("index",)}


def public_functional_ops():
    """Names that must have a template: minigrad.nn.functional's public callables, the
    functional pooling ops, cat/stack/split and the Tensor methods and operators."""
    import minigrad
    import minigrad.nn.functional as F
    from minigrad.ops import pooling as P

    names = {n for n, v in vars(F).items() if callable(v) and not n.startswith("_")
             and not inspect.isclass(v) and not inspect.ismodule(v)}
    names |= {n for n in P.__all__} if hasattr(P, "__all__") else {
        n for n, v in vars(P).items() if inspect.isfunction(v) and not n.startswith("_")
        and v.__module__ == P.__name__}
    names |= {"cat", "stack", "split"}
    skip = {"data", "grad", "shape", "dtype", "ndim", "size", "is_leaf", "requires_grad"}
    names |= {f"Tensor.{n}" for n in dir(minigrad.Tensor) if not n.startswith("_") and n not in skip}
    return names


# -- one case ------------------------------------------------------------------------------------

def make_case(seed, index, templates):
    """(op name, spoiled argument name, args, kwargs, description), from (seed, index) only."""
    rng = np.random.default_rng([seed, index])
    names = sorted(templates)
    op = names[rng.integers(len(names))]
    fn, args = templates[op]
    values = [a.valid(rng) for a in args]
    target = int(rng.integers(len(args)))
    bad = _bad_values(args[target], rng, values[target])
    values[target] = bad[rng.integers(len(bad))]
    # Sometimes spoil the input too as a second fault... no: one fault per case keeps the
    # "names the argument" check meaningful. Instead vary whether the spoiled value is wrapped.
    if args[target].kind == "array" and isinstance(values[target], np.ndarray) and rng.random() < 0.3:
        import minigrad
        try:
            values[target] = minigrad.tensor(values[target])
        except ALLOWED_ERRORS + (MemoryError,):
            pass
    positional = [v for a, v in zip(args, values) if a.name in ("self", "data")]
    keywords = {a.name: v for a, v in zip(args, values) if a.name not in ("self", "data")}
    if op == "Tensor.reshape" or op in ("Tensor.transpose", "Tensor.permute"):
        positional.append(keywords.pop(args[1].name))
    description = f"{op}({args[target].name}={_short(values[target])})"
    return op, args[target].name, fn, positional, keywords, description


def _short(value):
    if isinstance(value, np.ndarray):
        flags = ("" if value.flags.c_contiguous else " non-contiguous") + (
            "" if value.flags.writeable else " read-only")
        return f"ndarray{value.shape} {value.dtype}{flags}"
    if hasattr(value, "data") and isinstance(getattr(value, "data"), np.ndarray):
        return "Tensor(" + _short(value.data) + ")"
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def names_argument(message, name):
    words = (name,) + ALIASES.get(name, ())
    return any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(w)}(?![A-Za-z0-9_])", message) for w in words)


def thread_counts(seed, index):
    """(forward, backward) thread counts of case ``index``, drawn independently from a stream of
    their own, so the cases themselves do not depend on them."""
    rng = np.random.default_rng([seed, index, 1])
    return tuple(int(n) for n in rng.choice(THREAD_COUNTS, 2))


def run_case(seed, index, templates):
    """Outcome of one case: 'ok', 'named' (allowed exception naming the argument), 'unnamed'
    (allowed exception not naming it) or 'wrong-exception:<type>'; plus a detail string."""
    import minigrad
    op, name, fn, positional, keywords, description = make_case(seed, index, templates)
    forward_threads, backward_threads = thread_counts(seed, index)
    description += f" [threads {forward_threads}/{backward_threads}]"
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            minigrad.set_num_threads(forward_threads)
            out = fn(*positional, **keywords)
            minigrad.set_num_threads(backward_threads)
            _exercise(out)
    except ALLOWED_ERRORS as e:
        message = str(e)
        kind = "named" if names_argument(message, name) else "unnamed"
        return kind, description, f"{type(e).__name__}: {message[:300]}"
    except Exception as e:   # noqa: BLE001 -- any other exception type is itself the finding
        return f"wrong-exception:{type(e).__name__}", description, f"{e!s}"[:300]
    return "ok", description, ""


def _exercise(out):
    """Touch what the call returned (and backpropagate through it), so a corrupt result or a
    backward kernel fed by a bad forward is exercised too."""
    import minigrad
    outputs = out if isinstance(out, tuple) else (out,)
    for y in outputs:
        if isinstance(y, minigrad.Tensor):
            np.sum(y.data.astype(np.float64, copy=False) if y.data.dtype.kind in "fiub" else 0)
            if y.requires_grad and y.data.dtype.kind == "f":
                y.backward(np.ones_like(y.data), retain_graph=True)


# -- worker and parent --------------------------------------------------------------------------

def worker(seed, start, stop):
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_LIMIT, WORKER_MEMORY_LIMIT))
    templates = _templates()
    out = sys.stdout
    crash_at = int(os.environ.get("MINIGRAD_FUZZ_CRASH_AT", -1))   # the harness's own test
    for i in range(start, stop):
        out.write(f"B {i}\n")
        out.flush()
        if i == crash_at:
            import ctypes
            ctypes.string_at(0)      # a genuine segfault
        try:
            outcome, description, detail = run_case(seed, i, templates)
        except Exception as e:   # noqa: BLE001 -- a fault of the fuzzer itself, not of minigrad
            outcome, description, detail = "harness-error", f"case {i}", repr(e)
        out.write(json.dumps({"i": i, "outcome": outcome, "case": description,
                              "detail": detail}) + "\n")
        out.flush()


def _spawn(seed, start, stop):
    env = dict(os.environ, MALLOC_CHECK_="3", MALLOC_PERTURB_="165", PYTHONFAULTHANDLER="1")
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker", str(seed),
                             str(start), str(stop)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=REPO)


def run(seed, cases, time_budget=None):
    """Run cases [0, cases) in workers; returns (results, crashes). ``results`` maps index →
    record; a crash or hang is recorded with outcome 'crash'/'hang' and the worker's stderr
    tail. Stops early (the remaining cases untried) once ``time_budget`` seconds are used."""
    results = {}
    start, began = 0, time.monotonic()
    while start < cases:
        proc = _spawn(seed, start, cases)
        buffer, current, fd = b"", None, proc.stdout.fileno()
        while True:
            if time_budget is not None and time.monotonic() - began > time_budget:
                proc.kill()
                proc.wait()
                return results
            ready, _, _ = select.select([fd], [], [], CASE_TIMEOUT_S)
            if not ready:                     # a case ran for CASE_TIMEOUT_S: a hang
                proc.kill()
                proc.wait()
                results[current] = {"i": current, "outcome": "hang", "case": _describe(seed, current),
                                    "detail": f"no result within {CASE_TIMEOUT_S} s"}
                start = current + 1
                break
            chunk = os.read(fd, 65536)
            if not chunk:                     # the worker exited
                code = proc.wait()
                stderr = proc.stderr.read().decode(errors="replace")
                if current is not None and current not in results:
                    results[current] = {"i": current, "outcome": "crash",
                                        "case": _describe(seed, current),
                                        "detail": f"exit code {code}; {stderr[-800:]}"}
                    start = current + 1
                elif code != 0:
                    raise RuntimeError(f"fuzz worker failed outside a case (exit {code}): "
                                       f"{stderr[-2000:]}")
                else:
                    start = cases
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.startswith(b"B "):
                    current = int(line[2:])
                else:
                    record = json.loads(line)
                    results[record["i"]] = record
        proc.stdout.close()
        proc.stderr.close()
    return results


def _describe(seed, index):
    try:
        return make_case(seed, index, _templates())[-1]
    except Exception as e:   # noqa: BLE001
        return f"<case {index} of seed {seed}: {e}>"


def summarize(results):
    counts = collections.Counter(r["outcome"] for r in results.values())
    failures = [r for r in results.values() if r["outcome"] not in ("ok", "named")]
    return counts, sorted(failures, key=lambda r: r["i"])


def main():
    sys.path.insert(0, REPO)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=3, type=int, metavar=("SEED", "START", "STOP"))
    parser.add_argument("--replay", nargs=2, type=int, metavar=("SEED", "INDEX"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", type=int, default=2000)
    options = parser.parse_args()
    if options.worker:
        worker(*options.worker)
        return
    if options.replay:
        print(run_case(*options.replay, _templates()))
        return
    began = time.monotonic()
    results = run(options.seed, options.cases)
    counts, failures = summarize(results)
    print(f"{len(results)} calls in {time.monotonic() - began:.1f} s: {dict(counts)}")
    for r in failures:
        print(f"  [{r['i']}] {r['outcome']}: {r['case']} -> {r['detail']}")


if __name__ == "__main__":
    main()
