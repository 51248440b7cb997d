"""The ``bayesbio`` command line: thin commands over the library.

Every command that draws random numbers takes ``--seed``; commands read CSV, Excel or Parquet,
write into ``--out`` and turn bad input into a one-line error with exit code 2 (``--debug``
shows the traceback). Commands that read batch data take ``--process PATH``, a TOML process
space (default: the demo process); ``bayesbio init-process --data my.csv`` drafts one. No
logic lives only here: each command calls the public function named in its help.

Exit codes: 0 success; 2 bad input or a refused action (one line on stderr naming the option,
column or file and what to do); 3 ``--strict`` and the answer is not to be trusted (failed
sampling diagnostics or an extrapolating recommendation); 130 interrupted (Ctrl-C), nothing
of the interrupted step saved.

Outputs never overwrite each other: every command writes its own file names (``eda_summary.csv``,
``compare_summary.csv``, ``recommendation_COLUMN-LABEL.csv``, ...), each file is written under a
temporary name and renamed into place (an interrupted run leaves the earlier file), and
commands refuse to replace their own input (``clean``) or an existing batch table
(``simulate``, unless ``--force``). Library warnings are printed as one ``warning:`` line
each; ``-q`` keeps only errors, ``-v`` adds the library's log messages.
"""

from __future__ import annotations

import ast
import inspect
import logging
import os
import re
import shlex
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator
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
    rich_markup_mode="markdown",
)

_STATE: dict[str, Any] = {"debug": False, "quiet": False, "verbose": False, "said": set()}
_LOG_HANDLER: list[logging.Handler] = []

#: Exit code of ``--strict`` when the answer is not to be trusted.
EXIT_STRICT = 3
#: Exit code after Ctrl-C (128 + SIGINT, as shells report it).
EXIT_INTERRUPTED = 130

Seed = Annotated[int, typer.Option("--seed", help="Random seed (one seed for the whole run).")]
Out = Annotated[Path, typer.Option("--out", "-o", help="Output folder.")]
Data = Annotated[
    Path, typer.Option("--data", "-d", help="Batch table: CSV/TSV, Excel, Parquet or JSON.")
]
Sheet = Annotated[
    str | None,
    typer.Option(
        "--sheet",
        help="Worksheet of an Excel workbook, by name or 0-based number (default: the sheet "
        "holding the most numbers).",
    ),
]
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
CheckProcess = Annotated[
    Path | None,
    typer.Option(
        "--process",
        "-p",
        help="Process space TOML to check the model against (the model file carries its own "
        "process; a different one is an error).",
    ),
]
Strict = Annotated[
    bool,
    typer.Option(
        "--strict",
        help="Exit with code 3 (and write no result) when sampling diagnostics fail or the "
        "answer extrapolates beyond the data.",
    ),
]
Force = Annotated[bool, typer.Option("--force", help="Replace existing output files.")]


def _decimal(text: str) -> float:
    """Read a number option, with a decimal point or a decimal comma (``3.5`` or ``3,5``)."""
    value = str(text).strip()
    try:
        return float(value)
    except ValueError:
        if re.fullmatch(r"[-+]?\d*,\d+", value):
            return float(value.replace(",", "."))
    raise typer.BadParameter(f"{text!r} is not a number (write e.g. 3.5 or 3,5)")


def _show_version(value: bool) -> None:
    if value:
        from bayesbio import __version__

        typer.echo(f"bayesbio {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also print the library's log messages.")
    ] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet",
            "-q",
            help="Print errors only (no progress, notes, warnings or results on screen; "
            "results still go to the --out files).",
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version, exit."
        ),
    ] = False,
) -> None:
    if verbose and quiet:
        _fail("-v/--verbose and -q/--quiet exclude each other; pass one of them")
    _STATE.update(
        debug=debug, quiet=quiet, verbose=verbose, said=set(), demo_space=False, clean_option=False
    )
    log = logging.getLogger("bayesbio")
    while _LOG_HANDLER:  # one handler, on the current stderr (tests swap streams)
        log.removeHandler(_LOG_HANDLER.pop())
    if verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("info: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        _LOG_HANDLER.append(handler)
    else:
        log.setLevel(logging.NOTSET)


def _fail(message: str, code: int = 2) -> None:
    one_line = " ".join(str(message).split())
    typer.echo(f"error: {one_line}", err=True)
    raise typer.Exit(code=code)


def _say(message: str) -> None:
    """Print a note on stdout unless -q."""
    if not _STATE["quiet"]:
        typer.echo(message)


def _one_line(message: Any) -> str:
    return " ".join(str(message).split())


@contextmanager
def _errors() -> Iterator[list[warnings.WarningMessage]]:
    """Turn library errors into one-line messages unless --debug; print warnings as lines.

    Yields the list of Python warnings raised inside (``--strict`` reads it); after a
    successful command each is printed once as ``warning: ...`` on stderr (not with -q).
    """
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield caught
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        if _STATE["debug"]:
            raise
        _fail(
            "interrupted (Ctrl-C): the interrupted step wrote nothing; earlier output files are "
            "as they were. Run the command again to finish it",
            code=EXIT_INTERRUPTED,
        )
    except (ValueError, TypeError, KeyError, FileNotFoundError, OSError) as exc:
        if _STATE["debug"]:
            raise
        hint = ""
        if _STATE.get("demo_space") and "missing required column" in str(exc):
            hint = (
                " (no --process given, so the demo process was assumed: declare your own "
                "with --process; `bayesbio init-process --data FILE` drafts one)"
            )
        if _STATE.get("clean_option") and "clean the table first" in str(exc):
            hint += " (or add --clean to this command)"
        _fail(f"{type(exc).__name__}: {_cli_terms(str(exc))}{hint}")
    if not _STATE["quiet"]:
        from bayesbio.study import NOT_FOR_THE_USER

        seen = set()
        for w in caught:
            text = f"{w.category.__name__}: {_one_line(w.message)}"
            if any(str(w.message).startswith(m) for m in NOT_FOR_THE_USER):
                continue
            if text not in seen and _one_line(w.message) not in _STATE["said"]:
                seen.add(text)
                typer.echo(f"warning: {_cli_terms(text)}", err=True)


def _strict_failure(
    caught: list[warnings.WarningMessage], categories: tuple[type[Warning], ...]
) -> str | None:
    """Return the first warning of ``categories`` as a one-line reason, or None."""
    for w in caught:
        if issubclass(w.category, categories):
            return f"{w.category.__name__}: {_one_line(w.message)}"
    return None


def _fail_strict(reason: str, what: str) -> None:
    _fail(f"--strict: {reason} ({what})", code=EXIT_STRICT)


@contextmanager
def _interrupts() -> Iterator[list[int]]:
    """Make Ctrl-C an error even when a sampler catches it.

    nutpie catches KeyboardInterrupt and returns the draws so far (padded with NaN); the
    handler records the signal, so the step still ends as interrupted (exit 130) and its
    result is never saved. Yields the list of signals seen, for callers that can stop at a
    checkpoint (the study's progress callback).
    """
    hit: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield hit
        return

    def handler(signum: int, frame: Any) -> None:
        hit.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield hit
    finally:
        signal.signal(signal.SIGINT, previous)
    if hit:
        raise KeyboardInterrupt


def _interactive(stream: Any = None) -> bool:
    """Whether to draw progress: a terminal, not -q, and not CI (``CI=true``)."""
    stream = sys.stderr if stream is None else stream
    ci = os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):
        tty = False
    return tty and not ci and not _STATE["quiet"]


