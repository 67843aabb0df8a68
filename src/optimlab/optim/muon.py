"""Muon: momentum orthogonalised by a Newton-Schulz iteration, for 2-D weight matrices."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from ._base import RuleOptimizer, check_tensor_lr
from .adam import AdamW

__all__ = [
    "Muon",
    "MuonWithAdamW",
    "adjusted_lr",
    "muon_param_groups",
    "muon_update",
    "newton_schulz",
]

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
ADJUST_LR_FNS = ("original", "match_rms_adamw", "spectral_unclamped")


def newton_schulz(
    g: Tensor, coefficients: tuple[float, float, float], steps: int, eps: float
) -> Tensor:
    r"""An approximate orthogonalisation :math:`U S' V^T` of :math:`G = U S V^T`, in bfloat16.

    :math:`X_0 = G / \max(\lVert G \rVert_F, \epsilon)` (transposed to be wide), then ``steps``
    times the quintic :math:`A = X X^T`, :math:`X \leftarrow aX + (bA + cA^2) X`. The
    coefficients push small singular values up fast; :math:`S'` ends roughly in [0.5, 1.5],
    not exactly 1 (Jordan et al. found this does not hurt).
    """
    if steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if len(g.shape) != 2:
        raise ValueError("Input tensor gradient must be a 2D matrix")
    if len(coefficients) != 3:
        raise ValueError("Coefficients must be a tuple of exactly 3 values")
    a, b, c = coefficients
    x = g.bfloat16()
    tall = g.size(0) > g.size(1)
    if tall:
        x = x.T
    x.div_(x.norm().clamp(min=eps))  # X_0 = G / ‖G‖_F
    for _ in range(steps):
        gram = x @ x.T  # A = X Xᵀ
        poly = torch.addmm(gram, gram, gram, beta=b, alpha=c)  # bA + cA²
        x = torch.addmm(x, poly, x, beta=a)  # X ← aX + (bA + cA²)X
    return x.T if tall else x


def adjusted_lr(lr: float | Tensor, adjust_lr_fn: str | None, shape: torch.Size) -> Any:
    r"""The learning rate scaled for an :math:`A \times B` matrix, as torch's ``_adjust_lr``.

    ``None``/``"original"`` (Jordan): :math:`\sqrt{\max(1, A/B)}`; ``"match_rms_adamw"``
    (Moonshot): :math:`0.2\sqrt{\max(A, B)}`; ``"spectral_unclamped"`` (Bernstein):
    :math:`\sqrt{A/B}`.
    """
    rows, cols = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        ratio = math.sqrt(max(1, rows / cols))
    elif adjust_lr_fn == "match_rms_adamw":
        ratio = 0.2 * math.sqrt(max(rows, cols))
    elif adjust_lr_fn == "spectral_unclamped":
        ratio = math.sqrt(rows / cols)
    else:
        ratio = 1.0
    return lr * ratio


def muon_update(
    param: Tensor,
    grad: Tensor,
    momentum_buffer: Tensor,
    *,
    step: float = 0.0,
    lr: float | Tensor = 1e-3,
    weight_decay: float = 0.1,
    momentum: float = 0.95,
    nesterov: bool = True,
    ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
    eps: float = 1e-7,
    ns_steps: int = 5,
    adjust_lr_fn: str | None = None,
) -> None:
    r"""Muon: step along the orthogonalised momentum of a weight matrix.

    With :math:`G_t` the gradient, step size :math:`\gamma`, momentum :math:`\mu`, decoupled
    decay :math:`\lambda` and :math:`\mathrm{NS}` the Newton-Schulz iteration
    (:func:`newton_schulz`):

    .. math::
        B_t &= \mu B_{t-1} + (1 - \mu) G_t \\
        \tilde B_t &= (1 - \mu) G_t + \mu B_t \ \text{(Nesterov)} \quad\text{or}\quad B_t \\
        O_t &= \mathrm{NS}^{(a,b,c)}_k(\tilde B_t) \\
        W_t &= (1 - \gamma\lambda) W_{t-1} - \gamma_{adj} O_t, \qquad
        \gamma_{adj} = \gamma\sqrt{\max(1, A/B)} \ \text{(default, see } \texttt{adjust\_lr\_fn})

    Updates ``param`` and ``momentum_buffer`` (:math:`B`) in place; ``grad`` is never
    modified.

    Args:
        param, grad: a 2-D weight matrix :math:`A \times B` and its gradient (real, dense).
        momentum_buffer: :math:`B`, zeros at the start.
        step: unused (Muon keeps no step count); every rule takes it.
        lr: :math:`\gamma` (default 1e-3; the Muon authors use 0.02 with the default scaling).
        weight_decay: :math:`\lambda`, decoupled, scaled by the unadjusted :math:`\gamma`
            (default 0.1).
        momentum: :math:`\mu` (default 0.95).
        nesterov: orthogonalise the look-ahead :math:`\tilde B_t` (default True).
        ns_coefficients: :math:`(a, b, c)` (default (3.4445, -4.7750, 2.0315)).
        eps: floor of the Frobenius norm in the first NS step (default 1e-7).
        ns_steps: :math:`k`, Newton-Schulz iterations (default 5, at most 99).
        adjust_lr_fn: ``None``/``"original"``, ``"match_rms_adamw"`` or
            ``"spectral_unclamped"`` (see :func:`adjusted_lr`).

    Example:
        >>> import torch
        >>> w, buf = torch.zeros(2, 2), torch.zeros(2, 2)
        >>> g = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
        >>> muon_update(w, g, buf, lr=0.1, weight_decay=0.0)
        >>> w.diagonal()  # g's 3:1 directions both move by about lr (singular values → ~1)
        tensor([-0.0750, -0.1133])

    References:
        Jordan et al., "Muon: An optimizer for hidden layers in neural networks", 2024,
        https://kellerjordan.github.io/posts/muon/.
        Liu et al., "Muon is Scalable for LLM Training", 2025, arXiv:2502.16982.
        Bernstein, "Deriving Muon", 2025, https://jeremybernste.in/writing/deriving-muon.

    Notes:
        torch's documentation writes :math:`B_t = \mu B_{t-1} + g_t` and
        :math:`\tilde B_t = g_t + \mu B_t`, but its code (and so this rule, and Jordan's
        reference code) keeps an exponential average: ``buf.lerp_(g, 1 - μ)`` and
        ``g.lerp(buf, μ)``. The Newton-Schulz iteration runs in bfloat16 on every device; the
        update is applied in the parameter's dtype. Weight decay uses the unadjusted
        :math:`\gamma`. Only 2-D parameters are accepted: Muon is meant for hidden weight
        matrices, with AdamW for biases, embeddings and the first and last layers.
    """
    if grad.ndim != 2:
        raise ValueError("Param gradient must be a 2D matrix")
    buf = momentum_buffer
    buf.lerp_(grad, 1 - momentum)  # B_t = μ·B + (1-μ)·G
    update = grad.lerp(buf, momentum) if nesterov else buf  # B̃_t
    orthogonal = newton_schulz(update, ns_coefficients, ns_steps, eps)  # O_t
    lr_adjusted = adjusted_lr(lr, adjust_lr_fn, param.shape)
    param.mul_(1 - lr * weight_decay)  # W ← (1 - γλ)·W
    param.add_(orthogonal, alpha=-lr_adjusted)  # W -= γ_adj·O_t


class Muon(RuleOptimizer):
    """Muon; drop-in for ``torch.optim.Muon`` (torch 2.14, 2-D parameters only).

    The update is :func:`muon_update`. State per parameter: ``momentum_buffer`` (no step
    count), torch's name, so state_dicts move between the two. Like torch's, it refuses
    non-2-D parameters at construction and complex or sparse ones at the step. For a whole
    model (Muon on hidden matrices, AdamW on the rest) see :class:`MuonWithAdamW`
    (registry name ``muon_adamw``).
    """

    rule = staticmethod(muon_update)
    state_keys = ("momentum_buffer",)
    hyperparams = (
        "lr", "weight_decay", "momentum", "nesterov", "ns_coefficients", "eps", "ns_steps",
        "adjust_lr_fn",
    )

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
        eps: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
    ) -> None:
        check_tensor_lr(lr)
        if not 0.0 <= lr:
            raise ValueError(f"Learning rate should be >= 0 but is: {lr}")
        if not 0.0 <= momentum:
            raise ValueError(f"momentum should be >= 0 but is: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"weight decay should be >= 0 but is: {weight_decay}")
        if adjust_lr_fn is not None and adjust_lr_fn not in ADJUST_LR_FNS:
            raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported")
        defaults = {
            "lr": lr,
            "weight_decay": weight_decay,
            "momentum": momentum,
            "nesterov": nesterov,
            "ns_coefficients": ns_coefficients,
            "eps": eps,
            "ns_steps": ns_steps,
            "adjust_lr_fn": adjust_lr_fn,
        }
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError(
                        "Muon only supports 2D parameters whereas we found a parameter with "
                        f"size: {p.size()}"
                    )

    def _params_with_grad(self, group: dict[str, Any]) -> list[Tensor]:
        params = []
        for p in group["params"]:  # torch's checks, in torch's order
            if p.grad is None:
                continue
            if torch.is_complex(p):
                raise RuntimeError("Muon does not support complex parameters")
            if p.grad.is_sparse:
                raise RuntimeError("Muon does not support sparse gradients")
            params.append(p)
        return params

    def _init_state(self, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
        state = self.state[p]
        grad = p.grad
        assert grad is not None  # state starts at the first step with a gradient
        state["momentum_buffer"] = torch.zeros_like(grad, memory_format=torch.preserve_format)
        return state


# -- Muon for a whole model: hidden matrices with Muon, everything else with AdamW ----------
def muon_param_groups(model_or_params: Any) -> tuple[list[Tensor], list[Tensor]]:
    """Split a model's parameters as the Muon authors and torch's documentation advise.

    Returns ``(for_muon, for_adamw)``. Muon takes the 2-D weight matrices of hidden layers;
    AdamW takes everything else: biases and gains (fewer than 2 dimensions), convolution
    filters and other >2-D tensors (torch's Muon refuses them), embedding tables
    (``nn.Embedding``), and the first and last weight matrices (input and output layers).
    "First" and "last" follow the order of ``model.parameters()``, which is the order the
    layers were defined in. ``model_or_params`` is an ``nn.Module`` or an iterable of
    parameters (or ``(name, parameter)`` pairs) in that order.

    >>> import torch
    >>> mlp = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
    ...                           torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    >>> hidden, rest = muon_param_groups(mlp)
    >>> [tuple(p.shape) for p in hidden], len(rest)
    ([(8, 8)], 5)
    """
    embeddings: set[int] = set()
    if isinstance(model_or_params, torch.nn.Module):
        for module in model_or_params.modules():
            if isinstance(module, torch.nn.Embedding | torch.nn.EmbeddingBag):
                embeddings.add(id(module.weight))
        params = list(model_or_params.parameters())
    else:
        params = [p[1] if isinstance(p, tuple) else p for p in model_or_params]
    trainable: list[Tensor] = [p for p in params if p.requires_grad]
    matrices = [p for p in trainable if p.ndim == 2 and id(p) not in embeddings]
    hidden_ids = {id(p) for p in matrices[1:-1]}
    hidden = [p for p in trainable if id(p) in hidden_ids]
    rest = [p for p in trainable if id(p) not in hidden_ids]
    return hidden, rest


class MuonWithAdamW(Optimizer):
    """Muon on a model's hidden weight matrices and AdamW on the rest, as one optimizer.

    The split is :func:`muon_param_groups`. Muon's keywords are ``torch.optim.Muon``'s (its
    defaults too); AdamW's carry an ``adamw_`` prefix, with ``torch.optim.AdamW``'s defaults.
    ``param_groups`` lists Muon's groups then AdamW's (one each), so an lr scheduler scales
    both learning rates alike; ``state_dict()`` is ``{"muon": …, "adamw": …}``.

    Args:
        params: an ``nn.Module`` or its parameters, in definition order.
        lr, weight_decay, momentum, nesterov, ns_coefficients, eps, ns_steps, adjust_lr_fn:
            Muon's (see :func:`muon_update`); the Muon authors use ``lr=0.02``.
        adamw_lr, adamw_betas, adamw_eps, adamw_weight_decay: AdamW's (defaults 1e-3,
            (0.9, 0.999), 1e-8, 1e-2).

    Raises ``ValueError`` when the model has no hidden weight matrix (fewer than three 2-D
    weights): Muon would have nothing to do.
    """

    #: the hidden matrices' update (``optimlab explain`` shows its math under this summary)
    rule = staticmethod(muon_update)
    shares_rule = True

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
        eps: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
        adamw_lr: float = 1e-3,
        adamw_betas: tuple[float, float] = (0.9, 0.999),
        adamw_eps: float = 1e-8,
        adamw_weight_decay: float = 1e-2,
    ) -> None:
        hidden, rest = muon_param_groups(params)
        if not hidden:
            raise ValueError(
                "Muon needs hidden 2-D weight matrices (a model with at least three "
                f"weight matrices); this one has none among {len(rest)} parameter(s): use adamw"
            )
        # Not Optimizer.__init__: the param groups are the two inner optimizers' (a property).
        self._optimizer_step_pre_hooks: dict[int, Any] = OrderedDict()
        self._optimizer_step_post_hooks: dict[int, Any] = OrderedDict()
        self.muon = Muon(hidden, lr=lr, weight_decay=weight_decay, momentum=momentum,
                         nesterov=nesterov, ns_coefficients=ns_coefficients, eps=eps,
                         ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn)
        self.adamw = AdamW(rest, lr=adamw_lr, betas=adamw_betas, eps=adamw_eps,
                           weight_decay=adamw_weight_decay)
        self.defaults = {**self.muon.defaults,
                         **{f"adamw_{k}": v for k, v in self.adamw.defaults.items()}}

    @property  # type: ignore[override]
    def param_groups(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return self.muon.param_groups + self.adamw.param_groups

    @property  # type: ignore[override]
    def state(self) -> dict[Any, Any]:  # type: ignore[override]
        return {**self.muon.state, **self.adamw.state}

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        raise NotImplementedError("add the group to .muon or .adamw")

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.muon.zero_grad(set_to_none)
        self.adamw.zero_grad(set_to_none)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.muon.step()
        self.adamw.step()
        return loss

    def state_dict(self) -> dict[str, Any]:  # type: ignore[override]
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # type: ignore[override]
        self.muon.load_state_dict(state_dict["muon"])
        self.adamw.load_state_dict(state_dict["adamw"])
