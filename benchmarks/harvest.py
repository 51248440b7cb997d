"""Benchmark: reproduce the harvest case study (Table 1, Fig. 3/4 data, Table 2) with timings.

Usage: python benchmarks/harvest.py [--quick] [--replications R] [--seed S]

Prints Table 1 with every policy's paired difference against PI-MDP (and its SE), the paired
RL-MR - plug-in and RL-MR - plug-in-static differences, Table 2, Fig. 3 and Fig. 4 summaries,
the wall-clock time, and the goals:
  * default, n = 3: RL-MR mean >= 95 % of PI-MDP's, beats CP with a lower reward SD;
  * high_risk, n = 3: RL-MR - plug-in-static > 2 paired SEs;
  * full case study (100 replications) <= 120 s.
"""

import argparse
import time

import numpy as np
import pandas as pd

from bayesbio.harvest import harvest_case_study, paired_differences

pd.set_option("display.width", 200)
pd.set_option("display.max_columns", 30)
pd.set_option("display.max_rows", 200)


def _pair(records: pd.DataFrame, a: str, b: str, scenario: str, n: int) -> tuple[float, float]:
    sel = records[(records["scenario"] == scenario) & (records["n"] == n)]
    ra = sel[sel["policy"] == a].set_index("replication")["reward"]
    rb = sel[sel["policy"] == b].set_index("replication")["reward"]
    d = (ra - rb).dropna()
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 replications, n in {3, 10}")
    parser.add_argument("--replications", type=int, default=None)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    reps = args.replications or (20 if args.quick else 100)
    n_values = (3, 10) if args.quick else (3, 10, 30)

    start = time.perf_counter()
    study = harvest_case_study(n_replications=reps, n_values=n_values, random_seed=args.seed)
    total = time.perf_counter() - start

    t1 = study.table1.copy()
    print(f"=== Table 1: {reps} replications, seed {args.seed} (reward: mean (SD)) ===")
    cols = [
        "scenario",
        "policy",
        "n",
        "mean_reward",
        "sd_reward",
        "mean_epoch",
        "failure_rate",
        "diff_vs_pi",
        "diff_vs_pi_se",
        "exact_value",
        "seconds",
    ]
    print(t1[cols].to_string(index=False, float_format=lambda x: f"{x:.2f}"))

    print("\n=== Paired differences (mean +- SE over replications) ===")
    rec = study.records
    for scenario in t1["scenario"].unique():
        for n in n_values:
            for a, b in (("RL-MR", "plug-in"), ("RL-MR", "plug-in-static"), ("RL-MR", "CP")):
                d, se = _pair(rec, a, b, scenario, n)
                print(f"{scenario:9s} n={n:<3d} {a} - {b:15s}: {d:+8.2f} +- {se:.2f}")
    diffs = paired_differences(rec[~rec["policy"].str.startswith("RL-MR[")])
    assert np.isfinite(diffs["diff"]).all()

    print("\n=== Table 2: RL-MR with informative priors (default scenario, n = 3) ===")
    print(study.table2.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    print(f"PI-MDP on the same paths: {study.table2.attrs['pi_mdp_mean_reward']:.2f}")

    print("\n=== Fig. 3: stopping epochs at n = 3 (mode, share harvested at 11-13, failures) ===")
    for (scenario, policy), g in study.fig3.groupby(["scenario", "policy"], sort=False):
        tot = g["n_harvested"] + g["n_failed"]
        mid = g.loc[g["epoch"].between(11, 13), "n_harvested"].sum() / tot.sum()
        mode = int(g.loc[tot.idxmax(), "epoch"])
        print(
            f"{scenario:9s} {policy:15s} mode {mode:2d}  harvested at 11-13: {mid:5.1%}  "
            f"failed: {g['n_failed'].sum() / tot.sum():5.1%}"
        )

    print("\n=== Fig. 4: thresholds i*(p) at t = 12 (default scenario) ===")
    f4 = study.fig4[study.fig4["scenario"] == "default"]
    wide = f4.assign(curve=f4["policy"] + f4["n"].map(lambda n: "" if pd.isna(n) else f" n={n}"))
    wide = wide.pivot_table(index="p", columns="curve", values="i_star")
    print(wide.iloc[::6].to_string(float_format=lambda x: f"{x:.2f}"))

    print("\n=== Goals ===")
    row = t1.set_index(["scenario", "policy", "n"])
    pi, rl, cp = (row.loc[("default", k, 3)] for k in ("PI-MDP", "RL-MR", "CP"))
    share = rl["mean_reward"] / pi["mean_reward"]
    print(
        f"default n=3: RL-MR / PI-MDP = {share:.1%} (goal >= 95 %): "
        f"{'PASS' if share >= 0.95 else 'FAIL'}"
    )
    beats = rl["mean_reward"] > cp["mean_reward"] and rl["sd_reward"] < cp["sd_reward"]
    verdict = "PASS" if beats else "FAIL"
    print(
        f"default n=3: RL-MR {rl['mean_reward']:.1f} (SD {rl['sd_reward']:.1f}) vs CP "
        f"{cp['mean_reward']:.1f} (SD {cp['sd_reward']:.1f}): {verdict}"
    )
    d, se = _pair(rec, "RL-MR", "plug-in-static", "high_risk", 3)
    print(
        f"high_risk n=3: RL-MR - plug-in-static = {d:+.2f} +- {se:.2f} (goal > 2 SE): "
        f"{'PASS' if d > 2 * se else 'FAIL'}"
    )
    verdict = ("PASS" if total <= 120 else "FAIL") if reps == 100 else "not judged here"
    print(
        f"wall time: {total:.1f} s for the full case study ({reps} replications, "
        f"n in {n_values}) (goal <= 120 s at 100): {verdict}"
    )


if __name__ == "__main__":
    main()
