"""TensorBoard event files read back with tensorboard's own EventAccumulator."""

from __future__ import annotations

import math

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from optimlab.engine.history import History
from optimlab.engine.tensorboard import TensorBoardLog, run_hparams, summary_metrics

ROWS = [
    {"epoch": 1, "train_loss": 2.0, "val_loss": None, "val_accuracy": None, "lr": 0.1,
     "wall_time": 0.1},
    {"epoch": 2, "train_loss": 1.5, "val_loss": 1.25, "val_accuracy": 0.5, "lr": 0.05,
     "wall_time": 0.2},
    {"epoch": 3, "train_loss": 1.0, "val_loss": 1.5, "val_accuracy": 0.625, "lr": 0.025,
     "wall_time": 0.3},
]


def read(folder) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def scalars(acc: EventAccumulator, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def test_epochs_telemetry_and_hparams_read_back(tmp_path):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=0.9)
    hp = run_hparams(opt, {"batch_size": 64, "seed": 0, "scheduler": None})
    log = TensorBoardLog(tmp_path / "run", hp)
    history = History()
    for row in ROWS:
        history.append(row)
        log.log_epoch(row, {"l2_norm/grad/net.0.weight": row["train_loss"] / 10,
                            "cosine/update_grad/net.0.weight": math.nan})
    log.close(history)
    acc = read(tmp_path / "run")
    assert scalars(acc, "train/loss") == [(1, 2.0), (2, 1.5), (3, 1.0)]
    assert scalars(acc, "val/loss") == [(2, 1.25), (3, 1.5)]
    assert scalars(acc, "val/accuracy") == [(2, 0.5), (3, 0.625)]
    assert scalars(acc, "lr/group0") == [(1, pytest.approx(0.1)), (2, pytest.approx(0.05)),
                                          (3, pytest.approx(0.025))]
    assert [v for _, v in scalars(acc, "l2_norm/grad/net.0.weight")] == pytest.approx(
        [0.2, 0.15, 0.1])
    assert all(math.isnan(v) for _, v in scalars(acc, "cosine/update_grad/net.0.weight"))
    assert scalars(acc, "hparam/best_val_loss") == [(3, 1.25)]
    assert scalars(acc, "hparam/last_val_accuracy") == [(3, 0.625)]
    assert scalars(acc, "hparam/final_train_loss") == [(3, 1.0)]
    # the HParams plugin's session-start record holds the hyperparameters
    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]).session_start_info
    values = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind"))
              for k, v in start.hparams.items()}
    assert values["optimizer"] == "SGD"
    assert values["optimizer.lr"] == pytest.approx(0.1)
    assert values["optimizer.momentum"] == pytest.approx(0.9)
    assert values["batch_size"] == 64 and values["scheduler"] == "None"
    assert not [p for p in (tmp_path / "run").iterdir() if p.is_dir()]  # no sub-folder


def test_summary_metrics_skip_missing_and_non_finite():
    h = History()
    h.append(dict(ROWS[0], train_loss=math.inf))
    assert summary_metrics(h) == {}


def test_fit_writes_its_history_and_telemetry(tmp_path):
    from optimlab.data import load_dataset
    from optimlab.engine import fit
    from optimlab.models import build_model

    data = load_dataset("digits", seed=0)
    model = build_model("linear", data.input_shape, data.num_outputs, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    result = fit(model, opt, data, epochs=2, seed=0, val_every=2, progress=False,
                 telemetry=True, tensorboard=tmp_path / "tb")
    acc = read(tmp_path / "tb")
    h = result.history
    assert scalars(acc, "train/loss") == [(1, pytest.approx(h.train_loss[0])),
                                          (2, pytest.approx(h.train_loss[1]))]
    assert scalars(acc, "val/loss") == [(2, pytest.approx(h.val_loss[1]))]
    assert scalars(acc, "val/accuracy") == [(2, pytest.approx(h.val_accuracy[1]))]
    for tag, values in h.telemetry.items():
        assert [v for _, v in scalars(acc, tag)] == pytest.approx(values), tag
    names = [n for n, _ in model.named_parameters()]
    assert {f"l2_norm/update/{n}" for n in names} <= set(acc.Tags()["scalars"])
    assert scalars(acc, "hparam/final_train_loss") == [(2, pytest.approx(h.train_loss[-1]))]


def test_log_dir_must_be_a_folder(tmp_path):
    from optimlab.engine.tensorboard import check_log_dir
    from optimlab.errors import UserError

    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="exists and is not a folder"):
        check_log_dir(tmp_path / "file" / "tb")
    assert check_log_dir(tmp_path / "new" / "tb") == tmp_path / "new" / "tb"
    assert not (tmp_path / "new").exists()  # checking creates nothing
