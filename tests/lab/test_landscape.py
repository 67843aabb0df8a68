"""Landscape runs against torch.optim run by hand, and the test functions' documented facts."""

from __future__ import annotations

import math

import pytest
import torch

from optimlab.errors import UserError
from optimlab.lab.landscape import FUNCTIONS, LANDSCAPE_SUITE, get_function, parse_point, run_path
from optimlab.lab.landscape.run import check_settings, plan_specs
from optimlab.lab.spec import parse_spec

# (our spec, torch.optim class, its kwargs): ours are bit-identical to torch's for-loop path
PARITY = [
    ("sgd:lr=1e-3", torch.optim.SGD, {"lr": 1e-3}),
    ("sgd:lr=1e-3,momentum=0.9", torch.optim.SGD, {"lr": 1e-3, "momentum": 0.9}),
    ("sgd:lr=1e-3,momentum=0.99,nesterov=true", torch.optim.SGD,
     {"lr": 1e-3, "momentum": 0.99, "nesterov": True}),
    ("sgd:lr=1e-3,momentum=0.99,weight_decay=1e-3", torch.optim.SGD,
     {"lr": 1e-3, "momentum": 0.99, "weight_decay": 1e-3}),
    ("adagrad:lr=0.5", torch.optim.Adagrad, {"lr": 0.5}),
    ("rmsprop:lr=0.01", torch.optim.RMSprop, {"lr": 0.01}),
    ("rmsprop:lr=0.01,momentum=0.5,centered=true", torch.optim.RMSprop,
     {"lr": 0.01, "momentum": 0.5, "centered": True}),
    ("adam:lr=0.05", torch.optim.Adam, {"lr": 0.05}),
    ("adam:lr=0.05,amsgrad=true", torch.optim.Adam, {"lr": 0.05, "amsgrad": True}),
    ("adamw:lr=0.05,weight_decay=0.1", torch.optim.AdamW, {"lr": 0.05, "weight_decay": 0.1}),
    ("adadelta:lr=1.0", torch.optim.Adadelta, {"lr": 1.0}),
]


def by_hand(fn, cls, kwargs, start, steps, noise=0.0, seed=0):
    """The plain loop: f, backward, (noise), step — with torch.optim's for-loop implementation."""
    p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    opt = cls([p], foreach=False, **kwargs)
    gen = torch.Generator().manual_seed(seed)
    path = [tuple(start)]
    for _ in range(steps):
        opt.zero_grad()
        fn(p[0], p[1]).backward()
        if noise:
            p.grad = p.grad + noise * torch.randn(2, generator=gen, dtype=torch.float64)
        opt.step()
        path.append((float(p[0].detach()), float(p[1].detach())))
    return path


@pytest.mark.parametrize("spec,cls,kwargs", PARITY, ids=[p[0] for p in PARITY])
@pytest.mark.parametrize("function", ["rosenbrock", "himmelblau"])
def test_paths_bitwise_equal_to_torch_by_hand(spec, cls, kwargs, function):
    fn = FUNCTIONS[function]
    steps = 40
    ours = run_path(fn, parse_spec(spec), start=fn.start, steps=steps)
    assert ours.status == "finished"
    assert ours.path == by_hand(fn, cls, kwargs, fn.start, steps)
    assert len(ours.path) == steps + 1 and ours.path[0] == fn.start


@pytest.mark.parametrize("spec,cls,kwargs", PARITY[1::3], ids=[p[0] for p in PARITY[1::3]])
def test_noisy_paths_equal_torch_by_hand_with_the_same_noise(spec, cls, kwargs):
    fn = FUNCTIONS["quadratic"]
    ours = run_path(fn, parse_spec(spec), start=fn.start, steps=30, noise=0.5, seed=3)
    assert ours.path == by_hand(fn, cls, kwargs, fn.start, 30, noise=0.5, seed=3)
    clean = run_path(fn, parse_spec(spec), start=fn.start, steps=30)
    assert ours.path != clean.path  # the noise is really applied


def test_torch_spec_runs_torch_class():
    fn = FUNCTIONS["beale"]
    ours = run_path(fn, parse_spec("torch.Adam:lr=0.05"), start=fn.start, steps=25)
    assert ours.path == by_hand(fn, torch.optim.Adam, {"lr": 0.05}, fn.start, 25)
    assert ours.name == "torch.Adam(lr=0.05)"


def test_loss_is_f_at_each_point():
    fn = FUNCTIONS["rastrigin"]
    run = run_path(fn, parse_spec("adam:lr=0.1"), start=fn.start, steps=20)
    expected = [float(fn(torch.tensor(x, dtype=torch.float64), torch.tensor(y,
                dtype=torch.float64))) for x, y in run.path]
    assert run.loss == expected


