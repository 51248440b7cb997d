"""Harvest decisions from measured runs: run tables, knowledge states, decisions, CLI."""

import logging
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayesbio.cli import app
from bayesbio.harvest import (
    HARVEST,
    RLMR,
    HarvestDataError,
    HarvestParams,
    HarvestSpec,
    HarvestState,
    KnowledgeState,
    harvest_decision,
    knowledge_from_runs,
    read_runs,
    simulate_trajectories,
    summarize_knowledge,
    validate_runs,
)

DATA = Path(__file__).parents[1] / "examples" / "data"
runner = CliRunner()


def run_table(sim: pd.DataFrame, prefix: str = "R") -> pd.DataFrame:
    """A simulated trajectory table in the documented run-table layout."""
    return pd.DataFrame(
        {
            "run_id": [f"{prefix}{b}" for b in sim["batch"]],
            "time": sim["time_h"].to_numpy(),
            "protein": sim["protein"].to_numpy(),
            "impurity": sim["impurity"].to_numpy(),
        }
    )


def mean_path(params: HarvestParams, epochs: int, run_id: str = "NOW") -> pd.DataFrame:
    """A running batch growing at the true mean rates with small seeded wiggles."""
    z = np.random.default_rng(5).normal(0.0, 0.02, size=(epochs, 2))
    phi = np.concatenate([[0.0], params.mu_p + z[:, 0]])
    psi = np.concatenate([[0.0], params.mu_i + z[:, 1]])
    return pd.DataFrame(
        {
            "run_id": run_id,
            "time": 6.0 * np.arange(epochs + 1),
            "protein": np.exp(np.cumsum(phi)),
            "impurity": np.exp(np.cumsum(psi)),
        }
    )


@pytest.fixture(scope="module")
def history():
    return run_table(simulate_trajectories(HarvestParams(), 6, random_seed=1))


# ----------------------------------------------------------------- knowledge state


@pytest.mark.parametrize(
    ("truth", "n_runs", "seed"),
    [
        (dict(mu_p=0.30, sigma_p=0.10, mu_i=0.25, sigma_i=0.15), 8, 11),
        (dict(mu_p=0.20, sigma_p=0.05, mu_i=0.10, sigma_i=0.08, T=24), 3, 12),
    ],
)
def test_knowledge_from_runs_recovers_known_growth_rates(truth, n_runs, seed):
    params = HarvestParams(**truth)
    sim = simulate_trajectories(params, n_runs, random_seed=seed)
    # the runs end at their horizon T epochs: the spec says so (pairs after it are left out)
    spec = HarvestSpec(horizon_hours=params.T * 6.0)
    knowledge = knowledge_from_runs(run_table(sim), spec=spec)
    # the knowledge module's posterior of the same growth rates (logs of ratios: rounding)
    reference = KnowledgeState.from_trajectories(sim)
    for ours, theirs in (
        (knowledge.protein, reference.protein),
        (knowledge.impurity, reference.impurity),
    ):
        assert ours.nu == theirs.nu and ours.lam == theirs.lam
        assert np.allclose([ours.alpha, ours.beta], [theirs.alpha, theirs.beta], rtol=1e-12)
    summary = summarize_knowledge(knowledge, ci_prob=0.94).set_index(["quantity", "parameter"])
    for (quantity, parameter), key in {
        ("protein", "mu"): "mu_p",
        ("protein", "sigma"): "sigma_p",
        ("impurity", "mu"): "mu_i",
        ("impurity", "sigma"): "sigma_i",
    }.items():
        row = summary.loc[(quantity, parameter)]
        assert row["lower"] < truth[key] < row["upper"], (quantity, parameter, row.to_dict())
        assert row["lower"] < row["mean"] < row["upper"]
    assert (summary["n"] == sim["phi"].notna().sum()).all()


def test_summarize_knowledge_intervals_match_draws_from_the_posterior():
    knowledge = KnowledgeState.typical(0.3, 0.1, 0.25, 0.15, n=12)
    summary = summarize_knowledge(knowledge, ci_prob=0.9).set_index(["quantity", "parameter"])
    mu_p, sigma_p, mu_i, sigma_i = knowledge.thompson(np.random.default_rng(0), 200_000)
    for key, draws in {
        ("protein", "mu"): mu_p,
        ("protein", "sigma"): sigma_p,
        ("impurity", "mu"): mu_i,
        ("impurity", "sigma"): sigma_i,
    }.items():
        lower, upper = np.quantile(draws, [0.05, 0.95])
        assert np.allclose(summary.loc[key, ["lower", "upper"]], [lower, upper], rtol=0.01)


