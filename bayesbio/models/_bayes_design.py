"""Design matrices for the Bayesian yield model (internal).

The ``k`` factors of a :class:`~bayesbio.space.ProcessSpace` are standardised with the
space's *operating ranges*, not with the data (:meth:`ProcessSpace.standardise`):
``z = (x - centre) / half_width`` so ``z = -1`` and ``z = +1`` are the ends of the operating
range. The scaling is therefore fixed, needs no fitted state, and a slope means "change in
log-response from the centre to the edge of the operating range".

Four structures share the same building blocks (all linear in their basis functions, so a
prediction is a matrix product):

``quadratic``
    ``k`` linear + ``k`` quadratic + ``k(k-1)/2`` two-way interaction terms (a second-order
    response surface; 4 + 4 + 6 for the default four-factor space).
``spline``
    ``k`` linear + ``k(k-1)/2`` interactions + for each factor a cubic B-spline basis
    (7 functions on ``z`` in [-1.5, 1.5], outside of which it is held constant) with its
    constant and linear parts projected out, leaving 5 purely non-linear columns per factor.
    An additive smooth surface that can bend where a parabola cannot.
``gp``
    The quadratic surface as the GP's mean (universal kriging: the parabola carries the
    global curvature, so far from the data the surface falls off as a quadratic would
    instead of reverting to a plane) + a Gaussian process over the ``k`` standardised
    factors for what a parabola cannot follow (asymmetry, plateaus, local interactions), in the
    Hilbert-space (HSGP) form of Solin & Särkkä (2020) and Riutort-Mayol et al. (2023): the
    GP is a weighted sum of the Laplacian eigenfunctions of the box ``[-L, L]^k``,
    ``phi_j(z) = prod_d L**-0.5 sin(pi j_d (z_d + L) / (2 L))``, whose weights have prior
    variance ``eta**2 S(omega_j)``, ``S`` the spectral density of an ARD Matern-5/2 kernel at
    the frequencies ``omega_jd = pi j_d / (2 L)``. The basis is fixed, so the GP is linear in
    its weights, like the other structures, and predictions are one matrix product per block
    of draws. Instead of the full tensor grid of ``m**k`` functions, the multi-indices kept
    are the *hyperbolic cross* ``prod_d j_d <= M``: each factor's main effect is resolved with
    up to ``M`` functions, interactions with fewer (``M`` the largest of 12, 10, 8, 6, 4, 3,
    2 that keeps at most 100 functions: 35 for two factors, 89 for four, 76 for six). With
    ``L = 2.5`` and inputs clipped to ``[-1.5, 1.5]`` (as the spline), length scales down to
    about a third of the operating range are represented.

``quadratic_by_group``
    The ``quadratic`` design; the model gives its primary group (the first group column,
    e.g. scale) partially pooled deviations of the linear terms even where
    ``varying_slopes`` is off for the other structures: under the shared curvature, each
    level its own optimum location. A stacking candidate for processes whose optimum moves
    with scale.

Group-varying terms (the primary group's slope and curvature deviations) are the ``k``
linear columns, or the ``k`` linear + ``k`` quadratic columns (``VARYING_TERMS``). With
``k = 1`` there are no interactions.

Term names use each factor's short token (:meth:`ProcessSpace.short`): ``temp``,
``temp^2``, ``temp:ph``, ``s(temp)[0]``. Every function takes the space; ``space=None`` is
the default (demo) space.
"""

from __future__ import annotations

from functools import cache
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.interpolate import BSpline

from bayesbio.space import ProcessSpace, resolve_space

STRUCTURES: tuple[str, ...] = ("quadratic", "spline", "gp", "quadratic_by_group")

#: Structures that share another's population design and differ in their group terms only.
_SAME_DESIGN = {"quadratic_by_group": "quadratic"}

_SPLINE_LIMIT = 1.5
_SPLINE_DEGREE = 3
_SPLINE_INTERIOR = 3
_GP_LIMIT = 1.5
_GP_BOUNDARY = 2.5
_GP_MAX_FUNCTIONS = 100
_GP_RESOLUTIONS = (12, 10, 8, 6, 4, 3, 2)


def _shorts(space: ProcessSpace | None) -> list[str]:
    sp = resolve_space(space)
    return [sp.short(name) for name in sp.factor_names]


def standardise(table: pd.DataFrame, space: ProcessSpace | None = None) -> np.ndarray:
    """Return the ``(n, k)`` standardised factors of ``table`` (operating range -> [-1, 1])."""
    return resolve_space(space).standardise(table)


def linear_names(space: ProcessSpace | None = None) -> list[str]:
    """Return the names of the linear terms (the factors' short tokens)."""
    return _shorts(space)


def quadratic_names(space: ProcessSpace | None = None) -> list[str]:
    """Return the names of the squared terms."""
    return [f"{s}^2" for s in _shorts(space)]


def interaction_names(space: ProcessSpace | None = None) -> list[str]:
    """Return the names of the two-way interaction terms (none for a single factor)."""
    return [f"{a}:{b}" for a, b in combinations(_shorts(space), 2)]


