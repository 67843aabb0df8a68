"""Spec parsing and optimizer construction from specs."""

from __future__ import annotations

import pytest
import torch

from optimlab import optim
from optimlab.errors import UserError
from optimlab.lab.spec import (
    build_optimizer,
    folder_names,
    parse_spec,
    split_top_level,
    unique_names,
)


@pytest.mark.parametrize(
    ("text", "name", "hparams"),
    [
        ("sgd", "sgd", {}),
        ("sgd:", "sgd", {}),
        ("sgd:lr=0.01,momentum=0.9,nesterov=true", "sgd",
         {"lr": 0.01, "momentum": 0.9, "nesterov": True}),
        ("adam:lr=1e-3,betas=(0.9,0.99)", "adam", {"lr": 1e-3, "betas": (0.9, 0.99)}),
        (" adam : lr = 1e-3 , amsgrad = FALSE ", "adam", {"lr": 1e-3, "amsgrad": False}),
        ("plateau:mode=max,patience=7", "plateau", {"mode": "max", "patience": 7}),
        ("steplr:milestones=[1, 2],x='a,b'", "steplr", {"milestones": [1, 2], "x": "a,b"}),
        ("torch.Adam:lr=0.1", "torch.Adam", {"lr": 0.1}),
    ],
)
def test_parse_spec(text, name, hparams):
    spec = parse_spec(text)
    assert spec.name == name
    assert spec.hparams == hparams
    assert list(spec.hparams) == list(hparams)  # order as written


def test_split_top_level_keeps_bracketed_commas():
    assert split_top_level("a=(1,2),b=[3,{4:5,6:7}],c='x,y'") == [
        "a=(1,2)", "b=[3,{4:5,6:7}]", "c='x,y'"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (":lr=1", "empty optimizer name"),
        ("sgd:lr", "expected key=value"),
        ("sgd:lr=1,lr=2", "given twice"),
        ("sgd:lr=(1,2", "unbalanced"),
        ("sgd:lr=1+", "invalid value '1+'"),
        ("sgd:lr=__import__('os')", "invalid value"),  # never evaluated
        ("sgd:1x=2", "expected key=value"),
    ],
)
def test_parse_spec_errors(text, fragment):
    with pytest.raises(UserError, match=".*") as err:
        parse_spec(text)
    assert fragment in str(err.value)


def _params():
    return [torch.nn.Parameter(torch.zeros(3))]


def test_build_ours_and_torchs():
    ours = build_optimizer(parse_spec("adam:lr=0.01,betas=(0.8,0.9)"), _params())
    assert type(ours) is optim.Adam
    assert ours.defaults["betas"] == (0.8, 0.9)
    theirs = build_optimizer(parse_spec("torch.ADAM:lr=0.01"), _params())
    assert type(theirs) is torch.optim.Adam
    assert type(build_optimizer(parse_spec("SGD"), _params())) is optim.SGD


def test_unknown_optimizer_lists_valid_names():
    with pytest.raises(UserError) as err:
        build_optimizer(parse_spec("adamx"), _params())
    msg = str(err.value)
    assert "'adamx'" in msg
    for name in optim.available():
        assert name in msg
    assert "torch.<Name>" in msg and len(msg) < 300  # torch's classes are not all spelled out


def test_unknown_torch_class():
    with pytest.raises(UserError, match="unknown optimizer 'torch.Nope'"):
        build_optimizer(parse_spec("torch.Nope"), _params())


def test_unknown_hyperparameter_lists_valid_keys():
    with pytest.raises(UserError) as err:
        build_optimizer(parse_spec("sgd:lr=0.1,beta=0.9"), _params())
    msg = str(err.value)
    assert "'beta'" in msg and "momentum" in msg and "nesterov" in msg


def test_invalid_value_carries_the_optimizers_message():
    with pytest.raises(ValueError) as torch_err:
        torch.optim.Adam(_params(), lr=-1.0)
    with pytest.raises(UserError) as err:
        build_optimizer(parse_spec("adam:lr=-1.0"), _params())
    assert str(torch_err.value) in str(err.value)


def test_scheduler_spec_checked():
    from optimlab.lab.spec import parse_scheduler_spec

    parse_scheduler_spec("steplr:step_size=3,gamma=0.5")
    with pytest.raises(UserError, match="nosuch"):
        parse_scheduler_spec("nosuch")


def test_labels_and_folder_names():
    specs = [parse_spec(t) for t in ("sgd", "sgd:momentum=0.9", "sgd", "adam:betas=(0.9,0.99)")]
    names = unique_names([s.label for s in specs])
    assert names == ["sgd", "sgd(momentum=0.9)", "sgd#2", "adam(betas=(0.9, 0.99))"]
    folders = folder_names(names + ["sgd_momentum=0.9"])
    assert len(set(folders)) == len(folders)
    assert all("/" not in f and " " not in f and "(" not in f for f in folders)
    assert folders[1] == "sgd_momentum=0.9"
    assert folders[4] == "sgd_momentum=0.9-2"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("sgd:lr=0.1,maximize=no", "maximize must be true or false"),
        ("adam:amsgrad=off", "amsgrad must be true or false"),
        ("adam:amsgrad=1", "amsgrad must be true or false"),
        ("torch.SGD:lr=0.1,nesterov=yes,momentum=0.9", "nesterov must be true or false"),
        ("sgd:lr=abc", "lr must be a finite number"),
        ("sgd:lr=nan", "lr must be a finite number"),
        ("sgd:lr=inf", "lr must be a finite number"),
        ("sgd:lr=1e999", "lr must be a finite number"),
        ("sgd:lr=None", "lr must be a finite number"),
        ("adam:betas=(0.9,)", "betas must be a tuple of 2"),
        ("adam:betas=(0.9,1e999)", "betas must be a tuple of 2"),
        ("torch.LBFGS:max_iter=2.5", "max_iter must be an integer"),
        ("adam:capturable=true", "CUDA-graph capture"),
        ("torch.SparseAdam", "torch.SparseAdam is not supported: it updates only sparse"),
    ],
)
def test_values_are_checked_against_the_signature(text, fragment):
    with pytest.raises(UserError) as err:
        build_optimizer(parse_spec(text), _params())
    assert fragment in str(err.value)


def test_sparse_adam_is_not_offered_and_lbfgs_is():
    from optimlab.lab.spec import valid_optimizer_names

    names = valid_optimizer_names()
    assert "torch.SparseAdam" not in names and "torch.LBFGS" in names
    assert type(build_optimizer(parse_spec("torch.LBFGS:lr=0.5"), _params())) is torch.optim.LBFGS


def test_a_5000_digit_value_is_cut():
    for text in ("sgd:lr=" + "1" * 5000, "sgd:lr=" + "1" * 5000 + "x", "sgd:lr=0." + "1" * 5000
                 + "e99999"):
        with pytest.raises(UserError) as err:
            build_optimizer(parse_spec(text), _params())
        assert len(str(err.value)) < 300, str(err.value)[:100]


def test_scheduler_spec_parsed_once_into_a_schedule():
    from optimlab.engine import Schedule
    from optimlab.lab.spec import parse_scheduler_spec

    schedule = parse_scheduler_spec("StepLR:step_size=3,gamma=0.5")
    assert isinstance(schedule, Schedule)
    assert schedule.cls is torch.optim.lr_scheduler.StepLR
    assert schedule.kwargs == {"step_size": 3, "gamma": 0.5}
    with pytest.raises(UserError, match="step_size must be an integer"):
        parse_scheduler_spec("steplr:step_size=abc")
