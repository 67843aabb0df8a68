"""PNG plots of a comparison (matplotlib, Agg backend — no display needed).

Each function takes the ``runs`` list of results.json and returns PNG bytes; :func:`write_plots`
writes all that apply and returns ``[(filename, caption)]``. With several seeds per optimizer the
curves are per-epoch means over seeds, and the bands plot adds ±1 standard deviation. A run
that diverged is marked so in the legends (its curve stops where the loss stopped being finite)
and is never the "best run" of the confusion matrix.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from optimlab.atomic import atomic_write_bytes  # noqa: E402

EPOCH_LABEL = "epoch"
ACC_LABEL = "accuracy (%)"
LR_LABEL = "learning rate (lr)"


#: each task's loss and its unit (one loss axis holds one of them)
LOSS_UNITS = {"classification": "cross-entropy, nats", "regression": "mean squared error"}
#: every file :func:`write_plots` may write (a report folder holds only those of its runs)
PLOT_FILES = ("train_loss.png", "val_loss.png", "val_accuracy.png", "lr.png",
              "confusion_matrix.png", "bands.png")


def loss_label(task: str) -> str:
    """The loss axis label with units for the task's loss."""
    return f"loss ({LOSS_UNITS.get(task, LOSS_UNITS['classification'])})"


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)  # no bbox_inches="tight": it draws twice
    plt.close(fig)
    return buf.getvalue()


def _as_array(xs: Sequence[Any], scale: float = 1.0) -> np.ndarray:
    return np.array([np.nan if x is None or not math.isfinite(float(x)) else float(x) * scale
                     for x in xs], dtype=float)


def curves_by_name(runs: Sequence[dict[str, Any]], key: str, scale: float = 1.0
                   ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per run name: (epochs, mean over seeds, std over seeds) of ``history[key]``.

    Epochs missing for some seeds (early stop, divergence) average the seeds that have them.
    """
    grouped: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        grouped.setdefault(run["name"], []).append(run["history"])
    out = {}
    for name, hists in grouped.items():
        epochs = sorted({int(e) for h in hists for e in h["epoch"]})
        if not epochs:
            continue
        table = np.full((len(hists), len(epochs)), np.nan)
        index = {e: i for i, e in enumerate(epochs)}
        for r, h in enumerate(hists):
            vals = _as_array(h[key], scale)
            for e, v in zip(h["epoch"], vals, strict=False):
                table[r, index[int(e)]] = v
        with np.errstate(all="ignore"):
            mean, std = _nanmean(table), _nanstd(table)
        out[name] = (np.array(epochs), mean, std)
    return out


def legend_labels(runs: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Per run name, its legend label: ``name (diverged)``, or ``(diverged: k of n seeds)``."""
    statuses: dict[str, list[str]] = {}
    for run in runs:
        statuses.setdefault(run["name"], []).append(str(run.get("status")))
    labels = {}
    for name, group in statuses.items():
        k = group.count("diverged")
        labels[name] = name if k == 0 else f"{name} (diverged)" if k == len(group) else (
            f"{name} (diverged: {k} of {len(group)} seeds)")
    return labels


def _nanmean(t: np.ndarray) -> np.ndarray:
    counts = np.sum(~np.isnan(t), axis=0)
    sums = np.nansum(t, axis=0)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _nanstd(t: np.ndarray) -> np.ndarray:
    mean = _nanmean(t)
    counts = np.sum(~np.isnan(t), axis=0)
    sq = np.nansum((t - mean) ** 2, axis=0)
    return np.where(counts > 1, np.sqrt(sq / np.maximum(counts - 1, 1)), 0.0)


def line_plot(runs: Sequence[dict[str, Any]], key: str, *, ylabel: str, title: str,
              log: bool = False, scale: float = 1.0) -> bytes:
    """All runs' ``history[key]`` against epoch, one line per run name."""
    fig, ax = plt.subplots(figsize=(10.5, 4.5))
    fig.subplots_adjust(left=0.08, right=0.62, bottom=0.12, top=0.92)  # legend on the right
    labels = legend_labels(runs)
    for name, (epochs, mean, _) in curves_by_name(runs, key, scale).items():
        if log:
            mean = np.where(mean > 0, mean, np.nan)
        ax.plot(epochs, mean, marker="." if len(epochs) < 40 else None, label=labels[name])
    if log:
        ax.set_yscale("log")
    ax.set_xlabel(EPOCH_LABEL)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return _png(fig)


def bands_plot(runs: Sequence[dict[str, Any]], *, task: str) -> bytes:
    """Mean ± std over seeds: train loss (log scale) and validation accuracy or loss."""
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.5))
    fig.subplots_adjust(left=0.06, right=0.74, bottom=0.12, top=0.9, wspace=0.25)
    second = ("val_accuracy", ACC_LABEL, 100.0) if task == "classification" else (
        "val_loss", loss_label(task), 1.0)
    panels = (("train_loss", loss_label(task), 1.0), second)
    labels = legend_labels(runs)
    for ax, (key, ylabel, scale) in zip(axes, panels, strict=True):
        for name, (epochs, mean, std) in curves_by_name(runs, key, scale).items():
            (line,) = ax.plot(epochs, mean, label=labels[name])
            lo, hi = mean - std, mean + std
            if key == "train_loss":
                lo = np.where(lo > 0, lo, mean / 10)
            ax.fill_between(epochs, lo, hi, color=line.get_color(), alpha=0.2)
        if key == "train_loss":
            ax.set_yscale("log")
        ax.set_xlabel(EPOCH_LABEL)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{key.replace('_', ' ')}: mean ± std over seeds")
        ax.grid(True, alpha=0.3)
    axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    return _png(fig)


