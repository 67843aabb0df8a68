"""Checkpoints written atomically and read back with ``torch.load(weights_only=True)``.

A checkpoint is one file, ``checkpoint.pt``, holding only what ``weights_only`` loading
accepts (tensors, dicts, lists, numbers, strings): model, optimizer, scheduler and early
stopping state, every RNG state (torch CPU/CUDA, the data-order generator, Python, NumPy —
the last two converted to lists/tensors), history, epoch, status and the run's configuration.
It is written to a temporary file in the same folder, fsynced and renamed over the previous
one, so a kill at any moment leaves either the old or the new checkpoint, whole.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from optimlab.atomic import atomic_write_bytes
from optimlab.errors import UserError

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = 1


class CheckpointError(UserError):
    """A checkpoint that cannot be read, is unsafe, or belongs to another configuration."""


def checkpoint_path(directory: str | Path) -> Path:
    return Path(directory) / CHECKPOINT_NAME


def save_atomic(obj: dict[str, Any], path: Path) -> None:
    """``torch.save`` into memory, then :func:`optimlab.atomic.atomic_write_bytes`.

    Not ``torch.save`` straight into the file: a Ctrl-C that interrupts one of its writes
    (EINTR) raises inside torch's C++ zip writer, which then fails to finish the archive and
    turns the KeyboardInterrupt into a RuntimeError — or, once the file is closed, aborts the
    process from a destructor. In memory, an interrupt can only come from Python code, and
    propagates as itself; the file write is one Python call that atomic_open cleans up after.
    """
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (no arbitrary code runs).

    Anything that is not a checkpoint this module wrote — a pickle with foreign objects, a
    truncated or corrupt file — raises :class:`CheckpointError`.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors, zip errors, EOF… all mean "not loadable"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"cannot load checkpoint {path}: it is corrupt, truncated or contains objects "
            f"that safe loading refuses ({type(e).__name__}: {first})"
        ) from e
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an optimlab checkpoint (format {FORMAT})")
    return obj


def rng_state(data_generator: torch.Generator) -> dict[str, Any]:
    """Every RNG state that can influence training, in ``weights_only``-loadable form."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state(legacy=True)
    assert isinstance(np_keys, np.ndarray)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "data": data_generator.get_state(),
        "python": [py_version, list(py_state), py_gauss],
        "numpy": {"name": np_name, "keys": torch.from_numpy(np_keys.astype(np.int64)),
                  "pos": int(np_pos), "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
    }


def set_rng_state(state: dict[str, Any], data_generator: torch.Generator) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    data_generator.set_state(state["data"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))


def check_same_run(stored: dict[str, Any], expected: dict[str, Any], path: Path) -> None:
    """Raise :class:`CheckpointError` listing every key whose value differs."""
    keys = sorted(set(stored) | set(expected))
    diffs = [f"{k}: checkpoint {stored.get(k)!r} vs now {expected.get(k)!r}"
             for k in keys if stored.get(k) != expected.get(k)]
    if diffs:
        raise CheckpointError(
            f"checkpoint {path} belongs to another configuration; differences: "
            + "; ".join(diffs) + " (use another checkpoint folder, or resume=False to restart)"
        )
