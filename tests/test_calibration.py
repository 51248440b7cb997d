"""Simulation-based calibration (SBC) of the default Bayesian model on a small configuration.

The slow tests are the calibration itself: the default likelihood (Student-t below 1,000
batches) with each default structure (concave quadratic, GP), >= 100 simulated data sets each,
every parameter's ranks uniform. A power check shows the test can fail: fitted with an
intercept prior that contradicts the one the data came from, the intercept's ranks pile up.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from bayesbio.models.calibration import CalibrationResult, simulation_based_calibration
from bayesbio.space import Factor, ProcessSpace, Response


def _space() -> ProcessSpace:
    return ProcessSpace(
        (Factor("temperature", "degC", (30.0, 40.0), (0.0, 60.0), short="T"),),
        Response("titer", "g/L", (0.0, 50.0), "maximise", "Titer"),
        groups=("site",),
        batch_id="run",
        name="1-factor calibration process",
    )


def _design(n: int = 16, response: bool = True) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "run": [f"R{i}" for i in range(n)],
            "temperature": np.linspace(30.5, 39.5, n),
            "site": np.array(["A", "B"])[np.arange(n) % 2],
        }
    )
    if response:
        table["titer"] = 2.0 * np.exp(0.3 * np.sin(np.arange(n)))
    return table


def test_small_calibration_returns_ranks_in_range_and_is_reproducible():
    kw = dict(space=_space(), n_simulations=10, n_ranks=19, n_bins=4, draws=100, tune=100)
    a = simulation_based_calibration(_design(), random_seed=3, **kw)
    b = simulation_based_calibration(_design(), random_seed=3, **kw)
    assert isinstance(a, CalibrationResult)
    assert a.ranks.shape[0] == 10 and a.truth.shape == a.ranks.shape
    expected = {"intercept", "sigma", "nu", "sigma_site", "a_site[A]", "beta[T]", "beta[T^2]"}
    assert expected <= set(a.ranks.columns), a.ranks.columns
    assert a.ranks.to_numpy().min() >= 0 and a.ranks.to_numpy().max() <= 19
    # concave curvature: every prior-drawn squared coefficient is <= 0
    assert (a.truth["beta[T^2]"] <= 0).all()
    pd.testing.assert_frame_equal(a.ranks, b.ranks)
    assert set(a.summary.columns) >= {"chi2", "p_value", "mean_rank", "uniform"}
    assert set(a.diagnostics.columns) == {"max_r_hat", "min_ess_bulk", "divergences"}
    fig = a.plot()
    assert len([ax for ax in fig.axes if ax.get_visible()]) == a.ranks.shape[1]


def test_priors_are_frozen_from_the_design_or_must_be_given():
    with pytest.raises(ValueError, match="intercept_loc"):
        simulation_based_calibration(_design(response=False), space=_space(), n_simulations=10)
    with pytest.raises(ValueError, match="n_simulations"):
        simulation_based_calibration(_design(), space=_space(), n_simulations=3)
    with pytest.raises(ValueError, match="n_ranks"):
        simulation_based_calibration(_design(), space=_space(), n_ranks=500, draws=100)
    with pytest.raises(ValueError, match="alpha"):
        simulation_based_calibration(_design(), space=_space(), alpha=1.5)


def test_a_contradicting_fit_prior_is_detected():
    """Power: the fit's intercept prior sits 1 log unit (a factor e) off the generating one."""
    result = simulation_based_calibration(
        _design(),
        space=_space(),
        structure="quadratic",
        priors={"intercept_loc": np.log(2.0), "log_yield_sd": 0.3},
        fit_priors={"intercept_loc": np.log(2.0) + 1.0, "intercept_scale": 0.1},
        n_simulations=30,
        n_ranks=39,
        n_bins=5,
        draws=200,
        tune=200,
        random_seed=4,
    )
    assert not result.summary.loc["intercept", "uniform"], result.summary
    assert not result.passed
    # the fitted intercept sits above the truth: the truth ranks low
    assert result.summary.loc["intercept", "mean_rank"] < 0.25 * 39


@pytest.mark.slow
@pytest.mark.parametrize(("structure", "n_sim"), [("quadratic", 200), ("gp", 120)])
def test_default_model_is_calibrated(structure, n_sim):
    result = simulation_based_calibration(
        _design(),
        space=_space(),
        structure=structure,
        priors={"intercept_loc": np.log(2.0), "log_yield_sd": 0.3},
        n_simulations=n_sim,
        random_seed=13,
    )
    assert result.ranks.shape == (n_sim, result.summary.shape[0])
    assert result.passed, result.summary.to_string()
    # the sampler itself was healthy on almost every simulated data set
    assert (result.diagnostics["max_r_hat"] < 1.05).mean() >= 0.9
    assert result.diagnostics["divergences"].mean() < 1.0