def confusion_plot(matrix: Sequence[Sequence[int]], class_names: Sequence[str],
                   title: str) -> bytes:
    """A confusion matrix heat map with counts in each cell (rows: true class)."""
    m = np.array(matrix, dtype=float)
    n = m.shape[0]
    names = list(class_names) if len(class_names) == n else [str(i) for i in range(n)]
    fig, ax = plt.subplots(figsize=(5.5, 5))
    im = ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(n), names, rotation=45 if n > 10 else 0, fontsize=8)
    ax.set_yticks(range(n), names, fontsize=8)
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=7,
                        color="white" if m[i, j] > m.max() / 2 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label="test examples (count)")
    fig.tight_layout()
    return _png(fig)


def best_run(runs: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The run with the highest test accuracy that has a confusion matrix and did not diverge."""
    candidates = [r for r in runs if r.get("confusion_matrix") and r.get("test_accuracy")
                  is not None and r.get("status") != "diverged"]
    return max(candidates, key=lambda r: r["test_accuracy"]) if candidates else None


def write_plots(runs: Sequence[dict[str, Any]], out_dir: str | Path, *, task: str,
                class_names: Sequence[str] = (), seeds: int = 1) -> list[tuple[str, str]]:
    """Write every plot that applies into ``out_dir``; return ``[(filename, caption)]``."""
    out = Path(out_dir)
    mean = " (mean over seeds)" if seeds > 1 else ""
    plots = [
        ("train_loss.png", "Training loss per epoch, log scale" + mean,
         line_plot(runs, "train_loss", ylabel=loss_label(task), log=True,
                   title="train loss" + mean)),
        ("val_loss.png", "Validation loss per epoch" + mean,
         line_plot(runs, "val_loss", ylabel=loss_label(task), title="validation loss" + mean)),
    ]
    if task == "classification":
        plots.append(("val_accuracy.png", "Validation accuracy per epoch" + mean,
                      line_plot(runs, "val_accuracy", ylabel=ACC_LABEL, scale=100.0,
                                title="validation accuracy" + mean)))
    plots.append(("lr.png", "Learning rate per epoch",
                  line_plot(runs, "lr", ylabel=LR_LABEL, log=True, title="learning rate")))
    best = best_run(runs)
    if best is not None:
        caption = f"Confusion matrix of the best run on the test split: {best['name']}"
        plots.append(("confusion_matrix.png", caption,
                      confusion_plot(best["confusion_matrix"], class_names,
                                     f"best: {best['name']} (seed {best['seed']})")))
    if seeds > 1:
        plots.append(("bands.png", "Mean ± standard deviation over seeds",
                      bands_plot(runs, task=task)))
    for filename, _, png in plots:
        atomic_write_bytes(out / filename, png)
    return [(filename, caption) for filename, caption, _ in plots]
