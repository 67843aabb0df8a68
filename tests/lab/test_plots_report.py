"""Plots and the self-contained report, from synthetic results."""

from __future__ import annotations

import base64
import re

from optimlab.lab import plots, report
from optimlab.lab.results import json_safe

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plots_written_with_bands_for_seeds(tmp_path, synthetic_runs):
    runs = json_safe(synthetic_runs)
    written = plots.write_plots(runs, tmp_path, task="classification",
                                class_names=("a", "b", "c"), seeds=2)
    names = [f for f, _ in written]
    assert names == ["train_loss.png", "val_loss.png", "val_accuracy.png", "lr.png",
                     "confusion_matrix.png", "bands.png"]
    for f in names:
        assert (tmp_path / f).read_bytes().startswith(PNG_MAGIC)
    assert "adam(lr=0.01)" in dict(written)["confusion_matrix.png"]  # the best run


def test_single_seed_regression_has_no_bands_or_confusion(tmp_path, synthetic_runs):
    runs = [dict(r, test_accuracy=None, confusion_matrix=None) for r in synthetic_runs
            if r["seed"] == 0]
    names = [f for f, _ in plots.write_plots(json_safe(runs), tmp_path, task="regression")]
    assert names == ["train_loss.png", "val_loss.png", "lr.png"]


def test_mean_and_std_over_seeds(synthetic_runs):
    curves = plots.curves_by_name(json_safe(synthetic_runs), "train_loss")
    epochs, mean, std = curves["sgd"]
    a, b = synthetic_runs[0]["history"]["train_loss"], synthetic_runs[1]["history"]["train_loss"]
    assert list(epochs) == [1, 2, 3, 4, 5, 6]
    assert abs(mean[0] - (a[0] + b[0]) / 2) < 1e-12
    assert abs(std[0] - abs(a[0] - b[0]) / 2 ** 0.5) < 1e-12
    _, mean_d, _ = curves["rmsprop"]
    assert mean_d[-1] != mean_d[-1]  # NaN: both seeds diverged at the last epoch


def test_report_is_self_contained(tmp_path, synthetic_runs):
    runs = json_safe(synthetic_runs)
    written = plots.write_plots(runs, tmp_path, task="classification", seeds=2)
    path = report.write_report(tmp_path, title="t <x>", runs=runs, config={"epochs": 6},
                               environment={"torch": "x"}, plots=written)
    html = path.read_text()
    assert not re.search(r"(src|href)=\"(?!data:)", html)  # nothing fetched from elsewhere
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == len(written)
    assert all(base64.b64decode(i).startswith(PNG_MAGIC) for i in images)
    assert "t &lt;x&gt;" in html
    assert html.count("<tr") == 1 + 3  # header + one row per optimizer
    assert "&quot;epochs&quot;: 6" in html
