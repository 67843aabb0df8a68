"""results.json/history.csv writing and the summary table."""

from __future__ import annotations

import csv
import json
import math

from optimlab.lab.results import format_table, grouped_rows, write_history_csv, write_json


def make_run(name, seed, test_acc, train=(1.0, 0.5), status="finished", opt=None):
    n = len(train)
    return {
        "name": name, "optimizer": opt or name.split("(")[0], "hparams": {"lr": 0.1},
        "seed": seed, "status": status, "epochs_run": n,
        "history": {"epoch": list(range(1, n + 1)), "train_loss": list(train),
                    "val_loss": [x + 0.1 for x in train], "val_accuracy": [0.5] * n,
                    "lr": [0.1] * n, "wall_time": [0.1 * (i + 1) for i in range(n)]},
        "test_loss": 0.3, "test_accuracy": test_acc, "confusion_matrix": [[3, 1], [0, 4]],
        "wall_seconds": 1.5,
    }


def test_rows_sorted_by_test_accuracy_with_mean_std():
    runs = [make_run("a", 0, 0.5), make_run("a", 1, 0.7), make_run("b", 0, 0.9),
            make_run("c", 0, None, status="diverged")]
    rows = grouped_rows(runs)
    assert [r["name"] for r in rows] == ["b", "a", "c"]
    a = rows[1]
    assert math.isclose(a["test_accuracy"], 0.6)
    assert math.isclose(a["test_accuracy_std"], math.sqrt(0.02))  # sample std of 0.5, 0.7
    table = format_table(rows)
    lines = table.splitlines()
    assert lines[0].split()[:2] == ["optimizer", "hyperparameters"]
    assert "60.0% ± 14.1" in lines[3]
    assert "diverged" in lines[4] and "—" in lines[4]


def test_json_without_nan(tmp_path):
    run = make_run("a", 0, 0.5, train=(1.0, float("nan")), status="diverged")
    write_json(tmp_path / "r.json", {"runs": [run], "x": float("inf")})
    text = (tmp_path / "r.json").read_text()
    data = json.loads(text)  # strict JSON: NaN/inf would be invalid
    assert data["runs"][0]["history"]["train_loss"] == [1.0, None]
    assert data["x"] is None
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed away


def test_history_csv(tmp_path):
    write_history_csv(tmp_path / "h.csv", [make_run("a", 0, 0.5), make_run("b", 1, 0.6)])
    rows = list(csv.DictReader((tmp_path / "h.csv").open()))
    assert len(rows) == 4
    assert rows[2]["name"] == "b" and rows[2]["seed"] == "1" and rows[2]["epoch"] == "1"
    assert float(rows[3]["train_loss"]) == 0.5


def test_regression_table_shows_test_loss():
    runs = [dict(make_run("a", 0, None), test_loss=2.0), dict(make_run("b", 0, None),
                                                              test_loss=1.0)]
    lines = format_table(grouped_rows(runs)).splitlines()
    assert "test loss" in lines[0] and "acc" not in lines[0]
    assert lines[2].startswith("b") and lines[2].split()[-4] == "1"  # sorted by test loss


def test_hyperparameters_are_shown_exactly():
    from hypothesis import given
    from hypothesis import strategies as st

    from optimlab.lab.results import format_hparams
    from optimlab.lab.spec import format_value, parse_value

    assert format_hparams({"lr": 1e10, "momentum": 0.9, "eps": 1e-8, "big": 123456789.0,
                           "hundred": 100.0, "betas": [0.9, 0.999], "nesterov": True}) == (
        "lr=1e+10, momentum=0.9, eps=1e-08, big=123456789.0, hundred=100.0, "
        "betas=(0.9, 0.999), nesterov=true")

    @given(st.floats(allow_nan=False, allow_infinity=False))
    def reads_back(x: float) -> None:
        text = format_value(x)
        assert parse_value(text, key="lr", spec="s") == x and len(text) <= 24, text

    reads_back()


def test_diverged_run_shows_no_test_accuracy_of_nan_weights():
    nan_weights = dict(make_run("sgd(lr=1e+10)", 0, 0.078, train=(1.0, float("nan")),
                                status="diverged"), hparams={"lr": 1e10})
    rows = grouped_rows([make_run("adam", 0, 0.9), nan_weights])
    assert rows[-1]["test_accuracy"] is None and rows[-1]["test_loss"] is None
    line = format_table(rows).splitlines()[-1]
    assert "7.8%" not in line and line.split()[:2] == ["sgd", "lr=1e+10"]
    cells = line.split()
    assert cells[2] == "—" and cells[3] == "1.1"  # train loss NaN; the best val loss is real
    assert cells[5] == "—" and cells[7] == "diverged"  # test acc
