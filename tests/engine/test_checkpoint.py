"""Checkpoints: exact resume (also after SIGKILL), safe loading, configuration checks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from optimlab.data import load_dataset
from optimlab.engine import CheckpointError, EarlyStopping, fit
from optimlab.engine.checkpoint import save_atomic

HERE = Path(__file__).parent
CONFIG = {"experiment": "resume", "model": "dropout-mlp"}


def run_training(ckdir, *, epochs=6, resume=False, lr=1e-3, config=None, sleep=0.0,
                 on_epoch_end=None):
    """A run touching every piece of state: dropout (torch RNG), Adam, StepLR, early stopping,
    validation every other epoch."""
    data = load_dataset("digits", seed=0)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Dropout(0.3),
                          nn.Linear(32, 10))

    def hook(epoch, row):
        time.sleep(sleep)
        if on_epoch_end:
            on_epoch_end(epoch, row)

    result = fit(model, torch.optim.Adam(model.parameters(), lr=lr), data, epochs=epochs,
                 seed=3, scheduler="steplr", scheduler_args={"step_size": 2, "gamma": 0.5},
                 val_every=2, early_stopping=EarlyStopping(patience=50), progress=False,
                 checkpoint_dir=ckdir, resume=resume,
                 config=CONFIG if config is None else config, on_epoch_end=hook)
    return model, result


def _comparable(result):
    h = result.history.to_dict()
    h.pop("wall_time")  # the only thing allowed to differ
    return h, result.status


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


@pytest.fixture(scope="module")
def reference():
    torch.set_num_threads(1)
    model, result = run_training(None, epochs=8)
    return _params(model), _comparable(result)


def test_resume_after_sigkill_is_bitwise_identical(tmp_path, reference):
    script = (f"import sys, torch; torch.set_num_threads(1); sys.path.insert(0, {str(HERE)!r});"
              f"from test_checkpoint import run_training;"
              f"run_training({str(tmp_path)!r}, epochs=8, sleep=0.25)")
    proc = subprocess.Popen([sys.executable, "-c", script])
    ck = tmp_path / "checkpoint.pt"
    try:
        deadline = time.monotonic() + 120
        while not ck.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    stored = torch.load(ck, weights_only=True)
    assert stored["status"] == "interrupted" and 1 <= stored["epoch"] < 8
    # a kill inside the atomic write may leave a temporary file; resuming removes it
    epochs_seen = []
    model, result = run_training(tmp_path, epochs=8, resume=True,
                                 on_epoch_end=lambda e, row: epochs_seen.append(e))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]
    assert epochs_seen == list(range(stored["epoch"] + 1, 9))
    ref_params, ref_history = reference
    assert _comparable(result) == ref_history
    assert all(torch.equal(a, b) for a, b in zip(_params(model), ref_params, strict=True))


def test_extend_a_finished_run_and_return_a_completed_one(tmp_path, reference):
    run_training(tmp_path, epochs=5)
    model, result = run_training(tmp_path, epochs=8, resume=True)
    assert _comparable(result) == reference[1]
    calls = []
    model, again = run_training(tmp_path, epochs=8, resume=True,
                                on_epoch_end=lambda e, row: calls.append(e))
    assert calls == [] and _comparable(again) == reference[1]
    assert all(torch.equal(a, b) for a, b in zip(_params(model), reference[0], strict=True))


def test_other_configuration_is_refused_without_loading(tmp_path):
    run_training(tmp_path, epochs=1)
    for kwargs, match in (({"config": {"experiment": "other"}}, "experiment"),
                          ({"lr": 0.5}, "optimizer_defaults")):
        with pytest.raises(CheckpointError, match=match):
            run_training(tmp_path, epochs=2, resume=True, **kwargs)
    data = load_dataset("digits", seed=0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    before = _params(model)
    with pytest.raises(CheckpointError, match="another configuration"):
        fit(model, torch.optim.Adam(model.parameters()), data, epochs=2, checkpoint_dir=tmp_path,
            resume=True, config=CONFIG, progress=False, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(_params(model), before, strict=True))


class _Payload:
    """Unpickling this calls open(marker, "w"): a file appears if the pickle is executed."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_malicious_checkpoint_executes_nothing(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"format": 1, "model": _Payload(marker)}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="refuses"):
        run_training(tmp_path, epochs=1, resume=True)
    assert not marker.exists()
    torch.load(tmp_path / "checkpoint.pt", weights_only=False)  # proves the payload is live
    assert marker.exists()


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_checkpoint_is_a_clear_error(tmp_path, damage):
    run_training(tmp_path, epochs=1)
    ck = tmp_path / "checkpoint.pt"
    data = ck.read_bytes()
    ck.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot load checkpoint"):
        run_training(tmp_path, epochs=2, resume=True)


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_atomic({"format": 1, "x": torch.ones(2)}, path)
    with pytest.raises(Exception):  # noqa: B017 - any pickling error will do
        save_atomic({"format": 1, "x": lambda: None}, path)
    assert torch.equal(torch.load(path, weights_only=True)["x"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_ctrl_c_while_writing_a_checkpoint_stays_a_keyboard_interrupt(tmp_path, monkeypatch):
    """Ctrl-C arriving during the file write (EINTR) surfaces as KeyboardInterrupt, so fit and
    the CLI treat it as an interruption; the previous checkpoint stays whole, no temp file."""
    import optimlab.atomic as atomic

    path = tmp_path / "ck.pt"
    save_atomic({"format": 1, "x": torch.zeros(3)}, path)
    before = path.read_bytes()
    real_fdopen = atomic.os.fdopen

    class Interrupted:  # the signal lands once the first 64 bytes are written
        def __init__(self, f):
            self.f, self.written = f, 0

        def write(self, data):
            if self.written + len(data) > 64:
                raise KeyboardInterrupt
            self.written += len(data)
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: Interrupted(real_fdopen(fd, mode)))
    with pytest.raises(KeyboardInterrupt):
        save_atomic({"format": 1, "x": torch.ones(100_000)}, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]


def test_resume_removes_stale_temporaries_a_kill_left(tmp_path):
    run_training(tmp_path, epochs=2)
    stale = tmp_path / ".checkpoint.pt.k1ll3d.tmp"
    stale.write_bytes(b"half a checkpoint")
    other = tmp_path / "notes.tmp"  # not ours: kept
    other.write_text("x")
    run_training(tmp_path, epochs=3, resume=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "notes.tmp"]


def test_mismatch_message_is_short_and_names_no_python_argument(tmp_path):
    run_training(tmp_path, epochs=1)
    with pytest.raises(CheckpointError) as err:
        run_training(tmp_path, epochs=2, resume=True, config={"experiment": "x" * 5000})
    msg = str(err.value)
    assert "another configuration" in msg and "resume=False" not in msg
    assert len(msg) < 400 and "\n" not in msg


def test_corrupt_checkpoint_message_does_not_advise_unsafe_loading(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"format": 1, "model": _Payload(marker)}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError) as err:
        run_training(tmp_path, epochs=1, resume=True)
    msg = str(err.value)
    assert "weights_only" not in msg and "can still be loaded" not in msg and "\x1b" not in msg
