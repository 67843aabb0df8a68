"""Datasets by name, seeded splits and device-resident batching.

=================  ==========================  ===============================  ==================
name               source                      normalisation                    split (seeded)
=================  ==========================  ===============================  ==================
``digits``         scikit-learn's bundled      pixels 0..16 → [0, 1];           random 60/20/20
                   8×8 digits (1797), offline  shape (1, 8, 8), 10 classes
``line``           seed 001: x = arange(-5, 5,  none; x (1,), y (1,) regression  random 70/15/15
                   0.1), y = −5x + 1 + 0.4·ε
``mnist``          torchvision MNIST files     0..255 → [0, 1]; (1, 28, 28)     official train;
``fashion-mnist``  torchvision FashionMNIST    0..255 → [0, 1]; (1, 28, 28)     official test
``cifar10``        torchvision CIFAR-10        [0, 1] → [-1, 1]; (3, 32, 32)    halved at random
                                                                                 → val / test
=================  ==========================  ===============================  ==================

``seed`` drives the split (and the noise of ``line``); the same seed gives the same split.
"""

from __future__ import annotations

from pathlib import Path

import torch

from optimlab.data.core import (
    Dataset,
    DatasetUnavailable,
    Split,
    Task,
    default_data_dir,
    device_batches,
    from_tensors,
    halve_test,
)

__all__ = [
    "DATASET_NAMES",
    "Dataset",
    "DatasetUnavailable",
    "Split",
    "Task",
    "default_data_dir",
    "device_batches",
    "from_tensors",
    "load_dataset",
]

DATASET_NAMES = ("digits", "line", "mnist", "fashion-mnist", "cifar10")


def _digits(seed: int, device: str | torch.device) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images).to(torch.float32).div_(16.0).unsqueeze(1)
    y = torch.from_numpy(bunch.target).to(torch.int64)
    return from_tensors(
        x, y, task="classification", val_fraction=0.2, test_fraction=0.2, seed=seed,
        device=device, name="digits",
    )


def _line(seed: int, device: str | torch.device) -> Dataset:
    x = torch.arange(-5.0, 5.0, 0.1).unsqueeze(1)
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    y = -5.0 * x + 1.0 + 0.4 * noise
    return from_tensors(x, y, task="regression", seed=seed, device=device, name="line")


def load_dataset(
    name: str,
    *,
    data_dir: str | Path | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> Dataset:
    """Load dataset ``name`` (one of :data:`DATASET_NAMES`) onto ``device``.

    ``data_dir`` (default :func:`default_data_dir`) is where the torchvision datasets' files
    are looked for; ``digits`` and ``line`` need no files. Unknown names and missing files
    raise :class:`DatasetUnavailable`.

    Example::

        data = load_dataset("digits", seed=0)
        len(data.train), data.input_shape, data.num_outputs   # (1079, (1, 8, 8), 10)
    """
    key = name.lower().replace("_", "-")
    if key == "digits":
        return _digits(seed, device)
    if key == "line":
        return _line(seed, device)
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    # torchvision costs ~2 s to import: only the datasets that need it pay for it.
    from optimlab.data.torchvision_sets import load_cifar10, load_mnist_family

    if key in ("mnist", "fashion-mnist"):
        train, test, classes = load_mnist_family(key, root)
    elif key == "cifar10":
        train, test, classes = load_cifar10(root)
    else:
        raise DatasetUnavailable(f"unknown dataset {name!r}; valid: {', '.join(DATASET_NAMES)}")
    return halve_test(key, train, test, classes, seed=seed, device=device)
