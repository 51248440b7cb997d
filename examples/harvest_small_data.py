"""Harvest timing with 3 historical data points: learning while you ferment.

A new fermentation process has only three observed 6-hour growth rates for protein and
impurity. We compare when to harvest under perfect information (PI-MDP), common practice (CP),
a certainty-equivalent plug-in policy and Bayesian RL with model risk (RL-MR), with common
random numbers and a reduced number of replications so the script runs in well under a minute.
"""

# %% Setup: the default scenario and three historical points per growth rate
import matplotlib.pyplot as plt
import numpy as np

from bayesbio.harvest import (
    SCENARIOS,
    KnowledgeState,
    harvest_case_study,
    make_policy,
    plot_harvest_epochs,
    plot_thresholds,
    simulate_trajectories,
)

params = SCENARIOS["default"]
history = simulate_trajectories(params, n_batches=1, random_seed=1)
print(history.head(4)[["epoch", "protein", "impurity", "phi", "psi"]])
first3 = history.dropna(subset=["phi"]).head(3)
knowledge = KnowledgeState.from_trajectories(first3)
print("posterior after 3 points:", knowledge)
print("predictive protein growth (t_2):", knowledge.protein.predictive_params())

# %% One decision: should we harvest at epoch 12 with p = 30, i = 15?
for name in ("PI-MDP", "myopic", "plug-in", "RL-MR"):
    policy = make_policy(name, params, knowledge=knowledge, random_seed=0)
    i_star = policy.threshold(12, 30.0, knowledge)[0]
    print(f"{name:8s}: harvest at (t=12, p=30) iff impurity >= {i_star:6.2f}")

# %% A small case study: 30 replications, n = 3 only
study = harvest_case_study(
    scenarios=("default", "high_risk"),
    n_values=(3,),
    n_replications=30,
    policies=("PI-MDP", "CP", "plug-in", "plug-in-static", "RL-MR"),
    fig4_n=(3,),
    fig4_draws=64,
    table2=False,
    random_seed=2024,
)
cols = [
    "scenario",
    "policy",
    "mean_reward",
    "sd_reward",
    "mean_epoch",
    "failure_rate",
    "diff_vs_pi",
    "diff_vs_pi_se",
]
print(study.table1[cols].round(1).to_string(index=False))

# %% Figures: stopping epochs (Fig. 3) and thresholds (Fig. 4)
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
plot_harvest_epochs(study.fig3, scenario="high_risk", ax=axes[0])
plot_thresholds(study.fig4, scenario="default", ax=axes[1])
fig.tight_layout()
print(
    "median RL-MR stopping epoch:",
    np.median(study.records.query("policy == 'RL-MR'")["harvest_epoch"]),
)
