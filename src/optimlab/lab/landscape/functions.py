"""Two-dimensional test functions: the classic pictures of what an optimizer does.

Each :class:`TestFunction` holds its formula (as text and as a torch expression over two
tensors, so autograd gives the gradient and the same code draws the contours), the box it is
studied on (its *domain*: a run that leaves it is cut there and marked diverged), its minima and
a default starting point. Values are unitless.

References: Surjanovic & Bingham, *Virtual Library of Simulation Experiments: Test Functions*
(sfu.ca/~ssurjano); Rosenbrock, *The Computer Journal* 3 (1960); Beale (1958); Rastrigin
(1974); Himmelblau, *Applied Nonlinear Programming* (1972).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

Point = tuple[float, float]


@dataclass(frozen=True)
class TestFunction:
    """A 2-D function with its domain, minima and the look of its contour plot."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    formula: str  # the formula as plain text, for the page and ``--help``
    fn: Callable[[Tensor, Tensor], Tensor]  # f(x, y), elementwise on tensors
    domain: tuple[Point, Point]  # ((x_min, x_max), (y_min, y_max)), inclusive
    minima: tuple[Point, ...]  # global minima (empty when f is unbounded below)
    start: Point  # default starting point
    log_levels: bool  # contours on a log scale (values span many decades)
    about: str  # one line: what this function shows

    def __call__(self, x: Tensor, y: Tensor) -> Tensor:
        return self.fn(x, y)

    def contains(self, x: float, y: float) -> bool:
        """True when ``(x, y)`` is finite and inside the domain (edges included)."""
        (x0, x1), (y0, y1) = self.domain
        return math.isfinite(x) and math.isfinite(y) and x0 <= x <= x1 and y0 <= y <= y1


def rosenbrock(x: Tensor, y: Tensor, a: float = 1.0, b: float = 100.0) -> Tensor:
    """f(x, y) = (a − x)² + b·(y − x²)², a = 1, b = 100; minimum f(a, a²) = f(1, 1) = 0."""
    return (a - x) ** 2 + b * (y - x**2) ** 2


def beale(x: Tensor, y: Tensor) -> Tensor:
    """f = (1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²; minimum f(3, 0.5) = 0."""
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def rastrigin(x: Tensor, y: Tensor) -> Tensor:
    """f = 20 + x² − 10·cos(2πx) + y² − 10·cos(2πy); minimum f(0, 0) = 0, many local minima."""
    two_pi = 2 * math.pi
    return 20 + x**2 - 10 * torch.cos(two_pi * x) + y**2 - 10 * torch.cos(two_pi * y)


def himmelblau(x: Tensor, y: Tensor) -> Tensor:
    """f = (x² + y − 11)² + (x + y² − 7)²; four minima with f = 0."""
    return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2


def saddle(x: Tensor, y: Tensor) -> Tensor:
    """f = x² − y²: a saddle at (0, 0), unbounded below along y."""
    return x**2 - y**2


QUADRATIC_KAPPA = 50.0  # the condition number of the quadratic's Hessian diag(1, κ)


def quadratic(x: Tensor, y: Tensor) -> Tensor:
    """f = (x² + κ·y²)/2 with κ = 50: Hessian diag(1, 50), condition number 50; min f(0,0)=0."""
    return (x**2 + QUADRATIC_KAPPA * y**2) / 2


FUNCTIONS: dict[str, TestFunction] = {
    f.name: f
    for f in (
        TestFunction(
            "rosenbrock", "(1 − x)² + 100·(y − x²)²", rosenbrock,
            ((-2.0, 2.0), (-1.0, 3.0)), ((1.0, 1.0),), (-1.5, 2.0), True,
            "a curved, flat-bottomed valley: easy to reach, slow to follow to (1, 1)"),
        TestFunction(
            "beale", "(1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²", beale,
            ((-4.5, 4.5), (-4.5, 4.5)), ((3.0, 0.5),), (1.0, 1.5), True,
            "flat plateaus and steep ridges: gradients span many orders of magnitude"),
        TestFunction(
            "rastrigin", "20 + x² − 10·cos(2πx) + y² − 10·cos(2πy)", rastrigin,
            ((-5.12, 5.12), (-5.12, 5.12)), ((0.0, 0.0),), (-3.2, 4.3), False,
            "a bowl covered in local minima one unit apart: where does each optimizer stop?"),
        TestFunction(
            "himmelblau", "(x² + y − 11)² + (x + y² − 7)²", himmelblau,
            ((-5.0, 5.0), (-5.0, 5.0)),
            ((3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)),
            (0.0, 0.0), True, "four equal minima: which basin each optimizer falls into"),
        TestFunction(
            "saddle", "x² − y²", saddle, ((-2.0, 2.0), (-2.0, 2.0)), (), (-1.8, 1e-3), False,
            "a saddle at (0, 0), no minimum: leaving the domain along y is the escape"),
        TestFunction(
            "quadratic", "(x² + 50·y²)/2", quadratic, ((-2.0, 2.0), (-2.0, 2.0)),
            ((0.0, 0.0),), (-1.8, 0.6), True,
            "an ill-conditioned bowl (condition number 50): zig-zags across, crawls along"),
    )
}
