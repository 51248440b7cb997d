import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import stats

from bayesbio.recommend import (
    BoundWarning,
    Constraints,
    DesignSpace,
    EmptyDesignSpaceWarning,
    ExtrapolationWarning,
    ModelDiagnosticsWarning,
    Recommendation,
    design_space,
    next_batches,
    plot_design_space,
    plot_recommendation,
    recommend,
)
from bayesbio.recommend.design_space import largest_box
from bayesbio.space import Factor, ProcessSpace, Response, number_text

SPACE = ProcessSpace.default()
PARAMS = SPACE.factor_names
BOUNDS = SPACE.bounds
LO = SPACE.lower
WIDTH = SPACE.upper - SPACE.lower


def unit_to_domain(u):
    return LO + np.asarray(u, dtype=float) * WIDTH


def make_table(n=40, *, centre=0.5, spread=None, seed=0):
    """Training setpoints: uniform over the bounds (spread=None) or a Gaussian cloud."""
    rng = np.random.default_rng(seed)
    if spread is None:
        u = rng.uniform(0.0, 1.0, size=(n, 4))
    else:
        u = np.clip(centre + spread * rng.standard_normal((n, 4)), 0.0, 1.0)
    x = unit_to_domain(u)
    table = pd.DataFrame(x, columns=list(PARAMS))
    table.insert(0, "site", np.where(np.arange(n) % 2 == 0, "A", "B"))
    table.insert(0, "batch_id", [f"B{i:03d}" for i in range(n)])
    table["yield"] = 5.0
    return table


class KnownPosterior:
    """A fake fitted model with a known posterior.

    Mean yield under posterior draw s: ``top_s - sum_j curvature_j * (u_j - vertex_sj)^2``, with
    ``u`` the setpoint scaled to [0, 1] over the default space's operating ranges. ``cliff``
    multiplies the curvature of one parameter above its vertex (a steep fall on that side).
    New-batch noise is Normal with SD ``noise_sd``. Draws are picked from a fixed pool with
    ``random_seed``, as a real model picks posterior draws.
    """

    def __init__(
        self,
        table,
        *,
        vertex=(0.5, 0.5, 0.5, 0.5),
        vertex_sd=(0.0, 0.0, 0.0, 0.0),
        top=8.0,
        top_sd=0.0,
        curvature=(4.0, 8.0, 8.0, 4.0),
        cliff=None,
        noise_sd=0.3,
        n_pool=4000,
        seed=0,
        diagnostics=None,
    ):
        rng = np.random.default_rng(seed)
        self.vertex = np.asarray(vertex, dtype=float) + np.asarray(vertex_sd) * rng.standard_normal(
            (n_pool, 4)
        )
        self.top = top + top_sd * rng.standard_normal(n_pool)
        self.curvature = np.asarray(curvature, dtype=float)
        self.cliff = cliff
        self.noise_sd = noise_sd
        self.training_table_ = table
        if diagnostics is not None:
            self.diagnostics_ = diagnostics
        self.kinds = []

    def _mean(self, X, idx):
        u = (X[list(PARAMS)].to_numpy(dtype=float) - LO) / WIDTH
        mu = np.repeat(self.top[idx][:, None], len(u), axis=1)
        for j in range(4):
            d = u[None, :, j] - self.vertex[idx, j][:, None]
            c = self.curvature[j]
            if self.cliff is not None and self.cliff[0] == j:
                c = np.where(d > 0, c * self.cliff[1], c)
            mu -= c * d**2
        return mu

    def predict_draws(self, X, *, n_draws=1000, noise=True, kind="existing", random_seed=None):
        self.kinds.append(kind)
        rng = np.random.default_rng(random_seed)
        idx = rng.integers(len(self.top), size=n_draws)
        mu = self._mean(X, idx)
        if noise:
            mu = mu + self.noise_sd * rng.standard_normal(mu.shape)
        return mu

    def predict(self, X):
        return self._mean(X, np.arange(len(self.top))).mean(axis=0)


def unit(setpoint):
    return (setpoint[list(PARAMS)].to_numpy(dtype=float) - LO) / WIDTH


FAST = {"n_draws": 400, "n_candidates": 128}


@pytest.fixture(scope="module")
def table():
    return make_table()


# -- recommend: known answers --------------------------------------------------------------------
@pytest.mark.parametrize("objective", ["mean", "cvar", "quantile"])
def test_recommend_lands_at_vertex_with_tight_posterior(table, objective):
    vertex = np.array([0.3, 0.6, 0.45, 0.7])
    model = KnownPosterior(table, vertex=vertex, vertex_sd=[0.005] * 4)
    rec = recommend(model, group={"site": "A"}, objective=objective, random_seed=1, **FAST)
    assert isinstance(rec, Recommendation)
    np.testing.assert_allclose(unit(rec.setpoint), vertex, atol=0.03)
    np.testing.assert_allclose(unit(rec.mean_optimal), vertex, atol=0.03)
    assert rec.expected_yield == pytest.approx(8.0, abs=0.1)
    assert rec.expected_regret >= 0
    assert rec.expected_regret < 0.05
    assert rec.support_distance["overall"] < rec.support_distance["limit"]
    assert not rec.warnings


def test_recommend_risk_averse_setpoint_moves_away_from_cliff(table):
    # temperature optimum uncertain (posterior SD 0.08 of its range) with a cliff above it
    common = {"vertex": (0.5, 0.5, 0.5, 0.5), "cliff": (1, 12.0), "noise_sd": 0.2}
    tight = KnownPosterior(table, vertex_sd=(0.0, 0.005, 0.0, 0.0), **common)
    wide = KnownPosterior(table, vertex_sd=(0.0, 0.08, 0.0, 0.0), **common)
    # the recipe (the group's median setpoint) sits near the vertex: test the objective alone
    kw = {"group": {"site": "A"}, "objective": "cvar", "risk": 0.1, "random_seed": 3, **FAST}
    kw["min_confidence"] = None
    t_tight = unit(recommend(tight, **kw).setpoint)[1]
    rec = recommend(wide, **kw)
    t_wide = unit(rec.setpoint)[1]
    t_mean = unit(rec.mean_optimal)[1]
    assert t_tight == pytest.approx(0.5, abs=0.03)
    # exact optima (1-D, 200k draws): mean 0.422, CVaR(0.1) 0.395 of the temperature range
    assert t_wide < t_mean - 0.01  # risk-averse backs off the cliff further than the mean
    assert t_wide < 0.42
    assert 0.4 < t_mean < 0.45  # even the mean backs off
    # model-risk premium: some mean yield traded for a better lower tail
    assert rec.premium["delta_mean"] <= 0.01
    assert rec.premium["delta_cvar"] >= -0.01
    assert rec.shift.loc["temperature", "difference"] < 0
    assert rec.premium["distance_sd"] > 0


def test_recommend_execution_noise_moves_setpoint_away_from_cliff(table):
    model = KnownPosterior(table, vertex_sd=(0.0, 0.005, 0.0, 0.0), cliff=(1, 12.0))
    kw = {"group": {"site": "A"}, "objective": "cvar", "random_seed": 4, **FAST}
    kw["min_confidence"] = None
    plain = unit(recommend(model, **kw).setpoint)[1]
    shaky = recommend(model, execution_sd={"temperature": 0.6}, **kw)
    assert unit(shaky.setpoint)[1] < plain - 0.02
    assert shaky.settings["execution_sd"] == {"temperature": 0.6}


def test_recommend_honours_bounds_and_fixed_parameters(table):
    model = KnownPosterior(table, vertex=(0.3, 0.6, 0.45, 0.7), vertex_sd=[0.005] * 4)
    cons = Constraints(bounds={"temperature": (30.0, 33.0)}, fixed={"ph": 7.3})
    with pytest.warns(BoundWarning) as caught:
        rec = recommend(model, group={"site": "A"}, constraints=cons, random_seed=2, **FAST)
    said = [str(w.message) for w in caught]
    assert any("factor 'temperature' is on the upper bound 33" in m for m in said)
    for frame_row in ("recommended", "mean_optimal"):
        row = rec.summary.loc[frame_row]
        assert 30.0 <= row["temperature"] <= 33.0
        assert row["ph"] == 7.3
    # the binding bound is active: the vertex (35.4 degC) lies above it
    assert rec.setpoint["temperature"] == pytest.approx(33.0, abs=0.1)
    # the group's recipe runs hotter than 33 degC: the reference is moved into the box, said so
    recipe_t = float(np.median(table.loc[table["site"] == "A", "temperature"]))
    assert recipe_t > 33.0
    moved = [w for w in rec.warnings if "lies outside the search box" in w]
    assert len(moved) == 1
    assert f"Temperature {number_text(recipe_t, 4)} °C" in moved[0]
    assert "moved into the box (Temperature 33 °C)" in moved[0]  # pH: fixed, said apart
    # the recipe as run keeps its pH; the reference holds pH at its fixed value, and the
    # model's view of both is said (so P(better) is not read as one against the recipe as run)
    recipe_ph = float(np.median(table.loc[table["site"] == "A", "ph"]))
    held = [w for w in rec.warnings if "the constraints hold pH 7.3 fixed" in w]
    assert len(held) == 1 and f"the recipe runs pH {number_text(recipe_ph, 4)}" in held[0]
    assert "at the recipe as run and" in held[0] and "compare with the latter" in held[0]
    assert rec.settings["recipe"]["ph"] == pytest.approx(recipe_ph)
    assert rec.summary.loc["recipe", "ph"] == 7.3
    # the same constraints as a plain mapping
    with pytest.warns(BoundWarning):
        rec2 = recommend(
            model,
            group={"site": "A"},
            constraints={"bounds": {"temperature": (30.0, 33.0)}, "fixed": {"ph": 7.3}},
            random_seed=2,
            **FAST,
        )
    pd.testing.assert_series_equal(rec.setpoint, rec2.setpoint)


