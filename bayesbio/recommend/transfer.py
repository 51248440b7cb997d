"""Transfer risk: the target group's own factor effects, where the model pools them.

A hierarchical model that pools factor effects across groups (varying slopes off, the
default below 20 batches per scale) predicts a 2,000 L vessel's response to a change of mixing
time from every scale's batches, with the uncertainty of the pooled effect alone. A
recommendation moves *one* group; whether that group responds as the others did is a risk the
pooled posterior does not carry (measured on the independent worlds: "improve" decisions
stated 95-98 % sure were truly better 72-77 % of the time; BENCHMARKS.md).

:func:`group_slopes` puts it back for the target group only: a linear deviation ``b`` of the
group's log-response per standardised unit of each factor, around the group's median setpoint,
with the model's own varying-slope prior (``tau_j ~ HalfNormal(slope_group_scale x sd(log
y))``, ``b_j ~ Normal(0, tau_j)``, the model's prior scales), conditioned
on the group's own batches: their residuals from the pooled fit, regressed on their setpoints
(batches the fit discounted as outliers or failures down-weighted; the scales ``tau``
resampled by how well they explain the residuals, then a conjugate Gaussian update of ``b``).
Far from the group's own batches the deviation keeps its prior spread; where the group's
batches show a slope the pooled fit missed, the deviation's mean follows them. Each posterior
draw of the model gets one draw of ``b`` (common to every setpoint), so contrasts with the
recipe carry it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from bayesbio.recommend.context import Context
    from bayesbio.space import ProcessSpace


@dataclass(frozen=True)
class GroupSlopes:
    """Draws of the target group's slope deviations (log-response per standardised unit).

    Attributes
    ----------
    space : ProcessSpace
        The model's process space (standardisation: operating range -> [-1, 1]).
    centre : numpy.ndarray
        ``(k,)`` the group's median setpoint, standardised: the deviation is 0 there.
    draws : numpy.ndarray
        ``(n_draws, k)`` one deviation per posterior draw.
    n_batches : int
        The group's batches the deviation was conditioned on.
    """

    space: ProcessSpace
    centre: np.ndarray
    draws: np.ndarray
    n_batches: int

    def describe(self) -> dict[str, Any]:
        """Return the settings record: batches conditioned on, the SD of each deviation.

        ``slope_sd`` is the SD over draws of each factor's deviation, in log-response per
        half operating range (about the fraction of yield at stake from the group's centre
        to the edge of the range).
        """
        sd = np.round(self.draws.std(axis=0), 4).tolist()
        return {
            "group_batches": self.n_batches,
            "slope_sd": dict(zip(self.space.factor_names, sd, strict=True)),
        }

    def factor(self, points: np.ndarray) -> np.ndarray:
        """Multiplicative factor ``exp(b_d . (z - centre))``, shape ``(n_draws, len(points))``."""
        dz = self.space.standardise(np.atleast_2d(points)) - self.centre
        return np.exp(self.draws @ dz.T)


def slope_posterior(
    dz: np.ndarray,
    residuals: np.ndarray,
    weights: np.ndarray,
    sigma: float,
    tau_scale: float,
    n_draws: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Posterior draws of a slope vector under a half-normal scale-mixture prior.

    Model: ``residuals ~ Normal(dz @ b, sigma / sqrt(weights))``, ``b_j ~ Normal(0, tau_j)``,
    ``tau_j ~ HalfNormal(tau_scale)``. The scales are drawn from their prior and resampled in
    proportion to the marginal likelihood of the residuals (importance resampling: nearly
    uniform when the data say little about the slopes, away from 0 when they show one); each
    ``b`` is then drawn from its Gaussian posterior given its ``tau``.

    Parameters
    ----------
    dz : numpy.ndarray
        ``(n, k)`` setpoints relative to the centre (standardised).
    residuals : numpy.ndarray
        ``(n,)`` log-scale residuals.
    weights : numpy.ndarray
        ``(n,)`` observation weights in [0, 1] (0 drops a batch).
    sigma : float
        Noise SD of a residual with weight 1.
    tau_scale : float
        Scale of the half-normal prior of each factor's deviation SD.
    n_draws : int
        Number of draws.
    rng : numpy.random.Generator
        Source of the draws.

    Returns
    -------
    numpy.ndarray
        ``(n_draws, k)``.
    """
    k = dz.shape[1]
    if k == 0:
        return np.zeros((n_draws, 0))
    tau = np.maximum(np.abs(rng.standard_normal((n_draws, k))) * tau_scale, 1e-12)
    wz = dz * weights[:, None]
    info = wz.T @ dz / sigma**2  # (k, k): the data's precision
    score = wz.T @ residuals / sigma**2  # (k,)

    prec = info[None, :, :] + np.einsum("dj,jk->djk", 1.0 / tau**2, np.eye(k))
    chol = np.linalg.cholesky(prec)
    mean = np.linalg.solve(prec, np.broadcast_to(score, tau.shape)[..., None])[..., 0]
    # log p(residuals | tau) up to a constant: -log|T|/2 - log|P|/2 + s' P^-1 s / 2
    log_w = (
        -np.log(tau).sum(axis=1)
        - np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
        + 0.5 * mean @ score
    )
    prob = np.exp(log_w - log_w.max())
    pick = rng.choice(n_draws, size=n_draws, p=prob / prob.sum())
    chol, mean = chol[pick], mean[pick]
    # b = mean + L^-T eps has covariance (L L^T)^-1 = P^-1
    eps = rng.standard_normal((n_draws, k))
    return mean + np.linalg.solve(np.swapaxes(chol, 1, 2), eps[..., None])[..., 0]


