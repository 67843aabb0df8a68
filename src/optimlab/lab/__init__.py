"""The lab: optimizer comparisons (``optimlab compare``), their outputs and the run store.

Data flows one way: specs and config → data + model → engine → store → results, plots, report.

Example::

    from optimlab.lab import CompareConfig, run_comparison

    cfg = CompareConfig(optimizer=("sgd:lr=0.1", "adam:lr=1e-3"), epochs=5)
    result = run_comparison(cfg, out_dir="runs/demo", store_path="runs/optimlab.sqlite")
    print(result.report_path, result.rows[0]["name"])
"""

from optimlab.lab.compare import Comparison, plan, resume_comparison, run_comparison
from optimlab.lab.config import DEFAULT_SUITE, CompareConfig, load_config, valid_keys
from optimlab.lab.from_store import report_from_store
from optimlab.lab.results import format_table, grouped_rows
from optimlab.lab.spec import Spec, build_optimizer, parse_spec
from optimlab.lab.store import RunStore
from optimlab.lab.tune import TuneConfig, TuneResult, resume_tune, run_tune

__all__ = [
    "DEFAULT_SUITE",
    "CompareConfig",
    "Comparison",
    "RunStore",
    "Spec",
    "TuneConfig",
    "TuneResult",
    "build_optimizer",
    "format_table",
    "grouped_rows",
    "load_config",
    "parse_spec",
    "plan",
    "report_from_store",
    "resume_comparison",
    "resume_tune",
    "run_comparison",
    "run_tune",
    "valid_keys",
]
