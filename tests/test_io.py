"""Tests of bayesbio.io: every file is generated in tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bayesbio.io import SUPPORTED_EXTENSIONS, ReadError, ReadInfo, read_table, read_table_with_info

openpyxl = pytest.importorskip("openpyxl")


@pytest.fixture
def table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "batch_id": ["B1", "B2", "B3", "B4"],
            "site": ["A", "A", "B", "B"],
            "temperature [°C]": [36.5, 37.0, 37.25, 35.75],
            "dissolved_oxygen [µg/L]": [40.0, 35.5, 50.0, 42.125],
            "day": [1, 2, 3, 4],
            "yield": [1.5, 2.25, 3.0, 2.875],
        }
    )


def _write_excel(path: Path, sheets: dict[str, pd.DataFrame]) -> None:
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            frame.to_excel(writer, sheet_name=name, index=False)


WRITERS = {
    "plain.csv": lambda t, p: t.to_csv(p, index=False),
    "semicolon_decimal_comma.csv": lambda t, p: t.to_csv(p, index=False, sep=";", decimal=","),
    "tab.tsv": lambda t, p: t.to_csv(p, index=False, sep="\t"),
    "tab.txt": lambda t, p: t.to_csv(p, index=False, sep="\t", decimal=","),
    "pipe.csv": lambda t, p: t.to_csv(p, index=False, sep="|"),
    "bom.csv": lambda t, p: t.to_csv(p, index=False, encoding="utf-8-sig"),
    "utf16.csv": lambda t, p: t.to_csv(p, index=False, encoding="utf-16"),
    "utf16be.csv": lambda t, p: p.write_bytes(
        b"\xfe\xff" + t.to_csv(index=False, sep=";").encode("utf-16-be")
    ),
    "latin1.csv": lambda t, p: t.to_csv(p, index=False, encoding="latin-1", sep=";", decimal=","),
    "crlf.csv": lambda t, p: t.to_csv(p, index=False, lineterminator="\r\n"),
    "book.xlsx": lambda t, p: _write_excel(p, {"Batches": t}),
    "table.parquet": lambda t, p: t.to_parquet(p),
    "records.json": lambda t, p: t.to_json(p, orient="records", force_ascii=False),
}


@pytest.mark.parametrize("name", list(WRITERS))
def test_same_table_in_every_format_reads_back_equal(table, tmp_path, name):
    path = tmp_path / name
    WRITERS[name](table, path)
    before = path.read_bytes()
    read, info = read_table_with_info(path)
    pd.testing.assert_frame_equal(read, table)
    assert isinstance(read.index, pd.RangeIndex)
    assert (info.rows, info.columns) == table.shape
    assert info.summary().startswith(f"{path}: ")
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("name", "encoding", "delimiter", "decimal"),
    [
        ("plain.csv", "utf-8", ",", "."),
        ("semicolon_decimal_comma.csv", "utf-8", ";", ","),
        ("tab.tsv", "utf-8", "\t", "."),
        ("tab.txt", "utf-8", "\t", ","),
        ("bom.csv", "utf-8-sig", ",", "."),
        ("utf16.csv", "utf-16-le", ",", "."),
        ("utf16be.csv", "utf-16-be", ";", "."),
        ("latin1.csv", "cp1252", ";", ","),
    ],
)
def test_text_detection_is_reported(table, tmp_path, name, encoding, delimiter, decimal):
    path = tmp_path / name
    WRITERS[name](table, path)
    _, info = read_table_with_info(path)
    assert (info.format, info.encoding, info.delimiter, info.decimal) == (
        "csv",
        encoding,
        delimiter,
        decimal,
    )
    assert info.given == ()
    assert "(detected)" in info.summary()


def test_binary_formats_report_their_format(table, tmp_path):
    WRITERS["book.xlsx"](table, tmp_path / "book.xlsx")
    WRITERS["table.parquet"](table, tmp_path / "table.parquet")
    _, excel = read_table_with_info(tmp_path / "book.xlsx")
    _, parquet = read_table_with_info(tmp_path / "table.parquet")
    assert (excel.format, excel.sheet, excel.sheets, excel.encoding) == (
        "excel",
        "Batches",
        ("Batches",),
        None,
    )
    assert (parquet.format, parquet.delimiter) == ("parquet", None)
    info = excel.to_dict()
    assert info["sheets"] == ["Batches"] and info["rows"] == 4


def test_excel_second_sheet_by_name_or_index(table, tmp_path):
    path = tmp_path / "book.xlsx"
    _write_excel(path, {"Notes": pd.DataFrame({"note": ["exported 2024"]}), "Runs": table})
    pd.testing.assert_frame_equal(read_table(path, sheet="Runs"), table, check_dtype=False)
    pd.testing.assert_frame_equal(read_table(path, sheet=1), table, check_dtype=False)
    pd.testing.assert_frame_equal(read_table(path, sheet=" runs "), table, check_dtype=False)
    # without a sheet: the one holding the table (the most numbers), said in a note
    first, info = read_table_with_info(path)
    pd.testing.assert_frame_equal(first, table, check_dtype=False)
    assert info.sheet == "Runs" and "Read sheet 'Runs'" in info.notes[0]
    assert "'Notes'" in info.notes[0]
    _, info = read_table_with_info(path, sheet="Runs")
    assert info.given == ("sheet",) and info.sheets == ("Notes", "Runs")


@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_a_units_row_under_the_header_is_read_as_units_not_a_batch(table, tmp_path, fmt):
    units = pd.DataFrame([["", "", "°C", "µg/L", "d", "g/L"]], columns=table.columns)
    with_units = pd.concat([units, table.astype(object)], ignore_index=True)
    path = tmp_path / f"units.{fmt}"
    if fmt == "xlsx":
        _write_excel(path, {"Batches": with_units})
    else:
        with_units.to_csv(path, index=False)
    with pytest.warns(UserWarning, match=r"first row under the header holds units.*'°C'"):
        got = read_table(path)
    pd.testing.assert_frame_equal(got, table, check_dtype=False)
    assert pd.api.types.is_numeric_dtype(got["yield"])
    assert got.attrs["units_row"]["temperature [°C]"] == "°C"
    # a first batch with missing values is a batch, not units
    gappy = table.astype(object)
    gappy.loc[0, ["temperature [°C]", "dissolved_oxygen [µg/L]", "day", "yield"]] = "n.a."
    gappy.to_csv(tmp_path / "gappy.csv", index=False)
    assert len(read_table(tmp_path / "gappy.csv")) == len(table)


@pytest.mark.parametrize("fmt", ["xlsx", "csv", "bare.csv"])
def test_title_rows_above_the_header_are_skipped_and_named(table, tmp_path, fmt):
    """A lab log's title and a note above the table are not its header."""
    path = tmp_path / f"log.{fmt}"
    titles = ["Fermentation log 2025 - confidential", "Operator: K. Meier"]
    if fmt == "xlsx":
        book = openpyxl.Workbook()
        sheet = book.active
        sheet.append([titles[0]])
        sheet.append([])
        sheet.append([None, titles[1]])
        sheet.append(list(table.columns))
        for row in table.itertuples(index=False):
            sheet.append(list(row))
        book.save(path)
    else:
        empty = "," * (table.shape[1] - 1) if fmt == "csv" else ""
        head = f"{titles[0]}{empty}\n\n{titles[1]}{empty}\n"
        path.write_text(head + table.to_csv(index=False), encoding="utf-8")
    got, info = read_table_with_info(path)
    pd.testing.assert_frame_equal(got, table, check_dtype=False)
    note = next(n for n in info.notes if "above the header" in n)
    assert "2 row(s) above the header" in note and all(repr(t) in note for t in titles)
    assert ("(row 4)" if fmt == "xlsx" else "(line 4)") in note
    # a sparse header (two names over six columns of values) is still the header
    sparse = tmp_path / f"sparse.{'xlsx' if fmt == 'xlsx' else 'csv'}"
    rows = [["Batch", None, None, None, None, "Yield"]] + [
        [f"B{i}", 1, 2, 3, 4, 5.5] for i in range(3)
    ]
    if fmt == "xlsx":
        book = openpyxl.Workbook()
        for row in rows:
            book.active.append(row)
        book.save(sparse)
    else:
        sparse.write_text(
            "\n".join(",".join("" if c is None else str(c) for c in r) for r in rows) + "\n",
            encoding="utf-8",
        )
    got, info = read_table_with_info(sparse)
    assert len(got) == 3 and "Batch" in got.columns and "Yield" in got.columns
    assert not any("above the header" in n for n in info.notes)
    # a table whose first row names the columns is read as before, without the note
    table.to_csv(tmp_path / "plain.csv", index=False)
    _, info = read_table_with_info(tmp_path / "plain.csv")
    assert not any("above the header" in n for n in info.notes)


