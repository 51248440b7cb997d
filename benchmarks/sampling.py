"""Benchmark: how well and how fast the default Bayesian model samples, across worlds.

For each history (the independent worlds of :mod:`bayesbio.worlds` at ``--n`` batches and
``--seeds`` seeds, plus bayesbio's own simulator at ``--sim-n``), the default
:class:`BayesianYieldModel` (every default structure, likelihood and sampler setting) is
fitted warm (the compile of each model signature is paid by a first, short fit that is not
timed), and per structure it prints: wall time of the whole fit, sampler runs, mean
leapfrog steps per draw, thousands of leapfrog steps behind the kept draws (the fit's cost
independent of machine load), max R-hat, min bulk/tail ESS, divergences, and whether every check
passed; then a summary per history size.

The figures compare sampler parameterisations: run it on two versions of the code (e.g. a
git worktree of the previous commit on ``PYTHONPATH``) on the same machine.

    python benchmarks/sampling.py                        # worlds at n = 20 and 40, seed 0
    python benchmarks/sampling.py --n 20 --seeds 0 1 --sim-n 200 --out /tmp/sampling.csv
"""

from __future__ import annotations

import argparse
import time
import warnings

import pandas as pd

from bayesbio.models._bayes_sampling import failed_checks, lowest_ess
from bayesbio.models.bayesian import BayesianYieldModel
from bayesbio.simulate import simulate_batches
from bayesbio.worlds import WORLDS, make_world


def histories(
    sizes: list[int], seeds: list[int], sim_sizes: list[int], worlds: list[str]
) -> list[tuple[str, int, int, pd.DataFrame, object]]:
    """Return ``(world, n, seed, table, space)`` for every history of the run."""
    out = []
    for n in sizes:
        for seed in seeds:
            for name in worlds:
                world = make_world(name, random_seed=seed)
                table, _, _ = world.sample(n, random_seed=seed)
                out.append((name, n, seed, table, world.space))
    for n in sim_sizes:
        for seed in seeds:
            table = simulate_batches(n, design="historical", random_seed=seed + 1).table
            out.append(("simulator", n, seed, table, None))
    return out


def fit_rows(world: str, n: int, seed: int, table: pd.DataFrame, space: object) -> list[dict]:
    """Fit the default model warm on one history; one row per structure."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # compile every signature first (not timed): a short fit of the same model
        BayesianYieldModel(space=space, draws=100, tune=50, chains=1, random_seed=seed).fit(table)
        model = BayesianYieldModel(space=space, random_seed=seed)
        start = time.perf_counter()
        model.fit(table)
        seconds = time.perf_counter() - start
    rows = []
    for structure, found in model.diagnostics_.items():
        stats = model.idata_[structure]["sample_stats"]
        rows.append(
            {
                "world": world,
                "n": n,
                "seed": seed,
                "structure": structure,
                "fit_s": seconds,
                "runs": int(found["runs"]),
                "steps_per_draw": float(stats["n_steps"].mean()),
                # gradient evaluations behind the kept draws (warm-up and replaced runs not
                # counted): the cost of a fit independent of machine load
                "kilo_steps": float(stats["n_steps"].sum()) / 1000.0,
                "max_r_hat": found["max_r_hat"],
                "min_ess": lowest_ess(found),
                "divergences": int(found["divergences"]),
                "passed": not failed_checks(found),
            }
        )
    return rows


def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per history size and structure: means of the figures and the share of passed fits."""
    return rows.groupby(["n", "structure"]).agg(
        fits=("passed", "size"),
        fit_s=("fit_s", "mean"),
        runs=("runs", "mean"),
        steps_per_draw=("steps_per_draw", "mean"),
        kilo_steps=("kilo_steps", "mean"),
        max_r_hat=("max_r_hat", "mean"),
        worst_r_hat=("max_r_hat", "max"),
        min_ess=("min_ess", "mean"),
        divergences=("divergences", "mean"),
        passed=("passed", "mean"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", nargs="*", type=int, default=[20, 40], help="world history sizes")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--sim-n", nargs="*", type=int, default=[200], help="simulator sizes")
    parser.add_argument("--worlds", nargs="+", default=list(WORLDS), choices=list(WORLDS))
    parser.add_argument("--out", help="CSV of every fit")
    args = parser.parse_args()
    pd.set_option("display.width", 200)
    rows: list[dict] = []
    for world, n, seed, table, space in histories(args.n, args.seeds, args.sim_n, args.worlds):
        new = fit_rows(world, n, seed, table, space)
        rows += new
        print(
            pd.DataFrame(new)
            .round(3)
            .to_string(index=False, header=len(rows) == len(new), col_space=11)
        )
    frame = pd.DataFrame(rows)
    if args.out:
        frame.to_csv(args.out, index=False)
    print("\nPer history size and structure (means; 'passed': share of fits passing every check)")
    print(summary(frame).round(3).to_string())
    per_fit = frame.groupby(["world", "n", "seed"])["fit_s"].first()
    print(f"\nmean wall time per default fit: {per_fit.mean():.1f} s over {len(per_fit)} fits")


if __name__ == "__main__":
    main()
