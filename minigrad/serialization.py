"""Checkpoints: ``minigrad.save(obj, path)`` / ``minigrad.load(path)``.

The file is an ordinary ``.npz`` archive read with ``allow_pickle=False``, so loading a checkpoint
never runs code. ``obj`` may nest dicts (string or integer keys), lists and tuples around numpy
arrays, Tensors and Python/numpy scalars, e.g. ``{"model": model.state_dict(),
"optim": optimizer.state_dict(), "epoch": 3}``:

* every leaf is stored as an array under its flattened path, the keys joined with ``/``
  (``"model/fc.weight"``, ``"epoch"``; a Python scalar becomes a 0-d array);
* the nesting (dict, list or tuple, key types, which leaves were Python scalars) is stored as JSON
  text in the entry ``__minigrad__``, so ``load`` rebuilds the very same structure.

Writes are atomic: the archive is written to a temporary file in the destination folder, flushed
to disk, then renamed over ``path``; a crash mid-write leaves any previous checkpoint intact.
"""
import json
import numbers
import os
import tempfile
import zipfile

import numpy as np

from .tensor import Tensor

SEPARATOR = "/"
_MANIFEST = "__minigrad__"
_FORMAT = 1
_SCALAR_TYPES = {"bool": bool, "int": int, "float": float}


class CheckpointError(ValueError):
    """A file that is not a readable minigrad checkpoint (truncated, corrupt, or unsafe)."""


def _encode(obj, path, arrays):
    """JSON description of ``obj``; its arrays go into ``arrays`` under flattened keys."""
    where = SEPARATOR.join(path) or "the top level"
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if isinstance(key, bool) or not isinstance(key, (str, numbers.Integral)):
                raise TypeError(f"save: dict keys must be strings or integers, got {key!r} at "
                                f"{where}")
            if isinstance(key, str) and (SEPARATOR in key or key == _MANIFEST or not key):
                raise ValueError(f"save: key {key!r} at {where} is empty, reserved or contains "
                                 f"the separator {SEPARATOR!r}")
            kind = "s" if isinstance(key, str) else "i"
            key = key if kind == "s" else int(key)
            items.append([kind, key, _encode(value, path + [str(key)], arrays)])
        return {"dict": items}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [_encode(v, path + [str(i)], arrays) for i, v in enumerate(obj)]}
    if obj is None:
        return {"none": None}
    if isinstance(obj, str):
        return {"str": obj}
    flat_key = SEPARATOR.join(path)
    if not path:
        raise TypeError("save: the top level must be a dict, list or tuple, got "
                        f"{type(obj).__name__}")
    if flat_key in arrays:
        raise ValueError(f"save: two entries flatten to the same key {flat_key!r} (e.g. the "
                         "keys 1 and '1' in one dict)")
    for python_type, name in ((bool, "bool"), (numbers.Integral, "int"), (numbers.Real, "float")):
        if isinstance(obj, python_type) and not isinstance(obj, np.generic):
            arrays[flat_key] = np.array(obj, dtype={"bool": np.bool_, "int": np.int64,
                                                    "float": np.float64}[name])
            return {name: flat_key}
    array = obj.data if isinstance(obj, Tensor) else obj
    if isinstance(array, np.generic):
        array = np.asarray(array)
    if not isinstance(array, np.ndarray):
        raise TypeError(f"save: cannot store an object of type {type(obj).__name__} at "
                        f"{flat_key!r}: only arrays, tensors, numbers, strings, None, dicts, "
                        "lists and tuples")
    if array.dtype.hasobject:
        raise TypeError(f"save: the array at {flat_key!r} has dtype object, which could only be "
                        "stored by pickling; checkpoints hold numeric arrays only")
    arrays[flat_key] = array
    return {"scalar" if isinstance(obj, np.generic) else "array": flat_key}


def _decode(node, arrays):
    (kind, value), = node.items()
    if kind == "dict":
        return {(key if key_kind == "s" else int(key)): _decode(child, arrays)
                for key_kind, key, child in value}
    if kind in ("list", "tuple"):
        items = [_decode(child, arrays) for child in value]
        return items if kind == "list" else tuple(items)
    if kind == "none":
        return None
    if kind == "str":
        return value
    array = arrays.pop(value)
    if kind in _SCALAR_TYPES:
        return _SCALAR_TYPES[kind](array.item())
    return array[()] if kind == "scalar" else array


def save(obj, path):
    """Write ``obj`` (a state_dict, or nested dicts/lists of them and scalars) to ``path`` as an
    ``.npz`` archive, atomically (see the module docstring). The name is used as given."""
    arrays = {}
    manifest = {"format": _FORMAT, "tree": _encode(obj, [], arrays)}
    arrays[_MANIFEST] = np.array(json.dumps(manifest))
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, temp_path = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".",
                                     suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp_path, path)
    except BaseException:
        try:
            os.unlink(temp_path)
        except FileNotFoundError:
            pass
        raise
    _fsync_folder(folder)


def _fsync_folder(folder):
    """Make the rename itself durable (best effort: not every platform can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path):
    """Read a checkpoint written by ``save`` and return the same structure (numpy arrays for
    arrays and tensors). A plain ``.npz`` without minigrad's manifest loads as a flat dict.

    Raises ``CheckpointError`` (a ValueError) for a truncated or corrupt file, one that is not an
    ``.npz`` archive, or one holding an object (pickled) array; FileNotFoundError if missing."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        if f.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise CheckpointError(f"load: {path!r} is not an .npz archive (no zip header)")
        f.seek(0)
        arrays = {}
        try:
            with np.load(f, allow_pickle=False) as archive:
                for name in archive.files:
                    arrays[name] = _read_entry(archive, name, path)
        except CheckpointError:
            raise
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
            raise CheckpointError(f"load: {path!r} is truncated or corrupt ({e})") from None
    if _MANIFEST not in arrays:
        return arrays
    try:
        manifest = json.loads(arrays.pop(_MANIFEST).item())
        obj = _decode(manifest["tree"], arrays)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"load: {path!r} has an unreadable structure entry "
                              f"{_MANIFEST!r} ({type(e).__name__}: {e})") from None
    if arrays:
        raise CheckpointError(f"load: {path!r} holds entries its structure does not mention: "
                              f"{sorted(arrays)}")
    return obj


def _read_entry(archive, name, path):
    try:
        return archive[name]
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise CheckpointError(
                f"load: entry {name!r} of {path!r} is an object array that only unpickling "
                "could read; refused, since loading a checkpoint must never run code") from None
        raise
