"""What a comparison runs: one frozen :class:`CompareConfig`, filled from TOML and CLI flags.

The defaults are the seed notebooks' experiment, shrunk to run in seconds on a laptop CPU:
the ``digits`` dataset (8×8 scikit-learn digits, offline), the ``mlp`` model, seed 0, batch 64,
30 epochs, and the notebooks' suite of nine optimizers.

Why these learning rates: the SGD family shares lr 1e-3 so that only momentum changes between
them — plain SGD barely moves at that step size, while momentum β multiplies the long-run step
by 1/(1-β): ×10 for 0.9, ×100 for 0.99, the notebooks' first lesson. Weight decay (1e-3) and
Nesterov are variations on momentum 0.99. Adagrad, RMSprop and Adam share lr 1e-3 so that the
second lesson shows: Adagrad's ever-growing sum of squared gradients shrinks its steps and
leaves its train loss far above RMSprop's and Adam's, whose moving averages forget. Adadelta
uses torch's default lr 1.0 (its step is a ratio of RMS terms; lr only scales it).

Measured (``optimlab compare``, digits/mlp, batch 64, 30 epochs, seed 0, CPU; torch.optim's
classes give the same numbers): test accuracy SGD 10.0%, momentum 0.9 19.2%, 0.99 90.8%,
0.99 + weight decay 90.5%, Nesterov 91.4%, Adagrad 90.5%, RMSprop 96.9%, Adam 96.1%,
Adadelta 97.2%; final train loss Adagrad 0.53 vs RMSprop 0.018 and Adam 0.020 — the same
ordering as the issue author's torch.optim measurements (10% / 33% / 90%; 0.48 vs 0.008/0.013).

TOML files use the same keys as the flags (``batch_size`` or ``batch-size``); ``optimizer`` is
a list of spec strings. Unknown keys and ill-typed values are errors naming the valid keys.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optimlab.engine.arguments import shown
from optimlab.errors import UserError

DEFAULT_SUITE: tuple[str, ...] = (
    "sgd:lr=1e-3",
    "sgd:lr=1e-3,momentum=0.9",
    "sgd:lr=1e-3,momentum=0.99",
    "sgd:lr=1e-3,momentum=0.99,weight_decay=1e-3",
    "sgd:lr=1e-3,momentum=0.99,nesterov=true",
    "adagrad:lr=1e-3",
    "rmsprop:lr=1e-3",
    "adam:lr=1e-3",
    "adadelta:lr=1.0",
)

@dataclass(frozen=True)
class CompareConfig:
    """Everything that decides a comparison's numbers (output locations live elsewhere)."""

    dataset: str = "digits"  # a name from optimlab.data.DATASET_NAMES
    model: str = "mlp"  # a name from optimlab.models.MODEL_NAMES
    optimizer: tuple[str, ...] = DEFAULT_SUITE  # optimizer specs, in table/plot order
    scheduler: str | None = None  # one scheduler spec applied to every run, or none
    schedule_every: str = "epoch"  # the scheduler steps every "epoch", or every batch ("step")
    epochs: int = 30  # maximum epochs per run
    batch_size: int = 64  # minibatch size (same batches for every optimizer)
    seed: int = 0  # first seed: initial weights, data split and batch order
    seeds: int = 1  # number of seeds: seed … seed+seeds-1
    val_every: int = 1  # validate every this many epochs
    patience: int | None = None  # early-stopping patience in validations; None disables
    min_delta: float = 0.0  # improvement in val loss that resets patience
    device: str = "auto"  # auto, cpu or cuda
    data_dir: str | None = None  # where datasets that need files live
    checkpoint_every: int = 5  # epochs between checkpoints; --resume restarts from the last
    threads: int = 1  # CPU threads for torch: 1 is fastest for small models on a busy machine

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["optimizer"] = list(self.optimizer)
        return d

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, source: str = "config") -> CompareConfig:
        """Build and validate a config from a dict of keys (dashes or underscores)."""
        values = _coerce(raw, source=source)
        _check_whole(values, source)
        return cls(**values)


SEED_MAX = 2**63 - 1  # torch's and NumPy's seeds are 64-bit
_INT_FIELDS = {"epochs": 1, "batch_size": 1, "seed": 0, "seeds": 1, "val_every": 1,
               "patience": 1, "checkpoint_every": 1, "threads": 1}
