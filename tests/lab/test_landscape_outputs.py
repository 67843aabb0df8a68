"""What ``run_landscape`` and ``optimlab landscape`` write: JSON, PNG, GIF and the page."""

from __future__ import annotations

import base64
import json
import re

import pytest
from PIL import Image

from optimlab import cli
from optimlab.lab.landscape import FUNCTIONS, LANDSCAPE_SUITE, run_landscape, run_path
from optimlab.lab.landscape.draw import MAX_FRAMES, frame_steps
from optimlab.lab.spec import parse_spec

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_frame_steps_cover_both_ends():
    assert frame_steps(5) == [0, 1, 2, 3, 4, 5]
    many = frame_steps(500)
    assert many[0] == 0 and many[-1] == 500 and len(many) == MAX_FRAMES
    assert many == sorted(set(many))


def test_outputs_match_the_runs(tmp_path):
    specs = ["sgd:lr=1e-3,momentum=0.9", "sgd:lr=0.01", "torch.Adam:lr=0.05"]
    result = run_landscape(function="rosenbrock", optimizers=specs, steps=30, noise=0.1,
                           seed=2, out_dir=tmp_path)
    data = json.loads((tmp_path / "trajectories.json").read_text())
    assert data["function"] == "rosenbrock" and data["start"] == [-1.5, 2.0]
    assert data["steps"] == 30 and data["noise"] == 0.1 and data["seed"] == 2
    assert [r["spec"] for r in data["runs"]] == specs
    statuses = [r["status"] for r in data["runs"]]
    assert statuses == ["finished", "diverged", "finished"]
    fn = FUNCTIONS["rosenbrock"]
    for run, spec in zip(data["runs"], specs, strict=True):
        again = run_path(fn, parse_spec(spec), start=(-1.5, 2.0), steps=30, noise=0.1, seed=2)
        assert [tuple(p) for p in run["path"]] == again.path  # JSON round-trips floats exactly
        assert run["loss"] == again.loss and run["name"] == again.name
    assert len(data["runs"][0]["path"]) == 31 and data["runs"][0]["path"][0] == [-1.5, 2.0]
    assert (tmp_path / "contour.png").read_bytes().startswith(PNG_MAGIC)
    gif = Image.open(tmp_path / "animation.gif")
    assert gif.format == "GIF" and gif.n_frames == len(frame_steps(30))
    gif.seek(0)
    first = gif.convert("RGB").tobytes()
    gif.seek(gif.n_frames - 1)
    assert gif.convert("RGB").tobytes() != first  # the paths grow
    page = (tmp_path / "landscape.html").read_text()
    assert "http" not in page.replace("<!DOCTYPE html>", "")  # self-contained
    body = page[page.index("<tbody>"):page.index("</tbody>")]
    rows = re.findall(r"<tr( class=\"diverged\")?>", body)
    assert len(rows) == 3 and rows.count(' class="diverged"') == 1
    gifs = re.findall(r'src="data:image/gif;base64,([^"]+)"', page)
    assert len(gifs) == 1 and base64.b64decode(gifs[0]) == (
        tmp_path / "animation.gif").read_bytes()
    assert result.page_path == tmp_path / "landscape.html"


@pytest.mark.slow
def test_no_arguments_runs_the_suite_on_rosenbrock(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["landscape"]) == 0
    out = capsys.readouterr().out
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.endswith("-landscape")
    data = json.loads((folder / "trajectories.json").read_text())
    assert data["function"] == "rosenbrock" and data["start"] == [-1.5, 2.0]
    assert [r["spec"] for r in data["runs"]] == list(LANDSCAPE_SUITE)
    assert all(len(r["path"]) == 501 for r in data["runs"] if r["status"] == "finished")
    assert f"page: runs/{folder.name}/landscape.html" in out


def test_cli_flags_reach_the_library(tmp_path, capsys):
    code = cli.main(["landscape", "--function", "himmelblau", "--optimizer", "adam:lr=0.1",
                     "--optimizer", "adam:lr=0.1", "--steps", "12", "--start", "1,-1",
                     "--noise", "0.5", "--seed", "4", "--out", str(tmp_path / "o")])
    assert code == 0
    data = json.loads((tmp_path / "o" / "trajectories.json").read_text())
    assert data["start"] == [1.0, -1.0] and data["steps"] == 12 and data["seed"] == 4
    assert [r["name"] for r in data["runs"]] == ["adam(lr=0.1)", "adam(lr=0.1)#2"]
    fn = FUNCTIONS["himmelblau"]
    again = run_path(fn, parse_spec("adam:lr=0.1"), start=(1.0, -1.0), steps=12, noise=0.5,
                     seed=4)
    assert [tuple(p) for p in data["runs"][1]["path"]] == again.path
    assert "adam(lr=0.1)#2: finished, 12 steps" in capsys.readouterr().out


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_function_draws(function, tmp_path):
    result = run_landscape(function=function, optimizers=["adam:lr=0.1", "sgd:lr=10"],
                           steps=3, out_dir=tmp_path)
    assert [len(r.path) for r in result.runs][0] == 4
    assert (tmp_path / "contour.png").read_bytes().startswith(PNG_MAGIC)
    assert Image.open(tmp_path / "animation.gif").n_frames == 4
    page = (tmp_path / "landscape.html").read_text()
    assert FUNCTIONS[function].formula in page


def test_help_lists_every_function():
    from optimlab.cli.landscape import EPILOG

    listed = EPILOG.splitlines()[0].removeprefix("functions: ").replace(" (default)", "")
    assert listed.split(", ") == list(FUNCTIONS)
