"""MNIST and Fashion-MNIST read by torchvision's own dataset classes, never downloaded.

The files are looked for in torchvision's layout, ``<root>/MNIST/raw/`` or
``<root>/FashionMNIST/raw/``, each as ``*-ubyte`` or gzipped ``*-ubyte.gz`` (as distributed),
and parsed by ``torchvision.datasets.MNIST`` / ``FashionMNIST`` (``download=False``).

Before torchvision reads, each file's IDX header and size are checked — a check, not a second
parser: four bytes ``0, 0, 0x08, ndim`` (unsigned bytes), ``ndim`` big-endian uint32 sizes,
then exactly that many bytes; images ``(N, 28, 28)``, labels ``(N,)``, as many labels as images.
After it reads, the labels are checked to be 0..9. A file that is not what it should be (garbage,
truncated, a broken gzip, a foreign IDX file) is a :class:`~optimlab.data.core.DatasetUnavailable`
naming the file and the reason, where torchvision alone gives a bare ``AssertionError``, a
``RuntimeError`` from a ``view`` or, for 28×27 images, a label 12 or 5 labels for 6 images, no
error at all.

Where torchvision reads: a private temporary folder laid out as ``<tmp>/MNIST/raw/``, holding a
symlink to each plain file and each ``.gz`` unpacked while it is checked, removed after the read.
Chosen over unpacking beside the ``.gz`` with :mod:`optimlab.atomic` (optimlab's old behaviour,
and what torchvision's own ``download`` leaves) because:

- nothing is written into the data folder: read-only and shared data folders work, and a ``.gz``
  replaced later is never shadowed by a stale unpacked copy (the old code read that copy);
- torchvision reads exactly the files checked: a ``MNIST/processed/training.pt`` beside them,
  which its legacy path would read instead of ``raw/``, is never seen;
- the size check must decompress the whole ``.gz`` anyway; its bytes go to the folder in the
  same pass.

The cost is decompressing on every load: the full-size gzipped set (70 000 images, 55 MB
unpacked, that much temporary disk during the read) loaded in 1.06 s against 0.41 s for the same
files unpacked (medians of 5 on 2 busy cores; the in-memory IDX parser this replaced took 0.96 s
and 0.37 s); plain files cost nothing extra (symlinks).
"""

from __future__ import annotations

import gzip
import os
import struct
import tempfile
import zlib
from pathlib import Path
from typing import BinaryIO

from torch import Tensor

from optimlab.data.core import DatasetUnavailable, missing_files

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
         "t10k-labels-idx1-ubyte")
_UBYTE = 0x08
_MAX_BYTES = 256 * 2**20  # the largest MNIST file is 47 MB: refuse a gzip bomb long before
_CHUNK = 2**20


class NotAnIdxFile(Exception):
    """The file is not the IDX file it should be (the message says why)."""


def idx_shape(head: bytes, size: int, ndim: int) -> tuple[int, ...]:
    """The shape declared by an IDX file of unsigned bytes starting with ``head``, ``size`` bytes
    long in all; :class:`NotAnIdxFile` if it is not one of ``ndim`` dimensions or its size is
    not the header's."""
    if len(head) < 4 or head[:2] != b"\0\0":
        raise NotAnIdxFile("not an IDX file (it must start with two zero bytes)")
    kind, dims = head[2], head[3]
    if kind != _UBYTE or dims != ndim:
        raise NotAnIdxFile(f"expected an IDX file of unsigned bytes with {ndim} dimension(s), "
                           f"got type 0x{kind:02x} with {dims}")
    start = 4 + 4 * ndim
    if len(head) < start:
        raise NotAnIdxFile("truncated inside the header")
    shape = struct.unpack(f">{ndim}I", head[4:start])
    expected = 1
    for s in shape:
        expected *= s
    if size - start != expected:
        raise NotAnIdxFile(f"header says shape {shape} = {expected} bytes of data, the file has "
                           f"{size - start}" + (" (truncated)" if size - start < expected else ""))
    return shape


