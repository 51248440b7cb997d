"""Risk-aware setpoint recommendations, Bayesian design spaces and where to run the next batch.

Everything here works from a fitted yield model through the model protocol only
(``model.predict_draws``, ``model.training_table_`` and the process space ``model.space_``;
``model.diagnostics_`` and ``model.stacking_weights_`` are read when present), so the Bayesian
model and the baselines are handled alike, for any process space (k >= 1 factors).

How a recommendation is found
-----------------------------
For a setpoint ``x`` the model gives ``S`` predictive draws ``y_1..y_S`` of the response (in
its unit, e.g. g/L). An *objective* turns them into one number:

* ``"mean"`` -- expected response;
* ``"quantile"`` -- the ``risk`` quantile (default the 10th percentile of a new batch);
* ``"prob_spec"`` -- ``P(y >= spec)``;
* ``"cvar"`` (default) -- the mean of the worst ``risk`` fraction of draws (lower-tail
  conditional value at risk, a risk-averse expected utility).

For a response the space declares ``direction = "minimise"`` (an impurity, a cost) every
objective turns around: the mean is minimised, ``"quantile"`` minimises the upper ``1 - risk``
quantile, ``"prob_spec"`` maximises ``P(y <= spec)`` and ``"cvar"`` minimises the mean of the
highest ``risk`` fraction of draws. Tables and plots say which.

The uncertainty in the draws is what the caller switches on: the parameter posterior and the
model structure (both inside the model's draws), new-batch noise (``noise``), a group without
data (``kind="new_group"``) and setpoint execution noise (``execution_sd``: each setpoint is
perturbed per draw with 16 common offsets).

All evaluations use the same seed, so candidates are compared on *common random numbers*
(the same posterior draws). The search is a Latin hypercube of candidates evaluated in one
``predict_draws`` call, a vectorised local pattern search from the best few, and a short
Nelder-Mead polish; a final call compares the finalists on the same draws.

The *extrapolation guard* keeps the search within a Mahalanobis distance of the training
setpoints (:class:`Constraints`); a recommendation outside it raises
:class:`ExtrapolationWarning`.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator

from bayesbio._recommend_core import (
    DEFAULT_MAX_DISTANCE,
    KINDS,
    OBJECTIVES,
    QUANTILE_LEVELS,
    Constraints,
    Context,
    Evaluator,
    build_context,
    check_execution_sd,
    check_names,
    distinct_top,
    grid_resolution,
    largest_box,
    lhs,
    local_search,
    objective_values,
    score_values,
    summarise,
    support_radius,
    validate_setpoints,
)
from bayesbio.checks import check_choice, check_fraction, check_int, make_rng
from bayesbio.space import ProcessSpace

if TYPE_CHECKING:
    from bayesbio.models.protocol import YieldModel

__all__ = [
    "DEFAULT_MAX_DISTANCE",
    "KINDS",
    "OBJECTIVES",
    "BoundWarning",
    "Constraints",
    "DesignSpace",
    "ExtrapolationWarning",
    "ModelDiagnosticsWarning",
    "Recommendation",
    "describe_objective",
    "design_space",
    "next_batches",
    "plot_design_space",
    "plot_recommendation",
    "plot_regret_study",
    "recommend",
    "support_radius",
]

_ROWS = ("recommended", "mean_optimal", "recipe")


class ExtrapolationWarning(UserWarning):
    """A setpoint lies outside the support of the historical data (Mahalanobis limit)."""


class ModelDiagnosticsWarning(UserWarning):
    """The model's sampling diagnostics flag a problem; the recommendation carries it."""


class BoundWarning(UserWarning):
    """A recommended factor lies on a bound of the search box: the optimum may lie beyond."""


@dataclass(frozen=True)
class Recommendation:
    """A recommended setpoint with its predictive summary and the mean-optimal comparison.

    Response values are in the unit of the space's response (``space.response.unit``); the
    names ``expected_yield`` etc. are kept for any response.

    Attributes
    ----------
    setpoint : pandas.Series
        Recommended setpoint, domain units, indexed by factor (``space.factor_names``).
    objective : str
        Objective optimised (see :data:`OBJECTIVES`); ``risk`` is its level. It is maximised,
        or minimised for a response to minimise (see :attr:`direction`).
    objective_value : float
        Its value at ``setpoint`` (response unit, or a probability for ``"prob_spec"``).
    expected_yield : float
        Mean predictive response at ``setpoint``.
    quantiles : pandas.Series
        Predictive quantiles at ``setpoint`` (index: probability levels).
    prob_spec : float or None
        ``P(meet spec)`` at ``setpoint`` for a new batch: ``P(y >= spec)``, or ``P(y <= spec)``
        for a response to minimise (None without ``spec``).
    expected_regret : float
        Posterior expected regret in the response's unit: the mean over posterior draws of
        the gap between the best mean response over all evaluated feasible setpoints under
        that draw and the mean response at ``setpoint``. A lower bound, as the best runs over
        a finite candidate set.
    support_distance : dict
        Mahalanobis distance of ``setpoint`` from the training setpoints: ``"group"`` (the
        target group's own batches, see :class:`~bayesbio._recommend_core.Support`; NaN for
        a new group) and ``"overall"``; ``"limit"`` is the support limit; ``"sd_ratio"`` the
        model-based measure (posterior SD of the group's mean log-response at ``setpoint``
        over its median at the group's training setpoints) and ``"sd_ratio_limit"`` its
        limit (NaN when off).
    mean_optimal : pandas.Series
        The setpoint with the best expected response under the same constraints.
    recipe : pandas.Series
        The group's recipe, the reference of the safe-improvement test: ``recipe=`` as passed
        to :func:`recommend`, else the group's median historical setpoint (the overall median
        for a group without batches). The process space declares no recipe of its own.
    summary : pandas.DataFrame
        One row each for ``recommended``, ``mean_optimal`` and ``recipe``: setpoint, expected
        response, SD, quantiles, ``cvar`` (mean of the adverse ``risk`` tail), P(meet spec),
        objective, expected regret, distances.
    shift : pandas.DataFrame
        Per factor: recommended and mean-optimal values, their difference in domain units
        and in SDs of the training setpoints.
    premium : dict
        Model-risk premium (recommended minus mean-optimal): ``delta_mean`` (expected
        response), ``delta_q10`` and ``delta_q90`` (10th and 90th percentiles), ``delta_cvar``
        (adverse tail), ``delta_prob_spec`` and ``distance_sd`` (Euclidean shift in data SDs).
    draws : pandas.DataFrame
        Predictive draws at the three setpoints, one column each.
    group : dict
        Target group (all group columns); ``kind`` how it was predicted.
    warnings : tuple of str
        Diagnostics and extrapolation warnings (also emitted as Python warnings).
    diagnostics : dict
        ``model.diagnostics_`` (and ``stacking_weights_``) when the model has them.
    settings : dict
        The arguments used (objective, risk, spec, noise, execution SDs, draws, seed, ...) and
        ``objective_description``.
    space : ProcessSpace or None
        The model's process space (None: the default space).
    decision : {"improve", "recipe"}
        ``"improve"``: ``setpoint`` beats the recipe with posterior probability at least
        ``min_confidence``; ``"recipe"``: no setpoint within support did, so ``setpoint`` is
        the recipe.
    reason : str
        One sentence saying why (the confidence reached and the threshold).
    p_better_than_recipe : float
        ``P(mean response at setpoint better than at the recipe | data)`` from common
        posterior draws (the same draws evaluated at both points; noise-free means). When the
        decision is ``"recipe"`` it is the value of :attr:`candidate`, the best setpoint that
        failed the test.
    expected_gain : float
        Posterior mean of the improvement over the recipe, response unit (positive =
        better in the response's direction); of :attr:`candidate` when the decision is
        ``"recipe"``.
    expected_gain_pct : float
        ``expected_gain`` in % of the recipe's expected response.
    support_used : str
        Which support the guard measured against: ``"group (own batches)"`` or
        ``"overall"``.
    candidate : pandas.Series or None
        With the decision ``"recipe"``: the best setpoint found within support, which did
        not reach ``min_confidence``; None otherwise.
    next_experiments : pandas.DataFrame or None
        With the decision ``"recipe"``: the best experiments to run instead (supported
        setpoints ranked by :func:`next_batches`); None otherwise.
    """

    setpoint: pd.Series
    objective: str
    risk: float
    spec: float | None
    objective_value: float
    expected_yield: float
    quantiles: pd.Series
    prob_spec: float | None
    expected_regret: float
    support_distance: dict[str, float]
    mean_optimal: pd.Series
    recipe: pd.Series
    summary: pd.DataFrame
    shift: pd.DataFrame
    premium: dict[str, float]
    draws: pd.DataFrame
    group: dict[str, str]
    kind: str
    warnings: tuple[str, ...] = ()
    diagnostics: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    space: ProcessSpace | None = None
    decision: str = "improve"
    reason: str = ""
    p_better_than_recipe: float = float("nan")
    expected_gain: float = float("nan")
    expected_gain_pct: float = float("nan")
    support_used: str = "overall"
    candidate: pd.Series | None = None
    next_experiments: pd.DataFrame | None = None

    @property
    def direction(self) -> str:
        """``"maximise"`` or ``"minimise"``: the response direction of the space."""
        return _space(self.space).response.direction

    def to_frame(self) -> pd.DataFrame:
        """Return the summary table (rows: recommended, mean_optimal, recipe)."""
        space = _space(self.space)
        r = space.response
        out = self.summary.copy()
        out.attrs["units"] = f"setpoints in domain units; {r.name} in {r.unit}"
        out.attrs["direction"] = r.direction
        out.attrs["objective"] = describe_objective(self.objective, self.risk, self.spec, space)
        return out

    def plot(self, *, ax: Axes | None = None) -> Axes:
        """Plot the predictive distributions; see :func:`plot_recommendation`."""
        return plot_recommendation(self, ax=ax)


