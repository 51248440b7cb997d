"""A corpus of bad batch tables: each gives a named error or a logged repair, never a crash."""

import dataclasses
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayesbio import eda, schema
from bayesbio.clean import clean
from bayesbio.cli import app
from bayesbio.io import read_table
from bayesbio.schema import check_design
from bayesbio.space import ProcessSpace, SpaceError


def good(n=40, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "batch_id": [f"B{i:03d}" for i in range(n)],
            "scale": rng.choice(["2L", "2000L"], n),
            "site": rng.choice(["A", "B"], n),
            "mixing_time": np.round(rng.uniform(20, 100, n), 1),
            "temperature": np.round(rng.normal(36.5, 0.5, n), 2),
            "ph": np.round(rng.normal(7.0, 0.05, n), 3),
            "dissolved_oxygen": np.round(rng.normal(40, 6, n), 1),
            "yield": np.round(rng.lognormal(1.6, 0.05, n), 3),
        }
    )
    return df


def with_values(column, values, dtype=object):
    df = good()
    col = pd.Series(df[column].to_numpy(), dtype=dtype)
    for row, v in values.items():
        col.iloc[row] = v
    df[column] = col
    return df


# (id, table factory, exception, regex the message must match) for inputs both validate and
# clean must reject
REJECTED_BY_BOTH = [
    (
        "not_a_dataframe_list",
        lambda: [{"ph": 7.0}],
        schema.SchemaError,
        "expected a pandas DataFrame, got list",
    ),
    ("not_a_dataframe_array", lambda: np.zeros((3, 7)), schema.SchemaError, "got ndarray"),
    ("series", lambda: good()["ph"], schema.SchemaError, "got Series"),
    ("empty", lambda: good().iloc[:0], schema.SchemaError, "0 rows"),
    (
        "missing_required_column",
        lambda: good().drop(columns="ph"),
        schema.SchemaError,
        r"missing required column\(s\) \['ph'\]",
    ),
    (
        "misspelt_column",
        lambda: good().rename(columns={"ph": "p_H"}),
        schema.SchemaError,
        r"\['ph'\].*is \{'ph': 'p_H'\} meant\?.*\[columns\] section",
    ),
    (
        "abbreviated_column",  # 'temp' is meant, not 'feed_rate' (a looser spelling match)
        lambda: good().rename(columns={"temperature": "temp"}).assign(feed_rate=1.0),
        schema.SchemaError,
        r"is \{'temperature': 'temp'\} meant\?",
    ),
    (
        "two_columns_differing_in_case",
        lambda: good().rename(columns={"site": "Site"}).assign(SITE="C"),
        schema.SchemaError,
        r"\['Site', 'SITE'\] all match 'site'",
    ),
    (
        "non_numeric_text",
        lambda: with_values("ph", {3: "seven"}),
        schema.SchemaError,
        r"column 'ph'.*seven",
    ),
    (
        "boolean_column",
        lambda: good().assign(mixing_time=True),
        schema.SchemaError,
        "column 'mixing_time': boolean",
    ),
    (
        "boolean_entries",
        lambda: with_values("dissolved_oxygen", {2: True}),
        schema.SchemaError,
        "column 'dissolved_oxygen': bool",
    ),
    (
        "nullable_boolean",
        lambda: good().assign(ph=pd.array([True, None] * 20, dtype="boolean")),
        schema.SchemaError,
        "column 'ph': boolean",
    ),
    (
        "datetime_column",
        lambda: good().assign(ph=pd.Timestamp("2024-01-01")),
        schema.SchemaError,
        "column 'ph': datetime",
    ),
    (
        "timestamp_entries",
        lambda: with_values("temperature", {1: pd.Timestamp("2024-01-01")}),
        schema.SchemaError,
        "column 'temperature': Timestamp",
    ),
    (
        "complex_column",
        lambda: good().assign(ph=lambda d: d["ph"].astype(complex)),
        schema.SchemaError,
        "column 'ph': complex",
    ),
    (
        "duplicated_column_names",
        lambda: pd.concat([good(), good()[["ph"]]], axis=1),
        schema.SchemaError,
        r"duplicate column names \['ph'\]",
    ),
    ("all_nan_column", lambda: good().assign(ph=np.nan), None, None),  # see below
]

# ids whose validate and clean messages differ: checked one by one below
_SPECIAL = {"all_nan_column"}


@pytest.mark.parametrize(
    ("factory", "exc", "match"),
    [pytest.param(f, e, m, id=i) for i, f, e, m in REJECTED_BY_BOTH if i not in _SPECIAL],
)
def test_bad_table_is_rejected_by_validate_and_clean_with_named_error(factory, exc, match):
    with pytest.raises(exc, match=match):
        schema.validate(factory())
    with pytest.raises(exc, match=match):
        clean(factory())


def test_all_nan_column_validate_names_column_and_clean_reports_every_row():
    df = good().assign(ph=np.nan)
    with pytest.raises(schema.SchemaError, match="column 'ph': all 40 values are missing"):
        schema.validate(df, allow_missing=True)
    result = clean(df)  # drop policy: every row logged as dropped, none silently
    assert result.table.empty
    assert (result.log["action"] == "dropped").sum() == len(df)
    assert (result.log["reason"] == "missing value in 'ph'").all()
    with pytest.raises(schema.SchemaError, match="column 'ph': no observed values left"):
        clean(df, "impute")


def test_infinite_value_is_named_by_validate_and_dropped_by_clean():
    df = good()
    df.loc[4, "yield"] = np.inf
    with pytest.raises(
        schema.SchemaError, match=r"column 'yield': 1 infinite value\(s\) \(batch_id B004\)"
    ):
        schema.validate(df)
    log = clean(df).log
    assert log[["row", "column", "action"]].values.tolist() == [[4, "yield", "dropped"]]
    assert "infinite" in log["reason"].iloc[0]


def test_duplicate_ids_named_by_validate_and_resolved_by_clean():
    df = good()
    df.loc[7, "batch_id"] = "B003"
    with pytest.raises(
        schema.SchemaError, match=r"column 'batch_id': 2 rows share an id \(batch_id B003, B003\)"
    ):
        schema.validate(df)
    log = clean(df).log
    assert log[["row", "action"]].values.tolist() == [[7, "dropped"]]
    assert log["reason"].iloc[0].startswith("duplicate batch_id of row 3")
    # setpoints to predict on (no response) may repeat ids: a grid built from past batches
    grid = schema.validate(df.drop(columns="yield"), require_response=False)
    assert len(grid) == len(df)


