import itertools
import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression

from bayesbio import evaluate, schema
from bayesbio.models import ForestYield, LassoYield
from bayesbio.space import Factor, ProcessSpace, Response

DEFAULT = ProcessSpace.default()


def make_table(n=60, seed=0):
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({p: rng.uniform(*DEFAULT.bounds[p], n) for p in DEFAULT.factor_names})
    table.insert(0, "batch_id", [f"B{i:03d}" for i in range(n)])
    table["scale"] = rng.choice(["2L", "200L"], n)
    table["site"] = rng.choice(["A", "B", "C"], n)
    table["campaign"] = rng.choice(["C1", "C2", "C3"], n)
    table["yield"] = (
        5.0
        + 0.3 * (table["temperature"] - 35)
        - 0.02 * (table["dissolved_oxygen"] - 45) ** 2 / 10
        + table["site"].map({"A": 0.0, "B": 0.4, "C": -0.4})
        + rng.normal(0, 0.2, n)
    )
    return table


MODELS = {
    "lasso": LassoYield(n_bootstrap=20),
    "forest": ForestYield(n_estimators=60),
}


@pytest.fixture(scope="module")
def comparison():
    return evaluate.compare(
        MODELS, make_table(), cv=["kfold", "group", "split"], n_repeats=2, random_seed=1
    )


def test_metrics_match_hand_computed_values():
    y = [1.0, 2.0, 3.0, 4.0]
    pred = [1.0, 2.0, 4.0, 2.0]
    assert evaluate.rmse(y, pred) == pytest.approx(math.sqrt(5 / 4))
    assert evaluate.mae(y, pred) == pytest.approx(0.75)
    assert evaluate.r2(y, pred) == pytest.approx(0.0)  # SS_res = SS_tot = 5
    assert evaluate.r2(y, y) == 1.0
    assert math.isnan(evaluate.r2([1.0], [2.0]))
    assert evaluate.coverage(y, [0, 2.5, 2, 5], [1, 3, 3, 6]) == pytest.approx(0.5)
    assert evaluate.interval_width([0, 1], [1, 4]) == pytest.approx(2.0)
    # fair CRPS: mean|X - y| - sum|Xi - Xj| / (2 m (m - 1)) = 1 - 8/12
    draws = np.array([[0.0], [1.0], [2.0]])
    assert evaluate.crps([0.0], draws) == pytest.approx(1 - 8 / 12)
    with pytest.raises(ValueError, match="shape"):
        evaluate.crps([0.0, 1.0], draws)


def test_every_model_sees_identical_folds(comparison):
    pred = comparison.predictions
    folds = comparison.folds
    for (scheme, fold), sub in pred.groupby(["scheme", "fold"]):
        mask = (folds["scheme"] == scheme) & (folds["fold"] == fold) & (folds["role"] == "test")
        expected = np.sort(folds.loc[mask, "row"])
        rows = {m: np.sort(g["row"].to_numpy()) for m, g in sub.groupby("model")}
        assert set(rows) == set(MODELS)
        for r in rows.values():
            np.testing.assert_array_equal(r, expected)


def test_kfold_tests_each_batch_once_per_repeat(comparison):
    f = comparison.folds.query("scheme == 'kfold' and role == 'test'")
    counts = f.groupby(["repeat", "row"]).size()
    assert (counts == 1).all()
    assert f.groupby("repeat")["row"].nunique().eq(60).all()


def test_group_folds_never_leak_a_group():
    table = make_table()
    folds = evaluate.make_folds(table, "group", group_column="site")
    assert len(folds) == 3
    for f in folds:
        train = set(table["site"].iloc[f.train])
        test = set(table["site"].iloc[f.test])
        assert len(test) == 1 and not (train & test)
        assert len(f.train) + len(f.test) == len(table)


def test_learning_curve_shares_the_held_out_set_and_grows():
    table = make_table(n=100)
    folds = evaluate.make_folds(table, "learning_curve", n_repeats=2, random_seed=0)
    assert [len(f.train) for f in folds if f.repeat == 0] == [10, 20, 40]
    for r in (0, 1):
        fs = [f for f in folds if f.repeat == r]
        for a, b in itertools.pairwise(fs):
            np.testing.assert_array_equal(a.test, b.test)
            assert set(a.train) <= set(b.train)
            assert not set(b.train) & set(b.test)
    with pytest.raises(ValueError, match="train_sizes"):
        evaluate.make_folds(table, "learning_curve", train_sizes=[10, 500])


