"""Internals of :mod:`bayesbio.recommend`: argument checks, data support, draws and search.

Everything here works on numpy arrays in the canonical parameter order
(:data:`bayesbio.schema.PARAMETERS`); the public module turns results into DataFrames.
The only model calls are ``model.predict_draws`` and ``model.training_table_``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.stats import qmc

from bayesbio import schema

PARAMS: tuple[str, ...] = schema.PARAMETERS
OBJECTIVES: tuple[str, ...] = ("mean", "quantile", "prob_spec", "cvar")
KINDS: tuple[str, ...] = ("auto", "existing", "new_group", "population")
SUPPORTS: tuple[str, ...] = ("overall", "group")
#: Default support limit: the 99 % quantile of the chi distribution with 4 degrees of freedom,
#: i.e. the Mahalanobis radius holding 99 % of a Gaussian cloud of setpoints.
DEFAULT_MAX_DISTANCE: float = float(np.sqrt(stats.chi2.ppf(0.99, len(PARAMS))))
QUANTILE_LEVELS: tuple[float, ...] = (0.05, 0.1, 0.5, 0.9, 0.95)
_BOUND_LO = np.array([schema.BOUNDS[p][0] for p in PARAMS])
_BOUND_W = np.array([schema.BOUNDS[p][1] - schema.BOUNDS[p][0] for p in PARAMS])
_LIMIT_LO = np.array([schema.LIMITS[p][0] for p in PARAMS])
_LIMIT_HI = np.array([schema.LIMITS[p][1] for p in PARAMS])
# Setpoint covariances get this ridge (in units of the operating range squared): a parameter
# that never varied in the data still has an SD of 1 % of its range, so distances stay finite.
_RIDGE = 1e-4
_MAX_COLUMNS = 8192
_INFEASIBLE = -1e9


@dataclass(frozen=True)
class Constraints:
    """Where a setpoint may be searched.

    Parameters
    ----------
    bounds : mapping of str to (float, float), optional
        Search range per parameter in domain units; parameters not named keep
        :data:`bayesbio.schema.BOUNDS`. Must lie within :data:`bayesbio.schema.LIMITS`.
    fixed : mapping of str to float, optional
        Parameters held at a value (e.g. ``{"ph": 7.0}`` when the cell line fixes pH).
    max_distance : float, default 3.64
        Data-support limit: largest Mahalanobis distance of a setpoint from the training
        setpoints (default: radius holding 99 % of a 4-D Gaussian cloud).
    support : {"overall", "group"}, default "overall"
        Measure support against all training setpoints, or against the target group's mean
        with the pooled within-group covariance.
    guard : bool, default True
        Keep the search inside the support limit. With ``False`` the limit is only used to
        warn (:class:`bayesbio.recommend.ExtrapolationWarning`).
    """

    bounds: Mapping[str, tuple[float, float]] | None = None
    fixed: Mapping[str, float] | None = None
    max_distance: float = DEFAULT_MAX_DISTANCE
    support: str = "overall"
    guard: bool = True


@dataclass
class Resolved:
    """Checked constraints as arrays."""

    lo: np.ndarray
    hi: np.ndarray
    fixed: dict[int, float]
    free: np.ndarray
    max_distance: float
    support: str
    guard: bool
    constraints: Constraints


def check_choice(value: Any, valid: tuple[str, ...], argument: str) -> str:
    """Raise ValueError naming ``argument`` unless ``value`` is one of ``valid``."""
    if not isinstance(value, str) or value not in valid:
        raise ValueError(f"{argument} must be one of {list(valid)}, got {value!r}")
    return value


def check_fraction(value: Any, argument: str) -> float:
    """Return ``value`` as a float strictly between 0 and 1, else raise ValueError."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{argument} must be a number in (0, 1), got {value!r}") from None
    if not 0.0 < out < 1.0:
        raise ValueError(f"{argument} must be in (0, 1), got {value!r}")
    return out


def check_names(mapping: Mapping[str, Any] | None, argument: str) -> dict[str, Any]:
    """Return ``mapping`` as a dict after checking its keys are parameter names."""
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise ValueError(
            f"{argument} must be a mapping from parameter names {list(PARAMS)} to values, "
            f"got {type(mapping).__name__}"
        )
    unknown = [k for k in mapping if k not in PARAMS]
    if unknown:
        raise ValueError(
            f"{argument} names unknown parameter(s) {unknown}; valid names are {list(PARAMS)}"
        )
    return dict(mapping)


