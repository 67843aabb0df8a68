"""Every user mistake: exit 2, one ``optimlab: error: …`` line, no traceback, nothing created.

One table drives the CLI (in-process through ``cli.main``, so it is quick) over bad inputs. Each
case runs in a fresh empty folder; afterwards the folder must hold exactly what the case's own
setup put there — no ``runs/``, no out folder, no store rows, no ``comparison.json``.

Cases are grouped by the part of the program that must catch them; a group is a list of
:class:`Bad`. Add a row for every new mistake a command must refuse.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from optimlab import cli


@dataclass(frozen=True)
class Bad:
    """A bad command line, what its one-line error must contain, and optional setup."""

    args: tuple[str, ...]
    fragment: str  # a piece of the error line (case-sensitive)
    setup: Callable[[Path], None] | None = None  # writes the case's input files into the folder
    id: str = ""


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def run_bad(case: Bad, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Run ``case`` in ``tmp_path``; assert exit 2, one line, no traceback, nothing created."""
    if case.setup is not None:
        case.setup(tmp_path)
    before = _tree(tmp_path)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        code = cli.main(list(case.args))
    except SystemExit as e:  # argparse's own usage errors
        code = e.code
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("optimlab: error: "), err
    assert "Traceback" not in err
    assert len(lines[0]) <= 300, lines[0]
    assert case.fragment in lines[0], lines[0]
    assert _tree(tmp_path) == before, sorted(_tree(tmp_path) - before)


# -- the plan: specs, values, schedulers, config (checked before anything is written) -------
PLAN_CASES: list[Bad] = [
    Bad(("compare", "--optimizer", "nosuch"), "unknown optimizer 'nosuch'", id="unknown-opt"),
]

# -- files and folders: data files, out/store paths, the run store, reports -------------------
IO_CASES: list[Bad] = [
    Bad(("runs", "list", "--store", "missing.sqlite"), "missing.sqlite", id="missing-store"),
]

# -- commands added by later work append their own groups here (tune, landscape, …) ----------
OTHER_CASES: list[Bad] = []

# landscape: function, start, steps, noise, optimizer specs and --out, all before any run
OTHER_CASES += [
    Bad(("landscape", "--function", "sphere"), "unknown function 'sphere'; valid: rosenbrock",
        id="landscape-function"),
    Bad(("landscape", "--start", "3,0"), "outside rosenbrock's domain", id="landscape-start"),
    Bad(("landscape", "--function", "beale", "--start", "0,nan"), "must be finite",
        id="landscape-start-nan"),
    Bad(("landscape", "--start", "1"), "expected X,Y", id="landscape-start-format"),
    Bad(("landscape", "--steps", "0"), "steps must be an integer in 1", id="landscape-steps"),
    Bad(("landscape", "--noise", "-0.5"), "noise must be a finite number >= 0",
        id="landscape-noise"),
    Bad(("landscape", "--noise", "inf"), "noise must be a finite number", id="landscape-noise-inf"),
    Bad(("landscape", "--noise", "x"), "invalid float value", id="landscape-noise-word"),
    Bad(("landscape", "--optimizer", "adam:lr=-1"), "Invalid learning rate",
        id="landscape-bad-lr"),
    Bad(("landscape", "--optimizer", "nosuch"), "unknown optimizer 'nosuch'",
        id="landscape-optimizer"),
    Bad(("landscape", "--out", "taken"), "exists and is not a folder",
        setup=lambda root: (root / "taken").write_text("x"), id="landscape-out-file"),
]

ALL_CASES = PLAN_CASES + IO_CASES + OTHER_CASES


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id or " ".join(c.args) for c in ALL_CASES])
def test_user_mistake_is_one_line_and_writes_nothing(case, tmp_path, capsys):
    run_bad(case, tmp_path, capsys)
