import json
import re
import warnings
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


# -- global options, progress ----------------------------------------------------------------
def test_cli_version_verbose_and_quiet(tmp_path):
    from bayesbio import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"bayesbio {__version__}"
    quiet = runner.invoke(app, ["-q", "simulate", "--n", "12", "--out", str(tmp_path / "q")])
    assert quiet.exit_code == 0 and quiet.output == ""
    assert (tmp_path / "q" / "batches.csv").is_file()
    loud = runner.invoke(app, ["simulate", "--n", "12", "--out", str(tmp_path / "l")])
    assert "wrote" in loud.output
    both = runner.invoke(app, ["-v", "-q", "simulate", "--out", str(tmp_path / "b")])
    assert both.exit_code == 2 and "-v/--verbose" in both.output
    assert len(both.output.strip().splitlines()) == 1 and not (tmp_path / "b").exists()


def test_cli_harvest_commands_honour_quiet(tmp_path):
    data = Path(__file__).parents[1] / "examples" / "data"
    decide = ["harvest-decision", "--history", str(data / "harvest_history.csv")]
    decide += ["--now", str(data / "harvest_current.csv")]
    decide += ["--spec", str(data / "harvest_spec.toml"), "--out", str(tmp_path / "d")]
    study = ["harvest", "--replications", "2", "--n", "3", "--out", str(tmp_path / "h")]
    for args, written in ((decide, "d/harvest_decision.csv"), (study, "h/harvest_table1.csv")):
        loud = runner.invoke(app, args)
        assert loud.exit_code == 0, loud.output
        assert loud.output.strip()
        (tmp_path / written).unlink()
        quiet = runner.invoke(app, ["-q", *args])
        assert quiet.exit_code == 0 and quiet.output == "", quiet.output
        assert (tmp_path / written).is_file()


def test_progress_is_drawn_only_on_a_terminal_outside_ci(monkeypatch):
    from bayesbio import cli

    class Stream:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setitem(cli._STATE, "quiet", False)
    assert cli._interactive(Stream(True))
    assert not cli._interactive(Stream(False))
    monkeypatch.setenv("CI", "true")
    assert not cli._interactive(Stream(True))
    monkeypatch.delenv("CI")
    monkeypatch.setitem(cli._STATE, "quiet", True)
    assert not cli._interactive(Stream(True))


# -- outputs never overwrite each other --------------------------------------------------------
def test_cli_simulate_refuses_to_replace_a_batch_table_without_force(tmp_path):
    args = ["simulate", "--n", "12", "--out", str(tmp_path)]
    assert runner.invoke(app, [*args, "--seed", "1"]).exit_code == 0
    before = (tmp_path / "batches.csv").read_bytes()
    again = runner.invoke(app, [*args, "--seed", "2"])
    assert again.exit_code == 2 and "--force" in again.output and "batches.csv" in again.output
    assert (tmp_path / "batches.csv").read_bytes() == before
    forced = runner.invoke(app, [*args, "--seed", "2", "--force"])
    assert forced.exit_code == 0, forced.output
    assert (tmp_path / "batches.csv").read_bytes() != before


