"""Table checks shared by the yield models (internal): the space's columns and group labels.

Every model validates its tables against its :class:`~bayesbio.space.ProcessSpace`. Two
failures read the same for every model:

* a table that lacks the space's factor columns (a table of another process, or a model
  loaded for the wrong data) raises :class:`SpaceMismatchError`, naming the missing columns
  and the space's factors;
* a group label not seen in training under ``kind="existing"`` raises a ``ValueError`` that
  lists the labels the model knows and suggests ``kind="new_group"``.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from bayesbio import schema
from bayesbio.space import ProcessSpace, SpaceError, number_text, unit_suffix

__all__ = [
    "ExtrapolationWarning",
    "SpaceMismatchError",
    "check_factor_columns",
    "quiet_extrapolation",
    "unknown_labels_error",
    "validate",
    "warn_beyond_data",
]

_MAX_LABELS = 20


class SpaceMismatchError(schema.SchemaError, SpaceError):
    """A table does not match a model's process space (its factor columns are missing)."""


class ExtrapolationWarning(UserWarning):
    """A setpoint lies outside the support of the historical data.

    Raised by recommendations whose setpoint leaves the guard's support, and by a model's
    ``predict`` / ``predict_interval`` for setpoints beyond both the operating range and the
    training batches (:func:`warn_beyond_data`).
    """


# beyond the operating range and the training batches by more than this share of the range
_BEYOND_SLACK = 0.05


@contextmanager
def quiet_extrapolation() -> Iterator[None]:
    """Silence :class:`ExtrapolationWarning` from predictions inside this block.

    For callers that judge extrapolation themselves (recommendations measure their support;
    cross-validation predicts held-out batches on purpose).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        yield


def warn_beyond_data(
    table: pd.DataFrame, space: ProcessSpace, training: pd.DataFrame, who: str
) -> None:
    """Warn when setpoints lie beyond both the operating range and the training batches.

    A prediction there is the fitted surface carried where no batch and no declared range
    vouches for it: a concave quadratic on the log scale can fall to 1e-16 with an interval
    of width zero. Each factor is allowed its operating range and the range its training
    batches ran, widened by 5 % of the operating range.
    """
    n = len(table)
    beyond = np.zeros(n, dtype=bool)
    said = []
    for f in space.factors:
        if f.name not in table.columns or f.name not in training.columns:
            continue
        x = pd.to_numeric(table[f.name], errors="coerce").to_numpy(dtype=float)
        ran = pd.to_numeric(training[f.name], errors="coerce").dropna()
        if not len(ran):
            continue
        slack = _BEYOND_SLACK * (f.operating[1] - f.operating[0])
        lo = min(f.operating[0], float(ran.min())) - slack
        hi = max(f.operating[1], float(ran.max())) + slack
        out = (x < lo) | (x > hi)
        if not out.any():
            continue
        beyond |= out
        far = x[out][np.argmax(np.abs(x[out] - (lo + hi) / 2))]
        said.append(
            f"{f.label} {number_text(float(far), 4)} (operating range "
            f"{number_text(f.operating[0], 4)}-{number_text(f.operating[1], 4)}, batches "
            f"{number_text(float(ran.min()), 4)}-{number_text(float(ran.max()), 4)}"
            f"{unit_suffix(f.unit)})"
        )
    if said:
        warnings.warn(
            f"{who}: {int(beyond.sum())} of {n} setpoint(s) lie beyond both the operating range "
            f"and the training batches ({'; '.join(said)}): the prediction there carries the "
            "fitted surface where no data vouch for it, and its interval reflects the model's "
            "form, not evidence",
            ExtrapolationWarning,
            stacklevel=3,
        )


def _norm(name: Any) -> str:
    return re.sub(r"[\s_\-]+", "_", str(name).strip().lower())


def check_factor_columns(table: pd.DataFrame, space: ProcessSpace, *, who: str) -> None:
    """Raise :class:`SpaceMismatchError` if ``table`` lacks any of the space's factors.

    A factor counts as present under its own name, the same name up to case and spaces, or a
    source name declared in the space's ``columns`` (what validation would map onto it), so
    this never rejects a table that validation accepts.

    Parameters
    ----------
    table : pandas.DataFrame
        The table to check.
    space : ProcessSpace
        The model's space.
    who : str
        Name of the caller for the message, e.g. ``"BayesianYieldModel.predict"``.
    """
    have = {_norm(c) for c in table.columns}
    aliases: dict[str, set[str]] = {}
    for spec in space.columns:
        aliases.setdefault(spec.target, set()).add(_norm(spec.source))
    missing = [
        f
        for f in space.factor_names
        if f not in table.columns and not ({_norm(f)} | aliases.get(f, set())) & have
    ]
    if missing:
        raise SpaceMismatchError(
            f"{who}: the table does not match the model's process space {space.name!r}: "
            f"missing factor column(s) {missing}. The space's factors are "
            f"{list(space.factor_names)} (response {space.response.name!r}, groups "
            f"{list(space.groups)}); the table has {list(map(str, table.columns))}. Pass a "
            "table of this process, or refit the model with the space of your data."
        )


def unknown_labels_error(column: str, unknown: Iterable[Any], known: Sequence[Any]) -> ValueError:
    """Return the ``ValueError`` for group labels not seen in training (``kind="existing"``)."""
    bad = sorted({str(u) for u in unknown})
    shown = [str(k) for k in known[:_MAX_LABELS]]
    more = f" and {len(known) - _MAX_LABELS} more" if len(known) > _MAX_LABELS else ""
    return ValueError(
        f"group column '{column}': label(s) {bad[:5]} not seen in training; known labels of "
        f"'{column}': {shown}{more}. Use kind='new_group' to predict for a new member of "
        f"'{column}' drawn from the population (or kind='population' for the population mean)."
    )


def validate(table: pd.DataFrame, space: ProcessSpace, **kwargs: Any) -> pd.DataFrame:
    """:func:`bayesbio.schema.validate` against ``space`` (keyword options passed on)."""
    return schema.validate(table, space=space, **kwargs)
