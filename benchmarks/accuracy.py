"""Benchmark: the Bayesian yield model vs the LASSO and Random Forest baselines.

For each training size n and seed: simulate ``n`` batches (historical design, 3 scales x 3
sites, 6 campaigns) and score all three models with :func:`bayesbio.evaluate.compare` on
identical folds: 5-fold CV ("kfold", random) and leave-one-site-out ("group"). Metrics: RMSE,
CRPS (from 400 predictive draws), coverage and width of the 90 % interval, fit seconds.
Held-out batches of an unseen site are predicted with ``kind="new_group"``.

The Bayesian model runs with its defaults (quadratic + spline structures stacked by LOO,
nutpie) except for shorter chains (``--draws``, default 500 draws + 500 tuning, 2 chains) to
keep the run within minutes on 2 cores; ConvergenceWarnings are counted and reported.

    python benchmarks/accuracy.py            # n = 20, 40, 60, 100; 10 seeds
    python benchmarks/accuracy.py --quick    # n = 20, 60; 2 seeds
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from bayesbio.evaluate import compare
from bayesbio.models import ForestYield, LassoYield
from bayesbio.models.bayesian import BayesianYieldModel, ConvergenceWarning
from bayesbio.simulate import simulate_batches

METRICS = ["rmse", "crps", "coverage_90", "width_90", "fit_seconds"]


def models(draws: int, chains: int) -> dict[str, object]:
    return {
        "LASSO": LassoYield(n_bootstrap=20),
        "RF": ForestYield(n_estimators=150),
        "Bayes": BayesianYieldModel(draws=draws, tune=draws, chains=chains),
    }


def run_one(n: int, seed: int, draws: int, chains: int) -> tuple[pd.DataFrame, int]:
    table = simulate_batches(n, design="historical", random_seed=seed).table
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        comp = compare(
            models(draws, chains),
            table,
            cv=["kfold", "group"],
            n_splits=5,
            ci_probs=(0.9,),
            random_seed=seed,
        )
    n_conv = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    s = comp.scores[comp.scores["metric"].isin(METRICS)]
    out = s.groupby(["scheme", "model", "metric"])["value"].mean().unstack().reset_index()
    out.insert(0, "n", n)
    out.insert(1, "seed", seed)
    return out, n_conv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run (n = 20, 60; 2 seeds)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per size (default 10)")
    parser.add_argument("--sizes", type=int, nargs="*", default=None, help="training sizes")
    parser.add_argument("--draws", type=int, default=500, help="Bayes draws = tune per chain")
    parser.add_argument("--chains", type=int, default=2, help="Bayes chains")
    args = parser.parse_args()
    sizes = args.sizes or ((20, 60) if args.quick else (20, 40, 60, 100))
    n_seeds = args.seeds or (2 if args.quick else 10)
    start = time.perf_counter()
    rows, conv = [], 0
    pd.set_option("display.width", 160)
    for n in sizes:
        for seed in range(n_seeds):
            res, n_conv = run_one(n, seed, args.draws, args.chains)
            rows.append(res)
            conv += n_conv
            print(f"  n={n} seed={seed}: {time.perf_counter() - start:.0f} s", flush=True)
        part = pd.concat(rows, ignore_index=True).query("n == @n")
        print(part.groupby(["scheme", "model"])[METRICS].mean().round(3).to_string(), flush=True)
    res = pd.concat(rows, ignore_index=True)
    print(
        f"\nAccuracy on simulated historical data: {n_seeds} seeds per n; kfold = 5-fold CV, "
        "group = leave one site out (means over folds, then seeds)\n"
    )
    table = res.groupby(["scheme", "n", "model"])[METRICS].mean()
    print(table.round(3).to_string())
    wins = (
        res.pivot_table(index=["scheme", "n", "seed"], columns="model", values="rmse")
        .assign(bayes_le_best=lambda d: d["Bayes"] <= d[["LASSO", "RF"]].min(axis=1))
        .groupby(["scheme", "n"])["bayes_le_best"]
        .mean()
    )
    print("\nShare of seeds where Bayes RMSE <= best baseline RMSE\n")
    print(wins.round(2).to_string())
    print(f"\nConvergenceWarnings raised by Bayes fits: {conv}")
    print(f"Total time {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
