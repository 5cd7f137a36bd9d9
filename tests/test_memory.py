"""Memory: training keeps a flat resident set (each step's graph and saved buffers are freed),
and evaluation under no_grad records no graph at all."""
import gc
import weakref

import numpy as np

import minigrad
import minigrad.nn.functional as F
from minigrad import Function

from helpers.training import batches, make_run, train

WARMUP_STEPS, MEASURED_STEPS = 20, 200
MAX_GROWTH_MB = 20


def _rss_mb():
    """Resident set size of this process (Linux /proc/self/statm: pages)."""
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * 4096 / 2 ** 20


def test_training_loop_keeps_a_flat_resident_set():
    model, opt, scheduler = make_run(seed=0, lr=0.01)
    train(model, opt, scheduler, batches(WARMUP_STEPS, seed=1))   # workspaces, allocator pools
    gc.collect()
    before = _rss_mb()
    losses = train(model, opt, scheduler, batches(MEASURED_STEPS, seed=2))
    gc.collect()
    growth = _rss_mb() - before
    print(f"\nRSS growth over {MEASURED_STEPS} steps after {WARMUP_STEPS} warm-up: "
          f"{growth:.2f} MB")
    assert np.isfinite(losses).all()
    assert growth < MAX_GROWTH_MB, f"RSS grew {growth:.1f} MB over {MEASURED_STEPS} steps"


def _live_functions():
    return sum(isinstance(o, Function) for o in gc.get_objects())


def test_each_step_frees_its_graph_and_saved_buffers():
    model, opt, scheduler = make_run(seed=0)
    train(model, opt, scheduler, batches(2))
    gc.collect()
    baseline = _live_functions()
    x = minigrad.tensor(np.ones((4, 1, 8, 8), np.float32))
    loss = F.cross_entropy(model(x), np.array([0, 1, 2, 0]))
    node = weakref.ref(loss._creator)
    assert _live_functions() > baseline            # the graph exists until backward
    loss.backward()
    del loss
    gc.collect()
    assert node() is None                          # the graph is gone with its output ...
    assert _live_functions() == baseline           # ... and no op object leaked
    # parameters hold only gradients, no reference back into a graph
    assert all(p._creator is None for p in model.parameters())


def test_no_grad_evaluation_records_no_graph():
    model, _, _ = make_run(seed=0)
    model.eval()
    x = minigrad.tensor(np.ones((4, 1, 8, 8), np.float32))
    gc.collect()
    baseline = _live_functions()
    with minigrad.no_grad():
        out = model(x)
        loss = F.cross_entropy(out, np.array([0, 1, 2, 0]))
    assert out._creator is None and loss._creator is None
    assert not out.requires_grad
    gc.collect()
    assert _live_functions() == baseline           # no op kept alive by the outputs