def test_missing_batch_id_named_by_validate_and_dropped_by_clean():
    df = with_values("batch_id", {5: None})
    with pytest.raises(schema.SchemaError, match="column 'batch_id': 1 missing id"):
        schema.validate(df)
    log = clean(df).log
    assert log[["row", "column", "action", "reason"]].values.tolist() == [
        [5, "batch_id", "dropped", "missing batch_id"]
    ]


def test_text_with_units_is_rejected_by_validate_but_converted_by_clean():
    df = with_values("temperature", {0: "37 C", 1: "98.6 F"})
    with pytest.raises(schema.SchemaError, match=r"column 'temperature': 2 non-numeric .*37 C"):
        schema.validate(df)
    result = clean(df)
    assert result.table.loc[[0, 1], "temperature"].to_numpy() == pytest.approx([37.0, 37.0])
    assert result.log["action"].tolist() == ["repaired", "repaired"]
    assert "'98.6 F' read as 98.6 f and converted to degC" in result.log["reason"].iloc[1]


def test_unknown_unit_text_names_column_rows_and_known_units():
    df = with_values("temperature", {2: "37 X", 9: "37 X"})
    with pytest.raises(
        schema.SchemaError,
        match=r"column 'temperature': 2 value\(s\).*rows \[2, 9\].*Read are",
    ):
        clean(df)


def test_unreadable_cells_of_every_column_are_named_at_once_by_batch_id():
    df = with_values("temperature", {2: "warm"})
    ph = df["ph"].astype(object)
    ph.iloc[4] = "1,000"  # a thousands separator or a decimal comma: ambiguous
    df["ph"] = ph
    ids = df["batch_id"]
    with pytest.raises(schema.SchemaError) as info:
        clean(df)
    text = str(info.value)
    assert "column 'temperature': 1 value(s)" in text and f"batch_id {ids[2]}" in text
    assert "column 'ph': 1 value(s)" in text and f"batch_id {ids[4]}" in text
    assert "'1,000' is ambiguous" in text


def test_a_decimal_comma_is_read_and_logged():
    df = with_values("ph", {3: "7,05"})
    result = clean(df)
    assert result.table.loc[3, "ph"] == pytest.approx(7.05)
    assert (
        result.log.set_index("row").loc[3, "reason"] == "text '7,05' read as 7.05 (decimal comma)"
    )


def test_mixed_types_are_read_and_logged():
    df = with_values("ph", {0: "7.05", 1: 7, 2: "n/a"})
    result = clean(df)
    by_row = result.log.set_index("row")
    # a number stored as text and an int are numbers: read, nothing changed, nothing logged
    assert 0 not in by_row.index and 1 not in by_row.index
    assert set(by_row.loc[[2], "action"]) == {"repaired", "dropped"}
    assert result.table.loc[0, "ph"] == pytest.approx(7.05)


def test_negative_yield_named_by_validate_and_dropped_by_clean():
    df = good()
    df.loc[[3, 8], "yield"] = [-1.0, -0.5]
    with pytest.raises(
        schema.SchemaError, match=r"column 'yield': 2 value\(s\) outside the physical limits 0-30"
    ):
        schema.validate(df)
    log = clean(df).log
    assert log["row"].tolist() == [3, 8] and (log["action"] == "dropped").all()


def test_nan_group_label_named_by_validate_and_dropped_by_clean():
    df = with_values("site", {6: np.nan})
    with pytest.raises(
        schema.SchemaError, match=r"group column 'site': 1 missing label\(s\) \(batch_id B006\)"
    ):
        schema.validate(df)
    log = clean(df).log
    assert log[["row", "column", "action"]].values.tolist() == [[6, "site", "dropped"]]


def test_categorical_group_with_missing_label_is_dropped():
    df = with_values("site", {1: np.nan}).astype({"site": "category"})
    result = clean(df)
    assert result.log["row"].tolist() == [1]
    assert result.table["site"].isin(["A", "B"]).all()


def test_wrong_column_mapping_names_the_missing_column():
    with pytest.raises(schema.SchemaError, match=r"column mapping names \['Temp'\]"):
        schema.validate(good(), columns={"Temp": "temperature"})
    with pytest.raises(schema.SchemaError, match=r"column mapping names \['Temp'\]"):
        clean(good(), columns={"Temp": "temperature"})


def test_mapping_two_columns_onto_one_name_is_rejected():
    df = good().rename(columns={"ph": "pH"}).assign(pH2=7.0)
    with pytest.raises(schema.SchemaError, match=r"sends several columns to \['ph'\]"):
        clean(df, columns={"pH": "ph", "pH2": "ph"})


def test_columns_argument_that_is_not_a_mapping_is_rejected():
    with pytest.raises(schema.SchemaError, match="columns must be a mapping"):
        schema.validate(good(), columns=["ph"])
    with pytest.raises(schema.SchemaError, match="columns must be a mapping"):
        clean(good(), columns=["ph"])


def test_one_row_table_is_cleaned_without_outlier_rule():
    df = good().iloc[:1]
    result = clean(df)
    assert len(result.table) == 1 and result.log.empty
    schema.validate(result.table)


def test_constant_column_is_accepted_and_not_flagged():
    df = good(200).assign(ph=7.0, **{"yield": 5.0})
    result = clean(df)
    assert result.log.empty
    assert len(result.table) == 200


def test_all_rows_impossible_gives_empty_table_with_every_drop_logged():
    df = good().assign(ph=70.0)
    result = clean(df)
    assert result.table.empty
    assert result.log["row"].tolist() == list(range(len(df)))
    with pytest.raises(schema.SchemaError, match="0 rows"):
        schema.validate(result.table)


def test_policy_groups_must_be_columns():
    with pytest.raises(schema.SchemaError, match=r"policy groups \['line'\] are not columns"):
        clean(good(), {"groups": ("line",)})


def test_integer_group_labels_are_kept_as_text():
    df = good().assign(campaign=[1, 2] * 20)
    result = clean(df)
    assert result.log.empty
    assert set(result.table["campaign"]) == {"1", "2"}


def test_eda_rejects_bad_tables_with_named_errors():
    with pytest.raises(schema.SchemaError, match="got list"):
        eda.summarize([1, 2])
    with pytest.raises(schema.SchemaError, match=r"missing required column\(s\) \['ph'\]"):
        eda.run_eda(good().drop(columns="ph"))
    with pytest.raises(schema.SchemaError, match="0 rows"):
        eda.plot_distributions(good().iloc[:0])
    with pytest.raises(ValueError, match="parameter='pH'"):
        eda.plot_yield_vs_parameter(good(), "pH")
    with pytest.raises(ValueError, match="group='line' is not a column"):
        eda.plot_pairs(good(), group="line")


