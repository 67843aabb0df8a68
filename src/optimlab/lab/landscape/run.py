"""Run optimizers on a 2-D test function: every one from the same point, for the same steps.

The parameter is one float64 tensor ``[x, y]``; each step evaluates f, back-propagates, adds
the seeded gradient noise (the same draws for every optimizer: common random numbers) and calls
``optimizer.step`` — the loop the seeds train with, on two coordinates. A run whose point leaves
the function's domain or stops being finite is cut at its last point inside and marked
``diverged``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from optimlab.errors import UserError
from optimlab.lab.landscape.functions import FUNCTIONS, Point, TestFunction
from optimlab.lab.spec import Spec, build_optimizer, parse_spec, unique_names

#: the default comparison's optimizers (lab.config.DEFAULT_SUITE), with learning rates that
#: make visible progress on Rosenbrock from (−1.5, 2) in 500 steps. The SGD family keeps lr
#: 1e-3. Adagrad, RMSprop and Adam at the default 1e-3 move only 0.05, 0.19 and 0.08 from the
#: start in 500 steps (measured), so they get 0.5, 0.01 and 0.05; Adadelta keeps lr 1.0.
#: Measured end points (float64, no noise): SGD (−1.11, 1.25) f 4.5; momentum 0.9
#: (0.93, 0.87) f 0.0044; 0.99 (0.86, 0.70) f 0.097; 0.99 + weight decay (1.04, 1.07) f 0.0038;
#: Nesterov 0.99 overshoots out of the domain (y > 3) at step 43: diverged; Adagrad
#: (−0.98, 0.96) f 3.9; RMSprop (0.01, 0.00) f 0.98; Adam (0.67, 0.44) f 0.11; Adadelta
#: (−0.99, 1.00) f 4.0. The minimum is f(1, 1) = 0.
LANDSCAPE_SUITE: tuple[str, ...] = (
    "sgd:lr=1e-3",
    "sgd:lr=1e-3,momentum=0.9",
    "sgd:lr=1e-3,momentum=0.99",
    "sgd:lr=1e-3,momentum=0.99,weight_decay=1e-3",
    "sgd:lr=1e-3,momentum=0.99,nesterov=true",
    "adagrad:lr=0.5",
    "rmsprop:lr=0.01",
    "adam:lr=0.05",
    "adadelta:lr=1.0",
)
DEFAULT_STEPS = 500
MAX_STEPS = 100_000
SEED_MAX = 2**63 - 1  # torch.Generator seeds are 64-bit


@dataclass(frozen=True)
class Trajectory:
    """One optimizer's path: ``path[i]`` after ``i`` steps, ``loss[i] = f(path[i])``."""

    name: str  # unique label, e.g. ``adam(lr=0.05)``
    spec: str  # the spec as written
    path: list[Point]  # the start first; N+1 points unless diverged
    loss: list[float]  # f (without noise) at each point of ``path``
    status: str  # "finished" or "diverged" (left the domain or not finite)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "spec": self.spec, "path": [list(p) for p in self.path],
                "loss": self.loss, "status": self.status}


def get_function(name: str) -> TestFunction:
    """The test function called ``name`` (UserError listing the valid names)."""
    fn = FUNCTIONS.get(name.lower()) if isinstance(name, str) else None
    if fn is None:
        raise UserError(f"unknown function {name!r}; valid: {', '.join(FUNCTIONS)}")
    return fn


def parse_point(text: str) -> Point:
    """``"X,Y"`` as two finite floats (UserError otherwise)."""
    parts = text.split(",")
    try:
        x, y = (float(p) for p in parts)
    except ValueError:
        raise UserError(f"bad point {text!r}; expected X,Y such as -1.5,2") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise UserError(f"bad point {text!r}; both coordinates must be finite")
    return x, y


def check_settings(fn: TestFunction, start: Point, steps: int, noise: float, seed: int = 0
                   ) -> None:
    """UserError for a start outside the domain, steps outside 1…MAX_STEPS, bad noise or a
    seed outside 0…2**63−1."""
    if not fn.contains(*start):
        (x0, x1), (y0, y1) = fn.domain
        raise UserError(f"start {start[0]:g},{start[1]:g} is outside {fn.name}'s domain "
                        f"x in [{x0:g}, {x1:g}], y in [{y0:g}, {y1:g}]")
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise UserError(f"steps must be an integer in 1…{MAX_STEPS}, got {steps!r}")
    if isinstance(noise, bool) or not isinstance(noise, int | float) or not (
            math.isfinite(noise) and noise >= 0):
        raise UserError(f"noise must be a finite number >= 0 (the gradient noise's standard "
                        f"deviation), got {noise!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise UserError(f"seed must be an integer in 0…2**63-1, got {seed!r}")


def plan_specs(texts: tuple[str, ...] | list[str]) -> list[tuple[Spec, str]]:
    """Parse and check every optimizer spec on a 2-element parameter; name them uniquely."""
    specs = [parse_spec(t) for t in texts]
    if not specs:
        raise UserError("no optimizer given; expected at least one --optimizer SPEC")
    for spec in specs:
        build_optimizer(spec, [torch.zeros(2, dtype=torch.float64, requires_grad=True)])
    return list(zip(specs, unique_names([s.label for s in specs]), strict=True))


def run_path(fn: TestFunction, spec: Spec, *, start: Point, steps: int, noise: float = 0.0,
             seed: int = 0, name: str | None = None) -> Trajectory:
    """Run the optimizer ``spec`` names for ``steps`` steps on ``fn`` from ``start``.

    The gradient noise is ``noise · N(0, I)`` drawn from a generator seeded with ``seed``, so
    every optimizer run with the same seed sees the same noise at the same step. The optimizer
    receives a closure (so ``torch.LBFGS`` works too; its inner evaluations draw noise as well).
    Optimizers with ``train()``/``eval()`` modes (Schedule-Free) stay in train mode: the path is
    the point where they take gradients, not their averaged evaluation point.
    """
    from optimlab.engine.step import OptimizerModes

    point = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    optimizer = build_optimizer(spec, [point])
    OptimizerModes(optimizer).train()  # Schedule-Free: the path is its train-mode point
    generator = torch.Generator().manual_seed(seed)
    values: list[torch.Tensor] = []  # f at each closure call; the first of a step is f(path[i])

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        value = fn(*point.unbind())
        value.backward()
        if noise > 0:
            assert point.grad is not None
            point.grad = point.grad + noise * torch.randn(
                2, generator=generator, dtype=torch.float64)
        values.append(value.detach())
        return value

    path, losses, status = [start], [], "finished"
    for _ in range(steps):
        values.clear()
        if getattr(type(optimizer), "requires_closure", False):
            closure()  # SAM: the gradient at the point first, as fit's first pass
        optimizer.step(closure)
        losses.append(float(values[0]) if values else _value(fn, point))
        x, y = point.detach().tolist()
        if not fn.contains(x, y):
            status = "diverged"
            break
        path.append((x, y))
    if status == "finished":
        losses.append(_value(fn, point))
    return Trajectory(name or spec.label, spec.text, path, losses, status)


def _value(fn: TestFunction, point: torch.Tensor) -> float:
    with torch.no_grad():
        return float(fn(*point.unbind()))