def _progress() -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=False,
        disable=not _interactive(),
    )


@contextmanager
def _activity(description: str) -> Iterator[None]:
    """Show a rich spinner with elapsed time on a terminal; nothing otherwise."""
    if not _interactive():
        yield
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        bar.add_task(description, total=None)
        yield


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


def _read_file(path: Path, sheet: str | None = None) -> Any:
    """Read a data file; say which sheet was read and anything else the reader noticed."""
    return _read_file_info(path, sheet)[0]


def _read_file_info(path: Path, sheet: str | None = None, option: str = "--sheet") -> Any:
    """:func:`_read_file` that also returns the reader's :class:`~bayesbio.io.ReadInfo`."""
    from bayesbio.io import read_table_with_info

    chosen: str | int | None = int(sheet) if sheet is not None and sheet.isdigit() else sheet
    if chosen is not None and path.suffix.lower() not in (".xlsx", ".xlsm"):
        _fail(f"{option} applies to Excel workbooks only, not to {path.name}")
    table, info = read_table_with_info(path, sheet=chosen)
    for note in info.notes:
        _say(f"note: {note}")
    return table, info


def _file_name(option: str, path: Path, info: Any, sheet_option: str = "--sheet") -> str:
    """Name a file in messages as the user gave it: ``--history runs.xlsx, sheet 'Runs'``.

    A sheet the reader chose among several is named with the others and the option to pick.
    """
    name = f"{option} {path}"
    if info.sheet:
        name += f", sheet {info.sheet!r}"
        if len(info.sheets) > 1 and "sheet" not in info.given:
            others = ", ".join(repr(s) for s in info.sheets if s != info.sheet)
            name += f" (chosen as the one with most numbers; also {others}: {sheet_option})"
    return name


def _read(path: Path, columns: list[str] | None, sheet: str | None = None) -> Any:
    from bayesbio import schema

    return schema.rename_columns(_read_file(path, sheet), _mapping(columns))


def _clean_and_write(table: Any, policy: str, space: Any, out: Path, *, said: str = "") -> Any:
    """Clean ``table``, write clean_batches.csv and cleaning_log.csv to ``out``, say the counts.

    Returns the :class:`~bayesbio.clean.CleanResult`; the caller says what an empty table means.
    """
    from bayesbio.clean import clean as clean_table

    result = clean_table(table, policy, space=space)
    _write_all({"clean_batches.csv": result.table, "cleaning_log.csv": result.log}, out)
    dropped = int((result.log["action"] == "dropped").sum()) if len(result.log) else 0
    _say(
        f"{said}kept {len(result.table)} rows, dropped {dropped}, {len(result.log)} actions"
        + (f" ({out / 'cleaning_log.csv'})" if said else "")
    )
    _echo_warnings(result)
    return result


def _read_data(
    path: Path, columns: list[str] | None, sheet: str | None, space: Any, clean: bool, out: Path
) -> Any:
    """Read a batch table; with ``clean``, clean it first and write the cleaned table and log."""
    table = _read(path, columns, sheet)
    _STATE["clean_option"] = True  # a schema error may point to --clean
    if not clean:
        return table
    result = _clean_and_write(table, "default", space, out, said="cleaned: ")
    if len(result.table) == 0:
        raise ValueError(
            f"--clean dropped every row: {out / 'cleaning_log.csv'} says why for each row"
        )
    return result.table


def _space(process: Path | None) -> Any:
    from bayesbio.space import resolve_space

    _STATE["demo_space"] = process is None
    return resolve_space(process)


def _echo_warnings(result: Any) -> None:
    for w in getattr(result, "warnings", None) or []:
        _STATE["said"].add(_one_line(w))
        _say(f"warning: {w}")


def _write(frame: Any, out: Path, name: str) -> Path:
    return _write_all({name: frame}, out)[0]


def _write_all(frames: dict[str, Any], out: Path) -> list[Path]:
    """Write CSV tables atomically, together (bayesbio.study.write_tables)."""
    from bayesbio.study import write_tables

    paths = write_tables(frames, out)
    for path in paths:
        _say(f"wrote {path}")
    return paths


def _check_run_options(**options: Any) -> None:
    """Check MCMC options, naming them as on the command line."""
    from bayesbio.checks import check_int

    for name, value in options.items():
        if value is not None:
            check_int(f"--{name}", value, minimum=1)


@app.command()
def simulate(
    n: Annotated[int, typer.Option("--n", help="Number of batches.")] = 48,
    design: Annotated[str, typer.Option(help="historical, doe or uniform.")] = "historical",
    defects: Annotated[bool, typer.Option(help="Inject labelled defects.")] = True,
    process: Process = None,
    out: Out = Path("output"),
    seed: Seed = 2024,
    force: Force = False,
) -> None:
    """Simulate batch records of a process (bayesbio.simulate.simulate_batches).

    With --process the response follows the automatic biology of that space
    (bayesbio.simulate.ProcessBiology.for_space). An existing batches.csv (or its companion
    files) in --out is not replaced without --force.
    """
    with _errors():
        import pandas as pd

        from bayesbio.simulate import simulate_batches

        names = ("batches.csv", "defect_labels.csv", "true_optima.csv")
        existing = [name for name in names if (out / name).exists()]
        if existing and not force:
            raise FileExistsError(
                f"{out / existing[0]} already exists; choose another --out folder, or pass "
                "--force to replace it"
            )
        sim = simulate_batches(
            n, design=design, defects=defects, random_seed=seed, space=_space(process)
        )
        optima = [
            sim.truth.optimum(dict(row)).rename(None).to_dict() | dict(row)
            for _, row in sim.truth.groups.iterrows()
        ] or [sim.truth.optimum({}).rename(None).to_dict()]
        _write_all(
            {
                "batches.csv": sim.table,
                "defect_labels.csv": sim.defects,
                "true_optima.csv": pd.DataFrame(optima),
            },
            out,
        )


@app.command()
def clean(
    data: Data,
    sheet: Sheet = None,
    columns: Columns = None,
    policy: Annotated[str, typer.Option(help="Cleaning policy name.")] = "default",
    process: Process = None,
    out: Out = Path("output"),
    seed: Seed = 2024,
) -> None:
    """Clean a batch table and write it with its audit log (bayesbio.clean.clean).

    Writes clean_batches.csv and cleaning_log.csv into --out, both or neither; refuses an
    --out where they would replace the input file.
    """
    with _errors():
        names = ("clean_batches.csv", "cleaning_log.csv")
        for name in names:
            target = out / name
            if target.exists() and data.exists() and target.resolve() == data.resolve():
                raise ValueError(
                    f"--out {out}: writing {name} there would overwrite the input --data "
                    f"{data}; choose another --out folder"
                )
        result = _clean_and_write(_read(data, columns, sheet), policy, _space(process), out)
        if len(result.table) == 0:
            _fail(
                f"every row was dropped: {out / names[1]} says why for each row (often a "
                "declared unit or range that does not match the file)"
            )


