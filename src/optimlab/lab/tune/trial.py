"""One unit of a tune's work — a trial or a rerun — as a picklable task and the function that
runs it in any process (the driver itself, a local worker process, or a Ray worker).

A task is compare's controlled run: ``build_model(..., seed)``, ``fit(..., seed)`` on
``load_dataset(..., seed)``, so a trial with lr=0.01 trains exactly like
``optimlab compare --optimizer sgd:lr=0.01`` with the same epochs and seed. A trial is never
evaluated on the test split (selection sees validation only); reruns are.

Pruning happens where the trial runs: the task carries a snapshot of the optimizer's finished
trials (taken by the driver when it dispatched the task), the worker rebuilds them in an
in-memory study with the same name and trial numbers and asks Optuna's pruner after each epoch.
"""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from optimlab.lab.spec import Spec

if TYPE_CHECKING:
    from optimlab.engine.schedules import Schedule

_DATA_CACHE: dict[tuple[Any, ...], Any] = {}


@dataclass(frozen=True)
class Pruning:
    """What a worker needs to ask Optuna's pruner about a trial."""

    study_name: str
    direction: Literal["minimize", "maximize"]
    pruner: str  # median or hyperband
    position: int  # the trial's place in its optimizer's budget, 0 … trials-1
    snapshot: tuple[tuple[int, Any], ...] = ()  # (position, FrozenTrial) finished before


@dataclass(frozen=True)
class Task:
    """A trial (``kind="trial"``) or a rerun (``"tuned"``, ``"default"``) to train."""

    kind: str
    key: str  # unique within the tune: where the finished record is saved
    name: str  # the run's name in the store and the report
    spec: Spec  # the plain optimizer spec (no distributions left)
    dataset: str
    model: str
    epochs: int
    batch_size: int
    seed: int
    metric: str  # val_loss or val_accuracy: reported to the pruner
    device: str = "cpu"
    data_dir: str | None = None
    threads: int = 1
    test: bool = False  # evaluate on the test split (reruns only)
    pruning: Pruning | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # carried back in the record
    schedule: Schedule | None = None  # the tune's scheduler, parsed and checked once
    schedule_every: str = "epoch"  # "epoch" or "step"
    telemetry: bool = False  # fit(telemetry=True): history.telemetry in the record
    tensorboard: str | None = None  # this run's own event-file folder


class _Pruned(Exception):
    """Raised from fit's epoch callback to stop a pruned trial."""


def _dataset(task: Task) -> Any:
    from optimlab.data import load_dataset

    key = (task.dataset, task.data_dir, task.seed, task.device)
    if key not in _DATA_CACHE:
        if len(_DATA_CACHE) >= 8:
            _DATA_CACHE.clear()
        _DATA_CACHE[key] = load_dataset(task.dataset, data_dir=task.data_dir, seed=task.seed,
                                        device=task.device)
    return _DATA_CACHE[key]


def _pruning_trial(p: Pruning, epochs: int) -> Any:
    """A trial at ``p.position`` in an in-memory copy of the study's finished trials."""
    import optuna

    from optimlab.lab.tune.study import make_pruner, quiet_optuna

    quiet_optuna()
    study = optuna.create_study(study_name=p.study_name, direction=p.direction,
                                pruner=make_pruner(p.pruner, epochs),
                                sampler=optuna.samplers.RandomSampler(seed=0))
    finished = dict(p.snapshot)
    for n in range(p.position):  # placeholders keep the trial numbers (Hyperband's brackets)
        study.add_trial(finished.get(n) or optuna.trial.create_trial(
            state=optuna.trial.TrialState.FAIL))
    return study.ask()


def run_task(task: Task) -> dict[str, Any]:
    """Train the task's run; its record (never raises for a failing run: status ``failed``)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(task.threads)
    t0 = time.perf_counter()
    try:
        return _train(task)
    except Exception as e:  # a failing trial is a result of the tune, not its end
        return {**_base(task), "status": "failed", "epochs_run": 0, "history": _empty(),
                "wall_seconds": time.perf_counter() - t0,
                "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
    finally:
        torch.set_num_threads(threads)


def _base(task: Task) -> dict[str, Any]:
    return {"kind": task.kind, "key": task.key, "name": task.name, "optimizer": task.spec.name,
            "hparams": task.spec.hparams, "spec": task.spec.text, "seed": task.seed,
            **task.extra}


def _empty() -> dict[str, list[Any]]:
    return {k: [] for k in ("epoch", "train_loss", "val_loss", "val_accuracy", "lr",
                            "wall_time")}


def _train(task: Task) -> dict[str, Any]:
    from optimlab.engine import evaluate, fit
    from optimlab.lab.spec import build_optimizer
    from optimlab.models import build_model

    data = _dataset(task)
    model = build_model(task.model, data.input_shape, data.num_outputs, seed=task.seed)
    model = model.to(data.train.x.device)
    optimizer = build_optimizer(task.spec, model)
    rows: list[dict[str, Any]] = []
    trial = _pruning_trial(task.pruning, task.epochs) if task.pruning else None

    def on_epoch_end(epoch: int, row: dict[str, Any]) -> None:
        rows.append(row)
        value = row.get(task.metric)
        if trial is None or value is None or not math.isfinite(value):
            return
        trial.report(float(value), epoch)
        if trial.should_prune():
            raise _Pruned

    status = "finished"
    telemetry: dict[str, Any] = {}
    try:
        fitted = fit(model, optimizer, data, epochs=task.epochs, batch_size=task.batch_size,
                     seed=task.seed, scheduler=task.schedule,
                     schedule_every=task.schedule_every, progress=False,
                     on_epoch_end=on_epoch_end, telemetry=task.telemetry,
                     tensorboard=task.tensorboard)
        status = fitted.status
        telemetry = fitted.history.to_dict()["telemetry"]
    except _Pruned:  # fit's history (and its telemetry) ends with the exception
        status = "pruned"
    history: dict[str, Any] = {k: [r[k] for r in rows] for k in _empty()}
    if telemetry:
        history["telemetry"] = telemetry
    record = {**_base(task), "status": status, "epochs_run": len(rows), "history": history,
              "wall_seconds": rows[-1]["wall_time"] if rows else 0.0}
    if task.test:
        test = evaluate(model, data.test, task=data.task)
        record.update(test_loss=test.loss, test_accuracy=test.accuracy,
                      confusion_matrix=test.confusion_matrix)
    record["task"] = data.task
    return record
