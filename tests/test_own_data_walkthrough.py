"""Own-data walk-through: a lab export (`;`, decimal comma, minutes, odd names), cleaned."""

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayesbio.clean import clean
from bayesbio.cli import app
from bayesbio.io import read_table
from bayesbio.simulate import simulate_batches
from bayesbio.space import ProcessSpace

DATA = Path(__file__).parents[1] / "examples" / "data"
BATCHES = DATA / "messy_batches.csv"
PROCESS = DATA / "messy_process.toml"


@pytest.fixture(scope="module")
def raw():
    return read_table(BATCHES)


@pytest.fixture(scope="module")
def result(raw):
    return clean(raw, space=ProcessSpace.from_toml(PROCESS))


def by_action(log, action):
    return log[log["action"] == action]


def test_file_is_written_the_way_a_lab_would():
    text = BATCHES.read_text(encoding="utf-8")
    header = text.splitlines()[0].split(";")
    assert "Mixing time (min)" in header and "Scale" in header and "Site" in header
    assert ";36,32;" in text  # decimal comma
    assert PROCESS.read_text(encoding="utf-8").count('unit = "min"') == 1


def test_read_table_detects_delimiter_and_decimal_comma(raw):
    assert len(raw) == 30
    assert raw["Mixing time (min)"].dtype == np.float64
    assert raw["Temperature"].dtype == np.float64
    assert raw["Mixing time (min)"].max() < 5  # minutes, not seconds


def test_process_file_is_the_default_space_plus_the_minutes_column():
    space = ProcessSpace.from_toml(PROCESS)
    assert space.fingerprint == ProcessSpace.default().fingerprint
    (spec,) = space.columns
    assert (spec.source, spec.target, spec.unit) == ("Mixing time (min)", "mixing_time", "min")


def test_minutes_are_converted_and_logged(raw, result):
    converted = by_action(result.log, "converted")
    assert converted["column"].tolist() == ["mixing_time"]
    assert "from min to s" in converted["reason"].iloc[0]
    np.testing.assert_allclose(
        result.table["mixing_time"].to_numpy(), 60 * raw["Mixing time (min)"].to_numpy()
    )


def test_capitalised_and_spaced_columns_are_renamed_and_logged(result):
    renamed = by_action(result.log, "renamed")
    pairs = dict(zip(renamed["old_value"], renamed["new_value"], strict=True))
    assert pairs["Scale"] == "scale" and pairs["Site"] == "site"
    assert pairs["Mixing time (min)"] == "mixing_time" and pairs["Batch ID"] == "batch_id"
    assert set(result.table.columns) == set(ProcessSpace.default().numeric_columns) | {
        "batch_id",
        "scale",
        "site",
        "campaign",
    }


def test_fahrenheit_value_is_repaired_and_logged(raw, result):
    (row,) = np.flatnonzero(raw["Temperature"] > 50)
    entry = result.log[(result.log["row"] == row) & (result.log["column"] == "temperature")]
    assert entry["action"].tolist() == ["repaired"]
    assert entry["reason"].iloc[0].startswith("unit slip: Fahrenheit")
    truth = simulate_batches(30, random_seed=7).table
    assert result.table.loc[row, "temperature"] == pytest.approx(
        truth.loc[row, "temperature"], abs=0.01
    )


def test_label_with_trailing_space_is_normalised_and_logged(raw, result):
    (row,) = np.flatnonzero(raw["Site"] != raw["Site"].str.strip())
    entry = result.log[(result.log["row"] == row) & (result.log["column"] == "site")]
    assert entry["reason"].iloc[0] == f"group label normalised: {raw.loc[row, 'Site']!r} -> 'B'"
    assert set(result.table["site"]) == set(raw["Site"].str.strip())


def test_no_rows_are_silently_lost(raw, result):
    dropped = (result.log["action"] == "dropped").sum()
    assert len(raw) == len(result.table) + dropped
    assert dropped == 0 and result.warnings == []


def test_cli_clean_of_the_walkthrough_exits_zero_and_leaves_the_input_unchanged(tmp_path):
    before = hashlib.sha256(BATCHES.read_bytes()).hexdigest()
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["clean", "--data", str(BATCHES), "--process", str(PROCESS), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert hashlib.sha256(BATCHES.read_bytes()).hexdigest() == before
    cleaned = pd.read_csv(out / "clean_batches.csv")
    log = pd.read_csv(out / "cleaning_log.csv")
    assert len(cleaned) == 30
    assert {"converted", "renamed", "repaired"} <= set(log["action"])
