"""Test-suite defaults. MINIGRAD_DATA, when unset, points at the project's shared data folder
(../shared/data next to the repository) if that exists, so ``pytest`` from a plain checkout
runs the real-data tests; without it they skip.

The tests folder goes on ``sys.path`` so that test modules import their shared code as
``helpers`` (tests/helpers) under every import mode: the default "prepend" mode puts it there
too, ``--import-mode=importlib`` does not."""
import os
import sys

_TESTS = os.path.dirname(os.path.abspath(__file__))
_REPO_ROOT = os.path.dirname(_TESTS)
_SHARED_DATA = os.path.normpath(os.path.join(_REPO_ROOT, "..", "shared", "data"))

if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

if not os.environ.get("MINIGRAD_DATA") and os.path.isdir(_SHARED_DATA):
    os.environ["MINIGRAD_DATA"] = _SHARED_DATA

# Hypothesis profiles for the property-based fuzz tests (tests/test_fuzz_kernels.py): "ci" keeps
# each test to a bounded number of examples; MINIGRAD_FUZZ=long selects the long run.
try:
    from hypothesis import HealthCheck, settings
except ImportError:   # hypothesis is in the "test" extra; the fuzz tests skip without it
    pass
else:
    _COMMON = dict(deadline=None, print_blob=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    settings.register_profile("ci", max_examples=40, **_COMMON)
    settings.register_profile("long", max_examples=1500, **_COMMON)
    settings.load_profile("long" if os.environ.get("MINIGRAD_FUZZ") == "long" else "ci")
