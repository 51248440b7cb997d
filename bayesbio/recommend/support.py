"""Data support of a setpoint: how far it lies from the batches behind the model.

Two measures keep a recommendation where the data can vouch for it:

* a Mahalanobis distance from the training setpoints (:class:`Support`), overall or against
  the target group's own batches, in the metric of the routine spread of setpoints;
* a model-based measure (:func:`sd_ratio_fn`): the posterior SD of the group's mean
  log-response at a setpoint over its median at the group's own setpoints.

:func:`outside` combines both into "how far outside support" (0 inside), the penalty every
search and table uses.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from bayesbio.space import ProcessSpace

if TYPE_CHECKING:
    from bayesbio.recommend.context import Context
    from bayesbio.recommend.sampler import Evaluator

# Setpoint covariances get this ridge (in units of the operating range squared): a factor
# that never varied in the data still has an SD of 1 % of its range, so distances stay finite.
_RIDGE = 1e-4
_MCD_MAX_ROWS = 2000
# The group metric's SD of each factor: the pooled routine SD counts as this many batches
# beside the group's own (so a group of 4 batches is half its own spread, half the pool's)
_SPREAD_PRIOR_BATCHES = 4.0


class Support:
    """Mahalanobis distance of setpoints from the training setpoints (overall and by group).

    Setpoints are scaled by the operating ranges of ``space`` and measured over the factors
    the space leaves free (``d`` of them); covariances carry a small ridge.

    ``"overall"`` uses the mean and covariance of all training setpoints. ``"group"``
    measures against the target group's own batches, in the metric of the *routine* spread
    of setpoints within a group:

    * the metric (:attr:`cov_group`) is the within-group covariance pooled over all groups
      (each batch's deviation from its group's median setpoint), estimated robustly
      (minimum covariance determinant, :class:`sklearn.covariance.MinCovDet`): a few
      exploratory batches far from a recipe do not widen it, so it describes how setpoints
      vary around a recipe in routine production (the classical pooled covariance where
      there are too few batches for the robust one). Each factor's SD is then moved towards
      the target group's own robust spread (median absolute deviation), the pooled SD
      counting as 4 batches beside the group's: where groups run a factor differently (a
      2,000 L vessel at 87-115 rpm, a 50 L one at 140-200 rpm) the narrow group is not
      measured in the wide group's spread; the correlations stay the pooled ones;
    * the distance is the smaller of the distance from the group's median setpoint and the
      distance from the nearest of the group's own batches: a setpoint is supported near the
      group's recipe and near any setpoint the group itself has run, not where only other
      groups ran (a 2 L mixing time for a 2,000 L vessel), and one far batch of the group
      supports its own neighbourhood instead of dragging the group's centre towards it.

    :attr:`group_mode` is ``"own"`` for a group with batches and ``"overall"`` for a group
    without (the overall distance is used).
    """

    def __init__(
        self,
        points: np.ndarray,
        labels: np.ndarray,
        in_group: np.ndarray,
        space: ProcessSpace,
    ) -> None:
        names = space.factor_names
        self.dims = np.array([names.index(f) for f in space.free_factors], dtype=int)
        self.names = [names[j] for j in self.dims]
        self.lo = space.lower[self.dims]
        self.width = (space.upper - space.lower)[self.dims]
        z = self._scale(points)
        d = z.shape[1]
        ridge = _RIDGE * np.eye(d)
        self.centre = z.mean(axis=0)
        cov = np.atleast_2d(np.cov(z, rowvar=False)) if len(z) > 1 else np.zeros((d, d))
        self.prec = np.linalg.inv(cov + ridge) if d else np.zeros((0, 0))
        self.n_group = int(in_group.sum())
        zg = z[in_group]
        self._own = zg
        if self.n_group == 0:
            self.group_mode = "overall"
            self.centre_group = None
            cov_group = cov
        else:
            self.group_mode = "own"
            self.centre_group = np.median(zg, axis=0)
            cov_group = _own_spread(_routine_covariance(z, labels, cov), zg)
        self.cov_group = cov_group + ridge
        self.prec_group = np.linalg.inv(self.cov_group) if d else np.zeros((0, 0))
        # nearest own batch in the group metric: Euclidean after whitening, with a k-d tree
        self._whiten = np.linalg.cholesky(self.prec_group) if d else np.zeros((0, 0))
        self._own_tree = cKDTree(zg @ self._whiten) if self.n_group and d else None

    def _scale(self, points: np.ndarray) -> np.ndarray:
        return (np.atleast_2d(points)[:, self.dims] - self.lo) / self.width

    def distance(self, points: np.ndarray, which: str = "overall") -> np.ndarray:
        """Return the Mahalanobis distance of each row of ``points``."""
        z = self._scale(points)
        if which == "overall":
            d = z - self.centre
            return np.sqrt(np.einsum("ij,jk,ik->i", d, self.prec, d))
        if self.centre_group is None:
            return np.full(len(z), np.nan)
        d = z - self.centre_group
        out = np.sqrt(np.einsum("ij,jk,ik->i", d, self.prec_group, d))
        if self._own_tree is not None:
            near, _ = self._own_tree.query(z @ self._whiten, k=1)
            out = np.minimum(out, near)
        return out

    def guard_distance(self, points: np.ndarray, which: str) -> np.ndarray:
        """Distance used by the guard: ``which``, falling back to overall for a new group."""
        if which == "group" and self.centre_group is not None:
            return self.distance(points, "group")
        return self.distance(points, "overall")

    def bounding_box(self, which: str, limit: float) -> tuple[np.ndarray, np.ndarray]:
        """Return the smallest box (domain units, per factor of ``dims``) holding the support.

        The guard accepts the points within ``limit`` of a centre: for group support the
        group's median setpoint and each of its own batches (the same metric for all), else
        the overall centre. An ellipsoid ``(z - c)' P (z - c) <= limit^2`` spans ``c +-
        limit * sqrt(diag(P^-1))`` along each axis; the box is the union over the centres.
        """
        if which == "group" and self.centre_group is not None:
            centres = np.vstack([self.centre_group, self._own])
            cov = self.cov_group
        else:
            centres = self.centre[None]
            cov = np.linalg.inv(self.prec) if len(self.dims) else self.prec
        half = limit * np.sqrt(np.maximum(np.diag(cov), 0.0))
        low = centres.min(axis=0) - half
        high = centres.max(axis=0) + half
        return self.lo + low * self.width, self.lo + high * self.width

    def used(self, which: str) -> str:
        """Name the support a guard on ``which`` measures against.

        ``"group (own batches)"`` or ``"overall"``.
        """
        if which == "group" and self.centre_group is not None:
            return "group (own batches)"
        return "overall"

    def factor_offsets(self, point: np.ndarray, which: str) -> list[tuple[str, float]]:
        """Free factors of ``point`` by distance from the support centre, farthest first.

        Each is ``(factor, offset)`` with the offset in SDs of the support's covariance
        (signed: positive above the centre).
        """
        z = self._scale(point)[0]
        if which == "group" and self.centre_group is not None:
            centre, cov = self.centre_group, self.cov_group
        else:
            centre, cov = self.centre, np.linalg.inv(self.prec) if len(z) else self.prec
        sd = np.sqrt(np.maximum(np.diag(cov), 1e-12))
        off = (z - centre) / sd
        order = np.argsort(-np.abs(off))
        return [(self.names[i], float(off[i])) for i in order]


def _own_spread(pooled: np.ndarray, own: np.ndarray) -> np.ndarray:
    """``pooled`` with each factor's SD moved towards the group's own robust spread.

    ``sd^2 = (n s_own^2 + k s_pool^2) / (n + k)`` with ``n`` the group's batches, ``s_own``
    their median absolute deviation from the group's median (x 1.4826, the normal SD) and
    ``k`` = :data:`_SPREAD_PRIOR_BATCHES`; the pooled correlations are kept.
    """
    n, d = own.shape
    if d == 0 or n == 0:
        return pooled
    s_pool = np.sqrt(np.maximum(np.diag(pooled), 0.0))
    s_own = 1.4826 * np.median(np.abs(own - np.median(own, axis=0)), axis=0)
    k = _SPREAD_PRIOR_BATCHES
    s = np.sqrt((n * s_own**2 + k * s_pool**2) / (n + k))
    scale = np.divide(s, s_pool, out=np.ones(d), where=s_pool > 0)
    return pooled * np.outer(scale, scale)


def _routine_covariance(z: np.ndarray, labels: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Robust within-group covariance of setpoints around their group medians.

    Deviations of every batch from its group's median setpoint (groups of two or more
    batches), pooled, with the minimum covariance determinant estimate; the classical
    pooled covariance with fewer than ``2 d + 2`` deviations or a degenerate robust fit, and
    ``fallback`` with fewer than ``d + 1``. Above 2,000 deviations the robust fit uses a fixed
    random subset of 2,000.
    """
    from sklearn.covariance import MinCovDet

    d = z.shape[1]
    codes, _ = pd.factorize(labels)
    sizes = np.bincount(codes)
    dev = z.copy()
    for g in np.flatnonzero(sizes >= 2):
        dev[codes == g] -= np.median(z[codes == g], axis=0)
    dev = dev[sizes[codes] >= 2]
    if d == 0 or len(dev) < d + 1:
        return fallback
    classical = dev.T @ dev / max(len(dev) - 1, 1)
    if len(dev) < 2 * d + 2:
        return classical
    if len(dev) > _MCD_MAX_ROWS:  # the robust fit on a fixed random subset (seconds, not minutes)
        dev = dev[np.random.default_rng(0).choice(len(dev), _MCD_MAX_ROWS, replace=False)]
    with warnings.catch_warnings():  # a singular core (exact replicates) only warns
        warnings.simplefilter("ignore")
        try:
            robust = MinCovDet(assume_centered=True, random_state=0).fit(dev).covariance_
        except ValueError:
            return classical
    return robust if np.all(np.isfinite(robust)) else classical


