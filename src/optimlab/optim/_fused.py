"""The ``fused=True`` path: the algorithm's own update rule, compiled, run on flat buffers.

Nothing here re-types an update rule. :func:`fused_step` takes ``optimizer.rule`` (the same
function the eager path loops over) and runs it compiled (:mod:`optimlab.optim._compile`: step
scalars hoisted out of the kernel, a persistent cache, direct kernel calls) on a few tensors
instead of once per parameter:

- **Flat buffers for small parameters.** Parameters of a group are bucketed by (device,
  dtype, step count). Those under :data:`DIRECT_MIN_NUMEL` elements are packed: their values
  move into one flat buffer (``p.data`` becomes a view into it, so nothing is copied back)
  and their state (``exp_avg``, ``step``, …) into one flat buffer per key, with
  ``optimizer.state[p]`` holding views strided like ``p`` (as torch lays state out), so
  ``state_dict()`` still shows one tensor per parameter in torch's format. A step copies the
  gradients into a flat buffer with one ``torch._foreach_copy_`` and runs the compiled rule
  once: 4000 small kernels become one. Rebinding ``p.data`` (``module.to()``…) is detected
  and the buffers are rebuilt.
- **Larger contiguous parameters** are updated where they are, with their own state tensors,
  by one compiled kernel called directly on each of them, so they need no gather.

Complex parameters and sparse gradients go to the eager rule. The code is device-generic (the
flat buffers live on each parameter's device), but it has only been run on CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from ._compile import cache_dir, call_direct, call_rule, compile_count

__all__ = ["DIRECT_MIN_NUMEL", "cache_dir", "compile_count", "fused_step"]

#: contiguous parameters with at least this many elements are updated where they are; smaller
#: ones are packed into a flat buffer. A direct call costs ~10 µs of Python (the kernel called
#: without Dynamo, see _DirectRule), about what gathering a gradient of ~30k floats costs
DIRECT_MIN_NUMEL = 1 << 16


# -- flat buckets -----------------------------------------------------------------------------
def _flat_views(flat: Tensor, like: Sequence[Tensor]) -> list[Tensor]:
    """Views of ``flat``, back to back, shaped and strided like each of ``like``.

    The strides are those ``torch.empty_like`` gives (torch's state layout, e.g. a transposed
    parameter keeps transposed state), so a state_dict also suits torch's own fused kernels.
    """
    views, offset = [], flat.storage_offset()
    for t in like:
        stride = torch.empty_like(t, device="meta").stride()
        views.append(flat.as_strided(t.shape, stride, offset))
        offset += t.numel()
    return views


def _pack(tensors: Sequence[Tensor], like: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
    """A new flat buffer holding ``tensors`` and its views laid out like ``like``."""
    flat = torch.empty(sum(t.numel() for t in like), dtype=like[0].dtype, device=like[0].device)
    views = _flat_views(flat, like)
    torch._foreach_copy_(views, list(tensors))
    torch._dynamo.maybe_mark_dynamic(flat, 0)
    return flat, views


def _flat_1d(t: Tensor) -> Tensor:
    flat = t.detach().view(-1)
    torch._dynamo.maybe_mark_dynamic(flat, 0)
    return flat


@dataclass
class _Packed:
    """Small parameters whose state lives in one flat buffer per key."""

    params: list[Tensor]
    flat_param: Tensor
    param_views: list[Tensor]
    flat_state: list[Tensor | None]  # one per ``optimizer.state_keys``
    flat_grad: Tensor
    grad_views: list[Tensor]

    def load(self) -> None:
        """Gather this step's gradients into the flat buffer (the values already live there)."""
        torch._foreach_copy_(self.grad_views, [p.grad for p in self.params])  # type: ignore[misc]

    def still_aliased(self) -> bool:
        """False once someone rebound ``p.data`` (``module.to()``, weight loading by assignment)."""
        return all(
            p.data_ptr() == v.data_ptr() for p, v in zip(self.params, self.param_views, strict=True)
        )


