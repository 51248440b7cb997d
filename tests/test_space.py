"""The process space: construction checks, TOML/JSON round trips, column mapping, inference."""

import math
import re

import numpy as np
import pandas as pd
import pytest

from bayesbio.space import (
    ColumnSpec,
    Factor,
    ProcessSpace,
    Response,
    SpaceError,
    convert_units,
    infer_space,
    is_campaign,
    resolve_space,
    space_to_starter_toml,
)

GOOD_TOML = """
[process]
name = "Microbial fed-batch"
batch_id = "run"
groups = ["site"]

[[factors]]
name = "temperature"
unit = "degC"
operating = [28.0, 34.0]
limits = [4.0, 50.0]

[[factors]]
name = "agitation"
unit = "rpm"
operating = [100.0, 300.0]

[response]
name = "titer"
unit = "g/L"
limits = [0.0, 50.0]
direction = "maximise"
"""


def write(tmp_path, text, name="process.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def toml_with(old, new):
    assert old in GOOD_TOML
    return GOOD_TOML.replace(old, new)


# ----------------------------------------------------------------------------- default space
def test_default_space_is_the_four_factor_demo_process():
    sp = ProcessSpace.default()
    assert sp.factor_names == ("mixing_time", "temperature", "ph", "dissolved_oxygen")
    assert sp.k == 4 and sp.response.name == "yield" and sp.response.maximise
    assert sp.groups == ("scale", "site", "campaign") and sp.batch_id == "batch_id"
    assert [sp.short(f) for f in sp.factor_names] == ["mix", "temp", "ph", "do"]
    assert sp.axis_label("temperature") == "Temperature [°C]"
    assert sp.axis_label("ph") == "pH"
    assert sp.axis_label("yield") == "Yield (titer) [g/L]"
    assert sp.axis_label("operator") == "operator"
    assert resolve_space(None) is sp


def test_standardise_maps_operating_range_to_unit_interval_and_back():
    sp = ProcessSpace.default()
    corners = np.vstack([sp.lower, sp.upper, sp.centre])
    z = sp.standardise(pd.DataFrame(corners, columns=sp.factor_names))
    np.testing.assert_allclose(z, [[-1] * 4, [1] * 4, [0] * 4])
    np.testing.assert_allclose(sp.unstandardise(z), corners)
    with pytest.raises(SpaceError, match=r"lacks factor column\(s\) \['ph'\]"):
        sp.standardise(pd.DataFrame(corners, columns=sp.factor_names).drop(columns="ph"))


# ----------------------------------------------------------------------------- round trips
def test_toml_round_trip_through_a_file(tmp_path):
    sp = ProcessSpace.default().with_changes(
        columns=(ColumnSpec("Mixing (min)", "mixing_time", "min"), ColumnSpec("Titer", "yield"))
    )
    path = tmp_path / "space.toml"
    text = sp.to_toml(path)
    assert path.read_text(encoding="utf-8") == text
    back = ProcessSpace.from_toml(path)
    # TOML writes plain values before tables, so the [columns] entries may come back reordered
    assert set(back.columns) == set(sp.columns)
    assert back.with_changes(columns=sp.columns) == sp
    assert back.fingerprint == sp.fingerprint
    assert resolve_space(path) == back and resolve_space(str(path)) == back


def test_toml_file_with_custom_process_loads(tmp_path):
    sp = ProcessSpace.from_toml(write(tmp_path, GOOD_TOML))
    assert sp.factor_names == ("temperature", "agitation")
    assert sp.batch_id == "run" and sp.groups == ("site",)
    assert sp.factor("agitation").limits == (-math.inf, math.inf)
    assert sp.units == {"temperature": "degC", "agitation": "rpm", "titer": "g/L"}


def test_json_round_trip_keeps_the_space_and_its_fingerprint():
    sp = ProcessSpace(
        factors=(
            Factor("feed_rate", "mL/h", (1.0, 5.0), (0.0, 20.0), fixed=2.0, short="feed"),
            Factor("temperature", "degC", (28.0, 34.0)),
        ),
        response=Response("impurity", "mg/L", (0.0, 100.0), "minimise", typical=(1.0, 10.0)),
        groups=("site",),
    )
    back = ProcessSpace.from_json(sp.to_json())
    assert back == sp
    assert back.fingerprint == sp.fingerprint
    assert back.fixed == {"feed_rate": 2.0} and back.free_factors == ("temperature",)
    assert not back.response.maximise
    with pytest.raises(SpaceError, match="not valid JSON"):
        ProcessSpace.from_json("{not json")


def test_fingerprint_ignores_the_name_and_column_mapping_but_not_ranges():
    sp = ProcessSpace.default()
    assert sp.with_changes(name="other").fingerprint == sp.fingerprint
    assert sp.with_changes(columns=(ColumnSpec("T", "temperature"),)).fingerprint == sp.fingerprint
    wider = Factor("ph", "pH", (6.5, 7.5), (5.5, 8.5))
    changed = sp.with_changes(factors=(*sp.factors[:2], wider, sp.factors[3]))
    assert changed.fingerprint != sp.fingerprint


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        (
            "operating = [28.0, 34.0]",
            "operating = [34.0, 28.0]",
            r"'temperature': operating range \[34, 28\] is inverted",
        ),
        (
            "limits = [4.0, 50.0]",
            "limits = [30.0, 50.0]",
            r"'temperature': limits \[30, 50\] must contain the operating range \[28, 34\]",
        ),
        ('unit = "rpm"', 'unit = "bogons"', r"'agitation': unknown unit"),
        ('unit = "rpm"', 'unit = "TODO"', r"'agitation': unit is still 'TODO'"),
        ('name = "agitation"', 'name = "Temperature"', r"duplicate name 'Temperature'"),
        ('direction = "maximise"', 'direction = "up"', r"response 'titer'.*direction"),
        ("[response]", "[responses]", r"unknown section\(s\) \['responses'\]"),
        (
            'unit = "rpm"',
            'unit = "rpm"\nmax = 3',
            r"\[\[factors\]\] entry 2: unknown key\(s\) \['max'\]",
        ),
        ('groups = ["site"]', 'groups = ["site"]\nowner = "me"', r"\[process\]: unknown key"),
        (
            "limits = [4.0, 50.0]",
            "limits = [4.0, 50.0]\nfixed = 80.0",
            r"'temperature': fixed value 80 is outside the limits \[4, 50\]",
        ),
        (
            "[response]",
            '[columns]\n"Temp" = "temp"\n\n[response]',
            r"column mapping 'Temp' -> 'temp': the space has no column 'temp'",
        ),
        (
            "[response]",
            '[columns]\n"Stir" = { to = "agitation", unit = "degC" }\n\n[response]',
            r"column 'Stir' -> 'agitation'.*different dimensions",
        ),
    ],
    ids=[
        "inverted_range",
        "limits_not_containing_range",
        "unknown_unit",
        "todo_unit",
        "duplicate_names",
        "bad_direction",
        "unknown_section",
        "unknown_factor_key",
        "unknown_process_key",
        "fixed_outside_limits",
        "unknown_mapping_target",
        "mapping_unit_not_convertible",
    ],
)
def test_bad_process_file_raises_space_error_naming_the_place(tmp_path, old, new, match):
    path = write(tmp_path, toml_with(old, new))
    with pytest.raises(SpaceError, match=match) as info:
        ProcessSpace.from_toml(path)
    assert "process.toml" in str(info.value)


