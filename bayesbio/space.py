"""The declared contract of a process: factors, response, groups, units and column names.

A :class:`ProcessSpace` says what a batch table of *one* upstream process holds and what the
numbers mean. Every stage of bayesbio (validation, cleaning, EDA, features, models,
recommendations, design spaces, the study, the report and the CLI) reads it instead of
module-level constants, so a process with other factors, units, ranges or group columns is
declared once and used everywhere.

>>> from bayesbio.space import ProcessSpace
>>> space = ProcessSpace.default()            # the four-factor cell-culture demo process
>>> space.factor_names
('mixing_time', 'temperature', 'ph', 'dissolved_oxygen')

A space is frozen and validated on construction; :meth:`ProcessSpace.from_toml` reads one from
a TOML file (``bayesbio init-process --data my.csv`` writes a starter file)::

    [process]
    name = "Microbial fed-batch"
    batch_id = "batch_id"
    groups = ["scale", "site"]          # hierarchy order: outermost first

    [[factors]]
    name = "temperature"
    unit = "degC"
    label = "Temperature"
    operating = [25.0, 32.0]            # where recommendations are searched; sets the scaling
    limits = [4.0, 50.0]                # values outside are impossible (data errors)

    [response]
    name = "yield"
    unit = "g/L"
    limits = [0.0, 200.0]
    direction = "maximise"              # or "minimise" (e.g. an impurity)

    [columns]                           # the data file's own column names (and units)
    "Temp (F)" = { to = "temperature", unit = "degF" }
    "Titer" = "yield"

Units are declared, never guessed: a column declared in another unit than its factor's (``min``
for a factor in ``s``) is converted with `pint <https://pint.readthedocs.io>`_ and the
conversion is logged by :meth:`ProcessSpace.map_columns`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pint

__all__ = [
    "DIRECTIONS",
    "ColumnSpec",
    "Factor",
    "ProcessSpace",
    "Response",
    "SpaceError",
    "convert_units",
    "infer_space",
    "resolve_space",
    "space_to_starter_toml",
]

#: Accepted response directions (British spelling canonical; US spelling accepted).
DIRECTIONS: tuple[str, ...] = ("maximise", "minimise")
_DIRECTION_ALIASES = {
    "maximize": "maximise",
    "minimize": "minimise",
    "max": "maximise",
    "min": "minimise",
}


class SpaceError(ValueError):
    """A process space (or a table checked against one) is inconsistent; the message says where."""


# --------------------------------------------------------------------------------------------
# units
# --------------------------------------------------------------------------------------------
# Spellings that pint cannot parse (or would misread: "pH" is a picohenry to pint) mapped to
# registry names. Keys are compared after stripping and lower-casing.
_UNIT_SPELLINGS: dict[str, str] = {
    "": "dimensionless",
    "-": "dimensionless",
    "--": "dimensionless",
    "1": "dimensionless",
    "ph": "pH_unit",
    "ph unit": "pH_unit",
    "ph units": "pH_unit",
    "% air sat.": "percent_air_saturation",
    "% air sat": "percent_air_saturation",
    "% air saturation": "percent_air_saturation",
    "%air sat.": "percent_air_saturation",
    "% sat.": "percent_air_saturation",
    "% sat": "percent_air_saturation",
    "%do": "percent_air_saturation",
    "% do": "percent_air_saturation",
    "%": "percent",
    "°c": "degC",
    "deg c": "degC",
    "celsius": "degC",
    "°f": "degF",
    "deg f": "degF",
    "fahrenheit": "degF",
    "todo": "",
}


@cache
def _registry() -> pint.UnitRegistry:
    ureg = pint.UnitRegistry()
    ureg.define("air_saturation = [oxygen_saturation]")
    ureg.define("percent_air_saturation = 0.01 * air_saturation")
    ureg.define("pH_unit = [acidity]")
    ureg.define("cell = [cell_count] = cells")
    ureg.define("vvm = 1 / minute")
    return ureg


def _parse_unit(unit: str, where: str) -> pint.Unit:
    """Parse a declared unit string; :class:`SpaceError` naming ``where`` if it is unknown."""
    if not isinstance(unit, str):
        raise SpaceError(f"{where}: unit must be a string, got {type(unit).__name__}")
    key = unit.strip()
    name = _UNIT_SPELLINGS.get(key.lower(), key)
    if name == "" and key.lower() == "todo":
        raise SpaceError(
            f"{where}: unit is still 'TODO'; write the unit the values are recorded in "
            "(e.g. 's', 'min', 'degC', 'g/L', 'rpm', '% air sat.', 'pH')"
        )
    try:
        return _registry().parse_units(name)
    except Exception as exc:  # pint raises several types for bad strings
        raise SpaceError(
            f"{where}: unknown unit {unit!r} ({exc}); use a unit pint understands, e.g. 's', "
            "'min', 'h', 'degC', 'degF', 'K', 'g/L', 'mg/L', 'rpm', 'mL/h', '% air sat.', 'pH'"
        ) from None


def number_text(value: float, digits: int = 3) -> str:
    """Return a value for people: ``digits`` significant digits, no exponent where avoidable.

    ``1344.7 -> "1345"`` (not ``"1.34e+03"``), ``0.0123 -> "0.0123"``, ``36.54 -> "36.5"``;
    an exponent only below 0.001 or from a million.

    Parameters
    ----------
    value : float
        The number (NaN and infinities are written as Python writes them).
    digits : int, default 3
        Significant digits below 1000.
    """
    x = float(value)
    text = f"{x:.{digits}g}"
    if "e" in text and 1e-3 <= abs(x) < 1e6:
        text = f"{x:.0f}" if abs(x) >= 1 else f"{x:.{digits + 3}f}".rstrip("0")
    return text


def convert_units(values: Any, from_unit: str, to_unit: str) -> np.ndarray:
    """Convert numbers from one declared unit to another (offset units such as degF included).

    Parameters
    ----------
    values : array-like of float
        Values recorded in ``from_unit``; NaN stays NaN.
    from_unit, to_unit : str
        Declared unit strings (see :class:`Factor`).

    Returns
    -------
    numpy.ndarray
        The values in ``to_unit``.

    Raises
    ------
    SpaceError
        If a unit is unknown or the two are not convertible (e.g. ``mg/L`` to ``% air sat.``).
    """
    src = _parse_unit(from_unit, "from_unit")
    dst = _parse_unit(to_unit, "to_unit")
    arr = np.asarray(values, dtype=np.float64)
    if src == dst:
        return arr.copy()
    try:
        out = np.asarray(_registry().Quantity(arr, src).to(dst).magnitude, dtype=np.float64)
    except pint.DimensionalityError:
        raise SpaceError(
            f"cannot convert {from_unit!r} to {to_unit!r}: different dimensions "
            f"({src.dimensionality} vs {dst.dimensionality})"
        ) from None
    return conversion_digits(out)


def conversion_digits(values: np.ndarray) -> np.ndarray:
    """Round converted values to 12 significant digits, far beyond any measurement.

    98.6 degF is 37 degC, not 36.99999999999999: the floating-point noise of a conversion
    would otherwise reach every written table. Non-finite values and zeros pass unchanged.
    """
    out = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(out) & (out != 0)
    mag = np.floor(np.log10(np.abs(np.where(finite, out, 1.0))))
    scale = 10.0 ** (11 - mag)
    return np.where(finite, np.round(out * scale) / scale, out)


def _same_unit(a: str, b: str) -> bool:
    return _parse_unit(a, "unit") == _parse_unit(b, "unit")


# --------------------------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------------------------
def _pair(value: Any, where: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise SpaceError(f"{where} must be two numbers [low, high], got {value!r}") from None
    if math.isnan(lo) or math.isnan(hi):
        raise SpaceError(f"{where} must be two numbers [low, high], got {value!r}")
    return lo, hi


def _check_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise SpaceError(f"{where}: name must be a non-empty string, got {name!r}")
    if name != name.strip():
        raise SpaceError(f"{where}: name {name!r} has leading or trailing spaces")
    if "/" in name:
        # names become variables of the saved model (netCDF groups are '/'-separated paths)
        raise SpaceError(
            f"{where}: name {name!r} contains '/', which a saved model cannot hold; name it "
            f"e.g. {safe_name(name)!r} and map the data file's column onto it under "
            f'[columns]: "{name}" = "{safe_name(name)}"'
        )
    return name


def _default_label(name: str) -> str:
    """``"mixing_time"`` -> ``"Mixing time"``; a name with capitals is kept (``"pH"``)."""
    text = name.replace("_", " ")
    if text.lower() == "ph":
        return "pH"
    return text if any(c.isupper() for c in text) else text[:1].upper() + text[1:]


def safe_name(column: str) -> str:
    """Return a space name for a data column: ``/`` written as ``per``.

    ``"Titer (mg/L)"`` -> ``"Titer (mg per L)"``; other names are returned as they are.
    """
    return re.sub(r"\s*/\s*", " per ", column).strip()


@dataclass(frozen=True)
class Factor:
    """A process factor (a setpoint the scientist chooses).

    Parameters
    ----------
    name : str
        Column name in the batch table (after mapping), e.g. ``"temperature"``.
    unit : str
        The unit the values are in, e.g. ``"degC"``, ``"s"``, ``"rpm"``, ``"% air sat."``,
        ``"pH"`` (pint spelling; see :func:`convert_units`).
    operating : tuple of float
        Operating range ``(low, high)``: where recommendations are searched and what the
        models scale to [-1, 1].
    limits : tuple of float, optional
        Hard physical limits; values outside are impossible (data errors). Must contain the
        operating range. Default: unbounded.
    label : str, optional
        Human-readable name for axes and tables (default: the name, spaced).
    fixed : float, optional
        Hold this factor at this value in recommendations and design spaces.
    short : str, optional
        Short token used in model term names (default: the name).
    """

    name: str
    unit: str
    operating: tuple[float, float]
    limits: tuple[float, float] = (-math.inf, math.inf)
    label: str = ""
    fixed: float | None = None
    short: str = ""

    def __post_init__(self) -> None:
        where = f"factor {self.name!r}"
        _check_name(self.name, "factor")
        _parse_unit(self.unit, where)
        lo, hi = _pair(self.operating, f"{where}: operating range")
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise SpaceError(f"{where}: operating range must be finite, got [{lo:g}, {hi:g}]")
        if lo >= hi:
            raise SpaceError(
                f"{where}: operating range [{lo:g}, {hi:g}] is inverted or empty; write it as "
                "[low, high] with low < high"
            )
        llo, lhi = _pair(self.limits, f"{where}: limits")
        if llo >= lhi:
            raise SpaceError(f"{where}: limits [{llo:g}, {lhi:g}] are inverted or empty")
        if llo > lo or lhi < hi:
            raise SpaceError(
                f"{where}: limits [{llo:g}, {lhi:g}] must contain the operating range "
                f"[{lo:g}, {hi:g}] (limits are what is physically possible, the operating range "
                "is where the process runs)"
            )
        object.__setattr__(self, "operating", (lo, hi))
        object.__setattr__(self, "limits", (llo, lhi))
        if self.fixed is not None:
            try:
                fixed = float(self.fixed)
            except (TypeError, ValueError):
                raise SpaceError(f"{where}: fixed must be a number, got {self.fixed!r}") from None
            if not (llo <= fixed <= lhi) or math.isnan(fixed):
                raise SpaceError(
                    f"{where}: fixed value {fixed:g} is outside the limits [{llo:g}, {lhi:g}]"
                )
            object.__setattr__(self, "fixed", fixed)
        if not self.label:
            object.__setattr__(self, "label", _default_label(self.name))
        if not self.short:
            object.__setattr__(self, "short", self.name)

    @property
    def centre(self) -> float:
        """Centre of the operating range."""
        return (self.operating[0] + self.operating[1]) / 2.0

    @property
    def half_width(self) -> float:
        """Half the width of the operating range (the model's unit of standardised distance)."""
        return (self.operating[1] - self.operating[0]) / 2.0

    @property
    def axis_label(self) -> str:
        """``"Label [unit]"`` for plots and tables."""
        return _axis_label(self.label, self.unit)


@dataclass(frozen=True)
class Response:
    """The measured response of a batch (yield, titer, impurity, ...).

    Parameters
    ----------
    name : str
        Column name, default ``"yield"``.
    unit : str
        Unit, default ``"g/L"``.
    limits : tuple of float
        Hard physical limits (impossible values outside). The models work on the log scale, so
        the lower limit must be >= 0.
    direction : {"maximise", "minimise"}
        Whether more is better.
    label : str, optional
        Human-readable name.
    typical : tuple of float, optional
        The range normal batches reach; used only for plausibility checks and plots.
    """

    name: str = "yield"
    unit: str = "g/L"
    limits: tuple[float, float] = (0.0, math.inf)
    direction: str = "maximise"
    label: str = ""
    typical: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        where = f"response {self.name!r}"
        _check_name(self.name, "response")
        _parse_unit(self.unit, where)
        lo, hi = _pair(self.limits, f"{where}: limits")
        if lo >= hi:
            raise SpaceError(f"{where}: limits [{lo:g}, {hi:g}] are inverted or empty")
        if lo < 0:
            raise SpaceError(
                f"{where}: lower limit {lo:g} is negative; responses are modelled on the log "
                "scale and must be >= 0"
            )
        object.__setattr__(self, "limits", (lo, hi))
        direction = str(self.direction).strip().lower()
        direction = _DIRECTION_ALIASES.get(direction, direction)
        if direction not in DIRECTIONS:
            raise SpaceError(
                f"{where}: direction must be one of {list(DIRECTIONS)}, got {self.direction!r}"
            )
        object.__setattr__(self, "direction", direction)
        if self.typical is not None:
            tlo, thi = _pair(self.typical, f"{where}: typical range")
            if tlo >= thi or tlo < lo or thi > hi:
                raise SpaceError(
                    f"{where}: typical range [{tlo:g}, {thi:g}] must be increasing and inside "
                    f"the limits [{lo:g}, {hi:g}]"
                )
            object.__setattr__(self, "typical", (tlo, thi))
        if not self.label:
            object.__setattr__(self, "label", _default_label(self.name))

    @property
    def maximise(self) -> bool:
        """True when a larger response is better."""
        return self.direction == "maximise"

    @property
    def axis_label(self) -> str:
        """``"Label [unit]"`` for plots and tables."""
        return _axis_label(self.label, self.unit)

    @property
    def noun(self) -> str:
        """The response inside a sentence: ``"Titer [g/L]"`` -> ``"titer"``; ``"HCP"`` kept.

        The label without what it says in brackets at its end (a unit, or a gloss such as
        ``"Yield (titer)"``), first letter lower-cased unless the word is an abbreviation; the
        column name is for messages about the column itself.
        """
        text = _BRACKET_TAIL.sub("", self.label).strip() or self.label
        return lower_first(text)


@dataclass(frozen=True)
class ColumnSpec:
    """How one column of a user's file maps onto the space.

    Parameters
    ----------
    source : str
        The column name in the file (matched case- and space-insensitively).
    target : str
        The space's name for it (a factor, the response, a group column or the batch id).
    unit : str, optional
        The unit the file records it in, when it differs from the factor's unit; the values are
        converted and the conversion is logged.
    """

    source: str
    target: str
    unit: str | None = None


_UNITLESS = frozenset({"", "-", "--", "1", "ph", "dimensionless"})
_DISPLAY_UNITS = {"degc": "°C", "celsius": "°C", "degf": "°F", "percent": "%", "pct": "%"}


def display_unit(unit: str) -> str:
    """Return a unit as people write it, for reports and plots; ``""`` for none and for pH.

    ``"degC"`` -> ``"°C"``, ``"percent"`` -> ``"%"``, ``"m**3"`` -> ``"m³"``; other units as
    declared. Declarations (TOML, messages about the declared unit) keep the declared spelling.
    """
    shown = str(unit).strip()
    if shown.lower() in _UNITLESS:
        return ""
    shown = _DISPLAY_UNITS.get(shown.lower(), shown)
    for power, sup in (("2", "²"), ("3", "³")):
        shown = shown.replace(f"**{power}", sup).replace(f"^{power}", sup)
    return shown


def unit_suffix(unit: str) -> str:
    """Return ``" °C"`` (a space, then :func:`display_unit`), or ``""`` for no unit and pH."""
    shown = display_unit(unit)
    return f" {shown}" if shown else ""


#: What a label says in brackets or parentheses at its end (``"Temp (°C)"``: ``°C``).
_BRACKET_TAIL = re.compile(r"\s*[\[(]([^\[\]()]*)[\])]\s*$")


def with_unit(text: str, unit: str) -> str:
    """Return ``"Temperature [°C]"``: ``text`` and its unit for headers and axes.

    Nothing is added for no unit or pH, nor to a text that already ends with its unit in
    brackets or parentheses (a column headed ``"Temp [°C]"`` is not ``"Temp [°C] [°C]"``).
    """
    shown = display_unit(unit)
    if not shown:
        return str(text)
    end = _BRACKET_TAIL.search(str(text))
    if end and _names_a_unit(end.group(1).strip(), unit, shown):
        return str(text)
    return f"{text} [{shown}]"


def bare_label(text: str, unit: str) -> str:
    """Return a label without the unit in brackets at its end: ``"Temp. (°C)"`` -> ``"Temp."``.

    For sentences that give the unit after the value (``"Temp. 36.5 °C"``); a label whose
    bracketed tail is not its unit is returned as it is.
    """
    text = str(text)
    end = _BRACKET_TAIL.search(text)
    if not end or end.start() == 0:
        return text
    inside = end.group(1).strip()
    if not _names_a_unit(inside, unit, display_unit(unit)) and inside.lower() not in ("%", "-"):
        return text
    return text[: end.start()].rstrip()


def lower_first(text: str) -> str:
    """``"Titer"`` -> ``"titer"`` inside a sentence; ``"HCP"``, ``"pH"``, ``"DO"`` kept."""
    text = str(text)
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text


def quantity_text(label: str, value: float, unit: str, digits: int = 4) -> str:
    """``"Temp. 36.5 °C"``: a label without its bracketed unit, the value, the shown unit."""
    return f"{bare_label(label, unit)} {number_text(value, digits)}{unit_suffix(unit)}"


def _names_a_unit(inside: str, unit: str, shown: str) -> bool:
    """Return True when a bracketed tail such as ``"mg/L"`` or ``"°C"`` is a unit."""
    if inside in (unit.strip(), shown) or inside.replace(" per ", "/") in (unit.strip(), shown):
        return True
    try:
        _parse_unit(inside.replace(" per ", "/"), "unit")
    except SpaceError:
        return False
    return len(inside) >= 2  # "(A)" is a label more often than an ampere


def _axis_label(label: str, unit: str) -> str:
    return with_unit(label, unit)


def _norm(name: Any) -> str:
    """Normalise a column name for forgiving matching: case, spaces, dashes, underscores."""
    return re.sub(r"[\s_\-]+", "_", str(name).strip().lower())


# --------------------------------------------------------------------------------------------
# the space
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProcessSpace:
    """The declared contract of one process (frozen; validated on construction).

    Parameters
    ----------
    factors : sequence of Factor
        The process factors (k >= 1), in the order models and tables use.
    response : Response, optional
        The response; default ``yield`` in g/L, maximised.
    groups : sequence of str, optional
        Group columns in hierarchy order, outermost first (e.g. scale > site > campaign).
        Columns that a table lacks are simply not used.
    batch_id : str, optional
        Name of the batch identifier column.
    columns : sequence of ColumnSpec, optional
        The data file's own names (and units) for the space's columns.
    name : str, optional
        Name of the process, shown in reports.

    Raises
    ------
    SpaceError
        Naming the factor or column: no factors, duplicate names, an inverted range, limits
        that do not contain the operating range, an unknown unit, a column mapped to a name
        the space does not have, a unit on a column that is not convertible.
    """

    factors: tuple[Factor, ...]
    response: Response = field(default_factory=Response)
    groups: tuple[str, ...] = ("scale", "site", "campaign")
    batch_id: str = "batch_id"
    columns: tuple[ColumnSpec, ...] = ()
    name: str = "process"

    def __post_init__(self) -> None:
        factors = tuple(self.factors) if not isinstance(self.factors, Factor) else (self.factors,)
        if not factors:
            raise SpaceError("a process space needs at least one factor")
        bad = [f for f in factors if not isinstance(f, Factor)]
        if bad:
            raise SpaceError(f"factors must be Factor objects, got {type(bad[0]).__name__}")
        if not isinstance(self.response, Response):
            raise SpaceError(f"response must be a Response, got {type(self.response).__name__}")
        if isinstance(self.groups, str):
            raise SpaceError(
                f"groups must be a list of column names, got the string {self.groups!r}"
            )
        groups = tuple(_check_name(g, "group column") for g in self.groups)
        batch_id = _check_name(self.batch_id, "batch_id")
        names = [f.name for f in factors] + [self.response.name, *groups, batch_id]
        seen: dict[str, str] = {}
        for n in names:
            key = _norm(n)
            if key in seen:
                raise SpaceError(
                    f"duplicate name {n!r} (same as {seen[key]!r} up to case and spaces): "
                    "factor, response, group and batch-id names must all differ"
                )
            seen[key] = n
        shorts = [f.short for f in factors]
        dup_short = sorted({s for s in shorts if shorts.count(s) > 1})
        if dup_short:
            raise SpaceError(f"duplicate factor short name(s) {dup_short}")
        columns = tuple(c if isinstance(c, ColumnSpec) else ColumnSpec(*c) for c in self.columns)
        targets = {f.name: f.unit for f in factors}
        targets[self.response.name] = self.response.unit
        sources: set[str] = set()
        for c in columns:
            if c.target not in targets and c.target not in groups and c.target != batch_id:
                raise SpaceError(
                    f"column mapping {c.source!r} -> {c.target!r}: the space has no column "
                    f"{c.target!r}; known names are {sorted(names)}"
                )
            if _norm(c.source) in sources:
                raise SpaceError(f"column {c.source!r} is mapped twice")
            sources.add(_norm(c.source))
            if c.unit is not None:
                if c.target not in targets:
                    raise SpaceError(
                        f"column mapping {c.source!r} -> {c.target!r}: a unit is given but "
                        f"{c.target!r} is not numeric (a group or id column)"
                    )
                try:
                    convert_units([1.0], c.unit, targets[c.target])
                except SpaceError as exc:
                    raise SpaceError(f"column {c.source!r} -> {c.target!r}: {exc}") from None
        mapped = [c.target for c in columns]
        twice = sorted({t for t in mapped if mapped.count(t) > 1})
        if twice:
            raise SpaceError(f"several columns are mapped to {twice}")
        object.__setattr__(self, "factors", factors)
        object.__setattr__(self, "groups", groups)
        # One canonical order (plain renames first, the order TOML writes them in; then by
        # source name), so a space read back from its TOML file or from a saved model's JSON
        # (whose keys are sorted) compares equal.
        columns = tuple(sorted(columns, key=lambda c: (c.unit is not None, _norm(c.source))))
        object.__setattr__(self, "columns", columns)

    # ---------------------------------------------------------------- constructors
    @classmethod
    def default(cls) -> ProcessSpace:
        """Return the demo process: four-factor mammalian cell culture, yield in g/L."""
        return _default_space()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProcessSpace:
        """Build a space from the TOML layout (see the module docstring) as a dictionary."""
        if not isinstance(data, Mapping):
            raise SpaceError(f"a process space must be a table/dict, got {type(data).__name__}")
        known = {"process", "factors", "response", "columns"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpaceError(f"unknown section(s) {unknown}; expected {sorted(known)}")
        proc = dict(data.get("process", {}))
        raw_factors = data.get("factors")
        if not raw_factors:
            raise SpaceError("no [[factors]] declared; a process space needs at least one")
        factors = []
        for i, raw in enumerate(raw_factors):
            factors.append(_from_fields(Factor, raw, f"[[factors]] entry {i + 1}"))
        response = _from_fields(Response, data.get("response", {}), "[response]")
        columns = []
        for source, spec in dict(data.get("columns", {})).items():
            if isinstance(spec, str):
                columns.append(ColumnSpec(source, spec))
            elif isinstance(spec, Mapping):
                extra = sorted(set(spec) - {"to", "unit"})
                if extra or "to" not in spec:
                    raise SpaceError(
                        f'[columns] {source!r}: write either "name" or {{ to = "name", '
                        f'unit = "..." }}; got keys {sorted(spec)}'
                    )
                columns.append(ColumnSpec(source, spec["to"], spec.get("unit")))
            else:
                raise SpaceError(f"[columns] {source!r}: expected a name or a table, got {spec!r}")
        extra = sorted(set(proc) - {"name", "groups", "batch_id"})
        if extra:
            raise SpaceError(f"[process]: unknown key(s) {extra}; expected name, groups, batch_id")
        kwargs: dict[str, Any] = {
            "factors": tuple(factors),
            "response": response,
            "columns": tuple(columns),
        }
        if "groups" in proc:
            kwargs["groups"] = (
                tuple(proc["groups"]) if not isinstance(proc["groups"], str) else proc["groups"]
            )
        for key in ("batch_id", "name"):
            if key in proc:
                kwargs[key] = proc[key]
        return cls(**kwargs)

    @classmethod
    def from_toml(cls, path: str | Path) -> ProcessSpace:
        """Read a space from a TOML file.

        Raises
        ------
        SpaceError
            If the file is missing, is not valid TOML or declares an inconsistent space; the
            message names the file.
        """
        path = Path(path)
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise SpaceError(f"process file {str(path)!r} not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise SpaceError(f"process file {str(path)!r} is not valid TOML: {exc}") from None
        try:
            return cls.from_dict(data)
        except SpaceError as exc:
            raise SpaceError(f"process file {str(path)!r}: {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> ProcessSpace:
        """Inverse of :meth:`to_json` (used to store a space with a fitted model)."""
        try:
            data = json.loads(text)
        except (TypeError, json.JSONDecodeError) as exc:
            raise SpaceError(f"stored process space is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    # ---------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """Return the TOML layout as a dictionary (default, unbounded limits omitted).

        A half-bounded range such as a factor's ``[0, inf]`` is written (TOML reads ``inf``);
        the response's default ``[0, inf]`` is left out.
        """

        def clean(d: dict[str, Any], default: tuple[float, float]) -> dict[str, Any]:
            out = {}
            for k, v in d.items():
                if v is None:
                    continue
                if isinstance(v, tuple):
                    if all(math.isinf(x) for x in v) or (k == "limits" and v == default):
                        continue
                    v = list(v)
                out[k] = v
            return out

        factors = []
        for f in self.factors:
            d = clean(
                {
                    "name": f.name,
                    "unit": f.unit,
                    "label": f.label,
                    "operating": f.operating,
                    "limits": f.limits,
                    "fixed": f.fixed,
                    "short": f.short if f.short != f.name else None,
                },
                (-math.inf, math.inf),
            )
            factors.append(d)
        r = self.response
        response = clean(
            {
                "name": r.name,
                "unit": r.unit,
                "label": r.label,
                "limits": r.limits,
                "direction": r.direction,
                "typical": r.typical,
            },
            (0.0, math.inf),
        )
        columns: dict[str, Any] = {}
        for c in self.columns:
            columns[c.source] = c.target if c.unit is None else {"to": c.target, "unit": c.unit}
        out: dict[str, Any] = {
            "process": {"name": self.name, "batch_id": self.batch_id, "groups": list(self.groups)},
            "factors": factors,
            "response": response,
        }
        if columns:
            out["columns"] = columns
        return out

    def to_toml(self, path: str | Path | None = None) -> str:
        """Return the space as TOML text, and write it to ``path`` when given."""
        import tomli_w

        text = tomli_w.dumps(self.to_dict())
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def to_json(self) -> str:
        """Return the space as compact JSON (stored with fitted models)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def fingerprint(self) -> str:
        """A short hash of what the models depend on (factors, response, groups, batch id)."""
        d = self.to_dict()
        d.pop("columns", None)
        d["process"].pop("name", None)
        blob = json.dumps(d, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    # ---------------------------------------------------------------- accessors
    @property
    def k(self) -> int:
        """Number of factors."""
        return len(self.factors)

    @property
    def factor_names(self) -> tuple[str, ...]:
        """Factor column names in model order."""
        return tuple(f.name for f in self.factors)

    @property
    def free_factors(self) -> tuple[str, ...]:
        """Factors that recommendations may move (not ``fixed``)."""
        return tuple(f.name for f in self.factors if f.fixed is None)

    @property
    def numeric_columns(self) -> tuple[str, ...]:
        """Factors and the response."""
        return (*self.factor_names, self.response.name)

    def factor(self, name: str) -> Factor:
        """Return the factor called ``name``; :class:`SpaceError` listing the known ones."""
        for f in self.factors:
            if f.name == name:
                return f
        raise SpaceError(f"unknown factor {name!r}; this process has {list(self.factor_names)}")

    def factor_name(self, text: str) -> str | None:
        """Return the factor ``text`` means, or None.

        Users name a factor as its name, its label or their file's header for it (a
        ``[columns]`` source), in any letter case: a process drafted from a header such as
        ``"Feed rate (%/d)"`` names the factor ``"Feed rate (% per d)"``, and people type
        what their file says.
        """
        names = self.factor_names
        if text in names:
            return text
        aliases = {f.label: f.name for f in self.factors}
        aliases.update({c.source: c.target for c in self.columns if c.target in names})
        aliases.update({n: n for n in names})
        folded = {str(k).strip().lower(): v for k, v in aliases.items()}
        return folded.get(str(text).strip().lower())

    @property
    def bounds(self) -> dict[str, tuple[float, float]]:
        """Operating range per factor (and the response's typical range when declared)."""
        out = {f.name: f.operating for f in self.factors}
        if self.response.typical is not None:
            out[self.response.name] = self.response.typical
        return out

    @property
    def limits(self) -> dict[str, tuple[float, float]]:
        """Hard physical limits per factor and for the response."""
        out = {f.name: f.limits for f in self.factors}
        out[self.response.name] = self.response.limits
        return out

    @property
    def units(self) -> dict[str, str]:
        """Unit per factor and for the response."""
        out = {f.name: f.unit for f in self.factors}
        out[self.response.name] = self.response.unit
        return out

    @property
    def fixed(self) -> dict[str, float]:
        """Fixed factors and their values."""
        return {f.name: float(f.fixed) for f in self.factors if f.fixed is not None}

    @property
    def centre(self) -> np.ndarray:
        """Centres of the operating ranges, shape ``(k,)``."""
        return np.array([f.centre for f in self.factors])

    @property
    def half_width(self) -> np.ndarray:
        """Half-widths of the operating ranges, shape ``(k,)``."""
        return np.array([f.half_width for f in self.factors])

    @property
    def lower(self) -> np.ndarray:
        """Lower ends of the operating ranges, shape ``(k,)``."""
        return np.array([f.operating[0] for f in self.factors])

    @property
    def upper(self) -> np.ndarray:
        """Upper ends of the operating ranges, shape ``(k,)``."""
        return np.array([f.operating[1] for f in self.factors])

    def short(self, name: str) -> str:
        """Short token of a factor (model term names)."""
        return self.factor(name).short

    def label(self, column: str) -> str:
        """Human-readable label of a factor, the response, or the column name itself."""
        if column == self.response.name:
            return self.response.label
        for f in self.factors:
            if f.name == column:
                return f.label
        return column

    def axis_label(self, column: str) -> str:
        """``"Label [unit]"`` for a factor or the response, else the column name."""
        if column == self.response.name:
            return self.response.axis_label
        for f in self.factors:
            if f.name == column:
                return f.axis_label
        return column

    def group_columns(self, table: pd.DataFrame, groups: Sequence[str] | None = None) -> list[str]:
        """Return the group columns (``groups`` or the space's, in hierarchy order) in ``table``."""
        wanted = self.groups if groups is None else tuple(groups)
        return [g for g in wanted if g in table.columns]

    # ---------------------------------------------------------------- transforms
    def standardise(self, table: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Return ``(n, k)`` factors scaled so each operating range maps to [-1, 1]."""
        if isinstance(table, pd.DataFrame):
            missing = [c for c in self.factor_names if c not in table.columns]
            if missing:
                raise SpaceError(
                    f"table lacks factor column(s) {missing}; it has {list(table.columns)}"
                )
            x = table.loc[:, list(self.factor_names)].to_numpy(dtype=np.float64)
        else:
            x = np.asarray(table, dtype=np.float64)
            if x.ndim != 2 or x.shape[1] != self.k:
                raise SpaceError(f"expected an array of shape (n, {self.k}), got {x.shape}")
        return (x - self.centre) / self.half_width

    def unstandardise(self, z: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`standardise` (returns an array in domain units)."""
        return np.asarray(z, dtype=np.float64) * self.half_width + self.centre

    def with_changes(self, **changes: Any) -> ProcessSpace:
        """Return a copy with fields replaced (validated again)."""
        return replace(self, **changes)

    def with_factors(self, names: Iterable[str]) -> ProcessSpace:
        """Return a copy restricted to the named factors (in the space's order)."""
        wanted = list(names)
        for n in wanted:
            self.factor(n)
        kept = tuple(f for f in self.factors if f.name in wanted)
        cols = tuple(
            c for c in self.columns if c.target not in set(self.factor_names) - set(wanted)
        )
        return replace(self, factors=kept, columns=cols)

    # ---------------------------------------------------------------- tables
    def map_columns(self, table: pd.DataFrame) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
        """Rename a user's columns onto the space and convert declared units.

        Declared :attr:`columns` are applied first (matched case- and space-insensitively),
        then any of the space's own names that the table spells differently (``Scale`` for
        ``scale``, ``Batch ID`` for ``batch_id``) are renamed. Values in a declared unit other
        than the factor's are converted. Nothing is dropped.

        Parameters
        ----------
        table : pandas.DataFrame
            The user's table; not modified.

        Returns
        -------
        table : pandas.DataFrame
            A renamed, converted copy.
        actions : list of dict
            One entry per column action with keys ``column``, ``action`` (``"renamed"`` or
            ``"converted"``) and ``reason`` (a sentence for the audit log and report).

        Raises
        ------
        SpaceError
            Duplicate column names, a declared source column that is missing or matches
            several columns, two columns ending on the same name, or non-convertible units.
        """
        if not isinstance(table, pd.DataFrame):
            raise SpaceError(f"expected a pandas DataFrame, got {type(table).__name__}")
        cols = [str(c) for c in table.columns]
        dup = sorted({c for c in cols if cols.count(c) > 1})
        if dup:
            raise SpaceError(f"duplicate column name(s) {dup}: each column must have its own name")
        by_norm: dict[str, list[str]] = {}
        for c in table.columns:
            by_norm.setdefault(_norm(c), []).append(c)
        rename: dict[Any, str] = {}
        actions: list[dict[str, Any]] = []
        units: dict[str, str] = {}
        for spec in self.columns:
            if spec.source in table.columns:
                src = spec.source
            else:
                hits = by_norm.get(_norm(spec.source), [])
                if len(hits) > 1:
                    raise SpaceError(
                        f"declared column {spec.source!r} matches several columns {hits}"
                    )
                if not hits:
                    continue  # a declared alias need not be in every table
                src = hits[0]
            if src != spec.target:
                rename[src] = spec.target
                actions.append(
                    {
                        "column": spec.target,
                        "action": "renamed",
                        "reason": f"column {src!r} read as {spec.target!r} "
                        "(declared in the process space)",
                    }
                )
            if spec.unit is not None and not _same_unit(spec.unit, self.units[spec.target]):
                units[spec.target] = spec.unit
        taken = {rename.get(c, c) for c in table.columns}
        wanted = [*self.factor_names, self.response.name, *self.groups, self.batch_id]
        for name in wanted:
            if name in taken:
                continue
            hits = [c for c in by_norm.get(_norm(name), []) if c not in rename]
            if len(hits) > 1:
                raise SpaceError(
                    f"columns {hits} all match {name!r} up to case and spaces; rename or "
                    "declare one of them in the process space's [columns]"
                )
            if hits:
                rename[hits[0]] = name
                taken.add(name)
                actions.append(
                    {
                        "column": name,
                        "action": "renamed",
                        "reason": f"column {hits[0]!r} read as {name!r} "
                        "(same name up to case and spaces)",
                    }
                )
        targets = [rename.get(c, c) for c in table.columns]
        clash = sorted({t for t in targets if targets.count(t) > 1})
        if clash:
            raise SpaceError(
                f"two columns would both be read as {clash}; drop one or fix the [columns] mapping"
            )
        out = table.rename(columns=rename) if rename else table.copy()
        for name, unit in units.items():
            if name not in out.columns:
                continue
            raw = pd.to_numeric(out[name], errors="coerce")
            converted = convert_units(raw.to_numpy(dtype=np.float64), unit, self.units[name])
            keep = raw.isna() & out[name].notna()  # leave non-numbers for validation to name
            new = pd.Series(converted, index=out.index)
            out[name] = new.astype(object).where(~keep, out[name]) if keep.any() else new
            actions.append(
                {
                    "column": name,
                    "action": "converted",
                    "reason": f"{name!r} converted from {unit} to {self.units[name]} "
                    f"({int(raw.notna().sum())} values)",
                }
            )
        return out, actions


def _from_fields(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, Mapping):
        raise SpaceError(f"{where}: expected a table of keys, got {raw!r}")
    names = set(cls.__dataclass_fields__)
    extra = sorted(set(raw) - names)
    if extra:
        raise SpaceError(f"{where}: unknown key(s) {extra}; expected some of {sorted(names)}")
    kwargs = dict(raw)
    for key in ("operating", "limits", "typical"):
        if key in kwargs and kwargs[key] is not None:
            kwargs[key] = _pair(kwargs[key], f"{where}: {key}")
    required = [n for n, f in cls.__dataclass_fields__.items() if _required(f) and n not in kwargs]
    if required:
        raise SpaceError(f"{where}: missing key(s) {required}")
    try:
        return cls(**kwargs)
    except SpaceError as exc:
        raise SpaceError(f"{where}: {exc}") from None
    except TypeError as exc:
        raise SpaceError(f"{where}: {exc}") from None


def _required(f: Any) -> bool:
    from dataclasses import MISSING

    return f.default is MISSING and f.default_factory is MISSING


@cache
def _default_space() -> ProcessSpace:
    return ProcessSpace(
        factors=(
            Factor("mixing_time", "s", (10.0, 120.0), (0.5, 3600.0), "Mixing time", short="mix"),
            Factor("temperature", "degC", (30.0, 39.0), (4.0, 50.0), "Temperature", short="temp"),
            Factor("ph", "pH", (6.6, 7.5), (5.5, 8.5), "pH", short="ph"),
            Factor(
                "dissolved_oxygen",
                "% air sat.",
                (10.0, 80.0),
                (0.0, 150.0),
                "Dissolved oxygen",
                short="do",
            ),
        ),
        response=Response(
            "yield", "g/L", (0.0, 30.0), "maximise", "Yield (titer)", typical=(0.5, 10.0)
        ),
        groups=("scale", "site", "campaign"),
        batch_id="batch_id",
        name="Mammalian cell culture (demo)",
    )


def resolve_space(space: ProcessSpace | str | Path | None) -> ProcessSpace:
    """Return ``space`` as a :class:`ProcessSpace`: None -> the default, a path -> its TOML."""
    if space is None:
        return ProcessSpace.default()
    if isinstance(space, ProcessSpace):
        return space
    if isinstance(space, str | Path):
        return ProcessSpace.from_toml(space)
    raise SpaceError(
        f"space must be a ProcessSpace, a path to a TOML file or None, got {type(space).__name__}"
    )


def infer_space(
    table: pd.DataFrame,
    *,
    factors: Sequence[str] | None = None,
    response: str | None = None,
    groups: Sequence[str] | None = None,
    batch_id: str | None = None,
    margin: float = 0.1,
    name: str = "my process",
) -> tuple[ProcessSpace, list[str]]:
    """Draft a space from a table, and say what was assumed.

    Numeric columns become factors unless named as the response; text columns with repeated
    labels become groups; a column of unique text becomes the batch id. Operating ranges are
    the data's range widened by ``margin`` on each side; units are ``"TODO"`` unless the
    column name carries a known one (``Temp_C``, ``mixing_time_s``, ``DO (%)``...); limits are
    left unbounded.

    Parameters
    ----------
    table : pandas.DataFrame
        The user's table.
    factors, response, groups, batch_id : optional
        Override the guesses.
    margin : float, default 0.1
        Fraction of the data range added on each side of the operating range.
    name : str
        Process name.

    Returns
    -------
    space : ProcessSpace
        A valid space with units of unknown columns set to dimensionless so it loads; the TOML
        written from it marks them ``"TODO"``.
    assumptions : list of str
        One sentence per guess, for the user to check.
    """
    if not isinstance(table, pd.DataFrame) or table.empty:
        raise SpaceError(
            "the table has no data rows (a header alone, or an empty file): nothing to draft from"
        )
    if not 0 <= margin <= 5:
        raise SpaceError(f"margin must be in [0, 5], got {margin!r}")
    notes: list[str] = []
    empty = [c for c in table.columns if table[c].isna().all()]
    if empty:
        notes.append(f"empty columns, not used: {[str(c) for c in empty]}")
    numeric = [
        c
        for c in table.columns
        if c not in empty
        and (
            (pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c]))
            or _mostly_numbers(table[c], c, notes)
        )
        and not _is_time(table[c])  # Excel dates and durations arrive typed, not as text
    ]
    text = [c for c in table.columns if c not in numeric and c not in empty]
    if response is None:
        hits = [
            c
            for c in numeric
            if _norm(c) in {"yield", "titer", "titre", "product", "y"}
            or _norm(c).startswith(("yield", "titer", "titre"))
        ]
        how = "named like a yield"
        if not hits:  # a product measured otherwise: enzyme activity, productivity, expression
            hits = [c for c in numeric if _PRODUCT_NAME.search(_norm(c))]
            how = "named like a product measure"
        if not hits:
            last = str(numeric[-1]) if numeric else "NAME"
            raise SpaceError(
                f"cannot tell the response column among {[str(c) for c in numeric]}; name "
                f"it: response={last!r} in Python, --response {_shell_word(last)} on the "
                "command line (the last numeric column is shown as an example)"
            )
        response = str(hits[0])
        notes.append(f"response: {response!r} ({how})")
    if response not in table.columns:
        raise SpaceError(f"response column {response!r} not in the table {list(table.columns)}")
    dates = [c for c in text if _looks_like_dates(table[c])]
    if batch_id is None:
        batch_id = _draft_batch_id(table, text, numeric, dates, notes)
    if dates:
        notes.append(f"dates, not used as factors or groups: {[str(c) for c in dates]}")
    if groups is None:
        groups = _draft_groups(table, text, batch_id, dates, notes)
        # vessel sizes are the outermost level: a small vessel group borrows from its size
        groups = volume_first(groups, table)
        notes.append(
            "groups, outermost first (vessel sizes first, then as in the file; reorder if "
            f"another nesting is right): {groups}"
        )
    if factors is None:
        factors = [str(c) for c in numeric if c not in (response, batch_id)]
        outcomes = [
            c
            for c in factors
            if _OUTCOME_NAME.search(_norm(c)) and not _SETPOINT_NAME.search(_norm(c))
        ]
        if outcomes:
            factors = [c for c in factors if c not in outcomes]
            notes.append(
                f"named like measured outcomes, not setpoints: {outcomes}, left out of the "
                f"factors (a second response? draft its own process with --response NAME; a "
                "setpoint after all? add it to the factors)"
            )
        notes.append(f"factors: {factors}")
    if not factors:
        raise SpaceError("no numeric factor columns found; pass factors=[...]")
    # a column named with '/' keeps its header in the file and gets a space name without it
    # (and "pH " with a stray space gets the name "pH")
    rename = {
        str(c): safe_name(str(c))
        for c in dict.fromkeys([*factors, response, *groups, batch_id])
        if "/" in str(c) or str(c) != str(c).strip()
    }
    facs = [_draft_factor(table, col, rename, margin, notes) for col in factors]
    notes.append(
        "operating ranges are drafted from the data: every recommendation and campaign "
        "searches only inside them, so widen each to what the process allows (a history run "
        "near its recipe drafts ranges too narrow to reach an optimum away from it)"
    )
    notes.extend(_ranges_by_group(table, factors, groups))
    resp = _draft_response(table, str(response), rename, notes)
    renames = [ColumnSpec(c, new) for c, new in rename.items()]
    if renames:
        notes.append(
            "names without '/' (a saved model cannot hold it) or stray spaces, the file's headers "
            "mapped under "
            "[columns]: " + ", ".join(f"{c.source!r} -> {c.target!r}" for c in renames)
        )
    space = ProcessSpace(
        tuple(facs),
        resp,
        tuple(rename.get(g, g) for g in groups),
        rename.get(str(batch_id), str(batch_id)),
        tuple(renames),
        name,
    )
    return space, notes


def _draft_batch_id(
    table: pd.DataFrame, text: list[Any], numeric: list[Any], dates: list[Any], notes: list[str]
) -> str:
    """Guess the batch id: a unique text column, or a nearly unique one named like an id."""
    n = len(table)
    unique = [c for c in text if c not in dates and table[c].nunique(dropna=True) == n]
    # a duplicated row (or two) must not hide the id column: nearly unique and named so
    named = [
        c
        for c in text
        if c not in dates
        and table[c].nunique(dropna=True) >= 0.9 * n
        and re.search(
            r"(^|_)(batch|run|lot|id|charge|chargen|ansatz|lauf|experiment)(_|$)", _norm(c)
        )
    ]
    ids = list(dict.fromkeys([*unique, *named]))
    ids += [c for c in numeric if "batch" in _norm(c) or _norm(c) in {"id", "run"}]
    if not ids:
        notes.append("batch id: none found (named 'batch_id'; the log numbers rows instead)")
        return "batch_id"
    batch_id = str(ids[0])
    repeated = table[ids[0]].nunique(dropna=True) < n
    notes.append(
        f"batch id: {batch_id!r} "
        + (
            "(named like one; some ids repeat: duplicated rows?)"
            if repeated
            else "(unique per row)"
        )
    )
    return batch_id


def _draft_groups(
    table: pd.DataFrame, text: list[Any], batch_id: str, dates: list[Any], notes: list[str]
) -> list[str]:
    """Text columns with repeated labels, neither the id nor dates; free text is named.

    A group column labels (nearly) every batch, with 2 or more labels each used twice on
    average; a mostly empty column, or one whose labels are mostly distinct (operator notes,
    comments), is left out with a note.
    """
    groups, skipped, people = [], [], []
    for c in text:
        if c == batch_id or c in dates:
            continue
        if _NOT_A_GROUP.search(str(c).lower()):
            people.append(repr(c))
            continue
        present = int(table[c].notna().sum())
        labels = table[c].nunique(dropna=True)
        if present >= 0.8 * len(table) and 1 < labels <= max(present // 2, 1):
            groups.append(str(c))
        else:
            skipped.append(f"{c!r} ({present} of {len(table)} rows filled, {labels} labels)")
    if skipped:
        notes.append(
            "text columns not used as groups (mostly empty or mostly distinct labels: free "
            "text?): " + ", ".join(skipped)
        )
    for c in text:
        if c == batch_id or c in dates or not STATUS_COLUMN.search(str(c)):
            continue
        marked = table[c].astype(str).str.contains(FAILED_WORDS, na=False)
        if marked.any():
            words = sorted(set(table.loc[marked, c].astype(str).str.strip()))[:4]
            notes.append(
                f"column {c!r}: {int(marked.sum())} batch(es) marked {words}: failed batches? "
                "`bayesbio clean` drops those with no product (response 0 or empty) and names "
                "the others; drop them from the file if their failure says nothing about their "
                "setpoints"
            )
    if people:
        notes.append(
            "text columns not drafted as groups, since their names say who ran a batch or "
            "what was noted, not where or at what scale: " + ", ".join(people) + "; add one "
            "to groups if the response truly depends on it (every recommendation then names "
            "one of its labels)"
        )
    return groups


#: A status or comment column's words for a batch that failed (init-process and clean name them).
FAILED_WORDS = re.compile(
    r"\b(?:fail\w*|abort\w*|contamin\w*|terminat\w*|reject\w*|oos|out of spec\w*|crash\w*"
    r"|(?<!sample )(?<!samples )(?<!data )lost(?! samples?\b| data\b)|invalid|scrap\w*"
    r"|abgebrochen|kontamin\w*|verworfen)\b",
    re.IGNORECASE,
)
#: Names of columns that say how a batch went (status, QC outcome, comments).
STATUS_COLUMN = re.compile(r"status|outcome|result|comment|note|remark|bemerkung|kommentar", re.I)

#: text columns that are not group structure: who ran the batch, notes, QC outcomes
_NOT_A_GROUP = re.compile(
    r"operator|analyst|technician|shift|person|user|signature|initials|bediener|schicht"
    r"|comment|note|remark|bemerkung|kommentar|status|deviation|abweichung"
)


#: physical limits a draft can know from the unit alone (a cell culture's water: 0-100 degC)
_KNOWN_LIMITS = {
    "ph": (0.0, 14.0),
    "degc": (0.0, 100.0),
    "°c": (0.0, 100.0),
    "%": (0.0, 100.0),
}

#: a scale label written as a volume: "3 m3", "3000 L", "2,5 L", "500 mL"
_VOLUME_LABEL = re.compile(
    r"^\s*(\d+(?:[.,]\d+)?)\s*(ml|l|hl|m3|m³|m\^3|cbm|gal)\s*$", re.IGNORECASE
)


#: a decimal comma, unambiguous: not three digits after it ("6,9" yes, "1,000" no); what
#: `bayesbio clean` reads as a number, and what a draft counts as one
_DECIMAL_COMMA = re.compile(r"^[-+]?\d+,(?:\d{1,2}|\d{4,})$")
#: a number, optionally with a decimal comma, then optionally a unit (``"250 rpm"``, ``"6,9"``)
_NUMBER_TEXT = re.compile(r"^\s*([-+]?(?:\d+(?:[.,]\d+)?|[.,]\d+)(?:[eE][-+]?\d+)?)\s*(\S.*)?$")


def _ranges_by_group(
    table: pd.DataFrame, factors: Sequence[str], groups: Sequence[str]
) -> list[str]:
    """Name each factor whose ranges in the labels of a group column do not overlap."""
    out = []
    for col in factors:
        values = _as_numbers(table[col])
        for g in groups:
            if g not in table.columns:
                continue
            # "10 L", "10L" and "10l" are one vessel (as the cleaner will read them)
            labels = table[g].astype(str).str.strip()
            key = labels.str.lower().str.replace(r"\s+", "", regex=True)
            shown_as = labels.groupby(key).agg(lambda v: v.mode().iloc[0])
            ranges = values.groupby(key).agg(["min", "max", "count"])
            ranges.index = shown_as.reindex(ranges.index).to_numpy()
            ranges = ranges[ranges["count"] >= 2].sort_values("min")
            if len(ranges) < 2:
                continue
            apart = (ranges["min"].to_numpy()[1:] > ranges["max"].to_numpy()[:-1]).all()
            if apart:
                shown = ", ".join(
                    f"{lab}: {r['min']:.4g}-{r['max']:.4g}" for lab, r in ranges.iterrows()
                )
                out.append(
                    f"factor {col!r}: its values in each {g!r} do not overlap ({shown}); one "
                    "operating range spans them all, and recommendations keep to each group's "
                    "own batches (narrow the range or bound a group's search if that is wrong)"
                )
                break
    return out


def _volume_labels(values: pd.Series) -> bool:
    """Return True when most labels of a text column are vessel volumes ("2L", "3 m3")."""
    labels = pd.unique(values.dropna().astype(str))
    return len(labels) > 0 and sum(bool(_VOLUME_LABEL.match(v)) for v in labels) >= 0.8 * len(
        labels
    )


def is_campaign(column: Any) -> bool:
    """Whether a group column holds production campaigns (blocks in time), by its name.

    ``campaign``, ``Campaign``, ``Campaign ID``, ``Kampagne``: a batch run tomorrow belongs to
    a new campaign, so studies pool over this level instead of recommending for a past one.
    """
    return _norm(column).startswith(("campaign", "kampagne"))


def volume_first(columns: Sequence[str], table: pd.DataFrame) -> list[str]:
    """Return group ``columns`` with those holding vessel sizes ("10L", "1000 L") first.

    Vessel size is the outermost level of a batch history whatever order a file or a
    declaration gives: a small group borrows from its own vessel size, and every size gets a
    recommendation. The order among the others is kept.
    """
    volumes = [c for c in columns if c in table.columns and _volume_labels(table[c])]
    return volumes + [c for c in columns if c not in volumes]


def _mostly_numbers(values: pd.Series, col: Any, notes: list[str]) -> bool:
    """Return True for a text column of numbers with a few written otherwise (named in notes).

    At least 80 % of the filled cells must be plain numbers; the rest (a number with a unit,
    a decimal comma, a word) are named, since ``bayesbio clean`` reads or reports them.
    Group labels such as ``"2000L"`` are not plain numbers, so a scale column stays text.
    """
    filled = values.dropna()
    if filled.empty or pd.api.types.is_bool_dtype(values):
        return False
    plain = pd.to_numeric(filled, errors="coerce").notna()
    # a German export: "35,0" is a number (a decimal comma), not text and not a date
    comma = filled.astype(str).str.strip().str.match(_DECIMAL_COMMA)
    if (plain | comma).mean() < 0.8:
        return False
    odd = filled[~plain].astype(str)
    if odd.empty:  # numbers stored as text: nothing to say
        return True
    examples = sorted(set(odd))[:3]
    readable = int(odd.str.match(_NUMBER_TEXT).sum())
    notes.append(
        f"column {col!r}: numbers, with {len(odd)} cell(s) written otherwise (e.g. {examples}); "
        f"`bayesbio clean` reads numbers with a unit or a decimal comma ({readable} of them "
        "here) and names the rest"
    )
    return True


def _as_numbers(values: pd.Series) -> pd.Series:
    """Numbers of a column, reading text cells as `bayesbio clean` does (``"32 °C"``, ``"6,9"``)."""
    out = pd.to_numeric(values, errors="coerce")
    text = values[out.isna() & values.notna()].astype(str)
    found = text.str.extract(_NUMBER_TEXT)[0].dropna()
    # a comma only as clean reads it: "1,000" is ambiguous, not read
    found = found[~found.str.contains(",", regex=False) | found.str.match(_DECIMAL_COMMA)]
    out.loc[found.index] = pd.to_numeric(found.str.replace(",", ".", regex=False), errors="coerce")
    return out


def _draft_factor(
    table: pd.DataFrame, col: Any, rename: Mapping[str, str], margin: float, notes: list[str]
) -> Factor:
    """One factor: the data's range (far-out values left out) widened by ``margin``."""
    if col not in table.columns:
        raise SpaceError(f"factor column {col!r} not in the table {list(table.columns)}")
    vals = _as_numbers(table[col]).dropna()
    if vals.empty:
        raise SpaceError(f"factor column {col!r} has no numeric values")
    limits = (-math.inf, math.inf)
    negative = vals < 0
    if negative.any() and (vals > 0).mean() >= 0.9:
        notes.append(
            f"factor {col!r}: {sorted(set(vals[negative].round(6).tolist()))} negative among "
            "positive values: impossible? left out of the operating range, and limits drafted "
            "from 0 so that the cleaner drops them"
        )
        vals = vals[~negative]
    if (vals >= 0).all():
        limits = (0.0, math.inf)
    far = _far_out(vals)
    med = float(vals.median())
    # a history clustered at its recipe makes deliberate excursions (DoE batches) "far out"
    # by quartiles; a slipped decimal point or another unit is a factor of 10 away, not 2
    slip = far & ((vals > _SLIP_RATIO * med) | (vals < med / _SLIP_RATIO)) if med > 0 else far
    if (far & ~slip).any():
        notes.append(
            f"factor {col!r}: {sorted(set(vals[far & ~slip].round(6).tolist()))} beyond 3 "
            "interquartile ranges of the bulk of the data but within a factor "
            f"{_SLIP_RATIO:g} of its median: kept in the operating range as deliberate "
            "excursions (DoE batches?); correct any that is a typo"
        )
    if slip.any():
        notes.append(
            f"factor {col!r}: {sorted(set(vals[slip].round(6).tolist()))} far outside the "
            "bulk of the data (beyond 3 interquartile ranges, more than a factor "
            f"{_SLIP_RATIO:g} from its median): left out of the operating range; typos or "
            "another unit?"
        )
    slips = vals[slip]
    vals = vals[~slip]
    lo, hi = float(vals.min()), float(vals.max())
    width = hi - lo if hi > lo else max(abs(lo), 1.0) * 0.1
    lo_r, hi_r = max(lo - margin * width, limits[0]), hi + margin * width
    if lo > 0 and lo_r < lo / 2:
        # a positive factor spanning orders of magnitude (an inducer at 0.05-1 mM) must not
        # run down to 0, which is another process (no induction): not below half its lowest
        lo_r = lo / 2
        notes.append(
            f"factor {col!r}: lower edge of the operating range kept at {_round(lo_r)}, half "
            f"its lowest value (not {margin:.0%} of its span below it), so that the range "
            "does not run down to 0 (no inducer, no feed: another process)"
        )
    below = _unit_below_header(table, col)
    unit = below or _guess_unit(str(col))
    source = "the units row under the header" if below else "its name"
    if unit and display_unit(unit) == "°C" and len(slips):
        celsius = convert_units(slips, "degF", "degC")  # a value written in degF: 98.6 -> 37
        read = [(v, c) for v, c in zip(slips, celsius, strict=True) if lo_r <= c <= hi_r]
        if read:
            notes.append(
                f"factor {col!r}: "
                + ", ".join(f"{number_text(v, 4)} reads as {number_text(c, 4)} °C" for v, c in read)
                + " if written in °F; `bayesbio clean` repairs such a slip and logs it"
            )
    known = _KNOWN_LIMITS.get(unit.strip().lower() if unit else "")
    physical_note = None
    if known is not None and known[0] <= lo_r and hi_r <= known[1]:
        physical_note = len(notes)
        limits = known
        outside = [
            v for v in table[col].pipe(_as_numbers).dropna() if not known[0] <= v <= known[1]
        ]
        repaired = {}
        if display_unit(unit) == "°C":  # kelvin or Fahrenheit slips the cleaner converts
            for v in outside:
                for name, src in (("kelvin", "K"), ("°F", "degF")):
                    c = float(convert_units([v], src, "degC")[0])
                    if lo_r <= c <= hi_r:
                        repaired[v] = (
                            f"{number_text(v, 5)} reads as {number_text(c, 4)} °C in {name}"
                        )
                        break
        dropped_values = sorted(set(outside) - set(repaired))
        fate = []
        if repaired:
            fate.append(
                "; ".join(repaired.values()) + ": the cleaner repairs such a slip and logs it"
            )
        if dropped_values:
            fate.append(f"the cleaner will drop {dropped_values[:5]} as impossible")
        notes.append(
            f"factor {col!r}: physical limits [{known[0]:g}, {known[1]:g}] {unit} drafted"
            + "".join(f"; {f}" for f in fate)
        )
    if ((slips >= limits[0]) & (slips <= limits[1])).any():  # not dropped by the limits yet
        # well clear of the operating range (half its low end, twice its high end) and at
        # least a factor 2.5 around the median: only a slip falls outside
        drafted = (
            max(limits[0], _round(min(med / _SLIP_RATIO, lo_r / 2))),
            min(limits[1], _round(max(med * _SLIP_RATIO, hi_r * 2))),
        )
        dropped = slips[(slips < drafted[0]) | (slips > drafted[1])]
        if len(dropped):
            inside = (
                f", inside the physical [{limits[0]:g}, {limits[1]:g}] {display_unit(unit)}"
                if physical_note is not None
                else ""
            )
            if physical_note is not None:  # one note says both
                del notes[physical_note]
            limits = drafted
            notes.append(
                f"factor {col!r}: limits drafted at [{limits[0]:g}, {limits[1]:g}]{inside} "
                "(half the operating range's low end to twice its high end, at least a factor "
                f"{_SLIP_RATIO:g} around the median) so that the cleaner treats "
                f"{sorted(set(dropped.round(6).tolist()))} as impossible (repaired where it "
                "reads as a unit slip, else dropped; both logged); narrow them to what your "
                "process can reach, or widen them if a value there is real"
            )
    notes.append(
        f"factor {col!r}: operating range [{_round(lo_r)}, {_round(hi_r)}] (data "
        f"{lo:g}-{hi:g} plus {margin:.0%} each side); unit "
        + (f"{unit!r} from {source}" if unit else "unknown: marked TODO")
    )
    name = rename.get(str(col), str(col))
    label = _label_of(str(col), unit) if unit and source == "its name" else str(col)
    return Factor(name, unit or "", (_round(lo_r), _round(hi_r)), limits, label=label)


def _label_of(header: str, unit: str) -> str:
    """Return a header without the unit it ends with, as a label: ``"Temp (°C)"`` -> ``"Temp"``.

    The unit is shown beside the label (``"Temp [°C]"``), so ``"Agitation [rpm]"``,
    ``"Feed rate (%/d)"`` (:func:`bare_label`), ``"Titer g/L"`` (a last word that holds
    ``/``, ``%`` or ``°``) and ``"Agitation rpm"`` (a last word that is the unit) lose their
    unit part; a bracket that holds no unit (``"Titer (clarified)"``) and a header that is
    all unit (``"pH"``) are kept.
    """
    text = bare_label(header.strip(), unit)
    parts = text.rsplit(None, 1)
    if text == header.strip() and len(parts) == 2:
        if re.search(r"[/%°]", parts[1]) or parts[1].lower() == unit.lower():
            return parts[0]  # "Titer g/L", "Agitation rpm"
    return text


def _draft_response(
    table: pd.DataFrame, response: str, rename: Mapping[str, str], notes: list[str]
) -> Response:
    """Draft the response: unit and direction from its name (g/L assumed for a yield)."""
    below = _unit_below_header(table, response)
    unit = below or _guess_unit(response)
    if unit == "% air sat." and not below and not _DO_NAME.search(_norm(response)):
        unit = "%"  # a share of the product (a variant, an impurity), not oxygen saturation
    if unit:
        source = "the units row under the header" if below else "its name"
        notes.append(f"response unit {unit!r} from {source}")
    elif _YIELD_NAME.search(_norm(response)):
        unit = "g/L"
        notes.append(f"response unit {unit!r} (assumed for a yield or titer; check it)")
    else:
        notes.append("response unit unknown: marked TODO")
    direction = "minimise" if _MINIMISE_NAME.search(_norm(response)) else "maximise"
    notes.append(
        f"response direction {direction!r}"
        + (" (named like an impurity or by-product)" if direction == "minimise" else "")
    )
    if (pd.to_numeric(table[response], errors="coerce") < 0).any():
        notes.append(f"response {response!r} has negative values: the log-scale models need >= 0")
    limits = (0.0, 100.0) if unit == "%" else (0.0, math.inf)
    if unit == "%":
        notes.append("response limits [0, 100] % (a share)")
    label = _label_of(response, unit) if unit and not below else response
    return Response(rename.get(response, response), unit, limits, direction, label)


def _round(x: float) -> float:
    if x == 0 or not math.isfinite(x):
        return x
    digits = 3 - math.floor(math.log10(abs(x)))
    return round(x, max(digits, 0))


_YIELD_NAME = re.compile(r"yield|tit(er|re)|product|conc")
_PRODUCT_NAME = re.compile(r"activit|productivit|expression|aktivit")


def _shell_word(text: str) -> str:
    """``text`` as one shell word (quoted when it holds spaces or shell characters)."""
    return text if re.fullmatch(r"[\w.,:/@%+=-]+", text) else "'" + text.replace("'", "'\\''") + "'"


_MINIMISE_NAME = re.compile(
    r"impurit|hcp|host_cell|aggregat|la[ck]tat|acetat|ammoni|by_?product|nebenprodukt|endotoxin"
    r"|dna|waste|cost|clipp|degrad|fragment|truncat|misfold|deamid|hmw|lmw|contaminat"
)
_DO_NAME = re.compile(r"(^|_)do($|_)|dissolved|oxygen|po2|sauerstoff|air_sat")
#: measured outcomes, not setpoints: a second response in the file is not drafted as a factor
_OUTCOME_NAME = re.compile(
    r"yield|ausbeute|tit(er|re)|impurit|hcp|host_cell|aggregat|la[ck]tat|acetat"
    r"|by_?product|nebenprodukt|endotoxin|biomass|biomasse|wcw|dcw|cdw|od_?600|vcd"
    r"|viab|cell_density|zelldichte|clipp|degrad|fragment|truncat|misfold|deamid"
)

#: ... unless named as a chosen value: "OD600 at induction", "target lactate", "pH setpoint"
_SETPOINT_NAME = re.compile(r"induc|trigger|set_?point|target|(^|_)sp($|_)|soll|ziel")


#: A drafted factor's value further than this factor from its median is a slip (a lost decimal
#: point, another unit), not a deliberate excursion: left out of the drafted operating range.
_SLIP_RATIO = 2.5


def _far_out(values: pd.Series) -> pd.Series:
    """Tukey's far-out values: beyond 3 interquartile ranges from the quartiles."""
    q1, q3 = values.quantile([0.25, 0.75])
    iqr = q3 - q1
    if not iqr > 0:
        return pd.Series(False, index=values.index)
    return (values < q1 - 3 * iqr) | (values > q3 + 3 * iqr)


def _is_time(values: pd.Series) -> bool:
    """Return True for a column typed as dates or time spans (as Excel readers give them)."""
    return bool(
        pd.api.types.is_datetime64_any_dtype(values) or pd.api.types.is_timedelta64_dtype(values)
    )


def _looks_like_dates(values: pd.Series) -> bool:
    """Return True for a text column whose values nearly all parse as dates (``2024-03-01``)."""
    if _is_time(values):
        return True
    text = values.dropna().astype(str)
    if text.empty or not text.str.contains(r"\d").all():
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(text, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() >= 0.9)


_UNIT_HINTS = [
    (r"(^|_)(degc|°c|c|celsius)$", "degC"),
    (r"(^|_)(degf|°f|f)$", "degF"),
    (r"(^|_)mm$", "mM"),
    (r"(^|_)ppm$", "ppm"),
    (r"(^|_)(s|sec|seconds)$", "s"),
    (r"(^|_)(min|minutes)$", "min"),
    (r"(^|_)(h|hr|hours)$", "h"),
    (r"(^|_)d$", "day"),  # "Shift day (d)": a one-letter unit the brackets rule skips
    (r"(^|_)rpm$", "rpm"),
    (r"(^|_)(g_l|g/l|gl|g_per_l)$", "g/L"),
    (r"(^|_)(mg_l|mg/l|mgl|mg_per_l)$", "mg/L"),
    (r"^ph($|_)", "pH"),  # "pH", "pH setpoint", "pH (-)"
    (r"(^|_)(%|pct|percent|do_%)$", "% air sat."),
]


def _unit_below_header(table: pd.DataFrame, column: Any) -> str:
    """Return the unit written in a units row under the header, if pint reads it, else ``""``.

    The row is ``table.attrs["units_row"]`` (set by :func:`bayesbio.io.read_table`).
    """
    cell = str(table.attrs.get("units_row", {}).get(str(column), "")).strip()
    if len(cell) < 1 or cell in {"-", "--"}:
        return ""
    try:
        _parse_unit(cell, "unit")
    except SpaceError:
        return ""
    return cell


#: Unit words an unbracketed header may end with, joined by '/' ("g/L/h", "mmol/L", "L/min")
_UNIT_WORDS = frozenset(
    "g mg ug µg kg ng l ml ul µl h hr min s d day mol mmol umol µmol m3 kpa bar w kw".split()
)


def _guess_unit(column: str) -> str:
    key = re.sub(r"[()\[\]]", "_", _norm(column)).strip("_")
    key = re.sub(r"_+", "_", key)
    for pattern, unit in _UNIT_HINTS:
        if re.search(pattern, key):
            if unit == "% air sat." and not _DO_NAME.search(key):
                return "%"  # a share (glucose feed %, a variant), not oxygen saturation
            return unit
    # a unit in brackets that pint reads: "Feed rate (mL/h)", "Duration [days]"
    for inside in re.findall(r"[(\[]([^()\[\]]+)[)\]]", column):
        if len(inside.strip()) < 2:  # "(A)" is a label more often than an ampere
            continue
        try:
            _parse_unit(inside.strip(), "unit")
        except SpaceError:
            continue
        return inside.strip()
    # an unbracketed last word of common units with '/' that pint reads: "Feed rate g/L/h"
    parts = column.strip().rsplit(None, 1)
    if len(parts) == 2 and "/" in parts[1] and set(parts[1].lower().split("/")) <= _UNIT_WORDS:
        try:
            _parse_unit(parts[1], "unit")
        except SpaceError:
            return ""
        return parts[1]
    return ""


def space_to_starter_toml(space: ProcessSpace, notes: Sequence[str]) -> str:
    """Return TOML for ``space`` with the assumptions as comments and unknown units as TODO."""
    data = space.to_dict()
    for f in [*data["factors"], data["response"]]:
        if f.get("unit", "") == "":
            f["unit"] = "TODO"
    import tomli_w

    head = (
        [
            "# Process space drafted by `bayesbio init-process` -- check every line.",
            "# Assumptions:",
        ]
        + [f"#  - {n}" for n in notes]
        + [""]
    )
    return "\n".join(head) + tomli_w.dumps(data)