def _batch_weights(model: Any, index: pd.Index) -> np.ndarray:
    """How much the fit trusts each batch: its Student-t weight or 1 - P(failed)."""
    w = np.ones(len(index))
    weight = getattr(model, "batch_weight_", None)
    if weight is not None:
        w = w * weight.reindex(index).fillna(1.0).to_numpy(dtype=float)
    failed = getattr(model, "failure_prob_", None)
    if failed is not None:
        w = w * (1.0 - failed.reindex(index).fillna(0.0).to_numpy(dtype=float))
    return np.clip(w, 0.0, 1.0)


def group_slopes(model: Any, ctx: Context, *, n_draws: int, seed: int) -> GroupSlopes | None:
    """Slope deviations of the target group, or None where the model needs none.

    None unless ``model`` is a fitted Bayesian model (``posterior_noise_sd``) that pools
    factor effects (no varying slopes: ``spec_["primary"]`` is None), the target is an
    existing group with batches of its own, other groups' batches are in the training data
    (something was transferred), and the group's batches have positive responses (the
    model's log scale).
    """
    spec = getattr(model, "spec_", None)
    noise_sd = getattr(model, "posterior_noise_sd", None)
    if not isinstance(spec, dict) or noise_sd is None or spec.get("primary"):
        return None
    if ctx.kind != "existing" or not ctx.in_group.any() or ctx.in_group.all():
        return None
    space = ctx.space
    own = ctx.table.loc[ctx.in_group]
    y = pd.to_numeric(own[space.response.name], errors="coerce").to_numpy(dtype=float)
    usable = np.isfinite(y) & (y > 0)
    sigma = float(noise_sd())
    slope_scale = float(spec.get("priors", {}).get("slope_group_scale", np.nan))
    tau_scale = slope_scale * float(spec.get("prior_scale", np.nan))
    if not usable.any() or not (sigma > 0) or not (tau_scale > 0):
        return None
    own, y = own[usable], y[usable]
    z = space.standardise(own)
    centre = np.median(z, axis=0)
    residuals = np.log(y) - np.log(np.asarray(model.predict(own), dtype=float))
    weights = _batch_weights(model, own.index)
    if weights.sum() > 0:  # the group's own level is the model's intercept, not a slope
        residuals = residuals - np.sum(weights * residuals) / weights.sum()
    rng = np.random.default_rng([int(seed), 7])
    draws = slope_posterior(z - centre, residuals, weights, sigma, tau_scale, n_draws, rng)
    return GroupSlopes(space, centre, draws, len(own))
