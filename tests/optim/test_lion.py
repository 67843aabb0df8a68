"""Lion against lion-pytorch 0.2.5, bit for bit: parameters after every step, state at the end."""

from __future__ import annotations

import lion_pytorch
import pytest
import torch
from optim_cases import make_groups
from reference_pairs import crossing_problem, diff_state_dicts, params_pair, train_pair

import optimlab.optim as oo

CONFIGS = [
    {},
    {"lr": 3e-3, "weight_decay": 0.1},
    {"lr": 1e-3, "betas": (0.95, 0.98), "weight_decay": 0.5, "decoupled_weight_decay": True},
    {"betas": (0.0, 1.0)},
    {"betas": (1.0, 0.5), "lr": 0.01},
]


def _pair(kwargs, dtype):
    ours_p, theirs_p = params_pair(dtype)
    ours = oo.Lion(make_groups(ours_p, kwargs, oo.Lion), **kwargs)
    theirs = lion_pytorch.Lion(make_groups(theirs_p, kwargs, lion_pytorch.Lion), **kwargs)
    return ours, ours_p, theirs, theirs_p


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("kwargs", CONFIGS, ids=str)
def test_bit_identical_to_lion_pytorch(kwargs, dtype):
    ours, ours_p, theirs, theirs_p = _pair(kwargs, dtype)
    gen = torch.Generator().manual_seed(1)
    assert train_pair(ours, ours_p, theirs, theirs_p, 200, gen) is None
    assert diff_state_dicts(ours.state_dict(), theirs.state_dict()) is None


def _built(cls, kwargs):
    params, _ = params_pair(torch.float32)
    return cls(make_groups(params, kwargs, cls), **kwargs), params


@pytest.mark.parametrize("direction", ["theirs-to-ours", "ours-to-theirs"])
def test_state_dict_crosses_both_ways(direction):
    kwargs = {"lr": 1e-3, "weight_decay": 0.1}
    assert crossing_problem(
        lambda: _built(oo.Lion, kwargs), lambda: _built(lion_pytorch.Lion, kwargs), direction
    ) is None


def test_constructor_keywords_and_defaults_match():
    ours = oo.create("lion", [torch.zeros(2, requires_grad=True)])
    theirs = lion_pytorch.Lion([torch.zeros(2, requires_grad=True)])
    assert {k: v for k, v in ours.defaults.items() if k != "fused"} == theirs.defaults


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"lr": 0.0}, ValueError), ({"betas": (0.9, 1.5)}, ValueError),
     ({"use_triton": True}, NotImplementedError)],
    ids=str,
)
def test_bad_arguments(kwargs, error):
    with pytest.raises(error):
        oo.Lion([torch.zeros(2, requires_grad=True)], **kwargs)
