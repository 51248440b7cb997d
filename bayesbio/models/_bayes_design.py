"""Design matrices for the Bayesian yield model (internal).

The four process parameters are standardised with the *schema operating ranges*, not with
the data: ``z = (x - centre) / half_width`` so ``z = -1`` and ``z = +1`` are the ends of the
operating range. The scaling is therefore fixed, needs no fitted state, and a slope means
"change in log-yield from the centre to the edge of the operating range".

Two structures share the same building blocks (both linear in their basis functions, so a
prediction is a matrix product):

``quadratic``
    4 linear + 4 quadratic + 6 two-way interaction terms (a second-order response surface).
``spline``
    4 linear + 6 interactions + for each parameter a cubic B-spline basis (7 functions on
    ``z`` in [-1.5, 1.5], outside of which it is held constant) with its constant and linear
    parts projected out, leaving 5 purely non-linear columns per parameter. An additive smooth
    surface that can bend where a parabola cannot.

Group-varying terms (the primary group's slope and curvature deviations) are always the 4
linear + 4 quadratic columns.
"""

from __future__ import annotations

from functools import cache
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.interpolate import BSpline

from bayesbio import schema

STRUCTURES: tuple[str, ...] = ("quadratic", "spline")

_CENTRE = np.array([sum(schema.BOUNDS[p]) / 2.0 for p in schema.PARAMETERS])
_HALF = np.array([(schema.BOUNDS[p][1] - schema.BOUNDS[p][0]) / 2.0 for p in schema.PARAMETERS])
_SHORT = {"mixing_time": "mix", "temperature": "temp", "ph": "ph", "dissolved_oxygen": "do"}

_SPLINE_LIMIT = 1.5
_SPLINE_DEGREE = 3
_SPLINE_INTERIOR = 3


def standardise(table: pd.DataFrame) -> np.ndarray:
    """Return the ``(n, 4)`` standardised parameters of ``table`` (operating range -> [-1, 1])."""
    x = table.loc[:, list(schema.PARAMETERS)].to_numpy(dtype=np.float64)
    return (x - _CENTRE) / _HALF


def linear_names() -> list[str]:
    """Return the names of the linear terms."""
    return [_SHORT[p] for p in schema.PARAMETERS]


def quadratic_names() -> list[str]:
    """Return the names of the squared terms."""
    return [f"{_SHORT[p]}^2" for p in schema.PARAMETERS]


def interaction_names() -> list[str]:
    """Return the names of the two-way interaction terms."""
    return [f"{_SHORT[a]}:{_SHORT[b]}" for a, b in combinations(schema.PARAMETERS, 2)]


def _interactions(z: np.ndarray) -> np.ndarray:
    return np.column_stack([z[:, i] * z[:, j] for i, j in combinations(range(z.shape[1]), 2)])


@cache
def _spline_setup() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Knots, the constant+linear fit of the basis, and the projection onto what is left."""
    inner = np.linspace(-_SPLINE_LIMIT, _SPLINE_LIMIT, _SPLINE_INTERIOR + 2)
    knots = np.concatenate(
        [np.repeat(inner[0], _SPLINE_DEGREE), inner, np.repeat(inner[-1], _SPLINE_DEGREE)]
    )
    grid = np.linspace(-_SPLINE_LIMIT, _SPLINE_LIMIT, 301)
    basis = BSpline.design_matrix(grid, knots, _SPLINE_DEGREE).toarray()
    # Project out span{1, z} on the grid: what is left is orthogonal to intercept and slope,
    # so the spline block adds curvature only and does not fight the linear terms.
    poly = np.column_stack([np.ones_like(grid), grid])
    coef, *_ = np.linalg.lstsq(poly, basis, rcond=None)
    resid = basis - poly @ coef
    _, s, vt = np.linalg.svd(resid, full_matrices=False)
    keep = s > 1e-8 * s[0]
    proj = vt[keep].T / s[keep] * np.sqrt(len(grid))  # unit-RMS columns on the grid
    return knots, coef, proj


def spline_basis(zj: np.ndarray) -> np.ndarray:
    """Non-linear B-spline columns for one standardised parameter."""
    knots, coef, proj = _spline_setup()
    zc = np.clip(zj, -_SPLINE_LIMIT, _SPLINE_LIMIT)
    basis = BSpline.design_matrix(zc, knots, _SPLINE_DEGREE).toarray()
    resid = basis - np.column_stack([np.ones_like(zc), zc]) @ coef
    return resid @ proj


def n_spline() -> int:
    """Return the number of spline columns per parameter."""
    return _spline_setup()[2].shape[1]


def population_terms(structure: str) -> list[str]:
    """Return the names of the population-level (fixed-effect) design columns of a structure."""
    if structure == "quadratic":
        return linear_names() + quadratic_names() + interaction_names()
    if structure == "spline":
        spl = [f"s({_SHORT[p]})[{k}]" for p in schema.PARAMETERS for k in range(n_spline())]
        return linear_names() + interaction_names() + spl
    raise ValueError(f"structure must be one of {STRUCTURES}, got {structure!r}")


def slope_terms() -> list[str]:
    """Return the names of the group-varying design columns (linear and quadratic)."""
    return linear_names() + quadratic_names()


def population_design(z: np.ndarray, structure: str) -> np.ndarray:
    """Return the population design ``(n, p)`` of a structure for standardised ``z``."""
    if structure == "quadratic":
        return np.column_stack([z, z**2, _interactions(z)])
    if structure == "spline":
        spl = [spline_basis(z[:, j]) for j in range(z.shape[1])]
        return np.column_stack([z, _interactions(z), *spl])
    raise ValueError(f"structure must be one of {STRUCTURES}, got {structure!r}")


def slope_design(z: np.ndarray) -> np.ndarray:
    """Return the group-varying design ``(n, 8)``: linear and squared parameters."""
    return np.column_stack([z, z**2])


def spline_groups(structure: str) -> np.ndarray:
    """Return which parameter (0-3) owns each spline coefficient (spline structure)."""
    if structure != "spline":
        return np.zeros(0, dtype=int)
    return np.repeat(np.arange(len(schema.PARAMETERS)), n_spline())