def test_a_fixed_factor_outside_the_operating_range_warns_and_the_reason_says_so(table):
    j = list(PARAMS).index("ph")
    outside = float(SPACE.upper[j]) + 0.3
    assert outside <= SPACE.limits["ph"][1]  # within the physical limits: allowed
    cloud = make_table(60, centre=0.5, spread=0.05, seed=5)
    model = KnownPosterior(cloud, vertex=(0.5, 0.5, 0.5, 0.5), vertex_sd=[0.005] * 4)
    with (
        pytest.warns(ExtrapolationWarning, match=r"fixed\['ph'\] = .* outside the operating"),
        pytest.warns(BoundWarning, match=r"the constraints hold pH 7.8 fixed"),
    ):
        rec = recommend(
            model,
            group={"site": "A"},
            constraints={"fixed": {"ph": outside}},
            random_seed=1,
            **FAST,
        )
    assert any("outside the operating range" in n for n in rec.settings["notes"])
    assert rec.setpoint["ph"] == pytest.approx(outside)
    # every setpoint at that pH lies outside the support: the recipe (at the fixed pH) stays
    assert rec.decision == "recipe" and rec.next_experiments is None
    assert "kept the recipe (with pH " in rec.reason and "held fixed)" in rec.reason
    assert "no experiments are ranked" in rec.reason
    assert "run the next_experiments" not in rec.reason


def test_extrapolation_guard_keeps_setpoint_in_support_and_warns_without_it():
    cloud = make_table(60, centre=0.4, spread=0.05, seed=5)
    model = KnownPosterior(cloud, vertex=(0.4, 0.9, 0.4, 0.4), vertex_sd=[0.005] * 4)
    rec = recommend(model, group={"site": "A"}, random_seed=1, **FAST)
    assert rec.support_used == "group (own batches)"  # 30 batches >= 2 k + 1
    assert rec.support_distance["group"] <= rec.support_distance["limit"] + 1e-9
    assert unit(rec.setpoint)[1] < 0.8  # held back from the unsupported optimum
    # ... and it says so: the limit, not the surface, stopped the search; go that way
    (edge,) = [n for n in rec.settings["notes"] if "edge of the data support" in n]
    assert f"limit {rec.support_distance['limit']:.2f}" in edge
    assert "run batches beyond it in the same direction from the recipe (" in edge
    assert "Note: the setpoint is at the edge of the data support" in rec.explain()
    with pytest.warns(ExtrapolationWarning, match="outside the support"):
        free = recommend(
            model, group={"site": "A"}, constraints={"guard": False}, random_seed=1, **FAST
        )
    assert unit(free.setpoint)[1] == pytest.approx(0.9, abs=0.03)
    assert any("outside the support" in w for w in free.warnings)
    assert not free.summary.loc["recommended", "within_support"]
    assert not any("edge of the data support" in n for n in free.settings["notes"])


def test_prob_spec_is_calibrated_on_conjugate_model(table):
    # flat response, Normal posterior on the level, known noise: P(y >= spec) in closed form
    m, s, sigma, spec = 6.0, 0.4, 0.3, 5.5
    model = KnownPosterior(
        table, top=m, top_sd=s, curvature=(0, 0, 0, 0), noise_sd=sigma, n_pool=20000, seed=9
    )
    exact = 1 - stats.norm.cdf((spec - m) / np.hypot(s, sigma))
    kw = {"group": {"site": "A"}, "spec": spec, "n_draws": 8000, "n_candidates": 16}
    rec = recommend(model, objective="prob_spec", random_seed=3, **kw)
    assert rec.prob_spec == pytest.approx(exact, abs=0.02)
    # without new-batch noise: the probability that the mean yield meets the spec
    rec_mean = recommend(model, objective="mean", noise=False, random_seed=3, **kw)
    assert rec_mean.prob_spec == pytest.approx(1 - stats.norm.cdf((spec - m) / s), abs=0.02)
    q10 = m + stats.norm.ppf(0.1) * np.hypot(s, sigma)
    assert rec.quantiles.loc[0.1] == pytest.approx(q10, abs=0.05)
    # the mean objective searches without noise, but its summary is of a new batch too
    rec_mean_new = recommend(model, objective="mean", random_seed=3, **kw)
    assert rec_mean_new.prob_spec == pytest.approx(exact, abs=0.02)
    assert rec_mean_new.quantiles.loc[0.1] == pytest.approx(q10, abs=0.05)


def test_an_optimistic_risk_level_is_questioned(table):
    model = KnownPosterior(table)
    with pytest.warns(
        UserWarning, match=r"risk=0.9 with objective='quantile' reads the optimistic"
    ):
        recommend(model, group={"site": "A"}, objective="quantile", risk=0.9, **FAST)


def test_an_empty_design_space_warns_with_the_best_probability_and_its_plot_says_so(table):
    model = KnownPosterior(table, vertex=np.full(4, 0.5), vertex_sd=[0.0] * 4, noise_sd=0.5)
    with pytest.warns(EmptyDesignSpaceWarning, match=r"the highest is 0\.\d+ at "):
        ds = design_space(  # a spec above the best mean (8 g/L): nowhere met with P >= 0.9
            model, 9.5, 0.9, group={"site": "A"}, resolution=4, map_resolution=5, random_seed=2
        )
    assert not ds.grid["inside"].any() and ds.par[["low", "high"]].isna().all().all()
    assert any(n.startswith("empty design space") for n in ds.settings["notes"])
    fig = plot_design_space(ds)
    assert "(empty: no setpoint reaches it)" in fig._suptitle.get_text()
    full = design_space(
        model, 5.0, 0.5, group={"site": "A"}, resolution=4, map_resolution=5, random_seed=2
    )
    assert "empty" not in plot_design_space(full)._suptitle.get_text()


def test_a_point_sized_design_space_and_a_centre_outside_its_ranges_are_noted(table):
    model = KnownPosterior(table, vertex=np.full(4, 0.5), vertex_sd=[0.0] * 4, noise_sd=0.5)
    # a spec only the vertex reaches with P >= 0.9 on a 3-point grid
    ds = design_space(
        model, 7.3, 0.9, group={"site": "A"}, resolution=3, map_resolution=5, random_seed=2,
        center={p: float(v) for p, v in zip(PARAMS, unit_to_domain([0.9] * 4), strict=True)},
    )  # fmt: skip
    notes = " ".join(ds.settings["notes"])
    assert int(ds.grid["inside"].sum()) == 1
    assert "the design space is a single grid point (1 of 81 grid points inside)" in notes
    assert "the centre (the recommended setpoint unless given) lies outside" in notes


def test_a_zero_width_proven_range_of_one_factor_is_noted(table):
    # a sharp temperature optimum, flat elsewhere: a box wide in three factors, one grid
    # value thin in temperature, which a table of ranges alone would show as "34.5-34.5"
    model = KnownPosterior(
        table, vertex=np.full(4, 0.5), curvature=(0.5, 60.0, 0.5, 0.5), noise_sd=0.1
    )
    ds = design_space(
        model, 7.0, 0.9, group={"site": "A"}, resolution=5, map_resolution=5, random_seed=2
    )
    assert ds.par.loc["temperature", "low"] == ds.par.loc["temperature", "high"]
    assert (ds.par.drop(index="temperature").eval("high > low")).all()
    notes = [n for n in ds.settings["notes"] if "zero width" in n]
    assert len(notes) == 1 and "of ['temperature'] has zero width" in notes[0]


def test_proven_ranges_are_searched_again_on_a_zoomed_grid(table):
    # a temperature band narrower than one step of the full grid: the full grid holds it at
    # one temperature; the zoomed search finds a range, proven at its corners
    model = KnownPosterior(
        table, vertex=np.full(4, 0.5), curvature=(0.5, 30.0, 0.5, 0.5), noise_sd=0.1
    )
    ds = design_space(
        model, 7.0, 0.9, group={"site": "A"}, resolution=5, map_resolution=5, random_seed=2
    )
    inside = ds.grid[ds.grid["inside"]]
    assert inside["temperature"].nunique() == 1  # one grid value thin on the full grid
    par = ds.par
    assert par.loc["temperature", "high"] > par.loc["temperature", "low"]
    assert set(ds.settings["par_zoom"]) == set(PARAMS)
    text = repr(ds)  # a summary in a notebook, not the whole grid
    assert text.startswith("DesignSpace(P(response >= 7) >= 0.9") and len(text) < 400
    assert "grid points inside" in text and "temperature " in text
    assert not [n for n in ds.settings["notes"] if "zero width" in n]
    corners = np.array(list(itertools.product(*par[["low", "high"]].to_numpy())))
    u = (corners - LO) / WIDTH
    mean = 8.0 - ((u - 0.5) ** 2 * model.curvature).sum(axis=1)
    exact = 1 - stats.norm.cdf((7.0 - mean) / 0.1)
    assert exact.min() >= 0.9 - 0.03


