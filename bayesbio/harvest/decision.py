"""Harvest decisions from measured runs: history table -> knowledge state -> harvest or continue.

The case study (:mod:`.casestudy`) simulates batches; this module takes *measured* protein and
impurity trajectories instead. Past runs give the knowledge state ``I_0`` (the NIG posteriors
of the one-epoch log growth rates, exactly as :mod:`.knowledge` defines them); the running
batch's own measurements update it to ``I_t``; a policy (RL-MR by default) then compares the
reward of harvesting now with the expected reward of continuing (docs/harvest_model.md).

Real cultures do not grow by one law from inoculation to the stationary phase: titers follow
logistic or Gompertz curves and impurities rise faster once cells lyse. By default
(``growth_window = "epochs"``) a decision at epoch ``t`` therefore learns from the growth the
past runs showed from epoch ``t`` on, the growth still ahead of the running batch, and from
the running batch's latest growth rate, and looks ahead with a growth law per epoch (each
epoch's past growth, pulled towards the pooled law as far as the epochs agree: empirical
Bayes); ``"ahead"`` keeps one law for the growth ahead, ``"all"`` pools every epoch as the
paper does. Measured in ``benchmarks/harvest_decision.py`` (BENCHMARKS.md), in % of the
hindsight reward: logistic 98 / 95 / 84 %, Gompertz 97 / 85 / 40 % (epochs / ahead / all), and
in the paper's own world 94.6 / 94.1 % (epochs / ahead, 120 new runs).

Run table
---------
One row per measurement, long format; the same format for the history (many runs) and the
running batch (one run):

==============  ==============================================================================
``run_id``      batch identifier (any text or number)
``time``        time since the batch started, in the declared ``time_unit`` (``h``, ``d`` or
                ``min``); decisions are taken every ``epoch_hours`` (6 h), so measurements are
                expected at 0, 6, 12, ... h (within ``epoch_tolerance`` of an epoch)
``protein``     product amount or titer, in the declared ``protein_unit`` (> 0: logs are taken)
``impurity``    impurity amount or concentration, in ``impurity_unit`` (> 0)
``phase``       optional culture phase label; with ``phases`` declared, only those rows count
==============  ==============================================================================

Only the ratios of consecutive measurements enter the growth rates, so any consistent unit
works. Two measurements exactly one epoch apart give one growth-rate data point
``phi = ln(p_{k+1} / p_k)``, ``psi = ln(i_{k+1} / i_k)``. Nothing is dropped silently: rows
with a missing value, off the epoch grid or outside the declared phases, pairs more than one
epoch apart, and pairs after the horizon (``horizon_hours``: the stationary phase, whose growth
is not the growth a harvest decision faces), are listed in :attr:`RunData.excluded` and
logged; negative or non-increasing times, non-positive amounts, a history run with fewer than
two points and missing columns are errors (:class:`HarvestDataError`, one line naming the
table, run, row and what to do).

The declaration, :class:`HarvestSpec`, is read from TOML (every key optional)::

    time_unit = "h"                  # "h", "d", "min" or "timestamp" (dates and times)
    repeats = "error"                # "mean": average assay repeats at one time
    protein_unit = "g/L"
    impurity_unit = "g/L"
    epoch_hours = 6.0                # decision interval
    horizon_hours = 96.0             # stationary phase: harvest is forced here
    phases = ["production"]          # optional: only rows with these phase labels count
    growth_window = "epochs"         # "epochs": a law per epoch ahead, from the past runs;
                                     # "ahead": one law for the growth from the decision on;
                                     # "all": every epoch in one growth law (the paper)

    [columns]                        # the file's own column names
    run_id = "Batch"
    time = "Time (h)"
    protein = "Titer (g/L)"
    impurity = "HCP (g/L)"
    phase = "Phase"

    [economics]                      # amounts in the declared units
    protein_cap = 10.0               # reactor capacity: reaching it forces harvest
    impurity_limit = 2.0             # above it after a "continue" the batch fails
    price = 50.0                     # reward per protein unit harvested
    impurity_cost = 40.0             # purification cost per impurity unit
    cost_per_epoch = 2.0             # cost of each further epoch
    failure_penalty = 100.0
    reward_unit = "kEUR"

Economics left out take the case study's defaults relative to the running batch's first
measurement (cap 50x its protein, limit 40x its impurity, price 10 and cost 2 per starting
amount), the scale-free setting of docs/harvest_model.md §5.
"""

from __future__ import annotations

import logging
import math
import tomllib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from bayesbio.checks import check_choice, check_fraction, check_int, check_positive, seed_int

from .knowledge import KnowledgeState
from .params import HarvestParams
from .policies import HARVEST, RLMR, HarvestState, make_policy

__all__ = [
    "DECISION_POLICIES",
    "GROWTH_WINDOWS",
    "HarvestDataError",
    "HarvestDecision",
    "HarvestSpec",
    "RunData",
    "epoch_knowledge",
    "growth_window",
    "harvest_decision",
    "knowledge_from_runs",
    "read_runs",
    "summarize_knowledge",
    "validate_runs",
]

_log = logging.getLogger(__name__)

#: Policies that can decide from measured runs (PI-MDP and myopic-PI need the true growth laws,
#: which data never give).
DECISION_POLICIES: tuple[str, ...] = ("RL-MR", "myopic", "plug-in", "plug-in-static", "CP")

#: hours per unit of the time column; "timestamp": dates/times, read as hours since each run's
#: first measurement
_TIME_UNITS = {"h": 1.0, "d": 24.0, "min": 1.0 / 60.0, "timestamp": 1.0}
_COLUMN_KEYS = ("run_id", "time", "protein", "impurity", "phase")
_TOP_KEYS = (
    "time_unit",
    "protein_unit",
    "impurity_unit",
    "epoch_hours",
    "horizon_hours",
    "epoch_tolerance",
    "phases",
    "growth_window",
    "repeats",
)
#: What to do with two measurements of one run at one time (see HarvestSpec.repeats).
REPEATS: tuple[str, ...] = ("error", "mean")
#: Which past growth a decision at epoch t learns from (see HarvestSpec.growth_window).
GROWTH_WINDOWS: tuple[str, ...] = ("ahead", "epochs", "all")
#: Least weight, in growth rates, of the pooled law behind each epoch's own law ("epochs").
_EPOCH_PRIOR_POINTS = 2.0
#: Fewest history growth rates the "ahead" window keeps (earlier epochs are added until then).
_MIN_AHEAD_POINTS = 10
#: RL-MR's draws are doubled up to this many times those asked for while the two actions are
#: within two Monte Carlo errors of each other (a call the seed would decide)
_MAX_DRAWS_FACTOR = 8
_ECONOMICS_KEYS = (
    "protein_cap",
    "impurity_limit",
    "price",
    "impurity_cost",
    "cost_per_epoch",
    "failure_penalty",
    "reward_unit",
)
_DEFAULT_RELATIVE = {"protein_cap": 50.0, "impurity_limit": 40.0, "price": 10.0}
_EXCLUDED_COLUMNS = ["table", "run_id", "row", "time_h", "reason"]


class HarvestDataError(ValueError):
    """A run table or harvest spec is unusable; the message names table, run, row and the fix."""


