"""A tune's numbers: results.json's per-optimizer entries, the ranking and the table.

Accuracies are fractions in JSON and percentages on screen; losses are the task's loss
(cross-entropy in nats, MSE for regression); seconds are training seconds of the run.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from optimlab.lab.spec import format_value
from optimlab.lab.tune.config import TuneConfig
from optimlab.lab.tune.plan import PlannedOptimizer

STATES = {"finished": "complete", "early_stopped": "complete", "diverged": "complete",
          "pruned": "pruned", "failed": "failed"}


def mean_std(values: Sequence[Any]) -> dict[str, Any]:
    """``{"mean", "std", "n", "values"}`` over the finite values (std 0 for one value)."""
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return {"mean": statistics.fmean(vals) if vals else None,
            "std": (statistics.stdev(vals) if len(vals) > 1 else 0.0) if vals else None,
            "n": len(vals), "values": list(values)}


def reached(history: dict[str, list[Any]], metric: str, value: float
            ) -> tuple[int | None, float | None]:
    """(epoch, training seconds) at which ``metric`` first reached ``value``; None if never."""
    for epoch, v, wall in zip(history["epoch"], history[metric], history["wall_time"],
                              strict=False):
        if v is not None and (v >= value if metric == "val_accuracy" else v <= value):
            return int(epoch), float(wall)
    return None, None


def time_to_target(runs: Sequence[dict[str, Any]], target: tuple[str, float]
                   ) -> dict[str, Any]:
    """Per run epochs/seconds to the target (None = missed); medians count a miss as ∞."""
    metric, value = target
    hits = [reached(r["history"], metric, value) for r in runs]
    epochs = [e for e, _ in hits]
    seconds = [s for _, s in hits]

    def median(xs: list[Any]) -> float | None:
        m = statistics.median([math.inf if x is None else x for x in xs]) if xs else math.inf
        return None if math.isinf(m) else float(m)

    return {"metric": metric, "value": value, "epochs": epochs, "seconds": seconds,
            "reached": sum(e is not None for e in epochs), "runs": len(runs),
            "median_epochs": median(epochs), "median_seconds": median(seconds)}


def final_metric(run: dict[str, Any], metric: str) -> float | None:
    vals = [v for v in run["history"][metric] if v is not None]
    return float(vals[-1]) if vals else None


def rerun_summary(runs: list[dict[str, Any]], config: TuneConfig) -> dict[str, Any]:
    """Mean ± std over the rerun seeds: test accuracy/loss, the final validation metric."""
    out = {"seeds": [r["seed"] for r in runs], "spec": runs[0]["spec"] if runs else None,
           "statuses": [r["status"] for r in runs],
           "test_accuracy": mean_std([r.get("test_accuracy") for r in runs]),
           "test_loss": mean_std([r.get("test_loss") for r in runs]),
           f"final_{config.metric}": mean_std([final_metric(r, config.metric) for r in runs]),
           "time_to_target": None, "runs": runs}
    target = config.target_pair()
    if target is not None:
        out["time_to_target"] = time_to_target(runs, target)
    return out


def trial_entry(record: dict[str, Any]) -> dict[str, Any]:
    return {"number": record["position"], "params": record["params"],
            "hparams": record["hparams"], "state": STATES.get(record["status"], "failed"),
            "status": record["status"], "diverged": record["status"] == "diverged",
            "value": record.get("value"), "epochs": record["epochs_run"],
            "seconds": record["wall_seconds"], "error": record.get("error"),
            "store_run_id": record.get("store_run_id")}


def optimizer_entry(opt: PlannedOptimizer, trials: list[dict[str, Any]],
                    best: dict[str, Any] | None, reruns: dict[str, list[dict[str, Any]]],
                    config: TuneConfig) -> dict[str, Any]:
    """results.json's entry for one optimizer."""
    from optimlab.lab.spec import folder_name

    entries = [trial_entry(t) for t in trials]
    counts = {s: sum(e["state"] == s for e in entries) for s in ("complete", "pruned",
                                                                 "failed")}
    counts["diverged"] = sum(e["diverged"] for e in entries)
    tuned = reruns.get(f"reruns/{opt.folder}", [])
    return {
        "name": opt.name, "spec": opt.space.text, "optimizer": opt.space.name,
        "space": opt.space.space(), "default_lr": opt.space.default_lr,
        "trials": entries, "counts": counts,
        "best": None if best is None else {
            "number": best["position"], "params": best["params"], "hparams": best["hparams"],
            "spec": best["spec"], "value": best["value"]},
        "reruns": rerun_summary(tuned, config) if tuned else None,
        "defaults": [{"name": d.label, "spec": d.text,
                      **rerun_summary(reruns[f"defaults/{folder_name(d.label)}"], config)}
                     for d in opt.defaults if reruns.get(f"defaults/{folder_name(d.label)}")],
    }


