"""Learning rates before a run: a schedule's preview, the LR range test by name, ``lr=find``.

- :func:`preview_schedule` — the lr of every epoch (or batch) a schedule spec gives a run,
  without training; :func:`schedule_png` draws it.
- :func:`find_lr` — the LR range test (:mod:`optimlab.engine.lr_find`) for an optimizer spec on
  a dataset and model by name, from the model's seeded initial weights and fit's batch order;
  :func:`write_lr_find` writes ``lr_find.json`` and ``lr_find.png``.
- :func:`resolve_lr_find` — an optimizer spec with ``lr=find`` becomes the spec with the
  suggested lr written in (what ``compare`` does before planning). Cost: one range test per
  such spec and seed of the data — ``steps`` (100) training batches, about the cost of
  ``steps / batches per epoch`` epochs of one run.

Figures are drawn with matplotlib (imported here, lazily) and written atomically.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from optimlab.errors import UserError

FIND = "find"  # the value of ``lr`` that asks for a range test
LR_LABEL = "learning rate (lr)"


@dataclass(frozen=True)
class SchedulePreview:
    """The lr of each scheduler step of a run: per epoch, or per batch."""

    text: str  # the schedule spec as written
    lrs: list[float]  # lrs[t]: the rate used by step t
    epochs: int
    steps_per_epoch: int  # 1 when the schedule steps per epoch
    every: str  # "epoch" or "step"


def preview_schedule(text: str, *, epochs: int, steps_per_epoch: int | None = None,
                     lr: float = 0.1) -> SchedulePreview:
    """Preview ``text`` over ``epochs`` (per batch when ``steps_per_epoch`` is given)."""
    from optimlab.engine.recipes import RunLength, schedule_lrs

    for name, value, low in (("--epochs", epochs, 1), ("--steps-per-epoch", steps_per_epoch, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < low):
            raise UserError(f"{name} must be an integer >= {low}, got {value!r}")
    if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise UserError(f"--lr must be a finite number > 0, got {lr!r}")
    every = "epoch" if steps_per_epoch is None else "step"
    length = RunLength(epochs, steps_per_epoch or 1, every)
    return SchedulePreview(text, schedule_lrs(text, length, lr=lr), epochs,
                           steps_per_epoch or 1, every)


def format_preview(preview: SchedulePreview) -> str:
    """A table: step (per batch only), epoch, lr."""
    lines = (["step  epoch  lr"] if preview.every == "step" else ["epoch  lr"])
    for t, lr in enumerate(preview.lrs):
        epoch = t // preview.steps_per_epoch + 1
        lines.append(f"{t:4d}  {epoch:5d}  {lr:.6g}" if preview.every == "step"
                     else f"{epoch:5d}  {lr:.6g}")
    return "\n".join(lines)


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=80)
    plt.close(fig)
    return buf.getvalue()


def _figure() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(7, 4))


def schedule_png(preview: SchedulePreview) -> bytes:
    """The lr against the epoch (fractional epochs when per batch), as PNG bytes."""
    fig, ax = _figure()
    # epoch e spans [e, e+1) as in the run history's numbering (1 = the first epoch)
    xs = [1 + t / preview.steps_per_epoch for t in range(len(preview.lrs) + 1)]
    ax.step(xs, [*preview.lrs, preview.lrs[-1]], where="post")
    unit = "batch" if preview.every == "step" else "epoch"
    ax.set_xlabel("epoch" + (" (fraction: the lr changes every batch)" if unit == "batch"
                             else ""))
    ax.set_ylabel(LR_LABEL)
    ax.set_title(f"{preview.text} — {preview.epochs} epochs, stepped per {unit}", fontsize=9)
    ax.grid(alpha=0.3)
    return _png(fig)


def find_lr(optimizer: str, *, dataset: str = "digits", model: str = "mlp",
            batch_size: int = 64, seed: int = 0, data_dir: str | None = None,
            device: str = "cpu", data: Any = None, **range_test: Any) -> Any:
    """The LR range test for optimizer spec ``optimizer`` on ``dataset``/``model`` by name.

    The model starts from ``build_model(model, …, seed=seed)`` — the weights a comparison with
    this seed starts from — and batches come in fit's order for ``seed``. ``range_test`` goes to
    :func:`~optimlab.engine.lr_find.lr_range_test` (``min_lr``, ``max_lr``, ``steps``, …). A
    ``lr`` in the spec (``lr=find`` or a number) is ignored: the test sets the lr itself.
    Returns the :class:`~optimlab.engine.lr_find.LRFindResult`.
    """
    from optimlab.data import load_dataset
    from optimlab.engine.lr_find import check_range, lr_range_test
    from optimlab.lab.spec import Spec, build_optimizer, check_optimizer_spec, parse_spec
    from optimlab.models import build_model

    check_range(range_test.get("min_lr", 1e-7), range_test.get("max_lr", 10.0),
                range_test.get("steps", 100))
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"--batch-size must be an integer >= 1, got {batch_size!r}")
    spec = parse_spec(optimizer)
    hparams = {k: v for k, v in spec.hparams.items() if k != "lr"}
    spec = Spec(spec.name, hparams, spec.text)
    check_optimizer_spec(spec)
    if data is None:
        data = load_dataset(dataset, data_dir=data_dir, seed=seed, device=device)
    net = build_model(model, data.input_shape, data.num_outputs, seed=seed)
    net = net.to(data.train.x.device)
    opt = build_optimizer(spec, net)
    result = lr_range_test(net, opt, data, batch_size=batch_size, seed=seed, **range_test)
    result.settings.update({"optimizer": optimizer, "dataset": data.name, "model": model,
                            "loss_unit": _loss_unit(data.task)})
    return result


def _loss_unit(task: str) -> str:
    return "mean squared error" if task == "regression" else "cross-entropy, nats"


def lr_find_png(result: Any) -> bytes:
    """Raw and smoothed loss against lr (log axis), the suggestions marked."""
    fig, ax = _figure()
    unit = result.settings.get("loss_unit", "")
    ax.plot(result.lrs, result.losses, alpha=0.3, label="batch loss")
    ax.plot(result.lrs, result.smoothed, label="smoothed (EMA, β=0.05)")
    if result.min_loss_div10 is not None:
        ax.axvline(result.min_loss_div10, color="red",
                   label=f"suggestion: min-loss lr / 10 = {result.min_loss_div10:.3g}")
    if result.steepest is not None:
        i = result.lrs.index(result.steepest)
        ax.scatter([result.steepest], [result.smoothed[i]], color="gray", zorder=3,
                   label=f"steepest descent, lr = {result.steepest:.3g}")
    finite = [s for s in result.smoothed if math.isfinite(s)]
    if finite:  # the divergence at the end would flatten the interesting part
        low, first = min(finite), finite[0]
        ax.set_ylim(low - 0.05 * abs(low), max(first, low) * 1.5 + 1e-12)
    ax.set_xscale("log")
    ax.set_xlabel(LR_LABEL + ", log scale")
    ax.set_ylabel(f"training loss ({unit})" if unit else "training loss")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def write_lr_find(result: Any, out_dir: str | Path) -> list[Path]:
    """Write ``lr_find.json`` and ``lr_find.png`` into ``out_dir``; their paths."""
    from optimlab.atomic import atomic_write_bytes
    from optimlab.lab.results import write_json

    png = lr_find_png(result)  # drawn before anything is written
    out = Path(out_dir)
    write_json(out / "lr_find.json", result.to_dict())
    atomic_write_bytes(out / "lr_find.png", png)
    return [out / "lr_find.json", out / "lr_find.png"]


def wants_lr_find(spec_text: str) -> bool:
    """True when the optimizer spec says ``lr=find``."""
    from optimlab.lab.spec import parse_spec

    return parse_spec(spec_text).hparams.get("lr") == FIND


def resolve_lr_find(spec_text: str, data: Any, model_name: str, seed: int,
                    batch_size: int = 64, **range_test: Any) -> tuple[str, Any]:
    """``adam:lr=find,betas=(0.9,0.99)`` → ``adam:lr=0.00123,betas=(0.9, 0.99)`` and the range
    test's result (None and the spec unchanged when it has no ``lr=find``).

    Raises UserError when the test gives no suggestion (it diverged within its first 17 steps:
    lower ``min_lr``, or give the lr).
    """
    from optimlab.lab.spec import format_value, parse_spec

    spec = parse_spec(spec_text)
    if spec.hparams.get("lr") != FIND:
        return spec_text, None
    result = find_lr(spec_text, model=model_name, batch_size=batch_size, seed=seed, data=data,
                     **range_test)
    if result.suggestion is None:
        raise UserError(f"lr=find in {spec_text!r}: the range test stopped after "
                        f"{len(result.lrs)} steps, too few for a suggestion; give the lr")
    items = [f"{k}={format_value(float(f'{result.suggestion:.3g}') if k == 'lr' else v)}"
             for k, v in spec.hparams.items()]
    return f"{spec.name}:{','.join(items)}", result


def _with_lr(spec_text: str, lr: float) -> str:
    from optimlab.lab.spec import format_value, parse_spec

    spec = parse_spec(spec_text)
    items = [f"{k}={format_value(lr if k == 'lr' else v)}" for k, v in spec.hparams.items()]
    return f"{spec.name}:{','.join(items)}"


def resolve_config_lr_find(config: Any, *, device: str,
                           log: Callable[[str], None] | None = None) -> Any:
    """``compare``'s ``lr=find``: each optimizer spec saying ``lr=find`` gets the range test's
    suggested lr written in (defaults: 1e-7 → 10 over 100 batches of ``config.batch_size``),
    on the first seed's data split, initial weights and batch order; every seed then uses
    that lr. The whole plan is checked first (with lr=10, the top of the range, standing in),
    so a mistake costs no range test. The returned config holds plain numbers (what
    ``comparison.json`` saves for ``--resume``).
    """
    from optimlab.data import load_dataset
    from optimlab.lab.compare import check_plan, plan
    from optimlab.models import build_model

    texts = list(config.optimizer)
    finds = [wants_lr_find(t) for t in texts]
    if not any(finds):
        return config
    stand_in = replace(config, optimizer=tuple(_with_lr(t, 10.0) if f else t
                                               for t, f in zip(texts, finds, strict=True)))
    planned = plan(stand_in)
    data = load_dataset(config.dataset, data_dir=config.data_dir, seed=config.seed,
                        device=device)
    model = build_model(config.model, data.input_shape, data.num_outputs, seed=config.seed)
    check_plan(planned, stand_in, model.to(device), data)
    resolved = []
    for text in texts:
        new, result = resolve_lr_find(text, data, config.model, config.seed, config.batch_size)
        if result is not None and log is not None:
            log(f"lr=find: {text} → {new} (range test: {len(result.lrs)} batches, "
                f"steepest descent at lr {result.steepest:.3g})")
        resolved.append(new)
    return replace(config, optimizer=tuple(resolved))
