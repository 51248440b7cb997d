"""The end-to-end study: simulate or read, clean, EDA, compare, fit, recommend, harvest.

:func:`run_study` runs every stage of bayesbio on one batch table of one process (a
:class:`~bayesbio.space.ProcessSpace`; default the demo process) with one ``random_seed`` and
writes tables, figures, the fitted model and a self-contained HTML report into an output
folder. Without ``data`` the table is simulated for the space with labelled defects, so every
claim in the report is also scored against the simulator's ground truth; on a user's own
table (``data=``) the same stages run without the truth columns.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from bayesbio import schema
from bayesbio.models._discrepancy import MIN_PAIRS
from bayesbio.models.protocol import FAILED_PROB, OUTLIER_WEIGHT, YieldModel, discounted
from bayesbio.profiler import plot_profiler
from bayesbio.report import Report
from bayesbio.space import (
    ProcessSpace,
    display_unit,
    is_campaign,
    lower_first,
    number_text,
    quantity_text,
    resolve_space,
    unit_suffix,
    volume_first,
    with_unit,
)
from bayesbio.summary import (
    DIAGNOSTIC_LABELS,
    diagnostics_failed,
    diagnostics_table,
    study_summary,
    worth_a_batch,
)

__all__ = [
    "MANIFEST",
    "StudyConfig",
    "StudyResult",
    "atomic_path",
    "read_table",
    "run_study",
    "safe_name",
    "write_tables",
]

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
    structures : tuple of str, default ("quadratic", "gp")
        Response-surface structures stacked for model risk.
    likelihood : str, default "auto"
        Likelihood of the Bayesian model (``"auto"``, ``"normal"``, ``"student_t"``,
        ``"mixture"``; see :class:`~bayesbio.models.BayesianYieldModel`).
    target_accept : float, default 0.95
        NUTS target acceptance rate (higher: smaller steps, fewer divergent transitions).
    spec_quantile : float, default 0.1
        Unless ``spec`` is given, each target group's spec is this quantile of its own cleaned
        batches' responses (the upper quantile ``1 - spec_quantile`` for a response to
        minimise), a level nine in ten of its past batches met with the default: its design
        space holds the setpoints where a new batch meets that level with the required
        probability.
        A group with fewer than 5 batches takes the quantile over its first grouping level
        (the scale), or over all batches.
    spec : float or None, default None
        Response specification in the response's unit, the same for every group.
    prob : float, default 0.8
        Required probability of meeting the spec inside the design space.
    objective : str, default "cvar"
        Recommendation objective (see :func:`bayesbio.recommend.recommend`).
    risk : float, default 0.1
        Quantile level (``"quantile"``) or tail fraction (``"cvar"``) of the objective.
    harvest_replications : int, default 100
        Replications of the harvest case study.
    harvest_sizes : tuple of int, default (3, 10)
        Historical data sizes of the harvest case study.
    harvest : bool or None, default None
        Run the harvest case study (a growth-model study of its own, independent of the
        batch table). None: only for the demo process.
    design_resolution : int, default 6
        Grid points per factor of the design-space search.
    transfer_risk : bool, default False
        Recommendations and design spaces judge each group's moves with its own slope risk
        (``transfer_risk`` of :func:`bayesbio.recommend.recommend`): for optima that move
        with scale.
    recipe : dict of str to float or None, default None
        The plant's recipe, ``{factor: value}``, the reference of every "P(better than
        recipe)", keep-the-recipe decision and safety rule in every target group; factors
        not given (or None) take each group's median historical setpoint.
    targets : tuple of dict of str to str, or None, default None
        The groups to recommend for, each ``{group column: label}`` (e.g. ``({"scale":
        "300L", "site": "Basel"},)``); labels are matched ignoring case and spaces and
        checked against the data before any fit. None: for each outermost group level (each
        scale), the group with the most batches, at most 3.
    """

    n_batches: int = 48
    design: str = "historical"
    defects: bool = True
    clean_policy: str = "default"
    cv_splits: int = 5
    draws: int = 1000
    tune: int = 1000
    chains: int = 4
    structures: tuple[str, ...] = ("quadratic", "gp")
    likelihood: str = "auto"
    target_accept: float = 0.95
    spec_quantile: float = 0.1
    spec: float | None = None
    prob: float = 0.8
    objective: str = "cvar"
    risk: float = 0.1
    harvest_replications: int = 100
    harvest_sizes: tuple[int, ...] = (3, 10)
    harvest: bool | None = None
    design_resolution: int = 6
    transfer_risk: bool = False
    recipe: dict[str, float] | None = None
    targets: tuple[dict[str, str], ...] | None = None

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


