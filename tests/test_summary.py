import pandas as pd
import pytest
from fakes import Parabola

from bayesbio.space import Response
from bayesbio.summary import (
    RISKS,
    compare_to_recipe,
    diagnostics_failed,
    main_risk,
    setpoint_text,
    worth_a_batch,
)


@pytest.fixture
def model(space_k2, table_k2):
    return Parabola(space_k2, table_k2)


def test_p_better_counts_ties_as_zero_like_recommend(model):
    # recommend()'s p_better_than_recipe is the share of draws with a strict gain: the recipe
    # itself is never "better than the recipe"
    x = {"temperature": 30.0, "agitation": 200.0}
    found = compare_to_recipe(model, x, x, {"site": "North"}, n_draws=500, random_seed=1)
    assert found["p_better"] == 0.0
    assert found["expected_gain"] == 0.0
    # one call, both setpoints on the same draws, mean response only
    assert model.calls == [(2, False, "existing")]


def test_p_better_follows_the_known_posterior(model):
    recipe = pd.Series({"temperature": 28.0, "agitation": 200.0})
    # nearer the vertex (31 +- 0.5) than the recipe under almost every draw
    near = compare_to_recipe(
        model,
        {"temperature": 31.0, "agitation": 200.0},
        recipe,
        {"site": "North"},
        random_seed=0,
    )
    assert near["p_better"] > 0.99 and near["expected_gain"] > 1.0
    # T = 34 vs T = 28: better exactly when the vertex is above 31, about half the draws
    mirror = compare_to_recipe(
        model, {"temperature": 34.0, "agitation": 200.0}, recipe, {"site": "North"}, n_draws=4000
    )
    assert 0.4 < mirror["p_better"] < 0.6
    # agitation adds 0.001 g/L per rpm under every draw: certain, tiny gain
    up = compare_to_recipe(
        model, {"temperature": 28.0, "agitation": 250.0}, recipe, {"site": "North"}
    )
    assert up["p_better"] == 1.0 and up["expected_gain"] == pytest.approx(0.05)
    for found in (near, mirror, up):
        assert 0.0 <= found["p_better"] <= 1.0


def test_p_better_turns_around_for_a_response_to_minimise(space_k2, table_k2):
    space = space_k2.with_changes(
        response=Response("titer", "g/L", (0.0, 50.0), "minimise", "Impurity")
    )
    model = Parabola(space, table_k2)
    recipe = {"temperature": 31.0, "agitation": 300.0}
    worse_for_max = {"temperature": 28.0, "agitation": 200.0}
    found = compare_to_recipe(model, worse_for_max, recipe, {"site": "North"})
    assert found["p_better"] > 0.99 and found["expected_gain"] > 0


def test_compare_to_recipe_names_a_missing_factor(model):
    with pytest.raises(ValueError, match=r"recipe lacks factor.*agitation"):
        compare_to_recipe(
            model, {"temperature": 30, "agitation": 200}, {"temperature": 30}, {"site": "North"}
        )


def test_diagnostics_in_plain_words():
    assert diagnostics_failed(None) == []
    ok = {"max_r_hat": 1.004, "min_ess_bulk": 800, "min_ess_tail": 700, "divergences": 0}
    assert diagnostics_failed(ok) == []
    bad = {
        "quadratic": {"max_r_hat": 1.057, "min_ess_bulk": 59, "divergences": 0},
        "spline": {"max_r_hat": 1.02, "min_ess_tail": 300, "divergences": 3},
    }
    found = diagnostics_failed(bad)
    assert found == [
        "R-hat 1.057 (needs <= 1.01)",
        "effective sample size 59 (needs >= 400)",
        "3 divergent transition(s) (needs 0)",
    ]


def test_main_risk_is_the_most_serious_that_applies():
    assert main_risk(within_support=False, diagnostics_ok=False, p_better=0.1) == "extrapolation"
    assert main_risk(within_support=True, diagnostics_ok=False, p_better=0.1) == (
        "failed diagnostics"
    )
    assert main_risk(within_support=True, diagnostics_ok=True, p_better=0.6) == "low P(better)"
    assert main_risk(within_support=True, diagnostics_ok=True, p_better=float("nan")) == (
        "low P(better)"
    )
    assert main_risk(within_support=True, diagnostics_ok=True, p_better=0.95) == "none"
    assert RISKS[-1] == "none"


def test_setpoint_text_has_labels_and_units(space_k2):
    text = setpoint_text(space_k2, {"temperature": 30.123456, "agitation": 150})
    assert text == "Temperature 30.12 °C, Agitation 150 rpm"


def test_summary_says_keep_the_recipe_when_recommend_falls_back(model, table_k2):
    from bayesbio.recommend import recommend
    from bayesbio.summary import study_summary

    # the recipe (the group's median setpoint) is near the uncertain vertex: no setpoint
    # beats it with P >= 0.9, so recommend() keeps it
    group = {"site": str(table_k2["site"].iloc[0])}
    recipe = {"temperature": 31.0, "agitation": 300.0}
    rec = recommend(model, group=group, recipe=recipe, random_seed=0, min_confidence=0.999)
    assert rec.decision == "recipe"
    table = study_summary(model, [(group, rec)])
    row = table.iloc[0]
    assert row["run"].startswith("keep the recipe: ")
    assert row["main_risk"] in ("no confident improvement", "failed diagnostics", "extrapolation")
    assert "no confident improvement" in RISKS


def test_a_candidate_is_worth_a_batch_only_when_informative_and_safe():
    ranked = pd.DataFrame(
        {
            "expected_regret_reduction": [0.30, 0.20, 0.001, 0.05],
            "expected_yield": [0.35, 6.0, 6.1, 5.9],
            # the most informative candidate is a near-certain failed batch
            "p_safe": [0.0075, 0.95, 0.99, 0.90],
        }
    )
    assert worth_a_batch(ranked, reference=6.0).tolist() == [False, True, False, True]
    # without a reference each candidate's own response sets the 0.5 %
    assert worth_a_batch(ranked.drop(columns="p_safe")).tolist() == [True, True, False, True]
