"""Validation of a batch table against a declared process space.

What a batch table holds (factor names, units, operating ranges, physical limits, the
response, group columns and the batch id) is declared by a
:class:`~bayesbio.space.ProcessSpace`; :func:`validate` checks a table against it and returns a
clean-typed copy, raising :class:`SchemaError` with a message that names the column, the first
offending rows and what was expected. ``space=None`` means
:meth:`ProcessSpace.default() <bayesbio.space.ProcessSpace.default>`, the four-factor demo
process:

============================  ===================================  ======================
column                        meaning                              unit
============================  ===================================  ======================
``batch_id``                  unique batch identifier              --
``scale``, ``site``, ...      group columns (what batches share)   --
``mixing_time``               time to 95 % homogeneity             s
``temperature``               culture temperature setpoint         degC
``ph``                        pH setpoint                          pH
``dissolved_oxygen``          DO setpoint                          % air saturation
``yield``                     final product titer                  g/L
============================  ===================================  ======================

Column names are read forgivingly: the space's ``[columns]`` section declares the file's own
names and units (converted with pint), and names that differ only in case or spaces
(``Scale``, ``Batch ID``) are recognised. A one-off mapping can also be passed, e.g.
``validate(df, columns={"Temp_C": "temperature", "Titer": "yield"})``.

Names, units, ranges and limits come from a :class:`~bayesbio.space.ProcessSpace`
(``space=None`` is the default demo process); this module holds no process constants.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bayesbio.space import ProcessSpace, SpaceError, resolve_space

__all__ = [
    "SchemaError",
    "check_design",
    "group_columns",
    "group_keys",
    "map_columns",
    "missing_column_hint",
    "non_number_kind",
    "rename_columns",
    "unit_text",
    "validate",
]

#: How the user is told to clean a table (CLI wording; the library function is
#: :func:`bayesbio.clean.clean`).
_CLEAN_HINT = "clean the table first (bayesbio clean ...)"


class SchemaError(ValueError):
    """A batch table does not match the process space; the message names column, rows and need."""


# --------------------------------------------------------------------------------------------
# helpers shared with clean and eda
# --------------------------------------------------------------------------------------------
_MAX_LISTED = 5


def unit_text(space: ProcessSpace, column: str) -> str:
    """Return the unit of a factor or the response as words for messages (``"pH units"``)."""
    unit = space.units.get(column, "").strip()
    if unit.lower() in {"", "-", "--", "1", "dimensionless"}:
        return "unitless numbers"
    if unit.lower() == "ph":
        return "pH units"
    return unit


def _ids(table: pd.DataFrame, mask: np.ndarray | pd.Series, batch_id: str) -> str:
    """Name the first few offending rows by batch id when present, else by index."""
    mask = np.asarray(mask, dtype=bool)
    if batch_id in table.columns:
        ids = [
            str(v) if pd.notna(v) and str(v).strip() else f"(no id, row {i})"
            for i, v in table.loc[mask, batch_id].items()
        ]
        label = batch_id
    else:
        ids = [str(i) for i in table.index[mask]]
        label = "rows"
    shown = ", ".join(ids[:_MAX_LISTED])
    more = f" and {len(ids) - _MAX_LISTED} more" if len(ids) > _MAX_LISTED else ""
    return f"{label} {shown}{more}"


def non_number_kind(values: pd.Series) -> str | None:
    """Name the kind of a column (or of its object entries) that must not be read as numbers.

    Parameters
    ----------
    values : pandas.Series
        A column.

    Returns
    -------
    str or None
        ``"boolean"``, ``"complex"``, ``"timedelta"``, ``"datetime"``, the type name of an odd
        object entry (``"Timestamp"``, ``"bool"``), or None for a column that may hold numbers.
    """
    kinds = {"b": "boolean", "c": "complex", "m": "timedelta", "M": "datetime"}
    kind = kinds.get(getattr(values.dtype, "kind", ""))
    if kind is None and isinstance(values.dtype, pd.DatetimeTZDtype):
        kind = "datetime"
    if kind is None and values.dtype == object:
        odd = (bool, np.bool_, complex, np.complexfloating, np.datetime64, np.timedelta64)
        for v in values:
            if isinstance(v, odd) or isinstance(v, pd.Timestamp | pd.Timedelta):
                return type(v).__name__
    return kind


def rename_columns(table: pd.DataFrame, columns: Mapping[str, str] | None) -> pd.DataFrame:
    """Return a copy of ``table`` with user column names mapped to the space's names.

    Parameters
    ----------
    table : pandas.DataFrame
        The user's table.
    columns : mapping of str to str, optional
        ``{user_name: space_name}``: a one-off mapping (a process file declares it once in its
        ``[columns]`` section instead).

    Returns
    -------
    pandas.DataFrame
        A renamed copy.

    Raises
    ------
    SchemaError
        If a mapped user column is missing or two columns map to the same name.
    """
    if not isinstance(table, pd.DataFrame):
        raise SchemaError(f"expected a pandas DataFrame, got {type(table).__name__}")
    if not columns:
        return table.copy()
    if not isinstance(columns, Mapping):
        raise SchemaError(
            f"columns must be a mapping {{user_name: space_name}}, got {type(columns).__name__}"
        )
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise SchemaError(
            f"column mapping names {missing} but the table has columns {list(table.columns)}"
        )
    targets = list(columns.values())
    dup = sorted({t for t in targets if targets.count(t) > 1})
    if dup:
        raise SchemaError(f"column mapping sends several columns to {dup}")
    chained = [(u, t) for u, t in columns.items() if t != u and t in columns and t in table.columns]
    if chained:
        u, t = chained[0]
        what = (
            f"swaps {u!r} and {t!r}"
            if columns.get(t) == u
            else f"renames {u!r} onto {t!r}, which it also renames"
        )
        raise SchemaError(
            f"column mapping {what}; if the file's headers are wrong, fix them in the file "
            "(a mapping renames each file column to a process name once)"
        )
    clash = [t for u, t in columns.items() if t in table.columns and t not in columns and t != u]
    if clash:
        raise SchemaError(
            f"column mapping renames onto {clash}, which the table already has; drop or "
            "rename the existing column first"
        )
    return table.rename(columns=dict(columns))


def map_columns(
    table: pd.DataFrame,
    columns: Mapping[str, str] | None = None,
    *,
    space: ProcessSpace | str | Path | None = None,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Apply a one-off mapping, then the space's column declarations and unit conversions.

    Parameters
    ----------
    table : pandas.DataFrame
        The user's table; not modified.
    columns : mapping of str to str, optional
        ``{user_name: space_name}``, applied first (see :func:`rename_columns`).
    space : ProcessSpace, path or None, optional
        The process space (None: the default demo process).

    Returns
    -------
    table : pandas.DataFrame
        A renamed, converted copy.
    actions : list of dict
        What :meth:`~bayesbio.space.ProcessSpace.map_columns` did (``column``, ``action``
        ``"renamed"`` or ``"converted"``, ``reason``), plus ``old`` and ``new``: the old and
        new column name, or the file's and the space's unit.

    Raises
    ------
    SchemaError
        For a table that is not a DataFrame, duplicate column names, a bad mapping, or column
        declarations that do not fit the table.
    """
    sp = resolve_space(space)
    if columns and isinstance(columns, Mapping):
        known = [*sp.factor_names, sp.response.name, *sp.groups, sp.batch_id]
        unknown = {u: t for u, t in columns.items() if t not in known}
        if unknown:
            raise SchemaError(
                f"column mapping {unknown} names column(s) the process does not have; "
                f"map file columns onto {known}"
            )
    df = rename_columns(table, columns) if columns else table
    if not isinstance(df, pd.DataFrame):
        raise SchemaError(f"expected a pandas DataFrame, got {type(df).__name__}")
    if df.columns.duplicated().any():
        dup = sorted(set(df.columns[df.columns.duplicated()].astype(str)))
        raise SchemaError(f"duplicate column names {dup}; each column must appear once")
    before = list(df.columns)
    try:
        out, actions = sp.map_columns(df)
    except SpaceError as exc:
        raise SchemaError(str(exc)) from None
    renamed = {new: old for old, new in zip(before, out.columns, strict=True) if old != new}
    declared = {c.target: c.unit for c in sp.columns if c.unit is not None}
    for entry in actions:
        col = entry["column"]
        if entry["action"] == "renamed":
            entry["old"], entry["new"] = renamed.get(col), col
        else:
            entry["old"], entry["new"] = declared.get(col), sp.units.get(col)
    return out, actions