@dataclass(frozen=True)
class HarvestSpec:
    """Declaration of a run table: column names, units, decision epochs and economics.

    Parameters
    ----------
    run_id, time, protein, impurity : str, default "run_id", "time", "protein", "impurity"
        Column names in the data file.
    phase : str, default "phase"
        Optional phase column; used only when present in the table.
    time_unit : {"h", "d", "min", "timestamp"}, default "h"
        Unit of the time column. "timestamp": the column holds sample dates and times (a
        LIMS export, e.g. ``2024-02-01 10:36`` or ``01.02.2024 10:36``, day first where
        the date is written with dots); culture time counts from each run's first
        measurement, in hours.
    protein_unit, impurity_unit : str, default "g/L"
        Units of the amounts (labels: only ratios enter the growth rates).
    epoch_hours : float, default 6.0
        Decision interval, h (one epoch of the growth model).
    horizon_hours : float, default 96.0
        Stationary phase, h: harvest is forced there; a whole number of epochs.
    epoch_tolerance : float, default 0.1
        How far from an epoch a measurement may lie, as a fraction of an epoch.
    phases : tuple of str, optional
        Phase labels whose rows count; default all rows.
    growth_window : {"epochs", "ahead", "all"}, default "epochs"
        Which past growth a decision learns from. ``"ahead"``: the past runs' growth from the
        decision's epoch on (the growth still ahead of the running batch; earlier epochs are
        added until at least 10 growth rates count) and the running batch's latest growth
        rate, so a culture that slows down, or whose impurity speeds up late, is judged by the
        growth of its own stage. ``"epochs"`` (default): the same, and each future epoch also
        gets its own law from the past runs' growth at that epoch, pulled towards the pooled
        one as far as the epochs agree (:func:`epoch_knowledge`; RL-MR and plug-in look ahead
        with them, the other policies use the one law ahead). ``"all"``: every epoch pooled
        into one growth law, as the model of Wang et al. (2024) assumes (best when growth is
        the same at every epoch).
    repeats : {"error", "mean"}, default "error"
        Two measurements of one run at one time (an assay repeat): "error" stops and names
        the row; "mean" averages their protein and impurity into the first row (the others
        are listed as left out, with the reason).
    protein_cap, impurity_limit : float, optional
        Protein cap (harvest forced) and impurity failure limit, in the declared units;
        default 50x and 40x the running batch's first measurement.
    price : float, optional
        Reward per protein unit; default 10 per starting amount of the running batch.
    impurity_cost : float, optional
        Purification cost per impurity unit; default 2 per starting amount.
    cost_per_epoch : float, default 2.0
        Cost of each further epoch, in reward units.
    failure_penalty : float, default 100.0
        Loss when the batch fails, in reward units.
    reward_unit : str, default "reward units"
        Label of the reward (e.g. "kEUR").

    Raises
    ------
    HarvestDataError
        If a field is out of range; the message names it.
    """

    run_id: str = "run_id"
    time: str = "time"
    protein: str = "protein"
    impurity: str = "impurity"
    phase: str = "phase"
    time_unit: str = "h"
    protein_unit: str = "g/L"
    impurity_unit: str = "g/L"
    epoch_hours: float = 6.0
    horizon_hours: float = 96.0
    epoch_tolerance: float = 0.1
    phases: tuple[str, ...] | None = None
    growth_window: str = "epochs"
    repeats: str = "error"
    protein_cap: float | None = None
    impurity_limit: float | None = None
    price: float | None = None
    impurity_cost: float | None = None
    cost_per_epoch: float = 2.0
    failure_penalty: float = 100.0
    reward_unit: str = "reward units"

    def __post_init__(self) -> None:
        # a frozen value like HarvestParams: every HarvestSpec in existence is valid
        try:
            names = [getattr(self, k) for k in _COLUMN_KEYS]
            for key, name in zip(_COLUMN_KEYS, names, strict=True):
                if not isinstance(name, str) or not name.strip():
                    raise ValueError(
                        f"column name {key!r} must be a non-empty string, got {name!r}"
                    )
            if len(set(names)) < len(names):
                declared = dict(zip(_COLUMN_KEYS, names, strict=True))
                raise ValueError(f"column names must differ, got {declared}")
            check_choice("time_unit", self.time_unit, tuple(_TIME_UNITS))
            check_choice("growth_window", self.growth_window, GROWTH_WINDOWS)
            check_choice("repeats", self.repeats, REPEATS)
            check_positive("epoch_hours", self.epoch_hours)
            check_positive("horizon_hours", self.horizon_hours)
            check_fraction("epoch_tolerance", self.epoch_tolerance)
            if self.epoch_tolerance >= 0.5:
                raise ValueError(f"epoch_tolerance must be < 0.5, got {self.epoch_tolerance}")
            ratio = self.horizon_hours / self.epoch_hours
            if abs(ratio - round(ratio)) > 1e-9 or round(ratio) < 1:
                raise ValueError(
                    f"horizon_hours ({self.horizon_hours}) must be a whole number of epochs of "
                    f"{self.epoch_hours} h"
                )
            for key in ("protein_cap", "impurity_limit", "price"):
                if getattr(self, key) is not None:
                    check_positive(key, getattr(self, key))
            for key in ("impurity_cost", "cost_per_epoch", "failure_penalty"):
                if getattr(self, key) is not None:
                    check_positive(key, getattr(self, key), allow_zero=True)
            if self.phases is not None:
                phases = self.phases
                if isinstance(phases, str) or not all(isinstance(p, str) for p in phases):
                    raise ValueError(f"phases must be a list of labels, got {phases!r}")
                if not phases:
                    raise ValueError("phases must name at least one phase (or be left out)")
                object.__setattr__(self, "phases", tuple(phases))
        except HarvestDataError:
            raise
        except ValueError as exc:
            raise HarvestDataError(f"harvest spec: {exc}") from None

    @property
    def T(self) -> int:
        """Horizon in epochs."""
        return round(self.horizon_hours / self.epoch_hours)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HarvestSpec:
        """Build a spec from the TOML layout (top-level keys, ``[columns]``, ``[economics]``).

        Parameters
        ----------
        data : mapping
            The parsed TOML.

        Returns
        -------
        HarvestSpec
            The spec.

        Raises
        ------
        HarvestDataError
            On an unknown key or a bad value, naming it.
        """
        data = dict(data)
        kwargs: dict[str, Any] = {}
        for section, keys in (("columns", _COLUMN_KEYS), ("economics", _ECONOMICS_KEYS)):
            part = data.pop(section, {})
            if not isinstance(part, Mapping):
                raise HarvestDataError(f"harvest spec: [{section}] must be a table")
            unknown = sorted(set(part) - set(keys))
            if unknown:
                raise HarvestDataError(
                    f"harvest spec: unknown key(s) {unknown} in [{section}]; expected {list(keys)}"
                )
            kwargs.update(part)
        unknown = sorted(set(data) - set(_TOP_KEYS))
        if unknown:
            raise HarvestDataError(
                f"harvest spec: unknown key(s) {unknown}; expected {list(_TOP_KEYS)} and the "
                "tables [columns] and [economics]"
            )
        kwargs.update(data)
        if "phases" in kwargs and isinstance(kwargs["phases"], list):
            kwargs["phases"] = tuple(kwargs["phases"])
        return cls(**kwargs)

    @classmethod
    def from_toml(cls, path: str | PathLike[str]) -> HarvestSpec:
        """Read a spec from a TOML file (layout in the module docstring).

        Parameters
        ----------
        path : str or path-like
            The file.

        Returns
        -------
        HarvestSpec
            The spec.

        Raises
        ------
        HarvestDataError
            If the file is missing, not valid TOML or declares a bad spec; names the file.
        """
        path = Path(path)
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise HarvestDataError(f"harvest spec file {str(path)!r} not found") from None
        except IsADirectoryError:
            raise HarvestDataError(f"harvest spec {str(path)!r} is a folder, not a file") from None
        except tomllib.TOMLDecodeError as exc:
            raise HarvestDataError(
                f"harvest spec file {str(path)!r} is not valid TOML: {exc}"
            ) from None
        try:
            return cls.from_dict(data)
        except HarvestDataError as exc:
            raise HarvestDataError(f"{str(path)!r}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """Return the TOML layout as a dictionary (unset economics left out)."""
        out: dict[str, Any] = {k: getattr(self, k) for k in _TOP_KEYS if getattr(self, k)}
        if self.phases is not None:
            out["phases"] = list(self.phases)
        out["columns"] = {k: getattr(self, k) for k in _COLUMN_KEYS}
        out["economics"] = {
            k: getattr(self, k) for k in _ECONOMICS_KEYS if getattr(self, k) is not None
        }
        return out


def _resolve_spec(spec: HarvestSpec | str | PathLike[str] | None) -> HarvestSpec:
    if spec is None:
        return HarvestSpec()
    if isinstance(spec, HarvestSpec):
        return spec
    if isinstance(spec, str | PathLike):
        return HarvestSpec.from_toml(spec)
    raise TypeError(f"argument 'spec' must be a HarvestSpec, a TOML path or None, got {spec!r}")


@dataclass(frozen=True)
class RunData:
    """A validated run table.

    Attributes
    ----------
    table : pandas.DataFrame
        Rows kept, sorted by run and time: ``run_id``, ``row`` (position in the input),
        ``time_h``, ``epoch``, ``protein``, ``impurity`` (declared units), ``phase`` if given.
    growth : pandas.DataFrame
        One row per pair of measurements one epoch apart: ``run_id``, ``epoch`` (of the first),
        ``phi``, ``psi`` (one-epoch log growth rates of protein and impurity).
    excluded : pandas.DataFrame
        What was left out and why: ``table``, ``run_id``, ``row``, ``time_h``, ``reason``.
    spec : HarvestSpec
        The declaration used.
    name : str
        Name of the table in messages (e.g. ``"history table"``).
    typical_step_h : float
        Median time between a run's consecutive measurements over every measured row (on the
        decision grid or not), h; NaN with none.
    """

    table: pd.DataFrame
    growth: pd.DataFrame
    excluded: pd.DataFrame
    spec: HarvestSpec
    name: str = "history table"
    typical_step_h: float = math.nan

    @property
    def runs(self) -> list[Any]:
        """Run identifiers, in order of appearance."""
        return list(pd.unique(self.table["run_id"]))


def read_runs(
    path: str | PathLike[str],
    *,
    spec: HarvestSpec | str | PathLike[str] | None = None,
    name: str | None = None,
    min_points: int = 2,
) -> RunData:
    """Read a run table from a file (through :func:`bayesbio.io.read_table`) and validate it.

    Parameters
    ----------
    path : str or path-like
        CSV, Excel, Parquet or JSON file.
    spec : HarvestSpec, TOML path or None, default None
        The declaration; None: the default column names and units.
    name : str, optional
        Name of the table in messages; default the file name.
    min_points : int, default 2
        Fewest measurements a run may have.

    Returns
    -------
    RunData
        The validated table.

    Raises
    ------
    bayesbio.io.ReadError
        If the file cannot be read.
    HarvestDataError
        If the table is invalid (see :func:`validate_runs`).
    """
    from bayesbio.io import read_table

    table = read_table(path)
    return validate_runs(
        table, spec=spec, name=name or f"file {Path(path).name!r}", min_points=min_points
    )


def validate_runs(
    table: pd.DataFrame,
    *,
    spec: HarvestSpec | str | PathLike[str] | None = None,
    name: str = "history table",
    min_points: int = 2,
) -> RunData:
    """Check a run table against its declaration and extract the one-epoch growth rates.

    Parameters
    ----------
    table : pandas.DataFrame
        Measurements in the declared layout (module docstring); not modified.
    spec : HarvestSpec, TOML path or None, default None
        The declaration; None: the default column names and units.
    name : str, default "history table"
        Name of the table in messages and in :attr:`RunData.excluded`.
    min_points : int, default 2
        Fewest usable measurements a run may have (1 for a running batch that just started).

    Returns
    -------
    RunData
        Kept rows in hours and epochs, the growth-rate pairs and the exclusions.

    Raises
    ------
    HarvestDataError
        On a missing column, a non-numeric, negative or non-increasing time within a run, a
        non-positive protein or impurity, or a run with fewer than ``min_points`` usable rows.
    """
    spec = _resolve_spec(spec)
    min_points = check_int("min_points", min_points, minimum=1)
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"argument 'table' must be a pandas DataFrame, got {type(table).__name__}")
    where = name
    required = {"run_id": spec.run_id, "time": spec.time, "protein": spec.protein}
    required["impurity"] = spec.impurity
    missing = [
        repr(col) if col == key else f"{col!r} ({key})"
        for key, col in required.items()
        if col not in table.columns
    ]
    if missing:
        raise HarvestDataError(
            f"{where}: missing column(s) {', '.join(missing)}; found {list(table.columns)}. "
            "Rename them or declare the file's names in the harvest spec's [columns] (--spec)"
        )
    has_phase = spec.phase in table.columns
    if spec.phases is not None and not has_phase:
        raise HarvestDataError(
            f"{where}: the spec declares phases {list(spec.phases)} but the table has no phase "
            f"column {spec.phase!r}; add it or remove 'phases' from the spec"
        )
    if len(table) == 0:
        raise HarvestDataError(f"{where}: no rows; it needs measurements of at least one run")
    if spec.time_unit == "timestamp":
        table = _hours_since_first(table, spec, where)

    frame = pd.DataFrame(
        {
            "run_id": table[spec.run_id].to_numpy(),
            "row": np.arange(len(table)),
            "time_raw": table[spec.time].to_numpy(),
            "protein": table[spec.protein].to_numpy(),
            "impurity": table[spec.impurity].to_numpy(),
        }
    )
    if has_phase:
        frame["phase"] = table[spec.phase].to_numpy()
    excluded: list[dict[str, Any]] = []

    def exclude(mask: np.ndarray, reason: str) -> None:
        for _, r in frame[mask].iterrows():
            excluded.append(
                {"table": name, "run_id": r["run_id"], "row": int(r["row"]), "reason": reason}
            )

    if frame["run_id"].isna().any():
        rows = frame.loc[frame["run_id"].isna(), "row"].tolist()[:5]
        raise HarvestDataError(
            f"{where}: column {spec.run_id!r} is empty in row(s) {rows}; every measurement "
            "needs the id of its run"
        )
    for key, col in (("time", spec.time), ("protein", spec.protein), ("impurity", spec.impurity)):
        raw = frame["time_raw" if key == "time" else key]
        numeric = pd.to_numeric(raw, errors="coerce")
        bad = numeric.isna() & raw.notna()
        if bad.any():
            r = frame.loc[bad].iloc[0]
            value = raw[bad].iloc[0]
            if key == "time" and _is_date(value):
                raise HarvestDataError(
                    f"{where}: column {col!r}, run {r['run_id']!r}, row {int(r['row'])}: "
                    f"{str(value)!r} is a date; the time column is the culture time since the "
                    f"batch started, in the declared time_unit ({spec.time_unit!r}): give a "
                    "column of days or hours since inoculation (e.g. Day 0, 1, 2, ...), or "
                    "declare time_unit = 'timestamp' in the spec to count the time from each "
                    "run's first measurement"
                )
            raise HarvestDataError(
                f"{where}: column {col!r}, run {r['run_id']!r}, row {int(r['row'])}: "
                f"{value!r} is not a number; fix the value or leave it empty"
            )
        frame["time_raw" if key == "time" else key] = numeric.astype(float)
    frame["time_h"] = (frame.pop("time_raw") * _TIME_UNITS[spec.time_unit]).round(9)

    no_time = frame["time_h"].isna()
    exclude(no_time.to_numpy(), f"no time in column {spec.time!r}")
    frame = frame[~no_time]
    unit = spec.time_unit
    negative = frame["time_h"] < 0
    if negative.any():
        r = frame[negative].iloc[0]
        raise HarvestDataError(
            f"{where}: column {spec.time!r}, run {r['run_id']!r}, row {int(r['row'])}: time "
            f"{r['time_h'] / _TIME_UNITS[unit]:g} {unit} is negative; time counts from the "
            "start of the batch"
        )
    far = frame["time_h"] > 3.0 * spec.horizon_hours
    if far.any():
        r = frame[far].iloc[0]
        raise HarvestDataError(
            f"{where}: column {spec.time!r}, run {r['run_id']!r}, row {int(r['row'])}: time "
            f"{_time_text(r['time_h'], spec)} is more than three times the horizon "
            f"({_time_text(spec.horizon_hours, spec)}, where harvest is forced). Is the time "
            f"unit right (the spec declares time_unit = {unit!r})? If it is, declare the "
            "culture's length: horizon_hours (in hours, a whole number of epochs)"
        )
    for column, col, label in (
        ("protein", spec.protein, spec.protein_unit),
        ("impurity", spec.impurity, spec.impurity_unit),
    ):
        bad = frame[column] <= 0
        if bad.any():
            r = frame[bad].iloc[0]
            raise HarvestDataError(
                f"{where}: column {col!r}, run {r['run_id']!r}, row {int(r['row'])}: {column} "
                f"{r[column]:g} {label} is not positive; growth rates take its logarithm, so "
                "remove the row or leave the value empty if it was below detection"
            )
        gone = frame[column].isna()
        exclude(gone.to_numpy(), f"no {column} value in column {col!r}")
        frame = frame[~gone]
    order = frame.groupby("run_id", sort=False).ngroup()
    shuffled = frame.assign(_run=order).sort_values(["_run", "time_h"], kind="stable")
    if not shuffled.index.equals(frame.index):  # rows as exported, not by time: sort them
        _log.info("%s: rows sorted by run and time", where)
        frame = shuffled.drop(columns="_run")
    if spec.repeats == "mean":
        repeat = frame.duplicated(["run_id", "time_h"], keep="first").to_numpy()
        if repeat.any():
            keys = [frame["run_id"], frame["time_h"]]
            means = frame.groupby(keys, sort=False)[["protein", "impurity"]].transform("mean")
            frame[["protein", "impurity"]] = means
            exclude(repeat, "assay repeat: averaged into the first measurement at this time")
            frame = frame[~repeat]
    for run, rows in frame.groupby("run_id", sort=False):
        steps = np.diff(rows["time_h"].to_numpy())
        if (steps <= 0).any():
            k = int(np.argmax(steps <= 0))
            t1 = rows["time_h"].iloc[k + 1]
            raise HarvestDataError(
                f"{where}: column {spec.time!r}, run {run!r}, row {int(rows['row'].iloc[k + 1])}: "
                f"time {_time_text(t1, spec)} is measured twice; keep one measurement per time "
                '(or declare repeats = "mean" in the spec to average assay repeats)'
            )
    if spec.phases is not None:
        outside = ~frame["phase"].isin(spec.phases)
        exclude(outside.to_numpy(), f"phase not in the declared phases {list(spec.phases)}")
        frame = frame[~outside]
    position = frame["time_h"] / spec.epoch_hours
    epoch = np.round(position)
    off = (position - epoch).abs() > spec.epoch_tolerance
    exclude(
        off.to_numpy(),
        f"not at a decision epoch (every {_time_text(spec.epoch_hours, spec)}, within "
        f"{_time_text(spec.epoch_tolerance * spec.epoch_hours, spec)})",
    )
    step = _typical_step(frame)  # over every measured row, on the grid or not
    if len(off) >= 4 and off.mean() > 0.5:
        typical = _time_text(step, spec) if math.isfinite(step) else "unknown"
        warnings.warn(
            f"{where}: {int(off.sum())} of {len(off)} measurements are not at a decision epoch "
            f"(every {_time_text(spec.epoch_hours, spec)}) and are left out; measurements are "
            f"typically {typical} apart. Check time_unit (the spec declares "
            f"{spec.time_unit!r}: 'd' reads the times as days) and epoch_hours (the decision "
            "interval, e.g. 24 for daily samples)",
            UserWarning,
            stacklevel=2,
        )
    frame = frame.assign(epoch=epoch.astype("int64"))[~off]
    for run, rows in frame.groupby("run_id", sort=False):
        if rows["epoch"].duplicated().any():
            r = rows[rows["epoch"].duplicated()].iloc[0]
            raise HarvestDataError(
                f"{where}: run {run!r}, row {int(r['row'])}: two measurements at epoch "
                f"{int(r['epoch'])} ({_time_text(r['epoch'] * spec.epoch_hours, spec)}); keep "
                f"one per epoch of {_time_text(spec.epoch_hours, spec)}, or check the time unit "
                f"(the spec declares time_unit = {spec.time_unit!r})"
            )
    counts = frame.groupby("run_id", sort=False).size()
    all_runs = pd.unique(pd.Series(table[spec.run_id].to_numpy()).dropna())
    for run in all_runs:
        n = int(counts.get(run, 0))
        if n >= min_points:
            continue
        if min_points == 1:  # the running batch: nothing to decide on
            raise HarvestDataError(
                f"{where}: run {run!r} has no usable measurement (one at a decision epoch, every "
                f"{_time_text(spec.epoch_hours, spec)}, with protein and impurity); the excluded "
                "rows say why"
            )
        short = (frame["run_id"] == run).to_numpy()
        exclude(
            short,
            f"run {run!r} has {n} usable measurement(s): a growth rate needs two at "
            "consecutive epochs (run not used)",
        )
        frame = frame[~short]
    if frame.empty:
        reasons = pd.Series([e["reason"] for e in excluded]).value_counts()
        why = "; ".join(f"{n} x {r}" for r, n in reasons.head(3).items())
        hint = ""
        if len(off) and off.mean() > 0.5:
            hint = (
                f". Most measurements lie between the epochs: if they are taken at a fixed "
                f"offset from inoculation (e.g. day 0.7, 1.7, ...), raise epoch_tolerance "
                f"(now {spec.epoch_tolerance:g} of an epoch, at most 0.49) or count time from "
                "each run's first sample"
            )
            if math.isfinite(step):
                hint += f"; the measurements are typically {_time_text(step, spec)} apart"
        raise HarvestDataError(
            f"{where}: no run has {min_points} usable measurements (at decision epochs, every "
            f"{_time_text(spec.epoch_hours, spec)}, with protein and impurity); left out: "
            f"{why}{hint}"
        )

    growth_rows = []
    horizon = spec.T
    for run, rows in frame.groupby("run_id", sort=False):
        ep = rows["epoch"].to_numpy()
        p, i = rows["protein"].to_numpy(), rows["impurity"].to_numpy()
        for k in range(len(rows) - 1):
            if ep[k + 1] > horizon:
                excluded.append(
                    {
                        "table": name,
                        "run_id": run,
                        "row": int(rows["row"].iloc[k + 1]),
                        "reason": "after the horizon "
                        f"({_time_text(spec.horizon_hours, spec)}, where harvest is forced): "
                        "growth there is not the growth a harvest decision faces (pair not "
                        "used; declare horizon_hours to use a longer culture)",
                    }
                )
            elif ep[k + 1] - ep[k] == 1:
                growth_rows.append(
                    {
                        "run_id": run,
                        "epoch": int(ep[k]),
                        "phi": math.log(p[k + 1] / p[k]),
                        "psi": math.log(i[k + 1] / i[k]),
                    }
                )
            else:
                gap = (ep[k + 1] - ep[k]) * spec.epoch_hours
                excluded.append(
                    {
                        "table": name,
                        "run_id": run,
                        "row": int(rows["row"].iloc[k + 1]),
                        "reason": f"{_time_text(gap, spec)} after the previous measurement: "
                        "growth over "
                        f"{int(ep[k + 1] - ep[k])} epochs is not a one-epoch growth rate "
                        "(pair not used; the row still counts for its neighbours)",
                    }
                )
    growth = pd.DataFrame(growth_rows, columns=["run_id", "epoch", "phi", "psi"])
    kept = frame[["run_id", "row", "time_h", "epoch", "protein", "impurity"]]
    if has_phase:
        kept = kept.assign(phase=frame["phase"])
    times = dict(zip(np.arange(len(table)), table[spec.time], strict=True))
    excl = pd.DataFrame(excluded, columns=[c for c in _EXCLUDED_COLUMNS if c != "time_h"])
    excl.insert(3, "time_h", [_hours(times[r], spec) for r in excl["row"]])
    for _, e in excl.iterrows():
        _log.info("%s: run %r, row %d excluded: %s", where, e["run_id"], e["row"], e["reason"])
    return RunData(
        table=kept.reset_index(drop=True),
        growth=growth,
        excluded=excl.sort_values("row", kind="stable").reset_index(drop=True),
        spec=spec,
        name=name,
        typical_step_h=step,
    )


def _is_date(value: Any) -> bool:
    """Whether a cell reads as a calendar date or timestamp (not a number)."""
    if isinstance(value, pd.Timestamp | np.datetime64) or hasattr(value, "isoformat"):
        return True
    text = str(value).strip()
    if not any(sep in text for sep in ("-", "/", ".", ":")):
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError):
        return False
    return True


def _hours_since_first(table: pd.DataFrame, spec: HarvestSpec, where: str) -> pd.DataFrame:
    """Return ``table`` with its timestamps as hours since each run's first measurement."""
    raw = table[spec.time]
    if pd.api.types.is_numeric_dtype(raw):
        raise HarvestDataError(
            f"{where}: column {spec.time!r} holds numbers, not dates and times; declare the "
            "unit of the culture time instead (time_unit = 'h', 'd' or 'min')"
        )
    text = raw.astype(str)
    dotted = text.str.contains(r"^\s*\d{1,2}\.\d{1,2}\.\d{2,4}", regex=True).any()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stamps = pd.to_datetime(raw, errors="coerce", dayfirst=bool(dotted), format="mixed")
    bad = stamps.isna() & raw.notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise HarvestDataError(
            f"{where}: column {spec.time!r}, row {i}: {raw.iloc[i]!r} is not a date and time "
            "(time_unit = 'timestamp'); write it like 2024-02-01 10:36 or 01.02.2024 10:36"
        )
    first = stamps.groupby(table[spec.run_id].to_numpy()).transform("min")
    out = table.copy()
    out[spec.time] = ((stamps - first) / pd.Timedelta(hours=1)).round(6)
    return out


