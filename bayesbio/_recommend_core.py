"""Internals of :mod:`bayesbio.recommend` (and the shared parts of :mod:`bayesbio.interpret`).

Everything here works on numpy arrays in the factor order of the model's process space
(``model.space_.factor_names``, see :func:`model_space`); the public modules turn results into
DataFrames. The only model calls are ``model.predict_draws`` (and ``model.predict`` in
:mod:`bayesbio.interpret`) and ``model.training_table_``.

The response direction of the space (``space.response.direction``) is handled by a sign:
searches maximise ``sign * y`` (``sign = -1`` for a response to minimise, e.g. an impurity), so
every objective turns around (mean -> minimise the mean; quantile -> minimise an upper
quantile; prob_spec -> ``P(y <= spec)``; cvar -> the upper tail).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.spatial import cKDTree
from scipy.stats import qmc

from bayesbio import schema
from bayesbio.checks import KINDS as MODEL_KINDS
from bayesbio.checks import check_choice
from bayesbio.space import ProcessSpace, resolve_space

if TYPE_CHECKING:
    from bayesbio.models.protocol import YieldModel

OBJECTIVES: tuple[str, ...] = ("mean", "quantile", "prob_spec", "cvar")
KINDS: tuple[str, ...] = ("auto", *MODEL_KINDS)
SUPPORTS: tuple[str, ...] = ("overall", "group")
#: Share of a Gaussian cloud of setpoints that the default support radius holds.
SUPPORT_LEVEL: float = 0.99
QUANTILE_LEVELS: tuple[float, ...] = (0.05, 0.1, 0.5, 0.9, 0.95)
# Setpoint covariances get this ridge (in units of the operating range squared): a factor
# that never varied in the data still has an SD of 1 % of its range, so distances stay finite.
_RIDGE = 1e-4
_MAX_COLUMNS = 8192
_MCD_MAX_ROWS = 2000
_INFEASIBLE = -1e9


def support_radius(n_dims: int, level: float = SUPPORT_LEVEL) -> float:
    """Mahalanobis radius holding ``level`` of a Gaussian cloud in ``n_dims`` dimensions.

    The ``level`` quantile of the chi distribution with ``n_dims`` degrees of freedom
    (``inf`` for zero dimensions: with no free factor there is nothing to extrapolate).
    """
    if n_dims <= 0:
        return math.inf
    return float(np.sqrt(stats.chi2.ppf(level, n_dims)))


#: Default support limit of the default four-factor space (kept for compatibility; the limit
#: used is :func:`support_radius` of the model's space, see :class:`Constraints`).
DEFAULT_MAX_DISTANCE: float = support_radius(len(ProcessSpace.default().free_factors))


def model_space(model: YieldModel | Any) -> ProcessSpace:
    """Return the process space a fitted model was fitted on (``model.space_``).

    The one place that falls back to :meth:`ProcessSpace.default` for a model without
    ``space_`` (a user's model written before spaces existed).
    """
    return resolve_space(getattr(model, "space_", None))


def sign(space: ProcessSpace) -> float:
    """+1 when the space's response is maximised, -1 when it is minimised."""
    return 1.0 if space.response.maximise else -1.0


@dataclass(frozen=True)
class Constraints:
    """Where a setpoint may be searched.

    Parameters
    ----------
    bounds : mapping of str to (float, float), optional
        Search range per factor in domain units; it is intersected with the factor's operating
        range (``space.bounds``) and must lie within its physical limits (``space.limits``).
        Factors not named keep their operating range.
    fixed : mapping of str to float, optional
        Factors held at a value (e.g. ``{"ph": 7.0}`` when the cell line fixes pH); added to
        the factors the process space itself fixes (``space.fixed``), overriding their value.
    max_distance : float, optional
        Data-support limit: largest Mahalanobis distance of a setpoint from the training
        setpoints. Default (None): the radius holding 99 % of a Gaussian cloud in the
        dimension of the space's free factors (:func:`support_radius`; 3.64 for the default
        four-factor space).
    support : {"group", "overall"}, default "group"
        ``"group"``: measure support against the target group's own batches, its median
        setpoint and each batch, in the routine within-group spread of setpoints (see
        :class:`Support`; all batches for a group without any); ``"overall"``: against all
        training setpoints.
    guard : bool, default True
        Keep the search inside the support limits (distance and, with ``max_sd_ratio``, the
        model-based measure). With ``False`` the limits are only used to warn
        (:class:`bayesbio.recommend.ExtrapolationWarning`).
    max_sd_ratio : float or None, default 2.0
        Model-based support limit: the posterior SD of the group's mean log-response at a
        setpoint divided by its median over the group's own training setpoints (the ratio
        grows where the model extrapolates). None switches this measure off.

    Notes
    -----
    The support distance is measured over the factors the process space leaves free
    (factors it fixes are not decisions); factors held only by ``fixed`` here still count,
    as the data's spread in them is unchanged.
    """

    bounds: Mapping[str, tuple[float, float]] | None = None
    fixed: Mapping[str, float] | None = None
    max_distance: float | None = None
    support: str = "group"
    guard: bool = True
    max_sd_ratio: float | None = 2.0


@dataclass
class Resolved:
    """Checked constraints as arrays in the space's factor order."""

    space: ProcessSpace
    lo: np.ndarray
    hi: np.ndarray
    fixed: dict[int, float]
    free: np.ndarray
    max_distance: float
    support: str
    guard: bool
    constraints: Constraints
    notes: list[str] = field(default_factory=list)
    max_sd_ratio: float | None = 2.0


def check_names(
    mapping: Mapping[str, Any] | None, argument: str, space: ProcessSpace
) -> dict[str, Any]:
    """Return ``mapping`` as a dict after checking its keys are factor names of ``space``."""
    names = list(space.factor_names)
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise ValueError(
            f"{argument} must be a mapping from factor names {names} to values, "
            f"got {type(mapping).__name__}"
        )
    unknown = [k for k in mapping if k not in names]
    if unknown:
        raise ValueError(
            f"{argument} names unknown factor(s) {unknown}; the process's factors are {names}"
        )
    return dict(mapping)


def _unit_text(space: ProcessSpace, name: str) -> str:
    unit = space.units[name]
    return f" {unit}" if unit and unit not in ("dimensionless", "-", "1") else ""


def resolve_constraints(
    constraints: Constraints | Mapping[str, Any] | None,
    space: ProcessSpace,
    *,
    prefix: str = "constraints.",
) -> Resolved:
    """Check ``constraints`` (a :class:`Constraints`, a mapping of its fields, or None).

    ``prefix`` starts the argument names in error messages (``"constraints."`` for
    :func:`~bayesbio.recommend.recommend`; ``""`` where bounds and fixed are arguments).
    """
    if constraints is None:
        constraints = Constraints()
    elif isinstance(constraints, Mapping):
        valid = ("bounds", "fixed", "max_distance", "support", "guard", "max_sd_ratio")
        unknown = [k for k in constraints if k not in valid]
        if unknown:
            raise ValueError(
                f"constraints has unknown key(s) {unknown}; valid keys are {list(valid)}"
            )
        constraints = Constraints(**constraints)
    elif not isinstance(constraints, Constraints):
        raise ValueError(
            "constraints must be a Constraints, a mapping with keys bounds/fixed/max_distance/"
            f"support/guard/max_sd_ratio, or None; got {type(constraints).__name__}"
        )
    names = space.factor_names
    bounds = check_names(constraints.bounds, f"{prefix}bounds", space)
    fixed = {**space.fixed, **check_names(constraints.fixed, f"{prefix}fixed", space)}
    lo, hi = space.lower.astype(float), space.upper.astype(float)
    notes: list[str] = []
    for name, pair in bounds.items():
        where = f"{prefix}bounds['{name}']"
        try:
            low, high = (float(v) for v in pair)
        except (TypeError, ValueError):
            raise ValueError(f"{where} must be a (low, high) pair, got {pair!r}") from None
        lim = space.limits[name]
        unit = _unit_text(space, name)
        if not (lim[0] <= low < high <= lim[1]):
            raise ValueError(
                f"{where} = ({low:g}, {high:g}) must satisfy {lim[0]:g} <= low < high <= "
                f"{lim[1]:g} (the physical limits of {name!r}{unit})"
            )
        j = names.index(name)
        new_lo, new_hi = max(low, lo[j]), min(high, hi[j])
        if not new_lo < new_hi:
            raise ValueError(
                f"{where} = ({low:g}, {high:g}) does not overlap the operating range "
                f"({lo[j]:g}, {hi[j]:g}){unit} of {name!r}, where setpoints are searched"
            )
        if (new_lo, new_hi) != (low, high):
            notes.append(
                f"{where} = ({low:g}, {high:g}) cut to the operating range: "
                f"({new_lo:g}, {new_hi:g}){unit}"
            )
        lo[j], hi[j] = new_lo, new_hi
    fixed_idx: dict[int, float] = {}
    for name, value in fixed.items():
        where = f"{prefix}fixed['{name}']"
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where} must be a number, got {value!r}") from None
        lim = space.limits[name]
        if not (np.isfinite(v) and lim[0] <= v <= lim[1]):
            raise ValueError(
                f"{where} = {v:g} is outside the physical limits {lim[0]:g} to {lim[1]:g}"
                f"{_unit_text(space, name)} of {name!r}"
            )
        j = names.index(name)
        fixed_idx[j] = v
        lo[j] = hi[j] = v
    if constraints.max_distance is None:
        max_distance = support_radius(len(space.free_factors))
    else:
        try:
            max_distance = float(constraints.max_distance)
        except (TypeError, ValueError):
            max_distance = math.nan
        if not max_distance > 0:
            raise ValueError(
                f"{prefix}max_distance must be > 0 (or None for the default), "
                f"got {constraints.max_distance!r}"
            )
    support = check_choice(f"{prefix}support", constraints.support, SUPPORTS)
    max_sd_ratio = constraints.max_sd_ratio
    if max_sd_ratio is not None:
        try:
            max_sd_ratio = float(max_sd_ratio)
        except (TypeError, ValueError):
            max_sd_ratio = math.nan
        if not max_sd_ratio > 1:
            raise ValueError(
                f"{prefix}max_sd_ratio must be a number > 1 (or None to switch the model-based "
                f"support measure off), got {constraints.max_sd_ratio!r}"
            )
    free = np.array([j for j in range(space.k) if j not in fixed_idx], dtype=int)
    return Resolved(
        space,
        lo,
        hi,
        fixed_idx,
        free,
        max_distance,
        support,
        bool(constraints.guard),
        constraints,
        notes,
        max_sd_ratio,
    )


