import base64
import re
import shutil
import subprocess
import time
from dataclasses import replace
from types import SimpleNamespace

import pandas as pd
import pytest

from bayesbio.report import group_warnings
from bayesbio.simulate import GroupLevel, ProcessBiology, simulate_batches
from bayesbio.space import Factor, ProcessSpace, Response
from bayesbio.study import (
    StudyConfig,
    _safe_name,
    calibration_warning,
    group_spec,
    quick_config,
    read_table,
    run_study,
)

SECTIONS = (
    "Data and cleaning",
    "Exploratory data analysis",
    "Model comparison (same folds for every model)",
    "Hierarchical Bayesian model",
    "Risk-aware setpoint recommendations and design spaces",
    "Simulated case study: harvest timing under model risk",
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
    # posterior checks a reviewer expects: prior predictive, rank plots, calibration
    figures = result.out_dir / "figures"
    for name, caption in (
        ("posterior_prior_predictive", "Prior predictive check"),
        ("posterior_rank", "Rank plots per chain"),
        ("comparison_calibration", "Calibration: share of held-out batches"),
    ):
        assert caption in text and (figures / f"{name}.png").stat().st_size > 2000, name
    # the default Student-t likelihood says which batches it down-weights
    assert "Outlying batches: the Student-t likelihood" in text


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
    # the next-batch table marks what the report shows: a cut in regret >= 0.5 % of the
    # recommendation's response, by a batch that passes the campaign's safety rule
    nxt = pd.read_csv(out / "next_batches.csv")
    assert nxt["p_safe"].between(0, 1).all()  # the risk of each experiment
    factors = ["mixing_time", "temperature", "ph", "dissolved_oxygen"]
    setpoints = nxt[["scale", "site", *factors]].round(9)
    assert not setpoints.duplicated().any()  # a kept recipe is not ranked twice
    reference = nxt.merge(
        recs.loc[recs["setpoint"] == "recommended", ["scale", "site", "expected_yield"]],
        on=["scale", "site"],
        suffixes=("", "_rec"),
    )["expected_yield_rec"]
    worth = (nxt["expected_regret_reduction"] > 0.005 * reference.abs()) & (nxt["p_safe"] >= 0.9)
    assert (nxt["worth_a_batch"] == worth).all()
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
    with pytest.raises(ValueError, match=r"missing\.csv"):
        read_table(tmp_path / "missing.csv")
    bad = tmp_path / "table.xlsx"
    bad.write_text("x")
    with pytest.raises(ValueError, match=r"table\.xlsx"):
        read_table(bad)
    semicolons = tmp_path / "lab.csv"
    semicolons.write_text("batch_id;Temperature;yield\nB1;36,5;3,2\nB2;37,0;3,4\n", "latin-1")
    table = read_table(semicolons)
    assert list(table.columns) == ["batch_id", "Temperature", "yield"]
    assert table["Temperature"].tolist() == [36.5, 37.0]


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


_MEASURE_SUMMARY = (
    "<script>(function(){var t=document.querySelector('#summary table');"
    "var b=t?t.getBoundingClientRect().bottom+window.scrollY:-1;"
    "document.body.setAttribute('data-summary-bottom',String(b));})();</script>"
)


def _summary_bottom(report_html, tmp_path, width, height):
    """Bottom of the summary table in CSS px, as laid out by headless Chromium."""
    page = tmp_path / f"measure_{width}x{height}.html"
    page.write_text(report_html.replace("</body>", _MEASURE_SUMMARY + "</body>"), "utf-8")
    done = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--window-size={width},{height}",
            "--dump-dom",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r'data-summary-bottom="([-0-9.]+)"', done.stdout)
    assert found, done.stdout[:500]
    return float(found.group(1))


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs headless chromium")
def test_report_summary_fits_one_screen_of_1280_by_900(quick_study, tmp_path):
    result, _ = quick_study
    text = result.report_path.read_text()
    bottom = _summary_bottom(text, tmp_path, 1280, 900)
    assert 0 < bottom <= 900, f"summary table ends at {bottom:.0f} px, below a 900 px screen"
    # the measurement follows the layout: a narrow window pushes the table further down
    assert _summary_bottom(text, tmp_path, 500, 900) > bottom


