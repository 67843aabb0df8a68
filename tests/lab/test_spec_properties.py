"""Property tests: whatever text a user types, the spec parser and the TOML loader give a
parsed value or a :class:`UserError` — never another exception (a traceback, exit 1)."""

from __future__ import annotations

import math
import os

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from optimlab.errors import UserError
from optimlab.lab.config import CompareConfig, load_config
from optimlab.lab.spec import build_optimizer, parse_scheduler_spec, parse_spec, parse_value

# PROPERTY_EXAMPLES=3000 for a longer search (it passed 3000 when written)
SETTINGS = settings(max_examples=int(os.environ.get("PROPERTY_EXAMPLES", "300")), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

NAMES = ["sgd", "adam", "adamw", "adagrad", "rmsprop", "adadelta", "torch.SGD", "torch.Adam",
         "torch.LBFGS", "torch.SparseAdam", "Adam", "nosuch", "", "sam(sgd)", "lookahead(adam)",
         "sam(torch.SGD)", "sam(nosuch)", "lookahead(sam(sgd))", "sam(", "sam)(", "sam",
         "muon", "muon_adamw"]
KEYS = ["lr", "momentum", "betas", "eps", "weight_decay", "amsgrad", "maximize", "nesterov",
        "foreach", "fused", "capturable", "rho", "max_iter", "x", "adaptive", "k", "alpha",
        "pullback_momentum", "adamw_lr"]
SCHEDULERS = ["steplr", "multisteplr", "exponentiallr", "cosineannealinglr", "onecyclelr",
              "cycliclr", "polynomiallr", "linearlr", "plateau", "lambdalr", "warmup_cosine",
              "wsd", "nosuch"]
SCHED_KEYS = ["step_size", "gamma", "milestones", "T_max", "max_lr", "total_steps", "base_lr",
              "power", "total_iters", "start_factor", "mode", "factor", "patience", "warmup",
              "lr_lambda"]
VALUES = st.one_of(
    st.sampled_from(["true", "false", "no", "off", "nan", "inf", "-inf", "1e999", "None", "0",
                     "-1", "1e-3", "(0.9,0.99)", "(0.9,)", "[1,2]", "[]", "{}", "'a,b'",
                     "__import__('os')", "9" * 5000, "((((", "'", "1+", "max", "b'x'"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers().map(str),
    st.text(max_size=20),
)


def _outcome(fn, *args):
    """Call ``fn``: a result, or a UserError whose message is one short line."""
    try:
        return fn(*args)
    except UserError as e:
        text = " ".join(str(e).split())
        assert text and len(text) <= 400, text[:120]
        return e


@st.composite
def spec_texts(draw, names, keys):
    name = draw(st.sampled_from(names))
    items = draw(st.lists(st.tuples(st.sampled_from(keys), VALUES), max_size=3))
    body = ",".join(f"{k}={v}" for k, v in items)
    return f"{name}:{body}" if items or draw(st.booleans()) else name


@SETTINGS
@given(st.text())
@example("sgd:lr=" + "1" * 5000)
@example("adam:betas=" + "(" * 500)
@example("a:b=[" + "[" * 2000 + "]" * 2000 + "]")
def test_any_text_parses_or_is_a_user_error(text):
    result = _outcome(parse_spec, text)
    assert isinstance(result, UserError) or result.name == result.name.strip()


@SETTINGS
@given(st.text())
def test_any_value_parses_or_is_a_user_error(text):
    _outcome(lambda t: parse_value(t, key="k", spec="s:k=" + t), text)


@SETTINGS
@given(spec_texts(NAMES, KEYS))
def test_any_optimizer_spec_builds_or_is_a_user_error(text):
    spec = _outcome(parse_spec, text)
    if isinstance(spec, UserError):
        return
    opt = _outcome(build_optimizer, spec, [torch.nn.Parameter(torch.zeros(2))])
    if isinstance(opt, UserError):
        return
    for group in opt.param_groups:  # what was accepted is usable: a finite lr
        assert math.isfinite(float(group["lr"]))
    for key, value in spec.hparams.items():
        if isinstance(value, bool):
            assert opt.defaults[key] is value


@SETTINGS
@given(spec_texts(SCHEDULERS, SCHED_KEYS))
def test_any_scheduler_spec_is_a_schedule_or_a_user_error(text):
    from optimlab.engine.recipes import RunLength, for_run

    schedule = _outcome(parse_scheduler_spec, text)
    if isinstance(schedule, UserError):
        return
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, momentum=0.9)
    _outcome(lambda: for_run(schedule, RunLength(6)).check(opt, 6))


TOML_KEYS = ["dataset", "model", "optimizer", "scheduler", "epochs", "batch-size", "seed",
             "seeds", "patience", "min_delta", "device", "threads", "val_every", "nosuch"]
TOML_VALUES = st.sampled_from(
    ['"digits"', "3", "0", "-1", "nan", "inf", "1e400", "true", "99999999999999999999",
     '["adam", "sgd:lr=0.1"]', "[]", "[1, 2]", '"cuda"', "{ a = 1 }", "2026-01-01", "1.5",
     '"sgd:maximize=no"', '"' + "x" * 3000 + '"'])


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(TOML_KEYS), TOML_VALUES), max_size=4))
def test_any_toml_table_is_a_config_or_a_user_error(tmp_path, items):
    path = tmp_path / "lab.toml"
    path.write_text("".join(f"{k} = {v}\n" for k, v in items))
    result = _outcome(load_config, path)
    assert isinstance(result, UserError | CompareConfig)
    if isinstance(result, CompareConfig):
        assert math.isfinite(result.min_delta) and result.seed + result.seeds - 1 < 2**63


@SETTINGS
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_file_contents_are_a_config_or_a_user_error(tmp_path, data):
    path = tmp_path / "any.toml"
    path.write_bytes(data)
    _outcome(load_config, path)


@pytest.mark.parametrize("text", ["sgd:maximize=no", "adam:amsgrad=off", "sgd:lr=nan"])
def test_the_properties_bite_on_a_known_bad_value(text):
    """The old parser accepted these; under the property they must be errors, not values."""
    assert isinstance(_outcome(build_optimizer, parse_spec(text),
                               [torch.nn.Parameter(torch.zeros(2))]), UserError)
