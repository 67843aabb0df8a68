"""Early stopping, table-driven: (losses, patience, min_delta, mode) → stop check."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optimlab.engine import EarlyStopping
from optimlab.errors import UserError

TABLE = [
    # losses, patience, min_delta, mode, 1-based check at which it says stop (None: never)
    ([1.0, 0.9, 0.8, 0.7], 1, 0.0, "min", None),
    ([1.0, 1.0], 1, 0.0, "min", 2),                 # equal is not better
    ([1.0, 0.9, 0.95, 0.91], 2, 0.0, "min", 4),
    ([1.0, 0.9, 0.95, 0.85, 0.9, 0.9], 2, 0.0, "min", 6),  # improvement resets the count
    ([1.0, 0.95, 0.97, 0.89], 2, 0.05, "min", 3),   # 0.95, 0.97: not better than 1.0 - 0.05
    ([1.0, 0.94, 0.93, 0.92, 0.88], 3, 0.05, "min", None),
    ([0.1, 0.2, 0.2, 0.19], 2, 0.0, "max", 4),
    ([0.1, 0.2, 0.3], 1, 0.15, "max", 2),
    ([5.0, 4.0, 3.0, 3.0, 3.0, 3.0], 4, 0.0, "min", None),
]


@pytest.mark.parametrize("losses,patience,min_delta,mode,stop_at", TABLE)
def test_stop_check(losses, patience, min_delta, mode, stop_at):
    es = EarlyStopping(patience, min_delta, mode)
    stops = [es.step(v) for v in losses]
    first = stops.index(True) + 1 if True in stops else None
    assert first == stop_at


def test_state_dict_round_trip_continues_identically():
    losses = [1.0, 0.9, 0.95, 0.97, 0.8, 0.85, 0.86]
    full = EarlyStopping(3)
    expected = [full.step(v) for v in losses]
    first = EarlyStopping(3)
    head = [first.step(v) for v in losses[:3]]
    second = EarlyStopping(3)
    second.load_state_dict(first.state_dict())
    assert head + [second.step(v) for v in losses[3:]] == expected
    assert second.best == full.best and second.best_check == full.best_check == 5


def test_restore_best_keeps_the_best_weights():
    model = nn.Linear(2, 1)
    es = EarlyStopping(1, restore_best=True)
    es.step(1.0, model)
    best = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    assert es.step(2.0, model)
    assert es.restore(model)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), best, strict=True))
    assert not EarlyStopping(1, restore_best=False).restore(model)


@pytest.mark.parametrize("kwargs,match", [({"patience": 0}, "patience"),
                                          ({"patience": 2, "min_delta": -1}, "min_delta"),
                                          ({"patience": 2, "min_delta": float("nan")},
                                           "min_delta must be a finite number"),
                                          ({"patience": 2, "min_delta": float("inf")},
                                           "min_delta"),
                                          ({"patience": True}, "patience"),
                                          ({"patience": 2, "mode": "up"}, "mode")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(UserError, match=match):
        EarlyStopping(**kwargs)
