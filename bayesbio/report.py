"""Self-contained HTML reports: a summary, grouped warnings, sections of tables and figures.

A :class:`Report` collects sections in order and writes one HTML file with every figure
embedded as a base64 PNG, so the file can be mailed or archived on its own. The page opens
with an optional one-screen summary (:meth:`Report.start_summary`), then the warnings, grouped
by topic (:func:`group_warnings`: deduplicated, each with a severity and a "what to do" line in
domain words), then the sections. Tables are rendered for people (:func:`display_table`):
no index column, numbers formatted, units in the headers, no Python reprs, nothing cut off.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from pandas.io.formats.style import Styler

from bayesbio.space import with_unit

if TYPE_CHECKING:
    from bayesbio.space import ProcessSpace

__all__ = [
    "SEVERITIES",
    "Notice",
    "Report",
    "Section",
    "display_table",
    "format_number",
    "group_warnings",
    "plain_text",
    "space_table",
]

#: Warning severities, most serious first: ``action`` (do something before using the
#: result), ``caution`` (check before relying on it), ``info`` (for the record).
SEVERITIES = ("action", "caution", "info")

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1180px;
margin:1.2em auto;padding:0 1em;color:#222;line-height:1.4}
h1{border-bottom:2px solid #2a6f97;padding-bottom:.2em;margin:.2em 0;font-size:1.6em}
h2{color:#2a6f97;margin-top:2em;border-bottom:1px solid #ddd}
.table-wrap{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.6em 0;font-size:.86em}
th,td{border:1px solid #ccc;padding:.25em .5em;vertical-align:top}
th{background:#f0f4f8;text-align:left}
td.num{text-align:right;white-space:nowrap}
td.txt{text-align:left}
figure{margin:1em 0}
figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
.summary{border:2px solid #2a6f97;border-radius:6px;padding:.3em 1em .6em;margin:.8em 0}
.summary h2{margin-top:.3em;border:0}
.summary table{font-size:.92em;width:100%}
.summary p{margin:.3em 0}
.warnings{background:#fffaf2;border:1px solid #f0a020;padding:.4em 1em;border-radius:4px}
.notice{border-left:5px solid #999;padding:.2em .7em;margin:.5em 0;background:#fff}
.notice p{margin:.15em 0}
.notice ul{margin:.15em 0}
.sev{display:inline-block;font-size:.75em;font-weight:bold;text-transform:uppercase;
padding:0 .4em;border-radius:3px;color:#fff;margin-right:.4em}
.notice.action{border-color:#c0392b}.action .sev{background:#c0392b}
.notice.caution{border-color:#e08e0b}.caution .sev{background:#e08e0b}
.notice.info{border-color:#2a6f97}.info .sev{background:#2a6f97}
.todo{color:#1d4e1d}
details summary{cursor:pointer;color:#555;font-size:.88em}
.ok{background:#eef8ee;border:1px solid #5a5;padding:.6em 1em;border-radius:4px}
nav ol{columns:2}
.meta{color:#666;font-size:.85em}
"""


@dataclass
class Section:
    """One report section: a title and a list of HTML blocks."""

    title: str
    blocks: list[str] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        """The section's HTML id."""
        return "".join(c if c.isalnum() else "-" for c in self.title.lower()).strip("-")


@dataclass(frozen=True)
class Notice:
    """One grouped warning of a report.

    Attributes
    ----------
    severity : str
        ``"action"``, ``"caution"`` or ``"info"`` (see :data:`SEVERITIES`).
    topic : str
        Short heading, e.g. ``"Sampling diagnostics"``.
    finding : str
        What was found, in domain words (one or two sentences).
    advice : str
        What to do.
    messages : tuple of str
        The messages behind it, deduplicated and free of Python reprs.
    """

    severity: str
    topic: str
    finding: str
    advice: str
    messages: tuple[str, ...] = ()


# -- plain text ---------------------------------------------------------------------------------
_NP_SCALAR = re.compile(r"\b(?:np|numpy)\.(?:float|int|uint|bool|str|complex)\w*\(([^()]*)\)")
_DICT = re.compile(r"\{((?:\s*'[^'{}]*'\s*:\s*[^,{}]+,?)+)\}")
_LIST = re.compile(r"\[((?:\s*'[^'\[\]]*',?)+)\]")
_TUPLE = re.compile(r"\(((?:\s*'[^'()]*',?)+)\)")
_LONG_FLOAT = re.compile(r"(?<![\w.])(-?\d+\.\d{5,})(?![\d.])")