def test_summarize_knowledge_interval_narrows_with_more_data():
    params = HarvestParams()
    sim = simulate_trajectories(params, 20, random_seed=3)
    few = knowledge_from_runs(run_table(sim[sim["batch"] < 2]))
    many = knowledge_from_runs(run_table(sim))
    width = [
        (s["upper"] - s["lower"]).to_numpy()
        for s in (summarize_knowledge(few), summarize_knowledge(many))
    ]
    assert (width[1] < width[0]).all()


def test_knowledge_does_not_depend_on_units_or_time_unit(history):
    days = history.assign(
        time=history["time"] / 24.0, protein=history["protein"] * 0.2, impurity=history["impurity"]
    )
    a = knowledge_from_runs(history)
    b = knowledge_from_runs(days, spec=HarvestSpec(time_unit="d", protein_unit="g/L"))
    for x, y in ((a.protein, b.protein), (a.impurity, b.impurity)):
        assert x.nu == y.nu and x.lam == y.lam
        assert math.isclose(x.alpha, y.alpha, rel_tol=1e-12)
        assert math.isclose(x.beta, y.beta, rel_tol=1e-9)


def test_growth_after_the_horizon_is_left_out_and_said_in_the_data_unit(history):
    # six days of measurements in days; the default horizon is 96 h (4 d)
    slow = HarvestParams(T=24, mu_p=0.1, mu_i=0.08)  # reaches no cap before 24 epochs
    long = run_table(simulate_trajectories(slow, 3, random_seed=4))
    days = long.assign(time=long["time"] / 24.0)
    runs = validate_runs(days, spec=HarvestSpec(time_unit="d"))
    assert runs.growth["epoch"].max() == 15  # the pair from epoch 15 to 16 is the last one
    after = runs.excluded[runs.excluded["reason"].str.startswith("after the horizon")]
    assert len(after) == 3 * (24 - 16)
    assert "(4 d (96 h), where harvest is forced)" in after["reason"].iloc[0]
    # declared longer, the same runs count in full
    full = validate_runs(days, spec=HarvestSpec(time_unit="d", horizon_hours=144.0))
    assert full.growth["epoch"].max() == 23 and full.excluded.empty
    text = harvest_decision(
        days,
        mean_path(HarvestParams(), 5).assign(time=lambda t: t["time"] / 24.0),
        spec=HarvestSpec(time_unit="d"),
    ).explain()
    assert "at 1.25 d (30 h)" in text and "forced at 4 d (96 h)" in text


# ----------------------------------------------------------------- decisions


def test_batch_far_past_its_optimum_is_told_to_harvest_now(history):
    params = HarvestParams()
    late = mean_path(params, 13)  # the optimal stop is near epoch 12.6 under the truth
    result = harvest_decision(history, late, random_seed=0)
    assert result.decision == "harvest now" and result.harvest
    assert result.forced is None
    assert result.reward_harvest >= result.reward_continue
    assert result.epoch == 13 and result.time_h == 78.0
    # the growth still ahead: the history's pairs from epoch 12 on (at least 10 of them) and
    # the running batch's pairs from the epoch before
    assert result.growth_from_h == 72.0 and result.n_history_points >= 10
    assert result.n_current_points == 2
    pooled = harvest_decision(history, late, spec=HarvestSpec(growth_window="all"), random_seed=0)
    assert pooled.n_current_points == 13 and pooled.n_history_runs == 6
    assert pooled.growth_from_h == 0.0
    assert pooled.n_history_points == len(validate_runs(history).growth)


def runs_from_rates(phi, psi, n_runs, sd, seed):
    """Runs ``S0..`` every 6 h whose log growth per epoch is ``phi``/``psi`` plus N(0, sd)."""
    rng = np.random.default_rng(seed)
    n = len(phi)
    runs = []
    for r in range(n_runs):
        p = np.r_[0.0, phi + rng.normal(0.0, sd, n)]
        q = np.r_[0.0, psi + rng.normal(0.0, sd, n)]
        runs.append(
            pd.DataFrame(
                {
                    "run_id": f"S{r}",
                    "time": 6.0 * np.arange(n + 1),
                    "protein": np.exp(np.cumsum(p)),
                    "impurity": np.exp(np.cumsum(q)),
                }
            )
        )
    return pd.concat(runs, ignore_index=True)


def test_a_culture_that_slows_before_the_horizon_is_warned_about(history):
    """Logistic-like runs: growth falls with culture time, which one growth law cannot follow."""
    rates = np.linspace(0.6, 0.02, 12)  # log growth per 6 h epoch, falling
    slowing = runs_from_rates(rates, np.full(12, 0.05), 5, 0.02, seed=3)
    now = slowing[slowing["run_id"] == "S0"].iloc[:8].assign(run_id="NOW")
    past = slowing[slowing["run_id"] != "S0"]
    one_law = HarvestSpec(growth_window="ahead")
    with pytest.warns(UserWarning, match=r"The history's protein growth slows with culture time"):
        harvest_decision(past, now, spec=one_law, random_seed=0)
    import warnings

    # a law per epoch (the default) follows the slowing: nothing to warn about
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        harvest_decision(past, now, random_seed=0)
    # the paper's process (one growth law for every epoch): no such warning either
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        harvest_decision(history, mean_path(HarvestParams(), 6), spec=one_law, random_seed=0)


