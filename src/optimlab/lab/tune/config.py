"""What a tune runs: one frozen :class:`TuneConfig`, filled from TOML and CLI flags.

The default is the default comparison's optimizers (``optimlab compare`` with no arguments),
each with its fixed hyperparameters kept and ``lr`` searched over its default range, on
digits/mlp: 9 optimizers × 10 trials of 30 epochs, the best rerun on 3 more seeds, next to
the untuned defaults on the same seeds — about a minute on two cores (README, Performance).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optimlab.errors import UserError
from optimlab.lab.config import DEFAULT_SUITE, read_toml
from optimlab.lab.spec import parse_spec


def _without_lr(spec: str) -> str:
    parsed = parse_spec(spec)
    items = [item for item in spec.partition(":")[2].split(",") if item.strip()
             and not item.strip().startswith("lr=")]
    return parsed.name + (":" + ",".join(items) if items else "")


#: the default compare's optimizers with lr left out: lr is searched over its default range
DEFAULT_TUNE_SUITE: tuple[str, ...] = tuple(_without_lr(s) for s in DEFAULT_SUITE)
BACKENDS = ("local", "ray")
METRICS = ("val_loss", "val_accuracy")


@dataclass(frozen=True)
class TuneConfig:
    """Everything that decides a tune's numbers, plus how it is executed."""

    optimizer: tuple[str, ...] = DEFAULT_TUNE_SUITE  # tune specs, in table order
    dataset: str = "digits"  # a name from optimlab.data.DATASET_NAMES
    model: str = "mlp"  # a name from optimlab.models.MODEL_NAMES
    epochs: int = 30  # epochs of every trial and rerun (compare's default)
    batch_size: int = 64  # minibatch size
    trials: int = 10  # trials per optimizer (the equal budget; pruned ones count)
    sampler: str = "qmc"  # tpe, random, grid or qmc (Optuna's), seeded by seed
    pruner: str = "none"  # none, median or hyperband (Optuna's)
    metric: str = "val_loss"  # what selects the best trial: the last epoch's val_loss/accuracy
    seeds: int = 3  # reruns of each best config on seeds seed+1 … seed+seeds
    seed: int = 0  # the search's seed: data split, initial weights, batch order, sampler
    target: str | None = None  # METRIC=VALUE, e.g. val_accuracy=0.95: time to reach it
    defaults: bool = True  # also rerun the untuned default compare spec each tune covers
    workers: int | None = None  # trials at once; None: the CPUs this process may use (≤ 8)
    backend: str = "local"  # local processes, or ray
    ray_address: str | None = None  # an existing Ray cluster (host:port); None: start one
    device: str = "cpu"  # cpu, cuda or auto
    data_dir: str | None = None  # where datasets that need files live
    threads: int = 1  # torch CPU threads in all, split between the workers
    scheduler: str | None = None  # one scheduler spec for every trial and rerun (fixed)
    schedule_every: str = "epoch"  # the scheduler steps every "epoch", or every batch ("step")
    telemetry: bool = False  # per-layer statistics in each run's history.telemetry
    tensorboard: str | None = None  # event files under DIR/trials/…, DIR/reruns/…, DIR/defaults/…

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["optimizer"] = list(self.optimizer)
        return d

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, source: str = "config") -> TuneConfig:
        return cls(**_coerce(raw, source=source))

    def resolved_workers(self) -> int:
        if self.workers is not None:
            return self.workers
        return max(1, min(8, len(os.sched_getaffinity(0))))

    def target_pair(self) -> tuple[str, float] | None:
        """``target`` as (metric, value)."""
        return None if self.target is None else parse_target(self.target)


_INTS = {"epochs": 1, "batch_size": 1, "trials": 1, "seeds": 0, "seed": 0, "workers": 1,
         "threads": 1}
_CHOICES = {"sampler": ("tpe", "random", "grid", "qmc"), "pruner": ("none", "median",
            "hyperband"), "metric": METRICS, "backend": BACKENDS,
            "device": ("auto", "cpu", "cuda"), "schedule_every": ("epoch", "step")}
_OPTIONAL = ("target", "workers", "ray_address", "data_dir", "scheduler", "tensorboard")
_BOOLS = ("defaults", "telemetry")


def parse_target(text: str, where: str = "--target") -> tuple[str, float]:
    """``val_accuracy=0.95`` → ("val_accuracy", 0.95); ``where`` names the input in errors."""
    metric, eq, value = text.partition("=")
    metric = metric.strip()
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not eq or metric not in METRICS or number != number:
        raise UserError(f"{where} {text!r}: expected METRIC=VALUE with METRIC one of "
                        f"{', '.join(METRICS)}, e.g. val_accuracy=0.95")
    if metric == "val_accuracy" and not 0 < number <= 1:
        raise UserError(f"{where} {text!r}: an accuracy target is a fraction in (0, 1]")
    return metric, number


def valid_keys() -> list[str]:
    return [f.name for f in dataclasses.fields(TuneConfig)]


def _coerce(raw: dict[str, Any], *, source: str) -> dict[str, Any]:
    keys = valid_keys()
    out: dict[str, Any] = {}
    for raw_key, value in raw.items():
        key = raw_key.replace("-", "_")
        key = "optimizer" if key == "optimizers" else key
        if key not in keys:
            raise UserError(f"{source}: unknown key {raw_key!r}; valid keys: {', '.join(keys)}")
        if value is None:
            if key in _OPTIONAL:
                out[key] = None
            continue
        if key in _INTS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise UserError(f"{source}: {key} must be an integer, got {value!r}")
            if value < _INTS[key]:
                raise UserError(f"{source}: {key} must be >= {_INTS[key]}, got {value}")
        elif key in _BOOLS:
            if not isinstance(value, bool):
                raise UserError(f"{source}: {key} must be true or false, got {value!r}")
        elif key == "optimizer":
            value = (value,) if isinstance(value, str) else value
            if not isinstance(value, list | tuple) or not value or not all(
                    isinstance(s, str) for s in value):
                raise UserError(f"{source}: optimizer must be a non-empty list of spec strings")
            value = tuple(value)
        elif not isinstance(value, str):
            raise UserError(f"{source}: {key} must be a string, got {value!r}")
        elif key in _CHOICES and value not in _CHOICES[key]:
            raise UserError(f"{source}: {key} must be one of {', '.join(_CHOICES[key])}, "
                            f"got {value!r}")
        elif key == "target":
            parse_target(value, "--target" if source == "option" else f"{source}: target")
        out[key] = value
    return out


def load_tune_config(path: str | Path | None = None,
                     overrides: dict[str, Any] | None = None) -> TuneConfig:
    """Defaults, then the TOML file at ``path``, then ``overrides`` (the CLI flags) on top."""
    merged: dict[str, Any] = {}
    if path is not None:
        merged.update(_coerce(read_toml(path), source=str(path)))
    if overrides:
        merged.update(_coerce(overrides, source="option"))
    return TuneConfig(**merged)