def format_number(value: Any, digits: int = 3) -> str:
    """Format a number for people: ``digits`` significant digits, thousands separated.

    Parameters
    ----------
    value : number
        The value (NaN and None give "").
    digits : int, default 3
        Significant digits; numbers of ``10**digits`` and more are shown whole.

    Returns
    -------
    str
        E.g. ``"0.123"``, ``"6.12"``, ``"12,346"``, ``"1.2e-07"``.
    """
    if value is None or isinstance(value, bool | np.bool_):
        return "" if value is None else ("yes" if value else "no")
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if np.isnan(v):
        return ""
    if np.isinf(v):
        return "unbounded" if v > 0 else "-unbounded"
    if float(v).is_integer() and abs(v) < 10**15:
        return f"{int(v):,}" if abs(v) >= 10_000 else str(int(v))
    a = abs(v)
    if a >= 10**digits:
        return f"{v:,.0f}"
    if a < 10 ** -(digits + 1):
        return f"{v:.{max(digits - 1, 1)}g}"
    return f"{v:.{digits}g}"


def plain_text(text: Any) -> str:
    """Return ``text`` without Python reprs: numpy scalars, dicts, lists, 16-digit floats.

    ``"np.float64(1.2)"`` becomes ``"1.2"``, ``"{'ph': 7.0, 'temperature': 35.3}"`` becomes
    ``"ph 7, temperature 35.3"``, ``"['quadratic']"`` becomes ``"quadratic"`` and
    ``6.115364763597609`` becomes ``6.115``.
    """
    out = _NP_SCALAR.sub(lambda m: m.group(1).strip("'\""), str(text))

    def dict_sub(m: re.Match[str]) -> str:
        pairs = re.findall(r"'([^']*)'\s*:\s*([^,{}]+)", m.group(1))
        return ", ".join(f"{k} {v.strip().strip(chr(39))}" for k, v in pairs)

    out = _DICT.sub(dict_sub, out)
    out = _LIST.sub(lambda m: ", ".join(re.findall(r"'([^']*)'", m.group(1))), out)
    out = _TUPLE.sub(lambda m: ", ".join(re.findall(r"'([^']*)'", m.group(1))), out)
    out = _LONG_FLOAT.sub(lambda m: f"{float(m.group(1)):.4g}", out)
    return out.replace("{}", "none").replace("[]", "none")


# -- warnings -----------------------------------------------------------------------------------
_PREFIX = re.compile(r"^\[(?P<stage>[\w -]+)\]\s*(?:(?P<cat>[A-Z]\w*(?:Warning|Error)):\s*)?")
_DIAG_WORDS = re.compile(
    r"r-hat|\brhat\b|\bess\b|\bess_(?:bulk|tail)\b|effective sample|divergen|pareto",
    re.IGNORECASE,
)
#: Warning categories with a topic of their own: (topic, severity, what to do).
_TOPICS = {
    "EmptyDesignSpaceWarning": (
        "Empty design space",
        "caution",
        "No setpoint meets the spec with the required probability: the message gives the best "
        "probability found and where. Lower the spec or the probability (--spec, --prob), or "
        "run batches near that setpoint so the model grows surer there.",
    ),
    "CalibrationWarning": (
        "Model calibration",
        "caution",
        "The model's stated probabilities were too confident on held-out batches of this "
        "data: read P(meet spec) and P(better) as optimistic, ask for more margin, and confirm "
        "a recommendation with a batch before adopting it.",
    ),
    "BoundWarning": (
        "Optimum at the edge of the operating range",
        "caution",
        "The best setpoint may lie beyond the declared range: confirm with batches near that "
        "edge, and widen the operating range in the process declaration if the process allows.",
    ),
}


def _split(message: str) -> tuple[str, str, str]:
    """Return ``(stage, category, text)`` of a study warning ``"[stage] Category: text"``."""
    m = _PREFIX.match(message)
    if not m:
        return "", "", message
    return m.group("stage") or "", m.group("cat") or "", message[m.end() :]


def _numbers(pattern: str, texts: Iterable[str]) -> list[float]:
    found = []
    for t in texts:
        found += [float(x) for x in re.findall(pattern, t, flags=re.IGNORECASE)]
    return found