def test_missing_sheet_lists_the_sheets(table, tmp_path):
    path = tmp_path / "book.xlsx"
    _write_excel(path, {"Notes": table.iloc[:1], "Runs": table})
    with pytest.raises(ReadError, match=r"no sheet named 'Batches'.*'Notes', 'Runs'") as err:
        read_table(path, sheet="Batches")
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ReadError, match=r"no sheet number 5.*'Notes', 'Runs'"):
        read_table(path, sheet=5)


def test_excel_leftovers_are_dropped_and_reported(table, tmp_path):
    path = tmp_path / "book.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Batches"
    sheet.append([])  # a blank row above the header
    sheet.append([f" {c} " for c in table.columns])
    for row in table.itertuples(index=False):
        sheet.append(list(row))
    sheet.cell(row=2, column=9).value = "   "  # a blank header cell far right
    sheet.cell(row=9, column=10).value = ""  # an "empty" cell well below the data
    sheet.cell(row=9, column=10).number_format = "0.00"
    book.save(path)
    read, info = read_table_with_info(path)
    pd.testing.assert_frame_equal(read, table, check_dtype=False)
    assert info.dropped_columns and all(p > table.shape[1] for p in info.dropped_columns)
    assert "dropped 3 empty unnamed column(s) (G, H and I)" in info.summary()


