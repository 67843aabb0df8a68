"""The run store: every comparison's runs and per-epoch metrics in one SQLite file.

Tables: ``experiments`` (one per comparison: its config and output folder), ``runs`` (one per
optimizer × seed: spec, config, status, pid/host, timings, final result) and ``metrics`` (one
row per run and epoch). The file is opened in WAL mode with a busy timeout, and every write is
its own short transaction, so several comparisons can write to one store at the same time
without losing rows. A run is inserted as ``running``; when a later process opens the store, a
``running`` row whose process is gone (same host, dead pid) is marked ``interrupted``.

Readers (``runs list``, ``runs show``, ``report``) open the store with ``read_only=True`` (SQLite
``mode=ro`` or ``query_only``), so they never write — no tables added to a database that is not
a store, no status updates (a dead process's ``running`` row is *shown* as ``interrupted``), no
files left beside it — and a store in a folder they cannot write is still readable. A database
without optimlab's tables is refused.
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
    config TEXT NOT NULL,
    environment TEXT
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

TABLES = ("experiments", "runs", "metrics")
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


def _json_object(text: str | None, what: str) -> dict[str, Any]:
    """A stored JSON object (``{}`` for none); UserError when the text is anything else."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise UserError(f"{what} is damaged: expected a JSON object, found {text[:60]!r}")
    return value