#: StudyConfig fields that only the simulated data use (left out of a user table's report)
_SIMULATION_SETTINGS = frozenset({"n_batches", "design", "defects"})


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
        Wall time per stage, seconds, and of the figures, tables and report between them
        (``"figures, tables and report"``, up to the report's last table).
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


def read_table(path: str | Path, sheet: str | int | None = None) -> pd.DataFrame:
    """Read a user's batch table (see :func:`bayesbio.io.read_table`).

    CSV/TSV in any common encoding, delimiter and decimal separator, Excel ``.xlsx`` or Parquet.

    Parameters
    ----------
    path : str or path
        The data file.
    sheet : str or int, optional
        Worksheet of an Excel workbook; default the sheet holding the most numbers.

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

    return _read(path, sheet=sheet)


class _Stages:
    """Runs named stages, timing them, collecting warnings and reporting progress."""

    def __init__(self, progress: Callable[[str, int, int], None] | None, total: int) -> None:
        self.progress = progress
        self.total = total
        self.done = 0
        self.timings: dict[str, float] = {}
        self.warnings: list[str] = []
        self.start = time.perf_counter()

    def run(self, name: str, func: Callable[[], Any]) -> Any:
        if self.progress is not None:
            self.progress(name, self.done, self.total)
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = func()
        self.timings[name] = time.perf_counter() - start
        for w in caught:
            if any(text in str(w.message) for text in NOT_FOR_THE_USER):
                _log.debug("study stage %s: %s", name, w.message)
                continue
            message = f"[{name}] {w.category.__name__}: {w.message}"
            if message not in self.warnings:
                self.warnings.append(message)
        self.done += 1
        if self.progress is not None:
            self.progress(name, self.done, self.total)
        _log.info("study stage %s took %.1f s", name, self.timings[name])
        return result


def likely_failed_batches(
    model: Any,
    table: pd.DataFrame,
    log: pd.DataFrame,
    space: ProcessSpace,
    threshold: float | None = None,
) -> pd.DataFrame | None:
    """Return the batches the model treats as failed or outlying, with the cleaner's flags.

    Parameters
    ----------
    model : fitted model
        A model with ``failure_prob_`` (mixture likelihood: batches with posterior P(failed)
        >= ``threshold``) or ``batch_weight_`` (Student-t likelihood: batches weighing less
        than ``threshold`` of a typical batch in the fit); others give None.
    table : pandas.DataFrame
        The cleaned batch table the model was fitted on.
    log : pandas.DataFrame
        The cleaner's audit log (``batch_id``, ``reason`` columns).
    space : ProcessSpace
        The process space (response and batch id names).
    threshold : float, optional
        Smallest posterior P(failed) listed (mixture; default :data:`FAILED_PROB`, 0.5) or
        largest weight listed (Student-t; default :data:`OUTLIER_WEIGHT`, 0.25), the rule of
        :func:`bayesbio.models.protocol.discounted`.

    Returns
    -------
    pandas.DataFrame or None
        One row per batch, most extreme first: batch id, group labels, response,
        ``P(failed)`` (mixture) or ``weight in the fit`` (Student-t), and ``cleaner's
        flags`` (the reasons the cleaner logged for that batch, or "none"); None when the
        model has neither attribute.
    """
    found = discounted(model, table.index, threshold)
    if found is None:
        return None
    keep, kind = found
    column = {"p_failed": "P(failed)", "weight": "weight in the fit"}[kind]
    bid = space.batch_id
    cols = [c for c in (bid, *space.group_columns(table), space.response.name) if c in table]
    out = table.loc[keep.index, cols].copy()
    out[column] = keep.round(3).to_numpy()
    flags: dict[str, str] = {}
    if bid in table.columns and len(log) and {"batch_id", "reason"} <= set(log.columns):
        if "kind" in log.columns:  # a number read from text ("34,6") is not a flag on a batch
            log = log[~log["kind"].isin(["text", "text_missing"])]
        for key, part in log.groupby(log["batch_id"].astype(str)):
            flags[key] = "; ".join(dict.fromkeys(part["reason"].astype(str)))
    if bid in out.columns:
        out["cleaner's flags"] = [flags.get(str(b), "none") for b in out[bid]]
    for c in _note_columns(table, space):
        notes = table.loc[keep.index, c]
        if notes.notna().any():  # the operator's own words on these batches, as written
            out[c] = notes.fillna("").astype(str).to_numpy()
    return out.reset_index(drop=True)


def _flagged_batches(log: pd.DataFrame, space: ProcessSpace) -> list[str]:
    """Batch ids the cleaner flagged (kept, not changed) in the response column."""
    need = {"batch_id", "column", "action"}
    if log is None or not len(log) or not need <= set(log.columns):
        return []
    rows = log[(log["action"] == "flagged") & (log["column"] == space.response.name)]
    return sorted(set(rows["batch_id"].dropna().astype(str)))


def _note_columns(table: pd.DataFrame, space: ProcessSpace) -> list[str]:
    """Free-text columns the model does not use (operator notes, comments), in table order.

    Text columns that are not the batch id, a group, a factor or the response, whose filled
    cells are mostly distinct and not dates.
    """
    used = {space.batch_id, space.response.name, *space.factor_names}
    used |= set(space.group_columns(table))
    found = []
    for c in table.columns:
        if c in used or pd.api.types.is_numeric_dtype(table[c]):
            continue
        filled = table[c].dropna().astype(str).str.strip()
        filled = filled[filled != ""]
        if filled.empty or filled.nunique() <= len(filled) // 2:
            continue  # empty, or repeated labels (an unused group column)
        with warnings.catch_warnings():  # mixed formats: a date parse per cell, quietly
            warnings.simplefilter("ignore")
            dates = pd.to_datetime(filled, errors="coerce", format="mixed")
        if dates.notna().mean() >= 0.8:
            continue
        found.append(str(c))
    return found


#: Warnings about the installation, not about the data or the results: logged, not reported
#: (PyTensor's C backend without BLAS only runs the few non-sampling graphs more slowly).
NOT_FOR_THE_USER = ("PyTensor could not link to a BLAS installation",)

#: The manifest a study writes into its output folder: the files it owns there.
MANIFEST = ".bayesbio-study.json"
_STAGING = ".bayesbio-staging-"
#: Files every study writes: checked before the run starts (all others when it ends).
_FIXED_OUTPUTS = ("report.html", "model.nc", "raw_batches.csv", "clean_batches.csv")


def safe_name(name: str) -> str:
    """Return ``name`` usable as a file name on every OS (group labels may hold "/" or spaces).

    Parameters
    ----------
    name : str
        A label, e.g. ``"scale=2000 L/site=B"``.

    Returns
    -------
    str
        Letters (of any script), digits, ``.``, ``_`` and ``-`` only (``"scale-2000-L-site-B"``,
        ``"Werk-Süd"``); ``"unnamed"`` when nothing is left.
    """
    safe = re.sub(r"[^\w.-]+", "-", str(name)).strip("-.")  # letters of any script: "Süd"
    return safe or "unnamed"


_safe_name = safe_name


def _temporary_name(path: Path) -> Path:
    """Return a hidden temporary name beside ``path``, keeping its extension."""
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Write a file under a temporary name in its folder, then rename it onto ``path``.

    ``os.replace`` is atomic on one file system, so a reader (or a later run) sees either
    the earlier file or the complete new one, never a half-written file; on any error,
    ``KeyboardInterrupt`` included, the temporary file is removed and ``path`` is untouched.

    Parameters
    ----------
    path : str or path
        The file to write; its folder is created if needed.

    Yields
    ------
    pathlib.Path
        The temporary path to write to (same folder and extension as ``path``).

    Examples
    --------
    >>> with atomic_path(folder / "table.csv") as tmp:  # doctest: +SKIP
    ...     frame.to_csv(tmp, index=False)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_tables(frames: Mapping[str, pd.DataFrame], folder: str | Path) -> list[Path]:
    """Write several CSV tables into ``folder`` together: all or none.

    Every table is first written under a temporary name; only when all are complete are they
    renamed onto their names, so an interrupted run never leaves a new table beside a
    truncated or stale companion (a cleaned table and its audit log, say).

    Parameters
    ----------
    frames : mapping of str to pandas.DataFrame
        ``{file name: table}``, e.g. ``{"clean_batches.csv": table}``; written without the
        index.
    folder : str or path
        Target folder (created if needed).

    Returns
    -------
    list of pathlib.Path
        The files written, in the order given.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    done: list[tuple[Path, Path]] = []
    try:
        for name, frame in frames.items():
            path = folder / name
            tmp = _temporary_name(path)
            done.append((tmp, path))
            frame.to_csv(tmp, index=False)
        for tmp, path in done:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in done:
            tmp.unlink(missing_ok=True)
        raise
    return [path for _, path in done]


class _OutputFolder:
    """A study's output folder, written through a staging folder and listed in a manifest.

    The study writes into a hidden staging folder inside ``out``. Only when it has finished
    are its files moved into ``out`` (``os.replace``), after the files of an earlier study
    listed in ``out``'s manifest are removed; a failed or interrupted run removes the staging
    folder and leaves ``out`` as it was. Files the manifest does not list (the user's own)
    are never removed, and replaced only with ``force``.
    """

    def __init__(self, out: Path, *, force: bool) -> None:
        self.out = out
        self.force = bool(force)
        self.created = False
        self.staging: Path | None = None

    @staticmethod
    def _is_own_name(name: Any) -> bool:
        if not isinstance(name, str) or not name or name == MANIFEST:
            return False
        parts = PurePosixPath(name).parts
        return not PurePosixPath(name).is_absolute() and ".." not in parts and "\\" not in name

    def owned(self) -> list[str]:
        """Files of an earlier study in ``out``, as listed by its manifest."""
        path = self.out / MANIFEST
        if not path.is_file():
            return []
        try:
            listed = json.loads(path.read_text(encoding="utf-8"))["files"]
        except (ValueError, KeyError, TypeError, OSError):
            raise ValueError(
                f"{path}: the list of an earlier study's files cannot be read; delete that "
                "file (the study then treats the folder's files as yours) or choose another "
                "output folder"
            ) from None
        return [n for n in listed if self._is_own_name(n)] if isinstance(listed, list) else []

    def _check_foreign(self, names: Sequence[str]) -> None:
        owned = set(self.owned())
        foreign = [n for n in names if n not in owned and (self.out / n).exists()]
        if foreign and not self.force:
            shown = ", ".join(foreign[:3]) + (
                f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
            )
            raise FileExistsError(
                f"output folder {self.out} already holds {shown}, not written by an earlier "
                "bayesbio study; choose another output folder (`bayesbio study --out DIR`), or "
                "replace them with --force (run_study(..., force=True))"
            )

    def open(self) -> Path:
        """Create ``out`` and a fresh staging folder in it; return the staging folder."""
        if self.out.exists() and not self.out.is_dir():
            raise NotADirectoryError(
                f"output folder {self.out} is a file; choose a folder (`bayesbio study --out DIR`)"
            )
        self.created = not self.out.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        self._check_foreign(_FIXED_OUTPUTS)
        for old in self.out.glob(f"{_STAGING}*"):  # left by a run that was killed
            pid = old.name[len(_STAGING) :].split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(old, ignore_errors=True)
        self.staging = self.out / f"{_STAGING}{os.getpid()}-{time.time_ns()}"
        self.staging.mkdir()
        return self.staging

    def _write_manifest(self, names: Sequence[str]) -> None:
        text = json.dumps({"written_by": "bayesbio study", "files": sorted(names)}, indent=1)
        with atomic_path(self.out / MANIFEST) as tmp:
            tmp.write_text(text, encoding="utf-8")

    def commit(self) -> None:
        """Replace an earlier study's files by the staged ones."""
        assert self.staging is not None
        new = sorted(
            p.relative_to(self.staging).as_posix() for p in self.staging.rglob("*") if p.is_file()
        )
        self._check_foreign(new)
        owned = self.owned()
        self._write_manifest(sorted(set(owned) | set(new)))  # covers both while files move
        for name in owned:
            target = self.out / name
            if name not in new and (target.is_file() or target.is_symlink()):
                target.unlink()
        for name in new:
            target = self.out / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.staging / name, target)
        self._write_manifest(new)
        shutil.rmtree(self.staging, ignore_errors=True)
        for folder in sorted({(self.out / n).parent for n in owned}, reverse=True):
            if folder != self.out and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()

    def abort(self) -> None:
        """Remove the staging folder (and ``out`` if this run created it and it is empty)."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
        if self.created and self.out.is_dir() and not any(self.out.iterdir()):
            self.out.rmdir()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours
        return True
    return True


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
    """Return the cleaning actions to confirm.

    Columns read under another name (not those the process file declares: those are the
    user's own statement) or converted from a declared unit, values repaired as unit slips
    (per column), and merged group labels.
    """
    if not len(log) or not {"action", "reason", "column"} <= set(log.columns):
        return []
    reasons = log.loc[log["action"].isin(["renamed", "converted"]), "reason"].astype(str)
    notes = [
        f"[clean] {reason}"
        for reason in reasons.unique()
        if not reason.endswith("(declared in the process space)")
    ]
    if "kind" in log.columns:
        slips = log[(log["action"] == "repaired") & (log["kind"] == "unit")]
        for col, part in slips.groupby("column", sort=False):
            example = str(part["reason"].iloc[0])
            notes.append(
                f"[clean] {len(part)} value(s) in {col!r} repaired as unit slips (e.g. "
                f"{example}); check them in the cleaning log"
            )
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
    cols = volume_first([c for c in groups if c in table.columns], table)
    if not cols:
        return [{}]
    counts = table.groupby(cols).size().sort_values(ascending=False, kind="stable")
    chosen: dict[str, dict[str, str]] = {}
    for key in counts.index:
        key = key if isinstance(key, tuple) else (key,)
        chosen.setdefault(str(key[0]), dict(zip(cols, map(str, key), strict=True)))
    return list(chosen.values())


#: Fewest batches of a group whose own responses set its default spec.
MIN_SPEC_BATCHES = 5


def group_spec(
    table: pd.DataFrame,
    response: str,
    group: Mapping[str, str],
    quantile: float,
    *,
    maximise: bool = True,
) -> tuple[float, str]:
    """Return a group's default spec: a quantile of its own batches' responses.

    Parameters
    ----------
    table : pandas.DataFrame
        The cleaned batch table.
    response : str
        Response column.
    group : mapping
        Group labels, most specific last (e.g. ``{"scale": "2000L", "site": "B"}``); empty for
        the whole table.
    quantile : float
        Quantile of the responses, in (0, 1); for a response to minimise the upper quantile
        ``1 - quantile`` is used, so the spec is "as good as" the same share of batches.
    maximise : bool, default True
        Direction of the response.

    Returns
    -------
    tuple of (float, str)
        The spec and which batches it was taken from (e.g. ``"2000L / B batches (9)"``);
        a group with fewer than :data:`MIN_SPEC_BATCHES` batches falls back to its first
        grouping level, then to all batches.
    """
    q = quantile if maximise else 1.0 - quantile
    items = list(group.items())
    for depth in range(len(items), -1, -1):
        keys = items[:depth]
        mask = np.ones(len(table), dtype=bool)
        for col, label in keys:
            mask &= table[col].astype(str).to_numpy() == str(label)
        values = pd.to_numeric(table.loc[mask, response], errors="coerce").dropna()
        if len(values) >= MIN_SPEC_BATCHES or (depth == 0 and len(values)):
            where = " / ".join(str(v) for _, v in keys) if keys else "all"
            return float(values.quantile(q)), f"{where} batches ({len(values)})"
    raise ValueError(f"no {response!r} values to set a spec from")


def _spec_text(
    specs: Mapping[str, tuple[float, str]], quantile: float, unit: str, maximise: bool
) -> str:
    """Say the spec of each target group and where it came from."""
    values = list(specs.items())
    if all(source == "given" for _, (_, source) in values):
        return f"spec {number_text(values[0][1][0])} {unit}"
    pct = round(100 * (quantile if maximise else 1 - quantile))
    parts = [f"{name} {number_text(v)} {unit} ({src})" for name, (v, src) in values]
    return (
        f"spec per group, the {pct}th percentile of its own batches (of its scale or of all "
        f"batches where it has fewer than {MIN_SPEC_BATCHES}): " + "; ".join(parts)
    )


def resolve_targets(
    targets: Sequence[Mapping[str, Any]], groups: Sequence[str], table: pd.DataFrame
) -> list[dict[str, str]]:
    """Return the study's target groups with the data's own labels, or say what is wrong.

    Each target names group columns the study pools over; labels are matched as
    :func:`~bayesbio.recommend.context.resolve_group` matches them (up to case and spaces:
    "300 l" -> "300L").
    """
    from bayesbio.recommend.context import resolve_group

    out = []
    for target in targets:
        if not target:
            raise ValueError("targets: an empty group; give COLUMN=LABEL pairs")
        for col in target:
            if col not in groups or col not in table.columns:
                raise ValueError(
                    f"target group {dict(target)}: {col!r} is not a group column of the "
                    f"study; use some of {list(groups)}"
                )
        resolved, _, _ = resolve_group(
            table,
            list(target),
            target,
            allow_new=False,
            new_hint="A study recommends for groups its data hold (targets, `study -g`)",
        )
        out.append(resolved)
    return out


def _groups_text(
    groups: Sequence[str],
    table: pd.DataFrame,
    chosen: Sequence[Mapping[str, str]],
    given: bool = False,
) -> str:
    """Say which groups got a recommendation and which did not (the rule of _site_groups)."""
    cols = volume_first([c for c in groups if c in table.columns], table)
    if not cols or not chosen or not chosen[0]:
        return ""
    all_groups = table.groupby(cols).size()
    left = len(all_groups) - len(chosen)
    if left <= 0 and not given:
        return ""
    if given:
        rule = " The groups shown are those given (targets, `study -g COLUMN=LABEL`)"
    elif len(cols) > 1:
        rule = f" For each {cols[0]}, the {'/'.join(cols[1:])} with the most batches is shown"
    else:
        rule = f" The {cols[0]} levels with the most batches are shown"
    return (
        f"{rule}{'' if given else ' (at most 3 groups)'}; {max(left, 0)} other group(s) of "
        "the data are not: run `bayesbio recommend --model model.nc -g COLUMN=LABEL` (one -g "
        "per group column) for them, or name the groups with `bayesbio study -g`."
    )


def _plain_index(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with a named or non-default index as columns, no unnamed index column."""
    if isinstance(frame.index, pd.RangeIndex) and frame.index.name is None:
        return frame.reset_index(drop=True)
    return frame.reset_index()


def _ranges_text(space: ProcessSpace) -> str:
    """``"Mixing time 10 to 120 s, pH 6.6 to 7.5."`` (units left out for pH)."""
    text = ", ".join(
        f"{f.label} {f.operating[0]:g} to {f.operating[1]:g}" + unit_suffix(f.unit)
        for f in space.factors
    )
    return text if text.endswith(".") else text + "."


def _group_title(group: Mapping[str, Any]) -> str:
    """``"scale 2000L, site A"`` (``"all batches"`` for no group)."""
    return ", ".join(f"{k} {v}" for k, v in group.items()) or "all batches"


def lack_of_fit_text(model: Any) -> str:
    """One paragraph on the model's lack-of-fit test (empty for a model without one).

    Parameters
    ----------
    model : fitted yield model
        A model with ``lack_of_fit_`` (:class:`~bayesbio.models.BayesianYieldModel`).

    Returns
    -------
    str
        What the residual SD of the surface was compared with and what follows from it.
    """
    lack = getattr(model, "lack_of_fit_", None)
    if not lack:
        return ""
    pairs = int(lack["replicate_pairs"])
    sigma = 100 * float(lack["model_sigma"])
    head = f"Lack of fit: the surface's residual SD is {sigma:.1f} % (log scale)"
    if pairs < MIN_PAIRS:
        return (
            f"{head}; with {pairs} pair(s) of near-replicate batches (same group, almost the "
            "same setpoints) it cannot be told apart from batch-to-batch noise, so "
            "predictions use the surface's own uncertainty. Replicated batches make this test "
            "possible."
        )
    pure = 100 * float(lack["pure_error"])
    upper = 100 * float(lack["pure_error_upper"])
    base = (
        f"{head}, pure error from {pairs} near-replicate pairs {pure:.1f} % "
        f"(90 % bound {upper:.1f} %)"
    )
    if not lack["detected"]:
        return base + ": the surface fits within pure error."
    if not lack["active"]:
        return (
            base + ": the surface misses structure in the data, and its uncertainty about the "
            "mean yield away from the batches is too narrow. Fit with discrepancy=True to carry "
            "the excess as a model-discrepancy field, or add structure (varying slopes, the GP)."
        )
    return (
        base
        + f": the surface misses structure in the data. The excess ({100 * lack['amplitude']:.1f} "
        "% SD) is carried as a model-discrepancy field: predictions near the batches follow "
        "them, and away from them the uncertainty of the mean yield is wider, so "
        "recommendations need a larger predicted gain to beat the recipe."
    )


def calibration_warning(
    summary: pd.DataFrame, n_batches: int, *, model: str = "Bayesian", level: float = 0.9
) -> str | None:
    """Return a warning when a model's cross-validated intervals were too narrow beyond chance.

    Parameters
    ----------
    summary : pandas.DataFrame
        :attr:`~bayesbio.evaluate.Comparison.summary` with a ``coverage_<level>`` metric.
    n_batches : int
        Held-out batches behind the coverage (each batch held out once).
    model : str, default "Bayesian"
        The model's name in ``summary``.
    level : float, default 0.9
        Nominal coverage of the interval.

    Returns
    -------
    str or None
        The warning, when the share of held-out batches inside the intervals is below the
        nominal level with a one-sided binomial p-value under 0.05; otherwise None.
    """
    frame = summary.reset_index() if "model" not in summary.columns else summary
    metric = f"coverage_{round(100 * level)}"
    rows = frame[(frame["model"] == model) & (frame["metric"] == metric)]
    if rows.empty or n_batches < 1 or not np.isfinite(rows["mean"].iloc[0]):
        return None
    cov = float(rows["mean"].iloc[0])
    k = round(cov * n_batches)
    p = float(stats.binom.cdf(k, n_batches, level))
    if p >= 0.05:
        return None
    return (
        f"[compare] CalibrationWarning: in cross-validation the {model} model's "
        f"{100 * level:.0f} % predictive intervals held {100 * cov:.0f} % of the held-out "
        f"batches (about {k} of {n_batches}; binomial p = {p:.2g} against {100 * level:.0f} "
        "%): on this data its intervals are too narrow, so its probabilities (P(meet spec), "
        "P(better than the recipe), design spaces) are optimistic. Ask for more margin (a "
        "higher probability or a stricter spec), check the outlying batches, or add batches "
        "where the recommendations go."
    )


def _weights_text(model: Any) -> str:
    weights = getattr(model, "stacking_weights_", None)
    if weights is None:
        return "not available"
    items = weights.items() if hasattr(weights, "items") else enumerate(weights)
    return ", ".join(f"{k} {100 * float(w):.0f} %" for k, w in items)


_METRICS = {
    "rmse": ("RMSE", True),
    "mae": ("MAE", True),
    "crps": ("CRPS", True),
    "r2": ("R2", False),
    "coverage_50": ("50 % interval coverage", False),
    "coverage_90": ("90 % interval coverage", False),
    "width_90": ("90 % interval width", True),
}


def _comparison_display(summary: pd.DataFrame, unit: str) -> pd.DataFrame:
    """Cross-validation scores as one row per model, ``mean +- SE`` per metric."""
    if not {"model", "metric", "mean"} <= set(summary.columns):
        return summary
    rows = []
    for model_name, part in summary.groupby("model", sort=False):
        row: dict[str, str] = {"model": str(model_name)}
        by_metric = part.set_index("metric")
        for key, (name, has_unit) in _METRICS.items():
            if key not in by_metric.index:
                continue
            mean = float(by_metric.loc[key, "mean"])
            se = float(by_metric.loc[key, "se"]) if "se" in by_metric.columns else float("nan")
            header = f"{name} [{unit}]" if has_unit else name
            row[header] = number_text(mean) + (
                f" +- {number_text(se, 2)}" if np.isfinite(se) else ""
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _recommendation_display(
    rec_table: pd.DataFrame, space: ProcessSpace, groups: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, str], dict[str, str]]:
    """Return the recommendation table for people: group columns first, units in headers."""
    r = space.response
    unit = display_unit(r.unit)
    bad = "q10" if r.maximise else "q90"
    wanted = [
        *[g for g in groups if g in rec_table.columns],
        "setpoint",
        *space.factor_names,
        "expected_yield",
        bad,
        "prob_spec",
        "p_better_than_recipe",
        "within_support",
        "true_regret_pct",
    ]
    shown = rec_table[[c for c in wanted if c in rec_table.columns]].copy()
    shown["setpoint"] = shown["setpoint"].astype(str).str.replace("_", "-")
    if "prob_spec" in shown.columns and shown["prob_spec"].isna().all():
        shown = shown.drop(columns="prob_spec")
    units = {f.name: f.unit for f in space.factors if f.unit.strip().lower() != "ph"}
    units.update({"expected_yield": unit, bad: unit})
    labels = {f.name: f.label for f in space.factors}
    labels.update(
        {
            "setpoint": "setting",
            "expected_yield": f"expected {lower_first(r.label)}",
            bad: f"{bad[1:]}th percentile",
            "prob_spec": "P(meet spec)",
            "p_better_than_recipe": "P(better than recipe)",
            "within_support": "within data support",
            "true_regret_pct": "true regret [%] (simulator)",
        }
    )
    return shown, units, labels


def _next_display(
    next_table: pd.DataFrame, space: ProcessSpace, groups: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, str], dict[str, str]]:
    from bayesbio.recommend.acquisition import SAFE_LOSS

    unit = display_unit(space.response.unit)
    wanted = [
        *[g for g in groups if g in next_table.columns],
        "rank",
        *space.factor_names,
        "expected_regret_reduction",
        "expected_yield",
        "posterior_sd",
        "p_safe",
    ]
    shown = next_table[[c for c in wanted if c in next_table.columns]].reset_index(drop=True)
    units = {f.name: f.unit for f in space.factors if f.unit.strip().lower() != "ph"}
    units.update({"expected_regret_reduction": unit, "expected_yield": unit, "posterior_sd": unit})
    labels = {f.name: f.label for f in space.factors}
    labels.update(
        {
            "expected_regret_reduction": "expected cut in regret",
            "expected_yield": f"expected mean {lower_first(space.response.label)}",
            "posterior_sd": "uncertainty (SD)",
            "p_safe": f"P(at most {100 * SAFE_LOSS:g} % worse than the recipe)",
        }
    )
    return shown, units, labels


