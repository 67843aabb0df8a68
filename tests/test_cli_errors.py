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
def _file(name: str, text: str = "x") -> Callable[[Path], None]:
    return lambda root: (root / name).write_text(text)


def _old_out(root: Path) -> None:
    (root / "old").mkdir()
    (root / "old" / "bands.png").write_text("stale")


def _c(*args: str) -> tuple[str, ...]:
    return ("compare", "--epochs", "2", *args)


PLAN_CASES: list[Bad] = [
    Bad(("compare", "--optimizer", "nosuch"), "unknown optimizer 'nosuch'", id="unknown-opt"),
    Bad(_c("--optimizer", "torch.Nope"), "torch.<Name> for torch.optim's classes",
        id="unknown-torch-opt"),
    Bad(_c("--optimizer", "sgd:lr=0.1,maximize=no"), "maximize must be true or false",
        id="bool-no"),
    Bad(_c("--optimizer", "adam:amsgrad=off"), "amsgrad must be true or false", id="bool-off"),
    *[Bad(_c("--optimizer", f"sgd:lr={v}"), "lr must be a finite number", id=f"lr-{v}")
      for v in ("abc", "nan", "inf", "1e999")],
    Bad(_c("--optimizer", "sgd:lr=" + "9" * 5000), "invalid value '999", id="lr-5000-digits"),
    Bad(_c("--optimizer", "sgd:lr=" + "9" * 4000), "lr must be a finite number",
        id="lr-4000-digits"),
    Bad(_c("--optimizer", "adam:capturable=true"), "CUDA-graph capture", id="capturable"),
    Bad(_c("--optimizer", "torch.SparseAdam"), "torch.SparseAdam is not supported",
        id="sparse-adam"),
    Bad(_c("--optimizer", "torch.Muon"), "torch.Muon", id="muon-on-biases"),  # built for real
    Bad(_c("--scheduler", "steplr:step_size=0"), "fails at step 1", id="steplr-0"),
    Bad(_c("--scheduler", "steplr:step_size=abc"), "step_size must be an integer",
        id="steplr-abc"),
    Bad(_c("--scheduler", "steplr:step_size=1,gamma=-1"), "learning rate -0.001",
        id="negative-lr"),
    Bad(("compare", "--scheduler", "polynomiallr:power=-1"), "fails at step 5 of 30",
        id="polynomial-power"),
    Bad(_c("--scheduler", "onecyclelr:max_lr=0.1,total_steps=1"), "fails at step 2",
        id="onecycle-short"),
    Bad(_c("--optimizer", "adadelta", "--scheduler", "cycliclr:base_lr=0.01,max_lr=0.1"),
        "momentum", id="cyclic-adadelta"),
    Bad(_c("--scheduler", "nosuch\nx"), "unknown scheduler", id="scheduler-literal-backslash-n"),
    Bad(_c("--scheduler", "steplr:step_size=1,gamma='a\nb'"), "for 'gamma'",
        id="scheduler-newline-value"),
    Bad(_c("--scheduler", "steplr:step_size=1,gamma='a\\nb'"), "gamma must be a finite number",
        id="scheduler-escaped-newline-value"),
    Bad(_c("--seed", "99999999999999999999"), "seed must be between 0 and 2**63-1",
        id="seed-huge"),
    Bad(_c("--threads", "100000"), "threads must be between 1 and", id="threads-huge"),
    Bad(_c("--patience", "0"), "patience must be >= 1", id="patience-0"),
    Bad(_c("--min-delta", "nan"), "min_delta must be a finite number", id="min-delta-nan"),
    Bad(_c("--config", "lab.toml"), "min_delta must be a finite number",
        setup=_file("lab.toml", "min_delta = nan\n"), id="toml-min-delta-nan"),
    Bad(_c("--config", "lab.toml"), "nesterov must be true or false",
        setup=_file("lab.toml", 'optimizer = ["sgd:momentum=0.9,nesterov=\'yes\'"]\n'),
        id="toml-bool"),
    Bad(("compare", "--resume", "old", "--force"), "drop --force", setup=_old_out,
        id="resume-force"),
    # the output folder (checked with the plan, before anything is written)
    Bad(_c("--out", "taken"), "is a file, not a folder", setup=_file("taken"), id="out-file"),
    Bad(_c("--out", "taken/sub"), "is a file, so no folder", setup=_file("taken"),
        id="out-under-file"),
    Bad(_c("--out", "/dev/null"), "is a file, not a folder", id="out-dev-null"),
    Bad(_c("--out", "/proc/optimlab-out"), "/proc", id="out-unwritable"),
    Bad(_c("--out", "old"), "already holds files; choose a new or empty folder, or add --force",
        setup=_old_out, id="out-not-empty"),
    Bad(_c("--out", "old", "--force"), "empties only a comparison's folder", setup=_old_out,
        id="force-foreign-folder"),
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
