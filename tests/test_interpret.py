import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from sklearn.base import BaseEstimator, RegressorMixin

from bayesbio import interpret, schema
from bayesbio.models import ForestYield, LassoYield
from bayesbio.space import Factor, ProcessSpace, Response

SPACE = ProcessSpace.default()
PARAMS = SPACE.factor_names
BOUNDS = SPACE.bounds

CENTRE = {"mixing_time": 40.0, "temperature": 36.0, "ph": 7.1, "dissolved_oxygen": 50.0}
WIDTH = {"mixing_time": 55.0, "temperature": 4.5, "ph": 0.45, "dissolved_oxygen": 35.0}
SITE = {"A": 0.0, "B": 1.0}


def surface(t):
    out = 10.0 - sum(((t[p] - CENTRE[p]) / WIDTH[p]) ** 2 for p in PARAMS)
    if "site" in t:
        out = out + t["site"].map(SITE).fillna(0.0)
    return np.asarray(out, dtype=float)


class KnownSurface(RegressorMixin, BaseEstimator):
    """A fitted-by-construction model whose optimum is known exactly."""

    def fit(self, X, y=None):
        self.training_table_ = schema.validate(X)
        self.groups_ = ["site"]
        return self

    def predict(self, X):
        return surface(X)


def make_table(n=150, seed=0, truth=surface, noise=0.1, groups=True):
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({p: rng.uniform(*BOUNDS[p], n) for p in PARAMS})
    if groups:
        table["site"] = rng.choice(list(SITE), n)
    table["yield"] = truth(table) + rng.normal(0, noise, n)
    return table


@pytest.fixture(scope="module")
def known():
    return KnownSurface().fit(make_table())


def test_argmax_setpoint_recovers_a_known_optimum(known):
    best = interpret.argmax_setpoint(known, group={"site": "B"}, random_seed=0)
    assert list(best.index) == [*PARAMS, "yield"]
    for p in PARAMS:
        assert best[p] == pytest.approx(CENTRE[p], abs=0.02 * WIDTH[p])
    assert best["yield"] == pytest.approx(11.0, abs=1e-3)
    assert best.attrs["group"] == {"site": "B"}


def test_argmax_setpoint_respects_fixed_values_and_bounds(known):
    best = interpret.argmax_setpoint(
        known, bounds={"temperature": (30.0, 34.0)}, fixed={"ph": 6.8}, random_seed=1
    )
    assert best["temperature"] == pytest.approx(34.0, abs=0.01)
    assert best["ph"] == 6.8
    for p in PARAMS:
        lo, hi = (30.0, 34.0) if p == "temperature" else BOUNDS[p]
        assert lo <= best[p] <= hi


def test_argmax_setpoint_errors_name_bad_arguments(known):
    with pytest.raises(ValueError, match="'plant'"):
        interpret.argmax_setpoint(known, group={"plant": "X"})
    with pytest.raises(ValueError, match="bounds\\['ph'\\]"):
        interpret.argmax_setpoint(known, bounds={"ph": (7.5, 7.0)})
    with pytest.raises(ValueError, match=r"fixed.*'acidity'"):
        interpret.argmax_setpoint(known, fixed={"acidity": 7.0})
    # a factor's label names it as well as its name
    by_label = interpret.argmax_setpoint(known, group={"site": "A"}, fixed={"pH": 7.0})
    assert by_label["ph"] == 7.0
    with pytest.raises(ValueError, match="tolerance"):
        interpret.optimal_range(known, tolerance=1.5)


def test_optimal_range_matches_the_analytic_band(known):
    rng_ = interpret.optimal_range(known, group={"site": "A"}, tolerance=0.05, random_seed=0)
    assert rng_.attrs["max_yield"] == pytest.approx(10.0, abs=1e-3)
    for p in PARAMS:
        half = WIDTH[p] * np.sqrt(0.5)  # 10 - z^2 >= 9.5
        lo = max(CENTRE[p] - half, BOUNDS[p][0])
        hi = min(CENTRE[p] + half, BOUNDS[p][1])
        step = (BOUNDS[p][1] - BOUNDS[p][0]) / 40
        assert lo - 1e-9 <= rng_.loc[p, "low"] <= lo + step
        assert hi - step <= rng_.loc[p, "high"] <= hi + 1e-9
        assert rng_.loc[p, "joint_low"] <= rng_.loc[p, "low"]
        assert rng_.loc[p, "joint_high"] >= rng_.loc[p, "high"]
        assert rng_.loc[p, "low"] <= rng_.loc[p, "optimum"] <= rng_.loc[p, "high"]