def test_growth_ahead_follows_a_culture_that_stops_growing():
    """Protein stops growing after 36 h while impurity keeps rising: harvest, not continue.

    Pooled over all epochs the protein grows about +18 % per epoch, so one growth law says
    continue; the past runs' growth from the decision's epoch on is nil, and continuing only
    costs (the epoch's cost and 10 % more impurity).
    """
    rates = np.r_[np.full(6, 0.45), np.zeros(10)]
    table = runs_from_rates(rates, np.full(16, 0.10), 7, 0.01, seed=5)
    history, now = table[table["run_id"] != "S0"], table[table["run_id"] == "S0"].iloc[:9]
    ahead = harvest_decision(history, now, spec=HarvestSpec(growth_window="ahead"), random_seed=0)
    assert ahead.harvest and ahead.growth_from_h == 48.0
    assert abs(ahead.knowledge.protein.alpha) < 0.01  # no growth ahead
    with pytest.warns(UserWarning, match="growth_window"):  # the pooled law is told about
        pooled = harvest_decision(history, now, spec=HarvestSpec(growth_window="all"))
    assert not pooled.harvest and pooled.knowledge.protein.alpha > 0.1
    assert "from 48 h on in 6 past run(s)" in ahead.explain()
    by_epoch = harvest_decision(history, now)  # the default: a growth law per epoch ahead
    assert by_epoch.harvest and "each epoch ahead with its own growth law" in by_epoch.explain()
    low, high = by_epoch.reward_continue_range
    assert low <= by_epoch.reward_continue <= high and by_epoch.reward_continue_se > 0


def test_epoch_laws_follow_each_epochs_own_growth_shrunk_towards_the_pooled_law():
    from bayesbio.harvest import epoch_knowledge

    rng = np.random.default_rng(2)
    rows = [
        {"run_id": f"S{r}", "epoch": e, "phi": (0.45 if e < 6 else 0.0) + rng.normal(0, 0.01),
         "psi": 0.1 + rng.normal(0, 0.01)}
        for r in range(6)
        for e in range(16)
    ]  # fmt: skip
    growth = pd.DataFrame(rows)
    pooled = KnowledgeState.from_data(growth["phi"], growth["psi"])
    laws = epoch_knowledge(growth, pooled, 2, 15)
    assert list(laws) == list(range(2, 16))
    mu_pool = pooled.protein.alpha
    # 6 growth rates of the epoch against a prior worth 2 at the pooled mean
    assert laws[2].protein.alpha == pytest.approx((6 * 0.45 + 2 * mu_pool) / 8, abs=0.01)
    assert laws[10].protein.alpha == pytest.approx(2 * mu_pool / 8, abs=0.01)
    assert laws[10].protein.nu == 8 and laws[10].impurity.alpha == pytest.approx(0.1, abs=0.01)
    empty = epoch_knowledge(growth[growth["epoch"] < 12], pooled, 12, 15)
    assert empty[14].protein.alpha == pytest.approx(mu_pool)  # no past run: the pooled law


def test_the_value_of_continuing_comes_with_its_model_risk_and_monte_carlo_error(history):
    now = mean_path(HarvestParams(), 10)
    result = harvest_decision(history, now, random_seed=1)
    low, high = result.reward_continue_range
    assert low < result.reward_continue < high
    assert 0 < result.reward_continue_se < (high - low)
    frame = result.to_frame().set_index("action")
    assert frame.loc["continue", "mc_se"] == result.reward_continue_se
    assert "Over the growth laws the data still allow, continuing is worth" in result.explain()
    # the SE is that of the mean over the draws: more draws, smaller error
    more = harvest_decision(history, now, random_seed=1, n_draws=128)
    assert more.reward_continue_se < result.reward_continue_se
    plug = harvest_decision(history, now, policy="plug-in")
    assert np.isnan(plug.reward_continue_se) and "Over the growth laws" not in plug.explain()


def test_a_close_call_takes_more_draws_before_it_is_made(history):
    # a cost per epoch that brings the two actions within two Monte Carlo errors at 32
    # draws: the draws are doubled (same seed) until they separate, up to 8x
    now = mean_path(HarvestParams(), 10)
    assert harvest_decision(history, now, random_seed=1).n_draws == 32  # a clear call
    spec = HarvestSpec(cost_per_epoch=79.0)
    close = harvest_decision(history, now, spec=spec, random_seed=1)
    assert close.n_draws > 32
    assert abs(close.reward_harvest - close.reward_continue) >= 2 * close.reward_continue_se
    same = harvest_decision(history, now, spec=spec, random_seed=1, n_draws=close.n_draws)
    assert same.reward_continue == close.reward_continue  # the draws it says it used
    tie = harvest_decision(history, now, spec=HarvestSpec(cost_per_epoch=78.0), random_seed=1)
    assert tie.n_draws == 256 and "even at 256 draws: too close to call" in tie.explain()


