"""Audited cleaning of a batch table: every change is a row in the returned audit log.

:func:`clean` takes a raw batch table and returns a :class:`CleanResult` holding the cleaned
table and a log with one row per action. The input is never changed. The steps, in order:

1. **Text in numeric columns**: numbers stored as text (``"7.1"``) are read; a number with a
   recognised unit (``"37 C"``, ``"310 K"``, ``"3.1 mg/L"``) is converted to the schema unit;
   missing-value markers (``"n/a"``, ``""``) become missing. Anything else raises
   :class:`~bayesbio.schema.SchemaError` naming the column, rows and examples.
2. **Group labels** are normalised (case, surrounding space, separators, a leading column name:
   ``" a"``, ``"Site-A"``, ``"site a"`` -> ``"A"``; ``"2000 L"`` -> ``"2000L"``) to the most
   common spelling of each label in the table. Rows without a group label or batch id are
   dropped.
3. **Unit slips** are repaired, and only where the converted value is plausible (inside the
   operating range widened by half its width): temperatures of 273-330 read as kelvin and of
   50-122 as Fahrenheit; dissolved oxygen below the operating range (< 10 % air sat.) that
   lands inside it once read as mg/L, converted with :data:`DO_MG_PER_L_AT_SATURATION`. Each
   conversion is logged; a value no unit explains is left to step 4.
4. **Impossible values** (infinite, or outside :data:`bayesbio.schema.LIMITS` after repair)
   drop the row.
5. **Duplicates**: exact copies, then later rows reusing a batch id, then rows whose
   parameters, response and group labels agree within a tolerance under another id, are
   dropped; the first occurrence is kept.
6. **Missing values** drop the row or are imputed (column or group median), by policy. A
   missing response is never imputed: the row is dropped.
7. **Outliers** in the response: a robust z-score of log-yield residuals after (scale, site)
   group medians and a Huber-weighted polynomial fit on the parameters (squares from 54 rows,
   cubes and interactions from 190), so the legitimate spread of a design is explained, not
   flagged. Small groups share a pooled MAD scale. Flagged by default, dropped by policy.

Row accounting always holds: ``len(table) == len(result.table) + (log.action == "dropped").sum()``
and each dropped input row has exactly one ``dropped`` log row.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from bayesbio import schema
from bayesbio.simulate import DO_MG_PER_L_AT_100_PERCENT

__all__ = [
    "DO_MG_PER_L_AT_SATURATION",
    "LOG_COLUMNS",
    "POLICIES",
    "CleanPolicy",
    "CleanResult",
    "clean",
]

_log = logging.getLogger(__name__)


#: Dissolved oxygen in mg/L at 100 % air saturation (culture conditions), used to repair DO
#: recorded in mg/L: ``% air sat. = mg/L / DO_MG_PER_L_AT_SATURATION * 100``.
DO_MG_PER_L_AT_SATURATION: float = DO_MG_PER_L_AT_100_PERCENT

#: Columns of the audit log.
LOG_COLUMNS: tuple[str, ...] = (
    "batch_id",
    "row",
    "column",
    "action",
    "reason",
    "old_value",
    "new_value",
)

_MISSING_CHOICES = ("drop", "impute_median", "impute_group_median")
_OUTLIER_CHOICES = ("flag", "drop")
_KELVIN = (273.0, 330.0)
_FAHRENHEIT = (50.0, 122.0)
#: A unit-slip repair is accepted only if it lands in the operating range widened by this
#: fraction of its width on each side; otherwise the value stays and is judged impossible.
_PLAUSIBLE_PAD = 0.5
_NA_MARKERS = frozenset({"", "na", "n/a", "nan", "none", "null", "missing", "-", "--", "?"})
_SEPARATORS = re.compile(r"[\s\-_./]+")
_NUMBER_UNIT = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")


@dataclass(frozen=True)
class CleanPolicy:
    """What :func:`clean` does with each kind of defect.

    Parameters
    ----------
    missing : {"drop", "impute_median", "impute_group_median"}, default "drop"
        Missing parameter values drop the row, or are imputed with the column median or the
        median within the row's group (falling back to the column median for groups with no
        observed value). A missing response always drops the row.
    outliers : {"flag", "drop"}, default "flag"
        Response outliers are logged as ``flagged`` (and kept) or dropped.
    outlier_threshold : float, default 5.0
        Robust z-score (residual / (1.4826 MAD)) above which a yield is an outlier.
    outlier_min_group : int, default 10
        Groups with fewer rows use the pooled residual scale instead of their own.
    near_duplicate_tol : float, default 1e-4
        Tolerance for near duplicates under different batch ids, as a fraction of each
        column's operating-range width (parameters and response; group labels must match).
        Tables without a response skip this check: equal setpoints are replicates there.
        0 disables it.
    unit_repair : bool, default True
        Repair temperatures recorded in kelvin or Fahrenheit and dissolved oxygen recorded in
        mg/L. When False, such values are dropped as impossible (if outside the limits).
    normalize_labels : bool, default True
        Normalise group-label spellings.
    groups : tuple of str, optional
        Group columns for label normalisation, missing-label checks, group-median imputation
        and outlier centres and scales (``campaign`` is left out of the outlier groups unless
        it is the only one: campaigns are many and small). Default: the columns of
        :data:`bayesbio.schema.DEFAULT_GROUPS` present in the table.
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