def check_execution_sd(execution_sd: Mapping[str, float] | None, space: ProcessSpace) -> np.ndarray:
    """Return execution-noise SDs per factor (zeros where not given)."""
    sd = np.zeros(space.k)
    for name, value in check_names(execution_sd, "execution_sd", space).items():
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = math.nan
        if not (np.isfinite(v) and v >= 0):
            raise ValueError(f"execution_sd['{name}'] must be a finite SD >= 0, got {value!r}")
        lo, hi = space.factor(name).operating
        if v > hi - lo:
            raise ValueError(
                f"execution_sd['{name}'] = {v:g} {space.units[name]} is wider than the whole "
                f"operating range {lo:g}-{hi:g}; give the SD of how far a batch drifts from "
                "its setpoint"
            )
        sd[space.factor_names.index(name)] = v
    return sd


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
      there are too few batches for the robust one);
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
        if self.n_group == 0:
            self.group_mode = "overall"
            self.centre_group = None
            cov_group = cov
        else:
            self.group_mode = "own"
            self.centre_group = np.median(zg, axis=0)
            cov_group = _routine_covariance(z, labels, cov)
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


@dataclass
class Context:
    """The process space, the target group, its data and the checked constraints."""

    space: ProcessSpace
    table: pd.DataFrame
    group_cols: list[str]
    group: dict[str, str]
    in_group: np.ndarray
    kind: str
    res: Resolved
    support: Support
    recipe: np.ndarray
    data_sd: np.ndarray
    notes: list[str] = field(default_factory=list)

    @property
    def factors(self) -> list[str]:
        """Factor names in model order."""
        return list(self.space.factor_names)

    @property
    def sign(self) -> float:
        """+1 to maximise the response, -1 to minimise it."""
        return sign(self.space)

    def frame(self, points: np.ndarray) -> pd.DataFrame:
        """Return a setpoint table (group columns, then factors) for ``points``."""
        lim = self.space.limits
        lo = np.array([lim[f][0] for f in self.factors])
        hi = np.array([lim[f][1] for f in self.factors])
        points = np.clip(np.atleast_2d(points), lo, hi)
        df = pd.DataFrame(
            {c: np.full(len(points), self.group[c], dtype=object) for c in self.group_cols}
        )
        for j, p in enumerate(self.factors):
            df[p] = points[:, j]
        return df

    def to_points(self, u: np.ndarray) -> np.ndarray:
        """Map unit coordinates of the free factors to full setpoints (domain units)."""
        u = np.clip(np.atleast_2d(u), 0.0, 1.0)
        out = np.tile(self.res.lo, (len(u), 1))
        f = self.res.free
        out[:, f] = self.res.lo[f] + u * (self.res.hi[f] - self.res.lo[f])
        return out

    def to_unit(self, points: np.ndarray) -> np.ndarray:
        """Map full setpoints to unit coordinates of the free factors."""
        f = self.res.free
        w = self.res.hi[f] - self.res.lo[f]
        return np.clip((np.atleast_2d(points)[:, f] - self.res.lo[f]) / w, 0.0, 1.0)

    def clip(self, points: np.ndarray) -> np.ndarray:
        """Clip setpoints into the search bounds (fixed factors at their values)."""
        return np.clip(np.atleast_2d(points), self.res.lo, self.res.hi)

    def meets(self, draws: np.ndarray, spec: float) -> np.ndarray:
        """Boolean draws meeting ``spec``: ``y >= spec`` (maximise) or ``y <= spec``."""
        return draws >= spec if self.space.response.maximise else draws <= spec