def test_space_errors_from_python_name_the_factor():
    with pytest.raises(SpaceError, match="factor 'ph': operating range"):
        Factor("ph", "pH", (7.5, 6.6))
    with pytest.raises(SpaceError, match="factor 'x': unknown unit 'bogons'"):
        Factor("x", "bogons", (0.0, 1.0))
    with pytest.raises(SpaceError, match="at least one factor"):
        ProcessSpace(factors=())
    with pytest.raises(SpaceError, match="duplicate name"):
        ProcessSpace(factors=(Factor("a", "s", (0.0, 1.0)), Factor("A", "s", (0.0, 1.0))))
    with pytest.raises(SpaceError, match="lower limit -1 is negative"):
        Response("titer", "g/L", (-1.0, 10.0))
    with pytest.raises(SpaceError, match="not valid TOML"):
        ProcessSpace.from_toml(_bad_toml())
    with pytest.raises(SpaceError, match="not found"):
        ProcessSpace.from_toml("/nonexistent/process.toml")
    with pytest.raises(SpaceError, match="space must be a ProcessSpace"):
        resolve_space(42)


def _bad_toml():
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "broken.toml"
    path.write_text("[[factors]\nname = ", encoding="utf-8")
    return path


def test_unknown_factor_lookup_lists_known_ones():
    with pytest.raises(SpaceError, match=r"unknown factor 'rpm'.*'temperature'"):
        ProcessSpace.default().factor("rpm")


# ----------------------------------------------------------------------------- map_columns
def test_map_columns_renames_capitalised_columns_and_logs_it():
    sp = ProcessSpace.default()
    table = pd.DataFrame({"Scale": ["2L"], "Batch ID": ["B1"], "PH": [7.0], "operator": ["x"]})
    out, actions = sp.map_columns(table)
    assert list(out.columns) == ["scale", "batch_id", "ph", "operator"]
    assert {a["column"] for a in actions} == {"scale", "batch_id", "ph"}
    assert all(a["action"] == "renamed" for a in actions)
    assert "'Scale' read as 'scale'" in next(a["reason"] for a in actions if a["column"] == "scale")
    assert list(table.columns) == ["Scale", "Batch ID", "PH", "operator"]  # input untouched


