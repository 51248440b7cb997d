import base64
import re

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from bayesbio.report import Report


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
