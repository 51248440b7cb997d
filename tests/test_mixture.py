"""Tests of the failure-aware likelihood (``likelihood="mixture"``) of the Bayesian yield model.

One small table (one factor, 48 batches from a known quadratic on the log scale, four batches
failed at 10-20 % of normal yield) is fitted once per module with each likelihood and shared.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr
from scipy import stats

from bayesbio.models import _bayes_design as design
from bayesbio.models import _bayes_predict as engine
from bayesbio.models import _bayes_spec as specs
from bayesbio.models.bayesian import BayesianYieldModel, ConvergenceWarning, build_model
from bayesbio.space import Factor, ProcessSpace, Response

SPACE = ProcessSpace(
    (Factor("temperature", "degC", (30.0, 37.0), (4.0, 50.0), "Temperature", short="T"),),
    Response("titer", "g/L", (0.0, 50.0), "maximise", "Titer"),
    groups=("site",),
    batch_id="run",
    name="One-factor failure test process",
)
TRUTH = {"intercept": np.log(3.0), "beta": np.array([0.3, -0.2]), "sigma": 0.05}
N_ROWS = 48
FAILED = np.array([28, 35, 41, 46])  # rows whose batch failed: all at the hot end
FIT = {"structures": ("quadratic",), "draws": 300, "tune": 300, "chains": 2, "space": SPACE}


def _table(n: int = N_ROWS, seed: int = 3) -> pd.DataFrame:
    """Batches over the operating range; the ``FAILED`` rows at 10-20 % of normal yield."""
    rng = np.random.default_rng(seed)
    z = np.linspace(-1.0, 1.0, n)[:, None]
    table = pd.DataFrame(SPACE.unstandardise(z), columns=["temperature"])
    table.insert(0, "run", [f"R{i:03d}" for i in range(n)])
    table["site"] = "north"
    mu = TRUTH["intercept"] + design.population_design(z, "quadratic") @ TRUTH["beta"]
    y = np.exp(mu + TRUTH["sigma"] * rng.standard_normal(n))
    failed = FAILED[FAILED < n]
    # failures at high temperature drag a normal fit's slope down
    y[failed] *= rng.uniform(0.10, 0.20, len(failed))
    table["titer"] = y
    table.index = pd.Index([f"b{i}" for i in range(n)], name="batch")
    return table


def _auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties half."""
    pos, neg = score[positive], score[~positive]
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return _table()


def _fit(table: pd.DataFrame, likelihood: str) -> BayesianYieldModel:
    # 2 x 300 draws are too few for the ESS threshold; these tests check recovery, not mixing
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return BayesianYieldModel(likelihood=likelihood, random_seed=11, **FIT).fit(table)


@pytest.fixture(scope="module")
def mixture_fit(table: pd.DataFrame) -> BayesianYieldModel:
    return _fit(table, "mixture")


@pytest.fixture(scope="module")
def normal_fit(table: pd.DataFrame) -> BayesianYieldModel:
    return _fit(table, "normal")


# -------------------------------------------------------------------- no sampling


def test_unknown_likelihood_is_named_in_the_error(table):
    with pytest.raises(ValueError, match=r"likelihood.*mixture.*'laplace'"):
        build_model(table, likelihood="laplace", space=SPACE)
    with pytest.raises(ValueError, match="'laplace'"):
        BayesianYieldModel(likelihood="laplace", **FIT).fit(table)


def test_bad_failure_prior_is_refused(table):
    with pytest.raises(ValueError, match="failure_fraction"):
        build_model(table, likelihood="mixture", priors={"failure_fraction": 1.5}, space=SPACE)


def test_mixture_model_builds_a_marginalised_likelihood(table):
    big = _table(1000, seed=1)
    model = build_model(table, likelihood="mixture", space=SPACE)
    assert "failure_rate" in {v.name for v in model.free_RVs}
    assert not model.bayesbio_spec["sufficient"]
    assert np.isfinite(model.compile_logp()(model.initial_point()))
    # no discrete indicator to sample, and no sufficient-statistics shortcut for large n
    assert all(v.dtype.startswith("float") for v in model.free_RVs)
    assert not build_model(big, likelihood="mixture", space=SPACE).bayesbio_spec["sufficient"]


