"""The SQLite run store: lifecycle, dead runs, concurrent writers."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

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


# -- readers never write; a store is recognised as one -------------------------------------

def _finished_store(path) -> int:
    with RunStore(path) as store:
        exp = store.add_experiment({"epochs": 1, "device": "cpu"}, None)
        rid = store.start_run(exp, name="sgd", optimizer="sgd", hparams={}, seed=0, config={})
        store.log_epoch(rid, 1, {"train_loss": 1.0})
        store.finish_run(rid, "finished", wall_seconds=1.0, result={"test_accuracy": 0.5})
    return rid


def _snapshot(folder):
    """Every file's bytes, but SQLite's shared-memory lock index (``-shm``: readers mark it)."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.endswith("-shm")}


def test_reading_an_unrelated_database_refuses_and_changes_nothing(tmp_path):
    import sqlite3

    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE users (name TEXT)")
        db.execute("INSERT INTO users VALUES ('ann')")
    db.close()
    before = _snapshot(tmp_path)
    for kwargs in ({"read_only": True}, {}):  # a writer refuses it too
        with pytest.raises(UserError, match=r"not an optimlab run store \(its tables: users"):
            RunStore(other, **kwargs)
    assert _snapshot(tmp_path) == before
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    with pytest.raises(UserError, match="its tables: none"):
        RunStore(empty, read_only=True)
    assert empty.read_bytes() == b""
    (tmp_path / "text.sqlite").write_text("hello, not sqlite" * 10)
    with pytest.raises(UserError, match="cannot open run store .*text.sqlite: file is not a"):
        RunStore(tmp_path / "text.sqlite", read_only=True)


def test_a_folder_is_not_a_store(tmp_path):
    for kwargs in ({"read_only": True}, {}):
        with pytest.raises(UserError, match=f"run store {tmp_path} is a folder"):
            RunStore(tmp_path, **kwargs)


def test_reader_shows_dead_runs_interrupted_without_writing(tmp_path):
    import sqlite3

    path = tmp_path / "s.sqlite"
    rid = _finished_store(path)
    code = ("import os, sys; from optimlab.lab.store import RunStore; s = RunStore(sys.argv[1]);"
            "s.start_run(1, name='x', optimizer='sgd', hparams={}, seed=0, config={});"
            "os._exit(0)")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    before = _snapshot(tmp_path)
    with RunStore(path, read_only=True) as store:
        assert [r["status"] for r in store.list_runs()] == ["finished", "interrupted"]
        assert store.get_run(rid + 1)["status"] == "interrupted"
        with pytest.raises(AssertionError, match="read-only"):
            store.finish_run(rid, "diverged")
    assert _snapshot(tmp_path) == before
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT status FROM runs ORDER BY id").fetchall() == [
        ("finished",), ("running",)]
    raw.close()


def _in_unprivileged_child(fn) -> str:
    """Run ``fn() -> str`` where folder permissions apply: as ``nobody`` when we are root."""
    if os.geteuid() != 0:
        return fn()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: drop to nobody, report the result, never return into pytest
        try:
            os.close(read)
            os.setgid(65534)
            os.setuid(65534)
            text = fn()
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            text = f"{type(e).__name__}: {e}"
        os.write(write, text.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        text = f.read()
    os.waitpid(pid, 0)
    return text


def test_store_in_a_read_only_folder_can_be_listed(tmp_path):
    import stat
    import tempfile

    base = Path(tempfile.mkdtemp())  # not under pytest's 0700 tmp, so `nobody` can enter
    try:
        folder = base / "shared"
        folder.mkdir()
        rid = _finished_store(folder / "s.sqlite")
        before = _snapshot(folder)
        base.chmod(0o755)
        (folder / "s.sqlite").chmod(0o444)
        folder.chmod(0o555)

        def read() -> str:
            with RunStore(folder / "s.sqlite", read_only=True) as store:
                runs = store.list_runs()
                return f"{runs[0]['status']} {store.get_run(rid)['result']}"

        assert _in_unprivileged_child(read) == "finished {'test_accuracy': 0.5}"
        assert _snapshot(folder) == before
    finally:
        folder.chmod(stat.S_IRWXU)
        subprocess.run(["rm", "-rf", str(base)], check=True)


def test_ids_beyond_sqlite_integers_and_damaged_rows(tmp_path):
    import sqlite3

    path = tmp_path / "s.sqlite"
    rid = _finished_store(path)
    with RunStore(path, read_only=True) as store:
        for bad in (99999999999999999999999, 2**63, 0, -1):
            with pytest.raises(UserError, match="no run with id"):
                store.get_run(bad)
    raw = sqlite3.connect(path)
    raw.execute("UPDATE runs SET result = '[1,2]' WHERE id = ?", (rid,))
    raw.commit()
    raw.close()
    with RunStore(path, read_only=True) as store:
        assert store.list_runs()[0]["test_accuracy"] is None
        with pytest.raises(UserError, match=r"run 1's result in .* is damaged.*'\[1,2\]'"):
            store.get_run(rid)


def test_experiments_keep_their_environment_and_old_stores_are_upgraded(tmp_path):
    import sqlite3

    import torch

    path = tmp_path / "s.sqlite"
    _finished_store(path)
    with RunStore(path, read_only=True) as store:
        env = store.experiment(1)["environment"]
    assert env["torch"] == torch.__version__ and env["device"] == "cpu"
    old = tmp_path / "old.sqlite"  # the schema before environments were kept
    raw = sqlite3.connect(old)
    from optimlab.lab.store import _SCHEMA

    assert ",\n    environment TEXT" in _SCHEMA
    raw.executescript(_SCHEMA.replace(",\n    environment TEXT", "")
                      + "INSERT INTO experiments (created, config) VALUES (0, '{}');")
    raw.close()
    with RunStore(old, read_only=True) as store:
        assert store.experiment(1)["environment"] == {}
    with RunStore(old) as store:
        assert store.experiment(store.add_experiment({}, None, {"torch": "x"}))[
            "environment"] == {"torch": "x"}


def test_reader_leaves_the_folder_as_found(tmp_path):
    path = tmp_path / "s.sqlite"
    rid = _finished_store(path)
    names, data = sorted(p.name for p in tmp_path.iterdir()), path.read_bytes()
    assert names == ["s.sqlite"]
    with RunStore(path, read_only=True) as store:
        store.list_runs()
        store.get_run(rid)
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store._db.execute("DELETE FROM runs")  # SQL cannot write either
    assert sorted(p.name for p in tmp_path.iterdir()) == names and path.read_bytes() == data


def test_check_store_path_before_anything_is_written(tmp_path):
    from optimlab.lab.store import check_store_path

    check_store_path(tmp_path / "new" / "deeper" / "s.sqlite")  # would be made
    _finished_store(tmp_path / "s.sqlite")
    check_store_path(tmp_path / "s.sqlite")
    (tmp_path / "file").write_text("x")
    for bad, fragment in ((tmp_path, "is a folder"), (tmp_path / "file", "file is not a"),
                          (tmp_path / "file" / "s.sqlite", "is a file, so no folder")):
        with pytest.raises(UserError, match=fragment):
            check_store_path(bad)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "s.sqlite"]