def test_design_space_probabilities_match_exact_values_on_quadratic(table):
    # a tight posterior: P(meet) is the noise tail at the known mean
    vertex = np.array([0.5, 0.5, 0.5, 0.5])
    model = KnownPosterior(table, vertex=vertex, vertex_sd=[0.0] * 4, noise_sd=0.5)
    ds = design_space(
        model,
        7.0,
        0.8,
        group={"site": "A"},
        resolution=5,
        map_resolution=7,
        n_draws=4000,
        center={p: float(v) for p, v in zip(PARAMS, unit_to_domain(vertex), strict=True)},
        random_seed=2,
    )
    assert isinstance(ds, DesignSpace)
    grid = ds.grid
    assert len(grid) == 5**4
    u = (grid[list(PARAMS)].to_numpy() - LO) / WIDTH
    mean = 8.0 - ((u - vertex) ** 2 * model.curvature).sum(axis=1)
    exact = 1 - stats.norm.cdf((7.0 - mean) / 0.5)
    assert np.max(np.abs(grid["prob"].to_numpy() - exact)) < 0.04
    assert set(ds.maps) == set(itertools.combinations(PARAMS, 2))
    assert all(len(m) == 49 for m in ds.maps.values())
    # proven acceptable ranges: every grid point in the box is inside the design space
    par = ds.par
    in_box = np.all(
        (grid[list(PARAMS)] >= par["low"].to_numpy() - 1e-9)
        & (grid[list(PARAMS)] <= par["high"].to_numpy() + 1e-9),
        axis=1,
    )
    assert in_box.sum() >= 1
    assert grid.loc[in_box, "inside"].all()
    # and the box holds the vertex, where P(meet) is highest
    assert (par["low"].to_numpy() <= unit_to_domain(vertex) + 1e-9).all()
    assert (par["high"].to_numpy() >= unit_to_domain(vertex) - 1e-9).all()
    assert 0 < ds.share_inside < 1
    pd.testing.assert_frame_equal(ds.to_frame(), grid)


def test_design_space_honours_fixed_parameters_and_defaults_center_to_recommendation(table):
    model = KnownPosterior(table, vertex_sd=[0.01] * 4)
    with pytest.warns(BoundWarning, match="the constraints hold pH 7 fixed while the recipe"):
        ds = design_space(
            model,
            7.0,
            0.8,
            group={"site": "B"},
            resolution=4,
            map_resolution=5,
            n_draws=300,
            constraints={"fixed": {"ph": 7.0}},
            random_seed=1,
        )
    assert len(ds.grid) == 4**3
    assert (ds.grid["ph"] == 7.0).all()
    assert set(ds.maps) == {
        ("mixing_time", "temperature"),
        ("mixing_time", "dissolved_oxygen"),
        ("temperature", "dissolved_oxygen"),
    }
    assert ds.par.loc["ph", "fixed"] and ds.par.loc["ph", "low"] == 7.0
    np.testing.assert_allclose(unit(ds.center)[[0, 1, 3]], 0.5, atol=0.05)


def test_largest_box_matches_brute_force():
    rng = np.random.default_rng(0)
    for shape in [(6,), (5, 6), (4, 3, 4), (3, 4, 3, 3)]:
        ok = rng.random(shape) < 0.8
        box = largest_box(ok)
        best = 0
        for lohi in itertools.product(
            *[[(a, b) for a in range(n) for b in range(a, n)] for n in shape]
        ):
            sl = tuple(slice(a, b + 1) for a, b in lohi)
            if ok[sl].all():
                best = max(best, int(np.prod([b - a + 1 for a, b in lohi])))
        lo, hi = box
        sl = tuple(slice(a, b + 1) for a, b in zip(lo, hi, strict=True))
        assert ok[sl].all()
        assert int(np.prod(hi - lo + 1)) == best
    assert largest_box(np.zeros((3, 3), dtype=bool)) is None


# -- recommend: reproducibility, groups, diagnostics ----------------------------------------------
def test_same_seed_gives_same_recommendation(table):
    model = KnownPosterior(table, vertex_sd=[0.05] * 4)
    a = recommend(model, group={"site": "A"}, random_seed=11, **FAST)
    b = recommend(model, group={"site": "A"}, random_seed=11, **FAST)
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    c = recommend(model, group={"site": "A"}, random_seed=12, **FAST)
    assert not np.allclose(a.setpoint.to_numpy(), c.setpoint.to_numpy())


def test_unseen_group_needs_kind_new_group(table):
    model = KnownPosterior(table, vertex_sd=[0.01] * 4)
    with pytest.raises(ValueError, match=r"'Z'.*known labels of 'site': \['A', 'B'\]"):
        recommend(model, group={"site": "Z"}, random_seed=1, **FAST)
    assert model.kinds == []
    rec = recommend(model, group={"site": "Z"}, kind="new_group", random_seed=1, **FAST)
    assert rec.kind == "new_group"
    assert set(model.kinds) == {"new_group"}
    assert np.isnan(rec.support_distance["group"])
    # the explanation gives the distance the guard used (overall), not the group's NaN
    support_line = next(t for t in rec.explain().splitlines() if t.startswith("Support:"))
    assert "nan" not in support_line
    assert f"distance {rec.support_distance['overall']:.2f}" in support_line
    # known labels keep kind="auto" -> "existing"
    assert recommend(model, group={"site": "B"}, random_seed=1, **FAST).kind == "existing"


def test_recommendation_carries_model_diagnostics_warning(table):
    model = KnownPosterior(
        table, vertex_sd=[0.01] * 4, diagnostics={"max_r_hat": 1.2, "divergences": 3}
    )
    with pytest.warns(ModelDiagnosticsWarning, match="R-hat 1.200"):
        rec = recommend(model, group={"site": "A"}, random_seed=1, **FAST)
    assert any("3 divergent" in w for w in rec.warnings)
    assert rec.diagnostics["max_r_hat"] == 1.2


def test_to_frame_and_summary_contents(table):
    model = KnownPosterior(table, vertex=(0.3, 0.6, 0.45, 0.7), vertex_sd=[0.03] * 4)
    rec = recommend(model, group={"site": "A"}, spec=7.0, random_seed=5, **FAST)
    frame = rec.to_frame()
    assert list(frame.index) == ["recommended", "mean_optimal", "recipe"]
    for col in [
        *PARAMS,
        "expected_yield",
        "q10",
        "q90",
        "prob_spec",
        "expected_regret",
        "distance_group",
        "distance_overall",
        "cvar",
    ]:
        assert col in frame.columns
    assert frame.loc["recipe", list(PARAMS)].to_numpy() == pytest.approx(
        table.loc[table["site"] == "A", list(PARAMS)].median().to_numpy()
    )
    # the recommendation beats the recipe on its objective and on regret here
    assert frame.loc["recommended", "cvar"] >= frame.loc["recipe", "cvar"]
    assert frame.loc["recommended", "expected_regret"] <= frame.loc["recipe", "expected_regret"]
    assert rec.quantiles.is_monotonic_increasing
    assert 0 <= rec.prob_spec <= 1
    assert list(rec.draws.columns) == ["recommended", "mean_optimal", "recipe"]


def test_one_recommendation_keeps_the_draws_it_was_asked_for(table):
    model = KnownPosterior(table, vertex_sd=[0.03] * 4)
    rec = recommend(model, group={"site": "A"}, n_draws=1000, random_seed=1)
    assert len(rec.draws) == 1000


# -- argument errors -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"objective": "median"}, r"objective must be one of \['mean', 'quantile'"),
        ({"objective": "prob_spec"}, "spec is required"),
        ({"constraints": {"bounds": {"temp": (30, 35)}}}, r"unknown factor\(s\) \['temp'\]"),
        ({"constraints": {"bounds": {"temperature": (1.0, 35)}}}, "physical limits"),
        ({"constraints": {"bounds": {"temperature": (40.0, 45)}}}, "operating range"),
        ({"constraints": {"bounds": {"temperature": (36.0, 35)}}}, "low < high"),
        ({"constraints": {"fixed": {"ph": 9.9}}}, "outside the physical limits"),
        ({"constraints": {"max_distance": -1.0}}, "max_distance must be > 0"),
        ({"constraints": {"fixd": {}}}, "unknown key"),
        ({"constraints": {"support": "nearby"}}, r"constraints.support must be one of"),
        ({"execution_sd": {"acidity": 0.1}}, "execution_sd names unknown"),
        (
            {"constraints": {"bounds": {"temperature": (30, 35), "Temperature": (31, 34)}}},
            r"constraints.bounds names factor 'temperature' twice",
        ),
        ({"execution_sd": {"ph": -0.1}}, "SD >= 0"),
        ({"kind": "other"}, "kind must be one of"),
        ({"risk": 1.5}, r"risk must be in \(0, 1\)"),
        ({"group": {"scale": "2000L"}}, "group names unknown column"),
        (
            {"group": None},
            r"group must name the target group.*the next campaign.*kind='new_group'",
        ),
        ({"n_draws": 0}, "n_draws must be >= 10"),
        ({"group": {"site": "Z"}}, r"known labels of 'site': \['A', 'B'\]"),
        ({"group": {"site": "Z"}, "kind": "existing"}, "not a label seen in training"),
    ],
)
def test_recommend_rejects_bad_arguments(table, kwargs, match):
    model = KnownPosterior(table)
    args = {"group": {"site": "A"}, **kwargs}
    with pytest.raises(ValueError, match=match):
        recommend(model, **args)


def test_factors_may_be_named_by_their_labels(table):
    """recipe, bounds, fixed and execution_sd take a factor's label as people write it."""
    model = KnownPosterior(table, vertex=(0.3, 0.6, 0.45, 0.7), vertex_sd=[0.005] * 4)
    by_name = {
        "constraints": {"bounds": {"temperature": (30.0, 33.0)}, "fixed": {"ph": 7.3}},
        "recipe": {"dissolved_oxygen": 40.0},
        "execution_sd": {"temperature": 0.2},
    }
    by_label = {
        "constraints": {"bounds": {"Temperature": (30.0, 33.0)}, "fixed": {"pH": 7.3}},
        "recipe": {"dissolved oxygen": 40.0},
        "execution_sd": {" TEMPERATURE ": 0.2},
    }
    space = ProcessSpace.default()
    assert space.factor_name("Dissolved oxygen") == "dissolved_oxygen"
    assert space.factor_name("oxygen") is None
    recs = []
    for kwargs in (by_name, by_label):
        with pytest.warns(BoundWarning):
            recs.append(recommend(model, group={"site": "A"}, random_seed=2, **FAST, **kwargs))
    pd.testing.assert_series_equal(recs[0].setpoint, recs[1].setpoint)
    assert recs[1].setpoint["ph"] == 7.3
    assert recs[1].summary.loc["recipe", "dissolved_oxygen"] == 40.0


