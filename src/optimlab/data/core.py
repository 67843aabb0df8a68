"""Datasets as tensors held on one device, seeded splits and device-resident batching.

A :class:`Dataset` is three :class:`Split` s (train / validation / test), each a pair of tensors
already on the target device. :func:`device_batches` walks a split in a random order drawn from a
seeded ``torch.Generator``: one ``randperm`` per epoch, batches gathered with ``index_select`` on
the device — no per-sample Python and no ``DataLoader`` in the training loop.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor

from optimlab.errors import UserError

Task = Literal["classification", "regression"]


class DatasetUnavailable(UserError):
    """An unknown dataset name, or a dataset whose files are not on disk."""


@dataclass(frozen=True)
class Split:
    """One part of a dataset: inputs ``x`` (N, *input_shape) and targets ``y`` (N,) or (N, k)."""

    x: Tensor  # float32 inputs, first dimension = examples
    y: Tensor  # int64 class indices (classification) or float32 targets (regression)

    def __len__(self) -> int:
        return int(self.x.shape[0])


@dataclass(frozen=True)
class Dataset:
    """A named dataset split three ways, resident on one device."""

    name: str  # e.g. "digits", or "custom" for user tensors
    task: Task  # decides the default loss (cross-entropy / MSE) and whether accuracy exists
    train: Split
    val: Split
    test: Split
    input_shape: tuple[int, ...]  # shape of one example, e.g. (1, 8, 8)
    num_outputs: int  # classes (classification) or target width (regression)
    class_names: tuple[str, ...]  # empty for regression


def device_batches(
    split: Split, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield ``(x, y)`` batches of ``split`` in an order drawn from ``generator``.

    One ``torch.randperm`` per call (one epoch), drawn on the CPU generator so the order is the
    same whatever the device and whatever the optimizer; the permutation is moved to the data's
    device once and each batch is an ``index_select`` there. The last batch may be smaller.
    """
    if batch_size < 1:
        raise UserError(f"batch_size must be a positive integer, got {batch_size}")
    n = len(split)
    order = torch.randperm(n, generator=generator, device=generator.device)
    order = order.to(split.x.device, non_blocking=True)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        yield split.x.index_select(0, idx), split.y.index_select(0, idx)


def _infer_task(y: Tensor) -> Task:
    if y.dtype.is_floating_point or y.dtype.is_complex:
        return "regression"
    return "classification"


def _split_sizes(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    for label, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= f < 1.0:
            raise UserError(f"{label} must be in [0, 1), got {f}")
    n_val, n_test = round(n * val_fraction), round(n * test_fraction)
    n_train = n - n_val - n_test
    if n_train < 1:
        raise UserError(
            f"val_fraction + test_fraction = {val_fraction + test_fraction} leaves no training "
            f"examples out of {n}"
        )
    return n_train, n_val, n_test


def from_tensors(
    x: Tensor,
    y: Tensor,
    *,
    task: Task | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    device: str | torch.device = "cpu",
    name: str = "custom",
) -> Dataset:
    """Wrap user tensors ``(x, y)`` as a :class:`Dataset` with a seeded random split.

    The examples are shuffled by ``torch.randperm`` from a generator seeded with ``seed``; the
    first ``val_fraction`` of that order becomes validation, the next ``test_fraction`` test,
    the rest training. ``task`` defaults to classification for integer ``y`` (classes
    ``0 .. max(y)``) and regression for floating ``y`` (a 1-D ``y`` becomes one column).
    ``x`` is converted to float32 and used as given — normalise it yourself.
    """
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if x.ndim < 1 or y.ndim < 1 or x.shape[0] != y.shape[0]:
        raise UserError(
            f"x and y must have the same number of examples (first dimension); "
            f"got x {tuple(x.shape)} and y {tuple(y.shape)}"
        )
    task = task or _infer_task(y)
    if task not in ("classification", "regression"):
        raise UserError(f"unknown task {task!r}; valid: classification, regression")
    x = x.to(torch.float32)
    if task == "classification":
        if y.ndim != 1 or y.dtype.is_floating_point:
            raise UserError("classification targets y must be a 1-D tensor of integer classes")
        y = y.to(torch.int64)
        if len(y) and int(y.min()) < 0:
            raise UserError("classification targets y must be >= 0")
        num_outputs = int(y.max()) + 1 if len(y) else 0
        class_names = tuple(str(i) for i in range(num_outputs))
    else:
        y = y.to(torch.float32)
        y = y.unsqueeze(1) if y.ndim == 1 else y.reshape(len(y), -1)
        num_outputs, class_names = int(y.shape[1]), ()
    n_train, n_val, _ = _split_sizes(len(x), val_fraction, test_fraction)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    parts = (order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :])
    train, val, test = (Split(x[p].to(device), y[p].to(device)) for p in parts)
    return Dataset(name, task, train, val, test, tuple(x.shape[1:]), num_outputs, class_names)


def halve_test(
    name: str,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    class_names: tuple[str, ...],
    *,
    seed: int,
    device: str | torch.device,
) -> Dataset:
    """Keep the official training set; split the official test set in two halves at random
    (seeded): the first half is validation, the second test — seed 004's protocol."""
    order = torch.randperm(len(test[0]), generator=torch.Generator().manual_seed(seed))
    half = len(order) // 2
    val_idx, test_idx = order[:half], order[half:]

    def split(x: Tensor, y: Tensor) -> Split:
        return Split(x.to(device), y.to(device))

    return Dataset(
        name,
        "classification",
        split(*train),
        split(test[0][val_idx], test[1][val_idx]),
        split(test[0][test_idx], test[1][test_idx]),
        tuple(train[0].shape[1:]),
        len(class_names),
        class_names,
    )


def missing_files(name: str, folder: Path, files: tuple[str, ...], *,
                  alternative: str = "") -> None:
    """Raise one DatasetUnavailable naming every file of ``files`` not in ``folder``.

    ``alternative`` is a suffix that may stand in for a file (``.gz``: the gzipped copy).
    """
    missing = [f for f in files if not (folder / f).is_file()
               and not (alternative and (folder / f"{f}{alternative}").is_file())]
    if missing:
        shown = ", ".join(f"{f}[{alternative}]" if alternative else f for f in files)
        raise DatasetUnavailable(
            f"dataset {name!r} is not available offline: looked in {folder} for {shown} "
            f"(missing: {', '.join(missing)}); put the files there (--data-dir / $OPTIMLAB_DATA) "
            "or use the bundled dataset 'digits'")


def default_data_dir() -> Path:
    """``$OPTIMLAB_DATA`` if set, else ``~/.cache/optimlab/data``."""
    env = os.environ.get("OPTIMLAB_DATA")
    return Path(env) if env else Path.home() / ".cache" / "optimlab" / "data"
