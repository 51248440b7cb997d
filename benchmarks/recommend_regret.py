"""Regret study: how good are recommended setpoints, judged against the simulator's truth?

For each number of historical batches ``n`` and each seed: simulate a plant history
(``design="historical"``, 3 scales x 3 sites, 6 campaigns, 6 % CV noise), fit LASSO, Random
Forest and the hierarchical Bayesian model on the same table, and recommend a setpoint for two
target groups (production scale ``2000L/A``, few batches; pilot scale ``200L/A``, most batches)
with each recommender:

* ``recipe``          -- keep the group's median historical setpoint;
* ``lasso_argmax``    -- :func:`bayesbio.interpret.argmax_setpoint` on LassoYield;
* ``rf_argmax``       -- the same on ForestYield;
* ``bayes_mean``      -- posterior-mean argmax, no extrapolation guard;
* ``bayes_mean_guard``-- posterior-mean argmax within the data support (the ``mean_optimal``
  of the risk-aware recommendation);
* ``bayes_risk``      -- :func:`bayesbio.recommend.recommend` with its defaults (CVaR 10 %,
  new-batch noise, extrapolation guard).

Score: regret = true optimum yield minus the true mean yield at the recommended setpoint, in
% of the optimum (``truth.optimum``, ``truth.mean_yield``; the campaign shift only scales the
level, so it is left out). Also the design space (``spec`` = 80 % of the group's true
optimum, ``prob`` = 0.9, a 7^4 grid): its calibration is the share of grid points inside it
whose true ``P(yield >= spec)`` (from the truth mean and the log-normal noise) is >= 0.9.

Run: ``python benchmarks/recommend_regret.py`` (default: n = 20, 40, 100 x 20 seeds) or
``--quick`` (n = 20, 40 x 3 seeds, short chains). ``--out DIR`` saves the tidy results and
the regret figure.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import stats

from bayesbio.interpret import argmax_setpoint
from bayesbio.models.baselines import ForestYield, LassoYield
from bayesbio.models.bayesian import BayesianYieldModel
from bayesbio.recommend import design_space, recommend
from bayesbio.simulate import simulate_batches
from bayesbio.space import ProcessSpace

if TYPE_CHECKING:
    from matplotlib.axes import Axes

SPACE = ProcessSpace.default()

PARAMS = list(SPACE.factor_names)
TARGETS = ({"scale": "2000L", "site": "A"}, {"scale": "200L", "site": "A"})
RECOMMENDERS = (
    "recipe",
    "lasso_argmax",
    "rf_argmax",
    "bayes_mean",
    "bayes_mean_guard",
    "bayes_risk",
)
SPEC_FRACTION = 0.8
PROB = 0.9


def _true_prob(truth, X: pd.DataFrame, group: dict, spec: float) -> np.ndarray:
    """True P(yield >= spec): truth mean times log-normal noise with mean 1 and CV noise_cv."""
    mu = truth.mean_yield(X, group)
    s = np.sqrt(np.log1p(truth.noise_cv**2))
    return 1.0 - stats.norm.cdf((np.log(spec / mu) + 0.5 * s**2) / s)


def run_case(n: int, seed: int, fit: dict) -> list[dict]:
    """Simulate, fit the three models and score every recommender for both target groups."""
    rows = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sim = simulate_batches(n, random_seed=seed)
        table, truth = sim.table, sim.truth
        t0 = time.perf_counter()
        # argmax needs only the mean prediction: no bootstrap
        lasso = LassoYield(n_bootstrap=0, random_state=seed).fit(table)
        forest = ForestYield(random_state=seed).fit(table)
        t_base = time.perf_counter() - t0
        t0 = time.perf_counter()
        bayes = BayesianYieldModel(**fit, random_seed=seed).fit(table)
        t_fit = time.perf_counter() - t0
    fit_warnings = sum("converged" in str(w.message) for w in caught)
    for group in TARGETS:
        # the campaign column: the group's most frequent one, as recommend() fills it
        opt = truth.optimum(group)
        optimum = float(opt[SPACE.response.name])
        n_group = int(((table["scale"] == group["scale"]) & (table["site"] == group["site"])).sum())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            t0 = time.perf_counter()
            risk = recommend(bayes, group=group, random_seed=seed)
            t_rec = time.perf_counter() - t0
            mean = recommend(
                bayes, group=group, objective="mean", noise=False,
                constraints={"guard": False}, random_seed=seed,
            )  # fmt: skip
            spec = SPEC_FRACTION * optimum
            ds = design_space(
                bayes, spec, PROB, group=group, resolution=7, map_resolution=2, center=risk,
                random_seed=seed,
            )  # fmt: skip
        diag_warned = any("diagnostics" in str(w.message) for w in caught)
        setpoints = {
            "recipe": risk.recipe[PARAMS],
            "lasso_argmax": argmax_setpoint(lasso, group=group, random_seed=seed)[PARAMS],
            "rf_argmax": argmax_setpoint(forest, group=group, random_seed=seed)[PARAMS],
            "bayes_mean": mean.setpoint[PARAMS],
            "bayes_mean_guard": risk.mean_optimal[PARAMS],
            "bayes_risk": risk.setpoint[PARAMS],
        }
        X = pd.DataFrame([s.to_numpy(dtype=float) for s in setpoints.values()], columns=PARAMS)
        true_mean = truth.mean_yield(X, group)
        grid = ds.grid
        inside = grid["inside"].to_numpy()
        true_p = _true_prob(
            truth, grid[PARAMS], {**group, "campaign": risk.group["campaign"]}, spec
        )
        calib = float((true_p[inside] >= PROB).mean()) if inside.any() else np.nan
        for name, y in zip(setpoints, true_mean, strict=True):
            rows.append(
                {
                    "n": n,
                    "seed": seed,
                    "group": f"{group['scale']}/{group['site']}",
                    "n_group": n_group,
                    "recommender": name,
                    "true_yield": float(y),
                    "optimum": optimum,
                    "regret_pct": 100.0 * (optimum - float(y)) / optimum,
                    "recipe_yield": float(true_mean[0]),
                    "ds_share_inside": float(inside.mean()),
                    "ds_calibration": calib,
                    "ds_true_share": float((true_p >= PROB).mean()),
                    "fit_s": t_fit,
                    "baselines_s": t_base,
                    "recommend_s": t_rec,
                    "fit_warnings": fit_warnings,
                    "diag_warning": diag_warned,
                    "premium_delta_mean": risk.premium["delta_mean"],
                    "premium_delta_q10": risk.premium["delta_q10"],
                }
            )
    return rows


def run_cases(cases: list[tuple[int, int]], fit: dict) -> list[dict]:
    """Run several cases in one worker, so compiled samplers are reused across them."""
    rows = []
    for n, seed in cases:
        t0 = time.perf_counter()
        rows.extend(run_case(n, seed, fit))
        print(f"  n={n} seed={seed} done in {time.perf_counter() - t0:.0f} s", flush=True)
    return rows


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and 90th percentile regret and share worse than the recipe, by n and recommender."""
    results = results.assign(worse=results["true_yield"] < results["recipe_yield"] - 1e-9)
    out = (
        results.groupby(["n", "recommender"], sort=False)
        .agg(
            mean_regret_pct=("regret_pct", "mean"),
            p90_regret_pct=("regret_pct", lambda v: float(np.quantile(v, 0.9))),
            worse_than_recipe_pct=("worse", lambda v: 100.0 * float(np.mean(v))),
            cases=("regret_pct", "size"),
        )
        .reset_index()
    )
    return out


