"""Benchmark: harvest decisions from measured runs, walked through runs of worlds we did not fit.

:mod:`benchmarks.harvest` scores the policies inside the model of Wang et al. (2024), where
every epoch's growth comes from one law. Real cultures slow down (logistic or Gompertz titers)
and release impurity faster late (lysis). This benchmark feeds
:func:`bayesbio.harvest.harvest_decision` what a plant has, measured runs, and lets it decide
epoch by epoch on new runs of three structurally different worlds:

* ``paper``    -- the paper's model: protein and impurity grow by i.i.d. log-normal factors
  per 6 h epoch (``HarvestParams()`` defaults: +35 % and +28 % per epoch), harvest forced at
  96 h, the scale-free economics of docs/harvest_model.md; measured exactly.
* ``logistic`` -- a CHO fed-batch in days (a user's world, written for a user test): logistic
  titer (Pmax ~5 g/L, midpoint day ~7.5; growth falls from +57 % to +1 % a day), host-cell
  protein from live-cell release plus a lysis burst after day ~11 (its growth rises late);
  run-to-run variation in every parameter, measurement CV 5 % (titer) and 10 % (HCP); 100
  kEUR per g/L, 0.1 kEUR per mg/L HCP, 10 kEUR a day, HCP above 500 mg/L fails the batch
  (-200 kEUR); harvest forced on day 16.
* ``gompertz`` -- a microbial fed-batch in 12 h epochs: Gompertz product formation
  (Zwietering et al. 1990, Appl. Environ. Microbiol. 56:1875) with run-to-run rate and lag,
  impurity growing at a constant rate with noise; product growth slows, impurity's does not.

Per world and seed: 8 past runs (the history), then ``--runs`` new runs; on each new run the
policy is asked at every epoch, with the measurements so far, and the run is harvested at the
first "harvest now" (or forced at the horizon, or failed when its true impurity passes the
limit). Scores are the realised rewards (true amounts at harvest) of each method:

* ``epochs``  -- :func:`harvest_decision` with ``growth_window="epochs"`` (the default): a
  growth law per future epoch;
* ``ahead``   -- the same with ``growth_window="ahead"``: one law for the growth ahead;
* ``all``     -- the same with ``growth_window="all"``, the paper's pooled growth law;
* ``fixed``   -- the best fixed harvest epoch, chosen on 400 further runs of the world (what an
  experienced team would learn from many batches; an optimistic baseline);
* ``hindsight`` -- each run's best epoch on its true path (an upper bound no policy reaches).

Printed per world: mean realised reward, its share of the hindsight reward, the mean harvest
epoch and the share of failed batches; same runs and noise for every method.

Run::

    python benchmarks/harvest_decision.py                  # 3 worlds x 2 seeds x 20 runs
    python benchmarks/harvest_decision.py --runs 40 --seeds 3
"""

from __future__ import annotations

import argparse
import dataclasses
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from bayesbio.harvest import HarvestDataError, HarvestParams, HarvestSpec, harvest_decision

WORLDS = ("paper", "logistic", "gompertz")
METHODS = ("ahead", "epochs", "all", "fixed", "hindsight")
N_HISTORY = 8