_INT_MAXIMA = {"seed": (SEED_MAX, "2**63-1"), "seeds": (10_000, "10000")}
_CHOICES = {"device": ("auto", "cpu", "cuda"), "schedule_every": ("epoch", "step")}


def valid_keys() -> list[str]:
    """The keys a TOML file (or the overrides dict) may set."""
    return [f.name for f in dataclasses.fields(CompareConfig)]


def _check_int(key: str, value: Any, minimum: int, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UserError(f"{source}: {key} must be an integer, got {shown(value)}")
    if value < minimum:
        raise UserError(f"{source}: {key} must be >= {minimum}, got {shown(value)}")
    maximum, written = _INT_MAXIMA.get(key, (None, ""))
    if key == "threads":  # torch accepts any count, then thrashes or aborts
        maximum = os.cpu_count() or 1
        written = f"{maximum} (this machine's CPUs)"
    if maximum is not None and value > maximum:
        raise UserError(f"{source}: {key} must be between {minimum} and {written}, "
                        f"got {shown(value)}")
    return value


def _check_whole(config: dict[str, Any], source: str) -> None:
    """Checks across fields: the last seed still fits in 64 bits."""
    seed, seeds = config.get("seed", 0), config.get("seeds", 1)
    if seed + seeds - 1 > SEED_MAX:
        raise UserError(f"{source}: seed + seeds - 1 must be <= 2**63-1, got seed {seed} "
                        f"with {seeds} seeds")


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _coerce(raw: dict[str, Any], *, source: str) -> dict[str, Any]:
    """Normalise keys, reject unknown ones and check each value's type and range."""
    keys = valid_keys()
    out: dict[str, Any] = {}
    for raw_key, value in raw.items():
        key = raw_key.replace("-", "_")
        if key == "optimizers":
            key = "optimizer"
        if key not in keys:
            raise UserError(f"{source}: unknown key {shown(raw_key)}; valid keys: "
                            f"{', '.join(keys)}")
        if value is None:
            if key in ("scheduler", "patience", "data_dir"):
                out[key] = None
            continue
        if key in _INT_FIELDS:
            out[key] = _check_int(key, value, _INT_FIELDS[key], source)
        elif key == "min_delta":
            if (isinstance(value, bool) or not isinstance(value, int | float)
                    or not _finite(value) or value < 0):
                raise UserError(f"{source}: min_delta must be a finite number >= 0, "
                                f"got {shown(value)}")
            out[key] = float(value)
        elif key == "optimizer":
            specs = [value] if isinstance(value, str) else value
            if not isinstance(specs, list | tuple) or not specs or not all(
                isinstance(s, str) for s in specs
            ):
                raise UserError(f"{source}: optimizer must be a non-empty list of spec strings")
            out[key] = tuple(specs)
        else:
            if not isinstance(value, str):
                raise UserError(f"{source}: {key} must be a string, got {shown(value)}")
            if key in _CHOICES and value not in _CHOICES[key]:
                raise UserError(f"{source}: {key} must be one of {', '.join(_CHOICES[key])}, "
                                f"got {shown(value)}")
            out[key] = value
    return out


def read_toml(path: str | Path) -> dict[str, Any]:
    """The table in a TOML file; errors name the file (and line for syntax errors)."""
    p = Path(path)
    try:
        text = p.read_bytes()
    except FileNotFoundError:
        raise UserError(f"config file not found: {p}") from None
    except OSError as e:
        raise UserError(f"cannot read config file {p}: {e.strerror}") from None
    try:
        return tomllib.loads(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"{p}: not a UTF-8 text file") from None
    except tomllib.TOMLDecodeError as e:
        # The message carries "(at line L, column C)".
        raise UserError(f"{p}: malformed TOML: {e}") from None


def load_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> CompareConfig:
    """Defaults, then the TOML file at ``path``, then ``overrides`` (the CLI flags) on top."""
    merged: dict[str, Any] = {}
    if path is not None:
        merged.update(_coerce(read_toml(path), source=str(path)))
    if overrides:
        merged.update(_coerce(overrides, source="option"))
    _check_whole(merged, str(path) if path is not None and not overrides else "config")
    return CompareConfig(**merged)


def default_config() -> CompareConfig:
    """The embedded default comparison."""
    return CompareConfig()


__all__ = [
    "DEFAULT_SUITE",
    "CompareConfig",
    "default_config",
    "load_config",
    "read_toml",
    "valid_keys",
]
