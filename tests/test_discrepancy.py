"""Lack of fit: pure error from near-replicates and the model-discrepancy field."""

import warnings

import numpy as np
import pandas as pd
import pytest

from bayesbio.models import _discrepancy as lof
from bayesbio.models.bayesian import BayesianYieldModel


def _replicated(n_points, n_reps, noise, rng, k=2):
    z = np.repeat(rng.uniform(-1, 1, (n_points, k)), n_reps, axis=0)
    z = z + rng.normal(0, 0.01, z.shape)  # near, not exact, replicates
    y = rng.normal(0, noise, len(z))
    return z, y


def test_pure_error_recovers_the_replicate_noise():
    rng = np.random.default_rng(0)
    z, y = _replicated(60, 2, 0.1, rng)
    sd, pairs = lof.pure_error(z, y, np.zeros(len(z), dtype=str))
    assert pairs >= 50
    assert sd == pytest.approx(0.1, rel=0.25)
    assert lof.upper_pure_error(sd, pairs) > sd


def test_pure_error_pairs_only_within_a_group_and_within_the_radius():
    z = np.array([[0.0, 0.0], [0.05, 0.0], [0.9, 0.9]])
    y = np.array([0.0, 0.2, 5.0])
    # the two near batches in different groups: no pair at all
    assert lof.pure_error(z, y, np.array(["a", "b", "a"]))[1] == 0
    sd, pairs = lof.pure_error(z, y, np.array(["a", "a", "a"]))
    assert pairs == 1  # the far batch has no partner within the radius
    assert sd == pytest.approx(np.sqrt(0.04 / (2 * lof._MEDIAN_CHI2_1)))


def test_no_field_when_the_residuals_are_pure_error_or_pairs_are_too_few():
    rng = np.random.default_rng(1)
    z, y = _replicated(30, 2, 0.1, rng)
    labels = np.zeros(len(z), dtype=str)
    sd, pairs = lof.pure_error(z, y, labels)
    assert lof.excess_amplitude(0.1, sd, pairs) == 0.0
    assert lof.fit(z, y, 0.1, sd, pairs) is None
    few = slice(0, 2 * (lof.MIN_PAIRS - 1))
    sd_few, pairs_few = lof.pure_error(z[few], y[few], labels[few])
    assert pairs_few == lof.MIN_PAIRS - 1
    assert lof.fit(z[few], y[few], 1.0, sd_few, pairs_few) is None
    # exact duplicates pair with each other, not with themselves
    dup = np.vstack([z[:1], z[:1]])
    assert lof.pure_error(dup, np.array([0.0, 0.3]), np.zeros(2, dtype=str))[1] == 1


def test_field_follows_residuals_near_the_data_and_reverts_away():
    rng = np.random.default_rng(2)
    z, noise = _replicated(25, 2, 0.05, rng, k=1)
    truth = 0.6 * np.sin(4 * z[:, 0])  # what the surface (zero here) missed
    y = truth + noise
    sd, pairs = lof.pure_error(z, y, np.zeros(len(z), dtype=str))
    field = lof.fit(z, y, 0.45, sd, pairs)
    assert field is not None
    assert field.amplitude == pytest.approx(
        np.sqrt(0.45**2 - lof.upper_pure_error(field.noise, field.n_pairs) ** 2)
    )
    grid = np.linspace(-0.9, 0.9, 7)[:, None]
    mean, var = field.mean_var(grid)
    true_grid = 0.6 * np.sin(4 * grid[:, 0]) - y.mean()
    assert np.max(np.abs(mean - true_grid)) < 0.2
    assert np.all(var < 0.25 * field.amplitude**2)
    far_mean, far_var = field.mean_var(np.array([[8.0]]))
    assert abs(far_mean[0]) < 1e-6
    assert far_var[0] == pytest.approx(field.amplitude**2)


def test_function_draws_are_consistent_and_match_the_conditioned_moments():
    rng = np.random.default_rng(3)
    z, noise = _replicated(20, 2, 0.05, rng, k=1)
    y = 0.5 * np.sign(z[:, 0]) + noise
    sd, pairs = lof.pure_error(z, y, np.zeros(len(z), dtype=str))
    field = lof.fit(z, y, 0.5, sd, pairs)
    draws = field.sampler(4000, np.random.default_rng(4))
    pts = np.array([[-0.5], [0.5], [6.0]])
    values = draws(pts)
    # one draw is one function: evaluating a subset, or a subset of draws, gives the same values
    assert np.allclose(draws(pts[1:]), values[:, 1:])
    assert np.allclose(draws(pts, rows=np.arange(10)), values[:10])
    mean, var = field.mean_var(pts)
    assert np.allclose(values.mean(axis=0), mean, atol=0.05)
    assert np.allclose(values.var(axis=0), var, rtol=0.25, atol=0.01)


