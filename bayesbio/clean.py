"""Audited cleaning of a batch table: every change is a row in the returned audit log.

:func:`clean` takes a raw batch table and a :class:`~bayesbio.space.ProcessSpace` (default:
the demo process) and returns a :class:`CleanResult` holding the cleaned table, a log with one
row per action, a per-column summary and warnings. The input is never changed. The steps, in
order:

0. **Column names and declared units**: the space's ``[columns]`` declarations and names that
   differ only in case or spaces (``Scale``, ``Batch ID``) are mapped onto the space, and
   columns declared in another unit (``min`` for a factor in ``s``) are converted; each
   rename or conversion is a log row with ``row`` missing.
1. **Text in numeric columns**: numbers stored as text (``"7.1"``) are read; a number with a
   unit convertible to the declared one (``"37 C"``, ``"310 K"``, ``"5 min"``, ``"3.1 mg/L"``
   for dissolved oxygen in % air saturation) is converted; missing-value markers (``"n/a"``,
   ``""``) become missing. Anything else raises :class:`~bayesbio.schema.SchemaError` naming
   the column, rows and examples.
2. **Group labels** are normalised (case, surrounding space, separators, a leading column name:
   ``" a"``, ``"Site-A"``, ``"site a"`` -> ``"A"``; ``"2000 L"`` -> ``"2000L"``) to the most
   common spelling of each label in the table, one log row per changed row saying which
   spelling became which. Rows without a group label or batch id are dropped.
3. **Unit slips** are repaired only where the slip is unambiguous against the *declared* unit
   and the converted value is plausible (inside the operating range widened by half its width):
   for a factor in a temperature unit, values that read as kelvin, Fahrenheit or Celsius
   instead; for a factor in % air saturation, values below the operating range that land
   inside it once read as mg/L (converted with :data:`DO_MG_PER_L_AT_SATURATION`). Values of
   a factor in a time unit that would fit the operating range in another time unit (minutes
   in a column declared in ``s``) are *flagged*, never changed. A value no unit explains is
   left to step 4. **A whole column in another unit** (its median outside the operating range,
   or the response's typical range, but inside it once read in another unit of the same
   dimension: degF or K for degC, min for s, mg/L or kg/L for g/L, mg/L for % air
   saturation) is never repaired or converted: :attr:`CleanResult.warnings` names the column,
   the likely unit and the ``[columns]`` line that declares it, and its values are kept as
   recorded (those outside the limits are then dropped as impossible, each logged).
4. **Impossible values** (infinite, or outside the space's limits after repair) drop the row;
   so does a response of 0 or below (a batch with no product: the yield model works on
   logarithms). Batches a status or comment column marks as failed are named, not dropped.
5. **Duplicates**: exact copies, then later rows reusing a batch id, then rows whose factors,
   response and group labels agree within a tolerance under another id, are dropped; the
   first occurrence is kept.
6. **Missing values** drop the row or are imputed (column or group median), by policy. A
   missing response is never imputed: the row is dropped.
7. **Outliers** in the response: a robust z-score of log-response residuals after group
   medians and a Huber-weighted polynomial fit on the factors (squares from 6 rows per
   coefficient, cubes and interactions from 10), so the legitimate spread of a design is
   explained, not flagged. Small groups share a pooled MAD scale. Flagged by default, dropped
   by policy.

Row accounting always holds: ``len(table) == len(result.table) + (log.action == "dropped").sum()``
and each dropped input row has exactly one ``dropped`` log row. When more than 5 % of a
column's rows are dropped, repaired or flagged as a unit slip, :attr:`CleanResult.warnings`
says so and asks whether the declared unit is right.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesbio import schema
from bayesbio.io import NA_MARKERS
from bayesbio.space import (
    _DECIMAL_COMMA,
    _VOLUME_LABEL,
    FAILED_WORDS,
    STATUS_COLUMN,
    Factor,
    ProcessSpace,
    SpaceError,
    _parse_unit,
    _volume_labels,
    conversion_digits,
    convert_units,
    resolve_space,
    unit_suffix,
    volume_first,
)

__all__ = [
    "DO_MG_PER_L_AT_SATURATION",
    "LOG_COLUMNS",
    "POLICIES",
    "SUMMARY_COLUMNS",
    "WARN_SHARE",
    "CleanPolicy",
    "CleanResult",
    "clean",
]

_log = logging.getLogger(__name__)


#: Dissolved oxygen in mg/L at 100 % air saturation (culture conditions, the simulator's
#: value), used to repair DO recorded in mg/L: ``% air sat. = mg/L / 6.7 * 100``.
DO_MG_PER_L_AT_SATURATION: float = 6.7

#: Columns of the audit log.
LOG_COLUMNS: tuple[str, ...] = (
    "batch_id",
    "row",
    "column",
    "action",
    "reason",
    "old_value",
    "new_value",
    "kind",
)

#: Columns of :attr:`CleanResult.column_summary`.
SUMMARY_COLUMNS: tuple[str, ...] = (
    "column",
    "rows",
    "dropped",
    "repaired",
    "parsed",
    "flagged",
    "imputed",
    "share",
)

#: A column whose share of dropped, repaired or unit-flagged rows exceeds this gets a warning.
WARN_SHARE: float = 0.05

_MISSING_CHOICES = ("drop", "impute_median", "impute_group_median")
_OUTLIER_CHOICES = ("flag", "drop")
#: A unit-slip repair is accepted only if it lands in the operating range widened by this
#: fraction of its width on each side; otherwise the value stays and is judged impossible.
_PLAUSIBLE_PAD = 0.5
_SEPARATORS = re.compile(r"[\s\-_./]+")
_NUMBER_UNIT = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")
#: Spellings in text values that pint reads otherwise ("c" is the speed of light to pint).
_TEXT_UNIT_ALIASES = {
    "c": "degC",
    "k": "K",
    "kelvin": "K",
    "f": "degF",
    "sec": "s",
    "secs": "s",
    "seconds": "s",
    "mins": "min",
    "minutes": "min",
    "hrs": "h",
    "hours": "h",
}
#: Text units read as % air saturation in a column declared in % air saturation.
_PERCENT_SPELLINGS = frozenset(
    {"%", "percent", "% air sat", "% air sat.", "% air saturation", "%as", "% as", "% sat"}
)
#: Units a slip may come from, by the declared unit's dimension, with their names in reasons.
_SLIP_UNITS: dict[str, dict[str, str]] = {
    "[temperature]": {"K": "kelvin", "degF": "Fahrenheit", "degC": "Celsius"},
    "[time]": {"s": "seconds", "min": "minutes", "h": "hours"},
}
#: Units a whole column may have been recorded in, by the declared unit's dimension (checked
#: against the operating range or the response's typical range; see :func:`_column_units`).
_COLUMN_UNITS: dict[str, tuple[str, ...]] = {
    "[temperature]": ("degC", "degF", "K"),
    "[time]": ("s", "min", "h"),
    "[mass] / [length] ** 3": ("g/L", "mg/L", "kg/L"),
}
#: Two records of one batch id whose responses differ by more than this share conflict
#: (a warning; smaller differences, a re-entry with rounding, are only logged).
_CONFLICT_SHARE = 0.05
#: Titers (g/L) any culture plausibly gives: the reference range of a response in a mass
#: concentration unit declared without a typical range or an upper limit.
_PLAUSIBLE_TITER = (0.001, 200.0)
#: Largest dissolved oxygen in mg/L that a culture plausibly shows (about 180 % air sat.).
_DO_MG_PER_L_MAX = 12.0
#: Reason wording of the classic temperature repairs into degC (kept for continuity).
_DEGC_FORMULA = {"K": "T - 273.15", "degF": "(T - 32) / 1.8"}
#: Kinds of repair that do not count towards a column's share: reading "7.1" as 7.1, or "n/a"
#: as missing, changes no value (the drop that follows a missing value does count).
_PARSE_ONLY = frozenset({"text", "text_missing"})


@dataclass(frozen=True)
class CleanPolicy:
    """What :func:`clean` does with each kind of defect.

    Parameters
    ----------
    missing : {"drop", "impute_median", "impute_group_median"}, default "drop"
        Missing factor values drop the row, or are imputed with the column median or the
        median within the row's group (falling back to the column median for groups with no
        observed value). A missing response always drops the row.
    outliers : {"flag", "drop"}, default "flag"
        Response outliers are logged as ``flagged`` (and kept) or dropped.
    outlier_threshold : float, default 5.0
        Robust z-score (residual / (1.4826 MAD)) above which a response is an outlier.
    outlier_min_group : int, default 10
        Groups with fewer rows use the pooled residual scale instead of their own.
    near_duplicate_tol : float, default 1e-4
        Tolerance for near duplicates under different batch ids, as a fraction of each
        column's operating-range width (the response's typical range, or its observed range
        when the space declares none); group labels must match. Tables without a response
        skip this check: equal setpoints are replicates there. 0 disables it.
    unit_repair : bool, default True
        Repair unit slips that are unambiguous against the declared unit (temperatures in
        kelvin or Fahrenheit, dissolved oxygen in mg/L). When False, such values are dropped as
        impossible (if outside the limits). Time values that look like another time unit are
        flagged either way.
    normalize_labels : bool, default True
        Normalise group-label spellings.
    groups : tuple of str, optional
        Group columns for label normalisation, missing-label checks, group-median imputation
        and outlier centres and scales. Default: the space's group columns present in the
        table. The innermost of the space's groups (``campaign`` in the default space) is left
        out of the outlier groups unless it is the only one: its groups are many and small.
    """

    missing: str = "drop"
    outliers: str = "flag"
    outlier_threshold: float = 5.0
    outlier_min_group: int = 10
    near_duplicate_tol: float = 1e-4
    unit_repair: bool = True
    normalize_labels: bool = True
    groups: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.missing not in _MISSING_CHOICES:
            raise ValueError(f"policy missing={self.missing!r}; expected one of {_MISSING_CHOICES}")
        if self.outliers not in _OUTLIER_CHOICES:
            raise ValueError(
                f"policy outliers={self.outliers!r}; expected one of {_OUTLIER_CHOICES}"
            )
        if not np.isfinite(self.outlier_threshold) or self.outlier_threshold <= 0:
            raise ValueError(
                f"policy outlier_threshold={self.outlier_threshold!r}; expected a positive number"
            )
        if int(self.outlier_min_group) < 3:
            raise ValueError(
                f"policy outlier_min_group={self.outlier_min_group!r}; expected an integer >= 3"
            )
        if not np.isfinite(self.near_duplicate_tol) or self.near_duplicate_tol < 0:
            raise ValueError(
                f"policy near_duplicate_tol={self.near_duplicate_tol!r}; expected a number >= 0"
            )
        if self.groups is not None:
            if isinstance(self.groups, str):
                object.__setattr__(self, "groups", (self.groups,))
            else:
                object.__setattr__(self, "groups", tuple(self.groups))


#: Named policies accepted by :func:`clean`.
POLICIES: dict[str, CleanPolicy] = {
    "default": CleanPolicy(),
    "strict": CleanPolicy(outliers="drop"),
    "impute": CleanPolicy(missing="impute_group_median"),
    "impute_median": CleanPolicy(missing="impute_median"),
}


def _empty_summary() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype=object if c == "column" else float) for c in SUMMARY_COLUMNS}
    )


@dataclass(frozen=True, eq=False)
class CleanResult:
    """Result of :func:`clean`; unpacks as ``table, log = clean(raw)``.

    Attributes
    ----------
    table : pandas.DataFrame
        The cleaned table (the space's column names, input index labels of the kept rows).
    log : pandas.DataFrame
        One row per action, columns :data:`LOG_COLUMNS`. ``row`` (nullable ``Int64``) is the
        position in the input table, missing for actions on a whole column (``renamed``,
        ``converted``); ``column`` is None for actions on a whole row (duplicates). ``kind``
        names the check that acted, for filtering: ``column`` (a whole column renamed or
        converted), ``missing``, ``missing_id``, ``missing_label``, ``duplicate``,
        ``impossible``, ``no_product``, ``outlier``, ``unit`` (a unit slip repaired),
        ``unit_suspect``, ``label``, ``label_typo``, ``imputed``, ``text`` / ``text_unit`` /
        ``text_missing`` (text read as a number, a number with a unit, a missing value).
    warnings : list of str
        First one per column that looks recorded in another unit as a whole (naming the
        column, the likely unit and the ``[columns]`` line that declares it; its values are
        never converted), then one per column with more than :data:`WARN_SHARE` of its rows,
        and at least two, dropped, repaired or flagged as a unit slip, naming the column, the
        share and what to check (a single row is in the log, not a pattern to warn about).
    column_summary : pandas.DataFrame
        One row per column (factors, response, groups, batch id, and ``(whole row)`` for
        duplicates): ``column``, ``rows`` (input rows), ``dropped``, ``repaired`` (a value
        changed: unit converted, label merged, ...), ``parsed`` (text read as the number it
        says, e.g. ``"29,5"``, ``"250 rpm"``: value kept), ``flagged``, ``imputed`` (rows with
        such a log entry for the column) and ``share`` (fraction of rows dropped, imputed,
        repaired, or flagged as a unit slip).
    space : ProcessSpace
        The process space the table was cleaned against.
    """

    table: pd.DataFrame
    log: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    column_summary: pd.DataFrame = field(default_factory=_empty_summary)
    space: ProcessSpace = field(default_factory=ProcessSpace.default)

    def __iter__(self) -> Iterator[pd.DataFrame]:
        """Yield ``table`` and ``log`` (so ``table, log = clean(raw)`` works)."""
        return iter((self.table, self.log))

    def __len__(self) -> int:
        """Return 2: a result unpacks as ``(table, log)``."""
        return 2

    def __getitem__(self, index: int) -> pd.DataFrame:
        """Return ``(table, log)[index]``."""
        return (self.table, self.log)[index]


def _resolve_policy(policy: CleanPolicy | Mapping[str, Any] | str | None) -> CleanPolicy:
    if policy is None:
        return POLICIES["default"]
    if isinstance(policy, CleanPolicy):
        return policy
    if isinstance(policy, str):
        if policy not in POLICIES:
            raise ValueError(f"unknown policy name {policy!r}; expected one of {sorted(POLICIES)}")
        return POLICIES[policy]
    if isinstance(policy, Mapping):
        known = {f.name for f in dataclasses.fields(CleanPolicy)}
        unknown = sorted(str(k) for k in policy if k not in known)
        if unknown:
            raise ValueError(f"unknown policy key(s) {unknown}; expected some of {sorted(known)}")
        return CleanPolicy(**policy)
    raise TypeError(
        f"policy must be a CleanPolicy, a dict or one of {sorted(POLICIES)}, "
        f"got {type(policy).__name__}"
    )


class _Log:
    """Collects audit rows as vectorised chunks (plus whole-column actions)."""

    def __init__(self, batch_ids: np.ndarray | None, n: int) -> None:
        self.batch_ids = batch_ids if batch_ids is not None else np.full(n, None, dtype=object)
        self.chunks: list[dict[str, Any]] = []
        self.columns: list[dict[str, Any]] = []
        self.order = 0

    def add_column_action(self, entry: Mapping[str, Any]) -> None:
        """Record a rename or unit conversion of a whole column (no row)."""
        self.columns.append(
            {
                "batch_id": None,
                "row": pd.NA,
                "column": entry["column"],
                "action": entry["action"],
                "reason": entry["reason"],
                "old_value": entry.get("old"),
                "new_value": entry.get("new"),
                "kind": "column",
            }
        )

    def add(
        self,
        rows: np.ndarray,
        column: str | None,
        action: str,
        reason: str | np.ndarray,
        old: Any = None,
        new: Any = None,
        *,
        kind: str,
    ) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        k = len(rows)
        if k == 0:
            return

        def arr(v: Any) -> np.ndarray:
            if isinstance(v, np.ndarray | pd.Series | list):
                out = np.empty(k, dtype=object)
                out[:] = list(v)
                return out
            return np.full(k, v, dtype=object)

        self.chunks.append(
            {
                "row": rows,
                "column": np.full(k, column, dtype=object),
                "action": np.full(k, action, dtype=object),
                "reason": arr(reason),
                "old_value": arr(old),
                "new_value": arr(new),
                "kind": np.full(k, kind, dtype=object),
                "_order": np.full(k, self.order),
            }
        )
        self.order += 1

    def entries(self) -> pd.DataFrame:
        """Row-level entries as ``row, column, action, kind`` (for the column summary)."""
        if not self.chunks:
            return pd.DataFrame({"row": [], "column": [], "action": [], "kind": []})
        return pd.DataFrame(
            {
                "row": np.concatenate([ch["row"] for ch in self.chunks]),
                "column": np.concatenate([ch["column"] for ch in self.chunks]),
                "action": np.concatenate([ch["action"] for ch in self.chunks]),
                "kind": np.concatenate([ch["kind"] for ch in self.chunks]),
            }
        )

    def frame(self) -> pd.DataFrame:
        if self.chunks:
            cols = {c: np.concatenate([ch[c] for ch in self.chunks]) for c in self.chunks[0]}
            order = np.lexsort((cols["_order"], cols["row"]))
            data = {c: v[order] for c, v in cols.items() if not c.startswith("_")}
            data["batch_id"] = self.batch_ids[data["row"]]
            rows = pd.DataFrame({c: data[c] for c in LOG_COLUMNS})
        else:
            rows = pd.DataFrame({c: pd.Series(dtype=object) for c in LOG_COLUMNS})
        rows["row"] = pd.array(rows["row"].to_numpy(dtype=np.int64), dtype="Int64")
        if not self.columns:
            return rows
        head = pd.DataFrame(self.columns, columns=list(LOG_COLUMNS)).astype(object)
        head["row"] = pd.array([pd.NA] * len(head), dtype="Int64")
        return pd.concat([head, rows], ignore_index=True) if len(rows) else head


class _State:
    """Mutable working state of one clean() call (never the caller's objects)."""

    def __init__(self, df: pd.DataFrame, log: _Log, space: ProcessSpace) -> None:
        self.df = df
        self.n = len(df)
        self.alive = np.ones(self.n, dtype=bool)
        self.log = log
        self.space = space
        self.warnings: list[str] = []

    def drop(
        self,
        mask: np.ndarray,
        column: str | None,
        reason: str | np.ndarray,
        old: Any = None,
        *,
        kind: str,
    ) -> None:
        """Drop rows in ``mask`` that are still alive; one log row each."""
        mask = np.asarray(mask, dtype=bool)
        new = mask & self.alive
        if not new.any():
            return
        rows = np.flatnonzero(new)
        if isinstance(reason, np.ndarray):
            reason = reason[new]
        if isinstance(old, np.ndarray):
            old = old[new]
        self.log.add(rows, column, "dropped", reason, old, None, kind=kind)
        self.alive &= ~new


# ----------------------------------------------------------------------------- units
def _dimension(unit: str, where: str) -> str:
    return str(_parse_unit(unit, where).dimensionality)


def _is_air_saturation(unit: str) -> bool:
    return _parse_unit(unit, "unit") == _parse_unit("% air sat.", "unit")


@cache
def _text_converter(text_unit: str, declared: str) -> Callable[[float], float] | None:
    """Return a converter from a unit written in a cell to the declared unit (None: not one)."""
    u = text_unit.strip().lower()
    if not u:
        return lambda v: v
    if _is_air_saturation(declared):
        to_declared = _unit_converter("% air sat.", declared)
        if u in _PERCENT_SPELLINGS:
            return to_declared
        if u == "mg/l":
            return lambda v: to_declared(v / DO_MG_PER_L_AT_SATURATION * 100.0)
    for name in (_TEXT_UNIT_ALIASES.get(u), text_unit.strip(), u):
        if not name:
            continue
        try:
            src = _parse_unit(name, "text")
        except SpaceError:
            continue
        try:
            return _unit_converter(str(src), declared)
        except SpaceError:
            return None
    return None


@cache
def _unit_converter(src: str, dst: str) -> Callable[[float], float]:
    """Scalar converter between two units (SpaceError if their dimensions differ)."""
    convert_units([1.0], src, dst)  # raises for incompatible units
    classic = _classic(src, dst)
    if classic is not None:
        return lambda v: float(classic(v))
    return lambda v: float(convert_units([v], src, dst)[0])


#: The classic conversions into degC, written out (pint's offset arithmetic differs in the
#: last digit), to the 12 significant digits of every conversion.
_INTO_DEGC: dict[str, Callable[[Any], Any]] = {
    "kelvin": lambda v: conversion_digits(v - 273.15),
    "degree_Fahrenheit": lambda v: conversion_digits((v - 32.0) / 1.8),
}


def _classic(src: str, dst: str) -> Callable[[Any], Any] | None:
    if str(_parse_unit(dst, "unit")) != "degree_Celsius":
        return None
    return _INTO_DEGC.get(str(_parse_unit(src, "unit")))


def _convert(values: np.ndarray, src: str, dst: str) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        classic = _classic(src, dst)
        if classic is not None:
            return classic(np.asarray(values, dtype=np.float64))
        return convert_units(values, src, dst)


# ----------------------------------------------------------------------------- text to numbers
def _coerce_numeric(state: _State, col: str) -> str | None:
    """Make ``col`` float64, logging every text value that was read or converted.

    Returns None, or (changing nothing) the sentence naming the cells that could not be read,
    so that the caller reports every column at once.
    """
    df = state.df
    s = df[col]
    declared = state.space.units[col]
    words = schema.unit_text(state.space, col)
    kind = schema.non_number_kind(s)
    if kind:
        raise schema.SchemaError(
            f"column '{col}': {kind} values (dtype {s.dtype}); expected real numbers in {words}"
        )
    if pd.api.types.is_numeric_dtype(s):
        df[col] = s.astype("float64")
        return
    values = s.to_numpy(dtype=object)
    num = pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    is_text = np.fromiter((isinstance(v, str) for v in values), bool, len(values))
    # a number stored as text ("7.05") is read as it is: nothing changes, nothing to log
    text_rows = np.flatnonzero(is_text & ~np.isfinite(num))
    out = num.copy()
    bad: list[int] = []
    reasons: list[str] = []
    kinds: list[str] = []
    new_vals: list[float] = []
    for r in text_rows:
        raw = values[r]
        t = raw.strip()
        if t.lower() in NA_MARKERS:
            out[r] = np.nan
            reasons.append(f"text {raw!r} read as a missing value")
            kinds.append("text_missing")
            new_vals.append(np.nan)
            continue
        if _DECIMAL_COMMA.match(t):
            out[r] = x = float(t.replace(",", "."))
            reasons.append(f"text {raw!r} read as {x:g} (decimal comma)")
            kinds.append("text")
            new_vals.append(x)
            continue
        m = _NUMBER_UNIT.match(t)
        u = m.group(2).strip() if m else ""
        convert = _text_converter(u, declared) if m else None
        if convert is None:
            bad.append(int(r))
            continue
        x = float(m.group(1))
        if u:
            out[r] = convert(x)
            reasons.append(f"text {raw!r} read as {x:g} {u.lower()} and converted to {declared}")
            kinds.append("text_unit")
        else:
            out[r] = x
            reasons.append(f"text {raw!r} read as a number")
            kinds.append("text")
        new_vals.append(out[r])
    if bad:
        examples = sorted({str(values[r]) for r in bad})[:3]
        mask = np.zeros(len(values), dtype=bool)
        mask[bad] = True
        where = schema._ids(df, mask, state.space.batch_id)
        return (
            f"column '{col}': {len(bad)} value(s) that are not numbers in {words} ({where}; "
            f"table rows {bad[:5]}, counted from 0 after the header; e.g. {examples})"
        )
    kinds_arr = np.array(kinds, dtype=object)
    for kind_name in ("text_missing", "text_unit", "text"):
        pick = kinds_arr == kind_name
        if not pick.any():
            continue
        rows = text_rows[pick]
        state.log.add(
            rows,
            col,
            "repaired",
            np.array(reasons, dtype=object)[pick],
            values[rows],
            np.array(new_vals, dtype=object)[pick],
            kind=kind_name,
        )
    # other objects (e.g. Decimal) that to_numeric could not read
    other = np.isnan(out) & ~is_text & pd.notna(s).to_numpy()
    if other.any():
        rows = np.flatnonzero(other)
        raise schema.SchemaError(
            f"column '{col}': {len(rows)} value(s) that are not numbers (rows {rows[:5].tolist()};"
            f" e.g. {[repr(values[r]) for r in rows[:3]]}); expected numbers in {words}"
        )
    df[col] = out


# ----------------------------------------------------------------------------- group labels
#: the volume units pint reads under another spelling (cubic metres)
_CUBIC_METRE = {"m3", "m^3", "cbm"}


def _label_key(label: str, column: str) -> str:
    volume = _VOLUME_LABEL.match(label)
    if volume:  # one vessel size however it is written: "3 m3" is "3000 L"
        unit = volume.group(2).lower()
        value = float(volume.group(1).replace(",", "."))
        litres = float(convert_units([value], "m**3" if unit in _CUBIC_METRE else unit, "L")[0])
        return f"volume:{litres:.6g}"
    key = label.strip().lower()
    col = column.lower()
    if key.startswith(col) and len(key) > len(col):
        rest = key[len(col) :]
        if _SEPARATORS.match(rest) or rest[0].isdigit() or len(rest) <= 2:
            key = rest
    return _SEPARATORS.sub("", key)


def _normalize_group(state: _State, col: str, normalize: bool) -> None:
    df = state.df
    s = df[col]
    values = s.to_numpy(dtype=object)
    if len(values) == 0:
        return
    # work on the distinct labels only: a million rows hold a handful of spellings
    raw_codes, raw_uniques = pd.factorize(values, use_na_sentinel=True)
    missing = raw_codes < 0
    uniques_text = np.array([str(u) for u in raw_uniques], dtype=object)
    codes, uniques = pd.factorize(uniques_text)
    codes = np.where(missing, len(uniques), codes[np.maximum(raw_codes, 0)])
    uniques = np.append(uniques.astype(object), "")
    text = uniques[codes]
    blank = np.array([u.strip() == "" for u in uniques])[codes] & ~missing
    missing = missing | blank
    state.drop(
        missing,
        col,
        f"missing group label in '{col}'",
        np.where(missing, values, None),
        kind="missing_label",
    )
    if not normalize:
        df[col] = np.where(missing, None, text)
        return
    counts = np.bincount(codes[state.alive], minlength=len(uniques))
    keys = [_label_key(u, col) for u in uniques]
    best: dict[str, tuple[int, int, str]] = {}
    for u, k, cnt in zip(uniques, keys, counts, strict=True):
        stripped = u.strip()
        # most common spelling wins; ties go to the one without surrounding space, then first
        score = (int(cnt), int(stripped == u))
        if k and (k not in best or score > best[k][0:2]):
            best[k] = (*score, stripped)
    canon = np.array(
        [best[k][2] if k in best else u for u, k in zip(uniques, keys, strict=True)], dtype=object
    )
    why = np.array(
        [
            f"group label normalised: {u!r} -> {c!r}"
            + (" (the same volume)" if k.startswith("volume:") else "")
            for u, c, k in zip(uniques, canon, keys, strict=True)
        ],
        dtype=object,
    )
    new = canon[codes]
    changed = (new != text) & state.alive
    rows = np.flatnonzero(changed)
    state.log.add(rows, col, "repaired", why[codes[rows]], values[rows], new[rows], kind="label")
    df[col] = np.where(missing, None, new)
    _flag_label_typos(state, col, new, missing)


#: A label seen in at most this many rows, close in spelling to one at least
#: :data:`_TYPO_RATIO` times as common (and in at least 5 rows), is flagged as a likely typo.
_TYPO_MAX_ROWS = 2
_TYPO_RATIO = 5
_TYPO_SIMILARITY = 0.75


def _typo_of(label: str, common: str) -> bool:
    """Whether ``label`` reads as a misspelling of ``common`` (numbers must agree)."""
    if re.findall(r"\d+", label) != re.findall(r"\d+", common):
        return False  # CMP01 / CMP02, 2L / 20L are different groups, not typos
    a, b = label.strip().lower(), common.strip().lower()
    if a == b or min(len(a), len(b)) < 3:
        return False
    return difflib.SequenceMatcher(None, a, b).ratio() >= _TYPO_SIMILARITY


def _flag_label_typos(state: _State, col: str, labels: np.ndarray, missing: np.ndarray) -> None:
    """Flag (never merge) rare labels that look like misspellings of a common one."""
    alive = state.alive & ~missing
    if not alive.any():
        return
    counts = pd.Series(labels[alive]).value_counts()
    common = [(str(k), int(c)) for k, c in counts.items() if c >= 5]
    for label, c in counts.items():
        if c > _TYPO_MAX_ROWS:
            continue
        near = [(m, cm) for m, cm in common if cm >= _TYPO_RATIO * c and _typo_of(str(label), m)]
        if not near:
            continue
        m, cm = near[0]
        rows = np.flatnonzero(alive & (labels == label))
        reason = (
            f"label {label!r} in '{col}' looks like a typo of {m!r} ({cm} rows); kept as its own "
            "group"
        )
        state.log.add(rows, col, "flagged", reason, labels[rows], labels[rows], kind="label_typo")
        state.warnings.append(
            f"{col}: label {label!r} ({c} row(s): {rows[:5].tolist()}) looks like a typo of "
            f"{m!r} ({cm} rows); it was kept as a group of its own. Correct it in the file if "
            "it is the same group."
        )


# ----------------------------------------------------------------------------- unit slips
def _plausible(factor: Factor) -> tuple[float, float]:
    lo, hi = factor.operating
    pad = _PLAUSIBLE_PAD * (hi - lo)
    return lo - pad, hi + pad


def _inside(values: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (values >= bounds[0]) & (values <= bounds[1])


def _repair_units(state: _State, repair: bool, skip: Sequence[str] = ()) -> None:
    """Repair unambiguous unit slips against each factor's declared unit; flag suspect times.

    Columns in ``skip`` (a whole column that looks recorded in another unit) are left alone:
    a whole column is never converted on a guess.
    """
    df = state.df
    for factor in state.space.factors:
        col = factor.name
        if col not in df.columns or col in skip:
            continue
        dim = _dimension(factor.unit, f"factor {col!r}")
        v = df[col].to_numpy(dtype=np.float64, copy=True)
        if dim == "[temperature]" and repair:
            df[col] = _repair_from(state, factor, v)
        elif dim == "[oxygen_saturation]" and repair and _is_air_saturation(factor.unit):
            df[col] = _repair_do(state, factor, v)
        elif dim == "[time]":
            _flag_time(state, factor, v)


def _slip_candidates(factor: Factor, dim: str) -> dict[str, str]:
    return {
        u: name
        for u, name in _SLIP_UNITS[dim].items()
        if _parse_unit(u, "unit") != _parse_unit(factor.unit, f"factor {factor.name!r}")
    }


def _repair_from(state: _State, factor: Factor, v: np.ndarray) -> np.ndarray:
    """Temperatures that read as another temperature unit; only one candidate may fit."""
    col, unit = factor.name, factor.unit
    plausible = _plausible(factor)
    candidates = _slip_candidates(factor, "[temperature]")
    fits = {}
    for src in candidates:
        conv = _convert(v, src, unit)
        fits[src] = (conv, state.alive & ~_inside(v, plausible) & _inside(conv, plausible))
    n_fit = np.sum([f for _, f in fits.values()], axis=0) if fits else np.zeros(len(v))
    new = v.copy()
    for src, (conv, fit) in fits.items():
        fit = fit & (n_fit == 1)  # ambiguous slips are left to the limits check
        name = candidates[src]
        if _parse_unit(unit, "unit") == _parse_unit("degC", "unit") and src in _DEGC_FORMULA:
            reason = f"unit slip: {name} converted to degC ({_DEGC_FORMULA[src]})"
        else:
            reason = f"unit slip: {name} converted to {unit}"
        state.log.add(np.flatnonzero(fit), col, "repaired", reason, v[fit], conv[fit], kind="unit")
        new[fit] = conv[fit]
    return new


def _repair_do(state: _State, factor: Factor, v: np.ndarray) -> np.ndarray:
    """Dissolved oxygen in % air saturation that was recorded in mg/L."""
    col = factor.name
    lo = factor.operating[0]
    converted = _convert(v * (100.0 / DO_MG_PER_L_AT_SATURATION), "% air sat.", factor.unit)
    # below the operating range as % air sat., but inside it once read as mg/L: the
    # condition is closed under the repair (a repaired value is >= lo), so cleaning twice
    # never converts twice
    with np.errstate(invalid="ignore"):
        m = (v < lo) & (converted >= lo) & (converted <= _plausible(factor)[1])
    m &= state.alive
    state.log.add(
        np.flatnonzero(m),
        col,
        "repaired",
        f"unit slip: mg/L converted to % air sat. (x 100 / {DO_MG_PER_L_AT_SATURATION:g})",
        v[m],
        converted[m],
        kind="unit",
    )
    new = v.copy()
    new[m] = converted[m]
    return new


def _flag_time(state: _State, factor: Factor, v: np.ndarray) -> None:
    """Flag (never change) times outside the operating range that fit it in another unit."""
    col, unit = factor.name, factor.unit
    lo, hi = factor.limits
    within = state.alive & _inside(v, (lo, hi)) & ~_inside(v, factor.operating)
    if not within.any():
        return
    done = np.zeros(len(v), dtype=bool)
    for src, name in _slip_candidates(factor, "[time]").items():
        conv = _convert(v, src, unit)
        hit = within & ~done & _inside(conv, factor.operating)
        if not hit.any():
            continue
        rows = np.flatnonzero(hit)
        reasons = np.array(
            [
                f"'{col}' = {x:g} {unit} is outside the operating range but would be {c:g} "
                f"{unit} if recorded in {name}; kept as recorded: is the declared unit "
                f"'{unit}' right?"
                for x, c in zip(v[rows], conv[rows], strict=True)
            ],
            dtype=object,
        )
        state.log.add(rows, col, "flagged", reasons, v[rows], v[rows], kind="unit_suspect")
        done |= hit


def _reference_range(space: ProcessSpace, col: str) -> tuple[float, float] | None:
    """Return where a column's values normally lie (None when unbounded).

    A factor's operating range, else the response's typical range, else its limits.
    """
    if col in space.factor_names:
        return space.factor(col).operating
    typical = space.response.typical
    lo, hi = typical if typical is not None else space.response.limits
    if np.isfinite(hi):
        return (float(lo), float(hi))
    try:  # an open-ended titer: what any culture gives (mass per volume)
        lo, hi = _convert(np.array(_PLAUSIBLE_TITER), "g/L", space.response.unit)
    except SpaceError:
        return None
    return (float(lo), float(hi))


def _column_units(state: _State, numeric: Sequence[str], sources: Mapping[str, str]) -> dict:
    """Columns that look recorded in another unit as a whole: ``{column: warning}``.

    A column qualifies when the median of its values lies outside its reference range
    (:func:`_reference_range`) but inside it once read in another unit of the same dimension
    (dissolved oxygen in % air saturation: also when every value lies in a mg/L range,
    0-12, below the operating range). Nothing is converted.
    """
    found: dict[str, str] = {}
    for col in numeric:
        v = state.df[col].to_numpy(dtype=np.float64)
        v = v[state.alive & np.isfinite(v)]
        ref = _reference_range(state.space, col)
        if len(v) < 3 or ref is None:
            continue
        med = float(np.median(v))
        if _inside(np.array([med]), ref)[0]:
            continue
        declared = state.space.units[col]
        try:
            dim = _dimension(declared, f"column {col!r}")
        except SpaceError:
            continue
        likely: list[tuple[str, float]] = []
        if dim == "[oxygen_saturation]" and _is_air_saturation(declared):
            conv = float(
                _convert(
                    np.array([med * 100.0 / DO_MG_PER_L_AT_SATURATION]), "% air sat.", declared
                )[0]
            )
            below = med < ref[0] and float(v.max()) <= _DO_MG_PER_L_MAX
            if below or _inside(np.array([conv]), ref)[0]:
                likely.append(("mg/L", conv))
        for unit in _COLUMN_UNITS.get(dim, ()):
            if _parse_unit(unit, "unit") == _parse_unit(declared, "unit"):
                continue
            conv = float(_convert(np.array([med]), unit, declared)[0])
            if _inside(np.array([conv]), ref)[0]:
                likely.append((unit, conv))
        if not likely:
            continue
        unit, conv = likely[0]
        where = "operating range" if col in state.space.factor_names else "typical range"
        if col not in state.space.factor_names and state.space.response.typical is None:
            finite = np.isfinite(state.space.response.limits[1])
            where = "limits" if finite else "range of plausible titers"
        source = sources.get(col, col)
        others = f" (or {', '.join(u for u, _ in likely[1:])})" if len(likely) > 1 else ""
        found[col] = (
            f"{col}: the whole column looks recorded in {unit}{others}, not the declared "
            f"{declared}: its median {med:g} lies outside the {where} {ref[0]:g}-{ref[1]:g} "
            f"{declared} but would be {conv:g} {declared} in {unit}. Nothing was converted "
            f"(values outside the limits are dropped). If the file records it in {unit}, "
            "declare that in the "
            f'process file\'s [columns] section: "{source}" = {{ to = "{col}", unit = "{unit}" }}'
        )
    return found


def _slip_hint(x: float, window: tuple[float, float]) -> str:
    """``" (7.2 with a lost decimal point?)"`` when x / 10 or x / 100 lands in ``window``."""
    for k in (10.0, 100.0, 1000.0):
        if window[0] <= x / k <= window[1]:
            return f" ({x / k:g} with a lost decimal point? dropped, not guessed)"
    return ""


def _drop_impossible(state: _State, numeric: Sequence[str]) -> None:
    df = state.df
    for col in numeric:
        v = df[col].to_numpy()
        lo, hi = state.space.limits[col]
        unit = state.space.units[col]
        inf = np.isinf(v)
        with np.errstate(invalid="ignore"):
            out = ((v < lo) | (v > hi)) & ~inf
        state.drop(inf, col, f"impossible: infinite value in '{col}'", v, kind="impossible")
        j = list(state.space.factor_names).index(col) if col in state.space.factor_names else -1
        window = (state.space.lower[j], state.space.upper[j]) if j >= 0 else (lo, hi)
        reasons = np.array(
            [
                f"impossible: '{col}' = {x:g} outside the limits {lo:g}-{hi:g} {unit}"
                + _slip_hint(x, window)
                for x in v[out]
            ],
            dtype=object,
        )
        full = np.empty(len(v), dtype=object)
        full[out] = reasons
        state.drop(out, col, full, v, kind="impossible")


def _drop_no_product(state: _State) -> None:
    """Drop batches whose response is 0 or below (a failed batch): the yield model is on logs.

    Only for a response declared non-negative (limits from 0 up); each drop is logged.
    """
    response = state.space.response.name
    if response not in state.df.columns:
        return
    lo, _ = state.space.limits[response]
    if lo < 0:
        return
    y = pd.to_numeric(state.df[response], errors="coerce").to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        none = np.isfinite(y) & (y <= 0)
    unit = unit_suffix(state.space.units[response])
    reasons = np.empty(len(y), dtype=object)
    reasons[none] = [
        f"no product: '{response}' = {x:g}{unit} (a failed batch?); the yield model works on "
        "logarithms and needs values > 0"
        for x in y[none]
    ]
    state.drop(none, response, reasons, y, kind="no_product")


def _failed_marks(state: _State) -> Iterator[tuple[Any, np.ndarray]]:
    """Each status or comment column, with the rows (all, by position) it marks as failed."""
    space = state.space
    own = {*space.factor_names, space.response.name, space.batch_id, *space.groups}
    for col in state.df.columns:
        if col in own or not STATUS_COLUMN.search(str(col)):
            continue
        text = state.df[col]
        if pd.api.types.is_numeric_dtype(text):
            continue
        yield col, text.astype(str).str.contains(FAILED_WORDS, na=False).to_numpy()


def _marked_failed(state: _State) -> np.ndarray:
    """Rows (all of them, by position) a status or comment column marks as failed."""
    marked = np.zeros(state.n, dtype=bool)
    for _, rows in _failed_marks(state):
        marked |= rows
    return marked


def _warn_marked_failed(state: _State) -> None:
    """Warn (never drop) when kept batches are marked failed in a status or comment column.

    A contaminated or aborted batch's response says little about its setpoints; whether it
    belongs in the yield model is the scientist's call, so the batches are named.
    """
    space = state.space
    alive = np.flatnonzero(state.alive)
    for col, marks in _failed_marks(state):
        marked = marks[alive]
        if not marked.any():
            continue
        rows = alive[marked]
        words = sorted(set(state.df[col].iloc[rows].astype(str).str.strip()))[:4]
        state.warnings.append(
            f"{col}: {len(rows)} kept batch(es) marked {words} "
            f"({schema._ids(state.df, np.isin(np.arange(state.n), rows), space.batch_id)}): "
            f"their {space.response.name} is used as recorded; drop those rows before fitting "
            "if the failure says nothing about their setpoints (or fit with "
            "likelihood='mixture', which models failed batches)"
        )


# ----------------------------------------------------------------------------- duplicates
def _first_position(keys: pd.DataFrame | pd.Series, alive: np.ndarray) -> np.ndarray:
    """Position of the first alive row with the same key (-1 for dead rows)."""
    idx = np.flatnonzero(alive)
    first = np.full(len(alive), -1, dtype=np.int64)
    if len(idx) == 0:
        return first
    sub = keys.iloc[idx] if isinstance(keys, pd.DataFrame | pd.Series) else keys[idx]
    if isinstance(sub, pd.DataFrame):
        codes = sub.groupby(list(sub.columns), sort=False, dropna=False).ngroup().to_numpy()
    else:
        codes = pd.factorize(sub.to_numpy(), use_na_sentinel=False)[0]
    first_of_code = np.full(codes.max() + 1, len(alive), dtype=np.int64)
    np.minimum.at(first_of_code, codes, idx)
    first[idx] = first_of_code[codes]
    return first


def _near_width(state: _State, col: str) -> float:
    """Width that near-duplicate tolerances are a fraction of (operating or typical range)."""
    bounds = state.space.bounds.get(col)
    if bounds is not None:
        return float(bounds[1] - bounds[0])
    v = state.df[col].to_numpy()
    v = v[np.isfinite(v) & state.alive]
    width = float(v.max() - v.min()) if len(v) else 0.0
    return width if width > 0 else 1.0


def _drop_duplicates(state: _State, numeric: Sequence[str], groups: Sequence[str], tol: float):
    df = state.df
    batch_id = state.space.batch_id
    response = state.space.response.name
    pos = np.arange(state.n)
    # exact: all columns equal (after text and label repair, before imputation)
    hashed = pd.util.hash_pandas_object(df, index=False).to_numpy()
    first = _first_position(pd.Series(hashed), state.alive)
    cand = state.alive & (first >= 0) & (first != pos)
    if cand.any():
        # confirm hash matches with a real comparison
        a = df.iloc[np.flatnonzero(cand)].reset_index(drop=True)
        b = df.iloc[first[cand]].reset_index(drop=True)
        same = ((a == b) | (a.isna() & b.isna())).all(axis=1).to_numpy()
        exact = np.zeros(state.n, dtype=bool)
        exact[np.flatnonzero(cand)[same]] = True
        reasons = np.empty(state.n, dtype=object)
        reasons[exact] = [f"exact duplicate of row {r}" for r in first[exact]]
        state.drop(exact, None, reasons, kind="duplicate")
    # same batch id, different values
    if batch_id in df.columns:
        first = _first_position(df[batch_id].astype(str), state.alive)
        dup = state.alive & (first >= 0) & (first != pos)
        if dup.any():
            rows = np.flatnonzero(dup)
            a = df.iloc[rows].reset_index(drop=True)
            b = df.iloc[first[rows]].reset_index(drop=True)
            differ = ~((a == b) | (a.isna() & b.isna()))
            names = np.array(df.columns, dtype=object)
            reasons = np.empty(state.n, dtype=object)
            reasons[rows] = [
                f"duplicate {batch_id} of row {f} (differs in {', '.join(names[d]) or 'nothing'})"
                for f, d in zip(first[rows], differ.to_numpy(), strict=True)
            ]
            old = df[batch_id].to_numpy(dtype=object)
            state.drop(dup, batch_id, reasons, old, kind="duplicate")
            if response in df.columns:
                # a material conflict (not a re-entry with rounding): a warning, not only a
                # log line
                kept = pd.to_numeric(b[response], errors="coerce").to_numpy(dtype=float)
                gone = pd.to_numeric(a[response], errors="coerce").to_numpy(dtype=float)
                with np.errstate(invalid="ignore", divide="ignore"):
                    apart = np.abs(gone - kept) > _CONFLICT_SHARE * np.abs(kept)
                apart |= np.isnan(kept) != np.isnan(gone)
                clash = [
                    f"{df[batch_id].iloc[f]} ({response} {k:g} kept, {g:g} dropped)"
                    for f, k, g in zip(first[rows][apart], kept[apart], gone[apart], strict=True)
                ]
                if clash:
                    state.warnings.append(
                        f"{len(clash)} {batch_id}(s) appear twice with {response} more than "
                        f"{_CONFLICT_SHARE:.0%} apart: {', '.join(clash[:5])}; the first row "
                        "of each was kept. Check which record is right and correct the file."
                    )
    # same factors, response and groups within tolerance, another id; without a response
    # (a setpoint table) equal factors are replicates, not duplicates
    if tol > 0 and response in numeric:
        keys = {}
        for col in numeric:
            width = tol * _near_width(state, col)
            keys[col] = np.floor(df[col].to_numpy() / width + 0.5)
        for g in groups:
            keys[g] = df[g].to_numpy(dtype=object)
        frame = pd.DataFrame(keys)
        first = _first_position(frame, state.alive)
        near = state.alive & (first >= 0) & (first != pos) & df[list(numeric)].notna().all(axis=1)
        reasons = np.empty(state.n, dtype=object)
        reasons[near] = [
            f"near duplicate of row {f} (factors and response within tolerance)"
            for f in first[near]
        ]
        state.drop(near, None, reasons, kind="duplicate")


# ----------------------------------------------------------------------------- missing values
def _group_codes(df: pd.DataFrame, groups: Sequence[str]) -> np.ndarray:
    if not groups:
        return np.zeros(len(df), dtype=np.int64)
    return df.groupby(list(groups), sort=False, dropna=False).ngroup().to_numpy()


def _handle_missing(state: _State, params: Sequence[str], groups: Sequence[str], how: str):
    df = state.df
    response = state.space.response.name
    if response in df.columns:
        y = df[response].to_numpy()
        state.drop(np.isnan(y), response, "missing response (never imputed)", y, kind="missing")
    for col in params:
        v = df[col].to_numpy()
        miss = np.isnan(v) & state.alive
        if not miss.any():
            continue
        if how == "drop":
            state.drop(miss, col, f"missing value in '{col}'", v, kind="missing")
            continue
        observed = ~np.isnan(v) & state.alive
        if not observed.any():
            raise schema.SchemaError(
                f"column '{col}': no observed values left to impute {int(miss.sum())} missing"
            )
        overall = float(np.median(v[observed]))
        fill = np.full(state.n, overall)
        reason = np.full(state.n, f"missing '{col}' imputed with the column median", object)
        if how == "impute_group_median" and groups:
            codes = _group_codes(df, groups)
            med = pd.Series(v[observed]).groupby(codes[observed]).median()
            gm = med.reindex(codes).to_numpy()
            has = ~np.isnan(gm)
            fill[has] = gm[has]
            reason[has] = f"missing '{col}' imputed with the median of its group {list(groups)}"
        rows = np.flatnonzero(miss)
        state.log.add(rows, col, "imputed", reason[rows], v[rows], fill[rows], kind="imputed")
        v = v.copy()
        v[rows] = fill[rows]
        df[col] = v


# ----------------------------------------------------------------------------- outliers
def _robust_center_scale(r: np.ndarray, levels: Sequence[np.ndarray], min_group: int):
    """Group medians and MAD-based scales; small groups fall back to their parent group's.

    ``levels`` holds group codes from the finest grouping (all group columns) to the
    coarsest (the outermost column alone). A row is centred on the median of its finest group
    with at least :func:`_min_center` rows (a 1,000 L vessel on its own vessel's batches, not
    on the 10 L ones of its site), else on the overall median. Its scale is the MAD of its
    finest group when that group has ``min_group`` rows or more; otherwise (and when that MAD
    is zero) the MAD of all rows around their centres *at the level the row was centred on*,
    which holds the spread that level leaves (a site's offset, for a row centred on its
    vessel size), so that a tiny group never gets a near-zero scale nor one too small for it.
    """
    r = np.asarray(r, dtype=float)
    min_center = _min_center(min_group)
    n = len(r)
    overall = np.full(n, float(np.median(r)))
    centres = [pd.Series(r).groupby(c).transform("median").to_numpy() for c in levels]
    sizes = [np.bincount(c)[c] for c in levels]

    def pooled_mad(c: np.ndarray) -> float:
        dev = np.abs(r - c)
        mad = 1.4826 * float(np.median(dev))
        # more than half the residuals identical (coarse recording): use the mean deviation;
        # zero means no variation at all, and nothing is flagged
        return mad if mad > 0 else 1.2533 * float(np.mean(dev))

    center, scale = overall.copy(), np.full(n, pooled_mad(overall))
    done = np.zeros(n, dtype=bool)
    for c, size in zip(centres, sizes, strict=True):
        use = ~done & (size >= min_center)
        if use.any():
            center[use] = c[use]
            scale[use] = pooled_mad(c)
            done |= use
    dev = np.abs(r - center)
    own = 1.4826 * pd.Series(dev).groupby(levels[0]).transform("median").to_numpy()
    big = (sizes[0] >= min_group) & (own > 0)
    scale = np.where(big, own, scale)
    return center, scale


def _min_center(min_group: int) -> int:
    """Rows a group needs for its own median centre (half of those for its own scale)."""
    return max(3, int(min_group) // 2)


def _level_codes(df: pd.DataFrame, groups: Sequence[str]) -> list[np.ndarray]:
    """Group codes from all ``groups`` together down to the outermost one alone.

    A column of vessel sizes ("10L", "1000 L") counts as the outermost whatever its place in
    the declaration: a small group falls back to its vessel size's centre, never to a site's
    mix of 10 L and 1,000 L batches.
    """
    groups = volume_first(groups, df)
    return [_group_codes(df, groups[:k]) for k in range(len(groups), 0, -1)] or [
        _group_codes(df, [])
    ]


def _polynomial_design(x: np.ndarray, n_fit: int | None = None) -> np.ndarray | None:
    """Polynomial terms in robustly standardised parameters, as rich as the data allow.

    Linear and square terms from 6 rows per coefficient (54 rows for four parameters), plus
    cubes and pairwise interactions from 10 rows per coefficient (190 rows). A linear-only
    fit is never used: it misses the curvature of a response near its optimum and would flag
    the ends of a legitimate spread. ``n_fit`` (default ``len(x)``) is the number of rows the
    fit will use.
    """
    n, p = x.shape
    n_fit = n if n_fit is None else n_fit
    if n_fit < 6 * (1 + 2 * p):
        return None
    center = np.median(x, axis=0)
    spread = np.subtract(*np.percentile(x, [75, 25], axis=0))
    spread = np.where(spread > 0, spread, 1.0)
    z = (x - center) / spread
    full = n_fit >= 10 * (1 + 3 * p + p * (p - 1) // 2)
    k = 1 + 2 * p + (p + p * (p - 1) // 2 if full else 0)
    out = np.empty((n, k))
    out[:, 0] = 1.0
    out[:, 1 : 1 + p] = z
    out[:, 1 + p : 1 + 2 * p] = z**2
    if full:
        out[:, 1 + 2 * p : 1 + 3 * p] = z**3
        col = 1 + 3 * p
        for i in range(p):
            for j in range(i + 1, p):
                out[:, col] = z[:, i] * z[:, j]
                col += 1
    return out


#: The response surface is fitted on at most this many rows (an even stride through the
#: table, so the result is deterministic); residuals are computed for every row.
_MAX_FIT_ROWS = 200_000


def _outlier_scores(
    df: pd.DataFrame, params: Sequence[str], groups: Sequence[str], min_group: int, response: str
) -> np.ndarray:
    """Robust z-scores of log-response residuals (NaN where they cannot be computed)."""
    y = df[response].to_numpy()
    n = len(y)
    if n < 5:
        return np.full(n, np.nan)
    positive = y[y > 0]
    floor = 1e-3 * (float(np.median(positive)) if len(positive) else 1.0)
    ly = np.log(np.maximum(y, floor))
    levels = _level_codes(df, groups)
    x = df[list(params)].to_numpy()
    design = _polynomial_design(x)
    fitted = np.zeros(n)
    if design is not None:
        fit = np.unique(np.linspace(0, n - 1, min(n, _MAX_FIT_ROWS)).astype(np.int64))
        d_fit, ly_fit = design[fit], ly[fit]
        levels_fit = [pd.factorize(c[fit])[0] for c in levels]
        fitted_fit = np.zeros(len(fit))
        for _ in range(3):
            center, scale = _robust_center_scale(ly_fit - fitted_fit, levels_fit, min_group)
            resid = ly_fit - fitted_fit - center
            # Huber weights: outliers barely pull the response surface
            with np.errstate(divide="ignore", invalid="ignore"):
                u = np.abs(resid) / np.where(scale > 0, scale, np.inf)
            w = np.sqrt(np.where(u <= 1.5, 1.0, 1.5 / np.maximum(u, 1e-12)))
            dw = d_fit * w[:, None]
            gram = dw.T @ dw
            # normal equations with a tiny ridge: stable when a parameter is constant
            gram[np.diag_indices_from(gram)] += 1e-8 * (np.trace(gram) / len(gram) + 1.0)
            coef = np.linalg.solve(gram, dw.T @ ((ly_fit - center) * w))
            fitted_fit = d_fit @ coef
        fitted = design @ coef
    center, scale = _robust_center_scale(ly - fitted, levels, min_group)
    resid = ly - fitted - center
    # residuals of a fit with p_eff coefficients (response surface, own group centres) are
    # smaller than the noise by about sqrt((n - p_eff) / n): undo it so that small tables
    # are not flagged for ordinary draws
    n_centres = len(np.unique(np.round(center, 12)))
    p_eff = (0 if design is None else design.shape[1]) + max(n_centres, 1)
    scale = scale * np.sqrt(n / max(n - p_eff, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(scale > 0, resid / scale, 0.0)
    return z


def _handle_outliers(state: _State, params: Sequence[str], groups: Sequence[str], pol):
    response = state.space.response.name
    if response not in state.df.columns:
        return
    idx = np.flatnonzero(state.alive)
    sub = state.df.iloc[idx]
    z = _outlier_scores(sub, params, groups, int(pol.outlier_min_group), response)
    with np.errstate(invalid="ignore"):
        hit = np.abs(z) > pol.outlier_threshold
    rows = idx[hit]
    if len(rows) == 0:
        return
    y = state.df[response].to_numpy()
    reasons = np.array(
        [
            f"outlier: robust z = {zz:+.1f} (|z| > {pol.outlier_threshold:g}) for log-{response} "
            "residual within group"
            for zz in z[hit]
        ],
        dtype=object,
    )
    if pol.outliers == "drop":
        mask = np.zeros(state.n, dtype=bool)
        mask[rows] = True
        full = np.empty(state.n, dtype=object)
        full[rows] = reasons
        state.drop(mask, response, full, y, kind="outlier")
    else:
        state.log.add(rows, response, "flagged", reasons, y[rows], y[rows], kind="outlier")


# ----------------------------------------------------------------------------- entry point
# ----------------------------------------------------------------------------- summary
_WHOLE_ROW = "(whole row)"
_PHRASES = {
    "impossible": "dropped as impossible",
    "no_product": "dropped as batches with no product (response <= 0)",
    "unit": "repaired as unit slips",
    "text_unit": "converted from a unit written in the cell",
    "unit_suspect": "flagged as possibly recorded in another unit",
    "missing": "dropped for a missing value",
    "missing_id": "dropped for a missing batch id",
    "missing_label": "dropped for a missing label",
    "label": "relabelled (spelling variants of one label merged)",
    "duplicate": "dropped as duplicates",
    "imputed": "imputed",
    "outlier": "dropped as outliers",
    "label_typo": "flagged as a likely label typo",
}
_UNIT_KINDS = frozenset({"impossible", "unit", "unit_suspect", "text_unit"})


def _absent_declared(
    space: ProcessSpace, df: pd.DataFrame, groups: Sequence[str] | None
) -> list[str]:
    """One warning per column a declared space names that the (mapped) table lacks.

    The response, the group columns (unless the policy names its own) and the batch id are
    used when present; a declared one that matches no column is said, not skipped silently
    (the default demo space is not checked: its columns are optional by design).
    """
    columns = list(map(str, df.columns))
    out = []
    if space.response.name not in df.columns:
        out.append(
            f"{space.response.name}: the declared response is not a column of the table, so "
            f"its missing values and outliers are not checked (columns: {columns}; map the "
            "file's column onto it under [columns])"
        )
    if groups is not None:
        lacking = [g for g in space.groups if g not in groups]
        if lacking:
            out.append(
                f"group column(s) {lacking} declared but not in the table: outliers are judged "
                f"without them (columns: {columns})"
            )
    if space.batch_id not in df.columns:
        out.append(
            f"{space.batch_id}: the declared batch id is not a column of the table: the log "
            "names rows by position only"
        )
    return out


def _summarise(
    log: _Log,
    n: int,
    space: ProcessSpace,
    columns: Sequence[str],
    failed: np.ndarray | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Per-column counts of log rows, and a warning for each column above :data:`WARN_SHARE`.

    Rows a status column marks as failed (``failed``, by position) count in the summary but
    not towards the warnings: an aborted batch's empty or impossible response says nothing
    about the column's unit or the file's empty cells.
    """
    entries = log.entries()
    entries["column"] = entries["column"].fillna(_WHOLE_ROW)
    counted = (
        (entries["action"].isin(["dropped", "imputed"]))
        | ((entries["action"] == "repaired") & ~entries["kind"].isin(_PARSE_ONLY))
        | ((entries["action"] == "flagged") & (entries["kind"] == "unit_suspect"))
    )
    names = list(columns) + [c for c in entries["column"].unique() if c not in columns]
    # text read as the number it says ("29,5", "250 rpm"): counted apart from repairs that
    # change a value, so that "repaired" and "share" tell the same story
    parse_only = (entries["action"] == "repaired") & entries["kind"].isin(_PARSE_ONLY)
    per_action = (
        entries.assign(action=entries["action"].where(~parse_only, "parsed"))
        .drop_duplicates(["column", "action", "row"])
        .groupby(["column", "action"])
        .size()
        .unstack(fill_value=0)
    )
    if failed is not None and failed.any():
        rows = pd.to_numeric(entries["row"], errors="coerce")
        known = (rows.notna() & (rows >= 0) & (rows < len(failed))).to_numpy()
        on_failed = np.zeros(len(entries), dtype=bool)
        on_failed[known] = failed[rows[known].astype(int).to_numpy()]
        counted = counted & ~on_failed
    hits = entries[counted].drop_duplicates(["column", "row"])
    per_column = hits.groupby("column").size()
    records = []
    warnings: list[str] = []
    for col in names:
        row = per_action.loc[col] if col in per_action.index else {}
        counts = {a: int(row.get(a, 0)) for a in SUMMARY_COLUMNS[2:-1]}
        k = int(per_column.get(col, 0))
        share = k / n if n else 0.0
        records.append({"column": col, "rows": n, **counts, "share": share})
        if share > WARN_SHARE and k >= 2:  # one row is a slip, logged; not a pattern
            warnings.append(
                _warning(col, k, n, entries[counted & (entries["column"] == col)], space)
            )
    summary = pd.DataFrame(records, columns=list(SUMMARY_COLUMNS))
    return summary.astype({c: np.int64 for c in SUMMARY_COLUMNS[1:-1]}), warnings


def _warning(col: str, k: int, n: int, hit: pd.DataFrame, space: ProcessSpace) -> str:
    by_kind = hit.drop_duplicates(["row", "kind"]).groupby("kind", sort=False)["row"].size()
    if len(by_kind) == 1:
        what = _PHRASES.get(by_kind.index[0], by_kind.index[0])
    else:
        what = ", ".join(f"{_PHRASES.get(kd, kd)} ({c})" for kd, c in by_kind.items())
    text = f"{col}: {100 * k / n:.0f} % of rows ({k} of {n}) were {what}"
    kinds = set(by_kind.index)
    declared = {c.target: c.unit for c in space.columns if c.unit is not None}
    if col in declared and kinds & _UNIT_KINDS:
        text += (
            f"; the file's unit is declared as '{declared[col]}' (converted to "
            f"'{space.units[col]}'): is that right, and are the limits?"
        )
    elif col in space.units and kinds & _UNIT_KINDS:
        text += (
            f"; is the declared unit '{space.units[col]}' right? Declare the file's unit in the "
            "process file's [columns] section."
        )
    elif kinds & {"label", "missing_label"}:
        text += "; check the labels in the file."
    elif kinds & {"missing", "missing_id"}:
        text += "; check the file for empty cells and cells marked missing (n.d., NA, -)."
    else:
        text += "."
    return text


# ----------------------------------------------------------------------------- entry point
def _outlier_groups(groups: Sequence[str], space: ProcessSpace, table: pd.DataFrame) -> list[str]:
    """Leave the innermost declared group (a campaign) out of outlier centres.

    Kept when it is the only group, and when its labels are vessel sizes ("10L", "1000 L"):
    a user who declares sites outermost and vessels inside them must not have 1,000 L
    batches centred on the 10 L ones.
    """
    if not space.groups:
        return list(groups)
    inner = space.groups[-1]
    if inner in table.columns and _volume_labels(table[inner]):
        return list(groups)
    return [g for g in groups if g != inner] or list(groups)


def clean(
    table: pd.DataFrame,
    policy: CleanPolicy | Mapping[str, Any] | str | None = None,
    *,
    columns: Mapping[str, str] | None = None,
    space: ProcessSpace | str | Path | None = None,
) -> CleanResult:
    """Clean a raw batch table and return the cleaned table with an audit log.

    Parameters
    ----------
    table : pandas.DataFrame
        Raw batch table: the space's factor columns are required; the batch id, the response
        and group columns are used when present (with a declared ``space``, each one absent
        is named in ``warnings``). Never modified.
    policy : CleanPolicy, dict or str, optional
        A :class:`CleanPolicy`, a dict of its fields (unknown keys raise ``ValueError``) or a
        name from :data:`POLICIES` (``"default"``, ``"strict"``, ``"impute"``,
        ``"impute_median"``). Default: ``CleanPolicy()``.
    columns : mapping of str to str, optional
        ``{user_name: space_name}`` for tables with other column names (a process file
        declares them once in its ``[columns]`` section instead); the result uses the space's
        names.
    space : ProcessSpace, path to a TOML file, or None, optional
        The process space: factor names, units, limits, response, groups and batch id, and
        the file's own column names and units. Default: the demo process
        (:meth:`ProcessSpace.default() <bayesbio.space.ProcessSpace.default>`).

    Returns
    -------
    CleanResult
        ``table``: the kept rows (index labels from the input), passing
        :func:`bayesbio.schema.validate`; ``log``: one row per action with columns
        ``batch_id, row, column, action, reason, old_value, new_value`` where ``row`` is the
        position in the input (missing for whole-column actions) and ``action`` is
        ``renamed``, ``converted``, ``dropped``, ``repaired``, ``flagged`` or ``imputed``;
        ``warnings`` and ``column_summary`` (see :class:`CleanResult`). Unpacks as
        ``table, log``.

    Raises
    ------
    SchemaError
        If ``table`` is not a DataFrame, is empty, has duplicate column names, lacks a
        factor column, or holds values that are neither numbers nor numbers with a unit
        convertible to the declared one.
    SpaceError
        If ``space`` is a path to a bad process file.
    ValueError
        For an invalid policy.

    Examples
    --------
    >>> from bayesbio.simulate import simulate_batches
    >>> sim = simulate_batches(200, defects=True, random_seed=1)
    >>> result = clean(sim.table)
    >>> len(sim.table) == len(result.table) + (result.log["action"] == "dropped").sum()
    True
    """
    pol = _resolve_policy(policy)
    sp = resolve_space(space)
    df, mapped = schema.map_columns(table, columns, space=sp)
    if len(df) == 0:
        raise schema.SchemaError("table has 0 rows; nothing to clean")
    params = list(sp.factor_names)
    missing_cols = [c for c in params if c not in df.columns]
    if missing_cols:
        raise schema.SchemaError(
            f"missing required column(s) {missing_cols}; the table has {list(df.columns)}"
            + (
                ". No space was given, so the demo process was assumed: declare yours with "
                "space=ProcessSpace.from_toml(...) or draft one from the table with "
                "space=infer_space(table)[0] (bayesbio.space)"
                if space is None and len(missing_cols) == len(params)
                else schema.missing_column_hint(missing_cols, df.columns, sp)
            )
        )
    if pol.groups is not None:
        absent = [g for g in pol.groups if g not in df.columns]
        if absent:
            raise schema.SchemaError(
                f"policy groups {absent} are not columns of the table {list(df.columns)}"
            )
    groups = sp.group_columns(df, pol.groups)
    response = sp.response.name
    batch_id = sp.batch_id
    numeric = params + ([response] if response in df.columns else [])
    # a process the user declared: its response, groups and batch id should all be found
    absent = _absent_declared(sp, df, groups if pol.groups is None else None) if space else []

    df = df.copy(deep=True)
    original_index = df.index
    df = df.reset_index(drop=True)
    ids = df[batch_id].to_numpy(dtype=object) if batch_id in df.columns else None
    state = _State(df, _Log(ids, len(df)), sp)
    for entry in mapped:
        state.log.add_column_action(entry)

    # every column's unreadable cells in one message, not one column per run
    problems = [p for col in numeric if (p := _coerce_numeric(state, col))]
    if problems:
        raise schema.SchemaError(
            "; ".join(problems) + ". Read are: numbers, numbers with a decimal comma ('6,9'; "
            "'1,000' is ambiguous) and numbers followed by a unit convertible to the column's "
            "unit (as in '250 rpm'). Correct these cells, or declare the file's unit in the "
            "process file's [columns] section."
        )
    if batch_id in df.columns:
        na = pd.isna(df[batch_id]).to_numpy()
        state.drop(na, batch_id, f"missing {batch_id}", kind="missing_id")
    for g in groups:
        _normalize_group(state, g, pol.normalize_labels)
    sources = {e["new"]: e["old"] for e in mapped if e["action"] == "renamed" and e.get("old")}
    column_units = _column_units(state, numeric, sources)
    _repair_units(state, pol.unit_repair, skip=list(column_units))
    _drop_impossible(state, numeric)
    _drop_no_product(state)
    _drop_duplicates(state, numeric, groups, float(pol.near_duplicate_tol))
    _handle_missing(state, params, groups, pol.missing)
    alive = state.df.iloc[np.flatnonzero(state.alive)]
    outlier_groups = _outlier_groups(groups, sp, alive)
    _handle_outliers(state, params, outlier_groups, pol)
    _warn_marked_failed(state)

    log = state.log.frame()
    kept = np.flatnonzero(state.alive)
    out = state.df.iloc[kept].copy()
    out.index = original_index[kept]
    if len(out):
        # the columns are mapped already: validate against the space without its
        # declarations, so a declared unit conversion is not applied twice
        out = schema.validate(
            out,
            space=sp.with_changes(columns=()),
            require_response=response in out.columns,
            groups=groups or None,
        )
    present = [*numeric, *groups, *([batch_id] if batch_id in df.columns else [])]
    summary, warnings = _summarise(state.log, state.n, sp, present, _marked_failed(state))
    warnings = absent + list(column_units.values()) + state.warnings + warnings
    counts = log["action"].value_counts().to_dict()
    _log.info("cleaned %d rows: kept %d; actions %s", state.n, len(out), counts)
    for w in warnings:
        _log.info("%s", w)
    return CleanResult(out, log, warnings, summary, sp)