# -- another process space -------------------------------------------------------------------------
K2 = ProcessSpace(
    (
        Factor("temp", "degF", (80.0, 95.0), (32.0, 212.0), "Culture temperature"),
        Factor("feed", "mL/h", (2.0, 10.0), (0.0, 100.0), "Feed rate"),
    ),
    response=Response("titer", "mg/L", (0.0, 5000.0), typical=(50.0, 1500.0)),
    groups=("site",),
    batch_id="run",
    name="Two-factor test process",
)
K2_CONFIG = quick_config(n_batches=40, cv_splits=2, harvest_replications=5)


@pytest.fixture(scope="module")
def k2_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("k2_study")
    # the plant's temperature recipe given; the feed rate left to each group's median
    return run_study(out, config=replace(K2_CONFIG, recipe={"temp": 86.0}), random_seed=3, space=K2)


def test_study_on_a_custom_space_runs_every_stage_on_its_factors(k2_study):
    result = k2_study
    assert result.space is K2
    assert result.model.space_.fingerprint == K2.fingerprint
    text = result.report_path.read_text()
    assert "bayesbio study: Two-factor test process" in text
    process = text[text.index("<h2>Process</h2>") : text.index("<h2>Data and cleaning</h2>")]
    for piece in ("Culture temperature", "degF", "80 to 95", "mL/h", "2 to 10", "mg/L"):
        assert piece in process, piece
    for title in SECTIONS:
        if "harvest" not in title.lower():
            assert f"<h2>{title}</h2>" in text, title
    assert "harvest timing" not in text.lower() and "harvest" not in result.timings
    recs = pd.read_csv(result.out_dir / "recommendations.csv")
    assert {"temp", "feed", "site", "true_regret_pct"} <= set(recs.columns)
    assert set(recs["site"]) == set(pd.read_csv(result.out_dir / "clean_batches.csv")["site"])
    assert (recs["true_regret_pct"] >= -1e-6).all()
    # the given recipe is every group's reference, and the report says so
    assert (recs.loc[recs["setpoint"] == "recipe", "temp"] == 86.0).all()
    assert "The recipe is the one given (Culture temperature 86 °F); other factors" in text
    assert "recipe (the one given); P(better)" in text  # the summary says the same
    assert recs["temp"].between(80.0, 95.0).all() and recs["feed"].between(2.0, 10.0).all()
    assert (result.out_dir / "model.nc").stat().st_size > 0
    assert (result.out_dir / "figures" / "design_space_A.png").stat().st_size > 0


def test_study_on_user_data_sanitises_file_names_and_puts_cleaning_warnings_first(
    tmp_path, monkeypatch
):
    from bayesbio import clean as clean_mod

    bio = ProcessBiology(
        groups={"site": {"North/1": GroupLevel(weight=2.0), "South 2": GroupLevel(level=0.9)}}
    )
    table = simulate_batches(36, space=K2, biology=bio, random_seed=4).table
    real_clean = clean_mod.clean

    def clean_with_a_warning(raw, policy=None, **kwargs):
        result = real_clean(raw, policy, **kwargs)
        return SimpleNamespace(
            table=result.table,
            log=result.log,
            warnings=["column 'temp': 40 % of rows repaired; is it really in degF?"],
        )

    monkeypatch.setattr(clean_mod, "clean", clean_with_a_warning)
    result = run_study(
        tmp_path / "out",
        data=table,
        config=replace(K2_CONFIG, draws=100, tune=100),
        random_seed=1,
        space=K2,
    )
    names = {p.name for p in (tmp_path / "out").rglob("*")}
    assert {"recommendation_North-1.png", "recommendation_South-2.png"} <= names
    assert {"design_space_par_North-1.csv", "design_space_par_South-2.csv"} <= names
    assert not any("/" in n or " " in n for n in names)
    assert result.warnings[0].startswith("[clean] column 'temp': 40 %")
    text = result.report_path.read_text()
    head = text[: text.index("<section")]
    assert "is it really in degF?" in head
    assert head.index("is it really in degF?") < head.index("ConvergenceWarning")
    assert "user table" in text


