"""Muon against ``torch.optim.Muon``, bit for bit, on 2-D parameters only (torch refuses others).

torch's own sample inputs (every ``adjust_lr_fn``, alternative coefficients and step counts, a
tensor lr) plus Nesterov off, over 200 steps in float32 and float64 with two param groups: a
wide, a tall, a transposed and a strided matrix, one whose grad is always None and one with
zero gradients. Errors are torch's own error inputs, with torch's type and message.
"""

from __future__ import annotations

import copy
import inspect

import pytest
import torch
from optim_cases import _slug, make_grads, set_grads
from reference_pairs import diff_state_dicts, train_pair
from test_optim_api import _raise_from
from torch.testing._internal import common_optimizers as co

import optimlab.optim as oo


def muon_params(dtype: torch.dtype, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, dtype=dtype, generator=gen)

    tensors = [randn(4, 5), randn(7, 3), randn(5, 4).t(), randn(6, 8)[:, ::2], randn(3, 3),
               randn(2, 3)]
    return [t.requires_grad_() for t in tensors]


def _groups(params, kwargs):
    lr = float(kwargs.get("lr", 1e-3))
    return [{"params": params[:3]}, {"params": params[3:], "lr": 0.5 * lr}]


def _pair(kwargs, dtype):
    ours_p, theirs_p = muon_params(dtype), muon_params(dtype)
    ours = oo.Muon(_groups(ours_p, kwargs), **kwargs)
    theirs = torch.optim.Muon(_groups(theirs_p, kwargs), **kwargs)
    return ours, ours_p, theirs, theirs_p


def _inputs():
    out = [pytest.param(i.kwargs, id=_slug(i.desc)) for i in co.optim_inputs_func_muon("cpu")]
    out.append(pytest.param({"nesterov": False, "momentum": 0.9}, id="nesterov-off"))
    out.append(pytest.param({"adjust_lr_fn": "original", "eps": 1e-3}, id="original-eps"))
    return out


@pytest.mark.slow  # bfloat16 Newton-Schulz on CPU: ~1 s per 200-step case
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("kwargs", _inputs())
def test_bit_identical_to_torch(kwargs, dtype):
    ours, ours_p, theirs, theirs_p = _pair(kwargs, dtype)
    gen = torch.Generator().manual_seed(1)
    assert train_pair(ours, ours_p, theirs, theirs_p, 200, gen) is None
    assert diff_state_dicts(ours.state_dict(), theirs.state_dict()) is None


@pytest.mark.parametrize("direction", ["torch-to-ours", "ours-to-torch"])
def test_state_dict_crosses_both_ways(direction):
    kwargs = {"lr": 0.02}
    ours, ours_p, theirs, theirs_p = _pair(kwargs, torch.float32)
    src, src_p, dst, dst_p = (theirs, theirs_p, ours, ours_p) if direction == "torch-to-ours" \
        else (ours, ours_p, theirs, theirs_p)
    gen = torch.Generator().manual_seed(2)
    for _ in range(5):
        set_grads(src_p, make_grads(src_p, gen))  # param 3: None, 4: zeros
        src.step()
    with torch.no_grad():
        for a, b in zip(dst_p, src_p, strict=True):
            a.copy_(b)
    dst.load_state_dict(copy.deepcopy(src.state_dict()))
    assert train_pair(ours, ours_p, theirs, theirs_p, 20, gen) is None


def test_signature_and_defaults_match_torch():
    def shape(cls):
        return [(p.name, p.kind, p.default) for p in inspect.signature(cls).parameters.values()]

    assert shape(oo.Muon) == shape(torch.optim.Muon)
    ours = oo.Muon(muon_params(torch.float32)[:1]).defaults
    assert ours == torch.optim.Muon(muon_params(torch.float32)[:1]).defaults


def _error_inputs():
    return [pytest.param(e, id=_slug(e.optimizer_error_input.desc))
            for e in co.optim_error_inputs_func_muon("cpu", torch.float32)]


@pytest.mark.parametrize("error_input", _error_inputs())
def test_torch_error_inputs_raise_like_torch(error_input):
    assert str(_raise_from(oo.Muon, error_input)) == str(_raise_from(torch.optim.Muon, error_input))


@pytest.mark.parametrize("shape", [(3,), (2, 3, 4), ()], ids=str)
def test_non_2d_params_are_refused_like_torch(shape):
    with pytest.raises(ValueError, match="Muon only supports 2D parameters"):
        oo.Muon([torch.zeros(shape, requires_grad=True)])
