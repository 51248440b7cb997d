import base64
import re

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from bayesbio.report import (
    SEVERITIES,
    Report,
    display_table,
    format_number,
    group_warnings,
    plain_text,
    space_table,
)
from bayesbio.space import Factor, ProcessSpace, Response


def _report():
    rep = Report("test report")
    rep.section("Numbers")
    rep.text("a <b> & c")
    rep.table(pd.DataFrame({"model": ["LASSO"], "rmse": [0.123456]}), caption="scores")
    rep.section("Pictures")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    rep.figure(fig, "a line")
    return rep


def test_report_embeds_every_figure_as_nonempty_png(tmp_path):
    path = _report().write(tmp_path / "sub" / "r.html")
    text = path.read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(images) == 1
    png = base64.b64decode(images[0])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_report_escapes_text_and_lists_sections():
    text = _report().to_html()
    assert "a &lt;b&gt; &amp; c" in text
    assert "<a href='#numbers'>Numbers</a>" in text and "id='pictures'" in text
    assert "0.123" in text and "0.123456" not in text


def test_report_shows_warnings_at_the_top():
    rep = _report()
    rep.warn("posterior not converged: max R-hat 1.2")
    rep.warn("posterior not converged: max R-hat 1.2")
    text = rep.to_html()
    assert text.index("1 warning(s)") < text.index("<section")
    assert text.count("max R-hat 1.2") == 1
    assert "No warnings" in _report().to_html()


def test_report_content_needs_a_section_and_a_figure():
    rep = Report("empty")
    with pytest.raises(ValueError, match="section"):
        rep.text("orphan")
    rep.section("s")
    with pytest.raises(TypeError, match="Figure"):
        rep.figure("not a figure")


def test_report_describes_the_process_space():
    space = ProcessSpace(
        (
            Factor("temperature", "degC", (25.0, 32.0), (4.0, 50.0), "Induction temperature"),
            Factor("feed_rate", "g/L/h", (0.5, 3.0), fixed=1.5),
        ),
        response=Response("impurity", "%", (0.0, 100.0), "minimise"),
        groups=("scale", "site"),
        name="Fed-batch <test>",
    )
    table = space_table(space)
    assert table["name"].tolist() == ["temperature", "feed_rate", "impurity"]
    assert table.loc[0, "operating range"] == "25 to 32" and table.loc[0, "unit"] == "degC"
    assert table.loc[1, "limits"] == "unbounded" and table.loc[1, "note"] == "fixed at 1.5"
    assert table.loc[2, "note"] == "minimise"
    rep = Report("r")
    rep.section("Process")
    rep.describe_space(space)
    text = rep.to_html()
    assert "Process: Fed-batch &lt;test&gt;" in text
    assert "Induction temperature" in text and "g/L/h" in text and "scale &gt; site" in text


# -- the top of the report: summary, grouped warnings, tables for people ------------------------
STUDY_WARNINGS = [
    "[clean] column 'temp': 40 % of rows repaired; is it really in degF?",
    "[compare] ConvergenceWarning: structure 'quadratic': posterior may not have converged "
    "(max R-hat 1.015 > 1.01; min ESS 83 < 400). Increase tune/draws.",
    "[fit] ConvergenceWarning: structure 'quadratic': posterior may not have converged "
    "(max R-hat 1.076 > 1.01; min ESS 19 < 400). Increase tune/draws.",
    "[fit] ConvergenceWarning: structure 'quadratic': posterior may not have converged "
    "(max R-hat 1.076 > 1.01; min ESS 19 < 400). Increase tune/draws.",
    "[recommend] ModelDiagnosticsWarning: model did not pass its sampling diagnostics "
    "(structure 'quadratic': 4 divergent transitions)",
    "[recommend] ExtrapolationWarning: recommended setpoint {'ph': np.float64(7.1234567891), "
    "'temperature': 35.3} is outside the support of the historical data (Mahalanobis "
    "distance 4.10 > limit 3.60, group)",
    "[recommend] BoundWarning: factor 'mixing_time' is on the lower bound 10 s of the search "
    "box (operating range): the optimum may lie beyond it",
    "[eda] UserWarning: only 2 batches at scale 2000L",
]


def test_plain_text_removes_python_reprs():
    text = plain_text(
        "at {'ph': np.float64(7.1234567891), 'temperature': 35.3} with ['quadratic', 'spline'] "
        "and ('a',); R-hat np.float64(1.0566078720095147)"
    )
    assert text == "at ph 7.123, temperature 35.3 with quadratic, spline and a; R-hat 1.057"
    assert plain_text("pH 6.6 to 7.5, 40 %") == "pH 6.6 to 7.5, 40 %"


