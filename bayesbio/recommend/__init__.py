"""Risk-aware setpoint recommendations, Bayesian design spaces and where to run the next batch.

Everything here works from a fitted yield model through the model protocol only
(``model.predict_draws``, ``model.training_table_`` and the process space ``model.space_``;
``model.diagnostics_`` and ``model.stacking_weights_`` are read when present), so the Bayesian
model and the baselines are handled alike, for any process space (k >= 1 factors).

The package is split by concept, in the order a recommendation is made:

========================  ==============================================================
:mod:`.constraints`       bounds, fixed factors and support limits (:class:`Constraints`)
:mod:`.context`           the target group, its batches and recipe, the search box
:mod:`.support`           data support: Mahalanobis distance and the model-based SD ratio
:mod:`.sampler`           the one place that draws: common random numbers
:mod:`.transfer`          transfer risk: the target group's own slopes where the model pools
:mod:`.objectives`        mean, quantile, P(meet spec), CVaR, for either direction
:mod:`.acquisition`       the score searched: objective, safe-improvement gate, support
:mod:`.search`            Latin hypercube, vectorised pattern search, polish
:mod:`.recommendation`    :func:`recommend` and :class:`Recommendation`
:mod:`.argmax`            :func:`argmax_setpoint`: the mean optimum of any model (baseline)
:mod:`.design_space`      :func:`design_space` and proven acceptable ranges
:mod:`.experiments`       :func:`next_batches`: the value of one more batch
:mod:`.campaign`          :class:`Campaign`: propose, add results, refit, repeat
:mod:`.messages`          warnings that name the factor and the numbers
:mod:`.plots`             :func:`plot_recommendation`, :func:`plot_design_space`
========================  ==============================================================

All evaluations of one call use the same seed, so candidates are compared on *common random
numbers* (the same posterior draws). The *extrapolation guard* keeps searches within the
support of the target group's data (:class:`Constraints`); a recommendation outside it raises
:class:`ExtrapolationWarning`.
"""

from bayesbio.recommend.argmax import argmax_setpoint, optimal_range
from bayesbio.recommend.campaign import Campaign
from bayesbio.recommend.constraints import DEFAULT_MAX_DISTANCE, Constraints, support_radius
from bayesbio.recommend.context import KINDS
from bayesbio.recommend.design_space import DesignSpace, design_space
from bayesbio.recommend.experiments import next_batches
from bayesbio.recommend.messages import (
    BoundWarning,
    EmptyDesignSpaceWarning,
    ExtrapolationWarning,
    ModelDiagnosticsWarning,
)
from bayesbio.recommend.objectives import OBJECTIVES, Objective, describe_objective
from bayesbio.recommend.plots import plot_design_space, plot_recommendation
from bayesbio.recommend.recommendation import Recommendation, recommend

__all__ = [
    "DEFAULT_MAX_DISTANCE",
    "KINDS",
    "OBJECTIVES",
    "BoundWarning",
    "Campaign",
    "Constraints",
    "DesignSpace",
    "EmptyDesignSpaceWarning",
    "ExtrapolationWarning",
    "ModelDiagnosticsWarning",
    "Objective",
    "Recommendation",
    "argmax_setpoint",
    "describe_objective",
    "design_space",
    "next_batches",
    "optimal_range",
    "plot_design_space",
    "plot_recommendation",
    "recommend",
    "support_radius",
]
