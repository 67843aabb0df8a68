"""Models: architectures against hand-written references, seeded init, shape checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from optimlab.errors import UserError
from optimlab.models import MODEL_NAMES, build_model


def _reference(name: str, seed: int) -> nn.Module:
    """The seeds' architectures, written out by hand, built under the same seed."""
    torch.manual_seed(seed)
    if name == "mlp":  # seed 004, MNIST
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.LeakyReLU(),
                             nn.Linear(128, 128), nn.LeakyReLU(), nn.Linear(128, 128),
                             nn.LeakyReLU(), nn.Linear(128, 10))
    if name == "mlp512":  # seed 002, Fashion-MNIST
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512),
                             nn.ReLU(), nn.Linear(512, 10))
    assert name == "lenet"  # seed 000, CIFAR-10
    return nn.Sequential(nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(),
                         nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


@pytest.mark.parametrize("name,shape", [("mlp", (1, 28, 28)), ("mlp512", (1, 28, 28)),
                                        ("lenet", (3, 32, 32))])
def test_matches_hand_written_reference(name, shape):
    state = torch.get_rng_state()
    model = build_model(name, shape, 10, seed=5)
    assert torch.equal(torch.get_rng_state(), state)  # global RNG untouched
    ref = _reference(name, 5)
    x = torch.randn(4, *shape)
    assert torch.equal(model(x), ref(x))


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_output_shape_and_seeded_init(name, shape):
    if name == "lenet" and shape != (3, 32, 32):
        pytest.skip("lenet takes 32×32 only")
    a, b, c = (build_model(name, shape, 7, seed=s) for s in (1, 1, 2))
    assert a(torch.randn(3, *shape)).shape == (3, 7)
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_linear_for_the_line():
    model = build_model("linear", (1,), 1)
    assert model(torch.zeros(5, 1)).shape == (5, 1)


def test_rejects_unknown_names_and_unfit_shapes():
    with pytest.raises(UserError, match="valid: linear, mlp, mlp512, lenet, cnn"):
        build_model("resnet", (1, 8, 8), 10)
    with pytest.raises(UserError, match="32×32"):
        build_model("lenet", (1, 8, 8), 10)
    with pytest.raises(UserError, match="image inputs"):
        build_model("cnn", (1,), 1)
    with pytest.raises(UserError, match="at least 4×4"):
        build_model("cnn", (1, 2, 2), 3)
