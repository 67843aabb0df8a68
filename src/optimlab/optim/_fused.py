"""The ``fused=True`` path: the algorithm's own update rule, compiled once, run on flat buffers.

Nothing here re-types an update rule. :func:`fused_step` takes ``optimizer.rule`` (the same
function the eager path loops over) and runs it through ``torch.compile`` on a few flat tensors
instead of once per parameter. Three things make that fast:

1. **Flat buffers for small parameters.** Parameters of a group are bucketed by (device,
   dtype, step count). Those under :data:`DIRECT_MIN_NUMEL` elements are packed: their values
   move into one flat buffer (``p.data`` becomes a view into it, so nothing is copied back)
   and their state (``exp_avg``, ``step``, …) into one flat buffer per key, with
   ``optimizer.state[p]`` holding views strided like ``p`` (as torch lays state out), so
   ``state_dict()`` still shows one tensor per parameter in torch's format. A step copies the
   gradients into a flat buffer with one ``torch._foreach_copy_`` and runs the compiled rule
   once: 4000 small kernels become one. Rebinding ``p.data`` (``module.to()``…) is detected
   and the buffers are rebuilt. Larger contiguous parameters are updated where they are,
   with their own state tensors: the rule is compiled once per signature with a symbolic
   size, and the kernel is then called on each of them directly, without Dynamo's ~0.1 ms
   per call (:class:`_DirectRule`), so they need no gather.
2. **Step scalars outside the kernel.** ``step`` and ``lr`` enter the compiled graph as 0-dim
   float64 tensors (so a new step or a scheduled lr never recompiles). Left alone, inductor
   inlines the 0-dim arithmetic (``1 - β₂ᵗ``, ``√·``) into the elementwise loop and evaluates
   two ``std::pow`` per vector of 8 floats — 4× slower than torch's fused Adam on CPU.
   :func:`_hoisting_backend` cuts those 0-dim nodes out of the graph, evaluates them once per
   call on Python floats (as the eager rule does) and hands the results to the inductor kernel
   as inputs. A call then costs ~0.1 ms of Python, about what ``torch.optim``'s fused step does.
3. **A persistent compile cache.** Inductor's FX graph cache is kept on disk (by default under
   ``~/.cache/optimlab/inductor``; set ``TORCHINDUCTOR_CACHE_DIR`` to move it), so a second
   process pays only Dynamo's trace, not the C++ compile.

Complex parameters and sparse gradients go to the eager rule. The code is device-generic (the
flat buffers live on each parameter's device), but it has only been run on CPU.
"""

from __future__ import annotations

import functools
import itertools
import os
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.fx as fx
from torch import Tensor
from torch.optim import Optimizer

__all__ = ["cache_dir", "compile_count", "fused_step"]

_COMPILES = 0

#: contiguous parameters with at least this many elements are updated where they are; smaller
#: ones are packed into a flat buffer. A direct call costs ~10 µs of Python (the kernel called
#: without Dynamo, see _DirectRule), about what gathering a gradient of ~30k floats costs
DIRECT_MIN_NUMEL = 1 << 16


