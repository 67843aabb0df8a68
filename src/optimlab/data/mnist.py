"""MNIST and Fashion-MNIST read from their IDX files, never downloaded.

The files are looked for in torchvision's layout, ``<root>/MNIST/raw/`` or
``<root>/FashionMNIST/raw/``, each as ``*-ubyte`` or gzipped ``*-ubyte.gz`` (as distributed; read
in memory, nothing is written into the data folder). The IDX format is four header bytes
``0, 0, type, ndim`` (type 0x08: unsigned bytes), ``ndim`` big-endian uint32 sizes, then the
values. Every file is checked against what MNIST holds — images ``(N, 28, 28)``, labels ``(N,)``
in 0..9, as many labels as images — and a file that is not one (garbage, truncated, a broken
gzip) is a :class:`~optimlab.data.core.DatasetUnavailable` naming the file and the reason.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from optimlab.data.core import DatasetUnavailable, missing_files

FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
# The class names torchvision gives these datasets (``MNIST.classes``, ``FashionMNIST.classes``).
CLASSES = {
    "mnist": tuple(f"{i} - {w}" for i, w in enumerate(
        ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"))),
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"),
}
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
         "t10k-labels-idx1-ubyte")
_UBYTE = 0x08
_MAX_BYTES = 256 * 2**20  # the largest MNIST file is 47 MB: refuse a gzip bomb long before


class NotAnIdxFile(Exception):
    """The file is not the IDX file it should be (the message says why)."""


def _read_bytes(path: Path) -> bytes:
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            data = f.read(_MAX_BYTES + 1)
    except EOFError:
        raise NotAnIdxFile("the gzip data is truncated (the file ends early)") from None
    except (OSError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise NotAnIdxFile(f"not a valid gzip file ({e})") from None
    if len(data) > _MAX_BYTES:
        raise NotAnIdxFile(f"unpacks to more than {_MAX_BYTES >> 20} MiB, larger than MNIST")
    return data


def parse_idx(data: bytes, ndim: int) -> np.ndarray:
    """The unsigned-byte array of ``ndim`` dimensions an IDX file holds; NotAnIdxFile if not."""
    if len(data) < 4 or data[:2] != b"\0\0":
        raise NotAnIdxFile("not an IDX file (it must start with two zero bytes)")
    kind, dims = data[2], data[3]
    if kind != _UBYTE or dims != ndim:
        raise NotAnIdxFile(f"expected an IDX file of unsigned bytes with {ndim} dimension(s), "
                           f"got type 0x{kind:02x} with {dims}")
    start = 4 + 4 * ndim
    if len(data) < start:
        raise NotAnIdxFile("truncated inside the header")
    shape = struct.unpack(f">{ndim}I", data[4:start])
    size = int(np.prod(shape, dtype=np.int64))
    if len(data) - start != size:
        raise NotAnIdxFile(f"header says shape {shape} = {size} bytes of data, the file has "
                           f"{len(data) - start}" + (" (truncated)" if len(data) - start < size
                                                      else ""))
    return np.frombuffer(data, dtype=np.uint8, offset=start).reshape(shape)


def _read_idx(raw: Path, name: str, ndim: int) -> np.ndarray:
    path = raw / name if (raw / name).is_file() else raw / f"{name}.gz"
    try:
        return parse_idx(_read_bytes(path), ndim)
    except NotAnIdxFile as e:
        raise DatasetUnavailable(f"{path} is not an MNIST file: {e}") from None
    except OSError as e:
        raise DatasetUnavailable(f"cannot read {path}: {e.strerror or e}") from None


def _part(raw: Path, part: str) -> tuple[Tensor, Tensor]:
    """``part`` ("train" or "t10k") as (images (N, 1, 28, 28) in [0, 1], labels int64 (N,))."""
    images = _read_idx(raw, f"{part}-images-idx3-ubyte", 3)
    labels = _read_idx(raw, f"{part}-labels-idx1-ubyte", 1)
    if images.shape[1:] != (28, 28):
        raise DatasetUnavailable(f"{raw / part}-images-idx3-ubyte is not an MNIST file: images "
                                 f"must be 28×28, got {images.shape[1]}×{images.shape[2]}")
    if len(labels) != len(images):
        raise DatasetUnavailable(f"{raw}: {part}-labels has {len(labels)} labels for "
                                 f"{len(images)} images in {part}-images")
    if len(labels) and int(labels.max()) > 9:
        raise DatasetUnavailable(f"{raw / part}-labels-idx1-ubyte is not an MNIST file: labels "
                                 f"must be 0..9, found {int(labels.max())}")
    x = torch.tensor(images).unsqueeze(1).float().div_(255.0)
    return x, torch.tensor(labels).long()


def load_mnist_family(name: str, root: Path) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor],
                                                      tuple[str, ...]]:
    """Read ``<root>/<MNIST|FashionMNIST>/raw/`` and return (train, test, class names).

    Normalisation: pixels 0..255 → [0, 1] (``ToTensor``, as seed 004); shape (N, 1, 28, 28).
    """
    raw = root / FOLDERS[name] / "raw"
    missing_files(name, raw, FILES, alternative=".gz")
    return _part(raw, "train"), _part(raw, "t10k"), CLASSES[name]
