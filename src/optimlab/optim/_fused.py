"""The ``fused=True`` path: the algorithm's own update rule, compiled, run on few tensors.

Nothing here re-types a rule or reaches into the optimizer: each step hands :func:`fused_step`
a :class:`RuleContract` built by :class:`~optimlab.optim._base.RuleOptimizer` from its class
table. :mod:`optimlab.optim._compile` compiles the rule (step scalars outside the kernel, so
schedulers never recompile); this module decides what it runs on. Parameters of a group are
bucketed by (device, dtype, step count); in a bucket:

- **Small parameters are packed** (under :data:`PACK_MAX_NUMEL` elements): their values move
  into one flat buffer (``p.data`` becomes a view, so nothing is copied back), their state into
  one flat buffer per key, with ``state[p]`` holding views strided like ``p`` (torch's layout:
  ``state_dict()`` is unchanged). A step copies the gradients in with one
  ``torch._foreach_copy_`` and calls the rule once: thousands of tiny kernels become one.
  Rebinding ``p.data`` (``module.to()``…) is detected and the buffers are rebuilt.
- **Larger contiguous parameters** keep their own state and are never copied: 1-D views of
  :data:`CHUNK` of one size go to one compiled call.
- **0-dim state** of a parameter (NAdam's ``mu_product``) stays a 0-dim tensor per parameter,
  as ``step`` does, and is passed to the rule as it is.

Complex parameters and sparse gradients take the eager rule. The code is device-generic, but
has only been run on CPU.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ._compile import any_size, compile_count, compiled_rule

__all__ = ["CHUNK", "PACK_MAX_NUMEL", "RuleContract", "compile_count", "fused_step"]

#: parameters with fewer elements are packed into flat buffers; larger contiguous ones are
#: passed as they are, :data:`CHUNK` per compiled call. Packing costs a copy of each gradient
#: (~8 bytes moved per fp32 element, ~0.25 ns on this machine's ~30 GB/s); a call costs
#: ~15 µs (Dynamo's guards, AOTAutograd's wrappers), ~3 µs per tensor in a chunk of 8: even
#: near 12k elements. A/B in one process on a loaded 2-core machine (indicative only) had
#: packing ahead up to 100k-element tensors, but there the Python side is inflated; on a quiet
#: run the copy is +28% of Adam's traffic, which the 1.1x target cannot absorb on 16M or 160x100k.
PACK_MAX_NUMEL = 1 << 14

#: larger parameters of one size go to the compiled rule this many per call (one graph for
#: every chunk of this length): the fixed cost of a call is shared, a tensor more in the same
#: call adds ~1-2 µs of guards
CHUNK = 8

Group = dict[str, Any]


@dataclass(frozen=True)
class RuleContract:
    """What the fast path needs from an optimizer, and all it gets.

    :class:`~optimlab.optim._base.RuleOptimizer` builds one from its class table (``rule``,
    ``state_keys``, ``_rule_kwargs``, ``_init_state``) for each fused group step, so an
    optimizer declared in that shape gets ``fused=True`` without knowing this module.
    """

    #: the update rule ``rule(param, grad, *state, step=..., **hyperparams)``
    rule: Callable[..., Tensor | None]
    #: names of the state tensors passed after ``grad`` (absent → ``None``)
    state_keys: tuple[str, ...]
    #: this group's keyword arguments to ``rule``, except ``step``
    hyperparams: Mapping[str, Any]
    #: the optimizer's per-parameter state, kept in torch's format
    state: MutableMapping[Tensor, dict[str, Any]]
    #: creates ``state[p]`` for a parameter of the group (``step`` included) and returns it
    init_state: Callable[[Tensor, Group], dict[str, Any]]
    #: the eager loop, for what the compiled rule does not take (complex, sparse)
    eager_step: Callable[[Group, list[Tensor]], None]
    #: hyperparameters passed as 0-dim float64 tensors (a new value is no recompile); the
    #: others are constants of the graph, a compiled variant per value. Only numbers the rule
    #: uses in arithmetic (no ``if weight_decay != 0``) may be listed.
    tensor_hyperparams: frozenset[str] = frozenset({"lr"})


# -- flat buffers -----------------------------------------------------------------------------
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
    return any_size(flat), views


@dataclass
class _Chunk:
    """What one compiled call updates: 1-D ``flat`` tensors (one flat buffer for packed
    parameters, else up to :data:`CHUNK` parameters of one size) and their state per key."""

    params: list[Tensor]  # the parameters whose ``state`` entries these are
    flat: list[Tensor]
    states: list[list[Tensor] | None]  # per state key: one 1-D tensor per ``flat``, or None
    flat_grad: Tensor | None = None  # packed: the gradients' flat buffer …
    grad_views: list[Tensor] = field(default_factory=list)  # … and each one's place in it
    #: packed: (the scalar the rule updated, the other parameters' copies of it), per key
    spread: list[tuple[Tensor, list[Tensor]]] = field(default_factory=list)

    def grads(self) -> list[Tensor]:
        """This step's gradients, 1-D: gathered into the flat buffer when packed."""
        grads: list[Tensor] = [p.grad for p in self.params]  # type: ignore[misc]
        if self.flat_grad is None:
            return [g.reshape(-1) for g in grads]
        torch._foreach_copy_(self.grad_views, grads)
        return [self.flat_grad]

    def adopt(self, c: RuleContract, made: list[Tensor]) -> None:
        """Make the state tensors the rule created (SGD's first momentum step) this chunk's."""
        self.states[0] = [any_size(t) for t in made]
        views = _flat_views(made[0], self.params) if self.flat_grad is not None else [
            t.view(p.shape) for p, t in zip(self.params, made, strict=True)]
        for p, view in zip(self.params, views, strict=True):
            c.state[p][c.state_keys[0]] = view


