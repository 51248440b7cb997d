import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from bayesbio import schema
from bayesbio.models import ForestYield, LassoYield
from bayesbio.models._tables import SpaceMismatchError
from bayesbio.models.baselines import KINDS
from bayesbio.space import Factor, ProcessSpace, Response

SITE_SHIFT = {"A": 0.0, "B": 0.5, "C": -0.5}
DEFAULT = ProcessSpace.default()
PARAMETERS = list(DEFAULT.factor_names)


def make_table(n, truth, seed=0, noise=0.2, groups=True):
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({p: rng.uniform(*DEFAULT.bounds[p], n) for p in PARAMETERS})
    mean = truth(table)
    if groups:
        table["site"] = rng.choice(list(SITE_SHIFT), n)
        mean = mean + table["site"].map(SITE_SHIFT).to_numpy()
    table["yield"] = mean + rng.normal(0.0, noise, n)
    return table


def linear_truth(t):
    return 5.0 + 0.3 * (t["temperature"] - 35.0) - 2.0 * (t["ph"] - 7.0)


def nonlinear_truth(t):
    # sharp, non-additive: a step in temperature that only exists at high pH
    return (
        5.0
        + 2.0 * ((t["temperature"] > 34.5) & (t["ph"] > 7.05))
        - 1.5 * (t["dissolved_oxygen"] < 25)
    )


