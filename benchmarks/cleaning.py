"""Cleaning benchmark: defect detection against the simulator's labels, and speed.

For several seeds, simulate dirty batch tables (default defect rates), clean them with the
default policy and score each defect kind:

- recall: share of labelled defective rows whose log has an action of the matching kind;
- precision: share of rows with an action of that kind that carry that label;
- false-positive rate: share of clean (unlabelled) rows with any log action.

Then time simulating and cleaning 1,000,000 batches.

    python benchmarks/cleaning.py            # 5 seeds x 2,000 batches, 1,000,000 timed
    python benchmarks/cleaning.py --quick    # 2 seeds x 1,000 batches, 100,000 timed
    python benchmarks/cleaning.py --rate-scale 5 --design doe   # a harder mix
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from bayesbio.clean import clean
from bayesbio.simulate import DEFAULT_DEFECT_RATES, DEFECT_KINDS, simulate_batches

GOALS = {
    "impossible": 0.95,
    "duplicate_exact": 0.95,
    "duplicate_near": 0.95,
    "unit_kelvin": 0.95,
    "unit_fahrenheit": 0.95,
    "unit_do_mg_per_l": 0.95,
    "outlier": 0.80,
}
FP_GOAL = 0.02


def classify(reason: str) -> str:
    """Map an audit-log reason to the defect kind it addresses."""
    if reason.startswith(("missing group label", "group label normalised")):
        return "label_typo"
    if reason.startswith("missing"):
        return "missing"
    if reason.startswith("exact duplicate"):
        return "duplicate_exact"
    if reason.startswith(("duplicate batch_id", "near duplicate")):
        return "duplicate_near"
    if reason.startswith("impossible"):
        return "impossible"
    if reason.startswith("unit slip: kelvin"):
        return "unit_kelvin"
    if reason.startswith("unit slip: Fahrenheit"):
        return "unit_fahrenheit"
    if reason.startswith("unit slip: mg/L"):
        return "unit_do_mg_per_l"
    if reason.startswith("outlier"):
        return "outlier"
    return "other"


def score(n: int, seed: int, design: str, rate_scale: float) -> tuple[pd.DataFrame, float, int]:
    rates = {k: v * rate_scale for k, v in DEFAULT_DEFECT_RATES.items()}
    sim = simulate_batches(n, design=design, defects=rates, random_seed=seed)
    log = clean(sim.table).log
    log = log.assign(kind=log["reason"].map(classify))
    labels = sim.defects
    rows = []
    for kind in DEFECT_KINDS:
        truth = set(labels.loc[labels["defect"] == kind, "row"])
        found = set(log.loc[log["kind"] == kind, "row"])
        rows.append(
            {
                "seed": seed,
                "defect": kind,
                "labelled": len(truth),
                "detected": len(found),
                "tp": len(truth & found),
            }
        )
    clean_rows = set(range(len(sim.table))) - set(labels["row"])
    fp_rows = clean_rows & set(log["row"])
    return pd.DataFrame(rows), len(fp_rows) / max(len(clean_rows), 1), len(clean_rows)


def timing(n: int, seed: int) -> dict[str, float]:
    start = time.perf_counter()
    sim = simulate_batches(n, defects=True, random_seed=seed)
    t_sim = time.perf_counter() - start
    start = time.perf_counter()
    result = clean(sim.table)
    t_clean = time.perf_counter() - start
    dropped = int((result.log["action"] == "dropped").sum())
    assert len(sim.table) == len(result.table) + dropped
    return {
        "rows": len(sim.table),
        "simulate_s": t_sim,
        "clean_s": t_clean,
        "log_rows": len(result.log),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default 5)")
    parser.add_argument("--n", type=int, default=None, help="batches per seed (default 2000)")
    parser.add_argument("--design", default="historical", choices=["historical", "doe", "uniform"])
    parser.add_argument("--big", type=int, default=None, help="rows timed (default 1,000,000)")
    parser.add_argument(
        "--rate-scale", type=float, default=1.0, help="multiply the default defect rates"
    )
    args = parser.parse_args(argv)
    seeds = args.seeds or (2 if args.quick else 5)
    n = args.n or (1000 if args.quick else 2000)
    big = args.big or (100_000 if args.quick else 1_000_000)

    parts, fps, n_clean = [], [], 0
    for seed in range(seeds):
        part, fp, k = score(n, seed, args.design, args.rate_scale)
        parts.append(part)
        fps.append(fp)
        n_clean += k
    per_seed = pd.concat(parts)
    table = per_seed.groupby("defect", sort=False)[["labelled", "detected", "tp"]].sum()
    table["recall"] = table["tp"] / table["labelled"]
    table["precision"] = table["tp"] / table["detected"].where(table["detected"] > 0)
    recall_by_seed = (per_seed["tp"] / per_seed["labelled"]).groupby(per_seed["defect"]).min()
    table["min_recall_seed"] = recall_by_seed
    table["goal"] = pd.Series(GOALS)
    table["met"] = np.where(
        table["goal"].isna(), "", np.where(table["recall"] >= table["goal"], "yes", "NO")
    )
    pd.set_option("display.width", 120)
    print(
        f"Defect detection, design={args.design}, {seeds} seeds x {n} batches, "
        f"{args.rate_scale:g} x default defect rates, default policy"
    )
    print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    fp_rate = float(np.mean(fps))
    print(
        f"\nfalse-positive rate (clean rows with any action): {fp_rate:.4%} "
        f"(max over seeds {max(fps):.4%}; {n_clean} clean rows; goal <= {FP_GOAL:.0%}: "
        f"{'yes' if fp_rate <= FP_GOAL else 'NO'})"
    )
    t = timing(big, seed=0)
    print(
        f"\nspeed: {t['rows']:,} rows: simulate {t['simulate_s']:.1f} s, "
        f"clean {t['clean_s']:.1f} s ({t['rows'] / t['clean_s']:,.0f} rows/s, "
        f"{t['log_rows']:,} log rows)"
    )


if __name__ == "__main__":
    main()
