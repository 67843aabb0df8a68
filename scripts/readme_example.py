"""Regenerate the README's example of ``optimlab compare`` from a real run, so it cannot drift.

    python scripts/readme_example.py           # run the default comparison, rewrite README.md
    python scripts/readme_example.py --check   # run it; exit 1 if README.md's numbers differ

It runs ``optimlab compare`` with no arguments in a temporary folder and replaces what lies
between the two ``readme_example.py`` markers in README.md: the console block (the first
progress line, the table, the report line) and the lessons under it, whose numbers are read
from that run's results.json. The seconds differ between machines and runs; every other
character is what the code printed. ``tests/test_cli.py`` compares the README's table with
the default comparison it runs, so a change that moves the numbers fails there until this
script is run again.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN = "<!-- readme_example.py: begin (generated, do not edit by hand) -->"
END = "<!-- readme_example.py: end -->"

LESSONS = """\
The learning rates are chosen so the notebooks' lessons show on digits:
- **Momentum.** All SGD variants use lr 1e-3. Plain SGD barely moves at that step size ({sgd}
  test accuracy, chance level). Momentum μ stretches the long-run step by 1/(1−μ): ×10 at 0.9
  ({sgd_09}), ×100 at 0.99 ({sgd_099}). Weight decay 1e-3 and Nesterov are variations on 0.99.
- **Adaptive step sizes.** Adagrad, RMSprop and Adam use lr 1e-3. Adagrad's ever-growing sum
  of squared gradients keeps shrinking its steps (train loss {adagrad}); RMSprop's and Adam's
  moving averages forget old gradients ({rmsprop} and {adam}). Adadelta uses its default
  lr 1.0 (train loss {adadelta})."""


def run_default(workdir: Path) -> tuple[str, dict[str, Any]]:
    """``optimlab compare`` (no arguments) in ``workdir``: its stdout and its results.json."""
    proc = subprocess.run([sys.executable, "-m", "optimlab", "compare"], cwd=workdir,
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "COLUMNS": "200"})
    if proc.returncode != 0:
        raise SystemExit(f"optimlab compare failed ({proc.returncode}):\n{proc.stderr}")
    report = proc.stdout.strip().splitlines()[-1].removeprefix("report: ")
    results = json.loads((workdir / report).with_name("results.json").read_text())
    return proc.stdout, results


def render(stdout: str, results: dict[str, Any]) -> str:
    """The README block: the console session and the lessons with this run's numbers."""
    lines = stdout.rstrip().splitlines()
    progress = [ln for ln in lines if ln.startswith("[")]
    table = lines[lines.index("") + 1:] if "" in lines else lines
    console = ["```console", "$ optimlab compare", progress[0], "...", *table, "```"]
    runs = {r["name"]: r for r in results["runs"]}

    def acc(name: str) -> str:
        return f"{100 * runs[name]['test_accuracy']:.0f}%"

    def loss(name: str) -> str:
        return f"{runs[name]['history']['train_loss'][-1]:#.2g}"

    lessons = LESSONS.format(
        sgd=acc("sgd(lr=0.001)"), sgd_09=acc("sgd(lr=0.001, momentum=0.9)"),
        sgd_099=acc("sgd(lr=0.001, momentum=0.99)"), adagrad=loss("adagrad(lr=0.001)"),
        rmsprop=loss("rmsprop(lr=0.001)"), adam=loss("adam(lr=0.001)"),
        adadelta=loss("adadelta(lr=1.0)"))
    return "\n".join([BEGIN, *console, "", lessons, END])


def current_block(readme: str) -> str:
    """The generated block of ``readme`` (markers included)."""
    start, end = readme.index(BEGIN), readme.index(END) + len(END)
    return readme[start:end]


def table_rows(block: str) -> list[list[str]]:
    """The results table's rows in a block or a stdout, split on 2+ spaces, seconds dropped."""
    lines = block.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("optimizer "))
    rows = []
    for line in lines[head + 2:]:
        if not line.strip() or line.startswith(("report:", "```")):
            break
        rows.append(re.split(r"\s{2,}", line.strip())[:-1])
    return rows


def without_timings(block: str) -> str:
    """``block`` with the seconds, run times and the report's timestamp masked."""
    block = re.sub(r"\(\d+\.\d s\)", "(… s)", block)
    block = re.sub(r"runs/\d{8}-\d{6}(-\d+)?-compare", "runs/…-compare", block)
    return "\n".join(re.sub(r"\s+\d+\.\d$", "", ln) for ln in block.splitlines())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when README.md differs from a fresh run (timings aside)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        block = render(*run_default(Path(tmp)))
    readme = README.read_text()
    old = current_block(readme)
    if args.check:
        same = without_timings(old) == without_timings(block)
        print("README.md example is up to date" if same else
              "README.md example differs from a fresh run; run scripts/readme_example.py")
        return 0 if same else 1
    README.write_text(readme.replace(old, block))
    print(f"rewrote the example in {README}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
