"""optimlab tune end to end on tiny budgets: equal budgets, the controlled run, determinism
across runs and workers, divergence, pruning, time to target, the store and the outputs."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from optimlab.lab import CompareConfig, RunStore, run_comparison
from optimlab.lab.tune import TuneConfig, run_tune
from optimlab.lab.tune.summary import time_to_target

VOLATILE = {"seconds", "wall_seconds", "wall_time", "environment", "argv", "pid",
            "experiment_id", "store_run_id", "execution", "workers", "optuna_number"}


def stable(obj: Any) -> Any:
    """``obj`` without times, paths, pids and ids (what may differ between two runs)."""
    if isinstance(obj, dict):
        return {k: stable(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [stable(v) for v in obj]
    return obj


def small(**kw: Any) -> TuneConfig:
    base: dict[str, Any] = {"optimizer": ("sgd:lr=log(1e-3,1),momentum=0.9", "adam"),
                            "epochs": 2, "trials": 3, "seeds": 1, "workers": 1,
                            "sampler": "random", "defaults": False}
    return TuneConfig(**{**base, **kw})


def trials_of(out: Path) -> list[list[dict[str, Any]]]:
    data = json.loads((out / "results.json").read_text())
    return [[{k: t[k] for k in ("number", "params", "state", "value", "epochs", "diverged")}
             for t in o["trials"]] for o in data["optimizers"]]


def test_equal_budget_and_a_trial_is_compares_controlled_run(tmp_path):
    result = run_tune(small(seeds=2), out_dir=tmp_path / "t", store_path=None)
    data = json.loads((tmp_path / "t" / "results.json").read_text())
    assert [o["name"] for o in data["optimizers"]] == ["sgd(lr=log(0.001, 1), momentum=0.9)",
                                                       "adam"]
    for entry in data["optimizers"]:
        assert [t["number"] for t in entry["trials"]] == [0, 1, 2]
        assert all(t["epochs"] == 2 and t["state"] == "complete" for t in entry["trials"])
        assert entry["reruns"]["seeds"] == [1, 2]  # not the search's seed 0
    sgd = data["optimizers"][0]
    best = min(sgd["trials"], key=lambda t: t["value"])
    assert sgd["best"]["number"] == best["number"]
    folder = next((result.out_dir / "trials").glob("sgd*"))
    record = json.loads((folder / f"trial{best['number']}.json").read_text())
    assert "test_accuracy" not in record and "test_loss" not in record  # selection: val only
    # the trial is compare's run of the same spec, epochs and seed, number for number
    cfg = CompareConfig(optimizer=(sgd["best"]["spec"],), epochs=2, seed=0, device="cpu")
    compared = run_comparison(cfg, out_dir=tmp_path / "c", store_path=None)
    assert compared.runs[0]["history"]["val_loss"] == record["history"]["val_loss"]
    assert compared.runs[0]["history"]["train_loss"] == record["history"]["train_loss"]
    assert best["value"] == record["history"]["val_loss"][-1]


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_same_command_twice_gives_the_same_results(tmp_path, sampler):
    a = run_tune(small(sampler=sampler, trials=4), out_dir=tmp_path / "a", store_path=None)
    b = run_tune(small(sampler=sampler, trials=4), out_dir=tmp_path / "b", store_path=None)
    ra = json.loads((a.out_dir / "results.json").read_text())
    rb = json.loads((b.out_dir / "results.json").read_text())
    assert stable(ra) == stable(rb)
    assert ra["optimizers"][0]["trials"][0]["params"] != ra["optimizers"][0]["trials"][1][
        "params"]
    c = run_tune(small(sampler=sampler, trials=4, seed=1), out_dir=tmp_path / "c",
             store_path=None)
    assert trials_of(c.out_dir) != trials_of(a.out_dir)  # the seed matters


@pytest.mark.parametrize("sampler", ["random", pytest.param("grid", marks=pytest.mark.slow),
                                     pytest.param("qmc", marks=pytest.mark.slow)])
def test_one_and_two_workers_give_the_same_trials(tmp_path, sampler):
    cfg = small(sampler=sampler, trials=4, seeds=0)
    one = run_tune(cfg, out_dir=tmp_path / "w1", store_path=None)
    two = run_tune(TuneConfig(**{**cfg.to_dict(), "optimizer": cfg.optimizer, "workers": 2}),
               out_dir=tmp_path / "w2", store_path=None)
    assert trials_of(one.out_dir) == trials_of(two.out_dir)
    assert len({json.dumps(t["params"]) for t in trials_of(one.out_dir)[1]}) == 4


def test_a_diverged_trial_is_complete_with_the_worst_value(tmp_path):
    cfg = small(optimizer=("sgd:lr=[1e5,0.1]",), sampler="grid", trials=2, seeds=1)
    result = run_tune(cfg, out_dir=tmp_path / "d", store_path=None)
    (entry,) = result.optimizers
    diverged = [t for t in entry["trials"] if t["diverged"]]
    assert len(diverged) == 1 and diverged[0]["params"] == {"lr": 1e5}
    assert diverged[0]["state"] == "complete" and diverged[0]["value"] is None  # +inf
    assert entry["best"]["params"] == {"lr": 0.1}
    assert entry["counts"] == {"complete": 2, "pruned": 0, "failed": 0, "diverged": 1}
    acc = run_tune(TuneConfig(**{**cfg.to_dict(), "optimizer": cfg.optimizer,
                             "metric": "val_accuracy"}), out_dir=tmp_path / "a",
               store_path=None)
    assert [t["value"] for t in acc.optimizers[0]["trials"] if t["diverged"]] == [0.0]


@pytest.mark.parametrize("pruner", ["median", "hyperband"])
def test_pruned_trials_count_in_the_budget(tmp_path, pruner):
    cfg = small(optimizer=("sgd:lr=[0.5,0.3,0.2,1e-7,1e-8,1e-9]",), sampler="grid",
                trials=6, epochs=6, pruner=pruner, seeds=0, seed=2)
    result = run_tune(cfg, out_dir=tmp_path / "p", store_path=None)
    trials = result.optimizers[0]["trials"]
    assert len(trials) == 6
    pruned = [t for t in trials if t["state"] == "pruned"]
    assert all(t["epochs"] < 6 for t in pruned)
    assert all(t["epochs"] == 6 for t in trials if t["state"] == "complete")
    if pruner == "median":
        assert pruned and all(t["params"]["lr"] < 1e-6 for t in pruned)


def test_time_to_target_counts_a_miss_as_infinite():
    def run(accs: list[float]) -> dict[str, Any]:
        return {"history": {"epoch": list(range(1, len(accs) + 1)), "val_accuracy": accs,
                            "wall_time": [0.5 * i for i in range(1, len(accs) + 1)]}}

    t = time_to_target([run([0.2, 0.6, 0.9]), run([0.5, 0.7, 0.8]), run([0.1, 0.2, 0.3])],
                       ("val_accuracy", 0.6))
    assert t["epochs"] == [2, 2, None] and t["seconds"] == [1.0, 1.0, None]
    assert t["reached"] == 2 and t["median_epochs"] == 2.0
    t = time_to_target([run([0.2]), run([0.3]), run([0.9])], ("val_accuracy", 0.8))
    assert t["median_epochs"] is None  # two of three missed: the median is ∞
    loss = time_to_target([{"history": {"epoch": [1, 2], "val_loss": [1.0, 0.4],
                                        "wall_time": [1.0, 2.0]}}], ("val_loss", 0.5))
    assert loss["epochs"] == [2]


def test_target_store_outputs_and_defaults(tmp_path):
    cfg = small(optimizer=("adam",), trials=2, epochs=3, seeds=2, defaults=True,
                target="val_accuracy=0.3")
    store_path = tmp_path / "s.sqlite"
    result = run_tune(cfg, out_dir=tmp_path / "o", store_path=store_path)
    (entry,) = result.optimizers
    ttt = entry["reruns"]["time_to_target"]
    assert ttt["runs"] == 2 and ttt["metric"] == "val_accuracy"
    assert [d["spec"] for d in entry["defaults"]] == ["adam:lr=1e-3"]
    assert entry["defaults"][0]["seeds"] == entry["reruns"]["seeds"] == [1, 2]
    names = [r["name"] for r in RunStore(store_path).list_runs()]
    assert names == ["adam [trial 0]", "adam [trial 1]", "adam [tuned]", "adam [tuned]",
                     "adam(lr=0.001) [default]", "adam(lr=0.001) [default]"]
    with open(result.out_dir / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["number"] for r in rows] == ["0", "1"] and float(rows[0]["lr"]) > 0
    for name in ("lr_sensitivity.png", "reruns.png", "defaults.png", "report.html",
                 "study.sqlite"):
        assert (result.out_dir / name).is_file(), name
    page = (result.out_dir / "report.html").read_text()
    assert 'id="tune"' in page and "[default]" in page and "[tuned]" in page
    assert "http://" not in page and "https://" not in page  # self-contained
    assert "epochs to val_accuracy=0.3" in result.table()


def test_an_existing_tune_folder_is_not_overwritten(tmp_path):
    from optimlab.errors import UserError

    run_tune(small(trials=1, seeds=0, optimizer=("adam",)), out_dir=tmp_path / "o",
         store_path=None)
    with pytest.raises(UserError, match="already holds a tune"):
        run_tune(small(trials=1, seeds=0, optimizer=("adam",)), out_dir=tmp_path / "o",
             store_path=None)


def test_compare_start_up_imports_neither_optuna_nor_ray():
    code = ("import sys, optimlab.lab, optimlab.cli.compare, optimlab.cli.tune;"
            "from optimlab import cli; cli.build_parser();"
            "bad = [m for m in ('optuna', 'ray', 'sqlalchemy') if m in sys.modules];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_default_budget_is_the_default_compare_suite():
    cfg = TuneConfig()
    assert len(cfg.optimizer) == 9 and cfg.dataset == "digits" and cfg.model == "mlp"
    assert all("lr=" not in s for s in cfg.optimizer)
    assert math.prod((cfg.trials, cfg.epochs)) <= 300  # ~1 minute on two cores (README)
