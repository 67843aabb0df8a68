"""Checkpoints: what one is, how :func:`optimlab.engine.fit` captures and restores one, and
how it is written (atomically) and read (``torch.load(weights_only=True)``).

A checkpoint is one file, ``checkpoint.pt``, holding only what ``weights_only`` loading
accepts (tensors, dicts, lists, numbers, strings): model, optimizer, scheduler and early
stopping state, every RNG state (torch CPU/CUDA, the data-order generator, Python, NumPy —
the last two converted to lists/tensors), history, epoch, status and the run's configuration.
It is written to a temporary file in the same folder, fsynced and renamed over the previous
one, so a kill at any moment leaves either the old or the new checkpoint, whole (and, if the
kill landed inside the write, a ``.checkpoint.pt.*.tmp`` that the next fit in that folder
removes: :func:`remove_stale_temporaries`).

:func:`capture` builds the dict from a :class:`RunState`; :func:`restore` checks a loaded dict
against the run being resumed (configuration, run settings, model shapes — before anything is
loaded) and then loads it.
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from optimlab.atomic import atomic_write_bytes
from optimlab.engine.early_stopping import EarlyStopping
from optimlab.engine.history import History
from optimlab.errors import UserError

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = 1
_MAX_SHOWN = 60  # characters of a differing value shown in a mismatch message


class CheckpointError(UserError):
    """A checkpoint that cannot be read, is unsafe, or belongs to another configuration."""


class CheckpointMismatch(CheckpointError):
    """A checkpoint whose states do not load into this model/optimizer."""


@dataclass
class RunState:
    """Everything of one fit call that a checkpoint holds (the mutable parts change per epoch).

    ``spec`` (strings only) and ``config`` (the caller's, as canonical JSON) are what a
    checkpoint must match to continue this run.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any  # a torch LR scheduler (or ReduceLROnPlateau), or None
    early_stopping: EarlyStopping | None
    generator: torch.Generator  # the data-order generator
    spec: dict[str, str]
    config_json: str
    history: History = field(default_factory=History)
    epoch: int = 0
    wall: float = 0.0


def checkpoint_path(directory: str | Path) -> Path:
    return Path(directory) / CHECKPOINT_NAME


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete ``.checkpoint.pt.*.tmp`` files a kill left beside ``path``; return them.

    Only a process killed inside :func:`save_atomic` leaves one (any other failure removes its
    own); the checkpoint itself is then the previous, whole one.
    """
    stale = sorted(path.parent.glob(f".{path.name}.*.tmp"))
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def capture(run: RunState, status: str) -> dict[str, Any]:
    """The checkpoint dict of ``run``, labelled with the ``status`` it would end with now."""
    return {
        "format": FORMAT, "status": status, "epoch": run.epoch, "wall": run.wall,
        "run": run.spec, "config": run.config_json,
        "model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict() if run.scheduler else None,
        "early_stopping": run.early_stopping.state_dict() if run.early_stopping else None,
        "rng": rng_state(run.generator), "history": run.history.to_dict(),
    }


def restore(run: RunState, state: dict[str, Any], path: Path) -> None:
    """Load ``state`` into ``run``; :class:`CheckpointError` (nothing loaded) if it does not fit.

    The configuration, the run settings and the model's tensor shapes are compared first, so
    a foreign checkpoint leaves the model untouched.
    """
    check_same_run(json.loads(state["config"]) or {}, json.loads(run.config_json) or {}, path)
    check_same_run(state["run"], run.spec, path)
    shapes = {k: tuple(v.shape) for k, v in run.model.state_dict().items()}
    stored = {k: tuple(v.shape) for k, v in state["model"].items()}
    if shapes != stored:
        raise CheckpointMismatch(f"checkpoint {path} holds another model's weights")
    try:
        run.model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        if run.scheduler:
            run.scheduler.load_state_dict(state["scheduler"])
        if run.early_stopping:
            run.early_stopping.load_state_dict(state["early_stopping"])
        set_rng_state(state["rng"], run.generator)
        run.history = History.from_dict(state["history"])
    except (RuntimeError, ValueError, KeyError, TypeError) as e:
        raise CheckpointMismatch(f"checkpoint {path} does not fit this run: "
                                 f"{_one_line(str(e))}") from e
    run.epoch, run.wall = int(state["epoch"]), float(state["wall"])


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
    truncated or corrupt file — raises :class:`CheckpointError`. torch's own message is not
    repeated: it advises ``weights_only=False``, i.e. running the file's code.
    """
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors, zip errors, EOF… all mean "not loadable"
        raise CheckpointError(
            f"cannot load checkpoint {path}: it is corrupt, truncated or holds objects that "
            f"safe loading refuses ({type(e).__name__})"
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


def _one_line(text: str, limit: int = _MAX_SHOWN) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_same_run(stored: dict[str, Any], expected: dict[str, Any], path: Path) -> None:
    """Raise :class:`CheckpointError` naming what differs (the first three keys, values cut)."""
    keys = sorted(set(stored) | set(expected))
    diffs = [f"{k}: checkpoint {_one_line(repr(stored.get(k)))} vs now "
             f"{_one_line(repr(expected.get(k)))}"
             for k in keys if stored.get(k) != expected.get(k)]
    if diffs:
        more = f" (+{len(diffs) - 3} more)" if len(diffs) > 3 else ""
        raise CheckpointError(
            f"checkpoint {path} belongs to another configuration ({'; '.join(diffs[:3])}{more});"
            " continue it with its own settings, or start afresh in another folder"
        )