def _recipe_text(recipe: Mapping[str, float] | None, space: ProcessSpace) -> str:
    """Return the report's sentence on the recipe: the one given, or each group's median."""
    if not recipe:
        return " The recipe of a group is its median historical setpoint."
    given = "; ".join(
        quantity_text(space.factor(k).label, v, space.factor(k).unit) for k, v in recipe.items()
    )
    rest = len(recipe) < space.k
    return f" The recipe is the one given ({given})" + (
        "; other factors at each group's median historical setpoint." if rest else "."
    )


def _next_batches(
    model: Any, rec: Any, group: Mapping[str, str], space: ProcessSpace, seed: int
) -> pd.DataFrame:
    """Rank 40 candidates (the recommendation, the recipe and 38 random setpoints) per group."""
    from bayesbio.recommend import next_batches

    rng = np.random.default_rng(seed)
    cands = pd.DataFrame(
        rng.uniform(space.lower, space.upper, size=(38, space.k)), columns=space.factor_names
    )
    for name, value in space.fixed.items():
        cands[name] = value
    cands = pd.concat(
        [rec.setpoint.to_frame().T, rec.recipe.to_frame().T, cands], ignore_index=True
    ).astype(float)
    # a recommendation to keep the recipe is the recipe: one candidate, not two
    cands = cands[~cands.round(9).duplicated()].reset_index(drop=True)
    ranked = next_batches(
        model,
        cands,
        k=3,
        group=group or None,
        n_draws=400,
        n_outcomes=48,
        n_decisions=128,
        random_seed=seed,
    )
    return ranked.assign(**dict(group)) if group else ranked


