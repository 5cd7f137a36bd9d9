"""The process settings applied at import (minigrad/runtime.py): each takes effect, each has an
opt-out, the user's own values win, and none leaks into child processes."""
import json
import os
import platform
import subprocess
import sys

import pytest

import minigrad

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIABLES = ("OPENBLAS_THREAD_TIMEOUT", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
SWITCHES = ("MINIGRAD_BLAS_TIMEOUT", "MINIGRAD_OMP_SPIN", "MINIGRAD_MALLOC_TUNING")

PROBE = """
import json, os, subprocess, sys
import minigrad
child = subprocess.run([sys.executable, "-c", "import os, json; print(json.dumps("
                        "{k: os.environ.get(k) for k in %r}))"], capture_output=True, text=True)
print(json.dumps({"applied": minigrad.runtime.applied,
                  "heap": minigrad.runtime.heap_tuned,
                  "environ": {k: os.environ.get(k) for k in %r},
                  "child": json.loads(child.stdout)}))
""" % (VARIABLES, VARIABLES)


def _probe(**env_changes):
    """What a fresh ``import minigrad`` applies under the given environment changes (None
    removes a variable)."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    for name in VARIABLES + SWITCHES:
        env.pop(name, None)
    for name, value in env_changes.items():
        if value is not None:
            env[name] = value
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return json.loads(out.stdout)


def test_import_applies_every_setting_and_leaks_none_into_the_environment():
    result = _probe()
    assert result["applied"] == {"OPENBLAS_THREAD_TIMEOUT": "16", "OMP_WAIT_POLICY": "ACTIVE",
                                 "GOMP_SPINCOUNT": "30000"}
    assert result["environ"] == {name: None for name in VARIABLES}
    assert result["child"] == {name: None for name in VARIABLES}


def test_each_setting_has_an_opt_out():
    assert "OPENBLAS_THREAD_TIMEOUT" not in _probe(MINIGRAD_BLAS_TIMEOUT="0")["applied"]
    applied = _probe(MINIGRAD_OMP_SPIN="0")["applied"]
    assert "OMP_WAIT_POLICY" not in applied and "GOMP_SPINCOUNT" not in applied
    assert applied == {"OPENBLAS_THREAD_TIMEOUT": "16"}


def test_the_users_own_values_win_and_stay_in_the_environment():
    result = _probe(GOMP_SPINCOUNT="10", OPENBLAS_THREAD_TIMEOUT="4")
    assert result["applied"] == {}
    assert result["environ"]["GOMP_SPINCOUNT"] == "10"
    assert result["child"]["OPENBLAS_THREAD_TIMEOUT"] == "4"


def test_environment_gives_the_settings_for_a_child_that_asks():
    assert minigrad.runtime.environment() == minigrad.runtime.applied
    assert minigrad.runtime.environment() is not minigrad.runtime.applied


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="the heap settings apply to glibc only")
def test_import_tunes_glibc_and_the_variable_opts_out():
    assert _probe()["heap"] is True
    assert _probe(MINIGRAD_MALLOC_TUNING="0")["heap"] is False


def test_tune_heap_is_idempotent():
    assert minigrad.runtime.tune_heap() == minigrad.runtime.heap_tuned


def _libgomp_report(**env_changes):
    """libgomp's own account of its settings at load (OMP_DISPLAY_ENV), after importing minigrad."""
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_DISPLAY_ENV="VERBOSE")
    for name in VARIABLES + SWITCHES:
        env.pop(name, None)
    env.update(env_changes)
    out = subprocess.run([sys.executable, "-c", "import minigrad"], env=env, capture_output=True,
                         text=True, check=True, cwd=ROOT)
    return out.stderr


def test_libgomp_reads_the_spin_settings_when_the_kernels_load():
    report = _libgomp_report()
    assert "OMP_WAIT_POLICY = 'ACTIVE'" in report and "GOMP_SPINCOUNT = '30000'" in report
    opted_out = _libgomp_report(MINIGRAD_OMP_SPIN="0")
    assert "GOMP_SPINCOUNT = '30000'" not in opted_out and "OMP_WAIT_POLICY = 'ACTIVE'" not in (
        opted_out)