class CleanResult(NamedTuple):
    """Result of :func:`clean`.

    Attributes
    ----------
    table : pandas.DataFrame
        The cleaned table (schema column names, input index labels of the kept rows).
    log : pandas.DataFrame
        One row per action, columns :data:`LOG_COLUMNS`. ``row`` is the position in the input
        table; ``column`` is None for actions on a whole row (duplicates).
    """

    table: pd.DataFrame
    log: pd.DataFrame


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
    """Collects audit rows as vectorised chunks."""

    def __init__(self, batch_ids: np.ndarray | None, n: int) -> None:
        self.batch_ids = batch_ids if batch_ids is not None else np.full(n, None, dtype=object)
        self.chunks: list[dict[str, Any]] = []
        self.order = 0

    def add(
        self,
        rows: np.ndarray,
        column: str | None,
        action: str,
        reason: str | np.ndarray,
        old: Any = None,
        new: Any = None,
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
                "_order": np.full(k, self.order),
            }
        )
        self.order += 1

    def frame(self) -> pd.DataFrame:
        if not self.chunks:
            out = pd.DataFrame({c: pd.Series(dtype=object) for c in LOG_COLUMNS})
            out["row"] = out["row"].astype(np.int64)
            return out
        cols = {c: np.concatenate([ch[c] for ch in self.chunks]) for c in self.chunks[0]}
        order = np.lexsort((cols["_order"], cols["row"]))
        data = {c: v[order] for c, v in cols.items() if c != "_order"}
        data["batch_id"] = self.batch_ids[data["row"]]
        return pd.DataFrame({c: data[c] for c in LOG_COLUMNS})


class _State:
    """Mutable working state of one clean() call (never the caller's objects)."""

    def __init__(self, df: pd.DataFrame, log: _Log) -> None:
        self.df = df
        self.n = len(df)
        self.alive = np.ones(self.n, dtype=bool)
        self.log = log

    def drop(self, mask: np.ndarray, column: str | None, reason: str | np.ndarray, old=None):
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
        self.log.add(rows, column, "dropped", reason, old, None)
        self.alive &= ~new


# ----------------------------------------------------------------------------- text to numbers
def _unit_converters(col: str) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    same = lambda v: v  # noqa: E731
    c = DO_MG_PER_L_AT_SATURATION
    table: dict[str, dict[str, Callable[[np.ndarray], np.ndarray]]] = {
        "temperature": {
            "c": same,
            "°c": same,
            "degc": same,
            "deg c": same,
            "celsius": same,
            "k": lambda v: v - 273.15,
            "kelvin": lambda v: v - 273.15,
            "f": lambda v: (v - 32.0) / 1.8,
            "°f": lambda v: (v - 32.0) / 1.8,
            "degf": lambda v: (v - 32.0) / 1.8,
            "fahrenheit": lambda v: (v - 32.0) / 1.8,
        },
        "dissolved_oxygen": {
            "%": same,
            "% air sat": same,
            "% air sat.": same,
            "% air saturation": same,
            "%as": same,
            "percent": same,
            "mg/l": lambda v: v / c * 100.0,
        },
        "mixing_time": {"s": same, "sec": same, "seconds": same, "min": lambda v: v * 60.0},
        "ph": {},
        "yield": {"g/l": same, "mg/l": lambda v: v / 1000.0},
    }
    return table.get(col, {})