def _write_summary(
    report: Report,
    overview: pd.DataFrame,
    *,
    space: ProcessSpace,
    specs: Mapping[str, float],
    objective: str,
    n_raw: int,
    n_kept: int,
    per_column: pd.DataFrame | None,
    diagnostics: Any,
    simulated: bool,
    recipe_given: bool = False,
) -> None:
    """Write the one-screen summary at the top of the report."""
    r = space.response
    unit = display_unit(r.unit)
    level = overview.attrs.get("bad_case_level", 10 if r.maximise else 90)
    report.start_summary("Summary")
    better = "higher" if r.maximise else "lower"
    report.text(
        f"What to run per target group, with the expected {r.noun} of a new batch and "
        f"a bad batch ({level}th percentile) against the group's recipe ("
        + ("the one given" if recipe_given else "its median historical setpoint")
        + f"); P(better) is the probability that the mean {r.noun} at the recommendation "
        f"is {better} than at the recipe. Objective: {objective}."
    )
    shown = pd.DataFrame(
        {
            "group": overview["group"],
            "run at": overview["run"],
            with_unit(f"expected {lower_first(r.label)}", r.unit): [
                f"{number_text(a)} (recipe {number_text(b)})"
                for a, b in zip(overview["expected"], overview["recipe_expected"], strict=True)
            ],
            f"{level}th percentile [{unit}]": [
                f"{number_text(a)} (recipe {number_text(b)})"
                for a, b in zip(overview["bad_case"], overview["recipe_bad_case"], strict=True)
            ],
            "P(better than recipe)": [f"{p:.2f}" for p in overview["p_better"]],
            "main risk": overview["main_risk"],
            "run next": overview["run_next"],
        }
    )
    report.table(shown)
    failed = diagnostics_failed(diagnostics if isinstance(diagnostics, Mapping) else None)
    facts = [
        f"Data: {n_kept} of {n_raw} batches used"
        + (" (simulated from the process space)" if simulated else "")
    ]
    if per_column is not None and {"column", "share"} <= set(per_column.columns):
        changed = per_column[per_column["share"] > 0]
        if len(changed):
            facts.append(
                "rows dropped or repaired: "
                + ", ".join(
                    f"{c} {100 * float(v):.0f} %"
                    for c, v in zip(changed["column"], changed["share"], strict=True)
                )
            )
    facts.append(
        "model sampling checks: " + ("failed (" + "; ".join(failed) + ")" if failed else "passed")
    )
    facts.append(", ".join(f"spec {k} {number_text(v)} {unit}" for k, v in specs.items()))
    report.text("; ".join(facts) + ".")


