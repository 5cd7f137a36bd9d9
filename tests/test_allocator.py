"""The heap settings applied at import (minigrad/allocator.py)."""
import os
import platform
import subprocess
import sys

import pytest

import minigrad

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tuned_in_subprocess(env_value):
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("MINIGRAD_MALLOC_TUNING", None)
    if env_value is not None:
        env["MINIGRAD_MALLOC_TUNING"] = env_value
    out = subprocess.run([sys.executable, "-c", "import minigrad; print(minigrad.allocator.tuned)"],
                         env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return out.stdout.strip()


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="the heap settings apply to glibc only")
def test_import_tunes_glibc_and_the_variable_opts_out():
    assert _tuned_in_subprocess(None) == "True"
    assert _tuned_in_subprocess("0") == "False"


def test_tune_is_idempotent():
    assert minigrad.allocator.tune() == minigrad.allocator.tuned
