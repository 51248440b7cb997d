"""The one-step continuation operator ``C[g]`` shared by every policy (spec §3).

For shock laws ``F_phi``, ``F_psi`` (normal or location-scale Student-t), a state ``(p, i)`` with
``p < p_bar`` and ``i <= i_bar`` and a next-epoch value ``g``::

    a = ln(p_bar / p),  b = ln(i_bar / i),  P_a = F_phi(a),  P_b = F_psi(b)
    phi_j = F_phi^-1(P_a x_j),  psi_k = F_psi^-1(P_b x_k)        (Gauss-Legendre on (0, 1))
    C[g](p, i) = -c_u - r_f (1 - P_b) + (1 - P_a) P_b sum_k w_k (r p_bar - c i e^psi_k)
                 + P_a P_b sum_jk w_j w_k g(p e^phi_j, i e^psi_k)

Failure and cap regions are integrated exactly; the quadrature covers only the truncated
interior, in probability space. ``g`` is either the harvest reward ``R`` (exact, separable) or a
value array on the log-state grid, interpolated bilinearly (clamped to the grid box).

Every function broadcasts over a leading *batch* of shock laws (e.g. ``M`` Thompson draws):
law parameters of shape ``batch`` combine with states of a broadcastable shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import special

from .params import HarvestParams

__all__ = [
    "Grid",
    "GridOperator",
    "ShockLaw",
    "continuation",
    "continuation_in_impurity",
    "gauss_legendre01",
    "grid_operator",
    "interpolate",
    "make_grid",
    "truncated_nodes",
]

_TINY = 1e-300


@lru_cache(maxsize=16)
def gauss_legendre01(q: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights mapped to ``(0, 1)`` (weights sum to 1).

    Parameters
    ----------
    q : int
        Number of nodes.

    Returns
    -------
    tuple of ndarray
        Nodes ``x`` and weights ``w``, each of shape ``(q,)`` (read-only).
    """
    x, w = np.polynomial.legendre.leggauss(int(q))
    x, w = (x + 1.0) / 2.0, w / 2.0
    x.flags.writeable = False
    w.flags.writeable = False
    return x, w


@dataclass(frozen=True)
class ShockLaw:
    """Law of a one-epoch log growth rate: normal, or location-scale Student-t.

    Parameters
    ----------
    loc : float or ndarray
        Location (the mean for a normal law).
    scale : float or ndarray
        Scale (the SD for a normal law); must be positive.
    df : float or ndarray, optional
        Degrees of freedom of a Student-t law; ``None`` (default) means normal.
    """

    loc: float | np.ndarray
    scale: float | np.ndarray
    df: float | np.ndarray | None = None

    @classmethod
    def normal(cls, mu: float | np.ndarray, sigma: float | np.ndarray) -> ShockLaw:
        """Build the normal law ``N(mu, sigma^2)``."""
        return cls(np.asarray(mu, dtype=float), np.asarray(sigma, dtype=float))

    @classmethod
    def student_t(cls, df: float, loc: float, scale: float) -> ShockLaw:
        """Location-scale Student-t law ``loc + scale * t_df``."""
        return cls(np.asarray(loc, float), np.asarray(scale, float), np.asarray(df, float))

    @property
    def is_normal(self) -> bool:
        """Whether the law is normal."""
        return self.df is None

    def expand(self) -> ShockLaw:
        """Return the law with a trailing length-1 axis on its parameters (for node axes)."""
        df = None if self.df is None else np.asarray(self.df)[..., None]
        return ShockLaw(np.asarray(self.loc)[..., None], np.asarray(self.scale)[..., None], df)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """Cumulative distribution function at ``x``."""
        z = (x - self.loc) / self.scale
        if self.df is None:
            return special.ndtr(z)
        return special.stdtr(self.df, z)

    def ppf(self, q: np.ndarray) -> np.ndarray:
        """Quantile function at probabilities ``q``."""
        if self.df is None:
            return self.loc + self.scale * special.ndtri(q)
        return self.loc + self.scale * special.stdtrit(self.df, q)


