import pandas as pd
from typer.testing import CliRunner

from bayesbio.cli import app

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
    assert isinstance(result.exception, FileNotFoundError)
