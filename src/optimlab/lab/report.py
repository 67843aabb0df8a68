"""report.html: one self-contained file — inline CSS, images as base64 data URIs, no URLs.

It opens offline in any browser and can be mailed around: the config, the environment, the
results table (same cells as the terminal table) and every plot of the comparison.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from optimlab.atomic import atomic_write_text
from optimlab.lab.results import grouped_rows, table_cells

_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
th { background: #f0f0f0; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.diverged td { color: #a00; }
pre { background: #f7f7f7; padding: 0.8em; font-size: 0.8em; overflow-x: auto; }
figure { margin: 1em 0; } figcaption { font-size: 0.85em; color: #555; }
img { max-width: 100%; border: 1px solid #eee; }
"""


def _table_html(runs: Sequence[dict[str, Any]]) -> str:
    rows = grouped_rows(runs)
    header, body = table_cells(rows)
    numeric = set(range(2, len(header))) - {len(header) - 2}
    out = ['<table id="results">', "<thead><tr>"]
    out += [f"<th>{html.escape(h)}</th>" for h in header]
    out.append("</tr></thead><tbody>")
    for row, cells in zip(rows, body, strict=True):
        cls = ' class="diverged"' if "diverged" in str(row["status"]) else ""
        out.append(f"<tr{cls}>")
        out += [f'<td class="num">{html.escape(c)}</td>' if i in numeric
                else f"<td>{html.escape(c)}</td>" for i, c in enumerate(cells)]
        out.append("</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _figure(png: bytes, filename: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}"'
            f' data-file="{html.escape(filename)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def render_report(*, title: str, runs: Sequence[dict[str, Any]], config: dict[str, Any],
                  environment: dict[str, Any], images: Sequence[tuple[str, str, bytes]],
                  note: str = "") -> str:
    """The report as an HTML string; ``images`` are ``(filename, caption, png_bytes)``."""
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if note:
        parts.append(f"<p>{html.escape(note)}</p>")
    parts += ["<h2>Results</h2>",
              "<p>Sorted by test accuracy. Accuracies in %, losses in the task's loss units; "
              "val acc is the last validated epoch's; train loss is the last epoch's.</p>",
              _table_html(runs), "<h2>Plots</h2>"]
    parts += [_figure(png, filename, caption) for filename, caption, png in images]
    parts += ["<h2>Config</h2>",
              f'<pre id="config">{html.escape(json.dumps(config, indent=2, default=repr))}</pre>',
              "<h2>Environment</h2>",
              f'<pre id="environment">'
              f"{html.escape(json.dumps(environment, indent=2, default=repr))}</pre>",
              "</body></html>"]
    return "\n".join(parts) + "\n"


def write_report(out_dir: str | Path, *, title: str, runs: Sequence[dict[str, Any]],
                 config: dict[str, Any], environment: dict[str, Any],
                 plots: Sequence[tuple[str, str]], note: str = "") -> Path:
    """Write ``out_dir/report.html`` embedding the PNGs listed in ``plots``; return its path."""
    out = Path(out_dir)
    images = [(f, c, (out / f).read_bytes()) for f, c in plots]
    path = out / "report.html"
    atomic_write_text(path, render_report(title=title, runs=runs, config=config,
                                          environment=environment, images=images, note=note))
    return path