def _score(entry: dict[str, Any]) -> float:
    r = entry["reruns"]
    if r is None:
        return math.inf
    acc, loss = r["test_accuracy"]["mean"], r["test_loss"]["mean"]
    if acc is not None:
        return -acc
    return loss if loss is not None else math.inf


def ranking(entries: list[dict[str, Any]], target: tuple[str, float] | None
            ) -> dict[str, list[str]]:
    """Names by tuned test accuracy (test loss for regression); by time to target if set."""
    out = {"test": [e["name"] for e in sorted(entries, key=_score)]}
    if target is not None:
        def epochs(e: dict[str, Any]) -> float:
            t = (e["reruns"] or {}).get("time_to_target") or {}
            m = t.get("median_epochs")
            return math.inf if m is None else float(m)
        out["time_to_target"] = [e["name"] for e in sorted(entries, key=epochs)]
    return out


def short_hparams(hparams: dict[str, Any]) -> str:
    """``lr=0.0123, momentum=0.9``: floats to 3 significant digits, for tables."""
    def short(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}"
        if isinstance(v, list | tuple):
            return "(" + ", ".join(short(x) for x in v) + ")"
        return format_value(v)

    return ", ".join(f"{k}={short(v)}" for k, v in hparams.items()) or "defaults"


def _pm(stat: dict[str, Any] | None, pct: bool) -> str:
    if not stat or stat["mean"] is None:
        return "-"
    scale = 100.0 if pct else 1.0
    mean, std = scale * stat["mean"], scale * (stat["std"] or 0.0)
    text = f"{mean:.1f}% ± {std:.1f}" if pct else f"{mean:.4g} ± {std:.2g}"
    return text


def table_cells(entries: list[dict[str, Any]], config: TuneConfig
                ) -> tuple[list[str], list[list[str]]]:
    """The tune table (shared by the terminal and report.html), rows in ranking order."""
    classification = any(e["reruns"] and e["reruns"]["test_accuracy"]["mean"] is not None
                         for e in entries)
    key, label = ("test_accuracy", "test acc") if classification else ("test_loss",
                                                                       "test loss")
    header = ["optimizer", "best hyperparameters", f"best {config.metric}",
              "trials c/p/d/f", f"{label} tuned", f"{label} default"]
    if config.target is not None:
        header.append(f"epochs to {config.target}")
    body = []
    for name in ranking(entries, None)["test"]:
        e = next(x for x in entries if x["name"] == name)
        c = e["counts"]
        best = e["best"]
        default = e["defaults"][0] if e["defaults"] else None
        row = [e["name"], "-" if best is None else short_hparams(best["hparams"]),
               "-" if best is None else f"{best['value']:.4g}",
               f"{c['complete'] - c['diverged']}/{c['pruned']}/{c['diverged']}/{c['failed']}",
               _pm(e["reruns"] and e["reruns"][key], classification),
               _pm(default and default[key], classification)]
        if config.target is not None:
            t = (e["reruns"] or {}).get("time_to_target")
            row.append("-" if t is None else ("∞ (missed)" if t["median_epochs"] is None else
                       f"{t['median_epochs']:.0f} ({t['reached']}/{t['runs']} reached)"))
        body.append(row)
    return header, body


def format_table(entries: list[dict[str, Any]], config: TuneConfig) -> str:
    header, body = table_cells(entries, config)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths),
                      *(line(r) for r in body)])