def training_table(model: YieldModel | Any) -> pd.DataFrame:
    """Return ``model.training_table_`` or raise a ValueError saying the model is not fitted."""
    table = getattr(model, "training_table_", None)
    if not isinstance(table, pd.DataFrame):
        raise ValueError(
            f"model ({type(model).__name__}) has no training_table_: fit it before recommending"
        )
    if not callable(getattr(model, "predict_draws", None)):
        raise ValueError(f"model ({type(model).__name__}) has no predict_draws method")
    return table


def model_groups(model: YieldModel | Any, table: pd.DataFrame, space: ProcessSpace) -> list[str]:
    """Return the model's group columns: ``model.groups_``, else the space's in ``table``.

    Without ``groups_`` the model's ``groups`` argument (or else the space's groups) present
    in ``table`` are used.
    """
    groups = getattr(model, "groups_", None)
    if groups is None:
        wanted = getattr(model, "groups", None)
        if wanted is None and hasattr(model, "get_params"):
            wanted = model.get_params().get("groups")
        groups = space.group_columns(table, wanted)
    return [str(g) for g in groups]


def resolve_group(
    table: pd.DataFrame,
    group_cols: list[str],
    group: Mapping[str, Any] | None,
    *,
    allow_new: bool,
    fill: str = "group",
) -> tuple[dict[str, str], np.ndarray, list[str]]:
    """Check a target group against the training data and complete it.

    Parameters
    ----------
    table : pandas.DataFrame
        Training table.
    group_cols : list of str
        The model's group columns.
    group : mapping of str to str or None
        Labels given by the caller.
    allow_new : bool
        Accept labels not seen in training (``kind="new_group"``); otherwise a label not seen
        is a ValueError listing the known labels of its column.
    fill : {"group", "overall"}, default "group"
        How a group column not given is filled: its most frequent value among the batches
        matching what was given (among all batches when none match), or among all batches
        (what :mod:`bayesbio.interpret` has always done).

    Returns
    -------
    full : dict
        A label for every group column: as given, else filled (see ``fill``).
    mask : numpy.ndarray of bool
        Training rows in the given group.
    notes : list of str
        One note per group column filled in.
    """
    if group is not None and not isinstance(group, Mapping):
        raise ValueError(f"group must be a mapping such as {{'site': 'A'}}, got {group!r}")
    given = {str(k): str(v) for k, v in (group or {}).items()}
    unknown = [k for k in given if k not in group_cols]
    if unknown:
        raise ValueError(
            f"group names unknown column(s) {unknown}; the model's group columns are {group_cols}"
        )
    if not allow_new:
        for col, label in given.items():
            known = sorted(table[col].astype(str).unique())
            if label not in known:
                raise ValueError(
                    f"group[{col!r}] = {label!r} is not a label seen in training; known "
                    f"labels of {col!r}: {known}. For a group without training data pass "
                    "kind='new_group' (its effect is drawn from the population)"
                )
    mask = np.ones(len(table), dtype=bool)
    for k, v in given.items():
        mask &= table[k].astype(str).to_numpy() == v
    full: dict[str, str] = {}
    notes: list[str] = []
    for c in group_cols:
        if c in given:
            full[c] = given[c]
        elif fill == "overall":
            full[c] = str(table[c].astype(str).value_counts().index[0])
        else:
            source = table.loc[mask, c] if mask.any() else table[c]
            full[c] = str(source.astype(str).mode().iloc[0])
            notes.append(f"group column '{c}' not given: using its most frequent value {full[c]!r}")
    return full, mask, notes


