"""True regret of the safe, per-group recommend() against the previous behaviour (issue 13).

For each world and seed: sample 40 batches, fit one cheap Bayesian model, and recommend for
two groups with (a) the current :func:`bayesbio.recommend.recommend` (per-group support,
safe improvement over the recipe) and (b) the previous behaviour: the same search with the
pooled support and no safe-improvement test (``Constraints(support="overall",
max_sd_ratio=None)``, ``min_confidence=None``), and (c) keeping the recipe (the group's
median setpoint). Regret is in % of the group's true optimum.

Run: ``.venv/bin/python benchmarks/recommend_safe.py [n_seeds]``; writes
``benchmarks/results/recommend_safe.csv`` and prints the summary.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import pandas as pd

from bayesbio.models.bayesian import BayesianYieldModel
from bayesbio.recommend import Constraints, recommend
from bayesbio.worlds import make_world

WORLDS = ("far_optimum", "failures", "scale_shift")
GROUPS = ({"scale": "2000L", "site": "A"}, {"scale": "200L", "site": "B"})
FIT = {"structures": ("quadratic",), "draws": 300, "tune": 300, "chains": 2}
OLD = {"constraints": Constraints(support="overall", max_sd_ratio=None), "min_confidence": None}


def main(n_seeds: int = 3) -> pd.DataFrame:
    """Run the comparison and return the tidy results."""
    rows = []
    for name in WORLDS:
        for seed in range(n_seeds):
            world = make_world(name, random_seed=seed)
            table, _, _ = world.sample(40, random_seed=100 + seed)
            with warnings.catch_warnings(record=True):
                warnings.simplefilter("always")
                model = BayesianYieldModel(**FIT, random_seed=seed).fit(table)
                for group in GROUPS:
                    best = float(world.optimum(group)["yield"])
                    t0 = time.perf_counter()
                    new = recommend(model, group=group, random_seed=seed)
                    t_new = time.perf_counter() - t0
                    old = recommend(model, group=group, random_seed=seed, **OLD)
                    points = {
                        "new": new.setpoint,
                        "old": old.setpoint,
                        "recipe": new.recipe,
                    }
                    for who, x in points.items():
                        true = float(world.mean_yield(x.to_frame().T, group=group)[0])
                        rows.append(
                            {
                                "world": name,
                                "seed": seed,
                                "group": f"{group['scale']}/{group['site']}",
                                "recommender": who,
                                "regret_pct": 100 * (best - true) / best,
                                "decision": new.decision if who == "new" else "",
                                "p_better": new.p_better_than_recipe if who == "new" else None,
                                "seconds": t_new if who == "new" else None,
                            }
                        )
    return pd.DataFrame(rows)


if __name__ == "__main__":
    results = main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    results.to_csv(out / "recommend_safe.csv", index=False)
    wide = results.pivot_table(
        index=["world", "seed", "group"], columns="recommender", values="regret_pct"
    )
    print(results.groupby(["world", "recommender"])["regret_pct"].mean().unstack().round(1))
    worse = (wide["new"] > wide["recipe"] + 2).mean(), (wide["old"] > wide["recipe"] + 2).mean()
    print(f"worse than the recipe by > 2 points: new {worse[0]:.0%}, old {worse[1]:.0%}")
    print(
        "decisions:", results.loc[results.recommender == "new", "decision"].value_counts().to_dict()
    )
    print(f"seconds per recommend(): {results['seconds'].dropna().mean():.1f}")
