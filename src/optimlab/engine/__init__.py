"""The training engine: :func:`fit`, :class:`EarlyStopping`, :func:`evaluate`, checkpoints."""

from optimlab.engine.checkpoint import CheckpointError
from optimlab.engine.early_stopping import EarlyStopping
from optimlab.engine.evaluate import Evaluation, evaluate
from optimlab.engine.fit import fit, make_train_step
from optimlab.engine.history import STATUSES, FitResult, History

__all__ = [
    "STATUSES",
    "CheckpointError",
    "EarlyStopping",
    "Evaluation",
    "FitResult",
    "History",
    "evaluate",
    "fit",
    "make_train_step",
]
