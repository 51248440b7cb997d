"""Tests of the Gaussian-process structure (``structures=("gp",)``) of the Bayesian model.

The GP is in its Hilbert-space (HSGP) basis form: fixed eigenfunctions of a box, weighted by
the square root of a Matern-5/2 spectral density. The basis is checked against the exact
kernel without sampling; one small real fit checks that a known asymmetric 1-D response is
recovered inside its bands where a parabola cannot follow it.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr
from scipy.special import gamma as gamma_fn

from bayesbio.models import _bayes_design as design
from bayesbio.models import _bayes_predict as engine
from bayesbio.models import _bayes_sampling as sampling
from bayesbio.models.bayesian import BayesianYieldModel, build_model
from bayesbio.space import Factor, ProcessSpace, Response


def _matern52(r: np.ndarray) -> np.ndarray:
    s5 = np.sqrt(5.0) * r
    return (1.0 + s5 + 5.0 / 3.0 * r**2) * np.exp(-s5)


def _matern52_psd(omega: np.ndarray, ls: np.ndarray) -> np.ndarray:
    """Spectral density of the unit-variance ARD Matern-5/2 kernel (Rasmussen & Williams 4.15)."""
    d = omega.shape[1]
    nu = 2.5
    const = 2**d * np.pi ** (d / 2) * gamma_fn(nu + d / 2) * (2 * nu) ** nu / gamma_fn(nu)
    return const * np.prod(ls) * (2 * nu + (omega**2) @ (ls**2)) ** (-(nu + d / 2))


def test_basis_size_follows_the_hyperbolic_cross():
    sizes = {k: len(design.gp_indices(k)) for k in range(1, 7)}
    assert sizes == {1: 12, 2: 35, 3: 74, 4: 89, 5: 96, 6: 76}
    for k in range(1, 7):
        idx = design.gp_indices(k)
        assert (idx >= 1).all() and len(np.unique(idx, axis=0)) == len(idx)
        # every factor's main effect gets the finest resolution of all
        for d in range(k):
            main = idx[(np.delete(idx, d, axis=1) == 1).all(axis=1), d]
            assert main.max() == idx.max()


def test_hsgp_basis_reproduces_the_matern_kernel_in_one_dimension():
    z = np.linspace(-1.0, 1.0, 41)[:, None]
    phi = design.gp_basis(z)
    # short and middle length scales: close; long ones lose variance near the box's walls
    # (the HSGP's Dirichlet boundary at z = +-2.5), which the quadratic mean makes up for
    for ls, tol in ((0.6, 0.06), (0.8, 0.06), (1.5, 0.16)):
        s = _matern52_psd(design.gp_frequencies(1), np.array([ls]))
        approx = phi @ np.diag(s) @ phi.T
        exact = _matern52(np.abs(z - z.T) / ls)
        assert np.max(np.abs(approx - exact)) < tol, ls


def test_hsgp_basis_reproduces_a_two_factor_kernel():
    rng = np.random.default_rng(0)
    z = rng.uniform(-1.0, 1.0, (60, 2))
    phi = design.gp_basis(z)
    ls = np.array([0.8, 1.0])
    s = _matern52_psd(design.gp_frequencies(2), ls)
    approx = phi @ np.diag(s) @ phi.T
    r = np.sqrt((((z[:, None, :] - z[None, :, :]) / ls) ** 2).sum(-1))
    error = np.abs(approx - _matern52(r))
    assert error.max() < 0.1 and error.mean() < 0.02


def test_psd_in_the_model_matches_the_textbook_formula():
    omega = design.gp_frequencies(3)
    ls = np.array([0.7, 1.1, 2.0])
    mine = pm.gp.cov.Matern52(3, ls=ls).power_spectral_density(omega).eval()
    np.testing.assert_allclose(mine, _matern52_psd(omega, ls), rtol=1e-10)


def test_gp_terms_are_the_quadratic_mean_plus_named_basis_functions():
    space = ProcessSpace.default()
    terms = design.population_terms("gp", space)
    quad = design.population_terms("quadratic", space)
    assert terms[: len(quad)] == quad
    assert terms[len(quad)] == "gp[1,1,1,1]" and len(terms) == len(quad) + 89
    z = np.zeros((3, 4))
    assert design.population_design(z, "gp").shape == (3, len(terms))


def _space_1d() -> ProcessSpace:
    return ProcessSpace(
        (Factor("temperature", "degC", (30.0, 40.0), (0.0, 60.0), short="T"),),
        Response("titer", "g/L", (0.0, 50.0), "maximise", "Titer"),
        groups=("site",),
        batch_id="run",
        name="1-factor cardinal process",
    )


def _cardinal(t: np.ndarray) -> np.ndarray:
    """Rosso et al. cardinal temperature model: steep fall above the optimum (log-titer)."""
    t_min, t_opt, t_max = 24.0, 37.0, 41.0
    num = (t - t_max) * (t - t_min) ** 2
    den = (t_opt - t_min) * (
        (t_opt - t_min) * (t - t_opt) - (t_opt - t_max) * (t_opt + t_min - 2 * t)
    )
    return np.log(0.4 + 4.0 * np.clip(num / den, 0.0, None))


def _cardinal_table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = rng.uniform(30.0, 40.0, n)
    site = np.arange(n) % 2
    offsets = np.array([-0.03, 0.03])
    y = np.exp(_cardinal(t) + offsets[site] + 0.04 * rng.standard_normal(n))
    return pd.DataFrame(
        {
            "run": [f"R{i}" for i in range(n)],
            "temperature": t,
            "site": np.array(["A", "B"])[site],
            "titer": y,
        }
    )


def test_gp_model_builds_with_finite_logp_and_ard_length_scales():
    space = _space_1d()
    table = _cardinal_table(20, seed=1)
    model = build_model(table, structure="gp", space=space)
    assert "gp_lengthscale" in model.named_vars and "gp_sd" in model.named_vars
    assert np.isfinite(model.compile_logp()(model.initial_point()))
    model4 = build_model(_kspace4_table(), structure="gp", space=ProcessSpace.default())
    assert model4["gp_lengthscale"].eval().shape == (4,)


def _kspace4_table() -> pd.DataFrame:
    sp = ProcessSpace.default()
    rng = np.random.default_rng(3)
    x = rng.uniform(sp.lower, sp.upper, (30, 4))
    table = pd.DataFrame(x, columns=list(sp.factor_names))
    table["scale"] = "50L"
    table["site"] = np.array(["s1", "s2"])[np.arange(30) % 2]
    table["campaign"] = "c1"
    table["batch_id"] = [f"B{i}" for i in range(30)]
    table["yield"] = np.exp(1.5 + 0.05 * rng.standard_normal(30))
    return table


def test_numpy_log_likelihood_matches_pymc_for_the_gp(monkeypatch):
    """The numpy predictive engine reads the GP's weights exactly as the PyMC graph uses them."""
    space = _space_1d()
    table = _cardinal_table(25, seed=2)
    calls = []

    def fake(model, key, **kwargs):
        calls.append(model)
        prior = pm.sample_prior_predictive(draws=40, model=model, random_seed=0)
        ds = prior["prior"].to_dataset()
        post = ds.expand_dims(chain=1) if "chain" not in ds.dims else ds
        stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((1, 40), dtype=bool))})
        tree = xr.DataTree()
        tree["posterior"] = xr.DataTree(post)
        tree["sample_stats"] = xr.DataTree(stats)
        return tree, "fake"

    monkeypatch.setattr(sampling, "sample_model", fake)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # one fake run of 40 prior draws (its ESS < 400 would trigger extra runs)
        model = BayesianYieldModel(space=space, structures=("gp",), extra_runs=0).fit(table)
    tree = model.idata_["gp"].copy()
    pm.compute_log_likelihood(tree, model=calls[-1], progressbar=False)
    ref = tree["log_likelihood"]["log_yield_obs"].values.reshape(-1, len(table))
    arrays = engine._posterior_arrays(model.idata_["gp"], model.spec_)
    mine = engine._loglik(arrays, model.spec_, "gp", model.training_table_, np.arange(40), space)
    np.testing.assert_allclose(mine, ref, rtol=1e-6, atol=1e-8)


