"""Simulation-based calibration (SBC) of the Bayesian yield model on a declared design.

SBC (Talts et al. 2018, *Validating Bayesian inference algorithms with simulation-based
calibration*, arXiv:1804.06788) checks the whole chain prior -> data -> sampler -> posterior:
draw parameters from the prior, simulate a batch table from them on your own design (its
setpoints and groups), fit the model to that table, and record the rank of the true value
among the posterior draws. When the model is fitted with the priors it was simulated from
and the sampler is right, every parameter's rank is uniform; a rank histogram that is
U-shaped (posterior too narrow), humped (too wide) or sloped (biased) names the parameter
the fit gets wrong.

It answers a question a process scientist declaring a new process can ask before trusting a
posterior: on my design (few batches, clustered setpoints, unbalanced groups), does the
model's inference recover what generated the data, with honest uncertainty? With
``fit_priors`` it also shows what a prior that contradicts the data-generating one does.

SBC needs priors that do not depend on the data. The model centres its intercept prior on the
median training log-yield and scales its coefficient priors by their sd; here both are frozen
(``intercept_loc``, ``log_yield_sd``), from the design table's response when it has one.

Examples
--------
>>> result = simulation_based_calibration(design, space=space, n_simulations=200)
>>> result.summary            # chi-square uniformity test of each parameter's ranks
>>> result.passed             # every parameter uniform (Bonferroni over parameters)
>>> fig = result.plot()       # rank histograms with the 99 % band of a uniform histogram
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from scipy import stats

from bayesbio.checks import check_fraction, check_int
from bayesbio.models import _bayes_design as design
from bayesbio.models.bayesian import BayesianYieldModel, build_model, data_priors
from bayesbio.space import ProcessSpace, resolve_space

__all__ = ["CalibrationResult", "simulation_based_calibration"]

#: Scalar and per-level parameters whose ranks are recorded (when the model has them).
RANKED = (
    "intercept",
    "sigma",
    "nu",
    "failure_rate",
    "gp_sd",
    "gp_lengthscale",
    "spline_sd",
    "sigma_b",
    "gamma",
)
_LOG_CLIP = 300.0  # simulated log-yields are clipped to +-300 so exp() stays finite


@dataclass
class CalibrationResult:
    """Ranks and uniformity tests of a simulation-based calibration.

    Attributes
    ----------
    ranks : pandas.DataFrame
        One row per simulation, one column per parameter: the number of the ``n_ranks``
        posterior draws below the true (prior-drawn) value, from 0 to ``n_ranks``.
    truth : pandas.DataFrame
        The prior-drawn parameter values, like ``ranks``.
    summary : pandas.DataFrame
        Per parameter: ``chi2`` and ``p_value`` of the chi-square test of uniform ranks over
        ``n_bins`` bins, ``mean_rank`` (``n_ranks / 2`` expected; above: the posterior sits
        below the truth) and ``uniform`` (``p_value >= alpha / n_parameters``).
    diagnostics : pandas.DataFrame
        Per simulation: ``max_r_hat``, ``min_ess_bulk`` and ``divergences`` of its fit.
    n_ranks : int
        Posterior draws per rank (evenly thinned from each fit's draws).
    n_bins : int
        Bins of the uniformity test and of :meth:`plot`.
    alpha : float
        Family-wise level of the uniformity tests.
    """

    ranks: pd.DataFrame
    truth: pd.DataFrame
    summary: pd.DataFrame
    diagnostics: pd.DataFrame
    n_ranks: int
    n_bins: int
    alpha: float

    @property
    def passed(self) -> bool:
        """True when every parameter's ranks pass the uniformity test."""
        return bool(self.summary["uniform"].all())

    def plot(self, *, max_columns: int = 4) -> plt.Figure:
        """Rank histograms, one panel per parameter, with the 99 % band of a uniform one.

        Parameters
        ----------
        max_columns : int, default 4
            Panels per row.

        Returns
        -------
        matplotlib.figure.Figure
        """
        names = list(self.ranks.columns)
        ncol = max(1, min(max_columns, len(names)))
        nrow = math.ceil(len(names) / ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.4 * nrow), squeeze=False)
        n_sim = len(self.ranks)
        edges = _bin_edges(self.n_ranks, self.n_bins)
        share = np.diff(edges) / (self.n_ranks + 1)
        lo, hi = stats.binom.ppf([0.005, 0.995], n_sim, share.mean())
        for ax, name in zip(axes.ravel(), names, strict=False):
            counts = np.histogram(self.ranks[name], bins=edges)[0]
            ax.axhspan(lo, hi, color="0.85", zorder=0)
            ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="C0",
                   edgecolor="white")  # fmt: skip
            p = float(self.summary.loc[name, "p_value"])
            colour = "black" if bool(self.summary.loc[name, "uniform"]) else "C3"
            ax.set_title(f"{name}  (p = {p:.3f})", fontsize=9, color=colour)
            ax.set_xlim(0, self.n_ranks + 1)
            ax.set_yticks([])
        for ax in axes.ravel()[len(names) :]:
            ax.set_visible(False)
        fig.suptitle(
            f"Simulation-based calibration: ranks of {n_sim} simulations among "
            f"{self.n_ranks} posterior draws (grey: 99 % band of a uniform bin)",
            fontsize=10,
        )
        fig.tight_layout(rect=(0.0, 0.0, 1.0, 1.0 - 0.35 / fig.get_figheight()))
        return fig


