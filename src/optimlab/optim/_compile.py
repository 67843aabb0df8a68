"""Compiling an update rule: the hoisting backend and the persistent cache.

This is the half of the ``fused=True`` path that turns ``optimizer.rule`` (the same function
the eager path loops over) into fast kernels; :mod:`optimlab.optim._fused` lays parameters and
state out in buffers and calls :func:`call_rule`, or
:func:`optimlab.optim._direct.call_direct` for parameters updated where they are.

- **Step scalars outside the kernel.** ``step`` and ``lr`` enter the compiled graph as 0-dim
  float64 tensors (so a new step or a scheduled lr never recompiles). Left alone, inductor
  inlines the 0-dim arithmetic (``1 - β₂ᵗ``, ``√·``) into the elementwise loop and evaluates
  two ``std::pow`` per vector of 8 floats — 4× slower than torch's fused Adam on CPU.
  :func:`hoisting_backend` cuts those 0-dim nodes out of the graph, evaluates them once per
  call on Python floats (as the eager rule does) and hands the results to the inductor kernel
  as inputs.
- **A persistent compile cache.** Inductor's FX graph cache is kept on disk (by default under
  ``~/.cache/optimlab/inductor``; set ``TORCHINDUCTOR_CACHE_DIR`` to move it), so a second
  process pays only Dynamo's trace, not the C++ compile.
"""

from __future__ import annotations

import functools
import os
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.fx as fx
from torch import Tensor

__all__ = ["BUILT", "Kernel", "cache_dir", "call_rule", "compile_count", "compile_named",
           "states_at"]

_COMPILES = 0


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


def hoisting_backend(gm: fx.GraphModule, example_inputs: list[Tensor]) -> Callable[..., Any]:
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
        return _record(Kernel(kernel, None, sources, any_size, kinds, n_outputs))

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
    return _record(Kernel(kernel, prelude_fn, sources, any_size, kinds, n_outputs))


@dataclass
class Kernel:
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


#: the kernels the backend made lately, newest last (``_direct.DirectRule`` empties it, makes
#: one call and takes what that call compiled)
BUILT: list[Kernel] = []


def _record(kernel: Kernel) -> Kernel:
    BUILT.append(kernel)
    del BUILT[:-8]
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


def apply_rule(rule, param, grad, states, step, kwargs):  # type: ignore[no-untyped-def]
    """The body that gets compiled: one call of the rule (named per use, see compile_named)."""
    return rule(param, grad, *states, step=step, **kwargs)


def compile_named(name: str) -> Callable[..., Any]:
    """:func:`apply_rule` compiled under its own code name, hence its own Dynamo cache (and
    automatic-dynamic record): the variants of one optimizer (flags, dtype) never crowd out
    another's under Dynamo's recompile limit."""
    cache_dir()
    code = apply_rule.__code__.replace(co_name=name)
    fn = types.FunctionType(code, apply_rule.__globals__, name)
    return torch.compile(fn, fullgraph=True, backend=hoisting_backend)


@functools.cache
def _compiled(rule: Callable[..., Any]) -> Callable[..., Any]:
    """:func:`apply_rule` compiled for ``rule``, one per rule."""
    return compile_named(f"fused_{rule.__name__}")


def states_at(states: Sequence[Sequence[Tensor] | None], i: int) -> list[Tensor | None]:
    """Tensor ``i`` of each state list (``None`` where the rule has no such state)."""
    return [None if s is None else s[i] for s in states]


def call_rule(
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
        fn(rule, p, grads[i], states_at(states, i), step, kwargs)
        for i, p in enumerate(params)
    ]