def test_map_columns_converts_a_column_declared_in_minutes_to_seconds():
    sp = ProcessSpace.default().with_changes(
        columns=(ColumnSpec("Mixing time (min)", "mixing_time", "min"),)
    )
    table = pd.DataFrame({"mixing time (MIN)": [0.5, 1.0, np.nan]})
    out, actions = sp.map_columns(table)
    np.testing.assert_allclose(out["mixing_time"], [30.0, 60.0, np.nan])
    assert [a["action"] for a in actions] == ["renamed", "converted"]
    assert "converted from min to s (2 values)" in actions[1]["reason"]


def test_map_columns_rejects_duplicate_and_clashing_column_names():
    sp = ProcessSpace.default()
    dup = pd.DataFrame([[7.0, 7.1]], columns=["ph", "ph"])
    with pytest.raises(SpaceError, match=r"duplicate column name\(s\) \['ph'\]"):
        sp.map_columns(dup)
    both = pd.DataFrame({"Site": ["A"], "SITE": ["B"]})
    with pytest.raises(SpaceError, match=r"\['Site', 'SITE'\] all match 'site'"):
        sp.map_columns(both)


def test_convert_units_handles_offset_and_rejects_other_dimensions():
    np.testing.assert_allclose(
        convert_units([32.0, 98.6, 212.0], "degF", "degC"), [0, 37, 100], atol=1e-9
    )
    np.testing.assert_allclose(convert_units([310.15], "K", "degC"), [37.0])
    # no floating-point noise in the tables people read: 98.6 degF is 37 degC exactly
    assert convert_units([98.6, 99.5], "degF", "degC").tolist() == [37.0, 37.5]
    assert str(convert_units([0.1], "L", "mL")[0]) == "100.0"
    assert np.isnan(convert_units([np.nan], "degF", "degC")[0])
    np.testing.assert_allclose(convert_units([1.5], "min", "s"), [90.0])
    np.testing.assert_allclose(convert_units([250.0], "mg/L", "g/L"), [0.25])
    with pytest.raises(SpaceError, match="different dimensions"):
        convert_units([1.0], "mg/L", "% air sat.")


# ----------------------------------------------------------------------------- inference
def test_infer_space_drafts_a_valid_space_with_notes():
    table = pd.DataFrame(
        {
            "Batch": ["a", "b", "c", "d"],
            "Site": ["x", "x", "y", "y"],
            "Temp_C": [30.0, 31.0, 32.0, 33.0],
            "stir": [100.0, 200.0, 150.0, 120.0],
            "Titer": [1.0, 2.0, 3.0, 4.0],
        }
    )
    sp, notes = infer_space(table)
    assert sp.factor_names == ("Temp_C", "stir")
    assert sp.response.name == "Titer" and sp.batch_id == "Batch" and sp.groups == ("Site",)
    assert sp.units["Temp_C"] == "degC"
    lo, hi = sp.factor("Temp_C").operating
    assert lo < 30.0 and hi > 33.0
    assert any("unknown: marked TODO" in n for n in notes)
    starter = space_to_starter_toml(sp, notes)
    assert 'unit = "TODO"' in starter and starter.startswith("# Process space drafted")


def test_starter_toml_must_be_edited_before_it_loads(tmp_path):
    table = pd.DataFrame({"stir": [1.0, 2.0, 3.0], "yield": [1.0, 2.0, 3.0]})
    sp, notes = infer_space(table)
    path = write(tmp_path, space_to_starter_toml(sp, notes))
    with pytest.raises(SpaceError, match="factor 'stir': unit is still 'TODO'"):
        ProcessSpace.from_toml(path)
    path.write_text(path.read_text().replace('"TODO"', '"rpm"'), encoding="utf-8")
    assert ProcessSpace.from_toml(path).units["stir"] == "rpm"


def test_infer_space_asks_for_the_response_when_none_is_named_like_one():
    with pytest.raises(SpaceError, match=r"name it: response='Feed rate' in Python, --response "
                       r"'Feed rate' on the command line"):  # fmt: skip
        infer_space(pd.DataFrame({"a": [1.0, 2.0], "Feed rate": [3.0, 4.0]}))
    # a product measured as an activity (or productivity, expression) is the response
    table = pd.DataFrame(
        {"Agitation": [400.0, 450.0], "Enzyme activity": [650.0, 700.0], "pH": [7.0, 7.1]}
    )
    sp, notes = infer_space(table)
    assert sp.response.name == "Enzyme activity"
    assert "response: 'Enzyme activity' (named like a product measure)" in notes