def _bin_edges(n_ranks: int, n_bins: int) -> np.ndarray:
    """Integer bin edges over the ``n_ranks + 1`` possible ranks (as equal as possible)."""
    return np.unique(np.round(np.linspace(0, n_ranks + 1, n_bins + 1))).astype(float)


def _scalars(ds: xr.Dataset, n_quadratic: int) -> pd.DataFrame:
    """Flatten the ranked parameters of a prior or posterior dataset to named columns."""
    cols: dict[str, np.ndarray] = {}
    names = [*RANKED, *[v for v in ds.data_vars if v.startswith(("sigma_", "a_"))]]
    for name in dict.fromkeys(names):
        if name not in ds.data_vars:
            continue
        da = ds[name]
        other = [d for d in da.dims if d not in ("chain", "draw")]
        flat = da.stack(sample=("chain", "draw")).transpose("sample", *other).values
        flat = flat.reshape(flat.shape[0], -1)
        if not other:
            cols[name] = flat[:, 0]
            continue
        labels = [str(c) for c in da[other[0]].values] if len(other) == 1 else None
        for j in range(flat.shape[1]):
            cols[f"{name}[{labels[j] if labels else j}]"] = flat[:, j]
    beta = ds["beta"]
    terms = [str(t) for t in beta["term"].values][:n_quadratic]
    flat = beta.stack(sample=("chain", "draw")).transpose("sample", "term").values
    for j, term in enumerate(terms):
        cols[f"beta[{term}]"] = flat[:, j]
    return pd.DataFrame(cols)


def _frozen_priors(
    table: pd.DataFrame, space: ProcessSpace, priors: Mapping[str, float | None] | None
) -> dict[str, float | None]:
    out = dict(priors or {})
    response = space.response.name
    if out.get("intercept_loc") is None or out.get("log_yield_sd") is None:
        if response not in table.columns:
            raise ValueError(
                "simulation-based calibration needs priors that do not depend on the data: "
                f"the design table has no response column {response!r} to freeze them from, so "
                "pass priors={'intercept_loc': <log of a typical yield>, 'log_yield_sd': "
                "<sd of log-yield>}"
            )
        y = pd.to_numeric(table[response], errors="coerce").to_numpy(dtype=float)
        y = y[np.isfinite(y) & (y > 0)]
        if len(y) < 2:
            raise ValueError(
                f"column {response!r} of the design table has fewer than 2 positive values to "
                "freeze the priors from; pass priors={'intercept_loc': ..., 'log_yield_sd': ...}"
            )
        # frozen exactly as a fit on this table would set them
        out["intercept_loc"], out["log_yield_sd"] = data_priors(np.log(y), out)
    return out