@dataclass(frozen=True)
class DesignSpace:
    """Setpoints where a new batch meets the spec with at least the required probability.

    Attributes
    ----------
    spec : float
        Specification in the response's unit; met when ``y >= spec`` (or ``y <= spec`` for a
        response to minimise).
    prob : float
        Required probability ``P(meet spec | data)``.
    grid : pandas.DataFrame
        Tidy grid over the search bounds (fixed factors at their values): the factors,
        ``prob`` (P(meet spec)), ``expected_yield`` (expected response), ``distance`` (support
        distance used by the guard), ``supported`` and ``inside`` (``prob >= prob`` and, with
        the guard on, supported).
    maps : dict
        Slices through ``center``: ``{(f1, f2): DataFrame}`` for every pair of free factors (a
        finer 2-D grid of ``f1, f2, prob, expected_yield, supported, inside``); with a single
        free factor one 1-D profile ``{(f1,): DataFrame}``; empty with none.
    slices : dict
        For every key of ``maps``: where the slice lies, ``{factor: value}`` for the factors
        not varied in it (held at ``center``).
    par : pandas.DataFrame
        Proven acceptable ranges: per factor ``low``, ``high`` (domain units), ``unit`` and
        ``fixed``; the largest axis-aligned box of grid points that are all inside (NaN when
        the design space is empty).
    center : pandas.Series
        The setpoint the slices go through.
    training : pandas.DataFrame
        The target group's training setpoints (for plots).
    group : dict
        Target group; ``kind`` how it was predicted.
    settings : dict
        Arguments used (``resolution`` is the one used, lowered for many free factors).
    space : ProcessSpace or None
        The model's process space (None: the default space).
    """

    spec: float
    prob: float
    grid: pd.DataFrame
    maps: dict[tuple[str, ...], pd.DataFrame]
    par: pd.DataFrame
    center: pd.Series
    training: pd.DataFrame
    group: dict[str, str]
    kind: str
    settings: dict[str, Any] = field(default_factory=dict)
    slices: dict[tuple[str, ...], dict[str, float]] = field(default_factory=dict)
    space: ProcessSpace | None = None

    @property
    def share_inside(self) -> float:
        """Share of grid points inside the design space."""
        return float(self.grid["inside"].mean())

    def to_frame(self) -> pd.DataFrame:
        """Return the tidy grid (see ``grid``)."""
        return self.grid.copy()

    def plot(self, *, pairs: Sequence[tuple[str, ...]] | None = None) -> Figure:
        """Plot the slices; see :func:`plot_design_space`."""
        return plot_design_space(self, pairs=pairs)


# -- argument checks ---------------------------------------------------------------------------
def _space(space: ProcessSpace | None) -> ProcessSpace:
    return ProcessSpace.default() if space is None else space


def _seed(random_seed: int | np.random.Generator | None) -> tuple[np.random.Generator, int]:
    rng = make_rng(random_seed)
    return rng, int(rng.integers(2**31 - 1))


def _check_spec(spec: Any, objective: str | None, space: ProcessSpace) -> float | None:
    r = space.response
    what = f"a {r.name} in {r.unit}" if r.unit else f"a {r.name} value"
    if spec is None:
        if objective == "prob_spec":
            bound = "minimum" if r.maximise else "maximum"
            raise ValueError(
                f"spec is required for objective='prob_spec': pass the {bound} acceptable "
                f"{r.name} ({r.unit}), e.g. spec=5.0"
            )
        return None
    try:
        value = float(spec)
    except (TypeError, ValueError):
        raise ValueError(f"spec must be {what}, got {spec!r}") from None
    if not np.isfinite(value):
        raise ValueError(f"spec must be {what} (finite), got {spec!r}")
    lo, hi = r.limits
    if not lo < value < hi:
        raise ValueError(
            f"spec = {spec!r} is outside the possible {r.name} values ({lo:g} to {hi:g} {r.unit})"
        )
    return value


def describe_objective(
    objective: str, risk: float, spec: float | None, space: ProcessSpace | None = None
) -> str:
    """Describe an objective in words for the space's response and direction.

    >>> describe_objective("cvar", 0.1, None)
    'maximise the mean of the lowest 10 % of yield draws (CVaR)'
    """
    space = _space(space)
    r = space.response
    unit = f" {r.unit}" if r.unit else ""
    pct = f"{100 * risk:g} %"
    if r.maximise:
        texts = {
            "mean": f"maximise the expected {r.name}",
            "quantile": f"maximise the {100 * risk:g}th percentile of {r.name}",
            "cvar": f"maximise the mean of the lowest {pct} of {r.name} draws (CVaR)",
            "prob_spec": f"maximise P({r.name} >= {spec:g}{unit})" if spec is not None else "",
        }
    else:
        texts = {
            "mean": f"minimise the expected {r.name}",
            "quantile": f"minimise the {100 * (1 - risk):g}th percentile of {r.name}",
            "cvar": f"minimise the mean of the highest {pct} of {r.name} draws (CVaR)",
            "prob_spec": f"maximise P({r.name} <= {spec:g}{unit})" if spec is not None else "",
        }
    return texts.get(objective, objective)


def _diagnostics(model: YieldModel | Any) -> tuple[dict[str, Any], list[str]]:
    """Copy the model's diagnostics and list the problems they flag."""
    raw = getattr(model, "diagnostics_", None)
    if isinstance(raw, pd.Series):
        raw = raw.to_dict()
    diag: dict[str, Any] = dict(raw) if isinstance(raw, Mapping) else {}
    weights = getattr(model, "stacking_weights_", None)
    if weights is not None:
        diag["stacking_weights"] = (
            weights.to_dict()
            if isinstance(weights, pd.Series)
            else dict(weights)
            if isinstance(weights, Mapping)
            else np.asarray(weights).tolist()
        )
    problems: list[str] = []
    # a flat dict of diagnostics, or one dict per model structure (stacked models)
    nested = {k: v for k, v in diag.items() if isinstance(v, Mapping)}
    blocks = nested.items() if nested else [("", diag)]
    for name, block in blocks:
        where = f"structure '{name}': " if name else ""

        def number(key: str, block: Mapping[str, Any] = block) -> float | None:
            try:
                value = float(block[key]) if key in block else None
            except (TypeError, ValueError):
                return None
            return value if value is not None and np.isfinite(value) else None

        r_hat = number("max_r_hat")
        if r_hat is not None and r_hat > 1.01:
            problems.append(f"{where}max R-hat {r_hat:.3f} > 1.01")
        div = number("divergences")
        if div is not None and div > 0:
            problems.append(f"{where}{int(div)} divergent transitions")
        for key in ("min_ess_bulk", "min_ess_tail"):
            ess = number(key)
            if ess is not None and ess < 400:
                problems.append(f"{where}{key} {ess:.0f} < 400")
        if block.get("converged") is False:
            problems.append(f"{where}model reports converged=False")
    messages = []
    if problems:
        messages.append(
            f"model {type(model).__name__} did not pass its sampling diagnostics ("
            + "; ".join(problems)
            + "): the posterior draws behind this result may be unreliable; refit with more "
            "tuning/draws or check the model"
        )
    for text in diag.get("warnings", []) or []:
        messages.append(str(text))
    return diag, messages


def _emit(messages: Sequence[str], category: type[Warning]) -> None:
    for text in messages:
        warnings.warn(text, category, stacklevel=3)