def _time_text(hours: float, spec: HarvestSpec) -> str:
    """Return a time in the data's unit, hours beside it: ``"2.5 d (60 h)"``, ``"60 h"``."""
    unit = spec.time_unit
    if unit in ("h", "timestamp"):
        return f"{hours:.4g} h"
    return f"{hours / _TIME_UNITS[unit]:.4g} {unit} ({hours:.4g} h)"


def _hours(value: Any, spec: HarvestSpec) -> float:
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    return round(float(number) * _TIME_UNITS[spec.time_unit], 9)  # no float noise in tables


def _as_runs(
    data: RunData | pd.DataFrame | str | PathLike[str],
    spec: HarvestSpec | str | PathLike[str] | None,
    argument: str,
    label: str,
    min_points: int,
) -> RunData:
    if isinstance(data, RunData):
        return data
    if isinstance(data, pd.DataFrame):
        return validate_runs(data, spec=spec, name=f"{label} table", min_points=min_points)
    if isinstance(data, str | PathLike):
        name = f"{label} file {Path(data).name!r}"
        return read_runs(data, spec=spec, name=name, min_points=min_points)
    raise TypeError(
        f"argument {argument!r} must be a DataFrame, a file path or RunData, "
        f"got {type(data).__name__}"
    )


def knowledge_from_runs(
    history: RunData | pd.DataFrame | str | PathLike[str],
    *,
    spec: HarvestSpec | str | PathLike[str] | None = None,
    prior: KnowledgeState | None = None,
) -> KnowledgeState:
    """Knowledge state ``I_0`` from the one-epoch growth rates of past runs.

    The growth rates of all runs are pooled (the paper's "data points") and passed to
    :meth:`KnowledgeState.from_data`, i.e. :func:`~bayesbio.harvest.nig_posterior`.

    Parameters
    ----------
    history : RunData, DataFrame or path
        Past runs in the run-table format.
    spec : HarvestSpec, TOML path or None, default None
        The declaration (ignored for a :class:`RunData`, which carries its own).
    prior : KnowledgeState, optional
        Prior beliefs; default the improper ``1/sigma^2`` prior (needs >= 2 growth rates).

    Returns
    -------
    KnowledgeState
        NIG posteriors of the protein and impurity log growth rates per epoch.

    Raises
    ------
    HarvestDataError
        If the runs give too few growth rates for a proper posterior.
    """
    runs = _as_runs(history, spec, "history", "history", 2)
    return _knowledge(runs.growth, runs, prior)