def test_economics_left_to_their_defaults_are_said(history):
    now = mean_path(HarvestParams(), 10)
    result = harvest_decision(history, now, random_seed=1)
    assert list(result.default_economics()) == [
        "protein_cap",
        "impurity_limit",
        "price",
        "impurity_cost",
    ]
    assert "Not declared in the spec's [economics]" in result.explain()
    declared = HarvestSpec(protein_cap=50.0, impurity_limit=40.0, price=10.0, impurity_cost=2.0)
    same = harvest_decision(history, now, spec=declared, random_seed=1)
    assert same.default_economics() == {} and "Not declared" not in same.explain()
    assert same.reward_continue == result.reward_continue  # the defaults were these values


def test_early_batch_is_told_to_continue(history):
    early = mean_path(HarvestParams(), 2)
    result = harvest_decision(history, early, random_seed=0)
    assert result.decision == "continue"
    assert result.reward_continue > result.reward_harvest + 100
    assert result.p_fail_next < 1e-6


@pytest.mark.parametrize("policy", ["myopic", "plug-in", "plug-in-static"])
def test_other_learning_policies_agree_on_clear_cases(history, policy):
    early = mean_path(HarvestParams(), 2)
    late = mean_path(HarvestParams(), 13)
    assert harvest_decision(history, early, policy=policy).decision == "continue"
    assert harvest_decision(history, late, policy=policy).decision == "harvest now"


def test_common_practice_continues_without_a_value_estimate(history):
    result = harvest_decision(history, mean_path(HarvestParams(), 13), policy="CP")
    assert result.decision == "continue" and math.isnan(result.reward_continue)
    assert "Common practice" in result.explain()


def test_decision_matches_the_rlmr_policy_it_wraps(history):
    now = mean_path(HarvestParams(), 11)
    # one growth law ahead: the decision is RL-MR's on that law ("epochs" looks ahead with a
    # law per epoch instead)
    result = harvest_decision(history, now, spec=HarvestSpec(growth_window="ahead"), random_seed=4)
    state = HarvestState(
        result.epoch, now["protein"].iloc[-1], now["impurity"].iloc[-1], result.knowledge
    )
    action = RLMR(result.params, random_seed=4).decide(state)
    assert result.harvest == (action == HARVEST)
    # the running batch's growth rates in the window update I_0 once each
    assert result.knowledge.protein.nu == result.knowledge_prior.protein.nu + 1
    pooled = harvest_decision(history, now, spec=HarvestSpec(growth_window="all"))
    assert pooled.knowledge.protein.nu == pooled.knowledge_prior.protein.nu + 11


def test_same_seed_same_answer(history):
    now = mean_path(HarvestParams(), 10)
    a = harvest_decision(history, now, random_seed=7)
    b = harvest_decision(history, now, random_seed=7)
    c = harvest_decision(history, now, random_seed=8)
    assert a.reward_continue == b.reward_continue and a.decision == b.decision
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    assert a.reward_continue != c.reward_continue  # the seed does drive the draws


def test_harvest_is_forced_at_the_horizon_and_at_the_cap(history):
    params = HarvestParams(mu_p=0.2, mu_i=0.15)
    at_horizon = harvest_decision(history, mean_path(params, 16))
    assert at_horizon.harvest and "96 h" in at_horizon.forced
    assert math.isnan(at_horizon.reward_continue)
    capped = mean_path(HarvestParams(), 6)
    capped.loc[6, "protein"] = 60.0
    result = harvest_decision(history, capped)
    assert result.harvest and "cap" in result.forced


def test_economics_in_declared_units_scale_with_the_first_measurement(history):
    now = mean_path(HarvestParams(), 9)
    relative = harvest_decision(history, now, random_seed=1)
    scaled = now.assign(protein=now["protein"] * 0.2, impurity=now["impurity"] * 0.05)
    spec = HarvestSpec(
        protein_cap=10.0, impurity_limit=2.0, price=50.0, impurity_cost=40.0, reward_unit="kEUR"
    )
    absolute = harvest_decision(
        history.assign(protein=history["protein"] * 0.2), scaled, spec=spec, random_seed=1
    )
    assert math.isclose(absolute.reward_harvest, relative.reward_harvest, rel_tol=1e-9)
    assert math.isclose(absolute.reward_continue, relative.reward_continue, rel_tol=1e-6)
    assert "kEUR" in absolute.explain() and "10 g/L" in absolute.explain()


