"""Acquisition: the score a search maximises, from an objective, the recipe and the support.

:class:`SafeImprovement` scores setpoints by an :class:`~bayesbio.recommend.objectives.
Objective` and folds in the two rules a recommendation must obey:

* *support*: outside the guard's limits the score is ``-1e9`` minus how far outside, so a
  search started outside walks back in;
* *safe improvement* (``confidence > 0``): a supported setpoint whose ``P(mean response
  better than at the recipe | data)`` is short of ``confidence`` scores ``-1e6 + P``, below
  every safe setpoint and rising towards the threshold.

``P(better)`` is computed from the *same* posterior draws at the setpoint and the recipe
(common random numbers), so it is the probability of the difference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bayesbio.recommend.context import Context
from bayesbio.recommend.objectives import Objective
from bayesbio.recommend.sampler import Evaluator
from bayesbio.recommend.support import penalty

UNSAFE = -1e6  # score of a supported setpoint short of the confidence (plus its P)
INFEASIBLE = -1e9  # score of an unsupported setpoint (minus how far outside)


#: Loss against the recipe's mean response a proposed batch may risk (Campaign's ``delta``).
SAFE_LOSS = 0.2
#: Probability with which a proposed batch must stay within that loss (Campaign's
#: ``safety_prob``; the study's "worth a batch" asks the same of a next-batch candidate).
SAFETY_PROB = 0.9


def p_better(sign: float, f: np.ndarray, f_ref: np.ndarray) -> np.ndarray:
    """Share of draws in which ``f`` beats ``f_ref`` in the response's direction."""
    return (sign * (f - f_ref) > 0).mean(axis=0)


def p_safe(sign: float, y: np.ndarray, ref: np.ndarray, delta: float = SAFE_LOSS) -> np.ndarray:
    """Share of draws in which a batch ``y`` is at most ``delta`` worse than ``ref``.

    ``y`` has one column per setpoint, ``ref`` one value per draw (the recipe's mean
    response); a batch passes at ``>= (1 - delta) x ref`` for a response to maximise and at
    ``<= (1 + delta) x ref`` for one to minimise.
    """
    floor = (1.0 - delta) * ref if sign > 0 else (1.0 + delta) * ref
    return (sign * (y - floor[:, None]) >= 0).mean(axis=0)


@dataclass
class SafeImprovement:
    """Score of setpoints: objective, gated by P(better than the recipe), penalised outside.

    Parameters
    ----------
    ev : Evaluator
        Draws with common random numbers.
    ctx : Context
        Target group, support and search box.
    objective : Objective
        What to maximise.
    recipe : numpy.ndarray
        The recipe, shape ``(1, k)``.
    ratio : callable
        The model-based support measure (:func:`~bayesbio.recommend.support.sd_ratio_fn`).
    noise : bool
        Score the draws of a new batch (with the common new-batch noise) instead of the mean.
    confidence : float
        Required P(better than the recipe); 0 switches the gate off.
    """

    ev: Evaluator
    ctx: Context
    objective: Objective
    recipe: np.ndarray
    ratio: Callable[[np.ndarray], np.ndarray]
    noise: bool
    confidence: float = 0.0

    def from_draws(
        self, points: np.ndarray, f: np.ndarray, f_ref: np.ndarray, y: np.ndarray
    ) -> np.ndarray:
        """Score ``points`` from their mean draws ``f``, the recipe's ``f_ref`` and ``y``.

        ``y`` are the draws the objective reads (``f`` itself without noise).
        """
        values = self.objective.score(y)
        bad = penalty(self.ctx, points, self.ratio(f))
        if self.confidence:
            p = p_better(self.ctx.sign, f, f_ref)
            values = np.where(p >= self.confidence, values, UNSAFE + p)
        return np.where(bad > 0, INFEASIBLE - bad, values)

    def objective_draws(self, points: np.ndarray, f: np.ndarray) -> np.ndarray:
        """Return the draws the objective reads at ``points``, given their mean draws ``f``.

        ``f`` itself without noise; with noise the common new-batch noise once calibrated
        (:meth:`~bayesbio.recommend.sampler.Evaluator.calibrate_noise`), else the model's own.
        """
        if not self.noise:
            return f
        if self.ev.noise_ref is not None:
            return self.ev.add_noise(f)
        return self.ev.raw(points, noise=True)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Score ``points`` (one model call for the mean, one more for the model's own noise)."""
        f = self.ev.raw(np.vstack([points, self.recipe]), noise=False)
        f, f_ref = f[:, :-1], f[:, -1:]
        return self.from_draws(points, f, f_ref, self.objective_draws(points, f))