# -- recommend ---------------------------------------------------------------------------------
def recommend(
    model: YieldModel | Any,
    *,
    group: Mapping[str, Any] | None = None,
    objective: str = "cvar",
    risk: float = 0.1,
    spec: float | None = None,
    constraints: Constraints | Mapping[str, Any] | None = None,
    noise: bool = True,
    kind: str = "auto",
    execution_sd: Mapping[str, float] | None = None,
    recipe: Mapping[str, float] | None = None,
    min_confidence: float | None = 0.9,
    n_draws: int = 1000,
    n_candidates: int = 256,
    random_seed: int | np.random.Generator | None = None,
) -> Recommendation:
    """Recommend a setpoint for a group: a risk-aware optimum that safely beats the recipe.

    Parameters
    ----------
    model : fitted yield model
        Any model following the bayesbio model protocol (``predict_draws``,
        ``training_table_``, ``space_``); factors, bounds, units and the response direction
        come from its process space ``model.space_``.
    group : mapping of str to str, optional
        Target group, e.g. ``{"scale": "2000L", "site": "B"}``; keys are the model's group
        columns and labels must have been seen in training unless ``kind="new_group"``.
        Group columns not given take their most frequent value among the group's batches.
        Required when the training data hold more than one group.
    objective : {"mean", "quantile", "prob_spec", "cvar"}, default "cvar"
        What to optimise over the predictive draws (see the module docstring); turned around
        for a response to minimise.
    risk : float, default 0.1
        Quantile level for ``"quantile"`` (``1 - risk`` when minimising), tail fraction for
        ``"cvar"``; in (0, 1).
    spec : float, optional
        Specification in the response's unit (a minimum, or a maximum for a response to
        minimise); required for ``"prob_spec"``, otherwise only reported.
    constraints : Constraints or mapping, optional
        Bounds, fixed factors and the support guard; default :class:`Constraints()` (the
        space's operating ranges and fixed factors; guard on, measured against the target
        group's own batches, with the model-based SD-ratio limit 2).
    noise : bool, default True
        Include new-batch noise in the draws (the response of one new batch). ``False``: the
        uncertainty about the mean response only.
    kind : {"auto", "existing", "new_group", "population"}, default "auto"
        Prediction kind passed to the model; ``"auto"``: ``"existing"`` when the group has
        training batches, else ``"new_group"`` (for known labels in a combination not seen
        together). Labels not seen in training need ``kind="new_group"``.
    execution_sd : mapping of str to float, optional
        SD of setpoint execution per factor in domain units, e.g.
        ``{"ph": 0.05, "temperature": 0.2}``; the objective then averages over it.
    recipe : mapping of str to float, optional
        The group's recipe, the reference the recommendation must beat, e.g.
        ``{"temperature": 36.5, "ph": 7.0, ...}``; factors not named keep the default: the
        group's median historical setpoint (the overall median for a group without batches).
    min_confidence : float or None, default 0.9
        Required ``P(mean response at the setpoint better than at the recipe | data)``. The
        search keeps to setpoints that reach it; when none does, the answer is the recipe,
        with the reason and the best experiments to run instead. None (or 0) switches the
        test off: the answer is the optimum of ``objective`` within support.
    n_draws : int, default 1000
        Posterior predictive draws per setpoint.
    n_candidates : int, default 256
        Latin-hypercube candidates of the first search stage.
    random_seed : int, numpy.random.Generator or None, default None
        Seed; the same seed gives the same recommendation.

    Returns
    -------
    Recommendation
        The setpoint, its predictive summary, ``decision`` (``"improve"`` or ``"recipe"``),
        ``p_better_than_recipe`` and ``expected_gain``, the mean-optimal setpoint, the
        model-risk premium and warnings; ``.to_frame()`` gives a table.

    Raises
    ------
    ValueError
        For an unknown objective, kind, factor, group column or group label (listing the
        known ones), bounds outside the space's limits, a missing ``spec`` for
        ``"prob_spec"`` or an unfitted model; the message names the argument and the valid
        values.

    Warns
    -----
    ExtrapolationWarning
        When the recommended setpoint is outside the group's support (names the factors
        farthest from the group's batches).
    BoundWarning
        When a recommended factor lies on a bound of the search box (names the factor).
    ModelDiagnosticsWarning
        When the model's diagnostics (R-hat, ESS, divergences) flag a problem.

    Notes
    -----
    Support (guard on by default): a setpoint is supported when (a) its Mahalanobis
    distance from the target group's batches is within ``constraints.max_distance``
    (:class:`~bayesbio._recommend_core.Support`: from the group's median setpoint or from the
    nearest of its own batches, in the metric of the routine within-group spread of
    setpoints, estimated robustly; all batches for a new group) and (b) the posterior SD of
    the group's mean log-response there is at most ``constraints.max_sd_ratio`` times its
    median over the group's own setpoints. (b) is checked on the candidates and finalists;
    the local search follows (a) only.

    Safe improvement: ``P(better than recipe)`` is the share of posterior draws in which
    the noise-free mean response at the setpoint beats the one at the recipe, both computed
    from the *same* draw (common random numbers), so the probability is of the difference,
    not of two independent clouds. The risk objective is maximised over the supported
    setpoints that reach ``min_confidence``; the mean-optimal setpoint ignores that test.
    """
    check_choice("objective", objective, OBJECTIVES)
    risk = check_fraction("risk", risk)
    n_draws = check_int("n_draws", n_draws, minimum=10)
    n_candidates = check_int("n_candidates", n_candidates, minimum=1)
    confidence = _check_confidence(min_confidence)
    ctx = build_context(model, group, kind, constraints)
    space = ctx.space
    factors = ctx.factors
    sgn = ctx.sign
    spec = _check_spec(spec, objective, space)
    exec_sd = check_execution_sd(execution_sd, space)
    ctx.recipe = _recipe(recipe, ctx)
    rng, seed = _seed(random_seed)
    ev = Evaluator(model, ctx, n_draws=n_draws, seed=seed, execution_sd=exec_sd)
    diag, diag_messages = _diagnostics(model)
    r0 = ctx.clip(ctx.recipe[None])
    ratio_of = _sd_ratio_fn(ev, ctx)
    noisy = noise and objective != "mean"

    # stage 1: candidates in one call (the recipe first)
    d = len(ctx.res.free)
    cands = ctx.to_points(lhs(n_candidates, d, rng)) if d else r0.copy()
    group_points = ctx.table.loc[ctx.in_group, factors].to_numpy(dtype=float)[:64]
    cands = np.unique(np.vstack([ctx.clip(group_points), cands]), axis=0)
    cands = np.vstack([r0, cands[~np.all(cands == r0, axis=1)]])
    mean_draws = ev.raw(cands, noise=False)
    if not noisy:
        risk_draws = mean_draws
    elif ev.calibrate_noise(mean_draws, ev.raw(cands, noise=True)):
        risk_draws = ev.add_noise(mean_draws)
    else:
        risk_draws = ev.raw(cands, noise=True)
    smooth = None
    if objective == "prob_spec":
        spread = float(np.median(risk_draws.std(axis=0)))
        smooth = 0.2 * spread if spread > 0 else None

    def scorer(safe: bool, obj: str, with_noise: bool) -> Callable[[np.ndarray], np.ndarray]:
        def score(points: np.ndarray) -> np.ndarray:
            f = ev.raw(np.vstack([points, r0]), noise=False)
            f, f_r = f[:, :-1], f[:, -1:]
            if not with_noise:
                y = f
            elif ev.noise_ref is not None:
                y = ev.add_noise(f)
            else:
                y = ev.raw(points, noise=True)
            values = score_values(y, obj, spec=spec, risk=risk, smooth=smooth, sign=sgn)
            bad = _penalty(ctx, points, ratio_of(f))
            if safe and confidence:
                p = (sgn * (f - f_r) > 0).mean(axis=0)
                values = np.where(p >= confidence, values, _UNSAFE + p)
            return np.where(bad > 0, _INFEASIBLE - bad, values)

        return score

    bad1 = _penalty(ctx, cands, ratio_of(mean_draws))
    p1 = (sgn * (mean_draws - mean_draws[:, :1]) > 0).mean(axis=0)
    v_risk = score_values(risk_draws, objective, spec=spec, risk=risk, smooth=smooth, sign=sgn)
    v_mean = sgn * mean_draws.mean(axis=0)
    v_safe = np.where(p1 >= confidence, v_risk, _UNSAFE + p1) if confidence else v_risk
    v_safe, v_risk, v_mean = (
        np.where(bad1 > 0, _INFEASIBLE - bad1, v) for v in (v_safe, v_risk, v_mean)
    )

    # stage 2: local refinement from the best few: safe risk objective, risk, mean
    unit = ctx.to_unit(cands) if d else np.zeros((len(cands), 0))
    finalists = [cands[np.argmax(v)][None] for v in (v_safe, v_risk, v_mean)]
    if d:
        searches = [
            (v_mean, scorer(False, "mean", False)),
            (v_safe, scorer(True, objective, noisy)),
        ]
        if confidence:
            searches.append((v_risk, scorer(False, objective, noisy)))
        for values, score in searches:
            top = distinct_top(unit, values, 3, 0.1)
            finalists.append(local_search(score, ctx, cands[top], rng))
    final = ctx.clip(np.vstack([r0, *finalists, cands]))

    # stage 3: compare everything evaluated on the same draws
    f_all = ev.raw(final, noise=False)
    if not noisy:
        y_all = f_all
    else:
        y_all = ev.add_noise(f_all) if ev.noise_ref is not None else ev.raw(final, noise=True)
    ok = _penalty(ctx, final, ratio_of(f_all)) <= 0
    r_all = score_values(y_all, objective, spec=spec, risk=risk, smooth=smooth, sign=sgn)
    m_all = sgn * f_all.mean(axis=0)
    p_all = (sgn * (f_all - f_all[:, :1]) > 0).mean(axis=0)
    safe = ok & (p_all >= confidence) if confidence else ok.copy()
    safe[0] = False  # the recipe is the fallback, not an improvement on itself
    pool = ok if ok.any() else np.ones(len(final), dtype=bool)
    others = pool.copy()
    others[0] = not pool[1:].any()
    i_best = int(np.argmax(np.where(others, r_all, -np.inf)))  # best within support, any P
    i_mean = int(np.argmax(np.where(pool, m_all, -np.inf)))
    if not ok.any():
        i_best = i_mean = _closest(ctx, final)
    if confidence and not safe.any():
        i_rec, decision = 0, "recipe"
    else:
        i_rec, decision = int(np.argmax(np.where(safe, r_all, -np.inf))), "improve"
        if not confidence and not ok.any():
            i_rec = i_best
    three = np.vstack([final[i_rec], final[i_mean], r0[0]])
    y3 = ev.raw(three, noise=noise)
    f3 = ev.raw(np.vstack([three, final[i_best]]), noise=False)
    best_per_draw = (sgn * f_all[:, pool]).max(axis=1)
    regret = best_per_draw[:, None] - sgn * f3[:, :3]
    ratio3 = ratio_of(f3)
    gain_draws = sgn * (f3 - f3[:, 2:3])
    p_better = (gain_draws > 0).mean(axis=0)
    gain = gain_draws.mean(axis=0)
    base = abs(float(f3[:, 2].mean()))
    gain_pct = 100 * gain / base if base > 0 else np.full(4, np.nan)

    summary = _summary_table(ctx, three, y3, regret, objective, spec, risk)
    summary["sd_ratio"] = ratio3[:3]
    summary["within_support"] = _outside(ctx, three, ratio3[:3]) <= 0
    summary["p_better_than_recipe"] = p_better[:3]
    summary["expected_gain"] = gain[:3]
    summary["expected_gain_pct"] = gain_pct[:3]
    summary.loc["recipe", ["p_better_than_recipe", "expected_gain_pct"]] = np.nan
    rec_point = summary.loc["recommended", factors].astype(float)
    mean_point = summary.loc["mean_optimal", factors].astype(float)
    shift = pd.DataFrame(
        {
            "recommended": rec_point.to_numpy(),
            "mean_optimal": mean_point.to_numpy(),
            "difference": (rec_point - mean_point).to_numpy(),
            "difference_sd": ((rec_point - mean_point).to_numpy() / ctx.data_sd),
            "unit": [space.units[p] for p in factors],
        },
        index=pd.Index(factors, name="parameter"),
    )
    r, m = summary.loc["recommended"], summary.loc["mean_optimal"]
    premium = {
        "delta_mean": float(r["expected_yield"] - m["expected_yield"]),
        "delta_q10": float(r["q10"] - m["q10"]),
        "delta_q90": float(r["q90"] - m["q90"]),
        "delta_cvar": float(r["cvar"] - m["cvar"]),
        "delta_prob_spec": float(r["prob_spec"] - m["prob_spec"]) if spec is not None else np.nan,
        "distance_sd": float(np.sqrt((shift["difference_sd"] ** 2).sum())),
    }
    limit = ctx.res.max_distance
    guard_d = float(ctx.support.guard_distance(three[:1], ctx.res.support)[0])
    support_used = ctx.support.used(ctx.res.support)
    extrap = [] if decision == "recipe" else _support_messages(ctx, three[0], guard_d, ratio3[0])
    bounds = [] if decision == "recipe" else _bound_messages(ctx, three[0])
    candidate, next_exp = None, None
    if decision == "recipe":
        i_show = 3
        candidate = pd.Series(final[i_best], index=factors, name="candidate")
        pb, gn, gp = float(p_better[i_show]), float(gain[i_show]), float(gain_pct[i_show])
        reason = (
            f"kept the recipe: no setpoint within {support_used} support beats it with "
            f"probability >= {confidence:g}; the best found ({_point_text(space, final[i_best])}) "
            f"does so with probability {pb:.2f} (expected gain {gn:+.3g} {space.response.unit}, "
            f"{gp:+.1f} %); run the next_experiments to learn where the optimum lies"
        )
        next_exp = _next_experiments(model, ctx, cands[ok[-len(cands) :]], group, constraints, rng)
    else:
        pb, gn, gp = float(p_better[0]), float(gain[0]), float(gain_pct[0])
        reason = (
            f"beats the recipe with probability {pb:.2f} (expected gain {gn:+.3g} "
            f"{space.response.unit}, {gp:+.1f} %)"
            + (f" >= the required {confidence:g}" if confidence else "; no confidence required")
        )
    _emit(diag_messages, ModelDiagnosticsWarning)
    _emit(extrap, ExtrapolationWarning)
    _emit(bounds, BoundWarning)
    draws = pd.DataFrame(y3, columns=list(_ROWS))
    draws.attrs["units"] = space.response.unit
    settings = {
        "objective": objective,
        "objective_description": describe_objective(objective, risk, spec, space),
        "direction": space.response.direction,
        "risk": risk,
        "spec": spec,
        "noise": bool(noise),
        "kind": ctx.kind,
        "execution_sd": {p: float(s) for p, s in zip(factors, exec_sd, strict=True) if s > 0},
        "constraints": ctx.res.constraints,
        "max_distance": limit,
        "max_sd_ratio": ctx.res.max_sd_ratio,
        "min_confidence": confidence,
        "recipe": {p: float(v) for p, v in zip(factors, ctx.recipe, strict=True)},
        "n_draws": n_draws,
        "n_candidates": n_candidates,
        "model_calls": ev.calls,
        "random_seed": random_seed if isinstance(random_seed, int | None) else "generator",
        "notes": list(ctx.notes),
    }
    sd_limit = ctx.res.max_sd_ratio
    return Recommendation(
        setpoint=rec_point.rename("recommended"),
        objective=objective,
        risk=risk,
        spec=spec,
        objective_value=float(r["objective_value"]),
        expected_yield=float(r["expected_yield"]),
        quantiles=pd.Series(
            [float(r[_qname(q)]) for q in QUANTILE_LEVELS],
            index=pd.Index(QUANTILE_LEVELS, name="prob"),
            name=space.response.name,
        ),
        prob_spec=float(r["prob_spec"]) if spec is not None else None,
        expected_regret=float(r["expected_regret"]),
        support_distance={
            "group": float(r["distance_group"]),
            "overall": float(r["distance_overall"]),
            "limit": limit,
            "sd_ratio": float(ratio3[0]),
            "sd_ratio_limit": float(sd_limit) if sd_limit is not None else np.nan,
        },
        mean_optimal=mean_point.rename("mean_optimal"),
        recipe=summary.loc["recipe", factors].astype(float).rename("recipe"),
        summary=summary,
        shift=shift,
        premium=premium,
        draws=draws,
        group=dict(ctx.group),
        kind=ctx.kind,
        warnings=tuple(diag_messages + extrap + bounds),
        diagnostics=diag,
        settings=settings,
        space=space,
        decision=decision,
        reason=reason,
        p_better_than_recipe=pb,
        expected_gain=gn,
        expected_gain_pct=gp,
        support_used=support_used,
        candidate=candidate,
        next_experiments=next_exp,
    )