def test_cli_clean_refuses_to_write_over_its_own_input(tmp_path):
    runner.invoke(app, ["simulate", "--n", "20", "--out", str(tmp_path)])
    own = tmp_path / "clean_batches.csv"
    (tmp_path / "batches.csv").rename(own)
    before = own.read_bytes()
    result = runner.invoke(app, ["clean", "--data", str(own), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--out" in result.output and "--data" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert own.read_bytes() == before and not (tmp_path / "cleaning_log.csv").exists()


def test_cli_clean_fails_when_every_row_is_dropped_and_keeps_the_log(tmp_path):
    runner.invoke(app, ["simulate", "--n", "20", "--no-defects", "--out", str(tmp_path)])
    table = pd.read_csv(tmp_path / "batches.csv")
    table["temperature"] = table["temperature"] + 300.0  # recorded in K, read as degC
    table.to_csv(tmp_path / "kelvin.csv", index=False)
    out = tmp_path / "cleaned"
    result = runner.invoke(
        app, ["clean", "--data", str(tmp_path / "kelvin.csv"), "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert "every row was dropped" in result.output and "cleaning_log.csv" in result.output
    assert len(pd.read_csv(out / "cleaning_log.csv")) >= 20


def test_cli_clean_warns_about_a_batch_id_recorded_twice_with_different_yields(tmp_path):
    runner.invoke(app, ["simulate", "--n", "20", "--no-defects", "--out", str(tmp_path)])
    table = pd.read_csv(tmp_path / "batches.csv")
    twin = table.iloc[[3]].assign(**{"yield": table["yield"].iloc[3] / 2})
    pd.concat([table, twin]).to_csv(tmp_path / "twice.csv", index=False)
    result = runner.invoke(
        app, ["clean", "--data", str(tmp_path / "twice.csv"), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert (
        f"appear twice with yield more than 5% apart: {table['batch_id'].iloc[3]}" in result.output
    )


def test_cli_eda_and_compare_write_their_own_summaries(tmp_path):
    runner.invoke(app, ["simulate", "--n", "40", "--no-defects", "--out", str(tmp_path)])
    data = str(tmp_path / "batches.csv")
    result = runner.invoke(app, ["eda", "--data", data, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    eda_summary = (tmp_path / "eda_summary.csv").read_bytes()
    result = runner.invoke(
        app, ["compare", "--data", data, "--no-bayesian", "--cv", "split", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "eda_summary.csv").read_bytes() == eda_summary
    summary = pd.read_csv(tmp_path / "compare_summary.csv")
    assert {"LASSO", "RandomForest"} <= set(summary["model"])
    assert summary.columns[0] == "model"  # no stray index column
    assert (tmp_path / "compare_scores.csv").is_file()
    assert not (tmp_path / "summary.csv").exists()
    assert not list(tmp_path.glob(".*tmp*")), "temporary files left behind"


def test_group_file_labels_have_no_spaces_or_slashes():
    from bayesbio.cli import _group_label

    assert _group_label({"scale": "2000 L", "site": "North/1"}) == "_scale-2000-L_site-North-1"
    assert _group_label(None) == ""


# -- recommend: constraints, objective, strict -------------------------------------------------
@pytest.fixture(scope="module")
def lasso_model():
    from bayesbio.models import LassoYield
    from bayesbio.simulate import simulate_batches

    return LassoYield(random_state=1).fit(simulate_batches(60, random_seed=1).table)


@pytest.fixture
def loads(monkeypatch):
    """Make `BayesianYieldModel.load` return the given model (no MCMC in CLI tests)."""
    from bayesbio.models import BayesianYieldModel

    def use(model):
        monkeypatch.setattr(BayesianYieldModel, "load", classmethod(lambda cls, path: model))

    return use


GROUP_ARGS = ["--model", "m.nc", "-g", "scale=2L", "-g", "site=A", "--seed", "0"]


def test_cli_recommend_bounds_and_fixed_factors_reach_the_setpoint(tmp_path, loads, lasso_model):
    loads(lasso_model)
    args = ["recommend", *GROUP_ARGS, "--out", str(tmp_path), "--objective", "quantile"]
    args += ["--risk", "0.2", "--bound", "temperature=36:36.8", "--fix", "ph=7.05"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "recommendation_scale-2L_site-A.csv").set_index("setpoint")
    row = table.loc["recommended"]
    assert 36.0 <= row["temperature"] <= 36.8
    assert row["ph"] == pytest.approx(7.05)
    assert table.loc["mean_optimal", "ph"] == pytest.approx(7.05)
    other = runner.invoke(
        app,
        [
            "recommend",
            "--model",
            "m.nc",
            "-g",
            "scale=2000L",
            "-g",
            "site=B",
            "--out",
            str(tmp_path),
        ],
    )
    assert other.exit_code == 0, other.output
    assert (tmp_path / "recommendation_scale-2000L_site-B.csv").is_file()
    assert (tmp_path / "recommendation_scale-2L_site-A.csv").is_file()


def test_cli_recommend_says_its_decision_and_why(tmp_path, loads, lasso_model):
    loads(lasso_model)
    result = runner.invoke(app, ["recommend", *GROUP_ARGS, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("Recommendation for "))
    assert "IMPROVE on the recipe" in line or "KEEP THE RECIPE" in line
    assert "(yield: higher is better)" in line
    why = next(x for x in result.output.splitlines() if x.startswith("Why: "))
    assert "recipe" in why  # the reason compares with the recipe
    if "KEEP THE RECIPE" in line:
        assert (tmp_path / "next_experiments_scale-2L_site-A.csv").is_file()


def test_cli_recommend_transfer_risk_flag_reaches_recommend(tmp_path, loads, lasso_model,
                                                           monkeypatch):  # fmt: skip
    import bayesbio.recommend as rec_module

    loads(lasso_model)
    seen = []
    real = rec_module.recommend

    def spy(*args, **kwargs):
        seen.append(kwargs["transfer_risk"])
        return real(*args, **kwargs)

    monkeypatch.setattr(rec_module, "recommend", spy)
    for extra in ([], ["--transfer-risk"]):
        result = runner.invoke(app, ["recommend", *GROUP_ARGS, "--out", str(tmp_path), *extra])
        assert result.exit_code == 0, result.output
    assert seen == [False, True]


def test_cli_recommend_measures_against_a_declared_recipe(tmp_path, loads, lasso_model):
    loads(lasso_model)
    args = ["recommend", *GROUP_ARGS, "--out", str(tmp_path)]
    result = runner.invoke(app, [*args, "--recipe", "temperature=35.5", "--recipe", "ph=7.1"])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(tmp_path / "recommendation_scale-2L_site-A.csv").set_index("setpoint")
    assert frame.loc["recipe", "temperature"] == 35.5 and frame.loc["recipe", "ph"] == 7.1
    median = runner.invoke(app, args)
    assert median.exit_code == 0, median.output
    frame = pd.read_csv(tmp_path / "recommendation_scale-2L_site-A.csv").set_index("setpoint")
    assert frame.loc["recipe", "temperature"] != 35.5  # the group's median setpoint
    # a factor named by its label (a file's header, as users type it) is the same factor
    by_label = runner.invoke(app, [*args, "--recipe", "Temperature=35.5"])
    assert by_label.exit_code == 0, by_label.output
    frame = pd.read_csv(tmp_path / "recommendation_scale-2L_site-A.csv").set_index("setpoint")
    assert frame.loc["recipe", "temperature"] == 35.5
    for bad, said in (
        ("temp=35", "'temp' is not a factor of the process"),
        ("temperature", "--recipe expects FACTOR=VALUE"),
        ("temperature=warm", "'warm' is not a number"),
    ):
        wrong = runner.invoke(app, [*args, "--recipe", bad])
        assert wrong.exit_code == 2 and said in wrong.output, wrong.output
    # the study takes the same option (checked before any work: nothing written)
    study = ["study", "--quick", "--out", str(tmp_path / "s"), "--recipe", "temp=35"]
    wrong = runner.invoke(app, study)
    assert wrong.exit_code == 2 and "'temp' is not a factor of the process" in wrong.output
    assert not (tmp_path / "s").exists()


def test_cli_design_space_ranges_name_their_factors_and_an_empty_one_says_why(
    tmp_path, loads, lasso_model
):
    loads(lasso_model)
    args = ["design-space", *GROUP_ARGS, "--out", str(tmp_path), "--prob", "0.9"]
    result = runner.invoke(app, [*args, "--spec", "25"])  # far above every batch
    assert result.exit_code == 0, result.output
    par = pd.read_csv(tmp_path / "proven_acceptable_ranges_scale-2L_site-A.csv")
    assert list(par.columns[:3]) == ["parameter", "low", "high"]
    assert set(par["parameter"]) == {"mixing_time", "temperature", "ph", "dissolved_oxygen"}
    assert par[["low", "high"]].isna().all().all()
    assert "note: empty design space: no supported grid point reaches" in result.output
    assert "design space: P(yield >= 25 g/L) >= 0.9 (higher is better); 0 of " in result.output
    # a design space that holds points: ranges by label, four significant digits
    result = runner.invoke(app, [*args, "--spec", "1"])
    assert result.exit_code == 0, result.output
    par = pd.read_csv(tmp_path / "proven_acceptable_ranges_scale-2L_site-A.csv")
    assert par[["low", "high"]].notna().all().all()
    shown = result.output.split("proven acceptable ranges:")[1].split("note:")[0]
    assert "Dissolved oxygen" in shown and "Mixing time" in shown
    numbers = re.findall(r"\d+\.\d+", shown)
    assert numbers and all(len(n.replace(".", "").lstrip("0")) <= 4 for n in numbers), shown


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--bound", "temperature=36"], "--bound expects FACTOR=LOW:HIGH"),
        (["--bound", "temp=36:37"], "--bound 'temp=36:37': 'temp' is not a factor"),
        (["--bound", "temperature=37:36"], "LOW must be below HIGH"),
        (["--bound", "temperature=a:37"], "'a' is not a number"),
        (["--fix", "ph"], "--fix expects FACTOR=VALUE"),
        (["--fix", "ph=7", "--bound", "ph=6.9:7.1"], "bounded or fixed twice"),
        (["--bound", "temperature=36:99"], r"--bound temperature=36:99 must satisfy"),
        (["--fix", "ph=12"], r"--fix ph=12 is outside the physical limits"),
        (["--risk", "1.5"], r"--risk must be in \(0, 1\)"),
        (["--objective", "best"], "--objective must be one of"),
    ],
)
def test_cli_recommend_names_bad_constraint_options(tmp_path, loads, lasso_model, extra, match):
    loads(lasso_model)
    result = runner.invoke(app, ["recommend", *GROUP_ARGS, "--out", str(tmp_path), *extra])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and re.search(match, lines[0]), lines
    assert "bounds[" not in lines[0] and "fixed[" not in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_cli_recommend_strict_exits_3_on_failed_diagnostics(tmp_path, loads, lasso_model):
    import copy

    unconverged = copy.copy(lasso_model)
    unconverged.diagnostics_ = {"max_r_hat": 1.3, "divergences": 4}
    loads(unconverged)
    args = ["recommend", *GROUP_ARGS, "--out", str(tmp_path)]
    strict = runner.invoke(app, [*args, "--strict"])
    assert strict.exit_code == 3, strict.output
    lines = strict.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --strict:") and "R-hat" in lines[0]
    assert list(tmp_path.iterdir()) == []
    lenient = runner.invoke(app, args)
    assert lenient.exit_code == 0, lenient.output
    assert "warning: ModelDiagnosticsWarning" in lenient.output


def test_cli_recommend_strict_exits_3_when_extrapolating(tmp_path, loads, lasso_model, monkeypatch):
    import bayesbio.recommend as rec

    original = rec.recommend

    def extrapolating(*args, **kwargs):
        out = original(*args, **kwargs)
        warnings.warn(
            "recommended setpoint is outside the support", rec.ExtrapolationWarning, stacklevel=2
        )
        return out

    monkeypatch.setattr(rec, "recommend", extrapolating)
    loads(lasso_model)
    result = runner.invoke(app, ["recommend", *GROUP_ARGS, "--out", str(tmp_path), "--strict"])
    assert result.exit_code == 3 and "ExtrapolationWarning" in result.output, result.output
    assert list(tmp_path.iterdir()) == []


# -- fit: strict, interrupts, atomic model files -----------------------------------------------
@pytest.fixture
def batches(tmp_path):
    runner.invoke(app, ["simulate", "--n", "30", "--no-defects", "--out", str(tmp_path / "d")])
    return str(tmp_path / "d" / "batches.csv")


def test_cli_fit_strict_exits_3_and_saves_nothing_when_diagnostics_fail(
    tmp_path, batches, monkeypatch
):
    from bayesbio.models import BayesianYieldModel
    from bayesbio.models.bayesian import ConvergenceWarning

    def unconverged(self, X, y=None, **kwargs):
        warnings.warn(
            "structure 'quadratic': max R-hat 1.200 > 1.01", ConvergenceWarning, stacklevel=2
        )
        return self

    monkeypatch.setattr(BayesianYieldModel, "fit", unconverged)
    result = runner.invoke(app, ["fit", "-d", batches, "--out", str(tmp_path / "m"), "--strict"])
    assert result.exit_code == 3, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "R-hat 1.200" in lines[0] and "no model saved" in lines[0]
    assert not (tmp_path / "m" / "model.nc").exists()


def test_cli_fit_prints_checks_per_structure_in_words(tmp_path, batches, monkeypatch):
    from bayesbio.models import BayesianYieldModel

    def fitted(self, X, y=None, **kwargs):
        self.diagnostics_ = {
            "quadratic": {"max_r_hat": 1.004, "min_ess_bulk": 812.3, "min_ess_tail": 690.0,
                          "divergences": 0.0, "max_pareto_k": 0.41, "runs": 1.0},
            "gp": {"max_r_hat": 1.031, "min_ess_bulk": 255.0, "min_ess_tail": 301.0,
                   "divergences": 2.0, "max_pareto_k": 0.93, "runs": 3.0},
        }  # fmt: skip
        self.stacking_weights_ = pd.Series({"quadratic": 0.7, "gp": 0.3})
        return self

    monkeypatch.setattr(BayesianYieldModel, "fit", fitted)
    monkeypatch.setattr(BayesianYieldModel, "save", lambda self, path: Path(path).touch())
    result = runner.invoke(app, ["fit", "-d", batches, "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert "{" not in result.output  # a table, not the raw dictionary
    rows = {line.split()[0]: line for line in result.output.splitlines() if line.strip()}
    assert "70 %" in rows["quadratic"] and "1.004" in rows["quadratic"]
    assert "812" in rows["quadratic"] and "30 %" in rows["gp"] and "1.031" in rows["gp"]
    assert rows["quadratic:"] == "quadratic: passes"
    gp = rows["gp:"]
    assert "fails: R-hat 1.031" in gp and "2 divergent" in gp and "effective sample size 255" in gp


@pytest.mark.parametrize("swallowed", [True, False], ids=["sampler_catches_it", "raised"])
def test_cli_fit_interrupted_exits_130_and_keeps_the_earlier_model(
    tmp_path, batches, monkeypatch, swallowed
):
    import os
    import signal
    import time

    from bayesbio.models import BayesianYieldModel

    def interrupted_fit(self, X, y=None, **kwargs):
        # like nutpie: Ctrl-C ends sampling early and the draws so far come back
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except KeyboardInterrupt:
            if not swallowed:
                raise
        return self

    monkeypatch.setattr(BayesianYieldModel, "fit", interrupted_fit)
    saved = []
    monkeypatch.setattr(BayesianYieldModel, "save", lambda self, path: saved.append(path))
    out = tmp_path / "m"
    out.mkdir()
    (out / "model.nc").write_bytes(b"the earlier model")
    result = runner.invoke(app, ["fit", "-d", batches, "--out", str(out)])
    assert result.exit_code == 130, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: interrupted")
    assert saved == [] and (out / "model.nc").read_bytes() == b"the earlier model"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# -- study options ------------------------------------------------------------------------------
@pytest.fixture
def fake_study(monkeypatch, tmp_path):
    """Replace run_study by a recorder returning a finished result with given warnings."""
    import bayesbio.study as study_mod

    calls = []
    warns = []

    def fake(out, **kwargs):
        calls.append(kwargs)
        return study_mod.StudyResult(
            out_dir=Path(out), report_path=Path(out) / "report.html", warnings=list(warns)
        )

    monkeypatch.setattr(study_mod, "run_study", fake)
    return calls, warns


def test_cli_study_passes_its_options_to_the_study(tmp_path, fake_study):
    calls, _ = fake_study
    args = ["study", "--out", str(tmp_path), "--spec", "4.5", "--prob", "0.7"]
    args += ["--objective", "quantile", "--risk", "0.2", "--draws", "300", "--chains", "3"]
    args += ["--tune", "250", "--groups", "scale,site", "--quick", "--force"]
    args += ["-g", "scale=2000L", "-g", "site=B"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (kwargs,) = calls
    cfg = kwargs["config"]
    assert (cfg.spec, cfg.prob, cfg.objective, cfg.risk) == (4.5, 0.7, "quantile", 0.2)
    assert (cfg.draws, cfg.tune, cfg.chains) == (300, 250, 3)
    assert cfg.cv_splits == 3  # the rest of --quick is kept
    assert kwargs["groups"] == ["scale", "site"] and kwargs["force"] is True
    assert cfg.transfer_risk is False and cfg.structures == ("quadratic",)  # --quick's
    assert cfg.targets == ({"scale": "2000L", "site": "B"},)


def test_cli_study_takes_structures_and_transfer_risk(tmp_path, fake_study):
    calls, _ = fake_study
    args = ["study", "--out", str(tmp_path), "--structures", "quadratic_by_group,gp"]
    result = runner.invoke(app, [*args, "--transfer-risk", "--force", "--prob", "0,85"])
    assert result.exit_code == 0, result.output
    cfg = calls[0]["config"]
    assert cfg.structures == ("quadratic_by_group", "gp") and cfg.transfer_risk is True
    assert cfg.prob == 0.85  # a decimal comma, as European users type it
    typo = runner.invoke(app, ["study", "--out", str(tmp_path), "--prob", "0.8x"])
    assert typo.exit_code == 2 and "is not a number (write e.g. 3.5 or 3,5)" in typo.output
    bad = runner.invoke(app, ["study", "--out", str(tmp_path), "--structures", "cubic"])
    assert bad.exit_code == 2 and "--structures must be one of" in bad.output


def test_cli_study_strict_exits_3_on_a_convergence_warning(tmp_path, fake_study):
    _, warns = fake_study
    warns.append("[fit] ConvergenceWarning: structure 'spline': 3 divergent transitions")
    result = runner.invoke(app, ["study", "--out", str(tmp_path), "--strict"])
    assert result.exit_code == 3 and "3 divergent transitions" in result.output, result.output
    assert runner.invoke(app, ["study", "--out", str(tmp_path)]).exit_code == 0


# -- the study's output folder -----------------------------------------------------------------
def _fake_inner(files, fail=None):
    """A stand-in for the study's stages: writes ``files`` into its folder, or fails."""
    import bayesbio.study as study_mod

    def run(out, **kwargs):
        out = Path(out)
        for name, text in files.items():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_text(text)
        if fail is not None:
            raise fail
        return study_mod.StudyResult(out_dir=out, report_path=out / "report.html")

    return run


def _listing(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_study_folder_replaces_its_earlier_files_and_never_touches_foreign_ones(
    tmp_path, monkeypatch
):
    import bayesbio.study as study_mod

    out = tmp_path / "study"
    out.mkdir()
    (out / "my_notes.txt").write_text("mine")
    first = {"report.html": "r1", "a.csv": "1", "figures/x.png": "png", "model.nc": "m1"}
    monkeypatch.setattr(study_mod, "_run_study", _fake_inner(first))
    result = study_mod.run_study(out)
    assert result.report_path == out / "report.html" and result.out_dir == out
    assert _listing(out) == sorted([*first, "my_notes.txt", study_mod.MANIFEST])
    manifest = json.loads((out / study_mod.MANIFEST).read_text())
    assert manifest["files"] == sorted(first)

    second = {"report.html": "r2", "b.csv": "2", "model.nc": "m2"}
    monkeypatch.setattr(study_mod, "_run_study", _fake_inner(second))
    study_mod.run_study(out)
    assert _listing(out) == sorted([*second, "my_notes.txt", study_mod.MANIFEST])
    assert (out / "report.html").read_text() == "r2" and (
        out / "my_notes.txt"
    ).read_text() == "mine"
    assert not (out / "figures").exists()


@pytest.mark.parametrize("error", [RuntimeError("stage failed"), KeyboardInterrupt()])
def test_failed_study_leaves_the_earlier_study_as_it_was(tmp_path, monkeypatch, error):
    import bayesbio.study as study_mod

    out = tmp_path / "study"
    monkeypatch.setattr(study_mod, "_run_study", _fake_inner({"report.html": "r1", "a.csv": "1"}))
    study_mod.run_study(out)
    before = {name: (out / name).read_bytes() for name in _listing(out)}
    monkeypatch.setattr(
        study_mod, "_run_study", _fake_inner({"report.html": "half", "b.csv": "2"}, fail=error)
    )
    with pytest.raises(type(error)):
        study_mod.run_study(out)
    assert {name: (out / name).read_bytes() for name in _listing(out)} == before
    assert [p.name for p in out.iterdir() if p.name.startswith(".bayesbio-staging")] == []
    fresh = tmp_path / "fresh"
    with pytest.raises(type(error)):
        study_mod.run_study(fresh)
    assert not fresh.exists()


def test_study_refuses_to_replace_files_it_did_not_write_unless_forced(tmp_path, monkeypatch):
    import bayesbio.study as study_mod

    out = tmp_path / "study"
    out.mkdir()
    (out / "report.html").write_text("someone else's report")
    called = []

    def inner(out_dir, **kwargs):
        called.append(out_dir)
        return _fake_inner({"report.html": "new"})(out_dir, **kwargs)

    monkeypatch.setattr(study_mod, "_run_study", inner)
    with pytest.raises(FileExistsError, match=r"report\.html.*--force"):
        study_mod.run_study(out)
    assert called == [] and (out / "report.html").read_text() == "someone else's report"
    result = runner.invoke(app, ["study", "--out", str(out)])
    assert result.exit_code == 2 and "--force" in result.output
    assert len(result.output.strip().splitlines()) == 1
    study_mod.run_study(out, force=True)
    assert (out / "report.html").read_text() == "new"


def test_atomic_writes_leave_the_earlier_file_on_failure(tmp_path):
    from bayesbio.study import atomic_path, write_tables

    target = tmp_path / "t.csv"
    target.write_text("earlier")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert target.read_text() == "earlier" and _listing(tmp_path) == ["t.csv"]

    class Broken:
        def to_csv(self, path, index=False):
            Path(path).write_text("partial")
            raise OSError("disk full")

    good_frame = pd.DataFrame({"a": [1]})
    with pytest.raises(OSError, match="disk full"):
        write_tables({"new.csv": good_frame, "t.csv": Broken()}, tmp_path)
    assert target.read_text() == "earlier" and _listing(tmp_path) == ["t.csv"]
    write_tables({"new.csv": good_frame, "t.csv": good_frame}, tmp_path)
    assert _listing(tmp_path) == ["new.csv", "t.csv"]


def test_cli_study_stops_at_the_next_stage_after_a_caught_ctrl_c(tmp_path, monkeypatch):
    import os
    import signal
    import time

    import bayesbio.study as study_mod

    stages = []

    def fake(out, *, progress, **kwargs):
        for stage in ("fit", "recommend", "report"):
            progress(stage, len(stages), 3)
            stages.append(stage)
            if stage == "fit":  # the sampler catches Ctrl-C and returns
                try:
                    os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(5)
                except KeyboardInterrupt:
                    pass
        raise AssertionError("the study ran to its end")

    monkeypatch.setattr(study_mod, "run_study", fake)
    result = runner.invoke(app, ["study", "--out", str(tmp_path / "s")])
    assert result.exit_code == 130, result.output
    assert stages == ["fit"] and "interrupted" in result.output


def test_cli_without_process_says_the_demo_process_was_assumed(tmp_path):
    data = tmp_path / "own.csv"
    data.write_text("run,site,agitation_rpm,temp_c,titer\nR1,A,100,36,1.2\nR2,B,120,37,1.3\n")
    result = runner.invoke(app, ["clean", "--data", str(data), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "missing required column(s) ['mixing_time'" in result.output
    assert "no --process given, so the demo process was assumed" in result.output
    assert "bayesbio init-process --data FILE" in result.output


def test_cli_messages_name_options_not_python_arguments():
    from bayesbio.cli import _cli_terms

    said = _cli_terms(
        "group must name the target group, e.g. group={'scale': '2L', 'site': 'A'}; for a "
        "group without training data pass kind='new_group'; spec is required for "
        "objective='prob_spec': pass spec=VALUE; n_splits must be between 2 and the 3 "
        "batches; declare them (or pass columns={...})"
    )
    assert "-g scale=2L -g site=A" in said and "--kind new_group" in said
    assert "--objective prob_spec" in said and "--spec VALUE" in said
    assert "--n-splits must be" in said and "--columns FILE_NAME=NAME" in said
    assert "={" not in said
    # a label with a space is quoted, so the suggestion can be pasted into a shell
    spaced = _cli_terms("e.g. group={'Scale': '10 L'}")
    assert "-g 'Scale=10 L'" in spaced
    # the convergence warning's advice, as the options of `bayesbio fit`
    rerun = _cli_terms("Increase tune/draws, raise target_accept, or simplify the model")
    assert rerun.startswith("Increase --tune/--draws, raise --target-accept")
    help_text = runner.invoke(app, ["fit", "--help"]).output
    assert "--target-accept" in help_text
    # the cleaner's advice for failed batches, as the option that follows it
    mixture = _cli_terms("or fit with likelihood='mixture', which models failed batches")
    assert "fit with --likelihood mixture" in mixture
    for command in ("fit", "study", "next"):
        text = runner.invoke(app, [command, "--help"]).output
        assert "--likelihood" in text and "--target-accept" in text, command


def test_cli_model_options_reach_the_model_and_are_checked(tmp_path, batches, monkeypatch):
    from bayesbio.models import BayesianYieldModel

    seen = {}

    def fitted(self, X, y=None, **kwargs):
        seen.update(likelihood=self.likelihood, target_accept=self.target_accept)
        self.diagnostics_ = {}
        self.stacking_weights_ = pd.Series(dtype=float)
        return self

    monkeypatch.setattr(BayesianYieldModel, "fit", fitted)
    monkeypatch.setattr(BayesianYieldModel, "save", lambda self, path: Path(path).touch())
    args = ["fit", "-d", batches, "--out", str(tmp_path / "m")]
    result = runner.invoke(app, [*args, "--likelihood", "mixture", "--target-accept", "0.99"])
    assert result.exit_code == 0, result.output
    assert seen == {"likelihood": "mixture", "target_accept": 0.99}
    bad = runner.invoke(app, [*args, "--likelihood", "cauchy"])
    assert bad.exit_code == 2 and "--likelihood must be one of" in bad.output
    bad = runner.invoke(app, [*args, "--target-accept", "1.5"])
    assert bad.exit_code == 2 and "--target-accept" in bad.output
    # the study passes them to its model through its configuration
    from bayesbio.study import StudyConfig

    assert StudyConfig().likelihood == "auto" and StudyConfig().target_accept == 0.95


def test_commands_that_model_a_raw_table_clean_it_with_clean(tmp_path):
    from bayesbio.simulate import simulate_batches

    raw = simulate_batches(40, defects=True, random_seed=3).table
    raw.loc[raw.index[2], "temperature"] = None  # a missing setpoint: the model refuses it
    data = tmp_path / "raw.csv"
    raw.to_csv(data, index=False)
    refused = runner.invoke(app, ["fit", "-d", str(data), "--out", str(tmp_path / "f")])
    assert refused.exit_code == 2
    assert "clean the table first" in refused.output
    assert "(or add --clean to this command)" in refused.output
    out = tmp_path / "c"
    args = ["compare", "-d", str(data), "--no-bayesian", "--n-splits", "3", "--clean"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "cleaned: kept" in result.output
    log = pd.read_csv(out / "cleaning_log.csv")
    kept = pd.read_csv(out / "clean_batches.csv")
    assert len(kept) + (log["action"] == "dropped").sum() == len(raw)
    assert (out / "compare_summary.csv").is_file()


def test_next_says_the_worst_sampling_figures_over_the_structures():
    from bayesbio.cli import _checks_text

    model = SimpleNamespace(
        diagnostics_={
            "quadratic": {"max_r_hat": 1.004, "min_ess_bulk": 900.0, "divergences": 0.0},
            "gp": {"max_r_hat": 1.006, "min_ess_bulk": 800.0, "divergences": 0.0},
        }
    )
    text = _checks_text(model, [], Path("o"))
    assert text == "Sampling checks passed (max R-hat 1.006, min ESS 800, 0 divergent transitions)."
    failed = _checks_text(model, ["R-hat 1.050 (needs <= 1.01)"], Path("o"))
    assert failed.startswith("Sampling checks FAILED (R-hat 1.050") and "--draws 2000" in failed
    assert "none" in _checks_text(SimpleNamespace(), [], Path("o"))
