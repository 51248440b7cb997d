"""The ``bayesbio`` command line: thin commands over the library.

Every command that draws random numbers takes ``--seed``; commands read CSV or Parquet, write
into ``--out`` and turn bad input into a one-line error with exit code 2 (``--debug`` shows
the traceback). Commands that read batch data take ``--process PATH``, a TOML process space
(default: the demo process); ``bayesbio init-process --data my.csv`` drafts one. No logic
lives only here: each command calls the public function named in its help.
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
Process = Annotated[
    Path | None,
    typer.Option(
        "--process",
        "-p",
        help="Process space, a TOML file (factors, units, ranges, response, groups); "
        "default: the demo process. Draft one with `bayesbio init-process`.",
    ),
]


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _STATE["debug"] = debug


def _fail(message: str) -> None:
    one_line = " ".join(str(message).split())
    typer.echo(f"error: {one_line}", err=True)
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


def _mapping(
    columns: list[str] | None, option: str = "--columns", form: str = "USER=SCHEMA"
) -> dict[str, str] | None:
    if not columns:
        return None
    mapping = {}
    for item in columns:
        if "=" not in item:
            raise ValueError(f"{option} expects {form} pairs, got {item!r}")
        user, target = item.split("=", 1)
        mapping[user.strip()] = target.strip()
    return mapping


def _read(path: Path, columns: list[str] | None) -> Any:
    from bayesbio import schema
    from bayesbio.study import read_table

    return schema.rename_columns(read_table(path), _mapping(columns))


def _space(process: Path | None) -> Any:
    from bayesbio.space import resolve_space

    return resolve_space(process)


def _echo_warnings(result: Any) -> None:
    for w in getattr(result, "warnings", None) or []:
        typer.echo(f"warning: {w}")


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
    process: Process = None,
    out: Out = Path("output"),
    seed: Seed = 2024,
) -> None:
    """Simulate batch records of a process (bayesbio.simulate.simulate_batches).

    With --process the response follows the automatic biology of that space
    (bayesbio.simulate.ProcessBiology.for_space).
    """
    with _errors():
        import pandas as pd

        from bayesbio.simulate import simulate_batches

        sim = simulate_batches(
            n, design=design, defects=defects, random_seed=seed, space=_space(process)
        )
        _write(sim.table, out, "batches.csv")
        _write(sim.defects, out, "defect_labels.csv")
        optima = [
            sim.truth.optimum(dict(row)).rename(None).to_dict() | dict(row)
            for _, row in sim.truth.groups.iterrows()
        ] or [sim.truth.optimum({}).rename(None).to_dict()]
        _write(pd.DataFrame(optima), out, "true_optima.csv")


@app.command()
def clean(
    data: Data,
    columns: Columns = None,
    policy: Annotated[str, typer.Option(help="Cleaning policy name.")] = "default",
    process: Process = None,
    out: Out = Path("output"),
    seed: Seed = 2024,
) -> None:
    """Clean a batch table and write it with its audit log (bayesbio.clean.clean)."""
    with _errors():
        from bayesbio.clean import clean as clean_table

        result = clean_table(_read(data, columns), policy, space=_space(process))
        _write(result.table, out, "clean_batches.csv")
        _write(result.log, out, "cleaning_log.csv")
        dropped = int((result.log["action"] == "dropped").sum()) if len(result.log) else 0
        typer.echo(f"kept {len(result.table)} rows, dropped {dropped}, {len(result.log)} actions")
        _echo_warnings(result)


@app.command()
def eda(
    data: Data,
    columns: Columns = None,
    process: Process = None,
    out: Out = Path("output"),
    seed: Seed = 2024,
) -> None:
    """Summary table and EDA figures (bayesbio.eda.run_eda)."""
    with _errors():
        from bayesbio.eda import run_eda

        space = _space(process)
        groups = [g for g in space.groups if g != "campaign"]
        result = run_eda(
            _read(data, columns),
            out_dir=out,
            group=groups[0] if groups else None,
            space=space,
        )
        for name in result.figures:
            typer.echo(f"wrote {out / (name + '.png')}")
        typer.echo(f"wrote {out / 'summary.csv'}")


def _bayes(seed: int, draws: int, tune: int, chains: int, space: Any = None) -> Any:
    from bayesbio.models import BayesianYieldModel

    return BayesianYieldModel(draws=draws, tune=tune, chains=chains, random_seed=seed, space=space)


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
    process: Process = None,
    out: Out = Path("output"),
    seed: Seed = 2024,
) -> None:
    """Baselines vs Bayesian on the same folds (bayesbio.evaluate.compare)."""
    with _errors():
        from bayesbio.evaluate import compare as run_compare
        from bayesbio.models import ForestYield, LassoYield

        space = _space(process)
        models: dict[str, Any] = {
            "LASSO": LassoYield(random_state=seed, space=space),
            "RandomForest": ForestYield(random_state=seed, space=space),
        }
        if bayesian:
            models["Bayesian"] = _bayes(seed, draws, tune, chains, space)
        result = run_compare(models, _read(data, columns), cv=cv, random_seed=seed, space=space)
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
    process: Process = None,
    out: Out = Path("output"),
    seed: Seed = 2024,
) -> None:
    """Fit the hierarchical Bayesian model and save it, with its process, as netCDF (model.nc)."""
    with _errors():
        space = _space(process)
        model = _bayes(seed, draws, tune, chains, space).fit(_read(data, columns))
        out.mkdir(parents=True, exist_ok=True)
        model.save(out / "model.nc")
        typer.echo(f"wrote {out / 'model.nc'}")
        typer.echo(json.dumps(model.diagnostics_, default=str, indent=1))


def _load_model(path: Path, process: Path | None = None) -> Any:
    """Load a saved model; with --process, check it was fitted for that process."""
    from bayesbio.models import BayesianYieldModel

    model = BayesianYieldModel.load(path)
    if process is not None:
        declared = _space(process)
        fitted = getattr(model, "space_", None)
        if fitted is not None and fitted.fingerprint != declared.fingerprint:
            raise ValueError(
                f"model {str(path)!r} was fitted for process {fitted.name!r} (fingerprint "
                f"{fitted.fingerprint}) but --process {str(process)!r} declares "
                f"{declared.name!r} (fingerprint {declared.fingerprint}); drop --process (the "
                "model carries its process) or refit with this one"
            )
    return model


Model = Annotated[Path, typer.Option("--model", "-m", help="A model saved by `bayesbio fit`.")]
Group = Annotated[
    list[str] | None, typer.Option("--group", "-g", help="Group as COLUMN=LABEL, repeatable.")
]


@app.command()
def recommend(
    model: Model,
    group: Group = None,
    objective: Annotated[str, typer.Option(help="mean, quantile, prob_spec or cvar.")] = "cvar",
    spec: Annotated[
        float | None, typer.Option(help="Response spec, in the response's unit.")
    ] = None,
    process: Process = None,
    out: Out = Path("output"),
    seed: Seed = 2024,
) -> None:
    """Risk-aware setpoint for a group (bayesbio.recommend.recommend).

    The model file carries its process space; --process only checks it matches.
    """
    with _errors():
        from bayesbio.recommend import recommend as run_recommend

        rec = run_recommend(
            _load_model(model, process),
            group=_mapping(group, "--group", "COLUMN=LABEL"),
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
    spec: Annotated[float, typer.Option(help="Response spec, in the response's unit.")],
    prob: Annotated[float, typer.Option(help="Required P(new batch meets the spec).")] = 0.9,
    group: Group = None,
    process: Process = None,
    out: Out = Path("output"),
    seed: Seed = 2024,
) -> None:
    """Bayesian design space and proven acceptable ranges (bayesbio.recommend.design_space).

    The model file carries its process space; --process only checks it matches.
    """
    with _errors():
        from bayesbio.recommend import design_space as run_design_space

        ds = run_design_space(
            _load_model(model, process),
            spec,
            prob,
            group=_mapping(group, "--group", "COLUMN=LABEL"),
            random_seed=seed,
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
    process: Process = None,
    quick: Annotated[bool, typer.Option(help="Reduced settings (about a minute).")] = False,
    harvest: Annotated[
        bool | None,
        typer.Option(
            "--harvest/--no-harvest",
            help="Run the harvest case study (default: only for the demo process).",
        ),
    ] = None,
) -> None:
    """Run the whole study and write an HTML report (bayesbio.study.run_study).

    Without --data the batches are simulated for the process (demo process by default).
    """
    with _errors():
        from dataclasses import replace

        from bayesbio.study import StudyConfig, run_study

        space = _space(process)
        table = _read(data, columns) if data is not None else None
        config = StudyConfig.quick() if quick else StudyConfig()
        config = replace(config, harvest=harvest)
        with _progress() as bar:
            task = bar.add_task("study", total=8)

            def progress(stage: str, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total, description=stage)

            result = run_study(
                out,
                data=table,
                config=config,
                random_seed=seed,
                progress=progress,
                space=space,
            )
        typer.echo(f"report: {result.report_path}")
        typer.echo(f"total {sum(result.timings.values()):.1f} s; {len(result.warnings)} warnings")
        for w in result.warnings:
            typer.echo(f"warning: {w}")


@app.command("init-process")
def init_process(
    data: Data,
    out: Annotated[Path, typer.Option("--out", "-o", help="The TOML file to write.")] = Path(
        "process.toml"
    ),
    response: Annotated[
        str | None, typer.Option(help="Name of the response column (default: guessed).")
    ] = None,
    name: Annotated[str, typer.Option(help="Process name for the report.")] = "my process",
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Draft a process space (TOML) from a data file (bayesbio.space.infer_space).

    Numeric columns become factors, text columns with repeated labels groups, a unique text
    column the batch id; operating ranges are the data's range plus 10 % each side. Units it
    cannot read from a column name are written as "TODO": fill them in before use.
    """
    with _errors():
        from bayesbio.space import infer_space, space_to_starter_toml
        from bayesbio.study import read_table

        if out.exists() and not force:
            raise FileExistsError(f"{out} already exists; pass --force to overwrite it")
        space, notes = infer_space(read_table(data), response=response, name=name)
        text = space_to_starter_toml(space, notes)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}")
        typer.echo("assumed (check each line, then edit the file):")
        for note in notes:
            typer.echo(f"  - {note}")
        todo = sum(line.strip() == 'unit = "TODO"' for line in text.splitlines())
        if todo:
            typer.echo(f"{todo} unit(s) are TODO: write the unit each column is recorded in.")
        typer.echo(f"next: bayesbio study --data {data} --process {out} --out my_study")


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