_UNSAFE = -1e6  # score of a supported setpoint short of min_confidence (plus its P)
_INFEASIBLE = -1e9  # score of an unsupported setpoint (minus how far outside)


def _check_confidence(value: Any) -> float:
    if value is None:
        return 0.0
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = np.nan
    if not 0.0 <= v < 1.0:
        raise ValueError(
            f"min_confidence must be a probability in [0, 1) (or None to switch the "
            f"safe-improvement test off), got {value!r}"
        )
    return v


def _recipe(recipe: Mapping[str, float] | None, ctx: Context) -> np.ndarray:
    """Return the group's recipe: ``recipe`` where given, else the group's median setpoint."""
    out = ctx.recipe.astype(float).copy()
    space = ctx.space
    for name, value in check_names(recipe, "recipe", space).items():
        try:
            v = float(value)
        except (TypeError, ValueError):
            v = np.nan
        lo, hi = space.limits[name]
        if not (np.isfinite(v) and lo <= v <= hi):
            raise ValueError(
                f"recipe['{name}'] = {value!r} must be a number within the physical limits "
                f"{lo:g} to {hi:g} {space.units[name]} of {name!r}"
            )
        out[space.factor_names.index(name)] = v
    for j, v in ctx.res.fixed.items():
        out[j] = v
    return out


def _sd_ratio_fn(ev: Evaluator, ctx: Context) -> Callable[[np.ndarray], np.ndarray]:
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


