"""``optimlab tune``: each optimizer tuned on an equal budget, its best rerun on other seeds.

Data flows one way: specs with distributions (``space``) → a plan (``plan``) → Optuna studies
driven by ask/tell (``study``, ``driver``) → trials on a backend (``trial``, ``backends``) →
reruns → results.json, trials.csv, plots and report.html (``summary``, ``outputs``).

Example::

    from optimlab.lab.tune import TuneConfig, run_tune

    cfg = TuneConfig(optimizer=("sgd:momentum=0.9", "adam"), trials=8, epochs=10, seeds=3)
    result = run_tune(cfg, out_dir="runs/my-tune")
    print(result.table())

Optuna (and Ray, with ``backend="ray"``) is imported only when a tune runs.
"""

from optimlab.lab.tune.config import DEFAULT_TUNE_SUITE, TuneConfig, load_tune_config
from optimlab.lab.tune.runner import TuneResult, resume_tune, run_tune
from optimlab.lab.tune.space import DEFAULT_LR_RANGES, default_lr_range, parse_search_spec

__all__ = [
    "DEFAULT_LR_RANGES",
    "DEFAULT_TUNE_SUITE",
    "TuneConfig",
    "TuneResult",
    "default_lr_range",
    "load_tune_config",
    "parse_search_spec",
    "resume_tune",
    "run_tune",
]
