"""Shared helpers for the lab tests: synthetic runs (no training needed)."""

from __future__ import annotations

import math

import pytest


def synthetic_run(name: str, seed: int, *, epochs: int = 6, rate: float = 0.5,
                  status: str = "finished") -> dict:
    train = [2.3 * math.exp(-rate * e) + 0.01 * seed for e in range(epochs)]
    if status == "diverged":
        train[-1] = float("nan")
    return {
        "name": name, "optimizer": name.split("(")[0], "hparams": {"lr": 0.1}, "seed": seed,
        "status": status, "epochs_run": epochs,
        "history": {"epoch": list(range(1, epochs + 1)), "train_loss": train,
                    "val_loss": [x * 1.1 for x in train],
                    "val_accuracy": [min(0.99, 0.1 + 0.15 * e) for e in range(epochs)],
                    "lr": [0.1 * 0.5 ** (e // 3) for e in range(epochs)],
                    "wall_time": [0.1 * e for e in range(epochs)]},
        "test_loss": train[-2], "test_accuracy": 0.5 + rate / 4 + 0.01 * seed,
        "confusion_matrix": [[5, 1, 0], [0, 6, 1], [1, 0, 7]], "wall_seconds": 0.6,
    }


@pytest.fixture
def synthetic_runs() -> list[dict]:
    return [synthetic_run(n, s, rate=r, status=st)
            for n, r, st in (("sgd", 0.2, "finished"), ("adam(lr=0.01)", 0.8, "finished"),
                             ("rmsprop", 0.5, "diverged"))
            for s in (0, 1)]
