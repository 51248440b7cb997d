"""The batch table: column names, units, operating ranges, physical limits and validation.

Every other module reads parameter names, units and bounds from here. A batch table has one
row per batch with the columns below (domain units):

============================  ===================================  ======================
column                        meaning                              unit
============================  ===================================  ======================
``batch_id``                  unique batch identifier              --
``scale``, ``site``, ...      group columns (what batches share)   --
``mixing_time``               time to 95 % homogeneity             s
``temperature``               culture temperature setpoint         degC
``ph``                        pH setpoint                          --
``dissolved_oxygen``          DO setpoint                          % air saturation
``yield``                     final product titer                  g/L
============================  ===================================  ======================

Users whose tables use other names pass a mapping once, e.g.
``validate(df, columns={"Temp_C": "temperature", "Titer": "yield"})``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "BATCH_ID",
    "BOUNDS",
    "DEFAULT_GROUPS",
    "LIMITS",
    "PARAMETERS",
    "RESPONSE",
    "UNITS",
    "Parameter",
    "SchemaError",
    "group_columns",
    "rename_columns",
    "validate",
]


class SchemaError(ValueError):
    """A batch table does not match the schema; the message names column, rows and expectation."""


@dataclass(frozen=True)
class Parameter:
    """A process parameter (or the response) with its unit and ranges.

    Attributes
    ----------
    name : str
        Column name in the batch table.
    unit : str
        Domain unit, e.g. ``"degC"``.
    label : str
        Human-readable axis label.
    operating : tuple of float
        Plausible operating range ``(low, high)``: where real processes run and where
        recommendations are searched.
    limits : tuple of float
        Hard physical limits ``(low, high)``: values outside are impossible (data errors).
    """

    name: str
    unit: str
    label: str
    operating: tuple[float, float]
    limits: tuple[float, float]


_PARAMS = (
    Parameter("mixing_time", "s", "Mixing time", (10.0, 120.0), (0.5, 3600.0)),
    Parameter("temperature", "degC", "Temperature", (30.0, 39.0), (4.0, 50.0)),
    Parameter("ph", "", "pH", (6.6, 7.5), (5.5, 8.5)),
    Parameter("dissolved_oxygen", "% air sat.", "Dissolved oxygen", (10.0, 80.0), (0.0, 150.0)),
)
_RESPONSE = Parameter("yield", "g/L", "Yield (titer)", (0.5, 10.0), (0.0, 30.0))

#: The four process parameters, in canonical order.
PARAMETERS: tuple[str, ...] = tuple(p.name for p in _PARAMS)
#: The response column.
RESPONSE: str = _RESPONSE.name
#: The batch identifier column.
BATCH_ID: str = "batch_id"
#: Group columns the simulator writes and models pool over by default.
DEFAULT_GROUPS: tuple[str, ...] = ("scale", "site", "campaign")
#: Parameter (and response) metadata by column name.
SPECS: dict[str, Parameter] = {p.name: p for p in (*_PARAMS, _RESPONSE)}
#: Units by column name.
UNITS: dict[str, str] = {k: v.unit for k, v in SPECS.items()}
#: Plausible operating range by column name.
BOUNDS: dict[str, tuple[float, float]] = {k: v.operating for k, v in SPECS.items()}
#: Hard physical limits by column name.
LIMITS: dict[str, tuple[float, float]] = {k: v.limits for k, v in SPECS.items()}

_MAX_LISTED = 5


def axis_label(column: str) -> str:
    """Return ``"Label [unit]"`` for a schema column, or the column name itself."""
    spec = SPECS.get(column)
    if spec is None:
        return column
    return f"{spec.label} [{spec.unit}]" if spec.unit else spec.label


def _ids(table: pd.DataFrame, mask: np.ndarray | pd.Series) -> str:
    """Name the first few offending rows by batch id when present, else by index."""
    mask = np.asarray(mask, dtype=bool)
    if BATCH_ID in table.columns:
        ids = table.loc[mask, BATCH_ID].astype(str).tolist()
        label = "batch_id"
    else:
        ids = [str(i) for i in table.index[mask]]
        label = "rows"
    shown = ", ".join(ids[:_MAX_LISTED])
    more = f" and {len(ids) - _MAX_LISTED} more" if len(ids) > _MAX_LISTED else ""
    return f"{label} {shown}{more}"


def _non_number_kind(values: pd.Series) -> str | None:
    """Name the kind of a column (or its object entries) that must not be read as numbers."""
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
    """Return a copy of ``table`` with user column names mapped to schema names.

    Parameters
    ----------
    table : pandas.DataFrame
        The user's table.
    columns : mapping of str to str, optional
        ``{user_name: schema_name}``. Schema names are ``batch_id``, the four parameters,
        ``yield`` and any group column.

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
            f"columns must be a mapping {{user_name: schema_name}}, got {type(columns).__name__}"
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
    clash = [t for u, t in columns.items() if t in table.columns and t not in columns and t != u]
    if clash:
        raise SchemaError(
            f"column mapping renames onto {clash}, which the table already has; drop or "
            "rename the existing column first"
        )
    return table.rename(columns=dict(columns))


