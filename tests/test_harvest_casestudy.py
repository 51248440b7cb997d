"""Case study protocol, reproducibility, plots and the example (spec §6, §7.5-7.7)."""

import runpy
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from bayesbio.harvest import (
    SCENARIOS,
    KnowledgeState,
    harvest_case_study,
    paired_differences,
    plot_harvest_epochs,
    plot_reward_table,
    plot_thresholds,
)
from bayesbio.harvest.casestudy import TABLE1_COLUMNS, TABLE2_COLUMNS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small_study():
    return harvest_case_study(
        scenarios=("default",),
        n_values=(3, 10),
        n_replications=6,
        random_seed=7,
        fig4_n=(3,),
        fig4_draws=32,
        table2_kappas=(0.5,),
    )


def test_case_study_tables_have_the_spec_columns(small_study):
    t1, f3, f4, t2, rec = small_study
    assert list(t1.columns) == TABLE1_COLUMNS
    assert list(t2.columns) == TABLE2_COLUMNS
    assert set(f3.columns) >= {"scenario", "policy", "n", "epoch", "n_harvested", "n_failed"}
    assert set(f4.columns) >= {"policy", "n", "t", "p", "i_star"}
    assert len(t1) == 6 * 2  # six policies x two data sizes
    # Fig. 3 counts add up to the replications for every policy
    totals = f3.groupby("policy")[["n_harvested", "n_failed"]].sum().sum(axis=1)
    assert (totals == 6).all()
    assert f3["epoch"].between(0, SCENARIOS["default"].T).all()
    # Fig. 4: 40 points per curve, thresholds inside [0.5, i_bar]
    assert (f4.groupby(["policy", "n"], dropna=False).size() == 40).all()
    assert f4["i_star"].between(0.5, SCENARIOS["default"].i_bar).all()
    assert f4["p"].min() == pytest.approx(2.0) and f4["p"].max() < SCENARIOS["default"].p_bar
    # Table 2: default-prior row plus one per kappa; the default row is Table 1's RL-MR at n=3
    assert list(t2["prior"]) == ["default", "informative"]
    rl3 = t1[(t1["policy"] == "RL-MR") & (t1["n"] == 3)].iloc[0]
    assert t2["mean_reward"].iloc[0] == pytest.approx(rl3["mean_reward"])
    # the exact values are filled where the spec defines them
    exact = t1.set_index("policy")["exact_value"]
    assert exact[["PI-MDP", "CP", "plug-in-static"]].notna().all()
    assert exact[["myopic", "plug-in", "RL-MR"]].isna().all()
    assert np.isfinite(rec["reward"]).all()


def test_all_policies_share_the_physical_path_within_a_replication(small_study):
    rec = small_study.records
    rec = rec[(rec["n"] == 3) & ~rec["policy"].str.startswith("RL-MR[")]
    params = SCENARIOS["default"]
    kids = np.random.SeedSequence(7).spawn(6)
    for r, g in rec.groupby("replication"):
        z = np.random.default_rng(kids[r].spawn(4)[1]).standard_normal((params.T, 2))
        logp = np.log(params.p0) + np.cumsum(params.mu_p + params.sigma_p * z[:, 0])
        logp = np.concatenate([[np.log(params.p0)], logp])
        np.testing.assert_allclose(np.log(g["p_final"]), logp[g["harvest_epoch"]], rtol=1e-12)


def test_same_seed_gives_bitwise_identical_outputs_and_more_replications_keep_inputs(small_study):
    again = harvest_case_study(
        scenarios=("default",),
        n_values=(3, 10),
        n_replications=6,
        random_seed=7,
        fig4_n=(3,),
        fig4_draws=32,
        table2_kappas=(0.5,),
    )
    pd.testing.assert_frame_equal(
        small_study.table1.drop(columns="seconds"), again.table1.drop(columns="seconds")
    )
    for name in ("fig3", "fig4", "table2", "records"):
        pd.testing.assert_frame_equal(getattr(small_study, name), getattr(again, name))
    more = harvest_case_study(
        scenarios=("default",),
        n_values=(3,),
        n_replications=8,
        random_seed=7,
        policies=("CP", "RL-MR"),
        fig4=False,
        table2=False,
    )
    old = small_study.records
    old = old[(old["n"] == 3) & old["policy"].isin(["PI-MDP", "CP", "RL-MR"])]
    new = more.records[more.records["replication"] < 6]
    key = ["policy", "replication"]
    pd.testing.assert_frame_equal(
        old.sort_values(key).reset_index(drop=True)[new.columns],
        new.sort_values(key).reset_index(drop=True),
    )


def test_paired_differences_match_table1(small_study):
    t1, rec = small_study.table1, small_study.records
    d = paired_differences(rec).set_index(["scenario", "policy", "n"])
    for _, row in t1.iterrows():
        got = d.loc[(row["scenario"], row["policy"], row["n"])]
        assert got["diff"] == pytest.approx(row["diff_vs_pi"])
        assert got["se"] == pytest.approx(row["diff_vs_pi_se"], nan_ok=True)


def test_fast_policies_do_not_beat_pi_mdp_in_simulation():
    study = harvest_case_study(
        scenarios=("default", "high_risk"),
        n_values=(3,),
        n_replications=400,
        policies=("PI-MDP", "CP", "myopic", "myopic-PI"),
        fig4=False,
        table2=False,
    )
    t1 = study.table1
    others = t1[t1["policy"] != "PI-MDP"]
    assert (others["diff_vs_pi"] <= 4 * others["diff_vs_pi_se"]).all()
    cp = t1[t1["policy"] == "CP"].set_index("scenario")
    assert cp.loc["default", "failure_rate"] == pytest.approx(0.317, abs=0.08)


