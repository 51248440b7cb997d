"""Where a setpoint may be searched: bounds, fixed factors and the support guard's limits.

:class:`Constraints` is what a user passes; :func:`resolve_constraints` checks it against the
process space and returns :class:`Resolved`, the same limits as arrays in the space's factor
order. Every argument error names the argument (``constraints.bounds['ph']``) and the valid
values.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from bayesbio.checks import check_choice
from bayesbio.recommend.messages import ExtrapolationWarning
from bayesbio.space import ProcessSpace, unit_suffix

SUPPORTS: tuple[str, ...] = ("overall", "group")
#: Share of a Gaussian cloud of setpoints that the default support radius holds.
SUPPORT_LEVEL: float = 0.99


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
        :class:`~bayesbio.recommend.support.Support`; all batches for a group without any);
        ``"overall"``: against all training setpoints.
    guard : bool, default True
        Keep the search inside the support limits (distance and, with ``max_sd_ratio``, the
        model-based measure). With ``False`` the limits are only used to warn
        (:class:`bayesbio.recommend.ExtrapolationWarning`).
    max_sd_ratio : float or None, default 2.0
        Model-based support limit: the posterior SD of the group's mean log-response at a
        setpoint divided by its median over the group's own training setpoints (the ratio
        grows where the model extrapolates). None switches this measure off.
    max_reach : float or None, default None
        Per-factor limit on extrapolation (with ``support="group"`` and the guard on, for a
        group with batches of its own): every free factor stays within the values the group
        has run, widened on each side by ``max_reach`` x their span (at least 5 % of the
        operating range). The distance limit alone lets one factor go several spreads beyond
        the group's last batch when the others stay near its centre. None: no such limit.
        Measured on the independent worlds with 0.25 (BENCHMARKS.md): better where a scale's
        optimum sits near its own batches, worse on a diagonal ridge; not the default.

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
    max_reach: float | None = None


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
    """Return ``mapping`` as a dict keyed by factor names.

    A key may be a factor's name, its label or the file's header for it
    (:meth:`~bayesbio.space.ProcessSpace.factor_name`); it is returned under the name. A key
    that names no factor, or two keys that name the same one, raise ``ValueError`` naming
    ``argument``.
    """
    names = list(space.factor_names)
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise ValueError(
            f"{argument} must be a mapping from factor names {names} to values, "
            f"got {type(mapping).__name__}"
        )
    meant = {key: space.factor_name(key) for key in mapping}
    unknown = [k for k, name in meant.items() if name is None]
    if unknown:
        raise ValueError(
            f"{argument} names unknown factor(s) {unknown}; the process's factors are {names}"
        )
    out: dict[str, Any] = {}
    given: dict[str, Any] = {}
    for key, value in mapping.items():
        name = str(meant[key])
        if name in out:
            raise ValueError(
                f"{argument} names factor {name!r} twice ({given[name]!r} and {key!r})"
            )
        out[name] = value
        given[name] = key
    return out


def _unit_text(space: ProcessSpace, name: str) -> str:
    return unit_suffix(space.units[name])


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
        valid = (
            "bounds",
            "fixed",
            "max_distance",
            "support",
            "guard",
            "max_sd_ratio",
            "max_reach",
        )
        unknown = [k for k in constraints if k not in valid]
        if unknown:
            raise ValueError(
                f"constraints has unknown key(s) {unknown}; valid keys are {list(valid)}"
            )
        constraints = Constraints(**constraints)
    elif not isinstance(constraints, Constraints):
        raise ValueError(
            "constraints must be a Constraints, a mapping with keys bounds/fixed/max_distance/"
            f"support/guard/max_sd_ratio/max_reach, or None; got {type(constraints).__name__}"
        )
    names = space.factor_names
    bounds = check_names(constraints.bounds, f"{prefix}bounds", space)
    constraints_fixed = check_names(constraints.fixed, f"{prefix}fixed", space)
    fixed = {**space.fixed, **constraints_fixed}
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
        if not space.lower[j] <= v <= space.upper[j] and name in constraints_fixed:
            outside = (
                f"{where} = {v:g}{_unit_text(space, name)} is outside the operating range "
                f"({space.lower[j]:g}, {space.upper[j]:g}): the model extrapolates there"
            )
            notes.append(outside)
            warnings.warn(outside, ExtrapolationWarning, stacklevel=3)
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
    if constraints.max_reach is not None:
        try:
            reach = float(constraints.max_reach)
        except (TypeError, ValueError):
            reach = math.nan
        if not (np.isfinite(reach) and reach >= 0):
            raise ValueError(
                f"{prefix}max_reach must be a number >= 0 (a share of the span of the "
                f"group's own values), or None; got {constraints.max_reach!r}"
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


def reach_box(res: Resolved, group_points: np.ndarray) -> list[str]:
    """Narrow ``res``'s search box to the group's own values plus ``max_reach`` of their span.

    Applied to the free factors (in place) when ``max_reach`` is set, support is per group,
    the guard is on and the group has batches; returns the notes saying where it cut.
    """
    reach = res.constraints.max_reach
    if reach is None or res.support != "group" or not res.guard or len(group_points) == 0:
        return []
    space = res.space
    notes = []
    width = space.upper - space.lower
    for j in res.free:
        values = group_points[:, j]
        pad = max(float(reach) * float(np.ptp(values)), 0.05 * float(width[j]))
        lo, hi = max(res.lo[j], values.min() - pad), min(res.hi[j], values.max() + pad)
        if lo >= hi:  # the group ran outside the search box: leave the box as it is
            continue
        if (lo, hi) != (res.lo[j], res.hi[j]):
            name = space.factor_names[j]
            notes.append(
                f"{name} searched within {lo:.4g}-{hi:.4g}{_unit_text(space, name)}: the "
                f"group's own values {values.min():.4g}-{values.max():.4g} plus "
                f"{float(reach):.0%} of their span (max_reach)"
            )
            res.lo[j], res.hi[j] = lo, hi
    return notes


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
