"""CIFAR-10 read from its Python batches (``cifar-10-batches-py/``) without running their code.

The batches are pickles, and a pickle can call any function while it is read: a
``data_batch_1`` whose ``__reduce__`` returns ``os.system`` runs a command on a plain
``pickle.load`` — which is what ``torchvision.datasets.CIFAR10`` does. :class:`_BatchUnpickler`
admits only what a batch holds — dicts, lists, strings, bytes, numbers (pickle opcodes, no code)
and numpy arrays and scalars (the four numpy functions that rebuild them, plus
``_codecs.encode``, which protocol 2 uses for bytes). Any other global ends the read with
:class:`~optimlab.data.core.DatasetUnavailable` "… is not a CIFAR-10 batch file" before it is
called; then the dict's shape and types are checked too.

A batch is ``{"data": uint8 array (N, 3072), "labels": N ints in 0..9, ...}`` (each row 1024
red, 1024 green, 1024 blue values, row-major); ``batches.meta`` holds ``"label_names"``.

Why torchvision's ``CIFAR10`` class does not read the files here (its constants do: the folder,
``train_list``, ``test_list`` and ``meta``; its layout too: batches stacked in file order and
reshaped to (N, 3, 32, 32) — torchvision then transposes to HWC, we keep CHW; the tests check
the result equals torchvision's reader on the same files). The alternative, letting every file
pass this restricted load first and then handing the folder to ``CIFAR10`` (md5 check skipped),
was measured and refused:

- its reader is ``pickle.load`` plus that reshape; after the check it would unpickle each file
  a second time with plain pickle, so a file replaced between the check and that read runs its
  code — the check guards only a snapshot (closing the gap means copying the checked bytes to a
  private folder first: another 180 MB written per load);
- it reads everything twice: on six realistic batches (10 000 × 3072 each, protocol 2, 44 MB)
  the restricted load and plain ``pickle.load`` take the same time (0.32–0.43 s a batch), so
  ``load_dataset("cifar10")`` took 3.1–3.8 s this way and 4.6–5.4 s checked then read by
  ``CIFAR10`` (medians of 3, two runs, equal tensors; 2 cores shared with a busy machine) —
  on every compare and every tune trial.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from optimlab.data.core import DatasetUnavailable, missing_files


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


def read_label_names(path: Path, key: str = "label_names") -> tuple[str, ...]:
    """``batches.meta``'s ten class names (under ``key``)."""
    try:
        meta = load_pickle(path)
    except NotABatch as e:
        raise _not_a_batch(path, str(e)) from None
    names = meta.get(key) if isinstance(meta, dict) else None
    if not (isinstance(names, list) and len(names) == 10
            and all(isinstance(n, str | bytes) for n in names)):
        raise _not_a_batch(path, f"expected a dict with {key!r}, a list of 10 names")
    return tuple(n.decode("latin1") if isinstance(n, bytes) else n for n in names)


def _tensors(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[Tensor, Tensor]:
    """torchvision's layout, ``np.vstack(data).reshape(-1, 3, 32, 32)`` (CHW kept), then pixels
    0..255 → [0, 1] → ``(x - 0.5) / 0.5`` ∈ [-1, 1]."""
    data = np.vstack([d for d, _ in parts]).reshape(-1, 3, 32, 32)
    x = torch.from_numpy(data).float().div_(255.0).sub_(0.5).div_(0.5)
    return x, torch.from_numpy(np.concatenate([y for _, y in parts]))


def load_cifar10(root: Path) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor],
                                      tuple[str, ...]]:
    """Read ``<root>/cifar-10-batches-py/`` and return (train, test, class names).

    The file names are torchvision's (``CIFAR10.train_list``, ``test_list``, ``meta``), read in
    its order. Normalisation as seed 000's ``Normalize((0.5,)*3, (0.5,)*3)``: [0, 1] → [-1, 1].
    """
    from torchvision.datasets import CIFAR10  # its constants, not its reader (see above)

    folder = root / CIFAR10.base_folder
    train_files = [name for name, _md5 in CIFAR10.train_list]
    test_files = [name for name, _md5 in CIFAR10.test_list]
    meta = CIFAR10.meta["filename"]
    missing_files("cifar10", folder, (*train_files, *test_files, meta))
    train = _tensors([read_batch(folder / name) for name in train_files])
    test = _tensors([read_batch(folder / name) for name in test_files])
    return train, test, read_label_names(folder / meta, CIFAR10.meta["key"])