@app.command()
def eda(
    data: Data,
    sheet: Sheet = None,
    columns: Columns = None,
    process: Process = None,
    out: Out = Path("output"),
    seed: Seed = 2024,
) -> None:
    """Summary table (eda_summary.csv) and EDA figures (bayesbio.eda.run_eda)."""
    with _errors():
        import matplotlib.pyplot as plt

        from bayesbio.eda import run_eda
        from bayesbio.space import is_campaign
        from bayesbio.study import atomic_path

        space = _space(process)
        groups = [g for g in space.groups if not is_campaign(g)]
        result = run_eda(
            _read(data, columns, sheet),
            group=groups[0] if groups else None,
            space=space,
        )
        try:
            for name, fig in result.figures.items():
                with atomic_path(out / f"{name}.png") as tmp:
                    fig.savefig(tmp, dpi=100, bbox_inches="tight")
                _say(f"wrote {out / (name + '.png')}")
        finally:
            for fig in result.figures.values():
                plt.close(fig)
        _write(result.summary, out, "eda_summary.csv")


def _bayes(
    seed: int,
    draws: int,
    tune: int,
    chains: int,
    space: Any = None,
    target_accept: float = 0.95,
    likelihood: str = "auto",
    structures: tuple[str, ...] | None = None,
) -> Any:
    from bayesbio.models import BayesianYieldModel

    extra = {} if structures is None else {"structures": structures}
    return BayesianYieldModel(
        draws=draws,
        tune=tune,
        chains=chains,
        random_seed=seed,
        space=space,
        target_accept=target_accept,
        likelihood=likelihood,
        **extra,
    )


def _model_options(
    likelihood: str, target_accept: float, structures: list[str] | None = None
) -> dict[str, Any]:
    """Check --likelihood, --target-accept and --structures; return the model's arguments."""
    from bayesbio.checks import check_choice, check_fraction
    from bayesbio.models._bayes_spec import LIKELIHOODS
    from bayesbio.models.bayesian import STRUCTURES

    out: dict[str, Any] = {
        "likelihood": check_choice("--likelihood", likelihood, LIKELIHOODS),
        "target_accept": check_fraction("--target-accept", target_accept),
    }
    if structures:
        names = [n.strip() for item in structures for n in item.split(",") if n.strip()]
        if not names:
            raise ValueError("--structures: name at least one structure")
        out["structures"] = tuple(check_choice("--structures", n, STRUCTURES) for n in names)
    return out


Likelihood = Annotated[
    str,
    typer.Option(
        help="Likelihood of the Bayesian model: auto (robust Student-t below 1,000 batches), "
        "normal, student_t, or mixture (each batch normal or failed; P(failed) per batch)."
    ),
]
TargetAccept = Annotated[
    float,
    typer.Option(
        parser=_decimal,
        help="Target acceptance rate of NUTS, in (0, 1): higher takes smaller steps "
        "(fewer divergent transitions, slower).",
    ),
]
Structures = Annotated[
    list[str] | None,
    typer.Option(
        "--structures",
        help="Response-surface structures stacked by leave-one-out accuracy, repeatable or "
        "comma-separated: quadratic, gp, spline, quadratic_by_group (each scale its own optimum "
        "location, for an optimum that moves with scale) [quadratic, gp].",
    ),
]
CleanFirst = Annotated[
    bool,
    typer.Option(
        "--clean",
        help="Clean the table first, as `bayesbio clean` and `study` do (default policy; "
        "clean_batches.csv and cleaning_log.csv are written to --out, every change logged).",
    ),
]
Draws = Annotated[int, typer.Option(help="Posterior draws per chain.")]
Tune = Annotated[int, typer.Option(help="Tuning steps per chain.")]
Chains = Annotated[int, typer.Option(help="Markov chains.")]


@app.command()
def compare(
    data: Data,
    sheet: Sheet = None,
    columns: Columns = None,
    cv: Annotated[str, typer.Option(help="Scheme: split, kfold, group, learning_curve.")] = (
        "kfold"
    ),
    bayesian: Annotated[bool, typer.Option(help="Include the Bayesian model.")] = True,
    n_splits: Annotated[int, typer.Option(help="Folds (kfold, group) or splits.")] = 5,
    draws: Draws = 500,
    tune: Tune = 500,
    chains: Chains = 2,
    process: Process = None,
    clean: CleanFirst = False,
    out: Out = Path("output"),
    seed: Seed = 2024,
) -> None:
    """Baselines vs Bayesian on the same folds (bayesbio.evaluate.compare).

    Writes compare_scores.csv and compare_summary.csv.
    """
    with _errors():
        from bayesbio.evaluate import compare as run_compare
        from bayesbio.models import ForestYield, LassoYield

        _check_run_options(draws=draws, tune=tune, chains=chains)
        space = _space(process)
        models: dict[str, Any] = {
            "LASSO": LassoYield(random_state=seed, space=space),
            "RandomForest": ForestYield(random_state=seed, space=space),
        }
        if bayesian:
            models["Bayesian"] = _bayes(seed, draws, tune, chains, space)
        table = _read_data(data, columns, sheet, space, clean, out)
        with _activity(f"comparing {len(models)} models on {cv} folds"), _interrupts():
            result = run_compare(
                models, table, cv=cv, n_splits=n_splits, random_seed=seed, space=space
            )
        _write_all(
            {
                "compare_scores.csv": result.scores,
                "compare_summary.csv": result.summary.reset_index(
                    drop=result.summary.index.name is None  # no stray "index" column
                ),
            },
            out,
        )
        _say(result.summary.to_string())


@app.command()
def fit(
    data: Data,
    sheet: Sheet = None,
    columns: Columns = None,
    draws: Draws = 1000,
    tune: Tune = 1000,
    chains: Chains = 4,
    target_accept: TargetAccept = 0.95,
    likelihood: Likelihood = "auto",
    structures: Structures = None,
    process: Process = None,
    clean: CleanFirst = False,
    out: Out = Path("output"),
    seed: Seed = 2024,
    strict: Strict = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="fit even a design that cannot inform the model (too few batches, a "
            "factor that never varies, a constant response)",
        ),
    ] = False,
) -> None:
    """Fit the hierarchical Bayesian model and save it, with its process, as netCDF (model.nc).

    The file is written under a temporary name and renamed, so an earlier model.nc survives
    a failed or interrupted run; an interrupted sampler (Ctrl-C) saves nothing (exit 130).
    """
    with _errors() as caught:
        from bayesbio.models.bayesian import ConvergenceWarning

        _check_run_options(draws=draws, tune=tune, chains=chains)
        space = _space(process)
        table = _read_data(data, columns, sheet, space, clean, out)
        options = _model_options(likelihood, target_accept, structures)
        model = _bayes(seed, draws, tune, chains, space, **options)
        steps = f"{chains} chain(s) x {tune} + {draws} steps"
        with _activity(f"sampling the posterior ({steps})"), _interrupts():
            model.fit(table, force=force)
        if strict:
            reason = _strict_failure(caught, (ConvergenceWarning,))
            if reason:
                _fail_strict(reason, f"no model saved in {out}")
        out.mkdir(parents=True, exist_ok=True)
        model.save(out / "model.nc")
        _say(f"wrote {out / 'model.nc'}")
        _say(_fit_text(model))