def test_to_frame_and_explain_say_what_to_do(history):
    result = harvest_decision(history, mean_path(HarvestParams(), 13), random_seed=0)
    frame = result.to_frame()
    assert list(frame["action"]) == ["harvest now", "continue"]
    assert list(frame["chosen"]) == [True, False]
    assert frame["expected_reward"].iloc[0] == result.reward_harvest
    text = result.explain()
    assert "\n" not in text and "HARVEST NOW" in text and "RL-MR" in text
    assert "78 h" in text and "impurity" in text and "fails the batch" in text


def test_shipped_example_data_give_the_documented_decision():
    spec = HarvestSpec.from_toml(DATA / "harvest_spec.toml")
    history = read_runs(DATA / "harvest_history.csv", spec=spec)
    assert len(history.runs) == 8 and len(history.excluded) == 2  # one lost HCP assay
    result = harvest_decision(history, DATA / "harvest_current.csv", spec=spec, random_seed=2024)
    assert result.run_id == "B-09" and result.time_h == 72.0
    assert result.decision == "harvest now" and result.p_fail_next > 0.5


# ----------------------------------------------------------------- validation


def test_missing_column_is_named(history):
    with pytest.raises(HarvestDataError, match=r"missing column\(s\) 'impurity'.*\[columns\]"):
        validate_runs(history.drop(columns="impurity"))


def test_negative_time_is_named(history):
    bad = history.copy()
    bad.loc[3, "time"] = -6.0
    with pytest.raises(HarvestDataError, match=r"run 'R0', row 3: time -6 h is negative"):
        validate_runs(bad)


def test_times_in_the_wrong_unit_are_named_with_the_declared_unit(history):
    # hours written in a column declared as days: 24x too late, far past the 96 h horizon
    with pytest.raises(
        HarvestDataError, match=r"row 3: time 18 d \(432 h\) is more than three times the"
    ):
        validate_runs(history, spec=HarvestSpec(time_unit="d"))
    with pytest.raises(HarvestDataError, match=r"time_unit = 'd'"):
        harvest_decision(history, mean_path(HarvestParams(), 5), spec=HarvestSpec(time_unit="d"))
    # a running batch measured past the horizon: it should have been harvested already
    late = mean_path(HarvestParams(), 18)  # 108 h, two epochs past the 96 h horizon
    with pytest.raises(HarvestDataError, match=r"measured at 108 h, past the horizon"):
        harvest_decision(history, late)


def test_rows_out_of_time_order_are_sorted_and_repeated_times_named(history):
    swapped = history.copy()
    swapped.loc[[4, 5]] = swapped.loc[[5, 4]].to_numpy()  # as a lab export may list them
    a, b = validate_runs(history), validate_runs(swapped)
    pd.testing.assert_frame_equal(a.growth, b.growth)
    assert b.table.loc[b.table["run_id"] == "R0", "row"].tolist()[3:7] == [3, 5, 4, 6]
    bad = history.copy()
    bad.loc[5, "time"] = bad.loc[4, "time"]
    with pytest.raises(HarvestDataError, match=r"run 'R0', row 5: time 24 h is measured twice"):
        validate_runs(bad)
    # an assay repeat: averaged when the spec says so, the second row listed as left out
    repeat = pd.concat([history.iloc[:5], history.iloc[[4]], history.iloc[5:]], ignore_index=True)
    repeat.loc[5, ["protein", "impurity"]] = repeat.loc[4, ["protein", "impurity"]] * [1.2, 0.8]
    runs = validate_runs(repeat, spec=HarvestSpec(repeats="mean"))
    kept = runs.table.set_index("row").loc[4]
    assert kept["protein"] == pytest.approx(1.1 * history.loc[4, "protein"])
    assert kept["impurity"] == pytest.approx(0.9 * history.loc[4, "impurity"])
    (reason,) = runs.excluded.loc[runs.excluded["row"] == 5, "reason"]
    assert reason.startswith("assay repeat: averaged")
    assert len(runs.growth) == len(validate_runs(history).growth)


def test_a_date_in_the_time_column_asks_for_culture_time(history):
    bad = history.astype({"time": object})
    bad.loc[3, "time"] = "2024-03-01 07:58:00"
    with pytest.raises(HarvestDataError, match=r"row 3: '2024-03-01 07:58:00' is a date; .*since"):
        validate_runs(bad)


def test_samples_wider_apart_than_an_epoch_suggest_the_epoch_length(history):
    daily = history[history["time"] % 24 == 0]  # on the 6 h grid, but never one epoch apart
    with pytest.raises(
        HarvestDataError, match=r"typically 24 h apart: .* declare epoch_hours = 24 in the spec"
    ):
        knowledge_from_runs(daily)


