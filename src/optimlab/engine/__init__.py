"""The training engine: :func:`fit`, :class:`EarlyStopping`, :func:`evaluate`, checkpoints."""

from optimlab.engine.checkpoint import CheckpointError, CheckpointMismatch
from optimlab.engine.early_stopping import EarlyStopping
from optimlab.engine.evaluate import Evaluation, evaluate
from optimlab.engine.fit import fit
from optimlab.engine.history import STATUSES, FitResult, History
from optimlab.engine.schedules import Schedule, parse_schedule
from optimlab.engine.step import make_train_step, needs_closure

__all__ = [
    "STATUSES",
    "CheckpointError",
    "CheckpointMismatch",
    "EarlyStopping",
    "Evaluation",
    "FitResult",
    "History",
    "Schedule",
    "evaluate",
    "fit",
    "make_train_step",
    "needs_closure",
    "parse_schedule",
]