@pytest.fixture(scope="module")
def cardinal_fits():
    space = _space_1d()
    table = _cardinal_table(40, seed=4)
    fits = {}
    for structure in ("gp", "quadratic"):
        model = BayesianYieldModel(
            space=space, structures=(structure,), draws=300, tune=400, chains=2, random_seed=5
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits[structure] = model.fit(table)
    return fits, space


@pytest.mark.slow
def test_gp_recovers_an_asymmetric_response_within_its_bands(cardinal_fits):
    fits, _ = cardinal_fits
    grid = pd.DataFrame({"temperature": np.linspace(30.5, 39.5, 37), "site": "A"})
    true_mean = np.exp(_cardinal(grid["temperature"].to_numpy()) - 0.03 + 0.04**2 / 2)
    gp = fits["gp"]
    draws = gp.predict_draws(grid, n_draws=1000, noise=False, random_seed=0)
    lo, hi = np.quantile(draws, [0.05, 0.95], axis=0)
    inside = (lo <= true_mean) & (true_mean <= hi)
    # One realisation of 37 strongly correlated grid points: the share inside a calibrated 90 %
    # band scatters widely around 0.9. In this data set the site-A batches at 31.7-33.5 degC
    # all came out 3-5 % below their true mean (about 2 standard errors), so the band there
    # follows the data, as it should. The pointwise check is therefore loose, and the strict
    # check is on the distance: the truth is never more than 3 posterior SDs from the mean.
    assert inside.mean() >= 0.75, inside
    z = np.abs(draws.mean(axis=0) - true_mean) / draws.std(axis=0)
    assert z.max() <= 3.0, z
    rmse = {s: float(np.sqrt(np.mean((m.predict(grid) - true_mean) ** 2))) for s, m in fits.items()}
    # the parabola cannot follow the steep fall above the optimum; the GP can
    assert rmse["gp"] < 0.8 * rmse["quadratic"], rmse
    # the recovered optimum is close to the true one (37 degC)
    t_best = grid["temperature"].to_numpy()[np.argmax(gp.predict(grid))]
    assert abs(t_best - 37.0) <= 1.0, t_best
    assert gp.diagnostics_["gp"]["max_r_hat"] < 1.1  # short chains: recovery, not convergence
