"""Benchmark: LASSO and Random Forest baselines on simulated historical batch records.

For each training size n and seed: simulate ``n`` batches (historical design, 3 scales x 3
sites, 6 campaigns), score both baselines with 5-fold CV (RMSE, MAE, R², coverage of the 50 %
and 90 % intervals, CRPS), then refit on all batches and, for every (scale, site) group,
recommend the setpoint that maximises predicted yield (``interpret.argmax_setpoint``). Regret =
true optimum yield minus true mean yield at the recommendation, in % of the optimum. The
"recipe" row is the regret of simply running the median historical setpoint.

    python benchmarks/baselines.py            # n = 20, 40, 100, 300; 10 seeds
    python benchmarks/baselines.py --quick    # n = 20, 100; 2 seeds
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from bayesbio.evaluate import compare
from bayesbio.interpret import argmax_setpoint
from bayesbio.models import ForestYield, LassoYield
from bayesbio.simulate import simulate_batches
from bayesbio.space import ProcessSpace

SPACE = ProcessSpace.default()

METRICS = ["rmse", "mae", "r2", "coverage_50", "coverage_90", "crps"]
_OPTIMA: dict[tuple, pd.Series] = {}


def true_optimum(truth, seed: int, group: dict[str, str]) -> pd.Series:
    """truth.optimum, cached across sizes: a seed gives the same truth whatever n is."""
    effects = int(pd.util.hash_pandas_object(truth.group_effects).sum())
    key = (seed, effects, group["scale"], group["site"])
    if key not in _OPTIMA:
        _OPTIMA[key] = truth.optimum(group)
    return _OPTIMA[key]


def models() -> dict[str, object]:
    return {
        "LASSO": LassoYield(n_bootstrap=20),
        "RF": ForestYield(n_estimators=150),
    }


def run_one(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    sim = simulate_batches(n, design="historical", random_seed=seed)
    table, truth = sim.table, sim.truth
    comp = compare(models(), table, cv="kfold", n_splits=5, random_seed=seed)
    s = comp.scores[comp.scores["metric"].isin(METRICS)]
    cv = s.groupby(["model", "metric"])["value"].mean().unstack().reset_index()
    cv.insert(0, "n", n)
    cv.insert(1, "seed", seed)

    fitted = {
        name: model.set_params(random_state=seed).fit(table) for name, model in models().items()
    }
    recipe = table[list(SPACE.factor_names)].median()
    rows = []
    for _, grp in truth.groups.iterrows():
        group = {"scale": grp["scale"], "site": grp["site"]}
        best = true_optimum(truth, seed, group)
        candidates = {"recipe (median)": recipe}
        for name, model in fitted.items():
            candidates[name] = argmax_setpoint(
                model, group=group, n_candidates=512, random_seed=seed
            )[list(SPACE.factor_names)]
        for name, setpoint in candidates.items():
            achieved = float(truth.mean_yield(setpoint.to_frame().T, group=group)[0])
            rows.append(
                {
                    "n": n,
                    "seed": seed,
                    "model": name,
                    "group": f"{grp['scale']}/{grp['site']}",
                    "regret_pct": 100.0 * (best["yield"] - achieved) / best["yield"],
                }
            )
    return cv, pd.DataFrame(rows)


def p90(x: pd.Series) -> float:
    return float(np.quantile(x, 0.9))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run (n = 20, 100; 2 seeds)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per size (default 10)")
    args = parser.parse_args()
    sizes = (20, 100) if args.quick else (20, 40, 100, 300)
    n_seeds = args.seeds or (2 if args.quick else 10)
    start = time.perf_counter()
    cvs, regrets = [], []
    for n in sizes:
        for seed in range(n_seeds):
            cv, regret = run_one(n, seed)
            cvs.append(cv)
            regrets.append(regret)
        print(f"  n={n}: done ({time.perf_counter() - start:.0f} s)", flush=True)
    cv = pd.concat(cvs, ignore_index=True)
    regret = pd.concat(regrets, ignore_index=True)

    pd.set_option("display.width", 160)
    pd.set_option("display.max_columns", 30)
    print(f"\nBaselines on simulated historical data: {n_seeds} seeds per n, 5-fold CV")
    print("(means over seeds; coverage = share of held-out batches inside the interval)\n")
    table = cv.groupby(["n", "model"])[METRICS].mean()
    reg = regret.groupby(["n", "model"])["regret_pct"].agg(regret_mean="mean", regret_p90=p90)
    print(table.join(reg, how="outer").round(3).to_string())

    print("\nRegret of the argmax recommender per (scale/site) group, % of the true optimum")
    print("(mean / 90th percentile over seeds)\n")
    per = regret.groupby(["group", "n", "model"])["regret_pct"].agg(["mean", p90])
    per["cell"] = per["mean"].map("{:.1f}".format) + " / " + per["p90"].map("{:.1f}".format)
    print(per["cell"].unstack(["n", "model"]).to_string())
    print(f"\nTotal time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
