"""Per-layer telemetry: what the optimizer's step did, at the last step of each epoch.

:class:`Telemetry` wraps a train step (:func:`Telemetry.observe`); on the last batch of every
epoch it copies the parameters before the step, lets the step run unchanged, and then measures,
for each parameter tensor ("layer", named by its qualified name in the model, e.g.
``net.0.weight``) with g its gradient, p the parameter before the step and Δ = p_after − p:

=================================  ===========================================================
tag                                value
=================================  ===========================================================
``l2_norm/grad/<layer>``           ‖g‖₂
``l2_norm/param/<layer>``          ‖p‖₂ (before the step)
``l2_norm/update/<layer>``         ‖Δ‖₂
``l2_norm_ratio/update_param/…``   ‖Δ‖₂ / ‖p‖₂ (NaN when p = 0)
``cosine/update_grad/<layer>``     cos(Δ, −g) = −⟨Δ, g⟩ / (‖Δ‖₂‖g‖₂): 1 for plain SGD, less
                                   when momentum or per-coordinate scaling turn the step
                                   (NaN when Δ or g is zero)
``effective_lr/<layer>``           adaptive optimizers only: the mean over the layer's
                                   coordinates of the per-coordinate step size (below)
``l2_norm/grad/global``            ‖(g₁, g₂, …)‖₂ over every layer
``lr/group<i>``                    the learning rate of param group i
=================================  ===========================================================

The names follow Composer's ``OptimizerMonitor`` (``l2_norm/…``, ``cosine/update_grad/…``).
The gradient is read after the step: optimizers (ours and torch's) never modify ``p.grad``, so
it is the gradient the step used (after clipping); for closure optimizers (LBFGS, SAM) it is
the gradient of the closure's last evaluation.

The effective step size is the factor that multiplies the first-moment (or gradient) in the
update, read from the optimizer's state right after the step — the state that step used:

- Adam, AdamW (``exp_avg_sq`` = v, ``max_exp_avg_sq`` with amsgrad; ``step`` = t):
  lr / (1 − β₁ᵗ) / (√(v / (1 − β₂ᵗ)) + ε), so Δ = −(that)·m (plus AdamW's decay −lr·λ·p);
- Adamax (``exp_inf`` = u, the infinity norm, ε already inside): lr / (1 − β₁ᵗ) / u;
- RMSprop (``square_avg`` = v, ``grad_avg`` = ḡ when centered): lr / (√(v − ḡ²) + ε), the
  factor on g (momentum then accumulates g·(that)/lr);
- Adagrad (``sum`` = s): lr / (1 + (t − 1)·lr_decay) / (√s + ε);
- Adadelta (``square_avg`` = v and ``acc_delta`` = u *before* the step, which the step then
  updates): lr·√(u + ε) / √(v + ε).

Other optimizers get no ``effective_lr`` tags. Telemetry only reads: the trajectory is
bitwise the same with and without it (tested); off, fit does not wrap the step at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

TrainStep = Callable[[Tensor, Tensor], Tensor]
StepSize = Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], Tensor]


def adam_step_size(state: dict[str, Any], group: dict[str, Any], _before: dict[str, Any]
                   ) -> Tensor:
    """lr / (1 − β₁ᵗ) / (√(v / (1 − β₂ᵗ)) + ε) — torch's Adam/AdamW denominators."""
    beta1, beta2 = group["betas"]
    t = float(state["step"])
    v = state["max_exp_avg_sq"] if group.get("amsgrad") else state["exp_avg_sq"]
    return group["lr"] / (1 - beta1**t) / (v.sqrt() / math.sqrt(1 - beta2**t) + group["eps"])


def adamax_step_size(state: dict[str, Any], group: dict[str, Any], _before: dict[str, Any]
                     ) -> Tensor:
    """lr / (1 − β₁ᵗ) / u, with u = max(β₂·u, |g| + ε) (ε is inside torch's infinity norm)."""
    beta1, _ = group["betas"]
    return group["lr"] / (1 - beta1 ** float(state["step"])) / state["exp_inf"]


def rmsprop_step_size(state: dict[str, Any], group: dict[str, Any], _before: dict[str, Any]
                      ) -> Tensor:
    """lr / (√(v − ḡ²) + ε) when centered, lr / (√v + ε) otherwise."""
    v = state["square_avg"]
    if group.get("centered"):
        v = v - state["grad_avg"] ** 2
    return group["lr"] / (v.sqrt() + group["eps"])