def test_scores_are_tidy_and_probabilistic_metrics_present(comparison):
    s = comparison.scores
    assert list(s.columns) == ["model", "scheme", "fold", "train_size", "metric", "value"]
    metrics = set(s["metric"])
    assert {*evaluate.POINT_METRICS, *evaluate.PROBABILISTIC_METRICS} <= metrics
    cov = s[s["metric"] == "coverage_90"]["value"]
    assert 0.6 <= cov.mean() <= 1.0
    summ = comparison.summary
    row = summ.query("model == 'lasso' and scheme == 'kfold' and metric == 'rmse'").iloc[0]
    vals = s.query("model == 'lasso' and scheme == 'kfold' and metric == 'rmse'")["value"]
    assert row["n_folds"] == 10
    assert row["mean"] == pytest.approx(vals.mean())
    assert row["se"] == pytest.approx(vals.std(ddof=1) / np.sqrt(10))
    wide = comparison.table("kfold")
    assert set(wide.index) == set(MODELS) and "crps" in wide.columns
    p = comparison.predictions
    assert {"observed", "predicted", "lower_90", "upper_90", "batch_id", "ph"} <= set(p.columns)
    # group folds hold out a whole site: predicted as a new group
    assert set(p.loc[p["scheme"] == "group", "kind"]) == {"new_group"}


def test_same_seed_same_scores():
    table = make_table(40)
    a = evaluate.compare({"lasso": LassoYield(n_bootstrap=5)}, table, random_seed=3)
    b = evaluate.compare({"lasso": LassoYield(n_bootstrap=5)}, table, random_seed=3)
    keep = a.scores["metric"] != "fit_seconds"
    pd.testing.assert_frame_equal(a.scores[keep], b.scores[keep])


def test_plain_sklearn_regressor_gets_point_metrics_only():
    comp = evaluate.compare({"ols": LinearRegression()}, make_table(40), random_seed=0)
    assert set(comp.scores["metric"]) == {"rmse", "mae", "r2", "fit_seconds"}


def test_errors_name_bad_arguments():
    table = make_table(30)
    with pytest.raises(ValueError, match="unknown scheme 'loo'"):
        evaluate.compare(MODELS, table, cv="loo")
    with pytest.raises(ValueError, match="ci_probs"):
        evaluate.compare(MODELS, table, ci_probs=(0.5, 1.2))
    with pytest.raises(schema.SchemaError, match="'temperature'"):
        evaluate.compare(MODELS, table.drop(columns="temperature"))
    with pytest.raises(schema.SchemaError, match="group_column 'plant'"):
        evaluate.make_folds(table, "group", group_column="plant")
    with pytest.raises(TypeError, match="models\\['x'\\]"):
        evaluate.compare({"x": object()}, table)
    with pytest.raises(ValueError, match="n_splits"):
        evaluate.make_folds(table, "kfold", n_splits=1)


def test_convergence_warnings_reach_the_caller():
    table = make_table(30)
    model = {"lasso": LassoYield(max_iter=1, n_bootstrap=0)}
    with pytest.warns(ConvergenceWarning, match=r"^model 'lasso', split fold 'split': "):
        comp = evaluate.compare(model, table, cv="split", random_seed=0)
    assert (comp.warnings["category"] == "ConvergenceWarning").any()


@pytest.mark.slow  # starts joblib worker processes (~10-25 s on a busy machine)
def test_convergence_warnings_reach_the_caller_from_parallel_folds_with_same_scores():
    table = make_table(30)
    model = {"lasso": LassoYield(max_iter=1, n_bootstrap=0)}
    runs = []
    for n_jobs in (None, 2):
        with pytest.warns(ConvergenceWarning):
            runs.append(evaluate.compare(model, table, random_seed=0, n_jobs=n_jobs))
        assert (runs[-1].warnings["category"] == "ConvergenceWarning").any()
    keep = runs[0].scores["metric"] != "fit_seconds"
    pd.testing.assert_frame_equal(runs[0].scores[keep], runs[1].scores[keep])


def test_plots_return_matplotlib_objects(comparison):
    assert isinstance(evaluate.plot_scores(comparison, "rmse"), Axes)
    assert isinstance(evaluate.plot_scores(comparison, "coverage_90", scheme="group"), Axes)
    assert isinstance(evaluate.plot_predicted_vs_observed(comparison), Axes)
    assert isinstance(evaluate.plot_residuals(comparison, model="lasso"), Figure)
    with pytest.raises(ValueError, match="learning_curve"):
        evaluate.plot_learning_curve(comparison)
    lc = evaluate.compare(
        {"lasso": LassoYield(n_bootstrap=0)}, make_table(60), cv="learning_curve", random_seed=0
    )
    assert isinstance(evaluate.plot_learning_curve(lc), Axes)
    with pytest.raises(ValueError, match="metric 'nope'"):
        evaluate.plot_scores(comparison, "nope")