def _fit(table, space, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return BayesianYieldModel(
            space=space, structures=("quadratic",), chains=2, draws=300, tune=300,
            extra_runs=0, random_seed=5, **kw,
        ).fit(table)  # fmt: skip


def _wiggly_table(space, seed=0):
    """Replicated setpoints on a response a parabola cannot follow (pure error 3 %)."""
    rng = np.random.default_rng(seed)
    temp = np.repeat(np.linspace(28.3, 33.7, 12), 3)
    agit = np.repeat(rng.uniform(120, 280, 12), 3)
    t = (temp - 31.0) / 3.0
    titer = np.exp(1.0 + 0.5 * np.sin(3 * np.pi * t)) * rng.lognormal(0, 0.03, len(t))
    return pd.DataFrame(
        {
            "run": [f"R{i:03d}" for i in range(len(t))],
            "site": "North",
            "temperature": temp,
            "agitation": agit,
            "titer": titer,
        }
    )


def test_model_reports_lack_of_fit_and_widens_only_when_the_surface_misses(
    space_k2, table_k2, tmp_path
):
    good = _fit(table_k2, space_k2, discrepancy=True)
    assert good.lack_of_fit_["active"] is False
    assert good.lack_of_fit_["detected"] is False
    assert good.discrepancy_ is None
    assert good.lack_of_fit_["model_sigma"] < 0.06

    table = _wiggly_table(space_k2)
    bad = _fit(table, space_k2, discrepancy=True)
    lack = bad.lack_of_fit_
    assert lack["active"] is True and lack["detected"] is True
    assert lack["replicate_pairs"] >= 8
    assert lack["pure_error"] < 0.06 < lack["model_sigma"]
    plain = _fit(table, space_k2)  # the default reports the test and leaves predictions alone
    assert plain.discrepancy_ is None and plain.lack_of_fit_["active"] is False
    assert plain.lack_of_fit_["detected"] is True
    # near the batches the field pulls the mean towards them: smaller error at the data
    truth = np.exp(1.0 + 0.5 * np.sin(3 * np.pi * (table["temperature"] - 31.0) / 3.0))
    err_bad = np.abs(np.log(bad.predict(table)) - np.log(truth)).mean()
    err_plain = np.abs(np.log(plain.predict(table)) - np.log(truth)).mean()
    assert err_bad < 0.5 * err_plain
    # predict is the mean of the noise-free draws; the same seed gives the same functions
    X = table.iloc[[0, 10, 20]]
    draws = bad.predict_draws(X, n_draws=8000, noise=False, random_seed=1)
    assert np.allclose(draws.mean(axis=0), bad.predict(X), rtol=0.03)
    again = bad.predict_draws(X.iloc[:1], n_draws=8000, noise=False, random_seed=1)
    assert np.allclose(again[:, 0], draws[:, 0])
    # save / load keeps the test and the draws
    path = bad.save(tmp_path / "m.nc")
    loaded = BayesianYieldModel.load(path)
    assert loaded.lack_of_fit_ == pytest.approx(lack, nan_ok=True)
    assert np.allclose(
        loaded.predict_draws(X, n_draws=200, random_seed=2),
        bad.predict_draws(X, n_draws=200, random_seed=2),
    )


def test_report_text_says_what_the_lack_of_fit_test_found():
    from types import SimpleNamespace

    from bayesbio.study import lack_of_fit_text

    base = {"model_sigma": 0.2, "pure_error": 0.05, "pure_error_upper": 0.07}
    none = SimpleNamespace(lack_of_fit_={**base, "replicate_pairs": 1, "active": False})
    assert "cannot be told apart" in lack_of_fit_text(none)
    fits = SimpleNamespace(
        lack_of_fit_={**base, "replicate_pairs": 9, "detected": False, "active": False}
    )
    assert "fits within pure error" in lack_of_fit_text(fits)
    found = SimpleNamespace(
        lack_of_fit_={**base, "replicate_pairs": 9, "detected": True, "active": False}
    )
    assert "discrepancy=True" in lack_of_fit_text(found)
    misses = SimpleNamespace(
        lack_of_fit_={
            **base,
            "replicate_pairs": 9,
            "detected": True,
            "active": True,
            "amplitude": 0.187,
        }
    )
    text = lack_of_fit_text(misses)
    assert "20.0 %" in text and "5.0 %" in text and "18.7 % SD" in text
    assert lack_of_fit_text(SimpleNamespace()) == ""


def test_group_keys_pair_batches_only_within_one_combination_of_labels():
    from bayesbio.schema import group_keys

    table = pd.DataFrame(
        {"scale": ["2L", "2L", "200L", "2L", "200L"], "site": ["A", "B", "A", "A", "A"]}
    )
    keys = group_keys(table, ["scale", "site"])
    assert keys[0] == keys[3] and keys[2] == keys[4]
    assert len({keys[0], keys[1], keys[2]}) == 3
    assert (group_keys(table, ["scale"]) == np.array([0, 0, 1, 0, 1])).all()
    assert (group_keys(table, []) == 0).all() and len(group_keys(table, [])) == 5
