"""The new optimizers' parity tests bite: one operation changed must make them fail.

As ``test_optim_mutants.py`` for the six: each mutant rewrites one line of a rule (mostly into
something mathematically equal, rounded differently), installs it, and the family's parity
check against its reference (torch, lion-pytorch, schedulefree, pytorch_optimizer) must then
report a difference within 20 steps — while the unmutated rule passes the same check.
"""

from __future__ import annotations

import pytest
import test_lion
import test_lookahead
import test_muon
import test_prodigy
import test_sam
import test_schedulefree
import torch
from optim_cases import BY_NAME, run_parity
from reference_pairs import diff_state_dicts, diff_values, train_pair
from test_optim_mutants import _mutant

import optimlab.optim as oo
from optimlab.optim import lookahead, prodigy, sam

STEPS = 20


def _torch_family(name, kwargs, dtype):
    return run_parity(BY_NAME[name], kwargs, dtype, STEPS)


def _lion(kwargs, dtype):
    ours, ours_p, theirs, theirs_p = test_lion._pair(kwargs, dtype)
    gen = torch.Generator().manual_seed(1)
    return train_pair(ours, ours_p, theirs, theirs_p, STEPS, gen) or diff_state_dicts(
        ours.state_dict(), theirs.state_dict()
    )


def _schedulefree(name, kwargs, dtype):
    ours, ours_p, theirs, theirs_p = test_schedulefree._pair(name, kwargs, dtype, False)
    gen = torch.Generator().manual_seed(1)
    switches = test_schedulefree._switches(ours, theirs)
    return train_pair(ours, ours_p, theirs, theirs_p, STEPS, gen, switches) or diff_state_dicts(
        ours.state_dict(), theirs.state_dict(), ("foreach",)
    )


def _muon(kwargs, dtype):
    ours, ours_p, theirs, theirs_p = test_muon._pair(kwargs, dtype)
    gen = torch.Generator().manual_seed(1)
    return train_pair(ours, ours_p, theirs, theirs_p, STEPS, gen) or diff_state_dicts(
        ours.state_dict(), theirs.state_dict()
    )


def _sam(kwargs, dtype):
    base = torch.optim.SGD
    return test_sam._train_both(base, base, {"lr": 0.1, **kwargs}, dtype, "closure", STEPS)


def _lookahead(kwargs, dtype):
    inner = {"lr": 0.05, "momentum": 0.9}
    ours, ours_p, theirs, theirs_p = test_lookahead._pair(torch.optim.SGD, inner, kwargs, dtype)
    gen = torch.Generator().manual_seed(1)
    return train_pair(ours, ours_p, theirs, theirs_p, STEPS, gen) or diff_values(
        ours.state_dict(), theirs.state_dict(), "state_dict"
    )


def _prodigy(kwargs, dtype):
    ours, ours_p = test_prodigy._built(oo.Prodigy, kwargs, dtype)
    theirs, theirs_p = test_prodigy._built(test_prodigy.prodigyopt.Prodigy, kwargs, dtype)
    gen = torch.Generator().manual_seed(1)
    return train_pair(ours, ours_p, theirs, theirs_p, STEPS, gen) or diff_state_dicts(
        ours.state_dict(), theirs.state_dict()
    )


def _rule_site(cls):
    return cls, "rule"