def resolve_constraints(constraints: Constraints | Mapping[str, Any] | None) -> Resolved:
    """Check ``constraints`` (a :class:`Constraints`, a mapping of its fields, or None)."""
    if constraints is None:
        constraints = Constraints()
    elif isinstance(constraints, Mapping):
        valid = ("bounds", "fixed", "max_distance", "support", "guard")
        unknown = [k for k in constraints if k not in valid]
        if unknown:
            raise ValueError(
                f"constraints has unknown key(s) {unknown}; valid keys are {list(valid)}"
            )
        constraints = Constraints(**constraints)
    elif not isinstance(constraints, Constraints):
        raise ValueError(
            "constraints must be a Constraints, a mapping with keys bounds/fixed/max_distance/"
            f"support/guard, or None; got {type(constraints).__name__}"
        )
    bounds = check_names(constraints.bounds, "constraints.bounds")
    fixed = check_names(constraints.fixed, "constraints.fixed")
    lo = np.array([schema.BOUNDS[p][0] for p in PARAMS], dtype=float)
    hi = np.array([schema.BOUNDS[p][1] for p in PARAMS], dtype=float)
    for name, pair in bounds.items():
        try:
            low, high = (float(v) for v in pair)
        except (TypeError, ValueError):
            raise ValueError(
                f"constraints.bounds['{name}'] must be a (low, high) pair, got {pair!r}"
            ) from None
        lim = schema.LIMITS[name]
        if not (lim[0] <= low < high <= lim[1]):
            raise ValueError(
                f"constraints.bounds['{name}'] = ({low:g}, {high:g}) must satisfy "
                f"{lim[0]:g} <= low < high <= {lim[1]:g} (schema.LIMITS, "
                f"{schema.UNITS[name] or 'pH units'})"
            )
        j = PARAMS.index(name)
        lo[j], hi[j] = low, high
    fixed_idx: dict[int, float] = {}
    for name, value in fixed.items():
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"constraints.fixed['{name}'] must be a number, got {value!r}"
            ) from None
        lim = schema.LIMITS[name]
        if not (np.isfinite(v) and lim[0] <= v <= lim[1]):
            raise ValueError(
                f"constraints.fixed['{name}'] = {v:g} is outside schema.LIMITS "
                f"{lim[0]:g}-{lim[1]:g}"
            )
        fixed_idx[PARAMS.index(name)] = v
        lo[PARAMS.index(name)] = hi[PARAMS.index(name)] = v
    max_distance = float(constraints.max_distance)
    if not max_distance > 0:
        raise ValueError(f"constraints.max_distance must be > 0, got {constraints.max_distance!r}")
    support = check_choice(constraints.support, SUPPORTS, "constraints.support")
    free = np.array([j for j in range(len(PARAMS)) if j not in fixed_idx], dtype=int)
    return Resolved(
        lo, hi, fixed_idx, free, max_distance, support, bool(constraints.guard), constraints
    )


def check_execution_sd(execution_sd: Mapping[str, float] | None) -> np.ndarray:
    """Return execution-noise SDs per parameter (zeros where not given)."""
    sd = np.zeros(len(PARAMS))
    for name, value in check_names(execution_sd, "execution_sd").items():
        v = float(value)
        if not (np.isfinite(v) and v >= 0):
            raise ValueError(f"execution_sd['{name}'] must be a finite SD >= 0, got {value!r}")
        sd[PARAMS.index(name)] = v
    return sd


