"""The parity tests bite: a rule with one operation changed must fail them.

Each mutant rewrites one line of a rule's source, usually into something *mathematically
equal* (a different order or grouping of the same operations), installs it on the class and
checks that :func:`run_parity` now reports a difference. This keeps the proof that the parity
harness detects single-operation changes — not just wrong algebra — inside the suite.
"""

from __future__ import annotations

import inspect
import textwrap

import pytest
import torch
from optim_cases import BY_NAME, run_parity

# (algorithm, config that reaches the line (+ dtype), original line fragment, replacement)
MUTANTS = [
    # SGD: dampen the first momentum step too (the paper's form, not torch's).
    (
        "sgd",
        {"momentum": 0.9, "dampening": 0.5},
        "buf = created = grad.detach().clone()",
        "buf = created = grad.detach().clone().mul_(1 - dampening)",
    ),
    # SGD: Nesterov as μ·buf + g in two roundings instead of one fused add.
    (
        "sgd",
        {"momentum": 0.9, "nesterov": True},
        "grad = grad.add(buf, alpha=momentum)",
        "grad = buf.mul(momentum).add(grad)",
    ),
    # Adagrad: ε inside the square root.
    # (with the default ε=1e-10 the two agree bit for bit in float32: ε is absorbed.)
    ("adagrad", {"eps": 1e-3}, "std = v.sqrt().add_(eps)", "std = v.add(eps).sqrt_()"),
    # Adagrad: decayed lr computed in another (equal) order; the Python-float difference
    # is in the last bits of a double, so it shows in float64 parameters.
    (
        "adagrad",
        {"lr_decay": 0.1, "dtype": torch.float64},
        "clr = lr / (1 + (step - 1) * lr_decay)",
        "clr = lr / (1 + step * lr_decay - lr_decay)",
    ),
    # RMSprop: v = βv + (1-β)g² written as a lerp.
    (
        "rmsprop",
        {},
        "v.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)",
        "v.lerp_(grad * grad, 1 - alpha)",
    ),
    # RMSprop centered: ḡ's moving average by mul/add instead of lerp.
    (
        "rmsprop",
        {"centered": True},
        "g_avg.lerp_(grad, 1 - alpha)",
        "g_avg.mul_(alpha).add_(grad, alpha=1 - alpha)",
    ),
    # Adam: first moment by mul/add instead of lerp.
    (
        "adam",
        {},
        "m.lerp_(grad, 1 - beta1_here)",
        "m.mul_(beta1_here).add_(grad, alpha=1 - beta1_here)",
    ),
    # Adam: bias-correct v before the root (the paper's v̂), ε after.
    (
        "adam",
        {},
        "denom = (v.sqrt() / bias_correction2_sqrt).add_(eps)",
        "denom = (v / bias_correction2).sqrt_().add_(eps)",
    ),
    # AdamW: decay after the update instead of before.
    (
        "adamw",
        {"weight_decay": 0.5},
        "param.mul_(1 - lr * weight_decay)",
        "param.sub_(param * (lr * weight_decay))",
    ),
    # Adadelta: ε outside the roots.
    ("adadelta", {}, "std = v.add(eps).sqrt_()", "std = v.sqrt().add_(eps)"),
    # Adadelta: update scaled in the other order.
    ("adadelta", {}, "delta.div_(std).mul_(grad)", "delta.mul_(grad).div_(std)"),
]


def _mutant(rule, original: str, replacement: str):
    source = textwrap.dedent(inspect.getsource(rule))
    assert source.count(original) == 1, f"mutation site {original!r} not found once in {rule}"
    namespace = dict(inspect.getmodule(rule).__dict__)
    exec(
        compile(source.replace(original, replacement), f"<mutant of {rule.__name__}>", "exec"),
        namespace,
    )
    return namespace[rule.__name__]


@pytest.mark.parametrize(
    ("name", "kwargs", "original", "replacement"),
    MUTANTS,
    ids=[f"{m[0]}: {m[2]} -> {m[3]}" for m in MUTANTS],
)
def test_parity_fails_for_a_one_operation_mutant(name, kwargs, original, replacement, monkeypatch):
    algo = BY_NAME[name]
    kwargs = dict(kwargs)
    dtype = kwargs.pop("dtype", torch.float32)
    assert run_parity(algo, kwargs, dtype, steps=20) is None  # the original passes
    monkeypatch.setattr(
        algo.ours, "rule", staticmethod(_mutant(algo.ours.rule, original, replacement))
    )
    problem = run_parity(algo, kwargs, dtype, steps=20)
    assert problem is not None, "parity harness missed a changed operation"