def test_lasso_argmax_close_to_true_optimum():
    table = make_table(n=200, groups=False)
    model = LassoYield(n_bootstrap=0, random_state=0).fit(table)
    best = interpret.argmax_setpoint(model, random_seed=0)
    true_best = float(surface(pd.DataFrame([CENTRE]))[0])
    at_best = float(surface(best.to_frame().T)[0])
    assert (true_best - at_best) / true_best < 0.01


def test_lasso_coefficients_in_domain_units_reproduce_predictions():
    table = make_table(n=120, groups=False)
    model = LassoYield(n_bootstrap=0, random_state=0).fit(table)
    coef = interpret.lasso_coefficients(model)
    assert coef.loc["temperature", "unit"] == "g/L per degC"
    assert coef.loc["ph^2", "unit"] == "g/L per (pH unit)²"
    X = table[list(PARAMS)].head(20)
    raw = np.full(len(X), coef.loc["intercept", "coef_domain"])
    for term, value in coef["coef_domain"].drop("intercept").items():
        factors = term.replace("^2", f"*{term[:-2]}").split("*")
        raw = raw + value * np.prod([X[f].to_numpy() for f in factors], axis=0)
    np.testing.assert_allclose(raw, model.predict(X), rtol=1e-8)
    # standardised coefficients are per SD
    scale = model.features_.scaler_.scale_["temperature"]
    assert coef.loc["temperature^2", "coef_domain"] * scale**2 == pytest.approx(
        coef.loc["temperature^2", "coef_std"]
    )


def test_parameter_effects_of_linear_lasso_are_its_coefficients():
    linear = lambda t: 5 + 0.4 * (t["temperature"] - 35) - 0.01 * t["mixing_time"]  # noqa: E731
    table = make_table(n=100, truth=linear, groups=False, noise=0.05)
    model = LassoYield(quadratic=False, interactions=False, n_bootstrap=0, random_state=0)
    model.fit(table)
    eff = interpret.parameter_effects(model)
    coef = interpret.lasso_coefficients(model)
    for p in PARAMS:
        assert eff.loc[p, "slope_per_unit"] == pytest.approx(coef.loc[p, "coef_domain"], abs=1e-6)
        assert eff.loc[p, "effect_1sd"] == pytest.approx(coef.loc[p, "coef_std"], abs=1e-6)
    assert eff.loc["temperature", "slope_per_unit"] == pytest.approx(0.4, abs=0.03)


def test_permutation_importance_ranks_the_parameter_that_matters():
    only_temp = lambda t: 5 + 0.5 * (t["temperature"] - 35)  # noqa: E731
    table = make_table(n=80, truth=only_temp, groups=False, noise=0.1)
    imp = interpret.permutation_importance(
        {"lasso": LassoYield(n_bootstrap=0)}, table, n_splits=3, n_repeats=3, random_seed=0
    )
    assert set(imp.columns) == {"model", "fold", "feature", "importance", "sd"}
    mean = imp.groupby("feature")["importance"].mean()
    assert mean.idxmax() == "temperature"
    assert mean["temperature"] > 1.0
    assert abs(mean["mixing_time"]) < 0.05


def test_partial_dependence_of_linear_model_is_a_straight_line():
    linear = lambda t: 5 + 0.4 * (t["temperature"] - 35)  # noqa: E731
    table = make_table(n=80, truth=linear, groups=True, noise=0.05)
    model = LassoYield(quadratic=False, interactions=False, n_bootstrap=0, random_state=0)
    model.fit(table)
    pdp = interpret.partial_dependence(model, parameters=["temperature"], ice_rows=5, random_seed=0)
    avg = pdp[pdp["kind"] == "average"]
    slope = np.polyfit(avg["value"], avg["yield"], 1)[0]
    assert slope == pytest.approx(0.4, abs=0.03)
    assert pdp.loc[pdp["kind"] == "individual", "line"].nunique() == 5
    with pytest.raises(ValueError, match="'pH'"):
        interpret.partial_dependence(model, parameters=["pH"])