def goals(summary: pd.DataFrame) -> list[str]:
    """Check the goals of the issue; return one line per goal."""
    lines = []
    s = summary.set_index(["n", "recommender"])
    for n, limit in ((40, 5.0), (20, 10.0)):
        if (n, "bayes_risk") in s.index:
            v = s.loc[(n, "bayes_risk"), "mean_regret_pct"]
            lines.append(
                f"risk-aware mean regret at n={n}: {v:.2f} % (goal <= {limit:g} %) "
                + ("MET" if v <= limit else "MISSED")
            )
    for n in sorted(summary["n"].unique()):
        v = s.loc[(n, "bayes_risk"), "mean_regret_pct"]
        others = {
            r: s.loc[(n, r), "mean_regret_pct"]
            for r in ("recipe", "lasso_argmax", "rf_argmax")
            if (n, r) in s.index
        }
        beaten = [r for r, o in others.items() if not v < o]
        lines.append(
            f"n={n}: risk-aware lower than every baseline: "
            + ("MET" if not beaten else f"MISSED (not below {beaten})")
        )
        w = s.loc[(n, "bayes_risk"), "worse_than_recipe_pct"]
        lines.append(
            f"n={n}: risk-aware worse than recipe in {w:.1f} % of cases (goal < 5 %) "
            + ("MET" if w < 5 else "MISSED")
        )
    return lines


