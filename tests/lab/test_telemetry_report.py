"""Telemetry in a comparison: results.json, the report's figure and TensorBoard folders."""

from __future__ import annotations

import json
import math

import pytest

from optimlab.lab import CompareConfig, run_comparison
from optimlab.lab.telemetry_plots import FILENAME, ratio_series, update_ratio_png

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _run(name, ratios, seed=0):
    return {"name": name, "seed": seed, "history": {
        "epoch": list(range(1, len(ratios) + 1)),
        "telemetry": {"l2_norm_ratio/update_param/0.weight": ratios,
                      "l2_norm/grad/0.weight": [1.0] * len(ratios)}}}


def test_ratio_series_keeps_finite_positive_ratios_by_layer():
    run = _run("sgd", [1e-3, None, math.nan, 0.0, 2e-3])
    assert ratio_series(run) == {"0.weight": ([1, 5], [1e-3, 2e-3])}
    assert ratio_series({"name": "x", "history": {"epoch": [1]}}) == {}


def test_figure_only_with_telemetry():
    assert update_ratio_png([{"name": "a", "history": {"epoch": [1, 2]}}]) is None
    png = update_ratio_png([_run("a", [1e-3, 2e-3]), _run("a", [5.0, 5.0], seed=1),
                            _run("b", [1e-2, 1e-3])])
    assert png is not None and png.startswith(PNG_MAGIC)


@pytest.mark.slow
def test_compare_with_telemetry_and_tensorboard(tmp_path):
    config = CompareConfig(optimizer=("sgd:lr=0.1", "adam:lr=1e-3"), epochs=2, model="linear")
    result = run_comparison(config, out_dir=tmp_path / "out", store_path=None,
                            telemetry=True, tensorboard=tmp_path / "tb")
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    for run in saved["runs"]:
        telemetry = run["history"]["telemetry"]
        assert telemetry["lr/group0"] == [float(run["hparams"]["lr"])] * 2
        assert all(len(v) == 2 for v in telemetry.values())
        assert len(telemetry["l2_norm_ratio/update_param/1.weight"]) == 2
    assert (tmp_path / "out" / FILENAME).read_bytes().startswith(PNG_MAGIC)
    assert FILENAME in (tmp_path / "out" / "report.html").read_text()
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == ["adam_lr=0.001", "sgd_lr=0.1"]
    assert any((tmp_path / "tb" / "sgd_lr=0.1" / "seed0").glob("events.out.tfevents.*"))
    plain = run_comparison(config, out_dir=tmp_path / "plain", store_path=None)
    assert all("telemetry" not in r["history"] for r in plain.runs)
    assert not (tmp_path / "plain" / FILENAME).exists()
    losses = [r["history"]["train_loss"] for r in plain.runs]
    assert losses == [r["history"]["train_loss"] for r in result.runs]  # bitwise unchanged