def _coerce_numeric(state: _State, col: str) -> None:
    """Make ``col`` float64, logging every text value that was read or converted."""
    df = state.df
    s = df[col]
    unit = schema.UNITS.get(col) or "pH units"
    kind = schema._non_number_kind(s)
    if kind:
        raise schema.SchemaError(
            f"column '{col}': {kind} values (dtype {s.dtype}); expected real numbers in {unit}"
        )
    if pd.api.types.is_numeric_dtype(s):
        df[col] = s.astype("float64")
        return
    values = s.to_numpy(dtype=object)
    num = pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    is_text = np.fromiter((isinstance(v, str) for v in values), bool, len(values))
    text_rows = np.flatnonzero(is_text)
    out = num.copy()
    converters = _unit_converters(col)
    bad: list[int] = []
    reasons: list[str] = []
    new_vals: list[float] = []
    for r in text_rows:
        raw = values[r]
        t = raw.strip()
        if t.lower() in _NA_MARKERS:
            out[r] = np.nan
            reasons.append(f"text {raw!r} read as a missing value")
            new_vals.append(np.nan)
            continue
        m = _NUMBER_UNIT.match(t)
        u = m.group(2).strip().lower() if m else None
        if m is None or (u and u not in converters):
            bad.append(int(r))
            continue
        x = float(m.group(1))
        if u:
            out[r] = float(converters[u](np.array([x]))[0])
            reasons.append(f"text {raw!r} read as {x:g} {u} and converted to {unit}")
        else:
            out[r] = x
            reasons.append(f"text {raw!r} read as a number")
        new_vals.append(out[r])
    if bad:
        examples = sorted({str(values[r]) for r in bad})[:3]
        raise schema.SchemaError(
            f"column '{col}': {len(bad)} value(s) that are not numbers in {unit} "
            f"(rows {bad[:5]}; e.g. {examples}). Recognised units: {sorted(converters) or 'none'}."
        )
    state.log.add(
        text_rows,
        col,
        "repaired",
        np.array(reasons, dtype=object),
        values[text_rows],
        np.array(new_vals, dtype=object),
    )
    # other objects (e.g. Decimal) that to_numeric could not read
    other = np.isnan(out) & ~is_text & pd.notna(s).to_numpy()
    if other.any():
        rows = np.flatnonzero(other)
        raise schema.SchemaError(
            f"column '{col}': {len(rows)} value(s) that are not numbers (rows {rows[:5].tolist()};"
            f" e.g. {[repr(values[r]) for r in rows[:3]]}); expected numbers in {unit}"
        )
    df[col] = out


# ----------------------------------------------------------------------------- group labels
def _label_key(label: str, column: str) -> str:
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
    state.drop(missing, col, f"missing group label in '{col}'", np.where(missing, values, None))
    if not normalize:
        df[col] = np.where(missing, None, text)
        return
    counts = np.bincount(codes[state.alive], minlength=len(uniques))
    keys = [_label_key(u, col) for u in uniques]
    best: dict[str, tuple[int, str]] = {}
    for u, k, cnt in zip(uniques, keys, counts, strict=True):
        stripped = u.strip()
        # most common spelling wins; ties go to the one without surrounding space, then first
        score = (int(cnt), int(stripped == u))
        if k and (k not in best or score > best[k][0:2]):
            best[k] = (*score, stripped)  # type: ignore[assignment]
    canon = np.array(
        [best[k][2] if k in best else u for u, k in zip(uniques, keys, strict=True)], dtype=object
    )
    new = canon[codes]
    changed = (new != text) & state.alive
    rows = np.flatnonzero(changed)
    state.log.add(rows, col, "repaired", "group label normalised", values[rows], new[rows])
    df[col] = np.where(missing, None, new)


# ----------------------------------------------------------------------------- unit slips
def _plausible(col: str) -> tuple[float, float]:
    lo, hi = schema.BOUNDS[col]
    pad = _PLAUSIBLE_PAD * (hi - lo)
    return lo - pad, hi + pad