def test_a_group_label_spelled_in_another_case_is_read_and_noted(table):
    model = KnownPosterior(table)
    exact = recommend(model, group={"site": "A"}, random_seed=1)
    loose = recommend(model, group={"site": " a "}, random_seed=1)
    assert loose.group["site"] == "A"
    assert loose.setpoint.equals(exact.setpoint)
    assert "group['site'] = ' a ' read as 'A' (same up to case/spaces)" in loose.settings["notes"]


def test_recommend_rejects_unfitted_model():
    with pytest.raises(ValueError, match="training_table_"):
        recommend(object(), group={"site": "A"})


# -- properties ----------------------------------------------------------------------------------
_PROP_MODEL = KnownPosterior(make_table(), vertex=(0.2, 0.8, 0.4, 0.6), vertex_sd=[0.05] * 4)


@pytest.mark.filterwarnings("ignore::bayesbio.recommend.EmptyDesignSpaceWarning")  # strict specs
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=st.floats(4.0, 9.0), step=st.floats(0.05, 3.0))
def test_stricter_spec_never_raises_probability_of_meeting_it(spec, step):
    center = dict(zip(PARAMS, unit_to_domain([0.5] * 4), strict=True))
    kw = {
        "group": {"site": "A"},
        "resolution": 3,
        "map_resolution": 2,
        "n_draws": 200,
        "center": center,
        "random_seed": 0,
    }
    loose = design_space(_PROP_MODEL, spec, 0.5, **kw)
    strict = design_space(_PROP_MODEL, spec + step, 0.5, **kw)
    assert (strict.grid["prob"].to_numpy() <= loose.grid["prob"].to_numpy()).all()
    assert strict.grid["inside"].sum() <= loose.grid["inside"].sum()
    rec_kw = {
        "group": {"site": "A"},
        "objective": "mean",
        "n_draws": 200,
        "n_candidates": 16,
        "random_seed": 0,
    }
    assert (
        recommend(_PROP_MODEL, spec=spec + step, **rec_kw).prob_spec
        <= recommend(_PROP_MODEL, spec=spec, **rec_kw).prob_spec
    )


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fractions=st.lists(
        st.tuples(st.floats(0.0, 0.9), st.floats(0.05, 1.0)), min_size=4, max_size=4
    ),
    objective=st.sampled_from(["mean", "cvar", "quantile"]),
)
def test_recommended_setpoints_stay_within_bounds(fractions, objective):
    bounds = {}
    for p, (a, w) in zip(PARAMS, fractions, strict=True):
        lo = BOUNDS[p][0] + a * (BOUNDS[p][1] - BOUNDS[p][0])
        hi = min(BOUNDS[p][1], lo + max(w, 0.05) * (BOUNDS[p][1] - lo))
        bounds[p] = (lo, max(hi, lo + 1e-3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        warnings.simplefilter("ignore", BoundWarning)
        rec = recommend(
            _PROP_MODEL,
            group={"site": "A"},
            objective=objective,
            constraints={"bounds": bounds, "guard": False},
            n_draws=100,
            n_candidates=32,
            random_seed=0,
        )
    for name in ("recommended", "mean_optimal"):
        row = rec.summary.loc[name]
        for p in PARAMS:
            assert bounds[p][0] - 1e-9 <= row[p] <= bounds[p][1] + 1e-9


# -- next batches --------------------------------------------------------------------------------
class SlopeModel(KnownPosterior):
    """Mean yield 6 + beta * (u_ph - 0.5) with beta ~ N(0, 2): which pH end is better is unknown."""

    def __init__(self, table):
        super().__init__(table, curvature=(0, 0, 0, 0), noise_sd=0.2)
        self.beta = 2.0 * np.random.default_rng(1).standard_normal(len(self.top))

    def _mean(self, X, idx):
        u = (X["ph"].to_numpy(dtype=float) - LO[2]) / WIDTH[2]
        return 6.0 + self.beta[idx][:, None] * (u[None, :] - 0.5)


def test_next_batches_prefers_informative_candidates(table):
    model = SlopeModel(table)
    cand = pd.DataFrame(
        unit_to_domain([[0.5, 0.5, 0.5, 0.5], [0.5, 0.5, 1.0, 0.5], [0.5, 0.5, 0.75, 0.5]]),
        columns=list(PARAMS),
    )
    cand["label"] = ["centre", "ph_high", "ph_mid"]
    ranked = next_batches(model, cand, k=3, group={"site": "A"}, n_draws=1000, random_seed=0)
    assert list(ranked["label"]) == ["ph_high", "ph_mid", "centre"]
    assert list(ranked["rank"]) == [1, 2, 3]
    centre = ranked.set_index("label").loc["centre"]
    assert centre["expected_regret_reduction"] == pytest.approx(0.0, abs=1e-6)
    assert (ranked["expected_regret_reduction"] >= -1e-9).all()
    current = ranked.attrs["current_expected_regret"]
    # E|beta| / 2 = 2 * sqrt(2 / pi) / 2
    assert current == pytest.approx(np.sqrt(2 / np.pi), rel=0.1)
    # an observation at the pH bound nearly settles the sign of beta: most regret removed
    assert ranked.iloc[0]["expected_regret_after"] < 0.2 * current
    # estimated noise SD from the draws matches the model's
    assert ranked["noise_sd"].to_numpy() == pytest.approx(0.2, rel=0.15)
    top1 = next_batches(model, cand, k=1, group={"site": "A"}, noise_sd=0.2, random_seed=0)
    assert len(top1) == 1 and top1["label"].iloc[0] == "ph_high"
    with pytest.raises(ValueError, match="k must be at most"):
        next_batches(model, cand, k=5, group={"site": "A"})


# -- plots ---------------------------------------------------------------------------------------
def test_plots_return_matplotlib_objects(table):
    import matplotlib.pyplot as plt

    model = KnownPosterior(table, vertex_sd=[0.03] * 4)
    rec = recommend(model, group={"site": "A"}, spec=7.0, random_seed=1, **FAST)
    _, ax = plt.subplots()
    assert plot_recommendation(rec, ax=ax) is ax
    assert isinstance(rec.plot(), Axes)
    ds_args = {"group": {"site": "A"}, "center": rec, "resolution": 3, "n_draws": 200}
    ds = design_space(model, 7.0, 0.8, map_resolution=6, random_seed=1, **ds_args)
    fig = plot_design_space(ds)
    assert isinstance(fig, Figure)
    assert len([a for a in fig.axes if a.get_visible()]) == 6 + 1  # panels + colour bar
    with pytest.raises(ValueError, match="not in the design space maps"):
        plot_design_space(ds, pairs=[("ph", "ph")])
    # every mark has a legend entry, the group is in the titles, ticks are limited
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    for mark in ("= 0.8", "proven acceptable ranges", "training batches",
                 "recommended setpoint"):  # fmt: skip
        assert any(mark in text for text in legend), (mark, legend)
    # a mark that is not drawn has no legend entry
    hatched = any((~m["supported"].astype(bool)).any() for m in ds.maps.values())
    assert ("outside the data" in legend) == hatched
    assert fig._suptitle.get_text().endswith("site A")
    # the hatching covers exactly the unsupported cells of the map, no supported grid point
    # (a tight support limit, so that every panel holds both)
    space = ProcessSpace.default()
    tight = {"max_distance": 1.5}
    ds = design_space(
        model, 7.0, 0.8, map_resolution=9, constraints=tight, random_seed=1, **ds_args
    )
    fig = plot_design_space(ds)
    n_checked = 0
    for (a, b), m in ds.maps.items():
        panel = next(
            p
            for p in fig.axes
            if p.get_xlabel() == space.axis_label(a) and p.get_ylabel() == space.axis_label(b)
        )
        paths = [
            path
            for c in panel.collections
            if "//" in (getattr(c, "hatches", None) or [])
            for path in c.get_paths()
        ]
        points = m[[a, b]].to_numpy(dtype=float)
        covered = np.zeros(len(m), dtype=bool)
        for path in paths:
            covered |= path.contains_points(points)
        np.testing.assert_array_equal(covered, ~m["supported"].to_numpy(dtype=bool))
        n_checked += int((~m["supported"]).sum())
    assert n_checked > 0
    plt.close("all")
    panels = [a for a in fig.axes if a.get_visible() and a.get_label() != "<colorbar>"]
    for panel in panels:
        assert panel.get_title().startswith("at ")
        lo, hi = sorted(panel.get_xlim())
        shown = [t for t in panel.get_xticks() if lo <= t <= hi]
        assert panel.get_xlabel() == "pH" or "[" in panel.get_xlabel()
        assert len(shown) <= 6
    ax = plot_recommendation(rec)
    assert "site A" in ax.get_title() and "[g/L]" in ax.get_xlabel()
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("spec: >= 7 g/L") for t in texts)
    assert any("10th percentile of each" in t for t in texts)


def test_a_recommendation_prints_short_and_explains_itself(table):
    model = KnownPosterior(table, vertex=(0.5, 0.5, 0.5, 0.5), vertex_sd=[0.01] * 4)
    rec = recommend(model, group={"site": "A"}, spec=7.0, random_seed=1, **FAST)
    text = repr(rec)
    assert text.startswith(f"Recommendation(decision={rec.decision!r}, group={{'site': 'A'")
    assert "ProcessSpace" not in text and len(text) < 400 and ".explain()" in text
    lines = rec.explain().splitlines()
    assert lines[0].startswith("Recommendation for site A: ")
    assert lines[1].startswith("Setpoint: Mixing time ") and "°C" in lines[1]
    assert "P(meet 7 g/L)" in lines[2] and "at the recipe" in lines[2]
    assert lines[3] == f"Why: {rec.reason}."
    assert lines[4].startswith(f"Support: {rec.support_used}; distance ")


def test_recommendation_plot_shows_the_bulk_of_heavy_tailed_draws(table):
    import dataclasses

    import matplotlib.pyplot as plt

    model = KnownPosterior(table, vertex=(0.5, 0.5, 0.5, 0.5), vertex_sd=[0.01] * 4)
    rec = recommend(model, group={"site": "A"}, spec=7.0, random_seed=1, **FAST)
    draws = rec.draws.copy()
    draws.iloc[0] = 500.0  # one extreme draw per column
    ax = plot_recommendation(dataclasses.replace(rec, draws=draws))
    assert max(ax.get_xlim()) < 50.0  # not squeezed towards 500
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "axis: central 99 % of the draws" in texts
    plt.close(ax.figure)


# -- real models ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sim40():
    from bayesbio.simulate import simulate_batches

    return simulate_batches(40, random_seed=3)


def test_recommend_works_with_lasso_baseline_through_the_protocol(sim40):
    from bayesbio.models.baselines import LassoYield

    model = LassoYield(n_bootstrap=20, random_state=0).fit(sim40.table)
    group = {"scale": "200L", "site": "A"}
    rec = recommend(model, group=group, spec=4.0, random_seed=0, **FAST)
    row = rec.setpoint
    for p in PARAMS:
        assert BOUNDS[p][0] <= row[p] <= BOUNDS[p][1]
    assert rec.kind == "existing"
    assert rec.group["campaign"] in set(sim40.table["campaign"])
    assert rec.support_distance["overall"] <= rec.support_distance["limit"] + 1e-9
    # better than the recipe in truth (the model is decent at n = 40)
    truth = sim40.truth
    X = rec.summary.loc[["recommended", "recipe"], list(PARAMS)]
    true_rec, true_recipe = truth.mean_yield(X, group)
    assert true_rec >= true_recipe - 0.05 * truth.optimum(group)["yield"]


@pytest.mark.slow
def test_recommend_with_bayesian_model_warns_on_short_chains_and_stays_near_recipe(sim40):
    from bayesbio.models.bayesian import BayesianYieldModel

    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")  # short chains: convergence warnings are expected
        model = BayesianYieldModel(draws=200, tune=200, chains=2, random_seed=1).fit(sim40.table)
    group = {"scale": "200L", "site": "A"}
    with pytest.warns(ModelDiagnosticsWarning, match="sampling diagnostics"):
        rec = recommend(model, group=group, random_seed=0)
    assert rec.warnings and rec.diagnostics
    truth = sim40.truth
    X = rec.summary.loc[["recommended", "recipe"], list(PARAMS)]
    true_rec, true_recipe = truth.mean_yield(X, group)
    # no large loss against the recipe: within 5 % of the optimum, the criterion of the LASSO
    # test above. Not 2 %: here the model is overconfident. 200L/A's batches confound a hot
    # temperature with a low DO (campaign CMP02), the posterior says "cooler is better" and
    # P(better than recipe) = 0.94, yet in truth the recommendation is 1.7-2.3 % of the
    # optimum *worse* than the recipe (measured with model seeds 1-3 and with 1,000 draws).
    # How often stated P(better) holds across worlds is measured in benchmarks/ (issue 13).
    assert true_rec >= true_recipe - 0.05 * truth.optimum(group)["yield"]


# -- any process space: a toy protocol model on k = 1, 2, 3 factors ---------------------------
_TOY_FACTORS = (
    ("speed", "rpm", (100.0, 500.0), (0.0, 2000.0)),
    ("feed", "mL/h", (1.0, 5.0), (0.0, 20.0)),
    ("time", "h", (24.0, 72.0), (0.0, 200.0)),
)


def toy_space(k, *, direction="maximise", fixed=None):
    """A k-factor space (speed rpm, feed mL/h, time h); response titer or impurity in mg/L."""
    fixed = fixed or {}
    factors = tuple(
        Factor(name, unit, op, lim, fixed=fixed.get(name))
        for name, unit, op, lim in _TOY_FACTORS[:k]
    )
    name = "titer" if direction == "maximise" else "impurity"
    response = Response(name, "mg/L", (0.0, 1000.0), direction)
    return ProcessSpace(factors, response, groups=("site",), batch_id="run")


def toy_table(space, n=40, seed=0):
    rng = np.random.default_rng(seed)
    u = rng.uniform(0.0, 1.0, size=(n, space.k))
    table = pd.DataFrame(space.lower + u * (space.upper - space.lower), columns=space.factor_names)
    table.insert(0, "site", np.where(np.arange(n) % 2 == 0, "A", "B"))
    table.insert(0, "run", [f"R{i:03d}" for i in range(n)])
    table[space.response.name] = 50.0
    return table


class ToyModel:
    """A protocol model (fit, predict, predict_draws, space_, training_table_) with a known optimum.

    Mean response under posterior draw s: ``level +/- sum_j curvature * (u_j - vertex_sj)^2``
    with ``u`` the setpoint scaled to [0, 1] over the operating ranges; the bowl opens so that
    the vertex is the best point in the space's direction (a maximum of a titer, a minimum of
    an impurity). Site B adds ``site_b``. New-batch noise Normal with SD ``noise_sd``.
    """

    def __init__(
        self, space, *, vertex, vertex_sd=0.005, level=50.0, curvature=20.0, noise_sd=0.5,
        site_b=0.0, n_pool=4000, seed=0,
    ):  # fmt: skip
        rng = np.random.default_rng(seed)
        k = space.k
        self.space = space
        self.vertex = np.asarray(vertex, float)[:k] + vertex_sd * rng.standard_normal((n_pool, k))
        self.level = level
        self.curvature = curvature
        self.noise_sd = noise_sd
        self.site_b = site_b
        self.kinds = []

    def fit(self, X, y=None):
        self.training_table_ = X.copy()
        self.space_ = self.space
        return self

    def _mean(self, X, idx):
        s = self.space
        u = (X[list(s.factor_names)].to_numpy(float) - s.lower) / (s.upper - s.lower)
        bowl = (self.curvature * (u[None, :, :] - self.vertex[idx][:, None, :]) ** 2).sum(axis=2)
        shift = np.where(X["site"].to_numpy() == "B", self.site_b, 0.0)
        return self.level + shift - bowl if s.response.maximise else self.level + shift + bowl

    def predict_draws(self, X, *, n_draws=1000, noise=True, kind="existing", random_seed=None):
        self.kinds.append(kind)
        known = set(self.training_table_["site"])
        if kind == "existing" and not set(X["site"]) <= known:
            raise ValueError(f"unknown site {set(X['site']) - known}")
        rng = np.random.default_rng(random_seed)
        mu = self._mean(X, rng.integers(len(self.vertex), size=n_draws))
        return mu + self.noise_sd * rng.standard_normal(mu.shape) if noise else mu

    def predict(self, X):
        return self._mean(X, np.arange(len(self.vertex))).mean(axis=0)


def toy_unit(space, setpoint):
    x = setpoint[list(space.factor_names)].to_numpy(float)
    return (x - space.lower) / (space.upper - space.lower)


TOY_VERTEX = (0.3, 0.65, 0.45)


@pytest.mark.parametrize("direction", ["maximise", "minimise"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_recommend_lands_on_toy_optimum_in_k_factor_space(k, direction):
    space = toy_space(k, direction=direction)
    model = ToyModel(space, vertex=TOY_VERTEX).fit(toy_table(space))
    for objective in ("mean", "cvar"):
        rec = recommend(model, group={"site": "A"}, objective=objective, random_seed=1, **FAST)
        assert list(rec.setpoint.index) == list(space.factor_names)
        np.testing.assert_allclose(toy_unit(space, rec.setpoint), TOY_VERTEX[:k], atol=0.03)
        np.testing.assert_allclose(toy_unit(space, rec.mean_optimal), TOY_VERTEX[:k], atol=0.03)
        assert rec.expected_yield == pytest.approx(50.0, abs=0.5)
        assert rec.expected_regret >= 0
        assert rec.space is space and rec.direction == direction
        assert rec.settings["objective_description"].startswith(direction)
        assert rec.to_frame().attrs["direction"] == direction
        assert "impurity" in rec.quantiles.name or "titer" in rec.quantiles.name
        # the recipe (the table's median) is off the vertex: a cut of a minimum is a reduction
        said = "expected gain +" if direction == "maximise" else "expected reduction "
        assert rec.decision == "improve" and said in rec.reason, rec.reason
    # the default support radius is the chi 99 % radius for the free dimension
    assert rec.support_distance["limit"] == pytest.approx(np.sqrt(stats.chi2.ppf(0.99, k)))


def test_toy_recommendation_respects_space_fixed_factor_bounds_and_constraints():
    space = toy_space(3, fixed={"feed": 2.0})
    model = ToyModel(space, vertex=TOY_VERTEX).fit(toy_table(space))
    rec = recommend(model, group={"site": "A"}, objective="mean", random_seed=1, **FAST)
    assert (rec.summary.loc[["recommended", "mean_optimal"], "feed"] == 2.0).all()
    np.testing.assert_allclose(toy_unit(space, rec.setpoint)[[0, 2]], [0.3, 0.45], atol=0.03)
    # two free factors: the support radius uses 2 degrees of freedom
    assert rec.support_distance["limit"] == pytest.approx(np.sqrt(stats.chi2.ppf(0.99, 2)))
    # user bounds cut the operating range; Constraints.fixed overrides the space's value
    cons = {"bounds": {"speed": (300.0, 1500.0)}, "fixed": {"feed": 4.0, "time": 30.0}}
    with (
        pytest.warns(BoundWarning, match="factor 'speed' is on the lower bound 300 rpm"),
        pytest.warns(BoundWarning, match=r"hold Feed 4 mL/h, Time 30 h fixed while the recipe"),
    ):
        rec = recommend(model, group={"site": "A"}, constraints=cons, random_seed=1, **FAST)
    for row in ("recommended", "mean_optimal"):
        assert 300.0 <= rec.summary.loc[row, "speed"] <= 500.0
        assert rec.summary.loc[row, "feed"] == 4.0
        assert rec.summary.loc[row, "time"] == 30.0
    assert rec.setpoint["speed"] == pytest.approx(300.0, abs=2.0)  # vertex 220 rpm is below
    assert any("cut to the operating range" in note for note in rec.settings["notes"])
    with pytest.raises(ValueError, match=r"physical limits of 'speed' rpm"):
        recommend(model, group={"site": "A"}, constraints={"bounds": {"speed": (10.0, 5000.0)}})
    with pytest.raises(ValueError, match=r"factors are \['speed', 'feed', 'time'\]"):
        recommend(model, group={"site": "A"}, constraints={"fixed": {"mixing_time": 30.0}})


class SpreadModel(ToyModel):
    """One factor ``a`` over [0, 1]: mean draw ``5 - a + (0.1 + 3 a) z_s``, z_s ~ N(0, 1).

    The posterior mean falls with ``a`` but its spread grows: the mean is lowest at a = 1,
    an upper quantile, the upper tail and P(y <= 5.5) are best at a = 0.
    """

    def __init__(self, space):
        super().__init__(space, vertex=(0.5,), noise_sd=0.02)
        self.z = np.random.default_rng(5).standard_normal(4000)

    def _mean(self, X, idx):
        a = X["a"].to_numpy(float)
        return 5.0 - a[None, :] + (0.1 + 3.0 * a[None, :]) * self.z[idx][:, None]


@pytest.mark.filterwarnings("ignore::bayesbio.recommend.BoundWarning")  # optima at a = 0 or 1
def test_minimise_turns_every_objective_around():
    space = ProcessSpace(
        (Factor("a", "h", (0.0, 1.0), (0.0, 2.0)),),
        Response("impurity", "mg/L", (0.0, 100.0), "minimise"),
        groups=("site",),
    )
    model = SpreadModel(space).fit(toy_table(space, n=60))
    kw = {"group": {"site": "A"}, "random_seed": 2, "n_draws": 2000, "n_candidates": 64}
    # the posterior cannot tell these setpoints from the recipe: test the objectives alone
    kw["min_confidence"] = None
    assert recommend(model, objective="mean", **kw).setpoint["a"] == pytest.approx(1.0, abs=0.02)
    for objective in ("quantile", "cvar", "prob_spec"):
        rec = recommend(model, objective=objective, spec=5.5, **kw)
        assert rec.setpoint["a"] == pytest.approx(0.0, abs=0.02), objective
    # reported values: upper quantile, upper tail, P(y <= spec), in the response's unit
    rec = recommend(model, objective="quantile", spec=5.5, **kw)
    y = rec.draws["recommended"].to_numpy()
    row = rec.summary.loc["recommended"]
    assert rec.objective_value == pytest.approx(np.quantile(y, 0.9))
    assert row["cvar"] == pytest.approx(np.sort(y)[-200:].mean())
    assert rec.prob_spec == pytest.approx((y <= 5.5).mean())
    assert "minimise the 90th percentile of impurity" in rec.to_frame().attrs["objective"]
    # regret is measured towards the minimum: the recipe (a ~ 0.5) has more than the mean-optimum
    mean_rec = recommend(model, objective="mean", **kw)
    assert mean_rec.expected_regret <= mean_rec.summary.loc["recipe", "expected_regret"]
    ax = plot_recommendation(rec)
    assert "minimise" in ax.get_title() and "q90" in ax.get_legend().get_texts()[0].get_text()


def test_group_labels_are_checked_against_training():
    space = toy_space(2)
    model = ToyModel(space, vertex=TOY_VERTEX).fit(toy_table(space))
    with pytest.raises(ValueError, match=r"known labels of 'site': \['A', 'B'\]"):
        recommend(model, group={"site": "C"}, **FAST)
    with pytest.raises(ValueError, match=r"the model's group columns are \['site'\]"):
        recommend(model, group={"plant": "X"}, **FAST)
    with pytest.raises(ValueError, match=r"known labels of 'site'"):
        design_space(model, 45.0, group={"site": "C"}, resolution=3, map_resolution=3)
    rec = recommend(model, group={"site": "C"}, kind="new_group", random_seed=0, **FAST)
    assert rec.kind == "new_group" and rec.group == {"site": "C"}
    assert recommend(model, group={"site": "B"}, random_seed=0, **FAST).kind == "existing"


@pytest.mark.parametrize(
    ("k", "fixed", "n_maps"), [(1, None, 1), (2, None, 1), (3, None, 3), (3, {"time": 40.0}, 1)]
)
def test_design_space_slices_every_pair_of_free_factors(k, fixed, n_maps):
    space = toy_space(k, direction="minimise", fixed=fixed)
    model = ToyModel(space, vertex=TOY_VERTEX, vertex_sd=0.0, noise_sd=1.0)
    model.fit(toy_table(space))
    mid = space.lower + 0.5 * (space.upper - space.lower)
    centre = dict(zip(space.factor_names, mid, strict=True))
    ds = design_space(
        model, 52.0, 0.8, group={"site": "A"}, resolution=4, map_resolution=5,
        center=centre, n_draws=300, random_seed=0,
    )  # fmt: skip
    free = [f for f in space.factor_names if f not in (fixed or {})]
    assert len(ds.grid) == 4 ** len(free)
    assert len(ds.maps) == n_maps
    expected = list(itertools.combinations(free, 2)) if len(free) > 1 else [(free[0],)]
    assert list(ds.maps) == expected
    for key, frame in ds.maps.items():
        assert len(frame) == 5 ** len(key)
        others = [f for f in space.factor_names if f not in key]
        assert list(ds.slices[key]) == others
        for f in others:
            assert ds.slices[key][f] == pytest.approx(ds.center[f])
        assert frame.attrs["slice"] == ds.slices[key]
    # minimise: P(impurity <= spec) is highest at the grid point nearest the vertex
    idx = [space.factor_names.index(f) for f in free]
    best = ds.grid.loc[ds.grid["prob"].idxmax(), free].to_numpy(float)
    u = (best - space.lower[idx]) / (space.upper - space.lower)[idx]
    np.testing.assert_allclose(u, np.asarray(TOY_VERTEX)[idx], atol=1 / 6 + 1e-9)
    assert ds.par["unit"].tolist() == [space.units[f] for f in space.factor_names]
    fig = plot_design_space(ds)
    panels = [a for a in fig.axes if a.get_visible() and a.get_label() != "<colorbar>"]
    assert fig._suptitle.get_text().startswith("Design space: P(impurity <= 52 mg/L)")
    for ax, key in zip(panels, ds.maps, strict=False):
        for f, value in ds.slices[key].items():
            assert f"{space.label(f)} {value:.4g}" in ax.get_title()
    if len(free) == 1:
        assert panels[0].get_xlabel() == space.axis_label(free[0])
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    hatched = any((~m["supported"].astype(bool)).any() for m in ds.maps.values())
    assert "recommended setpoint" in legend and ("outside the data" in legend) == hatched
    assert fig._suptitle.get_text().endswith("site A")


def test_design_space_default_call_signature_still_works_on_k_space():
    space = toy_space(2)
    model = ToyModel(space, vertex=TOY_VERTEX, noise_sd=1.0).fit(toy_table(space))
    ds = design_space(model, 48.0, 0.8, group={"site": "A"}, resolution=4, map_resolution=4,
                      n_draws=200, random_seed=1)  # fmt: skip
    assert isinstance(ds.plot(), Figure)
    np.testing.assert_allclose(toy_unit(space, ds.center), TOY_VERTEX[:2], atol=0.05)
    assert np.isfinite(ds.par[["low", "high"]].to_numpy()).all()
    assert ds.slices == {("speed", "feed"): {}}


def test_an_empty_design_space_of_a_response_to_minimise_says_to_raise_the_spec():
    space = toy_space(2, direction="minimise")
    model = ToyModel(space, vertex=TOY_VERTEX, noise_sd=1.0).fit(toy_table(space))
    with pytest.warns(EmptyDesignSpaceWarning, match="raise the spec or lower the probability"):
        design_space(  # impurity <= 40 mg/L where its least is 50: met nowhere
            model, 40.0, 0.9, group={"site": "A"}, resolution=3, map_resolution=3, n_draws=100
        )
    maximise = toy_space(2)
    model = ToyModel(maximise, vertex=TOY_VERTEX, noise_sd=1.0).fit(toy_table(maximise))
    with pytest.warns(EmptyDesignSpaceWarning, match="lower the spec or lower the probability"):
        design_space(
            model, 60.0, 0.9, group={"site": "A"}, resolution=3, map_resolution=3, n_draws=100
        )


def test_next_batches_reads_the_space():
    space = toy_space(2, direction="minimise")
    model = ToyModel(space, vertex=TOY_VERTEX, vertex_sd=0.05).fit(toy_table(space))
    cand = pd.DataFrame({"speed": [220.0, 480.0], "feed": [3.6, 1.2]})
    ranked = next_batches(model, cand, 2, group={"site": "A"}, n_draws=300, random_seed=0)
    assert list(ranked.columns[:3]) == ["rank", "speed", "feed"]
    assert ranked.attrs["units"] == "mg/L" and ranked.attrs["direction"] == "minimise"
    assert (ranked["expected_regret_reduction"] >= -1e-9).all()
    # the risk of each experiment: near the vertex (the minimum) a batch is safe and better
    # than the recipe; far up the bowl's side it is neither
    by_speed = ranked.set_index("speed")
    assert by_speed.loc[220.0, "p_safe"] > 0.9 and by_speed.loc[220.0, "p_better_than_recipe"] > 0.9
    assert by_speed.loc[480.0, "p_safe"] < 0.5 and by_speed.loc[480.0, "p_better_than_recipe"] < 0.1


def test_grid_resolution_keeps_many_factor_grids_small():
    from bayesbio.recommend.design_space import (
        MAX_GRID_POINTS,
        MAX_OUTER_BOXES,
        grid_resolution,
    )

    assert grid_resolution(9, 4) == 9  # the default space keeps its grid
    for d in range(1, 13):
        r = grid_resolution(9, d)
        assert 2 <= r <= 9
        if r > 2:
            assert r**d <= MAX_GRID_POINTS
            assert (r * (r + 1) // 2) ** max(d - 2, 0) <= MAX_OUTER_BOXES


# -- per-group support and safe improvement (issue 13) -------------------------------------------
def two_group_table(n=30, seed=0):
    """Group A ran at low mixing time (u ~ 0.15), group B at high (u ~ 0.85); else alike."""
    rng = np.random.default_rng(seed)
    u = np.clip(0.5 + 0.12 * rng.standard_normal((2 * n, 4)), 0.0, 1.0)
    u[:n, 0] = np.clip(0.15 + 0.04 * rng.standard_normal(n), 0.0, 1.0)
    u[n:, 0] = np.clip(0.85 + 0.04 * rng.standard_normal(n), 0.0, 1.0)
    table = pd.DataFrame(unit_to_domain(u), columns=list(PARAMS))
    table.insert(0, "site", ["A"] * n + ["B"] * n)
    table.insert(0, "batch_id", [f"B{i:03d}" for i in range(2 * n)])
    table["yield"] = 5.0
    return table


def test_setpoint_near_another_groups_data_is_flagged_under_group_support():
    table = two_group_table()
    # the optimum sits where only group B ran (mixing time u = 0.85)
    model = KnownPosterior(table, vertex=(0.85, 0.5, 0.5, 0.5), vertex_sd=[0.005] * 4)
    kw = {"group": {"site": "A"}, "random_seed": 1, **FAST}
    with pytest.warns(ExtrapolationWarning, match="factor 'mixing_time' = .* SDs above"):
        free = recommend(model, constraints={"guard": False}, **kw)
    assert unit(free.setpoint)[0] == pytest.approx(0.85, abs=0.03)
    assert free.support_distance["group"] > free.support_distance["limit"]
    assert free.support_distance["overall"] < free.support_distance["limit"]  # pooled: "fine"
    assert not free.summary.loc["recommended", "within_support"]
    # pooled support (the old default) lets it through without a word
    pooled = recommend(model, constraints={"support": "overall"}, **kw)
    assert unit(pooled.setpoint)[0] == pytest.approx(0.85, abs=0.03)
    assert pooled.support_used == "overall" and not pooled.warnings
    # the default keeps group A near its own evidence
    rec = recommend(model, **kw)
    assert rec.support_used == "group (own batches)"
    assert rec.support_distance["group"] <= rec.support_distance["limit"] + 1e-9
    assert unit(rec.setpoint)[0] < 0.5
    assert rec.decision == "improve" and not rec.warnings


def test_demo_2000l_at_short_mixing_time_is_outside_its_groups_support():
    from bayesbio.recommend.support import Support
    from bayesbio.simulate import simulate_batches

    table = simulate_batches(120, random_seed=2024).table
    big = (table["scale"] == "2000L").to_numpy()
    labels = table[["scale", "site"]].astype(str).agg("/".join, axis=1).to_numpy()
    points = table[list(PARAMS)].to_numpy(float)
    support = Support(points, labels, big & (table["site"] == "A").to_numpy(), SPACE)
    x = np.median(points[big], axis=0)
    x[0] = 10.0  # 10 s mixing time, where only 2 L batches ran
    limit = np.sqrt(stats.chi2.ppf(0.99, 4))
    assert support.distance(x[None], "overall")[0] < limit
    assert support.distance(x[None], "group")[0] > 2 * limit
    assert support.factor_offsets(x[None], "group")[0][0] == "mixing_time"


class SpreadingSlope(KnownPosterior):
    """Mean yield 6 + beta_s * (u_mix - 0.15), beta ~ N(0, 1): SD grows away from u_mix = 0.15."""

    def __init__(self, table):
        super().__init__(table, curvature=(0, 0, 0, 0), noise_sd=0.1)
        self.beta = np.random.default_rng(2).standard_normal(len(self.top))

    def _mean(self, X, idx):
        u = (X["mixing_time"].to_numpy(dtype=float) - LO[0]) / WIDTH[0]
        return 6.0 + self.beta[idx][:, None] * (u[None, :] - 0.15)


def test_model_based_support_grows_where_the_model_extrapolates():
    model = SpreadingSlope(two_group_table())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundWarning)  # flat in the other factors: any bound
        rec = recommend(
            model, group={"site": "A"}, objective="mean", min_confidence=None, random_seed=0, **FAST
        )
    # SD of the group's mean at its data ~ 0.03 (|u - 0.15| ~ 0.04 * 0.8); the limit is 2x that
    assert rec.support_distance["sd_ratio"] <= 2.0 + 1e-9
    assert abs(unit(rec.setpoint)[0] - 0.15) < 0.12
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundWarning)  # the mean slope may end on a bound
        ratio = recommend(
            model,
            group={"site": "A"},
            objective="mean",
            min_confidence=None,
            constraints={"support": "overall", "max_sd_ratio": 50.0},
            random_seed=0,
            **FAST,
        )
    assert ratio.support_distance["sd_ratio"] > 5.0  # far from group A's mixing times


def test_design_space_holds_to_the_model_based_support_as_recommend_does():
    """A grid point where the group's mean is far less certain than at its data is not
    supported, even within the distance limit (as recommend() holds its setpoints)."""
    model = SpreadingSlope(two_group_table())
    kw = {"group": {"site": "A"}, "resolution": 9, "map_resolution": 5, "n_draws": 300}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundWarning)
        ds = design_space(model, 5.5, 0.8, constraints={"support": "overall"}, random_seed=0, **kw)
        wide = design_space(
            model,
            5.5,
            0.8,
            constraints={"support": "overall", "max_sd_ratio": None},
            random_seed=0,
            **kw,
        )
    grid = ds.grid
    near = grid["distance"] <= ds.settings["max_distance"]
    np.testing.assert_array_equal(grid["supported"], near & (grid["sd_ratio"] <= 2.0))
    assert (near & (grid["sd_ratio"] > 2.0)).any()  # distance alone would accept these
    assert not grid.loc[grid["sd_ratio"] > 2.0, "inside"].any()
    # with the model-based measure off, the distance alone decides
    np.testing.assert_array_equal(
        wide.grid["supported"], wide.grid["distance"] <= ds.settings["max_distance"]
    )
    assert wide.grid["inside"].sum() > grid["inside"].sum()


def test_safe_improvement_keeps_the_recipe_when_the_posterior_cannot_separate(table):
    model = SlopeModel(table)  # which pH end is better is a coin flip
    rec = recommend(model, group={"site": "A"}, objective="mean", random_seed=0, **FAST)
    assert rec.decision == "recipe"
    pd.testing.assert_series_equal(
        rec.setpoint.rename(None), rec.recipe.rename(None), check_exact=False, atol=1e-9
    )
    assert 0.3 < rec.p_better_than_recipe < 0.9
    assert rec.reason.startswith("kept the recipe") and "0.9" in rec.reason
    assert rec.candidate is not None
    nxt = rec.next_experiments
    assert isinstance(nxt, pd.DataFrame) and len(nxt) == 3
    # the most informative experiments are near the pH ends
    assert (np.abs(unit(nxt.iloc[0]) - 0.5)[2]) > 0.25
    assert not rec.warnings
    # without the test the search goes to the end the posterior mean happens to favour
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundWarning)  # flat in the other factors: any bound
        bold = recommend(
            model, group={"site": "A"}, objective="mean", min_confidence=None, random_seed=0, **FAST
        )
    assert bold.decision == "improve" and bold.next_experiments is None
    assert any("factor 'ph' is on the" in w for w in bold.warnings)


