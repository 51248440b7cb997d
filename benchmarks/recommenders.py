"""Recommenders side by side on the same fits of the independent worlds.

``benchmarks/worlds.py`` refits every model for every variant; comparing *recommenders*
needs only the fits, made once. This script fits (or loads, with ``--models-dir``) the
default :class:`~bayesbio.models.BayesianYieldModel` and the random forest on each history of
``bayesbio.worlds`` (7 worlds x seeds x n, the same histories and seeds as worlds.py), then
scores every recommender on the same two target groups per history by its *true* regret:
``100 (optimum - true mean yield at the setpoint) / optimum``. The ``--out`` rows hold each
setpoint and its true mean yield, for reading cases one by one.

Recommenders: ``optimum`` (the group's true optimum: regret 0, for reference),
``support_best`` and ``overall_support_best`` (the best *true* setpoint inside the default
guard's distance limit, against the group's own batches and against all batches: the lowest
regret any recommender held to that support can reach, for reference; the model-based SD-ratio
limit is not applied), ``recipe`` (the world's recipe of the group), ``rf_argmax`` and
``bayes_argmax`` (the mean-optimal setpoint of the random forest and of the Bayesian model in
the whole operating box, :func:`bayesbio.interpret.argmax_setpoint`), ``rec`` (``recommend()``
with its defaults), and variants of ``recommend()`` named in ``RECOMMENDERS``.

It prints the mean and median regret per recommender, the share of cases worse than the
recipe by more than 2 points, how often "improve" was truly better, and the sampling
diagnostics of the fits (max R-hat, min ESS, divergences, share passing every check).

With ``--design-space`` it also scores :func:`~bayesbio.recommend.design_space` per case
(spec = 0.8 x the group's true optimum, required probability 0.9, a 7^k grid through the
``rec`` recommendation) against the world's *true* probability that a new batch meets the
spec (:func:`true_prob_meet`): the share of grid points inside, the share of inside points
that truly meet the spec with probability >= 0.9 (the precision of the design space; the
figure issue 13 calls its calibration), the mean stated and mean true probability over the
inside points (calibration in the large: a design space promises >= 0.9), and the share of
truly qualifying grid points it found (recall).

Run: ``python benchmarks/recommenders.py --n 20 --seeds 2 --models-dir /tmp/fits``
(about 8 minutes on 2 cores for the first run, fits cached; seconds after).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bayesbio.interpret import argmax_setpoint
from bayesbio.models.baselines import ForestYield
from bayesbio.recommend import Constraints, design_space, recommend
from bayesbio.recommend.constraints import support_radius
from bayesbio.recommend.support import Support
from bayesbio.worlds import WORLDS, make_world

sys.path.insert(0, str(Path(__file__).resolve().parent))
from worlds import fitted, sampling_checks, targets  # benchmarks/worlds.py

#: recommend() variants: keyword arguments beside ``group`` and ``random_seed``
RECOMMENDERS: dict[str, dict[str, object]] = {
    "rec": {},
    "rec_reach": {"constraints": Constraints(max_reach=0.25)},
    "rec_transfer": {"transfer_risk": True},
    "rec_ungated": {"min_confidence": None},
    "rec_mean": {"objective": "mean", "min_confidence": None},
    "rec_overall": {"constraints": Constraints(support="overall")},
    "rec_mean_gated": {"objective": "mean"},
    "rec_quantile": {"objective": "quantile"},
    "rec_noise_free": {"noise": False},
    "rec_gate95": {"min_confidence": 0.95},
    "rec_overall_sd15": {"constraints": Constraints(support="overall", max_sd_ratio=1.5)},
    "rec_overall_transfer": {"constraints": Constraints(support="overall"), "transfer_risk": True},
}


#: design-space scoring: spec as a share of the group's true optimum, required probability
DS_SPEC_FRACTION, DS_PROB, DS_RESOLUTION = 0.8, 0.9, 7


def true_prob_meet(world, points: np.ndarray, group: dict[str, str], spec: float) -> np.ndarray:
    """The world's probability that a new batch at each point yields at least ``spec``.

    A normal batch is log-normal around the true mean (``world.noise_sd`` gives its CV); a
    failed batch yields at most 30 % of a normal one, taken never to meet a spec of 80 % of
    the optimum.
    """
    from scipy import stats

    mean = world.mean_yield(points, group)
    cv = world.noise_sd(points, group) / mean
    s2 = np.log1p(cv**2)
    z = (np.log(mean) - 0.5 * s2 - np.log(spec)) / np.sqrt(s2)
    return (1.0 - world.failure_prob(points, group)) * stats.norm.cdf(z)


def design_space_scores(
    world, bayes, group: dict[str, str], optimum: float, center, seed: int, **kwargs
):
    """Score the Bayesian design space of one case against the world's true probabilities.

    ``kwargs`` go to :func:`design_space` (e.g. ``transfer_risk=True``).
    """
    spec = DS_SPEC_FRACTION * optimum
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = design_space(
            bayes, spec, DS_PROB, group=group, resolution=DS_RESOLUTION, map_resolution=2,
            center=center, random_seed=seed, **kwargs,
        )  # fmt: skip
    grid = ds.grid
    inside = grid["inside"].to_numpy(dtype=bool)
    true_p = true_prob_meet(world, grid[list(world.factors)].to_numpy(dtype=float), group, spec)
    qualifies = true_p >= DS_PROB
    return {
        "ds_inside_share": float(inside.mean()),
        "ds_precision": float(qualifies[inside].mean()) if inside.any() else np.nan,
        "ds_stated_p": float(grid["prob"].to_numpy()[inside].mean()) if inside.any() else np.nan,
        "ds_true_p": float(true_p[inside].mean()) if inside.any() else np.nan,
        "ds_recall": float(inside[qualifies].mean()) if qualifies.any() else np.nan,
    }


#: support optimum: random candidates per round inside the support's bounding box, rounds
SUPPORT_CANDIDATES, SUPPORT_ROUNDS = 40_000, 3


def support_best(world, table: pd.DataFrame, group: dict[str, str], which: str) -> pd.Series:
    """The best true setpoint of ``group`` inside the default guard's distance limit.

    ``which`` is ``"group"`` or ``"overall"`` support (:class:`Support`, built as
    ``recommend()`` builds it; radius :func:`support_radius`); random candidates in the
    support's bounding box (clipped to the operating box), the best true mean yield kept.
    """
    space = world.space
    factors = list(world.factors)
    points = table[factors].to_numpy(dtype=float)
    labels = (table["scale"] + "/" + table["site"]).to_numpy()
    in_group = ((table["scale"] == group["scale"]) & (table["site"] == group["site"])).to_numpy()
    support = Support(points, labels, in_group, space)
    radius = support_radius(len(support.dims))
    lo, hi = support.bounding_box(which, radius)
    lo, hi = np.maximum(lo, space.lower[support.dims]), np.minimum(hi, space.upper[support.dims])
    rng = np.random.default_rng(0)
    best, best_value = world.recipe(group)[factors].to_numpy(dtype=float), -np.inf
    for _ in range(SUPPORT_ROUNDS):
        cand = np.tile(best, (SUPPORT_CANDIDATES, 1))
        cand[:, support.dims] = rng.uniform(lo, hi, size=(SUPPORT_CANDIDATES, len(lo)))
        cand = cand[support.guard_distance(cand, which) <= radius]
        if len(cand):
            values = world.mean_yield(cand, group)
            if values.max() > best_value:
                best, best_value = cand[np.argmax(values)], float(values.max())
    return pd.Series(best, index=factors)


def true_mean(world, setpoint: pd.Series, group: dict[str, str]) -> float:
    """The world's true expected yield of ``group`` at ``setpoint``."""
    x = setpoint[list(world.factors)].to_numpy(dtype=float)[None]
    return float(world.mean_yield(x, group)[0])


