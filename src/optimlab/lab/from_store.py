"""Plots and report.html for runs taken from the run store (``optimlab report ID…``).

The store is opened read-only. Runs of different tasks (a classification run's cross-entropy
in nats next to a regression run's mean squared error) cannot share a loss axis: such a
selection is refused before anything is written. The report's Config section lists each run's
dataset, model, epochs, batch size, seed and scheduler; its Environment section what produced
the runs (torch, python, device, host, git commit), per experiment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from optimlab.errors import UserError
from optimlab.lab import plots, report, results
from optimlab.lab.store import RunStore

#: the run config keys the report's Config section shows, in this order
CONFIG_KEYS = ("dataset", "model", "epochs", "batch_size", "seed", "scheduler", "val_every",
               "patience", "optimizer")
_REGRESSION_DATASETS = ("line",)


def run_task(run: dict[str, Any]) -> str:
    """A stored run's task: recorded with its result, else known from its dataset."""
    task = (run["result"] or {}).get("task")
    if task in ("classification", "regression"):
        return str(task)
    dataset = (run["config"] or {}).get("dataset")
    if dataset is not None:
        return "regression" if dataset in _REGRESSION_DATASETS else "classification"
    return "classification" if (run["result"] or {}).get("test_accuracy") is not None else (
        "regression")


def run_record(run: dict[str, Any]) -> dict[str, Any]:
    """A stored run in the shape of one entry of results.json's ``runs``."""
    res = run["result"] or {}
    history = run["history"]
    return {
        "name": run["name"], "optimizer": run["optimizer"], "hparams": run["hparams"],
        "seed": run["seed"], "status": run["status"],
        "epochs_run": res.get("epochs_run", len(history["epoch"])),
        "history": history, "test_loss": res.get("test_loss"),
        "test_accuracy": res.get("test_accuracy"),
        "confusion_matrix": res.get("confusion_matrix"),
        "wall_seconds": run["wall_seconds"], "store_run_id": run["id"],
        "experiment": run["experiment_id"], "task": run_task(run),
        "class_names": res.get("class_names", []),
    }


def _check_one_task(runs: list[dict[str, Any]]) -> str:
    tasks: dict[str, list[int]] = {}
    for r in runs:
        tasks.setdefault(r["task"], []).append(r["store_run_id"])
    if len(tasks) > 1:
        parts = [f"run{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))} "
                 f"{'are' if len(ids) > 1 else 'is'} {task} ({plots.LOSS_UNITS[task]})"
                 for task, ids in tasks.items()]
        raise UserError(f"{' and '.join(parts)}: one report has one loss unit; report them "
                        "separately")
    return next(iter(tasks))


def _label_duplicates(runs: list[dict[str, Any]]) -> None:
    """Runs from different experiments may share a name: tell them apart by id."""
    for name in {r["name"] for r in runs}:
        group = [r for r in runs if r["name"] == name]
        if len({(r["experiment"], r["seed"]) for r in group}) < len(group) or len(
                {r["experiment"] for r in group}) > 1:
            for r in group:
                r["name"] = f"{name} [run {r['store_run_id']}]"


def _config_and_environment(store: RunStore, stored: list[dict[str, Any]]
                            ) -> tuple[dict[str, Any], dict[str, Any]]:
    config = {"store": str(store.path), "runs": [
        {"id": r["id"], "name": r["name"], "experiment": r["experiment_id"],
         **{k: r["config"].get(k) for k in CONFIG_KEYS}} for r in stored]}
    environments = {}
    for exp_id in sorted({r["experiment_id"] for r in stored}):
        env = store.experiment(exp_id)["environment"]
        environments[f"experiment {exp_id}"] = env or (
            "not recorded (the store was written by an optimlab that did not keep it)")
    values = list(environments.values())
    same = all(v == values[0] for v in values)
    return config, values[0] if same and isinstance(values[0], dict) else environments


def check_out_folder(out: Path) -> None:
    """UserError unless ``out`` is a folder, or can be made one, that this process can write."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is not a folder (it is a file); give a folder for the "
                        "report")
    ancestor = out
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"--out {out}: {ancestor} is a file, so no folder can be made under it")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UserError(f"--out {out}: cannot write in {ancestor} (permission denied)")


def report_from_store(store_path: str | Path, run_ids: list[int], out_dir: str | Path) -> Path:
    """Write the plots and report.html for ``run_ids`` into ``out_dir``; return the report.

    Raises UserError — before writing anything — for unknown ids, runs of different tasks
    (loss units) and an ``out_dir`` that is not a writable folder. Plots an earlier report left
    in ``out_dir`` that this one does not make (``bands.png``, …) are removed.
    """
    if not run_ids:
        raise UserError("give at least one run id (see `optimlab runs list`)")
    with RunStore(store_path, read_only=True) as store:
        stored = [store.get_run(i) for i in run_ids]
        config, environment = _config_and_environment(store, stored)
    runs = [run_record(r) for r in stored]
    task = _check_one_task(runs)
    _label_duplicates(runs)
    class_names: list[str] = next((r["class_names"] for r in runs if r["class_names"]), [])
    seeds = max(sum(1 for x in runs if x["name"] == r["name"]) for r in runs)
    out = Path(out_dir)
    check_out_folder(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--out {out}: cannot make the folder ({e.strerror or e})") from None
    safe = [results.json_safe(r) for r in runs]
    written = plots.write_plots(safe, out, task=task, class_names=class_names, seeds=seeds)
    for stale in set(plots.PLOT_FILES) - {f for f, _ in written}:  # an earlier report's
        (out / stale).unlink(missing_ok=True)
    results.write_history_csv(out / "history.csv", safe)
    ids = ", ".join(map(str, run_ids))
    return report.write_report(
        out, title=f"optimlab report — runs {ids}", runs=safe, config=config,
        environment=environment, plots=written,
        note=f"Runs {ids} from the run store {store_path}.")