def _make_packed(optimizer: Any, params: list[Tensor]) -> _Packed:
    """Move the state of ``params`` into flat buffers and point ``optimizer.state`` at views."""
    flat_param, param_views = _pack([p.detach() for p in params], params)
    for p, view in zip(params, param_views, strict=True):
        p.data = view  # the values now live in the flat buffer: no copy in or out per step
    states = [optimizer.state[p] for p in params]
    flat_state: list[Tensor | None] = []
    for key in optimizer.state_keys:
        present = [s.get(key) for s in states]
        if any(t is None for t in present):
            assert all(t is None for t in present), f"state '{key}' on some params only"
            flat_state.append(None)
            continue
        flat, views = _pack(present, params)
        for s, view in zip(states, views, strict=True):
            s[key] = view
        flat_state.append(flat)
    flat_grad = torch.empty_like(flat_param)
    torch._dynamo.maybe_mark_dynamic(flat_grad, 0)
    return _Packed(params, flat_param, param_views, flat_state, flat_grad,
                   _flat_views(flat_grad, params))


@dataclass
class _Bucket:
    """Parameters that share device, dtype and step count."""

    step: float  # the step count shared by the bucket, before this step's increment
    flat_step: Tensor | None  # every ``state[p]['step']`` of the bucket is a view into it
    packed: _Packed | None
    direct: list[Tensor]  # large contiguous parameters, updated in place
    direct_flat: list[Tensor]  # their 1-D views
    direct_state: list[list[Tensor] | None]  # 1-D views of their own state, per key
    held: list[tuple[Tensor, str, Tensor | None]] | None = None  # held_state, until it changes

    def held_state(self, keys: Sequence[str]) -> list[tuple[Tensor, str, Tensor | None]]:
        """(param, key, tensor) for state the bucket relies on: the first packed parameter's
        and every direct one's. If ``optimizer.state`` no longer holds these, rebuild."""
        if self.held is not None:
            return self.held
        out: list[tuple[Tensor, str, Tensor | None]] = []
        if self.packed is not None:
            p = self.packed.params[0]
            out += [(p, k, t) for k, t in zip(keys, self.packed.flat_state, strict=True)]
        for i, p in enumerate(self.direct):
            for k, s in zip(keys, self.direct_state, strict=True):
                out.append((p, k, None if s is None else s[i]))
        self.held = out
        return out


def _make_bucket(optimizer: Any, params: list[Tensor], step: float) -> _Bucket:
    direct = [p for p in params if p.is_contiguous() and p.numel() >= DIRECT_MIN_NUMEL]
    small = [p for p in params if not (p.is_contiguous() and p.numel() >= DIRECT_MIN_NUMEL)]
    states = [optimizer.state[p] for p in params]
    flat_step = None
    if "step" in states[0]:
        flat_step = torch.stack([s["step"] for s in states])
        for s, view in zip(states, flat_step.unbind(), strict=True):
            s["step"] = view
    direct_state: list[list[Tensor] | None] = []
    for key in optimizer.state_keys:
        held = [optimizer.state[p].get(key) for p in direct]
        direct_state.append(None if any(t is None for t in held) else [_flat_1d(t) for t in held])
    packed = _make_packed(optimizer, small) if small else None
    return _Bucket(step, flat_step, packed, direct, [_flat_1d(p) for p in direct], direct_state)


@dataclass
class _Plan:
    """The buckets of one param group, valid while what they were built from is unchanged."""

    group: dict[str, Any]
    state: Any  # ``optimizer.state`` at build time: load_state_dict replaces it
    params: list[Tensor]
    buckets: list[_Bucket]

    def valid(self, optimizer: Any, group: dict[str, Any], params: list[Tensor]) -> bool:
        if self.group is not group or self.state is not optimizer.state:
            return False
        if any(b.packed is not None and not b.packed.still_aliased() for b in self.buckets):
            return False
        if any(  # a direct parameter rebound (``module.to()``…) must not update the old storage
            p.data_ptr() != f.data_ptr() or p.dtype != f.dtype
            for b in self.buckets for p, f in zip(b.direct, b.direct_flat, strict=True)
        ):
            return False
        if len(params) != len(self.params) or any(
            a is not b for a, b in zip(params, self.params, strict=True)
        ):
            return False
        for b in self.buckets:  # state entries replaced by hand invalidate the plan as well
            for p, key, ours in b.held_state(optimizer.state_keys):
                held = optimizer.state.get(p, {}).get(key)
                if (held is None) != (ours is None) or (
                    held is not None and held.data_ptr() != ours.data_ptr()  # type: ignore[union-attr]
                ):
                    return False
        return True


