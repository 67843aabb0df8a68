"""Building SAM and Lookahead around an optimizer by name, keywords split by the wrapper's own
signature: the result trains exactly like the classes built by hand."""

from __future__ import annotations

import pytest
import torch
from optim_cases import make_groups
from reference_pairs import params_pair, train_pair

import optimlab.optim as oo
from optimlab.optim.wrappers import create_wrapped, wrapper_options


def test_wrapper_options_are_the_wrappers_own_keywords():
    assert wrapper_options("sam") == ("rho", "adaptive", "use_gc", "perturb_eps")
    assert wrapper_options("lookahead") == ("k", "alpha", "pullback_momentum")


def test_lookahead_by_name_trains_like_the_hand_built_one():
    ours_p, hand_p = params_pair(torch.float32)
    by_name = create_wrapped("lookahead", "adam", make_groups(ours_p, {}, oo.Adam),
                             k=3, alpha=0.6, lr=0.01, amsgrad=True)
    hand = oo.Lookahead(oo.Adam(make_groups(hand_p, {}, oo.Adam), lr=0.01, amsgrad=True),
                        k=3, alpha=0.6)
    assert train_pair(by_name, ours_p, hand, hand_p, 20, torch.Generator().manual_seed(0)) \
        is None


def test_sam_by_name_trains_like_the_hand_built_one():
    models = []
    for _ in range(2):
        torch.manual_seed(0)
        models.append(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),
                                          torch.nn.Linear(4, 1)))
    by_name = create_wrapped("sam", "sgd", models[0].parameters(), rho=0.1, lr=0.1,
                             momentum=0.9)
    hand = oo.SAM(models[1].parameters(), oo.SGD, rho=0.1, lr=0.1, momentum=0.9)
    x, y = torch.randn(8, 3), torch.randn(8, 1)
    for _ in range(10):
        for model, opt in zip(models, (by_name, hand), strict=True):
            def closure(model=model, opt=opt):
                opt.zero_grad()
                loss = torch.nn.functional.mse_loss(model(x), y)
                loss.backward()
                return loss
            closure()
            opt.step(closure)
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("wrapper", "inner", "fragment"),
    [("swa", "sgd", "unknown wrapper 'swa'; valid: lookahead, sam"),
     ("sam", "nosuch", "unknown optimizer 'nosuch' inside sam(…); valid: adadelta"),
     ("sam", "lookahead", "unknown optimizer 'lookahead' inside sam(…)")],
)
def test_unknown_or_nested_names_list_the_valid_ones(wrapper, inner, fragment):
    with pytest.raises(oo.UnknownOptimizer, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        create_wrapped(wrapper, inner, [torch.zeros(2, requires_grad=True)], lr=0.1)


def test_bad_values_raise_the_classes_own_errors():
    with pytest.raises(ValueError, match="Invalid rho"):
        create_wrapped("sam", "sgd", [torch.zeros(2, requires_grad=True)], rho=-1.0, lr=0.1)
    with pytest.raises(TypeError, match="nosuch"):
        create_wrapped("lookahead", "sgd", [torch.zeros(2, requires_grad=True)], nosuch=1)