def _run_study(
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
    """Run every stage, writing into ``out_dir`` (the staging folder of :func:`run_study`)."""
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
            "config": ", ".join(
                f"{k}={'/'.join(map(str, v)) if isinstance(v, tuple) else v}"
                for k, v in asdict(cfg).items()
                # settings of what did not run: the simulator with a user table, the
                # harvest case study when it is off
                if not (data is not None and k in _SIMULATION_SETTINGS)
                and not (not run_harvest and k.startswith("harvest_"))
            ),
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
        groups = [g for g in space.group_columns(table) if not is_campaign(g)]
    groups = list(groups)
    targets = resolve_targets(cfg.targets, groups, table) if cfg.targets else None
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
        shown = per_column.copy()
        if "share" in shown.columns:
            shown["share"] = 100 * shown["share"]
        report.table(
            shown,
            caption="Cleaning actions per column (rows changed or dropped)",
            labels={"share": "share changed [%]"},
        )
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
        report.table(
            score.assign(**{"detected share": 100 * score["detected share"]}),
            caption="Injected defects found by the cleaner (simulator labels)",
            labels={"detected share": "detected [%]"},
        )

    # 3. EDA
    eda_result = stages.run(
        "eda",
        lambda: eda.run_eda(
            table,
            groups=groups or None,
            group=groups[0] if groups else None,
            space=space,
            outliers=_flagged_batches(log, space),
        ),
    )
    report.section("Exploratory data analysis")
    report.table(eda_result.summary, caption="Summary per group")
    _save(tables, out, "eda_summary", eda_result.summary)
    for name, fig in eda_result.figures.items():
        _savefig(report, out, f"eda_{name}", fig, name.replace("_", " "))

    # 4. model comparison on identical folds
    def bayes_model(seed: int, extra_runs: int | str = "auto") -> BayesianYieldModel:
        return BayesianYieldModel(
            groups=groups,
            structures=cfg.structures,
            draws=cfg.draws,
            tune=cfg.tune,
            chains=cfg.chains,
            random_seed=seed,
            space=space,
            extra_runs=extra_runs,
            likelihood=cfg.likelihood,
            target_accept=cfg.target_accept,
        )

    models = {
        "LASSO": LassoYield(groups=groups, random_state=int(seeds[1]) % 2**31, space=space),
        "RandomForest": ForestYield(groups=groups, random_state=int(seeds[1]) % 2**31, space=space),
        # the fold fits score predictions: each samples once (a failing check still warns);
        # the final model below gets the extra runs its decisions need
        "Bayesian": bayes_model(int(seeds[2]) % 2**31, extra_runs=0),
    }
    comparison = stages.run(
        "compare",
        lambda: evaluate.compare(
            models,
            table,
            cv="kfold",
            n_splits=cfg.cv_splits,
            # four interval levels: the calibration plot needs more than the two of the table
            ci_probs=(0.5, 0.8, 0.9, 0.95),
            random_seed=int(seeds[3]) % 2**31,
            space=space,
        ),
    )
    summary = _plain_index(comparison.summary)
    calibration = calibration_warning(summary, len(table))
    if calibration:
        report.warn(calibration)
    _save(tables, out, "comparison_scores", comparison.scores)
    _save(tables, out, "comparison_summary", summary)
    report.section("Model comparison (same folds for every model)")
    report.table(
        _comparison_display(summary, response.unit),
        caption=f"{cfg.cv_splits}-fold cross-validation on the same folds: mean +- standard "
        "error over folds; lower RMSE, MAE and CRPS are better, coverage should be near its "
        "nominal level (each fold's Bayesian fit samples once; the final model repeats a "
        "failing structure's sampling)",
    )
    _savefig(report, out, "comparison_scores", evaluate.plot_scores(comparison), "RMSE by model")
    _savefig(
        report,
        out,
        "comparison_pred_obs",
        evaluate.plot_predicted_vs_observed(comparison),
        "Out-of-fold predicted vs observed",
    )
    _savefig(
        report,
        out,
        "comparison_calibration",
        evaluate.plot_calibration(comparison).figure,
        "Calibration: share of held-out batches inside each model's 50, 80, 90 and 95 % "
        "predictive intervals; on the diagonal (inside the grey band) the intervals can be "
        "taken at their word, below it they are too narrow",
    )

    # 5. the Bayesian model on all data
    model = stages.run("fit", lambda: bayes_model(int(seeds[4]) % 2**31).fit(table))
    model.save(out / "model.nc")
    diag = diagnostics_table(model.diagnostics_)
    report.section("Hierarchical Bayesian model")
    report.text(
        f"Response-surface structures {', '.join(cfg.structures)}, stacked by leave-one-out "
        f"predictive accuracy (weights: {_weights_text(model)}); {cfg.chains} chains x "
        f"{cfg.draws} draws after {cfg.tune} tuning steps."
    )
    _save(tables, out, "diagnostics", diag.drop(columns="verdict"))
    report.table(
        diag,
        caption="Sampling diagnostics per structure: R-hat 1.01 or less, effective sample size "
        "400 or more and no divergent transitions pass",
        labels=DIAGNOSTIC_LABELS,
    )
    lack = lack_of_fit_text(model)
    if lack:
        report.text(lack)
    likely = likely_failed_batches(model, table, log, space)
    if likely is not None and getattr(model, "failure_prob_", None) is None:
        _save(tables, out, "outlying_batches", likely)
        report.text(
            "Outlying batches: the Student-t likelihood lets a batch far from the response "
            "surface (a failed batch, a gross error) weigh less instead of pulling the "
            "surface towards it. "
            + (
                f"{len(likely)} of {len(table)} batches ({100 * len(likely) / len(table):.0f} "
                "%) weigh less than a quarter of a typical batch in the fit; they stay in the "
                "data. Check them against the batch records."
                if len(likely)
                else "Every batch weighs at least a quarter of a typical batch in the fit."
            )
        )
        if len(likely):
            report.table(
                likely,
                caption=f"Outlying batches (weight in the fit below {OUTLIER_WEIGHT:g}; about 1 "
                "for a batch the surface explains), next to what the cleaner logged for them "
                "and any notes the data hold on them",
            )
    elif likely is not None:
        _save(tables, out, "likely_failed_batches", likely)
        rate = model.failure_rate_
        report.text(
            f"Failed batches: the model lets each batch be a normal batch or a failed one "
            f"(contamination, equipment fault, bad seed train). Estimated failure rate "
            f"{100 * rate['mean']:.1f} % (94 % interval {100 * rate['lower']:.1f}-"
            f"{100 * rate['upper']:.1f} %). "
            + (
                f"{len(likely)} batch(es) are more likely failed than not; they stay in the "
                "data and weigh as failures, not as evidence about the setpoint."
                if len(likely)
                else "No batch is more likely failed than not."
            )
        )
        if len(likely):
            report.table(
                likely,
                caption=f"Likely failed batches (posterior P(failed) >= {FAILED_PROB:g}), next "
                "to what the cleaner logged for them",
            )
    posterior_figures: tuple[tuple[str, Callable[[Any], Any], str], ...] = (
        (
            "posterior_effects",
            pplots.plot_marginal_effects,
            f"Expected {response.noun} along each factor (others at their training "
            "medians), 90 % band per group level, training batches as dots",
        ),
        (
            "posterior_prior_predictive",
            lambda m: pplots.plot_prior_predictive(m, n_draws=100).figure,
            "Prior predictive check: data sets the priors allow (grey) against the observed "
            "batches (black); the priors should bracket the data without forcing it",
        ),
        (
            "posterior_ppc",
            pplots.plot_ppc,
            "Posterior predictive check: replicated training data vs the observed",
        ),
        (
            "posterior_forest",
            pplots.plot_group_effects,
            f"Group effects on the {response.noun} in % of the mean over levels",
        ),
        (
            "posterior_rank",
            pplots.plot_rank,
            "Rank plots per chain: every chain's ranks inside the band means the chains agree "
            "(an S-shape or a step means they explore different values: sample longer)",
        ),
        ("posterior_trace", pplots.plot_trace, "Traces and marginal posteriors per chain"),
    )
    for name, plot, caption in posterior_figures:
        _savefig(report, out, name, plot(model), caption)

    # 6. recommendations and design spaces per group
    unit = display_unit(response.unit)
    specs: dict[str, tuple[float, str]] = {}

    def recommend_all() -> tuple[pd.DataFrame, list[Any], list[Any], pd.DataFrame]:
        rows, recs, spaces, ranked = [], [], [], []
        for i, grp in enumerate(targets or _site_groups(groups, table)[:3]):
            spec, source = (
                (float(cfg.spec), "given")
                if cfg.spec is not None
                else group_spec(
                    table, response.name, grp, cfg.spec_quantile, maximise=response.maximise
                )
            )
            specs[_group_title(grp)] = (spec, source)
            rec = recommend.recommend(
                model,
                group=grp or None,
                objective=cfg.objective,
                risk=cfg.risk,
                spec=spec,
                transfer_risk=cfg.transfer_risk,
                recipe=cfg.recipe,
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
                transfer_risk=cfg.transfer_risk,
                random_seed=int(seeds[6]) + i,
            )
            frame = rec.to_frame().rename_axis("setpoint").reset_index().assign(spec=spec)
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
            nxt = _next_batches(model, rec, grp, space, int(seeds[5]) + 100 + i)
            # a candidate is worth a batch of its own when it cuts the expected regret by
            # >= 0.5 % of the recommendation's response and passes the campaign's safety rule;
            # the table says so, as the report's summary does
            ranked.append(nxt.assign(worth_a_batch=worth_a_batch(nxt, rec.expected_yield)))
        return pd.concat(rows, ignore_index=True), recs, spaces, pd.concat(ranked)

    rec_table, recs, spaces, next_table = stages.run("recommend", recommend_all)
    _save(tables, out, "recommendations", rec_table)
    _save(tables, out, "next_batches", next_table)
    report.section("Risk-aware setpoint recommendations and design spaces")
    meets = ">=" if response.maximise else "<="
    report.text(
        f"Objective: {recs[0][1].settings.get('objective_description', cfg.objective)}; "
        f"{response.noun} {_spec_text(specs, cfg.spec_quantile, unit, response.maximise)}"
        f"; design space = setpoints with P(new batch {meets} spec) >= {cfg.prob:g}. Factors "
        "searched over their operating "
        "ranges: "
        + _ranges_text(space)
        + _recipe_text(cfg.recipe, space)
        + _groups_text(groups, table, [g for g, _ in recs], given=bool(targets))
    )
    shown, units, labels = _recommendation_display(rec_table, space, groups)
    report.table(
        shown,
        caption="Recommendation per group: the recommended setpoint, the best setpoint for the "
        "mean alone and the recipe, with the predicted response of a new batch there",
        units=units,
        labels=labels,
    )
    worth = next_table[next_table["worth_a_batch"]]
    if len(worth):
        nshown, nunits, nlabels = _next_display(worth, space, groups)
        report.table(
            nshown,
            caption="Where to run the next batches: candidates ranked by the expected cut in "
            "regret (value of information) per group, with the risk of each (the probability "
            f"that a batch there is at most {100 * recommend.acquisition.SAFE_LOSS:g} % worse "
            "than the recipe); candidates whose cut is below 0.5 % of the expected "
            f"{response.noun}, or whose probability is below "
            f"{recommend.acquisition.SAFETY_PROB:g} (the campaign's safety rule: an informative "
            "batch may be a costly one), are left out",
            units=nunits,
            labels=nlabels,
        )
    if len(worth) < len(next_table):
        left = [
            _group_title(grp)
            for grp, _ in recs
            if not len(worth)
            or not (worth[list(grp)].astype(str) == pd.Series(grp)).all(axis=1).any()
        ]
        if left:
            report.text(
                f"Next batches, {'; '.join(left)}: no single safe extra batch among 40 "
                "candidates is expected to change the recommendation (expected cut in regret "
                f"below 0.5 % of the {response.noun}, or a risk of a batch more than "
                f"{100 * recommend.acquisition.SAFE_LOSS:g} % worse than the recipe above "
                f"{1 - recommend.acquisition.SAFETY_PROB:.2g}); confirmation batches at the "
                "recommendation are the next step, and `bayesbio next` proposes experiments "
                "under the safety rule."
            )
    for grp, rec in recs:
        label = "_".join(grp.values()) or "all"
        name = _group_title(grp)
        _savefig(
            report,
            out,
            f"profiler_{label}",
            plot_profiler(model, rec.setpoint, grp or None, recipe=rec.recipe, n_draws=300),
            f"Profiler through the recommended setpoint, {name}: predicted mean "
            f"{response.noun} with 80 % band along each factor, the others held at the "
            "recommendation (red); recipe dotted grey, training batches as ticks",
        )
        _savefig(
            report,
            out,
            f"recommendation_{label}",
            recommend.plot_recommendation(rec),
            f"Predictive {response.noun} at recipe vs recommendation, {name}",
        )
    for grp, ds in spaces:
        label = "_".join(grp.values()) or "all"
        name = _group_title(grp)
        par = _plain_index(ds.par)
        _save(tables, out, f"design_space_par_{label}", par)
        if (
            par[["low", "high"]].isna().all().all()
            if {"low", "high"} <= set(par.columns)
            else False
        ):
            report.text(
                f"{name}: no setpoint on the searched grid meets the spec "
                f"({number_text(ds.spec)} {unit}) with probability {cfg.prob:g}, so there are "
                "no proven acceptable ranges."
            )
        else:
            report.table(
                par,
                caption=f"Proven acceptable ranges, {name} (spec {number_text(ds.spec)} {unit})",
                labels={"parameter": "factor", "fixed": "held fixed"},
            )
            notes = [n for n in ds.settings.get("notes", []) if not n.startswith("grid cut")]
            if notes:  # what the ranges hide: a zero width, a centre outside them
                report.text(f"{name}: " + "; ".join(notes) + ".")
        _savefig(
            report,
            out,
            f"design_space_{label}",
            recommend.plot_design_space(ds),
            f"Design space maps (every factor pair), {name}",
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
        report.section("Simulated case study: harvest timing under model risk")
        report.text(
            "Simulated case study, independent of the batch table above. "
            "Harvest decisions for a running batch from a few historical growth-rate data "
            "points (Wang et al. 2024): the perfect-information MDP (upper bound), common "
            "practice, and policies that learn from the data, with and without modelling model "
            f"risk (RL-MR). {cfg.harvest_replications} replications with common random numbers."
        )
        _save(tables, out, "harvest_table1", case.table1)
        report.table(
            case.table1,
            caption="Simulated reward per policy and data size (Table 1 structure)",
            labels={
                "n": "historical runs",
                "se_mean": "SE of mean",
                "diff_vs_pi": "difference vs PI-MDP",
                "diff_vs_pi_se": "SE of difference",
                "seconds": "time [s]",
            },
        )
        for name, plot, frame, caption in (
            ("harvest_rewards", harvest.plot_reward_table, case.table1, "Mean reward +-2 SE"),
            ("harvest_epochs", harvest.plot_harvest_epochs, case.fig3, "Stopping epochs (Fig. 3)"),
            ("harvest_thresholds", harvest.plot_thresholds, case.fig4, "Control limits (Fig. 4)"),
        ):
            _savefig(report, out, name, plot(frame), caption)

    # 8. report
    overview = stages.run(
        "report",
        lambda: study_summary(
            model, recs, next_batches=next_table, n_draws=1000, random_seed=int(seeds[7]) % 2**31
        ),
    )
    _save(tables, out, "summary", overview)
    all_warnings = [*clean_warnings, *(w for w in stages.warnings if w not in clean_warnings)]
    if calibration:
        all_warnings.append(calibration)
    for w in all_warnings:
        report.warn(w)
    _write_summary(
        report,
        overview,
        space=space,
        specs={k: v for k, (v, _) in specs.items()},
        objective=recs[0][1].settings.get("objective_description", cfg.objective),
        n_raw=len(raw),
        n_kept=len(table),
        per_column=per_column if isinstance(per_column, pd.DataFrame) else None,
        diagnostics=getattr(model, "diagnostics_", None),
        simulated=data is None,
        recipe_given=bool(cfg.recipe),
    )
    # the figures, tables and report between the stages: the total is the study's wall time
    between = time.perf_counter() - stages.start - sum(stages.timings.values())
    stages.timings["figures, tables and report"] = max(between, 0.0)
    timing = pd.DataFrame({"stage": list(stages.timings), "seconds": list(stages.timings.values())})
    _save(tables, out, "timings", timing)
    report.section("Run details")
    if not run_harvest:
        report.text(
            "The harvest case study (growth-model decisions for the demo process) was not run; "
            "StudyConfig(harvest=True) or `bayesbio study --harvest` adds it."
        )
    report.table(timing, caption="Wall time per stage", labels={"seconds": "time [s]"})
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
    force: bool = False,
) -> StudyResult:
    """Run the whole bayesbio workflow and write its outputs and an HTML report.

    Parameters
    ----------
    out_dir : str or path
        Output folder (created). Receives CSV tables, ``figures/*.png``, the fitted model
        (``model.nc``), ``report.html`` and :data:`MANIFEST`, the list of files this study
        wrote. File names made from group labels are sanitised (``"North/1"`` -> ``North-1``).
        The study runs in a hidden staging folder inside ``out_dir``; only a finished study
        replaces the files of an earlier one there (those listed in its manifest; stale ones
        are removed). A failed or interrupted run leaves the folder as it was. Files the
        manifest does not list are never removed.
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
    force : bool, default False
        Replace files in ``out_dir`` that have the names of this study's outputs but were not
        written by an earlier study (no manifest lists them). Without it such a name is an
        error, raised before the run when it is one of the fixed outputs (``report.html``,
        ``model.nc``, ...).

    Returns
    -------
    StudyResult
        Paths, tables, warnings, timings, the fitted model and the space.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`StudyConfig`.
    FileExistsError
        If ``out_dir`` holds files with the study's output names that no earlier study wrote
        (without ``force``).
    bayesbio.space.SpaceError
        If ``space`` cannot be read or the table does not fit it.
    """
    folder = _OutputFolder(Path(out_dir), force=force)
    staging = folder.open()
    try:
        result = _run_study(
            staging,
            data=data,
            columns=columns,
            groups=groups,
            config=config,
            random_seed=random_seed,
            progress=progress,
            space=space,
        )
        folder.commit()
    except BaseException:
        folder.abort()
        raise
    result.out_dir = folder.out
    result.report_path = folder.out / result.report_path.relative_to(staging)
    return result


def quick_config(**overrides: Any) -> StudyConfig:
    """Return :meth:`StudyConfig.quick` with ``overrides`` applied."""
    return replace(StudyConfig.quick(), **overrides)
