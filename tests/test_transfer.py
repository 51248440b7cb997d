"""Transfer risk: the target group's own slope deviation in the recommenders' draws."""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import _two_factor_space, _two_factor_table
from fakes import Parabola

from bayesbio.recommend import Campaign, recommend
from bayesbio.recommend.context import build_context
from bayesbio.recommend.transfer import group_slopes, slope_posterior

TILT = 0.4  # South's extra log-titer per standardised unit of temperature


def _truth(table):
    t, a = table["temperature"].to_numpy(float), table["agitation"].to_numpy(float)
    return np.exp(1.0 - 0.05 * (t - 31.0) ** 2 + 0.001 * a)


class PooledFake(Parabola):
    """Parabola draws plus what a pooled Bayesian fit exposes: spec_, noise SD, predict."""

    def __init__(self, space, table, *, primary=None, weights=None):
        super().__init__(space, table)
        self.spec_ = {"primary": primary, "prior_scale": 0.5,
                      "priors": {"slope_group_scale": 0.5}}  # fmt: skip
        if weights is not None:
            self.batch_weight_ = pd.Series(weights, index=table.index)

    def posterior_noise_sd(self):
        return 0.03

    def predict(self, X):
        return _truth(X)  # the pooled surface: right for North, misses South's tilt


def _tilted_table(n=60, seed=0):
    table = _two_factor_table(n, seed)
    south = (table["site"] == "South").to_numpy()
    z_t = (table["temperature"].to_numpy(float) - 31.0) / 3.0
    table.loc[south, "titer"] *= np.exp(TILT * z_t[south])
    return table


def _north_and_three_south_batches(temperatures):
    """North ran the whole box (20-odd batches); South three batches at 148-152 rpm."""
    table = _two_factor_table(40, 0)
    table = table[table["site"] == "North"].reset_index(drop=True)
    south = pd.DataFrame(
        {
            "run": ["S1", "S2", "S3"],
            "site": "South",
            "temperature": list(temperatures),
            "agitation": [148.0, 150.0, 152.0],
        }
    )
    south["titer"] = _truth(south)
    return pd.concat([table, south], ignore_index=True)


def _slopes(model, site, kind="auto", n_draws=4000):
    ctx = build_context(model, {"site": site}, kind, None)
    return group_slopes(model, ctx, n_draws=n_draws, seed=1)


def test_slope_posterior_is_the_prior_without_data():
    rng = np.random.default_rng(0)
    dz = rng.uniform(-1, 1, size=(5, 2))
    draws = slope_posterior(dz, np.zeros(5), np.zeros(5), 0.1, 0.3, 20_000, rng)
    # b ~ Normal(0, tau), tau ~ HalfNormal(0.3): var(b) = E[tau^2] = 0.3^2
    assert draws.mean(axis=0) == pytest.approx([0.0, 0.0], abs=0.01)
    assert draws.std(axis=0) == pytest.approx([0.3, 0.3], rel=0.05)


def test_slope_posterior_follows_informative_data():
    rng = np.random.default_rng(1)
    dz = rng.uniform(-1, 1, size=(200, 2))
    residuals = dz @ np.array([0.3, -0.2]) + 0.01 * rng.standard_normal(200)
    draws = slope_posterior(dz, residuals, np.ones(200), 0.01, 1.0, 4000, rng)
    # (a draw of tau near 0 shrinks its slope: the spread is read from quantiles)
    assert np.median(draws, axis=0) == pytest.approx([0.3, -0.2], abs=0.002)
    assert np.quantile(np.abs(draws - [0.3, -0.2]), 0.95) < 0.005


def test_group_slopes_find_the_slope_the_pooled_fit_missed():
    table = _tilted_table()
    model = PooledFake(_two_factor_space(), table)
    south, north = _slopes(model, "South"), _slopes(model, "North")
    assert south.n_batches == int((table["site"] == "South").sum())
    # per standardised unit (half the operating range: 3 degC)
    assert south.draws[:, 0].mean() == pytest.approx(TILT, abs=0.05)
    assert north.draws[:, 0].mean() == pytest.approx(0.0, abs=0.05)
    assert abs(south.draws[:, 1].mean()) < 0.05
    # the factor is 1 at the group's centre and its spread grows away from it
    centre = model.space_.lower + (south.centre + 1.0) / 2.0 * (
        model.space_.upper - model.space_.lower
    )
    near, far = centre.copy(), centre.copy()
    near[1] += 10.0
    far[1] += 80.0
    f = south.factor(np.vstack([centre, near, far]))
    assert np.allclose(f[:, 0], 1.0)
    sd = np.log(f).std(axis=0)
    assert 0.0 < sd[1] < sd[2]
    record = south.describe()
    assert record["group_batches"] == south.n_batches
    assert set(record["slope_sd"]) == {"temperature", "agitation"}


def test_discounted_batches_do_not_move_the_deviation():
    table = _tilted_table()
    space = _two_factor_space()
    base = _slopes(PooledFake(space, table), "South").draws.mean(axis=0)
    bad = table.copy()
    row = bad.index[(bad["site"] == "South").to_numpy()][0]
    bad.loc[row, "titer"] *= 0.1  # a failed batch the fit discounted (weight 0)
    weights = np.ones(len(bad))
    weights[bad.index.get_loc(row)] = 0.0
    with_failure = _slopes(PooledFake(space, bad, weights=weights), "South").draws.mean(axis=0)
    unweighted = _slopes(PooledFake(space, bad), "South").draws.mean(axis=0)
    assert with_failure == pytest.approx(base, abs=0.03)
    assert np.abs(unweighted - base).max() > 0.1  # the same batch at full weight pulls it


