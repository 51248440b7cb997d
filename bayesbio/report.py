"""Self-contained HTML reports: sections of text, tables and embedded figures.

A :class:`Report` collects sections in order and writes one HTML file with every figure
embedded as a base64 PNG, so the file can be mailed or archived on its own. Warnings are
collected separately and always rendered at the top.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from bayesbio.space import ProcessSpace

__all__ = ["Report", "Section", "space_table"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #2a6f97;padding-bottom:.2em}
h2{color:#2a6f97;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.8em 0;font-size:.88em}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:right}
th{background:#f0f4f8}
td:first-child,th:first-child{text-align:left}
figure{margin:1em 0}
figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85em;color:#555}
.warnings{background:#fff4e5;border:1px solid #f0a020;padding:.6em 1em;border-radius:4px}
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

    def section(self, title: str) -> Section:
        """Start a new section and return it."""
        sec = Section(title)
        self.sections.append(sec)
        return sec

    def _current(self) -> Section:
        if not self.sections:
            raise ValueError("add a section with Report.section(title) before adding content")
        return self.sections[-1]

    def text(self, text: str) -> None:
        """Add a paragraph of plain text (escaped) to the current section."""
        self._current().blocks.append(f"<p>{html.escape(text)}</p>")

    def html(self, fragment: str) -> None:
        """Add a trusted HTML fragment to the current section."""
        self._current().blocks.append(fragment)

    def table(self, frame: pd.DataFrame, *, caption: str | None = None, digits: int = 3) -> None:
        """Add a DataFrame as an HTML table (floats rounded to ``digits``)."""
        shown = frame.copy()
        for col in shown.columns:
            if pd.api.types.is_float_dtype(shown[col]):
                shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:.{digits}g}")
        cap = f"<p class='meta'>{html.escape(caption)}</p>" if caption else ""
        self._current().blocks.append(cap + shown.to_html(border=0, escape=True))

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

    def warn(self, message: str) -> None:
        """Record a warning; all warnings are shown at the top of the report."""
        if message not in self.warnings:
            self.warnings.append(message)

    def to_html(self) -> str:
        """Render the report as one self-contained HTML string."""
        created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        meta = "".join(
            f"<li><b>{html.escape(k)}</b>: {html.escape(v)}</li>" for k, v in self.meta.items()
        )
        if self.warnings:
            items = "".join(f"<li>{html.escape(w)}</li>" for w in self.warnings)
            top = (
                f"<div class='warnings' id='warnings'><b>{len(self.warnings)} warning(s)"
                f"</b><ul>{items}</ul></div>"
            )
        else:
            top = "<div class='ok' id='warnings'>No warnings: all checks passed.</div>"
        nav = "".join(
            f"<li><a href='#{s.anchor}'>{html.escape(s.title)}</a></li>" for s in self.sections
        )
        body = "".join(
            f"<section id='{s.anchor}'><h2>{html.escape(s.title)}</h2>{''.join(s.blocks)}</section>"
            for s in self.sections
        )
        return (
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>"
            f"<h1>{html.escape(self.title)}</h1><p class='meta'>Generated {created}</p>"
            f"<ul class='meta'>{meta}</ul>{top}<nav><ol>{nav}</ol></nav>{body}</body></html>"
        )

    def write(self, path: str | Path) -> Path:
        """Write the report to ``path`` (parent folders are created) and return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_html(), encoding="utf-8")
        return path
