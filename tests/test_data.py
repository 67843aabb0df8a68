"""Datasets: bundled ones, user tensors, torchvision raw formats written in tmp_path, batching."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from optimlab.data import (
    DATASET_NAMES,
    DatasetUnavailable,
    Split,
    device_batches,
    from_tensors,
    load_dataset,
)
from optimlab.errors import UserError


def test_digits_split_sizes_normalisation_and_coverage():
    d = load_dataset("digits", seed=0)
    assert (len(d.train), len(d.val), len(d.test)) == (1079, 359, 359)
    assert d.input_shape == (1, 8, 8) and d.num_outputs == 10 and d.task == "classification"
    assert d.class_names == tuple(str(i) for i in range(10))
    x = torch.cat([d.train.x, d.val.x, d.test.x])
    y = torch.cat([d.train.y, d.val.y, d.test.y])
    assert x.dtype == torch.float32 and x.min() == 0 and x.max() == 1
    ref = load_digits()
    # the three splits are a permutation of the whole set: same class counts, same pixel sum
    assert torch.equal(torch.bincount(y), torch.from_numpy(np.bincount(ref.target)))
    assert x.double().sum().item() == pytest.approx(ref.images.sum() / 16.0)


def test_split_is_seeded():
    a, b, c = (load_dataset("digits", seed=s) for s in (0, 0, 1))
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.train.y, c.train.y)


def test_line_matches_seed_001_recipe():
    d = load_dataset("line", seed=3)
    x = torch.cat([d.train.x, d.val.x, d.test.x]).squeeze(1)
    y = torch.cat([d.train.y, d.val.y, d.test.y]).squeeze(1)
    order = torch.argsort(x)
    assert torch.allclose(x[order], torch.arange(-5.0, 5.0, 0.1))
    noise = torch.randn(100, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(y[order], -5 * x[order] + 1 + 0.4 * noise)
    assert d.task == "regression" and d.num_outputs == 1 and d.class_names == ()


def test_from_tensors_infers_task_and_fractions():
    x = torch.randn(100, 3)
    d = from_tensors(x, torch.arange(100) % 4, val_fraction=0.1, test_fraction=0.2)
    assert d.task == "classification" and d.num_outputs == 4
    assert (len(d.train), len(d.val), len(d.test)) == (70, 10, 20)
    r = from_tensors(x, torch.randn(100))
    assert r.task == "regression" and r.train.y.shape[1] == 1 and r.input_shape == (3,)
    with pytest.raises(UserError, match="same number of examples"):
        from_tensors(x, torch.zeros(99))
    with pytest.raises(UserError, match="val_fraction"):
        from_tensors(x, torch.zeros(100), val_fraction=1.5)
    with pytest.raises(UserError, match="no training"):
        from_tensors(x, torch.zeros(100), val_fraction=0.5, test_fraction=0.5)


def test_device_batches_follow_a_seeded_randperm():
    split = Split(torch.arange(10.0).unsqueeze(1), torch.arange(10))
    batches = list(device_batches(split, 4, torch.Generator().manual_seed(7)))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    expected = torch.randperm(10, generator=torch.Generator().manual_seed(7))
    assert torch.equal(torch.cat([y for _, y in batches]), expected)
    assert torch.equal(torch.cat([x for x, _ in batches]).squeeze(1), expected.float())
    gen = torch.Generator().manual_seed(7)
    first = torch.cat([y for _, y in device_batches(split, 3, gen)])
    second = torch.cat([y for _, y in device_batches(split, 3, gen)])
    assert torch.equal(first, expected) and not torch.equal(first, second)
    with pytest.raises(UserError, match="batch_size"):
        next(device_batches(split, 0, gen))


def test_unknown_and_missing_datasets(tmp_path):
    with pytest.raises(DatasetUnavailable, match="valid: " + ", ".join(DATASET_NAMES)):
        load_dataset("imagenet")
    for name, file in (("mnist", "train-images-idx3-ubyte"), ("fashion-mnist", "t10k-labels"),
                       ("cifar10", "data_batch_1")):
        with pytest.raises(DatasetUnavailable) as e:
            load_dataset(name, data_dir=tmp_path)
        msg = str(e.value)
        assert name in msg and str(tmp_path) in msg and file in msg and "'digits'" in msg


def test_default_data_dir_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTIMLAB_DATA", str(tmp_path / "here"))
    with pytest.raises(DatasetUnavailable, match=str(tmp_path / "here")):
        load_dataset("mnist")


def _write_idx(path: Path, array: np.ndarray, compress: bool) -> None:
    header = struct.pack(">I", 0x0800 | array.ndim) + b"".join(
        struct.pack(">I", s) for s in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        payload = gzip.compress(payload)
    path.write_bytes(payload)


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_family_from_idx_files(tmp_path, name, folder):
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = {"train": rng.integers(0, 256, (12, 28, 28)),
              "t10k": rng.integers(0, 256, (10, 28, 28))}
    labels = {"train": np.arange(12) % 10, "t10k": np.arange(10)}
    for part in ("train", "t10k"):  # train files gzipped (as distributed), test files plain
        _write_idx(raw / f"{part}-images-idx3-ubyte", images[part], compress=part == "train")
        _write_idx(raw / f"{part}-labels-idx1-ubyte", labels[part], compress=part == "train")
    d = load_dataset(name, data_dir=tmp_path, seed=1)
    assert (len(d.train), len(d.val), len(d.test)) == (12, 5, 5)
    assert d.input_shape == (1, 28, 28) and d.num_outputs == 10
    assert torch.allclose(d.train.x[:, 0], torch.from_numpy(images["train"]).float() / 255)
    assert torch.equal(d.train.y, torch.from_numpy(labels["train"]))
    order = torch.randperm(10, generator=torch.Generator().manual_seed(1))
    assert torch.equal(d.val.y, order[:5]) and torch.equal(d.test.y, order[5:])
    assert torch.allclose(d.test.x[:, 0], torch.from_numpy(images["t10k"][order[5:]]).float() / 255)


def test_cifar10_from_pickled_batches(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batches[name] = {"data": rng.integers(0, 256, (4, 3072)).astype(np.uint8),
                         "labels": list(rng.integers(0, 10, 4))}
        (folder / name).write_bytes(pickle.dumps(batches[name]))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
             "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    d = load_dataset("cifar10", data_dir=tmp_path)
    assert (len(d.train), len(d.val), len(d.test)) == (20, 2, 2)
    assert d.input_shape == (3, 32, 32) and d.class_names == tuple(names)
    first = batches["data_batch_1"]["data"][0]  # 1024 red, 1024 green, 1024 blue, row-major
    expected = torch.from_numpy(first.reshape(3, 32, 32)).float() / 255 * 2 - 1
    assert torch.allclose(d.train.x[0], expected, atol=1e-6)
    assert d.train.y.tolist() == [int(v) for i in range(1, 6)
                                  for v in batches[f"data_batch_{i}"]["labels"]]


# -- nothing in a data file is executed; a bad file names itself and the reason --------------

def _cifar_folder(tmp_path: Path, protocol: int = 2) -> dict[str, dict]:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(1)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batches[name] = {"batch_label": f"batch {name}", "filenames": [b"a.png", b"b.png"],
                         "data": rng.integers(0, 256, (2, 3072)).astype(np.uint8),
                         "labels": [int(v) for v in rng.integers(0, 10, 2)]}
        (folder / name).write_bytes(pickle.dumps(batches[name], protocol=protocol))
    meta = {"label_names": [f"class{i}" for i in range(10)], "num_cases_per_batch": 2}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=protocol))
    return batches


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar10_reader_matches_torchvisions(tmp_path, monkeypatch, protocol):
    """The restricted reader gives torchvision's CIFAR10 (which reads with plain pickle)."""
    import torchvision.datasets.cifar
    from torchvision.datasets import CIFAR10

    _cifar_folder(tmp_path, protocol)
    d = load_dataset("cifar10", data_dir=tmp_path, seed=0)
    # torchvision's own class, unmodified but for the md5 check of the official files
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)
    ref_train, ref_test = (CIFAR10(str(tmp_path), train=t) for t in (True, False))

    def chw(data: np.ndarray) -> torch.Tensor:  # torchvision's HWC uint8 → our CHW in [-1, 1]
        return torch.from_numpy(data).permute(0, 3, 1, 2).float() / 255 * 2 - 1

    assert torch.allclose(d.train.x, chw(ref_train.data), atol=1e-6)
    assert d.train.y.tolist() == ref_train.targets
    order = torch.randperm(len(ref_test), generator=torch.Generator().manual_seed(0))
    assert torch.allclose(d.test.x, chw(ref_test.data)[order[len(order) // 2:]], atol=1e-6)
    assert d.val.y.tolist() == [ref_test.targets[i] for i in order[: len(order) // 2]]
    assert d.class_names == tuple(ref_train.classes) == tuple(f"class{i}" for i in range(10))


class _RunsCode:
    """A pickle payload that runs a shell command when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("file", ["data_batch_3", "test_batch", "batches.meta"])
def test_cifar10_file_that_runs_code_is_refused_and_nothing_runs(tmp_path, file):
    _cifar_folder(tmp_path)
    marker = tmp_path / "pwned"
    evil = pickle.dumps({"data": _RunsCode(marker), "labels": [0],
                         "label_names": _RunsCode(marker)}, protocol=2)
    pickle.loads(evil)  # the payload is live: a plain unpickler runs it
    assert marker.exists()
    marker.unlink()
    (tmp_path / "cifar-10-batches-py" / file).write_bytes(evil)
    with pytest.raises(DatasetUnavailable) as e:
        load_dataset("cifar10", data_dir=tmp_path)
    assert not marker.exists()
    msg = str(e.value)
    assert f"{file} is not a CIFAR-10 batch file" in msg and "posix.system" in msg


@pytest.mark.parametrize(("content", "why"), [
    (b"garbage, not a pickle", "not a readable pickle"),
    (pickle.dumps([1, 2]), "expected a dict with 'data' and 'labels'"),
    (pickle.dumps({"data": np.zeros((2, 5), np.uint8), "labels": [0, 1]}), "shape (N, 3072)"),
    (pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}), "0..9"),
    (pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}), "2 integers"),
    (pickle.dumps({"data": np.zeros((1, 3072), np.uint8), "labels": [Path("x")]}),
     "pathlib"),
    (b"", "not a readable pickle"),
])
def test_cifar10_files_that_are_not_batches(tmp_path, content, why):
    _cifar_folder(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(content)
    with pytest.raises(DatasetUnavailable, match="test_batch is not a CIFAR-10 batch file") as e:
        load_dataset("cifar10", data_dir=tmp_path)
    assert why in str(e.value)


def test_cifar10_meta_is_checked(tmp_path):
    _cifar_folder(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "batches.meta").write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(DatasetUnavailable, match="batches.meta is not a CIFAR-10 batch file"):
        load_dataset("cifar10", data_dir=tmp_path)


def _mnist_folder(tmp_path: Path, compress: bool = False) -> Path:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for part, n in (("train", 6), ("t10k", 4)):
        _write_idx(raw / f"{part}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), compress)
        _write_idx(raw / f"{part}-labels-idx1-ubyte", np.arange(n) % 10, compress)
    return raw


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_mnist_family_equals_torchvisions_classes(tmp_path, name):
    from torchvision.datasets import MNIST, FashionMNIST

    cls = {"mnist": MNIST, "fashion-mnist": FashionMNIST}[name]
    raw = _mnist_folder(tmp_path)
    if cls is FashionMNIST:
        raw.parent.rename(raw.parent.with_name("FashionMNIST"))
    d = load_dataset(name, data_dir=tmp_path, seed=2)
    ref_train, ref_test = (cls(str(tmp_path), train=t, download=False) for t in (True, False))
    assert torch.equal(d.train.x, ref_train.data.unsqueeze(1).float() / 255)
    assert torch.equal(d.train.y, ref_train.targets)
    order = torch.randperm(4, generator=torch.Generator().manual_seed(2))
    assert torch.equal(d.val.x, ref_test.data[order[:2]].unsqueeze(1).float() / 255)
    assert torch.equal(d.test.y, ref_test.targets[order[2:]])
    assert d.class_names == tuple(cls.classes)


def test_mnist_gz_unpacks_into_a_private_folder_removed_after(tmp_path, monkeypatch):
    """torchvision reads raw files: each .gz is unpacked into a temporary folder, not beside it."""
    import tempfile

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    raw = _mnist_folder(tmp_path / "gz", compress=True)
    before = sorted(p.name for p in raw.iterdir())
    d = load_dataset("mnist", data_dir=tmp_path / "gz")
    assert sorted(p.name for p in raw.iterdir()) == before and not any(scratch.iterdir())
    _mnist_folder(tmp_path / "plain")  # the same files, not gzipped
    plain = load_dataset("mnist", data_dir=tmp_path / "plain")
    assert torch.equal(d.train.x, plain.train.x) and torch.equal(d.test.y, plain.test.y)
    _truncate_gz(raw / "t10k-images-idx3-ubyte.gz")  # a refused file leaves nothing behind too
    with pytest.raises(DatasetUnavailable, match="truncated"):
        load_dataset("mnist", data_dir=tmp_path / "gz")
    assert not any(scratch.iterdir())


def test_mnist_reads_the_checked_raw_files_not_legacy_processed_ones(tmp_path):
    """torchvision's MNIST prefers ``processed/training.pt`` when present; we never see it."""
    from torchvision.datasets import MNIST

    raw = _mnist_folder(tmp_path)
    processed = raw.parent / "processed"
    processed.mkdir()
    other = (torch.full((3, 28, 28), 7, dtype=torch.uint8), torch.tensor([1, 2, 3]))
    for file in ("training.pt", "test.pt"):
        torch.save(other, processed / file)
    assert torch.equal(MNIST(str(tmp_path), train=True).targets, other[1])  # the trap is armed
    d = load_dataset("mnist", data_dir=tmp_path)
    assert len(d.train) == 6 and torch.equal(d.train.y, torch.arange(6))


def _truncate_gz(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-20])


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-7])


@pytest.mark.parametrize(("compress", "damage", "file", "why"), [
    (True, _truncate_gz, "train-images-idx3-ubyte.gz", "gzip data is truncated"),
    (True, lambda p: p.write_bytes(b"not gzip at all"), "t10k-labels-idx1-ubyte.gz",
     "not a valid gzip file"),
    (False, lambda p: p.write_bytes(b"\x89PNG garbage"), "train-labels-idx1-ubyte",
     "not an IDX file"),
    (False, _truncate, "t10k-images-idx3-ubyte", "(truncated)"),
    (False, lambda p: p.write_bytes(b"\0\0\x0d\x03" + bytes(12)), "train-images-idx3-ubyte",
     "got type 0x0d"),
    (False, lambda p: _write_idx(p, np.zeros((6, 28, 27)), False), "train-images-idx3-ubyte",
     "28×28"),
    (False, lambda p: _write_idx(p, np.zeros(5), False), "train-labels-idx1-ubyte",
     "5 labels for 6 images"),
    (False, lambda p: _write_idx(p, np.full(6, 12), False), "train-labels-idx1-ubyte",
     "found 12"),
])
def test_mnist_files_that_are_not_mnist_name_the_file_and_reason(tmp_path, compress, damage,
                                                                  file, why):
    raw = _mnist_folder(tmp_path, compress)
    damage(raw / file)
    with pytest.raises(DatasetUnavailable) as e:
        load_dataset("mnist", data_dir=tmp_path)
    msg = str(e.value)
    assert why in msg, msg
    assert file.split("-")[0] in msg and "Traceback" not in msg


def test_cifar10_batches_written_by_numpy_1_read_too(tmp_path):
    """The official batches name ``numpy.core.multiarray`` (numpy 1), not ``numpy._core``."""
    batches = _cifar_folder(tmp_path, protocol=2)
    folder = tmp_path / "cifar-10-batches-py"
    for name in batches:
        data = (folder / name).read_bytes()
        assert b"numpy._core.multiarray\n" in data
        (folder / name).write_bytes(data.replace(b"numpy._core.multiarray\n",
                                                 b"numpy.core.multiarray\n"))
    d = load_dataset("cifar10", data_dir=tmp_path)
    first = batches["data_batch_1"]["data"][0]
    assert torch.allclose(d.train.x[0], torch.from_numpy(first.reshape(3, 32, 32)) / 255 * 2 - 1)
