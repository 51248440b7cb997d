"""Recommend a risk-aware setpoint, map the design space and pick the next batch to run.

A plant history of 60 batches (3 scales x 3 sites) trains the hierarchical Bayesian yield
model; we then ask for the setpoint of the production scale at site A that maximises the mean
of the worst 10 % of new batches (CVaR), compare it with the mean-optimal setpoint and the
current recipe, map where a new batch meets a spec with 90 % probability, and rank candidate
experiments by their value of information. The simulator's truth scores the answers.

Figures go to the folder in the ``BAYESBIO_OUTPUT`` environment variable (default
``output/examples``), under ``04_recommend_setpoints/``.
"""

# %%
import os
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd

from bayesbio.models.bayesian import BayesianYieldModel
from bayesbio.recommend import (
    Constraints,
    design_space,
    next_batches,
    recommend,
)
from bayesbio.simulate import simulate_batches
from bayesbio.space import ProcessSpace

out_dir = Path(os.environ.get("BAYESBIO_OUTPUT", "output/examples")) / "04_recommend_setpoints"
out_dir.mkdir(parents=True, exist_ok=True)
PARAMS = list(ProcessSpace.default().factor_names)

# %% [markdown]
# Fit the model. Short chains keep the example fast; with them the sampling diagnostics
# may fail (ESS < 400), and every recommendation then carries a `ModelDiagnosticsWarning`.
# We record the warnings and print them rather than let them scroll by.

# %%
sim = simulate_batches(60, random_seed=7)
table, truth = sim.table, sim.truth
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    model = BayesianYieldModel(draws=500, tune=500, chains=2, random_seed=7).fit(table)
for w in caught:
    print(f"fit: {w.category.__name__}: {str(w.message)[:120]}")
group = {"scale": "2000L", "site": "A"}

# %% [markdown]
# The recommendation: CVaR(10 %) of a new batch's yield, extrapolation guard on.

# %%
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    rec = recommend(model, group=group, objective="cvar", spec=5.0, random_seed=1)
print(f"{len(caught)} warning(s) recorded; carried on the result: {len(rec.warnings)}")
print(rec.to_frame().T.round(3).to_string())
print("model-risk premium:", {k: round(v, 3) for k, v in rec.premium.items()})
print(rec.shift.round(3).to_string())

# %% [markdown]
# Scored by the truth: true mean yield at each setpoint versus the true optimum.

# %%
rows = rec.summary.loc[:, PARAMS]
true = pd.Series(truth.mean_yield(rows, group), index=rows.index, name="true_yield")
optimum = truth.optimum(group)
print(true.round(3).to_string())
print(f"true optimum {optimum['yield']:.3f} g/L at {optimum[PARAMS].round(2).to_dict()}")
rec.plot().figure.savefig(out_dir / "recommendation.png", dpi=110, bbox_inches="tight")

# %% [markdown]
# Constraints: pH fixed by the cell line and execution noise on pH and temperature.

# %%
with warnings.catch_warnings(record=True):
    warnings.simplefilter("always")  # the diagnostics warning again: it is in fixed.warnings
    fixed = recommend(
        model,
        group=group,
        constraints=Constraints(fixed={"ph": 7.0}, bounds={"temperature": (33.0, 38.0)}),
        execution_sd={"ph": 0.05, "temperature": 0.2},
        random_seed=1,
    )
print(fixed.setpoint.round(3).to_string())

# %% [markdown]
# Design space: where P(yield >= 4.5 g/L) >= 0.9, and its proven acceptable ranges.

# %%
with warnings.catch_warnings(record=True):
    warnings.simplefilter("always")  # as above
    ds = design_space(model, 4.5, 0.9, group=group, resolution=7, center=rec, random_seed=1)
print(f"{100 * ds.share_inside:.1f} % of the grid is inside the design space")
print(ds.par.round(3).to_string())
ds.plot().savefig(out_dir / "design_space.png", dpi=110, bbox_inches="tight")

# %% [markdown]
# Where to run the next batch: historical setpoints of other groups as candidates, ranked by
# the expected reduction in regret (knowledge gradient over posterior draws).

# %%
candidates = table.sample(30, random_state=1)[PARAMS].reset_index(drop=True)
ranked = next_batches(model, candidates, k=5, group=group, random_seed=1)
print(f"expected regret now: {ranked.attrs['current_expected_regret']:.3f} g/L")
print(ranked.round(3).to_string())
