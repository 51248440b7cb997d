import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from typer.testing import CliRunner

from bayesbio.cli import app
from bayesbio.space import ProcessSpace, SpaceError

runner = CliRunner()


def test_cli_simulate_clean_eda_round_trip(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["simulate", "--n", "40", "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    batches = pd.read_csv(out / "batches.csv")
    assert len(batches) >= 40
    optima = pd.read_csv(out / "true_optima.csv")
    assert {"temperature", "ph", "yield", "scale", "site"} <= set(optima.columns)

    result = runner.invoke(app, ["clean", "--data", str(out / "batches.csv"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    cleaned = pd.read_csv(out / "clean_batches.csv")
    log = pd.read_csv(out / "cleaning_log.csv")
    assert len(batches) == len(cleaned) + (log["action"] == "dropped").sum()

    result = runner.invoke(
        app, ["eda", "--data", str(out / "clean_batches.csv"), "--out", str(out / "eda")]
    )
    assert result.exit_code == 0, result.output
    assert (out / "eda" / "correlation.png").stat().st_size > 0


def test_cli_same_seed_same_table(tmp_path):
    for name in ("a", "b"):
        runner.invoke(app, ["simulate", "--n", "20", "--seed", "9", "--out", str(tmp_path / name)])
    a = (tmp_path / "a" / "batches.csv").read_text()
    assert a == (tmp_path / "b" / "batches.csv").read_text()


def test_cli_bad_input_is_one_line_error_with_nonzero_exit(tmp_path):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"temperature": [37.0], "ph": [7.0]}).to_csv(bad, index=False)
    result = runner.invoke(app, ["clean", "--data", str(bad), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.startswith("error: ")
    assert "mixing_time" in result.output
    assert "Traceback" not in result.output


def test_cli_missing_file_and_bad_mapping_name_the_problem(tmp_path):
    result = runner.invoke(app, ["eda", "--data", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2 and "nope.csv" in result.output
    good = tmp_path / "t.csv"
    pd.DataFrame({"Temp": [37.0]}).to_csv(good, index=False)
    result = runner.invoke(app, ["clean", "--data", str(good), "-c", "Temp:temperature"])
    assert result.exit_code == 2 and "USER=SCHEMA" in result.output


def test_cli_column_mapping_renames_user_columns(tmp_path):
    runner.invoke(app, ["simulate", "--n", "30", "--no-defects", "--out", str(tmp_path)])
    table = pd.read_csv(tmp_path / "batches.csv").rename(columns={"temperature": "Temp_C"})
    table.to_csv(tmp_path / "user.csv", index=False)
    result = runner.invoke(
        app,
        [
            "clean",
            "--data",
            str(tmp_path / "user.csv"),
            "-c",
            "Temp_C=temperature",
            "--out",
            str(tmp_path / "c"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "temperature" in pd.read_csv(tmp_path / "c" / "clean_batches.csv").columns


def test_cli_debug_shows_the_traceback(tmp_path):
    result = runner.invoke(app, ["--debug", "eda", "--data", str(tmp_path / "nope.csv")])
    assert result.exit_code != 0
    from bayesbio.io import ReadError

    assert isinstance(result.exception, ReadError)
    assert "nope.csv" in str(result.exception)


# -- process spaces ------------------------------------------------------------------------------
FED_BATCH = Path(__file__).resolve().parents[1] / "examples" / "microbial_fed_batch.toml"


def test_cli_simulate_with_a_process_writes_its_columns(tmp_path):
    result = runner.invoke(
        app,
        [
            "simulate",
            "--process",
            str(FED_BATCH),
            "--n",
            "30",
            "--seed",
            "2",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "batches.csv")
    space = ProcessSpace.from_toml(FED_BATCH)
    assert list(table.columns) == [
        space.batch_id,
        *space.groups,
        *space.factor_names,
        space.response.name,
    ]
    optima = pd.read_csv(tmp_path / "true_optima.csv")
    assert len(optima) == 9 and "titer" in optima.columns


def test_cli_init_process_writes_a_starter_toml_that_loads_once_units_are_filled(tmp_path):
    runner.invoke(app, ["simulate", "--n", "30", "--no-defects", "--out", str(tmp_path)])
    toml = tmp_path / "process.toml"
    result = runner.invoke(
        app,
        [
            "init-process",
            "--data",
            str(tmp_path / "batches.csv"),
            "--out",
            str(toml),
            "--response",
            "yield",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "assumed" in result.output and "TODO" in result.output
    text = toml.read_text()
    with pytest.raises(SpaceError, match="TODO"):
        ProcessSpace.from_toml(toml)
    units = iter(["s", "degC", "% air sat."])
    filled = re.sub(r'unit = "TODO"', lambda m: f'unit = "{next(units)}"', text)
    toml.write_text(filled)
    space = ProcessSpace.from_toml(toml)
    assert space.factor_names == ("mixing_time", "temperature", "ph", "dissolved_oxygen")
    assert space.response.name == "yield" and space.batch_id == "batch_id"
    assert set(space.groups) == {"scale", "site", "campaign"}
    # the drafted ranges cover the data
    table = pd.read_csv(tmp_path / "batches.csv")
    for f in space.factors:
        assert table[f.name].between(*f.operating).all(), f.name

    again = runner.invoke(
        app, ["init-process", "--data", str(tmp_path / "batches.csv"), "--out", str(toml)]
    )
    assert again.exit_code == 2
    assert "already exists" in again.output and "--force" in again.output
    assert toml.read_text() == filled
    forced = runner.invoke(
        app,
        ["init-process", "--data", str(tmp_path / "batches.csv"), "--out", str(toml), "--force"],
    )
    assert forced.exit_code == 0, forced.output
    assert "TODO" in toml.read_text()


def test_cli_init_process_without_a_response_says_how_to_name_it(tmp_path):
    data = tmp_path / "d.csv"
    pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}).to_csv(data, index=False)
    result = runner.invoke(
        app, ["init-process", "--data", str(data), "--out", str(tmp_path / "p.toml")]
    )
    assert result.exit_code == 2
    assert "--response" in result.output and len(result.output.strip().splitlines()) == 1


BAD_TOML = {
    "syntax": ("[process\nname = 1\n", "not valid TOML"),
    "inverted": (
        '[[factors]]\nname = "temperature"\nunit = "degC"\noperating = [32.0, 25.0]\n',
        r"factor 'temperature': operating range \[32, 25\] is inverted",
    ),
    "unit": (
        '[[factors]]\nname = "speed"\nunit = "bananas/h"\noperating = [1.0, 2.0]\n',
        r"factor .speed.: unknown unit .bananas/h.",
    ),
}


@pytest.mark.parametrize("problem", list(BAD_TOML))
@pytest.mark.parametrize("command", ["simulate", "clean", "eda", "compare", "fit", "study"])
def test_cli_bad_process_file_is_a_one_line_error_naming_the_problem(tmp_path, command, problem):
    text, match = BAD_TOML[problem]
    toml = tmp_path / "bad.toml"
    toml.write_text(text)
    data = tmp_path / "t.csv"
    pd.DataFrame({"temperature": [30.0], "yield": [1.0]}).to_csv(data, index=False)
    args = [command, "--process", str(toml), "--out", str(tmp_path / "o")]
    if command != "simulate":
        args += ["--data", str(data)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: ")
    assert len(result.output.strip().splitlines()) == 1
    assert "bad.toml" in result.output
    assert re.search(match, result.output), result.output
    assert "Traceback" not in result.output


def test_cli_recommend_refuses_a_process_other_than_the_models(tmp_path, monkeypatch):
    from bayesbio.models import BayesianYieldModel

    fitted = SimpleNamespace(space_=ProcessSpace.default())
    monkeypatch.setattr(BayesianYieldModel, "load", classmethod(lambda cls, path: fitted))
    for command in (["recommend"], ["design-space", "--spec", "5"]):
        result = runner.invoke(
            app,
            [*command, "--model", str(tmp_path / "m.nc"), "--process", str(FED_BATCH)],
        )
        assert result.exit_code == 2, result.output
        assert len(result.output.strip().splitlines()) == 1
        assert "fingerprint" in result.output and "Microbial fed-batch" in result.output


def test_cli_clean_and_eda_read_the_process(tmp_path):
    args = ["--process", str(FED_BATCH), "--out", str(tmp_path)]
    result = runner.invoke(app, ["simulate", "--n", "60", "--seed", "4", *args])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "batches.csv").rename(columns={"titer": "Titer (g/L)"})
    table.to_csv(tmp_path / "export.csv", index=False)
    result = runner.invoke(app, ["clean", "--data", str(tmp_path / "export.csv"), *args])
    assert result.exit_code == 0, result.output
    cleaned = pd.read_csv(tmp_path / "clean_batches.csv")
    assert {"titer", "agitation", "iptg", "run_id"} <= set(cleaned.columns)
    log = pd.read_csv(tmp_path / "cleaning_log.csv")
    assert (log["action"] == "renamed").any()
    result = runner.invoke(
        app,
        [
            "eda",
            "--data",
            str(tmp_path / "clean_batches.csv"),
            "--process",
            str(FED_BATCH),
            "--out",
            str(tmp_path / "eda"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "eda" / "yield_vs_parameters.png").stat().st_size > 0