def test_days_read_as_hours_warn_about_the_time_unit(history):
    days = history.assign(time=history["time"] / 24.0 * 4)  # 0, 1, 2, ... : day numbers
    with pytest.warns(UserWarning, match=r"not at a decision epoch .* typically 1 h apart.*'d'"):
        validate_runs(days)
    now = days[days["run_id"] == "R0"].iloc[:8].assign(run_id="NOW")  # last at "7 h"
    past = days[days["run_id"] != "R0"]
    with (
        pytest.warns(UserWarning, match="not at a decision epoch"),
        pytest.raises(HarvestDataError, match=r"check time_unit, declared 'h', and epoch_hours"),
    ):
        harvest_decision(past, now)


@pytest.mark.parametrize("value", [0.0, -0.3])
def test_non_positive_protein_is_named(history, value):
    bad = history.copy()
    bad.loc[2, "protein"] = value
    message = r"column 'protein', run 'R0', row 2: .*not positive"
    with pytest.raises(HarvestDataError, match=message):
        validate_runs(bad)


def test_history_run_with_fewer_than_two_points_is_left_out_and_named(history):
    bad = pd.concat([history, history.iloc[[0]].assign(run_id="LONE")], ignore_index=True)
    runs = validate_runs(bad)
    assert "LONE" not in runs.runs and runs.runs == validate_runs(history).runs
    (reason,) = runs.excluded.loc[runs.excluded["run_id"] == "LONE", "reason"]
    assert reason.startswith("run 'LONE' has 1 usable measurement(s)")
    assert len(runs.table) + len(runs.excluded) == len(bad)  # every row accounted for
    # a running batch that just started is fine with one point, not with none
    assert len(validate_runs(bad[bad["run_id"] == "LONE"], min_points=1).growth) == 0
    empty = bad[bad["run_id"] == "LONE"].assign(protein=np.nan)
    with pytest.raises(HarvestDataError, match=r"run 'LONE' has no usable measurement"):
        validate_runs(empty, min_points=1)


def test_non_numeric_value_is_named(history):
    bad = history.astype({"protein": object})
    bad.loc[1, "protein"] = "n/a"
    with pytest.raises(HarvestDataError, match=r"row 1: 'n/a' is not a number"):
        validate_runs(bad)


def test_errors_are_one_line(history):
    bad = history.copy()
    bad.loc[3, "time"] = -6.0
    with pytest.raises(HarvestDataError) as info:
        validate_runs(bad)
    assert "\n" not in str(info.value)


def test_excluded_rows_are_listed_and_logged_never_dropped_silently(history, caplog):
    table = history.copy()
    table.loc[2, "impurity"] = np.nan  # lost assay
    table.loc[20, "time"] += 2.5  # sampled off the 6 h grid
    with caplog.at_level(logging.INFO, logger="bayesbio.harvest.decision"):
        runs = validate_runs(table)
    reasons = runs.excluded.set_index("row")["reason"]
    assert "no impurity value" in reasons[2]
    assert "not at a decision epoch" in reasons[20]
    assert "not a one-epoch growth rate" in reasons[3]  # the pair bridging the lost row
    assert len(runs.table) == len(table) - 2
    # every row is kept or listed: nothing vanishes
    assert set(runs.table["row"]) | {2, 20} == set(range(len(table)))
    assert sum("excluded" in r.message for r in caplog.records) == len(runs.excluded)


def test_phases_filter_rows_and_say_so(history):
    table = history.assign(phase=np.where(history["time"] < 12, "lag", "production"))
    runs = validate_runs(table, spec=HarvestSpec(phases=("production",)))
    assert (runs.table["time_h"] >= 12).all()
    assert runs.excluded["reason"].str.contains("phase").sum() == (history["time"] < 12).sum()
    with pytest.raises(HarvestDataError, match="no phase column"):
        validate_runs(history, spec=HarvestSpec(phases=("production",)))


def test_running_batch_checks(history):
    now = mean_path(HarvestParams(), 5)
    two = pd.concat([now, now.assign(run_id="OTHER")], ignore_index=True)
    with pytest.raises(HarvestDataError, match="holds 2 runs"):
        harvest_decision(history, two)
    with pytest.raises(HarvestDataError, match="also appears in the history"):
        harvest_decision(history, history[history["run_id"] == "R2"])
    off = now.copy()
    off.loc[5, "time"] = 32.0
    with pytest.raises(HarvestDataError, match=r"latest measurement \(row 5\) was left out"):
        harvest_decision(history, off)
    failed = now.copy()
    failed.loc[5, "impurity"] = 45.0
    with pytest.raises(HarvestDataError, match=r"above the limit 40: .* has failed"):
        harvest_decision(history, failed)
    with pytest.raises(ValueError, match="needs the true growth-rate laws"):
        harvest_decision(history, now, policy="PI-MDP")
    with pytest.raises(ValueError, match="policy must be one of"):
        harvest_decision(history, now, policy="greedy")


