"""Risk-aware setpoint recommendations that must safely beat the recipe.

How a recommendation is found (:func:`recommend`):

1. *Candidates*: the recipe, the group's own setpoints and a Latin hypercube over the search
   box, evaluated in one call of the :class:`~bayesbio.recommend.sampler.Evaluator` (common
   random numbers: the same posterior draws at every setpoint).
2. *Acquisitions* (:class:`~bayesbio.recommend.acquisition.SafeImprovement`): the risk
   objective among setpoints that beat the recipe with the required confidence, the risk
   objective alone and the mean; all within support.
3. *Refinement*: a vectorised local pattern search and a Nelder-Mead polish from the best few
   candidates of each acquisition (:func:`~bayesbio.recommend.search.local_search`).
4. *Decision*: every setpoint evaluated is compared on the same draws; the best safe one is
   recommended, or the recipe (with the best experiments to run instead) when none is safe.
5. *Report*: the summary table, the model-risk premium against the mean-optimal setpoint,
   P(better than recipe), the expected gain, warnings naming factors.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from bayesbio.checks import check_choice, check_fraction, check_int
from bayesbio.recommend.acquisition import SafeImprovement, p_better
from bayesbio.recommend.constraints import Constraints, check_execution_sd
from bayesbio.recommend.context import Context, build_context, group_recipe, space_or_default
from bayesbio.recommend.experiments import next_batches
from bayesbio.recommend.messages import (
    BoundWarning,
    ExtrapolationWarning,
    ModelDiagnosticsWarning,
    bound_messages,
    emit,
    group_text,
    model_diagnostics,
    point_text,
    recipe_moved_messages,
    sentence,
    support_edge_notes,
    support_messages,
    value_text,
)
from bayesbio.recommend.objectives import (
    OBJECTIVES,
    QUANTILE_LEVELS,
    Objective,
    check_spec,
    describe_objective,
    summarise,
)
from bayesbio.recommend.sampler import Evaluator, seed_pair
from bayesbio.recommend.search import candidates, distinct_top, local_search
from bayesbio.recommend.support import closest, outside, penalty, sd_ratio_fn
from bayesbio.space import ProcessSpace, number_text, unit_suffix

if TYPE_CHECKING:
    from bayesbio.models.protocol import YieldModel

ROWS = ("recommended", "mean_optimal", "recipe")


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
        Expected response at ``setpoint``: the posterior mean of the model's mean response
        (as ``model.predict``; ``summary["sd"]`` is its posterior SD). The quantiles,
        ``prob_spec`` and the CVaR include new-batch noise.
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
        target group's own batches, see :class:`~bayesbio.recommend.support.Support`; NaN for
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
        One row each for ``recommended``, ``mean_optimal`` and ``recipe``: setpoint,
        expected response and its posterior SD (``expected_yield``, ``sd``: the mean
        response, no new-batch noise), quantiles, ``cvar`` (mean of the adverse ``risk``
        tail), P(meet spec) and objective (a new batch, with noise; common to the three
        rows, as in the search), expected regret, distances.
    shift : pandas.DataFrame
        Per factor: recommended and mean-optimal values, their difference in domain units
        and in SDs of the training setpoints.
    premium : dict
        Model-risk premium (recommended minus mean-optimal): ``delta_mean`` (expected
        response), ``delta_q10`` and ``delta_q90`` (10th and 90th percentiles), ``delta_cvar``
        (adverse tail), ``delta_prob_spec`` and ``distance_sd`` (Euclidean shift in data SDs).
    draws : pandas.DataFrame
        Predictive draws at the three setpoints, one column each (the draws the objective
        read: with common new-batch noise where the search used it).
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
        return space_or_default(self.space).response.direction

    def to_frame(self) -> pd.DataFrame:
        """Return the summary table (rows: recommended, mean_optimal, recipe)."""
        space = space_or_default(self.space)
        r = space.response
        out = self.summary.copy()
        out.attrs["units"] = f"setpoints in domain units; {r.name} in {r.unit}"
        out.attrs["direction"] = r.direction
        out.attrs["objective"] = describe_objective(self.objective, self.risk, self.spec, space)
        return out

    def __repr__(self) -> str:
        space = space_or_default(self.space)
        unit = unit_suffix(space.response.unit)
        point = {k: round(float(v), 4) for k, v in self.setpoint.items()}
        return (
            f"Recommendation(decision={self.decision!r}, group={self.group!r}, "
            f"setpoint={point}, expected {space.response.noun} "
            f"{number_text(self.expected_yield)}{unit}, "
            f"p_better_than_recipe={self.p_better_than_recipe:.3f}, "
            f"warnings={len(self.warnings)}; .explain() says why)"
        )

    def explain(self) -> str:
        """Return a few lines in domain words: what to run, what to expect, why, the warnings.

        Returns
        -------
        str
            The explanation (``print(rec.explain())``).
        """
        space = space_or_default(self.space)
        r = space.response
        unit = unit_suffix(r.unit)
        tail = "10th" if r.maximise else "90th"
        q = self.quantiles.get(0.1 if r.maximise else 0.9, float("nan"))
        recipe = self.summary.loc["recipe"]
        group = group_text(self.group)
        action = "IMPROVE on the recipe" if self.decision == "improve" else "KEEP THE RECIPE"
        better = "higher" if r.maximise else "lower"
        lines = [
            f"Recommendation for {group}: {action} ({r.noun}: {better} is better).",
            sentence(f"Setpoint: {point_text(space, self.setpoint.to_numpy(dtype=float))}"),
            f"Expected {r.noun} of a new batch: {number_text(self.expected_yield)}{unit} "
            f"({tail} percentile {number_text(q)}{unit}"
            + (
                f"; P(meet {number_text(self.spec)}{unit}) {self.prob_spec:.2f}"
                if self.spec is not None and self.prob_spec is not None
                else ""
            )
            + f"), against {number_text(float(recipe['expected_yield']))}{unit} at the recipe.",
            f"Why: {self.reason}.",
            f"Support: {self.support_used}; distance {self._guard_distance():.2f} "
            f"(limit {self.support_distance['limit']:.2f}).",
        ]
        lines += [sentence(f"Note: {n}") for n in self.settings.get("notes", [])]
        lines += [f"Warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def _guard_distance(self) -> float:
        """Return the distance the guard measured: the group's, or overall for a new group."""
        group = self.support_distance.get("group", np.nan)
        return float(group if np.isfinite(group) else self.support_distance["overall"])

    def plot(self, *, ax: Axes | None = None) -> Axes:
        """Plot the predictive distributions (:func:`~bayesbio.recommend.plot_recommendation`)."""
        from bayesbio.recommend.plots import plot_recommendation

        return plot_recommendation(self, ax=ax)


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
    transfer_risk: bool = False,
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
    transfer_risk : bool, default False
        Where a Bayesian model pools factor effects across groups (varying slopes off), add
        the risk that the target group responds unlike the groups an effect was learnt from:
        a slope deviation of the group, from the model's varying-slope prior conditioned on
        the group's own batches (:mod:`bayesbio.recommend.transfer`). It widens the draws of
        moves away from the group's batches, so the support's SD-ratio limit and
        ``min_confidence`` see that risk. Ignored for other models. Opt-in: on the
        independent worlds it left the mean regret unchanged (BENCHMARKS.md).
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
    (:class:`~bayesbio.recommend.support.Support`: from the group's median setpoint or from the
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

    Transfer risk (``transfer_risk=True``): a Bayesian model that pools factor effects over
    groups is as sure of a 2,000 L vessel's response to mixing time as of the effect learnt
    from all scales. With transfer risk every draw also carries a slope deviation of the
    target group (one per draw; the model's varying-slope prior conditioned on the group's
    own batches), so a move the group itself never made is less certain, and
    ``settings["transfer_risk"]`` records the deviation's SD per factor. Measured on the
    independent worlds of ``benchmarks/recommenders.py``: mean regret unchanged, fewer
    recommendations worse than the recipe at n = 20, not at n = 40 (BENCHMARKS.md); refitting
    with ``varying_slopes=True`` is the model-based alternative.
    """
    check_choice("objective", objective, OBJECTIVES)
    risk = check_fraction("risk", risk)
    if objective in ("quantile", "cvar") and risk > 0.5:
        warnings.warn(
            f"risk={risk:g} with objective={objective!r} reads the optimistic side of the "
            "predictive distribution (more than half of it): risk is the share of bad "
            "outcomes to guard against, usually 0.05-0.2",
            UserWarning,
            stacklevel=2,
        )
    n_draws = check_int("n_draws", n_draws, minimum=10)
    n_candidates = check_int("n_candidates", n_candidates, minimum=1)
    confidence = check_confidence(min_confidence)
    ctx = build_context(model, group, kind, constraints)
    spec = check_spec(spec, objective, ctx.space)
    exec_sd = check_execution_sd(execution_sd, ctx.space)
    ctx.recipe = group_recipe(recipe, ctx)
    rng, seed = seed_pair(random_seed)
    ev = Evaluator(
        model, ctx, n_draws=n_draws, seed=seed, execution_sd=exec_sd, transfer_risk=transfer_risk
    )
    diag, diag_messages = model_diagnostics(model)
    r0 = ctx.clip(ctx.recipe[None])
    noisy = noise and objective != "mean"

    # 1. candidates (the recipe first), evaluated in one call on common draws
    cands = candidates(ctx, r0, n_candidates, rng)
    mean_draws, risk_draws = _first_draws(ev, cands, noisy)
    # 2. acquisitions: the safe risk objective, the risk objective alone, the mean
    obj = Objective(objective, risk, spec, ctx.sign, _smoothing(objective, risk_draws))
    safe = SafeImprovement(ev, ctx, obj, r0, sd_ratio_fn(ev, ctx), noisy, confidence)
    acquisitions = {
        "safe": safe,
        "risk": replace(safe, confidence=0.0),
        "mean": replace(safe, objective=replace(obj, name="mean"), noise=False, confidence=0.0),
    }
    # 3. local refinement from the best candidates of each acquisition
    final = _refine(ctx, r0, cands, mean_draws, risk_draws, acquisitions, rng)
    # 4. decision: everything evaluated, compared on the same draws
    choice = _decide(ctx, final, safe)
    # 5. report
    summary, draws, ratio3, gain = _evaluate(ctx, ev, choice, safe, noise=noise)
    improve = choice.decision == "improve"
    point = summary.loc["recommended", ctx.factors].to_numpy(dtype=float)
    guard_d = float(ctx.support.guard_distance(point[None], ctx.res.support)[0])
    extrap = support_messages(ctx, point, guard_d, ratio3[0]) if improve else []
    bounds = bound_messages(ctx, point) if improve else []
    if improve:
        ctx.notes.extend(support_edge_notes(ctx, point, guard_d))
    if not np.allclose(ctx.recipe, r0[0]):  # the model's view of the recipe as run, and moved
        both = ev.raw(np.vstack([ctx.recipe, r0[0]]), noise=False).mean(axis=0)
        bounds += recipe_moved_messages(ctx, r0[0], (float(both[0]), float(both[1])))
    next_exp = None
    if not improve:
        supported = cands[choice.ok[-len(cands) :]]
        next_exp = _next_experiments(model, ctx, supported, group, constraints, rng)
    emit(diag_messages, ModelDiagnosticsWarning)
    emit(extrap, ExtrapolationWarning)
    emit(bounds, BoundWarning)
    settings = _settings(ctx, ev, obj, noise, exec_sd, confidence, n_candidates, random_seed)
    return _result(
        ctx,
        choice,
        summary,
        draws,
        ratio3,
        gain,
        obj,
        warnings=tuple(diag_messages + extrap + bounds),
        diagnostics=diag,
        settings=settings,
        confidence=confidence,
        next_experiments=next_exp,
    )


def check_confidence(value: Any) -> float:
    """``min_confidence`` as a probability in [0, 1) (0 for None: the test switched off)."""
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


def _first_draws(ev: Evaluator, cands: np.ndarray, noisy: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mean draws at the candidates and the draws the objective reads (common noise if it can)."""
    mean_draws = ev.raw(cands, noise=False)
    if not noisy:
        return mean_draws, mean_draws
    if ev.calibrate_noise(mean_draws, ev.raw(cands, noise=True)):
        return mean_draws, ev.add_noise(mean_draws)
    return mean_draws, ev.raw(cands, noise=True)


def _smoothing(objective: str, draws: np.ndarray) -> float | None:
    """Width of the smooth step of ``"prob_spec"`` in searches: 0.2 of the typical draw SD."""
    if objective != "prob_spec":
        return None
    spread = float(np.median(draws.std(axis=0)))
    return 0.2 * spread if spread > 0 else None


def _refine(
    ctx: Context,
    r0: np.ndarray,
    cands: np.ndarray,
    mean_draws: np.ndarray,
    risk_draws: np.ndarray,
    acquisitions: Mapping[str, SafeImprovement],
    rng: np.random.Generator,
) -> np.ndarray:
    """Every setpoint worth comparing: recipe, each acquisition's best and refined, candidates.

    Each acquisition scores the candidates from their first draws; a local search runs from
    its three best distinct candidates (the risk objective alone only when the safe one
    differs from it, i.e. with a confidence gate).
    """
    f_ref = mean_draws[:, :1]
    values = {
        name: acq.from_draws(cands, mean_draws, f_ref, mean_draws if name == "mean" else risk_draws)
        for name, acq in acquisitions.items()
    }
    finalists = [cands[np.argmax(values[name])][None] for name in ("safe", "risk", "mean")]
    d = len(ctx.res.free)
    if d:
        unit = ctx.to_unit(cands)
        order = ["mean", "safe"] + (["risk"] if acquisitions["safe"].confidence else [])
        for name in order:
            top = distinct_top(unit, values[name], 3, 0.1)
            finalists.append(local_search(acquisitions[name], ctx, cands[top], rng))
    return ctx.clip(np.vstack([r0, *finalists, cands]))


@dataclass
class _Choice:
    """The decision over the final setpoints (row 0 is the recipe)."""

    final: np.ndarray
    f_all: np.ndarray  # mean draws at every final setpoint
    ok: np.ndarray  # within support
    pool: np.ndarray  # where the regret's best is taken (all when none is supported)
    i_rec: int
    i_mean: int
    i_best: int  # best within support, whatever its P(better)
    decision: str


def _decide(ctx: Context, final: np.ndarray, safe: SafeImprovement) -> _Choice:
    """Pick the recommended, mean-optimal and best-supported setpoints on common draws."""
    sgn, confidence = ctx.sign, safe.confidence
    f_all = safe.ev.raw(final, noise=False)
    y_all = safe.objective_draws(final, f_all)
    ok = penalty(ctx, final, safe.ratio(f_all)) <= 0
    r_all = safe.objective.score(y_all)
    m_all = sgn * f_all.mean(axis=0)
    p_all = p_better(sgn, f_all, f_all[:, :1])
    passed = ok & (p_all >= confidence) if confidence else ok.copy()
    passed[0] = False  # the recipe is the fallback, not an improvement on itself
    pool = ok if ok.any() else np.ones(len(final), dtype=bool)
    others = pool.copy()
    others[0] = not pool[1:].any()
    i_best = int(np.argmax(np.where(others, r_all, -np.inf)))
    i_mean = int(np.argmax(np.where(pool, m_all, -np.inf)))
    if not ok.any():
        i_best = i_mean = closest(ctx, final)
    if confidence and not passed.any():
        i_rec, decision = 0, "recipe"
    else:
        i_rec, decision = int(np.argmax(np.where(passed, r_all, -np.inf))), "improve"
        if not confidence and not ok.any():
            i_rec = i_best
    return _Choice(final, f_all, ok, pool, i_rec, i_mean, i_best, decision)


def _evaluate(
    ctx: Context, ev: Evaluator, choice: _Choice, safe: SafeImprovement, *, noise: bool
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, dict[str, np.ndarray]]:
    """Summary and predictive draws of recommended, mean-optimal and recipe; SD ratios; gains.

    Gains (``p_better``, ``gain``, ``gain_pct``) have a fourth entry: the best setpoint within
    support, reported as the candidate when the decision is the recipe.
    """
    sgn, final = ctx.sign, choice.final
    three = np.vstack([final[choice.i_rec], final[choice.i_mean], safe.recipe[0]])
    f3 = ev.raw(np.vstack([three, final[choice.i_best]]), noise=False)
    # the draws the search scored (common new-batch noise where calibrated): rows with the
    # same setpoint get the same summary, and rows compare as the search compared them
    # (the mean objective searched without noise; its summary is still of a new batch)
    y3 = replace(safe, noise=True).objective_draws(three, f3[:, :3]) if noise else f3[:, :3]
    best_per_draw = (sgn * choice.f_all[:, choice.pool]).max(axis=1)
    regret = best_per_draw[:, None] - sgn * f3[:, :3]
    ratio3 = safe.ratio(f3)
    gain_draws = sgn * (f3 - f3[:, 2:3])
    base = abs(float(f3[:, 2].mean()))
    mean_gain = gain_draws.mean(axis=0)
    gain = {
        "p_better": (gain_draws > 0).mean(axis=0),
        "gain": mean_gain,
        "gain_pct": 100 * mean_gain / base if base > 0 else np.full(4, np.nan),
    }
    summary = _summary_table(ctx, three, y3, f3[:, :3], regret, safe.objective)
    summary["sd_ratio"] = ratio3[:3]
    summary["within_support"] = outside(ctx, three, ratio3[:3]) <= 0
    summary["p_better_than_recipe"] = gain["p_better"][:3]
    summary["expected_gain"] = gain["gain"][:3]
    summary["expected_gain_pct"] = gain["gain_pct"][:3]
    summary.loc["recipe", ["p_better_than_recipe", "expected_gain_pct"]] = np.nan
    draws = pd.DataFrame(y3, columns=list(ROWS))
    draws.attrs["units"] = ctx.space.response.unit
    return summary, draws, ratio3, gain


def _summary_table(
    ctx: Context,
    points: np.ndarray,
    draws: np.ndarray,
    mean_draws: np.ndarray,
    regret: np.ndarray,
    obj: Objective,
) -> pd.DataFrame:
    stats_ = summarise(draws, spec=obj.spec, risk=obj.risk, sign=ctx.sign, mean_draws=mean_draws)
    out = pd.DataFrame(points, columns=ctx.factors, index=pd.Index(ROWS, name="setpoint"))
    for key, values in stats_.items():
        out[key] = values
    out["objective_value"] = obj.value(draws)
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


def _shift_and_premium(
    ctx: Context, summary: pd.DataFrame, spec: float | None
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Recommended against mean-optimal: per-factor shift and the model-risk premium."""
    factors = ctx.factors
    rec_point = summary.loc["recommended", factors].astype(float)
    mean_point = summary.loc["mean_optimal", factors].astype(float)
    shift = pd.DataFrame(
        {
            "recommended": rec_point.to_numpy(),
            "mean_optimal": mean_point.to_numpy(),
            "difference": (rec_point - mean_point).to_numpy(),
            "difference_sd": ((rec_point - mean_point).to_numpy() / ctx.data_sd),
            "unit": [ctx.space.units[p] for p in factors],
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
    return shift, premium


def _gain_text(space: ProcessSpace, gain: float, pct: float) -> str:
    """Return the expected gain in the response's terms: a rise of a maximum, a cut of a minimum.

    ``gain`` is the improvement in the response's unit (positive = better) and ``pct`` the
    same in % of the recipe's value; a response in % has its gain in percentage points.
    """
    unit = space.response.unit
    amount = f"{abs(gain):.3g} percentage points" if unit == "%" else f"{abs(gain):.3g} {unit}"
    if space.response.maximise:
        return f"expected gain {'+' if gain >= 0 else '-'}{amount}, {pct:+.1f} %"
    word = "reduction" if gain >= 0 else "increase"
    return f"expected {word} {amount}, {abs(pct):.1f} %"


def _reason(
    ctx: Context,
    choice: _Choice,
    gain: Mapping[str, np.ndarray],
    confidence: float,
    has_experiments: bool = True,
) -> tuple[str, float, float, float]:
    """One sentence why, with the P(better), gain and gain in % it states."""
    space = ctx.space
    i = 0 if choice.decision == "improve" else 3
    pb, gn, gp = float(gain["p_better"][i]), float(gain["gain"][i]), float(gain["gain_pct"][i])
    if choice.decision == "improve":
        reason = f"beats the recipe with probability {pb:.2f} ({_gain_text(space, gn, gp)})" + (
            f" >= the required {confidence:g}" if confidence else "; no confidence required"
        )
    else:
        best = point_text(space, choice.final[choice.i_best])
        held = [  # factors the caller fixed (the space's own fixed factors go unsaid)
            value_text(space, space.factor_names[j], v)
            for j, v in ctx.res.fixed.items()
            if space.factor_names[j] not in space.fixed
        ]
        support = ctx.support.used(ctx.res.support)
        why = (
            f"no setpoint within {support} support beats it with probability >= "
            f"{confidence:g}; the best found ({best}) does so with probability {pb:.2f}"
            if choice.ok.any()
            else f"no setpoint in the search box lies within {support} support (the bounds "
            f"keep every one away from the batches the model learnt from); the closest ({best}) "
            f"would beat it with probability {pb:.2f} as an extrapolation"
        )
        reason = (
            "kept the recipe"
            + (f" (with {', '.join(held)} held fixed)" if held else "")
            + f": {why} ({_gain_text(space, gn, gp)}); "
            + (
                "run the next_experiments to learn where the optimum lies"
                if has_experiments
                else "fewer than 2 setpoints within support meet the constraints, so no "
                "experiments are ranked: widen the bounds or free a fixed factor"
            )
        )
    return reason, pb, gn, gp


def _settings(
    ctx: Context,
    ev: Evaluator,
    obj: Objective,
    noise: bool,
    exec_sd: np.ndarray,
    confidence: float,
    n_candidates: int,
    random_seed: int | np.random.Generator | None,
) -> dict[str, Any]:
    """Return the arguments used, as a plain dict (``Recommendation.settings``)."""
    space, factors = ctx.space, ctx.factors
    return {
        "objective": obj.name,
        "objective_description": obj.describe(space),
        "direction": space.response.direction,
        "risk": obj.risk,
        "spec": obj.spec,
        "noise": bool(noise),
        "kind": ctx.kind,
        "execution_sd": {p: float(s) for p, s in zip(factors, exec_sd, strict=True) if s > 0},
        "constraints": ctx.res.constraints,
        "max_distance": ctx.res.max_distance,
        "max_sd_ratio": ctx.res.max_sd_ratio,
        "min_confidence": confidence,
        "recipe": {p: float(v) for p, v in zip(factors, ctx.recipe, strict=True)},
        "n_draws": ev.n_draws,
        "n_candidates": n_candidates,
        "transfer_risk": None if ev.slopes is None else ev.slopes.describe(),
        "model_calls": ev.calls,
        "random_seed": random_seed if isinstance(random_seed, int | None) else "generator",
        "notes": list(ctx.notes),
    }


def _result(
    ctx: Context,
    choice: _Choice,
    summary: pd.DataFrame,
    draws: pd.DataFrame,
    ratio3: np.ndarray,
    gain: Mapping[str, np.ndarray],
    obj: Objective,
    *,
    warnings: tuple[str, ...],
    diagnostics: dict[str, Any],
    settings: dict[str, Any],
    confidence: float,
    next_experiments: pd.DataFrame | None,
) -> Recommendation:
    """Assemble the :class:`Recommendation`."""
    space, factors = ctx.space, ctx.factors
    shift, premium = _shift_and_premium(ctx, summary, obj.spec)
    reason, pb, gn, gp = _reason(ctx, choice, gain, confidence, next_experiments is not None)
    r = summary.loc["recommended"]
    sd_limit = ctx.res.max_sd_ratio
    candidate = None
    if choice.decision == "recipe":
        candidate = pd.Series(choice.final[choice.i_best], index=factors, name="candidate")
    return Recommendation(
        setpoint=r[factors].astype(float).rename("recommended"),
        objective=obj.name,
        risk=obj.risk,
        spec=obj.spec,
        objective_value=float(r["objective_value"]),
        expected_yield=float(r["expected_yield"]),
        quantiles=pd.Series(
            [float(r[f"q{round(100 * q):02d}"]) for q in QUANTILE_LEVELS],
            index=pd.Index(QUANTILE_LEVELS, name="prob"),
            name=space.response.name,
        ),
        prob_spec=float(r["prob_spec"]) if obj.spec is not None else None,
        expected_regret=float(r["expected_regret"]),
        support_distance={
            "group": float(r["distance_group"]),
            "overall": float(r["distance_overall"]),
            "limit": ctx.res.max_distance,
            "sd_ratio": float(ratio3[0]),
            "sd_ratio_limit": float(sd_limit) if sd_limit is not None else np.nan,
        },
        mean_optimal=summary.loc["mean_optimal", factors].astype(float).rename("mean_optimal"),
        recipe=summary.loc["recipe", factors].astype(float).rename("recipe"),
        summary=summary,
        shift=shift,
        premium=premium,
        draws=draws,
        group=dict(ctx.group),
        kind=ctx.kind,
        warnings=warnings,
        diagnostics=diagnostics,
        settings=settings,
        space=space,
        decision=choice.decision,
        reason=reason,
        p_better_than_recipe=pb,
        expected_gain=gn,
        expected_gain_pct=gp,
        support_used=ctx.support.used(ctx.res.support),
        candidate=candidate,
        next_experiments=next_experiments,
    )


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
