"""Extra sampler runs when a fit fails its convergence checks (``extra_runs``)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pymc as pm
import pytest
import xarray as xr

from bayesbio.models import _bayes_sampling as sampling
from bayesbio.models.bayesian import BayesianYieldModel, ConvergenceWarning
from bayesbio.simulate import simulate_batches


def _trace(n_chain: int, n_draw: int, offset: float = 0.0) -> xr.DataTree:
    chain, draw = np.arange(n_chain), np.arange(n_draw)
    values = offset + np.arange(n_chain * n_draw, dtype=float).reshape(n_chain, n_draw)
    tree = xr.DataTree()
    tree["posterior"] = xr.DataTree(
        xr.Dataset({"mu": (("chain", "draw"), values)}, coords={"chain": chain, "draw": draw})
    )
    tree["sample_stats"] = xr.DataTree(
        xr.Dataset(
            {"diverging": (("chain", "draw"), np.zeros((n_chain, n_draw), dtype=bool))},
            coords={"chain": chain, "draw": draw},
        )
    )
    return tree


@pytest.mark.parametrize(
    ("value", "draws", "chains", "expected"),
    [("auto", 1000, 4, 2), ("auto", 400, 4, 2), ("auto", 399, 4, 0), ("auto", 100, 2, 0),
     (0, 1000, 4, 0), (3, 50, 2, 3)],
)  # fmt: skip
def test_extra_runs_auto_follows_the_size_of_the_run(value, draws, chains, expected):
    assert sampling.extra_runs_for(value, draws, chains) == expected


@pytest.mark.parametrize("value", [-1, 1.5, "twice", True, None])
def test_extra_runs_refuses_what_is_not_a_count(value):
    with pytest.raises(ValueError, match="extra_runs must be 'auto' or an integer >= 0"):
        sampling.extra_runs_for(value, 1000, 4)


def test_appended_chains_keep_every_draw_under_new_chain_labels():
    both = sampling._append_chains(_trace(2, 5), _trace(3, 5, offset=100.0))
    post = both["posterior"].to_dataset()
    assert post.sizes == {"chain": 5, "draw": 5}
    assert list(post["chain"].values) == [0, 1, 2, 3, 4]
    np.testing.assert_array_equal(post["mu"].values[:2], _trace(2, 5)["posterior"]["mu"].values)
    assert post["mu"].values[2, 0] == 100.0
    assert both["sample_stats"].to_dataset().sizes == {"chain": 5, "draw": 5}


def _sample(model: pm.Model, key: str, **kw):
    base = {"draws": 200, "tune": 200, "chains": 2, "target_accept": 0.8, "random_seed": 3}
    base.update(kw)
    return sampling.sample_checked(model, key, progressbar=False, nuts_sampler="nutpie", **base)


def test_a_run_that_passes_is_not_sampled_again():
    with pm.Model() as model:
        pm.Normal("x", 0.0, 1.0, shape=2)
    tree, _ = _sample(model, "test-normal", draws=1000, tune=500, extra_runs=2)
    found = sampling.diagnose(tree)
    assert sampling.failed_checks(found) == []
    assert found["runs"] == 1 and found["n_draws"] == 2000
    assert json.loads(tree["sample_stats"].attrs["history"]) == []


def test_low_ess_gets_more_chains():
    # 30 draws cannot give an ESS of 400: each extra run appends two chains
    with pm.Model() as model:
        pm.Normal("x", 0.0, 1.0)
    tree, _ = _sample(model, "test-short", draws=30, tune=100, extra_runs=2)
    found = sampling.diagnose(tree)
    assert found["runs"] == 3 and found["n_draws"] == 3 * 2 * 30
    history = json.loads(tree["sample_stats"].attrs["history"])
    assert len(history) == 2 and all("chains added" in h for h in history)
    assert tree["sample_stats"].attrs["target_accept"] == sampling.RERUN_TARGET_ACCEPT


def _fake_sampler(monkeypatch, divergent_at: tuple[float, ...]):
    """Replace the sampler: 2 chains x draws, divergent when target_accept is listed."""
    runs = []

    def fake(model, key, **kw):
        runs.append(kw["target_accept"])
        tree = _trace(kw["chains"], kw["draws"], offset=1000.0 * len(runs))
        if kw["target_accept"] in divergent_at:
            stats = tree["sample_stats"].to_dataset()
            stats["diverging"][:, 0] = True
            tree["sample_stats"] = xr.DataTree(stats)
        return tree, "fake"

    monkeypatch.setattr(sampling, "sample_model", fake)
    return runs


def test_a_divergent_run_is_replaced_by_a_slower_one(monkeypatch):
    runs = _fake_sampler(monkeypatch, divergent_at=(0.8,))
    with pm.Model() as model:
        pm.Normal("x", 0.0, 1.0)
    tree, _ = _sample(model, "test-fake", extra_runs=1)
    found = sampling.diagnose(tree)
    history = json.loads(tree["sample_stats"].attrs["history"])
    assert runs == [0.8, 0.99]
    assert "divergent" in history[0] and "repeated at target_accept 0.99" in history[0]
    assert found["runs"] == 2 and found["n_draws"] == 2 * 200  # replaced, not appended
    assert found["divergences"] == 0
    assert tree["posterior"]["mu"].values.min() == 2000.0  # the second run's draws only


def test_divergences_that_remain_at_the_slower_rerun_end_the_extra_runs(monkeypatch):
    runs = _fake_sampler(monkeypatch, divergent_at=(0.8, 0.99))
    with pm.Model() as model:
        pm.Normal("x", 0.0, 1.0)
    tree, _ = _sample(model, "test-fake", extra_runs=5)
    assert runs == [0.8, 0.99]
    assert sampling.diagnose(tree)["runs"] == 2


def test_a_fit_reports_its_runs_and_keeps_them_through_save_and_load(tmp_path):
    table = simulate_batches(24, random_seed=5).table
    kw = {"structures": "quadratic", "draws": 60, "tune": 150, "chains": 2, "random_seed": 4}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        once = BayesianYieldModel(**kw).fit(table)  # "auto": 2 x 60 draws: no extra run
        more = BayesianYieldModel(extra_runs=1, **kw).fit(table)
    assert once.diagnostics_["quadratic"]["runs"] == 1
    assert more.diagnostics_["quadratic"]["runs"] == 2  # ESS < 400 from 120 draws
    assert more.diagnostics_["quadratic"]["n_draws"] in (120, 240)
    path = more.save(tmp_path / "m.nc")
    loaded = BayesianYieldModel.load(path)
    assert loaded.extra_runs == 1
    assert loaded.diagnostics_["quadratic"]["runs"] == 2
    with pytest.warns(ConvergenceWarning, match="after 2 sampler runs"):
        BayesianYieldModel(extra_runs=1, **kw).fit(table)