def _knowledge(
    g: pd.DataFrame, runs: RunData, prior: KnowledgeState | None = None, scope: str = ""
) -> KnowledgeState:
    try:
        return KnowledgeState.from_data(g["phi"].to_numpy(), g["psi"].to_numpy(), prior=prior)
    except ValueError as exc:
        raise HarvestDataError(
            f"{runs.name}: {len(g)} pair(s) of measurements one epoch "
            f"({_time_text(runs.spec.epoch_hours, runs.spec)}) apart{scope} give no usable "
            f"knowledge state ({exc}); at least 2 differing growth rates are needed, so add "
            "runs or measurements" + _epoch_hint(runs)
        ) from None


def _typical_step(frame: pd.DataFrame) -> float:
    """Median time between a run's consecutive measurements, h (NaN with none)."""
    steps = frame.groupby("run_id", sort=False)["time_h"].diff().dropna()
    return float(steps.median()) if len(steps) else math.nan


def _epoch_hint(runs: RunData) -> str:
    """Return a hint when measurements lie wider apart than an epoch (none one epoch apart)."""
    typical = runs.typical_step_h  # over every measured row, not only those kept
    if not typical > runs.spec.epoch_hours * (1.0 + runs.spec.epoch_tolerance):
        return ""
    return (
        f"; the measurements are typically {_time_text(typical, runs.spec)} apart: if that is "
        f"the decision interval, declare epoch_hours = {typical:g} in the spec"
    )


