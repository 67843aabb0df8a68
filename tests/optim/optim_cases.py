"""The one table of optimizers under test, and the parity harness every optim test shares.

Each :class:`Algo` row pairs an optimlab class with its reference (``torch.optim``'s class,
or a reference package's) and the reference's sample inputs. The parity suite
(test_optim_parity.py), the API and state suites, the ``fused=True`` suite (test_fused.py) and
``benchmarks/optim_step.py`` all read :data:`ALGOS`; nothing else names the optimizers.

Adding an optimizer here is one row::

    Algo("nadam", oo.NAdam, torch.optim.NAdam,
         co.optim_inputs_func_nadam, co.optim_error_inputs_func_nadam,
         hparams={"lr": 1e-3}, flags={"weight_decay": 0.1, "decoupled_weight_decay": True})

``inputs``/``error_inputs`` are torch's ``optim_inputs_func_<algo>`` and
``optim_error_inputs_func_<algo>`` (``torch.testing._internal.common_optimizers``); a reference
outside torch passes functions returning the same kinds of objects (or :func:`no_inputs`),
sets ``reference_kwargs`` to what selects its for-loop path (``{}`` where there is no choice)
and ``torch_api=False``: the suites of torch's API (signatures, error messages, AMP…) then
leave it out (:data:`TORCH_ALGOS`), and its own test file covers its reference's API.
``hparams`` is a typical setting (the fused suite's first case, the benchmark's), ``flags``
the main options turned on together (the fused suite's second case). A row whose reference has
no ``fused=True`` is benchmarked against the reference's best other path.

:func:`run_parity` trains ours and the reference side by side on the same gradients and
reports the first difference, bit for bit.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import lion_pytorch
import pytest
import schedulefree
import torch
from torch.testing._internal import common_optimizers as co

import optimlab.optim as oo


@dataclass(frozen=True)
class Algo:
    name: str  # registry name
    ours: type[torch.optim.Optimizer]
    theirs: type[torch.optim.Optimizer]  # the reference
    inputs: Callable[..., list[Any]]  # torch's optim_inputs_func_<algo>
    error_inputs: Callable[..., list[Any]]  # torch's optim_error_inputs_func_<algo>
    #: a typical setting: the fused suite's plain case and the benchmark's hyperparameters
    hparams: Mapping[str, Any] = field(default_factory=lambda: {"lr": 1e-3})
    #: the main options at once (added to ``hparams``): the fused suite's second case
    flags: Mapping[str, Any] = field(default_factory=dict)
    #: (atol, rtol) of fused=True against the reference's for-loop in float32: torch's own
    #: fused-vs-for-loop tolerance (test_optim's assertEqual defaults) unless stated
    fused_tol32: tuple[float, float] = (1e-5, 1.3e-6)
    #: what makes the reference run its for-loop (the parity and fused suites' reference)
    reference_kwargs: Mapping[str, Any] = field(default_factory=lambda: {"foreach": False})
    #: whether the reference is torch.optim's (the torch-API suites run only for those)
    torch_api: bool = True

    def __str__(self) -> str:
        return self.name

    def reference(self, params: Any, **kwargs: Any) -> torch.optim.Optimizer:
        """The reference's for-loop optimizer over ``params``, ready to step (Schedule-Free's
        in train mode)."""
        opt = self.theirs(params, **kwargs, **self.reference_kwargs)
        if hasattr(opt, "train"):
            opt.train()
        return opt


def no_inputs(*_: Any) -> list[Any]:
    """The sample inputs of a reference outside torch: none (its own tests cover its flags)."""
    return []


ALGOS = (
    Algo("sgd", oo.SGD, torch.optim.SGD, co.optim_inputs_func_sgd, co.optim_error_inputs_func_sgd,
         hparams={"lr": 0.1, "momentum": 0.9},
         flags={"nesterov": True, "weight_decay": 0.01, "maximize": True}),
    Algo("adagrad", oo.Adagrad, torch.optim.Adagrad, co.optim_inputs_func_adagrad,
         co.optim_error_inputs_func_adagrad, hparams={"lr": 0.1},
         flags={"lr_decay": 0.01, "weight_decay": 0.1, "maximize": True,
                "initial_accumulator_value": 0.1}),
    Algo("rmsprop", oo.RMSprop, torch.optim.RMSprop, co.optim_inputs_func_rmsprop,
         co.optim_error_inputs_func_rmsprop, hparams={"lr": 0.01},
         flags={"centered": True, "momentum": 0.9, "weight_decay": 0.1}),
    Algo("adam", oo.Adam, torch.optim.Adam, co.optim_inputs_func_adam,
         co.optim_error_inputs_func_adam, hparams={"lr": 0.01},
         flags={"amsgrad": True, "weight_decay": 0.1, "maximize": True}),
    Algo("adamw", oo.AdamW, torch.optim.AdamW, co.optim_inputs_func_adamw,
         co.optim_error_inputs_func_adamw, hparams={"lr": 0.01}, flags={"amsgrad": True}),
    # torch's compiled-vs-eager override for Adadelta's chain of square roots (optim_db)
    Algo("adadelta", oo.Adadelta, torch.optim.Adadelta, co.optim_inputs_func_adadelta,
         co.optim_error_inputs_func_adadelta, hparams={"lr": 1.0},
         flags={"lr": 0.5, "weight_decay": 0.1, "maximize": True}, fused_tol32=(5e-5, 5.5e-4)),
    Algo("radam", oo.RAdam, torch.optim.RAdam, co.optim_inputs_func_radam,
         co.optim_error_inputs_func_radam, hparams={"lr": 1e-3},
         flags={"weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True}),
    Algo("adamax", oo.Adamax, torch.optim.Adamax, co.optim_inputs_func_adamax,
         co.optim_error_inputs_func_adamax, hparams={"lr": 2e-3},
         flags={"weight_decay": 0.1, "maximize": True}),
    Algo("nadam", oo.NAdam, torch.optim.NAdam, co.optim_inputs_func_nadam,
         co.optim_error_inputs_func_nadam, hparams={"lr": 2e-3},
         flags={"weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True}),
    Algo("lion", oo.Lion, lion_pytorch.Lion, no_inputs, no_inputs, hparams={"lr": 1e-3},
         flags={"weight_decay": 0.1, "betas": (0.95, 0.98)}, reference_kwargs={},
         torch_api=False),
    Algo("sgd_schedulefree", oo.SGDScheduleFree, schedulefree.SGDScheduleFree, no_inputs,
         no_inputs, hparams={"lr": 0.1}, flags={"weight_decay": 0.1, "warmup_steps": 3},
         torch_api=False),
    Algo("adamw_schedulefree", oo.AdamWScheduleFree, schedulefree.AdamWScheduleFree,
         no_inputs, no_inputs, hparams={"lr": 0.01},
         flags={"weight_decay": 0.1, "warmup_steps": 3, "betas": (0.95, 0.99)},
         torch_api=False),
)
BY_NAME = {a.name: a for a in ALGOS}
#: the rows whose reference is torch.optim's: the suites of torch's API run over these
TORCH_ALGOS = tuple(a for a in ALGOS if a.torch_api)

# Flags we do not honour: an input using them is skipped, with the reason in its test id.
UNHONOURED = ("capturable", "differentiable")


def _slug(text: str) -> str:
    return "-".join(text.replace(",", " ").split()) or "default"


def torch_input_params() -> list[Any]:
    """One pytest.param per (algorithm, torch sample input) offered for any device.

    torch offers some inputs only for CUDA or MPS. Those that are device-neutral (e.g. a tensor
    lr) run here on CPU, tagged with their origin; those using a flag we don't honour are kept
    and marked skip with the reason in their id, so nothing is dropped silently.
    """
    out = []
    for algo in ALGOS:
        seen: dict[str, tuple[str, Any]] = {}
        for device in ("cpu", "cuda", "mps"):
            for inp in algo.inputs(device):
                seen.setdefault(inp.desc, (device, inp))
        for device, inp in seen.values():
            pid = f"{algo.name}-{_slug(inp.desc)}"
            if device != "cpu":
                pid += f"-from-{device}-inputs"
            flags = [f for f in UNHONOURED if inp.kwargs.get(f)]
            marks = ()
            if flags:
                reason = f"{'+'.join(flags)} not honoured"
                pid += f"-SKIP[{_slug(reason)}]"
                marks = (pytest.mark.skip(reason=reason),)
            out.append(pytest.param(algo, dict(inp.kwargs), id=pid, marks=marks))
            rest = {k: v for k, v in inp.kwargs.items() if k not in flags}
            if flags and rest not in [i.kwargs for _, i in seen.values()]:
                # The rest of the configuration still applies: run it without the flag.
                rid = f"{algo.name}-{_slug(inp.desc)}-without-{'+'.join(flags)}"
                out.append(pytest.param(algo, rest, id=rid))
    return out


def default_lr(cls: type) -> float:
    return float(inspect.signature(cls).parameters["lr"].default)


def make_params(dtype: torch.dtype, seed: int = 0) -> list[torch.Tensor]:
    """Leaf tensors covering the layouts torch handles specially.

    Index 3 never gets a gradient; index 4 always gets zeros.
    """
    gen = torch.Generator().manual_seed(seed)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, dtype=dtype, generator=gen)

    tensors = [
        randn(4, 5),  # contiguous
        randn(5, 4).t(),  # non-contiguous, dense (state keeps the strides)
        randn(6, 8)[:, ::2],  # non-contiguous with gaps
        randn(3),  # grad is always None: skipped, no state
        randn(2, 3),  # zero gradients
        randn(()),  # 0-dim
    ]
    return [t.requires_grad_() for t in tensors]


NO_GRAD, ZERO_GRAD = 3, 4


def make_groups(params: list[torch.Tensor], kwargs: dict[str, Any], cls: type) -> list[dict]:
    """Two param groups; the second has its own (float) learning rate."""
    lr = kwargs.get("lr", default_lr(cls))
    return [{"params": params[:3]}, {"params": params[3:], "lr": 0.5 * float(lr)}]


def make_grads(params: list[torch.Tensor], gen: torch.Generator) -> list[torch.Tensor | None]:
    grads: list[torch.Tensor | None] = []
    for i, p in enumerate(params):
        if i == NO_GRAD:
            grads.append(None)
        elif i == ZERO_GRAD:
            grads.append(torch.zeros_like(p))
        else:
            grads.append(torch.randn(p.shape, dtype=p.dtype, generator=gen))
    return grads


def set_grads(params: list[torch.Tensor], grads: list[torch.Tensor | None]) -> None:
    for p, g in zip(params, grads, strict=True):
        p.grad = None if g is None else g.clone()


def diff_states(ours: torch.optim.Optimizer, theirs: torch.optim.Optimizer) -> str | None:
    """The first difference between two optimizers' per-parameter state, or None."""
    a, b = ours.state_dict()["state"], theirs.state_dict()["state"]
    if a.keys() != b.keys():
        return f"state entries differ: {sorted(a)} vs {sorted(b)}"
    for idx in a:
        if a[idx].keys() != b[idx].keys():
            return f"param {idx}: state keys {sorted(a[idx])} vs {sorted(b[idx])}"
        for key, x in a[idx].items():
            y = b[idx][key]
            if x.dtype != y.dtype or x.device != y.device or x.stride() != y.stride():
                return f"param {idx} {key}: {x.dtype}/{x.stride()} vs {y.dtype}/{y.stride()}"
            if not torch.equal(x, y):
                return f"param {idx} {key}: values differ"
    return None