def test_column_names_differing_only_in_case_are_read_not_rejected():
    df = good().rename(columns={"ph": "pH", "scale": "Scale", "batch_id": "Batch_ID"})
    out = schema.validate(df)
    assert {"ph", "scale", "batch_id"} <= set(out.columns)
    result = clean(df)
    assert set(result.log["action"]) == {"renamed"}
    assert len(result.table) == len(df)


def test_validate_messages_give_no_python_advice():
    df = good()
    df.loc[3, "batch_id"] = "B001"
    with pytest.raises(schema.SchemaError) as info:
        schema.validate(df)
    assert "clean the table first (bayesbio clean" in str(info.value)
    assert "bayesbio.clean" not in str(info.value) and "Run " not in str(info.value)


SPACE_TOML = """
[process]
groups = ["site"]

[[factors]]
name = "temperature"
unit = "degC"
operating = [30.0, 39.0]
limits = [4.0, 50.0]

[[factors]]
name = "agitation"
unit = "rpm"
operating = [100.0, 300.0]
"""

BAD_SPACES = [
    ("inverted_range", "operating = [100.0, 300.0]", "operating = [300.0, 100.0]", "agitation"),
    ("unknown_unit", 'unit = "rpm"', 'unit = "rpmm"', "agitation"),
    ("todo_unit", 'unit = "degC"', 'unit = "TODO"', "temperature"),
    ("limits_inside_range", "limits = [4.0, 50.0]", "limits = [35.0, 50.0]", "temperature"),
    ("fixed_outside", "limits = [4.0, 50.0]", "limits = [4.0, 50.0]\nfixed = 99.0", "temperature"),
    ("duplicate_factor", 'name = "agitation"', 'name = "temperature"', "temperature"),
]


@pytest.mark.parametrize(
    ("old", "new", "named"), [pytest.param(o, n, f, id=i) for i, o, n, f in BAD_SPACES]
)
def test_bad_process_file_is_a_space_error_naming_the_factor(tmp_path, old, new, named):
    path = tmp_path / "process.toml"
    path.write_text(SPACE_TOML.replace(old, new), encoding="utf-8")
    table = good().rename(columns={"mixing_time": "agitation"})
    for call in (
        lambda: schema.validate(table, space=path),
        lambda: clean(table, space=path),
        lambda: eda.summarize(table, space=path),
    ):
        with pytest.raises(SpaceError, match=f"'{named}'") as info:
            call()
        assert "process.toml" in str(info.value)


def test_missing_process_file_is_named():
    with pytest.raises(SpaceError, match=r"process file '.*nowhere.toml' not found"):
        clean(good(), space="nowhere.toml")


def test_table_against_custom_space_names_its_columns(tmp_path):
    path = tmp_path / "process.toml"
    path.write_text(SPACE_TOML, encoding="utf-8")
    with pytest.raises(schema.SchemaError, match=r"missing required column\(s\) \['agitation'\]"):
        schema.validate(good(), space=path)
    table = good().rename(columns={"mixing_time": "agitation"})
    table.loc[2, "temperature"] = 60.0
    with pytest.raises(schema.SchemaError, match=r"column 'temperature'.*limits 4-50 degC"):
        schema.validate(table, space=path)
    assert schema.validate(table.drop(index=2), space=path)["agitation"].dtype == np.float64


def test_a_titer_in_mg_per_l_declared_as_g_per_l_without_ranges_is_named():
    """A user's own space: the response in g/L, no typical range, no upper limit."""
    base = ProcessSpace.default()
    space = dataclasses.replace(
        base, response=dataclasses.replace(base.response, limits=(0.0, np.inf), typical=None)
    )
    raw = good()
    raw["yield"] = raw["yield"] * 1000
    (named,) = [w for w in clean(raw, space=space).warnings if w.startswith("yield:")]
    assert named.startswith("yield: the whole column looks recorded in mg/L")
    assert "range of plausible titers 0.001-200 g/L" in named


def test_a_columns_entry_naming_a_header_the_file_lacks_is_named():
    from bayesbio.space import ColumnSpec

    space = dataclasses.replace(
        ProcessSpace.default(), columns=(ColumnSpec("Temp [C]", "temperature"),)
    )
    raw = good().rename(columns={"temperature": "Temp (C)"})
    match = r"\[columns\] maps 'Temp \[C\]' onto 'temperature', but the file has no column"
    with pytest.raises(schema.SchemaError, match=match):
        clean(raw, space=space)
    with pytest.raises(schema.SchemaError, match=match):
        schema.validate(raw, space=space)


def test_corpus_has_at_least_twenty_bad_tables():
    named = len(REJECTED_BY_BOTH)
    others = [name for name in globals() if name.startswith("test_") and "corpus" not in name]
    assert named + len(others) - 1 >= 20


# ============================================================================================
# Extended corpus: whole columns in another unit, implausible designs, files and the CLI
# ============================================================================================
runner = CliRunner()

# (id, column, how the whole column was recorded, the unit the warning must name)
WHOLE_COLUMN_UNITS = [
    ("yield_in_mg_per_l", "yield", lambda v: v * 1000, "mg/L"),
    ("yield_in_kg_per_l", "yield", lambda v: v / 1000, "kg/L"),
    ("do_in_mg_per_l", "dissolved_oxygen", lambda v: (v * 6.7 / 100).round(2), "mg/L"),
    ("temperature_in_fahrenheit", "temperature", lambda v: v * 1.8 + 32, "degF"),
    ("temperature_in_kelvin", "temperature", lambda v: v + 273.15, "K"),
    ("mixing_time_in_minutes", "mixing_time", lambda v: (v / 60).round(3), "min"),
]


@pytest.mark.parametrize(
    ("column", "record", "unit"), [pytest.param(c, r, u, id=i) for i, c, r, u in WHOLE_COLUMN_UNITS]
)
def test_whole_column_in_another_unit_warns_and_is_never_converted(column, record, unit):
    raw = good()
    raw[column] = record(raw[column])
    result = clean(raw)
    first = result.warnings[0]
    assert first.startswith(f"{column}: the whole column looks recorded in {unit}")
    assert "[columns]" in first and f'unit = "{unit}"' in first
    assert not result.log["reason"].astype(str).str.contains("unit slip").any()
    kept = result.table.index
    np.testing.assert_array_equal(result.table[column], raw.loc[kept, column].astype(float))
    # every row that did not survive is logged (outside the limits), none silently lost
    assert len(raw) == len(result.table) + (result.log["action"] == "dropped").sum()


