"""The ``fused=True`` path: the algorithm's own update rule, compiled once, run on flat buffers.

Nothing here re-types an update rule. :func:`fused_step` takes ``optimizer.rule`` (the same
function the eager path loops over) and runs it through ``torch.compile`` on a few flat tensors
instead of once per parameter. Three things make that fast:

1. **Flat state.** Parameters of a group are bucketed by (device, dtype, step count). Each
   bucket keeps its state (``exp_avg``, ``step``, …) in one flat buffer per key, and
   ``optimizer.state[p]`` holds *views* into it, so ``state_dict()`` still shows one tensor per
   parameter in torch's format. A step copies the gradients (and parameters) of a bucket into
   flat buffers with one ``torch._foreach_copy_``, runs the compiled rule once over the whole
   bucket, and copies the parameters back with one more. A bucket of one contiguous parameter
   skips the copies. This turns 4000 small kernels into one large one.
2. **Step scalars outside the kernel.** ``step`` and ``lr`` enter the compiled graph as 0-dim
   float64 tensors (so a new step or a scheduled lr never recompiles). Left alone, inductor
   inlines the 0-dim arithmetic (``1 - β₂ᵗ``, ``√·``) into the elementwise loop and evaluates
   two ``std::pow`` per vector of 8 floats — 4× slower than torch's fused Adam on CPU.
   :func:`_hoisting_backend` cuts those 0-dim nodes out of the graph, runs them once per step,
   and hands their values to the inductor kernel as inputs.
3. **A persistent compile cache.** Inductor's FX graph cache is kept on disk (by default under
   ``~/.cache/optimlab/inductor``; set ``TORCHINDUCTOR_CACHE_DIR`` to move it), so a second
   process pays only Dynamo's trace, not the C++ compile.

Complex parameters and sparse gradients go to the eager rule. The code is device-generic (the
flat buffers live on each parameter's device), but it has only been run on CPU.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.fx as fx
from torch import Tensor
from torch.optim import Optimizer

__all__ = ["cache_dir", "compile_count", "fused_step"]

_COMPILES = 0


def cache_dir() -> Path:
    """Where inductor keeps compiled kernels: ``$TORCHINDUCTOR_CACHE_DIR`` or the user cache."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "optimlab"
    return Path(os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(default / "inductor")))


def compile_count() -> int:
    """How many graphs this process has handed to inductor (tests check the path compiled)."""
    return _COMPILES


# -- compilation ------------------------------------------------------------------------------
def _is_scalar(node: fx.Node) -> bool:
    value = node.meta.get("example_value", node.meta.get("val"))
    return isinstance(value, Tensor) and value.dim() == 0


def _scalar_nodes(graph: fx.Graph) -> list[fx.Node]:
    """Out-of-place 0-dim nodes computed only from 0-dim graph inputs (step, lr, betas…)."""
    found: set[fx.Node] = set()
    for node in graph.nodes:
        pure = node.op == "call_function" or (
            node.op == "call_method" and not str(node.target).endswith("_")
        )
        if pure and _is_scalar(node) and all(
            (n.op == "placeholder" and _is_scalar(n)) or n in found for n in node.all_input_nodes
        ):
            found.add(node)
    return [n for n in graph.nodes if n in found]


def _hoisting_backend(gm: fx.GraphModule, example_inputs: list[Tensor]) -> Callable[..., Any]:
    """Compile ``gm`` with inductor after moving its 0-dim arithmetic out of the kernel.

    The prelude (``1 - β^t``, ``lr / bc1``, ``bc2 ** 0.5`` …, a dozen scalar ops) runs eagerly
    once per call; its results become extra inputs of the elementwise graph, which inductor
    then vectorises with loop-invariant scalars instead of per-element double ``pow``.
    """
    global _COMPILES
    from torch._inductor.compile_fx import compile_fx

    _COMPILES += 1
    scalar = _scalar_nodes(gm.graph)
    hoisted = [n for n in scalar if any(u not in scalar for u in n.users)]
    if not hoisted:
        return compile_fx(gm, example_inputs)  # type: ignore[return-value]
    inputs = [n for n in gm.graph.nodes if n.op == "placeholder"]

    prelude, env = fx.Graph(), {}
    for n in inputs:
        env[n] = prelude.placeholder(n.name)
        env[n].meta = dict(n.meta)
    for n in scalar:
        env[n] = prelude.node_copy(n, lambda x: env[x])
    prelude.output(tuple(env[n] for n in hoisted))

    main, env2 = fx.Graph(), {}
    for n in [*inputs, *hoisted]:
        env2[n] = main.placeholder(n.name if n in inputs else f"hoisted_{n.name}")
        env2[n].meta = dict(n.meta)
    for n in gm.graph.nodes:
        if n.op != "placeholder" and n not in scalar:
            env2[n] = main.node_copy(n, lambda x: env2[x])

    run_prelude = fx.GraphModule(gm, prelude)
    extra = [n.meta.get("example_value", n.meta.get("val")) for n in hoisted]
    kernel: Any = compile_fx(fx.GraphModule(gm, main), [*example_inputs, *extra])

    def run(*args: Any) -> Any:
        return kernel(*args, *run_prelude(*args))

    return run