_FIT_COLUMNS = {
    "structure": "structure",
    "weight": "weight",
    "max_r_hat": "max R-hat",
    "min_ess_bulk": "min ESS bulk",
    "min_ess_tail": "min ESS tail",
    "divergences": "divergences",
    "max_pareto_k": "max Pareto k",
    "runs": "sampler runs",
}


def _fit_text(model: Any) -> str:
    """Return the fitted model's sampling checks and stacking weights as a table."""
    from bayesbio.summary import diagnostics_table

    diag = diagnostics_table(model.diagnostics_)
    weights = getattr(model, "stacking_weights_", None)
    if weights is not None:
        diag["weight"] = [f"{100 * float(weights.get(s, 0.0)):.0f} %" for s in diag["structure"]]
    for col, digits in (("max_r_hat", 3), ("max_pareto_k", 2)):
        if col in diag:
            diag[col] = [f"{float(v):.{digits}f}" for v in diag[col]]
    for col in ("min_ess_bulk", "min_ess_tail", "divergences", "runs"):
        if col in diag:
            diag[col] = [f"{float(v):.0f}" for v in diag[col]]
    shown = diag[[c for c in _FIT_COLUMNS if c in diag]].rename(columns=_FIT_COLUMNS)
    verdicts = [f"{s}: {v}" for s, v in zip(diag["structure"], diag["verdict"], strict=True)]
    return "\n".join(
        [
            "Sampling checks per response-surface structure (pass: R-hat <= 1.01, effective "
            "sample size >= 400, no divergent transitions; Pareto k > 0.7: a batch whose "
            "leave-one-out estimate is unreliable):",
            shown.to_string(index=False),
            *verdicts,
        ]
    )


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
Kind = Annotated[
    str,
    typer.Option(
        help="auto, existing (a group with batches), new_group (a new member of a group "
        "column, e.g. a new site) or population."
    ),
]
Risk = Annotated[
    float,
    typer.Option(
        parser=_decimal, help="Quantile level (quantile) or tail fraction (cvar) of the objective."
    ),
]


def _group_label(group: dict[str, str] | None) -> str:
    """Return a file-name suffix for a group: ``_scale-2000L_site-B`` (no spaces, no /)."""
    from bayesbio.study import safe_name

    if not group:
        return ""
    return "_" + "_".join(safe_name(f"{k}-{v}") for k, v in group.items())


def _number(option: str, item: str, text: str, form: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"{option} expects {form}, got {item!r}: {text!r} is not a number")
    return value


def _factor_of(option: str, item: str, name: str, space: Any) -> str:
    """Return the factor ``name`` means: its name, its label or the file's header for it."""
    factor = space.factor_name(name)
    if factor is None:
        raise ValueError(
            f"{option} {item!r}: {name!r} is not a factor of the process; "
            f"use one of {list(space.factor_names)}"
        )
    return str(factor)


def _constraints(
    bounds: list[str] | None, fixed: list[str] | None, space: Any
) -> dict[str, Any] | None:
    """--bound FACTOR=LOW:HIGH and --fix FACTOR=VALUE as recommend()'s constraints."""
    out: dict[str, dict[str, Any]] = {"bounds": {}, "fixed": {}}
    for option, items, form in (
        ("--bound", bounds, "FACTOR=LOW:HIGH (e.g. --bound temperature=36:37.5)"),
        ("--fix", fixed, "FACTOR=VALUE (e.g. --fix ph=7.0)"),
    ):
        for item in items or []:
            name, sep, rest = item.partition("=")
            name = name.strip()
            if not sep or not name or (option == "--bound" and ":" not in rest):
                raise ValueError(f"{option} expects {form}, got {item!r}")
            name = _factor_of(option, item, name, space)
            if any(name in given for given in out.values()):
                raise ValueError(f"{option} {item!r}: {name!r} is bounded or fixed twice")
            if option == "--bound":
                low, high = (_number(option, item, t, form) for t in rest.split(":", 1))
                if not low < high:
                    raise ValueError(f"{option} {item!r}: LOW must be below HIGH")
                out["bounds"][name] = (low, high)
            else:
                out["fixed"][name] = _number(option, item, rest, form)
    kept = {key: value for key, value in out.items() if value}
    return kept or None


Recipe = Annotated[
    list[str] | None,
    typer.Option(
        "--recipe",
        help="The group's recipe, the reference of P(better) and of the safety rule: "
        "FACTOR=VALUE, repeatable; factors not given take the group's median setpoint.",
    ),
]


def _recipe(items: list[str] | None, space: Any) -> dict[str, float] | None:
    """--recipe FACTOR=VALUE (repeatable) as recommend()'s and Campaign's recipe."""
    form = "FACTOR=VALUE (e.g. --recipe temperature=36.5)"
    out: dict[str, float] = {}
    for item in items or []:
        name, sep, rest = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"--recipe expects {form}, got {item!r}")
        name = _factor_of("--recipe", item, name, space)
        if name in out:
            raise ValueError(f"--recipe {item!r}: {name!r} is given twice")
        out[name] = _number("--recipe", item, rest, form)
    return out or None


def _group_options(match: re.Match[str]) -> str:
    try:
        pairs = ast.literal_eval(match.group(1))
    except (ValueError, SyntaxError):
        return match.group(0)
    if not isinstance(pairs, dict):
        return match.group(0)
    return " ".join(f"-g {shlex.quote(f'{k}={v}')}" for k, v in pairs.items())


def _cli_terms(message: str) -> str:
    """Say the library's Python arguments as the CLI options that set them.

    ``bounds['x'] = (a, b)`` -> ``--bound x=a:b``, ``fixed['x'] = v`` -> ``--fix x=v``,
    ``group={'scale': '2L'}`` -> ``-g scale=2L``, ``kind='new_group'`` -> ``--kind new_group``
    (likewise ``objective`` and ``likelihood``), ``spec=VALUE`` -> ``--spec VALUE``, ``n_splits`` ->
    ``--n-splits``, ``columns={...}`` -> ``--columns FILE_NAME=NAME``.
    """
    message = re.sub(
        r"(?:constraints\.)?bounds\['([^']+)'\] = \(([^,]+), ([^)]+)\)",
        r"--bound \1=\2:\3",
        message,
    )
    message = re.sub(r"(?:constraints\.)?fixed\['([^']+)'\] = ([^ ]+)", r"--fix \1=\2", message)
    message = re.sub(r"\bgroup=(\{[^{}]*\})", _group_options, message)
    message = re.sub(r"\b(kind|objective|likelihood)='(\w+)'", r"--\1 \2", message)
    message = re.sub(r"\bspec=(VALUE|[-+0-9.eE]+)", r"--spec \1", message)
    message = re.sub(r"\bn_splits\b", "--n-splits", message)
    message = message.replace(
        "Increase tune/draws, raise target_accept",
        ("Increase --tune/--draws, raise --target-accept"),
    )
    message = message.replace("widen the constraints.bounds", "widen the --bound")
    message = message.replace("(constraints.bounds)", "(--bound)")
    return message.replace("columns={...}", "--columns FILE_NAME=NAME")


