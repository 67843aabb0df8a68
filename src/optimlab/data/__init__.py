"""Datasets by name, seeded splits and device-resident batching.

=================  ==========================  ===============================  ==================
name               source                      normalisation                    split (seeded)
=================  ==========================  ===============================  ==================
``digits``         scikit-learn's bundled      pixels 0..16 → [0, 1];           random 60/20/20
                   8×8 digits (1797), offline  shape (1, 8, 8), 10 classes
``line``           seed 001: x = arange(-5, 5,  none; x (1,), y (1,) regression  random 70/15/15
                   0.1), y = −5x + 1 + 0.4·ε
``mnist``          MNIST IDX files             0..255 → [0, 1]; (1, 28, 28)     official train;
``fashion-mnist``  Fashion-MNIST IDX files     0..255 → [0, 1]; (1, 28, 28)     official test
``cifar10``        CIFAR-10 Python batches     [0, 1] → [-1, 1]; (3, 32, 32)    halved at random
                                                                                 → val / test
=================  ==========================  ===============================  ==================

``seed`` drives the split (and the noise of ``line``); the same seed gives the same split.
The files are looked for in torchvision's layout under ``data_dir``. MNIST and Fashion-MNIST are
read by torchvision's own ``MNIST``/``FashionMNIST`` after :mod:`optimlab.data.mnist` checks each
file's header and size; the CIFAR-10 pickles are read by :mod:`optimlab.data.cifar10`'s unpickler,
which admits only plain data and numpy arrays (torchvision's ``CIFAR10`` unpickles with plain
pickle, which runs code), with torchvision's file list and layout. Nothing in a data file is
executed, and a file that is not what it should be is an error naming it and the reason.
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
    "DATASET_SOURCES",
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
#: where each dataset's examples come from, and their shape (``optimlab list``)
DATASET_SOURCES = {
    "digits": "scikit-learn's bundled 8×8 digits, offline; (1, 8, 8), 10 classes",
    "line": "y = -5x + 1 + noise on x in [-5, 5) (regression); (1,) → (1,)",
    "mnist": "MNIST IDX files in <data-dir>/MNIST/raw/; (1, 28, 28), 10 classes",
    "fashion-mnist": "Fashion-MNIST IDX files in <data-dir>/FashionMNIST/raw/; (1, 28, 28), "
                     "10 classes",
    "cifar10": "CIFAR-10 Python batches in <data-dir>/cifar-10-batches-py/; (3, 32, 32), "
               "10 classes",
}


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

    ``data_dir`` (default :func:`default_data_dir`) is where MNIST's, Fashion-MNIST's and
    CIFAR-10's files are looked for (torchvision's layout); ``digits`` and ``line`` need no
    files. Unknown names and missing files raise :class:`DatasetUnavailable`, and so do files
    that are not what they should be (the message names the file and the reason).

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
    if key in ("mnist", "fashion-mnist"):
        from optimlab.data.mnist import load_mnist_family

        train, test, classes = load_mnist_family(key, root)
    elif key == "cifar10":
        from optimlab.data.cifar10 import load_cifar10

        train, test, classes = load_cifar10(root)
    else:
        raise DatasetUnavailable(f"unknown dataset {name!r}; valid: {', '.join(DATASET_NAMES)}")
    return halve_test(key, train, test, classes, seed=seed, device=device)