def test_safe_improvement_reports_probability_and_gain_from_common_draws(table):
    vertex = np.array([0.3, 0.6, 0.45, 0.7])
    model = KnownPosterior(table, vertex=vertex, vertex_sd=[0.02] * 4, top_sd=0.5)
    recipe_u = np.array([0.5, 0.5, 0.5, 0.5])
    recipe = dict(zip(PARAMS, unit_to_domain(recipe_u), strict=True))
    rec = recommend(model, group={"site": "A"}, recipe=recipe, random_seed=3, **FAST)
    assert rec.decision == "improve"
    np.testing.assert_allclose(unit(rec.recipe), recipe_u)
    # the level is uncertain (SD 0.5) but shared by both points: the difference is not
    assert rec.p_better_than_recipe == 1.0
    exact = float(((recipe_u - vertex) ** 2 * np.array([4.0, 8.0, 8.0, 4.0])).sum())
    assert rec.expected_gain == pytest.approx(exact, rel=0.1)
    row = rec.summary.loc["recipe"]
    assert rec.expected_gain_pct == pytest.approx(100 * exact / row["expected_yield"], rel=0.1)
    assert rec.summary.loc["recommended", "p_better_than_recipe"] == 1.0
    assert "beats the recipe with probability 1.00" in rec.reason
    with pytest.raises(ValueError, match=r"recipe\['ph'\] = 99"):
        recommend(model, group={"site": "A"}, recipe={"ph": 99.0})
    with pytest.raises(ValueError, match="min_confidence must be a probability"):
        recommend(model, group={"site": "A"}, min_confidence=1.5)


