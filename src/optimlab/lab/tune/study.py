"""Optuna's side of a tune: distributions, samplers, pruners and the persistent studies.

One study per optimizer, all in ``DIR/study.sqlite`` (Optuna's RDB storage; only the driver
process touches it). Trials are created with ask/tell in the driver, never in a worker, so the
values a trial gets never depend on which worker runs it or when.

Samplers whose points do not depend on results — ``random``, ``grid``, ``qmc`` — are *planned*:
the driver draws all ``trials`` points up front from Optuna's sampler in a throwaway in-memory
study seeded by ``--seed``, and trial ``k`` of every optimizer is given point ``k`` through
``enqueue_trial``. Point ``k`` is therefore the same with 1 worker, 2 workers, Ray, or after a
``--resume`` (a sampler's random state is not saved in the storage; a plan needs none).
``tpe`` learns from results, so it samples at ask time, reseeded from (seed, trial number)
before each ask: a sequential TPE tune is repeatable, also across a resume.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optimlab.errors import UserError
from optimlab.lab.spec import format_value
from optimlab.lab.tune.space import Choice, Distribution, IntRange, LogUniform, SearchSpec

if TYPE_CHECKING:
    import optuna

SAMPLERS = ("tpe", "random", "grid", "qmc")
PLANNED_SAMPLERS = ("random", "grid", "qmc")
PRUNERS = ("none", "median", "hyperband")
_PRIMITIVE = (bool, int, float, str, type(None))


def _encode(value: Any) -> Any:
    """A choice as Optuna can store it: primitives as they are, anything else as its text."""
    return value if isinstance(value, _PRIMITIVE) else format_value(value)


def decode(spec: SearchSpec, params: dict[str, Any]) -> dict[str, Any]:
    """Optuna's parameter values back to hyperparameter values (choices by their text)."""
    out = {}
    for name, value in params.items():
        d = spec.params[name]
        if isinstance(d, Choice):
            value = next(v for v in d.values if _encode(v) == value)
        out[name] = value
    return out


def _grid_points(d: Distribution, k: int) -> list[Any]:
    """A grid axis: choices as listed, a range as k evenly spaced points (log-spaced for log)."""
    if isinstance(d, Choice):
        return [_encode(v) for v in d.values]
    if isinstance(d, IntRange):
        n = min(k, d.high - d.low + 1)
        return sorted({round(d.low + i * (d.high - d.low) / max(n - 1, 1)) for i in range(n)})
    if isinstance(d, LogUniform):
        ratio = math.log(d.high / d.low)
        return [float(f"{d.low * math.exp(i * ratio / (k - 1)):.4g}") for i in range(k)]
    return [float(f"{d.low + i * (d.high - d.low) / (k - 1):.4g}") for i in range(k)]


def grid_axes(spec: SearchSpec, trials: int) -> dict[str, list[Any]]:
    """The grid for ``--sampler grid``: exactly ``trials`` points or a UserError.

    Choices are axes as written; each range gets k points, k the largest with
    (product of choice sizes) × k^(number of ranges) ≤ trials.
    """
    choices = math.prod(len(d.values) for d in spec.params.values() if isinstance(d, Choice))
    ranges = [n for n, d in spec.params.items() if not isinstance(d, Choice)]
    k = 1
    if ranges:
        k = int(math.floor((trials / choices) ** (1 / len(ranges)) + 1e-9))
        k = max(k, 2)
    axes = {n: _grid_points(d, k) for n, d in spec.params.items()}
    size = math.prod(len(a) for a in axes.values())
    if size != trials:
        shape = " × ".join(f"{len(a)} {n}" for n, a in axes.items())
        raise UserError(f"--sampler grid: the grid of {spec.label} has {size} points ({shape})"
                        f" but --trials is {trials}; a grid runs each point once, so use "
                        f"--trials {size} or change the axes")
    return axes


