"""The landscape's pictures: a contour plot with every path, and a GIF of the paths growing.

matplotlib (Agg) draws; the GIF's frames are encoded by Pillow. Both return bytes, so the
caller writes them atomically. The contour levels are log-spaced for functions whose values
span decades (Rosenbrock, Beale, Himmelblau, the quadratic), linear otherwise.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from optimlab.lab.landscape.functions import TestFunction
from optimlab.lab.landscape.run import Trajectory

GRID = 240  # contour grid points per axis
MAX_FRAMES = 60  # frames in the animation (steps are sampled evenly, the last one included)
FRAME_MS = 80  # display time per frame; the last frame is held 2 s
LEVELS = 30
LEGEND_WIDTH = 34  # characters per legend line
DPI = 70  # the animation's resolution (the contour PNG uses 80 like compare's plots)
PALETTE_COLORS = 160  # GIF palette size, taken from the last frame


def _grid(fn: TestFunction) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    (x0, x1), (y0, y1) = fn.domain
    xs = torch.linspace(x0, x1, GRID, dtype=torch.float64)
    ys = torch.linspace(y0, y1, GRID, dtype=torch.float64)
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    return gx.numpy(), gy.numpy(), fn(gx, gy).numpy()


def _base_figure(fn: TestFunction, title: str) -> tuple[Any, Any, list[Any]]:
    """Figure, axes and minima markers, over the filled contours with their colour bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    gx, gy, gz = _grid(fn)
    fig, ax = plt.subplots(figsize=(10.5, 5.6))
    fig.subplots_adjust(left=0.07, right=0.6, bottom=0.1, top=0.92)
    if fn.log_levels:
        # whole decades from the grid's smallest positive value (at most 9 below the top)
        top = math.ceil(math.log10(float(gz.max())))
        bottom = max(math.floor(math.log10(float(gz[gz > 0].min()))), top - 9)
        levels = np.logspace(bottom, top, 3 * (top - bottom) + 1)
        filled = ax.contourf(gx, gy, np.clip(gz, levels[0], levels[-1]), levels=levels,
                             norm=LogNorm(), cmap="viridis", alpha=0.85)
        label = "f(x, y), log scale"
    else:
        filled = ax.contourf(gx, gy, gz, levels=LEVELS, cmap="viridis", alpha=0.85)
        label = "f(x, y)"
    bar = fig.colorbar(filled, ax=ax, label=label, fraction=0.05, pad=0.02)
    if fn.log_levels:
        bar.set_ticks([t for t in levels if float(np.log10(t)).is_integer()])
    stars = []
    for i, (mx, my) in enumerate(fn.minima):
        stars += ax.plot(mx, my, marker="*", markersize=16, color="white", markeredgecolor="black",
                linestyle="none", label="global minimum" if i == 0 else None, zorder=4)
    (x0, x1), (y0, y1) = fn.domain
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title)
    return fig, ax, stars


def _colors(n: int) -> list[Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _label(run: Trajectory) -> str:
    """The legend entry, wrapped at commas so long specs stay beside the plot."""
    text = run.name + (" — diverged" if run.status == "diverged" else "")
    return textwrap.fill(text, LEGEND_WIDTH, subsequent_indent="  ", break_on_hyphens=False)


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def contour_png(fn: TestFunction, runs: Sequence[Trajectory], title: str) -> bytes:
    """Every path over the contours; the start is a black dot, a diverged end a cross."""
    fig, ax, _ = _base_figure(fn, title)
    for run, color in zip(runs, _colors(len(runs)), strict=True):
        xy = np.array(run.path)
        ax.plot(xy[:, 0], xy[:, 1], color=color, linewidth=1.6, label=_label(run))
        ax.plot(xy[-1, 0], xy[-1, 1], marker="x" if run.status == "diverged" else "o",
                color=color, markersize=7, markeredgecolor="black")
    sx, sy = runs[0].path[0]
    ax.plot(sx, sy, "o", color="black", markersize=6, label="start")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.22, 1.0), frameon=False)
    return _png(fig)


def frame_steps(steps: int, max_frames: int = MAX_FRAMES) -> list[int]:
    """The step counts the frames show: 0 … ``steps``, evenly spaced, both ends included."""
    return sorted({int(round(s)) for s in np.linspace(0, steps, min(steps + 1, max_frames))})


def animation_gif(fn: TestFunction, runs: Sequence[Trajectory], title: str, steps: int,
                  max_frames: int = MAX_FRAMES) -> bytes:
    """A GIF of the paths drawn step by step; every frame's title shows its step count.

    The contours are rendered once and kept as a background (Agg blitting); each frame restores
    it and draws only the paths, their heads and the title. Every frame is mapped onto the
    palette of the last (fullest) frame, so unchanged pixels stay identical between frames and
    Pillow stores only the changed rectangle.
    """
    from PIL import Image

    fig, ax, stars = _base_figure(fn, title)
    fig.set_dpi(DPI)
    moving = []
    for run, color in zip(runs, _colors(len(runs)), strict=True):
        (line,) = ax.plot([], [], color=color, linewidth=1.6, label=_label(run), animated=True)
        (head,) = ax.plot([], [], "o", color=color, markersize=6, markeredgecolor="black",
                          animated=True)
        moving.append((line, head, np.array(run.path)))
    sx, sy = runs[0].path[0]
    ax.plot(sx, sy, "o", color="black", markersize=6, label="start")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.22, 1.0), frameon=False)
    ax.set_title("")
    label = ax.text(0.5, 1.02, "", transform=ax.transAxes, ha="center", va="bottom",
                    fontsize=12, animated=True)
    canvas = fig.canvas
    canvas.draw()
    background = canvas.copy_from_bbox(fig.bbox)  # type: ignore[attr-defined]
    rgb = []
    for k in frame_steps(steps, max_frames):
        canvas.restore_region(background)  # type: ignore[attr-defined]
        for line, head, xy in moving:
            upto = xy[: k + 1]  # a diverged path stops growing where it was cut
            line.set_data(upto[:, 0], upto[:, 1])
            head.set_data(upto[-1:, 0], upto[-1:, 1])
            ax.draw_artist(line)
            ax.draw_artist(head)
        for star in stars:  # the minima stay visible on top of the paths
            ax.draw_artist(star)
        label.set_text(f"{title} — step {k} / {steps}")
        ax.draw_artist(label)
        rgb.append(Image.fromarray(np.asarray(canvas.buffer_rgba())[:, :, :3].copy()))  # type: ignore[attr-defined]
    import matplotlib.pyplot as plt

    plt.close(fig)
    palette = rgb[-1].quantize(colors=PALETTE_COLORS, method=Image.Quantize.MEDIANCUT)
    frames = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in rgb]
    buf = io.BytesIO()
    durations = [FRAME_MS] * (len(frames) - 1) + [2000]
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:],
                   duration=durations, loop=0)
    return buf.getvalue()
