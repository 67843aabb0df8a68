"""The docstring examples of the new update rules and wrappers run and print what they show."""

from __future__ import annotations

import doctest

import pytest

from optimlab.optim import (
    adamax,
    lion,
    lookahead,
    muon,
    nadam,
    prodigy,
    radam,
    sam,
    schedulefree,
    wrappers,
)

MODULES = [nadam, radam, adamax, lion, muon, schedulefree, sam, lookahead, prodigy, wrappers]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