def _packed(c: RuleContract, params: list[Tensor], scalar_keys: frozenset[str]) -> _Chunk:
    """Move ``params`` and their state into flat buffers; ``p.data`` and ``state`` become views.

    A per-parameter scalar (equal across the bucket) is updated once, in the first
    parameter's tensor, and copied to the others' after the call (:attr:`_Chunk.spread`).
    """
    flat_param, param_views = _pack([p.detach() for p in params], params)
    for p, view in zip(params, param_views, strict=True):
        p.data = view  # the values now live in the flat buffer: no copy in or out per step
    states: list[list[Tensor] | None] = []
    spread: list[tuple[Tensor, list[Tensor]]] = []
    for key in c.state_keys:
        present = [c.state[p].get(key) for p in params]
        if key in scalar_keys:
            states.append([present[0]])  # type: ignore[list-item]  # a scalar key is present
            if len(present) > 1:
                spread.append((present[0], present[1:]))  # type: ignore[arg-type]
            continue
        if any(t is None for t in present):
            assert all(t is None for t in present), f"state '{key}' on some params only"
            states.append(None)
            continue
        flat, views = _pack(present, params)  # type: ignore[arg-type]  # no None: see above
        for p, view in zip(params, views, strict=True):
            c.state[p][key] = view
        states.append([flat])
    flat_grad = any_size(torch.empty_like(flat_param))
    return _Chunk(params, [flat_param], states, flat_grad, _flat_views(flat_grad, params),
                  spread)


def _stays_apart(c: RuleContract, p: Tensor, scalar_keys: frozenset[str]) -> bool:
    """Whether ``p`` is updated where it is: large, dense, with dense state of its own dtype
    and device (torch's own layout; anything else is normalised by packing)."""
    state = [c.state[p].get(key) for key in c.state_keys if key not in scalar_keys]
    return p.numel() >= PACK_MAX_NUMEL and p.is_contiguous() and all(
        t is None or (t.is_contiguous() and t.dtype == p.dtype and t.device == p.device)
        for t in state
    )


def _in_place(c: RuleContract, large: list[Tensor], scalar_keys: frozenset[str]) -> list[_Chunk]:
    """``large`` by size, in runs of :data:`CHUNK` (the rest one by one): every call then
    has a list length and equal sizes its graph was compiled for."""
    by_size: dict[int, list[Tensor]] = {}
    for p in large:
        by_size.setdefault(p.numel(), []).append(p)
    runs = []
    for same in by_size.values():
        whole = len(same) - len(same) % CHUNK
        runs += [same[i:i + CHUNK] for i in range(0, whole, CHUNK)] + [[p] for p in same[whole:]]
    return [
        _Chunk(ps, [any_size(p.detach().view(-1)) for p in ps], [
            None if c.state[ps[0]].get(k) is None
            else [c.state[p][k] if k in scalar_keys else any_size(c.state[p][k].view(-1))
                  for p in ps]
            for k in c.state_keys
        ])
        for ps in runs
    ]


