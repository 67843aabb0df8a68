"""Plots and report.html for runs taken from the run store (``optimlab report ID…``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from optimlab.errors import UserError
from optimlab.lab import plots, report, results
from optimlab.lab.store import RunStore


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
        "experiment": run["experiment_id"], "task": res.get("task"),
        "class_names": res.get("class_names", []),
    }


def report_from_store(store_path: str | Path, run_ids: list[int], out_dir: str | Path) -> Path:
    """Write the plots and report.html for ``run_ids`` into ``out_dir``; return the report."""
    if not run_ids:
        raise UserError("give at least one run id (see `optimlab runs list`)")
    with RunStore(store_path, read_only=True) as store:
        runs = [run_record(store.get_run(i)) for i in run_ids]
    # Runs from different experiments may share a name: tell them apart by id.
    for name in {r["name"] for r in runs}:
        group = [r for r in runs if r["name"] == name]
        if len({(r["experiment"], r["seed"]) for r in group}) < len(group) or len(
                {r["experiment"] for r in group}) > 1:
            for r in group:
                r["name"] = f"{name} [run {r['store_run_id']}]"
    task = next((r["task"] for r in runs if r["task"]), None) or (
        "classification" if any(r["test_accuracy"] is not None for r in runs) else "regression")
    class_names: list[str] = next((r["class_names"] for r in runs if r["class_names"]), [])
    seeds = max(sum(1 for x in runs if x["name"] == r["name"]) for r in runs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    safe = [results.json_safe(r) for r in runs]
    written = plots.write_plots(safe, out, task=task, class_names=class_names, seeds=seeds)
    results.write_history_csv(out / "history.csv", safe)
    return report.write_report(
        out, title=f"optimlab report — runs {', '.join(map(str, run_ids))}", runs=safe,
        config={"store": str(store_path), "runs": run_ids}, environment={}, plots=written,
        note=f"Runs {', '.join(map(str, run_ids))} from the run store {store_path}.")