def _repair_units(state: _State) -> None:
    df = state.df
    if "temperature" in df.columns:
        t = df["temperature"].to_numpy(copy=True)
        plo, phi = _plausible("temperature")
        with np.errstate(invalid="ignore"):
            from_k = t - 273.15
            from_f = (t - 32.0) / 1.8
            k = (t >= _KELVIN[0]) & (t <= _KELVIN[1]) & (from_k >= plo) & (from_k <= phi)
            f = (t > _FAHRENHEIT[0]) & (t <= _FAHRENHEIT[1]) & (from_f >= plo) & (from_f <= phi)
        k &= state.alive
        f &= state.alive
        new = t.copy()
        new[k] = from_k[k]
        new[f] = from_f[f]
        state.log.add(
            np.flatnonzero(k),
            "temperature",
            "repaired",
            "unit slip: kelvin converted to degC (T - 273.15)",
            t[k],
            new[k],
        )
        state.log.add(
            np.flatnonzero(f),
            "temperature",
            "repaired",
            "unit slip: Fahrenheit converted to degC ((T - 32) / 1.8)",
            t[f],
            new[f],
        )
        df["temperature"] = new
    if "dissolved_oxygen" in df.columns:
        d = df["dissolved_oxygen"].to_numpy(copy=True)
        lo = schema.BOUNDS["dissolved_oxygen"][0]
        factor = 100.0 / DO_MG_PER_L_AT_SATURATION
        converted = d * factor
        # below the operating range as % air sat., but inside it once read as mg/L: the
        # condition is closed under the repair (a repaired value is >= lo), so cleaning twice
        # never converts twice
        with np.errstate(invalid="ignore"):
            m = (d < lo) & (converted >= lo) & (converted <= _plausible("dissolved_oxygen")[1])
        m &= state.alive
        state.log.add(
            np.flatnonzero(m),
            "dissolved_oxygen",
            "repaired",
            f"unit slip: mg/L converted to % air sat. (x 100 / {DO_MG_PER_L_AT_SATURATION:g})",
            d[m],
            converted[m],
        )
        d[m] = converted[m]
        df["dissolved_oxygen"] = d


def _drop_impossible(state: _State, numeric: Sequence[str]) -> None:
    df = state.df
    for col in numeric:
        v = df[col].to_numpy()
        lo, hi = schema.LIMITS[col]
        inf = np.isinf(v)
        with np.errstate(invalid="ignore"):
            out = ((v < lo) | (v > hi)) & ~inf
        unit = schema.UNITS[col]
        state.drop(inf, col, f"impossible: infinite value in '{col}'", v)
        reasons = np.array(
            [
                f"impossible: '{col}' = {x:g} outside the limits {lo:g}-{hi:g} {unit}"
                for x in v[out]
            ],
            dtype=object,
        )
        full = np.empty(len(v), dtype=object)
        full[out] = reasons
        state.drop(out, col, full, v)


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


def _drop_duplicates(state: _State, numeric: Sequence[str], groups: Sequence[str], tol: float):
    df = state.df
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
        state.drop(exact, None, reasons)
    # same batch id, different values
    if schema.BATCH_ID in df.columns:
        first = _first_position(df[schema.BATCH_ID].astype(str), state.alive)
        dup = state.alive & (first >= 0) & (first != pos)
        if dup.any():
            rows = np.flatnonzero(dup)
            a = df.iloc[rows].reset_index(drop=True)
            b = df.iloc[first[rows]].reset_index(drop=True)
            differ = ~((a == b) | (a.isna() & b.isna()))
            names = np.array(df.columns, dtype=object)
            reasons = np.empty(state.n, dtype=object)
            reasons[rows] = [
                f"duplicate batch_id of row {f} (differs in {', '.join(names[d]) or 'nothing'})"
                for f, d in zip(first[rows], differ.to_numpy(), strict=True)
            ]
            state.drop(dup, schema.BATCH_ID, reasons, df[schema.BATCH_ID].to_numpy(dtype=object))
    # same parameters, response and groups within tolerance, another id; without a response
    # (a setpoint table) equal parameters are replicates, not duplicates
    if tol > 0 and schema.RESPONSE in numeric:
        keys = {}
        for col in numeric:
            lo, hi = schema.BOUNDS[col]
            width = tol * (hi - lo)
            keys[col] = np.floor(df[col].to_numpy() / width + 0.5)
        for g in groups:
            keys[g] = df[g].to_numpy(dtype=object)
        frame = pd.DataFrame(keys)
        first = _first_position(frame, state.alive)
        near = state.alive & (first >= 0) & (first != pos) & df[list(numeric)].notna().all(axis=1)
        reasons = np.empty(state.n, dtype=object)
        reasons[near] = [
            f"near duplicate of row {f} (parameters and response within tolerance)"
            for f in first[near]
        ]
        state.drop(near, None, reasons)


