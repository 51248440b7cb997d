"""Write examples/walkthrough.ipynb from the cells below (run: python tools/make_notebook.py)."""

from pathlib import Path

import nbformat

CELLS = [
    (
        "md",
        """# bayesbio walkthrough: from messy batch records to defensible setpoints

The project proposal's workflow, end to end: synthetic batch records -> cleaning with an audit
log -> EDA -> features -> LASSO and Random Forest baselines -> hierarchical Bayesian model ->
comparison on identical folds -> risk-aware recommendations and a design space.

Set `BAYESBIO_QUICK=1` for reduced settings (the test suite does).""",
    ),
    (
        "code",
        """import os
import warnings

import pandas as pd

from bayesbio import eda, evaluate, interpret, recommend
from bayesbio.clean import clean
from bayesbio.features import YieldFeatures
from bayesbio.models import BayesianYieldModel, ForestYield, LassoYield, posterior_plots
from bayesbio.simulate import simulate_batches

QUICK = os.environ.get("BAYESBIO_QUICK") == "1"
SEED = 2024
DRAWS = 200 if QUICK else 1000""",
    ),
    (
        "md",
        """## 1. Synthetic batch records
48 historical batches over three scales and three sites, with labelled defects. The simulator
keeps its ground truth, so every claim below can be scored.""",
    ),
    (
        "code",
        """table, truth, defects = simulate_batches(48, design="historical", defects=True,
                                        random_seed=SEED)
print(defects["defect"].value_counts())
table.head()""",
    ),
    ("md", "## 2. Cleaning: nothing is dropped silently"),
    (
        "code",
        """cleaned = clean(table)
print(len(table), "rows in,", len(cleaned.table), "kept")
cleaned.log""",
    ),
    ("md", "## 3. Exploratory data analysis"),
    (
        "code",
        """summary, figures = eda.run_eda(cleaned.table)
figures["yield_vs_parameters"]""",
    ),
    (
        "md",
        "## 4. Features\nStandardised parameters, quadratic and interaction terms, "
        "group encodings.",
    ),
    (
        "code",
        """features = YieldFeatures(groups=["scale", "site"]).fit(cleaned.table)
list(features.get_feature_names_out())[:12]""",
    ),
    ("md", "## 5. Baselines and the Bayesian model on the same folds"),
    (
        "code",
        """models = {
    "LASSO": LassoYield(groups=["scale", "site"], random_state=1),
    "RandomForest": ForestYield(groups=["scale", "site"], random_state=1),
    "Bayesian": BayesianYieldModel(groups=["scale", "site"], draws=DRAWS, tune=DRAWS,
                                   chains=2, random_seed=1),
}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    comparison = evaluate.compare(models, cleaned.table, cv="kfold",
                                  n_splits=3 if QUICK else 5, random_seed=SEED)
for w in caught:
    print(w.category.__name__, str(w.message)[:120])
comparison.summary""",
    ),
    ("code", "evaluate.plot_scores(comparison).figure"),
    ("md", "## 6. Linear vs non-linear, and the most influential parameters"),
    (
        "code",
        """lvn_table, lvn_text, _ = interpret.linear_vs_nonlinear(
    cleaned.table, n_splits=3, random_seed=SEED)
print(lvn_text)
lvn_table""",
    ),
    ("md", "## 7. The hierarchical Bayesian model: diagnostics first"),
    (
        "code",
        """with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    bayes = models["Bayesian"].fit(cleaned.table)
print(pd.DataFrame(bayes.diagnostics_).round(3))
print("stacking weights", bayes.stacking_weights_.round(3).to_dict())""",
    ),
    ("code", "posterior_plots.plot_marginal_effects(bayes)"),
    (
        "md",
        """## 8. Risk-aware recommendation and design space
CVaR of the lowest 10 % of new batches, inside the support of the historical data.""",
    ),
    (
        "code",
        """group = {"scale": "2000L", "site": "A"}
with warnings.catch_warnings(record=True):
    warnings.simplefilter("always")
    rec = recommend.recommend(bayes, group=group, objective="cvar", random_seed=SEED)
    space = recommend.design_space(bayes, spec=float(cleaned.table["yield"].median()),
                                   prob=0.8, group=group, center=rec, resolution=5,
                                   map_resolution=15, n_draws=400, random_seed=SEED)
rec.to_frame()""",
    ),
    (
        "code",
        """best = truth.optimum(group)
true_at = truth.mean_yield(rec.to_frame()[list(truth.space.factor_names)], group=group)
pd.DataFrame({"true mean yield": true_at,
              "regret %": 100 * (best["yield"] - true_at) / best["yield"]},
             index=rec.to_frame().index)""",
    ),
    ("code", "space.par"),
    ("code", "recommend.plot_recommendation(rec).figure"),
]


def main() -> None:
    """Write the notebook."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
        for kind, src in CELLS
    ]
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"  # stable ids: regenerating gives the same file
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = Path(__file__).resolve().parents[1] / "examples" / "walkthrough.ipynb"
    nbformat.write(nb, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
