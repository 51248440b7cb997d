"""Reading the batch-record files a lab actually has.

:func:`read_table` reads a batch table from a delimited text file (``.csv``, ``.tsv``,
``.txt``), an Excel workbook (``.xlsx``, ``.xlsm``), a Parquet file (``.parquet``, ``.pq``) or
a JSON list of records (``.json``) and returns a :class:`pandas.DataFrame` with one column per
header cell, a fresh ``RangeIndex`` and no other changes to the values.
:func:`read_table_with_info` returns the same table together with a :class:`ReadInfo` saying
what was detected (format, encoding, delimiter, decimal separator, sheet, rows, columns, what
was dropped) so that a caller can log it; ``info.summary()`` is one line for a log or a
terminal.

Text files are read forgivingly, each detection overridden by the matching argument:

* **Encoding**: a byte-order mark selects UTF-8, UTF-16 (LE/BE) or UTF-32; otherwise UTF-8 is
  tried, then Windows-1252 (a superset of Latin-1 for text), then Latin-1.
* **Delimiter**: one of ``,`` ``;`` tab ``|``, the one that splits the header and the rows
  into the same number of fields (:class:`csv.Sniffer` breaks ties).
* **Decimal separator**: ``","`` when the delimiter is not ``,`` and numbers are written
  ``1,5``; a ``.`` thousands separator (``1.234,5``) is then recognised too.

In every format the header row is read from the file itself, so two columns with the same
name (after stripping surrounding spaces) raise :class:`ReadError` naming both positions,
instead of pandas' silent ``yield``/``yield.1``. Columns with a blank header and no values
(spreadsheet leftovers that pandas calls ``Unnamed: 7``) and entirely empty rows at the end are
dropped and reported in :attr:`ReadInfo.dropped_columns` / :attr:`ReadInfo.dropped_rows`; a
named column is never dropped. A blank-header column that holds values is kept as
``Unnamed: <0-based position>`` and mentioned in :attr:`ReadInfo.notes`.

Every problem with the file itself (missing, a directory, empty, an unsupported extension, a
binary file with a text extension, an undecodable encoding, a missing sheet, duplicate column
names, unparseable rows) is a :class:`ReadError`, a :class:`ValueError` with a one-line
message naming the file and what to do. The input file is only ever opened for reading.

Excel cells holding formulas are read as the value Excel last saved with the workbook; a
workbook written by a program that does not compute formulas has no such values and reads
them as missing.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import re
import warnings
import zipfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = ["SUPPORTED_EXTENSIONS", "ReadError", "ReadInfo", "read_table", "read_table_with_info"]

_log = logging.getLogger(__name__)

_TEXT_EXTENSIONS = (".csv", ".tsv", ".txt")
_EXCEL_EXTENSIONS = (".xlsx", ".xlsm")
_PARQUET_EXTENSIONS = (".parquet", ".pq")
_JSON_EXTENSIONS = (".json",)

#: File extensions :func:`read_table` reads, lower case.
SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    _TEXT_EXTENSIONS + _EXCEL_EXTENSIONS + _PARQUET_EXTENSIONS + _JSON_EXTENSIONS
)

_CONVERT_HINTS = {
    ".xls": "old Excel .xls workbooks are not supported; open it in Excel and save it as .xlsx",
    ".xlsb": "binary Excel .xlsb workbooks are not supported; save it as .xlsx",
    ".ods": "OpenDocument spreadsheets are not supported; save it as .xlsx or CSV",
    ".numbers": "Numbers spreadsheets are not supported; export it as .xlsx or CSV",
}

# First bytes of file types someone may have renamed to .csv.
_MAGIC = (
    (b"PK\x03\x04", "a zip archive, for example an Excel .xlsx workbook; give it the .xlsx name"),
    (b"PAR1", "a Parquet file; give it the .parquet extension"),
    (b"\xd0\xcf\x11\xe0", "an old Excel .xls workbook; save it as .xlsx or CSV"),
    (b"%PDF", "a PDF document; export the table as CSV or .xlsx"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x1f\x8b", "a gzip archive; unpack it first"),
)

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

_ENCODING_WORDS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 with BOM",
    "utf-16-le": "UTF-16 LE",
    "utf-16-be": "UTF-16 BE",
    "utf-32-le": "UTF-32 LE",
    "utf-32-be": "UTF-32 BE",
    "cp1252": "Windows-1252 (Latin-1), not valid UTF-8",
    "latin-1": "Latin-1 (ISO-8859-1), not valid UTF-8",
}

_DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_ALIASES = {
    "tab": "\t",
    "\\t": "\t",
    "comma": ",",
    "semicolon": ";",
    "pipe": "|",
    "space": " ",
}
_DELIMITER_WORDS = {",": "','", ";": "';'", "\t": "tab", "|": "'|'", " ": "space"}

_SAMPLE_CHARS = 65536
_SAMPLE_ROWS = 200

_COMMA_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:\.\d{3})+|\d*),\d+(?:[eE][+-]?\d+)?")
_DOT_NUMBER = re.compile(r"[+-]?\d*\.\d+(?:[eE][+-]?\d+)?")
_DOT_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:\.\d{3})+(?:,\d+)?")


class ReadError(ValueError):
    """A batch-record file cannot be read as a table.

    The message is one line naming the file (and the sheet, for a workbook), what is wrong
    and what to do about it, e.g. ``"runs.csv: two columns are both named 'yield' (columns 5
    and 7); rename one in the file"``.
    """


@dataclass(frozen=True)
class ReadInfo:
    """What :func:`read_table_with_info` found and did while reading a file.

    Attributes
    ----------
    path : str
        The file, as given.
    format : {"csv", "excel", "parquet", "json"}
        How the file was read; ``"csv"`` stands for any delimited text file.
    rows, columns : int
        Shape of the returned table.
    encoding : str or None
        Text encoding used (a Python codec name such as ``"utf-8"``, ``"utf-8-sig"``,
        ``"utf-16-le"``, ``"cp1252"``); None for Excel and Parquet.
    delimiter : str or None
        Field delimiter of a text file.
    decimal : str or None
        Decimal separator of a text file, ``"."`` or ``","``.
    thousands : str or None
        Thousands separator recognised in a text file (only ``"."`` next to a decimal comma).
    sheet : str or None
        Name of the worksheet read from a workbook.
    sheets : tuple of str
        All worksheet names of a workbook.
    given : tuple of str
        The options the caller set (``"encoding"``, ``"delimiter"``, ``"decimal"``,
        ``"sheet"``); the other values were detected.
    dropped_columns : tuple of int
        1-based positions of the columns dropped for having a blank header and no values.
    dropped_rows : int
        Number of entirely empty rows dropped at the end of the table.
    notes : tuple of str
        Anything else worth telling the user, one sentence each.
    """

    path: str
    format: Literal["csv", "excel", "parquet", "json"]
    rows: int
    columns: int
    encoding: str | None = None
    delimiter: str | None = None
    decimal: str | None = None
    thousands: str | None = None
    sheet: str | None = None
    sheets: tuple[str, ...] = ()
    given: tuple[str, ...] = ()
    dropped_columns: tuple[int, ...] = ()
    dropped_rows: int = 0
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a plain, JSON-serialisable dict.

        Returns
        -------
        dict
            One entry per attribute; tuples become lists.
        """
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def summary(self) -> str:
        """Describe the read in one line, for a log or a terminal.

        Returns
        -------
        str
            For example ``"runs.csv: CSV, encoding Windows-1252 (Latin-1), not valid UTF-8
            (detected), delimiter ';' (detected), decimal ',' (detected); 12 rows x 7
            columns"``.
        """

        def how(option: str) -> str:
            return "given" if option in self.given else "detected"

        kinds = {"csv": "CSV", "excel": "Excel", "parquet": "Parquet", "json": "JSON"}
        parts = [kinds[self.format]]
        if self.sheet is not None:
            parts.append(f"sheet {self.sheet!r} ({how('sheet')}; of {len(self.sheets)})")
        if self.encoding is not None:
            word = _ENCODING_WORDS.get(self.encoding, self.encoding)
            parts.append(f"encoding {word} ({how('encoding')})")
        if self.delimiter is not None:
            word = _DELIMITER_WORDS.get(self.delimiter, repr(self.delimiter))
            parts.append(f"delimiter {word} ({how('delimiter')})")
        if self.decimal is not None:
            parts.append(f"decimal {self.decimal!r} ({how('decimal')})")
        if self.thousands is not None:
            parts.append(f"thousands {self.thousands!r} (detected)")
        text = f"{self.path}: {', '.join(parts)}; {self.rows} rows x {self.columns} columns"
        if self.dropped_columns:
            label = _excel_letter if self.format == "excel" else str
            where = _join_and([label(p) for p in self.dropped_columns])
            text += f"; dropped {len(self.dropped_columns)} empty unnamed column(s) ({where})"
        if self.dropped_rows:
            text += f"; dropped {self.dropped_rows} empty row(s) at the end"
        if self.notes:
            text += "; " + " ".join(self.notes)
        return text


