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


@pytest.mark.parametrize(
    ("value", "message"),
    [(-1, "extra_runs must be >= 0"), (1.5, "extra_runs must be an integer"),
     (True, "extra_runs must be an integer"), ("twice", "extra_runs must be 'auto' or"),
     (None, "extra_runs must be 'auto' or")],
)  # fmt: skip
def test_extra_runs_refuses_what_is_not_a_count(value, message):
    with pytest.raises(ValueError, match=message):
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


def _iid_sampler(monkeypatch, divergent_at: tuple[float, ...] = ()):
    """Replace the sampler by independent N(0, 1) draws (ESS about chains x draws), with a
    divergent transition in every chain when ``target_accept`` is listed in ``divergent_at``."""
    runs = []

    def iid(model, key, **kw):
        runs.append(kw["target_accept"])
        rng = np.random.default_rng(len(runs))
        tree = _trace(kw["chains"], kw["draws"])
        post = tree["posterior"].to_dataset()
        post["mu"][:] = rng.normal(size=(kw["chains"], kw["draws"]))
        tree["posterior"] = xr.DataTree(post)
        if kw["target_accept"] in divergent_at:
            stats = tree["sample_stats"].to_dataset()
            stats["diverging"][:, 0] = True
            tree["sample_stats"] = xr.DataTree(stats)
        return tree, "fake"

    monkeypatch.setattr(sampling, "sample_model", iid)
    return runs


def test_low_ess_gets_more_chains_when_they_can_reach_the_check(monkeypatch):
    runs = _iid_sampler(monkeypatch)
    with pm.Model() as model:
        pm.Normal("x", 0.0, 1.0)
    # 2 x 150 iid draws: ESS ~300 < 400; two more runs could reach ~900: one is appended
    tree, _ = _sample(model, "test-iid", draws=150, extra_runs=2)
    found = sampling.diagnose(tree)
    assert runs == [0.8, 0.8]  # appended at the same settings: no divergence to remedy
    assert found["runs"] == 2 and found["n_draws"] == 2 * 2 * 150
    assert sampling.failed_checks(found) == []
    history = json.loads(tree["sample_stats"].attrs["history"])
    assert len(history) == 1 and "chains added" in history[0]
    assert tree["sample_stats"].attrs["target_accept"] == 0.8


def test_an_ess_too_low_to_reach_the_check_is_reported_not_resampled(monkeypatch):
    runs = _iid_sampler(monkeypatch)
    with pm.Model() as model:
        pm.Normal("x", 0.0, 1.0)
    # 2 x 40 iid draws: ESS ~80; even two appended runs give ~240 < 400
    tree, _ = _sample(model, "test-iid", draws=40, extra_runs=2)
    assert runs == [0.8]
    assert sampling.diagnose(tree)["runs"] == 1
    history = json.loads(tree["sample_stats"].attrs["history"])
    assert history and "too low to reach 400" in history[0]


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


def test_chains_appended_after_a_divergent_rerun_keep_its_smaller_steps(monkeypatch):
    runs = _iid_sampler(monkeypatch, divergent_at=(0.8,))
    with pm.Model() as model:
        pm.Normal("x", 0.0, 1.0)
    # divergent: repeated at 0.99 (2 x 150 draws, ESS ~300 < 400); then 2 chains appended,
    # still at 0.99: chains of one trace share the sampler settings that removed the divergences
    tree, _ = _sample(model, "test-iid", draws=150, extra_runs=2)
    found = sampling.diagnose(tree)
    assert runs == [0.8, 0.99, 0.99]
    assert found["runs"] == 3 and found["n_draws"] == 2 * 2 * 150
    assert sampling.failed_checks(found) == []


def test_divergences_that_remain_at_the_slower_rerun_end_the_extra_runs(monkeypatch):
    runs = _fake_sampler(monkeypatch, divergent_at=(0.8, 0.99))
    with pm.Model() as model:
        pm.Normal("x", 0.0, 1.0)
    tree, _ = _sample(model, "test-fake", extra_runs=5)
    assert runs == [0.8, 0.99]
    assert sampling.diagnose(tree)["runs"] == 2


def test_a_fit_reports_its_runs_and_keeps_them_through_save_and_load(tmp_path, monkeypatch):
    table = simulate_batches(24, random_seed=5).table
    divergent = {"on": False}

    def prior_draws(model, key, **kw):
        """Prior draws as the posterior: independent, so ESS ~ chains x draws."""
        n_chain, n_draw = kw["chains"], kw["draws"]
        seed = kw["random_seed"] or 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prior = pm.sample_prior_predictive(n_chain * n_draw, model=model, random_seed=seed)
        ds = prior["prior"].to_dataset()
        post = xr.Dataset(
            {
                v: (
                    ("chain", "draw", *ds[v].dims[2:]),
                    ds[v].values.reshape(n_chain, n_draw, *ds[v].shape[2:]),
                )
                for v in ds.data_vars
            },
            coords={d: ds[d] for d in ds.coords if d not in ("chain", "draw")},
        )
        stats = _trace(n_chain, n_draw)["sample_stats"].to_dataset()
        stats["diverging"][:, 0] = divergent["on"]
        tree = xr.DataTree()
        tree["posterior"] = xr.DataTree(post)
        tree["sample_stats"] = xr.DataTree(stats)
        return tree, "fake"

    monkeypatch.setattr(sampling, "sample_model", prior_draws)
    kw = {"structures": "quadratic", "draws": 150, "tune": 10, "chains": 2, "random_seed": 4}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        once = BayesianYieldModel(**kw).fit(table)  # "auto": 2 x 150 draws: no extra run
        more = BayesianYieldModel(extra_runs=2, **kw).fit(table)  # ESS < 400: chains added
    assert once.diagnostics_["quadratic"]["runs"] == 1
    runs = more.diagnostics_["quadratic"]["runs"]
    assert runs >= 2 and more.diagnostics_["quadratic"]["n_draws"] == runs * 2 * 150
    path = more.save(tmp_path / "m.nc")
    loaded = BayesianYieldModel.load(path)
    assert loaded.extra_runs == 2
    assert loaded.diagnostics_["quadratic"]["runs"] == runs
    divergent["on"] = True  # divergent at 0.95 and at 0.99: warned after 2 runs
    with pytest.warns(ConvergenceWarning, match="divergent transitions, after 2 sampler runs"):
        BayesianYieldModel(extra_runs=2, **kw).fit(table)


def test_an_unknown_adaptation_is_refused_before_sampling():
    table = simulate_batches(24, random_seed=5).table
    with pytest.raises(ValueError, match="adaptation"):
        BayesianYieldModel(adaptation="dense").fit(table)
