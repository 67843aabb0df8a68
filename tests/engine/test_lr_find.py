"""The LR range test against torch-lr-finder 0.2.2 on the same model, batches and settings."""

from __future__ import annotations

import math

import pytest
import torch
from torch_lr_finder import LRFinder, TrainDataLoaderIter

from optimlab.data import load_dataset
from optimlab.engine.evaluate import loss_function
from optimlab.engine.lr_find import (
    cycled_batches,
    exponential_lrs,
    lr_range_test,
    suggestions,
)
from optimlab.errors import UserError
from optimlab.models import build_model


class _OurBatches(TrainDataLoaderIter):
    """torch-lr-finder's iterator interface over our batch order (fit's, for the seed)."""

    def __init__(self, batches):  # no DataLoader: the batches are already on the device
        self.batches = batches

    def __next__(self):
        return next(self.batches)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def _setup(data, optimizer: str = "sgd"):
    model = build_model("mlp", data.input_shape, data.num_outputs, seed=0)
    params = model.parameters()
    opt = (torch.optim.SGD(params, lr=0.1, momentum=0.9) if optimizer == "sgd"
           else torch.optim.Adam(params, lr=1e-3))
    return model, opt


def _reference(data, optimizer, **kw):
    model, opt = _setup(data, optimizer)
    finder = LRFinder(model, opt, loss_function(None, data.task))
    finder.range_test(_OurBatches(cycled_batches(data.train, kw["batch_size"], kw["seed"])),
                      start_lr=kw["min_lr"], end_lr=kw["max_lr"], num_iter=kw["steps"],
                      step_mode="exp", smooth_f=0.05, diverge_th=5)
    lrs, smoothed = finder.history["lr"], finder.history["loss"]
    steepest = None
    if len(lrs) >= 17:  # what plot() needs for a suggestion
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        _, steepest = finder.plot(ax=ax, suggest_lr=True)
        plt.close(fig)
    return lrs, smoothed, steepest


CASES = [
    # (optimizer, min_lr, max_lr, steps, batch size): SGD diverges before the end, Adam too;
    # 30 steps of 64 cross an epoch boundary of the 1079 training digits
    ("sgd", 1e-5, 10.0, 100, 64),
    ("adam", 1e-6, 1.0, 60, 32),
    ("sgd", 1e-4, 1e-2, 30, 64),  # a range too low to diverge: runs all 30 steps
]


@pytest.mark.parametrize("optimizer,min_lr,max_lr,steps,batch_size", CASES)
def test_matches_torch_lr_finder(digits, capsys, optimizer, min_lr, max_lr, steps,
                                 batch_size):
    kw = dict(min_lr=min_lr, max_lr=max_lr, steps=steps, batch_size=batch_size, seed=0)
    ref_lrs, ref_smoothed, ref_steepest = _reference(digits, optimizer, **kw)
    model, opt = _setup(digits, optimizer)
    ours = lr_range_test(model, opt, digits, **kw)
    assert ours.lrs == pytest.approx(ref_lrs, rel=1e-15)
    assert ours.smoothed == ref_smoothed  # same batches, same float64 arithmetic: exact
    assert ours.steepest == ref_steepest
    assert ours.stopped_early == (len(ref_lrs) < steps)
    if optimizer == "sgd" and max_lr == 10.0:
        assert ours.stopped_early, "the test case is meant to diverge"


def test_model_and_optimizer_restored(digits):
    model, opt = _setup(digits, "adam")
    for _ in range(2):  # some optimizer state to restore
        opt.zero_grad()
        loss_function(None, "classification")(model(digits.train.x[:8]),
                                              digits.train.y[:8]).backward()
        opt.step()
    before_model = {k: v.clone() for k, v in model.state_dict().items()}
    before_opt = opt.state_dict()
    before_state = {k: {n: t.clone() for n, t in s.items()} for k, s in before_opt["state"].items()}
    lr_range_test(model, opt, digits, min_lr=1e-4, max_lr=10.0, steps=40)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before_model[k]), k
    after = opt.state_dict()
    assert after["param_groups"][0]["lr"] == 1e-3
    for k, s in after["state"].items():
        for n, t in s.items():
            assert torch.equal(t, before_state[k][n]), (k, n)


def test_lr_sequence_ends_at_max_and_smoothing_formula():
    lrs = exponential_lrs(1e-7, 10.0, 100)
    assert lrs[0] == 1e-7 and lrs[-1] == pytest.approx(10.0, rel=1e-12)
    ratios = [b / a for a, b in zip(lrs, lrs[1:], strict=False)]
    assert max(ratios) == pytest.approx(min(ratios), rel=1e-9)  # evenly spaced in log lr


def test_suggestions_by_hand():
    # 20 points: the window is [10, 15); steepest fall between points 12 and 13, lowest at 14
    smoothed = [5.0] * 10 + [4.0, 3.9, 3.8, 2.0, 1.5] + [9.0] * 5
    lrs = [float(i) for i in range(20)]
    steepest, min_div10 = suggestions(lrs, smoothed)
    assert steepest == 13.0  # numpy.gradient: -0.95 at 12, -1.15 at 13, -0.5 at 14
    assert min_div10 == pytest.approx(1.4)
    assert suggestions(lrs[:16], smoothed[:16]) == (None, None)  # fewer than 17 points


@pytest.mark.parametrize("kw,fragment", [
    (dict(steps=0), "--steps must be an integer >= 2"),
    (dict(min_lr=1.0, max_lr=1.0), "--min-lr must be below --max-lr"),
    (dict(min_lr=0.0), "--min-lr must be a number > 0"),
])
def test_bad_ranges(digits, kw, fragment):
    model, opt = _setup(digits)
    with pytest.raises(UserError, match=fragment):
        lr_range_test(model, opt, digits, **kw)


def test_nonfinite_loss_stops(digits):
    model, opt = _setup(digits)
    result = lr_range_test(model, opt, digits, min_lr=1e3, max_lr=1e9, steps=50,
                           diverge_th=1e30)
    assert result.stopped_early and not math.isfinite(result.smoothed[-1])


@pytest.mark.parametrize("spec", ["torch.LBFGS:max_iter=2", "adamw_schedulefree"])
def test_closure_and_mode_optimizers_run_and_are_restored(digits, spec):
    from optimlab.lab.spec import build_optimizer, parse_spec

    model = build_model("mlp", digits.input_shape, digits.num_outputs, seed=0)
    opt = build_optimizer(parse_spec(spec), model.parameters())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = lr_range_test(model, opt, digits, min_lr=1e-4, max_lr=1.0, steps=20)
    assert len(result.lrs) >= 2 and all(math.isfinite(x) for x in result.losses[:2])
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