def test_infer_space_reads_a_messy_real_file_as_a_scientist_would():
    rng = np.random.default_rng(0)
    n = 30
    table = pd.DataFrame(
        {
            "Batch": [f"B{i:02d}" for i in range(n - 1)] + ["B03"],  # one duplicated row
            "Start date": pd.date_range("2024-01-01", periods=n, freq="7D").strftime("%Y-%m-%d"),
            "Site": rng.choice(["Basel", "Cork"], n),
            "Feed rate (%/day)": np.r_[rng.uniform(2.0, 6.0, n - 1), -250.0],
            "Temperature (°C)": rng.uniform(34.0, 37.0, n),
            "HCP impurity (ppm)": rng.uniform(50.0, 200.0, n),
        }
    )
    sp, notes = infer_space(table, response="HCP impurity (ppm)")
    text = "\n".join(notes)
    assert sp.batch_id == "Batch" and "some ids repeat" in text
    assert sp.groups == ("Site",) and "dates, not used as factors or groups: ['Start date']" in text
    # '/' cannot be a name in a saved model: a safe name, the header mapped under [columns]
    assert sp.factor_names == ("Feed rate (% per day)", "Temperature (°C)")
    assert ColumnSpec("Feed rate (%/day)", "Feed rate (% per day)") in sp.columns
    # the label leaves the unit to the unit field: plots read "Feed rate [%/day]", not twice
    assert sp.factor("Feed rate (% per day)").label == "Feed rate"
    assert sp.factor("Temperature (°C)").label == "Temperature"
    assert sp.response.label == "HCP impurity"
    assert sp.factor_name("Feed rate (%/day)") == "Feed rate (% per day)"  # header still works
    assert sp.units["Temperature (°C)"] == "degC"
    # the impossible -250 %/day is named and left out of the drafted operating range, and the
    # drafted limits start at 0 so that the cleaner drops it
    assert "[-250.0] negative among positive values" in text
    assert sp.factor("Feed rate (% per day)").operating[0] > 0
    assert sp.limits["Feed rate (% per day)"] == (0.0, math.inf)
    assert sp.response.direction == "minimise" and sp.response.unit == "ppm"
    with pytest.raises(SpaceError, match=r"contains '/'.*\[columns\]"):
        Factor("Feed rate (%/day)", "dimensionless", (0.0, 1.0))


def test_infer_space_keeps_doe_excursions_in_the_range_and_drafts_limits_against_a_slip():
    # a history clustered at its recipe (36.5 degC, feed 3 %/d) with deliberate DoE runs and
    # one lost decimal point (3.65 for 36.5): the runs are real settings, the slip is not
    rng = np.random.default_rng(3)
    n = 40
    temp = np.round(rng.normal(36.5, 0.05, n), 2)
    feed = np.round(rng.normal(3.0, 0.05, n), 2)
    temp[:3], feed[3:6] = (35.0, 35.5, 37.4), (4.5, 5.0, 5.5)
    temp[6] = 3.65
    table = pd.DataFrame(
        {
            "Run": [f"R{i}" for i in range(n)],
            "Temp (°C)": temp,
            "Feed (%/d)": feed,
            "Titer (g/L)": rng.uniform(1.0, 3.0, n),
        }
    )
    sp, notes = infer_space(table, response="Titer (g/L)")
    text = "\n".join(notes)
    lo, hi = sp.factor("Temp (°C)").operating
    assert lo < 35.0 and hi > 37.4  # the excursions are inside the drafted operating range
    assert sp.factor("Feed (% per d)").operating[1] > 5.5
    assert "[35.0, 35.5, 37.4] beyond 3 interquartile ranges" in text and "kept in" in text
    assert "[3.65] far outside the bulk" in text
    # the slip is outside the drafted limits, so the cleaner drops it (and says why)
    t_lo, t_hi = sp.limits["Temp (°C)"]
    assert 3.65 < t_lo < 35.0 and t_hi > 37.4
    assert sp.limits["Feed (% per d)"] == (0.0, math.inf)  # no slip: limits from 0 as before
    # one note for the temperature's limits: drafted inside the physical ones, not two notes
    # that seem to contradict each other
    limit_notes = [n for n in notes if n.startswith("factor 'Temp (°C)'") and "limits" in n]
    assert len(limit_notes) == 1
    assert f"limits drafted at [{t_lo:g}, {t_hi:g}], inside the physical [0, 100]" in text


