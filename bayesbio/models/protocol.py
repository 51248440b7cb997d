"""The yield-model protocol: what evaluate, interpret and recommend rely on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from bayesbio.space import ProcessSpace

__all__ = ["FAILED_PROB", "OUTLIER_WEIGHT", "YieldModel", "discounted"]

#: A batch weighing less than this in a Student-t fit is an outlying batch: it barely moves
#: the surface (``BayesianYieldModel.batch_weight_``, ``outlying_batches``)
OUTLIER_WEIGHT = 0.25
#: A batch with at least this posterior P(failed) under the mixture likelihood is a likely
#: failed batch (``failure_prob_``, ``outlying_batches``)
FAILED_PROB = 0.5


def discounted(
    model: Any, index: pd.Index, threshold: float | None = None
) -> tuple[pd.Series, str] | None:
    """Return the training batches a fit discounts, most extreme first, and the measure's name.

    The one rule behind the study's "likely failed batches", ``outlying_batches`` and the
    support without discounted batches: a posterior P(failed) >= ``threshold`` (default
    :data:`FAILED_PROB`; ``failure_prob_``, mixture likelihood; name ``"p_failed"``), else a
    weight in the fit < ``threshold`` (default :data:`OUTLIER_WEIGHT`; ``batch_weight_``,
    Student-t; name ``"weight"``).

    Parameters
    ----------
    model : fitted model
        Any model; one with neither attribute discounts nothing.
    index : pandas.Index
        The index of the table the model was fitted on (one entry per training batch).
    threshold : float, optional
        The limit of the model's measure (see above).

    Returns
    -------
    tuple of (pandas.Series, str) or None
        The measure of the discounted batches, indexed like ``index``, and its name; None when
        the model has neither attribute or it does not hold one value per entry of ``index``.
    """
    for name, kind, default in (
        ("failure_prob_", "p_failed", FAILED_PROB),
        ("batch_weight_", "weight", OUTLIER_WEIGHT),
    ):
        value = getattr(model, name, None)
        if value is None:
            continue
        value = np.asarray(value, dtype=float)
        if value.shape != (len(index),):
            return None
        measure = pd.Series(value, index=index)
        limit = default if threshold is None else threshold
        if kind == "p_failed":
            return measure[measure >= limit].sort_values(ascending=False, kind="stable"), kind
        return measure[measure < limit].sort_values(kind="stable"), kind
    return None


@runtime_checkable
class YieldModel(Protocol):
    """A fitted yield model over a :class:`~bayesbio.space.ProcessSpace`.

    Every bayesbio model (``LassoYield``, ``ForestYield``, ``BayesianYieldModel``) satisfies
    it; so can a user's own model. ``isinstance(model, YieldModel)`` checks the methods only.
    """

    space_: ProcessSpace
    training_table_: pd.DataFrame

    def fit(self, X: pd.DataFrame, y: Any = None) -> Any:
        """Fit on a batch table (the response column is the target when ``y`` is None)."""
        ...

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Mean predictions in the response's unit."""
        ...

    def predict_draws(
        self,
        X: pd.DataFrame,
        *,
        n_draws: int = 1000,
        noise: bool = True,
        kind: str = "existing",
        random_seed: int | None = None,
    ) -> np.ndarray:
        """Predictive draws ``(n_draws, len(X))`` in the response's unit."""
        ...
