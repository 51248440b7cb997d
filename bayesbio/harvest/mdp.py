"""Perfect-information backward induction on the log-state grid and exact policy evaluation.

``V_T = R``; for ``t = T-1, ..., 0``: ``V_t = max{R, C[V_{t+1}]}``, with ``C`` from
:mod:`bayesbio.harvest.operator` (``g = R`` integrated exactly when ``t + 1 = T``).

The cap row ``u = ln p_bar`` stores the *unforced* value (the limit as ``p -> p_bar`` from
below): interior queries always have ``p' < p_bar``, and an actual state with ``p >= p_bar`` is
forced to harvest by the simulator and the policies before any grid value is read. Storing ``R``
there instead (the spec's literal wording) smears the jump at the cap over one grid cell: CP's
exact value becomes 257.5 instead of the spec's 250.9 (Monte Carlo 251.2); PI-MDP's is 345.05
either way.

On the grid ``C[V] = K + P_a P_b (A V B^T)``, batched over any number of shock laws (Thompson
draws) with one ``matmul`` pair per epoch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from threadpoolctl import threadpool_limits

from .operator import Grid, GridOperator, ShockLaw, continuation, grid_operator, interpolate
from .operator import make_grid as make_grid
from .params import HarvestParams

__all__ = [
    "PISolution",
    "backward_induction",
    "evaluate_policy",
    "myopic_harvest_mask",
    "reward_grid",
    "single_thread_blas",
    "solve_pi",
    "true_laws",
]


def true_laws(params: HarvestParams) -> tuple[ShockLaw, ShockLaw]:
    """Return the true normal shock laws of ``params``.

    Parameters
    ----------
    params : HarvestParams
        Model parameters.

    Returns
    -------
    tuple of ShockLaw
        Protein and impurity laws.
    """
    return ShockLaw.normal(params.mu_p, params.sigma_p), ShockLaw.normal(
        params.mu_i, params.sigma_i
    )


@lru_cache(maxsize=32)
def reward_grid(params: HarvestParams, grid: Grid) -> np.ndarray:
    """Harvest reward ``R`` at the grid points, shape ``(n, n)`` (read-only).

    Parameters
    ----------
    params : HarvestParams
        Model parameters.
    grid : Grid
        The grid.

    Returns
    -------
    ndarray
        ``R(e^u, e^v)``.
    """
    r = params.reward(np.exp(grid.u)[:, None], np.exp(grid.v)[None, :])
    r.flags.writeable = False
    return r


def backward_induction(
    params: HarvestParams,
    op: GridOperator | Mapping[int, GridOperator],
    grid: Grid,
    *,
    t_stop: int = 0,
    keep_all: bool = False,
) -> list[np.ndarray]:
    """Backward induction from ``T`` down to ``t_stop`` for a batch of shock laws.

    Parameters
    ----------
    params : HarvestParams
        Model parameters.
    op : GridOperator or mapping of int to GridOperator
        Precomputed operator (batch of laws), or one per epoch ``t_stop..T-1`` (the growth
        laws of each epoch; their batch shapes must agree).
    grid : Grid
        The grid of ``op``.
    t_stop : int, default 0
        Last epoch to compute.
    keep_all : bool, default False
        Keep the values of every epoch (else only ``V_{t_stop}``).

    Returns
    -------
    list of ndarray
        ``[V_{t_stop}, ..., V_T]`` if ``keep_all``, else ``[V_{t_stop}]``; each of shape
        ``batch + (n, n)``.
    """
    with single_thread_blas():
        return _backward_induction(params, op, grid, t_stop, keep_all)


def single_thread_blas() -> threadpool_limits:
    """Context limiting BLAS to one thread.

    The products here are small (101 x 101); multi-threaded OpenBLAS on a busy machine made them
    up to 10x slower than one thread in our measurements.

    Returns
    -------
    threadpoolctl.threadpool_limits
        The context manager.
    """
    return threadpool_limits(limits=1, user_api="blas")


def _backward_induction(
    params: HarvestParams,
    op: GridOperator | Mapping[int, GridOperator],
    grid: Grid,
    t_stop: int,
    keep_all: bool,
    harvest: np.ndarray | None = None,
) -> list[np.ndarray]:
    def at(t: int) -> GridOperator:
        return op[t] if isinstance(op, Mapping) else op

    rg = reward_grid(params, grid)
    batch = at(params.T - 1).K.shape[:-2]
    values = np.broadcast_to(rg, (*batch, grid.n, grid.n))
    kept = [values]
    for t in range(params.T - 1, t_stop - 1, -1):
        cont = at(t).apply(None if t == params.T - 1 else values)
        values = np.maximum(rg, cont)
        if harvest is not None:
            harvest[t] = rg >= cont
        if keep_all:
            kept.append(values)
    if keep_all:
        return kept[::-1]
    return [values]


@dataclass(frozen=True)
class PISolution:
    """Solution of the perfect-information problem for one set of normal shock laws.

    Attributes
    ----------
    params : HarvestParams
        Model parameters (economics, limits, grid).
    theta : tuple of float
        ``(mu_p, sigma_p, mu_i, sigma_i)`` the solution assumes.
    grid : Grid
        The grid.
    values : ndarray
        ``V_t`` on the grid, shape ``(T + 1, n, n)``.
    harvest : ndarray of bool
        Grid harvest sets (ties harvest), shape ``(T + 1, n, n)``; on the cap row the
        unforced choice (states with ``p >= p_bar`` are forced to harvest regardless).
    """

    params: HarvestParams
    theta: tuple[float, float, float, float]
    grid: Grid
    values: np.ndarray
    harvest: np.ndarray

    @property
    def laws(self) -> tuple[ShockLaw, ShockLaw]:
        """Protein and impurity shock laws of ``theta``."""
        mu_p, sigma_p, mu_i, sigma_i = self.theta
        return ShockLaw.normal(mu_p, sigma_p), ShockLaw.normal(mu_i, sigma_i)

    @property
    def value0(self) -> float:
        """``V_0`` interpolated at the starting state ``(p0, i0)``."""
        return float(
            interpolate(self.values[0], self.grid, np.log(self.params.p0), np.log(self.params.i0))
        )

    def continuation(self, t: int, p: np.ndarray | float, i: np.ndarray | float) -> np.ndarray:
        """``C[V_{t+1}](p, i)`` at actual (off-grid) states, ``t < T``, ``p < p_bar``."""
        law_p, law_i = self.laws
        nxt = None if t + 1 == self.params.T else self.values[t + 1]
        return continuation(self.params, law_p, law_i, p, i, nxt, grid=self.grid)


def solve_pi(
    params: HarvestParams,
    theta: tuple[float, float, float, float] | None = None,
    *,
    n_grid: int | None = None,
) -> PISolution:
    """Solve the perfect-information harvest problem by backward induction.

    Parameters
    ----------
    params : HarvestParams
        Model parameters.
    theta : tuple of float, optional
        ``(mu_p, sigma_p, mu_i, sigma_i)`` to assume; default the true values in ``params``.
    n_grid : int, optional
        Grid points per axis; default ``params.n_grid``.

    Returns
    -------
    PISolution
        Values and harvest sets on the grid.
    """
    if theta is None:
        theta = (params.mu_p, params.sigma_p, params.mu_i, params.sigma_i)
    theta = tuple(float(x) for x in theta)
    if not (theta[1] > 0 and theta[3] > 0):
        raise ValueError(f"argument 'theta': SDs must be positive, got {theta}")
    grid = make_grid(params, n_grid)
    law_p, law_i = ShockLaw.normal(theta[0], theta[1]), ShockLaw.normal(theta[2], theta[3])
    op = grid_operator(params, law_p, law_i, grid)
    harvest = np.ones((params.T + 1, grid.n, grid.n), dtype=bool)
    with single_thread_blas():
        values = _backward_induction(params, op, grid, 0, True, harvest)
    return PISolution(params, theta, grid, np.stack(values), harvest)


def evaluate_policy(
    params: HarvestParams, harvest: np.ndarray, grid: Grid | None = None
) -> tuple[float, np.ndarray]:
    """Exact value under the true laws of a policy that depends only on ``(t, p, i)``.

    Parameters
    ----------
    params : HarvestParams
        Model parameters (the truth).
    harvest : ndarray of bool
        Harvest sets on the grid, shape ``(T + 1, n, n)`` or ``(n, n)`` (same every epoch);
        on the cap row the unforced choice as ``p -> p_bar`` from below (actual states with
        ``p >= p_bar`` and epoch ``T`` harvest regardless).
    grid : Grid, optional
        The grid; default :func:`make_grid` of ``params``.

    Returns
    -------
    value : float
        ``W_0`` interpolated at ``(p0, i0)``.
    values : ndarray
        ``W_t`` on the grid, shape ``(T + 1, n, n)``.
    """
    grid = make_grid(params) if grid is None else grid
    harvest = np.asarray(harvest, dtype=bool)
    if harvest.shape[-2:] != (grid.n, grid.n):
        raise ValueError(
            f"argument 'harvest': shape {harvest.shape} does not match the grid "
            f"({grid.n}, {grid.n})"
        )
    if harvest.ndim == 2:
        harvest = np.broadcast_to(harvest, (params.T + 1, grid.n, grid.n))
    rg = reward_grid(params, grid)
    op = grid_operator(params, *true_laws(params), grid)
    w = [np.array(rg)]
    with single_thread_blas():
        for t in range(params.T - 1, -1, -1):
            cont = op.apply(None if t == params.T - 1 else w[-1])
            w.append(np.where(harvest[t], rg, cont))
    values = np.stack(w[::-1])
    value = float(interpolate(values[0], grid, np.log(params.p0), np.log(params.i0)))
    return value, values


def myopic_harvest_mask(
    params: HarvestParams, law_p: ShockLaw, law_i: ShockLaw, grid: Grid | None = None
) -> np.ndarray:
    """Grid harvest set of the one-step look-ahead rule ``R >= C[R]`` (same every epoch).

    Parameters
    ----------
    params : HarvestParams
        Model parameters.
    law_p, law_i : ShockLaw
        Shock laws used for the look-ahead.
    grid : Grid, optional
        The grid; default :func:`make_grid` of ``params``.

    Returns
    -------
    ndarray of bool
        Shape ``(n, n)``.
    """
    grid = make_grid(params) if grid is None else grid
    op = grid_operator(params, law_p, law_i, grid)
    mask = reward_grid(params, grid) >= op.apply(None)
    return mask
