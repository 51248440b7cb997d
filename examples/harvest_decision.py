"""Harvest now or continue? A decision for a running batch from measured runs.

Eight past fermentation runs were sampled every 6 h for titer and host-cell protein (HCP, the
impurity). Their one-epoch growth rates give the knowledge state (normal-inverse-gamma
posteriors of the protein and impurity growth laws); the running batch B-09 has been sampled
up to 72 h. The RL-MR policy (Wang et al. 2024), which averages its decision over the growth
laws the data still allow, says whether to harvest now, and what each choice is expected to
earn. The same decision from the command line::

    bayesbio harvest-decision --history examples/data/harvest_history.csv \\
        --now examples/data/harvest_current.csv --spec examples/data/harvest_spec.toml

The data files were generated once from the simulated growth model
(``make_example_data()`` below; ``python examples/harvest_decision.py --write-data``
rewrites them, and the last cell checks that the shipped files still match).
"""

# %% Setup: the declaration of the files (column names, units, economics)
import os
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bayesbio.harvest import (
    HarvestParams,
    HarvestSpec,
    harvest_decision,
    knowledge_from_runs,
    read_runs,
    simulate_trajectories,
    summarize_knowledge,
)

DATA = Path(__file__).resolve().parent / "data"
spec = HarvestSpec.from_toml(DATA / "harvest_spec.toml")
print(spec)


def make_example_data(random_seed: int = 2024) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate 8 past runs and one running batch in g/L, as a lab file would hold them."""
    runs = simulate_trajectories(HarvestParams(), 9, random_seed=random_seed)
    table = pd.DataFrame(
        {
            "Batch": [f"B-{b + 1:02d}" for b in runs["batch"]],
            "Time (h)": runs["time_h"],
            # the growth model counts amounts in starting amounts: inoculated at 0.2 g/L
            # titer and 0.05 g/L HCP
            "Titer (g/L)": (0.2 * runs["protein"]).map(lambda x: float(f"{x:.4g}")),
            "HCP (g/L)": (0.05 * runs["impurity"]).map(lambda x: float(f"{x:.4g}")),
        }
    )
    history = table[table["Batch"] != "B-09"].reset_index(drop=True)
    # one HCP assay was lost: the decision module leaves the row out and says so
    history.loc[(history["Batch"] == "B-03") & (history["Time (h)"] == 30.0), "HCP (g/L)"] = np.nan
    current = table[(table["Batch"] == "B-09") & (table["Time (h)"] <= 72.0)]
    return history, current.reset_index(drop=True)


if "--write-data" in sys.argv:
    hist_new, cur_new = make_example_data()
    hist_new.to_csv(DATA / "harvest_history.csv", index=False)
    cur_new.to_csv(DATA / "harvest_current.csv", index=False)

# %% Past runs -> knowledge state I_0 (what the history says about the growth laws)
history = read_runs(DATA / "harvest_history.csv", spec=spec)
current = read_runs(DATA / "harvest_current.csv", spec=spec, min_points=1)
print(history.excluded[["run_id", "time_h", "reason"]].to_string(index=False))
prior = knowledge_from_runs(history)
print(summarize_knowledge(prior, ci_prob=0.94).round(3).to_string(index=False))

# %% The decision at the latest measurement (72 h), RL-MR and the alternatives
decision = harvest_decision(history, current, spec=spec, random_seed=2024)
print(decision.explain())
print(decision.to_frame().round(2).to_string(index=False))
for policy in ("plug-in", "myopic", "CP"):
    other = harvest_decision(history, current, spec=spec, policy=policy, random_seed=2024)
    print(f"{policy:8s}: {other.decision:12s} continue worth {other.reward_continue:7.1f}")

# %% Looking back: what RL-MR would have said at each 6 h sample of B-09
rows = []
for k in range(1, len(current.table)):
    upto = current.table.iloc[: k + 1]
    raw = pd.DataFrame(
        {
            spec.run_id: upto["run_id"],
            spec.time: upto["time_h"],
            spec.protein: upto["protein"],
            spec.impurity: upto["impurity"],
        }
    )
    d = harvest_decision(history, raw, spec=spec, random_seed=2024)
    rows.append((d.time_h, d.decision, d.reward_harvest, d.reward_continue, d.p_fail_next))
timeline = pd.DataFrame(
    rows, columns=["time_h", "decision", "harvest_now", "continue", "p_fail_next"]
)
print(timeline.round(3).to_string(index=False))

# %% Figure: past runs (grey) and the running batch, with the harvest limits
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
for ax, column, unit, limit, label in (
    (axes[0], "protein", spec.protein_unit, spec.protein_cap, "protein cap"),
    (axes[1], "impurity", spec.impurity_unit, spec.impurity_limit, "impurity limit"),
):
    for k, (_, run) in enumerate(history.table.groupby("run_id")):
        label_k = f"past runs ({len(history.runs)})" if k == 0 else None
        ax.plot(run["time_h"], run[column], color="0.7", lw=1, label=label_k)
    ax.plot(current.table["time_h"], current.table[column], "o-", color="C0", label="B-09")
    ax.axhline(limit, color="C3", ls="--", label=label)
    ax.set_yscale("log")
    ax.set_xlabel("time [h]")
    ax.set_ylabel(f"{column} [{unit}]")
    ax.legend(loc="upper left")
axes[0].set_title(f"B-09 at {decision.time_h:g} h: {decision.decision} ({decision.policy})")
fig.tight_layout()
out = Path(os.environ.get("BAYESBIO_OUTPUT", "output")) / "harvest_decision"
out.mkdir(parents=True, exist_ok=True)
fig.savefig(out / "harvest_decision.png", dpi=100)
plt.close(fig)

# %% The shipped files are the ones make_example_data() writes
hist_new, cur_new = make_example_data()
pd.testing.assert_frame_equal(pd.read_csv(DATA / "harvest_history.csv"), hist_new)
pd.testing.assert_frame_equal(pd.read_csv(DATA / "harvest_current.csv"), cur_new)
print("shipped data reproduced from the growth model, seed 2024")