def test_declaring_the_unit_removes_the_whole_column_warning(tmp_path):
    raw = good()
    raw["dissolved_oxygen"] = raw["dissolved_oxygen"] * 6.7 / 100
    raw = raw.rename(columns={"yield": "Titer (kg/L)"})
    raw["Titer (kg/L)"] = raw["Titer (kg/L)"] / 1000
    text = ProcessSpace.default().to_toml() + (
        '\n[columns]\n"Titer (kg/L)" = { to = "yield", unit = "kg/L" }\n'
    )
    path = tmp_path / "process.toml"
    path.write_text(text, encoding="utf-8")
    result = clean(raw, space=path)
    # the declared (demo) space also names a campaign column this table lacks
    assert len(result.warnings) == 2 and "['campaign'] declared" in result.warnings[0]
    assert result.warnings[1].startswith("dissolved_oxygen:")
    assert result.table["yield"].to_numpy() == pytest.approx(good()["yield"].to_numpy())
    warned = clean(raw.rename(columns={"Titer (kg/L)": "yield"})).warnings
    assert any('"yield" = { to = "yield", unit = "kg/L" }' in w for w in warned)


def test_whole_column_warning_uses_the_files_own_column_name():
    raw = good().rename(columns={"temperature": "Temperature"})
    raw["Temperature"] = raw["Temperature"] + 273.15
    assert '"Temperature" = { to = "temperature", unit = "K" }' in clean(raw).warnings[0]


def test_typo_in_a_group_label_is_flagged_not_merged_or_silent():
    raw = good()
    raw["site"] = ["North"] * 20 + ["South"] * 19 + ["Sotuh"]
    result = clean(raw)
    assert result.warnings == [
        "site: label 'Sotuh' (1 row(s): [39]) looks like a typo of 'South' (19 rows); it was "
        "kept as a group of its own. Correct it in the file if it is the same group."
    ]
    flagged = result.log[result.log["action"] == "flagged"]
    assert flagged[["row", "column"]].values.tolist() == [[39, "site"]]
    assert result.table.loc[39, "site"] == "Sotuh"


def test_numbered_labels_are_not_taken_for_typos():
    raw = good().assign(campaign=[f"CMP{i:02d}" for i in range(40)], scale=["2L"] * 39 + ["20L"])
    assert clean(raw).warnings == []


# ----------------------------------------------------------------------------- designs
DESIGNS = [
    ("two_batches", lambda: good().iloc[:2], 9, r"2 batch\(es\) but the model has 9 parameters"),
    ("three_batches", lambda: good().iloc[:3], 9, r"3 batch\(es\) but the model has 9"),
    (
        "all_at_one_setpoint",
        lambda: good().assign(mixing_time=60.0, temperature=37.0, ph=7.0, dissolved_oxygen=40.0),
        5,
        r"factor 'mixing_time' does not vary.*factor 'dissolved_oxygen' does not vary",
    ),
    (
        "one_factor_constant",
        lambda: good().assign(ph=7.1),
        5,
        r"^implausible design: factor 'ph' does not vary \(every batch at 7.1 pH units\)",
    ),
    (
        "constant_yields",
        lambda: good().assign(**{"yield": 4.2}),
        5,
        r"response 'yield' is the same in every batch \(4.2 g/L\)",
    ),
]


@pytest.mark.parametrize(
    ("factory", "n_params", "match"), [pytest.param(f, k, m, id=i) for i, f, k, m in DESIGNS]
)
def test_implausible_design_is_refused_unless_forced(factory, n_params, match):
    table = factory()
    with pytest.raises(schema.SchemaError, match=match) as info:
        check_design(table, None, n_params)
    assert len(str(info.value).splitlines()) == 1 and "force=True" in str(info.value)
    problems = check_design(table, None, n_params, force=True)
    assert problems and all(p in str(info.value) for p in problems)


def test_usable_design_passes_and_fixed_factors_may_be_constant(space_k2, table_k2):
    assert check_design(good(), None, 9) == []
    from bayesbio.space import Factor

    fixed = space_k2.with_changes(
        factors=(
            space_k2.factors[0],
            Factor("agitation", "rpm", (100.0, 300.0), (0.0, 1500.0), fixed=200.0),
        )
    )
    assert check_design(table_k2.assign(agitation=200.0), fixed, 3) == []
    with pytest.raises(schema.SchemaError, match="factor 'agitation' does not vary"):
        check_design(table_k2.assign(agitation=200.0), space_k2, 3)


def test_bayesian_fit_refuses_an_implausible_design_before_sampling(monkeypatch):
    from bayesbio.models import bayesian

    def no_sampling(*args, **kwargs):
        raise AssertionError("the sampler must not run on a refused design")

    monkeypatch.setattr(bayesian.sampling, "sample_model", no_sampling)
    few = good().iloc[:4]  # 4 batches: fewer than the intercept + 4 slopes
    with pytest.raises(schema.SchemaError, match="4 batch\\(es\\) but the model has 5"):
        bayesian.BayesianYieldModel().fit(few)
    flat = good().assign(ph=7.0)
    with pytest.raises(schema.SchemaError, match="factor 'ph' does not vary") as info:
        bayesian.BayesianYieldModel().fit(flat)
    assert len(str(info.value).splitlines()) == 1 and "--force" in str(info.value)
    with pytest.warns(UserWarning, match="fitting anyway.*factor 'ph' does not vary"):
        with pytest.raises(AssertionError, match="sampler must not run"):
            bayesian.BayesianYieldModel().fit(flat, force=True)


