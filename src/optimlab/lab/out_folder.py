"""Output folders of the lab's commands: checked before anything is written, then created.

A default folder (``runs/<YYYYmmdd-HHMMSS>-compare``) is created exclusively, with ``-2``,
``-3``… when two commands start in the same second, so two runs never share a folder. An
explicit ``--out`` must be new or empty; ``--force`` empties it first, but only when it holds
a previous run of the same command (its state file), never other files. Stale plots and
checkpoints therefore never mix with a new run's.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from optimlab.errors import UserError


def default_out_dir() -> Path:
    """``runs/<YYYYmmdd-HHMMSS>-compare`` (made unique when created)."""
    return Path("runs") / (time.strftime("%Y%m%d-%H%M%S") + "-compare")


def check_out_dir(out: Path, *, explicit: bool, force: bool, state_file: str,
                  what: str = "comparison") -> None:
    """Refuse, before anything is written, an output folder that cannot be used.

    A file (or ``/dev/null``), a path under a file, an unwritable place; an explicit folder
    that already holds files, unless ``force`` — which only empties a previous comparison's
    folder (one holding ``comparison.json``; ``tune`` passes its own ``state_file``), never
    other files.
    """
    flag = "--out" if explicit else "the default output folder"
    if out.exists() and not out.is_dir():
        raise UserError(f"{flag} {out} is a file, not a folder; choose a folder")
    parent = out.absolute()
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{flag} {out}: {parent} is a file, so no folder can be made under it")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{flag} {out}: {parent} is not writable; choose another folder")
    if not explicit or not out.is_dir() or not any(out.iterdir()):
        return
    if not force:
        raise UserError(f"--out {out} already holds files; choose a new or empty folder, "
                        "or add --force to empty it first")
    if not (out / state_file).is_file():
        raise UserError(f"--force empties only a {what}'s folder (one holding "
                        f"{state_file}); {out} holds other files, so choose another folder")


def first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (None if ``path`` exists)."""
    missing = None
    for p in (path, *path.parents):
        if p.exists():
            break
        missing = p
    return missing


def remove_empty_folders(out: Path, top: Path) -> None:
    """Remove ``out`` and its parents up to ``top`` as long as they are empty."""
    for p in (out, *out.parents):
        try:
            p.rmdir()
        except OSError:
            return
        if p == top:
            return


def make_out_dir(out: Path, *, explicit: bool, force: bool) -> Path:
    """Create the output folder checked by :func:`check_out_dir` (emptied with ``force``);
    a default folder is created exclusively, with a suffix when the name is taken."""
    try:
        if explicit:
            if force and out.is_dir():
                for child in out.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
            out.mkdir(parents=True, exist_ok=True)
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
        for i in range(1, 10_000):
            candidate = out if i == 1 else out.with_name(f"{out.name}-{i}")
            try:
                candidate.mkdir()
                return candidate
            except FileExistsError:
                continue
    except OSError as e:
        raise UserError(f"cannot create output folder {out}: {e.strerror or e}") from None
    raise UserError(f"cannot find a free output folder name next to {out}")