def test_history_with_too_few_growth_rates_is_named():
    tiny = pd.DataFrame(
        {"run_id": ["A", "A"], "time": [0.0, 6.0], "protein": [1.0, 1.3], "impurity": [1, 1.2]}
    )
    with pytest.raises(HarvestDataError, match=r"1 pair\(s\) of measurements .* add runs"):
        knowledge_from_runs(tiny)


def test_spec_reads_toml_and_rejects_typos(tmp_path):
    spec = HarvestSpec.from_toml(DATA / "harvest_spec.toml")
    assert spec.protein == "Titer (g/L)" and spec.reward_unit == "kEUR" and spec.T == 16
    assert HarvestSpec.from_dict(spec.to_dict()) == spec
    bad = tmp_path / "bad.toml"
    bad.write_text('time_unit = "h"\n[columns]\nrunid = "Batch"\n')
    with pytest.raises(HarvestDataError, match=r"unknown key\(s\) \['runid'\] in \[columns\]"):
        HarvestSpec.from_toml(bad)
    bad.write_text('time_unit = "weeks"\n')
    with pytest.raises(HarvestDataError, match="time_unit must be one of"):
        HarvestSpec.from_toml(bad)
    with pytest.raises(HarvestDataError, match="whole number of epochs"):
        HarvestSpec(horizon_hours=100.0)
    with pytest.raises(HarvestDataError, match="not found"):
        HarvestSpec.from_toml(tmp_path / "missing.toml")


# ----------------------------------------------------------------- CLI


def _write_lab_files(tmp_path, history):
    spec = tmp_path / "harvest.toml"
    spec.write_text(
        '[columns]\nrun_id = "Batch"\ntime = "Time (h)"\nprotein = "Titer"\nimpurity = "HCP"\n'
    )
    names = {"run_id": "Batch", "time": "Time (h)", "protein": "Titer", "impurity": "HCP"}
    history.rename(columns=names).to_csv(tmp_path / "runs.csv", index=False)
    mean_path(HarvestParams(), 13).rename(columns=names).to_csv(
        tmp_path / "current.csv", index=False
    )
    return spec


