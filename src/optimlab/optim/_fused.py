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
  once: thousands of tiny kernels become one. Rebinding ``p.data`` (``module.to()``…) is detected
  and the buffers are rebuilt.
- **Larger contiguous parameters** are updated where they are, with their own state tensors,
  by one compiled kernel called directly on each of them (:mod:`optimlab.optim._direct`),
  so they need no gather.

Complex parameters and sparse gradients go to the eager rule. The code is device-generic (the
flat buffers live on each parameter's device), but it has only been run on CPU.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from ._compile import cache_dir, call_rule, compile_count
from ._direct import call_direct

__all__ = ["DIRECT_MIN_NUMEL", "cache_dir", "compile_count", "fused_step"]

#: contiguous parameters with at least this many elements are updated where they are; smaller
#: ones are packed into a flat buffer. A direct call costs ~1.5 µs (inductor's C++ kernel called
#: as is, see _direct.py), about what gathering one small gradient costs; measured on 16M
#: floats, 2 threads: direct beats packing by 6–13% at 4096-element tensors (SGD, Adagrad,
#: Adam), ties at 512–2048, and needs no flat copy of the gradients
DIRECT_MIN_NUMEL = 1 << 12


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

    def watched(self) -> list[Tensor]:
        """The parameters whose ``optimizer.state`` entries the bucket relies on: the first
        packed one (all packed state is views into the same buffers) and every direct one."""
        return ([] if self.packed is None else self.packed.params[:1]) + self.direct


def _in_place(optimizer: Any, p: Tensor) -> bool:
    """Whether ``p`` is updated where it is: large, dense, with dense state of its own dtype
    and device (torch's own layout; anything else is normalised by packing)."""
    state = [optimizer.state[p].get(key) for key in optimizer.state_keys]
    return DIRECT_MIN_NUMEL <= p.numel() < 1 << 31 and p.is_contiguous() and all(
        t is None or (t.is_contiguous() and t.dtype == p.dtype and t.device == p.device)
        for t in state
    )


def _make_bucket(optimizer: Any, params: list[Tensor], step: float) -> _Bucket:
    in_place = [_in_place(optimizer, p) for p in params]
    direct = [p for p, d in zip(params, in_place, strict=True) if d]
    small = [p for p, d in zip(params, in_place, strict=True) if not d]
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
    """The buckets of one param group, valid while what they were built from is unchanged.

    :meth:`valid` runs every step, so it compares lists built once (:meth:`remember`) with
    C-level ``map`` loops: ~0.1 µs per parameter instead of the few µs of a Python loop.
    """

    group: dict[str, Any]
    state: Any  # ``optimizer.state`` at build time: load_state_dict replaces it
    params: list[Tensor]
    buckets: list[_Bucket]
    ptrs: list[int] = field(default_factory=list)  # where each parameter's values live
    watched: list[Tensor] = field(default_factory=list)  # see _Bucket.watched
    dicts: list[dict[str, Any]] = field(default_factory=list)  # their optimizer.state[p]
    keys: list[str] = field(default_factory=list)  # one entry per (watched param, state key)
    key_dicts: list[dict[str, Any]] = field(default_factory=list)  # the dict of each entry
    held: list[Tensor | None] = field(default_factory=list)  # what optimizer.state held then

    def remember(self, optimizer: Any) -> None:
        """Record what :meth:`valid` checks; again whenever the plan puts new state in place."""
        self.ptrs = [p.data_ptr() for p in self.params]
        self.watched = [p for b in self.buckets for p in b.watched()]
        self.dicts = [optimizer.state[p] for p in self.watched]
        keys = optimizer.state_keys
        self.keys = [k for _ in self.watched for k in keys]
        self.key_dicts = [d for d in self.dicts for _ in keys]
        self.held = [d.get(k) for d in self.dicts for k in keys]

    def valid(self, optimizer: Any, group: dict[str, Any], params: list[Tensor]) -> bool:
        if self.group is not group or self.state is not optimizer.state:
            return False  # load_state_dict ran
        if len(params) != len(self.params) or not all(map(operator.is_, params, self.params)):
            return False  # another set of parameters has gradients
        if list(map(Tensor.data_ptr, params)) != self.ptrs:
            return False  # ``p.data`` rebound (``module.to()``…): must not update old storage
        return all(map(operator.is_, map(optimizer.state.get, self.watched), self.dicts)) and all(
            map(operator.is_, map(dict.get, self.key_dicts, self.keys), self.held)
        )  # state entries replaced by hand


def _build_plan(optimizer: Any, group: dict[str, Any], params: list[Tensor]) -> _Plan:
    by_key: dict[tuple[Any, ...], list[Tensor]] = {}
    steps: dict[int, float] = {}
    for p in params:
        state = optimizer.state.get(p) or optimizer._init_state(p, group)
        steps[id(p)] = float(state["step"]) if "step" in state else 0.0
        key = (p.device, p.dtype, steps[id(p)], state.get("step", torch.empty(0)).dtype)
        by_key.setdefault(key, []).append(p)
    buckets = [_make_bucket(optimizer, ps, steps[id(ps[0])]) for ps in by_key.values()]
    plan = _Plan(group, optimizer.state, list(params), buckets)
    plan.remember(optimizer)
    return plan


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


_GRAD_IS_SPARSE = operator.attrgetter("grad.is_sparse")


def _eager_only(p: Tensor) -> bool:
    """Complex parameters and sparse gradients take the eager rule."""
    return p.is_complex() or p.grad.is_sparse  # type: ignore[union-attr]


# -- the entry point --------------------------------------------------------------------------
def _as_float(x: Any) -> Any:
    """A one-element tensor hyperparameter (``weight_decay=torch.tensor(0.1)``, tensor betas)
    as the Python float the compiled rule is specialised on; anything else unchanged."""
    if isinstance(x, Tensor) and x.numel() == 1:
        return x.item()
    if isinstance(x, tuple) and any(isinstance(v, Tensor) for v in x):
        return tuple(_as_float(v) for v in x)
    return x


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
    if any(map(Tensor.is_complex, params_with_grad)) or (  # C-level loops: ~0.1 µs a tensor
        opt.sparse_ok and any(map(_GRAD_IS_SPARSE, params_with_grad))
    ):
        opt._eager_step(group, [p for p in params_with_grad if _eager_only(p)])
        params_with_grad = [p for p in params_with_grad if not _eager_only(p)]
    if not params_with_grad:
        return
    kwargs = {name: _as_float(value) for name, value in opt._rule_kwargs(group).items()}
    kwargs["lr"] = _as_scalar_tensor(kwargs["lr"])
    key = opt.state_keys[0]
    plan = _plan(opt, group, params_with_grad)
    for b in plan.buckets:
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
                plan.remember(opt)
                for p, view in zip(pk.params, _flat_views(made, pk.params), strict=True):
                    opt.state[p][key] = view
        if b.direct:
            grads: list[Tensor] = [p.grad for p in b.direct]  # type: ignore[misc]  # any shape
            made_list = call_direct(opt.rule, b.direct_flat, grads, b.direct_state, step, kwargs)
            if made_list and made_list[0] is not None:
                b.direct_state[0] = [_flat_1d(t) for t in made_list]  # type: ignore[arg-type]
                plan.remember(opt)
                for p, t in zip(b.direct, made_list, strict=True):
                    opt.state[p][key] = t.view(p.shape)  # type: ignore[union-attr]