@app.command()
def recommend(
    model: Model,
    group: Group = None,
    objective: Annotated[str, typer.Option(help="mean, quantile, prob_spec or cvar.")] = "cvar",
    risk: Risk = 0.1,
    spec: Annotated[
        float | None, typer.Option(parser=_decimal, help="Response spec, in the response's unit.")
    ] = None,
    bound: Annotated[
        list[str] | None,
        typer.Option(
            "--bound", help="Search range FACTOR=LOW:HIGH in the factor's unit, repeatable."
        ),
    ] = None,
    fix: Annotated[
        list[str] | None,
        typer.Option("--fix", help="Hold a factor: FACTOR=VALUE, repeatable."),
    ] = None,
    transfer_risk: Annotated[
        bool,
        typer.Option(
            "--transfer-risk",
            help="Doubt moves the group never made: its own slopes, where the model pools them.",
        ),
    ] = False,
    recipe: Recipe = None,
    kind: Kind = "auto",
    process: CheckProcess = None,
    out: Out = Path("output"),
    seed: Seed = 2024,
    strict: Strict = False,
) -> None:
    """Risk-aware setpoint for a group (bayesbio.recommend.recommend).

    Writes recommendation_COLUMN-LABEL.csv, e.g. recommendation_scale-2000L_site-B.csv
    (recommendation.csv without --group). The model file carries its process space; --process
    only checks it matches.
    """
    with _errors() as caught:
        from bayesbio.checks import check_choice, check_fraction
        from bayesbio.recommend import OBJECTIVES, ExtrapolationWarning, ModelDiagnosticsWarning
        from bayesbio.recommend import recommend as run_recommend

        check_choice("--objective", objective, OBJECTIVES)
        check_fraction("--risk", risk)
        fitted = _load_model(model, process)
        constraints = _constraints(bound, fix, fitted.space_)
        groups = _mapping(group, "--group", "COLUMN=LABEL")
        rec = run_recommend(
            fitted,
            group=groups,
            objective=objective,
            risk=risk,
            spec=spec,
            constraints=constraints,
            kind=kind,
            transfer_risk=transfer_risk,
            recipe=_recipe(recipe, fitted.space_),
            random_seed=seed,
        )
        if strict:
            reason = _strict_failure(caught, (ModelDiagnosticsWarning, ExtrapolationWarning))
            if reason:
                _fail_strict(reason, "no recommendation written")
        frame = rec.to_frame().rename_axis("setpoint").reset_index()
        label = _group_label(groups)
        _write(frame, out, f"recommendation{label}.csv")
        _say(frame.to_string())
        # its warnings follow once, as every command's do ("warning: Category: ...")
        explained = rec.explain().splitlines()
        _say(_cli_terms("\n".join(t for t in explained if not t.startswith("Warning: "))))
        if rec.next_experiments is not None:
            _write(rec.next_experiments, out, f"next_experiments{label}.csv")
            _say("best experiments to run instead:\n" + rec.next_experiments.to_string())


@app.command("design-space")
def design_space(
    model: Model,
    spec: Annotated[
        float, typer.Option(parser=_decimal, help="Response spec, in the response's unit.")
    ],
    prob: Annotated[
        float, typer.Option(parser=_decimal, help="Required P(new batch meets the spec).")
    ] = 0.9,
    group: Group = None,
    kind: Kind = "auto",
    process: CheckProcess = None,
    out: Out = Path("output"),
    seed: Seed = 2024,
) -> None:
    """Bayesian design space and proven acceptable ranges (bayesbio.recommend.design_space).

    Writes design_space_grid_COLUMN-LABEL.csv and proven_acceptable_ranges_COLUMN-LABEL.csv
    (as recommend names its file). The model file carries its process space; --process only
    checks it matches.
    """
    with _errors():
        from bayesbio.recommend import design_space as run_design_space
        from bayesbio.recommend.context import space_or_default
        from bayesbio.recommend.messages import meet_text
        from bayesbio.space import number_text

        groups = _mapping(group, "--group", "COLUMN=LABEL")
        ds = run_design_space(
            _load_model(model, process),
            spec,
            prob,
            group=groups,
            kind=kind,
            random_seed=seed,
        )
        label = _group_label(groups)
        _write_all(
            {
                f"design_space_grid{label}.csv": ds.grid,
                f"proven_acceptable_ranges{label}.csv": ds.par.reset_index(),
            },
            out,
        )
        ds_space = space_or_default(ds.space)
        better = "higher" if ds_space.response.maximise else "lower"
        _say(
            f"design space: {meet_text(ds_space, ds.spec)} >= {ds.prob:g} ({better} is better); "
            f"{int(ds.grid['inside'].sum())} of {len(ds.grid)} grid points inside; proven "
            "acceptable ranges:"
        )
        shown = ds.par.copy()
        for end in ("low", "high"):  # four significant digits, as every other value said
            shown[end] = [number_text(float(v), 4) for v in shown[end]]
        shown.index = [ds_space.label(f) for f in shown.index]
        _say(shown.to_string())
        for note in ds.settings["notes"]:
            _say(f"note: {note}")


@app.command()
def harvest(
    replications: Annotated[int, typer.Option(help="Replications per policy.")] = 100,
    sizes: Annotated[list[int] | None, typer.Option("--n", help="Historical data sizes.")] = None,
    out: Out = Path("output"),
    seed: Seed = 2024,
) -> None:
    """Harvest-time case study under model risk (bayesbio.harvest.harvest_case_study).

    The study simulates the paper's process; `bayesbio harvest-decision` decides on a
    running batch from your own growth data (--history, --now).
    """
    with _errors():
        from bayesbio.harvest import harvest_case_study

        case = harvest_case_study(
            n_replications=replications, n_values=tuple(sizes or (3, 10)), random_seed=seed
        )
        _write(case.table1, out, "harvest_table1.csv")
        _say(case.table1.to_string())


@app.command("harvest-decision")
def harvest_decision(
    history: Annotated[Path, typer.Option(help="Measured past runs (run table, CSV/xlsx).")],
    now: Annotated[Path, typer.Option(help="The running batch's measurements so far.")],
    policy: Annotated[
        str, typer.Option(help="RL-MR, myopic, plug-in, plug-in-static or CP.")
    ] = "RL-MR",
    spec: Annotated[
        Path | None, typer.Option(help="Harvest spec TOML: columns, units, epochs, economics.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Also write the decision (and the excluded rows) as CSV files in this folder.",
        ),
    ] = None,
    sheet: Sheet = None,
    now_sheet: Annotated[
        str | None,
        typer.Option(
            "--now-sheet",
            help="Worksheet of --now when it is an Excel workbook (as --sheet for --history).",
        ),
    ] = None,
    seed: Seed = 2024,
    n_draws: Annotated[
        int,
        typer.Option(
            "--n-draws",
            help="RL-MR's Thompson draws (doubled up to 8x while the two actions are too "
            "close to call).",
        ),
    ] = 32,
) -> None:
    """Harvest now or continue, from measured runs (bayesbio.harvest.harvest_decision).

    With -q nothing is printed but errors: add --out to keep the decision as a CSV file.
    """
    with _errors():
        from bayesbio.harvest import DECISION_POLICIES, HarvestSpec, validate_runs
        from bayesbio.harvest import harvest_decision as decide

        if policy not in DECISION_POLICIES:
            _fail(f"--policy must be one of {', '.join(DECISION_POLICIES)}; got {policy!r}")
        declared = HarvestSpec.from_toml(spec) if spec is not None else HarvestSpec()
        table, info = _read_file_info(history, sheet)
        past = validate_runs(table, spec=declared, name=_file_name("--history", history, info))
        table, info = _read_file_info(now, now_sheet, "--now-sheet")
        running = validate_runs(
            table, spec=declared, name=_file_name("--now", now, info, "--now-sheet"), min_points=1
        )
        result = decide(
            past, running, spec=declared, policy=policy, random_seed=seed, n_draws=n_draws
        )
        for row in result.excluded.itertuples():
            _say(f"note: {row.table}: run {row.run_id!r}, row {row.row}: {row.reason}")
        _say(result.explain())
        _say(result.to_frame().round(4).to_string(index=False))
        if out is not None:
            _write(result.to_frame(), out, "harvest_decision.csv")
            _write(result.excluded, out, "harvest_excluded.csv")