@dataclass
class _Bucket:
    """Parameters that share device, dtype and step count."""

    step: float  # the step count shared by the bucket, before this step's increment
    flat_step: Tensor | None  # every ``state[p]['step']`` of the bucket is a view into it
    chunks: list[_Chunk]
    params: list[Tensor]


def _make_bucket(
    c: RuleContract, params: list[Tensor], step: float, scalar_keys: frozenset[str]
) -> _Bucket:
    flat_step = None
    if "step" in c.state[params[0]]:
        flat_step = torch.stack([c.state[p]["step"] for p in params])
        for p, view in zip(params, flat_step.unbind(), strict=True):
            c.state[p]["step"] = view
    apart = [_stays_apart(c, p, scalar_keys) for p in params]
    small = [p for p, a in zip(params, apart, strict=True) if not a]
    chunks = _in_place(c, [p for p, a in zip(params, apart, strict=True) if a], scalar_keys)
    packed = [_packed(c, small, scalar_keys)] if small else []
    return _Bucket(step, flat_step, packed + chunks, params)


@dataclass
class Plan:
    """The buckets of one param group, valid while what they were built from is unchanged.

    :meth:`valid` runs every step, so it compares lists built once (:meth:`remember`) with
    C-level ``map`` loops: ~0.1 µs per parameter instead of the few µs of a Python loop.
    """

    group: Group
    state: MutableMapping[Tensor, dict[str, Any]]  # load_state_dict replaces the mapping
    params: list[Tensor]
    buckets: list[_Bucket]
    ptrs: list[int] = field(default_factory=list)  # where each parameter's values live
    watched: list[Tensor] = field(default_factory=list)  # whose state entries are checked
    dicts: list[dict[str, Any]] = field(default_factory=list)  # their state[p]
    keys: list[str] = field(default_factory=list)  # one entry per (watched param, state key)
    key_dicts: list[dict[str, Any]] = field(default_factory=list)  # the dict of each entry
    held: list[Tensor | None] = field(default_factory=list)  # what state held then

    def remember(self, c: RuleContract) -> None:
        """Record what :meth:`valid` checks; again whenever the plan puts new state in place."""
        self.ptrs = [p.data_ptr() for p in self.params]
        # the first packed parameter stands for its chunk (all its state is views of the same
        # buffers); every parameter updated in place stands for itself
        self.watched = [p for b in self.buckets for ch in b.chunks
                        for p in (ch.params[:1] if ch.flat_grad is not None else ch.params)]
        self.dicts = [c.state[p] for p in self.watched]
        self.keys = [k for _ in self.watched for k in c.state_keys]
        self.key_dicts = [d for d in self.dicts for _ in c.state_keys]
        self.held = [d.get(k) for d in self.dicts for k in c.state_keys]

    def valid(self, c: RuleContract, group: Group, params: list[Tensor]) -> bool:
        if self.group is not group or self.state is not c.state:
            return False  # load_state_dict ran
        if len(params) != len(self.params) or not all(map(operator.is_, params, self.params)):
            return False  # another set of parameters has gradients
        if list(map(Tensor.data_ptr, params)) != self.ptrs:
            return False  # ``p.data`` rebound (``module.to()``…): must not update old storage
        return all(map(operator.is_, map(c.state.get, self.watched), self.dicts)) and all(
            map(operator.is_, map(dict.get, self.key_dicts, self.keys), self.held)
        )  # state entries replaced by hand


def _scalar_keys(c: RuleContract, params: list[Tensor]) -> frozenset[str]:
    """State keys held as one 0-dim tensor per parameter (NAdam's ``mu_product``): like
    ``step``, passed to the rule as they are. (Where every parameter is 0-dim too, state
    laid out like the parameter is the same thing, elementwise.)"""
    states = [c.state[p] for p in params if p.dim() > 0]
    return frozenset(k for k in c.state_keys for s in states
                     if isinstance(s.get(k), Tensor) and s[k].dim() == 0)