def _read_gzip_chunk(gz: gzip.GzipFile) -> bytes:
    try:
        return gz.read(_CHUNK)
    except EOFError:
        raise NotAnIdxFile("the gzip data is truncated (the file ends early)") from None
    except (OSError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise NotAnIdxFile(f"not a valid gzip file ({e})") from None


def _unpack(packed: BinaryIO, dst: Path, head_size: int) -> tuple[bytes, int]:
    """Unpack the gzip stream ``packed`` into ``dst``; its first ``head_size`` bytes and length.

    Errors reading the stream are :class:`NotAnIdxFile`; errors writing ``dst`` are OSError.
    """
    head, size = b"", 0
    with gzip.GzipFile(fileobj=packed) as gz, open(dst, "xb") as out:
        while chunk := _read_gzip_chunk(gz):
            head = (head + chunk[:head_size])[:head_size] if len(head) < head_size else head
            size += len(chunk)
            if size > _MAX_BYTES:
                raise NotAnIdxFile(f"unpacks to more than {_MAX_BYTES >> 20} MiB, larger than "
                                   "MNIST")
            out.write(chunk)
    return head, size


def _stage(src: Path, staged: Path, ndim: int) -> tuple[int, ...]:
    """Put ``src``'s IDX content at ``staged`` (a symlink, or the unpacked ``.gz``) and return
    its checked shape."""
    try:
        f = open(src, "rb")
    except OSError as e:
        raise DatasetUnavailable(f"cannot read {src}: {e.strerror or e}") from None
    head_size = 4 + 4 * ndim
    with f:
        try:
            if src.suffix == ".gz":
                head, size = _unpack(f, staged, head_size)
            else:
                head, size = f.read(head_size), os.fstat(f.fileno()).st_size
                staged.symlink_to(src.resolve())
            return idx_shape(head, size, ndim)
        except NotAnIdxFile as e:
            raise DatasetUnavailable(f"{src} is not an MNIST file: {e}") from None
        except OSError as e:  # reading src is handled above: this is the temporary folder
            raise DatasetUnavailable(f"cannot put {src.name} into the temporary folder "
                                     f"{staged.parent}: {e.strerror or e} (set TMPDIR to a "
                                     "folder with room)") from None


def _source(raw: Path, name: str) -> Path:
    return raw / name if (raw / name).is_file() else raw / f"{name}.gz"


def _stage_part(raw: Path, staged: Path, part: str) -> None:
    """Check and stage ``part`` ("train" or "t10k"): images (N, 28, 28) and N labels."""
    images, labels = f"{part}-images-idx3-ubyte", f"{part}-labels-idx1-ubyte"
    n, *hw = _stage(_source(raw, images), staged / images, 3)
    (n_labels,) = _stage(_source(raw, labels), staged / labels, 1)
    if hw != [28, 28]:
        raise DatasetUnavailable(f"{_source(raw, images)} is not an MNIST file: images must be "
                                 f"28×28, got {hw[0]}×{hw[1]}")
    if n_labels != n:
        raise DatasetUnavailable(f"{raw}: {part}-labels has {n_labels} labels for {n} images "
                                 f"in {part}-images")


def load_mnist_family(name: str, root: Path) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor],
                                                      tuple[str, ...]]:
    """Read ``<root>/<MNIST|FashionMNIST>/raw/`` and return (train, test, class names).

    Normalisation: pixels 0..255 → [0, 1] (``ToTensor``, as seed 004); shape (N, 1, 28, 28).
    """
    from torchvision import datasets  # only these datasets need it (start-up time)

    cls = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}[name]
    raw = root / cls.__name__ / "raw"  # torchvision's MNIST.raw_folder
    missing_files(name, raw, FILES, alternative=".gz")
    with tempfile.TemporaryDirectory(prefix="optimlab-mnist-") as private:
        staged = Path(private, cls.__name__, "raw")
        staged.mkdir(parents=True)
        for part in ("train", "t10k"):
            _stage_part(raw, staged, part)
        sets = [cls(private, train=train, download=False) for train in (True, False)]
    for part, s in zip(("train", "t10k"), sets, strict=True):
        if len(s.targets) and int(s.targets.max()) > 9:
            raise DatasetUnavailable(f"{_source(raw, f'{part}-labels-idx1-ubyte')} is not an "
                                     f"MNIST file: labels must be 0..9, found "
                                     f"{int(s.targets.max())}")
    train, test = ((s.data.unsqueeze(1).float().div_(255.0), s.targets.long()) for s in sets)
    return train, test, tuple(str(c) for c in cls.classes)
