"""The SQLite run store: lifecycle, dead runs, concurrent writers."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys

import pytest

from optimlab.errors import UserError
from optimlab.lab.store import RunStore


def test_run_lifecycle(tmp_path):
    with RunStore(tmp_path / "s.sqlite") as store:
        exp = store.add_experiment({"epochs": 2}, str(tmp_path))
        rid = store.start_run(exp, name="adam", optimizer="adam", hparams={"lr": 0.1}, seed=0,
                              config={"epochs": 2})
        assert store.list_runs()[0]["status"] == "running"
        store.log_epoch(rid, 1, {"train_loss": 1.0, "val_loss": None, "lr": 0.1})
        store.log_epoch(rid, 2, {"train_loss": float("nan"), "val_loss": 2.0, "lr": 0.1})
        store.log_epoch(rid, 2, {"train_loss": 0.5, "val_loss": 0.7, "lr": 0.1})  # replaced
        store.finish_run(rid, "finished", wall_seconds=1.0, result={"test_accuracy": 0.9})
        run = store.get_run(rid)
    assert run["status"] == "finished" and run["pid"] == os.getpid()
    assert run["history"]["epoch"] == [1, 2]
    assert run["history"]["train_loss"] == [1.0, 0.5]
    assert run["history"]["val_loss"] == [None, 0.7]
    assert run["result"] == {"test_accuracy": 0.9}
    listed = RunStore(tmp_path / "s.sqlite", create=False).list_runs()
    assert listed[0]["id"] == rid and listed[0]["experiment"] == exp
    assert listed[0]["test_accuracy"] == 0.9


def test_missing_store_and_run(tmp_path):
    with pytest.raises(UserError, match="no run store"):
        RunStore(tmp_path / "none.sqlite", create=False)
    with RunStore(tmp_path / "s.sqlite") as store, pytest.raises(UserError, match="no run"):
        store.get_run(42)


def test_running_row_of_dead_process_becomes_interrupted(tmp_path):
    path = tmp_path / "s.sqlite"
    code = ("import os, sys; from optimlab.lab.store import RunStore; s = RunStore(sys.argv[1]);"
            "e = s.add_experiment({}, None);"
            "s.start_run(e, name='x', optimizer='sgd', hparams={}, seed=0, config={});"
            "os._exit(0)")  # dies without finishing the run, like a SIGKILL
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    with RunStore(path) as store:
        mine = store.start_run(1, name="y", optimizer="sgd", hparams={}, seed=0, config={})
    statuses = {r["name"]: r["status"] for r in RunStore(path).list_runs()}
    assert statuses == {"x": "interrupted", "y": "running"}  # y: this process is alive
    assert mine == 2


def _writer(path: str, worker: int, runs: int, epochs: int) -> None:
    store = RunStore(path)
    exp = store.add_experiment({"worker": worker}, None)
    for r in range(runs):
        rid = store.start_run(exp, name=f"w{worker}r{r}", optimizer="sgd", hparams={}, seed=r,
                              config={})
        for e in range(1, epochs + 1):
            store.log_epoch(rid, e, {"train_loss": 1.0 / e, "lr": 0.1})
        store.finish_run(rid, "finished", wall_seconds=0.0)
    store.close()


def test_concurrent_writers_lose_nothing(tmp_path):
    path = str(tmp_path / "s.sqlite")
    workers, runs, epochs = 4, 10, 8
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, runs, epochs)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with RunStore(path) as store:
        listed = store.list_runs()
        assert len(listed) == workers * runs
        assert {r["status"] for r in listed} == {"finished"}
        assert len({r["experiment"] for r in listed}) == workers
        for r in listed:
            assert store.history(r["id"])["epoch"] == list(range(1, epochs + 1))
