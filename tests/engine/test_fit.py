"""fit: against a plain reference loop, determinism, divergence, validation cadence,
schedulers, early stopping, interruption; evaluate against sklearn."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.metrics import confusion_matrix
from torch import nn
from torch.nn import functional as F

from optimlab.data import from_tensors, load_dataset
from optimlab.engine import EarlyStopping, evaluate, fit
from optimlab.errors import UserError
from optimlab.models import build_model


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def _setup(data, lr=0.05, name="mlp", opt=torch.optim.SGD, **kw):
    model = build_model(name, data.input_shape, data.num_outputs, seed=0)
    return model, opt(model.parameters(), lr=lr, **kw)


def test_matches_a_plain_training_loop(digits):
    model, opt = _setup(digits, momentum=0.9)
    result = fit(model, opt, digits, epochs=3, batch_size=32, seed=4, clip_grad_norm=1.0,
                 progress=False)
    ref, ref_opt = _setup(digits, momentum=0.9)
    gen = torch.Generator().manual_seed(4)
    x, y = digits.train.x, digits.train.y
    losses = []
    for _ in range(3):
        order, total = torch.randperm(len(x), generator=gen), []
        for i in range(0, len(x), 32):
            idx = order[i:i + 32]
            ref_opt.zero_grad()
            loss = F.cross_entropy(ref(x[idx]), y[idx])
            loss.backward()
            nn.utils.clip_grad_norm_(list(ref.parameters()), 1.0)
            ref_opt.step()
            total.append(loss.detach())
        losses.append(float(torch.stack(total).sum()) / len(total))
    assert result.history.train_loss == pytest.approx(losses, rel=1e-6)
    for a, b in zip(model.parameters(), ref.parameters(), strict=True):
        assert torch.equal(a, b)
    with torch.no_grad():
        out = ref(digits.val.x)
        val_loss = F.cross_entropy(out, digits.val.y).item()
        val_acc = (out.argmax(1) == digits.val.y).double().mean().item()
    assert result.history.val_loss[-1] == pytest.approx(val_loss, rel=1e-6)
    assert result.history.val_accuracy[-1] == pytest.approx(val_acc)
    assert result.status == "finished" and result.epochs_run == 3


def test_same_seed_bitwise_identical_histories(digits):
    runs = []
    for _ in range(2):
        model, opt = _setup(digits, opt=torch.optim.Adam, lr=1e-3)
        h = fit(model, opt, digits, epochs=3, seed=1, progress=False).history.to_dict()
        h.pop("wall_time")
        runs.append(h)
    assert runs[0] == runs[1]


def test_same_batch_order_for_every_optimizer(digits):
    seen = []

    class Recorder(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(64, 10)
            self.batches: list[torch.Tensor] = []

        def forward(self, x):
            if self.training:
                self.batches.append(x.sum((1, 2, 3)))
            return self.lin(x.flatten(1))

    for opt_cls in (torch.optim.SGD, torch.optim.Adagrad):
        model = Recorder()
        fit(model, opt_cls(model.parameters(), lr=0.01), digits, epochs=2, seed=9, progress=False)
        seen.append(torch.cat(model.batches))
    assert torch.equal(seen[0], seen[1])


def test_divergence_keeps_history_and_raises_nothing(digits):
    model, opt = _setup(digits, lr=1e6)
    rows = []
    result = fit(model, opt, digits, epochs=20, progress=False,
                 on_epoch_end=lambda e, row: rows.append((e, row)))
    assert result.status == "diverged" and 1 <= result.epochs_run < 20
    assert not math.isfinite(result.history.train_loss[-1])
    assert all(math.isfinite(v) for v in result.history.train_loss[:-1])
    assert [e for e, _ in rows] == result.history.epoch == list(range(1, result.epochs_run + 1))


def test_val_every_and_plateau_steps_only_on_validation_epochs(digits):
    model = build_model("linear", digits.input_shape, 10)
    idle = nn.Parameter(torch.zeros(1))  # the optimizer moves nothing: the val loss is constant
    opt = torch.optim.SGD([idle], lr=0.1)
    result = fit(model, opt, digits, epochs=5, val_every=2, scheduler="plateau",
                 scheduler_args={"patience": 0, "factor": 0.5}, progress=False)
    h = result.history
    assert [v is None for v in h.val_loss] == [True, False, True, False, True]
    assert h.val_accuracy[0] is None and h.val_accuracy[1] is not None
    assert h.lr == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.05])


def test_step_scheduler_through_fit(digits):
    model, opt = _setup(digits, lr=1.0)
    result = fit(model, opt, digits, epochs=4, scheduler="StepLR",
                 scheduler_args={"step_size": 1, "gamma": 0.5}, progress=False)
    assert result.history.lr == [1.0, 0.5, 0.25, 0.125]


def test_early_stopping_in_fit_restores_best(digits):
    model = build_model("mlp", digits.input_shape, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # nothing changes: check 1 is the best
    es = EarlyStopping(patience=2)
    result = fit(model, opt, digits, epochs=10, early_stopping=es, progress=False)
    assert result.status == "early_stopped" and result.epochs_run == 3
    assert es.best_check == 1 and es.best_state is not None


def test_keyboard_interrupt_gives_interrupted(digits, tmp_path):
    model, opt = _setup(digits)

    def interrupt(epoch, row):
        if epoch == 2:
            raise KeyboardInterrupt

    result = fit(model, opt, digits, epochs=5, on_epoch_end=interrupt, progress=False,
                 checkpoint_dir=tmp_path)
    assert result.status == "interrupted" and result.epochs_run == 2
    stored = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert stored["epoch"] == 1 and stored["status"] == "interrupted"


def test_regression_on_the_line():
    data = load_dataset("line", seed=0)
    model = build_model("linear", data.input_shape, 1, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    result = fit(model, opt, data, epochs=20, batch_size=1, progress=False)
    assert result.history.val_accuracy == [None] * 20
    lin = model[1]
    assert lin.weight.item() == pytest.approx(-5, abs=0.2)
    assert lin.bias.item() == pytest.approx(1, abs=0.3)
    ev = evaluate(model, data.test, task="regression")
    assert ev.accuracy is None and ev.confusion_matrix is None
    assert ev.loss == pytest.approx(F.mse_loss(model(data.test.x), data.test.y).item(), rel=1e-5)


def test_evaluate_against_sklearn(digits):
    model = build_model("mlp", digits.input_shape, 10, seed=2)
    ev = evaluate(model, digits.test, task="classification", batch_size=100)
    with torch.no_grad():
        out = model(digits.test.x)
    pred = out.argmax(1)
    assert ev.confusion_matrix == confusion_matrix(digits.test.y, pred, labels=range(10)).tolist()
    assert ev.accuracy == pytest.approx((pred == digits.test.y).double().mean().item())
    assert ev.loss == pytest.approx(F.cross_entropy(out, digits.test.y).item(), rel=1e-5)


@pytest.mark.parametrize("kwargs,match", [({"epochs": -1}, "epochs"),
                                          ({"epochs": 1, "batch_size": 0}, "batch_size"),
                                          ({"epochs": 1, "loss": "hinge"}, "unknown loss"),
                                          ({"epochs": 1, "scheduler": "nope"}, "scheduler"),
                                          ({"epochs": 1, "clip_grad_norm": -1.0},
                                           "clip_grad_norm must be a finite number > 0"),
                                          ({"epochs": 1, "clip_grad_norm": float("nan")},
                                           "clip_grad_norm"),
                                          ({"epochs": 1, "scheduler_args": {"gamma": 0.5}},
                                           "without a scheduler")])
def test_bad_arguments_are_user_errors(kwargs, match):
    data = from_tensors(torch.randn(20, 2), torch.arange(20) % 2)
    model = build_model("linear", data.input_shape, 2)
    with pytest.raises(UserError, match=match):
        fit(model, torch.optim.SGD(model.parameters(), lr=0.1), data, progress=False, **kwargs)


@pytest.mark.slow  # torch.compile takes ~30 s on 2 cores
def test_compiled_step_matches_eager(digits):
    runs = []
    for compile in (False, True):
        model, opt = _setup(digits, name="linear", lr=0.1, momentum=0.9)
        runs.append(fit(model, opt, digits, epochs=2, batch_size=256, seed=2, progress=False,
                        compile=compile).history)
    assert runs[1].train_loss == pytest.approx(runs[0].train_loss, rel=1e-5)
    assert runs[1].val_accuracy == pytest.approx(runs[0].val_accuracy, abs=0.01)


def test_model_on_another_device_is_a_user_error():
    data = from_tensors(torch.randn(20, 2), torch.arange(20) % 2)
    model = build_model("linear", data.input_shape, 2).to(torch.device("meta"))
    with pytest.raises(UserError, match="model.to"):
        fit(model, torch.optim.SGD(model.parameters(), lr=0.1), data, epochs=1, progress=False)


def test_a_schedule_that_fails_later_is_refused_before_training(digits, tmp_path):
    model, opt = _setup(digits, lr=0.1)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(UserError, match="learning rate -0.1 at step 2"):
        fit(model, opt, digits, epochs=5, scheduler="steplr",
            scheduler_args={"step_size": 2, "gamma": -1.0}, progress=False,
            checkpoint_dir=tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), before, strict=True))
    assert opt.param_groups[0]["lr"] == 0.1 and list(tmp_path.iterdir()) == []


def test_a_parsed_schedule_equals_the_name_and_arguments(digits):
    from optimlab.engine import parse_schedule

    runs = []
    for kwargs in ({"scheduler": "steplr", "scheduler_args": {"step_size": 1, "gamma": 0.5}},
                   {"scheduler": parse_schedule("StepLR", {"step_size": 1, "gamma": 0.5})}):
        model, opt = _setup(digits, lr=1.0)
        runs.append(fit(model, opt, digits, epochs=3, progress=False, **kwargs).history.lr)
    assert runs[0] == runs[1] == [1.0, 0.5, 0.25]