def test_csv_leftover_columns_and_rows_are_dropped(table, tmp_path):
    path = tmp_path / "export.csv"
    lines = [";".join(table.columns) + ";;"]
    lines += [";".join(str(v).replace(".", ",") for v in row) + ";;" for row in table.values]
    lines += [";" * (table.shape[1] + 1)] * 3
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    read, info = read_table_with_info(path)
    pd.testing.assert_frame_equal(read, table, check_dtype=False)
    assert info.dropped_columns == (7, 8)
    assert info.dropped_rows == 3
    assert (info.delimiter, info.decimal) == (";", ",")


def test_named_empty_column_is_kept_and_unnamed_data_column_is_named(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("batch_id,comment,,yield\nB1,,x,1.5\nB2,,y,2.5\n", encoding="utf-8")
    read, info = read_table_with_info(path)
    assert list(read.columns) == ["batch_id", "comment", "Unnamed: 2", "yield"]
    assert read["comment"].isna().all()
    assert info.dropped_columns == () and "Column 3 has no header" in info.notes[0]


def test_thousands_separator_next_to_decimal_comma(tmp_path):
    path = tmp_path / "de.csv"
    path.write_text("batch_id;volume;yield\nB1;1.250,5;1,5\nB2;2.000,0;2,25\n", encoding="utf-8")
    read, info = read_table_with_info(path)
    np.testing.assert_allclose(read["volume"], [1250.5, 2000.0])
    np.testing.assert_allclose(read["yield"], [1.5, 2.25])
    assert (info.decimal, info.thousands) == (",", ".")


def test_decimal_comma_with_quoted_comma_delimited_fields_needs_no_guess(tmp_path):
    path = tmp_path / "quoted.csv"
    path.write_text('batch_id,notes,yield\nB1,"fed, late",1.5\nB2,"ok",2.5\n', encoding="utf-8")
    read, info = read_table_with_info(path)
    assert read["notes"].tolist() == ["fed, late", "ok"]
    assert (info.delimiter, info.decimal) == (",", ".")


def test_explicit_arguments_override_detection(table, tmp_path):
    path = tmp_path / "semicolon_decimal_comma.csv"
    WRITERS["semicolon_decimal_comma.csv"](table, path)
    as_comma, info = read_table_with_info(path, delimiter=",", decimal=".")
    assert (info.delimiter, info.decimal, info.given) == (",", ".", ("delimiter", "decimal"))
    assert as_comma.shape[1] != table.shape[1]  # the explicit (wrong) delimiter was used
    read, info = read_table_with_info(path, delimiter=";", decimal=",", encoding="utf-8")
    pd.testing.assert_frame_equal(read, table, check_dtype=False)
    assert "(given)" in info.summary()

    tab = tmp_path / "tab.txt"
    WRITERS["tab.txt"](table, tab)
    read, info = read_table_with_info(tab, delimiter="tab")
    pd.testing.assert_frame_equal(read, table, check_dtype=False)
    assert info.delimiter == "\t"

    latin = tmp_path / "latin1.csv"
    WRITERS["latin1.csv"](table, latin)
    read, info = read_table_with_info(latin, encoding="latin-1")
    assert info.encoding == "latin-1" and "temperature [°C]" in read.columns
    with pytest.raises(ReadError, match=r"not valid utf-8 \(byte 0x"):
        read_table(latin, encoding="utf-8")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "batch_id,site,ph,temp,yield,od,yield\nB1,A,7,37,1.5,2,1.6\n",
            r"two columns are both named 'yield' \(columns 5 and 7\); rename one in the file",
        ),
        (
            "batch_id; yield ;yield\nB1;1,5;1,6\n",
            r"both named 'yield' \(columns 2 and 3\)",
        ),
        (
            "a,b,a,b,a\n1,2,3,4,5\n",
            r"3 columns are named 'a' \(columns 1, 3 and 5\); two columns are both named 'b'",
        ),
    ],
)
def test_duplicate_column_names_are_an_error(tmp_path, text, message):
    path = tmp_path / "my.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ReadError, match=message) as err:
        read_table(path)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)


