"""The end-to-end study: simulate or read, clean, EDA, compare, fit, recommend, harvest.

:func:`run_study` runs every stage of bayesbio on one batch table of one process (a
:class:`~bayesbio.space.ProcessSpace`; default the demo process) with one ``random_seed`` and
writes tables, figures, the fitted model and a self-contained HTML report into an output
folder. Without ``data`` the table is simulated for the space with labelled defects, so every
claim in the report is also scored against the simulator's ground truth; on a user's own
table (``data=``) the same stages run without the truth columns.
"""

from __future__ import annotations

import logging
import re
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from bayesbio import schema
from bayesbio.models.protocol import YieldModel
from bayesbio.report import Report
from bayesbio.space import ProcessSpace, resolve_space

__all__ = ["StudyConfig", "StudyResult", "read_table", "run_study"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudyConfig:
    """Settings of the end-to-end study.

    Attributes
    ----------
    n_batches : int, default 48
        Simulated historical batches (default scenario only).
    design : str, default "historical"
        Simulation design.
    defects : bool, default True
        Inject labelled data defects into the simulated table.
    clean_policy : str, default "default"
        Cleaning policy name (:data:`bayesbio.clean.POLICIES`).
    cv_splits : int, default 5
        Folds of the model comparison.
    draws, tune, chains : int, default 1000, 1000, 4
        MCMC settings of the Bayesian model.
    structures : tuple of str, default ("quadratic", "spline")
        Response-surface structures stacked for model risk.
    spec_quantile : float, default 0.5
        The yield spec of the design space is this quantile of the cleaned yields, unless
        ``spec`` is given.
    spec : float or None, default None
        Yield specification, g/L.
    prob : float, default 0.8
        Required probability of meeting the spec inside the design space.
    objective : str, default "cvar"
        Recommendation objective (see :func:`bayesbio.recommend.recommend`).
    harvest_replications : int, default 100
        Replications of the harvest case study.
    harvest_sizes : tuple of int, default (3, 10)
        Historical data sizes of the harvest case study.
    harvest : bool or None, default None
        Run the harvest case study (a growth-model study of its own, independent of the
        batch table). None: only for the demo process.
    design_resolution : int, default 6
        Grid points per factor of the design-space search.
    """

    n_batches: int = 48
    design: str = "historical"
    defects: bool = True
    clean_policy: str = "default"
    cv_splits: int = 5
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    structures: tuple[str, ...] = ("quadratic", "spline")
    spec_quantile: float = 0.5
    spec: float | None = None
    prob: float = 0.8
    objective: str = "cvar"
    harvest_replications: int = 100
    harvest_sizes: tuple[int, ...] = (3, 10)
    harvest: bool | None = None
    design_resolution: int = 6

    @classmethod
    def quick(cls) -> StudyConfig:
        """Return a reduced configuration for smoke runs and tests (about a minute)."""
        return cls(
            n_batches=30,
            cv_splits=3,
            draws=200,
            tune=200,
            chains=2,
            structures=("quadratic",),
            harvest_replications=20,
            harvest_sizes=(3,),
        )


@dataclass
class StudyResult:
    """What :func:`run_study` produced.

    Attributes
    ----------
    out_dir : pathlib.Path
        The output folder.
    report_path : pathlib.Path
        The HTML report.
    tables : dict of str to pandas.DataFrame
        Every table written (also as CSV in ``out_dir``).
    warnings : list of str
        Every warning raised during the study (also at the top of the report).
    timings : dict of str to float
        Wall time per stage, seconds.
    model : YieldModel
        The fitted Bayesian yield model.
    space : ProcessSpace
        The process the study ran on.
    """

    out_dir: Path
    report_path: Path
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    model: YieldModel | None = None
    space: ProcessSpace | None = None


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a user's batch table (see :func:`bayesbio.io.read_table`).

    CSV/TSV in any common encoding, delimiter and decimal separator, Excel ``.xlsx`` or Parquet.

    Parameters
    ----------
    path : str or path
        The data file.

    Returns
    -------
    pandas.DataFrame
        The raw table.

    Raises
    ------
    bayesbio.io.ReadError
        A one-line message naming the file and what to do (missing file, unsupported format,
        duplicate column names, unreadable encoding, ...); a ``ValueError``.
    """
    from bayesbio.io import read_table as _read

    return _read(path)


class _Stages:
    """Runs named stages, timing them, collecting warnings and reporting progress."""

    def __init__(self, progress: Callable[[str, int, int], None] | None, total: int) -> None:
        self.progress = progress
        self.total = total
        self.done = 0
        self.timings: dict[str, float] = {}
        self.warnings: list[str] = []

    def run(self, name: str, func: Callable[[], Any]) -> Any:
        if self.progress is not None:
            self.progress(name, self.done, self.total)
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = func()
        self.timings[name] = time.perf_counter() - start
        for w in caught:
            message = f"[{name}] {w.category.__name__}: {w.message}"
            if message not in self.warnings:
                self.warnings.append(message)
        self.done += 1
        if self.progress is not None:
            self.progress(name, self.done, self.total)
        _log.info("study stage %s took %.1f s", name, self.timings[name])
        return result


def _safe_name(name: str) -> str:
    """Return ``name`` usable as a file name on every OS (group labels may hold "/" or spaces)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", str(name)).strip("-.")
    return safe or "unnamed"


def _save(tables: dict[str, pd.DataFrame], out: Path, name: str, frame: pd.DataFrame) -> None:
    name = _safe_name(name)
    tables[name] = frame
    frame.to_csv(out / f"{name}.csv", index=False)


def _savefig(report: Report, out: Path, name: str, fig: Any, caption: str) -> None:
    figure = fig if hasattr(fig, "savefig") else fig.figure
    figure.savefig(out / "figures" / f"{_safe_name(name)}.png", dpi=100, bbox_inches="tight")
    report.figure(figure, caption)
    plt.close(figure)


def _cleaning_notices(log: pd.DataFrame) -> list[str]:
    """Return the cleaning actions to confirm: renamed or converted columns, merged labels."""
    if not len(log) or not {"action", "reason", "column"} <= set(log.columns):
        return []
    notes = [
        f"[clean] {reason}"
        for reason in log.loc[log["action"].isin(["renamed", "converted"]), "reason"].unique()
    ]
    labels = log[log["reason"].astype(str).str.startswith("group label normalised")]
    for col, part in labels.groupby("column", sort=False):
        merged = [str(r).split(": ", 1)[-1] for r in part["reason"].unique()]
        shown = ", ".join(merged[:5]) + (f" and {len(merged) - 5} more" if len(merged) > 5 else "")
        notes.append(
            f"[clean] group labels merged in {col!r} ({len(part)} row(s)): {shown}; check that "
            "these are spellings of one label"
        )
    return notes


def _site_groups(groups: Sequence[str], table: pd.DataFrame) -> list[dict[str, str]]:
    """Return the groups to recommend for: the best-documented group of each first-level.

    With ``groups = ["scale", "site"]`` this is, for every scale, the site with the most
    batches, so the production scale is covered even when it has few batches.
    """
    cols = [c for c in groups if c in table.columns]
    if not cols:
        return [{}]
    counts = table.groupby(cols).size().sort_values(ascending=False, kind="stable")
    chosen: dict[str, dict[str, str]] = {}
    for key in counts.index:
        key = key if isinstance(key, tuple) else (key,)
        chosen.setdefault(str(key[0]), dict(zip(cols, map(str, key), strict=True)))
    return list(chosen.values())


def run_study(
    out_dir: str | Path,
    *,
    data: pd.DataFrame | None = None,
    columns: Mapping[str, str] | None = None,
    groups: Sequence[str] | None = None,
    config: StudyConfig | None = None,
    random_seed: int = 2024,
    progress: Callable[[str, int, int], None] | None = None,
    space: ProcessSpace | str | Path | None = None,
) -> StudyResult:
    """Run the whole bayesbio workflow and write its outputs and an HTML report.

    Parameters
    ----------
    out_dir : str or path
        Output folder (created). Receives CSV tables, ``figures/*.png``, the fitted model
        (``model.nc``) and ``report.html``. File names made from group labels are sanitised
        (``"North/1"`` -> ``North-1``).
    data : pandas.DataFrame, optional
        The user's raw batch table. Default: simulate the space (labelled defects, known
        truth).
    columns : mapping of str to str, optional
        ``{user_name: space_name}`` for ``data`` with other column names (the space's own
        ``[columns]`` mapping is applied by the cleaner as well).
    groups : sequence of str, optional
        Group columns to pool over; default the space's group columns present in the cleaned
        table, without ``campaign``.
    config : StudyConfig, optional
        Study settings; default ``StudyConfig()``.
    random_seed : int, default 2024
        The one seed of the study.
    progress : callable, optional
        ``progress(stage, done, total)``, called before and after each stage.
    space : ProcessSpace, path to a TOML file or None, default None
        The process: factors, units, operating ranges, response, groups. Every stage reads it
        (validation, cleaning, EDA, models, recommendations, design spaces, report). None: the
        demo process.

    Returns
    -------
    StudyResult
        Paths, tables, warnings, timings, the fitted model and the space.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`StudyConfig`.
    bayesbio.space.SpaceError
        If ``space`` cannot be read or the table does not fit it.
    """
    from bayesbio import clean as clean_mod
    from bayesbio import eda, evaluate, harvest, recommend, simulate
    from bayesbio.models import BayesianYieldModel, ForestYield, LassoYield
    from bayesbio.models import posterior_plots as pplots

    cfg = config or StudyConfig()
    if not isinstance(cfg, StudyConfig):
        raise TypeError(f"config must be a StudyConfig, got {type(cfg).__name__}")
    space = resolve_space(space)
    demo = space.fingerprint == ProcessSpace.default().fingerprint
    run_harvest = demo if cfg.harvest is None else bool(cfg.harvest)
    response = space.response
    factors = list(space.factor_names)
    out = Path(out_dir)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    seeds = np.random.SeedSequence(random_seed).generate_state(8)
    stages = _Stages(progress, total=6 + (data is None) + run_harvest)
    tables: dict[str, pd.DataFrame] = {}
    report = Report(f"bayesbio study: {space.name}")
    report.meta.update(
        {
            "process": space.name,
            "data": "simulated from the process space" if data is None else "user table",
            "random_seed": str(random_seed),
            "config": ", ".join(f"{k}={v}" for k, v in asdict(cfg).items()),
        }
    )
    report.section("Process")
    report.describe_space(space)

    # 1. data
    truth = None
    if data is None:
        sim = stages.run(
            "simulate",
            lambda: simulate.simulate_batches(
                cfg.n_batches,
                design=cfg.design,
                defects=cfg.defects,
                random_seed=int(seeds[0]),
                space=space,
            ),
        )
        raw, truth, labels = sim
        _save(tables, out, "defect_labels", labels)
    else:
        raw = schema.rename_columns(data, columns)
    _save(tables, out, "raw_batches", raw)

    # 2. clean
    cleaned = stages.run("clean", lambda: clean_mod.clean(raw, cfg.clean_policy, space=space))
    table, log = cleaned.table, cleaned.log
    clean_warnings = [f"[clean] {w}" for w in getattr(cleaned, "warnings", None) or []]
    clean_warnings += _cleaning_notices(log)
    _save(tables, out, "clean_batches", table)
    _save(tables, out, "cleaning_log", log)
    if groups is None:
        groups = [g for g in space.group_columns(table) if g != "campaign"]
    groups = list(groups)
    report.section("Data and cleaning")
    n_dropped = int((log["action"] == "dropped").sum()) if len(log) else 0
    report.text(
        f"{len(raw)} raw batches; {len(table)} kept after cleaning, {n_dropped} dropped "
        f"(each with a reason in the audit log); {len(log)} logged actions in total. "
        f"Group columns pooled over: {groups or 'none'}."
    )
    if len(log):
        counts = log.groupby(["action", "reason"]).size().rename("batches").reset_index()
        report.table(counts, caption="Cleaning actions by reason")
    per_column = getattr(cleaned, "column_summary", None)
    if isinstance(per_column, pd.DataFrame) and len(per_column):
        _save(tables, out, "cleaning_columns", per_column)
        report.table(per_column, caption="Cleaning actions per column")
    if truth is not None and len(labels):
        found = labels.merge(log[["row"]].drop_duplicates(), on="row", how="left", indicator=True)
        score = (
            found.assign(detected=found["_merge"] == "both")
            .groupby("defect")["detected"]
            .agg(["size", "mean"])
            .rename(columns={"size": "injected", "mean": "detected share"})
            .reset_index()
        )
        _save(tables, out, "cleaning_score", score)
        report.table(score, caption="Injected defects found by the cleaner (simulator labels)")

    # 3. EDA
    eda_result = stages.run(
        "eda",
        lambda: eda.run_eda(
            table, groups=groups or None, group=groups[0] if groups else None, space=space
        ),
    )
    report.section("Exploratory data analysis")
    report.table(eda_result.summary, caption="Summary per group")
    _save(tables, out, "eda_summary", eda_result.summary)
    for name, fig in eda_result.figures.items():
        _savefig(report, out, f"eda_{name}", fig, name.replace("_", " "))

    # 4. model comparison on identical folds
    def bayes_model(seed: int) -> BayesianYieldModel:
        return BayesianYieldModel(
            groups=groups,
            structures=cfg.structures,
            draws=cfg.draws,
            tune=cfg.tune,
            chains=cfg.chains,
            random_seed=seed,
            space=space,
        )

    models = {
        "LASSO": LassoYield(groups=groups, random_state=int(seeds[1]) % 2**31, space=space),
        "RandomForest": ForestYield(groups=groups, random_state=int(seeds[1]) % 2**31, space=space),
        "Bayesian": bayes_model(int(seeds[2]) % 2**31),
    }
    comparison = stages.run(
        "compare",
        lambda: evaluate.compare(
            models,
            table,
            cv="kfold",
            n_splits=cfg.cv_splits,
            random_seed=int(seeds[3]) % 2**31,
            space=space,
        ),
    )
    summary = comparison.summary.reset_index()
    _save(tables, out, "comparison_scores", comparison.scores)
    _save(tables, out, "comparison_summary", summary)
    report.section("Model comparison (same folds for every model)")
    report.table(summary, caption=f"{cfg.cv_splits}-fold cross-validation, mean and SE")
    _savefig(report, out, "comparison_scores", evaluate.plot_scores(comparison), "RMSE by model")
    _savefig(
        report,
        out,
        "comparison_pred_obs",
        evaluate.plot_predicted_vs_observed(comparison),
        "Out-of-fold predicted vs observed",
    )

    # 5. the Bayesian model on all data
    model = stages.run("fit", lambda: bayes_model(int(seeds[4]) % 2**31).fit(table))
    model.save(out / "model.nc")
    diag = pd.DataFrame(model.diagnostics_).T.rename_axis("structure").reset_index()
    report.section("Hierarchical Bayesian model")
    report.text(
        f"Structures {list(cfg.structures)} stacked by LOO; weights "
        f"{getattr(model, 'stacking_weights_', {})}. {cfg.chains} chains x {cfg.draws} draws."
    )
    _save(tables, out, "diagnostics", diag)
    report.table(diag, caption="Convergence diagnostics (R-hat <= 1.01, ESS >= 400, 0 div.)")
    for name, plot in (
        ("posterior_effects", pplots.plot_marginal_effects),
        ("posterior_ppc", pplots.plot_ppc),
        ("posterior_forest", pplots.plot_group_effects),
        ("posterior_trace", pplots.plot_trace),
    ):
        _savefig(report, out, name, plot(model), name.replace("_", " "))

    # 6. recommendations and design spaces per group
    spec = (
        cfg.spec
        if cfg.spec is not None
        else float(table[response.name].quantile(cfg.spec_quantile))
    )
    unit = response.unit

    def recommend_all() -> tuple[pd.DataFrame, list[Any], list[Any]]:
        rows, recs, spaces = [], [], []
        for i, grp in enumerate(_site_groups(groups, table)[:3]):
            rec = recommend.recommend(
                model,
                group=grp or None,
                objective=cfg.objective,
                spec=spec,
                random_seed=int(seeds[5]) + i,
            )
            ds = recommend.design_space(
                model,
                spec,
                cfg.prob,
                group=grp or None,
                center=rec,
                resolution=cfg.design_resolution,
                map_resolution=20,
                n_draws=500,
                random_seed=int(seeds[6]) + i,
            )
            frame = rec.to_frame().rename_axis("setpoint").reset_index()
            if grp:
                frame = frame.assign(**grp)
            if truth is not None and set(truth.groups.columns) <= set(grp):
                best = float(truth.optimum(grp)[response.name])
                true_at = truth.mean_yield(frame[factors], group=grp)
                regret = best - true_at if response.maximise else true_at - best
                frame = frame.assign(
                    true_optimum=best,
                    true_mean_yield=true_at,
                    true_regret_pct=100 * regret / abs(best),
                )
            rows.append(frame)
            recs.append((grp, rec))
            spaces.append((grp, ds))
        return pd.concat(rows, ignore_index=True), recs, spaces

    rec_table, recs, spaces = stages.run("recommend", recommend_all)
    _save(tables, out, "recommendations", rec_table)
    report.section("Risk-aware setpoint recommendations and design spaces")
    meets = ">=" if response.maximise else "<="
    report.text(
        f"Objective {cfg.objective!r}; {response.label.lower()} spec {spec:.3g} {unit}; design "
        f"space = setpoints with P(new batch {meets} spec) >= {cfg.prob:g}. Factors searched "
        f"over their operating ranges: "
        + ", ".join(
            f"{f.name} {f.operating[0]:g}-{f.operating[1]:g} {f.unit}" for f in space.factors
        )
        + "."
    )
    report.table(rec_table, caption="Recommendation per group")
    for grp, rec in recs:
        label = "_".join(grp.values()) or "all"
        _savefig(
            report,
            out,
            f"recommendation_{label}",
            recommend.plot_recommendation(rec),
            f"Predictive {response.label.lower()} at recipe vs recommendation, {grp}",
        )
    for grp, ds in spaces:
        label = "_".join(grp.values()) or "all"
        _save(tables, out, f"design_space_par_{label}", ds.par)
        report.table(ds.par, caption=f"Proven acceptable ranges, {grp}")
        _savefig(
            report,
            out,
            f"design_space_{label}",
            recommend.plot_design_space(ds),
            f"Design space maps (every factor pair), {grp}",
        )

    # 7. harvest case study
    if run_harvest:
        case = stages.run(
            "harvest",
            lambda: harvest.harvest_case_study(
                scenarios=("default",),
                n_values=cfg.harvest_sizes,
                n_replications=cfg.harvest_replications,
                random_seed=int(seeds[7]) % 2**31,
                table2=False,
                fig4_n=cfg.harvest_sizes[:2],
            ),
        )
        report.section("Harvest timing under model risk")
        report.text(
            "Harvest decisions for a running batch from a few historical growth-rate data "
            "points (Wang et al. 2024): the perfect-information MDP (upper bound), common "
            "practice, and policies that learn from the data, with and without modelling model "
            f"risk (RL-MR). {cfg.harvest_replications} replications with common random numbers."
        )
        _save(tables, out, "harvest_table1", case.table1)
        report.table(case.table1, caption="Reward per policy and data size (Table 1 structure)")
        for name, plot, frame, caption in (
            ("harvest_rewards", harvest.plot_reward_table, case.table1, "Mean reward +-2 SE"),
            ("harvest_epochs", harvest.plot_harvest_epochs, case.fig3, "Stopping epochs (Fig. 3)"),
            ("harvest_thresholds", harvest.plot_thresholds, case.fig4, "Control limits (Fig. 4)"),
        ):
            _savefig(report, out, name, plot(frame), caption)

    # 8. report
    stages.run("report", lambda: None)
    all_warnings = [*clean_warnings, *(w for w in stages.warnings if w not in clean_warnings)]
    for w in all_warnings:
        report.warn(w)
    timing = pd.DataFrame({"stage": list(stages.timings), "seconds": list(stages.timings.values())})
    _save(tables, out, "timings", timing)
    report.section("Run details")
    if not run_harvest:
        report.text(
            "The harvest case study (growth-model decisions for the demo process) was not run; "
            "StudyConfig(harvest=True) or `bayesbio study --harvest` adds it."
        )
    report.table(timing, caption="Wall time per stage")
    report_path = report.write(out / "report.html")
    return StudyResult(
        out_dir=out,
        report_path=report_path,
        tables=tables,
        warnings=all_warnings,
        timings=dict(stages.timings),
        model=model,
        space=space,
    )


def quick_config(**overrides: Any) -> StudyConfig:
    """Return :meth:`StudyConfig.quick` with ``overrides`` applied."""
    return replace(StudyConfig.quick(), **overrides)
