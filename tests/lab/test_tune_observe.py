"""tune's schedules, telemetry, TensorBoard, lr=find and --force (issues 12 and 13).

Each feature is checked against compare or the plain function it reuses: a trial or rerun
under ``--scheduler`` is compare's run of the same spec and scheduler, number for number; the
range ``lr=find`` searches comes from :func:`optimlab.lab.learning_rates.find_lr` called by
hand; the event files are read back with TensorBoard's own reader.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from optimlab import cli
from optimlab.errors import UserError
from optimlab.lab import CompareConfig, run_comparison
from optimlab.lab.tune import TuneConfig, run_tune
from optimlab.lab.tune.lr_find import range_test_spec, with_lr
from optimlab.lab.tune.space import parse_search_spec


def tiny(**kw: Any) -> TuneConfig:
    base: dict[str, Any] = {"optimizer": ("adam",), "epochs": 2, "trials": 2, "seeds": 1,
                            "workers": 1, "sampler": "random", "defaults": False}
    return TuneConfig(**{**base, **kw})


def results_of(out: Path) -> dict[str, Any]:
    return dict(json.loads((out / "results.json").read_text()))


def trial_record(out: Path, number: int) -> dict[str, Any]:
    (folder,) = (out / "trials").iterdir()
    return dict(json.loads((folder / f"trial{number}.json").read_text()))


@pytest.mark.parametrize("scheduler, every", [("steplr:step_size=1,gamma=0.5", "epoch"),
                                              ("warmup_cosine:warmup=5", "step")])
def test_a_scheduled_trial_and_rerun_are_compares_runs(tmp_path, scheduler, every):
    result = run_tune(tiny(scheduler=scheduler, schedule_every=every), out_dir=tmp_path / "t",
                      store_path=None)
    (entry,) = results_of(result.out_dir)["optimizers"]
    best, rerun = entry["best"], entry["reruns"]["runs"][0]
    trial = trial_record(result.out_dir, best["number"])
    for seed, record in ((0, trial), (1, rerun)):
        cfg = CompareConfig(optimizer=(best["spec"],), epochs=2, seed=seed, device="cpu",
                            scheduler=scheduler, schedule_every=every)
        (run,) = run_comparison(cfg, out_dir=tmp_path / f"c{seed}", store_path=None).runs
        for key in ("lr", "train_loss", "val_loss"):
            assert record["history"][key] == run["history"][key], (seed, key)
    lrs = rerun["history"]["lr"]
    assert lrs[0] != lrs[1]  # the schedule moved the rate between epochs
    if every == "epoch":
        assert lrs[1] == pytest.approx(0.5 * lrs[0])
    assert (result.out_dir / "lr.png").is_file()
    assert "lr.png" in (result.out_dir / "report.html").read_text()
    assert result.config.scheduler == scheduler


def test_scheduler_is_rehearsed_at_every_corner_of_the_space(tmp_path):
    # min_lr 1e-3 is above the lowest lr searched (1e-5): refused before any trial
    with pytest.raises(UserError, match=r"at lr=1e-05: .*min_lr=0.001 is above"):
        run_tune(tiny(optimizer=("adam:lr=log(1e-5,1e-1)",),
                      scheduler="warmup_cosine:warmup=1,min_lr=1e-3"),
                 out_dir=tmp_path / "t", store_path=None)
    assert not (tmp_path / "t").exists()


def test_telemetry_and_tensorboard_for_every_trial_and_rerun(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = tmp_path / "tb"
    result = run_tune(tiny(telemetry=True, tensorboard=str(board)), out_dir=tmp_path / "t",
                      store_path=None)
    (entry,) = results_of(result.out_dir)["optimizers"]
    rerun = entry["reruns"]["runs"][0]
    telemetry = rerun["history"]["telemetry"]
    assert {"l2_norm/grad/global", "l2_norm_ratio/update_param/1.weight"} <= set(telemetry)
    assert all(len(v) == 2 for v in telemetry.values())  # one value per epoch
    assert set(trial_record(result.out_dir, 0)["history"]["telemetry"]) == set(telemetry)
    assert (result.out_dir / "telemetry_update_ratio.png").is_file()
    assert "telemetry_update_ratio.png" in (result.out_dir / "report.html").read_text()
    folder = next((board / "reruns").iterdir()) / "seed1"
    events = EventAccumulator(str(folder))
    events.Reload()
    assert [e.value for e in events.Scalars("val/loss")] == pytest.approx(
        rerun["history"]["val_loss"], rel=1e-6)  # float32 in the event file
    assert "l2_norm/grad/global" in events.Tags()["scalars"]
    trials = sorted(p.name for p in next((board / "trials").iterdir()).iterdir())
    assert trials == ["trial0", "trial1"]


def test_without_telemetry_nothing_is_recorded(tmp_path):
    result = run_tune(tiny(), out_dir=tmp_path / "t", store_path=None)
    (entry,) = results_of(result.out_dir)["optimizers"]
    assert "telemetry" not in entry["reruns"]["runs"][0]["history"]
    assert not (result.out_dir / "telemetry_update_ratio.png").exists()


def test_range_test_spec_keeps_fixed_values_and_drops_searched_ones():
    space = parse_search_spec(with_lr("sgd:lr=find,momentum=0.9,nesterov=true", "log(1,2)"))
    assert range_test_spec(space) == "sgd:lr=find,momentum=0.9,nesterov=true"
    space = parse_search_spec(with_lr("adam:lr=find,betas=(uniform(0.8,0.99),0.999)",
                                      "log(1,2)"))
    assert range_test_spec(space) == "adam:lr=find"


def test_lr_find_centres_the_searched_range_on_the_range_test(tmp_path):
    from optimlab.lab.learning_rates import find_lr

    lines: list[str] = []
    result = run_tune(tiny(optimizer=("sgd:lr=find,momentum=0.9",)), out_dir=tmp_path / "t",
                      store_path=None, log=lines.append)
    found = float(f"{find_lr('sgd:momentum=0.9', seed=0).suggestion:.3g}")  # by hand
    expected = f"sgd:lr=log({found / 10:.3g},{found * 10:.3g}),momentum=0.9"
    assert result.config.optimizer == (expected,)
    saved = json.loads((result.out_dir / "tune.json").read_text())
    assert saved["config"]["optimizer"] == [expected]  # --resume repeats no range test
    (entry,) = results_of(result.out_dir)["optimizers"]
    assert all(found / 10 <= t["hparams"]["lr"] <= found * 10 for t in entry["trials"])
    assert any(line.startswith("lr=find: sgd:lr=find,momentum=0.9") for line in lines)
    (record,) = results_of(result.out_dir)["lr_find"]
    assert record["spec"] == "sgd:lr=find,momentum=0.9" and record["suggestion"] == found
    assert saved["lr_find"] == [record]


def test_force_empties_a_previous_tune_and_only_a_tune(tmp_path):
    cfg = tiny(seeds=0, trials=1)
    run_tune(cfg, out_dir=tmp_path / "o", store_path=None)
    (tmp_path / "o" / "stale.txt").write_text("old")
    with pytest.raises(UserError, match="already holds a tune.*--force"):
        run_tune(cfg, out_dir=tmp_path / "o", store_path=None)
    run_tune(cfg, out_dir=tmp_path / "o", store_path=None, force=True)
    assert not (tmp_path / "o" / "stale.txt").exists()
    assert (tmp_path / "o" / "results.json").is_file()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="already holds files"):
        run_tune(cfg, out_dir=other, store_path=None)
    with pytest.raises(UserError, match="empties only a tune's folder"):
        run_tune(cfg, out_dir=other, store_path=None, force=True)
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


def test_cli_scheduler_telemetry_and_force(tmp_path, capsys):
    args = ["tune", "--optimizer", "adam", "--epochs", "2", "--trials", "2", "--seeds", "1",
            "--sampler", "random", "--no-defaults", "--workers", "1", "--quiet",
            "--scheduler", "steplr:step_size=1,gamma=0.5", "--schedule-every", "epoch",
            "--telemetry", "--tensorboard", "tb", "--out", "o", "--store", "s.sqlite"]
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert cli.main(args) == 0
        assert cli.main([*args, "--force"]) == 0
    finally:
        os.chdir(cwd)
    data = results_of(tmp_path / "o")
    assert data["config"]["scheduler"] == "steplr:step_size=1,gamma=0.5"
    assert data["config"]["telemetry"] is True
    lrs = data["optimizers"][0]["reruns"]["runs"][0]["history"]["lr"]
    assert lrs[1] == pytest.approx(0.5 * lrs[0])
    assert (tmp_path / "tb" / "reruns").is_dir()
    assert "report:" in capsys.readouterr().out


@pytest.mark.slow
def test_worker_processes_get_the_schedule_and_telemetry(tmp_path):
    """A Task carrying a bound schedule crosses to worker processes: same numbers as in-process."""
    kw: dict[str, Any] = {"scheduler": "warmup_cosine:warmup=3", "schedule_every": "step",
                          "telemetry": True}
    one = run_tune(tiny(**kw), out_dir=tmp_path / "one", store_path=None)
    two = run_tune(tiny(workers=2, **kw), out_dir=tmp_path / "two", store_path=None)
    a, b = (results_of(r.out_dir)["optimizers"][0] for r in (one, two))
    assert [t["value"] for t in a["trials"]] == [t["value"] for t in b["trials"]]
    ha, hb = (x["reruns"]["runs"][0]["history"] for x in (a, b))
    assert {k: v for k, v in ha.items() if k != "wall_time"} == {
        k: v for k, v in hb.items() if k != "wall_time"}
    assert ha["lr"][0] != ha["lr"][1] and "telemetry" in ha
