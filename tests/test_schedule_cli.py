"""``optimlab schedule`` and ``optimlab lr-find`` end to end, and ``lr=find`` resolution."""

from __future__ import annotations

import json
import math

import pytest

from optimlab import cli
from optimlab.data import load_dataset
from optimlab.engine.lr_find import lr_range_test
from optimlab.lab.learning_rates import find_lr, resolve_lr_find
from optimlab.lab.spec import build_optimizer, parse_spec
from optimlab.models import build_model


def _table(out: str) -> list[list[str]]:
    return [line.split() for line in out.strip().splitlines()[1:] if not line.startswith("plot")]


def test_schedule_prints_each_epoch(capsys, tmp_path):
    code = cli.main(["schedule", "warmup_cosine:warmup=2,min_lr=0.01", "--epochs", "6",
                     "--lr", "0.5", "--out", str(tmp_path / "s.png")])
    assert code == 0
    rows = _table(capsys.readouterr().out)
    expected = [0.5 / 3, 1 / 3] + [0.01 + 0.49 * (1 + math.cos(math.pi * t / 4)) / 2
                                   for t in range(4)]
    assert [int(r[0]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [float(r[1]) for r in rows] == pytest.approx(expected, rel=1e-5)
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_schedule_per_step(capsys):
    assert cli.main(["schedule", "linearlr:start_factor=0.5,total_iters=2 then constantlr:"
                     "factor=1.0,total_iters=1", "--epochs", "2", "--steps-per-epoch", "3",
                     "--lr", "1"]) == 0
    rows = _table(capsys.readouterr().out)
    assert [(int(s), int(e)) for s, e, _ in rows] == [(0, 1), (1, 1), (2, 1), (3, 2), (4, 2),
                                                        (5, 2)]
    assert [float(r[2]) for r in rows] == [0.5, 0.75, 1.0, 1.0, 1.0, 1.0]


def test_lr_find_writes_the_curve_and_suggestions(capsys, tmp_path):
    out = tmp_path / "lrf"
    assert cli.main(["lr-find", "--optimizer", "adam", "--min-lr", "1e-5", "--max-lr", "10",
                     "--steps", "40", "--device", "cpu", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    saved = json.loads((out / "lr_find.json").read_text())
    assert {"lrs", "losses", "smoothed", "suggestion", "steepest", "min_loss_div10",
            "stopped_early", "min_lr", "max_lr", "steps"} <= set(saved)
    assert (out / "lr_find.png").read_bytes()[:4] == b"\x89PNG"
    # the same test through the library, by hand: same curve, same suggestion
    data = load_dataset("digits", seed=0)
    model = build_model("mlp", data.input_shape, data.num_outputs, seed=0)
    opt = build_optimizer(parse_spec("adam"), model.parameters())
    ref = lr_range_test(model, opt, data, min_lr=1e-5, max_lr=10.0, steps=40)
    assert saved["smoothed"] == ref.smoothed and saved["suggestion"] == ref.min_loss_div10
    assert saved["suggestion_rule"] == "min_loss_div10"
    assert f"suggested lr: {ref.min_loss_div10:.3g}" in printed


def test_resolve_lr_find_writes_the_suggestion_into_the_spec():
    data = load_dataset("digits", seed=1)
    text, result = resolve_lr_find("sgd:momentum=0.9,lr=find,nesterov=true", data, "mlp", 1,
                                   min_lr=1e-4, max_lr=10.0, steps=30)
    direct = find_lr("sgd:momentum=0.9,nesterov=true", data=data, seed=1, min_lr=1e-4,
                     max_lr=10.0, steps=30)
    assert result.smoothed == direct.smoothed
    spec = parse_spec(text)
    assert spec.hparams == {"momentum": 0.9, "lr": float(f"{direct.suggestion:.3g}"),
                            "nesterov": True}
    assert resolve_lr_find("adam:lr=0.01", data, "mlp", 1) == ("adam:lr=0.01", None)


def test_compare_resolves_lr_find_and_steps_per_batch(tmp_path, capsys):
    from optimlab.engine.recipes import RunLength, schedule_lrs

    out = tmp_path / "c"
    code = cli.main(["compare", "--optimizer", "adam:lr=find", "--optimizer", "sgd:lr=0.05",
                     "--epochs", "2", "--scheduler", "warmup_cosine:warmup=20",
                     "--schedule-every", "step", "--device", "cpu", "--out", str(out),
                     "--store", str(tmp_path / "s.sqlite"), "--quiet"])
    assert code == 0, capsys.readouterr().err
    saved = json.loads((out / "results.json").read_text())
    data = load_dataset("digits", seed=0)
    expected, _ = resolve_lr_find("adam:lr=find", data, "mlp", 0, 64)
    assert saved["config"]["optimizer"] == [expected, "sgd:lr=0.05"]
    assert saved["config"]["schedule_every"] == "step"
    assert json.loads((out / "comparison.json").read_text())["config"]["optimizer"][0] == expected
    sgd = next(r for r in saved["runs"] if r["spec"] == "sgd:lr=0.05")
    # 1079 training digits, batches of 64: 17 steps an epoch; warmup spans epoch 1 and 2
    preview = schedule_lrs("warmup_cosine:warmup=20", RunLength(2, 17, "step"), lr=0.05)
    assert sgd["history"]["lr"] == [preview[0], preview[17]]
