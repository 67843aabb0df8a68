"""Calling a compiled update rule on many parameters without the per-call machinery.

On 160 parameters of 100k floats, an Adam step's arithmetic takes ~90 µs per tensor; Dynamo's
frame evaluation and guards (~100 µs), AOTAutograd's runtime wrappers (~14 µs) and inductor's
generated ``call`` (~3.5 µs: unpacking, size and stride asserts) would add 20–100% to it. So:

1. The rule is compiled once per signature through Dynamo, with the size symbolic
   (:class:`DirectRule`, first call).
2. The backend's record of that graph (:class:`~optimlab.optim._compile.Kernel`) says where
   Dynamo took each input from (``L['param']``, ``L['states'][1]``…); with it the inputs of
   any later parameter are spelled out without Dynamo.
3. Inductor's generated ``call`` is read back (:func:`kernel_calls`): for the rules here it is
   one C++ kernel called on the inputs in some order. The step then calls that kernel itself,
   ~0.5 µs per tensor. Anything else in ``call`` (a buffer allocated, an output returned, a GPU
   stream) keeps the compiled function as inductor returned it.

What Dynamo's guards checked is instead checked by the caller's signature (rule, dtype, device,
which states exist, the constant hyperparameters) and here: dense, contiguous tensors of the
parameter's size (torch already refuses a ``.grad`` of another shape, dtype or device).
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ._compile import BUILT, Kernel, call_rule, compile_named, states_at

__all__ = ["MAX_DIRECT_SIGNATURES", "call_direct", "kernel_calls"]


def kernel_calls(compiled: Any) -> list[tuple[Callable[..., Any], list[int | str]]] | None:
    """The C++ kernels inductor's ``call(args)`` runs, each with where its arguments come from
    (an index into ``args``, or a literal), or None unless ``call`` does nothing else."""
    call = getattr(compiled, "current_callable", None)
    source = getattr(compiled, "source_code", None)
    if call is None or not isinstance(source, str) or not hasattr(call, "__func__"):
        return None
    runner = next((n for n in ast.parse(source).body
                   if isinstance(n, ast.ClassDef) and n.name == "Runner"), None)
    body = next((n.body for n in getattr(runner, "body", [])
                 if isinstance(n, ast.FunctionDef) and n.name == "call"), None)
    if body is None:
        return None
    names: dict[str, int] = {}
    found: list[tuple[Callable[..., Any], list[int | str]]] = []
    for stmt in body:
        match stmt:
            case ast.Assign(targets=[ast.Tuple(elts=elts)], value=ast.Name(id="args")) if all(
                isinstance(e, ast.Name) for e in elts
            ):
                names = {e.id: i for i, e in enumerate(elts)}  # type: ignore[attr-defined]
            case ast.Assign(targets=[ast.Name(id=alias)], value=ast.Name(id=name)) if (
                name in names
            ):
                names[alias] = names[name]  # ``s3 = arg0_1``: a size, by another name
            case ast.Expr(value=ast.Call(func=ast.Attribute(value=ast.Name(id="args"),
                                                            attr="clear"))):
                pass
            case ast.Expr(value=ast.Call(func=ast.Name(id=fn))) if fn.startswith("assert_"):
                pass  # the size and stride checks that our own checks replace
            case ast.Expr(value=ast.Call(func=ast.Name(id=fn), args=args, keywords=[])) if (
                fn.startswith("cpp_fused_")
            ):
                where: list[int | str] = []
                for a in args:
                    if isinstance(a, ast.Name) and a.id in names:
                        where.append(names[a.id])
                    elif isinstance(a, ast.Constant) and type(a.value) in (int, float, bool):
                        where.append(repr(a.value))
                    else:
                        return None
                found.append((call.__func__.__globals__[fn], where))
            case ast.Delete():
                pass
            case ast.Return(value=ast.Tuple(elts=[])):
                return found or None
            case _:
                return None
    return None


def _spelled(sources: list[str]) -> list[str]:
    """Dynamo's source names as expressions over ``(param, grad, states, i, step, kwargs)``:
    ``L['states'][1]`` becomes ``states[1][i]``; a 1-D size ``x.size()[0]`` becomes
    ``x.numel()``, so an N-D contiguous gradient needs no flattening view."""
    out = []
    for src in sources:
        src = re.sub(r"L\['(\w+)'\]", r"\1", src)
        src = re.sub(r"^states(\[\d+\])", r"states\1[i]", src)
        out.append(re.sub(r"\.size\(\)\[0\]$", ".numel()", src))
    return out


class DirectRule:
    """The rule compiled once for dense 1-D tensors of one signature, then called without
    Dynamo (see the module docstring). A graph that returns something (SGD's first step
    creates its buffer) keeps the Dynamo call."""

    def __init__(self, rule: Callable[..., Any], number: int) -> None:
        # A name of its own: Dynamo keeps its automatic-dynamic record per name, and a float
        # that differs between two signatures would otherwise become an input of the graph.
        self.rule = rule
        self.fn = compile_named(f"direct_{rule.__name__}_{number}")
        self.kernel: Kernel | None = None
        #: the graph's inputs for tensor ``i``: ``args(param, grad, states, i, step, kwargs)``
        self.args: Callable[..., list[Any]] | None = None
        #: the C++ kernels called on tensor ``i``: ``fast(…same…, extra)``, extra = hoisted
        self.fast: Callable[..., Any] | None = None
        self.compiled = False

    def _capture(self, built: list[Kernel], made: Any, frame: dict[str, Any]) -> None:
        """Keep the kernel of the first call if it can be called on other sizes as is."""
        if len(built) != 1 or made is not None or built[0].n_outputs != 0:
            return
        k = built[0]
        if any(src is None for src in k.sources) or not k.any_size:
            return  # an input Dynamo did not name, or a size specialised: only fits this call
        spelled = _spelled(k.sources)  # type: ignore[arg-type]
        head = "lambda param, grad, states, i, step, kwargs"
        try:
            args = eval(  # noqa: S307 (source names Dynamo generated, no user input)
                f"{head}: [{', '.join(spelled)}]", {"__builtins__": {}}
            )
            states = [None if s is None else [s] for s in frame["states"]]
            example = args(frame["param"], frame["grad"], states, 0, frame["step"], frame["kwargs"])
        except (SyntaxError, NameError, LookupError, TypeError, AttributeError):
            return
        if len(example) != len(k.kinds) or any(
            not isinstance(a, kind) for a, kind in zip(example, k.kinds, strict=True)
        ):
            return
        self.kernel, self.args = k, args
        calls = kernel_calls(k.kernel)
        if calls is None:
            return
        last = max((w for _, where in calls for w in where if isinstance(w, int)), default=0)
        spelled += [f"extra[{j}]" for j in range(last + 1 - len(example))]  # the hoisted
        body = ", ".join(
            f"k{n}({', '.join(w if isinstance(w, str) else spelled[w] for w in where)})"
            for n, (_, where) in enumerate(calls)
        )
        kernels = {f"k{n}": fn for n, (fn, _) in enumerate(calls)}
        self.fast = eval(f"{head}, extra: ({body},)", {"__builtins__": {}, **kernels})  # noqa: S307

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
        """Update each of the 1-D ``params`` (its ``grads`` may have any shape)."""
        out: list[Tensor | None] = [None] * len(params)
        start = 0
        if not self.compiled:
            st = states_at(states, 0)
            g = grads[0].reshape(-1)
            BUILT.clear()
            out[0] = self.through_dynamo(params[0], g, st, step, kwargs)
            frame = {"param": params[0], "grad": g, "states": st, "step": step, "kwargs": kwargs}
            self._capture(list(BUILT), out[0], frame)
            self.compiled, start = True, 1
        kernel, args, fast = self.kernel, self.args, self.fast
        extra: list[Any] = []
        if kernel is not None and args is not None and kernel.prelude is not None and (
            start < len(params)
        ):  # the hoisted scalars: the same step and lr for every tensor
            extra = list(kernel.prelude(*args(params[0], grads[0], states, 0, step, kwargs)))
        for i in range(start, len(params)):
            p, g = params[i], grads[i]
            if fast is not None and g.is_contiguous():
                fast(p, g, states, i, step, kwargs, extra)
                continue
            g = g.reshape(-1)
            if kernel is not None and args is not None and g.is_contiguous():
                kernel.kernel(*args(p, g, states, i, step, kwargs), *extra)
            else:
                out[i] = self.through_dynamo(p, g, states_at(states, i), step, kwargs)
        return out


#: one compiled kernel per (rule, signature); past this many signatures of one rule (a
#: scheduled weight decay…) the rule goes through Dynamo, whose floats then turn dynamic
MAX_DIRECT_SIGNATURES = 8
_DIRECT: dict[tuple[Callable[..., Any], tuple[Any, ...]], DirectRule] = {}
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


def call_direct(
    rule: Callable[..., Any],
    params: list[Tensor],
    grads: list[Tensor],
    states: list[list[Tensor] | None],
    step: Tensor,
    kwargs: dict[str, Any],
) -> list[Tensor | None]:
    """Run the compiled rule on each of the dense 1-D ``params``, whose state tensors are dense
    and 1-D too, of the same dtype and device (the caller's plan checked this once);
    ``grads[i]`` has ``params[i]``'s number of elements, in any shape."""
    signature = _signature(params[0], states, kwargs)
    runner = None if signature is None else _DIRECT.get((rule, signature))
    if runner is None and signature is not None and (
        sum(r is rule for r, _ in _DIRECT) < MAX_DIRECT_SIGNATURES
    ):
        runner = _DIRECT[rule, signature] = DirectRule(rule, next(_DIRECT_NUMBERS))
    if runner is None:  # through Dynamo, which wants 1-D gradients
        return call_rule(rule, params, [g.reshape(-1) for g in grads], states, step, kwargs)
    return runner(params, grads, states, step, kwargs)