def test_numpy_mixture_log_likelihood_and_failure_probability_match_pymc(table):
    model = build_model(table, likelihood="mixture", space=SPACE)
    spec = model.bayesbio_spec
    prior = pm.sample_prior_predictive(draws=25, model=model, random_seed=2)
    post = prior["prior"].to_dataset().drop_vars("log_yield_obs", errors="ignore")
    tree = xr.DataTree()
    tree["posterior"] = xr.DataTree(post)
    pm.compute_log_likelihood(tree, model=model, progressbar=False)
    ref = tree["log_likelihood"]["log_yield_obs"].values.reshape(-1, len(table))
    arrays = engine._posterior_arrays(tree, spec)
    sel = np.arange(arrays["n"])
    mine = engine._loglik(arrays, spec, "quadratic", table, sel, SPACE)
    np.testing.assert_allclose(mine, ref, rtol=1e-6, atol=1e-8)
    # Bayes' rule by hand for one draw and batch
    pi = arrays["pi"][0]
    sd = arrays["sigma"][0]
    shift = np.log(specs.DEFAULT_PRIORS["failure_fraction"])
    mu = (
        arrays["intercept"][0]
        + design.population_design(SPACE.standardise(table.iloc[[3]]), "quadratic")[0]
        @ arrays["beta"][0]
    )
    y = np.log(table["titer"].iloc[3])
    a = (1 - pi) * stats.norm.pdf(y, mu, sd)
    b = pi * stats.norm.pdf(y, mu + shift, specs.DEFAULT_PRIORS["failure_sd"])
    got = engine._failure_probability(arrays, spec, "quadratic", table.iloc[[3]], sel[:1], SPACE)
    np.testing.assert_allclose(got, [b / (a + b)], rtol=1e-8)


def test_hdi_is_the_narrowest_interval():
    x = np.random.default_rng(0).exponential(size=20_000)
    lo, hi = engine._hdi(x, 0.94)
    assert lo < 0.01 and np.mean((x >= lo) & (x <= hi)) == pytest.approx(0.94, abs=1e-3)
    assert engine._hdi(np.array([0.5]), 0.94) == (0.5, 0.5)


# -------------------------------------------------------------------- small real fits


def test_failure_rate_recovered(mixture_fit):
    rate = mixture_fit.failure_rate_
    share = len(FAILED) / N_ROWS
    assert list(rate.index) == ["mean", "lower", "upper"]
    assert rate["lower"] <= share <= rate["upper"]
    assert rate.attrs["ci_prob"] == 0.94
    assert mixture_fit.sampler_ == "nutpie"
    found = mixture_fit.diagnostics_["quadratic"]
    assert found["max_r_hat"] < 1.05 and found["divergences"] <= 5


def test_injected_failures_have_the_highest_failure_probability(mixture_fit, table):
    prob = mixture_fit.failure_prob_
    assert prob.index.equals(table.index)
    failed = np.isin(np.arange(N_ROWS), FAILED)
    assert _auc(prob.to_numpy(), failed) >= 0.95
    assert prob.iloc[FAILED].min() > 0.5 > prob.drop(prob.index[FAILED]).max()


def test_mixture_recovers_the_slope_better_than_the_normal_likelihood(mixture_fit, normal_fit):
    def slope(model):
        return model.idata_["quadratic"]["posterior"]["beta"].values[..., 0].ravel()

    true = TRUTH["beta"][0]
    mix, nor = slope(mixture_fit), slope(normal_fit)
    lo, hi = engine._hdi(mix, 0.94)
    assert lo <= true <= hi
    assert abs(mix.mean() - true) < abs(nor.mean() - true)
    assert not hasattr(normal_fit, "failure_prob_")


