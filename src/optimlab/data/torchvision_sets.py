"""MNIST, Fashion-MNIST and CIFAR-10 read from torchvision's on-disk layout, never downloaded.

The files are parsed by torchvision's own dataset classes (``download=False``); we only check
first that the files are there, so a missing folder gives one :class:`DatasetUnavailable`
naming the dataset, the folder looked in and the files expected. Gzipped IDX files
(``*-ubyte.gz``, as distributed) are unpacked next to themselves on first use.

CIFAR-10: torchvision insists on the md5 of each official batch; we check that the batch files
exist and let torchvision unpickle them (they are pickles — only point ``data_dir`` at files you
trust, as with torchvision itself).
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import torch
from torch import Tensor
from torchvision import datasets as tvd

from optimlab.atomic import atomic_open
from optimlab.data.core import DatasetUnavailable

_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
CIFAR10_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")
MNIST_FAMILY = {"mnist": tvd.MNIST, "fashion-mnist": tvd.FashionMNIST}


def _unavailable(name: str, folder: Path, files: tuple[str, ...], missing: list[str]) -> None:
    raise DatasetUnavailable(
        f"dataset {name!r} is not available offline: looked in {folder} for "
        f"{', '.join(files)} (missing: {', '.join(missing)}); put torchvision's files there "
        f"(--data-dir / $OPTIMLAB_DATA) or use the bundled dataset 'digits'"
    )


def _gunzip_atomically(src: Path, dst: Path) -> None:
    with gzip.open(src, "rb") as fin, atomic_open(dst) as fout:
        shutil.copyfileobj(fin, fout)


def load_mnist_family(name: str, root: Path) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor],
                                                      tuple[str, ...]]:
    """Read ``<root>/<Class>/raw/*-ubyte`` and return (train, test, class names).

    Normalisation: pixels 0..255 → [0, 1] (``ToTensor``, as seed 004); shape (N, 1, 28, 28).
    """
    cls = MNIST_FAMILY[name]
    raw = root / cls.__name__ / "raw"
    missing = []
    for f in _MNIST_FILES:
        if not (raw / f).is_file():
            if (raw / f"{f}.gz").is_file():
                _gunzip_atomically(raw / f"{f}.gz", raw / f)
            else:
                missing.append(f)
    if missing:
        _unavailable(name, raw, tuple(f + "[.gz]" for f in _MNIST_FILES), missing)
    try:
        sets = [cls(str(root), train=t, download=False) for t in (True, False)]
    except (RuntimeError, AssertionError, ValueError, TypeError) as e:
        raise DatasetUnavailable(f"dataset {name!r}: cannot read the files in {raw}: {e}") from e
    train, test = ((s.data.unsqueeze(1).float().div_(255.0), s.targets.long()) for s in sets)
    classes = tuple(str(c) for c in cls.classes)
    return train, test, classes


class _LocalCIFAR10(tvd.CIFAR10):
    """torchvision's CIFAR-10 reader, checking that the files exist instead of their md5."""

    def _check_integrity(self) -> bool:
        return all(Path(self.root, self.base_folder, f).is_file() for f in CIFAR10_FILES)

    def _load_meta(self) -> None:
        import pickle

        with open(Path(self.root, self.base_folder, self.meta["filename"]), "rb") as f:
            self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}


def load_cifar10(root: Path) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor],
                                      tuple[str, ...]]:
    """Read ``<root>/cifar-10-batches-py/`` and return (train, test, class names).

    Normalisation: pixels 0..255 → [0, 1] → ``(x - 0.5) / 0.5`` ∈ [-1, 1] (seed 000's
    ``Normalize((0.5,)*3, (0.5,)*3)``); shape (N, 3, 32, 32).
    """
    folder = root / _LocalCIFAR10.base_folder
    missing = [f for f in CIFAR10_FILES if not (folder / f).is_file()]
    if missing:
        _unavailable("cifar10", folder, CIFAR10_FILES, missing)
    try:
        sets = [_LocalCIFAR10(str(root), train=t, download=False) for t in (True, False)]
    except Exception as e:  # a corrupt pickle can raise almost anything
        msg = f"dataset 'cifar10': cannot read the files in {folder}: {e}"
        raise DatasetUnavailable(msg) from e

    def tensors(s: tvd.CIFAR10) -> tuple[Tensor, Tensor]:
        x = torch.from_numpy(s.data).permute(0, 3, 1, 2).float().div_(255.0)
        return x.sub_(0.5).div_(0.5).contiguous(), torch.tensor(s.targets, dtype=torch.int64)

    return tensors(sets[0]), tensors(sets[1]), tuple(str(c) for c in sets[0].classes)
