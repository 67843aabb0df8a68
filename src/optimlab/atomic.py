"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Every file optimlab writes (checkpoints, results, plots, reports) goes
through :func:`atomic_open`: write to a temporary file in the same folder, flush and fsync it,
``os.replace`` it over the target, then fsync the folder so the rename itself survives a crash.
A failure or a kill at any moment leaves the previous file intact.

The temporary file is created with mode 0666 less the umask, like ``open(path, "w")`` —
0644 under the usual umask 022 — because result folders are shared: ``tempfile.mkstemp``
would make every output 0600 whatever the umask. Its name is ``.<name>.<random>.tmp``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["atomic_open", "atomic_write_bytes", "atomic_write_text", "read_json_object"]


@contextmanager
def atomic_open(path: str | Path) -> Iterator[BinaryIO]:
    """Open a temporary binary file that replaces ``path`` when the ``with`` block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new, exclusive temporary file beside ``path``; its mode honours the umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:  # another writer drew the same name: draw again
            continue


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (not possible on every platform: then skip)."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path) as f:
        f.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def read_json_object(path: str | Path, what: str = "") -> dict[str, Any]:
    """Read back a JSON object this package wrote (``results.json``, ``comparison.json``, …).

    The file is user-reachable data: anything but a JSON object — unreadable, not JSON,
    ``[1, 2]`` — is a :class:`~optimlab.errors.UserError` naming the file (and ``what`` it
    should be), never a TypeError from the caller's first ``.get``.
    """
    import json

    from optimlab.errors import UserError

    path = Path(path)
    label = f"{path} ({what})" if what else str(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UserError(f"cannot read {label}: {e.strerror or e}") from None
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError
        raise UserError(f"{label} is damaged: not JSON ({e})") from None
    if not isinstance(value, dict):
        raise UserError(f"{label} is damaged: expected a JSON object, found "
                        f"{type(value).__name__} {json.dumps(value)[:40]}")
    return value