def _interactions(z: np.ndarray) -> np.ndarray:
    pairs = list(combinations(range(z.shape[1]), 2))
    if not pairs:
        return np.zeros((z.shape[0], 0))
    return np.column_stack([z[:, i] * z[:, j] for i, j in pairs])


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
    """Non-linear B-spline columns for one standardised factor."""
    knots, coef, proj = _spline_setup()
    zc = np.clip(zj, -_SPLINE_LIMIT, _SPLINE_LIMIT)
    basis = BSpline.design_matrix(zc, knots, _SPLINE_DEGREE).toarray()
    resid = basis - np.column_stack([np.ones_like(zc), zc]) @ coef
    return resid @ proj


def n_spline() -> int:
    """Return the number of spline columns per factor."""
    return _spline_setup()[2].shape[1]


def _cross(k: int, budget: int) -> list[tuple[int, ...]]:
    """Multi-indices ``j >= 1`` of length ``k`` with ``prod(j) <= budget`` (sorted)."""
    out: list[tuple[int, ...]] = []

    def grow(prefix: tuple[int, ...], room: int) -> None:
        if len(prefix) == k:
            out.append(prefix)
            return
        for j in range(1, room + 1):
            grow((*prefix, j), room // j)

    grow((), budget)
    return sorted(out, key=lambda t: (np.prod(t), t))


@cache
def gp_indices(k: int) -> np.ndarray:
    """Return the HSGP multi-indices ``(m, k)`` of the ``gp`` structure for ``k`` factors."""
    for budget in _GP_RESOLUTIONS:
        idx = _cross(k, budget)
        if len(idx) <= _GP_MAX_FUNCTIONS:
            break
    return np.array(idx, dtype=np.int64).reshape(-1, k)


def gp_frequencies(k: int) -> np.ndarray:
    """Return the angular frequencies ``(m, k)`` of the ``gp`` basis functions."""
    return np.pi * gp_indices(k) / (2.0 * _GP_BOUNDARY)


def gp_basis(z: np.ndarray) -> np.ndarray:
    """Return the HSGP eigenfunctions ``(n, m)`` at standardised ``z (n, k)``."""
    z = np.clip(np.asarray(z, dtype=float), -_GP_LIMIT, _GP_LIMIT)
    k = z.shape[1]
    freq = gp_frequencies(k)
    out = np.ones((z.shape[0], freq.shape[0]))
    for d in range(k):
        out *= np.sin(np.outer(z[:, d] + _GP_BOUNDARY, freq[:, d])) / np.sqrt(_GP_BOUNDARY)
    return out


def base_structure(structure: str) -> str:
    """Return the structure whose population design ``structure`` uses (checked)."""
    if structure not in STRUCTURES:
        raise ValueError(f"structure must be one of {list(STRUCTURES)}, got {structure!r}")
    return _SAME_DESIGN.get(structure, structure)


def population_terms(structure: str, space: ProcessSpace | None = None) -> list[str]:
    """Return the names of the population-level (fixed-effect) design columns of a structure."""
    structure = base_structure(structure)
    if structure == "quadratic":
        return linear_names(space) + quadratic_names(space) + interaction_names(space)
    if structure == "gp":
        k = resolve_space(space).k
        gp = ["gp[" + ",".join(str(j) for j in t) + "]" for t in gp_indices(k)]
        return population_terms("quadratic", space) + gp
    spl = [f"s({s})[{j}]" for s in _shorts(space) for j in range(n_spline())]
    return linear_names(space) + interaction_names(space) + spl


def n_terms(structure: str, k: int) -> tuple[int, int, int]:
    """Return ``(linear, interaction, non-linear)`` column counts of a structure for ``k``."""
    structure = base_structure(structure)
    n_int = k * (k - 1) // 2
    if structure == "gp":
        return k, n_int, k + len(gp_indices(k))
    n_int = k * (k - 1) // 2
    return k, n_int, (k if structure == "quadratic" else k * n_spline())


#: What the group-varying terms cover: linear terms only, or linear and squared terms.
VARYING_TERMS = ("linear", "quadratic")


def slope_terms(space: ProcessSpace | None = None, terms: str = "quadratic") -> list[str]:
    """Return the names of the group-varying design columns (``terms``: see ``VARYING_TERMS``)."""
    names = linear_names(space)
    return names if terms == "linear" else names + quadratic_names(space)


def population_design(z: np.ndarray, structure: str) -> np.ndarray:
    """Return the population design ``(n, p)`` of a structure for standardised ``z (n, k)``."""
    structure = base_structure(structure)
    if structure == "quadratic":
        return np.column_stack([z, z**2, _interactions(z)])
    if structure == "gp":
        return np.column_stack([z, z**2, _interactions(z), gp_basis(z)])
    spl = [spline_basis(z[:, j]) for j in range(z.shape[1])]
    return np.column_stack([z, _interactions(z), *spl])


def slope_design(z: np.ndarray, terms: str = "quadratic") -> np.ndarray:
    """Return the group-varying design: ``(n, k)`` linear, or ``(n, 2k)`` linear and squared."""
    return np.asarray(z, dtype=float) if terms == "linear" else np.column_stack([z, z**2])


def spline_groups(structure: str, k: int) -> np.ndarray:
    """Return which factor (``0 .. k-1``) owns each spline coefficient (spline structure)."""
    if structure != "spline":
        return np.zeros(0, dtype=int)
    return np.repeat(np.arange(k), n_spline())
