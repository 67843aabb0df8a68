"""SAM (and ASAM): step from the worst point of a small neighbourhood, with any optimizer."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.optim import Optimizer

from ._base import check

__all__ = ["SAM", "gradient_norm", "sam_perturbation"]


def gradient_norm(param_groups: Iterable[dict[str, Any]]) -> Tensor:
    r"""The global gradient norm SAM scales its perturbation by, as a float32 0-dim tensor.

    :math:`\lVert g \rVert = \sqrt{\sum_i \lVert g_i \rVert^2}` over every parameter with a
    gradient, with :math:`g_i` replaced by :math:`|w_i| \odot g_i` in groups with
    ``adaptive=True`` (ASAM). Each :math:`\lVert g_i \rVert` is taken in the parameter's
    dtype, then squared and summed in float32, as the reference does.
    """
    grads: list[Tensor] = []
    device = None
    for group in param_groups:
        for p in group["params"]:
            device = device or p.device
            if p.grad is not None:
                grads.append(p.grad * p.abs() if group.get("adaptive", False) else p.grad)
    if not grads:
        return torch.zeros((), dtype=torch.float32, device=device)
    norms = [g.norm() for g in grads]  # ‖g_i‖
    return torch.stack([n.to(device) for n in norms]).float().square_().sum().sqrt_()


def sam_perturbation(param: Tensor, grad: Tensor, scale: Tensor, adaptive: bool) -> Tensor:
    r"""SAM's ascent step :math:`\hat\epsilon`, to be added to the parameter.

    .. math::
        \hat\epsilon = \frac{\rho}{\lVert g \rVert + \varepsilon}\, g
        \quad\text{or, ASAM,}\quad
        \hat\epsilon = \frac{\rho}{\lVert |w| \odot g \rVert + \varepsilon}\, w^2 \odot g

    ``scale`` is :math:`\rho / (\lVert g \rVert + \varepsilon)` (float32, cast to the
    parameter's dtype here).

    Example:
        >>> import torch
        >>> w, g = torch.ones(2), torch.tensor([3.0, 4.0])
        >>> sam_perturbation(w, g, torch.tensor(0.05 / 5.0), adaptive=False)
        tensor([0.0300, 0.0400])
    """
    if adaptive:
        return torch.pow(param, 2) * grad * scale.to(param)  # ε̂ = w²·g·ρ/‖|w|g‖
    return grad * scale.to(param)  # ε̂ = g·ρ/‖g‖


def _centralized(grad: Tensor) -> Tensor:
    """Gradient centralisation: minus the mean over all but the first dimension (2-D and up)."""
    if grad.dim() > 1:
        return grad.add(-grad.mean(dim=tuple(range(1, grad.dim())), keepdim=True))
    return grad


def _base_class(base_optimizer: Any) -> Callable[..., Optimizer]:
    """An optimizer class, or one of ours by registry name (``"sgd"``)."""
    if isinstance(base_optimizer, str):
        from . import create  # the registry imports this module

        return lambda params, **kwargs: create(base_optimizer, params, **kwargs)
    return base_optimizer  # type: ignore[no-any-return]


class SAM(Optimizer):
    r"""Sharpness-Aware Minimization wrapping any optimizer; drop-in for ``pytorch_optimizer.SAM``.

    Each step evaluates the gradient twice: at :math:`w` (before the step, by the caller)
    and at the perturbed :math:`w + \hat\epsilon` (the closure), then restores :math:`w` and
    lets the base optimizer step with the second gradient:

    .. math::
        \hat\epsilon = \rho\, \frac{g}{\lVert g \rVert + \varepsilon}, \qquad
        g^{SAM} = \nabla L(w + \hat\epsilon), \qquad
        w \leftarrow \mathrm{base\_step}(w, g^{SAM})

    (ASAM, ``adaptive=True``: :math:`\hat\epsilon` from :func:`sam_perturbation`.)

    Args:
        params: parameters or param groups.
        base_optimizer: an optimizer class (ours or ``torch.optim``'s) or one of our registry
            names (``"sgd"``), built over the same param groups with ``**kwargs``.
        rho: :math:`\rho`, the neighbourhood radius (default 0.05; ASAM uses larger, ~2).
        adaptive: ASAM's scale-invariant neighbourhood (default False).
        use_gc: centralise the gradients before perturbing (default False).
        perturb_eps: :math:`\varepsilon` added to the norm (default 1e-12).
        foreach: accepted for compatibility; passed on to the base optimizer when set.
        **kwargs: the base optimizer's arguments (``lr=0.1, momentum=0.9``).

    Use either ``loss = closure(); optimizer.step(closure)`` — the gradient at :math:`w`
    must exist when ``step`` is called, and the closure (which zeroes the gradients, runs
    forward and backward and returns the loss) is the *second* pass — or the two halves:
    ``first_step(zero_grad=True)``, a forward/backward, ``second_step()``.

    Example:
        >>> import torch
        >>> w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        >>> opt = SAM([w], torch.optim.SGD, rho=0.05, lr=0.1)
        >>> def closure():
        ...     opt.zero_grad()
        ...     loss = (w**2).sum()
        ...     loss.backward()
        ...     return loss
        >>> _ = closure()  # first pass: the gradient at w
        >>> _ = opt.step(closure)  # second pass at w + ε̂, then SGD
        >>> w.detach()
        tensor([ 0.7955, -1.5911])

    References:
        Foret et al., "Sharpness-Aware Minimization for Efficiently Improving
        Generalization", ICLR 2021, arXiv:2010.01412. Kwon et al., "ASAM", ICML 2021,
        arXiv:2102.11600. Reference code: davda54/sam; ``pytorch_optimizer`` 4.1.0's ``SAM``.

    Notes:
        As the reference: the norm is summed in float32 even for float64 parameters and
        :math:`\varepsilon` is added to the norm, not inside the division by
        :math:`\rho`; the perturbation of the paper's :math:`p = 2` case. ``step``
        returns the closure's loss (at :math:`w + \hat\epsilon`; the reference returns
        None). With ``use_gc`` the reference centralises ``p.grad`` in place; here the
        gradient is left alone and the centralised copy is used for the perturbation.
    """

    #: ``step`` must be given a closure (the second pass): training loops that read this
    #: (``optimlab.engine``) run the first forward/backward, then ``step(closure)``
    requires_closure: ClassVar[bool] = True

    def __init__(
        self,
        params: Any,
        base_optimizer: Any,
        rho: float = 0.05,
        adaptive: bool = False,
        use_gc: bool = False,
        perturb_eps: float = 1e-12,
        foreach: bool | None = None,
        **kwargs: Any,
    ) -> None:
        check(rho >= 0.0, "rho (must be non-negative)", rho)
        check(perturb_eps >= 0.0, "perturb_eps (must be non-negative)", perturb_eps)
        self.use_gc = use_gc
        self.perturb_eps = perturb_eps
        if foreach is not None:
            kwargs["foreach"] = foreach
        defaults = {"rho": rho, "adaptive": adaptive, "foreach": foreach, **kwargs}
        super().__init__(params, defaults)
        #: the wrapped optimizer; it shares this one's param groups and state
        self.base_optimizer: Optimizer = _base_class(base_optimizer)(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.state = self.base_optimizer.state

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Move to :math:`w + \\hat\\epsilon`, remembering :math:`w` as ``state['old_p']``."""
        grad_norm = gradient_norm(self.param_groups).add_(self.perturb_eps)
        for group in self.param_groups:
            scale = group["rho"] / grad_norm  # ρ / (‖g‖ + ε)
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = _centralized(p.grad) if self.use_gc else p.grad
                self.state[p]["old_p"] = p.clone()
                p.add_(sam_perturbation(p, grad, scale, group["adaptive"]))
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Return to :math:`w` and let the base optimizer step with the gradient found there."""
        for group in self.param_groups:
            for p in group["params"]:
                if "old_p" in self.state[p]:
                    p.copy_(self.state[p].pop("old_p"))
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """First step, the closure's forward/backward at :math:`w + \\hat\\epsilon`, second step.

        The gradient at :math:`w` must already be there; returns the closure's loss.
        """
        if closure is None:
            raise ValueError(
                "SAM needs a closure: step(closure) with the gradient at w already computed "
                "(or call first_step()/second_step() around your own forward/backward)"
            )
        self.first_step(zero_grad=True)
        with torch.enable_grad():
            loss = closure()
        self.second_step()
        return loss

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.base_optimizer.param_groups = self.param_groups  # share again, as at construction
        self.base_optimizer.state = self.state