def _temperature_slips(seed, centre, sd, slips, n=20):
    """A run table of temperatures in °C near ``centre`` whose last values are ``slips``."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "Run": [f"R{i}" for i in range(n)],
            "Temp (°C)": np.r_[rng.normal(centre, sd, n - len(slips)), slips],
            "Titer (g/L)": rng.uniform(1.0, 3.0, n),
        }
    )


def test_infer_space_reads_a_fahrenheit_slip_in_a_celsius_column_as_such():
    table = _temperature_slips(3, 36.5, 0.3, [98.6])
    _, notes = infer_space(table, response="Titer (g/L)")
    assert any(
        n.startswith("factor 'Temp (°C)': 98.6 reads as 37 °C if written in °F") for n in notes
    )
    (limits,) = [n for n in notes if "limits drafted at" in n]
    assert "inside the physical [0, 100] °C" in limits
    assert "repaired where it reads as a unit slip, else dropped" in limits


def test_infer_space_says_a_kelvin_value_in_a_celsius_column_is_repaired_not_dropped():
    table = _temperature_slips(4, 25.0, 1.0, [298.55, 250.0])
    _, notes = infer_space(table, response="Titer (g/L)")
    (limits,) = [n for n in notes if "physical limits [0, 100]" in n]
    assert "298.55 reads as 25.4 °C in kelvin: the cleaner repairs such a slip" in limits
    assert "the cleaner will drop [250.0] as impossible" in limits


def test_infer_space_drafts_a_share_to_minimise_in_percent():
    rng = np.random.default_rng(6)
    n = 20
    table = pd.DataFrame(
        {
            "Batch": [f"B{i}" for i in range(n)],
            "Temp (°C)": rng.normal(25.0, 1.0, n),
            "DO (%)": rng.uniform(20.0, 40.0, n),
            "Clipped variant (%)": rng.uniform(3.0, 9.0, n),
        }
    )
    sp, notes = infer_space(table, response="Clipped variant (%)")
    assert sp.response.unit == "%" and sp.response.limits == (0.0, 100.0)
    assert sp.response.direction == "minimise"
    assert sp.units["DO (%)"] == "% air sat."  # a factor named like oxygen keeps its unit
    assert "response limits [0, 100] % (a share)" in notes


def test_infer_space_reads_a_share_factor_in_percent_and_days_in_d():
    rng = np.random.default_rng(7)
    n = 20
    table = pd.DataFrame(
        {
            "Glucose feed (%)": rng.uniform(3.0, 6.0, n),
            "Shift day (d)": rng.uniform(3.0, 8.0, n),
            "pO2 %": rng.uniform(20.0, 60.0, n),
            "Titer (g/L)": rng.uniform(3.0, 5.0, n),
        }
    )
    sp, _ = infer_space(table, response="Titer (g/L)")
    # a feed share is not oxygen saturation (the cleaner repairs DO-only slips in that unit)
    assert sp.units["Glucose feed (%)"] == "%"
    assert sp.factor("Glucose feed (%)").limits == (0.0, 100.0)
    assert sp.units["Shift day (d)"] == "day"
    assert sp.units["pO2 %"] == "% air sat."


def test_infer_space_names_batches_a_status_column_marks_as_failed():
    rng = np.random.default_rng(5)
    n = 12
    table = pd.DataFrame(
        {
            "Run": [f"R{i}" for i in range(n)],
            "Temp (°C)": rng.uniform(35.0, 37.0, n),
            "Titer (g/L)": rng.uniform(1.0, 3.0, n),
            "Status": ["OK"] * (n - 2) + ["Contaminated", "Aborted"],
        }
    )
    _, notes = infer_space(table, response="Titer (g/L)")
    said = [t for t in notes if t.startswith("column 'Status'")]
    assert said == [
        "column 'Status': 2 batch(es) marked ['Aborted', 'Contaminated']: failed batches? "
        "`bayesbio clean` drops those with no product (response 0 or empty) and names the "
        "others; drop them from the file if their failure says nothing about their setpoints"
    ]


def test_infer_space_keeps_factors_with_a_few_cells_written_as_text(tmp_path):
    """A user's file: "250 rpm" and "6,9" in numeric columns, a notes column, an empty one."""
    n = 20
    rng = np.random.default_rng(1)
    agitation = rng.uniform(300.0, 600.0, n).round(0).astype(object)
    agitation[3] = "250 rpm"
    ph = rng.uniform(6.8, 7.2, n).round(2).astype(object)
    ph[5] = "6,9"
    notes = [None] * n
    notes[2], notes[7], notes[11] = "foam at 48 h", "probe swapped", "late feed"
    table = pd.DataFrame(
        {
            "Run": [f"R{i}" for i in range(n)],
            "Reactor": rng.choice(["A", "B", "C"], n),
            "Agitation (rpm)": agitation,
            "Feed rate (mL/h)": rng.uniform(5.0, 20.0, n),
            "Duration (days)": rng.integers(10, 15, n).astype(float),
            "pH": ph,
            "Comments": [None] * n,
            "Operator notes": notes,
            "Titer (mg/L)": rng.uniform(800.0, 1500.0, n),
        }
    )
    sp, notes_out = infer_space(table)
    text = "\n".join(notes_out)
    assert sp.factor_names == (
        "Agitation (rpm)", "Feed rate (mL per h)", "Duration (days)", "pH",
    )  # fmt: skip
    assert "['250 rpm']" in text and "['6,9']" in text
    assert sp.groups == ("Reactor",)
    assert "not drafted as groups" in text and "'Operator notes'" in text
    assert "empty columns, not used: ['Comments']" in text
    # units pint reads in brackets; the starter file loads as drafted
    assert sp.units["Feed rate (mL per h)"] == "mL/h" and sp.units["Duration (days)"] == "days"
    loaded = ProcessSpace.from_toml(write(tmp_path, space_to_starter_toml(sp, notes_out)))
    assert loaded.limits["Agitation (rpm)"] == (0.0, math.inf)


