"""Objectives: how the predictive draws at a setpoint become one number to optimise.

For a setpoint the model gives ``S`` predictive draws ``y_1..y_S``; an :class:`Objective`
turns each column of draws into a score to *maximise*:

* ``"mean"`` -- expected response;
* ``"quantile"`` -- the ``risk`` quantile (default the 10th percentile of a new batch);
* ``"prob_spec"`` -- ``P(y >= spec)``;
* ``"cvar"`` (default) -- the mean of the worst ``risk`` fraction of draws (lower-tail
  conditional value at risk, a risk-averse expected utility).

For a response the space declares ``direction = "minimise"`` (an impurity, a cost) every
objective turns around through a sign: the mean is minimised, ``"quantile"`` minimises the
upper ``1 - risk`` quantile, ``"prob_spec"`` maximises ``P(y <= spec)`` and ``"cvar"``
minimises the mean of the highest ``risk`` fraction of draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from bayesbio.recommend.context import space_or_default
from bayesbio.space import ProcessSpace

OBJECTIVES: tuple[str, ...] = ("mean", "quantile", "prob_spec", "cvar")
QUANTILE_LEVELS: tuple[float, ...] = (0.05, 0.1, 0.5, 0.9, 0.95)


@dataclass(frozen=True)
class Objective:
    """An objective over predictive draws, for a response to maximise or minimise.

    Parameters
    ----------
    name : {"mean", "quantile", "prob_spec", "cvar"}
        What to optimise (see the module docstring).
    risk : float
        Quantile level (``"quantile"``) or tail fraction (``"cvar"``).
    spec : float or None
        Specification for ``"prob_spec"``.
    sign : float, default 1.0
        +1 for a response to maximise, -1 for one to minimise.
    smooth : float or None
        Width of a smooth step for ``"prob_spec"`` in searches (keeps a search off the
        plateaus of a count of draws); reported values never smooth.
    """

    name: str
    risk: float
    spec: float | None
    sign: float = 1.0
    smooth: float | None = None

    def score(self, draws: np.ndarray) -> np.ndarray:
        """Score per column of ``draws`` (to maximise; smoothed for a search)."""
        return score_values(
            draws, self.name, spec=self.spec, risk=self.risk, smooth=self.smooth, sign=self.sign
        )

    def value(self, draws: np.ndarray) -> np.ndarray:
        """Value per column in the response's unit (a probability for ``"prob_spec"``)."""
        return objective_values(draws, self.name, spec=self.spec, risk=self.risk, sign=self.sign)

    def describe(self, space: ProcessSpace | None = None) -> str:
        """Describe the objective in words (see :func:`describe_objective`)."""
        return describe_objective(self.name, self.risk, self.spec, space)


def describe_objective(
    objective: str, risk: float, spec: float | None, space: ProcessSpace | None = None
) -> str:
    """Describe an objective in words for the space's response and direction.

    >>> describe_objective("cvar", 0.1, None)
    'maximise the mean of the lowest 10 % of yield draws (CVaR)'
    """
    space = space_or_default(space)
    r = space.response
    unit = f" {r.unit}" if r.unit else ""
    pct = f"{100 * risk:g} %"
    if r.maximise:
        texts = {
            "mean": f"maximise the expected {r.noun}",
            "quantile": f"maximise the {100 * risk:g}th percentile of {r.noun}",
            "cvar": f"maximise the mean of the lowest {pct} of {r.noun} draws (CVaR)",
            "prob_spec": f"maximise P({r.noun} >= {spec:g}{unit})" if spec is not None else "",
        }
    else:
        texts = {
            "mean": f"minimise the expected {r.noun}",
            "quantile": f"minimise the {100 * (1 - risk):g}th percentile of {r.noun}",
            "cvar": f"minimise the mean of the highest {pct} of {r.noun} draws (CVaR)",
            "prob_spec": f"maximise P({r.noun} <= {spec:g}{unit})" if spec is not None else "",
        }
    return texts.get(objective, objective)


def check_spec(spec: Any, objective: str | None, space: ProcessSpace) -> float | None:
    """Return ``spec`` as a float within the response's limits (None when not given).

    Raises a ValueError naming the response and its unit for a non-number, a value outside
    the possible responses, or a missing spec with ``objective="prob_spec"``.
    """
    r = space.response
    article = "an" if r.noun[:1].lower() in "aeiou" else "a"
    what = f"{article} {r.noun} in {r.unit}" if r.unit else f"{article} {r.noun} value"
    if spec is None:
        if objective == "prob_spec":
            bound = "minimum" if r.maximise else "maximum"
            raise ValueError(
                f"spec is required for objective='prob_spec': pass spec=VALUE, the {bound} "
                f"acceptable {r.noun} in {r.unit}"
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
            f"spec = {spec!r} is outside the possible {r.noun} values ({lo:g} to {hi:g} {r.unit})"
        )
    return value


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
    draws: np.ndarray,
    *,
    spec: float | None,
    risk: float,
    sign: float = 1.0,
    mean_draws: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Return the expected response, quantiles, adverse-tail CVaR and P(meet spec) per column.

    ``expected_yield`` and ``sd`` are the posterior mean and SD of the expected response,
    read from ``mean_draws`` (draws without new-batch noise; default ``draws``): a new
    batch's mean under a heavy-tailed (Student-t) likelihood is dominated by a few extreme
    draws, or does not exist, so it is not averaged from ``draws``. The quantiles, ``cvar``
    (the mean of the worst ``risk`` fraction of ``draws``: lowest when maximising, highest
    when minimising) and ``prob_spec`` (``P(y >= spec)`` or ``P(y <= spec)``) read ``draws``.
    """
    f = draws if mean_draws is None else mean_draws
    q = np.quantile(draws, QUANTILE_LEVELS, axis=0)
    out = {"expected_yield": f.mean(axis=0), "sd": f.std(axis=0)}
    for level, row in zip(QUANTILE_LEVELS, q, strict=True):
        out[f"q{round(100 * level):02d}"] = row
    out["cvar"] = objective_values(draws, "cvar", spec=None, risk=risk, sign=sign)
    out["prob_spec"] = (
        objective_values(draws, "prob_spec", spec=spec, risk=risk, sign=sign)
        if spec is not None
        else np.full(draws.shape[1], np.nan)
    )
    return out