def test_influence_side_by_side_table_and_figure():
    table = make_table(n=60)
    models = {"lasso": LassoYield(n_bootstrap=0), "forest": ForestYield(n_estimators=40)}
    res = interpret.influence(
        models, table, n_splits=3, n_repeats=2, grid_resolution=8, random_seed=0
    )
    assert list(res.table.index) == list(PARAMS)
    assert ("permutation", "forest") in res.table.columns
    assert ("effect_1sd", "lasso") in res.table.columns
    assert set(res.coefficients) == {"lasso"}
    assert isinstance(interpret.plot_influence(res), Figure)


def test_linear_vs_nonlinear_detects_a_nonlinear_truth():
    step = lambda t: 5 + 2.0 * ((t["temperature"] > 34.5) & (t["ph"] > 7.05))  # noqa: E731
    table = make_table(n=150, truth=step, groups=False, noise=0.2)
    models = {
        "LASSO (linear)": LassoYield(quadratic=False, interactions=False, n_bootstrap=0),
        "Random Forest": ForestYield(n_estimators=100),
    }
    res = interpret.linear_vs_nonlinear(table, models=models, random_seed=0)
    assert list(res.table.index) == list(models)
    assert res.table.loc["Random Forest", "rmse_diff_vs_linear"] < 0
    assert "'Random Forest'" in res.text and "clearly better than" in res.text
    with pytest.raises(ValueError, match="linear"):
        interpret.linear_vs_nonlinear(table, models=models, linear="OLS")


# -- any process space -------------------------------------------------------------------------
def impurity_space(k=3, fixed=None):
    specs = [
        ("speed", "rpm", (100.0, 500.0), (0.0, 2000.0)),
        ("feed", "mL/h", (1.0, 5.0), (0.0, 20.0)),
        ("time", "h", (24.0, 72.0), (0.0, 200.0)),
    ][:k]
    factors = tuple(Factor(n, u, op, lim, fixed=(fixed or {}).get(n)) for n, u, op, lim in specs)
    response = Response("impurity", "mg/L", (0.0, 1000.0), "minimise")
    return ProcessSpace(factors, response, groups=("site",), batch_id="run")


VERTEX = {"speed": 220.0, "feed": 3.6, "time": 45.6}


class ImpuritySurface(RegressorMixin, BaseEstimator):
    """Impurity ``2 + sum((x - vertex) / half-width)^2`` (+1 at site B): minimum at VERTEX."""

    def __init__(self, space=None):
        self.space = space

    def fit(self, X, y=None):
        self.space_ = self.space
        self.training_table_ = X.copy()
        self.groups_ = ["site"]
        return self

    def predict(self, X):
        s = self.space_
        z = (X[list(s.factor_names)].to_numpy(float) - [VERTEX[f] for f in s.factor_names]) / (
            s.half_width
        )
        return 2.0 + (z**2).sum(axis=1) + np.where(X["site"].to_numpy() == "B", 1.0, 0.0)


def impurity_model(k=3, fixed=None, n=60):
    space = impurity_space(k, fixed)
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        space.lower + rng.uniform(size=(n, k)) * (space.upper - space.lower),
        columns=space.factor_names,
    )
    table["site"] = rng.choice(["A", "B"], n)
    table["impurity"] = 3.0
    return ImpuritySurface(space).fit(table)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_argmax_setpoint_minimises_an_impurity_in_a_k_factor_space(k):
    model = impurity_model(k)
    best = interpret.argmax_setpoint(model, group={"site": "B"}, random_seed=0)
    names = list(model.space_.factor_names)
    assert list(best.index) == [*names, "impurity"]
    for f in names:
        assert best[f] == pytest.approx(VERTEX[f], abs=0.01 * model.space_.factor(f).half_width)
    assert best["impurity"] == pytest.approx(3.0, abs=1e-3)
    assert best.attrs["direction"] == "minimise"
    assert best.attrs["group"] == {"site": "B"}