def test_infer_space_leaves_typed_dates_out_and_reads_a_ph_setpoint(tmp_path):
    """An Excel sheet gives dates as datetime64 and durations as timedelta64, not as text."""
    n = 12
    rng = np.random.default_rng(2)
    table = pd.DataFrame(
        {
            "Batch": [f"CHO-{i:03d}" for i in range(n)],
            "Start date": pd.date_range("2023-01-05", periods=n, freq="9D"),
            "Seed age": pd.to_timedelta(rng.integers(3, 6, n), unit="D"),
            "pH setpoint": rng.uniform(6.8, 7.2, n),
            "Agitation (rpm)": rng.uniform(80.0, 200.0, n),
            "Titer (g/L)": rng.uniform(2.0, 6.0, n),
        }
    )
    sp, notes = infer_space(table)
    assert sp.factor_names == ("pH setpoint", "Agitation (rpm)")
    assert "dates, not used as factors or groups: ['Start date', 'Seed age']" in notes
    assert sp.units["pH setpoint"] == "pH"


def _drafted(n, seed, columns):
    """A batch table ``Batch`` + columns, each uniform in its (low, high) or given as a list."""
    rng = np.random.default_rng(seed)
    data = {"Batch": [f"B{i:02d}" for i in range(n)]}
    for name, spec in columns.items():
        data[name] = spec if isinstance(spec, list) else rng.uniform(*spec, n)
    return infer_space(pd.DataFrame(data))


def test_infer_space_keeps_a_chosen_value_named_like_an_outcome_as_a_factor():
    # "OD600 at induction" is the induction trigger a scientist chooses; "Final OD600" is
    # measured: only the latter is left out of the drafted factors
    columns = {
        "Agitation [rpm]": (500.0, 700.0),
        "OD600 at induction": (15.0, 30.0),
        "pH setpoint": (6.8, 7.2),
        "Final OD600": (80.0, 120.0),
        "Titer (g/L)": (1.0, 4.0),
    }
    sp, notes = _drafted(16, 1, columns)
    assert sp.factor_names == ("Agitation [rpm]", "OD600 at induction", "pH setpoint")
    assert "measured outcomes, not setpoints: ['Final OD600']" in "\n".join(notes)
    assert any("widen each to what the process allows" in n for n in notes)


def test_infer_space_reads_a_unit_written_after_the_name_without_brackets():
    columns = {
        "Feed rate g/L/h": (4.0, 8.0),
        "Agitation rpm": (500.0, 700.0),
        "Ratio a/b": (1.0, 2.0),  # not units: kept whole, unit TODO
        "Titer g/L": (1.0, 3.0),
    }
    sp, _ = _drafted(12, 2, columns)
    got = {f.label: f.unit for f in sp.factors}
    assert got == {"Feed rate": "g/L/h", "Agitation": "rpm", "Ratio a/b": ""}
    assert (sp.response.label, sp.response.unit) == ("Titer", "g/L")


def test_infer_space_counts_failed_batches_not_lost_samples():
    comments = [""] * 10
    comments[2] = "phage contamination"
    comments[5] = "HPLC sample lost, titer from backup"
    comments[7] = "batch lost (foam-out)"
    columns = {"Temperature (°C)": (30.0, 37.0), "Titer (g/L)": (1.0, 3.0), "Comment": comments}
    _, notes = _drafted(10, 3, columns)
    (note,) = [m for m in notes if "failed batches?" in m]
    assert "2 batch(es) marked" in note and "HPLC" not in note