def test_safe_file_names():
    assert _safe_name("North/1_South 2") == "North-1_South-2"
    assert _safe_name("../..") == "unnamed"
    assert _safe_name("2000L_A") == "2000L_A"
    assert _safe_name("Werk=Werk Süd") == "Werk-Werk-Süd"  # letters of any script are kept


# -- the report a plant manager reads in one minute ---------------------------------------------
def _summary_html(text):
    return text[text.index("id='summary'") : text.index("id='warnings'")]


def test_study_report_opens_with_a_summary_naming_every_target_group(quick_study):
    from bayesbio.summary import RISKS

    result, _ = quick_study
    text = result.report_path.read_text()
    # the summary comes first: before the warnings, the navigation and every section
    assert text.index("id='summary'") < text.index("id='warnings'") < text.index("<section")
    summary = _summary_html(text)
    recs = pd.read_csv(result.out_dir / "recommendations.csv")
    targets = recs[["scale", "site"]].drop_duplicates()
    assert len(targets) >= 2
    for scale, site in targets.itertuples(index=False):
        assert f"scale {scale}, site {site}" in summary, (scale, site)
    for piece in ("run at", "expected yield (titer) [g/L]", "10th percentile [g/L]", "recipe ",
                  "P(better than recipe)", "main risk", "run next", "Mixing time"):  # fmt: skip
        assert piece in summary, piece
    table = pd.read_csv(result.out_dir / "summary.csv")
    assert len(table) == len(targets)
    assert table["p_better"].between(0.0, 1.0).all()
    assert set(table["main_risk"]) <= set(RISKS)
    # quick settings fail the sampling checks: the summary says so, in words
    assert (table["main_risk"] != "none").all()
    assert "model sampling checks: failed" in summary


def test_study_report_has_no_reprs_index_columns_or_truncation(quick_study):
    result, _ = quick_study
    text = re.sub(r"base64,[^\"]+", "base64,", result.report_path.read_text())
    for bad in ("np.float64(", "dtype", "Unnamed", "...", "NaN", "nan<", "{'", "['"):
        assert bad not in text, bad
    headers = re.findall(r"<th[^>]*>(.*?)</th>", text)
    assert "index" not in headers and "" not in headers
    # the recommendation table shows its group columns first, with units in the headers
    section = text[text.index("Recommendation per group") :]
    rec_headers = re.findall(r"<th[^>]*>(.*?)</th>", section[: section.index("</table>")])
    assert rec_headers[:3] == ["scale", "site", "setting"]
    assert "Temperature [°C]" in rec_headers and "expected yield (titer) [g/L]" in rec_headers
    # grouped warnings, each with a severity and what to do
    head = text[text.index("id='warnings'") : text.index("<section")]
    assert head.count("What to do:") == head.count("class='notice ")
    assert "class='notice action'" in head and "Sampling diagnostics" in head


def test_study_p_better_is_zero_at_the_recipe_and_the_profiler_has_k_panels(quick_study):
    from matplotlib.figure import Figure

    from bayesbio.profiler import plot_profiler
    from bayesbio.summary import compare_to_recipe

    result, _ = quick_study
    model = result.model
    recs = pd.read_csv(result.out_dir / "recommendations.csv")
    factors = list(result.space.factor_names)
    row = recs[recs["setpoint"] == "recommended"].iloc[0]
    recipe = recs[(recs["setpoint"] == "recipe") & (recs["scale"] == row["scale"])].iloc[0]
    group = {"scale": row["scale"], "site": row["site"]}
    same = compare_to_recipe(model, recipe[factors], recipe[factors], group, n_draws=200)
    assert same["p_better"] == 0.0 and same["expected_gain"] == 0.0
    found = compare_to_recipe(model, row[factors], recipe[factors], group, n_draws=200)
    assert 0.0 <= found["p_better"] <= 1.0
    fig = plot_profiler(model, row[factors], group, n_draws=100, n_points=9)
    assert isinstance(fig, Figure)
    assert len([ax for ax in fig.axes if ax.get_xlabel()]) == result.space.k
    assert (result.out_dir / "figures" / f"profiler_{row['scale']}_{row['site']}.png").is_file()


def test_custom_space_study_summary_names_its_sites(k2_study):
    text = k2_study.report_path.read_text()
    summary = _summary_html(text)
    sites = pd.read_csv(k2_study.out_dir / "recommendations.csv")["site"].unique()
    for site in sites:
        assert f"site {site}" in summary
    assert "titer [mg/L]" in summary and "Culture temperature" in summary