def build_context(
    model: YieldModel | Any,
    group: Mapping[str, Any] | None,
    kind: str,
    constraints: Constraints | Mapping[str, Any] | None,
) -> Context:
    """Resolve the space, the target group, the prediction kind and the constraints."""
    table = training_table(model)
    check_choice("kind", kind, KINDS)
    space = model_space(model)
    res = resolve_constraints(constraints, space)
    group_cols = model_groups(model, table, space)
    full, mask, notes = resolve_group(table, group_cols, group, allow_new=kind == "new_group")
    if not group and group_cols:
        combos = table[group_cols].astype(str).drop_duplicates()
        if len(combos) > 1:
            shown = combos.head(3).to_dict("records")
            raise ValueError(
                f"group must name the target group, e.g. group={shown[0]}; the training data "
                f"hold {len(combos)} combinations of {group_cols} (first: {shown})"
            )
    if kind == "auto":
        kind = "existing" if mask.any() else "new_group"
    elif kind == "existing" and not mask.any():
        raise ValueError(
            f"kind='existing' but group {dict(group or {})} has no training batches; use "
            "kind='new_group'"
        )
    points = table[list(space.factor_names)].to_numpy(dtype=float)
    # groups like the target: the columns it was named by (scale and site, not campaign)
    named = [c for c in group_cols if group and c in group] or group_cols
    support = Support(points, schema.group_keys(table, named), mask, space)
    recipe = np.median(points[mask] if mask.any() else points, axis=0)
    for j, v in res.fixed.items():
        recipe[j] = v
    width = space.upper - space.lower
    data_sd = points.std(axis=0, ddof=1) if len(points) > 1 else width * 0.1
    data_sd = np.where(data_sd > 0, data_sd, width * 0.01)
    return Context(
        space, table, group_cols, full, mask, kind, res, support, recipe, data_sd,
        [*res.notes, *notes],
    )  # fmt: skip


