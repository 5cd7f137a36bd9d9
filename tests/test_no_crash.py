"""No input crashes minigrad: the bad-input fuzzer (tests/helpers/fuzz_bad_input.py) throws
spoiled arguments at every public functional op, cat/stack/split and every Tensor method, each
call in a worker subprocess that reports its outcome before the next one, so a segfault is
pinned on the call that caused it.

CI runs CI_CASES calls (a few seconds); ``MINIGRAD_FUZZ=long`` runs LONG_CASES.
"""
import os

import pytest

from helpers import fuzz_bad_input as fuzz

CI_CASES, LONG_CASES = 2500, 60000
LONG = os.environ.get("MINIGRAD_FUZZ") == "long"


@pytest.fixture(scope="module")
def fuzz_results():
    results = fuzz.run(seed=7, cases=LONG_CASES if LONG else CI_CASES)
    counts, _ = fuzz.summarize(results)
    print(f"\nbad-input fuzzer: {len(results)} calls, outcomes {dict(counts)}")
    return results


def _failures(results, keep):
    bad = [r for r in results.values() if keep(r["outcome"])]
    return "\n".join(f"[{r['i']}] {r['outcome']}: {r['case']} -> {r['detail']}"
                     for r in sorted(bad, key=lambda r: r["i"])[:40])


def test_every_public_op_has_a_fuzz_template():
    missing = fuzz.public_functional_ops() - set(fuzz._templates())
    assert not missing, f"public ops the bad-input fuzzer does not cover: {sorted(missing)}"


def test_every_case_ran(fuzz_results):
    assert len(fuzz_results) == (LONG_CASES if LONG else CI_CASES)
    assert not _failures(fuzz_results, lambda o: o == "harness-error")


def test_no_call_crashes_or_hangs(fuzz_results):
    report = _failures(fuzz_results, lambda o: o in ("crash", "hang"))
    assert not report, "calls that killed or hung the process:\n" + report


def test_bad_input_raises_only_value_type_index_or_runtime_errors(fuzz_results):
    report = _failures(fuzz_results, lambda o: o.startswith("wrong-exception"))
    assert not report, "calls that raised another exception type:\n" + report


def test_error_messages_name_the_spoiled_argument(fuzz_results):
    report = _failures(fuzz_results, lambda o: o == "unnamed")
    assert not report, "errors whose message does not name the argument:\n" + report


def test_the_fuzzer_detects_a_crash(monkeypatch):
    """The harness itself: a case that kills its worker is reported as a crash of that very
    case, and the cases after it still run in a new worker."""
    monkeypatch.setenv("MINIGRAD_FUZZ_CRASH_AT", "3")
    results = fuzz.run(seed=7, cases=6)
    assert results[3]["outcome"] == "crash"
    assert results[3]["detail"].startswith("exit code -11")      # SIGSEGV
    assert sorted(results) == list(range(6))
    assert all(results[i]["outcome"] != "crash" for i in (0, 1, 2, 4, 5))
