"""A corpus of bad batch tables: each gives a named error or a logged repair, never a crash."""

import numpy as np
import pandas as pd
import pytest

from bayesbio import eda, schema
from bayesbio.clean import clean
from bayesbio.space import SpaceError


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
        match=r"column 'temperature': 2 value\(s\).*rows \[2, 9\].*Recognised units",
    ):
        clean(df)


def test_mixed_types_are_read_and_logged():
    df = with_values("ph", {0: "7.05", 1: 7, 2: "n/a"})
    result = clean(df)
    by_row = result.log.set_index("row")
    assert by_row.loc[0, "reason"] == "text '7.05' read as a number"
    assert 1 not in by_row.index  # an int is a number: nothing to log
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


def test_corpus_has_at_least_twenty_bad_tables():
    named = len(REJECTED_BY_BOTH)
    others = [name for name in globals() if name.startswith("test_") and "corpus" not in name]
    assert named + len(others) - 1 >= 20