class Evaluator:
    """Predictive draws at setpoints, with common random numbers.

    Every call uses the same ``random_seed``, so the posterior draws are shared between calls.
    Execution noise: each setpoint is copied with ``K`` common offsets ``N(0, execution_sd)``;
    draw ``d`` reads copy ``d mod K``.

    New-batch noise is made common too (:meth:`calibrate_noise`): a model draws it afresh for
    every column, which would let a search chase noise. The residuals ``e = y - f`` of the
    model's own draws at a reference setpoint (same seed, with and without noise) are re-used
    at every setpoint, rescaled by ``(mean f(x) / mean f(ref)) ** b`` with ``b`` fitted across
    candidates (``b = 0``: additive noise, ``b = 1``: constant CV). Reported summaries use the
    model's own draws (:meth:`raw`).
    """

    def __init__(
        self,
        model: YieldModel | Any,
        ctx: Context,
        *,
        n_draws: int,
        seed: int,
        execution_sd: np.ndarray,
        n_offsets: int = 16,
    ) -> None:
        self.model = model
        self.ctx = ctx
        self.n_draws = int(n_draws)
        self.seed = int(seed)
        if np.any(execution_sd > 0):
            rng = np.random.default_rng([self.seed, 1])
            self.offsets = rng.normal(size=(n_offsets, ctx.space.k)) * execution_sd
            self.offsets -= self.offsets.mean(axis=0)
        else:
            self.offsets = np.zeros((1, ctx.space.k))
        self.calls = 0
        self.noise_ref: np.ndarray | None = None
        self.noise_mean_ref = 1.0
        self.noise_power = 0.0

    def raw(self, points: np.ndarray, *, noise: bool) -> np.ndarray:
        """Return the model's predictive draws, shape ``(n_draws, len(points))``."""
        points = np.atleast_2d(points)
        k = len(self.offsets)
        expanded = (points[:, None, :] + self.offsets[None, :, :]).reshape(-1, self.ctx.space.k)
        per_call = max(1, _MAX_COLUMNS // k) * k
        parts = []
        for start in range(0, len(expanded), per_call):
            frame = self.ctx.frame(expanded[start : start + per_call])
            y = self.model.predict_draws(
                frame,
                n_draws=self.n_draws,
                noise=noise,
                kind=self.ctx.kind,
                random_seed=self.seed,
            )
            self.calls += 1
            parts.append(np.asarray(y, dtype=float).reshape(self.n_draws, len(frame)))
        y = np.concatenate(parts, axis=1).reshape(self.n_draws, len(points), k)
        pick = np.arange(self.n_draws) % k
        return y[np.arange(self.n_draws), :, pick]

    def calibrate_noise(self, f: np.ndarray, y: np.ndarray) -> bool:
        """Fit the common-noise transplant from draws without (``f``) and with (``y``) noise.

        Returns False (and keeps the model's own noise) when the two sets of draws do not
        share their posterior draws (residuals strongly correlated with ``f``).
        """
        e = y - f
        sd_e = e.std(axis=0)
        sd_f = f.std(axis=0)
        usable = (sd_e > 0) & (sd_f > 0)
        if usable.any():
            fc = f[:, usable] - f[:, usable].mean(axis=0)
            ec = e[:, usable] - e[:, usable].mean(axis=0)
            corr = (fc * ec).mean(axis=0) / (sd_f[usable] * sd_e[usable])
            if np.median(corr) < -0.3:
                return False
        if not np.any(sd_e > 0):
            return False
        mean_f = f.mean(axis=0)
        power = 0.0
        fit = (sd_e > 0) & (mean_f > 0)
        if fit.sum() >= 3 and np.ptp(np.log(mean_f[fit])) > 1e-6:
            power = float(np.polyfit(np.log(mean_f[fit]), np.log(sd_e[fit]), 1)[0])
            power = float(np.clip(power, 0.0, 2.0))
        ref = int(np.argsort(sd_e)[len(sd_e) // 2])
        self.noise_ref = e[:, ref] - e[:, ref].mean()
        self.noise_mean_ref = float(mean_f[ref]) if mean_f[ref] > 0 else 1.0
        self.noise_power = power if mean_f[ref] > 0 else 0.0
        return True

    def add_noise(self, f: np.ndarray) -> np.ndarray:
        """Add the common new-batch noise to draws without noise."""
        assert self.noise_ref is not None
        scale = np.ones(f.shape[1])
        if self.noise_power > 0:
            scale = (np.maximum(f.mean(axis=0), 1e-9) / self.noise_mean_ref) ** self.noise_power
        return f + self.noise_ref[:, None] * scale[None, :]

    def draws(self, points: np.ndarray, *, noise: bool) -> np.ndarray:
        """Draws for the search: with common noise once calibrated, else the model's own."""
        if noise and self.noise_ref is not None:
            return self.add_noise(self.raw(points, noise=False))
        return self.raw(points, noise=noise)


def cvar(draws: np.ndarray, risk: float) -> np.ndarray:
    """Mean of the lowest ``risk`` fraction of draws in each column (lower-tail CVaR)."""
    n = max(1, int(np.ceil(risk * draws.shape[0])))
    return np.partition(draws, n - 1, axis=0)[:n].mean(axis=0)


def score_values(
    draws: np.ndarray,
    objective: str,
    *,
    spec: float | None,
    risk: float,
    smooth: float | None = None,
    sign: float = 1.0,
) -> np.ndarray:
    """Objective per column of ``draws`` as a score to *maximise*.

    ``sign`` is +1 for a response to maximise and -1 for one to minimise: the score is then
    computed on ``-y`` (minus the mean, minus the upper ``risk`` quantile, ``P(y <= spec)``,
    minus the mean of the highest ``risk`` fraction). ``smooth`` > 0 uses a smooth
    ``P(meet spec)``.
    """
    u = draws if sign > 0 else -draws
    if objective == "mean":
        return u.mean(axis=0)
    if objective == "quantile":
        return np.quantile(u, risk, axis=0)
    if objective == "cvar":
        return cvar(u, risk)
    s = sign * spec
    if smooth:
        # smooth step keeps the search off the plateaus of a count of draws; the small mean term
        # breaks ties where every draw meets the spec
        return stats.norm.cdf((u - s) / smooth).mean(axis=0) + 1e-6 * u.mean(axis=0)
    return (u >= s).mean(axis=0)


def objective_values(
    draws: np.ndarray,
    objective: str,
    *,
    spec: float | None,
    risk: float,
    smooth: float | None = None,
    sign: float = 1.0,
) -> np.ndarray:
    """Objective per column in the response's unit (a probability for ``"prob_spec"``).

    The value of :func:`score_values` turned back into the response's unit: for a response
    to minimise, ``"quantile"`` is the upper ``1 - risk`` quantile and ``"cvar"`` the mean of
    the highest ``risk`` fraction of draws.
    """
    values = score_values(draws, objective, spec=spec, risk=risk, smooth=smooth, sign=sign)
    return values if objective == "prob_spec" or sign > 0 else -values


def summarise(
    draws: np.ndarray, *, spec: float | None, risk: float, sign: float = 1.0
) -> dict[str, np.ndarray]:
    """Mean, quantiles, adverse-tail CVaR and P(meet spec) per column of ``draws``.

    ``cvar`` is the mean of the worst ``risk`` fraction of draws (lowest when maximising,
    highest when minimising); ``prob_spec`` is ``P(y >= spec)`` or ``P(y <= spec)``.
    """
    q = np.quantile(draws, QUANTILE_LEVELS, axis=0)
    out = {"expected_yield": draws.mean(axis=0), "sd": draws.std(axis=0)}
    for level, row in zip(QUANTILE_LEVELS, q, strict=True):
        out[f"q{round(100 * level):02d}"] = row
    out["cvar"] = objective_values(draws, "cvar", spec=None, risk=risk, sign=sign)
    out["prob_spec"] = (
        objective_values(draws, "prob_spec", spec=spec, risk=risk, sign=sign)
        if spec is not None
        else np.full(draws.shape[1], np.nan)
    )
    return out


ScoreFn = Callable[[np.ndarray], np.ndarray]


def make_score(
    evaluator: Evaluator,
    objective: str,
    *,
    noise: bool,
    spec: float | None,
    risk: float,
    smooth: float | None,
) -> ScoreFn:
    """Return ``score(points) -> values``: the score to maximise, support guard as a penalty.

    Outside the support limit (when the guard is on) the score is a large negative number that
    rises towards the support, so a search started outside walks back in.
    """
    ctx = evaluator.ctx

    def score(points: np.ndarray) -> np.ndarray:
        draws = evaluator.draws(points, noise=noise)
        values = score_values(draws, objective, spec=spec, risk=risk, smooth=smooth, sign=ctx.sign)
        if not ctx.res.guard:
            return values
        dist = ctx.support.guard_distance(points, ctx.res.support)
        return np.where(dist <= ctx.res.max_distance, values, _INFEASIBLE - dist)

    return score


def lhs(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """Return a Latin hypercube of ``n`` points in ``[0, 1]^d``."""
    return qmc.LatinHypercube(d=d, rng=rng).random(n)


def local_search(
    score: ScoreFn,
    ctx: Context,
    starts: np.ndarray,
    rng: np.random.Generator,
    *,
    iterations: int = 6,
    n_local: int = 24,
    radius: float = 0.12,
    maxfev: int = 40,
) -> np.ndarray:
    """Refine ``starts`` (full setpoints); return the refined setpoints, best first.

    Vectorised pattern search: each round evaluates, in one call, the current best points and
    a Latin hypercube of ``n_local`` points in a box of half-width ``radius`` (unit scale)
    around each, keeps improvements and halves the box. Then Nelder-Mead polishes the best
    point (``maxfev`` one-row evaluations, same seed, so common random numbers).
    """
    d = len(ctx.res.free)
    if d == 0:
        return ctx.clip(starts[:1])
    u = ctx.to_unit(starts)
    b = len(u)
    best = score(ctx.to_points(u))
    for _ in range(iterations):
        cloud = (2.0 * lhs(n_local, d, rng) - 1.0) * radius
        cand = np.clip(u[:, None, :] + cloud[None, :, :], 0.0, 1.0).reshape(-1, d)
        values = score(ctx.to_points(np.vstack([u, cand])))
        current, values = values[:b], values[b:].reshape(b, n_local)
        j = values.argmax(axis=1)
        better = values[np.arange(b), j] > current
        u[better] = cand.reshape(b, n_local, d)[np.arange(b), j][better]
        best = np.where(better, values[np.arange(b), j], current)
        radius *= 0.5
    order = np.argsort(-best)
    u = u[order]
    if maxfev > 0:
        u0 = u[0]
        simplex = np.vstack([u0, np.clip(u0 + radius * 2 * np.eye(d), 0.0, 1.0)])
        simplex[1:][np.all(simplex[1:] == u0, axis=1)] -= radius * 2
        res = optimize.minimize(
            lambda x: -float(score(ctx.to_points(x))[0]),
            u0,
            method="Nelder-Mead",
            options={"maxfev": maxfev, "initial_simplex": np.clip(simplex, 0.0, 1.0)},
        )
        u = np.vstack([np.clip(res.x, 0.0, 1.0), u])
    return ctx.to_points(u)


def distinct_top(points: np.ndarray, values: np.ndarray, k: int, min_gap: float) -> np.ndarray:
    """Return indices of the ``k`` best rows at least ``min_gap`` apart (unit scale)."""
    chosen: list[int] = []
    for i in np.argsort(-values):
        if all(np.max(np.abs(points[i] - points[c])) >= min_gap for c in chosen):
            chosen.append(int(i))
        if len(chosen) == k:
            break
    return np.array(chosen, dtype=int)


def largest_box(ok: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Largest axis-aligned box of True cells in a boolean grid (any number of dimensions).

    Exhaustive over all boxes whose faces lie on grid points: the first ``d - 2`` axes are
    enumerated (with an OR-collapse of the failing cells), the last two are solved at once with
    a 2-D summed-area table. Size is the number of grid points in the box; ties go to the box
    found first. Returns ``(low_index, high_index)`` per axis, or None if no cell is True.
    """
    if not ok.any():
        return None
    d = ok.ndim
    if d == 0:
        return np.array([], dtype=int), np.array([], dtype=int)
    bad = ~ok
    if d == 1:
        bad = bad[:, None]
    shape = bad.shape
    outer, inner = shape[:-2], shape[-2:]
    pairs2 = [
        np.array([(lo, hi) for lo in range(n) for hi in range(lo, n)], dtype=int) for n in inner
    ]
    # all (row-pair, col-pair) combinations for the last two axes
    r = pairs2[0][:, None, :]
    c = pairs2[1][None, :, :]
    size2 = (r[..., 1] - r[..., 0] + 1) * (c[..., 1] - c[..., 0] + 1)
    best_size, best = 0, None
    outer_pairs = [[(lo, hi) for lo in range(n) for hi in range(lo, n)] for n in outer]
    for combo in itertools.product(*outer_pairs):
        size_outer = int(np.prod([hi - lo + 1 for lo, hi in combo])) if combo else 1
        if size_outer * inner[0] * inner[1] <= best_size:
            continue
        sl = tuple(slice(lo, hi + 1) for lo, hi in combo)
        collapsed = bad[sl].any(axis=tuple(range(len(combo)))) if combo else bad
        sat = np.zeros((inner[0] + 1, inner[1] + 1), dtype=int)
        sat[1:, 1:] = collapsed.cumsum(0).cumsum(1)
        count = (
            sat[r[..., 1] + 1, c[..., 1] + 1]
            - sat[r[..., 0], c[..., 1] + 1]
            - sat[r[..., 1] + 1, c[..., 0]]
            + sat[r[..., 0], c[..., 0]]
        )
        sizes = np.where(count == 0, size2, 0) * size_outer
        i = np.unravel_index(int(sizes.argmax()), sizes.shape)
        if sizes[i] > best_size:
            best_size = int(sizes[i])
            lo = [p[0] for p in combo] + [pairs2[0][i[0]][0], pairs2[1][i[1]][0]]
            hi = [p[1] for p in combo] + [pairs2[0][i[0]][1], pairs2[1][i[1]][1]]
            best = (np.array(lo), np.array(hi))
    assert best is not None
    if d == 1:
        return best[0][:1], best[1][:1]
    return best


#: Most grid points of a design-space grid, and most boxes enumerated by :func:`largest_box`
#: over the outer axes; the resolution is lowered for many free factors to stay within both.
MAX_GRID_POINTS: int = 50_000
MAX_OUTER_BOXES: int = 20_000


def grid_resolution(resolution: int, n_free: int) -> int:
    """Largest resolution <= ``resolution`` (and >= 2) whose grid and box search stay small."""
    r = int(resolution)
    while r > 2:
        pairs = r * (r + 1) // 2
        if r**n_free <= MAX_GRID_POINTS and pairs ** max(n_free - 2, 0) <= MAX_OUTER_BOXES:
            break
        r -= 1
    return r


def validate_setpoints(table: pd.DataFrame, space: ProcessSpace) -> pd.DataFrame:
    """Validate a table of setpoints (no response needed) against ``space``."""
    return schema.validate(table, require_response=False, space=space)
