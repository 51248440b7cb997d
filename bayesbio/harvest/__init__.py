"""Harvest-time optimisation under model risk (Wang, Xie, Martagan, Akcay, van Ravenstein 2024).

A fermentation batch grows protein and impurity by log-normal steps; the decision maker learns
the growth-rate laws from a few data points (normal-inverse-gamma knowledge states) and decides
each 6 h epoch whether to harvest. The model and every numerical choice follow
``docs/harvest_model.md``.

Modules: :mod:`.params` (parameters, scenarios), :mod:`.growth` (simulation),
:mod:`.knowledge` (NIG beliefs), :mod:`.operator` (the one-step operator ``C[g]``),
:mod:`.mdp` (backward induction, exact policy evaluation), :mod:`.policies`,
:mod:`.casestudy` (Tables 1-2, Figs 3-4 data), :mod:`.plots`, :mod:`.decision` (harvest or
continue for a running batch, from measured runs).
"""

from .casestudy import DEFAULT_POLICIES, HarvestCaseStudy, harvest_case_study, paired_differences
from .decision import (
    DECISION_POLICIES,
    GROWTH_WINDOWS,
    HarvestDataError,
    HarvestDecision,
    HarvestSpec,
    RunData,
    epoch_knowledge,
    growth_window,
    harvest_decision,
    knowledge_from_runs,
    read_runs,
    summarize_knowledge,
    validate_runs,
)
from .growth import BatchOutcome, growth_rates, run_batch, simulate_trajectories
from .knowledge import DEFAULT_PRIOR, NIG, KnowledgeState, nig_posterior
from .mdp import PISolution, evaluate_policy, myopic_harvest_mask, solve_pi
from .operator import Grid, ShockLaw, continuation, make_grid
from .params import SCENARIOS, HarvestParams, get_scenario
from .plots import plot_harvest_epochs, plot_reward_table, plot_thresholds
from .policies import (
    CONTINUE,
    HARVEST,
    PIMDP,
    POLICY_NAMES,
    RLMR,
    CommonPractice,
    HarvestPolicy,
    HarvestState,
    Myopic,
    MyopicPI,
    PlugIn,
    PlugInStatic,
    make_policy,
)

__all__ = [
    "CONTINUE",
    "DECISION_POLICIES",
    "DEFAULT_POLICIES",
    "DEFAULT_PRIOR",
    "GROWTH_WINDOWS",
    "HARVEST",
    "NIG",
    "PIMDP",
    "POLICY_NAMES",
    "RLMR",
    "SCENARIOS",
    "BatchOutcome",
    "CommonPractice",
    "Grid",
    "HarvestCaseStudy",
    "HarvestDataError",
    "HarvestDecision",
    "HarvestParams",
    "HarvestPolicy",
    "HarvestSpec",
    "HarvestState",
    "KnowledgeState",
    "Myopic",
    "MyopicPI",
    "PISolution",
    "PlugIn",
    "PlugInStatic",
    "RunData",
    "ShockLaw",
    "continuation",
    "epoch_knowledge",
    "evaluate_policy",
    "get_scenario",
    "growth_rates",
    "growth_window",
    "harvest_case_study",
    "harvest_decision",
    "knowledge_from_runs",
    "make_grid",
    "make_policy",
    "myopic_harvest_mask",
    "nig_posterior",
    "paired_differences",
    "plot_harvest_epochs",
    "plot_reward_table",
    "plot_thresholds",
    "read_runs",
    "run_batch",
    "simulate_trajectories",
    "solve_pi",
    "summarize_knowledge",
    "validate_runs",
]
