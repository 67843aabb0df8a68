"""Lookahead against ``pytorch_optimizer`` 4.1.0's ``Lookahead``, bit for bit.

Both wrap the same kind of inner optimizer (torch's or ours) over two param groups with
a parameter that never gets a gradient, for 200 steps in float32 and float64, with every
``pullback_momentum`` mode; parameters are compared after every step, the slow weights and
the inner state at the end.
"""

from __future__ import annotations

import copy

import pytest
import pytorch_optimizer
import torch
from optim_cases import make_groups
from reference_pairs import diff_values, params_pair, train_pair

import optimlab.optim as oo

CASES = [
    (torch.optim.SGD, {"lr": 0.05}, {}),
    (torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}, {"k": 3, "alpha": 0.8}),
    (torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}, {"pullback_momentum": "reset"}),
    (torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}, {"pullback_momentum": "pullback"}),
    (torch.optim.Adam, {"lr": 0.01}, {"k": 6, "alpha": 0.3}),
    (oo.Adam, {"lr": 0.01, "amsgrad": True}, {}),
    (oo.SGD, {"lr": 0.05, "momentum": 0.5}, {"pullback_momentum": "pullback", "k": 2}),
    (oo.NAdam, {"lr": 0.01}, {"k": 4}),
]


def _pair(inner, inner_kwargs, kwargs, dtype):
    ours_p, theirs_p = params_pair(dtype)
    ours = oo.Lookahead(inner(make_groups(ours_p, inner_kwargs, inner), **inner_kwargs), **kwargs)
    theirs = pytorch_optimizer.Lookahead(
        inner(make_groups(theirs_p, inner_kwargs, inner), **inner_kwargs), **kwargs
    )
    return ours, ours_p, theirs, theirs_p


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0].__module__}.{c[0].__name__}-{c[2]}")
def test_bit_identical_to_the_reference(case, dtype):
    ours, ours_p, theirs, theirs_p = _pair(*case, dtype)
    gen = torch.Generator().manual_seed(1)
    assert train_pair(ours, ours_p, theirs, theirs_p, 200, gen) is None
    assert diff_values(ours.state_dict(), theirs.state_dict(), "state_dict") is None


def test_by_class_and_registry_name_with_params():
    params, twin = params_pair(torch.float32)
    by_name = oo.Lookahead("sgd", params=params, lr=0.1, k=3)
    by_class = pytorch_optimizer.Lookahead(torch.optim.SGD, params=twin, lr=0.1, k=3)
    gen = torch.Generator().manual_seed(2)
    assert train_pair(by_name, params, by_class, twin, 20, gen) is None


@pytest.mark.parametrize("direction", ["theirs-to-ours", "ours-to-theirs"])
def test_state_dict_crosses_both_ways(direction):
    kwargs = {"lr": 0.05, "momentum": 0.9}
    ours, ours_p, theirs, theirs_p = _pair(torch.optim.SGD, kwargs, {"k": 3}, torch.float32)
    gen = torch.Generator().manual_seed(3)
    assert train_pair(ours, ours_p, theirs, theirs_p, 7, gen) is None
    src = theirs if direction == "theirs-to-ours" else ours
    saved = copy.deepcopy(src.state_dict())
    fresh, fresh_p, other, other_p = _pair(torch.optim.SGD, kwargs, {"k": 3}, torch.float32)
    with torch.no_grad():
        for a, b, c in zip(fresh_p, other_p, ours_p, strict=True):
            a.copy_(c)
            b.copy_(c)
    fresh.load_state_dict(copy.deepcopy(saved))
    other.load_state_dict(copy.deepcopy(saved))
    assert train_pair(fresh, fresh_p, other, other_p, 20, gen) is None


def test_slow_weights_for_evaluation_and_back():
    ours, params, _, _ = _pair(torch.optim.SGD, {"lr": 0.1}, {"k": 4}, torch.float32)
    gen = torch.Generator().manual_seed(4)
    for _ in range(6):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen)
        ours.step()
    fast = [p.detach().clone() for p in params]
    ours.backup_and_load_cache()
    assert all(torch.equal(p, ours.state[p]["slow_params"]) for p in params)
    ours.clear_and_load_backup()
    assert all(torch.equal(p, f) for p, f in zip(params, fast, strict=True))


@pytest.mark.parametrize(
    "kwargs", [{"k": 0}, {"alpha": 1.0}, {"pullback_momentum": "sometimes"}], ids=str
)
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        oo.Lookahead(torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1), **kwargs)
