"""Where to run the next batch: the value of information of one more batch at a candidate.

:func:`next_batches` ranks candidate setpoints by the expected reduction in the posterior
expected regret of the decision taken afterwards (a knowledge-gradient approximation from the
posterior draws alone).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from bayesbio.checks import check_int
from bayesbio.recommend.acquisition import p_better, p_safe
from bayesbio.recommend.constraints import Constraints
from bayesbio.recommend.context import build_context, validate_setpoints
from bayesbio.recommend.sampler import Evaluator, seed_pair
from bayesbio.recommend.search import lhs
from bayesbio.recommend.support import feasible

if TYPE_CHECKING:
    from bayesbio.models.protocol import YieldModel


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
        estimated per candidate from the model's new-batch noise on the same posterior draws
        (draws with noise minus draws without), as its interquartile range / 1.349 (the SD
        for normal noise; robust to the heavy tails of a Student-t likelihood).
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
        sample size of the importance weights), and the risk of the experiment itself:
        ``p_better_than_recipe`` (of the mean response there) and ``p_safe``, the probability
        that a batch there reaches 0.8 x the recipe's mean response (at most 1.2 x for a
        response to minimise; the safety rule of :class:`~bayesbio.recommend.Campaign`): an
        informative batch may be a costly one. ``attrs["current_expected_regret"]`` holds the
        regret of deciding now (over the decision set valued here).

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
    rng, seed = seed_pair(random_seed)
    ev = Evaluator(model, ctx, n_draws=n_draws, seed=seed, execution_sd=np.zeros(space.k))
    d = len(ctx.res.free)
    decisions = ctx.to_points(lhs(n_decisions, d, rng)) if d else ctx.clip(ctx.recipe[None])
    decisions = np.vstack([ctx.clip(ctx.recipe[None]), decisions])
    ok = feasible(ctx, decisions)
    if ok.any():
        decisions = decisions[ok]
    cand = cand_table[ctx.factors].to_numpy(dtype=float)
    recipe = ctx.clip(ctx.recipe[None])
    f = ev.raw(np.vstack([decisions, cand, recipe]), noise=False)
    f_dec, f_cand = ctx.sign * f[:, : len(decisions)], f[:, len(decisions) : -1]
    f_recipe = f[:, -1]
    y_cand = ev.raw(cand, noise=True)
    if noise_sd is None:
        # the new-batch noise of the same posterior draws, its SD read from the interquartile
        # range (IQR / 1.349, the SD of a normal): under a heavy-tailed likelihood the plain
        # SD is a few extreme draws and would make every observation look uninformative
        e = y_cand - f_cand
        robust = stats.iqr(e, axis=0, scale="normal")
        floor = 1e-3 * np.abs(f_cand.mean(axis=0)) + 1e-6
        sigma = np.maximum(robust, floor)
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
    # the risk of the experiment itself, as a Campaign judges it (its default delta)
    out["p_better_than_recipe"] = p_better(ctx.sign, f_cand, f_recipe[:, None])
    out["p_safe"] = p_safe(ctx.sign, y_cand, f_recipe)
    out = out.sort_values("expected_regret_reduction", ascending=False, kind="stable")
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    out = out.head(k)
    out.attrs["current_expected_regret"] = current
    out.attrs["units"] = space.response.unit
    out.attrs["direction"] = space.response.direction
    return out
