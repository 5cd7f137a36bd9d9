"""Test-suite defaults. MINIGRAD_DATA, when unset, points at the project's shared data folder
(../shared/data next to the repository) if that exists, so ``pytest`` from a plain checkout
runs the real-data tests; without it they skip."""
import os

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_SHARED_DATA = os.path.normpath(os.path.join(_REPO_ROOT, "..", "shared", "data"))

if not os.environ.get("MINIGRAD_DATA") and os.path.isdir(_SHARED_DATA):
    os.environ["MINIGRAD_DATA"] = _SHARED_DATA