def simulation_based_calibration(
    table: pd.DataFrame,
    *,
    space: ProcessSpace | str | os.PathLike[str] | None = None,
    structure: str = "quadratic",
    likelihood: str = "auto",
    groups: Sequence[str] | None = None,
    curvature: str = "auto",
    varying_slopes: bool | str = "auto",
    priors: Mapping[str, float | None] | None = None,
    fit_priors: Mapping[str, float | None] | None = None,
    n_simulations: int = 200,
    n_ranks: int = 99,
    n_bins: int = 10,
    alpha: float = 0.01,
    draws: int = 800,
    tune: int = 500,
    chains: int = 2,
    random_seed: int | None = None,
) -> CalibrationResult:
    """Simulation-based calibration of :class:`BayesianYieldModel` on a design.

    Parameters
    ----------
    table : pandas.DataFrame
        The design: the space's factors and group columns of the batches to simulate (e.g. a
        historical batch table). Its response column, when present, only freezes the priors
        (``intercept_loc``, ``log_yield_sd``) that the model otherwise takes from the data.
    space : ProcessSpace, path or None, optional
        The process space (None: the default space). Its response limits are not applied to
        simulated yields: the prior may draw any positive yield.
    structure : {"quadratic", "spline", "gp"}, default "quadratic"
        One response-surface structure (stacking is not a generative model: calibrate each
        structure of a stack on its own).
    likelihood, groups, curvature, varying_slopes
        Model settings, as in :class:`BayesianYieldModel` (defaults: the model's defaults).
    priors : mapping, optional
        Prior overrides for simulating and fitting (:data:`DEFAULT_PRIORS`);
        ``intercept_loc`` and ``log_yield_sd`` default to the design's response.
    fit_priors : mapping, optional
        Overrides applied to the fit only: a prior that differs from the one the data came
        from (what-if; the ranks then show its bias). Default: the same priors.
    n_simulations : int, default 200
        Simulated data sets (>= 10; 100-200 to detect a moderate miscalibration).
    n_ranks : int, default 99
        Posterior draws per rank, evenly thinned from the ``chains x draws`` draws (thinning
        reduces the autocorrelation that would widen the histogram's spread).
    n_bins : int, default 10
        Bins of the chi-square uniformity test.
    alpha : float, default 0.01
        Family-wise level: a parameter is flagged when its ``p_value < alpha / n_parameters``.
    draws, tune, chains : int, default 800, 500, 2
        Sampler settings of each fit.
    random_seed : int, optional
        Seeds the prior draws and every fit; the same seed gives the same ranks.

    Returns
    -------
    CalibrationResult
        Ranks, prior-drawn values, the per-parameter uniformity tests and each fit's
        sampling diagnostics.

    Raises
    ------
    ValueError
        For a bad argument (named), or when the priors cannot be frozen (no response column
        and no ``intercept_loc``/``log_yield_sd``).
    """
    if not isinstance(table, pd.DataFrame) or table.empty:
        raise ValueError("table must be a non-empty pandas DataFrame (the design to simulate on)")
    n_simulations = check_int("n_simulations", n_simulations, minimum=10)
    draws = check_int("draws", draws, minimum=10)
    chains = check_int("chains", chains, minimum=1)
    # the bounds name what they come from: ranks among the draws, bins over the rank values
    n_ranks = check_int(
        "n_ranks (at most chains x draws)", n_ranks, minimum=9, maximum=chains * draws
    )
    n_bins = check_int("n_bins (at most n_ranks + 1)", n_bins, minimum=2, maximum=n_ranks + 1)
    alpha = check_fraction("alpha", alpha)
    sp = resolve_space(space)
    sp = dataclasses.replace(sp, response=dataclasses.replace(sp.response, limits=(0.0, math.inf)))
    gen_priors = _frozen_priors(table, sp, priors)
    fit_pr = {**gen_priors, **dict(fit_priors or {})}
    design_table = table.copy()
    design_table[sp.response.name] = float(np.exp(gen_priors["intercept_loc"]))
    model = build_model(
        design_table,
        structure=structure,
        groups=groups,
        priors=gen_priors,
        likelihood=likelihood,
        varying_slopes=varying_slopes,
        space=sp,
        curvature=curvature,
    )
    spec = model.bayesbio_spec
    n_lin, n_int, _ = design.n_terms(structure, sp.k)
    n_quadratic = 2 * n_lin + n_int if structure != "spline" else n_lin + n_int
    ss = np.random.SeedSequence(random_seed)
    prior_seed, *fit_seeds = (int(s.generate_state(1)[0]) for s in ss.spawn(n_simulations + 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prior = pm.sample_prior_predictive(draws=n_simulations, model=model, random_seed=prior_seed)
    sims = prior["prior_predictive"]["log_yield_obs"].values.reshape(n_simulations, -1)
    truth = _scalars(prior["prior"].to_dataset(), n_quadratic)
    keep = np.linspace(0, chains * draws - 1, n_ranks).round().astype(int)
    ranks: list[dict[str, int]] = []
    diag: list[dict[str, float]] = []
    response = sp.response.name
    for i in range(n_simulations):
        sim_table = design_table.copy()
        sim_table[response] = np.exp(np.clip(sims[i], -_LOG_CLIP, _LOG_CLIP))
        fit = BayesianYieldModel(
            space=sp,
            structures=(structure,),
            groups=groups,
            priors=fit_pr,
            likelihood=spec["likelihood"],
            varying_slopes=varying_slopes,
            curvature=curvature,
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=fit_seeds[i],
            extra_runs=0,  # every fit the same fixed-length run: ranks over chains x draws
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit.fit(sim_table)
        post = _scalars(fit.idata_[structure]["posterior"].to_dataset(), n_quadratic)
        sub = post[list(truth.columns)].to_numpy()[keep]  # same order as the truth
        below = (sub < truth.to_numpy()[i]).sum(axis=0)
        ranks.append(dict(zip(truth.columns, below.astype(int), strict=True)))
        d = fit.diagnostics_[structure]
        diag.append(
            {
                "max_r_hat": float(d["max_r_hat"]),
                "min_ess_bulk": float(d["min_ess_bulk"]),
                "divergences": float(d["divergences"]),
            }
        )
    rank_df = pd.DataFrame(ranks, columns=truth.columns)
    return CalibrationResult(
        ranks=rank_df,
        truth=truth,
        summary=_uniformity(rank_df, n_ranks, n_bins, alpha),
        diagnostics=pd.DataFrame(diag),
        n_ranks=n_ranks,
        n_bins=n_bins,
        alpha=alpha,
    )


def _uniformity(ranks: pd.DataFrame, n_ranks: int, n_bins: int, alpha: float) -> pd.DataFrame:
    """Chi-square test of uniform ranks per parameter (expected counts by bin width)."""
    edges = _bin_edges(n_ranks, n_bins)
    expected = len(ranks) * np.diff(edges) / (n_ranks + 1)
    rows = []
    for name in ranks.columns:
        counts = np.histogram(ranks[name], bins=edges)[0]
        chi2, p = stats.chisquare(counts, f_exp=expected)
        rows.append(
            {
                "parameter": name,
                "chi2": float(chi2),
                "p_value": float(p),
                "mean_rank": float(ranks[name].mean()),
            }
        )
    out = pd.DataFrame(rows).set_index("parameter")
    out["uniform"] = out["p_value"] >= alpha / max(len(out), 1)
    return out