class Support:
    """Mahalanobis distance of setpoints from the training setpoints (overall and by group).

    Setpoints are scaled by the operating ranges; covariances carry a small ridge.
    ``"overall"`` uses the mean and covariance of all training setpoints; ``"group"`` the
    target group's mean with the pooled within-group covariance (all groups centred at their
    own means), and is NaN for a group without data.
    """

    def __init__(self, points: np.ndarray, labels: np.ndarray, in_group: np.ndarray) -> None:
        z = (points - _BOUND_LO) / _BOUND_W
        ridge = _RIDGE * np.eye(z.shape[1])
        self.centre = z.mean(axis=0)
        cov = np.cov(z, rowvar=False) if len(z) > 1 else np.zeros((z.shape[1],) * 2)
        self.prec = np.linalg.inv(np.atleast_2d(cov) + ridge)
        codes, uniques = pd.factorize(labels)
        dof = len(z) - len(uniques)
        if dof >= z.shape[1] + 1:
            resid = z.copy()
            for g in range(len(uniques)):
                resid[codes == g] -= z[codes == g].mean(axis=0)
            self.prec_group = np.linalg.inv(resid.T @ resid / dof + ridge)
        else:
            self.prec_group = self.prec
        self.centre_group = z[in_group].mean(axis=0) if in_group.any() else None

    def distance(self, points: np.ndarray, which: str = "overall") -> np.ndarray:
        """Return the Mahalanobis distance of each row of ``points``."""
        z = (np.atleast_2d(points) - _BOUND_LO) / _BOUND_W
        if which == "overall":
            d = z - self.centre
            return np.sqrt(np.einsum("ij,jk,ik->i", d, self.prec, d))
        if self.centre_group is None:
            return np.full(len(z), np.nan)
        d = z - self.centre_group
        return np.sqrt(np.einsum("ij,jk,ik->i", d, self.prec_group, d))

    def guard_distance(self, points: np.ndarray, which: str) -> np.ndarray:
        """Distance used by the guard: ``which``, falling back to overall for a new group."""
        if which == "group" and self.centre_group is not None:
            return self.distance(points, "group")
        return self.distance(points, "overall")


@dataclass
class Context:
    """The target group, its data and the checked constraints."""

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

    def frame(self, points: np.ndarray) -> pd.DataFrame:
        """Return a setpoint table (group columns, then parameters) for ``points``."""
        points = np.clip(np.atleast_2d(points), _LIMIT_LO, _LIMIT_HI)
        df = pd.DataFrame(
            {c: np.full(len(points), self.group[c], dtype=object) for c in self.group_cols}
        )
        for j, p in enumerate(PARAMS):
            df[p] = points[:, j]
        return df

    def to_points(self, u: np.ndarray) -> np.ndarray:
        """Map unit coordinates of the free parameters to full setpoints (domain units)."""
        u = np.clip(np.atleast_2d(u), 0.0, 1.0)
        out = np.tile(self.res.lo, (len(u), 1))
        f = self.res.free
        out[:, f] = self.res.lo[f] + u * (self.res.hi[f] - self.res.lo[f])
        return out

    def to_unit(self, points: np.ndarray) -> np.ndarray:
        """Map full setpoints to unit coordinates of the free parameters."""
        f = self.res.free
        w = self.res.hi[f] - self.res.lo[f]
        return np.clip((np.atleast_2d(points)[:, f] - self.res.lo[f]) / w, 0.0, 1.0)

    def clip(self, points: np.ndarray) -> np.ndarray:
        """Clip setpoints into the search bounds (fixed parameters at their values)."""
        return np.clip(np.atleast_2d(points), self.res.lo, self.res.hi)


def training_table(model: Any) -> pd.DataFrame:
    """Return ``model.training_table_`` or raise a ValueError saying the model is not fitted."""
    table = getattr(model, "training_table_", None)
    if not isinstance(table, pd.DataFrame):
        raise ValueError(
            f"model ({type(model).__name__}) has no training_table_: fit it before recommending"
        )
    if not hasattr(model, "predict_draws"):
        raise ValueError(f"model ({type(model).__name__}) has no predict_draws method")
    return table


