"""Lack of fit: a model-discrepancy field estimated from near-replicate batches (internal).

A response surface that cannot follow the true response (a narrow ridge, a kink, a
scale-specific optimum) does not show it in its posterior of the mean: the misfit goes into
the residual noise ``sigma``, which is independent from batch to batch, so the posterior of
the *mean* response, and with it every difference between two setpoints, stays as narrow as
if the surface were right. Classical response-surface methodology separates the two with
replicates (the lack-of-fit test: residual variance against *pure error*; Box & Draper 2007,
ch. 3). Plant histories hold near-replicates (batches of one group run at almost the same
setpoints, usually the recipe), so the same split is available here:

* ``pure error`` -- from pairs of batches of the same group labels whose standardised
  setpoints lie within :data:`REPLICATE_RADIUS` of each other: half the squared
  log-yield difference of a pair estimates ``sigma_pure**2``. The median (robust to a failed
  batch) is used, with its 90 % upper confidence bound (chi-square with one degree of freedom
  per pair), so that a chance low estimate does not invent misfit.
* ``discrepancy amplitude`` -- ``s**2 = max(0, sigma_model**2 - upper(sigma_pure)**2)``:
  the residual variance that pure error cannot explain. Zero (no field) when the surface
  fits, or when the data hold fewer than :data:`MIN_PAIRS` near-replicate pairs (nothing to
  test against: the model is used as it is).
* ``the field`` -- a Gaussian process ``delta(z)`` with squared-exponential kernel of amplitude
  ``s`` over the standardised factors, conditioned on the batches' residuals (Kennedy &
  O'Hagan 2001): near batches the surface is corrected towards them, away from them the
  field adds ``s`` of uncertainty to the mean response, and a difference between two distant
  setpoints carries ``2 s**2`` more variance than between two close ones. The length scale is
  chosen by marginal likelihood on a grid. Draws are functions (random Fourier features,
  Rahimi & Recht 2007, conditioned pathwise, Wilson et al. 2020), so the same draw is the same
  function in every call: differences between setpoints computed in separate calls with one
  seed are consistent.

References
----------
Box, G. E. P. & Draper, N. R. (2007). *Response Surfaces, Mixtures, and Ridge Analyses*,
2nd ed. Wiley.

Kennedy, M. C. & O'Hagan, A. (2001). Bayesian calibration of computer models. *Journal of
the Royal Statistical Society B* 63, 425-464.

Rahimi, A. & Recht, B. (2007). Random features for large-scale kernel machines. *NeurIPS* 20.

Wilson, J. T., Borovitskiy, V., Terenin, A., Mostowsky, P. & Deisenroth, M. P. (2020).
Efficiently sampling functions from Gaussian process posteriors. *ICML* 2020.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg, stats
from scipy.spatial import cKDTree

#: Standardised distance (operating half-widths, Euclidean over the factors) within which two
#: batches of the same group count as near-replicates.
REPLICATE_RADIUS = 0.2
#: Fewer near-replicate pairs than this: no lack-of-fit estimate (no field).
MIN_PAIRS = 4
#: Confidence of the upper bound on pure error.
PURE_ERROR_CONFIDENCE = 0.9
#: Length scales tried (standardised units) for the field's kernel.
LENGTH_SCALES = (0.1, 0.15, 0.25, 0.4, 0.6, 1.0)
#: Batches used to condition the field (a random subset above this).
MAX_ROWS = 1000
#: Random Fourier features per draw.
N_FEATURES = 128
#: Residuals are clipped at this many model sigmas (a failed batch is not a surface).
CLIP_SIGMAS = 3.0
_MEDIAN_CHI2_1 = stats.chi2.ppf(0.5, 1)


def pure_error(z: np.ndarray, logy: np.ndarray, labels: np.ndarray) -> tuple[float, int]:
    """Return the robust pure-error SD of log-yield and the number of near-replicate pairs.

    Parameters
    ----------
    z : numpy.ndarray
        ``(n, k)`` standardised setpoints.
    logy : numpy.ndarray
        ``(n,)`` log responses.
    labels : numpy.ndarray
        ``(n,)`` group keys (one per batch, e.g. an integer per combination of group labels);
        pairs are formed within a key only.

    Returns
    -------
    tuple of (float, int)
        ``sqrt(median(d**2) / (2 * median(chi2_1)))`` over the pairs ``d`` (NaN without
        pairs) and the number of pairs. Each batch is paired with its nearest neighbour of
        the same key within :data:`REPLICATE_RADIUS`, each pair counted once.
    """
    pairs: set[tuple[int, int]] = set()
    for key in np.unique(labels):
        idx = np.flatnonzero(labels == key)
        if len(idx) < 2:
            continue
        # nearest other batch of the group (k-d tree: no n x n distance matrix)
        dist, near = cKDTree(z[idx]).query(z[idx], k=2)
        for i, (d, j) in enumerate(zip(dist[:, 1], near[:, 1], strict=True)):
            j = near[i, 0] if j == i else j  # an exact duplicate may come back first
            if d <= REPLICATE_RADIUS:
                pairs.add((min(idx[i], idx[j]), max(idx[i], idx[j])))
    if not pairs:
        return float("nan"), 0
    a, b = np.array(sorted(pairs)).T
    d2 = (logy[a] - logy[b]) ** 2
    return float(np.sqrt(np.median(d2) / (2.0 * _MEDIAN_CHI2_1))), len(pairs)


def upper_pure_error(sd: float, n_pairs: int) -> float:
    """Upper :data:`PURE_ERROR_CONFIDENCE` bound of the pure-error SD from ``n_pairs`` pairs."""
    return float(sd * np.sqrt(n_pairs / stats.chi2.ppf(1.0 - PURE_ERROR_CONFIDENCE, n_pairs)))


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T, 0.0)


@dataclass
class Discrepancy:
    """A fitted discrepancy field on the log scale (see the module docstring).

    Attributes
    ----------
    amplitude : float
        SD ``s`` of the field a priori (log units).
    length_scale : float
        Kernel length scale (standardised units).
    noise : float
        Pure-error SD used when conditioning (log units).
    model_sigma : float
        The model's residual SD it was compared with.
    n_pairs : int
        Near-replicate pairs behind the pure-error estimate.
    z : numpy.ndarray
        ``(n, k)`` standardised setpoints it is conditioned on.
    resid : numpy.ndarray
        ``(n,)`` clipped residuals it is conditioned on.
    """

    amplitude: float
    length_scale: float
    noise: float
    model_sigma: float
    n_pairs: int
    z: np.ndarray
    resid: np.ndarray

    def __post_init__(self) -> None:
        k = self._kernel(self.z, self.z) + self.noise**2 * np.eye(len(self.z))
        self._chol = linalg.cho_factor(k, lower=True)
        self._alpha = linalg.cho_solve(self._chol, self.resid)

    @property
    def noise_factor(self) -> float:
        """Share of the model's noise SD left to batch noise: ``sqrt(1 - s**2 / sigma**2)``."""
        return float(np.sqrt(max(0.0, 1.0 - self.amplitude**2 / self.model_sigma**2)))

    def _kernel(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self.amplitude**2 * np.exp(-0.5 * _sq_dist(a, b) / self.length_scale**2)

    def mean_var(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and variance of the field at ``z (m, k)``."""
        ks = self._kernel(z, self.z)
        v = linalg.cho_solve(self._chol, ks.T)
        var = np.maximum(self.amplitude**2 - np.einsum("ij,ji->i", ks, v), 0.0)
        return ks @ self._alpha, var

    def sampler(self, n_draws: int, rng: np.random.Generator) -> FieldDraws:
        """Draw ``n_draws`` functions from the conditioned field (evaluate them later)."""
        k = self.z.shape[1]
        omega = rng.standard_normal((N_FEATURES, k)) / self.length_scale
        phase = rng.uniform(0.0, 2.0 * np.pi, N_FEATURES)
        weights = rng.standard_normal((n_draws, N_FEATURES)) * (
            self.amplitude * np.sqrt(2.0 / N_FEATURES)
        )
        eps = rng.standard_normal((n_draws, len(self.z))) * self.noise
        prior_at_data = weights @ np.cos(omega @ self.z.T + phase[:, None])
        update = linalg.cho_solve(self._chol, (self.resid[None, :] - prior_at_data - eps).T)
        return FieldDraws(self, omega, phase, weights, update)


@dataclass
class FieldDraws:
    """Function draws of a :class:`Discrepancy` (pathwise conditioned random features)."""

    field: Discrepancy
    omega: np.ndarray
    phase: np.ndarray
    weights: np.ndarray
    update: np.ndarray

    def __call__(self, z: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Values ``(n_draws, m)`` at ``z (m, k)`` (draws ``rows`` only when given)."""
        w = self.weights if rows is None else self.weights[rows]
        u = self.update if rows is None else self.update[:, rows]
        prior = w @ np.cos(self.omega @ z.T + self.phase[:, None])
        return prior + (self.field._kernel(z, self.field.z) @ u).T


def excess_amplitude(model_sigma: float, pure_sd: float, n_pairs: int) -> float:
    """SD of the residuals beyond pure error: ``sqrt(sigma**2 - upper(pure)**2)``, else 0.

    Zero with fewer than :data:`MIN_PAIRS` near-replicate pairs (no test) or when the
    residual SD is within the upper bound of pure error.
    """
    if n_pairs < MIN_PAIRS or not np.isfinite(pure_sd):
        return 0.0
    excess = model_sigma**2 - upper_pure_error(pure_sd, n_pairs) ** 2
    return float(np.sqrt(excess)) if excess > 0.0 else 0.0


def fit(
    z: np.ndarray,
    resid: np.ndarray,
    model_sigma: float,
    pure_sd: float,
    n_pairs: int,
) -> Discrepancy | None:
    """Estimate the discrepancy field, or None when pure error explains the residuals.

    Parameters
    ----------
    z : numpy.ndarray
        ``(n, k)`` standardised setpoints of the batches to condition on (at most
        :data:`MAX_ROWS`: pass a random subset of a larger table).
    resid : numpy.ndarray
        ``(n,)`` their residuals: log response minus the model's posterior-mean linear
        predictor.
    model_sigma : float
        The model's residual SD (posterior median).
    pure_sd, n_pairs : float, int
        Pure error and its number of near-replicate pairs (:func:`pure_error`, on all rows).

    Returns
    -------
    Discrepancy or None
    """
    amplitude = excess_amplitude(model_sigma, pure_sd, n_pairs)
    if amplitude <= 0.0:
        return None
    if len(z) > MAX_ROWS:
        raise ValueError(f"condition the field on at most {MAX_ROWS} rows, got {len(z)}")
    resid = np.clip(resid, -CLIP_SIGMAS * model_sigma, CLIP_SIGMAS * model_sigma)
    resid = resid - resid.mean()
    d2 = _sq_dist(z, z)
    best, best_ll = LENGTH_SCALES[0], -np.inf
    for ell in LENGTH_SCALES:
        k = amplitude**2 * np.exp(-0.5 * d2 / ell**2) + pure_sd**2 * np.eye(len(z))
        try:
            chol = linalg.cho_factor(k, lower=True)
        except linalg.LinAlgError:
            continue
        ll = -0.5 * resid @ linalg.cho_solve(chol, resid) - np.log(np.diag(chol[0])).sum()
        if ll > best_ll:
            best, best_ll = ell, ll
    return Discrepancy(
        amplitude=amplitude,
        length_scale=float(best),
        noise=float(pure_sd),
        model_sigma=float(model_sigma),
        n_pairs=int(n_pairs),
        z=np.asarray(z, dtype=float),
        resid=np.asarray(resid, dtype=float),
    )
