"""Recipes and chains: golden lr lists computed from each recipe's formula, and clear errors."""

from __future__ import annotations

import math

import pytest
import torch

from optimlab.engine.recipes import (
    RunLength,
    build_scheduler,
    parse_scheduler_spec,
    schedule_lrs,
)
from optimlab.engine.schedules import Schedule, create_scheduler, parse_schedule
from optimlab.errors import UserError

LR = 0.5


def _warm(t: int, w: int) -> float:
    return LR * (t + 1) / (w + 1)  # LinearLR from 1/(W+1): never a step at lr 0


def _cos(t: int, n: int, eta_min: float) -> float:
    return eta_min + 0.5 * (LR - eta_min) * (1 + math.cos(math.pi * t / n))


def _line(t: int, n: int, eta_min: float) -> float:
    return LR + (eta_min - LR) * t / n


def warmup_cosine(w: int, total: int, eta_min: float) -> list[float]:
    return [_warm(t, w) if t < w else _cos(t - w, total - w, eta_min) for t in range(total)]


def warmup_linear(w: int, total: int, eta_min: float) -> list[float]:
    return [_warm(t, w) if t < w else _line(t - w, total - w, eta_min) for t in range(total)]


def wsd(w: int, d: int, total: int, eta_min: float, shape: str) -> list[float]:
    decay = _cos if shape == "cosine" else _line
    start = total - d
    return [_warm(t, w) if t < w else LR if t < start else decay(t - start, d, eta_min)
            for t in range(total)]


GOLDEN = [
    ("warmup_cosine:warmup=3,min_lr=0.01", 12, warmup_cosine(3, 12, 0.01)),
    ("warmup_cosine:warmup=0", 6, warmup_cosine(0, 6, 0.0)),
    ("warmup_linear:warmup=2,min_lr=0.05", 9, warmup_linear(2, 9, 0.05)),
    ("warmup_linear:warmup=4", 5, warmup_linear(4, 5, 0.0)),
    ("wsd:warmup=2", 20, wsd(2, 4, 20, 0.0, "linear")),  # decay 0.2 of 20 = 4 steps
    ("wsd:warmup=1,decay=0.3,min_lr=0.1,shape=cosine", 10, wsd(1, 3, 10, 0.1, "cosine")),
    ("wsd:warmup=0,decay=1.0", 4, wsd(0, 4, 4, 0.0, "linear")),  # no stable phase at all
    ("linearlr:start_factor=0.2,total_iters=4 then cosineannealinglr:eta_min=0.01", 10,
     [LR * (0.2 + 0.8 * t / 4) for t in range(4)] + [_cos(t, 6, 0.01) for t in range(6)]),
    ("constantlr:factor=0.5,total_iters=2 then linearlr:start_factor=0.5,total_iters=2 then "
     "exponentiallr:gamma=0.5", 8,  # three parts: milestones at 2 and 4
     [LR * f for f in (0.5, 0.5, 0.5, 0.75, 1.0, 0.5, 0.25, 0.125)]),
    ("cosine", 5, [_cos(t, 5, 0.0) for t in range(5)]),  # T_max filled with the run length
]


@pytest.mark.parametrize("text,total,expected", GOLDEN)
def test_golden_lists(text, total, expected):
    assert schedule_lrs(text, RunLength(total), lr=LR) == pytest.approx(expected, abs=1e-12)


def test_per_step_lengths_count_batches():
    # 3 epochs of 4 batches = 12 scheduler steps; warmup=3 means 3 batches
    steps = schedule_lrs("warmup_cosine:warmup=3", RunLength(3, 4, "step"), lr=LR)
    assert steps == pytest.approx(warmup_cosine(3, 12, 0.0), abs=1e-12)
    epochs = schedule_lrs("warmup_cosine:warmup=1", RunLength(3, 4, "epoch"), lr=LR)
    assert epochs == pytest.approx(warmup_cosine(1, 3, 0.0), abs=1e-12)  # per epoch


def test_onecycle_gets_total_steps_and_max_lr_from_the_run():
    got = schedule_lrs("onecycle", RunLength(2, 5, "step"), lr=LR)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    ref = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=10)
    want = []
    for _ in range(10):
        want.append(opt.param_groups[0]["lr"])
        opt.step()
        ref.step()
    assert got == want


def test_recipes_are_torch_classes_and_resume_exactly():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    sched = build_scheduler("wsd:warmup=2,decay=0.25", opt, RunLength(12))
    assert isinstance(sched, torch.optim.lr_scheduler.SequentialLR)
    for _ in range(5):
        opt.step()
        sched.step()
    saved_opt, saved = opt.state_dict(), sched.state_dict()
    opt2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    sched2 = build_scheduler("wsd:warmup=2,decay=0.25", opt2, RunLength(12))
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved)
    for _ in range(7):
        opt.step()
        sched.step()
        opt2.step()
        sched2.step()
        assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]


ERRORS = [
    ("nosuch:warmup=1", 10, "unknown scheduler 'nosuch'; valid: recipes warmup_cosine"),
    ("warmup_cosine:warmup=10", 10, "warmup=10 (10 epochs) does not fit the run of 10 epochs"),
    ("warmup_cosine:warmup=2,min_lr=0.9", 10, "min_lr=0.9 is above the optimizer's lr=0.5"),
    ("warmup_cosine", 10, "warmup_cosine needs warmup=N"),
    ("warmup_cosine:warmup=1.5", 10, "warmup must be an integer >= 0"),
    ("warmup_linear:warmup=1,eta=3", 10, "unknown argument 'eta' for recipe warmup_linear"),
    ("wsd:warmup=8,decay=0.3", 10, "warmup=8 before decay=0.3 (8 epochs) does not fit"),
    ("wsd:warmup=1,decay=0", 10, "decay is the fraction of the run"),
    ("wsd:warmup=1,shape=step", 10, "shape must be linear or cosine"),
    ("steplr:step_size=2 then cosine", 10, "'steplr' needs a written length"),
    ("linearlr:total_iters=12 then cosine", 10, "does not fit the run of 10 epochs"),
    ("linearlr:total_iters=2 then plateau", 10, "ReduceLROnPlateau cannot be chained"),
    ("warmup_cosine:warmup=2 then cosine", 10, "cannot be chained"),
    ("plateau", 10, "no curve to preview"),
]


