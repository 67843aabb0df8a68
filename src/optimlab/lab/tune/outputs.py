"""A tune's files: results.json, trials.csv, lr_sensitivity.png, reruns.png, defaults.png,
lr.png, telemetry_update_ratio.png (with telemetry), report.html.

All written atomically; the rerun curves and the report's mean ± std table reuse compare's
plots and report (tuned reruns and untuned defaults are runs named ``… [tuned]`` and
``… [default]``); the tune table and the LR-sensitivity plot are the tune's own.
"""

from __future__ import annotations

import csv
import html
import io
import math
from pathlib import Path
from typing import Any

from optimlab.atomic import atomic_write_bytes, atomic_write_text
from optimlab.lab import results
from optimlab.lab.telemetry_plots import write_telemetry_plots
from optimlab.lab.tune.config import TuneConfig
from optimlab.lab.tune.summary import table_cells

METRIC_LABELS = {"val_loss": "validation loss, last epoch ({units})",
                 "val_accuracy": "validation accuracy, last epoch (%)"}


def write_trials_csv(path: Path, entries: list[dict[str, Any]], metric: str) -> None:
    """One row per trial: optimizer, number, state, diverged, value, epochs, seconds, params."""
    names = list(dict.fromkeys(k for e in entries for t in e["trials"] for k in t["params"]
                               if k != "lr"))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["optimizer", "number", "state", "diverged", metric, "epochs", "seconds", "lr",
                *names])
    for e in entries:
        for t in e["trials"]:
            lr = t["hparams"].get("lr")
            w.writerow([e["name"], t["number"], t["state"], t["diverged"],
                        "" if t["value"] is None else t["value"], t["epochs"],
                        f"{t['seconds']:.3f}", "" if lr is None else lr,
                        *("" if t["params"].get(n) is None else t["params"][n]
                          for n in names)])
    atomic_write_text(path, buf.getvalue())


