"""The one-screen summary of a study: per target group, what to run and how sure we are.

For every target group the summary states the recommended setpoint, its expected response
and bad-case percentile against the group's recipe (its median historical setpoint, as
:func:`bayesbio.recommend.recommend` defines it), the probability that the mean response at
the recommendation beats the mean response at the recipe, the main risk in one phrase and
what to run next. :func:`compare_to_recipe` computes the probability from common posterior
draws: both setpoints are predicted in one ``predict_draws(..., noise=False)`` call, so each
row of draws is one posterior draw evaluated at both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesbio.checks import check_fraction, check_int
from bayesbio.recommend.context import build_context
from bayesbio.recommend.messages import group_text
from bayesbio.space import quantity_text

if TYPE_CHECKING:
    from bayesbio.models.protocol import YieldModel
    from bayesbio.recommend import Recommendation
    from bayesbio.space import ProcessSpace

__all__ = [
    "LOW_P_BETTER",
    "RISKS",
    "compare_to_recipe",
    "diagnostics_failed",
    "diagnostics_table",
    "main_risk",
    "setpoint_text",
    "study_summary",
]

#: Below this probability of beating the recipe the main risk is "low P(better)".
LOW_P_BETTER = 0.8

#: The main-risk phrases, most serious first.
RISKS = (
    "extrapolation",
    "failed diagnostics",
    "low P(better)",
    "no confident improvement",
    "none",
)


def _as_array(setpoint: Any, factors: Sequence[str], name: str) -> np.ndarray:
    if isinstance(setpoint, pd.DataFrame) and len(setpoint) == 1:
        setpoint = setpoint.iloc[0]
    if not isinstance(setpoint, Mapping | pd.Series):
        raise ValueError(
            f"{name} must map every factor ({', '.join(factors)}) to a value, got "
            f"{type(setpoint).__name__}"
        )
    missing = [f for f in factors if f not in setpoint]
    if missing:
        raise ValueError(f"{name} lacks factor(s) {', '.join(missing)}; give every factor a value")
    return np.array([float(setpoint[f]) for f in factors])


def compare_to_recipe(
    model: YieldModel | Any,
    setpoint: Mapping[str, float] | pd.Series,
    recipe: Mapping[str, float] | pd.Series,
    group: Mapping[str, Any] | None = None,
    *,
    kind: str = "auto",
    n_draws: int = 1000,
    random_seed: int | None = 0,
) -> dict[str, float]:
    """Compare the mean response at ``setpoint`` with the mean response at ``recipe``.

    Both setpoints are predicted in one ``model.predict_draws(..., noise=False)`` call, so
    every posterior draw is evaluated at both (common draws): the comparison carries the
    uncertainty about the difference, not the sum of two uncertainties.

    Parameters
    ----------
    model : fitted yield model
        Any model following the bayesbio model protocol.
    setpoint, recipe : mapping or pandas.Series
        A value for every factor, domain units (e.g. ``Recommendation.setpoint`` and
        ``Recommendation.recipe``).
    group : mapping of str to str, optional
        Target group, as in :func:`bayesbio.recommend.recommend`.
    kind : {"auto", "existing", "new_group", "population"}, default "auto"
        Prediction kind, as in :func:`bayesbio.recommend.recommend`.
    n_draws : int, default 1000
        Posterior draws.
    random_seed : int or None, default 0
        Seed of the draws.

    Returns
    -------
    dict
        ``p_better``: P(mean response at ``setpoint`` is better than at ``recipe``), higher
        for a response to maximise, lower for one to minimise. Only a strict improvement
        counts: ties (identical draws, as when the two setpoints coincide) count 0, so equal
        setpoints give 0, the convention of ``Recommendation.p_better_than_recipe``.
        ``expected_gain``: posterior mean of the improvement (response unit, positive =
        better), ``gain_q10`` and ``gain_q90`` its 10th and 90th percentiles, ``mean_setpoint``
        and ``mean_recipe`` the posterior mean responses.
    """
    n_draws = check_int("n_draws", n_draws, minimum=10)
    ctx = build_context(model, group, kind, None)
    factors = ctx.factors
    points = np.vstack(
        [_as_array(setpoint, factors, "setpoint"), _as_array(recipe, factors, "recipe")]
    )
    draws = np.asarray(
        model.predict_draws(
            ctx.frame(points), n_draws=n_draws, noise=False, kind=ctx.kind, random_seed=random_seed
        ),
        dtype=float,
    )
    gain = ctx.sign * (draws[:, 0] - draws[:, 1])
    # strictly better, ties count 0: the convention of recommend()'s p_better_than_recipe,
    # so the summary's fallback and the recommendation report the same probability
    p_better = float(np.mean(gain > 0))
    return {
        "p_better": p_better,
        "expected_gain": float(gain.mean()),
        "gain_q10": float(np.quantile(gain, 0.1)),
        "gain_q90": float(np.quantile(gain, 0.9)),
        "mean_setpoint": float(draws[:, 0].mean()),
        "mean_recipe": float(draws[:, 1].mean()),
    }


def diagnostics_failed(diagnostics: Mapping[str, Any] | None) -> list[str]:
    """Return the failed sampling checks in ``diagnostics`` in plain words (empty: passed).

    Parameters
    ----------
    diagnostics : mapping or None
        ``model.diagnostics_`` (one mapping per model structure, or one flat mapping) or
        ``Recommendation.diagnostics``; keys ``max_r_hat``, ``min_ess_bulk``,
        ``min_ess_tail``, ``divergences`` (others are ignored).

    Returns
    -------
    list of str
        E.g. ``["R-hat 1.057 (needs <= 1.01)", "effective sample size 59 (needs >= 400)"]``.
    """
    if not isinstance(diagnostics, Mapping):
        return []
    nested = [v for v in diagnostics.values() if isinstance(v, Mapping)]
    blocks = nested or [diagnostics]

    def worst(key: str, pick: Any) -> float | None:
        values = []
        for block in blocks:
            try:
                value = float(block[key])
            except (KeyError, TypeError, ValueError):
                continue
            if np.isfinite(value):
                values.append(value)
        return pick(values) if values else None

    found = []
    r_hat = worst("max_r_hat", max)
    if r_hat is not None and r_hat > 1.01:
        found.append(f"R-hat {r_hat:.3f} (needs <= 1.01)")
    ess = [v for v in (worst("min_ess_bulk", min), worst("min_ess_tail", min)) if v is not None]
    if ess and min(ess) < 400:
        found.append(f"effective sample size {min(ess):.0f} (needs >= 400)")
    div = worst("divergences", max)
    if div is not None and div > 0:
        found.append(f"{int(div)} divergent transition(s) (needs 0)")
    return found


#: Display names of the sampling checks (``model.diagnostics_`` keys).
DIAGNOSTIC_LABELS = {
    "max_r_hat": "max R-hat",
    "min_ess_bulk": "min ESS (bulk)",
    "min_ess_tail": "min ESS (tail)",
    "min_bfmi": "min BFMI",
    "n_draws": "draws",
    "max_pareto_k": "max Pareto k",
}


def diagnostics_table(diagnostics: Mapping[str, Any]) -> pd.DataFrame:
    """Return ``model.diagnostics_`` as one row per model structure with a plain verdict.

    Parameters
    ----------
    diagnostics : mapping
        ``model.diagnostics_``: one mapping of sampling figures per structure.

    Returns
    -------
    pandas.DataFrame
        Column ``structure``, the figures (R-hat, effective sample sizes, divergences, Pareto
        k, sampler runs, ...) and ``verdict``: ``"passes"`` or ``"fails: "`` followed by the
        failed checks in words (:func:`diagnostics_failed`).
    """
    diag = pd.DataFrame({str(k): dict(v) for k, v in diagnostics.items()}).T
    diag = diag.rename_axis("structure").reset_index()
    verdicts = []
    for _, row in diag.iterrows():
        failed = diagnostics_failed(row.to_dict())
        verdicts.append("fails: " + "; ".join(failed) if failed else "passes")
    diag["verdict"] = verdicts
    return diag


def main_risk(
    *,
    within_support: bool,
    diagnostics_ok: bool,
    p_better: float,
    threshold: float = LOW_P_BETTER,
) -> str:
    """Return the main risk of a recommendation as one phrase (see :data:`RISKS`).

    Parameters
    ----------
    within_support : bool
        The recommended setpoint lies inside the support of the historical data.
    diagnostics_ok : bool
        The model passed its sampling diagnostics.
    p_better : float
        P(mean response at the recommendation beats the recipe).
    threshold : float, default LOW_P_BETTER
        Below this ``p_better`` is a risk.

    Returns
    -------
    str
        ``"extrapolation"``, ``"failed diagnostics"``, ``"low P(better)"`` or ``"none"``, the
        most serious that applies.
    """
    threshold = check_fraction("threshold", threshold)
    if not within_support:
        return "extrapolation"
    if not diagnostics_ok:
        return "failed diagnostics"
    if not (p_better >= threshold):
        return "low P(better)"
    return "none"


def setpoint_text(space: ProcessSpace, setpoint: Mapping[str, float] | pd.Series) -> str:
    """Return a setpoint as ``"Temperature 35.3 °C, pH 7.01, ..."`` (4 significant digits)."""
    return ", ".join(quantity_text(f.label, float(setpoint[f.name]), f.unit) for f in space.factors)


def _recommendation_value(rec: Recommendation, name: str) -> float | None:
    """Return a value recommend() reports itself (attribute or summary column), or None."""
    value = getattr(rec, name, None)
    if value is None and name in getattr(rec, "summary", pd.DataFrame()).columns:
        value = rec.summary.loc["recommended", name]
    try:
        value = float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
    return value if value is not None and np.isfinite(value) else None


def _recipe_next_text(space: ProcessSpace, rec: Recommendation) -> str | None:
    """Return what to run when recommend() kept the recipe (its best experiment), or None."""
    ranked = getattr(rec, "next_experiments", None)
    if ranked is None or not len(ranked):
        return None
    top = ranked.iloc[0]
    if not all(f in top.index for f in space.factor_names):
        return None
    return f"1-2 batches at {setpoint_text(space, top)} to learn whether it beats the recipe"


def worth_a_batch(ranked: pd.DataFrame, reference: float | None = None) -> pd.Series:
    """Return which next-batch candidates are worth a batch of their own.

    A candidate of :func:`~bayesbio.recommend.next_batches` is worth a batch when it is
    expected to cut the regret by at least 0.5 % of the expected response (of ``reference``,
    or of the candidate's own expected response) and, where the table gives ``p_safe``, when
    it passes the campaign's safety rule (``p_safe >= SAFETY_PROB``: at most ``SAFE_LOSS``
    worse than the recipe with that probability).

    Parameters
    ----------
    ranked : pandas.DataFrame
        Candidates with ``expected_regret_reduction`` and ``expected_yield`` (and ``p_safe``).
    reference : float, optional
        Response level the 0.5 % is taken of; default each candidate's expected response.

    Returns
    -------
    pandas.Series of bool
        Indexed like ``ranked``.
    """
    from bayesbio.recommend.acquisition import SAFETY_PROB

    scale = (
        pd.Series(abs(float(reference)), index=ranked.index)
        if reference is not None
        else ranked["expected_yield"].abs()
    ).clip(lower=1e-12)
    gain = pd.to_numeric(ranked["expected_regret_reduction"], errors="coerce")
    worth = gain > 0.005 * scale
    if "p_safe" in ranked.columns:
        worth &= pd.to_numeric(ranked["p_safe"], errors="coerce") >= SAFETY_PROB
    return worth.fillna(False).astype(bool)


def _next_text(
    space: ProcessSpace,
    rec: Recommendation,
    risk: str,
    ranked: pd.DataFrame | None,
) -> str:
    unit = space.response.unit
    if risk == "extrapolation":
        text = "2-3 confirmation batches at the recommendation before adopting it"
    elif risk == "low P(better)":
        text = "keep the recipe; 1 batch at the recommendation to learn more"
    else:
        text = "2-3 confirmation batches at the recommendation"
    if ranked is not None and len(ranked) and risk != "extrapolation":
        # worth a batch of its own: expected to cut the regret by >= 0.5 %, and safe
        worth = ranked[worth_a_batch(ranked, reference=rec.expected_yield)]
        if len(worth):
            top = worth.iloc[0]
            gain = float(top["expected_regret_reduction"])
            at = np.array([float(top[f]) for f in space.factor_names])
            spread = space.upper - space.lower
            near = np.all(np.abs(at - rec.setpoint.to_numpy(dtype=float)) <= 0.02 * spread)
            where = "the recommendation" if near else setpoint_text(space, top)
            text = f"1 batch at {where} (expected to cut the regret by {gain:.2g} {unit})"
    if risk == "failed diagnostics":
        text = "rerun with more draws, then " + text
    return text


def study_summary(
    model: YieldModel | Any,
    recommendations: Sequence[tuple[Mapping[str, Any], Recommendation]],
    *,
    next_batches: pd.DataFrame | None = None,
    n_draws: int = 1000,
    random_seed: int | None = 0,
) -> pd.DataFrame:
    """Return the one-screen summary table: one row per target group.

    Parameters
    ----------
    model : fitted yield model
        The model the recommendations came from.
    recommendations : sequence of (group, Recommendation)
        The study's recommendations, one per target group.
    next_batches : pandas.DataFrame, optional
        Ranked next-batch candidates (:func:`bayesbio.recommend.next_batches`) of all groups,
        with the group columns, best first per group; the best one of each group fills
        ``run next``.
    n_draws : int, default 1000
        Posterior draws of :func:`compare_to_recipe`.
    random_seed : int or None, default 0
        Seed of :func:`compare_to_recipe`.

    Returns
    -------
    pandas.DataFrame
        Columns ``group``, ``run`` (setpoint with units), ``expected``, ``bad_case``
        (10th percentile of a new batch, 90th for a response to minimise), ``recipe_expected``,
        ``recipe_bad_case``, ``p_better``, ``expected_gain``, ``main_risk`` and ``run_next``;
        ``attrs`` hold ``unit``, ``bad_case_level`` and ``direction``. ``p_better`` and
        ``expected_gain`` are taken from the recommendation when it reports them
        (``p_better_than_recipe``, ``expected_gain``), else from :func:`compare_to_recipe`.
    """
    rows = []
    space = None
    for group, rec in recommendations:
        space = rec.space
        if space is None:
            from bayesbio.space import ProcessSpace

            space = ProcessSpace.default()
        bad = "q10" if space.response.maximise else "q90"
        p_better = _recommendation_value(rec, "p_better_than_recipe")
        gain = _recommendation_value(rec, "expected_gain")
        if p_better is None or gain is None:
            found = compare_to_recipe(
                model,
                rec.setpoint,
                rec.recipe,
                group=rec.group or group or None,
                n_draws=n_draws,
                random_seed=random_seed,
            )
            p_better = found["p_better"] if p_better is None else p_better
            gain = found["expected_gain"] if gain is None else gain
        inside = bool(rec.summary.loc["recommended"].get("within_support", True)) and not any(
            "outside the support" in w for w in rec.warnings
        )
        risk = main_risk(
            within_support=inside,
            diagnostics_ok=not diagnostics_failed(rec.diagnostics),
            p_better=p_better,
        )
        ranked = None
        if next_batches is not None and len(next_batches):
            keep = np.ones(len(next_batches), dtype=bool)
            for col, label in dict(group).items():
                if col in next_batches.columns:
                    keep &= next_batches[col].astype(str).to_numpy() == str(label)
            ranked = next_batches.loc[keep]
        run = setpoint_text(space, rec.setpoint)
        run_next = _next_text(space, rec, risk, ranked)
        if getattr(rec, "decision", "improve") == "recipe":
            # recommend() found no setpoint that beats the recipe with enough confidence:
            # the answer is the recipe; p_better is that of the best candidate it rejected
            run = f"keep the recipe: {run}"
            if risk == "none" or risk == "low P(better)":
                risk = "no confident improvement"
            run_next = _recipe_next_text(space, rec) or run_next
        rows.append(
            {
                "group": group_text(group),
                "run": run,
                "expected": float(rec.summary.loc["recommended", "expected_yield"]),
                "bad_case": float(rec.summary.loc["recommended", bad]),
                "recipe_expected": float(rec.summary.loc["recipe", "expected_yield"]),
                "recipe_bad_case": float(rec.summary.loc["recipe", bad]),
                "p_better": float(p_better),
                "expected_gain": float(gain),
                "main_risk": risk,
                "run_next": run_next,
            }
        )
    out = pd.DataFrame(rows)
    if space is not None:
        out.attrs.update(
            unit=space.response.unit,
            bad_case_level=10 if space.response.maximise else 90,
            direction=space.response.direction,
            response=space.response.label,
        )
    return out