def test_duplicate_column_names_in_excel_and_json(tmp_path):
    path = tmp_path / "book.xlsx"
    book = openpyxl.Workbook()
    book.active.append(["batch_id", "yield", "ph", "yield"])
    book.active.append(["B1", 1.5, 7.0, 1.6])
    book.save(path)
    with pytest.raises(ReadError, match=r"sheet 'Sheet'.*'yield' \(columns B and D\)"):
        read_table(path)
    records = tmp_path / "records.json"
    records.write_text('[{"batch_id": "B1", "yield": 1.5, "yield ": 1.6}]', encoding="utf-8")
    with pytest.raises(ReadError, match="names 'yield' twice"):
        read_table(records)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ReadError, match="file not found"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(ReadError, match="is a folder"):
        read_table(tmp_path)


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"\xef\xbb\xbf", b"\xff\xfe"])
def test_empty_files(tmp_path, content):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(ReadError, match=r"empty|no data") as err:
        read_table(path)
    assert "\n" not in str(err.value)


def test_empty_excel_sheet(tmp_path):
    path = tmp_path / "book.xlsx"
    openpyxl.Workbook().save(path)
    with pytest.raises(ReadError, match=r"sheet 'Sheet'.*empty"):
        read_table(path)


@pytest.mark.parametrize("name", ["data.xls", "data.ods", "data.sav", "data"])
def test_unsupported_extension_lists_the_supported_ones(tmp_path, name):
    path = tmp_path / name
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ReadError, match="not supported") as err:
        read_table(path)
    assert all(ext in str(err.value) for ext in SUPPORTED_EXTENSIONS)