def step_both(
    pairs: list[tuple[torch.optim.Optimizer, list[torch.Tensor]]],
    steps: int,
    gen: torch.Generator,
) -> str | None:
    """Step each (optimizer, params) on the same gradients; first param difference or None.

    With a single pair this just trains it; with two it compares them after every step.
    """
    reference = pairs[0][1]
    for t in range(1, steps + 1):
        grads = make_grads(reference, gen)
        for opt, params in pairs:
            set_grads(params, grads)
            opt.step()
            for p, g in zip(params, grads, strict=True):  # the rule must never touch grad
                if g is not None and not torch.equal(p.grad, g):
                    return f"step {t}: {type(opt).__module__} modified a gradient"
        for i, (a, b) in enumerate(zip(pairs[0][1], pairs[-1][1], strict=True)):
            if not torch.equal(a, b):
                return f"step {t}: param {i} differs"
    return None


def run_parity(
    algo: Algo,
    kwargs: dict[str, Any],
    dtype: torch.dtype,
    steps: int = 200,
    ours_kwargs: dict[str, Any] | None = None,
) -> str | None:
    """Train ours and the reference's for-loop side by side: the first difference, or None."""
    ours_p, theirs_p = make_params(dtype), make_params(dtype)
    ours = algo.ours(make_groups(ours_p, kwargs, algo.ours), **kwargs, **(ours_kwargs or {}))
    if hasattr(ours, "train"):
        ours.train()
    theirs = algo.reference(make_groups(theirs_p, kwargs, algo.theirs), **kwargs)
    gen = torch.Generator().manual_seed(1)
    problem = step_both([(ours, ours_p), (theirs, theirs_p)], steps, gen)
    return problem or diff_states(ours, theirs)