def test_likely_failed_batches_lists_them_with_the_cleaners_flags():
    from types import SimpleNamespace

    from bayesbio.space import ProcessSpace
    from bayesbio.study import likely_failed_batches

    space = ProcessSpace.default()
    table = pd.DataFrame(
        {
            "batch_id": ["B1", "B2", "B3", "B4"],
            "scale": ["2L", "2L", "200L", "200L"],
            "site": ["A", "A", "A", "B"],
            "yield": [5.0, 0.4, 5.2, 0.9],
        },
        index=[0, 1, 3, 4],  # the cleaner dropped row 2: indices need not be contiguous
    )
    log = pd.DataFrame(
        {"batch_id": ["B2", "B2", "B3"], "reason": ["yield outlier", "yield outlier", "typo"]}
    )
    model = SimpleNamespace(failure_prob_=pd.Series([0.01, 0.97, 0.2, 0.6], index=table.index))
    out = likely_failed_batches(model, table, log, space)
    assert out["batch_id"].tolist() == ["B2", "B4"]  # most likely first, P >= 0.5 only
    assert out["P(failed)"].tolist() == [0.97, 0.6]
    assert out["cleaner's flags"].tolist() == ["yield outlier", "none"]
    assert likely_failed_batches(SimpleNamespace(), table, log, space) is None


def test_one_rule_selects_the_discounted_batches_of_a_fit():
    from types import SimpleNamespace

    from bayesbio.models.protocol import discounted
    from bayesbio.recommend.context import discounted_batches

    index = pd.Index([3, 5, 8, 9])
    mixture = SimpleNamespace(failure_prob_=pd.Series([0.5, 0.1, 0.9, 0.49], index=index))
    keep, kind = discounted(mixture, index)
    assert kind == "p_failed" and keep.index.tolist() == [8, 3]  # >= 0.5, most likely first
    assert discounted(mixture, index, threshold=0.05)[0].index.tolist() == [8, 3, 9, 5]
    t_fit = SimpleNamespace(batch_weight_=pd.Series([1.0, 0.2, 0.25, 0.01], index=index))
    keep, kind = discounted(t_fit, index)
    assert kind == "weight" and keep.index.tolist() == [9, 5]  # < 0.25, lightest first
    assert discounted(SimpleNamespace(), index) is None
    assert discounted(t_fit, pd.Index([1, 2])) is None  # a measure of another table
    # the support's rows: by position, and nothing for a measure indexed otherwise
    table = pd.DataFrame({"x": range(4)}, index=index)
    assert discounted_batches(t_fit, table).tolist() == [False, True, False, True]
    assert not discounted_batches(t_fit, table.reset_index(drop=True)).any()


def test_outlying_batches_of_a_student_t_fit_are_listed_lightest_first():
    from types import SimpleNamespace

    from bayesbio.space import ProcessSpace
    from bayesbio.study import likely_failed_batches

    space = ProcessSpace.default()
    table = pd.DataFrame(
        {
            "batch_id": ["B1", "B2", "B3"],
            "scale": ["2L", "2L", "200L"],
            "site": ["A", "A", "A"],
            "yield": [5.0, 0.4, 0.9],
        }
    )
    log = pd.DataFrame(
        {
            "batch_id": ["B2", "B2"],
            "reason": ["yield outlier", "text '34,6' read as 34.6 (decimal comma)"],
            "kind": ["outlier", "text"],  # reading a number is not a flag on the batch
        }
    )
    model = SimpleNamespace(batch_weight_=pd.Series([1.02, 0.03, 0.2]))
    out = likely_failed_batches(model, table, log, space)
    assert out["batch_id"].tolist() == ["B2", "B3"]
    assert out["weight in the fit"].tolist() == [0.03, 0.2]
    assert out["cleaner's flags"].tolist() == ["yield outlier", "none"]


