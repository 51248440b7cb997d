"""Hierarchical Bayesian yield model: a partially pooled response surface in PyMC.

The model
---------
For batch ``i`` in groups ``g(i)`` (one label per group column, e.g. scale, site, campaign)::

    log yield_i = alpha + sum_c a_c[g_c(i)] + X_i beta + S_i b[g_1(i)] + eps_i

* ``X_i`` -- the population design of a *structure* over the ``k`` standardised factors of
  the model's :class:`~bayesbio.space.ProcessSpace` (``z = -1 .. +1`` across each operating
  range, see :mod:`bayesbio.models._bayes_design`): ``"quadratic"`` (linear, squared and
  interaction terms), ``"spline"`` (linear, interaction and additive cubic B-spline terms) or
  ``"gp"`` (the quadratic terms as mean + a Gaussian process with ARD Matern-5/2 kernel over
  all factors, in its Hilbert-space basis form: it can follow asymmetric and plateaued
  responses and interactions a parabola cannot) or ``"quadratic_by_group"`` (the quadratic
  with varying linear terms ``b`` for the primary group whatever ``varying_slopes`` says:
  each scale its own optimum location, a stacking candidate for a scale-dependent optimum;
  skipped, as identical to ``"quadratic"``, where the other structures vary slopes already
  or no group column has two levels).
  Any ``k >= 1`` works (no interactions for one factor).
* ``a_c`` -- varying intercepts for every group column with >= 2 levels, partially pooled:
  ``a_c ~ Normal(0, sigma_c)``.
* ``b`` -- varying coefficients for the primary group (the first group column with >= 2
  levels, scale by default), so each scale can have its own optimum, partially pooled
  (non-centred, zero-sum over levels). ``varying_slopes="auto"`` switches them on from a
  median of 20 batches per level; ``True`` at any size. ``varying_terms="auto"`` varies the
  linear terms only (``S_i = z``: each level its own optimum location under the
  population's concave curvature, the shape of a scale-dependent optimum) below a median
  of 20 batches per level, and the linear *and* squared terms (``S_i = [z, z**2]``) from 20.
* ``eps_i ~ StudentT(nu, 0, sigma_i)`` (the default below 1,000 batches: a failed or
  outlying batch is a tail event instead of a pull on the whole surface) or
  ``Normal(0, sigma_i)`` (the default from 1,000 batches) (``likelihood``), with
  ``log sigma_i = log sigma + z_i gamma`` when ``heteroscedastic=True``; or the failure-aware
  mixture below (``likelihood="mixture"``).

Curvature (``curvature="auto"``, the default)
---------------------------------------------
The quadratic part of the ``"quadratic"`` and ``"gp"`` structures is *shape-constrained*:
``b'z - 0.5 z'Hz`` with ``H`` positive semi-definite (``H = diag(s) C diag(s)``, each
``0.5 s_j**2`` half-normal with the free model's curvature scale, ``C`` an LKJ(2)
correlation matrix). The surface then has a single optimum or ridge and falls off away from
it, as an upstream yield response does (it rises to an optimum and falls, or saturates). An
unconstrained quadratic fitted to batches clustered around a recipe often bends *upwards*
(a saddle) where no batch ran, and on the log scale that extrapolates into yields several
times the best batch ever made: on the independent worlds of ``benchmarks/worlds.py`` the
constraint lowered the quadratic's RMSE to the true mean from 2.06 to 1.43 g/L (n = 40, 7
worlds, one history each; BENCHMARKS.md), worse by at most 0.11 g/L in any world. For a
response to minimise (an impurity) "auto" is convex; ``curvature="free"`` restores
unconstrained coefficients.

Failed batches (``likelihood="mixture"``, opt-in)
------------------------------------------------
Contamination, equipment faults or a bad seed train end a batch at a fraction of its normal
yield. On the log scale one such batch pulls a normal likelihood's whole surface. The mixture
likelihood lets each batch be *normal* with probability ``1 - pi`` or *failed* with
probability ``pi``::

    log yield_i ~ (1 - pi) Normal(mu_i, sigma_i) + pi Normal(mu_i + log(f), s_f)
    pi ~ Beta(failure_alpha, failure_beta)                     # Beta(1, 19): mean 5 %

``mu_i`` is the linear predictor above. A failed batch is centred at ``f = 15 %`` of the
batch's normal (median) yield with a broad log-sd ``s_f = 0.8`` (its central 95 % spans about
3-70 % of normal), both fixed (``failure_fraction``, ``failure_sd``): a handful of failures cannot
pin a failure law, and keeping it fixed and well below the normal component leaves the
components ordered (no label switching). The indicator is marginalised
(``pm.NormalMixture``), so NUTS/nutpie sample it; the pointwise log-likelihood used for LOO is
the marginal mixture density of each batch. The mixture is evaluated row by row: the
sufficient-statistics path (below) is for the normal likelihood only.

On a fitted mixture model, ``failure_prob_`` is the posterior probability that each training
batch failed (Bayes' rule per posterior draw, averaged), ``failure_rate_`` summarises ``pi``,
and predictive draws with ``noise=True`` include failures (each draw fails with that draw's
``pi``; ``include_failures=False`` leaves them out). ``predict`` and ``noise=False`` draws
are the expected yield of a *normal* batch.

The response is the space's (``yield`` in g/L by default); "yield" below stands for it.

Why log-yield: titers are positive and batch-to-batch variation is multiplicative (a CV, not
a fixed g/L spread: a 6 % CV is 0.3 g/L at 5 g/L but 0.06 g/L at 1 g/L). On the log scale the
noise is homoscedastic, group effects are percent shifts, and every predictive draw is
positive. Predictions are returned in g/L: ``exp(mu + sigma_i**2 / 2)`` is the expected yield
of a batch (exact for the normal likelihood; for Student-t the same lognormal correction with
the t scale is used, since a log-t has no finite mean).

Priors (``DEFAULT_PRIORS``; pass ``priors={...}`` to override any). "sd(log y)" is the
standard deviation of the training log-yields, so slope priors are relative to the observed
yield variation per operating range:

========================  ========================================================================
``intercept_loc``         None -> log of the median training yield (g/L); centre of ``alpha``
``intercept_scale``       1.0: sd of ``alpha`` in log units (a factor e either way)
``log_yield_sd``          None -> sd of the training log-yields: "sd(log y)" below
``slope_scale``           1.0 x sd(log y): linear effect from centre to edge of operating range
``curvature_scale``       1.0 x sd(log y): squared terms (free), or the half-normal scale of each
                          factor's curvature ``0.5 H_jj`` (concave/convex)
``curvature_nu``          None: that curvature prior is half-normal; a number: half-Student-t
                          with these degrees of freedom and the same scale (concave/convex), whose
                          tail lets strongly curved data (a narrow optimum) through
``interaction_scale``     0.5 x sd(log y): two-way interactions
``spline_scale``          0.5 x sd(log y): half-normal scale of each parameter's spline amplitude
``group_scale``           0.2: half-normal scale of between-group sd of log yield (~20 % shifts)
``slope_group_scale``     0.5 x sd(log y): half-normal scale of group slope/curvature deviations
``noise_scale``           0.2: half-normal scale of the residual sd of log yield (about the CV)
``nu_alpha, nu_beta``     2, 0.1: Gamma prior of the Student-t degrees of freedom above ``nu_min``
``nu_min``                1.0: ``nu = nu_min + Gamma(nu_alpha, nu_beta)``. Below 1 the noise has
                          no mean, and on a small history with failed batches the fit ran to
                          nu ~ 0.8 with a near-exact surface (sigma ~ 1 %), calling most batches
                          outliers and drawing new batches 20,000-fold off (BENCHMARKS.md)
``hetero_scale``          0.5: sd of the log-noise slopes ``gamma``
``failure_alpha, _beta``  1, 19: Beta prior of the failure rate ``pi`` (mixture; mean 5 %)
``failure_fraction``      0.15: a failed batch's median yield relative to a normal batch (mixture)
``failure_sd``            0.8: sd of a failed batch's log-yield around that (mixture)
``gp_scale``              0.5 x sd(log y): half-normal scale of the GP's marginal sd ``eta`` (gp)
``gp_ls_alpha, _beta``    5, 5: InverseGamma prior of each factor's GP length scale, in operating
                          half-widths (mode 0.83, 98 % in 0.4-3.9: short scales the basis cannot
                          resolve are ruled out, long ones let a factor act linearly) (gp)
========================  ========================================================================

Parameterisation (``parameterization="auto"``): a group column's intercepts are centred when
the data pin them (>= 10 batches per level on average and a spread of level means that
clearly exceeds its sampling noise, judged from a quick ridge fit) and non-centred otherwise
(small or noisy groups: the funnel regime). Slope deviations are always non-centred. Group
effects are zero-sum over the observed levels (``pm.ZeroSumNormal``), so the intercept is the
mean over levels; this removes the intercept/effect ridge that slows NUTS with few levels. A
new group's effect is drawn from ``Normal(0, sigma_c)`` around that intercept.

With the normal, homoscedastic likelihood and >= 1000 batches, the likelihood is evaluated
exactly through sufficient statistics (``D'D``, ``D'y``, ``y'y`` of the full linear design),
so the cost of a gradient does not grow with the number of batches.

Model risk: each structure in ``structures`` is fitted, and the predictive distributions are
combined by LOO stacking (Yao et al. 2018) with weights ``stacking_weights_``; predictive
draws are a mixture of the structures in those proportions, so they carry structural
uncertainty.

Lack of fit (``lack_of_fit_``; ``discrepancy=True`` to act on it)
-----------------------------------------------------------------
A surface that cannot follow the response (a narrow ridge, a kink) puts its misfit into the
residual noise ``sigma``, independent from batch to batch, so the posterior of the *mean*
stays as narrow as if the surface were right and a recommendation moves with false
confidence. After every fit, the residual SD is compared with *pure error* from
near-replicate batches (same group labels, standardised setpoints within 0.2 of each other;
the classical lack-of-fit test of response-surface methodology). With ``discrepancy=True``,
when the residual SD exceeds the 90 % upper bound of pure error, the excess becomes a
model-discrepancy field (a Gaussian process over the factors, conditioned on the residuals;
Kennedy & O'Hagan 2001) that is added to every predictive draw, and the batch noise keeps
only the rest. Near the batches the field corrects the surface towards them; away from
them it widens the mean's uncertainty, so differences between distant setpoints carry it.
``lack_of_fit_`` reports the test (residual SD, pure error and its bound, pairs, whether
lack of fit was detected, the field's amplitude and length scale) whether or not the field
is used; without enough near-replicates (4 pairs) there is no test. See
:mod:`bayesbio.models._discrepancy`.

The process space
-----------------
``space=None`` is :meth:`ProcessSpace.default` (the four-factor demo process). The fitted
``space_`` is saved with the model (JSON in the netCDF attrs, no pickle) and restored by
:meth:`BayesianYieldModel.load`; a table without the space's factor columns is refused with
:class:`~bayesbio.models._tables.SpaceMismatchError`, naming them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import xarray as xr
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from bayesbio import schema
from bayesbio.checks import KINDS, check_choice, check_fraction, check_int, make_rng
from bayesbio.models import _bayes_design as design
from bayesbio.models import _bayes_sampling as sampling
from bayesbio.models import _discrepancy as lack_of_fit
from bayesbio.models._bayes_sampling import clear_compile_cache
from bayesbio.models._tables import (
    SpaceMismatchError,
    check_factor_columns,
    unknown_labels_error,
    validate,
)
from bayesbio.space import ProcessSpace, SpaceError, resolve_space

__all__ = [
    "DEFAULT_PRIORS",
    "KINDS",
    "STRUCTURES",
    "BayesianYieldModel",
    "ConvergenceWarning",
    "IncompatibleModelError",
    "SpaceMismatchError",
    "build_model",
    "clear_compile_cache",
    "diagnose",
]

_log = logging.getLogger(__name__)

STRUCTURES = design.STRUCTURES
# KINDS (re-exported from bayesbio.checks): seen groups, new groups drawn from the
# population, the population mean.

DEFAULT_PRIORS: dict[str, float | None] = {
    "intercept_loc": None,
    "intercept_scale": 1.0,
    "log_yield_sd": None,
    "slope_scale": 1.0,
    "curvature_scale": 1.0,
    "curvature_nu": None,
    "interaction_scale": 0.5,
    "spline_scale": 0.5,
    "group_scale": 0.2,
    "slope_group_scale": 0.5,
    "noise_scale": 0.2,
    "nu_alpha": 2.0,
    "nu_beta": 0.1,
    "nu_min": 1.0,
    "hetero_scale": 0.5,
    "failure_alpha": 1.0,
    "failure_beta": 19.0,
    "failure_fraction": 0.15,
    "failure_sd": 0.8,
    "gp_scale": 0.5,
    "gp_ls_alpha": 5.0,
    "gp_ls_beta": 5.0,
}

FORMAT_VERSION = "1"
_CENTRED_SIGNAL_RATIO = 4.0
_SLOPES_MIN_PER_LEVEL = 20.0  # "auto": varying slopes (linear and squared) from this median
_SUFFICIENT_MIN_ROWS = 1000
_MAX_LOG_NOISE = 10.0  # Student-t noise draws are clipped to +-10 log units (see _block)
_T_UPPER = 0.995  # ... and above, to the 99.5 % quantile of their own t (see _block)
_LOO_MAX_ROWS = 4000
_LOO_MAX_DRAWS = 2000
_PARETO_K_LIMIT = 0.7  # PSIS-LOO unreliable above (Vehtari et al. 2024)
_NAMED_BATCHES = 8
# adaptation="auto": nutpie's draw-variance adaptation below this many batches (BENCHMARKS.md)
_DRAW_DIAG_MAX_ROWS = 100
_PREDICT_MEAN_DRAWS = 1000
_CHUNK = 8192
_LIKELIHOODS = ("normal", "student_t", "mixture")
CURVATURES = ("auto", "concave", "convex", "free")
_FAILURE_MAX_DRAWS = 1000
_FAILURE_RATE_DRAWS = 4000
_FAILURE_CI_PROB = 0.94
_DISCREPANCY_DRAWS = 400  # posterior draws for the residuals the discrepancy field is fitted to
_INTERVAL_ROWS = 16384


class ConvergenceWarning(UserWarning):
    """MCMC diagnostics failed a threshold (``bayesbio.checks.CONVERGENCE``)."""


class IncompatibleModelError(ValueError):
    """A saved model cannot be loaded: other model type, format version or changed config."""


def diagnose(tree: xr.DataTree) -> dict[str, float]:
    """Convergence summary of one posterior (see ``_bayes_sampling.diagnose``).

    Parameters
    ----------
    tree : xarray.DataTree
        Trace with ``posterior`` and ``sample_stats``.

    Returns
    -------
    dict
        ``max_r_hat``, ``min_ess_bulk``, ``min_ess_tail``, ``divergences``, ``min_bfmi``,
        ``n_draws``, ``runs``.
    """
    return sampling.diagnose(tree)


# --------------------------------------------------------------------------------------
# Specification: what the data support (levels, parameterisation, slopes), JSON-able
# --------------------------------------------------------------------------------------


def _priors(priors: Mapping[str, float | None] | None) -> dict[str, float | None]:
    merged = dict(DEFAULT_PRIORS)
    for key, value in (priors or {}).items():
        if key not in DEFAULT_PRIORS:
            raise ValueError(f"unknown prior {key!r}; valid keys are {sorted(DEFAULT_PRIORS)}")
        merged[key] = None if value is None else float(value)
    nu = merged["curvature_nu"]
    if nu is not None and not (np.isfinite(nu) and nu > 0):
        raise ValueError(f"prior 'curvature_nu' must be a positive number or None, got {nu!r}")
    floor = merged["nu_min"]
    if floor is not None and not (np.isfinite(floor) and floor >= 0):
        raise ValueError(f"prior 'nu_min' must be a number >= 0 or None, got {floor!r}")
    return merged


def _check_failure_priors(priors: Mapping[str, float | None]) -> None:
    """Refuse failure-law priors the mixture cannot use (names the key and its range)."""
    ranges = {
        "failure_alpha": (0.0, np.inf),
        "failure_beta": (0.0, np.inf),
        "failure_fraction": (0.0, 1.0),
        "failure_sd": (0.0, np.inf),
    }
    for key, (lo, hi) in ranges.items():
        value = priors[key]
        if value is None or not (np.isfinite(value) and lo < value < hi):
            raise ValueError(
                f"prior {key!r} must be in ({lo}, {hi}) for likelihood='mixture', got {value!r}"
            )


def _informative_groups(
    table: pd.DataFrame, logy: np.ndarray, used: Sequence[str], space: ProcessSpace
) -> dict[str, bool]:
    """Whether the data pin each group column's level effects (-> centred parameterisation).

    A quick ridge fit of the quadratic surface gives residuals; per level, the mean residual
    has standard error ``s / sqrt(n_level)``. If the spread of the level means clearly exceeds
    that (ratio of variances > 4) and levels hold >= 10 batches on average, the likelihood
    identifies the effects and the centred form samples better; otherwise (few or noisy
    batches per level, the funnel regime) the non-centred form is used.
    """
    z = design.standardise(table, space)
    x = np.column_stack([np.ones(len(z)), design.population_design(z, "quadratic")])
    ridge = np.eye(x.shape[1]) * 1e-3 * len(z)
    ridge[0, 0] = 0.0
    coef = np.linalg.solve(x.T @ x + ridge, x.T @ logy)
    resid = logy - x @ coef
    out = {}
    for g in used:
        frame = pd.DataFrame({"r": resid, "g": table[g].to_numpy()})
        stats = frame.groupby("g")["r"].agg(["mean", "count", "var"])
        within = float(np.nanmean(stats["var"])) if len(stats) else 0.0
        se2 = float(np.mean(within / stats["count"]))
        between = float(np.var(stats["mean"], ddof=1)) if len(stats) > 1 else 0.0
        out[g] = bool(stats["count"].mean() >= 10 and between > _CENTRED_SIGNAL_RATIO * se2)
    return out


def _make_spec(
    table: pd.DataFrame,
    groups: Sequence[str],
    *,
    likelihood: str,
    heteroscedastic: bool,
    varying_slopes: bool | str,
    parameterization: str,
    priors: Mapping[str, float | None],
    space: ProcessSpace,
    curvature: str = "auto",
    varying_terms: str = "auto",
) -> dict[str, Any]:
    check_choice("likelihood", likelihood, ("auto", *_LIKELIHOODS))
    check_choice("varying_terms", varying_terms, ("auto", *design.VARYING_TERMS))
    check_choice("curvature", curvature, CURVATURES)
    if likelihood == "auto":
        # robust for the small histories the tool is for; exact sufficient statistics (and a
        # gradient whose cost does not grow with n) for thousands of batches
        likelihood = "student_t" if len(table) < _SUFFICIENT_MIN_ROWS else "normal"
    if curvature == "auto":
        curvature = "concave" if space.response.direction == "maximise" else "convex"
    check_choice("parameterization", parameterization, ("auto", "centered", "noncentered"))
    n = len(table)
    response = space.response
    y = table[response.name].to_numpy(dtype=float)
    bad = y <= 0
    if bad.any():
        rows = table.index[bad][:5].tolist()
        raise ValueError(
            f"column '{response.name}': {int(bad.sum())} non-positive value(s) (rows {rows}); "
            f"the model works on the log scale and needs {response.name} > 0 {response.unit}"
        )
    logy = np.log(y)
    if likelihood == "mixture":
        _check_failure_priors(priors)
    levels = {g: sorted(pd.unique(table[g]).tolist()) for g in groups}
    used = [g for g in groups if len(levels[g]) >= 2]
    centred = {}
    informative = (
        _informative_groups(table, logy, used, space) if parameterization == "auto" else {}
    )
    for g in used:
        if parameterization == "auto":
            centred[g] = informative[g]
        else:
            centred[g] = parameterization == "centered"
    primary = used[0] if used else None
    if isinstance(varying_slopes, str) and varying_slopes != "auto":
        if varying_slopes not in used:
            raise ValueError(
                f"varying_slopes={varying_slopes!r} must name a group column with >= 2 levels "
                f"among {used}, or be 'auto', True or False"
            )
        primary = varying_slopes
    counts = table[primary].value_counts() if primary else pd.Series(dtype=float)
    per_level = float(counts.median()) if len(counts) else 0.0
    if varying_slopes == "auto":
        slopes = bool(primary is not None and per_level >= _SLOPES_MIN_PER_LEVEL)
    else:
        slopes = bool(varying_slopes) and primary is not None
    if varying_terms == "auto":
        varying_terms = "quadratic" if per_level >= _SLOPES_MIN_PER_LEVEL else "linear"
    prior_loc, prior_scale = data_priors(logy, priors)
    return {
        "factors": list(space.factor_names),
        "groups": list(groups),
        "levels": levels,
        "used": used,
        "centred": centred,
        "primary": primary if slopes else None,
        "slope_group": primary,
        "varying_terms": varying_terms,
        "likelihood": likelihood,
        "curvature": curvature,
        "heteroscedastic": bool(heteroscedastic),
        "sufficient": bool(
            likelihood == "normal" and not heteroscedastic and n >= _SUFFICIENT_MIN_ROWS
        ),
        "prior_loc": prior_loc,
        "prior_scale": prior_scale,
        "n": n,
        "priors": dict(priors),
    }


def structure_spec(spec: dict[str, Any], structure: str) -> dict[str, Any]:
    """Return the model spec as ``structure`` sees it.

    ``"quadratic_by_group"`` varies the primary group's terms (``spec["slope_group"]``)
    whether or not the model's other structures do; every other structure sees ``spec``.
    """
    if structure != "quadratic_by_group" or spec["primary"]:
        return spec
    return {**spec, "primary": spec.get("slope_group")}


def _duplicate_structure(spec: dict[str, Any], structure: str) -> bool:
    """Whether ``structure`` would be the same model as ``"quadratic"`` on this data."""
    seen = structure_spec(spec, structure)
    return structure == "quadratic_by_group" and seen["primary"] == spec["primary"]


def _codes(table: pd.DataFrame, spec: dict[str, Any], g: str) -> np.ndarray:
    return pd.Categorical(table[g].astype(str), categories=spec["levels"][g]).codes.astype(np.int64)


def _full_design(
    table: pd.DataFrame, spec: dict[str, Any], structure: str, space: ProcessSpace
) -> np.ndarray:
    """Columns of the whole linear predictor, for sufficient statistics."""
    z = design.standardise(table, space)
    n = len(table)
    cols = [np.ones((n, 1)), design.population_design(z, structure)]
    for g in spec["used"]:
        onehot = np.zeros((n, len(spec["levels"][g])))
        onehot[np.arange(n), _codes(table, spec, g)] = 1.0
        cols.append(onehot)
    if spec["primary"]:
        p = spec["primary"]
        s = design.slope_design(z, _varying_terms(spec))
        codes = _codes(table, spec, p)
        block = np.zeros((n, len(spec["levels"][p]), s.shape[1]))
        block[np.arange(n), codes, :] = s
        cols.append(block.reshape(n, -1))
    return np.column_stack(cols)


def _model_from_spec(
    table: pd.DataFrame, spec: dict[str, Any], structure: str, space: ProcessSpace
) -> pm.Model:
    spec = structure_spec(spec, structure)
    shape = design.base_structure(structure)
    pr = spec["priors"]
    z = design.standardise(table, space)
    logy = np.log(table[space.response.name].to_numpy(dtype=float))
    terms = design.population_terms(structure, space)
    coords: dict[str, Any] = {"term": terms, "parameter": list(space.factor_names)}
    for g in spec["used"]:
        coords[g] = spec["levels"][g]
    if spec["primary"]:
        coords["slope_term"] = design.slope_terms(space, _varying_terms(spec))
    n_lin, n_int, _ = design.n_terms(structure, space.k)
    with pm.Model(coords=coords) as model:
        loc = pm.Data("prior_loc", spec["prior_loc"])
        scale = pm.Data("prior_scale", spec["prior_scale"])
        intercept = pm.Normal("intercept", loc, pr["intercept_scale"])
        widths = np.array(
            [pr["slope_scale"]] * n_lin
            + [pr["curvature_scale"]] * n_lin
            + [pr["interaction_scale"]] * n_int
        )
        if shape == "quadratic":
            if spec.get("curvature", "free") == "free":
                beta = pm.Normal("beta", 0.0, scale * widths, dims="term")
            else:
                beta = pm.Deterministic(
                    "beta", _shaped_quadratic(spec, pr, scale, space.k), dims="term"
                )
        elif shape == "gp":
            if spec.get("curvature", "free") == "free":
                beta_lin = pm.Normal("beta_quadratic", 0.0, scale * widths, shape=len(widths))
            else:
                beta_lin = _shaped_quadratic(spec, pr, scale, space.k)
            ls = pm.InverseGamma(
                "gp_lengthscale", pr["gp_ls_alpha"], pr["gp_ls_beta"], dims="parameter"
            )
            eta = pm.HalfNormal("gp_sd", pr["gp_scale"])
            omega = pm.Data("gp_omega", design.gp_frequencies(space.k))
            psd = pm.gp.cov.Matern52(space.k, ls=ls).power_spectral_density(omega)
            raw = pm.Normal("gp_raw", 0.0, 1.0, shape=omega.shape[0])
            beta = pm.Deterministic(
                "beta", pt.concatenate([beta_lin, scale * eta * pt.sqrt(psd) * raw]), dims="term"
            )
        else:
            widths = np.array([pr["slope_scale"]] * n_lin + [pr["interaction_scale"]] * n_int)
            beta_lin = pm.Normal("beta_linear", 0.0, scale * widths, shape=n_lin + n_int)
            owner = design.spline_groups(structure, space.k)
            amp = pm.HalfNormal("spline_sd", pr["spline_scale"], dims="parameter")
            raw = pm.Normal("spline_raw", 0.0, 1.0, shape=len(owner))
            beta = pm.Deterministic(
                "beta", pt.concatenate([beta_lin, scale * amp[owner] * raw]), dims="term"
            )
        effects = {}
        for g in spec["used"]:
            sd = pm.HalfNormal(f"sigma_{g}", pr["group_scale"])
            # zero-sum effects: the intercept is the mean over levels, which removes the
            # intercept/effect ridge that otherwise slows NUTS with few levels per column
            if spec["centred"][g]:
                effects[g] = pm.ZeroSumNormal(f"a_{g}", sigma=sd, dims=g)
            else:
                raw_g = pm.ZeroSumNormal(f"z_{g}", sigma=1.0, dims=g)
                effects[g] = pm.Deterministic(f"a_{g}", sd * raw_g, dims=g)
        slopes = None
        if spec["primary"]:
            p = spec["primary"]
            tau = pm.HalfNormal("sigma_b", scale * pr["slope_group_scale"], dims="slope_term")
            # non-centred, zero-sum over levels (ZeroSumNormal sums out its last axis)
            raw_b = pm.ZeroSumNormal(f"z_b_{p}", sigma=1.0, dims=("slope_term", p))
            slopes = pm.Deterministic(f"b_{p}", (tau[:, None] * raw_b).T, dims=(p, "slope_term"))
        sigma = pm.HalfNormal("sigma", pr["noise_scale"])
        nu = None
        if spec["likelihood"] == "student_t":
            nu_min = pr.get("nu_min") or 0.0
            nu = (
                pm.Deterministic(
                    "nu", nu_min + pm.Gamma("nu_excess", pr["nu_alpha"], pr["nu_beta"])
                )
                if nu_min > 0
                else pm.Gamma("nu", pr["nu_alpha"], pr["nu_beta"])
            )
        pi = (
            pm.Beta("failure_rate", pr["failure_alpha"], pr["failure_beta"])
            if spec["likelihood"] == "mixture"
            else None
        )
        if spec["sufficient"]:
            dmat = _full_design(table, spec, structure, space)
            yc = logy - spec["prior_loc"]
            dtd = pm.Data("DtD", dmat.T @ dmat)
            dty = pm.Data("Dty", dmat.T @ yc)
            yty = pm.Data("yty", float(yc @ yc))
            n_obs = pm.Data("n_obs", float(len(yc)))
            parts = [(intercept - loc)[None], beta]
            parts += [effects[g] for g in spec["used"]]
            if slopes is not None:
                parts.append(slopes.flatten())
            theta = pt.concatenate(parts)
            sse = yty - 2.0 * pt.dot(theta, dty) + pt.dot(theta, pt.dot(dtd, theta))
            pm.Potential(
                "log_likelihood_sufficient",
                -n_obs * pt.log(sigma) - sse / (2.0 * sigma**2) - 0.5 * n_obs * np.log(2 * np.pi),
            )
        else:
            x = pm.Data("x_pop", design.population_design(z, structure), dims=("obs", "term"))
            mu = intercept + pt.dot(x, beta)
            for g in spec["used"]:
                idx = pm.Data(f"idx_{g}", _codes(table, spec, g), dims="obs")
                mu = mu + effects[g][idx]
            if slopes is not None:
                xs = pm.Data(
                    "x_slope",
                    design.slope_design(z, _varying_terms(spec)),
                    dims=("obs", "slope_term"),
                )
                idx_p = pm.Data(
                    f"slope_idx_{spec['primary']}", _codes(table, spec, spec["primary"]), dims="obs"
                )
                mu = mu + (xs * slopes[idx_p]).sum(axis=-1)
            sd_i = sigma
            if spec["heteroscedastic"]:
                gamma = pm.Normal("gamma", 0.0, pr["hetero_scale"], dims="parameter")
                zlin = pm.Data("z", z, dims=("obs", "parameter"))
                sd_i = sigma * pt.exp(pt.dot(zlin, gamma))
            y_data = pm.Data("log_yield", logy, dims="obs")
            if pi is not None:
                # the failed/normal indicator is marginalised: logp is a logsumexp per batch
                shift, fail_sd = _failure_law(spec)
                pm.NormalMixture(
                    "log_yield_obs",
                    w=pt.stack([1.0 - pi, pi]),
                    mu=pt.stack([mu, mu + shift], axis=-1),
                    sigma=pt.stack([pt.ones_like(mu) * sd_i, pt.ones_like(mu) * fail_sd], axis=-1),
                    observed=y_data,
                    dims="obs",
                )
            elif nu is None:
                pm.Normal("log_yield_obs", mu, sd_i, observed=y_data, dims="obs")
            else:
                pm.StudentT("log_yield_obs", nu=nu, mu=mu, sigma=sd_i, observed=y_data, dims="obs")
    return model


def data_priors(logy: np.ndarray, priors: Mapping[str, float | None]) -> tuple[float, float]:
    """Return the prior location and scale of log-yield: the overrides, else from the data.

    ``intercept_loc`` (None: the median of ``logy``) and ``log_yield_sd`` (None: the sd of
    ``logy``, at least 0.05), as :data:`DEFAULT_PRIORS` documents.
    """
    loc, sd = priors.get("intercept_loc"), priors.get("log_yield_sd")
    return (
        float(np.median(logy)) if loc is None else float(loc),
        float(max(np.std(logy), 0.05)) if sd is None else float(sd),
    )


def _varying_terms(spec: dict[str, Any]) -> str:
    """Terms the primary group varies ("quadratic" for specs saved before the choice existed)."""
    return str(spec.get("varying_terms", "quadratic"))


def _shaped_quadratic(
    spec: dict[str, Any], pr: Mapping[str, Any], scale: Any, k: int
) -> pt.TensorVariable:
    """Quadratic coefficients ``[linear, squared, interactions]`` with a definite Hessian.

    ``log mu = ... + b'z - 0.5 z'Hz`` (concave) or ``+ 0.5 z'Hz`` (convex) with
    ``H = diag(s) C diag(s)`` positive semi-definite: ``0.5 s**2`` (the magnitude of a squared
    coefficient) half-normal (half-Student-t with ``curvature_nu``) with scale
    ``curvature_scale x sd(log y)``, as the free model's
    squared terms, and ``C`` an LKJ(2) correlation matrix (only for ``k >= 2``). The squared
    coefficients are ``-0.5 H_ii`` and the interactions ``-H_ij`` (signs flipped for convex),
    in the order of the design columns. Every factor gets the same prior (no ordering
    effect), and the surface has one optimum or ridge: far from the data it falls off
    (concave) instead of bending upwards into unbounded yields.
    """
    sign = -1.0 if spec["curvature"] == "concave" else 1.0
    lin = pm.Normal("beta_linear", 0.0, scale * pr["slope_scale"], shape=k)
    # curvature along each factor: |squared coefficient| = H_ii / 2, with the half-normal
    # scale of the free model's squared terms (curvature_scale x sd(log y))
    nu = pr.get("curvature_nu")
    bend = (
        pm.HalfNormal("curvature", 1.0, dims="parameter")
        if nu is None
        else pm.HalfStudentT("curvature", nu=nu, sigma=1.0, dims="parameter")
    )
    half_h = scale * pr["curvature_scale"] * bend
    if k == 1:
        return pt.concatenate([lin, sign * half_h])
    # Cholesky factor of an LKJ(2) correlation matrix: H = diag(s) C diag(s), s = sqrt(H_ii)
    corr_chol = pm.LKJCorr("curvature_corr", n=k, eta=2.0)
    chol = pt.sqrt(2.0 * half_h)[:, None] * corr_chol
    h = pt.dot(chol, chol.T)
    iu, ju = np.triu_indices(k, 1)
    squared = sign * 0.5 * pt.diagonal(h)
    interactions = sign * h[iu, ju]
    return pt.concatenate([lin, squared, interactions])


def _failure_law(spec: dict[str, Any]) -> tuple[float, float]:
    """Log-shift and log-sd of a failed batch (defaults for specs saved before they existed)."""
    pr = spec["priors"]
    fraction = pr.get("failure_fraction", DEFAULT_PRIORS["failure_fraction"])
    sd = pr.get("failure_sd", DEFAULT_PRIORS["failure_sd"])
    return float(np.log(fraction)), float(sd)


def _signature(spec: dict[str, Any], structure: str) -> str:
    spec = structure_spec(spec, structure)
    return sampling.signature(
        {
            "structure": structure,
            "k": len(spec["factors"]),
            "likelihood": spec["likelihood"],
            "curvature": spec.get("curvature", "free"),
            "heteroscedastic": spec["heteroscedastic"],
            "sufficient": spec["sufficient"],
            "used": {g: len(spec["levels"][g]) for g in spec["used"]},
            "centred": spec["centred"],
            "primary": None if spec["primary"] is None else len(spec["levels"][spec["primary"]]),
            "varying_terms": _varying_terms(spec),
            "priors": {
                k: v
                for k, v in spec["priors"].items()
                if k not in ("intercept_loc", "log_yield_sd")
            },
        }
    )


def build_model(
    table: pd.DataFrame,
    *,
    structure: str = "quadratic",
    groups: Sequence[str] | None = None,
    priors: Mapping[str, float | None] | None = None,
    likelihood: str = "auto",
    heteroscedastic: bool = False,
    varying_slopes: bool | str = "auto",
    parameterization: str = "auto",
    columns: Mapping[str, str] | None = None,
    space: ProcessSpace | str | os.PathLike[str] | None = None,
    curvature: str = "auto",
    varying_terms: str = "auto",
) -> pm.Model:
    """Build (without sampling) the PyMC model for a batch table.

    Parameters
    ----------
    table : pandas.DataFrame
        Batch table with the space's factors, its response (> 0) and group columns.
    structure : {"quadratic", "spline", "gp", "quadratic_by_group"}, default "quadratic"
        Response-surface structure over the standardised factors.
    groups : sequence of str, optional
        Group columns; default the space's groups present.
    priors : mapping, optional
        Overrides of :data:`DEFAULT_PRIORS`.
    likelihood : {"auto", "normal", "student_t", "mixture"}, default "auto"
        Noise distribution of log-yield ("auto": Student-t below 1,000 batches, normal from
        1,000); "mixture": a normal batch or, with probability ``failure_rate``, a failed
        one (see the module docstring).
    heteroscedastic : bool, default False
        Let the log-noise sd vary log-linearly with the factors.
    varying_slopes : bool, "auto" or str, default "auto"
        Group-varying terms for the primary group ("auto": from a median of 20 batches per
        level); a column name picks the primary group.
    parameterization : {"auto", "centered", "noncentered"}, default "auto"
        Group effects' parameterisation; "auto" chooses by batches per level.
    columns : mapping of str to str, optional
        ``{user_name: space_name}`` column mapping.
    space : ProcessSpace, path or None, optional
        The process space (factors, response, groups); None: the default space.
    curvature : {"auto", "concave", "convex", "free"}, default "auto"
        Shape of the quadratic part of the surface (log scale): see
        :class:`BayesianYieldModel`.
    varying_terms : {"auto", "linear", "quadratic"}, default "auto"
        Terms the primary group varies when ``varying_slopes`` is on: see
        :class:`BayesianYieldModel`.

    Returns
    -------
    pymc.Model
        The model; data are ``pm.Data`` containers. Its ``spec`` dict is attached as
        ``model.bayesbio_spec``.
    """
    check_choice("structure", structure, STRUCTURES)
    sp = resolve_space(space)
    df = validate(schema.rename_columns(table, columns), sp, groups=groups)
    gcols = sp.group_columns(df, groups)
    spec = _make_spec(
        df,
        gcols,
        likelihood=likelihood,
        heteroscedastic=heteroscedastic,
        varying_slopes=varying_slopes,
        parameterization=parameterization,
        priors=_priors(priors),
        space=sp,
        curvature=curvature,
        varying_terms=varying_terms,
    )
    model = _model_from_spec(df, spec, structure, sp)
    model.bayesbio_spec = structure_spec(spec, structure)
    return model


# --------------------------------------------------------------------------------------
# Posterior arrays and the vectorised predictive
# --------------------------------------------------------------------------------------


def _flat(ds: xr.Dataset, name: str) -> np.ndarray:
    da = ds[name]
    arr = da.values
    return arr.reshape(arr.shape[0] * arr.shape[1], *arr.shape[2:])


def _posterior_arrays(tree: xr.DataTree, spec: dict[str, Any]) -> dict[str, Any]:
    post = tree["posterior"].to_dataset()
    out: dict[str, Any] = {
        "intercept": _flat(post, "intercept"),
        "beta": _flat(post, "beta"),
        "sigma": _flat(post, "sigma"),
        "a": {g: _flat(post, f"a_{g}") for g in spec["used"]},
        "sigma_g": {g: _flat(post, f"sigma_{g}") for g in spec["used"]},
    }
    if spec["primary"]:
        out["b"] = _flat(post, f"b_{spec['primary']}")
        out["sigma_b"] = _flat(post, "sigma_b")
    if spec["heteroscedastic"]:
        out["gamma"] = _flat(post, "gamma")
    if spec["likelihood"] == "student_t":
        out["nu"] = _flat(post, "nu")
    if spec["likelihood"] == "mixture":
        out["pi"] = _flat(post, "failure_rate")
    out["n"] = out["intercept"].shape[0]
    return out


class _Rows:
    """Design and group codes of a prediction table, shared by all structures."""

    def __init__(
        self, table: pd.DataFrame, spec: dict[str, Any], kind: str, space: ProcessSpace
    ) -> None:
        self.n = len(table)
        self.z = design.standardise(table, space)
        self.codes: dict[str, np.ndarray] = {}
        # Per group column: codes into "effect slots". Seen labels keep their training code;
        # labels treated as new get slots >= n_levels, one per distinct new label.
        self.n_new: dict[str, int] = {}
        for g in spec["groups"]:
            levels = spec["levels"][g]
            if kind == "population":
                continue
            if g not in table.columns:
                if kind == "existing":
                    raise ValueError(
                        f"group column '{g}' is missing from the prediction table; it is "
                        f"needed for kind='existing' (training levels: {levels})"
                    )
                self.codes[g] = np.full(self.n, len(levels), dtype=np.int64)
                self.n_new[g] = 1
                continue
            labels = table[g].astype(str).to_numpy()
            known = pd.Categorical(labels, categories=levels).codes.astype(np.int64)
            unknown = known < 0
            if unknown.any():
                if kind == "existing":
                    raise unknown_labels_error(g, labels[unknown].tolist(), levels)
                uniq, inv = np.unique(labels[unknown], return_inverse=True)
                known[unknown] = len(levels) + inv
                self.n_new[g] = len(uniq)
            else:
                self.n_new[g] = 0
            self.codes[g] = known
        if self.codes:
            mat = np.column_stack(list(self.codes.values()))
            self.combos, inv = np.unique(mat, axis=0, return_inverse=True)
            self.combo_inv = inv.ravel().astype(np.int64)
        else:
            self.combos = np.zeros((1, 0), dtype=np.int64)
            self.combo_inv = np.zeros(self.n, dtype=np.int64)


_FOLD_MAX = 256


def _coefficients(
    arrays: dict[str, Any],
    spec: dict[str, Any],
    rows: _Rows,
    sel: np.ndarray,
    rng: np.random.Generator,
    *,
    failures: bool = False,
) -> dict[str, Any]:
    """Coefficients of the linear predictor for draws ``sel`` and the rows' groups.

    Group offsets are summed per distinct combination of group labels and, like the primary
    group's slope deviations, folded into one matrix ``B`` so that the log-mean of every row
    and draw is a single matrix product ``B @ [X, onehot(combo), slope block].T``.
    ``failures=True`` (mixture likelihood only) carries the failure rate ``pi`` of each draw,
    so that :func:`_block` draws failed batches along with the noise.
    """
    c = len(sel)
    tables: dict[str, np.ndarray] = {}
    for g in rows.codes:
        n_new = rows.n_new[g]
        if g in spec["used"]:
            seen = arrays["a"][g][sel]
            sd = arrays["sigma_g"][g][sel]
        else:  # one level in training: its effect is absorbed by the intercept
            seen = np.zeros((c, len(spec["levels"][g])))
            sd = np.abs(rng.standard_normal(c)) * spec["priors"]["group_scale"]
        new = sd[:, None] * rng.standard_normal((c, n_new)) if n_new else np.zeros((c, 0))
        tables[g] = np.concatenate([seen, new], axis=1)
    offsets = np.repeat(arrays["intercept"][sel][:, None], len(rows.combos), axis=1)
    for j, g in enumerate(rows.codes):
        offsets += tables[g][:, rows.combos[:, j]]
    slopes = None
    p = spec["primary"]
    if p and p in rows.codes:
        seen = arrays["b"][sel]
        n_new = rows.n_new[p]
        new = arrays["sigma_b"][sel][:, None, :] * rng.standard_normal((c, n_new, seen.shape[2]))
        slopes = np.concatenate([seen, new], axis=1)
    fold_offsets = len(rows.combos) <= _FOLD_MAX
    fold_slopes = slopes is not None and slopes.shape[1] * slopes.shape[2] <= _FOLD_MAX
    parts = [arrays["beta"][sel]]
    if fold_offsets:
        parts.append(offsets)
    if fold_slopes:
        parts.append(slopes.reshape(c, -1))
    return {
        "B": np.concatenate(parts, axis=1),
        "offsets": offsets,
        "slopes": slopes,
        "fold_offsets": fold_offsets,
        "fold_slopes": fold_slopes,
        "sigma": arrays["sigma"][sel],
        "gamma": arrays["gamma"][sel] if spec["heteroscedastic"] else None,
        "nu": arrays["nu"][sel] if spec["likelihood"] == "student_t" else None,
        "pi": arrays["pi"][sel] if failures and spec["likelihood"] == "mixture" else None,
        "failure": _failure_law(spec) if spec["likelihood"] == "mixture" else None,
        "cast": {},
    }


def _cast(coef: dict[str, Any], name: str, dtype: Any) -> np.ndarray:
    key = (name, np.dtype(dtype).str)
    if key not in coef["cast"]:
        coef["cast"][key] = np.ascontiguousarray(coef[name], dtype=dtype)
    return coef["cast"][key]


def _block(
    coef: dict[str, Any],
    spec: dict[str, Any],
    structure: str,
    rows: _Rows,
    lo: int,
    hi: int,
    *,
    noise: bool,
    mean: bool,
    rng: np.random.Generator | None,
    dtype: Any,
) -> np.ndarray:
    """Log-scale predictive of rows ``lo:hi``: ``(n_draws, hi - lo)``.

    With ``noise`` and a failure rate in ``coef`` (mixture), each entry is a failed batch
    with its draw's probability ``pi``: its noise is replaced by the failure law's.
    """
    z = rows.z[lo:hi]
    m = hi - lo
    parts = [design.population_design(z, structure)]
    inv = rows.combo_inv[lo:hi]
    if coef["fold_offsets"]:
        onehot = np.zeros((m, len(rows.combos)))
        onehot[np.arange(m), inv] = 1.0
        parts.append(onehot)
    slopes = coef["slopes"]
    if slopes is not None:
        xs = design.slope_design(z, _varying_terms(spec))
        slot = rows.codes[spec["primary"]][lo:hi]
    if coef["fold_slopes"]:
        block = np.zeros((m, slopes.shape[1], slopes.shape[2]))
        block[np.arange(m), slot, :] = xs
        parts.append(block.reshape(m, -1))
    x = np.concatenate(parts, axis=1).astype(dtype)
    mu = _cast(coef, "B", dtype) @ x.T
    if not coef["fold_offsets"]:
        mu += _cast(coef, "offsets", dtype)[:, inv]
    if slopes is not None and not coef["fold_slopes"]:
        for k in np.unique(slot):
            cols = np.flatnonzero(slot == k)
            mu[:, cols] += slopes[:, k, :].astype(dtype) @ xs[cols].T.astype(dtype)
    sd = _cast(coef, "sigma", dtype)[:, None] * coef.get("noise_factor", 1.0)
    if coef["gamma"] is not None:
        sd = sd * np.exp(_cast(coef, "gamma", dtype) @ z.T.astype(dtype))
    if mean:
        mu += 0.5 * sd**2
    elif noise:
        assert rng is not None
        if coef["nu"] is not None:
            nu = np.broadcast_to(coef["nu"][:, None], mu.shape)
            # heavy tails (nu near 1) draw astronomically far: a batch 20,000 times its
            # median. The low tail is what failed batches look like and stays (within
            # e**-_MAX_LOG_NOISE); above its own t distribution's _T_UPPER quantile a draw is
            # held there (quantiles below it stay exact: intervals, the probability of any
            # spec below it, and every lower-tail risk objective are unaffected); that
            # quantile per draw is coef["nu_top"], set by predict_draws
            eps = np.clip(
                np.minimum(rng.standard_t(nu), coef["nu_top"]) * sd.astype(np.float64),
                -_MAX_LOG_NOISE,
                _MAX_LOG_NOISE,
            ).astype(dtype)
        else:
            eps = rng.standard_normal(mu.shape, dtype=dtype) * sd
        if coef["pi"] is not None:
            failed = rng.random(mu.shape, dtype=dtype) < _cast(coef, "pi", dtype)[:, None]
            shift, fail_sd = coef["failure"]
            n_failed = int(failed.sum())
            eps[failed] = shift + fail_sd * rng.standard_normal(n_failed, dtype=dtype)
        mu += eps
    return mu


def _loo_notice(
    influential: Mapping[str, list[Any]],
    diagnostics: Mapping[str, Mapping[str, float]],
    weights: pd.Series,
    n: int,
) -> str:
    """Return the user's sentence on an unreliable leave-one-out check (empty if reliable).

    Names the batches whose Pareto k exceeds 0.7 in any structure and the structures whose
    effective number of parameters ``p_loo`` exceeds the number of batches checked.
    """
    batches = list(dict.fromkeys(b for found in influential.values() for b in found))
    crowded = {s: d["p_loo"] for s, d in diagnostics.items() if d.get("p_loo", 0.0) > n}
    if not batches and not crowded:
        return ""
    parts = []
    if batches:
        shown = ", ".join(str(b) for b in batches[:_NAMED_BATCHES])
        if len(batches) > _NAMED_BATCHES:
            shown += f" and {len(batches) - _NAMED_BATCHES} more"
        per = "; ".join(f"'{s}' {len(found)}" for s, found in influential.items() if found)
        parts.append(
            f"{len(batches)} of {n} batches ({shown}) each move the fitted surface too much "
            f"for leave-one-out to be estimated from one fit (Pareto k > {_PARETO_K_LIMIT}; "
            f"by structure: {per})"
        )
    if crowded:
        per = "; ".join(f"'{s}' {p:.1f}" for s, p in crowded.items())
        parts.append(
            f"the effective number of parameters (p_loo: {per}) exceeds the {n} batches, "
            "a sign that the surface follows single batches rather than the process"
        )
    share = ", ".join(f"{s} {w:.2f}" for s, w in weights.items())
    return (
        "Leave-one-out check: "
        + "; ".join(parts)
        + f". The stacking weights ({share}) are approximate. Usual causes: a group level "
        "(e.g. a campaign) with one or two batches, an outlying or failed batch, or a factor "
        "that acts but is not in the model; predictions and intervals remain those of the "
        "posterior, which the sampler's checks judge."
    )


def _loglik(
    arrays: dict[str, Any],
    spec: dict[str, Any],
    structure: str,
    table: pd.DataFrame,
    sel: np.ndarray,
    space: ProcessSpace,
) -> np.ndarray:
    """Pointwise log-likelihood of log-yield, ``(len(sel), n)``, matching the PyMC model."""
    from scipy import stats

    rows = _Rows(table, spec, "existing", space)
    coef = _coefficients(arrays, spec, rows, sel, np.random.default_rng(0))
    mu = _block(
        coef, spec, structure, rows, 0, rows.n, noise=False, mean=False, rng=None, dtype=np.float64
    )
    sd = arrays["sigma"][sel][:, None]
    if spec["heteroscedastic"]:
        sd = sd * np.exp(arrays["gamma"][sel] @ rows.z.T)
    logy = np.log(table[space.response.name].to_numpy(dtype=float))[None, :]
    if spec["likelihood"] == "student_t":
        return stats.t.logpdf(logy, arrays["nu"][sel][:, None], loc=mu, scale=sd)
    if spec["likelihood"] == "mixture":
        normal, failed = _mixture_parts(arrays, spec, sel, logy, mu, sd)
        return np.logaddexp(normal, failed)
    return stats.norm.logpdf(logy, loc=mu, scale=sd)


def _mixture_parts(
    arrays: dict[str, Any],
    spec: dict[str, Any],
    sel: np.ndarray,
    logy: np.ndarray,
    mu: np.ndarray,
    sd: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Joint log densities ``log((1 - pi) p_normal)`` and ``log(pi p_failed)``, per draw and row.

    Their ``logaddexp`` is the marginal mixture log-likelihood; ``exp(failed - logaddexp)``
    is the probability that the batch failed given that draw (Bayes' rule).
    """
    from scipy import stats

    pi = arrays["pi"][sel][:, None]
    shift, fail_sd = _failure_law(spec)
    normal = np.log1p(-pi) + stats.norm.logpdf(logy, loc=mu, scale=sd)
    failed = np.log(pi) + stats.norm.logpdf(logy, loc=mu + shift, scale=fail_sd)
    return normal, failed


