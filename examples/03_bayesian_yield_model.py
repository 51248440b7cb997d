"""Fit the hierarchical Bayesian yield model, check convergence, predict with uncertainty.

Simulated historical batch records (3 scales x 3 sites, 6 campaigns). The model pools a
quadratic and a spline response surface over the four parameters across groups, stacks the
two structures by LOO, and predicts in g/L for seen groups, a new site and the population.
Short chains keep the run small; use the defaults (4 x 1000 draws) for real work.
"""

# %%
import tempfile
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from bayesbio.models import posterior_plots as pp
from bayesbio.models.bayesian import BayesianYieldModel, ConvergenceWarning, build_model
from bayesbio.simulate import simulate_batches

table, truth, _ = simulate_batches(150, design="historical", random_seed=3)

# %% The PyMC model can be inspected (or extended) before any sampling
model = build_model(table, structure="quadratic")
print(model.bayesbio_spec["used"], "varying slopes for:", model.bayesbio_spec["primary"])
print([rv.name for rv in model.free_RVs])

# %% Fit both structures; diagnostics travel with the model
bayes = BayesianYieldModel(draws=400, tune=400, chains=2, random_seed=3)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    bayes.fit(table)
for w in caught:
    if issubclass(w.category, ConvergenceWarning):
        print("ConvergenceWarning:", w.message)
print(pd.DataFrame(bayes.diagnostics_).round(3))
print("stacking weights:", bayes.stacking_weights_.round(3).to_dict())

# %% Predictions: a seen group, a new site at the same scale, the population mean
setpoint = pd.DataFrame(
    {
        "mixing_time": [30.0],
        "temperature": [36.5],
        "ph": [7.0],
        "dissolved_oxygen": [40.0],
        "scale": ["2000L"],
        "site": ["A"],
        "campaign": [table["campaign"].iloc[0]],
    }
)
for kind, frame in [
    ("existing", setpoint),
    ("new_group", setpoint.assign(site="new site")),
    ("population", setpoint),
]:
    interval = bayes.predict_interval(frame, ci_prob=0.9, kind=kind)
    print(f"{kind:>10}: {interval.round(2).to_dict('records')[0]} g/L")
print("true mean yield:", truth.mean_yield(setpoint).round(2))

# %% Posterior plots: convergence, group effects, predictive check, marginal effects
pp.plot_rank(bayes)
pp.plot_group_effects(bayes)
pp.plot_ppc(bayes)
pp.plot_marginal_effects(bayes)

# %% Save (netCDF, no pickle) and load: identical predictions
with tempfile.TemporaryDirectory() as tmp:
    path = bayes.save(Path(tmp) / "bayesian_yield_model.nc")
    again = BayesianYieldModel.load(path)
print("round trip identical:", (again.predict(table) == bayes.predict(table)).all())
plt.close("all")