def _reason(e: Exception) -> str:
    return str(e.strerror or e) if isinstance(e, OSError) else str(e)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host (one we may not signal counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunStore:
    """A SQLite run store at ``path``.

    ``create`` (default) creates the file and its folder when missing; ``read_only`` opens an
    existing store for reading only (see :func:`_connect_read_only`): nothing is written, not
    even the status of dead runs. Every mistake — a folder, a missing file, a file that is not
    SQLite or not an optimlab store — is a UserError.
    """

    def __init__(self, path: str | Path, *, create: bool = True, read_only: bool = False,
                 timeout_s: float = 60.0) -> None:
        self.path = Path(path)
        self.read_only = read_only
        if self.path.is_dir():
            raise UserError(f"run store {self.path} is a folder, not a SQLite file (e.g. "
                            f"{self.path / 'optimlab.sqlite'})")
        if (read_only or not create) and not self.path.is_file():
            raise UserError(f"no run store at {self.path} (run `optimlab compare` first)")
        try:
            if read_only:
                self._db = _connect_read_only(self.path, timeout_s)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        except (sqlite3.DatabaseError, OSError) as e:
            raise UserError(f"cannot open run store {self.path}: {_reason(e)}") from None
        try:
            self._check_is_a_store()
            if not read_only:
                self._db.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")
                self._create_tables()
        except (sqlite3.DatabaseError, OSError, UserError) as e:
            self._db.close()
            if isinstance(e, UserError):
                raise
            raise UserError(f"cannot open run store {self.path}: {_reason(e)}") from None
        if not read_only:
            self.mark_dead_runs()

    def _check_is_a_store(self) -> None:
        """Refuse a database that has tables but not optimlab's (it is someone else's)."""
        tables = {r[0] for r in self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
        if (tables or self.read_only) and not set(TABLES) <= tables:
            found = ", ".join(sorted(tables)) or "none"
            raise UserError(f"{self.path} is not an optimlab run store (its tables: {found}; a "
                            f"store has {', '.join(TABLES)})")

    def _create_tables(self) -> None:
        with self._write() as db:
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    db.execute(stmt)
            columns = {r[1] for r in db.execute("PRAGMA table_info(experiments)")}
            if "environment" not in columns:  # a store written before environments were kept
                db.execute("ALTER TABLE experiments ADD COLUMN environment TEXT")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction; BEGIN IMMEDIATE takes the lock up front (no deadlock)."""
        assert not self.read_only, "a read-only store was asked to write"
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- writing ---------------------------------------------------------------------------

    def add_experiment(self, config: dict[str, Any], out_dir: str | None,
                       environment: dict[str, Any] | None = None) -> int:
        """Record a comparison; ``environment`` defaults to this process's (torch, host, …)."""
        env = _this_environment(config) if environment is None else environment
        with self._write() as db:
            cur = db.execute(
                "INSERT INTO experiments (created, out_dir, config, environment)"
                " VALUES (?, ?, ?, ?)",
                (time.time(), out_dir, json.dumps(config, default=repr),
                 json.dumps(env, default=repr)),
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
        dead = [rid for rid, pid in rows if pid is None or not pid_alive(int(pid))]
        if dead:
            with self._write() as db:
                db.executemany(
                    "UPDATE runs SET status = 'interrupted', updated = ? WHERE id = ?"
                    " AND status = 'running'", [(time.time(), rid) for rid in dead])
        return len(dead)

    # -- reading ---------------------------------------------------------------------------

    def _shown_status(self, status: str, pid: int | None, host: str | None) -> str:
        """The status to show: a dead process's ``running`` row is ``interrupted``.

        A writer has already marked such rows; a reader only shows them so.
        """
        if status == "running" and host == socket.gethostname() and (
                pid is None or not pid_alive(int(pid))):
            return "interrupted"
        return status

    def list_runs(self) -> list[dict[str, Any]]:
        """All runs, oldest first, as dicts (``experiment`` is the experiment id).

        A run whose stored result is damaged is listed without test numbers.
        """
        rows = self._db.execute(
            "SELECT id, experiment_id, name, optimizer, seed, status, pid, host, started,"
            " wall_seconds, result FROM runs ORDER BY id").fetchall()
        out = []
        for rid, exp, name, opt, seed, status, pid, host, started, wall, result in rows:
            try:
                res = _json_object(result, "")
            except UserError:
                res = {}
            out.append({"id": rid, "experiment": exp, "name": name, "optimizer": opt,
                        "seed": seed, "status": self._shown_status(status, pid, host),
                        "started": started, "wall_seconds": wall,
                        "test_accuracy": res.get("test_accuracy"),
                        "test_loss": res.get("test_loss")})
        return out

    def get_run(self, run_id: int) -> dict[str, Any]:
        """One run with its config, result and history; UserError when it does not exist."""
        row = None
        if 0 < run_id < 2**63:  # SQLite's integers; a larger id names no run
            row = self._db.execute(
                f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            shown = str(run_id) if len(str(run_id)) <= 30 else f"{str(run_id)[:27]}..."
            raise UserError(f"no run with id {shown} in {self.path} (see `optimlab runs list`)")
        run = dict(zip(RUN_COLUMNS, row, strict=True))
        for key in ("hparams", "config", "result"):
            run[key] = _json_object(run[key], f"run {run_id}'s {key} in {self.path}")
        run["status"] = self._shown_status(run["status"], run["pid"], run["host"])
        run["history"] = self.history(run_id)
        return run

    def history(self, run_id: int) -> dict[str, list[Any]]:
        rows = self._db.execute(
            f"SELECT epoch, {', '.join(_METRIC_KEYS)} FROM metrics WHERE run_id = ?"
            " ORDER BY epoch", (run_id,)).fetchall()
        cols = ("epoch", *_METRIC_KEYS)
        return {c: [r[i] for r in rows] for i, c in enumerate(cols)}

    def experiment(self, experiment_id: int) -> dict[str, Any]:
        """One experiment: id, created, out_dir, config and environment (``{}`` if unknown)."""
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(experiments)")}
        env = "environment" if "environment" in columns else "NULL"
        row = self._db.execute(f"SELECT id, created, out_dir, config, {env} FROM experiments"
                               " WHERE id = ?", (experiment_id,)).fetchone()
        if row is None:
            raise UserError(f"no experiment with id {experiment_id} in {self.path}")
        what = f"experiment {experiment_id}'s {{}} in {self.path}"
        return {"id": row[0], "created": row[1], "out_dir": row[2],
                "config": _json_object(row[3], what.format("config")),
                "environment": _json_object(row[4], what.format("environment"))}


def check_store_path(path: str | Path) -> None:
    """Raise UserError unless a writer could open a run store at ``path``; write nothing.

    For validating a plan before anything is written: ``path`` must be an optimlab store, or
    not exist yet in a folder that exists or can be made and is writable.
    """
    path = Path(path)
    if path.exists():
        RunStore(path, read_only=True).close()  # a folder, not SQLite, not a store: UserError
        if not os.access(path, os.W_OK):
            raise UserError(f"run store {path} is read-only; give another --store")
        return
    ancestor = path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"run store {path}: {ancestor} is a file, so no folder can be made")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UserError(f"run store {path}: cannot write in {ancestor} (permission denied)")


def _connect_read_only(path: Path, timeout_s: float) -> sqlite3.Connection:
    """Open ``path`` so that nothing can be written and the folder is left as found.

    With a ``-wal`` file present (a writer is active, or died) SQLite's ``mode=ro`` reads it
    and creates nothing. Without one, ``mode=ro`` would leave an empty ``-wal`` and ``-shm``
    behind; a connection with ``PRAGMA query_only`` refuses every write just the same and, being
    the last to close, removes them. In a folder this process cannot write, SQLite cannot make
    the ``-shm`` index a WAL store needs, and the file is read ``immutable`` (as a plain file).
    """
    uri = path.resolve().as_uri()
    db = None
    try:
        if path.with_name(f"{path.name}-wal").exists():
            db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=timeout_s,
                                 isolation_level=None)
        else:
            db = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
            db.execute("PRAGMA query_only = ON")
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError:
        if db is not None:
            db.close()
        if os.access(path.parent, os.W_OK):
            raise
    return sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, isolation_level=None)


def _this_environment(config: dict[str, Any]) -> dict[str, Any]:
    """What produced a comparison's numbers, when its writer did not say (torch, host, …)."""
    import torch

    from optimlab.lab.compare import environment

    device = str(config.get("device", "auto"))
    if device not in ("cpu", "cuda"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return environment(device)