def test_infer_space_reads_a_german_export():
    """Decimal commas with one '32 °C' cell, a 'Charge' id that repeats, a header with a stray
    space, a second response (acetate): none becomes a date, an empty id or a factor."""
    n = 20
    rng = np.random.default_rng(0)
    temp = [f"{v:.1f}".replace(".", ",") for v in rng.uniform(28.0, 37.0, n)]
    temp[3] = "32 °C"
    ids = [f"C{i:03d}" for i in range(n)]
    ids[5] = ids[4]  # a repeated row
    table = pd.DataFrame(
        {
            "Charge": ids,
            "Datum": pd.date_range("2024-01-01", periods=n).strftime("%d.%m.%Y"),
            "Induktionstemperatur (°C)": temp,
            "pH ": rng.uniform(6.6, 7.2, n),
            "IPTG (mM)": rng.uniform(0.05, 1.0, n),
            "Titer (g/L)": rng.uniform(1.0, 6.0, n),
            "Acetat (g/L)": rng.uniform(1.0, 4.0, n),
        }
    )
    sp, notes = infer_space(table)
    text = "\n".join(notes)
    assert sp.factor_names == ("Induktionstemperatur (°C)", "pH", "IPTG (mM)")
    assert "dates, not used as factors or groups: ['Datum']" in text
    assert sp.batch_id == "Charge" and "some ids repeat" in text
    assert "measured outcomes, not setpoints: ['Acetat (g/L)']" in text
    lo, hi = sp.bounds["Induktionstemperatur (°C)"]
    assert 26.0 < lo < 28.5 and 36.5 < hi < 38.5  # "35,0" read as 35.0
    acetate, _ = infer_space(table, response="Acetat (g/L)")
    assert acetate.response.direction == "minimise" and "Titer (g/L)" not in acetate.factor_names


def test_infer_space_marks_an_unknown_response_unit_todo(tmp_path):
    table = pd.DataFrame({"stir": [1.0, 2.0, 3.0], "score": [1.0, 2.0, 3.0]})
    sp, notes = infer_space(table, response="score")
    assert "response unit unknown: marked TODO" in notes
    path = write(tmp_path, space_to_starter_toml(sp, notes).replace('"TODO"', '"rpm"', 1))
    with pytest.raises(SpaceError, match="TODO"):
        ProcessSpace.from_toml(path)


def test_a_space_with_column_mappings_survives_json_and_toml_in_any_order(tmp_path):
    cols = (
        ColumnSpec("Titer", "titer"),
        ColumnSpec("Agit", "agitation"),
        ColumnSpec("Temp (F)", "temperature", "degF"),
    )
    base = ProcessSpace(
        factors=(
            Factor("temperature", "degC", (25.0, 32.0)),
            Factor("agitation", "rpm", (200, 800)),
        ),
        response=Response("titer", "g/L", (0.0, 100.0)),
        groups=("site",),
        columns=cols,
    )
    assert ProcessSpace(**{**base.__dict__, "columns": cols[::-1]}) == base
    assert ProcessSpace.from_json(base.to_json()) == base
    path = write(tmp_path, base.to_toml())
    assert ProcessSpace.from_toml(path) == base


@pytest.mark.parametrize(
    ("value", "digits", "text"),
    [
        (1344.7, 3, "1345"),
        (999.7, 3, "1000"),
        (36.54, 3, "36.5"),
        (0.0123, 3, "0.0123"),
        (0.00012, 3, "0.00012"),
        (2.5e6, 3, "2.5e+06"),
        (320.0, 2, "320"),
        (-1500.2, 3, "-1500"),
    ],
)
def test_number_text_avoids_exponents_people_misread(value, digits, text):
    from bayesbio.space import number_text

    assert number_text(value, digits) == text


def test_infer_space_keeps_people_out_of_groups_and_an_inducer_above_zero():
    rng = np.random.default_rng(3)
    n = 24
    table = pd.DataFrame(
        {
            "Batch": [f"B{i:02d}" for i in range(n)],
            "Site": rng.choice(["Basel", "Cork"], n),
            "Operator": rng.choice(["AK", "JS", "MW"], n),  # repeated labels, not a group
            "IPTG (mM)": rng.choice([0.05, 0.1, 0.25, 0.5, 1.0], n),
            "Temperature (°C)": rng.uniform(30.0, 37.0, n),
            "Titer (g/L)": rng.uniform(1.0, 3.0, n),
        }
    )
    sp, notes = infer_space(table)
    text = "\n".join(notes)
    assert sp.groups == ("Site",)
    assert "not drafted as groups" in text and "'Operator'" in text
    lo, hi = sp.factor("IPTG (mM)").operating
    assert lo == pytest.approx(0.025) and hi > 1.0  # half of 0.05 mM, not down to 0
    assert "does not run down to 0" in text
    t_lo, _ = sp.factor("Temperature (°C)").operating
    assert t_lo < table["Temperature (°C)"].min() - 0.5  # 10 % of the span, as before
    assert sp.groups == infer_space(table, groups=["Site"])[0].groups
    assert infer_space(table, groups=["Site", "Operator"])[0].groups == ("Site", "Operator")