@app.command()
def study(
    out: Out = Path("output/study"),
    seed: Seed = 2024,
    data: Annotated[
        Path | None,
        typer.Option("--data", "-d", help="Your own batch table (CSV/TSV, Excel, Parquet, JSON)."),
    ] = None,
    sheet: Sheet = None,
    columns: Columns = None,
    process: Process = None,
    quick: Annotated[bool, typer.Option(help="Reduced settings (about a minute).")] = False,
    spec: Annotated[
        float | None,
        typer.Option(
            parser=_decimal,
            help="Response spec, in the response's unit, for every group (default: per target "
            "group, the 10th percentile of its own batches).",
        ),
    ] = None,
    prob: Annotated[
        float | None,
        typer.Option(
            parser=_decimal, help="Required P(new batch meets the spec) in the design space [0.8]."
        ),
    ] = None,
    objective: Annotated[
        str | None, typer.Option(help="Recommendation objective: mean, quantile, prob_spec, cvar.")
    ] = None,
    risk: Annotated[
        float | None,
        typer.Option(
            parser=_decimal, help="Quantile level or tail fraction of the objective [0.1]."
        ),
    ] = None,
    draws: Annotated[int | None, typer.Option(help="Posterior draws per chain.")] = None,
    tune: Annotated[int | None, typer.Option(help="Tuning steps per chain.")] = None,
    chains: Annotated[int | None, typer.Option(help="Markov chains.")] = None,
    target_accept: TargetAccept = 0.95,
    likelihood: Likelihood = "auto",
    structures: Structures = None,
    transfer_risk: Annotated[
        bool,
        typer.Option(
            "--transfer-risk",
            help="Judge each group's recommendation and design space with its own slope risk: "
            "a move the group never made is as uncertain as the model's varying-slope prior "
            "says, not as sure as the effect pooled over the other groups (for optima that "
            "move with scale).",
        ),
    ] = False,
    recipe: Recipe = None,
    group: Annotated[
        list[str] | None,
        typer.Option(
            "--group",
            "-g",
            help="The group to recommend for, as COLUMN=LABEL, repeatable (e.g. -g scale=300L "
            "-g site=Basel; default: for each scale, the site with the most batches).",
        ),
    ] = None,
    groups: Annotated[
        list[str] | None,
        typer.Option(
            "--groups",
            help="Group columns to pool over, repeatable or comma-separated (default: the "
            "process's groups present, without campaign).",
        ),
    ] = None,
    harvest: Annotated[
        bool | None,
        typer.Option(
            "--harvest/--no-harvest",
            help="Run the harvest case study (default: only for the demo process).",
        ),
    ] = None,
    strict: Strict = False,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace files in --out that an earlier study did not write."),
    ] = False,
) -> None:
    """Run the whole study and write an HTML report (bayesbio.study.run_study).

    Without --data the batches are simulated for the process (demo process by default). The
    files of an earlier study in --out (listed in its .bayesbio-study.json) are replaced only
    when this run finishes; other files there are never removed.
    """
    with _errors():
        from dataclasses import replace

        from bayesbio.checks import check_choice, check_fraction
        from bayesbio.recommend import OBJECTIVES
        from bayesbio.study import StudyConfig, run_study

        space = _space(process)
        _check_run_options(draws=draws, tune=tune, chains=chains)
        overrides: dict[str, Any] = {
            "harvest": harvest,
            "transfer_risk": transfer_risk,
            "recipe": _recipe(recipe, space),
            **_model_options(likelihood, target_accept, structures),
        }
        target = _mapping(group, "--group", "COLUMN=LABEL")
        if target:
            overrides["targets"] = (target,)
        if prob is not None:
            overrides["prob"] = check_fraction("--prob", prob)
        if risk is not None:
            overrides["risk"] = check_fraction("--risk", risk)
        if objective is not None:
            overrides["objective"] = check_choice("--objective", objective, OBJECTIVES)
        if spec is not None:
            r = space.response
            lo, hi = r.limits
            if not lo < spec < hi:
                raise ValueError(
                    f"--spec {spec:g} is outside the possible {r.name} values ({lo:g} to "
                    f"{hi:g} {r.unit}); give the spec in {r.unit}"
                )
            overrides["spec"] = spec
        for name, value in (("draws", draws), ("tune", tune), ("chains", chains)):
            if value is not None:
                overrides[name] = value
        pooled = None
        if groups:
            pooled = [g.strip() for item in groups for g in item.split(",") if g.strip()]
            unknown = [g for g in pooled if g not in space.groups]
            if unknown or not pooled:
                raise ValueError(
                    f"--groups {', '.join(unknown) or '(empty)'}: not a group column of the "
                    f"process; use some of {list(space.groups)}"
                )
        table = _read(data, columns, sheet) if data is not None else None
        config = replace(StudyConfig.quick() if quick else StudyConfig(), **overrides)
        started = time.perf_counter()
        with _progress() as bar, _interrupts() as interrupted:
            task = bar.add_task("study", total=8)

            def progress(stage: str, done: int, total: int) -> None:
                if interrupted:  # a sampler caught Ctrl-C: stop before the next stage
                    raise KeyboardInterrupt
                bar.update(task, completed=done, total=total, description=stage)

            result = run_study(
                out,
                data=table,
                groups=pooled,
                config=config,
                random_seed=seed,
                progress=progress,
                space=space,
                force=force,
            )
        if strict:
            flagged = ("ConvergenceWarning", "ModelDiagnosticsWarning", "ExtrapolationWarning")
            reasons = [w for w in result.warnings if any(f in w for f in flagged)]
            if reasons:
                _fail_strict(reasons[0], f"the report is at {result.report_path}")
        _say(f"report: {result.report_path}")
        _say(f"total {time.perf_counter() - started:.1f} s; {len(result.warnings)} warnings")
        for w in result.warnings:
            _say(f"warning: {w}")