def test_cli_fit_refuses_an_implausible_design_with_a_one_line_error(tmp_path):
    from bayesbio.cli import app

    data = tmp_path / "flat.csv"
    good().assign(temperature=36.5).to_csv(data, index=False)
    out = tmp_path / "fit"
    result = runner.invoke(app, ["fit", "--data", str(data), "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "factor 'temperature' does not vary" in lines[0]
    assert "--force" in lines[0] and not (out / "model.nc").exists()


@pytest.mark.parametrize("n_params", [0, -1, 2.5, True])
def test_check_design_names_a_bad_parameter_count(n_params):
    with pytest.raises(ValueError, match="n_params must be a positive integer"):
        check_design(good(), None, n_params)


# ----------------------------------------------------------------------------- mappings
def test_mapping_to_a_name_the_process_does_not_have_is_named():
    with pytest.raises(schema.SchemaError, match=r"\{'ph': 'acidity'\} names column\(s\) the"):
        clean(good(), columns={"ph": "acidity"})
    with pytest.raises(schema.SchemaError, match="acidity"):
        schema.validate(good(), columns={"ph": "acidity"})


def test_mapping_that_swaps_two_factors_is_refused():
    with pytest.raises(schema.SchemaError, match="column mapping swaps 'temperature' and 'ph'"):
        clean(good(), columns={"temperature": "ph", "ph": "temperature"})


def test_mapping_that_chains_renames_is_refused():
    df = good().rename(columns={"ph": "pH_raw"})
    with pytest.raises(schema.SchemaError, match="renames 'pH_raw' onto 'temperature', which"):
        clean(df, columns={"pH_raw": "temperature", "temperature": "ph"})


# ----------------------------------------------------------------------------- files that must read
def _encoded(kind):
    df = good().assign(site=["Zürich", "Genève"] * 20)
    if kind == "semicolon_decimal_comma":
        return "t.csv", df.to_csv(index=False, sep=";", decimal=",").encode("utf-8")
    if kind == "utf16":
        return "t.csv", df.to_csv(index=False).encode("utf-16")
    if kind == "latin1":
        return "t.csv", df.to_csv(index=False).encode("latin-1")
    if kind == "utf8_bom":
        return "t.csv", df.to_csv(index=False).encode("utf-8-sig")
    if kind == "tab_decimal_comma_latin1":
        return "t.tsv", df.to_csv(index=False, sep="\t", decimal=",").encode("latin-1")
    raise AssertionError(kind)


READABLE = ["semicolon_decimal_comma", "utf16", "latin1", "utf8_bom", "tab_decimal_comma_latin1"]


@pytest.mark.parametrize("kind", READABLE)
def test_lab_file_encodings_and_separators_read_correctly(tmp_path, kind):
    name, data = _encoded(kind)
    path = tmp_path / name
    path.write_bytes(data)
    table = read_table(path)
    expected = good().assign(site=["Zürich", "Genève"] * 20)
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)
    out = tmp_path / "out"
    result = runner.invoke(app, ["clean", "--data", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert path.read_bytes() == data
    cleaned = pd.read_csv(out / "clean_batches.csv")
    assert len(cleaned) == 40 and set(cleaned["site"]) == {"Zürich", "Genève"}


# ----------------------------------------------------------------------------- the CLI
def _csv(tmp_path, df=None, name="t.csv"):
    path = tmp_path / name
    (good() if df is None else df).to_csv(path, index=False)
    return path


def _bad_toml(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[process\nname = 1\n", encoding="utf-8")
    return path


def _toml_with(tmp_path, old, new):
    path = tmp_path / "process.toml"
    path.write_text(ProcessSpace.default().to_toml().replace(old, new), encoding="utf-8")
    return path


def _files(tmp_path, **contents):
    paths = {}
    for key, value in contents.items():
        if callable(value):
            paths[key] = value(tmp_path)
        else:
            name, data = value
            paths[key] = tmp_path / name
            paths[key].write_bytes(data)
    return paths


_DUP_HEADER = good().to_csv(index=False).replace("ph,", "temperature,", 1).encode()

# (id, inputs {key: factory(tmp_path) or (name, bytes)}, args with {key} placeholders, regex)
CLI_BAD = [
    (
        "clean_empty_file",
        {"d": ("t.csv", b"")},
        ["clean", "-d", "{d}"],
        r"t\.csv: the file is empty",
    ),
    (
        "clean_header_only",
        {"d": ("t.csv", b"batch_id,scale,mixing_time,temperature,ph,dissolved_oxygen\n")},
        ["clean", "-d", "{d}"],
        "0 rows",
    ),
    (
        "clean_duplicate_header",
        {"d": ("t.csv", _DUP_HEADER)},
        ["clean", "-d", "{d}"],
        r"t\.csv: two columns are both named 'temperature'",
    ),
    ("clean_missing_file", {}, ["clean", "-d", "nowhere.csv"], "nowhere.csv"),
    (
        "clean_missing_column",
        {"d": lambda p: _csv(p, good().drop(columns="mixing_time"))},
        ["clean", "-d", "{d}"],
        r"missing required column\(s\) \['mixing_time'\]",
    ),
    (
        "clean_text_in_numbers",
        {"d": lambda p: _csv(p, with_values("ph", {3: "seven"}))},
        ["clean", "-d", "{d}"],
        r"column 'ph'.*seven",
    ),
    (
        "clean_bad_toml_syntax",
        {"d": _csv, "p": _bad_toml},
        ["clean", "-d", "{d}", "-p", "{p}"],
        r"bad\.toml' is not valid TOML",
    ),
    (
        "clean_toml_unknown_unit",
        {"d": _csv, "p": lambda p: _toml_with(p, 'unit = "degC"', 'unit = "degCC"')},
        ["clean", "-d", "{d}", "-p", "{p}"],
        r"process\.toml.*'temperature'.*unknown unit 'degCC'",
    ),
    (
        "clean_toml_todo_unit",
        {"d": _csv, "p": lambda p: _toml_with(p, 'unit = "pH"', 'unit = "TODO"')},
        ["clean", "-d", "{d}", "-p", "{p}"],
        r"'ph'.*still 'TODO'",
    ),
    (
        "clean_toml_inverted_range",
        {"d": _csv, "p": lambda p: _toml_with(p, "30.0,\n    39.0,", "39.0,\n    30.0,")},
        ["clean", "-d", "{d}", "-p", "{p}"],
        r"'temperature'.*operating",
    ),
    ("clean_missing_process", {"d": _csv}, ["clean", "-d", "{d}", "-p", "nope.toml"], "nope.toml"),
    (
        "clean_unknown_policy",
        {"d": _csv},
        ["clean", "-d", "{d}", "--policy", "bogus"],
        "unknown policy name 'bogus'",
    ),
    (
        "clean_mapping_without_equals",
        {"d": _csv},
        ["clean", "-d", "{d}", "-c", "Temp:temperature"],
        "USER=SCHEMA",
    ),
    (
        "clean_mapping_of_absent_column",
        {"d": _csv},
        ["clean", "-d", "{d}", "-c", "Temp=temperature"],
        r"column mapping names \['Temp'\]",
    ),
    (
        "clean_mapping_swap",
        {"d": _csv},
        ["clean", "-d", "{d}", "-c", "ph=temperature", "-c", "temperature=ph"],
        "column mapping swaps 'ph' and 'temperature'",
    ),
    (
        "clean_mapping_to_unknown_name",
        {"d": _csv},
        ["clean", "-d", "{d}", "-c", "ph=acidity"],
        r"missing required column\(s\) \['ph'\]",
    ),
    (
        "clean_unsupported_extension",
        {"d": ("t.docx", b"a,b\n1,2\n")},
        ["clean", "-d", "{d}"],
        r"extension '\.docx' is not supported",
    ),
    (
        "clean_text_saved_as_xlsx",
        {"d": ("t.xlsx", good().to_csv(index=False).encode())},
        ["clean", "-d", "{d}"],
        r"t\.xlsx: not a readable Excel workbook",
    ),
    (
        "clean_text_saved_as_parquet",
        {"d": ("t.parquet", good().to_csv(index=False).encode())},
        ["clean", "-d", "{d}"],
        r"t\.parquet: not a readable Parquet file",
    ),
    (
        "eda_missing_column",
        {"d": lambda p: _csv(p, good().drop(columns="ph"))},
        ["eda", "-d", "{d}"],
        r"\['ph'\]",
    ),
    ("eda_empty_file", {"d": ("t.csv", b"")}, ["eda", "-d", "{d}"], "the file is empty"),
    ("simulate_negative_seed", {}, ["simulate", "--seed", "-1"], r"seed.*-1"),
    ("simulate_zero_batches", {}, ["simulate", "--n", "0"], "n must be >= 1, got 0"),
    ("simulate_negative_batches", {}, ["simulate", "--n", "-5"], "n must be >= 1, got -5"),
    (
        "simulate_bad_toml",
        {"p": _bad_toml},
        ["simulate", "-p", "{p}"],
        r"bad\.toml' is not valid TOML",
    ),
]


def _expand(args, paths):
    return [a.format(**{k: str(v) for k, v in paths.items()}) for a in args]


def assert_cli_fails_cleanly(args, out, inputs, match):
    """Exit code 2, one named line, inputs unchanged, no new files in the output folder."""
    out.mkdir(exist_ok=True)
    (out / "earlier.txt").write_text("from an earlier run", encoding="utf-8")
    before = {p: p.read_bytes() for p in inputs}
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert re.search(match, lines[0]), lines[0]
    assert "Traceback" not in result.output
    assert {p: p.read_bytes() for p in inputs} == before
    assert sorted(q.name for q in out.rglob("*")) == ["earlier.txt"]


@pytest.mark.parametrize(
    ("inputs", "args", "match"), [pytest.param(f, a, m, id=i) for i, f, a, m in CLI_BAD]
)
def test_cli_bad_input_is_a_one_line_named_error_leaving_no_output(tmp_path, inputs, args, match):
    paths = _files(tmp_path, **inputs)
    assert_cli_fails_cleanly(_expand(args, paths), tmp_path / "out", list(paths.values()), match)


def test_cli_init_process_on_an_empty_file_writes_nothing(tmp_path):
    data = tmp_path / "t.csv"
    data.write_bytes(b"")
    out = tmp_path / "process.toml"
    result = runner.invoke(app, ["init-process", "-d", str(data), "--out", str(out)])
    assert result.exit_code == 2 and result.output.startswith("error: ")
    assert "the file is empty" in result.output and not out.exists()


@pytest.mark.parametrize(("column", "unit"), [("dissolved_oxygen", "mg/L"), ("yield", "kg/L")])
def test_cli_clean_prints_the_whole_column_unit_warning(tmp_path, column, unit):
    raw = good()
    raw[column] = raw[column] * (6.7 / 100 if unit == "mg/L" else 1 / 1000)
    data = _csv(tmp_path, raw)
    result = runner.invoke(app, ["clean", "-d", str(data), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert f"{column}: the whole column looks recorded in {unit}" in result.output


# ----------------------------------------------------------------------------- models, recommend
@pytest.fixture(scope="module")
def lasso():
    from bayesbio.models import LassoYield
    from bayesbio.simulate import simulate_batches

    return LassoYield(random_state=1).fit(simulate_batches(60, random_seed=1).table)


GROUP = {"scale": "2L", "site": "A"}


def _recommend(model, **kwargs):
    from bayesbio.recommend import recommend

    return recommend(model, group=GROUP, n_draws=100, n_candidates=32, random_seed=0, **kwargs)


def test_recommend_execution_sd_for_an_unknown_factor_is_named(lasso):
    with pytest.raises(ValueError, match=r"execution_sd names unknown factor\(s\) \['temp'\]"):
        _recommend(lasso, execution_sd={"temp": 0.1})


def test_recommend_execution_sd_wider_than_the_operating_range_is_refused(lasso):
    with pytest.raises(ValueError, match=r"execution_sd.*temperature"):
        _recommend(lasso, execution_sd={"temperature": 100})


def test_recommend_negative_spec_is_refused(lasso):
    with pytest.raises(ValueError, match=r"spec.*-5"):
        _recommend(lasso, objective="prob_spec", spec=-5)


def test_design_space_negative_spec_is_refused(lasso):
    from bayesbio.recommend import design_space

    with pytest.raises(ValueError, match=r"spec.*-5"):
        design_space(lasso, -5, 0.9, group=GROUP, random_seed=0)


@pytest.mark.parametrize("value", [2.0, 0.0, 1.0, -0.5, "high"])
def test_bayesian_model_target_accept_outside_0_1_is_refused(value, monkeypatch):
    import bayesbio.models.bayesian as bayes
    from bayesbio.models import BayesianYieldModel

    def never(*args, **kwargs):
        raise AssertionError("sampled despite a bad target_accept")

    monkeypatch.setattr(bayes.sampling, "sample_model", never)
    with pytest.raises(ValueError, match=r"target_accept must be .*\(0, 1\)"):
        BayesianYieldModel(target_accept=value).fit(good())


@pytest.fixture
def cli_model(monkeypatch, lasso):
    from bayesbio.models import BayesianYieldModel

    monkeypatch.setattr(BayesianYieldModel, "load", classmethod(lambda cls, path: lasso))
    return ["--model", "model.nc", "-g", "scale=2L", "-g", "site=A"]


CLI_MODEL_BAD = [
    ("recommend_unknown_objective", ["recommend", "--objective", "bogus"], "objective must be"),
    ("recommend_prob_spec_without_spec", ["recommend", "--objective", "prob_spec"], "spec is"),
    ("design_space_prob_above_one", ["design-space", "--spec", "5", "--prob", "1.5"], r"prob"),
    ("design_space_prob_zero", ["design-space", "--spec", "5", "--prob", "0"], r"prob"),
]


@pytest.mark.parametrize(("args", "match"), [pytest.param(a, m, id=i) for i, a, m in CLI_MODEL_BAD])
def test_cli_model_commands_name_bad_options(tmp_path, cli_model, args, match):
    assert_cli_fails_cleanly([*args, *cli_model], tmp_path / "out", [], match)


def test_cli_recommend_unknown_group_label_is_named(tmp_path, cli_model):
    args = ["recommend", "--model", "model.nc", "-g", "scale=2L", "-g", "site=Z"]
    assert_cli_fails_cleanly(args, tmp_path / "out", [], r"group\['site'\] = 'Z'")


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["recommend", "--objective", "prob_spec", "--spec", "-5"], id="recommend"),
        pytest.param(["design-space", "--spec", "-5"], id="design_space"),
    ],
)
def test_cli_negative_spec_is_refused(tmp_path, cli_model, args):
    assert_cli_fails_cleanly([*args, *cli_model], tmp_path / "out", [], "spec")


# ------------------------------------------------------------------------- study options (CLI)
STUDY_BAD = [
    ("study_prob_above_one", ["--prob", "1.5"], r"--prob must be in \(0, 1\), got 1.5"),
    ("study_prob_zero", ["--prob", "0"], r"--prob must be in \(0, 1\)"),
    ("study_risk_zero", ["--risk", "0"], r"--risk must be in \(0, 1\)"),
    ("study_unknown_objective", ["--objective", "best"], r"--objective must be one of"),
    ("study_zero_draws", ["--draws", "0"], "--draws must be >= 1, got 0"),
    ("study_negative_chains", ["--chains", "-1"], "--chains must be >= 1, got -1"),
    ("study_zero_tune", ["--tune", "0"], "--tune must be >= 1, got 0"),
    ("study_unknown_group_column", ["--groups", "scal"], r"--groups scal: not a group column"),
    ("study_negative_spec", ["--spec", "-5"], r"--spec -5 is outside the possible yield"),
    ("study_spec_in_mg_per_l", ["--spec", "5000"], r"--spec 5000 is outside.*g/L"),
]


@pytest.mark.parametrize(("args", "match"), [pytest.param(a, m, id=i) for i, a, m in STUDY_BAD])
def test_cli_study_bad_options_are_named_before_any_work(tmp_path, args, match):
    assert_cli_fails_cleanly(["study", "--quick", *args], tmp_path / "out", [], match)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["fit", "--draws", "0"], id="fit_zero_draws"),
        pytest.param(["compare", "--chains", "0"], id="compare_zero_chains"),
    ],
)
def test_cli_mcmc_options_are_named(tmp_path, args):
    data = _csv(tmp_path, good())
    before = data.read_bytes()
    assert_cli_fails_cleanly([*args, "-d", str(data)], tmp_path / "out", [data], args[1])
    assert data.read_bytes() == before


# ------------------------------------------------------------------------- saved model files
def _prior_posterior(model, *, chains=2, draws=1000, seed=0):
    """A 'posterior' of independent prior draws: no MCMC."""
    import pymc as pm
    import xarray as xr

    prior = pm.sample_prior_predictive(draws=chains * draws, model=model, random_seed=seed)
    ds = prior["prior"].to_dataset()
    ds = ds.isel(chain=0, drop=True) if "chain" in ds.dims else ds
    arrays = {
        name: (("chain", "draw", *da.dims[1:]), da.values.reshape(chains, draws, *da.shape[1:]))
        for name, da in ds.data_vars.items()
    }
    post = xr.Dataset(arrays, coords={k: v for k, v in ds.coords.items() if k != "draw"})
    stats = xr.Dataset(
        {
            "diverging": (("chain", "draw"), np.zeros((chains, draws), dtype=bool)),
            "energy": (("chain", "draw"), np.random.default_rng(seed).normal(size=(chains, draws))),
        }
    )
    tree = xr.DataTree()
    tree["posterior"] = xr.DataTree(post)
    tree["sample_stats"] = xr.DataTree(stats)
    return tree


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    import bayesbio.models.bayesian as bayes
    from bayesbio.models import BayesianYieldModel

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            bayes.sampling,
            "sample_model",
            lambda model, key, **kw: (_prior_posterior(model, seed=kw["random_seed"]), "fake"),
        )
        model = BayesianYieldModel(structures=("quadratic",), random_seed=5).fit(good(60, 3))
    path = model.save(tmp_path_factory.mktemp("model") / "model.nc")
    return model, path