def test_calibration_plot_shows_out_of_fold_coverage_per_nominal_level():
    table = make_table(48, seed=2)
    comp = evaluate.compare(
        {"lasso": LassoYield(n_bootstrap=20)},
        table,
        cv="kfold",
        n_splits=3,
        ci_probs=(0.5, 0.8, 0.95),
        random_seed=3,
    )
    ax = evaluate.plot_calibration(comp)
    line = next(ln for ln in ax.get_lines() if ln.get_label() == "lasso")
    assert list(line.get_xdata()) == [50, 80, 95]
    p = comp.predictions
    inside = (p["observed"] >= p["lower_80"]) & (p["observed"] <= p["upper_80"])
    assert line.get_ydata()[1] == pytest.approx(100 * inside.mean())
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "calibrated: empirical = nominal" in labels
    assert any(f"({len(p)} held-out batches)" in t for t in labels)
    assert "[%]" in ax.get_xlabel() and "[%]" in ax.get_ylabel()
    plain = evaluate.compare({"ols": LinearRegression()}, table, cv="kfold", random_seed=0)
    with pytest.raises(ValueError, match="no model of this comparison has predictive intervals"):
        evaluate.plot_calibration(plain)


def test_score_and_prediction_plots_explain_their_marks(comparison):
    ax = evaluate.plot_scores(comparison, "coverage_90", scheme="group")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["nominal 0.9", "one fold", "mean +- 1 SE"]
    ax = evaluate.plot_predicted_vs_observed(comparison)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "predicted = observed" in labels and ax.get_xlabel() == "Observed yield [g/L]"


SPACE3 = ProcessSpace(
    (
        Factor("temperature", "degC", (30.0, 37.0), (4.0, 50.0), short="T"),
        Factor("feed_rate", "mL/h", (1.0, 5.0), (0.0, 20.0), short="feed"),
        Factor("agitation", "rpm", (100.0, 300.0), (0.0, 1000.0), short="rpm"),
    ),
    Response("titer", "g/L", (0.0, 50.0)),
    groups=("plant", "reactor"),
    batch_id="run",
    name="three-factor test process",
)


def make_table3(n=48, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.uniform(-1, 1, (n, 3))
    table = pd.DataFrame(SPACE3.unstandardise(z), columns=list(SPACE3.factor_names))
    table.insert(0, "run", [f"R{i:03d}" for i in range(n)])
    table["plant"] = "P1"
    table["reactor"] = np.array(["R1", "R2", "R3"])[np.arange(n) % 3]
    shift = table["reactor"].map({"R1": -0.2, "R2": 0.0, "R3": 0.2}).to_numpy()
    table["titer"] = 3.0 + 0.8 * z[:, 0] - 0.5 * z[:, 1] ** 2 + shift + rng.normal(0, 0.1, n)
    return table


def test_compare_reads_factors_response_and_groups_from_the_space():
    table = make_table3()
    models = {
        "lasso": LassoYield(n_bootstrap=5, space=SPACE3),
        "forest": ForestYield(n_estimators=30),
    }
    comp = evaluate.compare(models, table, cv=["kfold", "group"], random_seed=0)
    assert comp.space is SPACE3
    p = comp.predictions
    assert {"observed", "run", "temperature", "feed_rate", "reactor"} <= set(p.columns)
    assert "mixing_time" not in p.columns
    # the group scheme leaves out each reactor (plant has one level) as a new group
    assert set(comp.folds.loc[comp.folds["scheme"] == "group", "fold"]) == {
        "reactor=R1", "reactor=R2", "reactor=R3"
    }  # fmt: skip
    assert set(p.loc[p["scheme"] == "group", "kind"]) == {"new_group"}
    assert set(p.loc[p["scheme"] == "kfold", "kind"]) == {"existing"}
    assert np.isfinite(comp.scores["value"]).all()
    fig = evaluate.plot_residuals(comp)
    assert [ax.get_xlabel() for ax in fig.axes if ax.get_visible()] == [
        "Temperature [°C]", "Feed rate [mL/h]", "Agitation [rpm]"
    ]  # fmt: skip
    assert evaluate.plot_scores(comp, "rmse").get_ylabel() == "RMSE [g/L]"
    # the space argument works for models built without one
    again = evaluate.compare(
        {"lasso": LassoYield(n_bootstrap=5)}, table, cv="split", random_seed=0, space=SPACE3
    )
    assert set(again.scores["model"]) == {"lasso"}


def test_compare_refuses_models_of_different_spaces():
    with pytest.raises(ValueError, match=r"models \['lasso'\] were built for another process"):
        evaluate.compare({"lasso": LassoYield(space=SPACE3)}, make_table(30), space=DEFAULT)
    with pytest.raises(schema.SchemaError, match="titer"):
        evaluate.compare({"lasso": LassoYield(space=SPACE3)}, make_table(30))


@pytest.mark.slow  # three small MCMC fits (one compile)
def test_bayesian_model_in_leave_one_group_out_folds():
    from bayesbio.models.bayesian import BayesianYieldModel

    model = BayesianYieldModel(
        space=SPACE3, structures=("quadratic",), draws=100, tune=100, chains=2
    )
    with pytest.warns(UserWarning):  # short chains: convergence warnings are passed on
        comp = evaluate.compare({"bayes": model}, make_table3(), cv="group", random_seed=0)
    p = comp.predictions
    assert set(p["kind"]) == {"new_group"} and len(p) == 48
    assert np.isfinite(comp.scores["value"]).all()
