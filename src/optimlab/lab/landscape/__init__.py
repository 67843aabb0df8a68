"""``optimlab landscape``: optimizers on 2-D test functions, as pictures.

Every optimizer starts from the same point and takes the same number of steps on one function
(:data:`~optimlab.lab.landscape.functions.FUNCTIONS`: Rosenbrock, Beale, Rastrigin, Himmelblau,
a saddle, an ill-conditioned quadratic). Outputs, all written atomically after every input was
checked::

    trajectories.json  {"function", "start", "steps", "noise", "seed", "domain", "minima",
                        "runs": [{"name", "spec", "path": [[x, y], ...], "loss": [...],
                                  "status"}]}
    contour.png        the paths over the function's contours, with the minima
    animation.gif      the paths drawn step by step (each frame titled with its step count)
    landscape.html     a self-contained page: table of end points, both pictures, settings

Example::

    from optimlab.lab.landscape import run_landscape

    result = run_landscape(function="rosenbrock", optimizers=["sgd:lr=1e-3,momentum=0.9",
                           "adam:lr=0.05"], steps=300, out_dir="runs/landscape")
    print(result.runs[1].path[-1], result.page_path)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from optimlab.atomic import atomic_write_bytes, atomic_write_text
from optimlab.errors import UserError
from optimlab.lab.landscape.functions import FUNCTIONS, Point, TestFunction
from optimlab.lab.landscape.run import (
    DEFAULT_STEPS,
    LANDSCAPE_SUITE,
    MAX_STEPS,
    Trajectory,
    check_settings,
    get_function,
    parse_point,
    plan_specs,
    run_path,
)
from optimlab.lab.results import write_json

__all__ = [
    "DEFAULT_STEPS",
    "FUNCTIONS",
    "LANDSCAPE_SUITE",
    "MAX_STEPS",
    "Landscape",
    "TestFunction",
    "Trajectory",
    "get_function",
    "parse_point",
    "run_landscape",
    "run_path",
]


@dataclass
class Landscape:
    """What :func:`run_landscape` returns: the runs and where the outputs were written."""

    function: TestFunction
    start: Point
    steps: int
    runs: list[Trajectory]
    out_dir: Path | None
    files: dict[str, Path] = field(default_factory=dict)  # kind → path

    @property
    def page_path(self) -> Path | None:
        return self.files.get("page")


def run_landscape(*, function: str = "rosenbrock", optimizers: Sequence[str] | None = None,
                  steps: int = DEFAULT_STEPS, start: Point | None = None, noise: float = 0.0,
                  seed: int = 0, out_dir: str | Path | None = None, write: bool = True,
                  ) -> Landscape:
    """Run each optimizer spec on ``function`` from ``start`` for ``steps`` steps.

    ``optimizers`` defaults to :data:`LANDSCAPE_SUITE` (the default comparison's optimizers
    with learning rates that move on Rosenbrock), ``start`` to the function's own start,
    ``out_dir`` to ``runs/<YYYYmmdd-HHMMSS>-landscape``. Every input is checked (UserError)
    before anything runs or is written; ``write=False`` only runs.
    """
    fn = get_function(function)
    begin = fn.start if start is None else (float(start[0]), float(start[1]))
    check_settings(fn, begin, steps, noise, seed)
    planned = plan_specs(list(optimizers) if optimizers is not None else list(LANDSCAPE_SUITE))
    out = Path(out_dir) if out_dir is not None else Path("runs") / (
        time.strftime("%Y%m%d-%H%M%S") + "-landscape")
    if write:  # the last check, and the only thing written before the runs
        make_out_dir(out)
    runs = [run_path(fn, spec, start=begin, steps=steps, noise=float(noise), seed=seed,
                     name=name) for spec, name in planned]
    result = Landscape(fn, begin, steps, runs, None)
    if write:
        _write_outputs(result, out, noise=float(noise), seed=seed)
    return result


def make_out_dir(out: Path) -> None:
    """Create ``out`` (a folder, maybe existing); UserError naming the reason when it can't be.

    Checked by creating it: permission bits alone mislead (root may write anywhere, yet not
    under ``/proc``).
    """
    for part in (out, *out.parents):
        if part.exists():
            if not part.is_dir():
                raise UserError(f"--out {out}: {part} exists and is not a folder; give a "
                                "folder path")
            break
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--out {out}: cannot create the folder ({e.strerror})") from None


def _write_outputs(result: Landscape, out: Path, *, noise: float, seed: int) -> None:
    from optimlab.lab.landscape.draw import animation_gif, contour_png
    from optimlab.lab.landscape.page import render_page

    fn, runs = result.function, result.runs
    settings = {"function": fn.name, "start": list(result.start), "steps": result.steps,
                "noise": noise, "seed": seed}
    title = f"{fn.name} from ({result.start[0]:g}, {result.start[1]:g})"
    contour = ("contour.png", f"Paths on {fn.name} after up to {result.steps} steps "
               "(dot: start, star: minimum, cross: diverged)",
               contour_png(fn, runs, title))
    animation = ("animation.gif", "The same paths drawn step by step",
                 animation_gif(fn, runs, title, result.steps))
    files = {"trajectories": out / "trajectories.json", "contour": out / contour[0],
             "animation": out / animation[0], "page": out / "landscape.html"}
    write_json(files["trajectories"], {
        **settings, "domain": [list(r) for r in fn.domain],
        "minima": [list(m) for m in fn.minima], "runs": [r.to_dict() for r in runs]})
    atomic_write_bytes(files["contour"], contour[2])
    atomic_write_bytes(files["animation"], animation[2])
    atomic_write_text(files["page"], render_page(fn=fn, runs=runs, settings=settings,
                                                 contour=contour, animation=animation))
    result.out_dir, result.files = out, files
