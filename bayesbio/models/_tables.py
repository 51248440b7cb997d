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
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from bayesbio import schema
from bayesbio.space import ProcessSpace, SpaceError

__all__ = ["SpaceMismatchError", "check_factor_columns", "unknown_labels_error", "validate"]

_MAX_LABELS = 20


class SpaceMismatchError(schema.SchemaError, SpaceError):
    """A table does not match a model's process space (its factor columns are missing)."""


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