def test_binary_files_posing_as_text(table, tmp_path):
    rng = np.random.default_rng(0)
    noise = tmp_path / "noise.csv"
    noise.write_bytes(rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(ReadError, match="binary data"):
        read_table(noise)
    renamed = tmp_path / "really_excel.csv"
    _write_excel(renamed.with_suffix(".xlsx"), {"Sheet1": table})
    renamed.write_bytes(renamed.with_suffix(".xlsx").read_bytes())
    with pytest.raises(ReadError, match=r"give it the \.xlsx name"):
        read_table(renamed)
    fake = tmp_path / "fake.xlsx"
    fake.write_text("batch_id,yield\nB1,1.5\n", encoding="utf-8")
    with pytest.raises(ReadError, match="not a readable Excel workbook"):
        read_table(fake)
    fake_parquet = tmp_path / "fake.parquet"
    fake_parquet.write_text("batch_id,yield\nB1,1.5\n", encoding="utf-8")
    with pytest.raises(ReadError, match="not a readable Parquet file"):
        read_table(fake_parquet)


def test_options_that_do_not_apply_are_an_error(table, tmp_path):
    csv_path = tmp_path / "plain.csv"
    WRITERS["plain.csv"](table, csv_path)
    with pytest.raises(ReadError, match="sheet option applies to Excel workbooks only"):
        read_table(csv_path, sheet="Batches")
    with pytest.raises(ReadError, match="decimal separator and the delimiter are both ','"):
        read_table(csv_path, decimal=",")
    with pytest.raises(ReadError, match="must be one character"):
        read_table(csv_path, delimiter=";;")
    with pytest.raises(ReadError, match="unknown encoding 'klingon'"):
        read_table(csv_path, encoding="klingon")
    book = tmp_path / "book.xlsx"
    WRITERS["book.xlsx"](table, book)
    with pytest.raises(ReadError, match="delimiter option applies to text files only"):
        read_table(book, delimiter=";")


def test_ragged_rows_are_a_read_error_or_read_padded(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b,c\n1,2,3\n4,5\n6,7,8\n", encoding="utf-8")
    read = read_table(path)
    assert read.shape == (3, 3) and np.isnan(read.loc[1, "c"])
    bad = tmp_path / "bad.csv"
    bad.write_text('a,b\n1,"unclosed\n', encoding="utf-8")
    with pytest.raises(ReadError, match=r"bad\.csv: cannot be parsed"):
        read_table(bad)


def test_utf16_without_bom(table, tmp_path):
    path = tmp_path / "nobom.csv"
    path.write_bytes(table.to_csv(index=False, sep="\t").encode("utf-16-le"))
    read, info = read_table_with_info(path)
    pd.testing.assert_frame_equal(read, table)
    assert (info.encoding, info.delimiter) == ("utf-16-le", "\t")


def test_header_only_and_single_column_files(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("batch_id;yield\n", encoding="utf-8")
    read, info = read_table_with_info(path)
    assert list(read.columns) == ["batch_id", "yield"] and info.rows == 0
    single = tmp_path / "single.csv"
    single.write_text("batch_id yield\nB1 1.5\n", encoding="utf-8")
    read, info = read_table_with_info(single)
    assert read.shape == (1, 1) and "single column" in info.notes[0]
    read = read_table(single, delimiter="space")
    assert list(read.columns) == ["batch_id", "yield"] and read["yield"].tolist() == [1.5]


def test_input_file_is_never_modified(table, tmp_path):
    for name, write in WRITERS.items():
        path = tmp_path / name
        write(table, path)
        os.utime(path, (1_000_000_000, 1_000_000_000))
        before = path.read_bytes()
        read_table(path)
        assert path.read_bytes() == before
        assert path.stat().st_mtime == 1_000_000_000


def test_read_info_is_plain_data():
    info = ReadInfo(path="x.csv", format="csv", rows=2, columns=3, encoding="utf-8", notes=("n",))
    assert info.to_dict()["notes"] == ["n"]
    assert info.summary() == "x.csv: CSV, encoding UTF-8 (detected); 2 rows x 3 columns; n"


def test_decimal_commas_in_a_comma_delimited_file_are_named_not_misread(tmp_path):
    path = tmp_path / "lims.csv"
    path.write_text(
        "Run,Temp (°C),pH,Titer (g/L)\nR1,36,55,7,06,1,75\nR2,36,5,7,1,2,24\nR3,37,7,0,1,9\n",
        encoding="utf-8",
    )
    with pytest.raises(ReadError, match=r"3 of 3 rows have filled fields beyond the header's 4"):
        read_table(path)
    with pytest.raises(ReadError, match=r"decimal commas in a comma-delimited file"):
        read_table(path)
