"""Schedule-Free SGD and AdamW against ``schedulefree`` 1.4.1, bit for bit.

Both sides get the same gradients and the same sequence of ``train()``/``eval()`` switches
(train, a validation pause every 7th step, eval at the end), over 200 steps in float32 and
float64 with two param groups; parameters are compared after every step and the whole
state_dict (per-parameter ``z``/``exp_avg_sq`` and the groups' ``k``, ``weight_sum``,
``lr_max``, ``scheduled_lr``, ``train_mode``) at the end. The reference runs both its
``foreach`` and its for-loop path.
"""

from __future__ import annotations

import pytest
import schedulefree
import torch
from optim_cases import make_groups
from reference_pairs import (
    crossing_problem,
    diff_params,
    diff_state_dicts,
    params_pair,
    train_pair,
)

import optimlab.optim as oo

PAIRS = {
    "sgd_schedulefree": (oo.SGDScheduleFree, schedulefree.SGDScheduleFree),
    "adamw_schedulefree": (oo.AdamWScheduleFree, schedulefree.AdamWScheduleFree),
}
CONFIGS = [
    ("sgd_schedulefree", {"lr": 0.1}),
    ("sgd_schedulefree", {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.1}),
    ("sgd_schedulefree", {"lr": 0.1, "warmup_steps": 20, "r": 0.5, "weight_lr_power": 1.0}),
    ("adamw_schedulefree", {}),
    ("adamw_schedulefree", {"lr": 0.01, "weight_decay": 0.1, "eps": 1e-4}),
    ("adamw_schedulefree", {"betas": (0.5, 0.9), "warmup_steps": 30, "r": 1.0}),
    ("adamw_schedulefree", {"lr": 0.0, "weight_lr_power": 0.0}),
]


def _pair(name, kwargs, dtype, their_foreach):
    ours_cls, theirs_cls = PAIRS[name]
    ours_p, theirs_p = params_pair(dtype)
    ours = ours_cls(make_groups(ours_p, kwargs, ours_cls), **kwargs)
    theirs = theirs_cls(
        make_groups(theirs_p, kwargs, theirs_cls), **kwargs, foreach=their_foreach
    )
    return ours, ours_p, theirs, theirs_p


def _switches(ours, theirs):
    def before_step(t: int) -> None:
        if t % 7 == 0:  # a validation pause: to x and back to y
            for opt in (ours, theirs):
                opt.eval()
        for opt in (ours, theirs):
            opt.train()

    return before_step


@pytest.mark.parametrize("their_foreach", [True, False], ids=["their-foreach", "their-loop"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("case", CONFIGS, ids=lambda c: f"{c[0]}-{c[1]}")
def test_bit_identical_with_the_same_train_eval_switches(case, dtype, their_foreach):
    name, kwargs = case
    ours, ours_p, theirs, theirs_p = _pair(name, kwargs, dtype, their_foreach)
    gen = torch.Generator().manual_seed(1)
    assert train_pair(ours, ours_p, theirs, theirs_p, 200, gen, _switches(ours, theirs)) is None
    ours.eval()
    theirs.eval()
    assert diff_params(ours_p, theirs_p) is None
    problem = diff_state_dicts(ours.state_dict(), theirs.state_dict(), ("foreach",))
    assert problem is None


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_step_outside_train_mode_is_refused(name):
    opt = oo.create(name, [torch.zeros(2, requires_grad=True)])
    with pytest.raises(RuntimeError, match="not in train mode"):
        opt.step()


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_eval_train_round_trip_is_close_not_exact(name):
    """The reference's documented behaviour: x and y are recovered by lerps, with rounding."""
    ours, ours_p, _, _ = _pair(name, {"lr": 0.05}, torch.float32, False)
    ours.train()
    gen = torch.Generator().manual_seed(3)
    for _ in range(10):
        for p in ours_p:
            p.grad = torch.randn(p.shape, generator=gen)
        ours.step()
    before = [p.detach().clone() for p in ours_p]
    ours.eval()
    moved = any(not torch.equal(a, b) for a, b in zip(before, ours_p, strict=True))
    ours.train()
    assert moved
    for a, b in zip(before, ours_p, strict=True):
        torch.testing.assert_close(a, b)


def _built(cls, kwargs):
    params, _ = params_pair(torch.float32)
    opt = cls(make_groups(params, kwargs, cls), **kwargs)
    opt.train()
    return opt, params


@pytest.mark.parametrize("direction", ["theirs-to-ours", "ours-to-theirs"])
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_state_dict_crosses_both_ways(name, direction):
    ours_cls, theirs_cls = PAIRS[name]
    kwargs = {"lr": 0.05, "weight_decay": 0.1, "warmup_steps": 5}
    assert crossing_problem(
        lambda: _built(ours_cls, kwargs), lambda: _built(theirs_cls, kwargs), direction
    ) is None


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_defaults_match_the_reference(name):
    ours_cls, theirs_cls = PAIRS[name]
    ours = ours_cls([torch.zeros(2, requires_grad=True)]).defaults
    theirs = theirs_cls([torch.zeros(2, requires_grad=True)]).defaults
    assert list(ours)[:-1] == list(theirs)
    assert {k: v for k, v in ours.items() if k != "fused"} == theirs
