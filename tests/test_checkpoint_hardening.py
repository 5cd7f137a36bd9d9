"""Checkpoints, the gaps test_serialization.py and test_optim.py leave: a conv net with
BatchNorm buffers, SGD momentum and a StepLR schedule resumed from a saved checkpoint gives the
very losses of the uninterrupted run; loading refuses a checkpoint of mismatched shapes into
that model, naming the entry, and leaves the model unchanged; a pickle file is refused."""
import pickle

import numpy as np
import pytest

import minigrad
from minigrad.serialization import CheckpointError

from helpers.training import batches, make_run, train


def test_resumed_training_continues_exactly_like_the_uninterrupted_run(tmp_path):
    data = list(batches(10, seed=5))
    model, opt, scheduler = make_run(seed=2)
    train(model, opt, scheduler, data[:4])
    minigrad.save({"model": model.state_dict(), "optim": opt.state_dict(),
                   "scheduler": scheduler.state_dict()}, tmp_path / "ckpt.npz")
    uninterrupted = train(model, opt, scheduler, data[4:])

    resumed_model, resumed_opt, resumed_scheduler = make_run(seed=99)   # other weights
    checkpoint = minigrad.load(tmp_path / "ckpt.npz")
    resumed_model.load_state_dict(checkpoint["model"])
    resumed_opt.load_state_dict(checkpoint["optim"])
    resumed_scheduler.load_state_dict(checkpoint["scheduler"])
    resumed = train(resumed_model, resumed_opt, resumed_scheduler, data[4:])
    assert resumed == uninterrupted                     # bit-identical losses, step by step
    assert resumed_opt.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    np.testing.assert_array_equal(resumed_model.bn.running_var.data, model.bn.running_var.data)

    fresh_model, fresh_opt, fresh_scheduler = make_run(seed=99)
    fresh_model.load_state_dict(checkpoint["model"])    # weights only: momentum lost
    assert train(fresh_model, fresh_opt, fresh_scheduler, data[4:]) != uninterrupted


def test_mismatched_shapes_are_refused_and_the_model_is_left_unchanged(tmp_path):
    model, _, _ = make_run(seed=0)
    state = model.state_dict()
    state["conv.weight"] = np.zeros((5, 1, 3, 3), np.float32)
    minigrad.save(state, tmp_path / "bad.npz")
    before = {k: v.copy() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"conv\.weight.*\(5, 1, 3, 3\)"):
        model.load_state_dict(minigrad.load(tmp_path / "bad.npz"))
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_a_pickle_file_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.npz"
    path.write_bytes(pickle.dumps({"w": Payload()}))
    with pytest.raises(CheckpointError, match="not an .npz"):
        minigrad.load(path)
    assert not marker.exists()


def test_truncated_at_every_point_is_a_clear_error(tmp_path):
    path = tmp_path / "ckpt.npz"
    model, _, _ = make_run(seed=0)
    minigrad.save({"model": model.state_dict()}, path)
    data = path.read_bytes()
    for cut in range(0, len(data), max(1, len(data) // 40)):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError):
            minigrad.load(path)
