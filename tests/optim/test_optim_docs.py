"""The docstring examples of the update rules and the registry run and print what they show."""

from __future__ import annotations

import doctest

import pytest

import optimlab.optim as oo
from optimlab.optim import adadelta, adagrad, adam, rmsprop, sgd


@pytest.mark.parametrize(
    "module", [oo, sgd, adagrad, rmsprop, adam, adadelta], ids=lambda m: m.__name__
)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
