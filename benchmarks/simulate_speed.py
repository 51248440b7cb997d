"""Speed of bayesbio.simulate: batch tables with and without defects, truth evaluation.

Usage: python benchmarks/simulate_speed.py [--quick] [--n N] [--repeats R]
Prints one row per case: best and median wall time over the repeats (seconds) and rows/s.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np

from bayesbio.simulate import simulate_batches


def _time(func, repeats):
    times = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = func()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 batches, one repeat")
    parser.add_argument("--n", type=int, default=None, help="batches (default 1,000,000)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats (default 3)")
    args = parser.parse_args()
    n = args.n or (100_000 if args.quick else 1_000_000)
    repeats = args.repeats or (1 if args.quick else 3)

    print(
        f"bayesbio.simulate speed: n={n:,}, repeats={repeats}, python {platform.python_version()}"
    )
    print(f"{'case':<40} {'best_s':>8} {'median_s':>9} {'rows/s':>12}")
    sim = None
    for design in ("historical", "doe", "uniform"):
        for defects in (False, True):
            best, med, out = _time(
                lambda d=design, f=defects: simulate_batches(n, design=d, defects=f, random_seed=1),
                repeats,
            )
            label = f"simulate_batches {design}, defects={defects}"
            print(f"{label:<40} {best:8.3f} {med:9.3f} {n / best:12,.0f}")
            if design == "historical" and defects:
                sim = out
    table, truth, labels = sim
    best, med, clean = _time(lambda: sim.clean_table, repeats)
    print(f"{'SimulatedBatches.clean_table':<40} {best:8.3f} {med:9.3f} {n / best:12,.0f}")
    best, med, _ = _time(lambda: truth.mean_yield(clean), repeats)
    print(f"{'truth.mean_yield (clean rows)':<40} {best:8.3f} {med:9.3f} {n / best:12,.0f}")
    t0 = time.perf_counter()
    for g in truth.groups.to_dict("records"):
        truth.optimum(g)
    per_group = (time.perf_counter() - t0) / len(truth.groups)
    print(f"{'truth.optimum (uncached, per group)':<40} {per_group:8.3f} {'':>9} {'':>12}")
    print(
        f"defect labels: {len(labels):,} ({len(labels) / n:.1%} of batches); "
        f"table rows {len(table):,}; yield range {np.nanmin(table['yield']):.2f} to "
        f"{np.nanmax(table['yield']):.2f}"
    )


if __name__ == "__main__":
    main()
