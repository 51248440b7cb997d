"""The PyMC graph of one structure: priors, group effects, slopes and the likelihood.

:func:`build_model` validates a batch table, makes its spec (:mod:`._bayes_spec`) and builds
the graph (:func:`_model_from_spec`), without sampling.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt

from bayesbio import schema
from bayesbio.checks import check_choice
from bayesbio.models import _bayes_design as design
from bayesbio.models._bayes_spec import (
    _failure_law,
    _make_spec,
    _priors,
    _varying_terms,
    structure_spec,
)
from bayesbio.models._tables import validate
from bayesbio.space import ProcessSpace, resolve_space

STRUCTURES = design.STRUCTURES


def _codes(table: pd.DataFrame, spec: dict[str, Any], g: str) -> np.ndarray:
    return pd.Index(spec["levels"][g]).get_indexer(table[g].astype(str)).astype(np.int64)


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
        one (see :mod:`bayesbio.models.bayesian`).
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