def _edited(path, tmp_path, edit):
    import xarray as xr

    with xr.open_datatree(path, engine="h5netcdf") as handle:
        tree = handle.load()
    edit(tree)
    out = tmp_path / "edited.nc"
    tree.to_netcdf(out, engine="h5netcdf")
    return out


def _posterior_edit(name, change):
    import xarray as xr

    def edit(tree):
        post = tree["quadratic/posterior"].to_dataset()
        values = post[name].values.copy()
        post[name] = (post[name].dims, change(values))
        tree["quadratic/posterior"] = xr.DataTree(post)

    return edit


def _nan_first(values):
    values.flat[0] = np.nan
    return values


def _training_edit(column, value):
    import xarray as xr

    def edit(tree):
        ds = tree["training_table"].to_dataset()
        values = ds[column].values.copy()
        values[0] = value
        ds[column] = (ds[column].dims, values)
        tree["training_table"] = xr.DataTree(ds)

    return edit


def _drop_training_column(tree):
    import xarray as xr

    tree["training_table"] = xr.DataTree(tree["training_table"].to_dataset().drop_vars("ph"))


def _attr_edit(key, value):
    def edit(tree):
        tree.attrs[key] = value

    return edit


MODEL_BAD = [
    (
        "posterior_edited_beyond_the_response_limits",
        _posterior_edit("intercept", lambda v: v + 3),
        r"predicts a mean yield of [\d.]+ g/L at \d+ training setpoint\(s\), outside the process",
    ),
    (
        "nan_in_the_posterior",
        _posterior_edit("beta", _nan_first),
        r"non-finite values \(structure 'quadratic': 1 non-finite draw\(s\) of 'beta'\)",
    ),
    (
        "infinite_sigma",
        _posterior_edit("sigma", lambda v: np.full_like(v, np.inf)),
        r"non-finite draw\(s\) of 'sigma'",
    ),
    (
        "stacking_weights_edited",
        _attr_edit("stacking_weights", json.dumps({"quadratic": 0.4})),
        r"stored stacking weights .* differ from those recomputed",
    ),
    (
        "training_value_outside_the_limits",
        _training_edit("temperature", 310.0),
        r"value\(s\) of 'temperature' outside the process limits",
    ),
    (
        "training_response_missing",
        _training_edit("yield", np.nan),
        r"missing value\(s\) or value\(s\) of 'yield'",
    ),
    (
        "training_column_removed",
        _drop_training_column,
        r"training table lacks column\(s\) \['ph'\]",
    ),
]


