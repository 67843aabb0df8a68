"""Schedulers by name: golden learning-rate lists and clear errors."""

from __future__ import annotations

import math

import pytest
import torch

from optimlab.engine.schedules import create_scheduler, parse_schedule, scheduler_names
from optimlab.errors import UserError


def _lrs(name: str, epochs: int, **kwargs) -> list[float]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = create_scheduler(name, opt, **kwargs)
    out = []
    for _ in range(epochs):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


_C = 0.5 * math.cos(math.pi / 4)  # cosine annealing: η_t = ½(1 + cos(π t / T_max))
GOLDEN = [
    ("StepLR", {"step_size": 2, "gamma": 0.5}, [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]),
    ("multistep", {"milestones": [1, 4], "gamma": 0.1}, [1.0, 0.1, 0.1, 0.1, 0.01, 0.01]),
    ("exponential", {"gamma": 0.5}, [1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125]),
    ("cosine", {"T_max": 4}, [1.0, 0.5 + _C, 0.5, 0.5 - _C, 0.0, 0.5 - _C]),
    ("linearlr", {"start_factor": 0.5, "total_iters": 2}, [0.5, 0.75, 1.0, 1.0, 1.0, 1.0]),
]


@pytest.mark.parametrize("name,kwargs,expected", GOLDEN)
def test_golden_lists(name, kwargs, expected):
    assert _lrs(name, 6, **kwargs) == pytest.approx(expected, abs=1e-12)


def test_names_case_insensitive_and_aliases():
    names = scheduler_names()
    assert {"steplr", "reducelronplateau", "plateau", "onecyclelr"} <= set(names)
    assert "sequentiallr" not in names and "lrscheduler" not in names
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    plateau = create_scheduler("plateau", opt, factor=0.1, patience=7)
    assert isinstance(plateau, torch.optim.lr_scheduler.ReduceLROnPlateau)
    assert isinstance(create_scheduler("ReduceLROnPlateau", opt),
                      torch.optim.lr_scheduler.ReduceLROnPlateau)


def test_errors_name_the_problem():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    with pytest.raises(UserError, match="unknown scheduler 'warp'; valid: .*steplr"):
        create_scheduler("warp", opt)
    with pytest.raises(UserError, match="unknown argument 'stepsize' for scheduler StepLR"):
        create_scheduler("steplr", opt, stepsize=3)
    with pytest.raises(UserError, match="StepLR.*step_size"):
        create_scheduler("steplr", opt)
    with pytest.raises(UserError, match="ReduceLROnPlateau.*bad argument"):
        create_scheduler("plateau", opt, factor=2.0)


def _opt(lr=1.0, cls=torch.optim.SGD, **kw):
    return cls([torch.zeros(1, requires_grad=True)], lr=lr, **kw)


@pytest.mark.parametrize(
    ("name", "kwargs", "fragment"),
    [
        ("steplr", {"step_size": 0}, "fails at step 1"),  # ZeroDivisionError when it steps
        ("steplr", {"step_size": 2, "gamma": -1.0}, "learning rate -1 at step 2"),
        ("polynomiallr", {"total_iters": 4, "power": -1.0}, "fails at step 4"),
        ("onecyclelr", {"max_lr": 0.1, "total_steps": 3}, "fails at step 4 of 10"),
        ("exponential", {"gamma": 1e300}, "must stay finite"),
    ],
)
def test_rehearsal_refuses_schedules_that_fail_later(name, kwargs, fragment):
    schedule = parse_schedule(name, kwargs)  # nothing wrong until it steps
    opt = _opt()
    with pytest.raises(UserError, match=fragment):
        schedule.check(opt, 10)
    assert opt.param_groups[0]["lr"] == 1.0 and "initial_lr" not in opt.param_groups[0]


@pytest.mark.parametrize(
    ("name", "kwargs", "fragment"),
    [
        ("steplr", {"step_size": "abc"}, "step_size must be an integer"),
        ("steplr", {"step_size": 2.5}, "step_size must be an integer"),
        ("steplr", {"step_size": 1, "gamma": float("nan")}, "gamma must be a finite number"),
        ("plateau", {"mode": "maxx"}, "mode must be one of 'min', 'max'"),
        ("onecyclelr", {"max_lr": 0.1, "three_phase": "yes"}, "three_phase must be true or"),
        ("multistep", {"milestones": "1,2"}, "milestones must be a list"),
    ],
)
def test_values_are_type_checked_before_building(name, kwargs, fragment):
    with pytest.raises(UserError, match=fragment):
        parse_schedule(name, kwargs)


def test_cyclic_lr_needs_an_optimizer_with_momentum():
    schedule = parse_schedule("cycliclr", {"base_lr": 0.1, "max_lr": 1.0})
    schedule.check(_opt(momentum=0.9), 5)
    with pytest.raises(UserError, match="CyclicLR.*momentum"):
        schedule.check(_opt(cls=torch.optim.Adadelta), 5)


def test_long_and_multiline_values_give_one_short_line():
    with pytest.raises(UserError) as err:
        parse_schedule("steplr", {"step_size": "x\n" * 3000})
    assert "\n" not in str(err.value) and len(str(err.value)) < 200
    with pytest.raises(UserError) as err:
        parse_schedule("nosuch\nline" + "y" * 5000)
    assert "\n" not in str(err.value) and len(str(err.value)) < 400