def _diagnostics_notice(messages: list[str]) -> Notice:
    final = [m for m in messages if _split(m)[0] not in ("compare", "cv")]
    checked = final or messages
    parts = []
    r_hat = _numbers(r"R-hat\s+(\d+\.\d+)", checked)
    if r_hat:
        parts.append(f"worst R-hat {max(r_hat):.3f} (should be 1.01 or less)")
    ess = _numbers(r"(?:ESS|ess_bulk|ess_tail)\s+(\d+(?:\.\d+)?)", checked)
    if ess:
        parts.append(f"smallest effective sample size {min(ess):.0f} (should be 400 or more)")
    div = _numbers(r"(\d+)\s+divergen", checked)
    if div:
        parts.append(f"{int(max(div))} divergent transition(s) (should be none)")
    pareto = [m for m in checked if "pareto" in m.lower()]
    if pareto:
        parts.append("some batches are too influential for the leave-one-out check (Pareto k)")
    who = "The final model" if final else "The cross-validation fits"
    if pareto and len(parts) == 1:  # the sampler passed; only the LOO estimate is rough
        finding = (
            f"{who}: leave-one-out cross-validation is approximate for some batches (Pareto k "
            "> 0.7): the weights that combine the response-surface structures are rough. The "
            "sampler's own checks (R-hat, ESS, divergences) passed."
        )
        n_cv = len(messages) - len(final)
        if final and n_cv:
            finding += f" {n_cv} cross-validation fit(s) show the same."
        advice = (
            "Look at the batches named below: a group level (e.g. a campaign) with one or two "
            "batches, an outlying or failed batch, or a factor missing from the model makes "
            "single batches this influential. The predictions and their intervals stand; "
            "relabel or merge tiny group levels if that is sound."
        )
        return Notice("caution", "Sampling diagnostics", finding, advice, tuple(messages))
    finding = (
        f"{who} did not pass the sampler's checks: "
        + ("; ".join(parts) if parts else "see the messages below")
        + "."
    )
    n_cv = len(messages) - len(final)
    if final and n_cv:
        finding += f" {n_cv} cross-validation fit(s) show the same."
    severity = "action" if final else "caution"
    advice = (
        "After a quick run (--quick), rerun with the full settings before acting on the "
        "numbers. A full run already repeats a failing structure's sampling (up to two extra "
        "runs): what remains is a hard posterior, so treat the numbers as approximate and "
        "simplify the model (fewer response-surface structures or group columns) or add "
        "batches; divergent transitions call for this most."
    )
    return Notice(severity, "Sampling diagnostics", finding, advice, tuple(messages))


def _extrapolation_notice(messages: list[str]) -> Notice:
    dist = _numbers(r"distance\s+(\d+(?:\.\d+)?)\s*>", messages)
    limit = _numbers(r"limit\s+(\d+(?:\.\d+)?)", messages)
    how = (
        f" (distance {max(dist):.2f} from the historical setpoints, limit {min(limit):.2f})"
        if dist and limit
        else ""
    )
    finding = (
        f"{len(messages)} recommendation(s) lie outside the range of the historical "
        f"batches{how}: the model is extrapolating there."
    )
    advice = (
        "Treat such a setpoint as a hypothesis: run 2-3 confirmation batches there before "
        "changing the recipe, or keep the search inside the historical data."
    )
    return Notice("action", "Recommendation outside the data", finding, advice, tuple(messages))