def _penalty(ctx: Context, points: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """How far outside support each point is (0 inside; > 0 outside) when the guard is on."""
    if not ctx.res.guard:
        return np.zeros(len(points))
    return _outside(ctx, points, ratio)


def _outside(ctx: Context, points: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """How far outside support each point is (0 inside; > 0 outside)."""
    dist = ctx.support.guard_distance(points, ctx.res.support)
    over = np.maximum(dist - ctx.res.max_distance, 0.0)
    if ctx.res.max_sd_ratio is not None:
        over = over + np.maximum(ratio - ctx.res.max_sd_ratio, 0.0)
    return over


def _point_text(space: ProcessSpace, point: np.ndarray) -> str:
    return ", ".join(
        _value_text(space, p, float(v)) for p, v in zip(space.factor_names, point, strict=True)
    )


def _support_messages(ctx: Context, point: np.ndarray, dist: float, ratio: float) -> list[str]:
    """One sentence when ``point`` is outside the group's support, naming the factors."""
    space = ctx.space
    limit = ctx.res.max_distance
    sd_limit = ctx.res.max_sd_ratio
    out_d = not dist <= limit
    out_r = sd_limit is not None and not ratio <= sd_limit
    if not (out_d or out_r):
        return []
    which = ctx.support.used(ctx.res.support)
    offsets = ctx.support.factor_offsets(point[None], ctx.res.support)
    far = [(p, o) for p, o in offsets if abs(o) > 2.0] or offsets[:1]
    pts = ctx.table.loc[ctx.in_group, ctx.factors] if ctx.in_group.any() else ctx.table
    parts = []
    for p, o in far:
        lo, hi = float(pts[p].min()), float(pts[p].max())
        value = float(point[ctx.factors.index(p)])
        parts.append(
            f"factor '{p}' = {value:.4g}{_unit(space, p)} is {abs(o):.1f} SDs "
            f"{'above' if o > 0 else 'below'} the group's batches (they ran "
            f"{lo:.4g}-{hi:.4g}{_unit(space, p)})"
        )
    what = []
    if out_d:
        what.append(f"Mahalanobis distance {dist:.2f} > limit {limit:.2f}, {which} support")
    if out_r:
        what.append(f"posterior SD {ratio:.1f} x its value at the group's data > {sd_limit:g}")
    return [
        "recommended setpoint is outside the support of the group's data ("
        + "; ".join(what)
        + "): "
        + "; ".join(parts)
        + ". The model is extrapolating: run confirmation batches or keep Constraints(guard=True)"
    ]


def _bound_messages(ctx: Context, point: np.ndarray) -> list[str]:
    """One sentence per free factor on a bound of the search box."""
    space = ctx.space
    out = []
    for j in ctx.res.free:
        lo, hi = ctx.res.lo[j], ctx.res.hi[j]
        name = ctx.factors[j]
        tol = 0.01 * (hi - lo)
        side = "lower" if point[j] <= lo + tol else "upper" if point[j] >= hi - tol else None
        if side is None:
            continue
        bound = lo if side == "lower" else hi
        op = space.factor(name).operating
        what = "operating range" if bound in op else "constraints.bounds"
        out.append(
            f"factor '{name}' is on the {side} bound {bound:.4g}{_unit(space, name)} of the "
            f"search box ({what}): the optimum may lie beyond it; widen the {what} if the "
            "process allows, and confirm with batches near the bound"
        )
    return out


def _unit(space: ProcessSpace, name: str) -> str:
    unit = space.units.get(name, "")
    return f" {unit}" if unit and unit not in ("pH", "dimensionless", "-", "1") else ""


def _next_experiments(
    model: YieldModel | Any,
    ctx: Context,
    points: np.ndarray,
    group: Mapping[str, Any] | None,
    constraints: Constraints | Mapping[str, Any] | None,
    rng: np.random.Generator,
) -> pd.DataFrame | None:
    """Rank supported candidates by :func:`next_batches` (None with fewer than 2)."""
    if len(points) > 64:
        points = points[rng.choice(len(points), 64, replace=False)]
    if len(points) < 2:
        return None
    frame = ctx.frame(points)
    kind = ctx.kind if ctx.kind != "existing" else "auto"
    return next_batches(
        model,
        frame,
        k=min(3, len(frame)),
        group=dict(ctx.group) if group is not None or ctx.group_cols else None,
        constraints=constraints,
        kind=kind,
        n_draws=400,
        n_outcomes=32,
        n_decisions=128,
        random_seed=rng,
    )


def _qname(level: float) -> str:
    return f"q{round(100 * level):02d}"


def _feasible(ctx: Context, points: np.ndarray) -> np.ndarray:
    if not ctx.res.guard:
        return np.ones(len(points), dtype=bool)
    return ctx.support.guard_distance(points, ctx.res.support) <= ctx.res.max_distance


def _closest(ctx: Context, points: np.ndarray) -> int:
    return int(np.argmin(ctx.support.guard_distance(points, ctx.res.support)))


def _summary_table(
    ctx: Context,
    points: np.ndarray,
    draws: np.ndarray,
    regret: np.ndarray,
    objective: str,
    spec: float | None,
    risk: float,
) -> pd.DataFrame:
    stats_ = summarise(draws, spec=spec, risk=risk, sign=ctx.sign)
    out = pd.DataFrame(points, columns=ctx.factors, index=pd.Index(_ROWS, name="setpoint"))
    for key, values in stats_.items():
        out[key] = values
    out["objective_value"] = objective_values(draws, objective, spec=spec, risk=risk, sign=ctx.sign)
    out["expected_regret"] = regret.mean(axis=0)
    out["distance_group"] = ctx.support.distance(points, "group")
    out["distance_overall"] = ctx.support.distance(points, "overall")
    out["within_support"] = (
        ctx.support.guard_distance(points, ctx.res.support) <= ctx.res.max_distance
    )
    out.attrs["units"] = f"setpoints in domain units; {ctx.space.response.name} in " + (
        ctx.space.response.unit
    )
    out.attrs["direction"] = ctx.space.response.direction
    return out


# -- design space ------------------------------------------------------------------------------
def design_space(
    model: YieldModel | Any,
    spec: float,
    prob: float = 0.9,
    *,
    group: Mapping[str, Any] | None = None,
    resolution: int = 9,
    map_resolution: int = 25,
    constraints: Constraints | Mapping[str, Any] | None = None,
    center: Recommendation | Mapping[str, float] | None = None,
    noise: bool = True,
    kind: str = "auto",
    execution_sd: Mapping[str, float] | None = None,
    n_draws: int = 1000,
    random_seed: int | np.random.Generator | None = None,
) -> DesignSpace:
    """Find the setpoints where ``P(a new batch meets spec | data) >= prob``.

    A batch meets the spec when its response is ``>= spec`` (``<= spec`` for a response the
    model's space declares to minimise).

    Parameters
    ----------
    model : fitted yield model
        Any model following the bayesbio model protocol; its process space ``model.space_``
        gives the factors, ranges, units and direction.
    spec : float
        Specification in the response's unit.
    prob : float, default 0.9
        Required probability of meeting ``spec``, in (0, 1).
    group : mapping of str to str, optional
        Target group (as in :func:`recommend`).
    resolution : int, default 9
        Grid points per free factor of the full grid (``resolution ** n_free`` setpoints);
        lowered automatically for many free factors (the one used is in ``settings``).
    map_resolution : int, default 25
        Grid points per axis of each slice.
    constraints : Constraints or mapping, optional
        Bounds and fixed factors span the grid; with the guard on, unsupported grid points
        are never inside the design space.
    center : Recommendation or mapping of str to float, optional
        Setpoint the slices go through (the other factors are held there). Default: the
        :func:`recommend` setpoint maximising ``P(meet spec)``. A mapping must give every
        factor not fixed.
    noise : bool, default True
        Include new-batch noise (the probability is for one new batch).
    kind : {"auto", "existing", "new_group", "population"}, default "auto"
        Prediction kind (as in :func:`recommend`).
    execution_sd : mapping of str to float, optional
        Setpoint execution SDs per factor (as in :func:`recommend`).
    n_draws : int, default 1000
        Predictive draws per setpoint.
    random_seed : int, numpy.random.Generator or None, default None
        Seed.

    Returns
    -------
    DesignSpace
        Tidy grid, slices (2-D for every pair of free factors, a 1-D profile for one free
        factor) with their location, and proven acceptable ranges (PAR).

    Notes
    -----
    The proven acceptable ranges are the largest axis-aligned box (most grid points) whose
    faces lie on grid points and whose grid points are all inside the design space; the search
    over all such boxes is exhaustive (a summed-area table over the last two factors,
    enumeration over the others). Between grid points the box is an interpolation: refine
    ``resolution`` to tighten it.
    """
    prob = check_fraction("prob", prob)
    resolution = check_int("resolution", resolution, minimum=2)
    map_resolution = check_int("map_resolution", map_resolution, minimum=2)
    ctx = build_context(model, group, kind, constraints)
    space = ctx.space
    factors = ctx.factors
    spec_value = _check_spec(spec, "prob_spec", space)
    assert spec_value is not None
    exec_sd = check_execution_sd(execution_sd, space)
    rng, seed = _seed(random_seed)
    if center is None:
        center_point = recommend(
            model,
            group=group,
            objective="prob_spec",
            spec=spec_value,
            constraints=constraints,
            noise=noise,
            kind=kind,
            execution_sd=execution_sd,
            n_draws=n_draws,
            random_seed=rng,
        ).setpoint.to_numpy(dtype=float)
    elif isinstance(center, Recommendation):
        center_point = center.setpoint.reindex(factors).to_numpy(dtype=float)
        if np.isnan(center_point).any():
            raise ValueError(
                f"center: the recommendation's setpoint {list(center.setpoint.index)} lacks "
                f"factors of this model's space {factors}"
            )
    else:
        center_point = _center_from_mapping(center, ctx)
    center_point = ctx.clip(center_point[None])[0]
    ev = Evaluator(model, ctx, n_draws=n_draws, seed=seed, execution_sd=exec_sd)
    free = ctx.res.free
    used = grid_resolution(resolution, len(free))
    axes = [
        np.linspace(ctx.res.lo[j], ctx.res.hi[j], used) if j in free else np.array([ctx.res.lo[j]])
        for j in range(space.k)
    ]
    mesh = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, space.k)
    grid = _prob_table(ev, ctx, mesh, spec_value, prob, noise)
    maps, slices = _slices(ev, ctx, center_point, spec_value, prob, noise, map_resolution)
    par = _par(ctx, grid, axes)
    training = ctx.table.loc[ctx.in_group, factors].reset_index(drop=True)
    settings = {
        "resolution": used,
        "resolution_asked": resolution,
        "map_resolution": map_resolution,
        "direction": space.response.direction,
        "noise": bool(noise),
        "execution_sd": {p: float(s) for p, s in zip(factors, exec_sd, strict=True) if s > 0},
        "constraints": ctx.res.constraints,
        "max_distance": ctx.res.max_distance,
        "n_draws": n_draws,
        "random_seed": random_seed if isinstance(random_seed, int | None) else "generator",
        "notes": list(ctx.notes),
    }
    if used < resolution:
        settings["notes"].append(
            f"resolution lowered from {resolution} to {used} for {len(free)} free factors "
            f"({used}**{len(free)} = {used ** len(free)} grid points)"
        )
    return DesignSpace(
        spec=spec_value,
        prob=prob,
        grid=grid,
        maps=maps,
        par=par,
        center=pd.Series(center_point, index=factors, name="center"),
        training=training,
        group=dict(ctx.group),
        kind=ctx.kind,
        settings=settings,
        slices=slices,
        space=space,
    )


def _center_from_mapping(center: Any, ctx: Context) -> np.ndarray:
    factors = ctx.factors
    if not isinstance(center, Mapping):
        raise ValueError(
            "center must be a Recommendation or a mapping from factor names to values, got "
            f"{type(center).__name__}"
        )
    try:
        given = {str(k): float(v) for k, v in center.items()}
    except (TypeError, ValueError):
        raise ValueError(f"center values must be numbers, got {dict(center)!r}") from None
    fixed = {factors[j]: v for j, v in ctx.res.fixed.items()}
    unknown = [k for k in given if k not in factors]
    missing = [p for p in factors if p not in given and p not in fixed]
    if unknown or missing:
        raise ValueError(
            f"center must give every factor {factors} (fixed ones may be left out); unknown "
            f"{unknown}, missing {missing}"
        )
    return np.array([given.get(p, fixed.get(p, np.nan)) for p in factors])


def _slices(
    ev: Evaluator,
    ctx: Context,
    center: np.ndarray,
    spec: float,
    prob: float,
    noise: bool,
    resolution: int,
) -> tuple[dict[tuple[str, ...], pd.DataFrame], dict[tuple[str, ...], dict[str, float]]]:
    """Slices through ``center``: a 2-D map per pair of free factors, or one 1-D profile."""
    factors = ctx.factors
    free = [int(j) for j in ctx.res.free]
    if len(free) >= 2:
        keys = list(itertools.combinations(free, 2))
    elif len(free) == 1:
        keys = [(free[0],)]
    else:
        return {}, {}
    blocks = []
    for key in keys:
        axes = [np.linspace(ctx.res.lo[j], ctx.res.hi[j], resolution) for j in key]
        pts = np.tile(center, (resolution ** len(key), 1))
        mesh = np.meshgrid(*axes, indexing="ij")
        for j, values in zip(key, mesh, strict=True):
            pts[:, j] = values.ravel()
        blocks.append(pts)
    table = _prob_table(ev, ctx, np.vstack(blocks), spec, prob, noise)
    maps: dict[tuple[str, ...], pd.DataFrame] = {}
    slices: dict[tuple[str, ...], dict[str, float]] = {}
    start = 0
    for key, pts in zip(keys, blocks, strict=True):
        names = tuple(factors[j] for j in key)
        part = table.iloc[start : start + len(pts)]
        start += len(pts)
        cols = [*names, "prob", "expected_yield", "supported", "inside"]
        at = {p: float(center[j]) for j, p in enumerate(factors) if j not in key}
        frame = part[cols].reset_index(drop=True)
        frame.attrs["slice"] = at
        maps[names] = frame
        slices[names] = at
    return maps, slices


def _prob_table(
    ev: Evaluator, ctx: Context, points: np.ndarray, spec: float, prob: float, noise: bool
) -> pd.DataFrame:
    p_meet, mean = [], []
    step = 2048
    for start in range(0, len(points), step):
        y = ev.raw(points[start : start + step], noise=noise)
        p_meet.append(ctx.meets(y, spec).mean(axis=0))
        mean.append(y.mean(axis=0))
    out = pd.DataFrame(points, columns=ctx.factors)
    out["prob"] = np.concatenate(p_meet)
    out["expected_yield"] = np.concatenate(mean)
    out["distance"] = ctx.support.guard_distance(points, ctx.res.support)
    out["supported"] = out["distance"] <= ctx.res.max_distance
    ok = out["prob"] >= prob
    out["inside"] = ok & out["supported"] if ctx.res.guard else ok
    return out


def _par(ctx: Context, grid: pd.DataFrame, axes: list[np.ndarray]) -> pd.DataFrame:
    factors = ctx.factors
    free = ctx.res.free
    shape = tuple(len(a) for a in axes)
    inside = grid["inside"].to_numpy().reshape(shape)
    inside = inside.reshape(tuple(shape[j] for j in free))
    box = largest_box(inside)
    low = np.full(len(factors), np.nan)
    high = np.full(len(factors), np.nan)
    if box is not None:
        for k, j in enumerate(free):
            low[j], high[j] = axes[j][box[0][k]], axes[j][box[1][k]]
        for j, v in ctx.res.fixed.items():
            low[j] = high[j] = v
    return pd.DataFrame(
        {
            "low": low,
            "high": high,
            "unit": [ctx.space.units[p] for p in factors],
            "fixed": [j in ctx.res.fixed for j in range(len(factors))],
        },
        index=pd.Index(factors, name="parameter"),
    )


# -- next batches ------------------------------------------------------------------------------
def next_batches(
    model: YieldModel | Any,
    candidates: pd.DataFrame,
    k: int = 3,
    *,
    group: Mapping[str, Any] | None = None,
    constraints: Constraints | Mapping[str, Any] | None = None,
    kind: str = "auto",
    noise_sd: float | None = None,
    n_draws: int = 1000,
    n_outcomes: int = 64,
    n_decisions: int = 256,
    random_seed: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Rank candidate setpoints by the expected reduction in regret from one more batch there.

    Parameters
    ----------
    model : fitted yield model
        Any model following the bayesbio model protocol.
    candidates : pandas.DataFrame
        Setpoints that could be run next (the factor columns of the model's space; other
        columns are kept).
    k : int, default 3
        Number of candidates to return (the ``k`` best, each valued on its own).
    group : mapping of str to str, optional
        Target group (as in :func:`recommend`).
    constraints : Constraints or mapping, optional
        Constraints on the *decision* (the setpoint recommended afterwards); the candidates
        themselves may lie anywhere within the physical limits.
    kind : {"auto", "existing", "new_group", "population"}, default "auto"
        Prediction kind (as in :func:`recommend`).
    noise_sd : float, optional
        Batch-to-batch noise SD (response unit) of the hypothetical observation. Default:
        estimated per candidate as ``sqrt(var(draws with noise) - var(draws without noise))``.
    n_draws : int, default 1000
        Posterior draws.
    n_outcomes : int, default 64
        Simulated outcomes per candidate.
    n_decisions : int, default 256
        Latin-hypercube setpoints (plus the recipe) over which the best decision is taken.
    random_seed : int, numpy.random.Generator or None, default None
        Seed.

    Returns
    -------
    pandas.DataFrame
        The ``k`` best candidates, best first, with ``expected_regret_reduction`` (response
        unit; the value of information), ``expected_regret_after``, ``expected_yield`` and
        ``posterior_sd`` of the mean response there, ``noise_sd`` and ``ess`` (mean effective
        sample size of the importance weights). ``attrs["current_expected_regret"]`` holds the
        regret of deciding now.

    Notes
    -----
    A knowledge-gradient approximation using only posterior draws ``f_s`` (mean response,
    ``noise=False``; turned to ``-f_s`` for a response to minimise). For a candidate ``c``,
    outcomes ``y_j = f_{s_j}(c) + noise_sd * z_j`` are simulated from the predictive (common
    ``s_j``, ``z_j`` for all candidates). Each outcome reweights the draws by its Gaussian
    likelihood, ``w_s ~ N(y_j; f_s(c), noise_sd)``, the best decision ``x_j = argmax_x sum_s
    w_s f_s(x)`` is recomputed over the decision set, and the value of information is the mean
    over ``j`` of ``sum_s w_s (f_s(x_j) - f_s(x_0))``, with ``x_0`` today's best decision. By
    the tower property this is the expected reduction in the posterior expected regret.
    Approximations: Gaussian noise; a finite decision set; self-normalised importance
    weights, which degenerate (small ``ess``) when one batch would be very informative; each
    candidate is valued alone (no joint value of a batch of ``k``).
    """
    k = check_int("k", k, minimum=1)
    n_draws = check_int("n_draws", n_draws, minimum=10)
    n_outcomes = check_int("n_outcomes", n_outcomes, minimum=1)
    n_decisions = check_int("n_decisions", n_decisions, minimum=1)
    ctx = build_context(model, group, kind, constraints)
    space = ctx.space
    cand_table = validate_setpoints(candidates, space)
    if k > len(cand_table):
        raise ValueError(f"k must be at most the number of candidates ({len(cand_table)}), got {k}")
    rng, seed = _seed(random_seed)
    ev = Evaluator(model, ctx, n_draws=n_draws, seed=seed, execution_sd=np.zeros(space.k))
    d = len(ctx.res.free)
    decisions = ctx.to_points(lhs(n_decisions, d, rng)) if d else ctx.clip(ctx.recipe[None])
    decisions = np.vstack([ctx.clip(ctx.recipe[None]), decisions])
    ok = _feasible(ctx, decisions)
    if ok.any():
        decisions = decisions[ok]
    cand = cand_table[ctx.factors].to_numpy(dtype=float)
    f = ev.raw(np.vstack([decisions, cand]), noise=False)
    f_dec, f_cand = ctx.sign * f[:, : len(decisions)], f[:, len(decisions) :]
    if noise_sd is None:
        y_cand = ev.raw(cand, noise=True)
        var = y_cand.var(axis=0) - f_cand.var(axis=0)
        floor = (1e-3 * np.abs(f_cand.mean(axis=0))) ** 2 + 1e-12
        sigma = np.sqrt(np.maximum(var, floor))
    else:
        try:
            value = float(noise_sd)
        except (TypeError, ValueError):
            value = np.nan
        if not (np.isfinite(value) and value > 0):
            raise ValueError(
                f"noise_sd must be a positive SD in {space.response.unit}, got {noise_sd!r}"
            )
        sigma = np.full(len(cand), value)
    prior_mean = f_dec.mean(axis=0)
    i0 = int(prior_mean.argmax())
    current = float(f_dec.max(axis=1).mean() - prior_mean[i0])
    s_idx = rng.integers(n_draws, size=n_outcomes)
    z = rng.standard_normal(n_outcomes)
    gain = np.empty(len(cand))
    ess = np.empty(len(cand))
    for c in range(len(cand)):
        y = f_cand[s_idx, c] + sigma[c] * z
        logw = -0.5 * ((y[:, None] - f_cand[None, :, c]) / sigma[c]) ** 2
        logw -= logw.max(axis=1, keepdims=True)
        w = np.exp(logw)
        w /= w.sum(axis=1, keepdims=True)
        post = w @ f_dec
        gain[c] = float((post.max(axis=1) - post[:, i0]).mean())
        ess[c] = float((1.0 / (w**2).sum(axis=1)).mean())
    out = (
        candidates.loc[cand_table.index].copy()
        if len(cand_table) == len(candidates)
        else (cand_table.copy())
    )
    out["expected_regret_reduction"] = gain
    out["expected_regret_after"] = current - gain
    out["expected_yield"] = f_cand.mean(axis=0)
    out["posterior_sd"] = f_cand.std(axis=0)
    out["noise_sd"] = sigma
    out["ess"] = ess
    out = out.sort_values("expected_regret_reduction", ascending=False, kind="stable")
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    out = out.head(k)
    out.attrs["current_expected_regret"] = current
    out.attrs["units"] = space.response.unit
    out.attrs["direction"] = space.response.direction
    return out


# -- plots -------------------------------------------------------------------------------------
def _value_text(space: ProcessSpace, name: str, value: float) -> str:
    unit = space.units.get(name, "")
    unit = f" {unit}" if unit and unit not in ("pH", "dimensionless") else ""
    return f"{space.label(name)} {value:.4g}{unit}"


def _slice_title(space: ProcessSpace, at: Mapping[str, float], per_line: int = 2) -> str:
    """``"at A 1.2 s, B 3 degC"`` wrapped every ``per_line`` factors ("" when empty)."""
    items = [_value_text(space, p, v) for p, v in at.items()]
    if not items:
        return ""
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return "at " + ",\n".join(lines)


def _group_text(group: Mapping[str, Any] | None, kind: str | None = None) -> str:
    """``"scale 2000L, site A"``, ``"all batches"`` for none; a new group is marked so."""
    text = ", ".join(f"{k} {v}" for k, v in (group or {}).items()) or "all batches"
    if kind == "new_group":
        text += " (new group)"
    elif kind == "population":
        text += " (population mean)"
    return text


def _limit_ticks(ax: Axes, n: int = 5) -> None:
    """At most ``n`` ticks per axis, so numbers never overlap on narrow panels."""
    ax.xaxis.set_major_locator(MaxNLocator(n))
    ax.yaxis.set_major_locator(MaxNLocator(n))


def plot_recommendation(rec: Recommendation, *, ax: Axes | None = None, bins: int = 50) -> Axes:
    """Plot the predictive response at the recipe, mean-optimal and recommended setpoint.

    Parameters
    ----------
    rec : Recommendation
        Result of :func:`recommend`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure when None.
    bins : int, default 50
        Histogram bins.

    Returns
    -------
    matplotlib.axes.Axes
        The axes, with the spec (if any) and each distribution's adverse-tail percentile
        marked (10th when maximising, 90th when minimising); the title names the target
        group and states the objective and its direction; the legend names every mark.
    """
    space = _space(rec.space)
    r = space.response
    tail = "q10" if r.maximise else "q90"
    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 3.8))
    values = rec.draws.to_numpy()
    edges = np.histogram_bin_edges(values[np.isfinite(values)], bins=bins)
    colors = {"recipe": "0.5", "mean_optimal": "tab:blue", "recommended": "tab:red"}
    for name in ("recipe", "mean_optimal", "recommended"):
        row = rec.summary.loc[name]
        ax.hist(
            rec.draws[name],
            bins=edges,
            density=True,
            histtype="step",
            lw=1.6,
            color=colors[name],
            label=f"{name.replace('_', '-')}: mean {row['expected_yield']:.3g}, "
            f"{tail} {row[tail]:.3g}",
        )
        ax.axvline(row[tail], color=colors[name], ls=":", lw=1)
    unit = f" {r.unit}" if r.unit else ""
    if rec.spec is not None:
        rel = ">=" if r.maximise else "<="
        ax.axvline(rec.spec, color="k", ls="--", lw=1.2, label=f"spec: {rel} {rec.spec:g}{unit}")
    # proxy for the dotted percentile lines, so the legend explains every mark
    ax.add_line(
        Line2D([], [], color="0.3", ls=":", lw=1, label=f"dotted: {tail[1:]}th percentile of each")
    )
    ax.set_xlabel(space.axis_label(r.name))
    ax.set_ylabel(f"probability density [1/{r.unit}]" if r.unit else "probability density")
    ax.set_title(
        f"Predictive {r.label}, {_group_text(rec.group, rec.kind)}\n"
        f"objective: {describe_objective(rec.objective, rec.risk, rec.spec, space)}",
        fontsize="medium",
    )
    ax.xaxis.set_major_locator(MaxNLocator(6))
    ax.legend(
        fontsize="small",
        frameon=False,
        title=f"new batch: mean, {tail}" + (f" [{r.unit}]" if r.unit else ""),
        title_fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
    )
    return ax


def plot_design_space(
    ds: DesignSpace,
    *,
    pairs: Sequence[tuple[str, ...]] | None = None,
    fig: Figure | None = None,
) -> Figure:
    """Plot P(meet spec) on the slices through ``ds.center`` with the design space and PAR box.

    Parameters
    ----------
    ds : DesignSpace
        Result of :func:`design_space`.
    pairs : sequence of tuple of str, optional
        Slices to show (keys of ``ds.maps``: pairs of factors, or a 1-tuple for a profile);
        default all.
    fig : matplotlib.figure.Figure, optional
        Figure to draw on; a new one when None.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per pair of free factors: colour = P(meet spec), black line = the ``prob``
        contour, dashed box = proven acceptable ranges, star = ``ds.center``, dots = training
        setpoints, hatched = outside the data support; the panel title says where the slice
        lies (the other factors' values). With one free factor: the profile of P(meet spec),
        the required ``prob`` (dashed) and the PAR (shaded). A legend below the panels names
        every mark; the figure title names the target group; at most 5 ticks per axis.
    """
    space = _space(ds.space)
    r = space.response
    keys = list(ds.maps) if pairs is None else [tuple(p) for p in pairs]
    missing = [p for p in keys if p not in ds.maps]
    if missing:
        raise ValueError(f"pairs {missing} not in the design space maps; valid: {list(ds.maps)}")
    rel = ">=" if r.maximise else "<="
    unit = f" {r.unit}" if r.unit else ""
    meet = f"P({r.name} {rel} {ds.spec:g}{unit})"
    n = max(1, len(keys))
    ncol = min(3, n)
    nrow = -(-n // 3)
    n_at = max((len(ds.slices.get(key, {})) for key in keys), default=0)
    title_h = 0.25 * (1 + (n_at + 1) // 2)
    if fig is None:
        width = max(3.9 * ncol, 5.5)
        fig = plt.figure(figsize=(width, (3.3 + title_h) * nrow), layout="constrained")
    axs = fig.subplots(nrow, ncol, squeeze=False)
    mesh = None
    for ax, key in zip(axs.ravel(), keys, strict=False):
        m = ds.maps[key]
        if len(key) == 1:
            _plot_profile(ax, ds, key[0], m, space, meet)
        else:
            mesh = _plot_map(ax, ds, key, m, space)
        at = ds.slices.get(key, dict(m.attrs.get("slice", {})))
        ax.set_title(_slice_title(space, at), fontsize="small")
        _limit_ticks(ax)
    for ax in axs.ravel()[len(keys) :]:
        ax.set_visible(False)
    if not keys:
        axs[0, 0].set_visible(True)
        axs[0, 0].axis("off")
        axs[0, 0].text(0.5, 0.5, "no free factor: nothing to slice", ha="center", va="center")
    if mesh is not None:
        fig.colorbar(mesh, ax=axs.ravel().tolist(), label=meet)
    fig.suptitle(f"Design space: {meet} >= {ds.prob:g}\n{_group_text(ds.group, ds.kind)}")
    if keys:
        handles = _design_space_handles(ds, meet, profile=len(keys[0]) == 1)
        fig.legend(
            handles=handles,
            loc="outside lower center" if fig.get_layout_engine() is not None else "lower center",
            ncol=min(3, len(handles)),
            fontsize="small",
            facecolor="0.85",  # the white marks of the maps show on grey
            framealpha=1.0,
        )
    return fig


def _design_space_handles(ds: DesignSpace, meet: str, *, profile: bool) -> list[Any]:
    """Legend proxies for the marks :func:`plot_design_space` draws (only those it drew)."""
    maps = list(ds.maps.values())
    has_unsupported = any((~m["supported"].to_numpy().astype(bool)).any() for m in maps)
    has_contour = any(m["prob"].min() < ds.prob <= m["prob"].max() for m in maps)
    has_par = bool(np.isfinite(ds.par["low"].to_numpy(dtype=float)).any())
    has_training = len(ds.training) > 0
    centre = Line2D(
        [], [], marker="*", color="tab:red", ls="none", ms=10, label="recommended setpoint"
    )
    unsupported = Patch(facecolor="none", edgecolor="0.3", hatch="//", label="outside the data")
    if profile:
        marks = [
            (True, Line2D([], [], color="tab:blue", lw=1.8, label=meet)),
            (True, Line2D([], [], color="k", ls="--", lw=1, label=f"required {ds.prob:g}")),
            (has_par, Patch(color="tab:green", alpha=0.3, label="proven acceptable range")),
            (
                has_training,
                Line2D([], [], marker="|", color="0.3", ls="none", ms=8, label="training batches"),
            ),
        ]
    else:
        marks = [
            (has_contour, Line2D([], [], color="k", lw=1.2, label=f"{meet} = {ds.prob:g}")),
            (
                has_par,
                Patch(
                    facecolor="none",
                    edgecolor="w",
                    ls="--",
                    lw=1.5,
                    label="proven acceptable ranges",
                ),
            ),
            (
                has_training,
                Line2D([], [], marker=".", color="w", ls="none", ms=6, label="training batches"),
            ),
        ]
    marks += [(True, centre), (has_unsupported, unsupported)]
    return [handle for shown, handle in marks if shown]


def _plot_map(
    ax: Axes, ds: DesignSpace, key: tuple[str, ...], m: pd.DataFrame, space: ProcessSpace
) -> Any:
    a, b = key
    xa, xb = np.unique(m[a]), np.unique(m[b])
    z = m["prob"].to_numpy().reshape(len(xa), len(xb)).T
    mesh = ax.pcolormesh(xa, xb, z, vmin=0, vmax=1, cmap="viridis", shading="nearest")
    if z.min() < ds.prob <= z.max():
        ax.contour(xa, xb, z, levels=[ds.prob], colors="k", linewidths=1.2)
    unsupported = (~m["supported"].to_numpy().astype(bool)).reshape(len(xa), len(xb)).T
    if unsupported.any():
        ax.contourf(
            xa, xb, unsupported.astype(float), levels=[0.5, 1.5], colors="none", hatches=["//"]
        )
    lo, hi = ds.par.loc[a], ds.par.loc[b]
    if np.isfinite(lo["low"]) and np.isfinite(hi["low"]):
        ax.add_patch(
            Rectangle(
                (lo["low"], hi["low"]),
                lo["high"] - lo["low"],
                hi["high"] - hi["low"],
                fill=False,
                ls="--",
                ec="w",
                lw=1.5,
            )
        )
    if len(ds.training):
        ax.plot(ds.training[a], ds.training[b], ".", color="w", ms=3, alpha=0.7)
    ax.plot(ds.center[a], ds.center[b], "*", color="tab:red", ms=10)
    ax.set_xlabel(space.axis_label(a))
    ax.set_ylabel(space.axis_label(b))
    return mesh


def _plot_profile(
    ax: Axes, ds: DesignSpace, a: str, m: pd.DataFrame, space: ProcessSpace, meet: str
) -> None:
    x = m[a].to_numpy(dtype=float)
    p = m["prob"].to_numpy(dtype=float)
    ax.plot(x, p, color="tab:blue", lw=1.8)
    unsupported = ~m["supported"].to_numpy().astype(bool)
    if unsupported.any():
        ax.fill_between(x, 0, 1, where=unsupported, color="none", hatch="//", edgecolor="0.6", lw=0)
    ax.axhline(ds.prob, color="k", ls="--", lw=1)
    row = ds.par.loc[a]
    if np.isfinite(row["low"]):
        ax.axvspan(row["low"], row["high"], color="tab:green", alpha=0.15, label="PAR")
    if len(ds.training):
        ax.plot(ds.training[a], np.zeros(len(ds.training)), "|", color="0.3", ms=8)
    ax.plot(ds.center[a], np.interp(ds.center[a], x, p), "*", color="tab:red", ms=10)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(space.axis_label(a))
    ax.set_ylabel(meet)


def plot_regret_study(results: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Box plot of regret (% of the true optimum) by recommender and number of batches.

    Parameters
    ----------
    results : pandas.DataFrame
        Tidy results with columns ``recommender``, ``n`` and ``regret_pct``.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure when None.

    Returns
    -------
    matplotlib.axes.Axes
        The axes.
    """
    need = ["recommender", "n", "regret_pct"]
    missing = [c for c in need if c not in results.columns]
    if missing:
        raise ValueError(f"results lacks column(s) {missing}; needs {need}")
    if ax is None:
        _, ax = plt.subplots(figsize=(8.0, 4.0))
    names = list(dict.fromkeys(results["recommender"]))
    ns = sorted(results["n"].unique())
    width = 0.8 / len(names)
    cmap = plt.get_cmap("tab10")
    for i, name in enumerate(names):
        data = [
            results.loc[(results["recommender"] == name) & (results["n"] == n), "regret_pct"]
            .dropna()
            .to_numpy()
            for n in ns
        ]
        pos = np.arange(len(ns)) + (i - (len(names) - 1) / 2) * width
        bp = ax.boxplot(
            data, positions=pos, widths=width * 0.9, patch_artist=True, showfliers=False
        )
        for box in bp["boxes"]:
            box.set_facecolor(cmap(i % 10))
            box.set_alpha(0.7)
        ax.plot([], [], "s", color=cmap(i % 10), label=name)
    ax.set_xticks(np.arange(len(ns)))
    ax.set_xticklabels([f"n = {n}" for n in ns])
    ax.set_ylabel("regret [% of true optimum]")
    ax.legend(fontsize="small", frameon=False, ncol=min(3, len(names)))
    return ax
