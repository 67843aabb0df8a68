"""The per-epoch record of a run and the result :func:`optimlab.engine.fit` returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

STATUSES = ("finished", "early_stopped", "diverged", "interrupted")


@dataclass
class History:
    """One entry per epoch, in order; all lists have the same length.

    ``epoch`` counts from 1. ``train_loss`` is the mean of the epoch's batch losses (NaN/inf on
    the epoch that diverged). ``val_loss``/``val_accuracy`` are None on epochs without
    validation (and ``val_accuracy`` always None for regression). ``lr`` is the first param
    group's learning rate used during the epoch. ``wall_time`` is the training seconds elapsed
    since the start of the run at the end of the epoch (cumulative across resumes).
    """

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float | None] = field(default_factory=list)
    val_accuracy: list[float | None] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    wall_time: list[float] = field(default_factory=list)

    def append(self, row: dict[str, Any]) -> None:
        """Add one epoch's row (a dict with every field name as key)."""
        for f in fields(self):
            getattr(self, f.name).append(row[f.name])

    def row(self, i: int) -> dict[str, Any]:
        """Entry ``i`` as a dict (the shape ``on_epoch_end`` receives)."""
        return {f.name: getattr(self, f.name)[i] for f in fields(self)}

    def __len__(self) -> int:
        return len(self.epoch)

    def to_dict(self) -> dict[str, list[Any]]:
        """Plain lists (JSON- and ``torch.load(weights_only=True)``-friendly)."""
        return {k: list(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, list[Any]]) -> History:
        return cls(**{f.name: list(d[f.name]) for f in fields(cls)})


@dataclass
class FitResult:
    """What :func:`fit` returns: the history, how the run ended, epochs completed, seconds."""

    history: History
    status: str  # one of STATUSES
    epochs_run: int  # epochs in the history (including one that diverged)
    wall_seconds: float  # training wall time, cumulative across resumes