@app.command("init-process")
def init_process(
    data: Data,
    sheet: Sheet = None,
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
        from bayesbio.study import atomic_path

        if out.exists() and not force:
            raise FileExistsError(f"{out} already exists; pass --force to overwrite it")
        space, notes = infer_space(_read_file(data, sheet), response=response, name=name)
        text = space_to_starter_toml(space, notes)
        with atomic_path(out) as tmp:
            tmp.write_text(text, encoding="utf-8")
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


@app.command("next")
def next_(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", "-d", help="Batch table that starts a new campaign (CSV/TSV, Excel, ...)."
        ),
    ] = None,
    sheet: Sheet = None,
    batches: Annotated[
        int | None,
        typer.Option(
            help="Number of next batches to propose (4; a continued campaign: as many as its "
            "last round proposed)."
        ),
    ] = None,
    recipe: Recipe = None,
    group: Group = None,
    columns: Columns = None,
    delta: Annotated[
        float | None,
        typer.Option(
            parser=_decimal,
            help="Tolerated loss against the recipe: each batch needs P(response >= (1 - delta) "
            "x recipe) >= 0.9, or <= (1 + delta) x recipe for a response to minimise (new "
            "campaign; 0.2).",
        ),
    ] = None,
    campaign: Annotated[
        Path | None,
        typer.Option(
            "--campaign",
            help="Continue the campaign folder an earlier `bayesbio next` wrote (OUT/campaign): "
            "same group, recipe and settings, next round.",
        ),
    ] = None,
    results: Annotated[
        Path | None,
        typer.Option(
            "--results",
            help="With --campaign: the batches run since (batch id, group columns, factors, "
            "response), added and refitted before the next proposals.",
        ),
    ] = None,
    drop: Annotated[
        list[str] | None,
        typer.Option(
            "--drop",
            help="With --campaign: a batch id to remove from the campaign (a wrong entry, a "
            "batch to exclude), repeatable; the model is refitted without it.",
        ),
    ] = None,
    draws: Draws = 1000,
    tune: Tune = 1000,
    chains: Chains = 4,
    target_accept: TargetAccept = 0.95,
    likelihood: Likelihood = "auto",
    structures: Structures = None,
    process: Process = None,
    clean: CleanFirst = False,
    out: Out = Path("output"),
    seed: Seed = 2024,
    strict: Strict = False,
) -> None:
    """Propose the next batches of a campaign (bayesbio.recommend.Campaign.recommend).

    A new campaign (--data): fits the Bayesian model, proposes --batches setpoints for --group
    by q-Thompson sampling under the safety rule, writes next_batches.csv, a results sheet
    to fill in (next_results.csv: new batch ids, setpoints, an empty response column) and the
    campaign (OUT/campaign). A later round (--campaign OUT/campaign --results FILE): adds the
    results,
    refits and proposes again, with the group, recipe and settings the campaign started with.
    """
    with _errors():
        from bayesbio.recommend import Campaign

        if (data is None) == (campaign is None):
            raise ValueError(
                "give --data (a new campaign) or --campaign (continue one), not both or neither"
            )
        if campaign is None:
            if results is not None or drop:
                raise ValueError(
                    f"{'--results adds' if results is not None else '--drop removes'} batches "
                    "of a running campaign: give it with --campaign"
                )
            _check_run_options(draws=draws, tune=tune, chains=chains)
            space = _space(process)
            params = {"draws": draws, "tune": tune, "chains": chains, "random_seed": seed}
            params.update(_model_options(likelihood, target_accept, structures))
            camp = Campaign(
                space,
                _read_data(data, columns, sheet, space, clean, out),
                model_params=params,
                group=_mapping(group, "--group", "COLUMN=LABEL"),
                recipe=_recipe(recipe, space),
                delta=0.2 if delta is None else delta,
                random_seed=seed,
            )
        else:
            fixed = {"--group": group, "--process": process, "--delta": delta, "--recipe": recipe}
            given = [name for name, value in fixed.items() if value is not None]
            defaults = inspect.signature(next_).parameters  # the options' own defaults
            given += ["--likelihood"] * (likelihood != defaults["likelihood"].default)
            given += ["--structures"] * bool(structures)
            given += ["--clean (clean the results file with `bayesbio clean`)"] * clean
            given += ["--seed"] * (seed != defaults["seed"].default)
            if given:
                raise ValueError(
                    f"{', '.join(given)} cannot change a running campaign (it keeps the "
                    "settings it started with); start a new one with --data to change them"
                )
            if not (campaign / "campaign.json").is_file():
                raise ValueError(
                    f"--campaign {campaign}: no campaign.json there; give the campaign/ "
                    "folder an earlier `bayesbio next` wrote"
                )
            camp = Campaign.load(campaign)
            _STATE["demo_space"] = False
            # sampler settings may change between rounds (the remedy for a failed check)
            sampler = _changed_sampler(camp, draws, tune, chains, target_accept)
            if drop:
                camp.drop(drop, reason="bayesbio next --drop", refit=False)
                _say(f"dropped {len(drop)} batch(es) ({', '.join(drop)}), {len(camp.table)} left")
            if results is not None:
                new = _read(results, columns)
                with _activity(f"adding {len(new)} batch(es) and refitting"), _interrupts():
                    camp.add(new)
                _say(
                    f"results of round {camp.round} added: {len(new)} batch(es), "
                    f"{len(camp.table)} in all"
                )
            elif sampler or drop:
                with _activity(f"refitting{' with ' + sampler if sampler else ''}"), _interrupts():
                    camp.fit()
        if batches is None:  # a continued campaign keeps its round size
            last = [h["proposed"] for h in camp.history if "proposed" in h]
            batches = len(last[-1]) if last and last[-1] else 4
        with _activity("fitting the model and proposing batches"), _interrupts():
            frame = camp.recommend(batches)
            best = camp.best()
        from bayesbio.summary import diagnostics_failed

        failed = diagnostics_failed(getattr(camp.model_, "diagnostics_", None))
        if strict and failed:
            _fail_strict(
                "sampling checks failed: " + "; ".join(failed),
                "nothing written; rerun with larger --draws/--tune",
            )
        _write(frame, out, "next_batches.csv")
        _write(camp.results_template(frame), out, "next_results.csv")
        camp.save(out / "campaign")
        typer.echo(_next_text(camp, frame, out, best, failed))


def _changed_sampler(camp: Any, draws: int, tune: int, chains: int, target_accept: float) -> str:
    """Apply sampler options that differ from the defaults to a running campaign's model.

    Returns what changed (``"draws 2000, tune 2000"``), empty when nothing did.
    """
    wanted = {"draws": draws, "tune": tune, "chains": chains, "target_accept": target_accept}
    defaults = inspect.signature(next_).parameters  # the options' own defaults
    change = {k: v for k, v in wanted.items() if v != defaults[k].default}
    if not change:
        return ""
    if camp.model is not None:
        raise ValueError(
            "--draws/--tune/--chains/--target-accept: this campaign fits a model of its own "
            "(a factory), whose settings the CLI cannot change"
        )
    _check_run_options(draws=draws, tune=tune, chains=chains)
    camp.model_params.update(change)
    return ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in change.items())