def lr_sensitivity_png(entries: list[dict[str, Any]], metric: str, task: str) -> bytes:
    """DeepOBS's plot: each trial's metric against its lr (log x); pruned hollow, diverged ×."""
    from optimlab.lab import plots

    plt = plots.plt
    fig, ax = plt.subplots(figsize=(10.5, 4.8))
    fig.subplots_adjust(left=0.08, right=0.62, bottom=0.12, top=0.92)
    scale = 100.0 if metric == "val_accuracy" else 1.0
    finite = [scale * t["value"] for e in entries for t in e["trials"]
              if t["value"] is not None and math.isfinite(t["value"]) and not t["diverged"]]
    top = max(finite) if finite else 1.0
    edge = (0.0 if metric == "val_accuracy" else top * 1.3)
    for e in entries:
        done = [(t["hparams"]["lr"], scale * t["value"]) for t in e["trials"]
                if t["state"] == "complete" and not t["diverged"] and t["value"] is not None
                and isinstance(t["hparams"].get("lr"), int | float)]
        done.sort()
        (line,) = ax.plot([x for x, _ in done], [y for _, y in done], marker="o",
                          markersize=4, label=e["name"])
        pruned = [(t["hparams"]["lr"], scale * t["value"]) for t in e["trials"]
                  if t["state"] == "pruned" and t["value"] is not None]
        if pruned:
            ax.scatter([x for x, _ in pruned], [y for _, y in pruned], facecolors="none",
                       edgecolors=line.get_color(), marker="o", s=30)
        diverged = [t["hparams"]["lr"] for t in e["trials"] if t["diverged"]]
        if diverged:
            ax.scatter(diverged, [edge] * len(diverged), color=line.get_color(), marker="x",
                       s=40)
    ax.set_xscale("log")
    if metric == "val_loss" and finite and min(finite) > 0:
        ax.set_yscale("log")  # a poor lr's loss is 10-100x a good one's
    ax.set_xlabel(plots.LR_LABEL)
    ax.set_ylabel(METRIC_LABELS[metric].format(units=plots.loss_label(task)
                                               .removeprefix("loss (").rstrip(")")))
    ax.set_title("LR sensitivity: every trial (hollow: pruned, ×: diverged)")
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def rerun_runs(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tuned reruns and the untuned defaults' reruns, as compare-style run records."""
    runs: list[dict[str, Any]] = []
    seen: set[str] = set()
    for e in entries:
        groups = ([e["reruns"]] if e["reruns"] else []) + e["defaults"]
        for g in groups:
            for r in g["runs"]:
                if r["key"] not in seen:
                    seen.add(r["key"])
                    runs.append(r)
    return runs


def write_plots(out: Path, entries: list[dict[str, Any]], config: TuneConfig, task: str
                ) -> list[tuple[str, str]]:
    from optimlab.lab import plots

    written = [("lr_sensitivity.png",
                f"{config.metric} of every trial against its learning rate "
                f"({config.trials} trials per optimizer, seed {config.seed})",
                lr_sensitivity_png(entries, config.metric, task))]
    runs = rerun_runs(entries)
    tuned = [r for r in runs if r["kind"] == "tuned"]
    defaults = [r for r in runs if r["kind"] == "default"]
    if tuned:
        written.append(("reruns.png", f"Each best configuration rerun on {config.seeds} "
                        "other seeds: mean ± std", plots.bands_plot(tuned, task=task)))
    if defaults:
        written.append(("defaults.png", "The untuned default compare specs on the same "
                        "seeds: mean ± std", plots.bands_plot(defaults, task=task)))
    if tuned:
        written.append(("lr.png", lr_caption(config),
                        plots.line_plot(tuned, "lr", ylabel=plots.LR_LABEL, log=True,
                                        title="learning rate of the tuned reruns")))
    for filename, _, png in written:
        atomic_write_bytes(out / filename, png)
    return [(f, c) for f, c, _ in written] + write_telemetry_plots(runs, out)


def lr_caption(config: TuneConfig) -> str:
    """What lr.png shows: the tuned lr, constant or under the tune's scheduler."""
    if config.scheduler is None:
        return "Learning rate per epoch of each tuned rerun (constant: no --scheduler)"
    return (f"Learning rate per epoch of each tuned rerun under --scheduler "
            f"{config.scheduler}, stepped per {config.schedule_every} (the rate at the first "
            "batch of each epoch)")


def tune_table_html(entries: list[dict[str, Any]], config: TuneConfig) -> str:
    header, body = table_cells(entries, config)
    out = ['<h2>Tuned</h2>',
           f"<p>Each optimizer: {config.trials} trials of {config.epochs} epochs "
           f"({config.sampler} sampler, {config.pruner} pruner), selected by the last "
           f"epoch's {config.metric} on the validation split; the best configuration and the "
           f"untuned default compare spec rerun on {config.seeds} other seeds (mean ± std). "
           "trials c/p/d/f: completed / pruned / diverged / failed.</p>",
           '<table id="tune"><thead><tr>']
    out += [f"<th>{html.escape(h)}</th>" for h in header]
    out.append("</tr></thead><tbody>")
    for cells in body:
        out.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def write_report(out: Path, entries: list[dict[str, Any]], config: TuneConfig,
                 environment: dict[str, Any], plots_written: list[tuple[str, str]]) -> Path:
    """report.html: the tune table, then compare's report of the reruns (table and plots)."""
    from optimlab.lab import report

    images = [(f, c, (out / f).read_bytes()) for f, c in plots_written]
    note = (f"{config.dataset} / {config.model}, {config.epochs} epochs, batch "
            f"{config.batch_size}. The results table below is the reruns: '[tuned]' is each "
            "optimizer's best trial, '[default]' the default comparison's hand-picked spec, "
            "on the same seeds.")
    page = report.render_report(title=f"optimlab tune — {out.name}",
                                runs=rerun_runs(entries), config=config.to_dict(),
                                environment=environment, images=images, note=note)
    section = tune_table_html(entries, config)
    marker = "<h2>Results</h2>"
    page = (page.replace(marker, section + "\n" + marker, 1) if marker in page
            else page.replace("</body>", section + "\n</body>", 1))
    path = out / "report.html"
    atomic_write_text(path, page)
    return path


def write_results(out: Path, payload: dict[str, Any]) -> None:
    results.write_json(out / "results.json", payload)