def build_context(
    model: Any,
    group: Mapping[str, Any] | None,
    kind: str,
    constraints: Constraints | Mapping[str, Any] | None,
) -> Context:
    """Resolve the target group, the prediction kind and the constraints."""
    table = training_table(model)
    check_choice(kind, KINDS, "kind")
    res = resolve_constraints(constraints)
    group_cols = schema.group_columns(table, getattr(model, "groups", None))
    if group is not None and not isinstance(group, Mapping):
        raise ValueError(f"group must be a mapping such as {{'site': 'A'}}, got {group!r}")
    given = {str(k): str(v) for k, v in (group or {}).items()}
    unknown = [k for k in given if k not in group_cols]
    if unknown:
        raise ValueError(
            f"group names unknown column(s) {unknown}; the model's group columns are {group_cols}"
        )
    if not given and group_cols:
        combos = table[group_cols].astype(str).drop_duplicates()
        if len(combos) > 1:
            shown = combos.head(3).to_dict("records")
            raise ValueError(
                f"group must name the target group, e.g. group={shown[0]}; the training data "
                f"hold {len(combos)} combinations of {group_cols} (first: {shown})"
            )
    mask = np.ones(len(table), dtype=bool)
    for k, v in given.items():
        mask &= table[k].astype(str).to_numpy() == v
    full: dict[str, str] = {}
    notes: list[str] = []
    for c in group_cols:
        if c in given:
            full[c] = given[c]
        else:
            source = table.loc[mask, c] if mask.any() else table[c]
            full[c] = str(source.astype(str).mode().iloc[0])
            notes.append(f"group column '{c}' not given: using its most frequent value {full[c]!r}")
    if kind == "auto":
        kind = "existing" if mask.any() else "new_group"
    elif kind == "existing" and not mask.any():
        raise ValueError(
            f"kind='existing' but group {given} has no training batches; use kind='new_group'"
        )
    points = table[list(PARAMS)].to_numpy(dtype=float)
    labels = (
        table[group_cols].astype(str).agg("/".join, axis=1).to_numpy()
        if group_cols
        else np.zeros(len(table))
    )
    support = Support(points, labels, mask)
    recipe = np.median(points[mask] if mask.any() else points, axis=0)
    for j, v in res.fixed.items():
        recipe[j] = v
    data_sd = points.std(axis=0, ddof=1) if len(points) > 1 else _BOUND_W * 0.1
    data_sd = np.where(data_sd > 0, data_sd, _BOUND_W * 0.01)
    return Context(table, group_cols, full, mask, kind, res, support, recipe, data_sd, notes)


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
        model: Any,
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
            self.offsets = rng.normal(size=(n_offsets, len(PARAMS))) * execution_sd
            self.offsets -= self.offsets.mean(axis=0)
        else:
            self.offsets = np.zeros((1, len(PARAMS)))
        self.calls = 0
        self.noise_ref: np.ndarray | None = None
        self.noise_mean_ref = 1.0
        self.noise_power = 0.0

    def raw(self, points: np.ndarray, *, noise: bool) -> np.ndarray:
        """Return the model's predictive draws, shape ``(n_draws, len(points))``."""
        points = np.atleast_2d(points)
        k = len(self.offsets)
        expanded = (points[:, None, :] + self.offsets[None, :, :]).reshape(-1, len(PARAMS))
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


def objective_values(
    draws: np.ndarray,
    objective: str,
    *,
    spec: float | None,
    risk: float,
    smooth: float | None = None,
) -> np.ndarray:
    """Objective per column of ``draws``; ``smooth`` > 0 uses a smooth P(y >= spec)."""
    if objective == "mean":
        return draws.mean(axis=0)
    if objective == "quantile":
        return np.quantile(draws, risk, axis=0)
    if objective == "cvar":
        return cvar(draws, risk)
    if smooth:
        # smooth step keeps the search off the plateaus of a count of draws; the small mean term
        # breaks ties where every draw meets the spec
        return stats.norm.cdf((draws - spec) / smooth).mean(axis=0) + 1e-6 * draws.mean(axis=0)
    return (draws >= spec).mean(axis=0)


def summarise(draws: np.ndarray, *, spec: float | None, risk: float) -> dict[str, np.ndarray]:
    """Mean, quantiles, CVaR and P(y >= spec) per column of ``draws``."""
    q = np.quantile(draws, QUANTILE_LEVELS, axis=0)
    out = {"expected_yield": draws.mean(axis=0), "sd": draws.std(axis=0)}
    for level, row in zip(QUANTILE_LEVELS, q, strict=True):
        out[f"q{round(100 * level):02d}"] = row
    out["cvar"] = cvar(draws, risk)
    out["prob_spec"] = (
        (draws >= spec).mean(axis=0) if spec is not None else np.full(draws.shape[1], np.nan)
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
    """Return ``score(points) -> values``: the objective, with the support guard as a penalty.

    Outside the support limit (when the guard is on) the score is a large negative number that
    rises towards the support, so a search started outside walks back in.
    """
    ctx = evaluator.ctx

    def score(points: np.ndarray) -> np.ndarray:
        draws = evaluator.draws(points, noise=noise)
        values = objective_values(draws, objective, spec=spec, risk=risk, smooth=smooth)
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
