"""TensorBoard event files for a run, through ``torch.utils.tensorboard.SummaryWriter``.

One folder per run (``fit(tensorboard=DIR)`` writes into DIR itself; ``compare --tensorboard
DIR`` gives each run ``DIR/<run>/seed<s>``). Scalars are indexed by epoch:

- ``train/loss``, ``val/loss``, ``val/accuracy`` (validated epochs only), ``lr/group0``;
- with telemetry, every telemetry tag (``l2_norm/grad/<layer>``, ``lr/group<i>``, …; see
  :mod:`optimlab.engine.telemetry`);
- at the end, the run's hyperparameters (optimizer class and its defaults, batch size, seed,
  …) through the HParams plugin, with the metrics ``hparam/final_train_loss``,
  ``hparam/best_val_loss`` and ``hparam/last_val_accuracy`` written into the same folder (not
  a time-stamped sub-folder, as ``SummaryWriter.add_hparams`` would).

Open them with ``tensorboard --logdir DIR``. TensorBoard is imported only when a writer is
created. Event files are appended as training goes (TensorBoard reads them while they grow),
so unlike optimlab's other outputs they are not written atomically; a resumed run adds a new
event file to the same folder.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

from optimlab.engine.history import History
from optimlab.errors import UserError

HPARAM_TYPES = (bool, int, float, str)


def run_hparams(optimizer: Any, settings: dict[str, Any]) -> dict[str, bool | int | float | str]:
    """The hyperparameters shown in TensorBoard: the optimizer's class and defaults, then the
    run's settings; values that are not bool/int/float/str are shown as text (``None``, tuples).
    """
    raw = {"optimizer": type(optimizer).__name__,
           **{f"optimizer.{k}": v for k, v in sorted(optimizer.defaults.items())}, **settings}
    return {k: v if isinstance(v, HPARAM_TYPES) else repr(v) for k, v in raw.items()}


def summary_metrics(history: History) -> dict[str, float]:
    """The run's result as HParams metrics (non-finite and missing values left out)."""
    finite = [float(v) for v in history.val_loss if v is not None and math.isfinite(v)]
    accuracies = [float(v) for v in history.val_accuracy if v is not None]
    out = {}
    if history.train_loss and math.isfinite(history.train_loss[-1]):
        out["hparam/final_train_loss"] = float(history.train_loss[-1])
    if finite:
        out["hparam/best_val_loss"] = min(finite)
    if accuracies:
        out["hparam/last_val_accuracy"] = accuracies[-1]
    return out


def check_log_dir(path: str | Path) -> Path:
    """UserError unless ``path`` is a folder or can become one; checked before any run.

    Nothing is left behind: the nearest existing folder is probed by creating and removing an
    empty temporary folder in it (permission bits alone mislead: root passes them under /proc).
    """
    folder = Path(path)
    for part in (folder, *folder.parents):
        if part.exists():
            if not part.is_dir():
                raise UserError(f"tensorboard folder {folder}: {part} exists and is not a "
                                "folder; give a folder path")
            try:
                os.rmdir(tempfile.mkdtemp(prefix=".optimlab-probe-", dir=part))
            except OSError as e:
                raise UserError(f"tensorboard folder {folder}: cannot create folders in {part} "
                                f"({e.strerror})") from None
            break
    return folder


class TensorBoardLog:
    """Writes one run's epochs, then its hyperparameters, into ``log_dir``."""

    def __init__(self, log_dir: str | Path, hparams: dict[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.log_dir = Path(log_dir)
        self.hparams = hparams
        self.writer = SummaryWriter(log_dir=str(self.log_dir))

    def log_epoch(self, row: dict[str, Any], telemetry: dict[str, float] | None = None) -> None:
        """One epoch's row of the history (and its telemetry tags) at step ``row["epoch"]``."""
        scalars = {"train/loss": row["train_loss"], "val/loss": row["val_loss"],
                   "val/accuracy": row["val_accuracy"], "lr/group0": row["lr"],
                   **(telemetry or {})}
        for tag, value in scalars.items():
            if value is not None:
                self.writer.add_scalar(tag, float(value), global_step=int(row["epoch"]))
        self.writer.flush()

    def close(self, history: History) -> None:
        """Write the hyperparameters with the run's summary metrics, then close the files."""
        from torch.utils.tensorboard.summary import hparams

        metrics = summary_metrics(history)
        step = history.epoch[-1] if history.epoch else 0
        experiment, start, end = hparams(self.hparams, metrics)
        for summary in (experiment, start, end):
            self.writer.file_writer.add_summary(summary, step)  # type: ignore[attr-defined]
        for tag, value in metrics.items():
            self.writer.add_scalar(tag, value, global_step=step)
        self.writer.close()