def test_warnings_are_grouped_with_severity_and_advice():
    notices = group_warnings(STUDY_WARNINGS)
    topics = [n.topic for n in notices]
    # the user's data first, then by severity; diagnostics of every stage in one item
    assert topics[0] == "Data cleaning"
    assert topics.count("Sampling diagnostics") == 1
    assert set(topics) == {
        "Data cleaning",
        "Sampling diagnostics",
        "Recommendation outside the data",
        "Optimum at the edge of the operating range",
        "Other notes",
    }
    severities = [SEVERITIES.index(n.severity) for n in notices[1:]]
    assert severities == sorted(severities)
    diag = notices[topics.index("Sampling diagnostics")]
    assert diag.severity == "action"
    assert "R-hat 1.076" in diag.finding and "effective sample size 19" in diag.finding
    assert "4 divergent" in diag.finding and "1 cross-validation fit" in diag.finding
    assert len(diag.messages) == 3  # the repeated message once
    extrap = notices[topics.index("Recommendation outside the data")]
    assert extrap.severity == "action" and "distance 4.10" in extrap.finding
    for n in notices:
        assert n.severity in SEVERITIES and n.advice
        for text in (n.finding, n.advice, *n.messages):
            assert "np.float64(" not in text and "{'" not in text


def test_an_unreliable_leave_one_out_alone_is_a_caution_not_a_sampling_failure():
    message = (
        "[models] UserWarning: Leave-one-out check: 2 of 30 batches (B07, B12) too influential "
        "to leave out in one fit (Pareto k > 0.7; 'gp' 2). The stacking weights (quadratic "
        "0.40, gp 0.60) are approximate."
    )
    (diag,) = group_warnings([message])
    assert diag.topic == "Sampling diagnostics" and diag.severity == "caution"
    assert "sampler's own checks" in diag.finding and "did not pass" not in diag.finding
    assert "B07" in diag.messages[0]
    with_rhat = group_warnings([message, STUDY_WARNINGS[2]])
    diag = next(n for n in with_rhat if n.topic == "Sampling diagnostics")
    assert diag.severity == "action" and "did not pass" in diag.finding


def test_an_empty_design_space_has_a_topic_of_its_own():
    (notice,) = group_warnings(
        [
            "[design space] EmptyDesignSpaceWarning: empty design space: no supported grid "
            "point reaches P(meet spec) >= 0.9; the highest is 0.814 at pH 7.1"
        ]
    )
    assert notice.topic == "Empty design space" and notice.severity == "caution"
    assert "--spec" in notice.advice and "0.814" in notice.messages[0]


def test_warnings_render_at_the_top_with_what_to_do():
    rep = _report()
    for w in STUDY_WARNINGS:
        rep.warn(w)
    rep.warn("column 'ph' has 3 values at a detection limit", severity="info", topic="Assay")
    with pytest.raises(ValueError, match="severity"):
        rep.warn("x", severity="urgent")
    text = rep.to_html()
    head = text[: text.index("<section")]
    assert "6 warning(s)" in head
    assert head.count("What to do:") == 6
    assert head.index("is it really in degF?") < head.index("Sampling diagnostics")
    assert "class='notice info'" in head and "detection limit" in head
    assert "np.float64(" not in text


def test_the_summary_is_rendered_first_even_when_written_last():
    rep = _report()
    rep.warn("posterior not converged: max R-hat 1.2")
    rep.start_summary("Summary")
    rep.text("Run at 35 degC.")
    rep.section("Later")
    rep.text("after the summary")
    text = rep.to_html()
    assert text.index("id='summary'") < text.index("id='warnings'") < text.index("<section")
    assert text.index("Run at 35 degC.") < text.index("id='warnings'")
    assert "after the summary" in text[text.index("id='later'") :]


def test_tables_are_for_people():
    frame = pd.DataFrame(
        {f"factor_{i}": [1.0 + i / 7, 2.0] for i in range(30)}
        | {"scale": ["2L", "2000L"], "ok": [True, False], "big": [12345.6, None]},
        index=pd.Index([7, 3]),
    )
    html_text = display_table(frame, units={"factor_0": "degC", "big": "g/L"})
    assert "<th" in html_text and "index" not in html_text.lower().replace("hide", "")
    headers = re.findall(r"<th[^>]*>(.*?)</th>", html_text)
    assert len(headers) == 33  # every column, no index column, nothing cut off
    assert headers[0] == "factor 0 [°C]" and headers[-1] == "big [g/L]"
    cells = re.findall(r"<td[^>]*>(.*?)</td>", html_text)
    assert cells[:2] == ["1", "1.14"] and "12,346" in cells and "yes" in cells
    assert ">7<" not in html_text  # the index is not shown
    assert "..." not in html_text and "dtype" not in html_text and "nan" not in cells
    named = display_table(pd.DataFrame({"low": [1.0]}, index=pd.Index(["ph"], name="parameter")))
    assert re.findall(r"<th[^>]*>(.*?)</th>", named) == ["parameter", "low"]


def test_numbers_are_formatted_for_people():
    assert [format_number(v) for v in (0.123456, 6.115, 371.2, 12345.6, 3.0, float("nan"))] == [
        "0.123",
        "6.12",
        "371",
        "12,346",
        "3",
        "",
    ]
    assert format_number(True) == "yes" and format_number(1.2e-7) == "1.2e-07"
