"""The ``bayesbio`` command line: thin commands over the library.

Every command takes ``--seed``, reads CSV or Parquet, writes into ``--out`` and turns bad
input into a one-line error with exit code 2 (``--debug`` shows the traceback). No logic lives
only here: each command calls the public function named in its help.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["app", "main"]

app = typer.Typer(
    name="bayesbio",
    help="Bayesian decision support for upstream bioprocess development.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_STATE = {"debug": False}

Seed = Annotated[int, typer.Option("--seed", help="Random seed (one seed for the whole run).")]
Out = Annotated[Path, typer.Option("--out", "-o", help="Output folder.")]
Data = Annotated[Path, typer.Option("--data", "-d", help="Batch table, CSV or Parquet.")]
Columns = Annotated[
    list[str] | None,
    typer.Option(
        "--columns",
        "-c",
        help="Column mapping USER=SCHEMA, repeatable (e.g. -c Temp_C=temperature).",
    ),
]


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _STATE["debug"] = debug


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


@contextmanager
def _errors():
    """Turn library errors into one-line messages unless --debug."""
    try:
        yield
    except typer.Exit:
        raise
    except (ValueError, TypeError, KeyError, FileNotFoundError, OSError) as exc:
        if _STATE["debug"]:
            raise
        _fail(f"{type(exc).__name__}: {exc}")


def _mapping(columns: list[str] | None) -> dict[str, str] | None:
    if not columns:
        return None
    mapping = {}
    for item in columns:
        if "=" not in item:
            raise ValueError(f"--columns expects USER=SCHEMA pairs, got {item!r}")
        user, target = item.split("=", 1)
        mapping[user.strip()] = target.strip()
    return mapping


def _read(path: Path, columns: list[str] | None) -> Any:
    from bayesbio import schema
    from bayesbio.study import read_table

    return schema.rename_columns(read_table(path), _mapping(columns))


def _write(frame: Any, out: Path, name: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    frame.to_csv(path, index=False)
    typer.echo(f"wrote {path}")
    return path


def _progress():
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        transient=False,
        disable=not sys.stderr.isatty(),
    )


@app.command()
def simulate(
    n: Annotated[int, typer.Option("--n", help="Number of batches.")] = 48,
    design: Annotated[str, typer.Option(help="historical, doe or uniform.")] = "historical",
    defects: Annotated[bool, typer.Option(help="Inject labelled defects.")] = True,
    out: Out = Path("output"),
    seed: Seed = 2024,
) -> None:
    """Simulate batch records (bayesbio.simulate.simulate_batches)."""
    with _errors():
        from bayesbio.simulate import simulate_batches

        sim = simulate_batches(n, design=design, defects=defects, random_seed=seed)
        _write(sim.table, out, "batches.csv")
        _write(sim.defects, out, "defect_labels.csv")
        optima = [
            sim.truth.optimum(dict(row)).rename(None).to_dict() | dict(row)
            for _, row in sim.truth.groups.iterrows()
        ]
        import pandas as pd

        _write(pd.DataFrame(optima), out, "true_optima.csv")


@app.command()
def clean(
    data: Data,
    columns: Columns = None,
    policy: Annotated[str, typer.Option(help="Cleaning policy name.")] = "default",
    out: Out = Path("output"),
    seed: Seed = 2024,
) -> None:
    """Clean a batch table and write it with its audit log (bayesbio.clean.clean)."""
    with _errors():
        from bayesbio.clean import clean as clean_table

        result = clean_table(_read(data, columns), policy)
        _write(result.table, out, "clean_batches.csv")
        _write(result.log, out, "cleaning_log.csv")
        dropped = int((result.log["action"] == "dropped").sum()) if len(result.log) else 0
        typer.echo(f"kept {len(result.table)} rows, dropped {dropped}, {len(result.log)} actions")


@app.command()
def eda(data: Data, columns: Columns = None, out: Out = Path("output"), seed: Seed = 2024) -> None:
    """Summary table and EDA figures (bayesbio.eda.run_eda)."""
    with _errors():
        from bayesbio.eda import run_eda

        result = run_eda(_read(data, columns), out_dir=out)
        for name in result.figures:
            typer.echo(f"wrote {out / (name + '.png')}")
        typer.echo(f"wrote {out / 'summary.csv'}")


def _bayes(seed: int, draws: int, tune: int, chains: int) -> Any:
    from bayesbio.models import BayesianYieldModel

    return BayesianYieldModel(draws=draws, tune=tune, chains=chains, random_seed=seed)


Draws = Annotated[int, typer.Option(help="Posterior draws per chain.")]
Tune = Annotated[int, typer.Option(help="Tuning steps per chain.")]
Chains = Annotated[int, typer.Option(help="Markov chains.")]


@app.command()
def compare(
    data: Data,
    columns: Columns = None,
    cv: Annotated[str, typer.Option(help="Scheme: split, kfold, group, learning_curve.")] = (
        "kfold"
    ),
    bayesian: Annotated[bool, typer.Option(help="Include the Bayesian model.")] = True,
    draws: Draws = 500,
    tune: Tune = 500,
    chains: Chains = 2,
    out: Out = Path("output"),
    seed: Seed = 2024,
) -> None:
    """Baselines vs Bayesian on the same folds (bayesbio.evaluate.compare)."""
    with _errors():
        from bayesbio.evaluate import compare as run_compare
        from bayesbio.models import ForestYield, LassoYield

        models: dict[str, Any] = {
            "LASSO": LassoYield(random_state=seed),
            "RandomForest": ForestYield(random_state=seed),
        }
        if bayesian:
            models["Bayesian"] = _bayes(seed, draws, tune, chains)
        result = run_compare(models, _read(data, columns), cv=cv, random_seed=seed)
        _write(result.scores, out, "scores.csv")
        _write(result.summary.reset_index(), out, "summary.csv")
        typer.echo(result.summary.to_string())


@app.command()
def fit(
    data: Data,
    columns: Columns = None,
    draws: Draws = 1000,
    tune: Tune = 1000,
    chains: Chains = 4,
    out: Out = Path("output"),
    seed: Seed = 2024,
) -> None:
    """Fit the hierarchical Bayesian model and save it as netCDF (model.nc)."""
    with _errors():
        model = _bayes(seed, draws, tune, chains).fit(_read(data, columns))
        out.mkdir(parents=True, exist_ok=True)
        model.save(out / "model.nc")
        typer.echo(f"wrote {out / 'model.nc'}")
        typer.echo(json.dumps(model.diagnostics_, default=str, indent=1))


def _load_model(path: Path) -> Any:
    from bayesbio.models import BayesianYieldModel

    return BayesianYieldModel.load(path)


Model = Annotated[Path, typer.Option("--model", "-m", help="A model saved by `bayesbio fit`.")]
Group = Annotated[
    list[str] | None, typer.Option("--group", "-g", help="Group as COLUMN=LABEL, repeatable.")
]


@app.command()
def recommend(
    model: Model,
    group: Group = None,
    objective: Annotated[str, typer.Option(help="mean, quantile, prob_spec or cvar.")] = "cvar",
    spec: Annotated[float | None, typer.Option(help="Yield spec, g/L.")] = None,
    out: Out = Path("output"),
    seed: Seed = 2024,
) -> None:
    """Risk-aware setpoint for a group (bayesbio.recommend.recommend)."""
    with _errors():
        from bayesbio.recommend import recommend as run_recommend

        rec = run_recommend(
            _load_model(model),
            group=_mapping(group),
            objective=objective,
            spec=spec,
            random_seed=seed,
        )
        frame = rec.to_frame()
        _write(frame, out, "recommendation.csv")
        typer.echo(frame.to_string())


@app.command("design-space")
def design_space(
    model: Model,
    spec: Annotated[float, typer.Option(help="Yield spec, g/L.")],
    prob: Annotated[float, typer.Option(help="Required P(yield >= spec).")] = 0.9,
    group: Group = None,
    out: Out = Path("output"),
    seed: Seed = 2024,
) -> None:
    """Bayesian design space and proven acceptable ranges (bayesbio.recommend.design_space)."""
    with _errors():
        from bayesbio.recommend import design_space as run_design_space

        ds = run_design_space(
            _load_model(model), spec, prob, group=_mapping(group), random_seed=seed
        )
        _write(ds.grid, out, "design_space_grid.csv")
        _write(ds.par, out, "proven_acceptable_ranges.csv")
        typer.echo(ds.par.to_string())


@app.command()
def harvest(
    replications: Annotated[int, typer.Option(help="Replications per policy.")] = 100,
    sizes: Annotated[list[int] | None, typer.Option("--n", help="Historical data sizes.")] = None,
    out: Out = Path("output"),
    seed: Seed = 2024,
) -> None:
    """Harvest-time case study under model risk (bayesbio.harvest.harvest_case_study)."""
    with _errors():
        from bayesbio.harvest import harvest_case_study

        case = harvest_case_study(
            n_replications=replications, n_values=tuple(sizes or (3, 10)), random_seed=seed
        )
        _write(case.table1, out, "harvest_table1.csv")
        typer.echo(case.table1.to_string())


@app.command()
def study(
    out: Out = Path("output/study"),
    seed: Seed = 2024,
    data: Annotated[
        Path | None, typer.Option("--data", "-d", help="Your own batch table (CSV/Parquet).")
    ] = None,
    columns: Columns = None,
    quick: Annotated[bool, typer.Option(help="Reduced settings (about a minute).")] = False,
) -> None:
    """Run the whole study and write an HTML report (bayesbio.study.run_study)."""
    with _errors():
        from bayesbio.study import StudyConfig, run_study

        table = _read(data, columns) if data is not None else None
        config = StudyConfig.quick() if quick else StudyConfig()
        with _progress() as bar:
            task = bar.add_task("study", total=8)

            def progress(stage: str, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total, description=stage)

            result = run_study(out, data=table, config=config, random_seed=seed, progress=progress)
        typer.echo(f"report: {result.report_path}")
        typer.echo(f"total {sum(result.timings.values()):.1f} s; {len(result.warnings)} warnings")
        for w in result.warnings:
            typer.echo(f"warning: {w}")


@app.command()
def report(
    out: Out = Path("output/study"),
) -> None:
    """Print where a study's report is and check it exists (run `bayesbio study` to make one)."""
    with _errors():
        path = out / "report.html"
        if not path.is_file():
            raise FileNotFoundError(f"no report at {path}; run `bayesbio study --out {out}`")
        typer.echo(str(path.resolve()))


def main() -> None:  # pragma: no cover - console entry point
    """Run the CLI."""
    app()
