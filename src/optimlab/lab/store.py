"""The run store: every comparison's runs and per-epoch metrics in one SQLite file.

Tables: ``experiments`` (one per comparison: its config and output folder), ``runs`` (one per
optimizer × seed: spec, config, status, pid/host, timings, final result) and ``metrics`` (one
row per run and epoch). The file is opened in WAL mode with a busy timeout, and every write is
its own short transaction, so several comparisons can write to one store at the same time
without losing rows. A run is inserted as ``running``; when a later process opens the store, a
``running`` row whose process is gone (same host, dead pid) is marked ``interrupted``.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from optimlab.errors import UserError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS experiments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    out_dir TEXT,
    config TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id),
    name TEXT NOT NULL,
    optimizer TEXT NOT NULL,
    hparams TEXT NOT NULL,
    seed INTEGER NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    pid INTEGER,
    host TEXT,
    started REAL NOT NULL,
    updated REAL NOT NULL,
    finished REAL,
    wall_seconds REAL,
    result TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    epoch INTEGER NOT NULL,
    train_loss REAL,
    val_loss REAL,
    val_accuracy REAL,
    lr REAL,
    wall_time REAL,
    PRIMARY KEY (run_id, epoch)
);
"""

RUN_COLUMNS = ("id", "experiment_id", "name", "optimizer", "hparams", "seed", "config",
               "status", "pid", "host", "started", "updated", "finished", "wall_seconds",
               "result")
_METRIC_KEYS = ("train_loss", "val_loss", "val_accuracy", "lr", "wall_time")


def _finite(x: Any) -> float | None:
    """SQLite stores NaN as NULL anyway; make that explicit and keep inf out too."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunStore:
    """A SQLite run store at ``path`` (created with its folder when missing)."""

    def __init__(self, path: str | Path, *, create: bool = True, timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise UserError(f"no run store at {self.path} (run `optimlab compare` first)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
            self._db.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")
            with self._write() as db:
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        db.execute(stmt)
        except sqlite3.DatabaseError as e:
            raise UserError(f"cannot open run store {self.path}: {e}") from None
        self.mark_dead_runs()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction; BEGIN IMMEDIATE takes the lock up front (no deadlock)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- writing ---------------------------------------------------------------------------

    def add_experiment(self, config: dict[str, Any], out_dir: str | None) -> int:
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO experiments (created, out_dir, config) VALUES (?, ?, ?)",
                (time.time(), out_dir, json.dumps(config)),
            )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def start_run(self, experiment_id: int, *, name: str, optimizer: str,
                  hparams: dict[str, Any], seed: int, config: dict[str, Any]) -> int:
        """Insert a run as ``running``, owned by this process."""
        now = time.time()
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO runs (experiment_id, name, optimizer, hparams, seed, config, status,"
                " pid, host, started, updated) VALUES (?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?)",
                (experiment_id, name, optimizer, json.dumps(hparams, default=repr), seed,
                 json.dumps(config, default=repr), os.getpid(), socket.gethostname(), now, now),
            )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def find_run(self, experiment_id: int, name: str, seed: int) -> int | None:
        row = self._db.execute(
            "SELECT id FROM runs WHERE experiment_id = ? AND name = ? AND seed = ?"
            " ORDER BY id DESC LIMIT 1", (experiment_id, name, seed)).fetchone()
        return None if row is None else int(row[0])

    def reclaim_run(self, run_id: int) -> None:
        """Mark a run ``running`` again under this process (resuming it)."""
        with self._write() as db:
            db.execute("UPDATE runs SET status = 'running', pid = ?, host = ?, updated = ?,"
                       " finished = NULL WHERE id = ?",
                       (os.getpid(), socket.gethostname(), time.time(), run_id))

    def log_epoch(self, run_id: int, epoch: int, metrics: dict[str, Any]) -> None:
        """Record (or replace, after a resume) one epoch's metrics."""
        values = [_finite(metrics.get(k)) for k in _METRIC_KEYS]
        with self._write() as db:
            db.execute(
                "INSERT OR REPLACE INTO metrics (run_id, epoch, train_loss, val_loss,"
                " val_accuracy, lr, wall_time) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run_id, int(epoch), *values),
            )
            db.execute("UPDATE runs SET updated = ? WHERE id = ?", (time.time(), run_id))

    def finish_run(self, run_id: int, status: str, *, wall_seconds: float | None = None,
                   result: dict[str, Any] | None = None) -> None:
        now = time.time()
        with self._write() as db:
            db.execute(
                "UPDATE runs SET status = ?, updated = ?, finished = ?, wall_seconds = ?,"
                " result = ? WHERE id = ?",
                (status, now, now, wall_seconds,
                 None if result is None else json.dumps(result, default=repr), run_id),
            )

    def mark_dead_runs(self) -> int:
        """Mark ``running`` rows of dead processes on this host ``interrupted``; return count."""
        host = socket.gethostname()
        rows = self._db.execute(
            "SELECT id, pid FROM runs WHERE status = 'running' AND host = ?", (host,)
        ).fetchall()
        dead = [rid for rid, pid in rows if pid is None or not _pid_alive(int(pid))]
        if dead:
            with self._write() as db:
                db.executemany(
                    "UPDATE runs SET status = 'interrupted', updated = ? WHERE id = ?"
                    " AND status = 'running'", [(time.time(), rid) for rid in dead])
        return len(dead)

    # -- reading ---------------------------------------------------------------------------

    def list_runs(self) -> list[dict[str, Any]]:
        """All runs, oldest first, as dicts (``experiment`` is the experiment id)."""
        rows = self._db.execute(
            "SELECT id, experiment_id, name, optimizer, seed, status, started, wall_seconds,"
            " result FROM runs ORDER BY id").fetchall()
        out = []
        for rid, exp, name, opt, seed, status, started, wall, result in rows:
            res = json.loads(result) if result else {}
            out.append({"id": rid, "experiment": exp, "name": name, "optimizer": opt,
                        "seed": seed, "status": status, "started": started,
                        "wall_seconds": wall, "test_accuracy": res.get("test_accuracy"),
                        "test_loss": res.get("test_loss")})
        return out

    def get_run(self, run_id: int) -> dict[str, Any]:
        """One run with its config, result and history; UserError when it does not exist."""
        row = self._db.execute(
            f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise UserError(f"no run with id {run_id} in {self.path}")
        run = dict(zip(RUN_COLUMNS, row, strict=True))
        for key in ("hparams", "config", "result"):
            run[key] = json.loads(run[key]) if run[key] else {}
        run["history"] = self.history(run_id)
        return run

    def history(self, run_id: int) -> dict[str, list[Any]]:
        rows = self._db.execute(
            f"SELECT epoch, {', '.join(_METRIC_KEYS)} FROM metrics WHERE run_id = ?"
            " ORDER BY epoch", (run_id,)).fetchall()
        cols = ("epoch", *_METRIC_KEYS)
        return {c: [r[i] for r in rows] for i, c in enumerate(cols)}

    def experiment(self, experiment_id: int) -> dict[str, Any]:
        row = self._db.execute("SELECT id, created, out_dir, config FROM experiments WHERE id = ?",
                               (experiment_id,)).fetchone()
        if row is None:
            raise UserError(f"no experiment with id {experiment_id} in {self.path}")
        return {"id": row[0], "created": row[1], "out_dir": row[2], "config": json.loads(row[3])}