@pytest.mark.slow
def test_pi_mdp_dominates_every_policy_within_mc_error_at_1000_replications():
    study = harvest_case_study(
        scenarios=("default",), n_values=(3,), n_replications=1000, fig4=False, table2=False
    )
    t1 = study.table1.set_index("policy")
    assert t1.loc["PI-MDP", "mean_reward"] == pytest.approx(343.9, abs=10)
    assert t1.loc["CP", "mean_reward"] == pytest.approx(251.2, abs=20)
    others = t1.drop(index="PI-MDP")
    assert (others["diff_vs_pi"] <= 4 * others["diff_vs_pi_se"]).all()
    # the benchmark goals at n = 3: RL-MR near PI-MDP, and better and steadier than CP
    assert t1.loc["RL-MR", "mean_reward"] >= 0.95 * t1.loc["PI-MDP", "mean_reward"]
    assert t1.loc["RL-MR", "sd_reward"] < t1.loc["CP", "sd_reward"]


@pytest.mark.slow
def test_modelling_model_risk_pays_in_the_high_risk_scenario():
    study = harvest_case_study(
        scenarios=("high_risk",), n_values=(3,), n_replications=300, fig4=False, table2=False
    )
    t1 = study.table1.set_index("policy")
    others = t1.drop(index="PI-MDP")
    assert (others["diff_vs_pi"] <= 4 * others["diff_vs_pi_se"]).all()
    rewards = study.records.pivot(index="replication", columns="policy", values="reward")
    d = rewards["RL-MR"] - rewards["plug-in-static"]
    assert d.mean() > 2 * d.std(ddof=1) / np.sqrt(len(d))


@pytest.mark.slow
def test_rl_mr_and_plug_in_approach_pi_mdp_as_data_grow():
    study = harvest_case_study(
        scenarios=("high_risk",),
        n_values=(3, 30),
        n_replications=300,
        policies=("PI-MDP", "plug-in", "RL-MR"),
        fig4=False,
        table2=False,
    )
    t1 = study.table1.set_index(["policy", "n"])
    # plug-in's paired loss against PI-MDP shrinks; RL-MR ends within MC error of PI-MDP
    assert abs(t1.loc[("plug-in", 30), "diff_vs_pi"]) < abs(t1.loc[("plug-in", 3), "diff_vs_pi"])
    rl30 = t1.loc[("RL-MR", 30)]
    assert abs(rl30["diff_vs_pi"]) < 3 * rl30["diff_vs_pi_se"]
    epochs = study.records.pivot_table(
        index=["n", "replication"], columns="policy", values="harvest_epoch"
    )
    same = (epochs["RL-MR"] == epochs["PI-MDP"]).groupby(level="n").mean()
    assert same[30] > same[3]  # RL-MR's share of stops at PI-MDP's epoch rises
    rewards = study.records.pivot_table(
        index=["n", "replication"], columns="policy", values="reward"
    )
    gap = (rewards["RL-MR"] - rewards["plug-in"]).groupby(level="n").mean()
    assert abs(gap[30]) < abs(gap[3])


def test_case_study_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"'policies'.*'oracle'"):
        harvest_case_study(policies=("oracle",), n_replications=2)
    with pytest.raises(ValueError, match=r"'scenario'.*'nominal'"):
        harvest_case_study(scenarios=("nominal",), n_replications=2)
    with pytest.raises(ValueError, match="'n_values'"):
        harvest_case_study(n_values=(1,), n_replications=2)
    with pytest.raises(ValueError, match="'n_replications'"):
        harvest_case_study(n_replications=1)
    with pytest.raises(ValueError, match="'fig3_n'"):
        harvest_case_study(n_values=(10,), n_replications=2)


def test_plots_draw_on_given_axes_and_return_them(small_study):
    fig, axes = plt.subplots(1, 3)
    assert plot_harvest_epochs(small_study.fig3, ax=axes[0]) is axes[0]
    assert plot_thresholds(small_study.fig4, ax=axes[1]) is axes[1]
    assert plot_reward_table(small_study.table1, ax=axes[2]) is axes[2]
    assert len(axes[1].get_lines()) == 4  # PI-MDP, myopic-PI, myopic n=3, RL-MR n=3
    assert plot_thresholds(small_study.fig4).figure is not fig
    with pytest.raises(ValueError, match="'policies'"):
        plot_harvest_epochs(small_study.fig3, policies=("nope",))
    with pytest.raises(ValueError, match="'fig4'"):
        plot_thresholds(small_study.fig3)


def test_knowledge_from_case_study_data_is_nested_across_n():
    kids = np.random.SeedSequence(2024).spawn(3)
    hist = kids[0].spawn(4)[0]
    z30 = np.random.default_rng(hist).standard_normal((30, 2))
    z3 = np.random.default_rng(hist).standard_normal((3, 2))
    np.testing.assert_array_equal(z30[:3], z3)
    assert KnowledgeState.from_data(z3[:, 0], z3[:, 1]).protein.nu == 3


@pytest.mark.slow
def test_example_script_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(ROOT / "examples" / "harvest_small_data.py"), run_name="__main__")
