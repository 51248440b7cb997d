import base64
import re

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from bayesbio.report import Report, space_table
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