def cache_dir() -> Path:
    """Where inductor keeps compiled kernels: ``$TORCHINDUCTOR_CACHE_DIR`` if set (by the user,
    or by inductor itself when it ran before this module was imported), else the user cache."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "optimlab"
    return Path(os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(default / "inductor")))


# Before inductor first asks for it (it then pins its /tmp default into the environment).
cache_dir()


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
    inputs = [n for n in gm.graph.nodes if n.op == "placeholder"]
    graph_args = [n.meta.get("grapharg") for n in inputs]
    sources = [None if a is None else getattr(a.source, "name", None) for a in graph_args]
    outputs = gm.graph.output_node().args[0]
    # Dynamo's fake values: a dense input whose size stayed symbolic fits any size
    fakes = [n.meta.get("example_value") for n in inputs]
    any_size = all(
        isinstance(v.shape[0], torch.SymInt) for v in fakes if isinstance(v, Tensor) and v.dim()
    )
    kinds: list[type] = [Tensor if isinstance(v, Tensor) else int if isinstance(v, torch.SymInt)
                         else type(None) for v in fakes]
    n_outputs = len(outputs) if isinstance(outputs, tuple | list) else 1
    scalar = _scalar_nodes(gm.graph)
    hoisted = [n for n in scalar if any(u not in scalar for u in n.users)]
    if not hoisted:
        kernel: Any = compile_fx(gm, example_inputs)
        return _record(_Kernel(kernel, None, sources, any_size, kinds, n_outputs))

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

    extra = [n.meta.get("example_value", n.meta.get("val")) for n in hoisted]
    kernel = compile_fx(fx.GraphModule(gm, main), [*example_inputs, *extra])
    prelude_fn = _float_prelude(scalar, hoisted, inputs, extra)
    if prelude_fn is None:
        prelude_fn = fx.GraphModule(gm, prelude).forward
    return _record(_Kernel(kernel, prelude_fn, sources, any_size, kinds, n_outputs))


@dataclass
class _Kernel:
    """What the backend made of one graph: the inductor kernel, the prelude computing its
    hoisted scalars, and where Dynamo took each input from (``L['param']``, …)."""

    kernel: Callable[..., Any]
    prelude: Callable[..., Sequence[Tensor]] | None
    sources: list[str | None]
    any_size: bool  # every tensor input of the graph has a symbolic size
    kinds: list[type]  # Tensor or int, per input (a float Dynamo lifted is neither: refused)
    n_outputs: int

    def __call__(self, *args: Any) -> Any:
        if self.prelude is None:
            return self.kernel(*args)
        return self.kernel(*args, *self.prelude(*args))


#: the kernels the backend made lately, newest last (:class:`_DirectRule` empties it, makes
#: one call and takes what that call compiled)
_BUILT: list[_Kernel] = []


def _record(kernel: _Kernel) -> _Kernel:
    _BUILT.append(kernel)
    del _BUILT[:-8]
    return kernel


def _float_prelude(
    scalar: list[fx.Node], hoisted: list[fx.Node], inputs: list[fx.Node], examples: list[Any]
) -> Callable[..., list[Tensor]] | None:
    """The prelude evaluated on Python floats, when it is plain arithmetic (it is for all six
    rules): a dozen float operations cost far less than a dozen 0-dim tensor ops, and they
    are the very operations the eager rule performs on its Python-float ``step``."""
    if not all(
        n.op == "call_function"
        and getattr(n.target, "__module__", None) in ("_operator", "operator")
        and not n.kwargs
        and all(isinstance(a, fx.Node | int | float) for a in n.args)
        for n in scalar
    ):
        return None
    position = {n: i for i, n in enumerate(inputs)}
    dtypes = [e.dtype for e in examples]

    def value(a: Any, env: dict[fx.Node, Any], args: tuple[Any, ...]) -> Any:
        if not isinstance(a, fx.Node):
            return a
        return env[a] if a in env else args[position[a]].item()

    def prelude(*args: Any) -> list[Tensor]:
        env: dict[fx.Node, Any] = {}
        for n in scalar:
            env[n] = n.target(*(value(a, env, args) for a in n.args))  # type: ignore[operator]
        return [torch.tensor(env[n], dtype=dt) for n, dt in zip(hoisted, dtypes, strict=True)]

    return prelude


def _apply_rule(rule, param, grad, states, step, kwargs):  # type: ignore[no-untyped-def]
    """The body that gets compiled: one call of the rule (named per rule, see _compiled)."""
    return rule(param, grad, *states, step=step, **kwargs)


@functools.cache
def _compiled(rule: Callable[..., Any]) -> Callable[..., Any]:
    """:func:`_apply_rule` compiled for ``rule``.

    Each rule gets its own copy of the code object, hence its own Dynamo cache: the variants
    of one optimizer (flags, dtype) never crowd out another's under Dynamo's recompile limit.
    """
    cache_dir()
    code = _apply_rule.__code__.replace(co_name=f"fused_{rule.__name__}")
    fn = types.FunctionType(code, _apply_rule.__globals__, code.co_name)
    return torch.compile(fn, fullgraph=True, backend=_hoisting_backend)


def _call_rule(
    rule: Callable[..., Any],
    params: list[Tensor],
    grads: list[Tensor],
    states: list[list[Tensor] | None],
    step: Tensor,
    kwargs: dict[str, Any],
) -> list[Tensor | None]:
    """Run the compiled rule on each of the 1-D ``params`` in turn."""
    fn = _compiled(rule)
    for g in grads:  # a new size then shares the graph instead of compiling its own
        torch._dynamo.maybe_mark_dynamic(g, 0)
    return [
        fn(rule, p, grads[i], [None if s is None else s[i] for s in states], step, kwargs)
        for i, p in enumerate(params)
    ]


class _DirectRule:
    """The rule compiled once for dense 1-D tensors of one signature, then called without Dynamo.

    Each Dynamo call costs ~0.1 ms of frame evaluation and guards, too much once per tensor
    for 100k-element parameters. The first call goes through Dynamo on a fresh code object
    (so it always compiles, with the size symbolic), and the kernel the backend made then is
    kept; later calls hand it their inputs directly, and compute the hoisted scalars once for
    all the tensors of a step. Dynamo's guards are replaced by the signature the caller
    checks (rule, dtype, device, which states exist, the constant hyperparameters) and by
    the checks below (dense 1-D tensors of the parameter's dtype). A graph that returns
    something (SGD's first step creates its buffer) keeps the Dynamo call.
    """

    def __init__(self, rule: Callable[..., Any], number: int) -> None:
        # A name of its own: Dynamo keeps its automatic-dynamic record per name, and a float
        # that differs between two signatures would otherwise become an input of the graph.
        code = _apply_rule.__code__.replace(co_name=f"direct_{rule.__name__}_{number}")
        fn = types.FunctionType(code, _apply_rule.__globals__, code.co_name)
        self.rule = rule
        self.fn = torch.compile(fn, fullgraph=True, backend=_hoisting_backend)
        self.kernel: _Kernel | None = None
        self.args: Callable[[dict[str, Any]], tuple[Any, ...]] | None = None
        self.compiled = False

    def _capture(self, built: list[_Kernel], made: Any, frame: dict[str, Any]) -> None:
        """Keep the kernel of the first call if it can be called on other sizes as is."""
        if len(built) != 1 or made is not None or built[0].n_outputs != 0:
            return
        k = built[0]
        if any(src is None for src in k.sources):
            return
        if not k.any_size:
            return  # a size was specialised: the kernel only fits that size
        try:  # Dynamo's own spelling of where each input comes from, over the frame's locals
            self.args = eval(  # noqa: S307 (source names Dynamo generated, no user input)
                f"lambda L: ({', '.join(k.sources)},)",  # type: ignore[arg-type]
                {"__builtins__": {}},
            )
            args = self.args(frame)  # type: ignore[misc]
        except (SyntaxError, NameError, LookupError, TypeError):
            self.args = None
            return
        if len(args) != len(k.kinds) or any(
            not isinstance(a, kind) for a, kind in zip(args, k.kinds, strict=True)
        ):
            self.args = None
            return
        self.kernel = k

    def through_dynamo(
        self, p: Tensor, g: Tensor, st: list[Tensor | None], step: Tensor, kwargs: dict[str, Any]
    ) -> Tensor | None:
        """The compiled rule called the ordinary way (compiling on the first call)."""
        torch._dynamo.maybe_mark_dynamic(g, 0)
        made: Tensor | None = self.fn(self.rule, p, g, st, step, kwargs)
        return made

    def __call__(
        self, params: list[Tensor], grads: list[Tensor], states: list[list[Tensor] | None],
        step: Tensor, kwargs: dict[str, Any],
    ) -> list[Tensor | None]:
        out: list[Tensor | None] = []
        dtype, device = params[0].dtype, params[0].device
        extra: Sequence[Tensor] = ()
        for i, p in enumerate(params):
            g, st = grads[i], [None if s is None else s[i] for s in states]
            if not self.compiled:
                _BUILT.clear()
                made = self.through_dynamo(p, g, st, step, kwargs)
                frame = {"param": p, "grad": g, "states": st, "step": step, "kwargs": kwargs}
                self._capture(list(_BUILT), made, frame)
                self.compiled = True
                out.append(made)
                continue
            if (
                self.kernel is None or self.args is None
                or g.dtype != dtype or g.device != device or not g.is_contiguous()
                or g.numel() >= 1 << 31
            ):
                out.append(self.through_dynamo(p, g, st, step, kwargs))
                continue
            args = self.args({"param": p, "grad": g, "states": st, "step": step, "kwargs": kwargs})
            if self.kernel.prelude is not None and not extra:
                extra = self.kernel.prelude(*args)  # the same step and lr for every tensor
            self.kernel.kernel(*args, *extra)
            out.append(None)
        return out


#: one compiled kernel per (rule, signature); past this many signatures of one rule (a
#: scheduled weight decay…) the rule goes through Dynamo, whose floats then turn dynamic
MAX_DIRECT_SIGNATURES = 8
_DIRECT: dict[tuple[Callable[..., Any], tuple[Any, ...]], _DirectRule] = {}
_DIRECT_NUMBERS = itertools.count()


def _signature(
    param: Tensor, states: list[list[Tensor] | None], kwargs: dict[str, Any]
) -> tuple[Any, ...] | None:
    """What the direct kernel was specialised on, or None when a hyperparameter is a tensor
    (other than ``lr``, always a 0-dim float64) or otherwise unhashable."""
    items = []
    for name, value in sorted(kwargs.items()):
        if name == "lr":
            continue
        if isinstance(value, Tensor) or (
            isinstance(value, tuple) and any(isinstance(v, Tensor) for v in value)
        ):
            return None
        items.append((name, type(value), value))
    try:
        hash(tuple(items))
    except TypeError:
        return None
    return (param.device, param.dtype, tuple(s is None for s in states), tuple(items))


def _call_direct(
    rule: Callable[..., Any],
    params: list[Tensor],
    grads: list[Tensor],
    states: list[list[Tensor] | None],
    step: Tensor,
    kwargs: dict[str, Any],
) -> list[Tensor | None]:
    """Run the compiled rule on each of the dense 1-D ``params`` (see :class:`_DirectRule`)."""
    signature = _signature(params[0], states, kwargs)
    dtype, device = params[0].dtype, params[0].device
    if signature is None or any(
        t.dtype != dtype or t.device != device for s in states if s is not None for t in s
    ):
        return _call_rule(rule, params, grads, states, step, kwargs)
    runner = _DIRECT.get((rule, signature))
    if runner is None:
        if sum(r is rule for r, _ in _DIRECT) >= MAX_DIRECT_SIGNATURES:
            return _call_rule(rule, params, grads, states, step, kwargs)
        runner = _DIRECT[rule, signature] = _DirectRule(rule, next(_DIRECT_NUMBERS))
    return runner(params, grads, states, step, kwargs)


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
            (made,) = _call_rule(opt.rule, [pk.flat_param], [pk.flat_grad], states, step, kwargs)
            if made is not None:  # SGD's momentum buffer, created on the first step
                torch._dynamo.maybe_mark_dynamic(made, 0)
                pk.flat_state[0] = made
                b.held = None
                for p, view in zip(pk.params, _flat_views(made, pk.params), strict=True):
                    opt.state[p][key] = view
        if b.direct:
            grads = [p.grad.reshape(-1) for p in b.direct]  # type: ignore[union-attr]
            made_list = _call_direct(opt.rule, b.direct_flat, grads, b.direct_state, step, kwargs)
            if made_list and made_list[0] is not None:
                b.direct_state[0] = [_flat_1d(t) for t in made_list]  # type: ignore[arg-type]
                b.held = None
                for p, t in zip(b.direct, made_list, strict=True):
                    opt.state[p][key] = t.view(p.shape)  # type: ignore[union-attr]
