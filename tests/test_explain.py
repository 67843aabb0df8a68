"""``optimlab explain``: every optimizer's card, taken from its rule's docstring, in plain text."""

from __future__ import annotations

import json

import pytest

import optimlab.optim as oo
from optimlab import cli
from optimlab.optim.cards import SEED_NOTEBOOKS, card, summaries
from optimlab.optim.plain_math import plain_math, plain_text


@pytest.mark.parametrize("name", oo.available())
def test_every_optimizer_has_a_full_card(name):
    c = card(name)
    assert c.summary and c.defaults and c.references and c.notes and c.seeds
    assert c.update, "no update rule found in the docstring"
    text = c.render()
    assert "\\" not in text, "LaTeX left in the card"
    assert ":math:" not in text and "``" not in text
    for heading in ("Update rule", "Defaults", "Paper", "deviates from the paper", "Seed notebook"):
        assert heading in text


@pytest.mark.parametrize("name", sorted(SEED_NOTEBOOKS))
def test_the_seed_optimizers_name_their_notebooks(name):
    assert card(name).seeds == SEED_NOTEBOOKS[name] and "00" in card(name).seeds


def test_a_variant_sharing_a_rule_keeps_its_own_summary():
    assert card("adamw").summary.startswith("AdamW: Adam with decoupled weight decay")
    assert card("adamw").update == card("adam").update


def test_card_is_read_from_the_docstring_not_a_copy(monkeypatch):
    """Change the rule's docstring and the card changes: one source of text."""
    doc = oo.NAdam.rule.__doc__
    monkeypatch.setattr(oo.nadam.nadam_update, "__doc__",
                        doc.replace("Dozat,", "Dozat (changed),"))
    assert "Dozat (changed)" in card("nadam").references
    assert "Dozat (changed)" not in plain_text(doc)


def test_paper_and_deviations_are_the_docstring_sections():
    c = card("adamax")
    assert "arXiv:1412.6980" in c.references
    assert c.notes.startswith("The paper has no ε")
    assert c.update[-1] == "w_t = w_(t-1) - γ/(1 - β_1^t) m_t/u_t"


def test_defaults_are_the_constructor_defaults():
    assert card("lion").defaults.startswith("lr=0.0001, betas=(0.9, 0.99), weight_decay=0.0")
    assert card("sam").defaults.startswith("base_optimizer, rho=0.05")


def test_names_are_matched_in_lower_case():
    assert card("RAdam").name == "radam"


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(oo.UnknownOptimizer, match="valid: adadelta, adagrad"):
        card("nosuch")


# (LaTeX, plain text): the constructs the rules' docstrings use
GOLDEN = [
    (r"m_t &= \beta_1 m_{t-1} + (1 - \beta_1) g_t", "m_t = β_1 m_(t-1) + (1 - β_1) g_t"),
    (r"w &\leftarrow w - \frac{\gamma}{1 - \beta_1^t} \, \frac{m}{\sqrt{v} + \epsilon}",
     "w ← w - γ/(1 - β_1^t) m/(√v + ε)"),
    (r"\hat d = \lVert s \rVert_1", "d̂ = ‖ s ‖_1"),
    (r"x = \begin{cases} a & \rho > 5 \\ 1 & \text{otherwise} \end{cases}",
     "x = { a if ρ > 5; 1 otherwise }"),
    (r"\tilde B_t \qquad\text{(Nesterov)}", "B̃_t (Nesterov)"),
    (r"a \\ b", None),
]


@pytest.mark.parametrize(("latex", "plain"), GOLDEN)
def test_plain_math_golden(latex, plain):
    lines = plain_math(latex)
    if plain is None:
        assert lines == ["a", "b"]
    else:
        assert lines == [plain]


def test_cli_lists_every_optimizer_with_its_summary(capsys):
    assert cli.main(["explain"]) == 0
    out = capsys.readouterr().out
    for name, summary in summaries():
        assert f"{name}" in out and summary in out


def test_cli_prints_one_card(capsys):
    assert cli.main(["explain", "muon"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("muon — optimlab.optim.muon.Muon")
    assert "O_t = NS^(a,b,c)_k(B̃_t)" in out


def test_cli_json(capsys):
    assert cli.main(["explain", "sgd", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["name"] == "sgd" and data["update"] and data["seeds"].startswith("000")
    assert cli.main(["explain", "--json"]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == list(oo.available())