def read_table(
    path: str | PathLike[str],
    *,
    sheet: str | int | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    decimal: str | None = None,
) -> pd.DataFrame:
    r"""Read a batch table from a CSV/TSV/TXT, Excel, Parquet or JSON file.

    The same as :func:`read_table_with_info` without the :class:`ReadInfo`; the module
    docstring describes the detection.

    Parameters
    ----------
    path : str or path-like
        The file; its extension selects the format (see :data:`SUPPORTED_EXTENSIONS`).
    sheet : str or int, optional
        Worksheet of an Excel workbook, by name or 0-based index; default the first sheet.
    encoding : str, optional
        Text encoding of a text or JSON file (any Python codec name); default detected.
    delimiter : str, optional
        Field delimiter of a text file (``","``, ``";"``, ``"\t"`` or ``"tab"``, ``"|"``, or
        any single character); default detected.
    decimal : {".", ","}, optional
        Decimal separator of a text file; default detected.

    Returns
    -------
    pandas.DataFrame
        The table, indexed ``0 .. n-1``, columns named as in the file's header (stripped).

    Raises
    ------
    ReadError
        If the file cannot be read as a table; the message says why and what to do.
    """
    table, _ = read_table_with_info(
        path, sheet=sheet, encoding=encoding, delimiter=delimiter, decimal=decimal
    )
    return table


