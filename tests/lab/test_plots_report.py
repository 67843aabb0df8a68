"""Plots and the self-contained report, from synthetic results."""

from __future__ import annotations

import base64
import re

import pytest

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


def test_diverged_runs_are_marked_in_legends_and_never_best(tmp_path, monkeypatch,
                                                            synthetic_runs):
    seen: list[list[str]] = []

    def keep(fig):
        seen.append([t.get_text() for ax in fig.axes if ax.get_legend()
                     for t in ax.get_legend().get_texts()])
        plots.plt.close(fig)
        return PNG_MAGIC

    runs = json_safe(synthetic_runs)
    runs[-1]["status"] = "finished"  # rmsprop: one of its two seeds diverged
    runs.append(dict(runs[0], name="sgd(lr=1e+10)", status="diverged", test_accuracy=0.99))
    monkeypatch.setattr(plots, "_png", keep)
    written = dict(plots.write_plots(runs, tmp_path, task="classification", seeds=2))
    assert len(seen) == len(written)
    for legend in seen[:-2] + seen[-1:]:  # every figure with curves (not the confusion matrix)
        assert "sgd(lr=1e+10) (diverged)" in legend
        assert "rmsprop (diverged: 1 of 2 seeds)" in legend and "sgd" in legend
    # 99% test accuracy from non-finite weights is not the best run
    assert "adam(lr=0.01)" in written["confusion_matrix.png"]


def _stored_run(store, exp, name, dataset, task, acc, seed=0):
    config = {"dataset": dataset, "model": "mlp", "epochs": 2, "batch_size": 32, "seed": seed,
              "scheduler": None, "optimizer": name}
    rid = store.start_run(exp, name=name, optimizer=name, hparams={}, seed=seed, config=config)
    for e in (1, 2):
        store.log_epoch(rid, e, {"train_loss": 1.0 / e, "val_loss": 1.2 / e,
                                 "val_accuracy": acc, "lr": 0.1})
    store.finish_run(rid, "finished", wall_seconds=0.5,
                     result={"test_accuracy": acc, "test_loss": 0.4, "task": task,
                             "epochs_run": 2})
    return rid


def test_report_from_store_refuses_mixed_loss_units_before_writing(tmp_path):
    from optimlab.errors import UserError
    from optimlab.lab import RunStore, report_from_store

    with RunStore(tmp_path / "s.sqlite") as store:
        exp = store.add_experiment({"device": "cpu"}, None)
        a = _stored_run(store, exp, "sgd", "digits", "classification", 0.9)
        b = _stored_run(store, exp, "adam", "line", "regression", None)
        c = _stored_run(store, exp, "rmsprop", "digits", None, 0.8)  # task from the dataset
    with pytest.raises(UserError) as e:
        report_from_store(tmp_path / "s.sqlite", [a, b, c], tmp_path / "rep")
    assert str(e.value) == (f"runs {a}, {c} are classification (cross-entropy, nats) and run {b}"
                            " is regression (mean squared error): one report has one loss unit;"
                            " report them separately")
    assert not (tmp_path / "rep").exists()


def test_report_from_store_shows_config_and_environment(tmp_path):
    import html as html_lib
    import json

    import torch

    from optimlab.lab import RunStore, report_from_store

    with RunStore(tmp_path / "s.sqlite") as store:
        exp = store.add_experiment({"device": "cpu"}, None)
        ids = [_stored_run(store, exp, "sgd", "digits", "classification", 0.9, seed=s)
               for s in (0, 1)]
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "bands.png").write_bytes(b"stale")  # from an earlier report with several seeds
    (rep / "mine.txt").write_text("the user's")
    path = report_from_store(tmp_path / "s.sqlite", ids[:1], rep)
    page = html_lib.unescape(path.read_text())
    config = json.loads(re.search(r'<pre id="config">(.*?)</pre>', page, re.S).group(1))
    assert config["runs"] == [{"id": ids[0], "name": "sgd", "experiment": exp,
                               "dataset": "digits", "model": "mlp", "epochs": 2,
                               "batch_size": 32, "seed": 0, "scheduler": None,
                               "val_every": None, "patience": None, "optimizer": "sgd"}]
    env = json.loads(re.search(r'<pre id="environment">(.*?)</pre>', page, re.S).group(1))
    assert env["torch"] == torch.__version__ and env["device"] == "cpu" and env["python"]
    assert not (rep / "bands.png").exists() and (rep / "mine.txt").exists()


@pytest.mark.parametrize("where", ["file", "under-file"])
def test_report_out_that_cannot_be_a_folder(tmp_path, where):
    from optimlab.errors import UserError
    from optimlab.lab import RunStore, report_from_store

    with RunStore(tmp_path / "s.sqlite") as store:
        rid = _stored_run(store, store.add_experiment({}, None), "sgd", "digits",
                          "classification", 0.9)
    (tmp_path / "f").write_text("x")
    out = tmp_path / "f" if where == "file" else tmp_path / "f" / "rep"
    with pytest.raises(UserError, match="is not a folder" if where == "file" else "is a file"):
        report_from_store(tmp_path / "s.sqlite", [rid], out)
