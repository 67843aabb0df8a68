"""The learning-rate range test: train briefly while the lr grows, read a good lr off the curve.

Smith's LR range test (arXiv:1506.01186, §3.3), as ``torch-lr-finder`` 0.2.2 runs it (its
``range_test`` with ``step_mode="exp"``) and fastai's ``lr_find``:

- step i of n (i = 0 … n−1) trains one batch at  lr_i = lr_min · (lr_max / lr_min)^(i/(n−1)),
  so the first step uses ``min_lr`` and the last ``max_lr``;
- the batch losses ℓ_i are smoothed by an exponential moving average *without* bias
  correction (torch-lr-finder's convention): s_0 = ℓ_0, s_i = β·ℓ_i + (1−β)·s_{i−1}, β = 0.05;
- the test stops after the first step whose s_i > ``diverge_th`` · min_{j≤i} s_j (5, as
  torch-lr-finder; fastai uses 4), that step included;
- the model and the optimizer (state and lrs) are restored afterwards.

Two suggestions are read from the smoothed curve with the first ``skip_start`` = 10 and last
``skip_end`` = 5 points left out (both libraries' defaults):

- ``min_loss_div10`` (fastai's older ``lr_min``): the lr of the lowest s, divided by 10 — the
  minimum sits at the edge of divergence, so a tenth of it is a cautious choice. This is
  :attr:`LRFindResult.suggestion`, printed first and used by ``lr=find``.
- ``steepest`` (torch-lr-finder's ``plot(suggest_lr=True)``): the lr where ``numpy.gradient``
  of s is most negative — the loss falling fastest per step, i.e. per decade of lr, since the
  steps are evenly spaced in log lr. Matched exactly against torch-lr-finder; printed second.

Why min-loss/10 first (measured, digits / mlp, defaults 1e-7 → 10 over 100 steps, then 10
epochs at the suggested lr, seed 0): steepest gave SGD (momentum 0.9) 0.614 → diverged,
Adam 0.138 → 50.7 % test accuracy, RMSprop 0.0453 → 35.9 %; min-loss/10 gave 0.0614 →
95.3 %, 0.0138 → 93.6 %, 0.000486 → 94.2 %. With β = 0.05 the average remembers ~20 steps,
1.6 decades of lr at these settings, so the smoothed curve falls steepest late, next to the
divergence; a tenth of the minimum stays clear of it.

Deviation: torch-lr-finder keeps going after a non-finite loss (NaN compares false with its
threshold); this test stops there, as a diverged run.

Example::

    result = lr_range_test(model, opt, data, min_lr=1e-6, max_lr=1.0, steps=100, seed=0)
    result.suggestion, result.lrs[:3], result.smoothed[:3]
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from optimlab.data import Dataset, Split, device_batches
from optimlab.engine.evaluate import loss_function
from optimlab.engine.step import OptimizerModes, TrainStep, make_train_step
from optimlab.errors import UserError

SKIP_START, SKIP_END = 10, 5


@dataclass(frozen=True)
class LRFindResult:
    """The curve of one range test and the learning rates suggested from it."""

    lrs: list[float]  # the lr of each step taken
    losses: list[float]  # the batch loss of each step (before smoothing)
    smoothed: list[float]  # the EMA of the losses that the stop and suggestions use
    steepest: float | None  # lr of the steepest descent of ``smoothed``; None: too few points
    min_loss_div10: float | None  # lr of the lowest ``smoothed`` / 10; None: too few points
    stopped_early: bool  # True when the smoothed loss diverged before the last step
    settings: dict[str, Any]  # min_lr, max_lr, steps, smooth, diverge_th, skip_start, …

    @property
    def suggestion(self) -> float | None:
        """The lr to use: the min-loss/10 rule (see the module docstring for why)."""
        return self.min_loss_div10

    def to_dict(self) -> dict[str, Any]:
        """The ``lr_find.json`` content."""
        return {"lrs": self.lrs, "losses": self.losses, "smoothed": self.smoothed,
                "suggestion": self.suggestion, "suggestion_rule": "min_loss_div10",
                "steepest": self.steepest, "min_loss_div10": self.min_loss_div10,
                "stopped_early": self.stopped_early, "steps_run": len(self.lrs),
                **self.settings}


def exponential_lrs(min_lr: float, max_lr: float, steps: int) -> list[float]:
    """lr_i = min·(max/min)^(i/(n−1)) for i = 0 … n−1 (torch-lr-finder's expression)."""
    return [min_lr * (max_lr / min_lr) ** (i / (steps - 1)) for i in range(steps)]


def check_range(min_lr: float, max_lr: float, steps: int) -> None:
    """UserError unless 0 < min_lr < max_lr and steps >= 2."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise UserError(f"--steps must be an integer >= 2 (the lr goes from --min-lr to "
                        f"--max-lr over the steps), got {steps!r}")
    if not (min_lr > 0 and math.isfinite(min_lr)):
        raise UserError(f"--min-lr must be a number > 0, got {min_lr!r}")
    if not (max_lr > min_lr and math.isfinite(max_lr)):
        raise UserError(f"--min-lr must be below --max-lr, got --min-lr {min_lr:g} "
                        f"--max-lr {max_lr:g}")


def suggestions(lrs: list[float], smoothed: list[float], skip_start: int = SKIP_START,
                skip_end: int = SKIP_END) -> tuple[float | None, float | None]:
    """(steepest, min_loss_div10) over the curve less its first and last points."""
    import numpy as np

    if len(lrs) < skip_start + skip_end + 2:
        return None, None
    end = len(lrs) - skip_end
    window_lrs, window = lrs[skip_start:end], np.array(smoothed[skip_start:end])
    steepest = window_lrs[int(np.gradient(window).argmin())]
    return float(steepest), float(window_lrs[int(window.argmin())]) / 10


def cycled_batches(split: Split, batch_size: int, seed: int) -> Iterator[tuple[Tensor, Tensor]]:
    """Batches in :func:`optimlab.engine.fit`'s order for ``seed``, epoch after epoch."""
    generator = torch.Generator().manual_seed(seed)
    while True:
        yield from device_batches(split, batch_size, generator)


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def lr_range_test(
    model: nn.Module, optimizer: torch.optim.Optimizer, data: Dataset, *,
    min_lr: float = 1e-7, max_lr: float = 10.0, steps: int = 100, batch_size: int = 64,
    seed: int = 0, loss: str | None = None, smooth: float = 0.05, diverge_th: float = 5.0,
) -> LRFindResult:
    """Run the range test on ``data.train``; the model and optimizer are restored afterwards.

    Args: ``min_lr``/``max_lr`` (1e-7 / 10) the first and last lr; ``steps`` (100) batches;
    ``batch_size`` and ``seed`` give the batches (fit's order for that seed); ``loss`` as in
    fit (cross-entropy or MSE by task); ``smooth`` (0.05) the EMA weight of the new loss;
    ``diverge_th`` (5) the stop threshold as a multiple of the lowest smoothed loss.
    """
    check_range(min_lr, max_lr, steps)
    if not 0 <= smooth < 1:
        raise UserError(f"smooth must be in [0, 1), got {smooth!r}")
    if len(data.train) == 0:
        raise UserError(f"dataset {data.name!r} has no training examples")
    step = make_train_step(model, optimizer, loss_function(loss, data.task))
    modes = OptimizerModes(optimizer)
    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    try:
        modes.train()
        curve = _run(model, optimizer, step, cycled_batches(data.train, batch_size, seed),
                     exponential_lrs(min_lr, max_lr, steps), smooth, diverge_th)
    finally:
        modes.eval()
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
    lrs, losses, smoothed, stopped = curve
    steepest, min_div10 = suggestions(lrs, smoothed)
    settings = {"min_lr": min_lr, "max_lr": max_lr, "steps": steps, "batch_size": batch_size,
                "seed": seed, "smooth": smooth, "diverge_th": diverge_th,
                "skip_start": SKIP_START, "skip_end": SKIP_END}
    return LRFindResult(lrs, losses, smoothed, steepest, min_div10, stopped, settings)


def _run(model: nn.Module, optimizer: torch.optim.Optimizer, step: TrainStep,
         batches: Iterator[tuple[Tensor, Tensor]], schedule: list[float], smooth: float,
         diverge_th: float) -> tuple[list[float], list[float], list[float], bool]:
    """Train one batch per lr of ``schedule``; stop when the smoothed loss diverges."""
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    best = math.inf
    model.train()
    for i, lr in enumerate(schedule):
        _set_lr(optimizer, lr)
        raw = step(*next(batches)).item()  # fit's step: closures (LBFGS, SAM) honoured
        s = raw if i == 0 else smooth * raw + (1 - smooth) * smoothed[-1]  # s_i = β·ℓ + (1-β)·s
        best = min(best, s)
        lrs.append(lr)
        losses.append(raw)
        smoothed.append(s)
        if not math.isfinite(s) or s > diverge_th * best:
            return lrs, losses, smoothed, i < len(schedule) - 1
    return lrs, losses, smoothed, False