def read_table_with_info(
    path: str | PathLike[str],
    *,
    sheet: str | int | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    decimal: str | None = None,
) -> tuple[pd.DataFrame, ReadInfo]:
    """Read a batch table and report what was detected.

    Parameters
    ----------
    path : str or path-like
        The file; its extension selects the format (see :data:`SUPPORTED_EXTENSIONS`).
    sheet : str or int, optional
        Worksheet of an Excel workbook, by name or 0-based index; default the first sheet.
        Only for Excel files.
    encoding : str, optional
        Text encoding of a text or JSON file; default detected. Only for text and JSON files.
    delimiter : str, optional
        Field delimiter of a text file; default detected. Only for text files.
    decimal : {".", ","}, optional
        Decimal separator of a text file; default detected. Only for text files.

    Returns
    -------
    table : pandas.DataFrame
        The table, indexed ``0 .. n-1``, columns named as in the file's header (stripped).
    info : ReadInfo
        Format, encoding, delimiter, decimal separator, sheet, shape and what was dropped.

    Raises
    ------
    ReadError
        If the file is missing, a directory, empty, of an unsupported type, binary with a
        text extension, undecodable, has no such sheet, has duplicate column names or rows
        that cannot be parsed, or if an option does not apply to the file's format.

    Examples
    --------
    >>> table, info = read_table_with_info("runs.csv")  # doctest: +SKIP
    >>> _log.info(info.summary())  # doctest: +SKIP
    """
    file = Path(path)
    name = str(path)
    if not file.exists():
        raise ReadError(f"{name}: file not found; check the path and the file name")
    if file.is_dir():
        raise ReadError(f"{name}: is a folder, not a file; give the path of the data file")
    suffix = file.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        supported = ", ".join(SUPPORTED_EXTENSIONS)
        if suffix in _CONVERT_HINTS:
            raise ReadError(f"{name}: {_CONVERT_HINTS[suffix]} (supported: {supported})")
        what = f"extension {suffix!r}" if suffix else "no file extension"
        raise ReadError(f"{name}: {what} is not supported; use one of {supported}")
    try:
        size = file.stat().st_size
    except OSError as err:
        raise ReadError(f"{name}: cannot be read ({err.strerror or err})") from err
    if size == 0:
        raise ReadError(f"{name}: the file is empty (0 bytes); export the table again")

    options = {"sheet": sheet, "encoding": encoding, "delimiter": delimiter, "decimal": decimal}
    given = tuple(k for k, v in options.items() if v is not None)
    if suffix in _TEXT_EXTENSIONS:
        _reject_options(name, "a text file", given, allowed=("encoding", "delimiter", "decimal"))
        table, info = _read_text(file, name, encoding, delimiter, decimal)
    elif suffix in _EXCEL_EXTENSIONS:
        _reject_options(name, "an Excel workbook", given, allowed=("sheet",))
        table, info = _read_excel(file, name, sheet)
    elif suffix in _PARQUET_EXTENSIONS:
        _reject_options(name, "a Parquet file", given, allowed=())
        table, info = _read_parquet(file, name)
    else:
        _reject_options(name, "a JSON file", given, allowed=("encoding",))
        table, info = _read_json(file, name, encoding)
    table, units_note = _drop_units_row(table)
    if units_note:
        warnings.warn(f"{name}: {units_note}", UserWarning, stacklevel=2)
    info = replace(info, given=given, rows=len(table), columns=table.shape[1])
    _log.info("%s", info.summary())
    return table, info


_UNIT_CELL_MAX = 16  # a unit written under a header is short: "°C", "mL/h/L", "% air sat."
#: Texts read as a missing value (compared lower-cased and stripped), in tables and by clean.
NA_MARKERS = frozenset(
    {
        "",
        "na",
        "n/a",
        "n.a.",
        "n.a",
        "nan",
        "none",
        "null",
        "missing",
        "-",
        "--",
        "—",
        "–",
        "?",
        "#n/a",
        "nd",
        "n.d.",
        "k.a.",
        "keine angabe",
    }
)
#: In a row of units a dash means "no unit" (pH "-"), not a missing value.
_NA_UNIT_TEXT = NA_MARKERS - {"-", "--", "—", "–"}


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float, np.integer, np.floating)):
        return True
    try:
        float(str(value).strip().replace(",", "."))
    except ValueError:
        return False
    return True