def test_safe_search_takes_the_best_setpoint_it_is_sure_of(table):
    # the optimum's location is uncertain along temperature; near the recipe it is certain
    # vertex ~ N(0.9, 0.25): a step d from 0.5 helps iff vertex > 0.5 + d / 2, P = 0.95 at d = 0
    model = KnownPosterior(table, vertex=(0.5, 0.9, 0.5, 0.5), vertex_sd=(0.0, 0.25, 0.0, 0.0))
    recipe = dict(zip(PARAMS, unit_to_domain([0.5, 0.5, 0.5, 0.5]), strict=True))
    kw = {"group": {"site": "A"}, "objective": "mean", "recipe": recipe, "random_seed": 2}
    bold = recommend(model, min_confidence=None, **kw, **FAST)
    safe = recommend(model, **kw, **FAST)
    assert safe.decision == "improve"
    assert safe.p_better_than_recipe >= 0.9 > bold.p_better_than_recipe
    assert unit(bold.setpoint)[1] == pytest.approx(0.9, abs=0.05)
    # P(vertex > 0.5 + d / 2) >= 0.9 holds up to d ~ 0.18
    assert 0.55 < unit(safe.setpoint)[1] < 0.7


class ConjugateQuadratic:
    """Bayesian quadratic regression with a flat prior: a cheap, exact protocol model.

    Features ``1, z_j, z_j^2, z_j z_k`` of the factors standardised to [-1, 1]; posterior
    ``sigma^2 ~ (n - p) s^2 / chi2(n - p)``, ``beta | sigma ~ N(beta_hat, sigma^2 (X'X)^-1)``
    (a pool of draws made once in ``fit``); no group effects.
    """

    def __init__(self, space=None, *, n_pool=4000, seed=0):
        self.space = space
        self.n_pool = n_pool
        self.seed = seed

    def _features(self, X):
        z = self.space_.standardise(X[list(self.space_.factor_names)])
        cols = [np.ones(len(z)), *z.T, *(z**2).T]
        cols += [z[:, i] * z[:, j] for i, j in itertools.combinations(range(z.shape[1]), 2)]
        return np.column_stack(cols)

    def fit(self, X, y=None):
        self.space_ = SPACE if self.space is None else self.space
        self.training_table_ = X.copy()
        F = self._features(X)
        yv = X[self.space_.response.name].to_numpy(float)
        n, p = F.shape
        beta_hat, *_ = np.linalg.lstsq(F, yv, rcond=None)
        s2 = float(((yv - F @ beta_hat) ** 2).sum() / max(n - p, 1))
        rng = np.random.default_rng(self.seed)
        self.sigma_ = np.sqrt(max(n - p, 1) * s2 / rng.chisquare(max(n - p, 1), self.n_pool))
        chol = np.linalg.cholesky(np.linalg.inv(F.T @ F) + 1e-12 * np.eye(p))
        zs = rng.standard_normal((self.n_pool, p))
        self.beta_ = beta_hat + self.sigma_[:, None] * zs @ chol.T
        return self

    def predict_draws(self, X, *, n_draws=1000, noise=True, kind="existing", random_seed=None):
        rng = np.random.default_rng(random_seed)
        idx = rng.integers(self.n_pool, size=n_draws)
        mu = self.beta_[idx] @ self._features(X).T
        if noise:
            mu = mu + self.sigma_[idx][:, None] * rng.standard_normal(mu.shape)
        return mu

    def predict(self, X):
        return self._features(X) @ self.beta_.mean(axis=0)


