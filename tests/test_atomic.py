"""optimlab.atomic: whole files or nothing, with the mode the umask asks for."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from optimlab.atomic import atomic_open, atomic_write_bytes, atomic_write_text


@pytest.fixture
def umask():
    """Set the process umask for one test, restoring it afterwards."""
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_honour_the_umask_like_open(tmp_path, umask, mask, expected):
    umask(mask)
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # the reference: what open() gives
    atomic_write_text(tmp_path / "a.txt", "hello")
    atomic_write_bytes(tmp_path / "sub" / "b.bin", b"\0\1")
    assert _mode(plain) == expected
    assert _mode(tmp_path / "a.txt") == expected
    assert _mode(tmp_path / "sub" / "b.bin") == expected


def test_replaces_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError), atomic_open(path) as f:
        f.write(b"half of the new")
        raise RuntimeError("crash in the middle")
    assert path.read_text() == "old"
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt"]


def test_read_json_object_refuses_anything_but_an_object(tmp_path):
    from optimlab.atomic import read_json_object
    from optimlab.errors import UserError

    atomic_write_text(tmp_path / "ok.json", '{"a": 1}')
    assert read_json_object(tmp_path / "ok.json") == {"a": 1}
    for name, content, fragment in (("list.json", "[1,2]", "expected a JSON object, found list"),
                                    ("half.json", '{"a": ', "not JSON"),
                                    ("bin.json", b"\xff\xfe\0", "not JSON")):
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        with pytest.raises(UserError, match=fragment) as e:
            read_json_object(path, "a run's record")
        assert f"{path} (a run's record) is damaged" in str(e.value)
    with pytest.raises(UserError, match="cannot read"):
        read_json_object(tmp_path, "a folder")