def truncated_nodes(
    law: ShockLaw, upper: np.ndarray, q: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quadrature nodes of a shock law truncated above at ``upper``, in probability space.

    Parameters
    ----------
    law : ShockLaw
        The shock law (parameters broadcast with ``upper``).
    upper : ndarray
        Truncation point(s).
    q : int
        Number of Gauss-Legendre nodes.

    Returns
    -------
    prob : ndarray
        ``F(upper)``, of the broadcast shape.
    nodes : ndarray
        ``F^-1(prob * x_j)``, shape ``prob.shape + (q,)``.
    weights : ndarray
        The weights ``w_j`` (sum 1), shape ``(q,)``.
    """
    x, w = gauss_legendre01(q)
    prob = law.cdf(upper)
    nodes = law.expand().ppf(np.maximum(prob[..., None] * x, _TINY))
    return prob, nodes, w


@dataclass(frozen=True)
class Grid:
    """Equispaced log-state grid: ``u = ln p`` and ``v = ln i``.

    Parameters
    ----------
    u0, du : float
        First point and spacing of the ``u`` axis (last point ``ln p_bar``).
    v0, dv : float
        First point and spacing of the ``v`` axis (last point ``ln i_bar``).
    n : int
        Points per axis.
    """

    u0: float
    du: float
    v0: float
    dv: float
    n: int

    @property
    def u(self) -> np.ndarray:
        """The ``u = ln p`` axis."""
        return self.u0 + self.du * np.arange(self.n)

    @property
    def v(self) -> np.ndarray:
        """The ``v = ln i`` axis."""
        return self.v0 + self.dv * np.arange(self.n)

    def weights_u(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Sum interpolation weight vectors on the ``u`` axis (see ``_weights``)."""
        return _weights(x, w, self.u0, self.du, self.n)

    def weights_v(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Sum interpolation weight vectors on the ``v`` axis (see ``_weights``)."""
        return _weights(x, w, self.v0, self.dv, self.n)


def _index(x: np.ndarray, x0: float, dx: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    s = np.clip((x - x0) / dx, 0.0, n - 1.0)
    idx = np.minimum(s.astype(np.intp), n - 2)
    return idx, s - idx


def _weights(x: np.ndarray, w: np.ndarray, x0: float, dx: float, n: int) -> np.ndarray:
    """Dense vectors ``sum_j w_j * (linear interpolation weights of x[..., j])``.

    ``x`` has shape ``S + (q,)``; the result has shape ``S + (n,)``.
    """
    idx, frac = _index(x, x0, dx, n)
    shape = x.shape[:-1]
    m = int(np.prod(shape, dtype=np.intp))
    base = (np.arange(m, dtype=np.intp) * n).reshape(*shape, 1)
    wq = np.broadcast_to(w, x.shape)
    flat = np.concatenate([(base + idx).ravel(), (base + idx + 1).ravel()])
    vals = np.concatenate([(wq * (1.0 - frac)).ravel(), (wq * frac).ravel()])
    return np.bincount(flat, weights=vals, minlength=m * n).reshape(*shape, n)


@lru_cache(maxsize=32)
def make_grid(params: HarvestParams, n: int | None = None) -> Grid:
    """Build the spec's log-state grid for ``params``.

    Parameters
    ----------
    params : HarvestParams
        Model parameters.
    n : int, optional
        Points per axis; default ``params.n_grid`` (101).

    Returns
    -------
    Grid
        ``u`` on ``[ln p0 - 1, ln p_bar]`` and ``v`` on ``[ln i0 - 1, ln i_bar]``.
    """
    n = params.n_grid if n is None else int(n)
    u0, u1 = np.log(params.p0) - 1.0, np.log(params.p_bar)
    v0, v1 = np.log(params.i0) - 1.0, np.log(params.i_bar)
    return Grid(float(u0), float((u1 - u0) / (n - 1)), float(v0), float((v1 - v0) / (n - 1)), n)


def interpolate(values: np.ndarray, grid: Grid, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of grid values at log-states, clamped to the grid box.

    Parameters
    ----------
    values : ndarray
        Values on the grid, shape ``(..., n, n)`` (``u`` along the first of the two axes).
    grid : Grid
        The grid.
    u, v : ndarray
        Log protein and log impurity of the query points (broadcast with the leading axes).

    Returns
    -------
    ndarray
        Interpolated values.
    """
    iu, fu = _index(np.asarray(u, float), grid.u0, grid.du, grid.n)
    iv, fv = _index(np.asarray(v, float), grid.v0, grid.dv, grid.n)
    lead = values.shape[:-2]
    shape = np.broadcast_shapes(lead, iu.shape, iv.shape)
    vals = np.broadcast_to(values, (*shape, grid.n, grid.n))
    iu, fu, iv, fv = (np.broadcast_to(z, shape) for z in (iu, fu, iv, fv))

    def at(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        flat = vals.reshape(-1, grid.n * grid.n)
        return np.take_along_axis(flat, (a * grid.n + b).reshape(-1, 1), axis=1).reshape(shape)

    return (
        (1 - fu) * (1 - fv) * at(iu, iv)
        + (1 - fu) * fv * at(iu, iv + 1)
        + fu * (1 - fv) * at(iu + 1, iv)
        + fu * fv * at(iu + 1, iv + 1)
    )


def continuation(
    params: HarvestParams,
    law_p: ShockLaw,
    law_i: ShockLaw,
    p: float | np.ndarray,
    i: float | np.ndarray,
    values: np.ndarray | str | None = None,
    *,
    grid: Grid | None = None,
    q: int | None = None,
) -> np.ndarray:
    """Value of "continue" at off-grid states: ``C[g](p, i)``.

    Parameters
    ----------
    params : HarvestParams
        Model parameters (economics, limits).
    law_p, law_i : ShockLaw
        Shock laws of the protein and impurity log growth rates.
    p, i : float or ndarray
        Current protein (``< p_bar``) and impurity (``<= i_bar``).
    values : ndarray or str, optional
        Next-epoch value ``V_{t+1}`` on the grid, shape ``(..., n, n)`` broadcasting with the
        laws' batch; ``None`` (default) means ``g = R``, integrated exactly;
        ``"interpolated-reward"`` means ``g`` = the bilinear interpolant of ``R`` on the grid
        (a cheap lower bound of ``C[V]`` for any grid value ``V >= R``).
    grid : Grid, optional
        The grid of ``values``; default :func:`make_grid` of ``params``.
    q : int, optional
        Nodes per shock; default ``params.q_normal`` for normal laws, ``params.q_t`` otherwise.

    Returns
    -------
    ndarray
        ``C[g](p, i)`` of the broadcast shape of laws and states.
    """
    return continuation_in_impurity(params, law_p, law_i, p, values, grid=grid, q=q)(i)


def continuation_in_impurity(
    params: HarvestParams,
    law_p: ShockLaw,
    law_i: ShockLaw,
    p: float | np.ndarray,
    values: np.ndarray | str | None = None,
    *,
    grid: Grid | None = None,
    q: int | None = None,
) -> Callable[[np.ndarray], np.ndarray]:
    """``i -> C[g](p, i)`` at fixed protein, with the protein-side work done once.

    Used by threshold searches, which evaluate many impurity levels at the same ``p``.
    Arguments are as in :func:`continuation`.

    Returns
    -------
    callable
        Function of the impurity amount(s) ``i`` (broadcasting with ``p`` and the laws).
    """
    if q is None:
        q = params.q_normal if (law_p.is_normal and law_i.is_normal) else params.q_t
    p = np.asarray(p, dtype=float)
    pa, phi, w = truncated_nodes(law_p, np.log(params.p_bar / p), q)
    if values is None:
        p_side = params.r * p * (np.exp(phi) @ w)
    elif isinstance(values, str):
        if values != "interpolated-reward":
            raise ValueError(f"argument 'values': unknown option {values!r}")
        # R is a sum of a function of u and one of v, so its bilinear interpolant is the sum
        # of the two 1-D linear interpolants (weights sum to 1 on each axis)
        grid = make_grid(params) if grid is None else grid
        up = np.interp(np.log(p)[..., None] + phi, grid.u, np.minimum(np.exp(grid.u), params.p_bar))
        p_side = params.r * (up @ w)
    else:
        grid = make_grid(params) if grid is None else grid
        shape = np.broadcast_shapes(pa.shape, np.shape(values)[:-2])
        a_vec = grid.weights_u(np.broadcast_to(np.log(p)[..., None] + phi, (*shape, q)), w)
        p_side = np.matmul(a_vec[..., None, :], values)[..., 0, :]  # (A V) row of p

    def at(i: np.ndarray) -> np.ndarray:
        i = np.asarray(i, dtype=float)
        pb, psi, _ = truncated_nodes(law_i, np.log(params.i_bar / i), q)
        e_psi = np.exp(psi) @ w
        out = (
            -params.c_u
            - params.r_f * (1.0 - pb)
            + (1.0 - pa) * pb * (params.r * params.p_bar - params.c * i * e_psi)
        )
        if values is None:
            last = p_side - params.c * i * e_psi
        elif isinstance(values, str):
            vi = np.interp(np.log(i)[..., None] + psi, grid.v, np.exp(grid.v))
            last = p_side - params.c * (vi @ w)
        else:
            shape = np.broadcast_shapes(pb.shape, p_side.shape[:-1])
            b_vec = grid.weights_v(np.broadcast_to(np.log(i)[..., None] + psi, (*shape, q)), w)
            last = (p_side * b_vec).sum(-1)
        return out + pa * pb * last

    return at


@dataclass(frozen=True)
class GridOperator:
    """``C`` on the whole grid for a batch of shock laws: ``C[V] = K + PP * (A V B^T)``.

    Attributes
    ----------
    K : ndarray
        Cost, failure and cap terms, shape ``batch + (n, n)``.
    PP : ndarray
        ``P_a P_b``, shape ``batch + (n, n)``.
    A, Bt : ndarray
        Summed interpolation weights on ``u`` and the transpose of those on ``v``, each of
        shape ``batch + (n, n)``.
    last_r : ndarray
        ``r p sum_j w_j e^phi_j - c i sum_k w_k e^psi_k`` (the exact ``g = R`` term),
        shape ``batch + (n, n)``.
    """

    K: np.ndarray
    PP: np.ndarray
    A: np.ndarray
    Bt: np.ndarray
    last_r: np.ndarray

    def apply(self, values: np.ndarray | None) -> np.ndarray:
        """``C[V]`` on the grid; ``values=None`` means ``g = R`` integrated exactly."""
        if values is None:
            return self.K + self.PP * self.last_r
        return self.K + self.PP * np.matmul(np.matmul(self.A, values), self.Bt)


def grid_operator(
    params: HarvestParams,
    law_p: ShockLaw,
    law_i: ShockLaw,
    grid: Grid | None = None,
    *,
    q: int | None = None,
) -> GridOperator:
    """Precompute ``C`` on the grid for a batch of normal (or t) shock laws.

    Parameters
    ----------
    params : HarvestParams
        Model parameters.
    law_p, law_i : ShockLaw
        Shock laws; their parameters have a common batch shape (e.g. ``(M,)`` or ``()``).
    grid : Grid, optional
        Grid; default :func:`make_grid` of ``params``.
    q : int, optional
        Nodes per shock; default as in :func:`continuation`.

    Returns
    -------
    GridOperator
        The precomputed operator (the interpolation weights do not depend on the epoch).
    """
    grid = make_grid(params) if grid is None else grid
    if q is None:
        q = params.q_normal if (law_p.is_normal and law_i.is_normal) else params.q_t
    u, v = grid.u, grid.v
    lp, li = law_p.expand(), law_i.expand()  # batch + (1,), against the grid axis
    pa, phi, w = truncated_nodes(lp, np.log(params.p_bar) - u, q)  # batch+(n,), batch+(n,q)
    pb, psi, _ = truncated_nodes(li, np.log(params.i_bar) - v, q)
    i_grid = np.exp(v)
    e_phi = np.exp(phi) @ w
    e_psi = np.exp(psi) @ w
    pbe = pb[..., None, :]
    k = (
        -params.c_u
        - params.r_f * (1.0 - pbe)
        + (1.0 - pa[..., :, None])
        * pbe
        * (params.r * params.p_bar - params.c * i_grid * e_psi)[..., None, :]
    )
    last_r = (params.r * np.exp(u) * e_phi)[..., :, None] - (params.c * i_grid * e_psi)[
        ..., None, :
    ]
    a = grid.weights_u(u[:, None] + phi, w)
    b = grid.weights_v(v[:, None] + psi, w)
    pp = pa[..., :, None] * pbe
    return GridOperator(
        K=k, PP=pp, A=a, Bt=np.ascontiguousarray(np.swapaxes(b, -1, -2)), last_r=last_r
    )