def test_flat_posterior_on_a_quadratic_truth_lands_on_the_vertex():
    space = toy_space(2)
    rng = np.random.default_rng(4)
    table = toy_table(space, n=60, seed=4)
    u = (table[list(space.factor_names)].to_numpy() - space.lower) / (space.upper - space.lower)
    vertex = np.array([0.35, 0.6])
    truth = 50.0 - 20.0 * ((u - vertex) ** 2).sum(axis=1)
    table["titer"] = truth + 0.3 * rng.standard_normal(len(table))
    model = ConjugateQuadratic(space).fit(table)
    rec = recommend(model, group={"site": "A"}, objective="mean", random_seed=0, **FAST)
    assert rec.decision == "improve" and rec.p_better_than_recipe >= 0.9
    np.testing.assert_allclose(toy_unit(space, rec.setpoint), vertex, atol=0.05)


def _routine_with_one_far_batch(seed=0):
    """Two groups of batches near their recipes (SD 1 % of range) plus one far batch in A."""
    rng = np.random.default_rng(seed)
    recipe_a, recipe_b = np.full(4, 0.3), np.full(4, 0.6)
    a = recipe_a + rng.normal(0, 0.01, (8, 4))
    b = recipe_b + rng.normal(0, 0.01, (8, 4))
    far = np.array([[0.95, 0.3, 0.3, 0.3]])  # one exploratory run at a long mixing time
    u = np.vstack([a, far, b])
    labels = np.array(["A"] * 9 + ["B"] * 8)
    return unit_to_domain(u), labels


