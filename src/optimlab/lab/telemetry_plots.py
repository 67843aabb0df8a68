"""The report's telemetry figure: update/parameter ratio per layer over epochs, per optimizer.

Small multiples — one panel per optimizer (the first seed of each), one line per layer, the
same log-scaled y axis everywhere — so both questions read at a glance: which layers an
optimizer moves most (within a panel) and how hard each optimizer pushes the weights (across
panels). The ratio ‖Δ‖₂/‖p‖₂ of the last step of each epoch is the quantity usually watched
(~1e-3 is the classic rule of thumb for a healthy step).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from optimlab.atomic import atomic_write_bytes

RATIO = "l2_norm_ratio/update_param/"
FILENAME = "telemetry_update_ratio.png"


def ratio_series(run: dict[str, Any]) -> dict[str, tuple[list[int], list[float]]]:
    """Layer → (epochs, finite positive ratios) from a results.json run (empty if none)."""
    history = run.get("history", {})
    epochs = history.get("epoch", [])
    out = {}
    for tag, values in (history.get("telemetry") or {}).items():
        if not tag.startswith(RATIO):
            continue
        points = [(int(e), float(v)) for e, v in zip(epochs, values, strict=False)
                  if v is not None and math.isfinite(float(v)) and float(v) > 0]
        if points:
            out[tag[len(RATIO):]] = ([e for e, _ in points], [v for _, v in points])
    return out


def update_ratio_png(runs: Sequence[dict[str, Any]]) -> bytes | None:
    """The small-multiples figure as PNG bytes, or None when no run has telemetry."""
    first: dict[str, dict[str, Any]] = {}
    for run in runs:
        first.setdefault(run["name"], run)  # runs are in seed order: keep the first seed
    panels = [(name, ratio_series(run)) for name, run in first.items()]
    panels = [(name, series) for name, series in panels if series]
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.9 * rows + 0.8), sharex=True,
                             sharey=True, squeeze=False)
    layers = sorted({layer for _, series in panels for layer in series})
    colors = {layer: matplotlib.colormaps["tab10"](i % 10) for i, layer in enumerate(layers)}
    for ax, (name, series) in zip(axes.flat, panels, strict=False):
        for layer, (epochs, values) in series.items():
            ax.plot(epochs, values, color=colors[layer], label=layer,
                    marker="." if len(epochs) < 40 else None)
        ax.set_yscale("log")
        ax.set_title(name, fontsize=9)
        ax.grid(True, alpha=0.3)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    for ax in axes[:, 0]:
        ax.set_ylabel("‖update‖ / ‖param‖")
    handles = [plt.Line2D([], [], color=colors[layer], label=layer) for layer in layers]
    fig.legend(handles=handles, loc="upper center", ncol=min(len(layers), 6), fontsize=8,
               frameon=False, title="layer (parameter name)", title_fontsize=8)
    height = 2.9 * rows + 0.8  # inches: the panels, then the legend's band at the top
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.55 / height, top=1 - 0.85 / height,
                        hspace=0.35, wspace=0.08)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def write_telemetry_plots(runs: Sequence[dict[str, Any]], out_dir: str | Path
                          ) -> list[tuple[str, str]]:
    """Write the figure into ``out_dir`` when there is telemetry; ``[(filename, caption)]``."""
    png = update_ratio_png(runs)
    if png is None:
        return []
    atomic_write_bytes(Path(out_dir) / FILENAME, png)
    return [(FILENAME, "Update/parameter ratio ‖Δ‖₂/‖p‖₂ per layer at the last step of each "
             "epoch (telemetry; first seed of each optimizer; log scale, unitless)")]
