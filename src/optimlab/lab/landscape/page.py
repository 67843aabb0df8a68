"""landscape.html: one self-contained page in the style of compare's report.html.

The stylesheet and the PNG figure come from :mod:`optimlab.lab.report`; the table (one row per
optimizer: status, steps taken, end point, f there, distance to the nearest minimum) and the
animated GIF are the landscape's own.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Sequence
from typing import Any

from optimlab.lab.landscape.functions import TestFunction
from optimlab.lab.landscape.run import Trajectory
from optimlab.lab.report import _CSS, _figure


def nearest_minimum_distance(fn: TestFunction, point: tuple[float, float]) -> float | None:
    """Euclidean distance from ``point`` to the closest global minimum (None if f has none)."""
    if not fn.minima:
        return None
    return min(math.dist(point, m) for m in fn.minima)


def _table(fn: TestFunction, runs: Sequence[Trajectory]) -> str:
    header = ("optimizer", "spec", "status", "steps taken", "end x", "end y", "f at end",
              "distance to nearest minimum")
    out = ['<table id="runs">', "<thead><tr>"]
    out += [f"<th>{html.escape(h)}</th>" for h in header]
    out.append("</tr></thead><tbody>")
    for run in runs:
        x, y = run.path[-1]
        dist = nearest_minimum_distance(fn, (x, y))
        cells = [(run.name, False), (run.spec, False), (run.status, False),
                 (str(len(run.path) - 1), True), (f"{x:.4g}", True), (f"{y:.4g}", True),
                 (f"{run.loss[-1]:.4g}", True), ("—" if dist is None else f"{dist:.4g}", True)]
        cls = ' class="diverged"' if run.status == "diverged" else ""
        out.append(f"<tr{cls}>")
        out += [f'<td class="num">{html.escape(c)}</td>' if num else f"<td>{html.escape(c)}</td>"
                for c, num in cells]
        out.append("</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _gif_figure(gif: bytes, filename: str, caption: str) -> str:
    data = base64.b64encode(gif).decode("ascii")
    return (f'<figure><img src="data:image/gif;base64,{data}" alt="{html.escape(caption)}"'
            f' data-file="{html.escape(filename)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def render_page(*, fn: TestFunction, runs: Sequence[Trajectory], settings: dict[str, Any],
                contour: tuple[str, str, bytes], animation: tuple[str, str, bytes]) -> str:
    """The page as an HTML string; ``contour``/``animation`` are ``(filename, caption, bytes)``."""
    title = f"optimlab landscape — {fn.name}"
    minima = ", ".join(f"({x:g}, {y:g})" for x, y in fn.minima) or "none (unbounded below)"
    (x0, x1), (y0, y1) = fn.domain
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>f(x, y) = {html.escape(fn.formula)} — {html.escape(fn.about)}. Domain x in "
        f"[{x0:g}, {x1:g}], y in [{y0:g}, {y1:g}]; global minima: {html.escape(minima)}. "
        f"Every optimizer starts at ({settings['start'][0]:g}, {settings['start'][1]:g}) and "
        f"takes up to {settings['steps']} steps; gradient noise σ = {settings['noise']:g} "
        f"(seed {settings['seed']}). A run that leaves the domain or stops being finite is cut "
        "there and marked diverged. Coordinates and f are unitless.</p>",
        "<h2>Runs</h2>", _table(fn, runs), "<h2>Paths</h2>",
        _figure(contour[2], contour[0], contour[1]),
        _gif_figure(animation[2], animation[0], animation[1]),
        "<h2>Settings</h2>",
        f'<pre id="config">{html.escape(json.dumps(settings, indent=2))}</pre>',
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
