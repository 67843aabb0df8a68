"""run_comparison through the API: controlled runs, outputs, divergence, seeds, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from optimlab.errors import UserError
from optimlab.lab import CompareConfig, RunStore, resume_comparison, run_comparison

TINY = dict(epochs=3, batch_size=128)


def _curves(run: dict) -> dict:
    return {k: v for k, v in run["history"].items() if k != "wall_time"}


def test_ours_and_torchs_sgd_give_identical_runs(tmp_path):
    """Same initial weights and batches by construction: bit-identical optimizers → same run."""
    cfg = CompareConfig(optimizer=("sgd:lr=0.1,momentum=0.9", "torch.SGD:lr=0.1,momentum=0.9",
                                   "adam:lr=1e-3"), **TINY)
    result = run_comparison(cfg, out_dir=tmp_path / "out", store_path=tmp_path / "s.sqlite")
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    runs = data["runs"]
    assert [r["name"] for r in runs] == ["sgd(lr=0.1, momentum=0.9)",
                                        "torch.SGD(lr=0.1, momentum=0.9)", "adam(lr=0.001)"]
    assert _curves(runs[0]) == _curves(runs[1])
    assert runs[0]["test_accuracy"] == runs[1]["test_accuracy"]
    assert _curves(runs[0]) != _curves(runs[2])
    for run in runs:
        assert set(run) >= {"name", "optimizer", "hparams", "seed", "status", "epochs_run",
                            "history", "test_loss", "test_accuracy", "wall_seconds"}
        assert set(run["history"]) >= {"epoch", "train_loss", "val_loss", "val_accuracy", "lr"}
        assert run["status"] == "finished" and run["epochs_run"] == 3
    assert runs[0]["hparams"] == {"lr": 0.1, "momentum": 0.9}
    assert data["config"]["epochs"] == 3 and data["environment"]["torch"]
    assert result.rows[0]["test_accuracy"] == max(r["test_accuracy"] for r in runs)
    out = tmp_path / "out"
    for f in ("history.csv", "report.html", "train_loss.png", "val_loss.png",
              "val_accuracy.png", "lr.png", "confusion_matrix.png"):
        assert (out / f).is_file(), f
    with RunStore(tmp_path / "s.sqlite") as store:
        listed = store.list_runs()
        assert [r["status"] for r in listed] == ["finished"] * 3
        assert store.history(listed[0]["id"])["train_loss"] == runs[0]["history"]["train_loss"]


def test_diverged_optimizer_is_a_result(tmp_path):
    cfg = CompareConfig(optimizer=("sgd:lr=1e6", "adam:lr=1e-3"), **TINY)
    result = run_comparison(cfg, out_dir=tmp_path / "out", store_path=None)
    runs = json.loads((tmp_path / "out" / "results.json").read_text())["runs"]
    assert [r["status"] for r in runs] == ["diverged", "finished"]
    assert runs[0]["epochs_run"] < 3
    assert runs[0]["history"]["train_loss"][-1] is None  # non-finite → null in the JSON
    assert result.rows[0]["name"] == "adam(lr=0.001)"


def test_seeds_give_mean_and_std(tmp_path):
    cfg = CompareConfig(optimizer=("sgd:lr=0.1", "adam:lr=1e-3"), seeds=2, seed=5, epochs=2)
    result = run_comparison(cfg, out_dir=tmp_path / "out", store_path=None)
    assert [(r["name"], r["seed"]) for r in result.runs] == [
        ("sgd(lr=0.1)", 5), ("sgd(lr=0.1)", 6), ("adam(lr=0.001)", 5), ("adam(lr=0.001)", 6)]
    assert result.runs[0]["history"] != result.runs[1]["history"]
    assert all(r["n"] == 2 and r["test_accuracy_std"] is not None for r in result.rows)
    assert (tmp_path / "out" / "bands.png").is_file()


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"optimizer": ("adam", "nosuch")}, "unknown optimizer 'nosuch'"),
        ({"optimizer": ("adam:lr=-1",)}, "Invalid learning rate"),
        ({"scheduler": "nosuch"}, "nosuch"),
        ({"dataset": "nosuch"}, "nosuch"),
        ({"model": "nosuch"}, "unknown model 'nosuch'"),
    ],
)
def test_user_errors_write_nothing(tmp_path, change, fragment):
    cfg = CompareConfig(**{**TINY, **change})
    with pytest.raises(UserError, match=fragment):
        run_comparison(cfg, out_dir=tmp_path / "out", store_path=tmp_path / "s.sqlite")
    assert not (tmp_path / "out").exists() and not (tmp_path / "s.sqlite").exists()


def test_resume_without_a_comparison_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not a comparison folder"):
        resume_comparison(tmp_path)


RESUME_ARGS = ["--optimizer", "sgd:lr=0.05,momentum=0.9", "--optimizer", "adam:lr=1e-3",
               "--epochs", "40", "--checkpoint-every", "1", "--quiet"]


def test_killed_comparison_resumes_to_the_uninterrupted_numbers(tmp_path):
    out, store = tmp_path / "killed", tmp_path / "s.sqlite"
    cmd = [sys.executable, "-m", "optimlab", "compare", *RESUME_ARGS, "--out", str(out),
           "--store", str(store)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    second = out / "checkpoints" / "adam_lr=0.001" / "seed0"
    deadline = time.monotonic() + 180
    while not any(second.glob("*.pt*")) and proc.poll() is None:
        assert time.monotonic() < deadline, "comparison never reached its second run"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "results.json").exists()
    assert not (second / "result.json").exists(), "killed too late to test resuming"
    with RunStore(store) as s:  # the dead process's running row is now interrupted
        assert [r["status"] for r in s.list_runs()] == ["finished", "interrupted"]

    done = subprocess.run([sys.executable, "-m", "optimlab", "compare", "--resume", str(out),
                           "--quiet"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "report:" in done.stdout
    resumed = json.loads((out / "results.json").read_text())["runs"]

    cfg = CompareConfig(optimizer=("sgd:lr=0.05,momentum=0.9", "adam:lr=1e-3"), epochs=40,
                        checkpoint_every=1)
    straight = run_comparison(cfg, out_dir=tmp_path / "straight", store_path=None).runs
    assert [_curves(r) for r in resumed] == [_curves(r) for r in straight]
    assert [r["test_accuracy"] for r in resumed] == [r["test_accuracy"] for r in straight]
    assert [r["test_loss"] for r in resumed] == [r["test_loss"] for r in straight]
    with RunStore(store) as s:
        listed = s.list_runs()
        assert [r["status"] for r in listed] == ["finished", "finished"]
        assert s.history(listed[1]["id"])["epoch"] == list(range(1, 41))


def test_tampered_checkpoint_is_a_user_error(tmp_path):
    cfg = CompareConfig(optimizer=("sgd:lr=0.1",), epochs=2, checkpoint_every=1)
    out = tmp_path / "out"
    run_comparison(cfg, out_dir=out, store_path=None)
    ckpt_dir = out / "checkpoints" / "sgd_lr=0.1" / "seed0"
    (ckpt_dir / "result.json").unlink()  # force the resume to read the checkpoint
    for f in ckpt_dir.iterdir():
        f.write_bytes(f.read_bytes()[:100])
    (out / "results.json").unlink()
    with pytest.raises(UserError):
        resume_comparison(out)
    assert not (out / "results.json").exists()
    assert Path(out / "comparison.json").is_file()


def test_resume_rejects_a_finished_record_from_another_configuration(tmp_path):
    cfg = CompareConfig(optimizer=("sgd:lr=0.1",), epochs=1)
    out = tmp_path / "out"
    run_comparison(cfg, out_dir=out, store_path=None)
    record = out / "checkpoints" / "sgd_lr=0.1" / "seed0" / "result.json"
    data = json.loads(record.read_text())
    data["run_config"]["epochs"] = 99
    record.write_text(json.dumps(data))
    with pytest.raises(UserError, match="belongs to another configuration"):
        resume_comparison(out)
    record.write_text("{not json")
    with pytest.raises(UserError, match="damaged"):
        resume_comparison(out)


def test_foreign_checkpoint_is_a_user_error(tmp_path):
    cfg = CompareConfig(optimizer=("sgd:lr=0.1", "adam:lr=1e-3"), epochs=1)
    out = tmp_path / "out"
    run_comparison(cfg, out_dir=out, store_path=None)
    sgd = out / "checkpoints" / "sgd_lr=0.1" / "seed0"
    adam = out / "checkpoints" / "adam_lr=0.001" / "seed0"
    (adam / "result.json").unlink()
    for f in sgd.iterdir():
        if f.name != "result.json":
            (adam / f.name).write_bytes(f.read_bytes())  # sgd's checkpoint in adam's place
    with pytest.raises(UserError, match="another configuration|does not fit"):
        resume_comparison(out)


def test_default_folders_are_unique_within_one_second(tmp_path, monkeypatch):
    """Two comparisons started in the same second each get their own folder (exclusive
    creation, a suffix on collision) — also when the folders are made concurrently."""
    from concurrent.futures import ThreadPoolExecutor

    from optimlab.lab import out_folder

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(out_folder.time, "strftime", lambda fmt: "20260101-120000")
    cfg = CompareConfig(optimizer=("sgd:lr=0.1",), epochs=1)
    first = run_comparison(cfg, store_path=None).out_dir
    second = run_comparison(cfg, store_path=None).out_dir
    assert (first.name, second.name) == ("20260101-120000-compare", "20260101-120000-compare-2")
    assert (first / "results.json").is_file() and (second / "results.json").is_file()
    base = out_folder.default_out_dir()
    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(lambda _: out_folder.make_out_dir(base, explicit=False, force=False),
                             range(8)))
    assert len(set(made)) == 8 and all(p.is_dir() for p in made)


def test_explicit_out_with_files_needs_force_which_empties_it(tmp_path):
    cfg = CompareConfig(optimizer=("sgd:lr=0.1",), epochs=1, seeds=2)
    out = tmp_path / "out"
    run_comparison(cfg, out_dir=out, store_path=None)
    assert (out / "bands.png").is_file()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="already holds files.*--force"):
        run_comparison(cfg, out_dir=out, store_path=None)
    assert (out / "notes.txt").is_file()
    one_seed = CompareConfig(optimizer=("adam",), epochs=1)
    run_comparison(one_seed, out_dir=out, store_path=None, force=True)
    assert not (out / "bands.png").exists() and not (out / "notes.txt").exists()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["adam"]
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    with pytest.raises(UserError, match="empties only a comparison's folder"):
        run_comparison(one_seed, out_dir=foreign, store_path=None, force=True)
    assert (foreign / "thesis.tex").read_text() == "keep me"


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"patience": 0}, "patience"),
        ({"optimizer": ("adadelta",), "scheduler": "cycliclr:base_lr=0.01,max_lr=0.1"},
         "momentum"),
        ({"optimizer": ("torch.LBFGS",), "scheduler": "steplr:step_size=0"}, "fails at step 1"),
        ({"optimizer": ("sgd:lr=0.1,maximize=no",)}, "maximize must be true or false"),
        ({"optimizer": ("torch.Muon",)}, "Muon"),  # only known when built over the model
    ],
)
def test_the_whole_plan_is_checked_before_anything_is_written(tmp_path, change, fragment):
    with pytest.raises(UserError, match=fragment):
        run_comparison(CompareConfig(**{**TINY, **change}), out_dir=tmp_path / "out",
                       store_path=tmp_path / "s.sqlite")
    assert list(tmp_path.iterdir()) == []


def test_lbfgs_runs_through_a_comparison(tmp_path):
    cfg = CompareConfig(optimizer=("torch.LBFGS:lr=0.5,max_iter=3",), **TINY)
    result = run_comparison(cfg, out_dir=tmp_path / "out", store_path=None)
    (run,) = result.runs
    assert run["status"] == "finished" and run["history"]["train_loss"][-1] < 2.0


def test_a_run_that_crashes_on_a_bug_is_stored_as_failed(tmp_path, monkeypatch):
    import optimlab.engine

    real_fit = optimlab.engine.fit

    def buggy_fit(*args, **kwargs):
        def crash(epoch, row):
            if epoch == 2:
                raise RuntimeError("a bug in epoch 2")
        return real_fit(*args, **{**kwargs, "on_epoch_end": crash})

    monkeypatch.setattr(optimlab.engine, "fit", buggy_fit)
    with pytest.raises(RuntimeError, match="a bug"):
        run_comparison(CompareConfig(optimizer=("sgd:lr=0.1",), **TINY),
                       out_dir=tmp_path / "out", store_path=tmp_path / "s.sqlite")
    with RunStore(tmp_path / "s.sqlite") as store:
        (run,) = store.list_runs()
        assert run["status"] == "failed"
        assert "RuntimeError: a bug in epoch 2" in store.get_run(run["id"])["result"]["error"]