# Every scikit-learn check passes for both models (array inputs use the numeric fallback:
# 4 columns = the 4 parameters, other widths = generic features). Checks sklearn itself skips:
# check_array_api_input (SCIPY_ARRAY_API not set). None are expected to fail.
@parametrize_with_checks(
    [LassoYield(n_bootstrap=5, random_state=0), ForestYield(n_estimators=20, random_state=0)],
    expected_failed_checks=lambda est: {},
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_lasso_recovers_known_linear_truth_in_domain_units():
    from bayesbio.interpret import lasso_coefficients

    table = make_table(200, linear_truth, noise=0.05, groups=False)
    model = LassoYield(
        quadratic=False, interactions=False, groups=(), n_bootstrap=0, random_state=1
    ).fit(table)
    coef = lasso_coefficients(model)["coef_domain"]
    assert coef["temperature"] == pytest.approx(0.3, abs=0.02)
    assert coef["ph"] == pytest.approx(-2.0, abs=0.1)
    assert abs(coef["mixing_time"]) < 0.003
    assert abs(coef["dissolved_oxygen"]) < 0.003
    assert model.sigma_ == pytest.approx(0.05, rel=0.3)


def test_forest_beats_lasso_on_strongly_nonlinear_truth():
    train = make_table(200, nonlinear_truth, seed=1)
    test = make_table(300, nonlinear_truth, seed=2)
    err = {}
    for name, model in {
        "lasso": LassoYield(n_bootstrap=0, random_state=0),
        "forest": ForestYield(n_estimators=150, random_state=0),
    }.items():
        model.fit(train)
        err[name] = np.sqrt(np.mean((model.predict(test) - test["yield"]) ** 2))
    assert err["forest"] < 0.8 * err["lasso"]


@pytest.mark.parametrize("model", [ForestYield(random_state=0), LassoYield(random_state=0)])
def test_interval_coverage_is_close_to_nominal_on_new_batches(model):
    train = make_table(200, linear_truth, seed=3, noise=0.3)
    test = make_table(1000, linear_truth, seed=4, noise=0.3)
    model.fit(train)
    for prob, lo, hi in ((0.9, 0.84, 0.96), (0.5, 0.40, 0.62)):
        iv = model.predict_interval(test, ci_prob=prob)
        inside = ((iv["lower"] <= test["yield"]) & (test["yield"] <= iv["upper"])).mean()
        assert lo <= inside <= hi, (prob, inside)
    draws = model.predict_draws(test, n_draws=400, random_seed=1)
    inside = (
        (np.quantile(draws, 0.05, 0) <= test["yield"])
        & (test["yield"] <= np.quantile(draws, 0.95, 0))
    ).mean()
    assert 0.84 <= inside <= 0.96


@pytest.mark.parametrize("cls", [LassoYield, ForestYield])
def test_protocol_shapes_seeds_and_indexing(cls):
    table = make_table(60, linear_truth)
    model = cls(random_state=0).fit(table)
    assert model.fit(table) is model
    assert model.groups_ == ["site"]
    pd.testing.assert_frame_equal(model.training_table_, schema.validate(table))
    new = table.drop(columns="yield").iloc[5:15]
    new.index = new.index + 100
    iv = model.predict_interval(new, ci_prob=0.9)
    assert list(iv.columns) == ["mean", "lower", "upper"]
    assert iv.index.equals(new.index)
    np.testing.assert_allclose(iv["mean"], model.predict(new))
    assert (iv["lower"] < iv["mean"]).all() and (iv["mean"] < iv["upper"]).all()
    narrow = model.predict_interval(new, ci_prob=0.5)
    assert (narrow["upper"] - narrow["lower"] < iv["upper"] - iv["lower"]).all()
    d1 = model.predict_draws(new, n_draws=50, random_seed=7)
    d2 = model.predict_draws(new, n_draws=50, random_seed=7)
    assert d1.shape == (50, 10)
    np.testing.assert_array_equal(d1, d2)
    quiet = model.predict_draws(new, n_draws=400, noise=False, random_seed=7)
    loud = model.predict_draws(new, n_draws=400, noise=True, random_seed=7)
    assert quiet.std(0).mean() < loud.std(0).mean()
    assert json.loads(json.dumps(model.get_params()))  # recipe is JSON-able (no pickle)


@pytest.mark.parametrize("cls", [LassoYield, ForestYield])
def test_group_kinds(cls):
    table = make_table(60, linear_truth)
    model = cls(random_state=0).fit(table)
    new = table.drop(columns="yield").head(3).assign(site=["A", "Z", "B"])
    known = r"label\(s\) \['Z'\] not seen in training; known labels of 'site': \['A', 'B', 'C'\]"
    with pytest.raises(ValueError, match=r"group column 'site': " + known):
        model.predict_draws(new, n_draws=5)
    for call in (model.predict, model.predict_interval):  # no silent reference-level fallback
        with pytest.raises(ValueError, match=known + r".*kind='new_group'"):
            call(new)
    np.testing.assert_allclose(
        model.predict(new, kind="new_group"), model.predict_interval(new, kind="new_group")["mean"]
    )
    with pytest.raises(ValueError, match="kind"):
        model.predict_interval(new, kind="new_site")
    fallback = model.predict_interval(new, kind="new_group")
    assert np.isfinite(fallback.to_numpy()).all()
    population = model.predict_draws(new, n_draws=5, kind="population", random_seed=0)
    # population ignores the group: same setpoint, same draws whatever the site
    same = new.assign(site="A")
    np.testing.assert_allclose(
        population, model.predict_draws(same, n_draws=5, kind="population", random_seed=0)
    )
    assert set(KINDS) == {"existing", "new_group", "population"}


@pytest.mark.parametrize("cls", [LassoYield, ForestYield])
def test_errors_name_bad_arguments(cls):
    table = make_table(40, linear_truth)
    with pytest.raises(schema.SchemaError, match="'yield'"):
        cls().fit(table.drop(columns="yield"))
    with pytest.raises(schema.SchemaError, match="'ph'"):
        cls().fit(table.drop(columns="ph"))
    model = cls(random_state=0).fit(table)
    with pytest.raises(schema.SchemaError, match="'site'"):
        model.predict(table.drop(columns="site"))
    for bad in (0.0, 1.0, 1.5, "0.9"):
        with pytest.raises(ValueError, match="ci_prob"):
            model.predict_interval(table, ci_prob=bad)
    with pytest.raises(ValueError, match="n_draws"):
        model.predict_draws(table, n_draws=0)
    with pytest.raises(ValueError, match="y"):
        cls().fit(table[PARAMETERS].to_numpy())


def test_explicit_y_and_groups_argument():
    table = make_table(50, linear_truth)
    y = table["yield"].to_numpy() + 1.0
    model = LassoYield(groups=(), random_state=0).fit(table.drop(columns="yield"), y)
    assert model.groups_ == []
    np.testing.assert_allclose(model.training_table_["yield"], y)
    assert not any("site" in c for c in model.coef_.index)
    with pytest.raises(schema.SchemaError, match="campaign"):
        LassoYield(groups=["campaign"]).fit(table)


def test_plain_array_with_four_columns_is_read_as_the_parameters():
    table = make_table(50, linear_truth, groups=False)
    X = table[PARAMETERS].to_numpy()
    model = ForestYield(n_estimators=30, random_state=0).fit(X, table["yield"].to_numpy())
    assert model.parameters_ == PARAMETERS
    assert model.predict_interval(X[:3]).shape == (3, 3)


SPACE3 = ProcessSpace(
    (
        Factor("temperature", "degC", (30.0, 37.0), (4.0, 50.0), short="T"),
        Factor("feed_rate", "mL/h", (1.0, 5.0), (0.0, 20.0), short="feed"),
        Factor("agitation", "rpm", (100.0, 300.0), (0.0, 1000.0), short="rpm"),
    ),
    Response("titer", "g/L", (0.0, 50.0)),
    groups=("reactor",),
    batch_id="run",
    name="three-factor test process",
)


def make_table3(n, seed=0):
    """Batches of SPACE3 from a known quadratic (z = standardised factors)."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(-1, 1, (n, 3))
    table = pd.DataFrame(SPACE3.unstandardise(z), columns=list(SPACE3.factor_names))
    table.insert(0, "run", [f"R{i:03d}" for i in range(n)])
    table["reactor"] = np.array(["R1", "R2"])[np.arange(n) % 2]
    shift = np.where(table["reactor"] == "R1", -0.2, 0.2)
    mean = 3.0 + 0.8 * z[:, 0] - 0.5 * z[:, 1] ** 2 + 0.3 * z[:, 1] * z[:, 2] + shift
    table["titer"] = mean + rng.normal(0, 0.1, n)
    return table


@pytest.mark.parametrize("cls", [LassoYield, ForestYield])
def test_baselines_on_a_three_factor_space(cls):
    table = make_table3(80)
    model = cls(space=SPACE3, random_state=0).fit(table)
    assert model.space_ is SPACE3 and model.get_params()["space"] is SPACE3
    assert model.parameters_ == ["temperature", "feed_rate", "agitation"]
    assert model.groups_ == ["reactor"] and model.n_features_in_ == 4
    pd.testing.assert_frame_equal(model.training_table_, schema.validate(table, space=SPACE3))
    new = make_table3(12, seed=1).drop(columns="titer")
    draws = model.predict_draws(new, n_draws=40, random_seed=0)
    assert draws.shape == (40, 12)
    iv = model.predict_interval(new, ci_prob=0.9)
    assert list(iv.columns) == ["mean", "lower", "upper"] and iv.index.equals(new.index)
    rmse = np.sqrt(
        np.mean((model.predict(make_table3(200, seed=2)) - make_table3(200, 2)["titer"]) ** 2)
    )
    assert rmse < 0.4
    with pytest.raises(ValueError, match=r"known labels of 'reactor': \['R1', 'R2'\]"):
        model.predict(new.assign(reactor="R9"))
    # a table of the default process is refused, naming the missing factors
    with pytest.raises(SpaceMismatchError, match=r"\['feed_rate', 'agitation'\]"):
        model.predict(make_table(10, linear_truth))
    with pytest.raises(schema.SchemaError, match="missing factor column"):
        cls(random_state=0).fit(make_table(30, linear_truth)).predict_draws(new)


def test_importing_baselines_does_not_import_pymc():
    code = "import sys, bayesbio.models; assert 'pymc' not in sys.modules, 'pymc imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_baseline_fitted_on_an_array_predicts_from_a_batch_table_or_says_what_it_needs():
    from bayesbio.models.baselines import ForestYield
    from bayesbio.simulate import simulate_batches
    from bayesbio.space import ProcessSpace

    table = simulate_batches(30, defects=False, random_seed=1).table
    factors = list(ProcessSpace.default().factor_names)
    model = ForestYield(random_state=0).fit(table[factors].to_numpy(), table["yield"].to_numpy())
    # the batch table's factor columns (the fitted array's order), not its ids and labels
    np.testing.assert_allclose(model.predict(table), model.predict(table[factors].to_numpy()))
    with pytest.raises(TypeError, match=r"fitted on a numeric array of 4 column\(s\).*'batch_id'"):
        model.predict(table.drop(columns="ph"))
