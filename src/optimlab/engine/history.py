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
    # fit(telemetry=True): tag → one value per epoch (None where a tag was not measured);
    # the tags are described in optimlab.engine.telemetry. Empty without telemetry.
    telemetry: dict[str, list[float | None]] = field(default_factory=dict)

    def append(self, row: dict[str, Any], telemetry: dict[str, float] | None = None) -> None:
        """Add one epoch's row (a dict with every row field as key) and its telemetry."""
        for name in ROW_FIELDS:
            getattr(self, name).append(row[name])
        n = len(self.epoch)
        for tag, value in (telemetry or {}).items():
            self.telemetry.setdefault(tag, [None] * (n - 1)).append(value)
        for values in self.telemetry.values():  # tags missing this epoch stay aligned
            values.extend([None] * (n - len(values)))

    def row(self, i: int) -> dict[str, Any]:
        """Entry ``i`` as a dict (the shape ``on_epoch_end`` receives)."""
        return {name: getattr(self, name)[i] for name in ROW_FIELDS}

    def __len__(self) -> int:
        return len(self.epoch)

    def to_dict(self) -> dict[str, Any]:
        """Plain lists (JSON- and ``torch.load(weights_only=True)``-friendly)."""
        d: dict[str, Any] = {k: list(v) for k, v in asdict(self).items() if k != "telemetry"}
        d["telemetry"] = {tag: list(v) for tag, v in self.telemetry.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        telemetry = {str(t): list(v) for t, v in dict(d.get("telemetry") or {}).items()}
        return cls(**{name: list(d[name]) for name in ROW_FIELDS}, telemetry=telemetry)


ROW_FIELDS = tuple(f.name for f in fields(History) if f.name != "telemetry")


@dataclass
class FitResult:
    """What :func:`fit` returns: the history, how the run ended, epochs completed, seconds."""

    history: History
    status: str  # one of STATUSES
    epochs_run: int  # epochs in the history (including one that diverged)
    wall_seconds: float  # training wall time, cumulative across resumes