def test_outlying_batches_show_the_operators_notes():
    from types import SimpleNamespace

    from bayesbio.space import ProcessSpace
    from bayesbio.study import likely_failed_batches

    space = ProcessSpace.default()
    table = pd.DataFrame(
        {
            "batch_id": ["B1", "B2", "B3", "B4"],
            "scale": ["2L", "2L", "200L", "200L"],
            "site": ["A", "A", "A", "A"],
            "yield": [5.0, 0.4, 0.9, 5.1],
            "started": ["2024-01-03", "2024-02-11", "2024-03-01", "2024-03-20"],
            "operator": ["AK", "AK", "JS", "JS"],  # repeated labels: not free text
            "notes": [None, "contamination, seed train", "", "new probe"],
        }
    )
    model = SimpleNamespace(batch_weight_=pd.Series([1.02, 0.03, 0.2, 1.0]))
    out = likely_failed_batches(model, table, pd.DataFrame(), space)
    assert out["notes"].tolist() == ["contamination, seed train", ""]
    assert "started" not in out.columns and "operator" not in out.columns
    quiet = likely_failed_batches(
        model, table.assign(notes=[None, None, None, "x"]), pd.DataFrame(), space
    )
    assert "notes" not in quiet.columns  # nothing written on the listed batches


def test_cleaning_notices_ask_about_guesses_and_repairs_not_declared_renames():
    from bayesbio.study import _cleaning_notices

    log = pd.DataFrame(
        {
            "column": ["titer", "temperature", "temperature", "temperature", "site", "site"],
            "action": ["renamed", "renamed", "converted", "repaired", "repaired", "repaired"],
            "kind": ["column", "column", "column", "unit", "label", "label"],
            "reason": [
                "column 'Titer' read as 'titer' (declared in the process space)",
                "column 'Temperature' read as 'temperature' (same name up to case and spaces)",
                "'temperature' converted from degF to degC",
                "kelvin converted to degC",
                "group label normalised: 'lyon ' -> 'lyon'",
                "group label normalised: 'lyon ' -> 'lyon'",
            ],
        }
    )
    notes = _cleaning_notices(log)
    text = "\n".join(notes)
    assert "declared in the process space" not in text  # the user's own statement
    assert "same name up to case and spaces" in text  # a guess: to confirm
    assert "converted from degF to degC" in text
    assert "1 value(s) in 'temperature' repaired as unit slips (e.g. kelvin converted" in text
    assert "group labels merged in 'site' (2 row(s))" in text


def test_cleaning_notices_read_the_cleaners_own_log():
    # the cleaner's log itself (not a hand-made one) carries the kind of each action, so a
    # unit slip it repaired reaches the top of the report
    from bayesbio.clean import clean
    from bayesbio.simulate import simulate_batches
    from bayesbio.study import _cleaning_notices

    raw = simulate_batches(30, random_seed=3).table.reset_index(drop=True)  # no defects
    raw.loc[4, "temperature"] = 98.6  # typed in Fahrenheit
    log = clean(raw).log
    assert log.loc[log["action"] == "repaired", "kind"].tolist() == ["unit"]
    text = "\n".join(_cleaning_notices(log))
    assert "1 value(s) in 'temperature' repaired as unit slips (e.g. unit slip: Fahrenheit" in text


def test_target_groups_are_matched_to_the_datas_labels_or_named_as_wrong():
    from bayesbio.study import _groups_text, resolve_targets

    table = pd.DataFrame(
        {"scale": ["10L", "10L", "300L", "300L"], "site": ["Lyon", "Basel", "Basel", "Lyon"]}
    )
    groups = ["scale", "site"]
    got = resolve_targets([{"scale": "300 l", "site": "lyon"}], groups, table)
    assert got == [{"scale": "300L", "site": "Lyon"}]
    unknown = (
        r"group\['site'\] = 'Zurich' is not a label seen in training; "
        r"known labels of 'site': \['Basel', 'Lyon'\]"
    )
    with pytest.raises(ValueError, match=unknown):
        resolve_targets([{"site": "Zurich"}], groups, table)
    with pytest.raises(ValueError, match=r"'vessel' is not a group column of the study"):
        resolve_targets([{"vessel": "A"}], groups, table)
    text = _groups_text(groups, table, got, given=True)
    assert "those given" in text and "3 other group(s)" in text