@pytest.mark.parametrize("text,total,fragment", ERRORS)
def test_errors_name_the_problem(text, total, fragment):
    with pytest.raises(UserError) as e:
        schedule_lrs(text, RunLength(total), lr=LR)
    assert fragment in str(e.value)


def test_warmup_in_steps_checked_against_steps():
    with pytest.raises(UserError, match=r"warmup=12 \(12 steps\) does not fit the run "
                                        "of 12 steps"):
        schedule_lrs("warmup_linear:warmup=12", RunLength(3, 4, "step"))
    assert len(schedule_lrs("warmup_linear:warmup=11", RunLength(3, 4, "step"))) == 12


def test_parse_keeps_parts_and_text():
    spec = parse_scheduler_spec("LinearLR:total_iters=2  THEN  cosine:eta_min=1e-4")
    assert [p.name for p in spec.parts] == ["LinearLR", "cosine"]
    assert spec.parts[1].hparams == {"eta_min": 1e-4}
    assert spec.name == "LinearLR then CosineAnnealingLR"
    assert parse_scheduler_spec("plateau:patience=3").per_validation
    assert type(parse_scheduler_spec("steplr:step_size=3")) is Schedule  # needs no run length


def test_recipe_names_reach_the_engine_registry():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    schedule = parse_schedule("wsd", {"warmup": 1}, text="wsd:warmup=1")
    assert schedule.name == "wsd" and not schedule.per_validation
    with pytest.raises(UserError, match="takes its length from the run"):
        schedule.build(opt)
    with pytest.raises(UserError, match="unknown argument 'warm' for recipe wsd"):
        parse_schedule("wsd", {"warm": 1})
    with pytest.raises(UserError, match="give T_max="):
        create_scheduler("cosine", opt)


# -- in fit: per-step stepping, history, exact resume ----------------------------------------

@pytest.fixture(scope="module")
def digits():
    from optimlab.data import load_dataset

    return load_dataset("digits", seed=0)


def _fit(data, tmp=None, **kw):
    from optimlab.engine import fit
    from optimlab.models import build_model

    model = build_model("mlp", data.input_shape, data.num_outputs, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    result = fit(model, opt, data, batch_size=256, progress=False, checkpoint_dir=tmp, **kw)
    return model, opt, result


@pytest.mark.parametrize("text", ["warmup_cosine:warmup=7,min_lr=0.01", "onecycle"])
def test_fit_steps_per_batch_as_previewed(digits, text):
    # 1079 training digits in batches of 256: 5 batches an epoch, 15 scheduler steps
    _, opt, result = _fit(digits, epochs=3, scheduler=parse_scheduler_spec(text),
                          schedule_every="step")
    preview = schedule_lrs(text, RunLength(3, 5, "step"), lr=LR)
    assert result.history.lr == preview[::5]  # the lr each epoch starts with
    assert len(set(preview[:5])) == 5  # it does move within the first epoch


def test_fit_per_epoch_is_the_default(digits):
    _, _, result = _fit(digits, epochs=4, scheduler="warmup_linear",
                        scheduler_args={"warmup": 2})
    assert result.history.lr == pytest.approx(warmup_linear(2, 4, 0.0), abs=1e-15)


def test_plateau_stays_per_validation(digits):
    kw = dict(epochs=3, scheduler="plateau", scheduler_args={"patience": 0, "factor": 0.5})
    by_step = _fit(digits, schedule_every="step", **kw)[2].history
    by_epoch = _fit(digits, **kw)[2].history
    assert by_step.lr == by_epoch.lr and by_step.train_loss == by_epoch.train_loss


def test_per_step_resume_is_bitwise_identical(digits, tmp_path):
    kw = dict(epochs=4, scheduler=parse_scheduler_spec("wsd:warmup=6,decay=0.3,shape=cosine"),
              schedule_every="step", checkpoint_every=1)
    whole_model, whole_opt, whole = _fit(digits, tmp_path / "whole", **kw)

    def interrupt(epoch, row):
        if epoch == 3:
            raise KeyboardInterrupt

    _, _, cut = _fit(digits, tmp_path / "cut", on_epoch_end=interrupt, **kw)
    assert cut.status == "interrupted"
    model, opt, resumed = _fit(digits, tmp_path / "cut", resume=True, **kw)
    assert resumed.status == "finished"
    for a, b in zip(whole_model.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert resumed.history.lr == whole.history.lr
    assert resumed.history.train_loss == whole.history.train_loss
    assert opt.param_groups[0]["lr"] == whole_opt.param_groups[0]["lr"]


def test_fit_refuses_bad_schedules_before_training(digits, tmp_path):
    with pytest.raises(UserError, match="schedule_every must be one of epoch, step"):
        _fit(digits, epochs=2, scheduler="steplr", scheduler_args={"step_size": 1},
             schedule_every="batch")
    with pytest.raises(UserError, match=r"warmup=10 \(10 steps\) does not fit the run of 10"):
        _fit(digits, tmp_path, epochs=2, scheduler="warmup_cosine",
             scheduler_args={"warmup": 10}, schedule_every="step")
    assert not any(tmp_path.iterdir())
