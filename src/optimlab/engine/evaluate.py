"""Loss, accuracy and confusion matrix of a model on one split."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from optimlab.data import Split
from optimlab.errors import UserError

LOSSES = {
    "cross_entropy": F.cross_entropy,
    "mse": F.mse_loss,
    "l1": F.l1_loss,
    "smooth_l1": F.smooth_l1_loss,
    "huber": F.huber_loss,
}


def loss_function(name: str | None, task: str):
    """The loss called ``name``; None → cross-entropy for classification, MSE for regression."""
    if name is None:
        name = "cross_entropy" if task == "classification" else "mse"
    fn = LOSSES.get(name.lower().replace("-", "_"))
    if fn is None:
        raise UserError(f"unknown loss {name!r}; valid: {', '.join(LOSSES)}")
    return fn


@dataclass
class Evaluation:
    """Mean loss over the examples; accuracy and confusion matrix (rows: true class, columns:
    predicted) for classification, None for regression."""

    loss: float
    accuracy: float | None
    confusion_matrix: list[list[int]] | None


@torch.no_grad()
def split_metrics(
    model: nn.Module, split: Split, task: str, loss: str | None = None, batch_size: int = 1024,
    num_classes: int | None = None,
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Summed-then-averaged loss, accuracy and (if ``num_classes``) the confusion matrix, as
    device tensors (no host sync). Puts the model in eval mode and restores its mode."""
    fn = loss_function(loss, task)
    was_training = model.training
    model.eval()
    device = split.x.device
    total = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    cm = None if num_classes is None else torch.zeros(
        num_classes * num_classes, device=device, dtype=torch.int64)
    try:
        for start in range(0, len(split), batch_size):
            x, y = split.x[start:start + batch_size], split.y[start:start + batch_size]
            out = model(x)
            total += fn(out, y, reduction="sum").double()
            if task == "classification":
                pred = out.argmax(dim=1)
                correct += (pred == y).sum()
                if cm is not None and num_classes is not None:
                    cm += torch.bincount(y * num_classes + pred, minlength=cm.numel())
    finally:
        model.train(was_training)
    n = max(len(split), 1)
    if task == "regression":
        n *= max(int(split.y[0].numel()), 1) if len(split) else 1  # mean over elements, like MSE
        return total / n, None, None
    return total / n, correct.double() / n, cm


def evaluate(
    model: nn.Module, split: Split, *, task: str, batch_size: int = 1024, loss: str | None = None
) -> Evaluation:
    """Evaluate ``model`` on ``split``: mean loss (cross-entropy/MSE by ``task`` unless ``loss``
    is given), accuracy and confusion matrix (classification).

    Example::

        ev = evaluate(model, data.test, task=data.task)
        ev.loss, ev.accuracy, ev.confusion_matrix
    """
    if task not in ("classification", "regression"):
        raise UserError(f"unknown task {task!r}; valid: classification, regression")
    k = None
    if task == "classification" and len(split):
        was_training = model.training
        model.eval()
        with torch.no_grad():
            k = max(int(split.y.max()) + 1, int(model(split.x[:1]).shape[1]))
        model.train(was_training)
    loss_t, acc_t, cm_t = split_metrics(model, split, task, loss, batch_size, k)
    return Evaluation(
        loss=float(loss_t),
        accuracy=None if acc_t is None else float(acc_t),
        confusion_matrix=None if cm_t is None or k is None else cm_t.view(k, k).tolist(),
    )