def _build_plan(optimizer: Any, group: dict[str, Any], params: list[Tensor]) -> _Plan:
    by_key: dict[tuple[Any, ...], list[Tensor]] = {}
    steps: dict[int, float] = {}
    for p in params:
        state = optimizer.state.get(p) or optimizer._init_state(p, group)
        steps[id(p)] = float(state["step"]) if "step" in state else 0.0
        key = (p.device, p.dtype, steps[id(p)], state.get("step", torch.empty(0)).dtype)
        by_key.setdefault(key, []).append(p)
    buckets = [_make_bucket(optimizer, ps, steps[id(ps[0])]) for ps in by_key.values()]
    return _Plan(group, optimizer.state, list(params), buckets)


def _plan(optimizer: Any, group: dict[str, Any], params: list[Tensor]) -> _Plan:
    """The cached plan for ``group``, rebuilt after load_state_dict or a new set of params."""
    plans: dict[int, _Plan] = optimizer.__dict__.setdefault("_optimlab_fused_plans", {})
    plan = plans.get(id(group))
    if plan is None or not plan.valid(optimizer, group, params):
        plan = plans[id(group)] = _build_plan(optimizer, group, params)
        live = {id(g) for g in optimizer.param_groups}
        for gid in [gid for gid in plans if gid not in live]:
            del plans[gid]  # groups dropped by load_state_dict
    return plan


# -- the entry point --------------------------------------------------------------------------
def _as_scalar_tensor(x: Any) -> Any:
    """Floats that change between steps enter the graph as 0-dim tensors: no recompiles."""
    if isinstance(x, Tensor):
        return x.detach().to(device="cpu", dtype=torch.float64)
    return torch.tensor(float(x), dtype=torch.float64)


def fused_step(optimizer: Optimizer, group: dict[str, Any], params_with_grad: list[Tensor]) -> None:
    """One optimizer step for ``group`` through the compiled rule.

    Increments ``state[p]['step']`` like torch, keeps ``optimizer.state`` in torch's format
    (per-parameter tensors, here views into flat buffers) and updates the parameters in place.
    Complex parameters and sparse gradients take the eager rule.
    """
    opt: Any = optimizer
    eager = [p for p in params_with_grad if p.is_complex() or p.grad.is_sparse]  # type: ignore[union-attr]
    if eager:
        opt._eager_step(group, eager)
        params_with_grad = [p for p in params_with_grad if not (p.is_complex() or p.grad.is_sparse)]  # type: ignore[union-attr]
    if not params_with_grad:
        return
    kwargs = opt._rule_kwargs(group)
    kwargs["lr"] = _as_scalar_tensor(kwargs["lr"])
    key = opt.state_keys[0]
    for b in _plan(opt, group, params_with_grad).buckets:
        if b.flat_step is not None:
            b.flat_step.add_(1)
            b.step += 1
        step = torch.tensor(b.step, dtype=torch.float64)
        if b.packed is not None:
            pk = b.packed
            pk.load()
            states = [None if t is None else [t] for t in pk.flat_state]
            (made,) = call_rule(opt.rule, [pk.flat_param], [pk.flat_grad], states, step, kwargs)
            if made is not None:  # SGD's momentum buffer, created on the first step
                torch._dynamo.maybe_mark_dynamic(made, 0)
                pk.flat_state[0] = made
                b.held = None
                for p, view in zip(pk.params, _flat_views(made, pk.params), strict=True):
                    opt.state[p][key] = view
        if b.direct:
            grads = [p.grad.reshape(-1) for p in b.direct]  # type: ignore[union-attr]
            made_list = call_direct(opt.rule, b.direct_flat, grads, b.direct_state, step, kwargs)
            if made_list and made_list[0] is not None:
                b.direct_state[0] = [_flat_1d(t) for t in made_list]  # type: ignore[arg-type]
                b.held = None
                for p, t in zip(b.direct, made_list, strict=True):
                    opt.state[p][key] = t.view(p.shape)  # type: ignore[union-attr]
