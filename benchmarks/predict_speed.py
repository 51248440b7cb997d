"""Benchmark: speed of posterior predictive draws from a fitted Bayesian yield model.

Goal: 160,000 setpoints x 1,000 draws in <= 3 s on 2 cores. The model (quadratic + spline
structures, 4 chains x 250 draws, historical design, n = 300) is fitted once; then
``predict_draws`` (with new-batch noise, ``kind="existing"``, one group), ``predict`` and
``predict_interval`` are timed on a random grid over the operating ranges, median of
``--repeat`` runs. ``predict_draws`` is vectorised numpy (chunks of rows, 2 threads, one
matrix product per chunk), not ``pm.sample_posterior_predictive``.

    python benchmarks/predict_speed.py           # 160,000 setpoints
    python benchmarks/predict_speed.py --quick   # 16,000 setpoints
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd

from bayesbio.models.bayesian import BayesianYieldModel
from bayesbio.simulate import simulate_batches
from bayesbio.space import ProcessSpace

SPACE = ProcessSpace.default()


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16,000 setpoints")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n_rows = 16_000 if args.quick else 160_000
    table = simulate_batches(300, design="historical", random_seed=1).table
    model = BayesianYieldModel(draws=250, tune=500, chains=4, random_seed=1)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        model.fit(table)
    rng = np.random.default_rng(0)
    grid = pd.DataFrame({p: rng.uniform(*SPACE.bounds[p], n_rows) for p in SPACE.factor_names})
    for g in model.spec_["groups"]:
        grid[g] = table[g].iloc[0]
    new = grid.assign(site="new")
    mixed = grid.assign(site=np.resize(sorted(table["site"].unique()), n_rows))

    cases = {
        "predict_draws float64 (1000 draws)": lambda: model.predict_draws(
            grid, n_draws=1000, random_seed=1
        ),
        "predict_draws float32 (1000 draws)": lambda: model.predict_draws(
            grid, n_draws=1000, random_seed=1, dtype=np.float32
        ),
        "predict_draws float32, 3 sites mixed": lambda: model.predict_draws(
            mixed, n_draws=1000, random_seed=1, dtype=np.float32
        ),
        "predict_draws float32, new_group": lambda: model.predict_draws(
            new, n_draws=1000, kind="new_group", random_seed=1, dtype=np.float32
        ),
        "predict (posterior mean)": lambda: model.predict(grid),
        "predict_interval (2000 draws)": lambda: model.predict_interval(grid),
    }
    rows = []
    for name, fn in cases.items():
        seconds = timed(fn, args.repeat)
        rows.append({"call": name, "rows": n_rows, "seconds": seconds})
        print(f"  {name}: {seconds:.2f} s", flush=True)
    print(
        f"\nPrediction speed, {n_rows:,} setpoints, {os.cpu_count()} cores, "
        f"median of {args.repeat}; weights {model.stacking_weights_.round(2).to_dict()}\n"
    )
    print(pd.DataFrame(rows).round(2).to_string(index=False))


if __name__ == "__main__":
    main()