def growth_window(
    history: pd.DataFrame, current: pd.DataFrame, epoch: int, window: str = "ahead"
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Return the growth rates a decision at ``epoch`` learns from (``growth_window``).

    Parameters
    ----------
    history, current : pandas.DataFrame
        Growth-rate pairs (:attr:`RunData.growth`) of the past runs and of the running batch.
    epoch : int
        The decision epoch.
    window : {"epochs", "ahead", "all"}, default "ahead"
        ``"ahead"`` (and ``"epochs"``, whose per-epoch laws come from these pairs): the
        history's pairs from ``epoch`` on (from an earlier epoch where fewer than 10 pairs lie
        ahead) and the running batch's pairs from the epoch before that one; ``"all"``:
        every pair.

    Returns
    -------
    tuple of (DataFrame, DataFrame, int)
        The history's and the running batch's pairs kept, and the first epoch kept.
    """
    check_choice("window", window, GROWTH_WINDOWS)
    if window == "all" or history.empty:
        return history, current, 0
    epochs = np.sort(history["epoch"].to_numpy())[::-1]
    start = int(epoch)
    if (epochs >= start).sum() < _MIN_AHEAD_POINTS:
        start = int(epochs[min(_MIN_AHEAD_POINTS, len(epochs)) - 1])
    keep = history["epoch"] >= start
    return (
        history[keep],
        current[current["epoch"] >= start - 1],
        start,
    )


def epoch_knowledge(
    history: pd.DataFrame, pooled: KnowledgeState, first: int, last: int
) -> dict[int, KnowledgeState]:
    """Return each epoch's own growth law, from the past runs' growth at that epoch.

    Epoch ``e``'s knowledge state is the posterior from the history's growth rates at ``e``
    under a prior at the pooled law ``pooled`` worth ``kappa`` growth rates, ``kappa`` chosen
    by the data (empirical Bayes, method of moments over the epochs ``first..last``): the
    variance of growth within an epoch over the variance of the epochs' true mean growth
    between them, at most the pooled law's own count. Where every epoch grows alike (one
    growth law, as the paper assumes) ``kappa`` is large and each epoch keeps the pooled law;
    where the culture changes pace, each epoch follows its own past runs.

    Parameters
    ----------
    history : pandas.DataFrame
        Growth-rate pairs of past runs (:attr:`RunData.growth`).
    pooled : KnowledgeState
        The law of the growth ahead (proper).
    first, last : int
        Epochs to return (inclusive).

    Returns
    -------
    dict of int to KnowledgeState
        One proper state per epoch ``first..last``.
    """
    ahead = history[(history["epoch"] >= first) & (history["epoch"] <= last)]

    def prior(nig: Any, column: str) -> Any:
        values = [g.to_numpy(dtype=float) for _, g in ahead.groupby("epoch")[column]]
        k = min(_prior_weight(values), nig.nu)
        mu, sd = nig.plug_in()
        return type(nig)(alpha=mu, nu=k, lam=k / 2.0, beta=k / 2.0 * sd**2)

    base = KnowledgeState(prior(pooled.protein, "phi"), prior(pooled.impurity, "psi"))
    out = {}
    for e in range(first, last + 1):
        rows = history[history["epoch"] == e]
        state = base
        for phi, psi in rows[["phi", "psi"]].itertuples(index=False):
            state = state.update(float(phi), float(psi))
        out[e] = state
    return out


def _prior_weight(values: list[np.ndarray]) -> float:
    """Growth rates the pooled law is worth in one epoch's prior (method of moments).

    Within-epoch variance over the between-epoch variance of the true means (the variance of
    the epochs' means less its sampling part); infinite when the epochs' means vary no more
    than sampling explains, at least :data:`_EPOCH_PRIOR_POINTS`.
    """
    groups = [v for v in values if len(v) >= 2]
    if len(groups) < 2:
        return math.inf
    within = sum(float(((v - v.mean()) ** 2).sum()) for v in groups) / sum(
        len(v) - 1 for v in groups
    )
    means = np.array([v.mean() for v in groups])
    between = float(means.var(ddof=1)) - within * float(np.mean([1.0 / len(v) for v in groups]))
    if between <= 0:
        return math.inf
    return max(within / between, _EPOCH_PRIOR_POINTS)


def _value_summary(draws: Any) -> tuple[float, float, tuple[float, float]]:
    """Mean, Monte Carlo SE and 10-90 % range of per-draw values (NaN for a single value)."""
    values = np.asarray(draws, dtype=float).ravel()
    if len(values) < 2:
        return float(values.mean()), float("nan"), (float("nan"), float("nan"))
    low, high = np.quantile(values, [0.1, 0.9])
    se = float(values.std(ddof=1) / math.sqrt(len(values)))
    return float(values.mean()), se, (float(low), float(high))


def _epoch_continuation(
    params: HarvestParams,
    laws: dict[int, KnowledgeState],
    t: int,
    p: float,
    i: float,
    rng: np.random.Generator | None,
    n_draws: int,
) -> np.ndarray:
    """Value of continuing at ``(p, i)`` with a growth law per epoch, one value per draw.

    ``rng`` None: the plug-in laws (one value). Otherwise ``n_draws`` Thompson draws of every
    epoch's law; each draw's backward induction runs with its own law at each epoch.
    """
    from .mdp import backward_induction
    from .operator import ShockLaw, continuation, grid_operator, make_grid

    seed = None if rng is None else int(rng.integers(2**63 - 1))

    def law(state: KnowledgeState) -> tuple[ShockLaw, ShockLaw]:
        if seed is None:
            mu_p, s_p, mu_i, s_i = state.plug_in()
            return ShockLaw.normal(np.array([mu_p]), np.array([s_p])), ShockLaw.normal(
                np.array([mu_i]), np.array([s_i])
            )
        # the same random numbers for every epoch (draw m is quantile m of each epoch's law):
        # where the epochs' laws agree, a draw is one growth law for the whole run, as the
        # pooled model's model risk is
        mu_p, s_p, mu_i, s_i = state.thompson(np.random.default_rng(seed), n_draws)
        return ShockLaw.normal(mu_p, s_p), ShockLaw.normal(mu_i, s_i)

    grid = make_grid(params)
    draws = {e: law(laws[e]) for e in range(t, params.T)}
    values = None  # V_{t+1}; None at t + 1 = T, where continuing ends in R
    if t + 1 < params.T:
        ops = {e: grid_operator(params, *draws[e], grid) for e in range(t + 1, params.T)}
        values = backward_induction(params, ops, grid, t_stop=t + 1)[0]
    return continuation(
        params, *draws[t], np.asarray(p)[..., None], np.asarray(i)[..., None], values, grid=grid
    )


def summarize_knowledge(
    knowledge: KnowledgeState, *, ci_prob: float = 0.94, epoch_hours: float = 6.0
) -> pd.DataFrame:
    """Posterior mean and equal-tailed interval of each growth-rate mean and SD.

    Parameters
    ----------
    knowledge : KnowledgeState
        The beliefs (proper NIG laws).
    ci_prob : float, default 0.94
        Interval probability.
    epoch_hours : float, default 6.0
        Epoch length, h, for the ``per_epoch`` label.

    Returns
    -------
    pandas.DataFrame
        Rows ``protein``/``impurity`` x ``mu``/``sigma`` with columns ``quantity``,
        ``parameter``, ``mean``, ``lower``, ``upper``, ``n`` (data points), ``per_epoch``.
        ``mu`` is the mean log growth per epoch (``exp(mu) - 1`` is the growth in %/100),
        ``sigma`` its epoch-to-epoch SD; the mean of ``sigma`` is the plug-in estimate.
    """
    ci_prob = check_fraction("ci_prob", ci_prob)
    tail = (1.0 - ci_prob) / 2.0
    rows = []
    for quantity, nig in (("protein", knowledge.protein), ("impurity", knowledge.impurity)):
        nig._require_proper("summarize_knowledge")
        mu_law = stats.t(
            2.0 * nig.lam, loc=nig.alpha, scale=math.sqrt(nig.beta / (nig.lam * nig.nu))
        )
        var_law = stats.invgamma(nig.lam, scale=nig.beta)
        lo, hi = mu_law.ppf([tail, 1.0 - tail])
        rows.append((quantity, "mu", nig.alpha, lo, hi, nig.nu))
        vlo, vhi = np.sqrt(var_law.ppf([tail, 1.0 - tail]))
        rows.append((quantity, "sigma", nig.plug_in()[1], vlo, vhi, nig.nu))
    frame = pd.DataFrame(rows, columns=["quantity", "parameter", "mean", "lower", "upper", "n"])
    frame["per_epoch"] = f"{epoch_hours:g} h"
    return frame


@dataclass(frozen=True)
class HarvestDecision:
    """The decision for a running batch, with the expected reward of each action.

    Attributes
    ----------
    decision : {"harvest now", "continue"}
        What the policy advises.
    policy : str
        The policy's name.
    run_id : object
        The running batch.
    time_h : float
        Time of its latest measurement, h; ``epoch`` the decision epoch.
    epoch : int
        Decision epoch (``time_h / epoch_hours``).
    protein, impurity : float
        Latest measurement, declared units.
    reward_harvest : float
        Reward of harvesting now, ``price * min(protein, cap) - impurity_cost * impurity``.
    reward_continue : float
        Expected reward of continuing one more epoch and then following the policy (net of
        the epoch's cost and the failure risk); NaN when the harvest is forced or the policy
        has no value estimate (CP).
    p_fail_next : float
        Predictive probability that impurity passes its limit in the next epoch (failure),
        from the next epoch's own growth law under ``growth_window="epochs"``.
    forced : str or None
        Why the harvest is forced (horizon or protein cap), else None.
    knowledge_prior : KnowledgeState
        ``I_0``, from the history.
    knowledge : KnowledgeState
        ``I_t``, after the running batch's own growth rates.
    params : HarvestParams
        The decision problem, amounts in units of the running batch's first measurement.
    protein_reference, impurity_reference : float
        That first measurement, declared units (``params`` amounts times these are amounts).
    n_history_runs, n_history_points, n_current_points : int
        Runs and growth-rate data points behind ``I_0``; data points of the running batch
        behind ``I_t``.
    growth_from_h : float
        Culture time from which the growth rates count, h (0 for every epoch; see
        :attr:`HarvestSpec.growth_window`).
    reward_continue_se : float
        Monte Carlo standard error of ``reward_continue`` (RL-MR: over its Thompson draws;
        raise ``n_draws`` where the two actions are closer than about two of them); NaN for
        the other policies.
    reward_continue_range : tuple of float
        10 % and 90 % quantiles of the value of continuing over RL-MR's draws of the growth
        laws: the model risk in that value (NaN for the other policies).
    excluded : pandas.DataFrame
        Rows and pairs left out of either table, with the reason.
    spec : HarvestSpec
        The declaration used.
    random_seed : int or None
        Seed of the policy's draws.
    n_draws : int
        RL-MR's Thompson draws behind ``reward_continue`` (raised from the ``n_draws`` asked
        for while the two actions were within two Monte Carlo errors; 0 for the other
        policies).
    """

    decision: str
    policy: str
    run_id: Any
    time_h: float
    epoch: int
    protein: float
    impurity: float
    reward_harvest: float
    reward_continue: float
    p_fail_next: float
    forced: str | None
    knowledge_prior: KnowledgeState
    knowledge: KnowledgeState
    params: HarvestParams
    protein_reference: float
    impurity_reference: float
    n_history_runs: int
    n_history_points: int
    n_current_points: int
    growth_from_h: float
    reward_continue_se: float
    reward_continue_range: tuple[float, float]
    excluded: pd.DataFrame = field(repr=False)
    spec: HarvestSpec = field(repr=False)
    random_seed: int | None = None
    n_draws: int = 0

    @property
    def harvest(self) -> bool:
        """Whether the advice is to harvest now."""
        return self.decision == "harvest now"

    def default_economics(self) -> dict[str, str]:
        """Return the economics the spec left out, with the values used (declared units).

        Returns
        -------
        dict of str to str
            E.g. ``{"protein_cap": "8.2 g/L (50x the first measurement)"}``; empty when the
            spec declares all four of ``protein_cap``, ``impurity_limit``, ``price`` and
            ``impurity_cost``.
        """
        s, prm = self.spec, self.params
        p_ref, i_ref = self.protein_reference, self.impurity_reference
        used = {
            "protein_cap": f"{prm.p_bar * p_ref:.4g} {s.protein_unit} ({prm.p_bar:g}x the first "
            "measurement)",
            "impurity_limit": f"{prm.i_bar * i_ref:.4g} {s.impurity_unit} ({prm.i_bar:g}x)",
            "price": f"{prm.r / p_ref:.4g} {s.reward_unit} per {s.protein_unit}",
            "impurity_cost": f"{prm.c / i_ref:.4g} {s.reward_unit} per {s.impurity_unit}",
        }
        return {k: v for k, v in used.items() if getattr(s, k) is None}

    def to_frame(self) -> pd.DataFrame:
        """Return the two actions with their expected reward, one row each.

        Returns
        -------
        pandas.DataFrame
            Columns ``run_id``, ``time_h``, ``policy``, ``action``, ``expected_reward``,
            ``mc_se`` (its Monte Carlo error), ``q10``, ``q90`` (its range over the growth laws
            the data allow; RL-MR), ``reward_unit``, ``chosen``, ``p_fail_next``, ``protein``,
            ``impurity``.
        """
        low, high = self.reward_continue_range
        return pd.DataFrame(
            {
                "run_id": [self.run_id] * 2,
                "time_h": [self.time_h] * 2,
                "policy": [self.policy] * 2,
                "action": ["harvest now", "continue"],
                "expected_reward": [self.reward_harvest, self.reward_continue],
                "mc_se": [0.0, self.reward_continue_se],
                "q10": [self.reward_harvest, low],
                "q90": [self.reward_harvest, high],
                "reward_unit": [self.spec.reward_unit] * 2,
                "chosen": [self.harvest, not self.harvest],
                "p_fail_next": [0.0, self.p_fail_next],
                "protein": [self.protein] * 2,
                "impurity": [self.impurity] * 2,
            }
        )

    def explain(self) -> str:
        """One paragraph, in domain words, on what to do and why.

        Returns
        -------
        str
            The explanation.
        """
        s, unit = self.spec, self.spec.reward_unit
        epoch = _time_text(s.epoch_hours, s)
        mu_p, mu_i = self.knowledge.protein.alpha, self.knowledge.impurity.alpha
        cap = self.params.p_bar * self.protein_reference
        limit = self.params.i_bar * self.impurity_reference
        head = (
            f"Run {self.run_id} at {_time_text(self.time_h, s)} (protein {self.protein:.4g} "
            f"{s.protein_unit}, impurity {self.impurity:.4g} {s.impurity_unit}): "
            f"{self.decision.upper()} under the {self.policy} policy. "
        )
        if self.forced:
            why = f"The harvest is forced: {self.forced}. "
        elif math.isnan(self.reward_continue):
            why = (
                "Common practice continues until the protein cap or the stationary phase and "
                "gives no estimate of the reward of continuing. "
            )
        else:
            better = "exceeds" if self.harvest else "falls short of"
            later = (
                "a harvest at the next epoch"
                if self.policy == "myopic"
                else "the best harvest time after it"
            )
            chance = "<0.1%" if self.p_fail_next < 1e-3 else f"{self.p_fail_next:.1%}"
            why = (
                f"Harvesting now earns {self.reward_harvest:.4g} {unit}, which {better} the "
                f"{self.reward_continue:.4g} {unit} expected from running one more {epoch} "
                f"epoch (its cost, a {chance} chance that impurity passes its limit of "
                f"{limit:.4g} {s.impurity_unit} and fails the batch, and {later} included). "
            )
            if not math.isnan(self.reward_continue_se):
                low, high = self.reward_continue_range
                why += (
                    f"Over the growth laws the data still allow, continuing is worth {low:.4g} "
                    f"to {high:.4g} {unit} (10-90 %; Monte Carlo error of the mean "
                    f"{self.reward_continue_se:.2g}). "
                )
                if abs(self.reward_harvest - self.reward_continue) < 2 * self.reward_continue_se:
                    why += (
                        f"The two actions are within two Monte Carlo errors even at "
                        f"{self.n_draws} draws: too close to call, and worth little either way "
                        "(more draws, n_draws / --n-draws, narrow the error). "
                    )
        since = f" from {_time_text(self.growth_from_h, s)} on" if self.growth_from_h > 0 else ""
        learnt = (
            f"From {self.n_history_points} growth-rate data points{since} in "
            f"{self.n_history_runs} past run(s) and {self.n_current_points} of this run, "
            f"protein is expected to grow {math.expm1(mu_p):+.0%} and impurity "
            f"{math.expm1(mu_i):+.0%} per {epoch}"
        )
        if s.growth_window == "epochs" and self.policy in ("RL-MR", "plug-in"):
            learnt += (
                " on average, each epoch ahead with its own growth law from the past runs' "
                "growth at that epoch"
            )
        if self.policy == "RL-MR":
            learnt += (
                "; the policy averages its decision over the growth laws these data still allow "
                "(model risk)"
            )
        learnt += (
            f". Harvest is forced at {_time_text(s.horizon_hours, s)} or at a protein cap of "
            f"{cap:.4g} {s.protein_unit}. Rewards are the batch's value at harvest (price x "
            "protein up to the cap, less the impurity cost) less the cost of the epochs still "
            "to run: epochs already run are spent whatever is decided, so they are not "
            "subtracted."
        )
        defaults = self.default_economics()
        if defaults:
            learnt += (
                " Not declared in the spec's [economics], so taken relative to this run's "
                "first measurement (the scale-free defaults of the case study): "
                + ", ".join(f"{k} = {v}" for k, v in defaults.items())
                + "; declare them for a decision in your own economics."
            )
        if len(self.excluded):
            learnt += (
                f" {len(self.excluded)} measurement(s) or pair(s) were left out of the growth "
                "rates; the excluded table says why."
            )
        return head + why + learnt


def _stack(*frames: pd.DataFrame) -> pd.DataFrame:
    # concatenating empty frames is deprecated in pandas: keep only those with rows
    full = [f for f in frames if len(f)]
    return pd.concat(full, ignore_index=True) if full else frames[0]


def _economics(spec: HarvestSpec, p_ref: float, i_ref: float, where: str) -> HarvestParams:
    """Build the decision problem in units of the running batch's first measurement."""
    p_bar = 50.0 if spec.protein_cap is None else spec.protein_cap / p_ref
    i_bar = 40.0 if spec.impurity_limit is None else spec.impurity_limit / i_ref
    if p_bar <= 1.0:
        raise HarvestDataError(
            f"{where}: the first protein measurement {p_ref:g} {spec.protein_unit} is already at "
            f"the protein cap {spec.protein_cap:g}; check protein_cap in the spec's [economics]"
        )
    if i_bar < 1.0:
        raise HarvestDataError(
            f"{where}: the first impurity measurement {i_ref:g} {spec.impurity_unit} is above "
            f"the impurity limit {spec.impurity_limit:g}; check impurity_limit in the spec's "
            "[economics]"
        )
    return HarvestParams(
        T=spec.T,
        p_bar=p_bar,
        i_bar=i_bar,
        r=10.0 if spec.price is None else spec.price * p_ref,
        c=2.0 if spec.impurity_cost is None else spec.impurity_cost * i_ref,
        c_u=spec.cost_per_epoch,
        r_f=spec.failure_penalty,
    )


def _warn_if_slowing(
    history: pd.DataFrame,
    current: pd.DataFrame,
    prior: KnowledgeState,
    run: str,
    spec: HarvestSpec,
) -> None:
    """Warn where the data contradict one growth law for every epoch up to the horizon.

    The model (Wang et al. 2024) draws every epoch's growth from one law. Two signs that the
    culture slows before the horizon: the history's growth rates fall with culture time
    (Spearman correlation below -0.5, p < 0.01), or the run's last three growth rates all
    lie below the history's 10 % predictive quantile. Either way the decision expects growth
    that may not come. ``history`` and ``current`` are the growth rates the decision uses (its
    :attr:`HarvestSpec.growth_window`).
    """
    said = []
    per_epoch = spec.growth_window == "epochs"  # each epoch's own law follows the trend
    if not per_epoch and len(history) >= 8 and history["epoch"].nunique() >= 3:
        rho, p_value = stats.spearmanr(history["epoch"], history["phi"])
        if rho < -0.5 and p_value < 0.01:
            by_epoch = history.groupby("epoch")["phi"].mean()
            first, last = (100.0 * (math.exp(by_epoch.iloc[i]) - 1.0) for i in (0, -1))
            said.append(
                f"the history's protein growth slows with culture time (about {first:+.0f} % "
                f"per epoch at the start, {last:+.0f} % at the end; Spearman {rho:.2f})"
            )
    if len(current) >= 3:  # the run itself, over its last three epochs (a 1-in-1000 chance)
        try:
            law = prior.protein.predictive()
        except ValueError:  # too little history for a proper predictive
            law = None
        last = current["phi"].to_numpy(dtype=float)[-3:]
        if law is not None and (law.cdf(last) < 0.1).all():
            grew = ", ".join(f"{100.0 * (math.exp(x) - 1.0):+.0f} %" for x in last)
            low = 100.0 * (math.exp(float(law.ppf(0.1))) - 1.0)
            said.append(
                f"run {run!r} grew {grew} in its last three epochs, each below the history's "
                f"10 % quantile for one epoch ({low:+.0f} %)"
            )
    if said:
        window = (
            'growth_window = "epochs" in the spec (the growth of past runs from the decision\'s '
            "epoch on, a law per epoch), "
            if spec.growth_window == "all"
            else ""
        )
        advice = (
            ". The decision expects the growth the past runs showed at each epoch ahead, "
            "which this run is falling short of: check it, and give the decision less weight"
            if per_epoch
            else ". The model takes one growth law until the horizon, so it expects growth "
            f"that a slowing culture will not give: use {window}set horizon_hours in the spec "
            "to where growth stops, or label phases (a phase column and phases = [...]) so "
            "that the slowing epochs stay out of the growth law"
        )
        warnings.warn(
            "; ".join(said)[0].upper() + "; ".join(said)[1:] + advice,
            UserWarning,
            stacklevel=3,
        )


def harvest_decision(
    history: RunData | pd.DataFrame | str | PathLike[str],
    now: RunData | pd.DataFrame | str | PathLike[str],
    *,
    spec: HarvestSpec | str | PathLike[str] | None = None,
    policy: str = "RL-MR",
    random_seed: int | None = None,
    n_draws: int = 32,
) -> HarvestDecision:
    """Advise "harvest now" or "continue" for a running batch from measured runs.

    ``I_0`` comes from the history (:func:`knowledge_from_runs`); each one-epoch growth rate of
    the running batch updates it (``I_t = I_0 (+) (phi, psi)``, spec §2). At the latest
    measurement ``(t, p, i)`` the policy harvests iff ``R(p, i) >= Q``, its expected reward of
    continuing (ties harvest); harvest is forced at the horizon or the protein cap.

    Parameters
    ----------
    history : RunData, DataFrame or path
        Past runs (run-table format, module docstring); each needs >= 2 measurements.
    now : RunData, DataFrame or path
        The running batch's measurements so far (one run, >= 1 measurement; the latest one
        must be at a decision epoch).
    spec : HarvestSpec, TOML path or None, default None
        Column names, units, epochs and economics; None: the defaults.
    policy : {"RL-MR", "myopic", "plug-in", "plug-in-static", "CP"}, default "RL-MR"
        RL-MR averages the optimal decision over Thompson draws of the growth laws (model
        risk); "plug-in" trusts the point estimates; "plug-in-static" uses the history only;
        "myopic" looks one epoch ahead; "CP" continues until the cap or the horizon.
    random_seed : int, optional
        Seed of RL-MR's draws (same seed, same answer).
    n_draws : int, default 32
        Thompson draws of RL-MR. Where the two actions come out within two Monte Carlo
        errors, the draws are doubled (same seed) up to 8x this until they separate:
        ``HarvestDecision.n_draws`` says how many were used.

    Returns
    -------
    HarvestDecision
        The advice with the expected reward of both actions; ``.explain()``, ``.to_frame()``.

    Raises
    ------
    HarvestDataError
        On invalid tables, a running batch that is not one run, that also appears in the
        history, whose latest measurement was left out, or whose impurity already passed its
        limit (the batch has failed).
    """
    if policy in ("PI-MDP", "myopic-PI"):
        raise ValueError(
            f"policy {policy!r} needs the true growth-rate laws, which measured runs never "
            f"give; use one of {list(DECISION_POLICIES)} (RL-MR accounts for the uncertainty)"
        )
    check_choice("policy", policy, DECISION_POLICIES)
    seed = seed_int(random_seed)
    n_draws = check_int("n_draws", n_draws, minimum=1)
    spec = _resolve_spec(spec)
    hist = _as_runs(history, spec, "history", "history", 2)
    cur = _as_runs(now, spec, "now", "current run", 1)
    where = cur.name
    if len(cur.runs) != 1:
        raise HarvestDataError(
            f"{where}: holds {len(cur.runs)} runs {cur.runs[:5]}; give only the running "
            "batch's measurements (past runs belong in the history)"
        )
    run = cur.runs[0]
    if run in set(hist.runs):
        raise HarvestDataError(
            f"{where}: run {run!r} also appears in the {hist.name}; remove it from the "
            "history (the running batch's own measurements update the knowledge once)"
        )
    last = cur.table.iloc[-1]
    late = cur.excluded[cur.excluded["row"] > last["row"]]
    if len(late):
        e = late.iloc[-1]
        hint = (
            f" (or, if the run is sampled on another grid, check time_unit, declared "
            f"{spec.time_unit!r}, and epoch_hours, {spec.epoch_hours:g})"
            if str(e["reason"]).startswith("not at a decision epoch")
            else ""
        )
        raise HarvestDataError(
            f"{where}: the latest measurement (row {int(e['row'])}) was left out: {e['reason']}; "
            "decisions are taken at the latest complete measurement at a decision epoch, so "
            f"complete or remove that row{hint}"
        )
    t = int(last["epoch"])
    used, own, start = growth_window(hist.growth, cur.growth, t, spec.growth_window)
    scope = f" from {_time_text(start * spec.epoch_hours, spec)} on" if start else ""
    prior = _knowledge(used, hist, scope=scope)
    knowledge = prior
    for phi, psi in own[["phi", "psi"]].itertuples(index=False):
        knowledge = knowledge.update(float(phi), float(psi))
    _warn_if_slowing(used, own, prior, run, spec)
    p_ref, i_ref = float(cur.table["protein"].iloc[0]), float(cur.table["impurity"].iloc[0])
    params = _economics(spec, p_ref, i_ref, where)
    if last["time_h"] > spec.horizon_hours + spec.epoch_hours:
        raise HarvestDataError(
            f"{where}: run {run!r} was measured at {last['time_h']:g} h, past the horizon "
            f"({spec.horizon_hours:g} h, where harvest is forced) by more than one epoch: the "
            f"batch should have been harvested already, or the time unit is wrong (the spec "
            f"declares time_unit = {spec.time_unit!r})"
        )
    p, i = float(last["protein"]) / p_ref, float(last["impurity"]) / i_ref
    if i > params.i_bar:
        raise HarvestDataError(
            f"{where}: run {run!r} at {last['time_h']:g} h has impurity {last['impurity']:g} "
            f"{spec.impurity_unit}, above the limit {params.i_bar * i_ref:g}: by the model's "
            "rule the batch has failed, so there is no harvest decision to make"
        )
    reward = float(params.reward(p, i))
    # the next epoch's impurity growth: its own law where each epoch has one
    laws = (
        epoch_knowledge(hist.growth, knowledge, t, params.T - 1)
        if spec.growth_window == "epochs" and t < params.T
        else {}
    )
    nxt = laws[t] if laws else knowledge
    p_fail = float(nxt.impurity.predictive().sf(math.log(params.i_bar / i)))
    forced = None
    if t >= params.T:
        forced = f"the batch reached the stationary phase at {spec.horizon_hours:g} h"
    elif p >= params.p_bar:
        forced = f"protein reached the cap of {params.p_bar * p_ref:.4g} {spec.protein_unit}"
    q = q_se = float("nan")
    q_range = (float("nan"), float("nan"))

    def rlmr(draws: int) -> tuple[float, float, tuple[float, float]]:
        """RL-MR's value of continuing from ``draws`` Thompson draws of the growth laws."""
        if laws:  # a growth law per epoch ahead
            rng = np.random.default_rng(seed)
            return _value_summary(_epoch_continuation(params, laws, t, p, i, rng, draws))
        pol = RLMR(params, n_draws=draws, random_seed=seed)
        return _value_summary(pol.continuation_draws(t, knowledge, p, i))

    used_draws = 0
    if forced is not None:
        action = HARVEST
    elif policy == "RL-MR":
        used_draws = n_draws
        q, q_se, q_range = rlmr(used_draws)
        # too close to call at this precision: more draws (same seed), up to 8x those asked
        while abs(reward - q) < 2.0 * q_se and used_draws < _MAX_DRAWS_FACTOR * n_draws:
            used_draws = min(2 * used_draws, _MAX_DRAWS_FACTOR * n_draws)
            q, q_se, q_range = rlmr(used_draws)
        action = HARVEST if reward >= q else 0
    elif laws and policy == "plug-in":  # a growth law per epoch ahead
        q, q_se, q_range = _value_summary(_epoch_continuation(params, laws, t, p, i, None, 1))
        action = HARVEST if reward >= q else 0
    elif policy == "CP":
        cp = make_policy(policy, params, knowledge=prior)
        action = cp.decide(HarvestState(t, p, i, knowledge))
    else:
        pol = make_policy(policy, params, knowledge=prior)
        q = float(pol.continuation_function(t, knowledge)(np.asarray(p), np.asarray(i)))
        action = HARVEST if reward >= q else 0
    result = HarvestDecision(
        decision="harvest now" if action == HARVEST else "continue",
        policy=policy,
        run_id=run,
        time_h=float(last["time_h"]),
        epoch=t,
        protein=float(last["protein"]),
        impurity=float(last["impurity"]),
        reward_harvest=reward,
        reward_continue=q,
        p_fail_next=p_fail,
        forced=forced,
        knowledge_prior=prior,
        knowledge=knowledge,
        params=params,
        protein_reference=p_ref,
        impurity_reference=i_ref,
        n_history_runs=int(used["run_id"].nunique()),
        n_history_points=len(used),
        n_current_points=len(own),
        growth_from_h=start * spec.epoch_hours,
        reward_continue_se=q_se,
        reward_continue_range=q_range,
        excluded=_stack(hist.excluded, cur.excluded),
        spec=spec,
        random_seed=seed,
        n_draws=used_draws,
    )
    _log.info("%s: %s (harvest %.4g, continue %.4g)", run, result.decision, reward, q)
    return result