def _next_text(
    camp: Any, frame: Any, out: Path, best: Any = None, failed: list[str] | None = None
) -> str:
    """Return the proposed batches for people: rule, recipe, rounded values, next step."""
    from bayesbio.recommend.messages import group_text, point_text, sentence
    from bayesbio.space import number_text, with_unit

    space = camp.space
    r = space.response
    recipe = [camp.recipe[p] for p in space.factor_names] if camp.recipe else None
    group = {k: str(v) for k, v in (camp.group or {}).items()}
    shown = frame.drop(columns=["draw", "q05", "q95"], errors="ignore").copy()
    for col in space.factor_names:
        shown[col] = [number_text(v, 4) for v in shown[col]]
    for col in ("expected_yield", "sd"):
        shown[col] = [number_text(v) for v in shown[col]]
    if {"q05", "q95"} <= set(frame.columns):
        at = shown.columns.get_loc("sd") + 1
        shown.insert(
            at,
            "interval",
            [
                f"{number_text(a)}-{number_text(b)}"
                for a, b in zip(frame["q05"], frame["q95"], strict=True)
            ],
        )
    for col in ("p_safe", "p_better_than_recipe"):
        shown[col] = [f"{v:.2f}" for v in shown[col]]
    names = {f.name: with_unit(f.label, f.unit) for f in space.factors}
    names.update(
        {
            "expected_yield": with_unit(f"expected {r.label}", r.unit),
            "sd": with_unit("SD", r.unit),
            "interval": with_unit("a batch, 90 %", r.unit),
            "p_safe": "P(safe)",
            "p_better_than_recipe": "P(better than recipe)",
        }
    )
    lines = [
        f"Round {camp.round + 1}: {len(shown)} batch(es) to run"
        + (f" for {group_text(group)}" if group else "")
        + f" ({frame.attrs.get('n_safe', '?')} new setpoints passed the safety rule).",
    ]
    if recipe is not None:
        lines.append(sentence(f"Recipe (the reference): {point_text(space, recipe)}"))
    repeats = _repeated_batches(camp, frame)
    if repeats:
        lines.append(
            f"{len(repeats)} of them repeat a past batch's setpoint ("
            + ", ".join(f"batch {i + 1}: {bid}" for i, bid in repeats.items())
            + "): replicates where the model is surest; the others explore."
            if len(repeats) < len(frame)
            else "All of them repeat past batches' setpoints ("
            + ", ".join(repeats.values())
            + "): nothing untried passed the safety rule; a larger --delta lets the "
            "campaign explore."
        )
    beyond = _beyond_runs(camp, frame)
    if beyond:
        lines.append(
            "Beyond the values the group has run (the model extrapolates there; its SD says "
            "how far to trust it): " + "; ".join(beyond) + "."
        )
    lines += [f"Note: {n}" for n in frame.attrs.get("notes", [])]
    lines += [
        f"Safety rule: {frame.attrs.get('rule', '')} for every batch (P(safe)); "
        "'expected' is the posterior mean of the mean response there, SD its uncertainty; "
        "the interval is where a new batch there lands with 90 % probability.",
        shown.rename(columns=names).to_string(index=False),
    ]
    if best is not None:
        lines.append(_best_text(space, best, camp.min_confidence))
    lines.append(_checks_text(camp.model_, failed or [], out))
    lines.append(
        f"Run them, fill in the {space.response.name!r} column of {out / 'next_results.csv'} "
        "(new batch ids are in it; delete the rows of batches not run), then add the "
        f"results: bayesbio next --campaign {out / 'campaign'} --results "
        f"{out / 'next_results.csv'}"
    )
    return "\n".join(lines)


def _best_text(space: Any, best: Any, min_confidence: float) -> str:
    """One line on the campaign's current safe recommendation (Campaign.best)."""
    from bayesbio.recommend.messages import point_text
    from bayesbio.space import number_text

    unit = space.response.unit
    if best.decision == "recipe":
        return (
            f"Best so far: keep the recipe ({number_text(best.expected_yield)} {unit} "
            f"expected); no setpoint beats it with P >= {min_confidence:g} yet (the best "
            f"reaches P(better) {best.p_better_than_recipe:.2f})."
        )
    return (
        "Best so far (what to adopt if the campaign stopped now): "
        f"{point_text(space, best.setpoint.to_numpy(dtype=float))}, expected "
        f"{number_text(best.expected_yield)} {unit} (gain {number_text(best.expected_gain)} "
        f"{unit}, {best.expected_gain_pct:+.1f} % on the recipe), P(better) "
        f"{best.p_better_than_recipe:.2f}."
    )


def _checks_text(model: Any, failed: list[str], out: Path) -> str:
    """One line on the fit's sampling checks: passed with figures, or failed with the remedy."""
    diag = getattr(model, "diagnostics_", None)
    if failed:
        return (
            "Sampling checks FAILED (" + "; ".join(failed) + "): the proposals and P(safe) rest "
            f"on unreliable draws; refit with more: bayesbio next --campaign {out / 'campaign'} "
            "--draws 2000 --tune 2000 (--strict stops here instead)."
        )
    if not isinstance(diag, dict) or not diag:
        return "Sampling checks: none (the model gives no sampling diagnostics)."
    from bayesbio.summary import diagnostics_table

    nested = all(isinstance(v, dict) for v in diag.values())
    table = diagnostics_table(diag if nested else {"model": diag})
    r_hat = float(table["max_r_hat"].max())
    ess = float(table["min_ess_bulk"].min())
    div = int(table["divergences"].fillna(0).sum())
    return (
        f"Sampling checks passed (max R-hat {r_hat:.3f}, min ESS {ess:.0f}, {div} divergent "
        "transitions)."
    )


def _beyond_runs(camp: Any, frame: Any) -> list[str]:
    """Per proposal, the factors set beyond the group's own batches (by > 2 % of the range)."""
    import numpy as np

    from bayesbio.space import quantity_text

    space = camp.space
    table = camp.table
    mask = np.ones(len(table), dtype=bool)
    for col, label in (camp.group or {}).items():
        if col in table.columns:
            mask &= table[col].astype(str).to_numpy() == str(label)
    if not mask.any():
        return []
    out = []
    for i, (_, row) in enumerate(frame.iterrows()):
        said = []
        for f in space.factors:
            if f.fixed is not None:
                continue
            ran = table.loc[mask, f.name].astype(float)
            slack = 0.02 * (f.operating[1] - f.operating[0])
            value = float(row[f.name])
            if value > ran.max() + slack:
                edge = f"highest run {quantity_text('', float(ran.max()), f.unit).strip()}"
            elif value < ran.min() - slack:
                edge = f"lowest run {quantity_text('', float(ran.min()), f.unit).strip()}"
            else:
                continue
            said.append(f"{quantity_text(f.label, value, f.unit)} ({edge})")
        if said:
            out.append(f"batch {i + 1}: " + ", ".join(said))
    return out


def _repeated_batches(camp: Any, frame: Any) -> dict[int, str]:
    """Proposals (by position) whose setpoint is a past batch's, with that batch's id."""
    import numpy as np

    space = camp.space
    names = list(space.factor_names)
    past = camp.table[names].to_numpy(dtype=float)
    ids = camp.table[space.batch_id].astype(str).to_numpy() if space.batch_id in camp.table else []
    tol = 1e-6 * (space.upper - space.lower)
    out = {}
    for i, row in enumerate(frame[names].to_numpy(dtype=float)):
        same = np.flatnonzero((np.abs(past - row) <= tol).all(axis=1))
        if len(same):
            out[i] = str(ids[same[0]]) if len(ids) else f"row {same[0]}"
    return out


def main() -> None:  # pragma: no cover - console entry point
    """Run the CLI."""
    app()