def adagrad_step_size(state: dict[str, Any], group: dict[str, Any], _before: dict[str, Any]
                      ) -> Tensor:
    """lr / (1 + (t − 1)·lr_decay) / (√s + ε)."""
    clr = group["lr"] / (1 + (float(state["step"]) - 1) * group["lr_decay"])
    return clr / (state["sum"].sqrt() + group["eps"])


def adadelta_step_size(state: dict[str, Any], group: dict[str, Any], before: dict[str, Any]
                       ) -> Tensor:
    """lr·√(u + ε) / √(v + ε) with u the accumulated updates before this step (zeros, as the
    optimizer starts them, when this was the first step)."""
    eps, v = group["eps"], state["square_avg"]
    u = before.get("acc_delta", torch.zeros_like(v))
    return group["lr"] * (u + eps).sqrt() / (v + eps).sqrt()


#: optimizer class name → (state keys to copy before the step, step-size function); torch's
#: classes and optimlab's share names and state keys
STEP_SIZES: dict[str, tuple[tuple[str, ...], StepSize]] = {
    "Adam": ((), adam_step_size),
    "AdamW": ((), adam_step_size),
    "Adamax": ((), adamax_step_size),
    "RMSprop": ((), rmsprop_step_size),
    "Adagrad": ((), adagrad_step_size),
    "Adadelta": (("acc_delta",), adadelta_step_size),
}


class Telemetry:
    """Records the tags above at the last optimizer step of each epoch (see module doc)."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        names = {id(p): name for name, p in model.named_parameters()}
        self.optimizer = optimizer
        self.layers: list[tuple[str, Tensor, dict[str, Any]]] = [
            (names.get(id(p), f"group{i}.param{j}"), p, group)
            for i, group in enumerate(optimizer.param_groups)
            for j, p in enumerate(group["params"])]
        self._step_size = STEP_SIZES.get(type(optimizer).__name__)
        self._values: dict[str, float] = {}

    def observe(self, step: TrainStep, steps_per_epoch: int) -> TrainStep:
        """``step`` measured on every ``steps_per_epoch``-th call (an epoch's last batch)."""
        calls = 0

        def observed(x: Tensor, y: Tensor) -> Tensor:
            nonlocal calls
            calls += 1
            if calls % steps_per_epoch:
                return step(x, y)
            before = self._before()
            loss = step(x, y)
            self._values = self.measure(before)
            return loss

        return observed

    def pop(self) -> dict[str, float]:
        """The last measured epoch's values (tag → float); empty if none since the last pop."""
        values, self._values = self._values, {}
        return values

    def _before(self) -> dict[int, dict[str, Any]]:
        keys = self._step_size[0] if self._step_size else ()
        state = self.optimizer.state
        with torch.no_grad():
            return {id(p): {"param": p.detach().clone(),
                            **{k: state[p][k].clone() for k in keys if k in state.get(p, {})}}
                    for _, p, _ in self.layers}

    @torch.no_grad()
    def measure(self, before: dict[int, dict[str, Any]]) -> dict[str, float]:
        """The tags for the step that went from ``before`` to the current parameters."""
        tensors: dict[str, Tensor] = {}
        grad_squares = []
        for name, p, group in self.layers:
            if p.grad is None:
                continue
            g, old = p.grad.detach(), before[id(p)]["param"]
            delta = p.detach() - old
            g_norm, p_norm, d_norm = g.norm(), old.norm(), delta.norm()
            tensors[f"l2_norm/grad/{name}"] = g_norm
            tensors[f"l2_norm/param/{name}"] = p_norm
            tensors[f"l2_norm/update/{name}"] = d_norm
            tensors[f"l2_norm_ratio/update_param/{name}"] = d_norm / p_norm
            tensors[f"cosine/update_grad/{name}"] = -(delta * g).sum() / (d_norm * g_norm)
            grad_squares.append(g_norm.square())
            state = self.optimizer.state.get(p)
            if self._step_size is not None and state:
                size = self._step_size[1](state, group, before[id(p)])
                tensors[f"effective_lr/{name}"] = size.float().mean()
        if grad_squares:
            tensors["l2_norm/grad/global"] = torch.stack(grad_squares).sum().sqrt()
        device = next(iter(tensors.values())).device if tensors else None
        values = torch.stack([t.float().to(device) for t in tensors.values()]).tolist() if (
            tensors) else []  # one host sync for all of them
        out = {tag: (v if math.isfinite(v) else math.nan)
               for tag, v in zip(tensors, values, strict=True)}
        for i, group in enumerate(self.optimizer.param_groups):
            out[f"lr/group{i}"] = float(group["lr"])
        return out
