import base64
import re
import shutil
import subprocess

import pandas as pd
import pytest

from bayesbio.simulate import simulate_batches
from bayesbio.study import StudyConfig, quick_config, read_table, run_study

SECTIONS = (
    "Data and cleaning",
    "Exploratory data analysis",
    "Model comparison (same folds for every model)",
    "Hierarchical Bayesian model",
    "Risk-aware setpoint recommendations and design spaces",
    "Harvest timing under model risk",
    "Run details",
)


@pytest.fixture(scope="module")
def quick_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    stages = []
    result = run_study(
        out,
        config=quick_config(harvest_replications=10),
        random_seed=5,
        progress=lambda stage, done, total: stages.append((stage, done, total)),
    )
    return result, stages


def test_study_report_has_every_section_and_embedded_nonempty_images(quick_study):
    result, _ = quick_study
    text = result.report_path.read_text()
    for title in SECTIONS:
        assert f"<h2>{title.replace('&', '&amp;')}</h2>" in text, title
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(images) >= 15
    for data in images:
        png = base64.b64decode(data)
        assert png.startswith(b"\x89PNG") and len(png) > 2000
    assert 'src="http' not in text and "<script src" not in text


def test_study_warnings_are_at_the_top_of_the_report(quick_study):
    result, _ = quick_study
    text = result.report_path.read_text()
    # quick settings (200 draws) cannot reach ESS 400: the report must say so up front
    assert any("ConvergenceWarning" in w for w in result.warnings)
    assert text.index("warning(s)") < text.index("<section")
    assert "ConvergenceWarning" in text[: text.index("<section")]


def test_study_writes_tables_model_and_accounts_for_every_row(quick_study):
    result, stages = quick_study
    out = result.out_dir
    for name in (
        "clean_batches",
        "cleaning_log",
        "comparison_scores",
        "recommendations",
        "harvest_table1",
        "diagnostics",
        "timings",
    ):
        assert (out / f"{name}.csv").is_file(), name
    assert (out / "model.nc").stat().st_size > 0
    raw = pd.read_csv(out / "raw_batches.csv")
    log = pd.read_csv(out / "cleaning_log.csv")
    kept = pd.read_csv(out / "clean_batches.csv")
    assert len(raw) == len(kept) + (log["action"] == "dropped").sum()
    scores = pd.read_csv(out / "comparison_scores.csv")
    assert set(scores["model"]) == {"LASSO", "RandomForest", "Bayesian"}
    recs = pd.read_csv(out / "recommendations.csv")
    assert {"true_regret_pct", "setpoint"} <= set(recs.columns)
    assert (recs["true_regret_pct"] >= -1e-6).all()
    # one recommendation per scale, the production scale included
    assert set(recs["scale"]) == set(kept["scale"])
    diagnostics = pd.read_csv(out / "diagnostics.csv")
    assert {"structure", "max_r_hat", "min_ess_bulk", "divergences"} <= set(diagnostics.columns)
    assert stages[-1][1] == stages[-1][2]


def test_study_runs_on_a_user_table_with_other_column_names(tmp_path):
    table = simulate_batches(30, random_seed=3).table.rename(
        columns={"temperature": "Temp_C", "yield": "Titer"}
    )
    path = tmp_path / "mine.csv"
    table.to_csv(path, index=False)
    result = run_study(
        tmp_path / "out",
        data=read_table(path),
        columns={"Temp_C": "temperature", "Titer": "yield"},
        config=quick_config(harvest_replications=5, cv_splits=2),
        random_seed=1,
    )
    assert "user table" in result.report_path.read_text()
    assert "defect_labels" not in result.tables


def test_read_table_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.csv"):
        read_table(tmp_path / "missing.csv")
    bad = tmp_path / "table.xlsx"
    bad.write_text("x")
    with pytest.raises(ValueError, match=r"table\.xlsx"):
        read_table(bad)


def test_study_rejects_a_config_of_the_wrong_type(tmp_path):
    with pytest.raises(TypeError, match="StudyConfig"):
        run_study(tmp_path, config={"draws": 10})
    assert StudyConfig.quick().draws < StudyConfig().draws


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs headless chromium")
def test_report_renders_in_headless_chromium(quick_study, tmp_path):
    result, _ = quick_study
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1200,2400",
            result.report_path.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 20000