def group_columns(table: pd.DataFrame, groups: Sequence[str] | None = None) -> list[str]:
    """Return the group columns present in ``table`` (``groups`` or the defaults)."""
    wanted = DEFAULT_GROUPS if groups is None else tuple(groups)
    return [g for g in wanted if g in table.columns]


def validate(
    table: pd.DataFrame,
    columns: Mapping[str, str] | None = None,
    *,
    require_response: bool = True,
    groups: Sequence[str] | None = None,
    allow_missing: bool = False,
    check_limits: bool = True,
    min_rows: int = 1,
) -> pd.DataFrame:
    """Validate a batch table and return a clean-typed copy.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per batch.
    columns : mapping of str to str, optional
        ``{user_name: schema_name}`` for tables with other column names.
    require_response : bool, default True
        Require the ``yield`` column (set False for setpoint tables to predict on).
    groups : sequence of str, optional
        Group columns that must be present. Default: none required; the default group columns
        present are checked for missing labels.
    allow_missing : bool, default False
        Accept missing values in parameter and response columns (for raw data before cleaning).
    check_limits : bool, default True
        Reject values outside the hard physical limits.
    min_rows : int, default 1
        Minimum number of rows.

    Returns
    -------
    pandas.DataFrame
        A copy with numeric parameter/response columns as float64 and group columns as str.

    Raises
    ------
    SchemaError
        Naming the column, the first offending rows and what was expected.
    """
    df = rename_columns(table, columns)
    if len(df) < min_rows:
        raise SchemaError(f"table has {len(df)} rows; at least {min_rows} needed")
    if df.columns.duplicated().any():
        dup = sorted(set(df.columns[df.columns.duplicated()].astype(str)))
        raise SchemaError(f"duplicate column names {dup}")
    required = list(PARAMETERS) + ([RESPONSE] if require_response else [])
    if groups is not None:
        required += list(groups)
    missing = [c for c in required if c not in df.columns]
    if missing:
        hint = ""
        lower = {str(c).lower(): c for c in df.columns}
        near = {m: lower[m.lower()] for m in missing if m.lower() in lower}
        if near:
            hint = f"; did you mean {near}? pass columns={{...}} to map names"
        raise SchemaError(
            f"missing required column(s) {missing}; the table has {list(df.columns)}{hint}"
        )
    numeric = [*PARAMETERS, RESPONSE] if RESPONSE in df.columns else list(PARAMETERS)
    for col in numeric:
        values = df[col]
        kind = _non_number_kind(values)
        if kind:
            raise SchemaError(
                f"column '{col}': {kind} values (dtype {values.dtype}); expected real numbers "
                f"in {UNITS[col] or 'pH units'}"
            )
        if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            converted = pd.to_numeric(values, errors="coerce")
            bad = converted.isna() & values.notna()
            if bad.any():
                examples = values[bad].astype(str).unique()[:3].tolist()
                raise SchemaError(
                    f"column '{col}': {int(bad.sum())} non-numeric value(s) ({_ids(df, bad)}; "
                    f"e.g. {examples}). Expected numbers in {UNITS[col] or 'pH units'}."
                )
            values = converted
        values = values.astype("float64")
        inf = np.isinf(values.to_numpy())
        if inf.any():
            raise SchemaError(
                f"column '{col}': {int(inf.sum())} infinite value(s) ({_ids(df, inf)}). "
                "Expected finite numbers."
            )
        nan = values.isna().to_numpy()
        if nan.all():
            raise SchemaError(f"column '{col}': all {len(df)} values are missing")
        if nan.any() and not allow_missing:
            raise SchemaError(
                f"column '{col}': {int(nan.sum())} missing value(s) ({_ids(df, nan)}). "
                "Run bayesbio.clean.clean first or pass allow_missing=True."
            )
        if check_limits:
            lo, hi = LIMITS[col]
            out = ((values < lo) | (values > hi)).to_numpy()
            if out.any():
                shown = values[out]
                raise SchemaError(
                    f"column '{col}': {int(out.sum())} value(s) outside the physical limits "
                    f"{lo:g}-{hi:g} {UNITS[col]} ({_ids(df, out)}; min {shown.min():g}, "
                    f"max {shown.max():g}). Run bayesbio.clean.clean to repair unit slips."
                )
        df[col] = values
    if BATCH_ID in df.columns:
        ids = df[BATCH_ID]
        if ids.isna().any():
            raise SchemaError(f"column '{BATCH_ID}': {int(ids.isna().sum())} missing id(s)")
        dup = ids.duplicated(keep=False).to_numpy()
        if dup.any():
            raise SchemaError(
                f"column '{BATCH_ID}': {int(dup.sum())} rows share an id ({_ids(df, dup)}). "
                "Batch ids must be unique; run bayesbio.clean.clean to resolve duplicates."
            )
        df[BATCH_ID] = ids.astype(str)
    for g in group_columns(df, groups):
        labels = df[g]
        na = labels.isna().to_numpy()
        if na.any():
            raise SchemaError(
                f"group column '{g}': {int(na.sum())} missing label(s) ({_ids(df, na)})"
            )
        df[g] = labels.astype(str)
    return df