def optuna_distributions(spec: SearchSpec, sampler: str, trials: int
                         ) -> dict[str, optuna.distributions.BaseDistribution]:
    """The spec's parameters as Optuna distributions (grid: categorical over the axes)."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if sampler == "grid":
        return {n: CategoricalDistribution(a) for n, a in grid_axes(spec, trials).items()}
    out: dict[str, Any] = {}
    for name, d in spec.params.items():
        if isinstance(d, Choice):
            out[name] = CategoricalDistribution([_encode(v) for v in d.values])
        elif isinstance(d, IntRange):
            out[name] = IntDistribution(d.low, d.high)
        else:
            out[name] = FloatDistribution(d.low, d.high, log=isinstance(d, LogUniform))
    return out


def suggest(trial: optuna.trial.Trial, dists: dict[str, Any]) -> dict[str, Any]:
    """Every parameter through the trial's public suggest API (stored ones are returned)."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    values: dict[str, Any] = {}
    for name, d in dists.items():
        if isinstance(d, CategoricalDistribution):
            values[name] = trial.suggest_categorical(name, d.choices)
        elif isinstance(d, IntDistribution):
            values[name] = trial.suggest_int(name, d.low, d.high)
        else:
            values[name] = trial.suggest_float(name, d.low, d.high, log=d.log)
    return values


def trial_seed(seed: int, number: int) -> int:
    """A sampler seed for trial ``number`` of a tune seeded ``seed``."""
    return (seed * 1_000_003 + number * 7919 + 17) % 2**32


def make_sampler(kind: str, seed: int, axes: dict[str, list[Any]] | None = None
                 ) -> optuna.samplers.BaseSampler:
    """Optuna's sampler ``kind``, seeded."""
    import optuna

    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "qmc":
        with warnings.catch_warnings():  # "experimental" since optuna 3.0; stable enough here
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.QMCSampler(seed=seed, scramble=True,
                                              warn_independent_sampling=False)
    if kind == "grid":
        assert axes is not None
        return optuna.samplers.GridSampler(axes, seed=seed)
    raise UserError(f"unknown sampler {kind!r}; valid: {', '.join(SAMPLERS)}")


def plan_points(spec: SearchSpec, sampler: str, trials: int, seed: int
                ) -> list[dict[str, Any]]:
    """The ``trials`` points of a planned sampler, drawn in a throwaway in-memory study."""
    import optuna

    dists = optuna_distributions(spec, sampler, trials)
    axes = grid_axes(spec, trials) if sampler == "grid" else None
    study = optuna.create_study(sampler=make_sampler(sampler, seed, axes))
    points = []
    for _ in range(trials):
        trial = study.ask()
        points.append(suggest(trial, dists))
        if sampler != "grid":  # grid counts running trials as taken; telling its last one
            study.tell(trial, 0.0)  # would call study.stop(), which only optimize() allows
    return points


def make_pruner(kind: str, epochs: int) -> optuna.pruners.BasePruner:
    """``none``, ``median`` (after 3 finished trials and 1 epoch) or ``hyperband`` (1..epochs)."""
    import optuna

    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1),
                                              reduction_factor=3)
    raise UserError(f"unknown pruner {kind!r}; valid: {', '.join(PRUNERS)}")


def open_storage(path: Path) -> optuna.storages.BaseStorage:
    """Optuna's RDB storage in the SQLite file ``path``, in WAL mode without a sync per commit.

    SQLite's default (rollback journal, full sync) costs ~15 ms per commit here, and Optuna
    commits several times per trial. WAL with ``synchronous=NORMAL`` keeps every committed
    transaction across a killed process (only a power loss may drop the last ones).
    """
    import sqlite3

    import optuna

    def connect() -> sqlite3.Connection:
        db = sqlite3.connect(path, timeout=60.0)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        return db

    return optuna.storages.RDBStorage(f"sqlite:///{path}", engine_kwargs={"creator": connect})


def quiet_optuna() -> None:
    """Optuna logs every trial at INFO; the tune prints its own lines."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
