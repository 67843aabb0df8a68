"""--resume after SIGKILL: exactly --trials trials per optimizer, none counted twice, the trials
that were running rerun, and (random sampler) the same trials as an uninterrupted tune."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from optimlab.lab.tune import resume_tune

ARGS = ["--optimizer", "sgd:lr=log(1e-3,1),momentum=0.9", "--optimizer", "adam",
        "--trials", "5", "--epochs", "12", "--seeds", "1", "--sampler", "random",
        "--workers", "1", "--no-defaults", "--quiet"]


def cli(args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "optimlab", "tune", *args], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def trials_of(out: Path) -> list[list[tuple[str, str, float, int]]]:
    data = json.loads((out / "results.json").read_text())
    return [[(t["state"], json.dumps(t["params"]), t["value"], t["epochs"])
             for t in o["trials"]] for o in data["optimizers"]]


def kill_after(proc: subprocess.Popen[bytes], out: Path, records: int) -> int:
    """SIGKILL ``proc`` once ``records`` trial records exist; how many there were."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        done = len(list((out / "trials").glob("*/trial*.json")))
        if done >= records:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return done
        time.sleep(0.02)
    pytest.fail(f"the tune ended before {records} trials: {proc.stderr.read()!r}")


@pytest.fixture(scope="module")
def full(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same tune, never interrupted."""
    root = tmp_path_factory.mktemp("full")
    proc = cli([*ARGS, "--out", "full", "--store", "s.sqlite"], root)
    assert proc.wait() == 0, proc.stderr.read() if proc.stderr else ""
    return root / "full"


@pytest.mark.slow
@pytest.mark.parametrize("records", [2, 7])  # within the first optimizer; in the second
def test_resume_after_sigkill_finishes_exactly_the_same_trials(tmp_path, records, full):
    killed = cli([*ARGS, "--out", "cut", "--store", "s.sqlite"], tmp_path)
    done = kill_after(killed, tmp_path / "cut", records)
    assert not (tmp_path / "cut" / "results.json").exists()
    result = resume_tune(tmp_path / "cut")
    assert [len(o["trials"]) for o in result.optimizers] == [5, 5]
    assert trials_of(tmp_path / "cut") == trials_of(full)
    assert done < 10

    import optuna

    from optimlab.lab.tune.study import open_storage

    storage = open_storage((tmp_path / "cut" / "study.sqlite").resolve())
    abandoned = 0
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        counted = [t.user_attrs["position"] for t in study.trials
                   if t.state != optuna.trial.TrialState.FAIL]
        assert sorted(counted) == [0, 1, 2, 3, 4]  # none twice; the abandoned one failed
        assert all(t.state.is_finished() for t in study.trials)
        abandoned += len(study.trials) - len(counted)
    assert abandoned <= 1  # at most the one trial running at the kill
    reruns = json.loads((tmp_path / "cut" / "results.json").read_text())
    full_reruns = json.loads((full / "results.json").read_text())
    for a, b in zip(reruns["optimizers"], full_reruns["optimizers"], strict=True):
        assert a["reruns"]["test_accuracy"] == b["reruns"]["test_accuracy"]


@pytest.mark.slow
def test_worker_processes_end_with_a_sigkilled_driver(tmp_path, full):
    args = list(ARGS)
    args[args.index("--workers") + 1] = "2"
    proc = subprocess.Popen([sys.executable, "-m", "optimlab", "tune", *args, "--out", "cut",
                             "--store", "s.sqlite"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    kill_after(proc, tmp_path / "cut", 3)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)  # anything left in the driver's process group?
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("worker processes outlived the SIGKILLed driver by 30 s")
    result = resume_tune(tmp_path / "cut")  # and the tune still finishes the same
    assert [len(o["trials"]) for o in result.optimizers] == [5, 5]
    assert trials_of(tmp_path / "cut") == trials_of(full)