def group_columns(
    table: pd.DataFrame,
    groups: Sequence[str] | None = None,
    space: ProcessSpace | str | Path | None = None,
) -> list[str]:
    """Return the group columns present in ``table``.

    Parameters
    ----------
    table : pandas.DataFrame
        A batch table.
    groups : sequence of str, optional
        Group columns to look for; default the space's groups, in hierarchy order.
    space : ProcessSpace, path or None, optional
        The process space (None: the default demo process).

    Returns
    -------
    list of str
        The present ones, in the order asked for.
    """
    return resolve_space(space).group_columns(table, groups)


def warn_missing_groups(
    table: pd.DataFrame, space: ProcessSpace, groups: Sequence[str] | None, who: str
) -> None:
    """Warn when a group column the process declares is misspelt (a close name is present).

    The model then pools all batches over it (a 3 L and a 500 L vessel alike), which is
    rarely what the declaration meant; the warning names the close column of the table. A
    declared level with no similar column (data without a campaign column) passes quietly.
    """
    wanted = space.groups if groups is None else tuple(groups)
    missing = [g for g in wanted if g not in table.columns]
    if not missing:
        return
    present = [str(c) for c in table.columns if c not in (*space.factor_names, space.response.name)]
    near = close_names(missing, present, cutoff=0.6)
    if not near:  # a level the data do not record (no campaign column): nothing misspelt
        return
    warnings.warn(
        f"{who}: group column(s) {list(near)} declared but not in the table, so all batches "
        f"are pooled over them; is {near} meant? Correct the groups of the process file (or "
        "pass groups=)",
        UserWarning,
        stacklevel=3,
    )