@dataclass(frozen=True)
class World:
    """A world: true paths of runs, measurement noise and the economics in its units."""

    name: str
    spec: HarvestSpec
    noise_p: float
    noise_i: float

    @property
    def T(self) -> int:
        return self.spec.T

    def paths(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """True protein and impurity at epochs 0..T of ``n`` runs, shape ``(n, T + 1)``."""
        t = np.arange(self.T + 1) * self.spec.epoch_hours / 24.0  # days
        if self.name == "paper":
            hp = HarvestParams()
            phi = rng.normal(hp.mu_p, hp.sigma_p, (n, self.T))
            psi = rng.normal(hp.mu_i, hp.sigma_i, (n, self.T))
            zeros = np.zeros((n, 1))
            return (
                np.exp(np.hstack([zeros, np.cumsum(phi, 1)])),
                np.exp(np.hstack([zeros, np.cumsum(psi, 1)])),
            )
        if self.name == "logistic":
            pmax = 5.0 * np.exp(rng.normal(0, 0.12, (n, 1)))
            k = rng.normal(0.45, 0.05, (n, 1))
            t50 = rng.normal(7.5, 0.5, (n, 1))
            h0 = 30.0 * np.exp(rng.normal(0, 0.15, (n, 1)))
            td = rng.normal(11.0, 1.0, (n, 1))
            p = pmax / (1.0 + np.exp(-k * (t - t50)))
            i = h0 * (1.0 + 0.35 * t) + 40.0 * np.exp(0.5 * (t - td))
            return p, i
        if self.name == "gompertz":
            a = np.log(40.0) + rng.normal(0, 0.1, (n, 1))  # ln of the final over the start
            mu_m = rng.normal(1.6, 0.2, (n, 1))  # maximum specific rate, 1/d
            lag = rng.normal(1.0, 0.25, (n, 1))  # d
            p = 0.1 * np.exp(a * np.exp(-np.exp(mu_m * np.e / a * (lag - t) + 1.0)))
            psi = rng.normal(0.18, 0.06, (n, self.T))  # per 12 h epoch
            i = 0.05 * np.exp(np.hstack([np.zeros((n, 1)), np.cumsum(psi, 1)]))
            return p, i
        raise ValueError(name_error(self.name))

    def measure(
        self, p: np.ndarray, i: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Measured values: multiplicative log-normal error."""
        return (
            p * np.exp(rng.normal(0, self.noise_p, p.shape)),
            i * np.exp(rng.normal(0, self.noise_i, i.shape)),
        )

    def realised(self, p: np.ndarray, i: np.ndarray, tau: int) -> tuple[float, bool]:
        """Reward of one run harvested at ``tau`` (true amounts), and whether it failed first."""
        s = self.spec
        p_ref, i_ref = (p[0], i[0]) if s.protein_cap is None else (1.0, 1.0)
        cap = s.protein_cap if s.protein_cap is not None else 50.0 * p_ref
        limit = s.impurity_limit if s.impurity_limit is not None else 40.0 * i_ref
        price = s.price if s.price is not None else 10.0 / p_ref
        cost = s.impurity_cost if s.impurity_cost is not None else 2.0 / i_ref
        over = np.nonzero(i[1 : tau + 1] > limit)[0]
        if len(over):
            when = int(over[0]) + 1
            return -s.failure_penalty - s.cost_per_epoch * when, True
        capped = np.nonzero(p[: tau + 1] >= cap)[0]
        if len(capped):
            tau = int(capped[0])
        return price * min(p[tau], cap) - cost * i[tau] - s.cost_per_epoch * tau, False


def name_error(name: str) -> str:
    return f"unknown world {name!r}; choose from {list(WORLDS)}"


def make_world(name: str) -> World:
    """The world ``name`` of :data:`WORLDS`."""
    if name == "paper":
        return World(name, HarvestSpec(), 0.0, 0.0)
    if name == "logistic":
        spec = HarvestSpec(
            time_unit="d",
            protein_unit="g/L",
            impurity_unit="mg/L",
            epoch_hours=24.0,
            horizon_hours=384.0,
            protein_cap=10.0,
            impurity_limit=500.0,
            price=100.0,
            impurity_cost=0.1,
            cost_per_epoch=10.0,
            failure_penalty=200.0,
            reward_unit="kEUR",
        )
        return World(name, spec, 0.05, 0.10)
    if name == "gompertz":
        spec = HarvestSpec(
            time_unit="h",
            protein_unit="g/L",
            impurity_unit="g/L",
            epoch_hours=12.0,
            horizon_hours=192.0,
            protein_cap=20.0,
            impurity_limit=1.0,
            price=10.0,
            impurity_cost=20.0,
            cost_per_epoch=1.0,
            failure_penalty=60.0,
            reward_unit="kEUR",
        )
        return World(name, spec, 0.04, 0.06)
    raise ValueError(name_error(name))


def table(world: World, p: np.ndarray, i: np.ndarray, ids: list[str], upto: int) -> pd.DataFrame:
    """Long run table of the measurements at epochs ``0..upto``."""
    n = upto + 1
    return pd.DataFrame(
        {
            "run_id": np.repeat(ids, n),
            "time": np.tile(np.arange(n) * world.spec.epoch_hours, len(ids))
            / {"h": 1.0, "d": 24.0, "min": 1.0 / 60.0}[world.spec.time_unit],
            "protein": p[:, :n].ravel(),
            "impurity": i[:, :n].ravel(),
        }
    )


def walk(
    world: World,
    history: pd.DataFrame,
    p_true: np.ndarray,
    i_true: np.ndarray,
    p_meas: np.ndarray,
    i_meas: np.ndarray,
    window: str,
    seed: int,
) -> int:
    """Harvest epoch chosen by ``harvest_decision`` walking one run epoch by epoch."""
    spec = dataclasses.replace(world.spec, growth_window=window)
    limit = spec.impurity_limit if spec.impurity_limit is not None else 40.0 * i_true[0]
    for t in range(world.T + 1):
        if t > 0 and i_true[t] > limit:
            return t  # failed on the way: realised() scores it
        if t == world.T:
            return t
        now = table(world, p_meas[None], i_meas[None], ["NOW"], t)
        try:
            decision = harvest_decision(history, now, spec=spec, random_seed=seed)
        except HarvestDataError:
            return t  # the measured impurity is past the limit: the batch has failed
        if decision.harvest:
            return t
    return world.T


def run_world(name: str, seed: int, n_runs: int, windows: tuple[str, ...]) -> list[dict[str, Any]]:
    """Every method on ``n_runs`` new runs after one history of ``name`` (seed ``seed``)."""
    world = make_world(name)
    rng = np.random.default_rng([seed, WORLDS.index(name)])
    hp, hi = world.paths(N_HISTORY, rng)
    history = table(
        world, *world.measure(hp, hi, rng), [f"H{k}" for k in range(N_HISTORY)], world.T
    )
    p, i = world.paths(n_runs, rng)
    pm, im = world.measure(p, i, rng)
    pool_p, pool_i = world.paths(400, rng)
    by_epoch = [
        np.mean([world.realised(pool_p[r], pool_i[r], tau)[0] for r in range(400)])
        for tau in range(world.T + 1)
    ]
    fixed = int(np.argmax(by_epoch))
    rows = []
    for r in range(n_runs):
        best = max(range(world.T + 1), key=lambda tau: world.realised(p[r], i[r], tau)[0])
        taus = {"fixed": fixed, "hindsight": best}
        for window in windows:
            taus[window] = walk(world, history, p[r], i[r], pm[r], im[r], window, seed + r)
        for method, tau in taus.items():
            reward, failed = world.realised(p[r], i[r], tau)
            rows.append(
                {
                    "world": name,
                    "seed": seed,
                    "run": r,
                    "method": method,
                    "epoch": tau,
                    "reward": reward,
                    "failed": failed,
                }
            )
    return rows


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worlds", nargs="+", choices=list(WORLDS), default=list(WORLDS))
    parser.add_argument("--seeds", type=int, default=2, help="histories per world (default 2)")
    parser.add_argument(
        "--first-seed", type=int, default=0, help="seed of the first history (default 0)"
    )
    parser.add_argument("--runs", type=int, default=20, help="new runs per history (default 20)")
    parser.add_argument(
        "--windows",
        nargs="+",
        choices=["ahead", "epochs", "all"],
        default=["ahead", "epochs", "all"],
        help="growth windows of harvest_decision to compare (default all three)",
    )
    parser.add_argument("--out", help="CSV file for the per-run rows")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the slowing warning is expected in two worlds
        for name in args.worlds:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                rows += run_world(name, seed, args.runs, tuple(args.windows))
    res = pd.DataFrame(rows)
    print(
        f"{len(args.worlds)} worlds x {args.seeds} histories x {args.runs} new runs "
        f"({time.perf_counter() - t0:.0f} s)\n"
    )
    hind = res[res["method"] == "hindsight"].set_index(["world", "seed", "run"])["reward"]
    res["share"] = (
        res["reward"].to_numpy()
        / hind.reindex(pd.MultiIndex.from_frame(res[["world", "seed", "run"]])).to_numpy()
    )
    summary = res.groupby(["world", "method"], sort=False).agg(
        reward=("reward", "mean"),
        of_hindsight=("reward", "sum"),
        epoch=("epoch", "mean"),
        failed=("failed", "mean"),
    )
    total = hind.groupby("world").sum()
    summary["of_hindsight"] = (
        100.0
        * summary["of_hindsight"]
        / total.reindex(summary.index.get_level_values("world")).to_numpy()
    )
    summary["failed"] *= 100.0
    summary.columns = ["mean reward", "% of hindsight", "mean epoch", "failed %"]
    with pd.option_context("display.width", 120):
        print(summary.round(2).to_string())
    if args.out:
        res.to_csv(args.out, index=False)
        print(f"rows written to {args.out}")
    return res


if __name__ == "__main__":
    main()