def test_group_support_measures_a_narrow_group_in_its_own_spread():
    """A 2,000 L vessel runs 90-110 rpm, a 50 L one 140-200 rpm: 150 rpm is far for the first."""
    from bayesbio.recommend.support import _SPREAD_PRIOR_BATCHES, Support

    rng = np.random.default_rng(4)
    n = 16
    narrow = np.column_stack([rng.normal(0.5, 0.02, n), rng.normal(0.3, 0.02, n)])
    wide = np.column_stack([rng.normal(0.5, 0.02, n), rng.normal(0.6, 0.15, n)])
    u = np.vstack([np.column_stack([narrow, np.full((n, 2), 0.5)]),
                   np.column_stack([wide, np.full((n, 2), 0.5)])])  # fmt: skip
    u[:, 2:] += rng.normal(0.0, 0.02, (2 * n, 2))
    points = unit_to_domain(u)
    labels = np.array(["2000L"] * n + ["50L"] * n)
    big = Support(points, labels, labels == "2000L", SPACE)
    small = Support(points, labels, labels == "50L", SPACE)
    sd_big, sd_small = np.sqrt(np.diag(big.cov_group)), np.sqrt(np.diag(small.cov_group))
    # the second factor: each group's metric leans to its own spread (pooled counts as 4)
    own = 1.4826 * np.median(np.abs(u[:n, 1] - np.median(u[:n, 1])))
    assert own < 0.03 and sd_big[1] < 0.75 * sd_small[1]
    pooled_var = (sd_big[1] ** 2 * (n + _SPREAD_PRIOR_BATCHES) - n * own**2) / _SPREAD_PRIOR_BATCHES
    assert own**2 < sd_big[1] ** 2 < pooled_var
    # a step of 0.3 of the range in that factor from the narrow group's recipe: outside its
    # support, while the same step is routine for the wide group
    limit = np.sqrt(stats.chi2.ppf(0.99, 4))
    step = unit_to_domain(np.array([[0.5, 0.6, 0.5, 0.5]]))
    assert big.distance(step, "group")[0] > limit
    assert small.distance(unit_to_domain(np.array([[0.5, 0.9, 0.5, 0.5]])), "group")[0] < limit
    # the first factor, run alike in both groups, keeps a similar SD in both metrics
    assert sd_big[0] == pytest.approx(sd_small[0], rel=0.35)


def test_group_support_is_robust_to_one_far_batch_and_covers_its_neighbourhood():
    from bayesbio.recommend.support import Support

    points, labels = _routine_with_one_far_batch()
    support = Support(points, labels, labels == "A", SPACE)
    limit = np.sqrt(stats.chi2.ppf(0.99, 4))
    # the centre is the group's median setpoint, not dragged towards the far batch
    assert support.centre_group[0] == pytest.approx(0.3, abs=0.02)
    halfway = unit_to_domain(np.array([[0.62, 0.3, 0.3, 0.3]]))
    assert support.distance(halfway, "group")[0] > 3 * limit  # no group-A batch ran there
    # the classical covariance of the group (the far batch inflates it) would call it close
    z = support._scale(points[labels == "A"])
    classical = np.cov(z, rowvar=False) + 1e-4 * np.eye(4)
    d = support._scale(halfway)[0] - z.mean(axis=0)
    assert np.sqrt(d @ np.linalg.solve(classical, d)) < limit
    # next to the far batch itself the group has evidence: supported
    beside = unit_to_domain(np.array([[0.94, 0.31, 0.3, 0.3]]))
    assert support.distance(beside, "group")[0] < limit
    # the routine spread is the within-group one (about 1 % of the range per factor)
    assert np.all(np.sqrt(np.diag(support.cov_group)) < 0.03)
    assert support.used("group") == "group (own batches)"