def _drop_units_row(table: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Remove a row of units directly under the header (``°C``, ``%``, ``rpm``), if any.

    The first row is a units row when none of its cells is a number, and at least two
    columns that hold numbers in 80 % of the rows below have a short text there that is not
    a missing-value marker. The units are kept in ``table.attrs["units_row"]`` (column ->
    text) and the returned note says what was done; columns left with numbers only become
    numeric.
    """
    if len(table) < 3:
        return table, ""
    first, rest = table.iloc[0], table.iloc[1:]
    cells = {c: v for c, v in first.items() if not pd.isna(v) and str(v).strip()}
    if len(cells) < 2 or any(_is_number(v) for v in cells.values()):
        return table, ""
    unitlike = [
        c
        for c, v in cells.items()
        if len(str(v).strip()) <= _UNIT_CELL_MAX
        and str(v).strip().lower() not in _NA_UNIT_TEXT
        and rest[c].map(_is_number).mean() >= 0.8
    ]
    if len(unitlike) < 2:
        return table, ""
    units = {str(c): str(v).strip() for c, v in cells.items()}
    out = rest.reset_index(drop=True)
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c].dtype):
            numbers = pd.to_numeric(out[c], errors="coerce")
            if numbers.notna().sum() == out[c].notna().sum() and numbers.notna().any():
                out[c] = numbers
    out = out.infer_objects()
    out.attrs = {**table.attrs, "units_row": units}
    shown = ", ".join(f"{c!r}: {u!r}" for c, u in list(units.items())[:6])
    more = f" and {len(units) - 6} more" if len(units) > 6 else ""
    return out, (
        f"the first row under the header holds units, not a batch ({shown}{more}); it was "
        "read as units and left out of the table"
    )


# --------------------------------------------------------------------------------------------
# shared steps


def _join_and(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _excel_letter(position: int) -> str:
    """Spreadsheet column letter of a 1-based position (1 -> A, 27 -> AA)."""
    letters = ""
    while position:
        position, rest = divmod(position - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def _reject_options(name: str, kind: str, given: Sequence[str], *, allowed: Sequence[str]) -> None:
    wrong = [k for k in given if k not in allowed]
    if wrong:
        applies = {
            "sheet": "Excel workbooks",
            "encoding": "text and JSON files",
            "delimiter": "text files",
            "decimal": "text files",
        }
        option = wrong[0]
        raise ReadError(
            f"{name}: the {option} option applies to {applies[option]} only, and this is "
            f"{kind}; leave it out"
        )


def _header_names(raw: Sequence[Any]) -> list[str]:
    """Header cells as stripped strings; missing cells become ``""``."""
    names = []
    for cell in raw:
        if cell is None or (isinstance(cell, float) and cell != cell):
            names.append("")
        elif isinstance(cell, float) and cell.is_integer():
            names.append(str(int(cell)))
        else:
            names.append(str(cell).strip())
    return names


def _check_duplicates(names: Sequence[str], where: str, *, letters: bool = False) -> None:
    """Raise :class:`ReadError` if two non-blank header names are equal."""
    positions: dict[str, list[int]] = {}
    for i, n in enumerate(names, start=1):
        if n:
            positions.setdefault(n, []).append(i)
    dups = {n: p for n, p in positions.items() if len(p) > 1}
    if not dups:
        return
    described = []
    for n, pos in dups.items():
        cols = _join_and([_excel_letter(p) if letters else str(p) for p in pos])
        count = "two" if len(pos) == 2 else str(len(pos))
        both = "both " if len(pos) == 2 else ""
        described.append(f"{count} columns are {both}named {n!r} (columns {cols})")
    one = "one" if len(dups) == 1 and len(next(iter(dups.values()))) == 2 else "all but one"
    raise ReadError(f"{where}: {'; '.join(described)}; rename {one} in the file")


def _is_empty(column: pd.Series) -> bool:
    values = column.dropna()
    if values.empty:
        return True
    if values.map(lambda v: isinstance(v, str)).all():
        return bool(values.str.strip().eq("").all())
    return False


def _finish(
    data: pd.DataFrame, names: list[str], *, letters: bool = False
) -> tuple[pd.DataFrame, tuple[int, ...], int, tuple[str, ...]]:
    """Name the columns of ``data`` (positional) from ``names``, drop empty leftovers.

    Returns the table, the dropped 1-based column positions, the number of dropped trailing
    rows and notes.
    """
    width = max(data.shape[1], len(names))
    names = list(names) + [""] * (width - len(names))
    for j in range(data.shape[1], width):
        data[j] = pd.NA  # a header cell with no data below it
    data = data.set_axis(range(width), axis=1)
    keep, dropped, notes, final = [], [], [], []
    for j, n in enumerate(names):
        if not n and _is_empty(data[j]):
            dropped.append(j + 1)
            continue
        keep.append(j)
        if not n:
            final.append(f"Unnamed: {j}")
            where = _excel_letter(j + 1) if letters else str(j + 1)
            notes.append(f"Column {where} has no header but holds values; kept as 'Unnamed: {j}'.")
        else:
            final.append(n)
    data = data[keep].set_axis(final, axis=1)
    blank = data.isna()
    for c in data.columns:
        if data[c].dtype == object or pd.api.types.is_string_dtype(data[c].dtype):
            blank[c] = blank[c] | data[c].map(lambda v: isinstance(v, str) and not v.strip())
    filled = ~blank.all(axis=1).to_numpy()
    n_rows = len(data)
    last = int(filled.nonzero()[0].max()) + 1 if filled.any() else 0
    data = data.iloc[:last].reset_index(drop=True)
    if data.shape[1]:
        data = data.infer_objects()
    return data, tuple(dropped), n_rows - last, tuple(notes)


# --------------------------------------------------------------------------------------------
# text


def _decode(raw: bytes, name: str, encoding: str | None) -> tuple[str, str]:
    """Decode ``raw``; return the text (without BOM) and the codec name used."""
    if encoding is not None:
        try:
            text = raw.decode(encoding)
        except LookupError as err:
            raise ReadError(
                f"{name}: unknown encoding {encoding!r}; use a name such as 'utf-8', "
                "'utf-16' or 'latin-1'"
            ) from err
        except UnicodeDecodeError as err:
            bad = raw[err.start : err.start + 1].hex()
            raise ReadError(
                f"{name}: not valid {encoding} (byte 0x{bad} at position {err.start}); leave "
                "the encoding out to detect it, or save the file as UTF-8"
            ) from err
        return text.removeprefix("\ufeff"), encoding
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            try:
                return raw[len(bom) :].decode(codec.removesuffix("-sig")), codec
            except UnicodeDecodeError as err:
                raise ReadError(
                    f"{name}: starts with a {_ENCODING_WORDS[codec]} byte-order mark but is "
                    f"not valid {_ENCODING_WORDS[codec]} (position {err.start + len(bom)}); "
                    "save the file again as UTF-8"
                ) from err
    sample = raw[:8192]
    for magic, what in _MAGIC:
        if sample.startswith(magic):
            raise ReadError(f"{name}: this is not a text table but {what}")
    if b"\x00" in sample:
        codec = _utf16_without_bom(sample)
        if codec is None:
            raise ReadError(
                f"{name}: binary data, not a text table; export the table as CSV or .xlsx"
            )
        try:
            return raw.decode(codec), codec
        except UnicodeDecodeError as err:
            raise ReadError(
                f"{name}: binary data, not a text table; export the table as CSV or .xlsx"
            ) from err
    controls = sum(b < 32 and b not in b"\t\n\r\x0b\x0c" for b in sample) + sample.count(b"\x7f")
    if controls > max(2, len(sample) // 100):
        raise ReadError(f"{name}: binary data, not a text table; export the table as CSV or .xlsx")
    for codec in ("utf-8", "cp1252", "latin-1"):
        try:
            return raw.decode(codec), codec
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


def _utf16_without_bom(sample: bytes) -> str | None:
    """``"utf-16-le"``/``"utf-16-be"`` if mostly-ASCII text in UTF-16 without a BOM, else None."""
    sample = sample[: len(sample) // 2 * 2]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    zero_even, zero_odd = even.count(0) / len(even), odd.count(0) / len(odd)
    if zero_odd > 0.7 and zero_even < 0.05:
        return "utf-16-le"
    if zero_even > 0.7 and zero_odd < 0.05:
        return "utf-16-be"
    return None


_TITLE_LOOKAHEAD = 20  # rows searched for the header below titles and notes


def _cells(row: Sequence[Any]) -> list[str]:
    """Return the filled cells of a row, as stripped text."""
    return [str(c).strip() for c in row if c is not None and str(c).strip()]


def _filled(row: Sequence[Any]) -> int:
    return len(_cells(row))


def _title_rows(rows: Sequence[Sequence[Any]]) -> int:
    """Return how many leading rows of ``rows`` (non-blank rows) are titles above the header.

    Lab logs often carry a title or a note above the table ("Fermentation log 2025 -
    confidential", "Operator: K. Meier"): a row of one or two filled cells, fewer than half
    of the widest of the first rows. The header is the first row after such rows with at
    least half as many (and at least 2) filled cells, mostly text (column names, not the
    numbers of a batch); 0 when that is the first row, or when the row found holds numbers:
    then the rows above were a sparse header (names over some columns only), kept as such.
    """
    counts = [_filled(r) for r in rows[:_TITLE_LOOKAHEAD]]
    if not counts or max(counts) < 3:
        return 0
    need = max(2, (max(counts) + 1) // 2)
    i = 0
    while i < len(counts) and counts[i] < need and counts[i] <= 2:  # a title: one or two cells
        i += 1
    if i == 0 or i >= len(counts) or counts[i] < need:
        return 0
    # the row found must name columns (mostly text): else the rows above were a sparse
    # header (names over some columns only) and the row found is the first batch
    cells = _cells(rows[i])
    names = sum(not _is_number(c) for c in cells)
    return i if names * 2 > len(cells) else 0


def _title_note(rows: Sequence[Sequence[Any]], where: str) -> str:
    texts = [" ".join(_cells(r)) for r in rows]
    shown = "; ".join(repr(t[:60]) for t in texts[:3]) + ("; ..." if len(texts) > 3 else "")
    return (
        f"{len(rows)} row(s) above the header {where}hold a title or notes, not column names "
        f"({shown}); the header is the first row that names the columns."
    )


def _sample_rows(text: str, delimiter: str) -> list[list[str]]:
    """Return the first non-blank rows of ``text`` split by ``delimiter`` (quote-aware)."""
    sample = text[:_SAMPLE_CHARS]
    if len(text) > _SAMPLE_CHARS:
        sample = sample[: sample.rfind("\n") + 1] or sample
    rows = []
    try:
        for row in csv.reader(io.StringIO(sample), delimiter=delimiter):
            if any(f.strip() for f in row):
                rows.append(row)
                if len(rows) >= _SAMPLE_ROWS:
                    break
    except csv.Error:
        return rows
    return rows


def _sniff_delimiter(text: str) -> tuple[str, list[str]]:
    """Pick the delimiter among ``, ; tab |``; return it and notes."""
    scores: dict[str, tuple[float, int]] = {}
    for d in _DELIMITERS:
        rows = _sample_rows(text, d)
        rows = rows[_title_rows(rows) :]
        if not rows:
            continue
        n_header = len(rows[0])
        if n_header < 2:
            continue
        data = rows[1:]
        agree = sum(len(r) == n_header for r in data) / len(data) if data else 1.0
        scores[d] = (agree, n_header)
    if not scores:
        return ",", [
            "No delimiter among ',', ';', tab, '|' splits the header; read as a single column."
        ]
    best_agree = max(a for a, _ in scores.values())
    best = [d for d, (a, _) in scores.items() if a == best_agree]
    notes = []
    if best_agree < 0.9:
        notes.append(
            f"Rows have differing numbers of fields; {_DELIMITER_WORDS[best[0]]} fits best."
        )
    if len(best) == 1:
        return best[0], notes
    try:
        sniffed = csv.Sniffer().sniff(text[:_SAMPLE_CHARS], delimiters="".join(_DELIMITERS))
        if sniffed.delimiter in best:
            return sniffed.delimiter, notes
    except csv.Error:
        pass
    return max(best, key=lambda d: scores[d][1]), notes


def _sniff_decimal(rows: list[list[str]], delimiter: str) -> tuple[str, str | None]:
    """Return the decimal and thousands separators suggested by the data rows."""
    if delimiter == ",":
        return ".", None
    comma = dot = thousands = 0
    for row in rows[1:]:
        for f in row:
            f = f.strip()
            if _COMMA_NUMBER.fullmatch(f):
                comma += 1
                thousands += bool(_DOT_THOUSANDS.fullmatch(f))
            elif _DOT_THOUSANDS.fullmatch(f):
                thousands += 1
            elif _DOT_NUMBER.fullmatch(f):
                dot += 1
    if comma and comma >= dot:
        return ",", ("." if thousands and not dot else None)
    return ".", None


def _read_text(
    file: Path, name: str, encoding: str | None, delimiter: str | None, decimal: str | None
) -> tuple[pd.DataFrame, ReadInfo]:
    try:
        raw = file.read_bytes()
    except OSError as err:
        raise ReadError(f"{name}: cannot be read ({err.strerror or err})") from err
    text, codec = _decode(raw, name, encoding)
    if not text.strip():
        raise ReadError(f"{name}: the file holds no data (only blank lines); export it again")
    if any(c in text[:_SAMPLE_CHARS] for c in "\x00\ufffe"):
        raise ReadError(f"{name}: binary data, not a text table; export the table as CSV or .xlsx")

    notes: list[str] = []
    if delimiter is not None:
        delimiter = _DELIMITER_ALIASES.get(delimiter.lower(), delimiter)
        if len(delimiter) != 1:
            raise ReadError(
                f"{name}: delimiter {delimiter!r} must be one character, such as ',', ';', "
                "'|' or 'tab'"
            )
    else:
        delimiter, notes = _sniff_delimiter(text)
    rows = _sample_rows(text, delimiter)
    thousands = None
    if decimal is not None:
        if decimal not in (".", ","):
            raise ReadError(f"{name}: decimal separator {decimal!r} must be '.' or ','")
    else:
        decimal, thousands = _sniff_decimal(rows, delimiter)
    if decimal == delimiter:
        raise ReadError(
            f"{name}: the decimal separator and the delimiter are both {decimal!r}; give the "
            "delimiter explicitly (for example ';')"
        )

    # The header is the first row with a non-blank field below any title rows, read by us,
    # not by pandas.
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    filled: list[tuple[list[str], int]] = []
    try:
        filled = [(row, reader.line_num) for row in reader if _filled(row)]
    except csv.Error as err:
        raise ReadError(
            f"{name}: cannot split line {reader.line_num} into fields ({err}); check the "
            "file's quoting or give the delimiter explicitly"
        ) from err
    titles = _title_rows([row for row, _ in filled])
    header, skip = filled[titles]
    if titles:
        notes.append(_title_note([row for row, _ in filled[:titles]], f"(line {skip}) "))
    width = max(len(row) for row, _ in filled[titles:])
    rows = len(filled) - titles - 1
    # filled fields beyond the header's (trailing empty ones are an export's habit)
    longer = sum(
        sum(bool(f.strip()) for f in row[len(header) :]) >= 2 for row, _ in filled[titles + 1 :]
    )
    if rows and longer > rows / 2 and len(header) > 1:
        # "36,55" in a comma-delimited file is two fields: every row outgrows its header
        comma = " (decimal commas in a comma-delimited file: '36,55' splits into two fields?)"
        raise ReadError(
            f"{name}: {longer} of {rows} rows have filled fields beyond the header's "
            f"{len(header)}{comma if delimiter == ',' else ''}; export with ';' as the "
            "delimiter, or quote the numbers, or give the delimiter explicitly"
        )
    names = _header_names(header)
    _check_duplicates(names, name)

    try:
        data = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            decimal=decimal,
            thousands=thousands,
            header=None,
            names=list(range(width)),
            skiprows=skip,
            index_col=False,
            skip_blank_lines=True,
        )
    except pd.errors.EmptyDataError:  # a header and no data rows
        data = pd.DataFrame(columns=range(width))
    except (pd.errors.ParserError, ValueError) as err:
        message = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise ReadError(
            f"{name}: cannot be parsed as {_DELIMITER_WORDS.get(delimiter, repr(delimiter))}-"
            f"delimited text ({message}); check the quotes and the delimiter, or give the "
            "delimiter explicitly"
        ) from err
    table, dropped, n_dropped, more = _finish(data, names)
    info = ReadInfo(
        path=name,
        format="csv",
        rows=0,
        columns=0,
        encoding=codec,
        delimiter=delimiter,
        decimal=decimal,
        thousands=thousands,
        dropped_columns=dropped,
        dropped_rows=n_dropped,
        notes=tuple(notes) + more,
    )
    return table, info


# --------------------------------------------------------------------------------------------
# Excel, Parquet, JSON


def _read_excel(file: Path, name: str, sheet: str | int | None) -> tuple[pd.DataFrame, ReadInfo]:
    try:
        import openpyxl
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ReadError(
            f"{name}: reading Excel workbooks needs the openpyxl package; install it with "
            "'pip install openpyxl', or save the sheet as CSV"
        ) from err

    with warnings.catch_warnings():
        # openpyxl warns about workbook features it ignores (styles, data validation).
        warnings.filterwarnings("ignore", category=UserWarning, module="openpyxl")
        try:
            book = openpyxl.load_workbook(file, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as err:
            raise ReadError(
                f"{name}: not a readable Excel workbook ({type(err).__name__}: {err}); open "
                "it in Excel and save it again as .xlsx"
            ) from err
        try:
            sheets = tuple(book.sheetnames)
            counts = _numbers_per_sheet(book) if sheet is None and len(sheets) > 1 else None
            chosen = _choose_sheet(name, sheets, sheet, counts)
            where = f"{name}, sheet {chosen!r}"
            first: list[tuple[list[Any], int]] = []  # the first non-blank rows, 0-based
            for i, row in enumerate(book[chosen].iter_rows(values_only=True)):
                if _filled(row):
                    first.append((list(row), i))
                    if len(first) >= _TITLE_LOOKAHEAD:
                        break
        finally:
            book.close()
        if not first:
            raise ReadError(f"{where}: the sheet is empty; choose the sheet that holds the table")
        titles = _title_rows([row for row, _ in first])
        header, skip = first[titles][0], first[titles][1] + 1
        title_notes = (
            (_title_note([row for row, _ in first[:titles]], f"(row {skip}) "),) if titles else ()
        )
        while header and (header[-1] is None or not str(header[-1]).strip()):
            header.pop()
        names = _header_names(header)
        _check_duplicates(names, where, letters=True)
        try:
            data = pd.read_excel(
                file, sheet_name=chosen, header=None, skiprows=skip, engine="openpyxl"
            )
        except Exception as err:  # openpyxl raises many types on malformed sheets
            raise ReadError(
                f"{where}: cannot be read ({type(err).__name__}: {err}); open the workbook in "
                "Excel and save it again"
            ) from err
    table, dropped, n_dropped, notes = _finish(data, names, letters=True)
    notes = (*title_notes, *notes)
    if counts is not None:
        others = ", ".join(repr(s) for s in sheets if s != chosen)
        notes = (
            f"Read sheet {chosen!r}, the one holding the most numbers; the workbook also has "
            f"{others} (choose another with sheet=..., --sheet on the command line).",
            *notes,
        )
    info = ReadInfo(
        path=name,
        format="excel",
        rows=0,
        columns=0,
        sheet=chosen,
        sheets=sheets,
        dropped_columns=dropped,
        dropped_rows=n_dropped,
        notes=notes,
    )
    return table, info


def _numbers_per_sheet(book: Any, max_rows: int = 2_000) -> dict[str, int]:
    """Count the numeric cells of each worksheet (the first ``max_rows`` rows)."""
    counts = {}
    for title in book.sheetnames:
        n = 0
        for i, row in enumerate(book[title].iter_rows(values_only=True)):
            if i >= max_rows:
                break
            n += sum(isinstance(c, (int, float)) and not isinstance(c, bool) for c in row)
        counts[title] = n
    return counts


def _choose_sheet(
    name: str,
    sheets: Sequence[str],
    sheet: str | int | None,
    counts: Mapping[str, int] | None = None,
) -> str:
    """Return the sheet asked for; else the one with the most numbers (``counts``) or the first."""
    listed = ", ".join(repr(s) for s in sheets)
    if sheet is None:
        if not sheets:
            raise ReadError(f"{name}: the workbook has no worksheets")
        return sheets[0] if counts is None else max(sheets, key=lambda s: counts.get(s, 0))
    if isinstance(sheet, bool) or not isinstance(sheet, (str, int)):
        raise ReadError(f"{name}: sheet must be a name or a 0-based number, not {sheet!r}")
    if isinstance(sheet, int):
        if 0 <= sheet < len(sheets):
            return sheets[sheet]
        raise ReadError(
            f"{name}: no sheet number {sheet} (0-based); the workbook has {len(sheets)} "
            f"sheet(s): {listed}"
        )
    if sheet in sheets:
        return sheet
    loose = [s for s in sheets if s.strip().casefold() == sheet.strip().casefold()]
    if len(loose) == 1:
        return loose[0]
    raise ReadError(
        f"{name}: no sheet named {sheet!r}; the workbook has sheets {listed}; choose one of them"
    )


def _read_parquet(file: Path, name: str) -> tuple[pd.DataFrame, ReadInfo]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(file)
    except (pa.ArrowException, OSError) as err:
        raise ReadError(
            f"{name}: not a readable Parquet file ({err}); write it again or export it as CSV"
        ) from err
    names = [n for n in schema.names if not re.fullmatch(r"__index_level_\d+__", n)]
    _check_duplicates(_header_names(names), name)
    try:
        table = pd.read_parquet(file)
    except (pa.ArrowException, OSError, ValueError) as err:
        raise ReadError(f"{name}: cannot be read as Parquet ({err})") from err
    notes: tuple[str, ...] = ()
    if any(n is not None for n in table.index.names):
        kept = ", ".join(repr(n) for n in table.index.names if n is not None)
        table = table.reset_index()
        notes = (f"The stored index ({kept}) is returned as column(s).",)
    raw = [str(c) for c in table.columns]
    table, dropped, n_dropped, more = _finish(
        table.set_axis(range(table.shape[1]), axis=1), _header_names(raw)
    )
    info = ReadInfo(
        path=name,
        format="parquet",
        rows=0,
        columns=0,
        dropped_columns=dropped,
        dropped_rows=n_dropped,
        notes=notes + more,
    )
    return table, info


def _read_json(file: Path, name: str, encoding: str | None) -> tuple[pd.DataFrame, ReadInfo]:
    try:
        raw = file.read_bytes()
    except OSError as err:
        raise ReadError(f"{name}: cannot be read ({err.strerror or err})") from err
    text, codec = _decode(raw, name, encoding)
    if not text.strip():
        raise ReadError(f"{name}: the file holds no data (only blank space); export it again")
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for k, v in items:
            key = k.strip()
            if key in seen and key not in duplicates:
                duplicates.append(key)
            seen[key] = v
        return seen

    try:
        records = json.loads(text, object_pairs_hook=pairs)
    except json.JSONDecodeError as err:
        raise ReadError(
            f"{name}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})"
        ) from err
    if duplicates:
        listed = _join_and([repr(d) for d in duplicates])
        raise ReadError(
            f"{name}: a record names {listed} twice; rename one of the keys in the file"
        )
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ReadError(
            f"{name}: expected a list of records such as "
            '[{"batch_id": "B1", "yield": 2.1}, ...]; write the table with one object per batch'
        )
    if not records:
        raise ReadError(f"{name}: the list of records is empty")
    table = pd.DataFrame.from_records(records)
    names = [str(c) for c in table.columns]
    table, dropped, n_dropped, notes = _finish(
        table.set_axis(range(table.shape[1]), axis=1), _header_names(names)
    )
    counts = Counter(len(r) for r in records)
    if len(counts) > 1:
        notes += ("Records have differing keys; missing keys read as missing values.",)
    info = ReadInfo(
        path=name,
        format="json",
        rows=0,
        columns=0,
        encoding=codec,
        dropped_columns=dropped,
        dropped_rows=n_dropped,
        notes=notes,
    )
    return table, info