@functools.cache
def _compiled(rule: Callable[..., Any]) -> Callable[..., Any]:
    """``rule`` compiled once per process (each rule is its own code object, so own cache)."""
    cache_dir()
    return torch.compile(rule, fullgraph=True, backend=_hoisting_backend)


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


@dataclass
class _Bucket:
    """Parameters that share device, dtype and step count, with their state held flat."""

    params: list[Tensor]
    step: float  # the step count shared by the bucket, before this step's increment
    direct: bool  # one contiguous parameter: the rule runs on it in place, no copies
    flat_param: Tensor
    param_views: list[Tensor]
    flat_state: list[Tensor | None]  # one per ``optimizer.state_keys``
    flat_step: Tensor | None
    flat_grad: Tensor | None = None
    grad_views: list[Tensor] = field(default_factory=list)

    def load(self) -> Tensor:
        """Gather this step's gradients (and the parameters) into the flat buffers."""
        grads = [p.grad for p in self.params]
        if self.direct:
            g = grads[0]
            g = g.view(-1) if g.is_contiguous() else g.reshape(-1)  # type: ignore[union-attr]
            torch._dynamo.maybe_mark_dynamic(g, 0)
            return g
        if self.flat_grad is None:
            self.flat_grad = torch.empty_like(self.flat_param)
            torch._dynamo.maybe_mark_dynamic(self.flat_grad, 0)
            self.grad_views = _flat_views(self.flat_grad, self.params)
        torch._foreach_copy_(self.grad_views, grads)  # type: ignore[arg-type]
        torch._foreach_copy_(self.param_views, self.params)
        return self.flat_grad

    def store(self) -> None:
        """Write the updated parameters back (nothing to do when the rule ran on them)."""
        if not self.direct:
            torch._foreach_copy_(self.params, self.param_views)


def _make_bucket(optimizer: Any, params: list[Tensor], step: float) -> _Bucket:
    """Move the bucket's state into flat buffers and point ``optimizer.state`` at views."""
    direct = len(params) == 1 and params[0].is_contiguous()
    if direct:
        flat_param, param_views = params[0].detach().view(-1), [params[0]]
        torch._dynamo.maybe_mark_dynamic(flat_param, 0)
    else:
        flat_param, param_views = _pack([p.detach() for p in params], params)
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
    flat_step = None
    if "step" in states[0]:
        flat_step = torch.stack([s["step"] for s in states])
        for s, view in zip(states, flat_step.unbind(), strict=True):
            s["step"] = view
    return _Bucket(params, step, direct, flat_param, param_views, flat_state, flat_step)


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
        if len(params) != len(self.params) or any(
            a is not b for a, b in zip(params, self.params, strict=True)
        ):
            return False
        keys = [k for k in optimizer.state_keys] + ["step"]
        for b in self.buckets:  # state entries replaced by hand invalidate the plan as well
            first = optimizer.state.get(b.params[0], {})
            for key, flat in zip(keys, [*b.flat_state, b.flat_step], strict=True):
                held = first.get(key)
                if (held is None) != (flat is None) or (
                    held is not None and held.data_ptr() != flat.data_ptr()  # type: ignore[union-attr]
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
    rule = _compiled(opt.rule)
    kwargs = opt._rule_kwargs(group)
    kwargs["lr"] = _as_scalar_tensor(kwargs["lr"])
    for b in _plan(opt, group, params_with_grad).buckets:
        grad = b.load()
        if b.flat_step is not None:
            b.flat_step.add_(1)
            b.step += 1
        step = torch.tensor(b.step, dtype=torch.float64)
        created = rule(b.flat_param, grad, *b.flat_state, step=step, **kwargs)
        if created is not None:  # SGD's momentum buffer, created on the first step
            torch._dynamo.maybe_mark_dynamic(created, 0)
            b.flat_state[0] = created
            for p, view in zip(b.params, _flat_views(created, b.params), strict=True):
                opt.state[p][opt.state_keys[0]] = view
        b.store()
