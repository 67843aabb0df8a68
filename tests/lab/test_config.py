"""CompareConfig from TOML and flags: precedence, unknown keys, malformed files."""

from __future__ import annotations

import pytest

from optimlab.errors import UserError
from optimlab.lab.config import DEFAULT_SUITE, CompareConfig, load_config, valid_keys


def test_defaults_are_the_seed_experiment():
    cfg = load_config()
    assert (cfg.dataset, cfg.model, cfg.seed, cfg.seeds) == ("digits", "mlp", 0, 1)
    assert cfg.optimizer == DEFAULT_SUITE and len(DEFAULT_SUITE) == 9


def test_toml_then_flags(tmp_path):
    path = tmp_path / "lab.toml"
    path.write_text('dataset = "line"\nbatch-size = 8\nepochs = 4\n'
                    'optimizer = ["sgd:lr=0.1", "adam"]\npatience = 2\n')
    cfg = load_config(path, {"epochs": 9, "seed": 3})
    assert cfg == CompareConfig(dataset="line", batch_size=8, epochs=9, seed=3, patience=2,
                                optimizer=("sgd:lr=0.1", "adam"))
    assert CompareConfig.from_dict(cfg.to_dict()) == cfg  # round trip through JSON shape


def test_unknown_key_lists_valid_keys(tmp_path):
    path = tmp_path / "lab.toml"
    path.write_text("epochs = 3\nlearning_rate = 0.1\n")
    with pytest.raises(UserError) as err:
        load_config(path)
    msg = str(err.value)
    assert str(path) in msg and "'learning_rate'" in msg
    assert all(k in msg for k in valid_keys())


def test_malformed_toml_names_file_and_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('dataset = "digits"\nepochs = = 3\n')
    with pytest.raises(UserError) as err:
        load_config(path)
    assert str(path) in str(err.value) and "line 2" in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"epochs": "3"}, "epochs must be an integer"),
        ({"epochs": True}, "epochs must be an integer"),
        ({"device": "tpu"}, "device must be one of"),
        ({"optimizer": []}, "non-empty list"),
        ({"optimizer": [1]}, "non-empty list"),
        ({"min_delta": -1}, "min_delta"),
        ({"dataset": 3}, "dataset must be a string"),
        ({"patience": 0}, "patience must be >= 1"),
        ({"min_delta": float("nan")}, "min_delta must be a finite number"),
        ({"min_delta": float("inf")}, "min_delta must be a finite number"),
        ({"min_delta": 10**400}, "min_delta must be a finite number"),
        ({"seed": 99999999999999999999}, "seed must be between 0 and 2\\*\\*63-1"),
        ({"seed": 2**63 - 1, "seeds": 2}, "seed \\+ seeds - 1"),
        ({"threads": 100000}, "threads must be between 1 and"),
        ({"epochs": "9" * 5000}, "epochs must be an integer"),
    ],
)
def test_bad_values(overrides, fragment):
    with pytest.raises(UserError, match=fragment):
        load_config(None, overrides)


def test_toml_values_are_checked_like_flags(tmp_path):
    path = tmp_path / "lab.toml"
    path.write_text("min_delta = nan\n")
    with pytest.raises(UserError, match="min_delta must be a finite number"):
        load_config(path)
    path.write_text("seed = 9223372036854775807\nseeds = 2\n")
    with pytest.raises(UserError, match="seeds - 1"):
        load_config(path)
    assert load_config(None, {"seed": 2**63 - 1}).seed == 2**63 - 1


def test_long_values_are_cut():
    with pytest.raises(UserError) as err:
        load_config(None, {"dataset": ["x" * 5000]})
    assert len(str(err.value)) < 200
