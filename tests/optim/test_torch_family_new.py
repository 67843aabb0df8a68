"""NAdam, RAdam and Adamax beyond the shared table.

All three are rows of ``optim_cases.ALGOS`` (torch's inputs and error inputs, signatures,
state_dict crossing, ``fused=True``). Here: flag combinations torch's inputs leave out (all
three, 200 steps, float32 and float64) and NAdam's resume behaviour, which follows torch's.
"""

from __future__ import annotations

import copy

import pytest
import torch
from optim_cases import BY_NAME, run_parity

import optimlab.optim as oo

EXTRA = [
    ("nadam", {"maximize": True, "weight_decay": 0.1, "momentum_decay": 0.1}),
    ("nadam", {"lr": torch.tensor(0.01), "decoupled_weight_decay": True, "weight_decay": 0.3}),
    ("nadam", {"betas": (0.5, 0.6), "eps": 1e-3}),
    ("radam", {"maximize": True, "weight_decay": 0.1, "betas": (0.8, 0.9)}),
    ("radam", {"lr": torch.tensor(0.01), "decoupled_weight_decay": True, "weight_decay": 0.3}),
    ("radam", {"betas": (0.9, 0.5)}),  # ρ_t never exceeds 5: the momentum branch throughout
    ("adamax", {"maximize": True, "weight_decay": 0.1, "eps": 1e-3}),
    ("adamax", {"lr": torch.tensor(0.01), "betas": (0.5, 0.6)}),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize(
    "case", EXTRA, ids=[n + "-" + "-".join(f"{k}={v}" for k, v in kw.items()) for n, kw in EXTRA]
)
def test_flag_combinations_bit_identical(case, dtype):
    name, kwargs = case
    assert run_parity(BY_NAME[name], kwargs, dtype, 200) is None


def _resumed_run(cls, dtype):
    """Train ``cls`` 10 steps, load its state_dict into a fresh optimlab NAdam, train both 20
    more; returns the uninterrupted and the resumed parameters after every step."""
    p = [torch.randn(50, dtype=dtype, generator=torch.Generator().manual_seed(0))]
    p[0].requires_grad_()
    q = [p[0].detach().clone().requires_grad_()]
    a = cls(p, weight_decay=0.1) if cls is oo.NAdam else cls(p, weight_decay=0.1, foreach=False)
    gen = torch.Generator().manual_seed(1)
    for _ in range(10):
        p[0].grad = torch.randn(50, generator=gen, dtype=dtype)
        a.step()
    with torch.no_grad():
        q[0].copy_(p[0])
    b = oo.NAdam(q, weight_decay=0.1)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    out = []
    for _ in range(20):
        g = torch.randn(50, generator=gen, dtype=dtype)
        p[0].grad, q[0].grad = g.clone(), g.clone()
        a.step()
        b.step()
        out.append((p[0].detach().clone(), q[0].detach().clone()))
    return out


@pytest.mark.parametrize("source", [torch.optim.NAdam, oo.NAdam], ids=["from-torch", "from-ours"])
def test_nadam_resume_is_exact_in_float32_only_as_torch(source):
    """torch's load_state_dict casts ``mu_product`` to the parameter's dtype; in float64 the
    resumed products are float64 instead of float32, so the run leaves the uninterrupted one
    (torch.optim.NAdam does the same). In float32 nothing changes and the resume is exact."""
    assert all(torch.equal(a, b) for a, b in _resumed_run(source, torch.float32))
    assert not all(torch.equal(a, b) for a, b in _resumed_run(source, torch.float64))


def test_nadam_resumed_in_float64_moves_like_torch_resumed():
    """Loading mirrors torch: a torch state_dict loaded into ours and into torch's NAdam give
    the same (float64-product) continuation."""
    p = [torch.randn(50, dtype=torch.float64, generator=torch.Generator().manual_seed(0))]
    p[0].requires_grad_()
    src = torch.optim.NAdam(p, weight_decay=0.1, foreach=False)
    gen = torch.Generator().manual_seed(1)
    for _ in range(10):
        p[0].grad = torch.randn(50, generator=gen, dtype=torch.float64)
        src.step()
    copies = [[p[0].detach().clone().requires_grad_()] for _ in range(2)]
    opts = [oo.NAdam(copies[0], weight_decay=0.1),
            torch.optim.NAdam(copies[1], weight_decay=0.1, foreach=False)]
    for opt in opts:
        opt.load_state_dict(copy.deepcopy(src.state_dict()))
    for _ in range(20):
        g = torch.randn(50, generator=gen, dtype=torch.float64)
        for params, opt in zip(copies, opts, strict=True):
            params[0].grad = g.clone()
            opt.step()
        assert torch.equal(copies[0][0], copies[1][0])
