"""The yield-model protocol: what evaluate, interpret and recommend rely on."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from bayesbio.space import ProcessSpace

__all__ = ["FAILED_PROB", "OUTLIER_WEIGHT", "YieldModel"]

#: A batch weighing less than this in a Student-t fit is an outlying batch: it barely moves
#: the surface (``BayesianYieldModel.batch_weight_``, ``outlying_batches``)
OUTLIER_WEIGHT = 0.25
#: A batch with at least this posterior P(failed) under the mixture likelihood is a likely
#: failed batch (``failure_prob_``, ``outlying_batches``)
FAILED_PROB = 0.5


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
