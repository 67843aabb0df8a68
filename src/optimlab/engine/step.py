"""One optimisation step on a batch, and the optimizer protocols the fit loop honours.

- **Plain optimizers** (``optimizer.step()``): forward, loss, backward, optional clipping,
  step. The batch loss stays on the device (no host sync), so an epoch syncs once.
- **Closure optimizers** (:func:`needs_closure`: torch's LBFGS, SAM-style optimizers): the
  first pass (forward + backward) is done as above, then ``optimizer.step(closure)`` where the
  closure zeroes the gradients and redoes forward + backward at the optimizer's current
  parameters. SAM calls it once, for its second pass at the perturbed weights; LBFGS calls it
  for every function evaluation of its line search (its first call repeats the first pass:
  one extra forward/backward per step, the price of one protocol for both). BatchNorm (any
  module tracking running statistics) updates its running statistics on the first pass only:
  the closure's passes run in training mode (batch statistics, as the gradient needs) but
  their running-statistics updates are undone.
- **Optimizers with modes** (:class:`OptimizerModes`: Schedule-Free's ``train()``/``eval()``,
  which swap the model between the training and the averaged weights): the fit loop calls
  ``train()`` before an epoch's steps and ``eval()`` right after them, every epoch — so
  validation, early stopping, checkpoints and the returned model all see the evaluation
  weights, and a resumed run makes exactly the same swaps as an uninterrupted one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from torch import Tensor, nn

TrainStep = Callable[[Tensor, Tensor], Tensor]


def needs_closure(optimizer: torch.optim.Optimizer) -> bool:
    """True when ``optimizer.step`` must be given a closure.

    That is when its ``closure`` parameter has no default (torch's ``LBFGS``), or when the
    class declares ``requires_closure = True`` (the way to mark SAM-style optimizers, whose
    ``step(closure=None)`` raises without one).
    """
    if getattr(type(optimizer), "requires_closure", False) is True:
        return True
    parameter = inspect.signature(optimizer.step).parameters.get("closure")
    return parameter is not None and parameter.default is inspect.Parameter.empty


class OptimizerModes:
    """Calls the optimizer's ``train()``/``eval()`` when it has both (Schedule-Free), else
    nothing. ``torch.optim.Optimizer`` has neither, so plain optimizers are unaffected."""

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        train, evaluate = getattr(optimizer, "train", None), getattr(optimizer, "eval", None)
        self.active = callable(train) and callable(evaluate)
        self._train = train if self.active else None
        self._eval = evaluate if self.active else None

    def train(self) -> None:
        if self._train is not None:
            self._train()

    def eval(self) -> None:
        if self._eval is not None:
            self._eval()


def _stat_tracking(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if getattr(m, "track_running_stats", False)]


@contextmanager
def _running_stats_kept(modules: list[nn.Module]) -> Iterator[None]:
    """Undo, on exit, what forward passes did to these modules' buffers (running stats)."""
    saved = [(m, {n: b.clone() for n, b in m.named_buffers(recurse=False) if b is not None})
             for m in modules]
    try:
        yield
    finally:
        with torch.no_grad():
            for module, buffers in saved:
                for name, value in buffers.items():
                    getattr(module, name).copy_(value)


def make_train_step(
    model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable[..., Tensor],
    clip_grad_norm: float | None = None, compile: bool = False, closure: bool | None = None,
) -> TrainStep:
    """One optimisation step on a batch; returns the detached batch loss (no host sync).

    The loss is the first pass's: the loss at the parameters before the step. ``closure``
    None asks :func:`needs_closure`. With ``compile=True`` the plain step (forward, loss,
    backward, clipping, optimizer step) — or, for a closure optimizer, its forward/backward —
    is handed to ``torch.compile`` with static shapes (``dynamic=False``): the smaller last
    batch gets its own graph instead of turning every batch's graph dynamic, which measured
    slower.
    """
    params = [p for g in optimizer.param_groups for p in g["params"]]

    def forward_backward(x: Tensor, y: Tensor) -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        if clip_grad_norm is not None:
            nn.utils.clip_grad_norm_(params, clip_grad_norm)
        return loss

    if not (needs_closure(optimizer) if closure is None else closure):
        def step(x: Tensor, y: Tensor) -> Tensor:
            loss = forward_backward(x, y)
            optimizer.step()
            return loss.detach()

        return torch.compile(step, dynamic=False) if compile else step

    passes: Any = torch.compile(forward_backward, dynamic=False) if compile else forward_backward
    tracking = _stat_tracking(model)

    def closure_step(x: Tensor, y: Tensor) -> Tensor:
        loss = passes(x, y)  # first pass: the only one that updates running statistics

        def again() -> Tensor:
            with _running_stats_kept(tracking) if tracking else nullcontext():
                return passes(x, y)

        optimizer.step(again)  # type: ignore[arg-type]  # torch's hint says float; LBFGS
        # calls float() on it, SAM ignores it: a tensor serves both
        return loss.detach()

    return closure_step