def plot_regret_study(results: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Box plot of regret (% of the true optimum) by recommender and number of batches.

    Parameters
    ----------
    results : pandas.DataFrame
        Tidy results with columns ``recommender``, ``n`` and ``regret_pct``.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure when None.

    Returns
    -------
    matplotlib.axes.Axes
        The axes.
    """
    import matplotlib.pyplot as plt

    need = ["recommender", "n", "regret_pct"]
    missing = [c for c in need if c not in results.columns]
    if missing:
        raise ValueError(f"results lacks column(s) {missing}; needs {need}")
    if ax is None:
        _, ax = plt.subplots(figsize=(8.0, 4.0))
    names = list(dict.fromkeys(results["recommender"]))
    ns = sorted(results["n"].unique())
    width = 0.8 / len(names)
    cmap = plt.get_cmap("tab10")
    for i, name in enumerate(names):
        data = [
            results.loc[(results["recommender"] == name) & (results["n"] == n), "regret_pct"]
            .dropna()
            .to_numpy()
            for n in ns
        ]
        pos = np.arange(len(ns)) + (i - (len(names) - 1) / 2) * width
        bp = ax.boxplot(
            data, positions=pos, widths=width * 0.9, patch_artist=True, showfliers=False
        )
        for box in bp["boxes"]:
            box.set_facecolor(cmap(i % 10))
            box.set_alpha(0.7)
        ax.plot([], [], "s", color=cmap(i % 10), label=name)
    ax.set_xticks(np.arange(len(ns)))
    ax.set_xticklabels([f"n = {n}" for n in ns])
    ax.set_ylabel("regret [% of true optimum]")
    ax.legend(fontsize="small", frameon=False, ncol=min(3, len(names)))
    return ax


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 20, 40 x 3 seeds, short fits")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default 20)")
    parser.add_argument("--jobs", type=int, default=2, help="joblib workers (default 2)")
    parser.add_argument("--out", type=Path, default=None, help="folder for CSV and figure")
    args = parser.parse_args(argv)
    ns = (20, 40) if args.quick else (20, 40, 100)
    n_seeds = args.seeds or (3 if args.quick else 20)
    fit = (
        {"draws": 300, "tune": 300, "chains": 2}
        if args.quick
        else {"draws": 500, "tune": 500, "chains": 2}
    )
    print(f"Bayesian fit settings: {fit}, structures quadratic + spline (LOO-stacked), nutpie")
    print(
        f"n = {ns}, seeds = {n_seeds}, targets = {[f'{g["scale"]}/{g["site"]}' for g in TARGETS]}"
    )
    start = time.perf_counter()
    cases = [(n, 1000 + s) for n in ns for s in range(n_seeds)]
    chunks = [cases[i :: args.jobs] for i in range(args.jobs)]
    parts = Parallel(n_jobs=args.jobs)(delayed(run_cases)(chunk, fit) for chunk in chunks)
    results = pd.DataFrame([row for part in parts for row in part])
    elapsed = time.perf_counter() - start
    summary = summarise(results)
    pd.set_option("display.width", 140)
    print("\nRegret (% of the true optimum), both target groups pooled")
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    by_group = summarise(
        results[results["recommender"].isin(["recipe", "bayes_risk"])].assign(
            recommender=lambda d: d["recommender"] + " " + d["group"]
        )
    )
    print("\nBy target group (recipe vs risk-aware)")
    print(by_group.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    risk = results[results["recommender"] == "bayes_risk"]
    ds = risk.groupby("n").agg(
        share_inside=("ds_share_inside", "mean"),
        true_share=("ds_true_share", "mean"),
        calibration=("ds_calibration", "mean"),
        empty_pct=("ds_calibration", lambda v: 100.0 * float(v.isna().mean())),
        premium_delta_mean=("premium_delta_mean", "mean"),
        premium_delta_q10=("premium_delta_q10", "mean"),
        diag_warning_pct=("diag_warning", lambda v: 100.0 * float(v.mean())),
        fit_s=("fit_s", "mean"),
        recommend_s=("recommend_s", "mean"),
    )
    print(
        f"\nDesign space (spec = {SPEC_FRACTION:g} x true optimum, prob = {PROB:g}, 7^4 grid) "
        "and costs, by n"
    )
    print(ds.to_string(float_format=lambda v: f"{v:.3f}"))
    print("\nGoals")
    for line in goals(summary):
        print("  " + line)
    print(f"\nwall time {elapsed / 60:.1f} min with {args.jobs} jobs")
    if args.out is not None:
        import matplotlib

        matplotlib.use("Agg")

        args.out.mkdir(parents=True, exist_ok=True)
        results.to_csv(args.out / "recommend_regret.csv", index=False)
        ax = plot_regret_study(results)
        ax.figure.savefig(args.out / "recommend_regret.png", dpi=120, bbox_inches="tight")
    return results


if __name__ == "__main__":
    main()
