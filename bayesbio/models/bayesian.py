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

The code
--------
This module holds the estimator; its parts live in one module each: the priors and the
model specification (:mod:`._bayes_spec`), the PyMC graph and :func:`build_model`
(:mod:`._bayes_graph`), the designs of the structures (:mod:`._bayes_design`), sampling and
its checks (:mod:`._bayes_sampling`), the numpy predictive engine (:mod:`._bayes_predict`),
LOO stacking (:mod:`._bayes_stacking`), save and load (:mod:`._bayes_io`) and the lack-of-fit
test (:mod:`._discrepancy`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Self

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from bayesbio import schema
from bayesbio.checks import KINDS, check_choice, check_fraction, check_int, make_rng
from bayesbio.models import _bayes_design as design
from bayesbio.models import _bayes_sampling as sampling
from bayesbio.models import _discrepancy as lack_of_fit
from bayesbio.models._bayes_graph import _model_from_spec, build_model
from bayesbio.models._bayes_io import FORMAT_VERSION as FORMAT_VERSION
from bayesbio.models._bayes_io import IncompatibleModelError, _data_hash, _PersistMixin
from bayesbio.models._bayes_predict import (
    _CHUNK,
    _T_UPPER,
    _block,
    _coefficients,
    _failure_probability,
    _hdi,
    _posterior_arrays,
    _quantiles,
    _residual_chunks,
    _Rows,
    _t_weight,
)
from bayesbio.models._bayes_sampling import clear_compile_cache
from bayesbio.models._bayes_spec import CURVATURES as CURVATURES
from bayesbio.models._bayes_spec import (
    DEFAULT_PRIORS,
    _duplicate_structure,
    _make_spec,
    _priors,
    _signature,
    structure_spec,
)
from bayesbio.models._bayes_spec import data_priors as data_priors
from bayesbio.models._bayes_stacking import _loo_stacking
from bayesbio.models._tables import (
    SpaceMismatchError,
    check_factor_columns,
    quiet_extrapolation,
    validate,
    warn_beyond_data,
)
from bayesbio.models.protocol import discounted
from bayesbio.schema import warn_missing_groups
from bayesbio.space import ProcessSpace, resolve_space

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

STRUCTURES = design.STRUCTURES
# KINDS (re-exported from bayesbio.checks): seen groups, new groups drawn from the
# population, the population mean.

# adaptation="auto": nutpie's draw-variance adaptation below this many batches (BENCHMARKS.md)
_DRAW_DIAG_MAX_ROWS = 100
_PREDICT_MEAN_DRAWS = 1000
_FAILURE_MAX_DRAWS = 1000
_FAILURE_RATE_DRAWS = 4000
_FAILURE_CI_PROB = 0.94
_DISCREPANCY_DRAWS = 400  # posterior draws for the residuals the discrepancy field is fitted to
_INTERVAL_ROWS = 16384


class ConvergenceWarning(UserWarning):
    """MCMC diagnostics failed a threshold (``bayesbio.checks.CONVERGENCE``)."""


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
# The estimator
# --------------------------------------------------------------------------------------


class BayesianYieldModel(_PersistMixin, RegressorMixin, BaseEstimator):
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
        barely moves the surface. :meth:`outlying_batches` lists those by batch id.
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
        table = validate(df, space, groups=self.groups, min_rows=2)
        warn_missing_groups(table, space, self.groups, f"{type(self).__name__}.fit")
        # the model's columns only: another response, notes or dates in the file are not the
        # model's (and a name such as "Acetate (g/L)" could not be saved in model.nc)
        keep = {space.batch_id, space.response.name, *space.factor_names, *space.groups}
        keep |= set(self.groups or ())
        return table[[c for c in table.columns if c in keep]]

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
        names = list(self.idata_)
        if len(names) == 1:  # nothing to stack: skip the LOO pass
            self.stacking_weights_ = pd.Series([1.0], index=names, name="weight")
            return
        self.stacking_weights_, message = _loo_stacking(
            self.idata_,
            {s: self._posterior(s) for s in names},
            {s: self._spec_of(s) for s in names},
            self.training_table_,
            self.space_,
            self.diagnostics_,
            random_seed=self.random_seed,
        )
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

    def outlying_batches(self, threshold: float | None = None) -> pd.DataFrame:
        """Return the training batches the fit treats as failed or outlying, by batch id.

        Parameters
        ----------
        threshold : float, optional
            Mixture likelihood: smallest posterior P(failed) listed (default 0.5).
            Student-t likelihood: largest weight in the fit listed (default
            :data:`OUTLIER_WEIGHT`, 0.25: such a batch barely moves the surface).

        Returns
        -------
        pandas.DataFrame
            One row per batch, most extreme first: the batch id (where the training table
            has one), group columns, response and ``p_failed`` (mixture) or ``weight``
            (Student-t). Empty when no batch passes the threshold.

        Raises
        ------
        ValueError
            For the normal likelihood, which has no per-batch measure (fit with
            ``likelihood="student_t"`` or ``"mixture"``).
        """
        check_is_fitted(self, "idata_")
        limit = None if threshold is None else check_fraction("threshold", threshold)
        found = discounted(self, self.training_table_.index, limit)
        if found is None:
            raise ValueError(
                f"outlying_batches: the {self.spec_['likelihood']!r} likelihood gives no "
                "per-batch measure; fit with likelihood='student_t' or 'mixture'"
            )
        keep, column = found
        table, space = self.training_table_, self.space_
        cols = [space.batch_id, *space.group_columns(table), space.response.name]
        out = table.loc[keep.index, [c for c in cols if c in table.columns]].copy()
        out[column] = keep.to_numpy()
        return out.reset_index(drop=True)

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
        """Posterior predictive draws of the response, in its unit, vectorised in numpy.

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
        """Posterior mean response of a batch at each setpoint, in the response's unit.

        Parameters
        ----------
        X : pandas.DataFrame
            Setpoints (the space's factors and group columns).
        kind : {"existing", "new_group", "population"}, default "existing"
            See :meth:`predict_draws`.

        Returns
        -------
        numpy.ndarray
            Stacking-weighted posterior mean of ``exp(mu + sigma**2 / 2)``, in the
            response's unit (g/L for the demo process). With
            ``likelihood="mixture"`` this is the expected yield of a *normal* (not failed)
            batch; failures show in :meth:`predict_draws` with ``noise=True``.
        """
        check_is_fitted(self, "idata_")
        check_choice("kind", kind, KINDS)
        table = self._prediction_table(X, "predict")
        warn_beyond_data(table, self.space_, self.training_table_, f"{type(self).__name__}.predict")
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
        """Equal-tailed predictive interval of a new batch's response, in its unit.

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
            ``mean``, ``lower``, ``upper`` in the response's unit, indexed like ``X``.
        """
        ci_prob = check_fraction("ci_prob", ci_prob)
        check_is_fitted(self, "idata_")
        table = self._prediction_table(X, "predict_interval")  # errors name the method called
        who = f"{type(self).__name__}.predict_interval"
        warn_beyond_data(table, self.space_, self.training_table_, who)
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
        with quiet_extrapolation():  # said once, above
            mean = self.predict(X, kind=kind)
        return pd.DataFrame({"mean": mean, "lower": lower, "upper": upper}, index=X.index)