def test_infer_space_puts_vessel_sizes_first_and_names_ranges_apart_by_vessel():
    rng = np.random.default_rng(4)
    n = 20
    vessel = np.array(["10 L", "10L", "1000L"] * 7)[:n]
    big = vessel == "1000L"
    table = pd.DataFrame(
        {
            "Run": [f"R{i}" for i in range(n)],
            "Site": rng.choice(["Leiden", "Cork"], n),
            "Vessel": vessel,
            "Agitation (rpm)": np.where(big, rng.uniform(150, 250, n), rng.uniform(600, 900, n)),
            "Temperature (°C)": rng.uniform(28.0, 32.0, n),
            "pH": np.r_[rng.uniform(4.8, 5.6, n - 1), 50.0],  # 5.0 with a lost decimal point
            "Biomass WCW (g/L)": rng.uniform(280.0, 400.0, n),
            "Titer (mg/L)": rng.uniform(500.0, 1500.0, n),
        }
    )
    sp, notes = infer_space(table)
    text = "\n".join(notes)
    assert sp.groups == ("Vessel", "Site")
    assert "'Biomass WCW (g/L)'" in text and "Biomass" not in " ".join(sp.factor_names)
    assert "factor 'Agitation (rpm)': its values in each 'Vessel' do not overlap" in text
    assert re.search(r"1000L: 1\d\d(\.\d)?-2\d\d(\.\d)?, 10 ?L: [6-8]\d\d", text)
    assert "Temperature (°C)': its values" not in text
    # physical limits a draft knows from the unit: the cleaner then drops pH 50
    assert sp.limits["pH"] == (0.0, 14.0) and sp.limits["Temperature (°C)"] == (0.0, 100.0)
    assert "the cleaner will drop [50.0] as impossible" in text
    assert sp.limits["Agitation (rpm)"] == (0.0, math.inf)


# -- labels in sentences: a header's bracketed unit is not said twice ---------------------------
@pytest.mark.parametrize(
    ("label", "unit", "expected"),
    [
        ("Temp. (°C)", "degC", "Temp. 36.37 °C"),
        ("DO [%]", "% air sat.", "DO 36.37 % air sat."),
        ("Feed rate (%/d)", "%/d", "Feed rate 36.37 %/d"),
        ("Temperature", "degC", "Temperature 36.37 °C"),
        ("pH SP", "pH", "pH SP 36.37"),
        ("Site (A)", "", "Site (A) 36.37"),  # a bracket that is not the unit stays
    ],
)
def test_quantity_text_drops_the_bracketed_unit_of_a_header(label, unit, expected):
    from bayesbio.space import quantity_text

    assert quantity_text(label, 36.37, unit) == expected


def test_response_noun_is_the_label_in_a_sentence_not_the_column_name():
    from bayesbio.space import Response

    titer = Response("Titer [g per L]", unit="g/L", label="Titer [g/L]")
    assert titer.noun == "titer"
    assert Response().noun == "yield"
    assert Response("HCP", unit="ppm", direction="minimise").noun == "HCP"


def test_explanation_names_factors_once_with_their_units_and_ends_sentences_once():
    from bayesbio.recommend.messages import point_text, sentence

    space = ProcessSpace(
        factors=(
            Factor("Temp. (°C)", "degC", (34.0, 37.5), label="Temp. (°C)"),
            Factor("DO [%]", "% air sat.", (20.0, 60.0), label="DO [%]"),
        ),
        response=Response("Titer [g per L]", unit="g/L", label="Titer [g/L]"),
    )
    text = sentence(f"Setpoint: {point_text(space, np.array([36.4, 38.8]))}")
    assert text == "Setpoint: Temp. 36.4 °C, DO 38.8 % air sat."


def test_campaign_columns_are_known_by_name_in_any_spelling():
    """Studies pool over production campaigns however the file spells the column."""
    for name in ("campaign", "Campaign", "Campaign ID", "KAMPAGNE", "campaign_no"):
        assert is_campaign(name), name
    for name in ("scale", "Site", "Bioreactor", "camp"):
        assert not is_campaign(name), name
