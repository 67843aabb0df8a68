"""Prodigy against ``prodigyopt`` 1.1.2, bit for bit: parameters after every step, the whole
state (``step``, ``s``, ``p0``, moments) and the groups' ``d``, ``d_max``, ``d_numerator``,
``d_hat``, ``k`` at the end, 200 steps in float32 and float64 with two param groups."""

from __future__ import annotations

import contextlib
import io

import prodigyopt
import pytest
import torch
from optim_cases import make_groups
from reference_pairs import crossing_problem, diff_state_dicts, params_pair, train_pair

import optimlab.optim as oo

CONFIGS = [
    {},
    {"betas": (0.9, 0.99), "weight_decay": 0.1},
    {"weight_decay": 0.1, "decouple": False},
    {"use_bias_correction": True, "safeguard_warmup": True},
    {"betas": (0.0, 0.999), "weight_decay": 0.05, "decouple": False},
    {"beta3": 0.9, "d0": 1e-4, "d_coef": 2.0, "growth_rate": 1.02, "slice_p": 3, "eps": 1e-6},
]


def _groups(params, kwargs, cls):
    groups = make_groups(params, kwargs, cls)
    if kwargs.get("betas", (0.9,))[0] > 0:
        groups[1]["lr"] = 0.0  # Prodigy allows a second lr only if it is 0
    else:  # with β1 = 0 an lr-0 group still moves, dividing by d·ε: it diverges (both do)
        del groups[1]["lr"]
    return groups


def _built(cls, kwargs, dtype=torch.float32, params=None):
    params = params if params is not None else params_pair(dtype)[0]
    with contextlib.redirect_stdout(io.StringIO()):  # prodigyopt prints about weight decay
        return cls(_groups(params, kwargs, cls), **kwargs), params


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("kwargs", CONFIGS, ids=str)
def test_bit_identical_to_prodigyopt(kwargs, dtype):
    ours, ours_p = _built(oo.Prodigy, kwargs, dtype)
    theirs, theirs_p = _built(prodigyopt.Prodigy, kwargs, dtype)
    gen = torch.Generator().manual_seed(1)
    assert train_pair(ours, ours_p, theirs, theirs_p, 200, gen) is None
    assert diff_state_dicts(ours.state_dict(), theirs.state_dict()) is None
    assert ours.param_groups[0]["d_hat"] != kwargs.get("d0", 1e-6)  # D was estimated


@pytest.mark.parametrize("direction", ["theirs-to-ours", "ours-to-theirs"])
def test_state_dict_crosses_both_ways(direction):
    kwargs = {"weight_decay": 0.1}
    assert crossing_problem(
        lambda: _built(oo.Prodigy, kwargs), lambda: _built(prodigyopt.Prodigy, kwargs), direction
    ) is None


def test_defaults_match_the_reference():
    ours, _ = _built(oo.Prodigy, {})
    theirs, _ = _built(prodigyopt.Prodigy, {})
    assert ours.defaults == theirs.defaults


def test_different_nonzero_group_lrs_are_refused_like_the_reference():
    params, _ = params_pair(torch.float32)
    opt = oo.Prodigy([{"params": params[:2]}, {"params": params[2:], "lr": 0.5}])
    for p in params:
        p.grad = torch.ones_like(p)
    with pytest.raises(RuntimeError, match="different lr values"):
        opt.step()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"d0": 0.0}, ValueError), ({"lr": 0.0}, ValueError), ({"eps": 0.0}, ValueError),
     ({"betas": (1.0, 0.9)}, ValueError), ({"fsdp_in_use": True}, NotImplementedError)],
    ids=str,
)
def test_bad_arguments(kwargs, error):
    with pytest.raises(error):
        oo.Prodigy([torch.zeros(2, requires_grad=True)], **kwargs)
