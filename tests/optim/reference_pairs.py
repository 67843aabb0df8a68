"""Side-by-side training against a third-party reference (lion-pytorch, schedulefree, …).

Like ``optim_cases.step_both``, but the reference may modify its own gradients (schedulefree's
for-loop divides ``p.grad`` in place): only ours is held to never touching a gradient. States
are compared whole: every entry of every parameter's state (tensors with ``torch.equal``, dtype
and shape; other values with ``==``) and every param-group entry both sides have.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from optim_cases import make_grads, make_params, set_grads


def params_pair(dtype: torch.dtype, seed: int = 0) -> tuple[list, list]:
    return make_params(dtype, seed), make_params(dtype, seed)


def train_pair(
    ours: Any,
    ours_p: list[torch.Tensor],
    theirs: Any,
    theirs_p: list[torch.Tensor],
    steps: int,
    gen: torch.Generator,
    before_step: Callable[[int], None] | None = None,
) -> str | None:
    """Step both on the same gradients; the first difference in parameters, or None.

    ``before_step(t)`` runs before step ``t`` (e.g. train()/eval() switches on both).
    """
    for t in range(1, steps + 1):
        if before_step is not None:
            before_step(t)
        grads = make_grads(ours_p, gen)
        set_grads(ours_p, grads)
        set_grads(theirs_p, grads)
        ours.step()
        theirs.step()
        for p, g in zip(ours_p, grads, strict=True):
            if g is not None and not torch.equal(p.grad, g):
                return f"step {t}: ours modified a gradient"
        problem = diff_params(ours_p, theirs_p)
        if problem:
            return f"step {t}: {problem}"
    return None


def diff_params(a: list[torch.Tensor], b: list[torch.Tensor]) -> str | None:
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if not torch.equal(x, y):
            return f"param {i} differs (max |Δ| {(x - y).abs().max().item():.3g})"
    return None


def diff_values(x: Any, y: Any, where: str) -> str | None:
    if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
        if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
            return f"{where}: {type(x).__name__} vs {type(y).__name__}"
        if x.dtype != y.dtype or x.shape != y.shape or not torch.equal(x, y):
            return f"{where}: {x.dtype}{tuple(x.shape)} vs {y.dtype}{tuple(y.shape)} or values"
        return None
    if isinstance(x, dict) and isinstance(y, dict):
        if x.keys() != y.keys():
            return f"{where}: keys {sorted(map(str, x))} vs {sorted(map(str, y))}"
        for key in x:
            problem = diff_values(x[key], y[key], f"{where}[{key!r}]")
            if problem:
                return problem
        return None
    return None if x == y else f"{where}: {x!r} vs {y!r}"


def diff_state_dicts(
    ours: dict, theirs: dict, ignore_group_keys: tuple[str, ...] = ()
) -> str | None:
    """The first difference between two ``torch.optim`` state_dicts (group keys both have)."""
    problem = diff_values(ours["state"], theirs["state"], "state")
    if problem:
        return problem
    for i, (a, b) in enumerate(zip(ours["param_groups"], theirs["param_groups"], strict=True)):
        for key in (a.keys() & b.keys()) - set(ignore_group_keys):
            problem = diff_values(a[key], b[key], f"group {i} {key!r}")
            if problem:
                return problem
    return None


def crossing_problem(
    build_ours: Callable[[], tuple[Any, list[torch.Tensor]]],
    build_theirs: Callable[[], tuple[Any, list[torch.Tensor]]],
    direction: str,
    steps: int = 10,
    more: int = 20,
) -> str | None:
    """Train one side ``steps`` steps, load its state_dict (and parameters) into a fresh other
    side, then train both ``more`` steps: the first difference, or None.

    ``direction`` is ``"theirs-to-ours"`` or ``"ours-to-theirs"``.
    """
    ours, ours_p = build_ours()
    theirs, theirs_p = build_theirs()
    src, src_p, dst, dst_p = (
        (theirs, theirs_p, ours, ours_p) if direction == "theirs-to-ours"
        else (ours, ours_p, theirs, theirs_p)
    )
    gen = torch.Generator().manual_seed(7)
    for _ in range(steps):
        set_grads(src_p, make_grads(src_p, gen))
        src.step()
    with torch.no_grad():
        for a, b in zip(dst_p, src_p, strict=True):
            a.copy_(b)
    dst.load_state_dict(copy.deepcopy(src.state_dict()))
    return train_pair(ours, ours_p, theirs, theirs_p, more, gen)