def group_warnings(
    messages: Iterable[str],
    overrides: Mapping[str, tuple[str | None, str | None, str | None]] | None = None,
) -> list[Notice]:
    """Group warning messages into :class:`Notice` items, most important first.

    Sampling diagnostics (R-hat, effective sample size, divergences, Pareto k) become one
    item, recommendations outside the data one, cleaning notes one ("Data cleaning", always
    first: they say what was changed in the user's data); other messages are grouped by
    topic. Messages are deduplicated and cleared of Python reprs (:func:`plain_text`).

    Parameters
    ----------
    messages : iterable of str
        Raw messages, e.g. ``"[fit] ConvergenceWarning: ..."`` as the study collects them.
    overrides : mapping, optional
        ``{message: (severity, topic, advice)}``; a None field keeps the classification.

    Returns
    -------
    list of Notice
        Data cleaning first, then by severity (action, caution, info), then first seen.
    """
    overrides = overrides or {}
    seen: list[str] = []
    for m in messages:
        if m not in seen:
            seen.append(m)
    diag, extrap, clean = [], [], []
    topics: dict[str, list[tuple[str, str | None, str | None]]] = {}
    for raw in seen:
        text = plain_text(raw)
        severity, topic, advice = overrides.get(raw, (None, None, None))
        stage, category, body = _split(text)
        low = text.lower()
        if topic is not None:
            topics.setdefault(topic, []).append((text, severity, advice))
        elif category in ("ConvergenceWarning", "ModelDiagnosticsWarning") or (
            category not in _TOPICS and _DIAG_WORDS.search(low)
        ):
            diag.append(text)
        elif category == "ExtrapolationWarning" or "outside the support" in low:
            extrap.append(text)
        elif stage == "clean":
            clean.append(body)
        elif category in _TOPICS:
            name, sev, todo = _TOPICS[category]
            topics.setdefault(name, []).append((body, sev, todo))
        else:
            topics.setdefault("Other notes", []).append((text, severity, advice))
    notices: list[Notice] = []
    if clean:
        notices.append(
            Notice(
                "caution",
                "Data cleaning",
                f"{len(clean)} cleaning note(s) need a check (listed below): changes made "
                "to the data, and batches the records themselves mark.",
                "Confirm each note below against the source file (the cleaning log lists "
                "every row); if one is wrong, fix the file or the column mapping and rerun.",
                tuple(clean),
            )
        )
    if diag:
        notices.append(_diagnostics_notice(diag))
    if extrap:
        notices.append(_extrapolation_notice(extrap))
    for topic, items in topics.items():
        severity = next((s for _, s, _ in items if s), "caution")
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
        advice = next(
            (a for _, _, a in items if a),
            "Read each note and check whether it changes the decision; none stopped the run.",
        )
        bodies = tuple(_split(t)[2] if topic == "Other notes" else t for t, _, _ in items)
        finding = bodies[0] if len(bodies) == 1 else f"{len(bodies)} notes, listed below."
        notices.append(Notice(severity, topic, finding, advice, bodies))
    first = notices[:1] if clean else []
    rest = notices[len(first) :]
    rest.sort(key=lambda n: SEVERITIES.index(n.severity))
    return first + rest


def _notice_html(n: Notice) -> str:
    esc = html.escape
    out = [
        f"<div class='notice {n.severity}'><p><span class='sev'>{n.severity}</span>"
        f"<b>{esc(n.topic)}</b>: {esc(n.finding)}</p>",
        f"<p class='todo'><b>What to do:</b> {esc(n.advice)}</p>",
    ]
    show = n.messages if n.topic in ("Data cleaning", "Other notes") else ()
    if len(show) > 1 or (show and show[0] != n.finding):
        out.append("<ul>" + "".join(f"<li>{esc(m)}</li>" for m in show) + "</ul>")
    elif n.messages and not show:
        items = "".join(f"<li>{esc(m)}</li>" for m in n.messages)
        out.append(
            f"<details><summary>{len(n.messages)} message(s) as raised</summary>"
            f"<ul>{items}</ul></details>"
        )
    out.append("</div>")
    return "".join(out)


# -- tables -------------------------------------------------------------------------------------
def _header(name: Any, units: Mapping[str, str], labels: Mapping[str, str]) -> str:
    key = str(name)
    text = labels.get(key, key.replace("_", " "))
    return with_unit(text, units.get(key) or "")


