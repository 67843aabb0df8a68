"""The seed notebooks' models, by name, sized from the dataset.

=========  ==================================================================================
name       architecture
=========  ==================================================================================
linear     Flatten → Linear(in, out)                                 (seed 001's line fit)
mlp        Flatten → [Linear(·, 128) → LeakyReLU] ×3 → Linear(128, out)   (seed 004)
mlp512     Flatten → Linear(·, 512) → ReLU → Linear(512, 512) → ReLU → Linear(512, out) (002)
lenet      seed 000's Net: conv 6@5×5 → ReLU → pool 2 → conv 16@5×5 → ReLU → pool 2 →
           fc 120 → 84 → out; needs (C, 32, 32) inputs (CIFAR-10)
cnn        conv 16@3×3 (pad 1) → ReLU → pool 2 → conv 32@3×3 (pad 1) → ReLU → pool 2 →
           fc 64 → out; made for (1, 28, 28) but adapts to any (C, H, W) with H, W ≥ 4
           (8×8 digits give a 2×2 map before the classifier)
=========  ==================================================================================

The same ``seed`` gives bit-identical initial weights; the global RNG is left untouched.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from optimlab.errors import UserError

MODEL_NAMES = ("linear", "mlp", "mlp512", "lenet", "cnn")


def _linear(shape: tuple[int, ...], out: int) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(shape), out))


def _mlp(shape: tuple[int, ...], out: int) -> nn.Module:
    layers: list[nn.Module] = [nn.Flatten()]
    width = math.prod(shape)
    for _ in range(3):
        layers += [nn.Linear(width, 128), nn.LeakyReLU()]
        width = 128
    return nn.Sequential(*layers, nn.Linear(width, out))


def _mlp512(shape: tuple[int, ...], out: int) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(shape), 512), nn.ReLU(),
        nn.Linear(512, 512), nn.ReLU(),
        nn.Linear(512, out),
    )


def _image_shape(name: str, shape: tuple[int, ...], need: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise UserError(
            f"model {name!r} needs image inputs (C, H, W) {need}, but the dataset's inputs "
            f"have shape {shape}; use 'linear', 'mlp' or 'mlp512'"
        )
    c, h, w = shape
    return c, h, w


def _lenet(shape: tuple[int, ...], out: int) -> nn.Module:
    c, h, w = _image_shape("lenet", shape, "with H = W = 32")
    if (h, w) != (32, 32):
        raise UserError(
            f"model 'lenet' needs 32×32 images (CIFAR-10), got {h}×{w}; use 'cnn' or 'mlp'"
        )
    return nn.Sequential(
        nn.Conv2d(c, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, out),
    )


def _cnn(shape: tuple[int, ...], out: int) -> nn.Module:
    c, h, w = _image_shape("cnn", shape, "with H, W >= 4")
    if h < 4 or w < 4:
        raise UserError(f"model 'cnn' needs images of at least 4×4, got {h}×{w}")
    return nn.Sequential(
        nn.Conv2d(c, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * (h // 4) * (w // 4), 64), nn.ReLU(),
        nn.Linear(64, out),
    )


_BUILDERS: dict[str, Callable[[tuple[int, ...], int], nn.Module]] = {
    "linear": _linear, "mlp": _mlp, "mlp512": _mlp512, "lenet": _lenet, "cnn": _cnn,
}


def build_model(
    name: str, input_shape: tuple[int, ...], num_outputs: int, *, seed: int = 0
) -> nn.Module:
    """Build model ``name`` for inputs of ``input_shape`` and ``num_outputs`` outputs.

    Weights use PyTorch's default initialisation drawn under ``torch.manual_seed(seed)`` inside
    ``torch.random.fork_rng``, so the same seed gives the same weights and the caller's global
    RNG state is unchanged. Raises :class:`UserError` for an unknown name or an input shape
    the model cannot take.

    Example::

        model = build_model("mlp", (1, 28, 28), 10, seed=0)
    """
    builder = _BUILDERS.get(name.lower())
    if builder is None:
        raise UserError(f"unknown model {name!r}; valid: {', '.join(MODEL_NAMES)}")
    if num_outputs < 1:
        raise UserError(f"num_outputs must be >= 1, got {num_outputs}")
    shape = tuple(int(s) for s in input_shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder(shape, num_outputs)