def test_cli_harvest_decision_round_trip(tmp_path, history):
    spec = _write_lab_files(tmp_path, history)
    args = ["harvest-decision", "--history", str(tmp_path / "runs.csv")]
    args += ["--now", str(tmp_path / "current.csv"), "--spec", str(spec), "--seed", "3"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "HARVEST NOW under the RL-MR policy" in result.output
    written = pd.read_csv(tmp_path / "out" / "harvest_decision.csv")
    api = harvest_decision(
        read_runs(tmp_path / "runs.csv", spec=spec),
        read_runs(tmp_path / "current.csv", spec=spec, min_points=1),
        spec=spec,
        random_seed=3,
    )
    assert np.allclose(written["expected_reward"], api.to_frame()["expected_reward"])
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and again.output.splitlines()[0] == result.output.splitlines()[0]
    more = runner.invoke(app, [*args, "--n-draws", "64", "--out", str(tmp_path / "more")])
    assert more.exit_code == 0, more.output
    api64 = harvest_decision(
        read_runs(tmp_path / "runs.csv", spec=spec),
        read_runs(tmp_path / "current.csv", spec=spec, min_points=1),
        spec=spec,
        random_seed=3,
        n_draws=64,
    )
    written = pd.read_csv(tmp_path / "more" / "harvest_decision.csv")
    assert np.allclose(written["expected_reward"], api64.to_frame()["expected_reward"])


def test_cli_harvest_decision_reads_the_named_sheets_of_a_workbook(tmp_path, history):
    spec = _write_lab_files(tmp_path, history)
    runs = pd.read_csv(tmp_path / "runs.csv")
    book = tmp_path / "lab.xlsx"
    with pd.ExcelWriter(book) as writer:  # a summary sheet with more numbers comes first
        pd.DataFrame({"Batch": range(400), "Final titer": range(400)}).to_excel(
            writer, sheet_name="Summary", index=False
        )
        runs.to_excel(writer, sheet_name="TimeCourse", index=False)
        pd.read_csv(tmp_path / "current.csv").to_excel(writer, sheet_name="Now", index=False)
    base = ["harvest-decision", "--history", str(book), "--now", str(book)]
    base += ["--spec", str(spec), "--seed", "3"]
    wrong = runner.invoke(app, base)
    assert wrong.exit_code == 2
    assert "sheet 'Summary' (chosen as the one with most numbers; also 'TimeCourse'" in (
        wrong.output
    )
    result = runner.invoke(app, [*base, "--sheet", "TimeCourse", "--now-sheet", "Now"])
    assert result.exit_code == 0, result.output
    csv_args = ["harvest-decision", "--history", str(tmp_path / "runs.csv"), "--seed", "3"]
    csv_args += ["--now", str(tmp_path / "current.csv"), "--spec", str(spec)]
    from_csv = runner.invoke(app, csv_args)
    # the same answer as from the CSV files
    decision = [line for line in result.output.splitlines() if line.startswith("Run ")]
    assert decision == [line for line in from_csv.output.splitlines() if line.startswith("Run ")]
    assert "HARVEST NOW" in decision[0]


def test_cli_harvest_decision_bad_input_exits_2_with_one_line(tmp_path, history):
    spec = _write_lab_files(tmp_path, history)
    base = ["harvest-decision", "--history", str(tmp_path / "runs.csv")]
    now = ["--now", str(tmp_path / "current.csv")]
    cases = {
        "missing column(s) 'run_id'": [*base, *now],  # the file's names need --spec
        "--policy must be one of": [*base, *now, "--spec", str(spec), "--policy", "greedy"],
        "nope.csv": [*base, "--now", str(tmp_path / "nope.csv"), "--spec", str(spec)],
        "harvest spec file": [*base, *now, "--spec", str(tmp_path / "none.toml")],
    }
    for expected, args in cases.items():
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (expected, result.output)
        assert result.output.startswith("error: ") and expected in result.output
        assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def _daily_runs(offset_h: float, jitter_h: float, seed: int = 0) -> pd.DataFrame:
    """Six runs sampled once a day (offset from the epoch grid, with jitter), in days."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(6):
        days = np.arange(12)
        hours = 24.0 * days + offset_h + rng.uniform(-jitter_h, jitter_h, len(days))
        hours[0] = 0.0
        rows.append(
            pd.DataFrame(
                {
                    "run_id": f"D{r}",
                    "time": hours / 24.0,
                    "protein": np.exp(0.3 * days + rng.normal(0, 0.05, len(days))),
                    "impurity": np.exp(0.2 * days + rng.normal(0, 0.05, len(days))),
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


@pytest.mark.filterwarnings("ignore:.*not at a decision epoch:UserWarning")
def test_measurements_between_the_epochs_are_explained_in_the_error():
    # daily samples 17 h after each epoch (inoculated at 16:00, sampled at 09:00): none on
    # the daily grid; the error names the reasons, epoch_tolerance and the typical step
    spec = HarvestSpec(time_unit="d", epoch_hours=24.0, horizon_hours=24.0 * 14)
    with pytest.raises(HarvestDataError) as err:
        knowledge_from_runs(_daily_runs(17.0, 0.5), spec=spec)
    text = str(err.value)
    assert "left out: " in text and "x not at a decision epoch" in text
    assert "raise epoch_tolerance (now 0.1 of an epoch" in text
    assert re.search(r"the measurements are typically 1\.00\d d \(24\.\d+ h\) apart", text)


@pytest.mark.filterwarnings("ignore:.*not at a decision epoch:UserWarning")
def test_the_epoch_hint_reads_the_step_of_every_measurement():
    # daily samples with +-1.5 h jitter against the default 6 h epochs: the rows left on the
    # grid are days apart, every measured row one day apart: the hint says 24 h
    with pytest.raises(HarvestDataError, match=r"declare epoch_hours = 24\.\d+ in the spec"):
        knowledge_from_runs(_daily_runs(0.0, 1.5), spec=HarvestSpec(time_unit="d"))


def test_sample_timestamps_count_from_each_runs_first_measurement(history):
    # a LIMS export: dates and times (day first, with dots), each run started on its own day
    def stamped(frame, fmt):
        start = pd.Timestamp("2024-02-01 10:00") + pd.to_timedelta(
            frame.groupby("run_id").ngroup() * 3, unit="D"
        )
        stamps = start + pd.to_timedelta(frame["time"], unit="h")
        return frame.assign(time=stamps.dt.strftime(fmt))

    now = mean_path(HarvestParams(), 10)
    hours = harvest_decision(history, now, random_seed=2)
    spec = HarvestSpec(time_unit="timestamp")
    for fmt in ("%d.%m.%Y %H:%M", "%Y-%m-%d %H:%M"):
        dated = harvest_decision(stamped(history, fmt), stamped(now, fmt), spec=spec, random_seed=2)
        assert dated.time_h == hours.time_h and dated.decision == hours.decision
        assert dated.reward_continue == pytest.approx(hours.reward_continue)
    bad = stamped(history, "%d.%m.%Y %H:%M")
    bad.loc[3, "time"] = "day 3"
    with pytest.raises(HarvestDataError, match=r"row 3: 'day 3' is not a date and time"):
        harvest_decision(bad, now, spec=spec)
    with pytest.raises(HarvestDataError, match=r"holds numbers, not dates and times"):
        harvest_decision(history, now, spec=spec)