def _residual_chunks(
    arrays: dict[str, Any],
    spec: dict[str, Any],
    structure: str,
    table: pd.DataFrame,
    sel: np.ndarray,
    space: ProcessSpace,
) -> Iterator[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(lo, hi, log y, mu, sd)`` of the rows ``lo:hi`` of ``table``, by chunks.

    ``log y`` is ``(1, hi - lo)``; ``mu`` (the linear predictor of the batch's own groups)
    and ``sd`` (the noise sd) are per posterior draw in ``sel``.
    """
    logy_all = np.log(table[space.response.name].to_numpy(dtype=float))
    for lo in range(0, len(table), _CHUNK):
        hi = min(lo + _CHUNK, len(table))
        rows = _Rows(table.iloc[lo:hi], spec, "existing", space)
        coef = _coefficients(arrays, spec, rows, sel, np.random.default_rng(0))
        mu = _block(
            coef, spec, structure, rows, 0, rows.n, noise=False, mean=False, rng=None,
            dtype=np.float64,
        )  # fmt: skip
        sd = arrays["sigma"][sel][:, None]
        if spec["heteroscedastic"]:
            sd = sd * np.exp(arrays["gamma"][sel] @ rows.z.T)
        yield lo, hi, logy_all[None, lo:hi], mu, sd


def _failure_probability(
    arrays: dict[str, Any],
    spec: dict[str, Any],
    structure: str,
    table: pd.DataFrame,
    sel: np.ndarray,
    space: ProcessSpace,
) -> np.ndarray:
    """Posterior mean over draws ``sel`` of P(batch failed | data), per row of ``table``."""
    out = np.empty(len(table))
    for lo, hi, logy, mu, sd in _residual_chunks(arrays, spec, structure, table, sel, space):
        normal, failed = _mixture_parts(arrays, spec, sel, logy, mu, sd)
        out[lo:hi] = np.exp(failed - np.logaddexp(normal, failed)).mean(axis=0)
    return out


def _t_weight(
    arrays: dict[str, Any],
    spec: dict[str, Any],
    structure: str,
    table: pd.DataFrame,
    sel: np.ndarray,
    space: ProcessSpace,
) -> np.ndarray:
    """Posterior mean over draws ``sel`` of each row's Student-t weight.

    A Student-t is a normal whose precision is scaled per batch by a latent weight; given
    the residual ``r = (log y - mu) / sigma`` its conditional mean is
    ``(nu + 1) / (nu + r**2)``: about 1 for a batch the surface explains, near 0 for one far
    from it, which therefore barely moves the surface.
    """
    out = np.empty(len(table))
    nu = arrays["nu"][sel][:, None]
    for lo, hi, logy, mu, sd in _residual_chunks(arrays, spec, structure, table, sel, space):
        r2 = ((logy - mu) / sd) ** 2
        out[lo:hi] = ((nu + 1.0) / (nu + r2)).mean(axis=0)
    return out


def _hdi(draws: np.ndarray, prob: float) -> tuple[float, float]:
    """Narrowest interval holding a share ``prob`` of ``draws`` (one-dimensional)."""
    x = np.sort(np.asarray(draws, dtype=float).ravel())
    n = len(x)
    if n < 2:
        return float(x[0]), float(x[-1])
    m = max(1, min(n - 1, int(np.floor(prob * n))))
    widths = x[m:] - x[: n - m]
    i = int(np.argmin(widths))
    return float(x[i]), float(x[i + m])


def _stacking_weights(elpd_i: np.ndarray) -> np.ndarray:
    """Stacking weights from pointwise LOO elpd ``(n, K)`` (as az.compare(method='stacking'))."""
    from scipy.optimize import Bounds, LinearConstraint, minimize

    k = elpd_i.shape[1]
    if k == 1:
        return np.ones(1)
    dens = np.exp(elpd_i - elpd_i.max(axis=1, keepdims=True))

    def score(w: np.ndarray) -> float:
        return -float(np.sum(np.log(dens @ w)))

    def grad(w: np.ndarray) -> np.ndarray:
        return -np.sum(dens / (dens @ w)[:, None], axis=0)

    res = minimize(
        score,
        np.full(k, 1.0 / k),
        jac=grad,
        bounds=Bounds(np.zeros(k), np.ones(k)),
        constraints=LinearConstraint(np.ones(k), 1.0, 1.0),
    )
    w = np.clip(res.x, 0.0, None)
    return w / w.sum()


def _quantiles(draws: np.ndarray, probs: Sequence[float]) -> list[np.ndarray]:
    """Column quantiles of ``draws`` (linear interpolation, as ``np.quantile``), fast.

    One ``np.partition`` of the transposed (row-contiguous) block instead of a full sort.
    """
    block = np.ascontiguousarray(draws.T)
    n = block.shape[1]
    pos = [(n - 1) * p for p in probs]
    kth = sorted({k for h in pos for k in (int(np.floor(h)), min(int(np.floor(h)) + 1, n - 1))})
    part = np.partition(block, kth, axis=1)
    out = []
    for h in pos:
        f = int(np.floor(h))
        c = min(f + 1, n - 1)
        lo = part[:, f].astype(np.float64)
        out.append(lo + (h - f) * (part[:, c].astype(np.float64) - lo))
    return out


def _sha(text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def _data_hash(table: pd.DataFrame) -> str:
    return _sha(pd.util.hash_pandas_object(table, index=True).to_numpy().tobytes())


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("bayesbio", "pymc", "arviz", "nutpie", "numpy", "pandas", "xarray"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "unknown"
    return out


def _stored_space(
    path: str | os.PathLike[str], attrs: Mapping[str, Any], params: dict[str, Any]
) -> ProcessSpace:
    """Return the process space saved with a model (hash checked); sets ``params["space"]``."""
    text = attrs.get("space")
    try:
        if params.get("space") is not None:
            params["space"] = ProcessSpace.from_dict(params["space"])
        if text is None:  # written before spaces were stored: the default space
            return resolve_space(params.get("space"))
        if _sha(str(text)) != attrs.get("space_hash"):
            raise IncompatibleModelError(
                f"{path}: the stored process space does not match its hash (it was changed "
                "after saving); refit instead of editing a saved model"
            )
        return ProcessSpace.from_json(str(text))
    except SpaceError as exc:
        raise IncompatibleModelError(
            f"{path}: the stored process space is invalid: {exc}"
        ) from None


def _outside_references(path: Path) -> list[str]:
    """List what in an HDF5 file points at other files (external links, external or virtual data).

    A file written by :meth:`BayesianYieldModel.save` has none; xarray/h5py would follow them
    while loading, reading files other than the one given.
    """
    import h5py

    found: list[str] = []
    with h5py.File(path, "r") as handle:

        def visit(name: str, link: Any) -> None:
            if isinstance(link, h5py.ExternalLink):
                found.append(f"external link {name!r} to {link.filename!r}")
            elif isinstance(link, h5py.HardLink):
                obj = handle[name]
                if isinstance(obj, h5py.Dataset):
                    if obj.external:
                        files = [str(e[0]) for e in obj.external]
                        found.append(f"variable {name!r} stored in external file(s) {files}")
                    if obj.is_virtual:
                        found.append(f"virtual variable {name!r}")

        handle.visititems_links(visit)
    return found


def _nonfinite_posterior(idata: Mapping[str, xr.DataTree]) -> list[str]:
    """Name every posterior variable holding NaN or infinite draws, per structure."""
    bad = []
    for structure, tree in idata.items():
        post = tree["posterior"].to_dataset()
        for name, da in post.data_vars.items():
            values = np.asarray(da.values)
            if values.dtype.kind not in "fiuc":
                bad.append(f"structure {structure!r}: {name!r} is not numeric")
                continue
            n = int(values.size - np.isfinite(values).sum())
            if n:
                bad.append(f"structure {structure!r}: {n} non-finite draw(s) of {name!r}")
    return bad


def _check_stored_table(path: Path, table: pd.DataFrame, space: ProcessSpace) -> None:
    """Refuse a stored training table with missing values or values outside the limits."""
    columns = [(f.name, f.limits, f.unit) for f in space.factors]
    columns.append((space.response.name, space.response.limits, space.response.unit))
    for name, (lo, hi), unit in columns:
        if name not in table.columns:
            raise IncompatibleModelError(
                f"{path}: the stored training table has no column {name!r}; refit the model"
            )
        values = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values) | (values < lo) | (values > hi)
        if bad.any():
            raise IncompatibleModelError(
                f"{path}: the stored training table has {int(bad.sum())} missing value(s) or "
                f"value(s) of {name!r} outside the process limits {lo:g} to {hi:g} {unit} "
                f"(first: {values[bad][0]!r}); the file was edited or is corrupt: refit the model"
            )


# --------------------------------------------------------------------------------------
# The estimator
# --------------------------------------------------------------------------------------


class BayesianYieldModel(RegressorMixin, BaseEstimator):
    """Hierarchical Bayesian response-surface model of yield (see the module docstring).

    Parameters
    ----------
    space : ProcessSpace, path or None, optional
        The process space: factors (any ``k >= 1``), response, groups, operating ranges
        (which set the scaling) and units. None: :meth:`ProcessSpace.default`; a path is
        read as TOML at ``fit``. Stored as given; the resolved space is ``space_``.
    groups : sequence of str, optional
        Group columns; default the space's groups present at ``fit``.
    priors : mapping, optional
        Overrides of :data:`DEFAULT_PRIORS` (domain meaning documented there).
    likelihood : {"auto", "normal", "student_t", "mixture"}, default "auto"
        Noise distribution of log-yield. "auto" (the default) is "student_t" below 1,000
        batches and "normal" from 1,000. Student-t (degrees of freedom ``nu`` estimated,
        prior 1 + Gamma(2, 0.1)) is robust to failed and outlying batches, which on the log
        scale pull a normal likelihood's whole surface; "normal" is the log-normal model,
        exact through sufficient statistics from 1,000 batches (where one batch has little
        leverage and the gradient's cost must not grow with n); "mixture" models failed
        batches explicitly (a normal batch, or with probability ``pi ~ Beta(1, 19)`` a
        failed one at ~15 % of normal yield; module docstring), giving ``failure_prob_``
        and ``failure_rate_`` and failure-aware predictive draws. On the seven independent
        worlds of ``benchmarks/worlds.py`` (n = 40, 2 seeds, BENCHMARKS.md) the mean RMSE
        to the true mean was 1.45 g/L (normal), 1.21 (Student-t), 1.12 (mixture), against
        1.30 for LASSO and 1.34 for RF; Student-t sampled cleanly (mean max R-hat 1.021, 0.9
        divergent transitions per fit against 8.7 for the normal), while the mixture left
        chains in different modes (max R-hat up to 1.73): it stays opt-in, check
        ``diagnostics_`` when you use it.
    heteroscedastic : bool, default False
        Log-noise sd varies log-linearly with the standardised factors.
    structures : sequence of str, default ("quadratic", "gp")
        Response-surface structures to fit and combine by LOO stacking. One structure
        skips the stacking. "spline" is available but not a default: its additive spline
        with free interactions extrapolated into unbounded yields on 2 of 7 independent
        worlds (benchmarks/worlds.py), while LOO, which sees only the data, preferred it.
        "quadratic_by_group" (the quadratic with the primary group's own linear terms, so
        that LOO decides whether the optimum moves with scale) is available but not a
        default: in place of "quadratic" it lowered the RMSE at n = 40 (1.21 -> 1.16 g/L;
        scale-shift world 2.00 -> 1.28) and raised it at n = 20 (1.28 -> 1.42), with the
        same mean regret of ``recommend()`` (BENCHMARKS.md). Use it when you expect the
        optimum to move with scale and do not know by how much.
    varying_slopes : bool, "auto" or str, default "auto"
        Group-varying terms for the primary group (the first group column with >= 2 levels,
        or the column named): each level's own slopes, shrunk towards the population's.
        "auto": on from a median of 20 batches per level. ``True`` when you know the scale
        moves the optimum (scale-up of mixing time, DO): on the independent worlds
        (BENCHMARKS.md, "varying slopes") it lowered the mean true regret of ``recommend()``
        from 23.3 to 18.5 % at n = 20 and from 17.7 to 16.9 % at n = 40, and it is the only
        setting that fixed the scale-shift world, but it raised the RMSE over the whole
        operating box from 1.21 to 1.53 g/L at n = 40 (a few batches per scale extrapolate
        their own slopes), so it is not on by default.
    varying_terms : {"auto", "linear", "quadratic"}, default "auto"
        What the primary group varies: "linear", its linear terms only, so each level has
        its own optimum location under the population's (concave) curvature, the shape of a
        scale-dependent optimum; "quadratic", its linear and squared terms (each level its own
        curvature, unconstrained); "auto": "linear" below a median of 20 batches per level,
        "quadratic" from 20 (with few batches per level, linear deviations extrapolate less:
        RMSE 1.41 against 1.51 g/L at n = 20 on the worlds, the same regret).
    parameterization : {"auto", "centered", "noncentered"}, default "auto"
        Group-effect parameterisation ("auto": by batches per level).
    draws, tune, chains : int, default 1000, 1000, 4
        MCMC settings per structure.
    target_accept : float, default 0.95
        NUTS target acceptance rate.
    extra_runs : int or "auto", default "auto"
        How often a structure whose sampling fails its checks (R-hat > 1.01, ESS < 400 or
        divergent transitions: :data:`bayesbio.checks.CONVERGENCE`) is sampled again before
        the fit warns: after divergences the run is repeated at ``target_accept`` 0.99 (its
        draws discarded), otherwise ``chains`` more chains (same settings) are appended,
        unless even all remaining runs appended could not bring the ESS to 400 (then the
        fit warns at once). "auto": 2 when ``chains x draws >= 1600`` (a run sized for an
        ESS of 400; the default 4 x 1000 is), 0 for shorter runs. ``diagnostics_`` reports the
        ``runs`` made; a fit whose first run passes costs nothing more. 0 keeps the first
        run as it is.
    adaptation : {"auto", "draw_diag", "diag", "low_rank"}, default "auto"
        nutpie's mass-matrix adaptation (ignored by PyMC's NUTS). "draw_diag" scales by the
        variances of the warm-up draws, "diag" (nutpie's own default) also by gradient
        variances, "low_rank" adds the leading posterior correlations. "auto": "draw_diag"
        below 100 batches, "diag" from 100. Measured (BENCHMARKS.md, "Sampling: mass-matrix
        adaptation and extra runs"): at n = 40-47 "draw_diag" gave 2-4x the minimum ESS and
        R-hat <= 1.006 where "diag" left the GP at ESS 237 and R-hat 1.024; at n = 200 and
        2,000 "draw_diag" brought GP divergences and with them repeated runs (2.8-3.4x the
        wall time of "diag"); "low_rank" mixed worst.
    random_seed : int, optional
        Seeds the sampler (and the LOO subsample).
    progressbar : bool, default False
        Show the sampler's progress bar.
    nuts_sampler : {"nutpie", "pymc"}, default "nutpie"
        nutpie (compiled once per model signature and cached) or PyMC's own NUTS; nutpie
        falls back to PyMC's NUTS with a warning when unavailable or failing.
    cores : int, optional
        Parallel chains; default: sampler's choice.
    curvature : {"auto", "concave", "convex", "free"}, default "auto"
        Shape of the quadratic part (log scale) of the "quadratic" and "gp" structures.
        "concave": ``-0.5 z'Hz`` with ``H`` positive semi-definite, so the surface has a
        single optimum or ridge and falls off away from it (an upstream yield response
        rises to an optimum and falls, or saturates); "convex" the mirror image (a response
        with a minimum, e.g. an impurity); "auto" is concave for a response to maximise and
        convex for one to minimise; "free": unconstrained coefficients (saddles allowed,
        which extrapolate into unbounded yields where the data do not reach).
    columns : mapping of str to str, optional
        ``{user_name: space_name}`` column mapping applied at fit and predict.
    discrepancy : bool, default False
        Where the lack-of-fit test finds residuals beyond pure error, add the excess as a
        model-discrepancy field to the predictive draws (see "Lack of fit" in the module
        docstring). The test itself (``lack_of_fit_``) runs either way. Off by default: on
        the independent worlds (BENCHMARKS.md, "Lack of fit") the test found lack of fit in
        1 of 28 histories (a narrow ridge), and the field did not change the accuracy or,
        on average, the recommendations there.

    Attributes
    ----------
    space_ : ProcessSpace
        The resolved process space (saved with the model).
    idata_ : dict of str to xarray.DataTree
        Posterior and sample stats per structure.
    diagnostics_ : dict of str to dict
        Convergence summary per structure (see :func:`diagnose`) plus LOO figures.
    stacking_weights_ : pandas.Series
        LOO-stacking weight per structure (sum 1).
    training_table_ : pandas.DataFrame
        The validated training table.
    data_hash_ : str
        SHA-256 of the training table.
    spec_ : dict
        What the data supported: factors, groups and levels, pooled columns, primary
        group, parameterisation, prior location and scale.
    sampler_ : str
        Sampler that ran ("nutpie" or "pymc").
    failure_prob_ : pandas.Series
        ``likelihood="mixture"`` only: posterior probability that each training batch
        failed (stacking-weighted posterior mean of Bayes' rule per draw), indexed like
        ``training_table_`` (its batch ids are the column ``space_.batch_id`` where present).
    failure_rate_ : pandas.Series
        ``likelihood="mixture"`` only: posterior of the failure rate ``pi``: ``mean``, and
        ``lower``/``upper`` of its 94 % HDI (``attrs``: ``ci_prob``, ``ci_kind``).
    batch_weight_ : pandas.Series
        Student-t likelihood only (the default below 1,000 batches): how much each training
        batch weighs in the fit, the posterior mean of its latent Student-t weight
        ``(nu + 1) / (nu + r**2)`` (``r``: its residual in noise sd), stacking-weighted,
        indexed like ``training_table_``. About 1 for a batch the surface explains; below
        0.25 the model treats the batch as an outlier (a failed batch, a gross error) that
        barely moves the surface.
    lack_of_fit_ : dict
        The lack-of-fit test: ``model_sigma`` (the surface's residual SD, log units,
        stacking-weighted posterior median), ``pure_error`` (robust SD of half the log-yield
        differences of near-replicate pairs) and ``pure_error_upper`` (its 90 % upper
        bound), ``replicate_pairs``, ``detected`` (residual SD above that bound, with at
        least 4 pairs), and the discrepancy field's ``amplitude`` and ``length_scale``
        (standardised units) with ``active`` (whether predictions use it).
    discrepancy_ : Discrepancy or None
        The fitted discrepancy field (None when the surface fits within pure error, with
        too few near-replicates, or with ``discrepancy=False``, the default).
    """

    def __init__(
        self,
        *,
        groups: Sequence[str] | None = None,
        priors: Mapping[str, float | None] | None = None,
        likelihood: str = "auto",
        heteroscedastic: bool = False,
        structures: Sequence[str] = ("quadratic", "gp"),
        varying_slopes: bool | str = "auto",
        parameterization: str = "auto",
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        target_accept: float = 0.95,
        random_seed: int | None = None,
        progressbar: bool = False,
        nuts_sampler: str = "nutpie",
        cores: int | None = None,
        columns: Mapping[str, str] | None = None,
        space: ProcessSpace | str | os.PathLike[str] | None = None,
        curvature: str = "auto",
        varying_terms: str = "auto",
        extra_runs: int | str = "auto",
        adaptation: str = "auto",
        discrepancy: bool = False,
    ) -> None:
        self.groups = groups
        self.priors = priors
        self.likelihood = likelihood
        self.heteroscedastic = heteroscedastic
        self.structures = structures
        self.varying_slopes = varying_slopes
        self.parameterization = parameterization
        self.draws = draws
        self.tune = tune
        self.chains = chains
        self.target_accept = target_accept
        self.random_seed = random_seed
        self.progressbar = progressbar
        self.nuts_sampler = nuts_sampler
        self.cores = cores
        self.columns = columns
        self.space = space
        self.curvature = curvature
        self.varying_terms = varying_terms
        self.extra_runs = extra_runs
        self.adaptation = adaptation
        self.discrepancy = discrepancy

    # ---------------------------------------------------------------- fitting
    def _structures(self) -> list[str]:
        structures = [self.structures] if isinstance(self.structures, str) else self.structures
        structures = list(structures)
        if not structures:
            raise ValueError(f"structures must name at least one of {list(STRUCTURES)}")
        for s in structures:
            check_choice("structures entry", s, STRUCTURES)
        if len(set(structures)) != len(structures):
            raise ValueError(f"structures has duplicates: {structures}")
        return structures

    def _validated(self, X: pd.DataFrame, y: Any, space: ProcessSpace) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame batch table, got {type(X).__name__}")
        df = schema.rename_columns(X, self.columns)
        if y is not None:
            yv = np.asarray(y, dtype=float).ravel()
            if len(yv) != len(df):
                raise ValueError(f"y has {len(yv)} values but X has {len(df)} rows")
            df = df.copy()
            df[space.response.name] = yv
        check_factor_columns(df, space, who=f"{type(self).__name__}.fit")
        return validate(df, space, groups=self.groups, min_rows=2)

    def _spec(self, table: pd.DataFrame, space: ProcessSpace) -> dict[str, Any]:
        return _make_spec(
            table,
            space.group_columns(table, self.groups),
            likelihood=self.likelihood,
            heteroscedastic=self.heteroscedastic,
            varying_slopes=self.varying_slopes,
            parameterization=self.parameterization,
            priors=_priors(self.priors),
            space=space,
            curvature=self.curvature,
            varying_terms=self.varying_terms,
        )

    def build_model(
        self, X: pd.DataFrame, y: Any = None, *, structure: str | None = None
    ) -> pm.Model:
        """Build (without sampling) the PyMC model this estimator would fit.

        Parameters
        ----------
        X : pandas.DataFrame
            Batch table.
        y : array-like, optional
            Responses; default the table's response column.
        structure : str, optional
            Structure to build; default the first of ``structures``.

        Returns
        -------
        pymc.Model
            The model, with its spec dict as ``model.bayesbio_spec``.
        """
        structure = structure or self._structures()[0]
        check_choice("structure", structure, STRUCTURES)
        space = resolve_space(self.space)
        table = self._validated(X, y, space)
        spec = self._spec(table, space)
        model = _model_from_spec(table, spec, structure, space)
        model.bayesbio_spec = spec
        return model

    def fit(self, X: pd.DataFrame, y: Any = None, *, force: bool = False) -> Self:
        """Sample the posterior of every structure and stack them.

        Parameters
        ----------
        X : pandas.DataFrame
            Batch table (the space's factors, group columns, and its response unless ``y``
            is given).
        y : array-like, optional
            Responses in the space's unit; default the table's response column.
        force : bool, default False
            Fit a design that cannot inform the model (see Raises) anyway, with a warning.

        Returns
        -------
        BayesianYieldModel
            The fitted estimator.

        Raises
        ------
        bayesbio.schema.SchemaError
            An implausible design (:func:`bayesbio.schema.check_design`), unless ``force``:
            fewer batches than the intercept and one slope per free factor (the priors
            regularise curvature and GP terms, not the main effects), a free factor that
            never varies, or a response that is the same in every batch.

        Warns
        -----
        ConvergenceWarning
            When a structure's R-hat > 1.01, ESS < 400 or any divergence remains after its
            extra runs (``extra_runs``).
        """
        structures = self._structures()
        check_choice("nuts_sampler", self.nuts_sampler, ("nutpie", "pymc"))
        for name in ("draws", "tune", "chains"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        check_fraction("target_accept", self.target_accept)
        check_choice("adaptation", self.adaptation, ("auto", *sampling.ADAPTATIONS))
        extra_runs = sampling.extra_runs_for(self.extra_runs, int(self.draws), int(self.chains))
        space = resolve_space(self.space)
        table = self._validated(X, y, space)
        problems = schema.check_design(table, space, 1 + len(space.free_factors), force=bool(force))
        for problem in problems:
            warnings.warn(f"fitting anyway (force=True): {problem}", UserWarning, stacklevel=2)
        spec = self._spec(table, space)
        adaptation = self.adaptation
        if adaptation == "auto":
            adaptation = "draw_diag" if len(table) < _DRAW_DIAG_MAX_ROWS else "diag"
        for attr in (
            "idata_", "diagnostics_", "stacking_weights_", "_arrays", "space_",
            "failure_prob_", "failure_rate_", "batch_weight_", "discrepancy_", "lack_of_fit_",
        ):  # fmt: skip
            self.__dict__.pop(attr, None)
        idata: dict[str, xr.DataTree] = {}
        diagnostics: dict[str, dict[str, float]] = {}
        samplers = []
        for k, structure in enumerate(structures):
            if "quadratic" in structures and _duplicate_structure(spec, structure):
                continue  # a by-group quadratic that equals the plain one: not fitted twice
            model = _model_from_spec(table, spec, structure, space)
            seed = None if self.random_seed is None else int(self.random_seed) + 7919 * k
            tree, used = sampling.sample_checked(
                model,
                _signature(spec, structure),
                extra_runs=extra_runs,
                draws=int(self.draws),
                tune=int(self.tune),
                chains=int(self.chains),
                target_accept=float(self.target_accept),
                random_seed=seed,
                progressbar=bool(self.progressbar),
                nuts_sampler=self.nuts_sampler,
                cores=self.cores,
                adaptation=adaptation,
            )
            samplers.append(used)
            idata[structure] = tree
            diagnostics[structure] = sampling.diagnose(tree)
        self.space_ = space
        self.training_table_ = table
        self.data_hash_ = _data_hash(table)
        self.spec_ = spec
        self.idata_ = idata
        self.sampler_ = samplers[0] if len(set(samplers)) == 1 else ",".join(samplers)
        self.n_features_in_ = space.k
        self.diagnostics_ = diagnostics
        self._stack()
        self._failures()
        self._lack_of_fit()
        for structure, found in diagnostics.items():
            failed = sampling.failed_checks(found)
            if failed:
                warnings.warn(
                    f"structure '{structure}': posterior may not have converged ("
                    + "; ".join(failed)
                    + (f", after {int(found['runs'])} sampler runs" if found["runs"] > 1 else "")
                    + "). Increase tune/draws, raise target_accept, or simplify the model "
                    "before trusting its predictions.",
                    ConvergenceWarning,
                    stacklevel=2,
                )
        return self

    def _spec_of(self, structure: str) -> dict[str, Any]:
        """Return the fitted spec as ``structure`` sees it (:func:`structure_spec`)."""
        return structure_spec(self.spec_, structure)

    def _posterior(self, structure: str) -> dict[str, Any]:
        cache = self.__dict__.setdefault("_arrays", {})
        if structure not in cache:
            cache[structure] = _posterior_arrays(self.idata_[structure], self._spec_of(structure))
        return cache[structure]

    def _stack(self) -> None:
        """LOO (PSIS) per structure on the training data, then stacking weights."""
        import arviz as az

        names = list(self.idata_)
        if len(names) == 1:  # nothing to stack: skip the LOO pass
            self.stacking_weights_ = pd.Series([1.0], index=names, name="weight")
            return
        table = self.training_table_
        rng = np.random.default_rng(self.random_seed)
        rows = np.arange(len(table))
        if len(rows) > _LOO_MAX_ROWS:  # pointwise LOO on a random subsample of batches
            rows = np.sort(rng.choice(len(table), _LOO_MAX_ROWS, replace=False))
        sub = table.iloc[rows]
        elpd = []
        influential: dict[str, list[Any]] = {}
        for s in names:
            arrays = self._posterior(s)
            tree = self.idata_[s]
            n_chain = tree["posterior"].sizes["chain"]
            n_draw = tree["posterior"].sizes["draw"]
            step = max(1, (n_chain * n_draw) // _LOO_MAX_DRAWS)
            keep = max(1, n_draw // step)
            sel = (np.arange(n_chain)[:, None] * n_draw + np.arange(0, keep * step, step)).ravel()
            ll = _loglik(arrays, self._spec_of(s), s, sub, sel, self.space_)
            ll = ll.reshape(n_chain, keep, len(sub))
            loo_tree = xr.DataTree()
            loo_tree["posterior"] = xr.DataTree(
                xr.Dataset(
                    {"sigma": (("chain", "draw"), arrays["sigma"][sel].reshape(n_chain, keep))}
                )
            )
            loo_tree["log_likelihood"] = xr.DataTree(
                xr.Dataset({"log_yield": (("chain", "draw", "obs"), ll)})
            )
            with warnings.catch_warnings():  # ArviZ's generic notice; ours names the batches
                warnings.filterwarnings("ignore", "Estimated shape parameter", UserWarning)
                res = az.loo(loo_tree, pointwise=True)
            elpd.append(np.asarray(res.elpd_i).ravel())
            k_i = np.asarray(res.pareto_k).ravel()
            self.diagnostics_[s]["elpd_loo"] = float(res.elpd)
            self.diagnostics_[s]["elpd_loo_se"] = float(res.se)
            self.diagnostics_[s]["p_loo"] = float(res.p)
            self.diagnostics_[s]["max_pareto_k"] = float(np.nanmax(k_i))
            influential[s] = list(sub.index[k_i > _PARETO_K_LIMIT])
        weights = _stacking_weights(np.column_stack(elpd))
        self.stacking_weights_ = pd.Series(weights, index=names, name="weight")
        message = _loo_notice(influential, self.diagnostics_, self.stacking_weights_, len(sub))
        if message:
            warnings.warn(message, UserWarning, stacklevel=3)

    def _failures(self) -> None:
        """Set ``failure_prob_`` and ``failure_rate_`` (mixture) or ``batch_weight_`` (t)."""
        likelihood = self.spec_["likelihood"]
        if likelihood not in ("student_t", "mixture"):
            return
        table = self.training_table_
        weights = self._positive_weights()
        per_batch = _t_weight if likelihood == "student_t" else _failure_probability
        value = np.zeros(len(table))
        for s, w in weights.items():
            arrays = self._posterior(s)
            n_sel = min(arrays["n"], _FAILURE_MAX_DRAWS)
            sel = np.linspace(0, arrays["n"] - 1, n_sel).round().astype(int)
            value += w * per_batch(arrays, self._spec_of(s), s, table, sel, self.space_)
        if likelihood == "student_t":
            self.batch_weight_ = pd.Series(value, index=table.index, name="batch_weight")
            return
        self.failure_prob_ = pd.Series(value, index=table.index, name="failure_prob")
        pooled = []
        for s, w in weights.items():
            arrays = self._posterior(s)
            n_pool = max(1, round(w * _FAILURE_RATE_DRAWS))
            pooled.append(arrays["pi"][np.linspace(0, arrays["n"] - 1, n_pool).round().astype(int)])
        pi = np.concatenate(pooled)
        lower, upper = _hdi(pi, _FAILURE_CI_PROB)
        mean = float(sum(w * self._posterior(s)["pi"].mean() for s, w in weights.items()))
        rate = pd.Series({"mean": mean, "lower": lower, "upper": upper}, name="failure_rate")
        rate.attrs.update({"ci_prob": _FAILURE_CI_PROB, "ci_kind": "hdi"})
        self.failure_rate_ = rate

    def _positive_weights(self) -> pd.Series:
        """Stacking weights of the structures that carry any, renormalised to sum 1."""
        weights = self.stacking_weights_[self.stacking_weights_ > 0]
        return weights / weights.sum()

    def posterior_noise_sd(self) -> float:
        """Return the batch-to-batch noise SD on the log scale (posterior median of ``sigma``).

        The stacking-weighted mean over the structures of each one's posterior median.
        """
        check_is_fitted(self, "idata_")
        weights = self._positive_weights()
        return float(sum(w * np.median(self._posterior(s)["sigma"]) for s, w in weights.items()))

    def _lack_of_fit(self) -> None:
        """Set ``lack_of_fit_`` and ``discrepancy_`` (see :mod:`bayesbio.models._discrepancy`)."""
        table = self.training_table_
        space = self.space_
        weights = self._positive_weights()
        z = design.standardise(table, space)
        logy = np.log(table[space.response.name].to_numpy(dtype=float))
        labels = schema.group_keys(table, self.spec_["groups"])
        sigma = self.posterior_noise_sd()
        pure, n_pairs = lack_of_fit.pure_error(z, logy, labels)
        upper = lack_of_fit.upper_pure_error(pure, n_pairs) if n_pairs else float("nan")
        amplitude = lack_of_fit.excess_amplitude(sigma, pure, n_pairs)
        field = None
        if self.discrepancy and amplitude > 0:
            rows = np.arange(len(table))
            if len(rows) > lack_of_fit.MAX_ROWS:
                rng = np.random.default_rng(self.random_seed)
                rows = np.sort(rng.choice(len(rows), lack_of_fit.MAX_ROWS, replace=False))
            sub = table.iloc[rows]
            fitted = np.zeros(len(sub))
            for s, w in weights.items():
                arrays = self._posterior(s)
                n_sel = min(arrays["n"], _DISCREPANCY_DRAWS)
                sel = np.linspace(0, arrays["n"] - 1, n_sel).round().astype(int)
                spec = self._spec_of(s)
                for lo, hi, _, mu, _ in _residual_chunks(arrays, spec, s, sub, sel, space):
                    fitted[lo:hi] += w * mu.mean(axis=0)
            field = lack_of_fit.fit(z[rows], logy[rows] - fitted, sigma, pure, n_pairs)
        self.discrepancy_ = field
        self.lack_of_fit_ = {
            "model_sigma": sigma,
            "pure_error": pure,
            "pure_error_upper": upper,
            "replicate_pairs": n_pairs,
            "detected": bool(amplitude > 0),
            "amplitude": field.amplitude if field is not None else 0.0,
            "length_scale": field.length_scale if field is not None else float("nan"),
            "active": field is not None,
        }

    # ------------------------------------------------------------- prediction
    def _prediction_table(self, X: pd.DataFrame, who: str) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
        df = schema.rename_columns(X, self.columns)
        check_factor_columns(df, self.space_, who=f"{type(self).__name__}.{who}")
        return validate(df, self.space_, require_response=False, check_limits=True)

    def predict_draws(
        self,
        X: pd.DataFrame,
        *,
        n_draws: int = 1000,
        noise: bool = True,
        kind: str = "existing",
        random_seed: int | None = None,
        dtype: Any = np.float64,
        include_failures: bool = True,
    ) -> np.ndarray:
        """Posterior predictive draws of yield (g/L), vectorised in numpy.

        Parameters
        ----------
        X : pandas.DataFrame
            Setpoints: the space's factors and (for ``kind="existing"``) the group columns.
        n_draws : int, default 1000
            Number of draws; structures contribute in proportion to ``stacking_weights_``
            (multinomial), draws are in random order.
        noise : bool, default True
            Add new-batch noise (predictive draws of a batch's yield). False: draws of the
            expected yield ``exp(mu + sigma**2 / 2)`` (epistemic uncertainty only); with
            ``likelihood="mixture"`` that is the expected yield of a *normal* batch.
        kind : {"existing", "new_group", "population"}, default "existing"
            ``"existing"``: groups seen in training (an unknown label -> ValueError naming
            the column and the label and listing the known labels). ``"new_group"``: labels
            not seen in training (and group columns missing from X) are new members of their
            group column, with effects (intercept, and slope/curvature for the primary
            group) drawn from the fitted population, one draw per distinct label; seen
            labels keep their own effects.
            So ``site="new"`` at a known scale is a new site at that scale; to ask for a
            wholly new group, pass unseen labels or omit the group columns.
            ``"population"``: population mean (all group effects zero).
        random_seed : int, optional
            Same seed, same draws.
        dtype : numpy dtype, default numpy.float64
            Output dtype; ``numpy.float32`` halves memory and time for large grids.
        include_failures : bool, default True
            ``likelihood="mixture"`` with ``noise=True``: each draw is a failed batch with
            the failure rate ``pi`` of its posterior draw (log-yield from the failure law),
            so the lower tail carries failure risk. False: normal batches only. Ignored for
            other likelihoods and with ``noise=False``.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_draws, len(X))``, in the response's unit (g/L by default). With
            ``noise``, batch yields beyond the response's declared upper limit (physically
            impossible; heavy-tailed noise can reach it) are held at it.

        Raises
        ------
        SpaceMismatchError
            If ``X`` lacks factor columns of the model's space (names them).
        ValueError
            For an unknown ``kind``, or a label not seen in training with ``kind="existing"``.
        """
        check_is_fitted(self, "idata_")
        check_choice("kind", kind, KINDS)
        n_draws = check_int("n_draws", n_draws, minimum=1)
        table = self._prediction_table(X, "predict_draws")
        rows = _Rows(table, self.spec_, kind, self.space_)
        rng = make_rng(random_seed)
        names = list(self.stacking_weights_.index)
        counts = rng.multinomial(n_draws, self.stacking_weights_.to_numpy())
        order = rng.permutation(n_draws)
        dt = np.dtype(dtype)
        work = np.float32 if dt == np.float32 else np.float64
        out = np.empty((n_draws, rows.n), dtype=dt)
        field = self._field_draws(n_draws, rng)
        plans = []
        start = 0
        for s, c in zip(names, counts, strict=True):
            if c == 0:
                continue
            arrays = self._posterior(s)
            sel = rng.choice(arrays["n"], size=c, replace=c > arrays["n"])
            coef = _coefficients(
                arrays, self._spec_of(s), rows, sel, rng, failures=bool(noise and include_failures)
            )
            coef["noise_factor"] = self._noise_factor()
            if noise and coef["nu"] is not None:  # once per call, not per chunk (see _block)
                from scipy import stats

                coef["nu_top"] = stats.t.ppf(_T_UPPER, coef["nu"])[:, None]
            plans.append((s, coef, np.sort(order[start : start + c])))
            start += c
        chunks = [(lo, min(lo + _CHUNK, rows.n)) for lo in range(0, rows.n, _CHUNK)]
        seeds = np.random.SeedSequence(int(rng.integers(2**63))).spawn(max(len(chunks), 1))

        def run(i: int) -> None:
            lo, hi = chunks[i]
            crng = np.random.default_rng(seeds[i])
            delta = None if field is None else field(rows.z[lo:hi]).astype(work)
            for s, coef, pos in plans:
                mu = _block(
                    coef, self._spec_of(s), s, rows, lo, hi, noise=noise, mean=not noise,
                    rng=crng, dtype=work,
                )  # fmt: skip
                if delta is not None:
                    mu += delta[pos]
                np.exp(mu, out=mu)
                for i, row in enumerate(pos):  # row copies beat a fancy-index scatter here
                    out[row, lo:hi] = mu[i]

        workers = min(len(chunks), os.cpu_count() or 1, 4)
        if workers > 1:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(run, range(len(chunks))))
        else:
            for i in range(len(chunks)):
                run(i)
        # a batch yield beyond the declared physical limit is impossible (a heavy-tailed noise
        # draw can reach it): the draw is held at the limit
        top = self.space_.response.limits[1]
        if noise and np.isfinite(top):
            np.minimum(out, top, out=out)
        return out

    def predict(self, X: pd.DataFrame, *, kind: str = "existing") -> np.ndarray:
        """Posterior mean yield (g/L) of a batch at each setpoint.

        Parameters
        ----------
        X : pandas.DataFrame
            Setpoints (the space's factors and group columns).
        kind : {"existing", "new_group", "population"}, default "existing"
            See :meth:`predict_draws`.

        Returns
        -------
        numpy.ndarray
            Stacking-weighted posterior mean of ``exp(mu + sigma**2 / 2)``, g/L. With
            ``likelihood="mixture"`` this is the expected yield of a *normal* (not failed)
            batch; failures show in :meth:`predict_draws` with ``noise=True``.
        """
        check_is_fitted(self, "idata_")
        check_choice("kind", kind, KINDS)
        table = self._prediction_table(X, "predict")
        rows = _Rows(table, self.spec_, kind, self.space_)
        rng = np.random.default_rng(0)
        total = np.zeros(rows.n)
        for s, w in self.stacking_weights_.items():
            if w <= 0:
                continue
            arrays = self._posterior(s)
            n_sel = min(arrays["n"], _PREDICT_MEAN_DRAWS)
            sel = np.linspace(0, arrays["n"] - 1, n_sel).round().astype(int)
            coef = _coefficients(arrays, self._spec_of(s), rows, sel, rng)
            coef["noise_factor"] = self._noise_factor()
            for lo in range(0, rows.n, _CHUNK):
                hi = min(lo + _CHUNK, rows.n)
                mu = _block(
                    coef, self._spec_of(s), s, rows, lo, hi, noise=False, mean=True, rng=None,
                    dtype=np.float32,
                )  # fmt: skip
                total[lo:hi] += w * np.exp(mu).mean(axis=0, dtype=np.float64)
        field = getattr(self, "discrepancy_", None)
        if field is not None:  # E exp(delta) of the conditioned field, independent of mu
            for lo in range(0, rows.n, _CHUNK):
                hi = min(lo + _CHUNK, rows.n)
                m, v = field.mean_var(rows.z[lo:hi])
                total[lo:hi] *= np.exp(m + 0.5 * v)
        return total

    def _noise_factor(self) -> float:
        """Share of the noise SD left to batch noise when a discrepancy field carries the rest."""
        field = getattr(self, "discrepancy_", None)
        return 1.0 if field is None else field.noise_factor

    def _field_draws(self, n_draws: int, rng: np.random.Generator) -> Any:
        """Draw functions of the discrepancy field (None without one); use ``rng`` only then."""
        field = getattr(self, "discrepancy_", None)
        if field is None:
            return None
        return field.sampler(n_draws, np.random.default_rng(int(rng.integers(2**63))))

    def predict_interval(
        self,
        X: pd.DataFrame,
        ci_prob: float = 0.9,
        *,
        kind: str = "existing",
        n_draws: int = 2000,
        random_seed: int | None = 0,
        include_failures: bool = True,
    ) -> pd.DataFrame:
        """Equal-tailed predictive interval of a new batch's yield (g/L).

        Parameters
        ----------
        X : pandas.DataFrame
            Setpoints.
        ci_prob : float, default 0.9
            Interval probability.
        kind : {"existing", "new_group", "population"}, default "existing"
            See :meth:`predict_draws`.
        n_draws : int, default 2000
            Predictive draws used for the quantiles.
        random_seed : int, optional, default 0
            Seed of the draws (fixed by default, so intervals are reproducible); rows are
            drawn in blocks of 16,384 with seeds spawned from it.
        include_failures : bool, default True
            Mixture likelihood: the interval is that of a batch that may fail (see
            :meth:`predict_draws`); ``mean`` is always that of a normal batch (:meth:`predict`).

        Returns
        -------
        pandas.DataFrame
            ``mean``, ``lower``, ``upper`` in g/L, indexed like ``X``.
        """
        ci_prob = check_fraction("ci_prob", ci_prob)
        check_is_fitted(self, "idata_")
        self._prediction_table(X, "predict_interval")  # errors name the method called
        # quantiles chunk by chunk of rows: a (n_draws, 16k) block stays in cache and memory
        q = [(1 - ci_prob) / 2, (1 + ci_prob) / 2]
        lower, upper = np.empty(len(X)), np.empty(len(X))
        seeds = np.random.SeedSequence(random_seed).spawn(max(1, -(-len(X) // _INTERVAL_ROWS)))
        for k, lo in enumerate(range(0, len(X), _INTERVAL_ROWS)):
            hi = min(lo + _INTERVAL_ROWS, len(X))
            draws = self.predict_draws(
                X.iloc[lo:hi],
                n_draws=n_draws,
                noise=True,
                kind=kind,
                random_seed=int(seeds[k].generate_state(1)[0]),
                dtype=np.float32,
                include_failures=include_failures,
            )
            lower[lo:hi], upper[lo:hi] = _quantiles(draws, q)
        return pd.DataFrame(
            {"mean": self.predict(X, kind=kind), "lower": lower, "upper": upper}, index=X.index
        )

    # ------------------------------------------------------------ persistence
    def _config_json(self) -> str:
        params = self.get_params()
        params["groups"] = None if params["groups"] is None else list(params["groups"])
        params["structures"] = (
            [params["structures"]]
            if isinstance(params["structures"], str)
            else list(params["structures"])
        )
        params["priors"] = None if params["priors"] is None else dict(params["priors"])
        params["columns"] = None if params["columns"] is None else dict(params["columns"])
        # a space given as an object or a path is stored resolved (a path may be gone at load)
        params["space"] = None if params["space"] is None else self.space_.to_dict()
        return json.dumps(params, sort_keys=True)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted model to one netCDF file (h5netcdf), no pickle.

        The file holds, per structure, the posterior and sample stats as groups, the training
        table as a group, and in the root attrs (JSON): model type, format and package
        versions, configuration and its hash, the process space (``space_.to_json()``) and
        its hash, spec, stacking weights, diagnostics and the training-data hash.

        The file is written under a temporary name in the same folder and then renamed onto
        ``path`` (``os.replace``), so an interrupted or failed save leaves an earlier file at
        ``path`` as it was and never a half-written one.

        Parameters
        ----------
        path : str or os.PathLike
            Target file (conventionally ``.nc``).

        Returns
        -------
        pathlib.Path
            The path written.

        Raises
        ------
        ValueError
            If the posterior holds non-finite draws (an interrupted or failed sampler): such
            a model is never saved.
        """
        check_is_fitted(self, "idata_")
        path = Path(path)
        bad = _nonfinite_posterior(self.idata_)
        if bad:
            raise ValueError(
                f"not saving {path}: the posterior holds non-finite values ({'; '.join(bad[:3])}"
                f"{'; ...' if len(bad) > 3 else ''}), as after an interrupted or failed "
                "sampler; refit the model"
            )
        config = self._config_json()
        space_json = self.space_.to_json()
        tree = xr.DataTree()
        for s, t in self.idata_.items():
            tree[f"{s}/posterior"] = xr.DataTree(t["posterior"].to_dataset())
            tree[f"{s}/sample_stats"] = xr.DataTree(t["sample_stats"].to_dataset())
        tab = self.training_table_.reset_index(drop=False)
        tab.columns = [str(c) for c in tab.columns]
        data = {}
        for col in tab.columns:
            values = tab[col]
            if pd.api.types.is_numeric_dtype(values):
                data[col] = ("row", values.to_numpy())
            else:
                data[col] = ("row", values.astype(str).to_numpy(dtype=object))
        tree["training_table"] = xr.DataTree(xr.Dataset(data))
        tree.attrs.update(
            {
                "model_type": type(self).__name__,
                "format_version": FORMAT_VERSION,
                "versions": json.dumps(_versions(), sort_keys=True),
                "config": config,
                "config_hash": _sha(config),
                "spec": json.dumps(self.spec_, sort_keys=True),
                "space": space_json,
                "space_hash": _sha(space_json),
                "space_fingerprint": self.space_.fingerprint,
                "columns": json.dumps(None if self.columns is None else dict(self.columns)),
                "stacking_weights": json.dumps(self.stacking_weights_.to_dict()),
                "diagnostics": json.dumps(self.diagnostics_),
                "data_hash": self.data_hash_,
                "sampler": self.sampler_,
                "training_columns": json.dumps(list(self.training_table_.columns)),
                "training_index_name": json.dumps(self.training_table_.index.name),
            }
        )
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            tree.to_netcdf(tmp, engine="h5netcdf")
            os.replace(tmp, path)
        except BaseException:  # KeyboardInterrupt too: never leave the temporary file
            tmp.unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """Load a model written by :meth:`save`, checking it rather than trusting it.

        What the file says about itself is checked against what it holds:

        * it is read only if nothing in it points at another file (HDF5 external links,
          variables stored in external files, virtual variables): loading reads ``path`` and
          nothing else (the training table is a group of the same file; the process space and
          configuration are JSON in its attributes and never name a file to read);
        * every posterior draw must be finite;
        * the stored training table must hold every factor and the response, finite and
          within the process space's limits;
        * the convergence diagnostics (R-hat, ESS, divergences, BFMI) and, for several
          structures, the LOO figures and stacking weights are recomputed from the stored
          draws; the diagnostics and weights written in the file's attributes are not used
          (weights that differ from the recomputed ones by more than 0.01 are refused);
        * the stored posterior's mean response at the training setpoints must lie within the
          response's limits (``space_.response.limits``): a posterior that predicts
          impossible values was edited or is corrupt, so it is refused, not merely warned
          about.

        Parameters
        ----------
        path : str or os.PathLike
            File written by :meth:`save`.

        Returns
        -------
        BayesianYieldModel
            The fitted model; predictions are identical to the saved one's.

        Raises
        ------
        FileNotFoundError
            If there is no file at ``path``.
        IncompatibleModelError
            If the file is not a bayesbio model file, holds another model type or another
            format version, has a configuration or process space that does not match its
            recorded hash, or fails one of the checks above. Files written before spaces
            were stored are read with the default space (the only one there was).
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: no such model file; fit one first (`bayesbio fit --data TABLE --out "
                "DIR` writes DIR/model.nc)"
            )
        try:
            outside = _outside_references(path)
        except OSError:
            raise IncompatibleModelError(
                f"{path} is not a model file written by bayesbio (not netCDF-4/HDF5); pass the "
                "model.nc that `bayesbio fit` or `bayesbio study` wrote"
            ) from None
        if outside:
            raise IncompatibleModelError(
                f"{path} points at other files ({'; '.join(outside[:3])}); a model file written "
                "by bayesbio never does, so it is not read: refit the model"
            )
        with xr.open_datatree(path, engine="h5netcdf") as handle:
            tree = handle.load()
        attrs = dict(tree.attrs)
        if attrs.get("model_type") != cls.__name__:
            raise IncompatibleModelError(
                f"{path} holds a {attrs.get('model_type')!r} model, not {cls.__name__}"
            )
        if str(attrs.get("format_version")) != FORMAT_VERSION:
            versions = attrs.get("versions", "{}")
            raise IncompatibleModelError(
                f"{path} was written in model format {attrs.get('format_version')!r} "
                f"(packages {versions}); this bayesbio reads format {FORMAT_VERSION!r}. "
                "Refit the model with this version, or load it with the version that wrote it."
            )
        config = str(attrs.get("config", ""))
        if _sha(config) != attrs.get("config_hash"):
            raise IncompatibleModelError(
                f"{path}: the stored configuration does not match its hash (it was changed "
                "after saving); refit instead of editing a saved model"
            )
        params = json.loads(config)
        params["groups"] = None if params["groups"] is None else tuple(params["groups"])
        params["structures"] = tuple(params["structures"])
        space = _stored_space(path, attrs, params)
        model = cls(**params)
        spec = json.loads(attrs["spec"])
        spec.setdefault("factors", list(space.factor_names))
        if spec["factors"] != list(space.factor_names):
            raise IncompatibleModelError(
                f"{path}: the stored model was fitted on factors {spec['factors']} but its "
                f"stored process space has {list(space.factor_names)}; refit the model"
            )
        model.space_ = space
        model.spec_ = spec
        model.idata_ = {}
        stored_weights = pd.Series(json.loads(attrs["stacking_weights"]), dtype=float)
        for s in stored_weights.index:
            t = xr.DataTree()
            t["posterior"] = xr.DataTree(tree[f"{s}/posterior"].to_dataset())
            t["sample_stats"] = xr.DataTree(tree[f"{s}/sample_stats"].to_dataset())
            model.idata_[s] = t
        bad = _nonfinite_posterior(model.idata_)
        if bad:
            raise IncompatibleModelError(
                f"{path}: the stored posterior holds non-finite values ({'; '.join(bad[:3])}"
                f"{'; ...' if len(bad) > 3 else ''}), as after an interrupted sampler; refit "
                "the model"
            )
        model.data_hash_ = attrs["data_hash"]
        model.sampler_ = attrs["sampler"]
        ds = tree["training_table"].to_dataset()
        tab = pd.DataFrame({c: ds[c].values for c in ds.data_vars})
        index_col = "index" if "index" in tab.columns else tab.columns[0]
        tab = tab.set_index(index_col)
        tab.index.name = json.loads(attrs["training_index_name"])
        columns = json.loads(attrs["training_columns"])
        missing = [c for c in columns if c not in tab.columns]
        if missing:
            raise IncompatibleModelError(
                f"{path}: the stored training table lacks column(s) {missing}; the file was "
                "edited or is corrupt: refit the model"
            )
        tab = tab[columns]
        for g in spec["groups"]:
            tab[g] = tab[g].astype(str)
        _check_stored_table(path, tab, space)
        model.training_table_ = tab
        model.n_features_in_ = space.k
        # diagnostics and stacking weights from the draws, never from the file's attributes
        model.diagnostics_ = {s: sampling.diagnose(t) for s, t in model.idata_.items()}
        with warnings.catch_warnings(record=True) as caught:  # LOO notices, as at fit
            warnings.simplefilter("always")
            model._stack()
        for w in caught:
            _log.info("recomputing LOO of %s: %s", path, w.message)
        recomputed = model.stacking_weights_
        gap = float(np.max(np.abs(recomputed.to_numpy() - stored_weights.to_numpy())))
        if not gap <= 0.01:
            raise IncompatibleModelError(
                f"{path}: the stored stacking weights {stored_weights.round(3).to_dict()} differ "
                f"from those recomputed from its draws {recomputed.round(3).to_dict()}; the file "
                "was edited: refit instead of editing a saved model"
            )
        if gap <= 1e-9:  # keep the saved values bit for bit: identical predictions
            model.stacking_weights_ = stored_weights.rename("weight")
        model._failures()
        model._lack_of_fit()
        lo, hi = space.response.limits
        mean = model.predict(tab)
        off = ~np.isfinite(mean) | (mean < lo) | (mean > hi)
        if off.any():
            worst = float(mean[off][np.argmax(np.abs(mean[off]))])
            raise IncompatibleModelError(
                f"{path}: the stored posterior predicts a mean {space.response.name} of "
                f"{worst:.4g} {space.response.unit} at {int(off.sum())} training setpoint(s), "
                f"outside the process limits {lo:g} to {hi:g} {space.response.unit}; the file "
                "was edited or is corrupt: refit the model"
            )
        if _data_hash(tab) != model.data_hash_:
            _log.info("training table of %s re-hashes differently after the round trip", path)
        return model
