"""CIFAR-10 read from its Python batches (``cifar-10-batches-py/``) without running their code.

The batches are pickles, and a pickle can call any function while it is read: a
``data_batch_1`` whose ``__reduce__`` returns ``os.system`` runs a command on a plain
``pickle.load``, as torchvision's reader does. :class:`_BatchUnpickler` admits only what a
batch holds — dicts, lists, strings, bytes, numbers (pickle opcodes, no code) and numpy arrays
and scalars (the four numpy functions that rebuild them, plus ``_codecs.encode``, which
protocol 2 uses for bytes). Any other global ends the read with
:class:`~optimlab.data.core.DatasetUnavailable` "… is not a CIFAR-10 batch file" before it is
called; then the dict's shape and types are checked too.

A batch is ``{"data": uint8 array (N, 3072), "labels": N ints in 0..9, ...}`` (each row 1024
red, 1024 green, 1024 blue values, row-major); ``batches.meta`` holds ``"label_names"``.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from optimlab.data.core import DatasetUnavailable, missing_files

FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
FILES = (*TRAIN_BATCHES, "test_batch", "batches.meta")


def _numpy_rebuilders() -> dict[tuple[str, str], Any]:
    """The globals a numpy array or scalar pickle names, from numpy's own public reductions.

    numpy 1 writes ``numpy.core.*`` and numpy 2 ``numpy._core.*``; both map to the functions
    this numpy uses (read off ``__reduce_ex__`` rather than imported from private modules).
    """
    array, scalar = np.zeros(1, np.uint8), np.int64(0)
    found = {"_reconstruct": array.__reduce_ex__(2)[0], "_frombuffer": array.__reduce_ex__(5)[0],
             "scalar": scalar.__reduce_ex__(2)[0]}
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray,
                                           ("numpy", "dtype"): np.dtype}
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = found["_reconstruct"]
        allowed[(f"{core}.multiarray", "scalar")] = found["scalar"]
        allowed[(f"{core}.numeric", "_frombuffer")] = found["_frombuffer"]
    import _codecs

    allowed[("_codecs", "encode")] = _codecs.encode
    return allowed


class NotABatch(Exception):
    """The file is not a CIFAR-10 batch (the message says why)."""


class _BatchUnpickler(pickle.Unpickler):
    """A pickle reader that refuses every global except numpy's array/scalar rebuilders."""

    allowed = _numpy_rebuilders()

    def find_class(self, module: str, name: str) -> Any:
        found = self.allowed.get((module, name))
        if found is None:
            raise NotABatch(f"it asks to load {module}.{name}, which a batch never holds "
                            "(refused, nothing was run)")
        return found


def load_pickle(path: Path) -> Any:
    """Read the pickle at ``path`` admitting only plain data and numpy arrays.

    Raises :class:`NotABatch` for anything else, and for files that are not pickles.
    """
    try:
        with open(path, "rb") as f:
            return _BatchUnpickler(f, encoding="latin1").load()
    except NotABatch:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, MemoryError, UnicodeDecodeError) as e:
        raise NotABatch(f"not a readable pickle ({type(e).__name__}: {e})") from None


def _not_a_batch(path: Path, why: str) -> DatasetUnavailable:
    return DatasetUnavailable(f"dataset 'cifar10': {path} is not a CIFAR-10 batch file: {why}")


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file as ``(data uint8 (N, 3072), labels int64 (N,))``."""
    try:
        entry = load_pickle(path)
    except NotABatch as e:
        raise _not_a_batch(path, str(e)) from None
    if not isinstance(entry, dict) or "data" not in entry or "labels" not in entry:
        raise _not_a_batch(path, "expected a dict with 'data' and 'labels'")
    data, labels = entry["data"], entry["labels"]
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == 3072):
        shape = getattr(data, "shape", type(data).__name__)
        raise _not_a_batch(path, f"'data' must be a uint8 array of shape (N, 3072), got {shape}")
    if not isinstance(labels, list | np.ndarray) or len(labels) != len(data) or not all(
            isinstance(v, int | np.integer) and 0 <= v <= 9 for v in labels):
        raise _not_a_batch(path, f"'labels' must be {len(data)} integers in 0..9")
    return data, np.asarray(labels, dtype=np.int64)


def read_label_names(path: Path) -> tuple[str, ...]:
    """``batches.meta``'s ten class names."""
    try:
        meta = load_pickle(path)
    except NotABatch as e:
        raise _not_a_batch(path, str(e)) from None
    names = meta.get("label_names") if isinstance(meta, dict) else None
    if not (isinstance(names, list) and len(names) == 10
            and all(isinstance(n, str | bytes) for n in names)):
        raise _not_a_batch(path, "expected a dict with 'label_names', a list of 10 names")
    return tuple(n.decode("latin1") if isinstance(n, bytes) else n for n in names)


def _tensors(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[Tensor, Tensor]:
    """Pixels 0..255 → [0, 1] → ``(x - 0.5) / 0.5`` ∈ [-1, 1]; shape (N, 3, 32, 32)."""
    data = np.concatenate([d for d, _ in parts]).reshape(-1, 3, 32, 32)
    x = torch.from_numpy(data).float().div_(255.0).sub_(0.5).div_(0.5)
    return x, torch.from_numpy(np.concatenate([y for _, y in parts]))


def load_cifar10(root: Path) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor],
                                      tuple[str, ...]]:
    """Read ``<root>/cifar-10-batches-py/`` and return (train, test, class names).

    Normalisation as seed 000's ``Normalize((0.5,)*3, (0.5,)*3)``: [0, 1] → [-1, 1].
    """
    folder = root / FOLDER
    missing_files("cifar10", folder, FILES)
    train = _tensors([read_batch(folder / name) for name in TRAIN_BATCHES])
    test = _tensors([read_batch(folder / "test_batch")])
    return train, test, read_label_names(folder / "batches.meta")
