"""Muon for a whole model: the hidden/other split, and one optimizer equal to the two torch
optimizers (``torch.optim.Muon`` on the hidden matrices, ``torch.optim.AdamW`` on the rest)
stepped side by side, bit for bit."""

from __future__ import annotations

import copy

import pytest
import torch

import optimlab.optim as oo
from optimlab.optim.muon import MuonWithAdamW, muon_param_groups


def _mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.ReLU(),
        torch.nn.Linear(16, 12), torch.nn.ReLU(), torch.nn.Linear(12, 3),
    )


class _TextModel(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(10, 8)
        self.norm = torch.nn.LayerNorm(8)
        self.first = torch.nn.Linear(8, 8)
        self.hidden = torch.nn.Linear(8, 8)
        self.conv = torch.nn.Conv1d(8, 8, 3)
        self.head = torch.nn.Linear(8, 2)


def test_split_keeps_first_and_last_layers_biases_embeddings_and_convs_for_adamw():
    mlp = _mlp()
    hidden, rest = muon_param_groups(mlp)
    assert [id(p) for p in hidden] == [id(mlp[2].weight), id(mlp[4].weight)]
    assert {id(p) for p in rest} == {id(p) for p in mlp.parameters()} - {id(p) for p in hidden}
    text = _TextModel()
    hidden, rest = muon_param_groups(text)
    assert [id(p) for p in hidden] == [id(text.hidden.weight)]  # not the embedding's table
    assert len(rest) == len(list(text.parameters())) - 1


def test_split_from_a_parameter_list_and_named_pairs():
    mlp = _mlp()
    by_model = muon_param_groups(mlp)
    assert muon_param_groups(list(mlp.parameters())) == by_model
    assert muon_param_groups(list(mlp.named_parameters())) == by_model


def test_frozen_parameters_are_left_out():
    mlp = _mlp()
    mlp[2].weight.requires_grad_(False)
    hidden, rest = muon_param_groups(mlp)
    assert [id(p) for p in hidden] == [id(mlp[4].weight)]
    assert all(p.requires_grad for p in rest)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_bit_identical_to_torch_muon_plus_adamw(dtype):
    ours_model, theirs_model = _mlp().to(dtype), _mlp().to(dtype)
    ours = oo.create("muon_adamw", ours_model.parameters(), lr=0.02, adamw_lr=3e-3,
                     adjust_lr_fn="match_rms_adamw")
    hidden, rest = muon_param_groups(theirs_model)
    muon = torch.optim.Muon(hidden, lr=0.02, adjust_lr_fn="match_rms_adamw")
    adamw = torch.optim.AdamW(rest, lr=3e-3, foreach=False)
    gen = torch.Generator().manual_seed(1)
    for _ in range(100):
        x = torch.randn(32, 6, generator=gen, dtype=dtype)
        y = torch.randn(32, 3, generator=gen, dtype=dtype)
        for model, opts in ((ours_model, (ours,)), (theirs_model, (muon, adamw))):
            for opt in opts:
                opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            for opt in opts:
                opt.step()
        for a, b in zip(ours_model.parameters(), theirs_model.parameters(), strict=True):
            assert torch.equal(a, b)


def test_state_dict_round_trip_and_scheduler_drives_both_lrs():
    model = _mlp()
    opt = MuonWithAdamW(model, lr=0.02, adamw_lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    x, y = torch.randn(8, 6), torch.randn(8, 3)
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == [0.02 / 8, 1e-3 / 8]
    twin = _mlp()
    twin.load_state_dict(model.state_dict())
    other = MuonWithAdamW(twin, lr=0.02, adamw_lr=1e-3)
    other.load_state_dict(copy.deepcopy(opt.state_dict()))
    for m, o in ((model, opt), (twin, other)):
        o.zero_grad()
        torch.nn.functional.mse_loss(m(x), y).backward()
        o.step()
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters(),
                                                 strict=True))


def test_a_model_without_hidden_matrices_is_refused():
    with pytest.raises(ValueError, match="hidden 2-D weight matrices"):
        MuonWithAdamW(torch.nn.Linear(1, 1))