@pytest.mark.slow
def test_a_study_recommends_for_the_group_it_is_given(tmp_path):
    config = quick_config(harvest=False, cv_splits=2, targets=({"scale": "200 l", "site": "a"},))
    start = time.perf_counter()
    result = run_study(tmp_path, config=config, random_seed=4)
    wall = time.perf_counter() - start
    # the timings count the figures and tables between the stages too
    assert result.timings["figures, tables and report"] > 0.0
    assert sum(result.timings.values()) <= wall
    recs = pd.read_csv(result.out_dir / "recommendations.csv")
    assert set(zip(recs["scale"], recs["site"], strict=True)) == {("200L", "A")}
    assert "The groups shown are those given" in result.report_path.read_text()
    with pytest.raises(ValueError, match="known labels of 'site'"):
        run_study(tmp_path / "bad", config=replace(config, targets=({"site": "Z"},)), random_seed=4)


def test_the_report_says_which_groups_get_no_recommendation():
    from bayesbio.study import _groups_text, _site_groups

    table = pd.DataFrame(
        {"scale": ["10L", "10L", "200L", "200L", "200L"], "site": ["A", "B", "B", "B", "A"]}
    )
    chosen = _site_groups(["scale", "site"], table)
    assert chosen == [{"scale": "200L", "site": "B"}, {"scale": "10L", "site": "A"}]
    text = _groups_text(["scale", "site"], table, chosen)
    assert "For each scale, the site with the most batches is shown" in text
    assert "2 other group(s) of the data are not" in text and "bayesbio recommend" in text
    assert _groups_text(["scale"], table, _site_groups(["scale"], table)) == ""  # all shown
    # a process declared sites outermost: every vessel size still gets its recommendation
    assert _site_groups(["site", "scale"], table) == chosen


def _coverage_summary(cov):
    return pd.DataFrame(
        {
            "model": ["Bayesian", "Bayesian", "LASSO"],
            "scheme": "kfold",
            "metric": ["coverage_90", "rmse", "coverage_90"],
            "mean": [cov, 0.5, 0.2],
        }
    )


def test_cross_validated_intervals_too_narrow_beyond_chance_are_warned():
    text = calibration_warning(_coverage_summary(23 / 30), 30)
    assert text is not None and text.startswith("[compare] CalibrationWarning")
    assert "held 77 % of the held-out batches (about 23 of 30" in text
    assert "optimistic" in text
    (notice,) = group_warnings([text])
    assert notice.topic == "Model calibration" and notice.severity == "caution"
    assert notice.finding.startswith("in cross-validation the Bayesian model's")
    # within chance of 90 % at this size, or a model not in the table: no warning
    assert calibration_warning(_coverage_summary(25 / 30), 30) is None
    assert calibration_warning(_coverage_summary(0.5), 30, model="RandomForest") is None
    # the LASSO's own row is read when asked for
    assert "LASSO model" in calibration_warning(_coverage_summary(0.9), 30, model="LASSO")


def test_a_groups_default_spec_is_a_quantile_of_its_own_batches():
    table = pd.DataFrame(
        {
            "scale": ["2L"] * 10 + ["2000L"] * 5,
            "site": ["A"] * 10 + ["B"] * 3 + ["C"] * 2,
            "titer": [*range(1, 11), 20.0, 21.0, 22.0, 23.0, 24.0],
        }
    )
    spec, where = group_spec(table, "titer", {"scale": "2L", "site": "A"}, 0.25)
    assert spec == pytest.approx(pd.Series(range(1, 11)).quantile(0.25))
    assert where == "2L / A batches (10)"
    # too few batches of 2000L / B: the quantile of its scale; of 2000L / C and of a new
    # scale with 2: of all batches
    spec, where = group_spec(table, "titer", {"scale": "2000L", "site": "B"}, 0.25)
    assert where == "2000L batches (5)" and spec == pytest.approx(21.0)
    two = table.assign(scale=["2L"] * 13 + ["20L"] * 2)
    spec, where = group_spec(two, "titer", {"scale": "20L", "site": "C"}, 0.25)
    assert where == "all batches (15)" and spec == pytest.approx(table["titer"].quantile(0.25))
    # a response to minimise: as good as three in four batches is the upper quartile
    spec, _ = group_spec(table, "titer", {"scale": "2L"}, 0.25, maximise=False)
    assert spec == pytest.approx(pd.Series(range(1, 11)).quantile(0.75))