def test_leaving_the_domain_is_cut_and_marked_diverged():
    fn = FUNCTIONS["rosenbrock"]
    run = run_path(fn, parse_spec("sgd:lr=0.01"), start=fn.start, steps=100)
    assert run.status == "diverged"
    assert 1 < len(run.path) < 101 and len(run.loss) == len(run.path)
    assert all(fn.contains(x, y) for x, y in run.path)
    # one more step of the same optimizer leaves the domain: the cut is exactly there
    full = by_hand(fn, torch.optim.SGD, {"lr": 0.01}, fn.start, len(run.path))
    assert full[: len(run.path)] == run.path and not fn.contains(*full[len(run.path)])


def test_non_finite_is_diverged():
    fn = FUNCTIONS["quadratic"]
    run = run_path(fn, parse_spec("sgd:lr=1e300"), start=fn.start, steps=5)
    assert run.status == "diverged" and run.path == [fn.start]


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_documented_minima_are_stationary_zeros_inside_the_domain(name):
    fn = FUNCTIONS[name]
    assert fn.contains(*fn.start)
    for mx, my in fn.minima:
        p = torch.tensor([mx, my], dtype=torch.float64, requires_grad=True)
        value = fn(p[0], p[1])
        value.backward()
        assert fn.contains(mx, my)
        assert abs(float(value.detach())) < 1e-9
        assert float(p.grad.norm()) < 1e-4  # minima printed to 6 decimals
    # the minimum is the smallest value on a grid over the domain
    (x0, x1), (y0, y1) = fn.domain
    gx, gy = torch.meshgrid(torch.linspace(x0, x1, 201, dtype=torch.float64),
                            torch.linspace(y0, y1, 201, dtype=torch.float64), indexing="xy")
    if fn.minima:
        assert float(fn(gx, gy).min()) >= -1e-12
    else:  # the saddle: stationary at the origin, unbounded below along y
        p = torch.zeros(2, dtype=torch.float64, requires_grad=True)
        fn(p[0], p[1]).backward()
        assert float(p.grad.norm()) == 0.0 and float(fn(gx, gy).min()) < 0


def test_rosenbrock_formula_with_a_1_b_100():
    fn = FUNCTIONS["rosenbrock"]
    x, y = torch.tensor(-1.5, dtype=torch.float64), torch.tensor(2.0, dtype=torch.float64)
    assert float(fn(x, y)) == (1 + 1.5) ** 2 + 100 * (2 - 2.25) ** 2


def test_default_suite_makes_progress_on_rosenbrock():
    """The reason LANDSCAPE_SUITE changes learning rates: every optimizer visibly moves."""
    fn = FUNCTIONS["rosenbrock"]
    for spec in LANDSCAPE_SUITE:
        run = run_path(fn, parse_spec(spec), start=(-1.5, 2.0), steps=500)
        assert math.dist(run.path[0], run.path[-1]) > 0.5, spec


def test_user_mistakes():
    with pytest.raises(UserError, match="valid: rosenbrock"):
        get_function("nosuch")
    assert get_function("Rosenbrock") is FUNCTIONS["rosenbrock"]
    fn = FUNCTIONS["rosenbrock"]
    with pytest.raises(UserError, match="outside rosenbrock's domain"):
        check_settings(fn, (3.0, 0.0), 10, 0.0)
    with pytest.raises(UserError, match="steps"):
        check_settings(fn, fn.start, 0, 0.0)
    with pytest.raises(UserError, match="noise"):
        check_settings(fn, fn.start, 10, -1.0)
    with pytest.raises(UserError, match="expected X,Y"):
        parse_point("1;2")
    with pytest.raises(UserError, match="finite"):
        parse_point("inf,2")
    assert parse_point(" -1.5, 2") == (-1.5, 2.0)
    with pytest.raises(UserError, match="unknown optimizer"):
        plan_specs(["nosuch"])
    with pytest.raises(UserError, match="lr"):
        plan_specs(["sgd:lr=-1"])
    assert [n for _, n in plan_specs(["adam", "adam"])] == ["adam", "adam#2"]


def test_schedule_free_runs_in_train_mode_like_the_reference_package():
    import schedulefree  # the reference package (test extra)
    fn = FUNCTIONS["rosenbrock"]
    ours = run_path(fn, parse_spec("adamw_schedulefree:lr=0.05"), start=fn.start, steps=30)
    p = torch.tensor(fn.start, dtype=torch.float64, requires_grad=True)
    opt = schedulefree.AdamWScheduleFree([p], lr=0.05, foreach=False)
    opt.train()
    path = [fn.start]
    for _ in range(30):
        opt.zero_grad()
        fn(*p.unbind()).backward()
        opt.step()
        path.append(tuple(p.detach().tolist()))
    assert ours.path == path