def _build_plan(c: RuleContract, group: Group, params: list[Tensor]) -> Plan:
    """Buckets of parameters whose scalars (``step``, per-parameter 0-dim state) are equal:
    a packed bucket's one rule call updates them once for all."""
    by_key: dict[tuple[Any, ...], list[Tensor]] = {}
    steps: dict[int, float] = {}
    for p in params:
        state = c.state.get(p) or c.init_state(p, group)
        steps[id(p)] = float(state["step"]) if "step" in state else 0.0
    scalar_keys = _scalar_keys(c, params)
    for p in params:
        state = c.state[p]
        scalars = tuple((float(state[k]), state[k].dtype) for k in sorted(scalar_keys))
        key = (p.device, p.dtype, steps[id(p)], state.get("step", torch.empty(0)).dtype, scalars)
        by_key.setdefault(key, []).append(p)
    buckets = [_make_bucket(c, ps, steps[id(ps[0])], scalar_keys) for ps in by_key.values()]
    plan = Plan(group, c.state, list(params), buckets)
    plan.remember(c)
    return plan


# -- the entry point --------------------------------------------------------------------------
def _as_float(x: Any) -> Any:
    """A one-element tensor hyperparameter (``weight_decay=torch.tensor(0.1)``, tensor betas)
    as the Python float the compiled rule is specialised on; anything else unchanged."""
    if isinstance(x, Tensor) and x.numel() == 1:
        return x.item()
    if isinstance(x, tuple) and any(isinstance(v, Tensor) for v in x):
        return tuple(_as_float(v) for v in x)
    return x


def _scalar_tensor(x: Any) -> Tensor:
    """``step`` and ``lr`` enter the graph as 0-dim float64 tensors: new values, no recompile."""
    if isinstance(x, Tensor):
        return x.detach().to(device="cpu", dtype=torch.float64).reshape(())
    return torch.tensor(float(x), dtype=torch.float64)


def _eager_only(p: Tensor) -> bool:
    """Complex parameters and sparse gradients take the eager rule."""
    return p.is_complex() or p.grad.is_sparse  # type: ignore[union-attr]


_GRAD_IS_SPARSE = operator.attrgetter("grad.is_sparse")


def fused_step(
    c: RuleContract, group: Group, params_with_grad: list[Tensor], plans: dict[int, Plan]
) -> None:
    """One step of ``group`` through the compiled rule; ``plans`` is the optimizer's cache.

    Increments ``state[p]['step']`` like torch, keeps ``state`` in torch's format
    (per-parameter tensors, views into flat buffers for packed ones) and updates the
    parameters in place.
    """
    if any(map(Tensor.is_complex, params_with_grad)) or any(
        map(_GRAD_IS_SPARSE, params_with_grad)
    ):  # C-level loops: ~0.1 µs a tensor
        c.eager_step(group, [p for p in params_with_grad if _eager_only(p)])
        params_with_grad = [p for p in params_with_grad if not _eager_only(p)]
    if not params_with_grad:
        return
    plan = plans.get(id(group))
    if plan is None or not plan.valid(c, group, params_with_grad):
        plan = plans[id(group)] = _build_plan(c, group, params_with_grad)
    kwargs = {name: _as_float(value) for name, value in c.hyperparams.items()}
    scalars = c.tensor_hyperparams
    constants = tuple(sorted((k, v) for k, v in kwargs.items() if k not in scalars))
    kwargs = {k: _scalar_tensor(v) if k in scalars else v for k, v in kwargs.items()}
    for b in plan.buckets:
        some = b.params[0]
        nones = tuple(c.state[some].get(k) is None for k in c.state_keys)
        fn = compiled_rule(c.rule, (some.dtype, some.device, nones, constants))
        if fn is None:  # too many variants of this rule: see _compile.MAX_VARIANTS
            c.eager_step(group, b.params)
            b.step += b.flat_step is not None  # the eager rule counted in the flat views
            continue
        if b.flat_step is not None:
            b.flat_step.add_(1)
            b.step += 1
        step = torch.tensor(b.step, dtype=torch.float64)
        for chunk in b.chunks:
            made = fn(c.rule, chunk.flat, chunk.grads(), chunk.states, step, kwargs)
            for scalar, copies in chunk.spread:
                torch._foreach_copy_(copies, [scalar] * len(copies))
            if made[0] is not None:
                chunk.adopt(c, made)
                plan.remember(c)