def test_failures_lower_the_predictive_tail(mixture_fit):
    x = pd.DataFrame({"temperature": [32.0, 35.0], "site": "north"})
    with_f = mixture_fit.predict_draws(x, n_draws=4000, random_seed=1)
    without = mixture_fit.predict_draws(x, n_draws=4000, random_seed=1, include_failures=False)
    assert (np.quantile(with_f, 0.05, axis=0) < np.quantile(without, 0.05, axis=0)).all()
    # the median and predict() are those of a normal batch
    np.testing.assert_allclose(np.median(with_f, axis=0), np.median(without, axis=0), rtol=0.05)
    mean = mixture_fit.predict(x)
    np.testing.assert_allclose(without.mean(axis=0), mean, rtol=0.05)
    # noise=False ignores failures
    a = mixture_fit.predict_draws(x, n_draws=200, noise=False, random_seed=2)
    b = mixture_fit.predict_draws(
        x, n_draws=200, noise=False, random_seed=2, include_failures=False
    )
    np.testing.assert_array_equal(a, b)


def test_mixture_save_load_round_trip(mixture_fit, tmp_path):
    path = mixture_fit.save(tmp_path / "mixture.nc")
    back = BayesianYieldModel.load(path)
    assert back.likelihood == "mixture"
    pd.testing.assert_series_equal(back.failure_prob_, mixture_fit.failure_prob_)
    pd.testing.assert_series_equal(back.failure_rate_, mixture_fit.failure_rate_)
    x = pd.DataFrame({"temperature": [31.0, 36.0], "site": "north"})
    np.testing.assert_array_equal(
        back.predict_draws(x, n_draws=300, random_seed=4),
        mixture_fit.predict_draws(x, n_draws=300, random_seed=4),
    )
    np.testing.assert_allclose(back.predict(x), mixture_fit.predict(x))


# ------------------------------------------------- the default (Student-t below 1,000 batches)


@pytest.fixture(scope="module")
def default_fit(table: pd.DataFrame) -> BayesianYieldModel:
    return _fit(table, "auto")


def test_default_likelihood_is_student_t_for_small_and_normal_for_large_tables(table):
    assert build_model(table, space=SPACE).bayesbio_spec["likelihood"] == "student_t"
    big = build_model(_table(1000, seed=1), space=SPACE).bayesbio_spec
    assert big["likelihood"] == "normal" and big["sufficient"]


def test_default_fit_down_weights_the_failed_batches_and_keeps_the_slope(
    default_fit, normal_fit, table, tmp_path
):
    weight = default_fit.batch_weight_
    assert weight.index.equals(table.index)
    failed = np.isin(np.arange(N_ROWS), FAILED)
    assert _auc(-weight.to_numpy(), failed) >= 0.95
    assert weight.iloc[FAILED].max() < 0.25 < weight.drop(weight.index[FAILED]).median()

    slope = default_fit.idata_["quadratic"]["posterior"]["beta"].values[..., 0].ravel()
    nor = normal_fit.idata_["quadratic"]["posterior"]["beta"].values[..., 0].ravel()
    lo, hi = engine._hdi(slope, 0.94)
    assert lo <= TRUTH["beta"][0] <= hi
    assert abs(slope.mean() - TRUTH["beta"][0]) < abs(nor.mean() - TRUTH["beta"][0])
    assert not hasattr(normal_fit, "batch_weight_")

    back = BayesianYieldModel.load(default_fit.save(tmp_path / "t.nc"))
    pd.testing.assert_series_equal(back.batch_weight_, weight)


def test_outlying_batches_are_listed_by_batch_id(default_fit, mixture_fit, normal_fit, table):
    injected = set(table["run"].iloc[FAILED])
    out = default_fit.outlying_batches()
    assert list(out.columns) == ["run", "site", "titer", "weight"]
    assert injected <= set(out["run"]) and out["weight"].is_monotonic_increasing
    low = default_fit.batch_weight_ < 0.25  # the same batches as the row-indexed weights
    assert set(out["run"]) == set(table.loc[low.to_numpy(), "run"])
    failed = mixture_fit.outlying_batches()
    assert injected <= set(failed["run"]) and list(failed.columns)[-1] == "p_failed"
    assert failed["p_failed"].is_monotonic_decreasing
    assert len(mixture_fit.outlying_batches(threshold=0.99)) <= len(failed)
    with pytest.raises(ValueError, match="'normal' likelihood gives no per-batch measure"):
        normal_fit.outlying_batches()