def test_no_deviation_where_the_model_needs_none():
    table = _tilted_table()
    space = _two_factor_space()
    assert _slopes(PooledFake(space, table, primary="site"), "South") is None  # fits slopes
    assert _slopes(Parabola(space, table), "South") is None  # not a pooled Bayesian fit
    assert _slopes(PooledFake(space, table), "West", kind="new_group") is None
    one_site = table[table["site"] == "South"].reset_index(drop=True)
    assert _slopes(PooledFake(space, one_site), "South") is None  # nothing transferred


def test_recommend_doubts_a_move_the_group_never_made():
    # North ran the whole box; South three batches near 150 rpm. The pooled draws are sure
    # that more agitation helps (+0.001 per rpm in every draw): without transfer risk South is
    # moved up; with it, South's own response to agitation is unknown and the recipe stays.
    table = _north_and_three_south_batches((30.9, 31.0, 31.1))
    model = PooledFake(_two_factor_space(), table)
    out = {}
    for risk in (True, False):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[risk] = recommend(
                model, group={"site": "South"}, transfer_risk=risk, n_draws=400,
                n_candidates=64, random_seed=3,
            )  # fmt: skip
    assert out[False].decision == "improve"
    assert out[False].setpoint["agitation"] > 170.0
    assert out[True].decision == "recipe"
    assert out[True].settings["transfer_risk"]["group_batches"] == 3
    default = recommend(model, group={"site": "South"}, n_draws=400, n_candidates=64,
                        random_seed=3)  # fmt: skip
    assert default.settings["transfer_risk"] is None  # opt-in
    assert out[False].settings["transfer_risk"] is None
    again = recommend(model, group={"site": "South"}, n_draws=400, n_candidates=64,
                      transfer_risk=True, random_seed=3)  # fmt: skip
    pd.testing.assert_series_equal(again.setpoint, out[True].setpoint)


def test_scales_move_away_from_zero_when_the_data_show_a_slope():
    # with the prior's scales alone, draws of tau near 0 would shrink a clear slope towards 0
    rng = np.random.default_rng(2)
    dz = rng.uniform(-1, 1, size=(30, 1))
    residuals = 0.3 * dz[:, 0] + 0.03 * rng.standard_normal(30)
    draws = slope_posterior(dz, residuals, np.ones(30), 0.03, 0.1, 4000, rng)
    assert draws[:, 0].mean() == pytest.approx(0.3, abs=0.02)
    assert np.quantile(draws[:, 0], 0.05) > 0.25


class _FittedPooled(PooledFake):
    """PooledFake as a campaign's model factory builds it: fit() keeps the table."""

    def __init__(self, space):
        super().__init__(space, None)

    def fit(self, table):
        self.training_table_ = table
        return self


def test_campaign_safety_doubts_moves_the_group_never_made():
    # South ran three batches near 150 rpm; the pooled draws are sure more agitation helps.
    # With transfer risk a batch far from South's own evidence is no longer "safe".
    table = _north_and_three_south_batches((30.9, 31.0, 31.1))
    space = _two_factor_space()
    out = {}
    for risk in (False, True):
        camp = Campaign(
            space, table, model=lambda: _FittedPooled(space), group={"site": "South"},
            trust_region=False, transfer_risk=risk, random_seed=4,
        )  # fmt: skip
        out[risk] = camp.recommend(4, n_draws=400, n_candidates=256)
    plain, doubtful = out[False], out[True]
    assert (doubtful["p_safe"] >= 0.9).all() and (plain["p_safe"] >= 0.9).all()
    assert doubtful.attrs["n_safe"] < 0.1 * plain.attrs["n_safe"]
    assert plain["agitation"].min() > 250.0  # the pooled slope sends South to the edge
    assert doubtful["agitation"].max() < 230.0  # steps within reach of South's evidence


def test_max_reach_keeps_each_factor_near_the_values_the_group_ran():
    # South ran 148-152 rpm; the model is sure more agitation helps (+0.001 per rpm)
    table = _north_and_three_south_batches((30.0, 31.0, 32.0))
    model = PooledFake(_two_factor_space(), table)
    kw = {"group": {"site": "South"}, "n_draws": 400, "n_candidates": 64, "random_seed": 3}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        free = recommend(model, **kw)
        near = recommend(model, constraints={"max_reach": 0.25}, **kw)
    assert free.setpoint["agitation"] > 170.0
    # 148-152 rpm plus max(25 % of 4 rpm, 5 % of the 100-300 rpm operating range) = 10 rpm
    assert near.setpoint["agitation"] <= 162.0 + 1e-9
    assert 27.5 <= near.setpoint["temperature"] <= 34.0  # 30-32 degC plus 0.5 each side
    assert any("agitation searched within 138-162 rpm" in n for n in near.settings["notes"])
    with pytest.raises(ValueError, match="max_reach must be a number >= 0"):
        recommend(model, constraints={"max_reach": -1}, **kw)
