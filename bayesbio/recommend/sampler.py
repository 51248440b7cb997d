"""The one place that draws: predictive draws at setpoints with common random numbers.

Every search, table and decision in :mod:`bayesbio.recommend` gets its draws from an
:class:`Evaluator`, so candidates are always compared on the same posterior draws (and the
same new-batch noise once :meth:`Evaluator.calibrate_noise` has run): differences between
setpoints are differences of the model, not of the Monte Carlo.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from bayesbio.checks import make_rng
from bayesbio.models._tables import quiet_extrapolation
from bayesbio.recommend.transfer import group_slopes

if TYPE_CHECKING:
    from bayesbio.models.protocol import YieldModel
    from bayesbio.recommend.context import Context

_MAX_COLUMNS = 8192


def seed_pair(random_seed: int | np.random.Generator | None) -> tuple[np.random.Generator, int]:
    """Return a generator from ``random_seed`` and an integer seed drawn from it."""
    rng = make_rng(random_seed)
    return rng, int(rng.integers(2**31 - 1))


class Evaluator:
    """Predictive draws at setpoints, with common random numbers.

    Every call uses the same ``random_seed``, so the posterior draws are shared between calls.
    Execution noise: each setpoint is copied with ``K`` common offsets ``N(0, execution_sd)``;
    draw ``d`` reads copy ``d mod K``.

    New-batch noise is made common too (:meth:`calibrate_noise`): a model draws it afresh for
    every column, which would let a search chase noise. The residuals ``e = y - f`` of the
    model's own draws at a reference setpoint (same seed, with and without noise) are re-used
    at every setpoint, rescaled by ``(mean f(x) / mean f(ref)) ** b`` with ``b`` fitted across
    candidates (``b = 0``: additive noise, ``b = 1``: constant CV; fitted on the residuals'
    interquartile ranges, which heavy tails leave usable), and held within the response's
    declared limits.

    Transfer risk (``transfer_risk=True``, opt-in): where the model pools factor effects across
    groups, every draw is multiplied by the target group's own slope deviation
    (:func:`bayesbio.recommend.transfer.group_slopes`; one deviation per draw, common to every
    setpoint), so moving a group away from its own batches carries the risk that it responds
    unlike the groups the effect was learnt from.
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
        transfer_risk: bool = False,
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
        self.slopes = (
            group_slopes(model, ctx, n_draws=self.n_draws, seed=self.seed)
            if transfer_risk
            else None
        )

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
        y = y[np.arange(self.n_draws), :, pick]
        if self.slopes is not None:
            y = y * self.slopes.factor(points)
        return y

    def mean(self, points: np.ndarray) -> np.ndarray:
        """Return the model's point prediction (``model.predict``) at ``points``.

        The exact mean where a model has one (the forest's average over all trees, the
        posterior mean), without Monte Carlo error; execution offsets are not applied.
        """
        self.calls += 1
        with quiet_extrapolation():  # the recommendation says where it extrapolates
            return np.asarray(self.model.predict(self.ctx.frame(points)), dtype=float)

    def calibrate_noise(self, f: np.ndarray, y: np.ndarray) -> bool:
        """Fit the common-noise transplant from draws without (``f``) and with (``y``) noise.

        Returns False (and keeps the model's own noise) when the two sets of draws do not
        share their posterior draws (residuals strongly correlated with ``f``).
        """
        e = y - f
        sd_f = f.std(axis=0)
        sd_e = e.std(axis=0)
        usable = (sd_e > 0) & (sd_f > 0)
        if usable.any():
            fc = f[:, usable] - f[:, usable].mean(axis=0)
            ec = e[:, usable] - e[:, usable].mean(axis=0)
            corr = (fc * ec).mean(axis=0) / (sd_f[usable] * sd_e[usable])
            if np.median(corr) < -0.3:
                return False
        # spread by the interquartile range: under a heavy-tailed likelihood (Student-t with
        # nu near 1) the SD of the residuals is a few extreme draws
        spread = stats.iqr(e, axis=0)
        if not np.any(spread > 0):
            return False
        mean_f = f.mean(axis=0)
        power = 0.0
        fit = (spread > 0) & (mean_f > 0)
        if fit.sum() >= 3 and np.ptp(np.log(mean_f[fit])) > 1e-6:
            power = float(np.polyfit(np.log(mean_f[fit]), np.log(spread[fit]), 1)[0])
            power = float(np.clip(power, 0.0, 2.0))
        ref = int(np.argsort(spread)[len(spread) // 2])
        # the residuals as the model drew them, not centred: their mean is the noise's Monte
        # Carlo error under light tails and a few extreme draws under heavy ones, and
        # subtracting it would shift every quantile the objectives read
        self.noise_ref = e[:, ref].copy()
        self.noise_mean_ref = float(mean_f[ref]) if mean_f[ref] > 0 else 1.0
        self.noise_power = power if mean_f[ref] > 0 else 0.0
        return True

    def add_noise(self, f: np.ndarray) -> np.ndarray:
        """Add the common new-batch noise to draws without noise."""
        assert self.noise_ref is not None
        scale = np.ones(f.shape[1])
        if self.noise_power > 0:
            scale = (np.maximum(f.mean(axis=0), 1e-9) / self.noise_mean_ref) ** self.noise_power
        # held within the response's declared limits, as the model's own draws are: where a
        # draw's mean is below the reference's, its heavy lower tail would go below zero
        lo, hi = self.ctx.space.response.limits
        return np.clip(f + self.noise_ref[:, None] * scale[None, :], lo, hi)
