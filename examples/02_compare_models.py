"""Compare LASSO and Random Forest yield models, find influential parameters and optimal ranges.

Simulated historical batch records; the same folds for every model; interval coverage and
CRPS next to RMSE; which parameters matter; where predicted yield is within 5 % of its best.
"""

# %%
import matplotlib.pyplot as plt

from bayesbio import evaluate, interpret
from bayesbio.models import ForestYield, LassoYield
from bayesbio.simulate import simulate_batches

table, truth, _ = simulate_batches(120, design="historical", random_seed=7)
models = {"LASSO": LassoYield(), "Random Forest": ForestYield()}

# %% Same folds for every model: repeated 5-fold CV and leave-one-site-out
comparison = evaluate.compare(
    models, table, cv=["kfold", "group", "learning_curve"], n_repeats=2, random_seed=7
)
print(comparison.table("kfold").round(3))
print(comparison.table("group").round(3))

# %% Plots: metric spread over folds, predicted vs observed, residuals, learning curve
fig, axs = plt.subplots(1, 3, figsize=(14, 4), layout="constrained")
evaluate.plot_scores(comparison, "rmse", ax=axs[0])
evaluate.plot_scores(comparison, "coverage_90", ax=axs[1])
evaluate.plot_learning_curve(comparison, "rmse", ax=axs[2])
evaluate.plot_predicted_vs_observed(comparison)
evaluate.plot_residuals(comparison, model="LASSO")

# %% Linear vs non-linear, in words
result = interpret.linear_vs_nonlinear(table, random_seed=7)
print(result.table.round(3))
print(result.text)

# %% Influential parameters: permutation importance, +1 SD effects, partial dependence
infl = interpret.influence(models, table, n_repeats=3, random_seed=7)
print(infl.table.round(3))
print(infl.coefficients["LASSO"].query("selected").round(4))
interpret.plot_influence(infl)

# %% Baseline recommender: argmax of the mean prediction, and the 5 % optimal range
group = {"scale": "2000L", "site": "A"}
for name, model in models.items():
    fitted = model.set_params(random_state=7).fit(table)
    best = interpret.argmax_setpoint(fitted, group=group, random_seed=7)
    achieved = truth.mean_yield(best.drop("yield").to_frame().T, group=group)[0]
    print(
        f"{name}: predicted {best['yield']:.2f} g/L, true {achieved:.2f} g/L, "
        f"true optimum {truth.optimum(group)['yield']:.2f} g/L"
    )
    print(interpret.optimal_range(fitted, group=group, random_seed=7).round(2))
