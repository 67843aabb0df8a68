"""Early stopping on a monitored value, as a plain object with ``state_dict``."""

from __future__ import annotations

import math
from typing import Any

from torch import nn

from optimlab.errors import UserError


class EarlyStopping:
    """Stop when the monitored value has not improved for ``patience`` checks in a row.

    An improvement is ``value < best - min_delta`` (mode ``"min"``) or ``value > best +
    min_delta`` (mode ``"max"``). :meth:`step` returns True when the run should stop. In
    :func:`optimlab.engine.fit` the value is the validation loss, checked on validation epochs
    only, so ``patience`` counts validations. With ``restore_best`` the model weights of the
    best check are kept (:meth:`step` given the model) and :meth:`restore` puts them back.

    Example::

        es = EarlyStopping(patience=2, min_delta=0.0)
        [es.step(v) for v in (1.0, 0.9, 0.95, 0.91)]   # [False, False, False, True]
    """

    def __init__(
        self, patience: int, min_delta: float = 0.0, mode: str = "min", restore_best: bool = True
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise UserError(f"early stopping patience must be an integer >= 1, got {patience!r}")
        if (isinstance(min_delta, bool) or not isinstance(min_delta, int | float)
                or not math.isfinite(min_delta) or min_delta < 0):
            raise UserError(f"early stopping min_delta must be a finite number >= 0, "
                            f"got {min_delta!r}")
        if mode not in ("min", "max"):
            raise UserError(f"early stopping mode must be 'min' or 'max', got {mode!r}")
        self.patience, self.min_delta, self.mode = patience, float(min_delta), mode
        self.restore_best = restore_best
        self.best: float = math.inf if mode == "min" else -math.inf
        self.best_check: int = 0  # 1-based index of the best check (0: none yet)
        self.checks: int = 0
        self.bad_checks: int = 0
        self.best_state: dict[str, Any] | None = None

    def improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value: float, model: nn.Module | None = None) -> bool:
        """Record one check of the monitored ``value``; True when patience is exhausted."""
        self.checks += 1
        if self.improved(value):
            self.best, self.best_check, self.bad_checks = float(value), self.checks, 0
            if self.restore_best and model is not None:
                self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            self.bad_checks += 1
        return self.bad_checks >= self.patience

    def restore(self, model: nn.Module) -> bool:
        """Load the best weights into ``model`` if they were kept; True if it did."""
        if not (self.restore_best and self.best_state is not None):
            return False
        model.load_state_dict(self.best_state)
        return True

    def config(self) -> dict[str, Any]:
        return {"patience": self.patience, "min_delta": self.min_delta, "mode": self.mode,
                "restore_best": self.restore_best}

    def state_dict(self) -> dict[str, Any]:
        return {**self.config(), "best": self.best, "best_check": self.best_check,
                "checks": self.checks, "bad_checks": self.bad_checks,
                "best_state": self.best_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("best", "best_check", "checks", "bad_checks", "best_state"):
            setattr(self, key, state[key])