@pytest.mark.parametrize(("edit", "match"), [pytest.param(e, m, id=i) for i, e, m in MODEL_BAD])
def test_edited_model_file_is_refused_with_a_named_error(saved_model, tmp_path, edit, match):
    from bayesbio.models import BayesianYieldModel
    from bayesbio.models.bayesian import IncompatibleModelError

    path = _edited(saved_model[1], tmp_path, edit)
    with pytest.raises(IncompatibleModelError, match=match):
        BayesianYieldModel.load(path)


def test_unedited_round_trip_still_loads(saved_model, tmp_path):
    from bayesbio.models import BayesianYieldModel

    model, path = saved_model
    path = _edited(path, tmp_path, lambda tree: None)
    loaded = BayesianYieldModel.load(path)
    x = model.training_table_.iloc[:5]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_loaded_diagnostics_come_from_the_draws_not_the_file(saved_model, tmp_path):
    from bayesbio.models import BayesianYieldModel

    claimed = {"quadratic": {"max_r_hat": 1.0, "min_ess_bulk": 4000.0, "divergences": 0.0}}

    def unconverged(tree):
        # chain 0 sits 0.3 log units above chain 1, and the file claims all is well
        _posterior_edit("intercept", lambda v: v + np.array([[0.3], [0.0]]))(tree)
        tree.attrs["diagnostics"] = json.dumps(claimed)

    loaded = BayesianYieldModel.load(_edited(saved_model[1], tmp_path, unconverged))
    assert loaded.diagnostics_["quadratic"]["max_r_hat"] > 1.01
    from bayesbio.recommend import ModelDiagnosticsWarning, recommend

    with pytest.warns(ModelDiagnosticsWarning, match="R-hat"):
        recommend(
            loaded,
            group={"scale": "2L", "site": "A"},
            n_draws=50,
            n_candidates=8,
            random_seed=0,
        )