def test_argmax_setpoint_respects_space_fixed_factor_bounds_and_group_labels():
    model = impurity_model(3, fixed={"time": 30.0})
    best = interpret.argmax_setpoint(model, bounds={"speed": (300.0, 400.0)}, random_seed=0)
    assert best["time"] == 30.0
    assert best["speed"] == pytest.approx(300.0, abs=0.5)
    assert best["feed"] == pytest.approx(VERTEX["feed"], abs=0.05)
    best = interpret.argmax_setpoint(model, fixed={"time": 60.0}, random_seed=0)
    assert best["time"] == 60.0
    with pytest.raises(ValueError, match=r"known labels of 'site': \['A', 'B'\]"):
        interpret.argmax_setpoint(model, group={"site": "C"})
    with pytest.raises(ValueError, match=r"factors are \['speed', 'feed', 'time'\]"):
        interpret.argmax_setpoint(model, fixed={"ph": 7.0})
    with pytest.raises(ValueError, match=r"bounds\['speed'\].*physical limits"):
        interpret.argmax_setpoint(model, bounds={"speed": (-5.0, 300.0)})


def test_optimal_range_of_a_minimised_response():
    model = impurity_model(2)
    rng_ = interpret.optimal_range(model, group={"site": "A"}, tolerance=0.25, random_seed=0)
    assert rng_.attrs["best"] == pytest.approx(2.0, abs=1e-3)
    assert rng_.attrs["threshold"] == pytest.approx(2.5, abs=1e-3)  # 2 * (1 + 0.25)
    for f in ("speed", "feed"):
        half = model.space_.factor(f).half_width * np.sqrt(0.5)  # 2 + z^2 <= 2.5
        step = 2 * model.space_.factor(f).half_width / 40
        lo, hi = model.space_.bounds[f]
        assert rng_.loc[f, "low"] == pytest.approx(max(VERTEX[f] - half, lo), abs=step)
        assert rng_.loc[f, "high"] == pytest.approx(min(VERTEX[f] + half, hi), abs=step)
        assert rng_.loc[f, "unit"] == model.space_.units[f]


def test_effects_and_partial_dependence_read_the_space():
    model = impurity_model(3)
    eff = interpret.parameter_effects(model, group={"site": "A"})
    assert list(eff.index) == ["speed", "feed", "time"]
    assert eff.loc["speed", "unit"] == "mg/L per rpm"
    pdp = interpret.partial_dependence(
        model, parameters=["feed"], ice_rows=3, grid_resolution=5, random_seed=0
    )
    assert "impurity" in pdp.columns and set(pdp["parameter"]) == {"feed"}
    with pytest.raises(ValueError, match=r"\['speed', 'feed', 'time'\]"):
        interpret.partial_dependence(model, parameters=["temperature"])


def test_influence_on_a_two_factor_space():
    space = impurity_space(2)
    rng = np.random.default_rng(0)
    n = 60
    table = pd.DataFrame(
        space.lower + rng.uniform(size=(n, 2)) * (space.upper - space.lower),
        columns=space.factor_names,
    )
    table["site"] = rng.choice(["A", "B"], n)
    table["impurity"] = 3 + 0.01 * (table["speed"] - 300) + rng.normal(0, 0.1, n)
    models = {"lasso": LassoYield(n_bootstrap=0), "forest": ForestYield(n_estimators=20)}
    res = interpret.influence(
        models, table, n_splits=3, n_repeats=2, grid_resolution=5, random_seed=0, space=space
    )
    assert list(res.table.index) == ["speed", "feed"]
    assert res.table[("rank", "lasso")]["speed"] == 1
    assert res.coefficients["lasso"].loc["speed", "unit"] == "mg/L per rpm"
    fig = interpret.plot_influence(res)
    labels = [ax.get_xlabel() for ax in fig.axes]
    assert "Speed [rpm]" in labels and "Feed [mL/h]" in labels