# ----------------------------------------------------------------------------- missing values
def _group_codes(df: pd.DataFrame, groups: Sequence[str]) -> np.ndarray:
    if not groups:
        return np.zeros(len(df), dtype=np.int64)
    return df.groupby(list(groups), sort=False, dropna=False).ngroup().to_numpy()


def _handle_missing(state: _State, params: Sequence[str], groups: Sequence[str], how: str):
    df = state.df
    if schema.RESPONSE in df.columns:
        y = df[schema.RESPONSE].to_numpy()
        state.drop(np.isnan(y), schema.RESPONSE, "missing response (never imputed)", y)
    for col in params:
        v = df[col].to_numpy()
        miss = np.isnan(v) & state.alive
        if not miss.any():
            continue
        if how == "drop":
            state.drop(miss, col, f"missing value in '{col}'", v)
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
        state.log.add(rows, col, "imputed", reason[rows], v[rows], fill[rows])
        v = v.copy()
        v[rows] = fill[rows]
        df[col] = v


# ----------------------------------------------------------------------------- outliers
def _robust_center_scale(r: np.ndarray, codes: np.ndarray, min_group: int):
    """Group medians and MAD-based scales; small groups fall back to the pooled ones.

    A group with fewer than ``min_group`` rows is centred on the overall median, and its
    scale (like that of a group whose MAD is zero) is the MAD of all rows around their
    centres, so a tiny group never gets a near-zero scale.
    """
    size = np.bincount(codes)[codes]
    small = size < min_group
    med = pd.Series(r).groupby(codes).transform("median").to_numpy()
    center = np.where(small, float(np.median(r)), med)
    dev = np.abs(r - center)
    pooled = 1.4826 * float(np.median(dev))
    if pooled == 0:
        # more than half the residuals identical (coarse recording): use the mean deviation;
        # zero means no variation at all, and nothing is flagged
        pooled = 1.2533 * float(np.mean(dev))
    mad = 1.4826 * pd.Series(dev).groupby(codes).transform("median").to_numpy()
    scale = np.where(small | ~(mad > 0), pooled, mad)
    return center, scale


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
    df: pd.DataFrame, params: Sequence[str], groups: Sequence[str], min_group: int
) -> np.ndarray:
    """Robust z-scores of log-yield residuals (NaN where they cannot be computed)."""
    y = df[schema.RESPONSE].to_numpy()
    n = len(y)
    if n < 5:
        return np.full(n, np.nan)
    positive = y[y > 0]
    floor = 1e-3 * (float(np.median(positive)) if len(positive) else 1.0)
    ly = np.log(np.maximum(y, floor))
    codes = _group_codes(df, groups)
    x = df[list(params)].to_numpy()
    design = _polynomial_design(x)
    fitted = np.zeros(n)
    if design is not None:
        fit = np.unique(np.linspace(0, n - 1, min(n, _MAX_FIT_ROWS)).astype(np.int64))
        d_fit, ly_fit = design[fit], ly[fit]
        codes_fit = pd.factorize(codes[fit])[0]
        fitted_fit = np.zeros(len(fit))
        for _ in range(3):
            center, scale = _robust_center_scale(ly_fit - fitted_fit, codes_fit, min_group)
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
    center, scale = _robust_center_scale(ly - fitted, codes, min_group)
    resid = ly - fitted - center
    # residuals of a fit with p_eff coefficients (response surface, own group centres) are
    # smaller than the noise by about sqrt((n - p_eff) / n): undo it so that small tables
    # are not flagged for ordinary draws
    sizes = np.bincount(codes)
    p_eff = (0 if design is None else design.shape[1]) + max(int((sizes >= min_group).sum()), 1)
    scale = scale * np.sqrt(n / max(n - p_eff, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(scale > 0, resid / scale, 0.0)
    return z


def _handle_outliers(state: _State, params: Sequence[str], groups: Sequence[str], pol):
    if schema.RESPONSE not in state.df.columns:
        return
    idx = np.flatnonzero(state.alive)
    sub = state.df.iloc[idx]
    z = _outlier_scores(sub, params, groups, int(pol.outlier_min_group))
    with np.errstate(invalid="ignore"):
        hit = np.abs(z) > pol.outlier_threshold
    rows = idx[hit]
    if len(rows) == 0:
        return
    y = state.df[schema.RESPONSE].to_numpy()
    reasons = np.array(
        [
            f"outlier: robust z = {zz:+.1f} (|z| > {pol.outlier_threshold:g}) for log-yield "
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
        state.drop(mask, schema.RESPONSE, full, y)
    else:
        state.log.add(rows, schema.RESPONSE, "flagged", reasons, y[rows], y[rows])


# ----------------------------------------------------------------------------- entry point
def clean(
    table: pd.DataFrame,
    policy: CleanPolicy | Mapping[str, Any] | str | None = None,
    *,
    columns: Mapping[str, str] | None = None,
) -> CleanResult:
    """Clean a raw batch table and return the cleaned table with an audit log.

    Parameters
    ----------
    table : pandas.DataFrame
        Raw batch table: the four parameters of :data:`bayesbio.schema.PARAMETERS` are
        required; ``batch_id``, ``yield`` and group columns are used when present. Never
        modified.
    policy : CleanPolicy, dict or str, optional
        A :class:`CleanPolicy`, a dict of its fields (unknown keys raise ``ValueError``) or a
        name from :data:`POLICIES` (``"default"``, ``"strict"``, ``"impute"``,
        ``"impute_median"``). Default: ``CleanPolicy()``.
    columns : mapping of str to str, optional
        ``{user_name: schema_name}`` for tables with other column names; the result uses
        schema names.

    Returns
    -------
    CleanResult
        ``table``: the kept rows (index labels from the input), passing
        :func:`bayesbio.schema.validate`; ``log``: one row per action with columns
        ``batch_id, row, column, action, reason, old_value, new_value`` where ``row`` is the
        position in the input and ``action`` is ``dropped``, ``repaired``, ``flagged`` or
        ``imputed``.

    Raises
    ------
    SchemaError
        If ``table`` is not a DataFrame, is empty, has duplicate column names, lacks a
        parameter column, or holds values that are neither numbers nor recognised
        number-with-unit text.
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
    df = schema.rename_columns(table, columns)
    if df.columns.duplicated().any():
        dup = sorted(set(df.columns[df.columns.duplicated()].astype(str)))
        raise schema.SchemaError(f"duplicate column names {dup}; each column must appear once")
    if len(df) == 0:
        raise schema.SchemaError("table has 0 rows; nothing to clean")
    missing_cols = [c for c in schema.PARAMETERS if c not in df.columns]
    if missing_cols:
        lower = {str(c).lower(): c for c in df.columns}
        near = {m: lower[m.lower()] for m in missing_cols if m.lower() in lower}
        hint = f"; did you mean {near}?" if near else "."
        raise schema.SchemaError(
            f"missing required column(s) {missing_cols}; the table has {list(df.columns)}"
            f"{hint} pass columns={{user_name: schema_name}} to map names"
        )
    groups = list(schema.group_columns(df, pol.groups))
    if pol.groups is not None:
        absent = [g for g in pol.groups if g not in df.columns]
        if absent:
            raise schema.SchemaError(
                f"policy groups {absent} are not columns of the table {list(df.columns)}"
            )
    params = list(schema.PARAMETERS)
    numeric = params + ([schema.RESPONSE] if schema.RESPONSE in df.columns else [])

    df = df.copy(deep=True)
    original_index = df.index
    df = df.reset_index(drop=True)
    ids = None
    if schema.BATCH_ID in df.columns:
        ids = df[schema.BATCH_ID].to_numpy(dtype=object)
    state = _State(df, _Log(ids, len(df)))

    for col in numeric:
        _coerce_numeric(state, col)
    if schema.BATCH_ID in df.columns:
        na = pd.isna(df[schema.BATCH_ID]).to_numpy()
        state.drop(na, schema.BATCH_ID, "missing batch_id")
    for g in groups:
        _normalize_group(state, g, pol.normalize_labels)
    if pol.unit_repair:
        _repair_units(state)
    _drop_impossible(state, numeric)
    _drop_duplicates(state, numeric, groups, float(pol.near_duplicate_tol))
    _handle_missing(state, params, groups, pol.missing)
    _handle_outliers(state, params, [g for g in groups if g != "campaign"] or groups, pol)

    log = state.log.frame()
    kept = np.flatnonzero(state.alive)
    out = state.df.iloc[kept].copy()
    out.index = original_index[kept]
    if len(out):
        out = schema.validate(
            out,
            require_response=schema.RESPONSE in out.columns,
            groups=groups or None,
        )
    counts = log["action"].value_counts().to_dict()
    _log.info("cleaned %d rows: kept %d; actions %s", state.n, len(out), counts)
    return CleanResult(out, log)