@pytest.mark.parametrize("how", ["external_link", "external_storage"])
def test_model_file_pointing_at_other_files_is_not_read(saved_model, tmp_path, how):
    import shutil

    import h5py

    from bayesbio.models import BayesianYieldModel
    from bayesbio.models.bayesian import IncompatibleModelError

    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"PRIVATE-LAB-NOTES")
    crafted = tmp_path / "crafted.nc"
    shutil.copy(saved_model[1], crafted)
    with h5py.File(crafted, "r+") as f:
        if how == "external_link":
            f["training_table/leak"] = h5py.ExternalLink(str(secret), "/data")
        else:
            size = secret.stat().st_size
            f.create_dataset(
                "training_table/leak", (size,), "u1", external=[(str(secret), 0, size)]
            )
    with pytest.raises(IncompatibleModelError, match="points at other files") as info:
        BayesianYieldModel.load(crafted)
    assert "PRIVATE" not in str(info.value)


def test_files_that_are_not_models_are_named(tmp_path):
    from bayesbio.models import BayesianYieldModel
    from bayesbio.models.bayesian import IncompatibleModelError

    text = tmp_path / "model.nc"
    text.write_text("batch_id,yield\nB1,5\n")
    with pytest.raises(IncompatibleModelError, match="not a model file written by bayesbio"):
        BayesianYieldModel.load(text)
    with pytest.raises(FileNotFoundError, match=r"no such model file.*bayesbio fit"):
        BayesianYieldModel.load(tmp_path / "absent.nc")


@pytest.mark.parametrize(("edit", "match"), [pytest.param(e, m, id=i) for i, e, m in MODEL_BAD[:2]])
def test_cli_recommend_on_an_edited_model_is_a_one_line_error(saved_model, tmp_path, edit, match):
    path = _edited(saved_model[1], tmp_path, edit)
    args = ["recommend", "--model", str(path), "-g", "scale=2L", "-g", "site=A"]
    assert_cli_fails_cleanly(args, tmp_path / "out", [path], match)


def test_save_refuses_a_non_finite_posterior_and_keeps_the_earlier_file(saved_model, tmp_path):
    import copy

    import xarray as xr

    model, _ = saved_model
    target = tmp_path / "model.nc"
    target.write_bytes(b"earlier model")
    broken = copy.copy(model)
    tree = model.idata_["quadratic"]
    post = tree["posterior"].to_dataset()
    post["sigma"] = post["sigma"].where(post["draw"] < 700)  # an interrupted sampler's padding
    padded = xr.DataTree()
    padded["posterior"] = xr.DataTree(post)
    padded["sample_stats"] = xr.DataTree(tree["sample_stats"].to_dataset())
    broken.idata_ = {"quadratic": padded}
    with pytest.raises(ValueError, match=r"not saving .*non-finite draw\(s\) of 'sigma'"):
        broken.save(target)
    assert target.read_bytes() == b"earlier model"


def test_interrupted_save_keeps_the_earlier_model_file(saved_model, tmp_path, monkeypatch):
    import xarray as xr

    model, _ = saved_model
    target = tmp_path / "model.nc"
    target.write_bytes(b"earlier model")

    def killed(self, path, **kwargs):
        Path(path).write_bytes(b"\x89HDF half")
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.DataTree, "to_netcdf", killed)
    with pytest.raises(KeyboardInterrupt):
        model.save(target)
    assert target.read_bytes() == b"earlier model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.nc"]


def test_a_misspelt_group_column_is_named_before_the_fit_pools_over_it():
    from bayesbio.schema import warn_missing_groups
    from bayesbio.simulate import simulate_batches
    from bayesbio.space import ProcessSpace

    space = ProcessSpace.default().with_changes(groups=("Bioreator", "site"))
    table = simulate_batches(12, defects=False, random_seed=2).table
    table = table.rename(columns={"scale": "Bioreactor"}).drop(columns="campaign")
    with pytest.warns(UserWarning, match=r"\['Bioreator'\] declared but not in the table") as rec:
        warn_missing_groups(table, space, None, "BayesianYieldModel.fit")
    assert "is {'Bioreator': 'Bioreactor'} meant?" in str(rec[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_missing_groups(table, space, ["Bioreactor", "site"], "fit")  # nothing missing


def test_a_factor_renamed_with_its_label_still_the_header_says_how_to_map_it():
    from bayesbio.schema import SchemaError, validate
    from bayesbio.simulate import simulate_batches
    from bayesbio.space import Factor, ProcessSpace

    space = ProcessSpace.default()
    factors = list(space.factors)
    old = factors[1]
    factors[1] = Factor("Temperature", "degC", old.operating, old.limits, label="Temp (°C)")
    table = simulate_batches(10, defects=False, random_seed=1).table
    table = table.rename(columns={"temperature": "Temp (°C)"})
    with pytest.raises(SchemaError, match=r"missing required column\(s\) \['Temperature'\]") as e:
        validate(table, space=space.with_changes(factors=tuple(factors)))
    assert '[columns] section (e.g. "Temp (°C)" = "Temperature")' in str(e.value)


def test_clean_without_a_space_says_the_demo_process_was_assumed():
    own = pd.DataFrame({"Batch": ["A1", "A2"], "Agitation [rpm]": [800, 900], "Titer": [3.1, 3.4]})
    with pytest.raises(schema.SchemaError) as err:
        clean(own)
    text = str(err.value)
    assert "missing required column(s) ['mixing_time'" in text
    assert "No space was given, so the demo process was assumed" in text
    assert "space=infer_space(table)[0]" in text
