"""Benchmark: wall time of fitting the Bayesian yield model vs plain PyMC.

For n = 200, 2,000 and 100,000 simulated batches (historical design), 4 chains of 1000 draws
after 1000 tuning steps, side by side:

* ``bayesbio (nutpie)`` -- :class:`BayesianYieldModel` with its defaults (quadratic + GP
  structures, LOO stacking, adaptation "auto", extra runs when the checks fail). "cold"
  is the first fit of that model signature in the process (includes the nutpie/numba
  compile), "warm" a refit of the same signature (compiled model reused from the cache;
  only sampling, LOO and bookkeeping). Its diagnostics (worst over structures: min bulk or
  tail ESS, max R-hat, divergences, sampler runs) and ESS per second are printed.
* ``previous sampling`` -- the same model and seed with the sampling before 2026-12-06
  (nutpie's "diag" adaptation, no extra runs), warm, with the same diagnostics.
* ``bayesbio (pymc NUTS)`` -- the same model with ``nuts_sampler="pymc"``.
* ``plain PyMC default`` -- an equivalent non-hierarchical quadratic on log-yield
  (intercept + 14 terms + noise), ``pm.sample()`` with all defaults (PyMC picks its sampler:
  nutpie when installed; it compiles on every call).

Also printed: the compile time of one structure in a warm process (a new signature).

    python benchmarks/fit_speed.py           # n = 200, 2000, 100000
    python benchmarks/fit_speed.py --quick   # n = 200, 2000; 2 chains x 300 draws
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
import pymc as pm
from worlds import sampling_checks  # benchmarks/worlds.py, beside this script

from bayesbio.models import _bayes_design as design
from bayesbio.models.bayesian import BayesianYieldModel
from bayesbio.simulate import simulate_batches


def plain_pymc(table: pd.DataFrame, draws: int, chains: int, seed: int) -> float:
    x = design.population_design(design.standardise(table), "quadratic")
    logy = np.log(table["yield"].to_numpy())
    start = time.perf_counter()
    with pm.Model():
        a = pm.Normal("a", logy.mean(), 1.0)
        beta = pm.Normal("beta", 0.0, 1.0, shape=x.shape[1])
        sigma = pm.HalfNormal("sigma", 0.5)
        pm.Normal("y", a + pm.math.dot(x, beta), sigma, observed=logy)
        pm.sample(draws=draws, tune=draws, chains=chains, random_seed=seed, progressbar=False)
    return time.perf_counter() - start


def timed_fit(model: BayesianYieldModel, table: pd.DataFrame) -> tuple[float, int]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        model.fit(table)
        seconds = time.perf_counter() - start
    n_warn = sum(w.category.__name__ == "ConvergenceWarning" for w in caught)
    return seconds, n_warn


def checks(model: BayesianYieldModel, seconds: float, label: str) -> dict[str, object]:
    """Diagnostics of a fit over its structures (:func:`worlds.sampling_checks`), ESS/s."""
    s = sampling_checks(model.diagnostics_)
    return {
        f"{label} min ESS": s["min_ess"],
        f"{label} max R-hat": s["max_rhat"],
        f"{label} div.": s["divergences"],
        f"{label} runs": s["runs"],
        f"{label} ESS/s": s["min_ess"] / seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 200, 2000; short chains")
    parser.add_argument("--sizes", type=int, nargs="*", default=None)
    parser.add_argument("--skip-pymc-nuts", action="store_true", help="skip nuts_sampler='pymc'")
    args = parser.parse_args()
    sizes = args.sizes or ((200, 2000) if args.quick else (200, 2000, 100_000))
    draws, chains = (300, 2) if args.quick else (1000, 4)
    rows = []
    for n in sizes:
        table = simulate_batches(n, design="historical", random_seed=1).table
        kw = {"draws": draws, "tune": draws, "chains": chains}
        bayes = BayesianYieldModel(random_seed=1, **kw)
        cold, _ = timed_fit(bayes, table)
        warm_model = BayesianYieldModel(random_seed=2, **kw)
        warm, n_warn = timed_fit(warm_model, table)
        # the sampling before 2026-12-06: nutpie's "diag" adaptation, no extra runs
        old_model = BayesianYieldModel(random_seed=2, adaptation="diag", extra_runs=0, **kw)
        old, _ = timed_fit(old_model, table)
        row = {
            "n": n,
            "bayesbio nutpie cold [s]": cold,
            "bayesbio nutpie warm [s]": warm,
            "conv. warnings": n_warn,
            "weights": "/".join(f"{w:.2f}" for w in warm_model.stacking_weights_),
            **checks(warm_model, warm, "default"),
            "previous sampling warm [s]": old,
            **checks(old_model, old, "previous"),
        }
        if not args.skip_pymc_nuts:
            row["bayesbio pymc NUTS [s]"] = timed_fit(
                BayesianYieldModel(random_seed=1, nuts_sampler="pymc", **kw), table
            )[0]
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            row["plain PyMC default [s]"] = plain_pymc(table, draws, chains, seed=1)
        row["default / plain"] = warm / row["plain PyMC default [s]"]
        row["previous / plain"] = old / row["plain PyMC default [s]"]
        rows.append(row)
        print(pd.DataFrame([row]).round(2).to_string(index=False), flush=True)

    # compile cost of one structure in a warm process: a new signature (other level count)
    table = simulate_batches(300, design="historical", sites=["A", "B"], random_seed=3).table
    one = BayesianYieldModel(structures=("quadratic",), draws=50, tune=50, chains=1)
    start = time.perf_counter()
    timed_fit(one, table)
    first = time.perf_counter() - start
    start = time.perf_counter()
    timed_fit(one, table)
    again = time.perf_counter() - start

    pd.set_option("display.width", 160)
    print(f"\nFit wall time, {chains} chains x {draws} draws (+{draws} tune), 2 shared cores\n")
    print(pd.DataFrame(rows).round(3).T.to_string(header=False))
    print(
        f"\nOne structure, 1 chain x 50 draws, new signature in a warm process: {first:.1f} s "
        f"(incl. nutpie/numba compile); same signature again: {again:.1f} s "
        f"-> compile ~{first - again:.1f} s"
    )


if __name__ == "__main__":
    main()