# (id, parity(kwargs, dtype), (owner, attribute) holding the function, kwargs, dtype,
#  original line fragment, replacement)
MUTANTS = [
    ("nadam: v̂ rooted before dividing", lambda k, d: _torch_family("nadam", k, d),
     _rule_site(oo.NAdam), {}, torch.float32,
     "denom = v.div(bias_correction2).sqrt()", "denom = v.sqrt().div(bias_correction2**0.5)"),
    ("nadam: m's average by mul/add", lambda k, d: _torch_family("nadam", k, d),
     _rule_site(oo.NAdam), {}, torch.float32,
     "m.lerp_(grad, 1 - beta1)", "m.mul_(beta1).add_(grad, alpha=1 - beta1)"),
    ("radam: the paper's threshold ρ_t > 4", lambda k, d: _torch_family("radam", k, d),
     _rule_site(oo.RAdam), {"betas": (0.9, 0.9)}, torch.float32,
     "elif rho_t > 5.0:", "elif rho_t > 4.0:"),
    ("radam: v's average by lerp", lambda k, d: _torch_family("radam", k, d),
     _rule_site(oo.RAdam), {}, torch.float32,
     "v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)", "v.lerp_(grad * grad, 1 - beta2)"),
    ("adamax: ε outside the max", lambda k, d: _torch_family("adamax", k, d),
     _rule_site(oo.Adamax), {"eps": 1e-3}, torch.float32,
     "torch.maximum(u.mul_(beta2), grad.abs().add_(eps), out=u)",
     "torch.maximum(u.mul_(beta2), grad.abs(), out=u).add_(eps)"),
    ("lion: momentum by lerp", lambda k, d: _lion(k, d), _rule_site(oo.Lion), {},
     torch.float32,
     "exp_avg.mul_(beta2).add_(grad, alpha=1.0 - beta2)", "exp_avg.lerp_(grad, 1.0 - beta2)"),
    ("sgd_schedulefree: y's lerp by mul/add",
     lambda k, d: _schedulefree("sgd_schedulefree", k, d), _rule_site(oo.SGDScheduleFree),
     {"lr": 0.1}, torch.float32,
     "param.lerp_(z, ckp1)", "param.mul_(1 - ckp1).add_(z, alpha=ckp1)"),
    ("adamw_schedulefree: root before the bias correction",
     lambda k, d: _schedulefree("adamw_schedulefree", k, d), _rule_site(oo.AdamWScheduleFree),
     {}, torch.float32,
     "denom = v.div(1 - beta2 ** (k + 1)).sqrt_().add_(eps)",
     "denom = v.sqrt().div_((1 - beta2 ** (k + 1)) ** 0.5).add_(eps)"),
    ("muon: momentum by mul/add", lambda k, d: _muon(k, d), _rule_site(oo.Muon), {},
     torch.float32,
     "buf.lerp_(grad, 1 - momentum)", "buf.mul_(momentum).add_(grad, alpha=1 - momentum)"),
    ("sam: ASAM's w²·g·s grouped as w²·(g·s)", lambda k, d: _sam(k, d),
     (sam, "sam_perturbation"), {"adaptive": True, "rho": 0.5}, torch.float32,
     "return torch.pow(param, 2) * grad * scale.to(param)",
     "return torch.pow(param, 2) * (grad * scale.to(param))"),
    ("sam: the global norm as a norm of norms", lambda k, d: _sam(k, d),
     (sam, "gradient_norm"), {}, torch.float32,
     "torch.stack([n.to(device) for n in norms]).float().square_().sum().sqrt_()",
     "torch.stack([n.to(device) for n in norms]).float().norm()"),
    ("lookahead: slow step by mul/add", lambda k, d: _lookahead(k, d),
     (lookahead, "lookahead_update"), {"alpha": 0.3}, torch.float32,
     "fast.lerp_(slow, 1.0 - alpha)", "fast.mul_(alpha).add_(slow, alpha=1.0 - alpha)"),
    ("prodigy: m's d-weighted average by lerp", lambda k, d: _prodigy(k, d),
     (prodigy, "prodigy_accumulate"), {}, torch.float32,
     "exp_avg.mul_(beta1).add_(grad, alpha=d * (1 - beta1))",
     "exp_avg.lerp_(grad * d, 1 - beta1)"),
    ("prodigy: d·ε added before the root", lambda k, d: _prodigy(k, d),
     (prodigy, "prodigy_update"), {}, torch.float64,
     "denom = exp_avg_sq.sqrt().add_(d * eps)",
     "denom = exp_avg_sq.add((d * eps) ** 2).sqrt_()"),
]


@pytest.mark.parametrize(
    ("parity", "site", "kwargs", "dtype", "original", "replacement"),
    [pytest.param(*m[1:], id=m[0]) for m in MUTANTS],
)
def test_parity_fails_for_a_one_operation_mutant(
    parity, site, kwargs, dtype, original, replacement, monkeypatch
):
    owner, attribute = site
    assert parity(dict(kwargs), dtype) is None  # the original passes
    function = getattr(owner, attribute)
    mutant = _mutant(function, original, replacement)
    monkeypatch.setattr(owner, attribute, staticmethod(mutant) if attribute == "rule" else mutant)
    assert parity(dict(kwargs), dtype) is not None, "parity check missed a changed operation"