def sd_ratio_fn(ev: Evaluator, ctx: Context) -> Callable[[np.ndarray], np.ndarray]:
    """Return ``ratio(f)``: posterior SD of the group's mean log-response over its reference.

    The reference is the median SD over the group's own training setpoints (all training
    setpoints for a group without batches). Where the response is not positive the SD of
    the response itself is used; a reference SD of (almost) zero makes every ratio 1.
    """
    pts = ctx.table.loc[ctx.in_group, ctx.factors].to_numpy(dtype=float)
    if not len(pts):
        pts = ctx.table[ctx.factors].to_numpy(dtype=float)
    pts = pts[:: max(1, len(pts) // 64)]
    f_ref = ev.raw(pts, noise=False)
    use_log = bool(np.all(f_ref > 0))

    def sd(f: np.ndarray) -> np.ndarray:
        if use_log and np.all(f > 0):
            return np.log(f).std(axis=0)
        scale = np.abs(f).mean(axis=0)
        return f.std(axis=0) / np.where(scale > 0, scale, 1.0)

    ref = float(np.median(sd(f_ref)))

    def ratio(f: np.ndarray) -> np.ndarray:
        if not ref > 1e-9:
            return np.ones(f.shape[1])
        return sd(f) / ref

    return ratio


def outside(ctx: Context, points: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """How far outside support each point is (0 inside; > 0 outside)."""
    dist = ctx.support.guard_distance(points, ctx.res.support)
    over = np.maximum(dist - ctx.res.max_distance, 0.0)
    if ctx.res.max_sd_ratio is not None:
        over = over + np.maximum(ratio - ctx.res.max_sd_ratio, 0.0)
    return over


def penalty(ctx: Context, points: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """:func:`outside` when the guard is on, else zeros (the limits then only warn)."""
    if not ctx.res.guard:
        return np.zeros(len(points))
    return outside(ctx, points, ratio)


def feasible(ctx: Context, points: np.ndarray) -> np.ndarray:
    """Points within the distance limit (all points with the guard off)."""
    if not ctx.res.guard:
        return np.ones(len(points), dtype=bool)
    return ctx.support.guard_distance(points, ctx.res.support) <= ctx.res.max_distance


def closest(ctx: Context, points: np.ndarray) -> int:
    """Index of the point nearest the support (in the guard's distance)."""
    return int(np.argmin(ctx.support.guard_distance(points, ctx.res.support)))
