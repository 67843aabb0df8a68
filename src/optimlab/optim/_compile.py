"""Compiling an update rule with ``torch.compile``, its step scalars computed outside the kernel.

This is the half of the ``fused=True`` path that turns an optimizer's ``rule`` (the same
function the eager path loops over) into a compiled function; :mod:`optimlab.optim._fused`
lays parameters and state out in buffers and calls it. Only public ``torch.compile`` API is
used: a custom backend (an ``fx.GraphModule`` transform, then inductor looked up by name as
torch's custom-backend guide composes backends), per-call recompile bookkeeping
(``isolate_recompiles``) and ``maybe_mark_dynamic`` on the buffers' length (one graph for
every size, :func:`any_size`).

**Why a backend of our own.** ``step`` and ``lr`` enter the graph as 0-dim float64 tensors, so
a new step or a scheduled learning rate is a new *value*, never a recompile. Left alone,
inductor inlines the arithmetic on them (``1 - β₂ᵗ``, ``√·``, ``γ / (1 - β₁ᵗ)``) into the
elementwise loop and evaluates two ``pow`` per vector of floats — several times slower than
torch's fused Adam on CPU. :func:`hoisting_backend` cuts that 0-dim arithmetic out of the
graph, evaluates it once per call on Python floats (the very operations the eager rule does on
its float ``step``) and hands the results to the inductor kernel as inputs.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Hashable
from typing import Any

import torch
import torch.fx as fx
from torch import Tensor

__all__ = ["any_size", "apply_each", "compile_count", "compiled_rule", "hoisting_backend"]

_COMPILES = 0

#: compiled variants kept per rule (flags, dtypes, constant hyperparameters); past this, a
#: group whose hyperparameters change every step (a scheduled weight decay, say) would compile
#: every step, so new variants run the eager rule instead
MAX_VARIANTS = 32

_VARIANTS: dict[Callable[..., Any], dict[Hashable, Callable[..., Any]]] = {}


def compile_count() -> int:
    """How many graphs this process has compiled for rules (tests check the path compiled)."""
    return _COMPILES


def any_size(t: Tensor) -> Tensor:
    """``t`` (1-D), marked so that the graph compiled for it serves any length."""
    torch._dynamo.maybe_mark_dynamic(t, 0)
    return t


_IN_PLACE_OPERATORS = {operator.iadd, operator.isub, operator.imul, operator.itruediv,
                       operator.ipow, operator.ifloordiv, operator.imod}


def _mutated(node: fx.Node) -> Any:
    """The value ``node`` changes in place (``x *= y``, ``x.mul_(y)``), or None."""
    in_place = node.target in _IN_PLACE_OPERATORS or (
        node.op == "call_method" and str(node.target).endswith("_"))
    return node.args[0] if in_place and node.args else None


def _is_arithmetic(node: fx.Node) -> bool:
    """A Python operator (``+ - * / ** neg``) applied to graph values and plain numbers."""
    return (
        node.op == "call_function"
        and node.target not in _IN_PLACE_OPERATORS
        and getattr(node.target, "__module__", None) in ("_operator", "operator")
        and not node.kwargs
        and bool(node.all_input_nodes)
        and all(isinstance(a, fx.Node | int | float) for a in node.args)
    )


def _zero_dim_inputs(gm: fx.GraphModule, example_inputs: list[Any]) -> set[fx.Node]:
    inputs = [n for n in gm.graph.nodes if n.op == "placeholder"]
    return {n for n, x in zip(inputs, example_inputs, strict=True)
            if isinstance(x, Tensor) and x.dim() == 0}


def _scalar_arithmetic(gm: fx.GraphModule, example_inputs: list[Any]) -> list[fx.Node]:
    """The operator nodes computed only from the graph's read-only 0-dim tensor inputs (step,
    lr), each computation once (a duplicate's users are moved to the first).

    The fused path never passes a 0-dim parameter or gradient (it hands the rule 1-D
    buffers); a 0-dim state the rule updates in place (NAdam's ``mu_product``) is left in the
    graph with everything computed from it, since the prelude runs before the kernel.
    """
    scalar = _zero_dim_inputs(gm, example_inputs) - {_mutated(n) for n in gm.graph.nodes}
    found: dict[tuple[Any, ...], fx.Node] = {}
    for node in list(gm.graph.nodes):
        if _is_arithmetic(node) and all(a in scalar for a in node.all_input_nodes):
            same = found.setdefault((node.target, *node.args), node)
            if same is not node:  # each parameter of a chunk computes the same bias corrections
                node.replace_all_uses_with(same)
                gm.graph.erase_node(node)
            scalar.add(same)
    return list(found.values())


def _evaluate(nodes: list[fx.Node], inputs: dict[fx.Node, Any]) -> dict[fx.Node, Any]:
    """Run ``nodes`` (operator calls) on ``inputs``; every value they produce, by node."""
    env = dict(inputs)
    for n in nodes:
        env[n] = n.target(*(env[a] if isinstance(a, fx.Node) else a for a in n.args))  # type: ignore[operator]
    return env


def _alpha_as_product(gm: fx.GraphModule) -> None:
    """Rewrite ``x.add_(y, alpha=a)`` with a tensor ``a`` (a 0-dim ``lr``) as
    ``x.add_(y * a)``: inductor 2.14 bakes the first value of such an ``alpha`` into the kernel
    (``p.sub_(g, alpha=lr)`` compiled, then called with another ``lr``, still uses the first;
    the aot_eager backend does not), so Schedule-Free's second param group took the first's lr.
    """
    for node in list(gm.graph.nodes):
        alpha = node.kwargs.get("alpha")
        if str(node.target) in ("add", "add_", "sub", "sub_") and isinstance(alpha, fx.Node):
            with gm.graph.inserting_before(node):
                scaled = gm.graph.call_function(operator.mul, (node.args[1], alpha))
            node.args = (node.args[0], scaled, *node.args[2:])
            node.kwargs = {k: v for k, v in node.kwargs.items() if k != "alpha"}
    gm.recompile()


def _symbolic_floats_as_tensors(gm: fx.GraphModule, example_inputs: list[Any]) -> None:
    """Use a 0-dim input ``t`` itself wherever the graph reads ``t.item()``.

    A Python float that changed between calls (a constant hyperparameter with a new value)
    is made symbolic by Dynamo: it arrives as a 0-dim float64 input read with ``.item()``.
    Inductor 2.14 bakes such a symbolic float's first value into some kernels: its
    ``lerp(x, y, w)`` decomposition branches on ``w >= 0.5`` with the example value and emits
    ``add(y, y - x, alpha=w - 1)``, whose alpha is then a constant (Schedule-Free's
    ``p.lerp_(z, ckp1)`` kept the ``ckp1`` of its first compile). As a 0-dim tensor it is
    read every call, like ``step`` and ``lr``, and its arithmetic is hoisted with theirs.
    """
    scalar = _zero_dim_inputs(gm, example_inputs)
    for node in list(gm.graph.nodes):
        if node.op == "call_method" and node.target == "item" and node.args[0] in scalar:
            node.replace_all_uses_with(node.args[0])
            gm.graph.erase_node(node)


def hoisting_backend(gm: fx.GraphModule, example_inputs: list[Any]) -> Callable[..., Any]:
    """Compile ``gm`` with inductor after moving its 0-dim arithmetic out of the kernel.

    The prelude (``1 - β^t``, ``lr / bc1``, ``bc2 ** 0.5`` …, a dozen operations) runs on
    Python floats once per call; its results become extra 0-dim inputs of the elementwise
    graph, which inductor then vectorises with loop-invariant scalars. Where float arithmetic
    differs from tensors' (``x / 0`` raises, ``(-1) ** 0.5`` is complex) the prelude runs on
    0-dim tensors instead, as the graph would have.
    """
    global _COMPILES
    _COMPILES += 1
    _symbolic_floats_as_tensors(gm, example_inputs)
    _alpha_as_product(gm)
    inductor = torch._dynamo.lookup_backend("inductor")
    arithmetic = _scalar_arithmetic(gm, example_inputs)
    hoisted = [n for n in arithmetic if any(u not in arithmetic for u in n.users)]
    if not hoisted:
        return inductor(gm, example_inputs)
    inputs = [n for n in gm.graph.nodes if n.op == "placeholder"]
    index = {n: i for i, n in enumerate(inputs)}
    # example values of the hoisted scalars (their dtypes), from 0-dim operator calls alone
    examples = _evaluate(arithmetic, dict(zip(inputs, example_inputs, strict=True)))
    dtypes = [examples[n].dtype for n in hoisted]

    kernel_graph, env = fx.Graph(), {}
    for n in inputs:
        env[n] = kernel_graph.node_copy(n)
    for n in hoisted:
        env[n] = kernel_graph.placeholder(f"hoisted_{n.name}")
    for n in gm.graph.nodes:
        if n.op != "placeholder" and n not in arithmetic:
            env[n] = kernel_graph.node_copy(n, lambda x: env[x])
    kernel = inductor(
        fx.GraphModule(gm, kernel_graph), [*example_inputs, *(examples[n] for n in hoisted)]
    )
    scalar_inputs = {n for a in arithmetic for n in a.all_input_nodes if n in index}

    def with_prelude(*args: Any) -> Any:
        try:
            values = _evaluate(arithmetic, {n: args[index[n]].item() for n in scalar_inputs})
            scalars = [torch.tensor(values[n], dtype=dt)
                       for n, dt in zip(hoisted, dtypes, strict=True)]
        except (ArithmeticError, TypeError):  # x/0, overflow, a negative number's root (complex)
            values = _evaluate(arithmetic, {n: args[index[n]] for n in scalar_inputs})
            scalars = [values[n].to(dt) for n, dt in zip(hoisted, dtypes, strict=True)]
        return kernel(*args, *scalars)

    return with_prelude


def apply_each(
    rule: Callable[..., Tensor | None],
    params: list[Tensor],
    grads: list[Tensor],
    states: list[list[Tensor] | None],
    step: Tensor,
    hyperparams: dict[str, Any],
) -> list[Tensor | None]:
    """``rule`` on each parameter of the list in turn (state ``k`` of parameter ``i`` is
    ``states[k][i]``, or ``None`` for all when ``states[k]`` is): the body that is compiled,
    one graph for every list of the same length."""
    return [
        rule(p, grads[i], *(None if s is None else s[i] for s in states), step=step,
             **hyperparams)
        for i, p in enumerate(params)
    ]


def compiled_rule(rule: Callable[..., Any], variant: Hashable) -> Callable[..., Any] | None:
    """:func:`apply_each` compiled for ``rule`` and one ``variant`` (what the graph is
    specialised on: dtype, device, flags, constant hyperparameters), or ``None`` past
    :data:`MAX_VARIANTS`.

    Each variant is its own ``torch.compile`` call with ``isolate_recompiles=True``: its
    graphs (one per list length) never count against another's recompile limit. Float
    hyperparameters stay constants of the graph (``dynamic=True`` would make them inputs read
    with ``.item()``, which the hoisting cannot move out of the kernel).
    """
    variants = _VARIANTS.setdefault(rule, {})
    fn = variants.get(variant)
    if fn is None and len(variants) < MAX_VARIANTS:
        fn = variants[variant] = torch.compile(  # type: ignore[call-overload]  # stubs lag
            apply_each, fullgraph=True, backend=hoisting_backend, isolate_recompiles=True
        )
    return fn
