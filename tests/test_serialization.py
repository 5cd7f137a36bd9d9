"""minigrad.save / minigrad.load: structure round trip, safety (no pickle), atomic writes,
corrupt files."""
import os
import pathlib
import zipfile

import numpy as np
import pytest

import minigrad
import minigrad.serialization as serialization
from minigrad import nn
from minigrad.serialization import CheckpointError


def _nested():
    return {
        "model": {"fc.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
                  "bn.num_batches_tracked": np.array(4, dtype=np.int64)},
        "optim": {"state": {0: {"step": 3, "exp_avg": np.ones(2)}},
                  "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0],
                                    "nesterov": False, "name": "all", "extra": None}]},
        "epoch": 3,
        "mask": np.array([True, False]),
        "scalar": np.float32(2.5),
        "tensor": minigrad.tensor(np.full((2, 2), 7.0, dtype=np.float32)),
    }


def test_nested_round_trip_keeps_structure_types_and_dtypes(tmp_path):
    path = tmp_path / "ckpt.npz"
    minigrad.save(_nested(), path)
    loaded = minigrad.load(path)
    assert set(loaded) == {"model", "optim", "epoch", "mask", "scalar", "tensor"}
    weight = loaded["model"]["fc.weight"]
    assert weight.dtype == np.float32
    np.testing.assert_array_equal(weight, np.arange(6).reshape(2, 3))
    assert loaded["model"]["bn.num_batches_tracked"].dtype == np.int64
    state = loaded["optim"]["state"]
    assert list(state) == [0] and state[0]["step"] == 3 and type(state[0]["step"]) is int
    group = loaded["optim"]["param_groups"][0]
    assert group["betas"] == (0.9, 0.999) and isinstance(group["betas"], tuple)
    assert group["params"] == [0] and group["nesterov"] is False and group["name"] == "all"
    assert group["extra"] is None and type(group["lr"]) is float
    assert loaded["epoch"] == 3 and type(loaded["epoch"]) is int
    assert loaded["mask"].dtype == np.bool_
    assert loaded["scalar"] == np.float32(2.5) and isinstance(loaded["scalar"], np.float32)
    np.testing.assert_array_equal(loaded["tensor"], 7.0)


def test_file_is_a_plain_npz_with_flattened_keys(tmp_path):
    path = tmp_path / "ckpt.npz"
    minigrad.save(_nested(), str(path))
    with np.load(path, allow_pickle=False) as archive:
        assert "model/fc.weight" in archive.files and "optim/state/0/exp_avg" in archive.files
        assert archive["epoch"].shape == () and archive["epoch"] == 3


def test_model_checkpoint_restores_identical_outputs(tmp_path):
    minigrad.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x = minigrad.tensor(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))
    minigrad.save(model.state_dict(), tmp_path / "m.npz")
    minigrad.manual_seed(1)
    twin = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    twin.load_state_dict(minigrad.load(tmp_path / "m.npz"))
    np.testing.assert_array_equal(twin(x).data, model(x).data)


def test_shape_mismatched_checkpoint_is_refused_by_name(tmp_path):
    minigrad.save(nn.Linear(3, 4).state_dict(), tmp_path / "m.npz")
    with pytest.raises(ValueError, match=r"'weight'.*\(4, 3\).*\(5, 3\)"):
        nn.Linear(3, 5).load_state_dict(minigrad.load(tmp_path / "m.npz"))


def test_a_pickled_object_inside_the_npz_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, weight=np.zeros(2), payload=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(CheckpointError, match="'payload'.*never run code"):
        minigrad.load(path)


def test_save_refuses_objects_and_bad_keys(tmp_path):
    path = tmp_path / "x.npz"
    with pytest.raises(TypeError, match="'w'.*object"):
        minigrad.save({"w": np.array([1, "a"], dtype=object)}, path)
    with pytest.raises(TypeError, match="set"):
        minigrad.save({"w": {1, 2}}, path)
    with pytest.raises(ValueError, match="separator"):
        minigrad.save({"a/b": np.zeros(1)}, path)
    with pytest.raises(ValueError, match="same key"):
        minigrad.save({1: np.zeros(1), "1": np.zeros(1)}, path)
    with pytest.raises(TypeError, match="keys must be strings or integers"):
        minigrad.save({(1, 2): np.zeros(1)}, path)
    with pytest.raises(TypeError, match="top level"):
        minigrad.save(np.zeros(3), path)
    assert not path.exists() and os.listdir(tmp_path) == []


def test_plain_npz_loads_as_a_flat_dict(tmp_path):
    np.savez(tmp_path / "plain.npz", a=np.ones(2), b=np.zeros(3))
    loaded = minigrad.load(tmp_path / "plain.npz")
    assert sorted(loaded) == ["a", "b"]


def test_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / "ckpt.npz"
    minigrad.save({"w": np.random.default_rng(0).standard_normal(1000)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        minigrad.load(path)


def test_corrupted_bytes_are_a_clear_error(tmp_path):
    path = tmp_path / "ckpt.npz"
    minigrad.save({"w": np.zeros(1000)}, path)
    data = bytearray(path.read_bytes())
    data[600:620] = b"\xff" * 20                       # inside the array's data
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        minigrad.load(path)


def test_not_an_npz_and_a_tampered_manifest(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("hello")
    with pytest.raises(CheckpointError, match="not an .npz"):
        minigrad.load(path)
    np.savez(tmp_path / "bad.npz", __minigrad__=np.array("{not json"))
    with pytest.raises(CheckpointError, match="structure"):
        minigrad.load(tmp_path / "bad.npz")
    with pytest.raises(FileNotFoundError):
        minigrad.load(tmp_path / "missing.npz")


def test_crash_mid_write_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    minigrad.save({"w": np.zeros(3)}, path)
    real_savez = np.savez

    def crashing_savez(file, **arrays):
        real_savez(file, **arrays)           # the bytes reach the temporary file ...
        file.truncate(10)                    # ... half-written when the "crash" hits
        raise KeyboardInterrupt

    monkeypatch.setattr(serialization.np, "savez", crashing_savez)
    with pytest.raises(KeyboardInterrupt):
        minigrad.save({"w": np.ones(3)}, path)
    monkeypatch.undo()
    np.testing.assert_array_equal(minigrad.load(path)["w"], np.zeros(3))
    assert os.listdir(tmp_path) == ["ckpt.npz"]          # no temporary file left behind


def test_failed_rename_leaves_the_old_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    minigrad.save({"w": np.zeros(3)}, path)

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(serialization.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        minigrad.save({"w": np.ones(3)}, path)
    monkeypatch.undo()
    np.testing.assert_array_equal(minigrad.load(path)["w"], np.zeros(3))
    assert os.listdir(tmp_path) == ["ckpt.npz"]


def test_overwrite_and_pathlike_names(tmp_path):
    path = pathlib.Path(tmp_path) / "no_suffix"
    minigrad.save({"w": np.zeros(2)}, path)
    minigrad.save({"w": np.ones(2)}, path)
    assert os.listdir(tmp_path) == ["no_suffix"]            # written under the name given
    assert zipfile.is_zipfile(path)
    np.testing.assert_array_equal(minigrad.load(path)["w"], np.ones(2))