def group_keys(table: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Return one integer per batch for its combination of labels in ``columns``.

    Batches with the same labels in every column share a key (vectorised, fine at millions of
    rows); without columns every batch has key 0.
    """
    if not columns:
        return np.zeros(len(table), dtype=int)
    return table.groupby(list(columns), sort=False, observed=True).ngroup().to_numpy()


def close_names(
    missing: Sequence[str], names: Sequence[str], cutoff: float = 0.7
) -> dict[str, str]:
    """Return, for each missing name, the present name it likely means (each used once).

    An abbreviation first (``'temp'`` for ``'temperature'``), then a close spelling
    (:func:`difflib.get_close_matches` at ``cutoff``).
    """
    near: dict[str, str] = {}
    for m in missing:
        free = [n for n in names if n not in near.values()]
        key = m.lower().replace(" ", "_")
        prefix = [n for n in free if len(n) >= 3 and key.startswith(n.lower().replace(" ", "_"))]
        close = difflib.get_close_matches(key, [n.lower() for n in free], n=1, cutoff=cutoff)
        if prefix:
            near[m] = max(prefix, key=len)
        elif close:
            near[m] = next(n for n in free if n.lower() == close[0])
    return near


def missing_column_hint(
    missing: Sequence[str], present: Sequence[Any], space: ProcessSpace | None = None
) -> str:
    """Return the tail of a missing-column message: a close name, and where to declare names.

    With ``space``, a ``[columns]`` entry that should have supplied a missing column but names
    a header the file does not have is named first.
    """
    names = [str(c) for c in present]
    stale = [
        f"[columns] maps {c.source!r} onto {c.target!r}, but the file has no column {c.source!r}"
        for c in (space.columns if space is not None else ())
        if c.target in missing and c.source not in names
    ]
    if stale:
        return "; " + "; ".join(stale) + missing_column_hint(missing, present)
    # a factor renamed in the process file with its label still the file's header
    labelled = {
        f.name: f.label
        for f in (space.factors if space is not None else ())
        if f.name in missing and f.label in names and f.label != f.name
    }
    if labelled:
        return (
            f"; the file has {list(labelled.values())}, the label(s) of {list(labelled)}: a "
            "label is only what plots and messages say; map a file's header onto a name in the "
            "process file's [columns] section (e.g. "
            + ", ".join(f'"{label}" = "{name}"' for name, label in labelled.items())
            + ")"
        )
    near = close_names(missing, names)
    shown = f"; is {near} meant? " if near else "; "
    return (
        f"{shown}declare the file's column names in the process file's [columns] section "
        "(or pass columns={...})"
    )


def validate(
    table: pd.DataFrame,
    columns: Mapping[str, str] | None = None,
    *,
    space: ProcessSpace | str | Path | None = None,
    require_response: bool = True,
    groups: Sequence[str] | None = None,
    allow_missing: bool = False,
    check_limits: bool = True,
    min_rows: int = 1,
) -> pd.DataFrame:
    """Validate a batch table against a process space and return a clean-typed copy.

    Column names are mapped first (``columns``, then the space's ``[columns]`` declarations
    with their unit conversions, then names differing only in case or spaces), so a table
    with ``Scale`` or ``Temp (F)`` columns validates when the space says what they are.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per batch.
    columns : mapping of str to str, optional
        ``{user_name: space_name}`` for tables with other column names.
    space : ProcessSpace, path or None, optional
        The process space: factor and response names, units, limits, groups and batch id.
        Default: :meth:`ProcessSpace.default() <bayesbio.space.ProcessSpace.default>`.
    require_response : bool, default True
        Require the response column (set False for setpoint tables to predict on).
    groups : sequence of str, optional
        Group columns that must be present. Default: none required; the space's group
        columns present are checked for missing labels.
    allow_missing : bool, default False
        Accept missing values in factor and response columns (for raw data before cleaning).
    check_limits : bool, default True
        Reject values outside the hard physical limits.
    min_rows : int, default 1
        Minimum number of rows.

    Returns
    -------
    pandas.DataFrame
        A copy with the space's column names, numeric factor/response columns as float64,
        group columns and the batch id as str.

    Raises
    ------
    SchemaError
        Naming the column, the first offending rows and what was expected.
    SpaceError
        If ``space`` is a path to a bad process file.
    """
    sp = resolve_space(space)
    df, _ = map_columns(table, columns, space=sp)
    if len(df) < min_rows:
        raise SchemaError(f"table has {len(df)} rows; at least {min_rows} needed")
    response = sp.response.name
    factors = list(sp.factor_names)
    required = factors + ([response] if require_response else [])
    if groups is not None:
        required += list(groups)
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise SchemaError(
            f"missing required column(s) {missing}; the table has {list(df.columns)}"
            + missing_column_hint(missing, df.columns, sp)
        )
    numeric = [*factors, response] if response in df.columns else factors
    for col in numeric:
        values = df[col]
        unit = unit_text(sp, col)
        kind = non_number_kind(values)
        if kind:
            raise SchemaError(
                f"column '{col}': {kind} values (dtype {values.dtype}); expected real numbers "
                f"in {unit}"
            )
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            converted = pd.to_numeric(values, errors="coerce")
            bad = converted.isna() & values.notna()
            if bad.any():
                examples = values[bad].astype(str).unique()[:3].tolist()
                raise SchemaError(
                    f"column '{col}': {int(bad.sum())} non-numeric value(s) "
                    f"({_ids(df, bad, sp.batch_id)}; e.g. {examples}). Expected numbers in "
                    f"{unit}; {_CLEAN_HINT} to read numbers written with units."
                )
            values = converted
        values = values.astype("float64")
        inf = np.isinf(values.to_numpy())
        if inf.any():
            raise SchemaError(
                f"column '{col}': {int(inf.sum())} infinite value(s) "
                f"({_ids(df, inf, sp.batch_id)}). Expected finite numbers."
            )
        nan = values.isna().to_numpy()
        if nan.all():
            raise SchemaError(f"column '{col}': all {len(df)} values are missing")
        if nan.any() and not allow_missing:
            raise SchemaError(
                f"column '{col}': {int(nan.sum())} missing value(s) "
                f"({_ids(df, nan, sp.batch_id)}); {_CLEAN_HINT} to drop or impute them."
            )
        if check_limits:
            lo, hi = sp.limits[col]
            out = ((values < lo) | (values > hi)).to_numpy()
            if out.any():
                shown = values[out]
                raise SchemaError(
                    f"column '{col}': {int(out.sum())} value(s) outside the physical limits "
                    f"{lo:g}-{hi:g} {sp.units[col]} ({_ids(df, out, sp.batch_id)}; min "
                    f"{shown.min():g}, max {shown.max():g}). Is the declared unit "
                    f"'{sp.units[col]}' right? If so, {_CLEAN_HINT} to repair unit slips and drop "
                    "impossible values."
                )
        df[col] = values
    batch_id = sp.batch_id
    # ids identify batches that were run; a table of setpoints to predict may repeat them
    if batch_id in df.columns and require_response:
        ids = df[batch_id]
        if ids.isna().any():
            raise SchemaError(f"column '{batch_id}': {int(ids.isna().sum())} missing id(s)")
        dup = ids.duplicated(keep=False).to_numpy()
        if dup.any():
            raise SchemaError(
                f"column '{batch_id}': {int(dup.sum())} rows share an id "
                f"({_ids(df, dup, batch_id)}). Batch ids must be unique; {_CLEAN_HINT} to "
                "resolve duplicates."
            )
        df[batch_id] = ids.astype(str)
    for g in sp.group_columns(df, groups):
        labels = df[g]
        na = labels.isna().to_numpy()
        if na.any():
            raise SchemaError(
                f"group column '{g}': {int(na.sum())} missing label(s) ({_ids(df, na, batch_id)})"
            )
        df[g] = labels.astype(str)
    return df


def check_design(
    table: pd.DataFrame,
    space: ProcessSpace | str | Path | None,
    n_params: int,
    *,
    force: bool = False,
) -> list[str]:
    """Refuse a batch table that cannot inform a model with ``n_params`` parameters.

    Checks, in order: fewer batches than model parameters; a free factor (one without a
    ``fixed`` value) that does not vary at all (its effect cannot be estimated); a response
    that is the same in every batch (there is nothing to explain).

    Parameters
    ----------
    table : pandas.DataFrame
        A validated batch table (the space's column names).
    space : ProcessSpace, path or None
        The process space (None: the default demo process).
    n_params : int
        Number of parameters of the model to be fitted (>= 1).
    force : bool, default False
        Return the problems as warnings instead of raising.

    Returns
    -------
    list of str
        The problems found (empty for a usable design); only non-empty with ``force=True``.

    Raises
    ------
    SchemaError
        With ``force=False``, naming every problem (the factor, the number of batches, the
        constant response) and saying how to proceed anyway.
    ValueError
        If ``n_params`` is not a positive integer.
    """
    if isinstance(n_params, bool) or not isinstance(n_params, int | np.integer) or n_params < 1:
        raise ValueError(f"n_params must be a positive integer, got {n_params!r}")
    if not isinstance(table, pd.DataFrame):
        raise SchemaError(f"expected a pandas DataFrame, got {type(table).__name__}")
    sp = resolve_space(space)
    problems: list[str] = []
    n = len(table)
    if n < n_params:
        problems.append(
            f"{n} batch(es) but the model has {int(n_params)} parameters; at least "
            f"{int(n_params)} batches are needed to estimate them"
        )
    for name in sp.free_factors:
        if name not in table.columns or n == 0:
            continue
        values = pd.to_numeric(table[name], errors="coerce").dropna()
        if len(values) and values.nunique() <= 1:
            problems.append(
                f"factor '{name}' does not vary (every batch at {float(values.iloc[0]):g} "
                f"{unit_text(sp, name)}); its effect cannot be estimated: vary it, or declare it "
                "with a fixed value in the process file"
            )
    response = sp.response.name
    if response in table.columns and n > 1:
        y = pd.to_numeric(table[response], errors="coerce").dropna()
        if len(y) > 1 and y.nunique() <= 1:
            problems.append(
                f"response '{response}' is the same in every batch ({float(y.iloc[0]):g} "
                f"{sp.response.unit}); there is nothing to model"
            )
    if problems and not force:
        raise SchemaError(
            "implausible design: "
            + "; ".join(problems)
            + " (to fit anyway: force=True, or `bayesbio fit --force`)"
        )
    return problems
