"""A comparison's results on disk and on screen: results.json, history.csv and the table.

Every file is written atomically (temporary file in the same folder, flush + fsync,
``os.replace``), so a reader never sees half a file and a crash leaves the old one.
Non-finite numbers (a diverged run's last loss) are written as ``null`` to keep the JSON valid.
A diverged run's test numbers come from non-finite weights and mean nothing: the table shows
"—" for them (and for every number that does not exist), never an accuracy of NaN weights.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from optimlab.atomic import atomic_write_text
from optimlab.lab.spec import format_value

HISTORY_KEYS = ("epoch", "train_loss", "val_loss", "val_accuracy", "lr")


def json_safe(obj: Any) -> Any:
    """Replace NaN/inf by None and tuples by lists, recursively."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(json_safe(obj), indent=2, allow_nan=False) + "\n")


def write_history_csv(path: str | Path, runs: Sequence[dict[str, Any]]) -> None:
    """One row per run and epoch: name, seed, epoch, train_loss, val_loss, val_accuracy, lr."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["name", "seed", *HISTORY_KEYS])
    for run in runs:
        h = run["history"]
        for i in range(len(h["epoch"])):
            row = [json_safe(h[k][i]) if i < len(h[k]) else None for k in HISTORY_KEYS]
            w.writerow([run["name"], run["seed"], *("" if v is None else v for v in row)])
    atomic_write_text(path, buf.getvalue())


# -- summary numbers -----------------------------------------------------------------------

def _finite_values(xs: Sequence[Any]) -> list[float]:
    return [float(x) for x in xs if x is not None and math.isfinite(float(x))]


def final_train_loss(run: dict[str, Any]) -> float | None:
    losses = run["history"]["train_loss"]
    if not losses or losses[-1] is None:
        return None
    return float(losses[-1])


def best_val_loss(run: dict[str, Any]) -> float | None:
    vals = _finite_values(run["history"]["val_loss"])
    return min(vals) if vals else None


def last_val_accuracy(run: dict[str, Any]) -> float | None:
    vals = [v for v in run["history"]["val_accuracy"] if v is not None]
    return float(vals[-1]) if vals else None


MISSING = "—"  # a number that does not exist (no validation, a diverged run's test scores)


def summary_row(run: dict[str, Any]) -> dict[str, Any]:
    """The table's numbers for one run (accuracies as fractions; None where there is none).

    A diverged run has no test numbers: they would be measured on non-finite weights.
    """
    suffix = run["name"][run["name"].rfind("#"):] if "#" in run["name"] else ""
    diverged = run["status"] == "diverged"
    return {
        "name": run["name"],
        "optimizer": f"{run['optimizer']}{suffix}",
        "hparams": run["hparams"],
        "final_train_loss": final_train_loss(run),
        "best_val_loss": best_val_loss(run),
        "val_accuracy": last_val_accuracy(run),
        "test_accuracy": None if diverged else run.get("test_accuracy"),
        "test_loss": None if diverged else run.get("test_loss"),
        "epochs_run": run["epochs_run"],
        "status": run["status"],
        "wall_seconds": run["wall_seconds"],
    }


def _mean_std(xs: Sequence[Any]) -> tuple[float | None, float | None]:
    vals = _finite_values(xs)
    if not vals:
        return None, None
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def grouped_rows(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per run name: means, with ``<key>_std`` when several seeds ran.

    Rows are sorted by test accuracy (highest first; by test loss for regression), runs
    without a number last.
    """
    by_name: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        by_name.setdefault(run["name"], []).append(summary_row(run))
    rows = []
    for name, group in by_name.items():
        row: dict[str, Any] = {"name": name, "optimizer": group[0]["optimizer"],
                               "hparams": group[0]["hparams"], "n": len(group)}
        for key in ("final_train_loss", "best_val_loss", "val_accuracy", "test_accuracy",
                    "test_loss", "epochs_run", "wall_seconds"):
            row[key], row[f"{key}_std"] = _mean_std([g[key] for g in group])
        statuses = [g["status"] for g in group]
        row["status"] = statuses[0] if len(set(statuses)) == 1 else ", ".join(
            f"{statuses.count(s)} {s}" for s in dict.fromkeys(statuses))
        rows.append(row)
    classification = any(r["test_accuracy"] is not None for r in rows)

    def order(r: dict[str, Any]) -> tuple[int, float]:
        if classification:
            acc = r["test_accuracy"]
            return (0, -acc) if acc is not None else (1, 0.0)
        loss = r["test_loss"]
        return (0, loss) if loss is not None else (1, 0.0)

    return sorted(rows, key=order)


def format_hparams(hparams: dict[str, Any]) -> str:
    if not hparams:
        return "defaults"
    return ", ".join(f"{k}={format_value(v)}" for k, v in hparams.items())


def _fmt(row: dict[str, Any], key: str, kind: str) -> str:
    mean, std = row[key], row.get(f"{key}_std")
    if mean is None:
        return MISSING
    if kind == "pct":
        text, err = f"{100 * mean:.1f}%", f"{100 * std:.1f}" if std is not None else ""
    elif kind == "loss":
        text, err = f"{mean:.4g}", f"{std:.2g}" if std is not None else ""
    elif kind == "int":
        text, err = f"{mean:.0f}" if float(mean).is_integer() else f"{mean:.1f}", \
            f"{std:.1f}" if std is not None else ""
    else:
        text, err = f"{mean:.1f}", f"{std:.1f}" if std is not None else ""
    return f"{text} ± {err}" if row["n"] > 1 else text


TABLE_COLUMNS = (
    ("optimizer", "optimizer", "str"), ("hyperparameters", "hparams", "hparams"),
    ("train loss", "final_train_loss", "loss"), ("best val loss", "best_val_loss", "loss"),
    ("val acc", "val_accuracy", "pct"), ("test acc", "test_accuracy", "pct"),
    ("epochs", "epochs_run", "int"), ("status", "status", "str"),
    ("seconds", "wall_seconds", "sec"),
)


REGRESSION_COLUMNS = tuple(
    ("test loss", "test_loss", "loss") if c[1] == "test_accuracy" else c
    for c in TABLE_COLUMNS if c[1] != "val_accuracy")


def table_columns(rows: Sequence[dict[str, Any]]) -> tuple[tuple[str, str, str], ...]:
    """The table's columns: test loss replaces the accuracies when there are none (regression)."""
    if rows and all(r["test_accuracy"] is None for r in rows) and any(
            r["test_loss"] is not None for r in rows):
        return REGRESSION_COLUMNS
    return TABLE_COLUMNS


def table_cells(rows: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and formatted cells of the results table (shared by the CLI and the report)."""
    columns = table_columns(rows)
    header = [c[0] for c in columns]
    body = []
    for row in rows:
        cells = []
        for _, key, kind in columns:
            if kind == "str":
                cells.append(str(row[key]))
            elif kind == "hparams":
                cells.append(format_hparams(row[key]))
            else:
                cells.append(_fmt(row, key, kind))
        body.append(cells)
    return header, body


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The results table as aligned plain text."""
    header, body = table_cells(rows)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    numeric = {i for i, c in enumerate(table_columns(rows)) if c[2] not in ("str", "hparams")}

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in body]
    return "\n".join(out)
