"""The mean optimum of any fitted model: the baseline recommender on the same machinery.

:func:`argmax_setpoint` is the *mean objective without noise*, searched like
:func:`~bayesbio.recommend.recommend` searches its objectives: the target is resolved by
:func:`~bayesbio.recommend.context.build_context` (group columns not given take their most
frequent level), the candidates are those of :func:`~bayesbio.recommend.search.candidates`
(recipe, the group's setpoints, a Latin hypercube) and the refinement is
:func:`~bayesbio.recommend.search.local_search`. There is no support guard and no risk: it
is what "go where the model's mean is best" recommends, for the Bayesian model and the
baselines alike. The mean is the model's point prediction (``model.predict``), so a model
needs no predictive draws here. :func:`optimal_range` gives the ranges around it within a
tolerance of the best.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bayesbio.checks import check_int, make_rng
from bayesbio.recommend.constraints import Constraints
from bayesbio.recommend.context import Context, build_context, model_space
from bayesbio.recommend.sampler import Evaluator, seed_pair
from bayesbio.recommend.search import candidates, distinct_top, local_search

if TYPE_CHECKING:
    from bayesbio.models.protocol import YieldModel

__all__ = ["argmax_setpoint", "optimal_range"]


def _mean_context(
    model: YieldModel | Any,
    group: Mapping[str, Any] | None,
    bounds: Mapping[str, tuple[float, float]] | None,
    fixed: Mapping[str, float] | None,
) -> Context:
    """Resolve the target of a mean search: missing group levels filled, no guard."""
    space = model_space(model)
    if bounds is not None and not isinstance(bounds, Mapping):
        raise ValueError(
            f"bounds must be a mapping from factor names {list(space.factor_names)} to "
            f"(low, high), got {type(bounds).__name__}"
        )
    # a response entry (as in space.bounds when the response has a typical range) is ignored
    bounds = {k: v for k, v in (bounds or {}).items() if k != space.response.name}
    constraints = Constraints(bounds=bounds, fixed=fixed, guard=False)
    return build_context(
        model, group, "auto", constraints, fill="overall", prefix="", method="predict"
    )


def argmax_setpoint(
    model: YieldModel | Any,
    *,
    group: Mapping[str, Any] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    fixed: Mapping[str, float] | None = None,
    n_candidates: int = 4096,
    n_starts: int = 16,
    random_seed: int | np.random.Generator | None = None,
) -> pd.Series:
    """Setpoint with the best mean predicted response within the operating ranges.

    The best is the largest mean prediction, or the smallest for a response the model's space
    declares to minimise. The recipe (the group's median setpoint), the group's own setpoints
    and ``n_candidates`` Latin-hypercube points are evaluated in one call; a vectorised
    pattern search from the ``n_starts`` best distinct candidates and a Nelder-Mead polish
    refine them (no gradients, so it also works for the piecewise-constant forest), and the
    best point evaluated is returned. Many starts matter for a forest, whose mean is a
    patchwork of plateaus (on the independent worlds, 16 starts found as high a forest mean
    as a differential evolution over 2,900 points; 3 starts fell short in two thirds of the
    cases).

    Parameters
    ----------
    model : estimator
        A fitted model following the protocol (``predict``, ``training_table_``); factors,
        operating ranges and the response direction come from ``model.space_``.
    group : mapping of str to str, optional
        Group levels (e.g. ``{"scale": "2000L", "site": "B"}``); group columns not given take
        their most common training level. An unknown column or a label not seen in training
        is a ValueError naming the known ones.
    bounds : mapping of str to (float, float), optional
        Search range per factor, intersected with its operating range (``space.bounds``) and
        within its physical limits; factors not named keep their operating range.
    fixed : mapping of str to float, optional
        Factors held at a value (added to those the space fixes).
    n_candidates : int, default 4096
        Latin-hypercube candidates of the first stage.
    n_starts : int, default 16
        Distinct best candidates (at least 0.1 of the ranges apart) refined by the local
        search.
    random_seed : int, numpy.random.Generator or None, default None
        Seed for the candidates and the refinement; the same seed gives the same setpoint.

    Returns
    -------
    pandas.Series
        The factors (domain units) and the response (predicted mean, named
        ``space.response.name``); ``attrs["group"]`` holds the group levels used,
        ``attrs["direction"]`` the response direction.
    """
    n_candidates = check_int("n_candidates", n_candidates, minimum=1)
    n_starts = check_int("n_starts", n_starts, minimum=1)
    ctx = _mean_context(model, group, bounds, fixed)
    rng, seed = seed_pair(random_seed)
    ev = Evaluator(model, ctx, n_draws=1, seed=seed, execution_sd=np.zeros(ctx.space.k))

    def score(points: np.ndarray) -> np.ndarray:
        return ctx.sign * ev.mean(points)

    cands = candidates(ctx, ctx.clip(ctx.recipe[None]), n_candidates, rng)
    final = cands
    if len(ctx.res.free):
        top = distinct_top(ctx.to_unit(cands), score(cands), n_starts, 0.1)
        refined = local_search(score, ctx, cands[top], rng, iterations=8, n_local=32)
        final = np.vstack([refined, cands[top]])
    values = score(final)
    i = int(np.argmax(values))
    space = ctx.space
    out = pd.Series(dict(zip(ctx.factors, map(float, final[i]), strict=True)), name="setpoint")
    out[space.response.name] = ctx.sign * float(values[i])
    out.attrs["group"] = dict(ctx.group)
    out.attrs["direction"] = space.response.direction
    return out


def optimal_range(
    model: YieldModel | Any,
    *,
    group: Mapping[str, Any] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    fixed: Mapping[str, float] | None = None,
    tolerance: float = 0.05,
    resolution: int = 41,
    n_random: int = 4000,
    random_seed: int | None = None,
) -> pd.DataFrame:
    """Ranges of each factor where the predicted response is within ``tolerance`` of the best.

    Parameters
    ----------
    model : estimator
        A fitted model following the protocol (factors and direction from ``model.space_``).
    group : mapping of str to str, optional
        Group levels (see :func:`argmax_setpoint`).
    bounds : mapping of str to (float, float), optional
        Search range per factor (see :func:`argmax_setpoint`).
    fixed : mapping of str to float, optional
        Factors held at a value.
    tolerance : float, default 0.05
        Relative shortfall allowed: response >= (1 - tolerance) x best predicted response
        when maximising, <= (1 + tolerance) x best when minimising (relative to ``|best|``).
    resolution : int, default 41
        Points of each one-factor profile.
    n_random : int, default 4000
        Uniform points used for the joint region.
    random_seed : int, optional
        Seed (argmax search and joint-region points).

    Returns
    -------
    pandas.DataFrame
        Indexed by factor (``parameter``): ``optimum``; ``low``/``high``, the contiguous range
        along the profile through the optimum (other factors at their optimum);
        ``joint_low``/``joint_high``, the extent of all sampled setpoints within tolerance
        (other factors free); ``unit``. ``attrs`` hold ``best`` (the best predicted mean;
        also as ``max_yield``), ``threshold``, ``direction`` and ``group``.
    """
    if not 0.0 <= tolerance < 1.0:
        raise ValueError(f"tolerance must be in [0, 1); got {tolerance!r}")
    ctx = _mean_context(model, group, bounds, fixed)
    space, names, sgn = ctx.space, ctx.factors, ctx.sign
    best = argmax_setpoint(
        model, group=ctx.group, bounds=bounds, fixed=fixed, random_seed=random_seed
    )
    ev = Evaluator(model, ctx, n_draws=1, seed=0, execution_sd=np.zeros(space.k))
    ybest = float(best[space.response.name])
    threshold = ybest - sgn * tolerance * abs(ybest)
    opt = best[names].to_numpy(dtype=float)
    rng = make_rng(random_seed)
    lo, hi = ctx.res.lo, ctx.res.hi
    joint = np.tile(opt, (n_random, 1))
    for j in ctx.res.free:
        joint[:, j] = rng.uniform(lo[j], hi[j], size=n_random)
    inside = joint[sgn * ev.mean(joint) >= sgn * threshold]
    rows = []
    for j, p in enumerate(names):
        if j in ctx.res.fixed:
            low = high = ctx.res.fixed[j]
        else:
            grid = np.unique(np.append(np.linspace(lo[j], hi[j], resolution), opt[j]))
            points = np.tile(opt, (grid.size, 1))
            points[:, j] = grid
            ok = sgn * ev.mean(points) >= sgn * threshold - 1e-12
            k = int(np.argmin(np.abs(grid - opt[j])))
            a = b = k
            while a > 0 and ok[a - 1]:
                a -= 1
            while b < grid.size - 1 and ok[b + 1]:
                b += 1
            low, high = float(grid[a]), float(grid[b])
        jl = float(inside[:, j].min()) if len(inside) else low
        jh = float(inside[:, j].max()) if len(inside) else high
        rows.append(
            {
                "parameter": p,
                "optimum": opt[j],
                "low": low,
                "high": high,
                "joint_low": min(jl, low),
                "joint_high": max(jh, high),
                "unit": space.units[p],
            }
        )
    out = pd.DataFrame(rows).set_index("parameter")
    out.attrs.update(
        best=ybest,
        max_yield=ybest,
        threshold=threshold,
        direction=space.response.direction,
        group=dict(ctx.group),
    )
    return out