def run_history(
    world_name: str,
    n: int,
    seed: int,
    cache: Path | None,
    recommenders: dict[str, dict],
    structures: tuple[str, ...] | None = None,
    score_design_space: bool = False,
) -> list[dict]:
    """Fit (or load) one history's models and score every recommender; tidy rows.

    With ``score_design_space`` each row also holds its case's design-space scores
    (:func:`design_space_scores`, centred at the ``rec`` recommendation when it was run; with
    ``rec_transfer`` also the design space with transfer risk, columns ``ds_transfer_*``).
    """
    world = make_world(world_name, random_seed=seed)
    table, _, _ = world.sample(n, random_seed=seed)
    bayes, fit_s = fitted(world_name, n, seed, table, cache, structures)
    sampling = sampling_checks(bayes.diagnostics_)
    rf = ForestYield(random_state=seed).fit(table)
    rows = []
    for group in targets(table, world.scale_names):
        optimum = float(world.optimum(group)["yield"])
        base = {"world": world_name, "n": n, "seed": seed,
                "group": f"{group['scale']}/{group['site']}", "fit_s": fit_s,
                **sampling}  # fmt: skip
        setpoints = {
            "optimum": world.optimum(group),
            "support_best": support_best(world, table, group, "group"),
            "overall_support_best": support_best(world, table, group, "overall"),
            "recipe": world.recipe(group),
            "rf_argmax": argmax_setpoint(rf, group=group, random_seed=seed),
            "bayes_argmax": argmax_setpoint(bayes, group=group, random_seed=seed),
        }
        info: dict[str, dict] = {}
        recs = {}
        for name, kwargs in recommenders.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                recs[name] = rec = recommend(bayes, group=group, random_seed=seed, **kwargs)
            setpoints[name] = rec.setpoint
            info[name] = {"decision": rec.decision, "p_better": rec.p_better_than_recipe,
                          "gain_pct": rec.expected_gain_pct}  # fmt: skip
        if score_design_space:
            centre = recs.get("rec")
            base.update(design_space_scores(world, bayes, group, optimum, centre, seed))
            if "rec_transfer" in recs:  # the same with transfer risk, through its setpoint
                scores = design_space_scores(
                    world, bayes, group, optimum, recs["rec_transfer"], seed, transfer_risk=True
                )
                base.update({k.replace("ds_", "ds_transfer_"): v for k, v in scores.items()})

        recipe_value = true_mean(world, setpoints["recipe"], group)
        for method, s in setpoints.items():
            value = true_mean(world, s, group)
            rows.append({**base, "method": method,
                         "regret": 100.0 * (optimum - value) / optimum,
                         "true_mean": value,
                         "true_gain_pct": 100.0 * (value - recipe_value) / recipe_value,
                         **{f: float(s[f]) for f in world.factors},
                         **info.get(method, {})})  # fmt: skip
    return rows


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Per n and recommender: mean / median regret, share worse than the recipe, hit rate."""
    recipe = rows[rows["method"] == "recipe"].set_index(["world", "n", "seed", "group"])["regret"]
    out = []
    for (n, method), part in rows.groupby(["n", "method"], sort=False):
        keyed = part.set_index(["world", "n", "seed", "group"])
        worse = keyed["regret"] > recipe.reindex(keyed.index) + 2.0
        line = {
            "n": n,
            "method": method,
            "mean_regret": part["regret"].mean(),
            "median_regret": part["regret"].median(),
            "worse_than_recipe": worse.mean(),
        }
        if "decision" in part and part["decision"].notna().any():
            improve = part[part["decision"] == "improve"]
            line["improve_share"] = len(improve) / len(part)
            line["improve_truly_better"] = (
                float((improve["true_gain_pct"] > 0).mean()) if len(improve) else np.nan
            )
            line["stated_p_better"] = improve["p_better"].mean() if len(improve) else np.nan
        out.append(line)
    return pd.DataFrame(out)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worlds", nargs="+", choices=list(WORLDS), help="worlds to run")
    parser.add_argument("--n", nargs="+", type=int, default=[20], help="history sizes")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per world and n")
    parser.add_argument("--models-dir", type=Path, help="cache of fitted default models")
    parser.add_argument("--out", type=Path, help="CSV file for the per-case rows")
    parser.add_argument(
        "--structures", nargs="+", help="the Bayesian model's structures (default: its default)"
    )
    parser.add_argument(
        "--recommenders",
        nargs="+",
        choices=list(RECOMMENDERS),
        default=list(RECOMMENDERS),
        help="recommend() variants to run (default all)",
    )
    parser.add_argument(
        "--design-space", action="store_true", help="also score design_space() per case"
    )
    args = parser.parse_args(argv)
    worlds = args.worlds or list(WORLDS)
    if args.models_dir is not None:
        args.models_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = []
    for w in worlds:
        for n in args.n:
            for s in range(args.seeds):
                chosen = {name: RECOMMENDERS[name] for name in args.recommenders}
                structures = tuple(args.structures) if args.structures else None
                rows += run_history(w, n, s, args.models_dir, chosen, structures, args.design_space)
    results = pd.DataFrame(rows)
    print(f"{len(results)} rows in {time.perf_counter() - t0:.0f} s\n")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        results.to_csv(args.out, index=False)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(summarise(results).round(3).to_string(index=False))
        fits = results.drop_duplicates(["world", "n", "seed"])
        print("\nsampling per Bayesian fit (mean; min ESS bulk or tail, all structures)")
        columns = ["max_rhat", "min_ess", "divergences", "passes_checks"]
        print(fits.groupby("n")[columns].mean().round(3).to_string())
        if args.design_space:
            cases = results.drop_duplicates(["world", "n", "seed", "group"])
            scores = [c for c in cases.columns if c.startswith("ds_")]
            print(f"\ndesign space (spec {DS_SPEC_FRACTION:g} x true optimum, prob {DS_PROB:g}):"
                  " mean over cases, by n and by world")  # fmt: skip
            print(cases.groupby("n")[scores].mean().round(3).to_string())
            print(cases.groupby(["n", "world"])[scores].mean().round(3).to_string())
        print("\nmean regret % per world")
        print(results.pivot_table(index=["n", "world"], columns="method",
                                  values="regret").round(1).to_string())  # fmt: skip
    return results


if __name__ == "__main__":
    main()
