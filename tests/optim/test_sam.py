"""SAM/ASAM against ``pytorch_optimizer`` 4.1.0's ``SAM``, bit for bit.

A small MLP (two param groups with their own lr; a bias that never gets a gradient) is trained
200 steps in float32 and float64 by both, through ``step(closure)`` and through
``first_step``/``second_step``, wrapping torch's and our optimizers. Parameters are compared
after every step, the state_dicts at the end.
"""

from __future__ import annotations

import copy

import pytest
import pytorch_optimizer
import torch
from reference_pairs import diff_params, diff_state_dicts

import optimlab.optim as oo


def _model(dtype: torch.dtype) -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3), torch.nn.Linear(3, 1)
    ).to(dtype)
    model[3].bias.requires_grad_(False)  # a parameter without gradient: skipped
    return model


def _groups(model, lr):
    return [
        {"params": list(model[0].parameters())},
        {"params": [*model[2].parameters(), *model[3].parameters()], "lr": lr / 2},
    ]


def _closure(model, opt, x, y):
    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        return loss

    return closure


CASES = [
    (torch.optim.SGD, {"lr": 0.1}),
    (torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "rho": 0.1}),
    (torch.optim.Adam, {"lr": 0.01, "adaptive": True, "rho": 2.0}),
    (torch.optim.SGD, {"lr": 0.05, "use_gc": True, "perturb_eps": 1e-3}),
    (torch.optim.AdamW, {"lr": 0.01, "foreach": True, "weight_decay": 0.1}),
]
OURS_FOR = {torch.optim.SGD: oo.SGD, torch.optim.Adam: oo.Adam, torch.optim.AdamW: oo.AdamW}


def _train_both(base, ours_base, kwargs, dtype, how, steps=200):
    kwargs = dict(kwargs)
    lr = kwargs.get("lr")
    models = [_model(dtype), _model(dtype)]
    ours = oo.SAM(_groups(models[0], lr), ours_base, **kwargs)
    theirs = pytorch_optimizer.SAM(_groups(models[1], lr), base, **kwargs)
    gen = torch.Generator().manual_seed(1)
    for t in range(steps):
        x = torch.randn(16, 5, generator=gen, dtype=dtype)
        y = torch.randn(16, 1, generator=gen, dtype=dtype)
        for model, opt in zip(models, (ours, theirs), strict=True):
            closure = _closure(model, opt, x, y)
            closure()  # the first pass, at w
            if how == "closure":
                opt.step(closure)
            else:
                opt.first_step(zero_grad=True)
                closure()
                opt.second_step(zero_grad=True)
        problem = diff_params(list(models[0].parameters()), list(models[1].parameters()))
        if problem:
            return f"step {t}: {problem}"
    return diff_state_dicts(ours.state_dict(), theirs.state_dict())


@pytest.mark.parametrize("how", ["closure", "two-steps"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0].__name__}-{c[1]}")
def test_bit_identical_wrapping_torch_optimizers(case, dtype, how):
    base, kwargs = case
    assert _train_both(base, base, kwargs, dtype, how) is None


@pytest.mark.parametrize("case", CASES[:3], ids=lambda c: f"{c[0].__name__}-{c[1]}")
def test_bit_identical_wrapping_ours(case):
    """Ours wrapping optimlab's SGD/Adam equals the reference wrapping torch's."""
    base, kwargs = case
    assert _train_both(base, OURS_FOR[base], kwargs, torch.float32, "closure") is None
    assert _train_both(base, base.__name__.lower(), kwargs, torch.float64, "closure") is None


def test_state_dict_round_trip_keeps_sharing_with_the_base():
    model = _model(torch.float32)
    opt = oo.SAM(model.parameters(), "sgd", lr=0.1, momentum=0.9)
    x, y = torch.randn(4, 5), torch.randn(4, 1)
    closure = _closure(model, opt, x, y)
    closure()
    opt.step(closure)
    saved = copy.deepcopy(opt.state_dict())
    twin = _model(torch.float32)
    twin.load_state_dict(model.state_dict())
    other = oo.SAM(twin.parameters(), "sgd", lr=0.1, momentum=0.9)
    other.load_state_dict(saved)
    assert other.base_optimizer.param_groups is other.param_groups
    assert other.base_optimizer.state is other.state
    for m, o in ((model, opt), (twin, other)):
        c = _closure(m, o, x, y)
        c()
        o.step(c)
    assert diff_params(list(model.parameters()), list(twin.parameters())) is None


def test_step_without_closure_is_refused():
    opt = oo.SAM([torch.zeros(2, requires_grad=True)], torch.optim.SGD, lr=0.1)
    with pytest.raises(ValueError, match="closure"):
        opt.step()


@pytest.mark.parametrize("kwargs", [{"rho": -0.1}, {"perturb_eps": -1.0}], ids=str)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        oo.SAM([torch.zeros(2, requires_grad=True)], torch.optim.SGD, lr=0.1, **kwargs)


def test_training_loops_see_that_sam_needs_a_closure():
    """The engine's fit loop reads ``requires_closure``: first pass, then step(closure)."""
    from optimlab.engine.step import make_train_step, needs_closure

    assert oo.SAM.requires_closure is True
    models = [_model(torch.float32), _model(torch.float32)]
    ours = oo.SAM(models[0].parameters(), "sgd", lr=0.1)
    theirs = pytorch_optimizer.SAM(models[1].parameters(), torch.optim.SGD, lr=0.1)
    assert needs_closure(ours)
    step = make_train_step(models[0], ours, torch.nn.functional.mse_loss)
    x, y = torch.randn(16, 5), torch.randn(16, 1)
    for _ in range(5):
        step(x, y)
        closure = _closure(models[1], theirs, x, y)
        closure()
        theirs.step(closure)
    assert diff_params(list(models[0].parameters()), list(models[1].parameters())) is None