def display_table(
    frame: pd.DataFrame,
    *,
    digits: int = 3,
    units: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> str:
    """Render a DataFrame as an HTML table for people (a pandas Styler, no index column).

    Numbers get :func:`format_number`, booleans yes/no, missing values stay empty, text is
    escaped and cleared of Python reprs, headers lose underscores and gain ``[unit]``. Every
    row and column is shown (no truncation); a wide table scrolls sideways.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table; a named or non-default index becomes leading columns.
    digits : int, default 3
        Significant digits of numbers.
    units : mapping of str to str, optional
        ``{column: unit}`` for the headers.
    labels : mapping of str to str, optional
        ``{column: header}``; default the column name with spaces for underscores.

    Returns
    -------
    str
        An HTML fragment (``<div class='table-wrap'><table>...``).
    """
    units = dict(units or {})
    labels = dict(labels or {})
    shown = frame.copy()
    if isinstance(shown.columns, pd.MultiIndex):
        shown.columns = [" ".join(str(p) for p in c if str(p)) for c in shown.columns]
    named = any(n is not None for n in shown.index.names)
    shown = shown.reset_index(drop=not named)
    cells = {}
    classes = {}
    for j in range(shown.shape[1]):
        series = shown.iloc[:, j]
        numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        if numeric or pd.api.types.is_bool_dtype(series):
            values = [format_number(v, digits) for v in series]
        else:
            values = [
                "" if (v is None or (isinstance(v, float) and np.isnan(v))) else plain_text(v)
                for v in series
            ]
            values = [
                format_number(v, digits) if isinstance(v, bool | np.bool_) else v for v in values
            ]
        key = f"c{j}"
        cells[key] = [html.escape(v) for v in values]
        classes[key] = ["num" if numeric else "txt"] * len(series)
    display = pd.DataFrame(cells, index=pd.RangeIndex(len(shown)))
    display.columns = [html.escape(_header(c, units, labels)) for c in shown.columns]
    cls = pd.DataFrame(classes, index=display.index)
    cls.columns = display.columns
    if len(set(display.columns)) != len(display.columns):  # Styler needs unique labels
        display.columns = [f"{c}&#8203;" * (i + 1) for i, c in enumerate(display.columns)]
        cls.columns = display.columns
    styler = (
        Styler(display, uuid="t", cell_ids=False)
        .hide(axis="index")
        .set_td_classes(cls)
        .set_table_attributes('class="data"')
    )
    text = styler.to_html()
    text = re.sub(r"<style type=\"text/css\">\s*</style>\s*", "", text)
    text = re.sub(r'\s+id="T_t"', "", text)
    return f"<div class='table-wrap'>{text}</div>"


def _figure_html(fig: Figure, caption: str | None, dpi: int) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    alt = html.escape(caption or "figure")
    return f'<figure><img alt="{alt}" src="data:image/png;base64,{data}"/>{cap}</figure>'


def _fmt_range(pair: tuple[float, float]) -> str:
    lo, hi = pair
    if lo == float("-inf") and hi == float("inf"):
        return "unbounded"
    return f"{lo:g} to {hi:g}"


def space_table(space: ProcessSpace) -> pd.DataFrame:
    """Return the declared factors and the response of a process space as a table.

    Parameters
    ----------
    space : ProcessSpace
        The process.

    Returns
    -------
    pandas.DataFrame
        One row per factor and one for the response: ``role``, ``name``, ``label``,
        ``unit``, ``operating range`` (for the response its typical range, if declared),
        ``limits`` and ``note`` (fixed value or direction).
    """
    rows = [
        {
            "role": "factor",
            "name": f.name,
            "label": f.label,
            "unit": f.unit,
            "operating range": _fmt_range(f.operating),
            "limits": _fmt_range(f.limits),
            "note": "" if f.fixed is None else f"fixed at {f.fixed:g}",
        }
        for f in space.factors
    ]
    r = space.response
    rows.append(
        {
            "role": "response",
            "name": r.name,
            "label": r.label,
            "unit": r.unit,
            "operating range": "" if r.typical is None else f"typical {_fmt_range(r.typical)}",
            "limits": _fmt_range(r.limits),
            "note": r.direction,
        }
    )
    return pd.DataFrame(rows)


@dataclass
class Report:
    """An HTML report assembled section by section.

    Parameters
    ----------
    title : str
        Report title.
    dpi : int, default 90
        Resolution of embedded figures.
    """

    title: str
    dpi: int = 90
    sections: list[Section] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    summary: Section | None = None
    _active: Section | None = field(default=None, repr=False)
    _overrides: dict[str, tuple[str | None, str | None, str | None]] = field(
        default_factory=dict, repr=False
    )

    def section(self, title: str) -> Section:
        """Start a new section and return it."""
        sec = Section(title)
        self.sections.append(sec)
        self._active = sec
        return sec

    def start_summary(self, title: str = "Summary") -> Section:
        """Start (or restart) the summary shown at the very top; content goes there next.

        The summary can be written last (when the results are known): it is rendered first,
        above the warnings. The next :meth:`section` call moves on to a normal section.
        """
        self.summary = Section(title)
        self._active = self.summary
        return self.summary

    def _current(self) -> Section:
        if self._active is None:
            raise ValueError("add a section with Report.section(title) before adding content")
        return self._active

    def text(self, text: str) -> None:
        """Add a paragraph of plain text (escaped, Python reprs removed)."""
        self._current().blocks.append(f"<p>{html.escape(plain_text(text))}</p>")

    def html(self, fragment: str) -> None:
        """Add a trusted HTML fragment to the current section."""
        self._current().blocks.append(fragment)

    def table(
        self,
        frame: pd.DataFrame,
        *,
        caption: str | None = None,
        digits: int = 3,
        units: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        """Add a DataFrame as a table for people (see :func:`display_table`)."""
        cap = f"<p class='meta'>{html.escape(caption)}</p>" if caption else ""
        body = display_table(frame, digits=digits, units=units, labels=labels)
        self._current().blocks.append(cap + body)

    def describe_space(self, space: ProcessSpace) -> None:
        """Add the process name, its group columns and a table of its declared factors."""
        groups = " > ".join(space.groups) if space.groups else "none"
        self.text(
            f"Process: {space.name}. {space.k} declared factor(s); response "
            f"{space.response.name!r} in {space.response.unit} ({space.response.direction}d); "
            f"group columns (outermost first): {groups}; batch id column {space.batch_id!r}. "
            "Recommendations and design spaces are searched inside the operating ranges; values "
            "outside the limits are data errors."
        )
        self.table(space_table(space), caption="Declared factors and response")

    def figure(self, fig: Figure, caption: str | None = None) -> None:
        """Embed a matplotlib figure as a base64 PNG."""
        if not isinstance(fig, Figure):
            raise TypeError(f"figure must be a matplotlib Figure, got {type(fig).__name__}")
        self._current().blocks.append(_figure_html(fig, caption, self.dpi))

    def warn(
        self,
        message: str,
        *,
        severity: str | None = None,
        topic: str | None = None,
        advice: str | None = None,
    ) -> None:
        """Record a warning; all warnings are shown, grouped, at the top of the report.

        Parameters
        ----------
        message : str
            What was found (a repeated message is recorded once).
        severity : {"action", "caution", "info"}, optional
            Default: from the message's kind (see :func:`group_warnings`).
        topic : str, optional
            Heading to group it under; default from the message's kind.
        advice : str, optional
            The "what to do" line of its group.
        """
        if severity is not None and severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
        if message not in self.warnings:
            self.warnings.append(message)
        if severity or topic or advice:
            self._overrides[message] = (severity, topic, advice)

    def notices(self) -> list[Notice]:
        """Return the warnings grouped as they are rendered (see :func:`group_warnings`)."""
        return group_warnings(self.warnings, self._overrides)

    def _warnings_html(self) -> str:
        notices = self.notices()
        if not notices:
            return "<div class='ok' id='warnings'>No warnings: all checks passed.</div>"
        counts = [
            f"{sum(n.severity == s for n in notices)} {s}"
            for s in SEVERITIES
            if any(n.severity == s for n in notices)
        ]
        return (
            f"<div class='warnings' id='warnings'><b>{len(notices)} warning(s)</b> "
            f"<span class='meta'>({', '.join(counts)})</span>"
            + "".join(_notice_html(n) for n in notices)
            + "</div>"
        )

    def to_html(self) -> str:
        """Render the report as one self-contained HTML string."""
        created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        meta = "".join(
            f"<li><b>{html.escape(k)}</b>: {html.escape(plain_text(v))}</li>"
            for k, v in self.meta.items()
        )
        meta_html = (
            f"<details class='meta'><summary>Run settings</summary><ul>{meta}</ul></details>"
            if meta
            else ""
        )
        summary = ""
        if self.summary is not None:
            s = self.summary
            summary = (
                f"<div class='summary' id='{s.anchor}'><h2>{html.escape(s.title)}</h2>"
                f"{''.join(s.blocks)}</div>"
            )
        nav = "".join(
            f"<li><a href='#{s.anchor}'>{html.escape(s.title)}</a></li>" for s in self.sections
        )
        body = "".join(
            f"<section id='{s.anchor}'><h2>{html.escape(s.title)}</h2>{''.join(s.blocks)}</section>"
            for s in self.sections
        )
        return (
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{html.escape(self.title)}</h1><p class='meta'>Generated {created}</p>"
            f"{summary}{self._warnings_html()}{meta_html}<nav><ol>{nav}</ol></nav>{body}"
            "</body></html>"
        )

    def write(self, path: str | Path) -> Path:
        """Write the report to ``path`` (parent folders are created) and return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_html(), encoding="utf-8")
        return path
